"""Video-FocalNet cost and speed: params, MACs (with the temporal branch's share), forward and forward+backward
latency (CPU, batch 1), and optionally the nano size's validation accuracy on the default synthetic data.

    python benchmarks/video_focalnet.py                  # nano + Video-FocalNet-T (a few minutes on 2 cores)
    python benchmarks/video_focalnet.py --quick          # nano only (and its design-space variants)
    python benchmarks/video_focalnet.py --train          # + benchmarks/train_nano.py --model video_focalnet_nano

Rows: video_focalnet_nano at 8x128^2 in each design (`parallel` = released, `sequential`, `spatial`, and the
`depthwise` temporal-conv teaching variant), and video_focalnet_tiny (the smallest paper variant) at its paper
input 8x224^2. MACs: vidlab.profile (conv/linear/matmul, FLOP = 2 x MAC). Latency: vidlab.profile.latency, the
median of --iters timed calls after one warm-up (forward under no_grad in eval mode; forward+backward of the
logit sum in train mode).
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

import vidlab
from vidlab.models.layers import count_params
from vidlab.profile import complexity, latency
from _common import machine, train_nano  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

ROOT = Path(__file__).resolve().parents[1]


def temporal_gmacs(c) -> float:
    """MACs of the temporal branch alone: f_temporal, the temporal focal convs and h_temporal (leaf modules)."""
    t = c.table
    leaf = t["type"].isin(["Linear", "Conv1d"]) & t["module"].str.contains("temporal")
    return float(t[leaf]["macs"].sum()) / 1e9


def row(name: str, shape, iters: int, **overrides) -> dict:
    torch.manual_seed(0)
    model = vidlab.create_model(name, num_classes=400, num_frames=shape[2], img_size=shape[3], **overrides)
    c = complexity(model, shape)
    fwd = latency(model, shape, warmup=1, iters=iters)
    bwd = latency(model, shape, warmup=1, iters=iters, backward=True)
    label = name + "".join(f" {k}={v}" for k, v in overrides.items())
    return {"model": label, "input": "x".join(map(str, shape[2:])), "params": count_params(model),
            "gmac": c.gmacs, "temporal_gmac": temporal_gmacs(c), "fwd_ms": fwd.median_ms, "fwd_iqr": fwd.iqr_ms,
            "fwdbwd_ms": bwd.median_ms, "fwdbwd_iqr": bwd.iqr_ms}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="nano only")
    p.add_argument("--iters", type=int, default=5, help="timed calls per latency (median reported)")
    p.add_argument("--train", action="store_true", help="also train the nano size (benchmarks/train_nano.py)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--data", default=str(ROOT / "data" / "synthetic"))
    args = p.parse_args(argv)

    nano = (1, 3, 8, 128, 128)
    configs = [("video_focalnet_nano", nano, {}), ("video_focalnet_nano", nano, {"design": "sequential"}),
               ("video_focalnet_nano", nano, {"design": "spatial"}),
               ("video_focalnet_nano", nano, {"temporal_conv": "depthwise"})]
    if not args.quick:
        configs.append(("video_focalnet_tiny", (1, 3, 8, 224, 224), {}))
    print(f"# Video-FocalNet, CPU batch 1 — {machine()}, {datetime.date.today()}")
    print("| model | input | params | GMAC | temporal GMAC | fwd ms (IQR) | fwd+bwd ms (IQR) |")
    print("|---|---|---|---|---|---|---|")
    for name, shape, kw in configs:
        r = row(name, shape, args.iters if name.endswith("nano") else max(1, args.iters // 2), **kw)
        print(f"| {r['model']} | {r['input']} | {r['params']:,} | {r['gmac']:.3f} | {r['temporal_gmac']:.3f} | "
              f"{r['fwd_ms']:.0f} ({r['fwd_iqr']:.0f}) | {r['fwdbwd_ms']:.0f} ({r['fwdbwd_iqr']:.0f}) |", flush=True)
    if args.train:
        return train_nano("video_focalnet_nano", args.data, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
