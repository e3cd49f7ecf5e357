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
    "StepStudy",
    "StepSweep",
    "activation_evidence",
    "central_difference_step",
    "loss_evidence",
    "loss_points",
    "step_study",
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
    for kink in {*op.kinks, *(float(k) for k in EXACT_ACTIVATIONS[name].branch_points)}:
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

    def smoothed_best(self, which: str = "central", window: int = 9) -> float:
        """The step minimising a moving median (``window`` steps) of the log error.

        The rounding branch of the V is noise; its luckiest dip decides a plain argmin
        and pulls it to too small a step. The moving median follows the V's envelope.
        """
        errors = np.log(self.central_error if which == "central" else self.forward_error)
        half = window // 2
        smooth = [np.median(errors[max(0, i - half):i + half + 1]) for i in range(errors.size)]
        return float(self.steps[int(np.argmin(smooth))])


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


STUDY_POINTS = (-2.2, -1.45, -0.8, -0.35, 0.3, 0.5, 0.85, 1.3, 1.9)
"""Where :func:`step_study` sweeps tanh: away from 0, where tanh'' vanishes."""


@dataclass(frozen=True)
class StepStudy:
    """Best measured and predicted steps at several points; medians are the robust summary.

    The predictions minimise the usual error model: forward ``|f''|h/2 + 2ε|f|/h`` gives
    ``h* = 2√(ε|f|/|f''|)``; central ``|f'''|h²/6 + ε|f|/h`` gives ``h* = (3ε|f|/|f'''|)^(1/3)``.
    """

    name: str
    points: tuple[float, ...]
    best_forward: np.ndarray
    best_central: np.ndarray
    predicted_forward: np.ndarray
    predicted_central: np.ndarray

    @staticmethod
    def _median(values: np.ndarray) -> float:
        return float(np.exp(np.median(np.log(values))))

    def median(self, which: str) -> tuple[float, float]:
        """``(measured, predicted)`` medians for ``"forward"`` or ``"central"``."""
        if which == "forward":
            return self._median(self.best_forward), self._median(self.predicted_forward)
        return self._median(self.best_central), self._median(self.predicted_central)


def step_study(name: str = "tanh", points: tuple[float, ...] = STUDY_POINTS) -> StepStudy:
    """Best forward and central steps of ``name`` at each of ``points``, measured and predicted.

    A single point's minimum is decided by how the rounding errors of a few evaluations
    happen to fall, so it scatters by a decade; the median over several points does not.

    >>> study = step_study()
    >>> measured, predicted = study.median("central")
    >>> 0.1 < measured / predicted < 10
    True
    """
    import sympy as sp

    from gradcheck.reference.exact import z
    row = EXACT_ACTIVATIONS[name]
    f0, f2, f3 = (sp.lambdify(z, sp.diff(row.expr, z, k), "mpmath") for k in (0, 2, 3))
    steps = np.logspace(-1, -15, 113)
    best_f, best_c, pred_f, pred_c = [], [], [], []
    for at in points:
        sweep = step_sweep(name, at, steps)
        best_f.append(sweep.smoothed_best("forward"))
        best_c.append(sweep.smoothed_best("central"))
        value, second, third = (abs(float(g(at))) for g in (f0, f2, f3))
        pred_f.append(2 * np.sqrt(EPS * value / second))
        pred_c.append((3 * EPS * value / third) ** (1 / 3))
    return StepStudy(name, tuple(points), *(np.array(v) for v in (best_f, best_c, pred_f,
                                                                   pred_c)))
