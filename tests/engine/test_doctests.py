"""The ``>>>`` examples in the docstrings of the checker are true.

The modules are found, not listed: every module of ``gradcheck/`` (models and reference
have their own doctest tests) whose source holds an example, except those below.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import gradcheck

PACKAGE = Path(gradcheck.__file__).parent
#: Modules whose examples run elsewhere (they need an optional library) or are skipped
#: on purpose (the plugin's examples are test functions, marked ``+SKIP``).
ELSEWHERE = {
    "gradcheck.torch", "gradcheck.adapters.torch_adapter",  # tests/adapters/test_torch_doctests.py
    "gradcheck.jax", "gradcheck.adapters.jax_adapter",  # tests/adapters/test_jax_doctests.py
    "gradcheck.array_api", "gradcheck.adapters.array_api_adapter",  # needs array-api-strict
    "gradcheck.ways_in.pytest_plugin",
}


def _with_examples() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[1:2] in (("models",), ("reference",)):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if ">>> " in path.read_text() and name not in ELSEWHERE:
            found.append(name)
    return found


MODULES = _with_examples()


def test_the_modules_with_examples_are_found():
    assert {"gradcheck", "gradcheck.engine.options", "gradcheck.engine.numeric"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
