"""Full mode's independent evaluations spread over a ``concurrent.futures.Executor``.

The user's objective (and, in structured full mode, its per-sample contributions) is
serialized **together with the arrays it reads** (the checked targets), so that the
copies unpickled in a worker still share them: perturbing a worker's copy of ``x`` moves
what that worker's ``φ`` reads. Each task carries one chunk of entries (never one
evaluation per task) and returns exactly the numbers the serial loop would have
computed (the same code, :func:`~gradcheck.engine.numeric.evaluate_entries` or
:func:`~gradcheck.engine.structure.evaluate_grouped`, on the same values). The user's
own arrays never leave the calling process and are never touched by a worker.

Two guards keep "identical to the serial run" true rather than hoped for: a worker
first evaluates ``φ`` at the point and refuses to go on unless it reproduces ``f0`` bit
for bit (a function depending on state that did not travel), and the first chunk of
every evaluator is compared, bit for bit, with a serial evaluation of its first entry.

When it pays: each task ships the serialized function (``len(payload)`` bytes) and
costs a round trip; a chunk of ``k`` evaluations pays when ``k`` times the cost of one
evaluation is well above that (see ``benchmarks/bench_structured.py``).

>>> import math, pickle
>>> from concurrent.futures import ThreadPoolExecutor
>>> from functools import partial
>>> from gradcheck.engine.numeric import Target
>>> x = np.array([0.5, -1.0, 2.0])
>>> t = Target("x", "input", x, analytic=np.ones(3))
>>> phi = partial(math.fsum, x)  # picklable by plain pickle: it reads x, shipped with it
>>> with ThreadPoolExecutor(2) as pool:
...     ev = ParallelEvaluator(pool, ship(pickle.dumps, phi, None, [x]), 0, phi(), phi,
...                            "fsum")
...     up, down = ev(t, np.arange(3), x + 1e-3, x - 1e-3, 1e-3)
>>> bool(np.array_equal(up, [math.fsum(x + 1e-3 * (np.arange(3) == i)) for i in range(3)]))
True
"""

from __future__ import annotations

import itertools
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.engine.numeric import Objective, Target, evaluate_entries
from gradcheck.engine.safety import CheckInputError, UserCodeError
from gradcheck.engine.structure import Blocks, Grouping, evaluate_grouped
from gradcheck.engine.tolerances import CHUNKS_PER_WORKER, MIN_CHUNK

Dumps = Callable[[Any], bytes]

_TOKENS = itertools.count()
#: The payload a worker unpickled last (token -> objects), per thread: a worker reuses
#: it across the chunks of one check instead of unpickling it per task, and threads of
#: one process (a thread pool, a Dask worker with several threads) never share the
#: copy they perturb.
_LOCAL = threading.local()


@dataclass(frozen=True)
class Payload:
    """The serialized ``(φ, contributions, target arrays)`` and a token naming it."""

    token: str
    data: bytes


def ship(dumps: Dumps, phi: Objective, contributions: Callable[[], np.ndarray] | None,
         arrays: Sequence[np.ndarray], describe: str = "the function") -> Payload:
    """Serialize ``φ`` with the arrays it reads (one pickle: shared references survive).

    Raises :class:`CheckInputError` naming the function (``describe``) when it, or
    anything it reads (an object it calls, a closure's variable), cannot be serialized.
    """
    try:
        data = dumps((phi, contributions, list(arrays)))
    except Exception as err:
        raise CheckInputError(
            f"executor= ships {describe}, with everything it reads, to the executor's "
            f"workers, but it cannot be pickled ({type(err).__name__}: {err}); install "
            f"cloudpickle (pip install 'gradcheck[parallel]'), which pickles lambdas, "
            f"closures and classes defined in __main__ or a test file; give objects holding "
            f"locks, files or sockets a __reduce__; or pass executor=None") from err
    return Payload(f"{os.getpid()}-{next(_TOKENS)}", data)


def _unpacked(payload: Payload, f0: float, describe: str) -> tuple[tuple[Any, ...], int]:
    """The worker's copy of φ, its contributions and arrays; and the calls made (1 when
    it was unpacked here: φ at the point must reproduce ``f0``)."""
    cache: dict[str, tuple[Any, ...]] = getattr(_LOCAL, "cache", None) or {}
    _LOCAL.cache = cache
    found = cache.get(payload.token)
    if found is not None:
        return found, 0
    phi, contributions, arrays = pickle.loads(payload.data)
    value = phi()
    if value != f0:
        raise UserCodeError(
            f"{describe} gives {value!r} at the point in a worker process, not {f0!r} "
            f"as in the calling process: it depends on state that did not travel with "
            f"it (a global, a file, a random generator); run without executor=")
    cache.clear()  # one check at a time per worker thread: bound the memory held
    found = cache[payload.token] = (phi, contributions, arrays)
    return found, 1


def remote_entries(payload: Payload, f0: float, position: int, shape: tuple[int, ...],
                   storage: str, idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                   describe: str, grouped: Grouping | None
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """In a worker: the serial evaluation of one chunk on the worker's copy of the target.

    ``grouped`` selects :func:`evaluate_grouped` (structured full mode: samples or tiles).
    Returns φ up and down per entry, and the extra calls made (unpacking checks ``f0``).
    """
    (phi, contributions, arrays), extra = _unpacked(payload, f0, describe)
    array = arrays[position]
    if array.shape != shape:
        raise UserCodeError(f"the copy of a target shipped to a worker has shape "
                            f"{array.shape}, not {shape}")
    target = Target("x", "input", array, np.zeros(shape), storage=np.dtype(storage))
    if grouped is None:
        return (*evaluate_entries(phi, target, idx, up, down, describe), extra)
    return (*evaluate_grouped(contributions, target, grouped, None, f0, idx, up, down,
                              describe), extra)


@dataclass
class ParallelEvaluator:
    """An entry evaluator (:data:`~gradcheck.engine.numeric.EntryEvaluator`) on an executor.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        A process pool, ``dask.distributed.Client.get_executor()``, any ``submit``-er.
    payload : Payload
        From :func:`ship` (φ with every target array).
    position : int
        Position of the target this evaluator differences in the shipped arrays.
    f0 : float
        φ at the point (workers must reproduce it).
    phi : callable
        The local φ (the serial cross-check of the first chunk).
    describe : str
        Names the function in errors.
    grouped : (Blocks, Grouping, low, high), optional
        Structured full mode: group entries of blocks of one colour for steps in
        ``[low, high]`` (as :class:`~gradcheck.engine.structure.GroupedEvaluator`).
    """

    executor: Executor
    payload: Payload
    position: int
    f0: float
    phi: Objective
    describe: str
    grouped: tuple[Blocks, Grouping, float, float] | None = None
    calls: int = 0
    crosschecked: bool = False

    def __call__(self, target: Target, idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                 step: float) -> tuple[np.ndarray, np.ndarray]:
        group = None
        if self.grouped is not None and self.grouped[2] <= step <= self.grouped[3]:
            group = self.grouped[1]
        # a chunk holds whole groups (consecutive in (colour, rank) order), so a worker
        # groups exactly as the serial loop does
        unit = group.groups(idx) if group is not None else np.arange(idx.size)
        units = int(unit.max()) + 1 if idx.size else 0
        self.calls += 2 * units
        if not self.crosschecked and idx.size:
            self._crosscheck(target, idx[:1], up[:1], down[:1], group)
        n_chunks = max(1, min(units // MIN_CHUNK, CHUNKS_PER_WORKER * _workers(self.executor)))
        edges = np.linspace(0, units, n_chunks + 1).round().astype(int)
        futures = []
        for lo, hi in itertools.pairwise(edges):
            members = np.flatnonzero((unit >= lo) & (unit < hi))
            futures.append((members, self.executor.submit(
                remote_entries, self.payload, self.f0, self.position, target.shape,
                np.dtype(target.storage).str, idx[members], up[members], down[members],
                self.describe, group)))
        f_up, f_down = np.empty(idx.size), np.empty(idx.size)
        for members, future in futures:
            f_up[members], f_down[members], extra = future.result()
            self.calls += extra
        return f_up, f_down

    def _crosscheck(self, target: Target, idx: np.ndarray, up: np.ndarray, down: np.ndarray,
                    group: Grouping | None) -> None:
        """The first entry, serially here and in a worker: bit-identical, or refuse."""
        if group is None:
            here = evaluate_entries(self.phi, target, idx, up, down, self.describe)
        else:
            assert self.grouped is not None
            here = evaluate_grouped(self.grouped[0].contributions, target, group, None,
                                    self.f0, idx, up, down, self.describe)
        *there, extra = self.executor.submit(
            remote_entries, self.payload, self.f0, self.position, target.shape,
            np.dtype(target.storage).str, idx, up, down, self.describe, group).result()
        self.calls += extra
        if not all(np.array_equal(a, b) for a, b in zip(here, there, strict=True)):
            raise UserCodeError(
                f"{self.describe} gives other values in a worker process than here for the "
                f"same perturbed input ({here[0][0]!r} against {there[0][0]!r}): the copy "
                f"shipped to the worker does not read the checked array (a view of another "
                f"array?) or depends on state that did not travel; run without executor=")
        self.crosschecked = True
        self.calls += 4  # the first entry up and down, here and in the worker


def _workers(executor: Executor) -> int:
    """Workers of a pool (``max_workers``), else the machine's cores."""
    count = getattr(executor, "_max_workers", None)
    return int(count) if isinstance(count, int) and count > 0 else (os.cpu_count() or 1)


__all__ = ["ParallelEvaluator", "Payload", "remote_entries", "ship"]
