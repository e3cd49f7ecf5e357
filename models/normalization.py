"""Batch normalization (per feature / per channel) and layer normalization (per row).

Both share one backward: for ``x̂ = (x - μ) / σ`` with ``μ``, ``σ² + eps`` computed over
``m`` entries, and ``dx̂ = dy · γ``,

    dx = (1/σ) · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂))

(means over the same ``m`` entries): the full formula, going through ``μ`` and ``σ²``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.models.base import (
    ShapeError,
    check_dtype,
    check_grad_out,
    check_input,
    require_forward,
)

__all__ = ["BatchNorm", "LayerNorm"]


def _normalize(
    x: np.ndarray, axes: tuple[int, ...], eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x̂, 1/σ, μ, σ²)`` over ``axes`` (kept as size-1 axes)."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    return centred * inv_std, inv_std, mean, var


def _normalize_backward(dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray,
                        axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx of ``x̂ = (x - μ)/σ`` through ``μ`` and ``σ²`` (means over ``axes``)."""
    return inv_std * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                      - xhat * np.mean(dxhat * xhat, axis=axes, keepdims=True))


def _check_eps(owner: str, eps: float) -> float:
    if not eps > 0:
        raise ValueError(f"{owner}: eps must be > 0 (it keeps 1/sqrt(var + eps) finite), "
                         f"got {eps!r}")
    return float(eps)


class BatchNorm:
    """Batch normalization of ``(N, D)`` features or ``(N, C, H, W)`` channels.

    Training (``training = True``): normalize with the batch mean and (biased) variance —
    over axis 0 for ``(N, D)``, over ``(N, H, W)`` per channel for ``(N, C, H, W)`` — then
    ``y = γ · x̂ + β``; the backward goes through the batch statistics. Each training
    forward also updates ``running_mean`` / ``running_var`` (shape ``(num_features,)``):
    ``running = momentum · running + (1 - momentum) · batch`` (the biased batch variance).
    Eval (``training = False``): normalize with the running statistics, an affine map.

    Note that a gradient check in training mode calls forward many times and so moves the
    running statistics; the gradients themselves do not depend on them.

    Parameters
    ----------
    num_features : int
        ``D`` or ``C``.
    momentum : float in [0, 1)
    eps : float > 0
        Added to the variance.
    dtype : float64 (default) or float32; inputs are cast to it.

    Params: ``gamma: (num_features,)`` (ones), ``beta: (num_features,)`` (zeros).

    >>> bn = BatchNorm(3)
    >>> y = bn.forward(np.random.default_rng(0).normal(5, 2, size=(64, 3)))
    >>> bool(np.allclose(y.mean(axis=0), 0))
    True
    """

    decayed = ()

    def __init__(self, num_features: int, *, momentum: float = 0.9, eps: float = 1e-5,
                 dtype: Any = np.float64) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int | np.integer) \
                or num_features < 1:
            raise ValueError(f"BatchNorm: num_features must be a positive int, got "
                             f"{num_features!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1), got {momentum!r}")
        self.num_features = int(num_features)
        self.momentum = float(momentum)
        self.eps = _check_eps("BatchNorm", eps)
        self.dtype = check_dtype("BatchNorm", dtype)
        self.training = True
        self.params = {"gamma": np.ones(self.num_features, self.dtype),
                       "beta": np.zeros(self.num_features, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self._cache: tuple[Any, ...] | None = None  # set by forward

    def __repr__(self) -> str:
        return f"BatchNorm({self.num_features})"

    def _layout(self, x: Any) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
        """Validate ``x``; return it (in dtype), the reduction axes and the broadcast shape."""
        ndim = np.ndim(x)
        if ndim not in (2, 4):
            raise ShapeError(f"{self!r}: expected a 2-d input (N, D) or a 4-d input "
                             f"(N, C, H, W), got shape {np.shape(x)}")
        layout = "(N, D)" if ndim == 2 else "(N, C, H, W)"
        trailing = (self.num_features,) + (None,) * (ndim - 2)
        x = check_input(repr(self), x, ndim=ndim, trailing=trailing, layout=layout)
        if ndim == 2:
            return x.astype(self.dtype, copy=False), (0,), (1, -1)
        return x.astype(self.dtype, copy=False), (0, 2, 3), (1, -1, 1, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, D)`` or ``(N, C, H, W)`` -> same shape."""
        x, axes, bshape = self._layout(x)
        if self.training:
            if x.size // self.num_features < 2:
                raise ShapeError(f"{self!r}: batch statistics need at least 2 values per "
                                 f"feature, got input shape {x.shape}; use a larger batch, "
                                 f"or set training = False to use the running statistics")
            xhat, inv_std, mean, var = _normalize(x, axes, self.eps)
            m = self.momentum
            self.running_mean[...] = m * self.running_mean + (1 - m) * mean.reshape(-1)
            self.running_var[...] = m * self.running_var + (1 - m) * var.reshape(-1)
        else:
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).reshape(bshape)
            xhat = (x - self.running_mean.reshape(bshape)) * inv_std
        self._cache = (xhat, inv_std, axes, bshape, self.training)
        return self.params["gamma"].reshape(bshape) * xhat + self.params["beta"].reshape(bshape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out`` of the output's shape -> ``dx``; fills ``grads``."""
        xhat, inv_std, axes, bshape, training = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, xhat.shape).astype(self.dtype, copy=False)
        self.grads["gamma"][...] = np.sum(g * xhat, axis=axes)
        self.grads["beta"][...] = g.sum(axis=axes)
        dxhat = g * self.params["gamma"].reshape(bshape)
        if not training:
            return dxhat * inv_std
        return _normalize_backward(dxhat, xhat, inv_std, axes)


class LayerNorm:
    """Layer normalization over the last axis: each row ``x[..., :]`` gets zero mean and
    unit (biased) variance, then ``y = γ · x̂ + β``. No running statistics, no modes.

    Parameters
    ----------
    normalized_size : int
        Size ``D`` of the last axis.
    eps : float > 0
    dtype : float64 (default) or float32; inputs are cast to it.

    Shapes: ``x: (N, ..., D)`` -> same; params ``gamma: (D,)`` (ones), ``beta: (D,)`` (zeros).

    >>> ln = LayerNorm(4)
    >>> y = ln.forward(np.array([[1.0, 2.0, 3.0, 4.0]]))
    >>> bool(np.isclose(y.mean(), 0))
    True
    """

    decayed = ()

    def __init__(self, normalized_size: int, *, eps: float = 1e-5,
                 dtype: Any = np.float64) -> None:
        if isinstance(normalized_size, bool) \
                or not isinstance(normalized_size, int | np.integer) or normalized_size < 1:
            raise ValueError(f"LayerNorm: normalized_size must be a positive int, got "
                             f"{normalized_size!r}")
        self.normalized_size = int(normalized_size)
        self.eps = _check_eps("LayerNorm", eps)
        self.dtype = check_dtype("LayerNorm", dtype)
        self.params = {"gamma": np.ones(self.normalized_size, self.dtype),
                       "beta": np.zeros(self.normalized_size, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._cache: tuple[Any, ...] | None = None  # set by forward

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_size})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, ..., D)`` -> same shape."""
        ndim = max(np.ndim(x), 2)
        x = check_input(repr(self), x, ndim=ndim, trailing=(self.normalized_size,),
                        layout="(N, ..., D)").astype(self.dtype, copy=False)
        xhat, inv_std, _, _ = _normalize(x, (-1,), self.eps)
        self._cache = (xhat, inv_std)
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out`` of the output's shape -> ``dx``; fills ``grads``."""
        xhat, inv_std = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, xhat.shape).astype(self.dtype, copy=False)
        lead = tuple(range(g.ndim - 1))
        self.grads["gamma"][...] = np.sum(g * xhat, axis=lead)
        self.grads["beta"][...] = g.sum(axis=lead)
        return _normalize_backward(g * self.params["gamma"], xhat, inv_std, (-1,))
