"""Results against references: training runs side by side (chapter 4), the 1998 recipe's
error curves against the paper's numbers (chapter 5), ablations and the effect of each change
(chapter 6, rows from :func:`lenet_utils.sweep.read_results`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib import ticker as mticker

from .. import style

__all__ = [
    "ablation_points",
    "plot_ablation",
    "plot_effects",
    "plot_epoch_curves",
    "plot_paper_curves",
    "plot_runs",
]


# --------------------------------------------------------------------------------------------
# Ablation results (chapter 6: rows from lenet_utils.sweep.read_results)


def ablation_points(
    rows: Sequence[Mapping[str, object]], x: str, metric: str = "final_test_acc"
) -> dict[object, list[float]]:
    """Group the runs of a sweep by the value of hyperparameter ``x``: ``{value: [metric per run]}``.

    ``metric`` is a column (``final_test_acc``, ``final_train_loss``, ...) or ``"test_acc@E"``
    for the test accuracy after epoch ``E`` (runs shorter than ``E`` are skipped). Values are
    returned in sorted order.
    """
    out: dict[object, list[float]] = {}
    for r in rows:
        if "@" in metric:
            series, epoch = metric.split("@")
            values = r[series]
            if len(values) < int(epoch):  # type: ignore[arg-type]
                continue
            v = values[int(epoch) - 1]  # type: ignore[index]
        else:
            v = r[metric]
        out.setdefault(r[x], []).append(float(v))  # type: ignore[arg-type]
    return dict(sorted(out.items(), key=lambda kv: (isinstance(kv[0], str), kv[0])))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    import math

    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    m = sum(finite) / len(finite)
    s = (sum((v - m) ** 2 for v in finite) / (len(finite) - 1)) ** 0.5 if len(finite) > 1 else math.nan
    return m, s


def _results_text_points(fig: plt.Figure) -> float:
    """The smallest font size (points) the results figures use: readable on the site at
    ``fig``'s width, with a little to spare (7 pt up to the text column's width, more for a
    wider figure)."""
    return max(7.0, style.readable_points(fig.get_figwidth(), fig.dpi) + 0.3)


def _seed_dots(
    ax: plt.Axes,
    points: Mapping[object, list[float]],
    keys: Sequence[object],
    pos: Mapping[object, float],
    *,
    categorical: bool,
    log_x: bool,
) -> tuple[list[float], list[float], list[float]]:
    """Every run of :func:`plot_ablation` as a grey dot, spread a little sideways; returns the
    points' positions, means and standard deviations (0 for a single run)."""
    xs, means, stds = [], [], []
    for k in keys:
        vals = points.get(k, [])
        if not vals:
            continue
        p = pos[k]
        n = len(vals)
        if categorical:
            offs = [(i - (n - 1) / 2) * 0.25 / max(n - 1, 1) for i in range(n)]
            ax.scatter([p + o for o in offs], vals, s=9, color="0.55", alpha=0.7, zorder=2, linewidths=0)
        else:
            fac = [(1.0 + (i - (n - 1) / 2) * 0.03 / max(n - 1, 1)) for i in range(n)]
            span = (max(pos.values()) - min(pos.values())) or 1.0
            xx = [p * f for f in fac] if log_x else [p + (f - 1.0) * span for f in fac]
            ax.scatter(xx, vals, s=9, color="0.55", alpha=0.7, zorder=2, linewidths=0)
        m, s = _mean_std(vals)
        xs.append(p)
        means.append(m)
        stds.append(0.0 if s != s else s)
    return xs, means, stds


def plot_ablation(
    rows: Sequence[Mapping[str, object]],
    x: str,
    *,
    metric: str = "final_test_acc",
    reference: Mapping[object, float] | None = None,
    reference_label: str = "Li's report (mean of 10 runs)",
    ax: plt.Axes | None = None,
    log_x: bool = False,
    order: Sequence[object] | None = None,
    planned: Sequence[object] = (),
    label: str = "ours: mean ± std",
    color: str = "C0",
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> plt.Figure:
    """One ablation: every run as a dot, the mean ± one standard deviation per point, and the
    numbers a reference reported (red crosses), with the number of runs under each point.

    Numeric ``x`` values are placed on a (log) axis and joined; string values (``"relu"``) or
    an explicit ``order`` are placed side by side. Seeds are spread a little sideways so that
    equal values stay visible. ``planned`` values get a tick and ``n=0`` even before any run
    of them has finished (a sweep still running).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    points = ablation_points(rows, x, metric)
    keys = list(order) if order is not None else list(points)
    if order is None:
        keys += [k for k in (*(reference or {}), *planned) if k not in keys]
        if not any(isinstance(k, str) for k in keys):
            keys = sorted(keys)  # type: ignore[type-var]
    categorical = order is not None or any(isinstance(k, str) for k in keys)
    # many values on a narrow axes: tick labels and counts turn on their side
    crowded = len(keys) > 10 and ax.get_position().width * fig.get_figwidth() / len(keys) < 0.28
    pos = {k: (i if categorical else float(k)) for i, k in enumerate(keys)}  # type: ignore[arg-type]
    xs, means, stds = _seed_dots(ax, points, keys, pos, categorical=categorical, log_x=log_x)
    if xs:
        ax.errorbar(
            xs, means, yerr=stds, fmt="o" if categorical else "o-", color=color, capsize=3, ms=4, lw=1.4,
            label=label, zorder=3,
        )  # fmt: skip
    if reference:
        rx = [pos[k] for k in reference if k in pos]
        ry = [v for k, v in reference.items() if k in pos]
        ax.scatter(rx, ry, marker="x", s=40, color="C3", zorder=4, label=reference_label)
    if log_x and not categorical:
        ax.set_xscale("log", base=2)
    if categorical:
        ax.set_xticks(list(range(len(keys))), [str(k) for k in keys])
        ax.set_xlim(-0.6, len(keys) - 0.4)
    elif keys:
        ax.set_xticks([pos[k] for k in keys], [f"{k:g}" for k in keys], fontsize=pt, rotation=90 if crowded else 0)  # type: ignore[str-format]
    counts = {k: len(points.get(k, [])) for k in keys}
    level = getattr(ax, "_ablation_series", 0)  # a second series on the same axes: its counts above
    ax._ablation_series = level + 1  # type: ignore[attr-defined]
    for k in keys:
        ax.annotate(
            f"n={counts[k]}", (pos[k], 0), xycoords=("data", "axes fraction"),
            xytext=(0, 2 + (2.5 if crowded else 1.3) * pt * level), textcoords="offset points", ha="center",
            va="bottom", fontsize=pt, rotation=90 if crowded else 0,
            color=color if level else "0.35",
        )  # fmt: skip
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or metric.replace("final_", "").replace("_", " "))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=pt, loc="best")
    return fig


def plot_epoch_curves(
    rows: Sequence[Mapping[str, object]],
    *,
    metric: str = "test_acc",
    reference: Mapping[int, float] | None = None,
    reference_label: str = "Li's report",
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Figure:
    """Per-epoch curves of a sweep's runs: each run thin and grey, mean ± std as a band."""
    import math

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    series = [list(r[metric]) for r in rows]  # type: ignore[call-overload]
    for s in series:
        ax.plot(range(1, len(s) + 1), s, color="0.6", lw=0.6, alpha=0.7)
    if series:
        longest = max(len(s) for s in series)
        ms = [_mean_std([s[e] for s in series if len(s) > e]) for e in range(longest)]
        ep = list(range(1, longest + 1))
        m = [a for a, _ in ms]
        sd = [0.0 if math.isnan(b) else b for _, b in ms]
        ax.plot(ep, m, color="C0", lw=1.6, label=f"ours: mean of {len(series)} runs")
        ax.fill_between(ep, [a - b for a, b in zip(m, sd, strict=True)], [a + b for a, b in zip(m, sd, strict=True)],
                        color="C0", alpha=0.2, label="± 1 std")  # fmt: skip
    if reference:
        ax.scatter(list(reference), list(reference.values()), marker="x", s=40, color="C3", zorder=4,
                   label=reference_label)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True, steps=[2, 5, 10]))  # whole epochs
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=pt, loc="lower right")
    return fig


def plot_effects(
    effects: Mapping[str, Mapping[str, float]],
    *,
    reference_label: str = "Li's report",
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str = "change in test accuracy against the defaults (points)",
) -> plt.Figure:
    """What each change does: one row per change, its effect as a dot with an interval.

    ``effects`` maps a label (``"batch 16"``) to ``{"effect": d, "low": a, "high": b}`` and,
    optionally, ``"reference": r`` (what a report found for the same change, a red cross;
    NaN or absent for none). Values are accuracy differences (fractions) and are drawn in
    percentage points; rows are drawn top to bottom in the mapping's order. A row whose
    interval misses zero is drawn in colour, one that contains it in grey.
    """
    import math

    labels = list(effects)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(labels) + 1.2))
    else:
        fig = ax.figure
    pt = _results_text_points(fig)
    crossed = False
    for i, label in enumerate(labels):
        e = effects[label]
        y = len(labels) - 1 - i
        clear = e["low"] > 0 or e["high"] < 0
        color = ("C2" if e["effect"] > 0 else "C1") if clear else "0.5"
        ax.plot([100 * e["low"], 100 * e["high"]], [y, y], color=color, lw=2, solid_capstyle="butt")
        ax.plot([100 * e["effect"]], [y], "o", color=color, ms=5, zorder=3)
        ref = e.get("reference", math.nan)
        if ref == ref:  # not NaN
            ax.scatter([100 * ref], [y], marker="x", s=36, color="C3", zorder=4,
                       label=None if crossed else reference_label)  # fmt: skip
            crossed = True
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(labels)), labels[::-1], fontsize=max(8.0, pt))
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=max(10.0, pt + 2))
    if crossed:
        ax.legend(fontsize=pt, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------
# LeNet-5 as published (chapter 5): training curves against the paper.


def plot_paper_curves(
    logs: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    reference: Mapping[str, tuple[float, float]] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    test_label: str = "test",
    train_label: str = "train",
    xlabel: str = "pass over the 60,000 training images",
    legend: str = "best",
) -> plt.Figure:
    """Train and test error (%) per pass for each run, with the paper's numbers as crosses.

    The error axis is logarithmic with its ticks in percent (0.5%, 1%, 2%, ...); the pass axis
    has ticks at whole passes only.

    Args:
        logs: run name -> rows with ``pass``, ``train_error``, ``test_error`` (fractions).
        reference: label -> (pass, error in %) points from the paper, e.g.
            ``{"paper test 0.95%": (20, 0.95)}``.
        test_label, train_label: what the two error columns measure (e.g. ``"validation"``
            for a run whose ``test_error`` column holds held-out training images).
        xlabel: the pass axis's label.
        legend: a matplotlib legend location, ``"below"`` (under the axes, off the data) or
            ``"none"``.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 3.8))
    else:
        fig = ax.figure
    last = 1
    for i, (name, rows) in enumerate(logs.items()):
        passes = [r["pass"] for r in rows]
        last = max(last, *passes) if passes else last
        ax.plot(passes, [100 * r["test_error"] for r in rows], color=f"C{i}", lw=1.6, marker="o", ms=3,
                label=f"{name}: {test_label}")  # fmt: skip
        ax.plot(passes, [100 * r["train_error"] for r in rows], color=f"C{i}", lw=1.0, ls="--",
                label=f"{name}: {train_label}")  # fmt: skip
    for k, (label, (x, y)) in enumerate((reference or {}).items()):
        ax.scatter([x], [y], marker="x", s=60, color=f"C{3 + k}", zorder=5, label=label)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlim(0.5, last + 0.5)
    ax.set_xticks([1, *range(5, last + 1, 5)] if last >= 5 else list(range(1, last + 1)))
    ax.set_xticks(range(1, last + 1), minor=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("error")
    ax.grid(True, which="major", alpha=0.3)
    # legend and title readable on the site whatever the figure's width (8 pt up to ~8.5 in)
    points = max(8.0, style.readable_points(fig.get_figwidth()))
    if legend == "below":
        ax.legend(fontsize=points, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    elif legend != "none":
        ax.legend(fontsize=points, ncol=2, loc=legend)
    if title:
        ax.set_title(title, fontsize=max(10.0, points))
    return fig


# --------------------------------------------------------------------------------------------
# Training runs side by side (chapter 4, lenet_utils.train)


def plot_runs(
    runs: Mapping[str, object],
    metrics: Sequence[str] = ("train_loss", "test_acc"),
    *,
    references: Mapping[str, Mapping[str, float]] | None = None,
    ylims: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    width: float | None = None,
) -> plt.Figure:
    """One panel per metric, one line per run: per-epoch curves of :class:`lenet_utils.train.History`.

    Args:
        runs: ``{label: history}``; a history is anything with the metric as a list attribute
            (a ``History``) or key (a dict or DataFrame of columns).
        metrics: ``train_loss``, ``train_acc``, ``test_acc``, ``val_acc`` or an extra column.
        references: ``{metric: {label: value}}`` drawn as dotted horizontal lines (e.g. a
            seed's reported accuracy).
        ylims: ``{metric: (low, high)}``.
        width: inches per panel; by default the panels share the site's text column (6.9 in
            in all, at most 4.2 in each). The legend goes under the panels.
    """

    def column(h: object, name: str) -> list[float]:
        if isinstance(h, Mapping) or hasattr(h, "columns"):
            return [float(v) for v in h[name]]  # type: ignore[index]
        return [float(v) for v in getattr(h, name)]

    names = {"train_loss": "train loss", "train_acc": "train accuracy", "test_acc": "test accuracy",
             "val_acc": "validation accuracy"}  # fmt: skip
    width = min(4.2, 6.9 / len(metrics)) if width is None else width
    entries = len(runs) + len({label for refs in (references or {}).values() for label in refs})
    height = 2.7 + 0.2 * -(-entries // 2)  # the panels, and the legend's rows under them
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(width * len(metrics), height), squeeze=False, layout="constrained"
    )
    pt = _results_text_points(fig)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, h) in enumerate(runs.items()):
            ys = column(h, metric)
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=2.5, lw=1.3, color=f"C{i}", label=label)
        for j, (ref_label, value) in enumerate((references or {}).get(metric, {}).items()):
            ax.axhline(value, ls=":", lw=1.2, color=f"C{7 + j % 3}", label=ref_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(names.get(metric, metric))
        if ylims and metric in ylims:
            ax.set_ylim(*ylims[metric])
        ax.grid(True, alpha=0.3)
    legend: dict[str, object] = {}  # every run and reference once, in the order drawn
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=2, fontsize=max(8.0, pt))
    if title:
        fig.suptitle(title, fontsize=max(10.0, pt + 2))
    return fig
