"""Each architecture's signature maps reduce to heat over the clip (B, T, H, W)."""
import pytest
import torch

import vidlab
from vidlab.viz.signature import infer_grid, last_5d_layer, signature_maps

EXPECTED = {
    "video_focalnet_nano": {"modulator (first stage)", "modulator (last stage)"},
    "video_mobileformer_nano": {"token attention"},
    "dualformer_nano": {"global attention received"},
    "ila_nano": {"alignment mask"},
    "sifa_nano": {"offset length", "motion map"},
    "vit_joint_nano": {"attention rollout"},
}


def test_infer_grid():
    assert infer_grid(4 * 4 * 4, (8, 64, 64)) == (4, 4, 4)      # t=8 gives 8 tokens a frame: not square
    assert infer_grid(8 * 8 * 8, (8, 128, 128)) == (8, 8, 8)
    assert infer_grid(2 * 3 * 4, (2, 30, 40)) == (2, 3, 4)
    with pytest.raises(ValueError, match="cannot lay 7 tokens"):
        infer_grid(7, (8, 64, 64))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_maps_per_architecture(name):
    if name not in vidlab.list_models():
        pytest.skip(f"{name} not registered")
    torch.manual_seed(0)
    model = vidlab.create_model(name, num_classes=5, num_frames=8, img_size=64)
    clip = torch.randn(2, 3, 8, 64, 64)
    maps = signature_maps(model, clip)
    assert EXPECTED[name] <= set(maps), f"{name}: got {list(maps)}"
    for k, v in maps.items():
        assert v["heat"].shape == (2, 8, 64, 64), (k, v["heat"].shape)
        assert torch.isfinite(v["heat"]).all()
    if name == "ila_nano":
        assert maps["alignment mask"]["points"].shape == (2, 8, 2)


def test_grad_cam_layer_only_for_conv_maps():
    x = torch.randn(1, 3, 8, 64, 64)
    assert last_5d_layer(vidlab.create_model("r2plus1d_nano", num_classes=3, img_size=64), x) is not None
    assert last_5d_layer(vidlab.create_model("vit_joint_nano", num_classes=3, img_size=64), x) is None
