"""``Sequential``: a chain of layers that is itself a layer, with an optional L2 penalty.

Parameters are named ``"<layer index>.<param>"`` (``"0.W"``, ``"2.b"``); the arrays in
``params`` and ``grads`` *are* the layers' own, so an in-place change through the model
(an optimizer step, a checker's perturbation) changes the layer.

The L2 penalty ``l2·Σθ²`` runs over the *weights*: the parameters a layer lists in its
``decayed`` class attribute (default: those named ``W``, ``Wx`` or ``Wh``; biases and
normalization scales are not decayed). ``penalty()`` is added to the objective by the
caller (``fit``, the checker), and ``backward`` adds its gradient ``2·l2·θ`` to those
weights' grads.

>>> import numpy as np
>>> from gradcheck.models.dense import Activation, Dense
>>> model = Sequential([Dense(4, 3), Activation("tanh"), Dense(3, 2)], l2=1e-3)
>>> list(model.params)
['0.W', '0.b', '2.W', '2.b']
>>> model.forward(np.ones((5, 4))).shape
(5, 2)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["DEFAULT_DECAYED", "Sequential", "decayed_names"]

DEFAULT_DECAYED = ("W", "Wx", "Wh")


def decayed_names(layer: Any) -> tuple[str, ...]:
    """Names of ``layer``'s parameters that weight decay applies to."""
    names = getattr(layer, "decayed", None)
    if names is None:
        names = tuple(k for k in getattr(layer, "params", {}) if k in DEFAULT_DECAYED)
    return tuple(names)


class Sequential:
    """Layers applied in order: ``forward`` left to right, ``backward`` right to left.

    Parameters
    ----------
    layers : iterable of layers
        Objects with ``params``, ``grads``, ``forward(x)`` and ``backward(grad_out)``.
    l2 : float
        Weight-decay strength λ of the penalty ``λ·Σθ²`` over the weights.
    """

    def __init__(self, layers: Iterable[Any], *, l2: float = 0.0) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential: give at least one layer")
        for i, layer in enumerate(self.layers):
            missing = [a for a in ("params", "grads", "forward", "backward")
                       if not hasattr(layer, a)]
            if missing:
                raise TypeError(f"Sequential: layer {i} ({layer!r}) lacks {', '.join(missing)}"
                                f" of the Layer protocol")
        if not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"Sequential: l2 must be a finite number >= 0, got {l2!r}")
        self.l2 = float(l2)
        self.training = True

    # ---- named parameters ---------------------------------------------------------------

    def _flat(self, attribute: str) -> dict[str, np.ndarray]:
        return {f"{i}.{name}": array for i, layer in enumerate(self.layers)
                for name, array in getattr(layer, attribute).items()}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"<index>.<name>": array}``, the layers' own parameter arrays."""
        return self._flat("params")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """``{"<index>.<name>": array}``, the layers' own gradient arrays."""
        return self._flat("grads")

    def decayed(self) -> list[str]:
        """Flat names of the parameters the L2 penalty applies to."""
        return [f"{i}.{name}" for i, layer in enumerate(self.layers)
                for name in decayed_names(layer)]

    # ---- forward, backward, penalty ----------------------------------------------------

    def forward(self, x: Any) -> np.ndarray:
        """``x -> y``, through every layer in order."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: Any) -> np.ndarray:
        """``dL/dy -> dL/dx``; fills every layer's grads, plus ``2·l2·θ`` on the weights."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        if self.l2:
            for layer in self.layers:
                for name in decayed_names(layer):
                    layer.grads[name] += 2 * self.l2 * layer.params[name]
        return grad_out

    def penalty(self) -> float:
        """``l2·Σθ²`` over the weights (0.0 when ``l2 == 0``)."""
        if not self.l2:
            return 0.0
        total = sum(float(np.sum(np.square(layer.params[name], dtype=np.float64)))
                    for layer in self.layers for name in decayed_names(layer))
        return self.l2 * total

    # ---- modes and helpers ---------------------------------------------------------------

    def train(self) -> Sequential:
        """Training mode on every layer that has a ``training`` attribute; returns self."""
        return self._set_training(True)

    def eval(self) -> Sequential:
        """Evaluation mode (dropout off, running statistics); returns self."""
        return self._set_training(False)

    def _set_training(self, flag: bool) -> Sequential:
        self.training = flag
        for layer in self.layers:
            if hasattr(layer, "training"):
                layer.training = flag
        return self

    def predict(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Outputs for ``x`` in evaluation mode, in chunks; the previous mode is restored."""
        was_training = self.training
        self.eval()
        try:
            x = np.asarray(x)
            parts = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            self._set_training(was_training)
        return np.concatenate(parts)

    def accuracy(self, x: Any, y: Any) -> float:
        """Fraction of rows whose arg-max output equals ``y`` (class indices or one-hot)."""
        labels = np.asarray(y)
        if labels.ndim > 1:
            labels = labels.argmax(axis=-1)
        return float(np.mean(self.predict(x).argmax(axis=-1) == labels))

    def __repr__(self) -> str:
        lines = [f"Sequential(l2={self.l2:g}" if self.l2 else "Sequential("]
        for i, layer in enumerate(self.layers):
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in layer.params.items())
            lines.append(f"  ({i}) {layer!r}" + (f"  [{shapes}]" if shapes else ""))
        count = sum(v.size for v in self.params.values())
        lines.append(f")  # {count} parameters")
        return "\n".join(lines)
