"""A relative error common to a whole tensor, below the per-entry floor (float64 only).

The per-entry verdict keeps the ``rtol`` floor (√eps ≈ 1.5e-8 in float64), which covers
rounding in the user's backward pass: one entry computed with cancellation may be off by
far more than ``eps``. A *common* ratio is another matter: ``analytic = (1 + c)·numeric``
in every entry (a constant rounded to float32: ``c ≈ 3e-8``) is what a wrong constant or
a float32 intermediate does, while rounding scatters. So, once every entry of a tensor
agrees, one more test asks whether the whole tensor is off by a common ratio:

1. **Direction along the gradient.** ``d_i = a_i · max(|θ_i|, 1) / max|a|`` (kinks and
   zero entries left out), so the projected error ``(n − a)·d`` weighs each entry's
   relative error by ``a_i² · max(|θ_i|, 1)``: a common ratio adds up coherently, an entry's
   own cancellation (a small ``a_i``) barely counts. φ is evaluated at ``θ ± s·d``,
   ``θ ± 2s·d``, ``θ ± 4s·d`` (6 evaluations); two Richardson extrapolations of the
   central differences (4-point differences, truncation ``O(s⁴)``) give the projected
   error and, from their disagreement, its truncation; the rounding estimate is the
   engine's ``κ·eps·|φ|`` per value. The step ``s`` is chosen so that rounding is a
   quarter of the threshold :data:`SYSTEMATIC_EPS_UNITS` ``· eps`` (relative to
   ``a·d``): a larger step, which 4-point differences can afford on smooth functions.
2. **One ratio in every group.** Only when the projected error exceeds its estimate by
   more than the threshold, and agrees with the entries' own errors (``Σ (n_i − a_i)·d_i``
   within ``Σ tolerance_i·|d_i|``: a step too large for the function, such as a line
   across many kinks, reads an error the entries do not show), are
   :data:`SYSTEMATIC_GROUPS` groups of entries (dealt by size) tested the same way, each
   at its own step: each must show the error beyond its own estimate, consistently with
   its entries, with the same sign, and a ratio within :data:`SYSTEMATIC_SPREAD` of the
   whole's. A kink near the line or a few scattered entries affect one group, not all.
3. **Which entries.** The entries are then differenced one by one with 4-point
   differences at a large step (6 evaluations each, paid only by a wrong tensor): those
   whose own error has the common sign and exceeds its estimate are marked wrong (if no
   entry resolves it alone, those with the common sign), with that sharper numeric value.

Correct code pays 6 evaluations per tensor (12 when the first step is
truncation-bound). Not run where the output or the gradient is float32/float16 (the
threshold would exceed ``rtol``), nor with a user-chosen ``rtol``/``atol`` (the floor is
then the user's call).

>>> import numpy as np
>>> from gradcheck.engine.numeric import Judging, Target, full_outcome
>>> from gradcheck.engine.tolerances import PRECISIONS
>>> x = np.linspace(-1.0, 1.0, 12)
>>> t = Target("x", "input", x, analytic=(1 + 1e-8) * np.cos(x))
>>> phi = lambda: float(np.sin(x).sum())
>>> judging = Judging.default(noise=1.0, precision=PRECISIONS["float64"])
>>> out, _ = full_outcome(phi, t, phi(), judging)
>>> out.ok  # 1e-8 relative in every entry: within every entry's floor
True
>>> found = find_systematic(phi, out, phi(), judging)
>>> out.ok, f"{found.ratio:.1e}"
(False, '1.0e-08')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.engine.numeric import (
    Judging,
    Objective,
    Outcome,
    Target,
    probe_entries,
    walk_along,
)
from gradcheck.engine.safety import NonFiniteError, UserCodeError
from gradcheck.engine.tolerances import (
    SYSTEMATIC_EPS_UNITS,
    SYSTEMATIC_GROUPS,
    SYSTEMATIC_MAX_STEP,
    SYSTEMATIC_MIN_ENTRIES,
    SYSTEMATIC_ROUNDING_SHARE,
    SYSTEMATIC_SPREAD,
    Precision,
)

#: Relative steps of the three central differences (multiples of ``s``).
_MULTIPLES = (1.0, 2.0, 4.0)


@dataclass
class Systematic:
    """What the whole-tensor test found for one target.

    ``ratio`` is ``c`` in ``analytic ≈ (1 + c)·numeric`` (NaN when not tested or not
    found), ``evaluations`` the φ calls it made, ``note`` a sentence for the result
    (empty when nothing was found).
    """

    ratio: float = float("nan")
    evaluations: int = 0
    note: str = ""


def _extrapolate(errors: np.ndarray, roundings: np.ndarray, spans: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Richardson of central errors at three steps → (value, error estimate).

    ``errors``, ``roundings``, ``spans``: shape ``(3, m)``, central (numeric − analytic),
    its rounding estimate and the realized span, at steps ``s, 2s, 4s``. The value is the
    extrapolation of the two smaller steps (truncation ``O(s⁴)``); the estimate adds both
    extrapolations' rounding and their whole disagreement (about 15 times the value's
    truncation on a smooth function; at a kink between the steps, far more).
    """
    values, rounds = [], []
    for lo, hi in ((0, 1), (1, 2)):
        ratio = (spans[hi] / spans[lo]) ** 2 - 1
        ratio = np.where(ratio > 0, ratio, np.inf)
        values.append(errors[lo] + (errors[lo] - errors[hi]) / ratio)
        rounds.append(roundings[lo] * (1 + 1 / ratio) + roundings[hi] / ratio)
    return values[0], rounds[0] + rounds[1] + np.abs(values[1] - values[0])


def _directional(phi: Objective, target: Target, f0: float, d: np.ndarray, s: float,
                 noise: float, precision: Precision, describe: str) -> tuple[float, float]:
    """Projected error ``(n − a)·d`` and its estimate from 4-point differences at ``s``.

    ``(nan, inf)`` when the line leaves the function's domain.
    """
    offsets = [sign * m * s for m in _MULTIPLES for sign in (1.0, -1.0)]
    try:
        values, linear = walk_along(phi, [target], [d], offsets, describe=describe,
                                    during="while testing for an error common to all "
                                           f"entries of {target.name}")
    except (UserCodeError, NonFiniteError):
        return float("nan"), float("inf")
    r = values - f0 - linear
    if not np.all(np.isfinite(r)):
        return float("nan"), float("inf")
    scale = max(noise, float(np.max(np.abs(values))))
    spans = 2 * s * np.array(_MULTIPLES)[:, None]
    errors = ((r[0::2] - r[1::2])[:, None]) / spans
    roundings = precision.rounding_safety * precision.eps * 2 * scale / spans
    value, estimate = _extrapolate(errors, roundings, spans)
    return float(value[0]), float(estimate[0])


def _step_for(scale: float, size: np.ndarray | float, precision: Precision, step: float
              ) -> np.ndarray | float:
    """Relative step whose rounding estimate is the share of the threshold times ``size``.

    The value's and the second extrapolation's rounding add up to ``2.25·κ·eps·|φ|/s``.
    """
    with np.errstate(divide="ignore"):
        wanted = (2.25 * precision.rounding_safety * scale
                  / (SYSTEMATIC_ROUNDING_SHARE * SYSTEMATIC_EPS_UNITS * np.asarray(size)))
    return np.clip(np.nan_to_num(wanted, posinf=SYSTEMATIC_MAX_STEP), step,
                   max(step, SYSTEMATIC_MAX_STEP))


def _measure(phi: Objective, target: Target, f0: float, d: np.ndarray, noise: float,
             precision: Precision, step: float, describe: str) -> tuple[float, float, float, int]:
    """(projected error, estimate, a·d, evaluations): at the rounding-chosen step, and
    once more at an 8× smaller one when truncation leaves the first unresolved."""
    size = float(np.dot(target.analytic_flat, d))
    threshold = SYSTEMATIC_EPS_UNITS * precision.eps * size
    scale = max(noise, abs(f0))
    s = float(_step_for(scale, size, precision, step))
    value, estimate = _directional(phi, target, f0, d, s, noise, precision, describe)
    spent = 2 * len(_MULTIPLES)
    if not estimate <= threshold and s / 8 >= step:
        again = _directional(phi, target, f0, d, s / 8, noise, precision, describe)
        spent += 2 * len(_MULTIPLES)
        if again[1] < estimate:
            value, estimate = again
    return value, estimate, size, spent


def _beyond(value: float, estimate: float, size: float, precision: Precision) -> bool:
    """The projected error exceeds its estimate by more than the threshold."""
    return bool(abs(value) > estimate + SYSTEMATIC_EPS_UNITS * precision.eps * size)


def _consistent(out: Outcome, d: np.ndarray, value: float, estimate: float) -> bool:
    """The directional error agrees with the entries' own: ``Σ (n_i − a_i)·d_i`` within
    ``Σ tolerance_i·|d_i|`` plus its estimate. A step far too large for the function (a
    line across many kinks of a max-pool at a large offset, whose mean slope looks
    smooth) reads an error the entries, differenced at their own step, do not show."""
    used = d != 0
    entries = float(np.dot(out.numeric[used] - out.target.analytic_flat[used], d[used]))
    spread = float(np.dot(out.tolerance[used], np.abs(d[used])))
    return bool(abs(value - entries) <= estimate + spread)


def _eligible(out: Outcome) -> np.ndarray:
    a = out.target.analytic_flat
    return np.flatnonzero((a != 0) & np.isfinite(a) & ~out.kink & np.isfinite(out.numeric)
                          & np.isfinite(out.tolerance))


def find_systematic(phi: Objective, out: Outcome, f0: float, judging: Judging, *,
                    grad_precision: Precision | None = None) -> Systematic:
    """Test ``out``'s tensor for a common relative error; mark its entries when found.

    Runs only on a tensor whose entries all agree (``out.ok``, nothing unresolved) with
    at least :data:`SYSTEMATIC_MIN_ENTRIES` nonzero entries, and only when the threshold
    ``SYSTEMATIC_EPS_UNITS · eps`` is below ``rtol``. When found, ``out`` is updated in
    place (``wrong``, ``numeric``, ``tolerance`` of the marked entries, ``n_wrong``,
    ``ok``); the user's arrays are restored after every evaluation.

    Parameters
    ----------
    out : Outcome
        The full-mode outcome of one target (its per-entry verdicts).
    judging : Judging
        The run's rounding scale of φ, precision row, first relative step (the least
        step taken here) and relative floor ``rtol`` (the test is skipped where the
        threshold is not below it).
    grad_precision : Precision, optional
        The precision the analytic gradient was computed in (default ``precision``): a
        float32 gradient differenced through float64 rounds at float32's size in every
        entry, so the threshold is that of the coarser of the two.
    """
    noise, precision, step, describe = (judging.noise, judging.precision, judging.step,
                                        judging.describe)
    target = out.target
    found = Systematic()
    unit = max(precision.eps, (grad_precision or precision).eps)
    if SYSTEMATIC_EPS_UNITS * unit >= judging.rtol or not out.ok or out.n_unresolved:
        return found
    idx = _eligible(out)
    if idx.size < SYSTEMATIC_MIN_ENTRIES:
        return found
    a = target.analytic_flat
    weight = np.maximum(np.abs(target.values), 1.0)
    d = np.zeros(target.size)
    d[idx] = a[idx] * weight[idx] / np.max(np.abs(a[idx]))
    value, estimate, size, spent = _measure(phi, target, f0, d, noise, precision, step,
                                            describe)
    found.evaluations = spent
    if not (size > 0 and _beyond(value, estimate, size, precision)
            and _consistent(out, d, value, estimate)):
        return found
    ratio = value / size
    order = idx[np.argsort(-np.abs(a[idx] * d[idx]), kind="stable")]
    for g in range(SYSTEMATIC_GROUPS):
        part = np.zeros(target.size)
        members = order[g::SYSTEMATIC_GROUPS]
        # scaled so that the group's largest entry moves by the relative step
        part[members] = a[members] * weight[members] / np.max(np.abs(a[members]))
        v_g, e_g, size_g, spent_g = _measure(phi, target, f0, part, noise, precision, step,
                                             describe)
        found.evaluations += spent_g
        # the threshold is the whole tensor's; a group must show the error beyond its
        # own estimate, with the whole's sign and ratio
        if not (size_g > 0 and abs(v_g) > e_g
                and _consistent(out, part, v_g, e_g) and np.sign(v_g) == np.sign(value)
                and abs(v_g / size_g - ratio) <= (e_g / size_g + estimate / size
                                                  + SYSTEMATIC_SPREAD * abs(ratio))):
            return found
    found.ratio = -value / (size + value)  # analytic = (1 + c)·numeric along d
    found.evaluations += _mark_entries(phi, out, f0, idx, np.sign(value), noise, precision,
                                       step, describe)
    found.note = (f"{target.name}: analytic ≈ (1 {'+' if found.ratio > 0 else '−'} "
                  f"{abs(found.ratio):.2g}) × numeric over the whole tensor (in each of "
                  f"{SYSTEMATIC_GROUPS} groups of entries, with 4-point differences), "
                  f"beyond what rounding explains (threshold "
                  f"{SYSTEMATIC_EPS_UNITS * precision.eps:.1e} relative); each entry alone "
                  f"is within its tolerance ({judging.rtol:.1e} relative covers rounding in one "
                  f"entry). A constant or an intermediate rounded to float32?")
    return found


def _mark_entries(phi: Objective, out: Outcome, f0: float, idx: np.ndarray, sign: float,
                  noise: float, precision: Precision, step: float, describe: str) -> int:
    """Difference entries ``idx`` one by one at large steps; mark those with the common
    error. Returns the evaluations made."""
    target = out.target
    a = target.analytic_flat[idx]
    s = float(np.median(_step_for(max(noise, abs(f0)), np.abs(a), precision, step)))
    errors, roundings, spans = [], [], []
    spent = 0
    try:
        for m in _MULTIPLES:
            probe = probe_entries(phi, target, idx, s * m, f0, describe)
            spent += 2 * idx.size
            span = probe.h_up + probe.h_down
            value_scale = np.maximum(noise, np.maximum(np.abs(probe.f_up),
                                                       np.abs(probe.f_down)))
            errors.append((probe.r_up + probe.r_down) / span)
            roundings.append(precision.rounding_safety * precision.eps * 2 * value_scale
                             / span)
            spans.append(span)
    except (UserCodeError, NonFiniteError):
        value, estimate = np.full(idx.size, np.nan), np.full(idx.size, np.inf)
    else:
        value, estimate = _extrapolate(np.array(errors), np.array(roundings), np.array(spans))
    common = np.sign(np.nan_to_num(value)) == sign
    alone = common & (np.abs(value) > estimate)
    marked = alone if alone.any() else common
    if not marked.any():  # no entry can say more: the tensor as a whole is wrong
        marked = np.ones(idx.size, bool)
    chosen = idx[marked]
    sharp = marked & np.isfinite(value)
    out.write("numeric", idx[sharp], a[sharp] + value[sharp])
    out.write("tolerance", idx[sharp], estimate[sharp])
    out.write("wrong", chosen, np.ones(chosen.size, bool))
    out.n_wrong = int(out.wrong.sum())
    out.ok = False
    return spent


__all__ = ["Systematic", "find_systematic"]
