"""SIFA: Stand-alone Inter-Frame Attention (Long et al., CVPR 2022), in a ConvNet and in a Swin Transformer.

Idea (paper Sec. 3): every position p of frame t is a query; its k x k neighbourhood in frame t+1, each
neighbour displaced by an offset predicted from a motion-salient map (MSM) of the frame difference, gives the
keys and values. The similarities weight the values and the sum is added back to frame t:

    f_m   = f_{t+1} * (1 + sigmoid(f_{t+1} - f_t))        MSM, released code ("code"); paper: sigmoid(.) * f_{t+1}
    dp    = Conv_{3x3}(f_m)                               2 k^2 offsets per position (zero-initialised)
    V'_k  = bilinear(f_{t+1}, p + p_k + dp_k)             keys = values, no projections
    W_k   = <f_t(p), V'_k> / C                            no softmax (released code)
    Y_t   = f_t + sum_k W_k V'_k                          the last frame has no next frame: Y_{T-1} = f_{T-1}

The released model is a compiled CUDA op (`defcor` + `defagg`); here it is pure PyTorch (`grid_sample`,
exact, checked against a loop port of the kernel: docs/faithfulness.md). Hosts:

* `SIFANet` (C2D ResNet-50/101, Sec. 4.1): SIFA after the 3x3 conv of every odd block of res3-res5, global-context
  bottlenecks (`GBottleneck`) on the even blocks, temporal stride 4 in the stem and a second res5 branch
  (`layer4_dual`) on a time-pooled res4 output, with its own classifier.
* `SIFASwin` (Sec. 4.2): Swin with SIFA after the window attention of the non-shifted blocks and a temporal
  convolution (TConv) after the shifted ones; every 4 frames form one "frame" of the Swin (tubelet 4x4x4).

Capture kinds (vidlab.viz.capture), recorded by every `InterFrameAttention` module, indexed by the query frame t
(the neighbours live in frame t+1; the last frame has none and is zero):
    offsets            (B, K, 2, T, H, W)   (dy, dx) displacement of each of the K = k*k neighbours, in feature cells
    neighbour_weights  (B, K, T, H, W)      the weight W_k given to each neighbour
    motion_map         (B, T, H, W)         channel mean of |f_m| for the pair (t, t+1)
SIFA-Swin's `WindowAttention` modules also record `attention` (B*T'*windows, heads, ws*ws, ws*ws).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..viz.capture import record, wants
from .layers import DropPath, Mlp, PatchEmbed3d, check_clip, init_weights_resnet, trunc_normal_
from .official import check_and_load, find_state_dict, load_checkpoint, strip_prefix, unwrap_official
from .registry import ModelInfo, Recipe, register_model

# ---------------------------------------------------------------------------------------------------------------
# The op: deformable inter-frame attention between two frames
# ---------------------------------------------------------------------------------------------------------------


def neighbour_positions(offsets: torch.Tensor | None, height: int, width: int, kernel_size: int = 3,
                        dilation: int = 1, device=None, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling positions (y, x) of the k*k neighbours of every query position, in feature cells.

    Neighbour k = kh * kernel_size + kw sits at (h - pad + kh * dilation + dy_k, w - pad + kw * dilation + dx_k)
    with pad = (dilation * (k - 1) + 1) // 2 (the layout of torchvision's deform_conv2d and the SIFA kernel:
    offset channel 2k is dy, 2k + 1 is dx). offsets: (N, 2K, H, W) or None (regular grid).
    Returns y, x: (N or 1, K, H, W).
    """
    if offsets is not None:
        device, dtype = offsets.device, offsets.dtype
    pad = (dilation * (kernel_size - 1) + 1) // 2
    taps = torch.arange(kernel_size, device=device, dtype=dtype) * dilation - pad               # (k,)
    ky = taps.repeat_interleave(kernel_size)                                                     # (K,) kh-major
    kx = taps.repeat(kernel_size)
    y = torch.arange(height, device=device, dtype=dtype)[None, :, None] + ky[:, None, None]      # (K, H, 1)
    x = torch.arange(width, device=device, dtype=dtype)[None, None, :] + kx[:, None, None]       # (K, 1, W)
    y, x = y.expand(-1, height, width)[None], x.expand(-1, height, width)[None]                  # (1, K, H, W)
    if offsets is not None:
        y = y + offsets[:, 0::2]                                                                 # (N, K, H, W)
        x = x + offsets[:, 1::2]
    return y, x


def sample_neighbours(frame: torch.Tensor, offsets: torch.Tensor | None, kernel_size: int = 3, dilation: int = 1,
                      impl: str = "grid_sample") -> torch.Tensor:
    """Bilinear samples of `frame` (N, C, H, W) at the k*k (shifted) neighbours -> (N, C, K, H, W).

    Out-of-frame corners count as zero (the CUDA kernel's rule). `impl="grid_sample"` handles any offsets;
    `impl="unfold"` is the regular grid only (offsets None or all zero), the im2col view of the same thing.
    """
    N, C, H, W = frame.shape
    K = kernel_size * kernel_size
    if impl == "unfold":
        if offsets is not None:
            raise ValueError("impl='unfold' samples the regular grid only; pass offsets=None")
        pad = (dilation * (kernel_size - 1) + 1) // 2
        cols = F.unfold(frame, kernel_size, dilation=dilation, padding=pad)                      # (N, C*K, H*W)
        return cols.view(N, C, K, H, W)
    if impl != "grid_sample":
        raise ValueError(f"impl must be 'grid_sample' or 'unfold', got {impl!r}")
    y, x = neighbour_positions(offsets, H, W, kernel_size, dilation, frame.device, frame.dtype)
    y, x = y.expand(N, -1, -1, -1), x.expand(N, -1, -1, -1)
    # align_corners=False maps cell index i to (2i + 1) / size - 1: exact, and valid for H = 1 or W = 1
    grid = torch.stack(((2 * x + 1) / W - 1, (2 * y + 1) / H - 1), dim=-1)                       # (N, K, H, W, 2)
    out = F.grid_sample(frame, grid.view(N, K * H, W, 2), mode="bilinear", padding_mode="zeros",
                        align_corners=False)                                                     # (N, C, K*H, W)
    return out.view(N, C, K, H, W)


def inter_frame_attention(query: torch.Tensor, frame: torch.Tensor, offsets: torch.Tensor | None,
                          kernel_size: int = 3, dilation: int = 1, scale: float | None = None,
                          softmax: bool = False, impl: str = "grid_sample") -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-alone inter-frame attention of `query` (frame t) over its deformable neighbours in `frame` (t+1).

    query, frame: (N, C, H, W); offsets: (N, 2K, H, W) or None. Returns the aggregate A (N, C, H, W) and the
    neighbour weights W (N, K, H, W). Q = K = V = the features (no projections, as released); W is scaled by
    `scale` (1/C by default, the released constant) and normalised only when softmax=True.
    """
    values = sample_neighbours(frame, offsets, kernel_size, dilation, impl)                      # (N, C, K, H, W)
    scale = 1.0 / query.shape[1] if scale is None else scale
    weights = torch.einsum("nchw,nckhw->nkhw", query, values) * scale                            # eq. W_k = Q.K'_k
    if softmax:
        weights = weights.softmax(dim=1)
    out = torch.einsum("nkhw,nckhw->nchw", weights, values)                                      # eq. A = sum W_k V'_k
    return out, weights


def motion_salient_map(current: torch.Tensor, previous: torch.Tensor, msm: str = "code") -> torch.Tensor:
    """MSM of the pair (previous, current): "code" f * (1 + sigmoid(f - f_prev)) as released; "paper"
    sigmoid(f - f_prev) * f as written in the paper (Sec. 3.2). Any shape."""
    gate = torch.sigmoid(current - previous)
    if msm == "code":
        return current * (1 + gate)
    if msm == "paper":
        return current * gate
    raise ValueError(f"msm must be 'code' or 'paper', got {msm!r}")


class InterFrameAttention(nn.Module):
    """The SIFA block on a clip of feature maps: (B, C, T, H, W) -> A (B, C, T, H, W), A[:, :, -1] = 0.

    A[:, :, t] aggregates frame t+1 for the queries of frame t; the host adds it back (`f + A`). The offsets of
    the pair (t, t+1) come from `conv_offset` applied to the MSM of (f_t, f_{t+1}); `conv_offset` starts at zero,
    so training begins from the regular grid. `deformable=False` skips it (regular grid: the released SIFA-Swin).

    Paper vs code: the released block builds f_{t-1} with an in-place copy between overlapping slices
    (`x[:, :, 1:] = x[:, :, :-1]`), whose result is undefined (torch 2.13 CPU: values from neither frame t-1
    nor frame 0 at some shapes, the intended shift at others; CUDA: undefined). vidlab
    builds the intended previous frame, f_prev = torch.cat([f[:, :, :1], f[:, :, :-1]], dim=2) — and since the
    result of frame 0 is discarded by the next-frame shift, it forms only the pairs (f_{t-1}, f_t), t >= 1,
    which equal that torch.cat form on every frame that is used. The released kernel also computes the attention
    of frame 0 with itself and then drops it; vidlab computes the T-1 pairs only (same output).

    Records `offsets` (B, K, 2, T, H, W), `neighbour_weights` (B, K, T, H, W), `motion_map` (B, T, H, W).
    """

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, deformable: bool = True,
                 msm: str = "code", softmax: bool = False, impl: str = "auto"):
        super().__init__()
        if msm not in ("code", "paper"):
            raise ValueError(f"msm must be 'code' or 'paper', got {msm!r}")
        self.dim, self.kernel_size, self.dilation = dim, kernel_size, dilation
        self.deformable, self.msm, self.softmax = deformable, msm, softmax
        # regular grid: unfold measured faster than grid_sample (docs/benchmarks.md, SIFA; docs/findings.md);
        # deformable needs grid_sample
        self.impl = impl if impl != "auto" else ("grid_sample" if deformable else "unfold")
        K = kernel_size * kernel_size
        if deformable:
            self.conv_offset = nn.Conv3d(dim, 2 * K, (1, 3, 3), padding=(0, 1, 1), bias=False)
            nn.init.zeros_(self.conv_offset.weight)  # code: offsets start at the regular grid
        else:
            self.conv_offset = None

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = f.shape
        K = self.kernel_size ** 2
        if T < 2:
            return torch.zeros_like(f)
        query, nxt = f[:, :, :-1], f[:, :, 1:]                                  # frames t and t+1, (B, C, T-1, H, W)
        offsets, m = None, None
        if self.conv_offset is not None:
            m = motion_salient_map(nxt, query, self.msm)                         # MSM of each pair, (B, C, T-1, H, W)
            offsets = self.conv_offset(m)                                        # (B, 2K, T-1, H, W)
            offsets = offsets.transpose(1, 2).reshape(B * (T - 1), 2 * K, H, W)  # (B(T-1), 2K, H, W)
        if wants(self, "motion_map"):  # also on the regular grid, where nothing consumes it
            m = motion_salient_map(nxt, query, self.msm) if m is None else m
            record(self, "motion_map", F.pad(m.abs().mean(1), (0, 0, 0, 0, 0, 1)))

        def frames(x):  # (B, C, T-1, H, W) -> (B(T-1), C, H, W)
            return x.transpose(1, 2).reshape(B * (T - 1), x.shape[1], H, W)

        out, weights = inter_frame_attention(frames(query), frames(nxt), offsets, self.kernel_size, self.dilation,
                                             softmax=self.softmax, impl=self.impl)
        out = out.view(B, T - 1, C, H, W).transpose(1, 2)                       # (B, C, T-1, H, W)
        # next-frame shift: A[t] belongs to query frame t; the last frame has no next frame (zeros)
        out = F.pad(out, (0, 0, 0, 0, 0, 1))                                     # (B, C, T, H, W)
        if wants(self, "neighbour_weights"):
            record(self, "neighbour_weights", F.pad(weights.view(B, T - 1, K, H, W).transpose(1, 2),
                                                    (0, 0, 0, 0, 0, 1)))
        if wants(self, "offsets"):
            off = (offsets.view(B, T - 1, K, 2, H, W).permute(0, 2, 3, 1, 4, 5) if offsets is not None
                   else f.new_zeros(B, K, 2, T - 1, H, W))
            record(self, "offsets", F.pad(off, (0, 0, 0, 0, 0, 1)))
        return out

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"deformable={self.deformable}, msm={self.msm!r}, softmax={self.softmax}, impl={self.impl!r}")


# ---------------------------------------------------------------------------------------------------------------
# SIFA-Net: C2D ResNet with SIFA bottlenecks
# ---------------------------------------------------------------------------------------------------------------


def conv1x3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)


def conv1x1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 1, stride=(1, stride, stride), bias=False)


@dataclass
class SIFANetConfig:
    block: str = "bottleneck"               # "bottleneck" (ResNet-50/101) or "basic" (the nano size)
    layers: tuple = (3, 4, 6, 3)            # blocks per stage res2..res5
    widths: tuple = (64, 128, 256, 512)     # bottleneck widths (output = 4x for "bottleneck")
    stem_width: int = 64                    # channels of the stem conv
    stem_t: int = 4                         # temporal kernel = stride of the stem (16 frames -> 4)
    sifa_stages: tuple = (False, True, True, True)  # stages whose odd blocks are SIFA blocks (res3-res5)
    global_context: bool = True             # even blocks of the SIFA stages are GBottlenecks (released code)
    gc_reduction: int = 16                  # GBottleneck FC reduction
    dual_head: bool = True                  # second res5 branch on time-pooled res4 features (released code)
    kernel_size: int = 3                    # k: k x k neighbours
    dilation: int = 1                       # spacing of the neighbourhood
    deformable: bool = True                 # offsets from the MSM (False: regular grid)
    msm: str = "code"                       # "code": f(1+sigmoid(df)); "paper": sigmoid(df) f
    softmax: bool = False                   # normalise the neighbour weights (not in the released code)
    dropout: float = 0.5                    # before each classifier
    zero_init_residual: bool = True         # last BN of each residual branch starts at gamma = 0
    num_classes: int = 400
    num_frames: int = 16
    img_size: int = 224
    in_chans: int = 3


class Bottleneck(nn.Module):
    """ResNet bottleneck with 1x1x1 / 1x3x3 / 1x1x1 convs (C2D). (B, Cin, T, H, W) -> (B, 4w, T, H/s, W/s)."""
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = conv1x1x1(cin, width), nn.BatchNorm3d(width)
        self.conv2, self.bn2 = conv1x3x3(width, width, stride), nn.BatchNorm3d(width)
        self.conv3, self.bn3 = conv1x1x1(width, cout), nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        f = self.relu(self.bn1(self.conv1(x)))
        f = self.relu(self.bn2(self.conv2(f)))
        f = self.temporal(f)
        return self.bn3(self.conv3(f))

    def temporal(self, f: torch.Tensor) -> torch.Tensor:
        return f  # plain C2D block: no temporal modelling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.branch(x) + shortcut)


class GBottleneck(Bottleneck):
    """Bottleneck plus additive global context (released code): gc = FC2(ReLU(FC1(GAP_THW(branch)))), no sigmoid.
    out = ReLU(branch + shortcut + gc). (B, Cin, T, H, W) -> (B, 4w, T, H/s, W/s)."""

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None,
                 reduction: int = 16):
        super().__init__(cin, width, stride, downsample)
        cout = width * self.expansion
        self.fc1 = nn.Linear(cout, cout // reduction)
        self.fc2 = nn.Linear(cout // reduction, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.branch(x)
        gc = self.fc2(F.relu(self.fc1(out.mean(dim=(2, 3, 4)))))                # (B, 4w)
        return self.relu(out + shortcut + gc[:, :, None, None, None])


class SIFABottleneck(Bottleneck):
    """Bottleneck with SIFA after the 1x3x3 conv (Fig. 3): f <- f + A(f), A = `InterFrameAttention` (no norm or
    projection), then conv3/bn3. (B, Cin, T, H, W) -> (B, 4w, T, H/s, W/s). Records through `.sifa`."""

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None, cfg: SIFANetConfig):
        super().__init__(cin, width, stride, downsample)
        self.sifa = InterFrameAttention(width, cfg.kernel_size, cfg.dilation, cfg.deformable, cfg.msm, cfg.softmax)

    def temporal(self, f: torch.Tensor) -> torch.Tensor:
        return f + self.sifa(f)


class BasicBlock(nn.Module):
    """ResNet basic block with 1x3x3 convs; with `sifa=True` SIFA follows the first conv (the nano size).
    (B, Cin, T, H, W) -> (B, w, T, H/s, W/s)."""
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None,
                 cfg: SIFANetConfig | None = None, global_context: bool = False, reduction: int = 16):
        super().__init__()
        self.conv1, self.bn1 = conv1x3x3(cin, width, stride), nn.BatchNorm3d(width)
        self.conv2, self.bn2 = conv1x3x3(width, width), nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.sifa = (InterFrameAttention(width, cfg.kernel_size, cfg.dilation, cfg.deformable, cfg.msm, cfg.softmax)
                     if cfg is not None else None)
        if global_context:
            self.fc1, self.fc2 = nn.Linear(width, width // reduction), nn.Linear(width // reduction, width)
        self.global_context = global_context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        f = self.relu(self.bn1(self.conv1(x)))
        if self.sifa is not None:
            f = f + self.sifa(f)
        out = self.bn2(self.conv2(f))
        if self.global_context:
            out = out + self.fc2(F.relu(self.fc1(out.mean(dim=(2, 3, 4)))))[:, :, None, None, None]
        return self.relu(out + shortcut)


class SIFANet(nn.Module):
    """SIFA-Net (Sec. 4.1): C2D ResNet with SIFA blocks. (B, 3, T, H, W) -> logits (B, num_classes).

    Stem Conv3d (stem_t, 7, 7) with temporal stride stem_t (16 frames -> T' = 4), then res2..res5 of 1x3x3 convs;
    in every stage flagged in `sifa_stages`, odd blocks are `SIFABottleneck` and even ones `GBottleneck`
    (`layer2.{1,3}`, `layer3.{1,3,5}`, `layer4.1` in ResNet-50). With `dual_head`, `layer4_dual` (res5 at stride 1)
    runs on res4 max-pooled 2x in time and has its own classifier `fc_dual`:
    training uses CE(main) + CE(dual) (`forward(x, return_aux=True)`); `forward` returns the log of the averaged
    softmaxes (the released evaluation, as logits: softmax(forward(x)) is that average).
    Capture kinds: see the module docstring (every `*.sifa` module).
    """

    def __init__(self, cfg: SIFANetConfig):
        super().__init__()
        self.cfg = cfg
        block_cls = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        self.expansion = block_cls.expansion
        self.conv1 = nn.Conv3d(cfg.in_chans, cfg.stem_width, (cfg.stem_t, 7, 7), stride=(cfg.stem_t, 2, 2),
                               padding=(0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        cin = cfg.stem_width
        for i, (n, w) in enumerate(zip(cfg.layers, cfg.widths)):
            stage, cin = self._make_stage(cin, w, n, stride=1 if i == 0 else 2, sifa=cfg.sifa_stages[i])
            self.add_module(f"layer{i + 1}", stage)
        self.num_features = cin
        self.fc = nn.Linear(cin, cfg.num_classes)
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.dual_head:
            res4_out = cfg.widths[2] * self.expansion
            self.maxpool_dual = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
            self.layer4_dual, _ = self._make_stage(res4_out, cfg.widths[3], cfg.layers[3], stride=1,
                                                   sifa=cfg.sifa_stages[3])
            self.fc_dual = nn.Linear(cin, cfg.num_classes)
        self._init_weights()

    def _make_stage(self, cin: int, width: int, depth: int, stride: int, sifa: bool) -> tuple[nn.Sequential, int]:
        cfg, cout = self.cfg, width * self.expansion
        blocks = []
        for i in range(depth):
            s = stride if i == 0 else 1
            down = None
            if i == 0 and (s != 1 or cin != cout):
                down = nn.Sequential(conv1x1x1(cin, cout, s), nn.BatchNorm3d(cout))
            if cfg.block == "bottleneck":
                if sifa and i % 2 == 1:
                    blocks.append(SIFABottleneck(cin, width, s, down, cfg))
                elif sifa and cfg.global_context:
                    blocks.append(GBottleneck(cin, width, s, down, cfg.gc_reduction))
                else:
                    blocks.append(Bottleneck(cin, width, s, down))
            else:
                blocks.append(BasicBlock(cin, width, s, down, cfg if (sifa and i % 2 == 1) else None,
                                         global_context=sifa and i % 2 == 0 and cfg.global_context,
                                         reduction=cfg.gc_reduction))
            cin = cout
        return nn.Sequential(*blocks), cout

    def _init_weights(self) -> None:
        init_weights_resnet(self, linear_std=None)     # Linear layers keep PyTorch's default init, as released
        for m in self.modules():
            if isinstance(m, InterFrameAttention) and m.conv_offset is not None:
                nn.init.zeros_(m.conv_offset.weight)
            if self.cfg.zero_init_residual:
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _res4(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, self.cfg.in_chans)
        st, T = self.cfg.stem_t, x.shape[2]
        if T < st or T % st:
            raise ValueError(f"expected T divisible by the stem's temporal kernel and stride {st}, "
                             f"got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))                   # (B, C, T / stem_t, H/4, W/4)
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Both classifiers' logits (main, dual); dual is None without the dual head. Train on the sum of CEs."""
        x3 = self._res4(x)
        logits = self.fc(self.drop(self.layer4(x3).mean(dim=(2, 3, 4))))
        if not self.cfg.dual_head:
            return logits, None
        if x3.shape[2] < 2:
            raise ValueError(f"the dual head pools res4 over time by 2 and needs T' >= 2 feature frames; "
                             f"{x.shape[2]} input frames give T' = {x3.shape[2]} (use more frames, or dual_head=False)")
        xd = self.layer4_dual(self.maxpool_dual(x3))                            # (B, C, T'/2, H/16, W/16)
        return logits, self.fc_dual(self.drop(xd.mean(dim=(2, 3, 4))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled res5 features of the main branch, (B, num_features)."""
        return self.layer4(self._res4(x)).mean(dim=(2, 3, 4))

    returns_aux = True   # vidlab.train: forward(x, return_aux=True) -> (main logits, {"dual_logits": ...})

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        """Eval: log of the two heads' averaged softmax (the released test output, still usable as logits).
        `return_aux=True` (training): the main logits and {"dual_logits"}, so the loss is CE(main) + CE(dual)."""
        main, dual = self.forward_heads(x)
        if return_aux:
            return main, ({} if dual is None else {"dual_logits": dual})
        if dual is None:
            return main
        return torch.logaddexp(main.log_softmax(-1), dual.log_softmax(-1)) - math.log(2.0)


# ---------------------------------------------------------------------------------------------------------------
# SIFA-Transformer: Swin with SIFA
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SIFASwinConfig:
    embed_dim: int = 128                    # channels of stage 1 (doubles per stage)
    depths: tuple = (2, 2, 18, 2)           # blocks per stage
    num_heads: tuple = (4, 8, 16, 32)       # attention heads per stage
    window_size: int = 7                    # Swin window (shrinks to the map when the map is smaller)
    mlp_ratio: float = 4.0                  # MLP hidden = mlp_ratio * dim
    qkv_bias: bool = True
    drop_path_rate: float = 0.5             # stochastic depth, linear over blocks (B/L 0.5, S 0.3)
    dropout: float = 0.0                    # before the classifier (released default 0)
    patch_size: int = 4                     # spatial patch of the tubelet embedding
    tubelet_t: int = 4                      # temporal size = stride of the tubelet: T frames -> T/4 Swin "frames"
    kernel_size: int = 3                    # SIFA neighbourhood
    deformable: bool = True                 # paper: offsets from the MSM; False = released code (offsets fixed 0)
    msm: str = "code"                       # MSM form when deformable
    softmax: bool = False                   # normalise the neighbour weights
    release_layout: bool = True             # every block keeps both `conv` (TConv) and `tda_norm` (LN0) as released,
                                            #   though it uses one: official keys load strictly, counts match
    num_classes: int = 400
    num_frames: int = 32
    img_size: int = 224
    in_chans: int = 3


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(N, H, W, C) -> (N * nW, ws * ws, C)."""
    N, H, W, C = x.shape
    x = x.view(N, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    """(N * nW, ws * ws, C) -> (N, H, W, C)."""
    C = windows.shape[-1]
    x = windows.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


class WindowAttention(nn.Module):
    """Swin window multi-head self-attention with relative position bias. (N * nW, ws*ws, C) -> same shape.

    softmax(q k^T / sqrt(hd) + B_rel (+ shift mask)) v. The bias (and the -100 shift mask of a shifted block) go
    to F.scaled_dot_product_attention as one float mask; the attention matrix is formed explicitly only while a
    capture wants it (same numbers to float rounding).
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        ws = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)          # (ws², ws², 2)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1], persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        Bw, N, C = x.shape
        nh, hd = self.num_heads, C // self.num_heads
        q, k, v = self.qkv(x).view(Bw, N, 3, nh, hd).permute(2, 0, 3, 1, 4)                # 3 x (Bw, nh, N, hd)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, nh)
        bias = bias.permute(2, 0, 1)                                                          # (nh, N, N)
        if mask is not None:                  # windows are consecutive per image: (Bw/nW, nW*nh, N, ...) groups them
            nW = mask.shape[0]
            bias = (mask[:, None] + bias[None]).reshape(1, nW * nh, N, N)                    # -100 across regions
            q, k, v = (t.reshape(Bw // nW, nW * nh, N, hd) for t in (q, k, v))
        if wants(self, "attention"):
            attn = ((q * self.scale) @ k.transpose(-2, -1) + bias).softmax(dim=-1)
            record(self, "attention", attn.reshape(Bw, nh, N, N))
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.reshape(Bw, nh, N, hd).transpose(1, 2).reshape(Bw, N, C))


class SIFASwinBlock(nn.Module):
    """Swin block with inter-frame modelling (released code). Tokens (B*T', H, W, C) -> same shape.

        x = x + DropPath(W-MSA(LN(x)))
        non-shifted: x = x + LN0(A(x)),  A = InterFrameAttention over the T' frames, LN0 zero-initialised
        shifted:     x = x + TConv(x),   dense C->C temporal conv, kernel 3 over T' (zero-initialised)
        x = x + DropPath(MLP(LN(x)))
    Records `attention` (window attention) and the SIFA kinds through `.sifa`.
    """

    def __init__(self, dim: int, num_heads: int, resolution: tuple, window_size: int, shift: bool,
                 drop_path: float, cfg: SIFASwinConfig):
        super().__init__()
        H, W = resolution
        self.window_size, self.shift_size = window_size, window_size // 2 if shift else 0
        if min(H, W) <= window_size:  # Swin: one window covers the map, no shift
            self.window_size, self.shift_size = min(H, W), 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window_size, num_heads, cfg.qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        uses_sifa = self.shift_size == 0
        self.sifa = (InterFrameAttention(dim, cfg.kernel_size, 1, cfg.deformable, cfg.msm, cfg.softmax)
                     if uses_sifa else None)
        # TConv as released: Conv2d (1, 3) over (B, C, L, T'); zero init (the released ImageNet loader zeroes it)
        self.conv = (nn.Conv2d(dim, dim, (1, 3), padding=(0, 1), bias=False)
                     if (not uses_sifa or cfg.release_layout) else None)
        if self.conv is not None:
            nn.init.zeros_(self.conv.weight)
        self.tda_norm = nn.LayerNorm(dim) if (uses_sifa or cfg.release_layout) else None  # LN0
        if self.tda_norm is not None:
            nn.init.zeros_(self.tda_norm.weight)
            nn.init.zeros_(self.tda_norm.bias)
        self.register_buffer("attn_mask", self._mask(H, W) if self.shift_size else None, persistent=False)

    def _mask(self, H: int, W: int) -> torch.Tensor:
        ws, s = self.window_size, self.shift_size
        img = torch.zeros(1, H, W, 1)
        cnt = 0
        for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                img[:, hs, wsl] = cnt
                cnt += 1
        win = window_partition(img, ws).squeeze(-1)                                           # (nW, ws²)
        mask = win[:, None, :] - win[:, :, None]
        return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        BT, H, W, C = x.shape
        y = self.norm1(x)
        if self.shift_size:
            y = torch.roll(y, (-self.shift_size, -self.shift_size), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, self.window_size), self.attn_mask), self.window_size, H, W)
        if self.shift_size:
            y = torch.roll(y, (self.shift_size, self.shift_size), dims=(1, 2))
        x = x + self.drop_path(y)
        if self.sifa is not None:
            f = x.view(BT // T, T, H, W, C).permute(0, 4, 1, 2, 3)                             # (B, C, T', H, W)
            a = self.sifa(f).permute(0, 2, 3, 4, 1).reshape(BT, H, W, C)
            x = x + self.tda_norm(a)
        else:
            t = x.view(BT // T, T, H * W, C).permute(0, 3, 2, 1)                               # (B, C, L, T')
            x = x + self.conv(t).permute(0, 3, 2, 1).reshape(BT, H, W, C)                      # code: x += TConv(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Swin patch merging: 2x2 neighbours concatenated, LN, linear 4C -> 2C. (N, H, W, C) -> (N, H/2, W/2, 2C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SIFASwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, resolution: tuple, dpr: list, downsample: bool,
                 cfg: SIFASwinConfig):
        super().__init__()
        self.blocks = nn.ModuleList([SIFASwinBlock(dim, num_heads, resolution, cfg.window_size, shift=i % 2 == 1,
                                                   drop_path=dpr[i], cfg=cfg) for i in range(depth)])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, T)
        return self.downsample(x) if self.downsample is not None else x


class SIFASwin(nn.Module):
    """SIFA-Transformer (Sec. 4.2, released code). (B, 3, T, H, W) -> logits (B, num_classes).

    Tubelet embedding Conv3d (4, 4, 4) / (4, 4, 4) without LayerNorm -> T' = T/4 Swin "frames" of (H/4, W/4) tokens,
    Swin stages with SIFA / TConv (`SIFASwinBlock`), final LN, average pool, classifier per frame, logits averaged
    over T'. Capture kinds: `attention` (window attention) and the SIFA kinds of every `*.sifa` module.
    """

    def __init__(self, cfg: SIFASwinConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.patch_size
        # tubelet embedding as released: Conv3d (4, 4, 4) / (4, 4, 4) with bias, no LayerNorm
        self.patch_embed = PatchEmbed3d((cfg.tubelet_t, p, p), cfg.in_chans, cfg.embed_dim, norm=False)
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
        res = cfg.img_size // p
        self.layers = nn.ModuleList()
        for i, (d, h) in enumerate(zip(cfg.depths, cfg.num_heads)):
            r = res // 2 ** i
            block_dpr = dpr[sum(cfg.depths[:i]):sum(cfg.depths[:i + 1])]
            self.layers.append(SIFASwinStage(cfg.embed_dim * 2 ** i, d, h, (r, r), block_dpr,
                                             downsample=i < len(cfg.depths) - 1, cfg=cfg))
        self.num_features = cfg.embed_dim * 2 ** (len(cfg.depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.num_features, cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        check_clip(x, self.cfg.in_chans)
        if x.shape[2] % self.cfg.tubelet_t or x.shape[-1] != self.cfg.img_size or x.shape[-2] != self.cfg.img_size:
            raise ValueError(f"expected a clip (B, 3, T, {self.cfg.img_size}, {self.cfg.img_size}) with T divisible "
                             f"by {self.cfg.tubelet_t}, got {tuple(x.shape)}")
        x = self.patch_embed(x)                                                 # (B, C, T', H/4, W/4)
        B, C, T = x.shape[:3]
        x = x.permute(0, 2, 3, 4, 1).reshape(B * T, x.shape[3], x.shape[4], C)  # (B*T', H/4, W/4, C)
        for layer in self.layers:
            x = layer(x, T)
        x = self.norm(x).mean(dim=(1, 2))                                       # (B*T', C)
        return x, T

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features averaged over the T' frames, (B, num_features)."""
        f, T = self._frames(x)
        return f.view(-1, T, f.shape[-1]).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, T = self._frames(x)
        return self.fc(self.drop(f)).view(-1, T, self.cfg.num_classes).mean(1)  # logits averaged over T'


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: official layout and image (ImageNet) weights
# ---------------------------------------------------------------------------------------------------------------


# structural tensors an official checkpoint carries that vidlab rebuilds from the config: they are checked, then dropped
_REBUILT_BUFFERS = (".attn.relative_position_index", ".attn_mask")     # SIFA-Swin (timm Swin registers both)


def _check_rebuilt(key: str, value: torch.Tensor, expected: torch.Tensor | None) -> None:
    """Raise CheckpointError naming `key` unless the checkpoint's structural tensor equals vidlab's rebuilt one."""
    from ..errors import CheckpointError
    if expected is None:
        raise CheckpointError(f"{key}: the checkpoint has this structural tensor, the model has none (a shifted "
                              "block where vidlab's is not, or a window/resolution of another build size)",
                              unexpected=[key])
    if tuple(value.shape) != tuple(expected.shape):
        raise CheckpointError(f"{key}: checkpoint {tuple(value.shape)} vs rebuilt {tuple(expected.shape)}; the "
                              "model was built for another window or clip size",
                              mismatched=[(key, tuple(value.shape), tuple(expected.shape))])
    if not torch.equal(value.to(expected.dtype), expected):
        bad = (value.to(expected.dtype) != expected).sum().item()
        raise CheckpointError(f"{key}: {bad} of {expected.numel()} entries differ from the tensor vidlab rebuilds "
                              "from the config; the checkpoint was made with another window layout")


def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
    """Official SIFA checkpoint (keys after `module.` stripping) -> vidlab.

    * `*.def_cor.weight` (C, T', k, k), frozen at 1/C: checked and dropped (vidlab uses the scalar 1/C).
    * `*.conv_offset.weight` -> `*.sifa.conv_offset.weight` (SIFA-Net; the released Swin has none).
    * SIFA-Swin `layers.{s}.blocks.{b}.attn.relative_position_index` (every block) and
      `layers.{s}.blocks.{b}.attn_mask` (shifted blocks): structural buffers vidlab rebuilds; each must equal the
      rebuilt one (else CheckpointError naming the key), then it is dropped.
    Everything else keeps its name (vidlab mirrors the released module names). Another structural or unknown key
    stays in and is reported by the strict load. The training script's `{'opt', 'model', 'epoch'}` wrapper and
    DDP's `module.` are removed; fp16 tensors are upcast; a non-tensor entry in the state dict is refused by name.
    """
    from ..errors import CheckpointError
    buffers = dict(model.named_buffers())
    blocks = {n: m for n, m in model.named_modules() if isinstance(m, SIFASwinBlock)}
    out = {}
    for k, v in unwrap_official(state_dict, ("module.",), "SIFA").items():
        if k.endswith("def_cor.weight"):
            if v.numel() and not torch.allclose(v.float(), torch.full_like(v.float(), 1.0 / v.shape[0])):
                raise CheckpointError(f"{k}: expected the frozen constant 1/C = 1/{v.shape[0]} everywhere (the "
                                      f"released correlation weight), found values in [{v.min().item():.4g}, "
                                      f"{v.max().item():.4g}]; vidlab cannot represent a trained def_cor")
            continue
        if k.endswith(_REBUILT_BUFFERS):
            if k.endswith(".attn_mask"):
                host = blocks.get(k[: -len(".attn_mask")])
                _check_rebuilt(k, v, None if host is None else host.attn_mask)
            else:
                _check_rebuilt(k, v, buffers.get(k))
            continue
        out[k.replace(".conv_offset.", ".sifa.conv_offset.")] = v
    return out


def load_image_weights(model: nn.Module, source) -> dict:
    """Initialise SIFA-Net from torchvision ImageNet ResNet weights (`resnet50-19c8e357.pth` layout: conv1, bn1,
    layer{1..4}.{i}.conv{1,2,3}/bn{1,2,3}/downsample.{0,1}, fc) or SIFA-Swin from an ImageNet Swin checkpoint
    (under 'model': patch_embed.proj, layers.{s}.blocks.{b}.{norm1,attn.qkv,attn.proj,
    attn.relative_position_bias_table,norm2,mlp.fc1,mlp.fc2}, layers.{s}.downsample.{norm,reduction}, norm, head).

    As released: 2D convs become 1xkxk; the stem / tubelet kernel gets the 2D weights at the centre tap
    (t = kt // 2) and zeros elsewhere; SIFA-Net copies layer4 into layer4_dual; the ImageNet classifier is dropped;
    conv_offset, TConv and LN0 keep their zero init. Returns {"loaded", "missing", "unexpected"} key lists.
    """
    ckpt = load_checkpoint(source) if isinstance(source, (str, Path)) else source   # a path, or a loaded dict
    sd = strip_prefix(find_state_dict(ckpt))
    own = model.state_dict()
    out = {}
    for k, v in sd.items():
        # ImageNet classifiers and the patch LayerNorm (the released tubelet embedding has none) are not used;
        # Swin's index / mask buffers are rebuilt here
        if k.startswith(("fc.", "head.", "patch_embed.norm.")) or k.endswith(
                ("relative_position_index", "attn_mask", "num_batches_tracked")):
            continue
        if k in own and v.ndim == 4 and own[k].ndim == 5:
            kt = own[k].shape[2]
            w = v.new_zeros(v.shape[:2] + (kt,) + v.shape[2:])
            w[:, :, kt // 2] = v                                                 # centre tap, zeros elsewhere
            v = w
        out[k] = v
        if isinstance(model, SIFANet) and model.cfg.dual_head and k.startswith("layer4."):
            kd = "layer4_dual." + k[len("layer4."):]
            out[kd] = out[k]
    return check_and_load(model, out, strict=False,
                          source=str(source) if isinstance(source, (str, Path)) else "image state dict")


# ---------------------------------------------------------------------------------------------------------------
# Registered variants
# ---------------------------------------------------------------------------------------------------------------

_PAPER = "Long et al., Stand-alone Inter-Frame Attention in Video Models, CVPR 2022"
_URL = "https://github.com/FuchenUSTC/SIFA"
_NET_NOTES = ("Released code (commit 8899ed6) reproduced: GBottlenecks on even res3-res5 blocks, temporal stride 4 "
              "stem, dual res5 branch (eval: averaged softmax; forward returns its log). The official count "
              "43,105,440 includes 64,512 frozen 1/C constants (def_cor.weight); vidlab uses the scalar 1/C, so "
              "43,040,928 parameters. Paper-vs-code: MSM f(1+sigmoid(df)) (flag msm='paper'); the released "
              "previous-frame shift is an in-place overlapping copy (bug, not reproduced); no softmax. "
              "No weights were released.")


def _net_cfg(num_classes, num_frames, img_size, overrides, **defaults) -> SIFANetConfig:
    return SIFANetConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size, **{**defaults, **overrides})


@register_model(converter=checkpoint_filter_fn, info=ModelInfo(
    paper=_PAPER, url=_URL, variant="SIFA-Net (ResNet-50)", input="16x224x224", views="10x3",
    params_reported=None, params_official=43_105_440, gflops_reported=25.0,
    flops_convention="MACs per view (called FLOPs; the SIFA op itself uncounted), x30 views",
    top1={"K400": 77.4, "SSv1": 52.7, "SSv2": 64.8}, pretrained_layouts=("official SIFA (no weights released)",
                                                                         "torchvision resnet50 (ImageNet)"),
    notes=_NET_NOTES))
def sifa_resnet50(num_classes=400, num_frames=16, img_size=224, **overrides):
    return SIFANet(_net_cfg(num_classes, num_frames, img_size, overrides, layers=(3, 4, 6, 3)))


@register_model(converter=checkpoint_filter_fn, info=ModelInfo(
    paper=_PAPER, url=_URL, variant="SIFA-Net (ResNet-101)", input="16x224x224", views="10x3",
    params_reported=None, params_official=63_692_512, gflops_reported=39.0,
    flops_convention="MACs per view (called FLOPs; the SIFA op itself uncounted), x30 views",
    top1={"K400": 78.7, "SSv1": 53.7, "SSv2": 65.9},
    pretrained_layouts=("official SIFA (no weights released)", "torchvision resnet101 (ImageNet)"),
    notes=_NET_NOTES.replace("43,105,440 includes 64,512", "63,692,512 (measured from the official code) "
                             "includes 138,240").replace("43,040,928", "63,554,272")))
def sifa_resnet101(num_classes=400, num_frames=16, img_size=224, **overrides):
    return SIFANet(_net_cfg(num_classes, num_frames, img_size, overrides, layers=(3, 4, 23, 3)))


@register_model(converter=checkpoint_filter_fn, info=ModelInfo(
    paper=_PAPER, url=_URL, variant="SIFA-Transformer (Swin-B)", input="64x224x224", views="4x3",
    params_reported=None, params_official=109_866_824, gflops_reported=270.0,
    flops_convention="MACs per view (called FLOPs), x12 views",
    top1={"K400": 83.1, "SSv1": 57.3, "SSv2": 69.8},
    pretrained_layouts=("official SIFA-Swin (no weights released)", "ImageNet Swin-B ('model')"),
    notes=("Released code: SIFA after window attention in non-shifted blocks with LN0 (zero init), TConv in the "
           "shifted ones; the last stage has no shifted blocks. The release fixes the offsets at zero "
           "(deformable=False reproduces it: 108,134,216 parameters = 109,000,520 at 32 f (109,866,824 at 64 f) "
           "minus the frozen 1/C constants); the default deformable=True (as in the paper) adds conv_offset "
           "(+1,140,480). Every block keeps both TConv and LN0 as released (release_layout=True). "
           "x += TConv(x) is written out of place (the in-place form breaks autograd).")))
def sifa_swin_base(num_classes=400, num_frames=64, img_size=224, **overrides):
    return SIFASwin(SIFASwinConfig(num_classes=num_classes, num_frames=num_frames, img_size=img_size,
                                   **{"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32),
                                      "drop_path_rate": 0.5, **overrides}))


# The nano's recipe. 64-px crops: SIFA's 3x3 offsets need room to point somewhere at res3-res5. `reversal_pairs`
# (each batch of 8 doubled with the same clips played backwards under the partner class's label: the steps and
# compute of 1,920 clips in batches of 16, half the rendering): without it the model tells no direction apart for a
# run-dependent number of epochs (a 55-65 % plateau). lr 1.5e-3: at 3e-3 the epoch at which it finds the direction
# is left to chance (docs/findings.md, SIFA-Net: "Every batch also played backwards", "Peak lr 1.5e-3").
@register_model(recipe=Recipe(lr=1.5e-3, epochs=40, batch_size=8, num_frames=8, img_size=64, stream_clips=960,
                              reversal_pairs=True),
                converter=checkpoint_filter_fn, info=ModelInfo(
    paper=_PAPER, url=_URL, variant="SIFA-Net nano (vidlab)", views="1x1",
    flops_convention="vidlab.profile MACs (SIFA op counted)",
    notes=("vidlab's teaching size: C2D ResNet with basic blocks, widths 16/32/64/128, stem 16, [1,2,2,2] blocks, "
           "SIFA after the first 3x3 of the second block of res3-res5 and global context (GBottleneck's GC unit) "
           "in the first, the released dual head (res5 on time-pooled res4, CE(main) + CE(dual)); stem (2,7,7) "
           "stride (2,2,2): T' = 4 at 8 frames. Trained at 8x64x64.")))
def sifa_nano(num_classes=400, num_frames=8, img_size=64, **overrides):
    return SIFANet(_net_cfg(num_classes, num_frames, img_size, overrides, block="basic", layers=(1, 2, 2, 2),
                            widths=(16, 32, 64, 128), stem_width=16, stem_t=2, global_context=True,
                            dual_head=True, dropout=0.0))
