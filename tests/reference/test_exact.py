"""The SymPy table: pairing with the models' tables, derivatives against closed forms typed
here (not taken from the code), identity forms, and one-sided derivatives at kinks."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS
from gradcheck.models.losses import LOSSES
from gradcheck.reference.derive import derive_activation, derive_loss, softmax_ce_symbols
from gradcheck.reference.exact import (
    EXACT_ACTIVATIONS,
    EXACT_LOSSES,
    EXACT_VECTOR_ACTIVATIONS,
    expand_helpers,
    one_sided,
    p,
    t,
    y,
    z,
)
from gradcheck.reference.lambdified import precise_activation, precise_loss_value

LAMBDA = "1.0507009873554804934193349852946"  # strings: converted at the working precision
ALPHA = "1.6732632423543772848170429916717"


def _sig(v):
    return 1 / (1 + mpmath.exp(-v))


def _gelu_tanh_prime(v):
    c, k = mpmath.sqrt(2 / mpmath.pi), mpmath.mpf("0.044715")
    u = c * (v + k * v**3)
    return (1 + mpmath.tanh(u)) / 2 + v / 2 * mpmath.sech(u) ** 2 * c * (1 + 3 * k * v**2)


# f'(z) of every activation, written from the textbooks, in mpmath
CLOSED_FORMS = {
    "identity": lambda v: mpmath.mpf(1),
    "sigmoid": lambda v: _sig(v) * (1 - _sig(v)),
    "tanh": lambda v: mpmath.sech(v) ** 2,
    "relu": lambda v: mpmath.mpf(1 if v > 0 else 0),
    "leaky_relu": lambda v: mpmath.mpf(1 if v > 0 else "0.01"),
    "elu": lambda v: mpmath.mpf(1) if v > 0 else mpmath.exp(v),
    "selu": lambda v: mpmath.mpf(LAMBDA) * (1 if v > 0 else mpmath.mpf(ALPHA) * mpmath.exp(v)),
    "softplus": _sig,
    "silu": lambda v: _sig(v) * (1 + v * (1 - _sig(v))),
    "gelu": lambda v: mpmath.ncdf(v) + v * mpmath.npdf(v),
    "gelu_tanh": _gelu_tanh_prime,
    "softsign": lambda v: 1 / (1 + abs(v)) ** 2,
    "hard_tanh": lambda v: mpmath.mpf(1 if -1 < v < 1 else 0),
}

# ∂ℓ/∂p of every elementwise loss, for one entry
LOSS_CLOSED_FORMS = {
    "mse": lambda pv, tv: 2 * (pv - tv),
    "half_sse": lambda pv, tv: pv - tv,
    "bce": lambda pv, tv: (pv - tv) / (pv * (1 - pv)),
    "bce_logits": lambda pv, tv: _sig(pv) - tv,
    "cce": lambda pv, tv: -tv / pv,
    "huber": lambda pv, tv: max(-1, min(1, pv - tv)),
}

# (kink, left derivative, right derivative)
ONE_SIDED = {
    "relu": [(0, 0, 1)],
    "leaky_relu": [(0, sp.Rational(1, 100), 1)],
    "elu": [(0, 1, 1)],
    "selu": [(0, sp.Rational(LAMBDA) * sp.Rational(ALPHA), sp.Rational(LAMBDA))],
    "softsign": [(0, 1, 1)],
    "hard_tanh": [(-1, 0, 1), (1, 1, 0)],
}

POINTS = [-7.25, -3.5, -1.5, -0.75, -0.125, 0.0625, 0.5, 0.875, 1.25, 2.5, 6.75]


def _at(expr: sp.Expr, var: sp.Symbol, value: float, digits: int = 40) -> mpmath.mpf:
    return mpmath.mpf(str(sp.N(expr.subs(var, sp.Rational(value)), digits)))


# ---- single declaration ---------------------------------------------------------------

def test_every_activation_is_declared_in_both_tables():
    assert set(EXACT_ACTIVATIONS) == set(ACTIVATIONS), (
        f"only in models: {set(ACTIVATIONS) - set(EXACT_ACTIVATIONS)}; "
        f"only in reference: {set(EXACT_ACTIVATIONS) - set(ACTIVATIONS)}")
    assert set(EXACT_VECTOR_ACTIVATIONS) == set(VECTOR_ACTIVATIONS)


def test_every_loss_is_declared_in_both_tables():
    assert set(EXACT_LOSSES) == set(LOSSES), (
        f"only in models: {set(LOSSES) - set(EXACT_LOSSES)}; "
        f"only in reference: {set(EXACT_LOSSES) - set(LOSSES)}")


def test_every_activation_and_loss_has_a_closed_form_in_this_test():
    assert set(CLOSED_FORMS) == set(EXACT_ACTIVATIONS)
    assert set(LOSS_CLOSED_FORMS) | {"softmax_ce"} == set(EXACT_LOSSES)


@pytest.mark.parametrize("name", sorted(EXACT_LOSSES))
def test_loss_rows_declare_the_same_inputs_as_the_models(name):
    assert (EXACT_LOSSES[name].pred, EXACT_LOSSES[name].target) == (
        LOSSES[name].pred, LOSSES[name].target)


@pytest.mark.parametrize("name", sorted(EXACT_ACTIVATIONS))
def test_models_kinks_are_exactly_the_branch_points_where_sides_differ(name):
    kinks = {float(k) for k in EXACT_ACTIVATIONS[name].branch_points
             if one_sided(EXACT_ACTIVATIONS[name].expr, z, k)[0]
             != one_sided(EXACT_ACTIVATIONS[name].expr, z, k)[1]}
    assert kinks == set(ACTIVATIONS[name].kinks)


@pytest.mark.parametrize("name", sorted(EXACT_ACTIVATIONS))
def test_sympy_twin_is_the_same_function_as_the_numpy_forward(name):
    zs = np.linspace(-6, 6, 97)
    op = ACTIVATIONS[name]
    np.testing.assert_allclose(precise_activation(name)(zs), op.f(zs), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", sorted(EXACT_LOSSES))
def test_sympy_twin_is_the_same_loss_as_the_numpy_value(name):
    rng = np.random.default_rng(3)
    row = EXACT_LOSSES[name]
    low = 0.05 if row.pred == "probability" else -3.0
    pred = rng.uniform(low, 0.95 if row.pred == "probability" else 3.0, (6, 3))
    target = (np.eye(3)[rng.integers(0, 3, 6)] if row.target == "class"
              else rng.uniform(0, 1, (6, 3)))
    np.testing.assert_allclose(precise_loss_value(name)(pred, target),
                               LOSSES[name].value(pred, target), rtol=1e-13)


# ---- derivatives against closed forms --------------------------------------------------

@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_sympy_derivative_matches_the_closed_form(name):
    d = derive_activation(name)
    with mpmath.workdps(40):
        for v in POINTS:
            expected = CLOSED_FORMS[name](mpmath.mpf(v))
            for form in (d.derivative, d.simplified):
                got = _at(form, z, v)
                assert abs(got - expected) <= mpmath.mpf(10) ** -30 * (1 + abs(expected)), (
                    name, v, got, expected)


@pytest.mark.parametrize("name", sorted(n for n, r in EXACT_ACTIVATIONS.items()
                                        if r.identity is not None))
def test_identity_form_matches_the_closed_form(name):
    row = EXACT_ACTIVATIONS[name]
    identity = expand_helpers(row.identity).subs(y, row.expr)
    with mpmath.workdps(40):
        for v in POINTS:
            expected = CLOSED_FORMS[name](mpmath.mpf(v))
            tolerance = mpmath.mpf(10) ** -30 * (1 + abs(expected))
            assert abs(_at(identity, z, v) - expected) <= tolerance


@pytest.mark.parametrize("name", sorted(LOSS_CLOSED_FORMS))
def test_loss_derivative_matches_the_closed_form(name):
    d = derive_loss(name)
    lo, hi = (0.0625, 0.9375) if EXACT_LOSSES[name].pred == "probability" else (-3.0, 3.0)
    with mpmath.workdps(40):
        for pv in np.linspace(lo, hi, 9):
            for tv in (0.0, 0.25, 1.0):
                expected = LOSS_CLOSED_FORMS[name](mpmath.mpf(pv), mpmath.mpf(tv))
                got = mpmath.mpf(str(sp.N(d.derivative.subs({p: sp.Rational(pv),
                                                            t: sp.Rational(tv)}), 40)))
                assert abs(got - expected) <= mpmath.mpf(10) ** -30 * (1 + abs(expected))


def test_softmax_ce_gradient_is_s_times_target_sum_minus_t():
    xs, ts = softmax_ce_symbols(3)
    d = derive_loss("softmax_ce")
    values = {xs[0]: sp.Rational(1, 3), xs[1]: -2, xs[2]: sp.Rational(5, 4),
              ts[0]: sp.Rational(1, 5), ts[1]: sp.Rational(1, 2), ts[2]: sp.Rational(7, 10)}
    s1 = sp.exp(values[xs[0]]) / sum(sp.exp(values[x]) for x in xs)
    expected = s1 * (values[ts[0]] + values[ts[1]] + values[ts[2]]) - values[ts[0]]
    assert abs(sp.N(d.derivative.subs(values) - expected, 40)) < 1e-35


# ---- kinks -------------------------------------------------------------------------------

def test_every_piecewise_row_has_a_one_sided_table_entry():
    assert {n for n, r in EXACT_ACTIVATIONS.items() if r.branch_points} == set(ONE_SIDED)


@pytest.mark.parametrize("name", sorted(ONE_SIDED))
def test_one_sided_derivatives_at_kinks(name):
    kinks = derive_activation(name).branch_points
    expected = ONE_SIDED[name]
    assert [(k.at, k.left, k.right) for k in kinks] == [
        (sp.Integer(a), sp.nsimplify(left), sp.nsimplify(right)) for a, left, right in expected]
    assert [k.differentiable for k in kinks] == [left == right for _, left, right in expected]


def test_one_sided_on_an_expression_with_different_slopes():
    expr = sp.Piecewise((-3 * z, z < 2), (z**2, True))
    assert one_sided(expr, z, 2) == (-3, 4)


def test_the_unknown_name_sentinels_are_unknown_to_every_table():
    from gradcheck.models.activations import ACTIVATIONS
    from gradcheck.models.losses import LOSSES
    from gradcheck.reference.exact import EXACT_LOSSES
    from tests.support.names import UNKNOWN_ACTIVATION, UNKNOWN_LOSS

    assert UNKNOWN_ACTIVATION not in {*ACTIVATIONS, *EXACT_ACTIVATIONS}
    assert UNKNOWN_LOSS not in {*LOSSES, *EXACT_LOSSES}
