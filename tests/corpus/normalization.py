"""Batch normalization with a deliberate bug in its input gradient."""

from __future__ import annotations

import numpy as np

from gradcheck.models.normalization import BatchNorm


class ConstantStatsBatchNorm(BatchNorm):
    """Training-mode backward that treats the batch mean and variance as constants."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = np.array(x, dtype=self.dtype)
        return super().forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        super().backward(grad_out)  # dgamma and dbeta are right
        x = self._input
        axes, shape = ((0,), (1, -1)) if x.ndim == 2 else ((0, 2, 3), (1, -1, 1, 1))
        inv_std = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + self.eps)
        # BUG: the eval-mode formula; μ and σ² depend on x and their paths are dropped
        return np.asarray(grad_out) * self.params["gamma"].reshape(shape) * inv_std
