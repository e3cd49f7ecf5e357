"""Whole tiny networks, exactly: one SymPy expression in every weight, differentiated.

:class:`ExactNetwork` builds a dense network ``sizes = (n_0, n_1, …, n_L)`` (hidden
activation from the table, the output activation the loss needs — sigmoid before
``bce``, softmax before ``cce``, none before the others) as one SymPy expression of the
batch-mean loss in all weights and biases. :meth:`ExactNetwork.exact_gradient`
differentiates it symbolically and evaluates the result at a point whose entries are
dyadic rationals (exact in float64 too), in exact arithmetic, rounded only at the end
to 40 digits. :func:`compare_with_models` runs the NumPy backprop of the same network
built from ``gradcheck.models`` at the same point and reports the relative error.

:func:`backprop_gradient` computes the same gradient with the backpropagation equations
(row-vector batch form, as the models compute it; ``N`` samples, ``Wˡ: (n_{l−1}, n_l)``)::

    δᴸ = ∇_a L ⊙ f'(zᴸ)                (softmax output: δᴸ = ∇_a L Jᵀ, row by row)
    δˡ = (δˡ⁺¹ (Wˡ⁺¹)ᵀ) ⊙ f'(zˡ)
    ∂L/∂Wˡ = (aˡ⁻¹)ᵀ δˡ,   ∂L/∂bˡ = Σ_n δˡ_n

symbolically, so a test can show they equal the direct symbolic gradient.

>>> net = ExactNetwork((2, 3, 2), "tanh", "mse", samples=2)
>>> comparison = compare_with_models(net, seed=0)
>>> comparison.relative_error < 1e-13
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES, EXACT_VECTOR_ACTIVATIONS, z

__all__ = [
    "Comparison",
    "ExactNetwork",
    "backprop_gradient",
    "compare_with_models",
    "dyadic_point",
    "dyadic_substitution",
    "exact_gradients",
    "output_activation",
    "relative_comparison",
]

DIGITS = 40
"""Digits of the final rounding of the exact gradient."""


def output_activation(loss: str) -> str | None:
    """The output activation a loss expects: ``sigmoid`` for bce, ``softmax`` for cce."""
    row = EXACT_LOSSES[loss]
    if row.pred != "probability":
        return None
    return "sigmoid" if row.target == "binary" else "softmax"


def dyadic_point(shape: tuple[int, ...], rng: np.random.Generator, scale: int = 1,
                 bits: int = 6) -> np.ndarray:
    """Random numbers ``k / 2**bits`` in ``[−scale, scale]``: exact in float64 and in SymPy."""
    top = scale * 2**bits
    return rng.integers(-top, top + 1, size=shape) / 2**bits


@dataclass
class ExactNetwork:
    """A dense network and batch-mean loss as one SymPy expression (see module docstring).

    ``sizes``: layer widths ``(n_0, …, n_L)``; ``activation``: hidden activation name;
    ``loss``: loss name; ``samples``: batch size ``N`` of the symbolic batch.
    """

    sizes: tuple[int, ...]
    activation: str
    loss: str
    samples: int = 2
    weights: list[sp.Matrix] = field(init=False)
    biases: list[sp.Matrix] = field(init=False)
    inputs: sp.Matrix = field(init=False)
    targets: sp.Matrix = field(init=False)

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(int(n) < 1 for n in self.sizes):
            raise ValueError(f"ExactNetwork: sizes must list at least two positive widths, "
                             f"got {self.sizes}")
        if self.activation not in EXACT_ACTIVATIONS:
            raise KeyError(f"ExactNetwork: unknown activation {self.activation!r}; known: "
                           f"{', '.join(EXACT_ACTIVATIONS)}")
        if self.loss not in EXACT_LOSSES:
            raise KeyError(f"ExactNetwork: unknown loss {self.loss!r}; known: "
                           f"{', '.join(EXACT_LOSSES)}")
        self.weights, self.biases = [], []
        for layer, (n_in, n_out) in enumerate(pairwise(self.sizes)):
            self.weights.append(sp.Matrix(n_in, n_out, lambda i, j, layer=layer:
                                          sp.Symbol(f"W{layer}_{i}{j}", real=True)))
            self.biases.append(sp.Matrix(1, n_out, lambda _, j, layer=layer:
                                         sp.Symbol(f"b{layer}_{j}", real=True)))
        self.inputs = sp.Matrix(self.samples, self.sizes[0],
                                lambda n, i: sp.Symbol(f"x_{n}{i}", real=True))
        self.targets = sp.Matrix(self.samples, self.sizes[-1],
                                 lambda n, k: sp.Symbol(f"t_{n}{k}", real=True))

    @property
    def parameters(self) -> dict[str, sp.Matrix]:
        """``{"0.W": W⁰, "0.b": b⁰, "2.W": …}``: the models' names for the same arrays."""
        out = {}
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"{2 * layer}.W"], out[f"{2 * layer}.b"] = w, b
        return out

    def forward(self) -> tuple[list[sp.Matrix], list[sp.Matrix]]:
        """Pre-activations ``zˡ`` and activations ``aˡ`` (``a⁰`` = inputs), each ``(N, n_l)``."""
        f = EXACT_ACTIVATIONS[self.activation].expr
        out_name = output_activation(self.loss)
        a, zs, acts = self.inputs, [], [self.inputs]
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            pre = a * w + sp.Matrix.vstack(*[b] * self.samples)
            zs.append(pre)
            if layer < last:
                a = pre.applyfunc(lambda v: f.subs(z, v))
            elif out_name == "softmax":
                a = sp.Matrix.vstack(*[sp.Matrix(1, pre.cols, EXACT_VECTOR_ACTIVATIONS[
                    "softmax"].expr(list(pre.row(n)))) for n in range(self.samples)])
            elif out_name == "sigmoid":
                a = pre.applyfunc(lambda v: EXACT_ACTIVATIONS["sigmoid"].expr.subs(z, v))
            else:
                a = pre
            acts.append(a)
        return zs, acts

    @cached_property
    def objective(self) -> sp.Expr:
        """The batch-mean loss ``L = (1/N) Σ_n ℓ(a_nᴸ, t_n)``: one expression in all symbols."""
        _, acts = self.forward()
        row = EXACT_LOSSES[self.loss]
        return sp.Rational(1, self.samples) * sp.Add(*[
            row.per_sample(list(acts[-1].row(n)), list(self.targets.row(n)))
            for n in range(self.samples)])

    @cached_property
    def symbolic_gradient(self) -> list[sp.Expr]:
        """``∂L/∂θ`` for every symbol of :meth:`symbols`, by ``sp.diff`` of :attr:`objective`."""
        return [sp.diff(self.objective, s) for s in self.symbols()]

    def point(self, seed: int | np.random.Generator = 0) -> dict[str, np.ndarray]:
        """Dyadic values for every parameter, the inputs and the targets (valid for the loss)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        values = {name: dyadic_point(m.shape, rng).reshape(m.shape if m.rows > 1 else (m.cols,))
                  for name, m in self.parameters.items()}
        values["x"] = dyadic_point(self.inputs.shape, rng, scale=2)
        row = EXACT_LOSSES[self.loss]
        shape = self.targets.shape
        if row.target == "class":
            values["t"] = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
        elif row.target == "binary":
            values["t"] = rng.integers(0, 5, size=shape) / 4
        else:
            values["t"] = dyadic_point(shape, rng)
        return values

    def substitution(self, values: dict[str, np.ndarray]) -> dict[sp.Symbol, sp.Rational]:
        """SymPy substitution ``{symbol: exact rational}`` for :meth:`point`'s values."""
        pairs = {**self.parameters, "x": self.inputs, "t": self.targets}
        out = {}
        for name, matrix in pairs.items():
            flat = np.asarray(values[name]).reshape(-1)
            out.update({s: sp.Rational(float(v)) for s, v in zip(matrix, flat, strict=True)})
        return out

    def symbols(self) -> list[sp.Symbol]:
        """Every parameter symbol, in the order of :attr:`parameters` (row-major)."""
        return [s for matrix in self.parameters.values() for s in matrix]

    def evaluate(self, exprs: list[sp.Expr], values: dict[str, np.ndarray],
                 digits: int = DIGITS) -> list[mpmath.mpf]:
        """Evaluate expressions in all symbols at :meth:`point`'s values to ``digits`` digits.

        Every symbol enters as an exact binary mpmath number (the values are dyadic
        rationals); arithmetic then runs at ``digits`` + 10 significant digits, far below
        float64's rounding.
        """
        subs = self.substitution(values)
        self._check_off_kinks(subs)
        symbols = list(subs)
        fn = sp.lambdify(symbols, list(exprs), modules="mpmath", cse=True)
        with mpmath.workdps(digits + 10):
            return list(fn(*[mpmath.mpf(subs[s].p) / subs[s].q for s in symbols]))

    def exact_gradient(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``∂L/∂θ`` for every parameter by symbolic ``diff``, evaluated by :meth:`evaluate`.

        Returns float64 arrays shaped like the models' parameters (``W: (in, out)``,
        ``b: (out,)``).
        """
        flat = self.evaluate(self.symbolic_gradient, values)
        out, start = {}, 0
        for name, matrix in self.parameters.items():
            chunk = flat[start:start + len(matrix)]
            start += len(matrix)
            out[name] = np.array([float(v) for v in chunk]).reshape(np.shape(values[name]))
        return out

    def _check_off_kinks(self, subs: dict[sp.Symbol, sp.Rational]) -> None:
        kinks = EXACT_ACTIVATIONS[self.activation].branch_points
        if not kinks:
            return
        zs, _ = self.forward()
        for layer, pre in enumerate(zs[:-1]):
            for v in pre:
                if any(v.subs(subs) == k for k in kinks):
                    raise ValueError(f"ExactNetwork: a pre-activation of layer {layer} is "
                                     f"exactly at a kink of {self.activation}; use another seed")

    def models_network(self) -> tuple[Any, Any]:
        """The same network from ``gradcheck.models``: ``(Sequential, Loss)``, float64."""
        from gradcheck.models.dense import Activation, Dense
        from gradcheck.models.losses import Loss
        from gradcheck.models.network import Sequential
        layers: list = []
        last = len(self.sizes) - 2
        for layer, (n_in, n_out) in enumerate(pairwise(self.sizes)):
            layers.append(Dense(n_in, n_out, seed=0))
            name = self.activation if layer < last else output_activation(self.loss)
            if name is not None:
                layers.append(Activation(name))
        return Sequential(layers), Loss(self.loss)


@dataclass(frozen=True)
class Comparison:
    """Exact and NumPy gradients at one point; ``relative_error = max|Δ| / max|exact|``."""

    exact: dict[str, np.ndarray]
    numpy: dict[str, np.ndarray]
    relative_error: float
    worst: str


def exact_gradients(objective: sp.Expr, wrt: dict[str, tuple[list[sp.Symbol], tuple[int, ...]]],
                    subs: dict[sp.Symbol, sp.Rational], digits: int = DIGITS
                    ) -> dict[str, np.ndarray]:
    """``∂objective/∂s`` for every symbol group of ``wrt`` (``name: (symbols, shape)``).

    SymPy differentiates symbolically; the derivatives are evaluated with every symbol
    of ``subs`` entering as an exact binary mpmath number (dyadic rationals) at ``digits``
    + 10 significant digits, then rounded once to float64 arrays of the given shapes.
    """
    symbols = list(subs)
    derivatives = [sp.diff(objective, s) for group, _ in wrt.values() for s in group]
    fn = sp.lambdify(symbols, derivatives, modules="mpmath", cse=True)
    with mpmath.workdps(digits + 10):
        flat = [float(v) for v in fn(*[mpmath.mpf(subs[s].p) / subs[s].q for s in symbols])]
    out, start = {}, 0
    for name, (group, shape) in wrt.items():
        out[name] = np.array(flat[start:start + len(group)]).reshape(shape)
        start += len(group)
    return out


def dyadic_substitution(symbols: list[sp.Symbol], values: np.ndarray
                        ) -> dict[sp.Symbol, sp.Rational]:
    """``{symbol: exact rational}`` pairing ``symbols`` with ``values`` flattened row-major."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size != len(symbols):
        raise ValueError(f"dyadic_substitution: {len(symbols)} symbols but {flat.size} values")
    return {s: sp.Rational(float(v)) for s, v in zip(symbols, flat, strict=True)}


def relative_comparison(exact: dict[str, np.ndarray], numeric: dict[str, np.ndarray]
                        ) -> Comparison:
    """``max|numeric − exact|`` over all tensors, relative to the largest exact entry."""
    scale = max(float(np.max(np.abs(g))) for g in exact.values()) or 1.0
    errors = {k: float(np.max(np.abs(numeric[k] - exact[k]))) / scale for k in exact}
    worst = max(errors, key=errors.__getitem__)
    return Comparison(exact, numeric, errors[worst], worst)


def _models_gradient(net: ExactNetwork, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    model, loss = net.models_network()
    for name, array in model.params.items():
        array[...] = values[name]
    loss.forward(model.forward(values["x"].copy()), values["t"].copy())
    model.backward(loss.backward())
    return {name: g.copy() for name, g in model.grads.items()}


def compare_with_models(net: ExactNetwork, seed: int | np.random.Generator = 0) -> Comparison:
    """Exact gradient against the NumPy backprop of ``gradcheck.models`` at a dyadic point."""
    values = net.point(seed)
    exact = net.exact_gradient(values)
    return relative_comparison(exact, _models_gradient(net, values))


def backprop_gradient(net: ExactNetwork) -> dict[str, sp.Matrix]:
    """``∂L/∂θ`` by the backpropagation equations, as SymPy matrices in all symbols."""
    zs, acts = net.forward()
    f = EXACT_ACTIVATIONS[net.activation].expr
    fprime = sp.diff(f, z)
    delta = _output_delta(net, zs[-1], acts[-1])
    grads: dict[str, sp.Matrix] = {}
    for layer in range(len(net.weights) - 1, -1, -1):
        grads[f"{2 * layer}.W"] = acts[layer].T * delta
        grads[f"{2 * layer}.b"] = sp.ones(1, delta.rows) * delta
        if layer:
            back = delta * net.weights[layer].T
            delta = back.multiply_elementwise(zs[layer - 1].applyfunc(
                lambda v: fprime.subs(z, v)))
    return grads


def _output_delta(net: ExactNetwork, pre: sp.Matrix, acts: sp.Matrix) -> sp.Matrix:
    """δᴸ = ∂L/∂zᴸ from ∇_a L (L differentiated in stand-in output symbols ``a_nk``) and
    the output activation's derivative (elementwise) or Jacobian (softmax)."""
    stand_in = sp.Matrix(acts.rows, acts.cols, lambda n, k: sp.Symbol(f"a_{n}{k}", real=True))
    row = EXACT_LOSSES[net.loss]
    loss_of_a = sp.Rational(1, net.samples) * sp.Add(*[
        row.per_sample(list(stand_in.row(n)), list(net.targets.row(n))) for n in range(acts.rows)])
    back = dict(zip(stand_in, acts, strict=True))
    grad_a = stand_in.applyfunc(lambda a: sp.diff(loss_of_a, a).subs(back))
    name = output_activation(net.loss)
    if name is None:
        return grad_a
    if name == "sigmoid":
        dsig = sp.diff(EXACT_ACTIVATIONS["sigmoid"].expr, z)
        return grad_a.multiply_elementwise(pre.applyfunc(lambda v: dsig.subs(z, v)))
    us = sp.symbols(f"u_1:{pre.cols + 1}", real=True)
    jacobian = sp.Matrix([EXACT_VECTOR_ACTIVATIONS["softmax"].expr(us)]).jacobian(us)
    rows = [grad_a.row(n) * jacobian.subs(dict(zip(us, pre.row(n), strict=True)))
            for n in range(acts.rows)]
    return sp.Matrix.vstack(*rows)
