"""Inverted dropout with a seeded mask that can be frozen for gradient checking."""

from __future__ import annotations

import numpy as np

from gradcheck.models.base import check_grad_out, require_forward

__all__ = ["Dropout"]


class Dropout:
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``, so the expected output equals the input; in eval mode
    (``training = False``) the identity.

    The mask is drawn from ``np.random.default_rng(seed)``: two layers with the same seed
    draw the same sequence of masks. By default every training forward draws a *new* mask,
    so repeated forwards on the same input differ — a gradient checker reports that as
    nondeterminism. Call :meth:`freeze_mask` first: forwards on the same input shape then
    reuse one mask and the layer is a fixed (linear) function that can be checked.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of dropping an entry.
    seed : int or numpy.random.Generator
        Seed of the mask generator.

    Shapes: any ``x`` -> same shape and dtype (``dx`` too).

    >>> drop = Dropout(0.5, seed=0).freeze_mask()
    >>> y = drop.forward(np.ones((2, 4)))
    >>> bool(np.all((y == 0) | (y == 2)))
    True
    """

    def __init__(self, p: float, *, seed: int | np.random.Generator = 0) -> None:
        if isinstance(p, bool) or not isinstance(p, int | float | np.floating | np.integer) \
                or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.training = True
        self.frozen = False
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None      # kept entries hold 1/(1-p), dropped 0
        self._cache: tuple[np.ndarray, tuple[int, ...]] | None = None  # (scale, x.shape)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def freeze_mask(self) -> Dropout:
        """Reuse the current mask (drawn at the next forward if none) for every later
        training forward on an input of the same shape; returns ``self``."""
        self.frozen = True
        return self

    def unfreeze_mask(self) -> Dropout:
        """Draw a fresh mask at every training forward again (the default); returns ``self``."""
        self.frozen = False
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (any shape) -> ``x · mask / (1 - p)`` in training, a copy of ``x`` in eval."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self!r}: input must be a float array, got dtype {x.dtype}; "
                            f"convert with x.astype(np.float64)")
        if not self.training:
            self._cache = (np.ones((), dtype=x.dtype), x.shape)
            return x.copy()
        if not (self.frozen and self._mask is not None and self._mask.shape == x.shape):
            keep = self._rng.random(x.shape) >= self.p
            self._mask = keep / (1.0 - self.p)
        scale = self._mask.astype(x.dtype)
        self._cache = (scale, x.shape)
        return x * scale

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out`` (the output's shape) -> ``dx``: the same mask and scale applied."""
        scale, shape = require_forward(repr(self), self._cache)
        return check_grad_out(repr(self), grad_out, shape).astype(scale.dtype, copy=False) * scale
