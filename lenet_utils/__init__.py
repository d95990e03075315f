"""lenet_utils — the helper package of *LeNet-5, from the paper to PyTorch*.

One module per job: ``data`` (fetching and loading MNIST / Fashion-MNIST), ``layers``
(the paper's building blocks), ``models`` (the LeNet variants), and the modules added by
later chapters (training, sweeps, plots, widgets). Import what you need, e.g.
``from lenet_utils import data, models``.
"""

from __future__ import annotations

import os

import torch

__version__ = "0.1.0"
__all__ = ["__version__", "device", "set_seed"]


def device() -> torch.device:
    """CUDA when present (e.g. on Colab), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) for repeatable runs on one machine."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
