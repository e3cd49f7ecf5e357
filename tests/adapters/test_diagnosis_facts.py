"""The contribution probe: shares that add up to the numeric gradient, arrays restored."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.adapters import diagnosis_facts
from gradcheck.adapters.diagnosis_facts import ContributionProbe


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 6), k=st.integers(1, 5))
def test_the_shares_add_up_to_the_gradient_and_the_array_is_restored(seed, n, k):
    rng = np.random.default_rng(seed)
    x, A = rng.standard_normal(n), rng.standard_normal((k, n))
    G1, G2 = rng.standard_normal(k), rng.standard_normal(n)
    before = x.copy()
    probe = ContributionProbe({"x": (x, lambda: (np.tanh(A @ x), x**3))}, (G1, G2),
                              step=np.finfo(float).eps ** (1 / 3))
    entries = np.arange(n)
    first, second = probe("x", entries)
    np.testing.assert_array_equal(x, before)
    d = 1 - np.tanh(A @ x) ** 2
    np.testing.assert_allclose(first.sum(axis=1), A.T @ (G1 * d), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(second.sum(axis=1), 3 * x**2 * G2, rtol=1e-6, atol=1e-9)


def test_a_failing_call_gives_no_shares_and_restores_the_array():
    x = np.array([1.0, 2.0, 3.0])

    def out():
        if x[1] != 2.0:
            raise ValueError("off the domain")
        return (x * 1.0,)

    probe = ContributionProbe({"x": (x, out)}, (np.ones(3),), step=1e-5)
    assert probe("x", np.array([0, 1])) is None
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    assert probe("unknown", np.array([0])) is None


def test_a_large_output_is_answered_for_the_first_entries_only(monkeypatch):
    monkeypatch.setattr(diagnosis_facts, "MAX_PROBE_VALUES", 10)
    x = np.arange(4.0)
    probe = ContributionProbe({"x": (x, lambda: (np.repeat(x, 1),))}, (np.ones(4),),
                              step=1e-5)
    (shares,) = probe("x", np.arange(4))
    assert shares.shape == (2, 4)  # 10 values // 4 per entry
    np.testing.assert_allclose(shares, np.eye(4)[:2], atol=1e-9)
