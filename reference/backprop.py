r"""The backpropagation section of the report: the four equations derived, then verified.

For a spec ``SIZES:ACTIVATION:LOSS`` (:class:`NetworkSpec`) the section gives the network
layer by layer with shapes, derives the four equations from the chain rule (with the
Jacobians and their shapes), states the output layer's δᴸ for the spec's output (an
elementwise activation, a softmax through its Jacobian, or the fused softmax-CE and
sigmoid-BCE forms), and verifies the equations on a small network of the same depth,
activation and loss:

- up to :data:`MAX_SYMBOLIC_LAYERS` dense layers, symbolically: the loss as one SymPy
  expression in every parameter, differentiated by ``sp.diff``, against the equations
  built as SymPy expressions and the models' NumPy backprop;
- deeper (symbolic differentiation grows exponentially with depth: every unit's output
  feeds every unit above it), the symbolic check runs on the top
  :data:`MAX_SYMBOLIC_LAYERS`-layer network and the full depth is checked in 50-digit
  arithmetic: the equations evaluated at 50 digits against central differences of the
  50-digit loss (step 1e-20, error far below 1e-30) and the NumPy backprop.

Specs deeper than :data:`MAX_LAYERS` are refused by :meth:`NetworkSpec.parse`.

>>> spec = NetworkSpec.parse("3-2:tanh:mse")
>>> any(getattr(b, "anchor", "") == "backprop" for b in backprop_section(spec))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from gradcheck.reference.derive import derive_activation, derive_loss
from gradcheck.reference.document import Block, Heading, Math, MathBlock, Paragraph, Table
from gradcheck.reference.exact import (
    EXACT_ACTIVATIONS,
    EXACT_LOSSES,
    EXACT_VECTOR_ACTIVATIONS,
    y,
    z,
)
from gradcheck.reference.networks import (
    ExactNetwork,
    _models_gradient,
    backprop_gradient,
    compare_with_models,
    output_activation,
    relative_comparison,
)

__all__ = ["MAX_LAYERS", "MAX_SYMBOLIC_LAYERS", "NetworkSpec", "backprop_section",
           "precise_backprop_check"]

MAX_SYMBOLIC_LAYERS = 3
"""Dense layers up to which the equations are checked against ``sp.diff`` of the whole loss
(3 layers: about 2 s; 4 layers of GELU with Huber: 20–40 s)."""
MAX_LAYERS = 32
"""Deepest spec the report accepts (the 50-digit check is linear in depth)."""
DIGITS = 50


@dataclass(frozen=True)
class NetworkSpec:
    """``sizes:activation:loss``, for example ``64-16-16-10:sigmoid:softmax_ce``."""

    sizes: tuple[int, ...]
    activation: str
    loss: str

    @classmethod
    def parse(cls, spec: str) -> NetworkSpec:
        """Parse ``"64-16-16-10:sigmoid:softmax_ce"``; errors say what a valid spec is.

        >>> NetworkSpec.parse("4-3-2:tanh:mse").sizes
        (4, 3, 2)
        """
        hint = "expected SIZES:ACTIVATION:LOSS, for example 64-16-16-10:sigmoid:softmax_ce"
        parts = spec.split(":")
        if len(parts) != 3:
            raise ValueError(f"network spec {spec!r}: {hint}")
        sizes_text, activation, loss = parts
        try:
            sizes = tuple(int(s) for s in sizes_text.split("-"))
        except ValueError:
            raise ValueError(f"network spec {spec!r}: sizes {sizes_text!r} must be positive "
                             f"integers joined by '-'; {hint}") from None
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"network spec {spec!r}: give at least two positive sizes; {hint}")
        if len(sizes) - 1 > MAX_LAYERS:
            raise ValueError(f"network spec {spec!r}: {len(sizes) - 1} layers is more than "
                             f"the report derives ({MAX_LAYERS}); the equations are the same "
                             f"at every depth, so give at most {MAX_LAYERS + 1} sizes")
        if activation not in EXACT_ACTIVATIONS:
            raise ValueError(f"network spec {spec!r}: unknown activation {activation!r}; "
                             f"known: {', '.join(EXACT_ACTIVATIONS)}")
        if loss not in EXACT_LOSSES:
            raise ValueError(f"network spec {spec!r}: unknown loss {loss!r}; "
                             f"known: {', '.join(EXACT_LOSSES)}")
        return cls(sizes, activation, loss)

    @property
    def layers(self) -> int:
        return len(self.sizes) - 1

    def __str__(self) -> str:
        return f"{'-'.join(map(str, self.sizes))}:{self.activation}:{self.loss}"


T = Math.tex

_DERIVATION = (
    (r"\delta^{L}_{nj} = \frac{\partial L}{\partial z^{L}_{nj}} = \sum_{k} \frac{\partial L}"
     r"{\partial a^{L}_{nk}} \frac{\partial a^{L}_{nk}}{\partial z^{L}_{nj}}",
     "BP1, output layer: the chain rule through every output k that z_j reaches"),
    (r"\delta^{l}_{nj} = \sum_{k} \frac{\partial L}{\partial z^{l+1}_{nk}} \frac{\partial "
     r"z^{l+1}_{nk}}{\partial a^{l}_{nj}} \frac{\partial a^{l}_{nj}}{\partial z^{l}_{nj}} = "
     r"\Big(\sum_{k} \delta^{l+1}_{nk} W^{l+1}_{jk}\Big) f'(z^{l}_{nj})",
     "BP2, hidden layers: z^{l+1}_k = Σ_i a^l_i W^{l+1}_ik + b^{l+1}_k, so ∂z^{l+1}_k/∂a^l_j "
     "= W^{l+1}_jk, and a^l_j = f(z^l_j)"),
    (r"\frac{\partial L}{\partial W^{l}_{ij}} = \sum_{n} \sum_{k} \frac{\partial L}{\partial "
     r"z^{l}_{nk}} \frac{\partial z^{l}_{nk}}{\partial W^{l}_{ij}} = \sum_{n} a^{l-1}_{ni} "
     r"\delta^{l}_{nj}", "BP3, weights: ∂z^l_nk/∂W^l_ij = a^{l−1}_ni when k = j, else 0"),
    (r"\frac{\partial L}{\partial b^{l}_{j}} = \sum_{n} \delta^{l}_{nj}",
     "BP4, biases: ∂z^l_nj/∂b^l_j = 1 for every sample"),
)

_MATRIX_FORM = (
    (r"\delta^{l} = \left(\delta^{l+1} \left(W^{l+1}\right)^{T}\right) \odot f'(z^{l})",
     "BP2 for the batch: (N, n^{l+1})·(n^{l+1}, n^l), then elementwise with (N, n^l)"),
    (r"\frac{\partial L}{\partial W^{l}} = \left(a^{l-1}\right)^{T} \delta^{l}",
     "BP3: (n^{l−1}, N)·(N, n^l) = (n^{l−1}, n^l), the shape of W^l"),
    (r"\frac{\partial L}{\partial b^{l}} = \mathbf{1}^{T} \delta^{l}",
     "BP4: the sum over the batch, (n^l,)"),
    (r"\frac{\partial L}{\partial X} = \delta^{1} \left(W^{1}\right)^{T}",
     "the input gradient: (N, n^1)·(n^1, n^0)"),
)

_JACOBIANS = (
    (r"\frac{\partial z^{l+1}_{n}}{\partial a^{l}_{n}} = \left(W^{l+1}\right)^{T}",
     "per sample: (n^{l+1}, n^l)"),
    (r"\frac{\partial a^{l}_{n}}{\partial z^{l}_{n}} = \operatorname{diag}\left(f'(z^{l}_{n})"
     r"\right)", "elementwise activation: (n^l, n^l), diagonal, so a product with it is ⊙"),
    (r"\frac{\partial a^{L}_{n}}{\partial z^{L}_{n}} = \operatorname{diag}(a^{L}_{n}) - "
     r"a^{L}_{n} \left(a^{L}_{n}\right)^{T}", "softmax output: (K, K), full and symmetric"),
)


def _dl_dp(grad: sp.Expr) -> Math:
    right = Math.of(grad)
    left = r"\frac{\partial \ell}{\partial p}"
    return Math(f"{left} = {right.latex}", f"dl/dp = {right.text}", (left, right.latex))


def _output_delta(spec: NetworkSpec) -> list[Block]:
    """BP1 for the spec's output: elementwise, through the softmax Jacobian, or fused."""
    out_act = output_activation(spec.loss)
    loss_d = derive_loss(spec.loss)
    grad = loss_d.identity if loss_d.identity is not None else loss_d.simplified
    k = spec.sizes[-1]
    if spec.loss == "softmax_ce":
        return [Paragraph.parse(
            "Output layer: the loss takes the logits $z^L$ and applies the softmax itself, so "
            "the softmax Jacobian and the cross-entropy fuse (vector identities section); "
            f"for targets $T$ whose rows sum to 1, shape $(N, {k})$:"),
            MathBlock((T(r"\delta^{L} = \frac{1}{N}\left(\operatorname{softmax}(z^{L}) - "
                         r"T\right)"),), ("BP1, fused softmax with cross-entropy",))]
    if out_act == "softmax":
        intro = Paragraph.parse(
            "Output layer: $a^L = \\operatorname{softmax}(z^L)$ is not elementwise, so "
            "$\\delta^L \\ne \\nabla_a L \\odot f'(z^L)$: each row goes through the "
            "softmax Jacobian $J_n = \\operatorname{diag}(a^L_n) - a^L_n (a^L_n)^T$. With "
            "SymPy's derivative of the per-sample loss ")
        return [Paragraph((*intro.parts, _dl_dp(grad),
                           ", the gradient arriving at the output and BP1 are:")),
            MathBlock((T(r"\nabla_{a^{L}} L = -\frac{1}{N} \frac{T}{a^{L}}"),
                       T(r"\delta^{L}_{n} = J_{n} \nabla_{a^{L}_{n}} L = a^{L}_{n} \odot "
                         r"\left(\nabla_{a^{L}_{n}} L - \left(\nabla_{a^{L}_{n}} L \cdot "
                         r"a^{L}_{n}\right) \mathbf{1}\right)"),
                       T(r"\delta^{L} = \frac{1}{N}\left(a^{L} - T\right)")),
                      ("elementwise division; (N, K)",
                       "BP1 through the softmax Jacobian, row by row (J is symmetric)",
                       "the same, simplified, when every row of T sums to 1 (one-hot targets)"))]
    if out_act == "sigmoid":
        return [Paragraph.parse(
            "Output layer: $a^L = \\sigma(z^L)$ elementwise, so BP1 is elementwise, and the "
            "$1/(a(1-a))$ of the cross-entropy cancels $\\sigma' = \\sigma(1-\\sigma)$:"),
            MathBlock((T(r"\delta^{L} = \nabla_{a^{L}} L \odot \sigma'(z^{L}) = \frac{1}{N}"
                         r"\left(a^{L} - T\right)"),), ("BP1, sigmoid with binary cross-entropy",))]
    return [Paragraph.of("Output layer: no output activation (the identity), so ",
                         T(r"\delta^{L} = \nabla_{a^{L}} L = \frac{1}{N} \frac{\partial \ell}"
                           r"{\partial p}"),
                         " entry by entry, with SymPy's derivative of the per-sample loss ",
                         _dl_dp(grad), ".")]


def _derivative_in_outputs(activation: str) -> Math:
    """f'(zˡ) written with the layer's outputs aˡ when an identity form exists."""
    d = derive_activation(activation)
    a = sp.Symbol("a^l")
    form = d.identity.subs(y, a) if d.identity is not None else d.simplified
    return Math.equation(sp.Function("f'")(sp.Symbol("z^l")), form.subs(z, sp.Symbol("z^l")))


@cache
def _symbolic_check(layers: int, activation: str, loss: str) -> tuple[float, float, int]:
    """``(equations vs sp.diff, NumPy vs exact, parameters)`` on widths 2, batch 2."""
    net = ExactNetwork((2,) * (layers + 1), activation, loss, samples=2)
    values = net.point(seed=0)
    equations = backprop_gradient(net)
    flat = [entry for name in net.parameters for entry in equations[name]]
    differences = [a - b for a, b in zip(flat, net.symbolic_gradient, strict=True)]
    gap = max(abs(float(v)) for v in net.evaluate(differences, values))
    comparison = compare_with_models(net, seed=0)
    return gap, comparison.relative_error, sum(len(m) for m in net.parameters.values())


def _mp(expr: sp.Expr, args: list[sp.Symbol]) -> Callable[..., Any]:
    return sp.lambdify(args, expr, modules="mpmath")


@dataclass(frozen=True)
class PreciseCheck:
    """The 50-digit check: equations vs finite differences, NumPy vs equations."""

    layers: int
    parameters: int
    fd_gap: float
    numpy_error: float


def precise_backprop_check(layers: int, activation: str, loss: str,
                           seed: int = 0) -> PreciseCheck:
    """The backprop equations at 50 digits against 50-digit central differences and NumPy.

    Widths 2, batch 2, any depth: cost linear in ``layers``.

    >>> check = precise_backprop_check(5, "gelu", "huber")
    >>> check.fd_gap < 1e-25 and check.numpy_error < 1e-13
    True
    """
    net = ExactNetwork((2,) * (layers + 1), activation, loss, samples=2)
    values = net.point(seed)
    f_expr = EXACT_ACTIVATIONS[activation].expr
    f, fprime = _mp(f_expr, [z]), _mp(sp.diff(f_expr, z), [z])
    out_name = output_activation(loss)
    k = 2
    a_syms, t_syms = sp.symbols(f"a_1:{k + 1}", real=True), sp.symbols(f"t_1:{k + 1}", real=True)
    per_sample = EXACT_LOSSES[loss].per_sample(list(a_syms), list(t_syms))
    ell = _mp(per_sample, [*a_syms, *t_syms])
    dell = [_mp(sp.diff(per_sample, a), [*a_syms, *t_syms]) for a in a_syms]
    u = sp.symbols(f"u_1:{k + 1}", real=True)
    out_exprs = (EXACT_VECTOR_ACTIVATIONS["softmax"].expr(list(u)) if out_name == "softmax"
                 else [EXACT_ACTIVATIONS["sigmoid"].expr.subs(z, ui) for ui in u]
                 if out_name == "sigmoid" else list(u))
    out_f = _mp(out_exprs, list(u))
    out_jac = _mp(sp.Matrix(out_exprs).jacobian(u), list(u))
    names = list(net.parameters)
    with mpmath.workdps(DIGITS + 20):
        def mp(array: np.ndarray) -> np.ndarray:
            return np.vectorize(lambda v: mpmath.mpf(float(v)), otypes=[object])(array)
        params = {name: mp(np.atleast_2d(values[name])) for name in names}
        x, targets = mp(values["x"]), mp(values["t"])

        def forward(p: dict) -> tuple[list, list, mpmath.mpf]:
            a, zs, acts = x, [], [x]
            for layer in range(layers):
                pre = a @ p[f"{2 * layer}.W"] + p[f"{2 * layer}.b"]
                zs.append(pre)
                a = (np.vectorize(f, otypes=[object])(pre) if layer < layers - 1 else
                     np.array([out_f(*row) for row in pre], dtype=object))
                acts.append(a)
            value = sum(ell(*acts[-1][n], *targets[n]) for n in range(2)) / 2
            return zs, acts, value

        zs, acts, _ = forward(params)
        kinks = [mpmath.mpf(float(k)) for k in EXACT_ACTIVATIONS[activation].branch_points]
        if any(v == k for pre in zs[:-1] for v in pre.reshape(-1) for k in kinks):
            raise ValueError(f"precise_backprop_check: a pre-activation is exactly at a kink "
                             f"of {activation}; use another seed")
        grad_a = np.array([[d(*acts[-1][n], *targets[n]) / 2 for d in dell]
                           for n in range(2)], dtype=object)
        delta = np.array([np.array(out_jac(*zs[-1][n]).tolist(), dtype=object).T @ grad_a[n]
                          for n in range(2)], dtype=object)
        equations: dict[str, np.ndarray] = {}
        for layer in range(layers - 1, -1, -1):
            equations[f"{2 * layer}.W"] = acts[layer].T @ delta
            equations[f"{2 * layer}.b"] = delta.sum(axis=0)
            if layer:
                delta = (delta @ params[f"{2 * layer}.W"].T) * np.vectorize(
                    fprime, otypes=[object])(zs[layer - 1])
        h = mpmath.mpf(10) ** -20
        gap = mpmath.mpf(0)
        for name in names:
            for index in np.ndindex(*params[name].shape):
                saved = params[name][index]
                params[name][index] = saved + h
                up = forward(params)[2]
                params[name][index] = saved - h
                down = forward(params)[2]
                params[name][index] = saved
                eq = np.asarray(equations[name]).reshape(params[name].shape)[index]
                gap = max(gap, abs((up - down) / (2 * h) - eq))
        exact = {name: np.array([float(v) for v in np.asarray(equations[name]).reshape(-1)])
                 .reshape(np.shape(values[name])) for name in names}
    comparison = relative_comparison(exact, _models_gradient(net, values))
    return PreciseCheck(layers, sum(v.size for v in exact.values()), float(gap),
                        comparison.relative_error)


def _verification(spec: NetworkSpec) -> list[Block]:
    layers = spec.layers
    symbolic_layers = min(layers, MAX_SYMBOLIC_LAYERS)
    gap, numpy_error, count = _symbolic_check(symbolic_layers, spec.activation, spec.loss)
    same = symbolic_layers == layers
    out: list[Block] = [Paragraph.of(
        f"Checked symbolically on a network of {'the same depth' if same else 'the top'} "
        f"{symbolic_layers} layer(s), activation and loss, widths 2, batch of 2, at a point "
        "with dyadic-rational entries: the loss as one SymPy expression in all "
        f"{count} parameters, differentiated by sp.diff, and these equations built as SymPy "
        f"expressions agree to {gap:.1e} when both are evaluated at 50 digits; the NumPy "
        f"backprop of gradcheck.models agrees with them to a relative error of "
        f"{numpy_error:.1e} (float64 rounding is 1.1e-16).")]
    if not same:
        check = precise_backprop_check(layers, spec.activation, spec.loss)
        out.append(Paragraph.of(
            f"At the full depth of {layers} layers, symbolic differentiation grows "
            "exponentially (every unit's output feeds every unit above it), so the full "
            f"depth is checked in {DIGITS}-digit arithmetic instead: the equations evaluated "
            f"at {DIGITS} digits against central differences of the {DIGITS}-digit loss "
            f"(step 1e-20) in all {check.parameters} parameters agree to {check.fd_gap:.1e}; "
            f"the NumPy backprop agrees with them to a relative error of "
            f"{check.numpy_error:.1e}."))
    return out


def backprop_section(spec: NetworkSpec) -> list[Block]:
    """The section for ``spec``: network table, derivation, output layer, verification."""
    sizes, layers = spec.sizes, spec.layers
    out_act = output_activation(spec.loss)
    rows = []
    for layer in range(1, layers + 1):
        n_in, n_out = sizes[layer - 1], sizes[layer]
        act = spec.activation if layer < layers else (out_act or "none (logits)")
        rows.append((str(layer), f"{2 * (layer - 1)}.W: ({n_in}, {n_out})",
                     f"{2 * (layer - 1)}.b: ({n_out},)", f"(N, {n_out})", act,
                     str(n_in * n_out + n_out)))
    return [
        Heading(2, f"Backpropagation equations for {spec}", anchor="backprop"),
        Paragraph.of(
            f"The network has {layers} dense layers of widths {' → '.join(map(str, sizes))}, "
            f"activation {spec.activation} on the hidden layers and loss {spec.loss}"
            + (f" after a {out_act} output" if out_act else " on the raw outputs") + "."),
        Paragraph.parse(
            "A batch holds $N$ samples as rows, as in gradcheck.models: layer $l$ computes "
            "$z^{l} = a^{l-1} W^{l} + b^{l}$ with $W^{l}$ of shape $(n^{l-1}, n^{l})$ "
            "($n^{l}$ the width of layer $l$, $a^{0} = X$ the input) and "
            "$a^{l} = f(z^{l})$; the loss is the mean over the batch, "
            "$L = \\frac{1}{N} \\sum_{n} \\ell(a^{L}_{n}, t_{n})$. Parameter names are those "
            "of the models' Sequential (Dense layers at even indices)."),
        Table(("layer", "weights", "bias", "zˡ, aˡ, δˡ", "activation", "parameters"),
              tuple(rows)),
        Heading(3, "The four equations, from the chain rule", anchor="backprop-derivation"),
        Paragraph.parse(
            "Define the error of layer $l$ as $\\delta^{l} = \\partial L / \\partial z^{l}$, "
            "shape $(N, n^{l})$, sample $n$, unit $j$. Each equation is the chain rule "
            "through the one quantity that connects its two ends:"),
        MathBlock(tuple(T(f) for f, _ in _DERIVATION), tuple(label for _, label in _DERIVATION)),
        Paragraph.parse("For an elementwise output activation $\\partial a^{L}_{nk} / "
                        "\\partial z^{L}_{nj} = 0$ unless $k = j$, and BP1 becomes "
                        "$\\delta^{L} = \\nabla_{a^{L}} L \\odot f'(z^{L})$. The Jacobians "
                        "behind the equations, per sample:"),
        MathBlock(tuple(T(f) for f, _ in _JACOBIANS), tuple(label for _, label in _JACOBIANS)),
        Paragraph.parse("In matrix form for the whole batch ($\\odot$ the elementwise "
                        "product):"),
        MathBlock(tuple(T(f) for f, _ in _MATRIX_FORM),
                  tuple(label for _, label in _MATRIX_FORM)),
        Paragraph.parse(
            "In the column-vector notation of Nielsen's book (one sample, $w^{l} = "
            "(W^{l})^{T}$, cost $C$) these read $\\delta^{L} = \\nabla_{a} C \\odot "
            "\\sigma'(z^{L})$, $\\delta^{l} = ((w^{l+1})^{T} \\delta^{l+1}) \\odot "
            "\\sigma'(z^{l})$, $\\partial C / \\partial w^{l}_{jk} = a^{l-1}_{k} "
            "\\delta^{l}_{j}$, $\\partial C / \\partial b^{l}_{j} = \\delta^{l}_{j}$."),
        Heading(3, f"Output layer and verification for {spec}", anchor="backprop-output"),
        *_output_delta(spec),
        Paragraph.of(f"For the hidden layers, f' of {spec.activation} in terms of the layer's "
                     "own output (SymPy's identity form where one exists): ",
                     _derivative_in_outputs(spec.activation), "."),
        *_verification(spec),
    ]
