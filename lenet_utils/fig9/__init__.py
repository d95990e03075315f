"""The paper's benchmark (LeCun et al. 1998, §III.C, Fig. 9), rerun on MNIST with our code.

One module per job:

=====================  ========================================================================
module                 what
=====================  ========================================================================
:mod:`.base`           :class:`~.base.Fitted` (predict + costs) and the flat digit inputs
:mod:`.linear`         linear classifier, pairwise linear classifier (45 units, voting)
:mod:`.knn`            k-NN with the Euclidean distance (k = 3), batched on torch
:mod:`.tangent`        k-NN with the tangent distance on 16x16 digits (Euclidean prefilter)
:mod:`.tangent_study`  its input, smoothing and prefilter chosen on held-out training digits
:mod:`.polynomial`     40 principal components + quadratic classifier
:mod:`.rbf`            1000 Gaussian RBF units (k-means centres) + linear classifier
:mod:`.svm`            SVMs, polynomial kernel: degree 4; the virtual SVM of degree 9 (SVC)
:mod:`.nets`           LeNet-1, LeNet-4, LeNet-5 and the fully connected nets, 1998 recipe
:mod:`.features`       LeNet-4's 120 features + k-NN or local learning (in place of its last layer)
:mod:`.boost`          boosted LeNet-4: three nets, the second and third on filtered distorted digits
:mod:`.reject`         confidences and the rejection needed for 0.5% error (the paper's Fig. 10)
:mod:`.rows`           the rows of Fig. 9 with the paper's values; run one, append its result
=====================  ========================================================================

Command line: ``python -m lenet_utils fig9 --list`` and ``python -m lenet_utils fig9 ROW``.
"""

from __future__ import annotations

from .rows import ROWS, Row, append_result, get_row, run_row

__all__ = ["ROWS", "Row", "append_result", "get_row", "run_row"]
