"""Video transforms in plain torch (no torchvision).

A clip enters as uint8 frames (T, H, W, 3) - what `VideoReader.get_frames` returns, numpy or torch - and leaves
as a float tensor (3, T, H, W), normalised, ready for a model. Every spatial transform applies the SAME crop,
resize and flip to all frames of a clip: motion between frames is what the model must see.

    tf = build_transforms(train=True, img_size=128)
    x = tf(frames, generator=torch.Generator().manual_seed(0))     # (3, T, 128, 128)

Randomness comes from the `generator` passed in (or the transform's own, seeded by `seed`), so a seed fixes the
augmentation. Horizontal flip is OFF by default: it turns "slide left" into "slide right" and "clockwise" into
"anticlockwise", i.e. it changes the label of direction-sensitive classes (synthetic reversed pairs, and Kinetics
classes such as "pushing something from left to right" in Something-Something).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "to_float_clip", "resize_short_side", "center_crop", "three_crop",
           "random_resized_crop_params", "ToFloat", "ResizeShortSide", "RandomResizedCrop", "CenterCrop",
           "ThreeCrop", "SelectCrop", "RandomHorizontalFlip", "Normalize", "Compose", "build_transforms", "denormalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float_clip(frames) -> torch.Tensor:
    """uint8 (T, H, W, 3) numpy/torch -> float32 (T, 3, H, W) in [0, 1] (the layout interpolate wants)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """(T, 3, H, W): scale so that min(H, W) == size, keeping the aspect ratio (bilinear, antialiased)."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    return F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)


def _resize(x, size):
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def center_crop(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = x.shape[-2:]
    if th > h or tw > w:
        raise ValueError(f"crop {th}x{tw} is larger than the frames {h}x{w}; resize first")
    i, j = (h - th) // 2, (w - tw) // 2
    return x[..., i:i + th, j:j + tw]


def three_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Three size x size crops along the long side (start, centre, end), stacked first: (3, ...)."""
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop {size} is larger than the short side {min(h, w)}; resize first")
    if w >= h:
        offs = [(0, j) for j in (0, (w - size) // 2, w - size)]
    else:
        offs = [(i, 0) for i in (0, (h - size) // 2, h - size)]
    return torch.stack([x[..., i:i + size, j:j + size] for i, j in offs])


def random_resized_crop_params(h: int, w: int, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    """(top, left, height, width) of a crop with area fraction in `scale` and aspect ratio in `ratio`
    (log-uniform), as in Inception / torchvision; falls back to the largest centred crop in range."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(4, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        ar = math.exp(log_r[0] + (log_r[1] - log_r[0]) * u[1])
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            return int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1)), ch, cw
    r = w / h
    if r < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif r > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class _Transform:
    random = False

    def __call__(self, x, generator=None):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ToFloat(_Transform):
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1]."""

    def __call__(self, x, generator=None):
        return to_float_clip(x)


class ResizeShortSide(_Transform):
    def __init__(self, size: int):
        self.size = size

    def __call__(self, x, generator=None):
        return resize_short_side(x, self.size)


class RandomResizedCrop(_Transform):
    """One random crop (area fraction `scale`, aspect `ratio`) for the whole clip, resized to size x size."""
    random = True

    def __init__(self, size: int, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3)):
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ConfigError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)

    def __call__(self, x, generator=None):
        i, j, h, w = random_resized_crop_params(*x.shape[-2:], self.scale, self.ratio, generator)
        return _resize(x[..., i:i + h, j:j + w], (self.size, self.size))


class CenterCrop(_Transform):
    def __init__(self, size: int):
        self.size = size

    def __call__(self, x, generator=None):
        return center_crop(x, self.size)


class ThreeCrop(_Transform):
    """Adds a leading crop dimension: (T, 3, H, W) -> (3, T, 3, size, size)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, x, generator=None):
        return three_crop(x, self.size)


class SelectCrop(_Transform):
    """Crop `index` of `num_crops` (1: centre; 3: start, centre, end along the long side) - one test view."""

    def __init__(self, size: int, index: int = 0, num_crops: int = 1):
        if num_crops not in (1, 3) or not 0 <= index < num_crops:
            raise ConfigError(f"crop index {index} of {num_crops} crops: num_crops must be 1 or 3")
        self.size, self.index, self.num_crops = size, index, num_crops

    def __call__(self, x, generator=None):
        return center_crop(x, self.size) if self.num_crops == 1 else three_crop(x, self.size)[self.index]


class RandomHorizontalFlip(_Transform):
    """Flip all frames with probability p. Changes the label of direction-sensitive classes: off by default."""
    random = True

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x, generator=None):
        return x.flip(-1) if torch.rand(1, generator=generator).item() < self.p else x


class Normalize(_Transform):
    """(x - mean) / std per channel, then to the model layout (3, T, H, W) (or (crops, 3, T, H, W))."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x, generator=None):
        m = torch.tensor(self.mean, dtype=x.dtype).view(3, 1, 1)
        s = torch.tensor(self.std, dtype=x.dtype).view(3, 1, 1)
        x = (x - m) / s                     # (..., T, 3, H, W)
        return x.transpose(-4, -3).contiguous()  # (..., 3, T, H, W)


class Compose(_Transform):
    """Apply transforms in order, all drawing from one generator.

    `seed` gives the pipeline its own generator for calls that pass none (single-process use); datasets pass a
    generator per sample so that DataLoader workers draw different, reproducible crops."""

    def __init__(self, transforms, seed: int | None = None):
        self.transforms = list(transforms)
        self.seed = seed
        self._gen = None if seed is None else torch.Generator().manual_seed(seed)

    @property
    def random(self):
        return any(t.random for t in self.transforms)

    def __getstate__(self):  # a torch.Generator does not survive spawn pickling: workers re-seed from `seed`
        state = dict(self.__dict__)
        state["_gen"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.seed is not None:
            self._gen = torch.Generator().manual_seed(self.seed)

    def __call__(self, x, generator=None):
        g = generator if generator is not None else self._gen
        for t in self.transforms:
            x = t(x, generator=g)
        return x

    def __repr__(self):
        return "Compose(\n" + "".join(f"  {t!r},\n" for t in self.transforms) + ")"


def build_transforms(train: bool, img_size: int = 128, flip: bool = False, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3), test_crops: int = 1, seed: int | None = None) -> Compose:
    """The standard pipelines, uint8 (T, H, W, 3) -> float (3, T, img_size, img_size).

    train: random resized crop (one crop for all frames; `scale` of the area, `ratio` aspect), optional flip,
    normalise. eval: resize the short side to img_size, centre crop (test_crops=1) or three crops along the long
    side (test_crops=3, output (3, 3, T, img_size, img_size)), normalise."""
    if test_crops not in (1, 3):
        raise ConfigError(f"test_crops must be 1 or 3, got {test_crops}")
    if train:
        ts = [ToFloat(), RandomResizedCrop(img_size, scale, ratio)]
        if flip:
            ts.append(RandomHorizontalFlip())
    else:
        ts = [ToFloat(), ResizeShortSide(img_size), CenterCrop(img_size) if test_crops == 1 else ThreeCrop(img_size)]
    ts.append(Normalize(mean, std))
    return Compose(ts, seed=seed)


def denormalize(clip: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Normalised float (3, T, H, W) -> uint8 (T, H, W, 3) for display."""
    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f"expected a clip (3, T, H, W), got {tuple(clip.shape)}")
    m = torch.tensor(mean).view(3, 1, 1, 1)
    s = torch.tensor(std).view(3, 1, 1, 1)
    x = (clip.detach().cpu().float() * s + m).clamp(0, 1)
    return (x.permute(1, 2, 3, 0) * 255).round().to(torch.uint8).numpy()
