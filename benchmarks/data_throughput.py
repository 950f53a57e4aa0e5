"""Clips per second of the data pipeline: decord vs PyAV decoding vs the uint8 memmap cache vs rendering fresh
clips on the fly (`SyntheticStream`, what the zoo trains on), at 0 and 2 workers.

    python benchmarks/data_throughput.py                      # the synthetic default set (generated if missing)
    python benchmarks/data_throughput.py --data data/mini-k10 --frames 8 --size 112 --batches 20

Each configuration runs one warm-up batch, then times `--batches` batches of `--batch-size` clips of
`--frames` frames (segment sampling, training transform: random resized crop to `--size`, normalise) through a
torch DataLoader. The rendered stream (vidlab synthetic sets only) draws each clip at twice `--size` (at most the
stored side) before the same transform. Prints a markdown table (clips/s, ms per clip) with the machine and date.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vidlab.data import VideoClipDataset, available_backends, build_transforms, make_synthetic
from vidlab.data.cache import CachedClipDataset, build_cache
from vidlab.data.synthetic import SyntheticStream, synthetic_meta
from _common import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def measure(ds, workers: int, batch_size: int, batches: int) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0), drop_last=True,
                                         persistent_workers=workers > 0)
    it = iter(loader)
    next(it)  # warm-up: worker start, imports, first opens
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            clips, _, _ = next(it)
        except StopIteration:
            it = iter(loader)
            clips, _, _ = next(it)
        n += len(clips)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/synthetic", help="dataset root (the synthetic default is generated "
                                                             "there if missing)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args(argv)

    root = Path(args.data)
    if not (root / "classes.txt").exists():
        print(f"no dataset at {root}: generating the synthetic default set")
        make_synthetic(root)
    tf = build_transforms(True, img_size=args.size)
    rows = []
    for backend in available_backends():
        ds = VideoClipDataset(root, args.split, num_frames=args.frames, transform=tf, backend=backend)
        for w in args.workers:
            rows.append((f"decode ({backend})", w, measure(ds, w, args.batch_size, args.batches)))
    ds = VideoClipDataset(root, args.split, num_frames=args.frames)
    with tempfile.TemporaryDirectory(prefix="vidlab_cache_") as tmp:
        t0 = time.perf_counter()
        build_cache(ds, tmp, size=min(args.size * 8 // 7, 256), num_clips=1)
        build_s = time.perf_counter() - t0
        cds = CachedClipDataset(tmp, transform=tf, train=True)
        for w in args.workers:
            rows.append(("uint8 memmap cache", w, measure(cds, w, args.batch_size, args.batches)))
    if synthetic_meta(root) is not None:
        stream = SyntheticStream(root, clips_per_epoch=args.batch_size * (args.batches + 1) * 4,
                                 num_frames=args.frames, img_size=args.size, transform=tf)
        for w in args.workers:
            rows.append((f"rendered on the fly ({stream.cfg.size} px)", w,
                         measure(stream, w, args.batch_size, args.batches)))
    print(f"\n{len(ds)} {args.split} clips of {root}; {args.frames} frames -> {args.size}px, batch {args.batch_size}, "
          f"{args.batches} timed batches")
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}; cache built in {build_s:.1f}s (single process)\n")
    print("| source | workers | clips/s | ms/clip |")
    print("|---|---:|---:|---:|")
    for name, w, r in rows:
        print(f"| {name} | {w} | {r:.1f} | {1000 / r:.1f} |")
    return rows


if __name__ == "__main__":
    main()
