"""Tests of lenet_utils.cluster: sweeps as Ray tasks, one writer, kill-and-resume, clear errors.

One slow test starts real local Ray instances (two: the killed driver's and the resumed
one's, about 10 s each on a 2-core machine). The driver loop's failure handling is tested
against a stand-in for Ray that runs the tasks in this process; the connection errors fail
before any Ray process starts.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from lenet_utils import cluster
from lenet_utils.cluster import ClusterError, SweepTaskError, run_sweep_on_ray
from lenet_utils.engine import NUMERICS
from lenet_utils.sweep import COLUMNS, ResultsFile, Run, execute, load_spec, read_results

try:
    import ray
except ImportError:  # the optional extra [cluster]; requirements.txt installs it, so CI runs these tests
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="needs Ray: pip install 'lenet_utils[cluster]'")

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 1, "train_subset": 256, "test_subset": 128, "batch_size": 64}

# The driver of the kill-and-resume test: the call the CLI's --ray makes.
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


# --------------------------------------------------------------------------------------------
# On a real local Ray instance


@needs_ray
@pytest.mark.slow
def test_killed_driver_resumes_on_local_ray_with_every_run_once_and_in_process_numbers(tmp_path: Path) -> None:
    raw = {"name": "k", "base": TINY, "grid": {"lr": [0.5, 0.9]}, "seeds": 4}
    spec, out = load_spec(raw), tmp_path / "r.csv"
    assert len(spec.runs()) == 8
    # 1. a driver (own session: its local Ray node and workers too), SIGKILLed after its first row
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
        _kill_session(proc.pid)  # also the workers (own process groups, same session); returns once all are gone
        proc.stdout.close()
    after_kill = _data_rows(out)
    assert 1 <= after_kill < 8, "the kill came too late to test resuming"
    # 2. the same call again (here, in-process): a new local Ray instance finishes the grid
    logs: list[str] = []
    run_sweep_on_ray(spec, out, progress=False, log=logs.append)
    assert any(f"8 runs in the grid, {after_kill} done, {8 - after_kill} to run" in line for line in logs), logs
    ResultsFile(out)  # every line parses: no torn or partial row
    rows = read_results(out)
    counts = collections.Counter((r["lr"], r["seed"]) for r in rows)
    assert len(rows) == 8 and set(counts.values()) == {1}
    assert set(counts) == {(c["lr"], s) for c in spec.configs for s in spec.seeds}
    assert {r["run_id"] for r in rows} == {r.run_id for r in spec.runs()}
    # 3. every row (from either driver) has the numbers the single-seed engine gives in this process
    by_id = {r["run_id"]: r for r in rows}
    before = torch.get_num_threads()
    try:
        for run in spec.runs():
            ref, row = execute("k", run, num_threads=1), by_id[run.run_id]
            assert row["final_test_acc"] == ref["final_test_acc"], run
            assert row["final_train_loss"] == ref["final_train_loss"], run
            assert row["train_loss"] == [round(x, 6) for x in ref["train_loss"]], run
            assert row["threads"] == 1 and row["sweep"] == "k"
    finally:
        torch.set_num_threads(before)
    # 4. nothing left to do: returns without starting Ray, writes nothing
    logs.clear()
    assert len(run_sweep_on_ray(spec, out, progress=False, log=logs.append).rows) == 8
    assert logs == ["k: 8 runs in the grid, 8 done, 0 to run"] and _data_rows(out) == 8


# --------------------------------------------------------------------------------------------
# The driver loop, against a stand-in for Ray


class _FakeRay:
    """Just enough of Ray's API for the driver: a task runs in this process when its result is fetched,
    and raises as ``ray.get`` does (a ``RayTaskError`` that is also an instance of the cause)."""

    def __init__(self) -> None:
        self.initialized, self.init_kwargs, self.submitted, self.fetched, self.most_in_flight = False, {}, 0, 0, 0

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs: Any) -> None:
        self.initialized, self.init_kwargs = True, kwargs

    def shutdown(self) -> None:
        self.initialized = False

    def remote(self, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        fake = self

        class Task:
            def __init__(self, fn: Callable[..., Any]) -> None:
                self.fn = fn

            def remote(self, *args: Any) -> Callable[[], Any]:
                fake.submitted += 1
                fake.most_in_flight = max(fake.most_in_flight, fake.submitted - fake.fetched)
                return lambda: self.fn(*args)

        return Task

    def wait(self, refs: list[Any], num_returns: int = 1) -> tuple[list[Any], list[Any]]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: Callable[[], Any]) -> Any:
        self.fetched += 1
        try:
            return ref()
        except Exception as e:
            wrapped = ray.exceptions.RayTaskError("_train_task", "Traceback (most recent call last): ...", e)
            raise wrapped.as_instanceof_cause() from None

    def cancel(self, ref: Any, force: bool = False) -> None:
        pass


def _fake_execute(spec_name: str, run: Run, *, num_threads: int = 1) -> dict[str, Any]:
    if run.config["optimizer"] == "no-such-optimizer":
        raise ValueError("unknown optimizer 'no-such-optimizer'\n(second line)")
    row = {**{c: "0" for c in COLUMNS}, **run.config, "run_id": run.run_id, "sweep": spec_name, "seed": run.seed}
    return {**row, "versions": f"lenet_utils=0.1.0 numerics={NUMERICS}"}


@needs_ray
def test_failed_tasks_are_reported_in_one_line_each_and_get_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeRay()
    monkeypatch.setattr(cluster, "_import_ray", lambda: fake)
    monkeypatch.setattr(cluster, "execute", _fake_execute)
    spec = load_spec({"name": "t", "base": TINY, "grid": {"lr": [0.5, 0.9]}, "seeds": 2})
    good = spec.runs()
    spec.configs.insert(1, {**spec.configs[0], "optimizer": "no-such-optimizer"})  # load_spec would refuse it
    bad = [r for r in spec.runs() if r.config["optimizer"] == "no-such-optimizer"]
    out, logs = tmp_path / "r.csv", []
    with pytest.raises(SweepTaskError) as info:
        run_sweep_on_ray(spec, out, progress=False, log=logs.append, max_in_flight=2)
    assert set(info.value.failed) == {r.run_id for r in bad} and all(r.run_id in str(info.value) for r in bad)
    failures = [line for line in logs if "failed:" in line]
    assert failures == [
        f"run {r.run_id} (lr=0.5; seed {r.seed}) failed: ValueError: unknown optimizer 'no-such-optimizer'" for r in bad
    ]
    # the others kept going, each written once; nothing for the failed ones
    assert [row["run_id"] for row in ResultsFile(out).rows] == [r.run_id for r in good]
    assert fake.most_in_flight == 2 and fake.submitted == 6
    assert fake.init_kwargs["address"] == "local" and fake.init_kwargs["num_cpus"] >= 1 and not fake.initialized


def test_rows_of_workers_running_other_code_are_refused(tmp_path: Path) -> None:
    run = load_spec({"name": "t", "base": TINY}).runs()[0]
    results = ResultsFile(tmp_path / "r.csv")
    stale = {**_fake_execute("t", run), "versions": "lenet_utils=0.1.0 numerics=0"}
    error = cluster._finish(_FakeRay(), lambda: stale, run, results)
    assert error is not None and "other numerics (0" in error and not results.rows
    other = {**_fake_execute("t", run), "run_id": "000000000000"}
    assert "row of run '000000000000'" in cluster._finish(_FakeRay(), lambda: other, run, results)
    assert cluster._finish(_FakeRay(), lambda: _fake_execute("t", run), run, results) is None
    assert results.done() == {run.run_id}


# --------------------------------------------------------------------------------------------
# Errors before any Ray process starts


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
