"""lenet_utils.page: printed lines fitted to the site's code column."""

from __future__ import annotations

import pytest

from lenet_utils import page


def test_long_lines_are_broken_at_spaces_short_lines_kept() -> None:
    table = " batch   fit loop\n     2       1.79"
    message = "error: another sweep (pid 27642) is writing to demo.csv: let it finish, or stop it"
    out = page.wrap(f"{table}\n{message}\n")
    lines = out.splitlines()
    assert lines[:2] == table.splitlines()  # aligned columns untouched
    assert all(len(line) <= page.WIDTH for line in lines)
    assert " ".join(line.strip() for line in lines[2:]) == message  # no word lost or split
    assert lines[3].startswith("    ")  # the continuation is indented
    assert out.endswith("\n")


def test_an_indented_line_keeps_its_indent_and_a_long_word_is_cut() -> None:
    out = page.wrap("  key: " + "x" * 100, width=40).splitlines()
    assert out[0].startswith("  key:")
    assert all(line.startswith("      ") for line in out[1:])
    assert all(len(line) <= 40 for line in out)
    assert "".join(out).replace(" ", "") == "key:" + "x" * 100


def test_show_prints_fitted(capsys: pytest.CaptureFixture[str]) -> None:
    page.show("sweep.DEFAULTS:", {f"key{i}": i for i in range(20)})
    printed = capsys.readouterr().out
    assert all(len(line) <= page.WIDTH for line in printed.splitlines())
    assert printed.startswith("sweep.DEFAULTS: {'key0': 0,")


def test_a_width_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="width 12"):
        page.wrap("text", width=12)
