"""The ``>>>`` examples in the docstrings of ``gradcheck.models`` are true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gradcheck.models

MODULES = sorted(info.name for info in pkgutil.iter_modules(gradcheck.models.__path__))


def test_every_module_is_listed():
    assert {"activations", "dense", "losses", "network", "data", "train"} <= set(MODULES)


@pytest.mark.parametrize("name", ["__init__", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module("gradcheck.models" if name == "__init__"
                                     else f"gradcheck.models.{name}")
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
