"""Code in the shapes people already write (written here for the tests), each with a
correct version and a planted bug, so the adapters are proven on both."""

from __future__ import annotations

import itertools
from math import erf, pi, sqrt

import numpy as np

# ---------------------------------------------------------------- function pairs with a cache


def affine_forward(x, w, b):
    """x: (N, D), w: (D, M), b: (M,) -> out: (N, M)."""
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(0)


def affine_backward_bad_db(dout, cache):  # db forgets to sum over the batch: mean instead
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.mean(0)


def conv1d_forward(x, w, b, conv_param):
    """x: (N, C, L), w: (F, C, K), b: (F,), conv_param {"stride", "pad"} -> (N, F, L')."""
    s, p = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    K = w.shape[2]
    L = (xp.shape[2] - K) // s + 1
    out = np.empty((x.shape[0], w.shape[0], L))
    for i in range(L):
        out[:, :, i] = np.einsum("nck,fck->nf", xp[:, :, i * s:i * s + K], w) + b
    return out, (x, w, conv_param)


def conv1d_backward(dout, cache, *, bug=False):
    x, w, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    K = w.shape[2]
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        window = xp[:, :, i * s:i * s + K]
        dw += np.einsum("nf,nck->fck", dout[:, :, i], window)
        dxp[:, :, i * s:i * s + K] += np.einsum("nf,fck->nck", dout[:, :, i], w)
    if bug:
        dw = dw[:, :, ::-1].copy()  # a flipped kernel gradient
    return dxp[:, :, p:p + x.shape[2]], dw, dout.sum((0, 2))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """x: (N, D), prev_h/prev_c: (N, H), Wx: (D, 4H), Wh: (H, 4H), b: (4H,)."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), \
        np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache, *, bug=False):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    t = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - t ** 2)
    do = dnext_h * t
    di, df, dg = dc * g, dc * prev_c, dc * i
    dprev_c = dc * (o if bug else f)  # bug: the wrong gate
    da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)])
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(0)


def lstm_step_backward_bad(dnext_h, dnext_c, cache):
    return lstm_step_backward(dnext_h, dnext_c, cache, bug=True)


def embedding_forward(ids, W):
    """ids: (N, T) int, W: (V, D) -> (N, T, D)."""
    return W[ids], (ids, W.shape)


def embedding_backward(dout, cache):
    ids, shape = cache
    dW = np.zeros(shape)
    np.add.at(dW, ids, dout)
    return dW


def embedding_backward_drops_repeats(dout, cache):  # dW[ids] += dout keeps one repeat only
    ids, shape = cache
    dW = np.zeros(shape)
    dW[ids] += dout
    return dW


def maxpool1d_forward(x, k=2, s=1):
    """x: (N, L); overlapping windows (stride 1) -> (N, L - k + 1)."""
    windows = np.stack([x[:, i:i + k] for i in range(0, x.shape[1] - k + 1, s)], 1)
    return windows.max(-1), (x, windows.argmax(-1), k, s)


def maxpool1d_backward(dout, cache, *, overwrite=False):
    x, arg, _k, s = cache
    dx = np.zeros_like(x)
    for j in range(dout.shape[1]):
        rows = np.arange(x.shape[0])
        if overwrite:  # windows overlap: must add, not overwrite
            dx[rows, j * s + arg[:, j]] = dout[:, j]
        else:
            dx[rows, j * s + arg[:, j]] += dout[:, j]
    return dx


def maxpool1d_backward_overwrites(dout, cache):
    return maxpool1d_backward(dout, cache, overwrite=True)


_erf = np.vectorize(erf)


def gelu(x):
    return 0.5 * x * (1 + _erf(x / sqrt(2)))


def gelu_grad(g, x):
    return g * (0.5 * (1 + _erf(x / sqrt(2))) + x * np.exp(-x ** 2 / 2) / sqrt(2 * pi))


def gelu_grad_tanh_approx(g, x):  # the derivative of the tanh approximation, not of erf-GELU
    c = sqrt(2 / pi)
    u = c * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * c * (1 + 3 * 0.044715 * x ** 2))


# ---------------------------------------------------------------- attention with a mask
def attention(q, k, v, mask):
    """q: (T, D), k: (S, D), v: (S, E), mask: (T, S) additive (0 or -inf)."""
    s = q @ k.T / np.sqrt(q.shape[1]) + mask
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p @ v


def attention_vjp(g, q, k, v, mask, *, bug=False):
    d = q.shape[1]
    s = q @ k.T / np.sqrt(d) + mask
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dv = p.T @ g
    dp = g @ v.T
    ds = p * (dp - (dp * p).sum(1, keepdims=True))
    dq = ds @ k / np.sqrt(d)
    dk = (ds.T @ q) / (1.0 if bug else np.sqrt(d))
    return dq, dk, dv, None


def attention_vjp_bad(g, q, k, v, mask):
    return attention_vjp(g, q, k, v, mask, bug=True)


# ---------------------------------------------------------------- a course's model
class TwoLayerNet:
    """params {W1, b1, W2, b2}; loss(X, y) -> (loss, grads): softmax CE + L2."""

    def __init__(self, D=4, H=5, C=3, reg=0.1, seed=0, bug=False):
        rng = np.random.default_rng(seed)
        self.params = {"W1": 0.5 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
                       "W2": 0.5 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)}
        self.reg, self.bug = reg, bug

    def loss(self, X, y):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        h = np.maximum(0, X @ W1 + b1)
        s = h @ W2 + b2
        s = s - s.max(1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
        N = X.shape[0]
        loss = -np.log(p[np.arange(N), y]).mean() + self.reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
        ds = p.copy()
        ds[np.arange(N), y] -= 1
        ds /= N
        grads = {"W2": h.T @ ds + 2 * self.reg * W2, "b2": ds.sum(0)}
        dh = ds @ W2.T * (h > 0)
        grads["W1"] = X.T @ dh + (0 if self.bug else 2 * self.reg * W1)  # bug: no L2 on W1
        grads["b1"] = dh.sum(0)
        return loss, grads


# ---------------------------------------------------------------- a textbook network
class Network:
    """biases and weights as lists; backprop(x, y) -> (nabla_b, nabla_w); cost elsewhere."""

    def __init__(self, sizes, seed=0, bug=False):
        rng = np.random.default_rng(seed)
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in itertools.pairwise(sizes)]
        self.bug = bug

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights, strict=False):
            a = sigmoid(w @ a + b)
        return a

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights, strict=False):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T
        for layer in range(2, len(self.weights) + 1):
            sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
            delta = (self.weights[-layer + 1].T @ delta) * (1 if self.bug and layer == 2 else sp)
            nabla_b[-layer] = delta
            nabla_w[-layer] = delta @ activations[-layer - 1].T
        return nabla_b, nabla_w


def quadratic_cost(net, x, y, lmbda=0.0):
    return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2)) + \
        0.5 * lmbda * sum(float(np.sum(w ** 2)) for w in net.weights)


# ---------------------------------------------------------------- another library's layers
class LazyDense:
    """parameters/gradients dicts, parameters created by the first forward, grads += ."""

    def __init__(self, units, seed=0, bug=False):
        self.units, self.seed, self.bug = units, seed, bug
        self.parameters, self.gradients, self.inputs = {}, {}, []

    def forward(self, x):
        if not self.parameters:
            rng = np.random.default_rng(self.seed)
            self.parameters = {"W": rng.standard_normal((x.shape[1], self.units)),
                               "b": np.zeros(self.units), "running": np.zeros(self.units)}
            self.gradients = {"W": np.zeros((x.shape[1], self.units)), "b": np.zeros(self.units)}
        self.inputs.append(x)
        return np.tanh(x @ self.parameters["W"] + self.parameters["b"])

    def backward(self, g):
        x = self.inputs[-1]
        d = g * (1 - np.tanh(x @ self.parameters["W"] + self.parameters["b"]) ** 2)
        self.gradients["W"] += x.T @ d
        self.gradients["b"] += d.sum(0) * (2.0 if self.bug else 1.0)
        return d @ self.parameters["W"].T


class LSTMCell:
    """Tuple in, tuple out: forward(x, h, c) -> (h', c'); backward(dh, dc) -> (dx, dh, dc)."""

    def __init__(self, D, H, seed=0, bug=False):
        rng = np.random.default_rng(seed)
        self.parameters = {"Wx": 0.3 * rng.standard_normal((D, 4 * H)),
                           "Wh": 0.3 * rng.standard_normal((H, 4 * H)), "b": np.zeros(4 * H)}
        self.gradients = {}
        self.bug = bug

    def forward(self, x, h, c):
        P = self.parameters
        h2, c2, self.cache = lstm_step_forward(x, h, c, P["Wx"], P["Wh"], P["b"])
        return h2, c2

    def backward(self, dh, dc):
        dx, dh0, dc0, dWx, dWh, db = lstm_step_backward(dh, dc, self.cache, bug=self.bug)
        self.gradients = {"Wx": dWx, "Wh": dWh, "b": db}
        return dx, dh0, dc0


class Embedding:
    """Integer ids in; parameters/gradients dicts."""

    def __init__(self, V, D, seed=0, bug=False):
        self.parameters = {"W": np.random.default_rng(seed).standard_normal((V, D))}
        self.gradients = {"W": np.zeros((V, D))}
        self.bug = bug

    def forward(self, ids):
        self.ids = ids
        return self.parameters["W"][ids]

    def backward(self, g):
        self.gradients["W"] = np.zeros_like(self.parameters["W"])
        if self.bug:
            self.gradients["W"][self.ids] += g
        else:
            np.add.at(self.gradients["W"], self.ids, g)
        return None
