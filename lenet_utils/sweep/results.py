"""A sweep's results file: crash-safe rows, one writer at a time, read back without changes.

Crash safety. A row is written with a single ``write`` on a file opened for appending and
``fsync``'d before the next run starts, so killing the process at any moment leaves only
complete rows, except possibly one torn last line; :class:`ResultsFile` detects a torn last
line on resume and cuts it off. A run is identified by ``run_id``, a hash of its
hyperparameters and seed (:func:`lenet_utils.sweep.spec.run_key`), so a resumed sweep skips
exactly the runs already in the file: nothing is lost, nothing is run twice.
:func:`one_writer` keeps a second copy of a sweep from appending to the same file, and rows
of code that computes differently (another :data:`~lenet_utils.engine.NUMERICS`) are never
mixed into a file (:func:`check_numerics`) nor copied from one (:func:`reuse_rows`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..engine import NUMERICS
from ..files import atomic_write
from ..settings import SettingsChangedError, versions
from .spec import COLUMNS, EXTRAS, INT_MIN, Run, columns_for

__all__ = [
    "Result",
    "ResultsFile",
    "SweepBusyError",
    "check_numerics",
    "done_run_ids",
    "numerics_of",
    "one_writer",
    "read_results",
    "result_row",
    "results_frame",
    "reuse_rows",
    "summarize",
]


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


def _versions() -> str:
    """The ``versions`` column: ``python=... torch=... numpy=... lenet_utils=... numerics=N``."""
    return " ".join(f"{k}={v}" for k, v in versions().items())


def numerics_of(versions_field: str) -> str | None:
    """The ``numerics=N`` of a row's ``versions`` column (``None`` if the row predates it)."""
    for word in versions_field.split():
        if word.startswith("numerics="):
            return word.split("=", 1)[1]
    return None


def check_numerics(results: ResultsFile) -> None:
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


def reuse_rows(paths: Iterable[str | Path], wanted: set[str], out: Path | None) -> dict[str, dict[str, str]]:
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
            elif k in INT_MIN or k in ("seed", "group_size", "threads"):
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


def done_run_ids(path: str | Path) -> set[str]:
    """The run ids already in a results file, read without touching it (for ``--dry-run``)."""
    return {r["run_id"] for r in read_results(path)}
