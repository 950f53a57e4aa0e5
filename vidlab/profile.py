"""vidlab.profile: what a model costs — parameters, MACs and FLOPs, latency, memory, and how they scale.

    from vidlab.profile import complexity, latency, peak_memory, scaling
    c = complexity(model, (1, 3, 8, 224, 224))   # a shape, a tensor, a tuple of tensors or a dict of kwargs
    print(c)                  # totals labelled MAC and FLOP, the top of the per-module table, uncounted ops
    c.table                   # pandas DataFrame, one row per module (hierarchical), MACs / FLOPs / params
    c.uncounted               # {"aten.gelu": 12, ...}: ops that ran, do arithmetic, and were not counted

**MAC vs FLOP** (docs/architectures.md §6). Papers, fvcore and thop print multiply-accumulates (MACs) and call them
"FLOPs"; `torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per MAC. vidlab always prints both: counting
is done in FLOPs and ``MAC = FLOP / 2``, which is exact for everything counted by default.

**What is counted by default** — the ops papers count:
  * conv / linear / matmul / bmm / baddbmm: FlopCounterMode's formulas (2 FLOPs per MAC, grouped conv included);
  * scaled dot-product attention on every backend. FlopCounterMode only knows the CUDA kernels; on CPU torch 2.13
    runs ``aten._scaled_dot_product_flash_attention_for_cpu`` (and its backward), which it silently skips. vidlab
    registers it (and the MPS / "overrideable" kernels) with the same formula: QK^T plus AV, i.e.
    ``B*heads*(Nq*Nk*d + Nq*Nk*dv)`` MACs, forward. Causal or masked attention is counted dense (what the math
    reference computes, and the CUDA convention of FlopCounterMode);
  * ``grid_sampler_2d``: 4 MACs per output element per channel (bilinear), ``grid_sampler_3d``: 8 (trilinear);
    nearest 0, bicubic 16 (the convention fvcore uses for 2D bilinear, extended to 3D).

**count_extra=True** also counts the work papers leave out, in FLOPs (MAC column = FLOP / 2 for these as well):
  * element-wise arithmetic and activations (add, mul, gelu, sigmoid, exp, ...): 1 FLOP per output element
    (a transcendental function counts as one); ``addcmul``/``addcdiv``/``lerp``: 2;
  * reductions (sum, mean, amax, ...): 1 FLOP per input element; var/std: 3; softmax / log-softmax: 5 per element
    (max, subtract, exp, sum, divide);
  * LayerNorm / GroupNorm / BatchNorm with batch statistics: 5 FLOPs per element (+2 with an affine scale and
    shift); BatchNorm with running statistics: 2 per element (a per-channel scale and shift);
  * pooling: max/avg pool with a kernel: output elements x kernel volume; adaptive pooling: 1 per input element;
  * interpolation: bilinear 8 FLOPs per output element, trilinear 16, bicubic 32, nearest 0 (as grid_sample).

**Uncounted ops.** Every aten op that ran and was not counted is listed in ``uncounted`` (calls) and
``uncounted_numel`` (output elements), except ops that do no arithmetic (views, copies, concatenation, indexing,
tensor creation; see ``FREE_OPS``). ``unknown_ops`` narrows that to ops that are not element-wise, reductions,
norms or pooling — ops that may hide real multiply-accumulate work (a custom kernel, ``unfold``, ...).
"""
from __future__ import annotations

import gc
import math
import statistics
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

__all__ = ["Complexity", "Timing", "Memory", "complexity", "mobileformer_macs", "latency", "peak_memory", "scaling",
           "attention_macs", "register_formula", "FREE_OPS", "EXTRA_OPS"]


def _prod(xs: Iterable[int]) -> int:
    return math.prod(int(x) for x in xs)


def _numel(shape) -> int:
    return _prod(shape) if shape is not None else 0


def _first_shape(out_shape):
    """The shape of the first tensor output (ops such as native_layer_norm return several)."""
    if isinstance(out_shape, torch.Size):
        return out_shape
    if isinstance(out_shape, (tuple, list)) and out_shape:
        return _first_shape(out_shape[0])
    return None


# --------------------------------------------------------------------------------------------------------------
# Formulas FlopCounterMode lacks (all return FLOPs = 2 x MACs; arguments arrive as shapes)
# --------------------------------------------------------------------------------------------------------------
def attention_macs(q_shape, k_shape, v_shape) -> int:
    """MACs of softmax(Q K^T) V for q (B, h, Nq, d), k (B, hkv, Nk, d), v (B, hkv, Nk, dv): QK^T + AV."""
    *batch, nq, d = q_shape
    nk, dv = k_shape[-2], v_shape[-1]
    bh = _prod(batch)
    return bh * nq * nk * d + bh * nq * nk * dv


def _sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * attention_macs(query_shape, key_shape, value_shape)


def _sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # recompute QK^T, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q: 5 matmuls of the forward's size class
    *batch, nq, d = query_shape
    nk, dv = key_shape[-2], value_shape[-1]
    bh = _prod(batch)
    return 2 * bh * nq * nk * (d + dv + dv + d + d)


_GRID_MACS = {2: {0: 4, 1: 0, 2: 16}, 3: {0: 8, 1: 0}}  # dims -> mode (0 bilinear, 1 nearest, 2 bicubic) -> MACs


def _grid_sampler_flop(dims: int):
    def formula(input_shape, grid_shape, interpolation_mode=0, *args, out_shape=None, **kwargs) -> int:
        # output (N, C, *grid spatial): every output element per channel mixes 2^dims neighbours (bilinear)
        n, c = input_shape[0], input_shape[1]
        out = n * c * _prod(grid_shape[1:-1])
        return 2 * _GRID_MACS[dims].get(int(interpolation_mode), _GRID_MACS[dims][0]) * out
    return formula


_USER_FORMULAS: dict = {}


def register_formula(op, formula: Callable[..., int]) -> None:
    """Count `op` (an op packet such as ``torch.ops.vidlab.sifa_attention`` or ``torch.ops.aten.foo``) in every
    later `complexity` call. ``formula(*arg_shapes, out_shape=..., **kwargs) -> FLOPs`` (2 per MAC) receives the
    op's arguments with tensors replaced by their shapes, as torch's own formulas do. An architecture whose
    custom op no counter knows registers it next to the op's definition."""
    if isinstance(op, torch._ops.OpOverload):
        op = op.overloadpacket
    _USER_FORMULAS[op] = formula


def _default_formulas() -> dict:
    f = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
                 "_scaled_dot_product_attention_math_for_mps"):
        if hasattr(aten, name):
            f[getattr(aten, name)] = _sdpa_flop
    for name in ("_scaled_dot_product_flash_attention_for_cpu_backward",
                 "_scaled_dot_product_fused_attention_overrideable_backward"):
        if hasattr(aten, name):
            f[getattr(aten, name)] = _sdpa_backward_flop
    f[aten.grid_sampler_2d] = _grid_sampler_flop(2)
    f[aten.grid_sampler_3d] = _grid_sampler_flop(3)
    f[aten.cudnn_grid_sampler] = lambda x, grid, *a, out_shape=None, **k: 2 * 4 * x[0] * x[1] * _prod(grid[1:-1])
    return f


# --- count_extra=True --------------------------------------------------------------------------------------------
_ELEMENTWISE = """add sub rsub mul div neg abs relu leaky_relu hardtanh clamp clamp_min clamp_max maximum minimum
where masked_fill eq ne gt lt ge le sign reciprocal pow sqrt rsqrt exp log log2 sin cos sigmoid tanh gelu silu
hardswish hardsigmoid mish softplus elu erf floor ceil round logical_not logical_and bitwise_not square
add_ sub_ mul_ div_ relu_ clamp_ sigmoid_ hardtanh_ masked_fill_ exp_ neg_ gelu_ silu_ hardswish_ leaky_relu_
""".split()
_ELEMENTWISE_2 = "addcmul addcdiv lerp addcmul_ addcdiv_ lerp_".split()
_REDUCE = "sum mean amax amin max min prod argmax argmin logsumexp linalg_vector_norm norm cumsum".split()
_REDUCE_3 = "var std var_mean std_mean".split()
_SOFTMAX = "_softmax _safe_softmax _log_softmax".split()
_NORM = "native_layer_norm native_group_norm _native_batch_norm_legit native_batch_norm".split()
_BN_EVAL = "_native_batch_norm_legit_no_training".split()
_POOL_K = "avg_pool2d avg_pool3d max_pool2d_with_indices max_pool3d_with_indices".split()
_POOL_ADAPTIVE = "_adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool2d adaptive_max_pool3d".split()
_INTERP = {"upsample_bilinear2d": 8, "upsample_trilinear3d": 16, "upsample_bicubic2d": 32,
           "_upsample_bilinear2d_aa": 8, "upsample_nearest1d": 0, "upsample_nearest2d": 0, "upsample_nearest3d": 0,
           "_upsample_nearest_exact1d": 0, "_upsample_nearest_exact2d": 0, "_upsample_nearest_exact3d": 0,
           "upsample_linear1d": 4}

# gradients of the cheap families: known, never counted (a backward count covers conv/linear/matmul/attention)
_CHEAP_BACKWARD = """native_layer_norm_backward native_group_norm_backward native_batch_norm_backward
_native_batch_norm_legit_backward batch_norm_backward gelu_backward silu_backward sigmoid_backward tanh_backward
threshold_backward hardswish_backward hardsigmoid_backward leaky_relu_backward elu_backward softplus_backward
_softmax_backward_data _log_softmax_backward_data avg_pool2d_backward avg_pool3d_backward
max_pool2d_with_indices_backward max_pool3d_with_indices_backward _adaptive_avg_pool2d_backward
_adaptive_avg_pool3d_backward upsample_bilinear2d_backward upsample_trilinear3d_backward
upsample_nearest2d_backward upsample_nearest3d_backward""".split()

# op families known to be cheap (not multiply-accumulate work): listed in `uncounted` unless count_extra counts
# them (the backward ones stay listed), never in `unknown_ops`
EXTRA_OPS = frozenset(_ELEMENTWISE + _ELEMENTWISE_2 + _REDUCE + _REDUCE_3 + _SOFTMAX + _NORM + _BN_EVAL + _POOL_K
                      + _POOL_ADAPTIVE + list(_INTERP) + _CHEAP_BACKWARD)

# ops that do no arithmetic: views, copies, layout, indexing, creation, randomness, bookkeeping
FREE_OPS = frozenset("""view _unsafe_view _reshape_alias reshape view_as transpose t permute expand expand_as squeeze
unsqueeze select slice split split_with_sizes unbind chunk narrow as_strided unfold alias detach detach_ movedim
diagonal view_as_real view_as_complex clone copy copy_ _to_copy to contiguous cat stack lift_fresh lift_fresh_copy
empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones ones_like full full_like fill fill_
zero_ new_zeros new_ones new_full arange linspace scalar_tensor _local_scalar_dense item index index_select gather
roll flip repeat tril triu constant_pad_nd index_put index_put_ slice_scatter select_scatter masked_select
bernoulli bernoulli_ rand rand_like randn randn_like randint normal_ uniform_ randperm set_ resize_ _assert_async
_assert_tensor_metadata sym_size sym_numel sym_stride is_same_size _has_compatible_shallow_copy_type
native_dropout dropout embedding _unsafe_index _unsafe_index_put unsafe_split unsafe_chunk _reshape_copy
select_backward slice_backward expand_backward unsqueeze_backward squeeze_backward permute_backward
embedding_dense_backward native_dropout_backward im2col col2im""".split())  # im2col/col2im (F.unfold/fold) only move data


def _out_numel(out_shape) -> int:
    return _numel(_first_shape(out_shape))


def _extra_formulas() -> dict:
    f: dict = {}

    def add(names, formula):
        for n in names:
            if hasattr(aten, n):
                f[getattr(aten, n)] = formula

    add(_ELEMENTWISE, lambda *a, out_shape=None, **k: _out_numel(out_shape))
    add(_ELEMENTWISE_2, lambda *a, out_shape=None, **k: 2 * _out_numel(out_shape))
    add(_REDUCE, lambda x, *a, out_shape=None, **k: _numel(x) if isinstance(x, torch.Size) else 0)
    add(_REDUCE_3, lambda x, *a, out_shape=None, **k: 3 * _numel(x) if isinstance(x, torch.Size) else 0)
    add(_SOFTMAX, lambda x, *a, out_shape=None, **k: 5 * _numel(x))

    def layer_norm(x, normalized_shape, weight=None, bias=None, *a, out_shape=None, **k):
        return (5 + 2 * (weight is not None)) * _numel(x)

    def stats_norm(x, weight=None, bias=None, *a, out_shape=None, **k):  # group / batch norm, weight is arg 1
        return (5 + 2 * (weight is not None)) * _numel(x)

    add(["native_layer_norm"], layer_norm)
    add(["native_group_norm", "_native_batch_norm_legit", "native_batch_norm"], stats_norm)
    add(_BN_EVAL, lambda x, *a, out_shape=None, **k: 2 * _numel(x))

    def pool_k(x, kernel_size, *a, out_shape=None, **k):
        return _out_numel(out_shape) * _prod(kernel_size)

    add(_POOL_K, pool_k)
    add(_POOL_ADAPTIVE, lambda x, *a, out_shape=None, **k: _numel(x))
    for name, per in _INTERP.items():
        add([name], (lambda per: lambda *a, out_shape=None, **k: per * _out_numel(out_shape))(per))
    return f



# --------------------------------------------------------------------------------------------------------------
# The counter: FlopCounterMode + vidlab's formulas + a record of what ran uncounted
# --------------------------------------------------------------------------------------------------------------
def _op_name(packet) -> str:
    """'aten.mm', 'vidlab.sifa', ... for an op packet."""
    q = getattr(packet, "_qualified_op_name", None)
    if q:
        return q.replace("::", ".")
    return "aten." + getattr(packet, "__name__", str(packet)).split(".")[0]


class _Counter(FlopCounterMode):
    """FlopCounterMode that also notes every op it executes without a formula."""

    def __init__(self, custom_mapping: dict):
        super().__init__(display=False, custom_mapping=custom_mapping)
        self.uncounted: dict[str, int] = defaultdict(int)
        self.uncounted_numel: dict[str, int] = defaultdict(int)

    def _count_flops(self, func_packet, out, args, kwargs):
        if func_packet not in self.flop_registry:
            key = _op_name(func_packet)
            ns, name = key.split(".", 1)
            if ns != "aten" or (name not in FREE_OPS and name.rstrip("_") not in FREE_OPS):
                self.uncounted[key] += 1
                t = out[0] if isinstance(out, (tuple, list)) and out else out
                if isinstance(t, torch.Tensor):
                    self.uncounted_numel[key] += t.numel()
        return super()._count_flops(func_packet, out, args, kwargs)


@dataclass
class Complexity:
    """The cost of one forward (or forward + backward) pass; see the module docstring for the conventions."""
    params: int
    trainable_params: int
    flops: int                                  # 2 x MAC on conv / linear / matmul / attention / grid_sample
    table: Any                                  # pandas DataFrame: one row per module
    by_op: Any                                  # pandas DataFrame: one row per counted aten op
    uncounted: dict[str, int]                   # aten op -> calls, for ops that ran uncounted
    uncounted_numel: dict[str, int] = field(default_factory=dict)  # aten op -> output elements
    input_shapes: list = field(default_factory=list)
    count_extra: bool = False
    backward: bool = False

    @property
    def macs(self) -> int:
        return self.flops // 2 if self.flops % 2 == 0 else self.flops / 2

    @property
    def gmacs(self) -> float:
        return self.flops / 2e9

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def unknown_ops(self) -> dict[str, int]:
        """Uncounted ops outside the known cheap families (element-wise, reductions, norms, pooling)."""
        return {k: v for k, v in self.uncounted.items()
                if not k.startswith("aten.") or k.split(".", 1)[1] not in EXTRA_OPS}

    def to_dict(self) -> dict:
        return {"params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "flops": self.flops, "gmacs": self.gmacs, "gflops": self.gflops, "uncounted": dict(self.uncounted),
                "input_shapes": [list(s) for s in self.input_shapes], "count_extra": self.count_extra,
                "backward": self.backward}

    def summary(self, depth: int = 2, top: int = 25) -> str:
        shapes = ", ".join("x".join(map(str, s)) for s in self.input_shapes)
        what = "forward+backward" if self.backward else "forward"
        lines = [f"input {shapes} ({what}{', count_extra' if self.count_extra else ''})",
                 f"params  {self.params:,} ({self.params / 1e6:.2f} M; trainable {self.trainable_params:,})",
                 f"MAC     {self.flops / 2:,.0f} ({self.gmacs:.3f} GMAC)   <- what papers call 'FLOPs'",
                 f"FLOP    {self.flops:,} ({self.gflops:.3f} GFLOP)   <- 2 x MAC (torch FlopCounterMode)"]
        t = self.table
        if t is not None and len(t):
            rows = t[(t["depth"] <= depth) & ((t["flops"] > 0) | (t["depth"] == 0))].head(top)
            lines.append("")
            lines.append(f"{'module':<44} {'params':>12} {'GMAC':>10} {'GFLOP':>10} {'share':>7}")
            for r in rows.itertuples():
                name = ("  " * r.depth + (r.module or "(model)"))[:44]
                lines.append(f"{name:<44} {r.params:>12,} {r.macs / 1e9:>10.4f} {r.flops / 1e9:>10.4f} "
                             f"{r.share:>6.1%}")
        if self.uncounted:
            ops = ", ".join(f"{k.removeprefix('aten.')} x{v}" for k, v in sorted(self.uncounted.items(),
                                                                            key=lambda kv: -kv[1]))
            lines.append("")
            lines.append(f"uncounted: {ops}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:  # notebooks: the summary, monospaced
        import html
        return f"<pre>{html.escape(self.summary())}</pre>"


def _as_inputs(model: nn.Module, inputs) -> tuple[tuple, dict]:
    """inputs: a shape tuple of ints, a tensor, a tuple/list of tensors, or a dict of keyword arguments."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, (tuple, list, torch.Size)) and inputs and all(isinstance(s, int) for s in inputs):
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        return (torch.randn(*inputs, device=dev, dtype=dtype),), {}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    raise TypeError(f"inputs must be a shape tuple, a tensor, a tuple of tensors or a dict, got {type(inputs).__name__}")


def _shapes(args, kwargs) -> list:
    return [tuple(t.shape) for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)]


def _backward_through(out) -> None:
    tensors = [t for t in (out if isinstance(out, (tuple, list)) else [out])
               if isinstance(t, torch.Tensor) and t.requires_grad]
    if not tensors:
        raise ValueError("backward=True but the model output does not require grad")
    sum(t.float().sum() for t in tensors).backward()


def complexity(model: nn.Module, inputs, *, count_extra: bool = False, backward: bool = False) -> Complexity:
    """Count parameters, MACs and FLOPs of one pass of `model` on `inputs`.

    Args:
        model: any nn.Module; it runs once in eval mode (its mode is restored). It may live on the meta device
            (counts without computing: ``with torch.device("meta"): m = build()``).
        inputs: a shape (``(1, 3, 8, 224, 224)``, random values on the model's device), a tensor, a tuple of
            tensors (positional) or a dict (keyword arguments).
        count_extra: also count element-wise, norm, pooling and interpolation ops (see the module docstring).
        backward: count forward + backward (of the sum of the output) instead of forward only.
    """
    import pandas as pd

    args, kwargs = _as_inputs(model, inputs)
    mapping = _default_formulas()
    if count_extra:
        mapping.update(_extra_formulas())
    mapping.update(_USER_FORMULAS)
    counter = _Counter(mapping)
    was_training = model.training
    model.eval()
    try:
        with torch.set_grad_enabled(backward), counter:
            out = model(*args, **kwargs)
            if backward:
                _backward_through(out)
    finally:
        model.train(was_training)
    if backward:
        model.zero_grad(set_to_none=True)

    counts = counter.get_flop_counts()
    total = sum(counts.get("Global", {}).values())
    root = type(model).__name__
    per_module = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        path = "" if key == root else key[len(root) + 1:] if key.startswith(root + ".") else key
        per_module[path] = sum(ops.values())

    # a container that is never called (nn.ModuleList) is not tracked: its cost is the sum of its children's
    children = defaultdict(list)
    for path, _ in model.named_modules():
        if path:
            children[path.rpartition(".")[0]].append(path)

    def flops_of(path: str) -> int:
        if path in per_module:
            return per_module[path]
        return sum(flops_of(c) for c in children[path])

    rows = []
    for path, mod in model.named_modules():
        flops = flops_of(path)
        rows.append({"module": path, "type": type(mod).__name__, "depth": 0 if not path else path.count(".") + 1,
                     "params": sum(p.numel() for p in mod.parameters()), "macs": flops / 2, "flops": flops,
                     "share": flops / total if total else 0.0})
    table = pd.DataFrame(rows, columns=["module", "type", "depth", "params", "macs", "flops", "share"])

    op_rows = [{"op": _op_name(k), "macs": v / 2, "flops": v, "share": v / total if total else 0.0}
               for k, v in sorted(counts.get("Global", {}).items(), key=lambda kv: -kv[1])]
    by_op = pd.DataFrame(op_rows, columns=["op", "macs", "flops", "share"])

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Complexity(params=params, trainable_params=trainable, flops=int(total), table=table, by_op=by_op,
                      uncounted=dict(counter.uncounted), uncounted_numel=dict(counter.uncounted_numel),
                      input_shapes=_shapes(args, kwargs), count_extra=count_extra, backward=backward)


# --------------------------------------------------------------------------------------------------------------
# Mobile-Former's convention: MACs plus the dynamic ReLUs' products
# --------------------------------------------------------------------------------------------------------------
def mobileformer_macs(model: nn.Module, clip) -> dict:
    """Cost of one forward pass of `clip` (a tensor or a shape), counted with `complexity`:

    "macs": conv + linear + matmul multiply-accumulates (fvcore-like; FlopCounterMode FLOPs / 2);
    "dyrelu": the 2 multiplies per output element of every dynamic ReLU (max(a1 x, a2 x)), which the counter
    leaves out; "mf_macs" = macs + dyrelu: what Mobile-Former calls "FLOPs" (its README's 508M, 294M, ...) and
    the convention of vidlab's size names; "flops" = 2 * macs (FlopCounterMode's own number).
    "by_part": MACs of the Mobile sub-blocks, the two bridges, the Formers and the rest (stem, lite block, head).
    """
    from .models.video_mobileformer import (DynamicReLU, Former, FormerToMobile, Mobile, MobileDownsample,
                                            MobileToFormer)
    dyrelu = [0]

    def hook(mod, inp, out):
        dyrelu[0] += 2 * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, DynamicReLU)]
    try:
        c = complexity(model, clip)
    finally:
        for h in handles:
            h.remove()
    kinds = {"mobile": (Mobile, MobileDownsample), "bridges": (MobileToFormer, FormerToMobile), "former": (Former,)}
    types = dict(model.named_modules())
    parts = {k: 0 for k in kinds}
    for row in c.table.itertuples():
        for part, classes in kinds.items():
            if isinstance(types[row.module], classes):
                parts[part] += int(row.macs)
    macs = int(c.macs)
    parts["other"] = macs - sum(parts.values())
    return {"macs": macs, "flops": int(c.flops), "dyrelu": dyrelu[0], "mf_macs": macs + dyrelu[0],
            "params": c.params, "by_part": parts}


# --------------------------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall-clock time of one call (forward, or forward + backward), over `iters` timed repetitions."""
    median_ms: float
    iqr_ms: float          # interquartile range (75th - 25th percentile) of the repetitions
    min_ms: float
    times_ms: list
    device: str
    backward: bool
    threads: int

    def __str__(self) -> str:
        what = "fwd+bwd" if self.backward else "fwd"
        return f"{self.median_ms:.2f} ms (IQR {self.iqr_ms:.2f}, n={len(self.times_ms)}, {what}, {self.device})"


def _quartiles(xs: Sequence[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _place(model: nn.Module, args, kwargs, device) -> tuple[torch.device, tuple, dict]:
    if device is None:   # where the model lives, else where the inputs live
        p = next(iter(model.parameters()), None)
        t = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
        dev = p.device if p is not None else t.device if t is not None else torch.device("cpu")
    else:
        from .utils import resolve_device
        dev = resolve_device(device)
        model.to(dev)
    mv = lambda t: t.to(dev) if isinstance(t, torch.Tensor) else t  # noqa: E731
    return dev, tuple(mv(a) for a in args), {k: mv(v) for k, v in kwargs.items()}


def latency(model: nn.Module, inputs, warmup: int = 3, iters: int = 10, backward: bool = False,
            device: str | torch.device | None = None) -> Timing:
    """Median and IQR of `iters` timed calls after `warmup` untimed ones.

    Forward-only runs under ``torch.no_grad()`` in eval mode; ``backward=True`` times forward + backward of the
    output sum (gradients are zeroed between calls, outside the timed region). CUDA/MPS are synchronised before
    and after each call. ``device`` moves the model and inputs there (default: where the model is).
    """
    args, kwargs = _as_inputs(model, inputs)
    dev, args, kwargs = _place(model, args, kwargs, device)
    was_training = model.training
    model.train(was_training if backward else False)

    def step():
        if backward:
            _backward_through(model(*args, **kwargs))
        else:
            with torch.no_grad():
                model(*args, **kwargs)

    times = []
    try:
        for i in range(warmup + iters):
            if backward:
                model.zero_grad(set_to_none=True)
            _sync(dev)
            t0 = time.perf_counter()
            step()
            _sync(dev)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.train(was_training)
        if backward:
            model.zero_grad(set_to_none=True)
    q1, q3 = _quartiles(times)
    return Timing(median_ms=statistics.median(times), iqr_ms=q3 - q1, min_ms=min(times), times_ms=times,
                  device=str(dev), backward=backward, threads=torch.get_num_threads())


# --------------------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Memory:
    """Peak memory of one call above what was allocated before it (parameters and inputs excluded)."""
    peak_bytes: int
    device: str
    method: str            # "cuda-allocator" or "live-tensors" (see peak_memory)
    backward: bool

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    def __str__(self) -> str:
        return f"{self.peak_mb:.1f} MiB peak ({self.method}, {'fwd+bwd' if self.backward else 'fwd'}, {self.device})"


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created by ops while active and alive, and their peak.

    A storage is counted once however many views share it, from the op that creates it until the last tensor
    holding it is freed. Storages that existed before (parameters, inputs) are ignored.
    """

    def __init__(self, ignore: Iterable[torch.Tensor] = ()):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list] = {}          # storage id -> [python tensors alive, nbytes]
        self._ignore = {self._key(t) for t in ignore}

    @staticmethod
    def _key(t: torch.Tensor) -> int:
        return t.untyped_storage()._cdata

    def _release(self, key: int) -> None:
        ref = self._refs.get(key)
        if ref is None:
            return
        ref[0] -= 1
        if ref[0] == 0:
            self.live -= ref[1]
            del self._refs[key]

    def _track(self, t: torch.Tensor) -> None:
        try:
            key = self._key(t)
            nbytes = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):      # sparse, nested, ...
            return
        if key in self._ignore:
            return
        ref = self._refs.get(key)
        if ref is None:
            self._refs[key] = [1, nbytes]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            ref[0] += 1
        weakref.finalize(t, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out


def peak_memory(model: nn.Module, inputs, backward: bool = False, device: str | torch.device | None = None,
                method: str = "auto") -> Memory:
    """Peak memory of one forward (or forward + backward) pass above the memory in use before it.

    method "cuda-allocator" (auto on CUDA): ``torch.cuda.max_memory_allocated`` minus the allocation before the
    call — every tensor the caching allocator handed out, kernel workspaces included.
    method "live-tensors" (auto elsewhere; torch has no CPU allocator statistics): the peak total size of tensor
    storages created by aten ops during the call and still alive, followed with a dispatch mode — activations,
    temporaries, saved-for-backward tensors and gradients; not allocator overhead or scratch memory a kernel
    keeps internally (e.g. oneDNN workspaces), and not parameters or inputs. Deterministic, so curves are clean.
    """
    args, kwargs = _as_inputs(model, inputs)
    dev, args, kwargs = _place(model, args, kwargs, device)
    if method == "auto":
        method = "cuda-allocator" if dev.type == "cuda" else "live-tensors"
    was_training = model.training
    model.train(was_training if backward else False)
    gc.collect()
    try:
        if method == "cuda-allocator":
            if dev.type != "cuda":
                raise ValueError(f"method 'cuda-allocator' needs a CUDA model, got device {dev}")
            torch.cuda.synchronize(dev)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            with torch.set_grad_enabled(backward):
                out = model(*args, **kwargs)
                if backward:
                    _backward_through(out)
            torch.cuda.synchronize(dev)
            peak = torch.cuda.max_memory_allocated(dev) - base
            del out
        elif method == "live-tensors":
            existing = list(model.parameters()) + list(model.buffers()) + \
                [t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)]
            tracker = _LiveTensorBytes(existing)
            with torch.set_grad_enabled(backward), tracker:
                out = model(*args, **kwargs)
                if backward:
                    _backward_through(out)
            peak = tracker.peak
            del out
        else:
            raise ValueError(f"method must be 'auto', 'cuda-allocator' or 'live-tensors', got {method!r}")
    finally:
        model.train(was_training)
        if backward:
            model.zero_grad(set_to_none=True)
    return Memory(peak_bytes=int(peak), device=str(dev), method=method, backward=backward)


# --------------------------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------------------------
def scaling(build: str | Callable[..., nn.Module], frames: Sequence[int] = (8,), sizes: Sequence[int] = (224,), *,
            measure: Sequence[str] = ("macs", "latency", "memory"), batch: int = 1, device: str = "cpu",
            warmup: int = 2, iters: int = 5, backward: bool = False, name: str | None = None,
            **build_kwargs):
    """Cost of a model over a grid of clip lengths and resolutions, as a tidy DataFrame ready to plot.

    Args:
        build: a registered model name, or a callable ``build(num_frames=T, img_size=S, **build_kwargs)``.
        frames, sizes: the grid (every T with every S).
        measure: any of "macs" (complexity: params, macs, flops), "latency" (median/IQR ms), "memory" (peak MiB).
        batch, device, warmup, iters, backward: passed to the measurements.
    Returns:
        columns model, frames, size, pixels (T*S*S), params, macs, flops, gmacs, latency_ms, latency_iqr_ms, peak_mb (NaN for what was not measured).
    """
    import pandas as pd
    from .utils import resolve_device

    if isinstance(build, str):
        from .models import create_model
        model_name = build
        build_fn = lambda **kw: create_model(model_name, **kw)  # noqa: E731
    else:
        model_name = name or getattr(build, "__name__", "model")
        build_fn = build
    unknown = set(measure) - {"macs", "latency", "memory"}
    if unknown:
        raise ValueError(f"measure must be among 'macs', 'latency', 'memory', got {sorted(unknown)}")
    dev = resolve_device(device)
    rows = []
    for t in frames:
        for s in sizes:
            model = build_fn(num_frames=t, img_size=s, **build_kwargs).to(dev)
            x = torch.randn(batch, 3, t, s, s, device=dev)
            row = {"model": model_name, "frames": t, "size": s, "pixels": t * s * s,
                   "params": sum(p.numel() for p in model.parameters()),
                   "macs": math.nan, "flops": math.nan, "gmacs": math.nan,
                   "latency_ms": math.nan, "latency_iqr_ms": math.nan, "peak_mb": math.nan}
            if "macs" in measure:
                c = complexity(model, x)
                row.update(macs=c.flops / 2, flops=c.flops, gmacs=c.gmacs)
            if "latency" in measure:
                tm = latency(model, x, warmup=warmup, iters=iters, backward=backward)
                row.update(latency_ms=tm.median_ms, latency_iqr_ms=tm.iqr_ms)
            if "memory" in measure:
                row.update(peak_mb=peak_memory(model, x, backward=backward).peak_mb)
            rows.append(row)
            del model, x
    return pd.DataFrame(rows)
