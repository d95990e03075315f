"""Choosing a network's SDLM damping (and input) on held-out training digits, never the test set.

The paper says nothing of how its fully connected nets (28x28-300-10, ...) were trained. With the
settings of the book's LeNet-5 runs (:data:`~lenet_utils.fig9.nets.NET_SETTINGS`, ``mu = 1``)
they underfit: the Gauss-Newton curvature of a first-layer weight of these nets is about 0.002 to
0.02 (one pixel feeds it; LeNet-5's shared kernels sum hundreds of positions and reach 1 to 40),
so ``mu = 1`` dominates ``mu + h``, every first-layer step is about ``eps`` and the paper's
schedule (5e-4 down to 1e-5) is a plain, very small learning rate.

:func:`fc_validation` trains one net per candidate ``mu`` on the training digits less 10,000
held out (:func:`lenet_utils.paper.hold_out`, the fixed draw every ``--validation`` run uses) and
records the training and held-out errors; ``python -m lenet_utils fig9 --fc-validation CSV``
runs it. The committed studies and their commands are in ``data/fig9/README.md``; the choices
they support are :data:`~lenet_utils.fig9.nets.FC_SETTINGS` and
:data:`~lenet_utils.fig9.nets.LENET_SETTINGS` (LeNet-1 and LeNet-4, the same study, also
comparing LeNet-1's two readings of "subsampled to 16x16": ``inputs``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["FC_VALIDATION_COLUMNS", "fc_validation"]

FC_VALIDATION_COLUMNS = ["run_id", "model", "input", "mu", "passes", "train_size", "validation_size", "seed",
                         "train_error_pct", "validation_error_pct", "cpu_seconds", "command"]  # fmt: skip


def fc_validation(
    models: Sequence[str],
    mus: Sequence[float],
    *,
    passes: int = 5,
    validation: int = 10_000,
    seed: int = 0,
    train_subset: int | None = None,
    inputs: Sequence[str] | None = None,
    out: str | Path | None = None,
    command: str = "",
) -> list[dict[str, Any]]:
    """Train each net of ``models`` with each damping of ``mus`` (the other settings those of
    :data:`~lenet_utils.fig9.nets.NET_SETTINGS`) on the training digits less ``validation``
    held out; one row per run with its training and held-out errors (percent, last pass).

    ``inputs``: input kinds to try (:func:`lenet_utils.paper.paper_inputs`); default each net's
    own (:data:`lenet_utils.models.STUDY_NETS`: the nets of :data:`~lenet_utils.models.PAPER_NETS`
    and ``lenet4-sparse``, LeNet-4 with the paper's parameter count).

    ``out``: a CSV the rows are appended to (:class:`lenet_utils.sweep.ResultsFile`); a run
    already there is skipped, so a killed study continues where it stopped.
    """
    from ..models import STUDY_NETS
    from ..paper import PaperConfig, mnist_tensors, train
    from ..sweep import ResultsFile
    from .nets import NET_SETTINGS

    results = ResultsFile(out, FC_VALIDATION_COLUMNS) if out is not None else None
    done = results.done() if results is not None else set()
    rows = []
    for model in models:
        for kind in inputs or [STUDY_NETS[model][1]]:
            data = None
            for mu in mus:
                rid = (f"{model}|input={kind}|mu={mu:g}|passes={passes}|train={train_subset or 'all'}"
                       f"|val={validation}|seed={seed}")  # fmt: skip
                if rid in done:
                    continue
                data = data if data is not None else mnist_tensors(model, kind)
                cfg = PaperConfig(model=model, passes=passes, seed=seed, validation=validation,
                                  train_subset=train_subset, threads=1,
                                  **{**NET_SETTINGS, "mu": float(mu)})  # fmt: skip
                c0 = time.process_time()
                _, log = train(cfg, data=data)
                row = {"run_id": rid, "model": model, "input": kind, "mu": mu, "passes": passes,
                       "train_size": train_subset or len(data[0]) - validation, "validation_size": validation,
                       "seed": seed, "train_error_pct": round(100 * log[-1]["train_error"], 3),
                       "validation_error_pct": round(100 * log[-1]["test_error"], 3),
                       "cpu_seconds": round(time.process_time() - c0, 1), "command": command}  # fmt: skip
                if results is not None:
                    results.append(row)
                rows.append(row)
    return rows
