"""Numeric evidence beside each formula: how far NumPy and finite differences are from exact.

For every activation and loss, :func:`activation_evidence` / :func:`loss_evidence`
evaluate at many points (a grid over the row's declared domain, points within 1e-3 of
a branch point left out) three things: the exact derivative (SymPy, evaluated at 30 digits and
rounded once: ``precise_*``), the hand-written NumPy derivative of ``gradcheck.models``,
and a central finite difference of the models' NumPy forward. The report prints the
largest absolute and relative errors of the last two against the first.

:func:`step_sweep` measures the error of forward and central differences of one
activation at one point for steps from 1e-1 down to 1e-15: truncation error falls with
the step, rounding error rises, and the log-log plot is the V that explains why a
checker picks a step near ``eps**(1/3)`` for central differences.

>>> ev = activation_evidence("tanh")
>>> ev.numpy_max_abs < 1e-15 and ev.fd_max_abs < 1e-9
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES
from gradcheck.reference.lambdified import (
    precise_activation_derivative,
    precise_loss_gradient,
)

__all__ = [
    "EPS",
    "Evidence",
    "StepSweep",
    "activation_evidence",
    "central_difference_step",
    "loss_evidence",
    "loss_points",
    "step_sweep",
]

EPS = float(np.finfo(np.float64).eps)
KINK_MARGIN = 1e-3
"""Points closer than this to a branch point are left out: at a kink no derivative
exists, and across a C¹ join (elu, softsign at 0) central differences lose their h²
accuracy, which would measure the join, not the derivative."""
RELATIVE_FLOOR = 1e-12
"""Relative errors divide by ``max(|exact|, RELATIVE_FLOOR)``."""


@dataclass(frozen=True)
class Evidence:
    """Largest errors of the NumPy derivative and of central differences against exact."""

    name: str
    kind: str
    points: int
    numpy_max_abs: float
    numpy_max_rel: float
    fd_max_abs: float
    fd_max_rel: float
    where: str

    def row(self) -> tuple[str, ...]:
        """Formatted cells: name, points, NumPy abs/rel, finite differences abs/rel."""
        return (self.name, str(self.points), f"{self.numpy_max_abs:.1e}",
                f"{self.numpy_max_rel:.1e}", f"{self.fd_max_abs:.1e}", f"{self.fd_max_rel:.1e}")


def central_difference_step(x: np.ndarray) -> np.ndarray:
    """Step ``eps**(1/3)·max(1, |x|)``, rounded so that ``(x + h) − x == h`` exactly."""
    h = EPS ** (1 / 3) * np.maximum(1.0, np.abs(x))
    return (x + h) - x


def _errors(approx: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    diff = np.abs(approx - exact)
    return float(diff.max()), float((diff / np.maximum(np.abs(exact), RELATIVE_FLOOR)).max())


def _activation_grid(name: str, points: int) -> np.ndarray:
    from gradcheck.models.activations import ACTIVATIONS
    op = ACTIVATIONS[name]
    grid = np.linspace(op.domain[0], op.domain[1], points)
    keep = np.ones_like(grid, dtype=bool)
    for kink in {*op.kinks, *(float(k) for k in EXACT_ACTIVATIONS[name].kinks)}:
        keep &= np.abs(grid - kink) > KINK_MARGIN
    return grid[keep]


def activation_evidence(name: str, points: int = 401) -> Evidence:
    """Errors of ``ACTIVATIONS[name].df`` and of central differences over its domain."""
    from gradcheck.models.activations import ACTIVATIONS
    op = ACTIVATIONS[name]
    zs = _activation_grid(name, points)
    exact = precise_activation_derivative(name)(zs)
    analytic = op.df(zs, op.f(zs))
    h = central_difference_step(zs)
    numeric = (op.f(zs + h) - op.f(zs - h)) / (2 * h)
    na, nr = _errors(analytic, exact)
    fa, fr = _errors(numeric, exact)
    return Evidence(name, "activation", zs.size, na, nr, fa, fr,
                    f"z in [{op.domain[0]:g}, {op.domain[1]:g}]")


def loss_points(name: str, samples: int = 64, width: int = 3,
                seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets a loss accepts: ``(samples, width)`` each.

    Probabilities lie in [0.05, 0.95]; binary targets in [0, 1]; class targets are one-hot
    rows; real ones in [−3, 3] (huber sees both of its branches).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    row = EXACT_LOSSES[name]
    shape = (samples, width)
    pred = (rng.uniform(0.05, 0.95, shape) if row.pred == "probability"
            else rng.uniform(-3, 3, shape))
    if row.target == "class":
        target = np.eye(width)[rng.integers(0, width, samples)]
    elif row.target == "binary":
        target = rng.uniform(0, 1, shape)
    else:
        target = rng.uniform(-3, 3, shape)
    return pred, target


def loss_evidence(name: str, samples: int = 64, width: int = 3, seed: int = 0) -> Evidence:
    """Errors of ``LOSSES[name].grad`` and of central differences of its ``value``."""
    from gradcheck.models.losses import LOSSES
    op = LOSSES[name]
    pred, target = loss_points(name, samples, width, seed)
    exact = precise_loss_gradient(name)(pred, target)
    analytic = op.grad(pred, target)
    numeric = np.empty_like(pred)
    h = central_difference_step(pred)
    for k in range(width):
        up, down = pred.copy(), pred.copy()
        up[:, k] += h[:, k]
        down[:, k] -= h[:, k]
        numeric[:, k] = (op.value(up, target) - op.value(down, target)) / (2 * h[:, k])
    na, nr = _errors(analytic, exact)
    fa, fr = _errors(numeric, exact)
    return Evidence(name, "loss", pred.size, na, nr, fa, fr,
                    f"{samples} samples of {width} outputs")


@dataclass(frozen=True)
class StepSweep:
    """Finite-difference errors of ``name`` at ``at`` for each step in ``steps``."""

    name: str
    at: float
    steps: np.ndarray
    forward_error: np.ndarray
    central_error: np.ndarray

    def best(self, which: str = "central") -> float:
        """The step with the smallest error (``which``: ``"central"`` or ``"forward"``)."""
        errors = self.central_error if which == "central" else self.forward_error
        return float(self.steps[int(np.argmin(errors))])


def step_sweep(name: str = "tanh", at: float = 0.5, steps: np.ndarray | None = None) -> StepSweep:
    """Errors of forward and central differences of ``ACTIVATIONS[name]`` at ``at``.

    >>> sweep = step_sweep("tanh", 0.5)
    >>> 1e-7 < sweep.best("central") < 1e-3
    True
    """
    from gradcheck.models.activations import ACTIVATIONS
    f = ACTIVATIONS[name].f
    steps = np.logspace(-1, -15, 57) if steps is None else np.asarray(steps, dtype=np.float64)
    x = np.full_like(steps, at)
    h = (x + steps) - x  # the step actually taken
    exact = float(precise_activation_derivative(name)(np.array([at]))[0])
    forward = (f(x + h) - f(x)) / h
    central = (f(x + h) - f(x - h)) / (2 * h)
    floor = EPS * EPS  # log plots: an exact hit is drawn at the floor, not at −∞
    return StepSweep(name, at, h, np.maximum(np.abs(forward - exact), floor),
                     np.maximum(np.abs(central - exact), floor))
