"""The ``>>>`` examples in the docstrings of the ways-in modules are true."""

from __future__ import annotations

import doctest
import importlib
import warnings

import pytest

MODULES = ["gradcheck.results.session_report", "gradcheck.ways_in.console", "gradcheck.ways_in.strategies",
           "gradcheck.zoo.verify", "gradcheck.ways_in.cli"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():  # strategies' examples use .example(), meant for docs
        warnings.simplefilter("ignore")
        outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
