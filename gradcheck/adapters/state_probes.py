"""The probes of a backward pass's state, each a named piece with one question.

* :func:`accumulates` — do identical calls grow the gradients by the same step (``+=``)?
* :func:`stale_after_other_input` — is the gradient at ``x`` still the same after a
  forward on another input (else the backward reads a cache of an earlier input)?

The adapters run them on the user's code; the engine's run only reads their answers
(``Problem.accumulating``, ``Problem.history_dependent``).

>>> import numpy as np
>>> g = np.array([1.0, 2.0])
>>> accumulates([[g], [2 * g], [3 * g]])
True
>>> accumulates([[g], [g], [g]])
False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gradcheck.engine.safety import OffPointFailure
from gradcheck.engine.tolerances import ACCUMULATION_RTOL, REPEAT_ULPS


def accumulates(calls: Sequence[Sequence[np.ndarray]], *, fixed: int = 0) -> bool:
    """Did the last three identical calls grow the gradients by the same nonzero step?

    Parameters
    ----------
    calls : sequence of per-call gradient lists (each list: the same tensors, same shapes)
    fixed : int
        The first ``fixed`` tensors of each call must not change at all (an input gradient
        ``dx`` stays put while ``grads`` accumulate; a cache lagging one call behind changes
        both once, then repeats).
    """
    if len(calls) < 3:
        return False
    first, second, third = calls[-3:]
    if not all(np.array_equal(a, b) for call in (second, third)
               for a, b in zip(first[:fixed], call[:fixed], strict=True)):
        return False
    steps = [(b - a, c - b) for a, b, c in
             zip(first[fixed:], second[fixed:], third[fixed:], strict=True)]
    return any(np.any(s1 != 0) for s1, _ in steps) and all(
        np.allclose(s1, s2, rtol=ACCUMULATION_RTOL, atol=0) for s1, s2 in steps)


def stale_after_other_input(run_analytic: Callable[[np.ndarray, np.ndarray], list[np.ndarray]],
                            xw: np.ndarray, before: list[np.ndarray], eps: float,
                            rng: np.random.Generator) -> tuple[bool, list[str]]:
    """Forward on another input, then forward/backward on ``xw`` again: a different gradient?

    Returns ``(stale, notes)``; the gradients are "the same" to within ``REPEAT_ULPS`` unit
    roundings of their largest entry. An other input outside the function's domain skips
    the probe, with a note saying so.
    """
    other = xw + (rng.standard_normal(xw.shape) * np.maximum(np.abs(xw), 1.0)).astype(xw.dtype)
    try:
        with np.errstate(all="ignore"):
            after = run_analytic(other, xw)
    except OffPointFailure as err:
        return False, [f"stale-cache probe skipped: {err}"]
    for a, b in zip(before, after, strict=True):
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        if not np.allclose(a, b, rtol=0, atol=REPEAT_ULPS * eps * scale + 1e-300):
            return True, []
    return False, []


__all__ = ["accumulates", "stale_after_other_input"]
