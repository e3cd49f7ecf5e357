"""The ``>>>`` examples in the docstrings of the checker core are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gradcheck", "gradcheck.adapters.checks", "gradcheck.adapters.functions",
           "gradcheck.adapters.trees", "gradcheck.adapters.pairs", "gradcheck.adapters.objects", "gradcheck.engine.runner", "gradcheck.engine.numeric",
           "gradcheck.engine.fast", "gradcheck.engine.taylor", "gradcheck.results.result", "gradcheck.engine.safety",
           "gradcheck.engine.tolerances", "gradcheck.engine.systematic",
           "gradcheck.diagnosis.detectors", "gradcheck.adapters.diagnosis_facts"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
