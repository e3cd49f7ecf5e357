"""Small hand-written layers and functions for the checker-core tests (correct and buggy).

Defined here, not imported from ``gradcheck.models``: the checker core is tested on its
own. Each layer follows the protocol (``params``, ``grads``, ``forward``, ``backward``).
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = {  # name: (f, f') — smooth, so any point is fair game
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 0.5 * (1 + np.tanh(z / 2)),
                lambda z: 0.25 * (1 - np.tanh(z / 2) ** 2)),
    "sin": (np.sin, np.cos),
    "softplus": (lambda z: np.logaddexp(0, z), lambda z: 0.5 * (1 + np.tanh(z / 2))),
    "cube": (lambda z: z ** 3 / 3, lambda z: z ** 2),
}


class Affine:
    """``y = act(x W + b)``; ``x: (N, I)``, ``W: (I, O)``, ``b: (O,)``.

    ``compute_dtype`` casts everything to that dtype inside (a layer computing in float32);
    ``bug`` plants a wrong gradient: ``("W", index, factor)`` scales one entry of dW.
    """

    def __init__(self, n_in: int, n_out: int, *, act: str = "tanh", dtype=np.float64,
                 seed: int = 0, compute_dtype=None, bug=None) -> None:
        rng = np.random.default_rng(seed)
        self.params = {"W": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype),
                       "b": (0.1 * rng.standard_normal(n_out)).astype(dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.f, self.df = ACTIVATIONS[act]
        self.compute_dtype = compute_dtype
        self.bug = bug

    def _cast(self, a):
        return a if self.compute_dtype is None else a.astype(self.compute_dtype)

    def forward(self, x):
        self.x = self._cast(x)
        self.z = self.x @ self._cast(self.params["W"]) + self._cast(self.params["b"])
        return self.f(self.z)

    def backward(self, g):
        gz = self._cast(g) * self.df(self.z)
        self.grads["W"][...] = self.x.T @ gz
        self.grads["b"][...] = gz.sum(axis=0)
        if self.bug is not None:
            name, index, factor = self.bug
            self.grads[name][index] *= factor
        return gz @ self._cast(self.params["W"]).T


class Relu:
    """``max(x, 0)`` with a chosen derivative at 0 (``at_zero``)."""

    def __init__(self, at_zero: float = 0.0) -> None:
        self.params, self.grads = {}, {}
        self.at_zero = at_zero

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, g):
        d = np.where(self.x > 0, 1.0, np.where(self.x < 0, 0.0, self.at_zero))
        return g * d


class MaxPool1D:
    """Max over pairs along the last axis: ``x: (N, 2K) -> (N, K)``; gradient to the first max
    (``route="first"``), split between ties (``"split"``), or to every tie (``"all"``: wrong)."""

    def __init__(self, route: str = "first") -> None:
        self.params, self.grads = {}, {}
        self.route = route

    def forward(self, x):
        self.x = x
        return x.reshape(x.shape[0], -1, 2).max(axis=2)

    def backward(self, g):
        pairs = self.x.reshape(self.x.shape[0], -1, 2)
        is_max = pairs == pairs.max(axis=2, keepdims=True)
        if self.route == "first":
            is_max[..., 1] &= ~is_max[..., 0]
            weight = is_max.astype(float)
        elif self.route == "split":
            weight = is_max / is_max.sum(axis=2, keepdims=True)
        else:
            weight = is_max.astype(float)
        return (weight * g[..., None]).reshape(self.x.shape)


class Dropout:
    """Unseeded dropout: a fresh mask every forward (nondeterministic on purpose)."""

    def __init__(self) -> None:
        self.params, self.grads = {}, {}

    def forward(self, x):
        self.mask = np.random.default_rng().random(x.shape) > 0.5
        return x * self.mask

    def backward(self, g):
        return g * self.mask


class StaleScale:
    """``y = w·x²``, but backward uses the input of the *first* forward ever (stale cache)."""

    def __init__(self) -> None:
        self.params = {"w": np.array([1.5])}
        self.grads = {"w": np.zeros(1)}
        self.first = None

    def forward(self, x):
        if self.first is None:
            self.first = x.copy()
        return self.params["w"] * x ** 2

    def backward(self, g):
        x = self.first
        self.grads["w"][...] = np.sum(g * x ** 2)
        return g * 2 * self.params["w"] * x


class Raising(Affine):
    """An :class:`Affine` whose forward raises ``error`` on its ``n``-th call."""

    def __init__(self, n: int, error: BaseException, **kwargs) -> None:
        super().__init__(3, 2, **kwargs)
        self.calls, self.n, self.error = 0, n, error

    def forward(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise self.error
        return super().forward(x)
