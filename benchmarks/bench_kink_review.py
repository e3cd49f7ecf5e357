"""What the kink verdict model (``gradcheck.engine.kinks``) costs, and what it changes.

Prints, measured side by side in one run, for each case and mode: the evaluations of
φ and the verdict with the review (the default) and without it (the review replaced by
an empty one), and their ratio. Cases: max pooling on a coarse grid (many ties) with
the correct routing and with the whole gradient routed to every tied maximum; ReLU at
many exact zeros; a smooth dense layer (no kinks: the review must cost nothing); the
chain ``relu(b) − 3·relu(−b)`` at ``b = 0`` with relu'(0) = 0.

Run: ``python benchmarks/bench_kink_review.py`` (not a test; nothing is asserted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import gradcheck
import gradcheck.engine.runner as runner
from gradcheck.engine.kinks import KinkReview
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.pooling import MaxPool2D


class EveryTieMaxPool2D(MaxPool2D):
    """The whole window gradient to every entry equal to the window's maximum."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return super().forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        *_, dtype, x_shape = self._cache
        win = self._windows(self._x)
        is_max = win == win.max(axis=-1, keepdims=True)
        return self._fold(is_max * np.asarray(grad_out, dtype=dtype)[..., None], x_shape)


def _chain() -> Any:
    def f(b: np.ndarray) -> float:
        return float(np.sum(np.maximum(b, 0) - 3 * np.maximum(-b, 0)))

    def grad(b: np.ndarray) -> np.ndarray:
        return (b > 0) + 3.0 * (-b > 0)

    return lambda mode: gradcheck.check_grad(f, grad, np.zeros(3), mode=mode)


def _layer(make: Callable[[], Any], x: np.ndarray) -> Any:
    return lambda mode: gradcheck.check_layer(make(), x, mode=mode)


def cases() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 2, (2, 3, 8, 8)).astype(float)  # most 2×2 windows tie
    zeros = rng.uniform(-2, 2, (16, 32))
    zeros[rng.random(zeros.shape) < 0.3] = 0.0
    return {
        "max pool 2x2, ties, first routing": _layer(lambda: MaxPool2D(2), grid),
        "max pool 2x2, ties, every tie (bug)": _layer(lambda: EveryTieMaxPool2D(2), grid),
        "relu, 30% exact zeros (512 entries)": _layer(lambda: Activation("relu"), zeros),
        "dense 16->8, tanh (smooth)": _layer(lambda: Dense(16, 8, seed=1),
                                             rng.standard_normal((8, 16))),
        "relu(b) - 3 relu(-b) at 0, relu'(0)=0": _chain(),
    }


def main() -> None:
    with_review = runner._review_kinks
    print(f"{'case':42} {'mode':5} {'evals':>7} {'without':>8} {'ratio':>6}  verdict "
          f"(without)")
    for name, check in cases().items():
        for mode in ("full", "fast"):
            runner._review_kinks = with_review
            on = check(mode)
            runner._review_kinks = lambda *args, **kwargs: KinkReview()
            off = check(mode)
            runner._review_kinks = with_review
            print(f"{name:42} {mode:5} {on.evaluations:7d} {off.evaluations:8d} "
                  f"{on.evaluations / off.evaluations:6.2f}  {on.verdict} ({off.verdict})")


if __name__ == "__main__":
    main()
