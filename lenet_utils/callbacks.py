"""Side work attached to the training loop (:class:`lenet_utils.engine.Callback`).

=========================  ====================================================================
callback                   what it does after each batch / epoch
=========================  ====================================================================
:class:`Recorder`          appends the epoch's metrics to a :class:`~lenet_utils.history.History`
:class:`ProgressBar`       a tqdm bar, one tick per batch, the epoch's metrics in its postfix
:class:`EarlyStopping`     the deeplearning.net tutorial's patience rule on ``val_acc``
:class:`BestCheckpoint`    the weights of the best epoch on validation (or the last), atomically
:class:`ResumeState`       the whole training state, so a killed run resumes
:class:`TensorBoard`       scalars to a TensorBoard event file
:class:`EpochHook`         calls ``f(epoch, history)`` (the ``on_epoch_end`` of ``fit``)
=========================  ====================================================================

The live plot is :class:`lenet_utils.liveplot.LivePlotCallback` (plotting stays out of the
trainer).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .engine import Callback, Task
from .history import History

__all__ = [
    "BestCheckpoint",
    "EarlyStopping",
    "EpochHook",
    "PatienceStopping",
    "ProgressBar",
    "Recorder",
    "ResumeState",
    "TensorBoard",
]


class Recorder(Callback):
    """Keeps :attr:`history` up to date (extra evaluation sets under their own names)."""

    def __init__(self, history: History, extra_names: list[str]) -> None:
        self.history, self.extra_names = history, extra_names

    def epoch_end(
        self, task: Task, epoch: int, metrics: dict[str, Any]
    ) -> bool | None:
        self.history.record(metrics, self.extra_names)
        return None


class ProgressBar(Callback):
    """A tqdm bar over the batches still to train, the last epoch's metrics in its postfix."""

    def __init__(self, epochs: int, total: int | None, unit: str = "batch") -> None:
        from tqdm.auto import tqdm

        self.epochs = epochs
        self.bar = tqdm(total=total, unit=unit, leave=True, mininterval=0.5, dynamic_ncols=True, file=sys.stderr)

    def batch_end(self, task: Task, epoch: int, loss: torch.Tensor) -> None:
        self.bar.update(1)

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        post = {"loss": f"{float(metrics['train_loss']):.3f}", "train": f"{float(metrics['train_acc']):.3f}"}
        for name in ("val", "test"):
            if f"{name}_acc" in metrics:
                post[name] = f"{float(metrics[f'{name}_acc']):.3f}"
        self.bar.set_description(f"epoch {epoch}/{self.epochs}")
        self.bar.set_postfix(post, refresh=True)
        return None

    def close(self, task: Task) -> None:
        self.bar.close()


@dataclass
class PatienceStopping:
    """Early stopping with the deeplearning.net LeNet tutorial's patience (hjimce's walkthrough).

    The tutorial counts in mini-batch iterations: ``patience = 10000``, ``patience_increase =
    2``, ``improvement_threshold = 0.995``, validation once per epoch; a validation *error*
    below ``0.995 x best`` raises the patience to ``max(patience, iteration x 2)``, and training
    stops as soon as ``patience <= iteration``. With 100 batches of 500 per epoch that is "at
    least 100 epochs, and twice as long as the last significant improvement".

    Here the unit is the epoch (validation happens once per epoch, so it is the same rule with
    the iteration counter divided by the batches per epoch): ``patience`` epochs at least,
    extended to ``2 x epoch`` on each significant improvement. :meth:`step` takes the
    validation accuracy after an epoch and returns ``True`` when training should stop.
    """

    patience: float = 10.0
    patience_increase: float = 2.0
    improvement_threshold: float = 0.995
    best_error: float = math.inf
    best_epoch: int = 0

    def improved(self, error: float) -> bool:
        return error < self.best_error

    def step(self, epoch: int, val_acc: float) -> bool:
        """Record epoch ``epoch`` (1-based) with validation accuracy
        ``val_acc``; ``True`` = stop."""
        error = 1.0 - val_acc
        if error < self.best_error:
            if error < self.best_error * self.improvement_threshold:
                self.patience = max(
                    self.patience, epoch * self.patience_increase
                )
            self.best_error, self.best_epoch = error, epoch
        return self.patience <= epoch


class EarlyStopping(Callback):
    """Stops training when :class:`PatienceStopping` says so; records the epoch in the history."""

    def __init__(self, rule: PatienceStopping, history: History) -> None:
        self.rule, self.history = rule, history

    def epoch_end(
        self, task: Task, epoch: int, metrics: dict[str, Any]
    ) -> bool | None:
        if self.rule.step(epoch, float(metrics["val_acc"])):
            self.history.stopped_epoch = epoch
            return True
        return None


class BestCheckpoint(Callback):
    """After each epoch, save the weights if validation accuracy improved (every epoch without one).

    The file is the book's one format (:mod:`lenet_utils.checkpoint`); its metrics hold
    ``epoch``, ``val_acc``, ``test_acc`` and the history so far.
    """

    def __init__(self, path: str | Path, net: torch.nn.Module, history: History, config: dict[str, Any]) -> None:
        self.path, self.net, self.history, self.config = Path(path), net, history, config
        self.best = -math.inf

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        val = float(metrics.get("val_acc", math.nan))
        if "val_acc" in metrics and not val > self.best:
            return None
        if "val_acc" in metrics:
            self.best = val
        self.history.best_epoch = epoch
        summary = {"epoch": epoch, "val_acc": val, "test_acc": float(metrics.get("test_acc", math.nan))}
        checkpoint.save(self.path, self.net, kind="fit", config=self.config,
                        metrics={**summary, "history": self.history.to_dict()})  # fmt: skip
        return None


class ResumeState(Callback):
    """After each epoch, save everything a resume needs: weights, optimiser, history, RNG, data order."""

    IGNORE = ("epochs", "patience")  # a resumed run may go on longer, or stop by another rule

    def __init__(self, path: str | Path, net: torch.nn.Module, history: History, config: dict[str, Any],
                 loader: Any, best: BestCheckpoint | None, stopper: PatienceStopping | None) -> None:  # fmt: skip
        self.path, self.net, self.history, self.config = Path(path), net, history, config
        self.loader, self.best, self.stopper = loader, best, stopper

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        state = {
            "optimizer": task.optimizer.state_dict(),
            "epoch": epoch,
            "best_val": self.best.best if self.best is not None else -math.inf,
            "stopper": asdict(self.stopper) if self.stopper is not None else None,
            "torch_rng": torch.get_rng_state(),
            "loader_epoch": getattr(self.loader, "epoch", epoch),
        }
        checkpoint.save(self.path, self.net, kind="fit-state", config=self.config,
                        metrics={"history": self.history.to_dict()}, state=state, ignore=self.IGNORE)  # fmt: skip
        return None


class TensorBoard(Callback):
    """Scalars per epoch to ``logdir`` (needs the ``tensorboard`` package;
    skipped without it)."""

    KEYS = (
        "train_loss",
        "train_acc",
        "val_acc",
        "test_acc",
        "examples_per_sec",
    )

    def __init__(self, logdir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self.writer = None
        else:
            self.writer = SummaryWriter(str(logdir))

    def epoch_end(
        self, task: Task, epoch: int, metrics: dict[str, Any]
    ) -> bool | None:
        if self.writer is not None:
            for k in self.KEYS:
                if k in metrics:
                    self.writer.add_scalar(k, float(metrics[k]), epoch)
            self.writer.flush()
        return None

    def close(self, task: Task) -> None:
        if self.writer is not None:
            self.writer.close()


class EpochHook(Callback):
    """Calls ``fn(epoch, history)`` after each epoch."""

    def __init__(self, fn: Callable[[int, History], None], history: History) -> None:
        self.fn, self.history = fn, history

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        self.fn(epoch, self.history)
        return None
