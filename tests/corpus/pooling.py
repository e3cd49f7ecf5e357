"""Pooling layers with one deliberate bug each."""

from __future__ import annotations

import numpy as np

from gradcheck.models.pooling import AvgPool2D, MaxPool2D


class FirstElementMaxPool2D(MaxPool2D):
    """Routes each window's gradient to the window's first element, not to its maximum."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input_shape = np.shape(x)
        return super().forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        right = super().backward(grad_out)  # validates grad_out
        g = np.asarray(grad_out, dtype=right.dtype)
        (sh, sw), (oh, ow) = self.stride, g.shape[2:]
        dx = np.zeros(self._input_shape, dtype=right.dtype)
        dx[:, :, :sh * oh:sh, :sw * ow:sw] += g  # BUG: element (0, 0) of each window, not argmax
        return dx


class UnscaledAvgPool2D(AvgPool2D):
    """Spreads the whole window gradient to every element: the 1/(window size) is lost."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        ph, pw = self.pool_size
        return super().backward(grad_out) * (ph * pw)  # BUG: g, not g / window size
