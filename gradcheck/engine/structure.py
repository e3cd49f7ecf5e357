"""Structured full mode: difference one entry of every block of a colour at once.

A layer's input Jacobian is block-diagonal across the samples of a batch (``Dense``,
``Conv2D``, ``MaxPool2D``, ``LSTM`` over time *within* a sample), unless the layer couples
them (batch norm in training mode); within a sample a convolution or a pooling is also
*local*: an input tile moves only the output tiles its kernel reaches. Where an adapter
can split the objective ``φ = Σ G·out`` into per-region contributions
``c[r] = Σ G[r]·out[r]`` (:class:`Blocks`: a region is a sample, or a tile of one
sample's output, see :mod:`gradcheck.engine.tiles`), this module

1. **discovers and verifies** each input block's footprint (:func:`verify_independence`):
   for each block ``b`` (a sample, or one tile of a sample with all its channels) and each
   of a few step scales, one evaluation with *all* of ``b``'s entries moved along a random
   direction; the regions whose contribution changed (not bit-identical) form ``b``'s
   footprint ``F_b`` (union over the scales). A block that reaches a region of another
   sample is a coupling of the batch: the structure is refused. The unperturbed
   contributions must repeat bit for bit. Samples are the case of one tile per sample
   whose footprint must be its own sample;
2. **colours** the blocks (:func:`colour_blocks`): blocks whose footprints are pairwise
   disjoint share a colour (greedy colouring of the conflict graph);
3. differences the input target **one entry per block of a colour per evaluation**
   (:class:`GroupedEvaluator`): the k-th pending entry of every block of one colour is
   moved at once, and entry ``j`` of block ``b`` reads
   ``φ(θ + δ) − φ(θ) = Σ_{r ∈ F_b} (c_r(θ + δ) − c_r(θ))`` — exact bookkeeping given the
   verified facts that ``b`` moves only ``F_b`` and its colour mates only regions outside
   it. The residuals, steps and rounding estimate are those of plain full mode, so every
   re-judging step (half step, smaller and larger steps) works unchanged on grouped
   evaluations; a step outside the verified scales is evaluated entry by entry.

Nothing is assumed: a layer that couples its samples (or whose contributions do not
repeat) is reported and checked in plain full mode; a layer whose tiles reach too far to
pay (an LSTM over time, a global mean) is grouped by samples (see ``engine/structure_plan``).

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

#: Independence is verified at three step scales (see ``structure_plan``).
VERIFY_SCALES = 3
#: ... and in both directions, ``+z`` and ``−z``: a reach that only one side of a kink
#: triggers (a ReLU of an exact 0 moves only when its input rises) shows in one of them,
#: so a colour mate never contaminates a difference one-sidedly (a fake kink whose hull
#: would excuse a wrong entry).
VERIFY_DIRECTIONS = 2
#: Evaluations per block of the verification.
PROBES_PER_BLOCK = VERIFY_SCALES * VERIFY_DIRECTIONS

#: ``reach -> reason``: called once the first blocks are probed (the pilot); a non-empty
#: reason abandons the discovery (the structure would not pay).
Pilot = Callable[[np.ndarray], str]


@dataclass(frozen=True)
class Blocks:
    """Input blocks and per-region contributions of φ for one target (the input).

    Attributes
    ----------
    target : int
        Position of the structured target in ``Problem.targets``.
    owner : ndarray of int, shape ``(target.size,)``
        The block each flat entry belongs to, ``0 .. n_blocks - 1``.
    contributions : callable, ``() -> ndarray (n_regions,)``
        ``c[r] = Σ G[r]·out[r]`` at the current target values (φ = Σ c up to rounding).
    home : ndarray of int, shape ``(n_blocks,)``, optional
        The sample of each block (default: block ``b`` is sample ``b``).
    region_home : ndarray of int, shape ``(n_regions,)``, optional
        The sample of each region (default: region ``r`` is sample ``r``).
    tiles : int
        Chunks per spatial axis (1: the blocks are whole samples).
    """

    target: int
    owner: np.ndarray
    contributions: Callable[[], np.ndarray]
    home: np.ndarray | None = None
    region_home: np.ndarray | None = None
    tiles: int = 1

    @property
    def n_blocks(self) -> int:
        return int(self.owner.max()) + 1 if self.owner.size else 0

    @property
    def n_regions(self) -> int:
        return self.n_blocks if self.region_home is None else int(self.region_home.size)

    @property
    def sizes(self) -> np.ndarray:
        """Entries of each block, shape ``(n_blocks,)``."""
        return np.bincount(self.owner, minlength=self.n_blocks)

    @property
    def largest(self) -> int:
        """Entries of the largest block (what one grouped pass of one colour costs)."""
        return int(self.sizes.max()) if self.owner.size else 0

    def homes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sample of each block, sample of each region)``."""
        home = np.arange(self.n_blocks) if self.home is None else self.home
        regions = np.arange(self.n_regions) if self.region_home is None else self.region_home
        return home, regions

    def by_sample(self) -> Blocks:
        """The same regions with each sample's tiles merged into one block."""
        home, _ = self.homes()
        return Blocks(self.target, home[self.owner], self.contributions,
                      np.arange(int(home.max()) + 1 if home.size else 0), self.region_home)


@dataclass(frozen=True)
class Independence:
    """The verdict of :func:`verify_independence`: verified (with the footprints), or why not.

    ``reach[b, r]``: moving block ``b`` changed region ``r`` (the footprint ``F_b``).
    ``abandoned``: the pilot stopped the discovery (nothing was found wrong; the
    structure would not pay).
    """

    independent: bool
    reason: str
    evaluations: int
    low: float = 0.0  # the verified range of relative steps
    high: float = 0.0
    reach: np.ndarray | None = None
    abandoned: bool = False


def verify_independence(blocks: Blocks, target: Target, *, steps: Sequence[float], seed: int,
                        describe: str, pilot: tuple[int, Pilot] | None = None
                        ) -> Independence:
    """Which regions does each block move? One evaluation per block and scale.

    For each relative scale ``s`` in ``steps`` and each block ``b``, every entry of
    ``b`` moves by ``± s · max(|θ_i|, 1) · z_i`` (``z`` standard normal, realized in the
    target's dtype; one evaluation each way, :data:`VERIFY_DIRECTIONS`); the regions
    whose contribution is not bit-identical join ``b``'s footprint. A region of another sample is a coupling of the batch (refused). The
    target is restored bit for bit afterwards, also when the function raises.

    ``pilot = (k, judge)``: after the first ``k`` probes, ``judge(reach)`` may abandon.

    >>> import numpy as np
    >>> x = np.ones((2, 3))
    >>> t = Target("x", "input", x, analytic=np.ones((2, 3)))
    >>> coupled = Blocks(0, np.repeat([0, 1], 3), lambda: (x - x.mean(axis=0)).sum(axis=1))
    >>> verify_independence(coupled, t, steps=(1e-3,), seed=0, describe="bn").independent
    False
    """
    n_blocks, n_regions = blocks.n_blocks, blocks.n_regions
    what = "sample" if blocks.tiles == 1 else "tile"
    spent = 0
    if n_blocks < MIN_SAMPLES:
        return Independence(False, f"fewer than 2 {what}s", 0)
    home, region_home = blocks.homes()
    flat = target.flat()
    order = np.argsort(blocks.owner, kind="stable")
    edges = np.r_[0, np.cumsum(blocks.sizes)]
    reach = np.zeros((n_blocks, n_regions), dtype=bool)
    probes = 0
    try:
        base = _contributions(blocks, n_regions, describe)
        again = _contributions(blocks, n_regions, describe)
        spent = 2
        if not np.array_equal(base, again):
            return Independence(False, f"its per-{what} contributions do not repeat bit for "
                                       f"bit at the same input", spent)
        rng = stream(seed, "independence")
        for s in steps:
            for b in range(n_blocks):
                members = order[edges[b]:edges[b + 1]]
                values = target.values[members]
                h = s * np.maximum(np.abs(values), 1.0) * rng.standard_normal(members.size)
                changed = np.zeros(n_regions, dtype=bool)
                for moved_to in target.realize(values, h)[:VERIFY_DIRECTIONS]:  # up, down
                    flat[members] = moved_to
                    moved = _contributions(blocks, n_regions, describe)
                    flat[members] = values
                    spent += 1
                    changed |= moved != base
                foreign = changed & (region_home != home[b])
                if foreign.any():
                    m = int(region_home[int(np.argmax(foreign))])
                    moving = (f"sample {home[b]}" if blocks.tiles == 1 else
                              f"tile {b} (of sample {home[b]})")
                    return Independence(
                        False, f"moving {moving} of {target.name} (relative step {s:.2g}) "
                               f"changed the output of sample {m}: the samples are coupled "
                               f"(batch statistics, as in batch norm in training mode, or "
                               f"another mixing across the batch)", spent, reach=reach)
                reach[b] |= changed
                probes += 1
                if pilot is not None and probes == pilot[0]:
                    reason = pilot[1](reach)
                    if reason:
                        return Independence(False, reason, spent, reach=reach, abandoned=True)
    except UserCodeError as err:  # a whole block moved may leave the function's domain
        return Independence(False, f"it raised while a whole {what} was moved: {err}",
                            spent + 1)
    finally:
        flat[:] = target.values
    return Independence(True, "", spent, low=min(steps), high=max(steps), reach=reach)


def _contributions(blocks: Blocks, n_regions: int, describe: str) -> np.ndarray:
    try:
        c = np.asarray(blocks.contributions(), dtype=np.float64)
    except Exception as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__} while its samples' "
                            f"independence was verified: {err}") from err
    if c.shape != (n_regions,):
        raise UserCodeError(f"per-region contributions of {describe} have shape {c.shape}, "
                            f"expected ({n_regions},)")
    return c


def colour_blocks(reach: np.ndarray) -> np.ndarray:
    """Greedy colouring, in block order: blocks whose footprints share a region differ.

    ``reach``: ``(n_blocks, n_regions)`` bool. Returns the colour of each block
    (``0, 1, ...``); a block of empty footprint takes colour 0.

    >>> reach = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], bool)
    >>> colour_blocks(reach).tolist()
    [0, 1, 2, 0]
    """
    n_blocks, n_regions = reach.shape
    used = np.zeros((n_regions, max(n_blocks, 1)), dtype=bool)  # colours seen per region
    colour = np.zeros(n_blocks, dtype=np.intp)
    for b in range(n_blocks):
        where = np.flatnonzero(reach[b])
        if where.size:
            taken = used[where].any(axis=0)
            c = int(np.argmin(taken))  # the first colour free in all of F_b
            colour[b] = c
            used[where, c] = True
    return colour


def passes(sizes: np.ndarray, colour: np.ndarray) -> int:
    """Evaluations (per side) of one grouped pass: Σ over colours of the largest block.

    >>> passes(np.array([4, 5, 4, 3]), np.array([0, 1, 2, 0]))
    13
    """
    if not sizes.size:
        return 0
    largest = np.zeros(int(colour.max()) + 1, dtype=np.int64)
    np.maximum.at(largest, colour, sizes)
    return int(largest.sum())


@dataclass(frozen=True)
class Grouping:
    """What a grouped evaluation needs (picklable: it travels to executor workers).

    Attributes
    ----------
    owner : ndarray of int, ``(target.size,)``
        Block of each entry.
    colour : ndarray of int, ``(n_blocks,)``
        Colour of each block (:func:`colour_blocks`).
    indptr, regions : ndarray of int
        Footprints in compressed rows: ``F_b = regions[indptr[b]:indptr[b + 1]]``.
    base : ndarray, ``(n_regions,)``
        The contributions at the point.
    """

    owner: np.ndarray
    colour: np.ndarray
    indptr: np.ndarray
    regions: np.ndarray
    base: np.ndarray

    @classmethod
    def of(cls, owner: np.ndarray, base: np.ndarray, colour: np.ndarray | None = None,
           reach: np.ndarray | None = None) -> Grouping:
        """From a dense footprint table (default: block ``b`` reaches region ``b`` only,
        every block one colour: the samples of a batch)."""
        n_blocks = int(owner.max()) + 1 if owner.size else 0
        if reach is None:
            reach = np.eye(n_blocks, base.size, dtype=bool)
        rows, cols = np.nonzero(reach)
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_blocks))]
        return cls(owner, np.zeros(n_blocks, np.intp) if colour is None else colour,
                   indptr.astype(np.intp), cols.astype(np.intp), base)

    def groups(self, idx: np.ndarray) -> np.ndarray:
        """Group of each entry ``idx[k]``, ``0 .. count - 1`` ordered by (colour, rank in
        its block): entries of one group lie in distinct blocks of one colour."""
        if not idx.size:
            return np.zeros(0, np.intp)
        block = self.owner[idx]
        rank = colors(block)
        key = self.colour[block] * (int(rank.max()) + 1) + rank
        return np.unique(key, return_inverse=True)[1].reshape(-1)

    def read(self, moved: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """``Σ_{r ∈ F_b} (moved_r − base_r)`` for each block ``b`` in ``blocks``."""
        diff = np.asarray(moved, dtype=np.float64) - self.base
        starts, stops = self.indptr[blocks], self.indptr[blocks + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        out = np.zeros(blocks.size)
        if total:
            # the concatenated footprints of ``blocks``, summed segment by segment
            offsets = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
            values = diff[self.regions[offsets + np.arange(total)]]
            full = lengths > 0
            seg = np.r_[0, np.cumsum(lengths[full])[:-1]]
            out[full] = np.add.reduceat(values, seg)
        return out


def colors(owner: np.ndarray) -> np.ndarray:
    """Rank of each item among the items of the same block (0, 1, ...).

    Items of one rank lie in distinct blocks, so one evaluation moves them all (when
    the blocks' footprints are disjoint: one colour, see :class:`Grouping`).

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
                     owner: np.ndarray | Grouping, base: np.ndarray | None, f0: float,
                     idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                     describe: str) -> tuple[np.ndarray, np.ndarray]:
    """φ with entry ``idx[k]`` at ``up[k]`` / ``down[k]``, read off its block's footprint.

    Two evaluations per group (:meth:`Grouping.groups`) instead of two per entry: the
    items of a group move together, and item ``k`` of block ``b`` reads
    ``f0 + Σ_{r ∈ F_b} (c_r(moved) − base_r)``. ``owner`` is a :class:`Grouping`, or
    (samples) the block of each entry with ``base`` the per-sample contributions.
    The target is restored bit for bit, also when the function raises.
    """
    grouping = owner if isinstance(owner, Grouping) else Grouping.of(
        owner, np.asarray(base, dtype=np.float64))
    flat = target.flat()
    blocks_of = grouping.owner[idx]
    group = grouping.groups(idx)
    f_up, f_down = np.empty(idx.size), np.empty(idx.size)
    old = target.values[idx]
    sign, members = "+", np.zeros(0, np.intp)
    try:
        for k in range(int(group.max()) + 1 if idx.size else 0):
            members = np.flatnonzero(group == k)
            where = idx[members]
            sign = "+"
            flat[where] = up[members]
            f_up[members] = f0 + grouping.read(contributions(), blocks_of[members])
            sign = "-"
            flat[where] = down[members]
            f_down[members] = f0 + grouping.read(contributions(), blocks_of[members])
            flat[where] = old[members]
    except Exception as err:
        first = int(idx[members[0]]) if members.size else 0
        raise UserCodeError(f"{describe} raised {type(err).__name__} with {target.name}"
                            f"{list(target.index(first))} and one entry of every other "
                            f"block of its group perturbed by {sign}h: {err}") from err
    finally:
        flat[idx] = old
    return f_up, f_down


@dataclass
class GroupedEvaluator:
    """The entry evaluator of a verified structured target (see :func:`evaluate_grouped`).

    Steps inside the verified range ``[low, high]`` are grouped; any other step is
    evaluated entry by entry with ``phi``. ``calls`` counts every evaluation made.
    ``grouping`` defaults to samples (block ``b`` reaches region ``b``, one colour).
    """

    phi: Objective
    blocks: Blocks
    base: np.ndarray
    f0: float
    low: float
    high: float
    describe: str
    calls: int = 0
    grouping: Grouping | None = None

    def __post_init__(self) -> None:
        if self.grouping is None:
            self.grouping = Grouping.of(self.blocks.owner, np.asarray(self.base, np.float64))

    def __call__(self, target: Target, idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                 step: float) -> tuple[np.ndarray, np.ndarray]:
        if not (self.low <= step <= self.high):
            self.calls += 2 * idx.size
            return evaluate_entries(self.phi, target, idx, up, down, self.describe)
        assert self.grouping is not None
        count = int(self.grouping.groups(idx).max()) + 1 if idx.size else 0
        self.calls += 2 * count
        return evaluate_grouped(self.blocks.contributions, target, self.grouping, None,
                                self.f0, idx, up, down, self.describe)


__all__ = ["PROBES_PER_BLOCK", "VERIFY_DIRECTIONS", "VERIFY_SCALES", "Blocks", "GroupedEvaluator", "Grouping", "Independence",
           "colors", "colour_blocks", "evaluate_grouped", "passes", "verify_independence"]
