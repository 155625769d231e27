"""The examples in the docstrings of the protocol and math modules run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "flow_core.protocols",
    "flow_core.paths.affine",
    "flow_core.paths.linear",
    "flow_core.objectives.timesteps",
    "flow_core.samplers.grids",
    "flow_core.metrics.distances",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
