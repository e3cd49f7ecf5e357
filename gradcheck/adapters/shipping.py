"""The serializer that ships a check's function to ``executor=`` workers.

cloudpickle (``pip install 'gradcheck[parallel]'``) pickles lambdas, closures and classes
defined in a test file or ``__main__``; without it the standard library's pickle is used,
which ships only functions and classes importable by name (the engine then names the
function that cannot be pickled and says what to install).

Either way an array that is a *view* of another array travels as a view of that
array's copy (the whole base is shipped once): plain pickle would copy the view on its
own, and a function reading the base (a complex input's ``(real, imag)`` view, a layer's
parameters that are slices of one flat buffer) would no longer see the worker perturb
the view. One pickle per payload keeps every shared reference shared.

>>> import pickle
>>> base = np.zeros(4)
>>> base2, view = pickle.loads(dumps_for_workers()((base, base[1:3])))
>>> view[0] = 5.0
>>> base2.tolist()
[0.0, 5.0, 0.0, 0.0]
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import numpy as np

from gradcheck.engine.options import Options


def view_of(base: np.ndarray, dtype: np.dtype, shape: tuple[int, ...], offset: int,
            strides: tuple[int, ...]) -> np.ndarray:
    """Rebuild a view of ``base`` (how :func:`dumps_for_workers` ships a view)."""
    return np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)


def _as_view(obj: Any) -> tuple[Callable[..., np.ndarray], tuple[Any, ...]] | None:
    """The reduction of a plain ndarray viewing a C-contiguous ndarray, else None."""
    if type(obj) is not np.ndarray:
        return None
    base = obj.base
    if type(base) is not np.ndarray or not base.flags.c_contiguous or base.base is not None:
        return None
    offset = obj.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return view_of, (base, obj.dtype, obj.shape, offset, obj.strides)


def _pickler_class() -> type[pickle.Pickler]:
    try:
        import cloudpickle
        parent: type[pickle.Pickler] = cloudpickle.Pickler
    except ImportError:
        parent = pickle.Pickler

    class ViewKeepingPickler(parent):  # type: ignore[valid-type,misc]
        def reducer_override(self, obj: Any) -> Any:
            found = _as_view(obj)
            if found is not None:
                return found
            inherited = getattr(super(), "reducer_override", None)
            return inherited(obj) if inherited is not None else NotImplemented

    return ViewKeepingPickler


def dumps_for_workers() -> Callable[[Any], bytes]:
    """A ``dumps``: cloudpickle's pickler when installed, else pickle's, keeping views."""
    pickler = _pickler_class()

    def dumps(obj: Any) -> bytes:
        buffer = io.BytesIO()
        pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buffer.getvalue()

    return dumps


def options_with_executor(owner: str, given: Mapping[str, Any], executor: Executor | None,
                          **engine: Any) -> Options:
    """``Options.of(owner, given)`` with ``executor=`` and the serializer its workers need.

    >>> options_with_executor("check_function", {"mode": "full"}, None).executor is None
    True
    """
    dumps = dumps_for_workers() if executor is not None else None
    return Options.of(owner, given, executor=executor, dumps=dumps, **engine)


__all__ = ["dumps_for_workers", "options_with_executor", "view_of"]
