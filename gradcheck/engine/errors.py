"""The checker's exceptions (standard library only: the pytest plugin and the option
table import them without NumPy).

``CheckInputError`` and ``CheckTypeError`` are what bad arguments raise (a ``ValueError``
and a ``TypeError``, so ordinary handlers catch them); ``NonFiniteError`` is NaN or Inf
where a number is needed; ``UserCodeError`` wraps an exception raised by the user's code,
the original chained as its ``__cause__``.
"""

from __future__ import annotations


class CheckInputError(ValueError):
    """An argument handed to a check cannot be checked (shape, size, keys, values)."""


class CheckTypeError(TypeError):
    """An argument handed to a check has the wrong type or dtype."""


class NonFiniteError(CheckInputError):
    """The user's function or gradient produced NaN or Inf."""


class UserCodeError(RuntimeError):
    """The user's function, layer or model raised; the original exception is chained."""


__all__ = ["CheckInputError", "CheckTypeError", "NonFiniteError", "UserCodeError"]
