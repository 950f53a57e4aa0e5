"""vidlab's side of the side-by-side speed table in docs/faithfulness.md: one training step (forward + backward),
fp32, batch 2, one thread, on the configurations the table compares.

    OMP_NUM_THREADS=1 python benchmarks/speed_vs_official.py                    # all rows, 5 timed steps each
    OMP_NUM_THREADS=1 python benchmarks/speed_vs_official.py --models focalnet_t --repeats 9
    OMP_NUM_THREADS=1 python benchmarks/speed_vs_official.py --against /tmp/old  # + an older vidlab, interleaved

A step is `model.train()`, zero_grad, forward, mean of the squared logits, backward; drop path is off so that
every step does the same work. The time is the thread CPU time of the step (`time.thread_time`; with one thread
it is the work done, and less sensitive than wall time to other jobs on a shared machine), the median of
--repeats steps after one warm-up. "peak MiB" is the growth of the process's peak resident memory over one step
of a freshly built model, measured in a child process per row (activations + gradients + allocator overhead).

--against DIR times a second vidlab (a directory holding a `vidlab` package, e.g. `git archive <commit> vidlab`
unpacked there) on the same weights, interleaved step by step with this one (the order alternates every round),
and prints the median of the per-round time ratios (this / other) and their range. The official repositories
are not part of vidlab; docs/faithfulness.md gives the ratios measured against them and how.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

# name -> (registered model, clip (T, H, W), overrides); the configurations of the table in docs/faithfulness.md
CONFIGS = {
    "focalnet_t": ("video_focalnet_tiny", (4, 128, 128), dict(drop_path_rate=0.0)),
    "dualformer_t": ("dualformer_tiny", (8, 224, 224), dict(drop_path_rate=0.0)),
    "ila_b32": ("ila_vit_b32", (4, 224, 224), dict(drop_path_rate=0.0)),
    "sifa_r50": ("sifa_resnet50", (16, 112, 112), {}),
    "sifa_swin_b": ("sifa_swin_base", (8, 224, 224), dict(drop_path_rate=0.0)),
}
BATCH = 2


def build(lib, name: str, seed: int = 0):
    model_name, (T, H, W), overrides = CONFIGS[name]
    torch.manual_seed(seed)
    model = lib.create_model(model_name, num_frames=T, img_size=H, **overrides)
    return model, torch.randn(BATCH, 3, T, H, W, generator=torch.Generator().manual_seed(seed))


def step(model, x) -> float:
    """One forward + backward; returns its thread CPU time in seconds."""
    model.zero_grad(set_to_none=True)
    t0 = time.thread_time()
    y = model(x)
    y = y[0] if isinstance(y, tuple) else y
    y.float().pow(2).mean().backward()
    return time.thread_time() - t0


def load_other(path: str):
    """Import the `vidlab` package found in directory `path` under the name `vidlab_other`."""
    spec = importlib.util.spec_from_file_location("vidlab_other", Path(path) / "vidlab" / "__init__.py",
                                                  submodule_search_locations=[str(Path(path) / "vidlab")])
    if spec is None or not (Path(path) / "vidlab" / "__init__.py").is_file():
        raise SystemExit(f"--against {path}: no vidlab/__init__.py there")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vidlab_other"] = mod
    spec.loader.exec_module(mod)
    return mod


def peak_memory_mib(name: str) -> float:
    """Growth of peak RSS over one step of a fresh model, in a child process (ru_maxrss is per process)."""
    code = ("import resource, sys, torch; sys.path[:0] = [{b!r}, {r!r}]; torch.set_num_threads(1);"
            "import vidlab, speed_vs_official as s; m, x = s.build(vidlab, {n!r}); m.train();"
            "base = int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]);"
            "s.step(m, x); print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code.format(b=str(Path(__file__).parent), r=str(root), n=name)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--repeats", type=int, default=5, help="timed steps per model (after one warm-up)")
    p.add_argument("--against", metavar="DIR", help="a directory holding another vidlab package to compare with")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    torch.set_num_threads(1)
    import vidlab
    other = load_other(args.against) if args.against else None

    print(f"{datetime.date.today()}  {machine()}  load average {os.getloadavg()[0]:.2f} (start)")
    print("one training step: fp32, batch 2, 1 thread, forward + backward; thread CPU time, median of "
          f"{args.repeats} after 1 warm-up")
    head = "| config | clip | vidlab s/step |" + (" other s/step | ratio (range) |" if other else "") + " peak MiB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    rows = []
    for name in args.models:
        model, x = build(vidlab, name)
        model.train()
        mine, theirs = [], []
        if other is None:
            for r in range(args.repeats + 1):
                t = step(model, x)
                if r:
                    mine.append(t)
        else:
            ref, _ = build(other, name)
            ref.load_state_dict(model.state_dict())
            ref.train()
            for r in range(args.repeats + 1):
                pair = [(model, mine), (ref, theirs)][:: 1 if r % 2 == 0 else -1]
                for m, acc in pair:
                    t = step(m, x)
                    if r:
                        acc.append(t)
            del ref
        del model
        row = {"config": name, "clip": "x".join(map(str, CONFIGS[name][1])), "vidlab_s": statistics.median(mine)}
        if other is not None:
            ratios = [a / b for a, b in zip(mine, theirs)]
            row.update(other_s=statistics.median(theirs), ratio=statistics.median(ratios),
                       ratio_min=min(ratios), ratio_max=max(ratios))
        row["peak_mib"] = float("nan") if args.no_memory else peak_memory_mib(name)
        rows.append(row)
        line = f"| {name} | {row['clip']} | {row['vidlab_s']:.3f} |"
        if other is not None:
            line += f" {row['other_s']:.3f} | {row['ratio']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) |"
        print(line + f" {row['peak_mib']:.0f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} (end)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
