"""Scored interpretability: how well each map lands on the acting objects of the synthetic clips.

    python benchmarks/pointing_game.py                        # trains each nano briefly, then scores
    python benchmarks/pointing_game.py --ckpt data/checkpoints  # reuse notebook 08's checkpoints (<ckpt>/<model>/best.pt)

Prints a markdown table (model x map kind: pointing game, energy in mask) beside a random map and a centre prior,
with machine and date. The models are trained on the synthetic data (same recipe as notebook 08) unless a
checkpoint for the same input is found.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synthetic", help="synthetic dataset root (generated when missing)")
    p.add_argument("--models", nargs="*", help="default: every registered *_nano model")
    p.add_argument("--ckpt", help="folder with <model>/best.pt checkpoints (from notebook 08 or vidlab train)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--clips", type=int, default=24, help="validation clips scored")
    p.add_argument("--ig-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.models.official import find_state_dict, load_checkpoint
    from vidlab.train import Trainer, TrainConfig, build_datasets
    from vidlab.utils import seed_everything
    from vidlab.viz.signature import clips_with_masks, pointing_game_table

    root = Path(args.data)
    if not (root / "classes.txt").exists():
        make_synthetic(root, seed=0)
    train_ds, val_ds = build_datasets(root, ("train", "val"), num_frames=args.frames, img_size=args.size,
                                      seed=args.seed)
    names = args.models or vidlab.list_models("*_nano")
    nets, how = {}, {}
    for name in names:
        seed_everything(args.seed)
        m = vidlab.create_model(name, num_classes=len(val_ds.classes), num_frames=args.frames, img_size=args.size)
        ck = Path(args.ckpt) / name / "best.pt" if args.ckpt else None
        if ck is not None and ck.exists():
            m.load_state_dict(find_state_dict(load_checkpoint(ck)))
            how[name] = "checkpoint"
        else:
            cfg = TrainConfig(epochs=args.epochs, batch_size=8, lr=1e-3, seed=args.seed, progress=False)
            hist = Trainer(m, train_ds, val_ds, cfg).fit()
            how[name] = f"trained {args.epochs} ep, val top-1 {hist[-1]['val_top1']:.1f}%"
        nets[name] = m.eval()
        print(f"{name}: {how[name]}", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(len(val_ds), size=min(args.clips, len(val_ds)), replace=False).tolist())
    t0 = time.perf_counter()
    summary, _ = pointing_game_table(nets, clips_with_masks(val_ds, chosen), ig_steps=args.ig_steps,
                                     seed=args.seed)
    print(f"Pointing game on {len(chosen)} val clips of {root} at {args.frames}x{args.size}^2 "
          f"({machine()}, {datetime.date.today()}, scoring {time.perf_counter() - t0:.0f} s)")
    print("| model | map | pointing game | energy in mask | model state |")
    print("|---|---|---:|---:|---|")
    for r in summary.itertuples():
        energy = "—" if np.isnan(r.energy) else f"{r.energy:.3f}"
        print(f"| {r.model} | {r.map} | {r.pointing:.3f} | {energy} | {how.get(r.model, '—')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
