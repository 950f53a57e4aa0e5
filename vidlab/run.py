"""One run of a registered recipe: the single path from a model name to trained weights and their measurements.

    from vidlab.run import run_recipe
    result = run_recipe("video_focalnet_nano", "data/synthetic", "runs/video_focalnet_nano", seed=0)
    result.model, result.history, result.metrics["top1"], result.metrics["frame_order"]

The steps, in order (each a function below):

1. the recipe's datasets (`recipe_datasets`): fresh clips rendered every epoch on a vidlab synthetic set, the stored
   train split elsewhere; the stored val split;
2. the model the recipe trains (`create_model(name, **recipe input, **overrides)`), checked against its input;
3. its frame pretraining, when the recipe has one (`vidlab.pretrain`);
4. a `TrainConfig` from the recipe (`train_config`), with the time-reversed batches of `reversal_pairs`;
5. `Trainer.fit`, writing last.pt / best.pt / metrics into the run folder;
6. the best epoch's weights, scored on the val split, and the frame-order test;
7. the metrics (`RunResult.metrics`).

`vidlab train`, `vidlab zoo` (and through it the notebooks), the solutions and `benchmarks/train_nano.py` all call
`run_recipe`: a command-line flag or a build override changes the recipe or the model, never the path. The same
recipe, data and seed give the same weights through every entry point (tests/test_run.py).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .data.synthetic import synthetic_meta
from .errors import ConfigError, DatasetError
from .models.registry import Recipe, create_model, get_recipe, model_info
from .pretrain import cached_pretraining, pretrain_model, pretraining_key
from .train import Trainer, TrainConfig, frame_order_test, no_clip_readable, sample_paths

__all__ = ["run_recipe", "RunResult", "recipe_datasets", "model_datasets", "eval_dataset", "recipe_reversal", "reversal_map", "reversed_pairs",
           "train_config", "loader_workers", "preload_views", "PreloadedViews", "time_to_target", "TARGET_TOP1"]

TARGET_TOP1 = 80.0       # the accuracy the time-to-target figure is measured against


# --------------------------------------------------------------------------------------------------------------
# 1. Data
# --------------------------------------------------------------------------------------------------------------

def recipe_datasets(rec: Recipe, data_root, *, seed: int = 0, mean=None, std=None, cache: bool = False):
    """(train, val) for a recipe: on a vidlab synthetic set with `stream_clips` > 0 the training clips are rendered
    fresh every epoch (`SyntheticStream`), otherwise the stored train split; val is always the stored val split.
    Both at the recipe's frames and size, the train split with its random resized crop (`crop_scale`).

    `cache=True` reads the stored splits through the uint8 decode cache (`vidlab.data.cache`: each clip decoded
    once, reused by later runs); a rendered stream needs none."""
    from .data import IMAGENET_MEAN, IMAGENET_STD, VideoClipDataset, build_transforms
    from .data.synthetic import SyntheticStream
    root = Path(data_root)
    mean, std = tuple(mean or IMAGENET_MEAN), tuple(std or IMAGENET_STD)
    train_tf = build_transforms(True, img_size=rec.img_size, mean=mean, std=std, scale=tuple(rec.crop_scale))
    meta = _stream_meta(root, rec.stream_clips) if rec.stream_clips else None
    if meta is not None:
        train = SyntheticStream(root, rec.stream_clips, num_frames=rec.num_frames, img_size=rec.img_size,
                                transform=train_tf, seed=seed + meta.get("seed", 0))
    else:
        train = VideoClipDataset(root, "train", num_frames=rec.num_frames, transform=train_tf, on_error="skip",
                                 seed=seed)
    if cache and meta is None:
        from .train import decode_cache
        train = decode_cache(train, root, num_clips=4)
    return train, eval_dataset(root, "val", rec.num_frames, rec.img_size, mean=mean, std=std, seed=seed, cache=cache)


def eval_dataset(data_root, split: str, num_frames: int, img_size: int, *, mean=None, std=None, seed: int = 0,
                 cache: bool = False):
    """A split read for scoring: segment sampling, the short side resized to `img_size` and the centre crop (or the
    views `Trainer.evaluate` asks for), normalised with `mean`/`std`. Every run scores its val split so."""
    from .data import IMAGENET_MEAN, IMAGENET_STD, VideoClipDataset, build_transforms
    root = Path(data_root)
    ds = VideoClipDataset(root, split, num_frames=num_frames, on_error="skip", seed=seed,
                          transform=build_transforms(False, img_size=img_size, mean=tuple(mean or IMAGENET_MEAN),
                                                     std=tuple(std or IMAGENET_STD)))
    if cache:
        from .train import decode_cache
        ds = decode_cache(ds, root, num_clips=1)
    return ds


def model_datasets(name: str, rec: Recipe, data_root, *, seed: int = 0, cache: bool = False):
    """`recipe_datasets` normalised as model `name` expects its input (its `model_info` mean and std)."""
    info = model_info(name)
    return recipe_datasets(rec, data_root, seed=seed, mean=info["mean"], std=info["std"], cache=cache)


def _stream_meta(root: Path, clips: int) -> dict | None:
    """The meta.json of the synthetic set a training stream renders from; None where there is none (other data
    trains on its stored clips). One that is there but cannot be read stops the run with why: training on the stored
    clips instead would be another run than the one asked for."""
    meta = synthetic_meta(root)
    path = root / "annotations" / "meta.json"
    if meta is None and path.is_file():
        try:
            json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: cannot be read ({type(e).__name__}: {e}), so the training stream "
                               f"(stream_clips={clips}) is unavailable: it renders clips with the generator this "
                               f"file describes. Regenerate the set (`vidlab data synth --out {root} --overwrite`) "
                               "or train on the stored clips (--stream-clips 0)") from None
    return meta


def reversed_pairs(root) -> list:
    """The time-reversed class pairs a vidlab synthetic set names in its meta.json ([] for other data)."""
    meta = synthetic_meta(Path(root))
    return [list(p) for p in meta.get("reversed_pairs", [])] if meta else []


def recipe_reversal(rec: Recipe, root, classes: list, name: str, log=print) -> tuple[list | None, int]:
    """(time_reversal, batch_size) of a recipe on `root`. With `reversal_pairs` on a vidlab synthetic set: each
    class's partner (`reversal_map`) and the recipe's batch, which the reversals double in every step. On other
    data, whose classes have no known time-reversed partners, one line says the reversals are skipped, and each step
    takes twice the recipe's batch of clips instead (the same clips per step). Without `reversal_pairs`: (None,
    the recipe's batch)."""
    if not rec.reversal_pairs:
        return None, rec.batch_size
    meta = synthetic_meta(Path(root))
    if not meta or "reversed_pairs" not in meta:
        log(f"{name}: reversal_pairs skipped: {root} is not a vidlab synthetic dataset (its meta.json names the "
            f"time-reversed pairs); batches of {2 * rec.batch_size} clips instead of {rec.batch_size} + reversals")
        return None, 2 * rec.batch_size
    return reversal_map(root, classes), rec.batch_size


def reversal_map(root: Path, classes: list) -> list:
    """For each class, the class of its clips played backwards: the partner in a time-reversed pair, itself for
    the time-symmetric classes of a vidlab synthetic set. Needs the dataset's meta.json."""
    meta = synthetic_meta(Path(root))
    if not meta or "reversed_pairs" not in meta:
        raise ConfigError(f"{root}: the recipe's reversal_pairs needs a vidlab synthetic dataset (its meta.json "
                          "names the time-reversed pairs); set reversal_pairs=False for other data")
    m = list(range(len(classes)))
    unknown = set(classes) - {c for p in meta["reversed_pairs"] for c in p} - set(meta.get("time_symmetric", []))
    if unknown:
        raise ConfigError(f"{root}: classes {sorted(unknown)} are neither in a time-reversed pair nor "
                          "time-symmetric; reversal_pairs cannot label their reversed clips")
    for a, b in meta["reversed_pairs"]:
        m[classes.index(a)], m[classes.index(b)] = classes.index(b), classes.index(a)
    return m


def loader_workers(device_type: str, stream: bool, threads: int) -> int:
    """DataLoader workers of a run. On a CPU: one for a rendered stream (it overlaps rendering with the model's
    step), none for stored clips. On a GPU a nano model steps faster than one process renders or decodes clips, so
    the run's cores (`threads`, one kept for the process that drives the GPU) go to workers, at most 8."""
    if device_type == "cuda":
        return min(8, max(1, threads - 1))
    return 1 if stream else 0


class PreloadedViews:
    """A validation set decoded once: `get_view(i, 0, 0)` (the single centre view a run scores every epoch) is read
    here, in the main process, and kept; every other view and attribute comes from the wrapped dataset. The views are
    the same tensors (the eval transform draws nothing), so the scores do not change; the run stops decoding the
    same clips once per epoch. An unreadable clip is stored as None (left out, as `Trainer.evaluate` does)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.views = [dataset.get_view(i, 0, 0, num_clips=1, num_crops=1) for i in range(len(dataset))]

    def __len__(self):
        return len(self.views)

    def __getitem__(self, index):
        return self.dataset[index]

    def get_view(self, index, clip_idx, crop_idx, num_clips=1, num_crops=1):
        if (clip_idx, crop_idx, num_clips, num_crops) == (0, 0, 1, 1):
            return self.views[index]
        return self.dataset.get_view(index, clip_idx, crop_idx, num_clips=num_clips, num_crops=num_crops)

    def __getattr__(self, name):   # classes, samples, skipped, ...; never for the two own attributes
        if name in ("dataset", "views"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def preload_views(dataset, rec: Recipe, max_bytes: float = 256e6):
    """`PreloadedViews(dataset)` when its single views fit in `max_bytes` (float32 clips at the recipe's input, e.g.
    the 96 clips of the synthetic val split at 8x64x64 take 38 MB), otherwise `dataset` itself."""
    nbytes = len(dataset) * 3 * rec.num_frames * rec.img_size ** 2 * 4
    return PreloadedViews(dataset) if hasattr(dataset, "get_view") and nbytes <= max_bytes else dataset


# --------------------------------------------------------------------------------------------------------------
# 2. The model, and whether it can take the recipe's clip
# --------------------------------------------------------------------------------------------------------------

def input_problem(model: nn.Module, frames: int, size: int) -> str:
    """'' when `model` takes a clip of frames x size x size, else its own reason (one forward pass, no gradients)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, frames, size, size))
    except (ValueError, RuntimeError, AssertionError) as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    finally:
        model.train(was_training)
    return ""


def _downsampling(name: str, model_args: dict) -> int:
    """How many pixels of a frame side one cell of the model's coarsest feature map stands for: input side / map
    side at 64 and 128 px, over the maps that double with the input (pooled or windowed tensors do not). 1 where it
    cannot be measured."""
    sides = []
    for size in (64, 128):
        try:
            model = create_model(name, **{**model_args, "img_size": size}).eval()
        except (ValueError, AssertionError):
            return 1
        seen: dict[str, tuple] = {}

        def record(out, key):
            if torch.is_tensor(out) and out.ndim in (4, 5):
                seen.setdefault(key, tuple(out.shape[-2:]))
        for key, module in model.named_modules():
            module.register_forward_hook(lambda m, i, out, key=key: record(out, key))
        with torch.no_grad():
            model(torch.zeros(1, 3, model_args["num_frames"], size, size))
        sides.append(seen)
    return max((64 // h for key, (h, w) in sides[0].items() if 0 < h and sides[1].get(key) == (2 * h, 2 * w)),
               default=1)


def check_input(name: str, model: nn.Module, model_args: dict) -> None:
    """One line, before any training, when the model cannot take the recipe's clip, or takes a crop smaller than
    one cell of its coarsest feature map (a 7-px crop runs through a 32-fold downsampling, but learns nothing)."""
    frames, size = model_args["num_frames"], model_args["img_size"]
    problem = input_problem(model, frames, size)
    if problem:
        raise ConfigError(f"--model {name} cannot take --frames {frames}, --size {size}: {problem}")
    least = _downsampling(name, model_args) if size < 64 else 1
    if size < least:
        raise ConfigError(f"--model {name} cannot take --size {size}: it shrinks each frame side {least}-fold, so a "
                          f"{size}-px crop is less than one cell of its last feature map; the smallest size it takes "
                          f"is {least}")


def build_model(name: str, model_args: dict, pretrained=None) -> nn.Module:
    """create_model at the run's input; `pretrained` weights load non-strictly (image weights into a video model),
    shape mismatches still raise. A model's refusal of the input becomes one line naming the recipe fields."""
    from .errors import VidlabError
    try:
        kw = {"pretrained": pretrained, "strict": False} if pretrained else {}
        return create_model(name, **kw, **model_args)
    except (ValueError, AssertionError) as e:
        if isinstance(e, VidlabError):
            raise
        raise ConfigError(f"--model {name} cannot take --frames {model_args.get('num_frames')}, --size "
                          f"{model_args.get('img_size')}: {e}") from None


# --------------------------------------------------------------------------------------------------------------
# 4. The recipe as a TrainConfig
# --------------------------------------------------------------------------------------------------------------

def train_config(rec: Recipe, *, batch_size: int | None = None, **run) -> TrainConfig:
    """The recipe's optimisation as a `TrainConfig`; `run` adds what belongs to this run, not to the recipe (seed,
    device, out_dir, workers, amp, time_reversal, ...)."""
    return TrainConfig(epochs=rec.epochs, batch_size=batch_size or rec.batch_size, lr=rec.lr,
                       weight_decay=rec.weight_decay, warmup_epochs=rec.warmup_epochs, min_lr=min(rec.min_lr, rec.lr),
                       label_smoothing=rec.label_smoothing, clip_grad=rec.clip_grad or None,
                       optimizer=rec.optimizer, adam_eps=rec.adam_eps, **run)


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    """What one run made: the model (with its best epoch's weights where the run kept a folder), its history, and
    the metrics (val top-1/top-5, frame-order test, times, the recipe, ...)."""
    model: nn.Module
    history: list
    metrics: dict
    best: Path | None
    trainer: Trainer


def time_to_target(history: list, target: float = TARGET_TOP1, start: float = 0.0) -> float | None:
    """Training seconds (after `start` seconds of frame pretraining) until validation top-1 first reached `target`
    (None: never)."""
    elapsed = float(start)
    for h in history:
        elapsed += float(h.get("time_s") or 0.0)
        if h.get("val_top1") is not None and not math.isnan(h["val_top1"]) and h["val_top1"] >= target:
            return round(elapsed, 1)
    return None


def _pretrain(model, name, rec, root, overrides, out, seed, device, progress, log, on_progress, resume):
    """Step 3: the recipe's frame pretraining (its report), or, when resuming, the report of the one that ran."""
    from .utils import resolve_device
    if not rec.pretrain:
        return None
    # build overrides shape the frame model too, so that its weights fit the video model they initialise
    pre_rec = rec.replace(model={**rec.model, **overrides}) if overrides else rec
    if resume is not None:          # the weights come from the checkpoint, the report from the pretraining's cache
        made = (cached_pretraining(out / "pretrain.pt", pretraining_key(name, pre_rec, root, seed))
                if out is not None else None)
        return dict(made["info"]) if made else None
    report = pretrain_model(model, name, pre_rec, root, cache=out / "pretrain.pt" if out is not None else None,
                            seed=seed, device=str(resolve_device(device)), progress=progress, log=log,
                            on_progress=on_progress)
    if report.get("shared_from"):
        log(f"{name}: frame pretraining shared with {report['shared_from']} (the same frame model, pretraining, "
            "data and seed)")
    if "skipped" not in report:
        log(f"{name}: frame pretraining ({report['steps']} steps on {report['frames']} rendered frames, "
            f"{report['time_s']:.0f} s): held-out loss {report['loss']:.4f} (mean map {report['baseline_loss']:.4f}); "
            f"{report['loaded']} tensors loaded, {report['new']} start fresh")
    return report


def run_recipe(name: str, data_root, out_dir=None, *, rec: Recipe | None = None, overrides: dict | None = None,
               seed: int = 0, device: str = "auto", amp: str = "auto", num_workers: int | None = None,
               progress: bool = True, resume=None, overwrite: bool = False, pretrained=None,
               accum_steps: int = 1, views=None, cache: bool = False, frame_order: bool = True,
               on_progress: Callable | None = None, log: Callable = print, meta: dict | None = None) -> RunResult:
    """Train `name` with its registered recipe (or `rec`) on `data_root` into `out_dir` (None: no files), then
    score the best epoch's weights on the val split and run the frame-order test.

    `overrides`: build arguments of the model (e.g. design="spatial"). `resume`: a checkpoint of this run to go on
    from (its frame pretraining is not repeated). `overwrite`: replace another run in `out_dir`. `pretrained`: weights
    to start from instead of the recipe's frame pretraining (which a run shares with another run in the same parent
    folder when `vidlab.pretrain.pretraining_key` says they are the same). The remaining arguments belong to the
    run, not to the recipe (they change no weight on one device): `amp`, `num_workers`, `accum_steps`, `views` (of
    validation), `cache`.
    """
    from .train import rank
    from .utils import seed_everything
    root = Path(data_root)
    rec = rec or get_recipe(name)
    overrides = dict(overrides or {})
    out = Path(out_dir) if out_dir is not None else None
    train_ds, val_ds = model_datasets(name, rec, root, seed=seed, cache=cache)            # 1
    val_views = preload_views(val_ds, rec)     # decoded now: a split with no readable clip stops the run here,
    if isinstance(val_views, PreloadedViews) and len(val_views) and all(v is None for v in val_views.views):
        raise no_clip_readable(len(val_ds), sample_paths(val_ds))      # before minutes of frame pretraining
    classes = list(val_ds.classes)
    model_args = {"num_classes": len(classes), "num_frames": rec.num_frames, "img_size": rec.img_size, **rec.model,
                  **overrides}
    seed_everything(seed)                                # the model's initial weights depend on the seed too
    model = build_model(name, model_args, pretrained)                                     # 2
    check_input(name, model, model_args)
    pretrain = None if pretrained else _pretrain(model, name, rec, root, overrides, out, seed, device,  # 3
                                                 progress, log, on_progress, resume)
    if num_workers is None:
        from .data.synthetic import SyntheticStream
        from .utils import resolve_device
        num_workers = loader_workers(resolve_device(device).type, isinstance(train_ds, SyntheticStream),
                                     torch.get_num_threads())
    time_reversal, batch_size = recipe_reversal(rec, root, classes, name, log=log)        # 4
    cfg = train_config(rec, batch_size=batch_size, seed=seed, device=device, progress=progress, amp=amp,
                       out_dir=str(out) if out is not None else None, num_workers=num_workers,
                       accum_steps=accum_steps, time_reversal=time_reversal, overwrite=overwrite,
                       views=views or "1x1")
    run_meta = {"model_args": model_args, "recipe": rec.to_dict(), **(meta or {}),
                "data": {"root": str(root), "num_frames": rec.num_frames, "img_size": rec.img_size,
                         "sampling": "segment", "stream_clips": rec.stream_clips}}
    trainer = Trainer(model, train_ds, val_views, cfg, meta=run_meta, on_progress=on_progress)
    if resume is not None:
        done = trainer.resume(resume)
        log(f"resumed from {resume} after epoch {done}")
        if trainer.finished:
            import sys
            print(f"nothing left to do: {resume} already finished its {done} epoch(s); ask for more with --epochs "
                  "to train on", file=sys.stderr)
    t0 = time.perf_counter()
    history = trainer.fit() if not trainer.finished else trainer.history                  # 5
    wall = time.perf_counter() - t0
    if rank() != 0:                                      # distributed: rank 0 scores and reports
        return RunResult(model, history, {}, None, trainer)
    best = out / "best.pt" if out is not None and (out / "best.pt").exists() else None
    if best is not None:                                 # 6: the best epoch's weights, as every caller serves them
        from .models.official import check_and_load, strip_prefix
        ckpt = torch.load(best, map_location="cpu", weights_only=True)
        check_and_load(model, strip_prefix(ckpt["model"]), strict=True, source=str(best))
    model.eval()
    ev = trainer.evaluate(trainer.val_ds)
    pairs = reversed_pairs(root) if frame_order else []
    fo = frame_order_test(model, val_ds, pairs, device=trainer.device, batch_size=rec.batch_size, seed=seed,
                          num_workers=num_workers) if pairs else {}
    pre_s = float((pretrain or {}).get("time_s") or 0.0)   # the frame pretraining counts as training time
    metrics = {                                                                            # 7
        "top1": ev["top1"], "top5": ev["top5"], "loss": ev["loss"], "num_clips": ev["num_clips"],
        "confusion": ev["confusion"].tolist(), "classes": ev["classes"], "per_class": ev["per_class"],
        "frame_order": {k: v for k, v in fo.items() if k != "rows"},
        "train_time_s": round(pre_s + sum(float(h.get("time_s") or 0) for h in history), 1),
        "time_to_target_s": time_to_target(history, start=pre_s), "target_top1": TARGET_TOP1,
        "pretrain": pretrain, "time_reversal": time_reversal is not None,
        "epochs": len(history), "best_epoch": trainer.best_epoch, "recipe": rec.to_dict(), "overrides": overrides,
        "params": sum(p.numel() for p in model.parameters()), "resumed": resume is not None,
        "device": str(trainer.device), "threads": torch.get_num_threads(), "wall_s": round(wall, 1),
    }
    if out is not None and fo:
        (out / "frame_order.json").write_text(json.dumps(fo, indent=1))
    return RunResult(model, history, metrics, best, trainer)
