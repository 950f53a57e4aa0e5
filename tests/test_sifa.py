"""SIFA: the inter-frame attention op, SIFA-Net (ResNet), SIFA-Swin and the nano size."""
import math

import pytest
import torch
import torch.nn.functional as F

import vidlab
from vidlab.errors import CheckpointError
from vidlab.models.layers import count_params
from vidlab.models.sifa import (InterFrameAttention, SIFASwin, SIFASwinConfig, checkpoint_filter_fn,
                                inter_frame_attention, load_image_weights, motion_salient_map, sample_neighbours)
from vidlab.viz import capture

# Official counts (docs/architectures.md §5.4/5.5, measured from FuchenUSTC/SIFA @ 8899ed6) and the frozen 1/C constants
# (`def_cor.weight`, (C, T', k, k)) that vidlab replaces by a scalar.
R50_OFFICIAL, R50_CONSTANTS = 43_105_440, 64_512            # 16 frames (T' = 4)
R101_OFFICIAL, R101_CONSTANTS = 63_692_512, 138_240         # 16 frames, measured from the official code
SWIN_B_OFFICIAL_32F, SWIN_B_CONSTANTS_32F = 109_000_520, 866_304
SWIN_B_OFFSET_CONVS = 162 * (128 + 256 + 9 * 512 + 2 * 1024)  # 2k²·9·C per SIFA block, deformable=True only


def _bilinear_ref(img, y, x):
    """Bilinear sample of img (C, H, W) at (y, x), zero outside: the CUDA kernel's im2col_bilinear."""
    C, H, W = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = torch.zeros(C, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < H and 0 <= xx < W:
                out += wy * wx * img[:, yy, xx]
    return out


def _attention_ref(q, v, off, k=3):
    """Loop reference of the released op on one pair (kernel semantics, written from docs/architectures.md §5.3)."""
    C, H, W = q.shape
    out, wts = torch.zeros_like(q), torch.zeros(k * k, H, W, dtype=q.dtype)
    for h in range(H):
        for w in range(W):
            for kk in range(k * k):
                y = h - 1 + kk // k + float(off[2 * kk, h, w])
                x = w - 1 + kk % k + float(off[2 * kk + 1, h, w])
                s = _bilinear_ref(v, y, x) if (-1 < y < H and -1 < x < W) else torch.zeros(C, dtype=q.dtype)
                wts[kk, h, w] = (q[:, h, w] * s).sum() / C
                out[:, h, w] += wts[kk, h, w] * s
    return out, wts


# --- the op ----------------------------------------------------------------------------------------------------

def test_op_equals_kernel_loop_reference():
    torch.manual_seed(0)
    q, v = torch.randn(1, 5, 4, 5, dtype=torch.float64), torch.randn(1, 5, 4, 5, dtype=torch.float64)
    off = torch.randn(1, 18, 4, 5, dtype=torch.float64) * 2.0   # fractional, many neighbours leave the frame
    out, wts = inter_frame_attention(q, v, off)
    for n in range(1):
        ro, rw = _attention_ref(q[n], v[n], off[n])
        torch.testing.assert_close(out[n], ro, atol=1e-12, rtol=0)
        torch.testing.assert_close(wts[n], rw, atol=1e-12, rtol=0)


def test_unfold_equals_grid_sample_on_the_regular_grid():
    torch.manual_seed(0)
    q, v = torch.randn(3, 8, 5, 7), torch.randn(3, 8, 5, 7)
    for dil in (1, 2):
        a, wa = inter_frame_attention(q, v, None, dilation=dil, impl="unfold")
        b, wb = inter_frame_attention(q, v, torch.zeros(3, 18, 5, 7), dilation=dil, impl="grid_sample")
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(wa, wb, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="regular grid"):
        sample_neighbours(v, torch.zeros(3, 18, 5, 7), impl="unfold")


def test_integer_offsets_move_the_neighbourhood():
    v = torch.randn(1, 4, 6, 6)
    off = torch.zeros(1, 18, 6, 6)
    off[:, 0::2] = 1.0  # every neighbour one row down
    shifted = sample_neighbours(v, off)
    regular = sample_neighbours(F.pad(v[:, :, 1:], (0, 0, 0, 1)), None)  # frame moved up one row, zero filled
    torch.testing.assert_close(shifted[..., 1:, :], regular[..., 1:, :])  # row 0 would see v's first row


def test_op_works_on_one_pixel_wide_maps_and_gradcheck():
    torch.manual_seed(0)
    q = torch.randn(1, 3, 1, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 3, 1, 4, dtype=torch.float64, requires_grad=True)
    off = (torch.rand(1, 18, 1, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()  # away from integer kinks
    ro, _ = _attention_ref(q[0].detach(), v[0].detach(), off[0].detach())
    torch.testing.assert_close(inter_frame_attention(q, v, off)[0][0].detach(), ro)
    assert torch.autograd.gradcheck(lambda a, b, c: inter_frame_attention(a, b, c)[0], (q, v, off))


def test_block_pairs_frames_and_zeroes_the_last():
    """A[t] attends from frame t to frame t+1 with offsets from the MSM of (f_t, f_{t+1}) (intended shift)."""
    torch.manual_seed(0)
    B, C, T, H, W = 2, 6, 4, 5, 5
    f = torch.randn(B, C, T, H, W)
    blk = InterFrameAttention(C)
    torch.nn.init.normal_(blk.conv_offset.weight, std=0.2)
    a = blk(f)
    assert a.shape == f.shape and a[:, :, -1].abs().max() == 0
    prev = torch.cat([f[:, :, :1], f[:, :, :-1]], dim=2)          # the intended previous frame
    m = f * (1 + torch.sigmoid(f - prev))                          # released MSM
    off = blk.conv_offset(m)                                       # offsets of pair (t-1, t) at index t
    for t in range(T - 1):
        ref, _ = inter_frame_attention(f[:, :, t], f[:, :, t + 1], off[:, :, t + 1])
        torch.testing.assert_close(a[:, :, t], ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(motion_salient_map(f, prev, "paper"), f * torch.sigmoid(f - prev))
    assert InterFrameAttention(C)(f[:, :, :1]).abs().max() == 0   # one frame: nothing to attend to


def test_softmax_and_msm_flags():
    f = torch.randn(1, 4, 3, 5, 5)
    with capture(InterFrameAttention(4, softmax=True, msm="paper")) as maps:
        pass
    blk = InterFrameAttention(4, softmax=True, msm="paper")
    with capture(blk, kinds=["neighbour_weights"]) as maps:
        blk(f)
    w = maps["neighbour_weights"]
    torch.testing.assert_close(w[:, :, :-1].sum(1), torch.ones(1, 2, 5, 5))
    with pytest.raises(ValueError, match="msm"):
        InterFrameAttention(4, msm="nope")


# --- parameter counts and shapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("name,frames,expected", [
    ("sifa_resnet50", 16, R50_OFFICIAL - R50_CONSTANTS),       # 43,040,928
    ("sifa_resnet50", 32, R50_OFFICIAL - R50_CONSTANTS),       # the constants grow with T', the weights do not
    ("sifa_resnet101", 16, R101_OFFICIAL - R101_CONSTANTS),    # 63,554,272
])
def test_resnet_param_counts_equal_official(name, frames, expected):
    with torch.device("meta"):
        m = vidlab.create_model(name, num_frames=frames)
        if name == "sifa_resnet50" and frames == 16:  # the forward on meta: shapes only
            assert m(torch.empty(1, 3, frames, 224, 224)).shape == (1, 400)
    assert count_params(m) == expected
    assert m.layer4_dual[1].sifa.conv_offset.weight.shape == (18, 512, 1, 3, 3)
    sifa = [n for n, _ in m.named_modules() if n.endswith(".sifa")]
    assert sifa[:7] == ["layer2.1.sifa", "layer2.3.sifa", "layer3.1.sifa", "layer3.3.sifa", "layer3.5.sifa",
                        "layer4.1.sifa", "layer4_dual.1.sifa"] or name == "sifa_resnet101"


def test_resnet50_component_counts():
    with torch.device("meta"):
        m = vidlab.create_model("sifa_resnet50")
    n = lambda pred: sum(p.numel() for k, p in m.named_parameters() if pred(k))  # noqa: E731
    assert n(lambda k: "conv_offset" in k) == 331_776
    assert n(lambda k: ".fc1." in k or ".fc2." in k) == 2_568_960
    # 16,929,424 in the official count, of which 9,216 are layer4_dual.1.def_cor constants (512 x T'=2 x 3 x 3)
    assert n(lambda k: k.startswith(("layer4_dual", "fc_dual"))) == 16_929_424 - 9_216


@pytest.mark.parametrize("deformable,expected", [
    (False, SWIN_B_OFFICIAL_32F - SWIN_B_CONSTANTS_32F),                         # 108,134,216 = the release
    (True, SWIN_B_OFFICIAL_32F - SWIN_B_CONSTANTS_32F + SWIN_B_OFFSET_CONVS),   # + conv_offset (paper)
])
def test_swin_base_param_counts(deformable, expected):
    with torch.device("meta"):
        m = vidlab.create_model("sifa_swin_base", num_frames=32, deformable=deformable)
        out = m(torch.empty(1, 3, 32, 224, 224))
    assert count_params(m) == expected and out.shape == (1, 400)
    blocks = [b for layer in m.layers for b in layer.blocks]
    assert sum(b.sifa is not None for b in blocks) == 13 and blocks[-1].sifa is not None  # last stage: both SIFA
    impl = {b.sifa.impl for b in blocks if b.sifa is not None}
    assert impl == ({"grid_sample"} if deformable else {"unfold"})


def test_nano_builds_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = vidlab.create_model("sifa_nano", num_classes=5, zero_init_residual=False)
    assert 1.0e6 < count_params(m) < 1.6e6 and m.cfg.dual_head and m.cfg.global_context
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():  # move the offsets off zero so the MSM branch is exercised too
        for mod in m.modules():
            if isinstance(mod, InterFrameAttention):
                mod.conv_offset.weight.normal_(0, 0.01)
    out = m(x)
    assert out.shape == (2, 5)
    main, dual = m.forward_heads(x)   # training uses both heads (CE(main) + CE(dual)); eval averages them
    expected = torch.log((main.softmax(-1) + dual.softmax(-1)) / 2)
    assert torch.allclose(out, expected, atol=1e-5) and dual.shape == (2, 5)
    (main.logsumexp(-1).sum() + dual.logsumexp(-1).sum()).backward()
    dead = [k for k, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, dead


def test_small_swin_trains_and_x_plus_tconv_is_out_of_place():
    cfg = SIFASwinConfig(embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=3,
                         num_frames=8, img_size=32, drop_path_rate=0.1, release_layout=False)
    m = SIFASwin(cfg)
    for b in (b for layer in m.layers for b in layer.blocks):  # leave the zero init so every branch is live
        if b.tda_norm is not None:
            torch.nn.init.ones_(b.tda_norm.weight)
        if b.conv is not None:
            torch.nn.init.normal_(b.conv.weight, std=0.02)
        if b.sifa is not None:
            torch.nn.init.normal_(b.sifa.conv_offset.weight, std=0.01)
    out = m(torch.randn(2, 3, 8, 32, 32))
    assert out.shape == (2, 3)
    out.sum().backward()
    dead = [k for k, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, dead


def test_bad_input_raises_clear_error():
    m = vidlab.create_model("sifa_nano", num_classes=5)
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\)"):
        m(torch.randn(2, 8, 64, 64, 3))
    with pytest.raises(ValueError, match="divisible"):
        m(torch.randn(1, 3, 7, 64, 64))


# --- capture ---------------------------------------------------------------------------------------------------

def test_capture_kinds_and_shapes_for_every_sifa_block():
    m = vidlab.create_model("sifa_nano", num_classes=5).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with capture(m) as maps:
        m(x)
    blocks = [n for n, mod in m.named_modules() if isinstance(mod, InterFrameAttention)]
    assert blocks == ["layer2.1.sifa", "layer3.1.sifa", "layer4.1.sifa", "layer4_dual.1.sifa"]
    # the dual head's res5 runs at stride 1 on res4 pooled over time: 4 -> 2 feature frames, res4's 4x4 grid
    sizes = {"layer2.1.sifa": (4, 8), "layer3.1.sifa": (4, 4), "layer4.1.sifa": (4, 2), "layer4_dual.1.sifa": (2, 4)}
    for b in blocks:
        t, s = sizes[b]
        assert maps[f"{b}.offsets"].shape == (2, 9, 2, t, s, s)
        assert maps[f"{b}.neighbour_weights"].shape == (2, 9, t, s, s)
        assert maps[f"{b}.motion_map"].shape == (2, t, s, s)
        assert maps[f"{b}.neighbour_weights"][:, :, -1].abs().max() == 0  # no frame after the last
    assert maps["layer2.1.sifa.motion_map"][:, :-1].min() > 0


# --- checkpoints -----------------------------------------------------------------------------------------------

def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    m = vidlab.create_model("sifa_nano", num_classes=5).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    m2 = vidlab.create_model("sifa_nano", num_classes=5).eval()
    m2.load_state_dict(torch.load(tmp_path / "w.pt"))
    x = torch.randn(1, 3, 8, 64, 64)
    torch.testing.assert_close(m(x), m2(x))


def _official_r50_state_dict(model, T_prime=4):
    """Official SIFA-Net keys (docs/architectures.md §5.7): conv_offset on the bottleneck itself, def_cor.weight
    (C, T', k, k) = 1/C per SIFA block, saved from the DDP wrapper ('module.')."""
    sd = {}
    for k, v in model.state_dict().items():
        sd["module." + k.replace(".sifa.conv_offset.", ".conv_offset.")] = v.clone()
    for name, mod in model.named_modules():
        if isinstance(mod, InterFrameAttention):
            host = name[: -len(".sifa")]
            t = T_prime // 2 if host.startswith("layer4_dual") else T_prime
            sd[f"module.{host}.def_cor.weight"] = torch.full((mod.dim, t, 3, 3), 1.0 / mod.dim)
    return sd


def test_official_layout_converts_and_loads_strictly(tmp_path):
    torch.manual_seed(0)
    src = vidlab.create_model("sifa_resnet50", num_classes=7, zero_init_residual=False).eval()
    with torch.no_grad():
        for mod in src.modules():
            if isinstance(mod, InterFrameAttention):
                mod.conv_offset.weight.normal_(0, 0.01)
            if isinstance(mod, torch.nn.BatchNorm3d):
                mod.weight.uniform_(0.2, 0.5)
    sd = _official_r50_state_dict(src)
    assert sd["module.layer2.1.conv_offset.weight"].shape == (18, 128, 1, 3, 3)
    assert sd["module.layer2.1.def_cor.weight"].shape == (128, 4, 3, 3)
    assert "module.layer2.0.fc1.weight" in sd and "module.fc_dual.weight" in sd
    torch.save({"opt": {}, "model": sd, "optimizer": {}, "scheduler": {}, "epoch": 3}, tmp_path / "ckpt.pth")
    m = vidlab.create_model("sifa_resnet50", num_classes=7, pretrained=tmp_path / "ckpt.pth").eval()
    x = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        a, b = src.forward_heads(x), m.forward_heads(x)
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])
        # eval: the averaged softmax of the two heads
        torch.testing.assert_close(m(x).softmax(-1), (b[0].softmax(-1) + b[1].softmax(-1)) / 2)
        # training: both heads' logits, for the Trainer's CE(main) + CE(dual)
        main, aux = m(x, return_aux=True)
        torch.testing.assert_close(main, b[0])
        torch.testing.assert_close(aux["dual_logits"], b[1])
    bad = dict(sd)
    bad.pop("module.layer3.1.conv_offset.weight")
    torch.save({"model": bad}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError):
        vidlab.create_model("sifa_resnet50", num_classes=7, pretrained=tmp_path / "bad.pth")
    assert "layer2.1.def_cor.weight" not in checkpoint_filter_fn({"layer2.1.def_cor.weight": torch.ones(1)}, m)
    with pytest.raises(CheckpointError, match=r"layer2\.1\.def_cor\.weight: expected the frozen constant 1/C"):
        checkpoint_filter_fn({"layer2.1.def_cor.weight": torch.zeros(128, 4, 3, 3)}, m)   # a trained def_cor


def _swin_official_buffers(ws, H, W, shift):
    """The structural buffers of a released (timm) Swin block, computed as timm's SwinTransformerBlock does:
    relative_position_index (ws², ws²) and, for a shifted block, attn_mask (nW, ws², ws²) with -100 across regions."""
    coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    index = rel.sum(-1)
    if not shift:
        return index, None
    img = torch.zeros(1, H, W, 1)
    cnt = 0
    for h in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for w in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, h, w, :] = cnt
            cnt += 1
    win = img.view(1, H // ws, ws, W // ws, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return index, mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


SWIN_SMALL = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=4, num_frames=8,
                  img_size=128, deformable=False, num_classes=5)


def _official_swin_checkpoint(model):
    """A released SIFA-Swin checkpoint: the training script's {'opt', 'model' (DDP, 'module.'), 'epoch'} with
    timm Swin's persistent buffers in every block (index) and in every shifted block (mask)."""
    sd = {"module." + k: v.clone() for k, v in model.state_dict().items()}
    res = model.cfg.img_size // model.cfg.patch_size
    for s, layer in enumerate(model.layers):
        r = res // 2 ** s
        for b in range(len(layer.blocks)):
            ws = model.cfg.window_size
            shift = ws // 2 if b % 2 == 1 else 0
            if r <= ws:                                        # timm: one window covers the map, no shift
                ws, shift = r, 0
            index, mask = _swin_official_buffers(ws, r, r, shift)
            sd[f"module.layers.{s}.blocks.{b}.attn.relative_position_index"] = index
            if mask is not None:
                sd[f"module.layers.{s}.blocks.{b}.attn_mask"] = mask
    return {"opt": {"lr": 0.1}, "model": sd, "epoch": 30}


def test_official_swin_checkpoint_with_structural_buffers_loads(tmp_path):
    torch.manual_seed(0)
    src = SIFASwin(SIFASwinConfig(**SWIN_SMALL)).eval()
    for b in (b for layer in src.layers for b in layer.blocks):    # every path live (not the zero init)
        torch.nn.init.normal_(b.tda_norm.weight, 1.0, 0.1)
        torch.nn.init.normal_(b.conv.weight, std=0.05)
    ckpt = _official_swin_checkpoint(src)
    buffers = [k for k in ckpt["model"] if k.endswith(("relative_position_index", "attn_mask"))]
    assert len(buffers) == 11                                  # 8 indices + 3 masks (the last stage is not shifted)
    torch.save(ckpt, tmp_path / "sifa_swin.pth")
    m = vidlab.create_model("sifa_swin_base", pretrained=tmp_path / "sifa_swin.pth", **SWIN_SMALL).eval()  # strict
    x = torch.randn(1, 3, 8, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(m(x), src(x), atol=1e-6, rtol=1e-5)
    for key in ("module.layers.1.blocks.1.attn_mask", "module.layers.2.blocks.0.attn.relative_position_index"):
        bad = _official_swin_checkpoint(src)
        bad["model"][key] = bad["model"][key].clone()
        bad["model"][key].view(-1)[3] += 1
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(CheckpointError, match=key[len("module."):].replace(".", r"\.") + ": 1 of"):
            vidlab.create_model("sifa_swin_base", pretrained=tmp_path / "bad.pth", **SWIN_SMALL)
    # a mask where vidlab's block is not shifted (a checkpoint of another size): refused by name
    extra = _official_swin_checkpoint(src)
    extra["model"]["module.layers.3.blocks.1.attn_mask"] = torch.zeros(1, 4, 4)
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"layers\.3\.blocks\.1\.attn_mask: the checkpoint has"):
        vidlab.create_model("sifa_swin_base", pretrained=tmp_path / "extra.pth", **SWIN_SMALL)


def test_swin_window_attention_sdpa_equals_explicit_softmax():
    """The SDPA path (bias + shift mask as one float mask) equals the explicit softmax the capture path forms."""
    torch.manual_seed(0)
    m = SIFASwin(SIFASwinConfig(**SWIN_SMALL)).eval()
    blk = m.layers[0].blocks[1]
    assert blk.attn_mask is not None
    x = torch.randn(2 * 64, 16, 16)                            # 2 images x 64 windows of 4x4 tokens
    with torch.no_grad():
        fast = blk.attn(x, blk.attn_mask)
        with capture(blk) as maps:
            slow = blk.attn(x, blk.attn_mask)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    a = maps["attn.attention"]
    assert a.shape == (128, 1, 16, 16)
    torch.testing.assert_close(a.sum(-1), torch.ones(128, 1, 16))
    # a query never attends across shift regions: the last window mixes 4 regions
    assert (a[63][0][blk.attn_mask[63] < 0] < 1e-30).all()


def _torchvision_resnet_keys(layers=(3, 4, 6, 3)):
    """torchvision ResNet (resnet50-19c8e357.pth) layout, written from its documented structure."""
    sd, cin = {}, 64

    def bn(prefix, c):
        for s in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{prefix}.{s}"] = torch.rand(c) + 0.5

    sd["conv1.weight"] = torch.randn(64, 3, 7, 7)
    bn("bn1", 64)
    for i, (n, w) in enumerate(zip(layers, (64, 128, 256, 512))):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            sd[f"{p}.conv1.weight"] = torch.randn(w, cin, 1, 1)
            bn(f"{p}.bn1", w)
            sd[f"{p}.conv2.weight"] = torch.randn(w, w, 3, 3)
            bn(f"{p}.bn2", w)
            sd[f"{p}.conv3.weight"] = torch.randn(4 * w, w, 1, 1)
            bn(f"{p}.bn3", 4 * w)
            if j == 0:
                sd[f"{p}.downsample.0.weight"] = torch.randn(4 * w, cin, 1, 1)
                bn(f"{p}.downsample.1", 4 * w)
            cin = 4 * w
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    return sd


def test_imagenet_resnet_init(tmp_path):
    sd = _torchvision_resnet_keys()
    torch.save(sd, tmp_path / "resnet50-19c8e357.pth")
    m = vidlab.create_model("sifa_resnet50")
    rep = load_image_weights(m, tmp_path / "resnet50-19c8e357.pth")
    assert len(rep["loaded"]) == len(sd) - 2 + sum(k.startswith("layer4.") for k in sd)  # fc dropped, layer4 x2
    assert rep["unexpected"] == []
    missing = set(rep["missing"])
    assert all(("conv_offset" in k or ".fc1." in k or ".fc2." in k or k.startswith(("fc.", "fc_dual."))
                or k.endswith("num_batches_tracked")) for k in missing), sorted(missing)[:5]
    w = m.conv1.weight
    assert w.shape == (64, 3, 4, 7, 7)
    torch.testing.assert_close(w[:, :, 2], sd["conv1.weight"])                 # centre tap (t = 2 of 4)
    assert w[:, :, [0, 1, 3]].abs().max() == 0
    torch.testing.assert_close(m.layer4_dual[2].conv2.weight[:, :, 0], sd["layer4.2.conv2.weight"])
    assert m.layer2[1].sifa.conv_offset.weight.abs().max() == 0


def test_imagenet_swin_init():
    cfg = SIFASwinConfig(embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=3,
                         num_frames=8, img_size=32)
    m = SIFASwin(cfg)
    sd = {"patch_embed.proj.weight": torch.randn(16, 3, 4, 4), "patch_embed.proj.bias": torch.randn(16),
          "patch_embed.norm.weight": torch.ones(16), "patch_embed.norm.bias": torch.zeros(16),
          "norm.weight": torch.ones(32), "norm.bias": torch.zeros(32),
          "head.weight": torch.randn(1000, 32), "head.bias": torch.randn(1000)}
    for s, (d, h) in enumerate(((16, 1), (32, 2))):
        for b in range(2):
            p = f"layers.{s}.blocks.{b}"
            for n in ("norm1", "norm2"):
                sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = torch.rand(d), torch.rand(d)
            sd[f"{p}.attn.relative_position_bias_table"] = torch.randn(49, h)
            sd[f"{p}.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
            sd[f"{p}.attn.qkv.weight"], sd[f"{p}.attn.qkv.bias"] = torch.randn(3 * d, d), torch.randn(3 * d)
            sd[f"{p}.attn.proj.weight"], sd[f"{p}.attn.proj.bias"] = torch.randn(d, d), torch.randn(d)
            sd[f"{p}.mlp.fc1.weight"], sd[f"{p}.mlp.fc1.bias"] = torch.randn(4 * d, d), torch.randn(4 * d)
            sd[f"{p}.mlp.fc2.weight"], sd[f"{p}.mlp.fc2.bias"] = torch.randn(d, 4 * d), torch.randn(d)
    sd["layers.0.downsample.norm.weight"], sd["layers.0.downsample.norm.bias"] = torch.rand(64), torch.rand(64)
    sd["layers.0.downsample.reduction.weight"] = torch.randn(32, 64)
    rep = load_image_weights(m, {"model": sd})
    assert rep["unexpected"] == []
    assert set(rep["missing"]) <= {k for k in m.state_dict() if k.startswith("fc.") or ".conv." in k
                                   or "tda_norm" in k or "conv_offset" in k}
    torch.testing.assert_close(m.patch_embed.proj.weight[:, :, 2], sd["patch_embed.proj.weight"])
    assert m.layers[0].blocks[1].conv.weight.abs().max() == 0   # TConv and LN0 keep their zero init
    assert m.layers[0].blocks[0].tda_norm.weight.abs().max() == 0


# --- the dual head and learning -------------------------------------------------------------------------------

def test_nano_loss_falls():
    """Two classes that differ only in motion direction: the nano size must learn it."""
    torch.manual_seed(0)
    T, S = 8, 32

    def clip(direction):
        x = torch.zeros(3, T, S, S)
        y0 = torch.randint(8, 24, ()).item()
        for t in range(T):
            c = 4 + 3 * t if direction else 28 - 3 * t
            x[:, t, y0 - 3:y0 + 3, max(c - 3, 0):c + 3] = 1.0
        return x + 0.1 * torch.randn_like(x)

    xs = torch.stack([clip(i % 2) for i in range(16)])
    ys = torch.tensor([i % 2 for i in range(16)])
    m = vidlab.create_model("sifa_nano", num_classes=2, img_size=S)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(m(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
