"""The model registry: every architecture file registers its variants here.

A variant is a small function whose body is its configuration (timm style)::

    @register_model(info=ModelInfo(paper="...", params_reported=49.6e6, ...))
    def video_focalnet_tiny(**kwargs):
        return VideoFocalNet(VideoFocalNetConfig(embed_dim=96, depths=(2, 2, 6, 2), **kwargs))

`create_model(name, num_classes=, num_frames=, img_size=, pretrained=, **overrides)` calls it with those keyword
arguments (plus the overrides) and loads weights when `pretrained` is a path.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError


@dataclass
class ModelInfo:
    """Paper facts for one registered variant (what `vidlab models` prints and `model_info` returns)."""
    arch: str = ""                       # e.g. "video_focalnet"; filled from the module name when empty
    paper: str = ""                      # short citation, e.g. "Wasim et al., Video-FocalNets, ICCV 2023"
    url: str = ""                        # arXiv / official repo
    variant: str = ""                    # the paper's name for it, e.g. "Video-FocalNet-T"
    input: str = ""                      # e.g. "8x224x224"
    views: str = ""                      # test views, e.g. "4x3"
    params_reported: float | None = None     # as reported (count, not millions); None when not reported
    params_official: int | None = None       # exact count of the official code (docs/architectures.md)
    gflops_reported: float | None = None     # per view, as reported
    flops_convention: str = ""               # e.g. "thop MACs per view (called FLOPs)"
    top1: dict = field(default_factory=dict)  # {"K400": 79.8, ...}
    pretrained_layouts: tuple = ()           # official checkpoint layouts the converter understands
    mean: tuple = (0.485, 0.456, 0.406)      # input normalisation the weights expect (on 0-1 scale)
    std: tuple = (0.229, 0.224, 0.225)
    notes: str = ""                          # paper-vs-code remarks
    teaching: bool = False                   # True for the _nano sizes (vidlab's own)


@dataclass
class _Entry:
    name: str
    fn: Callable[..., nn.Module]
    info: ModelInfo
    converter: Callable | None   # official checkpoint -> vidlab state dict, see models/official.py


_REGISTRY: dict[str, _Entry] = {}


def register_model(fn: Callable | None = None, *, info: ModelInfo | None = None, converter: Callable | None = None):
    """Decorator registering a variant under its function name. `converter(state_dict, model) -> state_dict`
    maps an official checkpoint's keys to vidlab's (timm's `checkpoint_filter_fn`)."""

    def wrap(f: Callable) -> Callable:
        name = f.__name__
        if name in _REGISTRY and _REGISTRY[name].fn.__module__ != f.__module__:
            raise ConfigError(f"model {name!r} is registered twice ({_REGISTRY[name].fn.__module__} and {f.__module__})")
        meta = dataclasses.replace(info) if info is not None else ModelInfo()
        if not meta.arch:
            meta.arch = f.__module__.rsplit(".", 1)[-1]
        if name.endswith("_nano"):
            meta.teaching = True
        _REGISTRY[name] = _Entry(name, f, meta, converter)
        return f

    return wrap(fn) if fn is not None else wrap


def _entry(name: str) -> _Entry:
    from . import _import_architectures
    _import_architectures()
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if n.split("_")[0] == name.split("_")[0]] or sorted(_REGISTRY)
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(close))}")
    return _REGISTRY[name]


def list_models(pattern: str = "*", arch: str | None = None, teaching: bool | None = None) -> list[str]:
    """Registered variant names matching a glob `pattern`, optionally one `arch`, sorted."""
    from . import _import_architectures
    _import_architectures()
    names = [n for n, e in _REGISTRY.items() if fnmatch.fnmatchcase(n, pattern)
             and (arch is None or e.info.arch == arch) and (teaching is None or e.info.teaching == teaching)]
    return sorted(names)


def model_info(name: str) -> dict[str, Any]:
    """The paper facts of a variant as a plain dict (see ModelInfo)."""
    e = _entry(name)
    d = dataclasses.asdict(e.info)
    d["name"] = name
    return d


def get_converter(name: str) -> Callable | None:
    return _entry(name).converter


def create_model(name: str, *, num_classes: int = 400, num_frames: int | None = None, img_size: int | None = None,
                 pretrained: str | Path | None = None, strict: bool = True, **overrides) -> nn.Module:
    """Build a registered variant; `pretrained` is a local vidlab or official checkpoint (converted).

    `num_frames` / `img_size` left as None take the variant's own input (the paper's, e.g. 8x224^2 for
    Video-FocalNet, 16 frames for SIFA-Net; 8x128^2 for the `_nano` sizes)."""
    e = _entry(name)
    given = {k: v for k, v in (("num_frames", num_frames), ("img_size", img_size)) if v is not None}
    model = e.fn(num_classes=num_classes, **given, **overrides)
    model.vidlab_name = name  # lets checkpoints and the CLI know what was built
    if pretrained is not None:
        from .official import load_pretrained
        load_pretrained(model, pretrained, converter=e.converter, strict=strict)
    return model
