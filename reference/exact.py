"""The exact twins of the models' tables: every activation and loss as a SymPy expression.

Each row is keyed by the same name as its NumPy row in ``gradcheck.models.activations``
(``ACTIVATIONS``, ``VECTOR_ACTIVATIONS``) and ``gradcheck.models.losses`` (``LOSSES``);
a test fails if a name is missing on either side. A row holds the definition only; SymPy
derives the derivative (``derive.py``). Where a classic identity exists the row also
states the derivative written through the function itself (``y = f(z)``) or through the
named helpers ``sigma`` (logistic), ``Phi`` (normal CDF) and ``phi`` (normal density), so
the report can show σ' = σ(1−σ) next to what SymPy found, and a test can prove them equal.

Piecewise rows list their ``branch_points``: where the definition switches branch (a kink
only where the derivative jumps there; ``gradcheck.models`` lists those as ``kinks``).
At a branch point the rows take the value of the models' convention (relu'(0) = 0,
hard_tanh'(±1) = 0), though the tests never compare there: no derivative exists.
The one-sided derivatives there are computed (``one_sided``), not declared, so a row
that is C¹ at its switch point (elu, softsign, huber) is recognised as differentiable.

>>> from gradcheck.reference.exact import EXACT_ACTIVATIONS, z
>>> EXACT_ACTIVATIONS["tanh"].expr
tanh(z)
>>> one_sided(EXACT_ACTIVATIONS["relu"].expr, z, 0)
(0, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

__all__ = [
    "EXACT_ACTIVATIONS",
    "EXACT_LOSSES",
    "EXACT_VECTOR_ACTIVATIONS",
    "HELPERS",
    "ExactActivation",
    "ExactLoss",
    "ExactVectorActivation",
    "Phi",
    "expand_helpers",
    "one_sided",
    "p",
    "phi",
    "sigma",
    "t",
    "y",
    "z",
]

z = sp.Symbol("z", real=True)
"""The pre-activation (input of every activation row)."""
y = sp.Symbol("y", real=True)
"""The activation output ``y = f(z)``, used by identity forms."""
p = sp.Symbol("p", real=True)
"""One prediction entry (input of every elementwise loss row)."""
t = sp.Symbol("t", real=True)
"""One target entry."""

i, j, k = sp.symbols("i j k", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
P, T, X, Z = (sp.IndexedBase(name) for name in "ptxz")
"""Indexed outputs, targets, logits and inputs, for the summed display forms."""

sigma = sp.Function("sigma")
"""The logistic function σ, kept by name in identity forms (expanded by ``expand_helpers``)."""
Phi = sp.Function("Phi")
"""The standard normal CDF Φ."""
phi = sp.Function("phi")
"""The standard normal density φ."""

_u = sp.Dummy("u", real=True)
HELPERS: dict[sp.FunctionClass, sp.Lambda] = {
    sigma: sp.Lambda(_u, 1 / (1 + sp.exp(-_u))),
    Phi: sp.Lambda(_u, (1 + sp.erf(_u / sp.sqrt(2))) / 2),
    phi: sp.Lambda(_u, sp.exp(-_u**2 / 2) / sp.sqrt(2 * sp.pi)),
}


def expand_helpers(expr: sp.Expr) -> sp.Expr:
    """Replace the named helpers σ, Φ, φ in ``expr`` by their definitions.

    >>> expand_helpers(sigma(z))
    1/(1 + exp(-z))
    """
    for name, definition in HELPERS.items():
        expr = expr.replace(name, definition)
    return expr


def one_sided(expr: sp.Expr, var: sp.Symbol, at: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Left and right derivatives of the piecewise ``expr`` at ``at``: ``(f'(at⁻), f'(at⁺))``.

    Each side is the derivative of the branch that is active just beside ``at`` (branch
    points of the rows are at least 1e-6 apart), evaluated at ``at`` itself. SymPy's
    ``limit`` is not used: it is unreliable on ``Piecewise``.

    >>> one_sided(sp.Piecewise((-z, z < 0), (2 * z, True)), z, 0)
    (-1, 2)
    """
    derivative = sp.piecewise_fold(sp.diff(sp.piecewise_fold(expr.rewrite(sp.Piecewise)), var))
    at = sp.nsimplify(at)
    sides = []
    for offset in (-sp.Rational(1, 10**6), sp.Rational(1, 10**6)):
        branch = derivative
        if isinstance(derivative, sp.Piecewise):
            branch = next(e for e, cond in derivative.args
                          if cond.subs(var, at + offset) == sp.true)
        sides.append(sp.nsimplify(branch.subs(var, at)))
    return sides[0], sides[1]


@dataclass(frozen=True)
class ExactActivation:
    """One elementwise activation ``f(z)`` as a SymPy expression in ``z``.

    ``identity`` is the classic form of ``f'(z)`` (in ``y = f(z)``, ``z`` and the helpers
    σ, Φ, φ) or ``None``; ``branch_points`` are the points where ``expr`` switches branch.
    """

    name: str
    expr: sp.Expr
    identity: sp.Expr | None = None
    branch_points: tuple[sp.Expr, ...] = ()


@dataclass(frozen=True)
class ExactVectorActivation:
    """A vector-valued activation: ``expr(xs)`` gives the outputs for the input symbols;
    ``display`` is output ``i`` written with indexed inputs (for documents)."""

    name: str
    expr: Callable[[Sequence[sp.Symbol]], list[sp.Expr]]
    display: sp.Expr


@dataclass(frozen=True)
class ExactLoss:
    """One loss, per sample, summed over the output axis (the batch mean is taken outside).

    Elementwise losses give ``element`` (an expression in ``p`` and ``t``); the others
    give ``per_sample(preds, targets)`` directly. ``identity`` is the classic form of the
    gradient with respect to one prediction entry, or ``None``. ``target`` and ``pred``
    use the vocabulary of the models' rows: ``target`` is ``"real"``, ``"binary"`` (in
    [0, 1]) or ``"class"`` (one-hot or probability rows); ``pred`` is ``"real"`` or
    ``"probability"`` (in (0, 1)).
    """

    name: str
    element: sp.Expr | None = None
    vector: Callable[[Sequence[sp.Expr], Sequence[sp.Expr]], sp.Expr] | None = None
    identity: sp.Expr | None = None
    target: str = "real"
    pred: str = "real"
    display: sp.Expr | None = None

    def summed(self) -> sp.Expr:
        """The per-sample loss as a SymPy ``Sum`` over ``k = 1..K`` (for documents).

        >>> EXACT_LOSSES["mse"].summed()
        Sum((p[k] - t[k])**2, (k, 1, K))
        """
        if self.element is not None:
            return sp.Sum(self.element.subs({p: P[k], t: T[k]}, simultaneous=True), (k, 1, K))
        assert self.display is not None, f"loss {self.name!r} declares no display form"
        return self.display

    def per_sample(self, preds: Sequence[sp.Expr], targets: Sequence[sp.Expr]) -> sp.Expr:
        """The loss of one sample: ``preds`` and ``targets`` of equal length ``K``."""
        if len(preds) != len(targets):
            raise ValueError(f"loss {self.name!r}: got {len(preds)} predictions but "
                             f"{len(targets)} targets; pass one target per output")
        if self.element is not None:
            return sp.Add(*[self.element.subs({p: pk, t: tk}, simultaneous=True)
                            for pk, tk in zip(preds, targets, strict=True)])
        assert self.vector is not None, f"loss {self.name!r} declares neither element nor vector"
        return self.vector(preds, targets)


def _activations(*rows: ExactActivation) -> dict[str, ExactActivation]:
    return {row.name: row for row in rows}


# SELU's constants, as exact rationals of the published 31-digit decimals
SELU_SCALE = sp.Rational("1.0507009873554804934193349852946")
SELU_ALPHA = sp.Rational("1.6732632423543772848170429916717")
GELU_TANH_K = sp.Rational(44715, 10**6)
_G = sp.sqrt(2 / sp.pi) * (z + GELU_TANH_K * z**3)

EXACT_ACTIVATIONS: dict[str, ExactActivation] = _activations(
    ExactActivation("identity", z, identity=sp.Integer(1)),
    ExactActivation("sigmoid", 1 / (1 + sp.exp(-z)), identity=y * (1 - y)),
    ExactActivation("tanh", sp.tanh(z), identity=1 - y**2),
    ExactActivation("relu", sp.Piecewise((z, z > 0), (0, True)), branch_points=(sp.Integer(0),)),
    ExactActivation("leaky_relu", sp.Piecewise((z, z > 0), (z / 100, True)),
                    branch_points=(sp.Integer(0),)),
    ExactActivation("elu", sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True)),
                    identity=sp.Piecewise((1, z > 0), (y + 1, True)), branch_points=(sp.Integer(0),)),
    ExactActivation("selu", SELU_SCALE * sp.Piecewise((z, z > 0),
                                                      (SELU_ALPHA * (sp.exp(z) - 1), True)),
                    identity=sp.Piecewise((SELU_SCALE, z > 0), (y + SELU_SCALE * SELU_ALPHA, True)),
                    branch_points=(sp.Integer(0),)),
    ExactActivation("softplus", sp.log(1 + sp.exp(z)), identity=sigma(z)),
    ExactActivation("silu", z / (1 + sp.exp(-z)), identity=sigma(z) + y * (1 - sigma(z))),
    ExactActivation("gelu", z * (1 + sp.erf(z / sp.sqrt(2))) / 2, identity=Phi(z) + z * phi(z)),
    ExactActivation("gelu_tanh", z / 2 * (1 + sp.tanh(_G))),
    ExactActivation("softsign", z / (1 + sp.Abs(z)), identity=(1 - sp.Abs(y))**2,
                    branch_points=(sp.Integer(0),)),
    ExactActivation("hard_tanh", sp.Piecewise((z, (z > -1) & (z < 1)), (-1, z <= -1), (1, True)),
                    branch_points=(sp.Integer(-1), sp.Integer(1))),
)


def _softmax(xs: Sequence[sp.Symbol]) -> list[sp.Expr]:
    total = sp.Add(*[sp.exp(x) for x in xs])
    return [sp.exp(x) / total for x in xs]


EXACT_VECTOR_ACTIVATIONS: dict[str, ExactVectorActivation] = {
    "softmax": ExactVectorActivation(
        "softmax", _softmax, display=sp.exp(Z[i]) / sp.Sum(sp.exp(Z[j]), (j, 1, K))),
}


def _softmax_ce(logits: Sequence[sp.Expr], targets: Sequence[sp.Expr]) -> sp.Expr:
    # −Σ t_k log softmax(x)_k, with log softmax(x)_k = x_k − log Σ_j e^{x_j}
    log_total = sp.log(sp.Add(*[sp.exp(x) for x in logits]))
    return -sp.Add(*[tk * (xk - log_total) for xk, tk in zip(logits, targets, strict=True)])


_r = p - t
_softmax_ce_display = -sp.Sum(T[k] * sp.log(sp.exp(X[k]) / sp.Sum(sp.exp(X[j]), (j, 1, K))),
                              (k, 1, K))
_sigmoid_p = 1 / (1 + sp.exp(-p))
EXACT_LOSSES: dict[str, ExactLoss] = {row.name: row for row in (
    ExactLoss("mse", element=(p - t)**2, identity=2 * (p - t)),
    ExactLoss("half_sse", element=(t - p)**2 / 2, identity=p - t),
    ExactLoss("bce", element=-(t * sp.log(p) + (1 - t) * sp.log(1 - p)),
              identity=(p - t) / (p * (1 - p)), target="binary", pred="probability"),
    ExactLoss("bce_logits",
              element=-(t * sp.log(_sigmoid_p) + (1 - t) * sp.log(1 - _sigmoid_p)),
              identity=sigma(p) - t, target="binary"),
    ExactLoss("cce", element=-t * sp.log(p), identity=-t / p, target="class",
              pred="probability"),
    ExactLoss("softmax_ce", vector=_softmax_ce, target="class",
              display=_softmax_ce_display),
    ExactLoss("huber", element=sp.Piecewise((_r**2 / 2, sp.Abs(_r) <= 1),
                                            (sp.Abs(_r) - sp.Rational(1, 2), True)),
              identity=sp.Piecewise((p - t, sp.Abs(p - t) <= 1), (sp.sign(p - t), True))),
)}
