"""Figures shared by the chapters. Each function draws on matplotlib and returns the figure.

Chapters call these so that the live (ipywidgets) and static (HTML) faces of an explorer
draw the same picture. Importing this module makes IPython show figures through
:func:`lenet_utils.style.png`, which records each figure's smallest text for the site's test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib import ticker as mticker

from . import style

if TYPE_CHECKING:  # chapter 3's figures draw from a layer table
    from .summary import LayerInfo, ModelSummary

__all__ = [
    "draw_connection_table",
    "draw_lenet_architecture",
    "plot_conv_geometry",
    "plot_conv_step",
    "plot_lenet_activations",
    "plot_multichannel",
    "plot_pooling",
    "plot_receptive_fields",
    "show_images",
    "show_maps",
]


style.use()


def show_images(
    images: torch.Tensor,
    labels: Sequence[str] | None = None,
    *,
    ncols: int = 10,
    scale: float = 1.0,
    cmap: str = "gray_r",
    title: str | None = None,
) -> plt.Figure:
    """A grid of single-channel images with optional captions.

    Args:
        images: ``(N, H, W)`` or ``(N, 1, H, W)``, any dtype (uint8 or float).
        labels: one caption per image.
        ncols: images per row.
        scale: inches per image.
        cmap: ``"gray_r"`` draws ink dark on white, as on paper.
        title: figure title.
    """
    if images.dim() == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected single-channel images, got shape {tuple(images.shape)}")
        images = images[:, 0]
    if images.dim() != 3:
        raise ValueError(f"expected (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * scale, nrows * scale * (1.25 if labels else 1.0)), squeeze=False
    )
    points = style.readable_points(ncols * scale)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].detach().cpu().float().numpy(), cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=points)
    if title:
        fig.suptitle(title, fontsize=max(12.0, points + 2))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Convolution and pooling (chapter 2). Every function accepts ``fig=`` so that an animation
# (the static face of an explorer) can redraw the same figure frame after frame.

_WINDOW = "#e8710a"  # the current window / kernel
_PAD = "#d9d9d9"  # padding cells


def _fresh_figure(fig: plt.Figure | None, figsize: tuple[float, float]) -> plt.Figure:
    """A new figure, or ``fig`` cleared (animations redraw one figure per frame)."""
    if fig is None:
        return plt.figure(figsize=figsize)
    fig.clear()
    return fig


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


def _draw_cells(
    ax: plt.Axes,
    values: torch.Tensor,
    x0: float,
    y0: float,
    *,
    cmap: str = "Blues",
    vmin: float | None = None,
    vmax: float | None = None,
    shown: torch.Tensor | None = None,
    pad: int = 0,
    annotate: bool = True,
    fontsize: float = 9,
) -> None:
    """Draw a matrix as square cells with top-left corner at ``(x0, y0)`` (y grows downwards).

    ``shown`` (bool, same shape) hides cells that are not computed yet; the outer ``pad``
    rings are drawn grey as padding.
    """
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    v = values.detach().float()
    lo = float(v.min()) if vmin is None else vmin
    hi = float(v.max()) if vmax is None else vmax
    norm = Normalize(lo, hi if hi > lo else lo + 1)
    colormap = plt.get_cmap(cmap)
    h, w = v.shape
    for r in range(h):
        for c in range(w):
            is_pad = r < pad or c < pad or r >= h - pad or c >= w - pad
            visible = shown is None or bool(shown[r, c])
            if is_pad:
                face = _PAD
            elif visible:
                face = colormap(0.15 + 0.7 * norm(float(v[r, c])))
            else:
                face = "white"
            ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, facecolor=face, edgecolor="#555555", lw=0.6))
            if annotate and visible:
                dark = not is_pad and norm(float(v[r, c])) > 0.6
                ax.text(
                    x0 + c + 0.5, y0 + r + 0.5, _fmt(float(v[r, c])), ha="center", va="center",
                    fontsize=fontsize, color="white" if dark else ("#777777" if is_pad else "black"),
                )  # fmt: skip


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, **kw: object) -> None:
    from matplotlib.patches import Rectangle

    style = {"fill": False, "edgecolor": _WINDOW, "lw": 2.5} | kw
    ax.add_patch(Rectangle((x, y), w, h, **style))


def _conv_step_fonts(
    fig: plt.Figure, total_w: float, height: float, maps: tuple[torch.Tensor, ...], annotate: bool
) -> tuple[float, float, float, list[str], bool]:
    """Font sizes of :func:`plot_conv_step`, readable on the site (a wide figure is shown scaled
    down) where the cells leave room: a cell is ``cell_pt`` points wide, a character about 0.6
    of the font size. Returns the small and text sizes, the cells' size, the kernel's factors
    (``×w``) and whether they fit in the window's cells."""
    fig_w, fig_h = fig.get_size_inches()
    cell_pt = 72 * min(0.96 * fig_w / (total_w + 0.4), 0.72 * fig_h / (height + 1.5))
    small = max(7.0, style.readable_points(fig_w))
    text_pt = max(9.0, small)
    longest = max(len(_fmt(float(v))) for m in maps for v in m.flatten())
    fs = text_pt if 0.6 * longest * text_pt <= 0.8 * cell_pt else 9.0
    factors = [f"×{_fmt(float(v))}" for v in maps[1].flatten()]
    show_factors = annotate and 0.6 * max(map(len, factors)) * small <= 0.5 * cell_pt
    return small, text_pt, fs, factors, show_factors


def plot_conv_step(
    X: torch.Tensor,
    K: torch.Tensor,
    step: int | None = None,
    *,
    padding: int = 0,
    stride: int = 1,
    fig: plt.Figure | None = None,
    annotate: bool | None = None,
) -> plt.Figure:
    """One step of a kernel sliding over an image: input ★ kernel = output so far.

    Window ``step`` (row-major, see :func:`lenet_utils.handconv.conv_windows`) is outlined
    on the (zero-padded) input, the output cells computed up to it are filled in, and the
    sum behind the current cell is written underneath. ``step=None`` (or past the last
    window) shows the finished output. This is what one unit of C1 computes (paper §II.B),
    before the bias and the squashing function.

    Args:
        X: ``(H, W)`` input map. K: ``(kh, kw)`` kernel.
        step: index of the current window, 0-based.
        padding, stride: as in ``torch.nn.functional.conv2d``.
        fig: redraw into this figure (for animations) instead of a new one.
        annotate: write the values in the cells (default: when the input has at most 12 columns).
    """
    from . import handconv

    windows = handconv.conv_windows(tuple(X.shape), tuple(K.shape), padding, stride)  # type: ignore[arg-type]
    Y = handconv.corr2d(X, K, padding=padding, stride=stride)  # (H', W')
    Xp = torch.nn.functional.pad(X.float(), (padding,) * 4)  # (H + 2p, W + 2p)
    kh, kw = K.shape
    oh, ow = Y.shape
    annotate = Xp.shape[1] <= 12 if annotate is None else annotate
    done = len(windows) if step is None or step >= len(windows) else max(step, 0) + 1
    shown = torch.zeros(oh, ow, dtype=torch.bool)
    shown.view(-1)[:done] = True

    H, W = Xp.shape
    gap = 1.6
    xk = W + gap
    xo = xk + kw + gap
    total_w = xo + ow
    height = max(H, kh, oh)
    fig = _fresh_figure(fig, (min(1.0 + 0.42 * total_w, 12.0), 1.3 + 0.42 * height))
    ax = fig.add_axes((0.02, 0.18, 0.96, 0.72))
    fig_w = fig.get_size_inches()[0]
    small, text_pt, fs, factors, show_factors = _conv_step_fonts(fig, total_w, height, (Xp, K, Y), annotate)
    _draw_cells(ax, Xp, 0, 0, pad=padding, annotate=annotate, fontsize=fs, vmin=float(X.min()), vmax=float(X.max()))
    _draw_cells(ax, K.float(), xk, (height - kh) / 2, cmap="Oranges", annotate=annotate, fontsize=fs)
    _draw_cells(ax, Y, xo, (height - oh) / 2, cmap="Greens", shown=shown, annotate=annotate, fontsize=fs)
    ax.text(W + gap / 2, height / 2, "★", ha="center", va="center", fontsize=16)
    ax.text(xk + kw + gap / 2, height / 2, "=", ha="center", va="center", fontsize=16)
    for x, label in ((W / 2, f"input {tuple(X.shape)}" + (f", padding {padding}" if padding else "")),
                     (xk + kw / 2, f"kernel {kh}x{kw}"),
                     (xo + ow / 2, f"output {oh}x{ow}" + (f", stride {stride}" if stride > 1 else ""))):  # fmt: skip
        ax.text(x, -0.4, label, ha="center", va="bottom", fontsize=text_pt)
    if done <= len(windows) and (step is not None and step < len(windows)):
        i, j, r, c = windows[done - 1]
        _box(ax, c, r, kw, kh)
        if show_factors:
            for a in range(kh):
                for b in range(kw):
                    ax.text(c + b + 0.95, r + a + 0.95, factors[a * kw + b], ha="right", va="bottom",
                            fontsize=small, color=_WINDOW, fontweight="bold")  # fmt: skip
        _box(ax, xk, (height - kh) / 2, kw, kh)
        _box(ax, xo + j, (height - oh) / 2 + i, 1, 1)
        text = handconv.cell_arithmetic(X, K, i, j, padding=padding, stride=stride)
        if len(text) > 110:
            text = f"{kh * kw} products summed = {_fmt(float(Y[i, j]))}"
        caption = f"step {done}/{len(windows)}: output[{i}, {j}] = {text}"
    else:
        caption = f"done: {len(windows)} windows, output {oh}x{ow}"
    caption_pt = min(text_pt, 0.96 * fig_w * 72 / (0.6 * len(caption)))  # one line across the figure
    fig.text(0.5, 0.06, caption, ha="center", va="center", fontsize=caption_pt, family="monospace")
    ax.set_xlim(-0.2, total_w + 0.2)
    ax.set_ylim(height + 0.2, -1.3)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig


def plot_conv_geometry(
    n: int, k: int, padding: int = 0, stride: int = 1, *, fig: plt.Figure | None = None
) -> plt.Figure:
    """How kernel size, padding and stride set the output size, drawn.

    Left: the ``n x n`` input inside its padding (grey), each cell shaded by how many window
    positions cover it (white: never used — the rows and columns that the floor in
    ``floor((n + 2p - k) / s) + 1`` drops); the first window is outlined, the next one along
    the row dashed. Right: the output grid, one cell per window position.
    """
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from . import handconv

    o = handconv.output_size(n, k, padding, stride)
    N = n + 2 * padding
    cover = torch.zeros(N, N)
    for _, _, r, c in handconv.conv_windows((n, n), (k, k), padding, stride):
        cover[r : r + k, c : c + k] += 1
    gap = max(2.0, N * 0.12)
    xo = N + gap
    fig = _fresh_figure(fig, (8.0, 4.6))
    ax = fig.add_axes((0.02, 0.14, 0.96, 0.72))
    norm = Normalize(0, float(cover.max()))
    cmap = plt.get_cmap("Blues")
    lw = 0.6 if N <= 16 else 0.25
    for r in range(N):
        for c in range(N):
            is_pad = min(r, c) < padding or max(r, c) >= N - padding
            face = "white" if cover[r, c] == 0 else cmap(0.15 + 0.6 * norm(float(cover[r, c])))
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="#777777", lw=lw,
                                   hatch="///" if is_pad else None))  # fmt: skip
    _box(ax, padding, padding, n, n, edgecolor="black", lw=1.5)
    _box(ax, 0, 0, k, k)
    if o > 1:
        _box(ax, stride, 0, k, k, linestyle="--", lw=2.0)
    oy = (N - o) / 2
    for r in range(o):
        for c in range(o):
            ax.add_patch(Rectangle((xo + c, oy + r), 1, 1, facecolor="#a1d99b", edgecolor="#31a354", lw=lw))
    _box(ax, xo, oy, 1, 1)
    if o > 1:
        _box(ax, xo + 1, oy, 1, 1, linestyle="--", lw=2.0)
    ax.text(N / 2, -0.6, f"input {n}x{n}, padding {padding} → {N}x{N}", ha="center", va="bottom", fontsize=10)
    ax.text(xo + o / 2, oy - 0.6, f"output {o}x{o}", ha="center", va="bottom", fontsize=10)
    unused = int(((cover == 0) & (torch.arange(N)[:, None] >= padding)).sum()) if o else 0
    formula = f"⌊({n} + 2·{padding} − {k}) / {stride}⌋ + 1 = ⌊{N - k}/{stride}⌋ + 1 = {o}"
    note = f"kernel {k}x{k}, stride {stride}:   {formula}"
    fig.text(0.5, 0.93, note, ha="center", va="center", fontsize=11)
    legend = "shade: windows covering a cell · hatched: padding · orange: first window, dashed: next"
    if (cover == 0).any():
        legend += " · white: never seen"
    fig.text(0.5, 0.05, legend, ha="center", va="center", fontsize=8, color="#444444")
    del unused
    ax.set_xlim(-0.3, xo + max(o, 1) + 0.3)
    ax.set_ylim(N + 0.3, -2.0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig


def plot_multichannel(
    X: torch.Tensor,
    K: torch.Tensor,
    bias: float,
    *,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    activation_name: str = "f",
    input_names: Sequence[str] | None = None,
    annotate: bool | None = None,
    fig: plt.Figure | None = None,
) -> plt.Figure:
    """One output map from several input maps (paper §II.B, the S2 → C3 step), drawn.

    Row ``c``: input map ``X[c]`` ★ its own kernel ``K[c]`` = partial map. Right: the
    partial maps added, plus the bias, then (optionally) the activation. ``X`` is
    ``(C, H, W)``, ``K`` is ``(C, kh, kw)``.
    """
    from . import handconv

    C = X.shape[0]
    partial = [handconv.corr2d(x, k) for x, k in zip(X, K, strict=True)]
    total = sum(partial) + bias
    annotate = X.shape[-1] <= 6 if annotate is None else annotate
    names = list(input_names) if input_names is not None else [f"input map {c}" for c in range(C)]
    ncols = 5 if activation is not None else 4
    fig = _fresh_figure(fig, (2.0 * ncols, 1.7 * C + 0.5))
    gs = fig.add_gridspec(C, ncols, wspace=0.35, hspace=0.45)

    def show(ax: plt.Axes, m: torch.Tensor, title: str, cmap: str) -> None:
        m = m.detach().float()
        lim = float(m.abs().max()) or 1.0
        ax.imshow(m.numpy(), cmap=cmap, vmin=-lim if cmap == "RdBu_r" else min(0.0, float(m.min())), vmax=lim)
        if annotate:
            for (r, c), v in zip(
                [(r, c) for r in range(m.shape[0]) for c in range(m.shape[1])], m.flatten().tolist(), strict=True
            ):
                ax.text(c, r, _fmt(round(v, 2)), ha="center", va="center", fontsize=8,
                        color="white" if abs(v) > 0.6 * lim else "black")  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    for c in range(C):
        signed = bool((X[c] < 0).any())
        show(fig.add_subplot(gs[c, 0]), X[c], names[c], "RdBu_r" if signed else ("Blues" if annotate else "gray_r"))
        show(fig.add_subplot(gs[c, 1]), K[c], f"★ kernel {c}", "RdBu_r")
        show(fig.add_subplot(gs[c, 2]), partial[c], f"= partial {c}", "RdBu_r")
    show(fig.add_subplot(gs[:, 3]), total, f"sum + bias ({_fmt(round(float(bias), 2))})", "RdBu_r")
    if activation is not None:
        show(fig.add_subplot(gs[:, 4]), activation(total), f"{activation_name}(sum + bias)", "RdBu_r")
    return fig


def plot_pooling(
    X: torch.Tensor,
    size: int = 2,
    stride: int | None = None,
    *,
    modes: Sequence[str] = ("max", "avg"),
    fig: plt.Figure | None = None,
) -> plt.Figure:
    """Pooling windows on a small map and the pooled outputs, one panel per mode.

    Each window gets a colour, used again for its output cell; with overlapping windows
    (``stride < size``) the first windows of the top row are outlined. For ``max`` the
    winning input cell is underlined in its window's colour.
    """
    from . import handconv

    stride = size if stride is None else stride
    windows = handconv.conv_windows(tuple(X.shape), (size, size), 0, stride)  # type: ignore[arg-type]
    outs = {m: handconv.pool2d(X, size, stride=stride, mode=m) for m in modes}
    colors = plt.get_cmap("tab10").colors
    H, W = X.shape
    oh, ow = next(iter(outs.values())).shape
    gap = 1.5
    fig = _fresh_figure(fig, (1.2 + 0.45 * (W + len(modes) * (ow + gap)), 1.0 + 0.45 * H))
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.86))
    _draw_cells(ax, X.float(), 0, 0, cmap="Greys", vmin=float(X.min()) - 0.5 * float(X.max() - X.min()) - 1)
    overlapping = stride < size
    for idx, (i, _j, r, c) in enumerate(windows):
        if overlapping and i > 0:
            continue
        inset = 0.06 * (idx % 3) if overlapping else 0.06
        _box(ax, c + inset, r + inset, size - 2 * inset, size - 2 * inset, edgecolor=colors[idx % 10], lw=2.2)
        if "max" in modes:
            win = X[r : r + size, c : c + size]
            a = int(win.flatten().argmax())
            ax.plot([c + a % size + 0.2, c + a % size + 0.8], [r + a // size + 0.85] * 2, color=colors[idx % 10], lw=2)
    ax.text(W / 2, -0.3, f"input {H}x{W}, window {size}x{size}, stride {stride}", ha="center", va="bottom", fontsize=9)
    x = W + gap
    for m, Y in outs.items():
        y0 = (H - oh) / 2
        _draw_cells(ax, Y, x, y0, cmap="Greys", vmin=float(Y.min()) - 0.5 * float(Y.max() - Y.min()) - 1)
        for idx, (i, j, _, _) in enumerate(windows):
            if overlapping and i > 0:
                continue
            _box(ax, x + j + 0.06, y0 + i + 0.06, 0.88, 0.88, edgecolor=colors[idx % 10], lw=2.2)
        ax.text(x + ow / 2, y0 - 0.3, f"{m} pool {oh}x{ow}", ha="center", va="bottom", fontsize=9)
        x += ow + gap
    ax.set_xlim(-0.2, x - gap + 0.2)
    ax.set_ylim(H + 0.2, -1.0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig


def plot_receptive_fields(
    image: torch.Tensor,
    boxes: Sequence[tuple[str, tuple[int, int, int, int]]],
    *,
    fig: plt.Figure | None = None,
) -> plt.Figure:
    """Nested rectangles on an image: the input pixels that one unit of each layer sees.

    ``boxes`` is ``[(label, (top, left, height, width)), ...]`` in input pixels, e.g.
    measured with :func:`lenet_utils.handconv.gradient_footprint`. Labels go in a legend.
    """
    from matplotlib.patches import Rectangle

    H, W = image.shape[-2:]
    fig = _fresh_figure(fig, (6.4, 4.4))
    ax = fig.add_axes((0.06, 0.06, 0.6, 0.88))
    ax.imshow(image.reshape(H, W).float().numpy(), cmap="gray_r", extent=(0, W, H, 0))
    colors = plt.get_cmap("tab10").colors
    handles = []
    for idx, (label, (top, left, h, w)) in enumerate(boxes):
        col = colors(idx % 10) if callable(colors) else colors[idx % 10]
        inset = 0.15 if h >= H or w >= W else 0.12 * (len(boxes) - 1 - idx)  # nested boxes never share an edge
        patch = Rectangle((left + inset, top + inset), w - 2 * inset, h - 2 * inset, fill=False, edgecolor=col,
                          lw=2.6, label=label)  # fmt: skip
        ax.add_patch(patch)
        handles.append(patch)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.03, 0.5), fontsize=9, frameon=False)
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    ax.set_xticks(range(0, W + 1, 4))
    ax.set_yticks(range(0, H + 1, 4))
    ax.tick_params(labelsize=7)
    return fig


def show_maps(
    maps: Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    scale: float = 2.0,
    signed: Sequence[bool] | None = None,
) -> plt.Figure:
    """Feature maps side by side. Signed maps use a red/blue scale centred on zero
    (red positive, blue negative); unsigned ones are drawn ink-on-paper."""
    n = len(maps)
    ncols = n if ncols is None else ncols
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15), squeeze=False)
    points = max(9.0, style.readable_points(ncols * scale))
    for idx, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if idx >= n:
            continue
        m = maps[idx].detach().float().reshape(maps[idx].shape[-2:])
        is_signed = bool((m < 0).any()) if signed is None else signed[idx]
        if is_signed:
            lim = float(m.abs().max()) or 1.0
            ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            ax.imshow(m.numpy(), cmap="gray_r")
        if titles is not None:
            ax.set_title(titles[idx], fontsize=points)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# LeNet-5 layer by layer (chapter 3): the architecture, Table I, the activations


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


# --------------------------------------------------------------------------------------------
# Ablation results (chapter 6: rows from lenet_utils.sweep.read_results)

__all__ += ["ablation_points", "plot_ablation", "plot_effects", "plot_epoch_curves"]


def ablation_points(
    rows: Sequence[Mapping[str, object]], x: str, metric: str = "final_test_acc"
) -> dict[object, list[float]]:
    """Group the runs of a sweep by the value of hyperparameter ``x``: ``{value: [metric per run]}``.

    ``metric`` is a column (``final_test_acc``, ``final_train_loss``, ...) or ``"test_acc@E"``
    for the test accuracy after epoch ``E`` (runs shorter than ``E`` are skipped). Values are
    returned in sorted order.
    """
    out: dict[object, list[float]] = {}
    for r in rows:
        if "@" in metric:
            series, epoch = metric.split("@")
            values = r[series]
            if len(values) < int(epoch):  # type: ignore[arg-type]
                continue
            v = values[int(epoch) - 1]  # type: ignore[index]
        else:
            v = r[metric]
        out.setdefault(r[x], []).append(float(v))  # type: ignore[arg-type]
    return dict(sorted(out.items(), key=lambda kv: (isinstance(kv[0], str), kv[0])))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    import math

    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    m = sum(finite) / len(finite)
    s = (sum((v - m) ** 2 for v in finite) / (len(finite) - 1)) ** 0.5 if len(finite) > 1 else math.nan
    return m, s


def _results_text_points(fig: plt.Figure) -> float:
    """The smallest font size (points) the results figures use: readable on the site at
    ``fig``'s width, with a little to spare (7 pt up to the text column's width, more for a
    wider figure)."""
    return max(7.0, style.readable_points(fig.get_figwidth(), fig.dpi) + 0.3)


def _seed_dots(
    ax: plt.Axes,
    points: Mapping[object, list[float]],
    keys: Sequence[object],
    pos: Mapping[object, float],
    *,
    categorical: bool,
    log_x: bool,
) -> tuple[list[float], list[float], list[float]]:
    """Every run of :func:`plot_ablation` as a grey dot, spread a little sideways; returns the
    points' positions, means and standard deviations (0 for a single run)."""
    xs, means, stds = [], [], []
    for k in keys:
        vals = points.get(k, [])
        if not vals:
            continue
        p = pos[k]
        n = len(vals)
        if categorical:
            offs = [(i - (n - 1) / 2) * 0.25 / max(n - 1, 1) for i in range(n)]
            ax.scatter([p + o for o in offs], vals, s=9, color="0.55", alpha=0.7, zorder=2, linewidths=0)
        else:
            fac = [(1.0 + (i - (n - 1) / 2) * 0.03 / max(n - 1, 1)) for i in range(n)]
            span = (max(pos.values()) - min(pos.values())) or 1.0
            xx = [p * f for f in fac] if log_x else [p + (f - 1.0) * span for f in fac]
            ax.scatter(xx, vals, s=9, color="0.55", alpha=0.7, zorder=2, linewidths=0)
        m, s = _mean_std(vals)
        xs.append(p)
        means.append(m)
        stds.append(0.0 if s != s else s)
    return xs, means, stds


def plot_ablation(
    rows: Sequence[Mapping[str, object]],
    x: str,
    *,
    metric: str = "final_test_acc",
    reference: Mapping[object, float] | None = None,
    reference_label: str = "Li's report (mean of 10 runs)",
    ax: plt.Axes | None = None,
    log_x: bool = False,
    order: Sequence[object] | None = None,
    planned: Sequence[object] = (),
    label: str = "ours: mean ± std",
    color: str = "C0",
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> plt.Figure:
    """One ablation: every run as a dot, the mean ± one standard deviation per point, and the
    numbers a reference reported (red crosses), with the number of runs under each point.

    Numeric ``x`` values are placed on a (log) axis and joined; string values (``"relu"``) or
    an explicit ``order`` are placed side by side. Seeds are spread a little sideways so that
    equal values stay visible. ``planned`` values get a tick and ``n=0`` even before any run
    of them has finished (a sweep still running).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    points = ablation_points(rows, x, metric)
    keys = list(order) if order is not None else list(points)
    if order is None:
        keys += [k for k in (*(reference or {}), *planned) if k not in keys]
        if not any(isinstance(k, str) for k in keys):
            keys = sorted(keys)  # type: ignore[type-var]
    categorical = order is not None or any(isinstance(k, str) for k in keys)
    # many values on a narrow axes: tick labels and counts turn on their side
    crowded = len(keys) > 10 and ax.get_position().width * fig.get_figwidth() / len(keys) < 0.28
    pos = {k: (i if categorical else float(k)) for i, k in enumerate(keys)}  # type: ignore[arg-type]
    xs, means, stds = _seed_dots(ax, points, keys, pos, categorical=categorical, log_x=log_x)
    if xs:
        ax.errorbar(
            xs, means, yerr=stds, fmt="o" if categorical else "o-", color=color, capsize=3, ms=4, lw=1.4,
            label=label, zorder=3,
        )  # fmt: skip
    if reference:
        rx = [pos[k] for k in reference if k in pos]
        ry = [v for k, v in reference.items() if k in pos]
        ax.scatter(rx, ry, marker="x", s=40, color="C3", zorder=4, label=reference_label)
    if log_x and not categorical:
        ax.set_xscale("log", base=2)
    if categorical:
        ax.set_xticks(list(range(len(keys))), [str(k) for k in keys])
        ax.set_xlim(-0.6, len(keys) - 0.4)
    elif keys:
        ax.set_xticks([pos[k] for k in keys], [f"{k:g}" for k in keys], fontsize=pt, rotation=90 if crowded else 0)  # type: ignore[str-format]
    counts = {k: len(points.get(k, [])) for k in keys}
    level = getattr(ax, "_ablation_series", 0)  # a second series on the same axes: its counts above
    ax._ablation_series = level + 1  # type: ignore[attr-defined]
    for k in keys:
        ax.annotate(
            f"n={counts[k]}", (pos[k], 0), xycoords=("data", "axes fraction"),
            xytext=(0, 2 + (2.5 if crowded else 1.3) * pt * level), textcoords="offset points", ha="center",
            va="bottom", fontsize=pt, rotation=90 if crowded else 0,
            color=color if level else "0.35",
        )  # fmt: skip
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or metric.replace("final_", "").replace("_", " "))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=pt, loc="best")
    return fig


def plot_epoch_curves(
    rows: Sequence[Mapping[str, object]],
    *,
    metric: str = "test_acc",
    reference: Mapping[int, float] | None = None,
    reference_label: str = "Li's report",
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Figure:
    """Per-epoch curves of a sweep's runs: each run thin and grey, mean ± std as a band."""
    import math

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    series = [list(r[metric]) for r in rows]  # type: ignore[call-overload]
    for s in series:
        ax.plot(range(1, len(s) + 1), s, color="0.6", lw=0.6, alpha=0.7)
    if series:
        longest = max(len(s) for s in series)
        ms = [_mean_std([s[e] for s in series if len(s) > e]) for e in range(longest)]
        ep = list(range(1, longest + 1))
        m = [a for a, _ in ms]
        sd = [0.0 if math.isnan(b) else b for _, b in ms]
        ax.plot(ep, m, color="C0", lw=1.6, label=f"ours: mean of {len(series)} runs")
        ax.fill_between(ep, [a - b for a, b in zip(m, sd, strict=True)], [a + b for a, b in zip(m, sd, strict=True)],
                        color="C0", alpha=0.2, label="± 1 std")  # fmt: skip
    if reference:
        ax.scatter(list(reference), list(reference.values()), marker="x", s=40, color="C3", zorder=4,
                   label=reference_label)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True, steps=[2, 5, 10]))  # whole epochs
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=pt, loc="lower right")
    return fig


def plot_effects(
    effects: Mapping[str, Mapping[str, float]],
    *,
    reference_label: str = "Li's report",
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str = "change in test accuracy against the defaults (points)",
) -> plt.Figure:
    """What each change does: one row per change, its effect as a dot with an interval.

    ``effects`` maps a label (``"batch 16"``) to ``{"effect": d, "low": a, "high": b}`` and,
    optionally, ``"reference": r`` (what a report found for the same change, a red cross;
    NaN or absent for none). Values are accuracy differences (fractions) and are drawn in
    percentage points; rows are drawn top to bottom in the mapping's order. A row whose
    interval misses zero is drawn in colour, one that contains it in grey.
    """
    import math

    labels = list(effects)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(labels) + 1.2))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    crossed = False
    for i, label in enumerate(labels):
        e = effects[label]
        y = len(labels) - 1 - i
        clear = e["low"] > 0 or e["high"] < 0
        color = ("C2" if e["effect"] > 0 else "C1") if clear else "0.5"
        ax.plot([100 * e["low"], 100 * e["high"]], [y, y], color=color, lw=2, solid_capstyle="butt")
        ax.plot([100 * e["effect"]], [y], "o", color=color, ms=5, zorder=3)
        ref = e.get("reference", math.nan)
        if ref == ref:  # not NaN
            ax.scatter([100 * ref], [y], marker="x", s=36, color="C3", zorder=4,
                       label=None if crossed else reference_label)  # fmt: skip
            crossed = True
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(labels)), labels[::-1], fontsize=max(8.0, pt))
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if crossed:
        ax.legend(fontsize=pt, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------
# LeNet-5 as published (chapter 5): the RBF prototypes, training curves against the paper.

__all__ += ["plot_paper_curves", "show_rbf_prototypes"]


def show_rbf_prototypes(prototypes: torch.Tensor, *, scale: float = 0.9, title: str | None = None) -> plt.Figure:
    """The ten 7x12 bitmaps of the RBF output layer (paper Fig. 3), +1 drawn as ink.

    Args:
        prototypes: ``(10, 84)`` of ±1, F6 unit ``k`` at row ``k // 7``, column ``k % 7``.
    """
    if prototypes.dim() != 2 or prototypes.shape[1] != 84:
        raise ValueError(f"expected (classes, 84) prototypes, got {tuple(prototypes.shape)}")
    n = prototypes.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(n * scale * 0.62, scale * 1.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.imshow(prototypes[i].detach().cpu().view(12, 7).numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(i), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_paper_curves(
    logs: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    reference: Mapping[str, tuple[float, float]] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    test_label: str = "test",
    train_label: str = "train",
    xlabel: str = "pass over the 60,000 training images",
    legend: str = "best",
) -> plt.Figure:
    """Train and test error (%) per pass for each run, with the paper's numbers as crosses.

    The error axis is logarithmic with its ticks in percent (0.5%, 1%, 2%, ...); the pass axis
    has ticks at whole passes only.

    Args:
        logs: run name -> rows with ``pass``, ``train_error``, ``test_error`` (fractions).
        reference: label -> (pass, error in %) points from the paper, e.g.
            ``{"paper test 0.95%": (20, 0.95)}``.
        test_label, train_label: what the two error columns measure (e.g. ``"validation"``
            for a run whose ``test_error`` column holds held-out training images).
        xlabel: the pass axis's label.
        legend: a matplotlib legend location, ``"below"`` (under the axes, off the data) or
            ``"none"``.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 3.8))
    else:
        fig = ax.figure
    last = 1
    for i, (name, rows) in enumerate(logs.items()):
        passes = [r["pass"] for r in rows]
        last = max(last, *passes) if passes else last
        ax.plot(passes, [100 * r["test_error"] for r in rows], color=f"C{i}", lw=1.6, marker="o", ms=3,
                label=f"{name}: {test_label}")  # fmt: skip
        ax.plot(passes, [100 * r["train_error"] for r in rows], color=f"C{i}", lw=1.0, ls="--",
                label=f"{name}: {train_label}")  # fmt: skip
    for k, (label, (x, y)) in enumerate((reference or {}).items()):
        ax.scatter([x], [y], marker="x", s=60, color=f"C{3 + k}", zorder=5, label=label)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlim(0.5, last + 0.5)
    ax.set_xticks([1, *range(5, last + 1, 5)] if last >= 5 else list(range(1, last + 1)))
    ax.set_xticks(range(1, last + 1), minor=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("error")
    ax.grid(True, which="major", alpha=0.3)
    # legend and title readable on the site whatever the figure's width (8 pt up to ~8.5 in)
    points = max(8.0, style.readable_points(fig.get_figwidth()))
    if legend == "below":
        ax.legend(fontsize=points, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    elif legend != "none":
        ax.legend(fontsize=points, ncol=2, loc=legend)
    if title:
        ax.set_title(title, fontsize=max(10.0, points))
    return fig


# --------------------------------------------------------------------------------------------
# Training runs side by side (chapter 4, lenet_utils.train)


def plot_runs(
    runs: Mapping[str, object],
    metrics: Sequence[str] = ("train_loss", "test_acc"),
    *,
    references: Mapping[str, Mapping[str, float]] | None = None,
    ylims: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    width: float | None = None,
) -> plt.Figure:
    """One panel per metric, one line per run: per-epoch curves of :class:`lenet_utils.train.History`.

    Args:
        runs: ``{label: history}``; a history is anything with the metric as a list attribute
            (a ``History``) or key (a dict or DataFrame of columns).
        metrics: ``train_loss``, ``train_acc``, ``test_acc``, ``val_acc`` or an extra column.
        references: ``{metric: {label: value}}`` drawn as dotted horizontal lines (e.g. a
            seed's reported accuracy).
        ylims: ``{metric: (low, high)}``.
        width: inches per panel; by default the panels share the site's text column (6.9 in
            in all, at most 4.2 in each). The legend goes under the panels.
    """

    def column(h: object, name: str) -> list[float]:
        if isinstance(h, Mapping) or hasattr(h, "columns"):
            return [float(v) for v in h[name]]  # type: ignore[index]
        return [float(v) for v in getattr(h, name)]

    names = {"train_loss": "train loss", "train_acc": "train accuracy", "test_acc": "test accuracy",
             "val_acc": "validation accuracy"}  # fmt: skip
    width = min(4.2, 6.9 / len(metrics)) if width is None else width
    entries = len(runs) + len({label for refs in (references or {}).values() for label in refs})
    height = 2.7 + 0.2 * -(-entries // 2)  # the panels, and the legend's rows under them
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(width * len(metrics), height), squeeze=False, layout="constrained"
    )
    pt = _results_text_points(fig)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, h) in enumerate(runs.items()):
            ys = column(h, metric)
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=2.5, lw=1.3, color=f"C{i}", label=label)
        for j, (ref_label, value) in enumerate((references or {}).get(metric, {}).items()):
            ax.axhline(value, ls=":", lw=1.2, color=f"C{7 + j % 3}", label=ref_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(names.get(metric, metric))
        if ylims and metric in ylims:
            ax.set_ylim(*ylims[metric])
        ax.grid(True, alpha=0.3)
    legend: dict[str, object] = {}  # every run and reference once, in the order drawn
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=2, fontsize=max(8.0, pt))
    if title:
        fig.suptitle(title, fontsize=max(10.0, pt + 2))
    return fig


__all__ += ["plot_runs"]
