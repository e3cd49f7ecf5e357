"""The loss table, and :class:`Loss`, the object a training loop or checker calls.

Each row is a :class:`LossOp`: ``value(pred, target)`` is the per-sample loss ``ℓ``
(summed over every axis but the batch axis 0), ``grad(pred, target)`` its hand-written
derivative ``∂ℓ/∂pred`` (same shape as ``pred``, vectorized over the batch). A network's
objective is the batch mean ``L = (1/N) Σ_n ℓ(pred_n, target_n)``, so
``Loss.backward()`` returns ``grad / N``. ``reference/exact.py`` holds the SymPy twin of
every row under the same name.

Rows declare what they accept, so strategies and tests need not guess:

- ``pred``: ``"real"`` (any value) or ``"probability"`` (each entry in (0, 1));
- ``target``: ``"real"``, ``"binary"`` (each entry in [0, 1]) or ``"class"`` (integer
  class indices of shape ``pred.shape[:-1]``, or one-hot / probability rows of
  ``pred``'s shape, classes on the last axis);
- ``kinks``: values of the residual ``pred − target`` where ``grad`` is discontinuous
  (an ``abs``/hinge-style row would list ``0.0``). No row here has one: Huber's
  gradient ``clip(p − t, −δ, δ)`` is continuous; only its second derivative jumps at
  ``|p − t| = δ``.

>>> import numpy as np
>>> loss = Loss("mse")
>>> loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
5.0
>>> loss.backward()
array([[2., 4.]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, VECTOR_ACTIVATIONS
from .base import ShapeError, require_forward

__all__ = ["LOSSES", "Loss", "LossOp"]

Array = np.ndarray
_sigmoid = ACTIVATIONS["sigmoid"].f  # stable on both sides
_softmax = VECTOR_ACTIVATIONS["softmax"].f


@dataclass(frozen=True)
class LossOp:
    """One loss: per-sample ``value(pred, target) -> (N,)`` and ``grad(pred, target)``."""

    name: str
    value: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    target: str = "real"
    pred: str = "real"
    kinks: tuple[float, ...] = ()


# ---- helpers ---------------------------------------------------------------------------

def _per_sample(elementwise: Array) -> Array:
    """Sum every axis but the batch axis: (N, ...) -> (N,)."""
    return elementwise.reshape(elementwise.shape[0], -1).sum(axis=1)


def _are_indices(pred: Array, target: Array) -> bool:
    """Integer targets without the class axis are class indices (else one-hot rows)."""
    return np.issubdtype(target.dtype, np.integer) and target.ndim == pred.ndim - 1


def _one_hot(pred: Array, target: Array) -> Array:
    """Integer class indices (shape ``pred.shape[:-1]``) as one-hot rows; others unchanged."""
    target = np.asarray(target)
    if not _are_indices(pred, target):
        return target.astype(pred.dtype, copy=False)
    return (target[..., None] == np.arange(pred.shape[-1])).astype(pred.dtype)


def _clip(p: Array, high: bool = True) -> Array:
    # keep log(p) and 1/p finite: probabilities of exactly 0 or 1 are clipped by one eps
    eps = np.finfo(p.dtype).eps
    return np.clip(p, eps, 1 - eps if high else 1)


def _bce(p: Array, t: Array) -> Array:
    p = _clip(p)
    return _per_sample(-(t * np.log(p) + (1 - t) * np.log1p(-p)))


def _bce_grad(p: Array, t: Array) -> Array:
    p = _clip(p)
    return (p - t) / (p * (1 - p))


def _bce_logits(z: Array, t: Array) -> Array:
    # −t·log σ(z) − (1−t)·log(1−σ(z)) = max(z, 0) − t·z + log1p(e^{−|z|})
    return _per_sample(np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z))))


def _log_softmax_negated(z: Array) -> Array:
    """``logsumexp(z) − z`` along the last axis, accurate also where it is tiny.

    With ``m = max z``: ``(m − z_j) + log1p(Σ_{k ≠ argmax} e^{z_k − m})``. The max term is
    exactly 1 and is left out of the sum, so a confidently right sample keeps its tiny
    loss (``log1p(1e-44)``) instead of ``log(1) = 0``.
    """
    top = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, top, axis=-1)
    others = np.exp(z - m)
    np.put_along_axis(others, top, 0, axis=-1)
    return (m - z) + np.log1p(np.sum(others, axis=-1, keepdims=True))


def _softmax_ce(z: Array, target: Array) -> Array:
    t = _one_hot(z, target)
    # Σ_j t_j·(logsumexp(z) − z_j) = −Σ_j t_j·log softmax(z)_j, soft targets too
    return _per_sample(np.sum(t * _log_softmax_negated(z), axis=-1))


def _softmax_ce_grad(z: Array, target: Array) -> Array:
    t = _one_hot(z, target)
    return np.sum(t, axis=-1, keepdims=True) * _softmax(z) - t


_HUBER_DELTA = 1.0


def _huber(p: Array, t: Array) -> Array:
    r = np.abs(p - t)
    quadratic = np.minimum(r, _HUBER_DELTA)
    # ½·min(r, δ)² + δ·(r − min(r, δ)) equals ½r² inside |r| ≤ δ and δ(r − ½δ) outside
    return _per_sample(0.5 * quadratic**2 + _HUBER_DELTA * (r - quadratic))


LOSSES: dict[str, LossOp] = {row.name: row for row in (
    LossOp("mse", value=lambda p, t: _per_sample((p - t) ** 2), grad=lambda p, t: 2 * (p - t)),
    # the convention of the single-neuron derivation: ½ cancels the 2 of the square
    LossOp("half_sse", value=lambda p, t: _per_sample(0.5 * (t - p) ** 2),
           grad=lambda p, t: p - t),
    LossOp("bce", value=_bce, grad=_bce_grad, target="binary", pred="probability"),
    LossOp("bce_logits", value=_bce_logits, grad=lambda z, t: _sigmoid(z) - t,
           target="binary"),
    LossOp("cce", value=lambda p, t: _per_sample(-_one_hot(p, t) * np.log(_clip(p, False))),
           grad=lambda p, t: -_one_hot(p, t) / _clip(p, False), target="class",
           pred="probability"),
    LossOp("softmax_ce", value=_softmax_ce, grad=_softmax_ce_grad, target="class"),
    LossOp("huber", value=_huber,
           grad=lambda p, t: np.clip(p - t, -_HUBER_DELTA, _HUBER_DELTA)),
)}


class Loss:
    """The batch-mean loss ``L = (1/N) Σ_n ℓ(pred_n, target_n)`` of one :data:`LOSSES` row.

    Parameters
    ----------
    name : str or LossOp
        A key of :data:`LOSSES` (``"mse"``, ``"softmax_ce"``, ...) or a row.

    ``forward(pred, target)``: ``pred: (N, ...)``, ``target`` of the same shape, or for
    ``target="class"`` rows integer indices ``(N, ...)`` without the class axis; returns a
    float and caches what ``backward`` needs. ``backward() -> dpred: (N, ...)``, same shape
    and dtype as ``pred``.

    >>> import numpy as np
    >>> loss = Loss("softmax_ce")
    >>> round(loss.forward(np.zeros((2, 4)), np.array([0, 3])), 6)  # log 4
    1.386294
    >>> loss.backward().shape
    (2, 4)
    """

    def __init__(self, name: str | LossOp) -> None:
        if isinstance(name, LossOp):
            self.op = name
        elif name in LOSSES:
            self.op = LOSSES[name]
        else:
            raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
        self.name = self.op.name
        self._cache: tuple[Array, Array] | None = None

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

    def forward(self, pred: Any, target: Any) -> float:
        """Return the batch-mean loss of ``pred: (N, ...)`` against ``target``."""
        pred, target = self._validate(np.asarray(pred), np.asarray(target))
        self._cache = (pred.copy(), target.copy())  # the caller may reuse its buffers
        return float(np.mean(self.op.value(pred, target)))

    def backward(self) -> Array:
        """Return ``dL/dpred``, the same shape and dtype as the last ``pred``."""
        pred, target = require_forward(f"{self!r}", self._cache)
        return (self.op.grad(pred, target) / pred.shape[0]).astype(pred.dtype, copy=False)

    def _validate(self, pred: Array, target: Array) -> tuple[Array, Array]:
        owner = f"{self!r}.forward"
        if not np.issubdtype(pred.dtype, np.floating):
            raise TypeError(f"{owner}: pred must be a float array, got dtype {pred.dtype}")
        if pred.ndim == 0 or pred.shape[0] == 0:
            raise ShapeError(f"{owner}: pred must have a non-empty batch axis 0, got shape "
                             f"{pred.shape}")
        integer = np.issubdtype(target.dtype, np.integer)
        if self.op.target == "class" and integer and target.shape != pred.shape:
            if pred.ndim < 2 or target.shape != pred.shape[:-1]:
                raise ShapeError(f"{owner}: integer class targets must have shape "
                                 f"pred.shape[:-1] = {pred.shape[:-1]} for pred {pred.shape}, "
                                 f"got {target.shape}")
            bad = np.argwhere((target < 0) | (target >= pred.shape[-1]))
            if bad.size:
                where = tuple(int(i) for i in bad[0])
                raise ValueError(f"{owner}: class index {int(target[where])} at target"
                                 f"{list(where)} is out of range for {pred.shape[-1]} classes "
                                 f"(expected 0..{pred.shape[-1] - 1})")
            return pred, target
        if target.shape != pred.shape:
            hint = " or integer class indices of shape pred.shape[:-1]" \
                if self.op.target == "class" else ""
            raise ShapeError(f"{owner}: target shape {target.shape} does not match pred shape "
                             f"{pred.shape}; pass targets of pred's shape{hint}")
        if not np.issubdtype(target.dtype, np.floating) and not integer \
                and target.dtype != np.bool_:
            raise TypeError(f"{owner}: target must be numeric, got dtype {target.dtype}")
        target = target.astype(pred.dtype, copy=False)
        if self.op.target == "binary" and (np.any(target < 0) or np.any(target > 1)):
            raise ValueError(f"{owner}: {self.name} targets must lie in [0, 1], got values in "
                             f"[{target.min()}, {target.max()}]")
        return pred, target
