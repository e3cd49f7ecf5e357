"""Which structure full mode uses for a batched input: tiles, samples, or none.

Everything is decided by **evaluations** (the same currency the auto rule counts):

* plain full mode costs ``2·D`` for an input of ``D`` entries;
* samples cost ``6·N + 2`` verification (``PROBES_PER_BLOCK``: 3 scales, ±) evaluations, then ``2·D_n`` (``D_n`` the
  entries of one sample);
* tiles (``T`` chunks per spatial axis, ``B = N·T^d`` blocks) cost ``6·B + 2``, then
  ``2·P`` with ``P = Σ_colours (largest block of the colour)``.

``T`` is chosen from the shapes alone, assuming a tile reaches its own output tile and
its neighbours (``TILE_HALO_COLOURS`` colours per axis); tiles are *tried* only if even a
footprint of one tile (one colour) would beat the alternative. The first sample's tiles
are probed first (the pilot); if their discovered footprints predict no gain, the
discovery stops (a few evaluations lost) and the samples are verified instead. After the
whole discovery the grouping with fewer passes wins: the tiles' own colouring, or the
samples (each sample's footprint the union of its tiles': the samples' independence is
what the tile probes verified, block by smaller block). A coupling across samples
falls back to plain full mode.

>>> import numpy as np
>>> from gradcheck.engine.numeric import Target
>>> from gradcheck.engine.tiles import Layout
>>> x = np.random.default_rng(0).standard_normal((2, 1, 64))
>>> y_of = lambda: np.tanh(x)  # elementwise: every tile reaches its own tile only
>>> layout = Layout(0, x.shape, (x.shape,), lambda: np.ravel(y_of()))
>>> t = Target("x", "input", x, 1 - np.tanh(x) ** 2)
>>> plan_structure(layout, [t], step=1e-5, seed=0, describe="tanh", auto=False).kind
'tiles'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.engine.numeric import SHRINK_PASSES, SHRINK_RATIO, Target, min_relative_step
from gradcheck.engine.structure import (
    PROBES_PER_BLOCK,
    VERIFY_DIRECTIONS,
    VERIFY_SCALES,
    Blocks,
    Independence,
    colour_blocks,
    passes,
    verify_independence,
)
from gradcheck.engine.tiles import Layout
from gradcheck.engine.tolerances import (
    AUTO_FULL_MAX_ENTRIES,
    MAX_RELATIVE_STEP,
    MIN_SAMPLES,
    RAISE_RATIO,
    STRUCTURE_RAISES,
    TILE_HALO_COLOURS,
    Precision,
)


@dataclass(frozen=True)
class Structure:
    """Structured full mode's plan: the verified blocks, their colours and footprints.

    ``kind``: ``"tiles"`` / ``"samples"`` (used), ``"none"`` (tried, refused: plain
    full mode), ``""`` (not tried). ``passes``: evaluations per side of one grouped pass
    over the target (what the auto rule counts it as).
    """

    kind: str = ""
    blocks: Blocks | None = None
    colour: np.ndarray | None = None
    reach: np.ndarray | None = None
    low: float = 0.0
    high: float = 0.0
    evaluations: int = 0
    passes: int = 0
    notes: tuple[str, ...] = ()

    @property
    def used(self) -> bool:
        return self.kind in ("tiles", "samples")

    def cost_entries(self, targets: list[Target]) -> int:
        """Entries counted by the auto rule (the structured target as one grouped pass)."""
        total = sum(t.size for t in targets)
        if not self.used:
            return total
        assert self.blocks is not None
        return total - targets[self.blocks.target].size + self.passes


def verified_scales(target: Target, step: float, precision: Precision | None = None
                    ) -> tuple[float, float, float]:
    """The smallest step a shrinking probe reaches (``precision``: the row φ is judged
    at, as for :func:`~gradcheck.engine.numeric.min_relative_step`), the first step, and
    the largest step the grouped evaluation is trusted at (``STRUCTURE_RAISES`` raises)."""
    low = max(min_relative_step(target, precision), step / SHRINK_RATIO ** SHRINK_PASSES / 2)
    high = min(step * RAISE_RATIO ** STRUCTURE_RAISES, MAX_RELATIVE_STEP)
    scales = (low, step, high)
    assert len(scales) == VERIFY_SCALES
    return scales


def _tile_count(layout: Layout, auto: bool) -> int | None:
    """``T`` minimizing the predicted cost with a one-tile halo (None: no tiling)."""
    d = layout.spatial_axes
    best, chosen = np.inf, None
    for t in layout.tile_counts():
        blocks = layout.batch * t ** d
        if auto and PROBES_PER_BLOCK * blocks > 2 * AUTO_FULL_MAX_ENTRIES:
            continue  # in auto mode the verification stays within full mode's budget
        cost = (PROBES_PER_BLOCK * blocks + 2
                + 2 * min(TILE_HALO_COLOURS, t) ** d * layout.largest_tile(t))
        if cost < best:
            best, chosen = cost, t
    return chosen


def plan_structure(layout: Layout, targets: list[Target], *, step: float, seed: int,
                   describe: str, auto: bool,
                   precision: Precision | None = None) -> Structure:
    """Verify and choose the structure of ``targets[layout.target]`` (see the module).

    ``auto``: ``mode="auto"``; a structure is verified only where it can still make the
    auto rule choose full mode.
    """
    target = targets[layout.target]
    others = sum(t.size for t in targets) - target.size
    scales = verified_scales(target, step, precision)
    samples = layout.samples() if layout.batch >= MIN_SAMPLES else None
    sample_passes = samples.largest if samples is not None else target.size
    sample_cost = PROBES_PER_BLOCK * layout.batch + 2 + 2 * sample_passes
    # samples are verified only where it pays (a batch of scalars gains nothing)
    samples_pay = samples is not None and sample_cost < 2 * target.size and not (
        auto and others + sample_passes > AUTO_FULL_MAX_ENTRIES)
    alternative = sample_cost if samples_pay else 2 * target.size
    tiles = _tile_count(layout, auto)
    spent, notes = 0, []
    if tiles is not None:
        blocks = layout.tiles(tiles)
        best_case = (PROBES_PER_BLOCK * blocks.n_blocks + 2 + 2 * layout.largest_tile(tiles))
        if best_case < alternative and not (
                auto and others + layout.largest_tile(tiles) > AUTO_FULL_MAX_ENTRIES):
            found = verify_independence(
                blocks, target, steps=scales, seed=seed, describe=describe,
                pilot=(blocks.n_blocks // layout.batch, _pilot(blocks, layout, alternative)))
            spent = found.evaluations
            if found.independent:
                return _tiled(blocks, found, samples is not None, target, spent)
            if not found.abandoned:
                return Structure("none", blocks, evaluations=spent, notes=(
                    f"structured full mode not used for {target.name}: {found.reason}; it "
                    f"is checked without that structure",))
            notes.append(f"locality not used for {target.name}: {found.reason}")
    if not samples_pay:
        return Structure("none" if spent else "", evaluations=spent, notes=tuple(notes))
    assert samples is not None
    found = verify_independence(samples, target, steps=scales, seed=seed, describe=describe)
    spent += found.evaluations
    if not found.independent:
        return Structure("none", samples, evaluations=spent, notes=(*notes, (
            f"structured full mode not used for {target.name}: {found.reason}; it is "
            f"checked without that structure")))
    note = (f"structured full mode: the {samples.n_blocks} samples of {target.name} are "
            f"independent (verified: moving each sample at relative steps {scales[0]:.2g}, "
            f"{scales[1]:.2g} and {scales[2]:.2g} left every other sample's output "
            f"bit-identical, {found.evaluations} evaluations); one entry of every sample is "
            f"differenced per evaluation")
    return Structure("samples", samples, np.zeros(samples.n_blocks, np.intp), None, found.low,
                     found.high, spent, sample_passes, (*notes, note))


def _pilot(blocks: Blocks, layout: Layout, alternative: float
           ) -> Callable[[np.ndarray], str]:
    """After the first sample's tiles (first scale): abandon unless its footprints,
    repeated in every sample, predict fewer evaluations than ``alternative``."""
    pilot = blocks.n_blocks // layout.batch

    def judge(reach: np.ndarray) -> str:
        first = reach[:pilot, :pilot]  # the first sample's tiles and output tiles
        colour = colour_blocks(first)
        predicted = (PROBES_PER_BLOCK * blocks.n_blocks - VERIFY_DIRECTIONS * pilot
                     + 2 * passes(blocks.sizes[:pilot], colour))
        if predicted < alternative:
            return ""
        reached = int(first.sum(axis=1).max(initial=0))
        everywhere = bool(first.all())
        return (f"moving one input tile ({blocks.tiles} per spatial axis) of sample 0 "
                f"changed up to {reached} of its {pilot} output tiles"
                + (" (every tile reaches every output tile: not local)" if everywhere else "")
                + f"; grouping by tiles would need {_colours(colour)} and about "
                f"{predicted} more evaluations, against {int(alternative)} without tiles")

    return judge


def _colours(colour: np.ndarray) -> str:
    count = int(colour.max()) + 1 if colour.size else 0
    return f"{count} colour{'' if count == 1 else 's'}"


def _tiled(blocks: Blocks, found: Independence, have_samples: bool, target: Target,
           spent: int) -> Structure:
    """The discovered footprints: tiles if their colouring needs fewer passes than samples."""
    assert found.reach is not None
    colour = colour_blocks(found.reach)
    tile_passes = passes(blocks.sizes, colour)
    home, _ = blocks.homes()
    merged = blocks.by_sample()
    sample_passes = merged.largest if have_samples else target.size
    scales = f"{found.low:.2g} to {found.high:.2g}"
    if tile_passes < sample_passes:
        reached = found.reach.sum(axis=1)
        return Structure("tiles", blocks, colour, found.reach, found.low, found.high, spent,
                         tile_passes, (
            f"structured full mode: the {blocks.n_blocks} tiles of {target.name} "
            f"({blocks.tiles} per spatial axis per sample) have verified footprints "
            f"(moving each tile at relative steps {scales} changed at most "
            f"{int(reached.max(initial=0))} of {blocks.n_regions // (int(home.max()) + 1)} "
            f"output tiles of its own sample and nothing else, {spent} evaluations); "
            f"{_colours(colour)} of tiles with disjoint footprints: "
            f"{tile_passes} evaluations per side of a pass instead of {sample_passes}",))
    if not have_samples:
        return Structure("none", blocks, evaluations=spent, notes=(
            f"locality not used for {target.name}: its tiles' footprints overlap too much "
            f"to pay; it is checked without structure",))
    reach = np.zeros((merged.n_blocks, blocks.n_regions), dtype=bool)
    np.logical_or.at(reach, home, found.reach)
    return Structure("samples", merged, np.zeros(merged.n_blocks, np.intp), reach,
                     found.low, found.high, spent, sample_passes, (
        f"structured full mode: the samples of {target.name} are independent (verified "
        f"tile by tile at relative steps {scales}, {spent} evaluations); the tiles' "
        f"footprints overlap too much to pay ({tile_passes} evaluations per side of a "
        f"pass against {sample_passes}): one entry of every sample is differenced per "
        f"evaluation",))


__all__ = ["Structure", "plan_structure", "verified_scales"]
