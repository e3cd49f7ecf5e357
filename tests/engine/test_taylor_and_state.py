"""Taylor slopes, nondeterminism, stale caches, gradient flow of a model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from support.toy_layers import ACTIVATIONS, Affine, Dropout, StaleScale


@settings(max_examples=30)
@given(act=st.sampled_from(sorted(set(ACTIVATIONS) - {"cube"})), seed=st.integers(0, 2**16),
       factor=st.sampled_from([-1.0, 0.0, 1.5, 0.5]))
def test_taylor_slope_two_when_right_one_when_wrong(act, seed, factor):
    layer = Affine(5, 4, act=act, seed=seed)
    x = np.random.default_rng(seed).uniform(-1, 1, (3, 5))
    right = gradcheck.check_layer(layer, x, seed=seed).taylor
    assert right.verdict == "consistent" and right.slope == pytest.approx(2, abs=0.3)

    class Wrong(Affine):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"] *= factor
            return dx

    wrong = gradcheck.check_layer(Wrong(5, 4, act=act, seed=seed), x, seed=seed).taylor
    assert wrong.verdict == "wrong" and wrong.slope == pytest.approx(1, abs=0.3)


def test_taylor_is_inconclusive_for_a_linear_function():
    result = gradcheck.check_grad(lambda z: 3.0 * np.sum(z), lambda z: np.full_like(z, 3.0),
                                  np.linspace(-1, 1, 4))
    assert result.ok and result.taylor.verdict.startswith("inconclusive")


def test_nondeterministic_layer_is_reported_as_such():
    result = gradcheck.check_layer(Dropout(), np.ones((3, 4)))
    assert not result.ok and result.nondeterministic
    assert "nondeterministic" in str(result)
    # a random forward makes the stale-cache comparison moot: no second, false finding
    assert not result.history_dependent and "stale" not in str(result)
    assert result.evidence.nondeterministic
    for text in (str(result), result.to_markdown()):  # said once, not twice in other words
        assert text.count("the same input gave different outputs") == 1, text


def test_nondeterministic_function_is_reported():
    rng = np.random.default_rng(0)
    result = gradcheck.check_grad(lambda z: np.sum(z ** 2) + 1e-3 * rng.random(),
                                  lambda z: 2 * z, np.ones(3))
    assert result.nondeterministic and not result.ok


def test_stale_cache_is_flagged():
    result = gradcheck.check_layer(StaleScale(), np.linspace(0.5, 1.5, 6).reshape(2, 3))
    assert result.history_dependent and not result.ok
    assert result.evidence.history_dependent
    assert str(result).count("stale cache") == 1, str(result)
    assert not gradcheck.check_layer(Affine(3, 2), np.ones((2, 3))).history_dependent


class MemoAffine(Affine):
    """Keeps the first input it ever saw for backward (a memoized, stale cache)."""

    def forward(self, x):
        y = super().forward(x)
        if not hasattr(self, "first"):
            self.first = (self.x, self.z)
        return y

    def backward(self, g):
        self.x, self.z = self.first
        return super().backward(g)


def test_memoized_first_input_is_flagged_as_stale():
    result = gradcheck.check_layer(MemoAffine(3, 2), np.linspace(-1, 1, 6).reshape(2, 3))
    assert result.history_dependent and not result.ok


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_memoized_layer_inside_a_model_fails_at_x(mode):
    """The model is first run on a shifted input, so the memo is wrong at x (not flagged
    as history-dependent: the upstream gradient differs, so no verbatim match)."""
    model = TinyModel()
    model.layers[0] = MemoAffine(4, 5, seed=1)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 4))
    y = np.random.default_rng(1).uniform(-1, 1, (6, 2))
    result = gradcheck.check_model(model, MSE(), x, y, mode=mode)
    assert {t.name for t in result.tensors if not t.ok} == {"0.W", "0.b"}


def test_backward_of_the_previous_input_is_flagged():
    class PreviousInput(Affine):  # keeps the input of the forward call before the last
        def forward(self, x):
            self.prev = getattr(self, "last", x)
            self.last = x
            return super().forward(x)

        def backward(self, g):
            self.x = self.prev
            self.z = self.x @ self.params["W"] + self.params["b"]
            return super().backward(g)

    result = gradcheck.check_layer(PreviousInput(3, 2), np.linspace(-1, 1, 6).reshape(2, 3))
    assert result.history_dependent and not result.ok


class TinyModel:
    """Two Affine layers, flat params "<i>.<name>", an L2 penalty, MSE loss below."""

    def __init__(self, scale_second: float = 1.0, l2: float = 0.01, bug: float = 1.0,
                 dtype=np.float64) -> None:
        self.layers = [Affine(4, 5, seed=1, dtype=dtype), Affine(5, 2, seed=2, dtype=dtype)]
        self.layers[1].params["W"] *= scale_second
        self.l2, self.bug = l2, bug

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, g):
        for layer in reversed(self.layers):
            g = layer.backward(g)
        for layer in self.layers:
            layer.grads["W"] += 2 * self.l2 * self.bug * layer.params["W"]
        return g

    def penalty(self):
        return self.l2 * sum(float(np.sum(layer.params["W"] ** 2)) for layer in self.layers)


class MSE:
    def forward(self, pred, target):
        self.diff = pred - target
        return float(np.mean(np.sum(self.diff ** 2, axis=1)))

    def backward(self):
        return 2 * self.diff / self.diff.shape[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_model_with_penalty_passes_and_a_wrong_penalty_gradient_fails(mode, dtype):
    x = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(dtype)
    y = np.random.default_rng(1).uniform(-1, 1, (6, 2)).astype(dtype)
    assert gradcheck.check_model(TinyModel(dtype=dtype), MSE(), x, y, mode=mode).ok
    bad = gradcheck.check_model(TinyModel(bug=0.0, dtype=dtype), MSE(), x, y, mode=mode)
    assert not bad.ok
    assert {t.name for t in bad.tensors if not t.ok} <= {"0.W", "1.W"}


def test_gradient_flow_flags_a_vanishing_layer():
    x = np.random.default_rng(0).uniform(-1, 1, (6, 4))
    y = np.random.default_rng(1).uniform(-1, 1, (6, 2))
    healthy = gradcheck.check_model(TinyModel(), MSE(), x, y)
    assert [g.layer for g in healthy.gradient_flow] == ["0:Affine", "1:Affine"]
    assert not any(g.flag for g in healthy.gradient_flow)
    vanishing = gradcheck.check_model(TinyModel(scale_second=1e-7, l2=0.0), MSE(), x, y)
    assert [g.flag for g in vanishing.gradient_flow] == ["vanishing", ""]
    assert "vanishing" in str(vanishing)


class Accumulating(Affine):
    """Adds each backward's parameter gradients to the previous ones (PyTorch style)."""

    def backward(self, g):
        previous = {k: v.copy() for k, v in self.grads.items()}
        dx = super().backward(g)
        for k in self.grads:
            self.grads[k] += previous[k]
        return dx


def test_accumulating_grads_are_named_as_such_not_as_a_stale_cache():
    x = np.random.default_rng(5).standard_normal((4, 3))
    result = gradcheck.check_layer(Accumulating(3, 2), x)
    assert not result.ok and result.evidence.accumulating
    assert not result.history_dependent
    assert any(line.startswith("grads accumulate") for line in result.diagnosis)
    assert not any("stale" in line for line in result.diagnosis)
    assert not gradcheck.check_layer(Affine(3, 2), x).evidence.accumulating
