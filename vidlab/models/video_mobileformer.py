"""Video Mobile-Former: a lightweight 3D CNN and a handful of global clip tokens, run in parallel.

Paper: Wang et al., "Video Mobile-Former: Video Recognition with Efficient Global Spatial-temporal Modeling",
arXiv 2208.12257 (2022). Image model it extends: Chen et al., "Mobile-Former: Bridging MobileNet and
Transformer", CVPR 2022 (code: github.com/AAboys/MobileFormer at f447310, read as a reference, not copied).

The idea in one picture (one block, X local map, Z the M global tokens of the whole clip)::

    X (B, C, T, H, W) ──────────────┬──────────────► Mobile (3D inverted bottleneck) ──► + ──► X'
                                    │ Mobile->Former            ▲ dynamic-ReLU slopes    ▲ Former->Mobile
                                    ▼ (tokens query T*H*W)      │ from token 0           │ (positions query tokens)
    Z (B, M, d) ──────────────► Z + cross-attn ──► Former (self-attn over M tokens) ──────┴──► Z'

Only M ~ 6 tokens summarise the whole clip, so the bridges cost O(M * T*H*W * C) -- linear in frames -- and
the Former costs O(M^2 d + M d^2) whatever T is: no attention between the T*H*W local positions ever.

Where each piece comes from (docs/architectures.md section 2):
  * Fixed by the paper's abstract: a lightweight 3D-CNN for local context in parallel with a Transformer over
    very few global tokens (e.g. 6) for the whole video, exchanging information by two-way cross-attention.
  * Followed as the image Mobile-Former code computes it: Mobile->Former with K = V = X (no projection on the
    local side) and a sigmoid gate on its output; the Former (queries projected, keys = values = tokens,
    post-norm, FFN x2 with GELU); Former->Mobile (positions query the tokens, no projection of X, no output
    projection); the Mobile sub-block with token-driven dynamic ReLU (slopes from token 0 only); the stem, the
    "lite" first block, the downsample block (DW s2 -> PW -> DW -> PW with an inner skip); the final gated
    Mobile->Former and the head that concatenates the pooled local features with the first token.
  * vidlab's choices, and why (the rule: change only what "video" forces):
      - feature map X is (B, C, T, H, W); the bridges flatten it to N = T*H*W, so each token's softmax spans
        every position of every frame (one token set per clip, as the abstract says);
      - depthwise convs are 3D, kt x 3 x 3 with kt = `temporal_kernel` = 3 by default: the cheapest way to make
        the "lightweight 3D-CNN" see time (a 3x3x3 DW conv adds only 2 x 9 MACs per position and channel);
      - stem and pointwise convs stay per frame ((1,3,3) stride (1,2,2) and 1x1x1): they dominate the cost and
        temporal context is already given by every DW conv;
      - T is never downsampled (stride (1,2,2)): clips are short (8-16 frames);
      - no temporal (or spatial) position embedding: Mobile-Former has none; frame order is visible only
        through the zero-padded temporal convs (notebook 04 tests what that buys);
      - head pools over (T, H, W) jointly; DyReLU slopes are broadcast over (T, H, W);
      - conv init N(0, sqrt(2 / (kt*kh*kw*C_out))) (the image code's He init with the 3D fan);
      - tokens are kept batch-first (B, M, d), so DropPath drops per clip (the image code stores tokens
        (M, B, d) and its timm DropPath therefore drops per token; it trained with drop-path 0, so eval and
        the published weights are unaffected);
      - image weights initialise the video model by *centre* inflation of the DW kernels (2D kernel at the
        middle tap, zeros elsewhere): the video model then starts as the ImageNet model run frame by frame
        and learns temporal taps from zero (`load_image_weights`; I3D mean inflation is an option).
  With one frame and `temporal_kernel=1` the network IS the image Mobile-Former: `image_mobileformer_config`
  gives those configs, the parameter counts equal the official code's exactly and official ImageNet
  checkpoints load strictly through `checkpoint_filter_fn` (tests/test_video_mobileformer.py).

Sizes (vidlab's; the paper publishes none): named by their MEASURED cost for one clip (all T frames, one view)
in Mobile-Former's own convention, i.e. multiply-accumulates of convs, linears and matmuls PLUS the two
multiplies per output element of every dynamic ReLU (what the Mobile-Former README calls "FLOPs"):
`video_mobileformer_500m` (<= 0.5 G), `_1g` (< 1 G), `_2g` (<= 2 G), `_6g` (<= 6 G) and the teaching size
`_nano`. `vidlab.profile.mobileformer_macs(model, clip)` measures it (FlopCounterMode MACs + DyReLU products).

Capture kinds (`vidlab.viz.capture`):
  * ``token_attention`` (B, heads, M, T*H*W) from every `MobileToFormer` (softmax over the T*H*W positions:
    rows sum to 1) and every `FormerToMobile` (there the positions query the tokens, the softmax runs over M;
    the map is stored transposed, [b, h, m, n] = weight position n gives token m, so columns sum to 1);
  * ``attention`` (B, heads, M, M) from every `Former`;
  * ``dyrelu`` (B, 2E) from every `DynamicReLU`: the slopes [a1 (E) | a2 (E)], y = max(a1 x, a2 x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..viz.capture import record
from .layers import DropPath, Mlp, check_clip, inflate_weight
from .registry import ModelInfo, Recipe, register_model

__all__ = ["VideoMobileFormerConfig", "VideoMobileFormer", "MobileToFormer", "Former", "FormerToMobile",
           "Mobile", "MobileDownsample", "LiteBottleneck", "DynamicReLU", "MobileFormerBlock",
           "image_mobileformer_config", "checkpoint_filter_fn", "load_image_weights",
           "token_attention_frames", "IMAGE_PARAMS"]


# --------------------------------------------------------------------------------------------------------------
# small pieces
# --------------------------------------------------------------------------------------------------------------
def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """hsig(x) = ReLU6(x + 3) / 6, Mobile-Former's gate nonlinearity."""
    return F.relu6(x + 3.0) / 6.0


def hard_swish(x: torch.Tensor) -> torch.Tensor:
    return x * hard_sigmoid(x)


class ConvBN(nn.Sequential):
    """Conv3d (no bias) + BatchNorm3d. (B, C_in, T, H, W) -> (B, C_out, T', H', W')."""

    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1), groups: int = 1):
        padding = tuple(k // 2 for k in kernel)
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm3d(c_out)

    channels_last_depthwise = True    # class switch: benchmarks/video_mobileformer.py --depthwise compares both

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.groups > 1 and self.channels_last_depthwise and x.device.type == "cpu":
            # the same convolution (equal up to float rounding); on a CPU the grouped (depthwise) Conv3d runs its
            # forward and backward 2-5x faster on channels-last input (docs/benchmarks.md, Video Mobile-Former)
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.bn(self.conv(x))


class DynamicReLU(nn.Module):
    """Token-driven dynamic ReLU (Mobile-Former Sec. 3.1): y = max(a1 * x, a2 * x) per clip and channel.

    The slopes come from the first global token through a two-layer "hyper" MLP:
        s = hsig(W2 ReLU(W1 z0 + b1) + b2) in [0, 1]^{2E};  a1 = 2 s[:E] in [0, 2];  a2 = 2 s[E:] - 1 in [-1, 1]
    and are broadcast over all T*H*W positions (no intercepts, as the image code).

    x (B, E, T, H, W), z0 (B, d) -> (B, E, T, H, W).   Capture: ``dyrelu`` (B, 2E) = [a1 | a2].
    """

    def __init__(self, channels: int, token_dim: int, reduction: int = 4):
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(token_dim, token_dim // reduction), nn.ReLU(inplace=True),
                                   nn.Linear(token_dim // reduction, 2 * channels))

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        s = hard_sigmoid(self.hyper(z0))                    # (B, 2E) in [0, 1]
        a1, a2 = s.chunk(2, dim=1)
        a1, a2 = 2.0 * a1, 2.0 * a2 - 1.0                   # [0, 2] and [-1, 1]
        record(self, "dyrelu", lambda: torch.cat([a1, a2], dim=1))
        a1, a2 = a1[:, :, None, None, None], a2[:, :, None, None, None]   # (B, E, 1, 1, 1)
        return torch.maximum(x * a1, x * a2)


# --------------------------------------------------------------------------------------------------------------
# the bridge: Mobile->Former, Former, Former->Mobile
# --------------------------------------------------------------------------------------------------------------
class MobileToFormer(nn.Module):
    """Tokens gather from all T*H*W local positions (lightweight cross-attention, Mobile-Former eq. 1).

        Q_i = (Z W_q + b)_i                       (d -> C, split into h contiguous channel groups)
        A_i = softmax_N(Q_i X_i^T / sqrt(C/h))    K = V = X: no projection on the local side
        O   = [A_1 X_1, ..., A_h X_h] * 2 hsig(Z W_g + b_g)       (gate, from the block's input tokens)
        Z   = LN(Z + DropPath(O W_o + b_o))       (C -> d, post-norm)

    x (B, C, T, H, W), z (B, M, d) -> z (B, M, d).   Capture: ``token_attention`` (B, h, M, T*H*W).
    `kv_proj=True` adds 1x1x1 projections of X to keys and values (a "standard MHA" reading of the paper).
    """

    def __init__(self, channels: int, token_dim: int, num_heads: int = 2, gate: bool = True,
                 kv_proj: bool = False, drop_path: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (channels // num_heads) ** -0.5
        self.q = nn.Linear(token_dim, channels)
        self.gate = nn.Linear(token_dim, channels) if gate else None
        self.k = nn.Conv3d(channels, channels, 1, bias=False) if kv_proj else None
        self.v = nn.Conv3d(channels, channels, 1, bias=False) if kv_proj else None
        self.proj = nn.Linear(channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        M, h = z.shape[1], self.num_heads
        q = self.q(z).view(B, M, h, C // h).transpose(1, 2)            # (B, h, M, C/h)
        k = (self.k(x) if self.k is not None else x).reshape(B, h, C // h, T * H * W)   # (B, h, C/h, N)
        v = (self.v(x).reshape(B, h, C // h, T * H * W) if self.v is not None else k)
        attn = (q @ k * self.scale).softmax(dim=-1)                     # (B, h, M, N): each token over the clip
        record(self, "token_attention", attn)
        o = (attn @ v.transpose(-1, -2))                                # (B, h, M, C/h)
        o = o.transpose(1, 2).reshape(B, M, C)                          # (B, M, C)
        if self.gate is not None:
            o = o * (2.0 * hard_sigmoid(self.gate(z)))
        return self.norm(z + self.drop_path(self.proj(o)))


class Former(nn.Module):
    """The Transformer over the M global tokens (Mobile-Former eq. 2), post-norm as the image code.

        A_i = softmax(Q_i Z_i^T / sqrt(d/h)),  Q = Z W_q + b,  K = V = Z (no projection)
        Z   = LN(Z + DropPath([A_1 Z_1, ..., A_h Z_h] W_p + b_p));   Z = LN(Z + FFN(Z)),  FFN: d -> 2d -> d, GELU

    z (B, M, d) -> (B, M, d); its cost does not depend on T, H or W.   Capture: ``attention`` (B, h, M, M).
    """

    def __init__(self, token_dim: int, num_heads: int = 4, ffn_ratio: int = 2, drop_path: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (token_dim // num_heads) ** -0.5
        self.q = nn.Linear(token_dim, token_dim)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm1 = nn.LayerNorm(token_dim)
        self.ffn = Mlp(token_dim, token_dim * ffn_ratio, act_layer=nn.GELU)
        self.norm2 = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        B, M, d = z.shape
        h = self.num_heads
        q = self.q(z).view(B, M, h, d // h).transpose(1, 2)             # (B, h, M, d/h)
        kv = z.view(B, M, h, d // h).transpose(1, 2)                    # (B, h, M, d/h)
        attn = (q @ kv.transpose(-1, -2) * self.scale).softmax(dim=-1)  # (B, h, M, M)
        record(self, "attention", attn)
        o = (attn @ kv).transpose(1, 2).reshape(B, M, d)
        z = self.norm1(z + self.drop_path(self.proj(o)))
        return self.norm2(z + self.ffn(z))                              # no DropPath on the FFN (image code)


class FormerToMobile(nn.Module):
    """Every local position reads the tokens (Mobile-Former eq. 4).

        B_i = softmax_M(X_i (Z W_k + b_k)_i^T / sqrt(C/h))     Q = X: no projection on the local side
        X   = X + DropPath([B_1 V_1, ..., B_h V_h]),  V = Z W_v + b_v      (no output projection, norm or gate)

    x (B, C, T, H, W), z (B, M, d) -> (B, C, T, H, W).
    Capture: ``token_attention`` (B, h, M, T*H*W), the (B, h, N, M) attention stored transposed, so
    [b, h, m, n] is how much position n takes from token m (it sums to 1 over m, not over n).
    `kv_proj=True` adds 1x1x1 projections of X to queries and of the result ("fuse"), as the image code's option.
    """

    def __init__(self, channels: int, token_dim: int, num_heads: int = 2, kv_proj: bool = False,
                 drop_path: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (channels // num_heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.v = nn.Linear(token_dim, channels)
        self.q = nn.Conv3d(channels, channels, 1, bias=False) if kv_proj else None
        self.fuse = nn.Conv3d(channels, channels, 1, bias=False) if kv_proj else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        M, h = z.shape[1], self.num_heads
        q = (self.q(x) if self.q is not None else x).reshape(B, h, C // h, T * H * W).transpose(-1, -2)  # (B,h,N,C/h)
        k = self.k(z).view(B, M, h, C // h).permute(0, 2, 3, 1)        # (B, h, C/h, M)
        v = self.v(z).view(B, M, h, C // h).transpose(1, 2)            # (B, h, M, C/h)
        attn = (q @ k * self.scale).softmax(dim=-1)                     # (B, h, N, M): each position over tokens
        record(self, "token_attention", lambda: attn.transpose(-1, -2))
        o = (attn @ v).transpose(-1, -2).reshape(B, C, T, H, W)         # (B, C, T, H, W)
        if self.fuse is not None:
            o = self.fuse(o)
        return x + self.drop_path(o)


# --------------------------------------------------------------------------------------------------------------
# the Mobile side: 3D inverted bottlenecks
# --------------------------------------------------------------------------------------------------------------
class LiteBottleneck(nn.Module):
    """Block 1 of Mobile-Former ("lite", no bridges): DW (e*C_in, stride s), BN, ReLU6 -> PW, BN (+ identity).

    x (B, C_in, T, H, W) -> (B, C_out, T, H/s, W/s).
    """

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int, kt: int):
        super().__init__()
        self.dw = ConvBN(c_in, c_in * expand, (kt, 3, 3), (1, stride, stride), groups=c_in)
        self.pw = ConvBN(c_in * expand, c_out)
        self.identity = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(F.relu6(self.dw(x)))
        return x + y if self.identity else y


class Mobile(nn.Module):
    """Mobile sub-block (stride 1): PW C->E, BN, DyReLU -> DW kt x 3 x 3, BN, DyReLU -> PW E->C_out, BN (+ skip).

    x (B, C_in, T, H, W), z0 (B, d) -> (B, C_out, T, H, W).  The slopes of both DyReLUs come from token z0.
    """

    def __init__(self, c_in: int, c_out: int, expand: float, kt: int, token_dim: int, hyper_reduction: int = 4,
                 drop_path: float = 0.0):
        super().__init__()
        e = round(c_in * expand)
        self.pw1 = ConvBN(c_in, e)
        self.act1 = DynamicReLU(e, token_dim, hyper_reduction)
        self.dw = ConvBN(e, e, (kt, 3, 3), groups=e)
        self.act2 = DynamicReLU(e, token_dim, hyper_reduction)
        self.pw2 = ConvBN(e, c_out)
        self.identity = c_in == c_out
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.pw1(x), z0)
        y = self.act2(self.dw(y), z0)
        y = self.pw2(y)
        return x + self.drop_path(y) if self.identity else y


class MobileDownsample(nn.Module):
    """Mobile sub-block that halves H and W (image code's "DnaBlock3"), T kept:

        G1 = DyReLU(BN(DW s(1,2,2), C_in -> e1*C_in));  G2 = BN(PW -> C_out)          (no activation)
        G3 = DyReLU(BN(DW, C_out -> e2*C_out));        G4 = BN(PW -> C_out);   out = G2 + DropPath(G4)

    x (B, C_in, T, H, W), z0 (B, d) -> (B, C_out, T, H/2, W/2).
    """

    def __init__(self, c_in: int, c_out: int, expand1: float, expand2: float, kt: int, token_dim: int,
                 hyper_reduction: int = 4, drop_path: float = 0.0):
        super().__init__()
        e1, e2 = round(c_in * expand1), round(c_out * expand2)
        self.dw1 = ConvBN(c_in, e1, (kt, 3, 3), (1, 2, 2), groups=c_in)
        self.act1 = DynamicReLU(e1, token_dim, hyper_reduction)
        self.pw1 = ConvBN(e1, c_out)
        self.dw2 = ConvBN(c_out, e2, (kt, 3, 3), groups=c_out)
        self.act2 = DynamicReLU(e2, token_dim, hyper_reduction)
        self.pw2 = ConvBN(e2, c_out)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        g2 = self.pw1(self.act1(self.dw1(x), z0))
        g4 = self.pw2(self.act2(self.dw2(g2), z0))
        return g2 + self.drop_path(g4)


class MobileFormerBlock(nn.Module):
    """One Mobile-Former block, in the image code's order:

        Z  <- Former(MobileToFormer(X, Z))        tokens read the block's *input* map
        X' <- Mobile(X, z0)                       DyReLU slopes from the *updated* first token
        X  <- X' + FormerToMobile(X', Z)

    x (B, C_in, T, H, W), z (B, M, d) -> x (B, C_out, T, H', W'), z (B, M, d).
    """

    def __init__(self, c_in: int, c_out: int, expand: float, expand2: float | None, downsample: bool,
                 cfg: "VideoMobileFormerConfig", drop_path: float = 0.0):
        super().__init__()
        d = cfg.token_dim
        self.mobile_to_former = MobileToFormer(c_in, d, cfg.bridge_heads, cfg.bridge_gate, cfg.kv_proj, drop_path)
        self.former = Former(d, cfg.former_heads, cfg.ffn_ratio, drop_path)
        if downsample:
            self.mobile = MobileDownsample(c_in, c_out, expand, expand2, cfg.temporal_kernel, d,
                                           cfg.hyper_reduction, drop_path)
        else:
            self.mobile = Mobile(c_in, c_out, expand, cfg.temporal_kernel, d, cfg.hyper_reduction, drop_path)
        self.former_to_mobile = FormerToMobile(c_out, d, cfg.bridge_heads, cfg.kv_proj, drop_path)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.former(self.mobile_to_former(x, z))
        x = self.mobile(x, z[:, 0])
        return self.former_to_mobile(x, z), z


# --------------------------------------------------------------------------------------------------------------
# config and network
# --------------------------------------------------------------------------------------------------------------
@dataclass
class VideoMobileFormerConfig:
    # blocks after the stem, as in the image code's table: (kind, e1, C_out, stride, e2) with kind
    # "lite" (block 1, no bridges), "down" (downsample Mobile-Former block) or "mf" (standard block)
    blocks: tuple = (("lite", 2, 16, 1, 0),
                     ("down", 6, 24, 2, 4), ("mf", 4, 24, 1, 4),
                     ("down", 6, 48, 2, 4), ("mf", 4, 48, 1, 4),
                     ("down", 6, 96, 2, 4), ("mf", 4, 96, 1, 4), ("mf", 6, 128, 1, 4), ("mf", 6, 128, 1, 4),
                     ("down", 6, 192, 2, 4), ("mf", 6, 192, 1, 4), ("mf", 6, 192, 1, 4))
    stem_chs: int = 16                # channels after the stride-2 stem
    num_tokens: int = 6               # M: global tokens for the whole clip (abstract: "e.g. 6")
    token_dim: int = 192              # d: token width
    bridge_heads: int = 2             # heads of Mobile->Former and Former->Mobile (contiguous channel groups)
    former_heads: int = 4             # heads of the Former's self-attention over tokens
    ffn_ratio: int = 2                # Former FFN hidden = ffn_ratio * d
    hyper_reduction: int = 4          # DyReLU hyper-MLP: d -> d / hyper_reduction -> 2E
    head_expand: int = 6              # head PW: C -> head_expand * C
    num_features: int = 1920          # D_fc, width of the head's hidden Linear
    temporal_kernel: int = 3          # kt of every depthwise conv (1 = per-frame 2D, the image model)
    stem_temporal_kernel: int = 1     # kt of the stem conv (1: per frame; 3: a 3x3x3 stem)
    kv_proj: bool = False             # image code: False (K = V = X); True adds 1x1x1 projections on the local side
    bridge_gate: bool = True          # Mobile->Former output gate 2*hsig(Z W_g) (image code: on)
    num_classes: int = 400
    num_frames: int = 8               # the clip length the model is meant for (used for cost reports only)
    img_size: int = 224               # frame size it is meant for (cost reports only; any size runs)
    in_chans: int = 3
    drop_rate: float = 0.0            # dropout before the classifier (image code trained 508M with 0.3)
    drop_path_rate: float = 0.0       # stochastic depth, ramped linearly over blocks as the image code


class VideoMobileFormer(nn.Module):
    """Video Mobile-Former. (B, 3, T, H, W) normalised clip -> logits (B, num_classes).

    stem (1,3,3) s(1,2,2) -> lite block -> Mobile-Former blocks (each with its two bridges and a Former)
    -> final gated Mobile->Former -> head: [GAP_{T,H,W}(PW(X)), z0] -> Linear -> BN -> hswish -> Linear.
    """

    def __init__(self, cfg: VideoMobileFormerConfig):
        super().__init__()
        self.cfg = cfg
        d, kt = cfg.token_dim, cfg.temporal_kernel
        if kt % 2 != 1 or cfg.stem_temporal_kernel % 2 != 1:
            raise ValueError(f"temporal kernels must be odd (same padding), got {kt}, {cfg.stem_temporal_kernel}")
        self.tokens = nn.Parameter(torch.randn(cfg.num_tokens, d))          # learned, N(0, 1), one set per clip
        kst = cfg.stem_temporal_kernel
        self.stem = nn.Sequential()
        self.stem.conv = nn.Conv3d(cfg.in_chans, cfg.stem_chs, (kst, 3, 3), (1, 2, 2), (kst // 2, 1, 1), bias=False)
        self.stem.bn = nn.BatchNorm3d(cfg.stem_chs)
        self.stem.act = nn.ReLU6(inplace=True)

        blocks, c = [], cfg.stem_chs
        n = len(cfg.blocks)
        for i, (kind, e1, c_out, stride, e2) in enumerate(cfg.blocks):
            dp = cfg.drop_path_rate * (i + 1) / n                            # the image code's linear ramp
            if kind == "lite":
                blocks.append(LiteBottleneck(c, c_out, e1, stride, kt))
            elif kind in ("down", "mf"):
                if (kind == "down") != (stride == 2):
                    raise ValueError(f"block {i}: 'down' blocks have stride 2 and 'mf' blocks stride 1, got {kind!r}"
                                     f" with stride {stride}")
                blocks.append(MobileFormerBlock(c, c_out, e1, e2, kind == "down", cfg, dp))
            else:
                raise ValueError(f"block {i}: kind must be 'lite', 'down' or 'mf', got {kind!r}")
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.num_channels = c

        # after the last block: one more gated Mobile->Former (no Former), then the head. The image code never
        # projects the local side here, even with its projection option on; kept so checkpoints match.
        self.mobile_to_former = MobileToFormer(c, d, cfg.bridge_heads, cfg.bridge_gate, False, cfg.drop_path_rate)
        self.head_pw = ConvBN(c, c * cfg.head_expand)
        self.fc = nn.Linear(c * cfg.head_expand + d, cfg.num_features)
        self.fc_norm = nn.BatchNorm1d(cfg.num_features)
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.classifier = nn.Linear(cfg.num_features, cfg.num_classes)
        self.num_features = cfg.num_features
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # the image code's init: He normal with fan = kernel volume * C_out, Linear N(0, 0.01), norms 1/0
        if isinstance(m, nn.Conv3d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (math.prod(m.kernel_size) * m.out_channels)))
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, H, W) -> last local map X (B, C, T, H/32, W/32) and the tokens Z (B, M, d)."""
        check_clip(x, self.cfg.in_chans)
        z = self.tokens.unsqueeze(0).repeat(x.shape[0], 1, 1)                # (B, M, d): the same start per clip
        x = self.stem(x)                                                     # (B, C_stem, T, H/2, W/2)
        for blk in self.blocks:
            if isinstance(blk, LiteBottleneck):
                x = blk(x)
            else:
                x, z = blk(x, z)
        return x, self.mobile_to_former(x, z)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> pooled pre-classifier features (B, num_features)."""
        x, z = self.forward_tokens(x)
        x = F.relu6(self.head_pw(x))                                         # (B, 6C, T, h, w)
        x = hard_swish(x.mean(dim=(2, 3, 4)))                                # GAP over (T, H, W), then hswish
        x = torch.cat([x, z[:, 0]], dim=1)                                   # (B, 6C + d): local + first token
        return hard_swish(self.fc_norm(self.fc(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_drop(self.forward_features(x)))


# --------------------------------------------------------------------------------------------------------------
# the image Mobile-Former as a special case, and its checkpoints
# --------------------------------------------------------------------------------------------------------------
_IMAGE_BLOCKS = {  # (kind, e1, C_out, stride, e2) per block, from the image code's variant table
    "508m": (24, 6, 192, 1920, (("lite", 2, 24, 1, 0), ("down", 6, 40, 2, 4), ("mf", 3, 40, 1, 3),
                                ("down", 6, 72, 2, 4), ("mf", 3, 72, 1, 3), ("down", 6, 128, 2, 4),
                                ("mf", 4, 128, 1, 4), ("mf", 6, 176, 1, 4), ("mf", 6, 176, 1, 4),
                                ("down", 6, 240, 2, 4), ("mf", 6, 240, 1, 4), ("mf", 6, 240, 1, 4))),
    "294m": (16, 6, 192, 1920, VideoMobileFormerConfig.blocks),
    "214m": (12, 6, 192, 1600, (("lite", 2, 12, 1, 0), ("down", 6, 20, 2, 4), ("mf", 3, 20, 1, 4),
                                ("down", 6, 40, 2, 4), ("mf", 4, 40, 1, 4), ("down", 6, 80, 2, 4),
                                ("mf", 4, 80, 1, 4), ("mf", 6, 112, 1, 4), ("mf", 6, 112, 1, 4),
                                ("down", 6, 160, 2, 4), ("mf", 6, 160, 1, 4), ("mf", 6, 160, 1, 4))),
    "151m": (12, 6, 192, 1280, (("lite", 2, 12, 1, 0), ("down", 6, 16, 2, 4), ("mf", 3, 16, 1, 3),
                                ("down", 6, 32, 2, 4), ("mf", 3, 32, 1, 3), ("down", 6, 64, 2, 4),
                                ("mf", 4, 64, 1, 4), ("mf", 6, 88, 1, 4), ("mf", 6, 88, 1, 4),
                                ("down", 6, 128, 2, 4), ("mf", 6, 128, 1, 4), ("mf", 6, 128, 1, 4))),
    "96m": (12, 4, 128, 1280, (("lite", 2, 12, 1, 0), ("down", 6, 16, 2, 4), ("down", 6, 32, 2, 4),
                               ("mf", 3, 32, 1, 3), ("down", 6, 64, 2, 4), ("mf", 4, 64, 1, 4),
                               ("mf", 6, 88, 1, 4), ("down", 6, 128, 2, 4), ("mf", 6, 128, 1, 4))),
    "52m": (8, 3, 128, 1024, (("lite", 3, 12, 2, 0), ("mf", 3, 12, 1, 3), ("down", 6, 24, 2, 4),
                              ("mf", 3, 24, 1, 3), ("down", 6, 48, 2, 4), ("mf", 4, 48, 1, 4),
                              ("mf", 6, 64, 1, 4), ("down", 6, 96, 2, 4), ("mf", 6, 96, 1, 4))),
}

# exact parameter counts of the image code (AAboys/MobileFormer f447310, 1000 classes), and the published ones
IMAGE_PARAMS = {"508m": 13_976_976, "294m": 11_422_648, "214m": 9_425_920, "151m": 7_595_828,
                "96m": 4_585_252, "52m": 3_469_092}
IMAGE_REPORTED = {  # README: params (M), "FLOPs" (MACs incl. DyReLU, 224x224), ImageNet top-1
    "508m": (14.0, 508, 79.3), "294m": (11.4, 294, 77.9), "214m": (9.4, 214, 76.7),
    "151m": (7.6, 151, 75.2), "96m": (4.6, 96, 72.8), "52m": (3.5, 52, 68.7)}


def image_mobileformer_config(variant: str = "294m", **overrides) -> VideoMobileFormerConfig:
    """The config under which VideoMobileFormer IS the image Mobile-Former `variant` (one frame, 2D kernels)."""
    if variant not in _IMAGE_BLOCKS:
        raise ValueError(f"image Mobile-Former variant must be one of {', '.join(_IMAGE_BLOCKS)}, got {variant!r}"
                         " (26m needs grouped 1x1 convs and channel shuffle, which vidlab does not build)")
    stem, m, d, fc, blocks = _IMAGE_BLOCKS[variant]
    cfg = VideoMobileFormerConfig(blocks=blocks, stem_chs=stem, num_tokens=m, token_dim=d, num_features=fc,
                                  temporal_kernel=1, num_classes=1000, num_frames=1, img_size=224)
    return replace(cfg, **overrides)


def _official_key_map(model: VideoMobileFormer) -> dict[str, str]:
    """vidlab parameter/buffer prefix -> image Mobile-Former prefix (AAboys/MobileFormer layout).

    Official names: `tokens.weight` (an nn.Embedding); `stem.{0 conv, 1 BN}`; block 0 (lite)
    `features.0.conv.{0 DW, 1 BN, 4 PW, 5 BN}`; downsample blocks `features.i.{conv1 DW s2, hyper1, conv2 PW,
    conv3 DW, hyper3, conv4 PW}`; standard blocks `features.i.{conv1 PW, hyper1, conv2 DW, hyper2, conv3 PW}`,
    each conv `.0` conv + `.1` BN and each hyper `hyperN.hyper.{0, 2}`; bridges `features.i.local_global.{q,
    alpha.0 (gate), proj, layer_norm}`, `features.i.global_block.{q, channel_mlp, layer_norm, ffn.0, ffn.2,
    ffn_norm}`, `features.i.global_local.{k, proj (= W_v)}`; final `local_global.*`; head `classifier.conv.{1 PW,
    2 BN}`, `classifier.fc.{0 Linear, 1 BN1d}`, `classifier.classifier.1`.
    """
    mapping = {"tokens": "tokens.weight", "stem.conv": "stem.0", "stem.bn": "stem.1",
               "head_pw.conv": "classifier.conv.1", "head_pw.bn": "classifier.conv.2", "fc": "classifier.fc.0",
               "fc_norm": "classifier.fc.1", "classifier": "classifier.classifier.1"}
    m2f = {"q": "q", "gate": "alpha.0", "proj": "proj", "norm": "layer_norm", "k": "k", "v": "v"}
    for k, v in m2f.items():
        mapping[f"mobile_to_former.{k}"] = f"local_global.{v}"
    for i, blk in enumerate(model.blocks):
        o, p = f"features.{i}", f"blocks.{i}"
        if isinstance(blk, LiteBottleneck):
            mapping.update({f"{p}.dw.conv": f"{o}.conv.0", f"{p}.dw.bn": f"{o}.conv.1",
                            f"{p}.pw.conv": f"{o}.conv.4", f"{p}.pw.bn": f"{o}.conv.5"})
            continue
        if isinstance(blk.mobile, MobileDownsample):
            convs = {"dw1": "conv1", "pw1": "conv2", "dw2": "conv3", "pw2": "conv4"}
            acts = {"act1": "hyper1", "act2": "hyper3"}
        else:
            convs = {"pw1": "conv1", "dw": "conv2", "pw2": "conv3"}
            acts = {"act1": "hyper1", "act2": "hyper2"}
        for ours, theirs in convs.items():
            mapping[f"{p}.mobile.{ours}.conv"] = f"{o}.{theirs}.0"
            mapping[f"{p}.mobile.{ours}.bn"] = f"{o}.{theirs}.1"
        for ours, theirs in acts.items():
            mapping[f"{p}.mobile.{ours}.hyper"] = f"{o}.{theirs}.hyper"
        for k, v in m2f.items():
            mapping[f"{p}.mobile_to_former.{k}"] = f"{o}.local_global.{v}"
        mapping.update({f"{p}.former.q": f"{o}.global_block.q", f"{p}.former.proj": f"{o}.global_block.channel_mlp",
                        f"{p}.former.norm1": f"{o}.global_block.layer_norm",
                        f"{p}.former.ffn.fc1": f"{o}.global_block.ffn.0",
                        f"{p}.former.ffn.fc2": f"{o}.global_block.ffn.2",
                        f"{p}.former.norm2": f"{o}.global_block.ffn_norm",
                        f"{p}.former_to_mobile.k": f"{o}.global_local.k",
                        f"{p}.former_to_mobile.v": f"{o}.global_local.proj",
                        f"{p}.former_to_mobile.q": f"{o}.global_local.q",
                        f"{p}.former_to_mobile.fuse": f"{o}.global_local.fuse"})
    return mapping


def _official_name(key: str, mapping: dict[str, str]) -> str | None:
    """The image-code name of a vidlab state-dict key (longest matching prefix), or None."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in mapping:
            rest = ".".join(parts[cut:])
            return mapping[prefix] if key == "tokens" else f"{mapping[prefix]}.{rest}" if rest else mapping[prefix]
    return None


def checkpoint_filter_fn(state_dict: dict, model: VideoMobileFormer, inflate: str = "center") -> dict:
    """Image Mobile-Former checkpoint (AAboys/MobileFormer layout) -> this model's state dict.

    Every 2D conv weight (O, I, kh, kw) becomes 3D: depthwise kernels are inflated to the model's temporal
    kernel (`inflate` "center": 2D kernel at the middle tap, zeros elsewhere, so the clip model starts as the
    image model applied per frame; "mean": I3D, repeated and divided by kt), pointwise/stem kernels get a
    size-1 time axis. The 1000-class classifier is dropped when the model has another number of classes
    (the loader then reports it missing). Keys of the checkpoint that are not image Mobile-Former keys are
    left in under their own names, so the loader reports them as unexpected.
    A timm-trained file holds `state_dict`, `state_dict_ema`, `optimizer`, `args` (argparse), `amp_scaler`:
    `create_model(pretrained=...)` reads `state_dict`, `load_image_weights` prefers `state_dict_ema`.
    `module.` is stripped, fp16 tensors are upcast, a non-tensor entry in the state dict is refused by name.
    """
    from .official import unwrap_official
    state_dict = unwrap_official(state_dict, ("module.",), "Mobile-Former")
    if "tokens" in state_dict and "tokens.weight" not in state_dict:
        return dict(state_dict)                                        # already vidlab's layout
    own = model.state_dict()
    mapping = _official_key_map(model)
    out, used = {}, set()
    for key, target in own.items():
        name = _official_name(key, mapping)
        if name is None or name not in state_dict:
            continue
        w = state_dict[name]
        used.add(name)
        if w.ndim == 4 and target.ndim == 5:                           # (O, I, kh, kw) -> (O, I, kt, kh, kw)
            w = inflate_weight(w, target.shape[2], inflate if target.shape[2] > 1 else "center")
        if key.startswith("classifier.") and w.shape != target.shape:
            continue                                                   # a new head for a new label set
        out[key] = w
    out.update({k: v for k, v in state_dict.items() if k not in used})
    return out


def load_image_weights(model: VideoMobileFormer, path, inflate: str = "center") -> dict:
    """Initialise a video model from an ImageNet Mobile-Former checkpoint file (official layout, local path).

    Accepts a flat state dict or one under 'state_dict', 'state_dict_ema' or 'model'. Returns a report:
    {"loaded": [...], "missing": [...], "unexpected": [...], "inflated": [...]} (vidlab key names).
    Shape mismatches (a checkpoint of another width) raise CheckpointError.
    """
    from ..errors import CheckpointError
    from .official import check_and_load, find_state_dict, load_checkpoint, strip_prefix
    ckpt = load_checkpoint(path)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict_ema"), dict):
        sd = dict(ckpt["state_dict_ema"])
    else:
        sd = find_state_dict(ckpt)
    sd = checkpoint_filter_fn(strip_prefix(sd), model, inflate=inflate)
    report = check_and_load(model, sd, strict=False, source=str(path))
    own = model.state_dict()
    report["inflated"] = [k for k in report["loaded"] if own[k].ndim == 5 and own[k].shape[2] > 1]
    if not report["loaded"]:
        raise CheckpointError(f"{path}: no image Mobile-Former weights found", report["missing"],
                              report["unexpected"], ())
    return report


# --------------------------------------------------------------------------------------------------------------
# maps over the frames
# --------------------------------------------------------------------------------------------------------------
def token_attention_frames(attn: torch.Tensor, clip_shape: tuple[int, int, int]) -> torch.Tensor:
    """A captured ``token_attention`` (B, h, M, T*h'*w') -> (B, M, T, h', w') (heads averaged).

    `clip_shape` = (T, H, W) of the input clip; the map's spatial size follows from N = T*h'*w' and the aspect
    ratio of the input (vidlab never strides in time).
    """
    T, H, W = clip_shape
    B, _, M, N = attn.shape
    if N % T:
        raise ValueError(f"token_attention has {N} positions, not a multiple of T={T}")
    hw = N // T
    stride = math.sqrt(H * W / hw)
    h, w = round(H / stride), round(W / stride)
    if h * w != hw:
        raise ValueError(f"cannot recover the map size from {hw} positions per frame and a {H}x{W} input")
    return attn.mean(1).reshape(B, M, T, h, w)


# --------------------------------------------------------------------------------------------------------------
# registered sizes
# --------------------------------------------------------------------------------------------------------------
_PAPER = "Wang et al., Video Mobile-Former: Video Recognition with Efficient Global Spatial-temporal Modeling, 2022"
_URL = "https://arxiv.org/abs/2208.12257"
_NOTES = ("No official video code, weights or variant table exist. Fixed by the paper: a lightweight 3D-CNN in "
          "parallel with a Transformer over very few global tokens for the whole clip, two-way cross-attention. "
          "Blocks follow the image Mobile-Former code (AAboys/MobileFormer); the video choices (3x3x3 DW, "
          "per-frame stem/PW, no temporal stride, no position embedding) and this size are vidlab's. The name is "
          "the measured cost of one clip in Mobile-Former's convention (MACs + DyReLU products, one view).")


def _build(cfg: VideoMobileFormerConfig, num_classes: int, num_frames: int, img_size: int, **overrides):
    return VideoMobileFormer(replace(cfg, num_classes=num_classes, num_frames=num_frames, img_size=img_size,
                                     **overrides))


def _info(variant: str, widths: str, inp: str, gmac: float, params: int) -> ModelInfo:
    return ModelInfo(paper=_PAPER, url=_URL, variant=variant, input=inp, views="1 (vidlab; the paper's unknown)",
                     params_reported=None, params_official=None, gflops_reported=None,
                     flops_convention=("abstract: 500M-6G 'total FLOPs', convention unstated; vidlab measured "
                                       f"{gmac:.3f} G Mobile-Former MACs (conv/linear/matmul MACs + DyReLU "
                                       f"products) for one {inp} clip"),
                     top1={}, pretrained_layouts=("AAboys/MobileFormer ImageNet (image layout, inflated)",),
                     notes=f"{_NOTES} Widths of image Mobile-Former-{widths}; {params:,} params at 400 classes.")


def _video_cfg(variant: str, **kw) -> VideoMobileFormerConfig:
    return image_mobileformer_config(variant, temporal_kernel=3, num_classes=400, num_frames=8, **kw)


_NANO_RECIPE = Recipe(lr=1e-3, epochs=24, batch_size=16, num_frames=8, img_size=32, stream_clips=1920)


@register_model(recipe=_NANO_RECIPE, info=_info("vidlab nano (teaching size)", "52M", _NANO_RECIPE.input, 0.014,
                                                      2_898_372), converter=checkpoint_filter_fn)
def video_mobileformer_nano(num_classes=400, num_frames=8, img_size=32, **overrides):
    """Widths of image Mobile-Former-52M (3 tokens of 128) at 8x32x32 (0.014 G): trains on a 2-core CPU."""
    return _build(_video_cfg("52m"), num_classes, num_frames, img_size, **overrides)


@register_model(info=_info("vidlab 500M", "52M", "8x224x224", 0.457, 2_898_372), converter=checkpoint_filter_fn)
def video_mobileformer_500m(num_classes=400, num_frames=8, img_size=224, **overrides):
    """Widths of image Mobile-Former-52M (3 tokens of 128) at 8x224x224: 0.457 G per clip."""
    return _build(_video_cfg("52m"), num_classes, num_frames, img_size, **overrides)


@register_model(info=_info("vidlab 1G", "96M", "8x224x224", 0.887, 3_877_420), converter=checkpoint_filter_fn)
def video_mobileformer_1g(num_classes=400, num_frames=8, img_size=224, **overrides):
    """Widths of image Mobile-Former-96M (4 tokens of 128) at 8x224x224: 0.887 G, under 1 G for the clip."""
    return _build(_video_cfg("96m"), num_classes, num_frames, img_size, **overrides)


@register_model(info=_info("vidlab 2G", "214M", "8x224x224", 1.796, 8_572_240), converter=checkpoint_filter_fn)
def video_mobileformer_2g(num_classes=400, num_frames=8, img_size=224, **overrides):
    """Widths of image Mobile-Former-214M (6 tokens of 192) at 8x224x224: 1.796 G per clip."""
    return _build(_video_cfg("214m"), num_classes, num_frames, img_size, **overrides)


@register_model(info=_info("vidlab 6G", "508M", "8x256x256", 5.641, 12_993_432), converter=checkpoint_filter_fn)
def video_mobileformer_6g(num_classes=400, num_frames=8, img_size=256, **overrides):
    """Widths of image Mobile-Former-508M (6 tokens of 192) at 8x256x256: 5.641 G per clip (4.326 G at 224)."""
    return _build(_video_cfg("508m"), num_classes, num_frames, img_size, **overrides)


# measured cost (Mobile-Former MACs per clip, G) each size is named for, at its default input (tests check it)
VARIANT_GMACS = {"video_mobileformer_nano": ((8, 32), 0.014), "video_mobileformer_500m": ((8, 224), 0.457),
                 "video_mobileformer_1g": ((8, 224), 0.887), "video_mobileformer_2g": ((8, 224), 1.796),
                 "video_mobileformer_6g": ((8, 256), 5.641)}
