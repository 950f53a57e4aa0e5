"""The synthetic dataset: layout, annotations, ground truth, determinism, and the time-reversal construction."""
import csv
import hashlib
import json

import numpy as np
import pytest

from vidlab.data import VideoReader, load_ground_truth, make_synthetic, read_classes, synthetic_config
from vidlab.data.synthetic import CLASSES, REVERSED_PAIRS, TIME_SYMMETRIC, render_clip
from vidlab.errors import ConfigError, DatasetError

TINY = dict(num_classes=4, clips_per_class={"train": 2, "val": 1}, num_frames=8, size=64)


def test_layout_and_annotations(smoke_data):
    root = smoke_data
    classes = read_classes(root)
    assert classes == CLASSES and len(classes) >= 10
    meta = json.loads((root / "annotations" / "meta.json").read_text())
    assert meta["classes"] == classes and meta["seed"] == 0
    paired = {c for p in meta["reversed_pairs"] for c in p}
    assert len(paired) >= len(classes) / 2 and [list(p) for p in REVERSED_PAIRS] == meta["reversed_pairs"]
    cfg = synthetic_config("smoke")
    for split in ("train", "val"):
        with open(root / "annotations" / f"{split}.csv") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["label", "youtube_id", "time_start", "time_end", "split"]
        assert len(rows) == len(classes) * cfg.clips_per_class[split]
        lines = (root / "annotations" / f"{split}_list.txt").read_text().splitlines()
        assert len(lines) == len(rows)
        for row, line in zip(rows, lines):
            rel, label = line.rsplit(" ", 1)
            assert rel == f"{split}/{row['label']}/{row['youtube_id']}.mp4" and classes[int(label)] == row["label"]
            assert row["split"] == split and (root / rel).exists()
    r = VideoReader(root / "train" / "grow" / "grow_train_0000.mp4")
    assert (len(r), r.height, r.width) == (cfg.num_frames, cfg.size, cfg.size)


def test_ground_truth(smoke_data):
    T, S = synthetic_config("smoke").num_frames, synthetic_config("smoke").size
    for name in ("slide_right", "slide_left", "grow", "shrink", "approach", "rotate_cw", "blink"):
        gt = load_ground_truth(smoke_data, "train", f"{name}_train_0001")
        n = gt["boxes"].shape[1]
        assert gt["boxes"].shape == (T, n, 4) and gt["masks"].shape == (T, S, S) and gt["masks"].dtype == bool
        assert gt["class_name"] == name and CLASSES[gt["label"]] == name
        assert gt["instance_masks"].shape == (n, T, S, S)
        for t in range(T):  # boxes are the tight boxes of the masks
            for k in range(n):
                m = gt["instance_masks"][k, t]
                if gt["visible"][t, k]:
                    ys, xs = np.nonzero(m)
                    np.testing.assert_array_equal(gt["boxes"][t, k], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        cx = gt["centres"][:, 0, 0]
        area = gt["instance_masks"][0].sum((1, 2))
        if name == "slide_right":
            assert cx[-1] - cx[0] > 0.15 * S
        if name == "slide_left":
            assert cx[0] - cx[-1] > 0.15 * S
        if name == "grow":
            assert area[-1] > 1.5 * area[0]
        if name == "shrink":
            assert area[0] > 1.5 * area[-1]
        if name == "approach":
            d = np.linalg.norm(gt["centres"][:, 0] - gt["centres"][:, 1], axis=-1)
            assert d[-1] < 0.8 * d[0]
        if name == "rotate_cw":
            assert np.all(np.diff(gt["angles"][:, 0]) > 0)  # + angle = clockwise on screen (y down)
        if name == "blink":
            assert 0 < gt["visible"][:, 0].sum() < T
    # the actor's pixels in the decoded video have the actor's colour, not the background's
    gt = load_ground_truth(smoke_data, "train", "grow_train_0001")
    frames = VideoReader(smoke_data / "train" / "grow" / "grow_train_0001.mp4").read_all().astype(float)
    inner = gt["masks"][-1]
    assert np.linalg.norm(frames[-1][inner].mean(0) - frames[-1][~inner].mean(0)) > 30
    with pytest.raises(DatasetError, match="no ground truth"):
        load_ground_truth(smoke_data, "train", "no_such_clip")


def _digest(root, sub):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / sub).rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a = make_synthetic(tmp_path / "a", seed=3, workers=1, **TINY)
    b = make_synthetic(tmp_path / "b", seed=3, workers=2, **TINY)
    c = make_synthetic(tmp_path / "c", seed=4, workers=1, **TINY)
    for sub in ("annotations", "ground_truth"):
        assert _digest(a, sub) == _digest(b, sub), sub
    # the mp4 bits may differ (libx264 is not bit-reproducible here); the decoded frames agree
    assert _digest(a, "train").keys() == _digest(b, "train").keys()
    for rel in list(_digest(a, "train"))[:3]:
        fa, fb = (VideoReader(r / rel).read_all().astype(int) for r in (a, b))
        assert np.abs(fa - fb).mean() < 4.0  # H.264 noise level at crf 18
    assert (a / "classes.txt").read_bytes() == (b / "classes.txt").read_bytes()
    assert _digest(a, "ground_truth") != _digest(c, "ground_truth")
    # reusing a finished dataset with the same parameters is free; other parameters are refused
    assert make_synthetic(tmp_path / "a", seed=3, **TINY) == a
    with pytest.raises(DatasetError, match="other parameters"):
        make_synthetic(tmp_path / "a", seed=5, **TINY)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("user data")
    with pytest.raises(DatasetError, match="not a finished"):
        make_synthetic(tmp_path / "x", **TINY)


@pytest.mark.parametrize("a,b", REVERSED_PAIRS)
def test_partner_class_is_the_reversed_scene(a, b):
    """A clip of class b is exactly a clip of class a played backwards (difficulty 0: no pixel noise), so one
    frame - or the set of frames - cannot tell the two classes apart."""
    cfg = synthetic_config("smoke", difficulty=0.0)
    fa, ga = render_clip(a, np.random.default_rng(7), cfg)
    fb, gb = render_clip(b, np.random.default_rng(7), cfg)
    np.testing.assert_array_equal(fb, fa[::-1])
    np.testing.assert_array_equal(gb["boxes"], ga["boxes"][::-1])
    assert gb["reversed"] and not ga["reversed"]


def test_time_symmetric_classes_are_reversed_half_the_time():
    cfg = synthetic_config("smoke")
    flags = [render_clip(TIME_SYMMETRIC[0], np.random.default_rng(s), cfg)[1]["reversed"] for s in range(16)]
    assert 0 < sum(flags) < 16


def test_difficulty_adds_distractors_and_texture():
    easy, hard = synthetic_config("smoke", difficulty=0.0), synthetic_config("smoke", difficulty=1.0)
    n_easy = [render_clip("grow", np.random.default_rng(s), easy)[1]["distractor_boxes"].shape[1] for s in range(8)]
    hard_runs = [render_clip("grow", np.random.default_rng(s), hard) for s in range(8)]
    assert sum(n_easy) == 0 and sum(g["distractor_boxes"].shape[1] for _, g in hard_runs) > 0
    f_easy = render_clip("grow", np.random.default_rng(0), easy)[0].astype(float)
    f_hard = hard_runs[0][0].astype(float)
    assert f_hard.std(axis=(1, 2)).mean() > f_easy.std(axis=(1, 2)).mean()


def test_presets_and_config_errors():
    k = synthetic_config("kinetics-like")
    assert (k.size, k.num_frames, k.clips_per_class) == (224, 64, {"train": 250, "val": 50})
    d = synthetic_config("default")
    assert d.num_classes >= 10 and d.size == 128 and d.num_frames == 32
    assert synthetic_config("default", clips_per_class=6).clips_per_class == {"train": 6, "val": 2}
    with pytest.raises(ConfigError, match="unknown synthetic preset"):
        synthetic_config("huge")
    with pytest.raises(ConfigError, match="even"):
        synthetic_config("smoke", size=65)
    with pytest.raises(ConfigError, match="difficulty"):
        synthetic_config("smoke", difficulty=2)


def test_cli_synth(tmp_path, capsys):
    from vidlab.data.cli import main
    assert main(["data", "synth", "--preset", "kinetics-like", "--dry-run", "--out", str(tmp_path / "k")]) == 0
    assert "3600 clips" in capsys.readouterr().out and not (tmp_path / "k").exists()
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--preset", "smoke", "--classes", "2",
                 "--clips-per-class", "1", "--frames", "4"]) == 0
    assert read_classes(tmp_path / "s") == CLASSES[:2] and len(list((tmp_path / "s" / "train").rglob("*.mp4"))) == 2


def _even_odd_reference(verts, h, w):
    """The rule written out pixel by pixel: a centre is inside when a ray to its right crosses an odd number of
    edges (an edge counts when it spans the centre's row, lower end included)."""
    inside = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            px, py, n = np.float32(x + 0.5), np.float32(y + 0.5), 0
            for (xa, ya), (xb, yb) in zip(np.roll(verts, 1, 0), verts):
                if (ya > py) != (yb > py) and px < xa + (py - ya) * (xb - xa) / (yb - ya):
                    n += 1
            inside[y, x] = n % 2 == 1
    return inside


def test_polygon_rasteriser_follows_the_even_odd_rule():
    from vidlab.data.synthetic import SHAPES, _polygons_inside

    def fill(verts, h, w):
        mask = np.zeros((h, w), bool)
        box = _polygons_inside([verts], h, w)[0]
        if box is not None:
            y0, y1, x0, x1, inside = box
            mask[y0:y1, x0:x1] = inside
        return mask
    rng = np.random.default_rng(0)
    polys = [SHAPES[name] * rng.uniform(2, 9) + rng.uniform(-4, 24, 2) for name in SHAPES for _ in range(3)]
    polys.append(np.array([[2.0, 2.0], [14.0, 2.0], [14.0, 2.0], [8.0, 12.0]]))   # a repeated vertex: a flat edge
    polys.append(np.array([[-9.0, -9.0], [-3.0, -9.0], [-5.0, -2.0]]))            # off the frame: nothing drawn
    for verts in polys:
        np.testing.assert_array_equal(fill(verts, 20, 20),
                                      _even_odd_reference(verts, 20, 20))
    # all at once (as render_clip draws a clip): the same boxes as one at a time, None for the one off the frame
    together = _polygons_inside(polys, 20, 20)
    assert len(together) == len(polys) and together[-1] is None
    for verts, box in zip(polys, together):
        single = _polygons_inside([verts], 20, 20)[0]
        assert (box is None) == (single is None)
        if box is not None:
            assert box[:4] == single[:4]
            np.testing.assert_array_equal(box[4], single[4])


def test_frames_only_rendering_gives_the_same_frames():
    """A training stream needs no ground truth: render_clip(..., ground_truth=False) skips the masks and boxes and
    returns the same frames, bit for bit."""
    cfg = synthetic_config("smoke")
    for seed, name in enumerate(CLASSES):
        idx = [0, 3, 5] if seed % 2 else None
        frames, gt = render_clip(name, np.random.default_rng(seed), cfg, frame_indices=idx)
        fast, none = render_clip(name, np.random.default_rng(seed), cfg, frame_indices=idx, ground_truth=False)
        assert none is None and gt["boxes"].shape[0] == len(frames)
        np.testing.assert_array_equal(fast, frames)
