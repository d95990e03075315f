"""Ablation sweeps: a declarative grid, a crash-safe CSV, and seeds trained side by side.

``python -m lenet_utils sweep SPEC --out data/results/NAME.csv`` trains every
(configuration, seed) of a grid once and appends one CSV row per finished run.

The spec is a small JSON file (``data/sweeps/*.json``)::

    {
      "name": "lr",
      "description": "learning rate, d2l defaults otherwise",
      "base":   {"epochs": 10},                      # overrides of DEFAULTS for every point
      "grid":   {"lr": [0.9, 0.1, 0.2]},             # Cartesian product of these lists
      "points": [{}, {"activation": "relu"}],        # optional explicit points (x grid)
      "seeds":  5                                    # 5 -> seeds 0..4, or an explicit list
    }

Every point is ``DEFAULTS`` updated by ``base``, then by one entry of ``points``, then by one
combination of ``grid``. ``"model"`` (one of :data:`EXTRAS`) trains a network of Part IV's zoo
instead of d2l's LeNet, e.g. ``{"model": "resnet"}`` (:mod:`lenet_utils.zoo`).
The defaults are d2l's (Dive into Deep Learning §7.6, which Li's
report ablates): the sigmoid / average-pooling LeNet on Fashion-MNIST, batch 256,
SGD with lr 0.9, 10 epochs, Xavier initialisation. The 1998 paper's own recipe (LeCun et al.
1998, §II.C and Appendix C: RBF outputs, SDLM) is a different experiment
(:mod:`lenet_utils.paper`).

Crash safety. A row is written with a single ``write`` on a file opened for appending and
``fsync``'d before the next run starts, so killing the process at any moment leaves only
complete rows, except possibly one torn last line; :class:`ResultsFile` detects a torn last
line on resume and cuts it off. A run is identified by ``run_id``, a hash of its
hyperparameters and seed, so a resumed sweep skips exactly the runs already in the file:
nothing is lost, nothing is run twice.

Speed. Small batches spend their time in Python and dispatch overhead, not in arithmetic.
The ``batched`` engine therefore trains several seeds of one configuration as *one* model:
``torch.func.stack_module_state`` stacks the seeds' weights, ``torch.func.vmap`` over
``torch.func.functional_call`` runs them side by side, each seed with its own initialisation
and its own data order (exactly the ones the single-seed path would use), so the result is
the same as calling :func:`lenet_utils.train.fit` once per seed, up to floating-point
rounding (``tests/test_sweep.py`` checks this). ``python -m lenet_utils sweep --bench``
measures the speed-up of the two engines on this machine.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import engine
from .engine import NUMERICS, Callback, Task, resolve_device
from .files import atomic_write
from .seeds import SeedStack, seed_batches, stacked_cross_entropy
from .settings import SettingsChangedError, versions
from .zoo import MODELS

__all__ = [
    "COLUMNS",
    "DEFAULTS",
    "EXTRAS",
    "ResultsFile",
    "Run",
    "Spec",
    "SpecError",
    "SweepBusyError",
    "UnitCosts",
    "bench",
    "columns_for",
    "done_run_ids",
    "epoch_cost",
    "estimate",
    "estimate_suite",
    "execute",
    "load_spec",
    "numerics_of",
    "one_writer",
    "pending_runs",
    "read_results",
    "result_row",
    "results_frame",
    "reusable_run_ids",
    "run_sweep",
    "summarize",
    "train_batched",
    "train_single",
    "unit_costs",
]

# --------------------------------------------------------------------------------------------
# Hyperparameters and specs

#: Every hyperparameter a sweep can turn, with d2l's default (Dive into Deep Learning §7.6:
#: ``load_data_fashion_mnist(256)``, ``train_ch6(net, ..., num_epochs=10, lr=0.9)``).
DEFAULTS: dict[str, Any] = {
    "dataset": "fashion",  # d2l trains LeNet on Fashion-MNIST; the paper used MNIST (§III.A)
    "batch_size": 256,  # d2l; the paper updated after every example (§II.C, "stochastic")
    "lr": 0.9,  # d2l, for plain SGD on the sigmoid net
    "epochs": 10,  # d2l; the paper made 20 passes (§III.A)
    "optimizer": "sgd",  # d2l; the paper used SDLM (Appendix C)
    "activation": "sigmoid",  # d2l; the paper's f(a) = A tanh(S a) (Appendix A); see _build
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

#: The hyperparameters that shape d2l's LeNet (:func:`_build`), and no other network.
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
_INT_MIN = {"batch_size": 1, "epochs": 1, "c1_kernel": 1, "pool_size": 1, "train_subset": 0, "test_subset": 0}

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
    if key in _INT_MIN:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}: {key} must be an integer, got {value!r}")
        if value < _INT_MIN[key]:
            raise SpecError(f"{where}: {key} must be >= {_INT_MIN[key]}, got {value}")
        return value
    # lr
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise SpecError(f"{where}: {key} must be a positive number, got {value!r}")
    return round(float(value), 10)


def _canonical(config: dict[str, Any], seed: int) -> str:
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


def _setting(config: dict[str, Any], key: str) -> Any:
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
            _canonical(self.config, self.seed).encode()
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
            key = _canonical(config, 0)
            if key in seen:
                raise SpecError(f"{where}: point {len(configs)} repeats point {seen[key]} ({_describe(config)})")
            seen[key] = len(configs)
            configs.append(config)
    varied = [k for k in [*DEFAULTS, *EXTRAS] if len({_setting(c, k) for c in configs}) > 1]
    description = raw.get("description", "")
    return Spec(name, configs, seeds, str(description), engine, group, varied)


def _config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """A point's configuration without the extras left at their default; LeNet's knobs only on LeNet."""
    config = {k: v for k, v in config.items() if k in DEFAULTS or v != EXTRAS[k]}
    model = _setting(config, "model")
    turned = [k for k in LENET_KNOBS if config[k] != DEFAULTS[k]]
    if model != "lenet" and turned:
        raise SpecError(f"{where}: {', '.join(turned)} shape(s) d2l's LeNet only; drop it for model {model!r}")
    return config


def _describe(config: dict[str, Any]) -> str:
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


# --------------------------------------------------------------------------------------------
# The results file

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


class ResultsFile:
    """An append-only CSV of finished runs, safe against being killed at any moment.

    * The header is written to a temporary file and renamed into place.
    * :meth:`append` writes a whole row with one ``os.write`` on an ``O_APPEND`` descriptor and
      ``fsync``\\ s it, so a row is on disk before the next run starts.
    * Opening an existing file checks the header and cuts off a torn last line (one without
      its newline: the process died inside the write); every other line must parse.
    """

    def __init__(self, path: str | Path, columns: Sequence[str] = COLUMNS) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.dropped_torn_line = False
        self.rows: list[dict[str, str]] = []
        self._open()

    def _header_line(self) -> bytes:
        return (",".join(self.columns) + "\n").encode()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.is_file() else b""
        if b"\n" not in data:  # missing, empty, or a header torn before its newline
            atomic_write(self.path, self._header_line())
            return
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
            data = data[:keep]
            self.dropped_torn_line = True
        text = data.decode()
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        if header != self.columns:
            raise ValueError(
                f"{self.path} has different columns than this version of lenet_utils.sweep writes "
                f"(missing {sorted(set(self.columns) - set(header))}, "
                f"extra {sorted(set(header) - set(self.columns))}): "
                "write to a new --out file, or move the old one aside"
            )
        for lineno, values in enumerate(reader, start=2):
            if len(values) != len(self.columns):
                raise ValueError(
                    f"{self.path}, line {lineno}: {len(values)} fields instead of {len(self.columns)}; "
                    "the file was edited or corrupted — fix or delete that line, then resume"
                )
            self.rows.append(dict(zip(self.columns, values, strict=True)))

    def done(self) -> set[str]:
        """The ``run_id`` of every row in the file."""
        return {r["run_id"] for r in self.rows}

    def append(self, row: dict[str, Any]) -> None:
        """Write one complete row durably (one ``write`` + ``fsync``)."""
        missing = set(self.columns) - set(row)
        if missing:
            raise ValueError(f"row lacks columns {sorted(missing)}")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(
            [_fmt(row[c]) for c in self.columns]
        )
        line = buf.getvalue().encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)
            # practically impossible on a local disk; never leave a partial row
            if written != len(line):
                raise OSError(
                    f"short write to {self.path} ({written} of {len(line)} bytes)"
                )
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows.append({c: _fmt(row[c]) for c in self.columns})


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else repr(v))
    if isinstance(v, (list, tuple)):
        return json.dumps([round(x, 6) if isinstance(x, float) and math.isfinite(x) else _json_num(x) for x in v])
    return str(v)


def _json_num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; None reads back as NaN
    return x


# --------------------------------------------------------------------------------------------
# Data, models, the two engines


def _data(config: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_train, y_train, X_test, y_test)`` as :func:`lenet_utils.data.load_data` prepares them."""
    from . import data

    train, test = data.load_data(config["dataset"], config["batch_size"], train_subset=config["train_subset"] or None)
    Xte, yte = test.X, test.y
    if config["test_subset"]:
        Xte, yte = Xte[: config["test_subset"]], yte[: config["test_subset"]]
    return train.X, train.y, Xte, yte


def _build(config: dict[str, Any]) -> nn.Module:
    """The configuration's network: a network of the zoo (:func:`lenet_utils.zoo.build`) when
    ``model`` names one, else d2l's LeNet with the knobs (:func:`lenet_utils.models.lenet_d2l`).

    ``activation="relu_conv"`` is Li's report's change: ReLU after the two convolutions, the
    sigmoids of the dense layers kept. (``"relu"`` puts ReLU everywhere.) Activations have no
    parameters, so swapping them does not change the random initialisation.
    """
    from .models import lenet_d2l
    from .zoo import build

    if _setting(config, "model") != "lenet":
        return build(config["model"])
    act = "relu" if config["activation"] == "relu_conv" else config["activation"]
    net = lenet_d2l(activation=act, pool=config["pool"], c1_kernel=config["c1_kernel"], pool_size=config["pool_size"])
    if config["activation"] == "relu_conv":
        for i in range(1, len(net)):
            if isinstance(net[i - 1], nn.Linear) and isinstance(net[i], nn.ReLU):
                net[i] = nn.Sigmoid()
    return net


def _init_net(config: dict[str, Any], seed: int) -> nn.Module:
    """The network of ``seed`` as :func:`train_single` has it after ``fit``'s initialisation.

    ``set_seed(seed)`` then build (PyTorch's default init, kept for the biases), then what
    ``fit(..., seed=seed, init="xavier")`` does: ``set_seed(seed)`` again and Xavier weights.
    """
    from . import set_seed
    from .train import init_xavier

    set_seed(seed)
    net = _build(config)
    set_seed(seed)
    init_xavier(net)
    return net


@dataclass
class Result:
    """What one run produced (per-epoch lists; index ``e`` is epoch ``e + 1``)."""

    train_loss: list[float]
    train_acc: list[float]
    test_acc: list[float]
    seconds: float
    cpu_seconds: float
    engine: str
    group_size: int = 1


def train_single(
    config: dict[str, Any],
    seed: int,
    *,
    num_threads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    device: str | torch.device | None = "cpu",
) -> Result:
    """One run through the ordinary trainer, :func:`lenet_utils.train.fit` (the reference path)."""
    from . import set_seed
    from .data import TensorLoader
    from .train import fit

    Xtr, ytr, Xte, yte = _data(config)
    train_iter = TensorLoader(Xtr, ytr, config["batch_size"], shuffle=True, seed=seed)
    test_iter = TensorLoader(Xte, yte, config["batch_size"])
    set_seed(seed)
    net = _build(config)
    t0, c0 = time.perf_counter(), time.process_time()
    history = fit(
        net, train_iter, test_iter, epochs=config["epochs"], lr=config["lr"], optimizer=config["optimizer"],
        device=device, init="xavier", seed=seed, progress=False, num_threads=num_threads,
        on_epoch_end=(lambda e, h: on_epoch_end(1)) if on_epoch_end else None,
    )  # fmt: skip
    return Result(
        history.train_loss, history.train_acc, history.test_acc,
        time.perf_counter() - t0, time.process_time() - c0, "fit",
    )  # fmt: skip


_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adam": torch.optim.Adam,
}


class _Tick(Callback):
    def __init__(self, fn: Callable[[int], None], seeds: int) -> None:
        self.fn, self.seeds = fn, seeds

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        self.fn(self.seeds)
        return None


def train_batched(
    config: dict[str, Any],
    seeds: Sequence[int],
    *,
    num_threads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    eval_batch_size: int = 2000,
    device: str | torch.device | None = "cpu",
) -> list[Result]:
    """Train one configuration for several seeds at once, as one :class:`~lenet_utils.seeds.SeedStack`.

    Each seed gets exactly what :func:`train_single` would give it: the network initialised
    by :func:`_init_net`, and the training order of ``TensorLoader(..., shuffle=True,
    seed=seed)`` (:func:`lenet_utils.seeds.seed_batches`). Metrics follow ``fit`` (and
    ``d2l.train_ch6``): train loss and accuracy on the fly, test accuracy after each epoch.
    """
    from .data import TensorLoader
    from .threads import configure_threads

    if not seeds:
        raise ValueError("train_batched needs at least one seed")
    configure_threads(num_threads)
    dev = resolve_device(device)
    Xtr, ytr, Xte, yte = (t.to(dev) for t in _data(config))
    t0, c0 = time.perf_counter(), time.process_time()
    stack = SeedStack([_init_net(config, s).to(dev) for s in seeds])
    opt = _OPTIMIZERS[config["optimizer"]](stack.parameters(), lr=config["lr"])
    bs = config["batch_size"]
    task = Task(stack, opt, stacked_cross_entropy, lambda epoch: seed_batches(Xtr, ytr, seeds, bs, epoch),
                evals={"test": TensorLoader(Xte, yte, eval_batch_size)}, device=dev)  # fmt: skip
    epochs = engine.run(task, config["epochs"], callbacks=[_Tick(on_epoch_end, len(seeds))] if on_epoch_end else [])
    wall, cpu, S = time.perf_counter() - t0, time.process_time() - c0, len(seeds)
    series = {k: torch.stack([e[k] for e in epochs]).T.tolist() for k in ("train_loss", "train_acc", "test_acc")}
    return [
        Result(series["train_loss"][i], series["train_acc"][i], series["test_acc"][i], wall / S, cpu / S, "batched", S)
        for i in range(S)
    ]


def _engine_for(config: dict[str, Any], engine: str) -> str:
    if _setting(config, "model") != "lenet":  # BN's running statistics cannot be updated under vmap
        if engine == "batched":
            raise ValueError(f"the batched engine trains d2l's LeNet only, not {config['model']}: use --engine fit")
        return "fit"
    if engine != "auto":
        return engine
    return "batched" if config["batch_size"] <= AUTO_BATCHED_MAX else "fit"


# --------------------------------------------------------------------------------------------
# Running a sweep


def _versions() -> str:
    """The ``versions`` column: ``python=... torch=... numpy=... lenet_utils=... numerics=N``."""
    return " ".join(f"{k}={v}" for k, v in versions().items())


def numerics_of(versions_field: str) -> str | None:
    """The ``numerics=N`` of a row's ``versions`` column (``None`` if the row predates it)."""
    for word in versions_field.split():
        if word.startswith("numerics="):
            return word.split("=", 1)[1]
    return None


def _check_numerics(results: ResultsFile) -> None:
    """Refuse to add rows of this code to a file holding rows of code that computes differently."""
    ours = str(NUMERICS)
    other = sorted({str(numerics_of(r["versions"])) for r in results.rows} - {ours})
    if other:
        raise SettingsChangedError(
            f"{results.path} holds rows made by code of other numerics ({', '.join(other)}; this code: {ours}): "
            "resuming would mix results of different code. Write to a new --out file, or move the old one aside"
        )


def result_row(spec_name: str, run: Run, result: Result, threads: int) -> dict[str, Any]:
    """The CSV row of a finished run (every column of :data:`COLUMNS`)."""
    return {
        "run_id": run.run_id,
        "sweep": spec_name,
        "seed": run.seed,
        **EXTRAS,
        **run.config,
        "final_train_loss": result.train_loss[-1],
        "final_train_acc": result.train_acc[-1],
        "final_test_acc": result.test_acc[-1],
        "train_loss": result.train_loss,
        "train_acc": result.train_acc,
        "test_acc": result.test_acc,
        "seconds": round(result.seconds, 3),
        "cpu_seconds": round(result.cpu_seconds, 3),
        "engine": result.engine,
        "group_size": result.group_size,
        "threads": threads,
        "versions": _versions(),
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _reuse_rows(paths: Iterable[str | Path], wanted: set[str], out: Path | None) -> dict[str, dict[str, str]]:
    """Finished rows for ``wanted`` run ids found in other results files (our columns, with or
    without the :data:`EXTRAS`: a row without one was made at its default), made by code of the
    same :data:`~lenet_utils.engine.NUMERICS` (results of other code are never mixed in). Read only."""
    known = (COLUMNS, columns_for([EXTRAS]))
    found: dict[str, dict[str, str]] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file() or (out is not None and p.resolve() == out.resolve()):
            continue
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames not in known:
                continue
            for row in reader:
                same_code = numerics_of(row.get("versions") or "") == str(NUMERICS)
                if row.get("run_id") in wanted and None not in row.values() and same_code:
                    found.setdefault(row["run_id"], {**{k: str(v) for k, v in EXTRAS.items()}, **row})
    return found


class SweepBusyError(RuntimeError):
    """Another process is already writing to the same results file."""


@contextlib.contextmanager
def one_writer(out: Path, *, wait: bool = False) -> Iterator[None]:
    """One writer per results file on this machine, so that two resumed copies of a sweep cannot
    both run (and both append) the same runs: an ``flock`` on a lock file in the temporary
    folder, named after the results file's absolute path. Released when the process ends,
    however it ends. (No lock where ``fcntl`` is missing, i.e. on Windows.)

    ``wait``: wait for the other process to let go instead of raising :class:`SweepBusyError`
    (e.g. a run folder that another worker is training: :func:`lenet_utils.fig9.nets.train_net`).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    key = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"lenet_sweep_{key}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise SweepBusyError(
                f"another sweep (pid {holder}) is writing to {out}: "
                "let it finish, or stop it and run this again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


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
    _check_numerics(results)
    done = results.done()
    todo = [r for r in spec.runs() if r.run_id not in done]
    copied = _reuse_rows(reuse, {r.run_id for r in todo}, results.path)
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
    from .train import configure_threads

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
    from .train import configure_threads

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
        eng = _engine_for(config, engine)
        if bar is not None:
            bar.set_postfix_str(f"{_describe(config)}; seeds {[r.seed for r in runs]}; {eng}")
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


# --------------------------------------------------------------------------------------------
# Reading results


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results CSV with numbers parsed and per-epoch series as lists.

    A torn last line (a sweep killed mid-write) is skipped, not repaired: reading never
    changes the file.
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        parsed: dict[str, Any] = {}
        for k, v in row.items():
            if k in ("train_loss", "train_acc", "test_acc"):
                parsed[k] = [math.nan if x is None else float(x) for x in json.loads(v)]
            elif k in _INT_MIN or k in ("seed", "group_size", "threads"):
                parsed[k] = int(v)
            elif k in ("lr", "final_train_loss", "final_train_acc", "final_test_acc", "seconds", "cpu_seconds"):
                parsed[k] = float(v)
            else:
                parsed[k] = v
        rows.append(parsed)
    return rows


def results_frame(path: str | Path) -> Any:
    """:func:`read_results` as a ``pandas.DataFrame`` (one row per run)."""
    import pandas as pd

    rows = read_results(path)
    return pd.DataFrame(rows, columns=COLUMNS if not rows else None)


def summarize(
    frame: Any,
    by: str | Sequence[str],
    metrics: Sequence[str] = ("final_train_loss", "final_train_acc", "final_test_acc"),
) -> Any:
    """Mean, standard deviation (ddof=1) and number of runs of each metric, per point."""
    by = [by] if isinstance(by, str) else list(by)
    agg = frame.groupby(by)[list(metrics)].agg(["mean", "std", "count"])
    return agg


# --------------------------------------------------------------------------------------------
# Cost: the engines timed on this machine


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
    from .threads import configure_threads

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
        eng = _engine_for(config, engine)
        seeds = min(len(runs), spec.group) if eng == "batched" else 1
        key = json.dumps({**config, "epochs": 1, "engine": eng, "seeds": seeds}, sort_keys=True)
        if key not in cache:
            cache[key] = epoch_cost(config, eng, seeds, num_threads)
        cost = cache[key] * config["epochs"] * len(runs)
        total += cost
        lines.append(f"  {_describe(config):55s} {len(runs):3d} runs x {config['epochs']:3d} epochs "
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
    return set(_reuse_rows(paths, wanted, None if out is None else Path(out)))


def done_run_ids(path: str | Path) -> set[str]:
    """The run ids already in a results file, read without touching it (for ``--dry-run``)."""
    return {r["run_id"] for r in read_results(path)}
