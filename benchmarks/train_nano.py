"""Train a (nano) model on the synthetic data and print one measured table row.

    python benchmarks/train_nano.py --model vit_joint_nano
    python benchmarks/train_nano.py --model video_focalnet_nano --epochs 8 --header
    python benchmarks/train_nano.py --model r2plus1d_nano --data data/synthetic --json runs/r2plus1d.json

The data folder is generated with `vidlab.data.make_synthetic` (default preset) when it does not exist. The row:
model | params | val top-1 | val top-5 | frame order (top-1 ordered / shuffled, pairwise ordered / shuffled on the
time-reversed pairs) | train time | clips/s | epochs | machine | date. Val top-1/top-5 are those of the last epoch
(single view); the frame-order test runs on the val clips of the time-reversed pairs with the final weights.
Timings are wall clock and process CPU time of `Trainer.fit` (training and per-epoch validation, decoding
included); on a shared machine the CPU time is the comparable number, the wall clock depends on the load.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch
from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="registered model, e.g. vit_joint_nano")
    p.add_argument("--data", default="data/synthetic", help="dataset root (generated when missing)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--frames", type=int, default=8)
    # 64 px by default: on a shared 2-core CPU a nano model at 128 px takes ~4x longer per epoch (see the doc).
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=0)
    # Defaults = the setting of the baseline rows in docs (8x64x64, 6 epochs, 1 cached view), so rows compare.
    p.add_argument("--cache", type=int, default=1, metavar="VIEWS",
                   help="decode once into <data>/.cache with this many temporal views per train clip (0: decode "
                        "every epoch). Decoding dominates on a small CPU; 1 view is the cheapest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="run folder for checkpoints and metrics (default: none written)")
    p.add_argument("--json", help="also write the measured row as JSON here")
    p.add_argument("--header", action="store_true", help="print the markdown table header first")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.train import Trainer, TrainConfig, build_datasets, frame_order_test

    root = Path(args.data)
    if not (root / "annotations" / "meta.json").exists():
        print(f"generating the synthetic dataset in {root} ...", file=sys.stderr)
        make_synthetic(root, seed=0, progress=True)
    pairs = json.loads((root / "annotations" / "meta.json").read_text()).get("reversed_pairs", [])

    info = vidlab.model_info(args.model)
    train_ds, val_ds = build_datasets(root, ("train", "val"), num_frames=args.frames, img_size=args.size,
                                      mean=info["mean"], std=info["std"], seed=args.seed,
                                      cache=args.cache > 0, cache_views=args.cache or None)
    torch.manual_seed(args.seed)
    model = vidlab.create_model(args.model, num_classes=len(train_ds.classes), num_frames=args.frames,
                                img_size=args.size)
    params = sum(p.numel() for p in model.parameters())
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      warmup_epochs=args.warmup_epochs, num_workers=args.workers, seed=args.seed,
                      device=args.device, out_dir=args.out, progress=not args.no_progress)
    trainer = Trainer(model, train_ds, val_ds, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    history = trainer.fit()
    train_time = time.perf_counter() - t0
    cpu_time = time.process_time() - c0   # CPU seconds this process used: honest on a shared machine
    fo = frame_order_test(model, val_ds, pairs, device=trainer.device, batch_size=args.batch_size,
                          seed=args.seed) if pairs else None
    last = history[-1]
    row = {
        "model": args.model, "params": params, "val_top1": last["val_top1"], "val_top5": last["val_top5"],
        "best_val_top1": max(h["val_top1"] for h in history), "train_loss": last["train_loss"],
        "frame_order": fo, "train_time_s": train_time, "train_cpu_s": cpu_time,
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "clips_per_s": sum(h["clips_per_s"] for h in history) / len(history),
        "epochs": args.epochs, "train_clips": len(train_ds), "val_clips": len(val_ds),
        "input": f"{args.frames}x{args.size}x{args.size}",
        "batch_size": args.batch_size, "cache_views": args.cache, "lr": args.lr, "seed": args.seed, "data": str(root),
        "machine": machine(), "device": str(trainer.device), "date": datetime.date.today().isoformat(),
        "vidlab": vidlab.__version__, "torch": torch.__version__,
    }
    if args.header:
        print("| model | params | val top-1 | val top-5 | frame order: top-1 ordered / shuffled | "
              "pairwise ordered / shuffled | train time (wall / CPU) | train clips/s | epochs | machine | date |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    order = (f"{fo['ordered']:.1f} / {fo['shuffled']:.1f}", f"{fo['ordered_pairwise']:.1f} / "
             f"{fo['shuffled_pairwise']:.1f}") if fo else ("n/a", "n/a")
    print(f"| {args.model} | {params / 1e6:.2f} M | {row['val_top1']:.1f} | {row['val_top5']:.1f} | {order[0]} | "
          f"{order[1]} | {train_time:.0f} s / {cpu_time:.0f} s | {row['clips_per_s']:.1f} | {args.epochs} | {row['machine']} | "
          f"{row['date']} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
