"""ILA: Implicit Learnable Alignment on a CLIP ViT (Tu et al., "Implicit Temporal Modeling with Learnable Alignment
for Video Recognition", ICCV 2023; official code github.com/Francis-Rings/ILA, an X-CLIP fork).

Idea. A CLIP image ViT runs on every frame. In every layer, each adjacent frame pair (t-1, t) predicts one
*interactive point* per frame; a flat-topped window around that point re-weights the frame's patch tokens, which
aligns the two frames implicitly (the two windows are pulled onto the same content by a cosine loss). The aligned
features carry temporal information into the *spatial* self-attention, so no temporal self-attention is needed.

Two readings of "carry into the spatial attention" (docs/architectures.md §4.7a):

* ``ila_mode="residual"`` (default, the released code; official weights load): the per-frame aligned map and the
  pair trunk's "interactive" features are added to the tokens through two zero-initialised linear layers, so every
  block equals CLIP's at initialisation.
* ``ila_mode="token"`` (the paper, Sec. 3 / slides): the aligned map is averaged into one *mutual-information
  token* per frame, appended to the frame's tokens for the self-attention and dropped after it.

Layout. Clips (B, 3, T, H, W) are folded into B*T images; tokens are batch-first (B*T, 1 + h*w, D) (CLIP runs
sequence-first; the arithmetic is identical). Parameter names follow CLIP (`visual.conv1`, `visual.transformer.
resblocks.{i}.attn.in_proj_weight`, ...) so OpenAI CLIP state dicts load by name; the ILA parts have readable names
and `checkpoint_filter_fn` lists the official ones.

Capture kinds (vidlab.viz.capture):
  ``visual.transformer.resblocks.{i}.ila.alignment_points``  (B, T, 2)  x, y in [-1, 1], per frame (frame 0 from
        pair 0, frame T-1 from pair T-2, inner frames average the points of their two pairs — §4.8)
  ``visual.transformer.resblocks.{i}.ila.pair_points``       (B, T-1, 4) (x_prev, y_prev, x_cur, y_cur) per pair
  ``visual.transformer.resblocks.{i}.ila.alignment_masks``   (B, T, h, w) the masks, merged per frame like the points
  ``visual.transformer.resblocks.{i}.attn.attention``        (B*T, heads, N, N) per-frame softmax attention
        (N = 1 + h*w, or 2 + h*w in token mode; computed only while capturing)
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..viz.capture import record, wants
from .layers import DropPath, check_clip, count_params, trunc_normal_
from .registry import ModelInfo, Recipe, register_model

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# ----------------------------------------------------------------------------------------------------------------
# CLIP building blocks
# ----------------------------------------------------------------------------------------------------------------
class QuickGELU(nn.Module):
    """CLIP's GELU approximation x * sigmoid(1.702 x); the released weights were trained with it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """Multi-head self-attention with CLIP's parameter names (`in_proj_weight` (3D, D), `out_proj`).

    (N, L, D) -> (N, L, D). Records ``attention`` (N, heads, L, L) while capturing; an optional additive
    `attn_mask` (L, L) makes it causal (the text tower).
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)     # nn.MultiheadAttention's init
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        N, L, D = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.view(N, L, self.num_heads, D // self.num_heads).transpose(1, 2) for t in (q, k, v))  # (N, nh, L, hs)
        if wants(self, "attention"):
            logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if attn_mask is not None:
                logits = logits + attn_mask
            record(self, "attention", logits.softmax(-1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)   # (N, nh, L, hs)
        return self.out_proj(y.transpose(1, 2).reshape(N, L, D))


class ResidualAttentionBlock(nn.Module):
    """CLIP's pre-norm block: x + MSA(LN1 x), then x + MLP(LN2 x) with QuickGELU. (N, L, D) -> (N, L, D).

    Used by the MIT (video head) and the text tower; the ViT blocks are `ILABlock`.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CLIPAttention(dim, num_heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(dim, 4 * dim)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * dim, dim))]))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


# ----------------------------------------------------------------------------------------------------------------
# The ILA module
# ----------------------------------------------------------------------------------------------------------------
def alignment_mask(points: torch.Tensor, h: int, w: int, plateau: float = 0.25, slope: float = 1.5) -> torch.Tensor:
    """The flat-topped window around an interactive point (§4.3 step 5; slides: eta=1, delta=0.25, beta=1.5).

    points (..., 2) as (x, y) in [-1, 1] -> mask (..., h, w). Separable: M[i, j] = omega(g_i - y) * omega(g_j - x)
    with patch centres g_i = -1 + 2 i / (n - 1) and omega(d) = 1 if |d| <= plateau else max(0, 1 - slope (|d| - plateau)).
    """
    gy = torch.arange(h, device=points.device, dtype=points.dtype) / max(h - 1, 1) * 2 - 1
    gx = torch.arange(w, device=points.device, dtype=points.dtype) / max(w - 1, 1) * 2 - 1
    return alignment_mask_at(points, gy, gx, plateau, slope)


def alignment_mask_at(points: torch.Tensor, gy: torch.Tensor, gx: torch.Tensor, plateau: float = 0.25,
                      slope: float = 1.5) -> torch.Tensor:
    """`alignment_mask` evaluated at any coordinates gy (h,), gx (w,) of the same [-1, 1] frame: on the patch
    centres it is the model's mask; on the pixel centres, the same window drawn at pixel resolution."""
    gy, gx = gy.to(points), gx.to(points)
    dy = (gy - points[..., 1:2]).abs()                    # (..., h)
    dx = (gx - points[..., 0:1]).abs()                    # (..., w)
    wy = torch.where(dy <= plateau, torch.ones_like(dy), (1 - slope * (dy - plateau)).clamp(min=0))
    wx = torch.where(dx <= plateau, torch.ones_like(dx), (1 - slope * (dx - plateau)).clamp(min=0))
    return wy.unsqueeze(-1) * wx.unsqueeze(-2)            # (..., h, w)


def merge_pairs(pre: torch.Tensor, cur: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per-pair tensors -> per-frame (§4.3 step 7): frame 0 takes pair 0's 'previous' side, frame T-1 pair T-2's
    'current' side, an inner frame t the mean of pair t's 'previous' and pair t-1's 'current' side.
    pre, cur: (..., T-1, ...) along `dim` -> (..., T, ...)."""
    first = pre.narrow(dim, 0, 1)
    last = cur.narrow(dim, cur.shape[dim] - 1, 1)
    inner = (pre.narrow(dim, 1, pre.shape[dim] - 1) + cur.narrow(dim, 0, cur.shape[dim] - 1)) / 2
    return torch.cat([first, inner, last], dim=dim)


class PairInteraction(nn.Module):
    """The trunk over a frame pair: concat(z_{t-1}, z_t) (N, 2D, h, w) -> interaction features F (N, C, h, w).

    "k400" (released master): depthwise 3x3 -> BN -> ReLU -> pointwise 2D->C -> BN -> ReLU -> 3x3 C->C -> BN -> ReLU.
    "ssv2" (branch SSV2): dense 3x3 2D->C -> BN -> ReLU -> 3x3 C->C -> BN -> ReLU.
    """

    def __init__(self, dim: int, channels: int = 256, kind: str = "k400"):
        super().__init__()
        if kind not in ("k400", "ssv2"):
            raise ValueError(f"trunk must be 'k400' or 'ssv2', got {kind!r}")
        self.kind = kind
        if kind == "k400":
            self.dw = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1, groups=2 * dim)
            self.dw_bn = nn.BatchNorm2d(2 * dim)
            self.pw = nn.Conv2d(2 * dim, channels, 1)
            self.pw_bn = nn.BatchNorm2d(channels)
        else:
            self.pw = nn.Conv2d(2 * dim, channels, 3, padding=1)
            self.pw_bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        x = pairs
        if self.kind == "k400":
            x = F.relu(self.dw_bn(self.dw(x)))
        x = F.relu(self.pw_bn(self.pw(x)))
        return F.relu(self.bn(self.conv(x)))


class InteractivePointHead(nn.Module):
    """Predicts the pair's two interactive points from F (§4.3 step 4).

    F (B*(T-1), C, h, w) -> points (B, T-1, 4) = (x_prev, y_prev, x_cur, y_cur) in (-scale, scale).
    Two conv-BN-maxpool-ReLU stages, global max pool, then a grouped 1x1 MLP (group 0 -> previous frame's point,
    group 1 -> current frame's) whose last layer is zero-initialised: all points start at the frame centre.
    """

    def __init__(self, channels: int = 256, hidden: int = 128, scale: float = 0.75):
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.fc1 = nn.Conv1d(hidden, hidden // 2, 1, groups=2)   # 1x1 over the pair axis = per-pair linear layer
        self.fc2 = nn.Conv1d(hidden // 2, 4, 1, groups=2)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, feats: torch.Tensor, batch: int) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.bn1(self.conv1(feats)), 2))
        x = F.relu(F.max_pool2d(self.bn2(self.conv2(x)), 2))
        x = x.amax(dim=(-2, -1))                                  # (B*(T-1), hidden) global max pool
        x = x.view(batch, -1, x.shape[-1]).transpose(1, 2)        # (B, hidden, T-1)
        x = self.fc2(F.relu(self.fc1(x)))                         # (B, 4, T-1)
        return torch.tanh(x).transpose(1, 2) * self.scale         # (B, T-1, 4); x0.75 is code-only (§4.7b)


class ImplicitAlignment(nn.Module):
    """ILA for one layer: points per adjacent frame pair, masks, aligned features and the alignment loss.

    Input u (B, T, 1 + h*w, D) (the block's projected tokens, CLS first). Returns
      aligned      (B, T, 1 + h*w, D)  mask-weighted patch tokens merged per frame, u's CLS in front
      interactive  (B, T, 1 + h*w, D)  the trunk features, temporal 3x1x1 conv, Linear C/2 -> D, u's CLS in front
                                       (None when `interactive=False`, the paper's token mode)
      loss         ()                  mean over pairs of 1 - cos(sum A_prev, sum A_cur)  (§4.3 step 6)
    Records ``pair_points`` (B, T-1, 4), ``alignment_points`` (B, T, 2), ``alignment_masks`` (B, T, h, w).
    """

    # Training averages 9 masks at p + jitter * {0, +-1}^2 (§4.3 step 5); the order is the released one.
    _OFFSETS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))

    def __init__(self, dim: int, grid: tuple[int, int], channels: int = 256, point_hidden: int = 128,
                 trunk: str = "k400", point_scale: float = 0.75, jitter: float = 0.2, interactive: bool = True):
        super().__init__()
        if min(grid) < 4:
            raise ValueError(f"the point head pools twice by 2: the patch grid must be at least 4x4, got {grid}")
        self.grid = grid
        self.channels = channels
        self.trunk = PairInteraction(dim, channels, trunk)
        self.point_head = InteractivePointHead(channels, point_hidden, point_scale)
        if interactive:
            self.interactive_temporal = nn.Conv3d(channels // 2, channels // 2, (3, 1, 1), padding=(1, 0, 0))
            self.interactive_proj = nn.Linear(channels // 2, dim)
        else:
            self.interactive_temporal = self.interactive_proj = None
        # non-persistent: a training schedule (halved each epoch from epoch 30 by `align_decay`), not a weight
        self.register_buffer("jitter_offsets", torch.tensor(self._OFFSETS, dtype=torch.float32) * jitter,
                             persistent=False)

    @torch.no_grad()
    def align_decay(self, factor: float = 0.5) -> None:
        """Shrink the training jitter (the release halves it every epoch from epoch 30)."""
        self.jitter_offsets.mul_(factor)

    def masks(self, points: torch.Tensor) -> torch.Tensor:
        """points (..., 2) -> (..., h, w); in training the mean of the 9 jittered masks."""
        h, w = self.grid
        if self.training:
            return alignment_mask(points.unsqueeze(-2) + self.jitter_offsets.to(points.dtype), h, w).mean(-3)
        return alignment_mask(points, h, w)

    def forward(self, u: torch.Tensor):
        B, T, L, D = u.shape
        h, w = self.grid
        cls, patches = u[:, :, :1], u[:, :, 1:]                    # (B, T, 1, D), (B, T, hw, D)
        prev, cur = patches[:, :-1], patches[:, 1:]                # (B, T-1, hw, D) each

        # trunk over each pair and the two interactive points; the pair is built as a contiguous NCHW map
        # (concat(z_{t-1}, z_t) over channels): the channels-last view a permute gives would make oneDNN run the
        # trunk convs up to 1.6x slower and re-layout their weights on every call
        pairs = torch.cat([prev, cur], dim=-1).transpose(2, 3)      # (B, T-1, 2D, hw)
        feats = self.trunk(pairs.reshape(B * (T - 1), 2 * D, h, w))  # (B*(T-1), C, h, w)
        points = self.point_head(feats, B)                         # (B, T-1, 4)

        # implicit alignment: weight each frame around its point (a = m * z)
        m_prev, m_cur = self.masks(points[..., :2]), self.masks(points[..., 2:])   # (B, T-1, h, w)
        a_prev = m_prev.flatten(2).unsqueeze(-1) * prev            # (B, T-1, hw, D)
        a_cur = m_cur.flatten(2).unsqueeze(-1) * cur
        loss = (1 - F.cosine_similarity(a_prev.sum(2), a_cur.sum(2), dim=-1)).mean()   # pulls the windows together

        aligned = torch.cat([cls, merge_pairs(a_prev, a_cur)], dim=2)              # (B, T, L, D)

        record(self, "pair_points", points)
        record(self, "alignment_points", lambda: merge_pairs(points[..., :2], points[..., 2:]))
        record(self, "alignment_masks", lambda: merge_pairs(m_prev, m_cur))

        interactive = None
        if self.interactive_proj is not None:
            c = self.channels // 2
            f = feats.view(B, T - 1, self.channels, h, w)
            f = merge_pairs(f[:, :, :c], f[:, :, c:])              # (B, T, C/2, h, w): first half prev, second cur
            f = self.interactive_temporal(f.transpose(1, 2))       # (B, C/2, T, h, w)
            f = self.interactive_proj(f.flatten(3).permute(0, 2, 3, 1))             # (B, T, hw, D)
            interactive = torch.cat([cls, f], dim=2)                # (B, T, L, D)
        return aligned, interactive, loss


class ILABlock(nn.Module):
    """A CLIP ViT block with ILA in front of the spatial attention. (B*T, L, D) -> ((B*T, L, D), loss).

    u = LN(Linear(x)) feeds ILA; then (residual mode, released)
        x <- x + W_a(aligned) + W_i(interactive)      W_a, W_i zero-initialised: the block starts as CLIP's
        x <- x + MSA(LN1 x);  x <- x + MLP(LN2 x)
    or (token mode, paper): [x~, z~] = MSA(LN1 [x, mean(aligned)]) + [x, mean(aligned)]; drop z~; x <- x~ + MLP(LN2 x~).
    Records (via submodules) ``attention`` and ILA's ``alignment_points`` / ``pair_points`` / ``alignment_masks``.
    """

    def __init__(self, cfg: "ILAConfig", drop_path: float = 0.0):
        super().__init__()
        D, grid = cfg.width, (cfg.img_size // cfg.patch_size,) * 2
        self.num_frames = cfg.num_frames
        self.mode = cfg.ila_mode
        self.align_proj = nn.Linear(D, D)                           # official message_fc / message_ln
        self.align_norm = nn.LayerNorm(D)
        self.ila = ImplicitAlignment(D, grid, cfg.trunk_channels, cfg.point_hidden, cfg.trunk, cfg.point_scale,
                                     cfg.jitter, interactive=cfg.ila_mode == "residual")
        if cfg.ila_mode == "residual":
            self.skip_aligned = nn.Linear(D, D)                     # official temporal_skip_align_fc
            self.skip_interactive = nn.Linear(D, D)                 # official temporal_skip_fc
            for lin in (self.skip_aligned, self.skip_interactive):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
        self.ln_1 = nn.LayerNorm(D)
        self.attn = CLIPAttention(D, cfg.heads)
        self.ln_2 = nn.LayerNorm(D)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(D, 4 * D)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * D, D))]))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor):
        BT, L, D = x.shape
        T = self.num_frames
        u = self.align_norm(self.align_proj(x)).view(BT // T, T, L, D)
        aligned, interactive, loss = self.ila(u)
        if self.mode == "residual":
            x = x + self.drop_path(self.skip_aligned(aligned.reshape(BT, L, D)))
            x = x + self.drop_path(self.skip_interactive(interactive.reshape(BT, L, D)))
            x = x + self.drop_path(self.attn(self.ln_1(x)))
        else:
            token = aligned[:, :, 1:].mean(2).reshape(BT, 1, D)   # the mutual-information token, Avg(a_t)
            y = torch.cat([x, token], dim=1)                         # (B*T, L + 1, D)
            y = y + self.drop_path(self.attn(self.ln_1(y)))
            x = y[:, :L]                                             # the token is dropped after the attention
        x = x + self.drop_path(self.mlp(self.ln_2(x)))
        return x, loss


class Transformer(nn.Module):
    """The ViT trunk: `resblocks` (CLIP's name). (B*T, L, D) -> ((B*T, L, D), per-layer losses list)."""

    def __init__(self, cfg: "ILAConfig"):
        super().__init__()
        dpr = torch.linspace(0, cfg.drop_path_rate, cfg.layers).tolist() if cfg.drop_path_rate > 0 else [0.0] * cfg.layers
        self.resblocks = nn.ModuleList([ILABlock(cfg, dpr[i]) for i in range(cfg.layers)])

    def forward(self, x: torch.Tensor):
        losses = []
        for blk in self.resblocks:
            x, loss = blk(x)
            losses.append(loss)
        return x, losses


class VisionTransformer(nn.Module):
    """CLIP's image ViT with ILA blocks. Clip (B, 3, T, H, W) -> (frame embeddings (B, T, E),
    patch tokens (B, T, h*w, D), per-layer alignment losses)."""

    def __init__(self, cfg: "ILAConfig"):
        super().__init__()
        D, grid = cfg.width, cfg.img_size // cfg.patch_size
        scale = D ** -0.5
        self.conv1 = nn.Conv2d(3, D, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(D))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, D))
        self.ln_pre = nn.LayerNorm(D)
        self.transformer = Transformer(cfg)
        self.ln_post = nn.LayerNorm(D)
        self.proj = nn.Parameter(scale * torch.randn(D, cfg.embed_dim))

    def forward(self, x: torch.Tensor):
        B, _, T, H, W = x.shape
        x = self.conv1(x.transpose(1, 2).reshape(B * T, 3, H, W))  # (B*T, D, h, w): frames folded into the batch
        x = x.flatten(2).transpose(1, 2)                             # (B*T, hw, D)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)   # (B*T, 1 + hw, D)
        x, losses = self.transformer(self.ln_pre(x))
        frames = (self.ln_post(x[:, 0]) @ self.proj).view(B, T, -1)  # (B, T, E)
        return frames, x[:, 1:].reshape(B, T, -1, x.shape[-1]), losses


# ----------------------------------------------------------------------------------------------------------------
# Video heads (from X-CLIP)
# ----------------------------------------------------------------------------------------------------------------
class MultiframeIntegrationTransformer(nn.Module):
    """MIT: frame embeddings (B, T, E) + temporal position -> pre-LN transformer -> + input -> mean over T -> (B, E)."""

    def __init__(self, num_frames: int, dim: int, layers: int = 1):
        super().__init__()
        self.positional_embedding = nn.Parameter(trunc_normal_(torch.empty(1, num_frames, dim), std=0.02))
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(dim, max(dim // 64, 1)) for _ in range(layers)])
        for m in self.resblocks.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.positional_embedding
        for blk in self.resblocks:
            y = blk(y)
        return (y + x).mean(1)                                       # residual around the whole MIT


class LinearHead(nn.Module):
    """SSv2-branch head: L2-normalise -> LayerNorm -> Dropout -> Linear. (B, E) -> (B, K)."""

    def __init__(self, dim: int, num_classes: int, drop: float = 0.5):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.norm(F.normalize(v, dim=-1))))


class CrossAttention(nn.Module):
    """Multi-head cross-attention (q from text, k/v from patches), X-CLIP's prompt generator attention.
    q (B, K, E), kv (B, M, E) -> (B, K, E)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        B, K, E = q.shape
        nh = self.num_heads
        q = self.q_proj(q).view(B, K, nh, E // nh).transpose(1, 2)                 # (B, nh, K, hs)
        k = self.k_proj(kv).view(B, kv.shape[1], nh, E // nh).transpose(1, 2)      # (B, nh, M, hs)
        v = self.v_proj(kv).view(B, kv.shape[1], nh, E // nh).transpose(1, 2)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, K, E))


class PromptGeneratorLayer(nn.Module):
    """text <- text + CrossAttn(LN text, visual); text <- text + MLP(LN text). (B, K, E) -> (B, K, E)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), QuickGELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        text = text + self.cross_attn(self.norm1(text), visual)
        return text + self.mlp(self.norm3(text))


class VideoSpecificPrompt(nn.Module):
    """X-CLIP's video-specific prompts: alpha * decoder(class embeddings, LN(patch features)), alpha per channel.
    text (B, K, E), visual (B, M, E) -> prompt offsets (B, K, E)."""

    def __init__(self, dim: int, layers: int = 2, alpha: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.ModuleList([PromptGeneratorLayer(dim, max(dim // 64, 1)) for _ in range(layers)])
        self.alpha = nn.Parameter(torch.full((dim,), alpha))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        visual = self.norm(visual)
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text


class TextTransformer(nn.Module):
    """CLIP's text tower (causal transformer). Token ids (K, context) -> class embeddings (K, E).

    vidlab ships no BPE tokenizer: pass ids made by OpenAI's `clip.tokenize` / `open_clip.tokenize` (the
    end-of-text token has the largest id, which is how the embedding is picked, as in CLIP)."""

    def __init__(self, cfg: "ILAConfig"):
        super().__init__()
        W = cfg.text_width
        self.token_embedding = nn.Embedding(cfg.vocab_size, W)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, W))
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(W, cfg.text_heads) for _ in range(cfg.text_layers)])
        self.ln_final = nn.LayerNorm(W)
        self.text_projection = nn.Parameter(torch.empty(W, cfg.embed_dim))
        causal = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", causal, persistent=False)
        # CLIP's init (overwritten by CLIP weights)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=W ** -0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding          # (K, ctx, W)
        for blk in self.resblocks:
            x = blk(x, self.attn_mask.to(x.dtype))
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(-1)] @ self.text_projection   # (K, E)


class TextHead(nn.Module):
    """X-CLIP's K400 head: logits = exp(s) * cos(v, c + prompts(c, mean_t LN(patches) @ P)), c = text(class names).

    v (B, E), patch tokens (B, T, hw, D) -> (B, K). The class-name tokens live in the buffer `class_tokens`
    (K, context) — fill it with `set_class_tokens`; `cache_text_features()` runs the (frozen) text tower once.
    """

    def __init__(self, cfg: "ILAConfig"):
        super().__init__()
        self.text = TextTransformer(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.prompts_generator = VideoSpecificPrompt(cfg.embed_dim, cfg.prompt_layers, cfg.prompt_alpha)
        self.prompts_visual_ln = nn.LayerNorm(cfg.width)
        self.prompts_visual_proj = nn.Parameter(torch.randn(cfg.width, cfg.embed_dim))
        self.register_buffer("class_tokens", torch.zeros(cfg.num_classes, cfg.context_length, dtype=torch.long))
        self.register_buffer("text_cache", torch.zeros(0), persistent=False)

    def set_class_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.shape != self.class_tokens.shape:
            raise ValueError(f"expected class tokens {tuple(self.class_tokens.shape)}, got {tuple(tokens.shape)}")
        self.class_tokens.copy_(tokens)
        self.text_cache = torch.zeros(0, device=self.class_tokens.device)

    @torch.no_grad()
    def cache_text_features(self) -> torch.Tensor:
        """Encode the class names once (the released code caches them: the text tower is frozen)."""
        self.text_cache = self.text(self.class_tokens)
        return self.text_cache

    def forward(self, v: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        text = self.text_cache if self.text_cache.numel() else self.text(self.class_tokens)   # (K, E)
        visual = (self.prompts_visual_ln(patches) @ self.prompts_visual_proj).mean(1)        # (B, hw, E)
        text = text.unsqueeze(0).expand(v.shape[0], -1, -1)
        text = text + self.prompts_generator(text, visual)                                   # (B, K, E)
        v = F.normalize(v, dim=-1)
        text = F.normalize(text, dim=-1)
        return torch.einsum("bd,bkd->bk", v, self.logit_scale.exp() * text)


# ----------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ILAConfig:
    img_size: int = 224             # input frame side
    patch_size: int = 32            # ViT patch (32 B/32, 16 B/16, 14 L/14)
    width: int = 768                # ViT width D
    layers: int = 12                # ViT depth
    heads: int = 12                 # ViT heads (CLIP: width / 64)
    embed_dim: int = 512            # CLIP joint embedding E (output of `visual.proj`)
    num_frames: int = 8             # T; the MIT position embedding is T-specific
    num_classes: int = 400          # K
    ila_mode: str = "residual"      # "residual" (released code, weights load) | "token" (paper's MI token)
    trunk: str = "k400"             # pair trunk: "k400" depthwise-separable (master) | "ssv2" dense (SSV2 branch)
    trunk_channels: int = 256       # C of the interaction features F (first half -> prev, second -> cur)
    point_hidden: int = 128         # point head width
    point_scale: float = 0.75       # points bounded to (-0.75, 0.75) (code-only)
    jitter: float = 0.2             # training jitter of the 9 masks
    align_loss_weight: float = 1.0  # weight of the alignment loss in the training loss (released: 1)
    drop_path_rate: float = 0.0     # stochastic depth over the ViT blocks
    mit_layers: int = 1             # MIT depth (released: 1)
    head: str = "linear"            # "linear" (SSv2-style) | "text" (X-CLIP K400 head with CLIP text tower)
    head_drop: float = 0.5          # dropout of the linear head
    freeze_backbone: bool = False   # as released: CLIP visual (and text) frozen, only ILA, MIT, head train
    # text tower (head="text")
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12
    prompt_layers: int = 2          # prompt generator depth (released: 2)
    prompt_alpha: float = 0.1       # initial per-channel prompt scale (released: 0.1)


class ILA(nn.Module):
    """CLIP ViT + ILA in every layer + MIT + head. Clip (B, 3, T, H, W) -> logits (B, K).

    `forward(x, return_aux=True)` returns (logits, {"alignment_loss": sum over layers, "alignment_losses": list});
    the released training adds the sum to the cross-entropy with weight 1.
    """

    def __init__(self, cfg: ILAConfig):
        super().__init__()
        if cfg.ila_mode not in ("residual", "token"):
            raise ValueError(f"ila_mode must be 'residual' (released) or 'token' (paper), got {cfg.ila_mode!r}")
        if cfg.head not in ("linear", "text"):
            raise ValueError(f"head must be 'linear' or 'text', got {cfg.head!r}")
        if cfg.img_size % cfg.patch_size:
            raise ValueError(f"img_size {cfg.img_size} is not a multiple of the patch size {cfg.patch_size}")
        if cfg.num_frames < 2:
            raise ValueError(f"ILA aligns adjacent frames: num_frames must be >= 2, got {cfg.num_frames}")
        self.cfg = cfg
        self.visual = VisionTransformer(cfg)
        self.mit = MultiframeIntegrationTransformer(cfg.num_frames, cfg.embed_dim, cfg.mit_layers)
        if cfg.head == "linear":
            self.head = LinearHead(cfg.embed_dim, cfg.num_classes, cfg.head_drop)
        else:
            self.head = TextHead(cfg)
        if cfg.freeze_backbone:
            self.freeze_backbone()

    def freeze_backbone(self) -> None:
        """Freeze what the release freezes: the CLIP visual weights (stem, attention, MLP, norms, proj) and the
        CLIP text tower; ILA (`align_*`, `ila`, `skip_*`), MIT, prompts and the linear head stay trainable."""
        clip_block_parts = ("attn.", "ln_1.", "mlp.", "ln_2.")
        for name, p in self.visual.named_parameters():
            if not name.startswith("transformer.") or name.split(".", 3)[3].startswith(clip_block_parts):
                p.requires_grad_(False)
        if isinstance(self.head, TextHead):
            self.head.text.requires_grad_(False)
            self.head.logit_scale.requires_grad_(False)

    def forward_features(self, x: torch.Tensor, return_aux: bool = False):
        """Clip -> video embedding v (B, E) (MIT output); with return_aux also the patch tokens and losses."""
        check_clip(x, num_frames=self.cfg.num_frames)
        size = (self.cfg.img_size, self.cfg.img_size)
        if tuple(x.shape[-2:]) != size:
            raise ValueError(f"expected frames of {size} (the model was built for it), got {tuple(x.shape)}")
        frames, patches, losses = self.visual(x)
        v = self.mit(frames)
        return (v, patches, losses) if return_aux else v

    returns_aux = True   # vidlab.train adds aux["alignment_loss"] to the classification loss

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        v, patches, losses = self.forward_features(x, return_aux=True)
        logits = self.head(v) if isinstance(self.head, LinearHead) else self.head(v, patches)
        if not return_aux:
            return logits
        return logits, {"alignment_loss": self.cfg.align_loss_weight * torch.stack(losses).sum(),
                        "alignment_losses": losses}

    @torch.no_grad()
    def align_decay(self, factor: float = 0.5) -> None:
        """Halve every layer's mask jitter (call once per epoch from epoch 30, as the release does)."""
        for blk in self.visual.transformer.resblocks:
            blk.ila.align_decay(factor)

    def param_counts(self) -> dict[str, int]:
        """Parameter counts by part, as docs/architectures.md §4.5 counts them."""
        ila_parts = ("align_proj.", "align_norm.", "ila.", "skip_aligned.", "skip_interactive.")
        ila = sum(p.numel() for n, p in self.visual.transformer.resblocks.named_parameters()
                  if n.split(".", 1)[1].startswith(ila_parts))
        out = {"clip_visual": count_params(self.visual) - ila, "ila": ila, "mit": count_params(self.mit)}
        if isinstance(self.head, TextHead):
            out["text"] = count_params(self.head.text) + 1
            out["prompts"] = count_params(self.head) - out["text"]
        else:
            out["linear_head"] = count_params(self.head)
        out["total"] = count_params(self)
        return out


# ----------------------------------------------------------------------------------------------------------------
# Weights: CLIP image/text init, official ILA checkpoints
# ----------------------------------------------------------------------------------------------------------------
def read_clip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from a local file: OpenAI's release (TorchScript zip) or a plain `torch.save`d dict."""
    from .official import find_state_dict, load_checkpoint, strip_prefix
    sd = strip_prefix(find_state_dict(load_checkpoint(Path(path))))   # a TorchScript archive is read inertly
    sd = {k: v.float() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    return {k: v for k, v in sd.items() if k not in ("input_resolution", "context_length", "vocab_size")}


def clip_to_vidlab(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP names -> vidlab names: `visual.*` is identical; the text tower moves under `head.text.`, `transformer.`
    becomes `head.text.` (its resblocks), `logit_scale` goes to `head.`."""
    out = {}
    for k, v in sd.items():
        if k.startswith("visual."):
            out[k] = v
        elif k.startswith("transformer."):
            out["head.text." + k[len("transformer."):]] = v
        elif k.split(".")[0] in ("token_embedding", "positional_embedding", "ln_final", "text_projection"):
            out["head.text." + k] = v
        elif k == "logit_scale":
            out["head.logit_scale"] = v
        else:
            out[k] = v
    return out


def load_clip_weights(model: ILA, path: str | Path) -> dict:
    """Initialise from OpenAI CLIP weights (local file, no network), by name and non-strict, as the release does.
    Returns {"loaded", "missing", "unexpected"}; a shape mismatch (wrong variant, other resolution) raises."""
    from .official import check_and_load
    sd = clip_to_vidlab(read_clip_state_dict(path))
    return check_and_load(model, sd, strict=False, source=str(path))


# official ILA key -> vidlab key, per ViT block (prefix visual.transformer.resblocks.{i}.)
_BLOCK_KEYS = {
    "message_fc.": "align_proj.",
    "message_ln.": "align_norm.",
    "temporal_skip_align_fc.": "skip_aligned.",
    "temporal_skip_fc.": "skip_interactive.",
    "message_attn.interactive_block.0.depthwise_conv.0.": "ila.trunk.dw.",       # K400 trunk
    "message_attn.interactive_block.0.depthwise_conv.1.": "ila.trunk.dw_bn.",
    "message_attn.interactive_block.0.pointwise_conv.0.": "ila.trunk.pw.",
    "message_attn.interactive_block.0.pointwise_conv.1.": "ila.trunk.pw_bn.",
    "message_attn.interactive_block.1.": "ila.trunk.conv.",
    "message_attn.interactive_block.2.": "ila.trunk.bn.",
    "message_attn.prediction_block.0.": "ila.point_head.conv1.",
    "message_attn.prediction_block.1.": "ila.point_head.bn1.",
    "message_attn.prediction_block.4.": "ila.point_head.conv2.",
    "message_attn.prediction_block.5.": "ila.point_head.bn2.",
    "message_attn.prediction_block.10.": "ila.point_head.fc1.",
    "message_attn.prediction_block.12.": "ila.point_head.fc2.",
    "message_attn.conv.": "ila.interactive_temporal.",
    "message_attn.fc.": "ila.interactive_proj.",
}
_BLOCK_KEYS_SSV2 = {  # SSV2 branch: dense trunk, interactive_block.{0 conv, 1 BN, 3 conv, 4 BN}
    "message_attn.interactive_block.0.": "ila.trunk.pw.",
    "message_attn.interactive_block.1.": "ila.trunk.pw_bn.",
    "message_attn.interactive_block.3.": "ila.trunk.conv.",
    "message_attn.interactive_block.4.": "ila.trunk.bn.",
}


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: ILA) -> dict[str, torch.Tensor]:
    """Official ILA checkpoint (`ckpt['model']`, X-CLIP layout) -> vidlab keys.

    visual.* CLIP keys and mit.* keep their names; per block the ILA keys are renamed (`_BLOCK_KEYS`, the SSv2
    trunk by `_BLOCK_KEYS_SSV2`); K400 text head: text tower -> head.text.*, prompts_* / logit_scale -> head.*;
    SSv2 head: mit.classify_head.{0,2} -> head.norm / head.fc. nn.MultiheadAttention's keys equal ours.
    The release saves {'model' (the DDP state dict: `module.` keys, CLIP layers in fp16 when built on a GPU),
    'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config' (yacs)}: `module.` is stripped, fp16 is
    upcast, CLIP's `input_resolution` / `context_length` / `vocab_size` scalars are dropped; a non-tensor entry
    in the state dict is refused by name.
    """
    from .official import unwrap_official
    ssv2 = getattr(model, "cfg", None) is not None and model.cfg.trunk == "ssv2"
    block_keys = {**_BLOCK_KEYS, **_BLOCK_KEYS_SSV2} if ssv2 else _BLOCK_KEYS
    out = {}
    for k, v in unwrap_official(state_dict, ("module.",), "ILA").items():
        if k.startswith("visual.transformer.resblocks."):
            parts = k.split(".", 4)                       # visual, transformer, resblocks, i, rest
            head, rest = parts[:4], parts[4]
            for old in sorted(block_keys, key=len, reverse=True):
                if rest.startswith(old):
                    rest = block_keys[old] + rest[len(old):]
                    break
            out[".".join(head) + "." + rest] = v
        elif k.startswith("mit.classify_head.0."):
            out["head.norm." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("mit.classify_head.2."):
            out["head.fc." + k.rsplit(".", 1)[1]] = v
        elif k.startswith(("prompts_", )):
            out["head." + k] = v
        elif k.startswith(("visual.", "mit.")):
            out[k] = v
        elif k in ("input_resolution", "context_length", "vocab_size"):
            continue
        else:
            out.update(clip_to_vidlab({k: v}))
    own = model.state_dict()
    if "head.class_tokens" in own and "head.class_tokens" not in out:
        out["head.class_tokens"] = own["head.class_tokens"]   # class names are not in the checkpoint
    return out


# ----------------------------------------------------------------------------------------------------------------
# Registered variants
# ----------------------------------------------------------------------------------------------------------------
_PAPER = "Tu et al., Implicit Temporal Modeling with Learnable Alignment for Video Recognition (ILA), ICCV 2023"
_URL = "https://arxiv.org/abs/2304.10465 ; https://github.com/Francis-Rings/ILA"
_NOTES = ("Released code (default ila_mode='residual'): aligned and interactive features are added through zero-init "
          "linear layers; the paper's MI token appended to the spatial attention is ila_mode='token' (no official "
          "weights). params_official = whole K400 model as released (CLIP visual + ILA + MIT + text tower + prompt "
          "generator); vidlab's default linear head replaces text + prompts, build head='text' for the exact count. "
          "Reported GFLOPs (tool unstated) are below the released module's fvcore MACs.")


def _build(cfg: ILAConfig, num_classes: int, num_frames: int, img_size: int, overrides: dict) -> ILA:
    fields = set(ILAConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown ILA option(s) {sorted(unknown)}; known: {sorted(fields)}")
    return ILA(replace(cfg, num_classes=num_classes, num_frames=num_frames, img_size=img_size, **overrides))


def _info(variant: str, params: int, gflops, top1: dict, extra: str = "") -> ModelInfo:
    return ModelInfo(paper=_PAPER, url=_URL, variant=variant, input="8x224x224", views="4x3",
                     params_reported=None, params_official=params, gflops_reported=gflops,
                     flops_convention="GFLOPs per view as reported (tool unstated; MAC-like); official code fvcore "
                                      "GMAC of the visual encoder in notes",
                     top1=top1, pretrained_layouts=("ila_official_k400", "ila_official_ssv2", "openai_clip"),
                     mean=CLIP_MEAN, std=CLIP_STD, notes=_NOTES + extra)


@register_model(info=_info("ILA-ViT-B/32", 201_596_977, 40.0,
                           {"K400 8f": 81.3, "K400 16f": 82.4},
                           " Official B/32 8f visual encoder: 49.6 GMAC fvcore (ILA modules 14.65)."),
                converter=checkpoint_filter_fn)
def ila_vit_b32(num_classes: int = 400, num_frames: int = 8, img_size: int = 224, **overrides) -> ILA:
    return _build(ILAConfig(patch_size=32, width=768, layers=12, heads=12, embed_dim=512),
                  num_classes, num_frames, img_size, overrides)


@register_model(info=_info("ILA-ViT-B/16", 199_940_401, None,
                           {"K400 8f": 84.0, "K400 16f": 85.7, "SSv2 8f": 65.0, "SSv2 16f": 66.8},
                           " Reported GFLOPs: 295 at 16f (K400), 438 SSv2 16f; 8f not reported. Official B/16 8f "
                           "visual encoder: 193.2 GMAC fvcore."),
                converter=checkpoint_filter_fn)
def ila_vit_b16(num_classes: int = 400, num_frames: int = 8, img_size: int = 224, **overrides) -> ILA:
    return _build(ILAConfig(patch_size=16, width=768, layers=12, heads=12, embed_dim=512),
                  num_classes, num_frames, img_size, overrides)


@register_model(info=_info("ILA-ViT-L/14", 567_749_473, 673.0,
                           {"K400 8f": 88.0, "SSv2 8f": 67.8, "K400 L/14@336 16f": 88.7, "SSv2 L/14@336 16f": 70.2},
                           " L/14@336 16f (img_size=336, num_frames=16): 568,083,297 params, 3130 GFLOPs reported."),
                converter=checkpoint_filter_fn)
def ila_vit_l14(num_classes: int = 400, num_frames: int = 8, img_size: int = 224, **overrides) -> ILA:
    return _build(ILAConfig(patch_size=14, width=1024, layers=24, heads=16, embed_dim=768,
                            text_width=768, text_heads=12), num_classes, num_frames, img_size, overrides)


_NANO_RECIPE = Recipe(lr=5e-4, adam_eps=1e-12, epochs=24, batch_size=16, num_frames=8, img_size=32, stream_clips=1600,
                      pretrain={"num_frames": 2})   # frame pretraining (CLIP stand-in); both modes' nano


def _nano_config(**changes) -> ILAConfig:
    """The nano size (vidlab's choice, §4.5), in either mode."""
    return ILAConfig(patch_size=8, width=192, layers=4, heads=3, embed_dim=192, trunk_channels=64, point_hidden=32,
                     head_drop=0.0, **changes)


@register_model(recipe=_NANO_RECIPE,
                info=ModelInfo(paper=_PAPER, url=_URL, variant="ILA nano (vidlab teaching size)",
                               views="1x1", notes="vidlab's choice (§4.5): CLIP-style ViT width 192, 4 layers, "
                               "3 heads, patch 8 (4x4 grid at 32²), trunk 64, point head 32, linear head; its recipe "
                               "starts from frame pretraining (vidlab.pretrain), a stand-in for CLIP.",
                               mean=CLIP_MEAN, std=CLIP_STD),
                converter=checkpoint_filter_fn)
def ila_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 32, **overrides) -> ILA:
    return _build(_nano_config(), num_classes, num_frames, img_size, overrides)


@register_model(recipe=_NANO_RECIPE,   # ila_nano's recipe, unchanged
                info=ModelInfo(paper=_PAPER, url=_URL, variant="ILA nano, the paper's token mode (vidlab teaching size)",
                               views="1x1", notes="ila_nano with ila_mode='token' (paper Sec. 3, slides 'Block "
                               "design'): each frame's aligned map is averaged into one mutual-information token "
                               "that joins the frame's spatial self-attention and is dropped after it; no residual "
                               "streams, so the window's position is what carries the pair into the attention. "
                               "Trained with ila_nano's recipe; no official weights exist for this mode.",
                               mean=CLIP_MEAN, std=CLIP_STD))
def ila_token_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 32, **overrides) -> ILA:
    return _build(_nano_config(ila_mode="token"), num_classes, num_frames, img_size, overrides)
