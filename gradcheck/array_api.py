"""``gradcheck.array_api``: check functions of array API arrays (needs ``array-api-compat``).

For NumPy-like libraries that implement the array API standard (array-api-strict, CuPy,
...): the same :func:`~gradcheck.check_function` (a ``vjp`` and/or ``jvp`` against finite
differences), with every evaluation of the user's code made in the arrays' own namespace
and on their own device:

>>> import array_api_strict as xp
>>> from gradcheck.array_api import check_function
>>> x = xp.asarray([0.3, 1.2], dtype=xp.float32)
>>> check_function(xp.tanh, x, vjp=lambda g, x: g * (1 - xp.tanh(x) ** 2)).ok
True

This module imports nothing heavy itself: the adapter (and ``array_api_compat``) are
imported on first use of a name below (``import gradcheck`` never imports them). See
:mod:`gradcheck.adapters.array_api_adapter` for how arrays and devices are handled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.adapters.array_api_adapter import assert_function, check_function

__all__ = ["assert_function", "check_function"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'gradcheck.array_api' has no attribute {name!r}")
    value = getattr(importlib.import_module("gradcheck.adapters.array_api_adapter"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
