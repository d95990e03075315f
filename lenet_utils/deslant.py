r"""Deslanting: shear each digit so that the principal axis of its ink is vertical.

Several rows of the paper's benchmark (LeCun et al. 1998, §III.C, Fig. 9, marked
"[deslant]") are trained and tested on deslanted images. The paper names the operation
(the ink's second moments) but prints no formula; this module uses the standard one.

With the ink density :math:`I(x, y) \ge 0` (pixel value minus the background, ``x`` the
column, ``y`` the row, growing downwards), its mass and centre of mass

.. math:: m = \sum I, \qquad \bar x = \frac{1}{m} \sum x I, \qquad \bar y = \frac{1}{m} \sum y I,

and the central second moments

.. math:: \mu_{11} = \frac{1}{m} \sum (x - \bar x)(y - \bar y) I, \qquad
          \mu_{02} = \frac{1}{m} \sum (y - \bar y)^2 I,

the slant is :math:`s = \mu_{11} / \mu_{02}`: the slope :math:`dx/dy` of the least-squares
line :math:`x - \bar x = s\,(y - \bar y)` through the ink. The deslanted image is the shear

.. math:: I'(x, y) = I\big(x + s\,(y - \bar y),\; y\big),

i.e. x is sheared by :math:`-s` around the centre of mass; rows keep their place, the centre of
mass stays where it was, and the new image has :math:`\mu'_{11} = 0` (exactly in the continuous
case, to interpolation error on pixels). Pixels are resampled bilinearly; what comes from
outside the image is background. An image without ink (or with all of it on one row,
:math:`\mu_{02} = 0`) is returned unchanged.

Everything is batched on tensors: one ``grid_sample`` for the whole batch.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["crop_to_ink", "deslant", "ink_box_16", "moments", "slant", "subsample"]


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(B, 1, H, W)`` float view of ``(B, H, W)`` or ``(B, 1, H, W)`` images; flag: had a channel dim."""
    if images.dim() == 3:
        return images.unsqueeze(1).float(), False
    if images.dim() == 4 and images.shape[1] == 1:
        return images.float(), True
    raise ValueError(f"deslant expects (B, H, W) or (B, 1, H, W) images, got {tuple(images.shape)}")


def moments(images: torch.Tensor, background: float = 0.0) -> dict[str, torch.Tensor]:
    """Mass, centre of mass and central second moments of each image's ink.

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``; ink is brighter than ``background``.
        background: the value of an empty pixel (0 for MNIST in [0, 1] or uint8, -0.1 on the
            paper's scale).

    Returns:
        ``{"m", "cx", "cy", "mu20", "mu11", "mu02"}``, each ``(B,)`` float64, in pixels
        (``x`` = column, ``y`` = row). For an image without ink, ``m`` is 0, the centre is the
        image centre and the moments are 0.
    """
    x, _ = _as_batch(images)
    ink = (x[:, 0].double() - background).clamp_min(0)  # (B, H, W)
    B, H, W = ink.shape
    ys = torch.arange(H, dtype=torch.float64).view(1, H, 1)
    xs = torch.arange(W, dtype=torch.float64).view(1, 1, W)
    m = ink.sum((1, 2))  # (B,)
    safe = m.clamp_min(1e-12)
    empty = m <= 1e-12
    cx = torch.where(empty, torch.full_like(m, (W - 1) / 2), (ink * xs).sum((1, 2)) / safe)
    cy = torch.where(empty, torch.full_like(m, (H - 1) / 2), (ink * ys).sum((1, 2)) / safe)
    dx = xs - cx.view(B, 1, 1)  # (B, 1, W)
    dy = ys - cy.view(B, 1, 1)  # (B, H, 1)
    mu20 = (ink * dx * dx).sum((1, 2)) / safe
    mu11 = (ink * dx * dy).sum((1, 2)) / safe
    mu02 = (ink * dy * dy).sum((1, 2)) / safe
    return {"m": m, "cx": cx, "cy": cy, "mu20": mu20, "mu11": mu11, "mu02": mu02}


def slant(images: torch.Tensor, background: float = 0.0) -> torch.Tensor:
    """The slant ``s = mu11 / mu02`` of each image (``(B,)`` float64; 0 where ``mu02`` is 0).

    Positive ``s``: the ink's axis leans right going down the image (``x`` grows with the row).
    """
    mo = moments(images, background)
    ok = mo["mu02"] > 1e-12
    return torch.where(
        ok,
        mo["mu11"] / mo["mu02"].clamp_min(1e-12),
        torch.zeros_like(mo["mu11"]),
    )


def deslant(images: torch.Tensor, background: float = 0.0) -> torch.Tensor:
    """Shear each image so that its ink's principal axis is vertical (see the module docstring).

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``, any real dtype (uint8 MNIST is fine).
        background: the value of an empty pixel; pixels sheared in from outside get it.

    Returns:
        Float images of the input's shape (uint8 input comes back as float in [0, 255]).
    """
    x, had_channel = _as_batch(images)
    B, _, H, W = x.shape
    if B == 0:
        return x if had_channel else x[:, 0]
    mo = moments(x, background)
    s = slant(x, background)  # (B,)
    ys = torch.arange(H, dtype=torch.float64).view(1, H, 1)
    xs = torch.arange(W, dtype=torch.float64).view(1, 1, W)
    # (B, H, W): the column read for each output pixel
    src_x = xs + s.view(B, 1, 1) * (ys - mo["cy"].view(B, 1, 1))
    src_y = ys.expand(B, H, W)
    # pixel centres -> grid_sample's [-1, 1] (align_corners=False)
    gx = (2 * src_x + 1) / W - 1
    gy = (2 * src_y + 1) / H - 1
    grid = torch.stack([gx, gy], dim=-1).to(x.dtype)  # (B, H, W, 2)
    out = F.grid_sample(
        x - background,
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    out = out + background  # (B, 1, H, W)
    return out if had_channel else out[:, 0]


def crop_to_ink(
    images: torch.Tensor, size: int = 20, background: float = 0.0
) -> torch.Tensor:
    """The ``size`` x ``size`` window of each image centred on the bounding box of its ink.

    MNIST's digits were size-normalised to fit a 20x20 box and then centred in 28x28 by their
    centre of mass, so the box around the ink is the digit at its own resolution. The paper's
    20x20-300-10 row (Fig. 9) takes deslanted 20x20 images without saying how they were made;
    cropping to this window, rather than shrinking the whole 28x28 frame, is our reading. The
    window is an integer crop (no resampling), moved inside the image where the box is near an
    edge; ink wider than ``size`` (a deslanted digit can be) loses its outermost columns. An
    image without ink gives its central window.

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``, ``H, W >= size``; ink is brighter than
            ``background``.

    Returns:
        ``(B, 1, size, size)`` float (or ``(B, size, size)`` for ``(B, H, W)`` input).
    """
    x, had_channel = _as_batch(images)
    B, _, H, W = x.shape
    if size > min(H, W):
        raise ValueError(
            f"crop_to_ink: size {size} is larger than the images ({H}x{W})"
        )
    ink = x[:, 0] > background  # (B, H, W)

    def start(any_ink: torch.Tensor, n: int) -> torch.Tensor:
        """(B,) first index of the window along one axis, from (B, n)
        "ink on this line"."""
        idx = torch.arange(n)
        lo = torch.where(any_ink, idx, n).min(1).values
        hi = torch.where(any_ink, idx, -1).max(1).values
        # twice the box's centre
        centre2 = torch.where(hi >= 0, lo + hi, torch.tensor(n - 1))
        return ((centre2 + 1 - size) // 2).clamp(0, n - size)

    r0, c0 = start(ink.any(2), H), start(ink.any(1), W)  # (B,), (B,)
    offs = torch.arange(size)
    rows = (r0[:, None] + offs)[:, :, None]  # (B, size, 1)
    cols = (c0[:, None] + offs)[:, None, :]  # (B, 1, size)
    out = x[torch.arange(B)[:, None, None], 0, rows, cols]  # (B, size, size)
    out = out.unsqueeze(1)  # (B, 1, size, size)
    return out if had_channel else out[:, 0]


def subsample(
    images: torch.Tensor, size: int = 16, background: float = 0.0
) -> torch.Tensor:
    """Each image subsampled to ``size`` x ``size``: bilinear with antialiasing (the paper does not
    say how it subsampled), the background kept (what lies outside the image counts as background).

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``; ink is brighter than ``background``.

    Returns:
        ``(B, 1, size, size)`` float (or ``(B, size, size)`` for ``(B, H, W)`` input).
    """
    x, had_channel = _as_batch(images)
    out = F.interpolate(x - background, size=(size, size), mode="bilinear",
                        antialias=True, align_corners=False)
    out = out + background
    return out if had_channel else out[:, 0]


def ink_box_16(images: torch.Tensor, background: float = 0.0) -> torch.Tensor:
    """The digit as MNIST size-normalised it, at 16x16: the 20x20 window around its ink
    (:func:`crop_to_ink`) subsampled to 16x16 (:func:`subsample`); the ink stays about 16 pixels
    tall, where shrinking the whole 28x28 frame leaves it about 11. LeNet-1's input
    (``paper.paper_inputs(..., "crop16in28")``) and the tangent-distance row's (``"crop16"`` of
    ``fig9.base.flat_inputs``).

    Returns:
        ``(B, 1, 16, 16)`` float (or ``(B, 16, 16)`` for ``(B, H, W)`` input).
    """
    box = crop_to_ink(images, 20, background=background)  # the digit's 20x20
    return subsample(box, 16, background=background)
