"""Name the likely bug behind a gradient mismatch, one plain line per finding.

The checker core hands over a :class:`~gradcheck.diagnosis.evidence.RunEvidence` (analytic and
numeric values of every checked tensor, which entries were judged wrong, and facts about
the run); :func:`diagnose` holds each wrong tensor against a table of bug classes and
returns the findings that fit, for example ``"W: sign flipped (analytic = -1.00 ×
numeric)"``.

Every detector is one row of a table. A detector only speaks when the evidence fits its
pattern well (a least-squares fit with a small residual, on enough known entries, or a
location pattern that chance alone would rarely produce); when nothing fits, the
diagnosis stays quiet rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence

__all__ = ["RUN_DETECTORS", "TENSOR_DETECTORS", "diagnose"]

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

    @classmethod
    def of(cls, ev: TensorEvidence) -> _Tensor:
        analytic = np.asarray(ev.analytic, dtype=np.float64)
        numeric = np.asarray(ev.numeric, dtype=np.float64)
        kink = np.asarray(ev.nondifferentiable, dtype=bool)
        known = np.isfinite(numeric) & ~kink & np.isfinite(analytic)
        scale = float(np.max(np.abs(numeric[known]))) if known.any() else 0.0
        return cls(ev.name, ev.role, ev.layout, analytic, numeric, known,
                   np.asarray(ev.wrong, dtype=bool), kink, scale)


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


def _factor_meaning(factor: float, batch_size: int | None) -> tuple[str, str]:
    """What a positive factor equals and what usually causes it (``("", "")`` if unknown)."""
    meanings: list[tuple[float, str, str]] = []
    if batch_size == 2:  # 2 is both the batch size and a doubled term: say so
        meanings += [(2.0, " = the batch size or a doubled term",
                      "a missing 1/N, a term counted twice, or a missing ½?"),
                     (0.5, " = 1/batch size or a halved term",
                      "an extra 1/N, or the derivative of x² written as x?")]
    elif batch_size is not None and batch_size > 1:
        meanings += [(float(batch_size), " = the batch size", "a missing 1/N?"),
                     (1.0 / batch_size, " = 1/batch size", "an extra 1/N?")]
    meanings += [(2.0, "", "e.g. a term counted twice, or a missing ½"),
                 (0.5, "", "e.g. derivative of x² written as x")]
    return next(((equals, cause) for value, equals, cause in meanings
                 if _close(factor, value)), ("", ""))


def _constant_factor(t: _Tensor, run: RunEvidence) -> str | None:
    c = _fit_factor(t, run.batch_size)
    if c is None or _close(abs(c), 1.0):
        return None
    sign = "sign flipped and " if c < 0 else ""
    equals, cause = _factor_meaning(abs(c), run.batch_size)
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
    return (f"{t.name}: the right values at the wrong positions "
            f"(gradient routed to the wrong element?)")


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
    m = int(np.count_nonzero(wrong))
    in_region, total = int(np.count_nonzero(judged & region)), int(np.count_nonzero(judged))
    if m == 0 or in_region >= total:
        return False
    i = np.arange(m)
    return float(np.prod((in_region - i) / (total - i))) <= CHANCE


def _borders(t: _Tensor, run: RunEvidence) -> str | None:
    axes = _axes(t, "HW", {4: (2, 3)})
    if not axes or t.role != "input":
        return None
    height, width = (t.analytic.shape[ax] for ax in axes)
    shape = [1] * t.analytic.ndim
    shape[axes[0]], shape[axes[1]] = height, width
    for band in (1, 2):
        if min(height, width) <= 2 * band:
            break
        rows, cols = np.arange(height), np.arange(width)
        edge_rows = (rows < band) | (rows >= height - band)
        edge_cols = (cols < band) | (cols >= width - band)
        edge_2d = edge_rows[:, None] | edge_cols[None, :]
        border = np.broadcast_to(edge_2d.reshape(shape), t.analytic.shape)
        if np.any(t.wrong & ~border) or np.count_nonzero(t.known & ~border) < MIN_ENTRIES:
            continue
        if _unlikely_by_chance(t.wrong, border, t.known | t.wrong):
            where = "the outermost row/column" if band == 1 else f"the outer {band} rows/columns"
            return f"{t.name}: errors only at the borders of the H×W grid, in {where} (padding?)"
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
    judged = known | wrong
    step_of = np.broadcast_to(np.arange(steps)[:, None], wrong.shape)
    error = np.array([np.max(np.abs(a[s] - n[s])[known[s]], initial=0.0) for s in range(steps)])
    # a prefix: nothing judged before the first wrong step (steps fast mode did not sample
    # may be anywhere), right entries after the last one; a suffix the other way round
    if last < steps - 1 and not judged[:first].any():
        k = last + 1
        if (np.count_nonzero(known[k:]) >= MIN_ENTRIES
                and _unlikely_by_chance(wrong, step_of < k, judged)):
            grows = k >= 2 and bool(np.all(error[:k - 1] >= error[1:k]))
            trend = ", growing toward early steps" if grows else ""
            return (f"{t.name}: errors only in the first {k} of {steps} {unit}{trend} "
                    f"(truncated BPTT?)")
    if first > 0 and not judged[last + 1:].any():
        k = steps - first
        if (np.count_nonzero(known[:first]) >= MIN_ENTRIES
                and _unlikely_by_chance(wrong, step_of >= first, judged)):
            return f"{t.name}: errors only in the last {k} of {steps} {unit}"
    if first == 0 and last == steps - 1 and steps >= 4 and np.all(error > 0):
        ratio = error[0] / error[-1]
        if np.all(np.diff(error) < 0) and ratio >= 10:
            return (f"{t.name}: error grows toward early {unit} ({_fmt(ratio)}× from the "
                    f"last to the first; truncated BPTT or a wrong recurrent term?)")
        if np.all(np.diff(error) > 0) and ratio <= 0.1:
            return (f"{t.name}: error grows toward late {unit} ({_fmt(1 / ratio)}× from "
                    f"the first to the last)")
    return None


# --------------------------------------------------------------------------------------
# The tables


@dataclass(frozen=True)
class TensorDetector:
    """One bug class recognizable in a single tensor's evidence.

    ``kind`` is ``"value"`` (what the wrong values are; the first matching value row is
    the only one reported per tensor) or ``"where"`` (where the wrong entries lie; every
    matching row is reported).
    """

    bug: str
    kind: str
    find: Callable[[_Tensor, RunEvidence], str | None]


TENSOR_DETECTORS: tuple[TensorDetector, ...] = (
    TensorDetector("all zeros", "value", _all_zero),
    TensorDetector("sign flipped", "value", _sign_flip),
    TensorDetector("constant factor", "value", _constant_factor),
    TensorDetector("transposed", "value", _transposed),
    TensorDetector("kernel rotated", "value", _kernel_flipped),
    TensorDetector("instead of g·Wᵀ", "value", _fixed_matrix),
    TensorDetector("wrong positions", "value", _misrouted),
    TensorDetector("borders", "where", _borders),
    TensorDetector("time steps", "where", _time_profile),
)


def _layer_of(name: str) -> str | None:
    """``"1"`` for a model parameter ``"1.W"``; None for an unqualified name."""
    return name.split(".", 1)[0] if "." in name else None


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _when(flag: str, message: str) -> Callable[[RunEvidence, Sequence[_Tensor]], str | None]:
    """A run detector that states ``message`` when ``run.<flag>`` is set."""
    return lambda run, tensors: message if getattr(run, flag) else None


def _one_tensor(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    if any(_layer_of(t.name) is not None for t in tensors):
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
        if len(wrong) != 1:
            return None
        verb = "is" if len(right) == 1 else "are"
        noun = "layer" if len(right) == 1 else "layers"
        return f"only layer {wrong[0]} is wrong ({culprits}); {noun} {_join(right)} {verb} right"
    top_wrong, low_right = max(map(int, wrong)), min(map(int, right))
    if top_wrong < low_right:
        between = (f"layer {low_right}" if top_wrong + 1 == low_right
                   else f"layers {top_wrong + 1}..{low_right}")
        return (f"parameter gradients are right from layer {low_right} up and wrong below "
                f"({culprits}): the error enters on the way down — the dx returned by "
                f"{between}, or layer {top_wrong}'s own parameter gradients")
    if len(wrong) == 1:
        return (f"only layer {wrong[0]} is wrong ({culprits}); layers below it are right, so "
                f"the gradient it passes down is right: its own parameter gradients are wrong")
    return None


def _common_factor(run: RunEvidence, tensors: Sequence[_Tensor]) -> str | None:
    """Several wrong tensors off by one shared factor: the bug is where their paths meet."""
    wrong = [t for t in tensors if t.wrong.any()]
    factors = [_fit_factor(t, run.batch_size) for t in wrong]
    if len(wrong) < 2 or any(c is None for c in factors):
        return None
    c = float(np.median(factors))
    if _close(c, 1.0) or not all(_close(f, c) for f in factors):
        return None
    equals, _ = _factor_meaning(abs(c), run.batch_size)
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


@dataclass(frozen=True)
class RunDetector:
    """One finding about the whole run.

    ``kind`` is ``"state"`` (how the user's code behaved: always reported) or ``"blame"``
    (which tensors or layers are wrong: only meaningful when forward is deterministic).
    """

    bug: str
    kind: str
    find: Callable[[RunEvidence, Sequence[_Tensor]], str | None]


RUN_DETECTORS: tuple[RunDetector, ...] = (
    RunDetector("nondeterministic", "state", _when(
        "nondeterministic",
        "nondeterministic: the same input gave different outputs (randomness drawn anew on "
        "each forward, such as a dropout mask: fix its seed or freeze the mask); finite "
        "differences mean nothing until forward is repeatable")),
    RunDetector("stale cache", "state", _when(
        "history_dependent",
        "backward depends on an earlier forward (stale cache): refresh everything backward "
        "reads on every forward")),
    RunDetector("accumulating grads", "state", _when(
        "accumulating",
        "grads accumulate: each identical forward/backward call added the same amount to "
        "the parameter gradients, so backward adds to grads (+=) instead of overwriting "
        "them; assign them (grads[k][...] = new) on every backward")),
    RunDetector("wrong only at kinks", "blame", _only_at_kinks),
    RunDetector("one tensor wrong", "blame", _one_tensor),
    RunDetector("one layer wrong", "blame", _one_layer),
    RunDetector("common factor", "blame", _common_factor),
)


def _tensor_findings(t: _Tensor, run: RunEvidence) -> list[str]:
    findings: list[str] = []
    value_found = False
    for row in TENSOR_DETECTORS:
        if row.kind == "value" and value_found:
            continue
        finding = row.find(t, run)
        if finding is not None:
            findings.append(finding)
            value_found |= row.kind == "value"
    return findings


def diagnose(run: RunEvidence) -> list[str]:
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
    list of str
        Plain one-line findings, each naming its tensor; empty when nothing fits.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence
    >>> n = np.arange(1.0, 7.0).reshape(2, 3)
    >>> w = TensorEvidence("W", "param", -n, n, np.ones((2, 3), bool), np.zeros((2, 3), bool))
    >>> b = TensorEvidence("b", "param", n[0], n[0], np.zeros(3, bool), np.zeros(3, bool))
    >>> diagnose(RunEvidence(batch_size=4, tensors=(w, b)))
    ['only W is wrong; b is right', 'W: sign flipped (analytic = -1.00 × numeric)']
    """
    tensors = [_Tensor.of(ev) for ev in run.tensors]
    rows = [row for row in RUN_DETECTORS if row.kind == "state" or not run.nondeterministic]
    findings = [f for row in rows if (f := row.find(run, tensors)) is not None]
    if run.nondeterministic:
        return findings
    for t in tensors:
        if t.wrong.any():
            findings += _tensor_findings(t, run)
    return findings
