"""The training criteria of the 1998 paper on RBF penalties (LeCun et al. 1998, §II.C).

LeNet-5's output layer gives, for each class i, a *penalty* ``y_i`` = squared Euclidean
distance between the F6 vector and the class prototype (Eq. 7); lower is better.

* :func:`mle_loss` — Eq. 8, the maximum-likelihood criterion: the mean penalty of the
  correct class, :math:`E = \\frac1P \\sum_p y_{D_p}`. It never looks at the other classes, so
  it is minimised as well by a network whose F6 output ignores the input and sits on the
  correct prototype as by one that collapses all classes together — with *trainable*
  prototypes all ten could move to one point and E would be 0. With the fixed bitmaps of
  Fig. 3 a full collapse is impossible, but nothing pushes the wrong classes away.
* :func:`map_loss` — Eq. 9, the discriminative (MAP) criterion the paper trains with:

  .. math:: E = \\frac1P \\sum_p \\Big[ y_{D_p} + \\log\\big(e^{-j} + \\sum_i e^{-y_i}\\big) \\Big]

  The second term *pulls up* the penalties of the wrong classes (its gradient with respect to
  ``y_i`` is ``-e^{-y_i} / (e^{-j} + sum_k e^{-y_k})``), which rules out the collapse. Read as a
  classifier, it is the cross-entropy of a softmax over the eleven scores
  ``(-y_0, ..., -y_9, -j)``: ten digit classes plus a "rubbish" class whose score is the
  constant ``-j``.

The constant j
--------------
The paper only says j is positive. We use ``j = 10`` (:data:`DEFAULT_J`), for three reasons:

1. Scale. F6 units lie in (-1.7159, 1.7159) and the prototypes are ±1 over 84 units, so a
   well-classified pattern has a small correct penalty (a few units) while two prototypes are
   124 apart on average (48 for the closest pair, 6 and 8). With j = 10, ``e^{-j}`` is
   negligible as long as the correct penalty is below ~10, so the MAP term acts as a plain
   softmax competition between the classes there.
2. What j is for. Once *every* penalty is above j (a pattern far from all prototypes), the
   rubbish class dominates the log term, its gradient on the wrong classes vanishes, and the
   criterion degrades gracefully to Eq. 8 (pull the correct class in) instead of spending
   effort pushing up penalties that are already very large.
3. Not tuned. We did not search over j (the full runs take an hour each on our CPU); the
   value follows from the scale argument above, and the exercises of chapter 5 invite a check.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DEFAULT_J", "MAPLoss", "MLELoss", "map_loss", "mle_loss"]

#: The constant j of Eq. 9 (the paper gives no value; see the module docstring).
DEFAULT_J: float = 10.0


def _check(penalties: torch.Tensor, target: torch.Tensor) -> None:
    if penalties.dim() != 2:
        raise ValueError(f"penalties must be (B, classes), got {tuple(penalties.shape)}")
    if target.shape != penalties.shape[:1]:
        raise ValueError(f"target must be (B,) class indices, got {tuple(target.shape)} for {tuple(penalties.shape)}")


def _reduce(per_pattern: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_pattern.mean()
    if reduction == "sum":
        return per_pattern.sum()
    if reduction == "none":
        return per_pattern
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def mle_loss(penalties: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Eq. 8: the penalty of the correct class, :math:`E_p = y_{D_p}`.

    Args:
        penalties: ``(B, 10)`` RBF outputs ``y_i`` (lower = more likely).
        target: ``(B,)`` correct class indices ``D_p``.
        reduction: ``"mean"`` (the paper's 1/P sum), ``"sum"`` or ``"none"``.
    """
    _check(penalties, target)
    y_correct = penalties.gather(1, target.view(-1, 1)).squeeze(1)  # (B,) y_{D_p}
    return _reduce(y_correct, reduction)


def map_loss(
    penalties: torch.Tensor,
    target: torch.Tensor,
    j: float = DEFAULT_J,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Eq. 9: :math:`E_p = y_{D_p} + \log\big(e^{-j} + \sum_i e^{-y_i}\big)`.

    Computed stably as ``y_D + logsumexp([-y_0, ..., -y_9, -j])``. Since the log
    term is larger than ``log e^{-y_D} = -y_D``, every pattern's loss is
    positive; it approaches 0 when the correct penalty is below ``j`` and far
    below every other penalty.

    Args:
        penalties: ``(B, 10)`` RBF outputs ``y_i``.
        target: ``(B,)`` correct class indices.
        j: the positive constant of Eq. 9 (paper: unspecified; default
            :data:`DEFAULT_J`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check(penalties, target)
    if not j > 0:
        raise ValueError(f"j must be positive (paper §II.C), got {j}")
    # (B,) y_{D_p}
    y_correct = penalties.gather(1, target.view(-1, 1)).squeeze(1)
    # (B, 1) the e^{-j} term
    rubbish = penalties.new_full((penalties.shape[0], 1), -float(j))
    # (B,)
    log_term = torch.logsumexp(torch.cat([-penalties, rubbish], dim=1), dim=1)
    return _reduce(y_correct + log_term, reduction)


class MLELoss(nn.Module):
    """Module form of :func:`mle_loss` (Eq. 8)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, penalties: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mle_loss(penalties, target, self.reduction)


class MAPLoss(nn.Module):
    """Module form of :func:`map_loss` (Eq. 9) with its constant ``j``."""

    def __init__(self, j: float = DEFAULT_J, reduction: str = "mean") -> None:
        super().__init__()
        if not j > 0:
            raise ValueError(f"j must be positive (paper §II.C), got {j}")
        self.j, self.reduction = float(j), reduction

    def forward(self, penalties: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return map_loss(penalties, target, self.j, self.reduction)

    def extra_repr(self) -> str:
        return f"j={self.j}"
