"""The ``train`` command's work: a :class:`TrainConfig` in, a run folder out.

A run folder holds ``best.pt`` (best validation epoch, or the last), ``state.pt`` (everything
a resume needs), ``metrics.csv`` (one row per epoch, rewritten after each) and optionally the
per-batch loss. Running the same command again resumes; running it with other settings is
refused with the difference named (``lr: 0.9 -> 0.1``) unless ``force`` starts it afresh.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import atomic_write
from .history import History
from .zoo import MODELS as ZOO

__all__ = ["MODEL_SETUPS", "TrainConfig", "train_run"]

#: per model: (load_data keyword arguments, fit keyword arguments) that make the defaults right.
MODEL_SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "d2l": ({}, {"init": "xavier"}),
    "modern": ({"size": 32, "resize": True, "normalize": "standard"}, {"init": "xavier"}),
    "theano": ({}, {"init": "xavier"}),
    "gap": ({}, {"init": "xavier"}),
    "paper": ({"size": 32, "normalize": "paper"}, {"init": None, "loss": "map"}),
    # Part IV's zoo (lenet_utils.zoo): 28x28 inputs as stored, d2l's Xavier initialisation (d2l.init_cnn)
    **{name: ({}, {"init": "xavier"}) for name in ZOO if name != "lenet"},
}


@dataclass
class TrainConfig:
    """The settings of one ``python -m lenet_utils train`` run (defaults: d2l's, §7.6)."""

    model: str = "d2l"
    dataset: str = "fashion"
    epochs: int = 10
    lr: float = 0.9
    batch_size: int = 256
    optimizer: str = "sgd"
    momentum: float | None = None
    loss: str | None = None  # default per model (cross_entropy; map for the paper's network)
    init: str | None = None  # "xavier" or "default"; default per model
    val_size: int = 0
    patience: float | None = None
    size: int | None = None
    resize: bool = False
    normalize: str | None = None  # "none", "standard", "paper"; default per model
    train_subset: int | None = None
    seed: int = 0
    hflip: float = 0.0
    test_hflip: bool = False

    def problems(self) -> list[str]:
        """What is inconsistent in these settings (empty when they can run)."""
        out = []
        if not 0.0 <= self.hflip <= 1.0:
            out.append(f"--hflip is a probability in [0, 1], got {self.hflip}")
        if self.patience is not None and not self.val_size:
            out.append("--patience needs a validation split: add --val-size N (e.g. 10000)")
        if self.model == "paper" and self.loss not in (None, "map", "mle"):
            out.append("--model paper outputs RBF penalties: use --loss map or mle "
                       "(or `python -m lenet_utils train-paper` for the full 1998 recipe)")  # fmt: skip
        if self.model != "paper" and self.loss in ("map", "mle"):
            out.append(f"--loss {self.loss} works on RBF penalties: only with --model paper")
        if self.model == "paper" and self.size not in (None, 32):
            out.append("--model paper takes 32x32 inputs: drop --size or use --size 32")
        if self.model in ZOO and self.size not in (None, 28):
            out.append(f"--model {self.model} takes the 28x28 images as stored (the original sizes resize "
                       "inside the model): drop --size")  # fmt: skip
        if self.momentum is not None and self.optimizer not in ("sgd", "momentum", "nesterov"):
            out.append("--momentum applies to SGD only")
        return out


def _loaders(cfg: TrainConfig) -> tuple[Any, Any, Any, dict[str, Any]]:
    from . import data

    data_kw, fit_kw = (dict(d) for d in MODEL_SETUPS[cfg.model])
    if cfg.size is not None:
        data_kw["size"] = cfg.size
    if cfg.resize:
        data_kw["resize"] = True
    if cfg.normalize is not None:
        data_kw["normalize"] = None if cfg.normalize == "none" else cfg.normalize
    if cfg.loss is not None:
        fit_kw["loss"] = cfg.loss
    if cfg.init is not None:
        fit_kw["init"] = "xavier" if cfg.init == "xavier" else None
    if cfg.momentum is not None:
        fit_kw["momentum"] = cfg.momentum
    loaders = data.load_data(cfg.dataset, cfg.batch_size, val_size=cfg.val_size, seed=cfg.seed,
                             train_subset=cfg.train_subset, **data_kw)  # fmt: skip
    train_iter, *rest = loaders
    val_iter, test_iter = (rest[0], rest[1]) if cfg.val_size else (None, rest[0])
    fit_kw["model_kw"] = {"input_size": 32, "padding": 0} if cfg.model == "d2l" and data_kw.get("size") == 32 else {}
    return train_iter, val_iter, test_iter, fit_kw


def _after_epoch(epoch: int, h: History, *, metrics: Path, log: bool) -> None:
    """Rewrite the metrics CSV after every epoch (a long run can be read while it runs); log a line."""
    h.to_csv(metrics)
    if log:
        parts = [f"epoch {epoch}", f"loss {h.train_loss[-1]:.4f}", f"train acc {h.train_acc[-1]:.4f}"]
        parts += [f"{k} {getattr(h, k)[-1]:.4f}" for k in ("val_acc", "test_acc") if not math.isnan(getattr(h, k)[-1])]
        parts += [f"{k} {v[-1]:.4f}" for k, v in h.extra.items()]
        print(", ".join([*parts, f"{h.examples_per_sec[-1]:.0f} ex/s"]), flush=True)


def _write_batch_loss(h: History, per_epoch: int, path: Path) -> None:
    text = "step,epoch,loss\n" + "".join(f"{i + 1},{i // per_epoch + 1},{v:.6g}\n" for i, v in enumerate(h.batch_loss))
    atomic_write(path, text)
    print(f"per-batch loss ({len(h.batch_loss)} batches): {path}")


def train_run(cfg: TrainConfig, out: str | Path, *, device: str | None = None, threads: int | None = None,
              force: bool = False, progress: bool = True, metrics: str | Path | None = None,
              batch_loss: str | Path | None = None, tensorboard: bool = False) -> History:  # fmt: skip
    """Train as ``cfg`` says into the folder ``out`` (resumed if it holds a run of the same settings).

    Raises :class:`lenet_utils.settings.SettingsChangedError` when ``out`` holds a run of other
    settings and ``force`` is false; with ``force`` that run is deleted first.
    """
    from . import models, set_seed, zoo
    from .train import RandomHFlip, fit, hflip_loader

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for name in ("state.pt", "best.pt", "metrics.csv"):
            (out / name).unlink(missing_ok=True)
    train_iter, val_iter, test_iter, fit_kw = _loaders(cfg)
    set_seed(cfg.seed)
    model_kw = fit_kw.pop("model_kw")
    net = zoo.build(cfg.model) if cfg.model in ZOO else models.build_model(cfg.model, **model_kw)
    metrics_path = Path(metrics) if metrics else out / "metrics.csv"
    print(f"training {cfg.model} on {cfg.dataset} ({train_iter.num_examples} train, "
          f"{val_iter.num_examples if val_iter else 0} val, {test_iter.num_examples} test) with {cfg.optimizer} "
          f"lr={cfg.lr}, batch {cfg.batch_size}, {cfg.epochs} epochs -> {out}")  # fmt: skip
    h = fit(
        net, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr, optimizer=cfg.optimizer, device=device,
        val_iter=val_iter, patience=cfg.patience, checkpoint=out / "best.pt", state=out / "state.pt",
        progress=progress, seed=cfg.seed, tensorboard=(out / "tb") if tensorboard else None, num_threads=threads,
        augment=RandomHFlip(cfg.hflip, seed=cfg.seed) if cfg.hflip else None,
        on_epoch_end=functools.partial(_after_epoch, metrics=metrics_path, log=not progress),
        extra_eval={"test_acc_hflip": hflip_loader(test_iter)} if cfg.test_hflip else None,
        config={"command": "train", **dataclasses.asdict(cfg)}, **fit_kw,
    )  # fmt: skip
    h.to_csv(metrics_path)
    print(f"metrics: {metrics_path}")
    if batch_loss:
        _write_batch_loss(h, len(train_iter), Path(batch_loss))
    print(h.summary())
    if h.best_epoch is not None:
        print(f"best checkpoint: epoch {h.best_epoch} -> {out / 'best.pt'}")
    if h.stopped_epoch is not None:
        print(f"early stopping after epoch {h.stopped_epoch}")
    sys.stdout.flush()
    return h
