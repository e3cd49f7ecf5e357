"""Layers and functions the executor tests ship to *spawned* worker processes.

They live in an importable module (``support`` is on the path, and a spawned worker
inherits ``sys.path``), so that pickle by reference finds them there: a worker started by
``fork`` in a test process that has imported JAX or PyTorch (threads) may deadlock.
"""

from __future__ import annotations

import os

import numpy as np

from gradcheck.models import Dense


class WrongWeightGradient(Dense):
    """Dense whose dL/dW is 1 % too large."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["W"] = self.grads["W"] * 1.01
        return dx


def depends_on_the_process(x: np.ndarray) -> np.ndarray:
    """A function whose value differs from one process to the next."""
    return x * (os.getpid() % 1000 + 1.0)


def its_vjp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    return v * (os.getpid() % 1000 + 1.0)
