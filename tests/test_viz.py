import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from vidlab.viz import attribution as A
from vidlab.viz import plots, scores, widgets

matplotlib.use("Agg")


class FrameProbe(nn.Module):
    """Logits depend only on frame 2 through a small conv, so attributions must sit on frame 2."""

    def __init__(self, frame=2):
        super().__init__()
        self.frame = frame
        self.conv = nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        f = self.conv(x)                                   # (B, 4, T, H, W)
        mask = torch.zeros(f.shape[2], device=x.device)
        mask[self.frame] = 1
        f = torch.relu(f) * mask.view(1, 1, -1, 1, 1)
        return self.head(f.mean((2, 3, 4)) * f.shape[2])


@pytest.fixture()
def clip():
    torch.manual_seed(0)
    return torch.randn(1, 3, 4, 16, 16)


def test_integrated_gradients_and_frame_occlusion_find_the_frame(clip):
    m = FrameProbe().eval()
    ig = A.integrated_gradients(m, clip, target=1, steps=8, internal_batch_size=4)
    assert ig.shape == (1, 4, 16, 16)
    per_frame = ig.sum((2, 3))[0]
    assert per_frame[2] > 0 and torch.all(per_frame[[0, 1, 3]] == 0)
    occ = A.occlusion_frames(m, clip, target=1)
    assert occ.shape == (1, 4) and torch.all(occ[0, [0, 1, 3]] == 0) and occ[0, 2] != 0
    patches = A.occlusion_patches(m, clip, target=1, window=(1, 8, 8))
    assert patches.shape == (1, 4, 16, 16) and patches[0, [0, 1, 3]].abs().max() < 1e-5 < patches[0, 2].abs().max()


def test_grad_cam_3d_on_conv_and_token_layers(clip):
    m = FrameProbe().eval()
    cam = A.grad_cam_3d(m, clip, target=0, layer=m.conv)
    assert cam.shape == (1, 4, 16, 16) and cam.min() >= 0 and cam.max() <= 1 + 1e-6

    class TokenNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4))
            self.mix = nn.Linear(8, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)      # (B, N, C), t-major
            return self.head(self.mix(t).mean(1))

    tn = TokenNet()
    cam = A.grad_cam_3d(tn, clip, 1, tn.mix, to_5d=lambda y: A.tokens_to_5d(y, (2, 4, 4)))
    assert cam.shape == (1, 4, 16, 16)


def test_token_to_thw_mapping_matches_patch_embedding_order():
    """Token n of a (t, h, w) grid flattened by PatchEmbed3d must land at (n // (h*w), (n // w) % h, n % w)."""
    from vidlab.models.layers import PatchEmbed3d
    pe = PatchEmbed3d((2, 4, 4), embed_dim=1, flatten=True)
    x = torch.zeros(1, 3, 4, 8, 12)
    x[:, :, 2:4, 4:8, 8:12] = 1.0                       # the patch at grid (1, 1, 2)
    nn.init.constant_(pe.proj.weight, 1.0)
    nn.init.zeros_(pe.proj.bias)
    tokens = pe(x)                                      # (1, 2*2*3, 1)
    grid = A.tokens_to_5d(tokens, (2, 2, 3))[0, 0]
    assert grid.nonzero().tolist() == [[1, 1, 2]]
    with pytest.raises(ValueError, match="expected 2\\*2\\*2=8 tokens"):
        A.tokens_to_5d(tokens, (2, 2, 2))


def test_attention_rollout_follows_the_path():
    N = 1 + 8                                           # class token + 2x2x2 patches
    a1 = torch.eye(N)[None, None].clone()
    a1[0, 0, 0] = 0
    a1[0, 0, 0, 5] = 1.0                                # layer 1: cls reads token 5
    a2 = torch.eye(N)[None, None]
    roll = A.attention_rollout([a1, a2])
    assert roll.shape == (1, N, N) and torch.allclose(roll.sum(-1), torch.ones(1, N))
    rel = A.rollout_to_clip(roll, (2, 2, 2), (2, 2, 2))
    assert rel.shape == (1, 2, 2, 2)
    t, h, w = np.unravel_index(int(rel[0].argmax()), (2, 2, 2))
    assert (t, h, w) == np.unravel_index(4, (2, 2, 2))  # token 5 is patch 4 after the class token


def test_pointing_game_energy_and_baselines():
    masks = torch.zeros(3, 20, 20, dtype=torch.bool)
    masks[:, 5:10, 5:10] = True
    on = torch.zeros(3, 20, 20)
    on[:, 7, 7] = 1
    off = torch.zeros(3, 20, 20)
    off[:, 18, 18] = 1
    assert scores.pointing_game(on, masks) == 1.0 and scores.pointing_game(off, masks, tolerance=2) == 0.0
    assert scores.energy_in_mask(on, masks) == 1.0 and scores.energy_in_mask(off, masks) == 0.0
    small = torch.zeros(3, 5, 5)
    small[:, 1, 1] = 1                                  # low-res map upsampled to the masks
    assert scores.pointing_game(small, masks) == 1.0
    rnd = scores.energy_in_mask(scores.random_map((3, 20, 20)), masks)
    assert abs(rnd - 25 / 400) < 0.03
    corner = torch.zeros(3, 20, 20, dtype=torch.bool)
    corner[:, :4, :4] = True
    assert scores.pointing_game(scores.centre_prior((3, 20, 20)), masks) == 1.0
    assert scores.pointing_game(scores.centre_prior((3, 20, 20)), corner, tolerance=2) == 0.0
    pts = torch.tensor([[-1 + 2 * 7 / 19, -1 + 2 * 7 / 19]] * 3)
    assert scores.points_in_mask(pts, masks) == 1.0
    assert np.isnan(scores.pointing_game(on, torch.zeros(3, 20, 20, dtype=torch.bool)))


def test_ties_and_flat_maps_score_as_chance():
    masks = torch.zeros(2, 20, 20, dtype=torch.bool)
    masks[:, 5:10, 5:10] = True
    dilated = scores._dilate(masks, 4)[0].float().mean().item()
    flat = torch.full((2, 20, 20), 0.7)
    assert scores.pointing_game(flat, masks) == pytest.approx(dilated)         # not 0 (argmax at pixel 0)
    assert scores.energy_in_mask(flat, masks) == pytest.approx(25 / 400)
    # a 1x1 map upsampled to the frame: flat up to float rounding
    up = torch.nn.functional.interpolate(torch.full((1, 1, 2, 1, 1), 0.3), size=(2, 20, 20), mode="trilinear")[0, 0]
    assert scores.pointing_game(up, masks) == pytest.approx(dilated)
    two = torch.zeros(2, 20, 20)
    two[:, 7, 7] = two[:, 19, 19] = 1                                          # one tie on, one off the object
    assert scores.pointing_game(two, masks, tolerance=0) == pytest.approx(0.5)
    # energy ignores a constant offset and the sign convention of the map once its minimum is subtracted
    on = torch.zeros(2, 20, 20)
    on[:, 7, 7] = 1
    assert scores.energy_in_mask(on + 5, masks) == pytest.approx(1.0)
    assert scores.energy_in_mask(-(1 - on), masks) == pytest.approx(1.0)


def test_randomised_weights_change_the_maps(clip):
    m = FrameProbe().eval()
    before = A.grad_cam_3d(m, clip, 0, m.conv)
    A.randomize_weights(m, seed=3)
    after = A.grad_cam_3d(m, clip, 0, m.conv)
    assert A.rank_correlation(before, before) > 0.999
    assert A.rank_correlation(before, after) < 0.9


def test_plots_and_explorer(tmp_path, clip):
    frames = plots.clip_to_frames(clip[0])
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    heat = torch.rand(2, 4, 4)
    for ext in ("png", "gif", "mp4"):
        plots.overlay_clip(clip[0], heat, save=tmp_path / f"o.{ext}")
        assert (tmp_path / f"o.{ext}").stat().st_size > 0
    plots.draw_points(clip[0], torch.zeros(4, 2), box_size=4, gt_boxes=np.zeros((4, 1, 4)))
    plots.draw_neighbours(clip[0, :, 1], (8, 8), np.random.rand(9, 2) * 16, torch.rand(9), query_frame=clip[0, :, 0])
    plots.plot_attention(torch.rand(2, 5, 7))
    with pytest.raises(ValueError, match="expected a clip"):
        plots.clip_to_frames(torch.zeros(5, 5))
    maps = {"m1": {"a": torch.rand(4, 4, 4)}, "m2": {"b": torch.rand(2, 4, 4, 4), "c": torch.rand(4, 4, 4)}}
    box = widgets.explorer(maps, clip[0], static=False)
    assert "vidlab-explorer" in box._dom_classes
    kids = {type(w).__name__ + ":" + str(getattr(w, "description", "")): w
            for row in box.children[:-1] for w in row.children}
    view = box.children[-1]
    assert view.value[:4] == b"\x89PNG"                        # the first view is drawn without any callback
    first = view.value
    kids["IntSlider:frame"].value = 3                          # move the frame slider: the view is redrawn
    assert view.value != first
    assert kids["Play:play"].max == 3                           # play runs over the frames
    before = view.value
    kids["FloatSlider:opacity"].value = 0.9                    # opacity redraws too
    assert view.value != before
    assert kids["Dropdown:model"].layout.display != "none"     # two models: the model menu is shown
    # m1 has one layer and one head: nothing to choose, so those controls are hidden
    assert kids["Dropdown:layer"].layout.display == "none" and kids["IntSlider:head/level"].layout.display == "none"
    kids["Dropdown:model"].value = "m2"                        # two layers, the first with two heads: shown
    assert kids["Dropdown:layer"].layout.display != "none" and kids["IntSlider:head/level"].layout.display != "none"
    assert kids["IntSlider:head/level"].max == 1
    kids["Dropdown:layer"].value = "c"                          # one head again: the head slider hides
    assert kids["IntSlider:head/level"].layout.display == "none"
    fig = widgets.explorer({"a": torch.rand(4, 4, 4)}, clip[0], static=True)
    assert len(fig.axes) == 4 + 1                               # 4 frames and the row's colour bar
    big = widgets.explorer_static(maps, clip[0])
    assert len(big.axes) == 3 * 4 + 3                           # one row per map, one colour bar per row
    big.canvas.draw()                                           # titles only on the top row, labels on the left:
    boxes = [ax.title.get_window_extent() for ax in big.axes if ax.get_title()]
    assert len(boxes) == 4 and all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_explorer_is_static_where_no_one_can_interact(clip, monkeypatch):
    """Outside a kernel with a live front end (here: plain pytest) the explorer is the static figure only."""
    import matplotlib.figure
    monkeypatch.delenv("VIDLAB_EXPLORER", raising=False)
    assert widgets.live_frontend() is False
    assert isinstance(widgets.explorer({"a": torch.rand(4, 4, 4)}, clip[0]), matplotlib.figure.Figure)
    monkeypatch.setenv("VIDLAB_EXPLORER", "live")
    assert widgets.live_frontend() is True
    assert not isinstance(widgets.explorer({"a": torch.rand(4, 4, 4)}, clip[0]), matplotlib.figure.Figure)
    with pytest.raises(ValueError, match="expected \\(T, h, w\\)"):
        widgets.explorer({"a": torch.rand(4)}, clip[0], static=True)


def test_map_grid_titles_do_not_overlap(clip):
    """Notebook 09's grid of every model's maps: long "model: map" titles wrap instead of running into each other."""
    names = [f"video_mobileformer: token attention {i}" for i in range(4)] + \
            [f"dualformer: global attention received {i}" for i in range(4)]
    fig = plots.map_grid({n: torch.rand(4, 4, 4) for n in names}, clip[0], frame=1, ncols=4)
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
    assert len(boxes) == 8
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all("\n" in ax.get_title() for ax in fig.axes if ax.get_title())


@pytest.mark.parametrize("name,shape", [("video_focalnet_nano", (1, 3, 8, 32, 32)),
                                        ("dualformer_nano", (1, 3, 8, 32, 32)),
                                        ("video_mobileformer_nano", (1, 3, 8, 32, 32)),
                                        ("sifa_nano", (1, 3, 8, 64, 64))])
def test_diagram_arrows_carry_the_real_forward_shapes(name, shape):
    """Every arrow into a box is labelled with the shapes that module really received in a forward pass (recorded
    here by an independent hook), the boxes are the model's blocks by their own names, and the figure draws them."""
    import vidlab
    from vidlab.viz import diagram, diagram_graph

    torch.manual_seed(0)
    model = vidlab.create_model(name, num_classes=5, num_frames=shape[2], img_size=shape[-1])
    seen = {}

    def hook(mod, args, kwargs, out):
        seen.setdefault(mod, []).append([tuple(t.shape) for t in (*args, *kwargs.values())
                                         if isinstance(t, torch.Tensor)])

    boxes, edges = diagram_graph(model, shape)
    handles = [model.get_submodule(b.name).register_forward_hook(hook, with_kwargs=True) for b in boxes[1:-1]]
    with torch.no_grad():
        logits = model.eval()(torch.randn(shape))
    for h in handles:
        h.remove()
    assert boxes[0].name == "input" and boxes[-1].name == "output" and boxes[-1].in_shapes == [tuple(logits.shape)]
    calls = {}
    for j, b in enumerate(boxes[1:-1], start=1):
        k = calls[b.name] = calls.get(b.name, -1) + 1
        real = seen[model.get_submodule(b.name)][k]
        into = [s for e in edges if e.dst == j for s in e.shapes]
        assert sorted(into) == sorted(real) or set(into) == set(real), (b.name, into, real)
        assert b.in_shapes == real
    names = [b.name for b in boxes]
    block = {"video_focalnet_nano": "layers.2.blocks.1", "dualformer_nano": "stages.0.blocks.1",
             "video_mobileformer_nano": "blocks.1", "sifa_nano": "layer2.1"}[name]
    assert block in names and not any(n.startswith(block + ".") for n in names)    # a block is one box
    assert all(e.src < e.dst for e in edges) and {e.dst for e in edges} == set(range(1, len(boxes)))
    fig = diagram(model, shape)
    text = {t.get_text() for t in fig.axes[0].texts}
    assert block in text
    label = " + ".join("×".join(map(str, s)) for s in next(e.shapes for e in edges if boxes[e.dst].name == block))
    assert label in text
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_diagram_of_a_block_with_two_inputs():
    """A block is drawn from its own sub-modules; several inputs are given as a list of shapes."""
    from vidlab.models import video_mobileformer as vmf
    from vidlab.viz import diagram_graph
    cfg = vmf.VideoMobileFormerConfig(token_dim=32, num_tokens=3)
    block = vmf.MobileFormerBlock(8, 8, expand=2, expand2=2, downsample=False, cfg=cfg)
    boxes, edges = diagram_graph(block, [(1, 8, 2, 4, 4), (1, 3, 32)])
    assert [b.name for b in boxes] == ["input", "mobile_to_former", "former", "mobile", "former_to_mobile", "output"]
    into_former = [e for e in edges if boxes[e.dst].name == "former"]
    assert [(boxes[e.src].name, e.shapes) for e in into_former] == [("mobile_to_former", [(1, 3, 32)])]
