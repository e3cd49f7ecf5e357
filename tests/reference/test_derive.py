"""Derivations: every recorded chain-rule step is a true equation, simplified forms equal
SymPy's derivative, the single-neuron result is generated, and the objects render."""

from __future__ import annotations

import pytest
import sympy as sp

from gradcheck.reference.derive import (
    chain_steps,
    derive_activation,
    derive_loss,
    equal_everywhere,
    single_neuron,
)
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES, expand_helpers, p, t, y, z
from tests.support.names import UNKNOWN_ACTIVATION, UNKNOWN_LOSS

ALL = [("activation", n) for n in EXACT_ACTIVATIONS] + [("loss", n) for n in EXACT_LOSSES]


def _derivation(kind: str, name: str):
    return derive_activation(name) if kind == "activation" else derive_loss(name)


def _pin(expr: sp.Expr) -> sp.Expr:
    """Fix the other symbols of loss derivations at generic values, keep the variable."""
    others = {t: sp.Rational(3, 10)}
    others.update({s: sp.Rational(k + 2, 7) * (-1) ** k for k, s in enumerate(
        sorted(expr.free_symbols - {z, p, t}, key=str))})
    return expr.subs(others)


@pytest.mark.parametrize(("kind", "name"), ALL)
def test_every_step_is_a_true_equation(kind, name):
    d = _derivation(kind, name)
    lo, hi = (0, 1) if kind == "loss" and EXACT_LOSSES[name].pred == "probability" else (-4, 4)
    for step in d.steps:
        # the rule as written (with unevaluated d/dz of the parts) equals the evaluated result
        written = _pin(step.applied.doit())
        assert equal_everywhere(written, _pin(step.result), d.var, lo=lo, hi=hi, points=21)
        assert equal_everywhere(_pin(sp.diff(step.target, d.var)), _pin(step.result), d.var,
                                lo=lo, hi=hi, points=21)


@pytest.mark.parametrize(("kind", "name"), ALL)
def test_simplified_derivative_equals_sympys_derivative(kind, name):
    d = _derivation(kind, name)
    lo, hi = (0, 1) if kind == "loss" and EXACT_LOSSES[name].pred == "probability" else (-4, 4)
    assert equal_everywhere(_pin(d.simplified), _pin(d.derivative), d.var, lo=lo, hi=hi, points=41)


def test_steps_start_at_the_outermost_rule():
    rules = [s.rule for s in chain_steps(sp.sin(z**2 + 1), z)]
    assert rules == ["chain rule (derivative of sin)", "sum rule", "power rule and chain rule"]
    assert chain_steps(z * sp.exp(z), z)[0].rule == "product rule"


def test_step_count_is_bounded():
    deep = z
    for _ in range(30):
        deep = sp.sin(deep + 1)
    assert len(chain_steps(deep, z, limit=5)) == 5


def test_equal_everywhere_finds_a_difference_in_one_branch():
    a = sp.Piecewise((z, z < 0), (2 * z, True))
    b = sp.Piecewise((z, z < 0), (2 * z + sp.Rational(1, 10**20), True))
    with pytest.raises(AssertionError, match="differ at"):
        equal_everywhere(a, b, z)
    reordered = sp.Piecewise((2 * z, z >= 0), (z, True))
    assert equal_everywhere(a, reordered, z) in ("symbolic", "numeric (161 points, 40 digits)")


def test_identity_proofs_are_recorded_for_every_row_with_an_identity():
    for name, row in EXACT_ACTIVATIONS.items():
        assert (derive_activation(name).identity_proof != "") == (row.identity is not None)


def test_unknown_names_raise_with_the_known_ones():
    with pytest.raises(KeyError, match="known: identity, sigmoid"):
        derive_activation(UNKNOWN_ACTIVATION)
    with pytest.raises(KeyError, match="known: mse"):
        derive_loss(UNKNOWN_LOSS)


def test_single_neuron_gradient_is_generated_by_the_chain_rule():
    w, x = sp.symbols("w x", real=True)
    f, fprime = sp.Function("f"), sp.Function("f'")
    n = single_neuron(None)
    assert sp.simplify(n.gradient - (-(t - f(w * x)) * fprime(w * x) * x)) == 0
    assert n.specialised is None


@pytest.mark.parametrize("name", sorted(EXACT_ACTIVATIONS))
def test_single_neuron_specialised_to_every_activation(name):
    w, x = sp.symbols("w x", real=True)
    n = single_neuron(name)
    row = EXACT_ACTIVATIONS[name]
    concrete = sp.diff((t - row.expr.subs(z, w * x)) ** 2 / 2, w)
    value = expand_helpers(n.specialised).subs(y, row.expr.subs(z, w * x))
    assert equal_everywhere(value, concrete, w, points=15,
                            extra={x: sp.Rational(-5, 3), t: sp.Rational(2, 9)})
    assert n.specialised.has(t - y)


def test_sigmoid_neuron_reads_like_the_textbook():
    assert sp.simplify(single_neuron("sigmoid").specialised
                       - (-sp.Symbol("x", real=True) * (t - y) * y * (1 - y))) == 0


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softsign"])
def test_derivation_renders_in_jupyter(name):
    d = derive_activation(name)
    latex = d._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert sp.latex(d.expr) in latex
    markdown = d._repr_markdown_()
    assert f"### {name}" in markdown and "```math" in markdown


def test_single_neuron_renders_in_jupyter():
    markdown = single_neuron("tanh")._repr_markdown_()
    assert "with f = tanh" in markdown and r"\left(1 - y^{2}\right)" in markdown


@pytest.mark.parametrize("name", [n for n in EXACT_ACTIVATIONS if EXACT_ACTIVATIONS[n].branch_points])
def test_the_value_at_a_kink_is_stated_as_the_models_convention(name):
    import numpy as np

    from gradcheck.models.activations import ACTIVATIONS
    from gradcheck.reference.render_md import render_blocks
    d = derive_activation(name)
    kinks = [k for k in d.branch_points if not k.differentiable]
    text = render_blocks(d.blocks())
    assert text.count("Convention at") == len(kinks)
    op = ACTIVATIONS[name]
    for k in kinks:  # the value the report calls a convention is the one the models use
        at = np.array([float(k.at)])
        assert float(d.simplified.subs(d.var, k.at)) == pytest.approx(op.df(at, op.f(at))[0])


@pytest.mark.parametrize("name", [n for n in EXACT_LOSSES if EXACT_LOSSES[n].element is not None])
def test_loss_identities_are_proven_for_symbolic_targets(name):
    d = derive_loss(name)
    if d.identity is not None:
        assert d.identity_proof == "symbolic, for every t"
