"""One table of finite-difference constants, keyed by floating-point precision.

Every default the checker uses comes from :data:`PRECISIONS`; nothing else in the
checker core holds a numeric tolerance. A row is chosen by the *working precision*:

* the step and the rounding estimate use the precision of the **output** (float32 if
  the function's output is float32 or exactly float32-representable, else its dtype);
* the relative floor ``rtol`` uses the coarser of the output precision and the dtype of
  the analytic gradient (a gradient stored in float32 cannot be better than float32).

The user's explicit ``eps``/``rtol``/``atol`` replace the row's ``step``/``rtol``/``atol``;
the finite-difference error estimate is always added (a check cannot be stricter than
what differences can resolve).

>>> PRECISIONS["float64"].step  # ≈ eps ** (1/3), balances rounding and truncation
6.055454452393343e-06
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Precision:
    """Finite-difference constants for one floating-point format.

    Attributes
    ----------
    name : str
        ``"float64"``, ``"float32"`` or ``"float16"``.
    eps : float
        Machine epsilon (unit roundoff × 2) of the format.
    step : float
        Relative central-difference step ``c``: entry ``i`` moves by
        ``c · max(|θ_i|, 1)``. ``eps ** (1/3)`` minimises rounding + truncation error.
    rtol : float
        Relative floor added to every tolerance (covers rounding inside the user's
        backward pass). ``sqrt(eps)``: half the digits of the format.
    atol : float
        Absolute floor, in units of the tensor's RMS analytic gradient (so it scales
        with the problem instead of being a magic absolute number).
    rounding_safety : float
        Factor on the rounding estimate ``eps · |φ| / h`` (φ accumulates several
        roundings per evaluation).
    """

    name: str
    eps: float
    step: float
    rtol: float
    atol: float
    rounding_safety: float


def _row(dtype: type[np.floating], rounding_safety: float = 8.0) -> Precision:
    eps = float(np.finfo(dtype).eps)
    root = eps ** 0.5
    return Precision(name=np.dtype(dtype).name, eps=eps, step=eps ** (1 / 3), rtol=root,
                     atol=root, rounding_safety=rounding_safety)


PRECISIONS: dict[str, Precision] = {
    "float64": _row(np.float64),
    "float32": _row(np.float32),
    "float16": _row(np.float16),
}

#: Above this many checked entries, ``mode="auto"`` uses the fast (directional) mode.
#: 2048 entries cost 4096 evaluations in full mode: well under a second for layers of
#: that size, while a 13,000-parameter network is checked in ~40 evaluations instead.
AUTO_FULL_MAX_ENTRIES = 2048

#: At most this many unit roundings of φ are read as cancellation noise when the two
#: noise probes disagree (``runner.run``): more than that is a kink's scatter, not noise.
NOISE_FLOOR_CAP = 100.0
#: An entry (or direction) agrees only when its finite-difference error estimate is at
#: most this fraction of what it must resolve (``max(|analytic|, |numeric|, the tensor's
#: RMS gradient)``); otherwise it is *unresolved*, never OK. A zero, flipped or doubled
#: gradient, or any error above twice this fraction, is then outside the tolerance.
#: See ``numeric.judge_resolving``.
RESOLUTION = 0.05
#: Entries resolved only above this fraction are sharpened with larger steps where that
#: helps, so that an error of 1 % is caught wherever some step can resolve it.
FINE_RESOLUTION = 0.005
#: The same at a kink, where the entry is judged inside its one-sided hull (itself a
#: coarser measurement: one-sided differences round twice as badly): what it must resolve
#: is the larger one-sided derivative, and a hull wider than a tenth of it proves nothing.
KINK_RESOLUTION = 0.25
#: A tensor whose RMS gradient is below this fraction of the largest tensor's in the same
#: check (a bias feeding batch norm: exactly 0) is judged against that fraction instead.
NEGLIGIBLE_TENSOR = 1e-3
#: An entry whose analytic value is exactly 0 agrees when differences confirm 0 to
#: within this many units of the row's ``atol`` (√eps) in absolute terms, even where the
#: check has no scale to be relative to (x² at 0) — the only scale left is the unit one.
ZERO_GRADIENT = 1.0
#: Unresolved entries are re-judged at steps this many times larger (rounding falls as 1/h)
RAISE_RATIO = 16.0
#: ... up to this relative step (``h = MAX_RELATIVE_STEP · max(|θ|, 1)``); beyond it the
#: step no longer probes the point.
MAX_RELATIVE_STEP = 0.25
#: Number of random directions in fast mode (see ``gradcheck.engine.fast`` for the miss bound).
FAST_DIRECTIONS = 4


#: 2**24: from here on every float32 value is an integer (its 24-bit significand is used
#: up), while a float64 value of that size still has 29 fraction bits.
INTEGER_SPAN = float(2 ** 24)


def precision_of(dtype: np.dtype | type) -> Precision:
    """Return the row for a floating dtype (complex -> its real part; others -> float64).

    >>> precision_of(np.float32).name
    'float32'
    """
    resolved = np.dtype(dtype)
    if resolved.kind == "c":
        resolved = np.empty(0, resolved).real.dtype
    return PRECISIONS.get(resolved.name, PRECISIONS["float64"])


def coarser(*rows: Precision) -> Precision:
    """The least precise of the given rows."""
    return max(rows, key=lambda row: row.eps)


def observed_precision(values: np.ndarray, declared: np.dtype) -> Precision:
    """Precision actually carried by ``values`` (an output), which may be coarser than its dtype.

    A float64 array whose informative values are all exactly representable in float32
    was computed in float32 (a genuine float64 value is float32-representable with
    probability 2**-29); differencing it with a float64 step would drown in rounding.
    Small integers are representable in every format and prove nothing; from
    :data:`INTEGER_SPAN` on, float32 holds integers only, so integers that large are
    informative (a float32 loss of 1e10 has no fraction bits, a float64 one has).

    >>> observed_precision(np.float32([0.1, 0.7]).astype(np.float64), np.dtype(np.float64)).name
    'float32'
    """
    row = precision_of(declared)
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    informative = finite[(finite != np.round(finite)) | (np.abs(finite) >= INTEGER_SPAN)]
    if informative.size == 0:
        return row
    for name in ("float16", "float32"):
        candidate = PRECISIONS[name]
        if candidate.eps <= row.eps:
            continue
        with np.errstate(over="ignore"):
            exact = np.array_equal(informative.astype(name).astype(np.float64), informative)
        if exact:
            return candidate
    return row


#: Non-smooth points (``gradcheck.engine.kinks``). An entry whose claimed value lies
#: outside its one-sided derivatives is re-checked at points this many check steps away
#: along its own axis (both sides): far enough that the probe there, one step wide, stays
#: on one side of the kink; near enough to be "the same place" (capped by MAX_RELATIVE_STEP).
NEARBY_STEPS = 64.0
#: At most this many such entries per check are re-checked nearby (each costs two analytic
#: gradients and 4–8 evaluations); the rest keep their verdict (wrong).
MAX_NEARBY_ENTRIES = 16
#: Groups of tied kink entries probed together per tensor (one direction each, 2–8
#: evaluations): beyond this the remaining groups are left to the per-entry verdict.
MAX_JOINT_GROUPS = 64
#: Fast mode judges a sample of entries: at most this many unchecked entries per tensor
#: that tie (exactly equal values) with a kink found are judged too, to complete its group.
MAX_TIE_PARTNERS = 64
#: ... the nearest (by flat index) this many per kink found: a 2×2 pooling window's other
#: three entries (a tie set sits close together in the layouts that make ties).
PARTNERS_PER_KINK = 3
#: Direction tests spent per tensor narrowing a jointly invalid group down by halves.
MAX_JOINT_TESTS = 32
