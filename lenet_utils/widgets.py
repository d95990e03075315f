"""The book's interactive explorers, each with two faces that call the same drawing function.

* **live** — ipywidgets controls in Jupyter or Colab (``*_explorer`` functions). ipywidgets
  is imported inside them, so importing this module needs only matplotlib.
* **static** — a matplotlib animation embedded as JavaScript (``*_animation`` functions),
  which moves in the built HTML page with no kernel behind it.

The drawing functions live in :mod:`lenet_utils.viz`; each takes ``fig=`` so that an
animation redraws one figure frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import torch

from . import handconv, style, viz

if TYPE_CHECKING:  # pragma: no cover
    from IPython.display import HTML

__all__ = [
    "SHAPE_CASES",
    "DrawPad",
    "animate",
    "classify_digit",
    "conv_animation",
    "conv_explorer",
    "digit_explorer",
    "plot_preprocessing",
    "self_contained",
    "shape_animation",
    "shape_explorer",
    "uploaded_files",
]

#: (n, kernel, padding, stride) cases the static shape explorer cycles through: the
#: "valid" and "same" cases, strides that do and do not divide evenly, a stride larger than
#: the kernel, and LeNet's C1 in d2l's form (28x28 padded by 2) and in the paper's (32x32).
SHAPE_CASES: tuple[tuple[int, int, int, int], ...] = (
    (7, 3, 0, 1),
    (7, 3, 1, 1),
    (7, 3, 1, 2),
    (8, 3, 0, 2),
    (7, 2, 0, 3),
    (7, 5, 2, 1),
    (28, 5, 2, 1),
    (32, 5, 0, 1),
)


def animate(
    draw: Callable[[plt.Figure | None, int], plt.Figure],
    frames: int,
    *,
    dpi: int = 100,
    interval: int = 900,
) -> HTML:
    """Turn a drawing function into a JavaScript animation (the static face of an explorer).

    ``draw(fig, t)`` draws frame ``t`` into ``fig`` (a new figure when ``fig`` is None) and
    returns it. The figure is closed before the HTML is made, so the notebook shows only
    the animation. Keep ``frames`` and ``dpi`` small: every frame is stored as a PNG. The
    animation is wrapped in a ``div.lenet-animation`` whose ``data-smallest-text`` holds the
    smallest text of any frame, in pixels of the frames (see :mod:`lenet_utils.style`).
    """
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    if frames < 1:
        raise ValueError(f"an animation needs at least one frame, got {frames}")
    fig = draw(None, 0)
    smallest: list[tuple[float, str]] = []

    def frame(t: int) -> None:
        draw(fig, t)
        smallest.append(style.smallest_text(fig))

    anim = FuncAnimation(fig, frame, frames=frames, interval=interval, repeat=True)
    plt.close(fig)
    fig.set_dpi(dpi)  # after closing, which resets a figure's dpi
    html = self_contained(anim.to_jshtml(default_mode="loop"))
    pixels, text = min(smallest, default=(float("inf"), ""))
    note = escape(f"{pixels:.2f} {' '.join(text.split())[:60]}", quote=True)
    return HTML(f'<div class="lenet-animation" data-smallest-text="{note}">\n{html}\n</div>')


#: Button glyphs of matplotlib's JavaScript animation, as text: its HTML links Font Awesome 4
#: from a CDN, which an offline reader (or a site that loads nothing from outside) never gets.
_BUTTON_GLYPHS = {
    "minus": "\\2212",
    "fast-backward": "\\23EE",
    "step-backward": "\\23F4\\2009\\2223",
    "pause": "\\23F8",
    "play": "\\25B6",
    "step-forward": "\\2223\\2009\\23F5",
    "fast-forward": "\\23ED",
    "plus": "\\FF0B",
}


def self_contained(html: str) -> str:
    """matplotlib's animation HTML without its one external resource (Font Awesome's CSS).

    The ``<link>`` to the CDN is replaced by a ``<style>`` that draws each control button's icon
    as a Unicode glyph, so the animation's controls show in Jupyter, Colab, the built site and an
    offline copy alike.
    """
    import re

    rules = "".join(
        f'.anim-buttons .fa-{name}::before {{ content: "{glyph}" !important; }}\n'
        for name, glyph in _BUTTON_GLYPHS.items()
    )
    style = (
        "<style>\n.anim-buttons i.fa { font-family: inherit !important; font-style: normal;"
        " font-weight: normal; }\n" + rules + "</style>"
    )
    html, n = re.subn(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', lambda _: style, html)
    if n != 1:
        raise RuntimeError("matplotlib's animation HTML changed: expected one Font Awesome <link> to replace")
    return html


# --------------------------------------------------------------------------------------------
# Explorer 1: a kernel sliding over an image, the output filling in


def conv_animation(
    X: torch.Tensor, K: torch.Tensor, *, padding: int = 0, stride: int = 1, dpi: int = 100, interval: int = 900
) -> HTML:
    """Static face of the sliding-kernel explorer: one frame per window, then the result."""
    n = len(handconv.conv_windows(tuple(X.shape), tuple(K.shape), padding, stride))  # type: ignore[arg-type]
    return animate(
        lambda fig, t: viz.plot_conv_step(X, K, t, padding=padding, stride=stride, fig=fig),
        n + 1,
        dpi=dpi,
        interval=interval,
    )


def conv_explorer(X: torch.Tensor, K: torch.Tensor, *, max_padding: int = 2, max_stride: int = 3) -> Any:
    """Live face of the sliding-kernel explorer: step, padding and stride controls.

    The step slider runs over the window positions (its range follows padding and stride);
    the last value shows the finished output. ▶ plays the steps.
    """
    import ipywidgets as w

    def n_windows(p: int, s: int) -> int:
        return len(handconv.conv_windows(tuple(X.shape), tuple(K.shape), p, s))  # type: ignore[arg-type]

    style = {"description_width": "initial"}
    step = w.IntSlider(0, 0, n_windows(0, 1), description="window", style=style)
    padding = w.IntSlider(0, 0, max_padding, description="padding", style=style)
    stride = w.IntSlider(1, 1, max_stride, description="stride", style=style)
    play = w.Play(value=0, min=0, max=step.max, interval=900, description="play")
    w.jslink((play, "value"), (step, "value"))

    def on_geometry(_: object) -> None:
        step.max = play.max = n_windows(padding.value, stride.value)
        step.value = min(step.value, step.max)

    padding.observe(on_geometry, names="value")
    stride.observe(on_geometry, names="value")

    def draw(step: int, padding: int, stride: int) -> None:
        viz.plot_conv_step(X, K, step, padding=padding, stride=stride)
        plt.show()

    out = w.interactive_output(draw, {"step": step, "padding": padding, "stride": stride})
    return w.VBox([w.HBox([play, step]), w.HBox([padding, stride]), out])


# --------------------------------------------------------------------------------------------
# Explorer 2: kernel size, padding and stride set the output shape


def shape_animation(
    cases: Sequence[tuple[int, int, int, int]] = SHAPE_CASES, *, dpi: int = 100, interval: int = 1800
) -> HTML:
    """Static face of the output-shape explorer: one frame per ``(n, k, padding, stride)`` case."""
    cases = list(cases)
    return animate(
        lambda fig, t: viz.plot_conv_geometry(*cases[t], fig=fig),
        len(cases),
        dpi=dpi,
        interval=interval,
    )


def shape_explorer(n: int = 7, k: int = 3, padding: int = 0, stride: int = 1, *, max_n: int = 32) -> Any:
    """Live face of the output-shape explorer: sliders for n, kernel, padding and stride."""
    import ipywidgets as w

    style = {"description_width": "initial"}
    controls = {
        "n": w.IntSlider(n, 3, max_n, description="input n", style=style),
        "k": w.IntSlider(k, 1, 7, description="kernel k", style=style),
        "padding": w.IntSlider(padding, 0, 3, description="padding p", style=style),
        "stride": w.IntSlider(stride, 1, 4, description="stride s", style=style),
    }

    def draw(n: int, k: int, padding: int, stride: int) -> None:
        if k > n + 2 * padding:
            print(f"kernel {k} does not fit in the padded input {n} + 2*{padding} = {n + 2 * padding}")
            return
        viz.plot_conv_geometry(n, k, padding, stride)
        plt.show()

    out = w.interactive_output(draw, controls)
    c = list(controls.values())
    return w.VBox([w.HBox(c[:2]), w.HBox(c[2:]), out])


# --------------------------------------------------------------------------------------------
# Explorer 3: what a trained network looks at (chapter "What the network learned")

__all__ += ["explanation_animation", "explanation_explorer"]


def _explain_image(
    model: torch.nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    layer: tuple[str, torch.nn.Module],
    target: str,
    baseline: float,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, int]:
    """Scores of one image ``(1, 1, H, W)`` and its maps for the class ``target`` names
    (``"predicted"``, ``"true:<c>"`` or ``"second"``): ``(maps, scores, class)``."""
    from . import explain

    with torch.no_grad():
        scores = model(x)[0]  # (classes,): larger = more evidence
    first, second = scores.topk(2).indices.tolist()
    c = second if target == "second" else (int(target.split(":")[1]) if target.startswith("true:") else first)
    maps = {}
    for m in methods:
        name = f"grad_cam_{layer[0]}" if m == "grad_cam" else m
        maps[name] = explain.attribute(model, x, c, m, layer=layer[1], baseline=baseline)[0]  # (H, W)
    return maps, scores, c


def explanation_animation(
    model: torch.nn.Module,
    images: torch.Tensor,
    truths: Sequence[int],
    *,
    class_names: Sequence[str],
    layer: tuple[str, torch.nn.Module],
    baseline: float = 0.0,
    methods: Sequence[str] | None = None,
    score_name: str = "score",
    dpi: int = 100,
    interval: int = 2200,
) -> HTML:
    """Static face of the explanation explorer: one frame per image, every method, predicted class.

    ``model`` returns scores (:class:`lenet_utils.explain.Scores`); ``images``: ``(N, 1, H, W)``
    with true classes ``truths``; ``layer``: ``(name, module)`` for Grad-CAM.
    """
    from . import explain, viz_explain

    methods = list(methods or explain.METHODS)

    def draw(fig: plt.Figure | None, t: int) -> plt.Figure:
        maps, scores, c = _explain_image(model, images[t : t + 1], methods, layer, "predicted", baseline)
        return viz_explain.plot_explanation(images[t], maps, scores, labels=class_names, true=int(truths[t]),
                                            target=c, score_name=score_name, fig=fig)  # fmt: skip

    return animate(draw, len(images), dpi=dpi, interval=interval)


def explanation_explorer(
    model: torch.nn.Module,
    images: torch.Tensor,
    truths: Sequence[int],
    *,
    class_names: Sequence[str],
    layers: dict[str, torch.nn.Module],
    baseline: float = 0.0,
    score_name: str = "score",
) -> Any:
    """Live face of the explanation explorer: pick an image, a method, a Grad-CAM layer and the
    class to explain (predicted, true or second choice); see the prediction, the map and the scores.
    """
    import ipywidgets as w

    from . import explain, viz_explain

    style = {"description_width": "initial"}
    index = w.IntSlider(value=0, min=0, max=len(images) - 1, description="image", style=style)
    method = w.Dropdown(options=list(explain.METHODS), value="grad_cam", description="method", style=style)
    layer = w.Dropdown(options=list(layers), value=next(iter(layers)), description="Grad-CAM layer", style=style)
    target = w.Dropdown(options=["predicted", "true", "second"], value="predicted", description="explain",
                        style=style)  # fmt: skip

    def draw(index: int, method: str, layer: str, target: str) -> None:
        x = images[index : index + 1]
        which = f"true:{int(truths[index])}" if target == "true" else target
        maps, scores, c = _explain_image(model, x, [method], (layer, layers[layer]), which, baseline)
        viz_explain.plot_explanation(images[index], maps, scores, labels=class_names, true=int(truths[index]),
                                     target=c, score_name=score_name)  # fmt: skip
        plt.show()

    out = w.interactive_output(draw, {"index": index, "method": method, "layer": layer, "target": target})
    return w.VBox([w.HBox([index, target]), w.HBox([method, layer]), out])


# --------------------------------------------------------------------------------------------
# Explorer 3: a digit of your own -- drawn or uploaded -- made MNIST-style, step by step, and
# classified by each network (chapter 9). The static face is the same gallery on example files.


def plot_preprocessing(
    rows: Sequence[tuple[str, Any]], *, fig: plt.Figure | None = None, scale: float = 1.15
) -> plt.Figure:
    """A gallery of :func:`lenet_utils.preprocess.mnist_style`'s steps: one row per image.

    ``rows`` holds ``(title, result)`` pairs, each result made with ``keep_images=True``. Every
    step's image is drawn as stored, 0 black (so the inversion of dark ink on light paper shows);
    its name is above it and what it did below it; a step that changed nothing has a grey name.
    ``scale``: inches per step, less if the steps would not fit the site's text column.
    """
    if not rows:
        raise ValueError("plot_preprocessing needs at least one (title, result) pair")
    ncols = max(len(r.steps) for _, r in rows)
    scale = min(scale, _GALLERY_WIDTH / ncols)  # as wide as the site's column at most: text stays readable
    size = max(_NOTE_POINTS, style.readable_points(ncols * scale))
    chars = max(10, int(scale * 72 / (0.58 * size)))  # the note's characters a line holds under its image
    notes = [[_note(k, step) for k, step in enumerate(r.steps)] for _, r in rows]
    lines = max(_wrap(n, chars).count("\n") + 1 for row in notes for n in row)
    figsize = (ncols * scale, len(rows) * (scale * 1.2 + lines * size * 1.25 / 72 + 0.25))
    if fig is None:
        fig = plt.figure(figsize=figsize)
    else:
        fig.clear()
        fig.set_size_inches(*figsize)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for (title, result), row, row_notes in zip(rows, axes, notes, strict=True):
        for k, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(result.steps):
                ax.set_axis_off()
                continue
            step = result.steps[k]
            last = step.name == "model input"
            changed = bool(step.note) or k == 0 or last
            levels = {} if last else {"vmin": 0, "vmax": 255}
            ax.imshow(step.image, cmap="gray", **levels)
            ax.set_title(step.name, fontsize=max(7, size), color="black" if changed else "0.6")
            ax.set_xlabel(_wrap(row_notes[k], chars), fontsize=size, color="black" if changed else "0.6")
        row[0].set_ylabel(_wrap(title, max(chars, 14)), fontsize=max(7, size))
    fig.tight_layout(pad=0.3, w_pad=0.5, h_pad=2.0)
    return fig


#: The widest :func:`plot_preprocessing` draws, in inches (shown unscaled on the site), and the
#: size of its notes in points (9 px or more on the site).
_GALLERY_WIDTH = style.COLUMN_INCHES
_NOTE_POINTS = 6.6


def _note(k: int, step: Any) -> str:
    """What step ``k`` did, as written under its image (the first step: the image's size)."""
    note = step.note if k else f"{step.image.shape[0]}x{step.image.shape[1]}"
    return note or "(no change)"


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of each file in a ``FileUpload``'s ``value``, in ipywidgets 7 or 8.

    ipywidgets 7 gives a dict ``{name: {"metadata": {...}, "content": bytes}}``; ipywidgets 8 a
    tuple of dicts ``{"name", "type", "size", "content": memoryview, "last_modified"}``.
    """
    if isinstance(value, dict):  # ipywidgets 7
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value or ()]  # ipywidgets 8


class DrawPad:
    """The strokes of a drawing, kept in Python: dark ink on a white ``size`` x ``size`` sheet.

    A canvas widget only reports the pointer (:meth:`begin`, :meth:`move`, :meth:`end`); the
    image the networks see is drawn here with Pillow (:meth:`image`), so it does not depend on
    reading pixels back from the browser.
    """

    def __init__(self, size: int = 280, pen: int = 18) -> None:
        from PIL import Image, ImageDraw

        self.size, self.pen = size, pen
        self._sheet = Image.new("L", (size, size), 255)
        self._draw = ImageDraw.Draw(self._sheet)
        self._last: tuple[float, float] | None = None
        self.strokes = 0

    def begin(self, x: float, y: float) -> None:
        """Pen down at ``(x, y)``: a round dot."""
        self._last = (x, y)
        self.strokes += 1
        self._dot(x, y)

    def move(self, x: float, y: float) -> tuple[float, float, float, float] | None:
        """Pen moved: draw from the last point; the segment drawn (for the canvas to mirror), if any."""
        if self._last is None:
            return None
        segment = (*self._last, x, y)
        self._draw.line(segment, fill=0, width=self.pen)
        self._dot(x, y)  # round joints
        self._last = (x, y)
        return segment

    def end(self) -> None:
        """Pen up."""
        self._last = None

    def clear(self) -> None:
        """A blank sheet."""
        self._draw.rectangle((0, 0, self.size, self.size), fill=255)
        self._last, self.strokes = None, 0

    def _dot(self, x: float, y: float) -> None:
        r = self.pen / 2
        self._draw.ellipse((x - r, y - r, x + r, y + r), fill=0)

    def image(self) -> Any:
        """The drawing so far, a PIL ``L`` image (a copy)."""
        return self._sheet.copy()


def classify_digit(image: Any, classifiers: Mapping[str, Any], *, top: int = 3) -> tuple[Any, str]:
    """``(steps, text)`` for one image: the recipe's result with its images (for
    :func:`plot_preprocessing`; ``None`` when refused) and each network's top classes, as text."""
    from .predict import predict_image
    from .preprocess import PreprocessError, mnist_style

    try:
        first = next(iter(classifiers.values()), None)
        steps = mnist_style(image, first.transform if first is not None else None, keep_images=True)
    except PreprocessError as e:
        return None, f"not classified: {e}"
    lines = []
    for name, clf in classifiers.items():
        p = predict_image(clf, image, top=top)
        scores = "  ".join(f"{c}:{s:.2f}" if clf.rbf else f"{c}:{s:.3f}" for c, s in p.top)
        lines.append(f"{name:<22} says {p.label}   ({clf.score_name}: {scores})")
    return steps, "\n".join(lines)


def digit_explorer(classifiers: Mapping[str, Any], *, size: int = 280, pen: int = 18) -> Any:
    """Live face of the draw-your-own-digit explorer: a drawing pad (when ``ipycanvas`` is
    installed) and a file upload; each digit is shown step by step (:func:`plot_preprocessing`)
    with every network's answer (:func:`classify_digit`).

    ``classifiers`` maps a name to a :class:`lenet_utils.predict.Classifier`. Works with
    ipywidgets 7 and 8. In Colab, third-party widgets such as ipycanvas' need Colab's custom
    widget manager, which is switched on here.
    """
    import sys

    import ipywidgets as w

    out = w.Output()

    def show(title: str, image: Any) -> None:
        with out:
            out.clear_output(wait=True)
            steps, text = classify_digit(image, classifiers)
            print(text)
            if steps is not None:
                plot_preprocessing([(title, steps)])
                plt.show()

    controls: list[Any] = [_upload_control(show, out)]
    try:
        import ipycanvas  # noqa: F401
    except ImportError:
        controls.append(w.HTML("<i>pip install ipycanvas</i> to draw here instead of uploading"))
        return w.VBox([w.HBox(controls), out])
    if "google.colab" in sys.modules:  # pragma: no cover - Colab only
        from google.colab import output

        output.enable_custom_widget_manager()
    canvas, button = _drawing_canvas(show, size, pen)
    note = w.HTML("draw one digit, large, with the mouse: it is classified when you lift the pen")
    return w.VBox([w.HBox([canvas, w.VBox([note, button, *controls])]), out])


def _upload_control(show: Callable[[str, Any], None], out: Any) -> Any:
    """The explorer's file upload: each uploaded image goes to ``show``; a file Pillow cannot
    read gets one line in ``out``, never a traceback."""
    import io

    import ipywidgets as w
    from PIL import Image

    upload = w.FileUpload(accept="image/*", multiple=False, description="upload an image")

    def on_upload(change: Any) -> None:
        for name, content in uploaded_files(change["new"]):
            try:
                image = Image.open(io.BytesIO(content))
                image.load()
            except Exception as e:  # a file that is not an image: say so, never a traceback
                with out:
                    out.clear_output()
                    print(f"{name}: not an image Pillow can read ({type(e).__name__})")
                continue
            show(name, image)

    upload.observe(on_upload, names="value")
    return upload


def _drawing_canvas(show: Callable[[str, Any], None], size: int, pen: int) -> tuple[Any, Any]:
    """The explorer's ipycanvas pad and its clear button: strokes go to a :class:`DrawPad`,
    and lifting the pen sends the drawing to ``show``."""
    import ipywidgets as w
    from ipycanvas import Canvas

    pad = DrawPad(size, pen)
    canvas = Canvas(width=size, height=size, layout=w.Layout(border="1px solid #999"))
    canvas.line_width, canvas.line_cap, canvas.stroke_style = pen, "round", "black"

    def clear(_: Any = None) -> None:
        pad.clear()
        canvas.fill_style = "white"
        canvas.fill_rect(0, 0, size, size)

    def on_move(x: float, y: float) -> None:
        segment = pad.move(x, y)
        if segment is not None:
            canvas.stroke_line(*segment)

    def on_down(x: float, y: float) -> None:
        pad.begin(x, y)
        canvas.stroke_line(x, y, x, y)

    def on_up(x: float, y: float) -> None:
        pad.end()
        if pad.strokes:
            show("your drawing", pad.image())

    canvas.on_mouse_down(on_down)
    canvas.on_mouse_move(on_move)
    canvas.on_mouse_up(on_up)
    canvas.on_mouse_out(lambda x, y: pad.end())
    clear()
    button = w.Button(description="clear")
    button.on_click(clear)
    return canvas, button
