"""Baselines: the references the five efficient designs are measured against.

* **Joint space-time ViT** (`vit_joint_*`): a plain ViT over all T'·H'·W' tubelet tokens at once (ViViT "model 1",
  Arnab et al. 2021). Self-attention compares every token with every other, so its cost grows with the *square*
  of the number of tokens — doubling the frames quadruples the attention term. This is the cost every
  architecture in vidlab removes.
* **Divided space-time ViT** (`vit_divided_*`, TimeSformer, Bertasius et al. 2021): each block attends over time
  (the T' tokens at one spatial location) and then over space (the H'·W' tokens of one frame), so the attention
  cost is T'·(H'W')² + H'W'·T'² instead of (T'H'W')².
* **(2+1)D CNN** (`r2plus1d_*`, Tran et al. 2018): every 3×3×3 convolution factorised into a 1×3×3 spatial and a
  3×1×1 temporal convolution; cost linear in T·H·W.

Input is a normalised clip (B, 3, T, H, W); output logits (B, num_classes); ``forward_features`` returns the pooled
features (B, C). Maps recorded under ``vidlab.viz.capture`` (computed only while capturing):

=====================  ==========================  ====================================================
model                  kind                        shape
=====================  ==========================  ====================================================
vit_joint_*            ``attention``               (B, heads, 1+T'H'W', 1+T'H'W'), token 0 = class token
vit_divided_*          ``temporal_attention``      (B, heads, H'W', T', T')  one T'xT' map per location
vit_divided_*          ``spatial_attention``       (B, heads, T', 1+H'W', 1+H'W')  one map per frame
r2plus1d_*             ``activation``              (B, C, T, H, W) output of each stage
=====================  ==========================  ====================================================

Tokens are ordered time-major (t, h, w), so ``attn[..., 1:].reshape(T', H', W')`` is a map over the clip.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..viz.capture import record, wants
from .layers import (DropPath, Mlp, PatchEmbed3d, check_clip, init_weights_resnet, init_weights_vit, to_3tuple,
                     trunc_normal_)
from .registry import ModelInfo, Recipe, register_model

__all__ = ["Attention", "Block", "DividedBlock", "ViTConfig", "VideoViT", "Conv2Plus1d", "BasicBlock2Plus1d",
           "R2Plus1dConfig", "R2Plus1d", "timesformer_checkpoint_filter_fn"]


def _check_size(x: torch.Tensor, num_frames: int, img_size: int) -> None:
    check_clip(x, num_frames=num_frames)
    if x.shape[-2:] != (img_size, img_size):
        raise ValueError(f"expected a clip (B, 3, {num_frames}, {img_size}, {img_size}) (the model was built for it), "
                         f"got {tuple(x.shape)}")


# ---------------------------------------------------------------------------------------------------------------
# Attention and the transformer blocks
# ---------------------------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head self-attention: softmax(Q Kᵀ / √d) V (Vaswani et al. 2017, eq. 1), (B, N, C) -> (B, N, C).

    The fast path is ``F.scaled_dot_product_attention``, which never materialises the N×N matrix; the map is
    computed explicitly only when a capture wants it, and recorded as ``kind`` with shape (B, heads, N, N), or
    (B / groups, heads, groups, N, N) when the batch holds ``groups`` sequences per clip (divided attention).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, kind: str = "attention"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.kind = kind
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                             # (B, nh, N, hd)
        if wants(self, self.kind):
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, nh, N, N)
            if groups > 1:
                attn = attn.reshape(B // groups, groups, self.num_heads, N, N).transpose(1, 2)
            record(self, self.kind, attn)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)                              # (B, N, C)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)); attention over all N tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DividedBlock(nn.Module):
    """TimeSformer block (Bertasius et al. 2021, Fig. 1 "divided space-time"): temporal attention among the T'
    tokens at each spatial location, a linear map (``temporal_fc``), then spatial attention among the H'W' tokens
    of each frame plus the class token, then the MLP. Tokens (B, 1 + T'·H'W', C), time-major, class token first.
    Module names follow the official TimeSformer code."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, kind="temporal_attention")
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, kind="spatial_attention")
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        B, N, C = x.shape
        T = num_frames
        S = (N - 1) // T                                                    # H'W' tokens per frame
        cls, xs = x[:, :1], x[:, 1:]                                        # (B, 1, C), (B, T*S, C)

        # temporal attention: one sequence of T tokens per spatial location
        xt = xs.reshape(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)   # (B*S, T, C)
        rt = self.drop_path(self.temporal_attn(self.temporal_norm1(xt), groups=S))
        rt = rt.reshape(B, S, T, C).transpose(1, 2).reshape(B, T * S, C)
        xs = xs + self.temporal_fc(rt)

        # spatial attention: one sequence per frame, the class token joins every frame
        frames = torch.cat([cls.expand(B, T, C).reshape(B * T, 1, C), xs.reshape(B * T, S, C)], dim=1)
        rs = self.drop_path(self.attn(self.norm1(frames), groups=T))       # (B*T, 1+S, C)
        cls_res = rs[:, 0].reshape(B, T, C).mean(dim=1, keepdim=True)       # average the per-frame class updates
        rs = rs[:, 1:].reshape(B, T * S, C)
        x = torch.cat([cls, xs], dim=1) + torch.cat([cls_res, rs], dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


# ---------------------------------------------------------------------------------------------------------------
# Video ViT (joint or divided attention)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ViTConfig:
    num_classes: int = 400
    num_frames: int = 8
    img_size: int = 224
    in_chans: int = 3
    tubelet: tuple = (2, 16, 16)      # (t, p, p) kernel = stride of the tubelet embedding
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    attention: str = "joint"          # "joint" (all tokens) or "divided" (time, then space; TimeSformer)
    drop_rate: float = 0.0            # dropout in MLP/projections and before the head
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0       # stochastic depth, linearly increasing over the blocks


class VideoViT(nn.Module):
    """ViT on tubelet tokens with joint (``attention="joint"``) or divided (``"divided"``) space-time attention.

    (B, 3, T, H, W) -> tubelets (B, T'·H'·W', C) + class token + position embedding -> blocks -> LN -> class token
    -> head. Joint: one learned position embedding over all 1 + T'H'W' tokens. Divided: a spatial embedding over
    1 + H'W' plus a temporal embedding over T' (TimeSformer).
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if cfg.attention not in ("joint", "divided"):
            raise ValueError(f"attention must be 'joint' or 'divided', got {cfg.attention!r}")
        self.cfg = cfg
        t, p, _ = to_3tuple(cfg.tubelet)
        if cfg.num_frames % t or cfg.img_size % p:
            raise ValueError(f"num_frames {cfg.num_frames} and img_size {cfg.img_size} must be divisible by the "
                             f"tubelet {tuple(to_3tuple(cfg.tubelet))}")
        self.grid = (cfg.num_frames // t, cfg.img_size // p, cfg.img_size // p)   # (T', H', W')
        T, H, W = self.grid
        D = cfg.embed_dim
        self.num_features = D
        self.patch_embed = PatchEmbed3d(cfg.tubelet, cfg.in_chans, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        if cfg.attention == "joint":
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + T * H * W, D))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + H * W, D))
            self.time_embed = nn.Parameter(torch.zeros(1, T, D))
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        dpr = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        block = Block if cfg.attention == "joint" else DividedBlock
        self.blocks = nn.ModuleList([block(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate,
                                           cfg.attn_drop_rate, dpr[i]) for i in range(cfg.depth)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(D, cfg.num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        trunc_normal_(self.pos_embed, 0.02)
        trunc_normal_(self.cls_token, 0.02)
        self.apply(init_weights_vit)
        if self.cfg.attention == "divided":
            nn.init.zeros_(self.time_embed)
            for blk in list(self.blocks)[1:]:   # TimeSformer: blocks after the first start as spatial-only
                nn.init.zeros_(blk.temporal_fc.weight)
                nn.init.zeros_(blk.temporal_fc.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W) -> embedded tokens (B, 1 + T'H'W', C) with class token and positions."""
        T, H, W = self.grid
        x = self.patch_embed(x).flatten(2).transpose(1, 2)                  # (B, T'H'W', C), time-major
        B, N, C = x.shape
        if self.cfg.attention == "joint":
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1) + self.pos_embed
        else:
            x = x.reshape(B, T, H * W, C) + self.pos_embed[:, None, 1:] + self.time_embed[:, :, None]
            cls = self.cls_token + self.pos_embed[:, :1]
            x = torch.cat([cls.expand(B, -1, -1), x.reshape(B, N, C)], dim=1)
        return self.pos_drop(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(x, self.cfg.num_frames, self.cfg.img_size)
        x = self.tokens(x)
        for blk in self.blocks:
            x = blk(x, num_frames=self.grid[0])
        return self.norm(x)[:, 0]                                            # class token (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)))


# ---------------------------------------------------------------------------------------------------------------
# (2+1)D CNN
# ---------------------------------------------------------------------------------------------------------------
def _midplanes(cin: int, cout: int, t: int = 3, k: int = 3) -> int:
    """Tran et al. 2018, Sec. 3.5: the (2+1)D block's hidden width M = t·k²·Nᵢ₋₁·Nᵢ / (k²·Nᵢ₋₁ + t·Nᵢ), so that
    it has as many parameters as the t×k×k 3D convolution it replaces."""
    return (cin * cout * t * k * k) // (cin * k * k + t * cout)


class Conv2Plus1d(nn.Sequential):
    """A 3×3×3 convolution factorised: 1×3×3 spatial conv -> BN -> ReLU -> 3×1×1 temporal conv (no bias)."""

    def __init__(self, cin: int, cout: int, mid: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(cin, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, cout, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class BasicBlock2Plus1d(nn.Module):
    """ResNet basic block with (2+1)D convolutions; stride 2 halves T, H and W."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        mid = _midplanes(cin, cout)
        self.conv1 = Conv2Plus1d(cin, cout, mid, stride)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = Conv2Plus1d(cout, cout, mid)
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@dataclass
class R2Plus1dConfig:
    num_classes: int = 400
    num_frames: int = 16
    img_size: int = 112
    in_chans: int = 3
    stem_mid: int = 45                 # hidden width of the factorised 3×7×7 stem (45 in R(2+1)D-18)
    stem_stride: int = 2               # spatial stride of the stem (4 in the nano size: CPU budget; its recipe trains at 8x64²)
    widths: tuple = (64, 128, 256, 512)
    depths: tuple = (2, 2, 2, 2)
    drop_rate: float = 0.0             # dropout before the head


class R2Plus1d(nn.Module):
    """R(2+1)D ResNet: factorised stem (1×7×7 spatial, stride 2, then 3×1×1 temporal), four stages of (2+1)D basic
    blocks (stages 2-4 halve T, H and W), global average pooling, linear head."""

    def __init__(self, cfg: R2Plus1dConfig):
        super().__init__()
        self.cfg = cfg
        w0 = cfg.widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(cfg.in_chans, cfg.stem_mid, (1, 7, 7), stride=(1, cfg.stem_stride, cfg.stem_stride),
                      padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(cfg.stem_mid), nn.ReLU(inplace=True),
            nn.Conv3d(cfg.stem_mid, w0, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(w0), nn.ReLU(inplace=True))
        stages, cin = [], w0
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(*[BasicBlock2Plus1d(cin if j == 0 else w, w, stride if j == 0 else 1)
                                          for j in range(d)]))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.num_features = cin
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(cin, cfg.num_classes)
        init_weights_resnet(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, self.cfg.in_chans)
        x = self.stem(x)                                                     # (B, C0, T, H/s, W/s)
        for stage in self.stages:
            x = stage(x)
            record(stage, "activation", x)
        return x.mean(dim=(2, 3, 4))                                         # (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)))


# ---------------------------------------------------------------------------------------------------------------
# Registered variants
# ---------------------------------------------------------------------------------------------------------------
_VIVIT = dict(paper="Arnab et al., ViViT: A Video Vision Transformer, ICCV 2021 (model 1, joint space-time "
                    "attention) on ViT-B/16 (Dosovitskiy et al., ICLR 2021)",
              url="https://arxiv.org/abs/2103.15691")
_TIMESFORMER = dict(paper="Bertasius et al., Is Space-Time Attention All You Need for Video Understanding?, ICML 2021",
                    url="https://arxiv.org/abs/2102.05095")
_R2PLUS1D = dict(paper="Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018",
                 url="https://arxiv.org/abs/1711.11248")


def timesformer_checkpoint_filter_fn(state_dict: dict, model: VideoViT) -> dict:
    """Official TimeSformer checkpoint (facebookresearch/TimeSformer, ``model_state`` of a ``.pyth``) -> vidlab.

    Official keys carry a ``model.`` prefix and otherwise use the names of `DividedBlock` / `VideoViT`; the
    per-frame patch embedding is a Conv2d (C, 3, 16, 16) and becomes our Conv3d (C, 3, 1, 16, 16). Position
    embeddings are not resized: a checkpoint for another clip size is reported as a shape mismatch. The .pyth
    file's `epoch`, `optimizer_state` and `cfg` sit beside `model_state` and are not read; `module.` (a DDP save)
    is stripped too, fp16 tensors are upcast, a non-tensor entry in the state dict is refused by name.
    """
    from .official import unwrap_official
    out = {}
    own = model.state_dict()
    for k, v in unwrap_official(state_dict, ("module.", "model."), "TimeSformer").items():
        if k == "patch_embed.proj.weight" and v.ndim == 4 and own[k].ndim == 5:
            if own[k].shape[2] != 1:
                raise ValueError(f"a 2D patch embedding {tuple(v.shape)} fits only tubelet t=1, "
                                 f"the model has {tuple(own[k].shape)}")
            v = v.unsqueeze(2)                                               # (C, 3, 16, 16) -> (C, 3, 1, 16, 16)
        out[k] = v
    return out


def _vit(attention: str, num_classes: int, num_frames: int, img_size: int, **cfg) -> VideoViT:
    return VideoViT(ViTConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size,
                              attention=attention, **cfg))


@register_model(info=ModelInfo(
    **_VIVIT, variant="ViT-B/16, joint space-time attention, tubelet 2x16x16 (vidlab's config)", input="8x224x224",
    params_official=87_147_664, flops_convention="vidlab.profile MACs per view",
    notes="Not a published model: the plain-attention reference of docs/architectures.md §0. 784+1 tokens at 8x224²; "
          "87,147,664 params and 79.0 GMAC (attention matmuls 11.4) at 400 classes; at 16 frames 87,749,776 "
          "and 180.6 GMAC."))
def vit_joint_base(num_classes: int = 400, num_frames: int = 8, img_size: int = 224, **overrides) -> VideoViT:
    return _vit("joint", num_classes, num_frames, img_size, **{**dict(tubelet=(2, 16, 16), embed_dim=768, depth=12,
                                                                       num_heads=12), **overrides})


@register_model(recipe=Recipe(lr=5e-4, epochs=10, batch_size=16, num_frames=8, img_size=32, stream_clips=1600,
                              pretrain={"num_frames": 2}),   # frame pretraining, as the designs start from
                info=ModelInfo(**_VIVIT, variant="ViT nano (96 wide, 4 blocks, 4 heads), joint attention, tubelet 2x4x4",
                               notes="vidlab's teaching size: 256+1 tokens at 8x32², trains on a CPU in minutes."))
def vit_joint_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 32, **overrides) -> VideoViT:
    return _vit("joint", num_classes, num_frames, img_size, **{**dict(tubelet=(2, 4, 4), embed_dim=96, depth=4,
                                                                       num_heads=4), **overrides})


@register_model(converter=timesformer_checkpoint_filter_fn, info=ModelInfo(
    **_TIMESFORMER, variant="TimeSformer (divided space-time, ViT-B/16, 1x16x16 patches)", input="8x224x224",
    pretrained_layouts=("TimeSformer .pyth (model_state, 'model.' prefix)",),
    views="1x3", params_reported=121.4e6, gflops_reported=196.0,
    flops_convention="fvcore MACs called FLOPs; paper: 0.59 TFLOPs for 3 views, i.e. ~196 G per view",
    top1={"K400": 78.0},
    notes="1568+1 tokens at 8x224². temporal_fc starts at zero in every block but the first (official init)."))
def vit_divided_base(num_classes: int = 400, num_frames: int = 8, img_size: int = 224, **overrides) -> VideoViT:
    return _vit("divided", num_classes, num_frames, img_size, **{**dict(tubelet=(1, 16, 16), embed_dim=768,
                                                                         depth=12, num_heads=12), **overrides})


@register_model(recipe=Recipe(lr=5e-4, epochs=10, batch_size=16, num_frames=8, img_size=32, stream_clips=1600,
                              pretrain={"num_frames": 2}),   # frame pretraining, as the designs start from
                info=ModelInfo(**_TIMESFORMER, variant="TimeSformer nano (96 wide, 4 blocks, 4 heads), tubelet 2x4x4",
                               notes="vidlab's teaching size; same tokens as vit_joint_nano so the two differ only "
                                     "in the attention."))
def vit_divided_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 32, **overrides) -> VideoViT:
    return _vit("divided", num_classes, num_frames, img_size, **{**dict(tubelet=(2, 4, 4), embed_dim=96,
                                                                         depth=4, num_heads=4), **overrides})


@register_model(info=ModelInfo(
    **_R2PLUS1D, variant="R(2+1)D-18", input="16x112x112",
    flops_convention="vidlab.profile MACs per view",
    notes="Layout of torchvision's r2plus1d_18 (stem width 45, hidden widths M_i of Sec. 3.5), readable names."))
def r2plus1d_18(num_classes: int = 400, num_frames: int = 16, img_size: int = 112, **overrides) -> R2Plus1d:
    return R2Plus1d(R2Plus1dConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size, **overrides))


_R2PLUS1D_NANO_RECIPE = Recipe(lr=3e-3, epochs=10, batch_size=16, num_frames=8, img_size=64, stream_clips=960)


@register_model(info=ModelInfo(
    **_R2PLUS1D, variant="R(2+1)D nano (widths 16-128, one block per stage, stem stride 4)",
    notes="vidlab's teaching size; trains on a CPU in minutes."),
    recipe=_R2PLUS1D_NANO_RECIPE)
def r2plus1d_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 64, **overrides) -> R2Plus1d:
    cfg = {**dict(stem_mid=12, stem_stride=4, widths=(16, 32, 64, 128), depths=(1, 1, 1, 1)), **overrides}
    return R2Plus1d(R2Plus1dConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size, **cfg))


@register_model(info=ModelInfo(
    **_R2PLUS1D, variant="R(2+1)D nano at Video Mobile-Former nano's cost (widths 8-60, stem 6)",
    notes="r2plus1d_nano with its widths and stem scaled so that its MACs per clip at its recipe's input (8x64²) "
          "equal video_mobileformer_nano's at that model's (8x32²): the equal-cost baseline of notebook 04."),
    recipe=_R2PLUS1D_NANO_RECIPE)   # r2plus1d_nano's
def r2plus1d_small_nano(num_classes: int = 400, num_frames: int = 8, img_size: int = 64, **overrides) -> R2Plus1d:
    cfg = {**dict(stem_mid=6, stem_stride=4, widths=(8, 14, 30, 60), depths=(1, 1, 1, 1)), **overrides}
    return R2Plus1d(R2Plus1dConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size, **cfg))
