"""The networks of Fig. 9, trained with the book's 1998 recipe on the book's one loop.

LeNet-1, LeNet-4, LeNet-5 and the fully connected nets (28x28-300-10, -1000-10, -300-100-10,
-500-150-10, and 20x20-300-10 on deslanted digits) are all trained by
:func:`lenet_utils.paper.train`, i.e. through :func:`lenet_utils.engine.run`: the MAP criterion
(Eq. 9) on Euclidean RBF outputs (LeNet-5's bitmaps; a ±1 place code for the others, see
:func:`lenet_utils.models.place_code_output`), stochastic diagonal Levenberg-Marquardt, the
paper's epsilon schedule over 20 passes, with the settings of the book's committed LeNet-5 runs
(``init="sqrt"``, ``mu=1``, batches of 10; chapter 5 and ``data/paper/README.md`` justify each),
except where a network's own damping was chosen on held-out training digits (:mod:`.fc_study`):
the fully connected nets (:data:`FC_SETTINGS`), LeNet-1 and LeNet-4 (:data:`LENET_SETTINGS`).
"[dist]" rows add the recipe's random affine distortions with ten presentations of each image
per pass (``copies=10``: the paper's 600,000 patterns per pass), drawn afresh each pass, or
(``distortion_protocol="fixed"``, the "-fixed" rows) the paper's set drawn once: the original
and nine distorted copies of each image, the same in every pass. "Huge distortions" doubles
every range of :func:`lenet_utils.paper.distort` (``distort_range=2``, our guess).

Which network takes which input is :data:`lenet_utils.models.PAPER_NETS`; ``"paper"`` is LeNet-5.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from ..files import atomic_write
from ..models import PAPER_NETS
from ..paper import PaperConfig, checkpoint_log, evaluate, mnist_tensors, train
from ..summary import summarize
from ..sweep import one_writer
from .reject import net_decide, rejection_for_error

__all__ = [
    "CPU_FILE", "FC_SETTINGS", "LENET_SETTINGS", "NET_SETTINGS", "CpuLedger", "net_settings", "recipe_tag",
    "train_net",
]  # fmt: skip

#: The recipe's settings for every network row (those of the book's committed LeNet-5 runs).
NET_SETTINGS: dict[str, Any] = {"init": "sqrt", "mu": 1.0, "batch_size": 10}

#: What the fully connected nets (``fc-*`` of :data:`~lenet_utils.models.PAPER_NETS`) change in
#: :data:`NET_SETTINGS`. The paper does not say how it trained them. With ``mu = 1`` their
#: first-layer curvature (about 0.002 to 0.02, one pixel per weight) is negligible beside mu,
#: every step is about ``eps`` and they underfit (20x20-300-10: 3.8% training error after 20
#: passes). ``mu`` was chosen among 1, 0.1 and 0.02 on 10,000 held-out training digits, five
#: passes (:func:`lenet_utils.fig9.fc_study.fc_validation`; the table and its command:
#: ``data/fig9/fc_validation.csv``, ``data/fig9/README.md``): 0.1 gave the lowest held-out error
#: for each net tried (28x28-300-10: 3.3% against 5.9% with mu = 1 and 14% with the paper's
#: 0.02); the same value for every fc net.
FC_SETTINGS: dict[str, Any] = {"mu": 0.1}


#: What LeNet-1 and LeNet-4 change in :data:`NET_SETTINGS`, chosen the same way as
#: :data:`FC_SETTINGS` (five passes on 50,000 training digits, 10,000 held out, seed 0;
#: ``data/fig9/lenet_validation.csv``, its commands in ``data/fig9/README.md``). LeNet-4, mu in
#: 1, 0.1, 0.02: 2.06% held-out error with mu = 0.1 against 2.45% and 2.51%. LeNet-1, on its
#: input (``"crop16in28"``), mu in 3, 1, 0.3, 0.2, 0.1, 0.05, 0.02: from 4.77% (mu = 3) and
#: 3.62% (mu = 1) down to a floor of 2.74-2.75% for mu = 0.1 and below; 0.1, the lowest, is
#: also the fully connected nets' value.
LENET_SETTINGS: dict[str, dict[str, Any]] = {"lenet1": {"mu": 0.1}, "lenet4": {"mu": 0.1}}


def net_settings(model: str) -> dict[str, Any]:
    """The recipe's settings for ``model``: :data:`NET_SETTINGS`, with :data:`FC_SETTINGS` for an
    fc net and :data:`LENET_SETTINGS` for LeNet-1 and LeNet-4."""
    own = FC_SETTINGS if model.startswith("fc") else LENET_SETTINGS.get(model, {})
    return {**NET_SETTINGS, **own}


def recipe_tag(model: str) -> str:
    """``""`` for the book's LeNet-5 settings, else what differs (``"mu=0.1"``): part of the run's
    identity (results ``run_id``, run folder), so that a run of other settings is never reused."""
    s = net_settings(model)
    return "|".join(f"{k}={s[k]:g}" for k in sorted(s) if s[k] != NET_SETTINGS[k])


def _input_side(model: str) -> int:
    if model == "paper":
        return 32
    return {"pad32": 32, "28": 28, "16in28": 28, "crop16in28": 28, "deslant20": 20}[PAPER_NETS[model][1]]


#: A run folder's training CPU so far, across the processes that trained it: ``{"passes": k,
#: "cpu_seconds": s}``, rewritten after every pass (a killed run resumes with its earlier CPU).
CPU_FILE = "cpu.json"


class CpuLedger:
    """The training CPU of a run folder across the processes that trained it (:data:`CPU_FILE`).

    ``passes_done``: the passes its checkpoint held when this process started. ``earlier``: their
    CPU seconds, or ``None`` when no record covers exactly those passes (a run of older code).
    Pass :meth:`record` to :func:`lenet_utils.paper.train` as its per-pass callback.
    """

    def __init__(self, folder: Path | None, passes_done: int) -> None:
        self.folder, self.c0 = folder, time.process_time()
        self.earlier: float | None = 0.0 if passes_done == 0 else None
        if passes_done and folder is not None:
            with contextlib.suppress(OSError, ValueError):
                record = json.loads((folder / CPU_FILE).read_text())
                if record.get("passes") == passes_done:
                    self.earlier = float(record["cpu_seconds"])

    def total(self) -> float:
        """CPU seconds so far: the earlier processes' (when known) and this one's."""
        return (self.earlier or 0.0) + time.process_time() - self.c0

    def record(self, row: dict[str, float]) -> None:
        """After a pass's checkpoint: the passes and CPU so far, atomically (when the earlier are known)."""
        if self.folder is not None and self.earlier is not None:
            data = {"passes": int(row["pass"]), "cpu_seconds": self.total()}
            atomic_write(self.folder / CPU_FILE, json.dumps(data))


def train_net(
    model: str,
    *,
    seed: int = 0,
    distortions: bool = False,
    copies: int = 1,
    passes: int = 20,
    train_subset: int | None = None,
    test_subset: int | None = None,
    out: str | Path | None = None,
    threads: int | None = 1,
    command: str | None = None,
    **config: Any,
) -> dict[str, Any]:
    """Train one network with the 1998 recipe (:func:`net_settings`); its test error and costs.

    ``config``: further :class:`~lenet_utils.paper.PaperConfig` settings (e.g.
    ``distortion_protocol="fixed"``, ``distort_range=2``).

    ``out``: a run folder (``log.csv``, ``checkpoint.pt``, ``run.json``); a killed run
    continues from its last finished pass when called again with the same settings.

    Returns ``{"error", "train_cpu_seconds", "test_cpu_seconds", "macs", "parameters",
    "train_size", "test_size", "info"}``. ``train_cpu_seconds`` is the CPU time
    of all the run's passes (with the recipe's per-pass error measurements), those of earlier processes
    read from :data:`CPU_FILE`; ``info["cpu_all_passes"]`` is false when a resumed run has no
    such record (then it counts this process's passes only, ``info["passes_trained_here"]``).
    """
    Xtr, ytr, Xte, yte = mnist_tensors(model)
    if train_subset:
        Xtr, ytr = Xtr[:train_subset], ytr[:train_subset]
    if test_subset:
        Xte, yte = Xte[:test_subset], yte[:test_subset]
    cfg = PaperConfig(model=model, passes=passes, seed=seed, distortions=distortions, copies=copies,
                      threads=threads, **net_settings(model), **config)  # fmt: skip
    ckpt = Path(out) / "checkpoint.pt" if out is not None else None
    # one process per run folder: a second worker asking for the same run waits, then resumes
    # the finished (or further) checkpoint instead of training beside the first
    with one_writer(Path(out), wait=True) if out is not None else contextlib.nullcontext():
        done_before = len(checkpoint_log(ckpt)) if ckpt is not None and ckpt.is_file() else 0
        ledger = CpuLedger(Path(out) if out is not None else None, done_before)
        net, rows = train(cfg, out, data=(Xtr, ytr, Xte, yte), callback=ledger.record, command=command)
        train_cpu = ledger.total()
    c0 = time.process_time()
    error, pred = evaluate(net, Xte, yte)
    test_cpu = time.process_time() - c0
    reject = rejection_for_error(net_decide(net, Xte)[1], pred != yte)  # Fig. 10: penalty margins
    if rows and abs(rows[-1]["test_error"] - error) > 1e-9:
        raise RuntimeError(f"the log's last test error {rows[-1]['test_error']} differs from the model's {error}")
    side = _input_side(model)
    s = summarize(net, (1, 1, side, side))
    info = {"passes": len(rows), "passes_trained_here": len(rows) - done_before,
            "pass_seconds_sum": round(sum(r["seconds"] for r in rows), 1), "cpu_all_passes": ledger.earlier is not None,
            "cpu_earlier_processes": ledger.earlier,
            "train_error": rows[-1]["train_error"] if rows else None}  # fmt: skip
    return {"error": error, "train_cpu_seconds": train_cpu, "test_cpu_seconds": test_cpu, "macs": s.connections,
            "parameters": s.params, "train_size": len(Xtr), "test_size": len(Xte), "info": info,
            "reject_pct": reject}  # fmt: skip
