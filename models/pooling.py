"""Max and average pooling over NCHW batches (no padding), vectorized like Conv2D.

No Python loop over windows: every loop runs over the ``ph·pw`` pool offsets, each step
one whole-batch operation on the ``(N, C, OH, OW)`` grid of entries that offset reads
(:func:`gradcheck.models.conv.offset_slices`). MaxPool copies those grids once into a
contiguous ``(ph·pw, N, C, OH, OW)`` stack, so the max and the first-maximum masks are
contiguous elementwise passes (a small-axis ``argmax`` over a window view is several
times slower); the backward adds each offset's share back onto a strided slice of ``dx``,
so overlapping windows (stride < pool) accumulate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from gradcheck.models.base import check_grad_out, check_input, require_forward
from gradcheck.models.conv import as_pair, offset_slices, output_size

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

    def _grid(self, x: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, slice, slice]]]:
        """Validate ``x: (N, C, H, W)``; return it with the pool offsets' slices."""
        x = check_input(repr(self), x, ndim=4, layout="(N, C, H, W)")
        out = output_size(repr(self), x.shape[2:], self.pool_size, self.stride)
        return x, offset_slices(self.pool_size, self.stride, out)

    def _fold(self, shares: Callable[[int], np.ndarray], out: tuple[int, ...],
              shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Adjoint of reading the offsets: ``dx`` of ``shape`` with ``shares(k)``, the
        ``out = (N, C, OH, OW)`` gradient of offset ``k``, added onto that offset's slice."""
        dx = np.zeros(shape, dtype)
        disjoint = all(s >= p for s, p in zip(self.stride, self.pool_size, strict=True))
        for k, (_, _, rows, cols) in enumerate(offset_slices(self.pool_size, self.stride,
                                                             (out[2], out[3]))):
            if disjoint:        # each entry is in at most one window: write, do not add
                dx[:, :, rows, cols] = shares(k)
            else:
                dx[:, :, rows, cols] += shares(k)
        return dx


class MaxPool2D(_Pool2D):
    """Maximum over each ``pool_size`` window; ``stride`` defaults to ``pool_size``.

    Ties: when several entries of a window share the maximum, the whole gradient goes to
    the *first* of them in row-major order (``np.argmax``). The max is not differentiable
    there; this choice is a valid subgradient (it is the derivative from the side where
    that entry is the unique maximum), and a finite-difference checker should report the
    point as a kink rather than a mismatch. A window holding NaN outputs NaN and passes no
    gradient (no entry equals its maximum).

    Shapes: ``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``, ``OH = (H - ph) // sh + 1``.

    >>> MaxPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    kind = "MaxPool2D"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, C, H, W)`` -> ``(N, C, OH, OW)``; remembers each window's first maximum."""
        x, offsets = self._grid(x)
        stack = np.stack([x[:, :, rows, cols] for _, _, rows, cols in offsets])
        top = stack.max(axis=0)                       # NaN in a window propagates to its output
        first = np.empty(stack.shape, bool)           # first[k]: offset k holds the first max
        taken = np.zeros(top.shape, bool)
        for k in range(len(stack)):
            np.equal(stack[k], top, out=first[k])
            first[k] &= ~taken
            taken |= first[k]
        self._cache = (first, x.dtype, x.shape)
        return top

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, C, OH, OW)`` -> ``dx: (N, C, H, W)``, nonzero only at first maxima."""
        first, dtype, x_shape = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, first.shape[1:]).astype(dtype, copy=False)
        return self._fold(lambda k: np.where(first[k], g, 0), g.shape, x_shape, dtype)


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
        x, offsets = self._grid(x)
        total = x[:, :, offsets[0][2], offsets[0][3]].copy()
        for _, _, rows, cols in offsets[1:]:
            total += x[:, :, rows, cols]
        total /= len(offsets)
        self._cache = (total.shape, x.dtype, x.shape)
        return total

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, C, OH, OW)`` -> ``dx: (N, C, H, W)``: each window shares equally."""
        out_shape, dtype, x_shape = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, out_shape).astype(dtype, copy=False)
        share = g / (self.pool_size[0] * self.pool_size[1])
        return self._fold(lambda k: share, out_shape, x_shape, dtype)
