"""gradcheck.array_api: check_function on array API arrays (array-api-strict here).

The user's code is evaluated on arrays of its own namespace and device every time, the
user's arrays are never changed, and the verdicts are check_function's: right VJPs and
JVPs pass, planted bugs are caught and named.
"""

import doctest
import importlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

xp = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

import gradcheck.array_api as ga  # noqa: E402
from gradcheck.engine.safety import CheckInputError  # noqa: E402
from gradcheck.results.result import GradientMismatch  # noqa: E402

DTYPES = {"float64": xp.float64, "float32": xp.float32}


def _point(seed, n, dtype):
    values = np.random.default_rng(seed).uniform(-1.5, 1.5, n)
    return xp.asarray(values, dtype=DTYPES[dtype])


def _tanh_w(record=None):
    """f(x, p) = tanh(p["W"] @ x) + p["b"], with a VJP; calls recorded in ``record``."""
    def f(x, p):
        if record is not None:
            record.extend((type(x), type(p["W"]), x.device))
        return xp.tanh(p["W"] @ x) + p["b"]

    def vjp(g, x, p):
        if record is not None:
            record.extend((type(g),))
        d = g * (1 - xp.tanh(p["W"] @ x) ** 2)
        return xp.matrix_transpose(p["W"]) @ d, {"W": d[:, None] * x[None, :], "b": g}

    return f, vjp


def _params(seed, dtype):
    rng = np.random.default_rng(seed + 1)
    return {"W": xp.asarray(rng.uniform(-1, 1, (2, 3)), dtype=DTYPES[dtype]),
            "b": xp.asarray(rng.uniform(-1, 1, 2), dtype=DTYPES[dtype])}


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(sorted(DTYPES)))
def test_a_right_vjp_passes_and_every_evaluation_sees_the_namespace(seed, dtype):
    record: list = []
    f, vjp = _tanh_w(record)
    x, p = _point(seed, 3, dtype), _params(seed, dtype)
    before = (np.from_dlpack(x).copy(), {k: np.from_dlpack(v).copy() for k, v in p.items()})
    result = ga.check_function(f, x, p, vjp=vjp, names=("x", "p"))
    assert result.verdict == "ok", str(result)
    assert [t.name for t in result.tensors] == ["x", "p.W", "p.b"]
    assert record and all(r is type(x) or r == x.device for r in record)
    # the user's arrays: same namespace, dtype and values as before
    assert x.dtype == DTYPES[dtype] and np.array_equal(np.from_dlpack(x), before[0])
    assert all(np.array_equal(np.from_dlpack(p[k]), before[1][k]) for k in p)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(sorted(DTYPES)),
       bug=st.sampled_from(["entry*1.01", "sign flip", "all*1.01"]))
def test_a_planted_bug_in_the_vjp_is_caught_and_named(seed, dtype, bug):
    f, vjp = _tanh_w()

    def wrong(g, x, p):
        dx, dp = vjp(g, x, p)
        w = np.from_dlpack(dp["W"]).copy()
        if bug == "entry*1.01":
            w[1, 2] *= 1.01
        elif bug == "sign flip":
            w[0, 0] *= -1
        else:
            w *= 1.01
        return dx, {"W": xp.asarray(w), "b": dp["b"]}

    x, p = _point(seed, 3, dtype), _params(seed, dtype)
    result = ga.check_function(f, x, p, vjp=wrong, names=("x", "p"))
    by_name = {t.name: t for t in result.tensors}
    assert result.verdict in ("wrong", "inconclusive"), str(result)
    assert not result.ok
    assert by_name["x"].ok and by_name["p.b"].ok and not by_name["p.W"].ok


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2 ** 16))
def test_a_jvp_is_checked_with_tangents_in_the_namespace(seed):
    seen = []

    def f(x):
        return xp.sin(x) * x

    def jvp(tangents, x):
        (t,) = tangents
        seen.append(type(t))
        return (xp.cos(x) * x + xp.sin(x)) * t

    x = _point(seed, 4, "float64")
    assert ga.check_function(f, x, jvp=jvp).verdict == "ok"
    assert seen and all(s is type(x) for s in seen)
    bad = ga.check_function(f, x, jvp=lambda t, x: xp.cos(x) * x * t[0])
    assert bad.verdict == "wrong"


def test_numpy_constants_pass_through_and_an_array_api_argument_is_required():
    f = lambda x, c: xp.sum(x * x) * float(c[0])  # noqa: E731
    vjp = lambda g, x, c: (2 * g * x * float(c[0]), None)  # noqa: E731
    x = _point(0, 3, "float64")
    assert ga.check_function(f, x, np.array([3], dtype=np.int64), vjp=vjp).ok
    with pytest.raises(CheckInputError, match="array API"):
        ga.check_function(np.sin, np.ones(3), vjp=lambda g, x: g * np.cos(x))


def test_assert_function_raises_on_a_wrong_vjp():
    x = _point(1, 3, "float64")
    with pytest.raises(GradientMismatch):
        ga.assert_function(xp.sin, x, vjp=lambda g, x: g * xp.sin(x))
    assert ga.assert_function(xp.sin, x, vjp=lambda g, x: g * xp.cos(x)).ok


def test_import_gradcheck_imports_no_array_api_library():
    code = ("import sys, gradcheck, gradcheck.array_api; gradcheck.check_function; "
            "print(sorted(m for m in ('array_api_compat', 'array_api_strict') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["gradcheck.array_api",
                                  "gradcheck.adapters.array_api_adapter"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
