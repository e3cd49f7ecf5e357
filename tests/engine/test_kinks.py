"""Kinks: a valid subgradient passes and is reported; an invalid one fails; the rest is judged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.streams import stream
from support.toy_layers import MaxPool1D, Relu


def kinked_input(seed: int, shape=(3, 4), zeros=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape)
    x.flat[rng.choice(x.size, zeros, replace=False)] = 0.0
    return x


@settings(max_examples=25)
@given(at_zero=st.floats(0.0, 1.0), seed=st.integers(0, 2**16), mode=st.sampled_from(
    ["full", "fast"]))
def test_relu_at_zero_passes_with_any_subgradient_in_0_1(at_zero, seed, mode):
    x = kinked_input(seed)
    result = gradcheck.check_layer(Relu(at_zero), x, mode=mode, seed=seed)
    assert result.ok, str(result)
    if mode == "full":
        kinks = {k.index for k in result.nondifferentiable}
        assert kinks <= {tuple(i) for i in np.argwhere(x == 0)}


@settings(max_examples=25)
@given(at_zero=st.one_of(st.floats(-2.0, -0.05), st.floats(1.05, 3.0)),
       seed=st.integers(0, 2**16))
def test_relu_at_zero_fails_outside_0_1(at_zero, seed):
    x = kinked_input(seed)
    result = gradcheck.check_layer(Relu(at_zero), x, mode="full", seed=seed)
    # fails unless the upstream gradient happens to make the claimed value land in range
    G = stream(seed, "upstream").standard_normal(x.shape)  # the checker's upstream gradient
    zeros = x == 0
    outside = (np.abs(G[zeros]) * min(abs(at_zero), abs(at_zero - 1)) > 1e-6).any()
    assert result.ok != outside, str(result)


def test_kinks_are_reported_with_both_one_sided_derivatives():
    x = np.array([[0.0, 1.0, -1.0, 0.0]])
    result = gradcheck.check_layer(Relu(0.5), x, mode="full")
    G = stream(0, "upstream").standard_normal(x.shape)  # the checker's upstream gradient
    assert {k.index for k in result.nondifferentiable} == {(0, 0), (0, 3)}
    for k in result.nondifferentiable:
        g = G[k.index]
        assert sorted([k.left, k.right]) == pytest.approx(sorted([0.0, g]), abs=1e-6)
        assert k.analytic == pytest.approx(0.5 * g)


@pytest.mark.parametrize("claimed, ok", [(0.0, True), (1.0, True), (-1.0, True), (0.3, True),
                                         (1.5, False), (-1.2, False)])
def test_abs_at_zero(claimed, ok):
    x = np.array([0.0, 0.7, -0.4])

    def grad(z):
        return np.where(z == 0, claimed, np.sign(z))

    result = gradcheck.check_grad(lambda z: np.sum(np.abs(z)), grad, x, mode="full")
    assert result.ok == ok, str(result)
    assert [k.index for k in result.nondifferentiable] == [(0,)]


@pytest.mark.parametrize("route", ["first", "split"])
def test_max_pool_ties_pass_with_either_routing(route):
    x = np.array([[1.0, 1.0, 0.5, -0.3, 2.0, 2.0]])
    result = gradcheck.check_layer(MaxPool1D(route), x, mode="full")
    assert result.ok, str(result)
    tied = {(0, 0), (0, 1), (0, 4), (0, 5)}
    assert {k.index for k in result.nondifferentiable} == tied
    assert result.tensors[0].n_checked == x.size


def test_max_pool_ties_fail_with_the_full_gradient_to_every_tie():
    x = np.array([[1.0, 1.0, 0.5, -0.3, 2.0, 2.0]])
    result = gradcheck.check_layer(MaxPool1D("all"), x, mode="full")
    assert result.verdict == "wrong", str(result)
    assert {(0, 0), (0, 1), (0, 4), (0, 5)} <= {e.index for e in result.worst}


def test_max_pool_wrong_away_from_ties_is_caught():
    class DoubledPool(MaxPool1D):
        def backward(self, g):
            return 2 * super().backward(g)

    x = np.array([[1.0, 1.0, 0.5, -0.3, 2.5, 2.0]])
    result = gradcheck.check_layer(DoubledPool(), x, mode="full")
    assert not result.ok
    assert {e.index for e in result.worst} == {(0, 0), (0, 2), (0, 4)}  # the tie at 1.0 too


@pytest.mark.parametrize("claimed, ok", [(0.0, True), (-1.0, True), (-0.5, True), (1.0, False)])
def test_hinge_at_the_margin(claimed, ok):
    # mean hinge loss max(0, 1 - y·s) with scores s; entry 0 sits exactly at the margin
    y = np.array([1.0, -1.0, 1.0])
    s = np.array([1.0, 0.3, -0.2])

    def loss(z):
        return np.mean(np.maximum(0.0, 1.0 - y * z))

    def grad(z):
        margin = 1.0 - y * z
        g = np.where(margin > 0, -y, 0.0)
        return np.where(margin == 0, claimed * y, g) / z.size

    result = gradcheck.check_grad(loss, grad, s, mode="full")
    assert result.ok == ok, str(result)
    assert [k.index for k in result.nondifferentiable] == [(0,)]


def test_smooth_entries_are_still_judged_beside_a_kink():
    x = np.array([0.0, 0.7, -0.4])

    def grad(z):
        g = np.sign(z)
        g[1] *= 1.01  # a real bug away from the kink
        return g

    result = gradcheck.check_grad(lambda z: np.sum(np.abs(z)), grad, x, mode="full")
    assert not result.ok
    assert result.worst[0].index == (1,)
    assert result.tensors[0].n_wrong == 1


def test_near_kink_within_the_step_is_not_a_false_alarm():
    x = np.array([1e-9, -3e-7, 2e-6, 0.5])  # kinks closer than the step h ≈ 6e-6
    result = gradcheck.check_layer(Relu(), x[None, :], mode="full")
    assert result.ok, str(result)


def test_a_derivative_outside_the_one_sided_ones_fails_and_points_at_the_kink():
    # f(b) = relu(b) − 3·relu(−b): one-sided derivatives 1 and 3 at b = 0, while the chain
    # rule with relu'(0) = 0 gives 0. The checker fails it and says why it may be benign.
    def f(b):
        return float(np.maximum(b, 0).sum() - 3 * np.maximum(-b, 0).sum())

    def chain_rule(b):
        return (b > 0).astype(float) + 3 * (-b > 0).astype(float)

    result = gradcheck.check_grad(f, chain_rule, np.zeros(1))
    assert not result.ok
    (kink,) = result.nondifferentiable
    assert sorted([kink.left, kink.right]) == pytest.approx([1.0, 3.0], rel=1e-6)
    assert any("sits at a kink" in line for line in result.diagnosis)
    # right on both sides nearby: not wrong, but not OK either (engine.kinks)
    assert result.verdict == "inconclusive"
    assert "kink-convention" in {f.code for f in result.diagnosis}


def mixed_scale_kinks(seed: int, dtype) -> np.ndarray:
    """Entries of magnitude up to 1e3, with exact zeros and near-zeros (|x| ~ 1e-7)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 8)) * 10.0 ** rng.uniform(-1, 3)
    x[rng.random(x.shape) < 0.3] = 0.0
    near = rng.random(x.shape) < 0.2
    x[near] = 1e-7 * rng.standard_normal(int(near.sum()))
    return x.astype(dtype)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), at_zero=st.sampled_from([0.0, 0.5, 1.0]))
def test_float32_kinks_beside_large_entries_are_no_false_alarm(seed, at_zero):
    """Rounding of a large float32 φ blurs the one-sided derivatives of a small entry; a
    gap that persists at half the step must still be read as a kink, not as a mismatch."""
    x = mixed_scale_kinks(seed, np.float32)
    result = gradcheck.check_layer(Relu(at_zero), x, mode="full", seed=seed)
    # small entries beside a large float32 φ may be unresolved (never OK on a tolerance
    # wider than their gradient), but never a false alarm
    assert result.verdict in ("ok", "inconclusive"), str(result)
    assert all(t.n_wrong == 0 for t in result.tensors), str(result)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_float32_kinks_beside_large_entries_still_catch_an_invalid_subgradient(seed):
    x = mixed_scale_kinks(seed, np.float32)
    x[0, 0] = 0.0
    x[0, 1] = 300.0  # keeps the scale of φ large
    G = stream(seed, "upstream").standard_normal(x.shape)  # the checker's upstream gradient
    assume((np.abs(G[x == 0]) > 0.1).any())  # else the wrong value at 0 is multiplied away
    result = gradcheck.check_layer(Relu(at_zero=4.0), x, mode="full", seed=seed)
    assert not result.ok, str(result)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_fast_mode_on_a_small_tensor_agrees_with_full_mode_at_kinks(seed):
    """A direction crossing several kinks at once bounds only a convex combination; when
    fast mode then checks every entry of the tensor one by one, that verdict stands."""
    x = mixed_scale_kinks(seed, np.float32)
    full = gradcheck.check_layer(Relu(), x, mode="full", seed=seed)
    fast = gradcheck.check_layer(Relu(), x, mode="fast", seed=seed)
    # fast mode resolves the whole direction, full mode each entry: small entries beside
    # large ones may be unresolved entry by entry only; neither ever cries wolf
    assert fast.verdict != "wrong" and full.verdict != "wrong", str(fast) + str(full)
    if full.ok:  # fast mode may only be less sure (directions across kinks), never wrong
        assert fast.verdict in ("ok", "inconclusive"), str(fast)
    assert not fast.history_dependent
    disagreed = any("disagrees" in n for n in fast.notes)
    said_agree = any("random directions over" in n for n in fast.notes)
    assert not (disagreed and said_agree), fast.notes  # no contradictory notes


def test_fast_mode_exhaustive_localization_still_fails_a_wrong_entry():
    x = np.array([[0.5, -1.0, 2.0, 0.25]])
    bad = gradcheck.check_layer(Relu(at_zero=0.0), x, mode="fast")
    assert bad.ok

    class WrongRelu(Relu):
        def backward(self, g):
            dx = super().backward(g)
            dx[0, 2] *= 1.5
            return dx

    result = gradcheck.check_layer(WrongRelu(), x, mode="fast")
    assert not result.ok and result.tensors[0].worst_index == (0, 2)
