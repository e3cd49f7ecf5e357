"""Hand-written NumPy backpropagation of full networks (installed as ``gradcheck.models``).

Every layer follows the Layer protocol (``params``, ``grads``, ``forward``, ``backward``);
activations and losses are rows in the ``ACTIVATIONS`` and ``LOSSES`` tables.

>>> import numpy as np
>>> from gradcheck.models import Dense, Activation, Sequential, Loss
>>> net = Sequential([Dense(4, 3, seed=0), Activation("tanh"), Dense(3, 2, seed=1)])
>>> loss = Loss("softmax_ce")
>>> value = loss.forward(net.forward(np.ones((5, 4))), np.array([0, 1, 0, 1, 1]))
>>> dx = net.backward(loss.backward())
>>> sorted(net.grads)
['0.W', '0.b', '2.W', '2.b']
"""

from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS, Op, VectorOp
from gradcheck.models.base import ShapeError
from gradcheck.models.conv import Conv2D
from gradcheck.models.data import load_digits, load_mnist, read_idx, train_test_split, write_idx
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.dropout import Dropout
from gradcheck.models.examples import digits_classifier, train_digits
from gradcheck.models.losses import LOSSES, Loss, LossOp
from gradcheck.models.network import Sequential
from gradcheck.models.normalization import BatchNorm, LayerNorm
from gradcheck.models.optim import SGD, Adam
from gradcheck.models.pooling import AvgPool2D, MaxPool2D
from gradcheck.models.recurrent import LSTM, RNN
from gradcheck.models.shape import Flatten
from gradcheck.models.train import History, evaluate, fit

__all__ = [
    "ACTIVATIONS", "LOSSES", "LSTM", "RNN", "SGD", "VECTOR_ACTIVATIONS", "Activation", "Adam",
    "AvgPool2D", "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten", "History", "LayerNorm",
    "Loss", "LossOp", "MaxPool2D", "Op", "Sequential", "ShapeError", "VectorOp",
    "digits_classifier", "evaluate", "fit", "load_digits", "load_mnist", "read_idx",
    "train_digits", "train_test_split", "write_idx",
]
