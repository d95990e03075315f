"""The Colab bootstrap: the first code cell of every chapter, kept identical by this script.

    python tools/colab_bootstrap.py            # rewrite every chapter's bootstrap cell
    python tools/colab_bootstrap.py --check    # exit 1 if a chapter's cell differs

In Colab the cell clones the book (the URL is ``repository.url`` of ``_config.yml``, the one
place it is written), installs what Colab lacks (d2l, without its old pins: ``--no-deps``, so
Colab's torch and numpy are never touched) and puts the clone first on ``sys.path``, so that
``import lenet_utils`` works in the running kernel without a restart, and on ``PYTHONPATH``,
so that it works in the commands a chapter starts (``python -m lenet_utils ...``); then it
works inside the clone's ``chapters/`` folder so that ``../data`` and the committed results
mean what they mean locally. Elsewhere it does nothing. The cell is tagged ``remove-cell``:
the site never shows it. (Colab has no MyST-NB either: chapters glue their numbers through
:mod:`lenet_utils.glue`, which does without it.)
Changing only a cell's source and tags leaves its (empty) outputs valid: no re-execution needed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "remove-cell"

TEMPLATE = '''\
# Colab bootstrap (hidden on the site). In Colab: fetch the book, install
# what Colab lacks (d2l, without its old pins) and make the book's helper
# package importable in this kernel, with no restart. Elsewhere it does
# nothing (see the README's setup).
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    # the book's repository: repository.url in _config.yml
    BOOK_URL = "{url}"
    BOOK = os.environ.get("LENET_BOOK_DIR", "/content/lenet5-book")
    if not os.path.isdir(os.path.join(BOOK, "lenet_utils")):
        subprocess.run(
            ["git", "clone", "-q", "--depth", "1", BOOK_URL, BOOK], check=True
        )
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "d2l==1.0.3"], check=True)
    sys.path.insert(0, BOOK)
    # and for commands a chapter starts (python -m lenet_utils ...)
    paths = [BOOK, os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.chdir(os.path.join(BOOK, "chapters"))'''


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` from ``_config.yml`` (read without a YAML dependency)."""
    text = (root / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError(f"{root / '_config.yml'}: no repository.url; add it under `repository:`")
    return match.group(1).strip("\"'")


def bootstrap_source(root: Path = ROOT) -> str:
    """The bootstrap cell's source, for the repository of ``root``'s ``_config.yml``."""
    return TEMPLATE.format(url=repository_url(root))


def first_code_cell(nb: dict) -> dict:
    """The notebook's first code cell (the bootstrap)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return cell
    raise ValueError("the notebook has no code cell")


def apply(path: Path, source: str) -> bool:
    """Make ``path``'s bootstrap cell ``source`` with the ``remove-cell`` tag; True if changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = first_code_cell(nb)
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if "".join(cell["source"]) == source and TAG in tags:
        return False
    cell["source"] = source.splitlines(keepends=True)
    if TAG not in tags:
        tags.append(TAG)
    nbformat.write(nb, path)
    return True


def main(argv: list[str]) -> int:
    source = bootstrap_source()
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if "--check" in argv:
        bad = [p.name for p in chapters if "".join(first_code_cell(json.loads(p.read_text()))["source"]) != source]
        for name in bad:
            print(f"{name}: the bootstrap cell differs; run python tools/colab_bootstrap.py")
        return 1 if bad else 0
    for path in chapters:
        print(("updated " if apply(path, source) else "unchanged ") + path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
