"""What a sweep will cost: the engines timed on this machine, and a sweep priced before it runs.

:func:`unit_costs` times short probe runs of the real engines (a step, a test image, an
epoch's overhead); :func:`estimate` prices a sweep's missing runs from them
(``sweep --dry-run``), :func:`estimate_suite` several sweeps run one after another, and
:func:`bench` compares the two engines step by step (``sweep --bench``).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import reuse_rows
from .spec import DEFAULTS, Spec, describe
from .training import engine_for, train_batched, train_single

__all__ = ["UnitCosts", "bench", "epoch_cost", "estimate", "estimate_suite", "reusable_run_ids", "unit_costs"]


@dataclass(frozen=True)
class UnitCosts:
    """CPU seconds per seed that :func:`unit_costs` measured for one configuration and engine."""

    step: float  #: one training step
    image: float  #: evaluating one test image
    epoch: float  #: what a short epoch costs beyond its steps and images (its set-up, the evaluation's)


def unit_costs(
    config: dict[str, Any],
    engine: str,
    seeds: int = 1,
    num_threads: int = 1,
    repeats: int = 3,
) -> UnitCosts:
    """The :class:`UnitCosts` of ``engine`` (``"fit"`` or ``"batched"``) on this machine.

    The real engine (:func:`train_single` / :func:`train_batched`) runs one epoch of K and of
    3K steps, and one of K steps with 2,000 more test images, on the configuration's own data
    (after a warm-up run), ``repeats`` times in turn, each timed by the clock of a results row
    (loading the data and building the networks are outside it). The differences of the
    median CPU times give a step and an image; what the K-step epoch cost beyond its steps and
    images is the epoch's own overhead. The probes train at the configuration's own learning
    rate: a step's cost depends on where training goes (Adam at lr 0.1 on d2l's sigmoid LeNet
    drives its gradients into subnormal floats, and its steps took 5 to 12 times as long as at
    lr 0.001 on the machine of ``data/results/suite_estimate.txt``), so a point is never priced
    at another point's rate.
    """
    from ..threads import configure_threads

    configure_threads(num_threads)
    k = max(4, min(40, 8000 // config["batch_size"]))
    warm_up, probes = (k, 64), ((k, 64), (3 * k, 64), (k, 2064))
    cpu, seed_list = [], list(range(seeds))
    for steps, tests in (warm_up, *probes * repeats):
        probe = {
            **config,
            "epochs": 1,
            "train_subset": config["batch_size"] * steps,
            "test_subset": tests,
        }
        if engine == "batched":  # its results are CPU seconds per seed
            result = train_batched(probe, seed_list, num_threads=num_threads)[0]
        else:
            result = train_single(probe, 0, num_threads=num_threads)
        cpu.append(result.cpu_seconds)
    short, long, more_tests = (statistics.median(cpu[i::3]) for i in (1, 2, 3))
    step = max(long - short, 1e-9) / (2 * k)
    image = max(more_tests - short, 0.0) / 2000
    return UnitCosts(step, image, max(short - k * step - 64 * image, 0.0))


def epoch_cost(
    config: dict[str, Any], engine: str, seeds: int = 1, num_threads: int = 1
) -> float:
    """CPU seconds per seed of one epoch of ``config``: its training steps, its test pass and
    the epoch's overhead."""
    unit = unit_costs(config, engine, seeds, num_threads)
    steps = math.ceil((config["train_subset"] or 60000) / config["batch_size"])
    images = config["test_subset"] or 10000
    return unit.step * steps + unit.image * images + unit.epoch


def bench(batch_sizes: Sequence[int] = (2, 8, 32, 256), seeds: int = 5, num_threads: int = 1) -> list[dict[str, float]]:
    """CPU ms per seed per training step, the single-seed engine against the batched one."""
    out = []
    for bs in batch_sizes:
        cfg = {**DEFAULTS, "batch_size": bs}
        single = unit_costs(cfg, "fit", 1, num_threads).step
        batched = unit_costs(cfg, "batched", seeds, num_threads).step
        out.append({"batch_size": bs, "seeds": seeds, "single_ms_per_seed_step": single * 1e3,
                    "batched_ms_per_seed_step": batched * 1e3, "speedup": single / batched,
                    "single_cpu_s_per_epoch": single * math.ceil(60000 / bs)})  # fmt: skip
    return out


def estimate(
    spec: Spec, done: set[str], engine: str, num_threads: int, cache: dict[str, float] | None = None
) -> tuple[float, list[str]]:
    """A CPU-seconds estimate of the runs not yet done, from :func:`epoch_cost` per distinct point.

    The unit costs are measured here, by short probe runs (:func:`unit_costs`). Without timing
    anything, ``tests/test_sweep.py`` checks what the estimate does with them: given the unit
    costs of the committed ``lr`` sweep's runs, it comes within 20% of the CPU seconds recorded by
    the committed ``epochs`` sweep and by each ``lr`` point left out of the calibration. The probes'
    own accuracy is a timing, so no unit test checks it; the experiments appendix compares a
    dry run with its live runs when the page executes. ``cache``: CPU seconds per seed-epoch of
    the points already priced (shared between the sweeps of :func:`estimate_suite`).
    """
    todo = [r for r in spec.runs() if r.run_id not in done]
    lines, total = [], 0.0
    cache = {} if cache is None else cache
    for config in spec.configs:
        runs = [r for r in todo if r.config is config]
        if not runs:
            continue
        eng = engine_for(config, engine)
        seeds = min(len(runs), spec.group) if eng == "batched" else 1
        key = json.dumps({**config, "epochs": 1, "engine": eng, "seeds": seeds}, sort_keys=True)
        if key not in cache:
            cache[key] = epoch_cost(config, eng, seeds, num_threads)
        cost = cache[key] * config["epochs"] * len(runs)
        total += cost
        lines.append(f"  {describe(config):55s} {len(runs):3d} runs x {config['epochs']:3d} epochs "
                     f"~{cost / 60:7.1f} CPU-min ({eng}, {cache[key]:.1f} CPU-s per seed-epoch)")  # fmt: skip
    return total, lines


def estimate_suite(
    specs: Sequence[Spec], done: set[str], engine: str, num_threads: int
) -> tuple[float, list[str]]:
    """:func:`estimate` of several sweeps run one after another with ``--reuse`` of each other's
    files (as ``data/sweeps/run_all.sh`` runs them): a run an earlier sweep trains is copied by
    the later ones, so it is priced once; a point's unit costs are measured once."""
    done, cache, total, lines = set(done), {}, 0.0, []
    for spec in specs:
        cost, spec_lines = estimate(spec, done, engine, num_threads, cache)
        total += cost
        lines += [f"{spec.name}: ~{cost / 3600:.2f} CPU-hours", *spec_lines]
        done |= {r.run_id for r in spec.runs()}
    return total, lines


def reusable_run_ids(paths: Iterable[str | Path], specs: Iterable[Spec], out: str | Path | None) -> set[str]:
    """The runs of ``specs`` that ``--reuse`` of ``paths`` would copy instead of training (read only)."""
    wanted = {r.run_id for spec in specs for r in spec.runs()}
    return set(reuse_rows(paths, wanted, None if out is None else Path(out)))
