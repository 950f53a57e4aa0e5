"""Video Mobile-Former: sizes, exact image-model reduction, image-weight loading, bridges, capture, training."""
import math

import pytest
import torch

import vidlab
from vidlab.errors import CheckpointError
from vidlab.models.official import check_and_load
from vidlab.models.video_mobileformer import (IMAGE_PARAMS, VARIANT_GMACS, VideoMobileFormer,
                                              checkpoint_filter_fn,
                                              image_mobileformer_config, load_image_weights,
                                              token_attention_frames)
from vidlab.profile import mobileformer_macs
from vidlab.viz import capture

VARIANTS = ["video_mobileformer_nano", "video_mobileformer_500m", "video_mobileformer_1g",
            "video_mobileformer_2g", "video_mobileformer_6g"]
# docs/architectures.md 2.6: exact parameter counts of the video sizes (400 classes, 3x3x3 depthwise kernels)
VIDEO_PARAMS = {"video_mobileformer_nano": 2_898_372, "video_mobileformer_500m": 2_898_372,
                "video_mobileformer_1g": 3_877_420, "video_mobileformer_2g": 8_572_240,
                "video_mobileformer_6g": 12_993_432}
BUDGETS = {"video_mobileformer_500m": 0.5e9, "video_mobileformer_1g": 1e9, "video_mobileformer_2g": 2e9,
           "video_mobileformer_6g": 6e9}


def _nano(**kw):
    torch.manual_seed(0)
    return vidlab.create_model("video_mobileformer_nano", num_classes=kw.pop("num_classes", 5), **kw)


# ---------------------------------------------------------------------------------------------------- building
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_builds_with_exact_params_and_output_shape(name):
    assert name in vidlab.list_models("video_mobileformer_*")
    with torch.device("meta"):
        m = vidlab.create_model(name).eval()
        out = m(torch.empty(2, 3, 8, 64, 64))
    assert out.shape == (2, 400)
    assert sum(p.numel() for p in m.parameters()) == VIDEO_PARAMS[name]
    info = vidlab.model_info(name)
    assert info["arch"] == "video_mobileformer" and "2208.12257" in info["url"]
    assert info["params_official"] is None and info["gflops_reported"] is None  # no official video model exists
    assert "Mobile-Former MACs" in info["flops_convention"]


def test_nano_forward_real_and_features():
    m = _nano().eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        y, f = m(x), m.forward_features(x)
    assert y.shape == (2, 5) and f.shape == (2, m.num_features) and torch.isfinite(y).all()


@pytest.mark.parametrize("variant", list(IMAGE_PARAMS))
def test_image_reduction_param_counts_exact(variant):
    """One frame + 2D kernels = the image Mobile-Former; counts equal the official code's (1000 classes)."""
    with torch.device("meta"):
        m = VideoMobileFormer(image_mobileformer_config(variant))
    official = {"508m": 13_976_976, "294m": 11_422_648, "214m": 9_425_920, "151m": 7_595_828,
                "96m": 4_585_252, "52m": 3_469_092}   # counted from AAboys/MobileFormer f447310 (1000 classes)
    assert sum(p.numel() for p in m.parameters()) == official[variant] == IMAGE_PARAMS[variant]


@pytest.mark.parametrize("variant,macs,published", [("508m", 498_467_680, 508e6), ("294m", 286_732_160, 294e6)])
def test_image_reduction_macs(variant, macs, published):
    """conv+linear+matmul MACs equal the image code's count exactly (docs/architectures.md 2.4); with DyReLU products
    added (Mobile-Former's convention) they are within 2.1 % of the published 'FLOPs'."""
    with torch.device("meta"):
        m = VideoMobileFormer(image_mobileformer_config(variant))
    c = mobileformer_macs(m, (1, 3, 1, 224, 224))
    assert c["macs"] == macs
    assert c["dyrelu"] > 0 and abs(c["mf_macs"] - published) / published < 0.021


@pytest.mark.parametrize("name", list(BUDGETS) + ["video_mobileformer_nano"])
def test_sizes_are_named_by_measured_cost(name):
    (T, S), gmac = VARIANT_GMACS[name]
    with torch.device("meta"):
        m = vidlab.create_model(name)
    c = mobileformer_macs(m, (1, 3, T, S, S))
    assert abs(c["mf_macs"] / 1e9 - gmac) < 0.0015, c
    assert vidlab.model_info(name)["input"] == f"{T}x{S}x{S}"
    if name in BUDGETS:
        assert 0.75 * BUDGETS[name] < c["mf_macs"] <= BUDGETS[name]
    if name == "video_mobileformer_1g":
        assert c["mf_macs"] < 1e9 and c["flops"] < 2e9  # under 1 G for the whole clip in either convention


def test_former_cost_independent_of_frames_bridges_linear():
    with torch.device("meta"):
        m = vidlab.create_model("video_mobileformer_nano")
    c4, c8 = (mobileformer_macs(m, (1, 3, T, 128, 128))["by_part"] for T in (4, 8))
    assert c4["former"] == c8["former"] > 0
    assert c8["bridges"] == 2 * c4["bridges"] - _bridge_const(m)
    hyper = sum(mod.hyper[0].in_features * mod.hyper[0].out_features + mod.hyper[2].in_features
                * mod.hyper[2].out_features for mod in m.modules() if type(mod).__name__ == "DynamicReLU")
    assert c8["mobile"] == 2 * c4["mobile"] - hyper   # the convs grow with T, the token-driven hyper-MLPs do not


def _bridge_const(m):
    # token-side linears (q, gate, proj, k, v) do not depend on T: bridges(T) = a*T + b  ->  2*(4a+b) - (8a+b) = b
    b = 0
    d, M = m.cfg.token_dim, m.cfg.num_tokens
    for mod in m.modules():
        if type(mod).__name__ == "MobileToFormer":
            C = mod.q.out_features
            b += M * (d * C) * 2 + M * C * d
        elif type(mod).__name__ == "FormerToMobile":
            C = mod.k.out_features
            b += 2 * M * d * C
    return b


# ------------------------------------------------------------------------------- official (image) checkpoints
def image_layout_state_dict(variant: str, num_classes: int = 1000, seed: int = 0) -> dict:
    """A random state dict in the image Mobile-Former repository's layout, built from the documented key names
    (docs/architectures.md 2.7) and the variant table alone -- not from vidlab's model or the official code."""
    cfg = image_mobileformer_config(variant)
    g = torch.Generator().manual_seed(seed)
    d, M = cfg.token_dim, cfg.num_tokens
    sd = {}

    def t(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    def conv(prefix, o, i, k):
        sd[f"{prefix}.0.weight"] = t(o, i, k, k)
        bn(f"{prefix}.1", o)

    def bn(prefix, c):
        sd[f"{prefix}.weight"] = 1 + t(c)
        sd[f"{prefix}.bias"] = t(c)
        sd[f"{prefix}.running_mean"] = t(c)
        sd[f"{prefix}.running_var"] = 1 + t(c).abs()
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(7)

    def lin(prefix, o, i):
        sd[f"{prefix}.weight"] = t(o, i)
        sd[f"{prefix}.bias"] = t(o)

    def ln(prefix, c):
        sd[f"{prefix}.weight"] = 1 + t(c)
        sd[f"{prefix}.bias"] = t(c)

    def hyper(prefix, e):
        lin(f"{prefix}.hyper.0", d // 4, d)
        lin(f"{prefix}.hyper.2", 2 * e, d // 4)

    def local_global(prefix, c):
        lin(f"{prefix}.alpha.0", c, d)
        lin(f"{prefix}.q", c, d)
        lin(f"{prefix}.proj", d, c)
        ln(f"{prefix}.layer_norm", d)

    sd["tokens.weight"] = torch.randn(M, d, generator=g)
    conv("stem", cfg.stem_chs, 3, 3)
    sd["stem.0.weight"] = sd.pop("stem.0.weight")
    c = cfg.stem_chs
    for i, (kind, e1, co, s, e2) in enumerate(cfg.blocks):
        p = f"features.{i}"
        if kind == "lite":
            sd[f"{p}.conv.0.weight"] = t(c * e1, 1, 3, 3)
            bn(f"{p}.conv.1", c * e1)
            sd[f"{p}.conv.4.weight"] = t(co, c * e1, 1, 1)
            bn(f"{p}.conv.5", co)
        elif kind == "down":
            h1, h2 = round(c * e1), round(co * e2)
            conv(f"{p}.conv1", h1, 1, 3)
            hyper(f"{p}.hyper1", h1)
            conv(f"{p}.conv2", co, h1, 1)
            conv(f"{p}.conv3", h2, 1, 3)
            hyper(f"{p}.hyper3", h2)
            conv(f"{p}.conv4", co, h2, 1)
        else:
            h = round(c * e1)
            conv(f"{p}.conv1", h, c, 1)
            hyper(f"{p}.hyper1", h)
            conv(f"{p}.conv2", h, 1, 3)
            hyper(f"{p}.hyper2", h)
            conv(f"{p}.conv3", co, h, 1)
        if kind != "lite":
            local_global(f"{p}.local_global", c)
            q = f"{p}.global_block"
            lin(f"{q}.q", d, d)
            lin(f"{q}.channel_mlp", d, d)
            ln(f"{q}.layer_norm", d)
            lin(f"{q}.ffn.0", 2 * d, d)
            lin(f"{q}.ffn.2", d, 2 * d)
            ln(f"{q}.ffn_norm", d)
            lin(f"{p}.global_local.k", co, d)
            lin(f"{p}.global_local.proj", co, d)
        c = co
    local_global("local_global", c)
    sd["classifier.conv.1.weight"] = t(6 * c, c, 1, 1)
    bn("classifier.conv.2", 6 * c)
    lin("classifier.fc.0", cfg.num_features, 6 * c + d)
    bn("classifier.fc.1", cfg.num_features)
    lin("classifier.classifier.1", num_classes, cfg.num_features)
    return sd


@pytest.mark.parametrize("variant,n_keys", [("294m", 616), ("508m", 616), ("52m", 460)])
def test_official_image_checkpoint_loads_strictly_into_image_reduction(variant, n_keys):
    sd = image_layout_state_dict(variant)
    assert len(sd) == n_keys  # docs/architectures.md 2.7: 616 entries for 294M, BN buffers included
    assert sum(v.numel() for k, v in sd.items() if not k.split(".")[-1].startswith(("running", "num_"))) \
        == IMAGE_PARAMS[variant]
    m = VideoMobileFormer(image_mobileformer_config(variant)).eval()
    report = check_and_load(m, checkpoint_filter_fn(sd, m), strict=True)
    assert len(report["loaded"]) == len(m.state_dict())
    assert torch.equal(m.tokens, sd["tokens.weight"])
    assert torch.equal(m.blocks[1].former_to_mobile.v.weight, sd["features.1.global_local.proj.weight"])


def test_video_model_from_image_weights_is_image_model_on_static_clip(tmp_path):
    """Centre inflation: a video model initialised from image weights, fed a clip of T copies of one image,
    gives the image model's logits (the bridges' softmax over T equal copies is the image softmax)."""
    sd = image_layout_state_dict("52m", num_classes=1000)
    path = tmp_path / "mobile_former_52m.pth.tar"
    torch.save({"state_dict": sd, "epoch": 450}, path)
    image = VideoMobileFormer(image_mobileformer_config("52m")).eval()
    check_and_load(image, checkpoint_filter_fn(sd, image), strict=True)

    video = vidlab.create_model("video_mobileformer_nano", num_classes=1000).eval()
    report = load_image_weights(video, path)
    assert report["missing"] == [] and report["unexpected"] == []
    dw = video.blocks[2].mobile.dw1.conv.weight                      # (E, 1, 3, 3, 3)
    assert dw.shape[2] == 3 and dw[:, :, [0, 2]].abs().max() == 0   # centre inflation: outer taps zero
    assert "blocks.2.mobile.dw1.conv.weight" in report["inflated"]
    img = torch.randn(2, 3, 1, 96, 96)
    with torch.no_grad():
        ref, out = image(img), video(img.expand(-1, -1, 4, -1, -1).contiguous())
    assert torch.allclose(ref, out, atol=1e-4, rtol=1e-4), (ref - out).abs().max()

    # another label set: everything but the classifier loads, and the loader says so
    video10 = vidlab.create_model("video_mobileformer_nano", num_classes=10)
    report = load_image_weights(video10, path)
    assert sorted(report["missing"]) == ["classifier.bias", "classifier.weight"]
    # a checkpoint of another width is refused with the shapes named
    with pytest.raises(CheckpointError):
        load_image_weights(vidlab.create_model("video_mobileformer_1g", num_classes=10), path)


def test_create_model_pretrained_official_path(tmp_path):
    sd = image_layout_state_dict("52m")
    path = tmp_path / "mf52.pth"
    torch.save(sd, path)
    m = vidlab.create_model("video_mobileformer_nano", num_classes=1000, pretrained=path)
    assert torch.equal(m.tokens, sd["tokens.weight"])


# ------------------------------------------------------------------------------------------- capture and maps
def test_capture_kinds_and_shapes():
    m = _nano().eval()
    B, T, S = 2, 4, 64
    x = torch.randn(B, 3, T, S, S)
    with torch.no_grad(), capture(m) as maps:
        m(x)
    mf_blocks = [i for i, b in enumerate(m.blocks) if hasattr(b, "former")]
    M = m.cfg.num_tokens
    for i in mf_blocks:
        blk = m.blocks[i]
        m2f = maps[f"blocks.{i}.mobile_to_former.token_attention"]
        f2m = maps[f"blocks.{i}.former_to_mobile.token_attention"]
        assert m2f.shape[:3] == (B, 2, M) and f2m.shape[:3] == (B, 2, M)
        assert m2f.shape[3] % T == 0 and f2m.shape[3] % T == 0
        assert torch.allclose(m2f.sum(-1), torch.ones(B, 2, M), atol=1e-5)          # tokens: softmax over T*H*W
        assert torch.allclose(f2m.sum(2), torch.ones(B, 2, f2m.shape[3]), atol=1e-5)  # positions: over tokens
        assert maps[f"blocks.{i}.former.attention"].shape == (B, 4, M, M)
        e1 = blk.mobile.act1.hyper[2].out_features
        a = maps[f"blocks.{i}.mobile.act1.dyrelu"]
        assert a.shape == (B, e1)
        a1, a2 = a.chunk(2, dim=1)
        assert a1.min() >= 0 and a1.max() <= 2 and a2.min() >= -1 and a2.max() <= 1
        assert f"blocks.{i}.mobile.act2.dyrelu" in maps
    assert maps["mobile_to_former.token_attention"].shape == (B, 2, M, T * 2 * 2)   # final bridge at S/32
    frames = token_attention_frames(maps[f"blocks.{mf_blocks[0]}.mobile_to_former.token_attention"], (T, S, S))
    assert frames.shape == (B, M, T, S // 4, S // 4)
    n_token_attention = sum(k.endswith("token_attention") for k in maps)
    assert n_token_attention == 2 * len(mf_blocks) + 1


def test_capture_kinds_filter_and_no_maps_outside():
    m = _nano().eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad(), capture(m, kinds="dyrelu") as maps:
        m(x)
    assert maps and all(k.endswith(".dyrelu") for k in maps)
    with torch.no_grad():
        m(x)
    assert not any(isinstance(v, torch.Tensor) for v in vars(m).values())


# ----------------------------------------------------------------------------------------- training behaviour
def test_gradients_reach_every_parameter():
    m = _nano(drop_path_rate=0.1, drop_rate=0.1).train()
    x = torch.randn(2, 3, 4, 64, 64)
    m(x).logsumexp(-1).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not missing, missing


def test_state_dict_round_trip(tmp_path):
    m = _nano().eval()
    path = tmp_path / "nano.pt"
    torch.save(m.state_dict(), path)
    m2 = vidlab.create_model("video_mobileformer_nano", num_classes=5).eval()
    m2.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_options_build_and_run():
    x = torch.randn(1, 3, 4, 64, 64)
    for kw in [dict(kv_proj=True), dict(bridge_gate=False), dict(temporal_kernel=5), dict(stem_temporal_kernel=3),
               dict(temporal_kernel=1)]:
        m = _nano(**kw).eval()
        with torch.no_grad():
            assert m(x).shape == (1, 5), kw
    n = lambda **kw: sum(p.numel() for p in _nano(**kw).parameters())  # noqa: E731
    assert n(bridge_gate=False) < n() < n(kv_proj=True)
    with pytest.raises(ValueError, match="odd"):
        _nano(temporal_kernel=2)


def test_bad_input_raises_clear_error():
    m = _nano().eval()
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\)"):
        m(torch.randn(1, 8, 64, 64, 3))
    with pytest.raises(ValueError, match="expected a clip"):
        m(torch.randn(3, 8, 64, 64))
    with pytest.raises(ValueError, match="variant"):
        image_mobileformer_config("26m")


def test_frame_order_matters_only_through_temporal_convs():
    """No position embedding: with temporal_kernel=1 the model is blind to frame order (permutation invariant),
    with 3x3x3 depthwise kernels it is not."""
    x = torch.randn(1, 3, 4, 64, 64)
    perm = x[:, :, [2, 0, 3, 1]]
    with torch.no_grad():
        m1 = _nano(temporal_kernel=1).eval()
        assert torch.allclose(m1(x), m1(perm), atol=1e-5)
        m3 = _nano().eval()
        for p in m3.parameters():   # random temporal taps (a fresh model's are random too, but make it obvious)
            p.data.add_(0.01 * torch.randn_like(p))
        assert not torch.allclose(m3(x), m3(perm), atol=1e-5)


def test_nano_loss_falls_on_smoke_data(smoke_data):
    from vidlab.data import VideoClipDataset, build_transforms
    ds = VideoClipDataset(smoke_data, "train", num_frames=2, transform=build_transforms(False, img_size=32))
    clips, labels = zip(*[ds[i][:2] for i in range(0, len(ds), max(1, len(ds) // 8))][:8])
    x, y = torch.stack(clips), torch.tensor(labels)
    m = _nano(num_classes=len(ds.classes)).train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-3:]) < 0.6 * losses[0], losses


def test_timm_training_file_ddp_prefix_fp16(tmp_path):
    """A timm-trained image Mobile-Former file: 'state_dict' (here 'module.' keys, fp16) beside 'state_dict_ema',
    'optimizer', 'epoch'. create_model reads 'state_dict' (upcast), load_image_weights prefers the EMA weights;
    a non-tensor entry in the state dict is refused by name."""
    sd = image_layout_state_dict("52m")
    ema = {k: (v + 1 if v.is_floating_point() else v) for k, v in sd.items()}
    half = {"module." + k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save({"state_dict": half, "state_dict_ema": ema, "optimizer": {"state": {}}, "epoch": 449},
               tmp_path / "mf52_timm.pth.tar")
    m = vidlab.create_model("video_mobileformer_nano", num_classes=1000, pretrained=tmp_path / "mf52_timm.pth.tar")
    assert m.tokens.dtype == torch.float32 and torch.equal(m.tokens, sd["tokens.weight"].half().float())
    m2 = vidlab.create_model("video_mobileformer_nano", num_classes=1000)
    load_image_weights(m2, tmp_path / "mf52_timm.pth.tar")
    assert torch.equal(m2.tokens, ema["tokens.weight"])
    from vidlab.models.video_mobileformer import checkpoint_filter_fn
    with pytest.raises(CheckpointError, match=r"optimizer \(dict\)"):
        checkpoint_filter_fn(dict(sd, optimizer={"state": {}}), m)


def test_depthwise_convs_on_channels_last_input_give_the_same_model(monkeypatch):
    """`ConvBN` feeds its grouped Conv3d channels-last input on a CPU (2-5x faster there): outputs and gradients
    equal those of contiguous input up to float rounding."""
    from vidlab.models import video_mobileformer as vmf
    torch.manual_seed(0)
    model = vidlab.create_model("video_mobileformer_nano", num_classes=5, num_frames=4, img_size=32).train()
    x = torch.randn(2, 3, 4, 32, 32)
    results = []
    for on in (False, True):
        monkeypatch.setattr(vmf.ConvBN, "channels_last_depthwise", on)
        model.zero_grad()
        out = model(x)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (a, ga), (b, gb) = results
    assert torch.allclose(a, b, atol=1e-5) and len(ga) == len(gb)
    g, h = torch.cat([t.flatten() for t in ga]), torch.cat([t.flatten() for t in gb])
    assert (g - h).norm() <= 1e-4 * g.norm()          # small gradients (a bias under BatchNorm) differ in rounding
