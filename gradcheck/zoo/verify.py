"""The zoo verification behind ``gradcheck verify``: every built-in derivative, three ways.

- Every activation and loss row is held three ways: **exact** (SymPy's derivative of the
  row's twin in ``gradcheck.reference.exact``, evaluated by
  ``gradcheck.reference.lambdified``; softmax's Jacobian is lambdified here), **analytic**
  (the hand-written ``df``/``grad``/``vjp`` of the models' tables) and **numeric** (finite
  differences by the checker, ``gradcheck.check_grad``/``check_jacobian``). Exact and
  analytic are compared entry by entry at seeded points of the row's ``domain`` (kept
  away from its ``kinks``); the checker then judges analytic *and* exact against finite
  differences.
- Every built-in layer and network (MLP, CNN, RNN, LSTM, BatchNorm, Dropout with a frozen
  mask, L2 penalty, ...) goes through ``gradcheck.check_layer`` / ``check_model``.

Each case becomes one :class:`VerifyRow`. Nothing is printed here; the CLI renders rows.

>>> rows = verify(only=["tanh"])
>>> rows[0].ok, rows[0].ways
(True, 'exact = analytic = numeric')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from gradcheck.engine.options import Mode

__all__ = ["EXACT_TOLERANCE", "Case", "VerifyRow", "cases", "run_case", "verify"]

#: Largest relative difference |analytic − exact| / max(|exact|, 1) accepted between the
#: hand-written and the SymPy derivative: thousands of float64 roundings (observed: < 1e-15),
#: far below any real bug (a wrong constant or sign is O(1)).
EXACT_TOLERANCE = 1e-12
POINTS = {"full": 24, "fast": 8}  # sample points per activation/loss row


@dataclass(frozen=True)
class VerifyRow:
    """The verdict on one case (the JSON schema of ``gradcheck verify --json``).

    Attributes
    ----------
    name : str
        Table name (``"tanh"``, ``"mse"``) or case name (``"Conv2D"``, ``"MLP-L2"``).
    kind : str
        ``"activation"``, ``"loss"``, ``"layer"`` or ``"network"``.
    ok : bool
    ways : str
        The sources held against each other, e.g. ``"exact = analytic = numeric"``.
    exact_error : float or None
        Max relative difference between analytic and exact (None when no exact twin).
    numeric_error : float or None
        Worst relative error the checker found between analytic and numeric.
    error_ratio : float or None
        Largest error / tolerance among the checker's worst entries: below 1 agrees, and
        the closer to 1 the closer the call (relative errors alone mislead near zero).
    checked : int
        Entries compared by the checker.
    nondifferentiable : int
        Entries at kinks, judged by one-sided derivatives.
    evaluations : int
        Function evaluations the checker spent (fast mode: independent of the size).
    mode : str
        Checker mode used (``"full"`` or ``"fast"``).
    seconds : float
    note : str
        Why it failed (first diagnosis line or error), empty when ok.
    """

    name: str
    kind: str
    ok: bool
    ways: str
    exact_error: float | None
    numeric_error: float | None
    error_ratio: float | None
    checked: int
    nondifferentiable: int
    evaluations: int
    mode: str
    seconds: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Case:
    """One thing to verify: ``run(mode, seed)`` returns the facts of a :class:`VerifyRow`."""

    name: str
    kind: str
    run: Callable[[str, int], dict[str, Any]]


# ---- exact derivatives (SymPy, lambdified by gradcheck.reference.lambdified) ------------

def _exact_activation_derivative(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """SymPy's f'(z) evaluated at 30 digits and rounded once; None without an exact twin."""
    from gradcheck.reference import lambdified
    from gradcheck.reference.exact import EXACT_ACTIVATIONS
    return lambdified.precise_activation_derivative(name) if name in EXACT_ACTIVATIONS \
        else None


def _exact_loss_gradient(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """Per-sample ∂ℓ/∂pred from SymPy: (N, K), (N, K) -> (N, K); None without a twin."""
    from gradcheck.reference import lambdified
    from gradcheck.reference.exact import EXACT_LOSSES
    return lambdified.precise_loss_gradient(name) if name in EXACT_LOSSES else None


# ---- sample points ---------------------------------------------------------------------

def _points(lo: float, hi: float, kinks: Sequence[float], n: int, seed: int) -> np.ndarray:
    """``n`` seeded points of [lo, hi] at least 1% of its width away from every kink."""
    z = np.random.default_rng(seed).uniform(lo, hi, n)
    gap = 0.01 * (hi - lo)
    for k in kinks:
        near = np.abs(z - k) < gap
        z[near] = np.where(z[near] >= k, k + gap, k - gap)
    return z


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0), initial=0.0))


def _from_results(results: Sequence[Any]) -> dict[str, Any]:
    """The numeric facts of a row from one or more checker results."""
    tensors = [t for r in results for t in r.tensors]
    errors = [float(t.max_rel_error) for t in tensors if np.isfinite(t.max_rel_error)]
    failing = [r for r in results if not r.ok]
    note = ""
    if failing:
        lines = list(failing[0].diagnosis) or ["gradients disagree"]
        note = f"{failing[0].label}: {lines[0]}"
    ratios = [e.error / e.tolerance for r in results for e in r.worst if e.tolerance > 0]
    return {"ok": not failing, "numeric_error": max(errors, default=None),
            "error_ratio": float(max(ratios)) if ratios else None,
            "checked": sum(int(t.n_checked) for t in tensors),
            "nondifferentiable": sum(int(t.n_nondifferentiable) for t in tensors),
            "evaluations": sum(int(r.evaluations) for r in results),
            "mode": "/".join(dict.fromkeys(r.mode for r in results)), "note": note}


def _three_ways(exact_error: float | None, results: Sequence[Any]) -> dict[str, Any]:
    facts = _from_results(results)
    if exact_error is None:
        return {**facts, "ways": "analytic = numeric", "exact_error": None}
    if exact_error > EXACT_TOLERANCE:
        facts["ok"] = False
        facts["note"] = (f"analytic and exact derivatives differ by {exact_error:.3g} "
                         f"(relative) > {EXACT_TOLERANCE:g}") + (
            f"; {facts['note']}" if facts["note"] else "")
    return {**facts, "ways": "exact = analytic = numeric", "exact_error": exact_error}


# ---- activations and losses: three ways ------------------------------------------------

def _activation_case(name: str) -> Case:
    def run(mode: str, seed: int) -> dict[str, Any]:
        import gradcheck
        from gradcheck.models.activations import ACTIVATIONS
        row = ACTIVATIONS[name]
        z = _points(*row.domain, row.kinks, POINTS[mode], seed)
        analytic = row.df(z, row.f(z))
        exact = _exact_activation_derivative(name)
        objective = lambda v: float(np.sum(row.f(v)))  # noqa: E731 — one-line objective
        results = [gradcheck.check_grad(objective, lambda v: row.df(v, row.f(v)), z,
                                        mode="full", seed=seed)]
        if exact is None:
            return _three_ways(None, results)
        results.append(gradcheck.check_grad(objective, exact, z, mode="full", seed=seed))
        return _three_ways(_relative(analytic, exact(z)), results)

    return Case(name, "activation", run)


@cache
def _exact_softmax_jacobian(width: int) -> Callable[[np.ndarray], np.ndarray]:
    """``J(z_row) -> (width, width)``: SymPy's Jacobian of the exact softmax twin."""
    import sympy as sp

    from gradcheck.reference.exact import EXACT_VECTOR_ACTIVATIONS
    xs = sp.symbols(f"z0:{width}", real=True)
    outputs = sp.Matrix(EXACT_VECTOR_ACTIVATIONS["softmax"].expr(xs))
    jacobian = sp.lambdify([xs], outputs.jacobian(xs), modules="numpy")
    return lambda row: np.array(jacobian(row), dtype=np.float64)


def _softmax_case() -> Case:
    def run(mode: str, seed: int) -> dict[str, Any]:
        import gradcheck
        from gradcheck.models.activations import VECTOR_ACTIVATIONS
        row = VECTOR_ACTIVATIONS["softmax"]
        z = np.random.default_rng(seed).uniform(*row.domain, (max(2, POINTS[mode] // 6), 4))
        jacobian = _exact_softmax_jacobian(z.shape[1])

        def analytic(v: np.ndarray, g: np.ndarray) -> np.ndarray:
            return row.vjp(row.f(v), g)

        def exact(v: np.ndarray, g: np.ndarray) -> np.ndarray:
            return np.stack([jacobian(vr).T @ gr for vr, gr in zip(v, g, strict=True)])

        g = np.random.default_rng(seed + 1).standard_normal(z.shape)
        results = [gradcheck.check_jacobian(row.f, z, vjp=vjp, mode="full", seed=seed)
                   for vjp in (analytic, exact)]
        return _three_ways(_relative(analytic(z, g), exact(z, g)), results)

    return Case("softmax", "activation", run)


def _loss_inputs(row: Any, shape: tuple[int, int], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets valid for the loss ``row`` (read from its ``pred``/``target``).

    Real values are drawn from (−2, 2), so residuals reach both branches of huber (δ = 1)
    and logits both tails of the logistic losses; probabilities come from a softmax (one
    class per row) or a sigmoid (independent outputs) of such values.
    """
    n, k = shape
    if row.pred == "probability":
        raw = rng.uniform(-2, 2, shape)
        pred = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True) if row.target == "class" \
            else 1 / (1 + np.exp(-raw))
    else:
        pred = rng.uniform(-2, 2, shape)
    if row.target == "class":
        target = np.eye(k)[rng.integers(0, k, n)]  # one-hot: the exact twin's layout
    elif row.target == "binary":
        target = rng.integers(0, 2, shape).astype(float)
    else:
        target = rng.uniform(-2, 2, shape)
    return pred, target


def _loss_case(name: str) -> Case:
    def run(mode: str, seed: int) -> dict[str, Any]:
        import gradcheck
        from gradcheck.models.losses import LOSSES
        row = LOSSES[name]
        n = max(1, POINTS[mode] // 4)
        pred, target = _loss_inputs(row, (n, 4), np.random.default_rng(seed))
        analytic = row.grad(pred, target)
        objective = lambda p: float(np.sum(row.value(p, target)))  # noqa: E731
        results = [gradcheck.check_grad(objective, lambda p: row.grad(p, target), pred,
                                        mode="full", seed=seed)]
        exact_gradient = _exact_loss_gradient(name)
        if exact_gradient is None:
            return _three_ways(None, results)

        def exact(p: np.ndarray) -> np.ndarray:
            return exact_gradient(p, target)

        results.append(gradcheck.check_grad(objective, exact, pred, mode="full", seed=seed))
        return _three_ways(_relative(analytic, exact(pred)), results)

    return Case(name, "loss", run)


# ---- layers and networks through the checker -------------------------------------------

def _layer_examples() -> dict[str, Callable[[np.random.Generator], tuple[Any, np.ndarray]]]:
    from gradcheck.models.conv import Conv2D
    from gradcheck.models.dense import Dense
    from gradcheck.models.dropout import Dropout
    from gradcheck.models.normalization import BatchNorm, LayerNorm
    from gradcheck.models.pooling import AvgPool2D, MaxPool2D
    from gradcheck.models.recurrent import LSTM, RNN

    def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
        return rng.standard_normal(shape)

    def batchnorm_eval(rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        layer = BatchNorm(4, momentum=0.5)
        layer.forward(3 * normal(rng, 16, 4) + 1)  # running statistics away from (0, 1)
        layer.training = False                    # then the eval path: a fixed affine map
        return layer, normal(rng, 6, 4)

    return {
        "Dense": lambda rng: (Dense(4, 3, seed=1), normal(rng, 5, 4)),
        "Conv2D": lambda rng: (Conv2D(2, 3, 3, padding=1, stride=2, seed=1),
                               normal(rng, 2, 2, 5, 5)),
        "MaxPool2D": lambda rng: (MaxPool2D(2), normal(rng, 2, 2, 4, 4)),
        "AvgPool2D": lambda rng: (AvgPool2D(2), normal(rng, 2, 2, 4, 4)),
        "BatchNorm": lambda rng: (BatchNorm(4), normal(rng, 6, 4)),
        "BatchNorm-NCHW": lambda rng: (BatchNorm(2), normal(rng, 3, 2, 3, 3)),
        "BatchNorm-eval": batchnorm_eval,
        "LayerNorm": lambda rng: (LayerNorm(5), normal(rng, 4, 5)),
        "Dropout-frozen": lambda rng: (Dropout(0.3, seed=1).freeze_mask(),
                                              normal(rng, 4, 5)),
        "RNN": lambda rng: (RNN(3, 4, seed=1), normal(rng, 2, 4, 3)),
        "LSTM": lambda rng: (LSTM(3, 4, seed=1), normal(rng, 2, 4, 3)),
    }


def _network_examples() -> dict[str, Callable[[np.random.Generator], tuple[Any, ...]]]:
    from gradcheck.models.conv import Conv2D
    from gradcheck.models.dense import Activation, Dense
    from gradcheck.models.dropout import Dropout
    from gradcheck.models.losses import Loss
    from gradcheck.models.network import Sequential
    from gradcheck.models.normalization import BatchNorm
    from gradcheck.models.pooling import MaxPool2D
    from gradcheck.models.recurrent import LSTM, RNN
    from gradcheck.models.shape import Flatten

    def mlp(l2: float) -> Callable[[np.random.Generator], tuple[Any, ...]]:
        return lambda rng: (Sequential([Dense(4, 8, seed=1), Activation("tanh"),
                                        Dense(8, 3, seed=2)], l2=l2),
                            Loss("softmax_ce"), rng.standard_normal((6, 4)),
                            rng.integers(0, 3, 6))

    def sequence(cell: type) -> Callable[[np.random.Generator], tuple[Any, ...]]:
        return lambda rng: (Sequential([cell(3, 4, seed=1), Flatten(), Dense(4 * 4, 2, seed=2)]),
                            Loss("mse"), rng.standard_normal((2, 4, 3)),
                            rng.standard_normal((2, 2)))

    return {
        "MLP": mlp(0.0),
        "MLP-L2": mlp(0.1),
        "CNN": lambda rng: (Sequential([Conv2D(1, 2, 3, padding=1, seed=1), Activation("relu"),
                                        MaxPool2D(2), Flatten(), Dense(2 * 2 * 2, 3, seed=2)]),
                            Loss("softmax_ce"), rng.standard_normal((2, 1, 4, 4)),
                            rng.integers(0, 3, 2)),
        "RNN-net": sequence(RNN),
        "LSTM-net": sequence(LSTM),
        "BatchNorm-net": lambda rng: (
            Sequential([Dense(3, 4, seed=1), BatchNorm(4), Activation("tanh"),
                        Dense(4, 2, seed=2)]),
            Loss("bce_logits"), rng.standard_normal((5, 3)),
            rng.integers(0, 2, (5, 2)).astype(float)),
        "Dropout-net": lambda rng: (
            Sequential([Dense(3, 5, seed=1), Activation("sigmoid"),
                        Dropout(0.4, seed=3).freeze_mask(), Dense(5, 2, seed=2)]),
            Loss("huber"), rng.standard_normal((4, 3)), 2 * rng.standard_normal((4, 2))),
    }


def _checker_case(name: str, kind: str, build: Callable[[np.random.Generator], tuple[Any, ...]]
                  ) -> Case:
    """A layer (``build -> (layer, x)``) or network (``-> (model, loss, x, y)``) case."""
    def run(mode: str, seed: int) -> dict[str, Any]:
        import gradcheck
        check = gradcheck.check_layer if kind == "layer" else gradcheck.check_model
        result = check(*build(np.random.default_rng(seed)), mode=_checker_mode(mode), seed=seed)
        return {**_from_results([result]), "ways": "analytic = numeric", "exact_error": None}

    return Case(name, kind, run)


def _checker_mode(mode: str) -> Mode:
    return "fast" if mode == "fast" else "auto"


# ---- the whole zoo -----------------------------------------------------------------------

def cases(only: Sequence[str] | None = None) -> list[Case]:
    """Every case of the zoo, in table order; ``only`` keeps those named.

    ``only`` holds case names or kinds (``"activation"``, ``"loss"``, ``"layer"``,
    ``"network"``), in any letter case. Raises ``ValueError`` naming the unknown entries of
    ``only`` and listing the known names.

    >>> [case.name for case in cases(["relu", "network"])][:3]
    ['relu', 'MLP', 'MLP-L2']
    """
    from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS
    from gradcheck.models.losses import LOSSES

    every = [_activation_case(name) for name in ACTIVATIONS]
    every += [_softmax_case()] if "softmax" in VECTOR_ACTIVATIONS else []
    every += [_loss_case(name) for name in LOSSES]
    every += [_checker_case(name, "layer", build) for name, build in _layer_examples().items()]
    every += [_checker_case(name, "network", build)
              for name, build in _network_examples().items()]
    if only is None:
        return every
    if isinstance(only, str):
        only = only.split(",")
    wanted = {name.strip().lower() for name in only if name.strip()}
    if not wanted:  # `--only ,,,` is a mistake, not "everything"
        raise ValueError("no names given; give at least one case name or kind, e.g. "
                         "relu,mse or network")
    known = {case.name.lower() for case in every} | {case.kind for case in every}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown names {', '.join(unknown)}; known: activation, loss, "
                         f"layer, network, {', '.join(case.name for case in every)}")
    return [case for case in every if case.name.lower() in wanted or case.kind in wanted]


def run_case(case: Case, *, fast: bool = False, seed: int = 0) -> VerifyRow:
    """Run one case; an exception inside it becomes a failed row naming it.

    A bad ``seed`` (negative, not an int) is the caller's mistake: ``ValueError``/
    ``TypeError`` before anything runs, not a failed row.
    """
    _require_seed(seed)
    mode = "fast" if fast else "full"
    start = time.perf_counter()
    try:
        facts = case.run(mode, seed)
    except Exception as exc:  # a crash in the zoo is a failed verification, not a traceback
        facts = {"ok": False, "ways": "", "exact_error": None, "numeric_error": None,
                 "error_ratio": None,
                 "checked": 0, "nondifferentiable": 0, "evaluations": 0, "mode": mode,
                 "note": f"{type(exc).__name__}: {exc}"}
    return VerifyRow(name=case.name, kind=case.kind, seconds=time.perf_counter() - start,
                     **facts)


def _require_seed(seed: Any) -> None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} must be an int")
    if seed < 0:
        raise ValueError(f"seed={seed} must be >= 0 (NumPy's random generators take "
                         f"non-negative seeds)")


def verify(*, fast: bool = False, only: Sequence[str] | None = None,
           seed: int = 0) -> list[VerifyRow]:
    """Verify the zoo; one :class:`VerifyRow` per case (see :func:`cases`)."""
    _require_seed(seed)
    return [run_case(case, fast=fast, seed=seed) for case in cases(only)]
