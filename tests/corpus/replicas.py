"""Our own replicas of bugs found in real backward passes, one per diagnosis code.

Each row of :data:`REPLICAS` is named by the finding code the diagnosis must give
(``Finding.code``), with the tensor it must name; ``make_bad`` builds the layer or model
with the bug (one line marked ``# BUG``), ``make_good`` the same code with that line
right, ``make_args`` the point to check at. Everything here is written for this corpus:
small NumPy layers, forward and backward side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = ["REPLICAS", "Replica"]

_SALT = 0x5EED


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng((_SALT, seed))


# --------------------------------------------------------------------------------------
# Embedding: rows indexed more than once


class Embedding:
    """``y[n, t] = W[ids[n, t]] + x[n, t]``; ``ids: (N, T)`` held by the layer.

    ``x: (N, T, D)`` (a positional term, so the layer has an input to differentiate),
    ``W: (V, D)``. Repeated ids must add their gradients: ``np.add.at``.
    """

    def __init__(self, ids: np.ndarray, vocab: int, dim: int, *, bug: bool = False) -> None:
        self.ids, self.bug = np.asarray(ids), bug
        self.params = {"W": _rng(1).standard_normal((vocab, dim))}
        self.grads = {"W": np.zeros((vocab, dim))}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.params["W"][self.ids] + x

    def backward(self, g: np.ndarray) -> np.ndarray:
        dW = np.zeros_like(self.params["W"])
        if self.bug:
            dW[self.ids] += g  # BUG: buffered: one update kept per repeated id
        else:
            np.add.at(dW, self.ids, g)
        self.grads["W"][...] = dW
        return g.copy()


_IDS = np.array([[0, 1, 2, 1], [3, 2, 1, 5]])


# --------------------------------------------------------------------------------------
# Max pooling: overlapping windows, and argmax index arithmetic


class MaxPool:
    """Max over ``k×k`` windows at stride ``s`` of ``x: (N, C, H, W)``, written as loops.

    ``bug="overwrite"`` assigns each window's gradient where overlapping windows must
    add; ``bug="index"`` turns the flat argmax into (column, row) instead of (row, column).
    """

    layouts: ClassVar[dict[str, str]] = {"x": "NCHW"}

    def __init__(self, k: int, s: int, *, bug: str = "") -> None:
        self.k, self.s, self.bug = k, s, bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def _out(self, size: int) -> int:
        return (size - self.k) // self.s + 1

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.copy()
        n, c, h, w = x.shape
        y = np.empty((n, c, self._out(h), self._out(w)), dtype=x.dtype)
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                win = x[:, :, i * self.s:i * self.s + self.k, j * self.s:j * self.s + self.k]
                y[:, :, i, j] = win.max(axis=(2, 3))
        return y

    def backward(self, g: np.ndarray) -> np.ndarray:
        k, s, x = self.k, self.s, self.x
        dx = np.zeros_like(x)
        n, c = x.shape[:2]
        for i in range(g.shape[2]):
            for j in range(g.shape[3]):
                rows, cols = slice(i * s, i * s + k), slice(j * s, j * s + k)
                win = x[:, :, rows, cols].reshape(n, c, k * k)
                idx = win.argmax(axis=2)
                r, q = (idx % k, idx // k) if self.bug == "index" else (idx // k, idx % k)
                # BUG (index): r, q swapped above
                local = np.zeros((n, c, k, k), dtype=x.dtype)
                nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
                local[nn, cc, r, q] = g[:, :, i, j]
                if self.bug == "overwrite":
                    dx[:, :, rows, cols] = local  # BUG: = where overlapping windows add
                else:
                    dx[:, :, rows, cols] += local
        return dx


# --------------------------------------------------------------------------------------
# Elementwise activations: a nearby function, a constant rounded to float32


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


class GELU:
    """Exact GELU ``x·Φ(x)``; ``bug=True`` differentiates the tanh approximation instead."""

    def __init__(self, *, bug: bool = False) -> None:
        self.bug = bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.copy()
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.x
        if self.bug:  # BUG: the derivative of 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))
            c = math.sqrt(2.0 / math.pi)
            u = c * (x + 0.044715 * x**3)
            t = np.tanh(u)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)
        else:
            d = 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x**2) / math.sqrt(
                2 * math.pi)
        return g * d


class HardSigmoid:
    """``clip(x/6 + 1/2, 0, 1)`` in float64; ``bug=True`` uses the slope rounded to float32."""

    def __init__(self, *, bug: bool = False) -> None:
        self.bug = bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.copy()
        return np.clip(x / 6.0 + 0.5, 0.0, 1.0)

    def backward(self, g: np.ndarray) -> np.ndarray:
        slope = float(np.float32(1.0 / 6.0)) if self.bug else 1.0 / 6.0  # BUG: float32 1/6
        return g * np.where(np.abs(self.x) < 3.0, slope, 0.0)


class Tanh32:
    """``tanh`` in float64 whose backward rounds ``y`` to float32 (``bug=True``)."""

    def __init__(self, *, bug: bool = False) -> None:
        self.bug = bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        y = self.y.astype(np.float32).astype(np.float64) if self.bug else self.y  # BUG
        return g * (1 - y**2)


class ScalePi:
    """``y = π·x``; ``bug=True`` differentiates with π written as 3.1416."""

    def __init__(self, *, bug: bool = False) -> None:
        self.bug = bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return math.pi * x

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * (3.1416 if self.bug else math.pi)  # BUG: a truncated constant


# --------------------------------------------------------------------------------------
# Linear layers: aliasing, an unread parameter, factors with several readings


class Linear:
    """``y = x·W / scale`` for ``x: (N, D)``, ``W: (D, K)`` (``scale`` = √D for attention).

    ``bug``: ``"alias"`` (grads["W"] is params["W"]), ``"unread"`` (forward reads a copy
    of W made at construction), ``"no-scale"`` (dW forgets the 1/scale).
    """

    def __init__(self, d: int, k: int, *, scale: float = 1.0, bug: str = "") -> None:
        self.scale, self.bug = scale, bug
        self.params = {"W": _rng(2).standard_normal((d, k))}
        if bug == "alias":
            self.grads = {"W": self.params["W"]}  # BUG: the gradient array is the weights
        else:
            self.grads = {"W": np.zeros((d, k))}
        self._frozen = self.params["W"].copy()  # used by the "unread" bug only

    def _w(self) -> np.ndarray:
        return self._frozen if self.bug == "unread" else self.params["W"]  # BUG (unread)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.copy()
        return self.x @ self._w() / self.scale

    def backward(self, g: np.ndarray) -> np.ndarray:
        dW = self.x.T @ g
        self.grads["W"][...] = dW if self.bug == "no-scale" else dW / self.scale  # BUG
        return g @ self._w().T / self.scale


class Bias:
    """``y = tanh(x + b)`` for ``x: (N, K)``; ``bug``: ``db = gz[0]`` (one sample, no batch sum)."""

    def __init__(self, k: int, *, bug: bool = False) -> None:
        self.bug = bug
        self.params = {"b": _rng(3).standard_normal(k)}
        self.grads = {"b": np.zeros(k)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x + self.params["b"])
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        gz = g * (1 - self.y ** 2)
        self.grads["b"][...] = gz[0] if self.bug else gz.sum(axis=0)  # BUG: no batch sum
        return gz


# --------------------------------------------------------------------------------------
# 1-d convolution: padding folded onto the edges, for every layout spelling


class Conv1D:
    """Correlation of ``x: (N, C, L)`` with ``W: (O, C, 3)``, zero padding 1.

    ``layout`` is the declared spelling of ``x`` (``"NCW"``, ``"NCL"``, ``"NCT"``);
    ``bug=True`` folds the padding's gradient back onto the edge entries;
    ``overwrite=True`` assigns each window's gradient into the padded ``dx`` (``=``).
    """

    def __init__(self, layout: str, *, bug: bool = False, overwrite: bool = False) -> None:
        self.layouts = {"x": layout}
        self.bug, self.overwrite = bug, overwrite
        self.params = {"W": _rng(3).standard_normal((3, 2, 3))}
        self.grads = {"W": np.zeros((3, 2, 3))}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
        length = x.shape[2]
        cols = np.stack([self.xp[:, :, i:i + 3] for i in range(length)], axis=2)  # N,C,L,3
        self.cols = cols
        return np.einsum("nclk,ock->nol", cols, self.params["W"])

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.grads["W"][...] = np.einsum("nclk,nol->ock", self.cols, g)
        dcols = np.einsum("nol,ock->nclk", g, self.params["W"])
        dxp = np.zeros_like(self.xp)
        for i in range(g.shape[2]):
            if self.overwrite:
                dxp[:, :, i:i + 3] = dcols[:, :, i]  # BUG (overwrite): = where windows add
            else:
                dxp[:, :, i:i + 3] += dcols[:, :, i]
        if self.bug:
            dxp[:, :, 1] += dxp[:, :, 0]  # BUG: the padding's gradient folded onto the edge
            dxp[:, :, -2] += dxp[:, :, -1]
        return dxp[:, :, 1:-1]


# --------------------------------------------------------------------------------------
# 2-d convolution written as a loop over kernel offsets: overwrite where offsets add


class Conv2D3x3:
    """Correlation of ``x: (N, C, H, W)`` with ``W: (O, C, 3, 3)``, stride 1, zero padding 1.

    Forward and backward loop over the 9 kernel offsets; ``bug=True`` assigns each
    offset's share into the padded ``dx`` where the offsets' shares must add.
    """

    layouts: ClassVar[dict[str, str]] = {"x": "NCHW", "W": "OIHW"}

    def __init__(self, channels: int, out: int, *, bug: bool = False) -> None:
        self.bug = bug
        self.params = {"W": _rng(4).standard_normal((out, channels, 3, 3)) / 3}
        self.grads = {"W": np.zeros((out, channels, 3, 3))}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        h, w = x.shape[2:]
        y = np.zeros((x.shape[0], self.params["W"].shape[0], h, w))
        for kh in range(3):
            for kw in range(3):
                y += np.einsum("nchw,oc->nohw", self.xp[:, :, kh:kh + h, kw:kw + w],
                               self.params["W"][:, :, kh, kw])
        return y

    def backward(self, g: np.ndarray) -> np.ndarray:
        h, w = g.shape[2:]
        dxp = np.zeros_like(self.xp)
        for kh in range(3):
            for kw in range(3):
                window = self.xp[:, :, kh:kh + h, kw:kw + w]
                self.grads["W"][:, :, kh, kw] = np.einsum("nohw,nchw->oc", g, window)
                share = np.einsum("nohw,oc->nchw", g, self.params["W"][:, :, kh, kw])
                if self.bug:
                    dxp[:, :, kh:kh + h, kw:kw + w] = share  # BUG: = where offsets add
                else:
                    dxp[:, :, kh:kh + h, kw:kw + w] += share
        return dxp[:, :, 1:-1, 1:-1]


# --------------------------------------------------------------------------------------
# Functions checked with check_function: ids as an argument; a step with two outputs


def _lookup(ids: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``W[ids]``: the ids are an argument of the check (held constant), not a closure."""
    return W[ids]


def _lookup_pair(bug: bool) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def vjp(g: np.ndarray, ids: np.ndarray, W: np.ndarray) -> tuple[None, np.ndarray]:
        dW = np.zeros_like(W)
        if bug:
            dW[ids] += g  # BUG: buffered: one update kept per repeated id
        else:
            np.add.at(dW, ids, g)
        return None, dW
    return _lookup, vjp


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _lstm_gates(x: np.ndarray, h: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """Input, forget and output gates and the candidate of one LSTM step, and ``[x, h]``."""
    xh = np.concatenate([x, h], axis=1)
    z = xh @ W
    k = h.shape[1]
    i, f, o = (_sigmoid(z[:, j * k:(j + 1) * k]) for j in range(3))
    return i, f, o, np.tanh(z[:, 3 * k:]), xh


def lstm_step(x: np.ndarray, h: np.ndarray, c: np.ndarray, W: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step ``(x (N, D), h (N, K), c (N, K), W (D+K, 4K)) -> (h', c')``."""
    i, f, o, u, _ = _lstm_gates(x, h, W)
    c_next = f * c + i * u
    return o * np.tanh(c_next), c_next


def _lstm_pair(bug: bool) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def vjp(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
            W: np.ndarray) -> tuple[np.ndarray, ...]:
        dh_next, dc_next = g
        i, f, o, u, xh = _lstm_gates(x, h, W)
        t = np.tanh(f * c + i * u)
        dc = dh_next * o * (1 - t**2)
        if not bug:
            dc = dc + dc_next  # BUG when left out: the upstream gradient of c' ignored
        dz = np.concatenate([dc * u * i * (1 - i), dc * c * f * (1 - f),
                             dh_next * t * o * (1 - o), dc * i * (1 - u**2)], axis=1)
        dxh = dz @ W.T
        d = x.shape[1]
        return dxh[:, :d], dxh[:, d:], dc * f, xh.T @ dz
    return lstm_step, vjp


def _lstm_args() -> tuple[np.ndarray, ...]:
    rng = _rng(40)
    return (rng.standard_normal((3, 4)), rng.standard_normal((3, 5)),
            rng.standard_normal((3, 5)), rng.standard_normal((9, 20)) / 3)


# --------------------------------------------------------------------------------------
# Models: weight decay counted twice; an activation whose backward drops its derivative


class Dense:
    """``y = x·W + b``."""

    def __init__(self, d: int, k: int, seed: int) -> None:
        rng = _rng(seed)
        self.params = {"W": rng.standard_normal((d, k)) / np.sqrt(d), "b": rng.normal(0, .1, k)}
        self.grads = {k_: np.zeros_like(v) for k_, v in self.params.items()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.copy()
        return x @ self.params["W"] + self.params["b"]

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.grads["W"][...] = self.x.T @ g
        self.grads["b"][...] = g.sum(axis=0)
        return g @ self.params["W"].T


class Tanh:
    """``tanh``; ``bug=True`` returns the upstream gradient without ``1 − y²``."""

    def __init__(self, *, bug: bool = False) -> None:
        self.bug = bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.copy() if self.bug else g * (1 - self.y**2)  # BUG: tanh′ missing


class Net:
    """Layers in order, flat parameter names ``"<index>.<name>"``, optional L2 ``λ·ΣW²``.

    ``decay_twice=True`` adds the decay's gradient ``2λW`` twice.
    """

    def __init__(self, layers: list[Any], *, l2: float = 0.0, decay_twice: bool = False
                 ) -> None:
        self.layers, self.l2, self.decay_twice = layers, l2, decay_twice
        self.params = {f"{i}.{k}": v for i, layer in enumerate(layers)
                       for k, v in layer.params.items()}
        self.grads = {f"{i}.{k}": v for i, layer in enumerate(layers)
                      for k, v in layer.grads.items()}

    def penalty(self) -> float:
        return self.l2 * sum(float(np.sum(v**2)) for k, v in self.params.items()
                             if k.endswith(".W"))

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, g: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            g = layer.backward(g)
        times = 4 if self.decay_twice else 2  # BUG (decay_twice): 2λW added twice
        for k, v in self.params.items():
            if k.endswith(".W"):
                self.grads[k] += times * self.l2 * v
        return g


class MSE:
    """``mean over the batch of Σ (pred − target)²``."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self.d = pred - target
        return float(np.sum(self.d**2) / pred.shape[0])

    def backward(self) -> np.ndarray:
        return 2 * self.d / self.d.shape[0]


def _decay_net(bug: bool) -> Net:
    return Net([Dense(4, 5, 1), Tanh(), Dense(5, 2, 2)], l2=0.07, decay_twice=bug)


def _chain_net(bug: bool) -> Net:
    return Net([Dense(4, 5, 1), Tanh(bug=bug), Dense(5, 2, 2)])


# --------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Replica:
    """One replica: the code the diagnosis must give, for which tensor, in which modes.

    ``kind`` is ``"layer"`` (``make_args()`` gives ``(x,)``), ``"model"``
    (``(x, y)``, checked with :class:`MSE`) or ``"function"`` (``make_bad()`` gives
    ``(f, vjp)``, checked with ``check_function(f, *make_args(), vjp=vjp,
    names=names)``). ``phrase`` is a part of the finding's text
    that must also appear (a factor's readings); ``fast`` says whether fast mode is
    expected to localize the bug far enough to name it.
    """

    name: str
    code: str
    kind: str
    make_bad: Callable[[], Any]
    make_good: Callable[[], Any]
    make_args: Callable[[], tuple[np.ndarray, ...]]
    tensor: str = ""
    phrase: tuple[str, ...] = ()
    fast: bool = True
    names: tuple[str, ...] = ()


def _normal(*shape: int, seed: int, scale: float = 1.0) -> Callable[[], tuple[np.ndarray]]:
    return lambda: (scale * _rng(seed).standard_normal(shape),)


def _model_data() -> tuple[np.ndarray, np.ndarray]:
    return _rng(30).standard_normal((6, 4)), _rng(31).standard_normal((6, 2))


REPLICAS: tuple[Replica, ...] = (
    Replica("embedding: += on repeated ids", "repeated-rows", "layer",
            lambda: Embedding(_IDS, 7, 3, bug=True), lambda: Embedding(_IDS, 7, 3),
            _normal(2, 4, 3, seed=10), "W"),
    Replica("max-pool 3×3/2: overwrite where windows overlap", "overlap-overwrite", "layer",
            lambda: MaxPool(3, 2, bug="overwrite"), lambda: MaxPool(3, 2),
            _normal(2, 2, 9, 9, seed=11), "x", fast=False),
    Replica("max-pool 2×2: argmax row and column swapped", "wrong-positions", "layer",
            lambda: MaxPool(2, 2, bug="index"), lambda: MaxPool(2, 2),
            _normal(2, 2, 4, 4, seed=12), "x", ("within a window",)),
    Replica("model: weight decay counted twice", "param-proportional", "model",
            lambda: _decay_net(True), lambda: _decay_net(False), _model_data, "0.W",
            ("0.14·0.W",)),
    Replica("GELU: derivative of the tanh approximation", "nearby-function", "layer",
            lambda: GELU(bug=True), GELU, _normal(8, 6, seed=13), "x"),
    Replica("hardsigmoid float64: slope rounded to float32", "float32-rounding", "layer",
            lambda: HardSigmoid(bug=True), HardSigmoid, _normal(6, 5, seed=14), "x",
            fast=False),
    Replica("scale: π written as 3.1416 in backward", "near-one-factor", "layer",
            lambda: ScalePi(bug=True), ScalePi, _normal(5, 4, seed=21), "x", ("1.000002 × numeric",)),
    Replica("tanh float64: y rounded to float32 in backward", "float32-rounding", "layer",
            lambda: Tanh32(bug=True), Tanh32, _normal(6, 5, seed=20), "x", fast=False),
    Replica("linear: grads['W'] is params['W']", "aliased-grads", "layer",
            lambda: Linear(4, 3, bug="alias"), lambda: Linear(4, 3), _normal(5, 4, seed=15)),
    Replica("linear: forward reads a copy of W", "unread-param", "layer",
            lambda: Linear(4, 3, bug="unread"), lambda: Linear(4, 3), _normal(5, 4, seed=16),
            "W"),
    Replica("attention-style scale: batch 4 and √16 both equal 4", "constant-factor", "layer",
            lambda: Linear(16, 3, scale=4.0, bug="no-scale"), lambda: Linear(16, 3, scale=4.0),
            _normal(4, 16, seed=17), "W", ("the batch size", "√16")),
    Replica("scale 1/√8 missing in dW", "constant-factor", "layer",
            lambda: Linear(8, 3, scale=math.sqrt(8), bug="no-scale"),
            lambda: Linear(8, 3, scale=math.sqrt(8)), _normal(5, 8, seed=18), "W", ("√8",)),
    Replica("model: tanh′ missing between two Dense layers", "one-layer", "model",
            lambda: _chain_net(True), lambda: _chain_net(False), _model_data, "",
            ("(1: Tanh, 2: Dense)", "layer 0 (Dense)")),
    Replica("model: which tensors are wrong and right", "wrong-and-right", "model",
            lambda: _chain_net(True), lambda: _chain_net(False), _model_data, "",
            ("0.W (Dense)", "2.W (Dense)")),
    Replica("embedding via check_function: ids an argument, += on repeated ids",
            "repeated-rows", "function", lambda: _lookup_pair(True),
            lambda: _lookup_pair(False),
            lambda: (_IDS, _rng(41).standard_normal((7, 3))), "W", names=("ids", "W")),
    Replica("max-pool 3×3/1: overwrite where windows overlap everywhere", "window-overwrite",
            "layer", lambda: MaxPool(3, 1, bug="overwrite"), lambda: MaxPool(3, 1),
            _normal(2, 2, 6, 6, seed=42), "x"),
    Replica("conv2d 3×3/1: dxp[...] = over kernel offsets", "window-overwrite", "layer",
            lambda: Conv2D3x3(2, 3, bug=True), lambda: Conv2D3x3(2, 3),
            _normal(2, 2, 5, 5, seed=43), "x"),
    Replica("conv1d: dxp[...] = over windows", "window-overwrite", "layer",
            lambda: Conv1D("NCW", overwrite=True), lambda: Conv1D("NCW"),
            _normal(2, 2, 7, seed=44), "x"),
    Replica("bias: db = dout[0], the batch sum forgotten", "one-sample", "layer",
            lambda: Bias(4, bug=True), lambda: Bias(4), _normal(5, 4, seed=45), "b",
            ("the first of 5",)),
    Replica("LSTM step: the upstream gradient of c' ignored", "missing-output-gradient",
            "function", lambda: _lstm_pair(True), lambda: _lstm_pair(False), _lstm_args,
            "", ("out[1]",), names=("x", "h", "c", "W")),
    *(Replica(f"conv1d {layout}: padding folded onto the edges", "borders", "layer",
              lambda layout=layout: Conv1D(layout, bug=True),
              lambda layout=layout: Conv1D(layout), _normal(2, 2, 9, seed=19), "x",
              (f"the {layout[-1]} axis",))
      for layout in ("NCW", "NCL", "NCT")),
)
