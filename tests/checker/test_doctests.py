"""The ``>>>`` examples in the docstrings of the checker core are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gradcheck", "gradcheck.checks", "gradcheck.runner", "gradcheck.numeric",
           "gradcheck.fast", "gradcheck.taylor", "gradcheck.result", "gradcheck.safety",
           "gradcheck.tolerances", "gradcheck.diagnosis"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
