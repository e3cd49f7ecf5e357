"""Recurrent layers over ``(N, T, D)`` batches: a tanh ``RNN`` and an ``LSTM``.

Both start from a zero state, return every hidden state ``(N, T, H)`` and backpropagate
through time over the whole sequence. Only time is looped over: the input projection
``x @ Wx + b`` and, in the backward, ``dWx``, ``dWh``, ``db`` and ``dx`` are single
matrix products over all time steps; the loop carries only what depends on ``t - 1``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gradcheck.models.base import check_dtype, check_grad_out, check_input, require_forward
from gradcheck.models.init import xavier_uniform

__all__ = ["LSTM", "RNN"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 0.5·(1 + tanh(z/2)) equals 1/(1 + e^{-z}) and never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _init_weights(owner: str, input_size: int, hidden_size: int, gates: int,
                  seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Glorot-uniform ``Wx: (D, gates·H)``; ``Wh: (H, gates·H)`` one orthogonal block per
    gate (keeps the recurrence's singular values at 1 at the start)."""
    for arg, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{owner}: {arg} must be a positive int, got {value!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    wx = xavier_uniform(rng, (input_size, gates * hidden_size))
    blocks = []
    for _ in range(gates):
        q, r = np.linalg.qr(rng.standard_normal((hidden_size, hidden_size)))
        blocks.append(q * np.where(np.diag(r) < 0, -1.0, 1.0))  # uniform over orthogonals
    return wx, np.concatenate(blocks, axis=1)


def _previous_states(states: np.ndarray) -> np.ndarray:
    """``(N, T, H)`` states -> the state each step started from (zeros at ``t = 0``)."""
    return np.concatenate([np.zeros_like(states[:, :1]), states[:, :-1]], axis=1)


class _Recurrent:
    """Shared parameters, validation and the time-independent parts of the backward."""

    kind = "Recurrent"
    gates = 1
    decayed = ("Wx", "Wh")
    layouts: ClassVar[dict[str, str]] = {"x": "NTD"}  # axis names for the checker's diagnosis

    def __init__(self, input_size: int, hidden_size: int, *, dtype: Any = np.float64,
                 seed: int | np.random.Generator = 0) -> None:
        self.dtype = check_dtype(self.kind, dtype)
        wx, wh = _init_weights(self.kind, input_size, hidden_size, self.gates, seed)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.params = {"Wx": wx.astype(self.dtype), "Wh": wh.astype(self.dtype),
                       "b": self._initial_bias().astype(self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._cache: tuple[Any, ...] | None = None  # set by forward

    def _initial_bias(self) -> np.ndarray:
        return np.zeros(self.gates * self.hidden_size)

    def __repr__(self) -> str:
        return f"{self.kind}({self.input_size}→{self.hidden_size})"

    def _input(self, x: Any) -> np.ndarray:
        # a copy: the backward must not see later in-place changes to the caller's array
        return check_input(repr(self), x, ndim=3, trailing=(self.input_size,),
                           layout="(N, T, D)").astype(self.dtype)

    def _grad_out(self, grad_out: Any, states: np.ndarray) -> np.ndarray:
        return check_grad_out(repr(self), grad_out, states.shape).astype(self.dtype, copy=False)

    def _finish_backward(self, x: np.ndarray, h_prev: np.ndarray, da: np.ndarray) -> np.ndarray:
        """Given ``da: (N, T, gates·H)`` (gradient at the pre-activations) fill ``grads``
        and return ``dx: (N, T, D)``."""
        d, h, k = self.input_size, self.hidden_size, da.shape[-1]
        self.grads["Wx"][...] = x.reshape(-1, d).T @ da.reshape(-1, k)
        self.grads["Wh"][...] = h_prev.reshape(-1, h).T @ da.reshape(-1, k)
        self.grads["b"][...] = da.sum(axis=(0, 1))
        return da @ self.params["Wx"].T


class RNN(_Recurrent):
    """Elman RNN: ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``, ``h_0 = 0``.

    Parameters
    ----------
    input_size, hidden_size : int
        ``D`` and ``H``.
    dtype : float64 (default) or float32; inputs are cast to it.
    seed : int or numpy.random.Generator
        Source of the initial weights.

    Shapes: ``x: (N, T, D)`` -> all hidden states ``(N, T, H)``; params ``Wx: (D, H)``
    (Glorot uniform), ``Wh: (H, H)`` (orthogonal), ``b: (H,)`` (zeros), seeded by ``seed``.

    >>> RNN(3, 5).forward(np.ones((2, 4, 3))).shape
    (2, 4, 5)
    """

    kind = "RNN"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, T, D)`` -> hidden states ``(N, T, H)``."""
        x = self._input(x)
        n, t_len, _ = x.shape
        projected = x @ self.params["Wx"] + self.params["b"]        # (N, T, H)
        wh = self.params["Wh"]
        states = np.empty((n, t_len, self.hidden_size), dtype=self.dtype)
        h = np.zeros((n, self.hidden_size), dtype=self.dtype)
        for t in range(t_len):
            h = np.tanh(projected[:, t] + h @ wh)
            states[:, t] = h
        self._cache = (x, states)
        return states.copy()

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, T, H)`` (dL/dh_t for every t) -> ``dx: (N, T, D)``; fills grads."""
        x, states = require_forward(repr(self), self._cache)
        g = self._grad_out(grad_out, states)
        wh_t = self.params["Wh"].T
        da = np.empty_like(states)
        dh_next = np.zeros_like(states[:, 0])
        for t in reversed(range(states.shape[1])):
            da[:, t] = (g[:, t] + dh_next) * (1.0 - states[:, t] ** 2)
            dh_next = da[:, t] @ wh_t
        return self._finish_backward(x, _previous_states(states), da)


class LSTM(_Recurrent):
    """Long short-term memory, gate order ``(i, f, o, g)`` along the ``4H`` axis:

    ``[a_i, a_f, a_o, a_g] = x_t @ Wx + h_{t-1} @ Wh + b``;
    ``i, f, o = σ(a_i), σ(a_f), σ(a_o)``; ``g = tanh(a_g)``;
    ``c_t = f·c_{t-1} + i·g``; ``h_t = o·tanh(c_t)``; ``h_0 = c_0 = 0``.

    Parameters are those of :class:`RNN`.

    Shapes: ``x: (N, T, D)`` -> all hidden states ``(N, T, H)``; params ``Wx: (D, 4H)``
    (Glorot uniform), ``Wh: (H, 4H)`` (orthogonal per gate), ``b: (4H,)`` — zeros except
    the forget-gate block, which starts at 1 so that memory is kept early in training.

    >>> LSTM(3, 5).forward(np.ones((2, 4, 3))).shape
    (2, 4, 5)
    """

    kind = "LSTM"
    gates = 4

    def _initial_bias(self) -> np.ndarray:
        h = self.hidden_size
        return np.concatenate([np.zeros(h), np.ones(h), np.zeros(2 * h)])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, T, D)`` -> hidden states ``(N, T, H)``."""
        x = self._input(x)
        n, t_len, _ = x.shape
        h_size = self.hidden_size
        projected = x @ self.params["Wx"] + self.params["b"]        # (N, T, 4H)
        wh = self.params["Wh"]
        acts = np.empty((n, t_len, 4 * h_size), dtype=self.dtype)  # i, f, o, g after σ/tanh
        cells = np.empty((n, t_len, h_size), dtype=self.dtype)
        states = np.empty_like(cells)
        h = np.zeros((n, h_size), dtype=self.dtype)
        c = np.zeros_like(h)
        for t in range(t_len):
            a = projected[:, t] + h @ wh
            acts[:, t, :3 * h_size] = _sigmoid(a[:, :3 * h_size])
            acts[:, t, 3 * h_size:] = np.tanh(a[:, 3 * h_size:])
            i, f, o, g = np.split(acts[:, t], 4, axis=-1)
            c = f * c + i * g
            h = o * np.tanh(c)
            cells[:, t], states[:, t] = c, h
        self._cache = (x, acts, cells, states)
        return states.copy()

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, T, H)`` (dL/dh_t for every t) -> ``dx: (N, T, D)``; fills grads."""
        x, acts, cells, states = require_forward(repr(self), self._cache)
        dh_out = self._grad_out(grad_out, states)
        c_prev_all = _previous_states(cells)
        wh_t = self.params["Wh"].T
        da = np.empty_like(acts)
        dh_next = np.zeros_like(states[:, 0])
        dc_next = np.zeros_like(dh_next)
        for t in reversed(range(states.shape[1])):
            i, f, o, g = np.split(acts[:, t], 4, axis=-1)
            tanh_c = np.tanh(cells[:, t])
            dh = dh_out[:, t] + dh_next
            dc = dc_next + dh * o * (1.0 - tanh_c ** 2)
            da[:, t] = np.concatenate([dc * g * i * (1.0 - i),
                                       dc * c_prev_all[:, t] * f * (1.0 - f),
                                       dh * tanh_c * o * (1.0 - o),
                                       dc * i * (1.0 - g ** 2)], axis=-1)
            dc_next = dc * f
            dh_next = da[:, t] @ wh_t
        return self._finish_backward(x, _previous_states(states), da)
