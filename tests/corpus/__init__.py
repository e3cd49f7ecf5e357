"""A corpus of deliberately wrong layers and models, one row per bug and family.

Every row names the bug class the diagnosis must report (``expected``, a phrase of the
finding) and the tensor the finding names (``tensor``; ``""`` for a run-wide finding such
as a stale cache or "only x is wrong"). ``make_correct`` builds the correct parent the
same way, so the tests can show that the checker passes it and fails the bug.

Specific bugs live next to their family (``corpus.dense``, ``corpus.conv``, ...), each a
subclass of the correct layer in :mod:`gradcheck.models` whose backward carries one line
marked ``# BUG``; generic bugs (sign, factor, zeros, transpose, a stale cache) are the
wrappers in :mod:`corpus.generic`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from corpus.conv import ConvolvedWeightGradConv2D, MeanBiasConv2D, ReplicatePaddingConv2D
from corpus.dense import (
    ForgottenBiasDense,
    MeanBiasDense,
    TransposedWeightGradDense,
    WrongWayInputGradDense,
)
from corpus.generic import LaggingCache, WithBug
from corpus.losses import SummedLoss
from corpus.normalization import ConstantStatsBatchNorm
from corpus.pooling import FirstElementMaxPool2D, UnscaledAvgPool2D
from corpus.recurrent import TransposedRecurrentRNN, TruncatedLSTM, TruncatedRNN
from corpus.softmax_ce import (
    ReversedSoftmaxCrossEntropy,
    SoftmaxCrossEntropy,
    SummedSoftmaxCrossEntropy,
)
from gradcheck.models.conv import Conv2D
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.losses import Loss
from gradcheck.models.network import Sequential
from gradcheck.models.normalization import BatchNorm
from gradcheck.models.pooling import AvgPool2D, MaxPool2D
from gradcheck.models.recurrent import LSTM, RNN

__all__ = ["CORPUS", "MODEL_CORPUS", "WrongLayer", "WrongModel"]

Factory = Callable[[np.dtype], Any]
_SALT = 0x6A4D


@dataclass(frozen=True)
class WrongLayer:
    """A layer with one deliberate bug, its correct parent, an input, and the verdict due.

    ``make_layer(dtype)``, ``make_correct(dtype)`` and ``make_input(dtype)`` build fresh
    objects on every call (seeded, so every call builds the same values).
    """

    name: str
    make_layer: Factory
    make_correct: Factory
    make_input: Callable[[np.dtype], np.ndarray]
    expected: str
    tensor: str = ""


@dataclass(frozen=True)
class WrongModel:
    """A network (or its loss) with one deliberate bug, for ``check_model``."""

    name: str
    make_model: Factory
    make_correct: Factory
    make_loss: Callable[[], Any]
    make_correct_loss: Callable[[], Any]
    make_data: Callable[[np.dtype], tuple[np.ndarray, np.ndarray]]
    expected: str
    tensor: str = ""


def normal(*shape: int, seed: int = 0, loc: float = 0.0) -> Callable[[np.dtype], np.ndarray]:
    """A factory of the same standard-normal (+ ``loc``) array, cast to the asked dtype.

    The stream is salted: a checker seeded with the same small integer would otherwise
    draw an upstream gradient equal to the input, and ``xᵀg`` would be symmetric, hiding a
    transposed ``dW``.
    """
    return lambda dtype: (loc + np.random.default_rng((_SALT, seed)).standard_normal(shape)
                          ).astype(dtype)


def _classes(n: int, k: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, size=n)


def row(name: str, bad: Factory, good: Factory, x: Callable[[np.dtype], np.ndarray],
        expected: str, tensor: str = "") -> WrongLayer:
    return WrongLayer(name, bad, good, x, expected, tensor)


def _conv(dtype: np.dtype, cls: type = Conv2D) -> Any:
    return cls(2, 3, 3, padding=1, dtype=dtype, seed=3)


def _rnn(dtype: np.dtype, cls: type = RNN) -> Any:
    return cls(3, 4, dtype=dtype, seed=4)


def _lstm(dtype: np.dtype, cls: type = LSTM) -> Any:
    return cls(3, 4, dtype=dtype, seed=5)


_IMG = normal(2, 2, 5, 5, seed=11)
_POOL_IMG = normal(2, 2, 4, 4, seed=12)
_SEQ = normal(3, 6, 3, seed=13)
_TARGETS = _classes(8, 5)

CORPUS: tuple[WrongLayer, ...] = (
    # dense
    row("dense: dW sign flipped", lambda d: WithBug(Dense(3, 4, dtype=d), "W", "sign flipped"),
        lambda d: Dense(3, 4, dtype=d), normal(8, 3), "sign flipped", "W"),
    row("dense: only dW wrong (doubled)", lambda d: WithBug(Dense(3, 4, dtype=d), "W", "doubled"),
        lambda d: Dense(3, 4, dtype=d), normal(8, 3), "only W is wrong"),
    row("dense: dW = gᵀx (transposed)", lambda d: TransposedWeightGradDense(4, 4, dtype=d),
        lambda d: Dense(4, 4, dtype=d), normal(8, 4), "transposed", "W"),
    row("dense: dx = g·W (W not transposed)", lambda d: WrongWayInputGradDense(3, 3, dtype=d),
        lambda d: Dense(3, 3, dtype=d), normal(8, 3), "instead of g·Wᵀ", "x"),
    row("dense: db never written", lambda d: ForgottenBiasDense(3, 4, dtype=d),
        lambda d: Dense(3, 4, dtype=d), normal(8, 3), "gradient is all zeros", "b"),
    row("dense: db = mean of g (extra 1/N)", lambda d: MeanBiasDense(3, 4, dtype=d),
        lambda d: Dense(3, 4, dtype=d), normal(8, 3), "= 1/batch size", "b"),
    row("dense: stale cache",
        lambda d: LaggingCache(Dense(3, 4, dtype=d), warm_up=normal(8, 3, seed=99)(d)),
        lambda d: Dense(3, 4, dtype=d), normal(8, 3), "stale cache"),
    row("tanh: derivative halved", lambda d: WithBug(Activation("tanh"), "x", "halved"),
        lambda d: Activation("tanh"), normal(6, 4), "written as x", "x"),
    # conv
    row("conv: padding gradient folded onto the edges",
        lambda d: _conv(d, ReplicatePaddingConv2D), _conv, _IMG, "errors only at the borders", "x"),
    row("conv: dW of a convolution (kernel flipped)",
        lambda d: _conv(d, ConvolvedWeightGradConv2D), _conv, _IMG, "kernel rotated", "W"),
    row("conv: db extra 1/N", lambda d: _conv(d, MeanBiasConv2D), _conv, _IMG,
        "= 1/batch size", "b"),
    row("conv: dx sign flipped", lambda d: WithBug(_conv(d), "x", "sign flipped"), _conv, _IMG,
        "sign flipped", "x"),
    row("conv: stale cache",
        lambda d: LaggingCache(_conv(d), warm_up=normal(2, 2, 5, 5, seed=98)(d)),
        _conv, _IMG, "stale cache"),
    # pooling
    row("maxpool: gradient to the window's first element", lambda d: FirstElementMaxPool2D(2),
        lambda d: MaxPool2D(2), _POOL_IMG, "the right values at the wrong positions", "x"),
    row("avgpool: 1/window size missing", lambda d: UnscaledAvgPool2D(2),
        lambda d: AvgPool2D(2), _POOL_IMG, "off by a constant factor 4.0", "x"),
    row("maxpool: dx all zeros", lambda d: WithBug(MaxPool2D(2), "x", "zeros"),
        lambda d: MaxPool2D(2), _POOL_IMG, "gradient is all zeros", "x"),
    # batch normalization
    row("batchnorm: mean and variance paths dropped",
        lambda d: ConstantStatsBatchNorm(3, dtype=d), lambda d: BatchNorm(3, dtype=d),
        normal(8, 3, loc=1.0), "only x is wrong"),
    row("batchnorm: dgamma sign flipped",
        lambda d: WithBug(BatchNorm(3, dtype=d), "gamma", "sign flipped"),
        lambda d: BatchNorm(3, dtype=d), normal(8, 3, loc=1.0), "sign flipped", "gamma"),
    row("batchnorm (NCHW): dbeta doubled",
        lambda d: WithBug(BatchNorm(3, dtype=d), "beta", "doubled"),
        lambda d: BatchNorm(3, dtype=d), normal(4, 3, 3, 3), "factor 2.0", "beta"),
    # recurrent
    row("rnn: truncated BPTT", lambda d: _rnn(d, TruncatedRNN), _rnn, _SEQ, "time steps", "x"),
    row("rnn: dWh transposed", lambda d: _rnn(d, TransposedRecurrentRNN), _rnn, _SEQ,
        "transposed", "Wh"),
    row("rnn: stale cache", lambda d: LaggingCache(_rnn(d), warm_up=normal(3, 6, 3, seed=97)(d)),
        _rnn, _SEQ, "stale cache"),
    row("lstm: truncated BPTT", lambda d: _lstm(d, TruncatedLSTM), _lstm, _SEQ, "time steps", "x"),
    row("lstm: db never written", lambda d: WithBug(_lstm(d), "b", "zeros"), _lstm, _SEQ,
        "gradient is all zeros", "b"),
    row("lstm: dWx halved", lambda d: WithBug(_lstm(d), "Wx", "halved"), _lstm, _SEQ,
        "factor 0.5", "Wx"),
    # softmax cross-entropy as a layer
    row("softmax-CE: 1/N missing", lambda d: SummedSoftmaxCrossEntropy(_TARGETS),
        lambda d: SoftmaxCrossEntropy(_TARGETS), normal(8, 5), "= the batch size", "x"),
    row("softmax-CE: onehot − softmax", lambda d: ReversedSoftmaxCrossEntropy(_TARGETS),
        lambda d: SoftmaxCrossEntropy(_TARGETS), normal(8, 5), "sign flipped", "x"),
)


def _mlp(dtype: np.dtype, *, bug: str | None = None) -> Sequential:
    last = Dense(6, 3, dtype=dtype, seed=2)
    return Sequential([Dense(4, 6, dtype=dtype, seed=1), Activation("tanh"),
                       last if bug is None else WithBug(last, "W", bug)])


def _mlp_data(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    return normal(8, 4, seed=21)(dtype), _classes(8, 3, seed=22)


MODEL_CORPUS: tuple[WrongModel, ...] = (
    WrongModel("mlp: one layer's dW sign flipped", lambda d: _mlp(d, bug="sign flipped"), _mlp,
               lambda: Loss("softmax_ce"), lambda: Loss("softmax_ce"), _mlp_data,
               "only layer 2 is wrong"),
    WrongModel("mlp: loss gradient without 1/N", _mlp, _mlp, lambda: SummedLoss("softmax_ce"),
               lambda: Loss("softmax_ce"), _mlp_data, "= the batch size", "0.W"),
)
