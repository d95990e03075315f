"""``python -m lenet_utils bench [--epochs N] [--decompose] [--profile] [--fast] [--rounds N] [--out FILE]``:
see :mod:`lenet_utils.bench`."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .validate import nonneg_int, positive_float, positive_int

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils bench",
        description="Benchmark lenet_utils.train.fit against d2l.train_ch6 (d2l LeNet, Fashion-MNIST, SGD).",
    )
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs for each trainer (default 10)")
    p.add_argument("--lr", type=positive_float, default=0.9)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--decompose", action="store_true", help="also run train_ch6 on our in-memory loaders")
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table of our trainer")
    p.add_argument("--fast", action="store_true",
                   help="also run fit(fast=True), the fused CPU operators (opt-in, other numerics)")  # fmt: skip
    p.add_argument("--rounds", type=positive_int, default=1,
                   help="run the whole sequence this many times; report medians (default 1)")  # fmt: skip
    p.add_argument("--skip-d2l", action="store_true", help="only our trainer (quick check)")
    p.add_argument("--out", default=None, help="also write the report to this file (atomically)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..bench import report
    from ..files import atomic_write

    a = build_parser().parse_args(argv)
    words = list(argv if argv is not None else sys.argv[2:])
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    command = "python -m lenet_utils bench " + " ".join(shlex.quote(w) for w in words)
    report(a.epochs, a.lr, a.batch_size, a.seed, decompose=a.decompose, profile=a.profile, skip_d2l=a.skip_d2l,
           fast=a.fast, rounds=a.rounds, command=command, say=say)  # fmt: skip
    if a.out:
        atomic_write(Path(a.out), "\n".join(lines) + "\n")
        print(f"written to {a.out}")
    return 0
