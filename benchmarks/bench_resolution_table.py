"""Resolution table: the smallest relative error caught, per dtype, mode and pattern.

For smooth functions of 32 entries (a weighted sine, an exponential, a log-sum-exp, the
tanh of a dot product, log1p of squares; float64 and float32) the gradient is scaled by
``1 + c`` in **every entry**, or **one entry** (a random one) is moved by ``c`` times
``max(|a_i|, RMS of the gradient)`` (the checker's own meaning of a relative error, as in
``rules_out_rel``: an entry far below the RMS is judged against the tensor's scale), for
``c`` on a grid from 1e-11 to 0.5 (both signs, alternating over the problems). A
problem's error is *caught* when the verdict is ``"wrong"`` (``"inconclusive"`` is not a
catch). The table prints, for full and fast mode, the smallest ``c`` from which on every
problem is caught at every larger grid value, with the evaluations per entry that correct
code pays and that the check spent on the caught errors at that size. Each row is
measured twice in the same run: with the whole-tensor test of
``gradcheck.engine.systematic`` and with it switched off (the per-entry rule alone, as
before), side by side.

Run: ``python benchmarks/bench_resolution_table.py`` (about a minute on one core).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

import gradcheck
import gradcheck.engine.runner as runner
from gradcheck.engine.systematic import Systematic

N = 32
SEEDS = (0, 1)
GRID = [m * 10.0 ** k for k in range(-11, 0) for m in (1.0, 3.0)] + [0.5]

Fn = Callable[[np.ndarray, np.ndarray], np.ndarray]
FUNCTIONS: dict[str, tuple[Fn, Fn]] = {
    "weighted sin": (lambda x, w: np.dot(w, np.sin(x)), lambda x, w: w * np.cos(x)),
    "exp": (lambda x, w: np.sum(np.exp(0.3 * x) * w), lambda x, w: 0.3 * w * np.exp(0.3 * x)),
    "log-sum-exp": (lambda x, w: np.log(np.sum(np.exp(w * x))),
                    lambda x, w: w * np.exp(w * x) / np.sum(np.exp(w * x))),
    "tanh of a dot": (lambda x, w: np.tanh(np.dot(w, x) / np.sqrt(x.size)),
                      lambda x, w: (1 - np.tanh(np.dot(w, x) / np.sqrt(x.size)) ** 2)
                      * w / np.sqrt(x.size)),
    "log1p of squares": (lambda x, w: np.sum(w * np.log1p(x ** 2)),
                         lambda x, w: w * 2 * x / (1 + x ** 2)),
}


@contextmanager
def per_entry_rule_only() -> Iterator[None]:
    """The whole-tensor test switched off: the per-entry rule alone (as before)."""
    saved = runner.find_systematic
    runner.find_systematic = lambda *args, **kwargs: Systematic()
    try:
        yield
    finally:
        runner.find_systematic = saved


def _problems(dtype: type) -> list[tuple[Callable, Callable, np.ndarray, int]]:
    out = []
    for k, (f, grad) in enumerate(FUNCTIONS.values()):
        for seed in SEEDS:
            rng = np.random.default_rng([k, seed])
            x = rng.uniform(-2, 2, N).astype(dtype)
            w = (rng.uniform(0.5, 1.5, N) * rng.choice([-1.0, 1.0], N)).astype(dtype)
            entry = int(rng.integers(N))

            def fn(z: np.ndarray, f: Fn = f, w: np.ndarray = w) -> float:
                return dtype(f(z.astype(dtype), w))

            def gr(z: np.ndarray, grad: Fn = grad, w: np.ndarray = w) -> np.ndarray:
                return grad(z.astype(dtype), w).astype(dtype)

            out.append((fn, gr, x, entry))
    return out


def _run(problem: tuple, c: float, pattern: str, mode: str) -> gradcheck.CheckResult:
    f, grad, x, entry = problem

    def wrong(z: np.ndarray) -> np.ndarray:
        g = np.array(grad(z), dtype=np.float64)
        if pattern == "every entry":
            g = (1 + c) * g
        else:  # relative to max(|a_i|, RMS), as the check's own ``rules_out_rel``
            size = max(abs(float(g[entry])), float(np.sqrt(np.mean(g ** 2))))
            g[entry] += c * size * (1.0 if g[entry] >= 0 else -1.0)
        return g.astype(x.dtype)

    return gradcheck.check_grad(f, wrong, x, mode=mode)


def _row(dtype: type, mode: str, pattern: str) -> tuple[str, float, float]:
    problems = _problems(dtype)
    correct = [gradcheck.check_grad(f, g, x, mode=mode) for f, g, x, _ in problems]
    assert all(r.verdict != "wrong" for r in correct), "a correct problem was called wrong"
    cost = np.mean([r.evaluations for r in correct]) / N
    smallest, spent = float("nan"), float("nan")
    for c in reversed(GRID):
        results = [_run(p, c if k % 2 else -c, pattern, mode) for k, p in enumerate(problems)]
        if not all(r.verdict == "wrong" for r in results):
            break
        smallest, spent = c, float(np.mean([r.evaluations for r in results])) / N
    return f"{smallest:.0e}" if smallest == smallest else "none", cost, spent


def main() -> None:
    print(f"smallest relative error c caught in all {len(FUNCTIONS) * len(SEEDS)} smooth "
          f"problems ({N} entries; every grid value above caught too), and evaluations per "
          f"entry (correct code / the caught errors at c)")
    print(f"{'dtype':8} {'mode':5} {'pattern':12} | {'with whole-tensor test':>30} | "
          f"{'per-entry rule only':>30}")
    for dtype in (np.float64, np.float32):
        for mode in ("full", "fast"):
            for pattern in ("every entry", "one entry"):
                new = _row(dtype, mode, pattern)
                with per_entry_rule_only():
                    old = _row(dtype, mode, pattern)
                cells = [f"c ≥ {r[0]:>5}, {r[1]:5.2f} / {r[2]:5.2f} evals" for r in (new, old)]
                print(f"{np.dtype(dtype).name:8} {mode:5} {pattern:12} | {cells[0]:>30} | "
                      f"{cells[1]:>30}")


if __name__ == "__main__":
    main()
