"""lenet_utils.predict and ``python -m lenet_utils predict``: checkpoints, formats, bad inputs,
outputs, exit codes, and MNIST digits written to PNG classified as the tensor path does."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet_utils import checkpoint, data, predict
from lenet_utils.checkpoint import CheckpointError
from lenet_utils.cli import main as dispatch
from lenet_utils.cli.predict import main
from lenet_utils.data import Preprocess
from lenet_utils.models import lenet_d2l, lenet_theano
from lenet_utils.predict import CHECKPOINTS, expand_inputs, load_classifier, open_image, predict_files
from lenet_utils.runs import TrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    X, y = data.load_split("mnist", False, REPO / "data")
    return X.numpy(), y.numpy()


@pytest.fixture(scope="module")
def paper_clf() -> predict.Classifier:
    return load_classifier()


def paper_digit(digit: np.ndarray, scale: int = 4) -> np.ndarray:
    """An MNIST digit as dark ink (30) on light paper (235), ``scale`` times larger, on a wider sheet."""
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC), float)
    sheet = np.zeros((28 * scale + 40, 28 * scale + 20))
    sheet[20:-20, 10:-10] = big
    return np.clip(235 - sheet / 255.0 * 205, 0, 255).astype(np.uint8)


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (the decompression-bomb shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.fixture()
def mixed(tmp_path: Path, mnist_test) -> dict[str, Path]:
    """A folder with one good digit and each kind of bad file."""
    X, _ = mnist_test
    good = tmp_path / "good.png"
    Image.fromarray(X[0]).save(good)  # a 7
    Image.fromarray(X[1]).save(tmp_path / "full.png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:120])
    fake = tmp_path / "fake.png"
    fake.write_text("not an image, just text\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([X[0], X[1]], axis=1)).save(two)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no images here")
    return {"good": good, "truncated": truncated, "fake": fake, "empty": empty, "blank": blank, "two": two,
            "bomb": bomb_png(tmp_path / "bomb.png"), "folder": tmp_path / "nothing", "dir": tmp_path}  # fmt: skip


# ------------------------------------------------------------------------------------------
# Checkpoints


def test_default_is_the_committed_1998_network(paper_clf) -> None:
    assert paper_clf.checkpoint == CHECKPOINTS[predict.DEFAULT_MODEL] == CHECKPOINTS["paper"]
    assert CHECKPOINTS["paper"].relative_to(REPO).as_posix() == "data/paper/plain_mu1/checkpoint.pt"
    assert paper_clf.rbf and paper_clf.name == "paper"
    assert paper_clf.transform == Preprocess(size=32, normalize="paper")
    assert paper_clf.score_name == "RBF penalty (smaller is better)"


def test_modern_network_uses_its_training_transform(mnist_test, tmp_path: Path) -> None:
    clf = load_classifier("modern")
    assert not clf.rbf and clf.transform == Preprocess(size=32, resize=True, normalize="standard")
    X, y = mnist_test
    for i in range(200):
        Image.fromarray(X[i]).save(tmp_path / f"{i:03d}.png")
    results = predict_files(clf, [str(tmp_path)], top=10)
    with torch.no_grad():
        ref = clf.net(clf.transform(torch.from_numpy(X[:200]), "mnist")).softmax(1)  # (200, 10)
    for r, p in zip(results, ref, strict=True):
        assert r.label == int(p.argmax()) and abs(r.top[0][1] - float(p.max())) < 1e-5
        assert [s for _, s in r.top] == sorted((s for _, s in r.top), reverse=True)  # largest first
    assert np.mean([r.label == t for r, t in zip(results, y[:200], strict=True)]) >= 0.97


def fit_checkpoint(path: Path, net: torch.nn.Module, **changes: object) -> Path:
    """A checkpoint as `python -m lenet_utils train` writes it (config = the TrainConfig)."""
    cfg = dataclasses.replace(TrainConfig(model="d2l", dataset="mnist", epochs=1), **changes)
    checkpoint.save(path, net, kind="fit", config={"command": "train", **dataclasses.asdict(cfg)})
    return path


def test_d2l_checkpoint_from_train(tmp_path: Path, mixed) -> None:
    torch.manual_seed(0)
    ckpt = fit_checkpoint(tmp_path / "best.pt", lenet_d2l())
    clf = load_classifier(None, ckpt)
    assert clf.name == "d2l" and not clf.rbf and clf.transform == Preprocess()
    assert load_classifier("d2l", ckpt).name == "d2l"
    (result,) = predict_files(clf, [str(mixed["good"])], top=10)
    assert result.error is None and abs(sum(s for _, s in result.top) - 1) < 1e-5  # ten probabilities
    padded = load_classifier(None, fit_checkpoint(tmp_path / "p.pt", lenet_d2l(input_size=32, padding=0), size=32))
    assert padded.transform == Preprocess(size=32)


@pytest.mark.parametrize(
    ("make", "model", "message"),
    [
        (lambda d: d / "none.pt", None, "no checkpoint at"),
        (lambda d: CHECKPOINTS["paper"], "modern", "holds a 'paper' network, not 'modern'"),
        (lambda d: CHECKPOINTS["modern"], "paper", "holds a 'modern' network, not 'paper'"),
        (lambda d: (d / "text.pt").write_text("hello") and d / "text.pt", None, "is not a readable checkpoint"),
        (lambda d: fit_checkpoint(d / "f.pt", lenet_d2l(), dataset="fashion"), None, "trained on 'fashion', not MNIST"),
        (lambda d: fit_checkpoint(d / "t.pt", lenet_theano()), None, "does not fit the 'd2l' network"),
        (lambda d: checkpoint.save(d / "n.pt", lenet_d2l(), kind="fit", config={}), None, "add --model"),
        (lambda d: checkpoint.save(d / "n.pt", lenet_theano(), kind="fit", config={}), "d2l", "does not fit"),
        (lambda d: checkpoint.save(d / "s.pt", lenet_d2l(), kind="sweep", config={}), None, "not a trained network"),
    ],
)
def test_checkpoint_problems(tmp_path: Path, make, model, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load_classifier(model, path)


def test_checkpoint_without_model_name_loads_with_model(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "n.pt", lenet_d2l(), kind="fit", config={})
    assert load_classifier("d2l", path).transform == Preprocess()


# ------------------------------------------------------------------------------------------
# MNIST's digits as PNG files: the same answers as the tensor path


def test_png_round_trip_on_1000_test_digits(paper_clf, mnist_test, tmp_path: Path) -> None:
    """1,000 MNIST test digits written to PNG and classified from the files, against the network on
    the tensors of lenet_utils.data (the path every chapter uses): auto must agree on every label and
    every penalty; the full recipe on >= 99.5 % of the labels."""
    X, y = mnist_test
    n = 1000
    for i in range(n):
        Image.fromarray(X[i]).save(tmp_path / f"{i:04d}.png")
    with torch.no_grad():
        ref = paper_clf.net(paper_clf.transform(torch.from_numpy(X[:n]), "mnist"))  # (n, 10) penalties
    auto = predict_files(paper_clf, [str(tmp_path)], top=10)
    full = predict_files(paper_clf, [str(tmp_path)], top=1, mode="full")
    assert [Path(r.path).name for r in auto] == [f"{i:04d}.png" for i in range(n)]
    assert all(r.error is None for r in auto)
    labels = ref.argmin(1).tolist()
    agree_auto = sum(r.label == t for r, t in zip(auto, labels, strict=True))
    agree_full = sum(r.label == t for r, t in zip(full, labels, strict=True))
    worst = max(abs(s - float(ref[i, c])) for i, r in enumerate(auto) for c, s in r.top)
    print(f"\nPNG round trip, {n} MNIST test digits: auto {agree_auto}/{n} labels agree (largest penalty "
          f"difference {worst:.2g}); full recipe {agree_full}/{n} ({sum(r.error is not None for r in full)} refused); "
          f"accuracy {sum(r.label == t for r, t in zip(auto, y[:n], strict=True))}/{n}")  # fmt: skip
    assert agree_auto == n and worst < 1e-4
    assert agree_full >= 0.995 * n


# ------------------------------------------------------------------------------------------
# Formats and modes


FORMATS = [  # (suffix, mode, save options)
    ("png", "L", {}), ("png", "RGB", {}), ("png", "RGBA", {}), ("png", "LA", {}), ("png", "P", {}),
    ("png", "I;16", {}), ("png", "1", {}), ("jpg", "L", {"quality": 90}), ("jpeg", "RGB", {"quality": 90}),
    ("jpg", "CMYK", {"quality": 90}), ("bmp", "L", {}), ("bmp", "RGB", {}), ("bmp", "P", {}), ("gif", "P", {}),
    ("tif", "L", {}), ("tiff", "RGB", {}), ("tif", "I;16", {}), ("tif", "CMYK", {}),
    ("webp", "RGB", {"lossless": True}), ("webp", "RGBA", {"quality": 80}),
]  # fmt: skip


def _as_mode(gray: np.ndarray, mode: str) -> Image.Image:
    L = Image.fromarray(gray)
    if mode == "I;16":
        return Image.fromarray(gray.astype(np.uint16) * 257)
    if mode == "RGBA":  # black ink whose opacity is the ink, on transparency
        rgba = np.zeros((*gray.shape, 4), np.uint8)
        rgba[..., 3] = 255 - gray
        return Image.fromarray(rgba, "RGBA")
    return L.convert(mode)


@pytest.mark.parametrize(("suffix", "mode", "options"), FORMATS, ids=[f"{s}-{m}" for s, m, _ in FORMATS])
def test_every_format_and_mode(paper_clf, mnist_test, tmp_path: Path, suffix: str, mode: str, options: dict) -> None:
    X, y = mnist_test
    gray = paper_digit(X[0])  # a 7 in dark ink on light paper
    path = tmp_path / f"seven.{suffix}"
    _as_mode(gray, mode).save(path, **options)
    (result,) = predict_files(paper_clf, [str(path)])
    assert result.error is None and result.label == y[0] == 7, result
    assert "inverted" in result.preprocessing and "scaled to" in result.preprocessing


def test_gif_first_frame(paper_clf, mnist_test, tmp_path: Path) -> None:
    X, y = mnist_test
    frames = [Image.fromarray(paper_digit(X[i])).convert("P") for i in (1, 0)]  # a 2, then a 7
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    (result,) = predict_files(paper_clf, [str(tmp_path / "anim.gif")])
    assert result.label == y[1] == 2


def test_lossless_formats_give_identical_scores(paper_clf, mnist_test, tmp_path: Path) -> None:
    gray = paper_digit(mnist_test[0][3])
    scores = []
    rgb = Image.fromarray(gray).convert("RGB")
    for name, image in [("a.png", Image.fromarray(gray)), ("b.bmp", rgb), ("c.tif", _as_mode(gray, "I;16")),
                        ("d.webp", rgb)]:  # fmt: skip
        image.save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
        (r,) = predict_files(paper_clf, [str(tmp_path / name)], top=10)
        scores.append(r.top)
    assert all(s == scores[0] for s in scores)


# ------------------------------------------------------------------------------------------
# Inputs: folders, globs, bad files


def test_expand_inputs(mixed) -> None:
    d = mixed["dir"]
    got = expand_inputs([str(d / "good.png"), str(d), str(d / "*.png"), str(d / "missing.png"),
                         str(mixed["folder"]), str(d / "*.xyz")])  # fmt: skip
    names = [(Path(p).name, e) for p, e in got]
    pngs = sorted(p.name for p in d.glob("*.png"))
    assert names[0] == ("good.png", None)
    assert [n for n, _ in names[1 : 1 + len(pngs)]] == pngs  # the folder's images, sorted
    assert [n for n, _ in names[1 + len(pngs) : 1 + 2 * len(pngs)]] == pngs  # the glob's
    assert names[-3:] == [("missing.png", "no such file or folder"),
                          ("nothing", "folder holds no image files (PNG, JPEG, BMP, GIF, TIFF or WebP)"),
                          ("*.xyz", "no image file matches this pattern")]  # fmt: skip
    assert expand_inputs(["x" * 300 + ".png"]) == [("x" * 300 + ".png", "cannot access: File name too long")]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated", "corrupt or truncated image"),
        ("fake", "not an image file Pillow can read"),
        ("empty", "empty file (0 bytes)"),
        ("bomb", "image too large, refused as a possible decompression bomb"),
    ],
)
def test_open_image_refusals(mixed, name: str, message: str) -> None:
    with pytest.raises(predict.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_image(mixed[name])


def test_decompression_bomb_warning_range_refused_too(monkeypatch, tmp_path: Path) -> None:
    """Between MAX_IMAGE_PIXELS and twice it, Pillow only warns: the warning is made a refusal."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("L", (40, 40), 0).save(tmp_path / "warn.png")  # 1,600 pixels: a warning in Pillow
    Image.new("L", (50, 50), 0).save(tmp_path / "error.png")  # 2,500 > 2,000: an error in Pillow
    for name in ("warn.png", "error.png"):
        with pytest.raises(predict.InputError, match=r"decompression bomb .*MAX_IMAGE_PIXELS = 1,000"):
            open_image(tmp_path / name)


def test_unreadable_file(monkeypatch, mixed) -> None:
    real_open = open

    def guarded(path, *args, **kwargs):  # as chmod 000 would (the tests may run as root)
        if Path(path) == mixed["good"]:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(predict, "open", guarded, raising=False)
    with pytest.raises(predict.InputError, match="cannot read: permission denied"):
        open_image(mixed["good"])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_chmod(mixed) -> None:
    mixed["good"].chmod(0)
    with pytest.raises(predict.InputError, match="cannot read: permission denied"):
        open_image(mixed["good"])


# ------------------------------------------------------------------------------------------
# The command, in process


BAD = {  # input -> its one line
    "truncated": "corrupt or truncated image (OSError: image file is truncated",
    "fake": "not an image file Pillow can read (PNG, JPEG, BMP, GIF, TIFF or WebP)",
    "empty": "empty file (0 bytes)",
    "bomb": "image too large, refused as a possible decompression bomb",
    "blank": "no ink: nothing stands out from the background",
    "two": "several digits: 2 large ink groups side by side",
    "folder": "folder holds no image files",
}


def _argv(mixed: dict[str, Path]) -> list[str]:
    return [str(mixed["good"]), *(str(mixed[k]) for k in BAD), str(mixed["dir"] / "missing.png")]


def test_cli_table_names_each_bad_input_once(mixed, capsys) -> None:
    assert main(_argv(mixed)) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("# paper network") and "padded to 32x32" in lines[0]
    assert "top 3 (class:RBF penalty, smaller is better)" in lines[1]
    assert len(lines) == 3 and lines[2].split()[:2] == [str(mixed["good"]), "7"]
    errors = err.splitlines()
    assert len(errors) == len(BAD) + 1 and "Traceback" not in err
    for line, (key, message) in zip(errors, BAD.items(), strict=False):
        assert line.startswith(f"error: {mixed[key]}: {message}"), line
    assert errors[-1] == f"error: {mixed['dir'] / 'missing.png'}: no such file or folder"


def test_cli_json(mixed, capsys) -> None:
    assert main([*_argv(mixed), "--format", "json", "--top", "2"]) == 1
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert err == "" and len(rows) == len(BAD) + 2
    assert all({"path", "label", "top", "error"} <= set(r) for r in rows)
    good = rows[0]
    assert good["label"] == 7 and good["error"] is None and len(good["top"]) == 2
    assert good["top"][0][0] == 7 and good["top"][0][1] < good["top"][1][1]  # penalties: smallest first
    assert good["score"] == "RBF penalty (smaller is better)"
    for row, message in zip(rows[1:], BAD.values(), strict=False):
        assert row["label"] is None and row["top"] == [] and row["error"].startswith(message), row


def test_cli_csv_and_modern_probabilities(mixed, capsys) -> None:
    assert main([str(mixed["good"]), str(mixed["fake"]), "--format", "csv", "--model", "modern"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["path", "label", "class_1", "score_1", "class_2", "score_2", "class_3", "score_3",
                             "score", "preprocessing", "error"]  # fmt: skip
    assert rows[0]["label"] == "7" and rows[0]["score"] == "probability" and rows[0]["error"] == ""
    assert 0.5 < float(rows[0]["score_1"]) <= 1 and float(rows[0]["score_2"]) <= float(rows[0]["score_1"])
    assert rows[1]["label"] == "" and rows[1]["error"].startswith(BAD["fake"])


def test_cli_all_good_exits_0(mixed, capsys) -> None:
    assert main([str(mixed["good"]), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "top 1 (class:RBF penalty, smaller is better)" in out and "already MNIST-format" in out
    assert dispatch(["predict", str(mixed["good"]), "--preprocess", "none"]) == 0
    assert "taken as is (28x28)" in capsys.readouterr().out


def test_cli_preprocess_none_refuses_other_sizes(mixed, tmp_path: Path, capsys) -> None:
    Image.new("L", (30, 30)).save(tmp_path / "big.png")
    assert main([str(tmp_path / "big.png"), "--preprocess", "none"]) == 1
    assert "takes 28x28 MNIST-format images, got 30x30" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_cli_checkpoint_problems(mixed, capsys, fmt: str) -> None:
    rc = main([str(mixed["good"]), str(mixed["two"]), "--checkpoint", str(CHECKPOINTS["paper"]),
               "--model", "modern", "--format", fmt])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 1
    assert err == f"error: {CHECKPOINTS['paper']} holds a 'paper' network, not 'modern': drop --model or pass a " \
                  "checkpoint of a 'modern' network\n"  # fmt: skip
    if fmt == "json":
        assert [r["error"].startswith("checkpoint: ") for r in json.loads(out)] == [True, True]
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(out)))) == 2
    else:
        assert out == ""


def test_cli_missing_checkpoint(mixed, tmp_path: Path, capsys) -> None:
    assert main([str(mixed["good"]), "--checkpoint", str(tmp_path / "no.pt")]) == 1
    assert capsys.readouterr().err.startswith(f"error: no checkpoint at {tmp_path / 'no.pt'}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "0"], "expected an integer from 1 to 10, got 0"),
        (["--top", "11"], "expected an integer from 1 to 10, got 11"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--model", "d2l"], "--model d2l has no committed checkpoint: add --checkpoint FILE"),
        (["--model", "theano"], "--model theano has no committed checkpoint"),
        (["--preprocess", "some"], "invalid choice: 'some'"),
    ],
)
def test_cli_usage_errors_exit_2(mixed, capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(mixed["good"]), *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_cli_no_paths_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2 and "PATH" in capsys.readouterr().err


def test_command_is_registered(capsys) -> None:
    assert dispatch(["--help"]) == 0
    assert "predict" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------
# The command, as a real process


def test_subprocess_exit_codes_and_streams(mixed) -> None:
    cmd = [sys.executable, "-m", "lenet_utils", "predict", str(mixed["good"]), str(mixed["fake"]),
           str(mixed["bomb"]), "--format", "json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["label"] for r in rows] == [7, None, None]
    assert rows[2]["error"].startswith("image too large")
