"""Mini-Kinetics subsets: K clips per class from a local Kinetics copy, trimmed and resized with FFmpeg.

    from vidlab.data import make_subset
    make_subset("/data/kinetics400", "data/mini-k10", classes="k400_motion10", train_per_class=20, val_per_class=5)

The output has the layout `VideoClipDataset` reads (vidlab.data.kinetics) plus `manifest.json` and `report.json`.
FFmpeg is the binary `imageio-ffmpeg` ships.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError, VideoReadError
from .io import VideoReader
from .kinetics import (KINETICS_COLUMNS, SPLIT_ALIASES, _find_split_dir, _folder_name, _index_videos, clip_stem,
                       read_id_list, read_kinetics_csv, resolve_class_list)

__all__ = ["make_subset"]

_TRIMMED = re.compile(r"^.+_\d{6}_\d{6}$")     # the official crawler's `<id>_<start>_<end>`: already cut


def make_subset(kinetics_root, out_dir, classes="k400_motion10", *, train_per_class: int = 20,
                val_per_class: int = 5, seed: int = 0, short_side: int = 128, fps: float | None = None,
                crf: int = 23, annotations=None, ids: dict | None = None, check_readable: bool = True,
                timeout: float = 120.0, progress: bool = False) -> Path:
    """Build a mini-Kinetics subset from a local Kinetics copy.

    Args:
        kinetics_root: the local copy: `<split>/[<class>/]<clip>` videos (class folders optional; `val` or
            `validate`), annotations in `<root>/annotations/` or `<root>/` (train.csv, validate.csv/val.csv).
        classes: a preset name (`k400_motion10`, `k400_motion50` in vidlab/data/presets/), a file with one label per
            line, or a list of labels. None with `ids`: the classes of the listed clips (Mini-Kinetics-200).
        train_per_class, val_per_class: K clips per class and split, drawn with `seed` among the rows whose file
            exists and converts; unreadable ones are replaced by the next candidate and reported.
        short_side: output short side in pixels; fps: resample (None keeps the source rate).
        annotations: folder holding the CSVs, if not under kinetics_root.
        ids: {"train": path, "val": path} of YouTube-id lists (the S3D Mini-Kinetics-200 split files
            `train_ytid_list.txt` / `val_ytid_list.txt`): only these clips are eligible.

    Trimming: a source named `<id>_<start>_<end>` is already a trimmed clip and is only resized; a source named
    `<id>` (the full YouTube video) is cut to [time_start, time_end).

    Writes the DESIGN.md layout plus `manifest.json` (source, class map, chosen rows with source path and sha256
    of each written clip, parameters) and `report.json` (missing and unreadable clips, per class shortfalls).
    """
    import imageio_ffmpeg
    src = Path(kinetics_root)
    if not src.is_dir():
        raise DatasetError(f"Kinetics root {src} does not exist or is not a folder")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty; choose a new folder for the subset")
    ann_dir = Path(annotations) if annotations is not None else None
    rows = {s: read_kinetics_csv(_split_csv(src, ann_dir, s)) for s in ("train", "val")}
    id_sets = {s: set(read_id_list(p)) for s, p in (ids or {}).items()}
    class_list = _class_list(classes, rows, id_sets, src)

    convert = _Converter(imageio_ffmpeg.get_ffmpeg_exe(), short_side, fps, crf, timeout, check_readable)
    rng = np.random.default_rng(seed)
    per_split = {"train": train_per_class, "val": val_per_class}
    manifest_rows, report = [], {"missing": [], "unreadable": [], "short": {}}
    for split in ("train", "val"):
        d = _find_split_dir(src, split)
        index = _index_videos(d) if d is not None else {}
        eligible = [r for r in rows[split] if split not in id_sets or r["youtube_id"] in id_sets[split]]
        for c in class_list:
            cand = [r for r in eligible if r["label"] == c]
            got = _fill_class(split, c, class_list, cand, per_split[split], rng, index, out, convert,
                              manifest_rows, report, progress)
            if got < per_split[split]:
                report["short"].setdefault(split, {})[c] = {"wanted": per_split[split], "got": got,
                                                            "candidates": len(cand)}
    if not manifest_rows:
        raise DatasetError(f"no clip of the chosen classes could be found or converted under {src}; "
                           f"see the report ({len(report['missing'])} missing, "
                           f"{len(report['unreadable'])} unreadable)")
    _write_layout(out, class_list, manifest_rows)
    manifest = {"source": str(src.resolve()), "classes": class_list,
                "class_to_index": {c: i for i, c in enumerate(class_list)},
                "params": {"classes": list(classes) if isinstance(classes, (list, tuple)) else
                           (None if classes is None else str(classes)),
                           "train_per_class": train_per_class, "val_per_class": val_per_class, "seed": seed,
                           "short_side": short_side, "fps": fps, "crf": crf,
                           "ids": {k: str(v) for k, v in (ids or {}).items()}},
                "clips": manifest_rows}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    report["counts"] = {s: sum(1 for r in manifest_rows if r["split"] == s) for s in ("train", "val")}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if report["missing"] or report["unreadable"] or report["short"]:
        warnings.warn(f"make_subset: {len(report['missing'])} missing and {len(report['unreadable'])} unreadable "
                      f"clip(s), {sum(len(v) for v in report['short'].values())} class/split(s) short; "
                      f"see {out / 'report.json'}", stacklevel=2)
    return out


def _split_csv(src: Path, ann_dir: Path | None, split: str) -> Path:
    """The official CSV of `split` (`validate.csv` or `val.csv` for val) under `ann_dir`, `<src>/annotations` or `src`."""
    for d in ([ann_dir] if ann_dir else []) + [src / "annotations", src]:
        for name in SPLIT_ALIASES[split]:
            if (d / f"{name}.csv").exists():
                return d / f"{name}.csv"
    raise DatasetError(f"no {split} CSV ({'/'.join(n + '.csv' for n in SPLIT_ALIASES[split])}) under "
                       f"{ann_dir or src / 'annotations'} or {src}")


def _class_list(classes, rows: dict, id_sets: dict, src: Path) -> list[str]:
    """The subset's label order: the given classes, or (classes=None) those of the clips the id lists name."""
    if classes is None:
        if not id_sets:
            raise ConfigError("make_subset needs classes (a preset, a file or a list) or ids lists")
        chosen = [r for s in ("train", "val") for r in rows[s] if r["youtube_id"] in id_sets.get(s, ())]
        class_list = sorted({r["label"] for r in chosen})
    else:
        class_list = resolve_class_list(classes)
    all_labels = {r["label"] for s in rows for r in rows[s]}
    unknown = [c for c in class_list if c not in all_labels]
    if unknown:
        raise ConfigError(f"class(es) {unknown} do not appear in the annotations of {src}")
    return class_list


def _fill_class(split: str, label: str, class_list: list, cand: list, wanted: int, rng, index: dict, out: Path,
                convert: "_Converter", manifest_rows: list, report: dict, progress: bool) -> int:
    """Convert up to `wanted` of the rows `cand` of one class, in `rng`'s order, skipping missing and unreadable
    sources (recorded in `report`); each written clip goes into `manifest_rows`. Returns how many were written."""
    got = 0
    for k in rng.permutation(len(cand)):
        if got >= wanted:
            break
        r = cand[int(k)]
        stem = clip_stem(r["youtube_id"], r["time_start"], r["time_end"])
        p = index.get(stem) or index.get(r["youtube_id"])
        if p is None:
            report["missing"].append({"split": split, "label": label, "clip": stem, "line": r["line"]})
            continue
        dst = out / split / _folder_name(label) / f"{stem}.mp4"
        span = (None, None) if _TRIMMED.match(p.stem) else (r["time_start"], r["time_end"])
        err = convert(p, dst, *span)
        if err is not None:
            report["unreadable"].append({"split": split, "label": label, "source": str(p), "error": err})
            continue
        got += 1
        manifest_rows.append({"split": split, "label": label, "label_index": class_list.index(label),
                              "youtube_id": r["youtube_id"], "time_start": r["time_start"],
                              "time_end": r["time_end"], "source": str(p),
                              "path": str(dst.relative_to(out)), "sha256": _sha256(dst)})
        if progress:
            print(f"[{split}] {label}: {got}/{wanted} {stem}")
    return got


class _Converter:
    """FFmpeg: trim [start, end) seconds, scale the short side, H.264; then (check_readable) decode it once."""

    def __init__(self, ffmpeg: str, short_side: int, fps: float | None, crf: int, timeout: float,
                 check_readable: bool):
        self.ffmpeg, self.short_side, self.fps, self.crf = ffmpeg, short_side, fps, crf
        self.timeout, self.check_readable = timeout, check_readable

    def __call__(self, src: Path, dst: Path, start: float | None, end: float | None) -> str | None:
        """None when `dst` was written (and reads), else the reason it was not."""
        err = self._ffmpeg(src, dst, start, end)
        if err is None and self.check_readable:
            try:
                if len(VideoReader(dst)) < 1:
                    err = "no frames after conversion"
            except VideoReadError as e:
                err = e.reason
            if err:
                dst.unlink(missing_ok=True)
        return err

    def _ffmpeg(self, src: Path, dst: Path, start: float | None, end: float | None) -> str | None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        side = self.short_side
        vf = f"scale='if(gt(iw,ih),-2,{side})':'if(gt(iw,ih),{side},-2)'"
        if self.fps:
            vf += f",fps={self.fps}"
        cmd = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        if start is not None:
            cmd += ["-ss", f"{start:.3f}"]
        cmd += ["-i", str(src)]
        if end is not None and start is not None:
            cmd += ["-t", f"{max(end - start, 0.1):.3f}"]
        cmd += ["-map", "0:v:0", "-an", "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(self.crf),
                "-pix_fmt", "yuv420p", "-threads", "1", "-map_metadata", "-1", "-movflags", "+faststart", str(dst)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            dst.unlink(missing_ok=True)
            return f"ffmpeg timed out after {self.timeout:.0f}s"
        if r.returncode != 0 or not dst.exists() or dst.stat().st_size == 0:
            dst.unlink(missing_ok=True)
            err = (r.stderr or "").strip().splitlines()
            return f"ffmpeg exit {r.returncode}: {err[-1] if err else 'no output'}"
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_layout(out: Path, class_list, manifest_rows):
    ann = out / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("".join(c + "\n" for c in class_list))
    for split in ("train", "val"):
        rows = sorted((r for r in manifest_rows if r["split"] == split), key=lambda r: (r["label_index"], r["path"]))
        with open(ann / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(list(KINETICS_COLUMNS))
            for r in rows:
                w.writerow([r["label"], r["youtube_id"], r["time_start"], r["time_end"], split])
        with open(ann / f"{split}_list.txt", "w") as f:
            for r in rows:
                f.write(f"{r['path']} {r['label_index']}\n")
