"""Structured full mode: difference one entry of every independent sample at once.

A layer's input Jacobian is block-diagonal across the samples of a batch (``Dense``,
``Conv2D``, ``MaxPool2D``, ``LSTM`` over time *within* a sample), unless the layer couples
them (batch norm in training mode). Where an adapter can split the objective
``φ = Σ G·out`` into per-sample contributions ``c[n] = Σ G[n]·out[n]``
(:class:`Blocks`), this module

1. **verifies** that the samples are independent (:func:`verify_independence`): for each
   sample ``n`` and each of a few step scales, one evaluation with *all* of sample
   ``n``'s entries moved along a random direction must leave every other sample's
   contribution bit-identical (cost: three scales · N evaluations, far below
   the 2·N·D of plain full mode); the unperturbed contributions must repeat bit for bit;
2. differences the input target **one entry per sample per evaluation**
   (:class:`GroupedEvaluator`): the k-th pending entry of every sample is moved at once,
   and each sample's own contribution gives that entry's difference
   ``φ(θ + δ) − φ(θ) = c_n(θ + δ) − c_n(θ)``. The residuals, steps and rounding estimate
   are those of plain full mode, so every re-judging step (half step, smaller and larger
   steps) works unchanged on grouped evaluations; a step outside the verified scales is
   evaluated entry by entry.

Nothing is assumed: a layer that couples its samples (or whose contributions do not
repeat) is reported and checked in plain full mode. Only sample independence is used;
locality within a sample (convolution footprints) is not (see ``docs/ARCHITECTURE.md``).

>>> import numpy as np
>>> from gradcheck.engine.numeric import Target
>>> x = np.arange(6.0).reshape(3, 2)
>>> t = Target("x", "input", x, analytic=np.cos(x))
>>> blocks = Blocks(0, np.repeat(np.arange(3), 2), lambda: np.sin(x).sum(axis=1))
>>> verify_independence(blocks, t, steps=(1e-5,), seed=0, describe="sin").independent
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck.engine.numeric import Objective, Target, evaluate_entries
from gradcheck.engine.safety import UserCodeError
from gradcheck.engine.streams import stream
from gradcheck.engine.tolerances import MIN_SAMPLES

#: Independence is verified at three step scales (see ``runner._structure``).
VERIFY_SCALES = 3


@dataclass(frozen=True)
class Blocks:
    """Per-sample contributions of φ for one target (the input).

    Attributes
    ----------
    target : int
        Position of the structured target in ``Problem.targets``.
    owner : ndarray of int, shape ``(target.size,)``
        The sample (block) each flat entry belongs to, ``0 .. n_blocks - 1``.
    contributions : callable, ``() -> ndarray (n_blocks,)``
        ``c[n] = Σ G[n]·out[n]`` at the current target values (φ = Σ c up to rounding).
    """

    target: int
    owner: np.ndarray
    contributions: Callable[[], np.ndarray]

    @property
    def n_blocks(self) -> int:
        return int(self.owner.max()) + 1 if self.owner.size else 0

    @property
    def largest(self) -> int:
        """Entries of the largest sample (what one grouped pass over the target costs)."""
        return int(np.bincount(self.owner).max()) if self.owner.size else 0


@dataclass(frozen=True)
class Independence:
    """The verdict of :func:`verify_independence`: independent, or why not."""

    independent: bool
    reason: str
    evaluations: int
    low: float = 0.0  # the verified range of relative steps
    high: float = 0.0


def verify_independence(blocks: Blocks, target: Target, *, steps: Sequence[float], seed: int,
                        describe: str) -> Independence:
    """Do samples move only their own contribution? One evaluation per sample and scale.

    For each relative scale ``s`` in ``steps`` and each sample ``n``, every entry of
    sample ``n`` moves by ``s · max(|θ_i|, 1) · z_i`` (``z`` standard normal, realized in
    the target's dtype); every other sample's contribution must stay bit-identical. The
    target is restored bit for bit afterwards, also when the function raises.

    >>> import numpy as np
    >>> x = np.ones((2, 3))
    >>> t = Target("x", "input", x, analytic=np.ones((2, 3)))
    >>> coupled = Blocks(0, np.repeat([0, 1], 3), lambda: (x - x.mean(axis=0)).sum(axis=1))
    >>> verify_independence(coupled, t, steps=(1e-3,), seed=0, describe="bn").independent
    False
    """
    n_blocks = blocks.n_blocks
    spent = 0
    if n_blocks < MIN_SAMPLES:
        return Independence(False, "fewer than 2 samples", 0)
    flat = target.flat()
    try:
        base = _contributions(blocks, n_blocks, describe)
        again = _contributions(blocks, n_blocks, describe)
        spent = 2
        if not np.array_equal(base, again):
            return Independence(False, "its per-sample contributions do not repeat bit for "
                                       "bit at the same input", spent)
        rng = stream(seed, "independence")
        for s in steps:
            for n in range(n_blocks):
                members = np.flatnonzero(blocks.owner == n)
                values = target.values[members]
                h = s * np.maximum(np.abs(values), 1.0) * rng.standard_normal(members.size)
                up, _, _, _ = target.realize(values, h)
                flat[members] = up
                moved = _contributions(blocks, n_blocks, describe)
                flat[members] = values
                spent += 1
                others = np.arange(n_blocks) != n
                changed = others & (moved != base)
                if changed.any():
                    m = int(np.argmax(changed))
                    return Independence(
                        False, f"moving sample {n} of {target.name} (relative step {s:.2g}) "
                               f"changed the output of sample {m}: the samples are coupled "
                               f"(batch statistics, as in batch norm in training mode, or "
                               f"another mixing across the batch)", spent)
    except UserCodeError as err:  # a whole sample moved may leave the function's domain
        return Independence(False, f"it raised while a whole sample was moved: {err}",
                            spent + 1)
    finally:
        flat[:] = target.values
    return Independence(True, "", spent, low=min(steps), high=max(steps))


def _contributions(blocks: Blocks, n_blocks: int, describe: str) -> np.ndarray:
    try:
        c = np.asarray(blocks.contributions(), dtype=np.float64)
    except Exception as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__} while its samples' "
                            f"independence was verified: {err}") from err
    if c.shape != (n_blocks,):
        raise UserCodeError(f"per-sample contributions of {describe} have shape {c.shape}, "
                            f"expected ({n_blocks},)")
    return c


def colors(owner: np.ndarray) -> np.ndarray:
    """Colour of each item: its rank among the items of the same block (0, 1, ...).

    Items of one colour lie in distinct blocks, so one evaluation moves them all.

    >>> colors(np.array([0, 0, 1, 0, 1])).tolist()
    [0, 1, 0, 2, 1]
    """
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, sorted_owner.size]))
    rank = np.empty(owner.size, dtype=np.intp)
    rank[order] = np.arange(owner.size) - first
    return rank


def evaluate_grouped(contributions: Callable[[], np.ndarray], target: Target,
                     owner: np.ndarray, base: np.ndarray, f0: float, idx: np.ndarray,
                     up: np.ndarray, down: np.ndarray,
                     describe: str) -> tuple[np.ndarray, np.ndarray]:
    """φ with entry ``idx[k]`` at ``up[k]`` / ``down[k]``, read off its sample's contribution.

    Two evaluations per colour (:func:`colors`) instead of two per entry: the items of a
    colour move together, and item ``k`` reads ``f0 + c[owner](moved) − base[owner]``.
    The target is restored bit for bit, also when the function raises.
    """
    flat = target.flat()
    blocks_of = owner[idx]
    rank = colors(blocks_of)
    f_up, f_down = np.empty(idx.size), np.empty(idx.size)
    old = target.values[idx]
    sign, members = "+", np.zeros(0, np.intp)
    try:
        for k in range(int(rank.max()) + 1 if idx.size else 0):
            members = np.flatnonzero(rank == k)
            where = idx[members]
            sign = "+"
            flat[where] = up[members]
            f_up[members] = f0 + (np.asarray(contributions())[blocks_of[members]]
                                  - base[blocks_of[members]])
            sign = "-"
            flat[where] = down[members]
            f_down[members] = f0 + (np.asarray(contributions())[blocks_of[members]]
                                    - base[blocks_of[members]])
            flat[where] = old[members]
    except Exception as err:
        first = int(idx[members[0]]) if members.size else 0
        raise UserCodeError(f"{describe} raised {type(err).__name__} with {target.name}"
                            f"{list(target.index(first))} and one entry of every other "
                            f"sample perturbed by {sign}h: {err}") from err
    finally:
        flat[idx] = old
    return f_up, f_down


@dataclass
class GroupedEvaluator:
    """The entry evaluator of a verified structured target (see :func:`evaluate_grouped`).

    Steps inside the verified range ``[low, high]`` are grouped; any other step is
    evaluated entry by entry with ``phi``. ``calls`` counts every evaluation made.
    """

    phi: Objective
    blocks: Blocks
    base: np.ndarray
    f0: float
    low: float
    high: float
    describe: str
    calls: int = 0

    def __call__(self, target: Target, idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                 step: float) -> tuple[np.ndarray, np.ndarray]:
        if not (self.low <= step <= self.high):
            self.calls += 2 * idx.size
            return evaluate_entries(self.phi, target, idx, up, down, self.describe)
        rank_count = int(colors(self.blocks.owner[idx]).max()) + 1 if idx.size else 0
        self.calls += 2 * rank_count
        return evaluate_grouped(self.blocks.contributions, target, self.blocks.owner,
                                self.base, self.f0, idx, up, down, self.describe)


__all__ = ["VERIFY_SCALES", "Blocks", "GroupedEvaluator", "Independence", "colors",
           "evaluate_grouped", "verify_independence"]
