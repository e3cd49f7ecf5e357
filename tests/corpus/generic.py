"""Bugs that fit any layer: a wrong transform of one gradient, and a cache one call late.

(A transposed gradient needs a square matrix and is written as a bug inside a backward:
see ``corpus.dense`` and ``corpus.recurrent``.)

``WithBug(layer, tensor, bug)`` runs ``layer``'s own backward and then spoils the
gradient of ``tensor`` (``"x"`` for the returned input gradient, else a parameter name)
with one row of :data:`BUGS`. ``params`` and ``grads`` are the wrapped layer's own dicts,
so a checker that perturbs parameters in place perturbs the real layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BUGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sign flipped": lambda g: -g,
    "doubled": lambda g: 2 * g,  # e.g. the ½ of ½x² forgotten
    "halved": lambda g: g / 2,  # e.g. d(x²)/dx written as x
    "zeros": np.zeros_like,  # e.g. the gradient never written
}


class WithBug:
    """``layer`` whose gradient of ``tensor`` is replaced by ``BUGS[bug]`` of it.

    >>> from gradcheck.models.dense import Dense
    >>> bad = WithBug(Dense(3, 2), "W", "sign flipped")
    >>> sorted(bad.params) == sorted(bad.grads) == ["W", "b"]
    True
    """

    def __init__(self, layer: Any, tensor: str, bug: str) -> None:
        if tensor != "x" and tensor not in layer.params:
            raise KeyError(f"WithBug: {layer!r} has no parameter {tensor!r}; "
                           f"choose 'x' or one of {sorted(layer.params)}")
        self.layer, self.tensor, self.bug = layer, tensor, bug
        self.params, self.grads = layer.params, layer.grads
        self.spoil = BUGS[bug]

    def __repr__(self) -> str:
        return f"WithBug({self.layer!r}, {self.tensor!r}, {self.bug!r})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.layer.forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = self.layer.backward(grad_out)
        if self.tensor == "x":
            return self.spoil(dx)
        self.grads[self.tensor][...] = self.spoil(self.grads[self.tensor])
        return dx


class LaggingCache:
    """``layer`` whose backward reads what the *previous* forward call cached.

    After each forward, every attribute of ``layer`` other than ``params`` and ``grads``
    (whatever it caches for its backward) is swapped for the values the previous forward
    left, so no knowledge of the layer's internals is needed. ``warm_up``, when given, is
    run through forward once at construction, as if the layer had been used on another
    batch before the check.
    """

    def __init__(self, layer: Any, *, warm_up: np.ndarray | None = None) -> None:
        self.layer = layer
        self.params, self.grads = layer.params, layer.grads
        self._previous: dict[str, Any] | None = None
        if warm_up is not None:
            self.forward(warm_up)

    def __repr__(self) -> str:
        return f"LaggingCache({self.layer!r})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.layer.forward(x)
        state = vars(self.layer)
        fresh = {k: v for k, v in state.items() if k not in ("params", "grads")}
        if self._previous is not None:
            # BUG: double buffering one step late: backward reads the previous call's cache
            state.update(self._previous)
        self._previous = fresh
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return self.layer.backward(grad_out)
