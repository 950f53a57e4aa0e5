"""Layers that two or more vidlab architectures share. Anything used by one model lives in that model's file."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn


def check_clip(x: torch.Tensor, in_chans: int = 3, num_frames: int | None = None, name: str = "clip") -> None:
    """Raise ValueError unless `x` is a float clip (B, in_chans, T, H, W) (with T == num_frames when given)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a {name} tensor (B, {in_chans}, T, H, W), got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != in_chans:
        hint = " (channels last? use clip.permute(0, 4, 1, 2, 3))" if x.ndim == 5 and x.shape[-1] == in_chans else ""
        raise ValueError(f"expected a {name} (B, {in_chans}, T, H, W), got {tuple(x.shape)}{hint}")
    if num_frames is not None and x.shape[2] != num_frames:
        raise ValueError(f"expected a {name} with T={num_frames} frames (the model was built for it), "
                         f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float {name} (normalised), got dtype {x.dtype}")


def to_3tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x, x)


class PatchEmbed3d(nn.Module):
    """Tubelet embedding: Conv3d with kernel = stride = (t, p, p), then an optional LayerNorm over channels.

    (B, 3, T, H, W) -> (B, C, T/t, H/p, W/p) channels-first, or (B, N, C) tokens with ``flatten=True``.
    A tubelet size of (1, p, p) is per-frame patch embedding (2D weights load after `inflate_weight`).
    """

    def __init__(self, patch_size=(2, 16, 16), in_chans: int = 3, embed_dim: int = 768, norm: bool = False,
                 bias: bool = True, flatten: bool = False, stride=None, padding=0):
        super().__init__()
        self.patch_size = to_3tuple(patch_size)
        self.flatten = flatten
        self.proj = nn.Conv3d(in_chans, embed_dim, self.patch_size, stride=to_3tuple(stride or self.patch_size),
                              padding=padding, bias=bias)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)                                   # (B, C, T', H', W')
        if self.norm is None and not self.flatten:
            return x
        B, C, T, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)                   # (B, N, C)
        if self.norm is not None:
            x = self.norm(x)
        if self.flatten:
            return x
        return x.transpose(1, 2).reshape(B, C, T, H, W)


class Mlp(nn.Module):
    """Transformer MLP: Linear -> act -> drop -> Linear -> drop. (..., C) -> (..., C_out)."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 act_layer=nn.GELU, drop: float = 0.0, bias: bool = True):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability p, rescale the rest."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016) per sample of the batch dimension."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class LayerNormChannelsFirst(nn.LayerNorm):
    """LayerNorm over dim 1 of a (B, C, *spatial) tensor (ConvNeXt's channels_first LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


def trunc_normal_(tensor: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Truncated normal init at +-2 std (the ViT/Swin convention)."""
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)


def init_weights_vit(module: nn.Module, std: float = 0.02) -> None:
    """Linear: trunc-normal(std)/bias 0; LayerNorm: 1/0 — use as ``model.apply(init_weights_vit)``."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_weights_resnet(model: nn.Module, linear_std: float | None = 0.01) -> None:
    """The ResNet convention (He et al. 2015): Conv3d kaiming-normal (fan_out, ReLU), BatchNorm3d 1/0, and Linear
    N(0, linear_std)/0 unless `linear_std` is None."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def inflate_weight(weight2d: torch.Tensor, time_dim: int, mode: str = "mean") -> torch.Tensor:
    """Inflate a 2D conv kernel (O, I, kh, kw) to 3D (O, I, kt, kh, kw).

    mode "mean" (I3D): repeat over time and divide by kt, so a static clip gives the 2D response;
    mode "center": the 2D kernel at the centre tap (kt//2), zeros elsewhere, so the model starts per-frame.
    """
    if weight2d.ndim != 4:
        raise ValueError(f"expected a 2D conv weight (O, I, kh, kw), got {tuple(weight2d.shape)}")
    if mode == "mean":
        return weight2d.unsqueeze(2).repeat(1, 1, time_dim, 1, 1) / time_dim
    if mode == "center":
        w = weight2d.new_zeros(weight2d.shape[:2] + (time_dim,) + weight2d.shape[2:])
        w[:, :, time_dim // 2] = weight2d
        return w
    raise ValueError(f"inflate mode must be 'mean' or 'center', got {mode!r}")


def inflate_state_dict(state_dict2d: Mapping[str, torch.Tensor], model: nn.Module, mode: str = "mean",
                       center_keys: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Map image weights onto a video model with the same key names: every 4D conv weight whose video
    counterpart is 5D is inflated (`inflate_weight`, "center" for keys containing any of `center_keys`);
    other tensors pass through unchanged. Keys the model lacks are kept (the loader reports them)."""
    own = model.state_dict()
    out = {}
    for k, v in state_dict2d.items():
        if k in own and v.ndim == 4 and own[k].ndim == 5:
            m = "center" if any(c in k for c in center_keys) else mode
            v = inflate_weight(v, own[k].shape[2], m)
        out[k] = v
    return out


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def report_params(model: nn.Module, name: str | None = None) -> str:
    """'<name>: 2.59M parameters' — the one line a model prints about itself when asked."""
    n = count_params(model)
    return f"{name or type(model).__name__}: {n / 1e6:.2f}M parameters ({n:,})"
