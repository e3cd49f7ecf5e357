"""RNN and LSTM: forward against per-sample step-by-step references, causality, gradients
through time, float32.

The references run one sample at a time with scalar-free textbook formulas (separate
gate weights sliced in the documented order i, f, o, g, and a logistic sigmoid written
as 1 / (1 + exp(-z))), so they share no code with the batched layers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.recurrent import LSTM, RNN
from support.layer_fd import assert_layer_gradients

VALUES = st.floats(-1.5, 1.5, allow_nan=False, allow_subnormal=False)


@st.composite
def recurrent_cases(draw, cls, *, max_batch=3, max_steps=5, max_size=4):
    n, t = draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps))
    d, h = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    layer = cls(d, h, seed=draw(st.integers(0, 1000)))
    for p in layer.params.values():
        p[...] = draw(hnp.arrays(np.float64, p.shape, elements=VALUES))
    return layer, draw(hnp.arrays(np.float64, (n, t, d), elements=VALUES))


def reference_rnn(x, wx, wh, b):
    n, t_len, _ = x.shape
    out = np.zeros((n, t_len, wh.shape[0]))
    for i in range(n):
        h = np.zeros(wh.shape[0])
        for t in range(t_len):
            h = np.tanh(wx.T @ x[i, t] + wh.T @ h + b)
            out[i, t] = h
    return out


def reference_lstm(x, wx, wh, b):
    hs = wh.shape[0]
    blocks = {gate: slice(k * hs, (k + 1) * hs) for k, gate in enumerate("ifog")}

    def pre(gate, x_t, h):
        s = blocks[gate]
        return wx[:, s].T @ x_t + wh[:, s].T @ h + b[s]

    n, t_len, _ = x.shape
    out = np.zeros((n, t_len, hs))
    for i in range(n):
        h, c = np.zeros(hs), np.zeros(hs)
        for t in range(t_len):
            gate = {g: 1 / (1 + np.exp(-pre(g, x[i, t], h))) for g in "ifo"}
            c = gate["f"] * c + gate["i"] * np.tanh(pre("g", x[i, t], h))
            h = gate["o"] * np.tanh(c)
            out[i, t] = h
    return out


REFERENCES = [(RNN, reference_rnn), (LSTM, reference_lstm)]
IDS = ["rnn", "lstm"]


@pytest.mark.parametrize(("cls", "reference"), REFERENCES, ids=IDS)
@settings(max_examples=30)
@given(data=st.data())
def test_forward_matches_step_by_step_reference(cls, reference, data):
    layer, x = data.draw(recurrent_cases(cls))
    expected = reference(x, layer.params["Wx"], layer.params["Wh"], layer.params["b"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
@settings(max_examples=20)
@given(data=st.data())
def test_gradients_through_time(cls, data):
    layer, x = data.draw(recurrent_cases(cls))
    assert_layer_gradients(layer, x)


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
@settings(max_examples=20)
@given(data=st.data())
def test_outputs_are_causal(cls, data):
    """h_t depends on x_1..x_t only; and the gradient of h_t reaches no later input."""
    layer, x = data.draw(recurrent_cases(cls))
    t = data.draw(st.integers(0, x.shape[1] - 1))
    y = layer.forward(x)
    changed = x.copy()
    changed[:, t + 1:] += 1.0
    np.testing.assert_array_equal(layer.forward(changed)[:, :t + 1], y[:, :t + 1])
    g = np.zeros_like(y)
    g[:, t] = 1.0
    dx = layer.backward(g)
    assert not np.any(dx[:, t + 1:])


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
@settings(max_examples=20)
@given(data=st.data())
def test_samples_in_a_batch_are_independent(cls, data):
    layer, x = data.draw(recurrent_cases(cls))
    y = layer.forward(x)
    for i in range(x.shape[0]):
        np.testing.assert_allclose(layer.forward(x[i:i + 1]), y[i:i + 1], rtol=1e-12,
                                   atol=1e-14)


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
def test_hidden_states_stay_bounded_for_large_inputs(cls):
    layer = cls(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)) * 1e4
    y = layer.forward(x)
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1)
    assert np.all(np.isfinite(layer.backward(np.ones_like(y))))


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
def test_float32_runs_in_float32(cls):
    layer32, layer64 = cls(3, 4, dtype=np.float32, seed=5), cls(3, 4, seed=5)
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    y = layer32.forward(x.astype(np.float32))
    dx = layer32.backward(np.ones(y.shape, dtype=np.float32))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer32.grads.values())
    np.testing.assert_allclose(y, layer64.forward(x), rtol=1e-5, atol=1e-5)


def test_lstm_gate_layout_and_forget_bias():
    layer = LSTM(2, 3)
    assert layer.params["Wx"].shape == (2, 12)
    assert layer.params["Wh"].shape == (3, 12)
    np.testing.assert_array_equal(layer.params["b"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("cls", [RNN, LSTM], ids=IDS)
def test_initialization_is_seeded_and_recurrent_blocks_are_orthogonal(cls):
    a, b = cls(3, 4, seed=7), cls(3, 4, seed=7)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["Wx"], cls(3, 4, seed=8).params["Wx"])
    for block in np.split(a.params["Wh"], a.gates, axis=1):
        np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-12)
