"""Reading checkpoints safely, and converting official ones to vidlab's layout.

Every checkpoint is read with ``torch.load(..., weights_only=True)``. Official training checkpoints often pickle a
config object as well (a yacs ``CfgNode`` in Video-FocalNets and ILA, an argparse ``Namespace`` in others); those
classes are not importable here and must never be unpickled as code. `load_checkpoint` therefore reads them
through an allow-list of *config container names*: each such class is replaced by an inert dict/object stand-in,
so the tensors come out and no foreign code runs. Anything outside the allow-list is refused with a message.

Per-architecture key mapping lives beside each model (its ``checkpoint_filter_fn``, registered with the model);
this module finds the state dict inside the file, strips wrapper prefixes, calls the converter and loads strictly,
raising `CheckpointError` with every missing, unexpected and shape-mismatched key.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from ..errors import CheckpointError

# Config containers that official checkpoints pickle beside the weights; read as inert stand-ins, never imported.
CONFIG_CLASS_ALLOWLIST = {
    "yacs.config.CfgNode",
    "argparse.Namespace",
    "mmcv.utils.config.ConfigDict",
    "mmengine.config.config.ConfigDict",
    "collections.OrderedDict",
    "omegaconf.dictconfig.DictConfig",
    "easydict.EasyDict",
}


def _stand_in(qualified: str) -> type:
    """An inert class named like `qualified` whose instances are plain OrderedDicts.

    torch's weights-only unpickler lets SETITEMS and BUILD act on OrderedDicts only, so unpickling a config
    (a dict subclass like yacs' CfgNode, or an object like argparse.Namespace) yields an OrderedDict holding its
    items, with its attributes in `__dict__`. No method of the original class ever runs.
    """
    module, _, name = qualified.rpartition(".")

    class StandIn:
        def __new__(cls, *args, **kwargs):
            return OrderedDict()

    StandIn.__module__, StandIn.__name__, StandIn.__qualname__ = module, name, name
    return StandIn


# --- TorchScript archives (OpenAI's CLIP release): torch.load refuses them with weights_only=True, and
# torch.jit.load would run their code; their tensors are read here with a restricted unpickler instead.
_STORAGE_DTYPES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
                   "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


def is_torchscript_archive(path: Path) -> bool:
    import zipfile
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.count("/") >= 2 and n.split("/")[1] == "code" for n in zf.namelist())


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript archive (e.g. OpenAI's CLIP release) read WITHOUT running its code.

    A TorchScript zip stores the module tree in `<root>/data.pkl` (objects of `__torch__.*` classes whose state is
    a dict of attributes) and the storages in `<root>/data/<key>`. A restricted unpickler turns every `__torch__`
    class into an inert record and allows only tensor rebuilding; anything else is refused."""
    import pickle
    import zipfile

    class Record:
        def __init__(self, *a, **k):
            self.state = {}

        def __setstate__(self, state):
            self.state = state if isinstance(state, dict) else {}

    allowed = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
               ("collections", "OrderedDict"), ("torch", "device")}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise ValueError(f"{path}: not a TorchScript archive (no <root>/data.pkl)")
        root = pkl.split("/")[0]

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module.startswith("__torch__"):
                    return Record
                if module == "torch" and name in _STORAGE_DTYPES:
                    return _STORAGE_DTYPES[name]              # the storage's dtype stands for its class
                if (module, name) in allowed:
                    import importlib
                    return getattr(importlib.import_module(module), name)
                raise pickle.UnpicklingError(f"refusing {module}.{name} in {path}")

            def persistent_load(self, pid):
                _, dtype, key, _location, _numel = pid
                raw = bytearray(zf.read(f"{root}/data/{key}"))
                t = torch.frombuffer(raw, dtype=torch.uint8).view(dtype) if raw else torch.empty(0, dtype=dtype)
                return torch.storage.TypedStorage(wrap_storage=t.untyped_storage(), dtype=dtype, _internal=True)

        with zf.open(pkl) as f:
            obj = Unpickler(f).load()

    out: dict[str, torch.Tensor] = {}

    def walk(o, prefix):
        if isinstance(o, Record):
            for k, v in o.state.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(o, torch.Tensor):
            out[prefix[:-1]] = o.detach().clone()

    walk(obj, "")
    return out



def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file with ``weights_only=True``; config objects on the allow-list come back inert.
    A TorchScript archive gives its tensors as a flat state dict (`read_torchscript_tensors`); no code runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if is_torchscript_archive(path):
        try:
            return read_torchscript_tensors(path)
        except Exception as e:
            raise CheckpointError(f"{path}: TorchScript archive could not be read safely ({e})") from e
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as first:  # UnpicklingError for unknown globals, or a corrupt file
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as e:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from first
        refused = [g for g in unsafe if g not in CONFIG_CLASS_ALLOWLIST]
        if refused or not unsafe:
            raise CheckpointError(
                f"{path}: refusing to unpickle objects that are not tensors or known config containers: "
                f"{', '.join(refused) or str(first)}. Re-save only the state dict "
                f"(torch.save(ckpt['model'], 'weights.pt')) from a trusted environment.") from first
        with torch.serialization.safe_globals([_stand_in(g) for g in unsafe]):
            return torch.load(path, map_location=map_location, weights_only=True)


def find_state_dict(ckpt: Mapping) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: under 'model', 'state_dict', 'module' or at the top level."""
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"expected a checkpoint dict, got {type(ckpt).__name__}")
    for key in ("model", "state_dict", "model_state", "module"):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            return dict(ckpt[key])
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return dict(ckpt)
    raise CheckpointError(f"no state dict found in checkpoint (top-level keys: {', '.join(map(str, ckpt))})")


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefixes=("module.", "_orig_mod.")) -> dict:
    """Drop wrapper prefixes (DDP's 'module.', torch.compile's '_orig_mod.') from every key that has them."""
    out = {}
    for k, v in state_dict.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def unwrap_official(state_dict: Mapping, prefixes: tuple[str, ...] = ("module.",), layout: str = "official") -> dict:
    """The common part of every official-checkpoint converter: a flat {name: float32 tensor} dict.

    * wrapper prefixes (DDP's `module.`, mmaction's `backbone.`, PySlowFast's `model.`, ...) are stripped, in
      any order and combination;
    * half-precision tensors (fp16 / bf16 saves) are upcast to float32, integer buffers are kept as they are;
    * a value that is not a tensor (an optimizer, EMA or scheduler state left in a flat dict) is refused by name.
    """
    out, bad = {}, []
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            bad.append(f"{k} ({type(v).__name__})")
            continue
        out[_strip_key(k, prefixes)] = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
    if bad:
        raise CheckpointError(f"{layout} checkpoint: entries that are not tensors in the state dict (optimizer, "
                              "EMA or training state?); keep only the model weights", unexpected=bad)
    return out


def _strip_key(key: str, prefixes) -> str:
    """`key` with any leading run of `prefixes` removed (`module.backbone.x` -> `x`)."""
    stripped = True
    while stripped:
        stripped = False
        for p in prefixes:
            if key.startswith(p):
                key, stripped = key[len(p):], True
    return key


def check_and_load(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                   source: str = "checkpoint") -> dict:
    """Load `state_dict` into `model`; raise CheckpointError listing missing/unexpected/shape-mismatched keys.

    With strict=False only shape mismatches raise; the report {loaded, missing, unexpected} is returned.
    """
    own = model.state_dict()
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state_dict.items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if mismatched or (strict and (missing or unexpected)):
        raise CheckpointError(f"{source} does not fit {type(model).__name__}", missing if strict else (),
                              unexpected if strict else (), mismatched)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
    return {"loaded": [k for k in state_dict if k in own], "missing": missing, "unexpected": unexpected}


def is_vidlab_checkpoint(ckpt: Mapping) -> bool:
    return isinstance(ckpt, Mapping) and "vidlab_version" in ckpt and "model" in ckpt


WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "encoder.")


def _strip_wrappers(sd: Mapping[str, torch.Tensor], prefixes=WRAPPER_PREFIXES) -> dict:
    """Every key with any leading run of wrapper prefixes (`module.backbone.`, `model.`, ...) removed."""
    out = {}
    for k, v in sd.items():
        out[_strip_key(k, prefixes)] = v
    return out


def _fits(sd: Mapping, own: Mapping) -> list[str]:
    """Keys of `own` that `sd` provides with the same shape."""
    return [k for k, v in own.items() if k in sd and tuple(sd[k].shape) == tuple(v.shape)]


def head_keys(model: nn.Module) -> list[str]:
    """The classifier's tensors (`head.*`, `fc.*`, `classifier.*`, ...: the ones sized by the class count);
    a checkpoint trained on other classes is not expected to provide them."""
    import re
    own = model.state_dict()
    pat = re.compile(r"(^|\.)(head|fc|fc_cls|cls_head|classifier)(\.(fc|proj|weight|bias))*$")
    cand = [k for k in own if pat.search(k.rsplit(".", 1)[0] + "." + k.rsplit(".", 1)[-1]) and own[k].ndim <= 2]
    nc = getattr(model, "num_classes", None)
    if nc is None and cand:
        nc = own[cand[-1]].shape[0]
    return [k for k in cand if own[k].ndim >= 1 and own[k].shape[0] == nc]


def guess_architecture(ckpt: Mapping, sd: Mapping[str, torch.Tensor]) -> str | None:
    """Which registered architecture a checkpoint holds: its metadata (`model_name` of a vidlab checkpoint), else
    the architecture whose key names (layer numbers ignored) cover most of the checkpoint's, if most are."""
    import re

    from .registry import list_models, model_info
    name = ckpt.get("model_name") if isinstance(ckpt, Mapping) else None
    if isinstance(name, str) and name in list_models():
        return f"{model_info(name)['arch']} checkpoint ({name}, from its metadata)"
    norm = (lambda keys: {re.sub(r"\d+", "#", k) for k in keys})
    theirs = norm(sd)
    best, score = None, 0.0
    for n in list_models("*_nano"):
        from .registry import create_model
        try:
            with torch.device("meta"):   # shapes only, no memory
                keys = norm(create_model(n, num_classes=2).state_dict())
        except Exception:
            continue
        s = len(theirs & keys) / max(1, len(theirs))
        if s > score:
            best, score = model_info(n)["arch"], s
    return f"{best} checkpoint (by its key names, {100 * score:.0f}% alike)" if best and score >= 0.5 else None


def load_pretrained(model: nn.Module, path: str | Path, converter: Callable | None = None,
                    strict: bool = True) -> dict:
    """Load a vidlab checkpoint, or convert an official one with the model's registered converter.

    Wrapper prefixes (`module.`, `_orig_mod.`, `model.`, `backbone.`, `encoder.`) are stripped when the weights
    then fit the model. Every tensor of the model except its classifier (`head_keys`) is expected: with
    strict=False a partial load warns with how many loaded and which did not; nothing loaded is an error, and so
    is a checkpoint of another architecture, named (from its metadata or its keys) before a few of its keys.
    Returns {"loaded", "missing", "unexpected", "num_loaded", "num_expected"}."""
    import warnings
    ckpt = load_checkpoint(path)
    try:
        raw = find_state_dict(ckpt)
    except CheckpointError as e:      # a file holding a bare tensor or a list: name the file
        raise CheckpointError(f"{path}: {e}") from None
    own = model.state_dict()
    heads = set(head_keys(model))
    body = [k for k in own if k not in heads]
    plain, stripped = strip_prefix(raw), _strip_wrappers(raw)
    sd = max((plain, stripped), key=lambda d: len(_fits(d, own)))   # a `backbone.` prefix is only dropped if it helps
    exact = set(body) <= set(_fits(sd, own)) and all(k in own for k in sd)
    if not is_vidlab_checkpoint(ckpt) and converter is not None and not exact:
        sd = converter(plain, model)       # an official layout: the architecture's own key mapping
    fit = set(_fits(sd, own))
    n_body = len(set(body) & fit)
    name = getattr(model, "vidlab_name", type(model).__name__)
    if body and n_body < len(body) / 2:    # not this architecture (or not a model at all): say so first
        arch = guess_architecture(ckpt, raw)
        asked = name
        try:
            from .registry import model_info
            asked = f"{model_info(name)['arch']} ({name})"
        except Exception:
            pass
        some = ", ".join(list(raw)[:4]) + (" ..." if len(raw) > 4 else "")
        raise CheckpointError(f"{path} is {'a ' + arch if arch else 'not a checkpoint of this model'}"
                              f"; {asked} was asked for. {n_body} of its {len(body)} tensors (classifier aside) "
                              f"fit. The checkpoint's {len(raw)} keys begin: {some}")
    if not strict:  # a classifier trained on another number of classes is simply not loaded
        sd = {k: v for k, v in sd.items() if not (k in heads and tuple(v.shape) != tuple(own[k].shape))}
    report = check_and_load(model, sd, strict=strict, source=str(path))
    not_loaded = [k for k in body if k not in fit]
    if not_loaded:
        warnings.warn(f"{path}: loaded {n_body} of the {len(body)} tensors of {name} (classifier aside); not loaded "
                      f"({len(not_loaded)}): " + ", ".join(not_loaded[:8]) + (" ..." if len(not_loaded) > 8 else ""),
                      stacklevel=3)
    report.update(num_loaded=n_body, num_expected=len(body))
    return report
