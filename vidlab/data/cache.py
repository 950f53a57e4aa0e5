"""Decode once, train many epochs: a uint8 memmap of fixed clips.

Decoding H.264 costs more CPU than a small model's forward pass; on a GPU the loader, not the model, sets the pace.
`build_cache(dataset, out_dir)` decodes every clip of a `VideoClipDataset` once - `num_clips` fixed views of
`num_frames` frames each, chosen by the dataset's deterministic test-view sampling, resized (short side) and
centre-cropped to `size` - into one file:

    <out_dir>/clips.npy       uint8 .npy memmap (N, num_clips, T, size, size, 3)
    <out_dir>/cache.json      shape, sampling (method, frames, stride, views), source root/split, classes,
                              per-clip label, path and whether it decoded, the clips that failed

`CachedClipDataset(out_dir, transform)` reads it back and returns the same `(clip, label, index)` tuples as
`VideoClipDataset`, applying the transform per item (so random crops still vary). In training it draws one of the
stored views at random per item and epoch (`num_clips > 1` keeps some temporal augmentation); in eval it uses
view 0 (or all views with `all_views=True`). What is lost against decoding on the fly: temporal jitter beyond the
stored views, and resolution above `size`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError, VideoReadError
from .io import VideoReader
from .sampling import view_indices
from .transforms import center_crop, resize_short_side, to_float_clip

__all__ = ["build_cache", "CachedClipDataset", "cached", "CACHE_VERSION"]

CACHE_VERSION = 1


class _DecodeJob(torch.utils.data.Dataset):
    def __init__(self, samples, num_frames, num_clips, sampling, stride, size, backend):
        self.samples, self.num_frames, self.num_clips = samples, num_frames, num_clips
        self.sampling, self.stride, self.size, self.backend = sampling, stride, size, backend

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        out = np.zeros((self.num_clips, self.num_frames, self.size, self.size, 3), np.uint8)
        try:
            r = VideoReader(self.samples[i].path, backend=self.backend)
            views = view_indices(len(r), self.num_frames, self.num_clips, self.sampling, self.stride)
            frames = r.get_frames(views.reshape(-1))
        except VideoReadError as e:
            return i, out, str(e)
        x = center_crop(resize_short_side(to_float_clip(frames), self.size), self.size)  # (V*T, 3, s, s)
        x = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        out[:] = x.reshape(self.num_clips, self.num_frames, self.size, self.size, 3).numpy()
        return i, out, ""


def build_cache(dataset, out_dir, size: int = 128, num_clips: int = 1, workers: int = 0,
                progress: bool = False) -> Path:
    """Decode `dataset` (a VideoClipDataset) into `out_dir`; returns out_dir. See the module docstring.

    A clip that cannot be decoded is recorded as failed (kept out of CachedClipDataset, listed in cache.json)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n, T = len(dataset), dataset.num_frames
    shape = (n, num_clips, T, size, size, 3)
    mm = np.lib.format.open_memmap(out / "clips.npy", mode="w+", dtype=np.uint8, shape=shape)
    job = _DecodeJob(dataset.samples, T, num_clips, dataset.sampling, dataset.stride, size, dataset.backend)
    loader = torch.utils.data.DataLoader(job, batch_size=None, num_workers=workers)
    ok = np.zeros(n, bool)
    failed = []
    it = loader
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(iter(loader), total=n, desc="caching clips")  # an iterator: tqdm.auto would start the loader twice
    for i, arr, err in it:
        i = int(i)
        if err:
            failed.append({"index": i, "path": dataset.samples[i].path, "error": err})
            continue
        mm[i] = np.asarray(arr)
        ok[i] = True
    mm.flush()
    del mm
    meta = {
        "version": CACHE_VERSION, "file": "clips.npy", "shape": list(shape), "dtype": "uint8",
        "layout": "(clip, view, frame, height, width, rgb)",
        "sampling": {"method": dataset.sampling, "num_frames": T, "stride": dataset.stride, "num_clips": num_clips,
                     "views": "vidlab.data.sampling.view_indices (deterministic, evenly spread)"},
        "resize": {"short_side": size, "crop": "centre", "size": size},
        "source": {"root": str(dataset.root), "split": dataset.split},
        "classes": list(dataset.classes),
        "samples": [{"path": s.path, "label": s.label, "ok": bool(o)} for s, o in zip(dataset.samples, ok)],
        "failed": failed,
    }
    (out / "cache.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


class CachedClipDataset(torch.utils.data.Dataset):
    """Clips from a cache built by `build_cache`: item i -> `(clip, label, index)` like VideoClipDataset.

    `index` refers to the cache's readable clips (failed ones are left out; `num_skipped` counts them)."""

    def __init__(self, cache_dir, transform=None, train: bool = False, seed: int = 0, all_views: bool = False):
        self.dir = Path(cache_dir)
        meta_path = self.dir / "cache.json"
        if not meta_path.exists():
            raise DatasetError(f"{self.dir}: no cache.json; build the cache with vidlab.data.build_cache")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("version") != CACHE_VERSION:
            raise DatasetError(f"{meta_path}: cache version {self.meta.get('version')}, expected {CACHE_VERSION}; "
                               "rebuild it")
        self.classes = self.meta["classes"]
        self._rows = [i for i, s in enumerate(self.meta["samples"]) if s["ok"]]
        self.samples = [self.meta["samples"][i] for i in self._rows]
        self.skipped = self.meta["failed"]
        self.num_skipped = len(self.skipped)
        self.num_frames = self.meta["sampling"]["num_frames"]
        self.num_views = self.meta["sampling"]["num_clips"]
        self.transform, self.train, self.seed, self.all_views = transform, train, seed, all_views
        self.epoch = 0
        self._mm = None

    def __len__(self):
        return len(self._rows)

    @property
    def labels(self):
        return [s["label"] for s in self.samples]

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _clips(self):
        if self._mm is None:  # opened lazily, once per process (DataLoader workers included)
            self._mm = np.load(self.dir / self.meta["file"], mmap_mode="r")
        return self._mm

    def __getitem__(self, index: int):
        ss = np.random.SeedSequence([self.seed, self.epoch, index])
        rng = np.random.default_rng(ss)
        g = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
        views = self._clips()[self._rows[index]]
        if self.all_views:
            sel = list(range(self.num_views))
        else:
            sel = [int(rng.integers(self.num_views)) if self.train else 0]
        clips = []
        for v in sel:
            frames = np.array(views[v])  # copy out of the memmap
            if self.transform is None:
                clips.append(to_float_clip(frames).transpose(0, 1).contiguous())
            elif hasattr(self.transform, "transforms"):
                clips.append(self.transform(frames, generator=g))
            else:
                clips.append(self.transform(frames))
        clip = clips[0] if not self.all_views else torch.stack(clips)
        return clip, self.samples[index]["label"], index

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mm"] = None  # memmaps are reopened in each worker
        return state

    def __repr__(self):
        return (f"CachedClipDataset({str(self.dir)!r}, clips={len(self)}, views={self.num_views}, "
                f"frames={self.num_frames}, size={self.meta['resize']['size']})")


def cached(dataset, cache_root, size: int | None = None, num_clips: int | None = None, workers: int = 0,
           rebuild: bool = False) -> CachedClipDataset:
    """A CachedClipDataset for `dataset` (a VideoClipDataset), building the cache under `cache_root` on first use.

    The cache folder is named by split, frames, sampling, views and size, and reused when its cache.json matches
    the dataset (same clips, same sampling). size: default the stored clips' short side (no resize);
    num_clips: default 4 views for a training split (temporal variety), 1 otherwise. The dataset's transform,
    train flag and seed carry over."""
    if num_clips is None:
        num_clips = 4 if dataset.train else 1
    if size is None:
        r = VideoReader(dataset.samples[0].path, backend=dataset.backend)
        size = min(r.height, r.width)
    name = f"{dataset.split}_{dataset.sampling}{dataset.num_frames}x{dataset.stride}_v{num_clips}_{size}px"
    out = Path(cache_root) / name
    meta_path = out / "cache.json"
    fresh = False
    if meta_path.exists() and not rebuild:
        meta = json.loads(meta_path.read_text())
        fresh = (meta.get("version") == CACHE_VERSION
                 and [s["path"] for s in meta["samples"]] == [s.path for s in dataset.samples]
                 and [s["label"] for s in meta["samples"]] == [s.label for s in dataset.samples])
    if not fresh:
        build_cache(dataset, out, size=size, num_clips=num_clips, workers=workers)
    return CachedClipDataset(out, transform=dataset.transform, train=dataset.train, seed=dataset.seed)
