"""``python -m lenet_utils fetch [--dataset mnist|fashion|all] [--mirror DIR] [--root DIR]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..data import DATASETS, MIRROR_ENV, DataError, fetch, raw_dir

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lenet_utils fetch",
                                description="Put MNIST / Fashion-MNIST into the cache, verified.")  # fmt: skip
    p.add_argument("--dataset", choices=["mnist", "fashion", "all"], default="all")
    p.add_argument("--root", default=None, help="cache folder (default: data/ of this checkout)")
    p.add_argument("--mirror", default=None, help=f"torchvision-layout folder to copy from (default ${MIRROR_ENV})")
    p.add_argument("--no-download", action="store_true", help="never try the network")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = fetch(args.dataset, args.root, args.mirror, download=not args.no_download)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    for name in names:
        print(f"{DATASETS[name][0]}: 4 files verified in {raw_dir(root, name)}")
    return 0
