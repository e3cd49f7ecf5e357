"""Shape-only layers: ``Flatten`` joins every axis after the batch axis."""

from __future__ import annotations

import numpy as np

from gradcheck.models.base import ShapeError, check_grad_out, require_forward

__all__ = ["Flatten"]


class Flatten:
    """``x: (N, d1, d2, ...)`` -> ``(N, d1·d2·…)``, e.g. between Conv2D/pooling and Dense.

    Parameter-free; the output and ``dx`` have the input's dtype. The backward reshapes
    back.

    >>> Flatten().forward(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._input: tuple[tuple[int, ...], np.dtype] | None = None   # (shape, dtype)

    def __repr__(self) -> str:
        return "Flatten()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, ...)`` -> ``(N, prod(...))`` (a view when numpy can make one)."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"Flatten: input must be a float array, got dtype {x.dtype}; "
                            f"convert with x.astype(np.float64)")
        if x.ndim < 2:
            raise ShapeError(f"Flatten: expected an input of at least 2 dimensions (N, ...), "
                             f"got shape {x.shape}; add a batch axis with x[None]")
        self._input = (x.shape, x.dtype)
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out: (N, prod(...))`` -> ``dx`` of the input's shape."""
        shape, dtype = require_forward("Flatten", self._input)
        g = check_grad_out("Flatten", grad_out, (shape[0], int(np.prod(shape[1:], dtype=np.int64))))
        return g.astype(dtype, copy=False).reshape(shape)
