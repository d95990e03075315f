"""``python -m lenet_utils bench``: rows in fresh processes, rounds and medians (no timings asserted)."""

from __future__ import annotations

import pytest

from lenet_utils import bench


def test_bench_runs_each_row_in_rounds_and_reports_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench --decompose --fast --rounds 3``: the four rows in order, three times; medians."""
    calls: list[tuple[str, tuple[str, ...]]] = []
    walls = iter([80.0, 40.0, 40.0, 30.0, 100.0, 40.0, 40.0, 30.0, 90.0, 40.0, 30.0, 30.0])

    def fake(kind: str, epochs: int, lr: float, batch_size: int, seed: int, options: dict) -> dict:
        calls.append((kind, tuple(options)))
        return {"wall_s": next(walls), "wall_rate": 1.0, "d2l_rate": 1.0, "loss": 0.5, "train_acc": 0.8,
                "test_acc": 0.8, "threads": 2, "fast": True}  # fmt: skip

    monkeypatch.setattr(bench, "measure_in_fresh_process", fake)
    lines: list[str] = []
    results = bench.report(1, decompose=True, fast=True, rounds=3, say=lines.append)
    one_round = [("d2l", ()), ("d2l", ("our_loaders",)), ("ours", ()), ("ours", ("fast",))]
    assert calls == 3 * one_round
    assert list(results) == [name for name, _, _ in bench.trainers(decompose=True, fast=True)]
    assert results["d2l.train_ch6"]["wall_s"] == 90.0  # median of 80, 100, 90
    text = "\n".join(lines)
    # d2l / fit per round: 2.0, 2.5, 3.0 (fit 40, 40, 30): the median ratio
    assert "fit, wall clock: 2.5x" in text and "rounds: 2.00x, 2.50x, 3.00x" in text
    assert "(round 3 of 3)" in text and "the median of 3 rounds" in text
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        bench.report(1, rounds=0, say=lines.append)


def test_bench_rows_without_decompose_or_fast() -> None:
    assert [n for n, _, _ in bench.trainers()] == ["d2l.train_ch6", "lenet_utils.train.fit"]
    assert [n for n, _, _ in bench.trainers(skip_d2l=True, fast=True)] == ["lenet_utils.train.fit", bench.FAST_ROW]


def test_bench_row_runs_in_a_fresh_process_and_reports_its_failure() -> None:
    failed = r"(?s)the ours run failed in its process \(exit code 1\):.*ValueError: .*epochs"
    with pytest.raises(RuntimeError, match=failed):
        bench.measure_in_fresh_process("ours", 0, 0.9, 256, 0, {})


def test_measure_passes_the_row_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from lenet_utils import data

    monkeypatch.setattr(bench, "run_d2l", lambda *a, loaders=None: {"loaders": loaders})
    monkeypatch.setattr(bench, "run_ours", lambda *a, fast=False: {"fast": fast})
    monkeypatch.setattr(data, "load_data", lambda *a, **k: ("train", "test"))
    assert bench.measure("d2l", 1, 0.9, 256, 0, {}) == {"loaders": None}  # d2l's own loader
    assert bench.measure("d2l", 1, 0.9, 256, 0, {"our_loaders": True}) == {"loaders": ("train", "test")}
    assert bench.measure("ours", 1, 0.9, 256, 0, {"fast": True}) == {"fast": True}
