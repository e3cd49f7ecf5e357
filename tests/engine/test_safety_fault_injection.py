"""Fault injection: user code raising or returning garbage at random calls, over many seeds.

Whatever happens, every user array (parameters, input, targets) is bit-identical
afterwards, and an exception the user's code raised is never swallowed: the check either
raises (the user's exception chained, or a checker error naming the garbage) or returns a
verdict, and it returns one only when the fault hit an input off the point to check (a
shifted probe input, where the function may be outside its domain) or was never reached.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck import CheckInputError, CheckTypeError, UserCodeError
from support.toy_layers import Affine


class Boom(Exception):
    """The user's own exception."""


FAULTS = {
    "raise": lambda out: (_ for _ in ()).throw(Boom("user code failed")),
    "memory": lambda out: (_ for _ in ()).throw(MemoryError("no memory")),
    "recursion": lambda out: (_ for _ in ()).throw(RecursionError("too deep")),
    "nan": lambda out: np.full_like(out, np.nan),
    "inf": lambda out: np.full_like(out, np.inf),
    "none": lambda out: None,
    "int": lambda out: 3,
    "text": lambda out: "oops",
    "shape": lambda out: out[..., :1],
}


class Faulty(Affine):
    """Affine whose forward (or backward) applies ``fault`` on call number ``at``."""

    def __init__(self, fault, at, where, x):
        super().__init__(4, 3, seed=at)
        self.fault, self.at, self.where, self.point = fault, at, where, x
        self.calls = {"forward": 0, "backward": 0}
        self.hit = None  # None: never reached; True: at x; False: elsewhere

    def _maybe(self, name, out):
        self.calls[name] += 1
        if name == self.where and self.calls[name] == self.at:
            self.hit = self.last_at_point  # backward: where the forward before it was
            return FAULTS[self.fault](out)
        return out

    def forward(self, x):
        self.last_at_point = bool(np.array_equal(x, self.point))
        return self._maybe("forward", super().forward(x))

    def backward(self, g):
        return self._maybe("backward", super().backward(g))


def _user_error_reached(err):
    """The exception a user sees carries the user's own exception (or names the garbage)."""
    if isinstance(err, UserCodeError):
        return isinstance(err.__cause__, (Boom, MemoryError, RecursionError, TypeError,
                                          ValueError, IndexError, Warning, CheckTypeError,
                                          CheckInputError))
    return isinstance(err, (CheckInputError, CheckTypeError))


@settings(max_examples=300, deadline=None)
@given(fault=st.sampled_from(sorted(FAULTS)), at=st.integers(1, 40),
       where=st.sampled_from(["forward", "backward"]), seed=st.integers(0, 2 ** 16),
       mode=st.sampled_from(["full", "fast"]))
def test_faults_anywhere_leave_arrays_bit_identical_and_are_never_swallowed(
        fault, at, where, seed, mode):
    x = np.random.default_rng(seed).standard_normal((2, 4))
    layer = Faulty(fault, at, where, x)
    params = {k: v.copy() for k, v in layer.params.items()}
    x_before = x.copy()
    try:
        result = gradcheck.check_layer(layer, x, seed=seed, mode=mode)
    except (UserCodeError, CheckInputError, CheckTypeError) as err:
        assert _user_error_reached(err), repr(err)
        assert layer.hit is not None, "an error without any fault"
    else:  # a verdict: only when the fault was never reached or is provably harmless
        if layer.hit is not None and fault in ("memory", "recursion"):
            pytest.fail(f"{fault} swallowed at call {at} of {where}")
        if layer.hit is True and fault not in ("nan", "inf"):
            pytest.fail(f"{fault} at x (call {at} of {where}) swallowed: ok={result.ok}")
        # NaN/Inf with x unchanged come from a parameter moved far along the Taylor
        # test's direction (the engine drops such points); everywhere else they raise.
    assert x.tobytes() == x_before.tobytes()
    for k, v in params.items():
        assert layer.params[k].tobytes() == v.tobytes() and layer.params[k].dtype == v.dtype


SCALAR_FAULTS = {
    "raise": FAULTS["raise"], "memory": FAULTS["memory"], "recursion": FAULTS["recursion"],
    "nan": lambda out: float("nan"), "inf": lambda out: float("inf"),
    "none": FAULTS["none"], "text": FAULTS["text"], "complex": lambda out: out + 1j,
    "vector": lambda out: np.ones(2),
}


@settings(max_examples=200, deadline=None)
@given(fault=st.sampled_from(sorted(SCALAR_FAULTS)), at=st.integers(1, 30),
       in_grad=st.booleans(), seed=st.integers(0, 2 ** 16),
       mode=st.sampled_from(["full", "fast"]))
def test_faults_in_check_grad_are_never_swallowed_at_the_point(fault, at, in_grad, seed,
                                                              mode):
    x = np.random.default_rng(seed).standard_normal(5)
    x_before = x.copy()
    calls, hit = [0], [None]

    def faulty(value, z):
        calls[0] += 1
        if calls[0] == at:
            hit[0] = bool(np.array_equal(z, x))
            return SCALAR_FAULTS[fault](value)
        return value

    def f(z):
        value = float(np.sum(np.sin(z)))
        return value if in_grad else faulty(value, z)

    def grad(z):
        value = np.cos(z)
        return faulty(value, z) if in_grad else value

    try:
        result = gradcheck.check_grad(f, grad, x, seed=seed, mode=mode)
    except (UserCodeError, CheckInputError, CheckTypeError) as err:
        assert _user_error_reached(err), repr(err)
        assert hit[0] is not None, "an error without any fault"
    else:
        if hit[0] is not None and fault in ("memory", "recursion", "none", "text", "complex",
                                            "vector", "raise"):
            pytest.fail(f"{fault} at call {at} ({'grad' if in_grad else 'f'}) swallowed: "
                        f"ok={result.ok}")
        if hit[0] is True and in_grad:
            pytest.fail(f"{fault} in the gradient at x swallowed")
    assert x.tobytes() == x_before.tobytes()
