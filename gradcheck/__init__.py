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

from gradcheck.checks import (
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
from gradcheck.result import CheckResult, GradientMismatch, TensorReport
from gradcheck.safety import CheckInputError, CheckTypeError, NonFiniteError, UserCodeError

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
    "assert_grad",
    "assert_hvp",
    "assert_jacobian",
    "assert_layer",
    "assert_model",
    "check_grad",
    "check_hvp",
    "check_jacobian",
    "check_layer",
    "check_model",
]
