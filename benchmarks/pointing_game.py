"""Scored interpretability on trained models: how well each map lands on the acting objects of the synthetic clips.

    python benchmarks/pointing_game.py                           # the zoo's models (trained now where missing)
    python benchmarks/pointing_game.py --models sifa_nano --clips 96 --ckpt data/checkpoints

Every model is the zoo's (`vidlab.zoo.load_or_train`: its registered recipe, trained once into `--ckpt`), scored at
the input it was trained at, on the same `--clips` validation clips of the synthetic set (their ground-truth masks
of the acting objects at exactly the sampled frames). Map kinds: each architecture's own maps (modulators,
attention, alignment points, offsets, token attention), Integrated Gradients and 3D Grad-CAM, beside a random map
and a centre prior drawn at the same input. Pointing game: share of frames whose map maximum falls on an acting
object (4 px tolerance at the model's input); energy in mask: share of the map's positive mass on the objects. The
target class is the model's prediction. Prints a markdown table with machine and date; the last column says whether
the map beats the centre prior on the pointing game.
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
    p.add_argument("--ckpt", default="data/checkpoints", help="the zoo folder (<ckpt>/<model>/best.pt)")
    p.add_argument("--clips", type=int, default=96, help="validation clips scored (default 96: the whole val split)")
    p.add_argument("--ig-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.viz.signature import clips_with_masks, pointing_game_table
    from vidlab.zoo import load_or_train

    root = Path(args.data)
    if not (root / "classes.txt").exists():
        make_synthetic(root, seed=0)
    names = args.models or vidlab.list_models("*_nano")
    print(f"Pointing game, {machine()}, {datetime.date.today()}, data {root}")
    print("| model | input | val top-1 | map | pointing game | energy in mask | centre prior (pointing / energy) "
          "| beats the centre prior |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name in names:
        run = load_or_train(name, root, ckpt_root=args.ckpt, seed=args.seed, progress=False)
        _, val_ds = run.datasets()
        rng = np.random.default_rng(args.seed)
        chosen = sorted(rng.choice(len(val_ds), size=min(args.clips, len(val_ds)), replace=False).tolist())
        t0 = time.perf_counter()
        summary, _ = pointing_game_table({name: run.model.cpu()}, clips_with_masks(val_ds, chosen),
                                         ig_steps=args.ig_steps, seed=args.seed)
        centre = summary[(summary["model"] == "baseline") & (summary["map"] == "centre prior")].iloc[0]
        for r in summary.itertuples():
            if r.model == "baseline":
                continue
            energy = "—" if np.isnan(r.energy) else f"{r.energy:.3f}"
            print(f"| {name} | {run.num_frames}x{run.img_size}² | {run.metrics['top1']:.1f} | {r.map} | "
                  f"{r.pointing:.3f} | {energy} | {centre.pointing:.3f} / {centre.energy:.3f} | "
                  f"{'yes' if r.pointing > centre.pointing else 'no'} |", flush=True)
        print(f"<!-- {name}: {len(chosen)} clips scored in {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
