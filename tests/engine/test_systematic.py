"""A relative error common to a whole float64 tensor is caught below the per-entry floor
(``engine/systematic.py``), and correct smooth code never gets "wrong" from it.

The per-entry floor ``rtol = √eps ≈ 1.5e-8`` stays (rounding in one entry of a backward
pass); the whole-tensor test catches ``analytic = (1 + c)·numeric`` for ``|c|`` from
about 5e-10 (``SYSTEMATIC_EPS_UNITS · eps``) on.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.tolerances import PRECISIONS, SYSTEMATIC_EPS_UNITS
from support.toy_layers import ACTIVATIONS, Affine, MaxPool1D

#: name: (f, its exact gradient) — smooth float64 functions of a vector, some with long
#: reductions (a dot product, a log-sum-exp) inside.
FUNCTIONS = {
    "weighted sin": (lambda x, w: float(np.dot(w, np.sin(x))), lambda x, w: w * np.cos(x)),
    "exp": (lambda x, w: float(np.sum(np.exp(0.3 * x) * w)),
            lambda x, w: 0.3 * w * np.exp(0.3 * x)),
    "log-sum-exp": (lambda x, w: float(np.log(np.sum(np.exp(w * x)))),
                    lambda x, w: w * np.exp(w * x) / np.sum(np.exp(w * x))),
    "tanh of a dot": (lambda x, w: float(np.tanh(np.dot(w, x) / np.sqrt(x.size))),
                      lambda x, w: (1 - np.tanh(np.dot(w, x) / np.sqrt(x.size)) ** 2)
                      * w / np.sqrt(x.size)),
    "log1p of squares": (lambda x, w: float(np.sum(w * np.log1p(x ** 2))),
                         lambda x, w: w * 2 * x / (1 + x ** 2)),
}


def _problem(name: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x, w = rng.uniform(-2, 2, n), rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n)
    f, grad = FUNCTIONS[name]
    return (lambda z: f(z, w)), (lambda z: grad(z, w)), x


def test_the_threshold_is_below_the_float64_floor_and_above_what_float32_could_use():
    threshold = SYSTEMATIC_EPS_UNITS * PRECISIONS["float64"].eps
    assert 1e-10 < threshold < 1e-9 < PRECISIONS["float64"].rtol
    assert SYSTEMATIC_EPS_UNITS * PRECISIONS["float32"].eps > PRECISIONS["float32"].rtol


@given(name=st.sampled_from(sorted(FUNCTIONS)), n=st.integers(8, 60),
       size=st.floats(1e-9, 3e-8), sign=st.sampled_from([-1.0, 1.0]),
       seed=st.integers(0, 2 ** 16))
def test_a_common_relative_error_in_every_entry_is_caught(name, n, size, sign, seed):
    f, grad, x = _problem(name, n, seed)
    exact = grad(x)
    assume(np.count_nonzero(exact) >= 8)
    c = sign * size
    result = gradcheck.check_grad(f, lambda z: (1 + c) * grad(z), x, mode="full", seed=seed)
    assert result.verdict == "wrong", str(result)
    assert result.tensors[0].n_wrong > 0


@given(name=st.sampled_from(sorted(FUNCTIONS)), n=st.integers(8, 400),
       seed=st.integers(0, 2 ** 16), scale=st.sampled_from([1e-2, 1.0, 30.0]))
def test_correct_smooth_float64_functions_with_long_reductions_are_never_wrong(
        name, n, seed, scale):
    f, grad, x = _problem(name, n, seed)
    result = gradcheck.check_grad(f, grad, scale * x if name != "log-sum-exp" else x,
                                  mode="full", seed=seed)
    assert result.verdict != "wrong", str(result)


@given(n_in=st.integers(2, 300), n_out=st.integers(1, 4), batch=st.integers(1, 6),
       act=st.sampled_from(sorted(ACTIVATIONS)), seed=st.integers(0, 2 ** 16),
       offset=st.sampled_from([0.0, 3.0, 10.0]))
def test_correct_float64_layers_with_long_reductions_are_never_wrong(n_in, n_out, batch, act,
                                                                   seed, offset):
    # (offsets stay moderate: far in softplus's tail the toy layer's own derivative,
    # 0.5·(1 + tanh(z/2)), underflows to 0 where the function does not: a genuine error)
    x = np.random.default_rng(seed).standard_normal((batch, n_in)) + offset
    result = gradcheck.check_layer(Affine(n_in, n_out, act=act, seed=seed), x, mode="full",
                                   seed=seed)
    assert result.verdict != "wrong", str(result)


class _Scaled(Affine):
    """The toy layer with every gradient (dx, dW, db) scaled by ``1 + c``."""

    def __init__(self, *args, c: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.c = c

    def backward(self, g):
        dx = super().backward(g)
        for grad in self.grads.values():
            grad *= 1 + self.c
        return (1 + self.c) * dx


@pytest.mark.parametrize("c", [1e-9, -3e-9, 5e-9])
def test_a_layer_off_by_a_common_ratio_is_caught_in_every_tensor_that_can_show_it(c):
    x = np.random.default_rng(3).standard_normal((5, 6))
    result = gradcheck.check_layer(_Scaled(6, 4, c=c, seed=3), x, mode="full")
    assert result.verdict == "wrong", str(result)
    by_name = {t.name: t for t in result.tensors}
    assert not by_name["x"].ok and not by_name["W"].ok  # 30 and 24 entries
    assert by_name["b"].ok  # 4 entries: too few to tell a common ratio from one entry
    correct = gradcheck.check_layer(_Scaled(6, 4, c=0.0, seed=3), x, mode="full")
    assert correct.verdict == "ok", str(correct)


def test_an_error_in_one_entry_below_the_floor_is_rounding_for_all_the_check_knows():
    # one entry's backward may round with cancellation: the per-entry floor covers it,
    # and the whole-tensor test needs the same ratio in every group of entries
    f, grad, x = _problem("weighted sin", 24, 5)

    def one_off(z):
        g = grad(z)
        g[int(np.argmax(np.abs(g)))] *= 1 + 5e-9
        return g

    assert gradcheck.check_grad(f, one_off, x, mode="full").verdict == "ok"
    assert gradcheck.check_grad(f, lambda z: (1 + 5e-9) * grad(z), x,
                                mode="full").verdict == "wrong"


def test_a_floor_the_user_chose_is_the_users_call():
    f, grad, x = _problem("exp", 20, 1)
    scaled = lambda z: (1 + 3e-9) * grad(z)  # noqa: E731
    assert gradcheck.check_grad(f, scaled, x, mode="full").verdict == "wrong"
    assert gradcheck.check_grad(f, scaled, x, mode="full", rtol=1e-8).verdict == "ok"


@pytest.mark.parametrize(("offset", "seed"), [(0.0, 0), (1e2, 0), (1e4, 0), (1e4, 1), (1e4, 2)])
def test_a_correct_max_pool_at_a_large_offset_is_not_wrong(offset, seed):
    # at 1e4 the rounding-chosen step is a line across many kinks whose mean slope looks
    # smooth (seed 1: in every group too); the entries' own errors contradict it, so
    # nothing is claimed
    x = np.random.default_rng(seed).standard_normal((4, 16)) + offset
    result = gradcheck.check_layer(MaxPool1D(), x, mode="full")
    assert result.verdict != "wrong", str(result)


def test_a_check_with_the_whole_tensor_test_leaves_the_users_arrays_as_they_were():
    f, grad, x = _problem("weighted sin", 16, 2)
    before = x.copy()
    result = gradcheck.check_grad(f, lambda z: (1 + 1e-8) * grad(z), x, mode="full")
    assert result.verdict == "wrong"
    np.testing.assert_array_equal(x, before)


def test_a_float32_gradient_differenced_through_float64_keeps_its_own_floor():
    # float32 rounding of the gradient is ~6e-8 in every entry, possibly with one ratio
    from gradcheck.engine.numeric import Judging, Target, full_outcome
    from gradcheck.engine.systematic import find_systematic

    f64, f32 = PRECISIONS["float64"], PRECISIONS["float32"]
    x = np.linspace(-1.0, 1.0, 12)
    phi = lambda: float(np.sin(x).sum())  # noqa: E731
    found = {}
    for name, grad_precision in (("float64", f64), ("float32", f32)):
        target = Target("x", "input", x, analytic=(1 + 1e-8) * np.cos(x))
        judging = Judging.default(noise=1.0, precision=f64)
        out, _ = full_outcome(phi, target, phi(), judging)
        assert out.ok
        find_systematic(phi, out, phi(), judging, grad_precision=grad_precision)
        found[name] = out.ok
    assert found == {"float64": False, "float32": True}
