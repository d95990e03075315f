"""Sweeps that scale out on Ray: one Ray task per (configuration, seed), one writer for the CSV.

:func:`run_sweep_on_ray` runs the same grid as :func:`lenet_utils.sweep.run_sweep`, but sends
every pending run to a Ray cluster as one task (:func:`lenet_utils.sweep.execute`, the
single-seed engine, ``num_threads`` intra-op threads and as many Ray CPUs per task). Only the
driver touches the results file: it holds :func:`~lenet_utils.sweep.one_writer` for the whole
sweep and appends each finished row, as tasks finish, through the same
:class:`~lenet_utils.sweep.ResultsFile` (one ``O_APPEND`` write + ``fsync`` per row). A worker
never writes the file, so the crash-safety argument of :mod:`lenet_utils.sweep` carries over:
killing the driver at any moment (even ``SIGKILL``) and re-running the same command finishes
the grid with every (configuration, seed) exactly once.

Where the tasks run:

* ``address=None``: a private local Ray instance (``ray.init(address="local")``, one Ray CPU per
  available core, no dashboard) started for the sweep and shut down at its end. On Linux its
  GCS and raylet die with the driver (Ray's kernel fate-sharing), and so do the workers; after
  a ``SIGKILL`` two small Ray agent processes linger for about a minute before exiting on their
  own. They hold no lock and no port a new run needs: the rerun starts its own fresh instance.
* ``address="auto"``, ``"HOST:6379"`` (a GCS address, from a node of the cluster) or
  ``"ray://HOST:10001"`` (Ray Client, from anywhere): an existing cluster. The driver only
  disconnects at the end. If the driver dies, Ray ends its job and kills its running tasks.

Ray is an optional dependency (``pip install 'lenet_utils[cluster]'``); see
:func:`cluster_howto` for setting up a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .engine import NUMERICS
from .sweep import ResultsFile, Run, Spec, execute, numerics_of, one_writer, pending_runs

__all__ = [
    "RAY_MISSING",
    "ClusterError",
    "SweepTaskError",
    "cluster_howto",
    "run_sweep_on_ray",
]

#: The error when Ray is not installed (the CLI's ``--ray`` flag shows it as is).
RAY_MISSING = "the --ray option needs Ray: pip install 'lenet_utils[cluster]'"

#: Seconds to wait for a TCP connection to a given cluster address before giving up.
CONNECT_TIMEOUT_S = 5.0

# Ray enables token authentication on a cluster whose head has a token (~/.ray/auth_token); a
# driver given an explicit address sends its token only when asked to (RAY_AUTH_MODE=token).
_AUTH_HINT = (
    " (if the cluster uses token authentication, set RAY_AUTH_MODE=token and give this machine "
    "the head's token: ~/.ray/auth_token or $RAY_AUTH_TOKEN)"
)

_HOWTO = """\
Running a sweep on a Ray cluster (Ray must be the same version everywhere:
the [cluster] extra pins it)

1. On every machine (head and workers): clone this repository, then
       pip install -e '.[cluster]'   # lenet_utils, torch, Ray
       python -m lenet_utils fetch   # the datasets, into the clone's data/
   Workers import lenet_utils and read the data from the clone lenet_utils
   was installed from (or from $LENET_DATA_ROOT, if set on that machine).
2. Head node:      ray start --head --port=6379
   Each worker:    ray start --address=HEAD:6379
   (Token authentication: if the head has ~/.ray/auth_token, copy it to the
   workers and the client machine, or set RAY_AUTH_TOKEN there, and set
   RAY_AUTH_MODE=token on the client.)
3. Driver, on the head node:
       python -m lenet_utils sweep data/sweeps/lr.json \\
           --out data/results/lr.csv --ray auto
   or from another machine, through Ray Client (port 10001 of the head must
   be reachable):
       python -m lenet_utils sweep data/sweeps/lr.json \\
           --out data/results/lr.csv --ray ray://HEAD:10001
   Without an address, --ray starts a private local Ray instance on this
   machine.
4. The CSV is written by the driver only, on the driver's machine. Kill it
   at any moment and run the same command again: it resumes, every
   (configuration, seed) ends up in the CSV exactly once.
"""


class ClusterError(RuntimeError):
    """Ray is missing, or the cluster cannot be started or reached (a one-line message)."""


class SweepTaskError(RuntimeError):
    """Some runs raised on the cluster; every other run finished and has its row.

    Attributes:
        failed: run id -> one-line error, for each run that raised (none of them has a row).
        results: the results file, with every row that did finish.
    """

    def __init__(self, failed: dict[str, str], results: ResultsFile) -> None:
        self.failed = dict(failed)
        self.results = results
        super().__init__(
            f"{len(failed)} run(s) failed on the cluster, no row written for them: {', '.join(failed)} "
            "(the other runs are in the CSV; fix the cause and run the same command again to finish the grid)"
        )


def cluster_howto() -> str:
    """How to set up a Ray cluster for the sweeps and run one (the text ``--ray help`` may print)."""
    return _HOWTO


# --------------------------------------------------------------------------------------------
# Ray: import, start or connect


def _import_ray() -> ModuleType:
    """``import ray``, or a :class:`ClusterError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ClusterError(RAY_MISSING) from e
    return ray


def _local_cpus() -> int:
    """CPUs this process may run on (honours ``taskset`` / container affinity masks)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``ray://HOST:PORT`` or ``HOST:PORT``; ``None`` when there is no port (``auto``)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``address``.

    Ray itself retries for 30 s (Ray Client) or minutes (a GCS address) before giving up.
    """
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {reason} "
            f"(is `ray start --head` running there, and is port {target[1]} open?)"
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def _ray_session(ray: ModuleType, address: str | None, num_threads: int, log: Callable[[str], None]) -> Iterator[None]:
    """Start a local Ray (``address=None``) or connect to a cluster; shut down / disconnect at the end.

    A process already connected to Ray (``ray.is_initialized()``, e.g. a notebook) keeps its
    connection: it is used as is and left open.
    """
    if ray.is_initialized():
        log("using this process's existing Ray connection")
        yield
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        cpus = max(_local_cpus(), num_threads)
        try:
            ray.init(address="local", num_cpus=cpus, **quiet)
        except Exception as e:
            raise ClusterError(f"could not start a local Ray instance: {_first_line(e)}") from None
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except Exception as e:
            hint = "" if os.environ.get("RAY_AUTH_MODE") or address == "auto" else _AUTH_HINT
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: {_first_line(e)}{hint}") from None
        _warn_if_too_small(ray, num_threads, log)
    try:
        yield
    finally:
        ray.shutdown()


def _warn_if_too_small(ray: ModuleType, num_threads: int, log: Callable[[str], None]) -> None:
    """Say so when no node of a connected cluster can take a task of ``num_threads`` CPUs (it would wait)."""
    with contextlib.suppress(Exception):  # informative only; never fail a sweep over it
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if largest < num_threads:
            log(
                f"warning: no node of the cluster has {num_threads} CPUs (largest: {largest:g}); "
                "the tasks wait until such a node joins (lower --threads?)"
            )


# --------------------------------------------------------------------------------------------
# The task, and the driver loop


def _use_checkout_data() -> None:
    """On a worker whose working directory is outside the clone, read the clone's ``data/``.

    :func:`lenet_utils.data.default_root` looks for the clone from the working directory; a
    Ray worker on another machine starts wherever its raylet did. If ``$LENET_DATA_ROOT`` is
    unset and the working directory is not in a clone, use the clone ``lenet_utils`` was
    installed from (``pip install -e .``), when it has a ``data/`` folder.
    """
    from . import data

    if os.environ.get(data.ROOT_ENV) or data.default_root() != Path("../data"):
        return
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "_toc.yml").is_file() and (checkout / "data").is_dir():
        os.environ[data.ROOT_ENV] = str(checkout / "data")


def _train_task(spec_name: str, run: Run, num_threads: int) -> dict[str, Any]:
    """The body of one Ray task: train ``run`` on the worker, return its finished row (never write it)."""
    _use_checkout_data()
    return execute(spec_name, run, num_threads=num_threads)


def _task_error(e: BaseException) -> str:
    """One line for a failed task: the original exception if Ray wrapped one, a hint if the package is missing."""
    cause = getattr(e, "cause", None)
    err = cause if isinstance(cause, BaseException) else e
    line = f"{type(err).__name__}: {_first_line(err)}"
    if "No module named 'lenet_utils'" in str(e):
        line += " (install lenet_utils on every worker: `pip install -e .` in a clone of the repository)"
    return line


def _label(spec: Spec, run: Run) -> str:
    """``run ID (lr=0.5; seed 1)``: the run id, the values of the knobs the sweep turns, the seed."""
    knobs = "".join(f"{k}={run.config[k]}; " for k in spec.varied)
    return f"run {run.run_id} ({knobs}seed {run.seed})"


def _finish(
    ray: ModuleType, ref: Any, run: Run, results: ResultsFile
) -> str | None:
    """Fetch a finished task's row and append it; return the one-line error instead if the task failed."""
    try:
        row = ray.get(ref)
        if row.get("run_id") != run.run_id:
            raise RuntimeError(
                f"the task returned the row of run {row.get('run_id')!r}"
            )
        theirs = numerics_of(str(row.get("versions", "")))
        # a worker with other lenet_utils code: never mix its rows in
        if theirs != str(NUMERICS):
            raise RuntimeError(
                "the worker runs lenet_utils code of other numerics "
                f"({theirs}; the driver's: {NUMERICS}): "
                "install the same version on every worker"
            )
    except Exception as e:
        return _task_error(e)
    # the only writer: one O_APPEND write + fsync, before the next row
    results.append(row)
    return None


def _drive(
    ray: ModuleType,
    spec: Spec,
    todo: Sequence[Run],
    results: ResultsFile,
    num_threads: int,
    max_in_flight: int | None,
    tick: Callable[[], None],
    log: Callable[[str], None],
) -> dict[str, str]:
    """Submit the runs as tasks, append each row as its task finishes; return the failures (run id -> error)."""
    task = ray.remote(num_cpus=num_threads)(_train_task)
    queue = deque(todo)
    in_flight: dict[Any, Run] = {}
    failed: dict[str, str] = {}
    try:
        while queue or in_flight:
            while queue and (max_in_flight is None or len(in_flight) < max_in_flight):
                run = queue.popleft()
                in_flight[task.remote(spec.name, run, num_threads)] = run
            try:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
            except Exception as e:  # the connection to the cluster is gone (not a task's failure)
                msg = f"lost the Ray cluster: {_first_line(e)}; run the same command again to resume"
                raise ClusterError(msg) from e
            for ref in ready:
                run = in_flight.pop(ref)
                error = _finish(ray, ref, run, results)
                if error is not None:
                    failed[run.run_id] = error
                    log(f"{_label(spec, run)} failed: {error}")
                tick()
    finally:
        for ref in in_flight:  # interrupted (Ctrl-C, lost connection): do not leave the cluster busy
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
    return failed


# --------------------------------------------------------------------------------------------
# The entry point


def run_sweep_on_ray(
    spec: Spec,
    out: str | Path,
    *,
    address: str | None = None,
    num_threads: int = 1,
    limit: int | None = None,
    reuse: Sequence[str | Path] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
    max_in_flight: int | None = None,
) -> ResultsFile:
    """Run every (configuration, seed) of ``spec`` not yet in ``out`` as Ray tasks; append one row per finished run.

    Args:
        spec: from :func:`lenet_utils.sweep.load_spec`.
        out: the results CSV, on the driver's machine (created with its header if missing;
            resumed otherwise, exactly as :func:`lenet_utils.sweep.run_sweep` does).
        address: ``None`` starts a private local Ray instance for the sweep (shut down at the
            end); ``"auto"``, ``"HOST:6379"`` or ``"ray://HOST:10001"`` connect to a running
            cluster (see :func:`cluster_howto`).
        num_threads: intra-op threads per run, and Ray CPUs per task.
        limit: run at most this many new runs.
        reuse: other results files whose identical runs are copied instead of trained.
        progress: a tqdm bar over runs, on stderr.
        log: where one-line messages go (plan, failures).
        max_in_flight: at most this many tasks submitted and unfinished at a time (default:
            every pending run is submitted at once; Ray queues them until CPUs are free).

    Returns:
        The results file, with every finished row.

    Raises:
        ClusterError: Ray is not installed, or the local instance cannot start, or the
            cluster at ``address`` cannot be reached.
        SweepBusyError: another process is writing to ``out``.
        SweepTaskError: some runs raised on the cluster (listed; no row for them). Every other
            run has its row; re-running the same command retries only the failed ones.
    """
    if num_threads < 1 or (max_in_flight is not None and max_in_flight < 1):
        raise ValueError(f"num_threads and max_in_flight must be >= 1, got {num_threads} and {max_in_flight}")
    ray = _import_ray()
    with one_writer(Path(out)):
        results = ResultsFile(out, spec.columns())
        todo = pending_runs(spec, results, reuse, limit, log)
        if not todo:
            return results
        with _ray_session(ray, address, num_threads, log), _progress(progress, len(todo), spec.name) as tick:
            failed = _drive(ray, spec, todo, results, num_threads, max_in_flight, tick, log)
    if failed:
        raise SweepTaskError(failed, results)
    return results


@contextlib.contextmanager
def _progress(enabled: bool, total: int, name: str) -> Iterator[Callable[[], None]]:
    """A tqdm bar over runs on stderr (yields its ``tick``), or a no-op when disabled."""
    if not enabled:
        yield lambda: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="run", desc=f"{name} (ray)", mininterval=1.0, dynamic_ncols=True, file=sys.stderr)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()
