"""Vector identities: proven by SymPy, and the models' vector code agrees with them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradcheck.models.activations import VECTOR_ACTIVATIONS
from gradcheck.models.losses import LOSSES
from gradcheck.reference.exact import EXACT_VECTOR_ACTIVATIONS
from gradcheck.reference.render_md import escape
from gradcheck.reference.vector import (
    all_identities,
    fused_sigmoid_bce,
    fused_softmax_ce,
    softmax_jacobian,
    squared_error_conventions,
)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_softmax_jacobian_identity_is_proven(k):
    identity = softmax_jacobian(k)
    assert identity.proof == f"symbolic, for K = {k} and every z"
    assert identity.derived.shape == (k, k)


def test_every_identity_is_proven_and_renders():
    for identity in all_identities():
        assert identity.proof.startswith("symbolic, for "), identity.title
        assert escape(identity.title) in identity._repr_markdown_()


def test_fused_gradients_state_their_condition():
    assert "= 1" in fused_softmax_ce(3).condition
    assert fused_sigmoid_bce().condition == ""


def test_squared_error_conventions_differ_by_the_stated_factors():
    mse, half, mean_all = squared_error_conventions()
    p_, t_ = sp.symbols("p t")
    n, k = sp.symbols("N K", integer=True, positive=True)
    # derived from a double Sum with N and K symbolic: the 1/N (and 1/K) cannot hide
    assert sp.simplify(mse.derived - 2 * (p_ - t_) / n) == 0
    assert sp.simplify(half.derived - (p_ - t_) / n) == 0
    assert sp.simplify(mean_all.derived - 2 * (p_ - t_) / (n * k)) == 0
    assert all(i.proof == "symbolic, for every N and K" for i in (mse, half, mean_all))


def _exact_softmax_jacobian(zs: np.ndarray) -> np.ndarray:
    symbols = sp.symbols(f"z_1:{zs.size + 1}", real=True)
    s = sp.Matrix(EXACT_VECTOR_ACTIVATIONS["softmax"].expr(symbols))
    point = {a: sp.Float(float(v), 40) for a, v in zip(symbols, zs, strict=True)}
    jac = s.jacobian(symbols).subs(point)
    return np.array(jac.evalf(30), dtype=np.float64)


@settings(max_examples=25)
@given(arrays(np.float64, st.integers(2, 4), elements=st.floats(-20, 20)),
       arrays(np.float64, 4, elements=st.floats(-3, 3)))
def test_models_softmax_vjp_equals_exact_jacobian_transpose(zs, g):
    g = g[: zs.size]
    exact = _exact_softmax_jacobian(zs).T @ g
    op = VECTOR_ACTIVATIONS["softmax"]
    got = op.vjp(op.f(zs[None, :]), g[None, :])[0]
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-14)


@settings(max_examples=25)
@given(arrays(np.float64, (3, 4), elements=st.floats(-30, 30)), st.integers(0, 2**32 - 1))
def test_models_softmax_ce_gradient_is_the_fused_form(logits, seed):
    target = np.eye(4)[np.random.default_rng(seed).integers(0, 4, 3)]
    s = VECTOR_ACTIVATIONS["softmax"].f(logits)
    np.testing.assert_allclose(LOSSES["softmax_ce"].grad(logits, target), s - target,
                               rtol=1e-12, atol=1e-15)
