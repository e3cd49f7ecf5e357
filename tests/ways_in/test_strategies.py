"""The Hypothesis strategies: valid draws, declared ranges and kinks, validation, shrinking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import gradcheck.ways_in.strategies as gs
from gradcheck.models.activations import ACTIVATIONS
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.losses import LOSSES

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINKED = [name for name, row in ACTIVATIONS.items() if row.kinks]


@FEW
@given(name=gs.activation_names(), smooth=gs.activation_names(smooth=True),
       kinked=gs.activation_names(smooth=False), loss=gs.loss_names())
def test_names_come_from_the_tables_and_honour_smooth(name, smooth, kinked, loss):
    assert name in ACTIVATIONS and loss in LOSSES
    assert not ACTIVATIONS[smooth].kinks
    assert ACTIVATIONS[kinked].kinks


@FEW
@given(data=st.data(), name=gs.activation_names(),
       dtype=st.sampled_from([np.float64, np.float32]),
       shape=st.lists(st.integers(0, 4), max_size=3).map(tuple))
def test_arrays_stay_in_the_row_domain_and_away_from_its_kinks(data, name, dtype, shape):
    row = ACTIVATIONS[name]
    x = data.draw(gs.arrays(shape, dtype=dtype, activation=name))
    assert x.shape == shape and x.dtype == dtype
    lo, hi = row.domain
    assert np.all((x >= lo) & (x <= hi))
    gap = gs.KINK_FRACTION * (hi - lo)
    for kink in row.kinks:
        assert np.all(np.abs(x.astype(np.float64) - kink) >= gap)


@FEW
@given(data=st.data(), name=st.sampled_from(KINKED), distance=st.floats(0.001, 0.5))
def test_an_explicit_kink_distance_is_kept(data, name, distance):
    x = data.draw(gs.arrays((5,), activation=name, kink_distance=distance))
    assert np.all(np.abs(x[:, None] - np.array(ACTIVATIONS[name].kinks)) >= distance)


@FEW
@given(data=st.data(), lo=st.floats(-5, 0.9), width=st.floats(0.01, 5))
def test_float32_bounds_need_not_be_representable(data, lo, width):
    x = data.draw(gs.arrays((3,), dtype=np.float32, min_value=lo, max_value=lo + width))
    assert np.all((x >= lo) & (x <= lo + width))


@FEW
@given(data=st.data(), name=st.sampled_from(KINKED),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_on_kinks_puts_an_entry_exactly_on_a_kink(data, name, dtype):
    x = data.draw(gs.arrays((2, 3), dtype=dtype, activation=name, on_kinks=True))
    assert np.isin(x, np.array(ACTIVATIONS[name].kinks, dtype=dtype)).any()


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"shape": (2, -1)}, "shape"),
    ({"shape": 3, "dtype": np.int64}, "dtype"),
    ({"shape": 3, "min_value": 2.0, "max_value": 1.0}, "min_value"),
    ({"shape": 3, "activation": "swish2"}, "activation"),
    ({"shape": 3, "activation": "relu", "kink_distance": -1.0}, "kink_distance"),
    ({"shape": 3, "activation": "tanh", "on_kinks": True}, "on_kinks"),
    ({"shape": 3, "activation": "relu", "on_kinks": True, "kink_distance": 0.1}, "kink_distance"),
    ({"shape": 3, "activation": "hard_tanh", "kink_distance": 1.5}, "kink_distance"),
])
def test_arrays_validation_names_the_argument(kwargs, argument):
    shape = kwargs.pop("shape")
    with pytest.raises(InvalidArgument, match=argument):
        gs.arrays(shape, **kwargs)


@pytest.mark.parametrize(("strategy", "kwargs", "argument"), [
    (gs.dense_layers, {"min_in": 3, "max_in": 2}, "min_in"),
    (gs.dense_layers, {"max_batch": 0}, "max_batch"),
    (gs.conv_layers, {"max_kernel": 0}, "max_kernel"),
    (gs.rnn_layers, {"cells": ["gru"]}, "cells"),
    (gs.sequential_networks, {"max_depth": 0}, "max_depth"),
    (gs.sequential_networks, {"activations": ["nope"]}, "activations"),
    (gs.sequential_networks, {"losses": ["bce"]}, "bce_logits"),
    (gs.sequential_networks, {"l2": [-1.0]}, "l2"),
])
def test_layer_strategies_validate_their_arguments(strategy, kwargs, argument):
    with pytest.raises(InvalidArgument, match=argument):
        strategy(**kwargs)


@FEW
@given(case=gs.dense_layers(dtype=np.float32))
def test_dense_layers_match_their_inputs(case):
    layer, x = case
    assert x.shape[1] == layer.params["W"].shape[0] and x.dtype == np.float32
    assert layer.forward(x).shape == (x.shape[0], layer.params["W"].shape[1])


@FEW
@given(case=gs.conv_layers())
def test_conv_layers_have_a_positive_output_size(case):
    layer, x = case
    y = layer.forward(x)
    assert y.shape[:2] == (x.shape[0], layer.params["W"].shape[0]) and min(y.shape) >= 1


@FEW
@given(case=gs.rnn_layers())
def test_rnn_layers_return_every_hidden_state(case):
    layer, x = case
    n, t, _ = x.shape
    assert layer.forward(x).shape == (n, t, layer.params["Wh"].shape[0])


@FEW
@given(case=gs.sequential_networks(max_depth=3, losses=["mse", "softmax_ce", "bce_logits",
                                                          "huber"], l2=[0.0, 0.1]))
def test_sequential_networks_run_forward_with_valid_targets(case):
    dense = [layer for layer in case.model.layers if isinstance(layer, Dense)]
    assert 1 <= len(dense) <= 3
    assert all(isinstance(layer, Activation) for layer in case.model.layers[1::2])
    pred = case.model.forward(case.x)
    assert np.isfinite(case.loss.forward(pred, case.y))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gs.sequential_networks(max_depth=3, losses=["mse", "softmax_ce", "bce_logits",
                                                          "huber"], l2=[0.0, 0.1]))
def test_drawn_networks_pass_the_checker_with_biases_off_zero(case):
    import gradcheck
    biases = [layer.params["b"] for layer in case.model.layers if isinstance(layer, Dense)]
    assert all(np.all(np.abs(b) >= gs.BIAS_GAP) for b in biases)
    result = gradcheck.check_model(case.model, case.loss, case.x, case.y)
    assert result.ok, str(result)


def test_a_planted_bug_shrinks_to_the_smallest_network(monkeypatch):
    import gradcheck
    sigmoid = ACTIVATIONS["sigmoid"]
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", dataclasses.replace(
        sigmoid, df=lambda z, y: 1.5 * sigmoid.df(z, y)))  # the planted bug

    def gradients_wrong(case):
        return not gradcheck.check_model(case.model, case.loss, case.x, case.y).ok

    minimal = find(gs.sequential_networks(max_depth=4, max_width=4, max_batch=3,
                                          activations=["identity", "tanh", "sigmoid"]),
                   gradients_wrong, settings=settings(max_examples=200, database=None,
                                                      deadline=None))
    assert [type(layer).__name__ for layer in minimal.model.layers] == ["Dense", "Activation"]
    assert minimal.model.layers[1].name == "sigmoid"
    assert minimal.model.layers[0].params["W"].shape == (1, 1)
    assert minimal.x.shape == (1, 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(gs.dense_layers(), gs.dense_layers(dtype=np.float32), gs.conv_layers(),
                      gs.rnn_layers()))
def test_drawn_layers_pass_the_checker(case):
    import gradcheck
    layer, x = case
    result = gradcheck.check_layer(layer, x)
    assert result.ok, str(result)
