"""Pictures of tensors: a grid of images, feature maps side by side, the RBF prototypes of
LeNet-5's output layer (paper Fig. 3). Each function draws on matplotlib and returns the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from .. import style

__all__ = ["show_images", "show_maps", "show_rbf_prototypes"]


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
