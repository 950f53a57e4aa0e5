"""Static figures of clips and of the maps models record: frame grids, heat-map overlays, points, neighbours.

Every function takes a clip either as uint8 frames (T, H, W, 3) or as a normalised float tensor (3, T, H, W)
(what models eat; it is un-normalised with the ImageNet statistics unless `mean`/`std` say otherwise), and
returns a matplotlib Figure. Maps are drawn with one colour scale for all frames so frames compare honestly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _plt():
    import matplotlib.pyplot as plt
    return plt


def clip_to_frames(clip, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """(3, T, H, W) normalised float, (T, H, W, 3) uint8 or (B=1, 3, T, H, W) -> uint8 (T, H, W, 3)."""
    if isinstance(clip, np.ndarray) and clip.dtype == np.uint8:
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got {clip.shape}")
        return clip
    x = torch.as_tensor(clip).detach().float().cpu()
    if x.ndim == 5:
        if x.shape[0] != 1:
            raise ValueError(f"expected one clip, got a batch {tuple(x.shape)}; index it first")
        x = x[0]
    if x.ndim != 4:
        raise ValueError(f"expected a clip (3, T, H, W) or frames (T, H, W, 3), got {tuple(x.shape)}")
    if x.shape[0] == 3:                       # (3, T, H, W) normalised
        m = torch.tensor(mean).view(3, 1, 1, 1)
        s = torch.tensor(std).view(3, 1, 1, 1)
        x = (x * s + m).clamp(0, 1).permute(1, 2, 3, 0) * 255
    elif x.shape[-1] == 3:                    # (T, H, W, 3) float in 0..255 or 0..1
        x = x * (255 if x.max() <= 1.0 else 1)
    else:
        raise ValueError(f"expected 3 colour channels, got {tuple(x.shape)}")
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def upsample_map(heat, size: tuple[int, int], num_frames: int | None = None) -> np.ndarray:
    """Bilinearly resize a map (h, w) or (t, h, w) to (T, H, W); a map with fewer frames is repeated in time."""
    h = torch.as_tensor(heat).detach().float().cpu()
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3:
        raise ValueError(f"expected a map (h, w) or (t, h, w), got {tuple(h.shape)}")
    h = F.interpolate(h[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    if num_frames is not None and h.shape[0] != num_frames:
        idx = torch.linspace(0, h.shape[0] - 1, num_frames).round().long()
        h = h[idx]                            # nearest frame in time (e.g. tubelet maps at T/2)
    return h.numpy()


def _grid(n: int, ncols: int | None, scale: float = 2.2):
    ncols = ncols or min(n, 8)
    nrows = (n + ncols - 1) // ncols
    fig, axes = _plt().subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def show_clip(clip, titles: Sequence[str] | None = None, ncols: int | None = None, suptitle: str | None = None,
              mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """A grid of the clip's frames."""
    frames = clip_to_frames(clip, mean, std)
    fig, axes = _grid(len(frames), ncols)
    for t, (ax, fr) in enumerate(zip(axes, frames)):
        ax.imshow(fr)
        ax.set_title(titles[t] if titles else f"t={t}", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def overlay_clip(clip, heat, alpha: float = 0.5, cmap: str = "jet", titles: Sequence[str] | None = None,
                 ncols: int | None = None, suptitle: str | None = None, vmin=None, vmax=None,
                 save: str | Path | None = None, fps: int = 4, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """A map over the frames with ONE colour scale: heat (t, h, w) or (h, w), upsampled to the frames.

    `save` writes the figure as .png/.pdf/.svg, or the overlaid frames as an animated .gif or .mp4 for slides.
    """
    frames = clip_to_frames(clip, mean, std)
    T, H, W, _ = frames.shape
    up = upsample_map(heat, (H, W), T)
    vmin = float(np.nanmin(up)) if vmin is None else vmin
    vmax = float(np.nanmax(up)) if vmax is None else vmax
    fig, axes = _grid(T, ncols)
    for t, ax in zip(range(T), axes):
        ax.imshow(frames[t])
        im = ax.imshow(up[t], cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
        ax.set_title(titles[t] if titles else f"t={t}", fontsize=8)
    fig.colorbar(im, ax=list(fig.axes), shrink=0.6, pad=0.01)
    if suptitle:
        fig.suptitle(suptitle)
    if save is not None:
        save = Path(save)
        if save.suffix.lower() in {".gif", ".mp4"}:
            blended = blend(frames, up, alpha=alpha, cmap=cmap, vmin=vmin, vmax=vmax)
            write_animation(blended, save, fps=fps)
        else:
            fig.savefig(save, bbox_inches="tight", dpi=120)
    return fig


def blend(frames: np.ndarray, up: np.ndarray, alpha=0.5, cmap="jet", vmin=None, vmax=None) -> np.ndarray:
    """uint8 frames (T, H, W, 3) blended with a map (T, H, W) through a colour map -> uint8 (T, H, W, 3)."""
    vmin = float(up.min()) if vmin is None else vmin
    vmax = float(up.max()) if vmax is None else vmax
    norm = (up - vmin) / max(vmax - vmin, 1e-12)
    colours = matplotlib.colormaps[cmap](np.clip(norm, 0, 1))[..., :3] * 255
    out = (1 - alpha) * frames.astype(np.float32) + alpha * colours
    return out.round().clip(0, 255).astype(np.uint8)


def write_animation(frames: np.ndarray, path: str | Path, fps: int = 4) -> Path:
    """Write uint8 frames (T, H, W, 3) as an animated GIF (Pillow) or an H.264 mp4 (PyAV)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image
        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
        return path
    import av
    H, W = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2   # yuv420p needs even sizes
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:H, :W]), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def points_to_pixels(points, size: tuple[int, int]) -> np.ndarray:
    """Normalised (x, y) in [-1, 1] (grid_sample's align_corners=True convention) -> pixel (x, y)."""
    p = torch.as_tensor(points).detach().float().cpu().numpy()
    H, W = size
    return np.stack([(p[..., 0] + 1) / 2 * (W - 1), (p[..., 1] + 1) / 2 * (H - 1)], axis=-1)


def draw_points(clip, points, boxes_px=None, box_size: float | None = None, gt_boxes=None, titles=None,
                ncols: int | None = None, suptitle: str | None = None, color="red",
                mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Points (T, 2) in [-1, 1] drawn on each frame, optionally as squares of side `box_size` px (ILA's boxes),
    with ground-truth boxes (T, n, 4) xyxy in pixels drawn in white."""
    from matplotlib.patches import Rectangle
    frames = clip_to_frames(clip, mean, std)
    T, H, W, _ = frames.shape
    px = points_to_pixels(points, (H, W))
    if px.ndim == 3:          # (T, P, 2): several points per frame
        pass
    else:
        px = px[:, None]
    fig, axes = _grid(T, ncols)
    for t, ax in zip(range(T), axes):
        ax.imshow(frames[t])
        for x, y in px[t]:
            ax.plot([x], [y], "o", color=color, ms=4)
            if box_size:
                ax.add_patch(Rectangle((x - box_size / 2, y - box_size / 2), box_size, box_size,
                                       fill=False, ec=color, lw=1.5))
        if boxes_px is not None:
            for x0, y0, x1, y1 in np.asarray(boxes_px[t]).reshape(-1, 4):
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5, ls="--"))
        if gt_boxes is not None:
            for x0, y0, x1, y1 in np.asarray(gt_boxes[t]).reshape(-1, 4):
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=1))
        ax.set_title(titles[t] if titles else f"t={t}", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def draw_neighbours(frame, query_xy, neighbours_xy, weights=None, query_frame=None, cmap="cool", ax=None,
                    title: str | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """SIFA-style picture: the query on frame t (left, if given) and its K sampled neighbours on frame t+1,
    dots coloured by weight with lines from the query position. Coordinates are pixel (x, y)."""
    plt = _plt()
    fr = clip_to_frames(frame[:, None] if torch.as_tensor(frame).ndim == 3 and torch.as_tensor(frame).shape[0] == 3
                        else np.asarray(frame)[None], mean, std)[0]
    nb = np.asarray(neighbours_xy, dtype=np.float32).reshape(-1, 2)
    w = np.ones(len(nb)) if weights is None else np.asarray(torch.as_tensor(weights).float()).reshape(-1)
    if ax is None:
        ncol = 2 if query_frame is not None else 1
        fig, axs = plt.subplots(1, ncol, figsize=(4 * ncol, 4), squeeze=False)
        axs = axs[0]
    else:
        fig, axs = ax.figure, [ax]
    if query_frame is not None:
        qf = clip_to_frames(query_frame[:, None] if torch.as_tensor(query_frame).ndim == 3
                            and torch.as_tensor(query_frame).shape[0] == 3 else np.asarray(query_frame)[None],
                            mean, std)[0]
        axs[0].imshow(qf)
        axs[0].plot([query_xy[0]], [query_xy[1]], "y*", ms=12)
        axs[0].set_title("query on frame t", fontsize=9)
        axs[0].axis("off")
    a = axs[-1]
    a.imshow(fr)
    for (x, y) in nb:
        a.plot([query_xy[0], x], [query_xy[1], y], "-", color="white", lw=0.6, alpha=0.7)
    sc = a.scatter(nb[:, 0], nb[:, 1], c=w, cmap=cmap, s=40, edgecolors="k", linewidths=0.5)
    a.plot([query_xy[0]], [query_xy[1]], "y*", ms=12)
    fig.colorbar(sc, ax=a, shrink=0.7, label="weight")
    a.set_title(title or "neighbours on frame t+1", fontsize=9)
    a.axis("off")
    return fig


def plot_attention(attn, ax=None, title: str | None = None, xlabel: str = "key", ylabel: str = "query",
                   cmap: str = "viridis"):
    """An attention matrix (Nq, Nk) (or (heads, Nq, Nk): heads averaged) as an image."""
    plt = _plt()
    a = torch.as_tensor(attn).detach().float().cpu()
    if a.ndim == 3:
        a = a.mean(0)
    if a.ndim != 2:
        raise ValueError(f"expected attention (Nq, Nk) or (heads, Nq, Nk), got {tuple(a.shape)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    else:
        fig = ax.figure
    im = ax.imshow(a.numpy(), cmap=cmap, aspect="auto")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def channel_norm(fmap) -> torch.Tensor:
    """L2 norm over channels of a (B, C, T, H, W) or (C, T, H, W) map -> (B, T, H, W) or (T, H, W)."""
    x = torch.as_tensor(fmap).float()
    return x.norm(dim=-4)


def map_grid(maps: dict, clip=None, frame: int = 0, ncols: int = 4, alpha=0.5, cmap="jet",
             mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Several named maps (each (t, h, w) or (h, w)) for one frame side by side, over the frame if a clip is given.
    Long names wrap onto a second line (with model: map names the model goes on the first) so titles never overlap."""
    import textwrap
    fig, axes = _grid(len(maps), ncols, scale=2.6)
    fr = clip_to_frames(clip, mean, std) if clip is not None else None
    for ax, (name, m) in zip(axes, maps.items()):
        m = torch.as_tensor(m).float()
        m = m[min(frame, m.shape[0] - 1)] if m.ndim == 3 else m
        if fr is not None:
            T, H, W, _ = fr.shape
            ax.imshow(fr[min(frame, T - 1)])
            ax.imshow(upsample_map(m, (H, W))[0], cmap=cmap, alpha=alpha)
        else:
            ax.imshow(m.numpy(), cmap=cmap)
        title = "\n".join(textwrap.fill(part, 30) for part in str(name).split(": ", 1))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def maps_over_frames(clip, rows: dict, masks=None, alpha: float = 0.55, cmap: str = "inferno",
                     mean=IMAGENET_MEAN, std=IMAGENET_STD, suptitle: str | None = None):
    """Each named map (t, h, w) over all the frames of `clip`, one row per map, each row on its own colour scale
    (its frames share it), with the ground-truth outline of `masks` (T, H, W) drawn on every panel. The first row
    is the clip itself with the outline."""
    plt = _plt()
    frames = clip_to_frames(clip, mean, std)
    T, H, W, _ = frames.shape
    fig, axes = plt.subplots(len(rows) + 1, T, figsize=(1.35 * T, 1.45 * (len(rows) + 1)), squeeze=False)
    outline = None if masks is None else torch.as_tensor(masks).float().numpy()
    for r, (name, heat) in enumerate([("clip", None), *rows.items()]):
        up = None if heat is None else upsample_map(heat, (H, W), T)
        lo, hi = (0, 1) if up is None else (float(np.nanmin(up)), float(np.nanmax(up)))
        for t in range(T):
            ax = axes[r][t]
            ax.imshow(frames[t])
            if up is not None:
                ax.imshow(up[t], cmap=cmap, alpha=alpha, vmin=lo, vmax=hi)
            if outline is not None and outline[t].any():
                ax.contour(outline[t], levels=[0.5], colors="lime", linewidths=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={t}", fontsize=7)
        axes[r][0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center", wrap=True)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.subplots_adjust(wspace=0.03, hspace=0.06)
    return fig
