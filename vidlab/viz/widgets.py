"""One explorer for every notebook: model x layer x head/level x frame, over the clip.

`explorer(maps, clip)` gives the **live** explorer (an ipywidgets box: dropdowns, a frame slider with a play
button, an opacity slider, a colour bar) wherever a kernel with a live front end runs it (JupyterLab, Notebook,
VS Code, Colab), and the **static** copy (one matplotlib figure: rows = maps, columns = frames) where no one can
move a slider: a notebook executed by papermill/nbconvert, a plain Python script, an HTML export. Only one of
the two is drawn. `static=True/False` forces either; the environment variable `VIDLAB_EXPLORER=static|live`
does the same for a whole run.

`maps` is either {layer: tensor} or {model: {layer: tensor}}; a tensor is (T, h, w), or (K, T, h, w) where K
indexes heads or focal levels. Use `vidlab.viz.capture` to get maps and reduce them to these shapes first.
Controls with nothing to choose (one model, one layer, one head/level) are hidden.
"""
from __future__ import annotations

import io
import os
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
        if not layers:
            raise ValueError(f"explorer: model {model!r} has no maps")
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


def live_frontend() -> bool:
    """True when a person can interact with widgets here: code runs in an IPython kernel whose current request
    came from a live front end. nbclient (papermill, `nbconvert --execute`) sends its requests with
    `allow_stdin=False`, every interactive front end with True; outside a kernel there is no front end at all.
    `VIDLAB_EXPLORER=static|live` overrides the guess."""
    forced = os.environ.get("VIDLAB_EXPLORER", "").strip().lower()
    if forced in {"static", "live"}:
        return forced == "live"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None) if ip is not None else None
    return bool(kernel is not None and getattr(kernel, "_allow_stdin", False))


def _label(model: str, layer: str, several_models: bool) -> str:
    return f"{model}\n{layer}" if several_models else layer


def explorer_static(maps: Mapping, clip, frames_shown: int = 4, alpha: float = 0.5, cmap: str = "jet",
                    mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The static copy: rows = (model, layer) labelled on the left, columns = evenly spaced frames titled once on
    top, one colour scale (and colour bar) per row; heads/levels are averaged. The figure is closed in pyplot, so it
    is shown once: as the cell's value or with `display(fig)`."""
    import matplotlib.pyplot as plt
    norm = _normalise_maps(maps)
    frames = clip_to_frames(clip, mean, std)
    T, H, W, _ = frames.shape
    cols = np.unique(np.linspace(0, T - 1, min(frames_shown, T)).round().astype(int))
    rows = [(mo, la) for mo, ls in norm.items() for la in ls]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.9 * len(cols) + 2.6, 1.9 * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    for r, (mo, la) in enumerate(rows):
        m = norm[mo][la]
        up = upsample_map(m.mean(0), (H, W), T)
        lo, hi = float(up.min()), float(up.max())      # one colour scale across the frames of this map
        for c, t in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(frames[int(t)])
            im = ax.imshow(up[int(t)], cmap=cmap, alpha=alpha, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if r == 0:
                ax.set_title(f"t={int(t)}", fontsize=9)
        name = _label(mo, la, len(norm) > 1) + (f"\n(mean of {m.shape[0]})" if m.shape[0] > 1 else "")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.9, pad=0.01, aspect=12)
    plt.close(fig)
    return fig


def _render(frames: np.ndarray, m: torch.Tensor, t: int, alpha: float, cmap: str, title: str) -> bytes:
    """One view as PNG bytes: frame t with map m (T, h, w) over it and a colour bar (one scale for all frames)."""
    import matplotlib.pyplot as plt
    T, H, W, _ = frames.shape
    up = upsample_map(m, (H, W), T)
    fig, ax = plt.subplots(figsize=(4.6, 4), layout="constrained")
    ax.imshow(frames[min(t, T - 1)])
    im = ax.imshow(up[min(t, T - 1)], cmap=cmap, alpha=alpha, vmin=float(up.min()), vmax=float(up.max()))
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.85, pad=0.02)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def explorer_live(maps: Mapping, clip, alpha: float = 0.5, cmap: str = "jet", fps: int = 4,
                  mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The live explorer (ipywidgets); see the module docstring. The first view is drawn at once."""
    import ipywidgets as W

    norm = _normalise_maps(maps)
    frames = clip_to_frames(clip, mean, std)
    T = frames.shape[0]
    model_dd = W.Dropdown(options=list(norm), description="model")
    layer_dd = W.Dropdown(options=list(norm[model_dd.value]), description="layer")
    k_sl = W.IntSlider(0, 0, 0, description="head/level")
    mean_cb = W.Checkbox(False, description="mean over heads/levels")
    t_sl = W.IntSlider(0, 0, T - 1, description="frame")
    play = W.Play(value=0, min=0, max=T - 1, step=1, interval=int(1000 / fps), description="play")
    W.jslink((play, "value"), (t_sl, "value"))      # animated in the browser, no round trip per step
    opacity = W.FloatSlider(alpha, min=0.0, max=1.0, step=0.05, description="opacity", readout_format=".2f")
    view = W.Image(format="png", layout=W.Layout(width="460px"))   # a PNG in widget state: no output area needed
    hidden, shown = W.Layout(display="none"), W.Layout()
    model_dd.layout = shown if len(norm) > 1 else hidden

    def current() -> torch.Tensor:
        return norm[model_dd.value][layer_dd.value]

    def sync_controls():
        K = current().shape[0]
        k_sl.max = K - 1
        k_sl.layout = shown if K > 1 and not mean_cb.value else hidden
        mean_cb.layout = shown if K > 1 else hidden
        layer_dd.layout = shown if len(norm[model_dd.value]) > 1 else hidden

    def redraw(*_):
        sync_controls()
        m = current()
        if mean_cb.value and m.shape[0] > 1:
            m, kname = m.mean(0), "mean"
        else:
            kname = str(min(k_sl.value, m.shape[0] - 1))
            m = m[min(k_sl.value, m.shape[0] - 1)]
        head = f" k={kname}" if current().shape[0] > 1 else ""
        who = f"{model_dd.value}:" if len(norm) > 1 else ""
        view.value = _render(frames, m, t_sl.value, opacity.value, cmap, f"{who}{layer_dd.value}{head} t={t_sl.value}")

    def on_model(_):
        layer_dd.options = list(norm[model_dd.value])    # fires redraw through layer_dd

    model_dd.observe(on_model, names="value")
    for w in (model_dd, layer_dd, k_sl, t_sl, mean_cb, opacity):
        w.observe(redraw, names="value")
    redraw()
    box = W.VBox([W.HBox([model_dd, layer_dd]), W.HBox([k_sl, mean_cb]), W.HBox([play, t_sl, opacity]), view])
    box.add_class("vidlab-explorer")
    return box


def explorer(maps: Mapping, clip, static: bool | None = None, alpha: float = 0.5, cmap: str = "jet",
             mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The live explorer where a person can use it, else the static copy (see the module docstring).
    `static=None` decides from the environment (`live_frontend()`); True/False force one."""
    if static is None:
        static = not live_frontend()
    if not static:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            static = True
    if static:
        return explorer_static(maps, clip, alpha=alpha, cmap=cmap, mean=mean, std=std)
    return explorer_live(maps, clip, alpha=alpha, cmap=cmap, mean=mean, std=std)
