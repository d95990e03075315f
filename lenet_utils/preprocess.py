"""MNIST-style preprocessing: an image of one handwritten digit in, the networks' input out.

The book's networks only ever saw MNIST, and MNIST's digits were all made by one recipe (LeCun,
Cortes and Burges, *The MNIST database of handwritten digits* {cite}`lecun1998mnist`): the
black-and-white NIST originals were size-normalised to fit a 20x20 box keeping their aspect
ratio (the anti-aliasing of that step gives the grey levels), then placed in a 28x28 field so
that the centre of mass of the pixels sits at the centre of the field; the ink is light (255) on
a dark background (0). A photograph or a scan of a digit is none of that, so
:func:`mnist_style` repeats the recipe on any image, one recorded step at a time:

1. **grayscale** (:func:`to_gray`): luma ``0.299 R + 0.587 G + 0.114 B`` (Pillow's weights);
   transparent pixels are composited on white; 16-bit and float images are scaled to 0..255.
   An image longer than :data:`MAX_SIDE` pixels is reduced by block averaging on the way: the
   digit ends up 20 pixels tall anyway.
2. **polarity** (:func:`fix_polarity`): the background's level is the median of the image's
   border (a frame 1/16 of the shorter side wide, at least one pixel); ink pulls the mean away
   from it. The image is inverted when the border's median is lighter than the image's mean
   (dark ink on light paper), so that the ink is light as in MNIST.
3. **background** (:func:`remove_background`): the border's median becomes 0, and levels within
   the paper's noise (3 robust standard deviations of the border, 3 x 1.4826 x its median
   absolute deviation) become 0 too; the grey levels above are kept as they are.
4. **ink** (:func:`find_ink`, :func:`remove_specks`): an Otsu threshold separates ink from
   background. It only finds *where* the digit is -- the image is never binarised. Groups of
   8-connected ink pixels smaller than :data:`SPECK_FRACTION` of the largest are specks, set to
   background. An image with no ink and an image with several digits side by side are refused
   (:class:`NoInkError`, :class:`SeveralDigitsError`), never guessed at. The digit is every
   non-zero pixel within :data:`REACH` of the ink's height from its ink: the anti-aliased fringe
   and faint detached bits belong to it.
5. **levels** (:func:`stretch`): linear, so that the digit's brightest pixel is 255 as in MNIST.
6. **crop** (:func:`crop`) to the digit's bounding box: whatever lies outside is cut.
7. **scale** (:func:`fit_box`) to fit :data:`BOX` x :data:`BOX` keeping the aspect ratio (longer
   side 20, Lanczos: anti-aliased when shrinking; skipped when the longer side already is 20).
8. **centre** (:func:`centre_by_mass`) in a :data:`FIELD` x :data:`FIELD` field at the integer
   offset that puts the centre of mass in ``[13.5, 14.5)`` on both axes, where all but two of
   MNIST's 60,000 training digits have it; then round to uint8, as MNIST stores its pixels.
9. **model input**: the network's own transform, :class:`lenet_utils.data.Preprocess` -- for
   the 1998 LeNet-5, padding to 32x32 with background -0.1 and ink 1.175.

**MNIST's own digits.** Should a digit that already is in MNIST's format go through the recipe
again? Nearly nothing would change -- its border is 0 (no inversion, nothing to remove), its
non-zero pixels span 20 pixels on the longer side (no rescaling), its centre of mass is already
in the target square -- but not quite nothing: a tenth of MNIST's digits peak at 254 (levels
stretched by 255/254), a few hold faint pixels detached from the ink (cut as lying outside the
digit, which moves the crop and the centring) or small specks (removed), and one test digit in
10,000, a 5 drawn in two pieces side by side, is refused as two digits. So ``mode="auto"`` (the
default) first checks MNIST's format (:func:`is_mnist_format`: 28x28, black border, at most 20
pixels across, centre of mass in place) and takes such an image as it is: MNIST digits saved as
PNG give exactly the tensors of :func:`lenet_utils.data.load_data`. ``mode="full"`` runs every
step regardless; ``mode="none"`` none (28x28 only). ``tests/test_preprocess.py`` measures both
on 1,000 MNIST test digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "BOX",
    "FIELD",
    "MODES",
    "NoInkError",
    "PreprocessError",
    "Preprocessed",
    "SeveralDigitsError",
    "Step",
    "centre_by_mass",
    "centre_of_mass",
    "crop",
    "describe",
    "find_ink",
    "fit_box",
    "fix_polarity",
    "is_mnist_format",
    "mnist_style",
    "otsu_threshold",
    "remove_background",
    "remove_specks",
    "stretch",
    "to_gray",
]

#: MNIST's digits fit a 20x20 box inside a 28x28 field (the MNIST page, LeCun, Cortes, Burges).
BOX, FIELD = 20, 28
#: the centre of mass lands in [CENTRE - 0.5, CENTRE + 0.5) on each axis (pixel indices 0..27),
#: where 59,998 of MNIST's 60,000 training digits have it (tests/test_preprocess.py measures it;
#: the constants of this module were set on the training digits, the test digits only checked).
CENTRE = 14.0
#: the other two training digits lie up to 0.02 pixel below that square (MNIST's own rounding):
#: :func:`is_mnist_format` accepts a centre of mass this much below it.
CENTRE_SLACK = 0.025
#: ink groups smaller than this fraction of the largest group are specks (dropped).
SPECK_FRACTION = 0.05
#: ink groups at least this fraction of the largest one count as strokes for the several-digits rule.
LARGE_FRACTION = 0.25
#: two large groups side by side with more columns than this fraction of the ink's height between them
#: are two digits: 1 of MNIST's 60,000 training digits is refused (5 at 0.10 or 0.12, 1 up to 0.25);
#: tests/test_preprocess.py measures it.
GAP_FRACTION = 0.15
#: non-zero pixels this far from the ink (fraction of its height, at least 1 pixel) belong to the digit.
REACH = 0.1
#: the largest ink group must have this many pixels (and 1/10,000 of the image), else: no ink.
MIN_INK_PIXELS = 6
#: fewer grey levels (of 255) than this between background and ink: the image is blank.
MIN_CONTRAST = 8.0
#: see :func:`mnist_style`
MODES = ("auto", "full", "none")
#: images longer than this (pixels) are reduced by block averaging when made grey.
MAX_SIDE = 1024


class PreprocessError(ValueError):
    """The image cannot be made into one MNIST-style digit; the message says why."""


class NoInkError(PreprocessError):
    """Nothing in the image stands out from the background."""


class SeveralDigitsError(PreprocessError):
    """The ink falls into separate large groups far apart: more than one digit."""


@dataclass(frozen=True)
class Step:
    """One step of :func:`mnist_style`: its name, what it did in words ("" if nothing), the image after it.

    ``image`` is a float32 array (0..255, ink light) -- or the model's input for the last
    step -- when ``keep_images=True`` was asked, else ``None``.
    """

    name: str
    note: str
    image: np.ndarray | None = None


@dataclass
class Preprocessed:
    """The result of :func:`mnist_style`.

    Attributes:
        digit: ``(28, 28)`` uint8, MNIST's format (light ink on 0).
        tensor: ``(1, 1, S, S)`` float, the network's input (``digit`` through its transform).
        steps: every step in order, with what it did.
    """

    digit: np.ndarray
    tensor: torch.Tensor
    steps: list[Step] = field(default_factory=list)

    def summary(self) -> str:
        """What the steps before the model's input did, in words: ``"inverted; cropped 112x160 -> 20x14; ..."``."""
        return "; ".join(s.note for s in self.steps if s.note and s.name != "model input") or "unchanged"


# ------------------------------------------------------------------------------------------
# 1. grayscale


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114  # ITU-R 601, as Pillow's "L"


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _pixels(image: Image.Image) -> tuple[np.ndarray, float, str]:
    """The pixels in their own type -- ``(H, W)`` grey or ``(H, W, 3)`` RGB --, the factor that
    takes them to 0..255, and a note on the conversion."""
    mode = image.mode
    if _has_alpha(image):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        return np.asarray(flat), 1.0, f"{mode}: transparency composited on white"
    if mode in ("L", "1"):
        return np.asarray(image.convert("L")), 1.0, "1-bit" if mode == "1" else ""
    if mode.startswith("I;16"):
        return np.asarray(image), 1.0 / 257.0, f"{mode}: 16-bit scaled to 8"
    if mode in ("I", "F"):
        a = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 if (mode == "F" and top <= 1.0) else (1.0 if top <= 255 else 255.0 / 65535.0)
        return a, scale, f"{mode}: scaled to 0..255"
    try:
        return np.asarray(image.convert("RGB")), 1.0, f"{mode} to grey"
    except (ValueError, OSError) as e:
        raise PreprocessError(f"cannot convert a {mode} image to grey: {e}") from None


def _block_mean(a: np.ndarray, max_side: int) -> tuple[np.ndarray, str]:
    """float64 ``a``, shrunk by the smallest integer factor that brings its longer side to
    ``max_side`` or less (the mean of each block; a few edge rows or columns may be dropped)."""
    f = -(-max(a.shape[:2]) // max_side)
    if f <= 1:
        return a.astype(np.float64), ""
    h, w = a.shape[0] // f, a.shape[1] // f
    small = a[: h * f, : w * f].reshape(h, f, w, f, *a.shape[2:]).mean(axis=(1, 3))  # (h, w[, 3])
    return small, f"reduced {a.shape[0]}x{a.shape[1]} -> {h}x{w}"


def to_gray(image: Image.Image | np.ndarray | torch.Tensor, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str]:
    """A float64 grey image in 0..255 (the levels as stored, not inverted) and a note on the conversion.

    Modes: ``L`` as is; ``1`` (bilevel) to 0/255; ``RGB``, ``CMYK``, ``P``, ``YCbCr``... through
    RGB to luma; with transparency (``RGBA``, ``LA``, ``PA``, a palette's transparent colour)
    composited on white first; ``I;16`` divided by 257 (0..65535 -> 0..255); ``I`` and ``F`` by
    their range (``F`` with values in [0, 1] times 255, ``I`` above 255 as 16-bit). A 2-D uint8
    array or tensor is taken as ``L``. An image longer than ``max_side`` is reduced by block
    averaging, before the conversion to float (a phone photo stays small in memory).
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.ndim != 2 or image.dtype != np.uint8:
            raise PreprocessError(f"expected a 2-D uint8 array, got {image.dtype} {image.shape}")
        pixels, scale, note = image, 1.0, ""
    else:
        pixels, scale, note = _pixels(image)
    a, shrunk = _block_mean(pixels, max_side)
    if a.ndim == 3:
        a = _luma(a)
    return a * scale if scale != 1.0 else a, "; ".join(n for n in (note, shrunk) if n)


# ------------------------------------------------------------------------------------------
# 2-5. polarity, background, ink, levels


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of a frame 1/16 of the shorter side wide (at least one pixel)."""
    w = max(1, min(a.shape) // 16)
    if min(a.shape) <= 2 * w:
        return a.ravel()
    return np.concatenate([a[:w].ravel(), a[-w:].ravel(), a[w:-w, :w].ravel(), a[w:-w, -w:].ravel()])


def fix_polarity(a: np.ndarray) -> tuple[np.ndarray, str]:
    """Make the ink light on a dark background: invert when the border's median > the image's mean."""
    background, mean = float(np.median(_border(a))), float(a.mean())
    if background > mean:
        return 255.0 - a, f"inverted (border {background:.0f} lighter than mean {mean:.0f})"
    return a, ""


def remove_background(a: np.ndarray) -> tuple[np.ndarray, str]:
    """Subtract the border's median; levels within 3 robust sigmas of it (1.4826 x MAD) become 0."""
    frame = _border(a)
    level = float(np.median(frame))
    noise = 3.0 * 1.4826 * float(np.median(np.abs(frame - level)))
    x = a - level
    x[x <= noise] = 0.0
    if float(x.max()) < MIN_CONTRAST:
        raise NoInkError(f"no ink: nothing stands out from the background (contrast {x.max():.0f} of 255 grey levels)")
    if level == 0 and noise == 0:
        return x, ""
    return x, f"background {level:.0f} -> 0" + (f", noise <= {noise:.0f} -> 0" if noise else "")


def otsu_threshold(x: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of the histogram."""
    hist, edges = np.histogram(x, bins=bins, range=(0.0, float(x.max())))
    p = hist / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2
    omega, mu = np.cumsum(p), np.cumsum(p * centres)  # class-0 weight and (unnormalised) mean
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    return float(edges[int(np.nanargmax(between[:-1])) + 1])


def _check_one_digit(boxes: list[tuple[slice, slice]], areas: np.ndarray) -> None:
    """Raise :class:`SeveralDigitsError` when two large ink groups stand side by side (see :func:`find_ink`)."""
    big = [b for b, area in zip(boxes, areas, strict=True) if area >= LARGE_FRACTION * areas.max()]
    height = max(b[0].stop for b in boxes) - min(b[0].start for b in boxes)  # of all the ink
    for n, (_rows_a, cols_a) in enumerate(big):
        for _, cols_b in big[n + 1 :]:
            gap = max(cols_a.start - cols_b.stop, cols_b.start - cols_a.stop)  # columns between them
            if gap > GAP_FRACTION * height:
                raise SeveralDigitsError(
                    f"several digits: {len(big)} large ink groups side by side, {gap} pixels apart "
                    f"(more than {GAP_FRACTION:g} x the ink's height {height}); crop to one digit"
                )


def find_ink(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Where the digit is: ``(digit, specks, n_specks)``, two boolean masks and a count.

    Ink is ``x > otsu_threshold(x)``, grouped by 8-connectivity. Groups smaller than
    :data:`SPECK_FRACTION` of the largest are specks. The largest must have at least
    :data:`MIN_INK_PIXELS` pixels and 1/10,000 of the image (else :class:`NoInkError`). Two
    groups of at least :data:`LARGE_FRACTION` of the largest standing side by side -- more
    columns between them than :data:`GAP_FRACTION` of the height of all the ink -- are two
    digits (:class:`SeveralDigitsError`); groups above one another are one broken digit (a 5's
    detached bar). ``digit`` is every non-zero pixel within :data:`REACH` of the digit's ink
    height from the kept ink (its anti-aliased fringe and faint detached bits); ``specks`` the
    non-zero pixels 8-connected to the specks, outside ``digit``.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    labels, n = ndimage.label(x > otsu_threshold(x), structure=eight)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # (n,) pixels per group
    if n == 0 or areas.max() < max(MIN_INK_PIXELS, x.size / 10_000):
        found = 0 if n == 0 else int(areas.max())
        raise NoInkError(f"no ink: the largest mark has {found} pixels (a digit needs more than specks)")
    kept = areas >= SPECK_FRACTION * areas.max()  # (n,)
    boxes = [b for b, k in zip(ndimage.find_objects(labels), kept, strict=True) if k]
    _check_one_digit(boxes, areas[kept])
    ink = np.isin(labels, np.flatnonzero(kept) + 1)
    height = max(b[0].stop for b in boxes) - min(b[0].start for b in boxes)
    reach = max(1, round(REACH * height))
    near = ndimage.binary_dilation(ink, structure=eight, iterations=reach)
    digit = near & (x > 0)
    support, _ = ndimage.label(x > 0, structure=eight)
    outside = np.isin(labels, np.flatnonzero(~kept) + 1) & ~digit  # speck ink away from the digit
    speck_ids = np.unique(support[outside])
    specks = np.isin(support, speck_ids[speck_ids > 0]) & ~digit
    return digit, specks, len(np.unique(labels[outside]))


def remove_specks(x: np.ndarray, specks: np.ndarray, n: int) -> tuple[np.ndarray, str]:
    """Set the specks' pixels to background."""
    return np.where(specks, 0.0, x), (f"{n} speck{'s' * (n != 1)} removed" if n else "")


def stretch(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """Scale linearly so that the digit's (``mask``) brightest pixel is 255; 0 stays 0."""
    peak = float(x[mask].max())
    out = np.minimum(x * (255.0 / peak), 255.0)
    return out, ("" if abs(peak - 255.0) < 0.5 else f"ink peak {peak:.0f} -> 255")


# ------------------------------------------------------------------------------------------
# 6-8. crop, scale, centre


def crop(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """The bounding box of ``mask`` (the digit, fringe included): whatever lies outside it is cut."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    same = box.shape == x.shape
    return box, "" if same else f"cropped {x.shape[0]}x{x.shape[1]} -> {box.shape[0]}x{box.shape[1]}"


def fit_box(x: np.ndarray, box: int = BOX) -> tuple[np.ndarray, str]:
    """Scale to fit ``box`` x ``box`` keeping the aspect ratio (longer side = ``box``), Lanczos.

    Pillow's Lanczos filter widens with the shrink factor, so shrinking is anti-aliased; a
    float image is resampled (no clipping in between) and the result clipped to 0..255.
    """
    h, w = x.shape
    s = box / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    if size == (h, w):
        return x, ""
    img = Image.fromarray(x.astype(np.float32), mode="F").resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 255.0), f"scaled to {size[0]}x{size[1]}"


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass, grey levels as weights (pixel indices from 0)."""
    total = x.sum()
    return float(x.sum(1) @ np.arange(x.shape[0]) / total), float(x.sum(0) @ np.arange(x.shape[1]) / total)


def centre_by_mass(
    x: np.ndarray, size: int = FIELD, centre: float = CENTRE
) -> tuple[np.ndarray, str]:
    """Paste ``x`` into a ``size`` x ``size`` field of zeros at the integer offset that puts its centre
    of mass (grey levels as weights) in ``[centre - 0.5, centre + 0.5)`` on both axes -- as the MNIST
    page says its digits were placed. The offset is clamped so that the whole box stays inside."""
    com = centre_of_mass(x)
    out = np.zeros((size, size), dtype=np.float64)
    offsets, clamped = [], False
    for c, extent in zip(com, x.shape, strict=True):
        # c + off in [centre - 0.5, centre + 0.5)
        off = math.ceil(centre - 0.5 - c)
        fit = min(max(off, 0), size - extent)
        clamped |= fit != off
        offsets.append(fit)
    r, c = offsets
    out[r : r + x.shape[0], c : c + x.shape[1]] = x
    note = " (clamped to stay inside)" if clamped else ""
    return out, f"centred by mass at ({r}, {c}){note}"


# ------------------------------------------------------------------------------------------
# the recipe


def is_mnist_format(a: np.ndarray) -> bool:
    """Whether a grey image already is what the recipe makes: MNIST's format.

    28x28; the border's median is 0 (light ink on a black background); the non-zero pixels span
    at most 20 pixels on the longer side; the centre of mass lies in ``[13.5, 14.5)`` on both
    axes, or at most :data:`CENTRE_SLACK` below. Every MNIST training and test digit passes
    (``tests/test_preprocess.py``).
    """
    if a.shape != (FIELD, FIELD) or np.median(_border(a)) != 0 or not a.any():
        return False
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 > BOX:
        return False
    return all(CENTRE - 0.5 - CENTRE_SLACK <= c < CENTRE + 0.5 for c in centre_of_mass(a))


def describe(transform: Any) -> str:
    """A :class:`lenet_utils.data.Preprocess` in words: ``"padded to 32x32, paper's levels [-0.1, 1.175]"``."""
    if transform is None:
        return "28x28 in [0, 1]"
    side = f"{transform.size}x{transform.size}"
    size = side if transform.size == FIELD else f"{'resized' if transform.resize else 'padded'} to {side}"
    levels = {None: "[0, 1]", "paper": "paper's levels [-0.1, 1.175]", "standard": "standardised"}
    return f"{size}, {levels.get(transform.normalize, f'normalised {transform.normalize}')}"


def _model_input(digit: np.ndarray, transform: Any) -> torch.Tensor:
    """``(1, 1, S, S)``: the uint8 digit through ``transform`` (a :class:`lenet_utils.data.Preprocess`)."""
    from .data import Preprocess

    prep = transform if transform is not None else Preprocess()
    return prep(torch.from_numpy(digit).unsqueeze(0), "mnist")  # (1, 1, S, S)


def _recipe(
    a: np.ndarray, record: Callable[[str, np.ndarray, str], np.ndarray]
) -> np.ndarray:
    """Steps 2-8 of the module doc on a grey image; ``record(name, image, note)`` logs each."""
    a = record("polarity", *fix_polarity(a))
    a = record("background", *remove_background(a))
    digit, specks, n_specks = find_ink(a)
    a = record("specks", *remove_specks(a, specks, n_specks))
    a = record("levels", *stretch(a, digit))
    a = record("crop", *crop(a, digit))
    a = record("scale", *fit_box(a))
    return record("centre", *centre_by_mass(a))


def mnist_style(
    image: Image.Image | np.ndarray | torch.Tensor,
    transform: Any = None,
    *,
    mode: str = "auto",
    keep_images: bool = False,
) -> Preprocessed:
    """Make an image of one digit into MNIST's format and the network's input (see the module doc).

    Args:
        image: a PIL image (any mode) or a 2-D uint8 array / tensor.
        transform: the network's input transform, a :class:`lenet_utils.data.Preprocess`
            (default: 28x28 in [0, 1]).
        mode: ``"auto"``: every step, unless the grey image already is in MNIST's format
            (:func:`is_mnist_format`), which is then used as it is; ``"full"``: every step
            always; ``"none"``: grayscale only (the image must be 28x28, light ink on dark).
        keep_images: keep each step's image in :attr:`Step.image` (for showing the steps).

    Raises:
        NoInkError, SeveralDigitsError: the image holds no digit, or more than one.
        PreprocessError: another reason, named (a mode that cannot be converted, a size).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    steps: list[Step] = []

    def record(name: str, a: np.ndarray, note: str) -> np.ndarray:
        steps.append(Step(name, note, a.astype(np.float32) if keep_images else None))
        return a

    a = record("grayscale", *to_gray(image))
    if mode == "none" and a.shape != (FIELD, FIELD):
        raise PreprocessError(f"no preprocessing (mode 'none') takes 28x28 MNIST-format images, got "
                              f"{a.shape[0]}x{a.shape[1]}")  # fmt: skip
    if mode == "none" or (mode == "auto" and is_mnist_format(a)):
        why = "taken as is" if mode == "none" else "already MNIST-format"
        steps.append(Step("as is", f"{why} (28x28)", steps[-1].image))
    else:
        a = _recipe(a, record)
    digit = np.clip(np.rint(a), 0, 255).astype(np.uint8)  # (28, 28)
    tensor = _model_input(digit, transform)
    steps.append(Step("model input", describe(transform), tensor[0, 0].numpy() if keep_images else None))
    return Preprocessed(digit=digit, tensor=tensor, steps=steps)
