"""Tests of lenet_utils.sweep: spec validation, the crash-safe CSV, kill-and-resume, batched = single."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lenet_utils import sweep
from lenet_utils.cli import sweep as cli_sweep
from lenet_utils.scripts import suite_names
from lenet_utils.sweep import COLUMNS, DEFAULTS, ResultsFile, SpecError, load_spec, read_results, run_sweep

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 1, "train_subset": 128, "test_subset": 64, "batch_size": 64}


# --------------------------------------------------------------------------------------------
# Specs


def test_grid_expands_points_times_grid_over_defaults() -> None:
    spec = load_spec(
        {
            "name": "t",
            "base": {"epochs": 3},
            "points": [{}, {"activation": "relu"}],
            "grid": {"lr": [0.1, 0.2], "batch_size": [8, 16, 32]},
            "seeds": 2,
        }
    )
    assert len(spec.configs) == 2 * 2 * 3 and spec.seeds == [0, 1]
    assert all(c["epochs"] == 3 and c["dataset"] == "fashion" for c in spec.configs)
    assert spec.configs[0] == {**DEFAULTS, "epochs": 3, "lr": 0.1, "batch_size": 8}
    assert spec.varied == ["batch_size", "lr", "activation"]
    runs = spec.runs()
    assert len(runs) == 24 and len({r.run_id for r in runs}) == 24
    # the run id depends on the hyperparameters and the seed only
    again = load_spec({"name": "other", "grid": {"lr": [0.2, 0.1]}, "base": {"epochs": 3, "batch_size": 8}})
    ids = {r.run_id for r in again.runs()}
    assert {r.run_id for r in runs if r.config["activation"] == "sigmoid" and r.config["batch_size"] == 8} <= ids


def test_committed_specs_are_valid() -> None:
    specs = sorted((REPO / "data" / "sweeps").glob("*.json"))
    assert len(specs) >= 9
    # the ablation suite (run_all.sh's loop) repeats the seed reports with 5 seeds; the other
    # sweeps (Part IV's model zoo, run_zoo.sh) train larger networks with 3
    suite = set(suite_names(REPO / "data/sweeps/run_all.sh"))
    assert suite <= {p.stem for p in specs}, suite
    for path in specs:
        spec = load_spec(path)
        assert len(spec.seeds) >= (5 if path.stem in suite else 3), path
        assert spec.name == path.stem


def test_miniature_keeps_the_grid_and_shrinks_the_runs() -> None:
    full = load_spec(REPO / "data" / "sweeps" / "scaling.json")
    mini = full.miniature(seeds=2, epochs=3, train_subset=100, test_subset=50)
    assert mini.name == "scaling-mini" and mini.seeds == [0, 1] and mini.varied == full.varied
    assert [(c["batch_size"], c["lr"]) for c in mini.configs] == [(c["batch_size"], c["lr"]) for c in full.configs]
    assert all(c["epochs"] == 3 and c["train_subset"] == 100 and c["test_subset"] == 50 for c in mini.configs)
    assert not {r.run_id for r in mini.runs()} & {r.run_id for r in full.runs()}
    # epochs are capped, never raised
    assert load_spec({"name": "x", "base": {"epochs": 1}}).miniature(epochs=2).configs[0]["epochs"] == 1
    assert load_spec(REPO / "data" / "sweeps" / "epochs.json").miniature(epochs=2).configs[0]["epochs"] == 2
    with pytest.raises(SpecError, match="at least 1"):
        full.miniature(seeds=0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"grid": {"lr": [0.1]}}, '"name"'),
        ({"name": "x", "gird": {}}, "unknown key"),
        ({"name": "x", "grid": {"learning_rate": [0.1]}}, "unknown hyperparameter 'learning_rate'"),
        ({"name": "x", "grid": {"lr": []}}, "non-empty list"),
        ({"name": "x", "grid": {"lr": [-0.1]}}, "positive number"),
        ({"name": "x", "grid": {"batch_size": [0]}}, "batch_size must be >= 1"),
        ({"name": "x", "grid": {"batch_size": [2.5]}}, "must be an integer"),
        ({"name": "x", "grid": {"activation": ["gelu"]}}, "activation must be one of"),
        ({"name": "x", "grid": {"lr": [0.9, 0.9]}}, "repeats point"),
        ({"name": "x", "points": [{}, {"lr": 0.9}]}, "repeats point"),
        ({"name": "x", "seeds": [1, 1]}, "repeats a seed"),
        ({"name": "x", "seeds": 0}, '"seeds" must be >= 1'),
        ({"name": "x", "engine": "gpu"}, '"engine"'),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        load_spec(spec)


def test_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no sweep spec"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(bad)
    assert cli_sweep.main([str(bad), "--out", str(tmp_path / "r.csv")]) == 2


# --------------------------------------------------------------------------------------------
# The results file


def _fake_row(i: int) -> dict:
    result = sweep.Result([0.5, 0.25], [0.8, 0.9], [0.1, float("nan")], 1.0, 1.0, "fit")
    return {**sweep.result_row("t", sweep.Run(DEFAULTS, i), result, threads=1), "run_id": f"id{i:04d}"}


def test_torn_last_line_is_dropped_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rf = ResultsFile(path)
    rf.append(_fake_row(0))
    rf.append(_fake_row(1))
    whole = path.read_bytes()
    with open(path, "ab") as f:  # a kill in the middle of writing row 2
        f.write(b"id0002,sweep,2,fash")
    assert [r["run_id"] for r in read_results(path)] == ["id0000", "id0001"]  # reading skips it
    assert path.read_bytes() != whole  # ... without repairing the file
    rf = ResultsFile(path)
    assert rf.dropped_torn_line and rf.done() == {"id0000", "id0001"}
    assert path.read_bytes() == whole
    rf.append(_fake_row(2))
    rows = read_results(path)
    assert [r["run_id"] for r in rows] == ["id0000", "id0001", "id0002"]
    assert rows[0]["train_loss"] == [0.5, 0.25] and rows[0]["test_acc"][1] != rows[0]["test_acc"][1]  # nan


def test_header_torn_or_different(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("run_id,swe")  # killed while writing the header
    assert ResultsFile(path).done() == set()
    assert path.read_text() == ",".join(COLUMNS) + "\n"
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="different columns"):
        ResultsFile(other)
    broken = tmp_path / "broken.csv"
    broken.write_text(",".join(COLUMNS) + "\n1,2\n")
    with pytest.raises(ValueError, match="line 2"):
        ResultsFile(broken)


# --------------------------------------------------------------------------------------------
# Kill a real sweep mid-run, resume it


def test_killed_sweep_resumes_with_every_run_exactly_once(tmp_path: Path) -> None:
    spec_path = tmp_path / "tiny.json"
    spec_path.write_text(json.dumps({"name": "tiny", "base": TINY, "grid": {"lr": [0.1, 0.4, 0.7]}, "seeds": 4}))
    out = tmp_path / "tiny.csv"
    env = {**os.environ, "LENET_DATA_ROOT": str(REPO / "data")}
    cmd = [sys.executable, "-m", "lenet_utils", "sweep", str(spec_path), "--out", str(out), "--threads", "1"]
    proc = subprocess.Popen([*cmd, "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    rows_at_kill = 0
    while time.monotonic() < deadline and proc.poll() is None:
        rows_at_kill = len(read_results(out))
        if rows_at_kill >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = read_results(out)
    assert 2 <= len(killed) < 12
    with open(out, "ab") as f:  # and as if the kill had torn a line
        f.write(b"deadbeef0000,tiny,3,fashion,64,0.")
    spec = load_spec(spec_path)
    results = run_sweep(spec, out, num_threads=1, progress=False, log=lambda s: None)
    assert results.dropped_torn_line
    rows = read_results(out)
    counts = collections.Counter((r["lr"], r["seed"]) for r in rows)
    assert set(counts) == {(lr, s) for lr in (0.1, 0.4, 0.7) for s in range(4)}
    assert set(counts.values()) == {1}, "a run was lost or repeated"
    assert [r["run_id"] for r in rows[: len(killed)]] == [r["run_id"] for r in killed]  # old rows untouched
    # a second resume has nothing to do and changes nothing
    before = out.read_bytes()
    run_sweep(spec, out, num_threads=1, progress=False, log=lambda s: None)
    assert out.read_bytes() == before
    assert all(len(r["test_acc"]) == 1 and 0.0 <= r["final_test_acc"] <= 1.0 for r in rows)
    assert all(r["engine"] == "fit" and "torch=" in r["versions"] for r in rows)


def test_reuse_copies_identical_runs_instead_of_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_spec({"name": "a", "base": TINY, "grid": {"lr": [0.2, 0.4]}, "seeds": 2})
    run_sweep(first, tmp_path / "a.csv", num_threads=1, progress=False, log=lambda s: None)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("should have been copied")

    monkeypatch.setattr(sweep.runner, "train_single", no_training)
    monkeypatch.setattr(sweep.runner, "train_batched", no_training)
    second = load_spec({"name": "b", "base": {**TINY, "lr": 0.4}, "seeds": 2})
    run_sweep(second, tmp_path / "b.csv", reuse=[tmp_path / "a.csv"], progress=False, log=lambda s: None)
    a = {r["run_id"]: r for r in read_results(tmp_path / "a.csv")}
    b = read_results(tmp_path / "b.csv")
    assert len(b) == 2 and all(r["sweep"] == "a" and r["test_acc"] == a[r["run_id"]]["test_acc"] for r in b)


# --------------------------------------------------------------------------------------------
# The batched engine trains each seed exactly as fit does


@pytest.mark.parametrize("activation", ["sigmoid", "relu_conv"])
def test_batched_step_equals_each_seeds_own_step(activation: str) -> None:
    """One step: every seed's loss and gradients in the stack equal its own network's, tightly."""
    from torch import nn

    from lenet_utils.seeds import SeedStack, seed_batches, stacked_cross_entropy

    config = {**DEFAULTS, "activation": activation, "batch_size": 8, "train_subset": 64}
    seeds = [0, 7, 3]
    Xtr, ytr, _, _ = sweep.load_tensors(config)
    X, y = next(seed_batches(Xtr, ytr, seeds, 8, epoch=1))  # (S, 8, 1, 28, 28), (S, 8)
    stack = SeedStack([sweep.init_net(config, s) for s in seeds])
    losses = stacked_cross_entropy(stack(X), y)  # (S,)
    losses.sum().backward()
    for i, s in enumerate(seeds):
        net = sweep.init_net(config, s)
        loss = nn.functional.cross_entropy(net(X[i]), y[i])
        loss.backward()
        torch.testing.assert_close(losses[i], loss, rtol=1e-6, atol=1e-7)
        for (name, p), g in zip(net.named_parameters(), stack.params.values(), strict=True):
            torch.testing.assert_close(g.grad[i], p.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_batched_engine_matches_fit_over_whole_runs() -> None:
    """Whole runs agree where rounding cannot tip them: plain SGD on the sigmoid net, 2 epochs.

    (Chaotic settings, e.g. Adam on ReLU convolutions, amplify the engines' different rounding --
    and a CPU's -- past any fixed tolerance; the step test above covers them.)
    """
    config = {**DEFAULTS, "batch_size": 8, "epochs": 2, "train_subset": 200, "test_subset": 300}
    seeds = [0, 7]
    batched = sweep.train_batched(config, seeds, num_threads=1)
    for seed, b in zip(seeds, batched, strict=True):
        s = sweep.train_single(config, seed, num_threads=1)
        assert b.group_size == 2 and s.engine == "fit" and b.engine == "batched"
        assert b.train_loss == pytest.approx(s.train_loss, rel=1e-4)
        assert b.train_acc == pytest.approx(s.train_acc, abs=2 / 200 + 1e-9)
        assert b.test_acc == pytest.approx(s.test_acc, abs=2 / 300 + 1e-9)
    assert batched[0].train_loss != batched[1].train_loss  # different seeds really are different runs


def test_relu_conv_keeps_sigmoid_in_dense_layers() -> None:
    from torch import nn

    net = sweep.build_net({**DEFAULTS, "activation": "relu_conv"})
    kinds = [type(m).__name__ for m in net]
    assert kinds[1] == "ReLU" and kinds[4] == "ReLU"
    after_linear = [type(net[i]) for i in range(1, len(net)) if isinstance(net[i - 1], nn.Linear)]
    assert after_linear == [nn.Sigmoid, nn.Sigmoid]


def test_summarize_counts_runs_per_point(tmp_path: Path) -> None:
    spec = load_spec({"name": "s", "base": TINY, "grid": {"lr": [0.5]}, "seeds": 2})
    run_sweep(spec, tmp_path / "s.csv", num_threads=1, progress=False, log=lambda s: None)
    table = sweep.summarize(sweep.results_frame(tmp_path / "s.csv"), "lr")
    assert table.loc[0.5, ("final_test_acc", "count")] == 2


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    spec = load_spec({"name": "s", "base": TINY, "seeds": 1})
    out = tmp_path / "s.csv"
    with sweep.one_writer(out), pytest.raises(sweep.SweepBusyError, match="another sweep"):
        run_sweep(spec, out, progress=False, log=lambda s: None)
    assert not out.exists()  # nothing was written by the refused sweep


def test_ablation_figures_group_runs_and_count_them() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from lenet_utils import viz

    rows = [
        {"lr": 0.9, "final_test_acc": 0.8, "test_acc": [0.5, 0.8]},
        {"lr": 0.9, "final_test_acc": 0.7, "test_acc": [0.4, 0.7]},
        {"lr": 0.1, "final_test_acc": 0.1, "test_acc": [0.1]},
    ]
    assert viz.ablation_points(rows, "lr") == {0.1: [0.1], 0.9: [0.8, 0.7]}
    assert viz.ablation_points(rows, "lr", "test_acc@2") == {0.9: [0.8, 0.7]}  # the 1-epoch run is skipped
    fig = viz.plot_ablation(rows, "lr", reference={0.9: 0.809, 1.1: 0.766}, planned=[0.5])
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == ["n=0", "n=0", "n=1", "n=2"]  # 0.5 planned, 1.1 only in the reference
    fig = viz.plot_epoch_curves(rows)
    assert len(fig.axes[0].lines) == 3 + 1  # every run, and the mean
    effects = {"gain": {"effect": 0.05, "low": 0.03, "high": 0.07, "reference": 0.04},
               "noise": {"effect": 0.01, "low": -0.01, "high": 0.03}}  # fmt: skip
    ax = viz.plot_effects(effects).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["noise", "gain"]  # first row on top
    gain_dot = ax.lines[1]  # interval, dot for "gain", then the same for "noise"
    assert gain_dot.get_xdata()[0] == pytest.approx(5.0) and gain_dot.get_color() == "C2"
    assert ax.lines[3].get_color() == "0.5"  # an interval containing zero is grey
    assert len(ax.collections) == 1  # one reference cross


# --------------------------------------------------------------------------------------------
# The estimate against committed runs (no timing: the unit costs come from committed rows)


def _estimate_from(
    monkeypatch: pytest.MonkeyPatch, calibration: list[dict], spec: sweep.Spec, done: set[str]
) -> float:
    """``sweep.estimate`` of ``spec``'s runs not in ``done``, with the unit costs its probes
    would measure replaced by the mean CPU seconds per seed-epoch of ``calibration``'s runs
    (all one configuration but the learning rate; the stand-in prices every rate alike)."""
    per_epoch = sum(r["cpu_seconds"] / r["epochs"] for r in calibration) / len(calibration)
    point = {k: calibration[0][k] for k in ("batch_size", "train_subset", "test_subset", "activation", "pool")}
    steps = -(-(point["train_subset"] or 60000) // point["batch_size"])

    def unit_costs(config: dict, engine: str, seeds: int = 1, num_threads: int = 1) -> sweep.UnitCosts:
        assert engine == "fit" and {k: config[k] for k in point} == point, (engine, config)
        return sweep.UnitCosts(per_epoch / steps, 0.0, 0.0)  # images and overhead folded into the steps

    monkeypatch.setattr(sweep.cost, "unit_costs", unit_costs)
    return sweep.estimate(spec, done, spec.engine, 1)[0]


def test_estimate_prices_committed_runs_within_20_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``estimate`` does with unit costs, against CPU seconds real runs recorded.

    Calibrated on the runs of the committed ``lr`` sweep (d2l's defaults at 17 learning rates,
    one thread): (a) the ``epochs`` sweep, the same network for 100 epochs and not among the
    calibration rows, priced as a whole; (b) each point of ``lr`` priced from the other 16
    points' runs only. Each estimate within 20% of the recorded total."""
    lr_rows = [r for r in read_results(REPO / "data/results/lr.csv") if r["sweep"] == "lr"]
    epochs_rows = [r for r in read_results(REPO / "data/results/epochs.csv") if r["sweep"] == "epochs"]
    assert {r["threads"] for r in lr_rows + epochs_rows} == {1}
    epochs_spec = load_spec(REPO / "data/sweeps/epochs.json")
    assert {r["run_id"] for r in epochs_rows} == {r.run_id for r in epochs_spec.runs()}
    measured = sum(r["cpu_seconds"] for r in epochs_rows)
    ratio = _estimate_from(monkeypatch, lr_rows, epochs_spec, set()) / measured
    assert 0.8 <= ratio <= 1.2, f"epochs sweep: estimate / measured = {ratio:.2f}"
    lr_spec = load_spec(REPO / "data/sweeps/lr.json")
    by_lr = collections.defaultdict(list)
    for r in lr_rows:
        by_lr[r["lr"]].append(r)
    assert sorted(by_lr) == sorted({c["lr"] for c in lr_spec.configs})
    ratios = {}
    for lr, rows in by_lr.items():
        others = [r for r in lr_rows if r["lr"] != lr]
        done = {r["run_id"] for r in others}
        ratios[lr] = _estimate_from(monkeypatch, others, lr_spec, done) / sum(r["cpu_seconds"] for r in rows)
    assert all(0.8 <= x <= 1.2 for x in ratios.values()), {k: round(v, 2) for k, v in ratios.items()}
