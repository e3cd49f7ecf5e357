"""Recurrent layers with one deliberate bug each in an otherwise correct backward."""

from __future__ import annotations

import numpy as np

from gradcheck.models.base import require_forward
from gradcheck.models.recurrent import LSTM, RNN

WINDOW = 2
"""Time steps (counted from the end) the truncated backwards carry the recurrent gradient."""


def _previous_states(states: np.ndarray) -> np.ndarray:
    """``(N, T, H)`` -> the state each step started from (zeros at ``t = 0``)."""
    return np.concatenate([np.zeros_like(states[:, :1]), states[:, :-1]], axis=1)


class TruncatedRNN(RNN):
    """Backpropagates through the last ``WINDOW`` steps only (truncated BPTT)."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, states = require_forward(repr(self), self._cache)
        g = self._grad_out(grad_out, states)
        t_len = states.shape[1]
        da = np.empty_like(states)
        dh_next = np.zeros_like(states[:, 0])
        for t in reversed(range(t_len)):
            da[:, t] = (g[:, t] + dh_next) * (1.0 - states[:, t] ** 2)
            dh_next = da[:, t] @ self.params["Wh"].T
            if t <= t_len - WINDOW:
                dh_next = np.zeros_like(dh_next)  # BUG: the recurrent gradient is cut off
        return self._finish_backward(x, _previous_states(states), da)


class TransposedRecurrentRNN(RNN):
    """``dWh`` computed as ``daᵀ·h_prev`` instead of ``h_prevᵀ·da`` (``Wh`` is square)."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["Wh"][...] = self.grads["Wh"].T.copy()  # BUG: daᵀ·h_prev, reversed
        return dx


class TruncatedLSTM(LSTM):
    """LSTM that backpropagates through the last ``WINDOW`` steps only (truncated BPTT)."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, acts, cells, states = require_forward(repr(self), self._cache)
        dh_out = self._grad_out(grad_out, states)
        c_prev_all = _previous_states(cells)
        t_len = states.shape[1]
        da = np.empty_like(acts)
        dh_next = np.zeros_like(states[:, 0])
        dc_next = np.zeros_like(dh_next)
        for t in reversed(range(t_len)):
            i, f, o, g = np.split(acts[:, t], 4, axis=-1)
            tanh_c = np.tanh(cells[:, t])
            dh = dh_out[:, t] + dh_next
            dc = dc_next + dh * o * (1.0 - tanh_c ** 2)
            da[:, t] = np.concatenate([dc * g * i * (1.0 - i),
                                       dc * c_prev_all[:, t] * f * (1.0 - f),
                                       dh * tanh_c * o * (1.0 - o),
                                       dc * i * (1.0 - g ** 2)], axis=-1)
            dc_next = dc * f
            dh_next = da[:, t] @ self.params["Wh"].T
            if t <= t_len - WINDOW:
                # BUG: both recurrent paths (hidden and cell state) are cut off
                dh_next, dc_next = np.zeros_like(dh_next), np.zeros_like(dc_next)
        return self._finish_backward(x, _previous_states(states), da)
