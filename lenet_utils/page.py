"""Printed text that fits the page: lines kept to the site's code column.

The site shows about 83 characters of a printed line (13 px monospace in a 688 px column, see
``_static/code-width.css``); a longer line makes its output box scroll sideways. Chapters
print long messages (a command's report, an error, a dictionary) through :func:`show` or
:func:`wrap`, which break every line longer than :data:`WIDTH` at spaces, indenting the
continuation, and leave shorter lines (tables, aligned columns) exactly as they are.

>>> print(wrap("short line\\n" + "word " * 20, width=30))
short line
word word word word word word
    word word word word word
    word word word word word
    word word word word
"""

from __future__ import annotations

import textwrap

__all__ = ["WIDTH", "show", "wrap"]

#: The longest printed line a chapter shows.
WIDTH = 80


def wrap(text: str, width: int = WIDTH, indent: str = "    ") -> str:
    """``text`` with every line longer than ``width`` broken at spaces (a word longer than a
    line is cut); continuation lines get the line's own indentation plus ``indent``."""
    if width <= len(indent) + 10:
        raise ValueError(f"width {width} leaves no room for text after the indent {indent!r}")
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=lead + indent,
            break_on_hyphens=False,
        )
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def show(*objects: object, sep: str = " ") -> None:
    """``print(*objects, sep=sep)``, its lines fitted to :data:`WIDTH` by :func:`wrap`."""
    print(wrap(sep.join(str(o) for o in objects)))
