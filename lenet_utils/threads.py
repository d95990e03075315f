"""How many CPU threads a run uses: counted, set, and (for ``fit``) measured.

LeNet's layers are small (6 channels of 28x28), so splitting one operation over threads buys
little and costs a synchronisation per operation; on a machine shared with other jobs a
thread that waits for a busy core stalls every operation. So the trainer measures rather than
guesses (:func:`probe_threads`), and the sweeps run one thread per process.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

__all__ = ["available_cores", "configure_threads", "probe_threads", "threads"]


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


@contextlib.contextmanager
def threads(num_threads: int | None) -> Iterator[int]:
    """Run a block with ``num_threads`` intra-op threads; restore the previous count after."""
    before = torch.get_num_threads()
    try:
        yield configure_threads(num_threads)
    finally:
        torch.set_num_threads(before)


def probe_threads(
    net: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    candidates: Sequence[int] | None = None,
    steps: int = 3,
) -> int:
    """Time a few forward/backward passes of a *copy* of ``net`` at each thread count; return the fastest.

    Measured on the 2-core machine this book was built on, with other jobs running, 1 thread
    trained the d2l net 2-8x faster than 2 threads; on an idle machine 2 threads can win. The
    network and its optimiser are untouched (a deep copy is timed, on the real batch size).
    """
    candidates = sorted(set(candidates or (1, available_cores())))
    if len(candidates) == 1:
        return candidates[0]
    probe = copy.deepcopy(net)
    best, best_t = candidates[0], math.inf
    with threads(None):
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
    return best
