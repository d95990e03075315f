"""Argument types shared by every command: a size, count or rate must be positive, and the
message says which value was wrong."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["nonneg_int", "positive_float", "positive_int", "probability"]

T = TypeVar("T", int, float)


def _checked(convert: Callable[[str], T], ok: Callable[[T], bool], expected: str) -> Callable[[str], T]:
    """An argparse ``type=`` that converts the text and refuses values outside ``ok``."""

    def parse(text: str) -> T:
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return v

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


#: an integer >= 1 (sizes, counts, epochs, threads)
positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
#: an integer >= 0 (a seed, a size where 0 means none)
nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
#: a finite number > 0 (learning rates, damping, patience)
positive_float = _checked(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
#: a number in [0, 1]
probability = _checked(float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")
