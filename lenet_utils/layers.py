"""The building blocks of the 1998 LeNet-5 that PyTorch does not ship.

LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11), 1998 — cited below as *the paper*.

* :class:`ScaledTanh` — the squashing function of Appendix A, f(a) = A tanh(S a).
* :class:`Subsampling` — S2/S4: sum of a 2x2 window times a trainable coefficient plus a
  trainable bias (§II.B): two parameters per feature map.
* :class:`SparseConv2d` — C3: a convolution whose input maps are chosen per output map by
  Table I. Only the connected kernels exist as parameters (1,516 for C3).
* :class:`RBFOutput` — the Euclidean RBF output units (Eq. 7) with the fixed bitmaps of
  Fig. 3 as a buffer, not a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "C3_TABLE",
    "RBFOutput",
    "ScaledTanh",
    "SparseConv2d",
    "Subsampling",
    "c3_mask",
    "rbf_bitmaps",
    "uniform_fan_in_",
]

#: Table I of the paper: the S2 feature maps feeding each of the 16 C3 maps.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


def c3_mask(
    table: Sequence[Sequence[int]] = C3_TABLE, in_channels: int = 6
) -> torch.Tensor:
    """Boolean ``(out, in)`` matrix: ``mask[o, i]`` is True when input map ``i``
    feeds output map ``o``.

    Transposed, this is Table I as printed in the paper (rows = S2 maps, columns
    = C3 maps).
    """
    mask = torch.zeros(len(table), in_channels, dtype=torch.bool)
    for o, inputs in enumerate(table):
        mask[o, list(inputs)] = True
    return mask


class ScaledTanh(nn.Module):
    r"""The paper's squashing function (Appendix A):
    :math:`f(a) = A \tanh(S a)`.

    With A = 1.7159 and S = 2/3, f(1) = 1 and f(-1) = -1, the gain is close to 1
    around the origin and the second derivative is largest at ±1 — the targets
    used in the paper.
    """

    # Appendix A
    def __init__(self, A: float = 1.7159, S: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.A, self.S = A, S

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A * torch.tanh(self.S * x)

    def extra_repr(self) -> str:
        return f"A={self.A}, S={self.S:.4f}"


class Subsampling(nn.Module):
    r"""LeNet's trainable subsampling (S2, S4; paper §II.B).

    Each unit adds the four inputs of its non-overlapping 2x2 window, multiplies
    the sum by a coefficient and adds a bias, both trainable and shared by the
    whole feature map:

    .. math:: y_{c,i,j} = w_c \sum_{(u,v) \in 2\times2} x_{c,2i+u,2j+v} + b_c

    so the layer has exactly ``2 * channels`` parameters. The squashing function
    is applied by the next module.
    """

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"Subsampling({self.channels}) expects (B, {self.channels}, "
                f"H, W), got {tuple(x.shape)}"
            )
        k = self.kernel_size
        s = F.avg_pool2d(x, k) * (k * k)  # (B, C, H/2, W/2): window sums
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"


class SparseConv2d(nn.Module):
    """A convolution in which each output map sees only some input maps (paper
    §II.B, Table I).

    Only the kernels that Table I keeps are parameters: ``weight`` holds one
    ``k x k`` kernel per (output map, connected input map) pair, grouped by
    output map and, within one, sorted by input map, not in the order the table
    lists them (``[(4, 5, 0)]`` stores the kernels of maps 0, 4, 5; C3's Table I
    is sorted, so there the two agree); ``bias`` holds one value per output
    map. For C3 that is 60 kernels x 25 + 16 = 1,516 values. The forward pass
    scatters them into a dense ``(out, in, k, k)`` kernel (zeros elsewhere, not
    parameters, receiving no gradient) and calls ``conv2d`` once.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int = 5,
        table: Sequence[Sequence[int]] = C3_TABLE,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            len(table),
            kernel_size,
        )
        self.table = tuple(tuple(int(i) for i in t) for t in table)
        if any(not 0 <= i < in_channels for t in self.table for i in t):
            raise ValueError(
                f"table names an input map outside 0..{in_channels - 1}"
            )
        mask = c3_mask(self.table, in_channels)
        # row-major: by output map, then by input map (sorted, not table order)
        out_idx, in_idx = mask.nonzero(as_tuple=True)
        self.register_buffer("out_index", out_idx, persistent=False)
        self.register_buffer("in_index", in_idx, persistent=False)
        self.weight = nn.Parameter(
            torch.empty(len(out_idx), kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.reset_parameters()

    def fan_in(self) -> torch.Tensor:
        """Inputs feeding one unit of each output map: connected maps x k x
        k."""
        return torch.tensor(
            [len(t) * self.kernel_size**2 for t in self.table],
            dtype=torch.float,
        )

    def reset_parameters(self, sqrt: bool = False) -> None:
        """Uniform in ±2.4 / F_i (paper Appendix C), F_i the fan-in of a unit of
        the output map.

        ``sqrt=True`` uses ±2.4 / sqrt(F_i) instead (see
        :func:`uniform_fan_in_`).
        """
        fan_in = self.fan_in()
        bound = 2.4 / (fan_in.sqrt() if sqrt else fan_in)
        with torch.no_grad():
            per_kernel = bound[self.out_index].view(-1, 1, 1)
            self.weight.uniform_(-1, 1).mul_(per_kernel)
            self.bias.uniform_(-1, 1).mul_(bound)

    def dense_weight(self) -> torch.Tensor:
        """The ``(out, in, k, k)`` kernel with zeros where Table I has no
        connection."""
        k = self.kernel_size
        w = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return w.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SparseConv2d({self.in_channels}, {self.out_channels}) "
                f"expects (B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        # (B, out, H - k + 1, W - k + 1)
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, connections={len(self.weight)}"
        )


def rbf_bitmaps() -> torch.Tensor:
    """The 10 stylised 7x12 digit bitmaps of Fig. 3 as a ``(10, 84)`` tensor of ±1.

    Read from ``lenet_utils/resources/lenet5_rbf_bitmaps.txt`` ('#' = +1, '.' = -1);
    F6 unit ``k`` corresponds to row ``k // 7``, column ``k % 7``.
    """
    text = resources.files("lenet_utils").joinpath("resources/lenet5_rbf_bitmaps.txt").read_text()
    digits: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("digit "):
            current = int(line.split()[1])
            digits[current] = []
        elif current is not None and line and set(line) <= {"#", "."}:
            digits[current].append(line)
    if sorted(digits) != list(range(10)) or any(len(r) != 12 or any(len(x) != 7 for x in r) for r in digits.values()):
        raise RuntimeError("lenet5_rbf_bitmaps.txt is malformed: expected digits 0-9, each 12 rows of 7")
    rows = [[1.0 if ch == "#" else -1.0 for ch in "".join(digits[d])] for d in range(10)]
    return torch.tensor(rows)


class RBFOutput(nn.Module):
    r"""Euclidean radial basis function output units (paper Eq. 7).

    .. math:: y_i = \sum_j (x_j - w_{ij})^2

    The prototypes :math:`w_{ij}` are the ±1 bitmaps of Fig. 3 and stay fixed:
    they are a buffer, so they appear in ``state_dict`` but not in
    ``parameters()``. The output is a *penalty* per class; the prediction is the
    class with the smallest one.
    """

    def __init__(self, prototypes: torch.Tensor | None = None) -> None:
        super().__init__()
        w = rbf_bitmaps() if prototypes is None else prototypes.float()
        self.register_buffer("prototypes", w)  # (10, 84)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.prototypes.shape[1]:
            raise ValueError(
                f"RBFOutput expects (B, {self.prototypes.shape[1]}), got "
                f"{tuple(x.shape)}"
            )
        # ||x - w_i||^2 = ||x||^2 - 2 x.w_i + ||w_i||^2 : one matmul instead of
        # a (B, 10, 84) tensor
        x2 = (x * x).sum(1, keepdim=True)  # (B, 1)
        w2 = (self.prototypes * self.prototypes).sum(1)  # (10,)
        return (x2 - 2 * x @ self.prototypes.t() + w2).clamp_min(0)  # (B, 10)

    def extra_repr(self) -> str:
        n, d = self.prototypes.shape
        return f"in_features={d}, classes={n}, prototypes=fixed"


def uniform_fan_in_(
    module: nn.Module, factor: float = 2.4, *, sqrt: bool = False
) -> None:
    """Initialise a Conv2d / Linear / Subsampling uniformly in ±factor / F_i
    (paper Appendix C).

    F_i is the number of inputs of one unit: ``in_channels * k * k`` for a
    convolution, ``in_features`` for a linear layer, the window size (4) for
    subsampling.

    ``sqrt=True`` divides by sqrt(F_i) instead: the scale LeCun et al. recommend
    in "Efficient BackProp" (1998, §4.6: standard deviation F_i^(-1/2)), under
    which the paper's SDLM settings train (chapter 5 shows that with ±2.4/F_i as
    printed they saturate the net).
    """
    if isinstance(module, nn.Conv2d):
        fan_in = (
            module.in_channels // module.groups * math.prod(module.kernel_size)
        )
    elif isinstance(module, nn.Linear):
        fan_in = module.in_features
    elif isinstance(module, Subsampling):
        fan_in = module.kernel_size**2
    elif isinstance(module, SparseConv2d):
        module.reset_parameters(sqrt=sqrt)
        return
    else:
        return
    bound = factor / (math.sqrt(fan_in) if sqrt else fan_in)
    with torch.no_grad():
        module.weight.uniform_(-bound, bound)
        if module.bias is not None:
            module.bias.uniform_(-bound, bound)
