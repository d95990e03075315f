"""How the book's figures leave the kernel: PNGs that say how small their smallest text is.

A figure on the site is shown at most as wide as the text column; a wider PNG is scaled down,
and its text with it. To keep every label readable (at least :data:`MIN_TEXT_PX` CSS pixels
as displayed), each figure a chapter shows is rendered by :func:`png`, which records the
smallest text it actually drew, in pixels of the saved image, in the PNG's metadata under
:data:`METADATA_KEY`. The site's browser test reads it back and multiplies it by the scale the
browser displays the image at.

:func:`use` makes IPython display every matplotlib figure this way; importing
:mod:`lenet_utils.viz` calls it. Outside IPython it does nothing.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure

__all__ = [
    "COLUMN_INCHES",
    "COLUMN_PX",
    "METADATA_KEY",
    "MIN_TEXT_PX",
    "png",
    "readable_points",
    "scaled_points",
    "shown_smallest_text",
    "smallest_text",
    "use",
]

#: The smallest text a figure may show on the site, in CSS pixels as displayed.
MIN_TEXT_PX = 9.0

#: Width of the site's text column at a 1280 px window, in CSS pixels: a wider figure is
#: scaled down to it (measured in Chromium; tests/test_site.py measures every figure).
COLUMN_PX = 688

#: The widest a figure is drawn to be shown unscaled, in inches at 100 dpi: the column less the
#: 0.1 in padding on each side that the notebook's tight crop adds.
COLUMN_INCHES = COLUMN_PX / 100 - 0.2

#: The PNG text chunk holding ``"<pixels> <text>"`` for the smallest text drawn.
METADATA_KEY = "lenet_utils:smallest-text"


def smallest_text(fig: Figure, dpi: float | None = None) -> tuple[float, str]:
    """The smallest text ``fig`` draws, as (size in pixels of an image saved at ``dpi``, text).

    Only text that is really drawn counts (hidden axes, empty labels and tick labels that are
    switched off do not). Returns ``(inf, "")`` for a figure without text.
    """
    dpi = fig.dpi if dpi is None else dpi
    width, height = fig.bbox.size
    renderer = RendererAgg(max(1, int(width)), max(1, int(height)), fig.dpi)
    drawn: list[tuple[float, str]] = []
    draw_text = renderer.draw_text  # a renderer of its own: the figure's canvas is untouched

    def record(gc: Any, x: float, y: float, s: str, prop: Any, *args: Any, **kwargs: Any) -> Any:
        if s.strip():
            drawn.append((prop.get_size_in_points(), s))
        return draw_text(gc, x, y, s, prop, *args, **kwargs)

    renderer.draw_text = record  # type: ignore[method-assign]
    fig.draw(renderer)
    if not drawn:
        return math.inf, ""
    points, text = min(drawn, key=lambda d: d[0])
    return points * dpi / 72, text


def scaled_points(points: float, width_in: float, dpi: float = 100.0) -> float:
    """``points`` in a figure up to the column's width; in a figure ``width_in`` inches wide,
    which the site scales down, as much more as keeps the text as large on the screen."""
    return points * max(1.0, width_in * dpi / COLUMN_PX)


def readable_points(width_in: float, dpi: float = 100.0) -> float:
    """The smallest font size, in points, that shows as :data:`MIN_TEXT_PX` on the site in a
    figure ``width_in`` inches wide at ``dpi`` (6.5 pt up to the column's width, more beyond)."""
    return scaled_points(MIN_TEXT_PX * 72 / dpi, width_in, dpi)


def shown_smallest_text(fig: Figure) -> tuple[float, str]:
    """The smallest text of ``fig`` as the site shows it: (CSS pixels, text), after the tight
    crop the notebook applies and the scaling down to :data:`COLUMN_PX`."""
    pixels, text = smallest_text(fig)
    width, _ = fig.bbox.size
    renderer = RendererAgg(max(1, int(width)), max(1, int(fig.bbox.size[1])), fig.dpi)
    pad = mpl.rcParams["savefig.pad_inches"]
    shown = (fig.get_tightbbox(renderer).width + 2 * pad) * fig.dpi
    return pixels * min(1.0, COLUMN_PX / shown), text


def png(fig: Figure) -> bytes | None:
    """``fig`` as the notebook shows it (PNG, tight box), with its smallest text in the metadata.

    Returns None for a figure with nothing on it, as matplotlib's inline backend does.
    """
    if not fig.axes and not fig.lines and not fig.texts and not fig.images:
        return None
    pixels, text = smallest_text(fig)
    note = f"{pixels:.2f} {' '.join(text.split())[:60]}" if math.isfinite(pixels) else "inf"
    buf = io.BytesIO()
    fig.canvas.print_figure(
        buf,
        format="png",
        dpi=fig.dpi,
        bbox_inches="tight",
        facecolor=fig.get_facecolor(),
        edgecolor=fig.get_edgecolor(),
        metadata={METADATA_KEY: note},
    )
    return buf.getvalue()


def use() -> None:
    """Show matplotlib figures in the running IPython kernel through :func:`png`.

    Replaces whatever format was chosen before (d2l's plots switch the inline backend to SVG).
    Does nothing outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is always there with Jupyter
        return
    shell = get_ipython()
    if shell is None:
        return
    # Load the backend now: the inline backend registers its own figure formatter when it is
    # first loaded (usually at the first figure), which would replace this one.
    import matplotlib.pyplot as plt

    plt.switch_backend(mpl.get_backend())
    formatters = shell.display_formatter.formatters
    for mime in ("image/svg+xml", "application/pdf", "image/jpeg"):
        formatters[mime].pop(Figure, None)
    formatters["image/png"].for_type(Figure, png)
