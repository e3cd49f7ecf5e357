"""The activation table: every elementwise activation declared once, by name.

Each row is an :class:`Op` holding the NumPy forward ``f(z)`` and the hand-written
elementwise derivative ``df(z, y)``, which may reuse the forward output ``y = f(z)``.
:meth:`Op.vjp` is the layer's ``g·f'(z)``: ``df`` multiplied by ``g`` into ``df``'s own
fresh buffer, bit for bit ``g * df(z, y)`` (``tests/models/test_activations.py``), so
``df`` stays the one declaration of each derivative (what the zoo verifies against
SymPy is what the layer runs). The derivatives build their result in one buffer, in
place, and select by arithmetic on a mask rather than ``np.where``.
``domain`` is the interval where the derivative is interesting (plots, Hypothesis
strategies and tests draw from it); ``kinks`` lists the points where the derivative is
discontinuous, so checkers report "not differentiable here" instead of a mismatch (at a
kink itself ``df`` returns one of the one-sided derivatives).
``reference/exact.py`` holds the SymPy twin of every row under the same name.

Every forward and derivative is numerically stable (no overflow or invalid-value warning
for ``|z|`` up to 1e4 in float64) and keeps the dtype: float32 in, float32 out.

Softmax is vector-valued, so it lives in its own table of :class:`VectorOp` rows whose
backward is a vector-Jacobian product ``vjp(y, g)``.

>>> import numpy as np
>>> op = ACTIVATIONS["tanh"]
>>> z = np.array([0.0, 1.0])
>>> op.df(z, op.f(z)).round(4)
array([1.  , 0.42])
>>> VECTOR_ACTIVATIONS["softmax"].f(np.zeros((1, 4)))
array([[0.25, 0.25, 0.25, 0.25]])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "VECTOR_ACTIVATIONS", "Op", "VectorOp", "get"]

Array = np.ndarray


@dataclass(frozen=True)
class Op:
    """One elementwise activation: ``y = f(z)`` and ``dy/dz = df(z, y)``, any shape."""

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array, Array], Array]
    domain: tuple[float, float] = (-3.0, 3.0)
    kinks: tuple[float, ...] = ()

    def vjp(self, z: Array, y: Array, g: Array) -> Array:
        """``g·f'(z)`` (``z``, ``y = f(z)`` and ``g``: the same shape), a fresh array.

        >>> ACTIVATIONS["relu"].vjp(np.array([-1.0, 2.0]), None, np.array([3.0, 4.0]))
        array([0., 4.])
        """
        return _times(self.df(z, y), g, z, y)


@dataclass(frozen=True)
class VectorOp:
    """A vector-valued activation along ``axis``: ``y = f(z, axis)``, ``dz = vjp(y, g, axis)``."""

    name: str
    f: Callable[..., Array]
    vjp: Callable[..., Array]
    domain: tuple[float, float] = (-3.0, 3.0)


# ---- helpers (all keep the input dtype) ------------------------------------------------

def _dtype(z: Array) -> np.dtype:
    """The float dtype of ``z`` (float64 for Python numbers and integers)."""
    return np.result_type(np.asarray(z).dtype, np.float32)


def _sigmoid(z: Array) -> Array:
    # exp of a non-positive number only: no overflow on either side. The numerator is
    # exactly 1 (z >= 0) or e (z < 0): np.where(z >= 0, 1/(1+e), e/(1+e)) bit for bit,
    # without a selection (several times slower than arithmetic on a random-sign mask)
    e = np.exp(-np.abs(z))
    numerator = np.multiply(np.less(z, 0), e)
    numerator += np.greater_equal(z, 0)
    return (numerator / (1 + e)).astype(_dtype(z), copy=False)


def _step(z: Array, below: float, above: float) -> Array:
    """``above`` where z > 0, ``below`` elsewhere, in the dtype of ``z``.

    As ``mask·(above − below) + below`` (arithmetic on one buffer is several times faster
    than ``np.where`` with scalars) wherever that gives ``above`` exactly in the dtype.
    """
    dtype = _dtype(z)
    low, rise = np.asarray(below, dtype), np.asarray(above - below, dtype)
    if rise + low != np.asarray(above, dtype):
        return np.where(z > 0, np.asarray(above, dtype), low)
    out = np.multiply(np.greater(z, 0), rise, dtype=dtype)
    if below != 0:  # + 0 changes no bit of a product of a mask (it is +0 or the rise)
        out += low
    return out


#: Chebyshev coefficients of ``h(t) = log(erfc(a)·e^{a²}/t)`` in ``4t − 2``, ``t = 2/(2 + a)``,
#: ``a >= 0`` (the form of Numerical Recipes, 3rd ed., §6.2.2; recomputed with mpmath at 60
#: digits, 80 nodes; the next coefficient is below 1e-19): erfc to a few ulp, vectorized.
_ERFC_CHEB = (
    -1.3026537197817094, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05,
    -2.0278578112534242e-05, -1.6242900046470256e-06, 1.3036558355805232e-06,
    1.5626441722066142e-08, -8.523809591492654e-08, 6.5290544390988515e-09,
    5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12,
    8.944879273090725e-13, 3.130921399342958e-13, -1.1270822361367252e-13,
    3.810905255189232e-16, 7.106097613609237e-15, -1.5230282014571043e-15,
    -9.457494571291233e-17, 1.210237189224279e-16, -2.816663087747177e-17)
#: erfc(a) underflows float64 to 0 from a ≈ 26.6 on; clipping there keeps a² finite.
_ERFC_ZERO_FROM = 28.0


def _erfc(x: Array) -> Array:
    """erfc of a float64 array, vectorized (NumPy has no erf; SciPy is no dependency).

    ``t·exp(−a² + h(t))`` for ``a = |x|`` (Clenshaw over :data:`_ERFC_CHEB`), with ``a²``
    split so that ``exp(−a²)`` keeps full relative accuracy in the far tail;
    ``erfc(−a) = 2 − erfc(a)``. Within a few ulp of ``math.erfc`` (tested).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        return _erfc(x.reshape(1))[0]
    # in place on a few buffers: fresh full-size temporaries (page faults) dominate here
    a = np.abs(x)
    np.minimum(a, _ERFC_ZERO_FROM, out=a)
    t = np.add(a, 2)
    np.divide(2, t, out=t)
    ty = np.multiply(t, 4)
    ty -= 2
    d, dd, scratch = np.zeros_like(t), np.zeros_like(t), np.empty_like(t)
    for c in _ERFC_CHEB[:0:-1]:  # Clenshaw: a loop over 27 coefficients, not elements
        np.multiply(ty, d, out=scratch)  # d, dd = ty·d − dd + c, d on three buffers
        scratch -= dd
        scratch += c
        dd, d, scratch = d, scratch, dd
    exponent = np.multiply(ty, d, out=scratch)  # h(t) = ½(c₀ + ty·d) − dd
    exponent += _ERFC_CHEB[0]
    exponent *= 0.5
    exponent -= dd
    head = np.multiply(a, 16, out=d)  # 9 significant bits: head² is exact
    np.floor(head, out=head)
    head /= 16
    rest = np.subtract(a, head, out=dd)  # a² = head² + (a − head)(a + head)
    a += head
    rest *= a
    exponent -= rest
    np.exp(exponent, out=exponent)
    np.multiply(head, head, out=head)
    np.negative(head, out=head)
    np.exp(head, out=head)
    exponent *= head
    exponent *= t  # erfc(|x|)
    twice = np.multiply(np.less(x, 0), 2.0, out=t)  # 2 where x < 0, else 0
    sign = np.subtract(1, twice, out=a)
    exponent *= sign
    exponent += twice  # r, or 2 − r: arithmetic, no selection
    return exponent


def _phi_cdf(z: Array) -> Array:
    """Standard normal CDF Φ(z) = ½ erfc(−z/√2); erfc keeps full accuracy in the left tail."""
    tail = _erfc(np.asarray(z, dtype=np.float64) / -math.sqrt(2))
    return (0.5 * tail).astype(_dtype(z), copy=False)


def _phi_pdf(z: Array) -> Array:
    """Standard normal density φ(z); |z| clipped at 40 where φ underflows to 0 anyway."""
    t = np.minimum(np.abs(z), 40).astype(_dtype(z))
    return np.exp(-0.5 * t * t) / np.asarray(math.sqrt(2 * math.pi), t.dtype)


_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
_GELU_C = math.sqrt(2 / math.pi)
_GELU_K = 0.044715


def _gelu_tanh_arg(z: Array) -> Array:
    # 2u where 0.5·(1 + tanh(u)) = sigmoid(2u); sigmoid avoids the 1 + tanh cancellation;
    # z·z·z, not z**3: pow is two orders of magnitude slower than two products
    return 2 * _GELU_C * (z + _GELU_K * (z * z * z))


def _gelu_tanh_df(z: Array, y: Array) -> Array:
    s = _sigmoid(_gelu_tanh_arg(z))
    return s + z * s * (1 - s) * (2 * _GELU_C) * (1 + 3 * _GELU_K * z * z)


def _elu(z: Array, alpha: float) -> Array:
    # expm1 of min(z, 0): exact near 0 and never overflows on the unused positive side;
    # max(z, 0) + that is z (z > 0: expm1(0) = 0) or that (else): a sum, not a selection
    out = alpha * np.expm1(np.minimum(z, 0))
    out += np.maximum(z, 0)
    return out


def _elu_df(z: Array, alpha: float) -> Array:
    # alpha·e^min(z,0)·[z <= 0] + [z > 0]: exactly 1 or alpha·e^z, without a selection
    out = np.exp(np.minimum(z, 0)).astype(_dtype(z), copy=False)
    out *= np.asarray(alpha, out.dtype)
    out *= np.less_equal(z, 0)  # a NaN stays NaN (NaN·0)
    out += np.greater(z, 0)
    return out


def _silu_df(z: Array, y: Array) -> Array:
    s = _sigmoid(z)
    return s + y * (1 - s)  # d/dz z·σ(z) = σ + zσ(1−σ), and zσ = y


def _times(d: Array, g: Array, z: Array, y: Array) -> Array:
    """``g * d``, written into ``d`` when it is a fresh buffer of the product's dtype."""
    d = np.asarray(d)
    own = (d.flags.owndata and d.flags.writeable and d.shape == np.shape(g)
           and d.dtype == np.result_type(d, g)
           and not any(np.may_share_memory(d, a) for a in (z, y, g) if a is not None))
    return np.multiply(g, d, out=d if own else None)


def _tanh_df(z: Array, y: Array) -> Array:
    d = np.multiply(y, y)  # 1 - y², in one fresh buffer
    return np.subtract(1, d, out=d) if isinstance(d, np.ndarray) else 1 - d


def _sigmoid_df(z: Array, y: Array) -> Array:
    d = np.subtract(1, y)  # y(1 - y), in one fresh buffer
    return np.multiply(y, d, out=d) if isinstance(d, np.ndarray) else y * d


def _table(*rows: Op) -> dict[str, Op]:
    return {row.name: row for row in rows}


ACTIVATIONS: dict[str, Op] = _table(
    Op("identity", f=lambda z: np.array(z, dtype=_dtype(z)),
       df=lambda z, y: np.ones_like(z, dtype=_dtype(z))),
    Op("sigmoid", f=_sigmoid, df=_sigmoid_df, domain=(-6.0, 6.0)),
    Op("tanh", f=np.tanh, df=_tanh_df),
    Op("relu", f=lambda z: np.maximum(z, 0).astype(_dtype(z), copy=False),
       df=lambda z, y: _step(z, 0.0, 1.0), kinks=(0.0,)),
    Op("leaky_relu", f=lambda z: np.where(z > 0, z, z * 0.01),
       df=lambda z, y: _step(z, 0.01, 1.0), kinks=(0.0,)),
    Op("elu", f=lambda z: _elu(z, 1.0), df=lambda z, y: _elu_df(z, 1.0)),
    Op("selu", f=lambda z: _SELU_SCALE * _elu(z, _SELU_ALPHA),
       df=lambda z, y: _SELU_SCALE * _elu_df(z, _SELU_ALPHA), kinks=(0.0,)),
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|})
    Op("softplus", f=lambda z: np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))),
       df=lambda z, y: _sigmoid(z), domain=(-6.0, 6.0)),
    Op("silu", f=lambda z: z * _sigmoid(z), df=_silu_df, domain=(-6.0, 6.0)),
    Op("gelu", f=lambda z: z * _phi_cdf(z), df=lambda z, y: _phi_cdf(z) + z * _phi_pdf(z)),
    Op("gelu_tanh", f=lambda z: z * _sigmoid(_gelu_tanh_arg(z)), df=_gelu_tanh_df),
    Op("softsign", f=lambda z: z / (1 + np.abs(z)), df=lambda z, y: 1 / (1 + np.abs(z)) ** 2),
    Op("hard_tanh", f=lambda z: np.clip(z, -1, 1).astype(_dtype(z)),
       df=lambda z, y: np.asarray((z > -1) & (z < 1), dtype=_dtype(z)), kinks=(-1.0, 1.0)),
)


def _softmax(z: Array, axis: int = -1) -> Array:
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_vjp(y: Array, g: Array, axis: int = -1) -> Array:
    # Jᵀg with J = diag(y) − y yᵀ, without building J
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


VECTOR_ACTIVATIONS: dict[str, VectorOp] = {
    "softmax": VectorOp("softmax", f=_softmax, vjp=_softmax_vjp),
}


def get(name: str) -> Op | VectorOp:
    """Return the row named ``name`` from either table, or raise ``ValueError`` listing them.

    >>> get("relu").kinks
    (0.0,)
    """
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if name in VECTOR_ACTIVATIONS:
        return VECTOR_ACTIVATIONS[name]
    known = ", ".join([*ACTIVATIONS, *VECTOR_ACTIVATIONS])
    raise ValueError(f"unknown activation {name!r}; known activations: {known}")
