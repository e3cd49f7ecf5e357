"""What the adapters observe for the diagnosis beyond the values (NumPy only).

Two kinds of facts travel to :class:`~gradcheck.diagnosis.evidence.RunEvidence` through
``Problem.facts``:

* :func:`integer_arrays` — the integer arrays the user's code holds or is given (an
  embedding's ids): rows of a parameter indexed more than once;
* :class:`ContributionProbe` — asked by a detector, the *share of every output entry* in
  the numeric gradient of a few entries of a checked tensor: ``G ⊙ ∂out/∂θₑ`` by central
  differences, two calls of the user's function per entry, so a backward that keeps only
  one window's share (``=`` where windows add) or drops the upstream gradient of one
  output can be named. It runs only when a detector asks (only for a failing check) and
  is closed when the check returns: a result kept by the user never calls their code.

>>> import numpy as np
>>> x = np.array([1.0, 2.0])
>>> probe = ContributionProbe({"x": (x, lambda: (x ** 2,))}, (np.ones(2),), step=1e-5)
>>> [np.round(s, 6).tolist() for s in probe("x", np.array([1]))]
[[[0.0, 4.0]]]
>>> probe.close(); probe("x", np.array([1])) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: Integer arrays larger than this are not copied for the diagnosis (ids of a batch are small).
MAX_INDEX_ENTRIES = 1 << 20
#: The probe returns at most this many share values (32 MiB of float64): for large outputs
#: it answers for the first entries only (``rows · Σ out_k.size`` stays below this).
MAX_PROBE_VALUES = 1 << 22


def integer_arrays(*owners: Any, depth: int = 2) -> tuple[np.ndarray, ...]:
    """Integer arrays the user's code holds (embedding ids and the like), copied.

    Read from the owners themselves when they are integer arrays (an argument of the
    check), an object's attributes, a function's closure and the globals it names (and
    the functions among them, to ``depth`` levels: ``check_jacobian`` wraps the user's
    ``f``), a bound method's object.

    >>> ids = np.array([0, 1, 1])
    >>> [a.tolist() for a in integer_arrays(lambda w: w[ids], np.array([2, 2]))]
    [[0, 1, 1], [2, 2]]
    """
    found: list[np.ndarray] = []
    for owner in owners:
        if isinstance(owner, np.ndarray):
            if owner.dtype.kind in "iu" and 0 < owner.size <= MAX_INDEX_ENTRIES:
                found.append(owner.copy())
            continue
        if callable(owner) and depth > 0:
            cells = [c.cell_contents for c in getattr(owner, "__closure__", None) or ()
                     if _filled(c)]
            code, names = getattr(owner, "__code__", None), getattr(owner, "__globals__", {})
            cells += [names[n] for n in getattr(code, "co_names", ()) if n in names and (
                isinstance(names[n], np.ndarray) or hasattr(names[n], "__code__"))]
            bound = getattr(owner, "__self__", None)
            found += integer_arrays(*cells, *([bound] if bound is not None else []),
                                    depth=depth - 1)
        if hasattr(owner, "__code__"):  # a plain function: its closure was its state
            continue
        for value in getattr(owner, "__dict__", {}).values():
            if (isinstance(value, np.ndarray) and value.dtype.kind in "iu"
                    and 0 < value.size <= MAX_INDEX_ENTRIES):
                found.append(value.copy())
    return tuple(found)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 -- an empty cell raises
    except ValueError:
        return False
    return True


Outputs = Callable[[], Sequence[Any]]


class ContributionProbe:
    """``probe(name, entries)``: each output entry's share in the numeric gradient.

    Parameters
    ----------
    moved : mapping of str to (ndarray, callable)
        Per checked tensor name, the *working* array the user's code reads (never the
        user's own) and a call returning the output leaves ``(out_1, ..., out_K)`` at the
        array's current values.
    upstream : tuple of ndarray
        The upstream gradient ``G_k`` of each output leaf (same shapes).
    step : float
        Relative central-difference step: entry ``e`` moves by ``step · max(|θₑ|, 1)``.

    Returns (when called)
    ---------------------
    tuple of ndarray or None
        One array per output leaf, shape ``(rows,) + out_k.shape``: ``G_k ⊙
        (out_k(θ + hₑ) − out_k(θ − hₑ)) / 2hₑ`` for the first ``rows`` entries (all of
        them unless that would exceed ``MAX_PROBE_VALUES`` values); summed over every
        leaf and output entry it is the numeric gradient of entry ``e``. None for an
        unknown tensor, after :meth:`close`, or when the user's code fails off the point.
    """

    def __init__(self, moved: Mapping[str, tuple[np.ndarray, Outputs]],
                 upstream: Sequence[np.ndarray], *, step: float) -> None:
        self._moved = dict(moved)
        self._upstream = tuple(np.asarray(g) for g in upstream)
        self._step = step
        self._open = True
        #: Calls of the user's code made so far (added to the result's evaluations).
        self.calls = 0

    def close(self) -> None:
        """No further calls of the user's code (the check has returned)."""
        self._open = False

    def __call__(self, name: str, entries: np.ndarray) -> tuple[np.ndarray, ...] | None:
        if not self._open or name not in self._moved:
            return None
        array, outputs = self._moved[name]
        flat = array.reshape(-1)
        if not np.shares_memory(flat, array):
            return None
        rows: list[list[np.ndarray]] = [[] for _ in self._upstream]
        per_entry = max(sum(g.size for g in self._upstream), 1)
        kept = np.asarray(entries, dtype=np.int64)[:MAX_PROBE_VALUES // per_entry]
        for e in kept:
            old = flat[e].copy()
            h = self._step * max(abs(float(old)), 1.0)
            up, down = flat.dtype.type(old + h), flat.dtype.type(old - h)
            realized = float(up) - float(down)  # the step the array really took
            try:
                with np.errstate(all="ignore"):
                    flat[e] = up
                    self.calls += 1
                    plus = [np.asarray(o, dtype=np.float64) for o in outputs()]
                    flat[e] = down
                    self.calls += 1
                    minus = [np.asarray(o, dtype=np.float64) for o in outputs()]
            except Exception:  # the user's code failed off the point: no shares, no claim
                return None
            finally:
                flat[e] = old
            if len(plus) != len(rows) or len(minus) != len(rows) or realized == 0.0:
                return None
            for k, g in enumerate(self._upstream):
                if plus[k].shape != g.shape or minus[k].shape != g.shape:
                    return None
                rows[k].append(g * (plus[k] - minus[k]) / realized)
        return tuple(np.stack(r) if r else np.zeros((0, *g.shape))
                     for r, g in zip(rows, self._upstream, strict=True))
