"""Attribution for video models: captum (Integrated Gradients, occlusion over frames and space-time patches,
3D Grad-CAM) and attention rollout for ViT-style models, all returning maps over the clip (B, T, H, W).

Conventions: `clip` is the normalised model input (B, 3, T, H, W); `target` a class index (int or (B,) tensor).
Every map function returns a float tensor (B, T, H, W) at the clip's resolution unless it says otherwise, so any
of them can be drawn with `vidlab.viz.plots.overlay_clip` or scored with `vidlab.viz.scores.pointing_game`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _reduce_channels(attr: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) attribution -> (B, T, H, W): absolute value summed over colour channels."""
    return attr.abs().sum(1)


def integrated_gradients(model: nn.Module, clip: torch.Tensor, target, baseline: torch.Tensor | None = None,
                         steps: int = 16, internal_batch_size: int = 2) -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al. 2017) from a black (zero after normalisation: the mean colour)
    baseline; `internal_batch_size` bounds memory (steps x clip would not fit otherwise). -> (B, T, H, W)."""
    from captum.attr import IntegratedGradients
    ig = IntegratedGradients(model)
    attr = ig.attribute(clip, baselines=baseline if baseline is not None else torch.zeros_like(clip),
                        target=target, n_steps=steps, internal_batch_size=internal_batch_size)
    return _reduce_channels(attr.detach())


def occlusion_frames(model: nn.Module, clip: torch.Tensor, target, baseline: float = 0.0) -> torch.Tensor:
    """Drop one whole frame at a time (replace it by the baseline) and record the fall of the target score.
    -> (B, T): how much each frame matters."""
    from captum.attr import Occlusion
    B, C, T, H, W = clip.shape
    attr = Occlusion(model).attribute(clip, sliding_window_shapes=(C, 1, H, W), strides=(C, 1, H, W),
                                      baselines=baseline, target=target, perturbations_per_eval=1)
    return attr.detach()[:, 0, :, 0, 0]


def occlusion_patches(model: nn.Module, clip: torch.Tensor, target, window: Sequence[int] = (2, 32, 32),
                      stride: Sequence[int] | None = None, baseline: float = 0.0,
                      perturbations_per_eval: int = 4) -> torch.Tensor:
    """Occlude space-time patches of `window` (t, h, w) frames/pixels -> (B, T, H, W) drop in the target score."""
    from captum.attr import Occlusion
    C = clip.shape[1]
    stride = tuple(stride or window)
    attr = Occlusion(model).attribute(clip, sliding_window_shapes=(C, *window), strides=(C, *stride),
                                      baselines=baseline, target=target,
                                      perturbations_per_eval=perturbations_per_eval)
    return attr.detach()[:, 0]


def grad_cam_3d(model: nn.Module, clip: torch.Tensor, target, layer: nn.Module,
                to_5d: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """3D Grad-CAM (Selvaraju et al. 2017, over T x H x W): weight the layer's channels by their mean gradient,
    ReLU, and upsample trilinearly to the clip. `layer` must output (B, C, t, h, w); for token outputs pass
    `to_5d` mapping the layer output to that shape (e.g. `lambda x: tokens_to_5d(x, (t, h, w))`).
    -> (B, T, H, W) in [0, 1] per clip."""
    from captum.attr import LayerGradCam
    if to_5d is None:
        cam = LayerGradCam(model, layer).attribute(clip, target=target, relu_attributions=True)
    else:
        acts = {}

        def hook(_, __, out):      # keep the layer output itself: the graph continues from it
            out.retain_grad()
            acts["out"] = out

        h = layer.register_forward_hook(hook)
        try:
            model.zero_grad(set_to_none=True)
            logits = model(clip)
            idx = torch.as_tensor(target, device=logits.device).reshape(-1, 1).expand(logits.shape[0], 1)
            logits.gather(1, idx).sum().backward()
        finally:
            h.remove()
        a, grad = to_5d(acts["out"]).detach(), to_5d(acts["out"].grad)
        w = grad.mean(dim=(2, 3, 4), keepdim=True)
        cam = F.relu((w * a).sum(1, keepdim=True)).detach()
    if cam.ndim != 5:
        raise ValueError(f"grad_cam_3d: layer output must be (B, C, t, h, w), got a map of shape {tuple(cam.shape)}")
    cam = F.interpolate(cam, size=clip.shape[2:], mode="trilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return cam / peak


def tokens_to_5d(tokens: torch.Tensor, grid: tuple[int, int, int], has_cls: bool = False) -> torch.Tensor:
    """Tokens (B, N, C) laid out t-major then h then w (the order of `PatchEmbed3d(...).flatten`) -> (B, C, t, h, w)."""
    if has_cls:
        tokens = tokens[:, 1:]
    B, N, C = tokens.shape
    t, h, w = grid
    if N != t * h * w:
        raise ValueError(f"expected {t}*{h}*{w}={t * h * w} tokens (grid {grid}), got {N}")
    return tokens.transpose(1, 2).reshape(B, C, t, h, w)


def attention_rollout(attentions: Sequence[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0,
                      residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): multiply the layers' (attention + identity), renormalised.

    `attentions`: per layer (B, heads, N, N), in forward order. Returns (B, N, N); row 0 is what the class token
    attends to through the whole network when the first token is a class token.
    """
    if not attentions:
        raise ValueError("attention_rollout needs at least one attention map")
    result = None
    for a in attentions:
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"expected self-attention (B, heads, N, N), got {tuple(a.shape)}")
        fused = {"mean": a.mean(1), "max": a.amax(1), "min": a.amin(1)}[head_fusion]
        if discard_ratio > 0:
            flat = fused.flatten(1)
            k = int(flat.shape[1] * discard_ratio)
            low = flat.topk(k, dim=1, largest=False).indices
            flat = flat.scatter(1, low, 0.0)
            fused = flat.view_as(fused)
        if residual:
            fused = fused + torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        fused = fused / fused.sum(-1, keepdim=True)
        result = fused if result is None else fused @ result
    return result


def rollout_to_clip(rollout: torch.Tensor, grid: tuple[int, int, int], clip_shape: Sequence[int],
                    has_cls: bool = True) -> torch.Tensor:
    """Relevance of each patch token for the class token (row 0 of the rollout), mapped to (t, h, w) and
    upsampled to the clip (B, T, H, W). Without a class token, the mean over query rows is used."""
    rel = rollout[:, 0, 1:] if has_cls else rollout.mean(1)
    t, h, w = grid
    if rel.shape[1] != t * h * w:
        raise ValueError(f"expected {t * h * w} patch tokens for grid {grid}, got {rel.shape[1]}")
    rel = rel.reshape(-1, 1, t, h, w)
    T, H, W = clip_shape[-3:]
    return F.interpolate(rel, size=(T, H, W), mode="trilinear", align_corners=False)[:, 0]


@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int = 0, top_down: int | None = None) -> nn.Module:
    """Sanity check of Adebayo et al. 2018: re-initialise parameters (all, or the last `top_down` parameter
    tensors), in place. Maps that do not change afterwards do not explain the model."""
    params = list(model.parameters())
    reinit_(params if top_down is None else params[-top_down:], torch.Generator().manual_seed(seed))
    return model


@torch.no_grad()
def reinit_(params, generator: torch.Generator) -> None:
    """Draw each tensor of `params` afresh, in place: Gaussian with the tensor's own standard deviation (0.02 for a
    constant or a scalar), so every layer keeps its scale and loses what it learned."""
    for p in params:
        std = p.float().std().item() if p.numel() > 1 else 0.02
        p.copy_(torch.randn(p.shape, generator=generator).to(p.dtype) * (std if std > 0 else 0.02))


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps of the same shape (used by the randomisation sanity check)."""
    ra = a.flatten().argsort().argsort().float()
    rb = b.flatten().argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))
