"""The LeNet variants the course trains, each a plain ``nn.Module``.

=====================  =========================================================  ==========
builder                what it is                                                 params
=====================  =========================================================  ==========
:class:`LeNet5Paper`   the 1998 network: 32x32 input, scaled tanh, trainable      60,000
                       subsampling, sparse C3 (Table I), RBF output
:func:`lenet_d2l`      d2l's LeNet: 28x28 padded by 2, sigmoid, average pooling,  61,706
                       full C3, 10 linear outputs (softmax in the loss)
:func:`lenet_modern`   the reproduction project's network: 32x32 resized input,  61,706
                       ReLU, max-pool, 10 linear outputs
:func:`lenet_theano`   the deeplearning.net (Theano) LeNet of hjimce's            431,080
                       walkthrough: 20 and 50 kernels, max-pool, tanh, 500 hidden
:func:`lenet_gap`      LeNet's two convolutions (ReLU, max-pool), a 3x3 and a     8,598
                       1x1 convolution, global average pooling, one linear layer
                       (the network class activation maps need)
:func:`lenet1`         LeNet-1 of the paper's benchmark (§III.C): 16x16 digits    2,578
                       in a 28x28 input, 4 and 12 maps, 10 outputs
:func:`lenet4`         LeNet-4 (§III.C): 4, 8, 16, 16 maps, 120 units, 10         50,698
                       outputs
:func:`lenet4_sparse`  LeNet-4 with F5's 120 units each on 5 of the 16 maps: the  17,698
                       paper's parameter count (a held-out study, not Fig. 9)
:func:`fc_net`         the benchmark's fully connected nets (28x28-300-10, ...)   varies
=====================  =========================================================  ==========

The benchmark's networks (:data:`PAPER_NETS`) end in ten RBF units with a ±1 place code
(:func:`place_code_output`), so that :mod:`lenet_utils.paper` trains them with the 1998 recipe.

All take ``(B, 1, H, W)`` float images and return ``(B, 10)`` scores; for
:class:`LeNet5Paper` the scores are RBF *penalties* (lower is better), use
:meth:`LeNet5Paper.predict` for labels.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from .layers import C3_TABLE, RBFOutput, ScaledTanh, SparseConv2d, Subsampling, uniform_fan_in_

__all__ = ["MODELS", "LeNet5Paper", "build_model", "count_parameters", "lenet_d2l", "lenet_modern", "lenet_theano"]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters: ``sum(p.numel() for p in model.parameters() if p.requires_grad)``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "scaled_tanh": ScaledTanh}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def _make(name: str, table: dict[str, type[nn.Module]], what: str) -> type[nn.Module]:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose from {sorted(table)}")
    return table[name]


def lenet_d2l(
    *,
    activation: str = "sigmoid",
    pool: str = "avg",
    c1_kernel: int = 5,
    pool_size: int = 2,
    input_size: int = 28,
    padding: int = 2,
) -> nn.Sequential:
    """d2l's LeNet (Dive into Deep Learning §7.6), with the knobs the ablations
    turn.

    The defaults give d2l's network exactly: ``Conv2d(1, 6, 5, padding=2)``,
    sigmoid, ``AvgPool2d(2, 2)``, ``Conv2d(6, 16, 5)``, sigmoid,
    ``AvgPool2d(2, 2)``, then 120-84-10 fully connected layers with sigmoids
    between them. Changing ``c1_kernel`` or ``pool_size`` changes the flattened
    size, which is computed here.

    Args:
        activation: ``"sigmoid"`` (d2l), ``"relu"``, ``"tanh"`` or
            ``"scaled_tanh"``.
        pool: ``"avg"`` (d2l) or ``"max"``.
        c1_kernel: side of the C1 kernels (ablation 3 / 4 / 5).
        pool_size: pooling window and stride (1 means no pooling).
        input_size: side of the input images (28 for MNIST as stored).
        padding: zero padding of C1 (2 turns 28x28 into the paper's 32x32
            field).
    """
    act = _make(activation, _ACTIVATIONS, "activation")
    pool_cls = _make(pool, _POOLS, "pool")
    features = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=c1_kernel, padding=padding), act(),
        pool_cls(kernel_size=pool_size, stride=pool_size),
        nn.Conv2d(6, 16, kernel_size=5), act(),
        pool_cls(kernel_size=pool_size, stride=pool_size),
        nn.Flatten(),
    )  # fmt: skip
    with torch.no_grad():
        flat = features(torch.zeros(1, 1, input_size, input_size)).shape[1]
    return nn.Sequential(
        *features,
        nn.Linear(flat, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, 10),
    )  # fmt: skip


def lenet_modern() -> nn.Sequential:
    """The reproduction project's network: 32x32 input, ReLU, max-pool,
    120-84-10 linear layers.

    The seed ends with ``log_softmax`` and a negative log-likelihood loss;
    returning the logits and using ``nn.CrossEntropyLoss`` computes the same
    thing.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 6, 14, 14)
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 5, 5)
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )  # fmt: skip


def lenet_theano(*, nkerns: tuple[int, int] = (20, 50), hidden: int = 500) -> nn.Sequential:
    """The deeplearning.net tutorial's LeNet (hjimce's walkthrough): conv-pool-tanh twice, 500 tanh units.

    28x28 input, no padding: 20@24x24 -> pool 20@12x12 -> 50@8x8 -> pool 50@4x4 -> 800.
    """
    k1, k2 = nkerns
    return nn.Sequential(
        nn.Conv2d(1, k1, 5), nn.MaxPool2d(2), nn.Tanh(),  # (B, 20, 12, 12)
        nn.Conv2d(k1, k2, 5), nn.MaxPool2d(2), nn.Tanh(),  # (B, 50, 4, 4)
        nn.Flatten(),
        nn.Linear(k2 * 16, hidden), nn.Tanh(),
        nn.Linear(hidden, 10),
    )  # fmt: skip


class LeNet5Paper(nn.Module):
    """LeNet-5 exactly as published (LeCun et al. 1998, §II.B, Fig. 2).

    ======  ====================================  ==============  ======
    layer   module                                output          params
    ======  ====================================  ==============  ======
    C1      ``Conv2d(1, 6, 5)`` + f               (B, 6, 28, 28)     156
    S2      ``Subsampling(6)`` + f                (B, 6, 14, 14)      12
    C3      ``SparseConv2d(6, 5, Table I)`` + f   (B, 16, 10, 10)  1,516
    S4      ``Subsampling(16)`` + f               (B, 16, 5, 5)       32
    C5      ``Conv2d(16, 120, 5)`` + f            (B, 120, 1, 1)  48,120
    F6      ``Linear(120, 84)`` + f               (B, 84)         10,164
    output  ``RBFOutput`` (fixed Fig. 3 bitmaps)  (B, 10)              0
    ======  ====================================  ==============  ======

    f is :class:`~lenet_utils.layers.ScaledTanh`. Input: ``(B, 1, 32, 32)`` with
    background -0.1 and ink 1.175 (see :func:`lenet_utils.data.paper_scale`).
    Output: the RBF penalties ``y_i``; :meth:`predict` takes the smallest.
    Weights start uniform in ±2.4/F_i (Appendix C).

    Args:
        init: ``"paper"`` — uniform in ±2.4/F_i, as printed in Appendix C;
            ``"sqrt"`` — uniform in ±2.4/sqrt(F_i), the scale under which the
            paper's SDLM settings train (see
            :func:`~lenet_utils.layers.uniform_fan_in_` and chapter 5).
    """

    def __init__(self, *, init: str = "paper") -> None:
        super().__init__()
        if init not in ("paper", "sqrt"):
            raise ValueError(
                "init must be 'paper' (±2.4/F_i) or 'sqrt' (±2.4/sqrt(F_i)), "
                f"not {init!r}"
            )
        self.init = init
        self.C1 = nn.Conv2d(1, 6, 5)
        self.S2 = Subsampling(6)
        self.C3 = SparseConv2d(6, 5, C3_TABLE)
        self.S4 = Subsampling(16)
        self.C5 = nn.Conv2d(16, 120, 5)
        self.F6 = nn.Linear(120, 84)
        self.output = RBFOutput()
        self.f = ScaledTanh()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            uniform_fan_in_(m, sqrt=self.init == "sqrt")

    def features(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Every layer's output, in order (for shape walks and
        visualisation)."""
        if x.dim() != 4 or x.shape[1:] != (1, 32, 32):
            raise ValueError(
                "LeNet5Paper expects (B, 1, 32, 32) images, got "
                f"{tuple(x.shape)}"
            )
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        out["C1"] = x = self.f(self.C1(x))  # (B, 6, 28, 28)
        out["S2"] = x = self.f(self.S2(x))  # (B, 6, 14, 14)
        out["C3"] = x = self.f(self.C3(x))  # (B, 16, 10, 10)
        out["S4"] = x = self.f(self.S4(x))  # (B, 16, 5, 5)
        out["C5"] = x = self.f(self.C5(x)).flatten(1)  # (B, 120)
        out["F6"] = x = self.f(self.F6(x))  # (B, 84)
        out["output"] = self.output(x)  # (B, 10)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["output"]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels: the RBF unit with the smallest penalty."""
        return self(x).argmin(dim=1)


#: name -> builder, for the command line and the sweep specs.
MODELS = {"paper": LeNet5Paper, "d2l": lenet_d2l, "modern": lenet_modern, "theano": lenet_theano}


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a model by name (``paper``, ``d2l``, ``modern``, ``theano``) with keyword options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](**kwargs)  # type: ignore[operator]


def lenet_gap(*, channels: int = 32) -> nn.Sequential:
    """A small LeNet with a Network-in-Network head: global average pooling, then one linear layer.

    LeNet's first two convolutions as d2l has them (28x28 input padded by 2), with ReLU and
    max-pooling, then a 3x3 convolution and a 1x1 convolution (NiN's "mlpconv", Lin et al.
    2014) that keep the 10x10 map; each of the ``channels`` maps is averaged over its 100
    positions and one ``Linear(channels, 10)`` turns the averages into class scores. Because a
    class score is a weighted sum of *spatial averages*, the same weights spread over the
    positions give the class activation map (CAM, Zhou et al. 2016): see
    :func:`lenet_utils.explain.class_activation_map`. Not a network of the 1998 paper, whose C5,
    F6 and RBF output mix positions before any class is scored.

    Args:
        channels: maps of the last two convolutions (and inputs of the linear layer).
    """
    return nn.Sequential(
        # (B, 6, 14, 14)
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(),  # (B, 16, 10, 10)
        # (B, channels, 10, 10)
        nn.Conv2d(16, channels, 3, padding=1), nn.ReLU(),
        # (B, channels, 10, 10): NiN's 1x1 convolution
        nn.Conv2d(channels, channels, 1), nn.ReLU(),
        # (B, channels): global average pooling
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(channels, 10),  # (B, 10)
    )  # fmt: skip


__all__ += ["lenet_gap"]
MODELS["gap"] = lenet_gap


# --------------------------------------------------------------------------------------------
# The other networks of the paper's benchmark (§III.C, Fig. 9), trained with the 1998 recipe


def place_code_output() -> RBFOutput:
    """Ten Euclidean RBF units on ten outputs with the fixed "place code" prototypes: +1 at the
    class's own output, -1 elsewhere.

    ``y_i = sum_j (x_j - w_ij)^2`` is then the squared error to the ±1 target of class ``i``, so
    the MAP criterion (Eq. 9) on these penalties is the squared error of the classical
    networks (LeNet-1, LeNet-4, the fully connected nets) plus the paper's competitive term,
    and the 1998 recipe (:mod:`lenet_utils.paper`) trains them unchanged. The paper says only
    that these networks have "10 output units"; the criterion is our choice.
    """
    return RBFOutput(2 * torch.eye(10) - 1)  # (10, 10)


#: LeNet-1's second convolution: which of the 4 subsampled maps feed each of the 12 maps. The
#: paper gives no table. 20 connected kernels (4 single maps, the 6 pairs, 2 pairs again) make
#: 2,578 free parameters and about 98,500 connections, the paper's "about 2,600" and "about
#: 100,000"; which maps are paired is our guess.
LENET1_TABLE: tuple[tuple[int, ...], ...] = (
    (0,), (1,), (2,), (3,),
    (0, 1), (1, 2), (2, 3), (0, 3), (0, 2), (1, 3),
    (0, 1), (2, 3),
)  # fmt: skip

#: LeNet-4's C3: which of the 8 subsampled maps feed each of the 16 maps (no table in the
#: paper). Three maps each, taken cyclically (our guess), gives 262,406 connections, the paper's
#: "about 260,000"; see :func:`lenet4` for the parameter count.
LENET4_TABLE: tuple[tuple[int, ...], ...] = tuple((i, (i + 1) % 8, (i + 2) % 8) for i in range(8)) + tuple(
    (i, (i + 3) % 8, (i + 5) % 8) for i in range(8)
)


class PairedSubsampling(Subsampling):
    """LeNet-4's S2: 8 subsampling maps "connected in pairs" to the 4 first-layer maps (§III.C).

    Each input map's 2x2 window sums feed two output maps, each with its own coefficient and
    bias (:class:`~lenet_utils.layers.Subsampling`'s rule), so ``(B, channels // 2, H, W)`` in,
    ``(B, channels, H/2, W/2)`` out, ``2 * channels`` parameters.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = self.channels // 2
        if x.dim() != 4 or x.shape[1] != c_in:
            raise ValueError(f"PairedSubsampling({self.channels}) expects (B, {c_in}, H, W), got {tuple(x.shape)}")
        k = self.kernel_size
        s = F.avg_pool2d(x, k).repeat_interleave(2, dim=1) * (k * k)  # (B, channels, H/2, W/2): window sums
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _init(model: nn.Module, init: str) -> nn.Module:
    if init not in ("paper", "sqrt"):
        raise ValueError(f"init must be 'paper' (±2.4/F_i) or 'sqrt' (±2.4/sqrt(F_i)), not {init!r}")
    for m in model.modules():
        uniform_fan_in_(m, sqrt=init == "sqrt")
    return model


def lenet1(*, init: str = "paper") -> nn.Sequential:
    """LeNet-1 (paper §III.C): 16x16 digits centred in a 28x28 input.

    The paper's digits "subsampled to 16x16" are read as MNIST's size-normalised digit (its 20x20
    box) brought to 16x16, not the whole 28x28 frame (input ``"crop16in28"`` of
    :data:`PAPER_NETS`; the choice was made on held-out training digits, ``data/fig9/README.md``).

    ======  ==========================================  ===============  ======
    layer   module                                      output           params
    ======  ==========================================  ===============  ======
    C1      ``Conv2d(1, 4, 5)`` + f                     (B, 4, 24, 24)      104
    S2      ``Subsampling(4)`` + f                      (B, 4, 12, 12)        8
    C3      ``SparseConv2d(4, 5, LENET1_TABLE)`` + f    (B, 12, 8, 8)       512
    S4      ``Subsampling(12)`` + f                     (B, 12, 4, 4)        24
    F5      ``Linear(192, 10)`` + f                     (B, 10)           1,930
    output  :func:`place_code_output`                   (B, 10)               0
    ======  ==========================================  ===============  ======

    2,578 parameters ("about 2,600" in the paper), 98,542 connections ("about 100,000
    multiply-adds"). Subsampling and the squashing f are LeNet-5's (the paper describes
    LeNet-1 only by its maps). Output: RBF penalties, lower is better.
    """
    f = ScaledTanh
    net = nn.Sequential(
        nn.Conv2d(1, 4, 5), f(), Subsampling(4), f(),  # (B, 4, 12, 12)
        SparseConv2d(4, 5, LENET1_TABLE), f(), Subsampling(12), f(),  # (B, 12, 4, 4)
        nn.Flatten(), nn.Linear(192, 10), f(),  # (B, 10)
        place_code_output(),
    )  # fmt: skip
    return _init(net, init)


def lenet4(*, init: str = "paper") -> nn.Sequential:
    """LeNet-4 (paper §III.C): 32x32 input, as LeNet-5's.

    ======  ==========================================  ===============  ======
    layer   module                                      output           params
    ======  ==========================================  ===============  ======
    C1      ``Conv2d(1, 4, 5)`` + f                     (B, 4, 28, 28)      104
    S2      ``PairedSubsampling(8)`` + f                (B, 8, 14, 14)       16
    C3      ``SparseConv2d(8, 5, LENET4_TABLE)`` + f    (B, 16, 10, 10)   1,216
    S4      ``Subsampling(16)`` + f                     (B, 16, 5, 5)        32
    F5      ``Linear(400, 120)`` + f                    (B, 120)         48,120
    F6      ``Linear(120, 10)`` + f                     (B, 10)           1,210
    output  :func:`place_code_output`                   (B, 10)               0
    ======  ==========================================  ===============  ======

    The paper: "4 first-level feature maps, followed by 8 subsampling maps connected in pairs
    to each first-layer feature map, then 16 feature maps, followed by 16 subsampling maps,
    followed by a fully connected layer with 120 units, followed by the output layer (10
    units)", "about 260,000 connections" and "about 17,000 free parameters". Read literally,
    the 120 units fully connected to 16 maps of 5x5 alone hold 48,120 parameters, so both
    numbers cannot hold: this reading matches the connections (262,406) and has 50,698
    parameters. C3's table is our guess (:data:`LENET4_TABLE`). The other reading, F5 sparse with
    the paper's parameter count (17,698), is :func:`lenet4_sparse`; the held-out study comparing
    the two (``lenet4-sparse`` of :data:`STUDY_NETS`) is in ``data/fig9/README.md``.
    """
    f = ScaledTanh
    net = nn.Sequential(
        nn.Conv2d(1, 4, 5), f(), PairedSubsampling(8), f(),  # (B, 8, 14, 14)
        SparseConv2d(8, 5, LENET4_TABLE), f(), Subsampling(16), f(),  # (B, 16, 5, 5)
        nn.Flatten(), nn.Linear(400, 120), f(),  # (B, 120)
        nn.Linear(120, 10), f(),  # (B, 10)
        place_code_output(),
    )  # fmt: skip
    return _init(net, init)



#: F5 of :func:`lenet4_sparse`: which 5 of the 16 S4 maps feed each of the 120 units (the paper
#: gives no table; ours is a guess). Eight patterns of 5 offsets mod 16, each taken at every
#: shift ``s``: unit ``16 b + s`` sees maps ``(s + o) % 16`` for ``o`` in pattern ``b``. Patterns
#: 0 to 5 are the progressions ``0, d, 2d, 3d, 4d`` for ``d`` = 1, 2, 3, 5, 6, 7 (stride 4 would
#: repeat a map), 6 and 7 the irregular sets (0, 1, 3, 7, 12) and (0, 1, 4, 9, 11) (no difference
#: repeats). Patterns 0 to 6 take all 16 shifts (112 units, each map used 35 times); pattern 7
#: only the 8 even shifts (units 112 to 119), which adds 2 uses to each even map and 3 to each
#: odd one. So every map feeds 37 (even maps) or 38 (odd maps) units, each unit's 5 maps are
#: distinct, and no two units share the same set (no pattern is a shift of another). Each unit's
#: maps are listed sorted.
_LENET4_F5_PATTERNS: tuple[tuple[int, ...], ...] = (
    *(tuple(k * d % 16 for k in range(5)) for d in (1, 2, 3, 5, 6, 7)),
    (0, 1, 3, 7, 12), (0, 1, 4, 9, 11),
)  # fmt: skip
LENET4_F5_TABLE: tuple[tuple[int, ...], ...] = tuple(
    tuple(sorted((s + o) % 16 for o in pattern))
    for b, pattern in enumerate(_LENET4_F5_PATTERNS)
    for s in range(0, 16, 1 if b < 7 else 2)
)


def lenet4_sparse(*, init: str = "paper") -> nn.Sequential:
    """LeNet-4 read for the paper's "about 17,000 free parameters": F5's 120 units each see only
    5 of the 16 S4 maps (:data:`LENET4_F5_TABLE`, our guess), everything else as :func:`lenet4`.

    ======  ==========================================  ===============  ======
    layer   module                                      output           params
    ======  ==========================================  ===============  ======
    C1      ``Conv2d(1, 4, 5)`` + f                     (B, 4, 28, 28)      104
    S2      ``PairedSubsampling(8)`` + f                (B, 8, 14, 14)       16
    C3      ``SparseConv2d(8, 5, LENET4_TABLE)`` + f    (B, 16, 10, 10)   1,216
    S4      ``Subsampling(16)`` + f                     (B, 16, 5, 5)        32
    F5      ``SparseConv2d(16, 5, LENET4_F5_TABLE)``    (B, 120)         15,120
            + f, flattened
    F6      ``Linear(120, 10)`` + f                     (B, 10)           1,210
    output  :func:`place_code_output`                   (B, 10)               0
    ======  ==========================================  ===============  ======

    17,698 parameters (the paper's "about 17,000") and 229,406 connections
    (:func:`lenet_utils.summary.summarize`; the paper's "about 260,000"): this reading matches
    the parameters, not the connections, the mirror image of :func:`lenet4` (50,698 and
    262,406). Same 32x32 input as :func:`lenet4`. Not a row of Fig. 9: the held-out study asks
    whether the smaller F5 overfits less; after 20 passes it does not (1.40% held-out error
    against :func:`lenet4`'s 1.32%, ``data/fig9/README.md``).
    """
    f = ScaledTanh
    net = nn.Sequential(
        nn.Conv2d(1, 4, 5), f(), PairedSubsampling(8), f(),  # (B, 8, 14, 14)
        SparseConv2d(8, 5, LENET4_TABLE), f(),
        Subsampling(16), f(),  # (B, 16, 5, 5)
        SparseConv2d(16, 5, LENET4_F5_TABLE), f(),
        nn.Flatten(),  # (B, 120)
        nn.Linear(120, 10), f(),  # (B, 10)
        place_code_output(),
    )  # fmt: skip
    return _init(net, init)

def fc_net(hidden: tuple[int, ...], *, side: int = 28, init: str = "paper") -> nn.Sequential:
    """A fully connected net of the benchmark, ``side x side - hidden... - 10`` (paper §III.C).

    Every layer is ``Linear`` + the scaled tanh; the 10 outputs feed :func:`place_code_output`,
    so the 1998 recipe trains it like LeNet-1 and LeNet-4. E.g. ``fc_net((300,))`` is
    28x28-300-10 (238,510 parameters), ``fc_net((500, 150))`` 28x28-500-150-10.
    """
    sizes = (side * side, *hidden, 10)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), ScaledTanh()]
    return _init(nn.Sequential(*layers, place_code_output()), init)


#: The networks :mod:`lenet_utils.paper` trains besides LeNet-5, by name: ``(builder(init=...),
#: input)``. ``input`` names how :func:`lenet_utils.paper.mnist_tensors` prepares the digits:
#: ``"pad32"`` (LeNet-5's 32x32), ``"28"`` (as stored), ``"crop16in28"`` (the digit's 20x20 box
#: subsampled to 16x16, centred in 28x28), ``"deslant20"`` (deslanted, then cropped to the 20x20
#: box of its ink); :func:`lenet_utils.paper.paper_inputs` lists them all.
PAPER_NETS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "lenet1": (lenet1, "crop16in28"),
    "lenet4": (lenet4, "pad32"),
    "fc-300": (partial(fc_net, (300,)), "28"),
    "fc-1000": (partial(fc_net, (1000,)), "28"),
    "fc-300-100": (partial(fc_net, (300, 100)), "28"),
    "fc-500-150": (partial(fc_net, (500, 150)), "28"),
    "fc20-300": (partial(fc_net, (300,), side=20), "deslant20"),
}

#: What the held-out study (:func:`lenet_utils.fig9.fc_study.fc_validation`, ``python -m
#: lenet_utils fig9 --fc-validation``) and :func:`lenet_utils.paper.train` can train:
#: :data:`PAPER_NETS` and readings that are no row of Fig. 9, in the same form. ``"lenet4-sparse"``
#: is :func:`lenet4_sparse` on LeNet-4's input. Kept out of :data:`PAPER_NETS` so that what lists
#: the benchmark's nets (``train-paper --model``, Fig. 9's rows) stays as it is.
STUDY_NETS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    **PAPER_NETS,
    "lenet4-sparse": (lenet4_sparse, "pad32"),
}

__all__ += [
    "LENET1_TABLE", "LENET4_F5_TABLE", "LENET4_TABLE", "PAPER_NETS", "STUDY_NETS", "PairedSubsampling",
    "fc_net", "lenet1", "lenet4", "lenet4_sparse", "place_code_output",
]  # fmt: skip
