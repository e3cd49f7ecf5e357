"""Lambdified references: the NumPy path agrees with the precise one, never warns or
overflows, is cached, and validates its input."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.reference.evidence import loss_points
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES
from gradcheck.reference.lambdified import (
    numpy_activation_derivative,
    numpy_loss_gradient,
    numpy_loss_value,
    precise_activation_derivative,
    precise_loss_gradient,
    precise_loss_value,
)
from tests.support.names import UNKNOWN_ACTIVATION, UNKNOWN_LOSS

EPS = float(np.finfo(np.float64).eps)
EXTREME = np.array([-1e4, -800.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 800.0, 1e4])


@pytest.mark.parametrize("name", sorted(EXACT_ACTIVATIONS))
def test_numpy_reference_agrees_with_precise_reference(name):
    zs = np.linspace(-6, 6, 241)
    fast, precise = numpy_activation_derivative(name)(zs), precise_activation_derivative(name)(zs)
    # SymPy's formula in float64: a few dozen roundings of terms of size ≤ max(1, |f'|)
    np.testing.assert_allclose(fast, precise, rtol=0, atol=1e-13 * max(1.0, np.abs(precise).max()))


@pytest.mark.parametrize("name", sorted(EXACT_ACTIVATIONS))
def test_numpy_reference_is_finite_at_extreme_inputs(name):
    # RuntimeWarnings are errors in this suite: an overflow inside would fail here
    out = numpy_activation_derivative(name)(EXTREME)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, precise_activation_derivative(name)(EXTREME), rtol=1e-12,
                               atol=1e-12)


def test_overflowing_entries_are_recomputed_exactly():
    # e^z / (e^z + 1)^2 overflows to inf/inf for z = 800 in float64
    assert numpy_activation_derivative("sigmoid")(np.array([800.0]))[0] == 0.0
    assert precise_activation_derivative("sigmoid")(np.array([30.0]))[0] == pytest.approx(
        np.exp(-30.0) / (1 + np.exp(-30.0)) ** 2, rel=1e-15)


@pytest.mark.parametrize("name", sorted(EXACT_LOSSES))
def test_loss_paths_agree_and_have_the_documented_shapes(name):
    pred, target = loss_points(name, 5, 3, seed=7)
    value, grad = numpy_loss_value(name)(pred, target), numpy_loss_gradient(name)(pred, target)
    assert value.shape == (5,) and grad.shape == (5, 3)
    np.testing.assert_allclose(value, precise_loss_value(name)(pred, target), rtol=1e-13)
    np.testing.assert_allclose(grad, precise_loss_gradient(name)(pred, target), rtol=1e-12,
                               atol=1e-15)


def test_softmax_ce_reference_survives_huge_logits():
    grad = numpy_loss_gradient("softmax_ce")(np.array([[1000.0, 0.0, -1000.0]]),
                                             np.array([[0.0, 1.0, 0.0]]))
    np.testing.assert_array_equal(grad, [[1.0, -1.0, 0.0]])


def test_callables_are_cached():
    assert numpy_activation_derivative("tanh") is numpy_activation_derivative("tanh")


def test_inputs_are_not_modified():
    pred, target = loss_points("mse", 3, 2)
    before = pred.copy()
    numpy_loss_gradient("mse")(pred, target)
    np.testing.assert_array_equal(pred, before)


def test_bad_names_and_shapes_are_refused():
    with pytest.raises(KeyError, match=f"unknown activation '{UNKNOWN_ACTIVATION}'"):
        numpy_activation_derivative(UNKNOWN_ACTIVATION)
    with pytest.raises(KeyError, match=f"unknown loss '{UNKNOWN_LOSS}'"):
        numpy_loss_gradient(UNKNOWN_LOSS)
    with pytest.raises(ValueError, match=r"\(N, K\) arrays of the same shape, got \(3,\)"):
        numpy_loss_gradient("mse")(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("v", [-31.6227766, -25.0, -38.0])
def test_precise_reference_survives_total_cancellation(v):
    # ½ + ½·erf(z/√2) + z·φ(z): the first two cancel to ~1e-200 and absorb the third at
    # any precision below ~220 digits; a precision loop that only asked for agreement
    # between two precisions returned 0 here
    import mpmath
    with mpmath.workdps(400):
        z = mpmath.mpf(v)
        expected = float(mpmath.ncdf(z) + z * mpmath.npdf(z))
    assert expected != 0.0
    got = precise_activation_derivative("gelu")(np.array([v]))[0]
    assert got == pytest.approx(expected, rel=1e-15)
