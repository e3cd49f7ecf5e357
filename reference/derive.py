"""Derivations: SymPy differentiates a row and records the rules it applied on the way.

:func:`derive_activation` and :func:`derive_loss` return a :class:`Derivation` holding the
definition, the chain-rule steps (outermost first, one per sub-expression, each written
with the rule applied and then evaluated), SymPy's derivative, a simplified form, the
classic identity form where the row declares one (and how it was proven equal), and
the one-sided derivatives at every branch point. A derivation renders in Jupyter
(``_repr_markdown_``, ``_repr_latex_``) and as report blocks (:meth:`Derivation.blocks`).

>>> d = derive_activation("sigmoid")
>>> d.steps[0].rule
'power rule and chain rule'
>>> d.identity_proof
'symbolic'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import mpmath
import sympy as sp

from gradcheck.reference.document import Block, Heading, Math, MathBlock, Paragraph, Table
from gradcheck.reference.exact import (
    EXACT_ACTIVATIONS,
    EXACT_LOSSES,
    expand_helpers,
    one_sided,
    p,
    t,
    y,
    z,
)

__all__ = [
    "Derivation",
    "Kink",
    "Step",
    "chain_steps",
    "derive_activation",
    "derive_loss",
    "equal_everywhere",
    "single_neuron",
    "softmax_ce_symbols",
]

MAX_STEPS = 12
"""Steps recorded per derivation: enough to follow, short enough to read."""
SIMPLIFY_MAX_OPS = 40
"""Expressions with more operations are not given to ``sp.simplify`` (too slow)."""


@dataclass(frozen=True)
class Step:
    """``d/dvar target = applied = result``: one rule applied to one sub-expression."""

    rule: str
    target: sp.Expr
    applied: sp.Expr
    result: sp.Expr


@dataclass(frozen=True)
class Kink:
    """A branch point ``at`` with the left and right derivatives there."""

    at: sp.Expr
    left: sp.Expr
    right: sp.Expr

    @property
    def differentiable(self) -> bool:
        """True when both one-sided derivatives agree (a C¹ join, not a kink)."""
        return bool(sp.simplify(self.left - self.right) == 0)


def _is_simple(expr: sp.Expr, var: sp.Symbol) -> bool:
    """True when d/dvar expr is immediate (a constant, or ``c·var``): shown evaluated."""
    return not expr.has(var) or (not sp.diff(expr, var).has(var) and expr.is_polynomial(var))


def _d(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """Unevaluated derivative of a non-trivial sub-expression, evaluated one otherwise."""
    return sp.diff(expr, var) if _is_simple(expr, var) else sp.Derivative(expr, var)


def _rule(expr: sp.Expr, var: sp.Symbol) -> tuple[str, sp.Expr, list[sp.Expr]] | None:
    """The rule SymPy applies at the root of ``expr``: (name, rule applied, sub-expressions)."""
    args = [a for a in expr.args if isinstance(a, sp.Expr) and a.has(var)]
    if isinstance(expr, sp.Piecewise):
        branches = [(sp.Derivative(e, var) if e.has(var) else sp.Integer(0), c)
                    for e, c in expr.args]
        return "differentiate each branch", sp.Piecewise(*branches, evaluate=False), \
            [e for e, _ in expr.args if not _is_simple(e, var)]
    if isinstance(expr, sp.Add):
        return "sum rule", sp.Add(*[_d(a, var) for a in args], evaluate=False), args
    if isinstance(expr, sp.Mul):
        const = sp.Mul(*[a for a in expr.args if not a.has(var)])
        if len(args) == 1:
            return "constant factor rule", sp.Mul(const, _d(args[0], var), evaluate=False), args
        terms = [sp.Mul(const, *args[:i], _d(a, var), *args[i + 1:], evaluate=False)
                 for i, a in enumerate(args)]
        return "product rule", sp.Add(*terms, evaluate=False), args
    if isinstance(expr, sp.Pow):
        base, exp = expr.args
        if not exp.has(var):
            return ("power rule and chain rule",
                    sp.Mul(exp, sp.Pow(base, exp - 1), _d(base, var), evaluate=False), [base])
        if not base.has(var):
            return ("exponential rule and chain rule",
                    sp.Mul(expr, sp.log(base), _d(exp, var), evaluate=False), [exp])
        return ("general power rule", sp.Mul(expr, sp.Add(
            sp.Mul(_d(exp, var), sp.log(base), evaluate=False),
            sp.Mul(exp, _d(base, var), sp.Pow(base, -1), evaluate=False), evaluate=False),
            evaluate=False), [base, exp])
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        inner = expr.args[0]
        u = sp.Dummy("u", real=True)
        outer = sp.diff(expr.func(u), u).subs(u, inner)
        name = f"derivative of {expr.func.__name__}"
        if inner == var:
            return name, outer, []
        return (f"chain rule ({name})", sp.Mul(outer, _d(inner, var), evaluate=False), [inner])
    return None


def chain_steps(expr: sp.Expr, var: sp.Symbol, limit: int = MAX_STEPS) -> tuple[Step, ...]:
    """The rules applied to differentiate ``expr``, outermost first, breadth-first, each
    distinct sub-expression once, at most ``limit`` steps.

    >>> [s.rule for s in chain_steps(sp.exp(-z**2), z)]
    ['chain rule (derivative of exp)', 'constant factor rule', 'power rule and chain rule']
    """
    steps: list[Step] = []
    queue, seen = [expr], set()
    while queue and len(steps) < limit:
        node = queue.pop(0)
        if _is_simple(node, var) or node == var or node in seen:
            continue  # a sub-expression met twice (log Σ e^x in softmax_ce) is shown once
        seen.add(node)
        found = _rule(node, var)
        if found is None:
            continue
        rule, applied, children = found
        steps.append(Step(rule, node, applied, sp.diff(node, var)))
        queue.extend(c for c in children if not _is_simple(c, var))
    return tuple(steps)


def _functions(expr: sp.Expr) -> set[type]:
    return {type(f) for f in expr.atoms(sp.Function)}


def _split_abs(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """Write ``|var|`` and ``sign(var)`` as two branches ``var < 0`` / ``var ≥ 0``.

    Only when ``var`` is their sole argument, and only if the right branch is also right
    at ``var = 0`` (where ``sign`` is 0, not 1).
    """
    if {a.args[0] for a in expr.atoms(sp.Abs, sp.sign)} != {var}:
        return expr
    pos = expr.subs({sp.Abs(var): var, sp.sign(var): 1})
    neg = expr.subs({sp.Abs(var): -var, sp.sign(var): -1})
    if sp.simplify(pos.subs(var, 0) - expr.subs(var, 0)) != 0:
        return expr
    return sp.Piecewise((neg, var < 0), (pos, True))


def _simplify(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """A short equal form, branch by branch, that uses no function the input does not.

    ``sp.simplify`` alone turns σ' into 1/(4 cosh²(z/2)): correct, but no reader expects
    it, so candidates bringing in new functions are dropped. Large expressions
    (gelu_tanh) skip ``simplify``, which costs seconds there and finds nothing shorter.
    """
    folded = sp.piecewise_fold(_split_abs(expr, var))
    if isinstance(folded, sp.Piecewise):
        return sp.Piecewise(*[(_simplify(e, var), c) for e, c in folded.args])
    allowed = _functions(folded)
    candidates = [folded, sp.factor(sp.together(folded)), sp.cancel(folded)]
    if sp.count_ops(folded) <= SIMPLIFY_MAX_OPS:
        candidates.append(sp.simplify(folded))
    return min((c for c in candidates if _functions(c) <= allowed), key=sp.count_ops)


def equal_everywhere(a: sp.Expr, b: sp.Expr, var: sp.Symbol, lo: float = -8, hi: float = 8,
                     points: int = 161, extra: dict[sp.Symbol, sp.Expr] | None = None,
                     pins: dict[sp.Symbol, sp.Expr] | None = None) -> str:
    """Prove ``a == b`` symbolically, else check it at ``points`` points to 40 digits.

    ``extra`` states conditions applied first (``t_3 = 1 − t_1 − t_2``), in order; every
    other symbol stays symbolic in the proof. Only if ``simplify`` cannot prove it are the
    ``pins`` (numbers for the symbols besides ``var``) substituted for the numeric check,
    and the label then names them. Returns ``"symbolic"`` or ``"numeric (N points in
    [lo, hi], 40 digits; t = 3/10)"``; raises ``AssertionError`` at the first point where
    they differ.

    >>> equal_everywhere(sp.sin(z)**2 + sp.cos(z)**2, sp.Integer(1), z)
    'symbolic'
    """
    for symbol, value in (extra or {}).items():  # in order: later values may use earlier
        a, b = a.subs(symbol, value), b.subs(symbol, value)
    difference = sp.piecewise_fold(a - b)
    if not isinstance(difference, sp.Piecewise):
        if sp.simplify(difference) == 0:
            return "symbolic"
    elif all(sp.simplify(branch) == 0 for branch, _ in difference.args):
        return "symbolic"
    for symbol, value in (pins or {}).items():
        a, b = a.subs(symbol, value), b.subs(symbol, value)
    free = (a - b).free_symbols - {var}
    if free:
        raise ValueError(f"equal_everywhere: pin {', '.join(sorted(map(str, free)))} for the "
                         f"numeric check (pins=...)")
    with mpmath.workdps(50):
        for k in range(points):
            # points avoid the branch points of the rows (integers, 0)
            at = sp.Rational(lo) + (sp.Rational(hi) - lo) * sp.Rational(2 * k + 1, 2 * points + 1)
            va, vb = (sp.N(e.subs(var, at), 45) for e in (a, b))
            if abs(va - vb) > sp.Float(10) ** -40 * (1 + abs(vb)):
                raise AssertionError(f"forms differ at {var} = {at}: {va} != {vb}")
    pinned = "".join(f"; {s} = {v}" for s, v in (pins or {}).items())
    return f"numeric ({points} points of {var} in [{lo:g}, {hi:g}], 40 digits{pinned})"


@dataclass(frozen=True)
class Derivation:
    """Everything SymPy found about one row: definition, steps, derivative, identity, and the
    one-sided derivatives at its branch points.

    ``var`` is the variable differentiated; ``expr`` the definition; ``derivative`` SymPy's
    raw result and ``simplified`` a shorter equal form; ``identity`` (``None`` when the row
    has no classic form) the derivative written through the function itself, proven equal
    to ``derivative`` as recorded in ``identity_proof``; ``identity_condition`` states when
    the identity holds if not always.
    """

    name: str
    kind: str
    var: sp.Symbol
    expr: sp.Expr
    steps: tuple[Step, ...]
    derivative: sp.Expr
    simplified: sp.Expr
    identity: sp.Expr | None
    identity_proof: str
    identity_condition: str
    #: One-sided derivatives at every branch point (a kink where they differ).
    branch_points: tuple[Kink, ...]
    function_symbol: sp.Expr

    def blocks(self) -> list[Block]:
        """The derivation as report blocks (heading, definition, steps, results, kinks)."""
        f, v = self.function_symbol, self.var
        out: list[Block] = [Heading(3, self.name, anchor=f"{self.kind}-{self.name}"),
                            Paragraph.of("Definition: ", Math.equation(f, self.expr))]
        if self.steps:
            out.append(Paragraph.of("Chain-rule steps, as SymPy takes them (outermost first):"))
            out.append(MathBlock(
                tuple(Math.chain(sp.Derivative(s.target, v), s.applied, s.result)
                      for s in self.steps),
                tuple(s.rule for s in self.steps)))
        kinks = [k for k in self.branch_points if not k.differentiable]
        lines = [Math.equation(sp.Derivative(f, v), self.simplified)]
        where = ", ".join(f"{v} = {k.at}" for k in kinks)
        labels = ["simplified derivative" + (f" (where it exists: not at {where}, where the "
                                             "value shown is a convention)" if kinks else "")]
        if self.identity is not None:
            lines.append(Math.equation(sp.Derivative(f, v), self.identity))
            labels.append(f"identity form ({self.identity_proof} proof of equality"
                          + (f"; holds when {self.identity_condition}" if self.identity_condition
                             else "") + ")")
        out.append(MathBlock(tuple(lines), tuple(labels)))
        if self.branch_points:
            out.append(Table(("branch point", "left derivative", "right derivative",
                              "differentiable"),
                             tuple((Math.of(sp.Eq(v, k.at, evaluate=False)), Math.of(k.left),
                                    Math.of(k.right), "yes" if k.differentiable else "no (kink)")
                                   for k in self.branch_points)))
        for k in kinks:
            value = self.simplified.subs(v, k.at)
            out.append(Paragraph.of(
                "Convention at ", Math.of(sp.Eq(v, k.at, evaluate=False)), ": no derivative "
                "exists there (the one-sided derivatives are ", Math.of(k.left), " and ",
                Math.of(k.right), "). The value ", Math.of(value), " used there, by this "
                "formula and by gradcheck.models, is a choice: any value between the two "
                "one-sided derivatives is a valid subgradient, and a gradient checker should "
                "report the point as a kink rather than compare there."))
        return out

    def _repr_markdown_(self) -> str:
        from gradcheck.reference.render_md import render_blocks
        return render_blocks(self.blocks())

    def _repr_latex_(self) -> str:
        f = self.function_symbol
        d = rf"\frac{{d}}{{d{sp.latex(self.var)}}}"
        rows = [f"{sp.latex(f)} &= {sp.latex(self.expr)}",
                f"{d} {sp.latex(f)} &= {sp.latex(self.simplified)}"]
        if self.identity is not None:
            rows.append(f"&= {sp.latex(self.identity)}")
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + "\\end{aligned}$$"


def _derivation(name: str, kind: str, var: sp.Symbol, expr: sp.Expr, f: sp.Expr,
                identity: sp.Expr | None, identity_value: sp.Expr | None, condition: str,
                branch_points: tuple[sp.Expr, ...], extra: dict | None = None,
                interval: tuple[int, int] = (-8, 8), pins: dict | None = None) -> Derivation:
    derivative = sp.diff(expr, var)
    proof = ""
    if identity is not None and identity_value is not None:
        proof = equal_everywhere(identity_value, derivative, var, *interval, extra=extra,
                                 pins=pins)
        conditioned = [e.subs(extra or {}) for e in (identity_value, derivative)]
        others = sorted(map(str, set().union(*(e.free_symbols for e in conditioned)) - {var}))
        if proof == "symbolic" and others:
            proof = f"symbolic, for every {', '.join(others)}"
    return Derivation(
        name=name, kind=kind, var=var, expr=expr, steps=chain_steps(expr, var),
        derivative=derivative, simplified=_simplify(derivative, var), identity=identity,
        identity_proof=proof, identity_condition=condition,
        branch_points=tuple(Kink(at, *one_sided(expr, var, at)) for at in branch_points),
        function_symbol=f)


@cache
def derive_activation(name: str) -> Derivation:
    """Derive the activation ``name`` of ``EXACT_ACTIVATIONS`` (cached).

    >>> derive_activation("tanh").identity
    1 - y**2
    """
    if name not in EXACT_ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; known: {', '.join(EXACT_ACTIVATIONS)}")
    row = EXACT_ACTIVATIONS[name]
    value = None if row.identity is None else expand_helpers(row.identity).subs(y, row.expr)
    return _derivation(name, "activation", z, row.expr, sp.Function("f")(z), row.identity,
                       value, "", row.branch_points)


def softmax_ce_symbols(k: int = 3) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Symbol, ...]]:
    """Logit and target symbols ``(x_1..x_k), (t_1..t_k)`` for the vector losses."""
    return (sp.symbols(f"x_1:{k + 1}", real=True), sp.symbols(f"t_1:{k + 1}", real=True))


@cache
def derive_loss(name: str) -> Derivation:
    """Derive the loss ``name`` of ``EXACT_LOSSES`` with respect to one prediction (cached).

    Elementwise losses are derived for one entry ``ℓ(p, t)``; ``softmax_ce`` for the first
    logit of three, whose identity form ``s_1 − t_1`` holds when the targets sum to 1.

    >>> derive_loss("half_sse").simplified
    p - t
    """
    if name not in EXACT_LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(EXACT_LOSSES)}")
    row = EXACT_LOSSES[name]
    ell = sp.Function("ell")
    if row.element is not None:
        value = None if row.identity is None else expand_helpers(row.identity)
        # proven for symbolic t; were simplify to fail, checked numerically at t = 3/10
        interval = (0, 1) if row.pred == "probability" else (-8, 8)
        return _derivation(name, "loss", p, row.element, ell(p, t), row.identity, value, "",
                           (), interval=interval, pins={t: sp.Rational(3, 10)})
    xs, ts = softmax_ce_symbols(3)
    expr = row.per_sample(xs, ts)
    total = sp.Add(*[sp.exp(x) for x in xs])
    s1 = sp.Symbol("s_1")
    fused = sp.exp(xs[0]) / total - ts[0]
    return _derivation(name, "loss", xs[0], expr, ell(sp.Symbol("x"), t), s1 - ts[0],
                       fused, "the targets sum to 1 (t_3 = 1 − t_1 − t_2)", (),
                       extra={ts[2]: 1 - ts[0] - ts[1]},
                       pins={ts[0]: sp.Rational(1, 5), ts[1]: sp.Rational(1, 2),
                             xs[1]: sp.Rational(1, 3), xs[2]: -sp.Rational(2, 3)})


@dataclass(frozen=True)
class SingleNeuron:
    """The one-neuron derivation ``y = f(wx)``, ``E = ½(t − y)²``, generated by SymPy."""

    activation: str | None
    error: sp.Expr
    gradient: sp.Expr
    specialised: sp.Expr | None

    def blocks(self) -> list[Block]:
        w, x = sp.symbols("w x", real=True)
        e_sym = sp.Symbol("E")
        out: list[Block] = [
            Paragraph.of("One neuron with input ", Math.of(x), ", weight ", Math.of(w),
                         ", output ", Math.equation(y, sp.Function("f")(w * x)),
                         " and error ", Math.equation(e_sym, self.error), ". SymPy finds:"),
            MathBlock((Math.equation(sp.Derivative(e_sym, w), self.gradient),),
                      ("chain rule through E, y and wx",))]
        if self.specialised is not None:
            out.append(MathBlock((Math.equation(sp.Derivative(e_sym, w), self.specialised),),
                                 (f"with f = {self.activation}, written with y = f(wx)",)))
        return out

    def _repr_markdown_(self) -> str:
        from gradcheck.reference.render_md import render_blocks
        return render_blocks(self.blocks())


def single_neuron(activation: str | None = "sigmoid") -> SingleNeuron:
    """Derive dE/dw for ``y = f(wx)``, ``E = ½(t − y)²``; specialise to ``activation``.

    >>> single_neuron(None).gradient
    -x*(t - f(w*x))*f'(w*x)
    """
    w, x = sp.symbols("w x", real=True)
    f = sp.Function("f")
    error = (t - f(w * x)) ** 2 / 2
    # SymPy writes f'(wx) as Subs(Derivative(f(ξ), ξ), ξ, wx): shown as f'(wx)
    gradient = sp.diff(error, w).replace(lambda e: isinstance(e, sp.Subs),
                                         lambda e: sp.Function("f'")(*e.point))
    specialised = None
    if activation is not None:
        d = derive_activation(activation)
        fprime = d.identity if d.identity is not None else d.simplified
        # the derivative of f at wx, then y = f(wx) wherever the output appears
        fprime_at = fprime.subs(z, w * x)
        specialised = sp.Mul(-x, t - y, fprime_at, evaluate=False)
        # prove the specialisation equals SymPy's own derivative of the concrete E
        output = EXACT_ACTIVATIONS[activation].expr.subs(z, w * x)
        concrete = (t - output) ** 2 / 2
        value = expand_helpers(specialised).subs(y, output)
        equal_everywhere(value, sp.diff(concrete, w), w, pins={x: sp.Rational(3, 7),
                                                               t: sp.Rational(1, 4)})
    return SingleNeuron(activation, error, gradient, specialised)
