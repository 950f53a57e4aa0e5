"""DualFormer cost and speed: params, MACs, forward and forward+backward latency (CPU, batch 1), and optionally
the nano size's validation accuracy on the default synthetic data.

    python benchmarks/dualformer.py                      # latency / params / MACs table (a few minutes on 2 cores)
    python benchmarks/dualformer.py --quick              # nano only
    python benchmarks/dualformer.py --train              # + benchmarks/train_nano.py --model dualformer_nano

Rows: dualformer_nano at 8x128^2 and dualformer_tiny (the smallest paper variant) at its paper input 32x224^2,
with the attention-only share of the MACs. Latency is the median of --iters timed calls after one warm-up
(vidlab.profile.latency; forward under no_grad in eval mode, forward+backward of the logit sum in train mode).
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


def attention_gmacs(model, shape) -> float:
    """MACs of the attention matmuls alone (QK^T and AV): 2 * N * keys * C per attention layer."""
    from vidlab.models import dualformer as df
    T, S = shape[2], shape[3]
    cfg = model.cfg
    grids = df.DualFormerConfig(**{**cfg.__dict__, "num_frames": T, "img_size": S}).stage_grids()
    total = 0
    for stage, grid, C in zip(model.stages, grids, cfg.embed_dims):
        N = grid[0] * grid[1] * grid[2]
        for block in stage.blocks:
            a = block.attn
            if isinstance(a, df.LocalWindowAttention):
                w = a.effective_window(grid)
                keys = w[0] * w[1] * w[2]
            else:
                keys = sum(g[0] * g[1] * g[2] for g in a.pyramid_grids(grid))
            total += 2 * N * keys * C
    return total / 1e9


def row(name: str, shape, iters: int) -> dict:
    torch.manual_seed(0)
    model = vidlab.create_model(name, num_classes=400, num_frames=shape[2], img_size=shape[3])
    c = complexity(model, shape)
    fwd = latency(model, shape, warmup=1, iters=iters)
    bwd = latency(model, shape, warmup=1, iters=iters, backward=True)
    return {"model": name, "input": "x".join(map(str, shape[2:])), "params": count_params(model),
            "gmac": c.gmacs, "attn_gmac": attention_gmacs(model, shape), "fwd_ms": fwd.median_ms,
            "fwd_iqr": fwd.iqr_ms, "fwdbwd_ms": bwd.median_ms, "fwdbwd_iqr": bwd.iqr_ms}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="nano only")
    p.add_argument("--iters", type=int, default=5, help="timed calls per latency (median reported)")
    p.add_argument("--train", action="store_true", help="also train the nano size (benchmarks/train_nano.py)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--data", default=str(ROOT / "data" / "synthetic"))
    args = p.parse_args(argv)

    configs = [("dualformer_nano", (1, 3, 8, 128, 128))]
    if not args.quick:
        configs.append(("dualformer_tiny", (1, 3, 32, 224, 224)))
    print(f"# DualFormer, CPU batch 1 — {machine()}, {datetime.date.today()}")
    print("| model | input | params | GMAC | attention GMAC | fwd ms (IQR) | fwd+bwd ms (IQR) |")
    print("|---|---|---|---|---|---|---|")
    for name, shape in configs:
        r = row(name, shape, args.iters if name.endswith("nano") else max(1, args.iters // 2))
        print(f"| {r['model']} | {r['input']} | {r['params']:,} | {r['gmac']:.3f} | {r['attn_gmac']:.3f} | "
              f"{r['fwd_ms']:.0f} ({r['fwd_iqr']:.0f}) | {r['fwdbwd_ms']:.0f} ({r['fwdbwd_iqr']:.0f}) |", flush=True)
    if args.train:
        return train_nano("dualformer_nano", args.data, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
