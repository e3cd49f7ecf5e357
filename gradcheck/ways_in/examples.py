"""The ``gradcheck_example()`` contract, stated once.

A layer class may define a classmethod ``gradcheck_example()`` that returns ``(layer, x)``:
an instance and an input to check it at. ``gradcheck check FILE.py:Class`` and the pytest
plugin's ``--gradcheck-layers=MODULE`` both read it through :func:`layer_example`.

>>> import numpy as np
>>> class Scale:
...     @classmethod
...     def gradcheck_example(cls): return cls(), np.ones((2, 3))
>>> layer, x = layer_example(Scale)
>>> x.shape
(2, 3)
"""

from __future__ import annotations

from typing import Any

#: The classmethod's name.
EXAMPLE_METHOD = "gradcheck_example"


class ExampleError(TypeError):
    """A ``gradcheck_example()`` that does not keep the contract."""


def has_example(cls: type) -> bool:
    """Does ``cls`` define a callable ``gradcheck_example``?"""
    return callable(getattr(cls, EXAMPLE_METHOD, None))


def layer_example(cls: type) -> tuple[Any, Any]:
    """``cls.gradcheck_example()`` checked to be ``(layer, x)``; else :class:`ExampleError`."""
    built = getattr(cls, EXAMPLE_METHOD)()
    if not (isinstance(built, tuple) and len(built) == 2):
        raise ExampleError(f"{cls.__qualname__}.{EXAMPLE_METHOD}() must return (layer, x), "
                           f"got {type(built).__name__}")
    return built


__all__ = ["EXAMPLE_METHOD", "ExampleError", "has_example", "layer_example"]
