"""Three sources of truth, one property: for every activation and loss, at drawn points
(moderate, large magnitudes up to 1e4, and within 1e-9..1e-3 of kinks), the exact
derivative (SymPy, evaluated at 30 digits), the hand-written NumPy derivative of
gradcheck.models and the finite differences of gradcheck.check_grad agree, each within
what its method can resolve:

- NumPy formula vs exact: |Δ| ≤ 64·eps·max(1, |exact|). The hand-written formulas combine
  terms of size ≤ max(1, |f'|) in a handful of operations; measured worst cases are
  ~40 ulps (gelu_tanh), so 64 leaves a margin without hiding a wrong formula, which
  errs by O(1) at moderate z.
- finite differences vs exact: judged by the checker itself (its own error estimate per
  entry; kinks reported as non-differentiable, not as mismatches): ``result.ok``. This
  includes points next to C¹ joins (elu and softsign at 0: f' continuous, f'' jumps),
  where a central difference errs by O(h) rather than O(h²).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.models.activations import ACTIVATIONS
from gradcheck.models.losses import LOSSES
from gradcheck.reference.evidence import activation_evidence, loss_evidence, loss_points
from gradcheck.reference.lambdified import (
    precise_activation_derivative,
    precise_loss_gradient,
)

EPS = float(np.finfo(np.float64).eps)
NUMPY_ULPS = 64


@st.composite
def activation_points(draw) -> tuple[str, np.ndarray]:
    name = draw(st.sampled_from(sorted(ACTIVATIONS)))
    op = ACTIVATIONS[name]
    moderate = st.floats(*op.domain)
    large = st.builds(lambda s, e: s * 10.0**e, st.sampled_from([-1.0, 1.0]), st.floats(0, 4))
    kinks = list(op.kinks) or [0.0]
    near = st.builds(lambda k, s, e: k + s * 10.0**-e, st.sampled_from(kinks),
                     st.sampled_from([-1.0, 1.0]), st.floats(3, 9))
    zs = draw(st.lists(st.one_of(moderate, large, near), min_size=1, max_size=6))
    return name, np.array(zs, dtype=np.float64)


@settings(max_examples=120)
@given(activation_points())
def test_activation_exact_numpy_and_finite_differences_agree(case):
    name, zs = case
    op = ACTIVATIONS[name]
    exact = precise_activation_derivative(name)(zs)
    off_kink = ~np.isin(zs, np.array(op.kinks))  # exactly at a kink no derivative exists
    analytic = op.df(zs, op.f(zs))
    bound = NUMPY_ULPS * EPS * np.maximum(1.0, np.abs(exact))
    assert np.all(np.abs(analytic - exact)[off_kink] <= bound[off_kink]), (
        name, zs, analytic, exact)
    # Finite differences can only see a slope the float64 forward resolves: tanh(±100) is
    # ±1 exactly, so its derivative 5e-87 is invisible (and Σ tanh may cancel to exactly 0,
    # leaving the checker no scale for its rounding estimate).
    resolvable = np.abs(exact) * np.maximum(np.abs(zs), 1) >= EPS * np.abs(op.f(zs))
    if resolvable.any():
        result = gradcheck.check_grad(lambda x: float(np.sum(op.f(x))),
                                      precise_activation_derivative(name), zs[resolvable],
                                      mode="full")
        assert result.ok, f"{name} at {zs[resolvable]}:\n{result}"


@st.composite
def loss_cases(draw) -> tuple[str, np.ndarray, np.ndarray]:
    name = draw(st.sampled_from(sorted(LOSSES)))
    samples = draw(st.integers(1, 4))
    width = draw(st.integers(1, 4)) if LOSSES[name].target != "class" else draw(st.integers(2, 4))
    pred, target = loss_points(name, samples, width, seed=draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 10.0, 300.0])) if LOSSES[name].pred == "real" else 1.0
    return name, pred, target, scale


@settings(max_examples=80)
@given(loss_cases())
def test_loss_exact_numpy_and_finite_differences_agree(case):
    """Exact = NumPy also at large logits and residuals (``scale``); finite differences at
    the unscaled points: at saturated logits (|x| ~ 300) the softmax_ce loss is ~1e-29,
    below what the float64 forward represents (it returns 0), so no difference can see it.
    """
    name, pred, target, scale = case
    op = LOSSES[name]
    for points in (pred * scale, pred):
        exact = precise_loss_gradient(name)(points, target)
        analytic = op.grad(points, target)
        bound = NUMPY_ULPS * EPS * np.maximum(1.0, np.abs(exact))
        assert np.all(np.abs(analytic - exact) <= bound), (name, points, target, analytic, exact)
    result = gradcheck.check_grad(lambda x: float(np.sum(op.value(x, target))),
                                  lambda x: precise_loss_gradient(name)(x, target), pred,
                                  mode="full")
    assert result.ok, f"{name}:\n{result}"


def test_evidence_on_the_whole_grid_is_at_rounding_level():
    for name in ACTIVATIONS:
        ev = activation_evidence(name, points=101)
        assert ev.numpy_max_abs <= NUMPY_ULPS * EPS * 10, ev  # |f'| ≤ 10 on every domain
        assert ev.fd_max_abs <= 1e-8, ev  # central differences: ~eps^(2/3) ≈ 4e-11 scale
    for name in LOSSES:
        ev = loss_evidence(name, samples=16)
        assert ev.numpy_max_rel <= 1e-13, ev
        assert ev.fd_max_rel <= 1e-6, ev
