"""The exact derivatives as cached numerical callables: a fast NumPy one and a precise one.

``numpy_*`` callables evaluate SymPy's derivative with NumPy (``sp.lambdify``); where that
float64 formula overflows (``exp(800)``) the entries are recomputed in high precision, so
the result is always finite and never warns. The formula itself may still lose relative
accuracy where it cancels (``1 − tanh²z`` for large ``z``), which is why the
``precise_*`` callables exist: they evaluate the same expression with mpmath, raising the
precision from 30 digits until two precisions agree, and round once to float64 — the
reference the tests and the numeric evidence compare against. Every callable is built
once per name (and per output width
for ``softmax_ce``) and cached.

>>> import numpy as np
>>> numpy_activation_derivative("sigmoid")(np.array([0.0, 800.0]))
array([0.25, 0.  ])
>>> float(precise_activation_derivative("tanh")(np.array([20.0]))[0])
1.6993417021166355e-17
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import mpmath
import numpy as np
import sympy as sp

from gradcheck.reference.derive import derive_activation, derive_loss
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES, ExactLoss, p, t, z

__all__ = [
    "PRECISE_DIGITS",
    "build_all",
    "numpy_activation",
    "numpy_activation_derivative",
    "numpy_loss_gradient",
    "numpy_loss_value",
    "precise_activation",
    "precise_activation_derivative",
    "precise_loss_gradient",
    "precise_loss_value",
]

PRECISE_DIGITS = 30
"""Starting significant digits of the mpmath evaluation behind the ``precise_*`` callables."""
MAX_DIGITS = 3840
"""Largest precision tried before giving up (enough for exp(±8000) cancellations)."""

Array = np.ndarray


def _erf(x: Array) -> Array:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


_NUMPY = [{"erf": _erf}, "numpy"]  # NumPy has no erf; math.erf is correctly rounded enough


def _precise_scalar(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> Callable[..., float]:
    """A scalar evaluator that raises the precision until two results agree.

    Starts at ``PRECISE_DIGITS`` digits ``d`` and doubles (up to ``MAX_DIGITS``) until the
    results at ``d`` and ``2d`` agree to 1e-20 relative *and* are at least ``10^(20−d)``
    in size. The second condition matters: where terms of size ~1 cancel (gelu' at
    z = −31.6 is ``½ + ½erf(z/√2) + zφ(z) ≈ −9e−216``) every precision below the
    cancellation gives the same wrong answer (0: the tiny term is absorbed), so mere
    agreement would accept it. Also handles ``1 − 1/(1 + e^{−246})`` (a division by zero
    at 30 digits) and ``1 − tanh²(40)``. The guarantee assumes the cancelling terms are
    at most ~1e20 in size, true of every row here.
    """
    fn = sp.lambdify(args, expr, modules="mpmath")

    def attempt(digits: int, values: tuple[float, ...]) -> mpmath.mpf | None:
        with mpmath.workdps(digits):
            try:
                return +fn(*(mpmath.mpf(float(v)) for v in values))
            except ZeroDivisionError:
                return None

    def evaluate(*values: float) -> float:
        digits, previous = PRECISE_DIGITS, attempt(PRECISE_DIGITS, values)
        while digits < MAX_DIGITS:
            current = attempt(2 * digits, values)
            if current is not None and previous is not None:
                with mpmath.workdps(2 * digits):
                    agree = abs(current - previous) <= mpmath.mpf(10) ** -20 * abs(current)
                    resolved = abs(current) >= mpmath.mpf(10) ** (20 - digits)
                if agree and resolved:
                    return float(current)
            digits, previous = 2 * digits, current
        if previous is None:
            where = dict(zip(args, values, strict=True))
            raise ArithmeticError(f"{expr} at {where}: division by zero up to {MAX_DIGITS} digits")
        return float(previous)  # 0, or below 10^(20 − MAX_DIGITS): 0.0 in float64 too
    return evaluate


def _elementwise(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> tuple[Callable, Callable]:
    """(NumPy callable with precise fallback, precise callable), both broadcasting."""
    fast = sp.lambdify(args, expr, modules=_NUMPY)
    precise = np.vectorize(_precise_scalar(args, expr), otypes=[np.float64])

    def numpy_version(*arrays: Array) -> Array:
        arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
        with np.errstate(all="ignore"):  # overflowing entries are recomputed below
            out = np.array(np.broadcast_to(fast(*arrays), np.broadcast(*arrays).shape),
                           dtype=np.float64)
        bad = ~np.isfinite(out)
        if bad.any():
            picked = [np.broadcast_to(a, out.shape)[bad] for a in arrays]
            out[bad] = precise(*picked)
        return out

    def precise_version(*arrays: Array) -> Array:
        return np.asarray(precise(*(np.asarray(a, dtype=np.float64) for a in arrays)),
                          dtype=np.float64)
    return numpy_version, precise_version


def _activation_name(name: str) -> str:
    if name not in EXACT_ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; known: {', '.join(EXACT_ACTIVATIONS)}")
    return name


@cache
def _activation_pair(name: str, derivative: bool) -> tuple[Callable, Callable]:
    expr = (derive_activation(_activation_name(name)).derivative if derivative
            else EXACT_ACTIVATIONS[name].expr)
    return _elementwise((z,), expr)


def numpy_activation(name: str) -> Callable[[Array], Array]:
    """``f(z)`` of the activation ``name``, any shape, float64."""
    return _activation_pair(name, False)[0]


def numpy_activation_derivative(name: str) -> Callable[[Array], Array]:
    """SymPy's ``f'(z)`` of ``name`` evaluated with NumPy (precise fallback on overflow)."""
    return _activation_pair(name, True)[0]


def precise_activation(name: str) -> Callable[[Array], Array]:
    """``f(z)`` at 30 digits, rounded once to float64."""
    return _activation_pair(name, False)[1]


def precise_activation_derivative(name: str) -> Callable[[Array], Array]:
    """SymPy's ``f'(z)`` at 30 digits, rounded once to float64: the reference value."""
    return _activation_pair(name, True)[1]


def _loss_row(name: str) -> ExactLoss:
    if name not in EXACT_LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(EXACT_LOSSES)}")
    return EXACT_LOSSES[name]


@cache
def _vector_loss(name: str, width: int, precise: bool) -> Callable[[Array, Array], list[Array]]:
    """Value and gradient of a non-elementwise loss for ``width`` outputs, row by row."""
    xs = sp.symbols(f"x_1:{width + 1}", real=True)
    ts = sp.symbols(f"t_1:{width + 1}", real=True)
    value = _loss_row(name).per_sample(xs, ts)
    exprs = [value, *[sp.diff(value, x) for x in xs]]
    args = (*xs, *ts)
    if not precise:
        fast = sp.lambdify(args, exprs, modules=_NUMPY)
        return lambda pred, target: list(fast(*pred.T, *target.T))
    fns = [_precise_scalar(args, e) for e in exprs]
    return lambda pred, target: [np.array([fn(*row_p, *row_t) for row_p, row_t in
                                           zip(pred, target, strict=True)]) for fn in fns]


def _check_pair(name: str, pred: Array, target: Array) -> tuple[Array, Array]:
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(f"loss {name!r}: pred and target must both be (N, K) arrays of the "
                         f"same shape, got {pred.shape} and {target.shape}")
    return pred, target


def _loss(name: str, gradient: bool, precise: bool) -> Callable[[Array, Array], Array]:
    row = _loss_row(name)
    if row.element is not None:
        fast, slow = _elementwise_loss(name, gradient)

        def elementwise(pred: Array, target: Array) -> Array:
            pred, target = _check_pair(name, pred, target)
            out = (slow if precise else fast)(pred, target)
            return out if gradient else out.sum(axis=1)
        return elementwise

    def vector(pred: Array, target: Array) -> Array:
        pred, target = _check_pair(name, pred, target)
        parts = _evaluate_vector(name, pred, target, precise)
        return np.stack(parts[1:], axis=1) if gradient else parts[0]
    return vector


@cache
def _elementwise_loss(name: str, gradient: bool) -> tuple[Callable, Callable]:
    row = _loss_row(name)
    expr = derive_loss(name).derivative if gradient else row.element
    return _elementwise((p, t), expr)


def _evaluate_vector(name: str, pred: Array, target: Array, precise: bool) -> list[Array]:
    width = pred.shape[1]
    if precise:
        return _vector_loss(name, width, True)(pred, target)
    with np.errstate(all="ignore"):  # overflowing rows are recomputed below
        parts = [np.array(np.broadcast_to(v, pred.shape[:1]), dtype=np.float64)
                 for v in _vector_loss(name, width, False)(pred, target)]
    bad = ~np.all(np.isfinite(np.stack(parts)), axis=0)
    if bad.any():
        slow = _vector_loss(name, width, True)(pred[bad], target[bad])
        for part, fixed in zip(parts, slow, strict=True):
            part[bad] = fixed
    return parts


def numpy_loss_value(name: str) -> Callable[[Array, Array], Array]:
    """Per-sample loss ``ℓ(pred_n, target_n)``: (N, K), (N, K) -> (N,)."""
    return _loss(name, gradient=False, precise=False)


def numpy_loss_gradient(name: str) -> Callable[[Array, Array], Array]:
    """Per-sample gradient ``∂ℓ/∂pred``: (N, K), (N, K) -> (N, K) (not divided by N)."""
    return _loss(name, gradient=True, precise=False)


def precise_loss_value(name: str) -> Callable[[Array, Array], Array]:
    """Per-sample loss at 30 digits, rounded once: (N, K), (N, K) -> (N,)."""
    return _loss(name, gradient=False, precise=True)


def precise_loss_gradient(name: str) -> Callable[[Array, Array], Array]:
    """Per-sample gradient at 30 digits, rounded once: (N, K), (N, K) -> (N, K)."""
    return _loss(name, gradient=True, precise=True)


def build_all(width: int = 10) -> int:
    """Derive and lambdify every row (both paths; vector losses for ``width`` outputs).

    Returns the number of callables built; used by the benchmark to time a cold start.
    """
    count = 0
    for name in EXACT_ACTIVATIONS:
        for derivative in (False, True):
            _activation_pair(name, derivative)
            count += 2
    for name, row in EXACT_LOSSES.items():
        if row.element is not None:
            for gradient in (False, True):
                _elementwise_loss(name, gradient)
                count += 2
        else:
            for precise in (False, True):
                _vector_loss(name, width, precise)
                count += 1
    return count
