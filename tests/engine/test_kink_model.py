"""The kink verdict model (``engine.kinks``): joint validity at ties, conventions nearby.

A subgradient must be valid as a vector, not only entry by entry: the whole gradient
routed to every tied maximum fails (moving the tied entries together, φ is smooth and
the claim is off), while either single routing or any split passes. A correct chain
rule with relu'(0) = 0 through several ReLUs at exactly 0 lies outside the one-sided
derivatives yet is right everywhere nearby: never "wrong", reported with its own code.
Full and fast mode agree on both.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.models.pooling import MaxPool2D
from support.toy_layers import MaxPool1D, Relu

MODES = ("full", "fast")


def codes(result) -> set[str]:
    return {f.code for f in result.diagnosis}


class WeightedPool(MaxPool1D):
    """Max over pairs; at a tie the gradient is split ``t`` / ``1 − t`` (a valid subgradient
    for any ``t`` in [0, 1]), or ``t`` to each tied entry when ``every=True`` (invalid
    unless ``t = 1/2``)."""

    def __init__(self, t: float, every: bool = False) -> None:
        super().__init__()
        self.t, self.every = t, every

    def backward(self, g):
        pairs = self.x.reshape(self.x.shape[0], -1, 2)
        tied = pairs[..., 0] == pairs[..., 1]
        first = (pairs[..., 0] > pairs[..., 1]).astype(float)
        weight = np.stack([first, 1.0 - first], axis=-1)
        share = np.array([self.t, self.t if self.every else 1.0 - self.t])
        weight[tied] = share
        return (weight * g[..., None]).reshape(self.x.shape)


class EveryTieMaxPool2D(MaxPool2D):
    """Routes each 2×2 window's gradient to *every* entry equal to its maximum (a bug at
    ties). Self-contained: pool 2, stride 2, even H and W."""

    def forward(self, x):
        self._x = np.asarray(x)
        return super().forward(x)

    def backward(self, grad_out):
        n, c, h, w = self._x.shape
        win = self._x.reshape(n, c, h // 2, 2, w // 2, 2)
        is_max = win == win.max(axis=(3, 5), keepdims=True)
        g = np.asarray(grad_out, dtype=self._x.dtype)[:, :, :, None, :, None]
        return (is_max * g).reshape(n, c, h, w)


TIES = np.array([[1.0, 1.0, 0.5, -0.3, 2.0, 2.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_the_full_gradient_to_every_tied_maximum_fails(mode, dtype):
    result = gradcheck.check_layer(MaxPool1D("all"), TIES.astype(dtype), mode=mode)
    assert result.verdict == "wrong", str(result)
    assert "joint-kink" in codes(result)
    assert result.tensors[0].n_wrong >= 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", ["first", "split"])
def test_a_single_routing_or_a_split_passes(mode, route, dtype):
    result = gradcheck.check_layer(MaxPool1D(route), TIES.astype(dtype), mode=mode)
    assert result.ok, str(result)
    assert "joint-kink" not in " ".join(result.notes)


@settings(max_examples=20, deadline=None)
@given(t=st.floats(0.0, 1.0), mode=st.sampled_from(MODES))
def test_any_split_t_and_1_minus_t_passes(t, mode):
    assert gradcheck.check_layer(WeightedPool(t), TIES, mode=mode).ok


@settings(max_examples=20, deadline=None)
@given(t=st.floats(0.6, 2.0) | st.floats(-1.0, 0.4), mode=st.sampled_from(MODES))
def test_the_same_share_to_both_tied_entries_fails_unless_it_is_one_half(t, mode):
    result = gradcheck.check_layer(WeightedPool(t, every=True), TIES, mode=mode)
    assert result.verdict == "wrong", str(result)


def test_argmax_style_max_of_a_vector_with_ties():
    x = np.array([0.3, 2.0, -1.0, 2.0, 2.0])

    def every_max(z):
        return (z == z.max()).astype(float)

    def first_max(z):
        g = np.zeros_like(z)
        g[np.argmax(z)] = 1.0
        return g

    for mode in MODES:
        assert gradcheck.check_grad(np.max, first_max, x, mode=mode).ok
        bad = gradcheck.check_grad(np.max, every_max, x, mode=mode)
        assert bad.verdict == "wrong" and "joint-kink" in codes(bad), str(bad)


def tie_pattern(seed: int, windows: int) -> np.ndarray:
    """Pairs drawn from {0, 1, 2}: about a third of the windows tie."""
    return np.random.default_rng(seed).integers(0, 3, (2, 2 * windows)).astype(float)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), windows=st.integers(1, 6), mode=st.sampled_from(MODES),
       route=st.sampled_from(["first", "split", "all"]))
def test_random_tie_patterns(seed, windows, mode, route):
    x = tie_pattern(seed, windows)
    pairs = x.reshape(2, -1, 2)
    tied = pairs[..., 0] == pairs[..., 1]
    result = gradcheck.check_layer(MaxPool1D(route), x, mode=mode, seed=seed)
    if route == "all" and tied.any():
        assert result.verdict == "wrong", str(result)
    else:
        assert result.ok, str(result)


@pytest.mark.parametrize("mode", MODES)
def test_max_pool_2d_routing_to_every_tie_is_caught(mode):
    x = np.random.default_rng(3).integers(0, 2, (2, 2, 4, 4)).astype(float)
    assert gradcheck.check_layer(MaxPool2D(2), x, mode=mode).ok
    result = gradcheck.check_layer(EveryTieMaxPool2D(2), x, mode=mode)
    assert result.verdict == "wrong", str(result)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), at_zero=st.floats(0.0, 1.0))
def test_relu_at_many_exact_zeros_is_no_joint_failure(seed, at_zero):
    """Separable kinks under upstream gradients of both signs never cancel: no group."""
    x = np.random.default_rng(seed).uniform(-2, 2, (3, 6))
    x[np.random.default_rng(seed + 1).random(x.shape) < 0.5] = 0.0
    for mode in MODES:
        result = gradcheck.check_layer(Relu(at_zero), x, mode=mode, seed=seed)
        assert result.ok, str(result)


# ------------------------------------------------------------ several kinks at once


def chain(weights: list[tuple[float, float]], out: list[float]):
    """``f(b) = Σ_k out_k·h_k``, ``h_k = relu(w_k·b + v_k·h_{k−1})`` (``h_0 = 0``), and its
    chain rule with relu'(0) = 0, per entry of ``b``. At ``b = 0`` every ReLU sits at 0."""

    def f(b):
        total, h = 0.0, np.zeros_like(b)
        for (w, v), c in zip(weights, out, strict=True):
            h = np.maximum(w * b + v * h, 0.0)
            total = total + c * h
        return float(np.sum(total))

    def grad(b):
        dh, g, h = np.zeros_like(b), np.zeros_like(b), np.zeros_like(b)
        for (w, v), c in zip(weights, out, strict=True):
            z = w * b + v * h
            active = (z > 0).astype(float)  # relu'(0) = 0
            dh = active * (w + v * dh)
            h = np.maximum(z, 0.0)
            g = g + c * dh
        return g

    return f, grad


def sides(f, n: int) -> tuple[float, float]:
    """The one-sided derivatives at b = 0 of entry 0 (the chain is positively homogeneous)."""
    e = np.zeros(n)
    e[0] = 1.0
    return f(e), -f(-e)


CHAINS = [
    ([(1.0, 0.0), (-1.0, 0.0)], [1.0, -3.0]),            # relu(b) − 3·relu(−b)
    ([(1.0, 0.0), (-1.0, 0.0), (2.0, 0.0)], [2.0, -1.0, 0.5]),
    ([(-1.0, 0.0), (1.0, -2.0), (-1.0, 1.0), (1.0, 0.0)], [-2.0, 1.0, 1.0, 1.5]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("weights, out", CHAINS)
def test_a_correct_chain_rule_through_several_relus_at_zero_is_not_wrong(weights, out, mode,
                                                                        dtype):
    f, grad = chain(weights, out)
    right, left = sides(f, 1)
    assert not min(left, right) <= 0.0 <= max(left, right)  # outside the one-sided hull
    result = gradcheck.check_grad(f, grad, np.zeros(1, dtype), mode=mode)
    assert result.verdict == "inconclusive", str(result)
    assert "kink-convention" in codes(result)
    assert result.tensors[0].n_wrong == 0
    assert [k.index for k in result.nondifferentiable] == [(0,)]
    accepted = gradcheck.check_grad(f, grad, np.zeros(1, dtype), mode=mode,
                                    allow_unresolved=True)
    assert accepted.ok, str(accepted)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), depth=st.integers(2, 4), n=st.integers(1, 3),
       mode=st.sampled_from(MODES))
def test_random_relu_chains_at_zero_are_never_wrong(data, depth, n, mode):
    unit = st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
    weights = [(data.draw(unit), data.draw(unit | st.just(0.0))) for _ in range(depth)]
    out = [data.draw(unit) for _ in range(depth)]
    f, grad = chain(weights, out)
    right, left = sides(f, n)
    assume(abs(right - left) > 0.1)  # a kink at b = 0, not a smooth composite
    result = gradcheck.check_grad(f, grad, np.zeros(n), mode=mode)
    assert result.verdict != "wrong", str(result)
    inside = min(left, right) <= 0.0 <= max(left, right)
    assert (result.verdict == "ok") == inside, str(result)
    if not inside:
        assert "kink-convention" in codes(result)


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_value_at_a_kink_that_is_wrong_nearby_too_stays_wrong(mode):
    f, grad = chain(*CHAINS[0])

    def doubled(b):
        return 2.0 * grad(b) + 5.0 * (b == 0)  # outside the hull at 0, twice the slope off it

    result = gradcheck.check_grad(f, doubled, np.zeros(1), mode=mode)
    assert result.verdict == "wrong", str(result)
    assert "kink-convention" not in codes(result)


def test_without_a_way_to_recompute_the_gradient_the_entry_stays_wrong():
    from gradcheck.engine.kinks import review_kinks
    from gradcheck.engine.numeric import Judging, Target, full_outcome
    from gradcheck.engine.tolerances import PRECISIONS

    f, grad = chain(*CHAINS[0])
    b = np.zeros(1)
    row = PRECISIONS["float64"]
    judging = Judging.default(noise=1.0, precision=row)
    out, _ = full_outcome(lambda: f(b), Target("b", "param", b, grad(b)), f(b), judging)
    assert out.wrong[0] and out.kink[0]
    review = review_kinks(lambda: f(b), [out], f(b), judging, analytic_at=None)
    assert out.wrong[0] and review.conventions == 0
    review = review_kinks(lambda: f(b), [out], f(b), judging, analytic_at=lambda: [grad(b)])
    assert not out.wrong[0] and out.convention[0] and review.conventions == 1
    assert b[0] == 0.0  # restored bit for bit


def test_a_relu_convention_outside_0_1_is_no_longer_ok_nor_called_right():
    """relu'(0) = 4 is right on both sides too: from φ alone it is the same fact as a
    chain rule through several kinks, so it is inconclusive, never OK."""
    x = np.array([[0.0, 1.0, -1.0]])
    result = gradcheck.check_layer(Relu(at_zero=4.0), x, mode="full")
    assert result.verdict == "inconclusive" and not result.ok, str(result)
    assert "kink-convention" in codes(result)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_fast_mode_on_a_larger_pool_completes_the_tie_sets_it_samples(seed):
    """Fast mode differences a sample of entries; the tied partners of the kinks it finds
    are judged too, so routing to every tie is caught there as in full mode."""
    x = np.random.default_rng(seed).integers(0, 2, (1, 2, 8, 8)).astype(float)
    assert gradcheck.check_layer(MaxPool2D(2), x, mode="fast", seed=seed).ok
    bad = gradcheck.check_layer(EveryTieMaxPool2D(2), x, mode="fast", seed=seed)
    assert bad.verdict == "wrong", str(bad)


def test_a_gradient_that_raises_off_the_point_keeps_the_verdict_wrong():
    f, grad = chain(*CHAINS[0])

    def only_at_zero(b):
        if np.any(b != 0):
            raise ValueError("this gradient is only defined at 0")
        return grad(b)

    b = np.zeros(1)
    result = gradcheck.check_grad(f, only_at_zero, b, mode="full")
    assert result.verdict == "wrong" and "kink-convention" not in codes(result), str(result)
    assert b[0] == 0.0


def test_the_kinks_module_docstring_examples():
    import doctest

    import gradcheck.engine.kinks as kinks

    outcome = doctest.testmod(kinks, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
