"""Name the likely bug behind a gradient mismatch, one plain line per finding.

The checker core hands over a :class:`~gradcheck.diagnosis.evidence.RunEvidence` (analytic and
numeric values of every checked tensor, which entries were judged wrong, and facts about
the run); :func:`diagnose` holds each wrong tensor against a table of bug classes and
returns the findings that fit, for example ``"W: sign flipped (analytic = -1.00 ×
numeric)"``.

Every detector is one row of a table, with a stable ``code``; :func:`diagnose` returns
:class:`~gradcheck.diagnosis.evidence.Finding` objects (strings carrying that ``code``), so
tools and tests match codes, never wording. A detector only speaks when the evidence fits its
pattern well (a least-squares fit with a small residual, on enough known entries, or a
location pattern that chance alone would rarely produce); when nothing fits, the
diagnosis stays quiet rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck.diagnosis.evidence import Finding, RunEvidence, TensorEvidence

__all__ = ["RUN_DETECTORS", "TENSOR_DETECTORS", "Finding", "diagnose"]

MIN_ENTRIES = 3
"""Never fit a value pattern (factor, transpose, ...) to fewer known entries."""
FIT_RTOL = 0.02
"""A fitted pattern must explain the analytic values to this relative L2 residual."""
EXACT_FIT = 1e-6
"""On fewer than ``MIN_ENTRIES`` entries, only a named factor fitting this well is named."""
SIGNIFICANT = 0.05
"""Entries with ``|numeric| >= SIGNIFICANT * max|numeric|`` carry the factor fit."""
FACTOR_RTOL = 0.02
"""A fitted factor is named (-1, the batch size, 2, 1/2) when within this relative distance."""
CHANCE = 0.01
"""A location pattern is claimed only if random wrong entries would show it this rarely."""
FLOAT32_RELATIVE = (2.0**-31, 2.0**-21)
"""Relative errors in this band (about 5e-10 to 5e-7) are float32's size: one or a few
roundings to float32 (unit roundoff 2⁻²⁴ ≈ 6e-8)."""
UNREAD = 1e-9
"""A numeric gradient below this fraction of the analytic one everywhere is zero."""
NEARBY_RELATIVE = (1e-6, 0.05)
"""A small relative error in every entry, above float32's size: a nearby function."""
SMOOTH = 0.15
"""A residual sorted by the input is smooth when its median second difference is below
this fraction of its range (independent noise gives about 1)."""
SHARE_RTOL = 1e-3
"""An analytic entry equals one output's share (from the contribution probe) to this
fraction of the entry's scale; a central difference with the table's step is ~1e-10
off in float64 and ~1e-5 in float32, so a wrong value matches by chance rarely."""
MAX_PROBED = 48
"""At most this many entries per tensor are handed to the contribution probe (two calls
of the user's code each)."""


# --------------------------------------------------------------------------------------
# One tensor's evidence, prepared once for every detector


@dataclass(frozen=True)
class _Tensor:
    """Evidence of one tensor as float64 arrays, with the masks the detectors use."""

    name: str
    role: str
    layout: str
    analytic: np.ndarray
    numeric: np.ndarray  # NaN where not computed
    known: np.ndarray  # numeric computed and the function differentiable there
    wrong: np.ndarray
    kink: np.ndarray  # not differentiable there (one-sided derivatives disagree)
    scale: float  # max |numeric| over known entries (0.0 when none)
    value: np.ndarray | None = None  # the tensor's own values at the point, if known

    @classmethod
    def of(cls, ev: TensorEvidence) -> _Tensor:
        analytic = np.asarray(ev.analytic, dtype=np.float64)
        numeric = np.asarray(ev.numeric, dtype=np.float64)
        kink = np.asarray(ev.nondifferentiable, dtype=bool)
        known = np.isfinite(numeric) & ~kink & np.isfinite(analytic)
        scale = float(np.max(np.abs(numeric[known]))) if known.any() else 0.0
        value = None
        if ev.value is not None and np.shape(ev.value) == analytic.shape:
            value = np.asarray(ev.value, dtype=np.float64)
        return cls(ev.name, ev.role, ev.layout, analytic, numeric, known,
                   np.asarray(ev.wrong, dtype=bool), kink, scale, value)


def _residual(analytic: np.ndarray, model: np.ndarray) -> float:
    """Relative L2 distance of ``analytic`` from ``model`` (inf when ``model`` is zero)."""
    unit = float(np.max(np.abs(model), initial=0.0))
    if unit == 0.0 or not np.isfinite(unit):
        return np.inf
    # in units of the largest entry: squares of 1e-200 or 1e200 neither vanish nor overflow
    return float(np.linalg.norm((analytic - model) / unit) / np.linalg.norm(model / unit))


def _fit_factor(t: _Tensor, batch_size: int | None = None) -> float | None:
    """The factor ``c`` with ``analytic ≈ c · numeric``, or None when no factor fits.

    ``c`` is the least-squares fit on the entries whose numeric value is not tiny; the fit
    counts only if it also explains every known entry to ``FIT_RTOL``. It needs at least
    ``MIN_ENTRIES`` known entries, except for a named factor (±1, 2, ½, the batch size or
    its inverse) that explains every entry to ``EXACT_FIT``: a bias of two entries that
    are both exactly doubled is no coincidence.
    """
    a, n = t.analytic[t.known], t.numeric[t.known]
    big = np.abs(n) >= SIGNIFICANT * t.scale
    if t.scale == 0.0 or a.size == 0:
        return None
    # in units of the scale: squares of tiny values (1e-200) must not underflow to 0/0
    a_big, n_big = a[big] / t.scale, n[big] / t.scale
    c = float(np.dot(a_big, n_big) / np.dot(n_big, n_big))
    residual = _residual(a, c * n)
    if c == 0.0 or residual > FIT_RTOL:
        return None
    if a.size < MIN_ENTRIES:
        named = _close(abs(c), 1.0) or bool(_factor_meaning(abs(c), batch_size)[1])
        if not (named and residual <= EXACT_FIT):
            return None
    return c


def _fits_transform(t: _Tensor, transform: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Whether ``analytic ≈ transform(numeric)`` on enough entries known on both sides."""
    moved = transform(np.where(t.known, t.numeric, np.nan))
    both = t.known & np.isfinite(moved)
    if t.scale == 0.0 or np.count_nonzero(both) < MIN_ENTRIES:
        return False
    return _residual(t.analytic[both], moved[both]) <= FIT_RTOL


def _close(x: float, target: float) -> bool:
    return abs(x - target) <= FACTOR_RTOL * abs(target)


def _entries(mask: np.ndarray, shown: int = 3) -> str:
    """``"14 entries, e.g. [0, 0, 2, 4], [0, 1, 4, 2]"``: how many, and the first few."""
    where = np.argwhere(mask)
    first = ", ".join(str([int(i) for i in idx]) for idx in where[:shown])
    more = ", ..." if len(where) > shown else ""
    noun = "entry" if len(where) == 1 else "entries"
    return f"{len(where)} {noun}, at {first}{more}"


def _fmt(x: float) -> str:
    """``32.0``, ``0.5``, ``0.0312``: three significant digits, always with a point."""
    text = f"{x:.3g}"
    return text if any(ch in text for ch in ".en") else text + ".0"


# --------------------------------------------------------------------------------------
# Value detectors: what the wrong values are (at most one per tensor)


def _all_zero(t: _Tensor, run: RunEvidence) -> str | None:
    if t.scale == 0.0 or np.any(t.analytic != 0.0):
        return None
    return f"{t.name}: gradient is all zeros"


def _sign_flip(t: _Tensor, run: RunEvidence) -> str | None:
    c = _fit_factor(t, run.batch_size)
    if c is None or not _close(c, -1.0):
        return None
    return f"{t.name}: sign flipped (analytic = {c:.2f} × numeric)"


def _dims(tensors: Sequence[_Tensor], batch_size: int | None) -> list[tuple[int, str]]:
    """Axis sizes ≥ 3 of the checked tensors, first occurrence each: ``(16, "axis 1 of x")``.

    Sizes equal to the batch size are left out (the batch size is their reading).
    """
    seen: dict[int, str] = {}
    for t in tensors:
        for axis, k in enumerate(t.analytic.shape):
            if k < 3 or k in seen or k == batch_size:
                continue
            seen[k] = f"axis {axis} of {t.name}"
    return sorted(seen.items())


def _readings(factor: float, batch_size: int | None,
              dims: Sequence[tuple[int, str]] = ()) -> list[tuple[str, str]]:
    """Every named quantity a positive factor equals, each with its usual cause.

    The batch size (and its inverse), 2 and ½, and the size ``k`` of an axis of a
    checked tensor or its square root ``√k`` (``k ≥ 5``, so that 2 = √4 is not offered as
    a reading), and their inverses. All readings that fit are returned: a factor 4 with a
    batch of 4 and a feature axis of 16 is "the batch size, or √16".
    """
    meanings: list[tuple[float, str, str]] = []
    if batch_size == 2:  # 2 is both the batch size and a doubled term: say so
        meanings += [(2.0, "the batch size or a doubled term",
                      "a missing 1/N, a term counted twice, or a missing ½?"),
                     (0.5, "1/batch size or a halved term",
                      "an extra 1/N, or the derivative of x² written as x?")]
    elif batch_size is not None and batch_size > 1:
        meanings += [(float(batch_size), "the batch size", "a missing 1/N?"),
                     (1.0 / batch_size, "1/batch size", "an extra 1/N?")]
    if batch_size != 2:
        meanings += [(2.0, "", "e.g. a term counted twice, or a missing ½"),
                     (0.5, "", "e.g. derivative of x² written as x")]
    for k, where in dims:
        meanings += [(float(k), f"{k}, the size of {where}",
                      f"a missing 1/{k} (a mean over that axis)?"),
                     (1.0 / k, f"1/{k}, one over the size of {where}",
                      f"an extra 1/{k}?")]
        if k >= 5:
            root = f"√{k}"
            meanings += [(float(np.sqrt(k)), f"{root} ({where} has size {k})",
                          f"a missing 1/{root} scale (attention's 1/√d)?"),
                         (1.0 / float(np.sqrt(k)), f"1/{root} ({where} has size {k})",
                          f"an extra 1/{root} scale?")]
    return [(equals, cause) for value, equals, cause in meanings if _close(factor, value)]


def _factor_meaning(factor: float, batch_size: int | None,
                    dims: Sequence[tuple[int, str]] = ()) -> tuple[str, str]:
    """What a positive factor equals and what usually causes it (``("", "")`` if unknown).

    Several readings are joined: ``(" = the batch size, or √16 (...)", "a missing 1/N,
    or a missing 1/√16 scale?")``.
    """
    found = _readings(factor, batch_size, dims)
    if not found:
        return "", ""
    named = [equals for equals, _ in found if equals]
    causes = [cause for _, cause in found if cause]
    equals = f" = {', or '.join(named)}" if named else ""
    if len(causes) > 1:
        cause = ", or ".join(c.rstrip("?") for c in causes) + "?"
    else:
        cause = causes[0] if causes else ""
    return equals, cause


def _constant_factor(t: _Tensor, run: RunEvidence) -> str | None:
    c = _fit_factor(t, run.batch_size)
    if c is None or _close(abs(c), 1.0):
        return None
    sign = "sign flipped and " if c < 0 else ""
    tensors = [_Tensor.of(ev) for ev in run.tensors] or [t]
    equals, cause = _factor_meaning(abs(c), run.batch_size, _dims(tensors, run.batch_size))
    because = f"; {cause}" if cause else ""
    return (f"{t.name}: {sign}off by a constant factor {_fmt(abs(c))}{equals} "
            f"(analytic = {_fmt(c)} × numeric{because})")


def _transposed(t: _Tensor, run: RunEvidence) -> str | None:
    rows_cols_equal = t.analytic.ndim == 2 and t.analytic.shape[0] == t.analytic.shape[1]
    if not rows_cols_equal or t.analytic.shape[0] < 2 or not _fits_transform(t, np.transpose):
        return None
    return f"{t.name}: transposed (analytic ≈ numericᵀ)"


def _kernel_flipped(t: _Tensor, run: RunEvidence) -> str | None:
    if t.analytic.ndim != 4 or t.analytic.shape[-1] * t.analytic.shape[-2] < 2:
        return None
    if not _fits_transform(t, lambda n: n[..., ::-1, ::-1]):
        return None
    return (f"{t.name}: kernel rotated by 180° (analytic ≈ numeric flipped in both spatial "
            f"axes: convolution instead of correlation?)")


def _fixed_matrix(t: _Tensor, run: RunEvidence) -> str | None:
    """``dx = g·W`` instead of ``g·Wᵀ`` (square ``W``).

    Then ``analytic = numeric · M`` for every row, with the one matrix
    ``M = W⁻ᵀ·W`` (determinant 1); recoverable by least squares from the completely known
    rows once there are clearly more of them than columns.
    """
    if t.role != "input" or t.analytic.ndim != 2:
        return None
    full_rows = t.known.all(axis=1)  # fast mode may know only some rows completely
    a, n = t.analytic[full_rows], t.numeric[full_rows]
    cols = t.analytic.shape[1]
    if cols < 2 or a.shape[0] < 2 * cols:
        return None
    singular = np.linalg.svd(n, compute_uv=False)
    if singular[-1] <= 1e-6 * singular[0]:
        return None
    m = np.linalg.lstsq(n, a, rcond=None)[0]
    if _residual(a, n @ m) > FIT_RTOL:
        return None
    scalar = np.trace(m) / cols * np.eye(cols)
    if _residual(m, scalar) <= 0.05 or not _close(float(np.linalg.det(m)), 1.0):
        return None
    return (f"{t.name}: dx = g·W instead of g·Wᵀ? (analytic = numeric · M for one fixed "
            f"matrix M with det M = 1, as W⁻ᵀW has)")


def _misrouted(t: _Tensor, run: RunEvidence) -> str | None:
    """The right values at the wrong positions (e.g. max-pool routing to the wrong element).

    Either the wrong entries' analytic values, sorted, match their numeric values, sorted,
    far better than in place (a permutation; needs every moved entry known), or, at every
    wrong entry, exactly one of analytic and numeric is zero, both ways round (the
    gradient left where it belongs and landed where it does not; works on a sample).
    """
    where = t.wrong & t.known
    if np.count_nonzero(where) < 2 or t.scale == 0.0:
        return None
    a, n = t.analytic[where], t.numeric[where]
    sorted_gap = float(np.max(np.abs(np.sort(a) - np.sort(n))))
    in_place_gap = float(np.max(np.abs(a - n)))
    permuted = sorted_gap <= FIT_RTOL * t.scale and in_place_gap >= max(
        10 * sorted_gap, SIGNIFICANT * t.scale)
    small, large = np.minimum(np.abs(a), np.abs(n)), np.maximum(np.abs(a), np.abs(n))
    one_side_zero = small <= FIT_RTOL * large
    left, landed = np.abs(a) < np.abs(n), np.abs(a) > np.abs(n)
    swapped = bool(np.all(one_side_zero) and left.any() and landed.any()
                   and a.size >= MIN_ENTRIES)
    if not (permuted or swapped):
        return None
    reach = _moved_within(t, where)
    if reach is None:
        return (f"{t.name}: the right values at the wrong positions ({_entries(where)}; "
                f"gradient routed to the wrong element?)")
    return (f"{t.name}: the right values at the wrong positions, each moved by at most "
            f"{reach} position{'s' if reach > 1 else ''} within a window ({_entries(where)}): "
            f"argmax index arithmetic (row/column from the flat index)?")


def _moved_within(t: _Tensor, where: np.ndarray) -> int | None:
    """How far (in spatial positions) each value that left an entry landed, if it is near.

    Every entry whose analytic lost its value (``|a| < |n|``) is paired with an entry of
    the same batch and channel whose analytic gained that value; the largest distance is
    returned when all pair up within 3 positions (None otherwise, or without space axes).
    """
    axes = _spatial_axes(t)
    if not axes:
        return None
    other = [ax for ax in range(t.analytic.ndim) if ax not in axes]
    idx = np.argwhere(where)
    a, n = t.analytic[where], t.numeric[where]
    left, landed = np.abs(a) < np.abs(n), np.abs(a) > np.abs(n)
    if np.count_nonzero(left) > 512:  # pairing is quadratic: say nothing rather than stall
        return None
    reach = 0
    for i in np.flatnonzero(left):
        near = [j for j in np.flatnonzero(landed)
                if all(idx[j][ax] == idx[i][ax] for ax in other)
                and abs(a[j] - n[i]) <= FIT_RTOL * abs(n[i])]
        if not near:
            return None
        dist = min(max(abs(int(idx[j][ax]) - int(idx[i][ax])) for ax in axes) for j in near)
        reach = max(reach, dist)
    return reach if 0 < reach <= 3 else None


def _unread(t: _Tensor, run: RunEvidence) -> str | None:
    """Numeric zero (to rounding) in every entry differenced, analytic not: never read."""
    checked = np.isfinite(t.numeric) & np.isfinite(t.analytic)
    if t.role != "param" or not checked.any():
        return None
    claimed = float(np.max(np.abs(t.analytic[checked])))
    if claimed == 0.0 or float(np.max(np.abs(t.numeric[checked]))) > UNREAD * claimed:
        return None
    count = int(np.count_nonzero(checked))
    return (f"{t.name}: the numeric gradient is 0 (to rounding) in all {count} entries "
            f"differenced, the analytic is not: forward never reads {t.name} (it reads a "
            f"copy made earlier, or another array than params[{t.name!r}]?), or {t.name} "
            f"has no effect (a bias before a normalization) and its gradient must be 0")


def _relative_errors(t: _Tensor) -> np.ndarray:
    """Signed ``(analytic − numeric)/numeric`` on the known entries that are not tiny."""
    if t.scale == 0.0:
        return np.zeros(0)
    big = t.known & (np.abs(np.nan_to_num(t.numeric)) >= SIGNIFICANT * t.scale)
    return (t.analytic[big] - t.numeric[big]) / t.numeric[big]


def _proportional_to_value(t: _Tensor, run: RunEvidence) -> str | None:
    """``analytic − numeric = c · θ``: a weight-decay (L2) term with the wrong factor."""
    if t.role != "param" or t.value is None or t.scale == 0.0:
        return None
    r, v, n = (arr[t.known] for arr in (t.analytic - t.numeric, t.value, t.numeric))
    if r.size < MIN_ENTRIES or not np.any(v):
        return None
    unit = float(np.max(np.abs(v)))
    spread = np.std(v / unit) >= 0.1 * np.sqrt(np.mean((v / unit) ** 2))
    c = float(np.dot(r / unit, v / unit) / np.dot(v / unit, v / unit))
    if not spread or c == 0.0 or _residual(r, c * v) > 5 * FIT_RTOL:
        return None
    # the numeric itself proportional to θ makes every factor bug look like this
    cn = float(np.dot(n, v) / np.dot(v, v))
    if _residual(n, cn * v) <= 5 * FIT_RTOL:
        return None
    return (f"{t.name}: analytic − numeric = {_fmt(c)}·{t.name} in {r.size} entries (an "
            f"error proportional to {t.name} itself: a weight-decay term with the wrong "
            f"factor — counted twice, 2λ written as λ, or a decay added to grads whose "
            f"penalty the objective does not include?)")


def _float32_rounding(t: _Tensor, run: RunEvidence) -> str | None:
    """A relative error of float32's size in float64 code: a value rounded to float32."""
    if run.precision != "float64":
        return None
    e = _relative_errors(t)
    if e.size < MIN_ENTRIES:
        return None
    size = np.abs(e)
    low, high = FLOAT32_RELATIVE
    median = float(np.median(size))
    if not (low <= median <= high and float(np.max(size)) <= 4 * high):
        return None
    uniform = float(np.std(e)) <= 0.1 * abs(float(np.mean(e)))
    what = (f"analytic = (1 {'+' if np.mean(e) > 0 else '−'} {abs(float(np.mean(e))):.2g}) × "
            f"numeric in every entry: a constant rounded to float32?" if uniform else
            "an intermediate rounded to float32?")
    return (f"{t.name}: relative error {median:.2g} (median over {e.size} entries), the size "
            f"of float32 rounding (2⁻²⁴ ≈ 6e-8) in float64 code — {what}")


def _smooth_in_value(t: _Tensor, e_mask: np.ndarray, e: np.ndarray) -> bool:
    """Is the relative error a smooth function of the tensor's own values (elementwise)?"""
    if t.value is None or e.size < 8:
        return False
    x = t.value[e_mask]
    order = np.argsort(x, kind="stable")
    xs, es = x[order], e[order]
    if np.ptp(xs) == 0 or np.ptp(es) == 0:
        return False
    second = np.abs(np.diff(es, 2))
    return float(np.median(second)) <= SMOOTH * float(np.ptp(es))


def _nearby_function(t: _Tensor, run: RunEvidence) -> str | None:
    """A small relative error in (nearly) every entry: the derivative of another function."""
    big = t.known & (np.abs(np.nan_to_num(t.numeric)) >= SIGNIFICANT * t.scale)
    e = _relative_errors(t)
    if e.size < MIN_ENTRIES:
        return None
    size = np.abs(e)
    low, high = NEARBY_RELATIVE
    median = float(np.median(size))
    wrong_share = np.count_nonzero(t.wrong & big) / e.size
    if not (low <= median <= high and float(np.quantile(size, 0.9)) <= 2 * high
            and wrong_share >= 0.9):
        return None
    if float(np.std(e)) <= 0.02 * abs(float(np.mean(e))):
        c = 1.0 + float(np.mean(e))  # one factor close to 1 explains every entry
        return Finding(f"{t.name}: analytic = {c:.7g} × numeric in every entry (relative "
                       f"error {abs(c - 1):.2g}): a constant slightly off (a truncated or "
                       f"rounded coefficient, such as π written 3.1416)?",
                       code="near-one-factor")
    if not _smooth_in_value(t, big, e):
        return None  # scattered small errors: no one function explains them
    return (f"{t.name}: small relative error in every entry (median {median:.2g}, "
            f"max {float(np.max(size)):.2g}), a smooth function of {t.name}: the "
            f"derivative of a nearby but different function (an approximation, such "
            f"as tanh-GELU for the exact erf GELU?)")


def _per_row_factors(t: _Tensor, rows: np.ndarray) -> np.ndarray:
    """The factor ``c`` with ``analytic[r] ≈ c · numeric[r]`` per row (NaN where none fits)."""
    out = np.full(rows.size, np.nan)
    a2, n2 = (arr.reshape(arr.shape[0], -1) for arr in (t.analytic, t.numeric))
    k2 = t.known.reshape(t.known.shape[0], -1)
    for i, r in enumerate(rows):
        a, n = a2[r][k2[r]], n2[r][k2[r]]
        if n.size == 0 or not np.any(n):
            continue
        c = float(np.dot(a, n) / np.dot(n, n))
        if _residual(a, c * n) <= FIT_RTOL:
            out[i] = c
    return out


def _repeated_rows(t: _Tensor, run: RunEvidence) -> str | None:
    """Errors only on rows indexed more than once: ``dW[ids] += g`` drops repeated ids.

    With the integer arrays of the run (``run.indices``), the wrong rows must all be rows
    indexed at least twice, more so than chance would make them; without them, every wrong
    row must be off by an exact ``1/k`` (k ≥ 2: k equal updates, one kept) while other
    rows are right.
    """
    if t.analytic.ndim < 1 or t.analytic.shape[0] < 2:
        return None
    rows_wrong = t.wrong.reshape(t.wrong.shape[0], -1).any(axis=1)
    judged = (t.known | t.wrong).reshape(t.wrong.shape[0], -1).any(axis=1)
    rows_right = judged & ~rows_wrong
    if not rows_wrong.any() or not rows_right.any():
        return None
    wrong_rows = np.flatnonzero(rows_wrong)
    factors = _per_row_factors(t, wrong_rows)
    fix = f"use np.add.at(d{t.name}, ids, g), which adds every occurrence"
    shown = ", ".join(map(str, wrong_rows[:6])) + (", ..." if wrong_rows.size > 6 else "")
    count_rows = t.analytic.shape[0]
    for ids in run.indices:
        flat = np.asarray(ids).ravel()
        if flat.size == 0 or flat.min() < 0 or flat.max() >= count_rows:
            continue
        counts = np.bincount(flat.astype(np.int64), minlength=count_rows)
        repeated = counts >= 2
        if np.any(rows_wrong & ~repeated):
            continue
        region = np.broadcast_to(repeated.reshape((-1,) + (1,) * (t.analytic.ndim - 1)),
                                 t.analytic.shape)
        exact = np.isfinite(factors) & np.isclose(factors * counts[wrong_rows], 1.0,
                                                  rtol=FACTOR_RTOL)
        if not (_unlikely_by_chance(t.wrong, region, t.known | t.wrong) or exact.all()):
            continue
        how = (" (each exactly 1/count: one update kept per repeated index)"
               if exact.all() else "")
        return (f"{t.name}: errors only on the {wrong_rows.size} rows indexed more than once "
                f"(rows {shown}){how}: a scatter with += on repeated indices "
                f"(d{t.name}[ids] += g) keeps one update per index; {fix}")
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(factors != 0, 1.0 / factors, np.nan)
    whole = np.isfinite(inverse) & (np.abs(inverse - np.round(inverse)) <= FACTOR_RTOL *
                                    np.abs(inverse)) & (np.round(inverse) >= 2)
    if not whole.all() or rows_right.sum() < 1 or t.known.sum() < 2 * MIN_ENTRIES:
        return None
    ks = sorted({int(k) for k in np.round(inverse)})
    parts = ", ".join(f"1/{k}" for k in ks)
    return (f"{t.name}: errors only on rows {shown}, each off by exactly {parts}, the other "
            f"rows right: rows indexed more than once with a scatter that keeps one update "
            f"(d{t.name}[ids] += g)? {fix}")


def _spatial_axes(t: _Tensor) -> tuple[int, ...]:
    """The spatial axes of an input: H and W (2-d), or one of W, L, T after C (1-d)."""
    two = _axes(t, "HW", {4: (2, 3)})
    if two:
        return two
    if t.layout and len(t.layout) == t.analytic.ndim and "C" in t.layout:
        for letter in "WLT":
            if letter in t.layout:
                return (t.layout.index(letter),)
    return ()


def _lattice(size: int, stride: int, width: int, offset: int) -> np.ndarray:
    """Interior positions with ``(p − offset) mod stride < width``.

    Windows of size ``k`` at stride ``s < k < 2s`` overlap in bands of ``width = k − s``
    positions every ``s`` (``offset = s`` mod ``s`` = 0 when windows start at 0).
    """
    pos = np.arange(size)
    return ((pos - offset) % stride < width) & (pos > 0) & (pos < size - 1)


#: (stride, overlap width, offset) of every window geometry tried, tightest bands first.
_LATTICES = sorted(((s, w, o) for s in (2, 3, 4, 5) for w in range(1, s) for o in range(s)),
                   key=lambda c: (c[1] / c[0], c[0], c[2]))


def _overlapping_windows(t: _Tensor, run: RunEvidence) -> str | None:
    """Wrong entries only where overlapping windows meet (bands every ``s`` rows/columns).

    Pooling or convolution windows of size ``k`` at stride ``s`` with ``s < k < 2s``
    overlap in bands of ``k − s`` rows/columns every ``s``; a backward that assigns
    (``=``) each window's gradient where it must add (``+=``) loses the earlier windows'
    share exactly there. Windows with ``k ≥ 2s`` (3×3 at stride 1) overlap everywhere,
    so there is no band to see: :func:`_one_window_share` (code ``window-overwrite``)
    names that case from the shares of each window, which the contribution probe measures.
    """
    axes = _spatial_axes(t)
    if t.role != "input" or not axes or np.count_nonzero(t.wrong) < 2:
        return None
    judged = t.known | t.wrong
    sizes = [t.analytic.shape[ax] for ax in axes]
    candidates = [c for c in _LATTICES if min(sizes) >= 2 * c[0] + 1]
    for stride, width, offset in candidates:
        region = np.zeros(t.analytic.shape, dtype=bool)
        for ax, size in zip(axes, sizes, strict=True):
            shape = [1] * t.analytic.ndim
            shape[ax] = size
            band = _lattice(size, stride, width, offset).reshape(shape)
            region |= np.broadcast_to(band, t.analytic.shape)
        if np.any(t.wrong & ~region) or np.count_nonzero(t.known & ~region) < MIN_ENTRIES:
            continue
        # many geometries were tried: share the chance among them
        if _chance(t.wrong, region, judged) <= CHANCE / len(candidates):
            a, n = t.analytic[t.wrong], t.numeric[t.wrong]
            zero = np.isfinite(n) & (np.abs(a) <= FIT_RTOL * np.abs(n))
            what = ("analytic 0 where the numeric is not" if zero.all() and zero.any() else
                    "errors")
            lines = "rows/columns" if len(axes) == 2 else "positions"
            residues = (f"≡ {offset} (mod {stride})" if width == 1 else
                        f"≡ {offset}..{offset + width - 1} (mod {stride})")
            return (f"{t.name}: {what} only at {lines} {residues}, where windows of stride "
                    f"{stride} and size {stride + width} overlap ({_entries(t.wrong)}): "
                    f"gradients of overlapping windows must add (+=), the backward "
                    f"overwrites them (=)?")
    a, n = t.analytic[t.wrong], t.numeric[t.wrong]
    zero = np.isfinite(n) & (np.abs(a) <= FIT_RTOL * np.abs(n)) & (n != 0)
    right_nonzero = t.known & ~t.wrong & (t.analytic != 0)
    if a.size >= MIN_ENTRIES and zero.all() and right_nonzero.any():
        return (f"{t.name}: analytic 0 where the numeric is not ({_entries(t.wrong)}; the "
                f"others right): contributions dropped — where windows overlap, gradients "
                f"must add (+=), not overwrite (=)?")
    return None


def _probed(t: _Tensor, mask: np.ndarray) -> np.ndarray:
    """Up to ``MAX_PROBED`` flat indices of ``mask``, spread evenly (deterministic)."""
    flat = np.flatnonzero(mask)
    if flat.size <= MAX_PROBED:
        return flat
    return flat[np.linspace(0, flat.size - 1, MAX_PROBED).round().astype(np.int64)]


def _window_groupings(share: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Ways to group one output's shares ``(m,) + out.shape`` into windows ``(m, groups)``.

    Every output entry on its own; and for outputs of 3 or more axes, summed over axis 1
    (the channels of ``(N, C, ...)``: a convolution window feeds every output channel).
    """
    m = share.shape[0]
    ways = [("window (output entry)", share.reshape(m, -1))]
    if share.ndim >= 4:
        ways.append(("window (output position, all channels)",
                     share.sum(axis=2).reshape(m, -1)))
    return ways


def _one_window_share(t: _Tensor, run: RunEvidence) -> str | None:
    """Analytic = the share of ONE window where several windows' shares add: ``=`` for ``+=``.

    Asks the contribution probe for the share of every output entry in the numeric
    gradient of (up to ``MAX_PROBED``) wrong entries. Every wrong entry must equal one
    window's share (a window that did not pick the entry has share 0), the probe must
    reproduce the numeric (sum of shares), and at least ``MIN_ENTRIES`` wrong entries must
    be a *nonzero* single share where two or more windows contribute: what a backward
    that assigns each window's gradient (``dx[win] = ...``) leaves, whether the windows
    overlap in bands or everywhere (3×3 at stride 1), for pooling and convolution alike.
    Fast mode differences few entries, so entries it did not difference (nonzero
    analytic) are probed too; there the shares' sum is the numeric, and only entries
    off by more than ``FIT_RTOL`` join the evidence (the verdict is the engine's).
    """
    if run.contributions is None or t.role != "input" or len(run.outputs) != 1:
        return None
    known = _probed(t, t.wrong & t.known)
    # fast mode differenced few entries: probe some it did not (the shares' sum is their
    # numeric); only those clearly wrong join, the engine's verdict is not changed
    unknown = ~np.isfinite(t.numeric) & ~t.kink & (t.analytic != 0)
    extra = _probed(t, unknown)[:max(MAX_PROBED - known.size, 0)]
    entries = np.concatenate([known, extra])
    if entries.size < MIN_ENTRIES:
        return None
    got = run.contributions(t.name, entries)
    if got is None or len(got) != 1 or got[0].shape[0] < MIN_ENTRIES:
        return None
    rows = got[0].shape[0]  # a large output: the probe answered for fewer
    entries, from_engine = entries[:rows], np.arange(rows) < known.size
    a = t.analytic.reshape(-1)[entries]
    summed = got[0].reshape(rows, -1).sum(axis=1)
    n = np.where(from_engine, t.numeric.reshape(-1)[entries], summed)
    for unit, all_shares in _window_groupings(got[0]):
        scale = np.maximum(np.abs(n), np.max(np.abs(all_shares), axis=1, initial=0.0))
        if np.any(scale == 0) or np.any(np.abs(summed - n) > SHARE_RTOL * scale):
            return None  # the probe does not reproduce the numeric: no claim
        keep = from_engine | (np.abs(a - n) > FIT_RTOL * scale)  # probed and clearly wrong
        a_k, shares, tol = a[keep], all_shares[keep], SHARE_RTOL * scale[keep]
        distance = np.min(np.abs(a_k[:, None] - shares), axis=1)
        if np.any(distance > tol):
            continue
        several = np.count_nonzero(np.abs(shares) > tol[:, None], axis=1) >= 2
        telling = several & (np.abs(a_k) > tol)
        if np.count_nonzero(telling) < MIN_ENTRIES:
            continue
        return (f"{t.name}: the analytic gradient is the share of one {unit} only, where "
                f"the numeric adds the shares of several ({_entries(t.wrong)}; checked in "
                f"{int(np.count_nonzero(keep))}): the backward assigns each window's "
                f"gradient (dx[...] = ...) where overlapping windows must add (dx[...] += "
                f"...), or drops the other windows' terms")
    return None


def _one_sample_share(t: _Tensor, run: RunEvidence) -> str | None:
    """A parameter's analytic gradient = ONE sample's share: the batch sum is missing.

    ``db = dout[0]`` (or ``dout[-1]``, the last loop iteration's value kept) where
    ``dout.sum(axis=0)`` is meant. The contribution probe splits the numeric gradient of
    (up to ``MAX_PROBED``) wrong entries by output entry; summed per sample (the output's
    leading axis is the batch), every probed entry's analytic must equal the share of
    the *same* sample to ``SHARE_RTOL``, the probe must reproduce the numeric, and the
    other samples' shares must matter (the numeric differs from that share by more than
    ``FIT_RTOL``). Fewer than ``MIN_ENTRIES`` entries suffice when they are the whole
    tensor (a bias of two).
    """
    n_batch = run.batch_size or 0
    if run.contributions is None or t.role != "param" or len(run.outputs) != 1 or n_batch < 2:
        return None
    entries = _probed(t, t.wrong & t.known)
    if entries.size < min(MIN_ENTRIES, t.analytic.size):
        return None
    got = run.contributions(t.name, entries)
    if got is None or len(got) != 1 or got[0].ndim < 2 or got[0].shape[1] != n_batch:
        return None
    rows = got[0].shape[0]
    if rows < min(MIN_ENTRIES, t.analytic.size):
        return None
    entries = entries[:rows]
    per_sample = got[0].reshape(rows, n_batch, -1).sum(axis=2)
    a, n = t.analytic.reshape(-1)[entries], t.numeric.reshape(-1)[entries]
    scale = np.maximum(np.abs(n), np.max(np.abs(per_sample), axis=1))
    if np.any(scale == 0) or np.any(np.abs(per_sample.sum(axis=1) - n) > SHARE_RTOL * scale):
        return None  # the probe does not reproduce the numeric: no claim
    for k in range(n_batch):
        share = per_sample[:, k]
        if (np.all(np.abs(a - share) <= SHARE_RTOL * scale)
                and np.any(np.abs(n - share) > FIT_RTOL * scale)):
            which = "first" if k == 0 else "last" if k == n_batch - 1 else f"index {k}"
            return (f"{t.name}: the analytic gradient is the share of one sample only (the "
                    f"{which} of {n_batch}), where the numeric sums the whole batch: the sum "
                    f"over the batch axis is missing (g[{k if k < n_batch - 1 else -1}] "
                    f"instead of g.sum(axis=0)?)")
    return None


# --------------------------------------------------------------------------------------
# Location detectors: where the wrong entries are


def _axes(t: _Tensor, letters: str, fallback: dict[int, tuple[int, ...]]) -> tuple[int, ...]:
    """Axis indices of ``letters`` in the tensor's layout, or the shape-based fallback."""
    if t.layout and len(t.layout) == t.analytic.ndim:
        if all(letter in t.layout for letter in letters):
            return tuple(t.layout.index(letter) for letter in letters)
        return ()
    return fallback.get(t.analytic.ndim, ())


def _unlikely_by_chance(wrong: np.ndarray, region: np.ndarray, judged: np.ndarray) -> bool:
    """Would wrong entries drawn at random among the judged ones all fall in ``region`` rarely?

    The chance is hypergeometric: with ``J`` judged entries, ``R`` of them in the region and
    ``m`` wrong, it is ``C(R, m) / C(J, m) = Π_{i<m} (R − i)/(J − i)``.
    """
    return _chance(wrong, region, judged) <= CHANCE


def _chance(wrong: np.ndarray, region: np.ndarray, judged: np.ndarray) -> float:
    """The hypergeometric chance of :func:`_unlikely_by_chance` (1.0 when it says nothing)."""
    m = int(np.count_nonzero(wrong))
    in_region, total = int(np.count_nonzero(judged & region)), int(np.count_nonzero(judged))
    if m == 0 or in_region >= total:
        return 1.0
    i = np.arange(m)
    return float(np.prod(np.clip((in_region - i) / (total - i), 0.0, None)))


def _borders(t: _Tensor, run: RunEvidence) -> str | None:
    """Errors only in the outer rows/columns of H×W (or the ends of a 1-d W, L or T axis)."""
    axes = _spatial_axes(t)
    if not axes or t.role != "input":
        return None
    sizes = [t.analytic.shape[ax] for ax in axes]
    for band in (1, 2):
        if min(sizes) <= 2 * band:
            break
        border = np.zeros(t.analytic.shape, dtype=bool)
        for ax, size in zip(axes, sizes, strict=True):
            pos = np.arange(size)
            shape = [1] * t.analytic.ndim
            shape[ax] = size
            edge = ((pos < band) | (pos >= size - band)).reshape(shape)
            border |= np.broadcast_to(edge, t.analytic.shape)
        if np.any(t.wrong & ~border) or np.count_nonzero(t.known & ~border) < MIN_ENTRIES:
            continue
        if _unlikely_by_chance(t.wrong, border, t.known | t.wrong):
            if len(axes) == 2:
                where = ("the outermost row/column" if band == 1 else
                         f"the outer {band} rows/columns")
                return (f"{t.name}: errors only at the borders of the H×W grid, in {where} "
                        f"(padding?)")
            axis = t.layout[axes[0]]
            where = "the first and last position" if band == 1 else f"the outer {band} positions"
            return (f"{t.name}: errors only at the borders of the {axis} axis, in {where} "
                    f"(padding?)")
    return None


def _time_profile(t: _Tensor, run: RunEvidence) -> str | None:
    """Errors confined to the first (or last) time steps, or growing monotonically in time.

    The known entries of the other steps must be right, and the wrong entries must be more
    concentrated than chance would make them (so a sample of entries, as fast mode gives,
    is enough).
    """
    axes = _axes(t, "T", {3: (1,)})
    if not axes or t.role != "input" or t.analytic.shape[axes[0]] < 3:
        return None
    steps = t.analytic.shape[axes[0]]
    # without a declared layout the axis is a guess from the shape: say which axis it is
    unit = "time steps" if "T" in t.layout else "steps along axis 1 (time, if x is (N, T, D))"
    a, n, known, wrong = (np.moveaxis(arr, axes[0], 0).reshape(steps, -1)
                          for arr in (t.analytic, t.numeric, t.known, t.wrong))
    wrong_steps = np.flatnonzero(wrong.any(axis=1))
    if wrong_steps.size == 0:
        return None
    first, last = int(wrong_steps[0]), int(wrong_steps[-1])
    error = np.array([np.max(np.abs(a[s] - n[s])[known[s]], initial=0.0) for s in range(steps)])
    profile = _StepProfile(t.name, unit, known, wrong, error, first, last)
    return profile.confined() or profile.trend()


@dataclass(frozen=True)
class _StepProfile:
    """Per time step: which entries are known right / wrong, and the largest known error."""

    name: str
    unit: str
    known: np.ndarray  # (steps, entries)
    wrong: np.ndarray
    error: np.ndarray  # (steps,)
    first: int  # the first and last steps with a wrong entry
    last: int

    def confined(self) -> str | None:
        """Errors only in a prefix (nothing judged before the first wrong step: steps fast
        mode did not sample may be anywhere; right entries after the last) or a suffix."""
        known, wrong, steps = self.known, self.wrong, self.known.shape[0]
        judged = known | wrong
        step_of = np.broadcast_to(np.arange(steps)[:, None], wrong.shape)
        first, last = self.first, self.last
        if last < steps - 1 and not judged[:first].any():
            k = last + 1
            if (np.count_nonzero(known[k:]) >= MIN_ENTRIES
                    and _unlikely_by_chance(wrong, step_of < k, judged)):
                grows = k >= 2 and bool(np.all(self.error[:k - 1] >= self.error[1:k]))
                trend = ", growing toward early steps" if grows else ""
                return (f"{self.name}: errors only in the first {k} of {steps} "
                        f"{self.unit}{trend} (truncated BPTT?)")
        if first > 0 and not judged[last + 1:].any():
            if (np.count_nonzero(known[:first]) >= MIN_ENTRIES
                    and _unlikely_by_chance(wrong, step_of >= first, judged)):
                return (f"{self.name}: errors only in the last {steps - first} of {steps} "
                        f"{self.unit}")
        return None

    def trend(self) -> str | None:
        """Errors in every step, growing monotonically toward the early or the late ones."""
        error, steps = self.error, self.error.size
        if not (self.first == 0 and self.last == steps - 1 and steps >= 4
                and np.all(error > 0)):
            return None
        ratio = error[0] / error[-1]
        if np.all(np.diff(error) < 0) and ratio >= 10:
            return (f"{self.name}: error grows toward early {self.unit} ({_fmt(ratio)}× from "
                    f"the last to the first; truncated BPTT or a wrong recurrent term?)")
        if np.all(np.diff(error) > 0) and ratio <= 0.1:
            return (f"{self.name}: error grows toward late {self.unit} ({_fmt(1 / ratio)}× "
                    f"from the first to the last)")
        return None


# --------------------------------------------------------------------------------------
# The tables


@dataclass(frozen=True)
class TensorDetector:
    """One bug class recognizable in a single tensor's evidence.

    ``code`` is the finding's stable name (``Finding.code``; ``also`` lists the sharper
    codes the row may give instead, such as ``"near-one-factor"``); ``kind`` is ``"value"``
    (what the wrong values are; the first matching value row is the only one reported
    per tensor) or ``"where"`` (where the wrong entries lie; every matching row is
    reported).
    """

    bug: str
    kind: str
    find: Callable[[_Tensor, RunEvidence], str | None]
    code: str = ""
    also: tuple[str, ...] = ()  # sharper codes the row may give instead of ``code``


TENSOR_DETECTORS: tuple[TensorDetector, ...] = (
    TensorDetector("never read", "value", _unread, "unread-param"),
    TensorDetector("all zeros", "value", _all_zero, "all-zeros"),
    TensorDetector("sign flipped", "value", _sign_flip, "sign-flip"),
    TensorDetector("constant factor", "value", _constant_factor, "constant-factor"),
    TensorDetector("proportional to the parameter", "value", _proportional_to_value,
                   "param-proportional"),
    TensorDetector("transposed", "value", _transposed, "transposed"),
    TensorDetector("kernel rotated", "value", _kernel_flipped, "kernel-rotated"),
    TensorDetector("instead of g·Wᵀ", "value", _fixed_matrix, "wrong-way-matrix"),
    TensorDetector("rows indexed more than once", "value", _repeated_rows, "repeated-rows"),
    TensorDetector("one window's share", "value", _one_window_share, "window-overwrite"),
    TensorDetector("one sample's share", "value", _one_sample_share, "one-sample"),
    TensorDetector("wrong positions", "value", _misrouted, "wrong-positions"),
    TensorDetector("float32 rounding", "value", _float32_rounding, "float32-rounding"),
    TensorDetector("nearby function", "value", _nearby_function, "nearby-function",
                   also=("near-one-factor",)),
    TensorDetector("overlapping windows", "where", _overlapping_windows, "overlap-overwrite"),
    TensorDetector("borders", "where", _borders, "borders"),
    TensorDetector("time steps", "where", _time_profile, "time-steps"),
)


def _layer_of(name: str) -> str | None:
    """``"1"`` for a model parameter ``"1.W"``; None for an unqualified name."""
    return name.split(".", 1)[0] if "." in name else None


def _layer(run: RunEvidence, index: str | int) -> str:
    """``"layer 2 (Dense)"`` when the class is known, else ``"layer 2"``."""
    cls = run.layer_names.get(str(index))
    return f"layer {index} ({cls})" if cls else f"layer {index}"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _when(flag: str, message: str) -> Callable[[RunEvidence, Sequence[_Tensor]], str | None]:
    """A run detector that states ``message`` when ``run.<flag>`` is set."""
    return lambda run, tensors: message if getattr(run, flag) else None


def _one_tensor(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """One wrong tensor among right ones, unless they are a model's layers (named
    ``"1.W"``: the layer detectors read those); tree paths (``p.b``) beside top-level
    arrays (``x``) are tensors like any other."""
    if run.layer_names or all(_layer_of(t.name) is not None for t in tensors):
        return None
    wrong = [t.name for t in tensors if t.wrong.any()]
    right = [t.name for t in tensors if not t.wrong.any()]
    if len(wrong) != 1 or not right:
        return None
    return f"only {wrong[0]} is wrong; {_join(right)} {'is' if len(right) == 1 else 'are'} right"


def _one_layer(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """Which layer to blame in a model, reading the order of layers backprop visits.

    Gradients flow from the last layer down. If every wrong layer lies below every right
    one, the error enters on the way down: a wrong ``dx`` returned by a layer in between
    (parameter-free layers included, which have no row here) or the lowest right layer's
    ``dx``, or the top wrong layer's own parameter gradients. If one wrong layer has a
    right layer below it, the gradient it passed down was right: its own parameter
    gradients are wrong.
    """
    layers: dict[str, list[_Tensor]] = {}
    for t in tensors:
        layer = _layer_of(t.name)
        if layer is not None:
            layers.setdefault(layer, []).append(t)
    wrong = [layer for layer, ts in layers.items() if any(t.wrong.any() for t in ts)]
    right = [layer for layer in layers if layer not in wrong]
    if not wrong or not right:
        return None
    culprits = _join([t.name for w in wrong for t in layers[w] if t.wrong.any()])
    if not all(layer.isdigit() for layer in layers):
        return _one_named_layer(wrong, right, culprits)
    return _where_the_error_enters(run, wrong, right, culprits)


def _one_named_layer(wrong: list[str], right: list[str], culprits: str) -> str | None:
    """Layers named, not numbered (no order to read): only a single wrong one is named."""
    if len(wrong) != 1:
        return None
    verb = "is" if len(right) == 1 else "are"
    noun = "layer" if len(right) == 1 else "layers"
    return f"only layer {wrong[0]} is wrong ({culprits}); {noun} {_join(right)} {verb} right"


def _where_the_error_enters(run: RunEvidence, wrong: list[str], right: list[str],
                            culprits: str) -> str | None:
    """Numbered layers: every wrong one below every right one, or one wrong layer with
    right ones below it."""
    top_wrong, low_right = max(map(int, wrong)), min(map(int, right))
    if top_wrong < low_right:
        between = (_layer(run, low_right) if top_wrong + 1 == low_right else
                   f"layers {top_wrong + 1}..{low_right}" + _classes(run, top_wrong + 1,
                                                                      low_right))
        return (f"parameter gradients are right from layer {low_right} up and wrong below "
                f"({culprits}): the error enters on the way down — the dx returned by "
                f"{between}, or {_layer(run, top_wrong)}'s own parameter gradients")
    if len(wrong) == 1:
        cls = run.layer_names.get(wrong[0])
        kind = f", a {cls}" if cls else ""
        return (f"only layer {wrong[0]} is wrong ({culprits}{kind}); layers below it are "
                f"right, so the gradient it passes down is right: its own parameter "
                f"gradients are wrong")
    return None


def _classes(run: RunEvidence, first: int, last: int) -> str:
    """`` (1: Activation, 2: Dense)`` for layers ``first..last`` when their classes are known."""
    known = [f"{i}: {run.layer_names[str(i)]}" for i in range(first, last + 1)
             if str(i) in run.layer_names]
    return f" ({', '.join(known)})" if known else ""


def _wrong_and_right(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """A model's tensors: which are wrong and which right, with their layers' classes."""
    if not tensors or any(_layer_of(t.name) is None for t in tensors):
        return None
    wrong = [t.name for t in tensors if t.wrong.any()]
    right = [t.name for t in tensors if not t.wrong.any()]
    if not wrong:
        return None

    def named(names: list[str]) -> str:
        parts = []
        for name in names:
            cls = run.layer_names.get(_layer_of(name) or "")
            parts.append(f"{name} ({cls})" if cls else name)
        return ", ".join(parts) if parts else "none"

    return f"wrong: {named(wrong)}; right: {named(right)}"


def _common_factor(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """Several wrong tensors off by one shared factor: the bug is where their paths meet."""
    wrong = [t for t in tensors if t.wrong.any()]
    fitted = [_fit_factor(t, run.batch_size) for t in wrong]
    factors = [c for c in fitted if c is not None]
    if len(wrong) < 2 or len(factors) < len(fitted):
        return None
    c = float(np.median(factors))
    if _close(c, 1.0) or not all(_close(f, c) for f in factors):
        return None
    equals, _ = _factor_meaning(abs(c), run.batch_size, _dims(tensors, run.batch_size))
    if equals and c < 0:
        equals = f" (sign flipped; {_fmt(-c)}{equals})"
    names = _join([t.name for t in wrong])
    return (f"{names} are all off by the same factor {_fmt(c)}{equals}: the bug is where "
            f"their gradients meet (the upstream gradient or the loss, e.g. its 1/N)")


def _only_at_kinks(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """Every wrong entry sits at a kink: a bug, or several kinks hit at once.

    A parameter feeding several ReLUs that sit exactly at 0 (or tied maxima) makes the
    composite's one-sided derivatives differ from what the chain rule with relu'(0) = 0
    gives, although the code is right; one-sided differences cannot tell that from a bug.
    """
    wrong = sum(int(t.wrong.sum()) for t in tensors)
    at_kinks = sum(int((t.wrong & t.kink).sum()) for t in tensors)
    if wrong == 0 or at_kinks < wrong:
        return None
    names = _join([t.name for t in tensors if t.wrong.any()])
    return (f"every wrong entry ({names}) sits at a kink: either the derivative there is "
            f"outside the one-sided derivatives (a bug), or several kinks are hit at once "
            f"(pre-activations exactly 0, tied maxima), where the chain rule with a "
            f"convention such as relu'(0) = 0 can fall outside them although the code is "
            f"right; re-check at a point off the kinks to tell which")


def _output_shares(run: RunEvidence, t: _Tensor) -> tuple[np.ndarray, np.ndarray] | None:
    """Probed wrong entries of ``t`` and their numeric gradient split by output ``(K, m)``."""
    if run.contributions is None or t.scale == 0.0:
        return None
    entries = _probed(t, t.wrong & t.known)
    if entries.size < MIN_ENTRIES:
        return None
    got = run.contributions(t.name, entries)
    if got is None or len(got) != len(run.outputs) or got[0].shape[0] < MIN_ENTRIES:
        return None
    entries = entries[:got[0].shape[0]]  # a large output: the probe answered for fewer
    per_output = np.stack([g.reshape(entries.size, -1).sum(axis=1) for g in got])
    n = t.numeric.reshape(-1)[entries]
    if np.any(np.abs(per_output.sum(axis=0) - n) > SHARE_RTOL * max(t.scale, 1e-300)):
        return None  # the probe does not reproduce the numeric: no claim
    return entries, per_output


def _missing_output(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """Each wrong tensor's analytic = numeric minus the part flowing through ONE output.

    For code with several outputs (an LSTM step's ``(h, c)``), each with its own upstream
    gradient, the contribution probe splits the numeric gradient of probed entries by
    output. When, in every wrong tensor with ``MIN_ENTRIES`` known wrong entries (the
    others say nothing and are not named), the analytic equals the numeric without
    output ``k``'s part (to ``FIT_RTOL``), and that part is not small (``SIGNIFICANT`` of
    the numeric), backward ignores ``k``'s upstream gradient.
    """
    if run.contributions is None or len(run.outputs) < 2:
        return None
    wrong = [t for t in tensors if t.wrong.any()]
    if not wrong:
        return None
    candidates = set(range(len(run.outputs)))
    tested: list[str] = []
    for t in wrong:
        if np.count_nonzero(t.wrong & t.known) < MIN_ENTRIES:
            continue  # too few known wrong entries (a fast-mode sample): neither for nor against
        split = _output_shares(run, t)
        if split is None:
            return None
        tested.append(t.name)
        entries, per_output = split
        a, n = t.analytic.reshape(-1)[entries], t.numeric.reshape(-1)[entries]
        fits = {k for k in candidates
                if np.linalg.norm(per_output[k]) >= SIGNIFICANT * np.linalg.norm(n)
                and _residual(a, n - per_output[k]) <= FIT_RTOL}
        candidates &= fits
        if not candidates:
            return None
    if len(candidates) != 1 or not tested:
        return None
    name = run.outputs[candidates.pop()]
    return (f"the gradient through output {name} is missing in {_join(tested)}: "
            f"analytic = numeric − (the part that flows through {name}) within "
            f"{_fmt(100 * FIT_RTOL)} %: backward ignores the upstream gradient of {name} (an "
            f"LSTM's dc from the next step?); add the path through {name} to every gradient")


@dataclass(frozen=True)
class RunDetector:
    """One finding about the whole run.

    ``kind`` is ``"state"`` (how the user's code behaved: always reported) or ``"blame"``
    (which tensors or layers are wrong: only meaningful when forward is deterministic).
    """

    bug: str
    kind: str
    find: Callable[[RunEvidence, Sequence[_Tensor]], str | None]
    code: str = ""


def _aliased(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    if not run.aliased:
        return None
    names = _join(list(run.aliased))
    return (f"grads alias params: grads[k] is (or shares memory with) params[k] for "
            f"{names}, so backward overwrites the weights with their gradient (which also "
            f"makes forward look nondeterministic); give grads their own arrays "
            f"(np.zeros_like(params[k])) and write into those")


def _nondeterministic(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    if not run.nondeterministic or run.aliased:  # aliasing explains it
        return None
    return ("nondeterministic: the same input gave different outputs (randomness drawn anew "
            "on each forward, such as a dropout mask: fix its seed or freeze the mask); "
            "finite differences mean nothing until forward is repeatable")


RUN_DETECTORS: tuple[RunDetector, ...] = (
    RunDetector("grads alias params", "state", _aliased, "aliased-grads"),
    RunDetector("nondeterministic", "state", _nondeterministic, "nondeterministic"),
    RunDetector("stale cache", "state", _when(
        "history_dependent",
        "backward depends on an earlier forward (stale cache): refresh everything backward "
        "reads on every forward"), "stale-cache"),
    RunDetector("accumulating grads", "state", _when(
        "accumulating",
        "grads accumulate: each identical forward/backward call added the same amount to "
        "the parameter gradients, so backward adds to grads (+=) instead of overwriting "
        "them; assign them (grads[k][...] = new) on every backward"), "accumulating"),
    RunDetector("wrong only at kinks", "blame", _only_at_kinks, "only-at-kinks"),
    RunDetector("an output's gradient ignored", "blame", _missing_output,
                "missing-output-gradient"),
    RunDetector("one tensor wrong", "blame", _one_tensor, "one-tensor"),
    RunDetector("one layer wrong", "blame", _one_layer, "one-layer"),
    RunDetector("tensors wrong and right", "blame", _wrong_and_right, "wrong-and-right"),
    RunDetector("common factor", "blame", _common_factor, "common-factor"),
)


def _coded(text: str, code: str) -> Finding:
    """The detector's line as a :class:`Finding` (a detector may name a sharper code)."""
    return Finding(str(text), getattr(text, "code", "") or code)


def _tensor_findings(t: _Tensor, run: RunEvidence) -> list[Finding]:
    findings: list[Finding] = []
    value_found = False
    for row in TENSOR_DETECTORS:
        if row.kind == "value" and value_found:
            continue
        finding = row.find(t, run)
        if finding is not None:
            findings.append(_coded(finding, row.code))
            value_found |= row.kind == "value"
    return findings


def diagnose(run: RunEvidence) -> list[Finding]:
    """Name the likely bugs behind the mismatches in ``run``, one line per finding.

    Only tensors with wrong entries are examined. Run-wide findings (nondeterminism, a
    stale cache, which tensor or layer is to blame) come first, then each wrong tensor's
    findings in the order of ``run.tensors``. When the run is nondeterministic the
    per-tensor comparisons are meaningless and are not interpreted.

    Parameters
    ----------
    run : RunEvidence
        What the checker measured; each tensor's ``analytic``, ``numeric`` (NaN where not
        computed), ``wrong`` and ``nondifferentiable`` arrays share the tensor's shape.

    Returns
    -------
    list of Finding
        Plain one-line findings (``str``), each naming its tensor and carrying a stable
        ``code`` (the ``code`` of its table row); empty when nothing fits.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence
    >>> n = np.arange(1.0, 7.0).reshape(2, 3)
    >>> w = TensorEvidence("W", "param", -n, n, np.ones((2, 3), bool), np.zeros((2, 3), bool))
    >>> b = TensorEvidence("b", "param", n[0], n[0], np.zeros(3, bool), np.zeros(3, bool))
    >>> findings = diagnose(RunEvidence(batch_size=4, tensors=(w, b)))
    >>> findings
    ['only W is wrong; b is right', 'W: sign flipped (analytic = -1.00 × numeric)']
    >>> [f.code for f in findings]
    ['one-tensor', 'sign-flip']
    """
    tensors = [_Tensor.of(ev) for ev in run.tensors]
    rows = [row for row in RUN_DETECTORS if row.kind == "state" or not run.nondeterministic]
    findings = [_coded(f, row.code) for row in rows if (f := row.find(run, tensors)) is not None]
    if run.nondeterministic:
        return findings
    for t in tensors:
        if t.wrong.any():
            findings += _tensor_findings(t, run)
    return findings
