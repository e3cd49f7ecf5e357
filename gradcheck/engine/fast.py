r"""Fast mode: random directional derivatives, then group testing to localize wrong entries.

The check
---------
Draw ``k`` Gaussian directions ``u`` over all targets jointly (entry ``i`` moves by
``h·s_i·u_i`` with ``s_i = max(|θ_i|, 1)``) and compare the central directional
difference of ``φ`` with the analytic ``Σ a_i δ_i``. Cost: ``2k`` evaluations (``4k`` if
refined; a failing direction is re-judged at smaller steps, see
:func:`gradcheck.engine.numeric.judge_shrinking`; one whose error estimate cannot resolve
it is re-judged at larger steps, then reported unresolved, see
:func:`gradcheck.engine.numeric.judge_resolving`), independent of the number of parameters
``P``; memory ``O(P + M)``: only the direction and the perturbed arrays, never a Jacobian.
Measured with ``benchmarks/bench_fast_memory.py`` (``Σ sin x`` on 1e7 float64 entries,
80 MB): the check's peak above the process before it is about **5.2× the input** (419 MB;
12.5× before the block-wise passes, 18× before the per-entry outcome arrays became lazy).
It counts 3× held throughout (the adapter's working copy, the saved values, the claimed
gradient), one random direction (1×: drawn once, used by every step of its probe) and
``f``'s own temporary (1×, ``sin(x)``). Everything else works block by block
(:mod:`gradcheck.engine.blocks`: the moves are written straight into the array ``φ``
reads, sums are NumPy's own bit for bit), and the report's figures are computed for the
entries judged one by one only. When an entry is wrong the localization adds the
permutation of the entries (0.5×, int32), the dense per-entry tables of the sampled
entries' values (numeric, tolerance and, once some entry is refined, its one-sided
values: up to 4×) and the diagnosis' own arrays: 9.5× (760 MB; 17× before).

Probability of missing a wrong gradient
---------------------------------------
Let ``e = a − ∇φ`` be the error of the analytic gradient and ``σ = ‖s ⊙ e‖₂``. Along a
Gaussian direction the measured error is ``(s ⊙ e)·u ~ N(0, σ²)``, so one direction
misses it (``|(s⊙e)·u| ≤ τ``, the direction's tolerance) with probability
``P(|Z| ≤ τ/σ) ≤ √(2/π)·τ/σ`` (the N(0,1) density is at most ``1/√(2π)``). The ``k``
directions are independent, hence

.. math::  P(\text{miss}) \le \prod_{j=1}^{k} \min\bigl(1, \sqrt{2/\pi}\,\tau_j/\sigma\bigr)
           \le \bigl(\sqrt{2/\pi}\;\tau_{\max}/\sigma\bigr)^k .

``τ_max`` must bound the tolerance of *every* direction: ``τ_j`` grows with the direction
(its ``rtol·Σ|a_i s_i u_i|`` part), and the error and the tolerance of one direction are
not independent. ``result.options["fast_tolerance"]`` reports the largest ``τ_j`` of the
run, an estimate of ``τ_max`` (over 300 seeds the largest is ≈ 1.6× the typical one):
an error ten times larger than ``τ_max`` is missed with probability below ``0.08^k``
(``4e-5`` for the default ``k = 4``).
Full mode has no such miss probability; it judges each entry.

Localization (on failure)
-------------------------
1. Per tensor: two directions restricted to each tensor name the wrong tensors.
2. Per wrong tensor: a random sample of entries is differenced one by one (their
   numeric values go to the diagnosis). If many are wrong, the count is estimated from
   the sample (``fraction × size``) and bisection is skipped.
3. Otherwise bisection over blocks of a seeded permutation of the entries, each block
   tested with block-restricted directions: ``O(k log P)`` evaluations per wrong entry,
   capped at :data:`MAX_LOCALIZED` entries per tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from gradcheck.engine.blocks import pairwise_sum, pairwise_sums, rms_of, spans
from gradcheck.engine.numeric import (
    Judged,
    Judging,
    Objective,
    Outcome,
    Probe,
    Target,
    check_entries,
    judge_resolving,
    min_relative_step,
    rms,
    scale_floors,
)
from gradcheck.engine.safety import NonFiniteError, UserCodeError
from gradcheck.engine.streams import stream

#: Entries differenced one by one in each wrong tensor (numeric values for the diagnosis).
SAMPLE_ENTRIES = 24
#: Bisection stops after isolating this many wrong entries in one tensor.
MAX_LOCALIZED = 8
#: Sampled wrong entries beyond which a tensor counts as "many wrong" (no bisection).
MANY_WRONG = 4
#: Directions per tensor (step 1) and per block (step 3).
LOCAL_DIRECTIONS = 2
#: Block tests allowed per tensor during bisection (bounds the cost when kinks abound).
MAX_BLOCK_TESTS = 256

#: An underflow grain this small (float64's: 16 · 2.2e-308) never decides anything: not
#: summed along directions.
_NEGLIGIBLE_GRAIN = 1e-300


class _All:
    """Every entry of a tensor: selects through views, not an index array (memory)."""

    def __init__(self, size: int) -> None:
        self.size = size


def _select(idx: np.ndarray | _All, lo: int, hi: int) -> np.ndarray | slice:
    """Entries ``lo:hi`` of the selection ``idx``: a slice (views) when it is every entry."""
    return slice(lo, hi) if isinstance(idx, _All) else idx[lo:hi]


def _move(target: Target, sel: np.ndarray | slice, u: np.ndarray,
          step: float) -> tuple[np.ndarray, np.ndarray]:
    """The values at ``sel`` and their move ``step·max(|θ|, 1)·u`` (one new buffer)."""
    values = target.values[sel]
    move = np.abs(values)
    np.maximum(move, 1.0, out=move)
    move *= step
    move *= u
    return values, move


def _place_up(target: Target, idx: np.ndarray | _All, u: np.ndarray, step: float, lo: int,
              hi: int) -> tuple[float, float, float]:
    """Write block ``lo:hi`` moved up; return its ``Σ a·δ+``, ``Σ |a·δ+|`` and the
    underflow grain of ``Σ a·δ+`` (``Target.underflow · Σ |δ+|``)."""
    sel = _select(idx, lo, hi)
    up, d_up = target.realize_up(*_move(target, sel, u[lo:hi], step))
    target.flat()[sel] = up
    # the grain only where the gradient's dtype has one worth a pass (not float64's)
    grain = (target.underflow * float(np.sum(np.abs(d_up)))
             if target.underflow > _NEGLIGIBLE_GRAIN else 0.0)
    # np.sum, not BLAS `@`: no thread wake-up per probe, and pairwise summation
    d_up *= target.analytic_flat[sel]
    linear = float(np.sum(d_up))
    np.abs(d_up, out=d_up)
    return linear, float(np.sum(d_up)), grain


def _place_down(target: Target, idx: np.ndarray | _All, u: np.ndarray, step: float, lo: int,
                hi: int) -> float:
    """Write block ``lo:hi`` moved down (mirroring its realized up step); return ``Σ a·δ−``."""
    sel = _select(idx, lo, hi)
    _, down, _, d_down = target.realize(*_move(target, sel, u[lo:hi], step))
    target.flat()[sel] = down
    d_down *= target.analytic_flat[sel]
    return float(np.sum(d_down))


def _scaled_gradient(target: Target, idx: np.ndarray | _All, lo: int, hi: int) -> np.ndarray:
    """``a ⊙ max(|θ|, 1)`` over block ``lo:hi`` of ``idx``."""
    sel = _select(idx, lo, hi)
    return target.analytic_flat[sel] * np.maximum(np.abs(target.values[sel]), 1.0)


def _restore(target: Target, idx: np.ndarray | _All) -> None:
    """Write the saved values of ``idx`` back (block by block for an index array)."""
    flat = target.flat()
    if isinstance(idx, _All):
        flat[:] = target.values
        return
    for lo, hi in spans(idx.size):
        sel = idx[lo:hi]
        flat[sel] = target.values[sel]


Part = tuple["Target", "np.ndarray | _All", np.ndarray]  # target, entries, direction values


@dataclass
class FastReport:
    """Outcomes per target plus what fast mode learned on the way."""

    outcomes: list[Outcome]
    evaluations: int = 0
    tolerance: float = 0.0  # τ_max of the global directions (derivative units)
    directional_errors: list[float] = field(default_factory=list)
    directions_failed: bool = False  # some global direction disagreed (before localizing)
    #: Some direction was resolved only coarsely (a small error could hide in it).
    coarse: bool = False
    directions_inconclusive: bool = False  # every direction crossed a kink: entries sampled
    notes: list[str] = field(default_factory=list)


class _Prober:
    """Directional probes of one objective; counts evaluations."""

    def __init__(self, phi: Objective, f0: float, judging: Judging) -> None:
        self.phi, self.f0, self.judging = phi, f0, judging
        self.evaluations = 0

    def floor(self, parts: Sequence[Part]) -> float:
        """A direction's absolute floor: the given ``atol``, or the precision row's times
        √(Σ rms_t² · n_t) (through ``rms``, so that huge gradients do not overflow)."""
        if self.judging.atol is not None:
            return self.judging.atol
        terms = np.array([_rms(t) * np.sqrt(idx.size) for t, idx, _ in parts])
        return self.judging.precision.atol * rms(terms) * float(np.sqrt(terms.size))

    def _probe(self, parts: Sequence[Part], step: float
               ) -> tuple[Probe, float, float, float, float]:
        """Probe one direction; also return Σ|a δ|, a·δ, ‖a ⊙ s‖₂·step and the underflow
        grain of a·δ (``Σ underflow·|δ|``), over the step.

        Block by block (:mod:`gradcheck.engine.blocks`): the perturbed values go straight
        into the arrays φ reads, no full-size temporary is made, and every sum is the one
        ``np.sum`` of the whole product gives, bit for bit. The down pass recomputes the
        up step of its block (it mirrors the realized δ+) instead of keeping it.
        """
        lin_up = lin_down = magnitude = spread = grain = 0.0
        for target, idx, _ in parts:
            # expected |a·δ| over the Gaussian draw (‖a ⊙ s‖₂·step), not this draw's value:
            # the direction's resolution must not depend on how short it came out
            scaled = rms_of(idx.size, partial(_scaled_gradient, target, idx))
            spread = float(np.hypot(spread, scaled * np.sqrt(idx.size) * step))
        try:
            for target, idx, u in parts:
                up, size, fine = pairwise_sums(idx.size,
                                               partial(_place_up, target, idx, u, step))
                lin_up += up
                magnitude += size
                grain += fine
            f_up = self._call(parts)
            for target, idx, u in parts:
                lin_down += pairwise_sum(idx.size, partial(_place_down, target, idx, u, step))
            f_down = self._call(parts)
        finally:
            for target, idx, _ in parts:
                _restore(target, idx)
        self.evaluations += 2
        probe = Probe(r_up=np.array([(f_up - self.f0) - lin_up]),
                      r_down=np.array([(self.f0 - f_down) - lin_down]),
                      h_up=np.array([step]), h_down=np.array([step]),
                      f_up=np.array([f_up]), f_down=np.array([f_down]))
        if not (np.isfinite(f_up) and np.isfinite(f_down)):
            raise NonFiniteError(f"{self.judging.describe} returned a non-finite value along "
                                 f"a random direction; check away from the domain boundary")
        return probe, magnitude / step, lin_up / step, spread / step, grain / step

    def _call(self, parts: Sequence[Part]) -> float:
        """φ at the values placed now; its exceptions name the perturbed tensors."""
        try:
            return self.phi()
        except Exception as err:
            names = ", ".join(sorted({p[0].name for p in parts}))
            raise UserCodeError(f"{self.judging.describe} raised {type(err).__name__} with "
                                f"{names} perturbed along a random direction: {err}") from err

    def test(self, parts: Sequence[Part]) -> Judged:
        """Judge one direction (refined at half the step, at smaller steps if needed, and
        at larger ones where rounding drowns it)."""
        cfg = self.judging
        first, magnitude, analytic, spread, grain = self._probe(parts, cfg.step)
        probes = {cfg.step: first}

        def probe_at(items: np.ndarray, step: float) -> Probe:
            if step not in probes:
                probes[step] = self._probe(parts, step)[0]
            return probes[step]

        return judge_resolving(probe_at, np.array([analytic]), np.array([magnitude]),
                               cfg.noise, cfg.precision, step=cfg.step, rtol=cfg.rtol,
                               atol=self.floor(parts), scale_floor=spread,
                               floors_resolve=cfg.floors_resolve, grain=grain,
                               min_step=max(min_relative_step(p[0], cfg.precision)
                                            for p in parts))

    def fails(self, parts_of: Iterable[Sequence[Part]]) -> bool:
        failed = False
        for parts in parts_of:  # every direction drawn, also after a failure: the random
            if not failed:      # stream stays the one a list drawn up front gave
                failed = bool(self.test(parts).wrong[0])
        return failed


def _directions(rng: np.random.Generator, targets: Sequence[Target],
                idx_of: Sequence[np.ndarray | _All], count: int) -> Iterator[list[Part]]:
    """``count`` random directions, drawn one at a time (one direction in memory at once).

    The callers draw nothing else from ``rng`` while they iterate, so the directions are
    those a list drawn up front would hold.
    """
    for _ in range(count):
        yield [(t, idx, rng.standard_normal(idx.size))
               for t, idx in zip(targets, idx_of, strict=True)]


def _permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """``rng.permutation(n)`` in the narrowest index dtype: the same order, and the same
    stream afterwards (it shuffles an ``arange`` too), in half the memory below 2**31."""
    order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    rng.shuffle(order)
    return order


def _skip_normals(rng: np.random.Generator, count: int) -> None:
    """Advance ``rng`` past ``count`` standard normals, drawn block by block (no memory):
    the generator then stands where drawing them at once would have left it."""
    for lo, hi in spans(count):
        rng.standard_normal(hi - lo)


def _rms(target: Target) -> float:
    return rms(target.analytic_flat)


def run_fast(phi: Objective, targets: Sequence[Target], f0: float, judging: Judging, *,
             seed: int, directions: int, localize: bool = True) -> FastReport:
    """Directional check of all ``targets``; localize the wrong ones on failure.

    With ``localize=False`` a failure only marks every outcome not ok (a yes/no test).
    ``judging.atol`` (absolute floor in derivative units), when None, is the precision
    row's ``atol`` times the RMS analytic gradient of the targets in the direction
    (scaled by its length).

    >>> from gradcheck.engine.tolerances import PRECISIONS
    >>> x = np.linspace(-1.0, 1.0, 1000)
    >>> phi = lambda: float(np.sum(np.sin(x)))
    >>> judging = Judging.default(noise=1.0, precision=PRECISIONS["float64"])
    >>> def check(claimed):
    ...     report = run_fast(phi, [Target("x", "input", x, claimed)], phi(), judging,
    ...                       seed=0, directions=4)
    ...     return report.outcomes[0], report.evaluations
    >>> outcome, evaluations = check(np.cos(x))
    >>> outcome.ok, evaluations  # 4 directions, 2 evaluations each, whatever the size
    (True, 8)
    >>> claimed = np.cos(x)
    >>> claimed[123] *= 1.5
    >>> outcome, evaluations = check(claimed)  # fails, then localizes
    >>> outcome.ok, np.flatnonzero(outcome.wrong).tolist(), evaluations < 2 * x.size
    (False, [123], True)
    """
    rng = stream(seed, "directions")
    prober = _Prober(phi, f0, judging)
    report = FastReport([Outcome.empty(t, lazy=True) for t in targets])
    sweep = _sweep(prober, rng, targets, directions, report)
    report.directions_failed = sweep.failed
    if not sweep.failed and sweep.unresolved:
        _inconclusive(report, sweep.unresolved, directions)
    elif not sweep.failed and sweep.all_kinks:
        # Every direction crossed a kink, so each passed only inside a one-sided hull: a
        # hull that wide (ReLUs at exact zeros, or a step far coarser than φ's scale)
        # proves nothing. Judge a sample of entries one by one instead, as full mode would.
        report.directions_inconclusive = True
        report.notes.append("fast mode: every random direction crosses a kink, so a sample "
                            "of entries was checked one by one instead")
        spent = sum(_sample_entries(prober, t, out, rng, scale)
                    for t, out, scale in zip(targets, report.outcomes, scale_floors(targets),
                                             strict=True))
        prober.evaluations += spent
    elif not sweep.failed or not localize:
        for out in report.outcomes:
            out.ok = not sweep.failed
    else:
        _localize_all(prober, rng, targets, report)
    report.evaluations = prober.evaluations
    return report


@dataclass(frozen=True)
class _Sweep:
    """What the global directions found."""

    failed: bool  # some direction disagreed
    all_kinks: bool  # every direction crossed a kink
    unresolved: int  # directions no step could resolve


def _sweep(prober: _Prober, rng: np.random.Generator, targets: Sequence[Target],
           directions: int, report: FastReport) -> _Sweep:
    """Judge ``directions`` random directions over all targets; record τ and the errors."""
    failed, all_kinks, unresolved = False, True, 0
    every = [_All(t.size) for t in targets]
    for parts in _directions(rng, targets, every, directions):
        judged = prober.test(parts)
        report.tolerance = max(report.tolerance, float(judged.tolerance[0]))
        report.directional_errors.append(float(judged.error[0]))
        failed |= bool(judged.wrong[0])
        all_kinks &= bool(judged.kink[0])
        unresolved += bool(judged.unresolved_mask()[0])
        report.coarse |= bool(judged.coarse is not None and judged.coarse[0])
    return _Sweep(failed, all_kinks, unresolved)


def _inconclusive(report: FastReport, unresolved: int, directions: int) -> None:
    """A direction whose error estimate swamps its derivative at every step proves
    nothing either way: the whole check is unresolved, never an agreement."""
    report.directions_inconclusive = True
    report.notes.append(f"fast mode: {unresolved} of {directions} random directions could "
                        f"not be resolved (the rounding of φ swamps the directional "
                        f"derivative at every step); the check is inconclusive — try "
                        f"mode='full', or remove the large constant from φ")
    for out in report.outcomes:
        out.mark_unresolved()


def _localize_all(prober: _Prober, rng: np.random.Generator, targets: Sequence[Target],
                  report: FastReport) -> None:
    """Name the wrong tensors (directions restricted to each), then their wrong entries."""
    suspects = [i for i, t in enumerate(targets)
                if prober.fails(_directions(rng, [t], [_All(t.size)], LOCAL_DIRECTIONS))]
    if not suspects:
        report.notes.append("fast mode: the joint directional derivative disagrees but no "
                            "single tensor does on its own; all tensors are suspect")
        suspects = list(range(len(targets)))
    scales = scale_floors(targets)
    for i in suspects:
        # not ``+= _localize(...)``: the bisection inside counts its own probes meanwhile
        spent = _localize(prober, targets[i], report.outcomes[i], rng, report.notes, scales[i])
        prober.evaluations += spent


def _sample_entries(prober: _Prober, target: Target, out: Outcome, rng: np.random.Generator,
                    scale_floor: float) -> int:
    """Judge ``SAMPLE_ENTRIES`` random entries one by one; fill ``out``; return evaluations."""
    sample = np.sort(_permutation(rng, target.size)[:SAMPLE_ENTRIES])
    judged = check_entries(prober.phi, target, sample, prober.f0, prober.judging,
                           scale_floor=scale_floor)
    out.record(sample, judged)
    wrong = int(judged.wrong.sum())
    out.n_wrong = round(wrong / sample.size * target.size) if wrong else 0
    out.ok = wrong == 0
    return judged.evaluations


def _localize(prober: _Prober, target: Target, out: Outcome, rng: np.random.Generator,
              notes: list[str], scale_floor: float) -> int:
    """Sample, then bisect; fill ``out``; return the entry-wise evaluations spent."""
    spent = 0

    def check(idx: np.ndarray) -> Judged:
        nonlocal spent
        judged = check_entries(prober.phi, target, idx, prober.f0, prober.judging,
                               scale_floor=scale_floor)
        spent += judged.evaluations
        out.record(idx, judged)
        return judged

    order = _permutation(rng, target.size)
    sample = order[:SAMPLE_ENTRIES]
    sampled_wrong = int(check(np.sort(sample)).wrong.sum())
    exhaustive = target.size <= SAMPLE_ENTRIES
    if exhaustive:
        out.n_wrong = sampled_wrong
    elif sampled_wrong >= MANY_WRONG:
        out.n_wrong = round(sampled_wrong / sample.size * target.size)
        notes.append(f"fast mode: {target.name}: {sampled_wrong} of {sample.size} sampled "
                     f"entries wrong, an estimated {out.n_wrong} of {target.size} in all "
                     f"(mode='full' counts them)")
    else:
        found, capped = _bisect(target, order, prober, check, rng, out)
        estimate = sampled_wrong / sample.size * target.size
        out.n_wrong = max(found, int(out.wrong.sum()), round(estimate) if capped else 0)
        if capped:
            notes.append(f"fast mode: {target.name}: at least {found} wrong entries "
                         f"(localization stopped at its cap of {MAX_LOCALIZED}; "
                         f"mode='full' counts them all)")
    _settle_none_found(target, out, exhaustive, notes)
    return spent


def _settle_none_found(target: Target, out: Outcome, exhaustive: bool,
                       notes: list[str]) -> None:
    """The verdict of a tensor whose directions disagreed; say why when no entry did."""
    if out.n_wrong == 0 and out.kink.any():
        # One-sided directional derivatives across several kinks bound only a convex
        # combination; every entry probed on its own has a valid subgradient.
        notes.append(f"fast mode: {target.name}: directional checks disagree across "
                     f"{int(out.kink.sum())} kinks found, but each entry's derivative lies "
                     f"between its one-sided derivatives")
        return
    if out.n_wrong == 0 and exhaustive:
        # Every entry was judged on its own, as full mode would: that verdict stands. (A
        # direction crossing several kinks at once, e.g. exact zeros before a relu whose
        # gap rounding hides entry by entry, bounds only a convex combination.)
        notes.append(f"fast mode: {target.name}: its directional derivative disagrees, but "
                     f"each of its {target.size} entries, checked one by one, agrees (kinks "
                     f"along the direction, or errors below one entry's resolution)")
        return
    if out.n_wrong == 0:
        out.n_wrong = 1
        notes.append(f"fast mode: {target.name}: its directional derivative disagrees but no "
                     f"single entry could be isolated (many tiny errors, or a kink along the "
                     f"direction)")
    out.ok = False


def _bisect(target: Target, order: np.ndarray, prober: _Prober,
            check: Callable[[np.ndarray], Judged], rng: np.random.Generator,
            out: Outcome) -> tuple[int, bool]:
    """Group testing over blocks of ``order``; returns (wrong entries found, capped)."""
    found = tests = 0
    stack = [order]
    while stack:
        if tests >= MAX_BLOCK_TESTS:
            return found, True
        block = stack.pop()
        if block.size == 1:
            i = block[:1]
            if np.isnan(out.numeric[i[0]]):
                found += int(check(i).wrong[0])
            else:
                found += int(out.wrong[i[0]])
            if found >= MAX_LOCALIZED:
                return found, bool(stack)
            continue
        tests += block is not order
        if block is order:  # split untested; its directions are drawn (the stream) unkept
            _skip_normals(rng, LOCAL_DIRECTIONS * block.size)
        elif not prober.fails(_directions(rng, [target], [block], LOCAL_DIRECTIONS)):
            continue
        half = block.size // 2
        stack += [block[half:], block[:half]]
    return found, False
