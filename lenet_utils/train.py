"""A fast trainer with the semantics of d2l's ``train_ch6``: :func:`fit`.

``d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, device)`` (Dive into Deep
Learning §7.6) does four things, and :func:`fit` does the same four by default:

1. **Initialisation**: ``nn.init.xavier_uniform_`` on the weight of every ``nn.Linear`` and
   ``nn.Conv2d`` (exact type, as d2l tests ``type(m) == ...``); biases keep PyTorch's default
   (:func:`init_xavier`).
2. **Objective**: ``nn.CrossEntropyLoss()`` (softmax + negative log-likelihood, batch mean).
3. **Optimiser**: ``torch.optim.SGD(net.parameters(), lr=lr)``, one step per mini-batch.
4. **Metrics**: train loss = mean per-example loss over the epoch, train accuracy over the
   same epoch (measured on the fly, while the weights move), test accuracy at the end of each
   epoch in ``eval`` mode.

The loop itself is the book's one loop, :func:`lenet_utils.engine.run`; ``fit`` assembles its
:class:`~lenet_utils.engine.Task` and attaches callbacks (:mod:`lenet_utils.callbacks`):
progress bar, live plot, best checkpoint, resumable state, early stopping (the
deeplearning.net tutorial's patience, Hjimce's walkthrough), TensorBoard. What makes it faster than
``train_ch6``: tensors in memory (:class:`lenet_utils.data.TensorLoader`, no per-image PIL
work, no worker processes), metrics summed on the tensors and read once per epoch, evaluation
under ``torch.inference_mode`` in large batches, a measured thread count
(:func:`lenet_utils.threads.probe_threads`) and ``channels_last`` convolutions on the CPU.

Where the 1998 paper comes in: LeNet-5 was trained with stochastic gradient (§II.C, Appendix C)
on a fixed criterion; this module trains the d2l / modern / Theano variants the way they were
trained; the paper's own recipe (RBF outputs, MAP loss, SDLM) is :mod:`lenet_utils.paper`, on
the same loop. ``fit`` can still train :class:`LeNet5Paper` with ``loss="map"`` (Eq. 9) and
predicts with its smallest penalty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint, engine
from .callbacks import (
    BestCheckpoint,
    EarlyStopping,
    EpochHook,
    PatienceStopping,
    ProgressBar,
    Recorder,
    ResumeState,
    TensorBoard,
)
from .history import History
from .liveplot import LivePlot, LivePlotCallback
from .settings import check_same
from .threads import available_cores, configure_threads, probe_threads, threads

__all__ = [
    "OPTIMIZERS",
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
    "make_loss",
    "make_optimizer",
    "probe_threads",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------------------------
# Set-up: initialisation, loss, optimiser


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

    * ``"cross_entropy"`` — ``nn.CrossEntropyLoss()`` (d2l; the reproduction project's ``log_softmax`` +
      ``nll_loss`` is the same function of the logits).
    * ``"one_hot"`` — cross-entropy against one-hot *probability* targets (the reading notes): the same
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


def _predictor(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Labels from outputs: smallest penalty for RBF networks (they define ``predict``), else argmax."""
    return engine.argmin_labels if callable(getattr(net, "predict", None)) else engine.argmax_labels


def evaluate_accuracy(net: nn.Module, data_iter: Batches, device: str | torch.device | None = None) -> float:
    """Accuracy of ``net`` over ``data_iter`` (what ``d2l.evaluate_accuracy_gpu`` computes).

    ``eval`` mode, no autograd (``torch.inference_mode``), the device of the parameters unless
    given. The training mode the network had is restored afterwards.
    """
    if device is None:
        p = next(net.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    task = engine.Task(net, None, None, None, predict=_predictor(net), device=torch.device(device))  # type: ignore[arg-type]
    try:
        return engine.accuracy(task, data_iter).item()
    except ValueError:
        raise ValueError("evaluate_accuracy: the data iterator yielded no examples") from None


def _eval_batches(data_iter: Batches, eval_batch_size: int | None) -> Batches:
    """The same examples in larger batches when the iterator is a TensorLoader (faster)."""
    from .data import TensorLoader

    if eval_batch_size and isinstance(data_iter, TensorLoader) and not data_iter.shuffle:
        return TensorLoader(data_iter.X, data_iter.y, max(eval_batch_size, data_iter.batch_size))
    return data_iter


class RandomHFlip:
    """Mirror each image of a batch left-right with probability ``p`` (a tensor op on the batch).

    The batch form of torchvision's ``RandomHorizontalFlip``, which the reproduction project puts in its MNIST
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
# Checkpoints


def load_checkpoint(
    path: str | Path, net: nn.Module | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``checkpoint=`` or ``state=``).

    With ``net``, its weights are loaded in place. Returns the checkpoint's metrics (``epoch``,
    ``val_acc``, ``test_acc``, ``history``) next to ``model``, ``config`` and ``versions``.
    """
    ckpt = checkpoint.load(path, net, map_location=map_location)
    return {**ckpt, **ckpt["metrics"]}


# --------------------------------------------------------------------------------------------
# The trainer


def _settings(net: nn.Module, train_iter: Batches, optimizer: Any, lr: float, init: Any, loss: Any,
              seed: int | None, augment: Any, optimizer_kwargs: dict[str, Any],
              config: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """What a resumable ``fit`` run depends on (checked when it resumes)."""
    name = lambda v: v if isinstance(v, (str, type(None))) else getattr(v, "__name__", type(v).__name__)
    return {
        "network": type(net).__name__,
        "shapes": [list(p.shape) for p in net.parameters()],
        "train_examples": getattr(train_iter, "num_examples", None),
        "batch_size": getattr(train_iter, "batch_size", None),
        "optimizer": name(optimizer), "lr": lr, **optimizer_kwargs, "init": name(init), "loss": name(loss),
        "seed": seed, "augment": repr(augment) if augment is not None else None,
        **(config or {}),
    }  # fmt: skip


def _initialise(net: nn.Module, init: str | Callable[[nn.Module], None] | None, seed: int | None) -> None:
    if seed is not None:
        from . import set_seed

        set_seed(seed)
    if init == "xavier":
        init_xavier(net)
    elif callable(init):
        init(net)
    elif init not in (None, "default", "none"):
        raise ValueError(f"unknown init {init!r}; use 'xavier', None or a callable")


def _resume(path: Path, net: nn.Module, opt: torch.optim.Optimizer, settings: dict[str, Any],
            train_iter: Any, device: torch.device) -> tuple[History, int, dict[str, Any]]:  # fmt: skip
    """Load a saved training state into ``net`` and ``opt``: (history, epochs done, saved state)."""
    saved = checkpoint.load(path, kind="fit-state", map_location=device)
    check_same(saved["config"], settings, where=str(path), ignore=ResumeState.IGNORE, way_out="--force")
    net.load_state_dict(saved["model"])
    opt.load_state_dict(saved["state"]["optimizer"])
    torch.set_rng_state(saved["state"]["torch_rng"])
    if hasattr(train_iter, "epoch"):
        train_iter.epoch = saved["state"]["loader_epoch"]
    return History.from_dict(saved["metrics"]["history"]), saved["state"]["epoch"], saved["state"]


def _evals(test_iter: Batches | None, val_iter: Batches | None, extra: dict[str, Batches] | None,
           size: int | None) -> dict[str, Batches]:  # fmt: skip
    sets = {"val": val_iter, "test": test_iter, **(extra or {})}
    return {k: _eval_batches(v, size) for k, v in sets.items() if v is not None}


def _threads_for(net: nn.Module, train_iter: Any, criterion: Any, device: torch.device,
                 channels_last: bool, num_threads: int | None) -> int | None:  # fmt: skip
    """The thread count: given, or the faster of 1 and all cores on a real batch (CPU)."""
    if num_threads is not None or device.type != "cpu" or not hasattr(train_iter, "X"):
        return num_threads
    bs = getattr(train_iter, "batch_size", 256)
    Xp, yp = train_iter.X[:bs].to(device), train_iter.y[:bs].to(device)
    if channels_last and Xp.dim() == 4:
        Xp = Xp.contiguous(memory_format=torch.channels_last)
    return probe_threads(net, Xp, yp, criterion)


def _batch_count(train_iter: Any) -> int | None:
    try:
        return len(train_iter)
    except TypeError:
        return None


def _layout(
    net: nn.Module, device: torch.device, channels_last: bool | None
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Move ``net`` to ``device``; on the CPU (by default) in ``channels_last`` layout, with the
    batch transform that puts inputs in the same layout."""
    net.to(device)
    if channels_last is None:
        channels_last = device.type == "cpu"
    if not channels_last:
        return None
    net.to(memory_format=torch.channels_last)
    return lambda X: X.contiguous(memory_format=torch.channels_last) if X.dim() == 4 else X  # (B, 1, H, W), NHWC


def _fast_model(net: nn.Module, train_iter: Any) -> tuple[nn.Module, bool]:
    """The fused-operator view of ``net`` for ``fit(fast=True)``, or ``net`` where it does not apply."""
    from . import fastnet

    if not hasattr(train_iter, "X"):
        return net, False
    return fastnet.train_module(net, train_iter.X[:8])


def _callbacks(h: History, task: engine.Task, net: nn.Module, train_iter: Any, epochs: int, start: int,
               settings: dict[str, Any], opts: dict[str, Any], extra: list[str],
               saved: dict[str, Any]) -> list[engine.Callback]:  # fmt: skip
    """The side work ``fit``'s options ask for, in the order it runs after each epoch."""
    cbs: list[engine.Callback] = [Recorder(h, extra)]
    best = BestCheckpoint(opts["checkpoint"], net, h, settings) if opts["checkpoint"] is not None else None
    if best is not None:
        best.best = saved.get("best_val", -math.inf)
        cbs.append(best)
    stopper = opts["stopper"]
    if stopper is not None:
        cbs.append(EarlyStopping(stopper, h))
    if opts["progress"]:
        n = _batch_count(train_iter)
        cbs.append(ProgressBar(epochs, (epochs - start) * n if n else None))
    if opts["plot"]:
        plot = LivePlot(epochs, title=opts["title"])
        for e in range(h.epochs):  # resumed: redraw what is done
            plot.add(e + 1, {"train loss": h.train_loss[e], "train acc": h.train_acc[e],
                             "val acc": h.val_acc[e], "test acc": h.test_acc[e]})  # fmt: skip
        h.figure = plot.fig  # type: ignore[attr-defined]
        cbs.append(LivePlotCallback(plot))
    if opts["tensorboard"] is not None:
        cbs.append(TensorBoard(opts["tensorboard"]))
    if opts["state"] is not None:
        cbs.append(ResumeState(opts["state"], net, h, settings, train_iter, best, stopper))
    if opts["on_epoch_end"] is not None:
        cbs.append(EpochHook(opts["on_epoch_end"], h))
    return cbs


def _check_arguments(epochs: int, patience: Any, val_iter: Batches | None) -> None:
    if patience is not None and val_iter is None:
        raise ValueError("early stopping (patience=...) needs a validation set: pass val_iter")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")


def _stopper(patience: float | PatienceStopping | None, saved: dict[str, Any]) -> PatienceStopping | None:
    """``fit``'s early stopping: from ``patience``, or as a resumed state left it."""
    if patience is None:
        return None
    if saved.get("stopper") is not None:
        return PatienceStopping(**saved["stopper"])
    return patience if isinstance(patience, PatienceStopping) else PatienceStopping(float(patience))


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
    eval_batch_size: int | None = 1024,
    num_threads: int | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    fast: bool = False,
    on_epoch_end: Callable[[int, History], None] | None = None,
    title: str | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    extra_eval: dict[str, Batches] | None = None,
    config: dict[str, Any] | None = None,
    **optimizer_kwargs: Any,
) -> History:
    """Train ``net`` as ``d2l.train_ch6`` does, faster, and return its :class:`History`.

    ``train_iter`` / ``test_iter`` / ``val_iter``: iterables of ``(X, y)``. ``optimizer``: a
    name of :data:`OPTIMIZERS` (``"sgd"`` as d2l), an instance or a factory; extra keyword
    arguments go to it. ``device``: default CUDA when present. ``init``: ``"xavier"`` (d2l),
    ``None`` (keep the module's own) or a callable. ``loss``: see :func:`make_loss`.
    ``patience``: early stopping on ``val_iter`` (:class:`PatienceStopping`, epochs).
    ``checkpoint``: path of the best model (best validation accuracy, else the last epoch).
    ``state``: a full training state saved after every epoch; if the file exists the run
    *resumes* from it, and refuses (naming what changed) if the settings differ -- ``config``
    adds settings to that check (the ``train`` command passes its own). ``plot``: a live plot
    (``history.figure``). ``num_threads``: default the faster of 1 and all cores, measured.
    ``channels_last``: default on the CPU. ``compile``: ``torch.compile`` the network.
    ``eval_batch_size``: evaluation batches (default 1024, the fastest of 256..10000 measured on a
    2-core CPU; a network's outputs do not depend on it).
    ``fast``: train through the fused CPU operators of :mod:`lenet_utils.fastnet` when they apply
    to ``net`` (d2l's LeNet family, float32, CPU), else the plain way (``history.fast`` says
    which); their numerics differ from the plain path's, so a fast run records ``fast: True`` in
    its settings and :data:`~lenet_utils.fastnet.FAST_NUMERICS` in its versions.
    ``augment``: applied to every training batch. ``extra_eval``: more evaluation sets,
    ``{name: loader}`` -> ``history.extra[name]``. ``net`` ends with the *last* epoch's weights.
    """
    _check_arguments(epochs, patience, val_iter)
    device = engine.resolve_device(device)
    _initialise(net, init, seed)
    layout = _layout(net, device, channels_last)
    opt = make_optimizer(optimizer, net.parameters(), lr, **optimizer_kwargs)
    criterion = make_loss(loss)
    model, fast = _fast_model(net, train_iter) if fast else (net, False)
    config = {**(config or {}), "fast": True} if fast else config
    settings = _settings(net, train_iter, optimizer, lr, init, loss, seed, augment, optimizer_kwargs, config)
    h, start, saved = History(), 0, {}
    if state is not None and Path(state).is_file():
        h, start, saved = _resume(Path(state), net, opt, settings, train_iter, device)
        if h.stopped_epoch is not None or start >= epochs:
            return h
    stopper = _stopper(patience, saved)
    transform = layout if augment is None else (lambda X: layout(augment(X)) if layout else augment(X))
    task = engine.Task(
        torch.compile(model) if compile else model, opt, criterion, lambda epoch: train_iter,
        evals=_evals(test_iter, val_iter, extra_eval, eval_batch_size), predict=_predictor(net),
        transform=transform, device=device,
    )  # fmt: skip
    opts = {"checkpoint": checkpoint, "stopper": stopper, "progress": progress, "plot": plot, "title": title,
            "tensorboard": tensorboard, "state": state, "on_epoch_end": on_epoch_end}  # fmt: skip
    cbs = _callbacks(h, task, net, train_iter, epochs, start, settings, opts, list(extra_eval or {}), saved)
    n_threads = _threads_for(model, train_iter, criterion, device, layout is not None, num_threads)
    with threads(n_threads) as used:
        engine.run(task, epochs, start=start, callbacks=cbs)
    h.num_threads = used
    h.fast = fast  # type: ignore[attr-defined]
    return h
