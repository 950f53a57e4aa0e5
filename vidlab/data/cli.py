"""`vidlab data ...`: synthetic data, mini-Kinetics subsets, decode caches.

    vidlab data synth [--out data/synthetic] [--preset default|smoke|kinetics-like] [--seed 0] [--dry-run]
    vidlab data subset --kinetics /data/kinetics400 --out data/mini-k10 [--classes k400_motion10] [--train 20]
                       [--val 5] [--size 128] [--classes from-ids --ids-train train_ytid_list.txt
                       --ids-val val_ytid_list.txt]
    vidlab data cache --data data/synthetic [--split train] [--frames 8] [--views 4] [--size 128] [--out ...]
    vidlab data info --data data/synthetic

`add_data_commands(subparsers)` adds the `data` parser to a parent argparse; each leaf sets `func` to a callable
taking the parsed args and returning an exit status.
"""
from __future__ import annotations

import argparse
import errno
import json
import shutil
import sys
import time
from pathlib import Path

__all__ = ["add_data_commands", "run", "main"]


def _int_at_least(low: int):
    """An argparse type: an integer >= `low`, else one line saying what was expected."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v
    return parse


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not 0.0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


_positive, _non_negative = _int_at_least(1), _int_at_least(0)


def add_data_commands(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help="dataset tools: synthetic data, mini-Kinetics subsets, decode cache",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])
    sub = p.add_subparsers(dest="data_command", metavar="{synth,subset,cache,info}")

    s = sub.add_parser("synth", help="generate the synthetic temporal dataset (real H.264 mp4, Kinetics layout)")
    s.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    s.add_argument("--preset", default="default", choices=["default", "smoke", "kinetics-like"])
    s.add_argument("--seed", type=_non_negative, default=0)
    s.add_argument("--classes", type=_positive, dest="num_classes", help="number of classes (default: preset, 12)")
    s.add_argument("--clips-per-class", type=_positive, help="train clips per class (val keeps the preset's ratio)")
    s.add_argument("--frames", type=_positive, dest="num_frames", help="frames per clip")
    s.add_argument("--size", type=_positive, help="frame side in pixels (even)")
    s.add_argument("--difficulty", type=_fraction, help="0 (easy) .. 1 (hard); default 0.5")
    s.add_argument("--workers", type=_positive, help="processes (default: all CPUs)")
    s.add_argument("--overwrite", action="store_true", help="regenerate a dataset of ours that is already there")
    s.add_argument("--dry-run", action="store_true", help="print the configuration and sizes, write nothing")
    s.set_defaults(func=run_synth)

    k = sub.add_parser("subset", help="build a mini-Kinetics subset from a local Kinetics copy (FFmpeg trim+resize)")
    k.add_argument("--kinetics", required=True, help="local Kinetics root (<split>/[<class>/]<clip>.mp4 + CSVs)")
    k.add_argument("--out", required=True, help="output folder (must be new or empty)")
    k.add_argument("--classes", default="k400_motion10",
                   help="preset name (k400_motion10, k400_motion50), a file with one label per line, or "
                        "'from-ids' (the classes of the clips in --ids-train/--ids-val: Mini-Kinetics-200)")
    k.add_argument("--annotations", help="folder of the official CSVs, if not <kinetics>/annotations")
    k.add_argument("--train", type=_non_negative, default=20, help="train clips per class")
    k.add_argument("--val", type=_non_negative, default=5, help="val clips per class")
    k.add_argument("--size", type=_positive, default=128, help="short side of the written clips")
    k.add_argument("--fps", type=_positive_float, help="resample to this frame rate (default: keep)")
    k.add_argument("--seed", type=_non_negative, default=0)
    k.add_argument("--ids-train", help="S3D Mini-Kinetics-200 train_ytid_list.txt (restricts the clips)")
    k.add_argument("--ids-val", help="S3D Mini-Kinetics-200 val_ytid_list.txt")
    k.set_defaults(func=run_subset)

    c = sub.add_parser("cache", help="decode a split once into a uint8 memmap for fast epochs")
    c.add_argument("--data", required=True, help="dataset root")
    c.add_argument("--split", default="train")
    c.add_argument("--frames", type=_positive, default=8)
    c.add_argument("--sampling", default="segment", choices=["segment", "dense"])
    c.add_argument("--stride", type=_positive, default=2)
    c.add_argument("--views", type=_positive, default=1, help="temporal views stored per clip")
    c.add_argument("--size", type=_positive, default=128, help="stored frame side (short-side resize + centre crop)")
    c.add_argument("--workers", type=_non_negative, default=0)
    c.add_argument("--out", help="cache folder (default: <data>/.cache/<split>_...)")
    c.set_defaults(func=run_cache)

    i = sub.add_parser("info", help="describe a dataset folder: classes, clips per split, one clip's metadata")
    i.add_argument("--data", required=True)
    i.set_defaults(func=run_info)
    return p


def run(args) -> int:
    """Dispatch parsed args to their command; returns the exit status."""
    return int(args.func(args) or 0)


def run_synth(args) -> int:
    from .synthetic import make_synthetic, synthetic_config
    cfg = synthetic_config(args.preset, num_classes=args.num_classes, clips_per_class=args.clips_per_class,
                           num_frames=args.num_frames, size=args.size, difficulty=args.difficulty)
    mb = cfg.total_clips() * cfg.num_frames * cfg.size ** 2 * 3 / 2**20
    print(f"preset {cfg.preset}: {cfg.num_classes} classes x {cfg.clips_per_class} clips, {cfg.num_frames} frames "
          f"at {cfg.size}x{cfg.size}, {cfg.fps} fps, difficulty {cfg.difficulty} -> {cfg.total_clips()} clips "
          f"({mb:.0f} MiB decoded)")
    if args.dry_run:
        return 0
    t0 = time.perf_counter()
    try:
        root = make_synthetic(args.out, preset=args.preset, num_classes=args.num_classes,
                              clips_per_class=args.clips_per_class, num_frames=args.num_frames, size=args.size,
                              difficulty=args.difficulty, seed=args.seed, workers=args.workers,
                              overwrite=args.overwrite, progress=sys.stderr.isatty())
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise _out_of_space(Path(args.out), cfg.total_clips(), e) from None
    print(f"dataset ready at {root} ({time.perf_counter() - t0:.1f}s)")
    return 0


def _out_of_space(root: Path, total: int, e: OSError):
    """The error of a generation that filled the disk: how much the dataset needs (measured on the clips written:
    video and ground truth) and how much is free."""
    from ..errors import OutOfSpaceError
    clips = [f for f in root.glob("*/*/*.mp4") if f.is_file()]
    written = sum(f.stat().st_size for f in clips) + sum(f.stat().st_size for f in root.glob("ground_truth/*/*.npz"))
    need = f"about {written / len(clips) * total / 2**20:.1f} MiB" if clips else "more than that"
    free = shutil.disk_usage(next(p for p in [root, *root.parents] if p.exists())).free
    return OutOfSpaceError(f"{root}: writing the dataset failed ({e.strerror}) after {len(clips)} of {total} clips; "
                           f"it needs {need} in all, {free / 2**20:.1f} MiB are free there. Free some space, then "
                           "run the same command with --overwrite (it replaces the partial dataset)")


def run_subset(args) -> int:
    from .subset import make_subset
    ids = {k: v for k, v in (("train", args.ids_train), ("val", args.ids_val)) if v}
    classes = None if args.classes == "from-ids" else args.classes
    out = make_subset(args.kinetics, args.out, classes=classes, train_per_class=args.train,
                      val_per_class=args.val, seed=args.seed, short_side=args.size, fps=args.fps,
                      annotations=args.annotations, ids=ids or None, progress=True)
    report = json.loads((out / "report.json").read_text())
    print(f"subset written to {out}: {report['counts']}; missing {len(report['missing'])}, "
          f"unreadable {len(report['unreadable'])} (details in {out / 'report.json'})")
    return 0


def run_cache(args) -> int:
    from .cache import build_cache
    from .kinetics import VideoClipDataset
    ds = VideoClipDataset(args.data, args.split, num_frames=args.frames, sampling=args.sampling, stride=args.stride)
    out = Path(args.out) if args.out else (Path(args.data) / ".cache" /
                                           f"{ds.split}_{args.sampling}{args.frames}x{args.stride}_v{args.views}_"
                                           f"{args.size}px")
    t0 = time.perf_counter()
    build_cache(ds, out, size=args.size, num_clips=args.views, workers=args.workers, progress=sys.stderr.isatty())
    meta = json.loads((out / "cache.json").read_text())
    print(f"cached {len(ds)} clips ({len(meta['failed'])} failed) into {out} in {time.perf_counter() - t0:.1f}s")
    return 0


def run_info(args) -> int:
    import warnings

    from ..errors import DatasetError, VidlabError
    from .io import VideoReader
    from .kinetics import VideoClipDataset
    root = Path(args.data)
    if not root.is_dir():
        raise DatasetError(f"argument --data: no such directory: {args.data}")
    found, problems = 0, []
    for split in ("train", "val"):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ds = VideoClipDataset(args.data, split)
        except VidlabError as e:  # a split may simply be absent; say why, and fail if no split is usable
            problems.append(f"{split}: {e}")
            print(f"{split}: {e}")
            continue
        found += 1
        print(f"{split}: {len(ds)} clips, {len(ds.classes)} classes")
        for w in caught:
            print(f"  note: {w.message}")
        try:
            print(f"  e.g. {VideoReader(ds.samples[0].path)}")
        except VidlabError as e:
            print(f"  e.g. unreadable: {e}")
    if not found:
        raise DatasetError(f"argument --data: {args.data} has no usable split ({'; '.join(problems)})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vidlab")
    add_data_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
