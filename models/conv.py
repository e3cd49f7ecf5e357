"""2-d convolution over NCHW batches, vectorized with sliding windows (im2col / col2im).

Forward views every kernel-sized window of the padded input at once
(``sliding_window_view``, no copy), lays them out as one im2col matrix
``(N·OH·OW, C·kh·kw)`` and multiplies it by the kernel matrix ``(out_c, C·kh·kw)``; the
matrix is kept for the backward, where ``dW`` and the window gradients are two more
matrix products. col2im folds the window gradients back onto the input with a loop over
the kernel offsets only (``kh * kw`` iterations, each a strided slice of the whole batch),
never over pixels. The window helpers are shared with :mod:`gradcheck.models.pooling`.
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

__all__ = ["Conv2D", "as_pair", "fold_windows", "output_size", "windows"]


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


def fold_windows(dwin: np.ndarray, shape: tuple[int, ...], stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`windows` (col2im): sum window gradients back onto the input.

    ``dwin: (N, C, OH, OW, kh, kw)`` -> ``(N, C, H, W)`` of ``shape``; overlapping windows
    add up. One iteration per kernel offset.
    """
    _, _, oh, ow, kh, kw = dwin.shape
    sh, sw = stride
    out = np.zeros(shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += dwin[..., i, j]
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
        """``x: (N, in_c, H, W)`` -> ``(N, out_c, OH, OW)``."""
        x = check_input(repr(self), x, ndim=4, trailing=(self.in_channels, None, None),
                        layout="(N, C, H, W)").astype(self.dtype, copy=False)
        output_size(repr(self), x.shape[2:], self.kernel_size, self.stride, self.padding)
        ph, pw = self.padding
        xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = windows(xpad, self.kernel_size, self.stride)          # (N, C, OH, OW, kh, kw)
        n, c, oh, ow, kh, kw = win.shape
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)  # im2col
        y = cols @ self.params["W"].reshape(self.out_channels, -1).T + self.params["b"]
        self._cache = (cols, xpad.shape, win.shape)
        return y.reshape(n, oh, ow, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, out_c, OH, OW)`` -> ``dx: (N, in_c, H, W)``; fills ``grads``."""
        cols, padded_shape, win_shape = require_forward(repr(self), self._cache)
        n, c, oh, ow, kh, kw = win_shape
        g = check_grad_out(repr(self), grad_out, (n, self.out_channels, oh, ow))
        g = g.astype(self.dtype, copy=False).transpose(0, 2, 3, 1).reshape(-1, self.out_channels)
        self.grads["b"][...] = g.sum(axis=0)
        self.grads["W"][...] = (g.T @ cols).reshape(self.params["W"].shape)
        dcols = (g @ self.params["W"].reshape(self.out_channels, -1)).reshape(n, oh, ow, c, kh, kw)
        dxpad = fold_windows(dcols.transpose(0, 3, 1, 2, 4, 5), padded_shape, self.stride)
        ph, pw = self.padding
        return dxpad[:, :, ph:padded_shape[2] - ph, pw:padded_shape[3] - pw]
