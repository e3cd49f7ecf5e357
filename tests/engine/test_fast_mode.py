"""Fast mode: cost independent of size, localization, and the stated miss probability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.fast import MAX_LOCALIZED
from support.toy_layers import ACTIVATIONS, Affine


@settings(max_examples=25)
@given(n=st.integers(1, 6), i=st.integers(1, 30), o=st.integers(1, 20),
       act=st.sampled_from(sorted(ACTIVATIONS)), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**16))
def test_correct_layer_passes_in_fast_mode(n, i, o, act, dtype, seed):
    layer = Affine(i, o, act=act, dtype=dtype, seed=seed)
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (n, i)).astype(dtype)
    result = gradcheck.check_layer(layer, x, mode="fast", seed=seed)
    assert result.ok, str(result)
    assert result.mode == "fast"


def test_cost_does_not_grow_with_the_number_of_parameters():
    costs = []
    for width in (4, 64, 512):
        layer = Affine(width, width, seed=1)
        x = np.random.default_rng(0).uniform(-1, 1, (3, width))
        costs.append(gradcheck.check_layer(layer, x, mode="fast").evaluations)
    assert max(costs) == min(costs)
    assert costs[0] < 60  # pilot, directions, Taylor and noise probes: ~45 evaluations


@settings(max_examples=20)
@given(width=st.integers(8, 80), seed=st.integers(0, 2**16), factor=st.sampled_from(
    [0.0, -1.0, 1.01, 3.0]))
def test_one_wrong_entry_is_localized(width, seed, factor):
    rng = np.random.default_rng(seed)
    index = (int(rng.integers(width)), int(rng.integers(3)))
    layer = Affine(width, 3, seed=seed, bug=("W", index, factor))
    x = rng.uniform(-1, 1, (4, width))
    result = gradcheck.check_layer(layer, x, mode="fast", seed=seed)
    assume(abs(layer.grads["W"][index]) >= 1e-3)  # else too small an entry to be wrong by much
    assert not result.ok
    report = {t.name: t for t in result.tensors}
    assert report["x"].ok and report["b"].ok and not report["W"].ok
    assert report["W"].worst_index == index
    assert report["W"].n_wrong == 1
    if width >= 40:  # below that, differencing every entry is as cheap
        assert result.evaluations < 2 * (width * 3 + width * 4 + 3)


def test_many_wrong_entries_are_sampled_and_estimated():
    class HalfWrong(Affine):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"][:, ::2] *= 2.0
            return dx

    layer = HalfWrong(100, 8, seed=3)
    x = np.random.default_rng(3).uniform(-1, 1, (5, 100))
    result = gradcheck.check_layer(layer, x, mode="fast")
    w = {t.name: t for t in result.tensors}["W"]
    assert not w.ok
    assert 200 <= w.n_wrong <= 600  # 400 of 800 are wrong
    assert w.n_checked < 100
    numeric = next(t for t in result.evidence.tensors if t.name == "W").numeric
    assert np.isfinite(numeric).sum() == w.n_checked  # NaN where not computed


def test_localization_is_capped():
    class FewWrong(Affine):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"][np.arange(20) * 7 % 200, 0] += 1.0
            return dx

    layer = FewWrong(200, 10, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 200))
    w = {t.name: t for t in gradcheck.check_layer(layer, x, mode="fast").tensors}["W"]
    assert not w.ok and w.n_wrong >= MAX_LOCALIZED


@pytest.mark.parametrize("sigma_over_tau, directions", [(1.0, 1), (2.5, 1), (1.0, 2),
                                                       (1.5, 3)])
def test_stated_miss_probability_holds(sigma_over_tau, directions):
    """Plant an error of known size σ = ‖s⊙e‖ and count misses over many seeds.

    The docstring of gradcheck.engine.fast bounds the miss probability of ``k`` directions by
    ``(√(2/π)·τ_max/σ)^k``, τ_max bounding the tolerance of every direction: τ grows with
    the direction, so a run's own τ would not do (the rate exceeds its mean bound at
    σ/τ = 2.5); the largest τ seen over all runs stands in for τ_max.
    """
    f, df = ACTIVATIONS["sin"]
    x = np.linspace(-0.9, 0.9, 12)  # |x| < 1: s = 1 for every entry
    direction = np.random.default_rng(99).standard_normal(x.size)
    direction /= np.linalg.norm(direction)
    probe = gradcheck.check_grad(lambda z: np.sum(f(z)), df, x, mode="fast", directions=1)
    tau = probe.options["fast_tolerance"]
    sigma = sigma_over_tau * tau
    runs, misses, tau_max = 300, 0, 0.0
    for seed in range(runs):
        result = gradcheck.check_grad(lambda z: np.sum(f(z)),
                                      lambda z: df(z) + sigma * direction, x, mode="fast",
                                      directions=directions, seed=seed)
        misses += result.ok
        tau_max = max(tau_max, result.options["fast_tolerance"])
    rate = misses / runs
    bound = min(1.0, math.sqrt(2 / math.pi) * tau_max / sigma) ** directions
    assert rate <= bound + 3 * math.sqrt(bound * (1 - bound) / runs) + 1e-9
    assert rate > 0  # the planted error is small enough that misses do happen


def test_auto_mode_picks_by_size():
    small = Affine(4, 3)
    large = Affine(60, 40)
    assert gradcheck.check_layer(small, np.ones((2, 4))).mode == "full"
    assert gradcheck.check_layer(large, np.ones((2, 60)) * 0.1).mode == "fast"


def test_jacobian_and_hvp_fast_mode():
    A = np.random.default_rng(0).standard_normal((30, 40))
    x = np.linspace(-1, 1, 40)
    assert gradcheck.check_jacobian(np.sin, x, vjp=lambda z, v: np.cos(z) * v, mode="fast").ok
    assert not gradcheck.check_jacobian(lambda z: A @ z, x, vjp=lambda z, v: A.T @ v * 1.01,
                                        mode="fast").ok
    assert gradcheck.check_hvp(np.sin, lambda z, w: np.cos(z) * w, x, mode="fast").ok
    assert not gradcheck.check_hvp(np.sin, lambda z, w: -np.cos(z) * w, x, mode="fast").ok


def test_fast_mode_memory_is_linear_not_a_jacobian():
    import tracemalloc

    layer = Affine(400, 250, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 400))
    n_params = sum(p.size for p in layer.params.values()) + x.size
    n_outputs = 8 * 250
    tracemalloc.start()
    result = gradcheck.check_layer(layer, x, mode="fast")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.ok
    jacobian = n_params * n_outputs * 8
    assert peak < 40 * (n_params + n_outputs) * 8 < jacobian / 10


def test_when_every_direction_crosses_a_kink_entries_decide_not_the_hull():
    # float32 sin at |x| ~ 3e3: the directional step spans several periods, so every
    # direction looks like a kink whose one-sided hull is wide enough to hold any claim.
    x = (np.random.default_rng(101).uniform(-1, 1, 30) * 3e3).astype(np.float32)

    def sin32(z):
        return float(np.sum(np.sin(z.astype(np.float32)), dtype=np.float32))

    def cos32(z):
        return np.cos(z.astype(np.float32))

    wrong = gradcheck.check_grad(sin32, lambda z: -cos32(z), x, mode="fast", seed=101)
    assert not wrong.ok  # caught: by entries, or by a direction resolved at a smaller step
    assert gradcheck.check_grad(sin32, cos32, x, mode="fast", seed=101).ok
