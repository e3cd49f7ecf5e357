"""gradcheck: prove backpropagation code right.

Three sources of truth held against each other: exact derivatives (SymPy, in
``gradcheck.reference``), analytic hand-written backprop (NumPy, in
``gradcheck.models``), and numeric finite differences (this package's checker core).

Importing ``gradcheck`` loads the checker core only (NumPy): never SymPy, the model zoo
or the references.

>>> import numpy as np, gradcheck
>>> gradcheck.check_grad(lambda x: np.sum(x**2), lambda x: 2 * x, np.ones(3)).ok
True
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gradcheck.ways_in.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from gradcheck.adapters.checks import (
        assert_grad,
        assert_hvp,
        assert_jacobian,
        assert_layer,
        assert_model,
        check_grad,
        check_hvp,
        check_jacobian,
        check_layer,
        check_model,
    )
    from gradcheck.adapters.functions import assert_function, check_function
    from gradcheck.adapters.objects import assert_loss, assert_object, check_loss, check_object
    from gradcheck.adapters.pairs import assert_pair, check_pair
    from gradcheck.engine.safety import (
        CheckInputError,
        CheckTypeError,
        NonFiniteError,
        UserCodeError,
    )
    from gradcheck.results.result import CheckResult, GradientMismatch, TensorReport

# In a source checkout models/ and reference/ sit beside gradcheck/ (pyproject.toml maps
# them to gradcheck.models and gradcheck.reference on install); let the checkout's
# gradcheck find them too, e.g. for `python -m gradcheck` run from the repository root.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if (os.path.isfile(os.path.join(_checkout, "models", "__init__.py"))
        and not os.path.isdir(os.path.join(__path__[0], "models"))):
    __path__.append(_checkout)

# Public name -> defining module. Loaded on first access (PEP 562), so that the pytest
# plugin, which pytest imports in every session of every project that has gradcheck
# installed, costs nothing until a check actually runs.
_EXPORTS = {
    **dict.fromkeys(["assert_grad", "assert_hvp", "assert_jacobian", "assert_layer",
                     "assert_model", "check_grad", "check_hvp", "check_jacobian",
                     "check_layer", "check_model"], "gradcheck.adapters.checks"),
    **dict.fromkeys(["assert_function", "check_function"], "gradcheck.adapters.functions"),
    **dict.fromkeys(["assert_pair", "check_pair"], "gradcheck.adapters.pairs"),
    **dict.fromkeys(["assert_loss", "assert_object", "check_loss", "check_object"],
                    "gradcheck.adapters.objects"),
    **dict.fromkeys(["CheckResult", "GradientMismatch", "TensorReport"], "gradcheck.results.result"),
    **dict.fromkeys(["CheckInputError", "CheckTypeError", "NonFiniteError", "UserCodeError"],
                    "gradcheck.engine.safety"),
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__version__ = "0.1.0"

__all__ = [
    "CheckInputError",
    "CheckResult",
    "CheckTypeError",
    "GradientMismatch",
    "NonFiniteError",
    "TensorReport",
    "UserCodeError",
    "__version__",
    "assert_function",
    "assert_grad",
    "assert_hvp",
    "assert_jacobian",
    "assert_layer",
    "assert_loss",
    "assert_model",
    "assert_object",
    "assert_pair",
    "check_function",
    "check_grad",
    "check_hvp",
    "check_jacobian",
    "check_layer",
    "check_loss",
    "check_model",
    "check_object",
    "check_pair",
]
