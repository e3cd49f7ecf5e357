"""The classic example: the 64-16-16-10 sigmoid network learns the 8×8 digits."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.models.data import load_digits
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.examples import digits_classifier, train_digits
from support.layer_fd import assert_layer_gradients


def test_architecture_is_64_16_16_10_sigmoid_with_softmax_ce():
    model, loss = digits_classifier(seed=0)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == [(64, 16), (16, 16), (16, 10)]
    assert [repr(layer) for layer in model.layers if isinstance(layer, Activation)] == [
        "Activation('sigmoid')"] * 2
    assert isinstance(model.layers[-1], Dense)  # logits out, the loss applies softmax
    assert loss.name == "softmax_ce"


def test_network_gradients_on_real_digits():
    x, _ = load_digits()
    model, _ = digits_classifier(seed=3)
    assert_layer_gradients(model, x[:4])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reaches_95_percent_on_held_out_digits(seed):
    result = train_digits(seed=seed)
    assert result.test_accuracy >= 0.95
    assert result.history.val_accuracy[-1] == pytest.approx(result.test_accuracy)
    assert result.history.loss[-1] < 0.2 * result.history.loss[0]


def test_a_seed_reproduces_the_run_bit_for_bit():
    a, b = train_digits(seed=5, epochs=3), train_digits(seed=5, epochs=3)
    assert a.history.loss == b.history.loss
    for name, value in a.model.params.items():
        np.testing.assert_array_equal(value, b.model.params[name])
