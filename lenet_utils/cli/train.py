"""``python -m lenet_utils train ...``: parse, check, and hand a :class:`TrainConfig` to
:func:`lenet_utils.runs.train_run`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..runs import TrainConfig, train_run
from .validate import nonneg_int, positive_float, positive_int, probability

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..train import OPTIMIZERS
    from ..zoo import MODELS, ORIGINALS

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils train",
        description="Train a LeNet variant with d2l.train_ch6's semantics (fast); save the best checkpoint "
        "and a metrics CSV. Run again to resume.",
    )
    zoo = [name for name in MODELS if name != "lenet"]  # the zoo's "lenet" is d2l's LeNet, here "d2l"
    p.add_argument("--model", choices=["d2l", "gap", "modern", "paper", "theano", *zoo], default=d.model,
                   metavar="MODEL", help="d2l (default), gap, modern, paper, theano; the zoo at 28x28: "
                   f"{', '.join(n for n in zoo if n not in ORIGINALS)}; d2l's original sizes (for a GPU): "
                   f"{', '.join(ORIGINALS)}")  # fmt: skip
    p.add_argument("--dataset", choices=["mnist", "fashion"], default=d.dataset, help="default fashion (as d2l)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=d.optimizer)
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum")
    p.add_argument("--loss", choices=["cross_entropy", "one_hot", "mse", "map", "mle"], default=None,
                   help="default: cross_entropy (map for --model paper)")  # fmt: skip
    p.add_argument("--init", choices=["xavier", "default"], default=None,
                   help="weight initialisation (default xavier as d2l; the paper model keeps its own)")  # fmt: skip
    p.add_argument("--val-size", type=nonneg_int, default=0,
                   help="hold out N training images for validation (best checkpoint, early stopping)")  # fmt: skip
    p.add_argument("--patience", type=positive_float, default=None,
                   help="early stopping: the Theano tutorial's patience, in epochs (needs --val-size)")  # fmt: skip
    p.add_argument("--size", type=int, choices=[28, 32], default=None, help="input side (default per model)")
    p.add_argument("--resize", action="store_true", help="resize to --size instead of padding")
    p.add_argument("--normalize", choices=["none", "standard", "paper"], default=None, help="default per model")
    p.add_argument("--train-subset", type=positive_int, default=None, help="keep only the first N training images")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: measured)")
    p.add_argument("--out", required=True, help="output folder: best.pt, metrics.csv, state.pt (resume)")
    p.add_argument("--force", action="store_true", help="delete a run of other settings in --out and start afresh")
    p.add_argument("--hflip", type=probability, default=0.0, help="RandomHorizontalFlip probability (default 0)")
    p.add_argument("--test-hflip", action="store_true", help="also report accuracy on the mirrored test set")
    p.add_argument("--metrics", default=None, help="metrics CSV path (default OUT/metrics.csv)")
    p.add_argument("--batch-loss", default=None, help="also write the loss of every batch to this CSV")
    p.add_argument("--tensorboard", action="store_true", help="also log to OUT/tb (needs tensorboard)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..data import DataError
    from ..engine import resolve_device
    from ..settings import SettingsChangedError

    parser = build_parser()
    a = parser.parse_args(argv)
    cfg = TrainConfig(model=a.model, dataset=a.dataset, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                      optimizer=a.optimizer, momentum=a.momentum, loss=a.loss, init=a.init, val_size=a.val_size,
                      patience=a.patience, size=a.size, resize=a.resize, normalize=a.normalize,
                      train_subset=a.train_subset, seed=a.seed, hflip=a.hflip, test_hflip=a.test_hflip)  # fmt: skip
    for problem in cfg.problems():
        parser.error(problem)
    try:
        resolve_device(a.device)
        train_run(cfg, a.out, device=a.device, threads=a.threads, force=a.force, progress=not a.no_progress,
                  metrics=a.metrics, batch_loss=a.batch_loss, tensorboard=a.tensorboard)  # fmt: skip
    except (DataError, SettingsChangedError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
