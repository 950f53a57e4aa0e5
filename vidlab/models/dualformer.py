"""DualFormer: local-global stratified attention for video (Liang et al., ECCV 2022).

Full space-time attention lets each of the N = T'H'W' tokens look at all N others: O(N^2). DualFormer splits
("stratifies") it into two cascaded levels that alternate inside every stage:

* **LW-MSA** (`LocalWindowAttention`, even blocks): attention inside non-overlapping local 3D windows of
  (8, 7, 7) tokens, fine-grained and short-range: each query sees Nw = 392 keys.
* **GP-MSA** (`GlobalPyramidAttention`, odd blocks): every query attends to a small *global pyramid* of pooled
  keys and values, a fine level (depthwise strided conv to an (8, 7, 7) grid) and, in the first two stages, a
  coarse level (to (4, 4, 4)): 392 + 64 = 456 keys instead of 50,176 in stage 0. In the last stage the grid is
  already (16, 7, 7), so GP-MSA is plain global attention.

The only position encoding is a PEG (depthwise 3x3x3 conv, residual) after the first block of each stage. The
stem is a 2x4x4 tubelet embedding; stages 1-3 merge 2x2 patches in space only (time is halved once, in the stem).
Head: global average pool -> dropout -> linear (mmaction's I3DHead).

This file implements the released computation (sail-sg/dualformer @ 058c10c). The pyramid pooling convolutions
floor as released: where a stage's grid is not a multiple of a pooling kernel (e.g. the coarse level's fixed
(1, 7, 7) step on a 32 x 16 grid), the leftover rows/columns are not pooled. `pyramid_pad=True` (vidlab's option)
zero-pads the grid to a multiple of the kernel instead, so every token reaches the pyramid; it changes the
function only at such sizes (docs/faithfulness.md measures it). Two extensions leave the released sizes unchanged:
any clip size runs (LW windows are padded and the padded keys masked, as Swin does; the release asserts that the
windows divide the grid), and the first coarse-pooling kernel is a config field (the release hard-codes 7).
Official checkpoints convert with `checkpoint_filter_fn`; ImageNet weights of the image model inflate with
`load_image_weights`.

Capture kinds (``vidlab.viz.capture``), recorded per block:
    ``stages.{s}.blocks.{j}.attn.attention``
      j even, LocalWindowAttention: (B, heads, N, Nw) - for each query token (raster order over the stage grid
        (D, H, W)) its softmax weights over the Nw = wd*wh*ww keys of its own window (raster inside the window;
        padded keys get weight 0). `local_attention_to_grid` scatters a query's row back onto (D, H, W).
      j odd, GlobalPyramidAttention: (B, heads, N, M) - queries to the M pooled keys, first the fine level
        (raster over its grid) then the coarse level. `global_attention_to_grid` splits a row into the two grids.
    Maps are computed only while capturing; otherwise attention runs through F.scaled_dot_product_attention.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..viz.capture import record, wants
from .layers import DropPath, Mlp, PatchEmbed3d, check_clip, init_weights_vit, inflate_state_dict, to_3tuple
from .registry import ModelInfo, Recipe, register_model

Size3 = tuple[int, int, int]


def _pad_to_multiple(x: torch.Tensor, multiple: Sequence[int], channels_last: bool) -> torch.Tensor:
    """Zero-pad the end of the three grid dims of x up to a multiple of `multiple` (Video Swin's padding)."""
    grid = x.shape[1:4] if channels_last else x.shape[2:5]
    pd, ph, pw = ((-s) % m for s, m in zip(grid, multiple))
    if not (pd or ph or pw):
        return x
    pads = (0, pw, 0, ph, 0, pd)                        # F.pad lists the last dim first
    return F.pad(x, ((0, 0) + pads) if channels_last else pads)


class DepthwisePool3d(nn.Conv3d):
    """Depthwise Conv3d with kernel = stride: a learned pooling of each channel over (kd, kh, kw) cells.

    pad=False (the release): (B, C, D, H, W) -> (B, C, D//kd, H//kh, W//kw); rows past the last whole cell are
    not pooled. pad=True: the grid is zero-padded to a multiple of the kernel first -> ceil(D/kd), ... cells,
    so no token is left out.
    """

    def __init__(self, dim: int, kernel: Size3, pad: bool = False):
        super().__init__(dim, dim, kernel_size=kernel, stride=kernel, groups=dim, bias=True)
        self.pad = pad

    def out_grid(self, grid: Sequence[int]) -> Size3:
        """The pooled grid for a (D, H, W) input grid."""
        if self.pad:
            return tuple(-(-g // k) for g, k in zip(grid, self.kernel_size))
        return tuple(g // k for g, k in zip(grid, self.kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_pad_to_multiple(x, self.kernel_size, channels_last=False) if self.pad else x)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", pad=True" if self.pad else "")


def _attend(module: nn.Module, q, k, v, mask, dropout_p: float, layout=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd)) v for (..., heads, Nq, hd) inputs; mask is a bool (..., 1, 1, Nk) keep-mask.

    The fast path is F.scaled_dot_product_attention; only while a capture wants the `attention` map do we form the
    matrix explicitly (same numbers to float rounding) and record it, rearranged by `layout(attn)` when given.
    """
    if not wants(module, "attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5                      # (..., heads, Nq, Nk)
    if mask is not None:
        attn = attn.masked_fill(~mask, float("-inf"))
    attn = attn.softmax(dim=-1)
    record(module, "attention", attn if layout is None else layout(attn))
    return F.dropout(attn, dropout_p, training=dropout_p > 0) @ v


class LocalWindowAttention(nn.Module):
    """LW-MSA, the paper's local window-based MSA: multi-head self-attention inside non-overlapping local 3D windows.

    (B, D, H, W, C) -> (B, D, H, W, C). Windows of `window_size` tokens are taken in raster order over the grid;
    a window larger than the grid shrinks to it, and a grid that does not divide is zero-padded at the end with
    the padded keys masked out, so every real query attends to exactly the real tokens of its window.
    Records ``attention`` (B, heads, D*H*W, Nw): each query's weights over its window's keys.
    """

    def __init__(self, dim: int, num_heads: int, window_size: Size3, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"LocalWindowAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = to_3tuple(window_size)
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)          # rows q | k | v, head h at rows h*hd...
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def effective_window(self, grid: Size3) -> Size3:
        """The window used on a (D, H, W) token grid: the configured one, shrunk to the grid where it is larger."""
        return tuple(min(w, g) for w, g in zip(self.window_size, grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, D, H, W, C = x.shape
        wd, wh, ww = window = self.effective_window((D, H, W))
        x = _pad_to_multiple(x, window, channels_last=True)
        Dp, Hp, Wp = x.shape[1:4]
        nd, nh, nw = Dp // wd, Hp // wh, Wp // ww
        Nw, hd = wd * wh * ww, C // self.num_heads

        # window partition: (B, Dp, Hp, Wp, C) -> (B*nW, Nw, C), windows in (nd, nh, nw) raster order
        x = x.view(B, nd, wd, nh, wh, nw, ww, C).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, Nw, C)
        q, k, v = self.qkv(x).view(-1, Nw, 3, self.num_heads, hd).permute(2, 0, 3, 1, 4)  # 3 x (B*nW, heads, Nw, hd)

        mask = None
        if (Dp, Hp, Wp) != (D, H, W):                            # keep-mask of real tokens, (nW, Nw) -> broadcast
            real = torch.zeros(Dp, Hp, Wp, dtype=torch.bool, device=x.device)
            real[:D, :H, :W] = True
            real = real.view(nd, wd, nh, wh, nw, ww).permute(0, 2, 4, 1, 3, 5).reshape(-1, Nw)
            mask = real.repeat(B, 1)[:, None, None, :]           # (B*nW, 1, 1, Nw)

        def per_query(attn):  # (B*nW, heads, Nw_q, Nw_k) -> (B, heads, D*H*W, Nw_k), queries in grid raster order
            a = attn.view(B, nd, nh, nw, -1, wd, wh, ww, Nw).permute(0, 4, 1, 5, 2, 6, 3, 7, 8)
            a = a.reshape(B, -1, Dp, Hp, Wp, Nw)[:, :, :D, :H, :W]
            return a.reshape(B, -1, D * H * W, Nw)

        out = _attend(self, q, k, v, mask, self.attn_drop if self.training else 0.0, per_query)  # (B*nW, heads, Nw, hd)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(-1, Nw, C)))

        # window reverse: (B*nW, Nw, C) -> (B, Dp, Hp, Wp, C), then drop the padding
        out = out.view(B, nd, nh, nw, wd, wh, ww, C).permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(B, Dp, Hp, Wp, C)
        return out[:, :D, :H, :W].contiguous()


class GlobalPyramidAttention(nn.Module):
    """GP-MSA, the paper's global pyramid-based MSA: every query attends to a global pyramid of pooled keys and values.

    (B, D, H, W, C) -> (B, D, H, W, C). Queries: all N = D*H*W tokens. Keys/values: LN(concat[fine, coarse]),
      fine   = DepthwisePool3d(fine_kernel)(X)                                     (`fine`, the release's `sr`)
      coarse = DWPool(c2)(ReLU(BN(DWPool((1, k1, k1))(X))))   (stages 0-1 only)    (`coarse`, the release's `lr`)
    With fine_kernel = (1, 1, 1) (the last stage) there is no pooling and no LN: plain global MHSA over N keys.
    pad: False pools whole cells only, as released; True zero-pads the grid to whole cells (see DepthwisePool3d).
    Records ``attention`` (B, heads, N, M), M = fine keys then coarse keys (see `pyramid_grids`).
    """

    def __init__(self, dim: int, num_heads: int, fine_kernel: Size3, coarse_kernels: tuple[Size3, Size3] | None,
                 qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0, pad: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"GlobalPyramidAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)           # rows k | v
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.fine_kernel = tuple(fine_kernel)
        self.fine = self.norm = self.coarse = None
        if math.prod(self.fine_kernel) > 1:
            self.fine = DepthwisePool3d(dim, self.fine_kernel, pad)
            self.norm = nn.LayerNorm(dim)
            if coarse_kernels is not None:
                # a 3D pooling factorised into a spatial (1, k1, k1) and a second (c2) step: the release found
                # this ~30% faster than one big (4, 14, 14) kernel
                self.coarse = nn.Sequential(DepthwisePool3d(dim, coarse_kernels[0], pad), nn.BatchNorm3d(dim),
                                            nn.ReLU(), DepthwisePool3d(dim, coarse_kernels[1], pad))

    def pyramid_grids(self, grid: Size3) -> list[Size3]:
        """The pooled grids the keys come from on a (D, H, W) token grid: [fine] or [fine, coarse] (or [grid])."""
        if self.fine is None:
            return [tuple(grid)]
        grids = [self.fine.out_grid(grid)]
        if self.coarse is not None:
            grids.append(self.coarse[3].out_grid(self.coarse[0].out_grid(grid)))
        return grids

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, D, H, W, C = x.shape
        N, hd = D * H * W, C // self.num_heads
        tokens = x.reshape(B, N, C)
        q = self.q(tokens).view(B, N, self.num_heads, hd).transpose(1, 2)          # (B, heads, N, hd)

        if self.fine is None:                                    # last stage: plain global attention
            context = tokens
        else:
            # (B, C, D, H, W), made contiguous: oneDNN's depthwise strided conv runs ~5x slower (forward +
            # backward) on the channels-last view at stage 0 than on NCDHW, far more than this copy costs
            grid = x.permute(0, 4, 1, 2, 3).contiguous()
            levels = [self.fine(grid)]                           # fine level (B, C, D/kd, H/kh, W/kw)
            if self.coarse is not None:
                levels.append(self.coarse(grid))                 # coarse level (B, C, cd, ch, cw)
            context = self.norm(torch.cat([p.flatten(2).transpose(1, 2) for p in levels], dim=1))  # (B, M, C)
        M = context.shape[1]
        k, v = self.kv(context).view(B, M, 2, self.num_heads, hd).permute(2, 0, 3, 1, 4)  # 2 x (B, heads, M, hd)

        out = _attend(self, q, k, v, None, self.attn_drop if self.training else 0.0)     # (B, heads, N, hd)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))
        return out.view(B, D, H, W, C)


class DualFormerBlock(nn.Module):
    """Pre-norm transformer block: x + DP(Attn(LN x)), then x + DP(MLP(LN x)). (B, D, H, W, C) -> same.

    `attn` is a LocalWindowAttention (even block index) or a GlobalPyramidAttention (odd); it records the maps.
    """

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PositionEncodingGenerator(nn.Module):
    """PEG (Chu et al., CPVT), depthwise as in the release: x + DWConv3d_3x3x3(x). (B, D, H, W, C) -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv3d(dim, dim, 3, 1, 1, groups=dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)


@dataclass
class DualFormerConfig:
    num_classes: int = 400
    num_frames: int = 32                       # build-time clip length T; the pyramid kernels are derived from it
    img_size: int = 224                        # build-time frame size (square)
    in_chans: int = 3
    patch_size: Size3 = (2, 4, 4)              # stem tubelet; later stages merge (1, 2, 2)
    embed_dims: tuple = (64, 128, 256, 512)    # channels per stage
    num_heads: tuple = (2, 4, 8, 16)           # heads per stage (head dim 32 in all paper sizes)
    depths: tuple = (2, 2, 10, 4)              # blocks per stage, alternating LW, GP, LW, GP, ...
    mlp_ratio: float = 4.0
    qkv_bias: bool = True                      # all released configs (the class default is False)
    local_sizes: tuple = ((8, 7, 7),) * 4      # LW-MSA window (tokens) per stage
    fine_pysizes: tuple = ((8, 7, 7), (8, 7, 7), (8, 7, 7), (16, 7, 7))  # fine pyramid grid per stage
    coarse_pysize: Size3 = (4, 4, 4)           # coarse pyramid grid
    coarse_stages: int = 2                     # the first stages that also have a coarse level
    coarse_first_kernel: int = 7               # spatial kernel of the first coarse pooling step (release: 7)
    pyramid_pad: bool = False                  # False: pooling drops rows past the last whole kernel (release);
                                               #   True: zero-pad the grid so every token is pooled (vidlab option)
    drop_rate: float = 0.0                     # dropout after attention projections and in MLPs
    attn_drop_rate: float = 0.0                # dropout on attention weights
    drop_path_rate: float = 0.1                # stochastic depth, linear over all blocks
    head_dropout: float = 0.5                  # I3DHead dropout before the classifier

    def stage_grids(self) -> list[Size3]:
        """Token grid (D, H, W) of every stage at the build-time clip size (padded sizes rounded up)."""
        t, h, w = self.patch_size
        grid = (-(-self.num_frames // t), -(-self.img_size // h), -(-self.img_size // w))
        grids = [grid]
        for _ in self.depths[1:]:
            grid = (grid[0], -(-grid[1] // 2), -(-grid[2] // 2))
            grids.append(grid)
        return grids


def pyramid_kernels(cfg: DualFormerConfig, stage: int) -> tuple[Size3, tuple[Size3, Size3] | None]:
    """Fine kernel and the two coarse kernels of a stage, derived from the build-time grid as the release does
    (kernel = grid // pyramid size), but never below 1 and never larger than what is left to pool."""
    grid = cfg.stage_grids()[stage]
    fine = tuple(max(1, g // p) for g, p in zip(grid, cfg.fine_pysizes[stage]))
    if math.prod(fine) == 1 or stage >= cfg.coarse_stages:
        return fine, None
    total = tuple(max(1, g // p) for g, p in zip(grid, cfg.coarse_pysize))        # one (4, 14, 14) pooling...
    k1 = (1, min(cfg.coarse_first_kernel, total[1]), min(cfg.coarse_first_kernel, total[2]))
    k2 = tuple(max(1, a // b) for a, b in zip(total, k1))                         # ...as (1, 7, 7) then (4, 2, 2)
    return fine, (k1, k2)


class DualFormerStage(nn.Module):
    """Patch merging (Conv3d + LN), then blocks alternating LW-MSA / GP-MSA, with a PEG after block 0.

    (B, C_in, T, H, W) -> (B, C, T/pt, H/ph, W/pw) channels-first (inputs not divisible by the patch are padded).
    """

    def __init__(self, cfg: DualFormerConfig, stage: int, drop_path: Sequence[float]):
        super().__init__()
        dim, heads = cfg.embed_dims[stage], cfg.num_heads[stage]
        in_dim = cfg.in_chans if stage == 0 else cfg.embed_dims[stage - 1]
        self.patch = cfg.patch_size if stage == 0 else (1, 2, 2)
        self.embed = PatchEmbed3d(self.patch, in_dim, dim, norm=True, flatten=False)
        fine, coarse = pyramid_kernels(cfg, stage)
        blocks = []
        for j in range(cfg.depths[stage]):
            if j % 2 == 0:
                attn = LocalWindowAttention(dim, heads, cfg.local_sizes[stage], cfg.qkv_bias,
                                            cfg.attn_drop_rate, cfg.drop_rate)
            else:
                attn = GlobalPyramidAttention(dim, heads, fine, coarse, cfg.qkv_bias, cfg.attn_drop_rate,
                                              cfg.drop_rate, pad=cfg.pyramid_pad)
            blocks.append(DualFormerBlock(dim, attn, cfg.mlp_ratio, cfg.drop_rate, drop_path[j]))
        self.blocks = nn.ModuleList(blocks)
        self.peg = PositionEncodingGenerator(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(_pad_to_multiple(x, self.patch, channels_last=False))   # (B, C, D, H, W), LN over C
        x = x.permute(0, 2, 3, 4, 1)                                            # (B, D, H, W, C)
        for j, block in enumerate(self.blocks):
            x = block(x)
            if j == 0:
                x = self.peg(x)
        return x.permute(0, 4, 1, 2, 3)                                         # (B, C, D, H, W)


class DualFormer(nn.Module):
    """DualFormer video classifier. (B, 3, T, H, W) normalised clip -> (B, num_classes) logits.

    `forward_feature_map(x)` gives the final normalised grid (B, C, T/2, H/32, W/32) (for Grad-CAM),
    `forward_features(x)` the pooled (B, C) features. Capture kinds: see the module docstring.
    """

    def __init__(self, cfg: DualFormerConfig):
        super().__init__()
        self.cfg = cfg
        n = sum(cfg.depths)
        dpr = [cfg.drop_path_rate * i / max(n - 1, 1) for i in range(n)]      # linear decay rule
        starts = [sum(cfg.depths[:s]) for s in range(len(cfg.depths))]
        self.stages = nn.ModuleList(DualFormerStage(cfg, s, dpr[starts[s]:starts[s] + d])
                                    for s, d in enumerate(cfg.depths))
        self.norm = nn.LayerNorm(cfg.embed_dims[-1])
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(cfg.embed_dims[-1], cfg.num_classes)
        # release init: Linear trunc-normal(.02)/0, LN 1/0; Conv3d/BN3d keep PyTorch's defaults; head normal(.01)
        self.apply(init_weights_vit)
        if not self.head.weight.is_meta:                    # (meta builds: torch's normal_ ref takes seconds)
            nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, self.cfg.in_chans)
        for stage in self.stages:
            x = stage(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)     # (B, C, D, H, W)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map(x).mean(dim=(2, 3, 4))                 # (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)))


# --- reading the captured maps -----------------------------------------------------------------------------------

def local_attention_to_grid(attn: torch.Tensor, grid: Size3, window: Size3, query: int) -> torch.Tensor:
    """Scatter one query's row of a captured LW-MSA map onto the token grid.

    attn (B, heads, D*H*W, Nw) from capture, grid (D, H, W) of that stage, window = the module's
    `effective_window(grid)`, query = raster index. Returns (B, heads, D, H, W), zero outside the query's window.
    """
    D, H, W = grid
    wd, wh, ww = window
    B, heads = attn.shape[:2]
    d, h, w = query // (H * W), query // W % H, query % W
    o = (d // wd * wd, h // wh * wh, w // ww * ww)                              # window origin
    row = attn[:, :, query].reshape(B, heads, wd, wh, ww)
    full = attn.new_zeros(B, heads, max(D, o[0] + wd), max(H, o[1] + wh), max(W, o[2] + ww))  # room for padding
    full[:, :, o[0]:o[0] + wd, o[1]:o[1] + wh, o[2]:o[2] + ww] = row
    return full[:, :, :D, :H, :W]


def global_attention_to_grid(attn: torch.Tensor, grids: Sequence[Size3], query: int) -> list[torch.Tensor]:
    """Split one query's row of a captured GP-MSA map into its pyramid levels.

    attn (B, heads, N, M) from capture, grids = the module's `pyramid_grids(stage grid)`. Returns one
    (B, heads, *grid) tensor per level (fine first, then coarse)."""
    row, out, i = attn[:, :, query], [], 0
    for g in grids:
        n = math.prod(g)
        out.append(row[..., i:i + n].reshape(*row.shape[:2], *g))
        i += n
    if i != row.shape[-1]:
        raise ValueError(f"pyramid grids {list(grids)} hold {i} keys, the map has {row.shape[-1]}")
    return out


# --- official checkpoints and image weights ----------------------------------------------------------------------

def _rename_official(key: str) -> str:
    """One official (mmaction) DualFormer key, prefixes already stripped, -> vidlab's name."""
    key = re.sub(r"^patch_embeds\.(\d+)\.", r"stages.\1.embed.", key)           # PatchEmbed: proj (Conv3d), norm
    key = re.sub(r"^pos_block\.(\d+)\.proj\.0\.", r"stages.\1.peg.proj.", key)  # PosCNN's Sequential(conv)
    key = re.sub(r"^blocks\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2.", key)
    key = key.replace(".attn.sr.", ".attn.fine.").replace(".attn.lr.", ".attn.coarse.")
    return re.sub(r"^fc_cls\.", "head.", key)                                    # I3DHead.fc_cls


def checkpoint_filter_fn(state_dict: dict, model: DualFormer) -> dict:
    """Official mmaction checkpoint (`state_dict` with `backbone.` / `cls_head.` prefixes, or flat) -> vidlab keys.

    Renames (after stripping `backbone.`, `cls_head.`, `module.`):
      patch_embeds.{s}.{proj,norm}.*       -> stages.{s}.embed.{proj,norm}.*
      pos_block.{s}.proj.0.*               -> stages.{s}.peg.proj.*
      blocks.{s}.{j}.*                     -> stages.{s}.blocks.{j}.*  (attn.sr -> attn.fine, attn.lr -> attn.coarse)
      norm.*                               -> norm.*
      fc_cls.*                             -> head.*
    The token-labelling head (`cls_head.token_linear.*`) is training-only and dropped. No tensor is reshaped;
    the pyramid kernels are fixed at build time, so a model built for another clip size fails with a hint.
    What a released mmcv file carries besides: `meta` and `optimizer` beside `state_dict` (only the state dict
    is read), BatchNorm running statistics of the coarse branch (loaded), fp16 tensors (upcast); a non-tensor
    entry inside the state dict is refused by name.
    """
    from .official import unwrap_official
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    out = {}
    for k, v in unwrap_official(state_dict, ("module.", "backbone.", "cls_head."), "DualFormer (mmaction)").items():
        if k.startswith("token_linear."):
            continue
        out[_rename_official(k)] = v
    own = model.state_dict()
    bad = [k for k in out if ".attn.fine." in k or ".attn.coarse." in k if k in own and out[k].shape != own[k].shape]
    if bad:
        k = bad[0]
        raise CheckpointError(
            f"pyramid kernel {k}: checkpoint {tuple(out[k].shape)} vs model {tuple(own[k].shape)}; the model was "
            f"built for a {model.cfg.num_frames}x{model.cfg.img_size}^2 clip - official checkpoints need "
            f"num_frames=32, img_size=224 (the pyramid kernels are derived from the build size)",
            mismatched=[(b, tuple(out[b].shape), tuple(own[b].shape)) for b in bad])
    return out


def load_image_weights(model: DualFormer, path, strict_shapes: bool = True) -> dict:
    """Inflate ImageNet weights of the image DualFormer (flat, official 2D key names) into the video model.

    As the release does: the stem kernel gets a time axis (repeat 2, divide by 2), the PEG's 3x3 becomes 3x3x3
    (repeat 3, /3), the fine pooling `sr` is repeated over the time stride (/e), `lr.0` gets a time axis of 1;
    the second coarse step `lr.3` starts as an average pool (constant 1/|kernel|, bias 0); everything else loads
    by name; the classifier is left re-initialised. Returns {"loaded", "missing", "unexpected", "skipped"}.
    """
    from .official import check_and_load, find_state_dict, load_checkpoint, strip_prefix
    sd = strip_prefix(find_state_dict(load_checkpoint(path)), ("module.", "backbone."))
    skipped = [k for k in sd if k.startswith(("head.", "fc_cls.", "cls_head."))]
    sd = {_rename_official(k): v for k, v in sd.items() if k not in skipped}
    sd = inflate_state_dict(sd, model, mode="mean")                              # 4D kernels -> 5D, repeat / kt
    own = model.state_dict()
    for k, v in own.items():                                                     # coarse.3 := average pooling
        if ".attn.coarse.3." in k:
            sd[k] = torch.full_like(v, 1.0 / math.prod(v.shape[2:])) if k.endswith("weight") else torch.zeros_like(v)
    if not strict_shapes:
        sd = {k: v for k, v in sd.items() if k not in own or v.shape == own[k].shape}
    report = check_and_load(model, sd, strict=False, source=str(path))
    report["skipped"] = skipped
    return report


# --- registered variants -----------------------------------------------------------------------------------------

_PAPER = "Liang, Zhou, Zimmermann, Yan. DualFormer: Local-Global Stratified Transformer for Efficient Video " \
         "Recognition. ECCV 2022"
_URL = "https://arxiv.org/abs/2112.04674 ; https://github.com/sail-sg/dualformer"
_CONV = "fvcore MACs per view (called GFLOPs), classification head omitted; README multiplies by 4x1 views"
_NOTES = ("vidlab = the released computation (sail-sg/dualformer @ 058c10c), including its pyramid pooling that "
          "floors (rows past the last whole kernel are not pooled; pyramid_pad=True pads instead, vidlab's "
          "option); extensions: any clip size runs (LW windows padded + masked), the first coarse kernel is a "
          "config field. Pyramid kernels derive from the build size (default 32x224^2, the paper's and the "
          "official checkpoints'). "
          "BatchNorm3d in the coarse branch makes train/eval differ. Params/FLOPs in the README are backbone-only.")
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # mmaction img_norm_cfg 123.675/58.395... on 0-1


def _build(num_classes, num_frames, img_size, base: DualFormerConfig, overrides) -> DualFormer:
    return DualFormer(replace(base, num_classes=num_classes, num_frames=num_frames, img_size=img_size, **overrides))


def _info(variant, params_reported, params_official, gflops, top1, notes="") -> ModelInfo:
    return ModelInfo(paper=_PAPER, url=_URL, variant=variant, input="32x224x224 (frame interval 2)", views="4x1",
                     params_reported=params_reported, params_official=params_official, gflops_reported=gflops,
                     flops_convention=_CONV, top1=top1, pretrained_layouts=("mmaction2 (backbone./cls_head.)",),
                     mean=_MEAN, std=_STD, notes=_NOTES + notes)


@register_model(info=_info("DualFormer-T", 21.8e6, 21_972_560, 60.0, {"K400": 79.5},
                           " params_official includes the 400-class head (backbone 21,767,360)."),
                converter=checkpoint_filter_fn)
def dualformer_tiny(num_classes=400, num_frames=32, img_size=224, **overrides) -> DualFormer:
    cfg = DualFormerConfig(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 2, 10, 4),
                           drop_path_rate=0.1)
    return _build(num_classes, num_frames, img_size, cfg, overrides)


@register_model(info=_info("DualFormer-S", 48.9e6, 49_215_664, 159.0,
                           {"K400": 80.6, "Diving-48": 81.8, "HMDB-51": 76.4, "UCF-101": 97.5},
                           " params_official includes the 400-class head (backbone 48,908,064). Diving/HMDB/UCF: "
                           "K400 init, interval 4, 4x3 views (1908 G)."),
                converter=checkpoint_filter_fn)
def dualformer_small(num_classes=400, num_frames=32, img_size=224, **overrides) -> DualFormer:
    cfg = DualFormerConfig(embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), depths=(2, 2, 18, 2),
                           drop_path_rate=0.2)
    return _build(num_classes, num_frames, img_size, cfg, overrides)


@register_model(info=_info("DualFormer-B", 86.8e6, 87_247_632, 268.0, {"K400": 81.1, "K600": 85.2},
                           " params_official includes the 400-class head (backbone 86,837,632). K400 from IN-1K, "
                           "K600 from IN-22K; the abstract's 82.9% K400 at ~1000 G has no released checkpoint."),
                converter=checkpoint_filter_fn)
def dualformer_base(num_classes=400, num_frames=32, img_size=224, **overrides) -> DualFormer:
    cfg = DualFormerConfig(embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32), depths=(2, 2, 18, 2),
                           drop_path_rate=0.3)
    return _build(num_classes, num_frames, img_size, cfg, overrides)


@register_model(recipe=Recipe(lr=2.5e-4, adam_eps=1e-12, epochs=20, batch_size=16, num_frames=8, img_size=32, stream_clips=2560), info=ModelInfo(
    paper=_PAPER, url=_URL, variant="DualFormer-nano (vidlab teaching size)", views="1x1",
    flops_convention="vidlab MACs per view", mean=_MEAN, std=_STD,
    notes="vidlab's choice, not in the paper: dims 32-256, heads 1-8, depths 2,2,2,2, windows (2,4,4), fine "
          "pyramid (2,4,4) x3 + (4,4,4) (global in stage 3), coarse (2,2,2) with a first coarse kernel of 4 "
          "(the release's 7 would silently drop rows at 32x32). Same code path as the paper sizes."),
    converter=checkpoint_filter_fn)
def dualformer_nano(num_classes=400, num_frames=8, img_size=32, **overrides) -> DualFormer:
    cfg = DualFormerConfig(embed_dims=(32, 64, 128, 256), num_heads=(1, 2, 4, 8), depths=(2, 2, 2, 2),
                           local_sizes=((2, 4, 4),) * 4, fine_pysizes=((2, 4, 4),) * 3 + ((4, 4, 4),),
                           coarse_pysize=(2, 2, 2), coarse_first_kernel=4, drop_path_rate=0.0, head_dropout=0.0)
    return _build(num_classes, num_frames, img_size, cfg, overrides)
