"""Dropout: seeded masks, inverted scaling, eval identity, frozen masks, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.dropout import Dropout
from support.layer_fd import assert_layer_gradients

PROBS = st.floats(0.0, 0.95, exclude_max=False)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)
NONZERO = st.floats(0.1, 3) | st.floats(-3, -0.1)


def inputs(shape):
    return hnp.arrays(np.float64, shape, elements=NONZERO)


@settings(max_examples=40)
@given(PROBS, SHAPES.flatmap(inputs), st.integers(0, 2**32 - 1))
def test_training_output_is_zero_or_input_scaled_by_keep_probability(p, x, seed):
    y = Dropout(p, seed=seed).forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)


@settings(max_examples=30)
@given(PROBS, SHAPES.flatmap(inputs), st.integers(0, 2**32 - 1))
def test_backward_uses_the_forward_mask(p, x, seed):
    layer = Dropout(p, seed=seed)
    y = layer.forward(x)
    g = np.arange(1.0, x.size + 1).reshape(x.shape)
    np.testing.assert_allclose(layer.backward(g), g * (y / x), rtol=1e-15)


@settings(max_examples=20)
@given(PROBS, st.integers(0, 2**32 - 1))
def test_same_seed_same_masks_in_sequence(p, seed):
    a, b = Dropout(p, seed=seed), Dropout(p, seed=seed)
    x = np.ones((4, 50))
    for _ in range(3):
        np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_different_seeds_give_different_masks():
    x = np.ones((10, 100))
    assert not np.array_equal(Dropout(0.5, seed=1).forward(x), Dropout(0.5, seed=2).forward(x))


@settings(max_examples=20)
@given(st.floats(0.05, 0.9), st.integers(0, 2**32 - 1))
def test_drop_fraction_and_expected_scale(p, seed):
    """Over n entries the dropped count is Binomial(n, p); the mean output is the input
    mean (inverted dropout). Bounds are 6 standard deviations."""
    n = 20_000
    y = Dropout(p, seed=seed).forward(np.ones(n))
    dropped = np.count_nonzero(y == 0)
    assert abs(dropped - n * p) <= 6 * np.sqrt(n * p * (1 - p))
    assert abs(y.mean() - 1.0) <= 6 * np.sqrt(p / ((1 - p) * n))


@settings(max_examples=30)
@given(PROBS, SHAPES.flatmap(inputs))
def test_eval_mode_is_the_identity(p, x):
    layer = Dropout(p, seed=0)
    layer.training = False
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    g = np.full(x.shape, 2.0)
    np.testing.assert_array_equal(layer.backward(g), g)


def test_zero_probability_keeps_everything():
    x = np.random.default_rng(0).standard_normal((5, 7))
    np.testing.assert_array_equal(Dropout(0.0).forward(x), x)


@settings(max_examples=20)
@given(st.floats(0.1, 0.9), st.integers(0, 2**32 - 1))
def test_unfrozen_mask_changes_between_forwards_frozen_mask_does_not(p, seed):
    x = np.ones((8, 64))
    layer = Dropout(p, seed=seed)
    assert not np.array_equal(layer.forward(x), layer.forward(x))
    layer.freeze_mask()
    first = layer.forward(x)
    np.testing.assert_allclose(first[first != 0], 1 / (1 - p), rtol=1e-15)
    for _ in range(3):
        np.testing.assert_array_equal(layer.forward(x), first)
    layer.unfreeze_mask()
    assert not np.array_equal(layer.forward(x), first)


def test_frozen_mask_is_redrawn_for_a_new_shape_and_then_kept():
    layer = Dropout(0.5, seed=3).freeze_mask()
    a = layer.forward(np.ones((4, 8)))
    b = layer.forward(np.ones((2, 8)))
    assert b.shape == (2, 8)
    np.testing.assert_array_equal(layer.forward(np.ones((2, 8))), b)
    for y in (a, b):                         # masks drawn while frozen are scaled too
        assert set(np.unique(y)) <= {0.0, 2.0}


@settings(max_examples=20)
@given(PROBS, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(inputs),
       st.integers(0, 2**32 - 1))
def test_gradients_with_frozen_mask(p, x, seed):
    assert_layer_gradients(Dropout(p, seed=seed).freeze_mask(), x)


@pytest.mark.parametrize("training", [True, False])
def test_keeps_float32(training):
    layer = Dropout(0.5, seed=0)
    layer.training = training
    y = layer.forward(np.ones((4, 4), dtype=np.float32))
    assert y.dtype == np.float32
    assert layer.backward(np.ones((4, 4))).dtype == np.float32


def test_does_not_mutate_input():
    x = np.ones((3, 3))
    Dropout(0.5).forward(x)
    np.testing.assert_array_equal(x, np.ones((3, 3)))
