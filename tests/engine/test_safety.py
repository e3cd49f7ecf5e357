"""Safety: user arrays bit-identical after any check (also on errors and interrupts), and a
clear error for every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck import CheckInputError, CheckTypeError, NonFiniteError, UserCodeError
from support.toy_layers import Affine, Raising


def snapshot(layer, x):
    return [a.copy() for a in layer.params.values()], x.copy()


def assert_bit_identical(layer, x, saved):
    params, x0 = saved
    for before, after in zip(params, layer.params.values(), strict=True):
        assert before.tobytes() == after.tobytes() and before.dtype == after.dtype
    assert x.tobytes() == x0.tobytes()


@settings(max_examples=20)
@given(dtype=st.sampled_from([np.float64, np.float32]), mode=st.sampled_from(["full", "fast"]),
       seed=st.integers(0, 2**16), bug=st.booleans())
def test_arrays_are_bit_identical_after_a_check(dtype, mode, seed, bug):
    layer = Affine(4, 3, dtype=dtype, seed=seed, bug=("W", (1, 1), 2.0) if bug else None)
    layer.params["W"][0, 0] = -0.0  # signed zero must survive too
    x = np.random.default_rng(seed).uniform(-1, 1, (2, 4)).astype(dtype)
    saved = snapshot(layer, x)
    gradcheck.check_layer(layer, x, mode=mode, seed=seed)
    assert_bit_identical(layer, x, saved)
    assert np.signbit(layer.params["W"][0, 0])


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 20])
def test_arrays_restored_when_the_layer_raises_on_the_nth_call(n, mode):
    """Whichever call raises, the arrays come back bit-identical. Calls on auxiliary
    inputs (a shifted or nudged x, probing for stale caches and precision) may fail
    without failing the check; every call at or near x propagates, chained."""
    layer = Raising(n, ValueError("boom"))
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    saved = snapshot(layer, x)
    try:
        gradcheck.check_layer(layer, x, mode=mode)
    except UserCodeError as err:
        assert isinstance(err.__cause__, ValueError) and "boom" in str(err)
    else:
        assert n in {1, 3, 8, 9, 10}  # the auxiliary calls
    assert_bit_identical(layer, x, saved)


@pytest.mark.parametrize("n", [3, 12, 30])
def test_arrays_restored_on_keyboard_interrupt(n):
    layer = Raising(n, KeyboardInterrupt())
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    saved = snapshot(layer, x)
    with pytest.raises(KeyboardInterrupt):
        gradcheck.check_layer(layer, x, mode="full")
    assert_bit_identical(layer, x, saved)


def test_check_grad_never_mutates_x_and_reports_a_mutating_function():
    x = np.linspace(-1, 1, 5)
    x0 = x.copy()
    gradcheck.check_grad(lambda z: np.sum(z ** 2), lambda z: 2 * z, x)
    assert x.tobytes() == x0.tobytes()

    def mutating(z):
        z *= 2
        return float(np.sum(z))

    with pytest.raises(CheckInputError, match="modified its input"):
        gradcheck.check_grad(mutating, lambda z: np.full_like(z, 2.0), x)
    assert x.tobytes() == x0.tobytes()


def square(z):
    return float(np.sum(z ** 2))


def double(z):
    return 2 * z


def mutating_double(z):
    z += 1.0
    return 2 * z


BAD_GRAD_CALLS = [
    # (description, callable raising, expected type, message fragment)
    ("non-scalar f", lambda: gradcheck.check_grad(lambda z: z ** 2, double, np.ones(3)),
     CheckInputError, "must return a scalar"),
    ("NaN output", lambda: gradcheck.check_grad(lambda z: np.nan, double, np.ones(3)),
     NonFiniteError, "nan"),
    ("NaN in gradient", lambda: gradcheck.check_grad(
        square, lambda z: np.array([1.0, np.nan, 1.0]), np.ones(3)), NonFiniteError, "(1,)"),
    ("gradient wrong shape", lambda: gradcheck.check_grad(square, lambda z: np.ones(4),
                                                           np.ones(3)),
     CheckInputError, "shape (4,), expected (3,)"),
    ("gradient None", lambda: gradcheck.check_grad(square, lambda z: None, np.ones(3)),
     CheckTypeError, "is None"),
    ("integer x", lambda: gradcheck.check_grad(square, double, np.arange(3)), CheckTypeError,
     "astype(np.float64)"),
    ("object x", lambda: gradcheck.check_grad(square, double, np.array([1.0, "a"], object)),
     CheckTypeError, "dtype object"),
    ("empty x", lambda: gradcheck.check_grad(square, double, np.ones(0)), CheckInputError,
     "empty"),
    ("x with inf", lambda: gradcheck.check_grad(square, double, np.array([1.0, np.inf])),
     NonFiniteError, "(1,)"),
    ("f raises", lambda: gradcheck.check_grad(lambda z: 1 / 0, double, np.ones(2)),
     UserCodeError, "ZeroDivisionError"),
    ("f not callable", lambda: gradcheck.check_grad(3.0, double, np.ones(2)), CheckTypeError,
     "f must be callable"),
    ("bad mode", lambda: gradcheck.check_grad(square, double, np.ones(2), mode="slow"),
     CheckInputError, "mode='slow'"),
    ("bad method", lambda: gradcheck.check_grad(square, double, np.ones(2), method="forward"),
     CheckInputError, "method='forward'"),
    ("negative rtol", lambda: gradcheck.check_grad(square, double, np.ones(2), rtol=-1.0),
     CheckInputError, "rtol=-1.0"),
    ("complex on abs", lambda: gradcheck.check_grad(lambda z: np.sum(np.abs(z)), np.sign,
                                                    np.ones(2), method="complex"),
     CheckTypeError, "complex"),
    ("jacobian without vjp/jac", lambda: gradcheck.check_jacobian(np.sin, np.ones(2)),
     CheckInputError, "exactly one of"),
    ("jac of the wrong shape", lambda: gradcheck.check_jacobian(
        np.sin, np.ones(3), jac=lambda z: np.diag(np.cos(z))[:2]), CheckInputError,
     "jac(x) has shape (2, 3), expected (3, 3)"),
    ("gradient mutates x", lambda: gradcheck.check_grad(square, mutating_double, np.ones(3)),
     CheckInputError, "grad (mutating_double) modified its input"),
    ("vjp mutates x", lambda: gradcheck.check_jacobian(
        np.sin, np.ones(3), vjp=lambda z, v: mutating_double(z) * 0 + np.cos(z) * v),
     CheckInputError, "modified its input"),
    ("NaN near the point", lambda: gradcheck.check_grad(
        lambda z: float(np.sum(np.sqrt(z))), lambda z: 0.5 / np.sqrt(np.maximum(z, 1e-300)),
        np.array([0.0, 1.0])), NonFiniteError, "perturbed"),
]


@pytest.mark.parametrize("what, call, error, fragment", BAD_GRAD_CALLS,
                         ids=[c[0] for c in BAD_GRAD_CALLS])
def test_bad_input_gets_a_clear_error(what, call, error, fragment):
    with np.errstate(invalid="ignore"), pytest.raises(error) as info:
        call()
    assert fragment.lower() in str(info.value).lower()
    assert isinstance(info.value, (TypeError, ValueError, RuntimeError))
    if error is not UserCodeError:  # the checker's own findings are not blamed on user code
        assert not isinstance(info.value, UserCodeError)


class ZeroesGradOutInPlace(Affine):
    """Correct, but masks ``grad_out`` in place (cs231n-style ``dout[mask] = 0``)."""

    def backward(self, g):
        g[...] = g  # a write that changes nothing numerically still counts as a write
        g[self.z < -10] = 0.0
        return super().backward(g)


class ScalesGradOutInPlace(Affine):
    def backward(self, g):
        g *= 2.0
        return super().backward(g)


def test_backward_writing_into_grad_out_is_reported_and_judged_on_a_copy():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    harmless = gradcheck.check_layer(ZeroesGradOutInPlace(3, 2), x)
    assert harmless.ok
    assert not any("grad_out in place" in n for n in harmless.notes)  # equal bits: no note
    scaled = gradcheck.check_layer(ScalesGradOutInPlace(3, 2), x)
    assert not scaled.ok
    assert any("modified grad_out in place" in n for n in scaled.notes)
    assert "modified grad_out in place" in str(scaled)
    assert not any("grad_out" in n for n in gradcheck.check_layer(Affine(3, 2), x).notes)


def test_model_whose_forward_mutates_x_is_an_error():
    class Model:
        def __init__(self):
            self.params = {"w": np.ones(2)}
            self.grads = {"w": np.zeros(2)}

        def forward(self, x):
            np.clip(x, -0.25, 0.25, out=x)  # in place: the caller's batch would change
            self.x = x
            return x * self.params["w"]

        def backward(self, g):
            self.grads["w"][...] = np.sum(g * self.x, axis=0)
            return g

    class Loss:
        def forward(self, p, t):
            self.d = p - t
            return float(np.mean(np.sum(self.d ** 2, axis=1)))

        def backward(self):
            return 2 * self.d / self.d.shape[0]

    x = np.full((3, 2), 0.5)
    with pytest.raises(CheckInputError, match="modified its input"):
        gradcheck.check_model(Model(), Loss(), x, np.zeros((3, 2)))
    assert np.all(x == 0.5)


class NoGrads:
    def __init__(self):
        self.params = {"W": np.ones((2, 2))}

    def forward(self, x):
        return x @ self.params["W"]

    def backward(self, g):
        return g @ self.params["W"].T


class KeysDiffer(Affine):
    def backward(self, g):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dx = super().backward(g)
        self.grads = {"W": self.grads["W"]}
        return dx


class WrongShapeGrad(Affine):
    def backward(self, g):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dx = super().backward(g)
        self.grads["b"] = np.zeros(7)
        return dx


class NoneDx(Affine):
    def backward(self, g):
        super().backward(g)


def read_only_layer():
    layer = Affine(3, 2)
    layer.params["W"].setflags(write=False)
    return layer


def int_param_layer():
    layer = Affine(3, 2)
    layer.params["b"] = np.zeros(2, dtype=int)
    layer.grads["b"] = np.zeros(2, dtype=int)
    return layer


BAD_LAYERS = [
    ("no grads attribute", NoGrads, CheckTypeError, ".grads"),
    ("grads keys differ", lambda: KeysDiffer(3, 2), CheckInputError, "keys"),
    ("grad of wrong shape", lambda: WrongShapeGrad(3, 2), CheckInputError, "grads['b']"),
    ("backward returns None", lambda: NoneDx(3, 2), CheckTypeError, "backward"),
    ("read-only parameter", read_only_layer, CheckInputError, "read-only"),
    ("integer parameter", int_param_layer, CheckTypeError, "params['b']"),
    ("not a layer", lambda: object(), CheckTypeError, "forward"),
]


@pytest.mark.parametrize("what, make, error, fragment", BAD_LAYERS,
                         ids=[c[0] for c in BAD_LAYERS])
def test_bad_layer_gets_a_clear_error(what, make, error, fragment):
    with pytest.raises(error, match=None) as info:
        gradcheck.check_layer(make(), np.ones((2, 3)) * 0.3)
    assert fragment in str(info.value)


def test_model_without_parameters_is_an_error():
    class Empty:
        params, grads = {}, {}

        def forward(self, x):
            return x

        def backward(self, g):
            return g

    class Loss:
        def forward(self, p, t):
            return float(np.sum((p - t) ** 2))

        def backward(self):
            return np.zeros(2)

    with pytest.raises(CheckInputError, match="no parameters"):
        gradcheck.check_model(Empty(), Loss(), np.ones(2), np.ones(2))


def test_assert_twins_raise_gradient_mismatch_carrying_the_result():
    with pytest.raises(gradcheck.GradientMismatch) as info:
        gradcheck.assert_grad(square, lambda z: 3 * z, np.ones(3))
    assert isinstance(info.value, AssertionError)
    assert not info.value.result.ok
    assert str(info.value) == str(info.value.result)
    assert gradcheck.assert_layer(Affine(3, 2), np.ones((2, 3))).ok


def test_half_precision_parameters_and_inputs_are_refused_not_passed():
    class Half:
        def __init__(self):
            self.params = {"W": np.eye(2, dtype=np.float16)}
            self.grads = {"W": np.zeros((2, 2), dtype=np.float16)}

        def forward(self, x):
            self.x = x
            return x @ self.params["W"]

        def backward(self, g):
            self.grads["W"][...] = -(self.x.T @ g)  # wrong sign: must never pass
            return g @ self.params["W"].T

    with pytest.raises(TypeError, match=r"params\['W'\].*float16.*too coarse"):
        gradcheck.check_layer(Half(), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"x has dtype float16.*astype\(np.float32\)"):
        gradcheck.check_grad(lambda x: float(np.sum(x ** 2)), lambda x: 2 * x,
                             np.ones(3, dtype=np.float16))


class Rebinding:
    """Replaces its weight array on every forward instead of updating it in place."""

    def __init__(self):
        self.params = {"W": np.array([[1.0, 2.0], [3.0, 4.0]])}
        self.grads = {"W": np.zeros((2, 2))}

    def forward(self, x):
        self.params["W"] = self.params["W"].copy()  # the misuse
        self.x = x
        return x @ self.params["W"]

    def backward(self, g):
        self.grads["W"] = self.x.T @ g
        return g @ self.params["W"].T


def test_a_layer_that_rebinds_its_parameters_is_reported_and_left_unchanged():
    layer = Rebinding()
    original = layer.params["W"]
    before = original.copy()
    with pytest.raises(ValueError, match=r"replaced params\['W'\] with a new array"):
        gradcheck.check_layer(layer, np.ones((3, 2)))
    assert layer.params["W"] is original
    assert np.array_equal(original, before)
