"""A procedural video dataset that cannot be solved without time.

`make_synthetic(out_dir)` writes real H.264 mp4 clips in the Kinetics layout (see DESIGN.md):

    <root>/train/<class>/<clip>.mp4            <root>/val/<class>/<clip>.mp4
    <root>/annotations/train.csv, val.csv      (label,youtube_id,time_start,time_end,split)
    <root>/annotations/train_list.txt, ...     (mmaction list: "<relative path> <label index>")
    <root>/annotations/meta.json               (classes, reversed_pairs, generation parameters, seed)
    <root>/classes.txt                         (label order)
    <root>/ground_truth/<split>/<clip>.npz     (per-frame boxes and bit-packed masks of the acting objects)

Why it needs temporal reasoning. Eight of the twelve classes come in **time-reversed pairs**: a `slide_left`
clip played backwards *is* a `slide_right` clip. The generator makes this exact: a clip of the second class of a
pair is rendered from a scene of the first class with its time axis flipped (objects, background motion, camera
jitter, distractors - everything). So every single frame, and the unordered set of frames, has exactly the same
distribution in both classes of a pair: a model that looks at one frame, or averages frames without order, is at
chance (50 %) within each pair. The other four classes are time-symmetric (`bounce`, `pulse`, `blink`,
`shake`): a reversed clip stays in its class, which makes the reversal test clean.

It is not trivially solvable either: random shapes, colours, sizes, speeds and start positions, distractor
objects that drift and spin, a textured background that scrolls, camera jitter and pixel noise, all scaled by
`difficulty` in [0, 1].

Determinism: each clip draws from its own generator seeded by (seed, split, class, index), so the same seed gives
byte-identical annotations, ground truth and rendered frames, whatever the number of worker processes. The mp4
bytes are not guaranteed: libx264 (through PyAV) occasionally encodes the same frames to slightly different bits
between runs even single-threaded, so decoded frames of two generations agree only within the codec noise (a few
grey levels).
"""
from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing as mp
import os
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from .io import write_video

__all__ = ["CLASSES", "REVERSED_PAIRS", "TIME_SYMMETRIC", "PRESETS", "SynthConfig", "synthetic_config",
           "make_synthetic", "render_clip", "load_ground_truth", "SPLITS", "SyntheticStream", "synthetic_meta"]

# Each pair (a, b): a clip of b is a clip of a played backwards.
REVERSED_PAIRS = [("slide_right", "slide_left"), ("rotate_cw", "rotate_ccw"), ("grow", "shrink"),
                  ("approach", "separate")]
# Classes whose reversal stays in the class (their generator reverses time with probability 1/2).
TIME_SYMMETRIC = ["bounce", "pulse", "blink", "shake"]
CLASSES = [c for pair in REVERSED_PAIRS for c in pair] + TIME_SYMMETRIC
SPLITS = ("train", "val")
GT_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    num_classes: int = 12          # the first n of CLASSES (pairs first, so any even n >= 8 keeps whole pairs)
    clips_per_class: dict = field(default_factory=lambda: {"train": 24, "val": 8})
    num_frames: int = 32           # frames per clip
    size: int = 128                # frames are size x size (even)
    fps: int = 25
    difficulty: float = 0.5        # 0: one object on a flat background ... 1: distractors, texture, jitter, noise
    crf: int = 18                  # x264 quality; 18 keeps the objects' edges crisp at 64-224 px
    preset: str = "default"

    def total_clips(self) -> int:
        return self.num_classes * sum(self.clips_per_class.values())


PRESETS = {
    # laptop CPU: ~400 clips of 32 x 128 x 128, about half a minute on 2 cores
    "default": SynthConfig(),
    # tests and SMOKE notebooks: a few seconds. 64 px (decord2 3.4 cannot decode 96-px-wide H.264)
    "smoke": SynthConfig(clips_per_class={"train": 4, "val": 2}, num_frames=16, size=64, preset="smoke"),
    # GPU runs: Kinetics-400's per-class minimum of 250 train clips and its 50 val clips, at 224 px and 64 frames
    "kinetics-like": SynthConfig(clips_per_class={"train": 250, "val": 50}, num_frames=64, size=224,
                                 preset="kinetics-like"),
}


def synthetic_config(preset: str = "default", *, num_classes=None, clips_per_class=None, num_frames=None,
                     size=None, difficulty=None, fps=None) -> SynthConfig:
    """The configuration `make_synthetic` would use (a dry run), with overrides validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    if isinstance(clips_per_class, int):
        ratio = cfg.clips_per_class["val"] / cfg.clips_per_class["train"]
        clips_per_class = {"train": clips_per_class, "val": max(1, round(clips_per_class * ratio))}
    over = {k: v for k, v in dict(num_classes=num_classes, clips_per_class=clips_per_class, num_frames=num_frames,
                                  size=size, difficulty=difficulty, fps=fps).items() if v is not None}
    cfg = replace(cfg, **over)
    if not 2 <= cfg.num_classes <= len(CLASSES):
        raise ConfigError(f"num_classes must be in [2, {len(CLASSES)}], got {cfg.num_classes}")
    if cfg.size % 2 or cfg.size < 32:
        raise ConfigError(f"size must be even and >= 32, got {cfg.size}")
    if cfg.num_frames < 4:
        raise ConfigError(f"num_frames must be >= 4, got {cfg.num_frames}")
    if not 0.0 <= cfg.difficulty <= 1.0:
        raise ConfigError(f"difficulty must be in [0, 1], got {cfg.difficulty}")
    if set(cfg.clips_per_class) != set(SPLITS) or min(cfg.clips_per_class.values()) < 1:
        raise ConfigError(f"clips_per_class needs a positive count for each of {SPLITS}, got {cfg.clips_per_class}")
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# Shapes: polygons in unit coordinates (x right, y down, radius about 1). Rotation classes use only the shapes
# without rotational symmetry below 180 degrees, so that clockwise and anticlockwise are well defined.

def _regular(n, phase=0.0):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    return np.stack([np.cos(a), np.sin(a)], 1)


SHAPES = {
    "triangle": np.array([[0, -1], [0.65, 0.8], [-0.65, 0.8]]),
    "arrow": np.array([[0, -1], [0.75, -0.15], [0.28, -0.15], [0.28, 0.95], [-0.28, 0.95], [-0.28, -0.15],
                       [-0.75, -0.15]]),
    "ell": np.array([[-0.75, -0.95], [-0.2, -0.95], [-0.2, 0.4], [0.75, 0.4], [0.75, 0.95], [-0.75, 0.95]]),
    "tee": np.array([[-0.9, -0.9], [0.9, -0.9], [0.9, -0.4], [0.28, -0.4], [0.28, 0.95], [-0.28, 0.95],
                     [-0.28, -0.4], [-0.9, -0.4]]),
    "bar": np.array([[-1, -0.42], [1, -0.42], [1, 0.42], [-1, 0.42]]),
    "square": np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]),
    "disc": _regular(28),
    "star": np.stack([np.r_[1.0, 0.45] [i % 2] * np.array([np.cos(a), np.sin(a)])
                      for i, a in enumerate(np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2)]),
}
ORIENTED = ["triangle", "arrow", "ell", "tee", "bar"]
ALL_SHAPES = list(SHAPES)


def _polygons_inside(polys, h, w):
    """Even-odd rule rasterisation of polygons (pixel centres) within their bounding boxes in an h x w frame: for
    each polygon `(y0, y1, x0, x1, inside)` with `inside` a bool (y1 - y0, x1 - x0) array, or None when its box is
    empty.

    A pixel is inside when an odd number of edges cross its row to the right of it. Each edge's crossing depends
    only on the row, so it is computed once per (row, edge); the pixels left of a crossing are counted with exact
    comparisons (`searchsorted`), and a cumulative count along the row gives every pixel's parity. Every polygon of
    a clip goes through the same few array operations at once: its (row, edge) pairs, crossings and counts are
    slices of shared arrays, so the cost no longer grows with the number of polygons drawn."""
    out = [None] * len(polys)
    if not polys:
        return out
    lo = np.stack([v.min(0) for v in polys])                                 # (P, 2) float64 corners
    hi = np.stack([v.max(0) for v in polys])
    x0 = np.maximum(np.floor(lo[:, 0]), 0).astype(np.int64)
    y0 = np.maximum(np.floor(lo[:, 1]), 0).astype(np.int64)
    x1 = np.minimum(np.ceil(hi[:, 0]) + 1, w).astype(np.int64)
    y1 = np.minimum(np.ceil(hi[:, 1]) + 1, h).astype(np.int64)
    keep = np.flatnonzero((x0 < x1) & (y0 < y1))
    if len(keep) == 0:
        return out
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    verts = [np.asarray(polys[i], np.float64) for i in keep.tolist()]
    n_edges = np.array([len(v) for v in verts])
    rows, cols = y1 - y0, x1 - x0
    # edge e of a polygon runs from its vertex e-1 to e
    b = np.concatenate(verts)
    a = np.concatenate([np.concatenate((v[-1:], v[:-1])) for v in verts])
    # every (row, edge) pair of every polygon: polygon p has rows[p] x n_edges[p] of them, row-major
    pairs = rows * n_edges
    poly_of = np.repeat(np.arange(len(keep)), pairs)
    q = np.arange(pairs.sum()) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    r, e = q // n_edges[poly_of], q % n_edges[poly_of]
    e += (np.cumsum(n_edges) - n_edges)[poly_of]
    ys = (y0[poly_of] + r) + 0.5                                            # the row's pixel centre, exact
    ya, yb = a[e, 1], b[e, 1]
    cross = (ya > ys) != (yb > ys)                                          # never a flat edge
    poly_of, r, e, ys, ya, yb = poly_of[cross], r[cross], e[cross], ys[cross], ya[cross], yb[cross]
    xa, xb = a[e, 0], b[e, 0]
    xint = xa + (ys - ya) * (xb - xa) / (yb - ya)                           # where the edge crosses the row
    # crossing (r, e) lies right of the first k pixel centres of its row within the box (k = #{j: x0 + j + 0.5 <
    # xint}): counted over the whole frame row, then shifted to the box; pixel j counts the crossings with k > j
    k = np.clip(np.searchsorted(np.arange(w) + 0.5, xint) - x0[poly_of], 0, cols[poly_of])
    width = int(cols.max()) + 1
    row_of = (np.cumsum(rows) - rows)[poly_of] + r                          # the pair's row in a table of all rows
    count = np.bincount(row_of * width + k, minlength=int(rows.sum()) * width).reshape(-1, width)
    right = np.cumsum(count[:, ::-1], axis=1)[:, ::-1]                     # right[row, j] = #crossings with k >= j
    odd = (right[:, 1:] & 1).astype(bool)                                   # k > j: odd means inside
    start = 0
    for p, i in enumerate(keep.tolist()):
        n = int(rows[p])
        out[i] = int(y0[p]), int(y1[p]), int(x0[p]), int(x1[p]), odd[start:start + n, :int(cols[p])]
        start += n
    return out


def _hsv_colour(rng, sat=(0.6, 1.0), val=(0.75, 1.0)):
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255


# ---------------------------------------------------------------------------------------------------------------
# Scenes: every quantity is a per-frame array over t in [0, 1], positions in units of the frame side.

def _actor(rng, t, shapes, r):
    n = len(t)
    return {"shape": shapes[rng.integers(len(shapes))], "colour": _hsv_colour(rng), "r": r,
            "x": np.full(n, 0.5), "y": np.full(n, 0.5), "angle": np.full(n, rng.uniform(0, 2 * np.pi)),
            "scale": np.ones(n), "visible": np.ones(n, bool)}


def _place(rng, r, extent=0.0, margin=0.03):
    """A start coordinate so that [p - r, p + extent + r] stays inside the frame."""
    lo, hi = r + margin, 1 - r - margin - extent
    return rng.uniform(lo, max(lo, hi))


def _actors_for(name, rng, t, d):
    """The acting objects of one clip of class `name` in forward time. d: difficulty."""
    m = 1 - 0.4 * d  # harder: smaller motions
    drift = lambda: rng.uniform(-0.04, 0.04) * t  # noqa: E731  slow drift of otherwise static objects
    if name in ("slide_right", "slide_left", "bounce"):
        a = _actor(rng, t, ALL_SHAPES, rng.uniform(0.08, 0.16))
        if name == "bounce":
            phi = rng.uniform(0, 2 * np.pi)
            amp = rng.uniform(0.22, 0.4) * m
            u = np.array([np.cos(phi), np.sin(phi)])
            p0 = np.array([_place(rng, a["r"]), _place(rng, a["r"])])
            p0 = np.clip(p0, a["r"] + 0.03 + amp * np.maximum(-u, 0), 1 - a["r"] - 0.03 - amp * np.maximum(u, 0))
            s = np.sin(np.pi * t)
            a["x"], a["y"] = p0[0] + amp * u[0] * s, p0[1] + amp * u[1] * s
        else:
            dist = rng.uniform(0.3, 0.55) * m
            a["x"] = _place(rng, a["r"], dist) + dist * t
            a["y"] = _place(rng, a["r"], 0.05) + drift()
        return [a]
    if name in ("rotate_cw", "rotate_ccw"):
        a = _actor(rng, t, ORIENTED, rng.uniform(0.14, 0.24))
        total = np.deg2rad(rng.uniform(120, 300)) * m
        a["angle"] = a["angle"] + total * t  # +angle in image coordinates (y down) turns clockwise on screen
        a["x"], a["y"] = _place(rng, a["r"], 0.05) + drift(), _place(rng, a["r"], 0.05) + drift()
        return [a]
    if name in ("grow", "shrink", "pulse"):
        a = _actor(rng, t, ALL_SHAPES, rng.uniform(0.16, 0.26))
        k = rng.uniform(2.0, 3.5) * m + (1 - m)
        if name == "pulse":
            a["scale"] = 1 / k + (1 - 1 / k) * np.sin(np.pi * t)
        else:
            a["scale"] = 1 / k + (1 - 1 / k) * t
        a["x"], a["y"] = _place(rng, a["r"], 0.05) + drift(), _place(rng, a["r"], 0.05) + drift()
        return [a]
    if name in ("approach", "separate"):
        r = rng.uniform(0.07, 0.12)
        a, b = _actor(rng, t, ALL_SHAPES, r), _actor(rng, t, ALL_SHAPES, r * rng.uniform(0.8, 1.2))
        phi = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(phi), np.sin(phi)])
        # longest separation along u that keeps both objects inside the frame from the centre
        reach = min((0.5 - 1.15 * r - 0.03) / max(abs(u[0]), 1e-6), (0.5 - 1.15 * r - 0.03) / max(abs(u[1]), 1e-6))
        d_far = 2 * min(reach, 0.4) * rng.uniform(0.8, 1.0)
        d_near = 2.3 * r + rng.uniform(0.0, 0.05) + (d_far - 2.3 * r) * (1 - m) * 0.5
        half = (d_far + (d_near - d_far) * t) / 2  # object distance / 2, from far to near
        c = 0.5 + rng.uniform(-0.04, 0.04, 2)
        a["x"], a["y"] = c[0] - half * u[0], c[1] - half * u[1]
        b["x"], b["y"] = c[0] + half * u[0], c[1] + half * u[1]
        return [a, b]
    if name == "blink":
        a = _actor(rng, t, ALL_SHAPES, rng.uniform(0.1, 0.18))
        cycles = rng.uniform(1.5, 3.0)
        vis = np.cos(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi)) > -0.1
        vis[0] = vis[0] or not vis.any()
        a["visible"] = vis
        a["x"], a["y"] = _place(rng, a["r"], 0.05) + drift(), _place(rng, a["r"], 0.05) + drift()
        return [a]
    if name == "shake":
        a = _actor(rng, t, ALL_SHAPES, rng.uniform(0.1, 0.18))
        phi = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.03, 0.06) * m
        w = np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t + rng.uniform(0, 2 * np.pi)) * amp
        a["x"] = _place(rng, a["r"] + amp) + w * np.cos(phi)
        a["y"] = _place(rng, a["r"] + amp) + w * np.sin(phi)
        return [a]
    raise ConfigError(f"unknown synthetic class {name!r}")


def _distractors(rng, t, d, actor_r):
    n = int(rng.integers(0, 1 + round(3 * d)))
    out = []
    for _ in range(n):
        a = _actor(rng, t, ALL_SHAPES, actor_r * rng.uniform(0.35, 0.45 + 0.45 * d))
        a["colour"] = _hsv_colour(rng, sat=(0.2, 0.2 + 0.6 * d), val=(0.4, 0.5 + 0.4 * d))
        phi, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.35)
        a["x"] = rng.uniform(0.05, 0.95) + speed * np.cos(phi) * (t - 0.5)
        a["y"] = rng.uniform(0.05, 0.95) + speed * np.sin(phi) * (t - 0.5)
        a["angle"] = a["angle"] + rng.choice([-1, 1]) * rng.uniform(0, np.deg2rad(90)) * d * t
        out.append(a)
    return out


def _background(rng, t, d, size):
    """Per-frame texture parameters: a base colour plus oriented gratings that scroll together."""
    base = rng.uniform(40, 130) * np.ones(3) + rng.uniform(-20, 20, 3)
    waves = []
    contrast = 8 + 45 * d
    for _ in range(3 + int(rng.integers(0, 3))):
        th = rng.uniform(0, np.pi)
        waves.append((np.cos(th), np.sin(th), rng.uniform(1.0, 3.0 + 5.0 * d), rng.uniform(0, 2 * np.pi),
                      rng.uniform(0.3, 1.0) * contrast * rng.uniform(-1, 1, 3)))
    phi, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.25 * d)
    ox, oy = speed * np.cos(phi) * t, speed * np.sin(phi) * t
    # camera jitter: a smoothed random walk, a few pixels at difficulty 1
    j = np.cumsum(rng.normal(0, 1, (len(t), 2)), 0)
    j = j - j.mean(0)
    j = j / (np.abs(j).max() + 1e-9) * (3.0 * d * size / 128) / size
    return {"base": base, "waves": waves, "ox": ox + j[:, 0], "oy": oy + j[:, 1], "jitter": j}


def _index_frames(scene, idx):
    """The scene at frames `idx` (an index array into its T frames): every per-frame array of the objects, the
    background and the camera is indexed; per-clip values (shapes, colours, the noise seed) are kept."""
    T = scene["T"]

    def take(v):
        return v[idx].copy() if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == T else v
    out = {"T": len(idx)}
    for k, v in scene.items():
        if k == "T":
            continue
        if isinstance(v, list):
            out[k] = [{kk: take(vv) for kk, vv in o.items()} for o in v]
        elif isinstance(v, dict):
            out[k] = {kk: take(vv) for kk, vv in v.items()}
        else:
            out[k] = v
    return out


def _reverse(scene):
    """The scene played backwards."""
    return _index_frames(scene, np.arange(scene["T"])[::-1])


def _scene(name, rng, cfg: SynthConfig):
    T, d = cfg.num_frames, cfg.difficulty
    partner = {b: a for a, b in REVERSED_PAIRS}
    base_name = partner.get(name, name)
    t = np.linspace(0.0, 1.0, T)
    actors = _actors_for(base_name, rng, t, d)
    scene = {"T": T, "actors": actors, "distractors": _distractors(rng, t, d, actors[0]["r"]),
             "background": _background(rng, t, d, cfg.size), "noise_seed": int(rng.integers(2**31))}
    reverse = name in partner or (name in TIME_SYMMETRIC and rng.random() < 0.5)
    return (_reverse(scene) if reverse else scene), reverse


def render_clip(name: str, rng: np.random.Generator, cfg: SynthConfig, frame_indices=None,
                ground_truth: bool = True):
    """Frames uint8 (T, S, S, 3) and ground truth of one clip of class `name`.

    `frame_indices` (optional, within [0, cfg.num_frames)) rasterises only those frames of the clip's scene: the
    result equals `render_clip(...)` indexed at them (the scene is drawn in full, only the drawing is skipped), so a
    training stream can draw a sampled clip at a quarter of the cost. `ground_truth=False` returns `(frames, None)`
    and skips the masks and boxes (the same frames, bit for bit, for a stream that only needs the label)."""
    scene, reversed_ = _scene(name, rng, cfg)
    T, S, d = cfg.num_frames, cfg.size, cfg.difficulty
    if frame_indices is not None:
        frame_indices = np.asarray(frame_indices, dtype=int)
        if frame_indices.ndim != 1 or len(frame_indices) == 0 or frame_indices.min() < 0 or frame_indices.max() >= T:
            raise ConfigError(f"frame_indices must be a non-empty list within [0, {T}), got {frame_indices.tolist()}")
        scene = _index_frames(scene, frame_indices)
    source = np.arange(T) if frame_indices is None else frame_indices  # frame i of the output is frame source[i]
    T = len(source)
    u = (np.arange(S) + 0.5) / S  # pixel centres in frame units
    bg = scene["background"]
    jit = bg["jitter"]
    noise_rng = np.random.default_rng(scene["noise_seed"])
    pad = S // 4
    noise = noise_rng.standard_normal((S + pad, S + pad, 3), dtype=np.float32)
    noise *= np.float32(6 * d)
    # one noise window per frame of the whole clip, drawn in order, so a subset of frames gets the same windows
    windows = noise_rng.integers(0, pad + 1, (cfg.num_frames, 2)).tolist() if d > 0 else []
    amps = np.stack([w[4] for w in bg["waves"]]).astype(np.float32)  # (waves, 3)
    cx, cy, f, ph = (np.array([w[k] for w in bg["waves"]], np.float64)[:, None] for k in range(4))  # (waves, 1)
    two_pi_f = 2 * np.pi * f
    base = bg["base"].astype(np.float32)
    frames = np.empty((T, S, S, 3), np.uint8)
    n_act = len(scene["actors"])
    masks = np.zeros((n_act, T, S, S) if ground_truth else (n_act, 0, 0, 0), bool)
    dboxes = np.zeros((T, len(scene["distractors"]), 4), np.float32)

    def poly(o, i):
        s = o["r"] * o["scale"][i] * S
        c, sn = np.cos(o["angle"][i]), np.sin(o["angle"][i])
        v = SHAPES[o["shape"]] @ np.array([[c, sn], [-sn, c]]) * s
        return v + np.array([(o["x"][i] + jit[i, 0]) * S, (o["y"][i] + jit[i, 1]) * S])

    # Background gratings: sin(a + b) = sin a cos b + cos a sin b, so each grating is two outer products of 1-D
    # waves, a along x and b along y (the phases of every frame at once; the per-pixel work in buffers reused frame
    # after frame)
    a = two_pi_f * (u - bg["ox"][:, None, None]) * cx          # (T, waves, S) phase along x
    b = two_pi_f * (u - bg["oy"][:, None, None]) * cy + ph     # (T, waves, S) phase along y
    sin_a, cos_a, sin_b, cos_b = np.sin(a), np.cos(a), np.sin(b), np.cos(b)
    g64, g64_b = np.empty((2, len(amps), S, S))                 # (waves, y, x)
    g = np.empty((len(amps), S * S), np.float32)
    base_row = np.tile(base, S)                                # one image row of the base colour, (S * 3,)
    img = np.empty((S, S, 3), np.float32)
    # the outline of every object in every frame (the distractors, then the visible actors), rasterised together
    drawn = [(i, False, k, o) for i in range(T) for k, o in enumerate(scene["distractors"])]
    drawn += [(i, True, k, o) for i in range(T) for k, o in enumerate(scene["actors"]) if o["visible"][i]]
    shapes = [[] for _ in range(T)]          # per frame, in drawing order
    for (i, actor, k, o), box in zip(drawn, _polygons_inside([poly(o, i) for i, _, k, o in drawn], S, S)):
        shapes[i].append((actor, k, o, box))
    for i in range(T):
        np.multiply(cos_b[i][:, :, None], sin_a[i][:, None, :], out=g64)
        np.multiply(sin_b[i][:, :, None], cos_a[i][:, None, :], out=g64_b)
        g64 += g64_b
        g[:] = g64.reshape(len(g), -1)
        np.matmul(g.T, amps, out=img.reshape(S * S, 3))        # each grating has its own colour
        img.reshape(S, S * 3)[:] += base_row
        for actor, k, o, box in shapes[i]:
            if box is None:  # off the frame: nothing drawn, an empty box
                continue
            y0, y1, x0, x1, inside = box
            img[y0:y1, x0:x1][inside] = o["colour"]
            if ground_truth and not actor:
                dboxes[i, k] = _box(inside) + np.array([x0, y0, x0, y0], np.float32) if inside.any() else 0
            elif ground_truth:
                m = np.zeros((S, S), bool)
                m[y0:y1, x0:x1] = inside
                masks[:, i][:, m] = False  # a later actor occludes an earlier one
                masks[k, i] = m
        if d > 0:  # sensor noise: a random window of a noise bank drawn once per clip (cheaper than per frame)
            oy, ox = windows[source[i]]
            img += noise[oy:oy + S, ox:ox + S]
        frames[i] = np.clip(img, 0, 255, out=img)
    if not ground_truth:
        return frames, None
    return frames, _clip_ground_truth(scene, jit, masks, dboxes, reversed_, S)


def _clip_ground_truth(scene: dict, jit: np.ndarray, masks: np.ndarray, dboxes: np.ndarray, reversed_: bool,
                       S: int) -> dict:
    """The sidecar of a rendered clip: the actors' boxes, visibility, packed masks (n, T, S, S), centres, angles and
    scales, the distractors' boxes, the camera jitter, and what identifies the scene."""
    n_act, T = masks.shape[:2]
    boxes = np.zeros((T, n_act, 4), np.float32)
    centres = np.zeros((T, n_act, 2), np.float32)
    for k, o in enumerate(scene["actors"]):
        centres[:, k, 0] = (o["x"] + jit[:, 0]) * S
        centres[:, k, 1] = (o["y"] + jit[:, 1]) * S
        for i in range(T):
            boxes[i, k] = _box(masks[k, i])
    gt = {
        "boxes": boxes,                                            # (T, n, 4) xyxy pixels, 0 when not visible
        "visible": masks.any(axis=(2, 3)).T.copy(),                # (T, n)
        "masks_packed": np.packbits(masks.reshape(n_act, T, -1), axis=-1),  # (n, T, S*S/8)
        "centres": centres,                                        # (T, n, 2) xy pixels
        "angles": np.stack([o["angle"] for o in scene["actors"]], 1).astype(np.float32),   # (T, n) radians
        "scales": np.stack([o["r"] * o["scale"] * S for o in scene["actors"]], 1).astype(np.float32),
        "distractor_boxes": dboxes,                                # (T, m, 4)
        "camera": (jit * S).astype(np.float32),                    # (T, 2) jitter in pixels
        "reversed": np.array(reversed_),
        "shapes": np.array([o["shape"] for o in scene["actors"]]),
        "frame_size": np.array([S, S]),
        "version": np.array(GT_VERSION),
    }
    return gt


def _box(m):
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return np.zeros(4, np.float32)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Files

def _save_npz_deterministic(path: Path, arrays: dict):
    """Like np.savez_compressed, but with fixed zip timestamps so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k in sorted(arrays):
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(arrays[k]), allow_pickle=False)
            info = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, b.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def load_ground_truth(root, split: str, clip_id: str) -> dict:
    """Per-frame ground truth of one synthetic clip.

    Returns a dict with `boxes` (T, n, 4) float32 xyxy pixels of the n acting objects (zeros where not visible),
    `visible` (T, n) bool, `masks` (T, H, W) bool (union of the acting objects), `instance_masks` (n, T, H, W)
    bool, `centres` (T, n, 2) xy pixels, `angles` (T, n) radians, `scales` (T, n) pixels, `distractor_boxes`
    (T, m, 4), `camera` (T, 2) jitter in pixels, `reversed` (bool: rendered from the partner class's scene
    played backwards), `label` and `class_name` (from meta.json) and `shapes`.
    """
    root = Path(root)
    path = root / "ground_truth" / split / f"{Path(clip_id).stem}.npz"
    if not path.exists():
        raise DatasetError(f"{path}: no ground truth for clip {clip_id!r} in split {split!r} "
                           f"(is {root} a vidlab synthetic dataset?)")
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    n, T = d["masks_packed"].shape[:2]
    H, W = (int(v) for v in d.pop("frame_size"))
    inst = np.unpackbits(d.pop("masks_packed"), axis=-1, count=H * W).reshape(n, T, H, W).astype(bool)
    d["instance_masks"] = inst
    d["masks"] = inst.any(0)
    d["reversed"] = bool(d["reversed"])
    d["shapes"] = [str(s) for s in d["shapes"]]
    d["class_name"] = str(d.pop("class_name"))
    d["label"] = int(d.pop("label"))
    d.pop("version", None)
    return d


def _job(args):
    root, split, ci, name, idx, seed, cfg_dict = args
    cfg = SynthConfig(**cfg_dict)
    rng = np.random.default_rng([seed, SPLITS.index(split), ci, idx])
    frames, gt = render_clip(name, rng, cfg)
    clip_id = f"{name}_{split}_{idx:04d}"
    write_video(Path(root) / split / name / f"{clip_id}.mp4", frames, fps=cfg.fps, crf=cfg.crf)
    gt["label"], gt["class_name"] = np.array(ci), np.array(name)
    _save_npz_deterministic(Path(root) / "ground_truth" / split / f"{clip_id}.npz", gt)
    return split, ci, idx, clip_id


def synthetic_meta(root) -> dict | None:
    """The annotations/meta.json that `make_synthetic` writes under `root`, or None where `root` is not a vidlab
    synthetic dataset (no such file, unreadable, or another dataset's)."""
    try:
        meta = json.loads((Path(root) / "annotations" / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("name") == "vidlab-synthetic" else None


def _meta(cfg: SynthConfig, seed: int) -> dict:
    classes = CLASSES[:cfg.num_classes]
    return {
        "name": "vidlab-synthetic", "version": GT_VERSION, "seed": seed, "classes": classes,
        "reversed_pairs": [list(p) for p in REVERSED_PAIRS if p[0] in classes and p[1] in classes],
        "time_symmetric": [c for c in TIME_SYMMETRIC if c in classes],
        "params": {**asdict(cfg)},
        "splits": {s: cfg.clips_per_class[s] * cfg.num_classes for s in SPLITS},
        "ground_truth": "ground_truth/<split>/<clip>.npz; read with vidlab.data.load_ground_truth",
    }


MARKER = ".vidlab-synthetic"   # written first by make_synthetic: this folder's generated files are ours


def _is_ours(root: Path) -> bool:
    """Did make_synthetic write into `root`? Its marker (an interrupted or finished generation) or the
    meta.json of a finished one (datasets generated before the marker existed) proves it; classes.txt does not."""
    if (root / MARKER).is_file():
        return True
    try:
        return json.loads((root / "annotations" / "meta.json").read_text()).get("name") == "vidlab-synthetic"
    except (OSError, ValueError, AttributeError):
        return False


def _generated_files(root: Path) -> list[Path]:
    """The files under `root` that make_synthetic writes (by name pattern): only these are removed on overwrite."""
    import re
    names = "|".join(re.escape(c) for c in CLASSES)
    splits = "|".join(SPLITS)
    patterns = [re.compile(rf"^({splits})/({names})/({names})_({splits})_\d{{4}}\.mp4$"),
                re.compile(rf"^ground_truth/({splits})/({names})_({splits})_\d{{4}}\.npz$"),
                re.compile(rf"^annotations/(({splits})\.csv|({splits})_list\.txt|meta\.json)$"),
                re.compile(rf"^(classes\.txt|{re.escape(MARKER)})$")]
    out = []
    for f in root.rglob("*"):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and not f.is_symlink() and any(pt.match(rel) for pt in patterns):
            out.append(f)
    return out


def make_synthetic(out_dir="data/synthetic", *, preset: str = "default", num_classes=None, clips_per_class=None,
                   num_frames=None, size=None, difficulty=None, fps=None, seed: int = 0, workers: int | None = None,
                   overwrite: bool = False, progress: bool = False) -> Path:
    """Generate the synthetic temporal dataset under `out_dir` and return its root.

    Args:
        preset: "default" (12 classes x (24 train + 8 val), 32 frames, 128 px), "smoke" (12 x (4 + 2), 16 frames,
            64 px) or "kinetics-like" (12 x (250 + 50), 64 frames, 224 px). The keyword arguments override it;
            `clips_per_class` is an int (train count; val keeps the preset's ratio) or {"train": n, "val": m}.
        difficulty: 0..1 (default 0.5): distractors, background texture and motion, camera jitter, noise, and
            smaller motions as it grows.
        workers: processes for rendering/encoding (default: all CPUs for more than 64 clips, else 1).
        overwrite: regenerate even if `out_dir` already holds a dataset with the same parameters (such a dataset
            is otherwise reused as is). Only a folder this generator wrote (its `.vidlab-synthetic` marker or its
            meta.json) is overwritten, and only the files it writes are removed: anything else stays.
    """
    cfg = synthetic_config(preset, num_classes=num_classes, clips_per_class=clips_per_class, num_frames=num_frames,
                           size=size, difficulty=difficulty, fps=fps)
    root = Path(out_dir)
    meta = _meta(cfg, seed)
    meta_path = root / "annotations" / "meta.json"
    if meta_path.exists() and not overwrite:
        old = json.loads(meta_path.read_text())
        if old.get("params") == meta["params"] and old.get("seed") == seed and old.get("version") == GT_VERSION:
            return root
        raise DatasetError(f"{root} already holds a synthetic dataset with other parameters "
                           f"({old.get('params')}, seed {old.get('seed')}); regenerate it with --overwrite "
                           "(make_synthetic(..., overwrite=True)) or choose another --out")
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file, not a folder; choose a folder for the dataset")
    if root.exists() and any(root.iterdir()):
        if not _is_ours(root):
            raise DatasetError(f"{root} is not empty and not a finished vidlab synthetic dataset: nothing shows it was "
                               f"written by vidlab's generator (no {MARKER} marker, no meta.json of ours), so "
                               "nothing was changed. Choose an empty or new folder")
        if not overwrite and not meta_path.exists():
            raise DatasetError(f"{root} holds an interrupted generation; regenerate it with --overwrite "
                               "(make_synthetic(..., overwrite=True))")
        for f in _generated_files(root):   # ours only: the user's own files in the folder are left alone
            f.unlink()
        for d in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if d.relative_to(root).parts[0] in SPLITS + ("annotations", "ground_truth") and not any(d.iterdir()):
                d.rmdir()
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps({"name": "vidlab-synthetic", "note": "written by "
                                           "vidlab.data.make_synthetic; overwrite removes only its own files"}) + "\n")
    classes = meta["classes"]
    (root / "classes.txt").write_text("".join(c + "\n" for c in classes))
    jobs = [(str(root), split, ci, name, i, seed, asdict(cfg))
            for split in SPLITS for ci, name in enumerate(classes) for i in range(cfg.clips_per_class[split])]
    if workers is None:
        workers = (os.cpu_count() or 1) if len(jobs) > 64 else 1
    workers = max(1, min(workers, len(jobs)))
    t0 = time.perf_counter()
    if workers == 1:
        results = [_job(j) for j in _progress(jobs, progress)]
    else:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            results = list(_progress(pool.imap(_job, jobs, chunksize=4), progress, total=len(jobs)))
    duration = math.ceil(cfg.num_frames / cfg.fps)
    ann = root / "annotations"
    ann.mkdir(exist_ok=True)
    for split in SPLITS:
        rows = sorted((r for r in results if r[0] == split), key=lambda r: (r[1], r[2]))
        with open(ann / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for _, ci, _, cid in rows:
                w.writerow([classes[ci], cid, 0, duration, split])
        with open(ann / f"{split}_list.txt", "w") as f:
            for _, ci, _, cid in rows:
                f.write(f"{split}/{classes[ci]}/{cid}.mp4 {ci}\n")
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")  # written last: marks completion
    if progress:
        print(f"wrote {len(jobs)} clips to {root} in {time.perf_counter() - t0:.1f}s with {workers} process(es)")
    return root


def _progress(it, on, total=None):
    if not on:
        return it
    from tqdm.auto import tqdm
    return tqdm(it, total=total, desc="synthetic clips")


# ---------------------------------------------------------------------------------------------------------------
# A training stream: fresh clips every epoch

class SyntheticStream:
    """Training clips rendered on the fly from the generator of a vidlab synthetic dataset: no clip is seen twice.

    `root` is a folder written by `make_synthetic` (its meta.json gives the classes, clip length, frame size,
    difficulty and seed), so the stream draws from exactly the distribution of the stored splits — same classes,
    same difficulty, same renderer — from seeds the stored splits never use (`[seed, 2 + epoch, class, index]`; the
    stored splits use 0 and 1 there). Each epoch holds `clips_per_epoch` clips, classes balanced, and only the frames
    the sampler picks are drawn (`render_clip(frame_indices=...)`), at `render_size` (default twice the crop side,
    at most the stored side). The frames are uint8 like decoded video and go
    through `transform` (default: vidlab's training transform at `img_size`); items are `(clip, label, index)` as
    `VideoClipDataset` returns them, so the Trainer and DataLoader workers use it unchanged.

    A decoded clip went through H.264 (crf 18) and a rendered one did not: the difference is codec noise of a few
    grey levels, below the generator's own sensor noise at the default difficulty.
    """

    def __init__(self, root, clips_per_epoch: int, num_frames: int = 8, img_size: int = 64, transform=None,
                 sampling: str = "segment", seed: int | None = None, crop_scale=(0.4, 1.0),
                 render_size: int | None = None):
        root = Path(root)
        meta_path = root / "annotations" / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise DatasetError(f"{meta_path}: not a vidlab synthetic dataset ({e}); the stream needs the meta.json "
                               "that `vidlab data synth` writes") from None
        if meta.get("name") != "vidlab-synthetic":
            raise DatasetError(f"{meta_path}: not a vidlab synthetic dataset (name {meta.get('name')!r})")
        if clips_per_epoch < 1:
            raise ConfigError(f"clips_per_epoch must be >= 1, got {clips_per_epoch}")
        params = {k: v for k, v in meta["params"].items() if k in {f.name for f in fields(SynthConfig)}}
        self.cfg = SynthConfig(**params)
        # Drawing at twice the crop side (not the stored side) keeps the crop antialiased like a decoded, resized
        # frame and costs a fraction: the scene is in frame units, so only the raster changes.
        size = render_size or min(self.cfg.size, max(64, 2 * int(img_size)))
        if size % 2 or size < 32:
            raise ConfigError(f"render_size must be even and >= 32, got {size}")
        self.cfg = replace(self.cfg, size=int(size))
        self.root, self.classes = root, list(meta["classes"])
        self.clips_per_epoch, self.num_frames, self.sampling = int(clips_per_epoch), int(num_frames), sampling
        self.seed = int(meta.get("seed", 0) if seed is None else seed)
        self.epoch = 0
        if transform is None:
            from .transforms import build_transforms
            transform = build_transforms(True, img_size=img_size, scale=tuple(crop_scale))
        self.transform = transform

    def __len__(self):
        return self.clips_per_epoch

    @property
    def labels(self) -> list[int]:
        return [i % len(self.classes) for i in range(self.clips_per_epoch)]

    def set_epoch(self, epoch: int):
        """New clips for each epoch (the Trainer calls it before DataLoader workers copy the dataset)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int):
        import torch

        from .sampling import sample_indices
        if not 0 <= index < self.clips_per_epoch:
            raise IndexError(f"index {index} out of range for a stream of {self.clips_per_epoch} clips")
        label = index % len(self.classes)
        rng = np.random.default_rng([self.seed, 2 + self.epoch, label, index // len(self.classes)])
        frame_idx = sample_indices(self.cfg.num_frames, self.num_frames, self.sampling, train=True, rng=rng)
        frames, _ = render_clip(self.classes[label], rng, self.cfg, frame_indices=frame_idx, ground_truth=False)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return self.transform(frames, generator=g), label, index
