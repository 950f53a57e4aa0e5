"""One explorer widget for every notebook: model x layer x head/level x frame, over the clip.

`explorer(maps, clip)` returns an ipywidgets box with dropdowns/sliders whose view is drawn at once (so a
notebook executed by papermill, which never fires callbacks, still shows the initial view), and `static=True`
(or a missing ipywidgets) gives the static fallback: one matplotlib figure with every layer for a few frames.

`maps` is either {layer: tensor} or {model: {layer: tensor}}; a tensor is (T, h, w), or (K, T, h, w) where K
indexes heads or focal levels. Use `vidlab.viz.capture` to get maps and reduce them to these shapes first.
"""
from __future__ import annotations

import io
from typing import Mapping

import numpy as np
import torch

from .plots import IMAGENET_MEAN, IMAGENET_STD, clip_to_frames, upsample_map


def _normalise_maps(maps: Mapping) -> dict[str, dict[str, torch.Tensor]]:
    if not maps:
        raise ValueError("explorer needs at least one map")
    first = next(iter(maps.values()))
    nested = maps if isinstance(first, Mapping) else {"model": maps}
    out: dict[str, dict[str, torch.Tensor]] = {}
    for model, layers in nested.items():
        out[model] = {}
        for layer, m in layers.items():
            t = torch.as_tensor(m).detach().float().cpu()
            if t.ndim == 2:
                t = t[None]
            if t.ndim == 3:
                t = t[None]               # (1, T, h, w)
            if t.ndim != 4:
                raise ValueError(f"map {model}/{layer}: expected (T, h, w) or (K, T, h, w), got {tuple(t.shape)}")
            out[model][layer] = t
    return out


def _draw(ax, frames, m: torch.Tensor, k: int, t: int, alpha: float, cmap: str, title: str):
    T, H, W, _ = frames.shape
    mk = m[min(k, m.shape[0] - 1)]
    up = upsample_map(mk, (H, W), T)
    lo, hi = float(up.min()), float(up.max())   # one colour scale across frames of this map
    ax.imshow(frames[min(t, T - 1)])
    ax.imshow(up[min(t, T - 1)], cmap=cmap, alpha=alpha, vmin=lo, vmax=hi)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def explorer_static(maps: Mapping, clip, frames_shown: int = 4, alpha: float = 0.5, cmap: str = "jet",
                    mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The static fallback: rows = (model, layer), columns = evenly spaced frames; head/level 0 (or the mean)."""
    import matplotlib.pyplot as plt
    norm = _normalise_maps(maps)
    frames = clip_to_frames(clip, mean, std)
    T = frames.shape[0]
    cols = np.unique(np.linspace(0, T - 1, min(frames_shown, T)).round().astype(int))
    rows = [(mo, la) for mo, ls in norm.items() for la in ls]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.2 * len(cols), 2.2 * len(rows)), squeeze=False)
    for r, (mo, la) in enumerate(rows):
        m = norm[mo][la].mean(0, keepdim=True)
        for c, t in enumerate(cols):
            title = f"{la} t={t}" if len(norm) == 1 else f"{mo}:{la} t={t}"
            _draw(axes[r, c], frames, m, 0, int(t), alpha, cmap, title)
    fig.tight_layout()
    return fig


def explorer(maps: Mapping, clip, static: bool = False, alpha: float = 0.5, cmap: str = "jet",
             mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Interactive explorer (ipywidgets) with a static fallback; see the module docstring."""
    if static:
        return explorer_static(maps, clip, alpha=alpha, cmap=cmap, mean=mean, std=std)
    try:
        import ipywidgets as W
    except ImportError:
        return explorer_static(maps, clip, alpha=alpha, cmap=cmap, mean=mean, std=std)
    import matplotlib.pyplot as plt

    norm = _normalise_maps(maps)
    frames = clip_to_frames(clip, mean, std)
    model_dd = W.Dropdown(options=list(norm), description="model")
    layer_dd = W.Dropdown(options=list(norm[model_dd.value]), description="layer")
    k_sl = W.IntSlider(0, 0, 0, description="head/level")
    t_sl = W.IntSlider(0, 0, frames.shape[0] - 1, description="frame")
    mean_cb = W.Checkbox(False, description="mean over heads/levels")
    # the view is a PNG in widget state: drawn without a live output area
    view = W.Image(format="png", layout=W.Layout(width="440px"))

    def redraw(*_):
        m = norm[model_dd.value][layer_dd.value]
        k_sl.max = m.shape[0] - 1
        if mean_cb.value:
            m = m.mean(0, keepdim=True)
        fig, ax = plt.subplots(figsize=(4, 4))
        _draw(ax, frames, m, k_sl.value, t_sl.value, alpha, cmap,
              f"{model_dd.value}:{layer_dd.value} k={k_sl.value} t={t_sl.value}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", dpi=90)
        plt.close(fig)
        view.value = buf.getvalue()

    def on_model(_):
        layer_dd.options = list(norm[model_dd.value])

    model_dd.observe(on_model, names="value")
    model_dd.observe(redraw, names="value")
    for w in (layer_dd, k_sl, t_sl, mean_cb):
        w.observe(redraw, names="value")
    redraw()
    controls = [w for w in (model_dd,) if len(norm) > 1] + [layer_dd, k_sl, t_sl, mean_cb]
    box = W.VBox([W.HBox(controls[:2]), W.HBox(controls[2:]), view])
    box.add_class("vidlab-explorer")
    return box
