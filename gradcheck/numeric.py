"""Finite differences with an error estimate per entry, Richardson, and one-sided probes.

Everything here works on one abstraction: named flat **targets** (the checked copy of an
input, or a parameter array perturbed *in place* through a flat view and always put
back) and a scalar objective ``φ()`` that reads them. A probe moves one entry (or one
direction) by a realized step ``δ`` — the difference ``fl(θ + h) − θ`` as actually
stored, so float32 parameters still give exact quotients — and records the
**residuals** against the analytic prediction::

    r+ = φ(θ + δ+) − φ(θ) − a·δ+        r− = φ(θ) − φ(θ − δ−) − a·δ−

In derivative units ``(r+ + r−) / (δ+ + δ−)`` is (central difference − analytic); its
one-sided twins ``r+/δ+`` and ``r−/δ−`` are (D+ − a) and (D− − a). Judging residuals,
not raw quotients, keeps every comparison exact in the realized steps.

>>> import numpy as np
>>> x = np.array([0.5, -1.0, 2.0])
>>> target = Target("x", "input", x, analytic=np.cos(x))
>>> phi = lambda: float(np.sin(x).sum())
>>> judged = check_entries(phi, target, np.arange(3), phi(), noise=1.0,
...                        precision=PRECISIONS["float64"])
>>> judged.wrong.any()
False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gradcheck.safety import NonFiniteError, UserCodeError
from gradcheck.tolerances import PRECISIONS, Precision

Objective = Callable[[], float]


@dataclass
class Target:
    """One checked array: perturbed in place, its analytic gradient beside it.

    Attributes
    ----------
    name, role : str
        ``"x"``/``"input"`` or the parameter name/``"param"``.
    array : ndarray
        The array the objective reads; the checker writes perturbed values into it and
        always writes the original bits back.
    analytic : ndarray
        The claimed gradient, float64, shape of ``array``.
    storage : dtype
        Dtype in which perturbed values are realized (the user's dtype: a float32 input
        checked through a float64 copy still moves by float32-representable steps).
    layout : str
        Axis names for the diagnosis (``"NCHW"``), ``""`` when unknown.
    """

    name: str
    role: str
    array: np.ndarray
    analytic: np.ndarray
    storage: np.dtype | None = None
    layout: str = ""
    values: np.ndarray = field(init=False, repr=False)
    analytic_flat: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.storage = np.dtype(self.storage or self.array.dtype)
        self.values = np.array(self.array, dtype=np.float64).ravel()
        self.analytic_flat = np.asarray(self.analytic, dtype=np.float64).ravel()

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def flat(self) -> np.ndarray:
        """A writable flat view of ``array`` (``array.flat`` when not contiguous)."""
        if self.array.flags.c_contiguous:
            return self.array.reshape(-1)
        return self.array.flat  # type: ignore[return-value]

    def index(self, i: int) -> tuple[int, ...]:
        return tuple(int(k) for k in np.unravel_index(int(i), self.shape))

    def realize(self, values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray]:
        """Perturbed values up/down as stored, and the realized steps δ+, δ− (≥ 0 for h ≥ 0).

        The down value mirrors the realized up step, so δ− = δ+ exactly almost always and
        the quadratic term cancels in the central difference.
        """
        with np.errstate(over="ignore"):
            up = (values + steps).astype(self.storage).astype(np.float64)
            delta_up = up - values
            down = (values - delta_up).astype(self.storage).astype(np.float64)
        return up, down, delta_up, values - down


@dataclass
class Probe:
    """Residuals of a set of probes at one step size (one item per entry or direction)."""

    r_up: np.ndarray
    r_down: np.ndarray
    h_up: np.ndarray
    h_down: np.ndarray
    f_up: np.ndarray
    f_down: np.ndarray

    def subset(self, mask: np.ndarray) -> Probe:
        return Probe(*(getattr(self, k)[mask] for k in
                       ("r_up", "r_down", "h_up", "h_down", "f_up", "f_down")))


@dataclass
class Judged:
    """Verdict per item: numeric − analytic, its tolerance, wrong, kink, one-sided values.

    ``error`` is signed (numeric − analytic, in derivative units); ``left``/``right`` are
    the one-sided derivatives minus analytic at the smallest step (NaN if not refined).
    """

    error: np.ndarray
    tolerance: np.ndarray
    wrong: np.ndarray
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    refined: np.ndarray
    evaluations: int = 0


def evaluate_entries(phi: Objective, target: Target, idx: np.ndarray, up: np.ndarray,
                     down: np.ndarray, describe: str) -> tuple[np.ndarray, np.ndarray]:
    """φ with entry ``idx[k]`` set to ``up[k]`` and to ``down[k]`` (2 calls per entry).

    The hot loop of full mode: Python scalars and one flat view, no allocation per entry.
    """
    flat = target.flat()
    idx_list = idx.tolist()
    up_list, down_list = up.tolist(), down.tolist()
    old_list = target.values[idx].tolist()
    f_up = [0.0] * len(idx_list)
    f_down = [0.0] * len(idx_list)
    k, sign = 0, "+"
    try:
        for k, i in enumerate(idx_list):
            sign = "+"
            flat[i] = up_list[k]
            f_up[k] = phi()
            sign = "-"
            flat[i] = down_list[k]
            f_down[k] = phi()
            flat[i] = old_list[k]
    except Exception as err:
        where = f"{target.name}{list(target.index(idx_list[k]))} perturbed by {sign}h"
        raise UserCodeError(f"{describe} raised {type(err).__name__} with {where}: {err}"
                            ) from err
    finally:
        if idx_list:
            flat[idx_list[k]] = old_list[k]
    return np.array(f_up), np.array(f_down)


def require_finite_values(values: np.ndarray, target_name: str, where: Callable[[int], str],
                          describe: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.argmax(bad))
        raise NonFiniteError(
            f"{describe} returned {values[k]} with {target_name}{where(k)} perturbed: the "
            f"function is not finite near the point; check away from its domain boundary "
            f"or pass a smaller eps")


def probe_entries(phi: Objective, target: Target, idx: np.ndarray, step: float, f0: float,
                  describe: str = "the function") -> Probe:
    """Central and one-sided residuals of entries ``idx`` at relative step ``step``."""
    values = target.values[idx]
    min_step = 32 * float(np.finfo(target.storage).eps)
    h = max(step, min_step) * np.maximum(np.abs(values), 1.0)
    up, down, d_up, d_down = target.realize(values, h)
    f_up, f_down = evaluate_entries(phi, target, idx, up, down, describe)
    for vals in (f_up, f_down):
        require_finite_values(vals, target.name, lambda k: list(target.index(idx[k])), describe)
    a = target.analytic_flat[idx]
    return Probe(r_up=(f_up - f0) - a * d_up, r_down=(f0 - f_down) - a * d_down,
                 h_up=d_up, h_down=d_down, f_up=f_up, f_down=f_down)


def _noise(probe: Probe, noise: float) -> np.ndarray:
    return np.maximum(noise, np.maximum(np.abs(probe.f_up), np.abs(probe.f_down)))


def judge(first: Probe, magnitude: np.ndarray, noise: float, precision: Precision, *,
          rtol: float, atol: np.ndarray | float,
          refine: Callable[[np.ndarray, float], Probe] | None = None,
          refine_all: bool = False) -> Judged:
    """Judge items from a first probe; re-probe at half the step where needed.

    Parameters
    ----------
    first : Probe
        Residuals at the first step.
    magnitude : ndarray
        Size of the analytic value per item (``|a_i|``; for a direction, ``Σ|a_i d_i|``),
        scaled by ``rtol``.
    noise : float
        Scale of φ's rounding (``|φ|`` or ``Σ|y·G|``); each item also uses its own values.
    precision : Precision
        Row of the output precision (machine epsilon, rounding safety factor).
    rtol, atol : float
        Relative floor and absolute floor (in derivative units).
    refine : callable(mask, ratio) -> Probe, optional
        Re-probes the items in ``mask`` with steps divided by ``ratio`` (2).
    refine_all : bool
        Refine every item (``method="richardson"``), not only the doubtful ones.

    Notes
    -----
    First pass: ``e1 = (r+ + r−)/(δ+ + δ−)``, tolerance ``κ·eps·2|φ|/(δ+ + δ−)`` (rounding)
    plus the floors. Items with ``|e1|`` above half their tolerance, or whose one-sided
    derivatives differ by more than 5 %, get a second pass at half the step:
    Richardson ``eR = e2 + (e2 − e1)/(r² − 1)`` judged against rounding + the observed
    truncation ``|e2 − e1|/(r² − 1)``. A smooth function's one-sided derivatives move
    as ``f''·δ/2`` with the step; when the two steps contradict that model (the gap does
    not halve, or one side does not move as predicted), a kink lies within the step: the
    analytic value passes when it lies between the one-sided derivatives, and the item
    is flagged non-differentiable when the gap persists at θ itself.
    """
    kappa, eps = precision.rounding_safety, precision.eps
    span1 = first.h_up + first.h_down
    err1 = (first.r_up + first.r_down) / span1
    noise1 = _noise(first, noise)
    rnd1 = kappa * eps * 2 * noise1 / span1
    floor = rtol * (magnitude + np.abs(err1)) + atol
    tol1 = rnd1 + floor
    up1, down1 = first.r_up / first.h_up, first.r_down / first.h_down
    os_rnd1 = kappa * eps * 2 * noise1 / np.minimum(first.h_up, first.h_down)
    gap1 = up1 - down1
    lopsided = np.abs(gap1) > 0.05 * (magnitude + np.abs(up1) + np.abs(down1)) + 2 * os_rnd1
    again = (np.abs(err1) > 0.5 * tol1) | lopsided | refine_all
    n = err1.size
    out = Judged(error=err1.copy(), tolerance=tol1.copy(), wrong=np.abs(err1) > tol1,
                 kink=np.zeros(n, bool), left=np.full(n, np.nan), right=np.full(n, np.nan),
                 refined=again.copy())
    if refine is None or not again.any():
        return out
    second = refine(again, 2.0)
    out.evaluations = 2 * int(again.sum())
    span2 = second.h_up + second.h_down
    ratio2 = (span1[again] / span2) ** 2 - 1
    err2 = (second.r_up + second.r_down) / span2
    e1 = err1[again]
    err_r = err2 + (err2 - e1) / ratio2
    noise2 = _noise(second, noise)
    rnd2 = kappa * eps * 2 * noise2 / span2
    f = floor[again]
    tol_r = (ratio2 * rnd2 + rnd1[again]) / ratio2 + np.abs(err2 - e1) / ratio2 + f
    up2, down2 = second.r_up / second.h_up, second.r_down / second.h_down
    os_rnd2 = kappa * eps * 2 * noise2 / np.minimum(second.h_up, second.h_down)
    g1, g2 = gap1[again], up2 - down2
    # Smooth model: one-sided (D± − a) = c ± f''·δ±/2, so with f'' read off the second gap
    # the first gap and both one-sided changes are predicted; a kink within the step
    # breaks at least one prediction (whatever its distance from θ).
    scale = np.maximum(np.abs(g1), np.abs(g2))
    big = scale > 4 * os_rnd2 + f
    curv = g2 / span2  # f''/2
    miss = np.maximum.reduce([
        np.abs(g1 - curv * span1[again]),
        np.abs((up1[again] - up2) - curv * (first.h_up[again] - second.h_up)),
        np.abs((down1[again] - down2) + curv * (first.h_down[again] - second.h_down))])
    window = big & (miss > 0.1 * scale)
    tol_k = os_rnd2 + np.maximum(np.abs(up1[again] - up2), np.abs(down1[again] - down2)) + f
    inside = (np.minimum(up2, down2) - tol_k <= 0) & (0 <= np.maximum(up2, down2) + tol_k)
    at_point = window & (np.abs(g2) > 0.75 * np.abs(g1)) & (np.abs(g2) > 4 * os_rnd2 + 2 * f)
    out.error[again] = np.where(window, err2, err_r)
    out.tolerance[again] = np.where(window, tol_k, tol_r)
    out.wrong[again] = np.where(window, ~inside, np.abs(err_r) > tol_r)
    out.kink[again] = at_point
    out.left[again] = down2
    out.right[again] = up2
    return out


def check_entries(phi: Objective, target: Target, idx: np.ndarray, f0: float, *,
                  noise: float, precision: Precision, step: float | None = None,
                  rtol: float | None = None, atol: float | None = None,
                  describe: str = "the function", refine_all: bool = False) -> Judged:
    """Full-mode check of entries ``idx`` of one target (2 evaluations each, +2 if refined).

    ``rtol``/``atol`` default to the precision row; ``atol`` is then in units of the
    target's RMS analytic gradient. ``judged.evaluations`` counts every φ call made.
    """
    step = precision.step if step is None else step
    rtol = precision.rtol if rtol is None else rtol
    if atol is None:
        atol = precision.atol * float(np.sqrt(np.mean(target.analytic_flat ** 2)))
    first = probe_entries(phi, target, idx, step, f0, describe)

    def refine(mask: np.ndarray, ratio: float) -> Probe:
        return probe_entries(phi, target, idx[mask], step / ratio, f0, describe)

    judged = judge(first, np.abs(target.analytic_flat[idx]), noise, precision, rtol=rtol,
                   atol=atol, refine=refine, refine_all=refine_all)
    judged.evaluations += 2 * idx.size
    return judged


@dataclass
class Outcome:
    """What is known about one target after a check (full or fast mode).

    ``numeric``, ``tolerance``, ``left``, ``right`` are flat float64 arrays with NaN where
    no entry-wise difference was taken; ``wrong``/``kink`` are flat bool arrays.
    ``n_wrong`` is exact in full mode, an estimate for the whole tensor in fast mode.
    """

    target: Target
    numeric: np.ndarray
    tolerance: np.ndarray
    wrong: np.ndarray
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    n_wrong: int
    ok: bool

    @classmethod
    def empty(cls, target: Target) -> Outcome:
        n = target.size
        nan = np.full(n, np.nan)
        return cls(target, nan, nan.copy(), np.zeros(n, bool), np.zeros(n, bool), nan.copy(),
                   nan.copy(), 0, True)

    def record(self, idx: np.ndarray, judged: Judged) -> None:
        """Store the verdicts of entries ``idx``."""
        a = self.target.analytic_flat[idx]
        self.numeric[idx] = a + judged.error
        self.tolerance[idx] = judged.tolerance
        self.wrong[idx] = judged.wrong
        self.kink[idx] = judged.kink
        self.left[idx] = a + judged.left
        self.right[idx] = a + judged.right


def full_outcome(phi: Objective, target: Target, f0: float, **kwargs: object) -> tuple[
        Outcome, int]:
    """Check every entry of ``target`` (keyword arguments as :func:`check_entries`)."""
    idx = np.arange(target.size)
    judged = check_entries(phi, target, idx, f0, **kwargs)  # type: ignore[arg-type]
    out = Outcome.empty(target)
    out.record(idx, judged)
    out.n_wrong = int(out.wrong.sum())
    out.ok = out.n_wrong == 0
    return out, judged.evaluations


def complex_step_entries(fn: Callable[[np.ndarray], complex], x: np.ndarray,
                         idx: np.ndarray, *, step: float = 1e-20,
                         describe: str = "the function") -> np.ndarray:
    """Derivatives ``Im f(x + i·h·e_k) / h`` of entries ``idx`` (no subtractive cancellation).

    ``x`` is a complex working copy, perturbed in place and restored per entry.
    """
    flat = x.reshape(-1)
    out = np.empty(idx.size)
    k = 0
    try:
        for k, i in enumerate(idx.tolist()):
            old = flat[i]
            h = step * max(abs(old.real), 1.0)
            flat[i] = old + 1j * h
            value = fn(x)
            flat[i] = old
            out[k] = np.imag(value) / h
    except Exception as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__} on complex input "
                            f"(entry {k} perturbed by i·h): {err}; method='complex' needs a "
                            f"function written with complex-safe operations") from err
    return out


__all__ = ["PRECISIONS", "Judged", "Outcome", "Probe", "Target", "check_entries", "complex_step_entries",
           "evaluate_entries", "full_outcome", "judge", "probe_entries"]
