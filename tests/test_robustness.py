"""lenet_utils.robustness and ``python -m lenet_utils robustness``: each transformation on images
with a known answer, the Wilson interval, the grid measurement, the recipe's variants, and the
committed results against the checkpoints they were measured on."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet_utils import data, paper
from lenet_utils import robustness as rb
from lenet_utils.cli import main as dispatch
from lenet_utils.predict import load_classifier
from lenet_utils.preprocess import NoInkError, mnist_style

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "data" / "robustness"


@pytest.fixture(scope="module")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    return data.load_split("mnist", False, REPO / "data")


def dot(r: int = 14, c: int = 14, value: int = 255) -> torch.Tensor:
    x = torch.zeros(1, 28, 28, dtype=torch.uint8)
    x[0, r, c] = value
    return x


def nonzero(x: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(p) for p in torch.nonzero(x[0]).tolist()]


# ------------------------------------------------------------------------------------------
# Transformations


@pytest.mark.parametrize("kind", list(rb.TRANSFORMS))
def test_identity_level_leaves_digits_unchanged(mnist_test, kind: str) -> None:
    X = mnist_test[0][:50]
    out = rb.apply(kind, X, rb.IDENTITY[kind])
    assert out.dtype == torch.uint8 and out.shape == X.shape
    assert torch.equal(out, X)


def test_grid_includes_the_identity_of_each_transformation() -> None:
    for kind, levels in rb.GRID.items():
        assert rb.IDENTITY[kind] in levels, kind
        assert list(levels) == sorted(levels), kind


def test_unknown_transformation_and_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown transformation 'zoom'"):
        rb.apply("zoom", dot(), 1)
    with pytest.raises(ValueError, match="uint8"):
        rb.rotate(torch.zeros(1, 28, 28), 10)


def test_shift_moves_whole_pixels_and_drops_what_leaves(mnist_test) -> None:
    X = mnist_test[0][:20]
    assert torch.equal(rb.shift(X, dx=3)[:, :, 3:], X[:, :, :-3])
    assert (rb.shift(X, dx=3)[:, :, :3] == 0).all()
    assert torch.equal(rb.shift(X, dy=-2)[:, :-2], X[:, 2:])
    assert nonzero(rb.shift(dot(), dx=-5, dy=4)) == [(18, 9)]
    assert rb.shift(dot(), dx=30).sum() == 0


def test_rotation_by_quarter_turns_is_exact(mnist_test) -> None:
    X = mnist_test[0][:20]
    assert torch.equal(rb.rotate(X, 90), torch.rot90(X, 1, (1, 2)))  # anticlockwise on the screen
    assert torch.equal(rb.rotate(X, -90), torch.rot90(X, -1, (1, 2)))
    assert torch.equal(rb.rotate(X, 180), torch.rot90(X, 2, (1, 2)))
    assert nonzero(rb.rotate(dot(13, 20), 90)) == [(7, 13)]  # right of centre -> above it


def test_scale_and_shear_about_the_centre() -> None:
    block = torch.zeros(1, 28, 28, dtype=torch.uint8)
    block[0, 4:24, 4:24] = 255  # 20x20, centred on 13.5
    half = rb.scale(block, 0.5)
    rows = torch.nonzero(half[0] > 127)[:, 0]
    assert rows.min().item() == 9 and rows.max().item() == 18  # 10 rows, still centred
    top_right = rb.shear(dot(4, 14), 0.5)  # a pixel 9.5 above the centre moves ~4.75 right
    (r, c), *_ = torch.nonzero(top_right[0] == top_right.max()).tolist()
    assert r == 4 and c in (18, 19)
    bottom = rb.shear(dot(23, 14), 0.5)
    (r, c), *_ = torch.nonzero(bottom[0] == bottom.max()).tolist()
    assert r == 23 and c in (9, 10)  # below the centre: to the left


def test_stroke_dilates_and_erodes_by_the_plus_shape() -> None:
    assert sorted(nonzero(rb.stroke(dot(), 1))) == [(13, 14), (14, 13), (14, 14), (14, 15), (15, 14)]
    assert len(nonzero(rb.stroke(dot(), 2))) == 13  # a diamond of radius 2
    square = torch.zeros(1, 28, 28, dtype=torch.uint8)
    square[0, 10:13, 10:13] = 200
    assert nonzero(rb.stroke(square, -1)) == [(11, 11)]
    assert rb.stroke(square, -2).sum() == 0
    assert rb.stroke(square, 1).max() == 200  # grey levels are kept, not binarised


def test_salt_pepper_inverts_the_expected_fraction_repeatably(mnist_test) -> None:
    X = mnist_test[0][:200]
    noisy = rb.salt_pepper(X, 0.1)
    flipped = (noisy != X) | ((X == 127) | (X == 128))  # 255 - v == v never happens for uint8
    assert abs(flipped.float().mean().item() - 0.1) < 0.005
    changed = noisy != X
    assert torch.equal(noisy[changed], 255 - X[changed])
    assert torch.equal(noisy, rb.salt_pepper(X, 0.1))  # seeded
    assert not torch.equal(noisy, rb.salt_pepper(X, 0.1, seed=1))


def test_blur_and_noise(mnist_test) -> None:
    X = mnist_test[0][:100]
    b = rb.blur(X, 1.0)
    assert abs(b.float().sum() - X.float().sum()) / X.float().sum() < 0.01  # mass kept (digits away from the edge)
    assert b.float().std() < X.float().std()  # smoother
    assert (rb.blur(dot(), 1.0) > 0).sum() > 9
    n = rb.gaussian_noise(X, 20.0)
    assert 12 < (n.float() - X.float()).std() < 20  # clipped at 0 and 255 on most pixels' one side
    assert torch.equal(n, rb.gaussian_noise(X, 20.0))


# ------------------------------------------------------------------------------------------
# Measuring


def test_wilson_interval() -> None:
    lo, hi = rb.wilson(0, 10)
    assert lo == 0 and math.isclose(hi, 0.2775, abs_tol=1e-4)  # the textbook value
    lo, hi = rb.wilson(9900, 10000)
    assert lo < 0.99 < hi and math.isclose(hi - lo, 2 * 1.96 * math.sqrt(0.99 * 0.01 / 10000), rel_tol=0.02)
    a, b = rb.wilson(3, 20)
    c, d = rb.wilson(17, 20)
    assert math.isclose(a, 1 - d) and math.isclose(b, 1 - c)  # symmetric in success and failure
    assert rb.wilson(10, 10)[1] <= 1.0
    with pytest.raises(ValueError):
        rb.wilson(0, 0)


def test_evaluate_grid_matches_the_tensor_path(mnist_test) -> None:
    X, y = mnist_test[0][:300], mnist_test[1][:300]
    nets = {"paper": load_classifier("paper"), "modern": load_classifier("modern")}
    rows = rb.evaluate_grid(nets, X, y, {"rotate": (0, 45), "stroke": (0,)})
    assert len(rows) == 3 * 2 and set(rows[0]) == set(rb.COLUMNS)
    Xp = data.Preprocess(size=32, normalize="paper")(X, "mnist")  # (300, 1, 32, 32), as chapter 5 feeds it
    err, _ = paper.evaluate(paper.load_checkpoint(rb.default_networks()["paper"]), Xp, y)
    first = rows[0]
    assert first["network"] == "paper" and first["level"] == 0
    assert first["correct"] == round((1 - err) * 300)
    assert first["wilson_lo"] <= first["accuracy"] <= first["wilson_hi"]
    by = {(r["network"], r["transform"], r["level"]): r["accuracy"] for r in rows}
    assert by[("paper", "rotate", 45)] < by[("paper", "rotate", 0)] - 0.2


def test_write_and_read_csv(tmp_path: Path) -> None:
    rows = [dict(zip(rb.COLUMNS, ("paper", "rotate", 10.0, 100, 97, 0.97, *rb.wilson(97, 100)), strict=True))]
    path = rb.write_csv(rows, tmp_path / "r.csv")
    df = rb.read_csv(path)
    assert list(df.columns) == list(rb.COLUMNS)
    assert df.loc[0, "correct"] == 97 and df.loc[0, "level"] == 10


def test_cli_writes_the_grid(tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid.csv"
    ckpt = rb.default_networks()["paper"]
    assert dispatch(["robustness", "--out", str(out), "--network", f"p={ckpt}", "--transform", "rotate",
                     "--transform", "stroke", "--limit", "100"]) == 0  # fmt: skip
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(rb.GRID["rotate"]) + len(rb.GRID["stroke"])
    assert {r["network"] for r in rows} == {"p"} and {r["n"] for r in rows} == {"100"}
    assert "rows ->" in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, capsys) -> None:
    assert dispatch(["robustness", "--out", str(tmp_path / "x.csv"), "--network", f"x={tmp_path / 'none.pt'}"]) == 1
    assert "error:" in capsys.readouterr().err
    for bad in (["--network", "no-equals-sign"], ["--transform", "zoom"], ["--limit", "0"], []):
        with pytest.raises(SystemExit) as e:
            dispatch(["robustness", *(["--out", str(tmp_path / "x.csv")] if bad else []), *bad])
        assert e.value.code == 2
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------------------
# The recipe's variants


def paper_sheet(digit: np.ndarray) -> Image.Image:
    """An MNIST digit as dark ink on light paper, 4 times larger, off-centre on a wider sheet."""
    big = np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC), float)
    sheet = np.zeros((160, 200))
    sheet[10:122, 60:172] = big
    return Image.fromarray(np.clip(235 - sheet / 255 * 205, 0, 255).astype(np.uint8))


def test_full_variant_is_the_recipe(mnist_test) -> None:
    for digit in mnist_test[0][:5].numpy():
        img = paper_sheet(digit)
        full = rb.mnist_variant(img, "+ centre of mass (the recipe)")
        assert np.array_equal(full, mnist_style(img, mode="full").digit)


def test_variants_differ_where_they_should(mnist_test) -> None:
    img = paper_sheet(mnist_test[0][0].numpy())  # a 7
    out = {v: rb.mnist_variant(img, v) for v in rb.VARIANTS}
    assert all(o.shape == (28, 28) and o.dtype == np.uint8 for o in out.values())
    assert out["resize only"][0, 0] > 200  # light paper stays light: no polarity step
    assert out["+ polarity"][0, 0] < 50 and out["+ background and levels"][0, 0] == 0
    box = out["+ crop, fit 20x20"]
    rows, cols = np.flatnonzero(box.any(1)), np.flatnonzero(box.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
    wide = out["fitted to 28x28"]
    assert max(np.flatnonzero(wide.any(1))[-1] - np.flatnonzero(wide.any(1))[0] + 1,
               np.flatnonzero(wide.any(0))[-1] - np.flatnonzero(wide.any(0))[0] + 1) > 24  # fmt: skip
    stretched = out["stretched to 20x20"]
    assert (np.flatnonzero(stretched.any(0))[-1] - np.flatnonzero(stretched.any(0))[0] + 1) >= 19
    with pytest.raises(ValueError, match="unknown variant"):
        rb.mnist_variant(img, "upside down")
    with pytest.raises(NoInkError):
        rb.mnist_variant(Image.new("L", (50, 50), 255), "+ crop, fit 20x20")


# ------------------------------------------------------------------------------------------
# The committed results


def test_committed_d2l_checkpoints_load_and_match_their_metrics(mnist_test) -> None:
    X, y = mnist_test
    for seed in range(3):
        clf = load_classifier(path=RESULTS / f"d2l_seed{seed}" / "best.pt")
        assert clf.name == "d2l" and not clf.rbf
        with open(RESULTS / f"d2l_seed{seed}" / "metrics.csv") as f:
            last = list(csv.DictReader(f))[-1]
        acc = (rb.predict_labels(clf, X) == y).float().mean().item()
        assert last["epoch"] == "10" and abs(acc - float(last["test_acc"])) < 1e-4, (seed, acc, last)


def test_committed_grid_is_complete_and_matches_the_checkpoints(mnist_test) -> None:
    df = rb.read_csv(*sorted(RESULTS.glob("grid_*.csv")))
    names = set(rb.default_networks())
    assert set(df.network) == names and (df.n == 10_000).all()
    for kind, levels in rb.GRID.items():
        for name in names:
            got = df[(df.network == name) & (df["transform"] == kind)].level.tolist()
            assert np.allclose(got, levels), (name, kind, got)
    # at the identity every transformation gives the plain test accuracy of the checkpoint
    X, y = mnist_test
    for name, path in rb.default_networks().items():
        acc = (rb.predict_labels(load_classifier(path=path), X) == y).sum().item()
        at_identity = df[(df.network == name) & (df.level == df["transform"].map(rb.IDENTITY))]
        assert len(at_identity) == len(rb.GRID) and (at_identity.correct == acc).all(), (name, acc)


# ------------------------------------------------------------------------------------------
# The draw-your-own-digit explorer (lenet_utils.widgets)


def test_drawpad_strokes_make_a_digit_the_network_reads() -> None:
    from lenet_utils.widgets import DrawPad

    pad = DrawPad(280, 18)
    pad.begin(60, 50)  # a 7: the bar, then the diagonal
    for x in range(60, 221, 20):
        assert pad.move(x, 50) is not None
    for t in range(1, 11):
        pad.move(220 - 11 * t, 50 + 20 * t)
    pad.end()
    assert pad.move(10, 10) is None and pad.strokes == 1
    img = pad.image()
    assert img.size == (280, 280) and np.asarray(img).min() == 0 and np.asarray(img)[0, 0] == 255
    p = mnist_style(img, mode="full")
    assert p.digit.max() == 255 and p.steps[1].note.startswith("inverted")
    pad.clear()
    assert pad.strokes == 0 and np.asarray(pad.image()).min() == 255


def test_uploaded_files_in_ipywidgets_7_and_8() -> None:
    from lenet_utils.widgets import uploaded_files

    v7 = {"a.png": {"metadata": {"name": "a.png", "type": "image/png", "size": 3}, "content": b"abc"}}
    v8 = ({"name": "a.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"), "last_modified": 0},)
    assert uploaded_files(v7) == uploaded_files(v8) == [("a.png", b"abc")]
    assert uploaded_files(()) == uploaded_files({}) == []


def test_classify_digit_and_gallery(mnist_test) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from lenet_utils.widgets import classify_digit, plot_preprocessing

    nets = {"paper": load_classifier("paper"), "modern": load_classifier("modern")}
    img = paper_sheet(mnist_test[0][0].numpy())  # a 7
    steps, text = classify_digit(img, nets)
    assert text.count("says 7") == 2 and "RBF penalty" in text and "probability" in text
    fig = plot_preprocessing([("a 7", steps), ("as stored", mnist_style(mnist_test[0][1].numpy(), keep_images=True))])
    assert len(fig.axes) == 2 * len(steps.steps)
    none, message = classify_digit(Image.new("L", (40, 40), 255), nets)
    assert none is None and message.startswith("not classified: no ink")
    with pytest.raises(ValueError):
        plot_preprocessing([])


@pytest.mark.parametrize("canvas", [True, False])
def test_digit_explorer_builds_and_classifies_an_upload(monkeypatch, capsys, mnist_test, canvas: bool) -> None:
    import builtins
    import datetime
    import io

    import ipywidgets as w

    from lenet_utils.widgets import digit_explorer

    if not canvas:
        real_import = builtins.__import__

        def no_ipycanvas(name, *args, **kwargs):
            if name == "ipycanvas":
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_ipycanvas)
    box = digit_explorer({"paper": load_classifier("paper")})
    widgets = [box]
    for child in widgets:
        widgets += list(getattr(child, "children", ()))
    uploads = [c for c in widgets if isinstance(c, w.FileUpload)]
    outs = [c for c in widgets if isinstance(c, w.Output)]
    assert len(uploads) == 1 and len(outs) == 1
    assert any(type(c).__name__ == "Canvas" for c in widgets) == canvas
    buf = io.BytesIO()
    paper_sheet(mnist_test[0][0].numpy()).save(buf, format="PNG")
    content = buf.getvalue()
    value = ({"name": "seven.png", "type": "image/png", "size": len(content), "content": memoryview(content),
              "last_modified": datetime.datetime.now(datetime.timezone.utc)},)  # fmt: skip
    if w.__version__.startswith("7"):
        value = {"seven.png": {"metadata": {"name": "seven.png"}, "content": content}}
    uploads[0].value = value  # the observer runs: the output shows the answer
    # (outside a kernel the Output widget captures nothing: the answer goes to stdout)
    text = "".join(o.get("text", "") for o in outs[0].outputs) + capsys.readouterr().out
    assert "says 7" in text
