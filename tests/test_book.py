"""The book as a whole: notebook conventions, and the site build with warnings as errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("[0-9]*.ipynb"))


def _toc_files() -> list[str]:
    lines = [line.split("#")[0] for line in (REPO / "_toc.yml").read_text().splitlines()]
    return [line.split("file:")[1].strip() for line in lines if "file:" in line]


def test_every_chapter_is_in_the_toc_and_exists() -> None:
    listed = _toc_files()
    assert sorted(f"chapters/{p.stem}" for p in CHAPTERS) == sorted(f for f in listed if f.startswith("chapters/"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "no code cells"
    first = "".join(code[0]["source"])
    assert "google.colab" in first and "d2l==1.0.3 --no-deps" in first, "first cell must be the Colab bootstrap"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "re-execute top to bottom: make execute"
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, "a cell was stored with an error"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < 5 * 1024 * 1024, "keep notebooks small (animations: few frames, low dpi)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_ends_with_exercises(path: Path) -> None:
    nb = json.loads(path.read_text())
    headings = [
        line
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("#")
    ]
    assert any("Exercises" in h for h in headings[-3:]), "each chapter ends with exercises"


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """`jupyter-book build . -W -n --keep-going` succeeds: no broken references, no bad markup."""
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run(
        [jb, "build", str(REPO), "-W", "-n", "--keep-going", "--path-output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    assert (html / "index.html").is_file()
    for path in CHAPTERS:
        page = html / "chapters" / f"{path.stem}.html"
        assert page.is_file(), page
        assert "colab.research.google.com" in page.read_text(), "Colab launch button missing"
