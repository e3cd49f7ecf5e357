"""JAX code as the engine's problem: pytrees, ``custom_vjp``/``custom_jvp``, jitted functions.

Imported only through :mod:`gradcheck.jax` (never by ``import gradcheck``). The analytic
side is JAX's own autodiff: ``jax.vjp`` with seeded cotangents (``ad="rev"``) or
``jax.jvp`` on unit tangents, batched with ``jax.vmap`` (``ad="fwd"``); ``order=2``
checks the VJP (or JVP) function itself, as ``jax.test_util.check_grads`` does.

* **Immutable arrays**: the engine perturbs a host working copy of each checked leaf;
  before each evaluation the JAX array is *rebuilt* from it (on a CPU a fresh
  ``jnp.asarray``; on an accelerator only the changed entries, ``x.at[idx].set(v)``, on
  the array's own device). ``φ = Σ_k v_k · y_k`` is reduced on the device: one scalar
  comes back per evaluation. The user's arrays are never touched.
* **Precision**: ``jax.config.jax_enable_x64`` is read, never changed. With it off (JAX's
  default) every float is float32 — float64 NumPy inputs too, by JAX's own rule — and
  the check is made, and judged, in float32 (the result notes it); with it on, float64
  and float32 leaves keep their dtypes. float16/bfloat16 leaves are evaluated in float32
  when the function accepts it.
* Leaves are named by path as :func:`~gradcheck.adapters.functions.check_function`
  names them (``arg0``, ``arg1.W``, ``arg0[1]``); integer leaves are constants.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from gradcheck.adapters.framework_bridge import (
    ArrayInput,
    leaf_names,
    matches,
    run_arrays,
    sample,
)
from gradcheck.adapters.functions import arg_names
from gradcheck.engine.options import CheckOptions, Options, documents_options
from gradcheck.engine.safety import CheckInputError, CheckTypeError, UserCodeError
from gradcheck.engine.streams import stream
from gradcheck.results.result import CheckResult, GradientMismatch

if TYPE_CHECKING:
    from typing_extensions import Unpack

ADS = ("rev", "fwd")
MODES_OF_CHECK_GRADS = ("fwd", "rev")
#: Unit tangents pushed through one ``vmap``'d JVP at a time (memory: CHUNK × entries).
CHUNK = 256


def _x64() -> bool:
    return bool(getattr(jax.config, "jax_enable_x64"))  # noqa: B009 (untyped config)


def _is_float(value: Any) -> bool:
    return hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.floating)


class _Slot:
    """A checked leaf: the host working array and the JAX array rebuilt from it."""

    def __init__(self, name: str, value: Any, dtype: Any, rebuild_all: bool | None = None,
                 eval_dtype: Any = None) -> None:
        self.name = name
        arr = jnp.asarray(value)
        self.original_dtype = arr.dtype
        self.device = next(iter(arr.devices())) if hasattr(arr, "devices") else None
        self.base = arr.astype(dtype)  # the point, in the analytic side's dtype
        self.dtype = np.dtype(self.base.dtype)
        self.work = np.array(self.base.astype(eval_dtype or dtype), copy=True)
        cpu = self.device is None or self.device.platform == "cpu"
        self.cpu = cpu if rebuild_all is None else rebuild_all
        self.twin = jnp.asarray(self.work)
        self.last = self.work.copy()

    def current(self) -> jax.Array:
        """The JAX array holding the working copy's current values (rebuilt, never written)."""
        flat, last = self.work.reshape(-1), self.last.reshape(-1)
        changed = np.flatnonzero(flat != last)
        if not changed.size:
            return self.twin
        if self.cpu or changed.size > max(1, flat.size // 8):
            self.twin = jax.device_put(jnp.asarray(self.work), self.device)
        else:
            self.twin = self.twin.reshape(-1).at[changed].set(flat[changed]).reshape(
                self.work.shape)
        last[changed] = flat[changed]
        return self.twin


class _Evaluation:
    def __init__(self, f: Callable[..., Any], describe: str, leaves: list[Any], spec: Any,
                 slots: dict[int, _Slot], seed: int, promote: bool = False) -> None:
        self.f, self.describe, self.leaves, self.spec = f, describe, leaves, spec
        self.slots, self.seed = slots, seed
        self.cotangents: list[jax.Array] = []
        self.eval_leaves = [l.astype(jnp.float64) if promote and hasattr(l, "dtype")
                            and l.dtype == jnp.float32 else l for l in leaves]
        self.evaluated = False  # outputs() reads eval_leaves (φ) instead of leaves

    def outputs(self, *checked: Any) -> list[jax.Array]:
        """The float outputs of ``f`` with the checked leaves replaced by ``checked``."""
        filled = list(self.eval_leaves if self.evaluated else self.leaves)
        for i, value in zip(self.slots, checked, strict=True):
            filled[i] = value
        args = jax.tree_util.tree_unflatten(self.spec, filled)
        outs = [y for y in jax.tree_util.tree_leaves(self.f(*args)) if _is_float(y)]
        if not outs:
            raise CheckTypeError(f"{self.describe} returned no floating-point array; it "
                                 f"must return an array or a pytree of arrays")
        return outs

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (CheckInputError, CheckTypeError):
            raise
        except Exception as err:
            raise UserCodeError(f"{self.describe} raised {type(err).__name__}: {err}") from err

    def primals(self) -> list[jax.Array]:
        """The analytic side's point (in the checked dtypes)."""
        return [s.base for s in self.slots.values()]

    def draw(self, outs: list[jax.Array]) -> None:
        rng = stream(self.seed, "upstream")
        self.cotangents = [jnp.asarray(rng.standard_normal(y.shape), dtype=y.dtype)
                           for y in outs]

    def pair(self, ys: Sequence[jax.Array]) -> jax.Array:
        acc = jnp.float64 if _x64() else jnp.float32
        return sum((jnp.sum(v.astype(acc) * y.astype(acc))
                    for v, y in zip(self.cotangents, ys, strict=True)), jnp.zeros((), acc))

    def evaluate(self, nudge: bool = False) -> list[jax.Array]:
        """The outputs at the working point, as φ sees them.

        ``nudge``: at the point moved by a float64-only nudge instead, whose outputs show
        whether the function really computes in float64 (a copy-like op returns
        float32-representable values at a float32 point even in float64).
        """
        values = [s.current() for s in self.slots.values()]
        if nudge:
            rng = stream(self.seed, "shifted input", 7)
            values = [v + 1e-7 * jnp.asarray(rng.standard_normal(v.shape), dtype=v.dtype)
                      * jnp.maximum(jnp.abs(v), 1.0) for v in values]
        self.evaluated = True
        try:
            return self.call(self.outputs, *values)
        finally:
            self.evaluated = False

    def phi(self) -> float:
        return float(self.call(lambda: self.pair(self.evaluate())))

    def scale(self, outs: list[jax.Array]) -> float:
        return float(sum(float(jnp.sum(jnp.abs(v * y)))
                         for v, y in zip(self.cotangents, outs, strict=True)))

    def reverse(self) -> tuple[list[jax.Array], list[np.ndarray]]:
        outs, pullback = self.call(jax.vjp, self.outputs, *self.primals())
        self.draw(outs)
        grads = self.call(pullback, list(self.cotangents))
        return outs, [np.asarray(g, dtype=np.float64) for g in grads]

    def forward(self) -> tuple[list[jax.Array], list[np.ndarray]]:
        """Entry ``j`` of slot ``i``'s gradient: ``Σ_k v_k · (J_k e_j)`` by ``jax.jvp``."""
        primals = self.primals()
        outs = self.call(self.outputs, *primals)
        self.draw(outs)
        zeros = [jnp.zeros_like(p) for p in primals]

        def directional(i: int, e: jax.Array) -> jax.Array:
            tangents = list(zeros)
            tangents[i] = e.reshape(primals[i].shape).astype(primals[i].dtype)
            _, ts = jax.jvp(self.outputs, primals, tangents)
            return self.pair(ts)

        grads = []
        for i, p in enumerate(primals):
            n, parts = p.size, []
            batched = jax.vmap(lambda e, i=i: directional(i, e))
            for lo in range(0, n, CHUNK):
                eye = jnp.eye(n, dtype=p.dtype)[lo:lo + CHUNK]
                parts.append(np.asarray(self.call(batched, eye), dtype=np.float64))
            grads.append(np.concatenate(parts).reshape(p.shape) if parts
                         else np.zeros(p.shape))
        return outs, grads


def _seen(outs: list[jax.Array]) -> np.ndarray:
    return np.concatenate([sample(np.asarray(y.reshape(-1)[:: max(1, y.size // 4096)],
                                             dtype=np.float64)) for y in outs])


def _derived(f: Callable[..., Any], args: Sequence[Any], ad: str, seed: int
             ) -> Callable[..., Any]:
    """The function whose derivative is the next order: ``vjp(v)`` or ``jvp(u)`` of ``f``."""
    rng = stream(seed, "upstream", 2)
    if ad == "rev":
        out = f(*args)
        v = jax.tree_util.tree_map(
            lambda y: jnp.asarray(rng.standard_normal(jnp.shape(y)), dtype=jnp.result_type(y)),
            out)

        def vjp_of(*xs: Any) -> Any:
            return jax.vjp(f, *xs)[1](v)

        vjp_of.__name__ = f"vjp({getattr(f, '__name__', 'f')})"
        return vjp_of
    u = jax.tree_util.tree_map(
        lambda x: jnp.asarray(rng.standard_normal(jnp.shape(x)), dtype=jnp.result_type(x)),
        tuple(args))

    def jvp_of(*xs: Any) -> Any:
        return jax.jvp(f, xs, u)[1]

    jvp_of.__name__ = f"jvp({getattr(f, '__name__', 'f')})"
    return jvp_of


def _evaluate_first(f: Callable[..., Any], label: str, leaves: list[Any], named: list[str],
                    chosen: list[bool], spec: Any, seed: int, *, ad: str, promote: bool
                    ) -> tuple[_Evaluation, dict[int, _Slot], list[Any], list[Any],
                               np.ndarray, list[str]]:
    """JAX's derivative at the point, trying the widest evaluation first (float32 through
    float64 with x64 on and ``promote``), then the leaves' dtypes with half precision in
    float32, then half precision as it is; the last failure is the user's error. Returns
    the evaluation, its slots, the derivative, the outputs, the values seen and notes."""
    widenable = _x64() and any(c and leaves[i].dtype in (jnp.float32, jnp.float16,
                                                         jnp.bfloat16)
                               for i, c in enumerate(chosen))
    halves_present = any(c and leaves[i].dtype in (jnp.float16, jnp.bfloat16)
                         for i, c in enumerate(chosen))
    attempts = [(True, True)] if promote and widenable else []
    attempts += [(True, False)] + ([(False, False)] if halves_present else [])
    for k, (half_to_float32, widen) in enumerate(attempts):
        slots = {}
        for i, c in enumerate(chosen):
            if c:
                dtype = leaves[i].dtype
                if half_to_float32 and dtype in (jnp.float16, jnp.bfloat16):
                    dtype = jnp.float32
                wide = jnp.float64 if widen and dtype == jnp.float32 else None
                slots[i] = _Slot(named[i], leaves[i], dtype, eval_dtype=wide)
        evaluation = _Evaluation(f, label, leaves, spec, slots, seed, promote=widen)
        try:
            outs, grads = evaluation.reverse() if ad == "rev" else evaluation.forward()
        except UserCodeError:
            if k == len(attempts) - 1:
                raise
            continue
        evaluated, seen = outs, _seen(outs)
        if widen:
            evaluated = evaluation.evaluate()
            seen = np.concatenate([_seen(evaluated), _seen(evaluation.evaluate(True))])
        return evaluation, slots, grads, evaluated, seen, _dtype_notes(slots, widen)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _dtype_notes(slots: dict[int, _Slot], widen: bool) -> list[str]:
    notes = []
    if widen:
        notes.append(f"{', '.join(s.name for s in slots.values() if s.work.dtype != s.dtype)}"
                     f": float32 differenced through a float64 evaluation of the same function "
                     f"(x64 is on; steps float32-representable), the float32 derivative "
                     f"judged at float32 precision; promote=False differences in float32")
    halves = [s.name for s in slots.values() if s.original_dtype != s.dtype]
    if halves:
        notes.append(f"{', '.join(halves)}: half-precision leaves evaluated in float32 (the "
                     f"function's derivative is checked, not its half-precision rounding)")
    return notes


def _selected_leaves(args: Sequence[Any], names: Sequence[str] | None,
                     wrt: str | Sequence[str] | None
                     ) -> tuple[list[Any], list[Any], list[str], list[bool]]:
    """The flattened leaves of ``args``, their names, and which are checked (float, in
    ``wrt``); unknown ``wrt`` patterns and complex leaves are refused."""
    flat, _ = jax.tree_util.tree_flatten_with_path((tuple(args), {}))
    leaves = [jnp.asarray(v) if isinstance(v, (np.ndarray, float, np.generic)) else v
              for _, v in flat]
    named = leaf_names(flat, arg_names(len(args), names))
    patterns = None if wrt is None else ([wrt] if isinstance(wrt, str) else list(wrt))
    if patterns is not None:
        unknown = [p for p in patterns if not any(matches(n, [p]) for n in named)]
        if unknown:
            raise CheckInputError(f"wrt={unknown!r} matches no input; the inputs are {named}")
    for name, leaf in zip(named, leaves, strict=True):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            raise CheckTypeError(f"{name} is complex ({leaf.dtype}); the JAX adapter checks "
                                 f"real leaves: pass the real and imaginary parts apart")
    chosen = [_is_float(leaf) and (patterns is None or matches(n, patterns))
              for n, leaf in zip(named, leaves, strict=True)]
    return flat, leaves, named, chosen


@documents_options
def check(f: Callable[..., Any], *args: Any, names: Sequence[str] | None = None,
          wrt: str | Sequence[str] | None = None, ad: str = "rev", order: int = 1,
          promote: bool = True, **options: Unpack[CheckOptions]) -> CheckResult:
    """Check JAX's derivative of ``f(*args)`` against finite differences.

    Parameters
    ----------
    f : callable
        A JAX function (``custom_vjp``, ``custom_jvp``, ``jax.jit``-ted, plain) of
        arrays or pytrees, returning an array or a pytree of arrays.
    *args : arrays or pytrees of arrays
        Float leaves are checked (``wrt`` picks some); integer leaves are constants.
    names : sequence of str, optional
        Names of the positional arguments (default ``arg0``, ...).
    wrt : str or sequence of str, optional
        Names or globs of the leaves to check (``"params"`` selects a whole subtree).
    ad : "rev" | "fwd"
        ``jax.vjp`` or ``jax.jvp`` as the analytic side.
    order : int
        ``1``; ``2`` checks the derivative of ``f``'s VJP (``ad="rev"``) or JVP
        (``ad="fwd"``) with seeded cotangents/tangents, and so on.
    promote : bool
        With x64 on, difference float32 (and half) leaves through a float64 evaluation of
        the same function (steps float32-representable; JAX's derivative still taken in
        the leaf's dtype and judged at its precision). ``False``, or x64 off: difference
        in the leaf's own dtype.

    Returns
    -------
    CheckResult

    >>> import jax.numpy as jnp
    >>> check(jnp.sin, jnp.arange(3.0)).ok
    True
    """
    start, seed = time.perf_counter(), Options.of("gradcheck.jax.check", options).seed
    if not callable(f):
        raise CheckTypeError(f"f must be callable, got {type(f).__name__}")
    if ad not in ADS:
        raise CheckInputError(f"ad={ad!r} is not one of {ADS}")
    if not isinstance(order, int) or order < 1:
        raise CheckInputError(f"order={order!r} must be an int >= 1")
    label = getattr(f, "__name__", None) or type(f).__name__
    for _ in range(order - 1):
        f = _derived(f, args, ad, seed)
    flat, leaves, named, chosen = _selected_leaves(args, names, wrt)
    spec = jax.tree_util.tree_structure(tuple(args))
    notes: list[str] = []
    if not _x64() and any(getattr(np.asarray(v), "dtype", None) == np.float64
                          for _, v in flat if isinstance(v, (np.ndarray, float))):
        notes.append("jax_enable_x64 is off: float64 inputs were evaluated and judged in "
                     "float32 (JAX's own rule; enable x64 to check in float64)")
    evaluation, slots, grads, evaluated, seen, first_notes = _evaluate_first(
        f, label, leaves, named, chosen, spec, seed, ad=ad, promote=promote)
    notes += first_notes
    arrays = [ArrayInput(s.name, s.work, g, storage=s.dtype, grad_dtype=s.dtype)
              for s, g in zip(slots.values(), grads, strict=True)]
    declared = np.dtype(max((np.dtype(y.dtype) for y in evaluated),
                            key=lambda d: np.finfo(d).eps if d.kind == "f" else 0.0))
    if declared.name not in ("float64", "float32", "float16"):
        declared = np.dtype(np.float32)
    kind = "jax.check" + (f"(order={order}, {ad})" if order > 1 else f"({ad})")
    return run_arrays(kind, label, label, evaluation.phi, arrays, seen=seen,
                      declared=declared, noise=evaluation.scale(evaluated),
                      options=dict(options),
                      notes=notes, start=start)


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int,
                modes: Sequence[str] = MODES_OF_CHECK_GRADS, atol: float | None = None,
                rtol: float | None = None, eps: float | None = None, *,
                use_given_tolerances: bool = False, seed: int = 0,
                allow_unresolved: bool = False) -> None:
    """Drop-in for ``jax.test_util.check_grads``: returns None, raises on a mismatch.

    Checks every order from 1 to ``order`` in each of ``modes`` (``"fwd"``: ``jax.jvp``,
    ``"rev"``: ``jax.vjp``); the first failing check raises :class:`GradientMismatch`
    (an ``AssertionError``, as JAX's) carrying ``.result``. ``atol``/``rtol`` are ignored
    unless ``use_given_tolerances=True`` (then they override the relative and absolute
    floors; the error estimate is still added); ``eps`` is ignored (the step follows the
    precision read from the outputs). ``seed`` and ``allow_unresolved`` (keyword-only) are
    gradcheck's own: an entry no step can resolve raises unless ``allow_unresolved=True``.

    >>> import jax.numpy as jnp
    >>> check_grads(jnp.tanh, (jnp.arange(3.0),), order=2)
    """
    __tracebackhide__ = True
    if isinstance(modes, str):
        modes = (modes,)
    unknown = [m for m in modes if m not in MODES_OF_CHECK_GRADS]
    if unknown:
        raise CheckInputError(f"modes={tuple(modes)!r}: {unknown} not in ('fwd', 'rev')")
    r, a = (rtol, atol) if use_given_tolerances else (None, None)
    for k in range(1, order + 1):
        for ad in modes:
            result = check(f, *tuple(args), ad=ad, order=k, rtol=r, atol=a, seed=seed,
                           allow_unresolved=allow_unresolved)
            if not result.ok:
                raise GradientMismatch(result)


__all__ = ["check", "check_grads"]
