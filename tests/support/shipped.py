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


# ---- the newly covered checks (tests/adapters/test_executor_checks.py) --------------------
def two_outputs(x: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Several inputs (a pytree) and several outputs: ``(tanh(x·a), Σ x²)``."""
    return np.tanh(x * p["a"]), np.sum(x ** 2)


def two_outputs_vjp(g: tuple, x: np.ndarray, p: dict) -> tuple:
    t = np.tanh(x * p["a"])
    d = g[0] * (1 - t * t)
    return d * p["a"] + 2 * x * g[1], {"a": np.sum(d * x, axis=0)}


def two_outputs_wrong_vjp(g: tuple, x: np.ndarray, p: dict) -> tuple:
    """dL/da 1 % too large."""
    dx, dp = two_outputs_vjp(g, x, p)
    return dx, {"a": dp["a"] * 1.01}


def batched_square(x: np.ndarray) -> np.ndarray:
    """Per-sample output (structured full mode applies)."""
    return np.sin(x) * x[:, :1]


def batched_square_vjp(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = g * np.cos(x) * x[:, :1]
    dx[:, 0] += np.sum(g * np.sin(x), axis=1)
    return dx


def abs_squared(z: np.ndarray) -> np.ndarray:
    """A complex input: its ``(real, imag)`` coordinates are a view of the working copy."""
    return np.abs(z) ** 2


def abs_squared_vjp(g: np.ndarray, z: np.ndarray) -> np.ndarray:
    return 2 * g * z


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, scale: float
                   ) -> tuple[np.ndarray, tuple]:
    """A course-style pair: ``(out, cache)``; ``scale`` is a non-array argument."""
    return scale * (x @ w + b), (x, w, scale)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    x, w, scale = cache
    d = scale * dout
    return d @ w.T, x.T @ d, d.sum(axis=0)


def affine_wrong_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Forgets the scale in dw."""
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw / cache[2], db


class LazyScale:
    """Another library's layer: parameters created by the first forward, the input cached."""

    def __init__(self, bug: float = 1.0) -> None:
        self.parameters: dict[str, np.ndarray] = {}
        self.gradients: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.parameters.setdefault("w", np.linspace(0.5, 1.5, x.shape[1]))
        self.x = x
        return np.tanh(x * self.parameters["w"])

    def backward(self, g: np.ndarray) -> np.ndarray:
        t = np.tanh(self.x * self.parameters["w"])
        d = g * (1 - t * t)
        self.gradients["w"] = self.bug * np.sum(d * self.x, axis=0)
        return d * self.parameters["w"]


class Quadratic:
    """``check_loss``'s shape: a loss over parameters held by an object."""

    def __init__(self, bug: float = 1.0) -> None:
        self.params = {"W": np.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": np.array([0.3, -0.2])}
        self.bug = bug

    def loss(self) -> float:
        r = np.tanh(self.params["W"]).sum(axis=1) + self.params["b"]
        return float(np.sum(r ** 2))

    def grads(self) -> dict[str, np.ndarray]:
        t = np.tanh(self.params["W"])
        r = t.sum(axis=1) + self.params["b"]
        return {"W": self.bug * 2 * r[:, None] * (1 - t * t), "b": 2 * r}


def two_outputs_jvp(t: tuple, x: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    tx, tp = t
    s = 1 - np.tanh(x * p["a"]) ** 2
    return s * (tx * p["a"] + x * tp["a"]), np.sum(2 * x * tx)


def cube_sum(x: np.ndarray) -> float:
    """Σ x³ + Σ sin x (a scalar function of one array)."""
    return float(np.sum(x ** 3) + np.sum(np.sin(x)))


def cube_grad(x: np.ndarray) -> np.ndarray:
    return 3 * x ** 2 + np.cos(x)


def cube_wrong_grad(x: np.ndarray) -> np.ndarray:
    """One entry 1 % off."""
    g = cube_grad(x)
    g.flat[1] *= 1.01
    return g


def cube_hvp(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (6 * x - np.sin(x)) * w


def cube_wrong_hvp(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The Hessian's diagonal without its sine term."""
    return 6 * x * w


#: Calls of :func:`counted_tanh` in this process (threads of a pool share it).
CALLS: list[int] = []
_W_COUNTED = np.random.default_rng(0).standard_normal((4, 3))


def counted_tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(x @ W)``, counting its calls in :data:`CALLS` (shipped by reference)."""
    CALLS.append(1)
    return np.tanh(x @ _W_COUNTED)


def counted_tanh_vjp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v * (1 - np.tanh(x @ _W_COUNTED) ** 2)) @ _W_COUNTED.T
