"""What the checker needs of the user's objects, as ``typing.Protocol``s — nothing more.

The checks accept any object with these members (structural typing: no base class to
inherit); a type checker tells a user whose class lacks one, and at run time the checks
say which member is missing. The parameters and gradients are read-only properties here so
that a class holding ``dict[str, np.ndarray]`` (or any mapping) satisfies them.

* :class:`Layer` — ``check_layer``: ``forward(x) -> y``, ``backward(grad_out) -> dL/dx``,
  ``params`` / ``grads`` (the same keys and shapes; ``backward`` overwrites ``grads``).
* :class:`Model` — ``check_model``: a layer whose ``backward`` may return anything
  (``dL/dx`` is not checked); ``penalty() -> float`` and ``layers`` are optional.
* :class:`Loss` — ``check_model``: ``forward(pred, target) -> float`` and
  ``backward() -> dL/dpred``.

>>> import numpy as np
>>> class Scale:
...     def __init__(self): self.params, self.grads = {"w": np.ones(2)}, {"w": np.zeros(2)}
...     def forward(self, x): self.x = x; return x * self.params["w"]
...     def backward(self, g):
...         self.grads["w"][...] = (g * self.x).sum(0)
...         return g * self.params["w"]
>>> isinstance(Scale(), Layer)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Layer(Protocol):
    """A layer: parameters, gradients, a forward and a backward pass."""

    @property
    def params(self) -> Mapping[str, Any]:
        """Parameter arrays by name (nested trees go through ``check_object``)."""

    @property
    def grads(self) -> Mapping[str, Any]:
        """Gradient arrays, the keys and shapes of :attr:`params`, written by ``backward``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x -> y``; may keep what ``backward`` needs."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``dL/dy -> dL/dx``, filling :attr:`grads` with ``dL/dθ``."""


@runtime_checkable
class Model(Protocol):
    """A model: like a :class:`Layer`; the value ``backward`` returns is not checked."""

    @property
    def params(self) -> Mapping[str, Any]:
        """Parameter arrays, flat names such as ``"dense0.W"``."""

    @property
    def grads(self) -> Mapping[str, Any]:
        """Gradient arrays, the keys and shapes of :attr:`params`."""

    def forward(self, x: np.ndarray) -> Any:
        """``x -> prediction``."""

    def backward(self, grad_out: Any) -> Any:
        """``dL/dprediction ->`` anything; fills :attr:`grads`."""


@runtime_checkable
class Loss(Protocol):
    """A loss: a value, then its gradient with respect to the prediction."""

    def forward(self, pred: Any, target: Any) -> float:
        """The loss of ``pred`` against ``target`` (a scalar)."""

    def backward(self) -> Any:
        """``dL/dpred`` of the last ``forward``."""


__all__ = ["Layer", "Loss", "Model"]
