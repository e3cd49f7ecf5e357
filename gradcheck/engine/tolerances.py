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

# The two option defaults are declared with the options (a table without NumPy, which the
# pytest plugin reads at start-up); they belong to this table too.
from gradcheck.engine.options import AUTO_FULL_MAX_ENTRIES as AUTO_FULL_MAX_ENTRIES
from gradcheck.engine.options import FAST_DIRECTIONS as FAST_DIRECTIONS


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


#: At most this many unit roundings of φ are read as cancellation noise when the two
#: noise probes disagree (``runner.run``): more than that is a kink's scatter, not noise.
NOISE_FLOOR_CAP = 100.0
#: An entry whose step leaves the function's domain (a non-finite value: ``arcsin`` just
#: below 1) is probed again at steps this many times smaller, at most this many times.
DOMAIN_SHRINK_RATIO, DOMAIN_SHRINKS = 16.0, 4
#: A wrong item whose error moved with the step is re-judged at steps this many times
#: smaller, at most :data:`SHRINK_PASSES` times.
SHRINK_RATIO, SHRINK_PASSES = 16.0, 3
#: The judge's second pass (``numeric.judge``) refines an entry whose first error uses
#: more than this fraction of its tolerance (a pass that narrow may be luck) ...
REFINE_FRACTION = 0.5
#: ... or whose one-sided slopes differ by more than this fraction of their size beyond
#: rounding (the smooth model is in doubt: a kink may sit within the step).
LOPSIDED_GAP = 0.05
#: A refined error that moved by more than this fraction of the first one has not
#: settled (the entry is re-judged at other steps).
UNSETTLED_CHANGE = 0.25
#: A one-sided gap still this fraction of itself at half the step is a kink's signature
#: (a smooth function's gap halves with the step).
PERSISTING_GAP = 0.75
#: The smooth model is broken when its prediction misses by this fraction of the gap ...
SMOOTH_MODEL_MISS = 0.1
#: ... and the gap exceeds this many one-sided roundings (less could be rounding alone).
GAP_ROUNDINGS = 4.0
#: The hull of one-sided derivatives is widened by this many one-sided roundings.
HULL_ROUNDINGS = 3.0
#: A smaller step clears a wrong verdict only when its tolerance is below this fraction
#: of the first error (``judge_shrinking``: a sharper verdict, not just another one) ...
SHARPER_FRACTION = 0.5
#: ... and overturns a hull pass only where the one-sided gap shrank below this fraction
#: (the coarse hull was truncation, not a kink).
GAP_SHRANK = 0.25
#: The two noise estimates (``numeric.measure_noise``) agree when within this factor:
#: two estimates of one noise with 4 degrees of freedom differ more with probability
#: about 0.5 %.
NOISE_AGREEMENT = 6.0
#: A function whose rounding noise exceeds this fraction of a coarser format's epsilon
#: (relative to its scale) computes at that precision somewhere inside: difference it so.
#: 1/16 sits well above float64 noise and well below a float32 intermediate's.
COARSER_NOISE_FRACTION = 1 / 16
#: The Taylor test reads slopes only from remainders above this many unit roundings of
#: φ's scale: below it the remainder is rounding, and its slope means nothing.
TAYLOR_REMAINDER_ULPS = 1000.0
#: The Taylor test's verdict: a remainder slope of at least this is second order (the
#: gradient is right along the direction) ...
TAYLOR_SECOND_ORDER = 1.7
#: ... and at most this first order (it is wrong); between the two, inconclusive.
TAYLOR_FIRST_ORDER = 1.3
#: Gradients of identical calls are "the same" (a stale-cache probe) to within this many
#: unit roundings of their largest entry: summation order may differ between calls.
REPEAT_ULPS = 1000.0
#: Gradients growing by steps equal to this relative tolerance on identical calls are
#: accumulating (``+=``); the steps are the same gradient added again, up to rounding.
ACCUMULATION_RTOL = 1e-6
#: A "generic point" (where the output precision shows) moves each entry by this much
#: relative to ``max(|x|, 1)``: off the special values, still inside the domain.
GENERIC_NUDGE = 1e-3
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
#: A gradient stored in float32 (float16) holds nothing below its smallest normal ``tiny``
#: (1.2e-38; float64's 2.2e-308 never matters): products that underflow flush to 0 or
#: keep only a few bits (``prod`` of 125 entries in [0.1, 0.6] is 1e-55: its float32
#: gradient is exactly 0). Every entry's tolerance and estimate therefore include this
#: many ``tiny`` of the gradient's dtype in absolute terms (an entry sums a few
#: cotangent-weighted products, each of which may lose up to one ``tiny``): a correct
#: gradient below that is unresolved, never wrong, and an error above it is still caught.
UNDERFLOW_TINIES = 16.0
#: The smallest relative step is this many units of the format the steps are stored in
#: (below it a φ of that precision rounds to nothing useful) ...
MIN_STEP_UNITS = 32.0
#: ... but where φ is evaluated in a finer format than that (float32 inputs through a
#: float64 evaluation) only rounding of the finer format limits the step, and it may go
#: down to this many units of the storage format (never below MIN_STEP_UNITS of φ's):
#: ``tan`` 1.6e-4 from its pole needs steps under 1e-6 to see a 1e-3 error beneath a
#: truncation of (h / 1.6e-4)² (float64's first step 6e-6 / 16 = 3.8e-7 must be allowed);
#: the realized step (a whole number of ulps) is what the difference divides by.
FINE_PHI_STEP_UNITS = 2.0
#: A gradient computed in a format of machine epsilon ``ε`` from inputs as large as ``M``
#: is itself uncertain by about ``ε·M`` relative (``logcumsumexp`` of float32 inputs of
#: 1e4 forms ``x − out`` with an absolute rounding of 1e-3: its float32 gradient differs
#: from the float64 one at the same point by 2.6e-3 of its size, 7× float32's ``rtol``).
#: An entry whose error lies within this many such roundings beyond its tolerance is
#: unresolved, not wrong (nor OK): ``ε·M·(|a| + RMS)`` per entry, negligible (< 1e-6)
#: for inputs of order 1 in float32 and for float64 below M = 1e7.
INPUT_SCALE_ROUNDINGS = 4.0
#: Unresolved entries are re-judged at steps this many times larger (rounding falls as 1/h)
RAISE_RATIO = 16.0
#: ... up to this relative step (``h = MAX_RELATIVE_STEP · max(|θ|, 1)``); beyond it the
#: step no longer probes the point.
MAX_RELATIVE_STEP = 0.25
#: Structured full mode (``engine/structure.py``) needs at least this many samples: with
#: one there is nothing to group, and the verification would be pure cost.
MIN_SAMPLES = 2
#: Structured full mode's independence is verified at steps up to this many times the
#: first step (the larger steps of ``judge_resolving``'s climb are evaluated entry by
#: entry): two raises cover the sharpening of nearly every coarse entry.
STRUCTURE_RAISES = 2
#: Tiled structured full mode (``engine/tiles.py``): an input tile spans at least this
#: many entries along every spatial axis; narrower tiles put a 3- or 5-wide kernel's
#: reach across several tiles (more colours) and spend one verification evaluation on a
#: handful of entries.
MIN_TILE_WIDTH = 4
#: ... and a batch is cut into at most this many tiles in all (samples × tiles per
#: sample): the footprints are an (input tiles × output tiles) boolean table, and each
#: tile costs one verification evaluation per scale.
MAX_TILE_BLOCKS = 4096
#: The tile count T is chosen before any footprint is known, assuming a tile reaches its
#: own output tile and its neighbours (a kernel narrower than a tile): this many tiles
#: along each axis must then go to different colours. Only the choice of T rests on it;
#: the grouping uses the footprints discovered.
TILE_HALO_COLOURS = 3
#: ``executor=``: tasks per worker in one batch of evaluations (a few, so a slow worker
#: does not hold up the rest) ...
CHUNKS_PER_WORKER = 4
#: ... each of at least this many entries (or colours), so shipping stays amortized.
MIN_CHUNK = 16


#: A relative error common to a whole float64 tensor (``analytic = (1 + c)·numeric``) is
#: reported from this many units of ``eps`` on (2**-31 ≈ 4.7e-10 in float64): rounding in
#: a backward pass reaches it only through one shared factor with a cancellation of 2e6
#: (an entry's own cancellation weighs as ``a_i²`` in the test and averages out). Where
#: it is not below the row's ``rtol`` (float32, float16) the test is not run.
SYSTEMATIC_EPS_UNITS = float(2 ** 21)
#: The common error must show with one ratio in each of this many groups of entries
#: (dealt by size), so that a few entries (a kink near the line, one cancellation) cannot
#: raise it; tensors with fewer than ``SYSTEMATIC_MIN_ENTRIES`` entries are not tested.
SYSTEMATIC_GROUPS, SYSTEMATIC_MIN_ENTRIES = 4, 8
#: The groups' ratios may differ from the whole tensor's by this fraction of it (beyond
#: their estimates): a common factor gives one ratio, scattered entry errors do not.
SYSTEMATIC_SPREAD = 0.5
#: The step of the directional 4-point difference is chosen so that its rounding estimate
#: is this share of the threshold (the rest is left to truncation).
SYSTEMATIC_ROUNDING_SHARE = 0.25
#: ... but never above this relative step (its 4× multiple must still probe the point).
SYSTEMATIC_MAX_STEP = 1e-2

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
