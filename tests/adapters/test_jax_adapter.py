"""gradcheck.jax: custom_vjp/custom_jvp, pytrees, jit, the check_grads drop-in, x64 rule."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck.jax as gj  # noqa: E402
from gradcheck.results.result import GradientMismatch  # noqa: E402


def _sin_vjp(factor=1.0, entry=None, off=0.01):
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    def fwd(x):
        return jnp.sin(x), x

    def bwd(x, g):
        d = g * jnp.cos(x) * factor
        if entry is not None:
            d = d.at[entry].multiply(1 + off)
        return (d,)

    f.defvjp(fwd, bwd)
    return f


def _square_jvp(factor=1.0):
    @jax.custom_jvp
    def f(x):
        return x ** 2

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return x ** 2, 2 * x * t * factor

    return f


X = np.linspace(-1.3, 1.7, 6)


def test_correct_custom_vjp_passes_and_a_wrong_one_is_caught_with_its_entry():
    assert gj.check(_sin_vjp(), jnp.asarray(X)).ok
    # float32 (x64 off): one entry 10 % off; 1 % is caught in float64 (test_x64_...)
    result = gj.check(_sin_vjp(entry=3, off=0.1), jnp.asarray(X), names=("x",))
    assert not result.ok
    assert result.tensors[0].name == "x" and result.tensors[0].n_wrong == 1
    assert result.tensors[0].worst_index == (3,)


def test_custom_jvp_is_checked_in_both_modes():
    for ad in ("fwd", "rev"):  # reverse mode transposes the JVP rule: it shows there too
        assert gj.check(_square_jvp(), jnp.asarray(X), ad=ad).ok
        assert not gj.check(_square_jvp(1.01), jnp.asarray(X), ad=ad).ok


def test_check_grads_drop_in_returns_none_and_raises_an_assertion_error():
    x = jnp.asarray(X)
    assert gj.check_grads(jnp.tanh, (x,), order=2) is None
    assert gj.check_grads(_sin_vjp(), (x,), 1, modes=["rev"]) is None
    with pytest.raises(AssertionError) as info:
        gj.check_grads(_sin_vjp(1.01), (x,), 1, modes=("rev",), atol=1e-2, rtol=1e-2)
    assert isinstance(info.value, GradientMismatch)
    with pytest.raises(GradientMismatch):
        gj.check_grads(_square_jvp(1.01), (x,), order=1, modes=("fwd",))


def test_second_order_catches_a_wrong_derivative_of_the_rule():
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):  # first order right, but cos(x) taken as a constant
        (x,), (t,) = primals, tangents
        return jnp.sin(x), jax.lax.stop_gradient(jnp.cos(x)) * t

    x = jnp.asarray(X)
    gj.check_grads(f, (x,), order=1)
    with pytest.raises(GradientMismatch):
        gj.check_grads(f, (x,), order=2, modes=("rev",))


def test_pytrees_are_named_by_path_and_integer_leaves_are_constants():
    params = {"W": jnp.full((3, 2), 0.3), "b": jnp.array([0.1, -0.2])}
    x = jnp.asarray(np.arange(6.0).reshape(2, 3) / 6)
    ids = jnp.array([1, 0])

    def net(p, x, ids):
        return jnp.tanh(x @ p["W"] + p["b"])[jnp.arange(2), ids], {"sum": jnp.sum(x)}

    result = gj.check(net, params, x, ids, names=("params", "x", "ids"))
    assert result.ok, str(result)
    assert [t.name for t in result.tensors] == ["params.W", "params.b", "x"]
    only = gj.check(net, params, x, ids, names=("params", "x", "ids"), wrt="params")
    assert [t.name for t in only.tensors] == ["params.W", "params.b"]
    with pytest.raises(ValueError):
        gj.check(net, params, x, ids, wrt="nothing")


def test_jitted_functions_and_users_arrays_unchanged():
    x = jnp.asarray(X)
    host = np.array(X)
    before = np.array(x)
    assert gj.check(jax.jit(lambda a, b: jnp.sin(a) * b), x, host).ok
    assert np.array_equal(np.array(x), before) and np.array_equal(host, X)


def test_x64_is_read_not_flipped():
    assert not jax.config.jax_enable_x64
    result = gj.check(jnp.sin, X)  # float64 NumPy input under x64 off: float32
    assert result.ok and result.options["precision"] == "float32"
    assert any("jax_enable_x64" in n for n in result.notes)
    with jax.enable_x64(True):
        wide = gj.check(_sin_vjp(entry=2), jnp.asarray(X, dtype=jnp.float64))
        assert wide.options["precision"] == "float64" and not wide.ok
        assert gj.check(_sin_vjp(), jnp.asarray(X, dtype=jnp.float64)).ok
    assert not jax.config.jax_enable_x64


def test_with_x64_float32_leaves_are_differenced_through_float64():
    x = jnp.asarray(X, dtype=jnp.float32)
    with jax.enable_x64(True):
        result = gj.check(_sin_vjp(entry=3, off=1e-3), x)
        assert not result.ok and result.tensors[0].n_wrong == 1
        assert any("float64 evaluation" in n for n in result.notes)
        assert gj.check(_sin_vjp(), x).ok
        own = gj.check(_sin_vjp(), x, promote=False)
        assert own.ok and own.options["precision"] == "float32"


def test_float32_planted_bugs_are_caught_without_tuning():
    x = jnp.asarray(X, dtype=jnp.float32)
    assert not gj.check(_sin_vjp(1.01), x).ok
    assert not gj.check(_sin_vjp(-1.0), x).ok


def test_half_leaves_are_evaluated_in_float32():
    result = gj.check(jnp.tanh, jnp.asarray(X, dtype=jnp.bfloat16))
    assert result.ok and any("float32" in n for n in result.notes)


def test_bad_arguments():
    with pytest.raises(ValueError):
        gj.check(jnp.sin, jnp.ones(2), ad="up")
    with pytest.raises(ValueError):
        gj.check_grads(jnp.sin, (jnp.ones(2),), 1, modes=("sideways",))
    with pytest.raises(TypeError):
        gj.check(jnp.sin, jnp.ones(2, dtype=jnp.complex64))
    with pytest.raises(RuntimeError, match=r"jvp|forward"):  # custom_vjp has no forward mode
        gj.check(_sin_vjp(), jnp.ones(2), ad="fwd")


def test_accelerator_path_rebuilds_with_only_the_changed_entries():
    """``x.at[idx].set(v)`` (the path for arrays on an accelerator), exercised on the CPU."""
    from gradcheck.adapters.jax_adapter import _Slot

    x = jnp.asarray(np.arange(12.0).reshape(3, 4), dtype=jnp.float32)
    slot = _Slot("x", x, jnp.float32, rebuild_all=False)
    rng = np.random.default_rng(0)
    for changed in (1, 3, 12, 0, 1):
        idx = rng.choice(slot.work.size, changed, replace=False)
        slot.work.reshape(-1)[idx] -= np.float32(0.5)
        assert np.array_equal(np.asarray(slot.current()), slot.work)
    assert np.array_equal(np.asarray(x), np.arange(12.0).reshape(3, 4))


def test_copy_like_functions_with_x64_are_judged_at_float64_rounding():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((5, 10, 5)), dtype=jnp.float32)

    @jax.custom_vjp
    def flip(t):
        return jnp.flip(t, 0)

    flip.defvjp(lambda t: (flip(t), None), lambda _, g: (jnp.flip(g, 0) * 1.01,))
    with jax.enable_x64(True):
        assert gj.check(lambda t: jnp.flip(t, 0), x).ok
        assert not gj.check(flip, x).ok
