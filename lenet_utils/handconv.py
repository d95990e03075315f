"""Convolution and pooling written out as loops, to check the library versions against.

LeCun et al. 1998, §II.A describes the three ideas a convolutional layer is made of: *local
receptive fields* (each unit sees a small window), *shared weights* (every unit of a feature
map uses the same kernel) and *subsampling*. The functions below implement them with plain
Python loops over output cells, so that each output value is visibly "the window times the
kernel, summed". They are slow on purpose; the chapters compare them with
``torch.nn.functional.conv2d`` / ``max_pool2d`` / ``avg_pool2d`` and ``d2l.corr2d``.

* :func:`corr2d` — cross-correlation of one 2-D map with one kernel (what deep-learning
  libraries call "convolution"), with zero padding and stride.
* :func:`convolve2d` — the textbook convolution: the same with the kernel turned 180°.
* :func:`corr2d_multi_in` — one output map from several input maps (paper §II.B, C3):
  the sum over input maps of (map ★ its own kernel), plus one bias.
* :func:`pool2d` — max, average or sum pooling over windows.
* :func:`output_size` — floor((n + 2p - k) / s) + 1.
* :func:`receptive_fields` — how far into the input a unit of each layer sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = [
    "LENET5_GEOMETRY",
    "ReceptiveField",
    "cell_arithmetic",
    "conv_windows",
    "convolve2d",
    "corr2d",
    "corr2d_multi_in",
    "gradient_footprint",
    "output_size",
    "pool2d",
    "receptive_fields",
]

#: The paper's feature-extraction layers as (name, kernel, stride) (§II.B): 5x5 convolutions
#: with stride 1, non-overlapping 2x2 subsampling.
LENET5_GEOMETRY: tuple[tuple[str, int, int], ...] = (
    ("C1", 5, 1),
    ("S2", 2, 2),
    ("C3", 5, 1),
    ("S4", 2, 2),
    ("C5", 5, 1),
)


def output_size(n: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """Side of the output of a ``k x k`` window sliding over an ``n x n`` map.

    ``floor((n + 2 * padding - k) / stride) + 1``: the number of window positions that fit in
    the padded map, counting the first one. Rows or columns that a last, incomplete window
    would need are dropped (PyTorch's default, ``ceil_mode=False``).
    """
    if n < 1 or k < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need n, k, stride >= 1 and padding >= 0; got n={n}, k={k}, p={padding}, s={stride}")
    if k > n + 2 * padding:
        raise ValueError(f"kernel {k} exceeds the padded input {n} + 2*{padding}: add padding or shrink the kernel")
    return (n + 2 * padding - k) // stride + 1


def _check_2d(X: torch.Tensor, K: torch.Tensor) -> None:
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"corr2d works on one 2-D map and one 2-D kernel; got {tuple(X.shape)} and {tuple(K.shape)}")


def conv_windows(
    shape: tuple[int, int], kernel: tuple[int, int], padding: int = 0, stride: int = 1
) -> list[tuple[int, int, int, int]]:
    """Every window position in row-major order as ``(i, j, row, col)``.

    ``(i, j)`` is the output cell, ``(row, col)`` the top-left corner of its window in the
    *padded* input. The explorers step through this list.
    """
    oh = output_size(shape[0], kernel[0], padding, stride)
    ow = output_size(shape[1], kernel[1], padding, stride)
    return [(i, j, i * stride, j * stride) for i in range(oh) for j in range(ow)]


def corr2d(
    X: torch.Tensor, K: torch.Tensor, *, padding: int = 0, stride: int = 1
) -> torch.Tensor:
    r"""2-D cross-correlation by explicit loops:
    :math:`Y_{ij} = \sum_{a,b} X_{si+a,\,sj+b} K_{ab}`.

    This is the operation of one C1 unit before its bias and squashing function
    (paper §II.B). ``X`` is ``(H, W)``, ``K`` is ``(kh, kw)``; the input is
    padded with ``padding`` zeros on every side first. Returns ``(H', W')`` in
    ``X``'s floating dtype.
    """
    _check_2d(X, K)
    # (H + 2p, W + 2p)
    Xp = F.pad(X.float() if not X.is_floating_point() else X, (padding,) * 4)
    Kf = K.to(Xp.dtype)
    kh, kw = K.shape
    oh = output_size(X.shape[0], kh, padding, stride)
    ow = output_size(X.shape[1], kw, padding, stride)
    Y = torch.zeros(oh, ow, dtype=Xp.dtype)  # (H', W')
    for i in range(oh):
        for j in range(ow):
            r, c = i * stride, j * stride
            Y[i, j] = (Xp[r : r + kh, c : c + kw] * Kf).sum()
    return Y


def convolve2d(X: torch.Tensor, K: torch.Tensor, *, padding: int = 0, stride: int = 1) -> torch.Tensor:
    """True (mathematical) 2-D convolution: cross-correlation with the kernel turned 180°.

    ``convolve2d(X, K) == corr2d(X, K.flip(0, 1))``. The paper never needs the distinction:
    its kernels are learned, so a network that flips them learns flipped kernels.
    """
    _check_2d(X, K)
    return corr2d(X, K.flip(0, 1), padding=padding, stride=stride)


def corr2d_multi_in(
    X: torch.Tensor, K: torch.Tensor, bias: float | torch.Tensor = 0.0, *, padding: int = 0, stride: int = 1
) -> torch.Tensor:
    r"""One output map from ``C`` input maps: :math:`Y = b + \sum_c X_c \star K_c`.

    Each input map has its own kernel; the per-map results are added and one bias is added
    to the sum (paper §II.B, the S2 → C3 step; the squashing function comes after).
    ``X`` is ``(C, H, W)``, ``K`` is ``(C, kh, kw)``.
    """
    if X.dim() != 3 or K.dim() != 3 or X.shape[0] != K.shape[0]:
        raise ValueError(f"expected X (C, H, W) and K (C, kh, kw), same C; got {tuple(X.shape)}, {tuple(K.shape)}")
    total = sum(corr2d(x, k, padding=padding, stride=stride) for x, k in zip(X, K, strict=True))
    return total + bias  # (H', W')


def pool2d(
    X: torch.Tensor, size: int = 2, *, stride: int | None = None, mode: str = "max"
) -> torch.Tensor:
    """Pooling by explicit loops over ``size x size`` windows (stride defaults to ``size``).

    ``mode`` is ``"max"``, ``"avg"`` or ``"sum"``. The paper's subsampling (§II.B) is
    ``"sum"`` times a trainable coefficient plus a trainable bias, then squashed; ``"avg"``
    is the same sum divided by ``size**2``. ``X`` is ``(H, W)``.
    """
    if X.dim() != 2:
        raise ValueError(f"pool2d works on one 2-D map; got shape {tuple(X.shape)}")
    reducers = {"max": torch.amax, "avg": torch.mean, "sum": torch.sum}
    if mode not in reducers:
        raise ValueError(f"unknown mode {mode!r}; choose from {sorted(reducers)}")
    stride = size if stride is None else stride
    Xf = X if X.is_floating_point() else X.float()
    oh = output_size(X.shape[0], size, 0, stride)
    ow = output_size(X.shape[1], size, 0, stride)
    Y = torch.zeros(oh, ow, dtype=Xf.dtype)  # (H', W')
    for i in range(oh):
        for j in range(ow):
            r, c = i * stride, j * stride
            Y[i, j] = reducers[mode](Xf[r : r + size, c : c + size])
    return Y


def cell_arithmetic(X: torch.Tensor, K: torch.Tensor, i: int, j: int, *, padding: int = 0, stride: int = 1) -> str:
    """The sum behind output cell ``(i, j)`` of :func:`corr2d`, written out term by term.

    E.g. ``"1*1 + 1*0 + 1*1 + ... = 4"``: window value times kernel value, row by row.
    """
    _check_2d(X, K)
    Xp = F.pad(X.float(), (padding,) * 4)
    kh, kw = K.shape
    r, c = i * stride, j * stride
    if r + kh > Xp.shape[0] or c + kw > Xp.shape[1]:
        raise ValueError(f"output cell ({i}, {j}) is outside the output map")
    win = Xp[r : r + kh, c : c + kw]

    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"

    terms = [f"{fmt(float(win[a, b]))}*{fmt(float(K[a, b]))}" for a in range(kh) for b in range(kw)]
    total = float((win * K.float()).sum())
    return " + ".join(terms) + f" = {fmt(total)}"


@dataclass(frozen=True)
class ReceptiveField:
    """What one unit of a layer sees: ``size`` x ``size`` input pixels; neighbouring units
    of the layer are ``jump`` input pixels apart."""

    name: str
    kernel: int
    stride: int
    size: int
    jump: int


def receptive_fields(layers: Sequence[tuple[str, int, int]] = LENET5_GEOMETRY) -> list[ReceptiveField]:
    """Receptive field of each layer of a stack of ``(name, kernel, stride)`` layers.

    Recurrence, from the input (size 1, jump 1): ``size += (kernel - 1) * jump`` then
    ``jump *= stride``. A window of ``k`` units of the previous layer spans ``k - 1`` steps
    of that layer's jump, plus the field of one unit. Padding moves fields, not their size.
    For LeNet-5 (§II.B) this gives 5, 6, 14, 16, 32: one C5 unit sees the whole 32x32 input.
    """
    size, jump = 1, 1
    out = []
    for name, k, s in layers:
        if k < 1 or s < 1:
            raise ValueError(f"layer {name}: kernel and stride must be >= 1, got {k}, {s}")
        size += (k - 1) * jump
        jump *= s
        out.append(ReceptiveField(name, k, s, size, jump))
    return out


def gradient_footprint(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, index: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """Measure a receptive field: the input pixels that output ``f(x)[index]`` depends on.

    Backpropagates from that one output value to the input ``x`` (``(1, C, H, W)``) and
    returns the bounding box ``(top, left, height, width)`` of the pixels with a non-zero
    gradient. Use float64 so that no gradient underflows to an exact zero, and random
    (not trained-to-zero) weights.
    """
    x = x.detach().clone().requires_grad_(True)
    f(x)[index].backward()
    assert x.grad is not None
    rows, cols = x.grad[0].abs().sum(0).nonzero(as_tuple=True)
    if len(rows) == 0:
        raise ValueError(f"output {index} does not depend on the input (all gradients are zero)")
    top, left = int(rows.min()), int(cols.min())
    return top, left, int(rows.max()) - top + 1, int(cols.max()) - left + 1
