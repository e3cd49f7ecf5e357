"""Exact derivatives with SymPy and derivation reports (installed as ``gradcheck.reference``).

The second source of truth: every activation and loss of ``gradcheck.models`` has a SymPy
twin under the same name (``exact``); SymPy derives it step by step (``derive``), the
results are evaluated fast or precisely (``lambdified``), vector identities and whole
tiny networks are derived exactly (``vector``, ``networks``), and the report puts the
derivations beside the numeric evidence (``evidence``, ``plots``, ``report``,
``render_md``/``render_tex``/``render_html``, ``report_cli``).

Names are imported lazily, so ``import gradcheck.reference`` costs nothing until used.

>>> from gradcheck import reference
>>> reference.derive_activation("tanh").identity
1 - y**2
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EXACT_ACTIVATIONS": "exact",
    "EXACT_LOSSES": "exact",
    "EXACT_VECTOR_ACTIVATIONS": "exact",
    "Derivation": "derive",
    "derive_activation": "derive",
    "derive_loss": "derive",
    "single_neuron": "derive",
    "numpy_activation_derivative": "lambdified",
    "numpy_loss_gradient": "lambdified",
    "precise_activation_derivative": "lambdified",
    "precise_loss_gradient": "lambdified",
    "ExactNetwork": "networks",
    "compare_with_models": "networks",
    "backprop_gradient": "networks",
    "all_identities": "vector",
    "build_report": "report",
    "render": "report",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gradcheck.reference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gradcheck.reference.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
