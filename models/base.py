"""What every layer shares: input validation and the forward-before-backward guard.

Each layer keeps ``params`` and ``grads`` as dicts of arrays with the same keys and
shapes. Parameters are updated *in place* (optimizers, the checker's perturbations), so a
layer reads ``self.params[name]`` at every forward and never rebinds those arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DTYPES = (np.float64, np.float32)


class ShapeError(ValueError):
    """An array given to a layer or loss has the wrong number of dimensions or size."""


def check_dtype(owner: str, dtype: Any) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float64 or float32, else raise ``TypeError``."""
    resolved = np.dtype(dtype)
    if resolved not in DTYPES:
        raise TypeError(f"{owner}: dtype must be float64 or float32, got {resolved}")
    return resolved


def check_input(owner: str, x: Any, *, ndim: int, trailing: tuple[int | None, ...] = (),
                layout: str = "") -> np.ndarray:
    """Validate the input of ``owner.forward`` and return it as a floating array.

    ``trailing`` gives the expected sizes of the last axes (``None`` = any size);
    ``layout`` (for example ``"(N, C, H, W)"``) is quoted in the error.

    >>> check_input("Dense(4→3)", np.zeros((2, 4)), ndim=2, trailing=(4,)).shape
    (2, 4)
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{owner}: input must be a float array, got dtype {arr.dtype}; "
                        f"convert with x.astype(np.float64)")
    where = f" {layout}" if layout else ""
    if arr.ndim != ndim:
        raise ShapeError(f"{owner}: expected a {ndim}-d input{where}, got shape {arr.shape}")
    if trailing:
        actual = arr.shape[-len(trailing):]
        if any(e is not None and e != a for e, a in zip(trailing, actual, strict=True)):
            expected = ", ".join("*" if e is None else str(e) for e in trailing)
            raise ShapeError(f"{owner}: expected input shape{where} ending in ({expected}), "
                             f"got {arr.shape}")
    return arr


def check_grad_out(owner: str, grad_out: Any, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Validate the upstream gradient given to ``owner.backward``."""
    arr = np.asarray(grad_out)
    if arr.shape != tuple(expected_shape):
        raise ShapeError(f"{owner}.backward: grad_out must have the shape of the forward "
                         f"output {tuple(expected_shape)}, got {arr.shape}")
    return arr


def require_forward(owner: str, cache: Any) -> Any:
    """Return ``cache`` or raise if ``forward`` has not run since construction."""
    if cache is None:
        raise RuntimeError(f"{owner}.backward called before forward: call forward(x) first")
    return cache
