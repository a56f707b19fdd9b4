"""The examples in the pure modules' docstrings run as written (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose examples need no store, no files and no optional extra.
PURE = (
    "engine.spec",
    "engine.params",
    "engine.instants",
    "engine.query",
    "engine.plan",
    "engine.store.layout",
    "engine.render.fields",
)


@pytest.mark.parametrize("name", PURE)
def test_examples_run_as_written(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest example"
    assert result.failed == 0
