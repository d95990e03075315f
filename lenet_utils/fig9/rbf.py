r"""1000 Gaussian RBF units + a linear classifier (paper §III.C: 3.6%).

Paper: the first layer has 1000 Gaussian RBF units on the 28x28 input, in 10 groups of 100;
each group's centres are found by K-means on the training digits of one class; the second
layer, a linear classifier from the 1000 activations to the 10 classes, is computed by a
regularised pseudo-inverse.

Ours: scikit-learn's ``KMeans`` (100 centres per class, k-means++ start, seeded: the row's
randomness), unit activations :math:`\exp(-\lVert x - c\rVert^2 / 2\sigma_c^2)` with
:math:`\sigma_c^2` the mean squared distance from the centre to the digits assigned to it (for
a cluster of one digit, half the squared distance to the nearest other centre of its class; the
paper gives no widths: our choice), and the second layer by ridge regression to ±1 targets (a
regularised pseudo-inverse) with a bias. ``alpha``, the regularisation, is ours.
"""

from __future__ import annotations

import torch

from .base import Fitted, from_decide, score_decide, to_numpy

__all__ = ["fit_rbf"]


def fit_rbf(X: torch.Tensor, y: torch.Tensor, *, seed: int = 0, per_class: int = 100, alpha: float = 1e-2) -> Fitted:
    """K-means centres per class, Gaussian widths from the clusters, ridge on the activations."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import RidgeClassifier

    X = X.float()
    centres, widths = [], []
    for c in range(10):
        Xc = X[y == c]
        n = min(per_class, len(Xc))
        if n == 0:
            raise ValueError(f"no training digit of class {c}: use a larger training subset")
        km = KMeans(n, n_init=1, random_state=seed * 10 + c).fit(to_numpy(Xc))
        C = torch.from_numpy(km.cluster_centers_).float()  # (n, D)
        assign = torch.from_numpy(km.labels_).long()
        d2 = ((Xc - C[assign]) ** 2).sum(1)  # (n_c,)
        count = torch.bincount(assign, minlength=n)
        s2 = torch.zeros(n).index_add_(0, assign, d2) / count.clamp_min(1)
        if n > 1:  # a cluster of one digit has no spread: half the squared distance to its nearest neighbour centre
            near = torch.cdist(C, C).square().fill_diagonal_(float("inf")).min(1).values / 2
            s2 = torch.where(count > 1, s2, near)
        widths.append(s2.clamp_min(1e-3))
        centres.append(C)
    C, S2 = torch.cat(centres), torch.cat(widths)  # (1000, D), (1000,)

    def activations(Xq: torch.Tensor) -> torch.Tensor:
        Xq = Xq.float()
        d2 = (Xq * Xq).sum(1, keepdim=True) - 2 * Xq @ C.T + (C * C).sum(1)  # (N, 1000)
        return torch.exp(-d2.clamp_min(0) / (2 * S2))

    clf = RidgeClassifier(alpha=alpha).fit(to_numpy(activations(X)), to_numpy(y))

    units, d = C.shape
    decide = score_decide(lambda Xq: clf.decision_function(to_numpy(activations(Xq))), clf.classes_)
    return from_decide(decide, units * d + 10 * (units + 1), units * d + units + 10 * (units + 1),
                       {"units": units, "alpha": alpha})  # fmt: skip
