"""The ``>>>`` examples of the torch modules are true."""

import doctest
import importlib

import pytest

pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["gradcheck.torch", "gradcheck.adapters.torch_adapter",
                                  "gradcheck.adapters.framework_bridge"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    if name == "gradcheck.torch":
        module.__all__  # noqa: B018 - the lazy names resolve
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
