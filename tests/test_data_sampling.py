"""Samplers (segment, dense, test views, padding of short clips) and the pure-torch video transforms."""
import numpy as np
import pytest
import torch

from vidlab.data import (IMAGENET_MEAN, build_transforms, dense_indices, denormalize, is_padded,
                         segment_indices, view_indices)
from vidlab.data.transforms import (RandomHorizontalFlip, ResizeShortSide, random_resized_crop_params,
                                    resize_short_side, three_crop)
from vidlab.errors import ConfigError


def test_segment_sampling():
    n, k = 100, 8
    centre = segment_indices(n, k, train=False)
    np.testing.assert_array_equal(centre, (np.arange(k) * 12.5 + 6.25).astype(int))
    a = segment_indices(n, k, train=True, rng=0)
    np.testing.assert_array_equal(a, segment_indices(n, k, train=True, rng=0))  # a seed fixes the clip
    assert not np.array_equal(a, segment_indices(n, k, train=True, rng=1))
    for s in range(20):  # one frame inside each segment, in order
        idx = segment_indices(n, k, rng=s)
        assert np.all(idx >= np.floor(np.arange(k) * 12.5)) and np.all(idx < np.ceil((np.arange(k) + 1) * 12.5))
    # a short video: frames repeat, in temporal order
    short = segment_indices(5, 8, train=False)
    assert short.min() >= 0 and short.max() <= 4 and np.all(np.diff(short) >= 0) and is_padded(short)
    assert set(segment_indices(5, 8, rng=3).tolist()) <= set(range(5))


def test_dense_sampling():
    idx = dense_indices(100, 8, stride=4, train=False)
    assert np.all(np.diff(idx) == 4) and idx[0] == (100 - 29) // 2
    for s in range(20):
        r = dense_indices(100, 8, stride=4, rng=s)
        assert np.all(np.diff(r) == 4) and r[0] >= 0 and r[-1] <= 99
    np.testing.assert_array_equal(dense_indices(100, 8, 4, rng=5), dense_indices(100, 8, 4, rng=5))
    # short: hold the last frame (default) or loop
    np.testing.assert_array_equal(dense_indices(10, 8, 2, train=False), [0, 2, 4, 6, 8, 9, 9, 9])
    np.testing.assert_array_equal(dense_indices(10, 8, 2, train=False, pad="loop"), [0, 2, 4, 6, 8, 0, 2, 4])
    with pytest.raises(ConfigError):
        dense_indices(10, 8, stride=0)
    with pytest.raises(ConfigError, match="frames"):
        segment_indices(0, 8)


def test_view_indices_spread():
    v = view_indices(100, 8, num_clips=3, sampling="segment")
    assert v.shape == (3, 8) and len({tuple(r) for r in v}) == 3
    np.testing.assert_array_equal(view_indices(100, 8, 1, "segment")[0], segment_indices(100, 8, train=False))
    d = view_indices(100, 8, num_clips=2, sampling="dense", stride=2)
    assert d[0, 0] == 0 and d[1, -1] == 99
    with pytest.raises(ConfigError):
        view_indices(100, 8, 2, sampling="random")


def _frames(T=4, H=60, W=80):
    g = np.random.default_rng(0)
    return g.integers(0, 256, (T, H, W, 3), dtype=np.uint8)


def test_train_transform_shapes_and_determinism():
    f = _frames()
    tf = build_transforms(True, img_size=32)
    x = tf(f, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 4, 32, 32) and x.dtype == torch.float32
    y = tf(f, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, y)
    z = tf(f, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(x, z)
    seeded = build_transforms(True, img_size=32, seed=3)
    assert torch.equal(seeded(f), build_transforms(True, img_size=32, seed=3)(f))
    assert not any(isinstance(t, RandomHorizontalFlip) for t in build_transforms(True).transforms)  # flip off
    assert any(isinstance(t, RandomHorizontalFlip) for t in build_transforms(True, flip=True).transforms)


def test_same_crop_for_every_frame():
    f = np.repeat(_frames(1), 5, axis=0)  # five identical frames stay identical after any augmentation
    for s in range(5):
        x = build_transforms(True, img_size=24, flip=True)(f, generator=torch.Generator().manual_seed(s))
        assert all(torch.equal(x[:, 0], x[:, t]) for t in range(5))


def test_eval_transform_normalises_and_crops():
    mean_colour = (np.array(IMAGENET_MEAN) * 255).round().astype(np.uint8)
    f = np.broadcast_to(mean_colour, (3, 40, 70, 3)).copy()
    x = build_transforms(False, img_size=32)(f)
    assert x.shape == (3, 3, 32, 32) and x.abs().max() < 0.02  # the mean colour normalises to ~0
    f = _frames()
    x = build_transforms(False, img_size=32)(f)
    np.testing.assert_allclose(x.mean().item(), build_transforms(False, img_size=32)(f).mean().item())
    tc = build_transforms(False, img_size=32, test_crops=3)(f)
    assert tc.shape == (3, 3, 4, 32, 32)
    torch.testing.assert_close(tc[1], x)  # the middle of the three crops is the centre crop
    back = denormalize(build_transforms(False, img_size=60)(f))
    assert back.shape == (4, 60, 60, 3) and np.abs(back.astype(int) - f[:, :, 10:70].astype(int)).max() <= 1


def test_resize_and_crop_helpers():
    x = torch.rand(2, 3, 60, 80)
    assert resize_short_side(x, 30).shape == (2, 3, 30, 40)
    assert ResizeShortSide(60)(x) is x
    assert three_crop(x, 60).shape == (3, 2, 3, 60, 60)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        i, j, h, w = random_resized_crop_params(60, 80, (0.3, 1.0), (3 / 4, 4 / 3), g)
        assert 0 <= i and 0 <= j and i + h <= 60 and j + w <= 80 and h * w >= 0.25 * 60 * 80
    with pytest.raises(ValueError, match=r"expected frames \(T, H, W, 3\)"):
        build_transforms(False)(np.zeros((3, 64, 64), np.uint8))
