"""The ``>>>`` examples of the jax modules are true."""

import doctest
import importlib

import pytest

pytest.importorskip("jax")


@pytest.mark.parametrize("name", ["gradcheck.jax", "gradcheck.adapters.jax_adapter",
                                  "gradcheck.adapters.framework_bridge"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    if name == "gradcheck.jax":
        module.__all__  # noqa: B018 - the lazy names resolve
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
