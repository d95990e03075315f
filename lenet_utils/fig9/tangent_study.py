"""Choosing the tangent-distance row's open settings on held-out training digits, never the test set.

The paper gives none of ``knn-tangent``'s settings (:mod:`.tangent`): the 16x16 input (the whole
28x28 frame shrunk, ``"16x16"``, or the digit's own 20x20 box subsampled, ``"crop16"``: see
:func:`~lenet_utils.fig9.base.flat_inputs`), the Gaussian smoothing ``sigma`` of the tangents and
the number of Euclidean candidates ``prefilter`` re-ranked by the tangent distance.

:func:`tangent_validation` fits the classifier on training digits 0-49,999 (the prototypes) and
counts its errors on training digits 50,000-59,999 (held out), one setting at a time; ``k`` and
``ridge`` stay :func:`~lenet_utils.fig9.tangent.fit_tangent_knn`'s. ``python -m lenet_utils fig9
--tangent-validation CSV`` runs it; the committed study and its commands are in
``data/fig9/README.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["HELD_OUT", "PROTOTYPES", "TANGENT_INPUTS", "TANGENT_VALIDATION_COLUMNS", "tangent_validation"]

TANGENT_VALIDATION_COLUMNS = ["run_id", "input", "sigma", "prefilter", "k", "ridge", "prototypes", "held_out",
                              "held_out_error_pct", "cpu_seconds", "command"]  # fmt: skip
#: the input kinds of :func:`~lenet_utils.fig9.base.flat_inputs` the tangents work on (16x16 digits)
TANGENT_INPUTS: tuple[str, ...] = ("16x16", "crop16")
#: training digits ``[0, PROTOTYPES)`` are the prototypes, ``[PROTOTYPES, PROTOTYPES + HELD_OUT)`` held out
PROTOTYPES = 50_000
HELD_OUT = 10_000


def tangent_validation(
    inputs: Sequence[str],
    sigmas: Sequence[float],
    prefilters: Sequence[int],
    *,
    prototypes: int | None = None,
    held_out: int | None = None,
    threads: int = 1,
    out: str | Path | None = None,
    command: str = "",
) -> list[dict[str, Any]]:
    """The held-out error of the tangent-distance k-NN for each (input, sigma, prefilter).

    Prototypes: the first ``prototypes`` (default all 50,000) of training digits 0-49,999; held
    out: the first ``held_out`` (default all 10,000) of training digits 50,000-59,999. One row
    per setting (the :data:`TANGENT_VALIDATION_COLUMNS`); ``cpu_seconds`` is the fit and the
    held-out pass (the inputs, prepared once per kind, not counted).

    ``out``: a CSV the rows are appended to (:class:`lenet_utils.sweep.ResultsFile`); a setting
    already there is skipped, so a killed study continues where it stopped.
    """
    import torch

    from ..data import load_split
    from ..sweep import ResultsFile
    from ..threads import threads as thread_limit
    from .base import flat_inputs
    from .tangent import fit_tangent_knn

    for kind in inputs:
        if kind not in TANGENT_INPUTS:
            raise ValueError(f"input {kind!r}: the tangent distance takes {' or '.join(TANGENT_INPUTS)}")
    n_proto = min(prototypes or PROTOTYPES, PROTOTYPES)
    n_held = min(held_out or HELD_OUT, HELD_OUT)
    defaults = fit_tangent_knn.__kwdefaults__
    k, ridge = defaults["k"], defaults["ridge"]
    results = ResultsFile(out, TANGENT_VALIDATION_COLUMNS) if out is not None else None
    done = results.done() if results is not None else set()
    rows = []
    for kind in inputs:
        data = None
        for sigma in sigmas:
            for prefilter in prefilters:
                rid = (f"knn-tangent|input={kind}|sigma={sigma:g}|prefilter={prefilter}|k={k}|ridge={ridge:g}"
                       f"|prototypes={n_proto}|held_out={n_held}")  # fmt: skip
                if rid in done:
                    continue
                if data is None:
                    X, y = load_split("mnist", True)
                    held = slice(PROTOTYPES, PROTOTYPES + n_held)
                    data = flat_inputs(X[:n_proto], kind), y[:n_proto], flat_inputs(X[held], kind), y[held]
                Xp, yp, Xh, yh = data
                with torch.no_grad(), thread_limit(threads):
                    c0 = time.process_time()
                    fitted = fit_tangent_knn(Xp, yp, sigma=float(sigma), prefilter=int(prefilter))
                    wrong = int((fitted.predict(Xh) != yh).sum())
                    cpu = time.process_time() - c0
                row = {"run_id": rid, "input": kind, "sigma": sigma, "prefilter": prefilter, "k": k, "ridge": ridge,
                       "prototypes": n_proto, "held_out": n_held,
                       "held_out_error_pct": round(100 * wrong / n_held, 3), "cpu_seconds": round(cpu, 1),
                       "command": command}  # fmt: skip
                if results is not None:
                    results.append(row)
                rows.append(row)
    return rows
