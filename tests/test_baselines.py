"""Baselines: joint / divided space-time ViT and (2+1)D CNN — shapes, gradients, capture, counts, checkpoints."""
import pytest
import torch
import torch.nn.functional as F

import vidlab
from vidlab.models.baselines import Attention, VideoViT
from vidlab.profile import complexity
from vidlab.viz import capture

NANOS = ["vit_joint_nano", "vit_divided_nano", "r2plus1d_nano"]
T, S, K = 8, 64, 5          # small clips keep the tests fast


def nano(name, **kw):
    torch.manual_seed(0)
    return vidlab.create_model(name, num_classes=K, num_frames=T, img_size=S, **kw)


def clip(b=2):
    return torch.randn(b, 3, T, S, S, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", NANOS)
def test_registered_build_and_shapes(name):
    assert name in vidlab.list_models()
    info = vidlab.model_info(name)
    assert info["teaching"] and info["arch"] == "baselines" and info["paper"]
    m = nano(name).eval()
    x = clip()
    assert m(x).shape == (2, K)
    assert m.forward_features(x).shape == (2, m.num_features)


@pytest.mark.parametrize("name", NANOS)
def test_every_costly_op_is_counted(name):
    """docs/architectures.md §6: nothing but the known cheap families (norms, activations, additions) goes uncounted."""
    c = complexity(nano(name), (1, 3, T, S, S))
    assert c.unknown_ops == {} and c.macs > 0


@pytest.mark.parametrize("name", NANOS)
def test_gradients_reach_every_parameter(name):
    m = nano(name, **({"drop_path_rate": 0.1} if "vit" in name else {})).train()
    if "divided" in name:   # temporal_fc starts at zero (TimeSformer), which blocks the temporal branch's grads
        for blk in m.blocks:
            torch.nn.init.normal_(blk.temporal_fc.weight, std=0.02)
    F.cross_entropy(m(clip()), torch.tensor([1, 3])).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, f"no gradient reaches {n}"


def test_capture_joint_attention():
    m = nano("vit_joint_nano").eval()
    (t, p, _), h = m.cfg.tubelet, m.cfg.num_heads
    N = 1 + (T // t) * (S // p) ** 2
    with capture(m) as maps:
        out = m(clip())
    assert list(maps) == [f"blocks.{i}.attn.attention" for i in range(4)]
    a = maps["blocks.0.attn.attention"]
    assert a.shape == (2, h, N, N)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, h, N))
    torch.testing.assert_close(m(clip()), out)          # capturing does not change the output


def test_capture_divided_attention():
    m = nano("vit_divided_nano").eval()
    (tt, p, _), h = m.cfg.tubelet, m.cfg.num_heads
    t, s = T // tt, (S // p) ** 2
    with capture(m) as maps:
        m(clip())
    assert maps["blocks.0.temporal_attn.temporal_attention"].shape == (2, h, s, t, t)
    assert maps["blocks.3.attn.spatial_attention"].shape == (2, h, t, 1 + s, 1 + s)
    with capture(m, kinds=["temporal_attention"]) as maps:
        m(clip())
    assert len(maps) == 4 and all(k.endswith("temporal_attention") for k in maps)


def test_capture_r2plus1d_activations():
    m = nano("r2plus1d_nano").eval()
    with capture(m) as maps:
        m(clip())
    shapes = [tuple(v.shape) for v in maps.values()]
    assert list(maps) == [f"stages.{i}.activation" for i in range(4)]
    assert shapes == [(2, 16, 8, 16, 16), (2, 32, 4, 8, 8), (2, 64, 2, 4, 4), (2, 128, 1, 2, 2)]


def test_attention_equals_explicit_softmax():
    """The block's fast path (F.scaled_dot_product_attention) equals softmax(QK^T/sqrt(d))V written out, and the
    captured map is that softmax."""
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    x = torch.randn(2, 10, 32)
    q, k, v = attn.qkv(x).reshape(2, 10, 3, 4, 8).permute(2, 0, 3, 1, 4)
    w = (q @ k.transpose(-2, -1) / 8 ** 0.5).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 10, 32))
    with capture(attn) as maps:
        out = attn(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(maps["attention"], w, rtol=1e-5, atol=1e-6)


def test_divided_block_mixes_time_then_space():
    """Temporal attention mixes only tokens at the same location; spatial attention only tokens of one frame."""
    from vidlab.models.baselines import DividedBlock
    torch.manual_seed(0)
    t, s, C = 3, 4, 16
    blk = DividedBlock(C, 2).eval()
    x = torch.randn(1, 1 + t * s, C)
    x2 = x.clone()
    x2[0, 1 + 0 * s + 2] += torch.randn(C)          # perturb the token at frame 0, location 2

    def changed(block):
        d = (block(x2, num_frames=t) - block(x, num_frames=t)).abs().sum(-1)[0]
        return d[0] > 1e-6, (d[1:] > 1e-6).reshape(t, s)

    with torch.no_grad():                            # temporal branch only: silence spatial attention
        blk.attn.proj.weight.zero_(); blk.attn.proj.bias.zero_()
        torch.nn.init.normal_(blk.temporal_fc.weight, std=0.1)
    cls, grid = changed(blk)
    assert not cls and grid[:, 2].all() and not grid[:, [0, 1, 3]].any()

    blk2 = DividedBlock(C, 2).eval()                 # spatial branch only: temporal_fc zero
    with torch.no_grad():
        blk2.temporal_fc.weight.zero_(); blk2.temporal_fc.bias.zero_()
    cls, grid = changed(blk2)
    assert cls and grid[0].all() and not grid[1:].any()


def test_vit_joint_base_exact_params_and_macs():
    with torch.device("meta"):
        m = vidlab.create_model("vit_joint_base")
        m16 = vidlab.create_model("vit_joint_base", num_frames=16)
    assert sum(p.numel() for p in m.parameters()) == 87_147_664 == vidlab.model_info("vit_joint_base")[
        "params_official"]
    assert sum(p.numel() for p in m16.parameters()) == 87_749_776
    c = complexity(m, (1, 3, 8, 224, 224))
    assert round(c.gmacs, 1) == 79.0                       # docs/architectures.md §0
    attention = 12 * 785 * 785 * 64 * 12 * 2               # blocks x Nq x Nk x head_dim x heads x (QK^T, AV)
    bmm = c.by_op.set_index("op")["macs"]
    assert bmm.get("aten.bmm", 0) + bmm.get("aten._scaled_dot_product_flash_attention_for_cpu", 0) == attention


def test_reference_sizes():
    with torch.device("meta"):
        ts = vidlab.create_model("vit_divided_base")
        r = vidlab.create_model("r2plus1d_18")
    assert sum(p.numel() for p in ts.parameters()) == 121_566_352       # TimeSformer reports 121.4M
    assert sum(p.numel() for p in r.parameters()) == 31_505_325          # torchvision r2plus1d_18
    assert round(complexity(ts, (1, 3, 8, 224, 224)).gmacs) == 196       # reported 0.59 TFLOPs / 3 views


@pytest.mark.parametrize("name", NANOS)
def test_state_dict_round_trip(name, tmp_path):
    m = nano(name).eval()
    path = tmp_path / "w.pt"
    torch.save({"model": m.state_dict()}, path)
    torch.manual_seed(123)
    m2 = vidlab.create_model(name, num_classes=K, num_frames=T, img_size=S, pretrained=path).eval()
    x = clip()
    torch.testing.assert_close(m2(x), m(x))


@pytest.mark.parametrize("name", NANOS)
def test_bad_input_raises(name):
    m = nano(name)
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\), got \(2, 8, 64, 64, 3\)"):
        m(torch.randn(2, 8, S, S, 3))
    if "vit" in name:   # the ViTs are built for one clip size (learned position embeddings)
        with pytest.raises(ValueError, match=rf"expected a clip \(B, 3, 8, {S}, {S}\)"):
            m(torch.randn(1, 3, T, S + 16, S + 16))
        with pytest.raises(ValueError, match="T=8"):
            m(torch.randn(1, 3, 4, S, S))


def test_config_errors():
    with pytest.raises(ValueError, match="divisible"):
        vidlab.create_model("vit_joint_nano", num_frames=7, img_size=64)
    with pytest.raises(ValueError, match="joint"):
        VideoViT(vidlab.models.baselines.ViTConfig(attention="axial"))


def test_timesformer_checkpoint_converts(tmp_path):
    """An official-layout TimeSformer checkpoint ('model_state', 'model.' prefix, Conv2d patch embedding) loads
    into vit_divided_* through the registered converter and reproduces the outputs."""
    m = nano("vit_divided_nano", tubelet=(1, 16, 16)).eval()
    official = {f"model.{k}": (v.squeeze(2) if k == "patch_embed.proj.weight" else v)
                for k, v in m.state_dict().items()}
    assert official["model.patch_embed.proj.weight"].ndim == 4
    path = tmp_path / "TimeSformer_divST.pyth"
    torch.save({"model_state": official, "epoch": 15}, path)
    from vidlab.models.baselines import timesformer_checkpoint_filter_fn
    from vidlab.models.official import load_pretrained
    m2 = vidlab.create_model("vit_divided_nano", num_classes=K, num_frames=T, img_size=S, tubelet=(1, 16, 16)).eval()
    load_pretrained(m2, path, converter=timesformer_checkpoint_filter_fn)
    x = clip(1)
    torch.testing.assert_close(m2(x), m(x))
    with pytest.raises(ValueError, match="tubelet t=1"):
        timesformer_checkpoint_filter_fn(official, nano("vit_divided_nano"))


def test_timesformer_released_pyth_with_training_state_and_fp16(tmp_path):
    """A PySlowFast .pyth: 'model_state' ('model.' keys, here fp16) beside 'optimizer_state', 'epoch', 'cfg'.
    It loads (upcast); a non-tensor entry inside the state dict is refused by name."""
    from vidlab.errors import CheckpointError
    from vidlab.models.baselines import timesformer_checkpoint_filter_fn
    m = nano("vit_divided_nano", tubelet=(1, 16, 16)).eval()
    official = {f"model.{k}": (v.squeeze(2) if k == "patch_embed.proj.weight" else v).half()
                for k, v in m.state_dict().items()}
    path = tmp_path / "TimeSformer_divST_fp16.pyth"
    torch.save({"model_state": official, "optimizer_state": {"state": {}}, "epoch": 15, "cfg": "TRAIN: ..."}, path)
    from vidlab.models.official import load_pretrained
    m2 = vidlab.create_model("vit_divided_nano", num_classes=K, num_frames=T, img_size=S, tubelet=(1, 16, 16))
    load_pretrained(m2, path, converter=timesformer_checkpoint_filter_fn)                       # strict
    for k, v in m2.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, m.state_dict()[k].half().float()), k
    with pytest.raises(CheckpointError, match=r"model\.ema \(dict\)"):
        timesformer_checkpoint_filter_fn(dict(official, **{"model.ema": {}}), m2)


def test_every_paper_variant_defaults_to_its_documented_input():
    """A paper variant's defaults are the paper's input (model_info's `input`, 'TxHxW ...'): e.g. DualFormer
    32x224x224, SIFA-Swin-B 64x224x224, Video-FocalNet and ILA 8x224x224. vidlab's teaching sizes are left out."""
    import inspect
    import re
    from vidlab.models.registry import _entry
    names = vidlab.list_models(teaching=False)
    assert {"dualformer_tiny", "sifa_swin_base", "video_focalnet_base", "ila_vit_l14"} <= set(names)
    for name in names:
        m = re.match(r"(\d+)x(\d+)x(\d+)", vidlab.model_info(name)["input"])
        assert m, (name, vidlab.model_info(name)["input"])
        params = inspect.signature(_entry(name).fn).parameters
        assert (params["num_frames"].default, params["img_size"].default) == (int(m[1]), int(m[2])), name
