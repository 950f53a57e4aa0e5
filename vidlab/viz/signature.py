"""Each architecture's own maps, reduced to one comparable form: a heat map over the clip (B, T, H, W).

A model records its maps through ``vidlab.viz.capture``; `candidate_maps(model, clip)` turns every recorded map
into every **reading** the course considers, each a heat map over the input frames that can be drawn with
`overlay_clip` / `plots.maps_over_frames` and scored against the ground truth with `vidlab.viz.scores`:

| mechanism (model)                   | readings (each at every block that records it)                              |
|-------------------------------------|-----------------------------------------------------------------------------|
| modulator (Video-FocalNet)          | ‖m‖ over channels (FocalNet's Fig. 4), the gate of each focal level, ‖m_t‖  |
| token attention (Mobile-Former)     | Mobile->Former and Former->Mobile attention, mean over tokens and per token |
| local / global attention (DualFormer)| attention *received*: inside each LW-MSA window; by GP-MSA's fine keys; per |
|                                     | query, the largest weight it gives one key (how concentrated it attends)    |
| alignment (ILA)                     | the mask on the patch grid; the mask and the point at pixel resolution      |
| offsets, motion map (SIFA)          | mean offset length; weight of the centre neighbour; the motion-salient map  |
| attention rollout (ViT, class token)| rollout (Abnar & Zuidema 2020) read from the class token                    |

Each reading also comes inverted ("(low)": low values mark), since a map whose *dip* follows the object carries the
same information. `choose_readings(model, train_samples)` picks one reading per mechanism on **training** clips (at
least `MIN_CELLS` x `MIN_CELLS` cells per frame; the largest margin over the centre prior on both scores), and
`signature_maps(model, clip, readings)` returns those (or, with no choice made, each mechanism's plain reading at its
last block with enough cells). `pointing_game_table` scores them beside the untrained network's same maps,
Integrated Gradients, Grad-CAM, a random map and a centre prior; `cascading_randomisation` is the sanity check of
Adebayo et al. (2018); `mechanism_report` does all of it for one model (notebooks 03-07).

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


# --------------------------------------------------------------------------------------------------------------
# Readings: every way of reducing a recorded map to heat over the clip
# --------------------------------------------------------------------------------------------------------------

MIN_CELLS = 8          # a map a student can read has at least 8x8 cells per frame at the model's input
READINGS_VERSION = 2   # bump when the set of readings changes: a choice kept beside a zoo run is then made again
_KINDS = ["modulator", "modulator_temporal", "gates", "token_attention", "attention", "alignment_points",
          "alignment_masks", "offsets", "motion_map", "neighbour_weights"]
# the mechanism each kind shows, in the words of the course
MECHANISMS = ("modulator", "token attention", "local attention", "global attention", "alignment", "offsets",
              "motion map", "attention rollout")


class _Readings(OrderedDict):
    """The readings made so far; with `want` (labels), only those are drawn (upsampling every reading of every
    layer costs more than the forward pass)."""

    def __init__(self, want=None):
        super().__init__()
        self.want = None if want is None else set(want)


def _reading(out, label, heat, shape, mechanism, source, grid=None, invertible=True, **extra):
    """Add `label` (high = what the map marks) and, where the map's sign carries no convention, `label (low)`:
    the same map with low values marking, e.g. a modulator whose norm dips on the object."""
    grid = tuple(grid or heat.shape[-2:])
    for name, sign, polarity in ((label, 1, "high"), (f"{label} (low)", -1, "low"))[: 2 if invertible else 1]:
        if out.want is None or name in out.want:
            out[name] = {"heat": to_clip(sign * heat.float(), shape), "mechanism": mechanism, "source": source,
                         "grid": grid, "polarity": polarity, **extra}


def _window_received(attn: torch.Tensor, grid: tuple, window: tuple) -> torch.Tensor:
    """Local window attention (B, N, Nw) of each query over its window's keys (queries in grid raster order) ->
    attention *received* by each token from the queries of its window, (B, D, H, W)."""
    D, H, W = grid
    wd, wh, ww = window
    B = attn.shape[0]
    Dp, Hp, Wp = -(-D // wd) * wd, -(-H // wh) * wh, -(-W // ww) * ww
    a = attn.reshape(B, D, H, W, wd, wh, ww)
    a = F.pad(a, (0, 0, 0, 0, 0, 0, 0, Wp - W, 0, Hp - H, 0, Dp - D))     # whole windows of queries
    # (B, nd, wd_q, nh, wh_q, nw, ww_q, wd_k, wh_k, ww_k): sum over the queries of each window
    a = a.view(B, Dp // wd, wd, Hp // wh, wh, Wp // ww, ww, wd, wh, ww).sum((2, 4, 6))
    recv = a.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, Dp, Hp, Wp)           # key (d, h, w) inside its window
    return recv[:, :D, :H, :W]


def _grid_coords(n: int, size: int, patch: float) -> torch.Tensor:
    """Pixel centres of a frame of `size` px in the [-1, 1] coordinates of an n-cell patch grid (align_corners)."""
    return -1 + 2 * ((torch.arange(size) + 0.5) / patch - 0.5) / max(n - 1, 1)


def _token_readings(out, key, attn, mod, shape, where) -> None:
    """Mobile-Former's token attention (B, heads, M tokens, T*h*w positions) at one bridge: the mean over the tokens
    and each token, over heads, laid on the clip's (t, h, w) grid."""
    try:
        t, h, w = infer_grid(attn.shape[-1], shape)
    except ValueError:
        return
    bridge = "Mobile->Former" if type(mod).__name__ == "MobileToFormer" else "Former->Mobile"
    _reading(out, f"{bridge} attention, mean of tokens · {where}", attn.mean((1, 2)).view(-1, t, h, w), shape,
             "token attention", key)
    for m in range(attn.shape[2]):
        _reading(out, f"{bridge} attention of token {m} · {where}", attn[:, :, m].mean(1).view(-1, t, h, w),
                 shape, "token attention", key, token=m)


def _point_readings(out, key, points, n: int, shape, where) -> None:
    """ILA's interactive points (B, T, 2) on an n x n patch grid, drawn at the clip's pixel resolution: the
    alignment mask around each point (§4.3 step 5) and the point itself (highest at the point)."""
    from ..models.ila import alignment_mask_at
    H, W = shape[-2:]
    ys, xs = _grid_coords(n, H, H / n), _grid_coords(n, W, W / n)
    _reading(out, f"alignment mask at pixel resolution · {where}", alignment_mask_at(points, ys, xs), shape,
             "alignment", key, invertible=False, points=points)
    near = -((xs.view(1, 1, 1, -1) - points[..., :1, None]) ** 2 + (ys.view(1, 1, -1, 1) - points[..., 1:, None]) ** 2)
    _reading(out, f"alignment point · {where}", near, shape, "alignment", key, invertible=False, points=points)


@torch.no_grad()
def candidate_maps(model: nn.Module, clip: torch.Tensor, only=None) -> "OrderedDict[str, dict]":
    """Every reading of every map the model records, as heat over the clip: {label: {"heat": (B, T, H, W),
    "mechanism", "source" (capture key), "grid" (cells per frame the map has at this input), "polarity"}}.

    A reading is one choice of layer, head or token mean, level and sign: Video-FocalNet's modulator norm and its
    gates per focal level in every block; Mobile-Former's token attention in both directions, mean over tokens and
    per token, at every bridge; DualFormer's local attention received inside the windows and global attention
    received by the fine pooled keys, and per query the largest weight it gives one key, at every block; ILA's alignment mask on its patch grid and at pixel
    resolution from the continuous points, and the points; SIFA's offset length, motion map and neighbour
    weights at every SIFA block; attention rollout for a ViT with a class token. `choose_readings` picks one per
    mechanism on training clips; `signature_maps` returns the chosen (or default) ones. `only` (labels): draw just
    those readings, recording only the layers they come from."""
    was_training = model.training
    model.eval()
    grids: dict[int, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: grids.__setitem__(id(mod), tuple(args[0].shape)))
             for m in model.modules() if hasattr(m, "pyramid_grids") or hasattr(m, "effective_window")]
    try:
        layers = None if only is None or any(" · " not in k for k in only) else \
            [f"{k.split(' · ', 1)[1].removesuffix(' (low)')}.*" for k in only]
        with capture(model, kinds=_KINDS, include=layers) as maps:
            model(clip)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    shape = clip.shape
    out = _Readings(only)
    square = []
    for key, v in maps.items():
        kind = key.split(":")[0].rsplit(".", 1)[-1]
        where = key.split(":")[0].rsplit(".", 1)[0]
        mod = _module(model, key)
        if kind == "modulator":                    # Video-FocalNet: ||m||, Fig. 4 of the FocalNet paper
            _reading(out, f"modulator norm · {where}", v.norm(dim=1), shape, "modulator", key)
        elif kind == "modulator_temporal":
            _reading(out, f"temporal modulator norm · {where}", v.norm(dim=1), shape, "modulator", key)
        elif kind == "gates":                      # the gating weight of each focal level (+ the global level)
            for level in range(v.shape[1]):
                _reading(out, f"gate of level {level} · {where}", v[:, level], shape, "modulator", key)
        elif kind == "token_attention":            # Mobile-Former: (B, heads, M tokens, T*h*w positions)
            _token_readings(out, key, v, mod, shape, where)
        elif kind == "attention" and mod is not None and id(mod) in grids:   # DualFormer
            _, D, H, W, _ = grids[id(mod)]
            mech = "global attention" if hasattr(mod, "pyramid_grids") else "local attention"
            if hasattr(mod, "pyramid_grids"):      # GP-MSA: attention received by the fine pooled keys
                fine = mod.pyramid_grids((D, H, W))[0]
                recv = v.mean((1, 2))[:, : math.prod(fine)].reshape(-1, *fine)
                _reading(out, f"global attention received · {where}", recv, shape, mech, key)
            else:                                  # LW-MSA: attention received inside each local window
                recv = _window_received(v.mean(1), (D, H, W), mod.effective_window((D, H, W)))
                _reading(out, f"local attention received · {where}", recv, shape, mech, key)
            # the query side, on the token grid: the largest weight each query gives one key (low: it spreads)
            _reading(out, f"largest {mech} weight of each query · {where}", v.mean(1).amax(-1).reshape(-1, D, H, W),
                     shape, mech, key)
        elif kind == "attention" and v.ndim == 4 and v.shape[-1] == v.shape[-2] and v.shape[0] == shape[0] \
                and not hasattr(mod, "pyramid_grids"):
            square.append(key)
        elif kind == "alignment_masks":            # ILA: the mask on the patch grid (§4.3 step 5)
            _reading(out, f"alignment mask · {where}", v, shape, "alignment", key, invertible=False)
        elif kind == "alignment_points":           # ...and drawn at pixel resolution from the continuous points
            n = maps[key.replace("alignment_points", "alignment_masks")].shape[-1]
            _point_readings(out, key, v, n, shape, where)
        elif kind == "offsets":                    # SIFA: (B, K, 2, T, H, W) neighbour displacements
            _reading(out, f"offset length · {where}", v.norm(dim=2).mean(1), shape, "offsets", key)
        elif kind == "neighbour_weights":          # (B, K, T, H, W): the weight W_k of each neighbour
            centre = v[:, v.shape[1] // 2]
            _reading(out, f"weight of the centre neighbour · {where}", centre, shape, "offsets", key)
        elif kind == "motion_map":
            _reading(out, f"motion map · {where}", v, shape, "motion map", key)

    if square:                                     # a ViT with a class token over all tokens: rollout
        n = maps[square[0]].shape[-1] - 1
        try:        # (a handful of learned tokens, e.g. Mobile-Former's Former, is not a token grid)
            grid = infer_grid(n, shape)
        except ValueError:
            grid = None
        if grid is not None and n >= shape[-3] and all(maps[k].shape[-1] == n + 1 for k in square):
            roll = attention_rollout([maps[k] for k in square])
            _reading(out, "attention rollout", roll[:, 0, 1:].reshape(-1, *grid), shape, "attention rollout",
                     square[-1], invertible=False)
    return out


def _readable(entry: dict, min_cells: int) -> bool:
    return min(entry["grid"]) >= min_cells


def default_readings(candidates: dict, min_cells: int = MIN_CELLS) -> list[str]:
    """Before any choice on training clips: per mechanism, its plain reading (high values, mean over heads and
    tokens) at the last layer whose map has at least `min_cells` cells a side (the finest layer if none has)."""
    chosen = []
    for mech in MECHANISMS:
        plain = [k for k, v in candidates.items() if v["mechanism"] == mech and v["polarity"] == "high"
                 and "token" not in v and not k.startswith(("gate", "temporal", "weight of", "alignment point",
                                                            "largest"))]
        if not plain:
            continue
        readable = [k for k in plain if _readable(candidates[k], min_cells)]
        chosen.append(readable[-1] if readable else max(plain, key=lambda k: min(candidates[k]["grid"])))
    return chosen


def choose_readings(model: nn.Module, samples, min_cells: int = MIN_CELLS) -> dict:
    """Pick, per mechanism, the reading that lands best on the acting objects of `samples` [(clip, label, masks)],
    which must be **training** clips: the clips a map is then scored on never take part in choosing it.

    Only readings with at least `min_cells` cells a side compete. Criterion: the smaller of the two margins over the
    centre prior on these clips, pointing game / prior's pointing game and energy in mask / prior's energy, so that
    the chosen map is the one that beats the prior most clearly on *both* scores (a map can point well with its
    mass spread everywhere, or hold mass on the object without its maximum there). Returns {mechanism:
    {"reading": label, "pointing": ..., "energy": ..., "margin": ..., "polarity", "grid", "clips": n}}."""
    from . import scores as S
    sums: dict[str, list] = {}
    info: dict[str, dict] = {}
    prior = [0.0, 0.0]
    device = next(model.parameters()).device
    for clip, _, masks in samples:
        centre = S.centre_prior(tuple(masks.shape))
        prior[0] += S.pointing_game(centre, masks)
        prior[1] += S.energy_in_mask(centre, masks)
        for label, v in candidate_maps(model, clip[None].to(device)).items():
            if not _readable(v, min_cells):
                continue
            info[label] = v
            acc = sums.setdefault(label, [0.0, 0.0])
            acc[0] += S.pointing_game(v["heat"][0], masks)
            acc[1] += S.energy_in_mask(v["heat"][0], masks)
    n = max(len(samples), 1)
    best: dict[str, dict] = {}
    for label, (pg, en) in sums.items():
        mech = info[label]["mechanism"]
        margin = min(pg / max(prior[0], 1e-9), en / max(prior[1], 1e-9))
        row = {"reading": label, "pointing": pg / n, "energy": en / n, "margin": margin,
               "polarity": info[label]["polarity"], "grid": info[label]["grid"], "clips": len(samples)}
        if mech not in best or margin > best[mech]["margin"]:
            best[mech] = row
    return best


def signature_maps(model: nn.Module, clip: torch.Tensor, readings=None) -> "OrderedDict[str, dict]":
    """{label: {"heat": (B, T, H, W), "mechanism", "source" (capture key), "grid", "polarity"[, "points"]}}: the
    readings of `readings` (labels, or `choose_readings`' result), or the default reading of each mechanism the
    model records. Runs one forward pass in eval mode."""
    if readings is None:
        candidates = candidate_maps(model, clip)
        labels = default_readings(candidates)
    else:
        labels = [r["reading"] for r in readings.values()] if isinstance(readings, dict) else list(readings)
        candidates = candidate_maps(model, clip, only=labels)
    missing = [k for k in labels if k not in candidates]
    if missing:
        raise KeyError(f"{type(model).__name__} records no reading {missing}; it has {list(candidates)}")
    return OrderedDict((k, candidates[k]) for k in labels)


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
    _forward_with_hooks(model, clip, [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)])
    return found[-1] if found else None


def _forward_with_hooks(model: nn.Module, clip: torch.Tensor, handles: list) -> None:
    """One forward pass in eval mode without gradients, then the hooks `handles` removed and the mode restored."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(clip)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


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


def training_clips_with_masks(val_dataset, n: int, seed: int = 0):
    """`n` clips of the **train** split read exactly as `val_dataset` reads its clips (same frames, transform and
    sampling; the stored train split of a synthetic set has the same ground-truth sidecars): the clips a reading is
    chosen on, disjoint from the validation clips it is scored on."""
    import numpy as np

    from ..data import VideoClipDataset
    train = VideoClipDataset(val_dataset.root, "train", num_frames=val_dataset.num_frames,
                             sampling=val_dataset.sampling, transform=val_dataset.transform, on_error="skip",
                             seed=seed, train=False, stride=val_dataset.stride, classes=val_dataset.classes)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(train), size=min(n, len(train)), replace=False).tolist())
    return clips_with_masks(train, chosen)


def mechanism_report(model: nn.Module, val_dataset, mechanisms=None, untrained: nn.Module | None = None,
                     clips: int = 24, train_clips: int = 48, ig_steps: int = 4, seed: int = 0, device="cpu",
                     draw: bool = True, readings: dict | None = None) -> dict:
    """The map that carries a mechanism on a trained model, chosen, scored and drawn (notebooks 03-07):

    1. `choose_readings` on `train_clips` clips of the train split (or the choice `readings` made so before), the
       readings of `mechanisms` (default all);
    2. the pointing game and energy in mask of those readings on `clips` validation clips, beside the same readings
       of `untrained` (the same architecture built and never trained, when given), Integrated Gradients and the
       centre prior (`pointing_game_table`);
    3. one validation clip's frames with the ground-truth outline, each chosen map and IG over them.

    Returns {"readings", "table" (DataFrame), "sentences" (what the table says, one line per map), "figure"}."""
    import numpy as np

    from .plots import maps_over_frames
    if readings is None:
        readings = choose_readings(model, training_clips_with_masks(val_dataset, train_clips, seed=seed))
    if mechanisms is not None:
        keep = [mechanisms] if isinstance(mechanisms, str) else list(mechanisms)
        readings = {m: r for m, r in readings.items() if m in keep}
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(val_dataset), size=min(clips, len(val_dataset)), replace=False).tolist())
    samples = clips_with_masks(val_dataset, chosen)
    summary, _ = pointing_game_table({"model": model}, samples, ig_steps=ig_steps, device=device, seed=seed,
                                     readings={"model": readings},
                                     untrained={"model": untrained} if untrained is not None else None)
    table = summary.drop(columns=["model"])
    cp = table[table["map"] == "centre prior"].iloc[0]
    ig = table[table["map"] == "integrated gradients"].iloc[0]
    sentences = []
    for r in readings.values():
        row = table[table["map"] == r["reading"]].iloc[0]
        un = table[table["map"] == f"{r['reading']} [untrained]"]
        un = f"; untrained {un['pointing'].iloc[0]:.2f} / {un['energy'].iloc[0]:.2f}" if len(un) else ""
        beats = row["pointing"] > cp["pointing"] and row["energy"] > cp["energy"]
        sentences.append(
            f"{r['reading']} ({r['grid'][0]}x{r['grid'][1]} cells, {r['polarity']} values mark the object, chosen "
            f"on {r['clips']} training clips): pointing game {row['pointing']:.2f}, energy {row['energy']:.2f} on "
            f"{len(samples)} val clips; centre prior {cp['pointing']:.2f} / {cp['energy']:.2f}{un}; IG {ig['pointing']:.2f} / "
            f"{ig['energy']:.2f} -> {'beats' if beats else 'does not beat'} the centre prior on both scores")
    figure = None
    if draw and samples:
        clip, label, masks = samples[0]
        x = clip[None].to(device)
        with torch.no_grad():
            target = int(model.eval()(x).argmax())
        from .attribution import integrated_gradients
        rows = {k.split(" · ")[0]: v["heat"][0].cpu() for k, v in signature_maps(model, x, readings).items()}
        rows["integrated gradients"] = integrated_gradients(model, x, target, steps=ig_steps,
                                                            internal_batch_size=2)[0].cpu()
        norm = next((t for t in getattr(val_dataset.transform, "transforms", []) if hasattr(t, "mean")), None)
        stats = {"mean": norm.mean, "std": norm.std} if norm is not None else {}
        figure = maps_over_frames(clip, rows, masks, **stats,
                                  suptitle=f"val clip {chosen[0]} ({val_dataset.classes[label]}); outline: the acting "
                                           f"objects")
    return {"readings": readings, "table": table, "sentences": sentences, "figure": figure}


def pointing_game_table(models: dict, samples, ig_steps: int = 8, device="cpu", seed: int = 0,
                        readings: dict | None = None, untrained: dict | None = None):
    """Score maps of every model on `samples` [(clip, label, masks)] -> (summary, rows) DataFrames.

    Per model: its signature maps at `readings[name]` (`choose_readings`' result or labels, chosen on *training*
    clips; None: the defaults), the same readings of `untrained[name]` (the architecture freshly initialised, when
    given), Integrated Gradients, and 3D Grad-CAM where the model has a late convolutional map; beside a random
    map and a centre prior (model "baseline"). Scores: pointing game (ties scored as chance) and energy in mask;
    the target class is the model's prediction. Columns: model, map, source (own, untrained, attribution,
    baseline), mechanism, pointing, energy, clips."""
    import pandas as pd

    from . import attribution as A
    from . import scores as S
    rows, cam_layer = [], {}
    readings = readings or {}
    untrained = untrained or {}

    def add(model, kind, source, mechanism, heat, masks):
        rows.append({"model": model, "map": kind, "source": source, "mechanism": mechanism,
                     "pointing": S.pointing_game(heat, masks), "energy": S.energy_in_mask(heat, masks)})

    for n, (clip, _, masks) in enumerate(samples):
        add("baseline", "random", "baseline", "", S.random_map(tuple(masks.shape), seed=seed + n), masks)
        add("baseline", "centre prior", "baseline", "", S.centre_prior(tuple(masks.shape)), masks)
        for name, net in models.items():
            net.eval()
            x = clip[None].to(device)
            with torch.no_grad():
                target = int(net(x).argmax())
            chosen = readings.get(name)
            for kind, v in signature_maps(net, x, chosen).items():
                add(name, kind, "own", v["mechanism"], v["heat"][0].cpu(), masks)
            if name in untrained:
                fresh = untrained[name].eval().to(device)
                for kind, v in signature_maps(fresh, x, chosen).items():
                    add(name, f"{kind} [untrained]", "untrained", v["mechanism"], v["heat"][0].cpu(), masks)
            ig = A.integrated_gradients(net, x, target, steps=ig_steps, internal_batch_size=2)
            add(name, "integrated gradients", "attribution", "", ig[0].cpu(), masks)
            if name not in cam_layer:            # found on the first clip; every clip has the same shape
                cam_layer[name] = last_5d_layer(net, x)
            layer = cam_layer[name]
            if layer:
                add(name, "grad-cam", "attribution", "",
                    A.grad_cam_3d(net, x, target, net.get_submodule(layer))[0].cpu(), masks)
    detail = pd.DataFrame(rows)
    summary = detail.groupby(["model", "map", "source", "mechanism"], as_index=False, sort=False)[
        ["pointing", "energy"]].mean()
    summary["clips"] = len(samples)
    return summary, detail


def forward_order(model: nn.Module, clip: torch.Tensor) -> list[str]:
    """The model's blocks in the order the forward pass first runs them: every module that holds parameters of its
    own, grouped by its path cut after the first index (`layers.0`, `blocks.3`, `visual.transformer.resblocks.2`:
    one stage or block of the paper) or, outside numbered blocks, as itself (`patch_embed.proj`, `head`)."""
    order: list[str] = []

    def block_of(name: str) -> str:
        parts = name.split(".")
        for i, part in enumerate(parts):
            if part.isdigit():
                return ".".join(parts[: i + 1])
        return name

    owners = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    _forward_with_hooks(model, clip, [m.register_forward_pre_hook(
        lambda mod, args, b=block_of(n): order.append(b) if b not in order else None) for n, m in owners])
    return order


def block_parameters(model: nn.Module, block: str) -> list:
    """The parameters of a block named by `forward_order` (each tensor once)."""
    members = [m for n, m in model.named_modules() if n == block or n.startswith(block + ".")]
    return list({id(p): p for m in members for p in m.parameters(recurse=False)}.values())


@torch.no_grad()
def cascading_randomisation(model: nn.Module, clip: torch.Tensor, readings=None, seed: int = 0):
    """The cascading model-parameter randomisation of Adebayo et al. (2018, Sanity Checks for Saliency Maps,
    §3.1): re-initialise the model's top-level blocks one at a time from the output back to the input, cumulatively,
    and after each step measure the Spearman rank correlation of each signature map with the trained model's.

    A map that explains the model decorrelates once the randomisation reaches the layers that compute it; a map
    that stays correlated to the end shows the input, not what was learnt. Returns a DataFrame (step, randomised
    (the block re-initialised at that step), map, rank_corr). The model is copied, never changed."""
    import copy

    import pandas as pd

    from .attribution import rank_correlation, reinit_
    base = signature_maps(model, clip, readings)
    labels = list(base)
    net = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(seed)
    rows = []
    for step, block in enumerate(reversed(forward_order(net, clip)), start=1):
        reinit_(block_parameters(net, block), g)
        now = signature_maps(net, clip, labels)
        for k in labels:
            rows.append({"step": step, "randomised": block, "map": k,
                         "rank_corr": rank_correlation(base[k]["heat"], now[k]["heat"])})
    return pd.DataFrame(rows)
