"""Each architecture's signature maps reduce to heat over the clip (B, T, H, W)."""
import pytest
import torch

import vidlab
from vidlab.viz import scores
from vidlab.viz.signature import (MIN_CELLS, candidate_maps, cascading_randomisation, choose_readings, forward_order,
                                  infer_grid, last_5d_layer, signature_maps)

# the mechanisms each architecture's default readings show
EXPECTED = {
    "video_focalnet_nano": {"modulator"},
    "video_mobileformer_nano": {"token attention"},
    "dualformer_nano": {"local attention", "global attention"},
    "ila_nano": {"alignment"},
    "ila_token_nano": {"alignment"},
    "sifa_nano": {"offsets", "motion map"},
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
    assert EXPECTED[name] == {v["mechanism"] for v in maps.values()}, f"{name}: got {list(maps)}"
    for k, v in maps.items():
        assert v["heat"].shape == (2, 8, 64, 64), (k, v["heat"].shape)
        assert torch.isfinite(v["heat"]).all()
        assert v["polarity"] == "high"
    if name == "ila_nano":          # the points drawn at pixel resolution carry the points themselves
        points = [v["points"] for v in candidate_maps(model, clip).values() if "points" in v]
        assert points and all(p.shape == (2, 8, 2) for p in points)


def test_grad_cam_layer_only_for_conv_maps():
    x = torch.randn(1, 3, 8, 64, 64)
    assert last_5d_layer(vidlab.create_model("r2plus1d_nano", num_classes=3, img_size=64), x) is not None
    assert last_5d_layer(vidlab.create_model("vit_joint_nano", num_classes=3, img_size=64), x) is None


def test_candidates_cover_layers_signs_and_tokens():
    torch.manual_seed(0)
    model = vidlab.create_model("video_mobileformer_nano", num_classes=5, num_frames=8, img_size=32)
    c = candidate_maps(model, torch.randn(1, 3, 8, 32, 32))
    labels = list(c)
    # both bridges, per token and the mean, each also read with low values marking
    assert any(k.startswith("Mobile->Former attention of token 2") for k in labels)
    assert any(k.startswith("Former->Mobile attention, mean of tokens") for k in labels)
    low = [k for k in labels if k.endswith("(low)")]
    assert low and all(torch.equal(c[k]["heat"], -c[k[: -len(" (low)")]]["heat"]) for k in low)
    # the default reading is at the last bridge with at least 8x8 cells (a 32-px clip: 8x8 up to block 2)
    (default,) = signature_maps(model, torch.randn(1, 3, 8, 32, 32))
    assert default.endswith("blocks.2.mobile_to_former") and c[default]["grid"] == (8, 8)


def test_local_window_attention_received_sums_each_window():
    """Every query's weights over its window sum to 1, so the attention a window's tokens receive sums to the
    number of queries in it; a grid that the windows do not divide keeps only its real tokens."""
    from vidlab.viz.signature import _window_received
    for grid, window in (((4, 8, 8), (2, 4, 4)), ((3, 6, 5), (2, 4, 4))):
        D, H, W = grid
        n_w = window[0] * window[1] * window[2]
        attn = torch.rand(2, D * H * W, n_w)
        # padded keys of a partial window get no weight (the model masks them)
        attn = attn / attn.sum(-1, keepdim=True)
        recv = _window_received(attn, grid, window)
        assert recv.shape == (2, D, H, W)
        if grid == (4, 8, 8):
            blocks = recv.view(2, 2, 2, 2, 4, 2, 4).sum((2, 4, 6))
            assert torch.allclose(blocks, torch.full_like(blocks, float(n_w)), atol=1e-4)


def test_choose_readings_uses_the_clips_it_is_given_and_needs_8x8_cells():
    """A reading is picked per mechanism on the given clips, only among maps with >= 8x8 cells a side; a mask that
    follows one map's maximum makes that map (or one that agrees with it) the choice."""
    torch.manual_seed(0)
    model = vidlab.create_model("sifa_nano", num_classes=5, num_frames=8, img_size=64).eval()
    clip = torch.randn(1, 3, 8, 64, 64)
    target = "motion map · layer2.1.sifa"
    heat = candidate_maps(model, clip)[target]["heat"][0]
    masks = torch.zeros(8, 64, 64, dtype=torch.bool)
    for t in range(8):
        i = int(heat[t].flatten().argmax())
        masks[t].view(-1)[i] = True
    best = choose_readings(model, [(clip[0], 0, masks)])
    assert set(best) == {"offsets", "motion map"}
    # every frame hits but the last, which has no next frame (a zero map: a tie over the frame, chance)
    assert best["motion map"]["reading"] == target and 7 / 8 <= best["motion map"]["pointing"] < 0.9
    # untrained offsets start at zero: a flat map, which scores chance (a one-pixel mask: almost never)
    assert best["offsets"]["pointing"] < 0.01
    assert all(min(b["grid"]) >= MIN_CELLS for b in best.values())
    assert signature_maps(model, clip, best).keys() == {b["reading"] for b in best.values()}
    with pytest.raises(KeyError, match="records no reading"):
        signature_maps(model, clip, ["modulator norm · nowhere"])


def test_cascading_randomisation_decorrelates_a_map_at_its_own_block():
    torch.manual_seed(0)
    model = vidlab.create_model("video_focalnet_nano", num_classes=5, num_frames=8, img_size=32)
    x = torch.randn(1, 3, 8, 32, 32)
    order = forward_order(model, x)
    assert order[0].startswith("patch_embed") and order[-1] == "head" and "layers.0" in order
    table = cascading_randomisation(model, x)
    corr = dict(zip(table["randomised"], table["rank_corr"]))
    assert corr["head"] == pytest.approx(1.0) and corr["layers.1"] == pytest.approx(1.0)   # after the map: no effect
    assert abs(corr["layers.0"]) < 0.5                                                    # its own block: gone
    # the model itself is unchanged
    again = cascading_randomisation(model, x)
    assert again["rank_corr"].tolist() == table["rank_corr"].tolist()
