r"""The report's teaching sections: notation, the single neuron worked with numbers and drawn
as a graph, and the finite-difference step size.

>>> blocks = notation_section()
>>> blocks[0].anchor
'notation'
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from gradcheck.reference import plots as plotting
from gradcheck.reference.derive import single_neuron
from gradcheck.reference.document import Block, Heading, Image, Math, Paragraph, Table
from gradcheck.reference.evidence import EPS, step_study, step_sweep

__all__ = ["neuron_section", "notation_section", "step_section", "worked_neuron"]

T = Math.tex

_NOTATION = (
    (r"\sigma(z) = \frac{1}{1 + e^{-z}}", "the logistic sigmoid"),
    (r"\Phi(z) = \frac{1}{2}\left(1 + \operatorname{erf}\frac{z}{\sqrt{2}}\right)",
     "the standard normal CDF (GELU)"),
    (r"\phi(z) = \frac{e^{-z^{2}/2}}{\sqrt{2\pi}}", "the standard normal density, Φ′ = φ"),
    (r"\ell(p, t)", "the loss of one sample, summed over its K outputs"),
    (r"L = \frac{1}{N} \sum_{n=1}^{N} \ell(p_{n}, t_{n})", "the batch loss: the mean over N"),
    (r"z^{l},\ a^{l} = f(z^{l})", "pre-activation and activation of layer l, shape (N, nˡ)"),
    (r"W^{l},\ b^{l}", "weights (nˡ⁻¹, nˡ) and bias (nˡ,) of layer l; L is the last layer"),
    (r"\delta^{l} = \frac{\partial L}{\partial z^{l}}", "the error of layer l, shape of zˡ"),
    (r"G = \frac{\partial L}{\partial Y}", "the upstream gradient a layer's backward receives"),
    (r"\odot", "the elementwise (Hadamard) product"),
)


def notation_section() -> list[Block]:
    """Every named symbol of the document, defined once, before its first use."""
    return [Heading(2, "Notation", anchor="notation"),
            Table(("symbol", "meaning"), tuple((T(s), m) for s, m in _NOTATION))]


def worked_neuron(x: float = 1.5, w: float = 0.8, target: float = 1.0) -> dict[str, float]:
    """The single sigmoid neuron at numbers: forward values, local derivatives, dE/dw.

    Exact (SymPy at 30 digits), with the central finite difference of ``E(w)`` beside.

    >>> values = worked_neuron()
    >>> bool(abs(values["dE/dw"] - values["finite difference"]) < 1e-9)
    True
    """
    xs, ws, ts = sp.Rational(x), sp.Rational(w), sp.Rational(target)
    zv = ws * xs
    yv = 1 / (1 + sp.exp(-zv))
    ev = (ts - yv) ** 2 / 2
    dE_dy, dy_dz, dz_dw = -(ts - yv), yv * (1 - yv), xs
    values = {"z": zv, "y": yv, "E": ev, "dE/dy": dE_dy, "dy/dz": dy_dz, "dz/dw": dz_dw,
              "dE/dw": dE_dy * dy_dz * dz_dw}
    out = {k: float(sp.N(v, 30)) for k, v in values.items()}

    def error(weight: float) -> float:
        return 0.5 * (target - 1 / (1 + np.exp(-weight * x))) ** 2
    h = EPS ** (1 / 3)
    out["finite difference"] = (error(w + h) - error(w - h)) / (2 * h)
    return out


def neuron_section(activation: str, plots: bool) -> list[Block]:
    """The single-neuron derivation (SymPy), its graph, and the same worked with numbers."""
    out: list[Block] = [Heading(2, "One neuron, by the chain rule", anchor="single-neuron"),
                        *single_neuron(activation).blocks()]
    if plots:
        png = plotting.graph_plot("neuron")
        if png is not None:
            out.append(Image("graph-neuron", png, alt="computational graph of one neuron",
                             caption="the neuron as a computational graph"))
    v = worked_neuron()
    rows = (
        (T("z = w x"), T(r"0.8 \cdot 1.5"), f"{v['z']:.6f}"),
        (T(r"y = \sigma(z)"), T(r"1 / (1 + e^{-1.2})"), f"{v['y']:.6f}"),
        (T(r"E = \frac{1}{2}(t - y)^{2}"), T(r"\frac{1}{2}(1 - y)^{2}"), f"{v['E']:.6f}"),
        (T(r"\frac{\partial E}{\partial y} = -(t - y)"), "backward, from the loss",
         f"{v['dE/dy']:.6f}"),
        (T(r"\frac{\partial y}{\partial z} = y(1 - y)"), T(r"\sigma' = \sigma(1-\sigma)"),
         f"{v['dy/dz']:.6f}"),
        (T(r"\frac{\partial z}{\partial w} = x"), "", f"{v['dz/dw']:.6f}"),
        (T(r"\frac{\partial E}{\partial w}"), "the product of the three", f"{v['dE/dw']:.6f}"),
    )
    out += [Paragraph.parse("Worked with numbers ($x = 1.5$, $w = 0.8$, $t = 1$, "
                            "$f = \\sigma$): the forward pass computes each node, the "
                            "backward pass multiplies the local derivatives from $E$ back "
                            "to $w$."),
            Table(("quantity", "at these numbers", "value"), rows),
            Paragraph.of(f"A central finite difference of E(w) gives {v['finite difference']:.9f} "
                         f"against the exact {v['dE/dw']:.9f} (difference "
                         f"{abs(v['finite difference'] - v['dE/dw']):.1e})."),
            Paragraph.parse("A dense layer is the same graph with matrices: "
                            "$z^{l} = a^{l-1} W^{l} + b^{l}$, $a^{l} = f(z^{l})$; each "
                            "edge carries the gradient its input receives (the backprop "
                            "section derives them).")]
    if plots:
        png = plotting.graph_plot("dense")
        if png is not None:
            out.append(Image("graph-dense", png, alt="computational graph of one dense layer",
                             caption="one dense layer as a computational graph, with shapes"))
    return out


def step_section(plots: bool) -> list[Block]:
    """The V of finite-difference error against the step; a robust measured optimum."""
    study = step_study("tanh")
    sweep = step_sweep("tanh", 0.5, np.logspace(-1, -15, 113))
    fwd, fwd_pred = study.median("forward")
    cen, cen_pred = study.median("central")
    factor = max(fwd_pred / fwd, fwd / fwd_pred, cen_pred / cen, cen / cen_pred)
    out: list[Block] = [
        Heading(2, "Finite differences: error against step size", anchor="step-size"),
        Paragraph.parse(
            "The numeric source of truth needs no derivative, but its accuracy depends on the "
            "step $h$. The truncation error of a forward difference is about "
            "$\\frac{h}{2}|f''|$, of a central one $\\frac{h^{2}}{6}|f'''|$; rounding the "
            "evaluations adds about $\\varepsilon|f|/h$ ($\\varepsilon = 2^{-52}$). "
            "Minimising the sum gives $h^{*} = 2\\sqrt{\\varepsilon|f|/|f''|}$ (forward, of "
            f"order $\\sqrt{{\\varepsilon}} \\approx {EPS ** 0.5:.0e}$) and "
            "$h^{*} = (3\\varepsilon|f|/|f'''|)^{1/3}$ (central, of order "
            f"$\\varepsilon^{{1/3}} \\approx {EPS ** (1 / 3):.0e}$), which is why a checker "
            "scales its central step like $\\varepsilon^{1/3}$."),
        Paragraph.of(
            f"Measured for tanh at {len(study.points)} points (the minimum of a moving median "
            "of the error over the step, then the median over the points: one point's "
            "minimum is decided by how its rounding errors happen to fall and scatters by a "
            f"decade): best forward step {fwd:.1e} against the predicted {fwd_pred:.1e}, best "
            f"central step {cen:.1e} against the predicted {cen_pred:.1e}, agreeing within a "
            f"factor of {factor:.1f}. The measured optima sit below the predictions because "
            "the model adds worst-case rounding errors, and actual rounding errors are "
            "typically smaller and partly cancel."),
    ]
    if plots:
        png = plotting.step_plot(sweep)
        if png is not None:
            out.append(Image("step-size", png, alt="finite-difference error against step size",
                             caption="error of forward and central differences of tanh at 0.5"))
    return out
