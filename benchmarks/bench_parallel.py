"""``executor=``: serial full mode against a process pool and a local Dask cluster, side by side.

For a cheap function (microseconds per evaluation) and an expensive one (milliseconds),
both checked by ``check_function`` in plain full mode (a 1-d input: no structured
grouping), it prints

- the serial time, the evaluations and the cost of one evaluation;
- what one task ships (the pickled function with the arrays it reads) and what a round
  trip of that payload costs on each executor (median of a few ``submit``s);
- the time on ``ProcessPoolExecutor(2)`` and on ``distributed.LocalCluster(n_workers=2,
  processes=True)`` through ``Client.get_executor()`` (when ``dask[distributed]`` is
  installed: ``pip install 'gradcheck[dask]'``), as serial/parallel ratios (> 1: faster),
  and whether the per-entry numbers are identical to the serial run;
- when it pays: one task carries a chunk of evaluations; the pool pays when the chunk's
  cost is well above the round trip (``chunk cost / round trip``).

Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_parallel.py
[--repeats 2] [--repeat 300]`` (not a test; nothing is asserted). Every time is the best
of ``--repeats`` runs; on a shared machine whose cores are busy no pool can pay.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

import gradcheck
from gradcheck.adapters.shipping import dumps_for_workers
from gradcheck.engine.tolerances import CHUNKS_PER_WORKER, MIN_CHUNK

SIZE = 96  # entries of the input: 2·SIZE evaluations and more in full mode
WORKERS = 2


@dataclass(frozen=True)
class Layered:
    """``y = tanh(A·…tanh(A·x))``, ``depth`` times, computed ``repeat`` times over.

    ``repeat`` is the cost knob of one evaluation: it changes the time, not the function
    (the same values, the same evaluations, the same verdict).
    """

    A: np.ndarray
    depth: int = 2
    repeat: int = 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for _ in range(self.repeat):
            y = x
            for _ in range(self.depth):
                y = np.tanh(self.A @ y)
        return y

    def vjp(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        ys = []
        for _ in range(self.depth):
            x = np.tanh(self.A @ x)
            ys.append(x)
        for y in reversed(ys):
            g = self.A.T @ (g * (1 - y * y))
        return g


def _best(repeats: int, run: Callable[[], Any]) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return out, best


def _round_trip(executor: Executor, payload: bytes, tries: int = 7) -> float:
    """Median seconds to ship ``payload`` to a worker and get an answer back."""
    executor.submit(len, b"").result()  # the workers are up before the timing
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        executor.submit(len, payload).result()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _executors(stack: ExitStack) -> dict[str, Executor]:
    found: dict[str, Executor] = {
        f"ProcessPoolExecutor({WORKERS})": stack.enter_context(ProcessPoolExecutor(WORKERS))}
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask[distributed] is not installed: no Dask cluster in this run "
              "(pip install 'gradcheck[dask]')")
        return found
    cluster = stack.enter_context(LocalCluster(n_workers=WORKERS, threads_per_worker=1,
                                               processes=True, dashboard_address=None))
    client = stack.enter_context(Client(cluster))
    found[f"Dask LocalCluster({WORKERS} processes)"] = client.get_executor()
    return found


def compare(label: str, fn: Layered, executors: dict[str, Executor], repeats: int) -> None:
    x = np.random.default_rng(0).standard_normal(SIZE) / 4

    def check(executor: Executor | None) -> gradcheck.CheckResult:
        return gradcheck.check_function(fn, x, vjp=fn.vjp, mode="full", executor=executor)

    serial, t_serial = _best(repeats, lambda: check(None))
    per_eval = t_serial / serial.evaluations
    payload = dumps_for_workers()((fn, x))
    # as ParallelEvaluator splits one pass over the SIZE entries (2 evaluations each)
    tasks = max(1, min(SIZE // MIN_CHUNK, CHUNKS_PER_WORKER * WORKERS))
    chunk = 2 * SIZE // tasks
    print(f"\n{label}: verdict {serial.verdict}, {serial.evaluations} evaluations in "
          f"{t_serial:.3f} s serially ({per_eval * 1e6:.0f} µs each); the first pass over the "
          f"entries ({2 * SIZE} evaluations) goes out in {tasks} tasks of {chunk} "
          f"evaluations ({chunk * per_eval * 1e3:.2f} ms of work, {len(payload) / 1e3:.1f} kB "
          f"shipped); calibration, state probes and the few re-judged entries stay serial "
          f"or fit in one task")
    for name, executor in executors.items():
        trip = _round_trip(executor, payload)
        result, seconds = _best(repeats, partial(check, executor))
        same = all(np.array_equal(a.numeric, b.numeric, equal_nan=True) for a, b in
                   zip(result.evidence.tensors, serial.evidence.tensors, strict=True))
        pays = chunk * per_eval / trip
        print(f"  {name:32} {seconds:7.3f} s  serial/parallel {t_serial / seconds:5.2f}×  "
              f"round trip {trip * 1e3:6.2f} ms  chunk cost / round trip {pays:7.1f}  "
              f"identical to serial: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=300,
                        help="times the expensive function recomputes its value (its cost)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    A = rng.standard_normal((SIZE, SIZE)) / np.sqrt(SIZE)
    try:
        import cloudpickle  # noqa: F401
        serializer = "cloudpickle"
    except ImportError:
        serializer = "pickle"
    print(f"{os.cpu_count()} cores; executor= ships with {serializer}")
    with ExitStack() as stack:
        executors = _executors(stack)
        compare("cheap", Layered(A), executors, args.repeats)
        compare(f"expensive (the same function computed {args.repeat} times over)",
                Layered(A, repeat=args.repeat), executors, args.repeats)
    print("\nIt pays when a task's chunk of evaluations costs well above its round trip "
          "(chunk cost / round trip >> 1, and cores to spare): a function of a few ms per "
          "evaluation and up; a cheap one is slower on any pool.")


if __name__ == "__main__":
    main()
