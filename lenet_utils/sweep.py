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
combination of ``grid``. The defaults are d2l's (Dive into Deep Learning §7.6, which the
seed 002 report ablates): the sigmoid / average-pooling LeNet on Fashion-MNIST, batch 256,
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

import argparse
import contextlib
import copy
import csv
import hashlib
import io
import itertools
import json
import math
import os
import platform
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

from .files import atomic_write

__all__ = [
    "COLUMNS",
    "DEFAULTS",
    "ResultsFile",
    "Run",
    "Spec",
    "SpecError",
    "SweepBusyError",
    "bench",
    "execute",
    "load_spec",
    "main",
    "one_writer",
    "pending_runs",
    "read_results",
    "result_row",
    "results_frame",
    "run_sweep",
    "summarize",
    "train_batched",
    "train_single",
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

#: The allowed values of the categorical hyperparameters.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("fashion", "mnist"),
    "optimizer": ("sgd", "adagrad", "adam"),
    "activation": ("sigmoid", "relu", "relu_conv", "tanh"),
    "pool": ("avg", "max"),
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
    if key not in DEFAULTS:
        raise SpecError(f"{where}: unknown hyperparameter {key!r}; known: {', '.join(sorted(DEFAULTS))}")
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
    return json.dumps({**{k: config[k] for k in sorted(DEFAULTS)}, "seed": seed}, sort_keys=True)


@dataclass(frozen=True)
class Run:
    """One (configuration, seed) of a sweep."""

    config: dict[str, Any]
    seed: int

    @property
    def run_id(self) -> str:
        """12 hex digits of the SHA-1 of the hyperparameters and seed (the resume key)."""
        return hashlib.sha1(_canonical(self.config, self.seed).encode()).hexdigest()[:12]


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
            config = {**DEFAULTS, **base, **point, **dict(zip(keys, combo, strict=True))}
            key = _canonical(config, 0)
            if key in seen:
                raise SpecError(f"{where}: point {len(configs)} repeats point {seen[key]} ({_describe(config)})")
            seen[key] = len(configs)
            configs.append(config)
    varied = [k for k in DEFAULTS if len({c[k] for c in configs}) > 1]
    description = raw.get("description", "")
    return Spec(name, configs, seeds, str(description), engine, group, varied)


def _describe(config: dict[str, Any]) -> str:
    diff = {k: v for k, v in config.items() if DEFAULTS[k] != v}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "d2l defaults"


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
        csv.writer(buf, lineterminator="\n").writerow([_fmt(row[c]) for c in self.columns])
        line = buf.getvalue().encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)
            if written != len(line):  # practically impossible on a local disk; never leave a partial row
                raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
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
    """d2l's LeNet with the configuration's knobs (:func:`lenet_utils.models.lenet_d2l`).

    ``activation="relu_conv"`` is seed 002's change: ReLU after the two convolutions, the
    sigmoids of the dense layers kept. (``"relu"`` puts ReLU everywhere.) Activations have no
    parameters, so swapping them does not change the random initialisation.
    """
    from .models import lenet_d2l

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
        device="cpu", init="xavier", seed=seed, progress=False, num_threads=num_threads,
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


def train_batched(
    config: dict[str, Any],
    seeds: Sequence[int],
    *,
    num_threads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    eval_batch_size: int = 2000,
) -> list[Result]:
    """Train one configuration for several seeds at once, as one vmapped model.

    Each seed gets exactly what :func:`train_single` would give it: the network
    initialised by :func:`_init_net`, and the training order of ``TensorLoader(...,
    shuffle=True, seed=seed)`` (``randperm`` with a generator seeded ``seed + epoch``).
    The seeds' parameters are stacked along a new leading dimension
    (``torch.func.stack_module_state``), the forward pass is ``vmap`` over
    ``functional_call``, and the sum of the seeds' batch-mean losses is backpropagated: the
    seeds share no parameter, so each one's gradient is that of its own loss. SGD, Adagrad
    and Adam act element by element, so one optimiser over the stacked tensors equals one
    optimiser per seed. Metrics follow ``fit`` (and ``d2l.train_ch6``): train loss and
    accuracy measured on the fly over the epoch, test accuracy after each epoch.
    """
    from torch.func import functional_call, stack_module_state, vmap

    from .train import configure_threads

    if not seeds:
        raise ValueError("train_batched needs at least one seed")
    configure_threads(num_threads)
    Xtr, ytr, Xte, yte = _data(config)
    S, n, bs = len(seeds), len(Xtr), config["batch_size"]
    t0, c0 = time.perf_counter(), time.process_time()
    nets = [_init_net(config, s) for s in seeds]
    params, buffers = stack_module_state(nets)  # each (S, *shape), leaves with requires_grad
    skeleton = copy.deepcopy(nets[0]).to("meta")

    def forward(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(skeleton, (p, b), (x,))

    def loss_and_logits(
        p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = forward(p, b, x)  # (B, 10)
        return nn.functional.cross_entropy(logits, y), logits

    train_step = vmap(loss_and_logits)  # over the seed dimension of params, buffers, X, y
    predict = vmap(forward, in_dims=(0, 0, None))  # the same test batch for every seed
    opt = _OPTIMIZERS[config["optimizer"]](list(params.values()), lr=config["lr"])
    losses_hist: list[list[float]] = [[] for _ in seeds]
    acc_hist: list[list[float]] = [[] for _ in seeds]
    test_hist: list[list[float]] = [[] for _ in seeds]
    for epoch in range(config["epochs"]):
        orders = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s + epoch)) for s in seeds])
        loss_sum = torch.zeros(S, dtype=torch.float64)
        correct = torch.zeros(S, dtype=torch.long)
        for start in range(0, n, bs):
            idx = orders[:, start : start + bs]  # (S, b)
            X, y = Xtr[idx], ytr[idx]  # (S, b, 1, 28, 28), (S, b)
            opt.zero_grad(set_to_none=True)
            losses, logits = train_step(params, buffers, X, y)  # (S,), (S, b, 10)
            losses.sum().backward()
            opt.step()
            with torch.no_grad():
                loss_sum += losses.detach().double() * idx.shape[1]
                correct += (logits.argmax(dim=-1) == y).sum(dim=1)
        hits = torch.zeros(S, dtype=torch.long)
        with torch.no_grad():
            for start in range(0, len(Xte), eval_batch_size):
                logits = predict(params, buffers, Xte[start : start + eval_batch_size])  # (S, b, 10)
                hits += (logits.argmax(dim=-1) == yte[start : start + eval_batch_size]).sum(dim=1)
        for i in range(S):
            losses_hist[i].append(loss_sum[i].item() / n)
            acc_hist[i].append(correct[i].item() / n)
            test_hist[i].append(hits[i].item() / len(Xte))
        if on_epoch_end is not None:
            on_epoch_end(S)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return [Result(losses_hist[i], acc_hist[i], test_hist[i], wall / S, cpu / S, "batched", S) for i in range(S)]


def _engine_for(config: dict[str, Any], engine: str) -> str:
    if engine != "auto":
        return engine
    return "batched" if config["batch_size"] <= AUTO_BATCHED_MAX else "fit"


# --------------------------------------------------------------------------------------------
# Running a sweep


def _versions() -> str:
    import numpy

    from . import __version__

    return (
        f"python={platform.python_version()} torch={torch.__version__} numpy={numpy.__version__} "
        f"lenet_utils={__version__}"
    )


def result_row(spec_name: str, run: Run, result: Result, threads: int) -> dict[str, Any]:
    """The CSV row of a finished run (every column of :data:`COLUMNS`)."""
    return {
        "run_id": run.run_id,
        "sweep": spec_name,
        "seed": run.seed,
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


def _reuse_rows(paths: Iterable[str | Path], wanted: set[str], out: Path) -> dict[str, dict[str, str]]:
    """Finished rows for ``wanted`` run ids found in other results files (same columns)."""
    found: dict[str, dict[str, str]] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file() or p.resolve() == out.resolve():
            continue
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != COLUMNS:
                continue
            for row in reader:
                if row.get("run_id") in wanted and None not in row.values():
                    found.setdefault(row["run_id"], row)
    return found


class SweepBusyError(RuntimeError):
    """Another process is already writing to the same results file."""


@contextlib.contextmanager
def one_writer(out: Path) -> Iterator[None]:
    """One writer per results file on this machine, so that two resumed copies of a sweep cannot
    both run (and both append) the same runs: an ``flock`` on a lock file in the temporary
    folder, named after the results file's absolute path. Released when the process ends,
    however it ends. (No lock where ``fcntl`` is missing, i.e. on Windows.)
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
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise SweepBusyError(
                f"another sweep (pid {holder}) is writing to {out}: let it finish, or stop it and run this again"
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
        return _run_sweep(spec, out, engine, num_threads, limit, reuse, progress, log)


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


def execute(spec_name: str, run: Run, *, num_threads: int = 1, device: str | None = None) -> dict[str, Any]:
    """Train one run with the single-seed engine and return its finished CSV row.

    This is the unit of work a distributed sweep sends to a worker (:mod:`lenet_utils.cluster`).
    """
    from .train import configure_threads

    threads = configure_threads(num_threads)
    return result_row(spec_name, run, train_single(run.config, run.seed, num_threads=threads), threads)


def _run_sweep(
    spec: Spec,
    out: str | Path,
    engine: str | None,
    num_threads: int | None,
    limit: int | None,
    reuse: Sequence[str | Path],
    progress: bool,
    log: Callable[[str], None],
) -> ResultsFile:
    from .train import configure_threads

    engine = engine or spec.engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    threads = configure_threads(num_threads)
    results = ResultsFile(out)
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
            outs = train_batched(config, [r.seed for r in runs], num_threads=threads, on_epoch_end=tick)
            for run, result in zip(runs, outs, strict=True):
                results.append(result_row(spec.name, run, result, threads))
        else:
            for run in runs:
                result = train_single(config, run.seed, num_threads=threads, on_epoch_end=tick)
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
# Benchmark: the two engines on this machine


def bench(
    batch_sizes: Sequence[int] = (2, 8, 32, 256), seeds: int = 5, steps: int = 60, num_threads: int = 1
) -> list[dict[str, float]]:
    """CPU seconds per seed per training step, ``fit``'s loop against the batched engine.

    Times ``steps`` steps of each engine on real Fashion-MNIST batches (after a warm-up),
    with :func:`time.process_time` (CPU time, which other processes on the machine do not
    inflate as much as wall time). The single-seed loop is the one ``fit`` runs (forward,
    cross-entropy, backward, SGD step, on-the-fly metrics); the batched one is
    :func:`train_batched`'s step for ``seeds`` seeds.
    """
    from torch.func import functional_call, stack_module_state, vmap

    from .train import configure_threads

    configure_threads(num_threads)
    config = dict(DEFAULTS)
    Xtr, ytr, _, _ = _data(config)
    out = []
    for bs in batch_sizes:
        cfg = {**config, "batch_size": bs}
        # single seed, fit's inner loop
        net = _init_net(cfg, 0)
        opt = torch.optim.SGD(net.parameters(), lr=0.9)
        crit = nn.CrossEntropyLoss()
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.long)

        def single_step(
            i: int, net: nn.Module = net, opt: torch.optim.Optimizer = opt, bs: int = bs, crit: nn.Module = crit
        ) -> None:
            nonlocal loss_sum, correct
            X, y = Xtr[i * bs : (i + 1) * bs], ytr[i * bs : (i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            y_hat = net(X)
            loss = crit(y_hat, y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * bs
                correct += (y_hat.argmax(dim=1) == y).sum()

        nets = [_init_net(cfg, s) for s in range(seeds)]
        params, buffers = stack_module_state(nets)
        skeleton = copy.deepcopy(nets[0]).to("meta")

        def f(p: Any, b: Any, x: torch.Tensor, y: torch.Tensor, skeleton: nn.Module = skeleton) -> Any:
            logits = functional_call(skeleton, (p, b), (x,))
            return nn.functional.cross_entropy(logits, y), logits

        step = vmap(f)
        bopt = torch.optim.SGD(list(params.values()), lr=0.9)
        perm = torch.stack([torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(s)) for s in range(seeds)])

        def batched_step(
            i: int,
            step: Any = step,
            bopt: Any = bopt,
            params: Any = params,
            buffers: Any = buffers,
            bs: int = bs,
            perm: torch.Tensor = perm,
        ) -> None:
            idx = perm[:, i * bs : (i + 1) * bs]
            X, y = Xtr[idx], ytr[idx]
            bopt.zero_grad(set_to_none=True)
            losses, logits = step(params, buffers, X, y)
            losses.sum().backward()
            bopt.step()
            with torch.no_grad():
                (logits.argmax(dim=-1) == y).sum(dim=1)

        n = max(5, min(steps, 4000 // bs))  # fewer steps for big batches
        timings = {}
        for name, fn, per in (("single", single_step, 1), ("batched", batched_step, seeds)):
            for i in range(3):
                fn(i)
            best = math.inf
            for _rep in range(3):  # best of 3: the machine is shared
                c0 = time.process_time()
                for i in range(n):
                    fn(i)
                best = min(best, (time.process_time() - c0) / n / per)
            timings[name] = best
        out.append(
            {
                "batch_size": bs,
                "seeds": seeds,
                "single_ms_per_seed_step": timings["single"] * 1e3,
                "batched_ms_per_seed_step": timings["batched"] * 1e3,
                "speedup": timings["single"] / timings["batched"],
                "single_cpu_s_per_epoch": timings["single"] * math.ceil(len(Xtr) / bs),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Command line


def _estimate(spec: Spec, done: set[str], engine: str, threads: int) -> tuple[float, list[str]]:
    """A CPU-seconds estimate of the runs not yet done, from short timings of each engine.

    Each distinct (model, batch size, engine) is timed on a few batches, K and 3K steps (after
    a warm-up run); the difference gives the CPU time of one step without the fixed costs (data, set-up).
    An epoch is ``ceil(n / batch)`` steps plus the test pass, counted as 6% (a forward pass
    over 10,000 images against forward + backward over 60,000).
    """
    from .train import configure_threads

    configure_threads(threads)
    todo = [r for r in spec.runs() if r.run_id not in done]
    lines, total = [], 0.0
    cache: dict[str, float] = {}
    for config in spec.configs:
        runs = [r for r in todo if r.config is config]
        if not runs:
            continue
        eng = _engine_for(config, engine)
        seeds = list(range(min(len(runs), spec.group))) if eng == "batched" else [0]
        key = json.dumps({**config, "epochs": 1, "lr": 0.1, "engine": eng, "seeds": len(seeds)}, sort_keys=True)
        if key not in cache:
            k = max(4, min(40, 8000 // config["batch_size"]))
            cpu = []
            for steps in (k, k, 3 * k):  # the first call warms up (allocations, kernel choice)
                n_probe = config["batch_size"] * steps
                probe = {**config, "epochs": 1, "lr": 0.1, "train_subset": n_probe, "test_subset": 64}
                c0 = time.process_time()
                if eng == "batched":
                    train_batched(probe, seeds, num_threads=threads)
                else:
                    train_single(probe, 0, num_threads=threads)
                cpu.append(time.process_time() - c0)
            per_step = max(cpu[2] - cpu[1], 1e-9) / (2 * k) / len(seeds)
            n_train = config["train_subset"] or 60000
            cache[key] = per_step * math.ceil(n_train / config["batch_size"]) * 1.06
        cost = cache[key] * config["epochs"] * len(runs)
        total += cost
        lines.append(
            f"  {_describe(config):55s} {len(runs):3d} runs x {config['epochs']:3d} epochs "
            f"~{cost / 60:7.1f} CPU-min ({eng}, {cache[key]:.1f} CPU-s per seed-epoch)"
        )
    return total, lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils sweep",
        description="Run an ablation grid (hyperparameters x seeds) into a resumable CSV: one row per finished run.",
    )
    p.add_argument("spec", nargs="?", help="sweep spec (JSON), e.g. data/sweeps/lr.json")
    p.add_argument("--out", help="results CSV (appended to; resumed if it exists), e.g. data/results/lr.csv")
    p.add_argument("--seeds", type=int, default=None, help="use seeds 0..N-1 instead of the spec's")
    p.add_argument("--engine", choices=ENGINES, default=None, help="default: the spec's (auto)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: one per core)")
    p.add_argument("--limit", type=int, default=None, help="stop after N new runs")
    p.add_argument(
        "--reuse", nargs="*", default=[], help="other results CSVs whose identical runs are copied, not re-run"
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan and a CPU-time estimate, train nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--bench", action="store_true", help="time fit's loop against the batched engine and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lenet_utils sweep SPEC --out CSV [--seeds N] [--dry-run] ...``: see ``--help``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bench:
        threads = args.threads or 1
        print(f"CPU ms per seed per training step (d2l LeNet, Fashion-MNIST, {threads} thread(s), best of 3):")
        print(f"{'batch':>6} {'fit loop':>10} {'batched x5':>11} {'speed-up':>9}")
        for r in bench(num_threads=threads):
            print(
                f"{r['batch_size']:>6} {r['single_ms_per_seed_step']:>10.2f} {r['batched_ms_per_seed_step']:>11.2f} "
                f"{r['speedup']:>8.2f}x"
            )
        return 0
    if not args.spec or not args.out:
        parser.error("give a SPEC and --out CSV (or --bench)")
    from .data import DataError

    try:
        spec = load_spec(args.spec)
        if args.seeds is not None:
            spec = spec.with_seeds(args.seeds)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        done = ResultsFile(args.out).done() if Path(args.out).is_file() else set()
        total, lines = _estimate(spec, done, args.engine or spec.engine, args.threads or 1)
        print(f"{spec.name}: {len(spec.configs)} points x {len(spec.seeds)} seeds; {len(done)} rows in {args.out}")
        print("\n".join(lines))
        print(f"estimated CPU time of what is left: {total / 3600:.2f} CPU-hours ({args.threads or 1} thread(s))")
        return 0
    try:
        run_sweep(
            spec, args.out, engine=args.engine, num_threads=args.threads, limit=args.limit, reuse=args.reuse,
            progress=not args.no_progress,
        )  # fmt: skip
    except (DataError, ValueError, SweepBusyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
