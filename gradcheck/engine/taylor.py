"""Taylor remainder test: a second opinion that needs no finite-difference step choice.

Along a random direction ``v`` the remainder ``R(h) = |φ(θ + hv) − φ(θ) − h·g·v|`` is
``O(h²)`` when ``g`` is the gradient and ``Θ(h)`` when it is not, so the log-log slope of
``R`` against ``h`` over a geometric sequence of steps is ≈ 2 (right) or ≈ 1 (wrong).
Remainders at the level of rounding are discarded; the slope is the median of the local
slopes over the five smallest steps that remain, where the asymptotic order shows; where
two terms of the expansion cancel (the remainder dips, then rises), only the slopes past
the dip count.

>>> import numpy as np
>>> from gradcheck.engine.numeric import Target
>>> x = np.array([0.3, -0.2])
>>> t = Target("x", "input", x, analytic=np.cos(x))
>>> probe = taylor_probe(lambda: float(np.sin(x).sum()), [t], float(np.sin(x).sum()), seed=0)
>>> taylor_verdict(probe, noise=1.0, eps=2.2e-16).verdict
'consistent'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from gradcheck.engine.numeric import Objective, Target, scaled_direction, walk_along
from gradcheck.engine.streams import stream
from gradcheck.engine.tolerances import (
    TAYLOR_FIRST_ORDER,
    TAYLOR_REMAINDER_ULPS,
    TAYLOR_SECOND_ORDER,
)
from gradcheck.results.result import Taylor

#: Steps ``h = FIRST_STEP · 2^-j``, ``j = 0..STEPS-1`` (relative: entries move by h·s_i·v_i).
FIRST_STEP = 0.1
STEPS = 12
#: Slopes at or above / at or below these count as second / first order.


class TaylorProbe(NamedTuple):
    """Raw Taylor-test data: steps, remainders, and the values ``φ(θ + hv)`` seen."""

    steps: np.ndarray
    remainders: np.ndarray
    values: np.ndarray
    f0: float

    @property
    def evaluations(self) -> int:
        return len(self.steps)


def taylor_probe(phi: Objective, targets: Sequence[Target], f0: float, *, seed: int,
                 describe: str = "the function") -> TaylorProbe:
    """Evaluate the remainders along one seeded random direction.

    The values double as a probe of the output precision (see
    :func:`gradcheck.engine.tolerances.observed_precision`): they are taken at generic points.

    Parameters
    ----------
    phi, targets, f0
        The objective, the arrays it reads (perturbed in place, restored) and ``φ(θ)``.
    seed : int
        Seed of the direction.
    """
    rng = stream(seed, "taylor")
    size = sum(t.size for t in targets)
    dirs = [scaled_direction(rng, t, np.sqrt(size)) for t in targets]
    steps = FIRST_STEP * 2.0 ** -np.arange(STEPS)
    values, linear = walk_along(phi, targets, dirs, steps, describe=describe,
                                during="during the Taylor test (all entries moved along a "
                                       "random direction)")
    return TaylorProbe(steps, np.abs(values - f0 - linear), values, f0)


def taylor_verdict(probe: TaylorProbe, *, noise: float, eps: float) -> Taylor:
    """Fit the slope on the smallest steps whose remainder is above
    ``TAYLOR_REMAINDER_ULPS · eps · scale``."""
    steps, remainders = probe.steps, probe.remainders
    floor = TAYLOR_REMAINDER_ULPS * eps * max(noise, abs(probe.f0), float(np.max(np.abs(probe.values))))
    usable = np.isfinite(remainders) & (remainders > floor)
    pairs = (tuple(steps.tolist()), tuple(remainders.tolist()))
    if usable.sum() < 3:
        return Taylor(float("nan"), "inconclusive: the remainder is at rounding level "
                      "(φ is nearly linear along the probe direction)", *pairs)
    local = np.diff(np.log(remainders[usable])) / np.diff(np.log(steps[usable]))
    # Where two terms of the expansion cancel, the remainder dips and rises again as h
    # shrinks (a negative local slope) and the slope right after it is still distorted:
    # read the order only past the last such dip when enough points remain there.
    dips = np.flatnonzero(local < 0)
    if dips.size and local.size - dips[-1] - 2 >= 2:
        local = local[dips[-1] + 2:]
    slope = float(np.median(local[-4:]))
    if slope >= TAYLOR_SECOND_ORDER:
        verdict = "consistent"
    elif slope <= TAYLOR_FIRST_ORDER:
        verdict = "wrong"
    else:
        verdict = "inconclusive: slope between first and second order"
    return Taylor(slope, verdict, *pairs)
