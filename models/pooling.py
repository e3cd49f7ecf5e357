"""Max and average pooling over NCHW batches (no padding), vectorized like Conv2D.

Windows are a strided view of the input (:func:`gradcheck.models.conv.windows`); the
backward folds per-window gradients back with one loop over the pool offsets.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gradcheck.models.base import check_grad_out, check_input, require_forward
from gradcheck.models.conv import as_pair, fold_windows, output_size, windows

__all__ = ["AvgPool2D", "MaxPool2D"]


class _Pool2D:
    """Shared set-up and validation; subclasses define ``forward`` and ``backward``."""

    kind = "Pool2D"
    layouts: ClassVar[dict[str, str]] = {"x": "NCHW"}  # axis names for the checker's diagnosis

    def __init__(self, pool_size: int | tuple[int, int], *,
                 stride: int | tuple[int, int] | None = None) -> None:
        self.pool_size = as_pair(self.kind, "pool_size", pool_size, minimum=1)
        self.stride = self.pool_size if stride is None else as_pair(
            self.kind, "stride", stride, minimum=1)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache: tuple[Any, ...] | None = None  # set by forward

    def __repr__(self) -> str:
        return f"{self.kind}(pool_size={self.pool_size}, stride={self.stride})"

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """Validate ``x: (N, C, H, W)`` and view it as ``(N, C, OH, OW, ph*pw)`` windows."""
        x = check_input(repr(self), x, ndim=4, layout="(N, C, H, W)")
        output_size(repr(self), x.shape[2:], self.pool_size, self.stride)
        win = windows(x, self.pool_size, self.stride)
        return win.reshape(*win.shape[:4], -1)

    def _fold(self, dwin: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``dwin: (N, C, OH, OW, ph*pw)`` -> ``dx`` of ``shape``."""
        return fold_windows(dwin.reshape(*dwin.shape[:4], *self.pool_size), shape, self.stride)


class MaxPool2D(_Pool2D):
    """Maximum over each ``pool_size`` window; ``stride`` defaults to ``pool_size``.

    Ties: when several entries of a window share the maximum, the whole gradient goes to
    the *first* of them in row-major order (``np.argmax``). The max is not differentiable
    there; this choice is a valid subgradient (it is the derivative from the side where
    that entry is the unique maximum), and a finite-difference checker should report the
    point as a kink rather than a mismatch.

    Shapes: ``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``, ``OH = (H - ph) // sh + 1``.

    >>> MaxPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    kind = "MaxPool2D"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``; remembers each window's first argmax."""
        win = self._windows(x)
        first_max = win.argmax(axis=-1)[..., None]                 # (N, C, OH, OW, 1)
        self._cache = (first_max, win.shape, win.dtype, np.shape(x))
        return np.take_along_axis(win, first_max, axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, C, OH, OW)`` -> ``dx: (N, C, H, W)``, nonzero only at argmaxes."""
        first_max, win_shape, dtype, x_shape = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, win_shape[:4]).astype(dtype, copy=False)
        dwin = np.zeros(win_shape, dtype=dtype)
        np.put_along_axis(dwin, first_max, g[..., None], axis=-1)
        return self._fold(dwin, x_shape)


class AvgPool2D(_Pool2D):
    """Mean over each ``pool_size`` window; ``stride`` defaults to ``pool_size``.

    Shapes: ``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``, ``OH = (H - ph) // sh + 1``.

    >>> AvgPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    kind = "AvgPool2D"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``."""
        win = self._windows(x)
        self._cache = (win.shape, win.dtype, np.shape(x))
        return win.mean(axis=-1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, C, OH, OW)`` -> ``dx: (N, C, H, W)``: each window shares equally."""
        win_shape, dtype, x_shape = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, win_shape[:4]).astype(dtype, copy=False)
        dwin = np.broadcast_to((g / win_shape[-1])[..., None], win_shape)
        return self._fold(dwin, x_shape)
