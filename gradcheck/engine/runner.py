"""One :class:`Problem` in, one :class:`~gradcheck.results.result.CheckResult` out.

Every entry point of :mod:`gradcheck.adapters.checks` builds a :class:`Problem` (named flat
targets with their analytic gradients and a scalar objective ``φ()`` reading them) and
hands it to :func:`run`, which

1. probes ``φ`` along random lines: the Taylor test (:mod:`gradcheck.engine.taylor`) and the noise
   level (:func:`gradcheck.engine.numeric.measure_noise`), and reads the precision ``φ`` really
   carries (:mod:`gradcheck.engine.tolerances`);
2. differences every entry (full mode, :mod:`gradcheck.engine.numeric`), random directions
   (fast mode, :mod:`gradcheck.engine.fast`) or complex steps;
3. evaluates ``φ`` at the point once more (nondeterminism), checks a stale cache, and
   turns the per-entry verdicts into rows, worst entries, evidence and a diagnosis.

>>> import numpy as np
>>> from gradcheck.engine.numeric import Target
>>> x = np.array([0.5, -1.0])
>>> phi = lambda: float(np.sum(np.sin(x)))
>>> problem = Problem(kind="check_grad", label="sin", describe="sin", phi=phi,
...                   targets=[Target("x", "input", x, np.cos(x))], f0=phi(), noise=1.0,
...                   precision=PRECISIONS["float64"], grad_precision=PRECISIONS["float64"],
...                   evaluations=1)
>>> run(problem, Options(mode="full"), start=0.0).ok
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.diagnosis import diagnose
from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence
from gradcheck.engine.fast import run_fast
from gradcheck.engine.numeric import (
    Objective,
    Outcome,
    Target,
    complex_step_entries,
    full_outcome,
    measure_noise,
    rms,
)
from gradcheck.engine.safety import CheckInputError, CheckTypeError, call_user
from gradcheck.engine.taylor import taylor_probe, taylor_verdict
from gradcheck.engine.tolerances import (
    AUTO_FULL_MAX_ENTRIES,
    FAST_DIRECTIONS,
    NOISE_FLOOR_CAP,
    PRECISIONS,
    Precision,
    coarser,
    observed_precision,
)
from gradcheck.results.result import CheckResult, Entry, Kink, LayerFlow, TensorReport

MODES = ("auto", "full", "fast")
METHODS = ("central", "richardson", "complex")
#: Worst entries shown in ``str(result)``.
SHOW_WORST = 5


@dataclass(frozen=True)
class Options:
    """Validated options shared by every check (documented in :mod:`gradcheck.adapters.checks`)."""

    mode: str = "auto"
    rtol: float | None = None
    atol: float | None = None
    eps: float | None = None
    method: str = "central"
    seed: int = 0
    directions: int = FAST_DIRECTIONS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CheckInputError(f"mode={self.mode!r} is not one of {MODES}")
        if self.method not in METHODS:
            raise CheckInputError(f"method={self.method!r} is not one of {METHODS}")
        for name in ("rtol", "atol", "eps"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and
                                          np.isfinite(value) and value >= 0):
                raise CheckInputError(f"{name}={value!r} must be a finite number >= 0 or None")
        if self.eps is not None and self.eps == 0:
            raise CheckInputError("eps=0 gives no step; pass eps > 0 or None for the default")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise CheckTypeError(f"seed={self.seed!r} must be an int")
        if not isinstance(self.directions, (int, np.integer)) or self.directions < 1:
            raise CheckInputError(f"directions={self.directions!r} must be an int >= 1")


@dataclass
class Problem:
    """A scalar objective over named targets, ready to be differenced."""

    kind: str
    label: str
    describe: str
    phi: Objective
    targets: list[Target]
    f0: float
    noise: float
    precision: Precision
    grad_precision: Precision
    evaluations: int
    batch_size: int | None = None
    nondeterministic: bool = False
    history_dependent: bool = False
    accumulating: bool = False  # backward adds to grads (see RunEvidence)
    notes: list[str] = field(default_factory=list)
    complex_fn: Callable[[np.ndarray], complex] | None = None
    #: Raw outputs seen so far and their dtype: the output precision is read from them
    #: (with the Taylor values too when ``φ`` *is* the raw output, as in check_grad).
    seen: np.ndarray | None = None
    declared: np.dtype | None = None
    phi_is_output: bool = False
    #: Analytic gradients (per target) computed at another input before the one at x:
    #: wrong gradients equal to these are a stale cache.
    earlier: list[np.ndarray] | None = None
    #: Checks (cheaply, by random directions) that ``earlier`` is right at the earlier
    #: input; returns (right, evaluations spent).
    earlier_is_right: Callable[[], tuple[bool, int]] | None = None
    #: Facts the adapter observed for the diagnosis, passed to RunEvidence as keywords
    #: (``aliased``, ``indices``, ``layer_names``; see :class:`RunEvidence`).
    facts: dict[str, Any] = field(default_factory=dict)


def _resolve_mode(opts: Options, total: int) -> str:
    if opts.method == "complex":
        return "full"
    if opts.mode == "auto":
        return "full" if total <= AUTO_FULL_MAX_ENTRIES else "fast"
    return opts.mode


def run(problem: Problem, opts: Options, start: float,
         flow: list[LayerFlow] | None = None) -> CheckResult:
    """Difference the problem, judge it, diagnose it, and package the result."""
    total = sum(t.size for t in problem.targets)
    mode = _resolve_mode(opts, total)
    probe, sigma, floor, noisy, extra = None, 0.0, 0.0, np.zeros(0), problem.evaluations
    if not problem.nondeterministic and opts.method != "complex":
        probe = taylor_probe(problem.phi, problem.targets, problem.f0, seed=opts.seed,
                             describe=problem.describe)
        sigma, floor, noisy = measure_noise(problem.phi, problem.targets, problem.f0,
                                            seed=opts.seed, describe=problem.describe)
        extra += noisy.size
    if problem.seen is not None:
        seen = problem.seen.ravel()
        if probe is not None and problem.phi_is_output:
            seen = np.concatenate([seen, probe.values, noisy])
        declared = problem.declared if problem.declared is not None else seen.dtype
        problem.precision = observed_precision(seen, declared)
    scale = max(problem.noise, float(np.max(np.abs(noisy), initial=abs(problem.f0))))
    problem.precision = _precision_for_noise(problem.precision, sigma, scale)
    # Every rounding estimate is κ·eps·scale: the measured noise sets a floor on the scale.
    # Cancellation inside φ (BatchNorm of nearly equal inputs: x − mean) amplifies rounding
    # beyond eps·|φ| without showing as agreeing estimates; the smaller estimate, capped at
    # NOISE_FLOOR_CAP roundings so a kink's scatter cannot blunt the check, covers it.
    capped = min(floor, NOISE_FLOOR_CAP * problem.precision.eps * scale)
    problem.noise = max(problem.noise, max(sigma, capped) / problem.precision.eps)
    prec = problem.precision
    rtol = opts.rtol if opts.rtol is not None else coarser(prec, problem.grad_precision).rtol
    step = opts.eps if opts.eps is not None else prec.step
    options: dict[str, Any] = {"eps": step, "rtol": rtol, "atol": opts.atol,
                               "seed": opts.seed, "method": opts.method,
                               "precision": prec.name, "auto_full_max": AUTO_FULL_MAX_ENTRIES}
    notes = list(problem.notes)
    outcomes, evaluations = _outcomes(problem, opts, mode, step, rtol, options, notes)
    evaluations += extra
    kinks = [Kink(o.target.name, o.target.index(i), float(o.left[i]), float(o.right[i]),
                  float(o.target.analytic_flat[i]))
             for o in outcomes for i in np.flatnonzero(o.kink)]
    taylor = None
    if probe is not None:
        taylor = taylor_verdict(probe, noise=problem.noise, eps=prec.eps)
        evaluations += probe.evaluations
        if kinks and taylor.verdict == "wrong":
            taylor = taylor._replace(verdict="inconclusive: the function has kinks here")
    if not problem.nondeterministic:  # the same point once more, after all the probing
        evaluations += 1
        problem.nondeterministic = call_user(problem.describe, problem.phi) != problem.f0
    if problem.earlier is not None and not problem.nondeterministic:
        # Stale: the wrong gradients are, bit for bit, those computed at the earlier input
        # AND right there (a plain wrong formula independent of x is the same at both
        # points too, but it is wrong at both).
        wrong = [(o, e) for o, e in zip(outcomes, problem.earlier, strict=True) if not o.ok]
        if (wrong and problem.earlier_is_right is not None
                and all(np.array_equal(o.target.analytic_flat, e.ravel()) for o, e in wrong)):
            right, spent = problem.earlier_is_right()
            evaluations += spent
            problem.history_dependent = right
    if problem.nondeterministic or problem.accumulating:  # moot, or not a cache at all
        problem.history_dependent = False
    tensors = [_tensor_report(o, problem.nondeterministic) for o in outcomes]
    ok = (all(t.ok for t in tensors) and not problem.nondeterministic
          and not problem.history_dependent and not problem.accumulating)
    evidence = RunEvidence(
        batch_size=problem.batch_size, history_dependent=problem.history_dependent,
        accumulating=problem.accumulating,
        nondeterministic=problem.nondeterministic,
        tensors=tuple(_evidence(o) for o in outcomes), precision=prec.name, **problem.facts)
    return CheckResult(
        ok=ok, kind=problem.kind, label=problem.label, tensors=tensors,
        worst=_worst(outcomes), diagnosis=[] if ok else list(diagnose(evidence)),
        nondifferentiable=kinks, nondeterministic=problem.nondeterministic,
        history_dependent=problem.history_dependent, taylor=taylor,
        gradient_flow=flow or [], evaluations=evaluations,
        seconds=time.perf_counter() - start, mode=mode, options=options, notes=notes,
        evidence=evidence)


def _precision_for_noise(row: Precision, sigma: float, scale: float) -> Precision:
    """The row whose rounding matches the measured noise (coarser than ``row`` if need be).

    A function whose noise exceeds 1/16 of a coarser format's epsilon (relative to its
    scale) computes, somewhere inside, at that precision: difference it with that step.
    """
    if scale <= 0 or not np.isfinite(sigma):
        return row
    for name in ("float16", "float32"):
        candidate = PRECISIONS[name]
        if candidate.eps > row.eps and sigma > candidate.eps * scale / 16:
            return candidate
    return row


def _outcomes(problem: Problem, opts: Options, mode: str, step: float, rtol: float,
              options: dict[str, Any], notes: list[str]) -> tuple[list[Outcome], int]:
    """Per-target outcomes of the numeric pass and the evaluations it took."""
    if problem.nondeterministic:  # differences of a random function mean nothing
        return [Outcome.empty(t) for t in problem.targets], 0
    if opts.method == "complex":
        return [_complex_outcome(problem, rtol, opts.atol)], problem.targets[0].size
    common = dict(noise=problem.noise, precision=problem.precision, step=step, rtol=rtol,
                  atol=opts.atol, describe=problem.describe)
    if mode == "full":
        outcomes, evaluations = [], 0
        for t in problem.targets:
            out, n = full_outcome(problem.phi, t, problem.f0,
                                  refine_all=opts.method == "richardson", **common)
            outcomes.append(out)
            evaluations += n
        return outcomes, evaluations
    report = run_fast(problem.phi, problem.targets, problem.f0, seed=opts.seed,
                      directions=opts.directions, **common)
    options.update(directions=opts.directions, fast_tolerance=report.tolerance)
    notes += report.notes
    if not (report.directions_failed or report.directions_inconclusive):
        total = sum(t.size for t in problem.targets)
        notes.append(f"fast mode: {opts.directions} random directions over {total} entries "
                     f"agree (largest directional error "
                     f"{max(map(abs, report.directional_errors)):.3g}, tolerance "
                     f"{report.tolerance:.3g})")
    return report.outcomes, report.evaluations


def _complex_outcome(problem: Problem, rtol: float, atol: float | None) -> Outcome:
    target = problem.targets[0]
    z = target.array.astype(np.complex128)
    idx = np.arange(target.size)
    numeric = complex_step_entries(problem.complex_fn, z, idx, describe=problem.describe)
    out = Outcome.empty(target)
    a = target.analytic_flat
    floor = atol if atol is not None else problem.precision.atol * rms(a)
    out.numeric[:] = numeric
    out.tolerance[:] = rtol * np.maximum(np.abs(a), np.abs(numeric)) + floor
    out.wrong[:] = np.abs(numeric - a) > out.tolerance
    out.n_wrong = int(out.wrong.sum())
    out.ok = out.n_wrong == 0
    return out


def _tensor_report(o: Outcome, nondeterministic: bool) -> TensorReport:
    t = o.target
    a = t.analytic_flat
    checked = np.isfinite(o.numeric)
    judged = checked & (~o.kink | o.wrong)
    err = np.where(judged, np.abs(o.numeric - a), np.nan)
    # Relative to the entry, but never to less than the tensor's RMS gradient or what
    # differences can resolve there: an entry whose true value is 0 (a bias feeding
    # BatchNorm) would otherwise show a "relative error" of 1 from rounding alone.
    floor = np.maximum(rms(a), np.nan_to_num(o.tolerance))
    denom = np.maximum(np.maximum(np.abs(a), np.abs(np.nan_to_num(o.numeric))), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(judged, np.where(denom > 0, err / denom, 0.0), np.nan)
    pool = o.wrong if o.wrong.any() else judged
    worst = t.index(int(np.nanargmax(np.where(pool, err, -1.0)))) if pool.any() else None
    return TensorReport(
        name=t.name, shape=tuple(t.shape),
        max_abs_error=float(np.nanmax(err)) if judged.any() else float("nan"),
        max_rel_error=float(np.nanmax(rel)) if judged.any() else float("nan"),
        worst_index=worst, n_wrong=int(o.n_wrong), n_checked=int(checked.sum()),
        n_nondifferentiable=int(o.kink.sum()), ok=bool(o.ok) and not nondeterministic)


def _worst(outcomes: list[Outcome]) -> list[Entry]:
    rows = []
    for o in outcomes:
        a = o.target.analytic_flat
        checked = np.isfinite(o.numeric) & (~o.kink | o.wrong)
        for i in np.flatnonzero(checked):
            err = abs(o.numeric[i] - a[i])
            rows.append((bool(o.wrong[i]), err / max(o.tolerance[i], 1e-300),
                         Entry(o.target.name, o.target.index(i), float(a[i]),
                               float(o.numeric[i]), float(err), float(o.tolerance[i]))))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    wrong = [r[2] for r in rows if r[0]]
    return wrong[:SHOW_WORST] if wrong else [r[2] for r in rows[:1]]


def _evidence(o: Outcome) -> TensorEvidence:
    t, shape = o.target, o.target.shape
    return TensorEvidence(name=t.name, role=t.role, analytic=t.analytic_flat.reshape(shape),
                          numeric=o.numeric.reshape(shape), wrong=o.wrong.reshape(shape),
                          nondifferentiable=o.kink.reshape(shape), layout=t.layout,
                          value=t.values.reshape(shape))



__all__ = ["METHODS", "MODES", "Options", "Problem", "run"]
