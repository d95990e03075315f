"""Show the package's own code on the page: the chapters' one source of truth.

A chapter that explains a layer or an algorithm shows the code that the book actually runs,
not a copy that could drift from it: :func:`show_source` reads the object's source with
:mod:`inspect` and displays it as a highlighted Python block. The display is Markdown (a fenced
``python`` block), which Jupyter, Colab and the Jupyter Book site all render with syntax
highlighting; its plain-text form is the code itself.

>>> from lenet_utils.layers import ScaledTanh
>>> "class ScaledTanh" in source_text(ScaledTanh)
True
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

__all__ = ["show_source", "source_text"]


def source_text(obj: Any, *, docstring: bool = True) -> str:
    """The source code of ``obj`` (a class, function or method), dedented.

    Args:
        obj: anything :func:`inspect.getsource` accepts.
        docstring: keep the docstring; ``False`` drops the first statement of the body when it
            is a string (the reader has the prose around it), and leaves everything else.

    Raises:
        TypeError: ``obj`` has no Python source (a builtin, a C extension, an instance).
    """
    try:
        code = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise TypeError(
            f"show_source: no Python source for {obj!r} ({err}); pass a class, function or method"
        ) from None
    return code if docstring else _drop_docstring(code)


def _drop_docstring(code: str) -> str:
    """``code`` without the docstring of its outermost definition."""
    import ast

    tree = ast.parse(code)
    node = tree.body[0]
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr) or not isinstance(body[0].value, ast.Constant):
        return code
    if not isinstance(body[0].value.value, str):
        return code
    lines = code.splitlines(keepends=True)
    first, last = body[0].lineno - 1, body[0].end_lineno or body[0].lineno
    rest = lines[:first] + lines[last:]
    if len(body) == 1:  # a definition that is only a docstring keeps a body
        rest.insert(first, " " * body[0].col_offset + "...\n")
    elif first < len(rest) and not rest[first].strip():  # the blank line after the docstring
        del rest[first]
    return "".join(rest)


def show_source(*objs: Any, docstring: bool = True) -> Any:
    """Display the source of each of ``objs`` as one highlighted Python block.

    Returns an :class:`IPython.display.Markdown` object (the last expression of a cell is
    displayed); outside IPython, the plain source text.
    """
    if not objs:
        raise TypeError("show_source: pass at least one class, function or method")
    code = "\n\n".join(source_text(obj, docstring=docstring).rstrip() for obj in objs)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython ships with every notebook environment
        return code
    return _SourceBlock(code, Markdown)


class _SourceBlock:
    """A Markdown fenced block whose plain-text form is the bare code (readable in nbval diffs)."""

    def __init__(self, code: str, markdown: type) -> None:
        self.code = code
        fence = "````" if "```" in code else "```"
        self._markdown = markdown(f"{fence}python\n{code}\n{fence}")

    def _repr_markdown_(self) -> str:
        return self._markdown.data

    def __repr__(self) -> str:
        return self.code
