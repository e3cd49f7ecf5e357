"""Sequential: gradients end to end, named parameters that alias the layers', L2, modes."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.activations import ACTIVATIONS
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.network import Sequential
from support.layer_fd import assert_layer_gradients

NO_L2 = st.just(0.0)
SMOOTH = sorted(name for name, op in ACTIVATIONS.items() if not op.kinks)


class Scale:
    """A tiny test layer: ``y = x·gamma`` elementwise, with a training flag."""

    def __init__(self, n: int, decayed: tuple[str, ...] | None = None) -> None:
        self.params = {"gamma": np.linspace(0.5, 1.5, n)}
        self.grads = {"gamma": np.zeros(n)}
        self.training = True
        if decayed is not None:
            self.decayed = decayed

    def forward(self, x):
        self._x = x
        return x * self.params["gamma"]

    def backward(self, g):
        self.grads["gamma"][...] = np.sum(g * self._x, axis=0)
        return g * self.params["gamma"]


@st.composite
def networks(draw, *, l2=NO_L2):
    """A random Dense/smooth-activation stack and an input batch for it."""
    widths = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**16))
    layers: list = []
    for i, (n_in, n_out) in enumerate(pairwise(widths)):
        layers.append(Dense(n_in, n_out, seed=seed + i))
        layers[-1].params["b"][...] = 0.1 * (i + 1)
        layers.append(Activation(draw(st.sampled_from(SMOOTH))))
    x = draw(hnp.arrays(np.float64, (draw(st.integers(1, 3)), widths[0]),
                        elements=st.floats(-2.0, 2.0)))
    return Sequential(layers, l2=draw(l2)), x


@settings(max_examples=25)
@given(case=networks())
def test_sequential_gradients_any_smooth_architecture(case):
    model, x = case
    assert_layer_gradients(model, x)


@settings(max_examples=20)
@given(case=networks(l2=st.floats(1e-3, 1.0)), seed=st.integers(0, 2**16))
def test_l2_penalty_enters_objective_and_gradient(case, seed):
    model, x = case
    g = np.random.default_rng(seed).standard_normal(model.forward(x).shape)
    model.backward(g)
    analytic = {k: v.copy() for k, v in model.grads.items()}

    def objective() -> float:
        return float(np.sum(model.forward(x) * g)) + model.penalty()

    h = 1e-6
    for name, p in model.params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = objective()
            p[i] = old - h
            down = objective()
            p[i] = old
            numeric[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-5, atol=1e-7,
                                   err_msg=name)


def test_penalty_covers_weights_only():
    model = Sequential([Dense(3, 2, seed=0), Activation("tanh"), Dense(2, 2, seed=1)], l2=0.5)
    for b in (model.params["0.b"], model.params["2.b"]):
        b[...] = 10.0  # biases must not count
    expected = 0.5 * (np.sum(model.params["0.W"] ** 2) + np.sum(model.params["2.W"] ** 2))
    assert model.penalty() == pytest.approx(expected)
    assert model.decayed() == ["0.W", "2.W"]
    assert Sequential(model.layers).penalty() == 0.0


def test_decayed_attribute_overrides_the_default():
    x, g = np.ones((2, 3)), np.ones((2, 3))
    plain = Sequential([Scale(3)], l2=0.1)
    decayed = Sequential([Scale(3, decayed=("gamma",))], l2=0.1)
    assert plain.decayed() == [] and plain.penalty() == 0.0
    assert decayed.decayed() == ["0.gamma"]
    for model in (plain, decayed):
        model.forward(x)
        model.backward(g)
    gamma = decayed.params["0.gamma"]
    np.testing.assert_allclose(decayed.grads["0.gamma"], plain.grads["0.gamma"] + 0.2 * gamma)


def test_params_and_grads_alias_the_layers_arrays():
    model = Sequential([Dense(3, 2, seed=0), Activation("sigmoid"), Dense(2, 1, seed=1)])
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert list(model.grads) == list(model.params)
    assert model.params["2.W"] is model.layers[2].params["W"]
    x = np.ones((4, 3))
    before = model.forward(x)
    model.params["0.W"][0, 0] += 0.5  # in place, through the model
    assert not np.allclose(model.forward(x), before)
    model.backward(np.ones((4, 1)))
    assert model.grads["0.W"] is model.layers[0].grads["W"]
    assert np.any(model.grads["0.W"] != 0)


def test_train_and_eval_reach_every_layer_with_a_flag():
    flagged = Scale(2)
    model = Sequential([Dense(2, 2), flagged, Activation("relu")])
    assert model.eval() is model
    assert flagged.training is False and model.training is False
    assert not hasattr(model.layers[0], "training")  # not added where absent
    model.train()
    assert flagged.training is True and model.training is True


def test_predict_restores_the_mode_and_accuracy_reads_labels_or_one_hot():
    model = Sequential([Dense(2, 3, seed=0), Scale(3)])
    x = np.random.default_rng(0).standard_normal((7, 2))
    model.train()
    pred = model.predict(x, batch_size=3)
    assert model.layers[1].training is True
    np.testing.assert_allclose(pred, model.forward(x))
    labels = pred.argmax(axis=1)
    labels[0] = (labels[0] + 1) % 3
    assert model.accuracy(x, labels) == pytest.approx(6 / 7)
    assert model.accuracy(x, np.eye(3)[labels]) == pytest.approx(6 / 7)


def test_repr_shows_one_line_per_layer_with_shapes():
    text = repr(Sequential([Dense(4, 3), Activation("relu"), Dense(3, 2)], l2=0.01))
    lines = text.splitlines()
    assert lines[0] == "Sequential(l2=0.01"
    assert lines[1] == "  (0) Dense(4→3)  [W (4, 3), b (3,)]"
    assert lines[2] == "  (1) Activation('relu')"
    assert lines[-1] == ")  # 23 parameters"


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: Sequential([]), ValueError, "at least one layer"),
    (lambda: Sequential([Dense(2, 2), object()]), TypeError,
     "layer 1 .* lacks params, grads, forward, backward"),
    (lambda: Sequential([Dense(2, 2)], l2=-1.0), ValueError, "l2 must be a finite number"),
    (lambda: Sequential([Dense(2, 2)]).forward(np.ones((1, 3))), ValueError, r"Dense\(2→2\)"),
])
def test_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
