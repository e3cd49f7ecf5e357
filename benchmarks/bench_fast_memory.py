"""Peak memory of a fast-mode ``check_grad``, as a multiple of the input.

Each size runs in a fresh subprocess (peak RSS is a high-water mark of the whole
process): ``x`` (float64) is built, the resident set is read, then
``check_grad(f, grad, x, mode="fast")`` runs once. Reported per size:

* ``rss×``: (peak RSS during the check − RSS before it) / ``x.nbytes``, from
  ``resource.getrusage`` (Linux reports kilobytes) — everything, including the user's
  ``f`` and ``grad`` temporaries and the claimed gradient the check holds;
* ``traced×``: tracemalloc's peak of Python/NumPy allocations during the check, over
  ``x.nbytes`` (a second run under tracing; NumPy reports its buffers to tracemalloc);
* ``with x×``: ``rss× + 1``, the user's own ``x`` counted too (input + claimed gradient
  alone are 2× in this accounting).

The stated figure (``engine/fast.py``, ``docs/ARCHITECTURE.md``) is ``rss×`` at 1e7.

``f(x) = Σ sin(x)``, ``grad(x) = cos(x)`` (one temporary of the input's size each).
Run: ``python benchmarks/bench_fast_memory.py [SIZES...]`` (default ``1e6 1e7``); add
``--wrong`` to plant one wrong entry (fast mode localizes it).
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
from gradcheck import check_grad

n, wrong, traced = int(float(sys.argv[1])), sys.argv[2] == "1", sys.argv[3] == "1"
x = np.linspace(-1.0, 1.0, n)
def f(x):
    return float(np.sum(np.sin(x)))
def grad(x):
    g = np.cos(x)
    if wrong:
        g[n // 3] *= 1.5
    return g
def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()
before = rss_now()
if traced:
    tracemalloc.start()
result = check_grad(f, grad, x, mode="fast")
peak_traced = tracemalloc.get_traced_memory()[1] if traced else 0
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"n": n, "ok": bool(result.ok), "bytes": x.nbytes, "before": before,
                  "peak_rss": peak_rss, "peak_traced": peak_traced,
                  "n_wrong": [t.n_wrong for t in result.tensors]}))
"""


def measure(n: float, wrong: bool, traced: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(int(wrong)),
                          str(int(traced))], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    wrong = "--wrong" in argv
    sizes = [float(a) for a in argv if not a.startswith("--")] or [1e6, 1e7]
    print(f"{'entries':>10} {'input MB':>9} {'peak MB':>9} {'rss×':>6} {'traced×':>8} "
          f"{'with x×':>8} {'ok':>5}  n_wrong")
    for n in sizes:
        plain = measure(n, wrong, traced=False)
        traced = measure(n, wrong, traced=True)
        b = plain["bytes"]
        rss = (plain["peak_rss"] - plain["before"]) / b
        print(f"{plain['n']:>10.0e} {b / 1e6:>9.0f} {(plain['peak_rss'] - plain['before']) / 1e6:>9.0f} "
              f"{rss:>6.1f} {traced['peak_traced'] / b:>8.1f} {rss + 1:>8.1f} {plain['ok']!s:>5}  "
              f"{plain['n_wrong']}")


if __name__ == "__main__":
    main(sys.argv[1:])
