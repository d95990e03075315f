"""Ablation sweeps: a declarative grid, a crash-safe CSV, and seeds trained side by side.

``python -m lenet_utils sweep SPEC --out data/results/NAME.csv`` trains every
(configuration, seed) of a grid once and appends one CSV row per finished run.

A spec (``data/sweeps/*.json``) names a grid of hyperparameters over :data:`DEFAULTS`.
``"model"`` (one of :data:`EXTRAS`) trains a network of Part IV's zoo instead of d2l's LeNet,
e.g. ``{"model": "resnet"}`` (:mod:`lenet_utils.zoo`). The defaults are d2l's (Dive into Deep
Learning §7.6, which Li's report ablates): the sigmoid / average-pooling LeNet on
Fashion-MNIST, batch 256, SGD with lr 0.9, 10 epochs, Xavier initialisation. The 1998
paper's own recipe (LeCun et al. 1998, §II.C and Appendix C: RBF outputs, SDLM) is a
different experiment (:mod:`lenet_utils.paper`).

One module per job, every public name re-exported here:

* :mod:`~lenet_utils.sweep.spec`: the hyperparameters, the JSON spec, each run's identity;
* :mod:`~lenet_utils.sweep.results`: the crash-safe results file, its one writer, reading it;
* :mod:`~lenet_utils.sweep.training`: a point's data and network, the single-seed and
  batched-seeds engines;
* :mod:`~lenet_utils.sweep.runner`: running a sweep (resumable, ``--reuse``);
* :mod:`~lenet_utils.sweep.cost`: the engines timed on this machine, a sweep priced before it
  runs (``--dry-run``, ``--bench``).
"""

from __future__ import annotations

from .cost import UnitCosts, bench, epoch_cost, estimate, estimate_suite, reusable_run_ids, unit_costs
from .results import (
    Result,
    ResultsFile,
    SweepBusyError,
    check_numerics,
    done_run_ids,
    numerics_of,
    one_writer,
    read_results,
    result_row,
    results_frame,
    reuse_rows,
    summarize,
)
from .runner import execute, pending_runs, run_sweep
from .spec import (
    AUTO_BATCHED_MAX,
    CHOICES,
    COLUMNS,
    DEFAULTS,
    ENGINES,
    EXTRAS,
    INT_MIN,
    LENET_KNOBS,
    Run,
    Spec,
    SpecError,
    columns_for,
    describe,
    load_spec,
    run_key,
    setting,
)
from .training import build_net, engine_for, init_net, load_tensors, train_batched, train_single

__all__ = [
    "AUTO_BATCHED_MAX",
    "CHOICES",
    "COLUMNS",
    "DEFAULTS",
    "ENGINES",
    "EXTRAS",
    "INT_MIN",
    "LENET_KNOBS",
    "Result",
    "ResultsFile",
    "Run",
    "Spec",
    "SpecError",
    "SweepBusyError",
    "UnitCosts",
    "bench",
    "build_net",
    "check_numerics",
    "columns_for",
    "describe",
    "done_run_ids",
    "engine_for",
    "epoch_cost",
    "estimate",
    "estimate_suite",
    "execute",
    "init_net",
    "load_spec",
    "load_tensors",
    "numerics_of",
    "one_writer",
    "pending_runs",
    "read_results",
    "result_row",
    "results_frame",
    "reusable_run_ids",
    "reuse_rows",
    "run_key",
    "run_sweep",
    "setting",
    "summarize",
    "train_batched",
    "train_single",
    "unit_costs",
]
