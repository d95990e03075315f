"""Shared fixtures: the built site (built once per test session, used by the build and browser tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``jupyter-book build . -W -n --keep-going`` into a temporary folder: (process, html folder).

    ``LENET_BUILT_SITE=path/to/_build/html`` reuses a site built before (a quicker loop while
    working on the browser tests); the build test then checks that folder's pages only.
    """
    prebuilt = os.environ.get("LENET_BUILT_SITE")
    if prebuilt:
        return subprocess.CompletedProcess(["prebuilt"], 0, "", ""), Path(prebuilt)
    out = tmp_path_factory.mktemp("site")
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run(
        [jb, "build", str(REPO), "-W", "-n", "--keep-going", "--path-output", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return proc, out / "_build" / "html"
