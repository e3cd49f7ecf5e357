"""Every layer of conv/pooling/shape/dropout/normalization/recurrent keeps the Layer
protocol's contract (params/grads, in-place grads, untouched inputs) and rejects bad input
with a message that names the layer and the shapes, and says what to do."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradcheck.models.base import ShapeError
from gradcheck.models.conv import Conv2D
from gradcheck.models.dropout import Dropout
from gradcheck.models.normalization import BatchNorm, LayerNorm
from gradcheck.models.pooling import AvgPool2D, MaxPool2D
from gradcheck.models.recurrent import LSTM, RNN
from gradcheck.models.shape import Flatten

# (factory, a valid input shape, name that must appear in messages)
LAYERS = {
    "conv": (lambda: Conv2D(3, 2, 3), (2, 3, 5, 5), "Conv2D"),
    "maxpool": (lambda: MaxPool2D(2), (2, 3, 4, 4), "MaxPool2D"),
    "avgpool": (lambda: AvgPool2D(2), (2, 3, 4, 4), "AvgPool2D"),
    "flatten": (Flatten, (2, 3, 4), "Flatten"),
    "dropout": (lambda: Dropout(0.5), (2, 3), "Dropout"),
    "batchnorm": (lambda: BatchNorm(3), (4, 3), "BatchNorm"),
    "layernorm": (lambda: LayerNorm(3), (4, 3), "LayerNorm"),
    "rnn": (lambda: RNN(3, 2), (2, 4, 3), "RNN"),
    "lstm": (lambda: LSTM(3, 2), (2, 4, 3), "LSTM"),
}


def shape_text(shape):
    return re.escape(str(tuple(shape)))


def random_input(shape):
    return np.random.default_rng(0).standard_normal(shape)


# ---------------------------------------------------------------- protocol contract

@pytest.mark.parametrize("key", LAYERS)
def test_params_and_grads_match_and_grads_are_filled_in_place(key):
    make, shape, _ = LAYERS[key]
    layer = make()
    assert layer.params.keys() == layer.grads.keys()
    for name, p in layer.params.items():
        assert layer.grads[name].shape == p.shape and layer.grads[name].dtype == p.dtype
    params = dict(layer.params)
    grads = dict(layer.grads)
    y = layer.forward(random_input(shape))
    layer.backward(np.ones_like(y))
    for name in params:
        assert layer.params[name] is params[name]
        assert layer.grads[name] is grads[name]
        if name in ("W", "Wx", "Wh", "beta"):       # these always get a nonzero gradient
            assert np.any(layer.grads[name])


@pytest.mark.parametrize("key", LAYERS)
def test_inputs_are_not_mutated_and_later_mutation_does_not_leak_into_backward(key):
    make, shape, _ = LAYERS[key]
    layer = make()
    if hasattr(layer, "freeze_mask"):
        layer.freeze_mask()
    x = random_input(shape)
    x_copy = x.copy()
    y = layer.forward(x)
    np.testing.assert_array_equal(x, x_copy)
    g = np.random.default_rng(1).standard_normal(y.shape)
    g_copy = g.copy()
    dx = layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_array_equal(g, g_copy)
    layer.forward(x)
    x += 1.0                                   # the caller reuses its buffer
    np.testing.assert_array_equal(layer.backward(g), dx)
    for name, value in grads.items():
        np.testing.assert_array_equal(layer.grads[name], value)


@pytest.mark.parametrize("key", LAYERS)
def test_backward_before_forward(key):
    make, shape, name = LAYERS[key]
    with pytest.raises(RuntimeError, match=rf"{name}.*backward called before forward"):
        make().backward(np.ones(shape))


@pytest.mark.parametrize("key", LAYERS)
def test_grad_out_of_the_wrong_shape(key):
    make, shape, name = LAYERS[key]
    layer = make()
    y = layer.forward(np.ones(shape))
    bad = (*y.shape, 1)
    with pytest.raises(ShapeError, match=rf"{name}.*{shape_text(y.shape)}.*{shape_text(bad)}"):
        layer.backward(np.ones(bad))


@pytest.mark.parametrize("key", LAYERS)
def test_integer_input_is_refused_with_a_fix(key):
    make, shape, name = LAYERS[key]
    with pytest.raises(TypeError, match=rf"{name}.*float.*astype"):
        make().forward(np.ones(shape, dtype=np.int64))


WRONG_INPUTS = [
    # (layer key, wrong input shape, what the message must contain besides the shape)
    ("conv", (3, 5, 5), "4-d input"),
    ("conv", (2, 4, 5, 5), r"ending in \(3, \*, \*\)"),
    ("maxpool", (4, 4), "4-d input"),
    ("avgpool", (1, 2, 3, 4, 4), "4-d input"),
    ("flatten", (5,), "at least 2 dimensions"),
    ("batchnorm", (4, 2), r"ending in \(3\)"),
    ("batchnorm", (4,), r"\(N, D\).*\(N, C, H, W\)"),
    ("batchnorm", (2, 4, 3), r"\(N, D\).*\(N, C, H, W\)"),
    ("batchnorm", (2, 2, 3, 3), r"ending in \(3, \*, \*\)"),
    ("layernorm", (4, 2), r"ending in \(3\)"),
    ("layernorm", (3,), "2-d input"),
    ("rnn", (4, 3), "3-d input"),
    ("rnn", (2, 4, 5), r"ending in \(3\)"),
    ("lstm", (2, 4, 2), r"ending in \(3\)"),
]


@pytest.mark.parametrize(("key", "shape", "fragment"), WRONG_INPUTS)
def test_wrong_input_shape_names_layer_and_shape(key, shape, fragment):
    make, _, name = LAYERS[key]
    with pytest.raises(ShapeError) as info:
        make().forward(np.ones(shape))
    message = str(info.value)
    assert name in message
    assert str(tuple(shape)) in message
    assert re.search(fragment, message), message


IMPOSSIBLE_SIZES = [
    (lambda: Conv2D(1, 1, 5), (1, 1, 4, 8), "H=4 with padding 0 is smaller than the kernel"),
    (lambda: Conv2D(1, 1, (1, 5), padding=(0, 1)), (1, 1, 4, 2),
     "W=2 with padding 1 is smaller than the kernel"),
    (lambda: MaxPool2D(3), (1, 1, 2, 3), "H=2 with padding 0 is smaller than the kernel"),
    (lambda: AvgPool2D((2, 4)), (1, 1, 2, 3), "W=3"),
]


@pytest.mark.parametrize(("make", "shape", "fragment"), IMPOSSIBLE_SIZES)
def test_impossible_output_size(make, shape, fragment):
    layer = make()
    with pytest.raises(ShapeError, match=re.escape(fragment)) as info:
        layer.forward(np.ones(shape))
    assert type(layer).__name__ in str(info.value)
    assert "empty" in str(info.value)


BAD_ARGUMENTS = [
    (lambda: Conv2D(0, 1, 3), ValueError, "in_channels must be a positive int"),
    (lambda: Conv2D(1, 1, 0), ValueError, "kernel_size must be >= 1"),
    (lambda: Conv2D(1, 1, 3, stride=0), ValueError, "stride must be >= 1"),
    (lambda: Conv2D(1, 1, 3, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: Conv2D(1, 1, (3, 3, 3)), TypeError, "kernel_size must be an int or a pair"),
    (lambda: Conv2D(1, 1, 2.5), TypeError, "kernel_size must be an int or a pair"),
    (lambda: Conv2D(1, 1, 3, dtype=np.float16), TypeError, "dtype must be float64 or float32"),
    (lambda: MaxPool2D(0), ValueError, "MaxPool2D: pool_size must be >= 1"),
    (lambda: AvgPool2D(2, stride=(1, 0)), ValueError, "AvgPool2D: stride must be >= 1"),
    (lambda: Dropout(1.0), ValueError, r"p must be a probability in \[0, 1\)"),
    (lambda: Dropout(-0.1), ValueError, r"p must be a probability in \[0, 1\)"),
    (lambda: Dropout(float("nan")), ValueError, r"p must be a probability in \[0, 1\)"),
    (lambda: BatchNorm(0), ValueError, "num_features must be a positive int"),
    (lambda: BatchNorm(2, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: BatchNorm(2, eps=0.0), ValueError, "eps must be > 0"),
    (lambda: LayerNorm(3, eps=-1e-5), ValueError, "eps must be > 0"),
    (lambda: LayerNorm(3, dtype=np.int32), TypeError, "dtype must be float64 or float32"),
    (lambda: RNN(0, 3), ValueError, "RNN: input_size must be a positive int"),
    (lambda: LSTM(3, 0), ValueError, "LSTM: hidden_size must be a positive int"),
    (lambda: RNN(True, 3), ValueError, "RNN: input_size must be a positive int"),
    (lambda: Conv2D(1, 1, 3, init="zeros"), ValueError, "unknown init 'zeros'"),
]


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)])
def test_batchnorm_training_needs_two_values_per_feature(shape):
    layer = BatchNorm(3)
    with pytest.raises(ShapeError, match=r"BatchNorm\(3\).*at least 2 values per feature.*"
                       + shape_text(shape) + ".*training = False"):
        layer.forward(np.ones(shape))
    layer.training = False
    assert layer.forward(np.ones(shape)).shape == shape


@pytest.mark.parametrize(("make", "error", "fragment"), BAD_ARGUMENTS)
def test_bad_constructor_arguments(make, error, fragment):
    with pytest.raises(error, match=fragment):
        make()
