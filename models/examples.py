"""The classic example: a 64-16-16-10 sigmoid network that reads handwritten digits.

It is the 784-16-16-10 recognizer of the well-known introductions to backpropagation,
sized for the embedded 8×8 digits: two hidden layers of 16 sigmoid units and a softmax
cross-entropy output, trained with mini-batch SGD with momentum on a seeded split.

>>> result = train_digits(seed=0)  # doctest: +SKIP
>>> result.test_accuracy >= 0.95  # doctest: +SKIP
True
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from .data import load_digits, train_test_split
from .dense import Activation, Dense
from .losses import Loss
from .network import Sequential
from .optim import SGD
from .train import History, evaluate, fit

__all__ = ["DigitsResult", "digits_classifier", "train_digits"]

LAYER_SIZES = (64, 16, 16, 10)


def digits_classifier(seed: int = 0, *, l2: float = 0.0,
                      dtype: Any = np.float64) -> tuple[Sequential, Loss]:
    """The 64-16-16-10 sigmoid network (Xavier init, seeded) and its softmax CE loss.

    >>> model, loss = digits_classifier(seed=0)
    >>> list(model.params)
    ['0.W', '0.b', '2.W', '2.b', '4.W', '4.b']
    """
    rng = np.random.default_rng(seed)
    layers: list = []
    for n_in, n_out in pairwise(LAYER_SIZES):
        layers += [Dense(n_in, n_out, init="xavier", dtype=dtype, seed=rng),
                   Activation("sigmoid")]
    return Sequential(layers[:-1], l2=l2), Loss("softmax_ce")  # logits out: no last sigmoid


@dataclass
class DigitsResult:
    """What :func:`train_digits` returns: the trained model, its history and test scores."""

    model: Sequential
    history: History
    test_loss: float
    test_accuracy: float


def train_digits(seed: int = 0, *, epochs: int = 40, batch_size: int = 32, lr: float = 0.3,
                 momentum: float = 0.9, test_fraction: float = 0.25,
                 verbose: bool = False) -> DigitsResult:
    """Train :func:`digits_classifier` with mini-batch SGD on a seeded held-out split.

    The same ``seed`` drives the split, the initial weights and the shuffling, so a run is
    reproducible bit for bit.
    """
    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_fraction=test_fraction,
                                                        seed=seed)
    model, loss = digits_classifier(seed)
    history = fit(model, loss, x_train, y_train, optimizer=SGD(model, lr=lr, momentum=momentum),
                  epochs=epochs, batch_size=batch_size, seed=seed, x_val=x_test, y_val=y_test,
                  verbose=verbose)
    test_loss, test_accuracy = evaluate(model, loss, x_test, y_test)
    assert test_accuracy is not None  # a classifier's loss always has an accuracy
    return DigitsResult(model, history, test_loss, float(test_accuracy))
