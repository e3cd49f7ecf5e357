"""Figures for the report, as PNG bytes; matplotlib is optional.

:func:`available` says whether matplotlib can be imported (the ``plots`` extra). Without
it every plotting function returns ``None`` and the report says plots were skipped.
Figures are drawn with the non-interactive Agg backend and closed at once.

>>> png = activation_plot("tanh")
>>> png is None or png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import importlib
import io
from typing import Any

import numpy as np

from gradcheck.reference.evidence import StepSweep
from gradcheck.reference.exact import EXACT_ACTIVATIONS
from gradcheck.reference.lambdified import numpy_activation, numpy_activation_derivative

__all__ = ["activation_plot", "available", "graph_plot", "step_plot"]

DPI = 80


def _pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend, or ``None`` when matplotlib is missing."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    return importlib.import_module("matplotlib.pyplot")


def available() -> bool:
    """True when matplotlib can be imported."""
    return _pyplot() is not None


def _png(figure: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                   metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def activation_plot(name: str, domain: tuple[float, float] | None = None) -> bytes | None:
    """``f`` and SymPy's ``f'`` of the activation ``name`` over ``domain``, kinks marked."""
    plt = _pyplot()
    if plt is None:
        return None
    if domain is None:
        from gradcheck.models.activations import ACTIVATIONS
        domain = ACTIVATIONS[name].domain if name in ACTIVATIONS else (-3.0, 3.0)
    zs = np.linspace(domain[0], domain[1], 400)
    figure, axes = plt.subplots(figsize=(4.2, 2.6))
    axes.plot(zs, numpy_activation(name)(zs), label="f(z)")
    axes.plot(zs, numpy_activation_derivative(name)(zs), label="f'(z) (SymPy)", linestyle="--")
    for kink in EXACT_ACTIVATIONS[name].branch_points:
        axes.axvline(float(kink), color="grey", linewidth=0.6, linestyle=":")
    axes.axhline(0, color="black", linewidth=0.4)
    axes.set_xlabel("z")
    axes.set_title(name)
    axes.legend(fontsize="small")
    return _png(figure, plt)


def step_plot(sweep: StepSweep) -> bytes | None:
    """Log-log error of forward and central differences against the step: the V shape."""
    plt = _pyplot()
    if plt is None:
        return None
    eps = float(np.finfo(np.float64).eps)
    figure, axes = plt.subplots(figsize=(5.0, 3.2))
    axes.loglog(sweep.steps, sweep.forward_error, "o-", markersize=3, label="forward difference")
    axes.loglog(sweep.steps, sweep.central_error, "s-", markersize=3, label="central difference")
    for power, style in ((1 / 2, ":"), (1 / 3, "--")):
        axes.axvline(eps ** power, color="grey", linewidth=0.8, linestyle=style,
                     label=f"eps^(1/{round(1 / power)})")
    axes.set_xlabel("step h")
    axes.set_ylabel("|difference − exact derivative|")
    axes.set_title(f"{sweep.name}'({sweep.at:g}): truncation vs rounding")
    axes.legend(fontsize="small", loc="lower left")
    return _png(figure, plt)


# ---- computational graphs ------------------------------------------------------------------
# (label, x, y, shape): "v" a value (circle), "op" an operation (box)
_GRAPHS: dict[str, tuple[tuple[tuple[str, float, float, str], ...],
                         tuple[tuple[int, int, str], ...], str]] = {
    "neuron": (
        (("$x$", 0, 1, "v"), ("$w$", 0, 0, "v"), ("$\\times$", 1.3, 0.5, "op"),
         ("$z$", 2.5, 0.5, "v"), ("$f$", 3.7, 0.5, "op"), ("$y$", 4.9, 0.5, "v"),
         ("$t$", 4.9, -0.5, "v"), ("$\\frac{1}{2}(t-y)^2$", 6.3, 0.5, "op"),
         ("$E$", 7.7, 0.5, "v")),
        ((0, 2, "$w$"), (1, 2, "$x$"), (2, 3, ""), (3, 4, "$f'(z)$"), (4, 5, ""),
         (5, 7, "$-(t-y)$"), (6, 7, ""), (7, 8, "")),
        "one neuron: forward left to right; each edge's local derivative multiplies on the "
        "way back"),
    "dense": (
        (("$a^{l-1}$\n(N, n$^{l-1}$)", 0, 1, "v"), ("$W^l$\n(n$^{l-1}$, n$^l$)", 0, 0, "v"),
         ("matmul", 1.5, 0.5, "op"), ("$b^l$\n(n$^l$,)", 1.5, -0.5, "v"),
         ("$+$", 2.9, 0.5, "op"), ("$z^l$\n(N, n$^l$)", 4.2, 0.5, "v"),
         ("$f$", 5.5, 0.5, "op"), ("$a^l$\n(N, n$^l$)", 6.8, 0.5, "v")),
        ((0, 2, "$\\delta^l W^{lT}$"), (1, 2, "$a^{l-1\\,T}\\delta^l$"), (2, 4, ""),
         (3, 4, "$\\Sigma_n\\delta^l_n$"), (4, 5, "$\\delta^l$"), (5, 6, "$\\odot f'(z^l)$"),
         (6, 7, "")),
        "one dense layer with shapes; edge labels: the gradient each input receives"),
}


def graph_plot(kind: str) -> bytes | None:
    """A computational graph (``"neuron"`` or ``"dense"``) as PNG, or ``None``."""
    plt = _pyplot()
    if plt is None:
        return None
    nodes, edges, title = _GRAPHS[kind]
    figure, axes = plt.subplots(figsize=(8.4, 2.6))
    for start, end, label in edges:
        (_, x0, y0, _), (_, x1, y1, _) = nodes[start], nodes[end]
        axes.annotate("", xy=(x1, y1), xytext=(x0, y0),
                      arrowprops={"arrowstyle": "-|>", "color": "#555", "shrinkA": 16,
                                  "shrinkB": 16})
        if label:
            axes.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, label, ha="center", fontsize=8,
                      color="#a33")
    for label, x, y, shape in nodes:
        style = ("round,pad=0.3" if shape == "v" else "square,pad=0.3")
        colour = "#e8f0fb" if shape == "v" else "#fdf1dc"
        axes.text(x, y, label, ha="center", va="center", fontsize=10,
                  bbox={"boxstyle": style, "facecolor": colour, "edgecolor": "#777"})
    axes.set_xlim(-0.6, max(n[1] for n in nodes) + 0.6)
    axes.set_ylim(-0.9, 1.4)
    axes.axis("off")
    axes.set_title(title, fontsize=9)
    return _png(figure, plt)
