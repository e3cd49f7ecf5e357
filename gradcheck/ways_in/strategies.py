"""Hypothesis strategies for gradient tests: names, inputs, layers and whole networks.

Every strategy takes keyword-only arguments; ranges come in ``min_*``/``max_*`` pairs with
the defaults documented on each function, and a bad argument raises
``hypothesis.errors.InvalidArgument`` naming it. Value ranges and kinks are read from the
registries (``gradcheck.models.activations.ACTIVATIONS`` rows' ``domain`` and ``kinks``),
never hard-coded here, so a new activation row is covered without touching this module.

Layer strategies draw ``(layer, x)`` pairs whose input matches the layer; networks come as
:class:`NetworkCase` (model, loss, x, y). They shrink towards small shapes, few layers,
the first names of the tables (``identity``, ``mse``) and seed 0, so a failing network
shrinks to a minimal one.

>>> from hypothesis import given
>>> import gradcheck
>>> @given(case=sequential_networks(max_depth=2))        # doctest: +SKIP
... def test_networks(case):
...     assert gradcheck.check_model(case.model, case.loss, case.x, case.y).ok
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

__all__ = [
    "NetworkCase",
    "activation_names",
    "arrays",
    "conv_layers",
    "dense_layers",
    "loss_names",
    "rnn_layers",
    "sequential_networks",
    "targets",
]

DEFAULT_RANGE = (-1.0, 1.0)  # values of arrays() when no activation gives a domain
KINK_FRACTION = 0.01  # default kink_distance, as a fraction of max_value - min_value
_SEEDS = st.integers(0, 2**32 - 1)  # shrinks to seed 0


def _activations() -> dict[str, Any]:
    from gradcheck.models.activations import ACTIVATIONS
    return ACTIVATIONS


def _losses() -> dict[str, Any]:
    from gradcheck.models.losses import LOSSES
    return LOSSES


def _check_range(owner: str, name: str, lo: Any, hi: Any, *, minimum: int = 0) -> None:
    for arg, value in ((f"min_{name}", lo), (f"max_{name}", hi)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidArgument(f"{owner}: {arg} must be an int, got {value!r}")
        if value < minimum:
            raise InvalidArgument(f"{owner}: {arg} must be >= {minimum}, got {value}")
    if lo > hi:
        raise InvalidArgument(f"{owner}: min_{name}={lo} is larger than max_{name}={hi}; "
                              f"swap them or widen the range")


def _check_dtype(owner: str, dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InvalidArgument(f"{owner}: dtype must be float64 or float32, got {dtype!r}")
    return resolved


def _check_names(owner: str, arg: str, names: Sequence[str] | None,
                 known: Sequence[str]) -> list[str]:
    if names is None:
        return list(known)
    if isinstance(names, str) or not names:
        raise InvalidArgument(f"{owner}: {arg} must be a non-empty list of names, "
                              f"got {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidArgument(f"{owner}: {arg} has unknown names {unknown}; "
                              f"known: {', '.join(known)}")
    return list(names)


# ---- names ---------------------------------------------------------------------------

def activation_names(*, smooth: bool | None = None) -> st.SearchStrategy[str]:
    """Names of elementwise activations from ``ACTIVATIONS``, in table order.

    Parameters
    ----------
    smooth : bool, optional
        ``True``: only rows without kinks; ``False``: only rows with kinks; ``None``
        (default): all rows. Shrinks towards the first row (``identity``).

    >>> activation_names(smooth=False).example() in ("relu", "leaky_relu", "selu", "hard_tanh")
    True
    """
    if smooth not in (None, True, False):
        raise InvalidArgument(f"activation_names: smooth must be None, True or False, "
                              f"got {smooth!r}")
    names = [name for name, row in _activations().items()
             if smooth is None or smooth == (not row.kinks)]
    return st.sampled_from(names)


def loss_names() -> st.SearchStrategy[str]:
    """Names of losses from ``LOSSES``, in table order (shrinks towards the first).

    >>> loss_names().example() in __import__("gradcheck.models.losses").models.losses.LOSSES
    True
    """
    return st.sampled_from(list(_losses()))


# ---- arrays --------------------------------------------------------------------------

def _away_from_kinks(values: np.ndarray, kinks: Sequence[float], distance: float,
                     lo: float, hi: float) -> np.ndarray:
    """Move every entry closer than ``distance`` to a kink out to ``kink ± distance``.

    Entries go to the side they were on (right side when exactly on the kink), or to the
    other side when that one leaves ``[lo, hi]``; rounding to the dtype is accounted for.
    """
    out = values.copy()
    flat = out.reshape(-1)  # a view, also for 0-d arrays
    dtype = out.dtype.type
    for kink in kinks:
        for index in np.flatnonzero(np.abs(flat.astype(np.float64) - kink) < distance):
            side = 1.0 if flat[index] >= kink else -1.0
            if not lo <= kink + side * distance <= hi:
                side = -side
            moved = dtype(kink + side * distance)
            while abs(float(moved) - kink) < distance:  # float32 may round inwards
                moved = np.nextafter(moved, dtype(side * np.inf))
            flat[index] = moved
    return out


def _representable(lo: float, hi: float, dtype: np.dtype) -> tuple[float, float]:
    """``[lo, hi]`` shrunk to the nearest bounds the dtype represents exactly."""
    low, high = dtype.type(lo), dtype.type(hi)
    if low < lo:
        low = np.nextafter(low, dtype.type(np.inf))
    if high > hi:
        high = np.nextafter(high, dtype.type(-np.inf))
    return float(low), float(high)


def arrays(shape: int | tuple[int, ...], *, dtype: Any = np.float64,
           min_value: float | None = None, max_value: float | None = None,
           activation: str | None = None, kink_distance: float | None = None,
           on_kinks: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Finite float arrays of ``shape``, kept away from an activation's kinks (or on them).

    Parameters
    ----------
    shape : int or tuple of int
    dtype : float64 (default) or float32
    min_value, max_value : float, optional
        Value range. Defaults: the ``domain`` of ``activation``'s row, else ``(-1, 1)``.
    activation : str, optional
        Name in ``ACTIVATIONS`` whose ``domain`` and ``kinks`` apply.
    kink_distance : float, optional
        Every entry stays at least this far from every kink of ``activation``. Default
        ``0.01 * (max_value - min_value)`` when the activation has kinks.
    on_kinks : bool
        Instead, put at least one entry exactly on a kink (the others anywhere in range):
        for testing that a checker reports "not differentiable here".

    >>> x = arrays((2, 3), activation="relu").example()
    >>> x.shape, bool(np.all(np.abs(x) >= 0.06))
    ((2, 3), True)
    """
    owner = "arrays"
    dims = _dims(owner, shape)
    resolved = _check_dtype(owner, dtype)
    lo, hi, kinks = _range_and_kinks(owner, activation, min_value, max_value)
    kink_distance = _kink_distance(owner, kinks, lo, hi, kink_distance, on_kinks, activation)
    width: Literal[32, 64] = 32 if resolved == np.float32 else 64
    elements = st.floats(*_representable(lo, hi, resolved), width=width, allow_nan=False,
                         allow_infinity=False, allow_subnormal=False)
    base = hnp.arrays(resolved, dims, elements=elements)
    if on_kinks:
        return _with_a_kink(owner, base, dims, kinks, shape)
    if not kinks or kink_distance == 0:
        return base
    return base.map(lambda v: _away_from_kinks(v, kinks, kink_distance, lo, hi))


def _dims(owner: str, shape: Any) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, int | np.integer) else shape
    if not isinstance(dims, tuple) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 0
            for d in dims):
        raise InvalidArgument(f"{owner}: shape must be an int or a tuple of ints >= 0, "
                              f"got {shape!r}")
    return tuple(int(d) for d in dims)


def _range_and_kinks(owner: str, activation: str | None, min_value: float | None,
                     max_value: float | None) -> tuple[float, float, tuple[float, ...]]:
    """The value range (the activation's domain unless given) and the kinks inside it."""
    kinks: tuple[float, ...] = ()
    lo, hi = DEFAULT_RANGE
    if activation is not None:
        table = _activations()
        if activation not in table:
            raise InvalidArgument(f"{owner}: activation={activation!r} is not in ACTIVATIONS;"
                                  f" known: {', '.join(table)}")
        lo, hi = table[activation].domain
        kinks = tuple(table[activation].kinks)
    lo = lo if min_value is None else min_value
    hi = hi if max_value is None else max_value
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidArgument(f"{owner}: need finite min_value < max_value, got "
                              f"min_value={lo!r}, max_value={hi!r}")
    return lo, hi, tuple(k for k in kinks if lo <= k <= hi)


def _kink_distance(owner: str, kinks: tuple[float, ...], lo: float, hi: float,
                   kink_distance: float | None, on_kinks: bool,
                   activation: str | None) -> float:
    """The distance kept from every kink (validated: it must leave room between them)."""
    if on_kinks:
        if kink_distance is not None:
            raise InvalidArgument(f"{owner}: give kink_distance or on_kinks=True, not both")
        if not kinks:
            raise InvalidArgument(f"{owner}: on_kinks=True needs an activation with a kink "
                                  f"inside [{lo}, {hi}]; {activation!r} has none")
    if kink_distance is None:
        kink_distance = KINK_FRACTION * (hi - lo)
    if not kink_distance >= 0:
        raise InvalidArgument(f"{owner}: kink_distance must be >= 0, got {kink_distance!r}")
    if kinks and not on_kinks:
        crowded = any(b - a < 2 * kink_distance for a, b in itertools.pairwise(sorted(kinks)))
        if crowded or any(k - kink_distance < lo and k + kink_distance > hi for k in kinks):
            raise InvalidArgument(f"{owner}: kink_distance={kink_distance} leaves no room "
                                  f"between the kinks {kinks} in [{lo}, {hi}]; make it smaller")
    return kink_distance


def _with_a_kink(owner: str, base: st.SearchStrategy[np.ndarray], dims: tuple[int, ...],
                 kinks: tuple[float, ...], shape: Any) -> st.SearchStrategy[np.ndarray]:
    """``base`` with one entry (drawn) set exactly on a kink (drawn)."""
    size = int(np.prod(dims))
    if size == 0:
        raise InvalidArgument(f"{owner}: on_kinks=True needs a non-empty shape, got {shape!r}")

    @st.composite
    def with_kink(draw: st.DrawFn) -> np.ndarray:
        values = draw(base).copy()
        flat = values.reshape(-1)
        flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from(kinks))
        return values

    return with_kink()


# ---- layers --------------------------------------------------------------------------

def dense_layers(*, min_in: int = 1, max_in: int = 5, min_out: int = 1, max_out: int = 5,
                 min_batch: int = 1, max_batch: int = 4,
                 dtype: Any = np.float64) -> st.SearchStrategy[tuple[Any, np.ndarray]]:
    """``(Dense(in, out, seed=s), x)`` with ``x: (batch, in)`` drawn by :func:`arrays`.

    Defaults: in and out features 1..5, batch 1..4, float64.

    >>> layer, x = dense_layers(max_in=3).example()
    >>> x.shape[1] == layer.params["W"].shape[0] <= 3
    True
    """
    owner = "dense_layers"
    _check_range(owner, "in", min_in, max_in, minimum=1)
    _check_range(owner, "out", min_out, max_out, minimum=1)
    _check_range(owner, "batch", min_batch, max_batch, minimum=1)
    resolved = _check_dtype(owner, dtype)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Any, np.ndarray]:
        from gradcheck.models.dense import Dense
        n_in, n_out = draw(st.integers(min_in, max_in)), draw(st.integers(min_out, max_out))
        batch = draw(st.integers(min_batch, max_batch))
        layer = Dense(n_in, n_out, dtype=resolved, seed=draw(_SEEDS))
        return layer, draw(arrays((batch, n_in), dtype=resolved))

    return build()


def conv_layers(*, min_channels: int = 1, max_channels: int = 3, min_size: int = 1,
                max_size: int = 6, max_kernel: int = 3, max_stride: int = 2,
                max_padding: int = 1, min_batch: int = 1, max_batch: int = 2,
                dtype: Any = np.float64) -> st.SearchStrategy[tuple[Any, np.ndarray]]:
    """``(Conv2D(...), x)`` with ``x: (N, C, H, W)`` and a positive output size.

    Defaults: in/out channels 1..3, H and W 1..6, kernel 1..3 (at most the padded input),
    stride 1..2, padding 0..1, batch 1..2, float64.

    >>> layer, x = conv_layers().example()
    >>> layer.forward(x).ndim
    4
    """
    owner = "conv_layers"
    _check_range(owner, "channels", min_channels, max_channels, minimum=1)
    _check_range(owner, "size", min_size, max_size, minimum=1)
    _check_range(owner, "batch", min_batch, max_batch, minimum=1)
    _check_range(owner, "kernel", 1, max_kernel, minimum=1)
    _check_range(owner, "stride", 1, max_stride, minimum=1)
    _check_range(owner, "padding", 0, max_padding, minimum=0)
    resolved = _check_dtype(owner, dtype)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Any, np.ndarray]:
        from gradcheck.models.conv import Conv2D
        c_in, c_out = (draw(st.integers(min_channels, max_channels)) for _ in range(2))
        h, w = (draw(st.integers(min_size, max_size)) for _ in range(2))
        padding = draw(st.integers(0, max_padding))
        kernel = draw(st.integers(1, min(max_kernel, h + 2 * padding, w + 2 * padding)))
        layer = Conv2D(c_in, c_out, kernel, stride=draw(st.integers(1, max_stride)),
                       padding=padding, dtype=resolved, seed=draw(_SEEDS))
        batch = draw(st.integers(min_batch, max_batch))
        return layer, draw(arrays((batch, c_in, h, w), dtype=resolved))

    return build()


def rnn_layers(*, cells: Sequence[str] = ("rnn", "lstm"), min_input: int = 1,
               max_input: int = 4, min_hidden: int = 1, max_hidden: int = 4,
               min_steps: int = 1, max_steps: int = 4, min_batch: int = 1,
               max_batch: int = 3,
               dtype: Any = np.float64) -> st.SearchStrategy[tuple[Any, np.ndarray]]:
    """``(RNN(D, H) or LSTM(D, H), x)`` with ``x: (N, T, D)``.

    Defaults: both cells (shrinks towards ``"rnn"``), D and H 1..4, T 1..4, N 1..3,
    float64.

    >>> layer, x = rnn_layers(cells=["lstm"]).example()
    >>> type(layer).__name__, x.ndim
    ('LSTM', 3)
    """
    owner = "rnn_layers"
    cells = _check_names(owner, "cells", cells, ["rnn", "lstm"])
    for name, lo, hi in (("input", min_input, max_input), ("hidden", min_hidden, max_hidden),
                         ("steps", min_steps, max_steps), ("batch", min_batch, max_batch)):
        _check_range(owner, name, lo, hi, minimum=1)
    resolved = _check_dtype(owner, dtype)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Any, np.ndarray]:
        from gradcheck.models.recurrent import LSTM, RNN
        cell = {"rnn": RNN, "lstm": LSTM}[draw(st.sampled_from(cells))]
        d, h = draw(st.integers(min_input, max_input)), draw(st.integers(min_hidden, max_hidden))
        layer = cell(d, h, dtype=resolved, seed=draw(_SEEDS))
        shape = (draw(st.integers(min_batch, max_batch)), draw(st.integers(min_steps, max_steps)),
                 d)
        return layer, draw(arrays(shape, dtype=resolved))

    return build()


# ---- networks ------------------------------------------------------------------------

BIAS_RANGE = (-0.5, 0.5)
BIAS_GAP = 0.05  # drawn biases stay this far from 0 (see sequential_networks)


def _biases(size: int, dtype: np.dtype) -> st.SearchStrategy[np.ndarray]:
    lo, hi = BIAS_RANGE
    elements = st.floats(lo, hi, width=32 if dtype == np.float32 else 64)
    return hnp.arrays(dtype, (size,), elements=elements).map(
        lambda b: _away_from_kinks(b, (0.0,), BIAS_GAP, lo, hi))


@dataclass(frozen=True)
class NetworkCase:
    """A drawn network with everything ``check_model`` needs.

    Attributes
    ----------
    model : Sequential
    loss : Loss
    x : ndarray, (N, D)
    y : ndarray, targets for ``loss`` (``(N, K)`` reals/probabilities or ``(N,)`` classes)
    """

    model: Any
    loss: Any
    x: np.ndarray
    y: np.ndarray

    def __repr__(self) -> str:
        loss = getattr(self.loss, "name", type(self.loss).__name__)
        return (f"NetworkCase(model={self.model!r}, loss={loss!r}, x.shape={self.x.shape}, "
                f"y.shape={self.y.shape})")


def targets(loss: str, pred_shape: tuple[int, int], *,
            dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Valid targets for the loss named ``loss`` given predictions of ``pred_shape``.

    The kind is read from the loss row's ``target`` field: ``"class"`` gives integer
    classes ``(N,)``, ``"binary"`` zeros and ones ``(N, K)``, ``"real"`` values in
    ``(-1, 1)`` of shape ``(N, K)``.

    >>> targets("softmax_ce", (2, 3)).example().shape
    (2,)
    """
    table = _losses()
    if loss not in table:
        raise InvalidArgument(f"targets: loss={loss!r} is not in LOSSES; known: "
                              f"{', '.join(table)}")
    resolved = _check_dtype("targets", dtype)
    n, k = pred_shape
    kind = table[loss].target
    if kind == "class":
        return hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1))
    if kind == "binary":
        return hnp.arrays(resolved, (n, k), elements=st.sampled_from([0.0, 1.0]))
    if kind == "real":
        return arrays((n, k), dtype=resolved)
    raise InvalidArgument(f"targets: loss {loss!r} has target kind {kind!r}, which this "
                          f"strategy cannot draw yet (known: class, binary, real)")


def sequential_networks(*, min_depth: int = 1, max_depth: int = 3, min_width: int = 1,
                        max_width: int = 4, min_batch: int = 1, max_batch: int = 3,
                        activations: Sequence[str] | None = None,
                        losses: Sequence[str] = ("mse",), l2: Sequence[float] = (0.0,),
                        dtype: Any = np.float64) -> st.SearchStrategy[NetworkCase]:
    """Whole ``Sequential`` networks: ``depth`` × (Dense, Activation), a loss and data.

    Parameters
    ----------
    min_depth, max_depth : int
        Number of Dense layers, each followed by an activation. Default 1..3.
    min_width, max_width : int
        Input width and every layer's width. Default 1..4.
    min_batch, max_batch : int
        Default 1..3.
    activations : list of str, optional
        Names to draw from (default: every row of ``ACTIVATIONS``, ``identity`` first).
    losses : list of str
        Names from ``LOSSES`` whose ``pred`` kind is ``"real"`` (default ``["mse"]``);
        targets are drawn to suit each loss (see :func:`targets`).
    l2 : list of float
        L2 strengths to draw from (default ``[0.0]``; shrinks towards the first).

    Biases are drawn too, in ``[-0.5, 0.5]`` and at least 0.05 away from 0: with the zero
    biases of a fresh ``Dense`` an input of zeros (where shrinking goes) or a dead ReLU puts
    every following pre-activation exactly on a kink, where backpropagation's ``f'(0)``
    convention need not be a one-sided derivative of the network. Draw inputs on kinks
    deliberately with :func:`arrays` (``on_kinks=True``) when that is what you test.

    Shrinking removes layers first, then narrows them, then moves activations and losses
    towards the first names: a failing network shrinks to the smallest that still fails.

    >>> case = sequential_networks(max_depth=2).example()
    >>> len(case.model.layers) in (2, 4)
    True
    """
    owner = "sequential_networks"
    _check_range(owner, "depth", min_depth, max_depth, minimum=1)
    _check_range(owner, "width", min_width, max_width, minimum=1)
    _check_range(owner, "batch", min_batch, max_batch, minimum=1)
    names = _check_names(owner, "activations", activations, list(_activations()))
    loss_list = _check_names(owner, "losses", losses, list(_losses()))
    on_probabilities = [n for n in loss_list if _losses()[n].pred != "real"]
    if on_probabilities:
        raise InvalidArgument(f"{owner}: losses {on_probabilities} need probabilities as "
                              f"predictions, which a drawn activation does not guarantee; "
                              f"use their with-logits twins (bce_logits, softmax_ce)")
    if isinstance(l2, str) or not l2 or not all(
            isinstance(v, int | float) and v >= 0 for v in l2):
        raise InvalidArgument(f"{owner}: l2 must be a non-empty list of floats >= 0, "
                              f"got {l2!r}")
    resolved = _check_dtype(owner, dtype)
    width = st.integers(min_width, max_width)
    widths = st.lists(width, min_size=min_depth, max_size=max_depth)

    @st.composite
    def build(draw: st.DrawFn) -> NetworkCase:
        from gradcheck.models.dense import Activation, Dense
        from gradcheck.models.losses import Loss
        from gradcheck.models.network import Sequential
        sizes = [draw(width), *draw(widths)]
        layers: list[Any] = []
        for n_in, n_out in itertools.pairwise(sizes):
            dense = Dense(n_in, n_out, dtype=resolved, seed=draw(_SEEDS))
            dense.params["b"][...] = draw(_biases(n_out, resolved))  # in place, as optimizers do
            layers += [dense, Activation(draw(st.sampled_from(names)))]
        model = Sequential(layers, l2=draw(st.sampled_from(list(l2))))
        loss_name = draw(st.sampled_from(loss_list))
        batch = draw(st.integers(min_batch, max_batch))
        x = draw(arrays((batch, sizes[0]), dtype=resolved))
        y = draw(targets(loss_name, (batch, sizes[-1]), dtype=resolved))
        return NetworkCase(model, Loss(loss_name), x, y)

    return build()
