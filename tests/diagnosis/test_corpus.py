"""The checker catches every deliberately wrong layer of the corpus and names the bug;
the correct parents pass, in float64 and float32, and at kinks.

The corpus (``tests/corpus``) has one row per bug and family; see its docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import CORPUS, MODEL_CORPUS, WrongLayer, WrongModel
from corpus.generic import WithBug
from gradcheck.models.activations import ACTIVATIONS
from gradcheck.models.dense import Activation
from gradcheck.models.pooling import MaxPool2D

MODES = ("full", "auto", "fast")
BUG_CLASSES = ("sign flipped", "factor", "the batch size", "transposed", "all zeros",
               "only", "borders", "time steps", "stale cache", "wrong positions")
FAMILIES = ("dense", "conv", "pool", "batchnorm", "rnn", "lstm", "softmax-CE", "mlp")


def names_the_bug(diagnosis: list[str], row: WrongLayer | WrongModel) -> bool:
    """A finding has the expected phrase and, for a per-tensor bug, starts with the tensor."""
    return any(row.expected in line and (not row.tensor or line.startswith(f"{row.tensor}: "))
               for line in diagnosis)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("row", CORPUS, ids=lambda r: r.name)
def test_every_wrong_layer_is_caught_and_its_bug_named(row, mode):
    from gradcheck import check_layer

    result = check_layer(row.make_layer(np.float64), row.make_input(np.float64), mode=mode)
    assert not result.ok, f"{row.name} passed in mode {mode}"
    assert names_the_bug(result.diagnosis, row), (row.expected, result.diagnosis)


STATE_CLAIMS = ("stale cache", "nondeterministic")


@pytest.mark.parametrize("row", [r for r in CORPUS if r.expected not in STATE_CLAIMS],
                         ids=lambda r: r.name)
def test_a_wrong_layer_without_state_is_not_called_stale_or_nondeterministic(row):
    """Never cry wolf: a plain wrong formula is no stale cache and no randomness."""
    from gradcheck import check_layer

    result = check_layer(row.make_layer(np.float64), row.make_input(np.float64))
    assert not result.history_dependent and not result.nondeterministic, result.diagnosis
    assert not [line for line in result.diagnosis
                if any(claim in line for claim in STATE_CLAIMS)], result.diagnosis


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("row", MODEL_CORPUS, ids=lambda r: r.name)
def test_every_wrong_model_is_caught_and_its_bug_named(row, mode):
    from gradcheck import check_model

    x, y = row.make_data(np.float64)
    result = check_model(row.make_model(np.float64), row.make_loss(), x, y, mode=mode)
    assert not result.ok, f"{row.name} passed in mode {mode}"
    assert names_the_bug(result.diagnosis, row), (row.expected, result.diagnosis)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row", CORPUS, ids=lambda r: r.name)
def test_the_correct_parent_of_every_wrong_layer_passes(row, dtype):
    from gradcheck import check_layer

    for mode in ("full", "fast"):
        result = check_layer(row.make_correct(dtype), row.make_input(dtype), mode=mode)
        assert result.ok, (row.name, mode, str(result))
        assert result.diagnosis == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row", MODEL_CORPUS, ids=lambda r: r.name)
def test_the_correct_parent_of_every_wrong_model_passes(row, dtype):
    from gradcheck import check_model

    x, y = row.make_data(dtype)
    for mode in ("full", "fast"):
        result = check_model(row.make_correct(dtype), row.make_correct_loss(), x, y, mode=mode)
        assert result.ok, (row.name, mode, str(result))


GENERIC_PHRASES = {"sign flipped": "sign flipped", "doubled": "factor 2.0",
                   "halved": "factor 0.5", "zeros": "gradient is all zeros"}


@settings(max_examples=25)
@given(n_in=st.integers(1, 5), n_out=st.integers(3, 5), batch=st.integers(3, 9),
       bug=st.sampled_from(sorted(GENERIC_PHRASES)), tensor=st.sampled_from(["x", "W", "b"]),
       mode=st.sampled_from(["full", "fast"]), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**16))
def test_a_generic_bug_in_any_dense_layer_is_caught_and_named(n_in, n_out, batch, bug, tensor,
                                                               mode, dtype, seed):
    from gradcheck import check_layer
    from gradcheck.models.dense import Dense

    x = np.random.default_rng((seed, 1)).standard_normal((batch, n_in)).astype(dtype)
    layer = WithBug(Dense(n_in, n_out, dtype=dtype, seed=seed), tensor, bug)
    result = check_layer(layer, x, mode=mode, seed=seed)
    assert not result.ok
    others = " and ".join(name for name in ("x", "W", "b") if name != tensor)
    assert f"only {tensor} is wrong; {others} are right" in result.diagnosis
    assert any(line.startswith(f"{tensor}: ") and GENERIC_PHRASES[bug] in line
               for line in result.diagnosis), result.diagnosis


# --------------------------------------------------------------------------------------
# Kinks: a correct layer exactly at a kink passes; a wrong one there is still caught


KINKED = [name for name, op in ACTIVATIONS.items() if op.kinks]


def _at_kinks(name: str, dtype: type, seed: int) -> np.ndarray:
    """``(6, 5)`` inputs, every third one exactly at one of the activation's kinks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, (6, 5))
    kinks = np.array(ACTIVATIONS[name].kinks)
    x.flat[::3] = kinks[rng.integers(0, kinks.size, x.flat[::3].size)]
    return x.astype(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", KINKED)
def test_correct_activations_pass_exactly_at_their_kinks(name, dtype, mode):
    from gradcheck import check_layer

    result = check_layer(Activation(name), _at_kinks(name, dtype, seed=1), mode=mode)
    assert result.ok, str(result)
    if result.mode == "full":
        assert result.nondifferentiable, "the kinks should be reported as not differentiable"


@pytest.mark.parametrize("name", KINKED)
def test_a_sign_flip_is_still_caught_and_named_at_kinks(name):
    from gradcheck import check_layer

    result = check_layer(WithBug(Activation(name), "x", "sign flipped"),
                         _at_kinks(name, np.float64, seed=2), mode="full")
    assert not result.ok
    assert any(line.startswith("x: sign flipped") for line in result.diagnosis), result.diagnosis


def _tied_windows(dtype: type, seed: int) -> np.ndarray:
    """``(2, 2, 4, 4)`` inputs on a coarse grid: most 2×2 windows hold a tied maximum."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (2, 2, 4, 4)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_max_pool_passes_at_ties(dtype, mode):
    from gradcheck import check_layer

    x = _tied_windows(dtype, seed=3)
    result = check_layer(MaxPool2D(2), x, mode=mode)
    assert result.ok, str(result)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["full", "fast"]))
def test_max_pool_passes_at_any_ties(seed, mode):
    from gradcheck import check_layer

    assert check_layer(MaxPool2D(2), _tied_windows(np.float64, seed), mode=mode).ok


def test_max_pool_routing_bug_is_caught_at_ties_too():
    from corpus.pooling import FirstElementMaxPool2D
    from gradcheck import check_layer

    x = _tied_windows(np.float64, seed=4)
    x[0, 0] = [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]  # untied windows
    assert not check_layer(FirstElementMaxPool2D(2), x, mode="full").ok


# --------------------------------------------------------------------------------------
# The corpus itself


def test_the_corpus_covers_every_bug_class_and_family():
    rows = [*CORPUS, *MODEL_CORPUS]
    expected = " | ".join(row.expected for row in rows)
    assert [bug for bug in BUG_CLASSES if bug not in expected] == []
    names = " | ".join(row.name for row in rows)
    assert [family for family in FAMILIES if family not in names] == []
    assert len({row.name for row in rows}) == len(rows), "corpus names must be unique"


@pytest.mark.parametrize("row", CORPUS, ids=lambda r: r.name)
def test_a_wrong_layer_keeps_the_protocol_and_builds_the_same_each_time(row):
    first, second = row.make_layer(np.float64), row.make_layer(np.float64)
    assert sorted(first.params) == sorted(first.grads)
    for name in first.params:
        np.testing.assert_array_equal(first.params[name], second.params[name])
    np.testing.assert_array_equal(row.make_input(np.float64), row.make_input(np.float64))
