"""Kinetics-style datasets: annotations and the clip dataset (mini-Kinetics subsets: `vidlab.data.subset`).

Layout (DESIGN.md; what make_synthetic and make_subset write, and what most Kinetics downloads look like):

    <root>/<split>/<class>/<clip>.mp4        class folders named by the label, spaces kept or as "_"
    <root>/annotations/<split>.csv           label,youtube_id,time_start,time_end,split[,is_cc]
    <root>/annotations/<split>_list.txt      mmaction list: "<path relative to root> <label index>"
    <root>/classes.txt                       one label per line: the label order

Clip files may be named `<youtube_id>.mp4` or `<youtube_id>_<start:06d>_<end:06d>.mp4` (the official crawler's
trimmed clips); `val` and `validate` are the same split. Where the CSV is missing, the list file is used; where both
are missing, the class folders are scanned.

Annotation text. Files saved by spreadsheets (a UTF-8 byte-order mark, "CSV UTF-8" in Excel) are read as plain
UTF-8. Class names, labels and folder names are compared after Unicode NFC normalisation (macOS writes folder
names decomposed, NFD). A clip listed twice with two labels is an error naming both lines; a row repeated verbatim
is read once, with a warning naming both lines.

Broken clips. `VideoClipDataset(..., on_error="skip")` never crashes an epoch and never returns a blank clip: a
clip that cannot be decoded is replaced by the next readable one (index + 1, + 2, ... - deterministic), a warning
names the file, and the skip is counted. A file found broken costs one decode per process: later visits skip it
without decoding (until `reset_skipped()`). Counting works across DataLoader worker processes: each process appends
to its own log file in a folder the dataset owns, so after the epoch `ds.num_skipped` (broken *files*),
`ds.num_skip_attempts` (times one was drawn) and `ds.skipped` (one entry per attempt: path, reason, index and the
clip that stood in) are exact. `get_view` (what evaluation uses) never substitutes: it returns None.
`on_error="raise"` raises the `VideoReadError` instead.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import AnnotationError, ConfigError, DatasetError, VideoReadError
from .io import VideoReader
from .sampling import sample_indices, view_indices
from .transforms import to_float_clip

__all__ = ["KINETICS_COLUMNS", "VIDEO_EXTENSIONS", "read_classes", "read_kinetics_csv", "read_list_file",
           "clip_stem", "resolve_class_list", "Sample", "VideoClipDataset", "PRESETS_DIR",
           "read_id_list"]

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
SPLIT_ALIASES = {"train": ("train", "training"), "val": ("val", "validate", "validation"), "test": ("test",)}
PRESETS_DIR = Path(__file__).resolve().parent / "presets"      # shipped with the package (pyproject package-data)


def _nfc(s: str) -> str:
    """Unicode NFC form: "é" typed (one code point) and "é" as macOS names folders (e + combining accent) agree."""
    return unicodedata.normalize("NFC", s)


def _canonical_split(s: str) -> str:
    s = s.strip().lower()
    for k, names in SPLIT_ALIASES.items():
        if s in names:
            return k
    return s


def _folder_name(label: str) -> str:
    """Class folder for a label: spaces become "_" (list files are space-separated); other characters kept."""
    return _nfc(label.strip().replace(" ", "_"))


def clip_stem(youtube_id: str, time_start: int, time_end: int) -> str:
    """The official crawler's name of a trimmed clip: `<youtube_id>_<start:06d>_<end:06d>`."""
    return f"{youtube_id}_{int(time_start):06d}_{int(time_end):06d}"


# ---------------------------------------------------------------------------------------------------------------
# Annotation files

def read_classes(path) -> list[str]:
    """Labels, one per line, from a classes file (or a dataset root holding classes.txt). '#' lines are comments.

    A line "<index> <label>" or "<label> <index>" (some label maps) is not guessed at: the whole line is the label."""
    p = Path(path)
    if p.is_dir():
        p = p / "classes.txt"
    if not p.exists():
        raise DatasetError(f"{p}: no such classes file")
    out, seen = [], {}
    for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):  # -sig: a spreadsheet's BOM
        raw = line.strip()
        name = _nfc(raw)
        if not name or name.startswith("#"):
            continue
        if name in seen:
            same = "" if raw == out[list(seen).index(name)] else " (the same name in another Unicode normalisation)"
            raise AnnotationError(p, n, f"class {name!r} is listed twice (first on line {seen[name]}){same}")
        seen[name] = n
        out.append(name)
    if not out:
        raise AnnotationError(p, None, "no class names in the file")
    return out


def resolve_class_list(spec) -> list[str]:
    """A class list from a preset name (`k400_motion10`, `k400_motion50`), a file path, or a list of names."""
    if isinstance(spec, (list, tuple)):
        return [_nfc(str(s)) for s in spec]
    p = Path(spec)
    if p.exists():
        return read_classes(p)
    for cand in (PRESETS_DIR / f"{spec}.txt", PRESETS_DIR / f"{str(spec).replace('-', '_')}.txt"):
        if cand.exists():
            return read_classes(cand)
    known = sorted(x.stem for x in PRESETS_DIR.glob("*.txt")) if PRESETS_DIR.exists() else []
    raise ConfigError(f"classes {spec!r} is neither a file nor a preset; presets: {known}")


def read_kinetics_csv(path, classes: Sequence[str] | None = None) -> list[dict]:
    """Rows of an official Kinetics CSV as dicts (label, youtube_id, time_start, time_end, split[, is_cc], line).

    `split` is canonical ("validate" -> "val"). With `classes`, a label outside it raises AnnotationError naming
    the file and line; a missing column, a bad number or a short row does too. A byte-order mark is ignored;
    labels are NFC-normalised. The same clip (youtube_id, time_start, time_end) with two labels raises, naming
    both lines; a row repeated verbatim is kept once, with a warning naming both lines."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such annotation file")
    known = {_nfc(c) for c in classes} if classes is not None else None
    rows, first_seen, repeats = [], {}, []
    with open(p, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise AnnotationError(p, 1, "empty file; expected the header " + ",".join(KINETICS_COLUMNS)) from None
        required = list(KINETICS_COLUMNS)
        if "label" not in header and header[:1] == ["youtube_id"]:
            required.remove("label")  # the official test-split CSV has no label column
        missing = [c for c in required if c not in header]
        if missing:
            raise AnnotationError(p, 1, f"missing column(s) {missing}; expected {','.join(KINETICS_COLUMNS)}"
                                  f"[,is_cc], got {','.join(header)}")
        col = {h: i for i, h in enumerate(header)}
        for n, rec in enumerate(reader, 2):
            if not rec or all(not x.strip() for x in rec):
                continue
            if len(rec) < len(header):
                raise AnnotationError(p, n, f"expected {len(header)} fields, got {len(rec)}: {rec}")
            get = lambda c: rec[col[c]].strip() if c in col else ""  # noqa: E731
            try:
                ts, te = int(float(get("time_start"))), int(float(get("time_end")))
            except ValueError:
                raise AnnotationError(p, n, f"time_start/time_end must be numbers, got "
                                      f"{get('time_start')!r}, {get('time_end')!r}") from None
            label = _nfc(get("label"))
            if known is not None and label not in known:
                raise AnnotationError(p, n, f"unknown label {label!r} (not one of the {len(known)} classes)")
            if not get("youtube_id"):
                raise AnnotationError(p, n, "empty youtube_id")
            row = {"label": label, "youtube_id": get("youtube_id"), "time_start": ts, "time_end": te,
                   "split": _canonical_split(get("split")), "line": n}
            key = (row["youtube_id"], ts, te)
            if key in first_seen:
                other = first_seen[key]
                if other["label"] != label:
                    raise AnnotationError(p, n, f"clip {clip_stem(*key)} is labelled {label!r} here and "
                                          f"{other['label']!r} on line {other['line']}; one clip needs one label")
                repeats.append((n, other["line"]))
                continue
            first_seen[key] = row
            if "is_cc" in col:
                row["is_cc"] = get("is_cc")
            rows.append(row)
    if repeats:
        warnings.warn(f"{p}: {len(repeats)} row(s) repeat an earlier row and are read once: "
                      + ", ".join(f"line {a} = line {b}" for a, b in repeats[:5]) + (" ..." if len(repeats) > 5 else ""),
                      stacklevel=2)
    return rows


def read_list_file(path, num_classes: int | None = None) -> list[tuple[str, int]]:
    """mmaction list file: `<relative path> <label index>` per line (paths may contain spaces)."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such list file")
    out, first_seen, repeats = [], {}, []
    for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) != 2:
            raise AnnotationError(p, n, f"expected '<path> <label index>', got {line!r}")
        try:
            label = int(parts[1])
        except ValueError:
            raise AnnotationError(p, n, f"label index must be an integer, got {parts[1]!r}") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise AnnotationError(p, n, f"unknown label index {label} (there are {num_classes} classes)")
        rel = parts[0].strip()
        key = _nfc(rel)  # compared normalised; the path itself is kept as written (it names a file on disk)
        if key in first_seen:
            other_line, other_label = first_seen[key]
            if other_label != label:
                raise AnnotationError(p, n, f"{rel} has label {label} here and {other_label} on line {other_line}; "
                                      "one clip needs one label")
            repeats.append((n, other_line))
            continue
        first_seen[key] = (n, label)
        out.append((rel, label))
    if repeats:
        warnings.warn(f"{p}: {len(repeats)} line(s) repeat an earlier line and are read once: "
                      + ", ".join(f"line {a} = line {b}" for a, b in repeats[:5]) + (" ..." if len(repeats) > 5 else ""),
                      stacklevel=2)
    return out


def read_id_list(path) -> list[str]:
    """A list of YouTube ids, one per line (the S3D Mini-Kinetics-200 `train_ytid_list.txt` / `val_ytid_list.txt`).
    Lines that are clip names (`<id>_<start>_<end>`) or paths are reduced to the id."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such id list")
    ids = []
    for line in p.read_text(encoding="utf-8-sig").splitlines():
        s = line.strip().split()[0] if line.strip() else ""
        if not s or s.startswith("#"):
            continue
        s = Path(s).stem
        m = re.match(r"^(.{11})_\d{6}_\d{6}$", s)
        ids.append(m.group(1) if m else s)
    return ids


def _index_videos(folder: Path) -> dict[str, Path]:
    """stem -> path for every video under `folder` (recursively); also id -> path for trimmed-clip names."""
    index: dict[str, Path] = {}
    if not folder.exists():
        return index
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            stem = _nfc(p.stem)
            index.setdefault(stem, p)
            m = re.match(r"^(.+)_\d{6}_\d{6}$", stem)
            if m:
                index.setdefault(m.group(1), p)
    return index


def _find_split_dir(root: Path, split: str) -> Path | None:
    for name in SPLIT_ALIASES.get(split, (split,)):
        if (root / name).is_dir():
            return root / name
    return None


def _find_annotation(root: Path, split: str, suffix: str) -> Path | None:
    for d in (root / "annotations", root):
        for name in SPLIT_ALIASES.get(split, (split,)):
            if (d / f"{name}{suffix}").exists():
                return d / f"{name}{suffix}"
    return None


# ---------------------------------------------------------------------------------------------------------------
# The dataset

@dataclass
class Sample:
    path: str
    label: int
    youtube_id: str = ""
    time_start: int = 0
    time_end: int = 0


class _SkipLog:
    """Counts skipped clips across processes: one append-only file per process in a private folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vidlab_skips_")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.dir, True)

    def __getstate__(self):  # workers get the folder, not the finaliser: only the parent removes it
        return {"dir": self.dir}

    def __setstate__(self, state):
        self.dir = state["dir"]

    def add(self, path: str, reason: str, **extra):
        line = json.dumps({"path": path, "reason": reason, **extra}) + "\n"
        with open(os.path.join(self.dir, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
            f.write(line)

    def read(self) -> list[dict]:
        out = []
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                # a line another process is still appending has no newline yet: it is read next time
                out += [json.loads(line) for line in f if line.endswith("\n") and line.strip()]
        return out

    def clear(self):
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            os.remove(os.path.join(self.dir, name))


class VideoClipDataset(torch.utils.data.Dataset):
    """Clips from a Kinetics-layout dataset: item i -> `(clip, label, index)`.

    Args:
        root: dataset root (see the module docstring for the layout).
        split: "train", "val" (or "validate") or "test".
        num_frames: frames per clip.
        sampling: "segment" (TSN: one frame per segment, covering the whole clip) or "dense" (`stride` apart).
        transform: maps uint8 (T, H, W, 3) to the clip; e.g. `build_transforms(train, img_size)`. None gives the
            frames as float (3, T, H, W) in [0, 1] at their stored size. Transforms built by vidlab get a
            per-sample generator, so augmentation is reproducible and differs between workers.
        on_error: "skip" (replace a broken clip by the next readable one, warn, count it) or "raise".
        seed: fixes frame sampling and augmentation; `set_epoch(e)` gives each epoch new draws.
        train: random sampling (default: split == "train"); False: centred, deterministic.
        num_clips: test views along time; >1 returns (num_clips[*crops], 3, T, H, W) per item.
        stride: frame stride of dense sampling.
        backend: VideoReader backend ("auto", "decord", "pyav").

    Attributes: `classes`, `samples` (list of Sample), `missing` (annotation rows without a file, dropped at
    construction), `num_skipped`, `skipped` (dicts with path and reason), `reset_skipped()`, `skip_report()`.
    """

    def __init__(self, root, split: str = "train", num_frames: int = 8, sampling: str = "segment", transform=None,
                 on_error: str = "skip", seed: int = 0, train: bool | None = None, num_clips: int = 1,
                 stride: int = 2, backend: str = "auto", classes=None):
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"dataset root {self.root} does not exist "
                               "(generate one with vidlab.data.make_synthetic or `vidlab data synth`)")
        if not self.root.is_dir():
            raise DatasetError(f"dataset root {self.root} is not a folder")
        if on_error not in ("skip", "raise"):
            raise ConfigError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if sampling not in ("segment", "dense"):
            raise ConfigError(f"sampling must be 'segment' or 'dense', got {sampling!r}")
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        self.split = _canonical_split(split)
        self.num_frames, self.sampling, self.stride = num_frames, sampling, stride
        self.transform, self.on_error, self.seed = transform, on_error, seed
        self.train = (self.split == "train") if train is None else train
        self.num_clips, self.backend = num_clips, backend
        self.epoch = 0
        self.classes = self._load_classes(classes)
        self.samples, self.missing = self._load_samples()
        if not self.samples:
            raise DatasetError(f"{self.root}: split {self.split!r} has no clips"
                               + (f" ({len(self.missing)} annotated clips have no file)" if self.missing else ""))
        if self.missing:
            msg = (f"{self.root} [{self.split}]: {len(self.missing)} annotated clip(s) have no video file and are "
                   f"left out, e.g. {self.missing[0]}")
            if on_error == "raise":
                raise DatasetError(msg)
            warnings.warn(msg, stacklevel=2)
        self._skips = _SkipLog()
        self._known_broken: dict[str, str] = {}   # path -> reason, files this process found broken
        self._known_pid = os.getpid()

    # -- discovery ----------------------------------------------------------------------------------------------
    def _load_classes(self, classes):
        if classes is not None:
            return resolve_class_list(classes)
        if (self.root / "classes.txt").exists():
            return read_classes(self.root / "classes.txt")
        csv_path = _find_annotation(self.root, "train", ".csv") or _find_annotation(self.root, self.split, ".csv")
        if csv_path is not None:
            return sorted({r["label"] for r in read_kinetics_csv(csv_path)})
        split_dir = _find_split_dir(self.root, "train") or _find_split_dir(self.root, self.split)
        if split_dir is None:
            raise DatasetError(f"{self.root}: no classes.txt, no annotations/*.csv and no {self.split}/ folder; "
                               "not a Kinetics-layout dataset")
        names = sorted(_nfc(d.name) for d in split_dir.iterdir() if d.is_dir())
        if not names:
            raise DatasetError(f"{split_dir}: no class folders")
        return names

    def _load_samples(self):
        label_of = {c: i for i, c in enumerate(self.classes)}
        label_of.update({_folder_name(c): i for i, c in enumerate(self.classes)})
        split_dir = _find_split_dir(self.root, self.split)
        csv_path = _find_annotation(self.root, self.split, ".csv")
        list_path = _find_annotation(self.root, self.split, "_list.txt")
        samples, missing = [], []
        if csv_path is not None:
            rows = read_kinetics_csv(csv_path, classes=self.classes)
            index = _index_videos(split_dir) if split_dir is not None else {}
            for r in rows:
                stem = clip_stem(r["youtube_id"], r["time_start"], r["time_end"])
                p = index.get(_nfc(stem)) or index.get(_nfc(r["youtube_id"]))
                if p is None:
                    missing.append(f"{csv_path}:{r['line']}: {r['label']}/{stem}")
                    continue
                samples.append(Sample(str(p), label_of[r["label"]], r["youtube_id"], r["time_start"], r["time_end"]))
        elif list_path is not None:
            for rel, label in read_list_file(list_path, num_classes=len(self.classes)):
                p = self.root / rel
                if not p.exists():
                    missing.append(f"{list_path}: {rel}")
                    continue
                samples.append(Sample(str(p), label, p.stem))
        elif split_dir is not None:
            for d in sorted(x for x in split_dir.iterdir() if x.is_dir()):
                name = _nfc(d.name)  # NFD folder names (macOS) match NFC class names
                if name not in label_of:
                    raise DatasetError(f"{d}: class folder {name!r} is not one of the classes "
                                       f"({len(self.classes)} in classes.txt)")
                for p in sorted(d.iterdir()):
                    if p.suffix.lower() in VIDEO_EXTENSIONS:
                        samples.append(Sample(str(p), label_of[name], p.stem))
        else:
            raise DatasetError(f"{self.root}: split {self.split!r} has no annotations/{self.split}.csv, "
                               f"no {self.split}_list.txt and no {self.split}/ folder")
        return samples, missing

    # -- items --------------------------------------------------------------------------------------------------
    def __len__(self):
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def set_epoch(self, epoch: int):
        """New random draws for each epoch (call before iterating; DataLoader workers copy the dataset)."""
        self.epoch = int(epoch)

    def _generator(self, index: int):
        ss = np.random.SeedSequence([self.seed, self.epoch, index])
        rng = np.random.default_rng(ss)
        g = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
        return rng, g

    def load(self, index: int) -> torch.Tensor:
        """The clip of sample `index`; raises VideoReadError on a broken file (no skipping)."""
        s = self.samples[index]
        reader = VideoReader(s.path, backend=self.backend)
        rng, g = self._generator(index)
        if self.num_clips > 1 or not self.train:
            views = view_indices(len(reader), self.num_frames, self.num_clips, self.sampling, self.stride)
        else:
            views = sample_indices(len(reader), self.num_frames, self.sampling, train=True, rng=rng,
                                   stride=self.stride)[None]
        frames = reader.get_frames(views.reshape(-1)).reshape(len(views), self.num_frames, reader.height,
                                                               reader.width, 3)
        clips = [self._apply(f, g) for f in frames]
        if self.num_clips == 1:
            return clips[0]
        clips = [c if c.ndim == 5 else c[None] for c in clips]  # three-crop gives (crops, 3, T, H, W)
        return torch.cat(clips)

    def _apply(self, frames, g):
        if self.transform is None:
            return to_float_clip(frames).transpose(0, 1).contiguous()  # (3, T, H, W) in [0, 1]
        if hasattr(self.transform, "transforms"):  # a vidlab Compose: pass the per-sample generator
            return self.transform(frames, generator=g)
        return self.transform(frames)

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if self.on_error == "raise":
            return self.load(index), self.samples[index].label, index
        failed = []  # (index, path, reason) of the broken clips passed over on the way to a readable one
        for k in range(len(self)):
            j = (index + k) % len(self)
            try:
                item = self._load_or_known_broken(j), self.samples[j].label, j
            except VideoReadError as e:
                failed.append((j, e.path, e.reason))
                continue
            for i, path, reason in failed:  # logged with the clip that stood in, so the report can name it
                self._skips.add(path, reason, index=i, stand_in=self.samples[j].path)
            return item
        for i, path, reason in failed:
            self._skips.add(path, reason, index=i, stand_in=None)
        raise DatasetError(f"{self.root} [{self.split}]: no clip in the split could be read")

    def _load_or_known_broken(self, j: int) -> torch.Tensor:
        """load(j), except that a file already found broken (by any process, since reset_skipped) is not decoded
        again: a broken clip costs one decode per process, however often the sampler draws it."""
        if self._known_pid != os.getpid():   # a fresh process (DataLoader worker): learn what others found
            self._known_broken = {e["path"]: e["reason"] for e in self._skips.read()}
            self._known_pid = os.getpid()
        path = self.samples[j].path
        if path in self._known_broken:
            raise VideoReadError(path, self._known_broken[path])
        try:
            return self.load(j)
        except VideoReadError as e:
            self._known_broken[path] = e.reason
            warnings.warn(f"skipping unreadable clip {e}", stacklevel=3)
            raise

    def get_view(self, index: int, clip_idx: int, crop_idx: int, num_clips: int = 1, num_crops: int = 1):
        """Test view (clip_idx of `num_clips` temporal windows, crop_idx of `num_crops` spatial crops) of sample
        `index` as `(clip (3, T, H, W), label, index)`; None (counted as skipped, with a warning) when the clip
        cannot be decoded. Crops: 1 = centre, 3 = start/centre/end along the long side (after the transform's
        short-side resize)."""
        s = self.samples[index]
        try:
            reader = VideoReader(s.path, backend=self.backend)
            idx = view_indices(len(reader), self.num_frames, num_clips, self.sampling, self.stride)[clip_idx]
            frames = reader.get_frames(idx)
        except VideoReadError as e:
            if self.on_error == "raise":
                raise
            if clip_idx == 0 and crop_idx == 0:
                self._skips.add(e.path, e.reason, index=index, stand_in=None)
                warnings.warn(f"skipping unreadable clip {e}", stacklevel=2)
            return None
        rng, g = self._generator(index)
        return self._view_transform(crop_idx, num_crops)(frames, generator=g), s.label, index

    def _view_transform(self, crop_idx: int, num_crops: int):
        """The dataset's eval transform with its crop replaced by crop `crop_idx` of `num_crops`."""
        from .transforms import (CenterCrop, Compose, RandomHorizontalFlip, RandomResizedCrop, ResizeShortSide,
                                 SelectCrop, ThreeCrop, ToFloat)
        tf = self.transform
        if tf is None:
            return lambda frames, generator=None: self._apply(frames, None)
        if not hasattr(tf, "transforms"):
            return lambda frames, generator=None: tf(frames)
        out = []
        for t in tf.transforms:
            if isinstance(t, RandomHorizontalFlip):
                continue
            if isinstance(t, RandomResizedCrop):  # a training pipeline asked for a test view: resize + crop
                out.append(ResizeShortSide(t.size))
                t = CenterCrop(t.size)
            if isinstance(t, (CenterCrop, ThreeCrop)):
                t = SelectCrop(t.size, crop_idx, num_crops)
            out.append(t)
        if not any(isinstance(t, ToFloat) for t in out):
            out.insert(0, ToFloat())
        return Compose(out)

    # -- skip accounting ----------------------------------------------------------------------------------------
    @property
    def skipped(self) -> list[dict]:
        """Every skip since the last reset_skipped(), in all processes: one dict per attempt, with path, reason,
        index and stand_in (the path of the clip returned in its place; None when none was, as in get_view)."""
        return self._skips.read()

    @property
    def num_skipped(self) -> int:
        """Broken files met since the last reset_skipped() (each counted once, however often it was drawn)."""
        return len({s["path"] for s in self.skipped})

    @property
    def num_skip_attempts(self) -> int:
        """Times a broken file was drawn since the last reset_skipped() (>= num_skipped)."""
        return len(self.skipped)

    def reset_skipped(self):
        self._skips.clear()
        self._known_broken.clear()

    def skip_report(self) -> str:
        sk = self.skipped
        if not sk:
            return f"{self.split}: no clip skipped"
        paths = sorted({s["path"] for s in sk})
        stand_ins = sorted({s["stand_in"] for s in sk if s.get("stand_in")})
        return (f"{self.split}: {len(paths)} unreadable clip(s), skipped {len(sk)} time(s): "
                + "; ".join(f"{p}" for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
                + (f"; stood in: {len(stand_ins)} clip(s), e.g. {stand_ins[0]}" if stand_ins else ""))

    def __repr__(self):
        return (f"VideoClipDataset(root={str(self.root)!r}, split={self.split!r}, clips={len(self)}, "
                f"classes={len(self.classes)}, num_frames={self.num_frames}, sampling={self.sampling!r}, "
                f"train={self.train})")
