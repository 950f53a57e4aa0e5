"""Frame pretraining: a stand-in, on the synthetic data, for the image weights the papers start from.

Every architecture of the course is meant to start from an image model: Video-FocalNet from ImageNet FocalNet
weights, ILA from CLIP, SIFA-Net from an ImageNet ResNet, DualFormer and Video Mobile-Former from ImageNet
classifiers. From scratch, a model that only ever sees motion classes must find out *what is where in a frame*
and *how it moves* at the same time, and some designs sit at chance for many epochs before they do
(docs/findings.md). Frame pretraining gives them the first half beforehand, without the class labels and
without motion:

    the same architecture, built for still clips (`num_frames` copies of one frame; `model` build overrides, e.g.
    Video-FocalNet's design="spatial", which is a 2D FocalNet) learns to map one rendered frame to the coarse
    occupancy map of its acting objects: a G x G grid, each cell the fraction of it the objects cover (binary
    cross-entropy on the G*G outputs of its classifier).

The frames come from the generator of the dataset (its classes, difficulty, distractors, camera jitter and noise;
seeds its stored splits and the training stream never use), one random frame per rendered scene. The weights then
initialise the video model: every tensor whose name and shape match, except the classifier; what only the video
model has (Video-FocalNet's temporal modulator, ILA's alignment, position embeddings over time) starts fresh, as
when the papers inflate an image model.

    from vidlab.pretrain import frame_pretrain, load_frame_weights
    state, info = frame_pretrain("video_focalnet_nano", recipe, "data/synthetic")
    load_frame_weights(model, state)            # -> {"loaded": [...], "new": [...]}

A recipe asks for it with `Recipe.pretrain` (`vidlab zoo` and `vidlab train` then pretrain first, and count the
time); `PRETRAIN_DEFAULTS` lists the fields. A run keeps its pretrained weights in `pretrain.pt`, named by
`pretraining_key`: a run whose frame model, pretraining, data and seed are those of another run in the same folder
of runs (the zoo's) takes that run's weights instead of making them again (`video_focalnet_nano` and notebook 03's
two other designs share one pretraining).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, DatasetError
from .models.registry import PRETRAIN_DEFAULTS, check_pretrain   # the recipe's pretrain fields

__all__ = ["PRETRAIN_DEFAULTS", "check_pretrain", "render_frames", "frame_pretrain", "load_frame_weights",
           "pretrain_model", "pretraining_key"]

_SEED_SLOT = 999           # rng [seed, 999, i]: the stored splits use 0 and 1 there, the stream 2 + epoch


def _generator_config(root: Path, render_size: int):
    from .data.synthetic import SynthConfig, synthetic_meta
    meta = synthetic_meta(root)
    if meta is None:
        raise DatasetError(f"{Path(root) / 'annotations' / 'meta.json'}: no vidlab synthetic dataset's meta.json; "
                           "frame pretraining renders frames with its generator (set the recipe's pretrain to {} "
                           "for other data)")
    params = {k: v for k, v in meta["params"].items() if k in {f.name for f in fields(SynthConfig)}}
    cfg = SynthConfig(**params)
    return replace(cfg, size=int(min(cfg.size, render_size))), list(meta["classes"]), int(meta.get("seed", 0))


def render_frames(root, n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` frames of the dataset's generator, one random frame of a new scene each, classes in turn.
    Returns uint8 frames (n, S, S, 3) and the union mask of the acting objects (n, S, S), S = min(size, stored)."""
    from .data.synthetic import render_clip
    cfg, classes, data_seed = _generator_config(Path(root), size)
    frames = np.empty((n, cfg.size, cfg.size, 3), np.uint8)
    masks = np.empty((n, cfg.size, cfg.size), bool)
    for i in range(n):
        rng = np.random.default_rng([data_seed + seed, _SEED_SLOT, i])
        f, gt = render_clip(classes[i % len(classes)], rng, cfg, frame_indices=[int(rng.integers(cfg.num_frames))])
        frames[i] = f[0]
        inst = np.unpackbits(gt["masks_packed"], axis=-1, count=cfg.size * cfg.size)
        masks[i] = inst.reshape(-1, cfg.size, cfg.size).any(0)
    return frames, masks


def _logits(out):
    return out["logits"] if isinstance(out, dict) else out


def _classifier_keys(name: str, outputs: int, **kw) -> set:
    """Names of the tensors whose shape follows num_classes: the model built for `outputs` and `outputs + 1`
    classes differ exactly there."""
    from .models.registry import create_model
    with torch.device("meta"):
        a = create_model(name, num_classes=outputs, **kw).state_dict()
        b = create_model(name, num_classes=outputs + 1, **kw).state_dict()
    return {k for k in a if a[k].shape != b[k].shape}


def frame_pretrain(name: str, rec, data_root, *, seed: int = 0, device: str = "cpu",
                   progress: bool = True, on_progress=None) -> tuple[dict, dict]:
    """Pretrain `name` on frames of `data_root`'s generator as `rec.pretrain` says (module docstring).
    `on_progress` gets a `vidlab.train.progress_event` before and after the frames are rendered, and when the
    steps start, every 1 % of them and at the end.

    Returns the state dict without the classifier, and {"loss", "baseline_loss", "time_s", "steps", ...}:
    `loss` is the held-out binary cross-entropy, `baseline_loss` that of predicting the mean map everywhere."""
    from tqdm.auto import tqdm

    from .data import build_transforms
    from .models.registry import create_model, model_info
    from .train import param_groups, progress_event
    report = on_progress or (lambda event: None)
    p = check_pretrain(dict(rec.pretrain))
    t0 = time.perf_counter()
    G, T = p["grid"], p["num_frames"]
    report(progress_event("rendering frames", 0, p["frames"], "frames", 0.0, 0))
    frames, masks = render_frames(data_root, p["frames"], size=max(64, 2 * rec.img_size), seed=seed)
    report(progress_event("rendering frames", p["frames"], p["frames"], "frames", time.perf_counter() - t0,
                          p["frames"]))
    info = model_info(name)
    tf = build_transforms(False, img_size=rec.img_size, mean=info["mean"], std=info["std"])
    x = torch.stack([tf(f[None]) for f in frames])                                   # (n, 3, 1, s, s)
    m = torch.from_numpy(masks).float().unsqueeze(1)                                 # (n, 1, S, S)
    if m.shape[-1] % G:
        raise ConfigError(f"pretrain grid {G} must divide the rendered frame side {m.shape[-1]}")
    y = F.avg_pool2d(m, m.shape[-1] // G).flatten(1)                                 # (n, G*G) occupancy
    n_val = max(1, len(x) // 20)
    x_val, y_val, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]

    torch.manual_seed(seed)
    model = create_model(name, num_classes=G * G, num_frames=T, img_size=rec.img_size,
                         **{**rec.model, **p["model"]}).to(device)
    opt = torch.optim.AdamW(param_groups(model, rec.weight_decay), lr=p["lr"], eps=rec.adam_eps)   # as the Trainer
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p["lr"], total_steps=p["steps"], pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    bar = tqdm(range(p["steps"]), desc=f"{name}: frame pretraining", leave=False, disable=not progress,
               dynamic_ncols=True)
    model.train()
    t_steps, every = time.perf_counter(), max(1, p["steps"] // 100)
    for step in bar:
        if step % every == 0:
            report(progress_event("frame pretraining", step, p["steps"], "steps", time.perf_counter() - t_steps, step))
        idx = torch.randint(0, len(x), (p["batch_size"],), generator=g)
        clips = x[idx].expand(-1, -1, T, -1, -1).to(device)
        loss = F.binary_cross_entropy_with_logits(_logits(model(clips)).float(), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    bar.close()
    report(progress_event("frame pretraining", p["steps"], p["steps"], "steps", time.perf_counter() - t_steps,
                          p["steps"]))
    model.eval()
    with torch.no_grad():
        out = torch.cat([_logits(model(x_val[i:i + 64].expand(-1, -1, T, -1, -1).to(device))).float().cpu()
                         for i in range(0, len(x_val), 64)])
    mean_map = y.mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4).expand_as(y_val)
    heads = _classifier_keys(name, G * G, num_frames=T, img_size=rec.img_size, **{**rec.model, **p["model"]})
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if k not in heads}
    report = {"loss": round(F.binary_cross_entropy_with_logits(out, y_val).item(), 4),
              "baseline_loss": round(F.binary_cross_entropy(mean_map, y_val).item(), 4),
              "time_s": round(time.perf_counter() - t0, 1), "steps": p["steps"], "frames": p["frames"],
              "held_out": n_val, "grid": G}
    return state, report


def load_frame_weights(model: nn.Module, state: dict) -> dict:
    """Copy every tensor of `state` whose name and shape match into `model`; the rest of the model keeps its
    initialisation. Returns {"loaded": names, "new": names of the model's tensors that were not in `state`}."""
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise ConfigError("the frame-pretrained weights share no tensor (name and shape) with this model")
    model.load_state_dict(take, strict=False)
    return {"loaded": sorted(take), "new": sorted(set(own) - set(take))}


def pretraining_key(name: str, rec, data_root, seed: int = 0) -> str:
    """What decides the weights `frame_pretrain(name, rec, data_root, seed=seed)` makes, as a short hash: the frame
    model as built (its printed structure and its initial tensors under `seed`), its input normalisation, the
    pretraining's fields, the recipe fields it uses (crop side, weight decay, AdamW's epsilon), the dataset's
    meta.json and the seed. Two runs with the same key get the same weights."""
    from .data.synthetic import synthetic_meta
    from .models.registry import create_model, model_info
    p = check_pretrain(dict(rec.pretrain))
    with torch.random.fork_rng(devices=[]):      # the caller's random state stays as it was
        torch.manual_seed(seed)                   # as frame_pretrain builds it
        frame = create_model(name, num_classes=p["grid"] ** 2, num_frames=p["num_frames"], img_size=rec.img_size,
                             **{**rec.model, **p["model"]})
    h = hashlib.sha256()
    info = model_info(name)
    h.update(json.dumps({"structure": repr(frame), "mean": list(info["mean"]), "std": list(info["std"]), "pretrain": p,
                         "img_size": rec.img_size, "weight_decay": rec.weight_decay, "adam_eps": rec.adam_eps,
                         "data": synthetic_meta(Path(data_root)), "seed": seed}, sort_keys=True, default=str).encode())
    for k, v in frame.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def pretrain_model(model: nn.Module, name: str, rec, data_root, *, cache: Path | None = None, seed: int = 0,
                   device: str = "cpu", progress: bool = True, log=print, on_progress=None) -> dict:
    """Apply `rec.pretrain` to `model` (what `vidlab zoo` and `vidlab train` do before the first epoch).

    On data that is not a vidlab synthetic set there is no generator to render frames with: one line says so and
    the model keeps its initialisation. With `cache` (a file in a run folder) the weights are reused from it, or
    from the `pretrain.pt` of another run beside it with the same `pretraining_key` (copied into `cache`), or made
    and saved there. Returns the report of `frame_pretrain` plus the numbers of tensors loaded / new (and
    `shared_from`, the run whose pretraining was reused), or {"skipped": why}."""
    from .data.synthetic import synthetic_meta
    from .train import atomic_save
    root = Path(data_root)
    if synthetic_meta(root) is None:
        log(f"{name}: frame pretraining skipped: {root} is not a vidlab synthetic dataset (the recipe's "
            "pretraining renders frames with its generator)")
        return {"skipped": "not a vidlab synthetic dataset"}
    key = pretraining_key(name, rec, root, seed)
    made = cached_pretraining(cache, key) if cache is not None else None
    kept = made is not None                     # this run's own file holds it
    if made is None and cache is not None:      # a run beside this one made it
        for other in sorted(Path(cache).parent.parent.glob(f"*/{Path(cache).name}")):
            if other.parent != Path(cache).parent and (made := cached_pretraining(other, key)) is not None:
                made = {**made, "info": {**made["info"], "shared_from": other.parent.name}}
                break
    if made is None:
        state, info = frame_pretrain(name, rec, root, seed=seed, device=device, progress=progress,
                                     on_progress=on_progress)
        made = {"fingerprint": key, "state": state, "info": info}
    if cache is not None and not kept:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        atomic_save(made, cache)
    loaded = load_frame_weights(model, made["state"])
    return {**made["info"], "loaded": len(loaded["loaded"]), "new": len(loaded["new"])}


def cached_pretraining(path: Path | None, key: str) -> dict | None:
    """{"fingerprint", "state", "info"} saved by `pretrain_model` for `key`, or None (absent, unreadable, other key)."""
    try:
        made = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:   # absent or unreadable: made again
        return None
    return made if isinstance(made, dict) and made.get("fingerprint") == key else None
