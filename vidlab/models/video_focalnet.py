"""Video-FocalNet: spatio-temporal focal modulation (Wasim et al., ICCV 2023).

Paper: "Video-FocalNets: Spatio-Temporal Focal Modulation for Video Action Recognition", arXiv 2307.06947.
Official code: https://github.com/TalalWasim/Video-FocalNets (``classification/videofocalnet.py``, commit 39eba99),
built on the 2D FocalNet of Yang et al. (NeurIPS 2022, https://github.com/microsoft/FocalNet).

The idea in one line. Self-attention first lets every query *interact* with every key (an N x N matrix), then
*aggregates* the values. Focal modulation reverses the order: it first *aggregates* the context around every position
(a stack of depthwise convolutions, each seeing further, plus a global average), mixes the levels with learned
per-position gates into a **modulator**, and only then lets the query *interact* with it by an element-wise product::

    y_i = q(x_i) * h( sum_{l=1}^{L+1} g_i^l * z_i^l )                          (FocalNet, eq. 6)

Video-FocalNet computes two such modulators from the same input, **in parallel**: a spatial one (2D, per frame)
and a temporal one (1D over time, per pixel), and multiplies one query by both (paper Sec. 3.2, Fig. 2)::

    y = proj( q * h_s(sum_l g_s^l z_s^l) * h_t(sum_l g_t^l z_t^l) )

Everything else is a per-frame 2D FocalNet, so ImageNet FocalNet weights load by name (`load_image_weights`).

Layout. vidlab clips are (B, 3, T, H, W); the official model takes (B, T, 3, H, W) (we permute). Inside the
network the features are channels-last (B, T, H, W, C). Parameter names follow the official checkpoints verbatim,
so the official state dict loads unchanged (`checkpoint_filter_fn` is a checked identity).

The design space of the paper (Sec. 4.3, Table 6) is one argument, ``design``:
  * ``"parallel"``   (default, released): spatial and temporal modulators both from LN(x), one query.
  * ``"sequential"``: inside each block the spatial modulation runs first; the temporal contexts are aggregated from
    its output q * M_s, which is then modulated by M_t. Same parameters as parallel, different data flow (not the
    paper's "factorised" design, which splits the network into a spatial and a temporal part).
    No code was released for it; this wiring is vidlab's reading of the paper's figure.
  * ``"spatial"``    spatial-only: a 2D FocalNet applied to each frame, time enters only in the final mean.
And ``temporal_conv="depthwise"`` makes the temporal focal convolutions depthwise (groups = C) instead of the
released dense (channel-mixing) ones: a lighter *teaching* variant, not the paper's model (it cannot load the
official temporal weights).

Capture kinds (``vidlab.viz.capture``), recorded by every ``SpatioTemporalFocalModulation`` at
``layers.{s}.blocks.{j}.modulation``:
  * ``modulator``           (B, C, T, H, W)   spatial modulator M_s = h(sum_l g_s^l z_s^l)
  * ``gates``               (B, L+1, T, H, W) spatial gates g_s (levels 1..L, then global)
  * ``modulator_temporal``  (B, C, T, H, W)   temporal modulator M_t (absent for design="spatial")
  * ``gates_temporal``      (B, L+1, T, H, W) temporal gates g_t (absent for design="spatial")
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..viz.capture import record
from .layers import DropPath, Mlp, check_clip, count_params, trunc_normal_
from .registry import ModelInfo, Recipe, register_model

DESIGNS = ("parallel", "sequential", "spatial")
TEMPORAL_CONVS = ("dense", "depthwise")


# ----------------------------------------------------------------------------------------------------------------
# Focal modulation
# ----------------------------------------------------------------------------------------------------------------

def _gated_aggregation(ctx: torch.Tensor, gates: torch.Tensor, focal_layers: nn.ModuleList,
                       dims: tuple[int, ...]) -> torch.Tensor:
    """Hierarchical contextualisation + gated aggregation (FocalNet eqs. 3-5), channels-first.

    ctx (N, C, *S) -> z_1 = focal_layers[0](ctx), z_l = focal_layers[l-1](z_{l-1}) (each level sees further);
    z_{L+1} = GELU(mean over `dims` of z_L) (the global level); returns sum_l gates[:, l] * z_l, shape (N, C, *S).
    gates (N, L+1, *S) are scalars per position, broadcast over channels.
    """
    ctx_all = 0
    for level, layer in enumerate(focal_layers):
        ctx = layer(ctx)                                              # z_l: receptive field grows with l
        ctx_all = ctx_all + ctx * gates[:, level:level + 1]
    ctx_global = F.gelu(ctx.mean(dims, keepdim=True))                 # z_{L+1}: one vector per frame / per pixel
    return ctx_all + ctx_global * gates[:, len(focal_layers):]


def temporal_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """`conv` (a Conv1d over time: weight (C_out, C_in / groups, k), padding k // 2) on frame-major features.

    x (B, T, M, C_in), M positions per frame -> (B, T, M, C_out): the numbers of `conv` applied to each
    position's time series (B*M sequences of length T), without moving time to the last axis. The released dense
    conv (groups = 1) on wide channels runs as one GEMM over the k taps (im2col: (B*T*M, C_in*k) @ (C_in*k,
    C_out)); on a CPU at T = 4-8 that is 1.3-2x faster than oneDNN's Conv1d, forward and backward, for
    C_in >= 256 (docs/faithfulness.md); narrower or depthwise convs run as the Conv1d itself.
    """
    B, T, M, C = x.shape
    k, pad = conv.kernel_size[0], conv.padding[0]
    if conv.groups == 1 and C >= 256 and pad == k // 2 and conv.stride[0] == 1 and conv.dilation[0] == 1:
        cols = F.pad(x, (0, 0, 0, 0, pad, pad)).unfold(1, k, 1)           # (B, T, M, C_in, k): the k taps
        y = cols.reshape(B * T * M, C * k) @ conv.weight.reshape(conv.out_channels, C * k).t()
        y = y.view(B, T, M, conv.out_channels)
        return y if conv.bias is None else y + conv.bias
    y = conv(x.permute(0, 2, 3, 1).reshape(B * M, C, T))                  # (B*M, C_out, T)
    # back to frame-major and contiguous: GELU's backward on the permuted view runs several times slower
    return y.view(B, M, -1, T).permute(0, 3, 1, 2).contiguous()


class SpatioTemporalFocalModulation(nn.Module):
    """Spatio-temporal focal modulation (paper Sec. 3.2): (B, T, H, W, C) -> (B, T, H, W, C).

    Spatial branch (per frame):  [q | z_0 | g] = f(x);  z_l = GELU(DWConv2d_{k_l}(z_{l-1}));  M_s = h(sum g_l z_l).
    Temporal branch (per pixel): [z_0 | g] = f_temporal(x);  z_l = GELU(Conv1d_{k_l}(z_{l-1})) over T;
    M_t = h_temporal(sum g_l z_l). Output: proj(q * M_s * M_t). Kernel sizes k_l = focal_factor * l + focal_window.

    Records ``modulator``, ``gates`` (B, C|L+1, T, H, W) and, unless design="spatial", ``modulator_temporal``,
    ``gates_temporal`` with the same shapes.

    Layout (speed only, same numbers): the spatial depthwise convs run on channels-last (NHWC) tensors, ~3x
    faster forward + backward on a CPU than NCHW, and `h` (a 1x1 conv) runs as the linear layer it is; the
    temporal branch stays frame-major (B, T, H*W, C) and convolves over T with `temporal_conv`. Parameter names
    and shapes are the released ones.
    """

    def __init__(self, dim: int, focal_level: int = 2, focal_window: int = 3, focal_factor: int = 2,
                 design: str = "parallel", temporal_conv: str = "dense", proj_drop: float = 0.0,
                 use_postln_in_modulation: bool = False, normalize_modulator: bool = False,
                 temporal_init: str = "default"):
        super().__init__()
        self.dim, self.focal_level, self.design = dim, focal_level, design
        self.normalize_modulator = normalize_modulator
        kernel_sizes = [focal_factor * level + focal_window for level in range(focal_level)]
        self.kernel_sizes = kernel_sizes

        # spatial branch: one linear gives query, level-0 context and L+1 gates (rows in that order)
        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False), nn.GELU())
            for k in kernel_sizes)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)                   # 1x1 conv = per-position linear
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

        if design != "spatial":
            # temporal branch: context and gates only, the query is shared with the spatial branch
            groups = dim if temporal_conv == "depthwise" else 1      # released: dense, weight (C, C, k)
            self.f_temporal = nn.Linear(dim, dim + focal_level + 1)
            self.focal_layers_temporal = nn.ModuleList(
                nn.Sequential(nn.Conv1d(dim, dim, k, padding=k // 2, groups=groups, bias=False), nn.GELU())
                for k in kernel_sizes)
            self.h_temporal = nn.Conv1d(dim, dim, kernel_size=1)
            if temporal_init == "identity":
                # M_t = h_temporal(A_t) = 1 whatever A_t: q * M_s * M_t = q * M_s, so the block starts as the 2D
                # block its spatial weights come from (frame pretraining or ImageNet), as an inflated image model
                # should; h_temporal's weight gets gradient at once, the temporal convolutions from the second
                # step on (as ILA's zero-initialised skips)
                nn.init.zeros_(self.h_temporal.weight)
                nn.init.ones_(self.h_temporal.bias)
        # official options, off in every released Video-FocalNet: a LayerNorm on q * M_s * M_t before `proj`,
        # which rescales the product of three factors to unit size; and the aggregated contexts divided by L + 1
        # (`normalize_modulator`)
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def spatial_modulator(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, H, W, C) -> query (B, T, H, W, C), M_s (B*T, H, W, C), gates (B*T, L+1, H, W)."""
        B, T, H, W, C = x.shape
        x = self.f(x.reshape(B * T, H, W, C))                         # (B*T, H, W, 2C+L+1)
        q, ctx, gates = torch.split(x, (C, C, self.focal_level + 1), dim=-1)
        ctx = ctx.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)   # (B*T, C, H, W), NHWC
        ctx_all = _gated_aggregation(ctx, gates.permute(0, 3, 1, 2), self.focal_layers, dims=(2, 3))
        if self.normalize_modulator:
            ctx_all = ctx_all / (self.focal_level + 1)
        m_s = F.linear(ctx_all.permute(0, 2, 3, 1), self.h.weight[:, :, 0, 0], self.h.bias)  # h: 1x1 conv = linear
        return q.reshape(B, T, H, W, C), m_s, gates.permute(0, 3, 1, 2)

    def temporal_modulator(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, H, W, C) -> M_t (B, T, H, W, C), gates (B, T, H, W, L+1): each pixel's time series alone.

        The equations of `_gated_aggregation` with time as the only position axis, kept frame-major (channels
        last) so that no permute of the features is needed; `temporal_conv` convolves over T."""
        B, T, H, W, C = x.shape
        L = self.focal_level
        ctx, gates = torch.split(self.f_temporal(x.reshape(B, T, H * W, C)), (C, L + 1), dim=-1)
        ctx_all = 0
        for level, (conv, act) in enumerate(self.focal_layers_temporal):
            ctx = act(temporal_conv(ctx, conv))                       # z_l: (B, T, H*W, C)
            ctx_all = ctx_all + ctx * gates[..., level:level + 1]
        ctx_all = ctx_all + F.gelu(ctx.mean(1, keepdim=True)) * gates[..., L:]     # global level z_{L+1}
        if self.normalize_modulator:
            ctx_all = ctx_all / (L + 1)
        h = self.h_temporal                                           # 1x1 Conv1d = per-step linear
        m_t = F.linear(ctx_all, h.weight[:, :, 0], h.bias)
        return m_t.view(B, T, H, W, C), gates.view(B, T, H, W, L + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H, W, C = x.shape

        def frames_first(t):   # (B*T, c, H, W) -> (B, c, T, H, W)
            return t.reshape(B, T, *t.shape[1:]).transpose(1, 2)

        def channels_first(t):   # (B, T, H, W, c) -> (B, c, T, H, W)
            return t.permute(0, 4, 1, 2, 3)

        q, m_s, g_s = self.spatial_modulator(x)
        record(self, "modulator", lambda: frames_first(m_s.permute(0, 3, 1, 2)))
        record(self, "gates", lambda: frames_first(g_s))
        m_s = m_s.reshape(B, T, H, W, C)
        y = q * m_s                                                   # interaction, spatial
        if self.design != "spatial":
            # parallel (released): temporal contexts from the same input x; sequential: from q * M_s
            m_t, g_t = self.temporal_modulator(x if self.design == "parallel" else y)
            record(self, "modulator_temporal", lambda: channels_first(m_t))
            record(self, "gates_temporal", lambda: channels_first(g_t))
            y = y * m_t                                                # (B, T, H, W, C)
        if self.ln is not None:
            y = self.ln(y)
        return self.proj_drop(self.proj(y))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_sizes={self.kernel_sizes}, design={self.design!r}"


class VideoFocalNetBlock(nn.Module):
    """Pre-norm block: x + DP(FM(LN x)), then x + DP(MLP(LN x)). (B, T, H, W, C) -> (B, T, H, W, C).

    Stochastic depth drops whole *frames* (the official code runs blocks on a B*T batch). Records the kinds of
    its `modulation` (see `SpatioTemporalFocalModulation`).
    """

    def __init__(self, dim: int, cfg: "VideoFocalNetConfig", drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = SpatioTemporalFocalModulation(dim, cfg.focal_level, cfg.focal_window, cfg.focal_factor,
                                                        cfg.design, cfg.temporal_conv, cfg.drop_rate,
                                                        cfg.use_postln_in_modulation, cfg.normalize_modulator,
                                                        cfg.temporal_init)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), drop=cfg.drop_rate)

    def _dp(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(x.flatten(0, 1)).view_as(x)             # per frame: (B*T, H, W, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._dp(self.modulation(self.norm1(x)))
        return x + self._dp(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Per-frame patch embedding: Conv2d(k=s=patch) + LayerNorm. (B, T, H, W, C) | (B, 3, T, H, W) -> (B, T', h, w, C').

    The stem (``is_stem``) takes the clip (B, 3, T, H, W); with ``tubelet_size`` > 1 it is a Conv3d
    (tubelet, p, p) that also shortens time (official option, unused in the released models). The downsampling
    layers between stages take channels-last features.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, tubelet_size: int = 1, is_stem: bool = False):
        super().__init__()
        self.is_stem, self.tubelet_size = is_stem, tubelet_size
        if tubelet_size == 1:
            self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        else:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel, stride=kernel)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_stem and self.tubelet_size > 1:
            x = self.proj(x).permute(0, 2, 3, 4, 1)                   # (B, T', h, w, C)
            return self.norm(x)
        if self.is_stem:
            B, _, T, H, W = x.shape
            x = x.transpose(1, 2).reshape(B * T, -1, H, W)            # (B*T, 3, H, W): frames as images
        else:
            B, T, H, W, C = x.shape
            x = x.reshape(B * T, H, W, C).permute(0, 3, 1, 2)         # (B*T, C, H, W)
        x = self.proj(x)                                              # (B*T, C', h, w)
        x = x.reshape(B, T, *x.shape[1:]).permute(0, 1, 3, 4, 2)      # (B, T, h, w, C')
        return self.norm(x)


class BasicLayer(nn.Module):
    """One stage: `depth` blocks at width `dim`, then (stages 1-3) a 2x2 per-frame downsample to `out_dim`.

    (B, T, H, W, dim) -> (B, T, H/2, W/2, out_dim) (or unchanged size in the last stage). No temporal downsampling.
    """

    def __init__(self, dim: int, out_dim: int | None, depth: int, cfg: "VideoFocalNetConfig", drop_paths: list):
        super().__init__()
        self.blocks = nn.ModuleList(VideoFocalNetBlock(dim, cfg, dp) for dp in drop_paths)
        self.downsample = PatchEmbed(dim, out_dim, 2) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


# ----------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class VideoFocalNetConfig:
    num_classes: int = 400                  # classifier outputs (0: no head, forward returns features)
    num_frames: int = 8                     # T the model is built for (the temporal branch needs a fixed T)
    img_size: int = 224                     # input side; a multiple of 32 (4x stem, three 2x downsamples)
    in_chans: int = 3                       # input channels
    patch_size: int = 4                     # stem patch size (per frame)
    tubelet_size: int = 1                   # frames per stem token; 1 in every released model
    embed_dim: int = 96                     # C of stage 1; stages are C * [1, 2, 4, 8]
    depths: tuple = (2, 2, 6, 2)            # blocks per stage
    mlp_ratio: float = 4.0                  # MLP hidden = mlp_ratio * C
    focal_level: int = 2                    # L: number of conv levels (plus one global level)
    focal_window: int = 3                   # kernel of the first level
    focal_factor: int = 2                   # kernel grows by this per level: 3, 5, ...
    drop_rate: float = 0.0                  # dropout after proj / in the MLP (0 in all releases)
    drop_path_rate: float = 0.2             # stochastic depth, linear 0 -> rate over all blocks
    design: str = "parallel"                # "parallel" (released) | "sequential" (within a block) | "spatial" (2D)
    temporal_conv: str = "dense"            # "dense" (released, mixes channels) | "depthwise" (teaching variant)
    use_postln_in_modulation: bool = False  # official option: LayerNorm on q * M_s * M_t before proj (off in releases)
    normalize_modulator: bool = False       # official option: contexts divided by focal_level + 1 (off in releases)
    init_std: float | None = 0.02           # Linear weights ~ trunc-normal(init_std) as released; None: std 1/sqrt(fan_in)
    temporal_init: str = "default"          # h_temporal: "default" (released: PyTorch's Conv1d init) | "identity"
                                            # (weight 0, bias 1: M_t = 1, each block starts as the spatial design)

    def __post_init__(self):
        if self.design not in DESIGNS:
            raise ValueError(f"design must be one of {DESIGNS}, got {self.design!r}")
        if self.temporal_conv not in TEMPORAL_CONVS:
            raise ValueError(f"temporal_conv must be one of {TEMPORAL_CONVS}, got {self.temporal_conv!r}")
        if self.temporal_init not in ("default", "identity"):
            raise ValueError(f"temporal_init must be 'default' or 'identity', got {self.temporal_init!r}")
        stride = self.patch_size * 2 ** (len(self.depths) - 1)
        if self.img_size % stride:
            raise ValueError(f"img_size must be a multiple of {stride}, got {self.img_size}")
        if self.num_frames % self.tubelet_size:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of tubelet_size "
                             f"({self.tubelet_size})")
        self.depths = tuple(self.depths)


class VideoFocalNet(nn.Module):
    """Video-FocalNet: (B, 3, T, H, W) normalised clip -> (B, num_classes) logits.

    Stem (per-frame 4x4 patches) -> 4 stages of `VideoFocalNetBlock`s at widths C*[1, 2, 4, 8] and strides
    4, 8, 16, 32 -> LayerNorm -> mean over each frame's tokens -> mean over frames -> Linear head.
    Capture kinds: see the module docstring (``modulator``, ``gates``, ``modulator_temporal``, ``gates_temporal``).
    """

    def __init__(self, cfg: VideoFocalNetConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.depths)
        dims = [cfg.embed_dim * 2 ** i for i in range(n)]
        self.num_features = dims[-1]
        self.patch_embed = PatchEmbed(cfg.in_chans, dims[0], cfg.patch_size, cfg.tubelet_size, is_stem=True)
        total = sum(cfg.depths)
        dpr = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]   # linear 0 -> rate
        self.layers = nn.ModuleList()
        for i, depth in enumerate(cfg.depths):
            start = sum(cfg.depths[:i])
            self.layers.append(BasicLayer(dims[i], dims[i + 1] if i < n - 1 else None, depth, cfg,
                                          dpr[start:start + depth]))
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)     # Linear and LayerNorm only: h_temporal keeps its temporal_init

    def _init_weights(self, m: nn.Module) -> None:
        # as released: Linear trunc-normal(.02)/0, LayerNorm 1/0, convolutions keep PyTorch's default
        if isinstance(m, nn.Linear):
            std = self.cfg.init_std if self.cfg.init_std is not None else m.in_features ** -0.5
            trunc_normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> pooled features (B, 8C)."""
        check_clip(x, self.cfg.in_chans, self.cfg.num_frames)
        x = self.patch_embed(x)                                       # (B, T, H/4, W/4, C)
        for layer in self.layers:
            x = layer(x)                                              # (B, T, H/32, W/32, 8C) at the end
        x = self.norm(x)
        return x.mean(dim=(2, 3)).mean(dim=1)                         # tokens of each frame, then frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def num_params(self) -> int:
        return count_params(self)


# ----------------------------------------------------------------------------------------------------------------
# Weights: official checkpoints and ImageNet initialisation
# ----------------------------------------------------------------------------------------------------------------

def checkpoint_filter_fn(state_dict: dict, model: VideoFocalNet) -> dict:
    """Official Video-FocalNets checkpoint (``ckpt['model']``) -> vidlab state dict.

    vidlab keeps the official names and shapes (``layers.{s}.blocks.{j}.modulation.f`` etc., docs/architectures.md
    §1.5), so this is an identity that drops nothing; it only strips ``module.`` / ``backbone.`` prefixes if
    present, upcasts fp16 tensors (an AMP save) and rejects official *temporal* weights for the depthwise
    teaching variant, whose convs have another shape. The released file's other entries (``optimizer``,
    ``lr_scheduler``, ``max_accuracy``, ``epoch``, the yacs ``config``, apex ``amp``) sit beside ``model`` and are
    not read; a non-tensor entry inside the state dict is refused by name. The model has no buffers.
    """
    from .official import unwrap_official
    out = unwrap_official(state_dict, ("module.", "backbone."), "Video-FocalNet")
    if isinstance(model, VideoFocalNet) and model.cfg.temporal_conv == "depthwise":
        dense = [k for k, v in out.items() if "focal_layers_temporal" in k and v.shape[1] != 1]
        if dense:
            raise ValueError(f"{len(dense)} dense temporal conv weights (official layout, e.g. {dense[0]}) cannot "
                             "load into temporal_conv='depthwise' (a different model); build it with 'dense'")
    return out


def load_image_weights(model: VideoFocalNet, path, reinit_head: bool = True) -> dict:
    """Initialise from a 2D ImageNet FocalNet checkpoint (microsoft/FocalNet ``focalnet_{tiny,small,base}_srf.pth``).

    Every 2D tensor loads by name (the video model *is* a per-frame FocalNet plus the temporal layers); only the
    temporal tensors (``f_temporal``, ``focal_layers_temporal``, ``h_temporal``: 6 per block) stay new. As in the
    official training script, a classifier of another size is replaced by a fresh one (weight and bias
    trunc-normal .02) and a tubelet stem gets the 2D kernel repeated over time / tubelet_size.
    Returns {"loaded", "missing", "unexpected", "reinitialised"} (lists of key names).
    """
    from .official import check_and_load, find_state_dict, load_checkpoint, strip_prefix

    sd = strip_prefix(find_state_dict(load_checkpoint(path)))
    own = model.state_dict()
    reinit = []
    for k in ("head.weight", "head.bias"):
        if k in sd and k in own and sd[k].shape != own[k].shape:
            if not reinit_head:
                raise ValueError(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}")
            sd[k] = trunc_normal_(torch.empty_like(own[k]), std=0.02)
            reinit.append(k)
    w = sd.get("patch_embed.proj.weight")
    if w is not None and w.ndim == 4 and own["patch_embed.proj.weight"].ndim == 5:
        ts = own["patch_embed.proj.weight"].shape[2]
        sd["patch_embed.proj.weight"] = w.unsqueeze(2).repeat(1, 1, ts, 1, 1) / ts
    report = check_and_load(model, sd, strict=False, source=str(path))
    report["reinitialised"] = reinit
    return report


# ----------------------------------------------------------------------------------------------------------------
# Registered variants (paper Table 1 / README; params are exact counts of the official code at 400 classes)
# ----------------------------------------------------------------------------------------------------------------

_PAPER = "Wasim et al., Video-FocalNets: Spatio-Temporal Focal Modulation for Video Action Recognition, ICCV 2023"
_URL = "https://arxiv.org/abs/2307.06947 ; https://github.com/TalalWasim/Video-FocalNets"
_CONV = "thop MACs per view (called GFLOPs), 8x224x224, 4 clips x 3 crops at test"
_NOTES = ("Parallel spatio-temporal focal modulation as released; temporal focal convs are dense (channel-mixing) "
          "in the code (34.8% of Video-FocalNet-T's parameters; the whole temporal branch 43.6% of its parameters and 44% "
          "of its MACs). Official input layout (B,T,3,H,W); vidlab permutes. "
          "Drop path drops whole frames (B*T batch).")


def _build(num_classes, num_frames, img_size, **kw) -> VideoFocalNet:
    return VideoFocalNet(VideoFocalNetConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size,
                                             **kw))


@register_model(info=ModelInfo(
    paper=_PAPER, url=_URL, variant="Video-FocalNet-T", input="8x224x224", views="4x3",
    params_reported=None, params_official=49_553_272, gflops_reported=63.0, flops_convention=_CONV,
    top1={"K400": 79.8}, pretrained_layouts=("official Video-FocalNets ckpt['model']",), notes=_NOTES +
    " Recomputed 63.14 GMAC per view (fvcore/thop convention) matches the reported 63."),
    converter=checkpoint_filter_fn)
def video_focalnet_tiny(num_classes=400, num_frames=8, img_size=224, **kw):
    kw = {"embed_dim": 96, "depths": (2, 2, 6, 2), "drop_path_rate": 0.2, **kw}
    return _build(num_classes, num_frames, img_size, **kw)


@register_model(info=ModelInfo(
    paper=_PAPER, url=_URL, variant="Video-FocalNet-S", input="8x224x224", views="4x3",
    params_reported=None, params_official=88_735_168, gflops_reported=124.0, flops_convention=_CONV,
    top1={"K400": 81.4}, pretrained_layouts=("official Video-FocalNets ckpt['model']",), notes=_NOTES +
    " Recomputed 124.54 GMAC per view matches the reported 124."),
    converter=checkpoint_filter_fn)
def video_focalnet_small(num_classes=400, num_frames=8, img_size=224, **kw):
    kw = {"embed_dim": 96, "depths": (2, 2, 18, 2), "drop_path_rate": 0.3, **kw}
    return _build(num_classes, num_frames, img_size, **kw)


@register_model(info=ModelInfo(
    paper=_PAPER, url=_URL, variant="Video-FocalNet-B", input="8x224x224", views="4x3",
    params_reported=None, params_official=157_389_216, gflops_reported=149.0, flops_convention=_CONV,
    top1={"K400": 83.6, "K600": 86.7, "SSv2": 71.1, "Diving-48": 90.8, "ActivityNet": 89.8},
    pretrained_layouts=("official Video-FocalNets ckpt['model']",), notes=_NOTES +
    " Reported 149 GFLOPs vs recomputed 220.9 GMAC per view: the released B config cannot give 149 (the 2D "
    "FocalNet-B alone is ~15.4 GMAC per frame, >= 123 for 8 frames; the temporal branch adds 98.7); T and S "
    "match exactly, so the paper's B number is inconsistent with the code."),
    converter=checkpoint_filter_fn)
def video_focalnet_base(num_classes=400, num_frames=8, img_size=224, **kw):
    kw = {"embed_dim": 128, "depths": (2, 2, 18, 2), "drop_path_rate": 0.5, **kw}
    return _build(num_classes, num_frames, img_size, **kw)


# The nano size (vidlab's, not in the paper): C 32, depths 1-1-2-1, the released block. Its recipe starts from the
# frame pretraining of the 2D FocalNet (design "spatial"), and the temporal modulator at 1 (temporal_init="identity"),
# so the video model starts as the pretrained 2D model; three warm-up epochs (one let a seed-0 run diverge in its
# fourth epoch: docs/findings.md).
_NANO_RECIPE = Recipe(lr=5e-4, adam_eps=1e-12, warmup_epochs=3.0, epochs=18, batch_size=16, num_frames=8, img_size=32,
                      stream_clips=2400, pretrain={"model": {"design": "spatial"}})
_NANO_SIZE = {"embed_dim": 32, "depths": (1, 1, 2, 1), "drop_path_rate": 0.0, "temporal_init": "identity"}
_NANO_FLOPS = ("vidlab MACs per view (fvcore convention): 0.063 G at its 8x32x32 input; 1.016 G at 8x128x128, as "
               "counted on the official definition")


@register_model(recipe=_NANO_RECIPE, info=ModelInfo(
    paper=_PAPER, url=_URL, variant="vidlab nano (C 32, depths 1-1-2-1)", views="1x1",
    params_reported=None, params_official=2_587_118, gflops_reported=None, flops_convention=_NANO_FLOPS, top1={},
    notes="vidlab's teaching size (not in the paper); same block as the released models, trains on a 2-core CPU in "
          "minutes."),
    converter=checkpoint_filter_fn)
def video_focalnet_nano(num_classes=400, num_frames=8, img_size=32, **kw):
    return _build(num_classes, num_frames, img_size, **{**_NANO_SIZE, **kw})


# The design space (paper Sec. 4.3, Table 6) at nano size, for notebook 03: the sequential and spatial-only designs,
# registered with video_focalnet_nano's size and recipe (the same frame pretraining, shared in the zoo), so that the
# three designs differ only in the design; the frame-order test then shows which can see the order of the frames.
def _design_space_info(design: str) -> ModelInfo:
    return ModelInfo(paper=_PAPER, url=_URL, variant=f"vidlab nano, {design}", views="1x1",
                     flops_convention=_NANO_FLOPS, top1={}, study="design space (notebook 03)",
                     notes=f"video_focalnet_nano with {design}, trained with video_focalnet_nano's recipe for the "
                           "design-space comparison of notebook 03 (section 4).")


@register_model(recipe=_NANO_RECIPE, info=_design_space_info("design='sequential' (vidlab's reading: no code was released)"),
                converter=checkpoint_filter_fn)
def video_focalnet_sequential_nano(num_classes=400, num_frames=8, img_size=32, **kw):
    return _build(num_classes, num_frames, img_size, **{**_NANO_SIZE, "design": "sequential", **kw})


@register_model(recipe=_NANO_RECIPE, info=_design_space_info("design='spatial' (a 2D FocalNet per frame, no temporal branch)"),
                converter=checkpoint_filter_fn)
def video_focalnet_spatial_nano(num_classes=400, num_frames=8, img_size=32, **kw):
    return _build(num_classes, num_frames, img_size, **{**_NANO_SIZE, "design": "spatial", **kw})
