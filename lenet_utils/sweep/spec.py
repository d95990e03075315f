"""What a sweep is: the hyperparameters it can turn, the JSON spec of a grid, and each run's identity.

The spec is a small JSON file (``data/sweeps/*.json``)::

    {
      "name": "lr",
      "description": "learning rate, d2l defaults otherwise",
      "base":   {"epochs": 10},                      # overrides of DEFAULTS for every point
      "grid":   {"lr": [0.9, 0.1, 0.2]},             # Cartesian product of these lists
      "points": [{}, {"activation": "relu"}],        # optional explicit points (x grid)
      "seeds":  5                                    # 5 -> seeds 0..4, or an explicit list
    }

Every point is :data:`DEFAULTS` updated by ``base``, then by one entry of ``points``, then by one
combination of ``grid``. :func:`load_spec` validates it (:class:`SpecError` names the key and
what to write instead). A run is one (configuration, seed): :class:`Run`, whose ``run_id``
hashes :func:`run_key`, the resume key of every results file. The layout of a results file's
row, :data:`COLUMNS`, is fixed here too, since it follows from the hyperparameters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..zoo import MODELS

__all__ = [
    "AUTO_BATCHED_MAX",
    "CHOICES",
    "COLUMNS",
    "DEFAULTS",
    "ENGINES",
    "EXTRAS",
    "INT_MIN",
    "LENET_KNOBS",
    "Run",
    "Spec",
    "SpecError",
    "columns_for",
    "describe",
    "load_spec",
    "run_key",
    "setting",
]


#: Every hyperparameter a sweep can turn, with d2l's default (Dive into Deep Learning §7.6:
#: ``load_data_fashion_mnist(256)``, ``train_ch6(net, ..., num_epochs=10, lr=0.9)``).
DEFAULTS: dict[str, Any] = {
    "dataset": "fashion",  # d2l trains LeNet on Fashion-MNIST; the paper used MNIST (§III.A)
    "batch_size": 256,  # d2l; the paper updated after every example (§II.C, "stochastic")
    "lr": 0.9,  # d2l, for plain SGD on the sigmoid net
    "epochs": 10,  # d2l; the paper made 20 passes (§III.A)
    "optimizer": "sgd",  # d2l; the paper used SDLM (Appendix C)
    "activation": "sigmoid",  # d2l; the paper's f(a) = A tanh(S a) (Appendix A); see build_net
    "pool": "avg",  # d2l; the paper's subsampling is a trainable average (§II.B, S2)
    "c1_kernel": 5,  # 5x5 receptive fields (§II.B, C1)
    "pool_size": 2,  # 2x2 non-overlapping windows (§II.B, S2)
    "train_subset": 0,  # 0: all 60,000 training images; n: the first n (live demos, tests)
    "test_subset": 0,  # 0: all 10,000 test images; n: the first n
}

#: Settings added after the first results were committed. A configuration holds one only when
#: its spec sets it to something else than this default, so every earlier run keeps its
#: ``run_id`` and every earlier results file its columns (:func:`columns_for`).
#: ``model`` is the network, a name of :data:`lenet_utils.zoo.MODELS` (Part IV's zoo);
#: the LeNet knobs of :data:`DEFAULTS` (``activation``, ``pool``, ``c1_kernel``,
#: ``pool_size``) apply to ``lenet`` only.
EXTRAS: dict[str, Any] = {"model": "lenet"}

#: The hyperparameters that shape d2l's LeNet (:func:`build_net`), and no other network.
LENET_KNOBS = ("activation", "pool", "c1_kernel", "pool_size")

#: The allowed values of the categorical hyperparameters.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("fashion", "mnist"),
    "optimizer": ("sgd", "adagrad", "adam"),
    "activation": ("sigmoid", "relu", "relu_conv", "tanh"),
    "pool": ("avg", "max"),
    "model": tuple(MODELS),
}

#: Integer hyperparameters and their smallest allowed value.
INT_MIN = {"batch_size": 1, "epochs": 1, "c1_kernel": 1, "pool_size": 1, "train_subset": 0, "test_subset": 0}

ENGINES = ("auto", "fit", "batched")

#: ``auto`` uses the batched engine up to this batch size (see ``--bench``).
AUTO_BATCHED_MAX = 8

_SPEC_KEYS = {"name", "description", "base", "grid", "points", "seeds", "engine", "group"}


class SpecError(ValueError):
    """A sweep spec is malformed; the message names the key and what to write instead."""


def _check_value(key: str, value: Any, where: str) -> Any:
    """Validate one hyperparameter value; return it normalised (ints as int, lr as float)."""
    if key not in DEFAULTS and key not in EXTRAS:
        raise SpecError(f"{where}: unknown hyperparameter {key!r}; known: {', '.join(sorted({**DEFAULTS, **EXTRAS}))}")
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise SpecError(f"{where}: {key} must be one of {list(CHOICES[key])}, got {value!r}")
        return value
    if key in INT_MIN:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}: {key} must be an integer, got {value!r}")
        if value < INT_MIN[key]:
            raise SpecError(f"{where}: {key} must be >= {INT_MIN[key]}, got {value}")
        return value
    # lr
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise SpecError(f"{where}: {key} must be a positive number, got {value!r}")
    return round(float(value), 10)


def run_key(config: dict[str, Any], seed: int) -> str:
    """The run's identity: every hyperparameter of :data:`DEFAULTS`, the
    :data:`EXTRAS` that are not at their default, and the seed (so runs made
    before an extra existed keep their id)."""
    extras = {
        k: config[k] for k in EXTRAS if config.get(k, EXTRAS[k]) != EXTRAS[k]
    }
    return json.dumps(
        {**{k: config[k] for k in sorted(DEFAULTS)}, **extras, "seed": seed},
        sort_keys=True,
    )


def setting(config: dict[str, Any], key: str) -> Any:
    """A hyperparameter of ``config``, an extra at its default when the configuration omits it."""
    return config[key] if key in config else EXTRAS[key]


@dataclass(frozen=True)
class Run:
    """One (configuration, seed) of a sweep."""

    config: dict[str, Any]
    seed: int

    @property
    def run_id(self) -> str:
        """12 hex digits of the SHA-1 of the hyperparameters and seed (the
        resume key)."""
        return hashlib.sha1(
            run_key(self.config, self.seed).encode()
        ).hexdigest()[:12]


@dataclass
class Spec:
    """A validated sweep: the full configuration of every point, and the seeds."""

    name: str
    configs: list[dict[str, Any]]
    seeds: list[int]
    description: str = ""
    engine: str = "auto"
    group: int = 10
    varied: list[str] = field(default_factory=list)

    def runs(self) -> list[Run]:
        """Every (configuration, seed), configuration-major: the order the sweep runs them in."""
        return [Run(c, s) for c in self.configs for s in self.seeds]

    def columns(self) -> list[str]:
        """The columns of this sweep's results file (:func:`columns_for`)."""
        return columns_for(self.configs)

    def with_seeds(self, n: int) -> Spec:
        """The same grid with seeds ``0..n-1`` (``--seeds N`` on the command line)."""
        if n < 1:
            raise SpecError(f"--seeds must be at least 1, got {n}")
        return Spec(self.name, self.configs, list(range(n)), self.description, self.engine, self.group, self.varied)

    def miniature(self, *, seeds: int = 2, epochs: int = 2, train_subset: int = 2000, test_subset: int = 500) -> Spec:
        """The same grid, small enough to run live in a notebook (about a second per run).

        Every point keeps its own values of the knobs the sweep turns; the runs are cut to
        ``seeds`` seeds, at most ``epochs`` epochs, the first ``train_subset`` training and
        ``test_subset`` test images. The result is a new sweep, ``NAME-mini``: its run ids
        differ from the full sweep's, so its rows can never be mistaken for the committed ones.
        """
        if min(seeds, epochs, train_subset, test_subset) < 1:
            raise SpecError("a miniature needs at least 1 seed, 1 epoch, 1 training and 1 test image")
        configs = [
            {**c, "epochs": min(c["epochs"], epochs), "train_subset": train_subset, "test_subset": test_subset}
            for c in self.configs
        ]
        name = f"{self.name}-mini"
        return Spec(name, configs, list(range(seeds)), self.description, self.engine, self.group, self.varied)


def load_spec(spec: str | Path | dict[str, Any]) -> Spec:
    """Read and validate a sweep spec (a path to JSON, or the dict itself).

    Raises :class:`SpecError` for unknown keys, unknown hyperparameters, bad values, an empty
    grid, repeated points or repeated seeds.
    """
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise SpecError(f"no sweep spec at {path} (the committed specs are in data/sweeps/*.json)")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SpecError(f"{path} is not valid JSON: {e}") from None
        where = str(path)
    else:
        raw, where = spec, "spec"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a spec is a JSON object with keys {sorted(_SPEC_KEYS)}")
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f'{where}: "name" (a non-empty string) is required')
    base = raw.get("base", {})
    if not isinstance(base, dict):
        raise SpecError(f'{where}: "base" must be an object of hyperparameters')
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        raise SpecError(f'{where}: "grid" must map hyperparameters to lists of values')
    points = raw.get("points", [{}])
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise SpecError(f'{where}: "points" must be a non-empty list of objects')
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: grid[{key!r}] must be a non-empty list, got {values!r}")
    base = {k: _check_value(k, v, f"{where} base") for k, v in base.items()}
    points = [{k: _check_value(k, v, f"{where} points[{i}]") for k, v in p.items()} for i, p in enumerate(points)]
    grid = {k: [_check_value(k, v, f"{where} grid[{k!r}]") for v in vs] for k, vs in grid.items()}
    seeds_raw = raw.get("seeds", 5)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        if seeds_raw < 1:
            raise SpecError(f'{where}: "seeds" must be >= 1, got {seeds_raw}')
        seeds = list(range(seeds_raw))
    elif isinstance(seeds_raw, list) and seeds_raw and all(isinstance(s, int) and s >= 0 for s in seeds_raw):
        seeds = list(seeds_raw)
    else:
        raise SpecError(f'{where}: "seeds" must be a count (5) or a list of non-negative integers, got {seeds_raw!r}')
    if len(set(seeds)) != len(seeds):
        raise SpecError(f'{where}: "seeds" repeats a seed: {seeds}')
    engine = raw.get("engine", "auto")
    if engine not in ENGINES:
        raise SpecError(f'{where}: "engine" must be one of {list(ENGINES)}, got {engine!r}')
    group = raw.get("group", 10)
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise SpecError(f'{where}: "group" (seeds trained together) must be a positive integer, got {group!r}')
    configs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    keys = list(grid)
    for point in points:
        for combo in itertools.product(*(grid[k] for k in keys)):
            config = _config({**DEFAULTS, **base, **point, **dict(zip(keys, combo, strict=True))}, where)
            key = run_key(config, 0)
            if key in seen:
                raise SpecError(f"{where}: point {len(configs)} repeats point {seen[key]} ({describe(config)})")
            seen[key] = len(configs)
            configs.append(config)
    varied = [k for k in [*DEFAULTS, *EXTRAS] if len({setting(c, k) for c in configs}) > 1]
    description = raw.get("description", "")
    return Spec(name, configs, seeds, str(description), engine, group, varied)


def _config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """A point's configuration without the extras left at their default; LeNet's knobs only on LeNet."""
    config = {k: v for k, v in config.items() if k in DEFAULTS or v != EXTRAS[k]}
    model = setting(config, "model")
    turned = [k for k in LENET_KNOBS if config[k] != DEFAULTS[k]]
    if model != "lenet" and turned:
        raise SpecError(f"{where}: {', '.join(turned)} shape(s) d2l's LeNet only; drop it for model {model!r}")
    return config


def describe(config: dict[str, Any]) -> str:
    """A point in a few words: the settings where it differs from d2l's defaults."""
    every = {**DEFAULTS, **EXTRAS}
    diff = {k: v for k, v in sorted(config.items(), key=lambda kv: kv[0] not in EXTRAS) if every[k] != v}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "d2l defaults"


def columns_for(configs: Iterable[dict[str, Any]]) -> list[str]:
    """:data:`COLUMNS`, with a column (after ``test_subset``) for each of the :data:`EXTRAS`
    that some configuration sets: a sweep of LeNets writes exactly the columns it always did."""
    configs = list(configs)
    extra = [k for k in EXTRAS if any(k in c for c in configs)]
    i = COLUMNS.index("test_subset") + 1
    return [*COLUMNS[:i], *extra, *COLUMNS[i:]]


#: Columns of a results CSV, in order. Per-epoch series are JSON lists.
COLUMNS: list[str] = [
    "run_id",
    "sweep",
    "seed",
    *DEFAULTS,
    "final_train_loss",
    "final_train_acc",
    "final_test_acc",
    "train_loss",
    "train_acc",
    "test_acc",
    "seconds",
    "cpu_seconds",
    "engine",
    "group_size",
    "threads",
    "versions",
    "finished_at",
]
