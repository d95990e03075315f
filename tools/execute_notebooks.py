"""Re-execute the book's notebooks in place, each in a fresh kernel, storing widget state.

    python tools/execute_notebooks.py [chapters/NN_name.ipynb ...]   # default: every chapter

Each notebook runs with its own folder as working directory (as nbval and Jupyter do), with
this interpreter's kernel, so outputs, execution counts 1..n and widget state are exactly what
`pytest --nbval chapters/` will compare against. A notebook that raises is not written back.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 1800) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    client.execute()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    tmp = path.with_suffix(".ipynb.part")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        print(f"executing {path} ...", flush=True)
        seconds = execute(path.resolve())
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
