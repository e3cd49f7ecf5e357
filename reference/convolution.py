"""A tiny 2-d convolution, exactly: its loss as one SymPy expression in W, b and x.

The output is built from the definition of cross-correlation (NCHW, zero padding,
stride), not from any NumPy code::

    y[n, o, r, c] = b[o] + Σ_{c', i, j} W[o, c', i, j] · xpad[n, c', r·s + i, c·s + j]

followed by an activation of the table and an elementwise loss averaged over the batch.
SymPy differentiates it in ``W: (out_c, in_c, kh, kw)``, ``b: (out_c,)`` and the input
``x: (N, in_c, H, W)`` — the input gradient is where padding and stride bugs live — and
:func:`compare_conv_with_models` holds ``gradcheck.models.conv.Conv2D`` against it.

>>> compare_conv_with_models(seed=0).relative_error < 1e-14
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES, z
from gradcheck.reference.networks import (
    Comparison,
    dyadic_point,
    dyadic_substitution,
    exact_gradients,
    relative_comparison,
)

__all__ = ["ExactConv2D", "compare_conv_with_models"]


def _array(prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of real symbols ``prefix_i_j_…`` of ``shape``."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = sp.Symbol(f"{prefix}_{'_'.join(map(str, index))}", real=True)
    return out


@dataclass
class ExactConv2D:
    """Conv2D → activation → loss on ``x: (samples, in_c, height, width)``, symbolically."""

    in_channels: int = 1
    out_channels: int = 2
    kernel: int = 2
    stride: int = 1
    padding: int = 1
    height: int = 3
    width: int = 3
    samples: int = 2
    activation: str = "tanh"
    loss: str = "half_sse"

    def __post_init__(self) -> None:
        if self.activation not in EXACT_ACTIVATIONS:
            raise KeyError(f"ExactConv2D: unknown activation {self.activation!r}; known: "
                           f"{', '.join(EXACT_ACTIVATIONS)}")
        if EXACT_LOSSES.get(self.loss) is None or EXACT_LOSSES[self.loss].element is None:
            raise ValueError(f"ExactConv2D: loss must be elementwise, got {self.loss!r}")
        k, p = self.kernel, self.padding
        self.out_height = (self.height + 2 * p - k) // self.stride + 1
        self.out_width = (self.width + 2 * p - k) // self.stride + 1
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"ExactConv2D: kernel {k} with padding {p} does not fit a "
                             f"{self.height}×{self.width} input")
        self.W = _array("W", (self.out_channels, self.in_channels, k, k))
        self.b = _array("b", (self.out_channels,))
        self.x = _array("x", (self.samples, self.in_channels, self.height, self.width))
        self.t = _array("t", (self.samples, self.out_channels, self.out_height, self.out_width))

    def output(self) -> np.ndarray:
        """``y: (N, out_c, OH, OW)`` as SymPy expressions, by the definition above."""
        p, s, k = self.padding, self.stride, self.kernel
        padded = np.full((self.samples, self.in_channels, self.height + 2 * p,
                          self.width + 2 * p), sp.Integer(0), dtype=object)
        padded[:, :, p:p + self.height, p:p + self.width] = self.x
        y = np.empty(self.t.shape, dtype=object)
        for n, o, r, c in np.ndindex(*y.shape):
            window = padded[n, :, r * s:r * s + k, c * s:c * s + k]
            y[n, o, r, c] = self.b[o] + sp.Add(*(self.W[o] * window).reshape(-1))
        return y

    @cached_property
    def objective(self) -> sp.Expr:
        """Batch mean of the loss summed over every output entry of a sample."""
        f = EXACT_ACTIVATIONS[self.activation].expr
        activated = np.vectorize(lambda v: f.subs(z, v), otypes=[object])(self.output())
        row = EXACT_LOSSES[self.loss]
        return sp.Add(*[row.per_sample(list(activated[n].reshape(-1)),
                                       list(self.t[n].reshape(-1)))
                        for n in range(self.samples)]) / self.samples

    def point(self, seed: int | np.random.Generator = 0) -> dict[str, np.ndarray]:
        """Dyadic ``W``, ``b``, ``x`` and targets ``t`` in the models' shapes."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return {"W": dyadic_point(self.W.shape, rng), "b": dyadic_point(self.b.shape, rng),
                "x": dyadic_point(self.x.shape, rng, scale=2),
                "t": dyadic_point(self.t.shape, rng)}

    def exact_gradient(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``∂L/∂W``, ``∂L/∂b`` and ``∂L/∂x`` by ``sp.diff``, evaluated at 50 digits."""
        groups = {"W": self.W, "b": self.b, "x": self.x, "t": self.t}
        subs = {}
        for name, symbols in groups.items():
            subs.update(dyadic_substitution(list(symbols.reshape(-1)), values[name]))
        kinks = EXACT_ACTIVATIONS[self.activation].branch_points
        if kinks and any(v.subs(subs) in kinks for v in self.output().reshape(-1)):
            raise ValueError(f"ExactConv2D: an output is exactly at a kink of "
                             f"{self.activation}; use another seed")
        wrt = {name: (list(groups[name].reshape(-1)), groups[name].shape)
               for name in ("W", "b", "x")}
        return exact_gradients(self.objective, wrt, subs)


def compare_conv_with_models(net: ExactConv2D | None = None,
                             seed: int | np.random.Generator = 0) -> Comparison:
    """The exact gradients against ``Conv2D`` + ``Activation`` + ``Loss`` of the models."""
    from gradcheck.models.conv import Conv2D
    from gradcheck.models.dense import Activation
    from gradcheck.models.losses import Loss
    net = net or ExactConv2D()
    values = net.point(seed)
    exact = net.exact_gradient(values)
    conv = Conv2D(net.in_channels, net.out_channels, net.kernel, stride=net.stride,
                  padding=net.padding)
    activation, loss = Activation(net.activation), Loss(net.loss)
    conv.params["W"][...] = values["W"]
    conv.params["b"][...] = values["b"]
    loss.forward(activation.forward(conv.forward(values["x"].copy())), values["t"].copy())
    dx = conv.backward(activation.backward(loss.backward()))
    numeric = {"W": conv.grads["W"].copy(), "b": conv.grads["b"].copy(), "x": np.array(dx)}
    return relative_comparison(exact, numeric)
