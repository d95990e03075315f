"""The package as pip installs it: a wheel built from the sources holds every subpackage.

Editable installs and Colab's ``sys.path`` see the source tree, so a subpackage left out of the
packaging (``lenet_utils.fig9`` once was) only fails where the book is installed as a wheel,
e.g. ``pip install "lenet_utils[cluster] @ ..."`` on a cluster's nodes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_holds_every_subpackage_and_resource(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "lenet_utils", src / "lenet_utils", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", str(tmp_path)],
        cwd=src, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("lenet_utils-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "lenet_utils").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and (p.suffix == ".py" or p.parent.name == "resources")
    }
    assert on_disk, "no package files found"
    assert on_disk <= names, f"missing from the wheel: {sorted(on_disk - names)}"
