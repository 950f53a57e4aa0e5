"""ILA (vidlab.models.ila): sizes, exact parameter counts, capture kinds, official/CLIP weight layouts, training."""
import pytest
import torch

from vidlab.errors import CheckpointError
from vidlab.models import create_model, model_info
from vidlab.models.ila import alignment_mask, load_clip_weights, merge_pairs, read_clip_state_dict
from vidlab.viz import capture

NANO = dict(num_classes=5, num_frames=8, img_size=128, patch_size=16)   # 8x8 patches, CLIP's 16 px


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The test machine is shared: two spinning OpenMP threads per process make these tests 5-10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return create_model("ila_nano", **NANO)


def clip_batch(b=2, t=8, s=128):
    return torch.randn(b, 3, t, s, s)


# ---------------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("name,kw,total,visual,ila,mit", [
    ("ila_vit_b32", {}, 201_596_977, 87_849_216, 40_465_200, 3_156_480),
    ("ila_vit_b16", {}, 199_940_401, 86_192_640, 40_465_200, 3_156_480),
    ("ila_vit_l14", {}, 567_749_473, 303_966_208, 118_077_024, 7_094_016),
    ("ila_vit_l14", dict(img_size=336, num_frames=16), 568_083_297, 304_293_888, 118_077_024, 7_100_160),
])
def test_paper_params_exact(name, kw, total, visual, ila, mit):
    """docs/architectures.md §4.5: whole K400 model as released (visual + ILA + MIT + text tower + prompts)."""
    with torch.device("meta"):
        m = create_model(name, head="text", **kw)
    g = m.param_counts()
    assert (g["clip_visual"], g["ila"], g["mit"], g["total"]) == (visual, ila, mit, total)
    assert model_info(name)["params_official"] == (total if not kw else model_info(name)["params_official"])


def test_b32_16f_and_ssv2_and_frozen_counts():
    with torch.device("meta"):
        m16 = create_model("ila_vit_b32", num_frames=16, head="text")
        ssv2 = create_model("ila_vit_b16", num_classes=174, trunk="ssv2")        # SSV2 branch, linear head
        frozen = create_model("ila_vit_b32", head="text", freeze_backbone=True)
    assert m16.param_counts()["mit"] == 3_156_480 + 4_096                          # only the MIT changes
    assert ssv2.param_counts()["total"] == 167_432_158
    text = frozen.param_counts()
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    # released optimiser: ILA + MIT = 43,621,680; the prompt generator also requires grad (§4.7c)
    assert trainable == 43_621_680 + text["prompts"]


@pytest.mark.parametrize("name", ["ila_vit_b32", "ila_vit_b16", "ila_vit_l14"])
def test_paper_variants_build_on_meta(name):
    with torch.device("meta"):
        m = create_model(name, num_classes=7)
        assert m.head.fc.out_features == 7 and len(m.visual.transformer.resblocks) in (12, 24)
        # meta tensors run through Python decompositions (slow): the shape path is checked on a 2-layer copy
        y = create_model(name, num_classes=7, layers=2)(torch.randn(1, 3, 8, 224, 224))
    assert y.shape == (1, 7)


def test_nano_forward_shapes_and_aux(nano):
    y, aux = nano(clip_batch(), return_aux=True)
    assert y.shape == (2, 5)
    assert len(aux["alignment_losses"]) == nano.cfg.layers
    assert torch.isclose(aux["alignment_loss"], torch.stack(aux["alignment_losses"]).sum())
    assert nano.forward_features(clip_batch()).shape == (2, nano.cfg.embed_dim)


def test_alignment_loss_weight_scales_only_the_aux_loss():
    torch.manual_seed(0)
    x = clip_batch(s=32)
    out = {}
    for w in (1.0, 0.25, 0.0):
        torch.manual_seed(0)
        m = create_model("ila_nano", **{**NANO, "img_size": 32, "patch_size": 8, "align_loss_weight": w}).eval()
        out[w] = m(x, return_aux=True)
    for w in (0.25, 0.0):
        torch.testing.assert_close(out[w][0], out[1.0][0])
        torch.testing.assert_close(out[w][1]["alignment_loss"], w * out[1.0][1]["alignment_loss"])
        assert all(torch.equal(a, b) for a, b in zip(out[w][1]["alignment_losses"], out[1.0][1]["alignment_losses"]))


def test_token_mode_runs_and_differs():
    torch.manual_seed(0)
    res = create_model("ila_nano", **NANO)
    torch.manual_seed(0)
    tok = create_model("ila_nano", ila_mode="token", **NANO)
    assert not any(k.startswith("skip_") for k in dict(tok.visual.transformer.resblocks[0].named_children()))
    assert tok.param_counts()["total"] < res.param_counts()["total"]
    x = clip_batch(1)
    with capture(tok, kinds=["attention"]) as maps:
        tok.eval()(x)
    a = maps["visual.transformer.resblocks.0.attn.attention"]
    assert a.shape == (8, 3, 1 + 64 + 1, 1 + 64 + 1)      # the MI token joins the spatial attention


def test_bad_input_raises(nano):
    with pytest.raises(ValueError, match=r"expected a clip \(B, 3, T, H, W\)"):
        nano(torch.randn(2, 8, 128, 128, 3))
    with pytest.raises(ValueError, match="T=8"):
        nano(torch.randn(1, 3, 4, 128, 128))
    with pytest.raises(ValueError, match="frames of"):
        nano(torch.randn(1, 3, 8, 96, 96))
    with pytest.raises(ValueError, match="ila_mode"):
        create_model("ila_nano", ila_mode="tokens", **NANO)
    with pytest.raises(ValueError, match="4x4"):
        create_model("ila_nano", num_classes=5, img_size=24)     # 3x3 patches of 8 px


# ---------------------------------------------------------------------------------------------------- ILA pieces
def test_mask_shape_values():
    m = alignment_mask(torch.tensor([[0.0, 0.0], [0.75, -0.75]]), 7, 7)
    assert m.shape == (2, 7, 7)
    g = torch.linspace(-1, 1, 7)
    omega = lambda d: torch.where(d.abs() <= 0.25, torch.ones_like(d), (1 - 1.5 * (d.abs() - 0.25)).clamp(min=0))
    assert torch.allclose(m[1], omega(g - (-0.75))[:, None] * omega(g - 0.75)[None, :], atol=1e-6)
    assert m[0, 3, 3] == 1 and m[0, 0, 0] == 0            # flat top at the point, zero far away


def test_merge_pairs_rule():
    pre = torch.arange(3.0).view(1, 3, 1)           # pairs (0,1), (1,2), (2,3): "previous" sides
    cur = 10 + torch.arange(3.0).view(1, 3, 1)
    out = merge_pairs(pre, cur).flatten().tolist()
    assert out == [0.0, (1 + 10) / 2, (2 + 11) / 2, 12.0]


def test_block_equals_clip_at_init():
    """Zero-initialised skips and point head: a fresh residual-mode block is CLIP's block, points at the centre."""
    torch.manual_seed(0)
    m = create_model("ila_nano", **NANO).eval()
    blk = m.visual.transformer.resblocks[0]
    x = torch.randn(16, 65, 192)
    y, _ = blk(x)
    ref = x + blk.attn(blk.ln_1(x))
    ref = ref + blk.mlp(blk.ln_2(ref))
    assert torch.allclose(y, ref, atol=1e-6)
    with capture(m, kinds=["alignment_points"]) as maps:
        m(clip_batch(1))
    assert all(torch.equal(v, torch.zeros_like(v)) for v in maps.values())


def test_capture_kinds(nano):
    nano.eval()
    with capture(nano) as maps:
        nano(clip_batch(2))
    L = nano.cfg.layers
    for i in range(L):
        p = f"visual.transformer.resblocks.{i}"
        assert maps[f"{p}.ila.alignment_points"].shape == (2, 8, 2)
        assert maps[f"{p}.ila.pair_points"].shape == (2, 7, 4)
        assert maps[f"{p}.ila.alignment_masks"].shape == (2, 8, 8, 8)
        assert maps[f"{p}.attn.attention"].shape == (16, 3, 65, 65)
        assert maps[f"{p}.ila.alignment_points"].abs().max() < 0.75 + 1e-6
    assert torch.allclose(maps[f"{p}.attn.attention"].sum(-1), torch.ones(16, 3, 65), atol=1e-5)
    with capture(nano, kinds=["alignment_points"]) as maps:
        nano(clip_batch(1))
    assert len(maps) == L and all(k.endswith("alignment_points") for k in maps)


def test_training_masks_jitter_and_decay(nano):
    ila = nano.visual.transformer.resblocks[0].ila
    p = torch.zeros(1, 2)
    ila.train()
    soft = ila.masks(p)
    ila.eval()
    hard = ila.masks(p)
    assert not torch.allclose(soft, hard)                 # training averages 9 jittered masks
    before = ila.jitter_offsets.clone()
    nano.align_decay()
    assert torch.allclose(ila.jitter_offsets, before / 2)
    ila.jitter_offsets.copy_(before)


# ---------------------------------------------------------------------------------------------------- training
def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    for mode in ("residual", "token"):
        m = create_model("ila_nano", ila_mode=mode, num_classes=5, num_frames=4, img_size=64).train()
        # zero-init layers block each other's gradients at step 0 (skip W_a/W_i and fc2): nudge them once
        with torch.no_grad():
            for n, p in m.named_parameters():
                if p.abs().sum() == 0 and p.ndim > 1:
                    p.normal_(0, 0.02)
        logits, aux = m(clip_batch(2, 4, 64), return_aux=True)
        (logits.logsumexp(-1).mean() + aux["alignment_loss"]).backward()
        dead = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not dead, f"{mode}: no gradient for {dead}"


def test_nano_loss_falls():
    torch.manual_seed(0)
    m = create_model("ila_nano", num_classes=2, num_frames=4, img_size=64, layers=2, width=96, heads=2)
    x = torch.randn(4, 3, 4, 64, 64)
    y = torch.arange(4) % 2
    x[y == 1, 0] += 1.0                                   # a learnable signal
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        logits, aux = m(x, return_aux=True)
        loss = torch.nn.functional.cross_entropy(logits, y) + aux["alignment_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_state_dict_round_trip(nano, tmp_path):
    nano.eval()
    path = tmp_path / "nano.pt"
    torch.save(nano.state_dict(), path)
    fresh = create_model("ila_nano", **NANO, pretrained=path).eval()
    x = clip_batch(1)
    assert torch.equal(nano(x), fresh(x))


# ---------------------------------------------------------------------------------------------------- weights
def _official_block_keys(i, D, C=64, P=32, ssv2=False):
    """Official key names and shapes of one ILA block (docs/architectures.md §4.6), written from the documentation."""
    b = f"visual.transformer.resblocks.{i}."
    bn = lambda k, c: {f"{k}.weight": (c,), f"{k}.bias": (c,), f"{k}.running_mean": (c,), f"{k}.running_var": (c,),
                       f"{k}.num_batches_tracked": ()}
    ks = {"attn.in_proj_weight": (3 * D, D), "attn.in_proj_bias": (3 * D,), "attn.out_proj.weight": (D, D),
          "attn.out_proj.bias": (D,), "ln_1.weight": (D,), "ln_1.bias": (D,), "mlp.c_fc.weight": (4 * D, D),
          "mlp.c_fc.bias": (4 * D,), "mlp.c_proj.weight": (D, 4 * D), "mlp.c_proj.bias": (D,), "ln_2.weight": (D,),
          "ln_2.bias": (D,), "message_fc.weight": (D, D), "message_fc.bias": (D,), "message_ln.weight": (D,),
          "message_ln.bias": (D,), "temporal_skip_fc.weight": (D, D), "temporal_skip_fc.bias": (D,),
          "temporal_skip_align_fc.weight": (D, D), "temporal_skip_align_fc.bias": (D,)}
    a = "message_attn."
    if ssv2:
        ks.update({a + "interactive_block.0.weight": (C, 2 * D, 3, 3), a + "interactive_block.0.bias": (C,),
                   a + "interactive_block.3.weight": (C, C, 3, 3), a + "interactive_block.3.bias": (C,)})
        ks.update(bn(a + "interactive_block.1", C)); ks.update(bn(a + "interactive_block.4", C))
    else:
        ib = a + "interactive_block.0."
        ks.update({ib + "depthwise_conv.0.weight": (2 * D, 1, 3, 3), ib + "depthwise_conv.0.bias": (2 * D,),
                   ib + "pointwise_conv.0.weight": (C, 2 * D, 1, 1), ib + "pointwise_conv.0.bias": (C,),
                   a + "interactive_block.1.weight": (C, C, 3, 3), a + "interactive_block.1.bias": (C,)})
        ks.update(bn(ib + "depthwise_conv.1", 2 * D)); ks.update(bn(ib + "pointwise_conv.1", C))
        ks.update(bn(a + "interactive_block.2", C))
    ks.update({a + "prediction_block.0.weight": (P, C, 3, 3), a + "prediction_block.0.bias": (P,),
               a + "prediction_block.4.weight": (P, P, 3, 3), a + "prediction_block.4.bias": (P,),
               a + "prediction_block.10.weight": (P // 2, P // 2, 1), a + "prediction_block.10.bias": (P // 2,),
               a + "prediction_block.12.weight": (4, P // 4, 1), a + "prediction_block.12.bias": (4,),
               a + "conv.weight": (C // 2, C // 2, 3, 1, 1), a + "conv.bias": (C // 2,),
               a + "fc.weight": (D, C // 2), a + "fc.bias": (D,)})
    ks.update(bn(a + "prediction_block.1", P)); ks.update(bn(a + "prediction_block.5", P))
    return {b + k: v for k, v in ks.items()}


def _official_state_dict(layers=4, D=192, E=192, grid=8, T=8, K=5, text=False, ssv2=False, text_layers=1):
    shapes = {"visual.conv1.weight": (D, 3, 16, 16), "visual.class_embedding": (D,),
              "visual.positional_embedding": (grid * grid + 1, D), "visual.ln_pre.weight": (D,),
              "visual.ln_pre.bias": (D,), "visual.ln_post.weight": (D,), "visual.ln_post.bias": (D,),
              "visual.proj": (D, E), "mit.positional_embedding": (1, T, E)}
    for i in range(layers):
        shapes.update(_official_block_keys(i, D, ssv2=ssv2))
    mit = {"attn.in_proj_weight": (3 * E, E), "attn.in_proj_bias": (3 * E,), "attn.out_proj.weight": (E, E),
           "attn.out_proj.bias": (E,), "ln_1.weight": (E,), "ln_1.bias": (E,), "mlp.c_fc.weight": (4 * E, E),
           "mlp.c_fc.bias": (4 * E,), "mlp.c_proj.weight": (E, 4 * E), "mlp.c_proj.bias": (E,), "ln_2.weight": (E,),
           "ln_2.bias": (E,)}
    shapes.update({"mit.resblocks.0." + k: v for k, v in mit.items()})
    if ssv2:
        shapes.update({"mit.classify_head.0.weight": (E,), "mit.classify_head.0.bias": (E,),
                       "mit.classify_head.2.weight": (K, E), "mit.classify_head.2.bias": (K,)})
    if text:
        W = E
        shapes.update({"token_embedding.weight": (49408, W), "positional_embedding": (77, W), "ln_final.weight": (W,),
                       "ln_final.bias": (W,), "text_projection": (W, E), "logit_scale": (),
                       "prompts_visual_ln.weight": (D,), "prompts_visual_ln.bias": (D,), "prompts_visual_proj": (D, E),
                       "prompts_generator.norm.weight": (E,), "prompts_generator.norm.bias": (E,),
                       "prompts_generator.alpha": (E,)})
        for i in range(text_layers):
            shapes.update({f"transformer.resblocks.{i}." + k: v for k, v in mit.items()})
        for j in range(2):
            p = f"prompts_generator.decoder.{j}."
            shapes.update({p + "cross_attn.q_proj.weight": (E, E), p + "cross_attn.k_proj.weight": (E, E),
                           p + "cross_attn.v_proj.weight": (E, E), p + "cross_attn.proj.weight": (E, E),
                           p + "cross_attn.proj.bias": (E,), p + "norm1.weight": (E,), p + "norm1.bias": (E,),
                           p + "norm3.weight": (E,), p + "norm3.bias": (E,), p + "mlp.0.weight": (4 * E, E),
                           p + "mlp.0.bias": (4 * E,), p + "mlp.3.weight": (E, 4 * E), p + "mlp.3.bias": (E,)})
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randint(0, 5, s, generator=g) if k.endswith("num_batches_tracked")
                else torch.rand(s, generator=g) + 0.5 if k.endswith("running_var")
                else torch.randn(s, generator=g) * 0.05) for k, s in shapes.items()}


@pytest.mark.parametrize("layout", ["k400_text", "ssv2_linear"])
def test_official_checkpoint_converts_strictly(layout, tmp_path):
    ssv2 = layout == "ssv2_linear"
    sd = _official_state_dict(text=not ssv2, ssv2=ssv2)
    ckpt = {"model": sd, "optimizer": {}, "lr_scheduler": {}, "max_accuracy": 0.0, "epoch": 29}
    path = tmp_path / "ila_official.pth"
    torch.save(ckpt, path)
    kw = dict(trunk="ssv2") if ssv2 else dict(head="text", text_layers=1, text_width=192, text_heads=3)
    m = create_model("ila_nano", pretrained=path, **NANO, **kw).eval()     # strict: raises on any leftover
    own = m.state_dict()
    assert torch.equal(own["visual.transformer.resblocks.2.ila.point_head.fc2.weight"],
                       sd["visual.transformer.resblocks.2.message_attn.prediction_block.12.weight"])
    assert torch.equal(own["visual.transformer.resblocks.0.skip_aligned.weight"],
                       sd["visual.transformer.resblocks.0.temporal_skip_align_fc.weight"])
    with capture(m, kinds=["alignment_points"]) as maps:
        y = m(clip_batch(1))
    assert y.shape == (1, 5) and torch.isfinite(y).all()
    assert any(v.abs().sum() > 0 for v in maps.values())  # trained-looking point heads move the points


def test_official_checkpoint_missing_key_raises(tmp_path):
    sd = _official_state_dict(ssv2=True)
    sd.pop("visual.transformer.resblocks.1.message_fc.weight")
    torch.save({"model": sd}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="align_proj"):
        create_model("ila_nano", pretrained=tmp_path / "bad.pth", trunk="ssv2", **NANO)


def test_clip_weights_plain_and_torchscript(tmp_path):
    """CLIP image+text weights by name, from a plain state dict and from a TorchScript archive (read inertly)."""
    torch.manual_seed(0)
    m = create_model("ila_nano", head="text", text_layers=1, text_width=192, text_heads=3, **NANO)
    sd = {k: v for k, v in _official_state_dict(text=True).items()
          if not k.startswith(("mit.", "prompts_")) and ".message_" not in k and ".temporal_skip" not in k}
    torch.save(sd, tmp_path / "clip.pt")
    rep = load_clip_weights(m, tmp_path / "clip.pt")
    assert not rep["unexpected"]
    assert all(k.split(".")[0] in ("mit", "head") or ".align_" in k or ".ila." in k or ".skip_" in k
               for k in rep["missing"]), rep["missing"]
    assert torch.equal(m.visual.conv1.weight, sd["visual.conv1.weight"])
    assert torch.equal(m.head.text.token_embedding.weight, sd["token_embedding.weight"])

    class Holder(torch.nn.Module):       # a traced module holding CLIP-named tensors, in fp16 as OpenAI ships
        def __init__(self):
            super().__init__()
            self.visual = torch.nn.Module()
            self.visual.conv1 = torch.nn.Conv2d(3, 192, 16, 16, bias=False)
            self.visual.class_embedding = torch.nn.Parameter(torch.randn(192))
            self.logit_scale = torch.nn.Parameter(torch.tensor(4.6))

        def forward(self, x):
            return self.visual.conv1(x).flatten(2).mean(-1) + self.visual.class_embedding * self.logit_scale

    h = Holder().half()
    torch.jit.save(torch.jit.trace(h, torch.randn(1, 3, 16, 16).half()), tmp_path / "ViT-nano.pt")
    sd_ts = read_clip_state_dict(tmp_path / "ViT-nano.pt")
    assert set(sd_ts) == set(h.state_dict())
    assert all(torch.equal(sd_ts[k], v.float()) for k, v in h.state_dict().items())
    rep = load_clip_weights(m, tmp_path / "ViT-nano.pt")
    assert "visual.conv1.weight" in rep["loaded"] and "head.logit_scale" in rep["loaded"]
    assert torch.equal(m.visual.conv1.weight, h.visual.conv1.weight.float())


def test_released_ddp_fp16_checkpoint_loads(tmp_path):
    """ILA saves the DDP model ('module.' keys) and CLIP's Conv/Linear weights in fp16 when built on a GPU;
    both load (upcast), and a non-tensor entry in the state dict is refused by name."""
    from vidlab.models.ila import checkpoint_filter_fn
    sd = _official_state_dict(ssv2=True)
    half = {"module." + k: (v.half() if v.is_floating_point() and v.ndim >= 2 else v) for k, v in sd.items()}
    torch.save({"model": half, "optimizer": {}, "lr_scheduler": {}, "max_accuracy": 0.0, "epoch": 29},
               tmp_path / "ila_fp16.pth")
    m = create_model("ila_nano", pretrained=tmp_path / "ila_fp16.pth", trunk="ssv2", **NANO)   # strict
    w = m.state_dict()["visual.transformer.resblocks.1.align_proj.weight"]
    assert w.dtype == torch.float32
    assert torch.equal(w, sd["visual.transformer.resblocks.1.message_fc.weight"].half().float())
    with pytest.raises(CheckpointError, match=r"lr_scheduler \(dict\)"):
        checkpoint_filter_fn(dict(sd, lr_scheduler={"last_epoch": 3}), m)
