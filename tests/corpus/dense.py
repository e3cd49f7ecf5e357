"""Dense layers with one deliberate bug each, built on the correct backward.

Each subclass runs :class:`Dense`'s own backward (so ``grads`` is filled through the
public protocol only) and then replaces one result by what the classic slip computes.
"""

from __future__ import annotations

import numpy as np

from gradcheck.models.dense import Dense


class TransposedWeightGradDense(Dense):
    """``dW`` computed as ``gᵀ·x`` (out × in) instead of ``xᵀ·g``; square layers only."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["W"][...] = self.grads["W"].T.copy()  # BUG: gᵀx, the product reversed
        return dx


class WrongWayInputGradDense(Dense):
    """``dx = g·W`` instead of ``g·Wᵀ``; runs without a shape error for square ``W``."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        super().backward(grad_out)
        return np.asarray(grad_out) @ self.params["W"]  # BUG: W where Wᵀ belongs


class ForgottenBiasDense(Dense):
    """``db`` never written, so it stays at zeros."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["b"][...] = 0.0  # BUG: the bias gradient g.sum(axis=0) is never stored
        return dx


class MeanBiasDense(Dense):
    """``db`` as the batch *mean* of ``g``: an extra 1/N where the loss already has one."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["b"][...] = np.mean(grad_out, axis=0)  # BUG: mean over the batch, not sum
        return dx
