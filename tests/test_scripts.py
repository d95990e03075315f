"""lenet_utils.scripts: the committed shell scripts read as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from lenet_utils.scripts import expand, shell_lines, suite_names

REPO = Path(__file__).resolve().parents[1]


def test_suite_names_reads_run_all_in_its_order() -> None:
    names = suite_names(REPO / "data/sweeps/run_all.sh")
    assert names[0] == "lr" and "scaled_relu" in names and len(names) == len(set(names))
    assert all((REPO / "data/sweeps" / f"{n}.json").is_file() for n in names)


def test_suite_names_without_a_loop_names_the_script(tmp_path: Path) -> None:
    script = tmp_path / "other.sh"
    script.write_text("echo hello\n")
    with pytest.raises(ValueError, match=r"other\.sh: no `for name in"):
        suite_names(script)


def test_shell_lines_joins_continuations_and_drops_comments(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\n  # note\n\n$PY -m a \\\n    --b  c\n")
    assert shell_lines(script) == ["$PY -m a --b c"]


def test_expand_fills_every_spelling_and_leaves_longer_names() -> None:
    line = '$PY x "$name" ${name} $names'
    assert expand(line, {"PY": "python", "name": "lr"}) == "python x lr lr $names"
