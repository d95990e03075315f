"""Rejection (the paper's Fig. 10): how many test digits must be refused to reach 0.5% error.

Each classifier of the benchmark gives, besides its label, a per-digit *confidence*; the
digits are refused lowest confidence first, and :func:`rejection_for_error` returns the
smallest percentage of the test set that must be refused so that the error on the digits kept
is at most the target (0.5% in the paper). Refusing is done by a threshold on the confidence:
digits of equal confidence are kept or refused together (a classifier whose confidence takes
few values pays for it), and refusing everything is always allowed (100%).

Confidences (our choices; the paper says only that rejection thresholds the confidence):

* score outputs (linear, pairwise sum, quadratic, RBF, SVM): best score minus second best,
  :func:`margin`; the pairwise vote: the winner's weakest pairwise output (:mod:`.linear`);
* penalty outputs (the networks' RBF units, smaller is better): second smallest penalty minus
  the smallest, :func:`penalty_margin`;
* nearest neighbours: the vote margin first, then how much nearer the winning class's nearest
  prototype is than the nearest prototype of another class, :func:`neighbour_confidence`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["fill_rejection", "margin", "neighbour_confidence", "net_decide", "pairwise_decide", "penalty_margin",
           "rejection_for_error"]


def margin(scores: torch.Tensor) -> torch.Tensor:
    """Best minus second-best score of each row of ``scores`` (N, C), larger is better."""
    top = scores.double().topk(2, dim=1).values  # (N, 2)
    return top[:, 0] - top[:, 1]


def penalty_margin(penalties: torch.Tensor) -> torch.Tensor:
    """Second-smallest minus smallest penalty of each row of ``penalties`` (N, C), smaller is better."""
    return margin(-penalties)


def neighbour_confidence(labels: torch.Tensor, dists: torch.Tensor, pred: torch.Tensor, k: int) -> torch.Tensor:
    """Confidence of a nearest-neighbour decision.

    ``labels`` and ``dists`` (N, K): the labels and distances of the K >= k nearest prototypes,
    nearest first; ``pred`` (N,): the decision of the ``k`` nearest. The confidence is twice the
    vote margin among the ``k`` nearest (winner's votes minus the runner-up's), plus the relative
    gap ``(d_o - d_w) / (d_o + d_w)`` in (-1, 1) between the nearest prototype of the winning class
    (``d_w``) and the nearest of another class (``d_o``; the K-th distance when none of the K
    is of another class). The vote margin decides; the gap orders digits of equal margin.
    """
    votes = nn.functional.one_hot(labels[:, :k], 10).sum(1)  # (N, 10)
    top = votes.topk(2, dim=1).values
    vote_margin = (top[:, 0] - top[:, 1]).double()
    same = labels == pred.unsqueeze(1)  # (N, K)
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    d = dists.double()
    d_w = torch.where(same, d, inf).min(1).values
    d_o = torch.where(~same, d, inf).min(1).values
    d_o = torch.where(torch.isinf(d_o), d[:, -1], d_o)
    d_w = torch.where(torch.isinf(d_w), d_o, d_w)  # a winner not among the K (cannot happen with k <= K)
    gap = (d_o - d_w) / (d_o + d_w).clamp_min(1e-12)
    return 2 * vote_margin + gap.clamp(-0.999999, 0.999999)


@torch.no_grad()
def net_decide(net: nn.Module, X: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and confidences of a network with penalty outputs (the benchmark's nets, LeNet-5):
    the smallest penalty wins, the confidence is :func:`penalty_margin`."""
    was_training = net.training
    net.eval()
    out = torch.cat([net(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])  # (N, 10)
    net.train(was_training)
    return out.argmin(1), penalty_margin(out)


def rejection_for_error(
    confidence: torch.Tensor, wrong: torch.Tensor, target: float = 0.005
) -> float:
    """The smallest percentage of digits to refuse, lowest ``confidence`` first, so that the
    error on the rest is at most ``target`` (a fraction: 0.005 is the paper's 0.5%).

    ``wrong`` (N,) bool: the classifier's mistakes. Equal confidences are refused together.
    """
    n = len(wrong)
    if n == 0 or len(confidence) != n:
        raise ValueError(
            "need as many confidences as decisions, "
            f"got {len(confidence)} and {n}"
        )
    # least confident first
    order = torch.argsort(confidence.double(), stable=True)
    c, w = confidence.double()[order], wrong.bool()[order].long()
    # keeping the digits from position r on: errors kept = total - refused
    refused = torch.cat([torch.zeros(1, dtype=torch.long), w.cumsum(0)])
    errors_kept = w.sum() - refused  # (n + 1,) for r = 0..n
    kept = n - torch.arange(n + 1)
    ok = errors_kept.double() <= target * kept.double() + 1e-12
    # a cut at r is allowed only between different confidences (ties go
    # together), or at 0 and n
    allowed = torch.ones(n + 1, dtype=torch.bool)
    allowed[1:n] = c[1:] != c[:-1]
    # r = n (refuse all) always qualifies
    r = int(torch.nonzero(ok & allowed)[0])
    return 100.0 * r / n


def fill_rejection(
    out: str | Path, run_dir: str | Path, *, families: tuple[str, ...] = ("net",)
) -> tuple[list[str], dict[str, str]]:
    """Fill the empty ``reject_for_0_5_pct`` of the rows of the results CSV ``out`` written before
    that column existed, without retraining; returns the run ids filled and, by run id, why a row
    was left empty.

    ``"net"`` rows: the finished network in its run folder under ``run_dir`` (a missing or
    unfinished folder is skipped) is tested again; ``"classic"`` rows (deterministic) are refitted.
    Either way the test error must come out as the stored one, else the row is left empty and
    reported (it would not describe the same classifier). The classifiers are tested without holding the
    file; the file is then rewritten in one atomic rename by the one writer
    (:func:`lenet_utils.sweep.one_writer`), so that queue workers can append meanwhile.
    """
    import csv
    import io

    from ..files import atomic_write
    from ..sweep import one_writer
    from .rows import COLUMNS, get_row, read_results

    out, found, refused = Path(out), {}, {}
    for r in read_results(out):
        try:
            row = get_row(r["row"])
        except ValueError:
            continue
        if r["reject_for_0_5_pct"] != "" or row.family not in families:
            continue
        got = _retest(row, r, Path(run_dir))
        if got is None:
            continue
        error_pct, reject = got
        if abs(error_pct - float(r["error_pct"])) > 1e-6:
            refused[r["run_id"]] = f"the stored test error {r['error_pct']}% came out as {error_pct}%"
            continue
        found[r["run_id"]] = str(round(reject, 2))
    filled = []
    with one_writer(out):
        rows = read_results(out)  # again: rows may have been appended meanwhile
        for r in rows:
            if r["run_id"] in found and r["reject_for_0_5_pct"] == "":
                r["reject_for_0_5_pct"] = found[r["run_id"]]
                filled.append(r["run_id"])
        if filled:
            buf = io.StringIO()
            w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            atomic_write(out, buf.getvalue())
    return filled, refused


def _retest(row: Any, r: dict[str, str], run_dir: Path) -> tuple[float, float] | None:
    """``(error %, rejection %)`` of a stored row's classifier on its test digits, or ``None``."""
    from ..paper import checkpoint_log, load_checkpoint, mnist_tensors
    from .rows import _run_classic, net_folder

    n_train, n_test, seed = int(r["train_size"]), int(r["test_size"]), int(r["seed"])
    train_subset, test_subset = (n_train if n_train < 60_000 else None), (n_test if n_test < 10_000 else None)
    if row.family == "classic":
        with torch.no_grad():
            res = _run_classic(row, seed, train_subset, test_subset)
        return round(100 * res["error"], 4), res["reject_pct"]
    passes = int(r["passes"])
    ckpt = run_dir / net_folder(row, seed, train_subset, test_subset, passes) / "checkpoint.pt"
    if not ckpt.is_file() or len(checkpoint_log(ckpt)) != passes:
        return None
    Xte, yte = mnist_tensors(row.spec[0])[2:]
    Xte, yte = Xte[:n_test], yte[:n_test]
    pred, conf = net_decide(load_checkpoint(ckpt), Xte)
    wrong = pred != yte
    return round(100 * wrong.sum().item() / len(yte), 4), rejection_for_error(conf, wrong)


def pairwise_decide(out: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Votes of one-against-one machines and the winner's weakest duel.

    ``out`` (N, P): the outputs of the P = C (C - 1) / 2 machines in scikit-learn's order of pairs
    (0, 1), (0, 2), ..., each positive in favour of the pair's *second* class. Labels as
    scikit-learn's one-against-one classifiers: most votes, a tie broken by the summed outputs
    squashed into (-1/3, 1/3). Confidence: the smallest output in the winner's favour among its
    C - 1 machines (negative when it lost a duel). Returns ``(labels, confidences)``, (N,) each.
    """
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    if out.shape[1] != len(pairs):
        raise ValueError(f"{n_classes} classes make {len(pairs)} pairs, got {out.shape[1]} outputs")
    out = out.double()
    fav = torch.full((len(out), n_classes, n_classes), float("inf"), dtype=torch.float64)
    votes = torch.zeros(len(out), n_classes, dtype=torch.float64)
    total = torch.zeros(len(out), n_classes, dtype=torch.float64)
    for k, (i, j) in enumerate(pairs):
        o = out[:, k]
        fav[:, j, i], fav[:, i, j] = o, -o
        votes[:, j] += (o > 0).double()
        votes[:, i] += (o <= 0).double()
        total[:, j] += o
        total[:, i] -= o
    col = (votes + total / (3 * (total.abs() + 1))).argmax(1)
    return col, fav.min(2).values.gather(1, col.unsqueeze(1)).squeeze(1)
