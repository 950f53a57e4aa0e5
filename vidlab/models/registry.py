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
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError


# Frame pretraining (vidlab.pretrain) as a recipe asks for it. A recipe's fingerprint holds only the fields it sets:
# changing a default here changes what such recipes mean, so it must come with a new vidlab.zoo.ZOO_VERSION (every
# zoo run then retrains).
PRETRAIN_DEFAULTS = {
    "steps": 1500,         # optimiser steps (AdamW with the recipe's epsilon, one-cycle cosine, clipping at 1.0)
    "lr": 5e-4,            # peak learning rate
    "batch_size": 32,      # frames per step
    "frames": 16000,       # rendered frames (one per scene); 5 % of them are held out to report the loss
    "grid": 8,             # G: the occupancy map is G x G
    "num_frames": 1,       # frames of the still clip the model is built for (SIFA-Net's stem needs 2)
    "model": {},           # build overrides of the frame model (Video-FocalNet: {"design": "spatial"})
}


def check_pretrain(p: dict) -> dict:
    """The pretraining fields of a recipe, defaults filled in; unknown or bad fields raise a ConfigError."""
    unknown = sorted(set(p) - set(PRETRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown pretrain field(s) {unknown}; known: {sorted(PRETRAIN_DEFAULTS)}")
    p = {**PRETRAIN_DEFAULTS, **p}
    for k in ("steps", "batch_size", "frames", "grid", "num_frames"):
        if not (isinstance(p[k], int) and p[k] >= 1):
            raise ConfigError(f"pretrain {k} must be an integer >= 1, got {p[k]!r}")
    if not p["lr"] > 0:
        raise ConfigError(f"pretrain lr must be > 0, got {p['lr']!r}")
    if p["frames"] < 40:
        raise ConfigError(f"pretrain frames must be >= 40 (5 % are held out), got {p['frames']}")
    if not isinstance(p["model"], dict):
        raise ConfigError(f"pretrain model must be a dict of build arguments, got {p['model']!r}")
    return p


@dataclass
class ModelInfo:
    """Paper facts for one registered variant (what `vidlab models` prints and `model_info` returns)."""
    arch: str = ""                       # e.g. "video_focalnet"; filled from the module name when empty
    paper: str = ""                      # short citation, e.g. "Wasim et al., Video-FocalNets, ICCV 2023"
    url: str = ""                        # arXiv / official repo
    variant: str = ""                    # the paper's name for it, e.g. "Video-FocalNet-T"
    input: str = ""                      # e.g. "8x224x224"; a _nano size's comes from its recipe
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
    study: str = ""                          # a _nano size registered for one notebook's experiment (e.g. notebook
                                             # 03's design space): the zoo trains it like every nano; the course's
                                             # leaderboard (08) and maps (09) list the others (list_models(study=False))


@dataclass(frozen=True)
class Recipe:
    """How a variant is trained: the defaults of `vidlab train` and `vidlab zoo` for it (mmaction2 keeps a config per
    model, timm keeps per-variant metadata beside the variant; vidlab keeps both beside the registration).

    Any field can be overridden (`recipe.replace(lr=1e-3)`, or a `vidlab train` flag); the run's metrics.json records
    the recipe that ran. Only the `_nano` sizes carry a measured recipe (on the synthetic set: docs/benchmarks.md;
    how each was found: docs/findings.md); a paper variant gets the generic one below, a starting point for
    fine-tuning, not a reproduction of the paper.
    """
    optimizer: str = "adamw"          # AdamW, no decay on norms, biases, embeddings and tokens
    adam_eps: float = 1e-8            # AdamW's epsilon, added to sqrt(v) in each parameter's step (PyTorch's
                                      # default). A from-scratch Video-FocalNet starts with gradients of 1e-9 to
                                      # 1e-8 in its modulation (q * M_s * M_t: three small factors), which 1e-8
                                      # cuts to a third of the lr or less; the Video-FocalNet, DualFormer and ILA
                                      # nano recipes use 1e-12 (docs/findings.md, notebook 03)
    lr: float = 1e-3                  # peak learning rate (linear warm-up, then cosine to min_lr)
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    epochs: int = 20
    batch_size: int = 16
    label_smoothing: float = 0.1
    clip_grad: float = 1.0            # max global gradient norm (0: off)
    num_frames: int = 8               # frames per clip (segment sampling)
    img_size: int = 64                # crop side
    crop_scale: tuple = (0.4, 1.0)    # random resized crop: fraction of the frame's area (one crop for all frames)
    stream_clips: int = 0             # on a vidlab synthetic dataset: fresh clips rendered per epoch (0: the stored
                                      # train split); every epoch sees new clips of the same generator and difficulty
    reversal_pairs: bool = False      # on a dataset whose classes come in time-reversed pairs (vidlab synthetic):
                                      # each batch of `batch_size` clips is doubled with the same clips played
                                      # backwards, labelled with the partner class (Trainer `time_reversal`)
    pretrain: dict = field(default_factory=dict)  # frame pretraining before the video training (vidlab.pretrain:
                                      # the stand-in for the image weights the papers start from); {} = none
    model: dict = field(default_factory=dict)  # build overrides passed to create_model (e.g. a run of another
                                      # design); a _nano size's own build arguments are its registration's
                                      # defaults, so its registered recipe leaves this empty

    def __post_init__(self):
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"recipe optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        for k in ("lr", "epochs", "batch_size", "num_frames", "img_size", "adam_eps"):
            if not getattr(self, k) > 0:
                raise ConfigError(f"recipe {k} must be > 0, got {getattr(self, k)!r}")
        if not (0 < self.crop_scale[0] <= self.crop_scale[1] <= 1):
            raise ConfigError(f"recipe crop_scale must be 0 < lo <= hi <= 1, got {self.crop_scale!r}")
        if self.stream_clips < 0:
            raise ConfigError(f"recipe stream_clips must be >= 0, got {self.stream_clips}")
        if self.pretrain:
            check_pretrain(dict(self.pretrain))

    @property
    def input(self) -> str:
        """The clip this recipe trains on, as ModelInfo writes it: "8x32x32" (frames x height x width)."""
        return f"{self.num_frames}x{self.img_size}x{self.img_size}"

    def replace(self, **changes) -> "Recipe":
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown recipe field(s) {unknown}; known: {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(d["crop_scale"])
        d["model"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["model"].items()}
        d["pretrain"] = json.loads(json.dumps(d["pretrain"]))      # tuples inside become lists, as in metrics.json
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """The inverse of to_dict (lists back to tuples), e.g. for the recipe stored in a run's metrics."""
        d = dict(d)
        d["crop_scale"] = tuple(d.get("crop_scale", (0.4, 1.0)))
        d["model"] = {k: tuple(v) if isinstance(v, list) else v for k, v in (d.get("model") or {}).items()}
        d["pretrain"] = dict(d.get("pretrain") or {})
        return cls(**d)


@dataclass
class _Entry:
    name: str
    fn: Callable[..., nn.Module]
    info: ModelInfo
    converter: Callable | None   # official checkpoint -> vidlab state dict, see models/official.py
    recipe: Recipe = field(default_factory=Recipe)


_REGISTRY: dict[str, _Entry] = {}


def register_model(fn: Callable | None = None, *, info: ModelInfo | None = None, converter: Callable | None = None,
                   recipe: Recipe | None = None):
    """Decorator registering a variant under its function name. `converter(state_dict, model) -> state_dict`
    maps an official checkpoint's keys to vidlab's (timm's `checkpoint_filter_fn`); `recipe` is how it trains."""

    def wrap(f: Callable) -> Callable:
        name = f.__name__
        if name in _REGISTRY and _REGISTRY[name].fn.__module__ != f.__module__:
            raise ConfigError(f"model {name!r} is registered twice ({_REGISTRY[name].fn.__module__} and {f.__module__})")
        meta = dataclasses.replace(info) if info is not None else ModelInfo()
        if not meta.arch:
            meta.arch = f.__module__.rsplit(".", 1)[-1]
        rec = recipe or Recipe()
        if name.endswith("_nano"):
            meta.teaching = True
            meta.input = _nano_input(name, f, meta, rec)
        _REGISTRY[name] = _Entry(name, f, meta, converter, rec)
        return f

    return wrap(fn) if fn is not None else wrap


def _nano_input(name: str, fn: Callable, info: ModelInfo, rec: Recipe) -> str:
    """A _nano size is the model its recipe trains (timm's pretrained_cfg: one place): `create_model(name)` builds it
    at the recipe's input and with no build arguments from the recipe, and its ModelInfo states that input."""
    if rec.model:
        raise ConfigError(f"{name}: a _nano recipe takes no build arguments (got model={rec.model}); make them the "
                          "defaults of the registered function")
    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()}
    for key in ("num_frames", "img_size"):
        if defaults.get(key) != getattr(rec, key):
            raise ConfigError(f"{name}: default {key}={defaults.get(key)!r} differs from its recipe's "
                              f"{getattr(rec, key)}")
    if info.input and info.input != rec.input:
        raise ConfigError(f"{name}: ModelInfo input {info.input!r} differs from its recipe's {rec.input!r}")
    return rec.input


def suggest_models(name: str, limit: int = 5) -> list[str]:
    """Registered names nearest to a mistyped `name`: the names containing it first (`focalnet_nano` ->
    `video_focalnet_nano`), then difflib's closest spellings."""
    import difflib
    from . import _import_architectures
    _import_architectures()
    key = str(name).lower()
    contains = sorted(n for n in _REGISTRY if key and key in n.lower())
    close = difflib.get_close_matches(key, sorted(_REGISTRY), n=limit, cutoff=0.5)
    return list(dict.fromkeys(contains + close))[:limit]


def _entry(name: str) -> _Entry:
    from . import _import_architectures
    _import_architectures()
    if name not in _REGISTRY:
        near = suggest_models(name)
        hint = f"did you mean {', '.join(near)}?" if near else "`vidlab models` lists them"
        raise ConfigError(f"unknown model {name!r}; {hint} ({len(_REGISTRY)} registered)")
    return _REGISTRY[name]


def list_models(pattern: str = "*", arch: str | None = None, teaching: bool | None = None,
                study: bool | None = None) -> list[str]:
    """Registered variant names matching `pattern`, optionally one `arch`, sorted. The pattern is a glob
    (`video_focalnet_*`) when it holds `*`, `?` or `[`, else a substring (`focalnet`); case is ignored.
    `study=False` leaves out the nano models registered for one notebook's experiment (`ModelInfo.study`), `True`
    keeps only them."""
    from . import _import_architectures
    _import_architectures()
    pattern = str(pattern).lower()
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = [n for n, e in _REGISTRY.items() if fnmatch.fnmatchcase(n.lower(), pattern)
             and (arch is None or e.info.arch == arch) and (teaching is None or e.info.teaching == teaching)
             and (study is None or bool(e.info.study) == study)]
    return sorted(names)


def model_info(name: str) -> dict[str, Any]:
    """The paper facts of a variant as a plain dict (see ModelInfo)."""
    e = _entry(name)
    d = dataclasses.asdict(e.info)
    d["name"] = name
    return d


def get_recipe(name: str) -> Recipe:
    """The training recipe registered with a variant (see Recipe)."""
    return _entry(name).recipe


def get_converter(name: str) -> Callable | None:
    return _entry(name).converter


def create_model(name: str, *, num_classes: int = 400, num_frames: int | None = None, img_size: int | None = None,
                 pretrained: str | Path | None = None, strict: bool = True, **overrides) -> nn.Module:
    """Build a registered variant; `pretrained` is a local vidlab or official checkpoint (converted).

    `num_frames` / `img_size` left as None take the variant's own input (the paper's, e.g. 8x224^2 for
    Video-FocalNet, 16 frames for SIFA-Net; for a `_nano` size its recipe's, e.g. 8x32^2, and then the model built
    is the one its recipe trains)."""
    e = _entry(name)
    given = {k: v for k, v in (("num_frames", num_frames), ("img_size", img_size)) if v is not None}
    model = e.fn(num_classes=num_classes, **given, **overrides)
    model.vidlab_name = name  # lets checkpoints and the CLI know what was built
    if pretrained is not None:
        from .official import load_pretrained
        load_pretrained(model, pretrained, converter=e.converter, strict=strict)
    return model
