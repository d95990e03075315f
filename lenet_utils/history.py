"""What a training run records, epoch by epoch: :class:`History`.

The names are the engine's (:mod:`lenet_utils.engine`): ``train_loss`` and ``train_acc``
measured on the fly during the epoch, ``val_acc`` / ``test_acc`` after it, ``seconds`` and
``examples_per_sec`` of the training pass, ``batch_loss`` for every mini-batch, and further
evaluation sets in ``extra`` (``{name: [accuracy per epoch]}``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch record of a run (index ``e`` is epoch ``e + 1``).

    ``test_acc`` / ``val_acc`` hold ``nan`` when no such loader was given. ``batch_loss`` is
    the loss of every mini-batch in order (the reading notes plot it). ``best_epoch`` is the epoch
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

    def record(self, metrics: dict[str, Any], extra_names: list[str]) -> None:
        """Append one epoch of engine metrics (scalars) to the history."""
        self.train_loss.append(float(metrics["train_loss"]))
        self.train_acc.append(float(metrics["train_acc"]))
        self.val_acc.append(float(metrics.get("val_acc", math.nan)))
        self.test_acc.append(float(metrics.get("test_acc", math.nan)))
        self.seconds.append(float(metrics["seconds"]))
        self.examples_per_sec.append(float(metrics["examples_per_sec"]))
        self.batch_loss.extend(metrics["batch_loss"].tolist())
        for name in extra_names:
            self.extra.setdefault(name, []).append(float(metrics[f"{name}_acc"]))
