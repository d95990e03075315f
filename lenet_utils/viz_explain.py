"""Figures for looking inside trained networks (the maps of :mod:`lenet_utils.explain`).

Every function returns the figure (or draws into ``fig=``/``ax=``) so that the explorer's
live and static faces (:mod:`lenet_utils.widgets`) call the same drawing code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from . import style
from .explain import frequency_response

__all__ = [
    "plot_attribution_grid",
    "plot_confusion",
    "plot_explanation",
    "plot_f6_prototypes",
    "plot_kernels",
    "plot_sanity_curves",
]

_HEAT = "RdBu_r"  # signed maps: red = evidence for the class, blue = against, white = none

#: The widest a figure of images is drawn, in inches, so it is shown at full size.
MAX_WIDTH = style.COLUMN_INCHES


def _points(fig: plt.Figure, size: float) -> float:
    """``size`` points, grown as :func:`lenet_utils.style.scaled_points` says for ``fig``."""
    return style.scaled_points(size, fig.get_figwidth())


def _image(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().cpu().reshape(t.shape[-2:])


def _heat(ax: plt.Axes, m: torch.Tensor, image: torch.Tensor | None = None) -> None:
    """A signed map on a symmetric red/blue scale, its own largest magnitude at full colour;
    the input's ink drawn over it as a thin outline so the reader can tell where the map points."""
    m = _image(m)
    lim = float(m.abs().max()) or 1.0
    ax.imshow(m.numpy(), cmap=_HEAT, vmin=-lim, vmax=lim)
    if image is not None:
        img = _image(image)
        lo, hi = float(img.min()), float(img.max())
        if hi > lo:
            ax.contour(img.numpy(), levels=[lo + 0.5 * (hi - lo)], colors="k", linewidths=0.5, alpha=0.6)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_kernels(kernels: Mapping[str, torch.Tensor], *, size: int = 32, scale: float = 0.95) -> plt.Figure:
    """First-layer kernels and the magnitude of their frequency response, two rows per network.

    ``kernels``: ``{name: (N, k, k)}``. Kernels are drawn red/blue around zero; spectra
    (:func:`lenet_utils.explain.frequency_response`) with the zero frequency in the middle,
    horizontal frequencies along x and vertical ones along y, each on its own scale.
    """
    n = max(len(k) for k in kernels.values())
    fig, axes = plt.subplots(2 * len(kernels), n, figsize=(n * scale, 2 * len(kernels) * scale * 1.05), squeeze=False)
    for r, (name, ks) in enumerate(kernels.items()):
        spectra = frequency_response(ks, size)
        for c in range(n):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            for ax in (top, bottom):
                ax.set_xticks([])
                ax.set_yticks([])
            if c >= len(ks):
                top.set_axis_off()
                bottom.set_axis_off()
                continue
            _heat(top, ks[c])
            bottom.imshow(spectra[c].numpy(), cmap="magma")
        axes[2 * r, 0].set_ylabel(f"{name}\nkernels", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel("|spectrum|", fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion(
    cm: torch.Tensor, labels: Sequence[str], *, ax: plt.Axes | None = None, title: str | None = None
) -> plt.Figure:
    """A confusion matrix (rows = true class, columns = predicted), coloured by the share of each
    row, every non-zero count written in its cell."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.6))
    else:
        fig = ax.figure
    share = cm.double() / cm.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(share.sqrt().numpy(), cmap="Blues", vmin=0, vmax=1)  # sqrt: small confusions stay visible
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                dark = share[i, j] > 0.5
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=_points(fig, 7),
                        color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=_points(fig, 7.5), ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=_points(fig, 7.5))
    ax.set_xlabel("predicted", fontsize=_points(fig, 8.5))
    ax.set_ylabel("true", fontsize=_points(fig, 8.5))
    if title:
        ax.set_title(title, fontsize=_points(fig, 9.5))
    return fig


def plot_f6_prototypes(
    f6: torch.Tensor, prototypes: torch.Tensor, penalties: torch.Tensor, *, scale: float = 0.8
) -> plt.Figure:
    """For each example: F6's 84 outputs as a 7-wide, 12-high picture (the layout of Fig. 3),
    the prototype it is nearest to, and the second nearest, with their penalties."""
    n = len(f6)
    fig, axes = plt.subplots(3, n, figsize=(n * scale, 3 * scale * 1.5), squeeze=False)
    order = penalties.argsort(dim=1)  # (n, 10): nearest first
    for i in range(n):
        first, second = int(order[i, 0]), int(order[i, 1])
        panels = [
            (f6[i], "F6", None),
            (prototypes[first], f"{first}: {float(penalties[i, first]):.0f}", "C3"),
            (prototypes[second], f"{second}: {float(penalties[i, second]):.0f}", "0.3"),
        ]
        for row, (pic, text, colour) in enumerate(panels):
            ax = axes[row, i]
            ax.imshow(pic.detach().float().view(12, 7).numpy(), cmap="gray_r", vmin=-1.2, vmax=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(text, fontsize=8, color=colour or "black")
    axes[0, 0].set_ylabel("F6", fontsize=8)
    axes[1, 0].set_ylabel("nearest", fontsize=8)
    axes[2, 0].set_ylabel("second", fontsize=8)
    fig.tight_layout()
    return fig


def plot_attribution_grid(
    images: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    *,
    row_titles: Sequence[str] | None = None,
    scale: float = 1.25,
    title: str | None = None,
    outline: bool = True,
) -> plt.Figure:
    """One row per image: the input, then one map per method (``maps``: ``{method: (B, H, W)}``).

    Each map is scaled to its own largest magnitude (attributions of different methods have
    different units); red = raises the explained score, blue = lowers it. ``outline`` draws the
    input's ink over every map.
    """
    B = len(images)
    cols = 1 + len(maps)
    scale = min(scale, MAX_WIDTH / cols)  # no wider than the site's column: the labels stay readable
    fig, axes = plt.subplots(B, cols, figsize=(cols * scale, B * scale * 1.12), squeeze=False)
    for i in range(B):
        ax = axes[i, 0]
        ax.imshow(_image(images[i]).numpy(), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        if row_titles is not None:
            ax.set_ylabel(row_titles[i], fontsize=7, rotation=0, ha="right", va="center")
        for j, (name, m) in enumerate(maps.items(), start=1):
            _heat(axes[i, j], m[i], images[i] if outline else None)
            if i == 0:  # "grad_cam C3, predicted" -> two lines, so neighbouring titles do not run together
                parts = name.replace("_", " ").split(", ")
                axes[i, j].set_title(",\n".join(textwrap.fill(p, 16) for p in parts), fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_sanity_curves(
    stages: Sequence[str],
    correlations: Mapping[str, torch.Tensor],
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    legend: bool = True,
) -> plt.Figure:
    """Rank correlation between each method's maps before and after randomisation.

    ``stages``: x tick labels (``"trained"``, then the layers re-drawn so far);
    ``correlations``: ``{method: (len(stages), B)}``, one value per image; drawn as the mean
    over images with a band from the smallest to the largest. ``legend=False`` leaves the
    legend out (for one legend shared by several panels).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
    else:
        fig = ax.figure
    x = list(range(len(stages)))
    for k, (name, r) in enumerate(correlations.items()):
        r = r.double()
        ax.plot(x, r.nanmean(1).numpy(), "o-", color=f"C{k}", label=name.replace("_", " "), ms=4)
        ax.fill_between(x, r.nan_to_num(1.0).min(1).values.numpy(), r.nan_to_num(-1.0).max(1).values.numpy(),
                        color=f"C{k}", alpha=0.12)  # fmt: skip
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(x, list(stages), fontsize=_points(fig, 8), rotation=30, ha="right")
    ax.tick_params(axis="y", labelsize=_points(fig, 8))
    ax.set_ylabel("rank correlation with\nthe trained network's map", fontsize=_points(fig, 8))
    ax.set_ylim(-0.5, 1.05)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=_points(fig, 7.5), loc="upper right")
    if title:
        ax.set_title(title, fontsize=_points(fig, 9))
    fig.tight_layout()
    return fig


def plot_explanation(
    image: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    scores: torch.Tensor,
    *,
    labels: Sequence[str],
    true: int,
    target: int,
    score_name: str = "score",
    fig: plt.Figure | None = None,
) -> plt.Figure:
    """The explorer's panel: the input, one heat map per entry of ``maps`` (each ``(H, W)``, for
    class ``target``), and the network's ten scores with the true class and the target marked.

    ``scores``: larger = more evidence (negated penalties for LeNet-5's RBF output; say so in
    ``score_name``). ``fig``: redraw into this figure (an animation's frames), else a new one.
    """
    panels = 1 + len(maps)  # the input and the maps; the scores beside them
    rows = 1 if panels <= 3 else 2  # many maps: two rows, so the figure fits the site's column
    per_row = -(-panels // rows)
    bars = 2.2 if rows == 1 else 1.6  # the scores' panel, in widths of a map
    if fig is None:
        fig = plt.figure(figsize=(min(MAX_WIDTH, 1.7 * (per_row + 1) + 1.6), 2.3 + 1.9 * (rows - 1)))
    fig.clf()
    margins = {} if rows == 1 else {"left": 0.03, "right": 0.97, "bottom": 0.07, "top": 0.88, "hspace": 0.5}
    gs = fig.add_gridspec(rows, per_row + 1, width_ratios=[1] * per_row + [bars], wspace=0.25, **margins)
    pred = int(scores.argmax())
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(_image(image).numpy(), cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])
    verdict = "right" if pred == true else "wrong"
    ax.set_title(f"true {labels[true]}\npredicted {labels[pred]} ({verdict})", fontsize=8,
                 color="black" if pred == true else "C3")  # fmt: skip
    for j, (name, m) in enumerate(maps.items(), start=1):
        ax = fig.add_subplot(gs[j // per_row, j % per_row])
        _heat(ax, m, image)
        lines = textwrap.wrap(name.replace("_", " "), 12) if rows > 1 else [name.replace("_", " ")]
        ax.set_title("\n".join([*lines, f"for {labels[target]}"]), fontsize=8)
    ax = fig.add_subplot(gs[:, per_row])
    s = scores.detach().float()
    colours = ["C3" if i == target else ("C2" if i == true else "C0") for i in range(len(s))]
    ax.barh(range(len(s)), s.numpy(), color=colours)
    ax.set_yticks(range(len(s)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"{score_name}\n(red: explained, green: true)", fontsize=8)
    return fig
