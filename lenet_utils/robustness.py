"""How robust is a trained LeNet? Test accuracy under controlled distortions of MNIST's test digits.

The 1998 paper claims (§III.C, "Invariance and noise resistance", Fig. 13) that convolutional
networks recognise digits across wide changes of size, position and orientation, and through
heavy salt-and-pepper noise (LeCun et al. 1998). This module measures it: each transformation
of :data:`TRANSFORMS` is applied to MNIST's test digits at a grid of severities
(:data:`GRID`), the distorted digits go through each network's own input transform, and the
accuracy is recorded with a Wilson 95 % interval (:func:`wilson`) -- for one fixed network the
only randomness is which 10,000 digits were drawn, a binomial count.

Every transformation works on what MNIST stores -- uint8 ``(N, 28, 28)`` digits, light ink on
0 -- and returns the same, rounded to uint8 as an image file would be: the networks see exactly
what they would see if the distorted digits were saved and classified by ``predict``. The
geometric ones (:func:`affine`) turn about the centre of the 28x28 field (pixel 13.5, 13.5),
bilinear; ink moved outside the field is lost, as a segmenter's box would cut it.

:func:`mnist_variant` is the MNIST recipe of :mod:`lenet_utils.preprocess` with steps left out
(for "does this step matter?"), :func:`evaluate_grid` the measurement behind
``python -m lenet_utils robustness``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from . import preprocess as pp
from .files import atomic_write

__all__ = [
    "COLUMNS",
    "GRID",
    "IDENTITY",
    "TRANSFORMS",
    "VARIANTS",
    "affine",
    "apply",
    "blur",
    "default_networks",
    "evaluate_grid",
    "gaussian_noise",
    "mnist_variant",
    "predict_labels",
    "read_csv",
    "rotate",
    "salt_pepper",
    "scale",
    "shear",
    "shift",
    "stroke",
    "wilson",
    "write_csv",
]

REPO = Path(__file__).resolve().parents[1]
#: the field's centre in pixel coordinates (indices 0..27): the transformations turn about it
CENTRE = (pp.FIELD - 1) / 2


# ------------------------------------------------------------------------------------------
# Transformations: uint8 (N, 28, 28) in, uint8 (N, 28, 28) out


def _float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} {tuple(images.shape)}")
    return images.float().unsqueeze(1)  # (N, 1, H, W)


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return x.squeeze(1).round().clamp(0, 255).to(torch.uint8)  # (N, H, W)


def affine(images: torch.Tensor, matrix: Any, translation: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Map every digit by ``p -> matrix @ (p - c) + c + translation`` (bilinear, background 0).

    ``p = (x, y)`` in pixels, x to the right and y *down*, ``c`` the centre of the field;
    ``translation`` in pixels. Ink mapped outside the field is lost.
    """
    x = _float(images)  # (N, 1, H, W)
    _, _, H, W = x.shape
    A = torch.as_tensor(matrix, dtype=torch.float64).reshape(2, 2)
    A_inv = torch.linalg.inv(A)  # grid_sample asks, for each output pixel, where it comes from
    half = torch.tensor([W / 2, H / 2], dtype=torch.float64)  # pixels per normalised unit
    t = torch.tensor(translation, dtype=torch.float64) / half
    S = torch.diag(half)  # normalised -> pixels (anisotropic when H != W)
    A_n = torch.linalg.inv(S) @ A_inv @ S
    theta = torch.cat([A_n, -(A_n @ t).unsqueeze(1)], 1).float()  # (2, 3)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)  # (N, H, W, 2)
    return _uint8(F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False))


def shift(images: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """Move every digit ``dx`` pixels right and ``dy`` down (whole pixels: no interpolation)."""
    out = torch.zeros_like(images)  # (N, H, W)
    _, H, W = images.shape
    dx, dy = int(dx), int(dy)
    if abs(dx) >= W or abs(dy) >= H:
        return out
    src = images[:, max(0, -dy) : H - max(0, dy), max(0, -dx) : W - max(0, dx)]
    out[:, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
    return out


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Turn every digit ``degrees`` anticlockwise (as seen on the screen) about the field's centre."""
    a = math.radians(degrees)
    return affine(
        images, [[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]
    )


def scale(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Enlarge (``factor > 1``) or shrink every digit about the field's centre."""
    return affine(images, [[factor, 0.0], [0.0, factor]])


def shear(images: torch.Tensor, k: float) -> torch.Tensor:
    """Slant horizontally: ``x -> x - k (y - c)``; ``k > 0`` leans the top to the right, like italics."""
    return affine(images, [[1.0, -k], [0.0, 1.0]])


#: the 4-neighbourhood (a plus sign): each step of :func:`stroke` widens or thins by a pixel per side
_PLUS = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.bool)


def _plus_max(x: torch.Tensor) -> torch.Tensor:
    p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))  # (N, 1, H+2, W+2)
    H, W = x.shape[-2:]
    shifted = [p[..., i : i + H, j : j + W] for i, j in zip(*torch.nonzero(_PLUS, as_tuple=True), strict=True)]
    return torch.stack(shifted).amax(0)


def stroke(images: torch.Tensor, steps: int) -> torch.Tensor:
    """Thicker (``steps > 0``, grey dilation) or thinner (``steps < 0``, grey erosion) strokes.

    Each step takes, for every pixel, the largest (dilation) or smallest (erosion) grey level of
    itself and its four neighbours: strokes grow or shrink by about one pixel on each side.
    """
    x = _float(images)
    for _ in range(abs(int(steps))):
        x = _plus_max(x) if steps > 0 else -_plus_max(-x)
    return _uint8(x)


def salt_pepper(images: torch.Tensor, p: float, seed: int = 0) -> torch.Tensor:
    """Invert each pixel (``v -> 255 - v``) with probability ``p``, independently.

    On MNIST's nearly black-and-white digits this is salt-and-pepper noise: white specks on
    the background, black holes in the ink. Seeded: the same ``seed`` gives the same pixels.
    """
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(images.shape, generator=g) < p  # (N, H, W)
    return torch.where(flip, 255 - images, images)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    return k / k.sum()  # (2r + 1,)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (separable, zeros outside)."""
    if sigma <= 0:
        return images.clone()
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    x = F.conv2d(_float(images), k.view(1, 1, 1, -1), padding=(0, r))  # rows
    return _uint8(F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0)))  # then columns


def gaussian_noise(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma`` grey levels to every pixel (seeded)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=g) * sigma  # (N, H, W)
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


#: name -> ``f(images, level)``: the transformations of the grid, one severity each
TRANSFORMS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "shift_x": lambda x, v: shift(x, dx=int(v)),
    "shift_y": lambda x, v: shift(x, dy=int(v)),
    "rotate": rotate,
    "scale": scale,
    "shear": shear,
    "stroke": lambda x, v: stroke(x, int(v)),
    "salt_pepper": salt_pepper,
    "blur": blur,
    "noise": gaussian_noise,
}
#: the level at which each transformation leaves the digits as they are
IDENTITY: dict[str, float] = {"shift_x": 0, "shift_y": 0, "rotate": 0, "scale": 1, "shear": 0, "stroke": 0,
                              "salt_pepper": 0, "blur": 0, "noise": 0}  # fmt: skip
#: the severities ``python -m lenet_utils robustness`` measures (pixels, degrees, factors, steps, p)
GRID: dict[str, tuple[float, ...]] = {
    "shift_x": tuple(range(-8, 9, 2)),
    "shift_y": tuple(range(-8, 9, 2)),
    "rotate": tuple(range(-60, 61, 10)),
    "scale": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4),
    "shear": (-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8),
    "stroke": (-2, -1, 0, 1, 2, 3),
    "salt_pepper": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
}


def apply(kind: str, images: torch.Tensor, level: float) -> torch.Tensor:
    """``TRANSFORMS[kind](images, level)``, with a clear error for an unknown name."""
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transformation {kind!r}: choose from {', '.join(TRANSFORMS)}")
    return TRANSFORMS[kind](images, level)


# ------------------------------------------------------------------------------------------
# Measuring


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n`` (95 % for ``z = 1.96``).

    Better than ``p ± z sqrt(p(1-p)/n)`` near 0 and 1, where LeNet's accuracies live: it never
    leaves [0, 1] and is not empty when every digit is right.
    """
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def predict_labels(clf: Any, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Predicted classes ``(N,)`` of uint8 ``(N, 28, 28)`` digits by a :class:`lenet_utils.predict.Classifier`
    (its own input transform; the smallest RBF penalty or the largest score)."""
    out = []
    for i in range(0, len(images), batch_size):
        x = clf.transform(images[i : i + batch_size], "mnist")  # (b, 1, S, S)
        s = clf.net(x)  # (b, 10)
        out.append(s.argmin(1) if clf.rbf else s.argmax(1))
    return torch.cat(out)


#: the columns of a robustness CSV
COLUMNS = ("network", "transform", "level", "n", "correct", "accuracy", "wilson_lo", "wilson_hi")


def evaluate_grid(
    networks: Mapping[str, Any],
    images: torch.Tensor,
    labels: torch.Tensor,
    grid: Mapping[str, Iterable[float]] = GRID,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Accuracy of every network at every ``(transform, level)`` of ``grid``: one row each (:data:`COLUMNS`).

    Each distorted set is made once and given to every network. ``networks`` maps a name to a
    :class:`lenet_utils.predict.Classifier`.
    """
    rows = []
    for kind, levels in grid.items():
        for level in levels:
            distorted = apply(kind, images, level)  # (N, 28, 28)
            for name, clf in networks.items():
                correct = int((predict_labels(clf, distorted) == labels).sum())
                lo, hi = wilson(correct, len(labels))
                rows.append(dict(zip(COLUMNS, (name, kind, level, len(labels), correct, correct / len(labels), lo, hi),
                                     strict=True)))  # fmt: skip
            if progress is not None:
                accs = ", ".join(f"{r['network']} {r['accuracy']:.4f}" for r in rows[-len(networks) :])
                progress(f"{kind} {level:g}: {accs}")
    return rows


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows of :data:`COLUMNS` (atomically)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "level": f"{float(r['level']):g}", "accuracy": f"{r['accuracy']:.4f}",
                    "wilson_lo": f"{r['wilson_lo']:.4f}", "wilson_hi": f"{r['wilson_hi']:.4f}"})  # fmt: skip
    return atomic_write(path, buf.getvalue())


def read_csv(*paths: str | Path) -> Any:
    """One or more robustness CSVs as one pandas DataFrame (a grid may be measured in parts)."""
    import pandas as pd

    if not paths:
        raise ValueError("read_csv needs at least one path")
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def default_networks(root: Path = REPO) -> dict[str, Path]:
    """The networks the committed grid measures: name -> checkpoint (paths in a clone of the book).

    ``paper`` and ``paper_distortions`` are the 1998 LeNet-5 trained by the paper's recipe without
    and with distortions (``data/paper/plain_mu1``, ``data/paper/distortions_x10``), ``modern``
    the reproduction project's ReLU LeNet (``data/paper/modern``), ``d2l_seed0..2`` d2l's LeNet
    trained by d2l's recipe on MNIST with three seeds (``data/robustness/``).
    """
    paper = root / "data" / "paper"
    nets = {
        "paper": paper / "plain_mu1" / "checkpoint.pt",
        "paper_distortions": paper / "distortions_x10" / "checkpoint.pt",
        "modern": paper / "modern" / "checkpoint.pt",
    }
    nets.update({f"d2l_seed{s}": root / "data" / "robustness" / f"d2l_seed{s}" / "best.pt" for s in range(3)})
    return nets


# ------------------------------------------------------------------------------------------
# The recipe with steps left out


#: :func:`mnist_variant`'s choices: the recipe built up one step at a time, then the full recipe
#: with one of its choices replaced
VARIANTS = (
    "resize only",
    "+ polarity",
    "+ background and levels",
    "+ crop, fit 20x20",
    "+ centre of mass (the recipe)",
    "stretched to 20x20",
    "fitted to 28x28",
)


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    img = Image.fromarray(a.astype(np.float32), mode="F").resize((w, h), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 255.0)


def _paste_centred(x: np.ndarray, size: int = pp.FIELD) -> np.ndarray:
    out = np.zeros((size, size))
    r, c = (size - x.shape[0]) // 2, (size - x.shape[1]) // 2
    out[r : r + x.shape[0], c : c + x.shape[1]] = x
    return out


def mnist_variant(image: Any, variant: str) -> np.ndarray:
    """The 28x28 uint8 digit that :func:`lenet_utils.preprocess.mnist_style` would make, with steps
    left out or replaced (:data:`VARIANTS`):

    * ``"resize only"``: grey, then the whole image squeezed to 28x28 -- no step of the recipe;
    * ``"+ polarity"``, ``"+ background and levels"``: the first steps, then squeezed to 28x28;
    * ``"+ crop, fit 20x20"``: cropped to the digit, fitted to 20x20, box centred in 28x28;
    * ``"+ centre of mass (the recipe)"``: every step, as ``mnist_style(mode="full")``;
    * ``"stretched to 20x20"``: the recipe, but the aspect ratio not kept;
    * ``"fitted to 28x28"``: the recipe, but no margin: the longer side 28.

    Raises what :func:`mnist_style` raises (no ink, several digits) once the ink is looked for.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose from {VARIANTS}")
    a, _ = pp.to_gray(image)
    k = VARIANTS.index(variant)
    if k >= 1:
        a, _ = pp.fix_polarity(a)
    if k >= 2:
        a, _ = pp.remove_background(a)
        digit, specks, n = pp.find_ink(a)
        a, _ = pp.remove_specks(a, specks, n)
        a, _ = pp.stretch(a, digit)
    if k < 3:
        out = _resize(a, pp.FIELD, pp.FIELD)
    else:
        a, _ = pp.crop(a, digit)
        if variant == "stretched to 20x20":
            a = _resize(a, pp.BOX, pp.BOX)
        else:
            a, _ = pp.fit_box(
                a, pp.FIELD if variant == "fitted to 28x28" else pp.BOX
            )
        out = (
            _paste_centred(a)
            if variant == "+ crop, fit 20x20"
            else pp.centre_by_mass(a)[0]
        )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
