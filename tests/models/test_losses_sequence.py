"""softmax_ce (and cce) on (N, T, C) inputs: classes on the last axis, positions summed.

A loss that normalized over axis 1 instead of -1 passes every (N, C) test; here the value
is held against an explicit per-position formula and the gradient against finite
differences, with T == C included (where a wrong axis keeps every shape right).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.models.losses import Loss


def _reference(z, labels):
    """(1/N) Σ_n Σ_t −log softmax(z[n, t])[labels[n, t]], one position at a time."""
    total = 0.0
    for n in range(z.shape[0]):
        for t in range(z.shape[1]):
            row = z[n, t] - np.max(z[n, t])
            total += np.log(np.sum(np.exp(row))) - row[labels[n, t]]
    return total / z.shape[0]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), t=st.integers(1, 4), c=st.integers(2, 5),
       seed=st.integers(0, 2 ** 16), square=st.booleans())
def test_softmax_ce_on_n_t_c_inputs(n, t, c, seed, square):
    if square:
        t = c  # a loss normalizing over the wrong axis keeps every shape here
    rng = np.random.default_rng(seed)
    z = 2 * rng.standard_normal((n, t, c))
    labels = rng.integers(0, c, size=(n, t))
    one_hot = np.eye(c)[labels]
    loss = Loss("softmax_ce")
    value = loss.forward(z, labels)
    np.testing.assert_allclose(value, _reference(z, labels), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Loss("softmax_ce").forward(z, one_hot), value, rtol=1e-12)
    dz = loss.backward()
    assert dz.shape == z.shape
    # the gradient of each position is (softmax − one_hot) / N, along the last axis
    soft = np.exp(z - z.max(axis=-1, keepdims=True))
    soft /= soft.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(dz, (soft - one_hot) / n, rtol=1e-10, atol=1e-14)

    def f(x):
        return Loss("softmax_ce").forward(x, labels)

    def grad(x):
        probe = Loss("softmax_ce")
        probe.forward(x, labels)
        return probe.backward()

    assert gradcheck.check_grad(f, grad, z, seed=seed).ok


def test_cce_after_softmax_on_n_t_c_equals_fused_softmax_ce():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 3, 3))
    labels = rng.integers(0, 3, size=(2, 3))
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(Loss("cce").forward(p, labels),
                               Loss("softmax_ce").forward(z, labels), rtol=1e-10)
