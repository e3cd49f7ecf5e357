"""Three-way numeric evidence for a layer: exact (SymPy) against NumPy and finite differences.

For one small instance of a layer of ``gradcheck.models`` at a seeded point whose entries
are dyadic rationals (exact in float64 and in SymPy), :func:`layer_evidence` computes the
gradient of ``φ = Σ G ⊙ y`` (``G`` a fixed dyadic upstream gradient, so ``∂φ/∂y = G``
exactly) with respect to every parameter and the input three ways:

- **exact**: the layer's forward written from its definition as SymPy expressions
  (``symbolic``, never the models' NumPy code), differentiated by ``sp.diff`` and evaluated
  at 50 digits (:func:`gradcheck.reference.networks.exact_gradients`);
- **NumPy**: the models' hand-written ``backward(G)``;
- **finite differences**: central differences of the models' NumPy forward of ``φ``.

Errors are normwise per tensor: ``max|approx − exact| / max|exact|``.

>>> from gradcheck.models.dense import Dense
>>> ev = layer_evidence("Dense", lambda: Dense(3, 2), lambda P, x, _: x @ P["W"] + P["b"], (2, 3))
>>> ev.numpy_error < 1e-15 and ev.fd_error < 1e-8
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from gradcheck.reference.evidence import central_difference_step
from gradcheck.reference.networks import dyadic_point, dyadic_substitution, exact_gradients

__all__ = ["LayerEvidence", "TensorError", "layer_evidence", "symbols"]

Symbolic = Callable[[dict[str, np.ndarray], np.ndarray, Any], Any]
"""``(parameters, x, layer) -> y`` or ``(y, extra)`` on object arrays of SymPy expressions;
``layer`` is passed for its configuration only (stride, eps, a frozen mask)."""


@dataclass(frozen=True)
class TensorError:
    """Normwise errors of one gradient tensor against the exact one."""

    tensor: str
    shape: tuple[int, ...]
    numpy_error: float
    fd_error: float


@dataclass(frozen=True)
class LayerEvidence:
    """Per-tensor errors of one layer instance; the worst of each column as properties."""

    name: str
    instance: str
    tensors: tuple[TensorError, ...]

    @property
    def numpy_error(self) -> float:
        return max(t.numpy_error for t in self.tensors)

    @property
    def fd_error(self) -> float:
        return max(t.fd_error for t in self.tensors)

    @property
    def entries(self) -> int:
        return sum(int(np.prod(t.shape)) for t in self.tensors)


def symbols(prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of real symbols ``prefix_i_j…`` of ``shape``."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = sp.Symbol(f"{prefix}_{'_'.join(map(str, index))}", real=True)
    return out


def _objective(layer: Any, x: np.ndarray, upstream: np.ndarray) -> float:
    """``Σ G ⊙ forward(x)`` plus the layer's penalty if it has one (L2), in float64."""
    value = float(np.sum(upstream * layer.forward(x)))
    return value + (float(layer.penalty()) if hasattr(layer, "penalty") else 0.0)


def _finite_differences(layer: Any, x: np.ndarray, upstream: np.ndarray
                        ) -> dict[str, np.ndarray]:
    """Central differences of :func:`_objective` in every parameter entry and input entry."""
    out: dict[str, np.ndarray] = {}
    targets = {**layer.params, "x": x}
    for name, array in targets.items():
        grad = np.empty(array.shape)
        steps = central_difference_step(array)
        for index in np.ndindex(*array.shape):
            saved = array[index]
            array[index] = saved + steps[index]
            up = _objective(layer, x, upstream)
            array[index] = saved - steps[index]
            down = _objective(layer, x, upstream)
            array[index] = saved
            grad[index] = (up - down) / (2 * steps[index])
        out[name] = grad
    return out


def _error(approx: np.ndarray, exact: np.ndarray) -> float:
    scale = float(np.max(np.abs(exact))) or 1.0
    return float(np.max(np.abs(approx - exact))) / scale


def layer_evidence(name: str, build: Callable[[], Any], symbolic: Symbolic,
                   x_shape: tuple[int, ...], *, instance: str = "", seed: int = 0,
                   prepare: Callable[[Any, np.ndarray], None] | None = None) -> LayerEvidence:
    """Exact, NumPy and finite-difference gradients of one layer instance (module docstring).

    Parameters
    ----------
    name : the models' class name (for the report).
    build : makes the float64 layer (or a ``Sequential`` holding it, for L2).
    symbolic : ``(parameters, x, layer) -> y`` (or ``(y, extra)``: ``extra`` a scalar added to the
        objective, e.g. an L2 penalty) on object arrays of SymPy symbols, written from the
        layer's definition; ``parameters`` is keyed like ``build().params``.
    x_shape : shape of the input.
    instance : words describing the instance (shapes, options) for the report.
    seed : seeds the dyadic point and the upstream gradient.
    prepare : called as ``prepare(layer, x)`` before anything else (e.g. to freeze a mask).
    """
    rng = np.random.default_rng(seed)
    layer = build()
    values = {k: dyadic_point(v.shape, rng) for k, v in layer.params.items()}
    for k, v in values.items():
        layer.params[k][...] = v
    x = dyadic_point(x_shape, rng, scale=2)
    if prepare is not None:
        prepare(layer, x)
    y = layer.forward(x.copy())
    upstream = dyadic_point(y.shape, rng)
    dx = layer.backward(upstream.copy())
    analytic = {**{k: g.copy() for k, g in layer.grads.items()}, "x": np.array(dx)}
    numeric = _finite_differences(layer, x.copy(), upstream)

    sym = {k: symbols(k.replace(".", "_"), v.shape) for k, v in layer.params.items()}
    sym_x = symbols("x", x_shape)
    result = symbolic(sym, sym_x, layer)
    y_sym, extra = result if isinstance(result, tuple) else (result, sp.Integer(0))
    weights = np.vectorize(sp.Rational, otypes=[object])(upstream)
    objective = sp.Add(*(np.asarray(y_sym) * weights).reshape(-1)) + extra
    subs: dict[sp.Symbol, sp.Rational] = {}
    for k, array in sym.items():
        subs.update(dyadic_substitution(list(array.reshape(-1)), values[k]))
    subs.update(dyadic_substitution(list(sym_x.reshape(-1)), x))
    wrt = {k: (list(array.reshape(-1)), array.shape) for k, array in {**sym, "x": sym_x}.items()}
    exact = exact_gradients(objective, wrt, subs)
    tensors = tuple(TensorError(k, tuple(exact[k].shape), _error(analytic[k], exact[k]),
                                _error(numeric[k], exact[k])) for k in wrt)
    return LayerEvidence(name, instance, tensors)
