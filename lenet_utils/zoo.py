"""From LeNet to ResNet: the networks that followed LeNet-5, as small typed builders.

Every builder is keyword-only and returns a plain ``nn.Module`` that maps ``(B, C, H, W)``
images to ``(B, num_classes)`` scores (softmax in the loss, as for d2l's LeNet). Each comes
in two configurations, one argument apart:

* ``original=False`` (default): **scaled to run here** -- 28x28 single-channel input
  (Fashion-MNIST / MNIST as stored), every width divided by 8 (:data:`WIDTH_DIVISOR`; the
  ``width_divisor`` argument changes it), the same depth, the stem adapted so that a 28x28
  image is not reduced to a few pixels by the first layer. One 10-epoch training run on
  Fashion-MNIST costs minutes of one CPU core, not hours.
* ``original=True``: the configuration of Dive into Deep Learning (Zhang et al. 2023,
  ch. 8), the one d2l trains on Fashion-MNIST resized to 224x224 (AlexNet, VGG-11, NiN) or
  96x96 (GoogLeNet, ResNet-18), for readers with a GPU. ``in_channels=3, num_classes=1000``
  gives the ImageNet networks whose parameter counts the papers report.

==================  =================================  ==============================================
name                paper                              what it adds to LeNet
==================  =================================  ==============================================
``lenet``           LeCun et al. 1998 (d2l's version)  (the baseline: sigmoid, average pooling)
``alexnet``         Krizhevsky et al. 2012             depth, ReLU, dropout, overlapping max-pooling
``vgg``             Simonyan & Zisserman 2015          blocks of 3x3 convolutions
``nin``             Lin et al. 2014                    1x1 convolutions, global average pooling
``googlenet``       Szegedy et al. 2015                the Inception block (parallel branches)
``resnet``          He et al. 2016; Ioffe & Szegedy    residual blocks, batch normalisation
``plainD[_bn]``     He et al. 2016, §4.2               plain nets of depth D = 8, 14, 20 (+ BN)
``residualD[_bn]``  He et al. 2016, §4.2               the same with identity shortcuts
==================  =================================  ==============================================

:data:`MODELS` maps these names (and the original configurations, ``alexnet_224``,
``vgg11_224``, ``nin_224``, ``googlenet_96``, ``resnet18_96``, which upsample the 28x28
input on the fly) to builders; :func:`build` builds one by name; :func:`count_macs` counts
the multiply-accumulates of one forward pass; :func:`receptive_field` measures which input
pixels one output unit sees.

References (keys of the book's ``references.bib``): krizhevsky2012imagenet (AlexNet),
simonyan2015very (VGG), lin2014network (NiN), szegedy2015going (GoogLeNet), he2016deep
(ResNet), ioffe2015batch (batch normalisation), zhang2023d2l (d2l's configurations, ch. 8).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .models import count_parameters, lenet_d2l
from .summary import record_calls

__all__ = [
    "MODELS",
    "ORIGINALS",
    "Inception",
    "Residual",
    "Resize",
    "TwoConvBlock",
    "alexnet",
    "build",
    "count_macs",
    "deep_net",
    "googlenet",
    "nin",
    "nin_block",
    "profile",
    "receptive_field",
    "resnet",
    "vgg",
    "vgg_block",
]

#: The scaled versions divide every width of d2l's configuration by this (``width_divisor``).
WIDTH_DIVISOR = 8


def _w(channels: int, divisor: int) -> int:
    """A width of d2l's configuration divided by ``divisor`` (at least 1)."""
    return max(1, channels // divisor)


def _divisor(original: bool, width_divisor: int) -> int:
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be a positive integer, got {width_divisor}")
    return 1 if original else width_divisor


# --------------------------------------------------------------------------------------------
# AlexNet


def alexnet(
    *,
    original: bool = False,
    width_divisor: int = WIDTH_DIVISOR,
    in_channels: int = 1,
    num_classes: int = 10,
) -> nn.Sequential:
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012), as d2l writes it (§8.1).

    Five convolutions and three fully connected layers, ReLU after each (instead of LeNet's
    sigmoid: no saturation for positive inputs), max-pooling over *overlapping* 3x3 windows
    with stride 2 (§3.4 of the paper), dropout 0.5 before each hidden fully connected layer
    (§4.2). Like d2l, no local response normalisation and no split over two GPUs (the
    paper's grouped convolutions); the paper's data augmentation (crops, flips, PCA
    lighting) is not part of the model.

    ``original=True``: d2l's network for 224x224 inputs: ``Conv(96, 11, stride 4)`` ->
    54x54 maps, pool -> 26, ``Conv(256, 5)``, pool -> 12, three 3x3 convs (384, 384, 256),
    pool -> 5, then 6400 -> 4096 -> 4096 -> classes. The paper's own network (two GPUs, so
    conv2, conv4 and conv5 see half the maps each; 6x6x256 = 9216 inputs to FC6) has 60
    million parameters.

    Scaled (``original=False``), for 28x28 inputs: the first convolution is 5x5 with stride
    1 and padding 2 instead of 11x11 with stride 4 (which would leave 5x5 maps); every width
    divided by 8 (12, 32, 48, 48, 32 channels; 512 hidden units); depth unchanged. Maps:
    28 -> pool 13 -> 13 -> pool 6 -> 6 -> pool 2, so 32 x 2 x 2 = 128 features.
    """
    o, d = original, _divisor(original, width_divisor)
    widths = (96, 256, 384, 384, 256, 4096)
    c1, c2, c3, c4, c5, hidden = (_w(c, d) for c in widths)
    stem = (
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1) if o
        else nn.Conv2d(in_channels, c1, kernel_size=5, padding=2)
    )  # fmt: skip
    # side of the last maps: 224 -> 54 -> 26 -> 12 -> 5 | 28 -> 13 -> 6 -> 2
    side = 5 if o else 2
    return nn.Sequential(
        stem, nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 96, 26, 26) | 12@13x13
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 12, 12) | 32@6x6
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 5, 5) | (B, 32, 2, 2)
        nn.Flatten(),
        nn.Linear(c5 * side * side, hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(hidden, num_classes),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# VGG

#: VGG-11 (configuration A of Simonyan & Zisserman 2015, Table 1): (convolutions, channels)
#: per block, as d2l's ``conv_arch`` (§8.2).
VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(
    num_convs: int,
    in_channels: int,
    out_channels: int,
    *,
    first_padding: int = 1,
) -> nn.Sequential:
    """A VGG block (Simonyan & Zisserman 2015, §2.1): ``num_convs`` 3x3 convolutions with
    padding 1 (the size is kept), each followed by ReLU, then a 2x2 max-pool with stride 2
    (the size is halved). Two stacked 3x3 convolutions see a 5x5 window, three a 7x7 one,
    with fewer weights (2 x 9 C^2 against 25 C^2) and one more non-linearity (§2.3).
    ``first_padding`` pads the first convolution differently (the scaled VGG pads 28 to 32).
    """
    layers: list[nn.Module] = []
    for i in range(num_convs):
        pad = first_padding if i == 0 else 1
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=pad)
        layers += [conv, nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(
    *,
    original: bool = False,
    width_divisor: int = WIDTH_DIVISOR,
    arch: Sequence[tuple[int, int]] = VGG11,
    in_channels: int = 1,
    num_classes: int = 10,
) -> nn.Sequential:
    """VGG (Simonyan & Zisserman 2015), VGG-11 by default, as d2l writes it (§8.2).

    Five blocks of 3x3 convolutions (:func:`vgg_block`), each halving the resolution, then
    two hidden fully connected layers of 4096 units with dropout 0.5, then the classes.

    ``original=True``: d2l's VGG-11 for 224x224 inputs (224 -> 7 after five halvings; 7 x 7
    x 512 = 25,088 features); with 3 channels and 1000 classes it is the paper's
    configuration A, 133 million parameters (Table 2). (d2l itself trains a copy whose
    convolutions have a quarter of these widths, at 224x224, with the same 4096-unit layers.)

    Scaled (``original=False``), for 28x28 inputs: every width divided by 8 (8, 16, 32, 32,
    64, 64, 64, 64 channels; 512 hidden units); depth unchanged (8 convolutions + 3 fully
    connected layers); the first convolution pads by 3 instead of 1, so that the 28x28 image
    gives 32x32 maps (as LeNet pads 28 to the paper's 32) and the five halvings end at 1x1
    (32 -> 16 -> 8 -> 4 -> 2 -> 1): 64 features.
    """
    o, d = original, _divisor(original, width_divisor)
    blocks, c_in = [], in_channels
    for i, (num_convs, channels) in enumerate(arch):
        c_out = _w(channels, d)
        pad = 1 if (o or i > 0) else 3
        blocks.append(vgg_block(num_convs, c_in, c_out, first_padding=pad))
        c_in = c_out
    side = 224 // 2 ** len(arch) if o else 32 // 2 ** len(arch)
    hidden = _w(4096, d)
    return nn.Sequential(
        *blocks,  # (B, 512, 7, 7) | (B, 64, 1, 1)
        nn.Flatten(),
        nn.Linear(c_in * side * side, hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(hidden, num_classes),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# NiN


def nin_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    padding: int,
) -> nn.Sequential:
    """A Network-in-Network block (Lin, Chen & Yan 2014, §3.1, "mlpconv"): one convolution
    followed by two 1x1 convolutions, ReLU after each. A 1x1 convolution is a fully
    connected layer applied at every pixel, across channels: a small MLP slid over the image.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


def nin(
    *,
    original: bool = False,
    width_divisor: int = WIDTH_DIVISOR,
    in_channels: int = 1,
    num_classes: int = 10,
) -> nn.Sequential:
    """Network in Network (Lin, Chen & Yan 2014), as d2l writes it (§8.3).

    Four :func:`nin_block` s with AlexNet's kernel sizes, overlapping 3x3 max-pools between
    them, dropout 0.5, and no fully connected layer at all: the last block has one channel
    per class, and *global average pooling* (§3.2) turns each map into that class's score.

    ``original=True``: d2l's network for 224x224 inputs (blocks of 96, 256, 384 channels,
    kernels 11 (stride 4), 5, 3; 224 -> 54 -> 26 -> 12 -> 5). The paper's own experiments
    were on CIFAR-10/100, SVHN and MNIST, with three mlpconv layers; d2l's AlexNet-shaped
    ImageNet variant is the one followed here.

    Scaled (``original=False``), for 28x28 inputs: the first block's convolution is 5x5 with
    stride 1 and padding 2 instead of 11x11 with stride 4; widths divided by 8 (12, 32, 48);
    depth unchanged (12 convolutions). Maps: 28 -> pool 13 -> 13 -> pool 6 -> 6 -> pool 2 -> 2.
    """
    o, d = original, _divisor(original, width_divisor)
    c1, c2, c3 = (_w(c, d) for c in (96, 256, 384))
    first = (
        nin_block(in_channels, c1, 11, 4, 0) if o
        else nin_block(in_channels, c1, 5, 1, 2)
    )  # fmt: skip
    return nn.Sequential(
        first, nn.MaxPool2d(3, stride=2),  # (B, 96, 26, 26) | (B, 12, 13, 13)
        nin_block(c1, c2, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(3, stride=2),  # (B, 256, 12, 12) | 32@6x6
        nin_block(c2, c3, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2),  # (B, 384, 5, 5) | 48@2x2
        nn.Dropout(p=0.5),
        nin_block(c3, num_classes, kernel_size=3, stride=1, padding=1),
        # (B, 10, 5, 5) | (B, 10, 2, 2)
        nn.AdaptiveAvgPool2d((1, 1)),  # global average pooling: (B, 10, 1, 1)
        nn.Flatten(),  # (B, 10)
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# GoogLeNet


class Inception(nn.Module):
    """The Inception block (Szegedy et al. 2015, §4 and Fig. 2b), as d2l writes it (§8.4).

    Four branches see the same input and their outputs are concatenated along the channels:
    a 1x1 convolution (``c1`` maps); a 1x1 "reduction" to ``c2[0]`` maps then a 3x3
    convolution (``c2[1]``); a 1x1 reduction to ``c3[0]`` then a 5x5 convolution
    (``c3[1]``); a 3x3 max-pool (stride 1) then a 1x1 convolution (``c4``). ReLU after every
    convolution. The block looks at several scales at once; the 1x1 reductions keep the
    3x3 and 5x5 convolutions cheap. Output: ``c1 + c2[1] + c3[1] + c4`` channels, same size.
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c2: tuple[int, int],
        c3: tuple[int, int],
        c4: int,
    ) -> None:
        super().__init__()
        self.b1 = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=1), nn.ReLU(),
        )  # fmt: skip
        self.b2 = nn.Sequential(
            nn.Conv2d(in_channels, c2[0], kernel_size=1), nn.ReLU(),
            nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.b3 = nn.Sequential(
            nn.Conv2d(in_channels, c3[0], kernel_size=1), nn.ReLU(),
            nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2), nn.ReLU(),
        )  # fmt: skip
        self.b4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, c4, kernel_size=1), nn.ReLU(),
        )  # fmt: skip
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b1(x), self.b2(x), self.b3(x), self.b4(x)]
        return torch.cat(branches, dim=1)  # (B, c1 + c2 + c3 + c4, H, W)


#: GoogLeNet's nine Inception blocks (Szegedy et al. 2015, Table 1; d2l §8.4):
#: (c1, (c2 reduce, c2), (c3 reduce, c3), c4); a max-pool follows blocks 3b and 4e.
INCEPTIONS = (
    (64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64),  # 3a, 3b
    (192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64), (128, (128, 256), (24, 64), 64),
    (112, (144, 288), (32, 64), 64), (256, (160, 320), (32, 128), 128),  # 4a-4e
    (256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128),  # 5a, 5b
)  # fmt: skip


def googlenet(
    *, original: bool = False, width_divisor: int = WIDTH_DIVISOR, in_channels: int = 1, num_classes: int = 10
) -> nn.Sequential:
    """GoogLeNet (Szegedy et al. 2015), as d2l writes it (§8.4): a stem of three convolutions,
    nine :class:`Inception` blocks (two, five, two) with max-pools between the groups, global
    average pooling, one fully connected layer. Like d2l: no auxiliary classifiers, no local
    response normalisation, no dropout before the classifier.

    ``original=True``: d2l's network, which d2l trains at 96x96: stem ``Conv(64, 7, stride
    2)``, pool, ``Conv(64, 1)``, ``Conv(192, 3)``, pool (96 -> 48 -> 24 -> 12), Inception 3a-3b
    at 12x12, pool, 4a-4e at 6x6, pool, 5a-5b at 3x3. With 3 channels and 1000 classes its
    parameter count is that of the paper's Table 1 (about 6.8 million, biases aside).

    Scaled (``original=False``), for 28x28 inputs: the stem's 7x7 stride-2 convolution is a
    3x3 stride-1 one (28 -> pool 14 -> pool 7), so the Inception groups run at 7x7, 4x4 and
    2x2 (d2l at 96: 12, 6, 3); every width divided by 8 (the first block 3a has 8, 12 -> 16,
    2 -> 4 and 4 channels in its branches); depth unchanged (22 layers with parameters on
    the longest path).
    """
    o, d = original, _divisor(original, width_divisor)
    c64, c192 = _w(64, d), _w(192, d)
    stem1 = nn.Conv2d(in_channels, c64, kernel_size=7, stride=2, padding=3) if o else nn.Conv2d(
        in_channels, c64, kernel_size=3, padding=1)  # fmt: skip
    layers: list[nn.Module] = [
        stem1, nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # (B, 64, 24, 24) | (B, 8, 14, 14)
        nn.Conv2d(c64, c64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(c64, c192, kernel_size=3, padding=1), nn.ReLU(),
    ]
    layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # (B, 192, 12, 12) | (B, 24, 7, 7)
    c_in = c192
    for i, (c1, c2, c3, c4) in enumerate(INCEPTIONS):
        block = Inception(c_in, _w(c1, d), (_w(c2[0], d), _w(c2[1], d)), (_w(c3[0], d), _w(c3[1], d)), _w(c4, d))
        layers.append(block)
        c_in = block.out_channels
        if i in (1, 6):  # after 3b and 4e
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # 12 -> 6 -> 3 | 14 -> 7 -> 4
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c_in, num_classes)]  # (B, 1024) | (B, 128)
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# ResNet


class Residual(nn.Module):
    """The residual block of ResNet-18 (He et al. 2016, §3.2, Fig. 2), as d2l writes it (§8.6).

    ``y = ReLU(F(x) + shortcut(x))`` with ``F = BN(conv3x3(ReLU(BN(conv3x3(x)))))``: the two
    convolutions learn only the *residual* ``F(x) = H(x) - x`` of the mapping ``H`` the block
    should compute, and an identity is as easy as ``F = 0``. Batch normalisation (Ioffe &
    Szegedy 2015) standardises each channel over the batch before the non-linearity. When
    the block changes the width or halves the size (``stride=2``), the shortcut is a 1x1
    convolution with the same stride (the paper's "projection", option B, §3.3).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
    ) -> None:
        super().__init__()
        c_in, c_out = in_channels, out_channels
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv3 = None
        if stride != 1 or c_in != c_out:
            self.conv3 = nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / s, W / s)
        y = self.bn2(self.conv2(y))
        shortcut = x if self.conv3 is None else self.conv3(x)
        return F.relu(y + shortcut)


def resnet(
    *, original: bool = False, width_divisor: int = WIDTH_DIVISOR, in_channels: int = 1, num_classes: int = 10
) -> nn.Sequential:
    """ResNet-18 (He et al. 2016, Table 1), as d2l writes it (§8.6): a stem, four stages of
    two :class:`Residual` blocks (64, 128, 256, 512 channels; every stage but the first halves
    the size), global average pooling, one fully connected layer. 17 convolutions + 1 fully
    connected layer = 18 layers (the 1x1 shortcuts aside). Like d2l, the convolutions keep
    their biases (the paper's have none, BN's shift does their job).

    ``original=True``: d2l's network, which d2l trains at 96x96: stem ``Conv(64, 7, stride
    2)`` + BN + ReLU + 3x3 max-pool with stride 2 (96 -> 48 -> 24), stages at 24, 12, 6, 3.
    With 3 channels, 1000 classes and 224x224 inputs it is the paper's 18-layer network, 1.8
    billion multiply-adds (Table 1).

    Scaled (``original=False``), for 28x28 inputs: the stem's 7x7 stride-2 convolution is a
    3x3 stride-1 one (28 -> pool 14), stages at 14, 7, 4, 2; every width divided by 8 (8, 16,
    32, 64); depth unchanged.
    """
    o, d = original, _divisor(original, width_divisor)
    widths = [_w(c, d) for c in (64, 128, 256, 512)]
    stem = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3) if o else nn.Conv2d(
        in_channels, widths[0], kernel_size=3, padding=1)  # fmt: skip
    layers: list[nn.Module] = [
        stem, nn.BatchNorm2d(widths[0]), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # (B, 64, 24, 24) | (B, 8, 14, 14)
    ]  # fmt: skip
    c_in = widths[0]
    for stage, c in enumerate(widths):
        stride = 1 if stage == 0 else 2
        layers += [Residual(c_in, c, stride=stride), Residual(c, c)]  # 24, 12, 6, 3 | 14, 7, 4, 2
        c_in = c
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c_in, num_classes)]  # (B, 512) | (B, 64)
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# Plain and residual networks of increasing depth


class TwoConvBlock(nn.Module):
    """Two 3x3 convolutions, with or without an identity shortcut around them (He et al. 2016,
    §4.2, the CIFAR-10 networks), with or without batch normalisation.

    ``shortcut=True``: ``y = ReLU(F(x) + x)``; ``shortcut=False``: ``y = ReLU(F(x))``, the
    "plain" counterpart with exactly the same layers and parameters. ``batch_norm=True``:
    ``F = BN(conv(ReLU(BN(conv(x)))))`` and the convolutions have no bias (BN's shift
    replaces it), as in the paper; ``batch_norm=False``: ``F = conv(ReLU(conv(x)))`` with
    biases. When the block halves the size and doubles the width (``stride=2``), the
    shortcut subsamples ``x`` and pads the new channels with zeros -- the paper's option A,
    which adds no parameter, so plain and residual networks stay the same size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        shortcut: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.shortcut, self.stride = shortcut, stride
        self.extra_channels = out_channels - in_channels
        c_in, c_out, bias = in_channels, out_channels, not batch_norm
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / s, W / s)
        y = self.bn2(self.conv2(y))
        if self.shortcut:
            s = x[:, :, :: self.stride, :: self.stride]
            if self.extra_channels:  # option A: zero channels
                s = F.pad(s, (0, 0, 0, 0, 0, self.extra_channels))
            y = y + s
        return F.relu(y)


def deep_net(
    *,
    depth: int = 20,
    shortcut: bool = True,
    batch_norm: bool = True,
    original: bool = False,
    in_channels: int = 1,
    num_classes: int = 10,
) -> nn.Sequential:
    """The plain and residual networks of He et al. 2016, §4.2 (their CIFAR-10 experiment),
    for the degradation problem: ``depth = 6n + 2`` weighted layers -- a 3x3 convolution,
    three stages of ``n`` :class:`TwoConvBlock` s (the second and third start with stride 2
    and double the width), global average pooling, one fully connected layer.

    ``shortcut=False`` gives the plain network, ``True`` the residual one (identical layers
    and parameter counts); ``batch_norm`` adds BN after every convolution (the paper always
    has it; without it the experiment separates what shortcuts do from what BN does).

    ``original=True``: the paper's networks, widths 16, 32, 64 and stages at 32, 16, 8 for
    CIFAR's 32x32 images (with 3 channels, depth 20 has the paper's 0.27 million parameters,
    Table 6).

    Scaled (``original=False``), for 28x28 inputs: half the paper's widths (8, 16, 32) and a
    first convolution with stride 2, so the stages run at 14, 7, 4; depths 8, 14, 20 (n = 1,
    2, 3; the paper goes from 20 to 110).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth}")
    n = (depth - 2) // 6
    widths, stem_stride = ((16, 32, 64), 1) if original else ((8, 16, 32), 2)
    stem = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=stem_stride, padding=1, bias=not batch_norm)
    layers: list[nn.Module] = [stem]
    layers += [nn.BatchNorm2d(widths[0])] if batch_norm else []
    layers.append(nn.ReLU())  # (B, 16, 32, 32) | (B, 8, 14, 14)
    c_in = widths[0]
    for stage, c in enumerate(widths):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(TwoConvBlock(c_in, c, stride=stride, shortcut=shortcut, batch_norm=batch_norm))
            c_in = c  # 32, 16, 8 | 14, 7, 4
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c_in, num_classes)]  # (B, 64 | 32) -> (B, 10)
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# The original sizes, on 28x28 data


class Resize(nn.Module):
    """Bilinear upsampling of a batch to ``size x size`` on the device, inside the model.

    d2l resizes every Fashion-MNIST image to 224x224 (or 96x96) when it loads them; storing
    60,000 such images would take 12 GB, so the original configurations here take the
    28x28 images and upsample each batch on the fly (``F.interpolate``, bilinear: close to,
    not bit-identical with, torchvision's ``Resize`` on PIL images).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)  # (B, C, s, s)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _at(size: int, builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The original configuration of ``builder``, taking 28x28 images resized to ``size``."""

    def make(**kwargs: Any) -> nn.Module:
        return nn.Sequential(Resize(size), builder(original=True, **kwargs))

    make.__name__ = f"{builder.__name__}_{size}"
    make.__doc__ = f"{builder.__name__}(original=True) on inputs resized to {size}x{size} (d2l's training size)."
    return make


#: The original configurations, for a GPU: ``python -m lenet_utils train --model resnet18_96 --device cuda``.
ORIGINALS: dict[str, Callable[..., nn.Module]] = {
    "alexnet_224": _at(224, alexnet),
    "vgg11_224": _at(224, vgg),
    "nin_224": _at(224, nin),
    "googlenet_96": _at(96, googlenet),
    "resnet18_96": _at(96, resnet),
}


def _depth_nets() -> dict[str, Callable[..., nn.Module]]:
    nets: dict[str, Callable[..., nn.Module]] = {}
    for depth in (8, 14, 20):
        for kind, shortcut in (("plain", False), ("residual", True)):
            for suffix, bn in (("", False), ("_bn", True)):
                nets[f"{kind}{depth}{suffix}"] = functools.partial(deep_net, depth=depth, shortcut=shortcut,
                                                                   batch_norm=bn)  # fmt: skip
    return nets


#: Every network by name: the scaled versions (28x28 inputs), the depth series, the originals.
MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet": lenet_d2l,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet": resnet,
    **_depth_nets(),
    **ORIGINALS,
}


def build(name: str, **kwargs: Any) -> nn.Module:
    """The network called ``name`` in :data:`MODELS` (keyword options go to its builder)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


# --------------------------------------------------------------------------------------------
# Counting: multiply-accumulates, parameters, receptive fields


def count_macs(
    model: nn.Module,
    input_size: Sequence[int] = (1, 1, 28, 28),
) -> int:
    """Multiply-accumulates of one forward pass, per example, counted from the modules.

    The calls of every ``nn.Conv2d`` and ``nn.Linear``, recorded by
    :func:`lenet_utils.summary.record_calls` (the hook runner of chapter 3's summary table),
    give for each output value the products it sums: ``in_channels / groups x kh x kw``
    for a convolution, ``in_features`` for a linear layer. Biases, pooling, normalisation, activations and the residual
    additions are not multiplications of a weight by an input and are left out (the
    convention of the papers' "multiply-adds": He et al. 2016, Table 1). The input is zeros
    of ``input_size`` on the model's device (``meta`` works: only shapes are needed).
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else "cpu"
    x = torch.zeros(tuple(input_size), device=device)
    total = 0
    for call in record_calls(model, x, select=(nn.Conv2d, nn.Linear)):
        m, outputs = call.module, math.prod(call.out_shape)
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += outputs * (m.in_channels // m.groups) * kh * kw
        else:
            total += outputs * m.in_features  # type: ignore[operator]
    return total // int(input_size[0])


def profile(name: str, input_size: Sequence[int] = (1, 1, 28, 28)) -> dict[str, Any]:
    """``{"model", "params", "macs"}`` of a network of :data:`MODELS`, built on the ``meta``
    device (no memory, no initialisation: VGG-11's 129 million weights cost nothing)."""
    with torch.device("meta"):
        net = build(name)
    return {"model": name, "params": count_parameters(net), "macs": count_macs(net, input_size)}


def receptive_field(
    model: nn.Module,
    input_size: Sequence[int] = (1, 1, 15, 15),
) -> tuple[int, int]:
    """The height and width of the input window that the centre unit of the output sees,
    measured by backpropagation: the pixels where the gradient of that unit is not zero.

    A copy of ``model`` gets every weight set to 1 and every bias to 0 (so that no two paths
    can cancel and every ReLU passes), the input is ones, and the gradient of the centre
    output of channel 0 with respect to the input marks the window. Two stacked 3x3
    convolutions give (5, 5): the argument of VGG (Simonyan & Zisserman 2015, §2.3).
    """
    import copy

    net = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    x = torch.ones(tuple(input_size), requires_grad=True)
    out = net(x)  # (1, C, H', W')
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    grad = x.grad[0].abs().sum(dim=0)  # type: ignore[union-attr]
    rows, cols = grad.nonzero(as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
