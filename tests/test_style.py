"""lenet_utils.style: each figure's smallest text, measured as drawn and stored in its PNG."""

from __future__ import annotations

import io
import re

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from lenet_utils import style, widgets


def _figure(label_size: float, *, hidden_size: float | None = None) -> plt.Figure:
    fig, (ax, off) = plt.subplots(1, 2, figsize=(4, 2), dpi=100)
    ax.plot([0, 1], [0, 1])
    ax.set_title("title", fontsize=12)
    ax.tick_params(labelsize=label_size)
    if hidden_size is not None:  # text on an axis that is switched off is never drawn
        off.set_xlabel("hidden", fontsize=hidden_size)
    off.axis("off")
    return fig


def test_smallest_text_is_the_smallest_drawn_in_pixels() -> None:
    fig = _figure(7.2, hidden_size=3)
    pixels, text = style.smallest_text(fig)
    plt.close(fig)
    assert pixels == pytest.approx(7.2 * 100 / 72)
    assert re.fullmatch(r"[−\d.]+", text), text  # a tick label, not the hidden 3 pt label
    fig = _figure(7.2)
    assert style.smallest_text(fig, dpi=200)[0] == pytest.approx(7.2 * 200 / 72)
    plt.close(fig)


def test_a_figure_without_text_has_no_smallest_text() -> None:
    fig, ax = plt.subplots()
    ax.axis("off")
    assert style.smallest_text(fig) == (float("inf"), "")
    plt.close(fig)


def test_png_records_the_smallest_text_in_its_metadata() -> None:
    fig = _figure(9)
    data = style.png(fig)
    plt.close(fig)
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        pixels, _, text = image.info[style.METADATA_KEY].partition(" ")
    assert float(pixels) == pytest.approx(12.5)
    assert text
    assert style.png(plt.figure()) is None  # nothing drawn: nothing shown, as matplotlib does
    plt.close("all")


def test_an_animation_says_the_smallest_text_of_its_frames() -> None:
    def draw(fig: plt.Figure | None, t: int) -> plt.Figure:
        fig = fig or plt.figure(figsize=(2, 1))
        fig.clear()
        fig.text(0.5, 0.5, f"frame {t}", fontsize=10 - 2 * t)
        return fig

    html = widgets.animate(draw, 3, dpi=72).data
    found = re.search(r'<div class="lenet-animation" data-smallest-text="([\d.]+) ([^"]*)">', html)
    assert found, html[:200]
    assert float(found[1]) == pytest.approx(6.0)  # frame 2: 6 pt at 72 dpi
    assert found[2] == "frame 2"


def test_font_sizes_for_a_figure_grow_past_the_column_width() -> None:
    column_in = style.COLUMN_PX / 100
    assert style.readable_points(4.0) == pytest.approx(6.48)  # 9 px at 100 dpi
    assert style.readable_points(2 * column_in) == pytest.approx(2 * 6.48)
    assert style.scaled_points(7.0, column_in / 2) == 7.0
    assert style.scaled_points(7.0, 3 * column_in) == pytest.approx(21.0)


def test_shown_smallest_text_scales_a_figure_wider_than_the_column() -> None:
    narrow, wide = _figure(9), _figure(9)
    wide.set_size_inches(2 * style.COLUMN_PX / 100, 2)
    shown_narrow, _ = style.shown_smallest_text(narrow)
    shown_wide, _ = style.shown_smallest_text(wide)
    plt.close("all")
    assert shown_narrow == pytest.approx(12.5)  # 4 in wide: shown unscaled
    # 2 columns of canvas, cropped to its drawn part: shown at well under full size
    assert 12.5 * 0.4 < shown_wide < 12.5 * 0.7
