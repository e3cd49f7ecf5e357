"""The ``>>>`` examples in the docstrings of ``gradcheck.reference`` are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["__init__", "exact", "derive", "document", "lambdified", "vector", "networks", "recurrent", "convolution",
           "evidence", "plots", "render_md", "render_tex", "render_html", "report",
           "report_cli", "backprop", "layers", "layer_evidence", "teaching"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module("gradcheck.reference" if name == "__init__"
                                     else f"gradcheck.reference.{name}")
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
