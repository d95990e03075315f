"""The examples in lenet_utils' docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lenet_utils

# every module but the command-line entry point (importing it runs the command)
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(lenet_utils.__path__, "lenet_utils.")
    if m.name != "lenet_utils.__main__"
)


def test_some_modules_have_examples() -> None:
    with_examples = [
        name
        for name in MODULES
        if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))
    ]
    assert "lenet_utils.scripts" in with_examples and "lenet_utils.page" in with_examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
