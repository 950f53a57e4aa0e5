"""How cost grows with clip length and resolution: joint vs divided space-time attention vs (2+1)D convolution.

For each model (the nano sizes: same tubelet tokens for the two ViTs) and each clip size, measures
  MACs / FLOPs   vidlab.profile.complexity (exact; attention counted on every backend)
  latency        vidlab.profile.latency, forward, no_grad, median of --iters after warm-up
  memory         vidlab.profile.peak_memory (CPU: peak live tensor bytes; CUDA: max_memory_allocated)
and fits the log-log slope of each quantity against the number of frames (at --size) and against the number of
pixels per frame (at --frames): 1 = linear, 2 = quadratic.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py                       # CPU, a few minutes
    python benchmarks/scaling.py --device cuda --models vit_joint_base vit_divided_base --size 224 --frames 8 \
        --frame-grid 4 8 16 32 --size-grid 112 160 224 320
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

from vidlab.profile import scaling  # noqa: E402

DEFAULT_MODELS = ["vit_joint_nano", "vit_divided_nano", "r2plus1d_nano"]


def loglog_slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def run(models, frame_grid, size_grid, frames, size, device, iters, measure):
    import pandas as pd
    parts = []
    for name in models:
        kw = dict(measure=measure, device=device, iters=iters, warmup=1, num_classes=10)
        parts.append(scaling(name, frames=frame_grid, sizes=[size], **kw).assign(sweep="frames"))
        parts.append(scaling(name, frames=[frames], sizes=size_grid, **kw).assign(sweep="size"))
    return pd.concat(parts, ignore_index=True)


def to_markdown(df, frames, size) -> str:
    lines = ["| model | T | S | params | GMAC | GFLOP | latency ms (IQR) | peak MiB |", "|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in df.itertuples():
        key = (r.model, r.frames, r.size)
        if key in seen:
            continue
        seen.add(key)
        lat = f"{r.latency_ms:.1f} ({r.latency_iqr_ms:.1f})" if math.isfinite(r.latency_ms) else "-"
        mem = f"{r.peak_mb:.1f}" if math.isfinite(r.peak_mb) else "-"
        lines.append(f"| {r.model} | {r.frames} | {r.size} | {r.params / 1e6:.2f}M | {r.gmacs:.3f} | "
                     f"{2 * r.gmacs:.3f} | {lat} | {mem} |")
    lines += ["", f"log-log slopes (1 = linear, 2 = quadratic): vs frames at {size}², vs pixels per frame at "
                  f"{frames} frames", "", "| model | MAC vs T | latency vs T | memory vs T | MAC vs H·W | "
                  "latency vs H·W | memory vs H·W |", "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(df["model"]):
        f = df[(df.model == name) & (df.sweep == "frames")]
        s = df[(df.model == name) & (df.sweep == "size")]
        cells = [loglog_slope(f.frames, f[c]) for c in ("macs", "latency_ms", "peak_mb")] + \
                [loglog_slope(s["size"] ** 2, s[c]) for c in ("macs", "latency_ms", "peak_mb")]
        lines.append(f"| {name} | " + " | ".join("-" if math.isnan(c) else f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    p.add_argument("--frame-grid", nargs="+", type=int, default=[4, 8, 16, 32])
    p.add_argument("--size-grid", nargs="+", type=int, default=[64, 96, 128, 192])
    p.add_argument("--frames", type=int, default=8, help="clip length of the resolution sweep")
    p.add_argument("--size", type=int, default=128, help="resolution of the frame sweep")
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--measure", nargs="+", default=["macs", "latency", "memory"])
    p.add_argument("--csv", default=None, help="also write the raw table here")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    df = run(args.models, args.frame_grid, args.size_grid, args.frames, args.size, args.device, args.iters,
             tuple(args.measure))
    if args.csv:
        df.to_csv(args.csv, index=False)
    dev = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    head = (f"scaling, batch 1, forward, {dev} ({where}), torch {torch.__version__}, {platform.python_version()}; "
            f"memory: {'max_memory_allocated' if dev.type == 'cuda' else 'peak live tensor bytes (vidlab.profile)'}")
    out = head + "\n\n" + to_markdown(df, args.frames, args.size)
    print(out)
    return out


if __name__ == "__main__":
    main()
