"""capture(model): the one mechanism that records maps from inside any vidlab model.

Usage::

    with vidlab.viz.capture(model) as maps:
        logits = model(clip)
    maps["stages.0.blocks.1.modulation.modulator"]   # detached, on CPU

Models call ``record(self, kind, tensor)`` at the point where a map exists. When nothing is capturing,
``record`` returns after one check of a module-level list, so the cost is zero in practice (measured in
benchmarks/capture_overhead.py). Maps that need extra work to compute (e.g. an attention matrix that the fast
path never materialises) are guarded with ``if wants(self, kind):`` so the work is done only while capturing.

Keys are ``"<module path>.<kind>"`` with the module path as in ``model.named_modules()``. A module that runs
twice in one forward records ``key``, then ``key:1``, ``key:2``, ...

Kinds used by vidlab models (DESIGN.md): ``attention`` (B, heads, Nq, Nk), ``token_attention``
(B, heads, M, T*H*W), ``modulator`` (B, C, T, H, W), ``gates`` (B, levels+1, T, H, W), ``alignment_points``
(B, T, 2) in [-1, 1], ``offsets`` (B, K, 2, T, H, W); models may add their own kinds and list them in their
docstrings.
"""
from __future__ import annotations

import fnmatch
from collections import OrderedDict
from typing import Callable, Iterable

import torch
from torch import nn

_ACTIVE: list["capture"] = []  # the recorders now listening; empty means "not capturing"


class capture:
    """Context manager recording maps from `model`.

    Args:
        model: the module to listen to (any module; only its submodules are recorded).
        kinds: record only these kinds (e.g. ``["attention"]``); None records all.
        include: glob patterns on the full key (e.g. ``"stages.3.*"``); None records all.
        to_cpu: move recorded tensors to CPU (default True); they are always detached.
        dtype: cast floating maps to this dtype (default float32) so bf16 runs plot cleanly.
    """

    def __init__(self, model: nn.Module, kinds: Iterable[str] | None = None,
                 include: str | Iterable[str] | None = None, to_cpu: bool = True,
                 dtype: torch.dtype | None = torch.float32):
        self.model = model
        self.kinds = None if kinds is None else set([kinds] if isinstance(kinds, str) else kinds)
        self.include = None if include is None else ([include] if isinstance(include, str) else list(include))
        self.to_cpu, self.dtype = to_cpu, dtype
        self.maps: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._names: dict[int, str] = {}

    def __enter__(self) -> "OrderedDict[str, torch.Tensor]":
        self._names = {id(m): name for name, m in self.model.named_modules()}
        self.maps.clear()
        _ACTIVE.append(self)
        return self.maps

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self)

    # --- used by record() ---------------------------------------------------------------------------------
    def _key(self, module: nn.Module, kind: str) -> str | None:
        name = self._names.get(id(module))
        if name is None:
            return None
        if self.kinds is not None and kind not in self.kinds:
            return None
        key = f"{name}.{kind}" if name else kind
        if self.include is not None and not any(fnmatch.fnmatchcase(key, p) for p in self.include):
            return None
        return key

    def _store(self, key: str, value: torch.Tensor) -> None:
        value = value.detach()
        if self.dtype is not None and value.is_floating_point():
            value = value.to(self.dtype)
        if self.to_cpu:
            value = value.cpu()
        if key in self.maps:
            i = 1
            while f"{key}:{i}" in self.maps:
                i += 1
            key = f"{key}:{i}"
        self.maps[key] = value


def wants(module: nn.Module, kind: str) -> bool:
    """True when some active capture would record `kind` from `module` (use it to guard costly maps)."""
    if not _ACTIVE:
        return False
    return any(c._key(module, kind) is not None for c in _ACTIVE)


def record(module: nn.Module, kind: str, value: torch.Tensor | Callable[[], torch.Tensor]) -> None:
    """Record `value` as `<path of module>.<kind>` in every active capture that wants it.

    `value` may be a zero-argument callable, evaluated only when some capture wants the map.
    """
    if not _ACTIVE:
        return
    for c in _ACTIVE:
        key = c._key(module, kind)
        if key is None:
            continue
        if callable(value) and not isinstance(value, torch.Tensor):
            value = value()
        c._store(key, value)


def is_capturing() -> bool:
    """True inside any `capture(...)` block."""
    return bool(_ACTIVE)


def group_by_kind(maps: dict) -> "OrderedDict[str, OrderedDict[str, torch.Tensor]]":
    """{"a.b.attention": t, ...} -> {"attention": {"a.b": t, ...}, ...}, keeping order."""
    out: "OrderedDict[str, OrderedDict[str, torch.Tensor]]" = OrderedDict()
    for key, value in maps.items():
        base = key.split(":")[0]
        path, _, kind = base.rpartition(".")
        suffix = key[len(base):]
        out.setdefault(kind, OrderedDict())[path + suffix] = value
    return out


def filter_maps(maps: dict, pattern: str) -> "OrderedDict[str, torch.Tensor]":
    """The maps whose key matches a glob pattern, e.g. ``"*.modulator"``."""
    return OrderedDict((k, v) for k, v in maps.items() if fnmatch.fnmatchcase(k, pattern))
