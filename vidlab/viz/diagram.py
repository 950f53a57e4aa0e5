"""Block diagrams drawn from a model's own structure, with the tensor shapes of a real forward pass on the arrows.

`diagram(model, input_shape)` picks the boxes from the module tree — the model's top-level modules, with every list of
blocks (a `ModuleList` or `Sequential` of blocks: `stages`, `layers`, `blocks`, `resblocks`...) opened into its
blocks — names each box as the model names the module (`layers.0.blocks.1`), runs one forward pass on a random
input of `input_shape` with a hook on every box, and draws an arrow into each box from the box whose output it
received, labelled with the shape it received. Nothing is typed by hand, so the drawing cannot drift from the code.
`diagram_graph` returns the same boxes and edges as data (what the figure draws), e.g. to check them.

Matplotlib only (no graphviz). A block given instead of a model is drawn the same way: its sub-modules are the boxes
(`input_shape` may then be a list of shapes, one per input, e.g. Mobile-Former's `(x, z)`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

# modules that neither change a shape nor carry a paper's idea: not drawn (the arrows are traced through them)
PASS_THROUGH = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity)
# building blocks too common to name inside a box; anything else a box contains is listed (the paper's terms:
# FocalModulation, MobileToFormer, LocalWindowAttention, InterFrameAttention, ImplicitAlignment...)
COMMON = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
          nn.GroupNorm, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Softmax,
          nn.MaxPool3d, nn.MaxPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool3d, nn.Sequential, nn.ModuleList,
          nn.ModuleDict, *PASS_THROUGH)
COMMON_NAMES = {"DropPath", "Mlp", "ConvBN", "QuickGELU", "PatchEmbed", "PatchEmbed3d"}


@dataclass
class Box:
    """One drawn box: a module of the model, called once in the forward pass (a module called twice gets two)."""
    name: str                          # the module's name in the model ("layers.0.blocks.1"), "input", "output"
    kind: str                          # its class name
    params: int = 0
    contains: list[str] = field(default_factory=list)   # the paper-level sub-modules it holds (class names)
    in_shapes: list[tuple] = field(default_factory=list)
    out_shapes: list[tuple] = field(default_factory=list)


@dataclass
class Edge:
    """An arrow from box `src` to box `dst` (indices into the box list) carrying tensors of these shapes."""
    src: int
    dst: int
    shapes: list[tuple]


def _is_leafish_list(m: nn.Module) -> bool:
    """A Sequential of plain layers (conv, norm, activation): one box, not a list of blocks."""
    return all(len(list(c.children())) == 0 for c in m.children())


def _is_block(m: nn.Module) -> bool:
    """A module with sub-modules that is more than a Sequential of plain layers."""
    return len(list(m.children())) > 0 and not (isinstance(m, nn.Sequential) and _is_leafish_list(m))


def _is_block_list(m: nn.Module) -> bool:
    """A ModuleList/Sequential whose items are blocks, e.g. `stages`, `layers.0.blocks` (not FocalNet's
    `focal_layers`, a list of conv + GELU pairs)."""
    return isinstance(m, (nn.ModuleList, nn.Sequential)) and len(m) > 0 and all(_is_block(c) for c in m.children())


def _holds_block_list(m: nn.Module, depth: int) -> bool:
    """Whether a list of blocks sits among m's descendants, at most `depth` levels below it."""
    if depth <= 0:
        return False
    return any(_is_block_list(c) or _holds_block_list(c, depth - 1) for c in m.children())


def _opens(m: nn.Module, depth: int) -> bool:
    """Whether a module is drawn as its children: lists (of blocks, or a ModuleList/ModuleDict, which has no
    forward of its own), and any module that holds a list of blocks within `depth` levels below it (a stage holding
    `blocks`, a ViT holding `transformer.resblocks`)."""
    return (isinstance(m, (nn.ModuleList, nn.ModuleDict)) or _is_block_list(m)
            or _holds_block_list(m, depth))


def select_boxes(model: nn.Module, depth: int = 2) -> list[str]:
    """The names of the modules drawn as boxes (in registration order; the drawing uses the call order).

    Starting from the model's children, a module is opened into its children when it is a list of blocks or holds
    one within `depth` levels below it; everything else is one box. Pass-through modules (dropout, identity) are
    left out."""
    names: list[str] = []

    def visit(prefix: str, m: nn.Module):
        for child_name, child in m.named_children():
            name = f"{prefix}{child_name}"
            if isinstance(child, PASS_THROUGH):
                continue
            if len(list(child.children())) and _opens(child, depth):
                visit(name + ".", child)
            else:
                names.append(name)

    visit("", model)
    return names or [""]


def _tensors(obj) -> list[torch.Tensor]:
    """Every tensor in an output or argument structure (tensor, tuple, list, dict), in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _contains(m: nn.Module, limit: int = 3) -> list[str]:
    seen: list[str] = []
    for sub in m.modules():
        if sub is m:
            continue
        name = type(sub).__name__
        if isinstance(sub, COMMON) or name in COMMON_NAMES or name in seen:
            continue
        seen.append(name)
    return seen[:limit]


def _example_inputs(input_shape, device) -> list[torch.Tensor]:
    if isinstance(input_shape, torch.Tensor):
        return [input_shape.to(device)]
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], torch.Tensor):
        return [t.to(device) for t in input_shape]
    shapes = input_shape if input_shape and isinstance(input_shape[0], (list, tuple)) else [input_shape]
    return [torch.randn(*map(int, s), device=device) for s in shapes]


def _sources(t: torch.Tensor, made_by: dict) -> set[int]:
    """The boxes whose outputs `t` was computed from: a walk back through the autograd graph from t that stops at
    the first node a box produced on each path (so reshapes, residual sums, concatenations and pooling written as
    plain functions between boxes are followed)."""
    if t.grad_fn is None:
        return set()
    found, stack, seen = set(), [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) in made_by:
            found.add(made_by[id(node)])
            continue
        stack.extend(n for n, _ in getattr(node, "next_functions", ()))
    return found


def diagram_graph(model: nn.Module, input_shape, depth: int = 2, boxes: Sequence[str] | None = None
                  ) -> tuple[list[Box], list[Edge]]:
    """The boxes and arrows `diagram` draws, from one forward pass of `model` on a random input of `input_shape`.

    `input_shape` is one shape, e.g. (1, 3, 8, 32, 32), a list of shapes (one per positional input) or the input
    tensor(s) themselves. Boxes are in call order, with "input" first and "output" last. An arrow runs into a box
    from every box whose output its input was computed from (found in the autograd graph of the pass, so the code
    between two boxes may reshape, add or concatenate), and carries the shapes the box received."""
    names = list(boxes) if boxes is not None else select_boxes(model, depth)
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if device.type == "meta":
        raise ValueError("diagram needs real tensors: build the model on a real device, not on 'meta'")
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in _example_inputs(input_shape, device)]

    drawn: list[Box] = [Box("input", "input", out_shapes=[tuple(t.shape) for t in inputs])]
    made_by: dict[int, int] = {}                 # id(autograd node) -> index of the box whose output it made
    keep: list = []                              # the nodes stay alive, so their ids stay unique
    for t in inputs:
        if t.requires_grad:
            node = t.view_as(t).grad_fn.next_functions[0][0]     # the input's AccumulateGrad node
            made_by[id(node)] = 0
            keep.append(node)
    edges: list[Edge] = []

    def connect(j: int, tensors: list[torch.Tensor]):
        by_src: dict[int, list[tuple]] = {}
        for t in tensors:
            for s in sorted(_sources(t, made_by)) or [j - 1]:      # untraceable (no grad): the box called before
                by_src.setdefault(s, []).append(tuple(t.shape))
        edges.extend(Edge(s, j, shapes) for s, shapes in sorted(by_src.items()))

    def box_hook(name: str):
        def hook(module, args, kwargs, output):
            ins, outs = _tensors(args) + _tensors(kwargs), _tensors(output)
            j = len(drawn)
            drawn.append(Box(name, type(module).__name__, sum(p.numel() for p in module.parameters()),
                             _contains(module), [tuple(t.shape) for t in ins], [tuple(t.shape) for t in outs]))
            connect(j, ins)
            for t in outs:
                if t.grad_fn is not None:
                    made_by[id(t.grad_fn)] = j
                    keep.append(t.grad_fn)
        return hook

    handles = []
    try:
        for name in names:
            if name:
                handles.append(model.get_submodule(name).register_forward_hook(box_hook(name), with_kwargs=True))
        with torch.enable_grad():
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    outs = _tensors(out)
    drawn.append(Box("output", "output", in_shapes=[tuple(t.shape) for t in outs]))
    connect(len(drawn) - 1, outs)
    return drawn, edges


def _fmt_shape(s: tuple) -> str:
    return "×".join(str(d) for d in s) if s else "scalar"


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def diagram(model: nn.Module, input_shape, depth: int = 2, boxes: Sequence[str] | None = None,
            rows: int = 9, title: str | None = None):
    """Draw `model` (or a block) as boxes and arrows, with the tensor shapes measured on a forward pass.

    input_shape: the input's shape, e.g. (1, 3, 8, 32, 32) — the batch included — or a list of shapes (a block with
        several inputs), or the input tensor(s).
    depth: how far below a module a list of blocks may sit for the module to be opened (see `select_boxes`).
    boxes: the module names to draw instead of the automatic choice.
    rows: boxes per column; longer models continue in the next column.
    Returns the matplotlib Figure; its `graph` attribute holds the (boxes, edges) it drew."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    drawn, edges = diagram_graph(model, input_shape, depth=depth, boxes=boxes)
    n = len(drawn)
    ncols = (n + rows - 1) // rows
    bw, bh, gap, colw = 3.2, 0.62, 0.55, 5.6                    # inches: box, vertical gap, column pitch
    pos = {}
    for i in range(n):
        c, r = divmod(i, rows)
        pos[i] = (c * colw, -r * (bh + gap))
    height = min(n, rows) * (bh + gap)
    fig, ax = plt.subplots(figsize=(max(6.0, ncols * colw), height + 0.8))
    ax.set_xlim(-1.4, ncols * colw - 1.0)
    ax.set_ylim(-height, bh + 0.5)
    ax.axis("off")

    for i, b in enumerate(drawn):
        x, y = pos[i]
        io = b.name in ("input", "output")
        ax.add_patch(FancyBboxPatch((x, y), bw, bh, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    fc="#eeeeee" if io else "#dbe9f6", ec="0.3", lw=0.8))
        if io:
            shapes = b.out_shapes if b.name == "input" else b.in_shapes
            ax.text(x + bw / 2, y + bh / 2, f"{b.name} " + " + ".join(_fmt_shape(s) for s in shapes),
                    ha="center", va="center", fontsize=8)
            continue
        ax.text(x + bw / 2, y + bh * 0.68, b.name, ha="center", va="center", fontsize=8, family="monospace")
        sub = f"{b.kind} · {_fmt_params(b.params)} params"
        if b.contains:
            sub += "\n" + ", ".join(b.contains)
        ax.text(x + bw / 2, y + bh * 0.3, sub, ha="center", va="center", fontsize=6.5, color="0.25",
                linespacing=1.0)

    for e in edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        label = " + ".join(_fmt_shape(s) for s in e.shapes)
        same_col, next_row = x0 == x1, e.dst - e.src == 1
        if same_col and next_row:                                # straight down, label beside the arrow
            ax.annotate("", (x1 + bw / 2, y1 + bh), (x0 + bw / 2, y0), arrowprops=dict(arrowstyle="->", lw=0.9))
            ax.text(x0 + bw / 2 + 0.08, (y0 + y1 + bh) / 2, label, fontsize=7, va="center", color="C3")
        elif same_col:                                           # a skip: around the left side
            ax.annotate("", (x1, y1 + bh / 2), (x0, y0 + bh / 2),
                        arrowprops=dict(arrowstyle="->", lw=0.8, color="C2", connectionstyle="arc3,rad=0.35"))
            ax.text(x0 - 0.1, (y0 + y1 + bh) / 2, label, fontsize=6.5, va="center", ha="right", color="C2")
        else:                                                    # into another column
            ax.annotate("", (x1, y1 + bh / 2), (x0 + bw, y0 + bh / 2),
                        arrowprops=dict(arrowstyle="->", lw=0.8, color="C0" if next_row else "C2",
                                        connectionstyle="arc3,rad=-0.1"))
            ax.text((x0 + bw + x1) / 2, (y0 + y1 + bh) / 2 + 0.12, label, fontsize=7, ha="center",
                    color="C3" if next_row else "C2")
    ax.set_title(title or f"{type(model).__name__}: shapes measured on a forward pass", fontsize=10, loc="left")
    fig.tight_layout()
    fig.graph = (drawn, edges)
    return fig
