"""Convolution and pooling, drawn (chapter 2): a kernel sliding over an image step by step,
how kernel size, padding and stride set the output size, several input maps into one output
map, pooling windows, receptive fields.

Every function accepts ``fig=`` so that an animation (the static face of an explorer, see
:mod:`lenet_utils.widgets`) can redraw the same figure frame after frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch

from .. import style

__all__ = [
    "plot_conv_geometry",
    "plot_conv_step",
    "plot_multichannel",
    "plot_pooling",
    "plot_receptive_fields",
]

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
    from .. import handconv

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

    from .. import handconv

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
    from .. import handconv

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
    from .. import handconv

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
