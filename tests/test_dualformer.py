"""DualFormer: variants, exact parameter counts, local/global attention semantics, capture, any input size,
official checkpoint conversion and image-weight inflation."""
import math

import pytest
import torch
import torch.nn.functional as F

import vidlab
from vidlab.errors import CheckpointError
from vidlab.models import dualformer as df
from vidlab.models.layers import count_params
from vidlab.viz.capture import capture

# exact counts of the official model definitions (docs/architectures.md §3.4): backbone, backbone + 400-class head
OFFICIAL = {"dualformer_tiny": (21_767_360, 21_972_560), "dualformer_small": (48_908_064, 49_215_664),
            "dualformer_base": (86_837_632, 87_247_632)}


def nano(**kw):
    torch.manual_seed(0)
    kw.setdefault("num_classes", 5)
    kw.setdefault("img_size", 128)
    return vidlab.create_model("dualformer_nano", **kw)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_paper_variants_build_with_exact_official_param_counts(name):
    with torch.device("meta"):
        m = vidlab.create_model(name, num_frames=32, img_size=224)
        y = m(torch.empty(1, 3, 32, 224, 224))
    assert y.shape == (1, 400)
    backbone, total = OFFICIAL[name]
    assert count_params(m) == total
    assert count_params(m) - count_params(m.head) == backbone
    info = vidlab.model_info(name)
    assert info["params_official"] == total and info["gflops_reported"] and info["top1"]["K400"] > 79


def test_list_and_nano_forward():
    assert {"dualformer_nano", "dualformer_tiny", "dualformer_small", "dualformer_base"} <= set(
        vidlab.list_models("dualformer_*"))
    m = nano().eval()
    x = torch.randn(2, 3, 8, 128, 128)
    assert m(x).shape == (2, 5)
    assert m.forward_features(x).shape == (2, 256)
    assert m.forward_feature_map(x).shape == (2, 256, 4, 4, 4)
    assert 2_000_000 < count_params(m) < 2_600_000
    assert vidlab.model_info("dualformer_nano")["teaching"]


def test_pyramid_geometry_matches_the_release():
    """Stage kernels at 32x224^2: fine (2,8,8), (2,4,4), (2,2,2), none; coarse (1,7,7)+(4,2,2), (1,7,7)+(4,1,1)."""
    with torch.device("meta"):
        m = vidlab.create_model("dualformer_tiny", num_frames=32, img_size=224)
    gp = [m.stages[s].blocks[1].attn for s in range(4)]
    assert [a.fine_kernel for a in gp] == [(2, 8, 8), (2, 4, 4), (2, 2, 2), (1, 1, 1)]
    assert gp[0].coarse[0].kernel_size == (1, 7, 7) and gp[0].coarse[3].kernel_size == (4, 2, 2)
    assert gp[1].coarse[0].kernel_size == (1, 7, 7) and gp[1].coarse[3].kernel_size == (4, 1, 1)
    assert gp[2].coarse is None and gp[3].fine is None and gp[3].norm is None
    keys = [sum(math.prod(g) for g in a.pyramid_grids(grid)) for a, grid in zip(gp, m.cfg.stage_grids())]
    assert keys == [456, 456, 392, 784]                         # docs/architectures.md §3.2 table
    assert isinstance(m.stages[0].blocks[0].attn, df.LocalWindowAttention)


def _naive_window_attention(attn_mod, x):
    """Reference LW-MSA: loop over windows, attend among the real tokens of each window only."""
    B, D, H, W, C = x.shape
    wd, wh, ww = attn_mod.effective_window((D, H, W))
    nh, hd = attn_mod.num_heads, C // attn_mod.num_heads
    out = torch.zeros_like(x)
    for d0 in range(0, D, wd):
        for h0 in range(0, H, wh):
            for w0 in range(0, W, ww):
                win = x[:, d0:d0 + wd, h0:h0 + wh, w0:w0 + ww]
                shape = win.shape
                t = win.reshape(B, -1, C)
                q, k, v = attn_mod.qkv(t).view(B, -1, 3, nh, hd).permute(2, 0, 3, 1, 4)
                a = ((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(-1)
                o = attn_mod.proj((a @ v).transpose(1, 2).reshape(B, -1, C))
                out[:, d0:d0 + wd, h0:h0 + wh, w0:w0 + ww] = o.view(shape)
    return out


@pytest.mark.parametrize("grid", [(4, 8, 8), (3, 7, 10), (1, 3, 2)])
def test_local_window_attention_pads_and_masks_exactly(grid):
    torch.manual_seed(0)
    mod = df.LocalWindowAttention(16, 2, (2, 4, 4)).eval()
    x = torch.randn(2, *grid, 16)
    torch.testing.assert_close(mod(x), _naive_window_attention(mod, x), atol=1e-5, rtol=1e-5)


def test_global_pyramid_attention_equals_explicit_formula():
    torch.manual_seed(0)
    C, heads = 16, 2
    mod = df.GlobalPyramidAttention(C, heads, (2, 4, 4), ((1, 4, 4), (2, 2, 2))).eval()
    x = torch.randn(1, 4, 16, 16, C)
    g = x.permute(0, 4, 1, 2, 3)
    fine = F.conv3d(g, mod.fine.weight, mod.fine.bias, stride=(2, 4, 4), groups=C)                 # (1, C, 2, 4, 4)
    c = F.conv3d(g, mod.coarse[0].weight, mod.coarse[0].bias, stride=(1, 4, 4), groups=C)
    c = F.relu(mod.coarse[1](c))
    coarse = F.conv3d(c, mod.coarse[3].weight, mod.coarse[3].bias, stride=(2, 2, 2), groups=C)     # (1, C, 2, 2, 2)
    ctx = mod.norm(torch.cat([fine.flatten(2), coarse.flatten(2)], 2).transpose(1, 2))             # (1, 40, C)
    q = mod.q(x.reshape(1, -1, C)).view(1, -1, heads, 8).transpose(1, 2)
    k, v = mod.kv(ctx).view(1, -1, 2, heads, 8).permute(2, 0, 3, 1, 4)
    ref = mod.proj((((q @ k.transpose(-2, -1)) * 8 ** -0.5).softmax(-1) @ v).transpose(1, 2).reshape(1, -1, C))
    torch.testing.assert_close(mod(x).reshape(1, -1, C), ref, atol=1e-5, rtol=1e-5)
    assert mod.pyramid_grids((4, 16, 16)) == [(2, 4, 4), (2, 2, 2)]
    assert mod(torch.randn(1, 3, 13, 9, C)).shape == (1, 3, 13, 9, C)   # grids that do not divide the kernels


@pytest.mark.parametrize("size", [(8, 112, 112), (5, 100, 90), (16, 128, 128)])
def test_any_input_size(size):
    m = nano().eval()
    T, H, W = size
    assert m(torch.randn(1, 3, T, H, W)).shape == (1, 5)


def test_paper_variant_at_112_and_odd_size_runs():
    torch.manual_seed(0)
    m = vidlab.create_model("dualformer_tiny", num_frames=8, img_size=112, num_classes=3,
                            embed_dims=(16, 32, 64, 128), num_heads=(1, 2, 4, 8), depths=(2, 2, 2, 2)).eval()
    assert m(torch.randn(1, 3, 8, 112, 112)).shape == (1, 3)
    assert m(torch.randn(1, 3, 6, 120, 100)).shape == (1, 3)   # 30x25 grid: not a multiple of the 7x7 window


def test_capture_kinds_shapes_and_equal_logits():
    m = nano().eval()
    x = torch.randn(1, 3, 8, 128, 128)
    with torch.no_grad():
        fast = m(x)
        with capture(m, kinds=["attention"]) as maps:
            slow = m(x)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)   # SDPA path == explicit softmax path
    expect = {"stages.0.blocks.0.attn.attention": (1, 1, 4096, 32),   # LW: each query over its 2x4x4 window
              "stages.0.blocks.1.attn.attention": (1, 1, 4096, 40),   # GP: 32 fine + 8 coarse pooled keys
              "stages.1.blocks.1.attn.attention": (1, 2, 1024, 40),
              "stages.2.blocks.1.attn.attention": (1, 4, 256, 32),    # fine level only
              "stages.3.blocks.1.attn.attention": (1, 8, 64, 64)}     # last stage: plain global attention
    assert len(maps) == 8
    for k, shape in expect.items():
        assert tuple(maps[k].shape) == shape, k
    for v in maps.values():
        torch.testing.assert_close(v.sum(-1), torch.ones(v.shape[:-1]), atol=1e-4, rtol=0)
    # helpers put a query's weights back on the grids
    a = maps["stages.0.blocks.0.attn.attention"]
    loc = df.local_attention_to_grid(a, (4, 32, 32), (2, 4, 4), query=5 * 32 + 9)
    assert loc.shape == (1, 1, 4, 32, 32) and torch.allclose(loc.sum(), torch.tensor(1.0), atol=1e-5)
    assert loc[0, 0, :2, 4:8, 8:12].sum() > 0.999                           # its window: rows 4-7, cols 8-11
    gp = m.stages[0].blocks[1].attn
    fine, coarse = df.global_attention_to_grid(maps["stages.0.blocks.1.attn.attention"],
                                               gp.pyramid_grids((4, 32, 32)), query=0)
    assert fine.shape == (1, 1, 2, 4, 4) and coarse.shape == (1, 1, 2, 2, 2)


def test_padded_window_keys_get_zero_weight():
    m = nano().eval()
    with torch.no_grad(), capture(m, include="stages.0.blocks.0.*") as maps:
        m(torch.randn(1, 3, 6, 120, 120))            # stage-0 grid (3, 30, 30): windows (2, 4, 4) need padding
    a = maps["stages.0.blocks.0.attn.attention"]     # (1, 1, 2700, 32)
    assert a.shape == (1, 1, 3 * 30 * 30, 32)
    last = df.local_attention_to_grid(a, (3, 30, 30), (2, 4, 4), query=3 * 30 * 30 - 1)
    assert torch.allclose(last.sum(), torch.tensor(1.0), atol=1e-5)   # all its weight on real tokens
    row = a[0, 0, -1].view(2, 4, 4)                  # last window: d 2-3 (3 padded), h/w 28-31 (30, 31 padded)
    assert row[1].sum() == 0 and row[:, 2:].sum() == 0 and row[:, :, 2:].sum() == 0


def test_gradients_reach_every_parameter():
    m = nano().train()
    m(torch.randn(2, 3, 8, 64, 64)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_state_dict_round_trip(tmp_path):
    m = nano().eval()
    x = torch.randn(1, 3, 8, 128, 128)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    m2 = vidlab.create_model("dualformer_nano", num_classes=5, img_size=128, pretrained=tmp_path / "w.pt").eval()
    torch.testing.assert_close(m(x), m2(x), atol=0, rtol=0)


def test_bad_input_raises_clear_error():
    m = nano()
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\)"):
        m(torch.randn(1, 8, 128, 128, 3))
    with pytest.raises(ValueError, match="float"):
        m(torch.zeros(1, 3, 8, 64, 64, dtype=torch.uint8))


def test_nano_loss_falls():
    """A learnable signal: class 1 brightens the red channel of the second half of the clip (needs time order)."""
    torch.manual_seed(0)
    m = vidlab.create_model("dualformer_nano", num_classes=2, img_size=48)
    x = torch.randn(8, 3, 8, 48, 48) * 0.5
    y = torch.tensor([0, 1] * 4)
    x[y == 1, 0, 4:] += 1.0
    x[y == 0, 0, :4] += 1.0
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# --- official checkpoints ----------------------------------------------------------------------------------------

def official_layout(dims, heads, depths, fine, coarse, num_classes, k1=7, flat=False):
    """An official-layout state dict (key names and shapes from docs/architectures.md §3.5, not from the official code).

    fine[s]: fine kernel per stage ((1,1,1) = plain global); coarse[s]: the lr.3 kernel or None."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g) * 0.05   # noqa: E731
    sd = {}
    for s, C in enumerate(dims):
        cin = 3 if s == 0 else dims[s - 1]
        sd[f"backbone.patch_embeds.{s}.proj.weight"] = r(C, cin, *((2, 4, 4) if s == 0 else (1, 2, 2)))
        sd[f"backbone.patch_embeds.{s}.proj.bias"] = r(C)
        sd[f"backbone.patch_embeds.{s}.norm.weight"], sd[f"backbone.patch_embeds.{s}.norm.bias"] = 1 + r(C), r(C)
        sd[f"backbone.pos_block.{s}.proj.0.weight"], sd[f"backbone.pos_block.{s}.proj.0.bias"] = r(C, 1, 3, 3, 3), r(C)
        for j in range(depths[s]):
            p = f"backbone.blocks.{s}.{j}."
            for n in ("norm1", "norm2"):
                sd[p + n + ".weight"], sd[p + n + ".bias"] = 1 + r(C), r(C)
            sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = r(4 * C, C), r(4 * C)
            sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = r(C, 4 * C), r(C)
            sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = r(C, C), r(C)
            if j % 2 == 0:
                sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"] = r(3 * C, C), r(3 * C)
                continue
            sd[p + "attn.q.weight"], sd[p + "attn.q.bias"] = r(C, C), r(C)
            sd[p + "attn.kv.weight"], sd[p + "attn.kv.bias"] = r(2 * C, C), r(2 * C)
            if math.prod(fine[s]) > 1:
                sd[p + "attn.sr.weight"], sd[p + "attn.sr.bias"] = r(C, 1, *fine[s]), r(C)
                sd[p + "attn.norm.weight"], sd[p + "attn.norm.bias"] = 1 + r(C), r(C)
            if coarse[s] is not None:
                sd[p + "attn.lr.0.weight"], sd[p + "attn.lr.0.bias"] = r(C, 1, 1, k1, k1), r(C)
                sd[p + "attn.lr.1.weight"], sd[p + "attn.lr.1.bias"] = 1 + r(C), r(C)
                sd[p + "attn.lr.1.running_mean"], sd[p + "attn.lr.1.running_var"] = r(C), 1 + r(C).abs()
                sd[p + "attn.lr.1.num_batches_tracked"] = torch.tensor(100)
                sd[p + "attn.lr.3.weight"], sd[p + "attn.lr.3.bias"] = r(C, 1, *coarse[s]), r(C)
    sd["backbone.norm.weight"], sd["backbone.norm.bias"] = 1 + r(dims[-1]), r(dims[-1])
    sd["cls_head.fc_cls.weight"], sd["cls_head.fc_cls.bias"] = r(num_classes, dims[-1]), r(num_classes)
    return sd if flat else {"meta": {"mmaction_version": "0.15.0"}, "state_dict": sd}


TINY_GEOMETRY = dict(fine=[(2, 8, 8), (2, 4, 4), (2, 2, 2), (1, 1, 1)], coarse=[(4, 2, 2), (4, 1, 1), None, None])


def test_official_tiny_layout_has_the_documented_308_tensors_and_fits():
    ckpt = official_layout((64, 128, 256, 512), (2, 4, 8, 16), (2, 2, 10, 4), num_classes=400, **TINY_GEOMETRY)
    assert len(ckpt["state_dict"]) == 308
    with torch.device("meta"):
        m = vidlab.create_model("dualformer_tiny", num_frames=32, img_size=224)
    conv = df.checkpoint_filter_fn(ckpt, m)
    own = m.state_dict()
    assert set(conv) == set(own)
    assert all(tuple(conv[k].shape) == tuple(own[k].shape) for k in own)


@pytest.mark.parametrize("flat", [False, True])
def test_official_checkpoint_converts_and_loads_strictly(tmp_path, flat):
    dims, heads, depths = (16, 32, 64, 128), (1, 2, 4, 8), (2, 2, 2, 2)
    ckpt = official_layout(dims, heads, depths, num_classes=7, flat=flat, **TINY_GEOMETRY)
    if flat:   # the repo's teacher loader reads unwrapped files with the prefixes in place
        ckpt = {"module." + k: v for k, v in ckpt.items()}
    torch.save(ckpt, tmp_path / "official.pth")
    m = vidlab.create_model("dualformer_tiny", num_classes=7, num_frames=32, img_size=224, embed_dims=dims,
                            num_heads=heads, depths=depths, pretrained=tmp_path / "official.pth")
    sd = ckpt if flat else ckpt["state_dict"]
    pre = "module." if flat else ""
    assert torch.equal(m.stages[0].blocks[1].attn.fine.weight, sd[pre + "backbone.blocks.0.1.attn.sr.weight"])
    assert torch.equal(m.stages[1].blocks[1].attn.coarse[1].running_var,
                       sd[pre + "backbone.blocks.1.1.attn.lr.1.running_var"])
    assert torch.equal(m.stages[2].peg.proj.weight, sd[pre + "backbone.pos_block.2.proj.0.weight"])
    assert torch.equal(m.head.weight, sd[pre + "cls_head.fc_cls.weight"])


def test_official_checkpoint_into_wrong_build_size_says_why(tmp_path):
    dims, heads, depths = (16, 32, 64, 128), (1, 2, 4, 8), (2, 2, 2, 2)
    torch.save(official_layout(dims, heads, depths, num_classes=7, **TINY_GEOMETRY), tmp_path / "o.pth")
    with pytest.raises(CheckpointError, match="num_frames=32, img_size=224"):
        vidlab.create_model("dualformer_tiny", num_classes=7, num_frames=8, img_size=224, embed_dims=dims,
                            num_heads=heads, depths=depths, pretrained=tmp_path / "o.pth")


def test_image_weights_inflate(tmp_path):
    """A synthetic image-DualFormer state dict (2D kernels, official names) inflates as the release does."""
    dims, heads, depths = (16, 32, 64, 128), (1, 2, 4, 8), (2, 2, 2, 2)
    sd = official_layout(dims, heads, depths, num_classes=1000, flat=True,
                         fine=[(8, 8), (4, 4), (2, 2), (1,)], coarse=[(2, 2), (1, 1), None, None], k1=7)
    img = {}
    for k, v in sd.items():
        k = k.replace("backbone.", "").replace("cls_head.fc_cls.", "head.")
        if k.startswith("patch_embeds.") and k.endswith("proj.weight"):
            v = v[:, :, 0]                                         # 2D stem / merging kernels (O, I, kh, kw)
        elif k.startswith("pos_block.") and k.endswith("weight"):
            v = v[:, :, 0]                                         # (C, 1, 3, 3)
        elif k.endswith("attn.lr.0.weight"):
            v = v[:, :, 0]                                         # (C, 1, 7, 7)
        elif k.endswith("attn.sr.weight") and v.ndim == 5:
            v = v[:, :, 0]
        img[k] = v
    torch.save({"model": img}, tmp_path / "imagenet.pth")
    m = vidlab.create_model("dualformer_tiny", num_classes=10, num_frames=32, img_size=224, embed_dims=dims,
                            num_heads=heads, depths=depths)
    head_before = m.head.weight.clone()
    report = df.load_image_weights(m, tmp_path / "imagenet.pth")
    assert report["skipped"] == ["head.weight", "head.bias"] and not report["unexpected"]
    assert report["missing"] == ["head.weight", "head.bias"]                      # re-initialised classifier
    stem2d = img["patch_embeds.0.proj.weight"]
    torch.testing.assert_close(m.stages[0].embed.proj.weight, stem2d.unsqueeze(2).repeat(1, 1, 2, 1, 1) / 2)
    torch.testing.assert_close(m.stages[0].blocks[1].attn.fine.weight,
                               img["blocks.0.1.attn.sr.weight"].unsqueeze(2).repeat(1, 1, 2, 1, 1) / 2)
    assert m.stages[0].blocks[1].attn.coarse[0].weight.shape == (16, 1, 1, 7, 7)
    assert torch.all(m.stages[0].blocks[1].attn.coarse[3].weight == 1 / 16)       # (4, 2, 2) average pool
    assert torch.all(m.stages[1].blocks[1].attn.coarse[3].weight == 1 / 4)        # (4, 1, 1)
    assert torch.equal(m.head.weight, head_before)                                 # classifier untouched


def test_paper_variants_default_to_the_paper_input():
    """Defaults = the paper's and the official configs' input, 32x224^2: the official parameter counts and an
    official checkpoint load without any size argument."""
    for name, (_, total) in OFFICIAL.items():
        with torch.device("meta"):
            m = vidlab.create_model(name)
        assert (m.cfg.num_frames, m.cfg.img_size) == (32, 224) and not m.cfg.pyramid_pad
        assert count_params(m) == total, name
        assert vidlab.model_info(name)["input"].startswith("32x224x224")


def test_released_mmcv_file_variants_load(tmp_path):
    """What a released mmcv file may carry: 'meta' and 'optimizer' beside 'state_dict', fp16 tensors, a DDP
    'module.' before 'backbone.'. All load (upcast); a non-tensor inside the state dict is refused by name."""
    dims, heads, depths = (16, 32, 64, 128), (1, 2, 4, 8), (2, 2, 2, 2)
    sd = official_layout(dims, heads, depths, num_classes=7, **TINY_GEOMETRY)["state_dict"]
    half = {"module." + k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save({"meta": {"epoch": 30}, "state_dict": half, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "fp16.pth")
    m = vidlab.create_model("dualformer_tiny", num_classes=7, embed_dims=dims, num_heads=heads, depths=depths,
                            pretrained=tmp_path / "fp16.pth")
    w = m.stages[0].blocks[1].attn.fine.weight
    assert w.dtype == torch.float32 and torch.equal(w, sd["backbone.blocks.0.1.attn.sr.weight"].half().float())
    assert m.stages[1].blocks[1].attn.coarse[1].num_batches_tracked.item() == 100
    with pytest.raises(CheckpointError, match=r"ema_backbone \(dict\)"):
        df.checkpoint_filter_fn(dict(sd, ema_backbone={"decay": 0.999}), m)


def _released_gp_attention(mod, x):
    """GP-MSA as the release computes it (sail-sg/dualformer GPAttention.forward): plain strided Conv3d that
    drop the rows past the last whole kernel, then attention. x (B, D, H, W, C)."""
    B, D, H, W, C = x.shape
    nh, hd = mod.num_heads, C // mod.num_heads
    g = x.permute(0, 4, 1, 2, 3)
    conv = lambda m, t: F.conv3d(t, m.weight, m.bias, stride=m.kernel_size, groups=C)   # noqa: E731
    fine = conv(mod.fine, g)
    coarse = conv(mod.coarse[3], F.relu(mod.coarse[1](conv(mod.coarse[0], g))))
    ctx = mod.norm(torch.cat([fine.flatten(2), coarse.flatten(2)], 2).transpose(1, 2))
    q = mod.q(x.reshape(B, -1, C)).view(B, -1, nh, hd).transpose(1, 2)
    k, v = mod.kv(ctx).view(B, -1, 2, nh, hd).permute(2, 0, 3, 1, 4)
    out = (((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(-1) @ v).transpose(1, 2).reshape(B, -1, C)
    return mod.proj(out).view(B, D, H, W, C), ctx.shape[1]


def test_pyramid_floors_like_the_release_at_8x128x64_and_pad_is_an_option():
    """An 8x128x64 clip: the stage-0 grid (4, 32, 16) is not a multiple of the coarse level's (1, 7, 7) step.
    Default = the release (4 of 32 rows and 2 of 16 columns never reach the coarse level); pyramid_pad=True
    zero-pads to (35, 21) instead and gives another function."""
    torch.manual_seed(0)
    kw = dict(num_classes=7, num_frames=8, img_size=128, embed_dims=(16, 32, 64, 128), num_heads=(1, 2, 4, 8),
              depths=(2, 2, 2, 2))
    m = vidlab.create_model("dualformer_tiny", **kw).eval()
    gp = m.stages[0].blocks[1].attn
    assert gp.coarse[0].kernel_size == (1, 7, 7) and gp.coarse[3].kernel_size == (1, 1, 1)
    assert gp.pyramid_grids((4, 32, 16)) == [(4, 8, 4), (4, 4, 2)]                # floor: 128 + 32 keys
    x = torch.randn(2, 4, 32, 16, 16)
    with torch.no_grad():
        ref, keys = _released_gp_attention(gp, x)
        torch.testing.assert_close(gp(x), ref, atol=1e-5, rtol=1e-5)
    assert keys == 128 + 32
    padded = vidlab.create_model("dualformer_tiny", pyramid_pad=True, **kw).eval()
    padded.load_state_dict(m.state_dict())                                       # same weights, same keys
    assert padded.stages[0].blocks[1].attn.pyramid_grids((4, 32, 16)) == [(4, 8, 4), (4, 5, 3)]
    clip = torch.randn(1, 3, 8, 128, 64)
    with torch.no_grad():
        a, b = m(clip), padded(clip)
    assert a.shape == b.shape == (1, 7) and (a - b).abs().max() > 1e-4           # padding changes the function
    with torch.no_grad():                                                        # but not where nothing is left
        s = torch.randn(1, 3, 8, 224, 224)
        big = vidlab.create_model("dualformer_tiny", **dict(kw, img_size=224)).eval()
        big_pad = vidlab.create_model("dualformer_tiny", pyramid_pad=True, **dict(kw, img_size=224)).eval()
        big_pad.load_state_dict(big.state_dict())
        torch.testing.assert_close(big(s), big_pad(s))                             # 224: every grid divides
