"""A tiny Elman RNN, exactly: the loss over a whole sequence as one SymPy expression.

``h_t = tanh(x_t Wx + h_{t−1} Wh + b)``, ``h_0 = 0`` — the recurrence of
``gradcheck.models.recurrent.RNN`` — unrolled over ``T`` steps for ``N`` samples; the loss
(any elementwise row of the table, e.g. ``half_sse``) is applied to every hidden state and
averaged over the batch. SymPy differentiates it in ``Wx: (D, H)``, ``Wh: (H, H)`` and
``b: (H,)`` and the inputs ``x: (N, T, D)``, which checks backpropagation through time
entry by entry, and :func:`compare_rnn_with_models` holds the models' NumPy BPTT against it
at a dyadic point.

>>> compare_rnn_with_models(seed=0).relative_error < 1e-14
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from gradcheck.reference.exact import EXACT_LOSSES
from gradcheck.reference.networks import (
    Comparison,
    dyadic_point,
    dyadic_substitution,
    exact_gradients,
    relative_comparison,
)

__all__ = ["ExactRNN", "compare_rnn_with_models"]


@dataclass
class ExactRNN:
    """``inputs: (N, T, D)`` → hidden states ``(N, T, H)``, loss ``loss`` on the states."""

    input_size: int = 2
    hidden_size: int = 2
    steps: int = 3
    samples: int = 2
    loss: str = "half_sse"

    def __post_init__(self) -> None:
        if EXACT_LOSSES.get(self.loss) is None or EXACT_LOSSES[self.loss].element is None:
            elementwise = [n for n, r in EXACT_LOSSES.items() if r.element is not None]
            raise ValueError(f"ExactRNN: loss must be elementwise, one of {elementwise}; "
                             f"got {self.loss!r}")
        d, h = self.input_size, self.hidden_size
        self.parameters = {
            "Wx": sp.Matrix(d, h, lambda i, j: sp.Symbol(f"Wx_{i}{j}", real=True)),
            "Wh": sp.Matrix(h, h, lambda i, j: sp.Symbol(f"Wh_{i}{j}", real=True)),
            "b": sp.Matrix(1, h, lambda _, j: sp.Symbol(f"b_{j}", real=True)),
        }
        self.inputs = [[sp.Matrix(1, d, lambda _, i, n=n, s=s: sp.Symbol(f"x_{n}{s}{i}",
                                                                        real=True))
                        for s in range(self.steps)] for n in range(self.samples)]
        self.targets = [[sp.Matrix(1, h, lambda _, i, n=n, s=s: sp.Symbol(f"t_{n}{s}{i}",
                                                                         real=True))
                         for s in range(self.steps)] for n in range(self.samples)]

    @cached_property
    def objective(self) -> sp.Expr:
        """Batch mean over samples of the loss summed over every step and hidden unit."""
        wx, wh, b = self.parameters["Wx"], self.parameters["Wh"], self.parameters["b"]
        row = EXACT_LOSSES[self.loss]
        total = sp.Integer(0)
        for n in range(self.samples):
            state = sp.zeros(1, self.hidden_size)
            states, targets = [], []
            for s in range(self.steps):
                state = (self.inputs[n][s] * wx + state * wh + b).applyfunc(sp.tanh)
                states += list(state)
                targets += list(self.targets[n][s])
            total += row.per_sample(states, targets)
        return total / self.samples

    def symbols(self) -> list[sp.Symbol]:
        """Every parameter symbol: ``Wx``, ``Wh``, ``b``, each row-major."""
        return [s for matrix in self.parameters.values() for s in matrix]

    def point(self, seed: int | np.random.Generator = 0) -> dict[str, np.ndarray]:
        """Dyadic parameters (models' shapes), inputs ``(N, T, D)`` and targets ``(N, T, H)``."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        d, h = self.input_size, self.hidden_size
        return {"Wx": dyadic_point((d, h), rng), "Wh": dyadic_point((h, h), rng),
                "b": dyadic_point((h,), rng),
                "x": dyadic_point((self.samples, self.steps, d), rng, scale=2),
                "t": dyadic_point((self.samples, self.steps, h), rng)}

    def exact_gradient(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``∂L/∂Wx``, ``∂L/∂Wh``, ``∂L/∂b`` and ``∂L/∂x`` by ``sp.diff`` of
        :attr:`objective`, evaluated at 50 digits."""
        groups = {name: list(matrix) for name, matrix in self.parameters.items()}
        for key, nested in (("x", self.inputs), ("t", self.targets)):  # (N, T, ·) row-major
            groups[key] = [s for sample in nested for vector in sample for s in vector]
        subs: dict[sp.Symbol, sp.Rational] = {}
        for name, symbols in groups.items():
            subs.update(dyadic_substitution(symbols, values[name]))
        wrt = {name: (groups[name], values[name].shape) for name in ("Wx", "Wh", "b", "x")}
        return exact_gradients(self.objective, wrt, subs)


def compare_rnn_with_models(net: ExactRNN | None = None,
                            seed: int | np.random.Generator = 0) -> Comparison:
    """The exact RNN gradients (parameters and input) against the models' ``RNN`` + ``Loss``."""
    from gradcheck.models.losses import Loss
    from gradcheck.models.recurrent import RNN
    net = net or ExactRNN()
    values = net.point(seed)
    exact = net.exact_gradient(values)
    layer, loss = RNN(net.input_size, net.hidden_size), Loss(net.loss)
    for name in ("Wx", "Wh", "b"):
        layer.params[name][...] = values[name]
    loss.forward(layer.forward(values["x"].copy()), values["t"].copy())
    dx = layer.backward(loss.backward())
    numeric = {name: layer.grads[name].copy() for name in ("Wx", "Wh", "b")}
    return relative_comparison(exact, {**numeric, "x": np.array(dx)})
