"""40 principal components + a quadratic (second-degree polynomial) classifier (paper §III.C: 3.3%).

Paper: the digits are projected on their 40 principal components; the 40 values feed a
second-degree polynomial classifier, "a linear classifier with 821 inputs, preceded by a module
that computes all products of pairs of input variables". 821 = 1 + 40 + 780: a constant, the 40
components and the 780 products of two *different* components, so no squares; scikit-learn's
``PolynomialFeatures(2, interaction_only=True)`` makes exactly those.

This is not scikit-learn's ``QuadraticDiscriminantAnalysis`` (a Gaussian per class, a
different model), which is why we do not use it. The linear classifier on the 821 values is fitted
as :mod:`.linear`'s (least squares to ±1 targets, small ridge; our choice, the paper does not
say). The components come from a full SVD (deterministic: no seed). Components are scaled to
unit variance before the products (our choice: it only conditions the least squares).
"""

from __future__ import annotations

import torch

from .base import Fitted, from_decide, score_decide, to_numpy

__all__ = ["fit_pca_quadratic"]


def fit_pca_quadratic(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    components: int = 40,
    alpha: float = 1.0,
) -> Fitted:
    """PCA to ``components`` values, all pairwise products, a linear classifier on top."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    pipe = make_pipeline(
        PCA(components, whiten=True, svd_solver="full"),
        PolynomialFeatures(2, interaction_only=True, include_bias=True),
        RidgeClassifier(alpha=alpha),
    )
    pipe.fit(to_numpy(X), to_numpy(y))
    features = pipe[1].n_output_features_  # 821 for 40 components

    d = X.shape[1]
    macs = components * d + (features - 1 - components) + 10 * features
    # projection, mean, linear classifier
    params = components * d + d + 10 * features
    decide = score_decide(
        lambda Xq: pipe.decision_function(to_numpy(Xq)), pipe.classes_
    )
    return from_decide(
        decide, macs, params, {"components": components, "features": features}
    )
