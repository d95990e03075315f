"""The Colab channel: every chapter's bootstrap cell, and a simulated Colab runtime.

The simulation starts a fresh kernel, fakes ``google.colab``, runs a chapter's bootstrap *as
written* (git is told to fetch the book's URL from this repository instead, and the clone goes
to a temporary folder through ``LENET_BOOK_DIR``), then the chapter's next cells: the imports
must come from the clone, in the same kernel, and the data arrives through
``$LENET_DATA_MIRROR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import colab_bootstrap  # noqa: E402

CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_bootstrap_cell_is_the_canonical_one(path: Path) -> None:
    cell = colab_bootstrap.first_code_cell(json.loads(path.read_text()))
    assert "".join(cell["source"]) == colab_bootstrap.bootstrap_source(), (
        "the bootstrap cell differs from tools/colab_bootstrap.py: run python tools/colab_bootstrap.py"
    )
    assert "remove-cell" in cell["metadata"].get("tags", []), "the bootstrap cell must be hidden on the site"
    assert not cell.get("outputs"), "outside Colab the bootstrap prints nothing"


def test_bootstrap_uses_the_configured_repository(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text("title: x\nrepository:\n  url: https://example.org/me/book\n  branch: main\n")
    assert '"https://example.org/me/book"' in colab_bootstrap.bootstrap_source(tmp_path)
    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match=r"repository\.url"):
        colab_bootstrap.bootstrap_source(tmp_path)


def _cells_until(nb: nbformat.NotebookNode, marker: str) -> list[str]:
    """Sources of the code cells from the first through the first one that contains ``marker``."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cells.append(cell.source)
            if marker in cell.source:
                return cells
    raise AssertionError(f"no code cell contains {marker!r}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chapter", "marker"),
    [("01_background_and_data", "mnist_d2l.csv"), ("02_convolution_and_pooling", "_explorer(")],
)
def test_chapter_starts_in_a_simulated_colab_kernel(tmp_path: Path, chapter: str, marker: str) -> None:
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("the simulation clones this repository: it needs to be a git checkout")
    book = tmp_path / "content" / "lenet5-book"
    mirror = os.environ.get("LENET_DATA_MIRROR") or str(REPO / "data")
    env = {
        "LENET_BOOK_DIR": str(book),
        "LENET_DATA_MIRROR": mirror,
        # git fetches the book's public URL from this checkout instead (no network in CI)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{REPO}.insteadOf",
        "GIT_CONFIG_VALUE_0": colab_bootstrap.repository_url(),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    nb = nbformat.read(REPO / "chapters" / f"{chapter}.ipynb", as_version=4)
    # Colab: google.colab is there, MyST-NB is not (importing it raises ImportError)
    fake_colab = (
        "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        "sys.modules['myst_nb'] = None"
    )
    check = (
        "import os, subprocess, lenet_utils\n"
        "print(lenet_utils.__file__)\n"
        "print(os.getcwd())\n"
        # a command the chapter starts must import the clone too (python -m lenet_utils ...)
        "child = [sys.executable, '-c', 'import lenet_utils; print(lenet_utils.__file__)']\n"
        "print(subprocess.run(child, capture_output=True, text=True, check=True).stdout)"
    )
    sources = [fake_colab, *_cells_until(nb, marker), check]
    sim = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        resources = {"metadata": {"path": str(tmp_path)}}
        NotebookClient(sim, timeout=600, kernel_name="python3", resources=resources).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert (book / "lenet_utils").is_dir(), "the bootstrap did not clone the book"
    printed = "".join(o.get("text", "") for o in sim.cells[-1].outputs if o.output_type == "stream").split()
    assert printed[0].startswith(str(book)), f"lenet_utils was imported from {printed[0]}, not from the clone"
    assert printed[1] == str(book / "chapters")
    assert printed[2].startswith(str(book)), f"a command started by the chapter imported {printed[2]}"
