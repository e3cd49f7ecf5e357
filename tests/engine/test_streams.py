"""The checker's random streams never equal an input drawn from the same seed."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck


class TransposedGradient:
    """y = x @ W (square) with dW transposed: dW = xᵀG is symmetric, so the bug is
    invisible exactly when G == x."""

    def __init__(self, n: int, seed: int) -> None:
        self.params = {"W": np.random.default_rng([seed, 9]).standard_normal((n, n))}
        self.grads = {"W": np.zeros((n, n))}

    def forward(self, x):
        self.x = x.copy()
        return x @ self.params["W"]

    def backward(self, g):
        self.grads["W"][...] = (self.x.T @ g).T  # BUG: transposed
        return g @ self.params["W"].T


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_bug_that_swaps_x_and_grad_out_is_caught_when_x_shares_the_seed(seed, mode):
    x = np.random.default_rng(seed).standard_normal((3, 3))
    layer = TransposedGradient(3, seed)
    assert not gradcheck.check_layer(layer, x, seed=seed, mode=mode).ok


@pytest.mark.parametrize("seed", [0, 3])
def test_a_vjp_that_uses_x_for_v_is_caught_when_x_shares_the_seed(seed):
    x = np.random.default_rng(seed).standard_normal(4)
    result = gradcheck.check_jacobian(np.tanh, x, vjp=lambda z, v: z * (1 - np.tanh(z) ** 2),
                                      seed=seed)
    assert not result.ok


@pytest.mark.parametrize("seed", [0, 3])
def test_an_hvp_that_uses_x_for_w_is_caught_when_x_shares_the_seed(seed):
    x = np.random.default_rng(seed).standard_normal(4)
    result = gradcheck.check_hvp(lambda z: z ** 3, lambda z, w: 3 * z ** 2 * z, x, seed=seed)
    assert not result.ok
