"""Boosted LeNet-4 with distortions (paper §III.C: 0.7%; Drucker, Schapire and Simard 1993).

Paper: three LeNet-4s. The first is trained as usual; the second on patterns filtered by the
first, so that it sees as many patterns the first gets right as it gets wrong; the third on
patterns on which the first two disagree; at test time the three outputs are added. The
training set is extended with affinely distorted copies, because the first net's few mistakes
would otherwise leave the second and third nets too little data.

Ours, every net on the book's one loop through the 1998 recipe (:func:`lenet_utils.paper.train`),
each in its own resumable run folder (``net1``, ``net2``, ``net3`` under the row's folder):

* **Net 1**: LeNet-4 trained as the ``[dist]`` rows are (:func:`.nets.train_net`, distortions,
  ``copies`` presentations of each digit per pass, 20 passes).
* **The stream**: successive passes over the training digits in a new random order, each
  digit distorted with the recipe's probability (0.9) and random parameters
  (:func:`lenet_utils.paper.distort`); every chunk (one pass) is drawn by a generator seeded
  from the seed, the net's number and the chunk's number, so the stream is the same on a rerun.
  Nets 2 and 3 draw separate streams: net 3 sees new patterns.
* **Net 2's patterns** (:func:`balanced_selection`): net 1 classifies the stream, chunk by chunk,
  until it has made as many mistakes as half the training set (30,000 for MNIST) or
  :data:`STREAM_CHUNKS` chunks are spent; net 2 gets all its mistakes (at most half the training
  set) and as many of its right answers, the first ones in the stream.
* **Net 3's patterns** (:func:`disagreement_selection`): nets 1 and 2 classify a new stream;
  net 3 gets the first patterns on which they disagree, as many as the training set, or fewer
  if :data:`STREAM_CHUNKS` chunks run dry.
* **Training nets 2 and 3**: the recipe, 20 passes over their patterns, without further
  distortion (the patterns are already distorted; distorting them again would change which
  ones net 1 got wrong). Their seeds (initial weights, order) are the row's seed plus 1000 and
  2000.
* **The sum**: each net's outputs are the ten RBF penalties of the place code (squared distances
  to the ±1 codes). For these penalties ``y_i = |x|^2 + 10 - 4 x_i + 2 sum_j x_j`` (``x`` the
  ten F6 outputs), so the summed penalties rank the classes exactly as the summed F6 outputs:
  the smallest sum wins (:func:`sum_outputs`); the confidence (rejection) is the gap between
  the two smallest sums.
* **Costs**: three LeNet-4s (multiply-adds and parameters three times one net's); the paper
  notes that its boosted net often stops after the first net, which we do not do.

A resumed net whose checkpoint is unfinished rebuilds its patterns by screening the same
stream again (deterministic for the same threads and library versions).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .reject import penalty_margin, rejection_for_error

__all__ = ["STREAM_CHUNKS", "balanced_selection", "disagreement_selection", "run_boost", "sum_outputs"]

#: at most this many passes over the training digits are screened for each of nets 2 and 3
STREAM_CHUNKS = 50


def balanced_selection(correct: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of an equal mix of right and wrong answers: the first ``m`` wrong and the first
    ``m`` right ones (in stream order), ``m = min(n // 2, wrong, right)``; sorted."""
    wrong = torch.nonzero(~correct).flatten()
    right = torch.nonzero(correct).flatten()
    m = min(n // 2, len(wrong), len(right))
    return torch.cat([wrong[:m], right[:m]]).sort().values


def disagreement_selection(
    pred1: torch.Tensor,
    pred2: torch.Tensor,
    n: int,
) -> torch.Tensor:
    """Indices of the first ``n`` patterns on which the two predictions differ (stream order)."""
    return torch.nonzero(pred1 != pred2).flatten()[:n]


def sum_outputs(
    penalties: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and confidences of the summed penalty outputs (N, 10) of several nets: the
    smallest sum wins, the confidence is the gap to the second smallest."""
    total = torch.stack([p.double() for p in penalties]).sum(0)  # (N, 10)
    return total.argmin(1), penalty_margin(total)


@torch.no_grad()
def _penalties(net: torch.nn.Module, X: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    from ..paper import _no_mkldnn

    net.eval()
    with _no_mkldnn():
        return torch.cat([net(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])  # (N, 10)


def _chunk(X: torch.Tensor, seed: int, which: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk ``c`` of net ``which``'s stream: every training digit once, shuffled, distorted
    with the recipe's probability. Returns ``(order, distorted digits)``."""
    from ..paper import PaperConfig, distort

    g = torch.Generator().manual_seed(seed * 100_003 + which * 10_000_019 + c)
    order = torch.randperm(len(X), generator=g)
    out = [distort(X[order[i : i + 2000]], g, prob=PaperConfig.distort_prob) for i in range(0, len(X), 2000)]
    return order, torch.cat(out)


def _screen(nets: list[torch.nn.Module], X: torch.Tensor, y: torch.Tensor, seed: int, which: int,
            n: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:  # fmt: skip
    """Net ``which``'s patterns (2 or 3) filtered from its stream by ``nets`` (module docstring)."""
    keep_x, keep_y, keep_flag = [], [], []
    found = screened = 0
    for c in range(STREAM_CHUNKS):
        order, Xc = _chunk(X, seed, which, c)
        yc = y[order]
        preds = [_penalties(net, Xc).argmin(1) for net in nets]
        if which == 2:  # keep every mistake and, while they may still be needed, the right answers
            flag = preds[0] != yc
            need_right = n // 2 - sum(int((~f).sum()) for f in keep_flag)
            right = torch.nonzero(~flag).flatten()[: max(need_right, 0)]
            sel = torch.cat([torch.nonzero(flag).flatten(), right]).sort().values
        else:
            flag = preds[0] != preds[1]
            sel = torch.nonzero(flag).flatten()
        keep_x.append(Xc[sel])
        keep_y.append(yc[sel])
        keep_flag.append(flag[sel])
        found += int(flag.sum())
        screened += len(Xc)
        if found >= (n // 2 if which == 2 else n):
            break
    Xs, ys, fs = torch.cat(keep_x), torch.cat(keep_y), torch.cat(keep_flag)
    idx = balanced_selection(~fs, n) if which == 2 else torch.arange(min(n, len(Xs)))
    info = {"screened": screened, "found": found, "kept": len(idx)}
    return Xs[idx], ys[idx], info


def _finished(folder: Path, passes: int) -> bool:
    from ..paper import checkpoint_log

    return (folder / "checkpoint.pt").is_file() and len(checkpoint_log(folder / "checkpoint.pt")) >= passes


def _train_filtered(
    which: int, nets: list[torch.nn.Module], folder: Path, data: tuple[torch.Tensor, ...], seed: int, passes: int,
    threads: int | None, command: str | None,
) -> tuple[torch.nn.Module, dict[str, Any], float | None]:  # fmt: skip
    """Net 2 or 3: its patterns screened from its stream, then the recipe, resumably. Also returns
    the CPU its earlier processes spent on it (:class:`.nets.CpuLedger`; ``None``: unknown)."""
    from .. import checkpoint
    from ..paper import PaperConfig, checkpoint_log, load_checkpoint, train
    from .nets import CpuLedger, net_settings

    Xtr, ytr, Xte, yte = data
    ckpt = folder / "checkpoint.pt"
    ledger = CpuLedger(folder, len(checkpoint_log(ckpt)) if ckpt.is_file() else 0)
    if not _finished(folder, passes):
        Xs, ys, info = _screen(nets, Xtr, ytr, seed, which, len(Xtr))
        if len(Xs) < 2:
            raise ValueError(f"net {which} found {len(Xs)} patterns to train on: use a larger training subset")
        cfg = PaperConfig(model="lenet4", passes=passes, seed=seed + 1000 * (which - 1), threads=threads,
                          extra={"boosted": f"net {which}", **info}, **net_settings("lenet4"))  # fmt: skip
        train(cfg, folder, data=(Xs, ys, Xte, yte), callback=ledger.record, command=command)
    extra = checkpoint.load(ckpt, kind="paper")["config"]["extra"]  # the screening's counts
    return load_checkpoint(ckpt), {k: v for k, v in extra.items() if k != "boosted"}, ledger.earlier


def run_boost(row: Any, *, seed: int, train_subset: int | None, test_subset: int | None, passes: int,
              run_dir: str | Path | None, threads: int | None, command: str | None) -> dict[str, Any]:  # fmt: skip
    """Run the ``boost`` row (:mod:`.rows`): nets 1, 2, 3 (each resumable), their summed outputs
    on the test digits. The results dict of :func:`.nets.train_net`, with ``reject_pct``."""
    from ..paper import load_checkpoint, mnist_tensors
    from ..summary import summarize
    from ..threads import threads as thread_limit
    from .nets import train_net
    from .rows import net_folder

    model, copies = row.spec
    Xtr, ytr, Xte, yte = mnist_tensors(model)
    Xtr, ytr = Xtr[: train_subset or None], ytr[: train_subset or None]
    Xte, yte = Xte[: test_subset or None], yte[: test_subset or None]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(run_dir if run_dir is not None else tmp)
        folder = root / net_folder(row, seed, train_subset, test_subset, passes)
        c0 = time.process_time()
        res1 = train_net(model, seed=seed, distortions=True, copies=copies, passes=passes, train_subset=train_subset,
                         test_subset=test_subset, out=folder / "net1", threads=threads, command=command)  # fmt: skip
        nets = [load_checkpoint(folder / "net1" / "checkpoint.pt")]
        screens, earlier = {}, [res1["info"]["cpu_earlier_processes"]]
        with thread_limit(threads or torch.get_num_threads()):
            data = (Xtr, ytr, Xte, yte)
            for which in (2, 3):
                net, screens[f"net{which}"], cpu = _train_filtered(which, nets, folder / f"net{which}", data, seed,
                                                                   passes, threads, command)  # fmt: skip
                nets.append(net)
                earlier.append(cpu)
            c1 = time.process_time()
            penalties = [_penalties(net, Xte) for net in nets]
            pred, conf = sum_outputs(penalties)
            c2 = time.process_time()
    s = summarize(nets[0], (1, 1, 32, 32))
    info = {"copies_net1": copies, "stream_chunks_max": STREAM_CHUNKS, "screening": screens,
            "net_errors": [float((p.argmin(1) != yte).double().mean()) for p in penalties],
            "net1_info": res1["info"], "cpu_all_passes": None not in earlier}  # fmt: skip
    train_cpu = c1 - c0 - res1["test_cpu_seconds"] + sum(e or 0.0 for e in earlier)  # + earlier processes'
    return {"error": (pred != yte).sum().item() / len(yte), "train_cpu_seconds": train_cpu,
            "test_cpu_seconds": c2 - c1, "macs": 3 * s.connections, "parameters": 3 * s.params,
            "train_size": len(Xtr), "test_size": len(Xte), "info": info,
            "reject_pct": rejection_for_error(conf, pred != yte)}  # fmt: skip
