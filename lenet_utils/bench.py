"""``python -m lenet_utils bench``: our trainer against ``d2l.train_ch6``, same net, data and settings.

Each trainer runs in a new Python interpreter (so every row starts from the same state), one
after the other, and with ``rounds`` > 1 the whole sequence runs that many times (a row's wall
time is then its median, and a speed-up the median of the ratios within a round: on a machine
whose speed drifts from minute to minute that is steadier than one run):

1. **d2l** — ``d2l.train_ch6`` on ``d2l.load_data_fashion_mnist(batch_size)`` (torchvision
   dataset, PIL → tensor per image, ``DataLoader`` with d2l's 4 worker processes), exactly
   as the book and the seeds run it;
2. **d2l + TensorLoader** (optional, ``--decompose``) — the same ``train_ch6`` fed by our
   in-memory loaders: separates what the data pipeline costs from what the loop costs;
3. **ours** — :func:`lenet_utils.train.fit` with its defaults (in-memory loaders, measured
   thread count, ``channels_last``, metrics read once per epoch);
4. **ours, fast** (optional, ``--fast``) — ``fit(..., fast=True)``: the same, through the fused
   CPU operators of :mod:`lenet_utils.fastnet` (other numerics: an opt-in).

All start from the same weights (the RNG is re-seeded before each, and both trainers draw
Xavier-uniform weights in the same order) and use d2l's LeNet (sigmoid, average pooling),
SGD, cross-entropy. Throughput is *wall clock*: training examples processed divided by the
seconds the whole call took (data loading, evaluation, plotting included). d2l's own
"examples/sec" — timed around the optimisation steps only, data loading excluded — is shown
too. ``--profile`` adds a ``torch.profiler`` table of where our trainer's time goes.

The machine may be shared: the load average before and after is printed, and since the
trainers run in the same conditions, back to back, the *ratio* is the meaningful number.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["FAST_ROW", "measure", "measure_in_fresh_process", "profile_fit", "report",
           "run_d2l", "run_ours", "trainers"]  # fmt: skip


@contextlib.contextmanager
def d2l_cwd(root: Path):
    """Work in a folder whose ``../data`` is ``root``, because d2l's loaders read ``../data``."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="d2l-cwd-") as tmp:
        (Path(tmp) / "data").symlink_to(root.resolve(), target_is_directory=True)
        (Path(tmp) / "cwd").mkdir()
        os.chdir(Path(tmp) / "cwd")
        try:
            yield
        finally:
            os.chdir(old)


_D2L_LINE = re.compile(r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)")
_D2L_RATE = re.compile(r"([\d.]+) examples/sec")


def run_d2l(
    epochs: int, lr: float, batch_size: int, seed: int, *, loaders: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """Run ``d2l.train_ch6`` with d2l's LeNet; return wall time, throughputs and its printed metrics.

    ``loaders=None`` uses ``d2l.load_data_fashion_mnist(batch_size)`` (run from a folder where
    ``../data`` is this book's data folder, so nothing is downloaded).
    """
    import d2l.torch as d2l
    import matplotlib

    from . import data, set_seed
    from .models import lenet_d2l

    matplotlib.use("Agg", force=True)
    root = data.fetch("fashion")
    set_seed(seed)
    net = lenet_d2l()
    out = io.StringIO()
    t0 = time.perf_counter()
    with d2l_cwd(root), contextlib.redirect_stdout(out):
        train_iter, test_iter = loaders if loaders is not None else d2l.load_data_fashion_mnist(batch_size)
        d2l.train_ch6(net, train_iter, test_iter, epochs, lr, torch.device("cpu"))
    wall = time.perf_counter() - t0
    d2l.plt.close("all")
    text = out.getvalue()
    m, r = _D2L_LINE.search(text), _D2L_RATE.search(text)
    if m is None or r is None:
        raise RuntimeError(f"could not read d2l.train_ch6's summary from its output:\n{text[-500:]}")
    n = 60000 * epochs
    return {
        "wall_s": wall,
        "wall_rate": n / wall,
        "d2l_rate": float(r.group(1)),
        "loss": float(m.group(1)),
        "train_acc": float(m.group(2)),
        "test_acc": float(m.group(3)),
        "threads": torch.get_num_threads(),
    }


def run_ours(epochs: int, lr: float, batch_size: int, seed: int, **fit_kwargs: Any) -> dict[str, Any]:
    """Run :func:`lenet_utils.train.fit` on our loaders with the same net and settings."""
    from . import data, set_seed
    from .models import lenet_d2l
    from .train import fit

    t0 = time.perf_counter()
    train_iter, test_iter = data.load_data("fashion", batch_size, seed=seed)
    set_seed(seed)
    net = lenet_d2l()
    # no seed here: Xavier draws continue the stream after the constructor, as in train_ch6
    h = fit(net, train_iter, test_iter, epochs=epochs, lr=lr, progress=False, **fit_kwargs)
    wall = time.perf_counter() - t0
    n = train_iter.num_examples * epochs
    return {
        "wall_s": wall,
        "wall_rate": n / wall,
        "d2l_rate": n / sum(h.seconds),  # training loop only (our timer includes fetching batches)
        "loss": h.train_loss[-1],
        "train_acc": h.train_acc[-1],
        "test_acc": h.test_acc[-1],
        "threads": h.num_threads,
        "fast": bool(getattr(h, "fast", False)),
    }


def profile_fit(batch_size: int = 256, lr: float = 0.9, batches: int = 60, rows: int = 15) -> str:
    """A ``torch.profiler`` table (self CPU time by operator) over ``batches`` training steps of
    :func:`fit`'s loop plus one test-set evaluation, with the same settings as ``fit``."""
    from torch.profiler import ProfilerActivity, profile

    from . import data, set_seed
    from . import train as train_mod
    from .models import lenet_d2l
    from .train import evaluate_accuracy, fit

    train_iter, test_iter = data.load_data("fashion", batch_size, train_subset=batch_size * batches)
    set_seed(0)
    net = lenet_d2l()
    fit(net, train_iter, None, epochs=1, lr=lr, progress=False)  # warm-up, picks the threads
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        h = fit(net, train_iter, None, epochs=1, lr=lr, progress=False, init=None)
        before = torch.get_num_threads()
        torch.set_num_threads(h.num_threads or before)  # evaluate as fit does, with its thread count
        t0 = time.perf_counter()
        evaluate_accuracy(net, train_mod._eval_batches(test_iter, 1024))
        t_eval = time.perf_counter() - t0
        torch.set_num_threads(before)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40)
    head = (
        f"profile: {batches} training batches of {batch_size} ({h.seconds[0]:.2f} s, {h.num_threads} thread(s)) "
        f"+ one pass over the 10,000 test images ({t_eval:.2f} s), under the profiler\n"
    )
    return head + table


FAST_ROW = "lenet_utils.train.fit --fast"


Row = tuple[str, str, dict[str, bool]]


def trainers(decompose: bool = False, fast: bool = False, skip_d2l: bool = False) -> list[Row]:
    """The rows of a report, in the order of a round: ``(name, "d2l" or "ours", options)``."""
    rows: list[Row] = []
    if not skip_d2l:
        rows.append(("d2l.train_ch6", "d2l", {}))
        if decompose:
            rows.append(("d2l.train_ch6 + TensorLoader", "d2l", {"our_loaders": True}))
    rows.append(("lenet_utils.train.fit", "ours", {}))
    if fast:
        rows.append((FAST_ROW, "ours", {"fast": True}))
    return rows


def measure(kind: str, epochs: int, lr: float, batch_size: int, seed: int, options: dict[str, bool]) -> dict[str, Any]:
    """One row's run, in this process: ``run_d2l`` (on d2l's loader or ours) or ``run_ours``
    (``fast`` or not)."""
    if kind == "d2l":
        from . import data

        loaders = data.load_data("fashion", batch_size, seed=seed) if options.get("our_loaders") else None
        return run_d2l(epochs, lr, batch_size, seed, loaders=loaders)
    return run_ours(epochs, lr, batch_size, seed, fast=bool(options.get("fast")))


_CHILD = "import json, sys; from lenet_utils import bench; print(json.dumps(bench.measure(*json.loads(sys.argv[1]))))"


def measure_in_fresh_process(*args: Any) -> dict[str, Any]:
    """:func:`measure` in a new Python interpreter, started as a user would start one (so d2l's
    loader starts its workers the platform's usual way): every row begins from the same state,
    nothing imported, compiled or allocated yet."""
    import json
    import subprocess
    import sys

    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"bench: the {args[0]} run failed in its process (exit code {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lower_median(items: list[Any], key: Callable[[Any], float] = float) -> Any:
    """The lower median of ``items`` by ``key``: one of the items itself, never an average."""
    return sorted(items, key=key)[(len(items) - 1) // 2]


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from a trainer's rounds: the run of median wall time (an actual run's numbers)."""
    row = dict(_lower_median(runs, key=lambda r: r["wall_s"]))
    row["walls"] = [r["wall_s"] for r in runs]
    return row


def _speedups(results: dict[str, dict[str, Any]], say: Callable[[str], None]) -> None:
    """Each of our rows against ``d2l.train_ch6``: wall-clock ratio (the median over rounds of the
    ratio within a round) and test accuracy."""
    d = results["d2l.train_ch6"]
    for name, label in (("lenet_utils.train.fit", "ours"), (FAST_ROW, "ours, fast")):
        if name not in results:
            continue
        o = results[name]
        pairs = zip(d.get("walls", [d["wall_s"]]), o.get("walls", [o["wall_s"]]), strict=True)
        ratios = sorted(a / b for a, b in pairs)
        rounds = f"; rounds: {', '.join(f'{r:.2f}x' for r in ratios)}" if len(ratios) > 1 else ""
        say("")
        say(f"speed-up of {name}, wall clock: {_lower_median(ratios):.1f}x   "
            f"(on d2l's own examples/sec: {o['d2l_rate'] / d['d2l_rate']:.1f}x{rounds})")  # fmt: skip
        say(f"test accuracy: d2l {d['test_acc']:.3f}, {label} {o['test_acc']:.3f} "
            f"(difference {o['test_acc'] - d['test_acc']:+.3f}; "
            "one run each: compare seeds before reading a difference)")  # fmt: skip


def _conditions() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}); torch {torch.__version__}"
    )


def _table(results: dict[str, dict[str, Any]], say: Callable[[str], None]) -> None:
    say(f"{'trainer':<30} {'wall s':>8} {'ex/s wall':>10} {'ex/s steps':>11} {'threads':>7} "
        f"{'loss':>6} {'train':>6} {'test':>6}")  # fmt: skip
    for name, r in results.items():
        say(f"{name:<30} {r['wall_s']:>8.1f} {r['wall_rate']:>10.0f} {r['d2l_rate']:>11.0f} {r['threads']!s:>7} "
            f"{r['loss']:>6.3f} {r['train_acc']:>6.3f} {r['test_acc']:>6.3f}")  # fmt: skip
    say("(ex/s wall: examples / seconds of the whole call; ex/s steps: d2l's own figure, optimisation steps only)")


def report(epochs: int = 10, lr: float = 0.9, batch_size: int = 256, seed: int = 0, *, decompose: bool = False,
           profile: bool = False, skip_d2l: bool = False, fast: bool = False, rounds: int = 1, command: str = "",
           say: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Run the benchmark, printing the report line by line through ``say``; return the measurements.

    Each row runs in a fresh process (:func:`measure_in_fresh_process`), the rows one after the
    other, ``rounds`` times over; a row's wall time is its median over the rounds.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    say(f"$ {command.strip()}")
    say(f"before: {_conditions()}")
    say(f"setting: d2l LeNet, Fashion-MNIST, batch {batch_size}, SGD lr {lr}, {epochs} epochs, seed {seed}")
    rows = trainers(decompose, fast, skip_d2l)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in rows}
    for k in range(1, rounds + 1):
        for name, kind, options in rows:
            runs[name].append(measure_in_fresh_process(kind, epochs, lr, batch_size, seed, options))
            where = f" (round {k} of {rounds})" if rounds > 1 else ""
            plain = options.get("fast") and not runs[name][-1]["fast"]
            note = " (the fused operators did not apply: plain path)" if plain else ""
            say(f"  {name} done in {runs[name][-1]['wall_s']:.1f} s{where}{note}")
    say(f"after:  {_conditions()}")
    say("")
    results = {name: _median_row(r) for name, r in runs.items()}
    _table(results, say)
    if rounds > 1:
        say(f"(wall s: the median of {rounds} rounds, each row in a fresh process)")
    if "d2l.train_ch6" in results:
        _speedups(results, say)
    if profile:
        say("")
        for line in profile_fit(batch_size, lr).splitlines():
            say(line)
    return results
