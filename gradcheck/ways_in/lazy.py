"""Public names loaded on first use (PEP 562), for ``gradcheck``, ``gradcheck.torch``,
``gradcheck.jax`` and ``gradcheck.array_api``.

Those modules are imported by pytest's plugin discovery and by user code that may never
run a check, so they import nothing heavy themselves: each public name is looked up in
its defining module when first accessed, then cached in the public module.

>>> import sys, types
>>> public = types.ModuleType("demo")
>>> sys.modules["demo"] = public
>>> public.__all__ = ["sqrt"]
>>> public.__getattr__, public.__dir__ = lazy_exports("demo", {"sqrt": "math"})
>>> from demo import sqrt
>>> sqrt(4.0), "sqrt" in vars(public)  # found in math, then cached
(2.0, True)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(public: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of module ``public``.

    Parameters
    ----------
    public : str
        The public module's name (``__name__``); it must be in ``sys.modules``, as it is
        while its own body runs.
    exports : mapping of str to str
        Public name -> the module that defines it.

    Returns
    -------
    (__getattr__, __dir__)
        ``__getattr__`` imports the defining module on first access and caches the
        value in the public module; any other name raises AttributeError.
        ``__dir__`` lists the module's ``__all__``.
    """
    namespace = sys.modules[public].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {public!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", exports))

    return __getattr__, __dir__
