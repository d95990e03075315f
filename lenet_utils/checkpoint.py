"""The one checkpoint format: weights, settings, metrics, versions; atomic; safe to load.

A checkpoint is a dict saved with ``torch.save`` and read with ``torch.load(...,
weights_only=True)`` (tensors, numbers, strings, lists and dicts only: loading one cannot run
code)::

    {"format": "lenet_utils.checkpoint/1", "kind": "fit" | "paper" | ...,
     "model": state_dict, "config": {...settings...}, "fingerprint": "12 hex digits",
     "metrics": {...}, "state": {...what a resume needs: optimiser, RNG, epoch...},
     "versions": {"python", "torch", "numpy", "lenet_utils", "numerics"}}

It is written to a temporary file, ``fsync``'d and renamed into place
(:func:`lenet_utils.files.atomic_write`): a killed process never leaves half a checkpoint.
Files of the earlier formats (the paper runs' ``{"config", "model", "log"}`` and the trainer's
``{"model", ...}``) are read too, upgraded in memory; :func:`upgrade_file` rewrites one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_write
from .settings import as_dict, fingerprint, versions

__all__ = ["FORMAT", "CheckpointError", "MissingCheckpointError", "load", "save", "upgrade_file"]

FORMAT = "lenet_utils.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, of the wrong kind, or does not fit the network."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """There is no checkpoint at the path given."""


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def save(
    path: str | Path,
    model: nn.Module | Mapping[str, torch.Tensor],
    *,
    kind: str,
    config: Any,
    metrics: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    ignore: tuple[str, ...] = (),
) -> Path:
    """Write a checkpoint atomically; ``ignore`` names settings left out of the fingerprint."""
    weights = model.state_dict() if isinstance(model, nn.Module) else model
    config = as_dict(config)
    payload = {
        "format": FORMAT,
        "kind": kind,
        "model": _cpu(dict(weights)),
        "config": config,
        "fingerprint": fingerprint(config, ignore),
        "metrics": _cpu(dict(metrics or {})),
        "state": _cpu(dict(state or {})),
        "versions": versions(fast=bool(config.get("fast"))),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write(Path(path), buf.getvalue())


def _upgrade(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """A checkpoint of an earlier format in today's layout."""
    if raw.get("format") == FORMAT:
        return raw
    if "format" in raw:
        raise CheckpointError(f"{path}: unknown checkpoint format {raw['format']!r} (this lenet_utils reads {FORMAT})")
    if "model" not in raw:
        raise CheckpointError(f"{path} is not a lenet_utils checkpoint (no weights in it)")
    if "log" in raw and "config" in raw:  # paper runs before the format had a name
        state = {"optimizer": raw["optimizer"]} if "optimizer" in raw else {}
        return {"format": FORMAT, "kind": "paper", "model": raw["model"], "config": raw["config"],
                "fingerprint": fingerprint(raw["config"]), "metrics": {"log": raw["log"]}, "state": state,
                "versions": {}}  # fmt: skip
    rest = {k: v for k, v in raw.items() if k != "model"}
    return {"format": FORMAT, "kind": "fit", "model": raw["model"], "config": {}, "fingerprint": "",
            "metrics": {}, "state": rest, "versions": {}}  # fmt: skip


def load(
    path: str | Path,
    model: nn.Module | None = None,
    *,
    kind: str | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``); with ``model``, load its weights into it.

    Raises :class:`CheckpointError` naming the file when it is missing, unreadable, or of
    another ``kind`` than asked.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingCheckpointError(f"no checkpoint at {path}: train first (python -m lenet_utils train --out DIR)")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle, zip and EOF errors all mean: not a readable checkpoint
        why = f"{type(e).__name__}: {e}"
        raise CheckpointError(f"{path} is not a readable checkpoint ({why}); delete it and train again") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} is not a lenet_utils checkpoint")
    ckpt = _upgrade(raw, path)
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(f"{path} holds a {ckpt['kind']!r} checkpoint, not a {kind!r} one")
    if model is not None:
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"{path} does not fit this network: {first}") from None
    return ckpt


def upgrade_file(path: str | Path) -> bool:
    """Rewrite a checkpoint of an earlier format in today's (atomically); ``True`` if it changed."""
    path = Path(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        return False
    ckpt = _upgrade(raw, path)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write(path, buf.getvalue())
    return True
