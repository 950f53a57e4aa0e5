"""Small helpers shared across vidlab: device choice and seeding."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` picks cuda, then mps, then cpu; anything else is passed to torch.device.

    A device that is not a device ("banana") or is not present here ("cuda" on a machine without CUDA, "cuda:3"
    with two GPUs) raises ConfigError naming it and what is available, instead of failing at the first tensor."""
    from .errors import ConfigError
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
                                   if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a device; available here: {', '.join(available)}") from None
    if d.type == "cuda" and (not torch.cuda.is_available() or (d.index or 0) >= torch.cuda.device_count()):
        have = (f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available()
                else f"CUDA is not available (torch {torch.__version__})")
        raise ConfigError(f"device {device!r} asked for, but {have}; available here: {', '.join(available)}")
    if d.type == "mps" and not _mps_available():
        raise ConfigError(f"device {device!r} asked for, but MPS is not available; available here: "
                          f"{', '.join(available)}")
    if d.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r} is not supported by vidlab; available here: {', '.join(available)}")
    return d


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    g = torch.Generator()
    g.manual_seed(seed)
    return g
