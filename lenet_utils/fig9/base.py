"""What every classifier of the benchmark returns, and the digits it is fitted on.

A *fitter* (one per family: :mod:`.linear`, :mod:`.knn`, :mod:`.tangent`, :mod:`.polynomial`,
:mod:`.rbf`, :mod:`.svm`) takes training digits and labels and returns a :class:`Fitted`:
``predict`` and the two costs the paper compares in Figs. 11 and 12, multiply-accumulate
operations per recognised digit and stored values. The networks go through the 1998 recipe
instead (:mod:`.nets`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["FLAT_INPUTS", "Fitted", "flat_inputs", "from_decide", "score_decide", "to_numpy"]


@dataclass
class Fitted:
    """A trained classifier.

    Attributes:
        predict: ``(N, D)`` float tensor of digits -> ``(N,)`` int64 labels.
        macs: multiply-accumulate operations to recognise one digit (the paper's Fig. 11
            counts the same thing; ours are computed from our implementation).
        parameters: values the classifier stores (weights, prototypes, support vectors): the
            "memory" of the paper's Fig. 12.
        info: anything else worth recording (number of support vectors, chosen sizes...).
        decide: ``(N, D)`` digits -> ``((N,) labels, (N,) confidences)``, larger is surer (the
            paper's Fig. 10, rejection: :mod:`.reject`); the labels are ``predict``'s.
    """

    predict: Callable[[torch.Tensor], torch.Tensor]
    macs: int
    parameters: int
    info: dict[str, Any] = field(default_factory=dict)
    decide: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None


def from_decide(decide: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], macs: int, parameters: int,
                info: dict[str, Any]) -> Fitted:  # fmt: skip
    """A :class:`Fitted` whose ``predict`` is ``decide``'s labels."""
    return Fitted(lambda Xq: decide(Xq)[0], macs=macs, parameters=parameters, info=info, decide=decide)


Decide = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def score_decide(scores: Callable[[torch.Tensor], Any], classes: Any) -> Decide:
    """``decide`` for a classifier of scores (larger is better): ``scores(Xq)`` (N, C) array or
    tensor, ``classes`` the label of each column; labels by the best score, confidence the margin."""
    from .reject import margin

    cls = torch.as_tensor(classes).long()

    def decide(Xq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.as_tensor(scores(Xq)).double()  # (N, C)
        return cls[s.argmax(1)], margin(s)

    return decide


def to_numpy(x: torch.Tensor) -> Any:
    """A float32 / int64 NumPy view for scikit-learn."""
    return x.detach().cpu().numpy()


def flat_inputs(images: torch.Tensor, kind: str) -> torch.Tensor:
    """MNIST's uint8 ``(N, 28, 28)`` digits as flat float vectors in [0, 1] (ink = 1).

    ``kind``: ``"raw"`` (784 pixels as stored), ``"deslant"`` (deslanted by the ink's second
    moments, :func:`lenet_utils.deslant.deslant`; 784 pixels), ``"16x16"`` (the whole 28x28
    frame subsampled to 16x16, bilinear with antialiasing, :func:`lenet_utils.deslant.subsample`:
    the digit about 11 pixels tall; 256 pixels), ``"crop16"`` (the 20x20 window around the ink,
    i.e. the digit as MNIST size-normalised it, subsampled to 16x16 the same way,
    :func:`lenet_utils.deslant.ink_box_16`: the digit about 16 pixels tall; 256 pixels).
    """
    x = images.float().div(255.0)  # (N, 28, 28)
    if kind == "raw":
        return x.flatten(1).contiguous()
    if kind == "deslant":
        from ..deslant import deslant

        return deslant(x).clamp(0, 1).flatten(1).contiguous()
    if kind in ("16x16", "crop16"):
        from ..deslant import ink_box_16, subsample

        small = subsample(x, 16) if kind == "16x16" else ink_box_16(x)  # (N, 16, 16)
        return small.clamp(0, 1).flatten(1).contiguous()  # (N, 256)
    raise ValueError(f"input kind must be one of {', '.join(map(repr, FLAT_INPUTS))}, not {kind!r}")


#: the input kinds of :func:`flat_inputs`
FLAT_INPUTS: tuple[str, ...] = ("raw", "deslant", "16x16", "crop16")
