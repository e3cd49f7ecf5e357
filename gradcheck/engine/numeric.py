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
>>> judging = Judging.default(noise=1.0, precision=PRECISIONS["float64"])
>>> judged = check_entries(phi, target, np.arange(3), phi(), judging)
>>> bool(judged.wrong.any())
False
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gradcheck.engine.blocks import pairwise_sum, rms_of, spans
from gradcheck.engine.safety import NonFiniteError, UserCodeError
from gradcheck.engine.streams import stream
from gradcheck.engine.tolerances import (
    DOMAIN_SHRINK_RATIO,
    DOMAIN_SHRINKS,
    FINE_PHI_STEP_UNITS,
    FINE_RESOLUTION,
    GAP_ROUNDINGS,
    GAP_SHRANK,
    HULL_ROUNDINGS,
    INPUT_SCALE_ROUNDINGS,
    KINK_RESOLUTION,
    LOPSIDED_GAP,
    MAX_RELATIVE_STEP,
    MIN_STEP_UNITS,
    NEGLIGIBLE_TENSOR,
    NOISE_AGREEMENT,
    PERSISTING_GAP,
    PRECISIONS,
    RAISE_RATIO,
    REFINE_FRACTION,
    RESOLUTION,
    SHARPER_FRACTION,
    SHRINK_PASSES,
    SHRINK_RATIO,
    SMOOTH_MODEL_MISS,
    UNDERFLOW_TINIES,
    UNSETTLED_CHANGE,
    ZERO_GRADIENT,
    Precision,
)

Objective = Callable[[], float]
#: ``(target, idx, up, down, relative step) -> (f_up, f_down)``: φ with entry ``idx[k]``
#: at ``up[k]`` and at ``down[k]`` (the default is :func:`evaluate_entries`; structured
#: full mode and the executor provide others, see ``structure.py`` and ``parallel.py``).
EntryEvaluator = Callable[["Target", np.ndarray, np.ndarray, np.ndarray, float],
                          tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Judging:
    """How one run judges its differences: the settings full mode, fast mode and the
    kink review share (made once by the runner, passed down unchanged).

    Attributes
    ----------
    noise : float
        The rounding scale of φ near the point (σ of the noise probe, at least 1).
    precision : Precision
        The precision row φ is judged at (eps, the default step, rtol and atol).
    step : float
        The relative step of the first difference.
    rtol : float
        The relative tolerance.
    atol : float or None
        The absolute floor in derivative units; None for the precision row's ``atol``
        times the checked tensor's RMS analytic gradient.
    describe : str
        How errors name the function ("layer.forward", ...).
    floors_resolve : bool
        Count the ``rtol``/``atol`` floors into an entry's resolution: True when they are
        the precision row's defaults, False when the user chose them
        (:func:`judge_resolving`).

    >>> judging = Judging.default(noise=1.0, precision=PRECISIONS["float64"], rtol=1e-4)
    >>> judging.step == PRECISIONS["float64"].step, judging.rtol
    (True, 0.0001)
    """

    noise: float
    precision: Precision
    step: float
    rtol: float
    atol: float | None = None
    describe: str = "the function"
    floors_resolve: bool = True

    @classmethod
    def default(cls, noise: float, precision: Precision, **given: object) -> Judging:
        """The precision row's step and rtol, with ``given`` fields replacing defaults."""
        return replace(cls(noise, precision, precision.step, precision.rtol),
                       **given)  # type: ignore[arg-type]

    def entry_atol(self, target: Target) -> float:
        """The absolute floor for one entry of ``target`` (derivative units)."""
        if self.atol is not None:
            return self.atol
        return self.precision.atol * rms(target.analytic_flat)


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
    grad_dtype : dtype
        Dtype the analytic gradient was computed in (default: ``storage``): below its
        smallest normal it holds nothing (see :attr:`underflow`).
    """

    name: str
    role: str
    array: np.ndarray
    analytic: np.ndarray
    storage: np.dtype = None  # type: ignore[assignment]  # None: the array's own dtype
    layout: str = ""
    grad_dtype: np.dtype = None  # type: ignore[assignment]  # None: ``storage``
    values: np.ndarray = field(init=False, repr=False)
    analytic_flat: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.storage = np.dtype(self.storage or self.array.dtype)
        self.grad_dtype = np.dtype(self.grad_dtype or self.storage)
        self.values = np.array(self.array, dtype=np.float64).ravel()
        self.analytic_flat = np.asarray(self.analytic, dtype=np.float64).ravel()

    @property
    def size(self) -> int:
        return self.array.size

    def input_rounding(self) -> float:
        """Relative rounding of a gradient computed in ``grad_dtype`` from these inputs:
        :data:`INPUT_SCALE_ROUNDINGS` · ε · max |θ| (never below ε's multiple at |θ| = 1)."""
        if self.grad_dtype.kind not in "fc" or not self.values.size:
            return 0.0
        largest = float(np.max(np.abs(self.values), initial=1.0, where=np.isfinite(self.values)))
        return INPUT_SCALE_ROUNDINGS * float(np.finfo(self.grad_dtype).eps) * largest

    @property
    def underflow(self) -> float:
        """Absolute uncertainty of an analytic entry from underflow in its dtype:
        :data:`UNDERFLOW_TINIES` smallest normals (0 for a non-floating dtype)."""
        if self.grad_dtype.kind not in "fc":
            return 0.0
        return UNDERFLOW_TINIES * float(np.finfo(self.grad_dtype).tiny)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def flat(self) -> np.ndarray:
        """A writable flat view of ``array`` (``array.flat`` when not contiguous)."""
        if self.array.flags.c_contiguous:
            return self.array.reshape(-1)
        return self.array.flat  # type: ignore[return-value]

    def index(self, i: int | np.integer) -> tuple[int, ...]:
        return tuple(int(k) for k in np.unravel_index(int(i), self.shape))

    def realize(self, values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray]:
        """Perturbed values up/down as stored, and the realized steps δ+, δ− (signs of h).

        The down value mirrors the realized up step, so δ− = δ+ exactly almost always and
        the quadratic term cancels in the central difference.
        """
        up, delta_up = self.realize_up(values, steps)
        with np.errstate(over="ignore"):  # copy=False: no copies when storage is float64
            down = _stored(values - delta_up, self.storage)
        return up, down, delta_up, values - down

    def realize_up(self, values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray,
                                                                         np.ndarray]:
        """The up half of :meth:`realize`: perturbed values as stored, and δ+."""
        with np.errstate(over="ignore"):
            up = _stored(values + steps, self.storage)
            return up, up - values


def _stored(values: np.ndarray, storage: np.dtype) -> np.ndarray:
    """``values`` rounded to ``storage`` and back to float64 (in place of a fresh array)."""
    return values.astype(storage, copy=False).astype(np.float64, copy=False)


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
    #: Items whose error changed by over a quarter between the two steps, or whose two
    #: steps contradict the smooth model: the step may be too coarse for the function
    #: there (see :func:`judge_shrinking`). None when nothing was refined.
    unsettled: np.ndarray | None = None
    #: The finite-difference part of ``tolerance`` (rounding and truncation, without the
    #: ``rtol``/``atol`` floors): what the differences themselves can resolve.
    estimate: np.ndarray | None = None
    #: Items no step resolved (see :func:`judge_resolving`): neither agreeing nor wrong.
    unresolved: np.ndarray | None = None
    #: Items resolved only coarsely (above ``FINE_RESOLUTION``): a small error could hide.
    coarse: np.ndarray | None = None
    #: Items whose verdict comes from a smaller step (:func:`judge_shrinking`): a kink or
    #: a fast variation lies within the first step, so they resolve like kinks.
    shrunk: np.ndarray | None = None
    #: Wrong items that a smaller step contradicted without settling (judge_shrinking):
    #: they are unresolved, not wrong.
    contested: np.ndarray | None = None
    #: Items judged inside the one-sided hull because the two steps contradict the smooth
    #: model (a kink within the step, or a step too coarse): their uncertainty is the gap.
    hull: np.ndarray | None = None

    def unresolved_mask(self) -> np.ndarray:
        if self.unresolved is None:
            return np.zeros(self.wrong.size, bool)
        return self.unresolved


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


def require_finite_values(values: np.ndarray, target_name: str, where: Callable[[int], object],
                          describe: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.argmax(bad))
        raise NonFiniteError(
            f"{describe} returned {values[k]} with {target_name}{where(k)} perturbed, at every "
            f"step tried (down to {DOMAIN_SHRINKS} times {DOMAIN_SHRINK_RATIO:g}× smaller): "
            f"the function is not finite next to the point; check away from its domain "
            f"boundary")


def probe_entries(phi: Objective, target: Target, idx: np.ndarray, step: float, f0: float,
                  describe: str = "the function",
                  evaluate: EntryEvaluator | None = None,
                  min_step: float | None = None) -> Probe:
    """Central and one-sided residuals of entries ``idx`` at relative step ``step``.

    Entries whose step leaves the function's domain (φ not finite there) are probed
    again at :data:`DOMAIN_SHRINK_RATIO` times smaller steps, each entry keeping its own
    realized step; only when no step up to :data:`DOMAIN_SHRINKS` shrinks is finite does
    the check raise :class:`NonFiniteError`, naming the entry. ``evaluate`` replaces
    :func:`evaluate_entries` (same values, other ways of computing them); ``min_step``
    (default :func:`min_relative_step` of the target) floors every relative step.
    """
    def run(at: np.ndarray, up: np.ndarray, down: np.ndarray, s: float
            ) -> tuple[np.ndarray, np.ndarray]:
        if evaluate is None:
            return evaluate_entries(phi, target, at, up, down, describe)
        return evaluate(target, at, up, down, s)

    values = target.values[idx]
    floor = min_relative_step(target) if min_step is None else min_step
    h = max(step, floor) * np.maximum(np.abs(values), 1.0)
    up, down, d_up, d_down = target.realize(values, h)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        f_up, f_down = run(idx, up, down, step)
        for _ in range(DOMAIN_SHRINKS):
            bad = np.flatnonzero(~(np.isfinite(f_up) & np.isfinite(f_down)))
            if not bad.size or step / DOMAIN_SHRINK_RATIO < floor:
                break
            step /= DOMAIN_SHRINK_RATIO
            h[bad] = step * np.maximum(np.abs(values[bad]), 1.0)
            up[bad], down[bad], d_up[bad], d_down[bad] = target.realize(values[bad], h[bad])
            f_up[bad], f_down[bad] = run(idx[bad], up[bad], down[bad], step)
    for vals in (f_up, f_down):
        require_finite_values(vals, target.name, lambda k: list(target.index(idx[k])), describe)
    a = target.analytic_flat[idx]
    return Probe(r_up=(f_up - f0) - a * d_up, r_down=(f0 - f_down) - a * d_down,
                 h_up=d_up, h_down=d_down, f_up=f_up, f_down=f_down)


def rms(values: np.ndarray) -> float:
    """Root mean square of ``values``, without overflow or underflow in the squares.

    >>> bool(rms(np.array([3e200, 4e200])) == np.sqrt(12.5) * 1e200)
    True
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return rms_of(flat.size, lambda lo, hi: flat[lo:hi])  # block-wise: no full-size temporary


def scale_floors(targets: Sequence[Target]) -> list[float]:
    """The least size each target's entries must resolve (see :func:`judge_resolving`).

    A target's own RMS gradient, but never below :data:`NEGLIGIBLE_TENSOR` of the largest
    target's: a tensor whose true gradient is 0 (a bias feeding batch norm) is resolved
    against the check's scale, not against its own rounding.

    >>> t = [Target("W", "param", np.ones(2), np.ones(2)), Target("b", "param", np.ones(1),
    ...                                                        np.zeros(1))]
    >>> scale_floors(t)
    [1.0, 0.001]
    """
    own = [rms(t.analytic_flat) for t in targets]
    top = max(own, default=0.0)
    return [max(r, NEGLIGIBLE_TENSOR * top) for r in own]


def min_relative_step(target: Target, precision: Precision | None = None) -> float:
    """Smallest relative step: :data:`MIN_STEP_UNITS` units of the storage format, or,
    where φ computes in a finer ``precision`` than that, :data:`FINE_PHI_STEP_UNITS`
    units of it (never below ``MIN_STEP_UNITS`` of φ's format).

    >>> t = Target("x", "input", np.zeros(2), np.zeros(2), storage=np.float32)
    >>> min_relative_step(t) > min_relative_step(t, PRECISIONS["float64"])
    True
    """
    storage = float(np.finfo(target.storage).eps)
    if precision is None or precision.eps >= storage:
        return MIN_STEP_UNITS * storage
    return max(MIN_STEP_UNITS * precision.eps, FINE_PHI_STEP_UNITS * storage)


@dataclass
class _Pass:
    """One probe in derivative units: central error, one-sided errors, their rounding."""

    span: np.ndarray  # δ+ + δ−
    h_up: np.ndarray
    h_down: np.ndarray
    error: np.ndarray  # central difference − analytic
    rounding: np.ndarray  # of the central difference
    up: np.ndarray  # D+ − analytic
    down: np.ndarray  # D− − analytic
    side_rounding: np.ndarray  # of a one-sided difference

    @classmethod
    def of(cls, probe: Probe, noise: float, precision: Precision, grain: float = 0.0
           ) -> _Pass:
        """``grain``: the analytic value's own absolute uncertainty (underflow), added to
        both roundings (it is in derivative units already)."""
        scale = np.maximum(noise, np.maximum(np.abs(probe.f_up), np.abs(probe.f_down)))
        roundoff = precision.rounding_safety * precision.eps * 2 * scale
        span = probe.h_up + probe.h_down
        return cls(span, probe.h_up, probe.h_down, (probe.r_up + probe.r_down) / span,
                   roundoff / span + grain, probe.r_up / probe.h_up,
                   probe.r_down / probe.h_down,
                   roundoff / np.minimum(probe.h_up, probe.h_down) + grain)

    @property
    def gap(self) -> np.ndarray:
        return self.up - self.down

    def subset(self, mask: np.ndarray) -> _Pass:
        return _Pass(*(getattr(self, k)[mask] for k in self.__dataclass_fields__))


def judge(first: Probe, magnitude: np.ndarray, noise: float, precision: Precision, *,
          rtol: float, atol: np.ndarray | float,
          refine: Callable[[np.ndarray, float], Probe] | None = None,
          refine_all: bool = False, grain: float = 0.0) -> Judged:
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
    grain : float
        Absolute uncertainty of the analytic value itself, in derivative units (the
        underflow of its dtype, :attr:`Target.underflow`): part of the rounding, so of
        both the tolerance and the estimate.

    Notes
    -----
    First pass: ``e1 = (r+ + r−)/(δ+ + δ−)``, tolerance ``κ·eps·2|φ|/(δ+ + δ−)``
    (rounding) plus the floors. Items with ``|e1|`` above half their tolerance, or whose
    one-sided derivatives differ by more than 5 %, get a second pass at half the step:
    Richardson ``eR = e2 + (e2 − e1)/(r² − 1)`` judged against rounding + the observed
    change ``|e2 − e1|`` (an error that shrinks with the step is truncation, whatever its
    order; a wrong gradient stays put). A smooth function's one-sided derivatives move
    as ``f''·δ/2`` with the step; when the two steps contradict that model (the gap does
    not halve, or one side does not move as predicted), a kink lies within the step: the
    analytic value passes when it lies between the one-sided derivatives, and the item
    is flagged non-differentiable when the gap persists at θ itself.
    """
    p1 = _Pass.of(first, noise, precision, grain)
    floor = rtol * (magnitude + np.abs(p1.error)) + atol
    tol1 = p1.rounding + floor
    lopsided = (np.abs(p1.gap) > LOPSIDED_GAP * (magnitude + np.abs(p1.up) + np.abs(p1.down))
                + 2 * p1.side_rounding)
    again = (np.abs(p1.error) > REFINE_FRACTION * tol1) | lopsided | refine_all
    n = p1.error.size
    out = Judged(error=p1.error.copy(), tolerance=tol1, wrong=~(np.abs(p1.error) <= tol1),
                 kink=np.zeros(n, bool), left=np.full(n, np.nan), right=np.full(n, np.nan),
                 refined=again.copy(), estimate=p1.rounding.copy())
    if refine is None or not again.any():
        return out
    p2 = _Pass.of(refine(again, 2.0), noise, precision, grain)
    out.evaluations = 2 * int(again.sum())
    error, tolerance, wrong, kink, left, right, rough = _judge_refined(
        p1.subset(again), p2, floor[again])
    out.error[again], out.tolerance[again], out.wrong[again] = error, tolerance, wrong
    out.estimate[again] = tolerance - floor[again]  # type: ignore[index]
    out.kink[again], out.left[again], out.right[again] = kink, left, right
    out.hull = np.zeros(n, bool)
    out.hull[again] = rough
    out.unsettled = np.zeros(n, bool)
    out.unsettled[again] = rough | (np.abs(p2.error - p1.error[again])
                                    > UNSETTLED_CHANGE * np.abs(p1.error[again]))
    return out


def _judge_refined(p1: _Pass, p2: _Pass, floor: np.ndarray) -> tuple[np.ndarray, ...]:
    """Second-pass verdicts: Richardson where smooth, the one-sided hull at a kink.

    Returns (error, tolerance, wrong, kink at θ, left, right, rough), left/right being the
    one-sided derivatives minus analytic and ``rough`` marking items where the two steps
    contradict the smooth model (a kink within the step, or a step too coarse).
    """
    ratio = (p1.span / p2.span) ** 2 - 1
    ratio = np.where(ratio > 0, ratio, np.inf)  # equal steps (clamped): no extrapolation
    richardson = p2.error + (p2.error - p1.error) / ratio
    # Truncation allowance: the whole change between the two steps, not the O(h²) model's
    # third of it, so first-order truncation (f'' jumps, as softsign's at 0) is not a
    # false alarm. A wrong gradient does not move with the step, so this costs no power.
    # (rounding of the extrapolation: p2's plus p1's / ratio; written so that equal steps,
    # ratio = ∞, give p2's rounding instead of ∞/∞)
    tol_r = (p2.rounding + p1.rounding / ratio + np.abs(p2.error - p1.error) + floor)
    # Smooth model: one-sided (D± − a) = c ± f''·δ±/2, so with f'' read off the second gap
    # the first gap and both one-sided changes are predicted; a kink within the step
    # breaks at least one prediction (whatever its distance from θ).
    g1, g2 = p1.gap, p2.gap
    scale = np.maximum(np.abs(g1), np.abs(g2))
    curv = g2 / p2.span  # f''/2
    miss = np.maximum.reduce([
        np.abs(g1 - curv * p1.span),
        np.abs((p1.up - p2.up) - curv * (p1.h_up - p2.h_up)),
        np.abs((p1.down - p2.down) + curv * (p1.h_down - p2.h_down))])
    # A gap that persists at half the step and exceeds the central error is a kink's
    # signature even when rounding blurs the smooth-model test (float32 φ ≫ the entry):
    # judging its central difference, a kink's mean slope, would cry wolf.
    persists = (np.abs(g2) > PERSISTING_GAP * np.abs(g1)) & (np.abs(g2) >= np.abs(p2.error))
    window = (((scale > GAP_ROUNDINGS * p2.side_rounding + floor)
               & (miss > SMOOTH_MODEL_MISS * scale)) | persists)
    # One-sided differences err by O(δ): extrapolate each side linearly to δ = 0. Near a
    # kink inside the step the extrapolation of that side overshoots, so the hull keeps
    # the raw values too (the true derivative is one of the sides or between them).
    up_x = p2.up + (p2.up - p1.up) * p2.h_up / _positive(p1.h_up - p2.h_up)
    down_x = p2.down + (p2.down - p1.down) * p2.h_down / _positive(p1.h_down - p2.h_down)
    candidates = np.stack([p2.up, p2.down, up_x, down_x])
    tol_k = HULL_ROUNDINGS * p2.side_rounding + floor
    inside = (candidates.min(axis=0) - tol_k <= 0) & (0 <= candidates.max(axis=0) + tol_k)
    at_point = (window & (np.abs(g2) > PERSISTING_GAP * np.abs(g1))
                & (np.abs(g2) > GAP_ROUNDINGS * p2.side_rounding + 2 * floor))
    return (np.where(window, p2.error, richardson), np.where(window, tol_k, tol_r),
            # not (≤): a NaN tolerance (steps that round away) fails closed
            np.where(window, ~inside, ~(np.abs(richardson) <= tol_r)), at_point,
            np.where(at_point, down_x, p2.down), np.where(at_point, up_x, p2.up), window)


def _positive(x: np.ndarray) -> np.ndarray:
    """``x`` where positive, else ∞ (a zero shrink means no extrapolation)."""
    return np.where(x > 0, x, np.inf)


def judge_shrinking(probe_at: Callable[[np.ndarray, float], Probe], magnitude: np.ndarray,
                    noise: float, precision: Precision, *, step: float, min_step: float,
                    rtol: float, atol: float, refine_all: bool = False,
                    grain: float = 0.0) -> Judged:
    """:func:`judge` at ``step``, then again at smaller steps where the step was too coarse.

    The relative step ``c·max(|θ|, 1)`` assumes φ varies on the scale of ``|θ|``; where it
    varies faster (``sin`` of a large float32 input: a step of 20 spans several periods)
    both passes measure truncation, not a derivative (and may agree on it: the mean slope
    of ``sin`` over many periods is ≈ 0 at either step), or pass inside a one-sided hull
    that is mere truncation. Every wrong item, and every pass the two steps could not
    settle, is judged again at ``step / 16``, ``/ 256`` and ``/ 4096`` (never below
    ``min_step``) for as long as it stays unsettled without a kink at θ (a kink seen
    again at a smaller step is real). A wrong item is cleared only with a tolerance
    below half its first error: a wrong gradient (an error that stays put) cannot hide
    behind the larger rounding of a smaller step. A pass is overturned only where the
    one-sided gap shrank at least 4× with the 16× smaller step: at a genuine kink the
    gap stays, and the smaller step's rounding must not turn a valid subgradient into a
    mismatch. Smooth correct code pays nothing; each retried item costs 2–4 evaluations
    per smaller step. A function whose scale is far below the step's floor ``c·1``
    (``tanh(x / 1e-8)``) still needs an explicit ``eps``.

    ``probe_at(items, step)`` probes the items (indices) at relative step ``step``.
    """
    def judge_at(items: np.ndarray, s: float) -> Judged:
        def refine(sub: np.ndarray, ratio: float) -> Probe:
            return probe_at(items[sub], s / ratio)

        judged = judge(probe_at(items, s), magnitude[items], noise, precision, rtol=rtol,
                       atol=atol, refine=refine, refine_all=refine_all, grain=grain)
        judged.evaluations += 2 * items.size
        return judged

    out = judge_at(np.arange(magnitude.size), step)
    out.shrunk = np.zeros(magnitude.size, bool)
    out.contested = np.zeros(magnitude.size, bool)
    was_wrong, first_error = out.wrong.copy(), np.abs(out.error)
    # Two coarse steps can agree on garbage, or pass inside a hull far too wide: retry
    # every wrong item and every pass the two steps could not settle.
    retry = np.flatnonzero(out.wrong | _unsettled(out))
    for _ in range(SHRINK_PASSES):
        step /= SHRINK_RATIO
        if not retry.size or step < min_step:
            break
        again = judge_at(retry, step)
        out.evaluations += again.evaluations
        # A wrong item is cleared only by a sharper verdict. A pass is overturned only
        # where the one-sided gap shrank with the step (the coarse hull was truncation):
        # at a genuine kink the gap stays, and a smaller step's rounding can hide it.
        sharper = again.tolerance < SHARPER_FRACTION * first_error[retry]
        gap_shrank = _gap(again) < GAP_SHRANK * _gap(out)[retry]
        # ... or where the smaller step sees a smooth function (no hull) and agrees there
        # sharply (a wrong verdict from a smaller step alone would risk a false alarm: a
        # float32 staircase; the coarse hull pass then stays, and its gap counts against
        # its resolution)
        clean = ((np.ones(retry.size, bool) if again.hull is None else ~again.hull)
                 & sharper & ~again.wrong)
        take = np.where(was_wrong[retry], again.wrong | sharper, gap_shrank | clean)
        # A wrong item that a smaller step contradicts (it agrees there, and the first
        # error lies outside its tolerance) but too coarsely to clear it: neither
        # measurement can be trusted (a step spanning whole periods of sin reads a mean
        # slope of 0); it is contested, and ends unresolved unless a later step settles it.
        contested = (was_wrong[retry] & ~take & ~again.wrong
                     & (np.abs(again.error - out.error[retry]) > again.tolerance))
        out.contested[retry[contested]] = True
        out.contested[retry[take]] = False
        _take(out, retry[take], again, take)
        out.shrunk[retry[take]] = True
        # a kink at θ seen again at a 16× smaller step is real: stop there
        retry = retry[take & _unsettled(again) & ~again.kink]
    return out


def _take(out: Judged, items: np.ndarray, again: Judged, mask: np.ndarray) -> None:
    """Replace the verdicts of ``items`` in ``out`` by those of ``again`` where ``mask``."""
    for name in ("error", "tolerance", "wrong", "kink", "left", "right", "estimate"):
        getattr(out, name)[items] = getattr(again, name)[mask]
    if out.hull is None:
        out.hull = np.zeros(out.wrong.size, bool)
    out.hull[items] = False if again.hull is None else again.hull[mask]


@dataclass(frozen=True)
class _Bar:
    """What each item must resolve, and how sharply (see :func:`judge_resolving`)."""

    analytic: np.ndarray  # the claimed value per item
    scale_floor: float
    floors_resolve: bool
    precision: Precision
    grain: float = 0.0  # the analytic value's underflow (in every estimate)

    def resolution(self, judged: Judged, items: np.ndarray) -> np.ndarray:
        """Tolerance over what each item must resolve (0 = perfect; ∞ where nothing sets a
        size; NaN fails every comparison). ``judged`` holds exactly the ``items``."""
        a = self.analytic[items]
        # the one-sided derivatives set the size only at a kink (elsewhere, at a step
        # too coarse for the function, they can be garbage of any size)
        sides = np.where(judged.kink, np.nan_to_num(np.maximum(np.abs(a + judged.left),
                                                               np.abs(a + judged.right))), 0.0)
        need = np.maximum.reduce([np.abs(a), np.abs(a + judged.error), sides,
                                  np.full(a.size, self.scale_floor)])
        tolerance = judged.tolerance if self.floors_resolve else judged.estimate
        assert tolerance is not None
        if judged.hull is not None:  # a hull pass away from a kink is as sharp as its gap
            gap = np.nan_to_num(np.abs(judged.right - judged.left))
            tolerance = tolerance + np.where(judged.hull & ~judged.kink, gap, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(need > 0, tolerance / need, np.inf)

    def unresolved(self, judged: Judged, items: np.ndarray) -> np.ndarray:
        shrunk = judged.shrunk if judged.shrunk is not None else np.zeros(items.size, bool)
        limit = np.where(judged.kink | shrunk, KINK_RESOLUTION, RESOLUTION)
        return ~(self.resolution(judged, items) <= limit)

    def zero(self, judged: Judged, items: np.ndarray) -> np.ndarray:
        """A claimed exact zero that differences confirm to within ZERO_GRADIENT·√eps in
        absolute terms: where the check has no (or only a tiny) scale (x² at 0, x³ at
        1e-7) nothing else can be relative; a gradient hidden under a large φ leaves a far
        larger estimate, and stays unresolved. The differences must confirm the zero on
        their own: a float32 gradient that underflowed to 0 where differences resolve a
        value (1e-55) is within its grain, not confirmed (it stays unresolved)."""
        estimate = judged.estimate
        assert estimate is not None
        return ((self.analytic[items] == 0) & (np.abs(judged.error) <= estimate - self.grain)
                & (estimate <= ZERO_GRADIENT * self.precision.atol))


def judge_resolving(probe_at: Callable[[np.ndarray, float], Probe], analytic: np.ndarray,
                    magnitude: np.ndarray, noise: float, precision: Precision, *,
                    step: float, min_step: float, rtol: float, atol: float,
                    scale_floor: float, refine_all: bool = False,
                    floors_resolve: bool = True, grain: float = 0.0,
                    band: np.ndarray | float = 0.0) -> Judged:
    """:func:`judge_shrinking`, then other steps for items the tolerance cannot resolve.

    An item *agrees* only when its tolerance (``Judged.estimate``, rounding and
    truncation, plus the floors when ``floors_resolve``; a hull pass away from a kink
    adds its gap) is at most :data:`RESOLUTION` times what it must resolve:
    ``max(|analytic|, |numeric|, scale_floor)`` (and the one-sided derivatives at a kink,
    where :data:`KINK_RESOLUTION` applies, as it does where the verdict came from a
    smaller step). Otherwise a sign flip or a zero gradient could hide inside the
    tolerance (a large value next to a small variation: ``1e10 + Σx²``). Rounding falls
    like ``1/h``, so such items — and those resolved only above
    :data:`FINE_RESOLUTION`, where a 1 % error could hide — are judged again at steps
    :data:`RAISE_RATIO` times larger, up to :data:`MAX_RELATIVE_STEP`; those still
    unresolved (truncation-bound: a step far above the function's scale) at smaller
    steps. A verdict there replaces the first when it is sharper, not at a kink, and
    consistent with the first measurement (the two errors differ by less than the sum of
    their tolerances: a wrong gradient's error stays put, a step too large for the
    function moves it). Items still unresolved (or whose steps leave the function's
    domain), and wrong items a smaller step contradicted without settling, are marked
    ``unresolved``: not wrong, and never an agreement. Other wrong items stay wrong.

    Parameters
    ----------
    analytic : ndarray
        The claimed value per item (an entry's gradient, or ``g·u`` for a direction).
    magnitude : ndarray
        As for :func:`judge` (``|a_i|``, or ``Σ|a_i u_i|`` for a direction).
    scale_floor : float
        The least size an item must resolve: the tensor's RMS gradient (entries) or the
        direction's expected ``|g·u|`` (fast mode), so entries whose true value is 0 are
        judged against the tensor's scale instead of their own.
    floors_resolve : bool
        Count the ``rtol``/``atol`` floors into the resolution (True when they are the
        precision table's defaults: a default floor as wide as the gradient — ``rtol`` of
        a noisy float32 φ times a long direction's ``Σ|a_i u_i|`` — resolves nothing);
        False when the user chose them.
    grain : float
        As for :func:`judge` (underflow of the analytic value's dtype).
    band : float or ndarray
        Rounding of the analytic value itself, beyond the tolerance (per item or one for
        all): a wrong item whose error lies within ``tolerance + band`` is unresolved.
    """
    out = judge_shrinking(probe_at, magnitude, noise, precision, step=step, min_step=min_step,
                          rtol=rtol, atol=atol, refine_all=refine_all, grain=grain)
    bar = _Bar(analytic, scale_floor, floors_resolve, precision, grain)
    every = np.arange(magnitude.size)
    contested = out.contested if out.contested is not None else np.zeros(every.size, bool)
    out.wrong &= ~contested
    pending = (bar.unresolved(out, every) & ~out.wrong) | contested
    zero = bar.zero(out, every)
    base_error, base_tolerance = out.error.copy(), out.tolerance.copy()

    def climb(retry: np.ndarray, steps: Iterable[float]) -> None:
        """Re-judge ``retry`` along ``steps`` while each step sharpens the resolution."""
        for s in steps:
            if not retry.size:
                return
            items = retry

            def refine(sub: np.ndarray, ratio: float, items: np.ndarray = items,
                       s: float = s) -> Probe:
                return probe_at(items[sub], s / ratio)

            try:
                again = judge(probe_at(items, s), magnitude[items], noise, precision,
                              rtol=rtol, atol=atol, refine=refine, grain=grain)
            except (UserCodeError, NonFiniteError):
                return  # the step leaves the function's domain: these stay as they are
            out.evaluations += again.evaluations + 2 * items.size
            consistent = (np.abs(again.error - base_error[items])
                          <= base_tolerance[items] + again.tolerance)
            sharper = (~again.kink & consistent
                       & (bar.resolution(again, items) < bar.resolution(out, every)[items]))
            _take(out, items[sharper], again, sharper)
            out.shrunk[items[sharper]] = False  # type: ignore[index]
            pending[items[sharper]] &= bar.unresolved(again, items)[sharper]
            zero[items] |= bar.zero(again, items)
            retry = items[sharper & (bar.resolution(again, items) > FINE_RESOLUTION)
                          & ~again.wrong]

    # A kink is judged at its own step: another would only straddle more of the function.
    coarse = pending | (bar.resolution(out, every) > FINE_RESOLUTION)
    climb(np.flatnonzero(coarse & ~out.wrong & ~out.kink),
          sorted({min(step * RAISE_RATIO ** k, MAX_RELATIVE_STEP) for k in range(1, 8)}
                 - {step}))
    climb(np.flatnonzero(pending & ~out.wrong & ~out.kink),
          [s for s in (step / RAISE_RATIO ** k for k in range(1, 4)) if s >= min_step])
    # an error the analytic side's own rounding could explain proves nothing either way
    explained = out.wrong & (np.abs(out.error) <= out.tolerance + band)
    out.wrong &= ~explained
    pending |= explained
    out.unresolved = pending & ~zero & ~out.wrong  # a wrong verdict is decisive
    out.coarse = ~zero & ~out.wrong & ~(bar.resolution(out, every) <= FINE_RESOLUTION)
    return out


def _gap(judged: Judged) -> np.ndarray:
    """|D+ − D−| per item (0 where no one-sided values were taken: smooth at the first step)."""
    return np.nan_to_num(np.abs(judged.right - judged.left), nan=0.0)


def _unsettled(judged: Judged) -> np.ndarray:
    if judged.unsettled is None:
        return np.zeros(judged.wrong.size, bool)
    return judged.unsettled


def check_entries(phi: Objective, target: Target, idx: np.ndarray, f0: float,
                  judging: Judging, *, refine_all: bool = False,
                  scale_floor: float | None = None,
                  evaluate: EntryEvaluator | None = None) -> Judged:
    """Full-mode check of entries ``idx`` of one target (2 evaluations each, +2 if refined).

    ``judging`` holds the step, tolerances and noise (:class:`Judging`). ``scale_floor``
    (default: the target's RMS analytic gradient) is the least size an entry must resolve
    (:func:`judge_resolving`). ``judged.evaluations`` counts every φ call made
    (``evaluate``, as for :func:`probe_entries`, may make fewer: it counts its own).
    """
    floor = min_relative_step(target, judging.precision)

    def probe_at(items: np.ndarray, s: float) -> Probe:
        return probe_entries(phi, target, idx[items], s, f0, judging.describe, evaluate,
                             floor)

    if scale_floor is None:
        scale_floor = rms(target.analytic_flat)
    analytic = target.analytic_flat[idx]
    return judge_resolving(probe_at, analytic, np.abs(analytic), judging.noise,
                           judging.precision, step=judging.step, min_step=floor,
                           rtol=judging.rtol, atol=judging.entry_atol(target),
                           scale_floor=scale_floor, refine_all=refine_all,
                           floors_resolve=judging.floors_resolve, grain=target.underflow,
                           band=target.input_rounding() * (np.abs(analytic) + scale_floor))


#: Points of one noise probe, and the relative extents of the two probes taken.
NOISE_POINTS, NOISE_EXTENTS = 9, (1e-3, 1e-5)


def measure_noise(phi: Objective, targets: list[Target], f0: float, *, seed: int,
                  describe: str = "the function") -> tuple[float, float, np.ndarray]:
    """Noise level σ of φ near θ, trusted only when probes of different extents agree.

    Genuine noise (rounding of internal float32 arithmetic) has the same size along a
    line 100× shorter; the scatter a kink on the line causes about the cubic fit shrinks
    with the extent (or vanishes once the kink is off the line), and a smooth float64
    function leaves an O(t⁴) misfit that shrinks even faster. So σ is the smaller of the
    two estimates when they agree within a factor 6 (two estimates of one noise with 4
    degrees of freedom each differ more with probability ≈ 0.5 %), else 0: the rounding
    is then estimated from the dtype alone (no false precision claimed near kinks).
    Returns ``(σ, the smaller estimate even when they disagree, the values seen)``; the
    second is an upper bound on genuine noise that callers may use as a capped floor.

    >>> x = np.array([0.3, -0.2])
    >>> t = Target("x", "input", x, analytic=np.cos(x))
    >>> phi = lambda: float(np.sin(x).sum())
    >>> measure_noise(phi, [t], phi(), seed=0)[0] < 1e-15
    True
    """
    found = [_scatter(phi, targets, f0, seed=(seed, "noise", index), extent=extent,
                      describe=describe) for index, extent in enumerate(NOISE_EXTENTS)]
    seen = np.concatenate([values for _, values in found])
    low, high = sorted(sigma for sigma, _ in found)
    return (low if high <= NOISE_AGREEMENT * low else 0.0), low, seen


def walk_along(phi: Objective, targets: Sequence[Target], dirs: Sequence[np.ndarray],
               offsets: Iterable[float], *, describe: str,
               during: str) -> tuple[np.ndarray, np.ndarray]:
    """φ at ``θ + t·d`` for each offset ``t``, with the analytic linear term ``g·δ``.

    Each step is realized in its target's dtype and ``δ`` is the realized change, so the
    linear term matches what φ saw. The targets are restored afterwards, also when φ
    raises (re-raised as :class:`UserCodeError` naming ``during``). Shared by the
    Taylor test and the noise probe.

    Returns ``(values, linear terms)``, one entry per offset.
    """
    values, linear = [], []
    try:
        # a probe line may leave the function's domain: NumPy's warnings there are not the
        # user's (a non-finite value is handled by the caller), even under -W error
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for offset in offsets:
                term = 0.0
                for t, d in zip(targets, dirs, strict=True):
                    term += _move_along(t, d, offset)
                values.append(phi())
                linear.append(term)
    except Exception as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__} {during}: {err}") from err
    finally:
        for t in targets:
            t.flat()[:] = t.values
    return np.array(values, dtype=np.float64), np.array(linear)


def _move_along(target: Target, direction: np.ndarray, offset: float) -> float:
    """Write ``θ + offset·d`` (realized) into ``target``; return ``Σ a·δ`` over it.

    Block by block (:mod:`gradcheck.engine.blocks`): no full-size temporary, and the sum
    is ``np.sum`` of the whole product bit for bit (no BLAS thread wake-up either).
    """
    flat = target.flat()

    def leaf(lo: int, hi: int) -> float:
        up, delta = target.realize_up(target.values[lo:hi], offset * direction[lo:hi])
        flat[lo:hi] = up
        delta *= target.analytic_flat[lo:hi]
        return float(np.sum(delta))

    return pairwise_sum(target.size, leaf)


def scaled_direction(rng: np.random.Generator, target: Target,
                     divisor: float = 1.0) -> np.ndarray:
    """``u · max(|θ|, 1) / divisor`` for a fresh Gaussian ``u`` of the target's size.

    Scaled in place, block by block: the direction is the only full-size array made.
    """
    direction = rng.standard_normal(target.size)
    for lo, hi in spans(target.size):
        part = direction[lo:hi]
        part *= np.maximum(np.abs(target.values[lo:hi]), 1.0)
        part /= divisor
    return direction


def _scatter(phi: Objective, targets: list[Target], f0: float, *, seed: tuple[int, str, int],
             extent: float, describe: str) -> tuple[float, np.ndarray]:
    """Scatter of φ about a cubic fit along a short random line.

    φ is evaluated at ``θ + t_j·d`` for ``NOISE_POINTS − 1`` random ``t_j`` in
    ``[0.05, 1]·extent`` (``d`` a random direction scaled by ``max(|θ_i|, 1)``, realized in
    each target's dtype); the analytic linear term is subtracted with the realized steps,
    a cubic in ``t`` is fitted by least squares, and σ is the RMS residual corrected for
    the 4 fitted parameters. Irregular ``t_j`` decorrelate quantization
    (a float32 cast inside a float64 function is a staircase, linear on a regular grid).
    The smooth part leaves ``O(t⁴)`` ≈ 1e-16 relative. This catches internal float32
    arithmetic that the output dtype hides, e.g. a float32 penalty added to a float64
    loss. Returns ``(σ, the values seen)``.
    """
    rng = stream(*seed)
    dirs = [scaled_direction(rng, t) for t in targets]
    offsets = np.sort(rng.uniform(0.05, 1.0, NOISE_POINTS - 1)) * extent
    values, linear = walk_along(phi, targets, dirs, offsets, describe=describe,
                                during="while measuring its noise (all entries moved by "
                                       "a tiny random step)")
    r = values - f0 - linear
    if not np.all(np.isfinite(r)):
        return 0.0, values
    u = offsets / extent  # θ itself is left out: a kink just beside it would bias the fit
    basis = np.vander(u, 4)
    coef, *_ = np.linalg.lstsq(basis, r, rcond=None)
    scatter = r - basis @ coef
    return rms(scatter) * float(np.sqrt(r.size / (r.size - 4))), np.array(values)


@dataclass
class Outcome:
    """What is known about one target after a check (full or fast mode).

    ``numeric``, ``tolerance``, ``left``, ``right`` are flat float64 arrays with NaN where
    no entry-wise difference was taken; ``wrong``/``kink`` are flat bool arrays.
    ``n_wrong`` is exact in full mode, an estimate for the whole tensor in fast mode.
    ``unresolved`` marks entries no step could resolve (neither agreeing nor wrong);
    ``n_unresolved`` counts them (in fast mode, every entry of a tensor whose directions
    could not be resolved). ``ok`` means no entry was found wrong.
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
    unresolved: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_unresolved: int = 0
    #: Entries resolved only coarsely (see ``Judged.coarse``).
    coarse: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: Kink entries whose convention lies outside their one-sided derivatives while the
    #: gradient is right on both sides nearby (``engine.kinks``); empty when there are none.
    convention: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def empty(cls, target: Target, lazy: bool = False) -> Outcome:
        """No entry judged yet. ``lazy``: the arrays are read-only views of their fill
        values (no memory per entry) until :meth:`record` or :meth:`mark_unresolved`
        first writes them (fast mode, whose entries are mostly never differenced)."""
        n = target.size
        if lazy:
            nan, no = np.broadcast_to(np.nan, (n,)), np.broadcast_to(False, (n,))
            return cls(target, nan, nan, no, no, nan, nan, 0, True, no, 0, no)
        nan = np.full(n, np.nan)
        return cls(target, nan, nan.copy(), np.zeros(n, bool), np.zeros(n, bool), nan.copy(),
                   nan.copy(), 0, True, np.zeros(n, bool), 0, np.zeros(n, bool))

    def write(self, name: str, idx: np.ndarray, values: np.ndarray) -> None:
        """``self.<name>[idx] = values``; a lazy array is materialized only when ``values``
        differ from its fill value (fast mode: ``left``/``right`` stay NaN and the masks
        stay False for entries never refined, kinked or unresolved — no memory per entry)."""
        arr = getattr(self, name)
        if not arr.flags.writeable:
            fill = arr.flat[0] if arr.size else False
            unchanged = (bool(np.isnan(values).all()) if np.isnan(fill)
                         else bool(np.all(values == fill)))
            if unchanged:
                return
            arr = np.array(arr)
            setattr(self, name, arr)
        arr[idx] = values

    def mark_unresolved(self) -> None:
        """Every entry unresolved (fast mode: no direction could be resolved)."""
        self.unresolved = np.broadcast_to(True, (self.target.size,))
        self.n_unresolved = self.target.size

    def record(self, idx: np.ndarray, judged: Judged) -> None:
        """Store the verdicts of entries ``idx``."""
        a = self.target.analytic_flat[idx]
        self.write("numeric", idx, a + judged.error)
        self.write("tolerance", idx, judged.tolerance)
        self.write("wrong", idx, judged.wrong)
        self.write("kink", idx, judged.kink)
        self.write("left", idx, a + judged.left)
        self.write("right", idx, a + judged.right)
        self.write("unresolved", idx, judged.unresolved_mask())
        if judged.coarse is not None:
            self.write("coarse", idx, judged.coarse)
        self.n_unresolved = int(np.count_nonzero(self.unresolved))


def full_outcome(phi: Objective, target: Target, f0: float, judging: Judging, *,
                 refine_all: bool = False, scale_floor: float | None = None,
                 evaluate: EntryEvaluator | None = None) -> tuple[Outcome, int]:
    """Check every entry of ``target`` (the arguments as for :func:`check_entries`)."""
    idx = np.arange(target.size)
    judged = check_entries(phi, target, idx, f0, judging, refine_all=refine_all,
                           scale_floor=scale_floor, evaluate=evaluate)
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


__all__ = [
    "PRECISIONS",
    "EntryEvaluator",
    "Judged",
    "Outcome",
    "Probe",
    "Target",
    "check_entries",
    "complex_step_entries",
    "evaluate_entries",
    "full_outcome",
    "judge",
    "judge_resolving",
    "judge_shrinking",
    "measure_noise",
    "min_relative_step",
    "probe_entries",
    "rms",
    "scale_floors",
    "scaled_direction",
    "walk_along",
]
