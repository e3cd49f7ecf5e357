"""Full mode: correct gradients pass in float64 and float32, planted errors are caught."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gradcheck
from support.toy_layers import ACTIVATIONS, Affine

shapes = st.tuples(st.integers(1, 4), st.integers(1, 4))
activations = st.sampled_from(sorted(ACTIVATIONS))
dtypes = st.sampled_from([np.float64, np.float32])


def points(shape, dtype=np.float64, bound=2.0):
    return arrays(dtype, shape, elements=st.floats(-bound, bound, width=32))


#: Below this, a gradient has no scale to be resolved against (see test_resolution.py).
NEGLIGIBLE_GRADIENT = 1e-12


@settings(max_examples=40)
@given(data=st.data(), act=activations, dtype=dtypes)
def test_correct_scalar_function_passes(data, act, dtype):
    f, df = ACTIVATIONS[act]
    x = data.draw(points(data.draw(shapes), dtype))
    result = gradcheck.check_grad(lambda z: np.sum(f(z)), df, x, mode="full")
    assert result.verdict != "wrong", str(result)
    # a gradient that is nonzero yet far below any scale (x³ at 5e-36: 2.7e-71) cannot be
    # resolved relative to anything; it may be inconclusive, never wrong
    if not 0 < np.max(np.abs(df(x.astype(np.float64)))) < NEGLIGIBLE_GRADIENT:
        assert result.ok, str(result)
    assert result.tensors[0].n_checked == x.size


@settings(max_examples=30)
@given(data=st.data(), act=activations)
def test_function_computing_internally_in_float32_passes(data, act):
    f, df = ACTIVATIONS[act]
    x = data.draw(points(data.draw(shapes)))

    def f32(z):  # the float64 input is silently truncated: output carries float32 precision
        return float(np.sum(f(z.astype(np.float32)), dtype=np.float32))

    result = gradcheck.check_grad(f32, df, x, mode="full")
    assert result.verdict != "wrong", str(result)
    if not 0 < np.max(np.abs(df(x))) < NEGLIGIBLE_GRADIENT:
        assert result.ok, str(result)
    assert result.options["precision"] == "float32"


@settings(max_examples=30)
@given(n=st.integers(1, 4), i=st.integers(1, 4), o=st.integers(1, 3), act=activations,
       dtype=dtypes, compute32=st.booleans(), seed=st.integers(0, 2**16))
def test_correct_layer_passes_in_both_dtypes(n, i, o, act, dtype, compute32, seed):
    layer = Affine(i, o, act=act, dtype=dtype, seed=seed,
                   compute_dtype=np.float32 if compute32 else None)
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (n, i)).astype(dtype)
    result = gradcheck.check_layer(layer, x, mode="full", seed=seed)
    assert result.ok, str(result)
    assert [t.name for t in result.tensors] == ["x", "W", "b"]


@settings(max_examples=30)
@given(data=st.data(), act=activations, rel=st.sampled_from([1e-4, -1e-4, 1e-2, 1.0]))
def test_planted_relative_error_in_one_entry_is_caught_in_float64(data, act, rel):
    f, df = ACTIVATIONS[act]
    x = data.draw(points(data.draw(shapes), bound=1.5))
    k = data.draw(st.integers(0, x.size - 1))
    if abs(df(x.flat[k])) < 1e-3:  # a relative error of a ~zero entry is not an error
        return

    def wrong(z):
        g = df(z)
        g.flat[k] *= 1 + rel
        return g

    result = gradcheck.check_grad(lambda z: np.sum(f(z)), wrong, x, mode="full")
    assert not result.ok
    assert result.tensors[0].n_wrong == 1
    assert result.tensors[0].worst_index == np.unravel_index(k, x.shape)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("param", ["W", "b"])
def test_planted_error_in_a_parameter_names_that_tensor(dtype, param):
    layer = Affine(3, 2, dtype=dtype, bug=(param, (0,) * (2 if param == "W" else 1), 1.1))
    result = gradcheck.check_layer(layer, np.linspace(-1, 1, 12).reshape(4, 3), mode="full")
    verdict = {t.name: t.ok for t in result.tensors}
    assert verdict == {"x": True, "W": param != "W", "b": param != "b"}
    assert result.worst[0].tensor == param


@pytest.mark.parametrize("method", ["central", "richardson"])
def test_methods_agree_on_correct_and_wrong(method):
    f, df = ACTIVATIONS["sin"]
    x = np.linspace(-2, 2, 6)
    assert gradcheck.check_grad(lambda z: np.sum(f(z)), df, x, method=method).ok
    assert not gradcheck.check_grad(lambda z: np.sum(f(z)), lambda z: df(z) * 1.001, x,
                                    method=method).ok


def test_complex_step_matches_and_catches():
    x = np.linspace(-1, 1, 5)
    ok = gradcheck.check_grad(lambda z: np.sum(np.exp(z) * np.sin(z)),
                              lambda z: np.exp(z) * (np.sin(z) + np.cos(z)), x,
                              method="complex")
    bad = gradcheck.check_grad(lambda z: np.sum(np.exp(z)), lambda z: np.exp(z) * 1.0001, x,
                               method="complex")
    assert ok.ok and not bad.ok
    assert ok.tensors[0].max_rel_error < 1e-13  # no subtractive cancellation


def test_explicit_tolerances_override_the_table():
    f, df = ACTIVATIONS["tanh"]
    x = np.linspace(-1, 1, 4)
    loose = gradcheck.check_grad(lambda z: np.sum(f(z)), lambda z: df(z) * 1.001, x, rtol=1e-2)
    assert loose.ok and loose.options["rtol"] == 1e-2


def test_jacobian_vjp_and_jac_and_transposed_jac():
    A = np.random.default_rng(0).standard_normal((3, 4))

    def f(x):
        return np.tanh(A @ x)

    def jac(x):
        return (1 - np.tanh(A @ x) ** 2)[:, None] * A

    x = np.linspace(-1, 1, 4)
    assert gradcheck.check_jacobian(f, x, jac=jac).ok
    assert gradcheck.check_jacobian(f, x, vjp=lambda z, v: v @ jac(z)).ok
    assert not gradcheck.check_jacobian(f, x, vjp=lambda z, v: v @ jac(z) * -1).ok
    assert not gradcheck.check_jacobian(f, x, vjp=lambda z, v: (jac(z).T @ v[::-1])).ok


def test_hvp_right_and_wrong():
    B = np.random.default_rng(1).standard_normal((5, 5))
    S = B + B.T  # F(x) = x·Sx/2 + Σ sin(x): grad = Sx + cos(x), H = S − diag(sin(x))

    def grad(x):
        return S @ x + np.cos(x)

    x = np.linspace(-1, 1, 5)
    assert gradcheck.check_hvp(grad, lambda z, w: S @ w - np.sin(z) * w, x).ok
    assert not gradcheck.check_hvp(grad, lambda z, w: S @ w, x).ok
    assert not gradcheck.check_hvp(grad, lambda z, w: B @ w - np.sin(z) * w, x).ok


@settings(max_examples=25)
@given(data=st.data(), act=activations, mode=st.sampled_from(["full", "fast"]))
def test_elementwise_jacobian_of_any_shape(data, act, mode):
    f, df = ACTIVATIONS[act]
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
    x = data.draw(points(shape, bound=1.5))
    n = x.size

    def jac(z):
        return np.diag(df(z).ravel()).reshape(shape + shape)

    assert gradcheck.check_jacobian(f, x, jac=jac, mode=mode).ok
    assert gradcheck.check_jacobian(f, x, vjp=lambda z, v: v * df(z), mode=mode).ok
    if np.abs(df(x)).min() > 1e-3:
        wrong = gradcheck.check_jacobian(f, x, vjp=lambda z, v: -v * df(z), mode=mode)
        assert not wrong.ok and wrong.tensors[0].n_wrong >= (n if mode == "full" else 1)


def sin32(z):
    return float(np.sum(np.sin(z.astype(np.float32)), dtype=np.float32))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), mode=st.sampled_from(["full", "fast"]))
def test_step_too_coarse_for_the_function_is_shrunk_not_a_false_alarm(seed, mode):
    """The relative float32 step at |x| ~ 3e3 is ~15: several periods of sin. Wrong
    verdicts are re-judged at 16× smaller steps; real bugs stay caught."""
    x = (np.random.default_rng(seed).uniform(-1, 1, 30) * 3e3).astype(np.float32)

    def cos32(z):
        return np.cos(z.astype(np.float32))

    right = gradcheck.check_grad(sin32, cos32, x, mode=mode, seed=seed)
    # an entry whose every step spans whole periods or drowns in float32 rounding is
    # unresolved (inconclusive), never a false alarm
    assert right.verdict in ("ok", "inconclusive"), str(right)
    assert all(t.n_wrong == 0 for t in right.tensors), str(right)
    assert not gradcheck.check_grad(sin32, lambda z: -cos32(z), x, mode=mode, seed=seed).ok
    assert not gradcheck.check_grad(sin32, lambda z: 2 * cos32(z), x, mode=mode, seed=seed).ok


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("scale", [1e-250, 1e-150, 1e150, 1e250])
def test_huge_and_tiny_gradients_are_judged_without_overflow(scale, mode):
    """RMS floors and noise fits must not square 1e250 (inf) or 1e-250 (0): numpy's
    overflow warnings are errors in this suite, and a 0/0 would poison the verdict."""
    x = np.linspace(-1.5, 1.5, 9)

    def f(z):
        return float(np.sum(scale * np.tanh(z)))

    def df(z):
        return scale * (1 - np.tanh(z) ** 2)

    assert gradcheck.check_grad(f, df, x, mode=mode).ok
    wrong = gradcheck.check_grad(f, lambda z: -df(z), x, mode=mode)
    assert not wrong.ok and any("sign flipped" in line for line in wrong.diagnosis)


@settings(max_examples=20, deadline=None)
@given(mode=st.sampled_from(["full", "fast"]), bug=st.sampled_from(["none", "sign", "one"]),
       size=st.integers(1, 60), coarse=st.booleans())
def test_evaluations_count_every_call_of_the_function(mode, bug, size, coarse):
    """``result.evaluations`` is exact: refinements, smaller steps and localization too."""
    calls = []
    x = np.linspace(-1, 1, size) * (3e3 if coarse else 1.0)
    x = x.astype(np.float32) if coarse else x

    def f(z):
        calls.append(1)
        return sin32(z) if coarse else float(np.sum(np.sin(z)))

    def df(z):
        d = np.cos(z.astype(np.float32)) if coarse else np.cos(z)
        return {"none": d, "sign": -d, "one": d * np.where(np.arange(size) == 0, 1.5, 1)}[bug]

    result = gradcheck.check_grad(f, df, x, mode=mode)
    assert result.evaluations == len(calls)
