"""``python -m lenet_utils robustness --out CSV [--network NAME=CHECKPOINT ...] [--transform KIND ...]
[--limit N] [--threads N]``: parse, then hand the work to :func:`lenet_utils.robustness.evaluate_grid`.

Exit status: 0 when the CSV was written, 1 when a checkpoint cannot be used, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .validate import positive_int

__all__ = ["build_parser", "main"]


def _network(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKPOINT, got {text!r}")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    from ..robustness import GRID

    p = argparse.ArgumentParser(
        prog="python -m lenet_utils robustness",
        description="Test accuracy of trained LeNets on MNIST's test digits shifted, rotated, scaled, "
        "sheared, with thicker or thinner strokes and with salt-and-pepper noise, at a grid of severities; "
        "one CSV row per network, transformation and severity, with a Wilson 95%% interval.",
    )
    p.add_argument("--out", required=True, help="the CSV to write (network, transform, level, n, correct, ...)")
    p.add_argument("--network", type=_network, action="append", default=None, metavar="NAME=CHECKPOINT",
                   help="a network to measure (repeatable); default: the book's committed checkpoints "
                   "(paper, paper_distortions, modern, d2l_seed0..2)")  # fmt: skip
    p.add_argument("--transform", choices=list(GRID), action="append", default=None,
                   help=f"measure only these (repeatable); default: {', '.join(GRID)} at the levels of "
                   "lenet_utils.robustness.GRID")  # fmt: skip
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N test digits (default all 10,000)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from .. import data
    from ..predict import load_classifier
    from ..robustness import GRID, default_networks, evaluate_grid, write_csv

    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    paths = dict(a.network) if a.network else {k: str(v) for k, v in default_networks().items()}
    try:
        networks = {name: load_classifier(path=path) for name, path in paths.items()}
    except Exception as e:  # one line naming the file: CheckpointError says what is wrong
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    grid = {k: v for k, v in GRID.items() if a.transform is None or k in a.transform}
    X, y = data.load_split("mnist", False)
    if a.limit is not None:
        X, y = X[: a.limit], y[: a.limit]
    start = time.process_time()
    rows = evaluate_grid(networks, X, y, grid, progress=lambda line: print(line, flush=True))
    write_csv(rows, a.out)
    print(f"{len(rows)} rows -> {a.out} ({time.process_time() - start:.0f} s of CPU)")
    return 0
