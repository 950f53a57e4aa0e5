"""Kinetics annotations, VideoClipDataset (incl. broken clips across DataLoader workers), make_subset, bad input."""
import csv
import hashlib
import json
import shutil
import warnings

import pytest
import torch

from vidlab.data import (VideoClipDataset, VideoReader, build_transforms, make_subset, read_classes,
                         read_kinetics_csv, read_list_file)
from vidlab.data.cli import main as data_cli
from vidlab.data.kinetics import read_id_list, resolve_class_list
from vidlab.errors import AnnotationError, ConfigError, DatasetError, VideoReadError, VidlabError

HEADER = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
LABELS = {"slide_left": "sliding left", "slide_right": "sliding right", "grow": "growing (object)"}


@pytest.fixture(scope="module")
def fake_kinetics(smoke_data, tmp_path_factory):
    """A Kinetics copy in the official schema, built from synthetic clips: labels with spaces, trimmed names
    (<id>_<start>_<end>.mp4) in class folders for train, the untrimmed <id>.mp4 naming in a flat `validate/`
    folder, one annotated clip without a file and one corrupt file."""
    root = tmp_path_factory.mktemp("kinetics")
    (root / "annotations").mkdir()
    rows = {"train": [], "validate": []}
    n = 0
    for split, src_split, per in (("train", "train", 3), ("validate", "val", 2)):
        for cls, label in LABELS.items():
            for i in range(per):
                ytid = f"yt{n:09d}"
                n += 1
                rows[split].append([label, ytid, 0, 1, split, "0"])
                src = smoke_data / src_split / cls / f"{cls}_{src_split}_{i:04d}.mp4"
                if split == "train":
                    dst = root / "train" / label / f"{ytid}_000000_000001.mp4"
                else:
                    dst = root / "validate" / f"{ytid}.mp4"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst)
    rows["train"].append(["sliding left", "ytmissing00", 10, 20, "train", "0"])   # no file
    bad = root / "train" / "growing (object)" / f"{rows['train'][-2][1]}_000000_000001.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))                   # corrupt file
    for split, rs in rows.items():
        with open(root / "annotations" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(rs)
    return root


def test_read_kinetics_csv(fake_kinetics):
    rows = read_kinetics_csv(fake_kinetics / "annotations" / "validate.csv")
    assert len(rows) == 6 and {r["split"] for r in rows} == {"val"}  # "validate" is canonicalised
    assert rows[0]["label"] == "sliding left" and rows[0]["is_cc"] == "0" and rows[0]["line"] == 2


def test_dataset_on_a_kinetics_copy(fake_kinetics):
    with pytest.warns(UserWarning, match="1 annotated clip"):
        ds = VideoClipDataset(fake_kinetics, "train", num_frames=4)
    assert ds.classes == sorted(LABELS.values()) and len(ds) == 9 and len(ds.missing) == 1
    assert "ytmissing00" in ds.missing[0] and "train.csv:11" in ds.missing[0]
    val = VideoClipDataset(fake_kinetics, "val", num_frames=4)  # flat validate/ folder with <id>.mp4 names
    assert len(val) == 6 and not val.missing
    clip, label, index = val[0]
    assert clip.shape == (3, 4, 64, 64) and 0 <= clip.min() and clip.max() <= 1 and label == 1 and index == 0
    with pytest.raises(DatasetError, match="no video file"):
        VideoClipDataset(fake_kinetics, "train", on_error="raise")


def test_make_subset_and_cli(fake_kinetics, tmp_path):
    classes_file = tmp_path / "classes.txt"
    classes_file.write_text("# two of them\nsliding left\ngrowing (object)\n")
    with pytest.warns(UserWarning, match="missing"):
        out = make_subset(fake_kinetics, tmp_path / "mini", classes=classes_file, train_per_class=4,
                          val_per_class=1, short_side=48, seed=0)
    assert read_classes(out) == ["sliding left", "growing (object)"]
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert manifest["class_to_index"] == {"sliding left": 0, "growing (object)": 1}
    for row in manifest["clips"]:
        p = out / row["path"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == row["sha256"]
        r = VideoReader(p)
        assert min(r.height, r.width) == 48 and len(r) >= 8
    # asking 4 per class: "sliding left" has 4 rows, one without a file; "growing (object)" 3, one corrupt
    assert [m["clip"] for m in report["missing"]] == ["ytmissing00_000010_000020"]
    assert [u["label"] for u in report["unreadable"]] == ["growing (object)"]
    assert report["counts"] == {"train": 5, "val": 2}
    assert report["short"]["train"] == {"sliding left": {"wanted": 4, "got": 3, "candidates": 4},
                                        "growing (object)": {"wanted": 4, "got": 2, "candidates": 3}}
    ds = VideoClipDataset(out, "train", num_frames=4, transform=build_transforms(True, img_size=32))
    assert len(ds) == 5 and ds[0][0].shape == (3, 4, 32, 32)
    # Mini-Kinetics-200 style: id lists restrict the clips, classes come from them
    ids = tmp_path / "train_ytid_list.txt"
    ids.write_text("yt000000003\nyt000000004_000000_000001\n")
    vids = tmp_path / "val_ytid_list.txt"
    vids.write_text("yt000000011\n")
    with pytest.warns(UserWarning, match="short"):
        out2 = make_subset(fake_kinetics, tmp_path / "mini200", classes=None, train_per_class=5, val_per_class=5,
                           ids={"train": ids, "val": vids}, short_side=32)
    m2 = json.loads((out2 / "manifest.json").read_text())
    assert sorted(r["youtube_id"] for r in m2["clips"]) == ["yt000000003", "yt000000004", "yt000000011"]
    assert read_id_list(ids) == ["yt000000003", "yt000000004"]
    # the command line does the same
    with pytest.warns(UserWarning):
        assert data_cli(["data", "subset", "--kinetics", str(fake_kinetics), "--out", str(tmp_path / "cli"),
                         "--classes", "from-ids", "--ids-train", str(ids), "--ids-val", str(vids),
                         "--train", "5", "--val", "5", "--size", "32"]) == 0
    m3 = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert [r["youtube_id"] for r in m3["clips"]] == [r["youtube_id"] for r in m2["clips"]]
    with pytest.raises(DatasetError, match="not empty"):
        make_subset(fake_kinetics, out, classes=classes_file)
    with pytest.raises(ConfigError, match="do not appear"):
        make_subset(fake_kinetics, tmp_path / "x", classes=["juggling fire"])


def test_presets_are_real_kinetics_classes():
    ten, fifty = resolve_class_list("k400_motion10"), resolve_class_list("k400_motion50")
    assert len(ten) == 10 and len(fifty) == 50 and ten == fifty[:10] and len(set(fifty)) == 50
    assert {"long jump", "triple jump", "high jump", "clean and jerk", "snatch weight lifting"} <= set(ten)
    with pytest.raises(ConfigError, match="preset"):
        resolve_class_list("k400_nope")


@pytest.fixture()
def broken_copy(smoke_data, tmp_path):
    """The smoke val split with one clip corrupted (its second half cut off)."""
    root = tmp_path / "broken"
    shutil.copytree(smoke_data, root, ignore=shutil.ignore_patterns("train", "ground_truth"))
    victim = root / "val" / "grow" / "grow_val_0001.mp4"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    return root, victim


def test_broken_clip_skipped_and_counted_across_workers(broken_copy):
    root, victim = broken_copy
    ds = VideoClipDataset(root, "val", num_frames=4, transform=build_transforms(False, img_size=32))
    bad = next(i for i, s in enumerate(ds.samples) if s.path == str(victim))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    seen, indices = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for clips, labels, idx in loader:
            assert clips.shape[1:] == (3, 4, 32, 32)
            assert clips.flatten(1).std(1).min() > 0.05  # no blank clip stands in for the broken one
            seen += len(clips)
            indices += idx.tolist()
    assert seen == len(ds)  # the epoch completed
    assert ds.num_skipped == 1 and ds.skipped[0]["path"] == str(victim)
    assert "1 unreadable clip" in ds.skip_report() and str(victim) in ds.skip_report()
    assert bad not in indices and indices.count(bad + 1) == 2  # replaced by the next clip, deterministically
    with pytest.warns(UserWarning, match="skipping unreadable clip"):
        clip, label, j = ds[bad]
    assert j == bad + 1 and torch.equal(clip, ds[bad + 1][0])
    assert ds.num_skipped == 1 and ds.num_skip_attempts == 2   # one broken file, drawn twice
    assert {s["stand_in"] for s in ds.skipped} == {ds.samples[bad + 1].path}
    ds.reset_skipped()
    assert ds.num_skipped == 0
    with pytest.warns(UserWarning, match="skipping"):
        assert ds.get_view(bad, 0, 0, num_clips=2, num_crops=3) is None and ds.num_skipped == 1
    v = ds.get_view(0, 1, 2, num_clips=2, num_crops=3)
    assert v[0].shape == (3, 4, 32, 32) and v[1:] == (ds.samples[0].label, 0)
    strict = VideoClipDataset(root, "val", num_frames=4, on_error="raise")
    with pytest.raises(VideoReadError, match="grow_val_0001.mp4"):
        strict[bad]


def test_short_clip_is_padded_not_rejected(smoke_data):
    ds = VideoClipDataset(smoke_data, "val", num_frames=24, sampling="dense", stride=1)  # clips have 16 frames
    clip, _, _ = ds[0]
    assert clip.shape[1] == 24
    torch.testing.assert_close(clip[:, 15], clip[:, 23])  # the last frame is held
    seg = VideoClipDataset(smoke_data, "val", num_frames=24)
    assert seg[0][0].shape[1] == 24


def test_bad_annotations(tmp_path, smoke_data):
    with pytest.raises(DatasetError, match="does not exist"):
        VideoClipDataset(tmp_path / "nowhere")
    p = tmp_path / "a.csv"
    p.write_text("label,youtube_id,time_start,split\nx,abc,0,train\n")
    with pytest.raises(AnnotationError, match=r"a\.csv:1: missing column\(s\) \['time_end'\]"):
        read_kinetics_csv(p)
    p.write_text("label,youtube_id,time_start,time_end,split\nsliding left,abc,0,10,train\nflying,def,0,10,train\n")
    with pytest.raises(AnnotationError, match=r"a\.csv:3: unknown label 'flying'") as e:
        read_kinetics_csv(p, classes=["sliding left"])
    assert e.value.line == 3 and isinstance(e.value, VidlabError)
    p.write_text("label,youtube_id,time_start,time_end,split\nx,abc,zero,10,train\n")
    with pytest.raises(AnnotationError, match=r"a\.csv:2: time_start"):
        read_kinetics_csv(p)
    lst = tmp_path / "l.txt"
    lst.write_text("train/a/x.mp4 0\ntrain/b/y.mp4 7\n")
    with pytest.raises(AnnotationError, match=r"l\.txt:2: unknown label index 7"):
        read_list_file(lst, num_classes=2)
    cls = tmp_path / "classes.txt"
    cls.write_text("a\nb\na\n")
    with pytest.raises(AnnotationError, match=r"classes\.txt:3: class 'a' is listed twice"):
        read_classes(cls)
    # a dataset whose CSV names a label outside classes.txt
    root = tmp_path / "ds"
    shutil.copytree(smoke_data, root, ignore=shutil.ignore_patterns("train", "ground_truth"))
    csv_path = root / "annotations" / "val.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = "jumping," + lines[4].split(",", 1)[1]
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"val\.csv:5: unknown label 'jumping'"):
        VideoClipDataset(root, "val")
    with pytest.raises(ConfigError):
        VideoClipDataset(smoke_data, "val", on_error="ignore")
