"""Train the nano models with their registered recipes and print, per model, the time to reach 80 % val top-1.

    python benchmarks/train_nano.py                                  # every *_nano, data/synthetic, seed 0
    python benchmarks/train_nano.py --models sifa_nano ila_nano --data data/synthetic-seed1
    python benchmarks/train_nano.py --models vit_joint_nano --epochs 40 --lr 5e-4   # a recipe field overridden
    python benchmarks/train_nano.py --models video_focalnet_nano --model-arg design="'spatial'"   # a build argument
    python benchmarks/train_nano.py --models sifa_nano --img-size 64 --model-arg "widths=(16, 32, 64, 128)" --run-seed 1

Each model trains exactly as `vidlab zoo` trains it (`vidlab.zoo.train_run`: the recipe registered beside the
model, fresh synthetic clips every epoch, validation on the stored val split after each epoch). The row: model |
params | best val top-1 / top-5 (single view, the epoch best.pt holds) | frame-order test (pairwise accuracy on the
time-reversed pairs, frames in order / shuffled; chance 50) | minutes of training until val top-1 first reached
80 % ("-": never) | total training minutes | epochs | clips per second. The minutes are wall clock of the training
loop, validation included, on this machine with `torch.get_num_threads()` threads; a loaded machine inflates them.
The dataset (the default synthetic preset with `--seed`) is generated when missing.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import sys
import tempfile
from pathlib import Path

from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", help="models (default: every *_nano)")
    p.add_argument("--data", default="data/synthetic", help="dataset root (generated when missing)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed when the data is generated (default 0)")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--device", default="auto")
    for field in ("epochs", "batch_size", "stream_clips", "num_frames", "img_size"):
        p.add_argument("--" + field.replace("_", "-"), type=int, help=f"override the recipe's {field}")
    for field in ("lr", "adam_eps", "weight_decay", "warmup_epochs"):
        p.add_argument("--" + field.replace("_", "-"), type=float, help=f"override the recipe's {field}")
    p.add_argument("--reversal-pairs", type=int, choices=[0, 1],
                   help="override the recipe's reversal_pairs (1: each batch doubled with its time reversals)")
    p.add_argument("--pretrain", metavar="JSON",
                   help="override the recipe's frame pretraining, e.g. '{\"model\": {\"design\": \"spatial\"}}' "
                        "(fields: vidlab.pretrain.PRETRAIN_DEFAULTS); '{}' trains from scratch")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision on CUDA (default auto = bf16/fp16; off: float32 as on a CPU)")
    p.add_argument("--run-seed", type=int, default=0,
                   help="the run's seed (model initialisation, clip order, augmentation; default 0 as the zoo)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a build argument of the model (a Python literal), e.g. design='spatial'; repeatable")
    args = p.parse_args(argv)

    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.models import get_recipe
    from vidlab.zoo import train_run

    root = Path(args.data)
    if not (root / "annotations" / "meta.json").exists():
        print(f"generating the synthetic dataset (seed {args.seed}) in {root} ...", file=sys.stderr)
        make_synthetic(root, seed=args.seed, progress=True)
    names = args.models or vidlab.list_models("*_nano")
    changes = {k: getattr(args, k) for k in ("epochs", "batch_size", "stream_clips", "num_frames", "img_size", "lr",
                                              "adam_eps", "weight_decay", "warmup_epochs")
               if getattr(args, k) is not None}
    if args.reversal_pairs is not None:
        changes["reversal_pairs"] = bool(args.reversal_pairs)
    if args.pretrain is not None:
        try:
            changes["pretrain"] = json.loads(args.pretrain)
            if not isinstance(changes["pretrain"], dict):
                raise ValueError
        except ValueError:
            p.error(f"argument --pretrain: {args.pretrain!r} is not a JSON object")
    overrides = {}
    for item in args.model_arg:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.isidentifier():
                raise ValueError
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            p.error(f"argument --model-arg: {item!r} is not KEY=<Python literal>")
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vidlab-train-nano-"))
    meta = json.loads((root / "annotations" / "meta.json").read_text())
    print(f"machine: {machine()}; date {datetime.date.today()}; data {root} (synthetic seed {meta.get('seed')})")
    print("| model | params | top-1 | top-5 | order pairwise (in order / shuffled) | to 80 % (min) | train (min) "
          "| epochs | clips/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        rec = get_recipe(name).replace(**changes)
        run = train_run(name, root, out_root / name, rec=rec, overrides=overrides, device=args.device,
                        progress=False, resume=False, seed=args.run_seed, amp=args.amp)
        m = run.metrics
        fo = m["frame_order"] or {}
        cps = sum(h["clips_per_s"] for h in run.history) / max(1, len(run.history))
        t80 = f"{m['time_to_target_s'] / 60:.1f}" if m["time_to_target_s"] is not None else "-"
        label = name + "".join(f", {k}={v!r}" for k, v in overrides.items())
        print(f"| {label} | {m['params'] / 1e6:.2f} M | {m['top1']:.1f} | {m['top5']:.1f} | "
              f"{fo.get('ordered_pairwise', float('nan')):.1f} / {fo.get('shuffled_pairwise', float('nan')):.1f} | "
              f"{t80} | {m['train_time_s'] / 60:.1f} | {m['epochs']} | {cps:.0f} |", flush=True)
        rows.append({"model": name, **{k: m[k] for k in ("top1", "top5", "frame_order", "time_to_target_s",
                                                          "train_time_s", "epochs", "params", "recipe")},
                     "history": run.history})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "date": str(datetime.date.today()),
                                               "data": str(root), "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
