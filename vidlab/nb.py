"""Small helpers every notebook uses (d2l style): shape checks, data on demand, results for the tests.

    from vidlab.nb import check_shape, ensure_data, datasets, save_results
"""
from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import torch


def check_shape(t: torch.Tensor, expected: tuple, name: str = "tensor") -> torch.Tensor:
    """Assert a tensor's shape (None in `expected` matches any size); returns the tensor for chaining."""
    shape = tuple(t.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))
    if not ok:
        raise AssertionError(f"{name}: expected shape {tuple(expected)}, got {shape}")
    return t


def ensure_data(root: str | Path, smoke: bool = False, seed: int = 0) -> Path:
    """The dataset at `root`; when there is none, generate the synthetic one there (the "smoke" preset in SMOKE
    mode, else the default) — no download, ever."""
    root = Path(root)
    if (root / "classes.txt").is_file():
        return root
    from .data import make_synthetic
    print(f"no dataset at {root}: generating the synthetic {'smoke' if smoke else 'default'} set ...")
    return Path(make_synthetic(root, preset="smoke" if smoke else "default", seed=seed))


def datasets(root: str | Path, num_frames: int = 8, img_size: int = 128, seed: int = 0, flip: bool = False,
             sampling: str = "segment"):
    """(train, val) VideoClipDatasets with vidlab's default transforms (no flips: the data is direction-sensitive)."""
    from .data import VideoClipDataset, build_transforms
    train = VideoClipDataset(root, "train", num_frames=num_frames, sampling=sampling,
                             transform=build_transforms(True, img_size=img_size, flip=flip), seed=seed)
    val = VideoClipDataset(root, "val", num_frames=num_frames, sampling=sampling,
                           transform=build_transforms(False, img_size=img_size), seed=seed)
    return train, val


def results_path(name: str = "results.json") -> Path:
    return Path(os.environ.get("VIDLAB_RESULTS_DIR", ".")) / name


def _jsonable(x):
    if isinstance(x, torch.Tensor):
        return x.tolist() if x.numel() > 1 else x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def save_results(results: dict, name: str = "results.json") -> Path:
    """Write the notebook's key results (metrics, timings, shapes) where the tests and the course build read them:
    `$VIDLAB_RESULTS_DIR/results.json`, else `./results.json`. Adds the environment it ran in."""
    path = results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(_jsonable(results))
    payload.setdefault("environment", environment())
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
    print(f"results written to {path}")
    return path


def environment() -> dict:
    """What the notebook ran on (recorded with every result)."""
    import vidlab
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "vidlab": vidlab.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "device": dev, "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }


@contextmanager
def timed(label: str, store: dict | None = None):
    """`with timed("train", results): ...` prints and stores the wall time in seconds under `<label>_s`."""
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    print(f"{label}: {dt:.1f} s")
    if store is not None:
        store[f"{label}_s"] = round(dt, 3)
