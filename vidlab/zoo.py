"""The model zoo: train every `_nano` model once with its registered recipe, then reuse it everywhere.

    vidlab zoo [--data data/synthetic] [--models video_focalnet_nano ila_nano] [--ckpt data/checkpoints] [--jobs N]

    from vidlab.zoo import load_or_train
    run = load_or_train("video_focalnet_nano", "data/synthetic", ckpt_root="data/checkpoints")
    run.model, run.history, run.metrics["top1"], run.metrics["frame_order"]

The zoo decides which runs exist, which are stale, and runs the missing ones; one run is `vidlab.run.run_recipe`,
the path `vidlab train` runs too. Each model trains into `<ckpt_root>/<model>/` (the files of `vidlab train`:
last.pt, best.pt, metrics.csv, metrics.json, frame_order.json; plus zoo.json, the summary the notebooks and the
leaderboard read). A run is identified by a **fingerprint**: the model name and the architecture it builds (its
parameter shapes), its recipe, the build overrides, the seed and the dataset (a synthetic set's generation
parameters and seed, or the clip files a real set's splits read). `vidlab zoo` skips a model whose finished run
has the current fingerprint, resumes one that was interrupted (its last.pt has the fingerprint), and retrains one
whose recipe or data changed. `load_or_train` loads a finished run and trains (and saves) one otherwise.

On a CPU the zoo trains several models at once (`--jobs`, default: one per core up to 4 cores, then one per two
cores), each in its own process with `cores // jobs` torch threads: the nano models' small convolutions and matmuls
do not keep two threads busy, so two one-thread runs on 2 cores finish sooner than the same runs one after the
other with two threads each (1.5x sooner, `benchmarks/zoo_jobs.py`, docs/benchmarks.md). A GPU trains one model at a
time unless `--jobs` says more; there the cores go to each run's DataLoader workers (rendering and decoding).
The zoo first times one training step of each model (`estimate_work`, a few seconds) and starts the longest runs
first, so that the short ones fill the cores at the end. The ETA for the whole comes from the same estimates,
corrected by what the runs measure: the finished runs' times, and the epoch times the running ones report (progress
events each child writes as JSON lines to a file, `VIDLAB_ZOO_PROGRESS`, read as data). Each run prints the
progress and ETA of its phases (frame pretraining, epochs).

Runs are safe to share: each trains under a lock in its folder (`.zoo.lock`), so a second zoo or notebook on the
same folder waits, then uses the finished run; runs of another seed get their own folder (`<model>@seed=1`); a run
whose checkpoint cannot be read is reported "damaged" and trained again, the damaged file kept aside.

SMOKE runs (the tests) train a tiny budget and never write into the zoo.
"""
from __future__ import annotations

import contextlib
import itertools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .data.synthetic import synthetic_meta
from .errors import ConfigError, DatasetError
from .models.registry import Recipe, check_pretrain, create_model, get_recipe, list_models, model_info
from .run import model_datasets, run_recipe

__all__ = ["ZooRun", "load_or_train", "recipe", "zoo_status", "train_zoo", "fingerprint", "train_run",
           "leaderboard"]

ZOO_VERSION = 1          # bump when the meaning of a zoo run changes (what is trained, how it is scored)
SMOKE_RECIPE = dict(epochs=1, batch_size=4, num_frames=4, img_size=32, stream_clips=24, warmup_epochs=0.0)
SMOKE_PRETRAIN = dict(steps=2, frames=40, batch_size=4)


def smoke_recipe(name: str) -> Recipe:
    """The tiny budget of SMOKE runs: one epoch of 24 clips at 4x32x32 (and a two-step frame pretraining)."""
    rec = get_recipe(name).replace(**SMOKE_RECIPE)
    return rec.replace(pretrain={**rec.pretrain, **SMOKE_PRETRAIN}) if rec.pretrain else rec


def recipe(name: str) -> dict:
    """The training recipe registered with `name`, as a plain dict."""
    return get_recipe(name).to_dict()


# --------------------------------------------------------------------------------------------------------------
# Data and fingerprints
# --------------------------------------------------------------------------------------------------------------

def data_fingerprint(root) -> dict:
    """What identifies a dataset: a synthetic set's generation parameters, seed and sizes (its clips follow from
    them); otherwise a hash of its class list, its annotation files (names and contents) and the clip files the
    train and val splits read (paths, sizes and modification times), whatever the layout: clips added to a class
    folder, or replaced under unchanged annotations, give another fingerprint."""
    root = Path(root)
    meta = synthetic_meta(root)
    if meta is not None:
        return {"kind": "vidlab-synthetic", "version": meta.get("version"), "seed": meta.get("seed"),
                "params": meta.get("params"), "splits": meta.get("splits")}
    h = hashlib.sha256()
    files = [root / "classes.txt"] + (sorted((root / "annotations").glob("*")) if (root / "annotations").is_dir()
                                      else [])
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    for split in ("train", "val"):
        h.update(_clip_files_digest(root, split).encode())
    return {"kind": "folder", "sha256": h.hexdigest()}


def _clip_files_digest(root: Path, split: str) -> str:
    """The clip files `split` reads, one `path size mtime` line each (or why the split cannot be read)."""
    import warnings
    from .data import VideoClipDataset
    from .errors import VidlabError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # annotated clips without a file: the dataset names them on use
            samples = VideoClipDataset(root, split).samples
    except VidlabError as e:
        return f"{split}: {e}"
    lines = []
    for s in samples:
        p = Path(s.path)
        try:
            st = p.stat()
            lines.append(f"{p.relative_to(root) if p.is_relative_to(root) else p} {st.st_size} {st.st_mtime_ns}")
        except OSError as e:
            lines.append(f"{p}: {e.strerror}")
    return "\n".join(lines)


def architecture(name: str, rec: Recipe, overrides: dict | None = None) -> str:
    """A short hash of the model a run builds: the names and shapes of its parameters and buffers at the recipe's
    input (built on the meta device, nothing allocated). A change of a registration's defaults that changes the
    model changes it; one that builds the same model does not."""
    with torch.device("meta"):
        model = create_model(name, num_classes=2, num_frames=rec.num_frames, img_size=rec.img_size,
                             **{**rec.model, **(overrides or {})})
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    return hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]


def fingerprint(name: str, rec: Recipe, data_root, overrides: dict | None = None, seed: int = 0,
                data: dict | None = None) -> str:
    """A short hash of everything a zoo run depends on (model and the architecture it builds, recipe, overrides,
    data, seed); `data` is `data_fingerprint(data_root)` when the caller has it already."""
    payload = {"zoo": ZOO_VERSION, "model": name, "architecture": architecture(name, rec, overrides),
               "recipe": rec.to_dict(), "overrides": overrides or {}, "data": data or data_fingerprint(data_root),
               "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------------------

@dataclass
class ZooRun:
    """A trained model and everything measured about it (see the module docstring)."""
    name: str
    model: nn.Module
    recipe: dict
    history: list
    metrics: dict
    source: str                    # "zoo" (loaded) or "trained"
    checkpoint: Path | None
    data_root: Path
    overrides: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return int(self.recipe["num_frames"])

    @property
    def img_size(self) -> int:
        return int(self.recipe["img_size"])

    @property
    def model_args(self) -> dict:
        """What `create_model` needs, besides num_classes, to build a fresh model for this run's input."""
        model = {k: tuple(v) if isinstance(v, list) else v for k, v in (self.recipe.get("model") or {}).items()}
        return {"num_frames": self.num_frames, "img_size": self.img_size, **model, **self.overrides}

    def datasets(self):
        """(train, val) built at the recipe's frames and size, normalised as the model was trained (val is what
        the metrics were computed on)."""
        return model_datasets(self.name, Recipe.from_dict(self.recipe), self.data_root, seed=self.seed)


def train_run(name: str, data_root, out_dir, *, rec: Recipe | None = None, overrides: dict | None = None,
              seed: int = 0, device: str = "auto", progress: bool = True, num_workers: int | None = None,
              resume: bool = True, fp: str | None = None, amp: str = "auto", on_progress=None) -> ZooRun:
    """One zoo run: `vidlab.run.run_recipe` into `out_dir`, resumed when `out_dir` holds an interrupted run of the
    same fingerprint, then zoo.json. A run whose checkpoints cannot be read is trained again, the damaged files kept
    aside; a stale run (another recipe, data or seed) is replaced, with one line saying so. `on_progress` gets the
    progress events of the frame pretraining and the epochs (`vidlab.train.progress_event`)."""
    root = Path(data_root)
    rec = rec or get_recipe(name)
    overrides = dict(overrides or {})
    fp = fp or fingerprint(name, rec, root, overrides, seed)
    out = Path(out_dir) if out_dir is not None else None
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    damaged = []
    if out is not None:
        _check_writable(out, name)
        damaged = _set_aside_damaged(out, name, log)   # its best epoch's weights are gone: trained from scratch
    resuming = (out is not None and resume and not damaged
                and _checkpoint_fingerprint(out / "last.pt") == fp)   # same run, cut short
    if out is not None and not resuming:
        _say_what_is_replaced(out, name, log)
        # its summary goes first: an interrupted retraining must not leave the old summary beside new weights
        (out / "zoo.json").unlink(missing_ok=True)
    result = run_recipe(name, root, out, rec=rec, overrides=overrides, seed=seed, device=device, amp=amp,
                        num_workers=num_workers, progress=progress, resume=out / "last.pt" if resuming else None,
                        overwrite=not resuming, on_progress=on_progress, log=log,
                        meta={"fingerprint": fp})
    metrics = {**result.metrics, "fingerprint": fp}
    if out is not None:
        _write_json(out / "zoo.json", {"name": name, "fingerprint": fp, "complete": True, "metrics": metrics,
                                       "history": result.history, "data_root": str(root), "seed": seed})
    return ZooRun(name, result.model, rec.to_dict(), result.history, metrics, "trained", result.best, root,
                  overrides, seed)


def _say_what_is_replaced(run_dir: Path, name: str, log) -> None:
    """One line when the stale run about to be replaced had finished: its recipe or data differ, or its seed (a
    folder written before each seed had its own)."""
    try:
        z = json.loads((run_dir / "zoo.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(z, dict) and z.get("complete"):
        log(f"{name}: replacing the finished run in {run_dir} (seed {z.get('seed')}, fingerprint "
            f"{z.get('fingerprint')}): its recipe, data or seed differ from this run's")


def _write_json(path: Path, obj) -> None:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "tolist"):
            return clean(v.tolist())
        return v
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(clean(obj), indent=1, default=str))
    os.replace(tmp, path)


def _read_checkpoint(path: Path) -> dict | None:
    """The checkpoint at `path`, or None where it is absent or cannot be read as one (truncated, overwritten)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return ckpt if isinstance(ckpt, dict) else None


def _checkpoint_fingerprint(path: Path) -> str | None:
    meta = (_read_checkpoint(path) or {}).get("meta") if path.is_file() else None
    return meta.get("fingerprint") if isinstance(meta, dict) else None


def damaged_files(run_dir: Path) -> list[str]:
    """The checkpoints of a run folder that are there but cannot be read (a truncated best.pt, say). Such a run is
    "damaged": the zoo moves the files aside (`_set_aside_damaged`) and trains it again."""
    return [n for n in ("best.pt", "last.pt") if (run_dir / n).is_file() and _read_checkpoint(run_dir / n) is None]


def _set_aside_damaged(run_dir: Path, name: str, log) -> list[Path]:
    """Rename the unreadable checkpoints of `run_dir` to `<file>.damaged` (numbered when that is taken), kept for
    the user to look at, and say so; returns the new paths."""
    moved = []
    for n in damaged_files(run_dir):
        dst = next(run_dir / f"{n}.damaged{i or ''}" for i in itertools.count()
                   if not (run_dir / f"{n}.damaged{i or ''}").exists())
        os.replace(run_dir / n, dst)
        moved.append(dst)
    if moved:
        log(f"{name}: {', '.join(p.name.split('.damaged')[0] for p in moved)} in {run_dir} cannot be read "
            f"(truncated or damaged); kept aside as {', '.join(p.name for p in moved)}; training the run again")
    return moved


def _check_writable(run_dir: Path, name: str) -> None:
    """A run about to be trained needs a writable folder: one line before any work, not a PermissionError later."""
    from .train import unwritable
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{name} trains into {run_dir}, which is a file, not a folder")
    problem = unwritable(run_dir)
    if problem:
        raise ConfigError(f"{name} must be trained into {run_dir}, which is not a writable folder ({problem}); "
                          "make it writable or choose another --ckpt")


@contextlib.contextmanager
def _run_lock(run_dir: Path, name: str, log=print):
    """Hold `<run_dir>/.zoo.lock` while the run trains. A second zoo or notebook on the same folder waits here for
    the first, then finds the run finished instead of training it again. Without fcntl (Windows) no lock is held."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    _check_writable(run_dir, name)
    with open(run_dir / ".zoo.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            log(f"{name}: another process ({f.read().strip() or 'pid unknown'}) is training this run in {run_dir}; "
                "waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _finished_run(run_dir: Path, fp: str) -> dict | None:
    """zoo.json of a finished run with fingerprint `fp` whose best.pt exists, else None."""
    try:
        z = json.loads((run_dir / "zoo.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(z, dict) and (z.get("fingerprint") == fp and z.get("complete") and (run_dir / "best.pt").is_file()
            and _checkpoint_fingerprint(run_dir / "best.pt") == fp):   # the weights are that run's too
        return z
    return None


def _ckpt_root(ckpt_root) -> Path:
    return Path(ckpt_root if ckpt_root is not None else os.environ.get("VIDLAB_CKPT", "data/checkpoints"))


def _run_dir(ckpt_root: Path, name: str, overrides: dict, seed: int = 0) -> Path:
    """`<ckpt_root>/<model>`, tagged with the build overrides and a seed other than 0 (`vit_joint_nano@seed=1`), so
    that runs of other overrides or seeds are kept beside each other."""
    tags = {**overrides, **({"seed": seed} if seed else {})}
    if not tags:
        return ckpt_root / name
    tag = "-".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return ckpt_root / f"{name}@{tag}"


def load_or_train(name: str, data_root, *, ckpt_root=None, smoke: bool = False, device: str = "auto",
                  seed: int = 0, progress: bool = True, train: bool = True, **overrides) -> ZooRun | None:
    """The zoo's trained `name` for `data_root` (loaded when a finished run with the current fingerprint exists),
    else trained now with its recipe and saved into the zoo (`train=False`: None instead). `overrides` go to
    `create_model` (e.g. design="spatial") and are part of the fingerprint. In smoke mode: a tiny budget, nothing
    written."""
    root = Path(data_root)
    if not (root / "classes.txt").is_file() and not (root / "annotations").is_dir():
        raise DatasetError(f"{root}: no dataset here (no classes.txt); generate one with `vidlab data synth`")
    if smoke:
        rec = smoke_recipe(name)
        return train_run(name, root, None, rec=rec, overrides=overrides, seed=seed, device=device,
                         progress=False, num_workers=0)
    rec = get_recipe(name)
    fp = fingerprint(name, rec, root, overrides, seed)
    run_dir = _run_dir(_ckpt_root(ckpt_root), name, overrides, seed)
    z = _finished_run(run_dir, fp)
    if z is None and train:
        with _run_lock(run_dir, name):
            z = _finished_run(run_dir, fp)      # another process may have finished it while this one waited
            if z is None:
                print(f"{name}: no finished zoo run for this recipe and data in {run_dir}; training it now "
                      f"({rec.epochs} epochs)")
                return train_run(name, root, run_dir, rec=rec, overrides=overrides, seed=seed, device=device,
                                 progress=progress, fp=fp, on_progress=_zoo_progress(name, print))
    if z is None:
        return None
    from .models.official import check_and_load, strip_prefix
    from .utils import resolve_device
    ckpt = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    model = create_model(name, **ckpt["meta"]["model_args"])
    check_and_load(model, strip_prefix(ckpt["model"]), strict=True, source=str(run_dir / "best.pt"))
    model.to(resolve_device(device)).eval()
    print(f"{name}: loaded the zoo's run from {run_dir} (val top-1 {z['metrics']['top1']:.1f}%, "
          f"{z['metrics']['epochs']} epochs)")
    return ZooRun(name, model, z["metrics"]["recipe"], z["history"], z["metrics"], "zoo", run_dir / "best.pt",
                  root, overrides, seed)


def zoo_status(data_root, *, ckpt_root=None, models=None, seed: int = 0) -> dict:
    """{model: "ready" | "damaged" | "partial" | "stale" | "missing"} for every `_nano` model (or `models`);
    "damaged": a checkpoint of the run cannot be read (`damaged_files`)."""
    root, ck = Path(data_root), _ckpt_root(ckpt_root)
    data = data_fingerprint(root)
    out = {}
    for name in models or list_models("*_nano"):
        fp = fingerprint(name, get_recipe(name), root, {}, seed, data=data)
        d = _run_dir(ck, name, {}, seed)
        if _finished_run(d, fp):
            out[name] = "ready"
        elif damaged_files(d):
            out[name] = "damaged"
        elif _checkpoint_fingerprint(d / "last.pt") == fp:
            out[name] = "partial"
        elif (d / "last.pt").exists() or (d / "zoo.json").exists():
            out[name] = "stale"
        else:
            out[name] = "missing"
    return out


# --------------------------------------------------------------------------------------------------------------
# The whole zoo
# --------------------------------------------------------------------------------------------------------------

def leaderboard(data_root, *, ckpt_root=None, models=None, seed: int = 0) -> list[dict]:
    """One row per finished zoo run: top-1, top-5, frame order (pairwise in order / shuffled), time, params."""
    root, ck = Path(data_root), _ckpt_root(ckpt_root)
    data = data_fingerprint(root)
    rows = []
    for name in models or list_models("*_nano"):
        z = _finished_run(_run_dir(ck, name, {}, seed), fingerprint(name, get_recipe(name), root, {}, seed, data=data))
        if z is None:
            continue
        m = z["metrics"]
        fo = m.get("frame_order") or {}
        rows.append({"model": name, "arch": model_info(name)["arch"], "top1": m["top1"], "top5": m["top5"],
                     "order_pairwise": fo.get("ordered_pairwise"), "shuffled_pairwise": fo.get("shuffled_pairwise"),
                     "train_time_s": m["train_time_s"], "time_to_target_s": m.get("time_to_target_s"),
                     "epochs": m["epochs"], "params_M": m["params"] / 1e6})
    return sorted(rows, key=lambda r: -r["top1"])


def format_leaderboard(rows: list[dict]) -> str:
    head = f"{'model':26s} {'top1':>6s} {'top5':>6s} {'order':>6s} {'shuf':>6s} {'train':>7s} {'to 80%':>7s} {'params':>7s}"
    lines = [head, "-" * len(head)]
    fmt = (lambda v, f="{:6.1f}": f.format(v) if v is not None else "     -")
    for r in rows:
        t80 = f"{r['time_to_target_s'] / 60:6.1f}m" if r["time_to_target_s"] is not None else "      -"
        lines.append(f"{r['model']:26s} {fmt(r['top1'])} {fmt(r['top5'])} {fmt(r['order_pairwise'])} "
                     f"{fmt(r['shuffled_pairwise'])} {r['train_time_s'] / 60:6.1f}m {t80} {r['params_M']:6.2f}M")
    return "\n".join(lines)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                   # macOS, Windows
        return os.cpu_count() or 1


class ZooTrainingError(RuntimeError):
    """A model of the zoo failed to train in its child process (`vidlab zoo --jobs N`)."""


def zoo_jobs(n_models: int, device: str = "auto", jobs: int | None = None,
             threads: int | None = None) -> tuple[int, int]:
    """(parallel runs, torch threads per run) for `n_models` models: see the module docstring."""
    cores = cpu_cores()
    on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if jobs is None:
        jobs = 1 if on_gpu else (cores if cores <= 4 else cores // 2)
    jobs = max(1, min(jobs, max(n_models, 1)))
    return jobs, threads or max(1, cores // jobs)


def _step_seconds(model: nn.Module, rec: Recipe, repeats: int = 2) -> tuple[float, float]:
    """(training step, evaluation pass) seconds of `model` on a batch of random clips of `rec`'s shape: a forward,
    backward and AdamW step, and a forward without gradients; each the fastest of `repeats` after an untimed one."""
    import torch.nn.functional as F
    x = torch.randn(rec.batch_size, 3, rec.num_frames, rec.img_size, rec.img_size)
    y = torch.zeros(rec.batch_size, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    train, evaluate = [], []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        logits = model(x)
        F.cross_entropy(logits[0] if isinstance(logits, tuple) else logits, y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        train.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            model(x)
            evaluate.append(time.perf_counter() - t0)
    model.train()
    return min(train[1:]), min(evaluate[1:])


def _batch_seconds(ds, batch_size: int) -> float:
    """Seconds to read (render or decode, and transform) one batch of `ds`."""
    n = max(1, min(batch_size, len(ds)))
    t0 = time.perf_counter()
    for i in range(n):
        ds[i]
    return (time.perf_counter() - t0) * batch_size / n


def estimate_work(names: list[str], data_root, *, threads: int = 1, seed: int = 0) -> dict[str, float]:
    """Estimated seconds of training for each of `names` with its recipe on `data_root`, from one timed step.

    Each model takes a training step (forward, backward, AdamW) and an evaluation pass on one batch of random
    clips of its recipe's shape (`threads` torch threads, after one untimed pass), and one batch of its training
    and validation data is read; the estimate is epochs x (training batches x (step + reading) + validation
    batches x (pass + reading)), plus its frame pretraining's steps at the same time per frame (a recipe with
    `reversal_pairs` times its step on the doubled batch it trains on). It is meant for
    ordering the runs and for a first ETA: two runs sharing the cores slow each other, which it does not see.
    MACs do not predict it (the nano models' time per MAC differs 20-fold)."""
    root = Path(data_root)
    out, old_threads = {}, torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        for name in names:
            rec = get_recipe(name)
            train_ds, val_ds = model_datasets(name, rec, root, seed=seed)
            torch.manual_seed(seed)
            model = create_model(name, num_classes=len(val_ds.classes), num_frames=rec.num_frames,
                                 img_size=rec.img_size, **rec.model).train()
            step, evaluate = _step_seconds(model, rec)
            if rec.reversal_pairs:      # each training batch is doubled with the clips played backwards
                step = _step_seconds(model, rec.replace(batch_size=2 * rec.batch_size))[0]
            per_epoch = (math.ceil(len(train_ds) / rec.batch_size) * (step + _batch_seconds(train_ds, rec.batch_size))
                         + math.ceil(len(val_ds) / rec.batch_size) * (evaluate + _batch_seconds(val_ds, rec.batch_size)))
            seconds = rec.epochs * per_epoch
            if rec.pretrain:
                p = check_pretrain(dict(rec.pretrain))
                seconds += p["steps"] * p["batch_size"] * p["num_frames"] * step / (rec.batch_size * rec.num_frames)
            out[name] = seconds
    finally:
        torch.set_num_threads(old_threads)
    return out


def _child_command(name: str, root: Path, ck: Path, device: str, seed: int, threads: int) -> list[str]:
    return [sys.executable, "-m", "vidlab", "zoo", "--data", str(root), "--ckpt", str(ck), "--models", name,
            "--device", device, "--seed", str(seed), "--jobs", "1", "--threads", str(threads)]


def _makespan(busy: list[float], queue: list[float], jobs: int) -> float:
    """Seconds until `jobs` workers, busy for `busy` more seconds, finish `queue` taken in order (list scheduling)."""
    free = sorted(list(busy) + [0.0] * (jobs - len(busy)))
    for seconds in queue:
        free[0] += seconds
        free.sort()
    return max(free) if free else 0.0


def _zoo_progress(name: str, log):
    """The progress callback of a zoo run: a line with the ETA of each phase (`progress_printer`) and, in a child of
    a parallel zoo, the same events as JSON lines in the file its parent reads (`VIDLAB_ZOO_PROGRESS`)."""
    from .train import progress_printer
    show, path = progress_printer(name, log), os.environ.get("VIDLAB_ZOO_PROGRESS")

    def report(event: dict) -> None:
        show(event)
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(event) + "\n")
    return report


class _ProgressFile:
    """The progress events a child appends to its file, read as data (never parsed out of the child's lines)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def read(self) -> list[dict]:
        """The events added since the last call; a line still being written waits for the next one."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


def _zoo_eta(now: float, started: dict, spent: dict, running: list[str], queue: list[str], jobs: int,
             work: dict[str, float], progress: dict) -> float:
    """Seconds left for a parallel zoo. A running model that has reported epochs (`progress[name] = (epochs done,
    epochs, seconds per epoch, when it reported)`) goes on at its measured pace; every other model takes its
    estimate (`work`) scaled by measured / estimated seconds over the finished runs (1 before any). The queue runs
    longest first on the `jobs` workers after the running ones."""
    scale = sum(spent.values()) / max(1e-9, sum(work[n] for n in spent)) if spent else 1.0
    busy = []
    for n in running:
        if n in progress:
            done, epochs, per_epoch, at = progress[n]
            busy.append(max(0.0, (epochs - done) * per_epoch - (now - at)))
        else:
            busy.append(max(0.0, scale * work[n] - (now - started[n])))
    return _makespan(busy, sorted((scale * work[n] for n in queue), reverse=True), jobs)


def _train_parallel(todo: list[str], root: Path, ck: Path, device: str, seed: int, jobs: int, threads: int,
                    log, work: dict[str, float]) -> None:
    """Train `todo` in `jobs` child processes (`vidlab zoo --models <one> --threads <t>`), their lines prefixed
    with the model's name, the longest first by the estimates `work` (`estimate_work`): the short runs come last
    and fill the workers at the end. Each child reports its epochs as data (a JSON-lines file of progress events);
    the ETA for the whole is `_zoo_eta`. After a child fails no other starts; the running ones finish (their runs
    are kept), then this raises ZooTrainingError with the failed model's name."""
    todo = sorted(todo, key=lambda n: -work[n])
    log(f"zoo: longest first: {', '.join(todo)}; about {_zoo_eta(0.0, {}, {}, [], todo, jobs, work, {}) / 60:.0f} "
        "min for the zoo (estimated from one timed step of each model; corrected as the runs report their epochs)")
    queue, running, failed, started, spent, progress = list(todo), {}, [], {}, {}, {}
    lock = threading.Lock()
    width = max(len(n) for n in todo)

    def pump(name, proc):
        for line in proc.stdout:
            if line.strip():
                with lock:
                    log(f"[{name:{width}s}] {line.rstrip()}")

    def read_progress():        # each running child's pace: (epochs done, epochs, seconds per epoch, when)
        for name in running:
            for e in files[name].read():
                if e["phase"] == "training" and e["eta_s"] is not None:
                    left = e["total"] - e["done"]
                    with lock:
                        progress[name] = (e["done"], e["total"], e["eta_s"] / left if left else 0.0,
                                          time.perf_counter())

    env = {**os.environ, "VIDLAB_ZOO_CHILD": "1", "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    events = Path(tempfile.mkdtemp(prefix="vidlab_zoo_"))
    files = {n: _ProgressFile(events / f"{n}.jsonl") for n in todo}
    done_epochs, total_epochs = 0, sum(get_recipe(n).epochs for n in todo)
    try:
        while queue or running:
            while queue and len(running) < jobs and not failed:
                name = queue.pop(0)
                proc = subprocess.Popen(_child_command(name, root, ck, device, seed, threads), text=True,
                                        env={**env, "VIDLAB_ZOO_PROGRESS": str(files[name].path)},
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
                th = threading.Thread(target=pump, args=(name, proc), daemon=True)
                th.start()
                running[name] = (proc, th)
                started[name] = time.perf_counter()
            time.sleep(0.5)
            read_progress()
            for name, (proc, th) in list(running.items()):
                if proc.poll() is None:
                    continue
                th.join()
                del running[name]
                progress.pop(name, None)
                if proc.returncode != 0:
                    failed.append((name, proc.returncode))
                    continue
                now = time.perf_counter()
                spent[name] = now - started[name]
                done_epochs += get_recipe(name).epochs
                left = total_epochs - done_epochs
                if left:
                    with lock:
                        eta = _zoo_eta(now, started, spent, list(running), queue, jobs, work, progress)
                        log(f"zoo: {len(todo) - len(queue) - len(running)} of {len(todo)} trained; about "
                            f"{eta / 60:.0f} min left for the zoo")
            if failed and not running:
                break
    finally:
        for proc, _ in running.values():
            proc.terminate()
        shutil.rmtree(events, ignore_errors=True)
    if failed:
        name, rc = failed[0]
        raise ZooTrainingError(f"zoo: training {name} failed (exit status {rc}); its lines above say why; "
                               f"`vidlab zoo --models {name} --jobs 1` runs it alone")


def _train_one_by_one(todo: list[str], status: dict, root: Path, ck: Path, device: str, seed: int, progress: bool,
                      log) -> None:
    # ETA: the recipes' epochs x the measured seconds per epoch of the models trained so far
    spent = []
    for i, name in enumerate(todo):
        rec = get_recipe(name)
        if spent:
            per_epoch = sum(s for s, _ in spent) / sum(e for _, e in spent)
            eta = per_epoch * sum(get_recipe(n).epochs for n in todo[i:])
            log(f"zoo [{i + 1}/{len(todo)}] {name} ({status[name]}): about {eta / 60:.0f} min left for the zoo")
        else:
            log(f"zoo [{i + 1}/{len(todo)}] {name} ({status[name]}): {rec.epochs} epochs")
        t0 = time.perf_counter()
        run_dir = _run_dir(ck, name, {}, seed)
        with _run_lock(run_dir, name, log):
            if _finished_run(run_dir, fingerprint(name, rec, root, {}, seed)) is not None:
                log(f"zoo: {name} was trained by another process meanwhile; skipped")
                continue
            run = train_run(name, root, run_dir, rec=rec, seed=seed, device=device, progress=progress,
                            on_progress=_zoo_progress(name, log))
        spent.append((time.perf_counter() - t0, max(1, run.metrics["epochs"])))
        fo = run.metrics["frame_order"]
        log(f"zoo: {name} val top-1 {run.metrics['top1']:.1f}%"
            + (f", frame order pairwise {fo['ordered_pairwise']:.1f}% in order vs {fo['shuffled_pairwise']:.1f}% "
               f"shuffled" if fo else "") + f" ({(time.perf_counter() - t0) / 60:.1f} min)")


def train_zoo(data_root, *, models=None, ckpt_root=None, device: str = "auto", seed: int = 0,
              progress: bool = True, log=print, jobs: int | None = None, threads: int | None = None) -> list[dict]:
    """Train every model of the zoo that is not ready (see `zoo_status`), `jobs` at a time with `threads` torch
    threads each (defaults: `zoo_jobs`), with an ETA for the whole; returns the leaderboard. A child of a parallel
    zoo (VIDLAB_ZOO_CHILD set) prints only its model's lines."""
    child = bool(os.environ.get("VIDLAB_ZOO_CHILD"))
    root, ck = Path(data_root), _ckpt_root(ckpt_root)
    names = list(dict.fromkeys(models or list_models("*_nano")))     # a model named twice is one run
    if models and len(names) < len(models):
        log(f"zoo: {', '.join(n for n in names if list(models).count(n) > 1)} named more than once; trained once")
    status = zoo_status(root, ckpt_root=ck, models=names, seed=seed)
    todo = [n for n in names if status[n] != "ready"]
    for n in todo:                      # before any work: a run to train needs a folder it can write
        _check_writable(_run_dir(ck, n, {}, seed), n)
    if not child:
        log(f"zoo: {len(names) - len(todo)} of {len(names)} models ready in {ck}; training {len(todo)}"
            + (f": {', '.join(todo)}" if todo else ""))
    explicit_threads = threads
    jobs, threads = zoo_jobs(len(todo), device, jobs, threads)
    t_start = time.perf_counter()
    if jobs > 1:
        log(f"zoo: {jobs} models at a time, {threads} torch thread(s) each")
        work = estimate_work(todo, root, threads=threads, seed=seed)
        _train_parallel(todo, root, ck, device, seed, jobs, threads, log, work)
    else:
        if explicit_threads:
            torch.set_num_threads(explicit_threads)
        _train_one_by_one(todo, status, root, ck, device, seed, progress, log)
    rows = leaderboard(root, ckpt_root=ck, models=names, seed=seed)
    if not child:
        if todo:
            log(f"zoo: trained {len(todo)} model(s) in {(time.perf_counter() - t_start) / 60:.1f} min")
        log(format_leaderboard(rows))
    return rows
