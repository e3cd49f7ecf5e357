"""Whole networks exactly: the loss of a tiny network as one SymPy expression in all
weights, differentiated symbolically, against the NumPy backprop of gradcheck.models and
against the backpropagation equations."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gradcheck.models.recurrent import RNN
from gradcheck.reference.convolution import ExactConv2D, compare_conv_with_models
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES
from gradcheck.reference.networks import (
    ExactNetwork,
    backprop_gradient,
    compare_with_models,
    dyadic_point,
    output_activation,
)
from gradcheck.reference.recurrent import ExactRNN, compare_rnn_with_models
from tests.support.names import UNKNOWN_ACTIVATION, UNKNOWN_LOSS

# float64 backprop of a 2-3-2 network: a few roundings per entry, relative to the largest
# gradient entry; 1e-14 is ~45 ulps, while any wrong term errs by O(1)
ROUNDING = 1e-14


@pytest.mark.parametrize("activation", sorted(EXACT_ACTIVATIONS))
def test_models_backprop_matches_exact_gradient_for_every_activation(activation):
    net = ExactNetwork((2, 3, 2), activation, "half_sse", samples=1)
    comparison = compare_with_models(net, seed=4)
    assert comparison.relative_error <= ROUNDING, (activation, comparison.worst)


@pytest.mark.parametrize("loss", sorted(EXACT_LOSSES))
def test_models_backprop_matches_exact_gradient_for_every_loss(loss):
    net = ExactNetwork((2, 3, 2), "tanh", loss, samples=2)
    comparison = compare_with_models(net, seed=5)
    assert comparison.relative_error <= ROUNDING, (loss, comparison.worst)
    assert set(comparison.exact) == {"0.W", "0.b", "2.W", "2.b"}


def test_the_comparison_detects_a_wrong_gradient():
    net = ExactNetwork((2, 3, 2), "sigmoid", "mse", samples=2)
    comparison = compare_with_models(net, seed=1)
    wrong = comparison.numpy["0.W"].copy()
    wrong[1, 2] *= 1.001
    scale = max(np.max(np.abs(g)) for g in comparison.exact.values())
    assert np.max(np.abs(wrong - comparison.exact["0.W"])) / scale > 1e3 * ROUNDING


@pytest.mark.parametrize(("sizes", "activation", "loss"), [
    ((2, 3, 2), "sigmoid", "mse"),
    ((2, 2, 2, 2), "relu", "softmax_ce"),
    ((3, 2, 2), "tanh", "cce"),
    ((2, 2, 1), "softplus", "bce"),
])
def test_backprop_equations_equal_the_symbolic_gradient(sizes, activation, loss):
    net = ExactNetwork(sizes, activation, loss, samples=2)
    equations = backprop_gradient(net)
    assert {k: v.shape for k, v in equations.items()} == {
        k: v.shape for k, v in net.parameters.items()}
    flat = [entry for name in net.parameters for entry in equations[name]]
    differences = [a - b for a, b in zip(flat, net.symbolic_gradient, strict=True)]
    gaps = net.evaluate(differences, net.point(seed=2))
    scale = max(abs(v) for v in net.evaluate(net.symbolic_gradient, net.point(seed=2)))
    assert max(abs(g) for g in gaps) <= 1e-40 * scale


def test_backprop_equations_symbolically_for_a_linear_network():
    # no activation curvature: the difference simplifies to zero exactly
    net = ExactNetwork((2, 2, 1), "identity", "half_sse", samples=1)
    equations = backprop_gradient(net)
    flat = [entry for name in net.parameters for entry in equations[name]]
    assert all(sp.expand(a - b) == 0 for a, b in zip(flat, net.symbolic_gradient, strict=True))


def test_output_activation_follows_what_the_loss_takes():
    assert output_activation("bce") == "sigmoid"
    assert output_activation("cce") == "softmax"
    assert output_activation("softmax_ce") is None
    assert output_activation("mse") is None


def test_points_are_dyadic_hence_exact_in_float64():
    values = dyadic_point((50,), np.random.default_rng(0))
    assert np.all(values * 64 == np.round(values * 64))


def test_a_pre_activation_exactly_at_a_kink_is_refused():
    net = ExactNetwork((1, 1, 1), "relu", "mse", samples=1)
    values = {"0.W": np.array([[1.0]]), "0.b": np.array([-0.5]), "2.W": np.array([[1.0]]),
              "2.b": np.array([0.0]), "x": np.array([[0.5]]), "t": np.array([[0.25]])}
    with pytest.raises(ValueError, match="exactly at a kink of relu"):
        net.exact_gradient(values)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sizes": (2,), "activation": "tanh", "loss": "mse"}, "at least two"),
    ({"sizes": (2, 2), "activation": UNKNOWN_ACTIVATION, "loss": "mse"},
     f"unknown activation '{UNKNOWN_ACTIVATION}'"),
    ({"sizes": (2, 2), "activation": "tanh", "loss": UNKNOWN_LOSS},
     f"unknown loss '{UNKNOWN_LOSS}'"),
])
def test_bad_networks_are_refused_with_the_reason(kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        ExactNetwork(**kwargs)


@pytest.mark.parametrize(("kwargs", "seed"), [
    ({}, 0),
    ({"loss": "huber", "steps": 2}, 1),
    ({"input_size": 1, "hidden_size": 3, "steps": 4, "samples": 1, "loss": "mse"}, 2),
])
def test_models_rnn_bptt_matches_exact_gradient(kwargs, seed):
    comparison = compare_rnn_with_models(ExactRNN(**kwargs), seed=seed)
    assert comparison.relative_error <= ROUNDING, comparison.worst
    assert set(comparison.exact) == {"Wx", "Wh", "b", "x"}  # BPTT reaches every input


def test_a_wrong_rnn_input_gradient_is_caught(monkeypatch):
    right = RNN._finish_backward
    monkeypatch.setattr(RNN, "_finish_backward", lambda self, *args: 1.5 * right(self, *args))
    comparison = compare_rnn_with_models(seed=0)
    assert comparison.worst == "x" and comparison.relative_error > 1e-3

def test_rnn_objective_depends_on_every_step():
    net = ExactRNN(steps=3)
    # the first input reaches the loss through the recurrence: d/dx_00 is not zero
    assert sp.diff(net.objective, sp.Symbol("x_000", real=True)) != 0


def test_rnn_needs_an_elementwise_loss():
    with pytest.raises(ValueError, match="loss must be elementwise"):
        ExactRNN(loss="softmax_ce")


@pytest.mark.parametrize(("kwargs", "seed"), [
    ({}, 0),
    ({"stride": 2, "padding": 1, "height": 4, "width": 4, "kernel": 3}, 1),
    ({"in_channels": 2, "out_channels": 1, "padding": 0, "activation": "sigmoid",
      "loss": "mse", "samples": 1}, 2),
])
def test_models_conv2d_matches_exact_gradient_including_the_input(kwargs, seed):
    comparison = compare_conv_with_models(ExactConv2D(**kwargs), seed=seed)
    assert comparison.relative_error <= ROUNDING, comparison.worst
    assert set(comparison.exact) == {"W", "b", "x"}


def test_conv_output_follows_the_definition_at_a_border():
    net = ExactConv2D(padding=1, kernel=2, in_channels=1, out_channels=1, samples=1)
    corner = net.output()[0, 0, 0, 0]
    # top-left output sees only x[0, 0, 0, 0] (the rest of its window is padding)
    assert sp.expand(corner - (net.b[0] + net.W[0, 0, 1, 1] * net.x[0, 0, 0, 0])) == 0


def test_conv_refuses_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        ExactConv2D(kernel=5, padding=0, height=3, width=3)
