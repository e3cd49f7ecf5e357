"""Gradient assertions for the models' tests.

``assert_layer_gradients`` is the one place the models' tests ask "are this layer's
gradients right?"; it delegates to the real checker (``gradcheck.assert_layer``).
"""

from __future__ import annotations

import numpy as np


def _central(f, arr: np.ndarray, eps: float) -> np.ndarray:
    out = np.zeros_like(arr, dtype=np.float64)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + eps
        up = f()
        arr[i] = old - eps
        down = f()
        arr[i] = old
        out[i] = (up - down) / (2 * eps)
    return out


def assert_layer_gradients(layer, x: np.ndarray, *, seed: int = 0, rtol: float = 1e-5,
                           atol: float = 1e-7) -> None:
    """Assert the input and parameter gradients of ``layer`` at ``x`` (float64 only).

    Temporary private helper until the checker core lands; then it calls
    ``gradcheck.assert_layer``.
    """
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    y = layer.forward(x)
    g = rng.standard_normal(np.shape(y))
    dx = layer.backward(g)
    analytic = {"x": np.array(dx), **{k: np.array(v) for k, v in layer.grads.items()}}

    def objective() -> float:
        return float(np.sum(layer.forward(x) * g))

    numeric = {"x": _central(objective, x, 1e-6)}
    for name, p in layer.params.items():
        numeric[name] = _central(objective, p, 1e-6)
    for name, a in analytic.items():
        np.testing.assert_allclose(a, numeric[name], rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name!r} is wrong")
