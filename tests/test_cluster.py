"""Tests of lenet_utils.cluster: sweeps as Ray tasks, one writer, kill-and-resume, clear errors.

The two slow tests each start a private local Ray instance (about 10 s on a 2-core machine).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lenet_utils import cluster
from lenet_utils.cluster import ClusterError, SweepTaskError, run_sweep_on_ray
from lenet_utils.sweep import ResultsFile, execute, load_spec, read_results

try:
    import ray
except ImportError:  # the optional extra [cluster]; requirements.txt installs it, so CI runs these tests
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="needs Ray: pip install 'lenet_utils[cluster]'")

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 1, "train_subset": 256, "test_subset": 128, "batch_size": 64}

# The driver of the kill-and-resume test: the same call the CLI's --ray makes.
DRIVER = (
    "import json, sys\n"
    "from lenet_utils.cluster import run_sweep_on_ray\n"
    "from lenet_utils.sweep import load_spec\n"
    "run_sweep_on_ray(load_spec(json.loads(sys.argv[1])), sys.argv[2], progress=False)\n"
)


# One token for every Ray instance these tests start (in this process and in the driver
# subprocess): token authentication stays on, and ~/.ray/auth_token is neither read nor written.
_TOKEN = secrets.token_hex(32)


@pytest.fixture(autouse=True)
def _private_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ray's session files in a fresh short folder (deleted after the test), not /tmp/ray; then check
    that the test left this process disconnected (run_sweep_on_ray shuts its own instance down)."""
    root = tempfile.mkdtemp(prefix="ray")  # short: Ray's Unix socket paths live under it
    monkeypatch.setenv("RAY_TMPDIR", root)
    # With RAY_AUTH_MODE unset, a new local instance turns token mode on (and refreshes this process's
    # Ray config, which setting the variable here, after `import ray`, would not); the token is ours.
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", _TOKEN)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    try:
        yield
        if ray is not None and ray.is_initialized():
            ray.shutdown()
            pytest.fail("run_sweep_on_ray left Ray initialised")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _session_pids(sid: int) -> list[int]:
    """The processes of session ``sid`` still alive (Linux /proc), zombies excluded."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _kill_session(sid: int, timeout: float = 20.0) -> None:
    """SIGKILL every process of session ``sid`` (the driver we started, its Ray node and workers)."""
    deadline = time.monotonic() + timeout
    while pids := _session_pids(sid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of session {sid} survived SIGKILL: {pids}")
        time.sleep(0.2)


def _data_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return max(0, path.read_bytes().count(b"\n") - 1)


@needs_ray
@pytest.mark.slow
def test_local_ray_sweep_matches_in_process_runs_and_reports_failures(tmp_path: Path) -> None:
    spec = load_spec({"name": "t", "base": TINY, "grid": {"lr": [0.5, 0.9]}, "seeds": 2})
    good = spec.runs()
    # one more point that raises on the worker (an optimizer load_spec would refuse): 2 failing runs
    spec.configs.append({**spec.configs[0], "optimizer": "no-such-optimizer"})
    bad_ids = {r.run_id for r in spec.runs()} - {r.run_id for r in good}
    out, logs = tmp_path / "r.csv", []
    with pytest.raises(SweepTaskError) as info:
        run_sweep_on_ray(spec, out, progress=False, log=logs.append)
    # failures: named, one line each, no row
    assert set(info.value.failed) == bad_ids
    failure_lines = [line for line in logs if "failed:" in line]
    assert len(failure_lines) == 2 and all("\n" not in line for line in failure_lines)
    assert all("no-such-optimizer" in line and "ValueError" in line for line in failure_lines)
    rows = read_results(out)
    assert sorted(r["run_id"] for r in rows) == sorted(r.run_id for r in good)  # each good run exactly once
    # the same numbers as the single-seed engine in this process (1 thread, same machine)
    by_id = {r["run_id"]: r for r in rows}
    before = torch.get_num_threads()
    try:
        for run in good:
            ref, row = execute("t", run, num_threads=1), by_id[run.run_id]
            assert row["final_test_acc"] == ref["final_test_acc"], run
            assert row["final_train_loss"] == ref["final_train_loss"], run
            assert row["train_loss"] == [round(x, 6) for x in ref["train_loss"]], run
            assert row["threads"] == 1 and row["sweep"] == "t"
    finally:
        torch.set_num_threads(before)
    # nothing left to do: no Ray start, no new row
    again = run_sweep_on_ray(load_spec({"name": "t", "base": TINY, "grid": {"lr": [0.5, 0.9]}, "seeds": 2}), out)
    assert len(again.rows) == 4 and _data_rows(out) == 4


@needs_ray
@pytest.mark.slow
def test_killed_driver_resumes_every_run_exactly_once(tmp_path: Path) -> None:
    raw = {"name": "k", "base": TINY, "grid": {"lr": [0.3, 0.5, 0.7, 0.9]}, "seeds": 2}
    spec, out = load_spec(raw), tmp_path / "r.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(raw), str(out)],
        cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 100
        while _data_rows(out) < 1:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the driver wrote no row (exit {proc.poll()}):\n{proc.stdout.read().decode()[-3000:]}")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray node, at once
        proc.wait(timeout=30)
    finally:
        _kill_session(proc.pid)  # also the workers (own process groups, same session); waits until all are gone
        proc.stdout.close()
    after_kill = _data_rows(out)
    assert 1 <= after_kill < len(spec.runs()), "the kill came too late to test resuming"
    logs: list[str] = []
    run_sweep_on_ray(spec, out, progress=False, log=logs.append)  # the same call again, in this process
    assert any(f"{after_kill} done, {len(spec.runs()) - after_kill} to run" in line for line in logs), logs
    rows = read_results(out)
    assert len(rows) == len(spec.runs()) == 8
    counts = collections.Counter((r["lr"], r["seed"]) for r in rows)
    assert set(counts) == {(c["lr"], s) for c in spec.configs for s in spec.seeds}
    assert set(counts.values()) == {1}
    assert {r["run_id"] for r in rows} == {r.run_id for r in spec.runs()}
    ResultsFile(out)  # every line parses (no torn or partial row left behind)


def test_missing_ray_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    spec = load_spec({"name": "t", "base": TINY})
    with pytest.raises(ClusterError) as info:
        run_sweep_on_ray(spec, tmp_path / "r.csv")
    assert str(info.value) == "the --ray option needs Ray: pip install 'lenet_utils[cluster]'"
    assert not (tmp_path / "r.csv").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@needs_ray
@pytest.mark.parametrize("scheme", ["ray://", ""])
def test_unreachable_cluster_fails_fast_with_one_line(tmp_path: Path, scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as info:
        run_sweep_on_ray(load_spec({"name": "t", "base": TINY}), tmp_path / "r.csv", address=address, log=print)
    message = str(info.value)
    assert time.monotonic() - t0 < cluster.CONNECT_TIMEOUT_S + 5
    assert address in message and "\n" not in message, message
    assert not ray.is_initialized()


def test_address_parsing_and_howto() -> None:
    assert cluster._host_port("ray://head.example:10001") == ("head.example", 10001)
    assert cluster._host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert cluster._host_port("[::1]:6379") == ("::1", 6379)
    assert cluster._host_port("auto") is None
    text = cluster.cluster_howto()
    assert "ray start --head" in text and "--ray auto" in text and "ray://HEAD:10001" in text
    with pytest.raises(ValueError, match="num_threads"):
        run_sweep_on_ray(load_spec({"name": "t", "base": TINY}), "unused.csv", num_threads=0)
