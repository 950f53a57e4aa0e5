"""Video-FocalNet: exact parameter counts, the focal-modulation equations, the design space, capture kinds,
official checkpoints (with a pickled yacs config, read inertly) and ImageNet FocalNet initialisation."""
import sys
import types

import pytest
import torch

import vidlab
from vidlab.errors import CheckpointError
from vidlab.models import video_focalnet as vfn
from vidlab.models.layers import count_params
from vidlab.viz.capture import capture

# exact counts of the official model definitions at 400 classes (docs/architectures.md §1.4)
OFFICIAL = {"video_focalnet_tiny": (96, (2, 2, 6, 2), 49_553_272, 21_587_556),
            "video_focalnet_small": (96, (2, 2, 18, 2), 88_735_168, 39_305_352),
            "video_focalnet_base": (128, (2, 2, 18, 2), 157_389_216, 69_856_072),
            "video_focalnet_nano": (32, (1, 1, 2, 1), 2_587_118, None)}
TEMPORAL = ("f_temporal.weight", "f_temporal.bias", "focal_layers_temporal.0.0.weight",
            "focal_layers_temporal.1.0.weight", "h_temporal.weight", "h_temporal.bias")


def official_layout(C, depths, num_classes=400, temporal=True):
    """Key -> shape of an official checkpoint's ``model`` dict, written from the documented layout
    (docs/architectures.md §1.5), not from vidlab's model: L = 2 levels, kernels 3 and 5, dense temporal convs."""
    shapes = {"patch_embed.proj.weight": (C, 3, 4, 4), "patch_embed.proj.bias": (C,),
              "patch_embed.norm.weight": (C,), "patch_embed.norm.bias": (C,)}
    for s, depth in enumerate(depths):
        c = C * 2 ** s
        for j in range(depth):
            p = f"layers.{s}.blocks.{j}."
            shapes.update({p + "norm1.weight": (c,), p + "norm1.bias": (c,),
                           p + "modulation.f.weight": (2 * c + 3, c), p + "modulation.f.bias": (2 * c + 3,),
                           p + "modulation.h.weight": (c, c, 1, 1), p + "modulation.h.bias": (c,),
                           p + "modulation.proj.weight": (c, c), p + "modulation.proj.bias": (c,),
                           p + "modulation.focal_layers.0.0.weight": (c, 1, 3, 3),
                           p + "modulation.focal_layers.1.0.weight": (c, 1, 5, 5),
                           p + "norm2.weight": (c,), p + "norm2.bias": (c,),
                           p + "mlp.fc1.weight": (4 * c, c), p + "mlp.fc1.bias": (4 * c,),
                           p + "mlp.fc2.weight": (c, 4 * c), p + "mlp.fc2.bias": (c,)})
            if temporal:
                shapes.update({p + "modulation.f_temporal.weight": (c + 3, c),
                               p + "modulation.f_temporal.bias": (c + 3,),
                               p + "modulation.h_temporal.weight": (c, c, 1), p + "modulation.h_temporal.bias": (c,),
                               p + "modulation.focal_layers_temporal.0.0.weight": (c, c, 3),
                               p + "modulation.focal_layers_temporal.1.0.weight": (c, c, 5)})
        if s < len(depths) - 1:
            p = f"layers.{s}.downsample."
            shapes.update({p + "proj.weight": (2 * c, c, 2, 2), p + "proj.bias": (2 * c,),
                           p + "norm.weight": (2 * c,), p + "norm.bias": (2 * c,)})
    c = C * 2 ** (len(depths) - 1)
    shapes.update({"norm.weight": (c,), "norm.bias": (c,), "head.weight": (num_classes, c), "head.bias": (num_classes,)})
    return shapes


def nano(**kw):
    torch.manual_seed(0)
    kw.setdefault("num_classes", 5)
    kw.setdefault("img_size", 64)
    kw.setdefault("num_frames", 4)
    kw.setdefault("temporal_init", "default")     # the released init (the nano's recipe starts h_temporal at 1)
    return vidlab.create_model("video_focalnet_nano", **kw)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_variants_build_with_exact_official_param_counts(name):
    C, depths, total, temporal = OFFICIAL[name]
    size = 128 if name.endswith("nano") else 224
    with torch.device("meta"):
        m = vidlab.create_model(name, img_size=size)
        y = m(torch.empty(2, 3, 8, size, size))
    assert y.shape == (2, 400)
    assert count_params(m) == total
    if temporal is not None:
        assert sum(p.numel() for n, p in m.named_parameters() if "temporal" in n) == temporal
    # the documented official layout has exactly our names and shapes (the converter is an identity)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == official_layout(C, depths)
    info = vidlab.model_info(name)
    assert info["params_official"] == total and info["arch"] == "video_focalnet"


def test_model_info_reports_the_base_flops_inconsistency():
    info = vidlab.model_info("video_focalnet_base")
    assert info["gflops_reported"] == 149.0 and "220.9" in info["notes"] and "thop" in info["flops_convention"]
    assert info["top1"]["K400"] == 83.6 and vidlab.model_info("video_focalnet_tiny")["gflops_reported"] == 63.0
    assert vidlab.model_info("video_focalnet_nano")["teaching"]


def test_macs_match_the_official_count():
    """MACs per view within 2% of the official definition counted by fvcore (docs/architectures.md §1.4)."""
    from vidlab.profile import complexity
    for name, size, official in [("video_focalnet_tiny", 224, 63.14), ("video_focalnet_nano", 128, 1.016)]:
        with torch.device("meta"):
            m = vidlab.create_model(name, img_size=size)
        g = complexity(m, (1, 3, 8, size, size)).gmacs
        assert abs(g - official) / official < 0.02, (name, g)


def test_focal_modulation_follows_the_equations():
    """y = proj(q * h(sum_l g_l z_l) * h_t(sum_l g^t_l z^t_l)), rebuilt here with plain torch ops."""
    torch.manual_seed(0)
    B, T, H, W, C = 2, 4, 6, 5, 8
    fm = vfn.SpatioTemporalFocalModulation(C).eval()
    x = torch.randn(B, T, H, W, C)
    gelu = torch.nn.functional.gelu
    # spatial branch, one frame at a time
    q, z, g = fm.f(x).split((C, C, 3), dim=-1)
    z = z.permute(0, 1, 4, 2, 3).reshape(B * T, C, H, W)
    g = g.permute(0, 1, 4, 2, 3).reshape(B * T, 3, H, W)
    z1 = gelu(torch.nn.functional.conv2d(z, fm.focal_layers[0][0].weight, padding=1, groups=C))
    z2 = gelu(torch.nn.functional.conv2d(z1, fm.focal_layers[1][0].weight, padding=2, groups=C))
    z3 = gelu(z2.mean((2, 3), keepdim=True))
    m_s = fm.h(g[:, :1] * z1 + g[:, 1:2] * z2 + g[:, 2:] * z3).reshape(B, T, C, H, W).permute(0, 1, 3, 4, 2)
    # temporal branch, one pixel at a time, dense conv over time
    zt, gt = fm.f_temporal(x).split((C, 3), dim=-1)
    zt = zt.permute(0, 2, 3, 4, 1).reshape(B * H * W, C, T)
    gt = gt.permute(0, 2, 3, 4, 1).reshape(B * H * W, 3, T)
    w0, w1 = fm.focal_layers_temporal[0][0].weight, fm.focal_layers_temporal[1][0].weight
    assert w0.shape == (C, C, 3) and w1.shape == (C, C, 5)     # dense: mixes channels
    t1 = gelu(torch.nn.functional.conv1d(zt, w0, padding=1))
    t2 = gelu(torch.nn.functional.conv1d(t1, w1, padding=2))
    t3 = gelu(t2.mean(2, keepdim=True))
    m_t = fm.h_temporal(gt[:, :1] * t1 + gt[:, 1:2] * t2 + gt[:, 2:] * t3).reshape(B, H, W, C, T)
    m_t = m_t.permute(0, 4, 1, 2, 3)
    expected = fm.proj(q * m_s * m_t)
    torch.testing.assert_close(fm(x), expected, atol=1e-5, rtol=1e-5)


def test_official_postln_and_modulator_normalisation_options():
    """use_postln_in_modulation: LN(q * M_s * M_t) before proj, a `modulation.ln` as in the official code;
    normalize_modulator: both aggregated contexts divided by L + 1 before h / h_temporal."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5, 8)
    plain = vfn.SpatioTemporalFocalModulation(8).eval()
    both = vfn.SpatioTemporalFocalModulation(8, use_postln_in_modulation=True, normalize_modulator=True).eval()
    missing, unexpected = both.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["ln.weight", "ln.bias"] and not unexpected
    q, m_s, _ = plain.spatial_modulator(x)
    m_t, _ = plain.temporal_modulator(x)
    # h is affine: h(c / 3) = (h(c) - b) / 3 + b
    m_s = (m_s.reshape_as(q) - plain.h.bias) / 3 + plain.h.bias
    m_t = (m_t - plain.h_temporal.bias) / 3 + plain.h_temporal.bias
    expected = plain.proj(torch.nn.functional.layer_norm(q * m_s * m_t, (8,)))
    torch.testing.assert_close(both(x), expected, atol=1e-5, rtol=1e-5)
    m = nano(use_postln_in_modulation=True)
    assert "layers.0.blocks.0.modulation.ln.weight" in m.state_dict()
    assert "layers.0.blocks.0.modulation.ln.weight" not in nano().state_dict()


def test_init_std_none_gives_fan_in_scaled_linear_weights():
    """The released init (Linear trunc-normal .02) by default; init_std=None scales each Linear by 1/sqrt(fan_in)."""
    released, scaled = nano(), nano(init_std=None)
    for name, m in scaled.named_modules():
        if isinstance(m, torch.nn.Linear) and m.weight.numel() >= 1000:
            assert m.weight.std().item() == pytest.approx(m.in_features ** -0.5, rel=0.15), name
            assert dict(released.named_modules())[name].weight.std().item() == pytest.approx(0.02, rel=0.15), name
    assert scaled.layers[0].blocks[0].modulation.h.weight.std().item() == pytest.approx(
        released.layers[0].blocks[0].modulation.h.weight.std().item(), rel=0.2)     # convolutions: PyTorch's default both


def test_identity_temporal_init_starts_as_the_spatial_design_and_then_learns_time():
    """temporal_init="identity" (h_temporal weight 0, bias 1): M_t = 1, so the video model with the spatial design's
    weights computes exactly what the 2D FocalNet computes; one optimiser step later the temporal branch is live."""
    torch.manual_seed(0)
    spatial = nano(design="spatial", img_size=32, num_classes=5).eval()
    video = nano(temporal_init="identity", img_size=32, num_classes=5)
    report = video.load_state_dict(spatial.state_dict(), strict=False)
    assert report.unexpected_keys == [] and {k.rsplit(".", 2)[-2] for k in report.missing_keys} <= {
        "f_temporal", "0", "h_temporal"}
    x = torch.randn(2, 3, 4, 32, 32)
    torch.testing.assert_close(video.eval()(x), spatial(x), atol=0, rtol=0)
    # released init: M_t is not 1, the two differ
    default = nano(img_size=32, num_classes=5)
    default.load_state_dict(spatial.state_dict(), strict=False)
    assert not torch.allclose(default.eval()(x), spatial(x))
    # the temporal convolutions get no gradient at the first step (h_temporal's weight is 0), h_temporal does;
    # after one step the whole temporal branch gets gradient
    video.train()
    opt = torch.optim.SGD(video.parameters(), lr=0.1)
    video(x).logsumexp(-1).sum().backward()
    mod = video.layers[0].blocks[0].modulation
    assert mod.h_temporal.weight.grad.abs().sum() > 0 and mod.focal_layers_temporal[0][0].weight.grad.abs().sum() == 0
    opt.step()
    opt.zero_grad()
    video(x).logsumexp(-1).sum().backward()
    assert mod.focal_layers_temporal[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="temporal_init"):
        nano(temporal_init="zeros")


def test_capture_kinds_shapes_and_consistency():
    m = nano().eval()
    x = torch.randn(2, 3, 4, 64, 64)
    inputs = {}
    mod = m.layers[1].blocks[0].modulation
    hook = mod.register_forward_hook(lambda mod_, a, out: inputs.update(x=a[0], y=out))
    with capture(m) as maps:
        m(x)
    hook.remove()
    blocks = [f"layers.{s}.blocks.{j}.modulation" for s, d in enumerate((1, 1, 2, 1)) for j in range(d)]
    kinds = ("modulator", "gates", "modulator_temporal", "gates_temporal")
    assert list(maps) == [f"{b}.{k}" for b in blocks for k in kinds]
    for s, b in zip((0, 1, 2, 2, 3), blocks):
        C, h = 32 * 2 ** s, 16 // 2 ** s
        assert maps[f"{b}.modulator"].shape == (2, C, 4, h, h)
        assert maps[f"{b}.modulator_temporal"].shape == (2, C, 4, h, h)
        assert maps[f"{b}.gates"].shape == (2, 3, 4, h, h) and maps[f"{b}.gates_temporal"].shape == (2, 3, 4, h, h)
    # the captured maps are the ones the output is made of: y = proj(q * M_s * M_t)
    q = mod.f(inputs["x"])[..., :64]                               # (B, T, H, W, C)
    key = "layers.1.blocks.0.modulation."
    m_s, m_t = maps[key + "modulator"].permute(0, 2, 3, 4, 1), maps[key + "modulator_temporal"].permute(0, 2, 3, 4, 1)
    torch.testing.assert_close(mod.proj(q * m_s * m_t), inputs["y"], atol=1e-5, rtol=1e-5)
    # nothing is stored on the modules, and the spatial-only design records only spatial kinds
    assert not any(isinstance(v, torch.Tensor) for mm in m.modules() for v in vars(mm).values())
    ms = nano(design="spatial").eval()
    with capture(ms) as maps:
        ms(x)
    assert {k.rsplit(".", 1)[1] for k in maps} == {"modulator", "gates"}


@pytest.mark.parametrize("design,temporal_conv", [("parallel", "dense"), ("sequential", "dense"),
                                                  ("spatial", "dense"), ("parallel", "depthwise")])
def test_gradients_reach_every_parameter(design, temporal_conv):
    m = nano(design=design, temporal_conv=temporal_conv, img_size=32).train()
    m(torch.randn(2, 3, 4, 32, 32)).logsumexp(-1).sum().backward()
    dead = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def test_design_space_params_and_time_semantics():
    base = count_params(nano())
    assert count_params(nano(design="sequential")) == base         # same modules, other data flow
    spatial = nano(design="spatial")
    assert not any("temporal" in n for n in spatial.state_dict())
    dw = nano(temporal_conv="depthwise")
    assert dw.layers[0].blocks[0].modulation.focal_layers_temporal[0][0].weight.shape == (32, 1, 3)
    assert count_params(spatial) < count_params(dw) < base
    # spatial-only treats frames independently: reversing time just reverses its output; the temporal branch
    # mixes frames, so its output changes (checked on the token mixer; in a fresh network the residual stream dilutes it)
    x = torch.randn(1, 4, 6, 6, 16)                                # (B, T, H, W, C)
    for design, blind in [("spatial", True), ("parallel", False), ("sequential", False)]:
        torch.manual_seed(0)
        fm = vfn.SpatioTemporalFocalModulation(16, design=design).eval()
        with torch.no_grad():
            a, b = fm(x).flip(1), fm(x.flip(1))
        rel = ((a - b).norm() / a.norm()).item()
        assert (rel < 1e-5) == blind, (design, rel)
    # parallel and sequential differ with identical weights
    par, seq = (vfn.SpatioTemporalFocalModulation(16, design=d).eval() for d in ("parallel", "sequential"))
    seq.load_state_dict(par.state_dict())
    with torch.no_grad():
        assert not torch.allclose(par(x), seq(x), atol=1e-5)
    with pytest.raises(ValueError, match="design"):
        nano(design="joint")
    with pytest.raises(ValueError, match="temporal_conv"):
        nano(temporal_conv="grouped")


def test_state_dict_round_trip(tmp_path):
    m = nano().eval()
    path = tmp_path / "nano.pt"
    torch.save({"model": m.state_dict(), "vidlab_version": vidlab.__version__}, path)
    m2 = vidlab.create_model("video_focalnet_nano", num_classes=5, img_size=64, num_frames=4, pretrained=path).eval()
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m2(x), atol=0, rtol=0)


def _save_official(path, shapes, seed=0):
    """An official-style training checkpoint: weights under 'model' plus a pickled yacs CfgNode config.
    The CfgNode class only exists while saving (a stand-in module), so loading must not need yacs."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}
    yacs, config = types.ModuleType("yacs"), types.ModuleType("yacs.config")

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    config.CfgNode, yacs.config = CfgNode, config
    sys.modules.update({"yacs": yacs, "yacs.config": config})
    try:
        cfg = CfgNode(MODEL=CfgNode(TYPE="videofocalnet_nano"))
        cfg.__dict__["frozen"] = True
        torch.save({"model": sd, "optimizer": {}, "lr_scheduler": {}, "max_accuracy": 12.5, "epoch": 3,
                    "config": cfg}, path)
    finally:
        del sys.modules["yacs"], sys.modules["yacs.config"]
    return sd


def test_official_checkpoint_with_yacs_config_converts_and_loads(tmp_path):
    from vidlab.models.official import load_checkpoint
    path = tmp_path / "video-focalnet_nano.pth"
    sd = _save_official(path, official_layout(32, (1, 1, 2, 1), num_classes=5))
    with pytest.raises(Exception):                   # plain weights_only loading refuses the pickled config
        torch.load(path, weights_only=True)
    ckpt = load_checkpoint(path)
    assert "yacs" not in sys.modules                  # read as an inert stand-in, never imported
    assert type(ckpt["config"]).__module__ != "yacs.config" and ckpt["config"]["MODEL"]["TYPE"] == "videofocalnet_nano"
    m = vidlab.create_model("video_focalnet_nano", num_classes=5, pretrained=path)   # strict
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd[k]), k
    # a wrong class count is a clear shape mismatch, and the depthwise teaching variant refuses dense weights
    with pytest.raises(CheckpointError):
        vidlab.create_model("video_focalnet_nano", num_classes=7, pretrained=path)
    with pytest.raises(ValueError, match="depthwise"):
        vidlab.create_model("video_focalnet_nano", num_classes=5, temporal_conv="depthwise", pretrained=path)


def test_imagenet_focalnet_weights_leave_only_temporal_layers_new(tmp_path):
    # FocalNet-T-SRF: every 2D key loads; exactly 12 blocks x 6 temporal tensors = 72 stay new
    with torch.device("meta"):
        tiny = vidlab.create_model("video_focalnet_tiny")
    own, image = set(tiny.state_dict()), set(official_layout(96, (2, 2, 6, 2), 1000, temporal=False))
    assert not image - own and len(own - image) == 72
    # load a 2D checkpoint (1000-class head) into the nano size
    path = tmp_path / "focalnet_nano_srf.pth"
    sd = _save_official(path, official_layout(32, (1, 1, 2, 1), num_classes=1000, temporal=False), seed=1)
    m = nano(num_frames=8)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    report = vfn.load_image_weights(m, path)
    assert report["unexpected"] == [] and report["reinitialised"] == ["head.weight", "head.bias"]
    assert len(report["missing"]) == 5 * 6 and all(k.endswith(TEMPORAL) for k in report["missing"])
    after = m.state_dict()
    for k in after:
        if k.startswith("head."):
            assert after[k].shape[0] == 5
        elif k in report["missing"]:
            assert torch.equal(after[k], before[k])
        else:
            assert torch.equal(after[k], sd[k]), k
    # the spatial-only design is exactly the 2D network: nothing missing
    assert vfn.load_image_weights(nano(design="spatial"), path)["missing"] == []


def test_nano_loss_falls_on_a_few_clips():
    """Noise clips with a learnable signal: a square moving through the frames, its colour channel is the class."""
    torch.manual_seed(0)
    T, S, n = 4, 32, 8
    x = torch.randn(n, 3, T, S, S) * 0.5
    y = torch.arange(n) % 2
    for i in range(n):
        for t in range(T):
            x[i, y[i], t, 4 + 3 * t:14 + 3 * t, 6 + i:16 + i] += 2.0
    m = nano(num_classes=2, img_size=S)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_bad_input_raises_a_clear_error():
    m = nano()
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\)"):
        m(torch.randn(1, 4, 64, 64, 3))
    with pytest.raises(ValueError, match="T=4"):
        m(torch.randn(1, 3, 8, 64, 64))
    with pytest.raises(ValueError, match="multiple of 32"):
        vidlab.create_model("video_focalnet_nano", img_size=100)


def test_released_file_variants_ddp_prefix_fp16_and_non_tensors(tmp_path):
    """What a real Video-FocalNets file may carry: a DDP 'module.' prefix, an AMP (fp16) save, training state
    beside 'model'. All load; a non-tensor inside the state dict is refused by name."""
    from vidlab.models.video_focalnet import checkpoint_filter_fn
    g = torch.Generator().manual_seed(1)
    sd = {k: torch.randn(s, generator=g) * 0.05 for k, s in official_layout(32, (1, 1, 2, 1), num_classes=5).items()}
    half = {"module." + k: v.half() for k, v in sd.items()}
    torch.save({"model": half, "optimizer": {"state": {}}, "lr_scheduler": {}, "epoch": 3, "amp": {}},
               tmp_path / "fp16.pth")
    m = vidlab.create_model("video_focalnet_nano", num_classes=5, pretrained=tmp_path / "fp16.pth")   # strict
    for k, v in m.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, sd[k].half().float()), k
    bad = dict(sd, **{"layers.0.blocks.0.optimizer_state": {"step": 3}})
    with pytest.raises(CheckpointError, match=r"layers\.0\.blocks\.0\.optimizer_state \(dict\)"):
        checkpoint_filter_fn(bad, m)


def test_temporal_conv_layouts_equal_conv1d():
    """`temporal_conv` (im2col GEMM for wide dense convs, Conv1d otherwise) equals Conv1d over each time series."""
    from vidlab.models.video_focalnet import temporal_conv
    torch.manual_seed(0)
    for C, k, groups in ((256, 5, 1), (256, 3, 1), (64, 3, 1), (64, 5, 64)):
        conv = torch.nn.Conv1d(C, C, k, padding=k // 2, groups=groups, bias=False)
        x = torch.randn(2, 4, 6, C, requires_grad=True)                         # (B, T, M, C)
        ref = conv(x.permute(0, 2, 3, 1).reshape(12, C, 4)).view(2, 6, C, 4).permute(0, 3, 1, 2)
        out = temporal_conv(x, conv)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        gw = torch.autograd.grad(out.square().sum(), conv.weight)[0]
        gw_ref = torch.autograd.grad(ref.square().sum(), conv.weight)[0]
        torch.testing.assert_close(gw, gw_ref, atol=1e-4, rtol=1e-4)
