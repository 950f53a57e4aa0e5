"""Scored interpretability on trained models: how well each map lands on the acting objects of the synthetic clips.

    python benchmarks/pointing_game.py                                   # the zoo's models (trained where missing)
    python benchmarks/pointing_game.py --data data/synthetic-s2 --ckpt data/ckpt-s2 --models sifa_nano

Every model is the zoo's (`vidlab.zoo.load_or_train`: its registered recipe, trained once into `--ckpt`), read at
the input it was trained at. For each model:

1. its own maps are read the way `vidlab.viz.signature.choose_readings` picks on `--train-clips` clips of the
   **train** split (per mechanism: layer, head or token, sign; at least 8x8 cells a frame);
2. those readings are scored on `--clips` clips of the **val** split, beside the same readings of the architecture
   freshly initialised (untrained), Integrated Gradients, 3D Grad-CAM where the model has a late convolutional map,
   a random map and a centre prior drawn at the same input;
3. the cascading randomisation check (Adebayo et al. 2018) on `--sanity-clips` val clips: the rank correlation of
   each own map with the trained model's once every block down to the one that computes it is re-initialised.

Pointing game: share of frames whose map maximum falls on an acting object (4 px tolerance at the model's input;
tied maxima score the expected hit of a random pick, so a flat map scores chance). Energy in mask: per frame, the
share of the map's mass (minimum subtracted) on the objects. The target class is the model's prediction. Prints
markdown tables with machine and date; `--json` also writes every row.
"""
from __future__ import annotations

import argparse
import datetime
import json
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
    p.add_argument("--train-clips", type=int, default=48, help="training clips the readings are chosen on")
    p.add_argument("--sanity-clips", type=int, default=4, help="validation clips of the randomisation check")
    p.add_argument("--ig-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write every scored row here")
    args = p.parse_args(argv)

    import torch

    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.data.synthetic import synthetic_meta
    from vidlab.viz.signature import (cascading_randomisation, choose_readings, clips_with_masks,
                                      pointing_game_table, training_clips_with_masks)
    from vidlab.zoo import load_or_train

    root = Path(args.data)
    if not (root / "classes.txt").exists():
        make_synthetic(root, seed=0)
    meta = synthetic_meta(root) or {}
    names = args.models or vidlab.list_models("*_nano", study=False)
    print(f"Pointing game, {machine()}, {datetime.date.today()}, data {root} (dataset seed {meta.get('seed')}), "
          f"readings chosen on {args.train_clips} train clips, scored on {args.clips} val clips")
    print("\n| model | input | val top-1 | map | chosen on train (pointing / energy) | pointing game | energy in mask "
          "| untrained, same reading | centre prior | random | beats the centre prior on both |")
    print("|---|---|---:|---|---|---:|---:|---|---|---|---|")
    everything, sanity_rows = [], []
    for name in names:
        t0 = time.perf_counter()
        run = load_or_train(name, root, ckpt_root=args.ckpt, seed=args.seed, progress=False)
        net = run.model.cpu().eval()
        _, val_ds = run.datasets()
        readings = choose_readings(net, training_clips_with_masks(val_ds, args.train_clips, seed=args.seed))
        rng = np.random.default_rng(args.seed)
        chosen = sorted(rng.choice(len(val_ds), size=min(args.clips, len(val_ds)), replace=False).tolist())
        samples = clips_with_masks(val_ds, chosen)
        torch.manual_seed(args.seed)
        fresh = vidlab.create_model(name, num_classes=len(val_ds.classes), **run.model_args)
        summary, _ = pointing_game_table({name: net}, samples, ig_steps=args.ig_steps, seed=args.seed,
                                         readings={name: readings}, untrained={name: fresh})
        base = summary[summary["model"] == "baseline"].set_index("map")
        cp, rnd = base.loc["centre prior"], base.loc["random"]
        by_map = summary[summary["model"] == name].set_index("map")
        picked = {r["reading"]: r for r in readings.values()}
        for r in summary[summary["model"] == name].itertuples():
            if r.source == "untrained":
                continue
            pick = picked.get(r.map)
            chosen_on = f"{pick['pointing']:.3f} / {pick['energy']:.3f}" if pick else "—"
            fresh_row = by_map.loc[f"{r.map} [untrained]"] if f"{r.map} [untrained]" in by_map.index else None
            fresh_txt = f"{fresh_row.pointing:.3f} / {fresh_row.energy:.3f}" if fresh_row is not None else "—"
            both = r.pointing > cp.pointing and r.energy > cp.energy
            print(f"| {name} | {run.num_frames}x{run.img_size}² | {run.metrics['top1']:.1f} | {r.map} | {chosen_on} | "
                  f"{r.pointing:.3f} | {r.energy:.3f} | {fresh_txt} | {cp.pointing:.3f} / {cp.energy:.3f} | "
                  f"{rnd.pointing:.3f} / {rnd.energy:.3f} | {'yes' if both else 'no'} |", flush=True)
        for rec in summary.to_dict(orient="records"):
            everything.append({"dataset": str(root), "dataset_seed": meta.get("seed"), "input": run.img_size,
                               "top1": run.metrics["top1"], "scored_for": name, **rec})
        for clip, _, _ in samples[: args.sanity_clips]:
            cascade = cascading_randomisation(net, clip[None], readings, seed=args.seed)
            for rec in cascade.to_dict(orient="records"):
                sanity_rows.append({"model": name, **rec})
        print(f"<!-- {name}: {len(samples)} clips scored in {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)

    if sanity_rows:
        import pandas as pd
        s = pd.DataFrame(sanity_rows).groupby(["model", "map", "step", "randomised"], as_index=False, sort=False)[
            "rank_corr"].mean()
        print("\nCascading randomisation: mean rank correlation of each own map with the trained model's, after the "
              "blocks from the head down to (and including) the one named are re-initialised "
              f"({args.sanity_clips} val clips per model)\n")
        print("| model | map | head only | half the blocks | down to the map's block | all blocks |")
        print("|---|---|---:|---:|---:|---:|")
        for (model, kind), g in s.groupby(["model", "map"], sort=False):
            g = g.sort_values("step")
            corr = g["rank_corr"].to_numpy()
            # the map's block: the first step after which the correlation falls under 0.5
            below = np.flatnonzero(corr < 0.5)
            at = f"{corr[below[0]]:.2f} ({g['randomised'].iloc[below[0]]})" if len(below) else "never under 0.5"
            print(f"| {model} | {kind} | {corr[0]:.2f} | {corr[len(corr) // 2]:.2f} | {at} | {corr[-1]:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": everything, "sanity": sanity_rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
