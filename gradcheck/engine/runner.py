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

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck.diagnosis import diagnose
from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence
from gradcheck.engine.blocks import rms_of
from gradcheck.engine.fast import MAX_LOCALIZED, SAMPLE_ENTRIES, run_fast
from gradcheck.engine.kinks import KinkReview, review_kinks
from gradcheck.engine.numeric import (
    Judging,
    Objective,
    Outcome,
    Target,
    complex_step_entries,
    full_outcome,
    measure_noise,
    rms,
    scale_floors,
)
from gradcheck.engine.options import METHODS, MODES, Options
from gradcheck.engine.parallel import ParallelEvaluator, ship
from gradcheck.engine.safety import call_user
from gradcheck.engine.structure import GroupedEvaluator, Grouping
from gradcheck.engine.structure_plan import Structure, plan_structure
from gradcheck.engine.systematic import find_systematic
from gradcheck.engine.taylor import TaylorProbe, taylor_probe, taylor_verdict
from gradcheck.engine.tiles import Layout
from gradcheck.engine.tolerances import (
    AUTO_FULL_MAX_ENTRIES,
    COARSER_NOISE_FRACTION,
    FINE_RESOLUTION,
    NOISE_FLOOR_CAP,
    PRECISIONS,
    RESOLUTION,
    UNDERFLOW_TINIES,
    Precision,
    coarser,
    observed_precision,
)
from gradcheck.results.result import (
    CheckResult,
    Entry,
    Kink,
    LayerFlow,
    Taylor,
    TensorReport,
    Verdict,
)

#: Worst entries shown in ``str(result)``.
SHOW_WORST = 5


@dataclass(frozen=True)
class Problem:
    """A scalar objective over named targets, ready to be differenced (built once by an
    adapter, never changed after: the run reads it)."""

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
    #: Checks (cheaply, by random directions, at the calibrated precision and noise) that
    #: ``earlier`` is right at the earlier input; returns (right, evaluations spent).
    earlier_is_right: Callable[[Precision, float], tuple[bool, int]] | None = None
    #: Facts the adapter observed for the diagnosis, passed to RunEvidence as keywords
    #: (``aliased``, ``indices``, ``layer_names``; see :class:`RunEvidence`).
    facts: dict[str, Any] = field(default_factory=dict)
    #: The batch layout of one target: its elementwise parts of φ, cut into samples or
    #: tiles (structured full mode; verified before use, see
    #: :mod:`gradcheck.engine.structure_plan`).
    layout: Layout | None = None
    #: Recomputes the analytic gradient of every target (in order) at the targets'
    #: current values, e.g. with one entry moved off a kink (``engine.kinks``); None
    #: where the adapter cannot.
    analytic_at: Callable[[], list[np.ndarray]] | None = None


def _resolve_mode(opts: Options, total: int) -> str:
    """``total``: evaluation-equivalent entries (a verified structured target counts as
    one grouped pass: the entries of its largest sample, or for tiles Σ over colours of
    the largest tile)."""
    if opts.method == "complex":
        return "full"
    if opts.mode == "auto":
        return "full" if total <= AUTO_FULL_MAX_ENTRIES else "fast"
    return opts.mode


def _structure(problem: Problem, opts: Options, step: float,
               precision: Precision | None = None) -> Structure:
    """Verify the problem's batch layout (tiles or samples) when structured full mode
    could be used (see :mod:`gradcheck.engine.structure_plan`)."""
    layout = problem.layout
    if (layout is None or not opts.structured or opts.method == "complex"
            or problem.nondeterministic or opts.mode == "fast"):
        return Structure()
    return plan_structure(layout, problem.targets, step=step, seed=opts.seed,
                          describe=problem.describe, auto=opts.mode == "auto",
                          precision=precision)


@dataclass(frozen=True)
class Calibration:
    """What the probes read off ``φ`` before any difference is taken (chosen once).

    ``precision`` is the row the function really computes in, ``noise`` the scale of its
    rounding (floored by the measured noise), ``probe`` the Taylor walk (None when the
    function is random or checked by complex step), ``evaluations`` the calls spent.
    """

    precision: Precision
    noise: float
    probe: TaylorProbe | None
    evaluations: int
    #: Per target, where the joint noise exceeds rounding (:func:`_own_noise`): the noise
    #: of φ with only that target moved. None: ``noise`` for every target.
    target_noise: tuple[float, ...] | None = None


@dataclass(frozen=True)
class StateFindings:
    """The probes of the user's state after the differences (see :func:`_state`)."""

    nondeterministic: bool
    history_dependent: bool
    evaluations: int


def run(problem: Problem, opts: Options, start: float,
        flow: list[LayerFlow] | None = None) -> CheckResult:
    """Difference the problem, judge it, diagnose it, and package the result.

    One way through: calibrate (precision, noise, Taylor walk) → differences (full,
    fast or complex step) → state probes (nondeterminism, stale cache) → verdict →
    diagnosis → result. Nothing here writes into ``problem`` or ``opts``.
    """
    cal = _calibrate(problem, opts)
    prec = cal.precision
    rtol = opts.rtol if opts.rtol is not None else coarser(prec, problem.grad_precision).rtol
    step = opts.eps if opts.eps is not None else prec.step
    structure = _structure(problem, opts, step, prec)
    mode = _resolve_mode(opts, structure.cost_entries(problem.targets))
    judging = Judging(cal.noise, prec, step, rtol, opts.atol, problem.describe,
                      floors_resolve=opts.rtol is None and opts.atol is None)
    numeric = _outcomes(problem, opts, mode, judging, structure, cal.target_noise)
    outcomes = numeric.outcomes
    review = _review_kinks(problem, outcomes, opts, judging)
    options: dict[str, Any] = {"eps": step, "rtol": rtol, "atol": opts.atol,
                               "seed": opts.seed, "method": opts.method,
                               "precision": prec.name, "auto_full_max": AUTO_FULL_MAX_ENTRIES,
                               **numeric.options}
    if structure.kind:
        options["structure"] = structure.kind
        options["structure_evaluations"] = structure.evaluations
    notes = [*problem.notes, *structure.notes, *numeric.notes, *review.notes]
    kinks = [Kink(o.target.name, o.target.index(i), float(o.left[i]), float(o.right[i]),
                  float(o.target.analytic_flat[i]))
             for o in outcomes for i in np.flatnonzero(o.kink)]
    taylor = None
    if cal.probe is not None:
        taylor = taylor_verdict(cal.probe, noise=cal.noise, eps=prec.eps)
        if kinks and taylor.verdict == "wrong":
            taylor = taylor._replace(verdict="inconclusive: the function has kinks here")
    state = _state(problem, outcomes, cal)
    # The miss bound holds only where every direction agreed (else nothing is ruled out).
    fast = ((opts.directions, float(numeric.options.get("fast_tolerance", 0.0))
             if numeric.directions_agree else float("nan"))
            if mode == "fast" and opts.method != "complex" else None)
    tensors = [_tensor_report(o, state.nondeterministic, opts.allow_unresolved, fast)
               for o in outcomes]
    verdict, verdict_notes = _verdict(tensors, outcomes, taylor, state, problem, opts,
                                      numeric.coarse, review.conventions)
    notes += verdict_notes
    ok = verdict == "ok"
    evidence = RunEvidence(
        batch_size=problem.batch_size, history_dependent=state.history_dependent,
        accumulating=problem.accumulating, nondeterministic=state.nondeterministic,
        tensors=tuple(_evidence(o) for o in outcomes), precision=prec.name, **problem.facts)
    evaluations = (problem.evaluations + cal.evaluations + structure.evaluations
                   + numeric.evaluations + review.evaluations + state.evaluations)
    return CheckResult(
        ok=ok, kind=problem.kind, label=problem.label, tensors=tensors,
        worst=_worst(outcomes), diagnosis=[] if ok else [*review.findings, *diagnose(evidence)],
        nondifferentiable=kinks, nondeterministic=state.nondeterministic,
        history_dependent=state.history_dependent, taylor=taylor, verdict=verdict,
        gradient_flow=flow or [], evaluations=evaluations,
        seconds=time.perf_counter() - start, mode=mode, options=options, notes=notes,
        evidence=evidence)


def _review_kinks(problem: Problem, outcomes: list[Outcome], opts: Options,
                  judging: Judging) -> KinkReview:
    """The kink verdict model of :mod:`gradcheck.engine.kinks` (both modes alike)."""
    if problem.nondeterministic or opts.method == "complex":
        return KinkReview()
    return review_kinks(problem.phi, outcomes, problem.f0, judging,
                        analytic_at=problem.analytic_at)


def _calibrate(problem: Problem, opts: Options) -> Calibration:
    """Taylor walk and noise probe; the precision and rounding scale φ really has."""
    probe, sigma, floor, noisy = None, 0.0, 0.0, np.zeros(0)
    if not problem.nondeterministic and opts.method != "complex":
        probe = taylor_probe(problem.phi, problem.targets, problem.f0, seed=opts.seed,
                             describe=problem.describe)
        sigma, floor, noisy = measure_noise(problem.phi, problem.targets, problem.f0,
                                            seed=opts.seed, describe=problem.describe)
    precision = problem.precision
    if problem.seen is not None:
        seen = problem.seen.ravel()
        if probe is not None and problem.phi_is_output:
            seen = np.concatenate([seen, probe.values, noisy])
        declared = problem.declared if problem.declared is not None else seen.dtype
        precision = observed_precision(seen, declared)
    scale = max(problem.noise, float(np.max(np.abs(noisy), initial=abs(problem.f0))))
    own_sigma, extra = _own_noise(problem, opts, precision, sigma, scale)
    # internal float32 arithmetic shows along every target; a jump along one does not
    precision = _precision_for_noise(precision, sigma if own_sigma is None else
                                     min(alone for alone, _ in own_sigma), scale)
    # Every rounding estimate is κ·eps·scale: the measured noise sets a floor on the scale.
    # Cancellation inside φ (BatchNorm of nearly equal inputs: x − mean) amplifies rounding
    # beyond eps·|φ| without showing as agreeing estimates; the smaller estimate, capped at
    # NOISE_FLOOR_CAP roundings so a kink's scatter cannot blunt the check, covers it.
    capped = min(floor, NOISE_FLOOR_CAP * precision.eps * scale)
    noise = max(problem.noise, max(sigma, capped) / precision.eps)
    spent = noisy.size + (probe.evaluations if probe is not None else 0)
    own = None if own_sigma is None else tuple(
        max(problem.noise, max(alone, min(low, NOISE_FLOOR_CAP * precision.eps * scale))
            / precision.eps) for alone, low in own_sigma)
    return Calibration(precision=precision, noise=noise, probe=probe,
                       evaluations=spent + extra, target_noise=own)


def _own_noise(problem: Problem, opts: Options, precision: Precision, sigma: float,
               scale: float) -> tuple[list[tuple[float, float]] | None, int]:
    """Each target's own noise ``(σ, smaller estimate)``, where the joint probe saw more
    than rounding of the outputs' precision can explain.

    The noise probes move every target at once, so a target along which φ jumps (a label
    of ±1 compared with ``==``: any step off it switches a branch) lends its scatter to
    all, and the rounding estimate of every other target's entries grows with it (a
    1e-3 error of ``cosine_embedding_loss``'s input passed inside it). Where σ exceeds
    :data:`NOISE_FLOOR_CAP` roundings of the outputs' precision, each target's entries
    are judged with the noise of φ with that target alone moved (two probes more per
    target, the same agreement rule), and the precision follows the quietest target;
    with one target there is nothing to separate.
    """
    targets = problem.targets
    if len(targets) < 2 or not sigma > NOISE_FLOOR_CAP * precision.eps * scale:
        return None, 0
    own, spent = [], 0
    for k, target in enumerate(targets):
        alone, low, seen = measure_noise(problem.phi, [target], problem.f0,
                                         seed=opts.seed + 1 + k, describe=problem.describe)
        spent += seen.size
        own.append((alone, low))
    return own, spent


def _state(problem: Problem, outcomes: list[Outcome], cal: Calibration) -> StateFindings:
    """φ at the point once more (nondeterminism) and the stale-cache verdict."""
    if problem.nondeterministic:
        return StateFindings(True, False, 0)
    nondeterministic = call_user(problem.describe, problem.phi) != problem.f0
    # the adapter's own probe (a repeat after a forward on another input) may have seen it
    spent, history_dependent = 1, problem.history_dependent
    if problem.earlier is not None and not nondeterministic and not problem.accumulating:
        # Stale: the wrong gradients are, bit for bit, those computed at the earlier input
        # AND right there (a plain wrong formula independent of x is the same at both
        # points too, but it is wrong at both).
        wrong = [(o, e) for o, e in zip(outcomes, problem.earlier, strict=True) if not o.ok]
        if (wrong and problem.earlier_is_right is not None
                and all(np.array_equal(o.target.analytic_flat, e.ravel()) for o, e in wrong)):
            history_dependent, extra = problem.earlier_is_right(cal.precision, cal.noise)
            spent += extra
    moot = nondeterministic or problem.accumulating  # random, or not a cache at all
    return StateFindings(nondeterministic, history_dependent and not moot, spent)


def _verdict(tensors: list[TensorReport], outcomes: list[Outcome], taylor: Taylor | None,
             state: StateFindings, problem: Problem, opts: Options,
             coarse: bool, conventions: int = 0) -> tuple[Verdict, list[str]]:
    """``"ok"``, ``"wrong"`` or ``"inconclusive"``, and the notes that explain it.

    ``conventions`` counts kink entries whose convention lies outside their one-sided
    derivatives while the gradient is right nearby (:mod:`gradcheck.engine.kinks`):
    neither wrong nor agreeing, so inconclusive unless ``allow_unresolved``.
    """
    notes = []
    found_wrong = (any(t.n_wrong for t in tensors) or state.nondeterministic
                   or state.history_dependent or problem.accumulating)
    unresolved = sum(t.n_unresolved for t in tensors)
    if unresolved:
        notes.append(_unresolved_note(outcomes, unresolved, opts.allow_unresolved))
    disagreement = False
    if not found_wrong and taylor is not None and taylor.verdict == "wrong" \
            and opts.rtol is None and opts.atol is None:
        disagreement, note = _taylor_disagreement(outcomes, coarse)
        notes.append(note)
    if found_wrong:
        return "wrong", notes
    if disagreement or not all(t.ok for t in tensors):
        return "inconclusive", notes
    if conventions and not opts.allow_unresolved:
        return "inconclusive", notes
    return "ok", notes


def _taylor_disagreement(outcomes: list[Outcome], coarse: bool) -> tuple[bool, str]:
    """The Taylor test says wrong while every entry agrees: does that make the check
    inconclusive (some entry resolved only coarsely: the error may hide there), and the
    note that names the disagreement either way (evidence never contradicts silently)."""
    hides = coarse or any(o.coarse.any() for o in outcomes)
    return hides, (
        "the Taylor test says wrong while every entry agrees, and some entries are "
        "resolved only coarsely: a small error may hide in their tolerance; inconclusive"
        if hides else
        "the Taylor test says wrong while every entry agrees to better than "
        f"{FINE_RESOLUTION:.1%} of its size: its probe line likely crosses a kink or a "
        "float32 staircase near the point; the entry-wise verdict stands")


def _precision_for_noise(row: Precision, sigma: float, scale: float) -> Precision:
    """The row whose rounding matches the measured noise (coarser than ``row`` if need be).

    A function whose noise exceeds ``COARSER_NOISE_FRACTION`` of a coarser format's epsilon
    (relative to its scale) computes, somewhere inside, at that precision: difference it
    with that step.
    """
    if scale <= 0 or not np.isfinite(sigma):
        return row
    for name in ("float16", "float32"):
        candidate = PRECISIONS[name]
        if candidate.eps > row.eps and sigma > candidate.eps * scale * COARSER_NOISE_FRACTION:
            return candidate
    return row


@dataclass(frozen=True)
class NumericPass:
    """The differences of a run: per-target outcomes and what the pass adds to the result."""

    outcomes: list[Outcome]
    evaluations: int
    coarse: bool = False  # a fast-mode direction was resolved only coarsely
    notes: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: Fast mode: every global direction agreed (the miss bound of ``fast.py`` applies).
    directions_agree: bool = False


def _outcomes(problem: Problem, opts: Options, mode: str, judging: Judging,
              structure: Structure,
              target_noise: tuple[float, ...] | None = None) -> NumericPass:
    """Per-target outcomes of the numeric pass (full, fast or complex step)."""
    if problem.nondeterministic:  # differences of a random function mean nothing
        return NumericPass([Outcome.empty(t) for t in problem.targets], 0)
    if opts.method == "complex":
        return NumericPass([_complex_outcome(problem, judging.precision, judging.rtol, opts.atol)],
                           problem.targets[0].size, notes=_serial_note(
                               opts, "method='complex'", "method='central', mode='full'"))
    if mode == "full":
        outcomes, evaluations = [], 0
        evaluators = _evaluators(problem, opts, structure)
        own = target_noise or (judging.noise,) * len(problem.targets)
        for t, floor, evaluate, noise in zip(problem.targets, scale_floors(problem.targets),
                                             evaluators, own, strict=True):
            out, n = full_outcome(problem.phi, t, problem.f0, replace(judging, noise=noise),
                                  scale_floor=floor, refine_all=opts.method == "richardson",
                                  evaluate=evaluate)
            outcomes.append(out)
            # an evaluator counts the calls it really made (grouped: far fewer)
            evaluations += n if evaluate is None else evaluate.calls
        notes = []
        if judging.floors_resolve:  # a floor the user chose is the user's call
            for out in outcomes:
                found = find_systematic(problem.phi, out, problem.f0, judging,
                                        grad_precision=problem.grad_precision)
                evaluations += found.evaluations
                notes += [found.note] if found.note else []
        options: dict[str, Any] = {}
        if opts.executor is not None:
            options["executor"] = type(opts.executor).__name__
        return NumericPass(outcomes, evaluations, notes=tuple(notes), options=options)
    report = run_fast(problem.phi, problem.targets, problem.f0, judging, seed=opts.seed,
                      directions=opts.directions)
    notes = [*report.notes, *_serial_note(opts, "fast mode", "mode='full'")]
    if report.coarse and not report.directions_failed:
        notes.append(f"fast mode: some directions are resolved only to between "
                     f"{FINE_RESOLUTION:.1%} and {RESOLUTION:.0%} of their size: an error "
                     f"of a few percent of the whole gradient could pass; mode='full' "
                     f"judges each entry")
    if not (report.directions_failed or report.directions_inconclusive):
        total = sum(t.size for t in problem.targets)
        notes.append(f"fast mode: {opts.directions} random directions over {total} entries "
                     f"agree (largest directional error "
                     f"{max(map(abs, report.directional_errors)):.3g}, tolerance "
                     f"{report.tolerance:.3g})")
    return NumericPass(report.outcomes, report.evaluations, report.coarse, tuple(notes),
                       {"directions": opts.directions, "fast_tolerance": report.tolerance},
                       not (report.directions_failed or report.directions_inconclusive))


def _serial_note(opts: Options, what: str, instead: str) -> tuple[str, ...]:
    """The note that ``executor=`` was given but ``what`` has nothing to spread."""
    if opts.executor is None:
        return ()
    return (f"executor={type(opts.executor).__name__}: {what} runs serially (only full mode's "
            f"per-entry differences are spread over an executor; nothing to spread here); "
            f"pass {instead} to use it",)


def _evaluators(problem: Problem, opts: Options, structure: Structure
                ) -> list[GroupedEvaluator | ParallelEvaluator | None]:
    """One entry evaluator per target: serial (None), grouped, or on the executor."""
    found: list[GroupedEvaluator | ParallelEvaluator | None] = [None] * len(problem.targets)
    grouped = None
    if structure.used:
        blocks = structure.blocks
        assert blocks is not None and structure.colour is not None
        base = np.asarray(blocks.contributions(), dtype=np.float64)
        grouping = Grouping.of(blocks.owner, base, structure.colour, structure.reach)
        grouped = (blocks, grouping, structure.low, structure.high)
        found[blocks.target] = GroupedEvaluator(problem.phi, blocks, base, problem.f0,
                                                structure.low, structure.high,
                                                problem.describe, calls=1, grouping=grouping)
    if opts.executor is None:
        return found
    payload = ship(opts.dumps or pickle.dumps, problem.phi,
                   grouped[0].contributions if grouped is not None else None,
                   [t.array for t in problem.targets], problem.describe)
    for k in range(len(problem.targets)):
        here = grouped if grouped is not None and grouped[0].target == k else None
        found[k] = ParallelEvaluator(opts.executor, payload, k, problem.f0, problem.phi,
                                     problem.describe, here, calls=int(here is not None))
    return found


def _complex_outcome(problem: Problem, precision: Precision, rtol: float,
                     atol: float | None) -> Outcome:
    target = problem.targets[0]
    z = target.array.astype(np.complex128)
    idx = np.arange(target.size)
    assert problem.complex_fn is not None  # method='complex' is validated to have one
    numeric = complex_step_entries(problem.complex_fn, z, idx, describe=problem.describe)
    out = Outcome.empty(target)
    a = target.analytic_flat
    floor = atol if atol is not None else precision.atol * rms(a)
    out.numeric[:] = numeric
    out.tolerance[:] = rtol * np.maximum(np.abs(a), np.abs(numeric)) + floor
    out.wrong[:] = np.abs(numeric - a) > out.tolerance
    out.n_wrong = int(out.wrong.sum())
    out.ok = out.n_wrong == 0
    return out


def _unresolved_note(outcomes: list[Outcome], count: int, allowed: bool) -> str:
    names = ", ".join(f"{o.target.name} ({o.n_unresolved})" for o in outcomes if o.n_unresolved)
    outcome = ("counted as passing (allow_unresolved=True)" if allowed else
               "neither agreeing nor wrong, so the check is inconclusive")
    note = (f"unresolved: {count} entries ({names}) — their finite-difference error estimate "
            f"is not well below the gradient at any step (rounding of a large value next "
            f"to a small variation, or a derivative far below the function's scale); "
            f"{outcome}. Subtract the large constant, check in float64, or pass "
            f"allow_unresolved=True")
    tiny = [o.target.name for o in outcomes if o.n_unresolved and _underflowed(o)]
    if tiny:
        note += (f". {', '.join(tiny)}: the gradient lies below the smallest normal number "
                 f"of its dtype ({UNDERFLOW_TINIES:g} × tiny), which cannot hold it; "
                 f"check in float64 or at a point where it is larger")
    return note


def _underflowed(o: Outcome) -> bool:
    """Do the unresolved entries of ``o`` all lie within the underflow of its dtype?"""
    idx = np.flatnonzero(o.unresolved)
    sizes = np.maximum(np.abs(o.target.analytic_flat[idx]), np.abs(o.numeric[idx]))
    return bool(idx.size) and bool(np.all(np.nan_to_num(sizes, nan=np.inf)
                                          <= o.target.underflow))


def _judged(o: Outcome) -> np.ndarray:
    """Indices (ascending) of the entries judged one by one and counted in the errors (not
    kinks that agree, not unresolved ones): the pool both "worst" renderings draw from.

    Indices, not a mask: the report's per-entry figures are then computed for these
    entries only (in fast mode a handful of 1e7), never as full-size temporaries.
    """
    checked = np.flatnonzero(np.isfinite(o.numeric))
    return checked[(~o.kink[checked] | o.wrong[checked]) & ~o.unresolved[checked]]


def _badness(o: Outcome, idx: np.ndarray) -> np.ndarray:
    """Error over tolerance of entries ``idx`` (−1 where it is NaN): the one meaning of
    "worst".

    The table's ``worst at`` and the ``worst entries`` list both rank by this ratio, wrong
    entries first, so the two never name different entries as the worst.
    """
    err = np.abs(o.numeric[idx] - o.target.analytic_flat[idx])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = err / np.maximum(np.nan_to_num(o.tolerance[idx]), 1e-300)
    return np.nan_to_num(ratio, nan=-1.0)


def _count_kind(o: Outcome, fast: bool) -> tuple[str, int]:
    """How ``n_wrong`` was obtained and how many wrong entries were isolated one by one.

    ``"exact"``: every wrong entry counted was isolated (full mode; fast mode when the
    localization finished). ``"estimate"``: scaled up from a random sample of entries.
    ``"at_least"``: the localization stopped at its cap (or could isolate none though the
    tensor's direction disagrees); only the isolated count is sure.
    """
    found = int(o.wrong.sum())
    checked = int(np.count_nonzero(np.isfinite(o.numeric)))
    if not fast or not o.n_wrong or checked >= o.target.size:
        return "exact", found
    if o.n_wrong > found and found and checked <= SAMPLE_ENTRIES:
        return "estimate", found
    if o.n_wrong > found or found >= MAX_LOCALIZED:
        return "at_least", max(found, 1)
    return "exact", found


#: Error of σ ≥ this many τ_max is missed by ``k`` directions with probability ≤
#: ``(√(2/π)/RULES_OUT_MARGIN)^k`` (see :mod:`gradcheck.engine.fast`).
RULES_OUT_MARGIN = 10.0


def _rules_out(o: Outcome, judged: np.ndarray, fast: tuple[int, float] | None
               ) -> tuple[float, float]:
    """The smallest relative error this check would have caught, and its miss probability.

    Full mode: an entry is caught once its error exceeds its tolerance; relative to
    ``max(|analytic|, RMS of the tensor)`` that is ``tolerance / max(|a|, rms)``. The
    figure is the **worst** (largest) over judged entries, so a relative error at least
    that large in *any* entry would have been caught; miss probability 0.

    Fast mode (``fast = (k, τ_max)``): an error ``e`` of the tensor with
    ``‖s ⊙ e‖ ≥ r · ‖s ⊙ a‖`` (``s = max(|θ|, 1)``), ``r = RULES_OUT_MARGIN · τ_max /
    ‖s ⊙ a‖``, is missed with probability ≤ ``(√(2/π) / RULES_OUT_MARGIN)^k``
    (the bound of :mod:`gradcheck.engine.fast`). NaN when nothing can be said.
    """
    a = o.target.analytic_flat
    if fast is not None:
        k, tau = fast
        values = o.target.values

        def weighted(lo: int, hi: int) -> np.ndarray:  # s ⊙ a, block by block (memory)
            with np.errstate(over="ignore"):
                return np.maximum(np.abs(values[lo:hi]), 1.0) * a[lo:hi]

        # √n · RMS, through rms so that huge gradients do not overflow
        norm = float(rms_of(a.size, weighted) * np.sqrt(a.size)) if a.size else 0.0
        if not tau > 0 or not np.isfinite(norm) or norm == 0 or o.n_unresolved:
            return float("nan"), float("nan")
        miss = float((np.sqrt(2.0 / np.pi) / RULES_OUT_MARGIN) ** k)
        return float(RULES_OUT_MARGIN * tau / norm), miss
    if not judged.size:
        return float("nan"), float("nan")
    denom = np.maximum(np.abs(a[judged]), rms(a))
    tol = np.nan_to_num(o.tolerance[judged])
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(denom > 0, tol / denom, np.inf)
    return float(np.max(rel)), 0.0


def _tensor_report(o: Outcome, nondeterministic: bool, allow_unresolved: bool = False,
                   fast: tuple[int, float] | None = None) -> TensorReport:
    """One row of the table. ``fast = (directions, τ_max)`` in fast mode, else ``None``."""
    t = o.target
    judged = _judged(o)  # the figures below are computed for these entries only (memory)
    a, numeric = t.analytic_flat[judged], o.numeric[judged]
    err = np.abs(numeric - a)
    # Relative to the entry, but never to less than the tensor's RMS gradient or what
    # differences can resolve there: an entry whose true value is 0 (a bias feeding
    # BatchNorm) would otherwise show a "relative error" of 1 from rounding alone.
    floor = np.maximum(rms(t.analytic_flat), np.nan_to_num(o.tolerance[judged]))
    denom = np.maximum(np.maximum(np.abs(a), np.abs(np.nan_to_num(numeric))), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(denom > 0, err / denom, 0.0)
    wrong = judged[o.wrong[judged]]
    pool = wrong if wrong.size else judged
    worst = t.index(int(pool[np.argmax(_badness(o, pool))])) if pool.size else None
    kind, found = _count_kind(o, fast is not None)
    rules_out, miss = _rules_out(o, judged, fast)
    return TensorReport(
        name=t.name, shape=tuple(t.shape),
        max_abs_error=float(np.nanmax(err)) if judged.size else float("nan"),
        max_rel_error=float(np.nanmax(rel)) if judged.size else float("nan"),
        worst_index=worst, n_wrong=int(o.n_wrong),
        n_checked=int(np.count_nonzero(np.isfinite(o.numeric))),
        n_nondifferentiable=int(o.kink.sum()),
        ok=bool(o.ok) and not nondeterministic and (allow_unresolved or not (
            o.n_unresolved or o.convention.any())),
        n_unresolved=int(o.n_unresolved), n_wrong_kind=kind, n_wrong_found=found,
        directions=0 if fast is None else int(fast[0]),
        rules_out_rel=rules_out, rules_out_miss_probability=miss)


def _worst(outcomes: list[Outcome]) -> list[Entry]:
    """The worst entries over all tensors: wrong ones first, then by error / tolerance
    (the same ranking as the table's ``worst at``, see :func:`_badness`)."""
    rows = []
    for o in outcomes:
        a = o.target.analytic_flat
        judged = _judged(o)
        badness = _badness(o, judged)
        wrong = o.wrong[judged]
        # Only this tensor's SHOW_WORST first in the ranking can be shown: rows for them
        # alone (in index order, so the stable sort below breaks ties as before).
        for k in np.sort(np.lexsort((-badness, ~wrong))[:SHOW_WORST]):
            i = judged[k]
            rows.append((bool(wrong[k]), float(badness[k]),
                         Entry(o.target.name, o.target.index(i), float(a[i]),
                               float(o.numeric[i]), float(abs(o.numeric[i] - a[i])),
                               float(o.tolerance[i]))))
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
