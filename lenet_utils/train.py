"""A fast trainer with the semantics of d2l's ``train_ch6``, and ``python -m lenet_utils train``.

``d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, device)`` (Dive into Deep
Learning §7.6) does four things, and :func:`fit` does the same four by default:

1. **Initialisation**: ``nn.init.xavier_uniform_`` on the weight of every ``nn.Linear`` and
   ``nn.Conv2d`` (exact type, as d2l tests ``type(m) == ...``); biases keep PyTorch's default
   (:func:`init_xavier`).
2. **Objective**: ``nn.CrossEntropyLoss()`` (softmax + negative log-likelihood, batch mean).
3. **Optimiser**: ``torch.optim.SGD(net.parameters(), lr=lr)``, one step per mini-batch.
4. **Metrics**: train loss = mean per-example loss over the epoch (the batch mean weighted by
   the batch size), train accuracy over the same epoch (measured on the fly, while the weights
   move), test accuracy at the end of each epoch in ``eval`` mode.

What differs is only *how fast* it happens and what is recorded:

* data come from :class:`lenet_utils.data.TensorLoader` (tensors in memory, no per-image PIL
  work, no worker processes) — any iterable of ``(X, y)`` works;
* metrics are summed on the tensors and read once per epoch (no ``float()`` per batch);
* evaluation runs under ``torch.inference_mode`` in large batches;
* the thread count is measured, not guessed (:func:`probe_threads`: on a busy 2-core machine
  one thread beats two by a wide margin), and convolutions run in ``channels_last`` layout;
* a :class:`History` keeps per-epoch numbers (and the per-batch loss), a tqdm bar shows
  progress, a live plot in Jupyter updates *one* output in place (the stored notebook keeps a
  single static figure), checkpoints (best on validation) are written to a temporary name and
  renamed, the full training state can be saved every epoch so a killed run resumes, and
  early stopping follows the deeplearning.net tutorial's patience scheme (seed 001:
  :class:`PatienceStopping`).

Where the 1998 paper comes in: LeNet-5 was trained with stochastic gradient (§II.C, Appendix C)
on a fixed criterion; this module trains the d2l / modern / Theano variants the way they were
trained; the paper's own recipe (RBF outputs, MAP loss, SDLM) is ``python -m lenet_utils
train-paper`` (:mod:`lenet_utils.paper`). ``fit`` can still train :class:`LeNet5Paper` with
``loss="map"`` (Eq. 9) and predicts with its ``predict`` (smallest penalty).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_write

__all__ = [
    "History",
    "LivePlot",
    "PatienceStopping",
    "RandomHFlip",
    "available_cores",
    "configure_threads",
    "evaluate_accuracy",
    "fit",
    "hflip_loader",
    "init_xavier",
    "load_checkpoint",
    "main",
    "make_loss",
    "make_optimizer",
    "probe_threads",
    "save_checkpoint",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------------------------
# Set-up: threads, initialisation, loss, optimiser


def available_cores() -> int:
    """CPUs this process may run on (honours ``taskset`` / container affinity masks)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_threads(num_threads: int | None = None) -> int:
    """Set PyTorch's intra-op thread count (default: one per available core); return it."""
    num_threads = max(1, int(num_threads if num_threads is not None else available_cores()))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


def probe_threads(
    net: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    candidates: Sequence[int] | None = None,
    steps: int = 3,
) -> int:
    """Time a few forward/backward passes of a *copy* of ``net`` at each thread count; return the fastest.

    LeNet's layers are small (6 channels of 28x28), so splitting each operation over threads
    buys little and costs a synchronisation per operation; on a machine shared with other
    jobs a thread that has to wait for a busy core stalls every operation. Measured on the
    2-core machine this book was built on, with other jobs running: 1 thread trained the d2l
    net 2-8x faster than 2 threads. On an idle machine 2 threads can win. So we measure,
    on the real batch size, rather than guess. The network and its optimiser are untouched.
    """
    import copy

    cores = available_cores()
    candidates = sorted(set(candidates or (1, cores)))
    if len(candidates) == 1:
        return candidates[0]
    probe = copy.deepcopy(net)
    before = torch.get_num_threads()
    best, best_t = candidates[0], math.inf
    try:
        for t in candidates:
            torch.set_num_threads(t)
            times = []
            for _ in range(steps + 1):
                t0 = time.perf_counter()
                probe.zero_grad(set_to_none=True)
                criterion(probe(X), y).backward()
                times.append(time.perf_counter() - t0)
            elapsed = min(times[1:])  # the first pass warms caches and kernels
            if elapsed < best_t:
                best, best_t = t, elapsed
    finally:
        torch.set_num_threads(before)
    return best


def init_xavier(net: nn.Module) -> None:
    """Xavier-uniform weights on every ``nn.Linear`` / ``nn.Conv2d``, exactly as ``d2l.train_ch6``.

    Glorot & Bengio (2010): ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))`` keeps the
    variance of activations and gradients roughly constant from layer to layer. Like d2l, the
    test is on the exact type (subclasses such as a sparse C3 are left alone) and the biases
    keep PyTorch's default. The paper's own rule is uniform in ±2.4/F_i (Appendix C), see
    :func:`lenet_utils.layers.uniform_fan_in_`.
    """

    def _init(m: nn.Module) -> None:
        if type(m) is nn.Linear or type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)

    net.apply(_init)


def make_loss(
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training criterion by name; every one returns the *batch mean*.

    * ``"cross_entropy"`` — ``nn.CrossEntropyLoss()`` (d2l; seed 003's ``log_softmax`` +
      ``nll_loss`` is the same function of the logits).
    * ``"one_hot"`` — cross-entropy against one-hot *probability* targets (seed 000): the same
      value as ``"cross_entropy"``, computed the long way.
    * ``"mse"`` — squared error between softmax outputs and one-hot targets (for exercises).
    * ``"map"`` / ``"mle"`` — the paper's criteria Eq. 9 / Eq. 8 on RBF penalties
      (:mod:`lenet_utils.losses`), for :class:`~lenet_utils.models.LeNet5Paper`.
    * any callable ``loss(y_hat, y) -> scalar``.
    """
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return nn.CrossEntropyLoss()
    if loss == "one_hot":
        ce = nn.CrossEntropyLoss()

        def one_hot_ce(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return ce(y_hat, nn.functional.one_hot(y, y_hat.shape[1]).to(y_hat.dtype))

        return one_hot_ce
    if loss == "mse":

        def softmax_mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = nn.functional.one_hot(y, y_hat.shape[1]).to(y_hat.dtype)
            return ((y_hat.softmax(dim=1) - target) ** 2).sum(dim=1).mean()

        return softmax_mse
    if loss in ("map", "mle"):
        from . import losses  # the paper's criteria (owned by the paper chapter)

        return losses.MAPLoss() if loss == "map" else losses.MLELoss()
    raise ValueError(f"unknown loss {loss!r}; use 'cross_entropy', 'one_hot', 'mse', 'map', 'mle' or a callable")


#: optimiser names -> (class, defaults added unless given).
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
}


def make_optimizer(
    optimizer: str | torch.optim.Optimizer | Callable[..., torch.optim.Optimizer],
    params: Iterable[nn.Parameter],
    lr: float,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """An optimiser by name (``sgd`` as d2l, ``momentum`` = SGD with momentum 0.9, ``nesterov``,
    ``adagrad``, ``rmsprop``, ``adam``, ``adamw``), an instance (returned as is) or a factory
    ``f(params, lr=..., **kwargs)``."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        return optimizer(params, lr=lr, **kwargs)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}")
    cls, defaults = OPTIMIZERS[optimizer]
    return cls(params, lr=lr, **{**defaults, **kwargs})


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _predict(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Class labels: ``net.predict(X)`` when the model defines it (RBF: smallest penalty), else argmax."""
    predict = getattr(net, "predict", None)
    if callable(predict):
        return predict(X)
    return net(X).argmax(dim=1)


def evaluate_accuracy(net: nn.Module, data_iter: Batches, device: str | torch.device | None = None) -> float:
    """Accuracy of ``net`` over ``data_iter`` (what ``d2l.evaluate_accuracy_gpu`` computes).

    ``eval`` mode, no autograd (``torch.inference_mode``), the device of the parameters unless
    given. The training mode the network had is restored afterwards.
    """
    was_training = net.training
    net.eval()
    if device is None:
        p = next(net.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    with torch.inference_mode():
        for X, y in data_iter:
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += (_predict(net, X) == y).sum()
            total += len(y)
    net.train(was_training)
    if total == 0:
        raise ValueError("evaluate_accuracy: the data iterator yielded no examples")
    return correct.item() / total


def _eval_batches(data_iter: Batches, eval_batch_size: int | None) -> Batches:
    """The same examples in larger batches when the iterator is a TensorLoader (faster)."""
    from .data import TensorLoader

    if eval_batch_size and isinstance(data_iter, TensorLoader) and not data_iter.shuffle:
        return TensorLoader(data_iter.X, data_iter.y, max(eval_batch_size, data_iter.batch_size))
    return data_iter


class RandomHFlip:
    """Mirror each image of a batch left-right with probability ``p`` (a tensor op on the batch).

    The batch form of torchvision's ``RandomHorizontalFlip``, which seed 003 puts in its MNIST
    pipeline: one random draw per image from its own seeded generator, then
    ``torch.where(flip, X.flip(-1), X)``. Digits are not mirror-symmetric (a mirrored 3 is
    not a 3), which is what the chapter's experiment measures.
    """

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(len(X), generator=self.generator) < self.p  # (B,)
        return torch.where(flip.to(X.device).view(-1, *([1] * (X.dim() - 1))), X.flip(-1), X)

    def __repr__(self) -> str:
        return f"RandomHFlip(p={self.p})"


def hflip_loader(loader: Any) -> Any:
    """The same evaluation loader with every image mirrored left-right (a TensorLoader copy)."""
    from .data import TensorLoader

    return TensorLoader(loader.X.flip(-1), loader.y, loader.batch_size)


# --------------------------------------------------------------------------------------------
# History, checkpoints, early stopping


@dataclass
class History:
    """Per-epoch record of a run (index ``e`` is epoch ``e + 1``).

    ``test_acc`` / ``val_acc`` hold ``nan`` when no such loader was given. ``batch_loss`` is
    the loss of every mini-batch in order (seed 000 plots it). ``best_epoch`` is the epoch
    whose weights the checkpoint holds (best validation accuracy), ``stopped_epoch`` the epoch
    early stopping ended the run (``None``: ran to the end), ``num_threads`` the intra-op
    threads used.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    examples_per_sec: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_epoch: int | None = None
    num_threads: int | None = None
    extra: dict[str, list[float]] = field(default_factory=dict)

    EPOCH_FIELDS = ("train_loss", "train_acc", "test_acc", "val_acc", "seconds", "examples_per_sec")

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON-able)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch: ``epoch``, :attr:`EPOCH_FIELDS`, then the :attr:`extra` columns."""
        return [
            {
                "epoch": e + 1,
                **{k: getattr(self, k)[e] for k in self.EPOCH_FIELDS},
                **{k: v[e] for k, v in self.extra.items()},
            }
            for e in range(self.epochs)
        ]

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per epoch (written to a temporary name, then renamed)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["epoch", *self.EPOCH_FIELDS, *self.extra], lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        return atomic_write(Path(path), buf.getvalue().encode())

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        """Read a file written by :meth:`to_csv` (``batch_loss`` is not stored there).

        Columns other than the standard ones go to :attr:`extra`."""
        h = cls()
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                for k, v in row.items():
                    if k in cls.EPOCH_FIELDS:
                        getattr(h, k).append(float(v))
                    elif k != "epoch":
                        h.extra.setdefault(k, []).append(float(v))
        return h

    def summary(self) -> str:
        """The line d2l prints at the end of ``train_ch6`` (plus validation when present)."""
        if not self.epochs:
            return "no epochs run"
        parts = [f"loss {self.train_loss[-1]:.3f}", f"train acc {self.train_acc[-1]:.3f}"]
        if not math.isnan(self.val_acc[-1]):
            parts.append(f"val acc {self.val_acc[-1]:.3f}")
        if not math.isnan(self.test_acc[-1]):
            parts.append(f"test acc {self.test_acc[-1]:.3f}")
        total = sum(self.seconds)
        examples = sum(s * r for s, r in zip(self.seconds, self.examples_per_sec, strict=True))
        rate = examples / total if total else float("nan")
        return ", ".join(parts) + f"; {rate:.1f} examples/sec, {total:.1f} s"


def save_checkpoint(path: str | Path, net: nn.Module, **extra: Any) -> Path:
    """Save ``{"model": state_dict, **extra}`` with ``torch.save``, atomically (temp name + rename)."""
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), **extra}, buf)
    return atomic_write(Path(path), buf.getvalue())


def load_checkpoint(
    path: str | Path, net: nn.Module | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (or :func:`fit`).

    With ``net``, its weights are loaded in place. Returns the whole dictionary (``model``,
    ``epoch``, ``val_acc``, ``history``, ... as saved).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train first (python -m lenet_utils train --out DIR)")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if net is not None:
        net.load_state_dict(state["model"])
    return state


@dataclass
class PatienceStopping:
    """Early stopping with the deeplearning.net LeNet tutorial's patience (seed 001).

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
        """Record epoch ``epoch`` (1-based) with validation accuracy ``val_acc``; ``True`` = stop."""
        error = 1.0 - val_acc
        if error < self.best_error:
            if error < self.best_error * self.improvement_threshold:
                self.patience = max(self.patience, epoch * self.patience_increase)
            self.best_error, self.best_epoch = error, epoch
        return self.patience <= epoch


# --------------------------------------------------------------------------------------------
# Live plot


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class LivePlot:
    """Loss and accuracy against epochs, redrawn in place in Jupyter.

    The figure is shown once with a ``display_id`` and then *updated* (``update_display_data``),
    so the executed notebook stores a single output — the final static figure — instead of one
    image per update (d2l's Animator clears and redraws the cell instead). Outside Jupyter it
    only draws (call :meth:`finish` to get the figure).
    """

    def __init__(self, epochs: int, title: str | None = None, live: bool | None = None) -> None:
        import matplotlib.pyplot as plt

        self.fig, self.ax = plt.subplots(figsize=(4.5, 3.0))
        self.epochs, self.title = epochs, title
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.live = _in_notebook() if live is None else live
        self.handle = None
        plt.close(self.fig)  # keep the inline backend from showing it again at cell end

    def add(self, x: float, values: dict[str, float]) -> None:
        for name, v in values.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            xs, ys = self.series.setdefault(name, ([], []))
            xs.append(x)
            ys.append(v)
        self._draw()
        if self.live:
            from IPython.display import display

            if self.handle is None:
                self.handle = display(self.fig, display_id=True)
            else:
                self.handle.update(self.fig)

    def _draw(self) -> None:
        ax = self.ax
        ax.clear()
        styles = {"train loss": "-", "train acc": "--", "val acc": "-.", "test acc": ":"}
        for name, (xs, ys) in self.series.items():
            ax.plot(xs, ys, styles.get(name, "-"), label=name, marker="o" if len(xs) < 3 else None, ms=3)
        ax.set_xlabel("epoch")
        ax.set_xlim(0, max(1, self.epochs))
        ax.grid(True, alpha=0.3)
        if self.series:
            ax.legend(fontsize=8)
        if self.title:
            ax.set_title(self.title, fontsize=9)
        self.fig.tight_layout()

    def finish(self) -> Any:
        """The final figure (already shown in Jupyter)."""
        return self.fig


# --------------------------------------------------------------------------------------------
# The trainer


def fit(
    net: nn.Module,
    train_iter: Batches,
    test_iter: Batches | None,
    *,
    epochs: int = 10,
    lr: float = 0.9,
    optimizer: str | torch.optim.Optimizer | Callable[..., torch.optim.Optimizer] = "sgd",
    device: str | torch.device | None = None,
    init: str | Callable[[nn.Module], None] | None = "xavier",
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy",
    val_iter: Batches | None = None,
    patience: float | PatienceStopping | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    plot: bool = False,
    seed: int | None = None,
    state: str | Path | None = None,
    tensorboard: str | Path | None = None,
    eval_batch_size: int | None = 2048,
    num_threads: int | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    on_epoch_end: Callable[[int, History], None] | None = None,
    title: str | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    extra_eval: dict[str, Batches] | None = None,
    **optimizer_kwargs: Any,
) -> History:
    """Train ``net`` as ``d2l.train_ch6`` does, faster, and return its :class:`History`.

    Args:
        net: any ``nn.Module`` mapping ``(B, 1, H, W)`` to ``(B, 10)`` scores.
        train_iter, test_iter: iterables of ``(X, y)`` (e.g. :func:`lenet_utils.data.load_data`);
            ``test_iter`` may be ``None``.
        epochs: passes over ``train_iter`` (an upper bound with early stopping).
        lr: learning rate (d2l's 0.9 for SGD on the sigmoid net).
        optimizer: ``"sgd"`` (d2l), ``"momentum"``, ``"adagrad"``, ``"adam"``, ... see
            :func:`make_optimizer`; extra keyword arguments go to it (e.g. ``momentum=0.9``).
        device: default CUDA when available, else CPU (the network and batches move there).
        init: ``"xavier"`` (d2l, :func:`init_xavier`), ``None`` / ``"default"`` (keep the
            module's own initialisation), or a callable applied to ``net``.
        loss: see :func:`make_loss` (default ``"cross_entropy"`` as d2l).
        val_iter: validation batches, evaluated after every epoch; the checkpoint keeps the
            best validation accuracy and early stopping watches it.
        patience: epochs of patience (a number, seed 001's scheme :class:`PatienceStopping`),
            or a configured :class:`PatienceStopping`. Needs ``val_iter``.
        checkpoint: path of the best model (best validation accuracy when ``val_iter`` is
            given, else the last epoch), written atomically.
        progress: show a tqdm bar (one tick per batch, metrics in the postfix).
        plot: draw a :class:`LivePlot` (updated in place in Jupyter); ``history.figure`` then
            holds the final figure.
        seed: seed all RNGs before initialising (``lenet_utils.set_seed``).
        state: path of a full training state (weights, optimiser, history, stopping state,
            epoch), saved after every epoch; if the file exists the run *resumes* from it.
        tensorboard: a log directory; scalars are written there when the ``tensorboard``
            package is installed (silently skipped otherwise).
        eval_batch_size: evaluate TensorLoaders in batches of this size (faster, same result).
        num_threads: intra-op threads. Default: on the CPU, the faster of 1 and all cores
            measured on a copy of the network (:func:`probe_threads`); restored on return.
        channels_last: run 4-D tensors in ``channels_last`` memory layout (default: on the
            CPU, where oneDNN's convolutions are faster that way; same numbers up to rounding).
        compile: wrap the network in ``torch.compile`` for the training steps. Off by default:
            with torch 2.14.1 on the book's CPU, inductor's generated backward of the
            convolutions failed an internal stride check when we tried it.
        on_epoch_end: callback ``f(epoch, history)`` after each epoch.
        title: plot title.
        augment: applied to every training batch ``X`` before the forward pass (e.g.
            :class:`RandomHFlip`); evaluation never sees it.
        extra_eval: more evaluation sets, ``{column: loader}``; their accuracies after each
            epoch go to ``history.extra[column]`` (e.g. the test set mirrored).

    Returns:
        The :class:`History`. ``net`` holds the weights of the *last* epoch; load the
        checkpoint for the best one.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if patience is not None and val_iter is None:
        raise ValueError("early stopping (patience=...) needs a validation set: pass val_iter")
    device = _default_device(device)
    threads_before = torch.get_num_threads()
    if seed is not None:
        from . import set_seed

        set_seed(seed)
    if init == "xavier":
        init_xavier(net)
    elif callable(init):
        init(net)
    elif init not in (None, "default", "none"):
        raise ValueError(f"unknown init {init!r}; use 'xavier', None or a callable")
    net.to(device)
    if channels_last is None:
        channels_last = device.type == "cpu"
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = make_optimizer(optimizer, net.parameters(), lr, **optimizer_kwargs)
    criterion = make_loss(loss)
    stopper = (
        patience
        if isinstance(patience, PatienceStopping)
        else (PatienceStopping(float(patience)) if patience is not None else None)
    )
    history = History()
    best_val = -math.inf
    start_epoch = 0

    state_path = Path(state) if state is not None else None
    if state_path is not None and state_path.is_file():
        saved = torch.load(state_path, map_location=device, weights_only=False)
        net.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        history = History.from_dict(saved["history"])
        start_epoch = saved["epoch"]
        best_val = saved.get("best_val", -math.inf)
        if stopper is not None and saved.get("stopper") is not None:
            stopper = PatienceStopping(**saved["stopper"])
        torch.set_rng_state(saved["torch_rng"])
        if hasattr(train_iter, "epoch"):
            train_iter.epoch = saved.get("loader_epoch", start_epoch)  # type: ignore[attr-defined]
        if history.stopped_epoch is not None or start_epoch >= epochs:
            return history

    if num_threads is None and device.type == "cpu" and hasattr(train_iter, "X"):
        bs = getattr(train_iter, "batch_size", 256)
        Xp = train_iter.X[:bs].to(device)  # type: ignore[attr-defined]
        yp = train_iter.y[:bs].to(device)  # type: ignore[attr-defined]
        if channels_last and Xp.dim() == 4:
            Xp = Xp.contiguous(memory_format=torch.channels_last)
        num_threads = probe_threads(net, Xp, yp, criterion)
    configure_threads(num_threads)
    step_net: Callable[[torch.Tensor], torch.Tensor] = torch.compile(net) if compile else net
    writer = _tensorboard_writer(tensorboard)
    live = LivePlot(epochs, title=title) if plot else None
    if live is not None:
        for e in range(history.epochs):  # resumed: redraw what is done
            live.add(
                e + 1,
                {
                    "train loss": history.train_loss[e],
                    "train acc": history.train_acc[e],
                    "val acc": history.val_acc[e],
                    "test acc": history.test_acc[e],
                },
            )
    test_eval = _eval_batches(test_iter, eval_batch_size) if test_iter is not None else None
    val_eval = _eval_batches(val_iter, eval_batch_size) if val_iter is not None else None
    extra_evals = {k: _eval_batches(v, eval_batch_size) for k, v in (extra_eval or {}).items()}
    try:
        n_batches = len(train_iter)  # type: ignore[arg-type]
    except TypeError:
        n_batches = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=(epochs - start_epoch) * n_batches if n_batches else None,
            unit="batch",
            leave=True,
            mininterval=0.5,
            dynamic_ncols=True,
            file=sys.stderr,
        )
    rbf = callable(getattr(net, "predict", None))

    for epoch in range(start_epoch, epochs):
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        batch_losses: list[torch.Tensor] = []
        t0 = time.perf_counter()
        for X, y in train_iter:
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if augment is not None:
                X = augment(X)
            if channels_last and X.dim() == 4:
                X = X.contiguous(memory_format=torch.channels_last)  # (B, 1, H, W), NHWC strides
            opt.zero_grad(set_to_none=True)
            y_hat = step_net(X)  # (B, 10)
            batch_loss = criterion(y_hat, y)
            batch_loss.backward()
            opt.step()
            with torch.no_grad():
                b = len(y)
                loss_sum += batch_loss.detach() * b  # d2l: l * X.shape[0]
                correct += ((y_hat.argmin(dim=1) if rbf else y_hat.argmax(dim=1)) == y).sum()
                seen += b
                batch_losses.append(batch_loss.detach())
            if bar is not None:
                bar.update(1)
        train_seconds = time.perf_counter() - t0
        if seen == 0:
            raise ValueError("fit: the training iterator yielded no examples")
        train_loss = loss_sum.item() / seen
        train_acc = correct.item() / seen
        history.batch_loss.extend(torch.stack(batch_losses).tolist())
        val_acc = evaluate_accuracy(net, val_eval, device) if val_eval is not None else math.nan
        test_acc = evaluate_accuracy(net, test_eval, device) if test_eval is not None else math.nan
        for k, loader in extra_evals.items():
            history.extra.setdefault(k, []).append(evaluate_accuracy(net, loader, device))
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        history.val_acc.append(val_acc)
        history.test_acc.append(test_acc)
        history.seconds.append(train_seconds)
        history.examples_per_sec.append(seen / train_seconds)
        e1 = epoch + 1

        if checkpoint is not None:
            if val_eval is None or val_acc > best_val:
                best_val = val_acc if val_eval is not None else best_val
                history.best_epoch = e1
                save_checkpoint(
                    checkpoint, net, epoch=e1, val_acc=val_acc, test_acc=test_acc, history=history.to_dict()
                )
        elif val_eval is not None and val_acc > best_val:
            best_val, history.best_epoch = val_acc, e1
        stop = stopper.step(e1, val_acc) if stopper is not None else False
        if stop:
            history.stopped_epoch = e1

        if bar is not None:
            post = {"loss": f"{train_loss:.3f}", "train": f"{train_acc:.3f}"}
            if val_eval is not None:
                post["val"] = f"{val_acc:.3f}"
            if test_eval is not None:
                post["test"] = f"{test_acc:.3f}"
            bar.set_description(f"epoch {e1}/{epochs}")
            bar.set_postfix(post, refresh=True)
        if live is not None:
            live.add(e1, {"train loss": train_loss, "train acc": train_acc, "val acc": val_acc, "test acc": test_acc})
        if writer is not None:
            for k in ("train_loss", "train_acc", "val_acc", "test_acc", "examples_per_sec"):
                v = getattr(history, k)[-1]
                if not math.isnan(v):
                    writer.add_scalar(k, v, e1)
            writer.flush()
        if state_path is not None:
            extra = {
                "optimizer": opt.state_dict(),
                "history": history.to_dict(),
                "epoch": e1,
                "best_val": best_val,
                "stopper": asdict(stopper) if stopper is not None else None,
                "torch_rng": torch.get_rng_state(),
                "loader_epoch": getattr(train_iter, "epoch", e1),
            }
            save_checkpoint(state_path, net, **extra)
        if on_epoch_end is not None:
            on_epoch_end(e1, history)
        if stop:
            break

    if bar is not None:
        bar.close()
    torch.set_num_threads(threads_before)
    history.num_threads = num_threads
    if writer is not None:
        writer.close()
    if live is not None:
        history.figure = live.finish()  # type: ignore[attr-defined]
    return history


def _tensorboard_writer(logdir: str | Path | None) -> Any:
    """A ``SummaryWriter`` when a log dir is given and the ``tensorboard`` package is installed."""
    if logdir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(logdir))


# --------------------------------------------------------------------------------------------
# Command line


#: per model: (load_data keyword arguments, fit keyword arguments) that make the defaults right.
MODEL_SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "d2l": ({}, {"init": "xavier"}),
    "modern": ({"size": 32, "resize": True, "normalize": "standard"}, {"init": "xavier"}),
    "theano": ({}, {"init": "xavier"}),
    "paper": ({"size": 32, "normalize": "paper"}, {"init": None, "loss": "map"}),
}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils train",
        description="Train a LeNet variant with d2l.train_ch6's semantics (fast); "
        "save the best checkpoint and a metrics CSV.",
    )
    p.add_argument("--model", choices=["d2l", "modern", "paper", "theano"], default="d2l", help="network (default d2l)")
    p.add_argument("--dataset", choices=["mnist", "fashion"], default="fashion", help="default fashion (as d2l)")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--lr", type=_positive_float, default=0.9)
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum (implies --optimizer sgd with momentum)")
    p.add_argument(
        "--loss",
        choices=["cross_entropy", "one_hot", "mse", "map", "mle"],
        default=None,
        help="default: cross_entropy (map for --model paper)",
    )
    p.add_argument(
        "--init",
        choices=["xavier", "default"],
        default=None,
        help="weight initialisation (default xavier as d2l; the paper model keeps its own)",
    )
    p.add_argument(
        "--val-size",
        type=_nonneg_int,
        default=0,
        help="hold out this many training images for validation (best checkpoint, early stopping)",
    )
    p.add_argument(
        "--patience",
        type=_positive_float,
        default=None,
        help="early stopping: seed 001's patience scheme, in epochs (needs --val-size)",
    )
    p.add_argument("--size", type=int, choices=[28, 32], default=None, help="input side (default per model)")
    p.add_argument("--resize", action="store_true", default=None, help="resize to --size instead of padding")
    p.add_argument(
        "--normalize", choices=["none", "standard", "paper"], default=None, help="pixel scaling (default per model)"
    )
    p.add_argument("--train-subset", type=_positive_int, default=None, help="keep only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--threads", type=_positive_int, default=None, help="intra-op threads (default: one per core)")
    p.add_argument("--out", required=True, help="output folder: best.pt, metrics.csv, state.pt (resume)")
    p.add_argument("--hflip", type=float, default=0.0, help="seed 003's RandomHorizontalFlip: probability (default 0)")
    p.add_argument("--test-hflip", action="store_true", help="also report accuracy on the mirrored test set")
    p.add_argument("--metrics", default=None, help="metrics CSV path (default OUT/metrics.csv)")
    p.add_argument("--batch-loss", default=None, help="also write the loss of every batch to this CSV")
    p.add_argument("--tensorboard", action="store_true", help="also log to OUT/tb when tensorboard is installed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _after_epoch(epoch: int, h: History, *, metrics: Path, log: bool) -> None:
    """Rewrite the metrics CSV after every epoch (a long run can be read while it runs); log a line."""
    h.to_csv(metrics)
    if log:
        _log_epoch(epoch, h)


def _log_epoch(epoch: int, h: History) -> None:
    """One line per epoch (for logs, when there is no progress bar)."""
    parts = [f"epoch {epoch}", f"loss {h.train_loss[-1]:.4f}", f"train acc {h.train_acc[-1]:.4f}"]
    parts += [f"{k} {getattr(h, k)[-1]:.4f}" for k in ("val_acc", "test_acc") if not math.isnan(getattr(h, k)[-1])]
    parts += [f"{k} {v[-1]:.4f}" for k, v in h.extra.items()]
    parts.append(f"{h.examples_per_sec[-1]:.0f} ex/s")
    print(", ".join(parts), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lenet_utils train ...``: see ``--help``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.hflip <= 1.0:
        parser.error(f"--hflip is a probability in [0, 1], got {args.hflip}")
    if args.patience is not None and not args.val_size:
        parser.error("--patience needs a validation split: add --val-size N (e.g. 10000)")
    if args.model == "paper" and args.loss not in (None, "map", "mle"):
        parser.error(
            "--model paper outputs RBF penalties: use --loss map or mle "
            "(or `python -m lenet_utils train-paper` for the full 1998 recipe)"
        )
    if args.model != "paper" and args.loss in ("map", "mle"):
        parser.error(f"--loss {args.loss} works on RBF penalties: only with --model paper")
    from . import data, models

    data_kw, fit_kw = (dict(d) for d in MODEL_SETUPS[args.model])
    if args.size is not None:
        data_kw["size"] = args.size
    if args.resize:
        data_kw["resize"] = True
    if args.normalize is not None:
        data_kw["normalize"] = None if args.normalize == "none" else args.normalize
    if args.model == "paper" and data_kw.get("size", 28) != 32:
        parser.error("--model paper takes 32x32 inputs: drop --size or use --size 32")
    if args.loss is not None:
        fit_kw["loss"] = args.loss
    if args.init is not None:
        fit_kw["init"] = "xavier" if args.init == "xavier" else None
    opt_kw: dict[str, Any] = {}
    optimizer = args.optimizer
    if args.momentum is not None:
        if optimizer not in ("sgd", "momentum", "nesterov"):
            parser.error("--momentum applies to SGD only")
        opt_kw["momentum"] = args.momentum
    try:
        loaders = data.load_data(
            args.dataset,
            args.batch_size,
            val_size=args.val_size,
            seed=args.seed,
            train_subset=args.train_subset,
            **data_kw,
        )
    except data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    train_iter, *rest = loaders
    val_iter, test_iter = (rest[0], rest[1]) if args.val_size else (None, rest[0])
    model_kw: dict[str, Any] = {}
    if args.model == "d2l" and data_kw.get("size", 28) == 32:
        model_kw = {"input_size": 32, "padding": 0}
    from . import set_seed

    set_seed(args.seed)
    net = models.build_model(args.model, **model_kw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = Path(args.metrics) if args.metrics else out / "metrics.csv"
    print(
        f"training {args.model} on {args.dataset} ({train_iter.num_examples} train, "
        f"{val_iter.num_examples if val_iter else 0} val, {test_iter.num_examples} test) "
        f"with {optimizer} lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs -> {out}"
    )
    history = fit(
        net, train_iter, test_iter, epochs=args.epochs, lr=args.lr, optimizer=optimizer,
        device=args.device, val_iter=val_iter, patience=args.patience, checkpoint=out / "best.pt",
        state=out / "state.pt", progress=not args.no_progress, seed=args.seed,
        tensorboard=(out / "tb") if args.tensorboard else None, num_threads=args.threads,
        augment=RandomHFlip(args.hflip, seed=args.seed) if args.hflip else None,
        on_epoch_end=functools.partial(_after_epoch, metrics=metrics, log=args.no_progress),
        extra_eval={"test_acc_hflip": hflip_loader(test_iter)} if args.test_hflip else None,
        **fit_kw, **opt_kw,
    )  # fmt: skip
    history.to_csv(metrics)
    print(f"metrics: {metrics}")
    if args.batch_loss:
        n = len(history.batch_loss)
        per_epoch = len(train_iter)
        text = "step,epoch,loss\n" + "".join(
            f"{i + 1},{i // per_epoch + 1},{v:.6g}\n" for i, v in enumerate(history.batch_loss)
        )
        atomic_write(Path(args.batch_loss), text.encode())
        print(f"per-batch loss ({n} batches): {args.batch_loss}")
    print(history.summary())
    if history.best_epoch is not None:
        print(f"best checkpoint: epoch {history.best_epoch} -> {out / 'best.pt'}")
    if history.stopped_epoch is not None:
        print(f"early stopping after epoch {history.stopped_epoch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
