r"""LeNet-4 with k-NN or local learning in place of its last layer (paper §III.C: 1.1% each).

The paper replaces LeNet-4's last layer by a Euclidean k-NN classifier, and by "local learning"
(Bottou and Vapnik 1992), "in which a linear classifier is retrained each time a new test
pattern is shown", both on the 120 values of LeNet-4's last hidden layer. Ours:

* **The network**: the ``lenet4`` row's run for the same seed (its run folder under
  ``run_dir``: trained there first if missing, resumed if unfinished, through
  :func:`.nets.train_net`), so the cost of training it is shared with that row.
* **Features**: the outputs of LeNet-4's F5 (120 squashed units), :func:`penultimate`.
* **k-NN**: :func:`.knn.nearest` on the features; ``k`` in :data:`K_GRID`.
* **Local learning**: for each digit, a linear classifier (10 outputs, a bias, ±1 targets)
  fitted by least squares with weight decay to its ``K`` nearest training digits in feature
  space, then applied to the digit: minimise :math:`\frac1K\sum_{i\le K}\lVert W x_i + b -
  t_i\rVert^2 + \lambda \lVert W\rVert^2` (the bias not decayed). Solved exactly, batched on
  torch: the neighbours are centred on their mean, the 120x120 normal matrix diagonalised once
  per digit (``eigh``), which gives every decay of :data:`DECAY_GRID` at once. ``K`` in
  :data:`NEIGHBOUR_GRID`. All three grids and the criterion are our guesses (the paper gives
  none; Bottou and Vapnik's classifier had weight decay, as here).
* **Model selection**: on the training set only. 10,000 training digits (the fixed draw of
  :func:`lenet_utils.paper.hold_out`) are classified by the other 50,000; the setting with the
  fewest mistakes wins (ties: the first in grid order), then the test digits are classified by
  all 60,000. The network itself was trained on all 60,000, so the held-out digits are not
  new to it: their features are cleaner than the test digits', a bias of this selection
  (training a second network on 50,000 only would double the cost).
* **Confidence** (rejection, :mod:`.reject`): k-NN as :mod:`.knn`'s; local learning the margin
  between the best and second-best output of the local classifier.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .knn import knn_vote, nearest
from .reject import margin, neighbour_confidence, rejection_for_error

__all__ = ["DECAY_GRID", "K_GRID", "NEIGHBOUR_GRID", "local_scores", "penultimate", "run_features"]

#: k of the k-NN on the features (odd, to limit ties)
K_GRID = (1, 3, 5, 7, 9)
#: K, the neighbours of each local classifier
NEIGHBOUR_GRID = (25, 50, 100, 200)
#: lambda, the weight decay of the local classifiers (per neighbour: the criterion is a mean)
DECAY_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: training digits held out to choose the settings
VALIDATION = 10_000


@torch.no_grad()
def penultimate(net: nn.Sequential, X: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """What the network's last ``nn.Linear`` receives (LeNet-4: F5's 120 outputs), ``(N, F)``."""
    last = max(i for i, m in enumerate(net) if isinstance(m, nn.Linear))
    body = net[:last].eval()
    return torch.cat([body(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]).float()


def local_scores(
    Fq: torch.Tensor, P: torch.Tensor, labels: torch.Tensor, K: int, decays: tuple[float, ...], *,
    block: int = 250, neighbours: torch.Tensor | None = None,
) -> dict[float, torch.Tensor]:  # fmt: skip
    """The 10 outputs of each query's local classifier (module docstring), for every decay.

    ``Fq`` (N, D) queries, ``P`` (M, D) prototypes with ``labels`` (M,); ``neighbours``: the
    indices of at least ``K`` nearest prototypes of each query, nearest first (computed if
    ``None``). Returns ``{decay: (N, 10) scores}`` (float64).
    """
    if neighbours is None:
        neighbours = nearest(Fq, P, K)[1]
    targets = 2 * nn.functional.one_hot(labels.long(), 10).double() - 1  # (M, 10)
    out: dict[float, list[torch.Tensor]] = {lam: [] for lam in decays}
    for i in range(0, len(Fq), block):
        ix = neighbours[i : i + block, :K]  # (b, K)
        Xn, Yn = P[ix].double(), targets[ix]  # (b, K, D), (b, K, 10)
        xm, ym = Xn.mean(1, keepdim=True), Yn.mean(1, keepdim=True)  # (b, 1, D), (b, 1, 10)
        Xc, Yc = Xn - xm, Yn - ym
        G = Xc.transpose(1, 2) @ Xc / K  # (b, D, D)
        R = Xc.transpose(1, 2) @ Yc / K  # (b, D, 10)
        e, V = torch.linalg.eigh(G)  # (b, D), (b, D, D)
        q = (Fq[i : i + block].double().unsqueeze(1) - xm) @ V  # (b, 1, D): the query in G's eigenbasis
        VR = V.transpose(1, 2) @ R  # (b, D, 10)
        for lam in decays:
            w = VR / (e.clamp_min(0) + lam).unsqueeze(2)  # (b, D, 10) in the eigenbasis
            out[lam].append((ym + q @ w).squeeze(1))  # (b, 10)
    return {lam: torch.cat(v) for lam, v in out.items()}


def _choose_k(Fv: torch.Tensor, yv: torch.Tensor, P: torch.Tensor, labels: torch.Tensor) -> tuple[int, dict]:
    _, ix = nearest(Fv, P, max(K_GRID))
    errors = {k: int((knn_vote(labels[ix[:, :k]]) != yv).sum()) for k in K_GRID}
    return min(K_GRID, key=lambda k: (errors[k], K_GRID.index(k))), errors


def _choose_local(Fv: torch.Tensor, yv: torch.Tensor, P: torch.Tensor, labels: torch.Tensor) -> tuple[tuple, dict]:
    _, ix = nearest(Fv, P, min(max(NEIGHBOUR_GRID), len(P)))
    errors = {}
    for K in NEIGHBOUR_GRID:
        if len(P) < K:
            continue
        for lam, s in local_scores(Fv, P, labels, K, DECAY_GRID, neighbours=ix).items():
            errors[(K, lam)] = int((s.argmax(1) != yv).sum())
    order = list(errors)
    return min(order, key=lambda key: (errors[key], order.index(key))), errors


def _select(kind: str, Ftr: torch.Tensor, ytr: torch.Tensor) -> dict[str, Any]:
    """The setting of the row's classifier, chosen on held-out training digits (module docstring)."""
    from ..paper import hold_out

    n_val = min(VALIDATION, len(Ftr) // 6)
    Fr, yr, Fv, yv = hold_out(Ftr, ytr, n_val)
    if kind == "knn":
        k, errors = _choose_k(Fv, yv, Fr, yr)
        return {"k": k, "validation_errors": {str(a): b for a, b in errors.items()}, "validation": n_val}
    if kind == "local":
        (K, lam), errors = _choose_local(Fv, yv, Fr, yr)
        return {"K": K, "decay": lam, "solver": "eigh of the centred normal matrix, float64", "validation": n_val,
                "validation_errors": {f"K={a},decay={b}": c for (a, b), c in errors.items()}}  # fmt: skip
    raise ValueError(f"feature classifier must be 'knn' or 'local', not {kind!r}")


def _apply(kind: str, setting: dict[str, Any], Ftr: torch.Tensor, ytr: torch.Tensor,
           Fte: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:  # fmt: skip
    """Classify ``Fte`` with all of ``Ftr``: ``(labels, confidences, macs, stored values)``."""
    m, d = Ftr.shape
    if kind == "knn":
        k = setting["k"]
        dist, ix = nearest(Fte, Ftr, min(max(k, 10), m))
        pred = knn_vote(ytr[ix[:, :k]])
        return pred, neighbour_confidence(ytr[ix], dist, pred, k), m * d, m * d
    K, lam = setting["K"], setting["decay"]
    scores = local_scores(Fte, Ftr, ytr, K, (lam,))[lam]
    # per digit: distances to every prototype, the K x D neighbours' normal matrix and right side,
    # a D x D eigendecomposition (~9 D^3, a rough count) and the query's products
    macs = m * d + K * d * (d + 10) + 9 * d**3 + 2 * d * d * 10
    return scores.argmax(1), margin(scores), macs, m * d


def run_features(row: Any, *, seed: int, train_subset: int | None, test_subset: int | None, passes: int,
                 run_dir: str | Path | None, threads: int | None, command: str | None) -> dict[str, Any]:  # fmt: skip
    """Run a ``features`` row (:mod:`.rows`): the ``lenet4`` row's net, then the row's classifier
    on its features. The results dict of :func:`.nets.train_net`, with ``reject_pct``.

    ``train_cpu_seconds``: the training set's features and the choice of the setting, plus the
    LeNet-4's training (all its passes) only when it ran here, even in part (else the ``lenet4``
    row's line has it).
    """
    from ..paper import load_checkpoint, mnist_tensors
    from ..summary import summarize
    from ..threads import threads as thread_limit
    from .nets import train_net
    from .rows import get_row, net_folder

    with tempfile.TemporaryDirectory() as tmp:
        tag = net_folder(get_row("lenet4"), seed, train_subset, test_subset, passes)
        folder = Path(run_dir if run_dir is not None else tmp) / tag
        net_res = train_net("lenet4", seed=seed, passes=passes, train_subset=train_subset, test_subset=test_subset,
                            out=folder, threads=threads, command=command)  # fmt: skip
        net = load_checkpoint(folder / "checkpoint.pt")
    Xtr, ytr, Xte, yte = mnist_tensors("lenet4")
    Xtr, ytr = Xtr[: train_subset or None], ytr[: train_subset or None]
    Xte, yte = Xte[: test_subset or None], yte[: test_subset or None]
    kind = row.spec[0]
    with thread_limit(threads or torch.get_num_threads()), torch.no_grad():
        c0 = time.process_time()
        Ftr = penultimate(net, Xtr)
        setting = _select(kind, Ftr, ytr)
        c1 = time.process_time()
        pred, conf, macs, stored = _apply(kind, setting, Ftr, ytr, penultimate(net, Xte))
        c2 = time.process_time()
    last = max(i for i, m in enumerate(net) if isinstance(m, nn.Linear))
    body = summarize(net[:last], (1, 1, 32, 32))
    info = {**setting, "lenet4_run": folder.name, "lenet4_error": net_res["error"], "lenet4_info": net_res["info"]}
    net_cpu = net_res["train_cpu_seconds"] if net_res["info"]["passes_trained_here"] else 0.0  # trained here?
    return {"error": (pred != yte).sum().item() / len(yte), "train_cpu_seconds": net_cpu + c1 - c0,
            "test_cpu_seconds": c2 - c1, "macs": body.connections + macs, "parameters": body.params + stored,
            "train_size": len(Xtr), "test_size": len(Xte), "info": info,
            "reject_pct": rejection_for_error(conf, pred != yte)}  # fmt: skip
