"""Each architecture's own maps, reduced to one comparable form: a heat map over the clip (B, T, H, W).

`signature_maps(model, clip)` captures what the model records (``vidlab.viz.capture``) and reduces every kind it
knows to heat over the input frames, so that any of them can be drawn with `overlay_clip` and scored against the
ground truth with `vidlab.viz.scores`:

| kind (model)                         | reduction                                                                   |
|--------------------------------------|-----------------------------------------------------------------------------|
| ``modulator`` (Video-FocalNet)       | L2 norm over channels; last block of the first and of the last stage (§1.7) |
| ``token_attention`` (Mobile-Former)  | Mobile->Former: where the tokens look, mean over heads and tokens; last block|
| ``attention`` GP-MSA (DualFormer)    | attention *received* by the fine pooled keys, mean over heads and queries   |
| ``alignment_masks`` (ILA)            | the mask around the interactive point of the last layer (+ the points)      |
| ``offsets`` / ``motion_map`` (SIFA)  | mean neighbour-offset length, and the motion-salient map; last SIFA block    |
| ``attention`` with a class token     | attention rollout (Abnar & Zuidema 2020) read from the class token          |

Maps at a coarser time or space resolution are upsampled (trilinear) to the clip.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attribution import attention_rollout
from .capture import capture


def to_clip(heat: torch.Tensor, clip_shape) -> torch.Tensor:
    """(B, t, h, w) -> (B, T, H, W) trilinear."""
    T, H, W = clip_shape[-3:]
    return F.interpolate(heat[:, None].float(), size=(T, H, W), mode="trilinear", align_corners=False)[:, 0]


def infer_grid(n: int, clip_shape) -> tuple[int, int, int]:
    """A (t, h, w) grid with t*h*w = n, t dividing the clip's T and h:w the clip's aspect ratio (largest t first)."""
    T, H, W = clip_shape[-3:]
    for t in sorted({T // d for d in (1, 2, 4, 8, 16) if T % d == 0 and T // d >= 1}, reverse=True):
        if n % t:
            continue
        hw = n // t
        h = round(math.sqrt(hw * H / W))
        if h > 0 and hw % h == 0 and abs((hw // h) / h - W / H) < 1e-6:
            return t, h, hw // h
    raise ValueError(f"cannot lay {n} tokens on a grid for a clip of {T}x{H}x{W}")


def _module(model: nn.Module, key: str) -> nn.Module | None:
    path = key.split(":")[0].rsplit(".", 1)[0]
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


@torch.no_grad()
def signature_maps(model: nn.Module, clip: torch.Tensor) -> "OrderedDict[str, dict]":
    """{name: {"heat": (B, T, H, W), "kind": ..., "source": capture key[, "points": (B, T, 2)]}} for every signature
    map the model records. Runs one forward pass in eval mode."""
    was_training = model.training
    model.eval()
    grids: dict[int, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: grids.__setitem__(id(mod), tuple(args[0].shape)))
             for m in model.modules() if hasattr(m, "pyramid_grids")]
    try:
        with capture(model, kinds=["modulator", "token_attention", "attention", "alignment_points",
                                   "alignment_masks", "offsets", "motion_map"]) as maps:
            model(clip)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    shape = clip.shape
    out: "OrderedDict[str, dict]" = OrderedDict()
    by_kind: dict[str, list[str]] = {}
    for key in maps:
        by_kind.setdefault(key.split(":")[0].rsplit(".", 1)[-1], []).append(key)

    if "modulator" in by_kind:                     # Video-FocalNet: first and last stage, last block of each
        keys = by_kind["modulator"]
        sizes = [maps[k].shape[-2] * maps[k].shape[-1] for k in keys]
        first = max(i for i, s in enumerate(sizes) if s == max(sizes))
        last = len(keys) - 1
        for label, i in (("modulator (first stage)", first), ("modulator (last stage)", last)):
            out[label] = {"heat": to_clip(maps[keys[i]].norm(dim=1), shape), "kind": "modulator", "source": keys[i]}

    if "token_attention" in by_kind:               # Mobile-Former: the last Mobile->Former bridge
        m2f = [k for k in by_kind["token_attention"] if type(_module(model, k)).__name__ == "MobileToFormer"]
        if m2f:
            a = maps[m2f[-1]].mean((1, 2))          # (B, T*h*w)
            t, h, w = infer_grid(a.shape[-1], shape)
            out["token attention"] = {"heat": to_clip(a.view(-1, t, h, w), shape), "kind": "token_attention",
                                      "source": m2f[-1]}

    if "attention" in by_kind:
        gp = [k for k in by_kind["attention"] if hasattr(_module(model, k), "pyramid_grids")
              and getattr(_module(model, k), "fine", None) is not None]
        if gp:                                     # DualFormer: attention received by the fine pooled keys
            key = gp[-1]
            mod = _module(model, key)
            B, D, H, W, C = grids[id(mod)]
            fine = mod.pyramid_grids((D, H, W))[0]
            recv = maps[key].mean((1, 2))[:, : math.prod(fine)].reshape(-1, *fine)
            out["global attention received"] = {"heat": to_clip(recv, shape), "kind": "attention", "source": key}
        square = [k for k in by_kind["attention"] if maps[k].ndim == 4 and maps[k].shape[-1] == maps[k].shape[-2]
                  and maps[k].shape[0] == shape[0] and not hasattr(_module(model, k), "pyramid_grids")]
        if square:                                 # a ViT with a class token over all tokens: rollout
            n = maps[square[0]].shape[-1] - 1
            try:            # (a handful of learned tokens, e.g. Mobile-Former's Former, is not a token grid)
                grid = infer_grid(n, shape)
            except ValueError:
                grid = None
            if grid is not None and n >= shape[-3] and all(maps[k].shape[-1] == n + 1 for k in square):
                roll = attention_rollout([maps[k] for k in square])
                rel = roll[:, 0, 1:].reshape(-1, *grid)
                out["attention rollout"] = {"heat": to_clip(rel, shape), "kind": "attention", "source": square[-1]}

    if "alignment_masks" in by_kind:               # ILA: the last layer's mask and points
        key = by_kind["alignment_masks"][-1]
        entry = {"heat": to_clip(maps[key], shape), "kind": "alignment_masks", "source": key}
        if "alignment_points" in by_kind:
            entry["points"] = maps[by_kind["alignment_points"][-1]]
        out["alignment mask"] = entry

    if "offsets" in by_kind:                       # SIFA: the last block's offsets and motion map
        key = by_kind["offsets"][-1]
        length = maps[key].norm(dim=2).mean(1)     # (B, T', H', W')
        out["offset length"] = {"heat": to_clip(length, shape), "kind": "offsets", "source": key}
    if "motion_map" in by_kind:
        key = by_kind["motion_map"][-1]
        out["motion map"] = {"heat": to_clip(maps[key], shape), "kind": "motion_map", "source": key}
    return out


def last_5d_layer(model: nn.Module, clip: torch.Tensor) -> str | None:
    """Name of the last convolutional feature map (a Conv3d, BatchNorm3d or activation whose output is
    (B, C, t, h, w) with h, w > 1) past the stem: the Grad-CAM layer of a convolutional model. None for models
    whose late layers keep tokens (Grad-CAM needs channels-first maps; use IG or occlusion there)."""
    found: list[str] = []
    names = {id(m): n for n, m in model.named_modules()}
    kinds = (nn.Conv3d, nn.BatchNorm3d, nn.ReLU, nn.ReLU6, nn.Hardswish)   # GELU lives in token MLPs
    stem = ("patch_embed", "stem", "conv1", "bn1")

    def hook(mod, args, out):
        name = names.get(id(mod), "")
        if (isinstance(out, torch.Tensor) and out.ndim == 5 and out.shape[0] == clip.shape[0] and out.shape[1] > 3
                and out.shape[-1] > 1 and out.shape[-2] > 1 and name and not name.startswith(stem)):
            found.append(name)
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(clip)
    finally:
        for h in hs:
            h.remove()
        model.train(was_training)
    return found[-1] if found else None


def clips_with_masks(dataset, indices) -> list[tuple[torch.Tensor, int, torch.Tensor]]:
    """(clip (3, T, H, W), label, masks (T, H, W) bool) for items of an eval-mode synthetic `VideoClipDataset`:
    the ground-truth masks of the acting objects at exactly the frames the dataset samples (its single test
    view), resized like the clip (nearest)."""
    from ..data import load_ground_truth, view_indices
    out = []
    for i in indices:
        clip, label, idx = dataset[i]
        gt = load_ground_truth(dataset.root, dataset.split, Path(dataset.samples[idx].path).stem)
        frames = view_indices(len(gt["masks"]), dataset.num_frames, 1, dataset.sampling, dataset.stride)[0]
        masks = torch.as_tensor(gt["masks"][frames]).float()
        masks = F.interpolate(masks[:, None], size=clip.shape[-2:], mode="nearest")[:, 0] > 0.5
        out.append((clip, label, masks))
    return out


def pointing_game_table(models: dict, samples, ig_steps: int = 8, device="cpu", seed: int = 0):
    """Score every map kind of every model on `samples` [(clip, label, masks)] -> (summary, rows) DataFrames.

    Map kinds: each model's signature maps, its alignment points (ILA), Integrated Gradients, and 3D Grad-CAM where
    the model has a late convolutional map; beside a random map and a centre prior. Scores: pointing game (hit
    rate of the per-frame maximum on the object, 4 px tolerance) and energy inside the mask; the target class is
    the model's prediction."""
    import pandas as pd

    from . import attribution as A
    from . import scores as S
    rows, cam_layer = [], {}

    def add(model, kind, heat, masks):
        rows.append({"model": model, "map": kind, "pointing": S.pointing_game(heat, masks),
                     "energy": S.energy_in_mask(heat, masks)})

    for n, (clip, _, masks) in enumerate(samples):
        add("baseline", "random", S.random_map(tuple(masks.shape), seed=seed + n), masks)
        add("baseline", "centre prior", S.centre_prior(tuple(masks.shape)), masks)
        for name, net in models.items():
            net.eval()
            x = clip[None].to(device)
            with torch.no_grad():
                target = int(net(x).argmax())
            for kind, v in signature_maps(net, x).items():
                add(name, kind, v["heat"][0].cpu(), masks)
                if "points" in v:
                    rows.append({"model": name, "map": "alignment points", "energy": float("nan"),
                                 "pointing": S.points_in_mask(v["points"][0], masks)})
            ig = A.integrated_gradients(net, x, target, steps=ig_steps, internal_batch_size=2)
            add(name, "integrated gradients", ig[0].cpu(), masks)
            if name not in cam_layer:            # found on the first clip; every clip has the same shape
                cam_layer[name] = last_5d_layer(net, x)
            layer = cam_layer[name]
            if layer:
                add(name, "grad-cam", A.grad_cam_3d(net, x, target, net.get_submodule(layer))[0].cpu(), masks)
    detail = pd.DataFrame(rows)
    summary = detail.groupby(["model", "map"], as_index=False, sort=False)[["pointing", "energy"]].mean()
    summary["clips"] = len(samples)
    return summary, detail
