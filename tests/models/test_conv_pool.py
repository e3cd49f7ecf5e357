"""Conv2D, MaxPool2D, AvgPool2D, Flatten: forward against naive loops, gradients, dtypes.

The references below loop over every output pixel and read the unpadded input with
explicit bounds checks, so they share no code (no padding, no window views) with the
vectorized layers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.conv import Conv2D, fold_windows, output_size, windows
from gradcheck.models.pooling import AvgPool2D, MaxPool2D
from gradcheck.models.shape import Flatten
from support.layer_fd import assert_layer_gradients

VALUES = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)


def arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=VALUES)


# ---------------------------------------------------------------- naive references

def naive_conv(x, w, b, stride, padding):
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    for i_n, o, r, c in np.ndindex(n, c_out, oh, ow):
        total = b[o]
        for ci, i, j in np.ndindex(c_in, kh, kw):
            row, col = r * sh + i - ph, c * sw + j - pw
            if 0 <= row < h and 0 <= col < wd:
                total += w[o, ci, i, j] * x[i_n, ci, row, col]
        y[i_n, o, r, c] = total
    return y


def naive_pool(x, pool, stride, reduce):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = pool, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for i_n, ci, r, col in np.ndindex(n, c, oh, ow):
        y[i_n, ci, r, col] = reduce(x[i_n, ci, r * sh:r * sh + kh, col * sw:col * sw + kw])
    return y


# ---------------------------------------------------------------- strategies

@st.composite
def conv_cases(draw):
    """A Conv2D with random (small) geometry and parameters, and an input it accepts."""
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(max(1, k - 2 * p) + draw(st.integers(0, 3)) for k, p in zip(kernel, padding, strict=True))
    layer = Conv2D(c_in, c_out, kernel, stride=stride, padding=padding)
    layer.params["W"][...] = draw(arrays(layer.params["W"].shape))
    layer.params["b"][...] = draw(arrays(layer.params["b"].shape))
    return layer, draw(arrays((n, c_in, *size)))


@st.composite
def pool_geometry(draw):
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
             pool[0] + draw(st.integers(0, 3)), pool[1] + draw(st.integers(0, 3)))
    return pool, stride, shape


@st.composite
def distinct_values(draw, shape):
    """Pairwise distinct entries, at least 0.5 apart: no max ties even after a finite-
    difference step."""
    perm = draw(st.permutations(range(int(np.prod(shape)))))
    offset = draw(st.floats(-5, 5))
    return np.reshape(perm, shape) * 0.5 + offset


# ---------------------------------------------------------------- Conv2D

@settings(max_examples=40)
@given(conv_cases())
def test_conv_forward_matches_naive_loop(case):
    layer, x = case
    expected = naive_conv(x, layer.params["W"], layer.params["b"], layer.stride, layer.padding)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    assert output_size("Conv2D", x.shape[2:], layer.kernel_size, layer.stride,
                       layer.padding) == expected.shape[2:]


@settings(max_examples=20)
@given(conv_cases())
def test_conv_gradients(case):
    layer, x = case
    assert_layer_gradients(layer, x)


@given(conv_cases())
@settings(max_examples=10)
def test_conv_float32_runs_in_float32_and_agrees_with_float64(case):
    layer64, x = case
    layer32 = Conv2D(layer64.in_channels, layer64.out_channels, layer64.kernel_size,
                     stride=layer64.stride, padding=layer64.padding, dtype=np.float32)
    for name, p in layer64.params.items():
        layer32.params[name][...] = p
    y32 = layer32.forward(x.astype(np.float32))
    dx32 = layer32.backward(np.ones_like(y32))
    assert y32.dtype == dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer32.grads.values())
    np.testing.assert_allclose(y32, layer64.forward(x), rtol=1e-4, atol=1e-4)


def test_conv_output_size_follows_the_formula():
    # (H + 2p - k) // s + 1 with a remainder: the last row/column of the input is unused
    layer = Conv2D(1, 1, 3, stride=2, padding=1)
    assert layer.forward(np.zeros((1, 1, 6, 7))).shape == (1, 1, 3, 4)


def test_conv_reads_parameters_in_place_and_leaves_input_untouched():
    layer = Conv2D(2, 2, 2, seed=3)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3))
    x_before = x.copy()
    w_array = layer.params["W"]
    before = layer.forward(x)
    layer.params["W"] *= 2.0                 # in place, as optimizers and checkers do
    after = layer.forward(x)
    np.testing.assert_allclose(after - layer.params["b"][:, None, None],
                               2 * (before - layer.params["b"][:, None, None]))
    layer.backward(np.ones_like(after))
    assert layer.params["W"] is w_array
    np.testing.assert_array_equal(x, x_before)


def test_conv_initialization_is_seeded():
    a, b, c = Conv2D(3, 4, 3, seed=1), Conv2D(3, 4, 3, seed=1), Conv2D(3, 4, 3, seed=2)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], c.params["W"])
    from_generator = Conv2D(3, 4, 3, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(from_generator.params["W"], a.params["W"])


@pytest.mark.parametrize(("init", "variance"), [
    ("he", 2 / (16 * 3 * 3)),                  # fan_in = in_c·kh·kw
    ("xavier", 2 / (16 * 3 * 3 + 32 * 3 * 3)),  # fan_in + fan_out, fan_out = out_c·kh·kw
])
def test_conv_initializer_scale_uses_the_kernel_fans(init, variance):
    w = Conv2D(16, 32, 3, init=init, seed=0).params["W"]      # 4608 draws
    # seeded; the relative sd of a 4608-draw sample variance is <= sqrt(2/4608) ≈ 2.1 %
    assert abs(w.var() / variance - 1) < 0.1


@settings(max_examples=30)
@given(pool_geometry(), st.data())
def test_fold_windows_is_the_adjoint_of_windows(geometry, data):
    """<windows(x), v> == <x, fold(v)>: col2im is exactly the transpose of im2col."""
    pool, stride, shape = geometry
    stride = stride or pool
    x = data.draw(arrays(shape))
    view = windows(x, pool, stride)
    v = data.draw(arrays(view.shape))
    lhs = np.sum(view * v)
    rhs = np.sum(x * fold_windows(v, x.shape, stride))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- pooling

POOLS = [(MaxPool2D, np.max), (AvgPool2D, np.mean)]


@pytest.mark.parametrize(("cls", "reduce"), POOLS, ids=["max", "avg"])
@settings(max_examples=30)
@given(geometry=pool_geometry(), data=st.data())
def test_pool_forward_matches_naive_loop(cls, reduce, geometry, data):
    pool, stride, shape = geometry
    layer = cls(pool, stride=stride)
    x = data.draw(arrays(shape))
    np.testing.assert_allclose(layer.forward(x), naive_pool(x, pool, layer.stride, reduce),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
@settings(max_examples=20)
@given(geometry=pool_geometry(), data=st.data())
def test_pool_gradients_without_ties(cls, geometry, data):
    pool, stride, shape = geometry
    assert_layer_gradients(cls(pool, stride=stride), data.draw(distinct_values(shape)))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
def test_pool_keeps_float32(cls):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer = cls(2)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32


TIES = [
    # (window values, index of the first maximum in row-major order)
    ([[1.0, 1.0], [0.0, 0.0]], (0, 0)),
    ([[0.0, 2.0], [2.0, 2.0]], (0, 1)),
    ([[3.0, 3.0], [3.0, 3.0]], (0, 0)),
    ([[-1.0, -2.0], [-1.0, -5.0]], (0, 0)),
]


@pytest.mark.parametrize(("window", "first"), TIES)
def test_maxpool_routes_a_tied_gradient_to_the_first_maximum(window, first):
    x = np.array(window)[None, None]
    layer = MaxPool2D(2)
    layer.forward(x)
    dx = layer.backward(np.array([[[[2.5]]]]))
    expected = np.zeros_like(x)
    expected[(0, 0, *first)] = 2.5
    np.testing.assert_array_equal(dx, expected)
    # a valid subgradient: it is the gradient on the side where that entry wins alone
    bumped = x.copy()
    bumped[(0, 0, *first)] += 1e-3
    layer.forward(bumped)
    np.testing.assert_array_equal(layer.backward(np.array([[[[2.5]]]])), expected)


def test_maxpool_overlapping_windows_accumulate_gradient():
    # stride 1: the centre (the global max) is the max of all four 2x2 windows
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    x[0, 0, 1, 1] = 100.0
    layer = MaxPool2D(2, stride=1)
    layer.forward(x)
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros_like(x)
    expected[0, 0, 1, 1] = 4.0
    np.testing.assert_array_equal(dx, expected)


# ---------------------------------------------------------------- Flatten

@given(hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=4), st.data())
@settings(max_examples=30)
def test_flatten_forward_backward_roundtrip(shape, data):
    x = data.draw(arrays(shape))
    layer = Flatten()
    y = layer.forward(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(y.reshape(shape), x)
    g = data.draw(arrays(y.shape))
    np.testing.assert_array_equal(layer.backward(g), g.reshape(shape))


def test_flatten_keeps_float32():
    layer = Flatten()
    y = layer.forward(np.ones((2, 3, 4), dtype=np.float32))
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32


def test_flatten_gradients():
    assert_layer_gradients(Flatten(), np.random.default_rng(0).standard_normal((2, 3, 2)))


# ---------------------------------------------------------------- offset-loop paths

def naive_maxpool_backward(x, g, pool, stride):
    """Per window: the whole upstream gradient to the first maximum in row-major order."""
    (kh, kw), (sh, sw) = pool, stride
    dx = np.zeros_like(x)
    for i_n, ci, r, c in np.ndindex(g.shape):
        window = x[i_n, ci, r * sh:r * sh + kh, c * sw:c * sw + kw]
        i, j = np.unravel_index(np.argmax(window), window.shape)
        dx[i_n, ci, r * sh + i, c * sw + j] += g[i_n, ci, r, c]
    return dx


@settings(max_examples=40)
@given(geometry=pool_geometry(), data=st.data())
def test_maxpool_backward_matches_first_argmax_loop_with_ties_and_overlap(geometry, data):
    """Values from {-1, 0, 1}: ties in most windows; strides 1..3 overlap, tile or skip."""
    pool, stride, shape = geometry
    layer = MaxPool2D(pool, stride=stride)
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 0.0, 1.0])))
    y = layer.forward(x)
    g = data.draw(arrays(y.shape))
    np.testing.assert_array_equal(layer.backward(g), naive_maxpool_backward(x, g, pool, layer.stride))


@pytest.mark.parametrize(("cls", "reduce"), POOLS, ids=["max", "avg"])
@settings(max_examples=15)
@given(geometry=pool_geometry(), data=st.data())
def test_pool_float32_stays_float32_and_agrees_with_float64(cls, reduce, geometry, data):
    pool, stride, shape = geometry
    x = data.draw(arrays(shape))
    layer32, layer64 = cls(pool, stride=stride), cls(pool, stride=stride)
    y32 = layer32.forward(x.astype(np.float32))
    g = data.draw(arrays(y32.shape))
    dx32 = layer32.backward(g)
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, layer64.forward(x), rtol=1e-6, atol=1e-6)
    if cls is AvgPool2D:   # max: float32 rounding may break a near-tie differently
        np.testing.assert_allclose(dx32, layer64.backward(g), rtol=1e-6, atol=1e-6)


def test_maxpool_nan_window_outputs_nan_and_passes_no_gradient():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    layer = MaxPool2D(2)
    y = layer.forward(x)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1:]).all()
    dx = layer.backward(np.ones_like(y))
    assert not dx[0, 0, :2, :2].any()
    assert dx[0, 0, 3, 3] == 1.0


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, lambda p: Conv2D(2, 3, p, seed=0)],
                         ids=["max", "avg", "conv"])
def test_layers_leave_input_and_upstream_gradient_untouched(cls):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 6))
    layer = cls((2, 3))
    x_before = x.copy()
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    g_before = g.copy()
    layer.backward(g)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)
