"""k nearest neighbours with the Euclidean distance (paper §III.C: k = 3; 5.0% raw, 2.4% deslanted).

Every training digit is a prototype; a test digit takes the majority label of its ``k`` nearest
(squared Euclidean distance on the pixels in [0, 1]). With k = 3 a tie means three different
labels: the nearest one wins. Distances are computed in blocks of test digits with one matrix
product each, ``|x|^2 - 2 x.p + |p|^2``, in float32 on torch. Deterministic: no seed.
"""

from __future__ import annotations

import torch

from .base import Fitted, from_decide

__all__ = ["fit_knn", "knn_vote", "nearest"]


def nearest(
    Xq: torch.Tensor, P: torch.Tensor, k: int, *, block: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` prototypes of ``P`` (M, D) nearest to each row of ``Xq`` (N, D).

    Returns ``(squared distances, indices)``, both ``(N, k)``, nearest first.
    """
    if k > len(P):
        raise ValueError(f"k = {k} is more than the {len(P)} prototypes")
    p2 = (P * P).sum(1)  # (M,)
    ds, ix = [], []
    for i in range(0, len(Xq), block):
        q = Xq[i : i + block]
        d = (q * q).sum(1, keepdim=True) - 2 * q @ P.T + p2  # (b, M)
        v, j = d.topk(k, dim=1, largest=False)  # sorted, nearest first
        ds.append(v.clamp_min(0))
        ix.append(j)
    return torch.cat(ds), torch.cat(ix)


def knn_vote(labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Majority label of each row of ``labels`` (N, k), nearest first; ties go to the nearest's label."""
    one_hot = torch.nn.functional.one_hot
    votes = one_hot(labels, classes).sum(1).double()  # (N, classes)
    votes += 0.5 * one_hot(labels[:, 0], classes)  # breaks only exact ties
    return votes.argmax(1)


def fit_knn(
    X: torch.Tensor, y: torch.Tensor, *, k: int = 3, confidence_from: int = 10
) -> Fitted:
    """Store the training digits; predict by the ``k`` nearest (Euclidean).

    The confidence (:func:`.reject.neighbour_confidence`) looks at the ``confidence_from``
    nearest (at least ``k``) for the nearest prototype of another class; the labels are the
    ``k`` nearest's vote either way.
    """
    from .reject import neighbour_confidence

    P, labels = X.float().contiguous(), y.long()
    K = min(max(k, confidence_from), len(P))

    def decide(Xq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d, ix = nearest(Xq.float(), P, K)
        pred = knn_vote(labels[ix[:, :k]])
        return pred, neighbour_confidence(labels[ix], d, pred, k)

    m, d = P.shape
    return from_decide(decide, m * d, m * d, {"k": k})
