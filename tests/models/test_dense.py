"""Dense and Activation layers, and the initializers behind Dense."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS
from gradcheck.models.base import ShapeError
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.init import fans, he_normal, initialize, xavier_uniform
from support.layer_fd import assert_layer_gradients


@st.composite
def dense_cases(draw):
    n_in, n_out, n = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    layer = Dense(n_in, n_out, init=draw(st.sampled_from(["xavier", "he"])),
                  seed=draw(st.integers(0, 2**16)))
    # a non-zero bias, so a backward that ignores or mixes up b cannot pass
    layer.params["b"][...] = draw(hnp.arrays(np.float64, n_out, elements=st.floats(-1, 1)))
    x = draw(hnp.arrays(np.float64, (n, n_in), elements=st.floats(-2.0, 2.0)))
    return layer, x


@settings(max_examples=30)
@given(case=dense_cases())
def test_dense_gradients(case):
    layer, x = case
    assert_layer_gradients(layer, x)


def _away_from_kinks(name: str) -> st.SearchStrategy[float]:
    op = ACTIVATIONS[name]
    return st.floats(*op.domain).filter(lambda v: all(abs(v - k) > 1e-3 for k in op.kinks))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@settings(max_examples=10)
@given(data=st.data())
def test_activation_layer_gradients(name, data):
    x = data.draw(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4),
                             elements=_away_from_kinks(name)))
    assert_layer_gradients(Activation(name), x)


@settings(max_examples=20)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=5),
                    elements=st.floats(-4.0, 4.0)))
def test_softmax_layer_gradients(x):
    assert_layer_gradients(Activation("softmax"), x)


@settings(max_examples=20)
@given(case=dense_cases(), a=st.floats(-2.0, 2.0))
def test_dense_is_affine(case, a):
    layer, x = case
    x2 = x[::-1] + 0.5
    mix = layer.forward(a * x + (1 - a) * x2)
    np.testing.assert_allclose(mix, a * layer.forward(x) + (1 - a) * layer.forward(x2),
                               rtol=1e-10, atol=1e-10)


def test_dense_reads_its_params_in_place_and_fills_grads_in_place():
    layer = Dense(3, 2, seed=1)
    x = np.arange(6.0).reshape(2, 3)
    w, gw = layer.params["W"], layer.grads["W"]
    before = layer.forward(x)
    w += 1.0  # an optimizer step or a checker's perturbation
    after = layer.forward(x)
    np.testing.assert_allclose(after - before, np.full((2, 2), x.sum(axis=1)[:, None]))
    layer.backward(np.ones((2, 2)))
    assert layer.params["W"] is w and layer.grads["W"] is gw
    assert np.any(gw != 0)


def test_dense_does_not_mutate_inputs():
    layer = Dense(3, 2)
    x, g = np.ones((4, 3)), np.ones((4, 2))
    x0, g0 = x.copy(), g.copy()
    layer.forward(x)
    layer.backward(g)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)



@pytest.mark.parametrize("name", ["Dense", *ACTIVATIONS, *VECTOR_ACTIVATIONS])
def test_later_in_place_changes_by_the_caller_do_not_leak_into_backward(name):
    layer = Dense(3, 3, seed=0) if name == "Dense" else Activation(name)
    x = np.random.default_rng(0).standard_normal((4, 3))  # relu and friends cross 0 below
    g = np.random.default_rng(1).standard_normal((4, 3))
    y = layer.forward(x)
    dx = layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    y = layer.forward(x)
    x += 2.0    # the caller reuses its input buffer ...
    y *= -3.0   # ... and scales the output it was given, in place
    np.testing.assert_array_equal(layer.backward(g), dx)
    for name, value in grads.items():
        np.testing.assert_array_equal(layer.grads[name], value)

@pytest.mark.parametrize("name", [*ACTIVATIONS, *VECTOR_ACTIVATIONS])
def test_float32_layers_stay_float32(name):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    dense = Dense(4, 4, dtype=np.float32)
    act = Activation(name)
    y = act.forward(dense.forward(x))
    dx = dense.backward(act.backward(np.ones_like(y)))
    assert {y.dtype, dx.dtype, dense.params["W"].dtype, dense.grads["W"].dtype,
            dense.grads["b"].dtype} == {np.dtype(np.float32)}


def test_dense_casts_inputs_to_its_dtype():
    layer = Dense(3, 2, dtype=np.float32)
    y = layer.forward(np.ones((2, 3)))  # float64 in
    dx = layer.backward(np.ones((2, 2)))
    assert y.dtype == dx.dtype == np.float32


def test_seed_reproduces_and_generator_advances():
    assert np.array_equal(Dense(5, 3, seed=7).params["W"], Dense(5, 3, seed=7).params["W"])
    assert not np.array_equal(Dense(5, 3, seed=7).params["W"], Dense(5, 3, seed=8).params["W"])
    rng = np.random.default_rng(0)
    assert not np.array_equal(Dense(5, 3, seed=rng).params["W"],
                              Dense(5, 3, seed=rng).params["W"])


def test_reprs_name_the_layer():
    assert repr(Dense(64, 16)) == "Dense(64→16)"
    assert repr(Activation("gelu_tanh")) == "Activation('gelu_tanh')"
    assert Activation("relu").params == {} and Activation("relu").grads == {}


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: Dense(4, 3).forward(np.ones((2, 5))), ShapeError,
     r"Dense\(4→3\): expected input shape \(N, in\) ending in \(4\), got \(2, 5\)"),
    (lambda: Dense(4, 3).forward(np.ones(4)), ShapeError, r"expected a 2-d input"),
    (lambda: Dense(4, 3).forward(np.ones((2, 4), dtype=int)), TypeError, "float array"),
    (lambda: Dense(4, 3).backward(np.ones((2, 3))), RuntimeError,
     r"Dense\(4→3\).backward called before forward"),
    (lambda: Activation("tanh").backward(np.ones(3)), RuntimeError, "before forward"),
    (lambda: Dense(0, 3), ValueError, "in_features must be a positive integer"),
    (lambda: Dense(4, 2.5), ValueError, "out_features must be a positive integer"),
    (lambda: Dense(4, 3, init="orthogonal"), ValueError, "choose one of xavier, glorot, he"),
    (lambda: Dense(4, 3, dtype=np.float16), TypeError, "float64 or float32"),
    (lambda: Activation("swish"), ValueError, "known activations: identity"),
])
def test_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_backward_rejects_a_grad_of_the_wrong_shape():
    layer = Dense(4, 3)
    layer.forward(np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"grad_out must have the shape of the forward output "
                                         r"\(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))


# ---- initializers -----------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "expected"), [
    ((64, 16), (64, 16)), ((8, 3, 5, 5), (75, 200)), ((4, 2, 3), (6, 12)),
])
def test_fans_for_dense_and_conv_shapes(shape, expected):
    assert fans(shape) == expected


def test_fans_reject_vectors():
    with pytest.raises(ValueError, match=r"dense \(in, out\) or conv"):
        fans((5,))


@pytest.mark.parametrize("shape", [(400, 300), (32, 16, 3, 3)])
def test_xavier_is_uniform_with_glorot_variance(shape):
    fan_in, fan_out = fans(shape)
    w = xavier_uniform(np.random.default_rng(0), shape)
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert w.shape == shape and np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit  # fills the whole interval
    # sample variance of ≥ 4,608 uniform draws: within 5 % of 2/(fan_in + fan_out)
    assert w.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.05)


@pytest.mark.parametrize("shape", [(400, 300), (32, 16, 3, 3)])
def test_he_is_normal_with_variance_two_over_fan_in(shape):
    fan_in, _ = fans(shape)
    w = he_normal(np.random.default_rng(0), shape, np.float32)
    assert w.dtype == np.float32
    assert w.mean() == pytest.approx(0, abs=4 * np.sqrt(2 / fan_in / w.size))
    assert w.var() == pytest.approx(2 / fan_in, rel=0.05)


def test_initialize_is_seeded():
    a = initialize("he", np.random.default_rng(3), (5, 4))
    b = initialize("he", np.random.default_rng(3), (5, 4))
    np.testing.assert_array_equal(a, b)
