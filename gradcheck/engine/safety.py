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

import inspect
import mmap
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradcheck.engine.blocks import spans
from gradcheck.engine.errors import CheckInputError, CheckTypeError, NonFiniteError, UserCodeError

#: Why half precision is refused rather than checked.
TOO_COARSE = ("half precision is too coarse for finite differences (a step small enough "
              "for the truncation error rounds away in its 3 significant digits)")


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
    """True when two arrays have the same dtype, shape and bytes (NaN payloads, -0.0).

    Compared block by block: ``tobytes`` of two whole arrays would copy both.
    """
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    return all(flat_a[lo:hi].tobytes() == flat_b[lo:hi].tobytes()
               for lo, hi in spans(flat_a.size))


def as_float_array(name: str, value: Any, *, allow_complex: bool = False) -> np.ndarray:
    """Validate a point to check at and return it as a float array (never the same object).

    >>> as_float_array("x", [1.0, 2.0]).dtype
    dtype('float64')
    """
    if value is None:
        raise CheckTypeError(f"{name} is None: pass a float array (the point to check at)")
    refuse_array_subclass(name, value)
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
    refuse_array_subclass(owner, value)
    require_finite(owner, arr)
    return np.array(real_part(owner, arr), dtype=np.float64)


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
        refuse_array_subclass(where, arr)
        refuse_file_backed(where, arr)
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


#: Failures that are never skipped, not even at a probe input off the point to check.
FATAL = (MemoryError, RecursionError)


class OffPointFailure(Exception):
    """A probe call at an input *other* than the point to check failed in a skippable way.

    Raised by :func:`off_point`; ``str()`` is the note to show. The original exception
    is chained.
    """


def off_point(describe: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a probe at an input off the point to check (a shifted input, another input).

    Such an input may lie outside the function's domain, so the user's own exceptions
    and NaN/Inf outputs there become :class:`OffPointFailure` (the probe is then skipped
    with a note). Never skipped: ``MemoryError``, ``RecursionError`` (wrapped as
    :class:`UserCodeError`, chained), ``KeyboardInterrupt`` and other
    ``BaseException``, and every other checker error (wrong type, shape or keys: garbage
    is garbage anywhere).
    """
    try:
        return fn(*args)
    except FATAL as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__}: {err}") from err
    except UserCodeError as err:
        if isinstance(err.__cause__, FATAL):
            raise
        raise OffPointFailure(f"{describe} raised {type(err.__cause__).__name__} on a "
                              f"shifted input") from err
    except NonFiniteError as err:
        raise OffPointFailure(f"{describe} gave a non-finite value on a shifted "
                              f"input") from err


def require_numeric(owner: str, value: Any) -> None:
    """Refuse an output that is no number or array of numbers (None, text, a tuple)."""
    if value is None or isinstance(value, (str, bytes, tuple, list, dict)):
        raise CheckTypeError(f"{owner} returned {type(value).__name__}; it must return a "
                             f"float or a float array")
    if np.asarray(value).dtype.kind not in "fiuc":
        raise CheckTypeError(f"{owner} returned dtype {np.asarray(value).dtype}; it must "
                             f"return floats")


def scalar_output(owner: str, value: Any) -> float:
    """Validate that user code returned one finite real number and return it as a float."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise CheckInputError(
            f"{owner} must return a scalar, got an array of shape {arr.shape}; for "
            f"array-valued functions use check_jacobian")
    if arr.dtype.kind not in "fiuc":
        raise CheckTypeError(f"{owner} returned {type(value).__name__}; return a float")
    out = float(real_part(owner, arr).reshape(()))
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


def real_part(owner: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` itself if real; the real part of a complex array whose imaginary part is 0.

    A nonzero imaginary part is refused (:class:`CheckTypeError`): dropping it silently
    would check a different function than the user wrote.

    >>> real_part("f", np.array([1 + 0j])).dtype
    dtype('float64')
    """
    if arr.dtype.kind != "c":
        return arr
    imag = np.imag(arr)
    if np.any(imag != 0):
        index = tuple(int(i) for i in np.argwhere(imag != 0)[0]) if arr.ndim else ()
        raise CheckTypeError(
            f"{owner} is complex ({arr.dtype}) with a nonzero imaginary part (at index "
            f"{index}: {arr[index]!r}); the check compares real derivatives: return real "
            f"values (for complex-step differences use method='complex' on a real f)")
    return np.real(arr)


def refuse_array_subclass(name: str, value: Any) -> None:
    """Refuse ``np.matrix`` (2-D only, ``*`` is a matrix product) and masked arrays.

    A masked array's mask would be ignored (finite differences would move masked entries
    too), so it is refused rather than silently unmasked.
    """
    if isinstance(value, np.matrix):
        raise CheckTypeError(f"{name} is an np.matrix; its operators and indexing differ "
                             f"from ndarray's: pass np.asarray({name})")
    if isinstance(value, np.ma.MaskedArray):
        raise CheckTypeError(f"{name} is a masked array; the check would ignore its mask: pass "
                             f"{name}.filled(value) or {name}.data explicitly")


def file_backed(arr: np.ndarray) -> bool:
    """True when ``arr``'s memory belongs to a file (``np.memmap``, a view of an ``mmap``).

    >>> file_backed(np.ones(3))
    False
    """
    base: Any = arr
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None) if isinstance(base, np.ndarray) else (
            getattr(base, "obj", None) if isinstance(base, memoryview) else None)
    return False


def refuse_file_backed(where: str, arr: np.ndarray) -> None:
    """Refuse a parameter whose memory is a file: a check perturbs parameters in place.

    Restoring afterwards is not enough for a file: a crash or ``kill -9`` midway (the OOM
    killer, a CI time-out) would leave the perturbed values on disk.
    """
    if file_backed(arr):
        raise CheckInputError(
            f"{where} is backed by a file (np.memmap or mmap); the checker perturbs "
            f"parameters in place, so a crash midway would leave the file changed: check a "
            f"copy of the layer whose parameters are in memory (params[k] = np.array(params[k]))")


def require_instance(name: str, value: Any, what: str = "a layer") -> None:
    """Refuse a class passed where an instance is meant (``check_layer(MyLayer, x)``)."""
    if inspect.isclass(value):
        raise CheckTypeError(f"{name} is the class {value.__name__}, not an instance: pass "
                             f"{value.__name__}(...) ({what} object)")


