"""Block-wise passes over long flat arrays: scratch of one block, never a full-size temporary.

Fast mode moves every entry at once, so each full-size temporary of a probe costs as much
memory as the input. The probes therefore work block by block, and their sums come out
**bit for bit** as NumPy's ``np.sum`` of the whole array would give them:
:func:`pairwise_sum` splits the range exactly where NumPy's pairwise summation splits it
and hands the leaves to ``np.sum``, which sums each one as it would have inside the whole.

>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(300_001)
>>> total = pairwise_sum(x.size, lambda lo, hi: float(np.sum(x[lo:hi])), block=1024)
>>> total == float(np.sum(x))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: Entries per block: 2**16 float64 are 512 KiB of scratch (a few of them fit in L2), and
#: a block's Python overhead is negligible next to its arithmetic.
BLOCK = 1 << 16
#: NumPy's ``PW_BLOCKSIZE``: below this many entries ``np.sum`` adds without splitting.
_NUMPY_UNSPLIT = 128

Leaf = Callable[[int, int], float]


def block_size(block: int | None = None) -> int:
    """The block in force (``BLOCK`` unless given), never below NumPy's unsplit size."""
    return max(BLOCK if block is None else block, _NUMPY_UNSPLIT)


def spans(n: int, block: int | None = None) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` of consecutive blocks covering ``range(n)`` (for elementwise passes)."""
    step = block_size(block)
    for lo in range(0, n, step):
        yield lo, min(lo + step, n)


def pairwise_sum(n: int, leaf: Leaf, block: int | None = None) -> float:
    """Σ over ``range(n)`` in NumPy's pairwise order; ``leaf(lo, hi)`` sums one block.

    ``leaf`` must return ``float(np.sum(v))`` of the contiguous float64 values ``v`` of
    entries ``lo:hi``; the result then equals ``float(np.sum)`` of the whole array
    exactly (NumPy halves a range of over 128 entries at ``n//2`` rounded down to a
    multiple of 8, and sums each half the same way).

    Parameters
    ----------
    n : int
        Entries in all.
    leaf : callable(lo, hi) -> float
        Sum of entries ``lo:hi`` (at most ``block`` of them; called in increasing order).
    block : int, optional
        Largest leaf (default :data:`BLOCK`).
    """
    return pairwise_sums(n, lambda lo, hi: (leaf(lo, hi),), block)[0] if n > 0 else 0.0


def pairwise_sums(n: int, leaf: Callable[[int, int], tuple[float, ...]],
                  block: int | None = None) -> tuple[float, ...]:
    """Several sums in one pass: ``leaf(lo, hi)`` returns one block's sum of each, and
    every one of them is combined as :func:`pairwise_sum` combines its one sum.

    >>> x = np.arange(1000.0)
    >>> pairwise_sums(x.size, lambda lo, hi: (float(np.sum(x[lo:hi])), float(hi - lo)))
    (499500.0, 1000.0)
    """
    if n <= 0:
        raise ValueError(f"pairwise_sums needs n >= 1 entries, got n={n}")
    return _pairwise(0, n, leaf, block_size(block))


def _pairwise(lo: int, hi: int, leaf: Callable[[int, int], tuple[float, ...]],
              limit: int) -> tuple[float, ...]:
    # a module-level function, not a closure: a recursive closure is a reference cycle that
    # would keep the caller's full-size arrays alive until the garbage collector runs
    if hi - lo <= limit:
        return leaf(lo, hi)
    half = (hi - lo) // 2
    half -= half % 8
    left, right = _pairwise(lo, lo + half, leaf, limit), _pairwise(lo + half, hi, leaf, limit)
    return tuple(a + b for a, b in zip(left, right, strict=True))


def block_max(n: int, leaf: Leaf, block: int | None = None) -> float:
    """Largest of ``leaf(lo, hi)`` over the blocks of ``range(n)`` (0.0 when empty; NaN
    when any block's is NaN, as ``np.max`` of the whole)."""
    return float(np.max([leaf(lo, hi) for lo, hi in spans(n, block)], initial=0.0))


def rms_of(n: int, values: Callable[[int, int], np.ndarray],
           block: int | None = None) -> float:
    """:func:`gradcheck.engine.numeric.rms` of a virtual array given block by block.

    ``values(lo, hi)`` returns entries ``lo:hi`` as float64 (it is called twice per
    block: once for the largest magnitude, once for the mean square). The result equals
    ``rms`` of the whole array bit for bit.

    >>> from gradcheck.engine.numeric import rms
    >>> a = np.linspace(-3.0, 5.0, 1001)
    >>> rms_of(a.size, lambda lo, hi: a[lo:hi], block=128) == rms(a)
    True
    """
    top = block_max(n, lambda lo, hi: float(np.max(np.abs(values(lo, hi)), initial=0.0)),
                    block)
    if top == 0.0 or not np.isfinite(top):
        return top
    squares = pairwise_sum(n, lambda lo, hi: float(np.sum((np.abs(values(lo, hi)) / top) ** 2)),
                           block)
    return top * float(np.sqrt(np.float64(squares) / n))
