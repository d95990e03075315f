"""``python -m lenet_utils predict PATH... [--model M] [--checkpoint FILE] [--format F] [--top K]``:
parse, then hand the work to :mod:`lenet_utils.predict`.

Exit status: 0 when every input was classified, 1 when any failed (each named on one line: on
stderr for the table, in the ``error`` field of JSON and CSV), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .validate import _checked

__all__ = ["build_parser", "main"]

#: --top: 1 to 10 (there are ten classes)
top_k = _checked(int, lambda v: 1 <= v <= 10, "an integer from 1 to 10")


def build_parser() -> argparse.ArgumentParser:
    from ..models import MODELS
    from ..predict import CHECKPOINTS, DEFAULT_MODEL, IMAGE_SUFFIXES
    from ..preprocess import MODES

    p = argparse.ArgumentParser(
        prog="python -m lenet_utils predict",
        description="Classify images of handwritten digits with a trained LeNet: each image is made "
        "MNIST-style (grey, light ink on black, cropped, scaled into 20x20, centred by mass in 28x28), "
        "then given to the network. Default: the committed 1998 LeNet-5.",
    )
    kinds = "/".join(s[1:] for s in IMAGE_SUFFIXES)
    p.add_argument("paths", nargs="+", metavar="PATH", help=f"image files, folders (their {kinds} files) or globs")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help=f"the network (default: the checkpoint's; without --checkpoint: {DEFAULT_MODEL}). "
                   f"Committed checkpoints exist for: {', '.join(CHECKPOINTS)}; others need --checkpoint")  # fmt: skip
    p.add_argument("--checkpoint", default=None, help="a checkpoint of train or train-paper (best.pt, checkpoint.pt)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="default table")
    p.add_argument("--top", type=top_k, default=3, help="classes listed per image, best first (default 3)")
    p.add_argument("--preprocess", choices=MODES, default="auto",
                   help="auto (default): the MNIST recipe, except for images already in MNIST's format; "
                   "full: always; none: take 28x28 images as they are")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..checkpoint import CheckpointError
    from ..predict import (
        CHECKPOINTS,
        DEFAULT_MODEL,
        Prediction,
        expand_inputs,
        format_csv,
        format_json,
        format_table,
        load_classifier,
        predict_files,
    )

    parser = build_parser()
    a = parser.parse_args(argv)
    if a.checkpoint is None and (a.model or DEFAULT_MODEL) not in CHECKPOINTS:
        parser.error(f"--model {a.model} has no committed checkpoint: add --checkpoint FILE (train one with "
                     f"`python -m lenet_utils train --model {a.model} --dataset mnist --out DIR`)")  # fmt: skip
    try:
        clf = load_classifier(a.model, a.checkpoint)
    except Exception as e:  # one line, never a traceback: CheckpointError names the file and the problem
        message = str(e).splitlines()[0] if isinstance(e, CheckpointError) else (
            f"cannot use the checkpoint {a.checkpoint}: {type(e).__name__}: {e}")  # fmt: skip
        print(f"error: {message}", file=sys.stderr)
        failed = [Prediction(path, error=f"checkpoint: {message}") for path, _ in expand_inputs(a.paths)]
        if a.format == "json":
            print(format_json(failed, None))
        elif a.format == "csv":
            print(format_csv(failed, None, a.top), end="")
        return 1
    results = predict_files(clf, a.paths, top=a.top, mode=a.preprocess)
    if a.format == "json":
        print(format_json(results, clf.score_name))
    elif a.format == "csv":
        print(format_csv(results, clf.score_name, a.top), end="")
    else:
        if any(r.error is None for r in results):
            print(format_table(results, clf, a.top))
        for r in results:
            if r.error is not None:
                print(f"error: {r.path}: {r.error}", file=sys.stderr)
    return 1 if any(r.error is not None for r in results) else 0
