"""The one training loop of ``lenet_utils``.

Every network in the book is trained by :func:`run`: the d2l-style trainer
(:func:`lenet_utils.train.fit`), the 1998 recipe (:mod:`lenet_utils.paper`), the sweeps' single
and batched-seeds engines (:mod:`lenet_utils.sweep`, :mod:`lenet_utils.seeds`) and the
benchmarks. What differs between them is *data*, handed to the loop as a :class:`Task`, and
*side work*, attached as :class:`Callback` objects; the loop itself is twenty lines:

.. code-block:: text

    for each epoch:
        callbacks: epoch starts          (SDLM re-estimates its Hessian, sets epsilon)
        for each (X, y) of the pass:
            out = model(transform(X))    (augmentation, memory layout)
            loss = objective(out, y)     (a batch mean, or a sum for SDLM)
            backward, optimiser step
            count loss and hits on the fly (as d2l.train_ch6 does)
        evaluate every evaluation set    (accuracy, eval mode, no autograd)
        callbacks: epoch ends            (history, checkpoint, early stop, progress, plot)

**One vocabulary.** An epoch's metrics are ``train_loss`` (mean per-example objective over the
pass, measured while the weights move), ``train_acc`` (accuracy over the same pass, on the
fly), ``<name>_acc`` for each evaluation set (``test_acc``, ``val_acc``, ...), ``seconds``
(the training pass) and ``eval_seconds``. Errors are ``1 - accuracy``, computed where they are
shown (the paper reports errors). A model that trains several seeds at once
(:class:`lenet_utils.seeds.SeedStack`) gives every metric a leading seed dimension; the loop
does not care.

Metrics stay on the device as tensors during the pass (no ``float()`` per batch) and are
read once per epoch; the loss is summed in float64.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "NUMERICS",
    "Callback",
    "Task",
    "accuracy",
    "argmax_labels",
    "argmin_labels",
    "resolve_device",
    "run",
]

#: Version of the arithmetic of training. Results (sweep rows, checkpoints) carry it; a change
#: to the loop, the data order or a layer that changes any number bumps it, and results made
#: with another value are never reused or resumed (``tests/test_engine.py`` checks that the
#: loop reproduces the committed results of the current value).
NUMERICS = 1

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when present (Colab), else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} asked for, but this machine has no CUDA: use --device cpu")
    return device


def argmax_labels(out: torch.Tensor) -> torch.Tensor:
    """Labels from scores (softmax networks): the largest output."""
    return out.argmax(dim=-1)


def argmin_labels(out: torch.Tensor) -> torch.Tensor:
    """Labels from penalties (the paper's RBF output, Eq. 7): the smallest output."""
    return out.argmin(dim=-1)


@dataclass
class Task:
    """Everything one training run is made of, apart from the loop.

    Attributes:
        model: maps a batch to outputs, ``(B, 10)`` (or ``(S, B, 10)`` for stacked seeds).
        optimizer: steps the model's parameters after each batch.
        objective: ``(outputs, y) -> loss``, the batch mean (``reduction="mean"``) or the batch
            sum (``"sum"``, SDLM's successive per-pattern steps); shape ``()`` or ``(S,)``.
        batches: ``epoch -> iterable of (X, y)``, the training pass of epoch ``epoch`` (1-based).
        evals: evaluation sets, ``{name: batches}``; after each epoch ``<name>_acc``.
        predict: outputs to labels (:func:`argmax_labels`, or :func:`argmin_labels` for RBF).
        transform: applied to every training ``X`` after it is moved to the device
            (augmentation, memory layout); evaluation batches get only ``eval_transform``.
        eval_transform: applied to every evaluation ``X`` (memory layout).
        reduction: ``"mean"`` or ``"sum"``: what ``objective`` returns (for the loss metric).
        device: where batches are moved (the model must already be there).
        train_context: a context manager factory around each training pass (e.g. oneDNN off).
        state: free room for callbacks (the current epoch's generator, a step counter, ...).
    """

    model: nn.Module | Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    batches: Callable[[int], Batches]
    evals: Mapping[str, Batches] = field(default_factory=dict)
    predict: Callable[[torch.Tensor], torch.Tensor] = argmax_labels
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    eval_transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    reduction: str = "mean"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    train_context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")


class Callback:
    """Side work around the loop. Every hook is optional; ``epoch_end`` may ask
    to stop."""

    def epoch_start(self, task: Task, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def batch_end(self, task: Task, epoch: int, loss: torch.Tensor) -> None:
        """After each optimiser step, with the batch's (detached) loss."""

    def epoch_end(
        self, task: Task, epoch: int, metrics: dict[str, Any]
    ) -> bool | None:
        """After the epoch's evaluation; return ``True`` to stop training after
        it."""
        return None

    def close(self, task: Task) -> None:
        """After the last epoch (also when training stopped early or raised)."""


def _to_device(X: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return X.to(device, non_blocking=True), y.to(device, non_blocking=True)


def accuracy(task: Task, batches: Batches) -> torch.Tensor:
    """Accuracy of ``task.model`` over ``batches``: eval mode, no autograd, hits counted exactly.

    Returns a float64 tensor, ``()`` or ``(S,)`` for stacked seeds. The model's training mode is
    restored afterwards.
    """
    model = task.model
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    hits: torch.Tensor | int = 0
    total = 0
    with torch.inference_mode():
        for X, y in batches:
            X, y = _to_device(X, y, task.device)
            if task.eval_transform is not None:
                X = task.eval_transform(X)
            hits = hits + (task.predict(model(X)) == y).sum(dim=-1)  # () or (S,)
            total += y.shape[-1]
    if isinstance(model, nn.Module):
        model.train(was_training)
    if total == 0:
        raise ValueError("accuracy: the evaluation batches held no examples")
    return torch.as_tensor(hits).double() / total


def _train_pass(
    task: Task, epoch: int, callbacks: list[Callback]
) -> dict[str, Any]:
    """One pass over ``task.batches(epoch)``: the metrics measured on the fly."""
    if isinstance(task.model, nn.Module):
        task.model.train()
    loss_sum: torch.Tensor | float = 0.0
    hits: torch.Tensor | int = 0
    seen = 0
    batch_losses: list[torch.Tensor] = []
    t0 = time.perf_counter()
    with task.train_context():
        for X, y in task.batches(epoch):
            X, y = _to_device(X, y, task.device)
            if task.transform is not None:
                X = task.transform(X)
            task.optimizer.zero_grad(set_to_none=True)
            out = task.model(X)  # (B, 10) or (S, B, 10)
            loss = task.objective(out, y)  # () or (S,)
            # stacked seeds share no parameter: each gets its own gradient
            loss.sum().backward()
            task.optimizer.step()
            with torch.no_grad():
                b = y.shape[-1]
                loss = loss.detach()
                loss_sum = loss_sum + (
                    loss.double() * b
                    if task.reduction == "mean"
                    else loss.double()
                )
                hits = hits + (task.predict(out) == y).sum(dim=-1)
                seen += b
                batch_losses.append(loss)
            for cb in callbacks:
                cb.batch_end(task, epoch, loss)
    seconds = time.perf_counter() - t0
    if seen == 0:
        raise ValueError(
            f"epoch {epoch}: the training batches held no examples"
        )
    return {
        "train_loss": torch.as_tensor(loss_sum) / seen,
        "train_acc": torch.as_tensor(hits).double() / seen,
        # (n_batches,) or (n_batches, S)
        "batch_loss": torch.stack(batch_losses),
        "examples": seen,
        "seconds": seconds,
        "examples_per_sec": seen / seconds if seconds > 0 else math.inf,
    }


def run(
    task: Task,
    epochs: int,
    *,
    start: int = 0,
    callbacks: Iterable[Callback] = (),
) -> list[dict[str, Any]]:
    """Train ``task`` from epoch ``start + 1`` to ``epochs``; return each epoch's metrics.

    Metrics are tensors (``train_loss``, ``train_acc``, ``<name>_acc``: shape ``()`` or ``(S,)``;
    ``batch_loss``: one entry per batch) and floats (``seconds``, ``eval_seconds``,
    ``examples_per_sec``), plus ``epoch``. Training stops early when a callback's ``epoch_end``
    returns ``True``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    callbacks = list(callbacks)
    done: list[dict[str, Any]] = []
    try:
        for epoch in range(start + 1, epochs + 1):
            for cb in callbacks:
                cb.epoch_start(task, epoch)
            metrics = {"epoch": epoch, **_train_pass(task, epoch, callbacks)}
            t0 = time.perf_counter()
            for name, batches in task.evals.items():
                metrics[f"{name}_acc"] = accuracy(task, batches)
            metrics["eval_seconds"] = time.perf_counter() - t0
            done.append(metrics)
            stop = [cb.epoch_end(task, epoch, metrics) for cb in callbacks]
            if any(stop):
                break
    finally:
        for cb in callbacks:
            cb.close(task)
    return done
