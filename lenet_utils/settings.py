"""Fingerprints of training settings, and the readable difference between two of them.

Every resumable artefact (a ``train`` output folder, a paper run, a sweep row) records the
settings that made it and their fingerprint. Resuming with other settings is refused with the
difference spelled out (``lr: 0.9 -> 0.1``), never silently mixed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SettingsChangedError", "as_dict", "check_same", "diff", "fingerprint", "versions"]


class SettingsChangedError(ValueError):
    """A run is resumed with settings other than the ones it was started with."""


def as_dict(settings: Any) -> dict[str, Any]:
    """A dataclass instance or a mapping as a plain dict."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return dataclasses.asdict(settings)
    return dict(settings)


def fingerprint(settings: Any, ignore: Iterable[str] = ()) -> str:
    """12 hex digits of the SHA-256 of the settings (canonical JSON, keys sorted), less ``ignore``."""
    skip = set(ignore)
    d = {k: v for k, v in as_dict(settings).items() if k not in skip}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def diff(saved: Mapping[str, Any], now: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """``["lr: 0.9 -> 0.1", ...]``: every setting that differs, in a stable order."""
    skip = set(ignore)
    keys = [k for k in dict.fromkeys([*saved, *now]) if k not in skip]
    missing = "(not set)"
    return [
        f"{k}: {saved.get(k, missing)!r} -> {now.get(k, missing)!r}".replace("'", "")
        for k in keys
        if saved.get(k, missing) != now.get(k, missing)
    ]


def check_same(saved: Any, now: Any, *, where: str, ignore: Iterable[str] = (), way_out: str = "--restart") -> None:
    """Raise :class:`SettingsChangedError` naming what differs between ``saved`` and ``now``."""
    changes = diff(as_dict(saved), as_dict(now), ignore)
    if changes:
        raise SettingsChangedError(
            f"{where} was made with other settings ({'; '.join(changes)}): run with the same settings to "
            f"resume, use another output folder, or add {way_out} to start it again from scratch"
        )


def versions(*, fast: bool = False) -> dict[str, str]:
    """Python, torch, numpy and lenet_utils versions, and the loop's :data:`~lenet_utils.engine.NUMERICS`
    (:data:`~lenet_utils.fastnet.FAST_NUMERICS` for a run trained with ``fast=True``)."""
    import numpy
    import torch

    from . import __version__
    from .engine import NUMERICS
    from .fastnet import FAST_NUMERICS

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "lenet_utils": __version__,
        "numerics": str(FAST_NUMERICS if fast else NUMERICS),
    }
