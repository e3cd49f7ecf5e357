"""Output that never overstates: the same columns in both modes, one "worst", what a pass
rules out (issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.runner import RULES_OUT_MARGIN

X = np.linspace(-1.0, 1.0, 4096)

def phi(z):
    return float(np.sum(np.sin(z)))

def plus_one_on(mask):
    return lambda z: np.cos(z) + mask.astype(float)

def test_capped_localization_is_a_lower_bound_never_more_than_full_mode():
    mask = np.arange(X.size) % 200 == 0  # 21 wrong entries, more than the cap
    fast = gradcheck.check_grad(phi, plus_one_on(mask), X, mode="fast", seed=0)
    full = gradcheck.check_grad(phi, plus_one_on(mask), X, mode="full")
    row = fast.tensors[0]
    assert row.n_wrong_kind == "at_least"
    assert 0 < row.n_wrong_found <= full.tensors[0].n_wrong == int(mask.sum())
    d = fast.to_dict()["tensors"][0]
    assert (d["n_wrong_kind"], d["n_wrong_found"]) == ("at_least", row.n_wrong_found)
    assert full.tensors[0].n_wrong_kind == "exact"

def test_count_scaled_from_a_sample_is_marked_as_an_estimate():
    fast = gradcheck.check_grad(phi, lambda z: 1.1 * np.cos(z), X, mode="fast", seed=0)
    row = fast.tensors[0]
    assert row.n_wrong_kind == "estimate" and row.n_wrong_found == row.n_checked < row.n_wrong
    head, line = str(fast).splitlines()[1:3]
    start, end = head.index("wrong"), head.index("kinks")
    assert line[start:end].strip() == f"~{row.n_wrong}"

def test_checked_means_entries_differenced_one_by_one_and_fast_adds_directions():
    fast = gradcheck.check_grad(phi, np.cos, X, mode="fast", seed=0, directions=5)
    full = gradcheck.check_grad(phi, np.cos, X[:50], mode="full")
    assert fast.ok and full.ok
    assert [t.directions for t in fast.tensors] == [5]
    assert [t.directions for t in full.tensors] == [0]
    assert fast.tensors[0].n_checked == 0 and full.tensors[0].n_checked == 50
    head, row = str(fast).splitlines()[1:3]
    start, end = head.index("checked"), head.index("wrong")
    assert "5" in row[start:end]  # the checked cell says what was checked

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), n_bad=st.integers(1, 4))
def test_the_table_and_the_worst_entries_name_the_same_worst_entry(seed, n_bad):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, 40)
    bad = rng.choice(x.size, n_bad, replace=False)
    sizes = rng.uniform(1e-4, 10.0, n_bad)

    def grad(z):
        g = np.cos(z)
        g[bad] += sizes
        return g

    result = gradcheck.check_grad(phi, grad, x, mode="full")
    assert not result.ok
    assert result.tensors[0].worst_index == result.worst[0].index
    ratios = [e.error / e.tolerance for e in result.worst]
    assert ratios == sorted(ratios, reverse=True)

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), entry=st.integers(0, 63))
def test_full_mode_rules_out_what_it_says_in_any_entry(seed, entry):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, 64)
    ok = gradcheck.check_grad(phi, np.cos, x, mode="full")
    row = ok.tensors[0]
    assert ok.ok and 0 < row.rules_out_rel < 1e-3 and row.rules_out_miss_probability == 0
    g = np.cos(x)
    scale = max(abs(g[entry]), float(np.sqrt(np.mean(g ** 2))))
    claimed = g.copy()
    claimed[entry] += 3.0 * row.rules_out_rel * scale
    caught = gradcheck.check_grad(phi, lambda z: claimed, x, mode="full")
    assert not caught.ok and caught.tensors[0].n_wrong >= 1

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_mode_rules_out_with_the_stated_probability(seed):
    ok = gradcheck.check_grad(phi, np.cos, X, mode="fast", seed=seed, directions=4)
    row = ok.tensors[0]
    assert ok.ok and 0 < row.rules_out_rel < 1e-2
    assert row.rules_out_miss_probability == pytest.approx(
        (math.sqrt(2 / math.pi) / RULES_OUT_MARGIN) ** 4)
    # a relative error three times the figure, spread over every entry, is caught
    caught = gradcheck.check_grad(phi, lambda z: np.cos(z) * (1 + 3 * row.rules_out_rel), X,
                                  mode="fast", seed=seed + 100, directions=4)
    assert not caught.ok
    d = ok.to_dict()["tensors"][0]
    assert d["rules_out_rel"] == pytest.approx(row.rules_out_rel) and d["directions"] == 4

def test_a_pass_states_what_it_rules_out_and_taylor_states_its_expected_slope():
    ok = gradcheck.check_grad(phi, np.cos, X[:30], mode="full")
    text = str(ok)
    assert any(line.startswith("rules out:") for line in text.splitlines())
    taylor = [line for line in text.splitlines() if line.startswith("Taylor test")]
    assert taylor and "2" in taylor[0].split("—")[0] and "1" in taylor[0].split("—")[0]
    wrong = gradcheck.check_grad(phi, lambda z: 2 * np.cos(z), X[:30], mode="full")
    assert not any(line.startswith("rules out:") for line in str(wrong).splitlines())


def test_fast_mode_rules_out_nothing_when_its_directions_did_not_all_agree():
    x = np.concatenate([np.zeros(3000), np.linspace(-1, 1, 100)])  # relu kinks at 0

    def relu_sum(z):
        return float(np.sum(np.maximum(z, 0.0)))

    result = gradcheck.check_grad(relu_sum, lambda z: (z > 0).astype(float), x, mode="fast")
    assert result.tensors[0].n_checked  # the directions crossed kinks: entries were sampled
    assert math.isnan(result.tensors[0].rules_out_rel)
    assert result.to_dict()["tensors"][0]["rules_out_rel"] is None
