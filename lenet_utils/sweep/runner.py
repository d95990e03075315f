"""Running a sweep: every (configuration, seed) not yet in the results file, once.

:func:`run_sweep` holds the file's one writer, copies what ``--reuse`` files already hold
(:func:`pending_runs`), groups the remaining seeds of each point for the batched engine and
appends one row per finished run. :func:`execute` is the unit of work of a distributed sweep
(:mod:`lenet_utils.cluster`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .results import ResultsFile, check_numerics, one_writer, result_row, reuse_rows
from .spec import ENGINES, Run, Spec, describe
from .training import engine_for, train_batched, train_single

__all__ = ["execute", "pending_runs", "run_sweep"]


def run_sweep(
    spec: Spec,
    out: str | Path,
    *,
    engine: str | None = None,
    num_threads: int | None = None,
    limit: int | None = None,
    reuse: Sequence[str | Path] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | None = "cpu",
) -> ResultsFile:
    """Run every (configuration, seed) of ``spec`` not yet in ``out``, appending one row per run.

    Args:
        spec: from :func:`load_spec`.
        out: the results CSV (created with its header if missing; resumed otherwise).
        engine: ``auto`` (batched for batch sizes up to :data:`AUTO_BATCHED_MAX`), ``fit`` or
            ``batched``; default the spec's.
        num_threads: intra-op threads (default: one per core, as ``fit``).
        limit: stop after this many new runs (for chunked or test runs).
        reuse: other results files; a run already finished there (same ``run_id``: the same
            hyperparameters and seed) is copied instead of trained again (its ``sweep`` column
            keeps the name of the sweep that trained it).
        progress: a tqdm bar over seed-epochs, with ETA.
        log: where one-line messages go.

    Raises:
        SweepBusyError: another process is running a sweep into ``out``.
    """
    with one_writer(Path(out)):
        return _run_sweep(spec, out, engine, num_threads, limit, reuse, progress, log, device)


def pending_runs(
    spec: Spec,
    results: ResultsFile,
    reuse: Sequence[str | Path] = (),
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> list[Run]:
    """The runs of ``spec`` still to train into ``results``, in the sweep's order.

    Runs already in ``results`` are skipped; runs finished in one of the ``reuse`` files (same
    ``run_id``) are appended to ``results`` first, through its one writer, and skipped too.
    ``limit`` keeps the first ``limit`` of the rest.
    """
    if results.dropped_torn_line:
        log(f"{results.path}: dropped a torn last line (the previous run was killed mid-write)")
    check_numerics(results)
    done = results.done()
    todo = [r for r in spec.runs() if r.run_id not in done]
    copied = reuse_rows(reuse, {r.run_id for r in todo}, results.path)
    for r in todo:
        if r.run_id in copied:
            results.append(copied[r.run_id])  # "sweep" still names the sweep that trained it
    if copied:
        log(f"{results.path}: copied {len(copied)} finished run(s) from other results files")
    todo = [r for r in todo if r.run_id not in copied]
    if limit is not None:
        todo = todo[:limit]
    log(f"{spec.name}: {len(spec.runs())} runs in the grid, {len(spec.runs()) - len(todo)} done, {len(todo)} to run")
    return todo


def execute(
    spec_name: str, run: Run, *, num_threads: int = 1, device: str | None = None
) -> dict[str, Any]:
    """Train one run with the single-seed engine and return its finished CSV row.

    This is the unit of work a distributed sweep sends to a worker (:mod:`lenet_utils.cluster`).
    """
    from ..train import configure_threads

    threads = configure_threads(num_threads)
    return result_row(
        spec_name,
        run,
        train_single(run.config, run.seed, num_threads=threads),
        threads,
    )


def _run_sweep(
    spec: Spec,
    out: str | Path,
    engine: str | None,
    num_threads: int | None,
    limit: int | None,
    reuse: Sequence[str | Path],
    progress: bool,
    log: Callable[[str], None],
    device: str | None = "cpu",
) -> ResultsFile:
    from ..train import configure_threads

    engine = engine or spec.engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    threads = configure_threads(num_threads)
    results = ResultsFile(out, spec.columns())
    todo = pending_runs(spec, results, reuse, limit, log)
    # group the remaining seeds of each configuration
    groups: list[tuple[dict[str, Any], list[Run]]] = []
    for run in todo:
        if groups and groups[-1][0] is run.config and len(groups[-1][1]) < spec.group:
            groups[-1][1].append(run)
        else:
            groups.append((run.config, [run]))
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(r.config["epochs"] for r in todo), unit="epoch", desc=spec.name, mininterval=2.0,
            dynamic_ncols=True, file=sys.stderr, smoothing=0.05,
        )  # fmt: skip
    tick = bar.update if bar is not None else None
    for config, runs in groups:
        eng = engine_for(config, engine)
        if bar is not None:
            bar.set_postfix_str(f"{describe(config)}; seeds {[r.seed for r in runs]}; {eng}")
        if eng == "batched":
            outs = train_batched(config, [r.seed for r in runs], num_threads=threads, on_epoch_end=tick, device=device)
            for run, result in zip(runs, outs, strict=True):
                results.append(result_row(spec.name, run, result, threads))
        else:
            for run in runs:
                result = train_single(config, run.seed, num_threads=threads, on_epoch_end=tick, device=device)
                results.append(result_row(spec.name, run, result, threads))
    if bar is not None:
        bar.close()
    return results
