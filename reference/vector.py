"""Vector-valued identities, derived by SymPy and proven equal to their classic forms.

- the softmax Jacobian ``∂s_i/∂z_j = s_i(δ_ij − s_j)``;
- the fused softmax cross-entropy gradient ``∂ℓ/∂z = s·Σt − t``, which is ``s − t``
  when the targets sum to 1;
- sigmoid followed by binary cross-entropy: ``∂ℓ/∂z = σ(z) − t``;
- both squared-error conventions of the models' table, for a batch of ``N`` samples:
  ``mse`` (``(1/N) Σ_n Σ_k (p − t)²``, gradient ``2(p − t)/N``) and ``half_sse``
  (``(1/N) Σ_n ½ Σ_k (t − p)²``, gradient ``(p − t)/N``), plus the mean over all
  entries some frameworks use (gradient ``2(p − t)/(NK)``).

Each is an :class:`Identity`: what SymPy derived, the classic form, and the proof of
their equality (``"symbolic"`` when ``simplify`` reduces every entry of the difference to
zero).

>>> softmax_jacobian(3).proof
'symbolic, for K = 3 and every z'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from gradcheck.reference.document import Block, Heading, Math, MathBlock, Paragraph
from gradcheck.reference.exact import EXACT_LOSSES, EXACT_VECTOR_ACTIVATIONS

__all__ = [
    "Identity",
    "all_identities",
    "fused_sigmoid_bce",
    "fused_softmax_ce",
    "softmax_jacobian",
    "squared_error_conventions",
]


@dataclass(frozen=True)
class Identity:
    """``derived`` (SymPy's result) equals ``classic`` under ``condition``, as ``proof`` shows.

    ``lhs`` is the quantity both sides describe, as ``(latex, plain text)``.
    """

    title: str
    lhs: tuple[str, str]
    derived: sp.Basic
    classic: sp.Basic
    condition: str
    proof: str
    explanation: str

    def blocks(self) -> list[Block]:
        """Heading, explanation, and both forms as displayed formulas."""
        label = f"classic form ({self.proof} proof" + (
            f"; when {self.condition})" if self.condition else ")")
        return [Heading(3, self.title, anchor="identity-" + "-".join(self.title.lower().split())),
                Paragraph.of(self.explanation),
                MathBlock((self._line(self.derived), self._line(self.classic)),
                          ("derived by SymPy", label))]

    def _line(self, rhs: sp.Basic) -> Math:
        latex, text = self.lhs
        right = Math.of(rhs)
        return Math(latex=f"{latex} = {right.latex}", text=f"{text} = {right.text}",
                    sides=(latex, right.latex))

    def _repr_markdown_(self) -> str:
        from gradcheck.reference.render_md import render_blocks
        return render_blocks(self.blocks())


def _prove_zero(difference: sp.Matrix | sp.Expr, what: str) -> str:
    entries = difference if isinstance(difference, sp.MatrixBase) else [difference]
    for i, entry in enumerate(entries):
        if sp.simplify(entry) != 0:
            raise AssertionError(f"{what}: entry {i} of the difference does not vanish: {entry}")
    return "symbolic"


@cache
def softmax_jacobian(k: int = 3) -> Identity:
    """The ``k×k`` Jacobian of softmax against ``s_i(δ_ij − s_j)``."""
    zs = sp.symbols(f"z_1:{k + 1}", real=True)
    s = sp.Matrix(EXACT_VECTOR_ACTIVATIONS["softmax"].expr(zs))
    derived = s.jacobian(zs)
    classic = sp.Matrix(k, k, lambda i, j: s[i] * (sp.KroneckerDelta(i, j) - s[j]))
    symbols = sp.Matrix(k, k, lambda i, j: sp.Symbol(f"s_{i + 1}") * (
        sp.KroneckerDelta(i, j) - sp.Symbol(f"s_{j + 1}")))
    proof = _prove_zero(derived - classic, "softmax Jacobian") + f", for K = {k} and every z"
    return Identity(f"Softmax Jacobian ({k} classes)", (r"\frac{\partial s}{\partial z}", "∂s/∂z"),
                    sp.simplify(derived), symbols, "", proof,
                    "SymPy differentiates every output of softmax with respect to every input; "
                    "each entry equals s_i(δ_ij − s_j), with s = softmax(z).")


@cache
def fused_softmax_ce(k: int = 3) -> Identity:
    """The gradient of ``softmax_ce`` on logits against ``s − t`` (targets summing to 1)."""
    zs = sp.symbols(f"z_1:{k + 1}", real=True)
    ts = sp.symbols(f"t_1:{k + 1}", real=True)
    loss = EXACT_LOSSES["softmax_ce"].per_sample(zs, ts)
    derived = sp.Matrix([sp.diff(loss, zi) for zi in zs])
    s = sp.Matrix(EXACT_VECTOR_ACTIVATIONS["softmax"].expr(zs))
    general = s * sp.Add(*ts) - sp.Matrix(ts)
    _prove_zero(derived - general, "softmax cross-entropy, any targets")
    on_simplex = {ts[-1]: 1 - sp.Add(*ts[:-1])}
    proof = _prove_zero((derived - (s - sp.Matrix(ts))).subs(on_simplex),
                        "softmax cross-entropy, targets summing to 1") + (
        f", for K = {k}, every z and t")
    sym_s = sp.Matrix(sp.symbols(f"s_1:{k + 1}"))
    return Identity(f"Softmax with cross-entropy ({k} classes)",
                    (r"\frac{\partial \ell}{\partial z}", "∂ℓ/∂z"),
                    sym_s * sp.Add(*ts) - sp.Matrix(ts),
                    sym_s - sp.Matrix(ts), f"t_1 + … + t_{k} = 1", proof,
                    "Differentiating −Σ t_k log softmax(z)_k through the softmax gives "
                    "s·Σt − t for any targets; for one-hot or probability targets the sum is 1 "
                    "and the gradient is s − t: the Jacobian never has to be formed.")


@cache
def fused_sigmoid_bce() -> Identity:
    """``bce(σ(z), t)`` differentiated with respect to the logit ``z``: ``σ(z) − t``."""
    zv, tv = sp.symbols("z t", real=True)
    sig = 1 / (1 + sp.exp(-zv))
    loss = EXACT_LOSSES["bce"].per_sample([sig], [tv])
    derived = sp.diff(loss, zv)
    proof = _prove_zero(derived - (sig - tv), "sigmoid with binary cross-entropy") + (
        ", for every z and t")
    return Identity("Sigmoid with binary cross-entropy",
                    (r"\frac{\partial \ell}{\partial z}", "∂ℓ/∂z"),
                    sp.simplify(derived), sp.Function("sigma")(zv) - tv, "", proof,
                    "The 1/(p(1−p)) of the cross-entropy cancels σ' = σ(1−σ): the gradient "
                    "with respect to the logit is σ(z) − t (the bce_logits row).")


@cache
def squared_error_conventions() -> tuple[Identity, ...]:
    """Gradients of the batch losses ``mse``, ``half_sse`` and the all-entries mean, proven
    for symbolic ``N`` and ``K``: SymPy differentiates the double ``Sum`` with respect to
    one entry ``p[i, j]`` and the branch for indices in range (``1 ≤ i ≤ N``, ``1 ≤ j ≤ K``)
    simplifies to the classic form."""
    n, k, i, j = sp.symbols("n k i j", integer=True, positive=True)
    big_n, big_k = sp.symbols("N K", integer=True, positive=True)
    ps, ts = sp.IndexedBase("p"), sp.IndexedBase("t")
    r = ps[n, k] - ts[n, k]
    cases = (
        ("mse", r**2 / big_n, 2 / big_n, "mean over the batch of Σ_k (p − t)²"),
        ("half_sse", (-r) ** 2 / 2 / big_n, 1 / big_n, "mean over the batch of ½ Σ_k (t − p)²"),
        ("mse", r**2 / (big_n * big_k), 2 / (big_n * big_k),
         "mean over all N·K entries of (p − t)² (as some frameworks define MSE)"),
    )
    out = []
    for _name, term, factor, words in cases:
        batch = sp.Sum(term, (n, 1, big_n), (k, 1, big_k))
        derived = sp.piecewise_fold(sp.diff(batch, ps[i, j]).doit())
        inside = derived
        if isinstance(derived, sp.Piecewise):  # the branch for i, j in range
            inside = next(e for e, cond in derived.args if cond != sp.true)
        classic = factor * (ps[i, j] - ts[i, j])
        proof = _prove_zero(inside - classic, f"{words} gradient")
        p_sym, t_sym = sp.symbols("p t")
        out.append(Identity(f"Squared error: {words}", (r"\frac{\partial L}{\partial p}", "∂L/∂p"),
                            sp.simplify(inside).subs({ps[i, j]: p_sym, ts[i, j]: t_sym}),
                            factor * (p_sym - t_sym), "", proof + ", for every N and K",
                            f"L is the {words}, written as a double sum over N samples and "
                            "K outputs with N and K symbolic; SymPy differentiates it with "
                            "respect to one entry p = p_ij."))
    return tuple(out)


def all_identities() -> list[Identity]:
    """Every identity of this module, in report order."""
    return [softmax_jacobian(3), fused_softmax_ce(3), fused_sigmoid_bce(),
            *squared_error_conventions()]
