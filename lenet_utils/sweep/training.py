"""Training one point of a sweep: its data and network, and the two engines.

:func:`train_single` trains one seed through :func:`lenet_utils.train.fit`, the reference path.
Small batches spend their time in Python and dispatch overhead, not in arithmetic, so
:func:`train_batched` trains several seeds of one configuration as *one* model:
``torch.func.stack_module_state`` stacks the seeds' weights, ``torch.func.vmap`` over
``torch.func.functional_call`` runs them side by side, each seed with its own initialisation
and its own data order (exactly the ones the single-seed path would use), so the result is
the same as calling :func:`lenet_utils.train.fit` once per seed, up to floating-point
rounding (``tests/test_sweep.py`` checks this). :func:`engine_for` picks the engine of a point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import engine
from ..engine import Callback, Task, resolve_device
from ..seeds import SeedStack, seed_batches, stacked_cross_entropy
from .results import Result
from .spec import AUTO_BATCHED_MAX, setting

__all__ = ["build_net", "engine_for", "init_net", "load_tensors", "train_batched", "train_single"]


def load_tensors(config: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_train, y_train, X_test, y_test)`` as :func:`lenet_utils.data.load_data` prepares them."""
    from .. import data

    train, test = data.load_data(config["dataset"], config["batch_size"], train_subset=config["train_subset"] or None)
    Xte, yte = test.X, test.y
    if config["test_subset"]:
        Xte, yte = Xte[: config["test_subset"]], yte[: config["test_subset"]]
    return train.X, train.y, Xte, yte


def build_net(config: dict[str, Any]) -> nn.Module:
    """The configuration's network: a network of the zoo (:func:`lenet_utils.zoo.build`) when
    ``model`` names one, else d2l's LeNet with the knobs (:func:`lenet_utils.models.lenet_d2l`).

    ``activation="relu_conv"`` is Li's report's change: ReLU after the two convolutions, the
    sigmoids of the dense layers kept. (``"relu"`` puts ReLU everywhere.) Activations have no
    parameters, so swapping them does not change the random initialisation.
    """
    from ..models import lenet_d2l
    from ..zoo import build

    if setting(config, "model") != "lenet":
        return build(config["model"])
    act = "relu" if config["activation"] == "relu_conv" else config["activation"]
    net = lenet_d2l(activation=act, pool=config["pool"], c1_kernel=config["c1_kernel"], pool_size=config["pool_size"])
    if config["activation"] == "relu_conv":
        for i in range(1, len(net)):
            if isinstance(net[i - 1], nn.Linear) and isinstance(net[i], nn.ReLU):
                net[i] = nn.Sigmoid()
    return net


def init_net(config: dict[str, Any], seed: int) -> nn.Module:
    """The network of ``seed`` as :func:`train_single` has it after ``fit``'s initialisation.

    ``set_seed(seed)`` then build (PyTorch's default init, kept for the biases), then what
    ``fit(..., seed=seed, init="xavier")`` does: ``set_seed(seed)`` again and Xavier weights.
    """
    from .. import set_seed
    from ..train import init_xavier

    set_seed(seed)
    net = build_net(config)
    set_seed(seed)
    init_xavier(net)
    return net


def train_single(
    config: dict[str, Any],
    seed: int,
    *,
    num_threads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    device: str | torch.device | None = "cpu",
) -> Result:
    """One run through the ordinary trainer, :func:`lenet_utils.train.fit` (the reference path)."""
    from .. import set_seed
    from ..data import TensorLoader
    from ..train import fit

    Xtr, ytr, Xte, yte = load_tensors(config)
    train_iter = TensorLoader(Xtr, ytr, config["batch_size"], shuffle=True, seed=seed)
    test_iter = TensorLoader(Xte, yte, config["batch_size"])
    set_seed(seed)
    net = build_net(config)
    t0, c0 = time.perf_counter(), time.process_time()
    history = fit(
        net, train_iter, test_iter, epochs=config["epochs"], lr=config["lr"], optimizer=config["optimizer"],
        device=device, init="xavier", seed=seed, progress=False, num_threads=num_threads,
        on_epoch_end=(lambda e, h: on_epoch_end(1)) if on_epoch_end else None,
    )  # fmt: skip
    return Result(
        history.train_loss, history.train_acc, history.test_acc,
        time.perf_counter() - t0, time.process_time() - c0, "fit",
    )  # fmt: skip


_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adam": torch.optim.Adam,
}


class _Tick(Callback):
    def __init__(self, fn: Callable[[int], None], seeds: int) -> None:
        self.fn, self.seeds = fn, seeds

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        self.fn(self.seeds)
        return None


def train_batched(
    config: dict[str, Any],
    seeds: Sequence[int],
    *,
    num_threads: int | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    eval_batch_size: int = 2000,
    device: str | torch.device | None = "cpu",
) -> list[Result]:
    """Train one configuration for several seeds at once, as one :class:`~lenet_utils.seeds.SeedStack`.

    Each seed gets exactly what :func:`train_single` would give it: the network initialised
    by :func:`init_net`, and the training order of ``TensorLoader(..., shuffle=True,
    seed=seed)`` (:func:`lenet_utils.seeds.seed_batches`). Metrics follow ``fit`` (and
    ``d2l.train_ch6``): train loss and accuracy on the fly, test accuracy after each epoch.
    """
    from ..data import TensorLoader
    from ..threads import configure_threads

    if not seeds:
        raise ValueError("train_batched needs at least one seed")
    configure_threads(num_threads)
    dev = resolve_device(device)
    Xtr, ytr, Xte, yte = (t.to(dev) for t in load_tensors(config))
    t0, c0 = time.perf_counter(), time.process_time()
    stack = SeedStack([init_net(config, s).to(dev) for s in seeds])
    opt = _OPTIMIZERS[config["optimizer"]](stack.parameters(), lr=config["lr"])
    bs = config["batch_size"]
    task = Task(stack, opt, stacked_cross_entropy, lambda epoch: seed_batches(Xtr, ytr, seeds, bs, epoch),
                evals={"test": TensorLoader(Xte, yte, eval_batch_size)}, device=dev)  # fmt: skip
    epochs = engine.run(task, config["epochs"], callbacks=[_Tick(on_epoch_end, len(seeds))] if on_epoch_end else [])
    wall, cpu, S = time.perf_counter() - t0, time.process_time() - c0, len(seeds)
    series = {k: torch.stack([e[k] for e in epochs]).T.tolist() for k in ("train_loss", "train_acc", "test_acc")}
    return [
        Result(series["train_loss"][i], series["train_acc"][i], series["test_acc"][i], wall / S, cpu / S, "batched", S)
        for i in range(S)
    ]


def engine_for(config: dict[str, Any], engine: str) -> str:
    if setting(config, "model") != "lenet":  # BN's running statistics cannot be updated under vmap
        if engine == "batched":
            raise ValueError(f"the batched engine trains d2l's LeNet only, not {config['model']}: use --engine fit")
        return "fit"
    if engine != "auto":
        return engine
    return "batched" if config["batch_size"] <= AUTO_BATCHED_MAX else "fit"
