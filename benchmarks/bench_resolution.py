"""Silent passes at large offsets, and what resolving them costs.

Prints, for a grid of constant offsets (float64 1e8..1e14, float32 1e4..1e6) and bugs (a
sign flip, a zero gradient, a 1 % error) through ``check_grad`` (full and fast) and
``check_layer``, how many wrong gradients were judged OK (silent passes), how many
correct ones were OK or inconclusive, and the evaluations of ordinary correct checks
(no offset), whose cost the resolution rule must not raise much.

Run: ``python benchmarks/bench_resolution.py`` (works against any gradcheck version:
``verdict`` is read when present).
"""

from __future__ import annotations

import numpy as np

import gradcheck

OFFSETS = [(np.float64, c) for c in (1e8, 1e10, 1e12, 1e14)] + [
    (np.float32, c) for c in (1e4, 1e5, 1e6)]
BUGS = {"sign flip": -1.0, "zero": 0.0, "1 % error": 1.01}


class Affine:
    """``y = tanh(x W + b) + c``: a layer whose output carries a large constant."""

    def __init__(self, c: float, dtype: type, factor: float = 1.0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.standard_normal((3, 2)).astype(dtype),
                       "b": (0.1 * rng.standard_normal(2)).astype(dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.c, self.factor, self.dtype = c, factor, dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.astype(self.dtype)
        self.y = np.tanh(self.x @ self.params["W"] + self.params["b"])
        return self.y + self.dtype(self.c)

    def backward(self, g: np.ndarray) -> np.ndarray:
        gz = g.astype(self.dtype) * (1 - self.y ** 2)
        self.grads["W"][...] = self.factor * (self.x.T @ gz)
        self.grads["b"][...] = gz.sum(axis=0)
        return gz @ self.params["W"].T


def _verdict(result: gradcheck.CheckResult) -> str:
    return getattr(result, "verdict", None) or ("ok" if result.ok else "wrong")


def _checks(dtype: type, c: float, factor: float) -> dict[str, gradcheck.CheckResult]:
    x = np.linspace(0.3, 1.2, 4).astype(dtype)

    def f(z: np.ndarray) -> float:
        return dtype(c) + np.sum(z.astype(dtype) ** 2)

    xl = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(dtype)
    return {
        "check_grad full": gradcheck.check_grad(f, lambda z: factor * 2 * z, x, mode="full"),
        "check_grad fast": gradcheck.check_grad(f, lambda z: factor * 2 * z, x, mode="fast"),
        "check_layer": gradcheck.check_layer(Affine(c, dtype, factor), xl, mode="full"),
    }


def main() -> None:
    silent = total = 0
    correct: dict[str, int] = {}
    for dtype, c in OFFSETS:
        for factor in BUGS.values():
            for name, result in _checks(dtype, c, factor).items():
                if name == "check_layer":
                    result_ok = next(t for t in result.tensors if t.name == "W").ok
                else:
                    result_ok = result.ok
                silent += bool(result_ok)
                total += 1
                if result_ok:
                    print(f"  silent: {name}, {np.dtype(dtype).name} offset {c:g}, "
                          f"gradient × {factor}")
        for result in _checks(dtype, c, 1.0).values():
            correct[_verdict(result)] = correct.get(_verdict(result), 0) + 1
    print(f"wrong gradients judged OK (silent passes): {silent} of {total}")
    print(f"correct gradients at large offsets: {correct}")

    rng = np.random.default_rng(1)
    for dtype in (np.float64, np.float32):
        evaluations, entries, ok = 0, 0, 0
        for seed in range(20):
            layer = Affine(0.0, dtype, seed=seed)
            x = rng.uniform(-1, 1, (8, 3)).astype(dtype)
            result = gradcheck.check_layer(layer, x, mode="full", seed=seed)
            evaluations += result.evaluations
            entries += sum(t.n_checked for t in result.tensors)
            ok += result.ok
        print(f"{np.dtype(dtype).name} correct layers without offset: {ok}/20 OK, "
              f"{evaluations / entries:.2f} evaluations per entry")


if __name__ == "__main__":
    main()
