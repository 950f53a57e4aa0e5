"""How `vidlab zoo` should share a CPU: models one after the other with every core each, or several at once.

    python benchmarks/zoo_jobs.py                                   # 2 models x 2 epochs, both ways
    python benchmarks/zoo_jobs.py --models video_focalnet_nano sifa_nano ila_nano --epochs 1

Trains the same models with their registered recipes (epochs overridden to keep it short) twice, on the default
synthetic set: (a) one at a time, each with all cores as torch threads; (b) `jobs` at a time (default: what `vidlab zoo`
chooses), each in its own process with `cores // jobs` threads — what `vidlab zoo --jobs` does. Each training runs in a
fresh `benchmarks/train_nano.py` process (the zoo's `train_run`), so start-up and the rendering worker are counted.
Prints wall minutes of each way and the speed-up. Nothing else should run on the machine meanwhile.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

HERE = Path(__file__).resolve().parent


def _train(name: str, epochs: int, data: str, threads: int, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, str(HERE / "train_nano.py"), "--models", name, "--epochs", str(epochs),
                             "--data", data, "--out", str(out / name)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait(procs: list) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a training failed (exit status {p.returncode}): run train_nano.py alone to see why")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["video_focalnet_nano", "sifa_nano"])
    p.add_argument("--epochs", type=int, default=2, help="epochs per model (default 2)")
    p.add_argument("--data", default="data/synthetic")
    p.add_argument("--jobs", type=int, default=None, help="models at once in the parallel way (default: as vidlab zoo)")
    args = p.parse_args(argv)
    from vidlab.zoo import cpu_cores, zoo_jobs
    cores = cpu_cores()
    jobs, threads = zoo_jobs(len(args.models), "cpu", args.jobs)     # what `vidlab zoo` would choose
    tmp = Path(tempfile.mkdtemp(prefix="vidlab-zoo-jobs-"))

    t0 = time.perf_counter()
    for name in args.models:
        _wait([_train(name, args.epochs, args.data, cores, tmp / "seq")])
    seq = time.perf_counter() - t0

    t0 = time.perf_counter()
    queue, running = list(args.models), []
    while queue or running:
        while queue and len(running) < jobs:
            running.append(_train(queue.pop(0), args.epochs, args.data, threads, tmp / "par"))
        time.sleep(0.2)
        done = [r for r in running if r.poll() is not None]
        _wait(done)
        running = [r for r in running if r not in done]
    par = time.perf_counter() - t0

    print(f"machine: {cpu_name()}, {cores} cores; date {datetime.date.today()}; models {', '.join(args.models)}, "
          f"{args.epochs} epoch(s) each, registered recipes")
    print("| way | runs at once | torch threads each | wall (min) |")
    print("|---|---:|---:|---:|")
    print(f"| one after the other | 1 | {cores} | {seq / 60:.2f} |")
    print(f"| at once (`vidlab zoo --jobs {jobs}`) | {jobs} | {threads} | {par / 60:.2f} |")
    print(f"speed-up of the parallel way: {seq / par:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
