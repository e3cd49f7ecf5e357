"""The activation table: derivatives, kinks, dtypes, stability and tail accuracy."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS, get

NAMES = sorted(ACTIVATIONS)
STEP = 1e-5  # central-difference step: truncation ~1e-10·f''', rounding ~1e-11
# Points where f' is continuous (no kink) but f'' jumps: a central difference there is
# only O(STEP) accurate, so the derivative property stays away from them too.
SECOND_ORDER_BREAKS = {"elu": (0.0,), "softsign": (0.0,)}


def _values(name: str, *, margin: float = 10 * STEP) -> st.SearchStrategy[float]:
    """Floats from the row's domain, at least ``margin`` away from kinks and f'' jumps."""
    op = ACTIVATIONS[name]
    lo, hi = op.domain
    avoid = op.kinks + SECOND_ORDER_BREAKS.get(name, ())
    return st.floats(lo, hi).filter(lambda v: all(abs(v - k) > margin for k in avoid))


def _arrays(name: str) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4),
                      elements=_values(name))


def test_table_holds_exactly_the_documented_names():
    assert set(ACTIVATIONS) == {
        "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus",
        "silu", "gelu", "gelu_tanh", "softsign", "hard_tanh"}
    assert set(VECTOR_ACTIVATIONS) == {"softmax"}
    assert all(op.name == key for key, op in ACTIVATIONS.items())
    assert all(op.domain[0] < op.domain[1] for op in ACTIVATIONS.values())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25)
@given(data=st.data())
def test_derivative_matches_central_difference_away_from_kinks(name, data):
    op = ACTIVATIONS[name]
    z = data.draw(_arrays(name))
    numeric = (op.f(z + STEP) - op.f(z - STEP)) / (2 * STEP)
    np.testing.assert_allclose(op.df(z, op.f(z)), numeric, rtol=1e-6, atol=1e-8)


def _one_sided(op, z: float, h: float = 1e-7) -> tuple[float, float]:
    left = (op.f(np.float64(z)) - op.f(np.float64(z - h))) / h
    right = (op.f(np.float64(z + h)) - op.f(np.float64(z))) / h
    return float(left), float(right)


@pytest.mark.parametrize(("name", "kink"),
                         [(n, k) for n in NAMES for k in ACTIVATIONS[n].kinks])
def test_declared_kinks_are_real(name, kink):
    left, right = _one_sided(ACTIVATIONS[name], kink)
    assert abs(left - right) > 1e-2, f"{name} is differentiable at {kink}: drop the kink"


@pytest.mark.parametrize(("name", "point"), [
    (n, p) for n in NAMES for p in (-1.0, 0.0, 1.0) if p not in ACTIVATIONS[n].kinks])
def test_no_undeclared_kinks_at_the_usual_suspects(name, point):
    left, right = _one_sided(ACTIVATIONS[name], point)
    assert left == pytest.approx(right, abs=1e-5), f"{name} has an undeclared kink at {point}"


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15)
@given(data=st.data())
def test_float32_in_float32_out(name, data):
    op = ACTIVATIONS[name]
    z = data.draw(_arrays(name)).astype(np.float32)
    y = op.f(z)
    dy = op.df(z, y)
    assert y.dtype == np.float32 and dy.dtype == np.float32
    assert y.shape == z.shape and dy.shape == z.shape
    z64 = z.astype(np.float64)
    np.testing.assert_allclose(y, op.f(z64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dy, op.df(z64, op.f(z64)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_integer_and_python_inputs_compute_in_float64(name):
    op = ACTIVATIONS[name]
    ints, floats = np.array([-2, 0, 3]), np.array([-2.0, 0.0, 3.0])
    y = op.f(ints)
    assert y.dtype == np.float64 and op.df(ints, y).dtype == np.float64
    np.testing.assert_array_equal(y, op.f(floats))
    np.testing.assert_array_equal(op.df(ints, y), op.df(floats, op.f(floats)))
    assert float(op.f(0.5)) == float(op.f(np.array([0.5]))[0])


EXTREMES = np.array([-1e4, -1e3, -80.0, -30.0, 0.0, 30.0, 80.0, 1e3, 1e4])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_no_warnings_and_finite_at_large_magnitudes(name, dtype):
    op = ACTIVATIONS[name]
    z = EXTREMES.astype(dtype)
    # underflow of a vanishing tail to 0 is harmless; anything else is a bug
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = op.f(z)
        dy = op.df(z, y)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dy))


# Limits at ±1e4 that follow from the formulas (f(-1e4), f(1e4), df(-1e4), df(1e4)).
LIMITS = {
    "sigmoid": (0.0, 1.0, 0.0, 0.0),
    "tanh": (-1.0, 1.0, 0.0, 0.0),
    "relu": (0.0, 1e4, 0.0, 1.0),
    "elu": (-1.0, 1e4, 0.0, 1.0),
    "softplus": (0.0, 1e4, 0.0, 1.0),
    "silu": (0.0, 1e4, 0.0, 1.0),
    "gelu": (0.0, 1e4, 0.0, 1.0),
    "gelu_tanh": (0.0, 1e4, 0.0, 1.0),
    "hard_tanh": (-1.0, 1.0, 0.0, 0.0),
}


@pytest.mark.parametrize(("name", "limits"), LIMITS.items())
def test_saturating_limits(name, limits):
    op = ACTIVATIONS[name]
    z = np.array([-1e4, 1e4])
    y = op.f(z)
    np.testing.assert_allclose([*y, *op.df(z, y)], limits, rtol=1e-12, atol=1e-300)


def _mp(name: str, z: float) -> float:
    """High-precision value of the forward, from its textbook formula."""
    x = mpmath.mpf(z)
    formulas = {
        "sigmoid": lambda: 1 / (1 + mpmath.exp(-x)),
        "softplus": lambda: mpmath.log(1 + mpmath.exp(x)),
        "silu": lambda: x / (1 + mpmath.exp(-x)),
        "gelu": lambda: x * mpmath.ncdf(x),
        # x/2·(1 + tanh u) = x/(1 + e^{-2u}); the tanh form cancels beyond 60 digits
        "gelu_tanh": lambda: x / (1 + mpmath.exp(
            -2 * mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3))),
        "elu": lambda: mpmath.expm1(x) if x <= 0 else x,
    }
    with mpmath.workdps(60):
        return float(formulas[name]())


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "gelu", "gelu_tanh", "elu"])
@settings(max_examples=30)
@given(z=st.one_of(st.floats(-35.0, 35.0), st.floats(-1e-6, 1e-6)))
def test_forward_keeps_relative_accuracy_in_the_tails(name, z):
    # naive formulas (1 + tanh, exp - 1, log(1 + e^z)) lose every digit here
    expected = _mp(name, z)
    got = float(ACTIVATIONS[name].f(np.array([z]))[0])
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-300)


# ---- softmax ----------------------------------------------------------------------------

softmax = VECTOR_ACTIVATIONS["softmax"]
logits = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                    elements=st.floats(-5.0, 5.0))


@settings(max_examples=30)
@given(z=logits, shift=st.floats(-1e3, 1e3))
def test_softmax_is_a_distribution_invariant_to_shifts(z, shift):
    y = softmax.f(z)
    assert np.all(y > 0)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax.f(z + shift), y, rtol=1e-9, atol=1e-15)


@settings(max_examples=30)
@given(z=logits, seed=st.integers(0, 2**16))
def test_softmax_vjp_matches_central_differences(z, seed):
    g = np.random.default_rng(seed).standard_normal(z.shape)
    analytic = softmax.vjp(softmax.f(z), g)
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = STEP
        numeric[i] = np.sum(g * (softmax.f(z + e) - softmax.f(z - e))) / (2 * STEP)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_along_another_axis_matches_transposed():
    z = np.random.default_rng(0).standard_normal((3, 4))
    g = np.random.default_rng(1).standard_normal((3, 4))
    np.testing.assert_allclose(softmax.f(z, axis=0), softmax.f(z.T).T)
    np.testing.assert_allclose(softmax.vjp(softmax.f(z, axis=0), g, axis=0),
                               softmax.vjp(softmax.f(z.T), g.T).T)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_stable_and_dtype_preserving_at_large_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = softmax.f(z)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_get_finds_both_tables_and_names_the_known_ones_on_a_typo():
    assert get("relu") is ACTIVATIONS["relu"]
    assert get("softmax") is softmax
    with pytest.raises(ValueError, match="known activations: identity, sigmoid"):
        get("rleu")


_SPECIAL = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 2.0 ** -140, -3.5, 2.0])  # subnormal in both


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=20)
@given(data=st.data())
def test_vjp_is_bit_for_bit_g_times_df_in_a_fresh_buffer(name, data):
    """The layer's backward (the product in df's own buffer) changes no bit, no dtype."""
    op = ACTIVATIONS[name]
    z_dtype, g_dtype = data.draw(st.sampled_from([np.float64, np.float32])), \
        data.draw(st.sampled_from([np.float64, np.float32]))
    shape = data.draw(hnp.array_shapes(max_dims=3, max_side=4))
    lo, hi = op.domain
    z = data.draw(hnp.arrays(z_dtype, shape, elements=st.sampled_from(
        [*op.kinks, lo, hi, 0.0]) | st.floats(lo, hi, width=32)))
    g = data.draw(hnp.arrays(g_dtype, shape, elements=st.sampled_from(list(_SPECIAL)) |
                             st.floats(-1e3, 1e3, width=32)))
    with np.errstate(all="ignore"):  # inf · 0 in g is NaN in both
        y = op.f(z)
        z0, y0, g0 = z.copy(), y.copy(), g.copy()
        expected = g * op.df(z, y)
        got = op.vjp(z, y, g)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit for bit: -0.0 and NaN included
    assert not any(np.shares_memory(got, a) for a in (z, y, g))
    assert all(a.tobytes() == b.tobytes() for a, b in ((z, z0), (y, y0), (g, g0)))


@settings(max_examples=200)
@given(x=st.floats(-30.0, 30.0) | st.floats(-1e-8, 1e-8) | st.sampled_from(
    [0.0, -0.0, 26.5, 26.6, 27.0, 40.0, 1e300, -1e300, np.inf, -np.inf]))
def test_the_vectorized_erfc_is_within_a_few_ulp_of_the_c_library(x):
    """GELU's Φ without a Python call per element (models.activations._erfc)."""
    from gradcheck.models.activations import _erfc

    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = float(_erfc(np.array([x]))[0])
    expected = math.erfc(x)
    if expected >= np.finfo(np.float64).tiny:
        assert abs(got - expected) <= 16 * np.finfo(np.float64).eps * expected
    else:  # a subnormal result carries fewer bits: a few of its smallest steps
        assert abs(got - expected) <= 8 * np.finfo(np.float64).smallest_subnormal
