"""Training and evaluation: one plain PyTorch loop that reads top to bottom.

    cfg = TrainConfig(epochs=10, batch_size=8, lr=1e-3, out_dir="runs/nano")
    trainer = Trainer(model, train_ds, val_ds, cfg)
    history = trainer.fit()                        # one dict per epoch (also runs/nano/metrics.csv)
    report = trainer.evaluate(val_ds, views="2x3")  # top1, top5, loss, confusion, per_class

What the loop does, in order: AdamW (no weight decay on norms, biases, position embeddings and tokens), a cosine
learning-rate schedule with linear warm-up stepped once per optimiser step, label smoothing, automatic mixed
precision on CUDA (bf16 where the GPU supports it, else fp16 with a GradScaler), gradient accumulation and
clipping. The last training batch is dropped when it is incomplete (a batch of one breaks BatchNorm). After each
epoch it evaluates, logs a CSV/JSON row, and writes `best.pt` (when validation top-1 improves) and then `last.pt`
atomically, so a kill in the middle of a write leaves the previous good file, and `best.pt` always holds the best
epoch of the history in `last.pt` (a resume re-creates it if needed).

The run folder (`out_dir`) is checked before the first step: it must be a writable folder with room for the
checkpoints, and one that already holds a run is only trained into with `resume()` or `overwrite=True`. A
checkpoint that cannot be written (a full disk) stops training with `CheckpointSaveError`, which says how much
space is needed; the previous checkpoint is kept. Temporary files of interrupted writes are removed on start.

Checkpoints hold only tensors, numbers, strings, lists and dicts, so they load with
``torch.load(path, weights_only=True)``; they carry every random state (python, numpy, torch, cuda) so that
`Trainer.resume(path)` continues *exactly*: 2 epochs straight give the same weights as 1 epoch, stop, resume, 1 more.

Data: datasets return ``(clip float (3, T, H, W), label int, index int)`` (`vidlab.data.VideoClipDataset`); a broken
clip may come back as ``None`` and is dropped from its batch. Per epoch the log reports the broken files met and
how often they were drawn (a training set replaces them by stand-ins). Evaluation never substitutes: it scores the
readable clips and reports how many, and which, were left out (`num_left_out`, `left_out`).

Multi-GPU: launch with ``torchrun --nproc_per_node=N -m vidlab train ...``. When a process group is initialised
(`init_distributed()` does it from torchrun's environment) the Trainer wraps the model in DistributedDataParallel,
shards the data with DistributedSampler, averages metrics over ranks and logs/checkpoints on rank 0 only.
``batch_size`` is per process.

Accuracies (train_acc, top1, top5, frame-order accuracies) are percentages in [0, 100].
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import random
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler, SequentialSampler
from tqdm.auto import tqdm

from .errors import CheckpointError, CheckpointSaveError, ConfigError, DatasetError, VidlabError
from .utils import resolve_device


class NonFiniteLossError(VidlabError):
    """The training loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


# --------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Everything the loop needs; stored (as a plain dict) in every checkpoint."""
    epochs: int = 10                 # passes over the training set; the lr schedule spans all of them
    batch_size: int = 8              # clips per optimiser micro-step, per process
    lr: float = 1e-3                 # peak learning rate, reached at the end of warm-up
    weight_decay: float = 0.05       # AdamW decoupled decay (not applied to norms, biases, pos-embeddings, tokens)
    warmup_epochs: float = 1.0       # linear warm-up from 0 to `lr`, in epochs (fractions allowed)
    min_lr: float = 1e-6             # floor of the cosine decay
    label_smoothing: float = 0.1     # cross-entropy label smoothing (training loss only)
    clip_grad: float | None = 1.0    # max global gradient norm; None or 0 disables clipping
    amp: str = "auto"                # "auto" (bf16/fp16 on CUDA, off elsewhere), "bf16", "fp16" or "off"
    accum_steps: int = 1             # micro-batches accumulated per optimiser step (effective batch = this x batch)
    num_workers: int = 0             # DataLoader worker processes
    seed: int = 0                    # seeds model-independent randomness: sampler order, augmentation, dropout
    device: str = "auto"             # "auto" (cuda, then mps, then cpu), "cuda", "cuda:1", "cpu", ...
    out_dir: str | None = None       # where last.pt, best.pt, metrics.csv and metrics.json go; None writes nothing
    eval_every: int = 1              # evaluate every N epochs (and always after the last one)
    views: str = "1x1"               # validation views during fit, "<clips>x<crops>", e.g. "2x3"
    log_every: int = 10              # refresh the progress-bar numbers every N micro-steps
    progress: bool = True            # show tqdm progress bars (rank 0 only)
    overwrite: bool = False          # train into an out_dir that holds another run (its files are replaced)
    optimizer: str = "adamw"         # "adamw" or "sgd" (Nesterov momentum 0.9); same parameter groups for both
    adam_eps: float = 1e-8           # AdamW's epsilon (PyTorch's default); see Recipe.adam_eps for why nanos use less
    time_reversal: list | None = None  # label of each class's time-reversed clip (len = classes): when set, every
                                     # training batch is doubled with its clips played backwards (`reversal_batch`)

    def __post_init__(self):
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.accum_steps < 1:
            raise ConfigError(f"accum_steps must be >= 1, got {self.accum_steps}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not self.adam_eps > 0:
            raise ConfigError(f"adam_eps must be > 0, got {self.adam_eps}")
        if self.time_reversal is not None:
            m = [int(v) for v in self.time_reversal]
            if any(not 0 <= v < len(m) for v in m) or any(m[v] != c for c, v in enumerate(m)):
                raise ConfigError(f"time_reversal must map each class to the class of its reversed clip (an "
                                  f"involution on 0..{len(m) - 1}), got {self.time_reversal!r}")
            self.time_reversal = m
        if str(self.amp) not in {"auto", "bf16", "fp16", "off", "True", "False", "None"}:
            raise ConfigError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {self.amp!r}")
        parse_views(self.views)


def parse_views(views: str | Sequence[int]) -> tuple[int, int]:
    """'2x3' -> (2 clips, 3 crops). A (clips, crops) pair passes through."""
    if isinstance(views, str):
        try:
            clips, crops = (int(v) for v in views.lower().split("x"))
        except ValueError:
            raise ConfigError(f"views must look like '<clips>x<crops>' (e.g. '2x3'), got {views!r}") from None
    else:
        clips, crops = (int(v) for v in views)
    if clips < 1 or crops < 1:
        raise ConfigError(f"views need at least 1 clip and 1 crop, got {views!r}")
    return clips, crops


# --------------------------------------------------------------------------------------------------------------
# Building blocks: parameter groups, schedule, batching, distributed helpers
# --------------------------------------------------------------------------------------------------------------

# Bare nn.Parameters whose name contains one of these are embeddings or learned tokens: never decayed.
NO_DECAY_KEYWORDS = ("pos_embed", "pos_emb", "position", "token", "time_embed", "temporal_embed", "cls")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights that decay, and everything that should not (norms, biases, embeddings, tokens).

    A model may also list parameter names to exempt in `model.no_weight_decay()` (the timm convention).
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if (p.ndim <= 1 or leaf == "bias" or name in skip or leaf in skip
                or any(k in leaf for k in NO_DECAY_KEYWORDS)):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay, "group": "decay"},
            {"params": no_decay, "weight_decay": 0.0, "group": "no_decay"}]


def build_optimizer(model: nn.Module, cfg: "TrainConfig") -> torch.optim.Optimizer:
    """AdamW (the default) or SGD with Nesterov momentum, over `param_groups` (no decay on norms, biases, tokens)."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    if cfg.optimizer != "adamw":
        raise ConfigError(f"optimizer must be 'adamw' or 'sgd', got {cfg.optimizer!r}")
    return torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_eps)


def cosine_with_warmup(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier at optimiser step `step`: linear 0 -> 1 over the warm-up, then cosine -> min_ratio."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def collate_clips(batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Stack (clip, label, index) items; items that came back as None (broken clips) are dropped."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    clips = torch.stack([b[0] for b in batch])
    labels = torch.as_tensor([int(b[1]) for b in batch], dtype=torch.long)
    index = torch.as_tensor([int(b[2]) for b in batch], dtype=torch.long)
    return clips, labels, index


def reversal_batch(clips: torch.Tensor, labels: torch.Tensor, reverse_label: torch.Tensor):
    """A batch and its time reversals: (2B, 3, T, H, W) clips and 2B labels.

    On a class set closed under time reversal (each class maps to the class of its clips played backwards: the
    two classes of a time-reversed pair to each other, a time-symmetric class to itself) the reversed clips are
    more clips of the same distribution. In the doubled batch each clip meets its own reversal with the partner's
    label: whatever the two share (every frame, every appearance cue) cannot tell them apart, so their gradients
    isolate what depends on the order of the frames."""
    return torch.cat([clips, clips.flip(2)]), torch.cat([labels, reverse_label.to(labels.device)[labels]])


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_distributed(backend: str | None = None) -> bool:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Returns True when running distributed. Uses NCCL when CUDA is available (one GPU per process, chosen by
    LOCAL_RANK) and gloo otherwise. A no-op when WORLD_SIZE is unset or 1.
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


class _ShardSampler(Sampler):
    """Evaluation shard for rank r of w: indices r, r + w, r + 2w, ... (no padding, so nothing is counted twice)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


class _MultiViewDataset(Dataset):
    """Wraps a dataset for evaluation: item i is all its test views stacked, (views (V, 3, T, H, W), label, i), or
    None when clip i cannot be read - never another clip in its place.

    Views come from the dataset's `get_view(index, clip_idx, crop_idx, num_clips=, num_crops=)` hook
    (`vidlab.data.VideoClipDataset` provides it): clip_idx picks one of `num_clips` temporal windows spread over
    the video, crop_idx one of `num_crops` spatial crops (1: centre, 3: left/centre/right along the long side).
    A dataset without the hook is read with `dataset[i]` (one view); an item that comes back for another index (a
    stand-in for a broken clip) counts as unreadable.
    """

    def __init__(self, dataset, num_clips: int, num_crops: int):
        self.dataset, self.num_clips, self.num_crops = dataset, num_clips, num_crops

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if not hasattr(self.dataset, "get_view"):
            item = self.dataset[i]
            if item is None or int(item[2]) != i:
                return None
            return item[0][None], item[1], i
        views, label, index = [], None, i
        for c in range(self.num_clips):
            for s in range(self.num_crops):
                item = self.dataset.get_view(i, c, s, num_clips=self.num_clips, num_crops=self.num_crops)
                if item is None:
                    return None
                views.append(item[0])
                label, index = item[1], item[2]
        return torch.stack(views), label, index


def _unwrap(model: nn.Module) -> nn.Module:
    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


def _skip_state(ds) -> tuple:
    """(attempts, {path: attempts}, stand-in paths) of a dataset's skip log so far; datasets that only count
    (`num_skipped`) give (count, {}, set())."""
    if ds is None:
        return 0, {}, set()
    skipped = getattr(ds, "skipped", None)
    if isinstance(skipped, list) and all(isinstance(e, dict) and "path" in e for e in skipped):
        per_file: dict[str, int] = {}
        for e in skipped:
            per_file[e["path"]] = per_file.get(e["path"], 0) + 1
        return len(skipped), per_file, {e["stand_in"] for e in skipped if e.get("stand_in")}
    return int(getattr(ds, "num_skipped", 0) or 0), {}, set()


def _skip_delta(before: tuple, after: tuple) -> tuple[int, int, list[str], list[str]]:
    """(broken files, attempts, their paths, stand-in paths) met between two `_skip_state` snapshots."""
    attempts = after[0] - before[0]
    if not after[1]:                        # a counting-only dataset: one attempt = one file
        return attempts, attempts, [], []
    files = sorted(p for p, n in after[1].items() if n > before[1].get(p, 0))
    return len(files), attempts, files, sorted(after[2] - before[2])


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _nbytes(obj) -> int:
    """Bytes of the tensors in a (nested) checkpoint: about the size of its file."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "metrics.json", "frame_order.json")
_TMP_FILE = re.compile(r"^\.(last\.pt|best\.pt|metrics\.csv|metrics\.json)\.tmp(\d*)$")


def _labels_of(dataset) -> list[int]:
    """Labels of every item without decoding video when the dataset can tell (`labels` or `samples`)."""
    if hasattr(dataset, "labels"):
        return [int(v) for v in dataset.labels]
    samples = getattr(dataset, "samples", None)
    if samples is not None and len(samples) == len(dataset):
        out = []
        for s in samples:
            if isinstance(s, dict):
                out.append(int(s["label"]))
            elif hasattr(s, "label"):
                out.append(int(s.label))
            elif isinstance(s, (tuple, list)):
                out.append(int(s[1]))
            else:
                break
        else:
            return out
    return [int(dataset[i][1]) for i in range(len(dataset))]


# --------------------------------------------------------------------------------------------------------------
# Random state <-> checkpoint (only tensors, numbers, strings, lists and dicts: loads with weights_only=True)
# --------------------------------------------------------------------------------------------------------------

def get_rng_state() -> dict:
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(mt), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def progress_event(phase: str, done: int, total: int, unit: str, elapsed_s: float, ran: int) -> dict:
    """What an `on_progress` callback gets: `done` of `total` `unit` of a phase ("frame pretraining", "training"),
    `elapsed_s` seconds into it, and the seconds left at the pace of the `ran` units done in that time (None before
    the first)."""
    return {"phase": phase, "done": done, "total": total, "unit": unit, "elapsed_s": round(elapsed_s, 1),
            "eta_s": round(elapsed_s / ran * (total - done), 1) if ran else None}


def progress_printer(name: str, log=print, every_s: float = 30.0):
    """An `on_progress` callback that writes `ila_nano: frame pretraining 300/1500 steps, 1.2 min, about 4.8 min
    left`: when a phase starts, at most every `every_s` seconds, and when it ends."""
    last: dict[str, float] = {}

    def report(e: dict) -> None:
        now = time.perf_counter()
        if 0 < e["done"] < e["total"] and now - last.get(e["phase"], -math.inf) < every_s:
            return
        last[e["phase"]] = now
        left = f", about {e['eta_s'] / 60:.1f} min left" if e["eta_s"] and e["done"] < e["total"] else ""
        log(f"{name}: {e['phase']} {e['done']}/{e['total']} {e['unit']}, {e['elapsed_s'] / 60:.1f} min{left}")
    return report


def unwritable(folder: Path) -> str:
    """'' when `folder` is (or can be made) a folder this process can write into, else why not. It writes and
    removes a probe file: permission bits do not tell (root ignores them, a read-only mount does not show)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{os.getpid()}"
        probe.write_bytes(b"vidlab")
        probe.unlink()
    except OSError as e:
        return e.strerror or str(e)
    return ""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, flush it to disk, then rename over `path`.

    os.replace is atomic, so a reader (or a crash) sees either the old file or the new one, never half of one.
    A failed write (a full disk: torch raises "RuntimeError: [enforce fail at inline_container.cc]" or an OSError)
    raises `CheckpointSaveError` saying how much space the file needs and how much is free; `path` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        try:
            free = _mib(shutil.disk_usage(path.parent).free)
        except OSError:
            free = "unknown"
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        kept = f"the previous {path.name} is kept" if path.exists() else f"no {path.name} was written"
        raise CheckpointSaveError(f"{path} could not be written ({reason}); it needs about {_mib(_nbytes(obj))}, "
                                  f"{free} free in {path.parent}; {kept}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------------

class ModelCheckpoint:
    """Which checkpoint of a run to write, when, and where (Lightning's ModelCheckpoint, beside the loop rather than
    inside it): `out_dir` is checked before any work (a writable folder with room for the checkpoints; leftovers of
    interrupted writes removed), a folder holding another run is refused unless `overwrite`, and after every epoch
    best.pt (when val top-1 improved) then last.pt and the metrics files are written, each atomically."""

    def __init__(self, out_dir: str | Path, overwrite: bool = False):
        self.out_dir, self.overwrite = Path(out_dir), overwrite

    def prepare(self, model: nn.Module) -> None:
        """Before any work: out_dir must be a writable folder with room for the checkpoints; leftovers of
        interrupted writes (`.last.pt.tmp<pid>` of a process that is gone) are removed."""
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise ConfigError(f"out_dir {out} is a file, not a folder; choose a folder for the run")
        problem = unwritable(out)
        if problem:
            raise ConfigError(f"out_dir {out} is not a writable folder ({problem})")
        for f in out.iterdir():
            m = _TMP_FILE.match(f.name)
            if m and f.is_file() and not (m.group(2) and _pid_alive(int(m.group(2)))):
                f.unlink()
        # last.pt + best.pt + one temporary copy; a checkpoint holds the weights and AdamW's two moments
        params = sum(_nbytes(t) for t in model.state_dict().values())
        need = 3 * (params + 2 * sum(_nbytes(q) for q in model.parameters() if q.requires_grad))
        free = shutil.disk_usage(out).free
        if free < need:
            raise ConfigError(f"out_dir {out} has {_mib(free)} free; the checkpoints of this run need about "
                              f"{_mib(need)} (last.pt, best.pt and a temporary copy)")

    def existing_run(self) -> str:
        """'' or why out_dir cannot be trained into from scratch (it holds another run); with `overwrite` the
        other run's files are removed instead."""
        found = [n for n in RUN_FILES if (self.out_dir / n).exists()]
        if not found:
            return ""
        if self.overwrite:
            for n in found:
                (self.out_dir / n).unlink()
            return ""
        what = ""
        try:
            epochs = json.loads((self.out_dir / "metrics.json").read_text()).get("epochs", [])
            what = f", {len(epochs)} epoch(s) logged"
        except (OSError, ValueError, AttributeError):
            pass
        return (f"out_dir {self.out_dir} already holds a run ({', '.join(found)}{what}); continue it with resume "
                f"(--resume {self.out_dir / 'last.pt'}) or replace it with overwrite=True (--overwrite)")

    def after_epoch(self, trainer: "Trainer", is_best: bool) -> None:
        """best.pt first: a kill between the two writes leaves last.pt one epoch behind, and the resumed run redoes
        that epoch and rewrites both; the other order could lose best.pt for good."""
        try:
            if is_best:
                trainer.save_checkpoint(self.out_dir / "best.pt")
            trainer.save_checkpoint(self.out_dir / "last.pt")
        except CheckpointSaveError as e:
            raise CheckpointSaveError(f"epoch {trainer.epoch} finished but was not saved: {e}. Free some "
                                      f"space, then resume from {self.out_dir / 'last.pt'}") from None
        self.write_metrics(trainer)

    def ensure_best(self, trainer: "Trainer") -> None:
        """After a resume best.pt must hold the best epoch. When it is missing or holds another epoch and the
        best epoch is the one just restored (a kill while best.pt was written), it is re-created from it."""
        if trainer.best_epoch <= 0:
            return
        path = self.out_dir / "best.pt"
        held = -1
        if path.is_file():
            try:
                held = int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("epoch", -1))
            except Exception:
                held = -1
        if held == trainer.best_epoch or held > trainer.epoch:  # right, or written by an epoch that is being redone
            return
        if trainer.best_epoch == trainer.epoch:
            trainer.save_checkpoint(path)
            tqdm.write(f"re-created {path} from the resumed epoch {trainer.epoch} (the best, val top-1 "
                       f"{trainer.best_top1:.1f}%)")
        else:
            warnings.warn(f"{path} {'holds epoch ' + str(held) if held > 0 else 'is missing or unreadable'}, but the "
                          f"best epoch was {trainer.best_epoch} (val top-1 {trainer.best_top1:.1f}%), whose weights are "
                          "no longer available; it will be written again when a later epoch does better",
                          stacklevel=3)

    def write_metrics(self, trainer: "Trainer") -> None:
        """metrics.csv (one row per epoch) and metrics.json (the same rows plus the config), both atomic."""
        fields = ["epoch", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5", "clips_per_s",
                  "time_s", "lr", "skipped_clips", "skip_attempts", "val_clips", "val_left_out"]
        tmp = self.out_dir / f".metrics.csv.tmp{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(trainer.history)
        os.replace(tmp, self.out_dir / "metrics.csv")
        tmp = self.out_dir / f".metrics.json.tmp{os.getpid()}"
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                 for r in trainer.history]
        tmp.write_text(json.dumps({"config": dataclasses.asdict(trainer.cfg), "meta": trainer.meta, "epochs": clean},
                                  indent=1, default=str))
        os.replace(tmp, self.out_dir / "metrics.json")


# --------------------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------------------


def sample_paths(ds) -> list:
    """The file of each item of `ds` (its `samples`' `path`), or "item i" where the dataset does not say."""
    samples = getattr(ds, "samples", None)
    if samples is None or len(samples) != len(ds):
        return [f"item {i}" for i in range(len(ds))]
    return [(getattr(s, "path", None) or (s.get("path") if isinstance(s, dict) else None)) or f"item {i}"
            for i, s in enumerate(samples)]


def no_clip_readable(n: int, paths: list) -> DatasetError:
    """The error of a split to evaluate none of whose `n` clips could be read (`paths`: the first few are named)."""
    shown = ", ".join(str(p) for p in paths[:3])
    return DatasetError(f"none of the {n} clips to evaluate could be read (e.g. {shown}" + (" ..." if n > 3 else "")
                        + "), so there is no score; fix or replace them (`vidlab data info` reads one and says why "
                        "it fails)")


class Trainer:
    """Train `model` on `train_ds`, validating on `val_ds` after each epoch (see the module docstring).

    `meta` is an optional plain dict stored in every checkpoint (the CLI puts the model's build arguments and the
    data settings there, so `vidlab eval` can rebuild the model from the checkpoint alone). `on_progress` is called
    with a `progress_event` when training starts and after every epoch (on rank 0).
    """

    def __init__(self, model: nn.Module, train_ds: Dataset, val_ds: Dataset | None = None,
                 cfg: TrainConfig | None = None, meta: dict | None = None, on_progress=None):
        self.cfg = cfg = cfg or TrainConfig()
        self.train_ds, self.val_ds, self.meta = train_ds, val_ds, dict(meta or {})
        self.on_progress = on_progress
        if train_ds is not None and _has_batchnorm(model) and min(len(train_ds), cfg.batch_size) < 2:
            raise ConfigError(f"{getattr(model, 'vidlab_name', type(model).__name__)} has BatchNorm layers, which "
                              f"cannot train on a batch of one clip; the training set holds {len(train_ds)} clip(s) "
                              f"and batch_size is {cfg.batch_size}: give each batch at least 2 clips "
                              "(--stream-clips 2, --batch-size 2)")
        self.device = resolve_device(cfg.device)
        if is_distributed() and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.is_main = rank() == 0
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
        self.checkpoints = ModelCheckpoint(self.out_dir, cfg.overwrite) if self.out_dir is not None else None
        if self.checkpoints is not None and self.is_main:
            self.checkpoints.prepare(model)

        # Precision: bf16 needs no loss scaling; fp16 does (its range is too small for small gradients).
        self.amp_dtype = self._resolve_amp(cfg.amp)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        self.model = model.to(self.device)
        self.train_model = self.model
        if is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

        self.optimizer = build_optimizer(self.model, cfg)
        # train_ds may be None for an evaluation-only Trainer (what `vidlab eval` builds).
        n_batches = len(self._train_loader(0)) if train_ds is not None else 1
        self.steps_per_epoch = math.ceil(n_batches / cfg.accum_steps)
        total = cfg.epochs * self.steps_per_epoch
        warmup = min(total, int(round(cfg.warmup_epochs * self.steps_per_epoch)))
        min_ratio = cfg.min_lr / cfg.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: cosine_with_warmup(step, total, warmup, min_ratio))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

        self.epoch = 0            # epochs completed
        self.global_step = 0      # optimiser steps taken
        self.best_top1 = -1.0
        self.best_epoch = 0       # the epoch best.pt holds (0: none yet)
        self.history: list[dict] = []
        self.resumed_from: str | None = None
        self._bn = _has_batchnorm(self.model)
        self.skipped_batches = 0  # training batches of one clip left out (BatchNorm cannot train on them)

    # ---- set-up helpers ------------------------------------------------------------------------------------
    def _resolve_amp(self, amp) -> torch.dtype | None:
        amp = str(amp)
        if amp in {"off", "False", "None"}:
            return None
        if amp == "auto":
            if self.device.type != "cuda":
                return None
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if amp == "bf16" else torch.float16

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _train_loader(self, epoch: int) -> DataLoader:
        """A fresh loader per epoch, its order fixed by (seed, epoch): no sampler state to carry across a resume.

        The same generator draws the worker base seed, so augmentation inside workers is reproducible too
        (PyTorch seeds python, numpy and torch in each worker from it). A dataset with `set_epoch(epoch)` is told
        the epoch first (before workers copy it).
        """
        g = torch.Generator()
        g.manual_seed(self.cfg.seed + epoch)
        if hasattr(self.train_ds, "set_epoch"):  # datasets that derive per-clip randomness from (seed, epoch, index)
            self.train_ds.set_epoch(epoch)
        if is_distributed():
            sampler = DistributedSampler(self.train_ds, shuffle=True, seed=self.cfg.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(self.train_ds, generator=g)
        # An incomplete last batch is dropped (it could hold one clip, and BatchNorm cannot train on one); a
        # training set smaller than one batch is kept as its single batch.
        drop_last = len(sampler) > self.cfg.batch_size
        return DataLoader(self.train_ds, batch_size=self.cfg.batch_size, sampler=sampler,
                          num_workers=self.cfg.num_workers, collate_fn=collate_clips, generator=g,
                          pin_memory=self.device.type == "cuda", drop_last=drop_last)

    def _eval_loader(self, ds, batch_size: int | None = None) -> DataLoader:
        sampler = _ShardSampler(len(ds), rank(), world_size()) if is_distributed() else SequentialSampler(ds)
        return DataLoader(ds, batch_size=batch_size or self.cfg.batch_size, sampler=sampler,
                          num_workers=self.cfg.num_workers, collate_fn=collate_clips,
                          pin_memory=self.device.type == "cuda")

    # ---- training ------------------------------------------------------------------------------------------
    def fit(self, max_epochs: int | None = None) -> list[dict]:
        """Train until `cfg.epochs` (or stop early after `max_epochs` in total; the schedule still spans
        `cfg.epochs`, so a later `fit()` or `resume()` carries on where this one stopped). Returns the history.

        Raises ConfigError before the first step when out_dir holds another run (and neither resume() nor
        cfg.overwrite was used), and CheckpointSaveError when a checkpoint cannot be written."""
        if self.train_ds is None:
            raise ConfigError("Trainer.fit needs a training dataset (train_ds is None)")
        if self.checkpoints is not None and self.epoch == 0 and self.resumed_from is None:
            problem = self.checkpoints.existing_run() if self.is_main else ""
            if is_distributed():
                box = [problem]
                dist.broadcast_object_list(box, src=0)
                problem = box[0]
            if problem:
                raise ConfigError(problem)
        if self.checkpoints is not None and self.is_main:
            self.checkpoints.ensure_best(self)
        if self.finished:
            warnings.warn(f"{self.resumed_from or 'this run'}: the run already finished its {self.epoch} epoch(s) "
                          f"(epochs={self.cfg.epochs}); nothing is left to do. Ask for more epochs to train on",
                          stacklevel=2)
        stop = min(self.cfg.epochs, max_epochs or self.cfg.epochs)
        t_fit, first = time.perf_counter(), self.epoch
        self._report_progress(t_fit, first)
        while self.epoch < stop:
            t0 = time.perf_counter()
            skips0 = [_skip_state(self.train_ds), _skip_state(self.val_ds)]
            train = self.train_one_epoch(self.epoch)
            row = {"epoch": self.epoch + 1, **train}
            last = self.epoch + 1 == self.cfg.epochs
            if self.val_ds is not None and ((self.epoch + 1) % self.cfg.eval_every == 0 or last):
                ev = self.evaluate(self.val_ds, views=self.cfg.views)
                row.update(val_loss=ev["loss"], val_top1=ev["top1"], val_top5=ev["top5"],
                           val_clips=ev["num_clips"], val_left_out=ev["num_left_out"])
            else:
                row.update(val_loss=float("nan"), val_top1=float("nan"), val_top5=float("nan"),
                           val_clips=0, val_left_out=0)
            deltas = [_skip_delta(b, _skip_state(ds)) for b, ds in zip(skips0, (self.train_ds, self.val_ds))]
            row["skipped_clips"] = sum(d[0] for d in deltas)     # broken files met this epoch
            row["skip_attempts"] = sum(d[1] for d in deltas)     # times they were drawn
            row["skipped_files"] = deltas[0][2] + deltas[1][2]
            row["stand_ins"] = deltas[0][3]
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["time_s"] = time.perf_counter() - t0
            self.epoch += 1
            is_best = not math.isnan(row["val_top1"]) and row["val_top1"] > self.best_top1
            if is_best:
                self.best_top1, self.best_epoch = row["val_top1"], self.epoch
            self.history.append(row)
            self._log_epoch(row)
            if self.checkpoints is not None and self.is_main:
                self.checkpoints.after_epoch(self, is_best)
            self._report_progress(t_fit, first)
        return self.history

    def _report_progress(self, t_fit: float, first: int) -> None:
        if self.on_progress is not None and self.is_main:
            self.on_progress(progress_event("training", self.epoch, self.cfg.epochs, "epochs",
                                            time.perf_counter() - t_fit, self.epoch - first))

    def train_one_epoch(self, epoch: int) -> dict:
        cfg, model = self.cfg, self.train_model
        model.train()
        loader = self._train_loader(epoch)
        accum = cfg.accum_steps
        n_micro = len(loader)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = torch.zeros((), device=self.device)
        t0 = time.perf_counter()
        # tqdm.auto's class calls iter() on what it is given and then iterates it again: given the loader, that
        # starts the workers twice (and decodes the first batches twice). Given an iterator, both are the same.
        bar = tqdm(iter(loader), total=n_micro, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and self.is_main), dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        reverse_label = torch.tensor(cfg.time_reversal, device=self.device) if cfg.time_reversal is not None else None
        for i, batch in enumerate(bar):
            # The optimiser steps after every `accum` micro-batches and at the end of the epoch.
            last_of_step = (i + 1) % accum == 0 or i + 1 == n_micro
            if batch is not None and len(batch[1]) == 1 and self._bn and len(self.train_ds) > 1:
                batch = None             # broken clips dropped from it left one clip: BatchNorm cannot train on it
                self.skipped_batches += 1
            if batch is not None:
                clips, labels, _ = batch
                clips = clips.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                if reverse_label is not None:
                    clips, labels = reversal_batch(clips, labels, reverse_label)
                # DDP all-reduces gradients on every backward unless told not to: once per optimiser step is enough.
                defer = not last_of_step and isinstance(model, nn.parallel.DistributedDataParallel)
                with model.no_sync() if defer else contextlib.nullcontext():
                    with self._autocast():
                        logits, loss = self._forward_loss(model, clips, labels)
                    if self._nonfinite(loss):
                        self._stop_on_nonfinite(loss, epoch, i)
                    self.scaler.scale(loss / accum).backward()
                loss_sum += loss.detach() * len(labels)
                correct += (logits.argmax(-1) == labels).sum()
                seen += len(labels)
            if last_of_step:
                self._optimizer_step()
            if self.is_main and cfg.progress and (i % cfg.log_every == 0 or i + 1 == n_micro) and seen > 0:
                dt = time.perf_counter() - t0
                bar.set_postfix(loss=f"{(loss_sum / seen).item():.3f}", acc=f"{100 * (correct / seen).item():.1f}",
                                clips_s=f"{seen.item() * world_size() / dt:.1f}", refresh=False)
        bar.close()
        if is_distributed():
            totals = torch.stack([loss_sum, correct, seen]).to(self.device)
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals
        elapsed = time.perf_counter() - t0
        n = max(1.0, seen.item())
        return {"train_loss": loss_sum.item() / n, "train_acc": 100.0 * correct.item() / n,
                "clips_per_s": seen.item() / elapsed, "train_clips": int(seen.item())}

    def _forward_loss(self, model: nn.Module, clips: torch.Tensor, labels: torch.Tensor):
        """Logits and training loss. A model whose class sets `returns_aux = True` is called with
        `return_aux=True` and returns (logits, aux): every aux entry named `*_loss` is added to the loss (ILA's
        alignment loss), every `*_logits` entry adds its own cross-entropy (SIFA-Net's second res5 head)."""
        if not getattr(_unwrap(model), "returns_aux", False):
            logits = model(clips)
            return logits, self.criterion(logits.float(), labels)
        logits, aux = model(clips, return_aux=True)
        loss = self.criterion(logits.float(), labels)
        for name, value in aux.items():
            if name.endswith("_loss") and torch.is_tensor(value):
                loss = loss + value.float()
            elif name.endswith("_logits") and torch.is_tensor(value):
                loss = loss + self.criterion(value.float(), labels)
        return logits, loss

    def _optimizer_step(self) -> None:
        if self.cfg.clip_grad:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the loss-scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.global_step += 1

    def _nonfinite(self, loss: torch.Tensor) -> bool:
        """Is the loss NaN/inf on this process or, under DDP, on any (so that every rank stops together)."""
        bad = (~torch.isfinite(loss.detach())).float()
        if is_distributed():
            dist.all_reduce(bad)
        return bool(bad.item())

    def _stop_on_nonfinite(self, loss: torch.Tensor, epoch: int, i: int) -> None:
        where = (f"epoch {epoch + 1}, micro-batch {i + 1} (optimiser step {self.global_step + 1}, "
                 f"lr {self.optimizer.param_groups[0]['lr']:.3g})")
        if self.out_dir is not None and (self.out_dir / "last.pt").exists():
            kept = f"the last good checkpoint {self.out_dir / 'last.pt'} (end of epoch {self.epoch}) is kept"
        else:
            kept = "no checkpoint had been written yet"
        raise NonFiniteLossError(
            f"training loss became {loss.item()} at {where}{f' (rank {rank()})' if is_distributed() else ''}; "
            f"training stopped and {kept}. "
            f"Try a lower lr, a smaller clip_grad, more warm-up or amp='off', then resume from last.pt.")

    # ---- evaluation ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, ds: Dataset, views: str | Sequence[int] | None = None, batch_size: int | None = None,
                 progress: bool | None = None) -> dict:
        """Top-1/top-5 accuracy (%), loss, confusion matrix (rows: true class, columns: predicted) and per-class
        accuracy on `ds`. With views "CxS" each video is scored by the mean softmax over C clips x S crops.

        Only the clips that can be read are scored, each as itself (never a stand-in): `num_clips` counts them,
        `num_left_out` and `left_out` ([{"index", "path"}]) name the others."""
        num_clips, num_crops = parse_views(views or self.cfg.views)
        num_views = num_clips * num_crops
        if num_views > 1 and not hasattr(ds, "get_view"):
            warnings.warn(f"{type(ds).__name__} has no get_view(index, clip_idx, crop_idx, num_clips=, num_crops=);"
                          f" evaluating a single view instead of {num_clips}x{num_crops}", stacklevel=2)
            num_clips = num_crops = num_views = 1
        data = _MultiViewDataset(ds, num_clips, num_crops)   # (V, 3, T, H, W) per item, None when unreadable
        model = self.model
        was_training = model.training
        model.eval()
        idx_all, label_all, top5_all, nll_all, num_logits = [], [], [], [], 0
        show = (self.cfg.progress if progress is None else progress) and self.is_main
        loader = self._eval_loader(data, batch_size)
        for batch in tqdm(iter(loader), total=len(loader), desc="eval", leave=False, disable=not show):
            if batch is None:
                continue
            clips, labels, index = batch
            clips = clips.to(self.device, non_blocking=True)
            b = clips.shape[0]
            clips = clips.flatten(0, 1)                                      # (B*V, 3, T, H, W)
            with self._autocast():
                logits = model(clips).float()
            probs = logits.softmax(-1)
            num_logits = probs.shape[-1]
            probs = probs.view(b, num_views, -1).mean(1)                     # average the views' softmax
            labels_d = labels.to(self.device)
            nll = -probs.gather(1, labels_d[:, None]).squeeze(1).clamp_min(1e-12).log()
            k = min(5, probs.shape[1])
            idx_all.append(index)
            label_all.append(labels)
            top5_all.append(probs.topk(k, dim=-1).indices.cpu())
            nll_all.append(nll.cpu())
        model.train(was_training)
        report = self._summarise(ds, idx_all, label_all, top5_all, nll_all, num_logits, f"{num_clips}x{num_crops}")
        if report["num_clips"] == 0 and len(ds):
            raise no_clip_readable(len(ds), [e["path"] for e in report["left_out"]])
        if report["num_left_out"]:
            shown = ", ".join(str(e["path"]) for e in report["left_out"][:3])
            warnings.warn(f"evaluation scored {report['num_clips']} of {len(ds)} clips; {report['num_left_out']} "
                          f"could not be read and are left out: {shown}"
                          + (" ..." if report["num_left_out"] > 3 else ""), stacklevel=3)
        return report

    def _summarise(self, ds, idx_all, label_all, top5_all, nll_all, num_logits: int, views: str) -> dict:
        cat = (lambda xs, shape, dtype=torch.long: torch.cat(xs) if xs else torch.zeros(shape, dtype=dtype))
        index, labels = cat(idx_all, (0,)), cat(label_all, (0,))
        top5, nll = cat(top5_all, (0, 5)), cat(nll_all, (0,), torch.float32)
        if is_distributed():  # every rank scored its own shard; gather them (small: 5 ints + 1 float per clip)
            parts = [None] * world_size()
            dist.all_gather_object(parts, (index, labels, top5, nll))
            index, labels, top5, nll = (torch.cat([p[j] for p in parts]) for j in range(4))
            order = index.argsort()
            index, labels, top5, nll = index[order], labels[order], top5[order], nll[order]
        classes = list(getattr(ds, "classes", []) or [])
        if is_distributed():  # a rank with an empty shard saw no logits
            t = torch.tensor(num_logits, device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            num_logits = int(t.item())
        k = max(num_logits, len(classes), 1)
        preds = top5[:, 0] if len(labels) else labels
        n = len(labels)
        scored = set(index.tolist())
        paths = sample_paths(ds)
        left_out = [{"index": i, "path": paths[i]} for i in range(len(ds)) if i not in scored]
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (labels.numpy(), preds.numpy()), 1)
        totals = confusion.sum(1)
        names = classes if len(classes) == k else [str(i) for i in range(k)]
        per_class = {names[c]: (100.0 * confusion[c, c] / totals[c] if totals[c] else float("nan")) for c in range(k)}
        return {
            "top1": 100.0 * (preds == labels).float().mean().item() if n else float("nan"),
            "top5": 100.0 * (top5 == labels[:, None]).any(1).float().mean().item() if n else float("nan"),
            "loss": nll.mean().item() if n else float("nan"),
            "confusion": confusion,
            "per_class": per_class,
            "classes": names,
            "num_clips": n,
            "num_left_out": len(left_out),
            "left_out": left_out,
            "views": views,
            "labels": labels.numpy(),
            "preds": preds.numpy(),
            "index": index.numpy(),
        }

    # ---- logging -------------------------------------------------------------------------------------------
    def _log_epoch(self, row: dict) -> None:
        if not self.is_main:
            return
        val = "" if math.isnan(row["val_top1"]) else (
            f"  val loss {row['val_loss']:.3f} top1 {row['val_top1']:.1f}% top5 {row['val_top5']:.1f}%")
        skipped = ""
        if row["skipped_clips"]:
            skipped = (f"  {row['skipped_clips']} broken clip file(s) skipped ({row['skip_attempts']} draws"
                       + (f"; {len(row['stand_ins'])} other clip(s) stood in for them" if row.get("stand_ins") else "")
                       + ")")
        if row.get("val_left_out"):
            skipped += f"  val scored on {row['val_clips']} clips, {row['val_left_out']} unreadable left out"
        tqdm.write(f"epoch {row['epoch']}/{self.cfg.epochs}  train loss {row['train_loss']:.3f} "
                   f"acc {row['train_acc']:.1f}%{val}  {row['clips_per_s']:.1f} clips/s  "
                   f"lr {row['lr']:.2e}  {row['time_s']:.1f}s{skipped}")

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The full training state, made only of tensors, numbers, strings, lists and dicts."""
        from . import __version__
        model = _unwrap(self.model)
        return {
            "vidlab_version": __version__,
            "model_name": getattr(model, "vidlab_name", type(model).__name__),
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "rng": get_rng_state(),
            "sampler": {"seed": self.cfg.seed, "next_epoch": self.epoch},  # order is a function of (seed, epoch)
            "config": dataclasses.asdict(self.cfg),
            "meta": self.meta,
            "classes": list(getattr(self.train_ds, "classes", []) or []),
        }

    def save_checkpoint(self, path: str | Path) -> None:
        atomic_save(self.state_dict(), path)

    def resume(self, path: str | Path) -> int:
        """Restore model, optimiser, schedule, scaler, epoch, history and every random state from a checkpoint
        written by this Trainer, so the next `fit()` continues exactly. Returns the number of epochs done."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint to resume from not found")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e
        missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "rng") if k not in ckpt]
        if missing:
            raise CheckpointError(f"{path}: not a vidlab training checkpoint (no {', '.join(missing)})")
        # The model, the clip (frames, size) and the classes must be the run's own; say what differs.
        mine = getattr(_unwrap(self.model), "vidlab_name", type(_unwrap(self.model)).__name__)
        if isinstance(ckpt.get("model_name"), str) and ckpt["model_name"] != mine:
            raise CheckpointError(f"{path} is a checkpoint of {ckpt['model_name']}, not of {mine}; resume a run "
                                  "with its own model")
        old_meta, diffs = ckpt.get("meta") or {}, []
        for section in ("model_args", "data"):
            a, b = old_meta.get(section) or {}, self.meta.get(section) or {}
            diffs += [f"{k} {a[k]} -> {b[k]}" for k in sorted(set(a) & set(b)) if k != "root" and a[k] != b[k]]
        classes = list(getattr(self.train_ds, "classes", []) or [])
        if ckpt.get("classes") and classes and list(ckpt["classes"]) != classes:
            diffs.append(f"classes ({len(ckpt['classes'])} -> {len(classes)}, or their order)")
        if diffs:
            raise CheckpointError(f"{path}: the run was trained with other settings ({'; '.join(diffs)}); resume "
                                  "with the run's own settings, or start a new run from its weights (--pretrained)")
        old_cfg = ckpt.get("config") or {}
        changed = [f"{k} {old_cfg[k]} -> {v}" for k, v in dataclasses.asdict(self.cfg).items()
                   if k in old_cfg and old_cfg[k] != v and k in ("batch_size", "lr", "weight_decay", "warmup_epochs",
                                                                 "min_lr", "label_smoothing", "clip_grad",
                                                                 "accum_steps", "seed", "amp")]
        if changed:
            warnings.warn(f"{path}: resuming with changed settings ({'; '.join(changed)}); the run will not match "
                          "an uninterrupted one", stacklevel=2)
        from .models.official import check_and_load, strip_prefix
        check_and_load(_unwrap(self.model), strip_prefix(ckpt["model"]), strict=True, source=str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.global_step = int(ckpt["epoch"]), int(ckpt.get("global_step", 0))
        self.best_top1 = float(ckpt.get("best_top1", -1.0))
        self.history = list(ckpt.get("history", []))
        if "best_epoch" in ckpt:
            self.best_epoch = int(ckpt["best_epoch"])
        else:  # checkpoints written before best_epoch was stored: the first epoch that reached best_top1
            self.best_epoch = next((int(h["epoch"]) for h in self.history
                                    if h.get("val_top1") is not None and h["val_top1"] == self.best_top1), 0)
        set_rng_state(ckpt["rng"])
        self.resumed_from = str(path)
        return self.epoch

    @property
    def finished(self) -> bool:
        """All cfg.epochs are done (e.g. a resumed run that had already finished)."""
        return self.epoch >= self.cfg.epochs


def decode_cache(ds, root: Path, num_clips: int | None):
    """`vidlab.data.cache.cached` under `<root>/.cache`; where the dataset's folder cannot be written (read-only
    data) under the user's cache folder instead (`$VIDLAB_CACHE`, default ~/.cache/vidlab), with a warning."""
    import errno
    import hashlib

    from .data import cache as cache_mod
    try:
        return cache_mod.cached(ds, root / ".cache", num_clips=num_clips)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        reason = e.strerror
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    elsewhere = Path(os.environ.get("VIDLAB_CACHE") or Path.home() / ".cache" / "vidlab") / f"{root.name}-{tag}"
    problem = unwritable(elsewhere)
    if problem:
        raise ConfigError(f"--cache: neither {root / '.cache'} ({reason}) nor {elsewhere} ({problem}) can be "
                          "written; set VIDLAB_CACHE to a writable folder or train without --cache") from None
    warnings.warn(f"{root / '.cache'} cannot be written ({reason}); the decode cache goes to {elsewhere}",
                  stacklevel=3)
    return cache_mod.cached(ds, elsewhere, num_clips=num_clips)


# --------------------------------------------------------------------------------------------------------------
# The frame-order test
# --------------------------------------------------------------------------------------------------------------

@torch.inference_mode()
def frame_order_test(model: nn.Module, dataset: Dataset, pairs: Sequence[Sequence], device: str = "auto",
                     batch_size: int = 8, seed: int = 0, num_workers: int = 0) -> dict:
    """Does the model use the order of the frames? Scored only on clips of the time-reversed class pairs.

    Each clip is classified three times: frames in order, frames randomly permuted (a fixed permutation per clip,
    drawn from `seed`), and frames reversed. `pairs` are [class_a, class_b] (names from `dataset.classes` or
    indices). Returns percentages:
      ordered / shuffled           top-1 accuracy (all classes) on those clips;
      ordered_pairwise / shuffled_pairwise   accuracy of choosing between the two classes of the clip's pair
                                   (50 = chance: what a model that sees the frames as an unordered set gets);
      reversed_to_partner          how often the reversed clip is classified as the partner class (a model that
                                   understands time swaps the label);
      per_pair                     {"a|b": {n, ordered, shuffled, ordered_pairwise, shuffled_pairwise, ...}}.
    """
    device = resolve_device(device)
    classes = list(getattr(dataset, "classes", []) or [])
    to_idx = (lambda c: classes.index(c) if isinstance(c, str) else int(c))
    pair_idx = [(to_idx(a), to_idx(b)) for a, b in pairs]
    partner = {}
    for a, b in pair_idx:
        partner[a], partner[b] = b, a
    labels = _labels_of(dataset)
    chosen = [i for i, y in enumerate(labels) if y in partner]
    if not chosen:
        raise ConfigError("frame_order_test: no clips of the given class pairs in the dataset")
    subset = torch.utils.data.Subset(dataset, chosen)
    loader = DataLoader(subset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_clips)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval().to(device)
    rows = []  # (label, pred ordered, pred shuffled, pred reversed, pairwise ordered ok, pairwise shuffled ok)
    seen: set[int] = set()
    for batch in loader:
        if batch is None:
            continue
        clips, y, idx = batch
        # a broken clip's stand-in (another clip, maybe of a class outside the pairs) is not scored again
        keep = [j for j, (i, label) in enumerate(zip(idx.tolist(), y.tolist())) if label in partner and i not in seen]
        seen.update(int(idx[j]) for j in keep)
        if not keep:
            continue
        clips, y = clips[keep], y[keep]
        T = clips.shape[2]
        perms = torch.stack([torch.randperm(T, generator=gen) for _ in range(len(y))])   # (B, T)
        shuffled = torch.stack([c[:, p] for c, p in zip(clips, perms)])
        reversed_ = clips.flip(2)
        outs = [model(x.to(device)).float().cpu() for x in (clips, shuffled, reversed_)]
        for j, label in enumerate(y.tolist()):
            other = partner[label]
            o, s, r = (out[j] for out in outs)
            rows.append((label, int(o.argmax()), int(s.argmax()), int(r.argmax()),
                         bool(o[label] > o[other]), bool(s[label] > s[other])))
    model.train(was_training)

    def summarise(rs):
        n = len(rs)
        pct = (lambda v: 100.0 * sum(v) / n if n else float("nan"))
        return {"n": n,
                "ordered": pct([r[1] == r[0] for r in rs]),
                "shuffled": pct([r[2] == r[0] for r in rs]),
                "ordered_pairwise": pct([r[4] for r in rs]),
                "shuffled_pairwise": pct([r[5] for r in rs]),
                "reversed_to_partner": pct([r[3] == partner[r[0]] for r in rs])}

    name = (lambda c: classes[c] if classes else str(c))
    out = summarise(rows)
    out["per_pair"] = {f"{name(a)}|{name(b)}": summarise([r for r in rows if r[0] in (a, b)]) for a, b in pair_idx}
    return out
