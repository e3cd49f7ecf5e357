"""2-d convolution over NCHW batches: one matrix product per pass over an im2col matrix.

Forward copies every kernel offset of the padded input into one im2col matrix laid out
*offset-major*, ``(C·kh·kw, N·OH·OW)`` (each row a contiguous run of whole output
planes, so the copy, the products and the fold all work on long contiguous runs), and
multiplies the kernel matrix ``(out_c, C·kh·kw)`` by it. The matrix is kept for the
backward, where ``dW`` and the column gradients are two more matrix products; col2im
folds the column gradients back onto the input with a loop over the kernel offsets only
(``kh * kw`` adds, each a strided slice of the whole batch), never over pixels. The window
helpers (:func:`windows`, :func:`fold_windows`, :func:`offset_slices`) are shared with
:mod:`gradcheck.models.pooling`; ``benchmarks/bench_training.py`` measures the pace
against PyTorch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradcheck.models.base import (
    ShapeError,
    check_dtype,
    check_grad_out,
    check_input,
    require_forward,
)
from gradcheck.models.init import initialize

__all__ = ["Conv2D", "as_pair", "fold_windows", "offset_slices", "output_size", "windows"]

# OpenBLAS is slow on a product with a tiny result and a very long inner dimension (dW is
# (out_c, C·kh·kw) summed over N·OH·OW); summing products over column blocks of this many
# columns measured up to 2-3x faster on the digits conv net and no slower on larger layers.
DW_COLUMN_BLOCK = 8192


def as_pair(owner: str, name: str, value: Any, *, minimum: int) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as ``(rows, cols)``, each ``>= minimum``.

    >>> as_pair("Conv2D", "stride", 2, minimum=1)
    (2, 2)
    """
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def output_size(owner: str, size: tuple[int, int], kernel: tuple[int, int],
                stride: tuple[int, int], padding: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """Spatial output size ``(H + 2p - k) // s + 1`` per axis; raise if it is not positive.

    >>> output_size("Conv2D", (5, 5), (3, 3), (2, 2), (1, 1))
    (3, 3)
    """
    out = []
    for axis, n, k, s, p in zip("HW", size, kernel, stride, padding, strict=True):
        if n + 2 * p < k:
            raise ShapeError(f"{owner}: input {axis}={n} with padding {p} is smaller than the "
                             f"kernel ({k}); the output would be empty: use a larger input, "
                             f"more padding or a smaller kernel")
        out.append((n + 2 * p - k) // s + 1)
    return out[0], out[1]


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Read-only view of every window: ``x: (N, C, H, W)`` -> ``(N, C, OH, OW, kh, kw)``.

    >>> windows(np.zeros((1, 2, 5, 5)), (3, 3), (2, 2)).shape
    (1, 2, 2, 2, 3, 3)
    """
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def offset_slices(kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]
                  ) -> list[tuple[int, int, slice, slice]]:
    """``(i, j, rows, cols)`` per kernel offset, row-major: ``x[..., rows, cols]`` is the
    ``(OH, OW)`` grid of input entries that offset ``(i, j)`` of every window reads.

    >>> offset_slices((1, 2), (2, 2), (3, 3))[1]
    (0, 1, slice(0, 5, 2), slice(1, 6, 2))
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    return [(i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def fold_windows(dwin: np.ndarray, shape: tuple[int, ...], stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`windows` (col2im): sum window gradients back onto the input.

    ``dwin: (N, C, OH, OW, kh, kw)`` -> ``(N, C, H, W)`` of ``shape``; overlapping windows
    add up. One iteration per kernel offset.
    """
    _, _, oh, ow, kh, kw = dwin.shape
    out = np.zeros(shape, dtype=dwin.dtype)
    for i, j, rows, cols in offset_slices((kh, kw), stride, (oh, ow)):
        out[:, :, rows, cols] += dwin[..., i, j]
    return out


class Conv2D:
    """2-d cross-correlation (what deep-learning libraries call convolution), NCHW.

    ``y[n, o, r, c] = b[o] + Σ_{c', i, j} W[o, c', i, j] · xpad[n, c', r·sh + i, c·sw + j]``

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride : int or (int, int)
    padding : int or (int, int)
        Zeros added on both sides of H and W.
    init : {"he", "xavier", "glorot"}
        Initializer of ``W`` (default He normal, ``std = sqrt(2 / (in_c·kh·kw))``, for
        ReLU-family activations); ``b`` starts at zero.
    dtype : float64 (default) or float32; inputs are cast to it and outputs have it.
    seed : int or numpy.random.Generator
        Source of the initial weights.

    Shapes: ``x: (N, in_c, H, W)`` -> ``y: (N, out_c, OH, OW)`` with
    ``OH = (H + 2·ph - kh) // sh + 1``; params ``W: (out_c, in_c, kh, kw)``, ``b: (out_c,)``.

    >>> conv = Conv2D(3, 8, 3, padding=1)
    >>> conv.forward(np.ones((2, 3, 5, 5))).shape
    (2, 8, 5, 5)
    """

    decayed = ("W",)
    layouts: ClassVar[dict[str, str]] = {"x": "NCHW"}  # axis names for the checker's diagnosis

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 *, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 init: str = "he", dtype: Any = np.float64,
                 seed: int | np.random.Generator = 0) -> None:
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Conv2D: {arg} must be a positive int, got {value!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = as_pair("Conv2D", "kernel_size", kernel_size, minimum=1)
        self.stride = as_pair("Conv2D", "stride", stride, minimum=1)
        self.padding = as_pair("Conv2D", "padding", padding, minimum=0)
        self.dtype = check_dtype("Conv2D", dtype)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        w = initialize(init, rng, (self.out_channels, self.in_channels, *self.kernel_size),
                       self.dtype)
        self.params = {"W": w, "b": np.zeros(self.out_channels, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._cache: tuple[np.ndarray, tuple[int, ...], tuple[int, ...]] | None = None

    def __repr__(self) -> str:
        kh, kw = self.kernel_size
        return (f"Conv2D({self.in_channels}→{self.out_channels}, kernel={kh}x{kw}, "
                f"stride={self.stride}, padding={self.padding})")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, in_c, H, W)`` -> ``(N, out_c, OH, OW)`` (C-contiguous, the layer's dtype)."""
        x = check_input(repr(self), x, ndim=4, trailing=(self.in_channels, None, None),
                        layout="(N, C, H, W)").astype(self.dtype, copy=False)
        oh, ow = output_size(repr(self), x.shape[2:], self.kernel_size, self.stride,
                             self.padding)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        xpad = _pad(x, self.padding)
        cols = np.empty((c, kh, kw, n, oh, ow), self.dtype)        # offset-major im2col
        for i, j, rows, columns in offset_slices(self.kernel_size, self.stride, (oh, ow)):
            cols[:, i, j] = xpad[:, :, rows, columns].transpose(1, 0, 2, 3)
        cols2 = cols.reshape(c * kh * kw, n * oh * ow)
        y = self.params["W"].reshape(self.out_channels, -1) @ cols2      # (out_c, N·OH·OW)
        y += self.params["b"][:, None]
        self._cache = (cols2, (n, c, h, w), (oh, ow))
        return np.ascontiguousarray(y.reshape(-1, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, out_c, OH, OW)`` -> ``dx: (N, in_c, H, W)``; fills ``grads``."""
        cols, (n, c, h, w), (oh, ow) = require_forward(repr(self), self._cache)
        g = check_grad_out(repr(self), grad_out, (n, self.out_channels, oh, ow))
        g2 = np.ascontiguousarray(g.astype(self.dtype, copy=False).transpose(1, 0, 2, 3)
                                  ).reshape(self.out_channels, -1)     # (out_c, N·OH·OW)
        self.grads["b"][...] = g2.sum(axis=1)
        dw = np.zeros((self.out_channels, cols.shape[0]), self.dtype)
        for start in range(0, g2.shape[1], DW_COLUMN_BLOCK):
            block = slice(start, start + DW_COLUMN_BLOCK)
            dw += g2[:, block] @ cols[:, block].T
        self.grads["W"][...] = dw.reshape(self.params["W"].shape)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        dcols = (self.params["W"].reshape(self.out_channels, -1).T @ g2
                 ).reshape(c, kh, kw, n, oh, ow)
        dxpad = np.zeros((c, n, h + 2 * ph, w + 2 * pw), self.dtype)  # col2im, (C, N) order
        for i, j, rows, columns in offset_slices(self.kernel_size, self.stride, (oh, ow)):
            dxpad[:, :, rows, columns] += dcols[:, i, j]
        return np.ascontiguousarray(dxpad[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """``x: (N, C, H, W)`` with ``padding`` zeros on both sides of H and W (``x`` if none)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out
