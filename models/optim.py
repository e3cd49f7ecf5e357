"""Optimizers that update parameters in place: SGD with momentum, and Adam.

An optimizer takes either a model (anything with ``params`` and ``grads`` dicts, read
afresh at every step) or the two dicts themselves. ``step()`` applies one update from the
current gradients, writing into the parameter arrays, so layers (which read
``self.params[name]`` at every forward) see the new values.

>>> import numpy as np
>>> w, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
>>> SGD({"w": w}, {"w": g}, lr=0.1).step()
>>> w
array([ 0.95, -2.05])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Shared plumbing of the optimizers: where parameters and gradients come from.

    Subclasses define ``step()``; ``steps`` counts the updates applied so far.
    """

    def __init__(self, params: Any, grads: Mapping[str, np.ndarray] | None, lr: float) -> None:
        name = type(self).__name__
        if grads is None:
            if not (hasattr(params, "params") and hasattr(params, "grads")):
                raise TypeError(f"{name}: pass a model with .params and .grads, or the two "
                                f"dicts: {name}(params, grads, lr=...)")
            self._model = params
        else:
            self._model = None
            self._params, self._grads = dict(params), dict(grads)
            if set(self._params) != set(self._grads):
                raise ValueError(f"{name}: params and grads must have the same keys; only in "
                                 f"params: {sorted(set(self._params) - set(self._grads))}, "
                                 f"only in grads: {sorted(set(self._grads) - set(self._params))}")
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"{name}: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0
        self._pairs()  # validate shapes now rather than at the first step

    def _pairs(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        params, grads = ((self._model.params, self._model.grads) if self._model is not None
                         else (self._params, self._grads))
        pairs = []
        for key, p in params.items():
            g = grads[key]
            if p.shape != g.shape:
                raise ValueError(f"{type(self).__name__}: grad {key!r} has shape {g.shape}, "
                                 f"its parameter {p.shape}")
            pairs.append((key, p, g))
        return pairs


class SGD(Optimizer):
    """Gradient descent with (heavy-ball) momentum μ: ``v ← μv + g``, ``θ ← θ − lr·v``.

    ``momentum=0`` is plain gradient descent ``θ ← θ − lr·g``.
    """

    def __init__(self, params: Any, grads: Mapping[str, np.ndarray] | None = None, *,
                 lr: float = 0.1, momentum: float = 0.0) -> None:
        super().__init__(params, grads, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self._velocity: dict[str, np.ndarray] = {}

    def step(self) -> None:
        """Apply one update, in place, from the current gradients."""
        self.steps += 1
        for key, p, g in self._pairs():
            if self.momentum:
                if key not in self._velocity:
                    self._velocity[key] = np.zeros_like(p)
                v = self._velocity[key]
                v *= self.momentum
                v += g
                g = v
            p -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    def __init__(self, params: Any, grads: Mapping[str, np.ndarray] | None = None, *,
                 lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, grads, lr)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be positive, got {eps!r}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)
        self._m: dict[str, np.ndarray] = {}
        self._v: dict[str, np.ndarray] = {}

    def step(self) -> None:
        """Apply one update, in place, from the current gradients."""
        self.steps += 1
        b1, b2 = self.betas
        for key, p, g in self._pairs():
            if key not in self._m:
                self._m[key], self._v[key] = np.zeros_like(p), np.zeros_like(p)
            m, v = self._m[key], self._v[key]
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g * g - v)
            m_hat = m / (1 - b1**self.steps)
            v_hat = v / (1 - b2**self.steps)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)
