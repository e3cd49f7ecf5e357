"""Seeded weight initializers: Glorot/Xavier (uniform) and He (normal).

Fans follow the usual conventions: a dense weight ``(in, out)`` has fan-in ``in`` and
fan-out ``out``; a convolution kernel ``(out_c, in_c, kh, kw)`` has fan-in
``in_c·kh·kw`` and fan-out ``out_c·kh·kw``.

>>> import numpy as np
>>> w = xavier_uniform(np.random.default_rng(0), (64, 16))
>>> w.shape, w.dtype, bool(np.abs(w).max() <= np.sqrt(6 / 80))
((64, 16), dtype('float64'), True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import check_dtype

__all__ = ["INITIALIZERS", "fans", "he_normal", "initialize", "xavier_uniform"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a dense ``(in, out)`` or conv ``(out_c, in_c, kh, kw)``
    weight shape.

    >>> fans((64, 16)), fans((8, 3, 5, 5))
    ((64, 16), (75, 200))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) >= 3:
        receptive = int(np.prod(shape[2:]))
        return shape[1] * receptive, shape[0] * receptive
    raise ValueError(f"fans: expected a dense (in, out) or conv (out_c, in_c, kh, kw) shape, "
                     f"got {shape}")


def xavier_uniform(rng: np.random.Generator, shape: tuple[int, ...],
                   dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier uniform on ``[-a, a]``, ``a = √(6 / (fan_in + fan_out))``
    (variance ``2 / (fan_in + fan_out)``), suited to sigmoid and tanh layers."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(check_dtype("xavier_uniform", dtype))


def he_normal(rng: np.random.Generator, shape: tuple[int, ...],
              dtype: Any = np.float64) -> np.ndarray:
    """He/Kaiming normal with standard deviation ``√(2 / fan_in)``, suited to ReLU layers."""
    fan_in, _ = fans(shape)
    std = np.sqrt(2.0 / fan_in)
    return (std * rng.standard_normal(shape)).astype(check_dtype("he_normal", dtype))


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "he": he_normal,
}


def initialize(name: str, rng: np.random.Generator, shape: tuple[int, ...],
               dtype: Any = np.float64) -> np.ndarray:
    """Draw a weight of ``shape`` with the initializer called ``name`` (see INITIALIZERS)."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name](rng, shape, dtype)
