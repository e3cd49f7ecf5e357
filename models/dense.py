"""The fully connected layer and the parameter-free activation layer.

Both follow the Layer protocol: ``params`` and ``grads`` are dicts of arrays with the
same keys and shapes; ``backward`` fills ``grads`` *in place* (so a container or an
optimizer holding those arrays sees the new values) and returns ``dL/dx``.

>>> import numpy as np
>>> layer = Dense(4, 3, seed=0)
>>> y = layer.forward(np.ones((2, 4)))
>>> layer.backward(np.ones_like(y)).shape, layer.grads["W"].shape
((2, 4), (4, 3))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import Op, VectorOp, get
from .base import check_dtype, check_grad_out, check_input, require_forward
from .init import initialize

__all__ = ["Activation", "Dense"]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class Dense:
    """Affine layer ``y = x W + b``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output feature axes.
    init : {"xavier", "glorot", "he"}
        Initializer of ``W`` (Glorot uniform for sigmoid/tanh, He normal for ReLU-family);
        ``b`` starts at zero.
    dtype : float64 (default) or float32
        Of the parameters; inputs and upstream gradients are cast to it, outputs have it.
    seed : int or numpy.random.Generator
        Source of the initial weights.

    Shapes: ``x: (N, in)``, ``y: (N, out)``, ``W: (in, out)``, ``b: (out,)``.
    """

    decayed = ("W",)

    def __init__(self, in_features: int, out_features: int, *, init: str = "xavier",
                 dtype: Any = np.float64, seed: int | np.random.Generator = 0) -> None:
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Dense: {arg} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = check_dtype(f"{self!r}", dtype)
        self.init = init
        w = initialize(init, _rng(seed), (self.in_features, self.out_features), self.dtype)
        self.params = {"W": w, "b": np.zeros(self.out_features, dtype=self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dense({self.in_features}→{self.out_features})"

    def forward(self, x: Any) -> np.ndarray:
        """``x: (N, in) -> y: (N, out)``."""
        # a copy: backward must not see later in-place changes to the caller's array
        x = check_input(f"{self!r}", x, ndim=2, trailing=(self.in_features,),
                        layout="(N, in)").astype(self.dtype)
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad_out: Any) -> np.ndarray:
        """``grad_out: (N, out) -> dx: (N, in)``; fills ``grads["W"]`` and ``grads["b"]``."""
        x = require_forward(f"{self!r}", self._x)
        g = check_grad_out(f"{self!r}", grad_out, (x.shape[0], self.out_features))
        g = g.astype(self.dtype, copy=False)
        self.grads["W"][...] = x.T @ g
        self.grads["b"][...] = g.sum(axis=0)
        return g @ self.params["W"].T


class Activation:
    """An activation from the table as a layer with no parameters, input of any shape.

    ``name`` is a key of ``ACTIVATIONS`` (elementwise) or ``VECTOR_ACTIVATIONS``
    (``"softmax"``, along the last axis). ``x: (N, ...)``, ``y`` the same shape.

    >>> import numpy as np
    >>> Activation("relu").forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    def __init__(self, name: str) -> None:
        self.op: Op | VectorOp = get(name)
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def forward(self, x: Any) -> np.ndarray:
        """``x: (N, ...) -> y = f(x)``, same shape."""
        ndim = max(np.ndim(x), 1)
        z = check_input(f"{self!r}", x, ndim=ndim).copy()
        y = self.op.f(z)
        self._cache = (z, y)  # copies: the caller may change x or y in place before backward
        return y.copy()

    def backward(self, grad_out: Any) -> np.ndarray:
        """``grad_out -> dx``: elementwise ``g·f'(z)``, or the softmax vector-Jacobian product."""
        z, y = require_forward(f"{self!r}", self._cache)
        g = check_grad_out(f"{self!r}", grad_out, y.shape)
        if isinstance(self.op, VectorOp):
            return self.op.vjp(y, g)
        return self.op.vjp(z, y, g)  # g·f'(z): one fresh buffer (models/activations.py)
