r"""Non-smooth points: one verdict model for the entries found at kinks.

The per-entry judge (:mod:`gradcheck.engine.numeric`) accepts an entry at a kink when
its claimed value lies between its one-sided derivatives ``D−`` and ``D+``. That is
necessary for a valid subgradient, not sufficient, and it is too strict for a correct
chain rule through several kinks. After the differences, this module settles both:

**Joint validity (ties).** Kink entries of one tensor that hold the *same value* and
whose kinks bend the same way (``D+ − D−`` of one sign: all convex-like or all
concave-like) are moved together, ``d = Σ s_i e_i`` (``s_i = max(|θ_i|, 1)``, equal
within the group). Where φ is *differentiable* along ``d`` — the kinks cancel, as when
every tied maximum of a window moves at once — the claimed ``⟨g, d⟩`` must equal that
directional derivative, as for any smooth entry: the whole gradient routed to each of
two tied maxima gives ``⟨g, d⟩ = 2`` where φ′(x; d) = 1, although each entry lies inside
its own hull. A group that fails is narrowed down by halves (:data:`MAX_JOINT_TESTS`);
its entries are marked wrong. Only differentiable directions decide: along a direction
that still bends, the one-sided bounds hold for convex-like or concave-like kinks but
not for a mixture (``relu(x) − relu(−y)``), so nothing is concluded there. The
same-bend rule keeps separable kinks (ReLUs at exact zeros under upstream gradients of
both signs) out of every decision: their kinks never cancel.

**Conventions outside the hull (several kinks at once).** An entry whose claimed value
lies *outside* its one-sided derivatives is re-checked at two points off its kink,
:data:`NEARBY_STEPS` check steps away on either side along its own axis, with the
analytic gradient recomputed there (``analytic_at``, supplied by the adapters that can).
Right at both ⇒ the entry is not wrong: it is reported as a kink whose *convention*
lies outside the one-sided derivatives (finding ``kink-convention``). This is what a
correct chain rule with relu′(0) = 0 gives for a parameter feeding several ReLUs at
exactly 0 (``relu(b) − 3·relu(−b)``: one-sided 1 and 3, chain rule 0), but also what a
wrong convention at a single kink gives (relu′(0) = 4): from φ alone the two are the
same facts, so the check does not call it OK either. The verdict is
``"inconclusive"`` (``allow_unresolved=True`` accepts it). Where the gradient cannot be
recomputed, or is wrong nearby too, the entry stays wrong.

>>> import numpy as np
>>> from gradcheck.engine.numeric import Judging, Target, full_outcome
>>> from gradcheck.engine.tolerances import PRECISIONS
>>> x = np.array([1.0, 1.0, -0.5])  # x[0] and x[1] tie for the maximum
>>> phi = lambda: float(np.max(x))
>>> row = PRECISIONS["float64"]
>>> judging = Judging.default(noise=1.0, precision=row, describe="max")
>>> def joint_verdict(claimed):
...     out, _ = full_outcome(phi, Target("x", "input", x, claimed), phi(), judging)
...     review = review_kinks(phi, [out], phi(), judging, analytic_at=None)
...     return bool(out.ok), [f.code for f in review.findings]
>>> joint_verdict(np.array([1.0, 0.0, 0.0]))  # the whole gradient to one maximum
(True, [])
>>> joint_verdict(np.array([1.0, 1.0, 0.0]))  # to both: each entry passes, the pair not
(False, ['joint-kink'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gradcheck.diagnosis.evidence import Finding
from gradcheck.engine.fast import _Prober
from gradcheck.engine.numeric import (
    Judging,
    Objective,
    Outcome,
    Target,
    check_entries,
    scale_floors,
)
from gradcheck.engine.tolerances import (
    MAX_JOINT_GROUPS,
    MAX_JOINT_TESTS,
    MAX_NEARBY_ENTRIES,
    MAX_RELATIVE_STEP,
    MAX_TIE_PARTNERS,
    NEARBY_STEPS,
    PARTNERS_PER_KINK,
)

#: Recomputes the analytic gradient of every target at the targets' current values.
AnalyticAt = Callable[[], Sequence[np.ndarray]]
#: How many entries a note names before it says "and n more".
NAMED_ENTRIES = 4


@dataclass
class KinkReview:
    """What :func:`review_kinks` changed and found (the outcomes are updated in place)."""

    evaluations: int = 0
    #: Entries whose convention lies outside their one-sided derivatives while the
    #: gradient is right on both sides nearby (neither wrong nor agreeing).
    conventions: int = 0
    #: Entries found jointly invalid (tied kinks whose moves cancel).
    jointly_wrong: int = 0
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def review_kinks(phi: Objective, outcomes: Sequence[Outcome], f0: float, judging: Judging, *,
                 analytic_at: AnalyticAt | None) -> KinkReview:
    """Settle the entries at kinks: joint validity of tie sets, then conventions nearby.

    Tie sets are tested first (fast mode completes them with the partners it had not
    sampled): a move along which φ is smooth decides, and entries it finds wrong are not
    excused by being right nearby.

    Parameters
    ----------
    phi : callable () -> float
        The objective; it reads the targets' arrays (moved in place, always restored).
    outcomes : list of Outcome
        Per-target verdicts of full or fast mode; updated in place (``wrong``,
        ``n_wrong``, ``ok``, ``convention``).
    f0 : float
        φ at the point.
    judging : Judging
        The run's step, tolerances and noise (as for
        :func:`gradcheck.engine.numeric.check_entries`).
    analytic_at : callable () -> list of ndarray, optional
        The analytic gradient of every target (in order, each the target's shape or
        flat) at the targets' current values; None where the adapter cannot recompute
        it (then no entry is re-checked nearby).

    Returns
    -------
    KinkReview
        Evaluations spent, counts, notes and coded findings.
    """
    cfg = judging
    review = KinkReview()
    targets = [o.target for o in outcomes]
    floors = scale_floors(targets)
    jointly = []
    for o, floor in zip(outcomes, floors, strict=True):
        _complete_ties(phi, o, f0, floor, cfg, review)
        jointly.append(_joint(phi, o, f0, floor, cfg, review))
    if analytic_at is not None:
        _conventions(phi, outcomes, floors, jointly, analytic_at, cfg, review)
    return review


def _complete_ties(phi: Objective, o: Outcome, f0: float, floor: float, cfg: Judging,
                   review: KinkReview) -> None:
    """Judge the unchecked entries that tie with a kink found (fast mode samples entries:
    a tied partner may be missing): per kink the :data:`PARTNERS_PER_KINK` nearest (by
    flat index) unchecked entries of exactly its value, at most :data:`MAX_TIE_PARTNERS`
    per tensor."""
    if not o.kink.any():
        return
    checked = np.isfinite(o.numeric)
    if checked.all():
        return
    values = o.target.values
    chosen: set[int] = set()
    for k in np.flatnonzero(o.kink).tolist():
        same = np.flatnonzero(~checked & (values == values[k]))
        nearest = same[np.argsort(np.abs(same - k), kind="stable")[:PARTNERS_PER_KINK]]
        chosen.update(nearest.tolist())
        if len(chosen) >= MAX_TIE_PARTNERS:
            break
    partners = np.array(sorted(chosen)[:MAX_TIE_PARTNERS], dtype=np.intp)
    if not partners.size:
        return
    before = int(o.wrong.sum())
    judged = check_entries(phi, o.target, partners, f0, cfg, scale_floor=floor)
    review.evaluations += judged.evaluations
    o.record(partners, judged)
    found = int(o.wrong.sum()) - before
    if found:
        o.n_wrong += found
        o.ok = False
    review.notes.append(f"{o.target.name}: {partners.size} entries tied with the kinks "
                        f"found were checked one by one too (joint validity needs every "
                        f"tied partner)")


# ---------------------------------------------------------------- conventions nearby
def _conventions(phi: Objective, outcomes: Sequence[Outcome], floors: Sequence[float],
                 jointly: Sequence[np.ndarray], analytic_at: AnalyticAt, cfg: Judging,
                 review: KinkReview) -> None:
    """Re-check wrong entries at kinks on both sides nearby; clear those right there.

    Entries found wrong jointly (``jointly``, per outcome) are not re-checked: along a
    move where φ is smooth, being right nearby excuses nothing."""
    budget = MAX_NEARBY_ENTRIES
    for k, (o, floor) in enumerate(zip(outcomes, floors, strict=True)):
        suspects = np.setdiff1d(np.flatnonzero(o.wrong & o.kink), jointly[k])
        cleared = []
        for i in suspects[:budget].tolist():
            right, spent = _right_nearby(phi, outcomes, k, i, floor, analytic_at, cfg)
            review.evaluations += spent
            if right:
                cleared.append(i)
        budget -= min(budget, suspects.size)
        if not cleared:
            continue
        before = int(o.wrong.sum())
        o.wrong = np.array(o.wrong)  # a lazy (fast-mode) outcome holds read-only views
        o.wrong[cleared] = False
        if o.convention.size != o.target.size:
            o.convention = np.zeros(o.target.size, bool)
        o.convention[cleared] = True
        # an exact count drops with the cleared entries; an estimate keeps its remainder
        o.n_wrong = int(o.wrong.sum()) if o.n_wrong == before else max(
            o.n_wrong - len(cleared), int(o.wrong.sum()))
        o.ok = o.n_wrong == 0
        review.conventions += len(cleared)
        names = _named(o.target, np.array(cleared))
        sits = "sits at a kink" if len(cleared) == 1 else "each sit at a kink"
        text = (f"{names} {sits} whose convention lies outside the one-sided "
                f"derivatives; the gradient is right everywhere nearby (re-checked on "
                f"both sides off the kink): a correct chain rule through several kinks at "
                f"once (relu'(0) = 0 on a parameter feeding several ReLUs at exactly 0) or "
                f"a wrong value at the kink itself — differences cannot tell which, so the "
                f"check is inconclusive (allow_unresolved=True accepts it)")
        review.notes.append(text)
        review.findings.append(Finding(text, code="kink-convention"))


def _right_nearby(phi: Objective, outcomes: Sequence[Outcome], k: int, i: int, floor: float,
                  analytic_at: AnalyticAt, cfg: Judging) -> tuple[bool, int]:
    """Whether entry ``i`` of target ``k`` agrees, smoothly, on both sides off its kink."""
    t = outcomes[k].target
    old = float(t.values[i])
    shift = min(NEARBY_STEPS * cfg.step, MAX_RELATIVE_STEP) * max(abs(old), 1.0)
    up, down, _, _ = t.realize(np.array([old]), np.array([shift]))
    flat, spent = t.flat(), 0
    for moved in (float(up[0]), float(down[0])):
        if moved == old:
            return False, spent
        try:
            flat[i] = moved
            f_here = float(phi())
            spent += 1
            grads = [np.array(g, dtype=np.float64) for g in analytic_at()]
            if len(grads) != len(outcomes) or grads[k].size != t.size:
                return False, spent
            here = Target(t.name, t.role, t.array, grads[k].reshape(t.shape),
                          storage=t.storage)
            judged = check_entries(phi, here, np.array([i]), f_here, cfg, scale_floor=floor)
        except (MemoryError, RecursionError):
            raise
        except Exception:  # any failure nearby (user code, domain): the entry keeps its verdict
            return False, spent
        finally:
            flat[i] = old
        spent += judged.evaluations
        smooth = not judged.kink[0] and not (judged.hull is not None and judged.hull[0])
        if judged.wrong[0] or judged.unresolved_mask()[0] or not smooth:
            return False, spent
    return True, spent


# ---------------------------------------------------------------- joint validity
def _groups(o: Outcome) -> list[np.ndarray]:
    """Tie sets among the kink entries: the same value, the same bend (sign of D+ − D−),
    and the same one-sided derivatives within their tolerances (each member of a tie,
    moved alone, sees the same two slopes; ReLUs at zeros under different upstream
    gradients do not). Entries outside their own hull are included: a move along which φ
    is smooth decides more sharply than their hull."""
    unresolved = o.unresolved if o.unresolved.size == o.target.size else np.zeros(
        o.target.size, bool)
    candidates = np.flatnonzero(o.kink & ~unresolved
                                & np.isfinite(o.left) & np.isfinite(o.right))
    bend = np.sign(o.right[candidates] - o.left[candidates])
    by_value: dict[tuple[float, float], list[int]] = {}
    for i, b in zip(candidates.tolist(), bend.tolist(), strict=True):
        if b != 0:
            by_value.setdefault((float(o.target.values[i]), b), []).append(i)
    slack = np.nan_to_num(o.tolerance, nan=0.0)
    found: list[np.ndarray] = []
    for members in by_value.values():
        if len(members) < 2:
            continue
        ordered = np.array(members)[np.argsort(o.right[members], kind="stable")]
        cluster = [int(ordered[0])]
        for i in ordered[1:].tolist():
            j = cluster[-1]
            if (abs(o.right[i] - o.right[j]) <= slack[i] + slack[j]
                    and abs(o.left[i] - o.left[j]) <= slack[i] + slack[j]):
                cluster.append(i)
                continue
            found.append(np.sort(np.array(cluster)))
            cluster = [i]
        found.append(np.sort(np.array(cluster)))
    found = [g for g in found if g.size >= 2]
    return sorted(found, key=lambda g: -g.size)[:MAX_JOINT_GROUPS]


def _joint(phi: Objective, o: Outcome, f0: float, floor: float, cfg: Judging,
           review: KinkReview) -> np.ndarray:
    """Move each group of tied kinks together; mark the groups that fail where smooth.

    Returns the entries found jointly wrong."""
    groups = _groups(o)
    if not groups:
        return np.zeros(0, np.intp)
    mover = _TieMover(_Prober(phi, f0, cfg), o.target)
    failed: list[_Failed] = []
    for group in groups:
        if mover.tests >= MAX_JOINT_TESTS:
            break
        first = mover.test(group)
        if first is not None:
            failed += mover.narrow(first)
    review.evaluations += mover.prober.evaluations
    if not failed:
        return np.zeros(0, np.intp)
    _mark_joint(o, failed, review)
    return np.concatenate([f.idx for f in failed])


@dataclass(frozen=True)
class _Failed:
    """A tie set whose joint move is smooth and disagrees."""

    idx: np.ndarray
    numeric: float  # φ's derivative along the move
    claimed: float  # the claimed gradient's


@dataclass
class _TieMover:
    """Moves sets of tied entries of one target together; counts its tests."""

    prober: _Prober
    target: Target
    tests: int = 0

    def test(self, idx: np.ndarray) -> _Failed | None:
        """The failure, when φ is differentiable along the joint move and disagrees."""
        self.tests += 1
        t = self.target
        judged = self.prober.test([(t, idx, np.ones(idx.size))])
        smooth = not judged.kink[0] and not (judged.hull is not None and judged.hull[0])
        if not (judged.wrong[0] and smooth):
            return None
        claimed = float(np.sum(t.analytic_flat[idx] * np.maximum(np.abs(t.values[idx]), 1.0)))
        return _Failed(idx, claimed + float(judged.error[0]), claimed)

    def narrow(self, failure: _Failed) -> list[_Failed]:
        """Narrow a failing set by halves while a half alone fails where smooth."""
        found, stack = [], [failure]
        while stack:
            current = stack.pop()
            idx = current.idx
            halves = [idx[: idx.size // 2], idx[idx.size // 2:]] if idx.size > 2 else []
            narrowed = [f for f in (self.test(h) for h in halves
                                    if h.size >= 2 and self.tests < MAX_JOINT_TESTS)
                        if f is not None]
            if narrowed:
                stack += narrowed
            else:
                found.append(current)
        return found


def _mark_joint(o: Outcome, failed: Sequence[_Failed], review: KinkReview) -> None:
    """Mark the jointly wrong entries and say why. The blame goes to the members already
    outside their own hull, if a set has any; else to the whole set (each entry is fine
    alone, the vector is not)."""
    t = o.target
    marked = np.concatenate([f.idx if not o.wrong[f.idx].any() else f.idx[:0]
                             for f in failed])
    o.wrong = np.array(o.wrong)  # a lazy (fast-mode) outcome holds read-only views
    new = int(marked.size)
    o.wrong[marked] = True
    o.n_wrong += new
    o.ok = False
    review.jointly_wrong += new
    first = failed[0]
    text = (f"{t.name}: the tied kinks {_named(t, first.idx)} moved together leave φ "
            f"differentiable (their kinks cancel, as at tied maxima), with derivative "
            f"{first.numeric:.6g} along that move, but the claimed gradient gives "
            f"{first.claimed:.6g}: an entry may lie between its own one-sided derivatives, "
            f"the vector does not (e.g. the whole gradient routed to every tied maximum; a "
            f"valid subgradient splits it, weights summing to 1)"
            + (f"; {len(failed) - 1} more such groups" if len(failed) > 1 else ""))
    review.notes.append(text)
    review.findings.append(Finding(text, code="joint-kink"))


def _named(t: Target, idx: np.ndarray) -> str:
    shown = [f"{t.name}{list(t.index(i))}" for i in idx[:NAMED_ENTRIES].tolist()]
    more = f" and {idx.size - NAMED_ENTRIES} more" if idx.size > NAMED_ENTRIES else ""
    return ", ".join(shown) + more


__all__ = ["AnalyticAt", "KinkReview", "review_kinks"]
