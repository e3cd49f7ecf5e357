"""Argument validation with clear errors, and snapshot/restore of every user array.

Every check validates its arguments here before touching anything, and wraps its work
in :class:`Snapshot` so that the user's parameters are bit-identical afterwards, also
when their code raises midway or the user presses Ctrl-C.

>>> w = np.ones(3)
>>> with Snapshot({"w": w}):
...     w[0] = 5.0
>>> w
array([1., 1., 1.])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: Why half precision is refused rather than checked.
TOO_COARSE = ("half precision is too coarse for finite differences (a step small enough "
              "for the truncation error rounds away in its 3 significant digits)")


class CheckInputError(ValueError):
    """An argument handed to a check cannot be checked (shape, size, keys, values)."""


class CheckTypeError(TypeError):
    """An argument handed to a check has the wrong type or dtype."""


class NonFiniteError(CheckInputError):
    """The user's function or gradient produced NaN or Inf."""


class UserCodeError(RuntimeError):
    """The user's function, layer or model raised; the original exception is chained."""


class Snapshot:
    """Copies of named arrays, restored bit-identically on exit (always, even on interrupt).

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The arrays the check may perturb in place (layer or model parameters).
    owner : str
        Named in the error below.
    current : callable returning a mapping, optional
        Reads the owner's parameters again (a model builds its dict afresh on each
        access). On exit every entry must still be the same array object: the check
        perturbs parameters in place, so code that replaces ``params[k]`` with a new
        array never sees the perturbations and ends up holding perturbed values. Such an
        entry is put back where the mapping allows it and reported as a
        :class:`CheckInputError` (unless the user's code is already raising).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, owner: str = "the layer",
                 current: Callable[[], Mapping[str, np.ndarray]] | None = None) -> None:
        self._saved = [(key, arr, arr.copy()) for key, arr in arrays.items()]
        self._arrays = arrays
        self._owner = owner
        self._current = current if current is not None else (lambda: arrays)

    def restore(self) -> None:
        for _, arr, saved in self._saved:
            np.copyto(arr, saved, casting="no")

    def _rebound(self) -> list[str]:
        current = self._current()
        rebound = [key for key, arr, _ in self._saved if current.get(key) is not arr]
        if current is self._arrays and isinstance(current, dict):  # the layer's own dict
            current.update({key: arr for key, arr, _ in self._saved if key in rebound})
        return rebound

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.restore()
        rebound = self._rebound()
        if rebound and exc_type is None:
            names = ", ".join(f"params[{key!r}]" for key in rebound)
            raise CheckInputError(
                f"{self._owner} replaced {names} with a new array during the check; the "
                f"checker (like an optimizer) changes parameters in place, so update them "
                f"in place too (self.params[k][...] = new) and never rebind them")


def bit_identical(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two arrays have the same dtype, shape and bytes (NaN payloads, -0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def as_float_array(name: str, value: Any, *, allow_complex: bool = False) -> np.ndarray:
    """Validate a point to check at and return it as a float array (never the same object).

    >>> as_float_array("x", [1.0, 2.0]).dtype
    dtype('float64')
    """
    if value is None:
        raise CheckTypeError(f"{name} is None: pass a float array (the point to check at)")
    try:
        arr = np.array(value, copy=True)
    except (TypeError, ValueError) as err:  # ragged lists and the like
        raise CheckTypeError(f"{name} could not be converted to an array: {err}") from err
    kinds = "fc" if allow_complex else "f"
    if arr.dtype.kind in "iub":
        raise CheckTypeError(
            f"{name} has integer/bool dtype {arr.dtype}; finite differences need floats: "
            f"pass {name}.astype(np.float64)")
    if arr.dtype.kind not in kinds:
        raise CheckTypeError(f"{name} has dtype {arr.dtype}; pass a float64 or float32 array")
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        raise CheckTypeError(f"{name} has dtype {arr.dtype}: {TOO_COARSE}; pass "
                             f"{name}.astype(np.float32)")
    if arr.size == 0:
        raise CheckInputError(f"{name} is empty (shape {arr.shape}); there is nothing to check")
    require_finite(name, arr)
    return arr


def require_finite(name: str, arr: np.ndarray) -> None:
    """Raise :class:`NonFiniteError` naming the first NaN/Inf index of ``arr``."""
    finite = np.isfinite(arr)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        value = arr[index]
        raise NonFiniteError(f"{name} contains {value} at index {index}: checks need finite "
                             f"values; fix the computation that produced it")


def check_gradient_array(owner: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a gradient returned by user code: present, numeric, right shape, finite."""
    if value is None:
        raise CheckTypeError(f"{owner} is None: the gradient must be an array of shape {shape}"
                             f" (did backward forget to return or store it?)")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc" and arr.dtype.kind not in "iu":
        raise CheckTypeError(f"{owner} has dtype {arr.dtype}; return a float array")
    if arr.shape != tuple(shape):
        raise CheckInputError(f"{owner} has shape {arr.shape}, expected {tuple(shape)} "
                              f"(the shape of what it is the gradient of)")
    require_finite(owner, arr)
    return np.array(arr.real if arr.dtype.kind == "c" else arr, dtype=np.float64)


def check_params(owner: str, params: Any, grads: Any, *, allow_empty: bool = True) -> None:
    """Validate the ``params`` dict of a layer or model (types, writability, finiteness).

    ``grads`` must be a dict; its keys are compared with ``params`` after ``backward``
    (a layer may create its gradients there).
    """
    for attr, value in (("params", params), ("grads", grads)):
        if not isinstance(value, Mapping):
            raise CheckTypeError(
                f"{owner}.{attr} must be a dict of name -> ndarray (the layer protocol), got "
                f"{type(value).__name__}")
    if not params and not allow_empty:
        raise CheckInputError(f"{owner} has no parameters to check")
    for key, arr in params.items():
        where = f"{owner}.params[{key!r}]"
        if not isinstance(arr, np.ndarray):
            raise CheckTypeError(f"{where} is a {type(arr).__name__}, not an ndarray")
        if arr.dtype.kind != "f":
            raise CheckTypeError(f"{where} has dtype {arr.dtype}; parameters must be float "
                                 f"arrays (float64 or float32)")
        if arr.dtype.itemsize < 4:
            raise CheckTypeError(f"{where} has dtype {arr.dtype}: {TOO_COARSE}; check a "
                                 f"float32 or float64 copy of the layer")
        if arr.size == 0:
            raise CheckInputError(f"{where} is empty (shape {arr.shape})")
        if not arr.flags.writeable:
            raise CheckInputError(
                f"{where} is read-only; the checker perturbs parameters in place (and "
                f"restores them): pass writeable arrays (arr.setflags(write=True) or a copy)")
        require_finite(where, arr)


def require_callable(name: str, value: Any) -> Callable[..., Any]:
    """Return ``value`` if callable, else raise a :class:`CheckTypeError` naming it."""
    if not callable(value):
        raise CheckTypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def call_user(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call user code once, turning any exception into :class:`UserCodeError` (chained).

    The checker's own validation errors raised inside ``fn`` (a wrapper such as the
    ``jac`` adapter of ``check_jacobian``) pass through unchanged: they already name the
    problem, and blaming the user's code for them would mislead.
    """
    try:
        return fn(*args)
    except (CheckInputError, CheckTypeError):
        raise
    except Exception as err:
        raise UserCodeError(f"{what} raised {type(err).__name__}: {err}") from err


def scalar_output(owner: str, value: Any) -> float:
    """Validate that user code returned one finite real number and return it as a float."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise CheckInputError(
            f"{owner} must return a scalar, got an array of shape {arr.shape}; for "
            f"array-valued functions use check_jacobian")
    if arr.dtype.kind not in "fiuc":
        raise CheckTypeError(f"{owner} returned {type(value).__name__}; return a float")
    out = complex(arr.reshape(())) if arr.dtype.kind == "c" else float(arr.reshape(()))
    if isinstance(out, complex):
        out = out.real
    if not np.isfinite(out):
        raise NonFiniteError(f"{owner} returned {out} at the point to check; checks need a "
                             f"finite value")
    return out


def require_unmutated(owner: str, given: np.ndarray, original: np.ndarray) -> None:
    """Raise if user code changed an input array it was handed (gradient checks need purity)."""
    if not bit_identical(given, original):
        changed = np.argwhere(given != original)
        where = f" (first change at index {tuple(int(i) for i in changed[0])})" if len(
            changed) else ""
        raise CheckInputError(
            f"{owner} modified its input array in place{where}; the checker needs a pure "
            f"function: copy the input before modifying it (x = x.copy())")
