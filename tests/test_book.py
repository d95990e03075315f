"""The book as a whole: notebook conventions, and the site build with warnings as errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Every notebook of the book: the numbered chapters and the appendix chapters (e.g. appendix_experiments).
CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))


def _toc_files() -> list[str]:
    lines = [line.split("#")[0] for line in (REPO / "_toc.yml").read_text().splitlines()]
    return [line.split("file:")[1].strip() for line in lines if "file:" in line]


def test_every_chapter_is_in_the_toc_and_exists() -> None:
    listed = [f for f in _toc_files() if f.startswith("chapters/")]
    assert len(listed) == len(set(listed)), "a page is listed twice in _toc.yml"
    missing = [f for f in listed if not any((REPO / f"{f}{ext}").is_file() for ext in (".ipynb", ".md"))]
    assert not missing, f"listed in _toc.yml but not in chapters/: {missing}"
    notebooks = sorted(f for f in listed if (REPO / f"{f}.ipynb").is_file())
    assert sorted(f"chapters/{p.stem}" for p in CHAPTERS) == notebooks, "every notebook must be listed in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "no code cells"
    first = "".join(code[0]["source"])
    assert "google.colab" in first, "first cell must be the Colab bootstrap (tests/test_colab.py checks its text)"
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
def test_site_builds_with_warnings_as_errors(built_site) -> None:
    """`jupyter-book build . -W -n --keep-going` succeeds: no broken references, no bad markup."""
    proc, html = built_site
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (html / "index.html").is_file()
    for path in CHAPTERS:
        page = html / "chapters" / f"{path.stem}.html"
        assert page.is_file(), page
        assert "colab.research.google.com" in page.read_text(), "Colab launch button missing"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_widget_views_are_not_on_the_site(path: Path) -> None:
    """A widget view needs a kernel: on the site it would be a dead control, so every cell that
    displays one carries `remove-output` (its static face, in the next cell, is what the site shows)."""
    nb = json.loads(path.read_text())
    bad = [
        "".join(c["source"])[:60]
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.get("outputs", []))
        and not {"remove-output", "remove-cell"} & set(c["metadata"].get("tags", []))
    ]
    assert not bad, f"cells that show a widget view without the remove-output tag: {bad}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_shown_source_fits_80_columns(path: Path) -> None:
    """Every code listing a cell shows (``show_source``'s Markdown blocks, as stored) keeps to 80
    columns, the width the site's code column holds without a scroll bar (the slow site test
    measures the rendered pages; this catches a long line without building them)."""
    nb = json.loads(path.read_text())
    wide = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            block = "".join(out.get("data", {}).get("text/markdown", ""))
            if block.lstrip("`").startswith("python\n"):
                wide += [f"cell {i}: {line}" for line in block.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide[:10])
