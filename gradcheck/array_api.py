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

from typing import TYPE_CHECKING

from gradcheck.ways_in.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.adapters.array_api_adapter import assert_function, check_function

__all__ = ["assert_function", "check_function"]

__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(__all__, "gradcheck.adapters.array_api_adapter"))
