import pytest
import torch
from torch import nn

from vidlab.models.layers import (DropPath, LayerNormChannelsFirst, Mlp, PatchEmbed3d, check_clip,
                                  count_params, inflate_state_dict, inflate_weight)


def test_check_clip_messages():
    check_clip(torch.zeros(1, 3, 8, 16, 16), num_frames=8)
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\), got \(8, 224, 224, 3\)"):
        check_clip(torch.zeros(8, 224, 224, 3))
    with pytest.raises(ValueError, match="channels last"):
        check_clip(torch.zeros(1, 8, 16, 16, 3))
    with pytest.raises(ValueError, match="T=8"):
        check_clip(torch.zeros(1, 3, 4, 16, 16), num_frames=8)
    with pytest.raises(ValueError, match="float"):
        check_clip(torch.zeros(1, 3, 4, 16, 16, dtype=torch.uint8))


def test_patch_embed_shapes():
    x = torch.randn(2, 3, 8, 32, 32)
    pe = PatchEmbed3d((2, 16, 16), embed_dim=24)
    assert pe(x).shape == (2, 24, 4, 2, 2)
    assert PatchEmbed3d((2, 16, 16), embed_dim=24, norm=True, flatten=True)(x).shape == (2, 16, 24)
    assert PatchEmbed3d((2, 16, 16), embed_dim=24, norm=True)(x).shape == (2, 24, 4, 2, 2)


def test_mlp_droppath_layernorm():
    assert Mlp(8, 32, 4)(torch.randn(3, 8)).shape == (3, 4)
    dp = DropPath(0.5).train()
    x = torch.ones(1000, 4)
    y = dp(x)
    kept = (y[:, 0] > 0).float().mean()
    assert 0.4 < kept < 0.6 and torch.allclose(y[y > 0], torch.tensor(2.0))   # whole samples, rescaled
    assert torch.equal(dp.eval()(x), x)
    ln = LayerNormChannelsFirst(6)
    z = torch.randn(2, 6, 3, 4, 5)
    ref = nn.functional.layer_norm(z.movedim(1, -1), (6,)).movedim(-1, 1)
    assert torch.allclose(ln(z), ref, atol=1e-6)


def test_inflation_preserves_static_response():
    conv2d = nn.Conv2d(3, 5, 3, padding=1)
    conv3d = nn.Conv3d(3, 5, 3, padding=(1, 1, 1))
    img = torch.randn(1, 3, 8, 8)
    clip = img[:, :, None].repeat(1, 1, 6, 1, 1)
    for mode in ("mean", "center"):
        conv3d.weight.data = inflate_weight(conv2d.weight.data, 3, mode)
        conv3d.bias.data = conv2d.bias.data
        out = conv3d(clip)[:, :, 1:-1]        # inner frames see 3 identical taps
        expect = conv2d(img)[:, :, None].expand_as(out)
        if mode == "mean":
            assert torch.allclose(out, expect, atol=1e-5)
        else:
            assert torch.allclose(conv3d(clip), conv2d(img)[:, :, None].expand(-1, -1, 6, -1, -1), atol=1e-5)
    with pytest.raises(ValueError):
        inflate_weight(torch.zeros(3, 3, 3), 3)


def test_inflate_state_dict_only_touches_conv_weights():
    model = nn.Sequential(nn.Conv3d(3, 4, (3, 3, 3)), nn.Linear(4, 2))
    sd2d = {"0.weight": torch.randn(4, 3, 3, 3), "0.bias": torch.randn(4), "1.weight": torch.randn(2, 4),
            "extra": torch.zeros(1)}
    out = inflate_state_dict(sd2d, model, mode="center")
    assert out["0.weight"].shape == (4, 3, 3, 3, 3) and torch.equal(out["0.weight"][:, :, 1], sd2d["0.weight"])
    assert torch.equal(out["1.weight"], sd2d["1.weight"]) and "extra" in out
    assert count_params(model) == 4 * 3 * 27 + 4 + 2 * 4 + 2
