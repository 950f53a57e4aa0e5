"""Helpers shared by the solution notebooks: the data, a short training run with the frame-order test, weights files.

Every solution notebook has the same `parameters` cell as the course notebooks. With SMOKE = True (what the tests
run) the data is the synthetic "smoke" preset and training is a few steps on a handful of clips: the code path of
each experiment runs, but its accuracy numbers say nothing. With SMOKE = False the same cells run the experiment
at the size the exercise means (the default synthetic set, EPOCHS epochs); read the numbers then.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

import vidlab
from vidlab.nb import ensure_data
from vidlab.train import TrainConfig, Trainer, build_datasets, frame_order_test


def data(root: str | Path, smoke: bool, seed: int = 0):
    """(root, classes, reversed pairs as index tuples) of the synthetic set at `root`, generated when absent."""
    root = ensure_data(root, smoke=smoke, seed=seed)
    meta = json.loads((Path(root) / "annotations" / "meta.json").read_text())
    classes = meta["classes"]
    pairs = [(classes.index(a), classes.index(b)) for a, b in meta.get("reversed_pairs", [])]
    return Path(root), classes, pairs


class Subset(torch.utils.data.Dataset):
    """Items `indices` of `dataset`, renumbered 0..n-1 (vidlab's loops check that item i comes back as index i),
    keeping `classes` and `labels`."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        self.classes = dataset.classes
        self.labels = [dataset.labels[i] for i in self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        item = self.dataset[self.indices[i]]
        return None if item is None else (item[0], item[1], i)


def subset(ds, n: int | None, seed: int = 0):
    """A fixed random subset of `n` items (all of them when n is None)."""
    if n is None or n >= len(ds):
        return ds
    return Subset(ds, torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].tolist())


def loaders(root, num_frames: int, img_size: int, train_clips: int | None, val_clips: int | None, seed: int = 0,
            flip: bool = False):
    """(train, val) datasets: segment sampling, training augmentation (optionally with flips), fixed subsets."""
    from vidlab.data import VideoClipDataset, build_transforms
    if flip:
        train = VideoClipDataset(root, "train", num_frames=num_frames, seed=seed,
                                 transform=build_transforms(True, img_size=img_size, flip=True))
        _, val = build_datasets(root, ("train", "val"), num_frames=num_frames, img_size=img_size, seed=seed)
    else:
        train, val = build_datasets(root, ("train", "val"), num_frames=num_frames, img_size=img_size, seed=seed)
    return subset(train, train_clips, seed), subset(val, val_clips, seed)


def pair_clips(val, pairs, n: int | None = None):
    """The validation clips of the time-reversed pairs (what the frame-order test scores)."""
    members = {c for p in pairs for c in p}
    idx = [i for i, y in enumerate(val.labels) if y in members]
    if n is not None:
        idx = idx[:: max(1, len(idx) // n)][:n]
    return Subset(val, idx)


def train_and_test(model, train, val, pairs, *, epochs: int, batch_size: int, lr: float = 1e-3, device="cpu",
                   seed: int = 0, order_clips: int | None = None) -> dict:
    """Train with vidlab's Trainer, then the frame-order test on the reversed pairs. Returns one table row."""
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=min(1.0, epochs / 5), seed=seed,
                      device=str(device), progress=False)
    t0 = time.perf_counter()
    hist = Trainer(model, train, val, cfg).fit()
    row = {"params": sum(p.numel() for p in model.parameters()), "val top-1": hist[-1]["val_top1"],
           "train loss": round(hist[-1]["train_loss"], 3), "train s": round(time.perf_counter() - t0, 1)}
    if pairs:
        fo = frame_order_test(model, pair_clips(val, pairs, order_clips), pairs, device=str(device),
                              batch_size=batch_size, seed=seed)
        row.update({"pairwise ordered": fo["ordered_pairwise"], "pairwise shuffled": fo["shuffled_pairwise"]})
    return row


def weights_file(name: str, env: str = "VIDLAB_WEIGHTS") -> Path | None:
    """A local weights file: `name` itself if it exists, else `$VIDLAB_WEIGHTS/name`. None (with a message saying
    where it would be looked for) when absent: vidlab never downloads."""
    for p in (Path(name), Path(os.environ.get(env, "../data/weights")) / name):
        if p.is_file():
            return p
    print(f"{name}: not found (looked at ./{name} and ${env}/{name}, default ../data/weights/{name}). "
          f"Download it from the official release page (README: 'Official and ImageNet/CLIP weights') and put it "
          f"there; the cells that need it are skipped.")
    return None


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_complexity(name: str, shape, **kwargs):
    """vidlab.profile.complexity of a registered model on the meta device (exact counts, no compute)."""
    from vidlab.profile import complexity
    with torch.device("meta"):
        m = vidlab.create_model(name, **kwargs)
        return complexity(m, shape)
