"""Scored interpretability: does a map land on the acting objects? (needs ground-truth masks, e.g. from the
synthetic dataset's sidecar via `vidlab.data.load_ground_truth`).

- `pointing_game` (Zhang et al. 2016): per frame, a hit when the map's maximum falls on the object (within a
  tolerance of `tolerance` pixels); the score is the hit rate over frames that contain an object. Tied maxima
  score the expected hit of a random choice among them, so a flat map scores chance, not 0.
- `energy_in_mask` (Score-CAM's energy-based pointing game, Wang et al. 2020): per frame, the share of the map's
  mass (minimum subtracted) inside the mask, averaged over frames; a flat frame scores the mask's area (chance).
- `points_in_mask`: for point predictions (ILA's alignment points), the share of points inside the mask.
Baselines to compare against: `random_map` and `centre_prior` (a Gaussian at the frame centre).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _prepare(heat, masks):
    h = torch.as_tensor(heat).detach().float().cpu()
    m = torch.as_tensor(masks).detach().cpu().bool()
    if h.ndim == 2:
        h = h[None]
    if m.ndim == 2:
        m = m[None]
    if h.ndim != 3 or m.ndim != 3:
        raise ValueError(f"expected heat (T, h, w) and masks (T, H, W), got {tuple(h.shape)} and {tuple(m.shape)}")
    T, H, W = m.shape
    if h.shape[1:] != (H, W):
        h = F.interpolate(h[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    if h.shape[0] != T:
        idx = torch.linspace(0, h.shape[0] - 1, T).round().long()
        h = h[idx]
    return h, m


def _dilate(m: torch.Tensor, r: int) -> torch.Tensor:
    if r <= 0:
        return m
    k = 2 * r + 1
    return F.max_pool2d(m.float()[:, None], k, stride=1, padding=r)[:, 0] > 0


def _tied_maxima(h: torch.Tensor, rel: float = 1e-5) -> torch.Tensor:
    """The pixels of each frame of `h` (T, H, W) that share the frame's maximum (bool, same shape). Values within
    `rel` of the frame's magnitude count as tied: an upsampled constant map carries rounding noise of ~1e-7 of its
    value and must read as flat."""
    flat = h.flatten(1)
    top = flat.max(1).values
    scale = flat.abs().max(1).values.clamp_min(1e-30)
    return h >= (top - rel * scale)[:, None, None]


def pointing_game(heat, masks, tolerance: int = 4) -> float:
    """Hit rate of the per-frame maximum of `heat` (T, h, w) on `masks` (T, H, W) dilated by `tolerance` px.

    Ties are scored as chance: a frame whose maximum is shared by several pixels scores the share of those pixels
    that fall on the dilated mask (the expected hit of breaking the tie at random). A flat frame therefore scores
    the dilated mask's share of the frame, exactly what a uniformly random point scores, instead of 0 or 1
    depending on where `argmax` happens to look first. Frames without any object are skipped; returns NaN when no
    frame has one."""
    h, m = _prepare(heat, masks)
    md = _dilate(m, tolerance)
    shown = m.flatten(1).any(1)
    if not shown.any():
        return float("nan")
    top = _tied_maxima(h)
    hits = (top & md).flatten(1).sum(1).float() / top.flatten(1).sum(1).float()
    return float(hits[shown].mean())


def energy_in_mask(heat, masks) -> float:
    """Share of the map's mass inside the masks, per frame, averaged over the frames that contain an object
    (1.0 = all inside). Each frame is first shifted to start at 0 (its minimum subtracted), as Score-CAM's
    energy-based pointing game normalises a saliency map before summing it: the score then depends on where the
    map is high, not on a constant offset or on the sign convention of a map whose low values mark the object
    (score `-heat` for those). A flat frame has its mass spread evenly and scores the mask's share of the frame
    (chance)."""
    h, m = _prepare(heat, masks)
    shown = m.flatten(1).any(1)
    if not shown.any():
        return float("nan")
    flat = h.flatten(1)
    f = flat - flat.min(1, keepdim=True).values
    total = f.sum(1)
    inside = (f * m.flatten(1)).sum(1)
    area = m.flatten(1).float().mean(1)
    is_flat = total <= 1e-5 * flat.abs().max(1).values.clamp_min(1e-30) * flat.shape[1]   # uniform mass
    share = torch.where(is_flat, area, inside / total.clamp_min(1e-30))
    return float(share[shown].mean())


def points_in_mask(points, masks, tolerance: int = 4) -> float:
    """Share of points (T, 2) or (T, P, 2) in [-1, 1] (align_corners=True) that fall on the dilated masks."""
    p = torch.as_tensor(points).detach().float().cpu()
    m = _dilate(torch.as_tensor(masks).bool(), tolerance)
    T, H, W = m.shape
    if p.ndim == 2:
        p = p[:, None]
    if p.shape[0] != T:
        raise ValueError(f"expected points for {T} frames, got {tuple(p.shape)}")
    x = ((p[..., 0] + 1) / 2 * (W - 1)).round().long().clamp(0, W - 1)
    y = ((p[..., 1] + 1) / 2 * (H - 1)).round().long().clamp(0, H - 1)
    keep = m.flatten(1).any(1)
    hits = torch.stack([m[t, y[t], x[t]] for t in range(T)])[keep]
    return float(hits.float().mean()) if hits.numel() else float("nan")


def random_map(shape, seed: int = 0) -> torch.Tensor:
    """Uniform noise of `shape` (T, H, W): the chance level for both scores."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def centre_prior(shape, sigma: float = 0.25) -> torch.Tensor:
    """A Gaussian at the frame centre (std `sigma` of the frame size), repeated over T: the centre-bias baseline."""
    T, H, W = shape
    ys = torch.linspace(-0.5, 0.5, H)[:, None]
    xs = torch.linspace(-0.5, 0.5, W)[None]
    g = torch.exp(-(xs ** 2 + ys ** 2) / (2 * sigma ** 2))
    return g.expand(T, H, W).clone()
