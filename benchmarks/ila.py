"""ILA cost and speed: params, MACs, forward and forward+backward latency (CPU, batch 1), and optionally the nano
size's validation accuracy on the default synthetic data.

    python benchmarks/ila.py                 # latency / params / MACs table (a few minutes on 2 shared cores)
    python benchmarks/ila.py --quick         # nano only
    python benchmarks/ila.py --train         # + benchmarks/train_nano.py --model ila_nano

Rows: ila_nano at 8x128^2 in both modes (released `residual`, paper `token`) and ila_vit_b32 (the smallest paper
variant, linear head) at 8x224^2. MACs by vidlab.profile.complexity (FlopCounterMode + SDPA formula; MAC = FLOP/2)
of the whole model; `visual GMAC` is the CLIP visual encoder alone (the official-code figure in docs/architectures.md is
49.6 for B/32). Latency: median of --iters timed calls after one warm-up (vidlab.profile.latency; forward under
no_grad in eval mode, forward+backward of the logit sum in train mode).

Note: vidlab.train.Trainer adds ILA's per-layer alignment loss to the cross-entropy (the model declares
`returns_aux`), as the released recipe does; rows measured before that hook existed trained on cross-entropy only.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

import vidlab
from vidlab.profile import complexity, latency
from _common import machine, train_nano  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

ROOT = Path(__file__).resolve().parents[1]


def row(name: str, shape: tuple, iters: int, **kw) -> dict:
    torch.manual_seed(0)
    model = vidlab.create_model(name, num_classes=400 if "vit" in name else 12, num_frames=shape[2],
                                img_size=shape[3], **kw)
    c = complexity(model, shape)
    cv = complexity(model.visual, shape)
    fwd = latency(model, shape, warmup=1, iters=iters)
    bwd = latency(model, shape, warmup=1, iters=iters, backward=True)
    label = name + (f" ({kw['ila_mode']})" if "ila_mode" in kw else "")
    return {"model": label, "input": "x".join(map(str, shape[2:])), "params": model.param_counts()["total"],
            "GMAC": c.macs / 1e9, "visual GMAC": cv.macs / 1e9, "fwd ms": fwd.median_ms, "fwd+bwd ms": bwd.median_ms}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="nano only")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--train", action="store_true", help="also run benchmarks/train_nano.py --model ila_nano")
    p.add_argument("--data", default="data/synthetic")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    rows = [row("ila_nano", (1, 3, 8, 128, 128), args.iters),
            row("ila_nano", (1, 3, 8, 128, 128), args.iters, ila_mode="token")]
    if not args.quick:
        rows.append(row("ila_vit_b32", (1, 3, 8, 224, 224), max(2, args.iters // 2)))
    print(f"# ILA, CPU batch 1, {machine()}, {datetime.date.today()}")
    print("| model | input | params | GMAC | visual GMAC | fwd ms | fwd+bwd ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['params']:,} | {r['GMAC']:.3f} | {r['visual GMAC']:.3f} | "
              f"{r['fwd ms']:.0f} | {r['fwd+bwd ms']:.0f} |")
    if args.train:
        return train_nano("ila_nano", args.data)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
