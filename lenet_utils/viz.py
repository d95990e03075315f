"""Figures shared by the chapters. Each function draws on matplotlib and returns the figure.

Chapters call these so that the live (ipywidgets) and static (HTML) faces of an explorer
draw the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["show_images"]


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * (1.25 if labels else 1.0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].detach().cpu().float().numpy(), cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
