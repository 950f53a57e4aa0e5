"""Which frames of a video make a clip.

Two samplers, both returning frame indices (int64, in temporal order) into a video of `n` frames:

* **segment** (TSN, Wang et al. 2016): cut the video into `num_frames` equal segments and take one frame from each
  - at a random offset in training, at the segment centre in testing. The clip covers the whole video whatever
  its length: good for actions defined by their beginning and end (most of Kinetics, our reversed pairs).
* **dense** (I3D / SlowFast style): `num_frames` frames `stride` apart from one start - random in training, the
  centre of the video in testing. The clip covers `(num_frames - 1) * stride + 1` consecutive frames: fine motion,
  but only a window of the video.

Test-time views: `view_indices(...)` gives `num_clips` index sets spread evenly over the video (the "clips" of the
"clips x crops" protocol; crops are spatial, see transforms.three_crop).

Short videos (fewer frames than the clip needs) are padded, never rejected:
* segment: segments shorter than one frame repeat frames in order (index = floor(k * n / num_frames)), so time
  still runs forward;
* dense: `pad="repeat"` (default) holds the last frame - time never jumps backwards, which matters for
  direction-sensitive classes; `pad="loop"` wraps around to the start (what some codebases do).
`is_padded(indices)` tells whether a clip repeats a frame.

Randomness comes only from the `rng` argument (a numpy Generator or an int seed), so a seed fixes the clip.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["segment_indices", "dense_indices", "view_indices", "sample_indices", "is_padded", "as_rng"]


def as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check(n: int, num_frames: int):
    if n <= 0:
        raise ConfigError(f"the video has {n} frames; at least one is needed")
    if num_frames <= 0:
        raise ConfigError(f"num_frames must be positive, got {num_frames}")


def segment_indices(n: int, num_frames: int, train: bool = True, rng=None, offset: float | None = None) -> np.ndarray:
    """TSN segment sampling: one frame per each of `num_frames` equal segments of a video of `n` frames.

    train=True: a uniformly random frame in each segment; train=False: the centre frame of each segment
    (or, with `offset` in [0, 1), the frame at that fraction of each segment - used for test views)."""
    _check(n, num_frames)
    seg = n / num_frames
    starts = np.arange(num_frames) * seg
    if offset is not None:
        pos = starts + offset * seg
    elif train:
        pos = starts + as_rng(rng).random(num_frames) * seg
    else:
        pos = starts + seg / 2
    return np.minimum(np.floor(pos), n - 1).astype(np.int64)


def dense_indices(n: int, num_frames: int, stride: int = 2, train: bool = True, rng=None, start: int | None = None,
                  pad: str = "repeat") -> np.ndarray:
    """Dense sampling: `num_frames` frames `stride` apart, from a random (train) or centred (test) start."""
    _check(n, num_frames)
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    if pad not in ("repeat", "loop"):
        raise ConfigError(f"pad must be 'repeat' or 'loop', got {pad!r}")
    span = (num_frames - 1) * stride + 1
    room = max(n - span, 0)
    if start is None:
        start = int(as_rng(rng).integers(0, room + 1)) if train else room // 2
    idx = start + np.arange(num_frames, dtype=np.int64) * stride
    return np.minimum(idx, n - 1) if pad == "repeat" else idx % n


def view_indices(n: int, num_frames: int, num_clips: int = 1, sampling: str = "segment", stride: int = 2) -> np.ndarray:
    """(num_clips, num_frames) indices of evenly spread test clips (deterministic).

    segment: view k takes offset (k + 0.5) / num_clips inside every segment; dense: windows with starts evenly
    spaced from the first to the last possible one (one view: the centre window)."""
    if num_clips < 1:
        raise ConfigError(f"num_clips must be >= 1, got {num_clips}")
    if sampling == "segment":
        return np.stack([segment_indices(n, num_frames, offset=(k + 0.5) / num_clips) for k in range(num_clips)])
    if sampling == "dense":
        room = max(n - ((num_frames - 1) * stride + 1), 0)
        starts = [room // 2] if num_clips == 1 else np.linspace(0, room, num_clips).round().astype(int)
        return np.stack([dense_indices(n, num_frames, stride, start=int(s)) for s in starts])
    raise ConfigError(f"sampling must be 'segment' or 'dense', got {sampling!r}")


def sample_indices(n: int, num_frames: int, sampling: str = "segment", train: bool = True, rng=None,
                   stride: int = 2) -> np.ndarray:
    """Dispatch on `sampling` ("segment" or "dense")."""
    if sampling == "segment":
        return segment_indices(n, num_frames, train=train, rng=rng)
    if sampling == "dense":
        return dense_indices(n, num_frames, stride=stride, train=train, rng=rng)
    raise ConfigError(f"sampling must be 'segment' or 'dense', got {sampling!r}")


def is_padded(indices) -> bool:
    """True when a clip repeats a frame (the video was shorter than the clip asked for)."""
    idx = np.asarray(indices)
    return len(np.unique(idx)) < len(idx)
