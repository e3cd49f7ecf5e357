"""The batch layout an adapter offers to structured full mode, cut into samples or tiles.

An adapter that can split its objective ``φ = Σ G·out`` elementwise offers a
:class:`Layout`: the structured input's shape, the checked outputs' shapes and the
elementwise products ``G ⊙ out`` (flat, float64). From it the engine cuts

* **samples** (:meth:`Layout.samples`): block ``n`` is sample ``n`` of the input, region
  ``n`` sample ``n`` of every output;
* **tiles** (:meth:`Layout.tiles`), for one output of shape ``(N, C', *spatial')`` and an
  input ``(N, C, *spatial)`` with as many spatial axes (channels first, as the zoo and
  PyTorch lay them out): every spatial axis of the input and of the output is divided
  into ``T`` equal chunks (sizes differing by at most one); an input block is
  (sample, input tile) with all channels, a region (sample, output tile).

Nothing about the footprints is assumed here: which regions a block reaches is
discovered by :func:`gradcheck.engine.structure.verify_independence`.

>>> import numpy as np
>>> x = np.zeros((2, 3, 8))
>>> layout = Layout(0, x.shape, ((2, 4, 8),), lambda: np.ones(64))
>>> blocks = layout.tiles(2)
>>> blocks.n_blocks, blocks.n_regions, blocks.contributions().tolist()
(4, 4, [16.0, 16.0, 16.0, 16.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from gradcheck.engine.safety import UserCodeError
from gradcheck.engine.structure import Blocks
from gradcheck.engine.tolerances import MAX_TILE_BLOCKS, MIN_TILE_WIDTH


@dataclass(frozen=True)
class Layout:
    """A batched target and the elementwise parts of φ over every checked output.

    Attributes
    ----------
    target : int
        Position of the structured input in ``Problem.targets``.
    input_shape : tuple of int
        ``(N, ...)``: the leading axis is the batch.
    output_shapes : tuple of tuple of int
        Each checked output's shape, ``(N, ...)``.
    products : callable, ``() -> ndarray``
        ``G ⊙ out`` of every output at the current target values, flattened in C order
        and concatenated in the order of ``output_shapes`` (float64).
    """

    target: int
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    products: Callable[[], np.ndarray]

    @property
    def batch(self) -> int:
        return int(self.input_shape[0])

    @property
    def spatial_axes(self) -> int:
        """Spatial axes tiles can cut (0 when this layout cannot be tiled)."""
        if len(self.output_shapes) != 1:
            return 0
        x, y = self.input_shape, self.output_shapes[0]
        if len(x) != len(y) or len(x) < 3 or x[0] != y[0] or min(x + y) < 1:
            return 0
        return len(x) - 2

    def samples(self) -> Blocks:
        """One block per sample of the input, one region per sample of the outputs."""
        n = self.batch
        owner = np.repeat(np.arange(n), math.prod(self.input_shape[1:]))
        if len(self.output_shapes) == 1:  # each sample's products are contiguous
            size = math.prod(self.output_shapes[0])
            return Blocks(self.target, owner, partial(sample_sums, self.products, n, size))
        region = np.concatenate([np.repeat(np.arange(n), math.prod(shape[1:]))
                                 for shape in self.output_shapes])
        return Blocks(self.target, owner, partial(region_sums, self.products, _rows(region, n),
                                                      region.size))

    def tile_counts(self) -> list[int]:
        """The ``T ≥ 2`` the shapes allow: every input tile ``MIN_TILE_WIDTH`` wide or
        more, no empty output tile, at most ``MAX_TILE_BLOCKS`` tiles in all."""
        d = self.spatial_axes
        if not d:
            return []
        x_space, y_space = self.input_shape[2:], self.output_shapes[0][2:]
        top = min(min(length // MIN_TILE_WIDTH for length in x_space), min(y_space))
        return [t for t in range(2, top + 1) if self.batch * t ** d <= MAX_TILE_BLOCKS]

    def largest_tile(self, tiles: int) -> int:
        """Entries of the largest input tile (all channels) at ``tiles`` chunks per axis."""
        return int(self.input_shape[1]) * math.prod(-(-length // tiles)
                                                   for length in self.input_shape[2:])

    def tiles(self, tiles: int) -> Blocks:
        """(sample, tile) blocks of the input and regions of the output, ``tiles`` chunks
        per spatial axis (one of :meth:`tile_counts`)."""
        if tiles not in self.tile_counts():
            raise ValueError(f"cannot cut input {self.input_shape} / output "
                             f"{self.output_shapes} into {tiles} tiles per spatial axis "
                             f"(allowed: {self.tile_counts()})")
        per_sample = tiles ** self.spatial_axes
        n_regions = self.batch * per_sample
        home = np.repeat(np.arange(self.batch), per_sample)
        region = _tile_ids(self.output_shapes[0], tiles)
        return Blocks(self.target, _tile_ids(self.input_shape, tiles),
                      partial(region_sums, self.products, _rows(region, n_regions), region.size),
                      home, home.copy(), tiles)


def _tile_ids(shape: tuple[int, ...], tiles: int) -> np.ndarray:
    """Flat (C order) ``sample · T^d + tile`` of every entry of an ``(N, C, *spatial)``."""
    n, channels, *space = shape
    d = len(space)
    ids = np.zeros(space, dtype=np.intp)
    for k, length in enumerate(space):
        chunk = (np.arange(length) * tiles) // length  # equal division, sizes ± 1
        ids = ids * tiles + chunk.reshape([-1 if j == k else 1 for j in range(d)])
    sample = np.arange(n).reshape((n,) + (1,) * (d + 1)) * tiles ** d
    return np.broadcast_to(sample + ids[None, None], (n, channels, *space)).ravel()


def _rows(region: np.ndarray, n_regions: int) -> np.ndarray:
    """``(n_regions, width)`` flat indices of each region's entries, padded with the index
    one past the end (a zero appended to the products): a row-wise pairwise sum."""
    counts = np.bincount(region, minlength=n_regions)
    order = np.argsort(region, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rows = np.full((n_regions, int(counts.max(initial=0))), region.size, dtype=np.intp)
    sorted_region = region[order]
    rows[sorted_region, np.arange(region.size) - starts[sorted_region]] = order
    return rows


def sample_sums(products: Callable[[], np.ndarray], n: int, size: int) -> np.ndarray:
    """``c[k] = Σ products()[sample k]`` for one output of ``size`` entries, ``n`` samples
    (pairwise, as :func:`region_sums` of contiguous rows, without the gather)."""
    p = np.asarray(products(), dtype=np.float64).reshape(-1)
    if p.size != size:
        raise UserCodeError(f"the output's elementwise products have {p.size} entries, "
                            f"expected {size}")
    return np.sum(p.reshape(n, -1), axis=1)


def region_sums(products: Callable[[], np.ndarray], rows: np.ndarray, size: int
                ) -> np.ndarray:
    """``c[r] = Σ products()[rows[r]]`` (NumPy's pairwise sum along each row); the
    products must have ``size`` entries.

    For samples of equal size the rows are the contiguous samples: the sum equals
    ``np.sum(p.reshape(N, -1), axis=1)`` bit for bit.
    """
    p = np.asarray(products(), dtype=np.float64).reshape(-1)
    if p.size != size:
        raise UserCodeError(f"the outputs' elementwise products have {p.size} entries, "
                            f"expected {size}")
    return np.append(p, 0.0)[rows].sum(axis=1)


__all__ = ["Layout", "region_sums", "sample_sums"]
