"""The training loop: batch, stochastic and mini-batch gradient descent, seeded.

``fit`` minimizes ``loss(model(x), y) + model.penalty()``: every step runs the forward
pass, the loss, the backward pass (which adds the L2 gradient) and ``optimizer.step()``.
``batch_size=None`` is full-batch gradient descent, ``1`` stochastic, ``k`` mini-batch;
with ``batch_size < N`` the rows are reshuffled every epoch by a generator seeded once.

Accuracy is reported for classification losses only: arg-max against class indices or
one-hot rows (``target="class"``), or a threshold for binary targets (0.5 on
probabilities, 0 on logits); for regression losses it is ``None``.

>>> import numpy as np
>>> from gradcheck.models.dense import Dense
>>> from gradcheck.models.losses import Loss
>>> from gradcheck.models.network import Sequential
>>> from gradcheck.models.optim import SGD
>>> x = np.linspace(-1, 1, 20)[:, None]
>>> model = Sequential([Dense(1, 1)])
>>> history = fit(model, Loss("mse"), x, 3 * x, optimizer=SGD(model, lr=0.2), epochs=50)
>>> history.loss[-1] < 1e-6 < history.loss[0]
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .losses import Loss

__all__ = ["History", "accuracy", "evaluate", "fit"]


@dataclass
class History:
    """Per-epoch records of a :func:`fit` run.

    ``loss``/``accuracy``: the mean over the epoch's batches, as seen during training
    (training mode, parameters changing between batches); ``val_loss``/``val_accuracy``:
    the validation set at the end of each epoch, in evaluation mode (empty without
    validation data). Losses include the L2 penalty; accuracies are ``None`` for
    regression losses.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.loss)

    def line(self, epoch: int) -> str:
        """One readable line for ``epoch`` (0-based)."""
        row = f"epoch {epoch + 1:3d}  loss {self.loss[epoch]:.4f}"
        if self.accuracy[epoch] is not None:
            row += f"  acc {self.accuracy[epoch]:.3f}"
        if self.val_loss:
            row += f"  val_loss {self.val_loss[epoch]:.4f}"
            if self.val_accuracy[epoch] is not None:
                row += f"  val_acc {self.val_accuracy[epoch]:.3f}"
        return row

    def __str__(self) -> str:
        return "\n".join(self.line(i) for i in range(self.epochs))


def accuracy(pred: np.ndarray, target: np.ndarray, loss: Loss) -> float | None:
    """Fraction of correct predictions for a classification ``loss``, else ``None``.

    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 2.0], [3.0, 0.0]]), np.array([1, 1]), Loss("softmax_ce"))
    0.5
    """
    target = np.asarray(target)
    if loss.op.target == "class":
        labels = target.argmax(axis=-1) if target.shape == pred.shape else target
        return float(np.mean(pred.argmax(axis=-1) == labels))
    if loss.op.target == "binary":
        threshold = 0.5 if loss.op.pred == "probability" else 0.0
        return float(np.mean((pred > threshold) == (target > 0.5)))
    return None


def _penalty(model: Any) -> float:
    return float(model.penalty()) if hasattr(model, "penalty") else 0.0


def _set_mode(model: Any, training: bool) -> None:
    method = "train" if training else "eval"
    if hasattr(model, method):
        getattr(model, method)()


def evaluate(model: Any, loss: Loss, x: Any, y: Any, *,
             batch_size: int | None = None) -> tuple[float, float | None]:
    """Return ``(loss + penalty, accuracy)`` of ``model`` on ``x, y`` in evaluation mode.

    The model's previous mode is restored afterwards (training if it has no flag).
    """
    x, y = _check_data("evaluate", x, y)
    was_training = getattr(model, "training", True)
    _set_mode(model, False)
    try:
        size = batch_size or len(x)
        preds = [model.forward(x[i:i + size]) for i in range(0, len(x), size)]
    finally:
        _set_mode(model, was_training)
    pred = np.concatenate(preds)
    return loss.forward(pred, y) + _penalty(model), accuracy(pred, y, loss)


def _check_data(owner: str, x: Any, y: Any, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{owner}: x{suffix} and y{suffix} need the same non-zero number of "
                         f"rows (axis 0), got shapes {x.shape} and {y.shape}")
    return x, y


def fit(model: Any, loss: Loss, x: Any, y: Any, *, optimizer: Any, epochs: int,
        batch_size: int | None = None, seed: int | np.random.Generator = 0,
        x_val: Any = None, y_val: Any = None, verbose: bool = False) -> History:
    """Train ``model`` on ``x: (N, ...)``, ``y: (N, ...)`` and return its :class:`History`.

    Parameters
    ----------
    model : Sequential or any layer
        Needs ``forward``/``backward``; ``penalty()``, ``train()``, ``eval()`` are used if
        present.
    loss : Loss
    optimizer : SGD, Adam or anything with ``step()``
        Built on the same model (or its ``params``/``grads``).
    epochs : int
        Passes over the training set.
    batch_size : int or None
        ``None``: full batch; ``1``: stochastic; ``k``: mini-batches of ``k`` rows (the
        last one may be smaller).
    seed : int or numpy.random.Generator
        Drives the per-epoch shuffling.
    x_val, y_val : optional validation data, evaluated after every epoch.
    verbose : bool
        Print one line per epoch.

    The model is left in training mode; ``x`` and ``y`` are not modified.
    """
    x, y = _check_data("fit", x, y)
    if (x_val is None) != (y_val is None):
        raise ValueError("fit: pass both x_val and y_val, or neither")
    if x_val is not None:
        x_val, y_val = _check_data("fit", x_val, y_val, suffix="_val")
    if not isinstance(epochs, int | np.integer) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
    n = len(x)
    if batch_size is not None and not (isinstance(batch_size, int | np.integer)
                                       and 1 <= batch_size):
        raise ValueError(f"fit: batch_size must be None (full batch) or an integer >= 1, "
                         f"got {batch_size!r}")
    size = n if batch_size is None else min(int(batch_size), n)
    if not hasattr(optimizer, "step"):
        raise TypeError(f"fit: optimizer must have a step() method, got {optimizer!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    history = History()
    for epoch in range(epochs):
        _set_mode(model, True)
        order = rng.permutation(n) if size < n else np.arange(n)
        total, correct, classified = 0.0, 0.0, True
        for start in range(0, n, size):
            rows = order[start:start + size]
            xb, yb = x[rows], y[rows]
            pred = model.forward(xb)
            total += (loss.forward(pred, yb) + _penalty(model)) * len(rows)
            model.backward(loss.backward())
            optimizer.step()
            batch_accuracy = accuracy(pred, yb, loss)
            classified = batch_accuracy is not None
            correct += (batch_accuracy or 0.0) * len(rows)
        history.loss.append(total / n)
        history.accuracy.append(correct / n if classified else None)
        if x_val is not None:
            val_loss, val_accuracy = evaluate(model, loss, x_val, y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if verbose:
            print(history.line(epoch))
    _set_mode(model, True)
    return history
