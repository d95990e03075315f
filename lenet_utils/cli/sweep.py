"""``python -m lenet_utils sweep SPEC --out CSV [--seeds N] [--dry-run] [--ray [ADDRESS]] ...``.

``sweep SPEC [SPEC ...] --dry-run`` prices several sweeps at once, as a script running them one
after another with ``--reuse`` of each other's files would train them (a shared run counted once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .validate import positive_int

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..sweep import ENGINES

    p = argparse.ArgumentParser(
        prog="python -m lenet_utils sweep",
        description="Run an ablation grid (hyperparameters x seeds) into a resumable CSV: one row per finished run.",
    )
    p.add_argument("spec", nargs="*", help="sweep spec (JSON), e.g. data/sweeps/lr.json (several: --dry-run only)")
    p.add_argument("--out", help="results CSV (appended to; resumed if it exists), e.g. data/results/lr.csv")
    p.add_argument("--seeds", type=positive_int, default=None, help="use seeds 0..N-1 instead of the spec's")
    p.add_argument("--engine", choices=ENGINES, default=None, help="default: the spec's (auto)")
    p.add_argument("--threads", type=positive_int, default=None, help="intra-op threads per run (default: 1 per core)")
    p.add_argument("--limit", type=positive_int, default=None, help="stop after N new runs")
    p.add_argument("--reuse", nargs="*", default=[], help="other results CSVs whose identical runs are copied")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run each (config, seed) as a Ray task: on the cluster at ADDRESS (auto, ray://host:10001) "
                   "or, without ADDRESS, on a local Ray started for the run")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu (default, as the committed rows) or cuda")
    p.add_argument("--dry-run", action="store_true", help="show the plan and a CPU-time estimate; change nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--bench", action="store_true", help="time the single-seed engine against the batched one")
    return p


def _bench(threads: int) -> int:
    from ..sweep import bench

    print(f"CPU ms per seed per training step (d2l LeNet, Fashion-MNIST, {threads} thread(s)):")
    print(f"{'batch':>6} {'fit loop':>10} {'batched x5':>11} {'speed-up':>9}")
    for r in bench(num_threads=threads):
        print(f"{r['batch_size']:>6} {r['single_ms_per_seed_step']:>10.2f} {r['batched_ms_per_seed_step']:>11.2f} "
              f"{r['speedup']:>8.2f}x")  # fmt: skip
    return 0


def _dry_run(specs: list, out: str | None, engine: str | None, threads: int, reuse: list[str]) -> int:
    from ..sweep import done_run_ids, estimate, estimate_suite, reusable_run_ids

    # read only: a dry run never touches the results file or the --reuse files
    done = done_run_ids(out) if out else set()
    copied = reusable_run_ids(reuse, specs, out) - done
    if len(specs) == 1:
        spec = specs[0]
        total, lines = estimate(spec, done | copied, engine or spec.engine, threads)
        print(f"{spec.name}: {len(spec.configs)} points x {len(spec.seeds)} seeds; {len(done)} rows in {out}"
              + (f"; {len(copied)} to copy from --reuse files" if copied else ""))  # fmt: skip
    else:
        runs = {r.run_id for s in specs for r in s.runs()}
        total, lines = estimate_suite(specs, done | copied, engine or specs[0].engine, threads)
        print(f"{len(specs)} sweeps, {len(runs)} distinct runs"
              + (f"; {len(copied)} to copy from --reuse files" if copied else ""))  # fmt: skip
    print("\n".join(lines))
    print(f"estimated CPU time of what is left: {total / 3600:.2f} CPU-hours ({threads} thread(s))")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..data import DataError
    from ..engine import resolve_device
    from ..settings import SettingsChangedError
    from ..sweep import SpecError, SweepBusyError, load_spec, run_sweep

    parser = build_parser()
    a = parser.parse_args(argv)
    if a.bench:
        return _bench(a.threads or 1)
    if not a.spec:
        parser.error("give a SPEC and --out CSV (or --bench)")
    if len(a.spec) > 1 and not a.dry_run:
        parser.error(f"one SPEC per run ({len(a.spec)} given); several are priced together with --dry-run only")
    if len(a.spec) > 1 and a.out:
        parser.error("--out names one sweep's results: price several sweeps without it (and --reuse their files)")
    if not a.out and not a.dry_run:
        parser.error("give --out CSV, the results file to write (or --dry-run to price the sweep)")
    if a.ray is not None and a.engine == "batched":
        parser.error("--ray runs one (config, seed) per task with the single-seed engine: drop --engine batched")
    try:
        specs = [load_spec(s) for s in a.spec]
        if a.seeds is not None:
            specs = [s.with_seeds(a.seeds) for s in specs]
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.dry_run:
        try:
            return _dry_run(specs, a.out, a.engine, a.threads or 1, a.reuse)
        except (ValueError, RuntimeError) as e:  # e.g. a configuration an engine cannot train
            print(f"error: {e}", file=sys.stderr)
            return 1
    spec = specs[0]
    try:
        if a.ray is not None:
            from ..cluster import run_sweep_on_ray

            run_sweep_on_ray(spec, Path(a.out), address=None if a.ray == "local" else a.ray,
                             num_threads=a.threads or 1, limit=a.limit, reuse=a.reuse,
                             progress=not a.no_progress)  # fmt: skip
        else:
            resolve_device(a.device)
            run_sweep(spec, a.out, engine=a.engine, num_threads=a.threads, limit=a.limit, reuse=a.reuse,
                      progress=not a.no_progress, device=a.device)  # fmt: skip
    except (DataError, ValueError, RuntimeError, SweepBusyError, SettingsChangedError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
