"""check_function: trees of any nesting, several inputs and outputs, VJP and JVP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.adapters.trees import flatten

# ---------------------------------------------------------------- random structures


@st.composite
def trees(draw, depth=2):
    """A tree of small float arrays and its leaves' names built independently of flatten."""
    if depth == 0 or draw(st.booleans()):
        shape = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        return ("leaf", shape)
    kind = draw(st.sampled_from(["dict", "list", "tuple"]))
    n = draw(st.integers(1, 3))
    items = [draw(trees(depth=depth - 1)) for _ in range(n)]
    if kind == "dict":
        return ("dict", {f"k{i}": item for i, item in enumerate(items)})
    return (kind, items)


def realize(spec, rng, root):
    """(tree, [(name, array)]) for a spec; names follow the documented path rule."""
    kind, body = spec
    if kind == "leaf":
        arr = rng.uniform(-1, 1, body)
        return arr, [(root, arr)]
    if kind == "dict":
        out, names = {}, []
        for key, item in body.items():
            out[key], sub = realize(item, rng, f"{root}.{key}" if root else key)
            names += sub
        return out, names
    out, names = [], []
    for i, item in enumerate(body):
        tree, sub = realize(item, rng, f"{root}[{i}]")
        out.append(tree)
        names += sub
    return (out if kind == "list" else tuple(out)), names


def problem(specs, n_out, seed):
    """f(*args) -> n_out outputs, out_k = w_k Σ_l c_kl Σ sin(leaf_l); its vjp and jvp."""
    rng = np.random.default_rng(seed)
    args, named = [], []
    for i, spec in enumerate(specs):
        tree, names = realize(spec, rng, f"arg{i}")
        args.append(tree)
        named += names
    C = rng.standard_normal((n_out, len(named)))
    W = [rng.standard_normal(k + 1) for k in range(n_out)]

    def leaves(args):
        return [leaf.value for a in args for leaf in flatten(a)]

    def f(*args):
        s = np.array([np.sum(np.sin(v)) for v in leaves(args)])
        outs = tuple(W[k] * (C[k] @ s) for k in range(n_out))
        return outs[0] if n_out == 1 else outs

    def vjp_with(factor_for):
        def vjp(g, *args):
            g = (g,) if n_out == 1 else g
            coef = sum(C[k] * float(W[k] @ g[k]) for k in range(n_out))
            grads = [coef[j] * np.cos(v) * factor_for(j) for j, v in enumerate(leaves(args))]
            it = iter(grads)
            return tuple(rebuild_like(a, it) for a in args)
        return vjp

    def jvp(t, *args):
        ds = np.array([np.sum(np.cos(v) * tv) for v, tv in zip(leaves(args), leaves(t),
                                                                 strict=True)])
        outs = tuple(W[k] * (C[k] @ ds) for k in range(n_out))
        return outs[0] if n_out == 1 else outs

    return f, vjp_with, jvp, args, [n for n, _ in named]


def rebuild_like(tree, it):
    if isinstance(tree, dict):
        return {k: rebuild_like(v, it) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(rebuild_like(v, it) for v in tree)
    return next(it)


STRUCTURES = st.tuples(st.lists(trees(), min_size=1, max_size=3), st.integers(1, 3),
                       st.integers(0, 2 ** 16))


@settings(max_examples=25, deadline=None)
@given(STRUCTURES)
def test_any_nesting_right_passes_with_every_leaf_named(structure):
    specs, n_out, seed = structure
    f, vjp_with, jvp, args, names = problem(specs, n_out, seed)
    copies = [leaf.value.copy() for a in args for leaf in flatten(a)]
    result = gradcheck.check_function(f, *args, vjp=vjp_with(lambda j: 1.0), jvp=jvp)
    assert result.ok, str(result)
    assert [t.name for t in result.tensors] == names + [f"{n} (jvp)" for n in names]
    after = [leaf.value for a in args for leaf in flatten(a)]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(copies, after, strict=True))


@settings(max_examples=25, deadline=None)
@given(STRUCTURES, st.data())
def test_any_nesting_a_wrong_leaf_is_the_one_named(structure, data):
    specs, n_out, seed = structure
    f, vjp_with, _, args, names = problem(specs, n_out, seed)
    bad = data.draw(st.integers(0, len(names) - 1))
    result = gradcheck.check_function(f, *args, vjp=vjp_with(lambda j: 1.3 if j == bad else 1.0))
    assert not result.ok
    assert [t.name for t in result.tensors if not t.ok] == [names[bad]]


@settings(max_examples=15, deadline=None)
@given(STRUCTURES, st.data())
def test_any_nesting_a_wrong_jvp_is_caught(structure, data):
    specs, n_out, seed = structure
    f, _vjp_with, jvp, args, names = problem(specs, n_out, seed)

    def wrong_jvp(t, *a):
        out = jvp(t, *a)
        return tuple(1.2 * o for o in out) if isinstance(out, tuple) else 1.2 * out

    result = gradcheck.check_function(f, *args, jvp=wrong_jvp)
    assert not result.ok
    assert {t.name for t in result.tensors if not t.ok} <= set(names)


# ---------------------------------------------------------------- forward mode
def tanh_layer(x, W):
    return np.tanh(W @ x)


def tanh_vjp(g, x, W):
    d = g * (1 - np.tanh(W @ x) ** 2)
    return W.T @ d, np.outer(d, x)


def tanh_jvp(t, x, W):
    tx, tW = t
    return (1 - np.tanh(W @ x) ** 2) * (W @ tx + tW @ x)


X = np.random.default_rng(3).standard_normal(4)
WT = np.random.default_rng(4).standard_normal((3, 4))


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_jvp_alone_and_with_vjp(mode):
    r = gradcheck.check_function(tanh_layer, X, WT, jvp=tanh_jvp, names=("x", "W"), mode=mode)
    assert r.ok, str(r)
    both = gradcheck.check_function(tanh_layer, X, WT, vjp=tanh_vjp, jvp=tanh_jvp,
                                    names=("x", "W"), mode=mode)
    assert both.ok and both.options["dot_test"] == "agrees"

    def bad_jvp(t, x, W):
        tx, tW = t
        return (1 - np.tanh(W @ x) ** 2) * (W @ tx + 1.1 * tW @ x)

    bad = gradcheck.check_function(tanh_layer, X, WT, vjp=tanh_vjp, jvp=bad_jvp,
                                   names=("x", "W"), mode=mode)
    assert not bad.ok
    assert {t.name for t in bad.tensors if not t.ok} == {"W (jvp)"}
    assert bad.options["dot_test"] == "disagrees"


def test_a_tiny_jvp_error_below_the_differences_fails_the_dot_test():
    def close_jvp(t, x, W):  # off by 1e-9 relative: no finite difference resolves it
        return tanh_jvp(t, x, W) * (1 + 1e-9)

    r = gradcheck.check_function(tanh_layer, X, WT, vjp=tanh_vjp, jvp=close_jvp,
                                 names=("x", "W"))
    assert not r.ok
    assert r.options["dot_test"] == "disagrees"


# ---------------------------------------------------------------- selection, constants, complex
def test_wrt_patterns_choose_the_tensors():
    params = {"W1": np.ones((2, 2)), "b1": np.zeros(2), "layers": [np.ones(2), np.ones(2)]}

    def f(x, p):
        return np.tanh(p["W1"] @ x + p["b1"]) * p["layers"][0] * p["layers"][1]

    def vjp(g, x, p):
        t = np.tanh(p["W1"] @ x + p["b1"])
        gl = p["layers"][0] * p["layers"][1]
        d = g * gl * (1 - t ** 2)
        return p["W1"].T @ d, {"W1": np.outer(d, x), "b1": d,
                               "layers": [g * t * p["layers"][1], g * t * p["layers"][0]]}

    x = np.array([0.3, -0.2])
    r = gradcheck.check_function(f, x, params, vjp=vjp, names=("x", "params"),
                                 wrt=["params.W*", "params.layers"])
    assert [t.name for t in r.tensors] == ["params.W1", "params.layers[0]", "params.layers[1]"]
    assert r.ok
    with pytest.raises(gradcheck.CheckInputError, match="nothing"):
        gradcheck.check_function(f, x, params, vjp=vjp, names=("x", "params"), wrt="nothing")


def test_default_names_and_constants_passed_through():
    conf = {"scale": 2.0}

    def f(x, conf, ids):
        return conf["scale"] * x[ids]

    def vjp(g, x, conf, ids):
        dx = np.zeros_like(x)
        np.add.at(dx, ids, conf["scale"] * g)
        return dx, None, None

    r = gradcheck.check_function(f, np.arange(4.0), conf, np.array([1, 1, 3]), vjp=vjp)
    assert r.ok and [t.name for t in r.tensors] == ["arg0"]
    assert conf == {"scale": 2.0}


def test_complex_input_real_output_uses_the_conj_wirtinger_gradient():
    z = np.array([1 + 2j, -0.5 + 0.3j])

    def f(z):  # real: Σ |z|²
        return np.sum(np.abs(z) ** 2)

    before = z.copy()
    assert gradcheck.check_function(f, z, vjp=lambda g, z: 2 * z * g).ok  # PyTorch: 2z
    assert z.tobytes() == before.tobytes()
    wrong = gradcheck.check_function(f, z, vjp=lambda g, z: 2 * np.conj(z) * g)
    assert not wrong.ok
    assert wrong.tensors[0].shape == (2, 2)


def test_complex_to_complex_through_the_vjp():
    z = np.array([0.5 + 1j, -1 + 0.2j])
    a = 1.5 - 0.5j

    def f(z):  # holomorphic: a z²
        return a * z ** 2

    def vjp(g, z):  # PyTorch's convention: grad_in = conj(df/dz) · grad_out
        return np.conj(2 * a * z) * g

    assert gradcheck.check_function(f, z, vjp=vjp).ok
    assert not gradcheck.check_function(f, z, vjp=lambda g, z: 2 * a * z * g).ok


def test_float32_inputs_are_checked_without_tuning():
    x = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float32)
    r = gradcheck.check_function(lambda x: np.tanh(x), x, vjp=lambda g, x: g * (1 - np.tanh(x) ** 2))
    assert r.ok, str(r)


def test_a_vjp_that_modifies_its_input_is_an_error():
    def vjp(g, x):
        x *= 2
        return g

    with pytest.raises(gradcheck.CheckInputError, match="in place"):
        gradcheck.check_function(lambda x: x, np.ones(3), vjp=vjp)


@pytest.mark.parametrize(("value", "match"), [
    ((np.ones(3),), "expected"),        # one gradient for two arguments
    ([np.ones(2), np.ones(3)], "shape"),
])
def test_wrong_gradient_structures_name_the_problem(value, match):
    with pytest.raises(gradcheck.CheckInputError, match=match):
        gradcheck.check_function(lambda x, y: x * y, np.ones(3), np.ones(3),
                                 vjp=lambda g, x, y: value)


def test_needs_a_derivative():
    with pytest.raises(gradcheck.CheckInputError, match="vjp"):
        gradcheck.check_function(np.sin, np.ones(2))


@settings(max_examples=15, deadline=None)
@given(STRUCTURES, st.data())
def test_pairs_with_any_numbers_of_inputs_and_outputs(structure, data):
    specs, n_out, seed = structure
    f, vjp_with, _, args, names = problem(specs, n_out, seed)
    bad = data.draw(st.integers(-1, len(names) - 1))  # -1: the correct version

    def forward(*a):  # the last argument is a constant passed through
        assert a[-1] == {"passed": "through"}
        out = f(*a[:-1])
        return (*(out if isinstance(out, tuple) else (out,)), a[:-1])

    def backward(*upstream_and_cache):
        *upstream, cache = upstream_and_cache
        g = upstream[0] if len(upstream) == 1 else tuple(upstream)
        return vjp_with(lambda j: 1.25 if j == bad else 1.0)(g, *cache)

    result = gradcheck.check_pair(forward, backward, *args, {"passed": "through"})
    assert result.ok == (bad < 0), str(result)
    assert [t.name for t in result.tensors if not t.ok] == ([] if bad < 0 else [names[bad]])


@settings(max_examples=15, deadline=None)
@given(trees(depth=3), st.integers(0, 2 ** 16), st.data())
def test_loss_over_any_parameter_tree_is_restored_and_blames_the_leaf(spec, seed, data):
    rng = np.random.default_rng(seed)
    params, named = realize(spec, rng, "" if spec[0] == "dict" else "params")
    leaves = [a for _, a in named]
    c = rng.standard_normal(len(leaves))
    before = [a.copy() for a in leaves]
    bad = data.draw(st.integers(-1, len(leaves) - 1))

    def loss():
        return float(sum(cj * np.sum(np.sin(a)) for cj, a in zip(c, leaves, strict=True)))

    def grads():
        it = iter([cj * np.cos(a) * (1.2 if j == bad else 1.0)
                   for j, (cj, a) in enumerate(zip(c, leaves, strict=True))])
        return rebuild_like(params, it)

    result = gradcheck.check_loss(loss, grads, params)
    expected = [n for n, _ in named]  # dict keys as they are; a list's under "params"
    assert [t.name for t in result.tensors] == expected
    assert [t.name for t in result.tensors if not t.ok] == ([] if bad < 0 else [expected[bad]])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(leaves, before, strict=True))


def test_a_one_tuple_holding_an_incomplete_dict_names_the_missing_key():
    def f(p):
        return p["W"].sum() + p["b"].sum()

    with pytest.raises(gradcheck.CheckInputError, match=r"\['b'\] are missing"):
        gradcheck.check_function(f, {"W": np.ones(2), "b": np.ones(2)},
                                 vjp=lambda g, p: ({"W": np.ones(2) * g},))


def test_too_few_gradients_are_counted_in_the_error():
    with pytest.raises(gradcheck.CheckInputError, match=r"returned 1 gradient; expected a "
                                                        r"tuple of 2 \(one per argument"):
        gradcheck.check_function(lambda a, b: (a * b).sum(), np.ones(2), np.ones(2),
                                 vjp=lambda g, a, b: (b * g,))
