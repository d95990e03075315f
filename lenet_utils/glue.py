"""Numbers for the prose: MyST-NB's ``glue``, and a stand-in where MyST-NB is not installed.

Chapters store the values their text quotes with MyST-NB's :func:`myst_nb.glue`; the site
build pastes them into the prose (``{glue:text}`name```). That matters only where the site is
built. Colab does not ship MyST-NB, and installing it there would pull in Sphinx and its
pins, so in a kernel without it :func:`glue` only shows the value when asked to
(``display=True``) and otherwise does nothing: the chapter runs, and the prose the reader sees
on the site keeps the numbers stored when it was executed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, variable: Any, display: bool = True) -> None:
    """:func:`myst_nb.glue` (store ``variable`` under ``name`` for the prose, and show it if
    ``display``); without MyST-NB, just show it if ``display``."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # e.g. Colab
        if display:
            from IPython.display import display as show

            show(variable)
        return
    myst_glue(name, variable, display)
