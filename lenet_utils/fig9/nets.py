"""The networks of Fig. 9, trained with the book's 1998 recipe on the book's one loop.

LeNet-1, LeNet-4, LeNet-5 and the fully connected nets (28x28-300-10, -1000-10, -300-100-10,
-500-150-10, and 20x20-300-10 on deslanted digits) are all trained by
:func:`lenet_utils.paper.train`, i.e. through :func:`lenet_utils.engine.run`: the MAP criterion
(Eq. 9) on Euclidean RBF outputs (LeNet-5's bitmaps; a ±1 place code for the others, see
:func:`lenet_utils.models.place_code_output`), stochastic diagonal Levenberg-Marquardt, the
paper's epsilon schedule over 20 passes, with the settings of the book's committed LeNet-5 runs
(``init="sqrt"``, ``mu=1``, batches of 10; chapter 5 and ``data/paper/README.md`` justify each).
"[dist]" rows add the recipe's random affine distortions with ten presentations of each image
per pass (``copies=10``: the paper's 600,000 patterns per pass, drawn afresh each pass).

Which network takes which input is :data:`lenet_utils.models.PAPER_NETS`; ``"paper"`` is LeNet-5.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..models import PAPER_NETS
from ..paper import PaperConfig, checkpoint_log, evaluate, mnist_tensors, train
from ..summary import summarize

__all__ = ["NET_SETTINGS", "train_net"]

#: The recipe's settings for every network row (those of the book's committed LeNet-5 runs).
NET_SETTINGS: dict[str, Any] = {"init": "sqrt", "mu": 1.0, "batch_size": 10}


def _input_side(model: str) -> int:
    if model == "paper":
        return 32
    return {"pad32": 32, "28": 28, "16in28": 28, "deslant20": 20}[PAPER_NETS[model][1]]


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
) -> dict[str, Any]:
    """Train one network with the 1998 recipe; its test error and costs.

    ``out``: a run folder (``log.csv``, ``checkpoint.pt``, ``run.json``); a killed run
    continues from its last finished pass when called again with the same settings.

    Returns ``{"error", "train_cpu_seconds", "test_cpu_seconds", "macs", "parameters",
    "train_size", "test_size", "info"}``. ``train_cpu_seconds`` is this process's CPU time
    for the passes it trained (with the recipe's per-pass error measurements); a resumed run
    says so in ``info``.
    """
    Xtr, ytr, Xte, yte = mnist_tensors(model)
    if train_subset:
        Xtr, ytr = Xtr[:train_subset], ytr[:train_subset]
    if test_subset:
        Xte, yte = Xte[:test_subset], yte[:test_subset]
    cfg = PaperConfig(model=model, passes=passes, seed=seed, distortions=distortions, copies=copies,
                      threads=threads, **NET_SETTINGS)  # fmt: skip
    ckpt = Path(out) / "checkpoint.pt" if out is not None else None
    done_before = len(checkpoint_log(ckpt)) if ckpt is not None and ckpt.is_file() else 0
    c0 = time.process_time()
    net, rows = train(cfg, out, data=(Xtr, ytr, Xte, yte), command=command)
    train_cpu = time.process_time() - c0
    c0 = time.process_time()
    error, _ = evaluate(net, Xte, yte)
    test_cpu = time.process_time() - c0
    if rows and abs(rows[-1]["test_error"] - error) > 1e-9:
        raise RuntimeError(f"the log's last test error {rows[-1]['test_error']} differs from the model's {error}")
    side = _input_side(model)
    s = summarize(net, (1, 1, side, side))
    info = {"passes": len(rows), "passes_trained_here": len(rows) - done_before,
            "pass_seconds_sum": round(sum(r["seconds"] for r in rows), 1),
            "train_error": rows[-1]["train_error"] if rows else None}  # fmt: skip
    return {"error": error, "train_cpu_seconds": train_cpu, "test_cpu_seconds": test_cpu, "macs": s.connections,
            "parameters": s.params, "train_size": len(Xtr), "test_size": len(Xte), "info": info}  # fmt: skip
