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

__all__ = ["activation_plot", "available", "step_plot"]

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
    for kink in EXACT_ACTIVATIONS[name].kinks:
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
