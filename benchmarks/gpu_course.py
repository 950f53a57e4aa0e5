"""The course's GPU run: the nano zoo trained on the `kinetics-like` synthetic preset, then notebook 08 on it.

    python benchmarks/gpu_course.py                                   # data/synthetic-k, data/checkpoints-k, 1 job
    python benchmarks/gpu_course.py --jobs 4 --clips-per-class 100    # 4 models at once; 100 + 20 clips per class
    python benchmarks/gpu_course.py --no-notebook --json out.json
    python benchmarks/gpu_course.py --jobs 4 --time-limit 420  # stop the zoo after 7 min, measure what finished

Steps: (1) `vidlab data synth --preset kinetics-like` into `--data` when it is missing (64 frames at 224 px;
`--clips-per-class` lowers the preset's 250 train + 50 val clips per class, the ratio kept); (2) `vidlab zoo` on it
with `--jobs` models at once, while `nvidia-smi` samples the GPU's utilisation every 0.5 s; (3) per model, from the
zoo's record: val top-1, frame-order test, training clips/s through the real pipeline (clips rendered and decoded
by DataLoader workers), and, measured here on random tensors of the recipe's shape, the clips/s of the training
step alone (forward + backward + AdamW, bf16 autocast as the trainer uses on CUDA) and of inference (batch 64).
A pipeline that delivers far fewer clips/s than the step alone takes is data-bound: the "step share" column is
pipeline / step-alone. MFU = step-alone clips/s x 3 x forward FLOPs per clip / the GPU's dense bf16 peak
(`--peak-tflops`, default 989 for an H100/H200 SXM); (4) notebook 08 executed on this zoo (papermill when it is
installed, else its code cells run in order in this process), its results.json written beside `--json`.

The training rows are wall clock of the zoo's loop with `--jobs` runs sharing the GPU and the CPU cores: with more
than one job, clips/s per model is lower than a model alone would get, and the GPU utilisation is that of all the
jobs together.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import machine  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

REPO = Path(__file__).resolve().parents[1]


class GpuSampler:
    """`nvidia-smi` utilisation (%) and memory (MiB) every `period_ms`, in a background process."""

    def __init__(self, period_ms: int = 500):
        self.rows, self.proc = [], None
        exe = shutil.which("nvidia-smi")
        if exe:
            query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", f"-lms={period_ms}"]
            self.proc = subprocess.Popen([exe, *query], stdout=subprocess.PIPE, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.rows.append((util, mem))

    def stop(self) -> dict:
        if self.proc is None:
            return {"samples": 0}
        self.proc.terminate()
        self.thread.join(timeout=5)
        util = [u for u, _ in self.rows]
        return {"samples": len(util), "util_mean": statistics.fmean(util) if util else None,
                "util_median": statistics.median(util) if util else None,
                "util_p90": sorted(util)[int(0.9 * (len(util) - 1))] if util else None,
                "mem_max_MiB": max((m for _, m in self.rows), default=None)}


def step_throughput(model, batch: int, frames: int, size: int, classes: int, device, iters: int = 20) -> float:
    """Clips/s of the training step alone: forward + backward + AdamW on random clips, bf16 autocast on CUDA."""
    import torch
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, frames, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    cuda = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if cuda:
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def infer_throughput(model, batch: int, frames: int, size: int, device, iters: int = 20) -> float:
    import torch
    model = model.to(device).eval()
    x = torch.randn(batch, 3, frames, size, size, device=device)
    cuda = device.type == "cuda"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
        for _ in range(3):
            model(x)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        if cuda:
            torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def run_zoo(cmd: list[str], time_limit: float | None) -> int:
    """Run the zoo command; after `time_limit` seconds interrupt it as Ctrl-C would (the zoo keeps what it finished
    and its children's last.pt) and return 124."""
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        return proc.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        print(f"gpu_course.py: --time-limit {time_limit:.0f} s reached; interrupting the zoo", flush=True)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124


def run_notebook(path: Path, params: dict, results_dir: Path) -> None:
    """Execute a notebook with `params` injected after its parameters cell: papermill when installed, else its code
    cells in order in this process (outputs are not kept; the notebook writes its results.json)."""
    os.environ["VIDLAB_RESULTS_DIR"] = str(results_dir)
    try:
        import papermill
    except ImportError:
        papermill = None
    if papermill is not None:
        papermill.execute_notebook(str(path), str(results_dir / path.name), parameters=params, cwd=str(path.parent))
        return
    import matplotlib
    matplotlib.use("Agg")
    nb = json.loads(path.read_text())
    scope: dict = {"__name__": "__main__"}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            exec(compile("".join(cell["source"]), f"{path.name}:{cell.get('id', '?')}", "exec"), scope)
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                scope.update(params)
    finally:
        os.chdir(cwd)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synthetic-k", help="kinetics-like dataset root (generated when missing)")
    p.add_argument("--clips-per-class", type=int,
                   help="train clips per class when generating (default: the preset's 250)")
    p.add_argument("--ckpt", default="data/checkpoints-k", help="zoo folder for this data")
    p.add_argument("--models", nargs="+", help="models (default: every *_nano)")
    p.add_argument("--jobs", type=int, default=1, help="models trained at once on the GPU (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per model, one fewer DataLoader workers (default: "
                                               "cores // jobs)")
    p.add_argument("--device", help="default: cuda; on a machine without one the script says so and exits 0 "
                                     "(`make bench` runs every script); --device cpu runs it anyway")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak, for MFU")
    p.add_argument("--time-limit", type=float, help="stop the zoo after this many seconds (Ctrl-C to it: the "
                                                   "finished models are measured, the others left to resume)")
    p.add_argument("--no-notebook", action="store_true", help="skip notebook 08")
    p.add_argument("--json", help="write the rows (and the notebook's results) here")
    a = p.parse_args(argv)

    import torch
    import vidlab
    from vidlab.data import make_synthetic
    from vidlab.profile import complexity
    from vidlab.utils import resolve_device
    from vidlab.zoo import load_or_train
    if a.device is None and not torch.cuda.is_available():
        print("gpu_course.py: no CUDA GPU on this machine; nothing measured (--device cpu runs it on the CPU)")
        return 0
    try:
        device = resolve_device(a.device or "cuda")
    except Exception as e:   # ConfigError: one line naming the device
        print(f"gpu_course.py: --device: {e}", file=sys.stderr)
        return 2
    root, ck = Path(a.data), Path(a.ckpt)
    models = a.models or vidlab.list_models("*_nano")
    stamp = {"machine": machine(), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
             "torch": torch.__version__, "date": datetime.datetime.now().isoformat(timespec="minutes")}
    print(json.dumps(stamp), flush=True)

    t0 = time.perf_counter()
    if not (root / "classes.txt").is_file():
        make_synthetic(root, preset="kinetics-like", clips_per_class=a.clips_per_class, seed=0)
    data_s = time.perf_counter() - t0
    print(f"data: {root} ({data_s:.0f} s)", flush=True)

    sampler = GpuSampler() if device.type == "cuda" else None
    t0 = time.perf_counter()
    rc = run_zoo([sys.executable, "-m", "vidlab", "zoo", "--data", str(root), "--ckpt", str(ck),
                  "--device", str(device), "--jobs", str(a.jobs), "--models", *models,
                  *(["--threads", str(a.threads)] if a.threads else [])], a.time_limit)
    zoo_s = time.perf_counter() - t0
    gpu = sampler.stop() if sampler else {}
    print(f"zoo: exit {rc}, {zoo_s / 60:.1f} min; GPU utilisation during it: {gpu}", flush=True)

    rows = []
    for name in models:
        run = load_or_train(name, root, ckpt_root=ck, device=str(device), train=False)
        if run is None:
            print(f"{name}: no finished zoo run (stopped by --time-limit, or training failed)")
            continue
        m, T, S = run.metrics, run.num_frames, run.img_size
        classes = len(m["classes"])
        pipe = [h["clips_per_s"] for h in run.history[1:] if h.get("clips_per_s")] or \
               [h["clips_per_s"] for h in run.history if h.get("clips_per_s")]
        fresh = vidlab.create_model(name, **{**run.model_args, "num_classes": classes})
        fwd = complexity(fresh, torch.randn(1, 3, T, S, S)).gflops
        # the batch the Trainer steps on: a reversal-pairs recipe doubles it with the clips played backwards (and
        # its clips/s counts both halves)
        batch = int(run.recipe["batch_size"]) * (2 if run.recipe.get("reversal_pairs") else 1)
        step = step_throughput(fresh, batch, T, S, classes, device)
        infer = infer_throughput(run.model, 64, T, S, device)
        fo = m.get("frame_order") or {}
        pipe_cps = statistics.fmean(pipe) if pipe else float("nan")
        rows.append({"model": name, "input": f"{T}x{S}²", "epochs": len(run.history), "top1": m["top1"],
                     "order": fo.get("ordered_pairwise"), "shuffled": fo.get("shuffled_pairwise"),
                     "train_min": m.get("train_time_s", 0) / 60, "pipeline_clips_s": pipe_cps,
                     "step_clips_s": step, "step_share": pipe_cps / step, "infer_clips_s": infer,
                     "gflops_per_clip": fwd, "mfu_step": step * 3 * fwd / (a.peak_tflops * 1e3)})
    head = (f"{'model':26s} {'input':>7s} {'ep':>3s} {'top1':>6s} {'order':>6s} {'shuf':>6s} {'min':>5s} "
            f"{'pipe c/s':>9s} {'step c/s':>9s} {'share':>6s} {'infer c/s':>10s} {'GFLOP':>7s} {'MFU':>7s}")
    print("\n" + head + "\n" + "-" * len(head))
    f = (lambda v, w=6, d=1: f"{v:{w}.{d}f}" if v is not None else " " * (w - 1) + "-")
    for r in rows:
        print(f"{r['model']:26s} {r['input']:>7s} {r['epochs']:3d} {f(r['top1'])} {f(r['order'])} {f(r['shuffled'])} "
              f"{f(r['train_min'], 5)} {f(r['pipeline_clips_s'], 9, 0)} {f(r['step_clips_s'], 9, 0)} "
              f"{f(r['step_share'], 6, 2)} {f(r['infer_clips_s'], 10, 0)} {f(r['gflops_per_clip'], 7, 3)} "
              f"{100 * r['mfu_step']:6.2f}%")
    out = {**stamp, "data": str(root), "data_s": data_s, "jobs": a.jobs, "threads": a.threads, "zoo_s": zoo_s,
           "zoo_exit": rc, "gpu": gpu, "rows": rows}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    done = [r["model"] for r in rows]
    if not a.no_notebook and done:
        t0 = time.perf_counter()
        results_dir = Path(a.json).parent if a.json else Path("results")
        results_dir.mkdir(parents=True, exist_ok=True)
        run_notebook(REPO / "notebooks" / "08_train_and_compare.ipynb",
                     {"DEVICE": str(device), "DATA_ROOT": str(root.resolve()), "CKPT_ROOT": str(ck.resolve()),
                      "MODELS": done}, results_dir)
        print(f"notebook 08: executed on the zoo's {len(done)} finished models in {time.perf_counter() - t0:.0f} s; "
              f"results in {results_dir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
