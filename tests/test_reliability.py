"""Hostile input: broken and odd videos, spreadsheet annotations, foreign checkpoints, kills and full disks during
training, command-line mistakes. Each test is one row of docs/reliability.md. Nothing may hang: the reader tests run
in subprocesses with a timeout, and every test has a pytest-timeout."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from vidlab.__main__ import main
from vidlab.data import VideoClipDataset, build_transforms
from vidlab.data.io import VideoReader, display_rotation, write_video
from vidlab.data.kinetics import read_classes, read_kinetics_csv, read_list_file
from vidlab.errors import AnnotationError, CheckpointError, CheckpointSaveError, ConfigError, DatasetError
from vidlab.train import Trainer, TrainConfig

pytestmark = pytest.mark.timeout(300)
PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def cli(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def zero_mdat(src: Path, dst: Path, start: float, end: float) -> Path:
    """A copy of an mp4 whose header is intact and whose media data (mdat) is zeroed from `start` to `end` (fractions
    of the mdat): an interrupted download."""
    data = bytearray(src.read_bytes())
    i = data.find(b"mdat")
    size = int.from_bytes(data[i - 4:i], "big") - 8
    a, b = i + 4 + int(size * start), i + 4 + int(size * end)
    data[a:b] = bytes(b - a)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    good = write_video(d / "good.mp4", (rng.random((32, 64, 64, 3)) * 255).astype(np.uint8), gop=8)
    return {"good": good, "zero_head": zero_mdat(good, d / "zero_head.mp4", 0.0, 0.5),
            "zero_mid": zero_mdat(good, d / "zero_mid.mp4", 0.25, 0.75)}


# ---- data: the hang --------------------------------------------------------------------------------------------

READ_LOOP = textwrap.dedent("""
    import sys
    import av
    if sys.argv[2] == "user-log-level":
        av.logging.set_level(av.logging.PANIC)      # what the reader itself did before the fix
    from vidlab.data.io import VideoReader
    from vidlab.errors import VideoReadError
    failures = 0
    for _ in range(int(sys.argv[3])):
        for backend in ("auto", "pyav"):
            try:
                r = VideoReader(sys.argv[1], backend=backend)
                r.get_frames(range(len(r)))
            except VideoReadError:
                failures += 1
    print("failures", failures)
""")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("log_level", ["default", "user-log-level"])
@pytest.mark.parametrize("which", ["zero_head", "zero_mid"])
def test_zeroed_media_data_fails_fast_and_never_hangs(videos, which, log_level):
    """Before the fix 8 of 8 processes reading such a file 5 times hung (PyAV's Python log callback + FFmpeg frame
    threads). A hang never ends, so the time limit is generous: a loaded machine must not fail the test."""
    r = subprocess.run([PY, "-c", READ_LOOP, str(videos[which]), log_level, "10"], capture_output=True,
                       text=True, timeout=400, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "failures 20" in r.stdout


def test_pyav_decodes_single_threaded_without_python_log_callback(videos):
    import av
    before = av.logging.get_level()
    VideoReader(videos["good"], backend="pyav").get_frames([0, 31])
    assert av.logging.get_level() == before            # the reader leaves PyAV's logging alone


LOADER_RUN = textwrap.dedent("""
    import sys, warnings, torch
    from vidlab.data import VideoClipDataset, build_transforms
    from vidlab.train import collate_clips
    warnings.simplefilter("ignore")
    ds = VideoClipDataset(sys.argv[1], "val", num_frames=4, transform=build_transforms(False, img_size=32),
                          train=True)
    for epoch in range(2):
        ds.set_epoch(epoch)
        n = sum(len(b[1]) for b in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2,
                                                               collate_fn=collate_clips))
        print("epoch", epoch, n, ds.num_skipped, ds.num_skip_attempts)
""")


def broken_split(smoke_data, tmp_path, n_broken):
    """A copy of the smoke val split with `n_broken` clips zeroed in their media data."""
    root = tmp_path / "broken"
    shutil.copytree(smoke_data, root, ignore=shutil.ignore_patterns("train", "ground_truth", ".cache"))
    clips = sorted((root / "val").rglob("*.mp4"))
    victims = clips[1::2][:n_broken]
    for v in victims:
        zero_mdat(v, v, 0.0, 0.5)
    return root, victims, clips


@pytest.mark.timeout(900)
def test_dataloader_with_workers_over_zeroed_clips_finishes_and_counts_files(smoke_data, tmp_path):
    root, victims, clips = broken_split(smoke_data, tmp_path, 9)
    r = subprocess.run([PY, "-c", LOADER_RUN, str(root)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line.split() for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
    for _, epoch, n, files, attempts in lines:
        assert int(n) == len(clips)                     # every item came back (stand-ins for the broken ones)
    assert int(lines[-1][3]) == 9                       # files, not attempts
    assert int(lines[-1][4]) >= 9


def test_skips_are_counted_as_files_and_attempts_with_their_stand_ins(smoke_data, tmp_path):
    root, victims, clips = broken_split(smoke_data, tmp_path, 3)
    ds = VideoClipDataset(root, "val", num_frames=4, transform=build_transforms(False, img_size=32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            for i in range(len(ds)):
                ds[i]
    assert ds.num_skipped == 3 and ds.num_skip_attempts == 9
    assert {s["path"] for s in ds.skipped} == {str(v) for v in victims}
    assert all(s["stand_in"] and s["stand_in"] not in {str(v) for v in victims} for s in ds.skipped)
    assert "3 unreadable clip(s), skipped 9 time(s)" in ds.skip_report() and "stood in" in ds.skip_report()


def test_a_broken_file_is_decoded_once_per_process(smoke_data, tmp_path, monkeypatch):
    root, victims, _ = broken_split(smoke_data, tmp_path, 1)
    ds = VideoClipDataset(root, "val", num_frames=4)
    bad = next(i for i, s in enumerate(ds.samples) if s.path == str(victims[0]))
    calls = []
    real = ds.load
    monkeypatch.setattr(ds, "load", lambda j: (calls.append(j), real(j))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            ds[bad]
    assert calls.count(bad) == 1 and ds.num_skip_attempts == 5


# ---- data: evaluation never substitutes ----------------------------------------------------------------------

class Fixed(nn.Module):
    """Predicts class 0 for every clip."""

    def __init__(self, k):
        super().__init__()
        self.k, self.w = k, nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = torch.zeros(x.shape[0], self.k) + self.w
        out[:, 0] = 1.0
        return out


def test_evaluation_scores_only_readable_clips_and_names_the_rest(smoke_data, tmp_path):
    root, victims, clips = broken_split(smoke_data, tmp_path, 9)
    ds = VideoClipDataset(root, "val", num_frames=4, transform=build_transforms(False, img_size=32))
    t = Trainer(Fixed(len(ds.classes)), None, None, TrainConfig(epochs=1, device="cpu", progress=False))
    with pytest.warns(UserWarning, match="left out"):
        r = t.evaluate(ds, views="1x1")
    readable = [i for i, s in enumerate(ds.samples) if s.path not in {str(v) for v in victims}]
    assert r["num_clips"] == len(readable) == len(ds) - 9 and r["num_left_out"] == 9
    assert {e["path"] for e in r["left_out"]} == {str(v) for v in victims}
    truth = 100 * np.mean([ds.samples[i].label == 0 for i in readable])
    assert r["top1"] == pytest.approx(truth) and sorted(r["index"].tolist()) == readable


class Substituting(Dataset):
    """A dataset that hands back item i + 1 for a broken item i (what a skipping training set does)."""
    classes = ["a", "b"]

    def __init__(self):
        self.labels = [0, 1, 0, 1]

    def __len__(self):
        return 4

    def __getitem__(self, i):
        j = i + 1 if i == 1 else i
        return torch.zeros(3, 2, 4, 4), self.labels[j], j


def test_evaluation_of_a_dataset_without_get_view_drops_stand_ins():
    t = Trainer(Fixed(2), None, None, TrainConfig(epochs=1, device="cpu", progress=False))
    with pytest.warns(UserWarning, match="scored 3 of 4"):
        r = t.evaluate(Substituting())
    assert r["num_clips"] == 3 and r["left_out"] == [{"index": 1, "path": "item 1"}]


# ---- data: overwrite, annotations, orientation -------------------------------------------------------------------

def test_synth_overwrite_never_deletes_a_users_dataset(tmp_path, capsys):
    user = tmp_path / "mine"
    (user / "train" / "a").mkdir(parents=True)
    (user / "classes.txt").write_text("a\n")
    (user / "train" / "a" / "clip.mp4").write_bytes(b"my own video")
    rc, _, err = cli(["data", "synth", "--preset", "smoke", "--out", str(user), "--overwrite"], capsys)
    assert rc == 2 and "nothing shows it was written by vidlab's generator" in err and err.count("\n") == 1
    assert (user / "train" / "a" / "clip.mp4").read_bytes() == b"my own video"


def test_synth_overwrite_removes_only_its_own_files(tmp_path):
    from vidlab.data import make_synthetic
    kw = dict(preset="smoke", num_classes=2, clips_per_class=1)
    root = make_synthetic(tmp_path / "s", **kw)
    (root / "notes.md").write_text("mine")
    (root / "train" / "mine.txt").write_text("mine")
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    make_synthetic(root, overwrite=True, **kw)
    after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert before == after and (root / "notes.md").read_text() == "mine"


def test_spreadsheet_csv_and_classes_with_byte_order_mark(tmp_path):
    (tmp_path / "classes.txt").write_text("\ufeffa\nb\n", encoding="utf-8")
    (tmp_path / "train.csv").write_text("\ufefflabel,youtube_id,time_start,time_end,split\na,x1,0,10,train\n",
                                        encoding="utf-8")
    assert read_classes(tmp_path / "classes.txt") == ["a", "b"]
    assert read_kinetics_csv(tmp_path / "train.csv", classes=["a", "b"])[0]["label"] == "a"


def test_one_clip_with_two_labels_names_both_lines(tmp_path):
    p = tmp_path / "train.csv"
    p.write_text("label,youtube_id,time_start,time_end,split\na,x1,0,10,train\nb,x2,0,10,train\nb,x1,0,10,train\n")
    with pytest.raises(AnnotationError, match=r"train.csv:4: .*'b' here and 'a' on line 2"):
        read_kinetics_csv(p)
    lst = tmp_path / "train_list.txt"
    lst.write_text("train/a/x1.mp4 0\ntrain/a/x1.mp4 1\n")
    with pytest.raises(AnnotationError, match=r"train_list.txt:2: .*on line 1"):
        read_list_file(lst)


def test_a_row_repeated_verbatim_is_read_once_with_a_warning(tmp_path):
    p = tmp_path / "train.csv"
    p.write_text("label,youtube_id,time_start,time_end,split\na,x1,0,10,train\na,x1,0,10,train\n")
    with pytest.warns(UserWarning, match="line 3 = line 2"):
        rows = read_kinetics_csv(p)
    assert len(rows) == 1


def test_unicode_class_names_in_nfc_match_nfd_folders(smoke_data, tmp_path):
    root = tmp_path / "uni"
    shutil.copytree(smoke_data / "val", root / "val")
    names = sorted(d.name for d in (root / "val").iterdir())
    nfc = [f"café_{n}" for n in names]
    for n, new in zip(names, nfc):
        (root / "val" / n).rename(root / "val" / unicodedata.normalize("NFD", new))  # as macOS writes it
    (root / "classes.txt").write_text("".join(unicodedata.normalize("NFC", c) + "\n" for c in nfc))
    ds = VideoClipDataset(root, "val", num_frames=4)
    assert ds.classes == nfc and len(ds) == sum(1 for _ in (root / "val").rglob("*.mp4"))
    (root / "classes.txt").write_text(unicodedata.normalize("NFC", "é") + "\n" + unicodedata.normalize("NFD", "é"))
    with pytest.raises(AnnotationError, match="another Unicode normalisation"):
        read_classes(root)


@pytest.mark.parametrize("rotation,size", [(90, (32, 64)), (90, (64, 64)), (180, (32, 64)), (-90, (32, 64))])
def test_rotated_phone_clip_reads_upright_with_both_backends(tmp_path, rotation, size):
    import imageio_ffmpeg
    h, w = size
    rng = np.random.default_rng(1)
    frames = (rng.random((4, h, w, 3)) * 255).astype(np.uint8)
    src = write_video(tmp_path / "src.mp4", frames, crf=0)
    dst = tmp_path / "rot.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-display_rotation", str(rotation), "-i", str(src), "-c", "copy", str(dst)], check=True)
    assert display_rotation(dst) == rotation % 360 and display_rotation(src) == 0
    k = (rotation // 90) % 4
    stored = VideoReader(src, backend="pyav").get_frames([0, 3]).astype(int)
    upright = np.rot90(stored, k, axes=(1, 2))
    auto = VideoReader(dst)
    assert (auto.height, auto.width) == upright.shape[1:3]
    np.testing.assert_array_equal(auto.get_frames([0, 3]), upright)
    np.testing.assert_array_equal(VideoReader(dst, backend="pyav").get_frames([0, 3]), upright)
    if h == w or k % 2 == 0:   # decord 3.4 rotates square frames itself (and fails on non-square ones)
        np.testing.assert_array_equal(VideoReader(dst, backend="decord").get_frames([0, 3]), upright)


# ---- training ---------------------------------------------------------------------------------------------------

class Toy(Dataset):
    classes = ["a", "b"]

    def __init__(self, n=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % 2 for i in range(n)]
        self.x = torch.randn(n, 3, 2, 8, 8, generator=g) + torch.tensor(self.labels)[:, None, None, None, None]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.x[i], self.labels[i], i


class BNNet(nn.Module):
    def __init__(self, k=2):
        super().__init__()
        self.num_classes = k
        self.conv = nn.Conv3d(3, 4, 1)
        self.bn = nn.BatchNorm3d(4)
        self.head = nn.Linear(4, k)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).mean((2, 3, 4)))


def tcfg(out=None, **kw):
    base = dict(epochs=2, batch_size=4, lr=1e-2, warmup_epochs=0, progress=False, device="cpu",
                out_dir=str(out) if out is not None else None)
    base.update(kw)
    return TrainConfig(**base)


def test_a_last_training_batch_of_one_is_dropped_not_crashed_on():
    t = Trainer(BNNet(), Toy(n=9), None, tcfg(epochs=1))
    t.fit()
    assert t.global_step == 2 and t.history[0]["train_loss"] > 0        # 9 clips, batch 4: 2 full steps


def test_best_pt_is_recreated_after_a_kill_while_it_was_written(tmp_path):
    t = Trainer(BNNet(), Toy(), Toy(n=8, seed=1), tcfg(tmp_path, epochs=3))
    t.fit(max_epochs=1)
    assert t.best_epoch == 1
    (tmp_path / "best.pt").unlink()                                      # the write of best.pt was killed
    r = Trainer(BNNet(), Toy(), Toy(n=8, seed=1), tcfg(tmp_path, epochs=3))
    r.resume(tmp_path / "last.pt")
    r.fit()
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == r.best_epoch and best["best_top1"] == max(h["val_top1"] for h in r.history)


def test_best_pt_is_written_before_last_pt(tmp_path, monkeypatch):
    order = []
    import vidlab.train as train_mod
    real = train_mod.atomic_save
    monkeypatch.setattr(train_mod, "atomic_save", lambda obj, path: (order.append(Path(path).name), real(obj, path)))
    Trainer(BNNet(), Toy(), Toy(n=8, seed=1), tcfg(tmp_path, epochs=1)).fit()
    assert order == ["best.pt", "last.pt"]


def test_stale_temporary_checkpoints_are_removed_on_start(tmp_path):
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = [tmp_path / f".last.pt.tmp{dead}", tmp_path / f".best.pt.tmp{dead}", tmp_path / ".metrics.csv.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    (tmp_path / "keep.tmp1").write_bytes(b"not ours")
    Trainer(BNNet(), Toy(), None, tcfg(tmp_path))
    assert not any(p.exists() for p in stale) and (tmp_path / "keep.tmp1").exists()


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_how_much_is_needed(tmp_path, monkeypatch):
    t = Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=2))
    t.fit(max_epochs=1)
    good = (tmp_path / "last.pt").read_bytes()

    def full(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointSaveError, match=r"epoch 2 finished but was not saved.*needs about .* MiB.*"
                                                  r"free in .*previous last.pt is kept"):
        t.fit()
    assert (tmp_path / "last.pt").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "metrics.csv", "metrics.json"]


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_reliability import BNNet, Toy, tcfg
    from vidlab.train import Trainer
    from vidlab.errors import CheckpointSaveError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                  # write() then fails with EFBIG, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))         # room for metrics, not for a checkpoint
    try:
        Trainer(BNNet(), Toy(), None, tcfg(sys.argv[1], epochs=1)).fit()
    except CheckpointSaveError as e:
        print("SAVE", e)
""")


@pytest.mark.timeout(900)
def test_a_real_write_failure_is_reported_not_crashed_on(tmp_path):
    r = subprocess.run([PY, "-c", DISK_FULL, str(tmp_path), str(Path(__file__).parent)], capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    assert "SAVE" in r.stdout and "needs about" in r.stdout and "no last.pt was written" in r.stdout, r.stderr
    assert not list(tmp_path.glob(".*tmp*"))


def test_out_dir_that_is_a_file_or_unwritable_is_refused_before_any_step(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        Trainer(BNNet(), Toy(), None, tcfg(f))
    with pytest.raises(ConfigError, match="not a writable folder"):
        Trainer(BNNet(), Toy(), None, tcfg(f / "sub"))


def test_training_into_an_existing_run_needs_resume_or_overwrite(tmp_path):
    Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=1)).fit()
    with pytest.raises(ConfigError, match=r"already holds a run \(last.pt.*1 epoch\(s\) logged.*--overwrite"):
        Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=1)).fit()
    t = Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=1, overwrite=True))
    t.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1


def test_resume_with_another_clip_length_or_a_finished_run_says_so(tmp_path):
    meta = {"model_args": {"num_classes": 2, "num_frames": 8, "img_size": 32}, "data": {"num_frames": 8}}
    Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=1), meta=meta).fit()
    other = {"model_args": {"num_classes": 2, "num_frames": 16, "img_size": 32}, "data": {"num_frames": 16}}
    with pytest.raises(CheckpointError, match="num_frames 8 -> 16"):
        Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=2), meta=other).resume(tmp_path / "last.pt")
    done = Trainer(BNNet(), Toy(), None, tcfg(tmp_path, epochs=1), meta=meta)
    done.resume(tmp_path / "last.pt")
    assert done.finished
    with pytest.warns(UserWarning, match="nothing is left to do"):
        assert done.fit() == done.history and len(done.history) == 1


# ---- checkpoints -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["backbone.", "module.", "model.", "encoder.", "module.backbone."])
def test_pretrained_weights_under_a_wrapper_prefix_load(tmp_path, prefix):
    from vidlab.models import create_model
    src = create_model("vit_joint_nano", num_classes=5)
    torch.save({"state_dict": {prefix + k: v for k, v in src.state_dict().items()}}, tmp_path / "w.pt")
    m = create_model("vit_joint_nano", num_classes=3, pretrained=tmp_path / "w.pt", strict=False)
    for k, v in src.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(m.state_dict()[k], v), k


def test_a_partial_load_says_how_many_and_which_and_zero_is_an_error(tmp_path):
    from vidlab.models import create_model
    sd = create_model("vit_joint_nano", num_classes=5).state_dict()
    torch.save(dict(list(sd.items())[:40]), tmp_path / "part.pt")
    with pytest.warns(UserWarning, match=r"loaded 40 of the 54 tensors of vit_joint_nano .*not loaded \(14\)"):
        create_model("vit_joint_nano", num_classes=5, pretrained=tmp_path / "part.pt", strict=False)
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="0 of its 54 tensors"):
        create_model("vit_joint_nano", num_classes=5, pretrained=tmp_path / "none.pt", strict=False)


def test_a_checkpoint_of_another_architecture_is_named_first_and_briefly(tmp_path):
    from vidlab.models import create_model
    torch.save({"model": create_model("video_focalnet_nano", num_classes=5).state_dict()}, tmp_path / "f.pt")
    with pytest.raises(CheckpointError) as e:
        create_model("vit_joint_nano", num_classes=5, pretrained=tmp_path / "f.pt")
    msg = str(e.value)
    assert msg.index("video_focalnet") < msg.index("vit_joint_nano") and len(msg) < 600 and "\n" not in msg


# ---- the command line ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,says", [
    (["profile", "--model", "ila_nano", "--frames", "1", "--iters", "0"], "num_frames must be >= 2"),
    (["profile", "--model", "video_focalnet_nano", "--size", "30", "--iters", "0"], "multiple of 32"),
    (["profile", "--model", "vit_joint_nano", "--size", "50", "--iters", "0"], "divisible by the tubelet"),
    (["profile", "--model", "vit_joint_nano", "--device", "banana"], "argument --device: device 'banana'"),
    (["profile", "--model", "vit_joint_nano", "--device", "cuda:7"], "argument --device"),
    (["data", "synth", "--workers", "-1"], "argument --workers: expected an integer >= 1"),
    (["data", "synth", "--difficulty", "2"], "argument --difficulty"),
    (["data", "info", "--data", "/missing/dataset"], "no such directory"),
    (["profile", "--model", "focalnet_nano"], "did you mean video_focalnet_nano"),
    (["data", "synth", "--seed", "-1", "--dry-run"], "argument --seed: expected an integer >= 0"),
    (["train", "--model", "vit_joint_nano", "--data", "/missing", "--out", "/missing/run", "--seed", "-1"],
     "argument --seed: expected an integer >= 0"),
    (["zoo", "--data", "/missing/dataset", "--seed", "-1", "--status"], "argument --seed: expected an integer >= 0"),
    (["zoo", "--data", "/missing/dataset", "--models", "vit_joint_base"], "M parameters) is not a *_nano"),
])
def test_cli_mistakes_are_one_line_and_exit_2(argv, says, capsys):
    rc, out, err = cli(argv, capsys)
    assert rc == 2 and says in err and err.count("\n") == 1 and "Traceback" not in err + out


def test_cli_train_mistakes_are_caught_before_any_work(smoke_data, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    base = ["train", "--model", "vit_joint_nano", "--data", str(smoke_data), "--epochs", "1"]
    for argv, says in [(base + ["--out", str(f)], "argument --out"),
                       (base + ["--out", str(f / "run")], "argument --out"),
                       (base + ["--out", str(tmp_path / "r"), "--device", "cuda"], "argument --device"),
                       (base + ["--out", str(tmp_path / "r"), "--size", "50"], "cannot take")]:
        rc, out, err = cli(argv, capsys)
        assert rc == 2 and says in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "r" / "last.pt").exists()


def test_cli_train_refuses_an_existing_run_and_resume_of_a_finished_one_says_so(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--model", "vit_joint_nano", "--data", str(smoke_data), "--out", str(out), "--frames", "2",
              "--size", "32", "--batch-size", "16", "--stream-clips", "0", "--no-frame-order", "--pretrain", "{}"]
    rc, _, err = cli(["train", "--epochs", "1", *common], capsys)
    assert rc == 0, err
    rc, _, err = cli(["train", "--epochs", "1", *common], capsys)
    assert rc == 2 and "already holds a run" in err and err.count("\n") == 1
    rc, _, err = cli(["train", "--epochs", "1", "--resume", str(out / "last.pt"), *common], capsys)
    assert rc == 0 and "nothing left to do" in err
    rc, _, err = cli(["train", "--epochs", "2", "--resume", str(out / "last.pt"), *common[:6], "--frames", "4",
                      "--size", "32", "--batch-size", "16", "--stream-clips", "0", "--no-frame-order"], capsys)
    assert rc == 2 and "num_frames 2 -> 4" in err


def test_models_pattern_matches_substrings_and_globs(capsys):
    rc, out, _ = cli(["models", "focalnet", "--format", "csv"], capsys)
    names = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert rc == 0 and "video_focalnet_nano" in names and all("focalnet" in n for n in names)
    rc, out2, _ = cli(["models", "video_focalnet_*", "--format", "csv"], capsys)
    assert out2 == out


def cli_train_vit(data, out, capsys):
    """`vidlab train` of a tiny vit_joint_nano run: one epoch of the stored clips, 2 frames of 32 px, no frame
    pretraining."""
    return cli(["train", "--model", "vit_joint_nano", "--data", str(data), "--out", str(out), "--frames", "2",
                "--size", "32", "--batch-size", "16", "--epochs", "1", "--stream-clips", "0", "--no-frame-order",
                "--pretrain", "{}"], capsys)


def test_cli_eval_scores_readable_clips_and_lists_the_rest(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli_train_vit(smoke_data, out, capsys)
    assert rc == 0, err
    root, victims, clips = broken_split(smoke_data, tmp_path, 9)
    report = tmp_path / "eval.json"
    rc, text, err = cli(["eval", "--checkpoint", str(out / "last.pt"), "--data", str(root), "--no-frame-order",
                         "--json", str(report)], capsys)
    assert rc == 0, err
    r = json.loads(report.read_text())
    assert r["num_clips"] == len(clips) - 9 == sum(map(sum, r["confusion"]))
    assert f"{len(clips) - 9} clips" in text and "9 unreadable clip(s) left out" in text


def test_frame_order_test_ignores_stand_ins_from_other_classes():
    from vidlab.train import frame_order_test

    class Ramps(Dataset):
        classes = ["up", "down", "flat"]

        def __init__(self):
            self.labels = [0, 1, 2, 0, 1, 2]

        def __len__(self):
            return 6

        def __getitem__(self, i):
            j = 2 if i == 1 else i        # clip 1 ("down") is broken: "flat" clip 2 stands in
            r = torch.linspace(-1, 1, 4) * (1 if self.labels[j] == 0 else -1 if self.labels[j] == 1 else 0)
            return r[None, :, None, None].expand(3, 4, 2, 2).clone(), self.labels[j], j

    class Slope(nn.Module):
        def forward(self, x):
            s = x.mean((1, 3, 4))[:, -1] - x.mean((1, 3, 4))[:, 0]
            return torch.stack([s, -s, 0.1 - s.abs()], 1)

    r = frame_order_test(Slope(), Ramps(), [["up", "down"]], device="cpu")
    assert r["n"] == 3 and r["ordered"] == 100.0


def test_each_epoch_starts_its_loader_once(monkeypatch):
    """tqdm.auto iterates what it is given twice (iter() in its constructor, then again): the loader must not be."""
    from torch.utils.data import DataLoader
    calls = []
    real = DataLoader.__iter__
    monkeypatch.setattr(DataLoader, "__iter__", lambda self: (calls.append(1), real(self))[1])
    Trainer(BNNet(), Toy(), Toy(n=8, seed=1), tcfg(epochs=2, progress=True)).fit()
    assert len(calls) == 4                      # 2 training epochs + 2 evaluations


def test_resume_from_a_checkpoint_of_another_model_names_both(tmp_path):
    from vidlab.models import create_model
    Trainer(create_model("vit_joint_nano", num_classes=2, num_frames=2, img_size=32), Toy(n=4), None,
            tcfg(tmp_path, epochs=1, batch_size=2)).save_checkpoint(tmp_path / "last.pt")
    other = Trainer(create_model("vit_divided_nano", num_classes=2, num_frames=2, img_size=32), Toy(n=4), None,
                    tcfg(tmp_path, epochs=2, batch_size=2))
    with pytest.raises(CheckpointError, match="checkpoint of vit_joint_nano, not of vit_divided_nano") as e:
        other.resume(tmp_path / "last.pt")
    assert len(str(e.value)) < 300


# ---- the zoo and the newest flags --------------------------------------------------------------------------------

TINY = dict(epochs=1, batch_size=4, num_frames=4, img_size=32, stream_clips=16, warmup_epochs=0.0)


def tiny_recipes(monkeypatch, **changes):
    """Every zoo recipe at the tiny budget of these tests (and `changes`)."""
    import vidlab.zoo as zoo
    from vidlab.models import get_recipe
    monkeypatch.setattr(zoo, "get_recipe", lambda name: get_recipe(name).replace(**{**TINY, **changes}))


@pytest.fixture(scope="module")
def zoo_ckpt(smoke_data, tmp_path_factory):
    """A zoo folder holding one finished tiny run of r2plus1d_nano; tests copy it."""
    ck = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:
        tiny_recipes(mp)
        from vidlab.zoo import load_or_train
        load_or_train("r2plus1d_nano", smoke_data, ckpt_root=ck, progress=False)
    return ck


def copy_zoo(zoo_ckpt, tmp_path) -> Path:
    shutil.copytree(zoo_ckpt, tmp_path / "ck")
    return tmp_path / "ck"


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` and everything below it made read-only. Root ignores permission bits, so for root every write below
    `folder` raises the PermissionError that a read-only folder gives any other user."""
    folder = Path(folder).resolve()
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for p, m in modes.items():
        p.chmod(m & ~0o222)
    mp = pytest.MonkeyPatch()
    if os.geteuid() == 0:
        import builtins
        import io

        def below(*paths) -> bool:
            return any(not isinstance(p, int) and Path(os.fsdecode(p)).resolve().is_relative_to(folder) for p in paths)

        def refuse(real, writes=None, paths=1):
            def call(*a, **k):
                if below(*a[:paths]) and (writes is None or writes(a[paths:], k)):
                    raise PermissionError(errno.EACCES, "Permission denied", str(a[0]))
                return real(*a, **k)
            return call
        opens = lambda a, k: any(c in (a[0] if a else k.get("mode", "r")) for c in "wax+")  # noqa: E731
        flags = lambda a, k: bool(a[0] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))   # noqa: E731
        for mod, name, writes in [(builtins, "open", opens), (io, "open", opens), (os, "open", flags),
                                  (os, "mkdir", None), (os, "unlink", None), (os, "remove", None), (os, "rmdir", None)]:
            mp.setattr(mod, name, refuse(getattr(mod, name), writes))
        for name in ("rename", "replace"):
            mp.setattr(os, name, refuse(getattr(os, name), paths=2))
    try:
        yield folder
    finally:
        mp.undo()
        for p, m in modes.items():
            p.chmod(m)


def data_copy(smoke_data, tmp_path, keep_meta=True) -> Path:
    root = tmp_path / "data"
    shutil.copytree(smoke_data, root, ignore=shutil.ignore_patterns("ground_truth", ".cache"))
    if not keep_meta:
        (root / "annotations" / "meta.json").unlink()
    return root


def test_a_dataset_fingerprint_covers_the_clips_the_run_reads(smoke_data, tmp_path):
    """Class folders (classes.txt, no annotations/): a clip added; annotations: a clip replaced under them."""
    from vidlab.zoo import data_fingerprint
    folders = data_copy(smoke_data, tmp_path / "a", keep_meta=False)
    shutil.rmtree(folders / "annotations")
    before = data_fingerprint(folders)
    src = sorted((folders / "train" / "blink").glob("*.mp4"))[0]
    shutil.copy(src, src.with_name("added.mp4"))
    assert data_fingerprint(folders) != before
    annotated = data_copy(smoke_data, tmp_path / "b", keep_meta=False)
    before = data_fingerprint(annotated)
    clips = sorted((annotated / "val").rglob("*.mp4"))
    clips[0].write_bytes(clips[1].read_bytes())
    assert data_fingerprint(annotated) != before


def test_a_val_split_of_only_broken_clips_is_an_error(smoke_data, tmp_path, capsys):
    root = data_copy(smoke_data, tmp_path)
    for clip in (root / "val").rglob("*.mp4"):
        zero_mdat(clip, clip, 0.0, 1.0)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc, _, err = cli_train_vit(root, out, capsys)
    assert rc == 2 and "none of the 24 clips to evaluate could be read" in err and "Traceback" not in err
    assert not (out / "best.pt").exists()


def test_a_truncated_meta_json_makes_the_stream_unavailable_and_says_why(smoke_data, tmp_path, capsys):
    root = data_copy(smoke_data, tmp_path)
    meta = root / "annotations" / "meta.json"
    meta.write_text(meta.read_text()[:100])
    rc, _, err = cli(["train", "--model", "vit_joint_nano", "--data", str(root), "--out", str(tmp_path / "run"),
                      "--frames", "2", "--size", "32", "--epochs", "1", "--stream-clips", "24", "--no-frame-order"],
                     capsys)
    assert rc == 2 and "meta.json: cannot be read" in err and "stream (stream_clips=24) is unavailable" in err
    assert err.count("\n") == 1 and not (tmp_path / "run" / "last.pt").exists()


def test_a_damaged_best_pt_is_named_kept_aside_and_retrained(smoke_data, zoo_ckpt, tmp_path, monkeypatch, capsys):
    import vidlab.zoo as zoo
    tiny_recipes(monkeypatch)
    ck = copy_zoo(zoo_ckpt, tmp_path)
    best = ck / "r2plus1d_nano" / "best.pt"
    cut = best.read_bytes()[:2000]
    best.write_bytes(cut)
    assert zoo.zoo_status(smoke_data, ckpt_root=ck, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "damaged"}
    rc, out, _ = cli(["zoo", "--data", str(smoke_data), "--ckpt", str(ck), "--models", "r2plus1d_nano", "--status"],
                     capsys)
    assert rc == 0 and "damaged (best.pt cannot be read" in out
    zoo.train_zoo(smoke_data, models=["r2plus1d_nano"], ckpt_root=ck, jobs=1, progress=False, log=lambda line: None)
    assert (ck / "r2plus1d_nano" / "best.pt.damaged").read_bytes() == cut          # kept aside, byte for byte
    assert "kept aside as best.pt.damaged" in capsys.readouterr().err
    assert zoo.zoo_status(smoke_data, ckpt_root=ck, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "ready"}


def test_a_zoo_json_of_the_wrong_shape_is_recovered(smoke_data, zoo_ckpt, tmp_path, monkeypatch, capsys):
    import vidlab.zoo as zoo
    tiny_recipes(monkeypatch)
    ck = copy_zoo(zoo_ckpt, tmp_path)
    (ck / "r2plus1d_nano" / "zoo.json").write_text("[]")
    rc, out, err = cli(["zoo", "--data", str(smoke_data), "--ckpt", str(ck), "--models", "r2plus1d_nano",
                        "--status"], capsys)
    assert rc == 0 and "partial" in out, err
    zoo.train_zoo(smoke_data, models=["r2plus1d_nano"], ckpt_root=ck, jobs=1, progress=False, log=lambda line: None)
    assert zoo.zoo_status(smoke_data, ckpt_root=ck, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "ready"}


@pytest.mark.parametrize("status", [[], ["--status"]])
def test_zoo_ckpt_that_is_a_file_is_one_line(smoke_data, tmp_path, capsys, status):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = cli(["zoo", "--data", str(smoke_data), "--ckpt", str(f), "--models", "r2plus1d_nano", *status],
                     capsys)
    assert rc == 2 and f"argument --ckpt: {f} is a file, not a folder" in err and err.count("\n") == 1


def test_a_read_only_zoo_folder_with_a_run_to_retrain_is_one_line(smoke_data, zoo_ckpt, tmp_path, monkeypatch,
                                                                  capsys):
    ck = copy_zoo(zoo_ckpt, tmp_path)
    before = {p.name: p.read_bytes() for p in (ck / "r2plus1d_nano").iterdir()}
    tiny_recipes(monkeypatch, lr=5e-4)                  # another recipe: the run must be trained again
    with read_only(ck):
        rc, _, err = cli(["zoo", "--data", str(smoke_data), "--ckpt", str(ck), "--models", "r2plus1d_nano"], capsys)
    assert rc == 2 and "is not a writable folder" in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in (ck / "r2plus1d_nano").iterdir()} == before


def test_cache_of_read_only_data_goes_to_the_users_cache(smoke_data, tmp_path, monkeypatch):
    from vidlab.run import eval_dataset
    root = data_copy(smoke_data, tmp_path)
    monkeypatch.setenv("VIDLAB_CACHE", str(tmp_path / "user-cache"))
    with read_only(root), pytest.warns(UserWarning, match="cannot be written.*the decode cache goes"):
        ds = eval_dataset(root, "val", num_frames=2, img_size=32, cache=True)
    assert len(ds) == 24 and list((tmp_path / "user-cache").glob("data-*/val_*/cache.json"))
    assert not (root / ".cache").exists()


def test_a_batchnorm_model_refuses_a_one_clip_training_set(smoke_data, tmp_path, capsys):
    rc, _, err = cli(["train", "--model", "r2plus1d_nano", "--data", str(smoke_data), "--out", str(tmp_path / "r"),
                      "--frames", "4", "--size", "32", "--epochs", "1", "--stream-clips", "1", "--no-frame-order"],
                     capsys)
    assert rc == 2 and "BatchNorm" in err and "at least 2 clips" in err and err.count("\n") == 1, err
    with pytest.raises(ConfigError, match="batch_size is 1"):
        Trainer(BNNet(), Toy(), None, tcfg(batch_size=1))


def test_eval_at_an_input_the_checkpoint_cannot_take_names_the_trained_one(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli_train_vit(smoke_data, out, capsys)
    assert rc == 0, err
    for flag, value in [("--frames", "4"), ("--size", "64")]:
        rc, _, err = cli(["eval", "--checkpoint", str(out / "best.pt"), "--data", str(smoke_data), flag, value,
                          "--no-frame-order"], capsys)
        assert rc == 2 and "trained on 2x32x32 clips, which cannot take" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("model,size,says", [("r2plus1d_nano", "7", "the smallest size it takes is 32"),
                                             ("dualformer_nano", "16", "the smallest size it takes is 32")])
def test_train_refuses_a_crop_the_model_cannot_use(smoke_data, tmp_path, capsys, model, size, says):
    rc, _, err = cli(["train", "--model", model, "--data", str(smoke_data), "--out", str(tmp_path / "r"), "--frames",
                      "4", "--size", size, "--epochs", "1", "--stream-clips", "4", "--batch-size", "4",
                      "--no-frame-order"], capsys)
    assert rc == 2 and says in err and err.count("\n") == 1, err


SYNTH_FULL = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                  # write() then fails with EFBIG, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (3400, 3400))         # room for a few clips' files, not all
    from vidlab.__main__ import main
    sys.exit(main(["data", "synth", "--preset", "smoke", "--workers", "1", "--out", sys.argv[1]]))
""")


def test_synth_onto_a_full_disk_says_how_much_it_needs_and_has(tmp_path):
    r = subprocess.run([PY, "-c", SYNTH_FULL, str(tmp_path / "synth")], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "it needs about" in r.stderr and "MiB are free there" in r.stderr and r.stderr.count("\n") == 1


def test_two_zoos_on_one_folder_train_each_run_once(smoke_data, tmp_path, monkeypatch):
    """The second zoo waits for the first's lock on the run, then finds it finished."""
    import threading
    import time
    import vidlab.zoo as zoo
    trained, lines, release = [], [], threading.Event()
    fake_zoo_runs(monkeypatch, trained, release)
    zoos = [threading.Thread(target=zoo.train_zoo, args=(smoke_data,), kwargs=dict(
        models=["r2plus1d_nano"], ckpt_root=tmp_path, jobs=1, progress=False, log=lines.append)) for _ in range(2)]
    zoos[0].start()
    deadline = time.time() + 60
    while not trained and time.time() < deadline:
        time.sleep(0.05)
    zoos[1].start()
    while not any("waiting for it" in line for line in lines) and time.time() < deadline - 50:
        time.sleep(0.05)
    release.set()
    for z in zoos:
        z.join(60)
    assert len(trained) == 1 and any("waiting for it" in line for line in lines), lines
    assert "zoo: r2plus1d_nano was trained by another process meanwhile; skipped" in lines


def fake_zoo_runs(monkeypatch, trained: list, release=None):
    """A zoo whose runs are files naming their fingerprint: train_run records the folder it trains into."""
    import types
    import vidlab.zoo as zoo
    metrics = {"top1": 50.0, "top5": 90.0, "train_time_s": 1.0, "epochs": 1, "params": 1000, "frame_order": {}}

    def train_run(name, root, run_dir, *, rec=None, seed=0, **kw):
        trained.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if release is not None:
            release.wait(30)
        (run_dir / "done").write_text(zoo.fingerprint(name, rec, root, {}, seed))
        return types.SimpleNamespace(metrics=metrics)
    monkeypatch.setattr(zoo, "train_run", train_run)
    monkeypatch.setattr(zoo, "_finished_run", lambda d, fp: {"metrics": metrics} if (d / "done").is_file() and (
        d / "done").read_text() == fp else None)


def test_a_model_named_twice_is_trained_once(smoke_data, tmp_path, monkeypatch):
    import vidlab.zoo as zoo
    trained, lines = [], []
    fake_zoo_runs(monkeypatch, trained)
    zoo.train_zoo(smoke_data, models=["vit_joint_nano", "vit_joint_nano"], ckpt_root=tmp_path, jobs=1,
                  progress=False, log=lines.append)
    assert trained == [tmp_path / "vit_joint_nano"]
    assert "zoo: vit_joint_nano named more than once; trained once" in lines


def test_a_run_of_another_seed_is_kept_beside(smoke_data, tmp_path, monkeypatch):
    import vidlab.zoo as zoo
    trained = []
    fake_zoo_runs(monkeypatch, trained)
    for seed in (0, 1, 0):
        zoo.train_zoo(smoke_data, models=["vit_joint_nano"], ckpt_root=tmp_path, jobs=1, seed=seed, progress=False,
                      log=lambda line: None)
    assert trained == [tmp_path / "vit_joint_nano", tmp_path / "vit_joint_nano@seed=1"]   # the third found seed 0


def test_a_truncated_mp4_is_called_truncated(videos, tmp_path):
    data = videos["good"].read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")                     # the index comes last, as PyAV writes it
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    from vidlab.errors import VideoReadError
    with pytest.raises(VideoReadError, match="the file is truncated: its mdat box needs"):
        VideoReader(cut)
    cut.write_bytes(data[:data.find(b"moov") - 4])                      # cut exactly where the index starts
    with pytest.raises(VideoReadError, match=r"truncated: it holds media data \(mdat\) but not the index"):
        VideoReader(cut)


@pytest.mark.parametrize("content", [torch.zeros(3), [torch.zeros(3)]], ids=["tensor", "list"])
def test_pretrained_weights_that_are_no_checkpoint_name_the_file(tmp_path, content):
    from vidlab.models import create_model
    torch.save(content, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'w.pt'}: expected a checkpoint dict"):
        create_model("vit_joint_nano", num_classes=3, pretrained=tmp_path / "w.pt")


def test_every_phase_of_a_run_reports_progress_and_an_eta(smoke_data, tmp_path, monkeypatch, capsys):
    import vidlab.zoo as zoo
    from vidlab.models import get_recipe
    rec = get_recipe("ila_nano").replace(**{**TINY, "epochs": 2}, pretrain={
        **get_recipe("ila_nano").pretrain, "steps": 4, "frames": 40, "batch_size": 4})
    events, lines = [], []
    monkeypatch.setenv("VIDLAB_ZOO_PROGRESS", str(tmp_path / "events.jsonl"))    # a child of a parallel zoo
    report = zoo._zoo_progress("ila_nano", lines.append)
    zoo.train_run("ila_nano", smoke_data, None, rec=rec, progress=False,
                  on_progress=lambda e: (events.append(e), report(e)))
    assert [e["phase"] for e in events if e["done"] in (0, e["total"])] == [
        "rendering frames", "rendering frames", "frame pretraining", "frame pretraining", "training", "training"]
    assert all(e["eta_s"] is not None for e in events if e["done"]) and events[-1]["eta_s"] == 0.0
    assert any(line.startswith("ila_nano: frame pretraining 1/4 steps") and "min left" in line for line in lines) \
        or any(line.startswith("ila_nano: frame pretraining 4/4 steps") for line in lines)
    assert zoo._ProgressFile(tmp_path / "events.jsonl").read() == events       # the parent reads the same data
    rc, out, err = cli_train_vit(smoke_data, tmp_path / "r", capsys)
    assert rc == 0 and "vit_joint_nano: training 0/1 epochs" in out and "vit_joint_nano: training 1/1 epochs" in out


def test_zoo_status_without_the_default_dataset_generates_nothing(tmp_path, monkeypatch, capsys):
    # a status query reports; it must not start generating the default synthetic set where it is missing
    data = tmp_path / "synthetic"
    monkeypatch.setenv("VIDLAB_DATA", str(data))
    rc, out, err = cli(["zoo", "--data", str(data), "--ckpt", str(tmp_path / "ck"), "--models", "r2plus1d_nano",
                        "--status"], capsys)
    assert rc == 0 and not data.exists(), err
    assert "no dataset at" in out and "r2plus1d_nano" in out and "missing" in out
