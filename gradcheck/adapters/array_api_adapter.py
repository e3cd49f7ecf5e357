"""Plain functions on array API arrays (array-api-strict, CuPy, ...): ``check_function``.

Imported only through :mod:`gradcheck.array_api` (never by ``import gradcheck``); needs
``array-api-compat`` (``pip install gradcheck[array-api]``). A library that implements
the `array API standard <https://data-apis.org/array-api/>`_ has no autodiff of its own
that gradcheck could use, so the check is :func:`gradcheck.check_function`'s: the user
hands ``f`` and a ``vjp`` and/or ``jvp`` written with the library, and gradcheck holds
them against finite differences.

How arrays are handled
----------------------
* An argument leaf is an array API array when it has ``__array_namespace__`` and is not
  a NumPy array; its namespace and device are read with ``array_api_compat``
  (``array_namespace``, ``device``). NumPy arrays and constants pass through unchanged.
* The engine works on host NumPy copies (``np.from_dlpack``; a CuPy array by
  ``.get()``); the user's arrays are never written.
* **Every evaluation** of ``f``, ``vjp`` and ``jvp`` gets fresh arrays in the leaf's own
  namespace, on the leaf's own device (``xp.asarray(host, device=...)``): the user's
  code runs where its arrays live (on a GPU for CuPy), and only what it returns comes
  back to the host. That is one host→device copy of every input and one device→host
  copy of every output per evaluation — the price of a library without autodiff;
  for PyTorch and JAX use :mod:`gradcheck.torch` / :mod:`gradcheck.jax`, which keep
  the working copies on the device and reduce there.
* Cotangents handed to ``vjp`` are built in the namespace and device of the output they
  belong to; tangents handed to ``jvp`` in those of their argument leaf.
* dtypes follow :func:`~gradcheck.check_function`: a float32 leaf is differenced through
  a float64 copy (float32 steps) when ``f`` accepts float64, else in float32.

Only array-api-strict is tested here; CuPy (no GPU on the test machines) is handled by
the same code path, with ``.get()`` as its way back to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

from gradcheck.adapters.functions import check_function as _check_function
from gradcheck.adapters.functions import raise_unless_ok
from gradcheck.adapters.trees import flatten, rebuild
from gradcheck.engine.options import CheckOptions, documents_options
from gradcheck.engine.safety import CheckInputError
from gradcheck.results.result import CheckResult

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclass(frozen=True)
class Home:
    """Where an array API leaf lives: its namespace (``xp``) and its device."""

    xp: Any
    device: Any

    def put(self, host: Any) -> Any:
        """``host`` (a NumPy array) as an array of this namespace on this device."""
        if not isinstance(host, np.ndarray):
            return host  # a Python number, None: as it is
        return self.xp.asarray(host, device=self.device)


def is_array_api(value: Any) -> bool:
    """An array of an array API library other than NumPy (``__array_namespace__``)."""
    return hasattr(value, "__array_namespace__") and not isinstance(value, np.ndarray) \
        and not isinstance(value, np.generic)


def home_of(value: Any) -> Home:
    """The namespace and device of an array API array."""
    return Home(array_api_compat.array_namespace(value), array_api_compat.device(value))


def to_host(value: Any) -> Any:
    """A NumPy copy of an array API array (other values as they are)."""
    if not is_array_api(value):
        return value
    if array_api_compat.is_cupy_array(value):
        return np.array(value.get(), copy=True)  # device -> host
    try:
        return np.array(np.from_dlpack(value), copy=True)
    except (TypeError, ValueError, RuntimeError, BufferError, AttributeError) as err:
        try:
            return np.array(value, copy=True)
        except Exception:
            raise CheckInputError(f"cannot copy a {type(value).__name__} to the host "
                                  f"(no DLPack, no __array__): {err}") from err


def _leaf_homes(tree: Any) -> list[Home | None]:
    return [home_of(leaf.value) if is_array_api(leaf.value) else None
            for leaf in flatten(tree)]


def _host_tree(tree: Any) -> Any:
    return rebuild(tree, [to_host(leaf.value) for leaf in flatten(tree)])


def _placed(tree: Any, homes: Sequence[Home | None], fallback: Home) -> Any:
    """``tree`` with its NumPy leaves put at ``homes`` (by flatten order; else fallback)."""
    leaves = flatten(tree)
    if len(leaves) != len(homes):
        homes = [fallback] * len(leaves)
    return rebuild(tree, [home.put(leaf.value) if home is not None else leaf.value
                          for leaf, home in zip(leaves, homes, strict=True)])


class _Bridge:
    """The user's ``f``/``vjp``/``jvp`` as functions of NumPy working copies."""

    def __init__(self, args: Sequence[Any]) -> None:
        self.homes = [_leaf_homes(a) for a in args]
        found = [h for hs in self.homes for h in hs if h is not None]
        if not found:
            raise CheckInputError("gradcheck.array_api.check_function: no argument holds an "
                                  "array API array (an object with __array_namespace__ "
                                  "other than a NumPy array); for NumPy arrays use "
                                  "gradcheck.check_function")
        self.first = found[0]
        self.out_homes: list[Home | None] = []

    def args(self, host_args: Sequence[Any]) -> list[Any]:
        return [_placed(a, hs, self.first)
                for a, hs in zip(host_args, self.homes, strict=True)]

    def f(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def f_on_device(*host_args: Any) -> Any:
            out = fn(*self.args(host_args))
            self.out_homes = _leaf_homes(out)
            return _host_tree(out)
        f_on_device.__name__ = getattr(fn, "__name__", "f")
        return f_on_device

    def vjp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def vjp_on_device(cotangent: Any, *host_args: Any) -> Any:
            homes = [h or self.first for h in self.out_homes]
            return _host_tree(fn(_placed(cotangent, homes, self.first),
                                 *self.args(host_args)))
        vjp_on_device.__name__ = getattr(fn, "__name__", "vjp")
        return vjp_on_device

    def jvp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def jvp_on_device(tangents: Any, *host_args: Any) -> Any:
            placed = tuple(t if t is None else _placed(t, hs, self.first)
                           for t, hs in zip(tangents, self.homes, strict=True))
            return _host_tree(fn(placed, *self.args(host_args)))
        jvp_on_device.__name__ = getattr(fn, "__name__", "jvp")
        return jvp_on_device


@documents_options
def check_function(f: Callable[..., Any], *args: Any, vjp: Callable[..., Any] | None = None,
                   jvp: Callable[..., Any] | None = None,
                   wrt: str | Sequence[str] | None = None,
                   names: str | Sequence[str] | None = None,
                   **options: Unpack[CheckOptions]) -> CheckResult:
    """:func:`gradcheck.check_function` for functions of array API arrays.

    Parameters
    ----------
    f : callable, ``f(*args) -> out``
        Written with the arrays' namespace; ``out`` an array or a tree of arrays.
    *args : array API arrays, trees of them, NumPy arrays or constants
        The point (never modified). Float leaves are checked; names as in
        :func:`gradcheck.check_function` (``arg0``, ``params.W``).
    vjp : callable, ``vjp(cotangent, *args) -> grads``, optional
        ``cotangent`` arrays come in the namespace and on the device of their output.
    jvp : callable, ``jvp(tangents, *args) -> out_tangent``, optional
        Tangents come in the namespace and on the device of their argument.
    wrt, names
        As for :func:`gradcheck.check_function`.

    Returns
    -------
    CheckResult

    >>> import array_api_strict as xp
    >>> x = xp.asarray([0.5, -1.0, 2.0], dtype=xp.float64)
    >>> check_function(xp.sin, x, vjp=lambda g, x: g * xp.cos(x)).ok
    True
    """
    if not callable(f):
        raise CheckInputError(f"f must be callable, got {type(f).__name__}")
    bridge = _Bridge(args)
    host_args = [_host_tree(a) for a in args]
    result = _check_function(
        bridge.f(f), *host_args, vjp=None if vjp is None else bridge.vjp(vjp),
        jvp=None if jvp is None else bridge.jvp(jvp), wrt=wrt, names=names, **options)
    spaces = sorted({getattr(h.xp, "__name__", type(h.xp).__name__)
                     for hs in bridge.homes for h in hs if h is not None})
    result.notes.append(f"array API arrays ({', '.join(spaces)}): every evaluation ran in "
                        f"their namespace on their device; the engine worked on host copies")
    return result


def assert_function(f: Callable[..., Any], *args: Any, **opts: Any) -> CheckResult:
    """:func:`check_function`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return raise_unless_ok(check_function(f, *args, **opts))


__all__ = ["assert_function", "check_function", "home_of", "is_array_api", "to_host"]
