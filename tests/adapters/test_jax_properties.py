"""Properties: pytrees of any size, right VJPs pass, a planted custom_vjp error is named."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
jnp = jax.numpy

import gradcheck.jax as gj  # noqa: E402


def _model(params, x):
    return jnp.tanh(x @ params["W"] + params["b"]) * params["scale"]


def _with_wrong_leaf(leaf, factor):
    @jax.custom_vjp
    def f(params, x):
        return _model(params, x)

    def fwd(params, x):
        return jax.vjp(_model, params, x)

    def bwd(pullback, g):
        dp, dx = pullback(g)
        if leaf == "x":
            return dp, dx * factor
        return {**dp, leaf: dp[leaf] * factor}, dx

    f.defvjp(fwd, bwd)
    return f


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 3), d=st.integers(1, 4), k=st.integers(1, 3),
       leaf=st.sampled_from(["W", "b", "scale", "x"]), seed=st.integers(0, 2**16))
def test_pytree_vjp_right_passes_and_the_wrong_leaf_is_named(n, d, k, leaf, seed):
    rng = np.random.default_rng(seed)
    params = {"W": jnp.asarray(rng.standard_normal((d, k)) * 0.7),
              "b": jnp.asarray(rng.standard_normal(k) * 0.3),
              "scale": jnp.asarray(1.0 + rng.random())}
    x = jnp.asarray(rng.standard_normal((n, d)))
    assert gj.check(_model, params, x, names=("params", "x")).ok
    result = gj.check(_with_wrong_leaf(leaf, 1.05), params, x, names=("params", "x"))
    wrong = {t.name for t in result.tensors if not t.ok}
    assert wrong == {"x" if leaf == "x" else f"params.{leaf}"}
