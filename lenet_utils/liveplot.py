"""A loss/accuracy plot that redraws itself in place while a network trains in Jupyter.

Plotting stays out of the trainer: :class:`LivePlotCallback` is attached to the loop by
``fit(..., plot=True)``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .engine import Callback, Task

__all__ = ["LivePlot", "LivePlotCallback"]


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class LivePlot:
    """Loss and accuracy against epochs, redrawn in place in Jupyter.

    The figure is shown once with a ``display_id`` and then *updated* (``update_display_data``),
    so the executed notebook stores a single output — the final static figure — instead of one
    image per update (d2l's Animator clears and redraws the cell instead). Outside Jupyter it
    only draws (call :meth:`finish` to get the figure).
    """

    def __init__(self, epochs: int, title: str | None = None, live: bool | None = None) -> None:
        import matplotlib.pyplot as plt

        self.fig, self.ax = plt.subplots(figsize=(4.5, 3.0))
        self.epochs, self.title = epochs, title
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.live = _in_notebook() if live is None else live
        self.handle = None
        plt.close(self.fig)  # keep the inline backend from showing it again at cell end

    def add(self, x: float, values: dict[str, float]) -> None:
        for name, v in values.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            xs, ys = self.series.setdefault(name, ([], []))
            xs.append(x)
            ys.append(v)
        self._draw()
        if self.live:
            from IPython.display import display

            if self.handle is None:
                self.handle = display(self.fig, display_id=True)
            else:
                self.handle.update(self.fig)

    def _draw(self) -> None:
        ax = self.ax
        ax.clear()
        styles = {"train loss": "-", "train acc": "--", "val acc": "-.", "test acc": ":"}
        for name, (xs, ys) in self.series.items():
            ax.plot(xs, ys, styles.get(name, "-"), label=name, marker="o" if len(xs) < 3 else None, ms=3)
        ax.set_xlabel("epoch")
        ax.set_xlim(0, max(1, self.epochs))
        ax.grid(True, alpha=0.3)
        if self.series:
            ax.legend(fontsize=8)
        if self.title:
            ax.set_title(self.title, fontsize=9)
        self.fig.tight_layout()

    def finish(self) -> Any:
        """The final figure (already shown in Jupyter)."""
        return self.fig


class LivePlotCallback(Callback):
    """Adds each epoch's loss and accuracies to a :class:`LivePlot`."""

    NAMES: ClassVar[dict[str, str]] = {
        "train_loss": "train loss", "train_acc": "train acc", "val_acc": "val acc", "test_acc": "test acc"
    }  # fmt: skip

    def __init__(self, plot: LivePlot) -> None:
        self.plot = plot

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        self.plot.add(epoch, {label: float(metrics.get(k, math.nan)) for k, label in self.NAMES.items()})
        return None
