"""A batch-mean loss with a deliberate bug in its backward."""

from __future__ import annotations

import numpy as np

from gradcheck.models.losses import Loss


class SummedLoss(Loss):
    """Forward is the batch mean, backward the gradient of the batch sum."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self._batch = np.shape(pred)[0]
        return super().forward(pred, target)

    def backward(self) -> np.ndarray:
        return super().backward() * self._batch  # BUG: the 1/N of the mean is undone
