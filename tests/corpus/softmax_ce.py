"""Softmax cross-entropy as a layer (logits in, batch-mean loss out), right and wrong.

``SoftmaxCrossEntropy(targets)`` maps logits ``x: (N, K)`` to the scalar loss
``(1/N) Σ_n −log softmax(x_n)[targets_n]`` (shape ``()``), so ``check_layer`` can check
the loss's own gradient; its backward is ``grad_out · (softmax(x) − onehot) / N``.
"""

from __future__ import annotations

import numpy as np

from gradcheck.models.base import require_forward
from gradcheck.models.losses import LOSSES, Loss


class SoftmaxCrossEntropy:
    """The correct loss layer; ``targets: (N,)`` integer classes fixed at construction."""

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = np.asarray(targets)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.loss = Loss("softmax_ce")
        self._x: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.targets.shape[0]})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x: (N, K)`` -> loss of shape ``()`` in ``x``'s dtype."""
        self._x = np.array(x)
        return np.asarray(self.loss.forward(self._x, self.targets), dtype=self._x.dtype)

    def per_sample_grad(self) -> np.ndarray:
        """``softmax(x) − onehot``: ``(N, K)``, without the 1/N of the batch mean."""
        x = require_forward(repr(self), self._x)
        return LOSSES["softmax_ce"].grad(x, self.targets)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        per_sample = self.per_sample_grad()
        return np.asarray(grad_out) * per_sample / per_sample.shape[0]


class SummedSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    """Forward takes the batch mean, backward the gradient of the batch sum."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.asarray(grad_out) * self.per_sample_grad()  # BUG: the 1/N is missing


class ReversedSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    """Backward written as ``onehot − softmax(x)``."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        per_sample = self.per_sample_grad()
        return -np.asarray(grad_out) * per_sample / per_sample.shape[0]  # BUG: sign
