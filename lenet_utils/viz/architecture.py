"""LeNet-5 layer by layer (chapter 3): the architecture as in the paper's Fig. 2, Table I
(which S2 maps feed which C3 map) and one example's activations through every layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

from .. import style

if TYPE_CHECKING:  # chapter 3's figures draw from a layer table
    from ..summary import LayerInfo, ModelSummary

__all__ = ["draw_connection_table", "draw_lenet_architecture", "plot_lenet_activations"]


def _op_label(layer: LayerInfo) -> str:
    """The operation that produced a layer, in Fig. 2's words."""
    head = layer.modules.split(" → ")
    main = next((m for m in head if m != "Flatten"), head[0])
    if layer.kind == "conv":
        note = "\n(Table I)" if "Table I" in layer.kernel else ""
        return f"convolution\n{layer.kernel.replace(', Table I', '')}{note}"
    if layer.kind == "pool":
        what = {"Subsampling": "subsampling", "MaxPool2d": "max-pool", "AvgPool2d": "avg-pool"}
        return f"{what.get(main.split('(')[0], 'pooling')}\n{layer.kernel.split(',')[0]}"
    if layer.kind == "rbf":
        return "Gaussian\nconnections"
    if layer.kind == "linear":
        return "full\nconnection"
    return main


def _draw_stage(
    ax: plt.Axes, idx: int, shape: tuple[int, ...], x: float, scale: float, step: float, image: torch.Tensor | None
) -> tuple[dict[str, float], float, float, bool]:
    """One stage of :func:`draw_lenet_architecture`: a stack of sheets (maps) or a column (vectors)."""
    from matplotlib.patches import Circle, Rectangle

    is_map = len(shape) == 4 and shape[2] > 1
    if is_map:
        c, h, w = shape[1], shape[2], shape[3]
        side_h, side_w = max(h * scale, 0.45), max(w * scale, 0.45)
        sheets = min(c, 8)
        for s in reversed(range(sheets)):
            face = "white" if s else "#f4f1e8"
            ax.add_patch(Rectangle((x + s * step, -side_h / 2 + s * step), side_w, side_h, facecolor=face,
                                   edgecolor="0.25", lw=0.8, zorder=10 - s))  # fmt: skip
        if idx == 0 and image is not None:
            img = image.detach().float().reshape(image.shape[-2:]).cpu().numpy()
            ax.imshow(img, cmap="gray_r", extent=(x, x + side_w, -side_h / 2, side_h / 2), zorder=11)
            frame = Rectangle((x, -side_h / 2), side_w, side_h, fill=False, edgecolor="0.25", lw=0.8, zorder=12)
            ax.add_patch(frame)
        width = side_w + (sheets - 1) * step
        height = side_h + (sheets - 1) * step
        geo = {"x0": x, "x1": x + side_w, "y0": -side_h / 2, "y1": side_h / 2, "top": -side_h / 2 + height,
               "right": x + width, "map": 1.0, "px": scale}  # fmt: skip
    else:
        n = int(torch.tensor(shape[1:]).prod())
        bar_w = 0.32
        bar_h = 0.5 + 0.02 * n if n > 12 else 0.3 * n
        if n <= 12:  # a column of units
            r = 0.12
            for u in range(n):
                cy = bar_h / 2 - (u + 0.5) * bar_h / n
                unit = Circle((x + bar_w / 2, cy), r, facecolor="#f4f1e8", edgecolor="0.25", lw=0.8, zorder=10)
                ax.add_patch(unit)
        else:
            ax.add_patch(Rectangle((x, -bar_h / 2), bar_w, bar_h, facecolor="#f4f1e8", edgecolor="0.25", lw=0.8,
                                   zorder=10))  # fmt: skip
            for u in range(1, min(n, 40)):
                yy = -bar_h / 2 + u * bar_h / min(n, 40)
                ax.plot([x, x + bar_w], [yy, yy], color="0.7", lw=0.3, zorder=11)
        width, height = bar_w, bar_h
        geo = {"x0": x, "x1": x + bar_w, "y0": -bar_h / 2, "y1": bar_h / 2, "top": bar_h / 2, "right": x + bar_w,
               "map": 0.0, "px": scale}  # fmt: skip
    return geo, width, height, is_map


def _draw_connection(
    ax: plt.Axes,
    prev: dict[str, float],
    geo: dict[str, float],
    layer: LayerInfo,
    x: float,
    scale: float,
    label_y: float,
) -> None:
    """The operation between two stages: the window a unit sees, or the dense fan of lines; its label."""
    from matplotlib.patches import Rectangle

    mid_x = (prev["right"] + x) / 2
    if prev["map"] and geo["map"]:
        k = int(layer.kernel.split("x")[0]) if layer.kernel[0].isdigit() else 1
        k_side = k * scale
        rx, ry = prev["x0"] + (prev["x1"] - prev["x0"]) * 0.3, prev["y0"] + (prev["y1"] - prev["y0"]) * 0.45
        ax.add_patch(Rectangle((rx, ry), k_side, k_side, fill=False, edgecolor="C3", lw=1.1, zorder=20))
        ux = geo["x0"] + (geo["x1"] - geo["x0"]) * 0.3
        uy = geo["y0"] + (geo["y1"] - geo["y0"]) * 0.45
        ax.add_patch(Rectangle((ux, uy), scale, scale, facecolor="C3", edgecolor="C3", lw=0.6, zorder=20))
        for cx, cy in ((rx + k_side, ry + k_side), (rx + k_side, ry)):
            ax.plot([cx, ux + scale / 2], [cy, uy + scale / 2], color="C3", lw=0.7, zorder=19)
    else:
        for fy in (0.0, 0.33, 0.66, 1.0):
            sy = prev["y0"] + fy * (prev["y1"] - prev["y0"])
            for ty in (geo["y0"], geo["y1"]):
                ax.plot([prev["right"] if not prev["map"] else prev["x1"], x], [sy, ty], color="C0", lw=0.35,
                        alpha=0.6, zorder=1)  # fmt: skip
    ax.text(mid_x, label_y, _op_label(layer), ha="center", va="top", fontsize=8.5,
            color="C3" if layer.kind in ("conv", "pool") else "C0")  # fmt: skip


def draw_lenet_architecture(
    summary: ModelSummary,
    *,
    image: torch.Tensor | None = None,
    title: str | None = None,
    scale: float = 0.1,
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """A Fig. 2-style drawing of a network, computed from its :class:`~lenet_utils.summary.ModelSummary`.

    Each layer with feature maps is a stack of sheets whose side is proportional to the
    map's side (``scale`` drawing units per pixel); vectors (C5, F6, the outputs) are
    columns. Above each layer: its name and ``maps@HxW``; below: its trainable parameters.
    Between layers: the operation, with the window a unit sees drawn on the layer before.
    ``image`` (``(H, W)`` or ``(1, 1, H, W)``) is drawn on the input sheet.

    Everything is read from ``summary``, so the drawing of d2l's LeNet shows 28x28 inputs
    and 2,416 parameters in C3 where the 1998 network shows 32x32 and 1,516.
    """

    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, 4.2))
    else:
        fig = ax.figure
    ax.set_axis_off()
    ax.set_aspect("equal")

    in_shape = summary.input_shape
    stages: list[tuple[str, str, tuple[int, ...], LayerInfo | None]] = [
        ("INPUT", f"{in_shape[2]}x{in_shape[3]}", in_shape, None)
    ]
    for layer in summary.layers:
        stages.append((layer.name, layer.maps, layer.output_shape, layer))

    step = 0.09  # offset between stacked sheets

    def half_height(shape: tuple[int, ...]) -> float:
        if len(shape) == 4 and shape[2] > 1:
            return max(shape[2] * scale, 0.45) / 2
        n = int(torch.tensor(shape[1:]).prod())
        return (0.5 + 0.02 * n if n > 12 else 0.3 * n) / 2

    label_y = -max(half_height(shape) for _, _, shape, _ in stages) - 1.1  # operations, under everything
    x = 0.0
    placed: list[dict[str, float]] = []  # geometry of each stage for the connections
    top_y, bottom_y = 0.0, 0.0
    for idx, (name, maps, shape, layer) in enumerate(stages):
        geo, width, _, is_map = _draw_stage(ax, idx, shape, x, scale, step, image)
        placed.append(geo)
        label = f"{name}\n{maps}" if name != "INPUT" else f"INPUT\n{maps}"
        ax.text(x + width / 2, geo["top"] + 0.2, label, ha="center", va="bottom", fontsize=10, fontweight="bold")
        if layer is not None:
            detail = f"{layer.params:,} params" if is_map else f"{layer.params:,}\nparams"
            if layer.fixed:
                detail = f"{layer.params:,} params\n+{layer.fixed:,} fixed"
            ax.text(x + width / 2, geo["y0"] - 0.2, detail, ha="center", va="top", fontsize=8.5, color="0.3", zorder=30,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # fmt: skip
        top_y = max(top_y, geo["top"] + 1.25)
        bottom_y = min(bottom_y, label_y - 0.9)

        if idx > 0 and layer is not None:  # the connection from the previous stage
            _draw_connection(ax, placed[idx - 1], geo, layer, x, scale, label_y)
        nxt = stages[idx + 1][2] if idx + 1 < len(stages) else shape
        to_vector = not (len(nxt) == 4 and nxt[2] > 1)
        # before a vector, room for two operation labels ("full connection") side by side
        x += width + (1.3 if idx == 0 else 2.3 if to_vector else 1.15)
    ax.set_xlim(-0.3, x)
    ax.set_ylim(bottom_y, top_y)
    if own_figure:  # size the figure to the drawing, 0.42 inch per unit
        fig.set_size_inches(0.42 * (x + 0.1), 0.42 * (top_y - bottom_y) + (0.3 if title else 0.0))
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def draw_connection_table(
    table: Sequence[Sequence[int]],
    *,
    in_channels: int = 6,
    kernel_size: int = 5,
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """Table I as a grid: rows are input (S2) maps, columns output (C3) maps, a filled cell
    where the input feeds the output. Columns are coloured by how many maps they combine
    and the parameters of each output map, ``maps x k x k + 1``, are written underneath.
    """
    from matplotlib.patches import Rectangle

    n_out = len(table)
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.36 * n_out + 1.2, 0.36 * in_channels + 1.5))
    else:
        fig = ax.figure
    palette = {3: "#4c72b0", 4: "#dd8452", 6: "#55a868"}
    for o, inputs in enumerate(table):
        color = palette.get(len(inputs), "#8172b3")
        if len(inputs) == 4 and not _cyclic_run(inputs, in_channels):
            color = "#c44e52"
        for i in range(in_channels):
            on = i in inputs
            ax.add_patch(Rectangle((o, i), 1, 1, facecolor=color if on else "white", edgecolor="0.6", lw=0.6))
            if on:
                ax.text(o + 0.5, i + 0.5, "X", ha="center", va="center", fontsize=9, color="white", fontweight="bold")
        ax.text(o + 0.5, in_channels + 0.55, f"{len(inputs) * kernel_size**2 + 1}", ha="center", va="center",
                fontsize=7.5, rotation=90)  # fmt: skip
    total = sum(len(t) * kernel_size**2 + 1 for t in table)
    ax.text(-0.3, in_channels + 0.55, "params", ha="right", va="center", fontsize=7.5)
    # brackets over runs of columns of the same kind
    kinds = [(len(t), _cyclic_run(t, in_channels)) for t in table]
    start = 0
    for o in range(1, n_out + 1):
        if o == n_out or kinds[o] != kinds[start]:
            size, run = kinds[start]
            what = f"all {size}" if size == in_channels else f"{size} {'adjacent' if run else 'non-adjacent'}"
            ax.plot([start + 0.1, o - 0.1], [-0.25, -0.25], color="0.3", lw=0.8)
            ax.text((start + o) / 2, -0.4, what, ha="center", va="bottom", fontsize=7.5)
            start = o
    ax.set_xlim(-1.6, n_out + 0.1)
    ax.set_ylim(in_channels + 1.1, -1.0)
    ax.set_xticks([])
    ax.set_yticks([i + 0.5 for i in range(in_channels)], [str(i) for i in range(in_channels)], fontsize=8)
    ax.tick_params(length=0, labelbottom=False, labeltop=False)
    for o in range(n_out):
        ax.text(o + 0.5, -0.05, str(o), ha="center", va="bottom", fontsize=7, color="0.35")
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xlabel(f"output (C3) map — parameters per map: maps x {kernel_size}x{kernel_size} + 1 bias; total {total:,}",
                  fontsize=8)  # fmt: skip
    ax.set_ylabel("input (S2) map", fontsize=8)
    ax.set_aspect("equal")
    return fig


def _cyclic_run(inputs: Sequence[int], n: int) -> bool:
    """True when ``inputs`` are consecutive maps, counting round the circle (5 is next to 0)."""
    s = set(inputs)
    return any(all((start + j) % n in s for j in range(len(s))) for start in range(n))


def plot_lenet_activations(
    features: Mapping[str, torch.Tensor],
    image: torch.Tensor,
    *,
    prototypes: torch.Tensor | None = None,
    title: str | None = None,
    limit: float | None = 1.7159,
) -> plt.Figure:
    """One example's way through LeNet-5: the input, every feature map, C5, F6 and the output.

    ``features`` is :meth:`LeNet5Paper.features` of a batch of one. F6's 84 units are drawn
    as a 12x7 picture, the layout of the RBF prototypes (Fig. 3), so that a trained F6 can
    be compared with the bitmap of its class; the output panel shows the 10 RBF penalties
    (the smallest wins). Maps use one red/blue scale for every layer, from -A to +A
    (``limit``, the range of the scaled tanh, Appendix A), so layers can be compared;
    ``limit=None`` scales each layer to its own largest magnitude instead (the title of each
    row then says by how much).
    """
    fig = plt.figure(figsize=(12, 6.2))
    pt = style.readable_points(13)  # the row labels stick out on the left: about 13 in shown
    gs = fig.add_gridspec(5, 17, height_ratios=[1, 1, 1, 1, 1.6], hspace=0.6, wspace=0.15)
    ax = fig.add_subplot(gs[0:2, 0:2])
    ax.imshow(image.detach().float().reshape(image.shape[-2:]).numpy(), cmap="gray_r")
    ax.set_title("input", fontsize=pt)
    ax.set_axis_off()

    def lim(name: str) -> float:
        return limit if limit is not None else float(features[name][0].detach().abs().max()) or 1.0

    def signed(ax: plt.Axes, m: torch.Tensor, name: str) -> None:
        ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-lim(name), vmax=lim(name))
        ax.set_xticks([])
        ax.set_yticks([])

    for row, name in enumerate(("C1", "S2", "C3", "S4")):
        maps = features[name][0].detach().float()  # (C, H, W)
        for c in range(maps.shape[0]):
            ax = fig.add_subplot(gs[row, 1 + c] if maps.shape[0] == 16 else gs[row, 4 + c])
            signed(ax, maps[c], name)
            if c == 0:
                scale_note = f"\n±{lim(name):.2g}" if limit is None else ""
                ax.set_ylabel(f"{name}\n{maps.shape[0]}@{maps.shape[1]}x{maps.shape[2]}{scale_note}", fontsize=pt,
                              rotation=0, ha="right", va="center")  # fmt: skip
    c5 = features["C5"][0].detach().float().reshape(10, 12)
    ax = fig.add_subplot(gs[4, 0:3])
    signed(ax, c5, "C5")
    ax.set_title("C5: 120 units (as 10x12)" + (f", ±{lim('C5'):.2g}" if limit is None else ""), fontsize=pt)
    f6 = features["F6"][0].detach().float().reshape(12, 7)
    ax = fig.add_subplot(gs[4, 4:6])
    signed(ax, f6, "F6")
    ax.set_title("F6: 84 units\n(as 12x7)" + (f", ±{lim('F6'):.2g}" if limit is None else ""), fontsize=pt)
    col = 7
    if prototypes is not None:
        out = features["output"][0].detach()
        best = int(out.argmin())
        ax = fig.add_subplot(gs[4, 8:10])
        ax.imshow(prototypes[best].float().reshape(12, 7).numpy(), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"prototype of {best}\n(nearest)", fontsize=pt)
        col = 11
    out = features["output"][0].detach().float()
    ax = fig.add_subplot(gs[4, col:17])
    colors = ["C3" if i == int(out.argmin()) else "C0" for i in range(len(out))]
    ax.bar(range(len(out)), out.numpy(), color=colors)
    ax.set_xticks(range(len(out)))
    ax.tick_params(labelsize=pt)
    ax.set_title("output: RBF penalty y_i per class (smallest wins)", fontsize=pt)
    if title:
        fig.suptitle(title, fontsize=pt + 2)
    return fig
