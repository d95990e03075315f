"""Writing files so that an interrupted program never leaves a half-written one.

Everything the package saves (checkpoints, logs, results) goes through here: the bytes are
written to a temporary file in the destination folder, made world-readable, and renamed into
place (``os.replace`` is atomic on one file system).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def _temporary(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)


def _publish(tmp: str, path: Path) -> None:
    os.chmod(tmp, 0o644)  # mkstemp makes files private; results are ordinary data
    os.replace(tmp, path)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` via a temporary name and a rename."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        _publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
