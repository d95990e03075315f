"""Classify image files with the book's trained networks: ``python -m lenet_utils predict PATH...``.

A checkpoint (:mod:`lenet_utils.checkpoint`, read with ``weights_only=True``) becomes a
:class:`Classifier`: the network, its input transform -- the one it was trained with, read
from the checkpoint's settings -- and how its outputs rank the classes. Each file is opened
with Pillow (:func:`open_image`; PNG, JPEG, BMP, GIF's first frame, TIFF, WebP), made into an
MNIST-style digit (:func:`lenet_utils.preprocess.mnist_style`) and classified
(:func:`predict_files`). One :class:`Prediction` per input, which the command prints as a
table, JSON or CSV (:func:`format_table`, :func:`format_json`, :func:`format_csv`).

Scores: softmax networks give probabilities (largest first). The 1998 LeNet-5 ends in RBF units
whose outputs are *penalties* -- squared distances to each class's prototype (LeCun et al.
1998, §II.B, Eq. 7) -- so its predicted class is the one with the *smallest* penalty, and its
top-K lists the K smallest.

Problems with one input -- missing, unreadable, empty, not an image, truncated, too large,
blank, several digits -- give that input an ``error`` and the others are still classified.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from . import checkpoint
from .checkpoint import CheckpointError, MissingCheckpointError
from .preprocess import PreprocessError, describe, mnist_style
from .threads import threads

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_MODEL",
    "IMAGE_SUFFIXES",
    "Classifier",
    "InputError",
    "Prediction",
    "expand_inputs",
    "format_csv",
    "format_json",
    "format_table",
    "load_classifier",
    "open_image",
    "predict_files",
    "predict_image",
]

REPO = Path(__file__).resolve().parents[1]
#: the network used when neither ``--model`` nor ``--checkpoint`` is given: the 1998 LeNet-5.
DEFAULT_MODEL = "paper"
#: The committed checkpoint each ``--model`` loads without ``--checkpoint`` (paths in a clone of
#: the book). ``paper`` is the headline run of chapter 5, the 1998 recipe as the book runs it
#: (mu = 1, seed 0, 20 passes, no distortions; ``data/paper/README.md``); ``modern`` is the
#: reproduction project's ReLU LeNet trained beside it. Change the headline here, in one place.
#: The book commits no trained d2l or Theano LeNet: those need ``--checkpoint``.
CHECKPOINTS: dict[str, Path] = {
    "paper": REPO / "data" / "paper" / "plain_mu1" / "checkpoint.pt",
    "modern": REPO / "data" / "paper" / "modern" / "checkpoint.pt",
}
#: the files a folder or a glob contributes (compared lower-case)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"


class InputError(ValueError):
    """One input cannot be read as an image; the message says why (without the path)."""


# ------------------------------------------------------------------------------------------
# The network


@dataclass
class Classifier:
    """A trained network ready to classify: ``scores(x)`` ranks the ten digits.

    Attributes:
        net: the network in eval mode.
        name: its model name (``paper``, ``d2l``, ``modern``, ``theano``).
        transform: its input transform (:class:`lenet_utils.data.Preprocess`).
        rbf: True for the 1998 LeNet-5: scores are RBF penalties, smaller is better.
        checkpoint: the file it was loaded from.
    """

    net: nn.Module
    name: str
    transform: Any
    rbf: bool
    checkpoint: Path

    @property
    def score_name(self) -> str:
        """What the scores are, as the header of the output says it."""
        return "RBF penalty (smaller is better)" if self.rbf else "probability"

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 10)``: penalties (RBF) or softmax probabilities."""
        out = self.net(x)  # (B, 10)
        return out if self.rbf else out.softmax(dim=1)

    def top(self, x: torch.Tensor, k: int) -> list[tuple[int, float]]:
        """The ``k`` best classes of one input ``(1, 1, S, S)`` with their scores, best first."""
        s = self.scores(x)[0]  # (10,)
        order = s.argsort(descending=not self.rbf)[:k]
        return [(int(c), float(s[c])) for c in order]


def _transform(kind: str, name: str, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The input transform a checkpoint's network was trained with, and the builder's options."""
    from .data import Preprocess
    from .runs import MODEL_SETUPS

    if kind == "paper":  # train-paper: as lenet_utils.paper.mnist_tensors
        if name == "paper":
            return Preprocess(size=32, normalize="paper"), {}
        return Preprocess(size=32, resize=True, normalize="standard"), {}
    data_kw = dict(MODEL_SETUPS.get(name, ({}, {}))[0])  # the train command's defaults, then its settings
    if config.get("size") is not None:
        data_kw["size"] = config["size"]
    if config.get("resize"):
        data_kw["resize"] = True
    if config.get("normalize") is not None:
        data_kw["normalize"] = None if config["normalize"] == "none" else config["normalize"]
    model_kw = {"input_size": 32, "padding": 0} if name == "d2l" and data_kw.get("size") == 32 else {}
    return Preprocess(**data_kw), model_kw


def _default_checkpoint(model: str | None) -> Path:
    name = model or DEFAULT_MODEL
    if name not in CHECKPOINTS:
        raise CheckpointError(
            f"the book commits no trained {name!r} network: pass --checkpoint FILE (e.g. train one with "
            f"`python -m lenet_utils train --model {name} --dataset mnist --out DIR`, then --checkpoint DIR/best.pt)"
        )
    path = CHECKPOINTS[name]
    if not path.is_file():
        raise MissingCheckpointError(f"the committed checkpoint {path} is missing (a clone of the book has it): "
                                     "pass --checkpoint FILE")  # fmt: skip
    return path


def load_classifier(model: str | None = None, path: str | Path | None = None) -> Classifier:
    """Load a checkpoint (default: :data:`CHECKPOINTS` of ``model``, else of :data:`DEFAULT_MODEL`).

    The network is the one the checkpoint records (``train`` and ``train-paper`` both record
    it); ``model``, when given, must agree. A checkpoint that records none (``fit`` called from
    Python) needs ``model`` and is taken on its word, with the transform ``train`` would use:
    d2l's and the modern LeNet's weights have the same shapes, so loading cannot tell them apart.

    Raises:
        CheckpointError: missing, unreadable, of another network than ``model``, trained on
            Fashion-MNIST, or its weights do not fit (the message names the file).
    """
    from .models import MODELS, LeNet5Paper, build_model

    path = Path(path) if path is not None else _default_checkpoint(model)
    ckpt = checkpoint.load(path)
    kind, config = ckpt["kind"], dict(ckpt.get("config") or {})
    if kind not in ("paper", "fit", "fit-state"):
        raise CheckpointError(f"{path} holds a {kind!r} checkpoint, not a trained network")
    recorded = config.get("model") if kind == "paper" or config.get("command") == "train" else None
    if kind == "paper" and recorded is None:
        recorded = "paper"
    if model is not None and recorded is not None and model != recorded:
        raise CheckpointError(f"{path} holds a {recorded!r} network, not {model!r}: drop --model or pass "
                              f"a checkpoint of a {model!r} network")  # fmt: skip
    name = recorded or model
    if name is None or name not in MODELS:
        raise CheckpointError(f"{path} does not record which network it holds: add --model ({', '.join(MODELS)})")
    if config.get("dataset", "mnist") != "mnist":
        raise CheckpointError(f"{path} was trained on {config['dataset']!r}, not MNIST: predict classifies digits")
    transform, model_kw = _transform(kind, name, config)
    net = build_model(name, **model_kw)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit the {name!r} network: {first}") from None
    return Classifier(net.eval(), name, transform, isinstance(net, LeNet5Paper), path)


# ------------------------------------------------------------------------------------------
# The inputs


def expand_inputs(items: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(path, error)`` per input, in order: a file as given; a folder's image files, sorted; a
    glob's matching image files, sorted. ``error`` names what is wrong with an item that
    contributes no file (missing path, folder without images, glob matching none), else ``None``."""
    out: list[tuple[str, str | None]] = []
    for item in items:
        try:
            out += _expand_one(item)
        except OSError as e:  # a name too long, a folder that cannot be listed, ...
            out.append((item, f"cannot access: {e.strerror or e}"))
    return out


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _expand_one(item: str) -> list[tuple[str, str | None]]:
    p = Path(item)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if _is_image_file(f))
        return [(f, None) for f in files] or [(item, f"folder holds no image files ({_FORMATS})")]
    if p.exists() or p.is_symlink():
        return [(item, None)]
    if glob.has_magic(item):
        found = sorted(f for f in glob.glob(item) if _is_image_file(Path(f)))
        return [(f, None) for f in found] or [(item, "no image file matches this pattern")]
    return [(item, "no such file or folder")]


def open_image(path: str | Path) -> Image.Image:
    """Open and decode an image file fully (first frame of an animation), or raise :class:`InputError`.

    Pillow's decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``) applies: an image above
    the limit is refused (its warning is turned into an error), not decoded.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("no such file") from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise InputError("empty file (0 bytes)")
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            img.seek(0)  # GIF / TIFF / WebP: the first frame
            img.load()
            return img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        limit = f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}"
        raise InputError(f"image too large, refused as a possible decompression bomb ({limit}): {e}") from None
    except UnidentifiedImageError:
        raise InputError(f"not an image file Pillow can read ({_FORMATS})") from None
    except PermissionError:
        raise InputError("cannot read: permission denied") from None
    except IsADirectoryError:
        raise InputError("is a folder") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"corrupt or truncated image ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------------
# Predicting


@dataclass
class Prediction:
    """One input's result: ``label`` and ``top`` when it worked, ``error`` when not."""

    path: str
    label: int | None = None
    top: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    preprocessing: str = ""

    def as_dict(self, score: str | None) -> dict[str, Any]:
        """The JSON object: ``path, label, top, error`` and ``score`` (what the numbers are), ``preprocessing``."""
        return {"path": self.path, "label": self.label, "top": [[c, round(s, 6)] for c, s in self.top],
                "error": self.error, "score": score if self.error is None else None,
                "preprocessing": self.preprocessing}  # fmt: skip


def predict_image(clf: Classifier, image: Any, *, top: int = 3, mode: str = "auto") -> Prediction:
    """Classify one image (a PIL image or a 28x28 uint8 array) without a path."""
    prep = mnist_style(image, clf.transform, mode=mode)
    best = clf.top(prep.tensor, top)
    return Prediction("", label=best[0][0], top=best, preprocessing=prep.summary())


def predict_files(clf: Classifier, items: Iterable[str], *, top: int = 3, mode: str = "auto") -> list[Prediction]:
    """One :class:`Prediction` per file the items expand to (:func:`expand_inputs`); never raises
    for a bad input -- its ``error`` says what is wrong.

    Images go through the network one at a time on one thread: LeNet is too small to gain from
    more, and on a busy machine a second thread waiting for a core makes every layer wait too
    (see :mod:`lenet_utils.threads`).
    """
    with threads(1):
        return [_predict_one(clf, path, problem, top, mode) for path, problem in expand_inputs(items)]


def _predict_one(clf: Classifier, path: str, problem: str | None, top: int, mode: str) -> Prediction:
    if problem is not None:
        return Prediction(path, error=problem)
    try:
        result = predict_image(clf, open_image(path), top=top, mode=mode)
        result.path = path
    except (InputError, PreprocessError) as e:
        result = Prediction(path, error=str(e))
    except Exception as e:  # never a traceback for one bad file: name it and go on
        result = Prediction(path, error=f"unexpected {type(e).__name__}: {e}")
    return result


# ------------------------------------------------------------------------------------------
# Output


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_table(results: Sequence[Prediction], clf: Classifier, top: int) -> str:
    """A plain-text table of the inputs that worked (errors go to stderr, one line each)."""
    kind = "RBF penalty, smaller is better" if clf.rbf else "probability"
    head = ["path", "label", f"top {top} (class:{kind})", "preprocessing"]
    fmt = "{:.2f}" if clf.rbf else "{:.3f}"
    rows = [[r.path, str(r.label), "  ".join(f"{c}:{fmt.format(s)}" for c, s in r.top), r.preprocessing]
            for r in results if r.error is None]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(3)]
    lines = [f"# {clf.name} network, {_shown(clf.checkpoint)}; input {describe(clf.transform)}"]
    for row in [head, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3])
    return "\n".join(line.rstrip() for line in lines)


def format_json(results: Sequence[Prediction], score: str | None) -> str:
    """A JSON list of objects ``{"path", "label", "top": [[class, score], ...], "error", "score", "preprocessing"}``,
    one per line."""
    return "[\n" + ",\n".join(" " + json.dumps(r.as_dict(score)) for r in results) + "\n]"


def format_csv(results: Sequence[Prediction], score: str | None, top: int) -> str:
    """CSV: ``path, label, class_1, score_1, ..., class_K, score_K, score, preprocessing, error``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", *[f"{n}_{i}" for i in range(1, top + 1) for n in ("class", "score")],
                "score", "preprocessing", "error"])  # fmt: skip
    for r in results:
        cells: list[Any] = []
        for i in range(top):
            cells += [r.top[i][0], f"{r.top[i][1]:.6g}"] if i < len(r.top) else ["", ""]
        w.writerow([r.path, "" if r.label is None else r.label, *cells, score if r.error is None else "",
                    r.preprocessing, r.error or ""])  # fmt: skip
    return buf.getvalue()
