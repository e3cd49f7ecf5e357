"""BatchNorm and LayerNorm: normalization invariants, running statistics, gradients, dtypes.

Input values come from a Hypothesis-drawn seed, scale and offset rather than element by
element: normalization divides by the spread of the batch, and element-wise strategies
love constant arrays (zero spread), where the finite differences the tests compare against
are ill-conditioned. The offsets and scales still cover badly centred, large and small
inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.models.normalization import BatchNorm, LayerNorm
from support.layer_fd import assert_layer_gradients

EPS = 1e-5


@st.composite
def spread_inputs(draw, shape):
    """Standard-normal values (seeded by Hypothesis), scaled and shifted."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.5, 20))
    offset = draw(st.floats(-50, 50))
    return rng.standard_normal(shape) * scale + offset


BN_SHAPES = st.one_of(
    st.tuples(st.integers(2, 6), st.integers(1, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
    .filter(lambda s: s[0] * s[2] * s[3] >= 2),
)


def channel_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def randomize_affine(layer, rng):
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, layer.params["gamma"].shape) \
        * rng.choice([-1, 1], layer.params["gamma"].shape)
    layer.params["beta"][...] = rng.standard_normal(layer.params["beta"].shape)


# ---------------------------------------------------------------- BatchNorm, training

@settings(max_examples=40)
@given(BN_SHAPES.flatmap(lambda s: spread_inputs(s)))
def test_batchnorm_training_output_has_zero_mean_unit_variance_per_feature(x):
    layer = BatchNorm(x.shape[1])
    y = layer.forward(x)
    axes = channel_axes(x)
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-9)
    # exactly 1 up to eps: var(y) = var / (var + eps)
    np.testing.assert_allclose(y.var(axis=axes), var / (var + EPS), rtol=1e-9)


@settings(max_examples=30)
@given(BN_SHAPES.flatmap(lambda s: spread_inputs(s)), st.integers(0, 100))
def test_batchnorm_applies_gamma_and_beta_per_feature(x, seed):
    layer = BatchNorm(x.shape[1])
    randomize_affine(layer, np.random.default_rng(seed))
    y = layer.forward(x)
    axes = channel_axes(x)
    gamma, beta = layer.params["gamma"], layer.params["beta"]
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.mean(axis=axes), beta, atol=1e-8)
    np.testing.assert_allclose(y.std(axis=axes), np.abs(gamma) * np.sqrt(var / (var + EPS)),
                               rtol=1e-8)


@settings(max_examples=20)
@given(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
       .filter(lambda s: s[0] * s[2] * s[3] >= 2).flatmap(spread_inputs))
def test_batchnorm_4d_equals_2d_on_pixels_as_samples(x):
    """(N, C, H, W) normalizes per channel: same as (N·H·W, C) features."""
    c = x.shape[1]
    as_rows = x.transpose(0, 2, 3, 1).reshape(-1, c)
    y4 = BatchNorm(c).forward(x)
    y2 = BatchNorm(c).forward(as_rows)
    np.testing.assert_allclose(y4.transpose(0, 2, 3, 1).reshape(-1, c), y2, rtol=1e-12,
                               atol=1e-12)


@settings(max_examples=25)
@given(BN_SHAPES.flatmap(lambda s: spread_inputs(s)), st.integers(0, 100))
def test_batchnorm_training_gradients(x, seed):
    layer = BatchNorm(x.shape[1])
    randomize_affine(layer, np.random.default_rng(seed))
    assert_layer_gradients(layer, x)


# ---------------------------------------------------------------- BatchNorm, running stats

@settings(max_examples=25)
@given(st.integers(1, 4).flatmap(lambda d: st.lists(spread_inputs((5, d)), min_size=1,
                                                     max_size=4)),
       st.floats(0.0, 0.99))
def test_batchnorm_running_statistics_are_the_exponential_average(batches, momentum):
    d = batches[0].shape[1]
    layer = BatchNorm(d, momentum=momentum)
    mean, var = np.zeros(d), np.ones(d)
    for batch in batches:
        layer.forward(batch)
        mean = momentum * mean + (1 - momentum) * batch.mean(axis=0)
        var = momentum * var + (1 - momentum) * batch.var(axis=0)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-10)


@settings(max_examples=25)
@given(BN_SHAPES.flatmap(lambda s: spread_inputs(s)), st.integers(0, 100))
def test_batchnorm_eval_uses_running_statistics_and_does_not_update_them(x, seed):
    layer = BatchNorm(x.shape[1], momentum=0.5)
    randomize_affine(layer, np.random.default_rng(seed))
    layer.forward(x)
    layer.forward(x[::-1] * 2.0 + 1.0)
    layer.training = False
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    y = layer.forward(x)
    nd = x.ndim
    expected = (per_channel(layer.params["gamma"], nd) * (x - per_channel(mean, nd))
                / np.sqrt(per_channel(var, nd) + EPS) + per_channel(layer.params["beta"], nd))
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(layer.running_mean, mean)
    np.testing.assert_array_equal(layer.running_var, var)
    # each sample is normalized on its own: a batch of one gives the same row
    np.testing.assert_allclose(layer.forward(x[:1]), y[:1], rtol=1e-12, atol=1e-12)


@settings(max_examples=20)
@given(BN_SHAPES.flatmap(lambda s: spread_inputs(s)), st.integers(0, 100))
def test_batchnorm_eval_gradients(x, seed):
    layer = BatchNorm(x.shape[1])
    randomize_affine(layer, np.random.default_rng(seed))
    layer.forward(x * 0.5 + 1.0)
    layer.training = False
    assert_layer_gradients(layer, x)


# ---------------------------------------------------------------- LayerNorm

LN_SHAPES = st.lists(st.integers(1, 3), min_size=1, max_size=2).flatmap(
    lambda lead: st.integers(2, 5).map(lambda d: (*lead, d)))


@settings(max_examples=40)
@given(LN_SHAPES.flatmap(spread_inputs))
def test_layernorm_normalizes_every_row(x):
    y = LayerNorm(x.shape[-1]).forward(x)
    var = x.var(axis=-1)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-9)
    np.testing.assert_allclose(y.var(axis=-1), var / (var + EPS), rtol=1e-9)


@settings(max_examples=30)
@given(LN_SHAPES.flatmap(spread_inputs), st.integers(0, 100))
def test_layernorm_rows_are_independent(x, seed):
    """Changing one row changes no other row (unlike BatchNorm in training)."""
    layer = LayerNorm(x.shape[-1])
    randomize_affine(layer, np.random.default_rng(seed))
    rows = x.reshape(-1, x.shape[-1])
    y = layer.forward(rows)
    changed = rows.copy()
    changed[0] = changed[0] * 3.0 + 7.0
    np.testing.assert_allclose(layer.forward(changed)[1:], y[1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward(x), y.reshape(x.shape), rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(LN_SHAPES.flatmap(spread_inputs), st.integers(0, 100))
def test_layernorm_gradients(x, seed):
    layer = LayerNorm(x.shape[-1])
    randomize_affine(layer, np.random.default_rng(seed))
    assert_layer_gradients(layer, x)


# ---------------------------------------------------------------- float32

@pytest.mark.parametrize("make", [lambda: BatchNorm(3, dtype=np.float32),
                                  lambda: LayerNorm(3, dtype=np.float32)],
                         ids=["batchnorm", "layernorm"])
@pytest.mark.parametrize("training", [True, False])
def test_float32_layers_compute_in_float32(make, training):
    layer = make()
    layer.training = training
    x = np.random.default_rng(0).normal(3, 2, size=(8, 3))
    y = layer.forward(x.astype(np.float32))
    dx = layer.backward(np.ones(y.shape, dtype=np.float32))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    reference = type(layer)(3)
    reference.training = training
    np.testing.assert_allclose(y, reference.forward(x), rtol=1e-4, atol=1e-4)


def test_parameters_are_read_in_place():
    layer = BatchNorm(2)
    gamma = layer.params["gamma"]
    x = np.random.default_rng(0).standard_normal((6, 2))
    y = layer.forward(x)
    layer.params["gamma"] *= 3.0
    np.testing.assert_allclose(layer.forward(x), 3.0 * y)
    layer.backward(np.ones_like(y))
    assert layer.params["gamma"] is gamma


def test_a_bias_feeding_batchnorm_has_zero_gradient_and_no_spurious_relative_error():
    # BatchNorm removes any per-feature shift, so the Dense bias before it has gradient 0;
    # rounding-level differences there must not read as a 100 % relative error.
    import gradcheck
    from gradcheck.models import Dense, Loss, Sequential

    model = Sequential([Dense(4, 3, seed=1), BatchNorm(3), Dense(3, 2, seed=2)])
    x = np.random.default_rng(3).standard_normal((6, 4))
    result = gradcheck.check_model(model, Loss("mse"), x, np.zeros((6, 2)), mode="full")
    bias = next(t for t in result.tensors if t.name == "0.b")
    assert result.ok
    assert np.max(np.abs(model.grads["0.b"])) < 1e-12
    assert bias.max_rel_error < 0.5  # was 1.0: error / max(|a|, |n|) with both ≈ 0
