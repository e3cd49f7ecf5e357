"""Tiled structured full mode: discovered footprints, entry-by-entry agreement with plain
full mode, detection of non-local layers (and their fallback), a wrong entry caught, a
far coupling seen, the executor, and the auto rule."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.numeric import Judging, Target, check_entries, min_relative_step
from gradcheck.engine.structure import (
    GroupedEvaluator,
    Grouping,
    colour_blocks,
    passes,
    verify_independence,
)
from gradcheck.engine.tiles import Layout, region_sums
from gradcheck.engine.tolerances import AUTO_FULL_MAX_ENTRIES, MIN_TILE_WIDTH, PRECISIONS
from gradcheck.models import LSTM, AvgPool2D, Conv2D, MaxPool2D


class Conv1D(Conv2D):
    """A 1-d convolution over ``(N, C, L)``: the zoo's Conv2D with a ``(1, k)`` kernel."""

    layouts = {"x": "NCL"}  # noqa: RUF012  (the zoo's layers declare it the same way)

    def __init__(self, cin: int, cout: int, k: int, *, stride: int = 1, padding: int = 0,
                 dtype=np.float64, seed: int = 0):
        super().__init__(cin, cout, (1, k), stride=(1, stride), padding=(0, padding),
                         dtype=dtype, seed=seed)

    def forward(self, x):
        return super().forward(np.asarray(x)[:, :, None, :])[:, :, 0, :]

    def backward(self, grad_out):
        return super().backward(np.asarray(grad_out)[:, :, None, :])[:, :, 0, :]


class _Wrapped:
    """A stateless function of ``(N, C, L)`` as a layer without parameters."""

    params: dict = {}  # noqa: RUF012
    grads: dict = {}  # noqa: RUF012
    layouts = {"x": "NCL"}  # noqa: RUF012

    def forward(self, x):
        self.x = np.array(x, dtype=np.float64)
        return self.f(self.x)


class CumSum(_Wrapped):
    """Cumulative sum along the spatial axis: tile t reaches every later tile."""

    def f(self, x):
        return np.cumsum(np.tanh(x), axis=-1)

    def backward(self, g):
        return np.cumsum(g[..., ::-1], axis=-1)[..., ::-1] * (1 - np.tanh(self.x) ** 2)


class GlobalMean(_Wrapped):
    """``tanh(x) − mean over L``: every tile reaches every output tile."""

    def f(self, x):
        t = np.tanh(x)
        return t - t.mean(axis=-1, keepdims=True)

    def backward(self, g):
        return (g - g.mean(axis=-1, keepdims=True)) * (1 - np.tanh(self.x) ** 2)


class TimeLSTM:
    """The zoo's LSTM over a channels-first ``(N, D, T)`` sequence (time the spatial axis)."""

    layouts = {"x": "NCL"}  # noqa: RUF012

    def __init__(self, d: int, h: int):
        self.lstm = LSTM(d, h)
        self.params, self.grads = self.lstm.params, self.lstm.grads

    def forward(self, x):
        return self.lstm.forward(np.asarray(x).transpose(0, 2, 1)).transpose(0, 2, 1)

    def backward(self, g):
        return self.lstm.backward(np.asarray(g).transpose(0, 2, 1)).transpose(0, 2, 1)


class FarCoupled(Conv1D):
    """Conv1D plus ``1e-3 · x[i + OFFSET]`` at output ``i``: a coupling far outside the
    kernel's band. ``right=False`` leaves it out of the backward (a wrong dL/dx)."""

    OFFSET = 50

    def __init__(self, *args, right: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.right = right

    def forward(self, x):
        x = np.asarray(x)
        out = super().forward(x)
        out[:, :, :-self.OFFSET] += 1e-3 * x[:, :out.shape[1], self.OFFSET:out.shape[2]
                                                    + self.OFFSET]
        return out

    def backward(self, grad_out):
        dx = np.array(super().backward(grad_out))
        if self.right:
            c = grad_out.shape[1]
            dx[:, :c, self.OFFSET:] += 1e-3 * grad_out[:, :, :-self.OFFSET]
        return dx


_EVEN = st.integers(4, 7).map(lambda k: 2 * k)  # pooling windows tile it exactly
#: name -> (layer factory, input channels, spatial sizes); every one local.
LOCAL = {
    "conv1d k3": (lambda: Conv1D(2, 3, 3, padding=1), 2, st.tuples(st.integers(8, 60))),
    "conv1d k5 stride 2": (lambda: Conv1D(1, 2, 5, stride=2), 1,
                           st.tuples(st.integers(13, 60))),
    "conv2d": (lambda: Conv2D(2, 2, 3, padding=1), 2,
               st.tuples(st.integers(8, 14), st.integers(8, 14))),
    "maxpool2d": (lambda: MaxPool2D(2), 2, st.tuples(_EVEN, _EVEN)),
    "avgpool2d": (lambda: AvgPool2D(2), 1, st.tuples(_EVEN, st.integers(8, 13))),
}


def _local_input(data, name: str, batch: int, seed: int):
    factory, channels, space = LOCAL[name]
    shape = (batch, channels, *data.draw(space, label="spatial"))
    return factory(), np.random.default_rng(seed).standard_normal(shape)


def _problem(layer, x: np.ndarray, seed: int):
    """φ = Σ G·forward(x), its Layout and target, as check_layer builds them."""
    y = layer.forward(x)
    G = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(G.copy())
    xw = x.copy()

    def phi() -> float:
        return float(np.sum(G * layer.forward(xw)))

    layout = Layout(0, x.shape, (y.shape,), lambda: (G * layer.forward(xw)).ravel())
    return phi, Target("x", "input", xw, dx), layout


def _tiled_evaluator(phi, target, layout, tiles, seed):
    blocks = layout.tiles(tiles)
    low, high = min_relative_step(target), 0.25
    found = verify_independence(blocks, target, steps=(low, 1e-5, high), seed=seed,
                                describe="layer")
    assert found.independent, found.reason
    colour = colour_blocks(found.reach)
    base = blocks.contributions()
    grouping = Grouping.of(blocks.owner, base, colour, found.reach)
    return GroupedEvaluator(phi, blocks, base, phi(), low, high, "layer", grouping=grouping), \
        found, blocks


# ---- the engine pieces ------------------------------------------------------------------

@given(st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=12))
def test_colour_mates_never_share_a_region(rows):
    reach = np.array(rows, dtype=bool)
    colour = colour_blocks(reach)
    for c in np.unique(colour):
        mates = reach[colour == c]
        assert np.all(mates.sum(axis=0) <= 1)  # each region reached by at most one mate
    # greedy: a block takes the first colour none of its conflicting predecessors holds
    for b in range(reach.shape[0]):
        clash = {int(colour[a]) for a in range(b) if (reach[a] & reach[b]).any()}
        assert colour[b] == min(set(range(len(clash) + 1)) - clash)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), space=st.lists(st.integers(1, 30),
       min_size=1, max_size=3), tiles=st.integers(2, 7))
def test_tiles_partition_every_axis_into_near_equal_chunks(n, c, space, tiles):
    shape = (n, c, *space)
    layout = Layout(0, shape, (shape,), lambda: np.ones(int(np.prod(shape))))
    if tiles not in layout.tile_counts():
        with pytest.raises(ValueError, match="tiles per spatial axis"):
            layout.tiles(tiles)
        assert min(space) < tiles * MIN_TILE_WIDTH or n * tiles ** len(space) > 4096
        return
    blocks = layout.tiles(tiles)
    sizes = blocks.sizes
    assert blocks.n_blocks == n * tiles ** len(space) == sizes.size
    assert sizes.sum() == np.prod(shape)
    assert layout.largest_tile(tiles) == sizes.max()
    per_axis = [(-(-s // tiles), s // tiles) for s in space]
    assert sizes.min() == c * np.prod([lo for _, lo in per_axis])
    assert np.array_equal(blocks.contributions(), sizes.astype(float))  # regions = tiles


def test_sample_contributions_are_the_per_sample_sums_bit_for_bit():
    p = np.random.default_rng(0).standard_normal((5, 7, 3))
    layout = Layout(0, p.shape, (p.shape,), lambda: p.ravel())
    per_sample = np.sum(p.reshape(5, -1), axis=1)
    assert np.array_equal(layout.samples().contributions(), per_sample)
    # the gathered rows of region_sums give the same sums (one output: contiguous rows)
    rows = np.arange(p.size).reshape(5, -1)
    assert np.array_equal(region_sums(lambda: p.ravel(), rows, p.size), per_sample)
    # two outputs: each sample's parts of both, summed per sample
    q = np.random.default_rng(1).standard_normal((5, 2))
    both = Layout(0, p.shape, (p.shape, q.shape), lambda: np.r_[p.ravel(), q.ravel()])
    assert np.allclose(both.samples().contributions(), per_sample + q.sum(axis=1),
                       rtol=1e-14, atol=1e-13)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(LOCAL)), batch=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16), data=st.data())
def test_tiled_entries_agree_with_plain_full_mode_entry_by_entry(name, batch, seed, data):
    layer, x = _local_input(data, name, batch, seed)
    phi, target, layout = _problem(layer, x, seed)
    tiles = data.draw(st.sampled_from(layout.tile_counts()), label="tiles")
    grouped_eval, found, blocks = _tiled_evaluator(phi, target, layout, tiles, seed)
    home, region_home = blocks.homes()
    assert not (found.reach & (home[:, None] != region_home[None, :])).any()
    f0, prec = phi(), PRECISIONS["float64"]
    noise = abs(f0) + 1.0
    idx = np.arange(target.size)
    judging = Judging.default(noise=noise, precision=prec)
    plain = check_entries(phi, target, idx, f0, judging)
    grouped = check_entries(phi, target, idx, f0, judging, evaluate=grouped_eval)
    assert np.array_equal(plain.wrong, grouped.wrong)
    assert np.array_equal(plain.unresolved_mask(), grouped.unresolved_mask())
    assert np.all(np.abs(plain.error - grouped.error) <= plain.tolerance + grouped.tolerance)
    same_path = ~plain.refined & ~grouped.refined
    assert np.allclose(plain.tolerance[same_path], grouped.tolerance[same_path], rtol=1e-6)
    # one pass costs Σ over colours of the largest tile, never more than plain
    assert grouped_eval.calls <= 1 + plain.evaluations
    assert passes(blocks.sizes, grouped_eval.grouping.colour) <= target.size
    assert np.array_equal(target.array, x)  # restored bit for bit


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(LOCAL)), batch=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16), data=st.data())
def test_check_layer_tiled_agrees_with_plain(name, batch, seed, data):
    layer, x = _local_input(data, name, batch, seed)
    structured = gradcheck.check_layer(layer, x, mode="full", seed=seed)
    plain = gradcheck.check_layer(LOCAL[name][0](), x, mode="full", seed=seed,
                                  structured=False)
    # one sample whose tiles would not pay: plain full mode (after the abandoned pilot)
    assert structured.options.get("structure") in (("tiles", "samples") if batch > 1 else
                                                   ("tiles", "none", None))
    assert structured.verdict == plain.verdict
    assert [t.n_wrong for t in structured.tensors] == [t.n_wrong for t in plain.tensors]
    for s, p in zip(structured.evidence.tensors, plain.evidence.tensors, strict=True):
        scale = max(float(np.max(np.abs(p.analytic))), 1e-12)
        assert np.allclose(s.numeric, p.numeric, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("factory, shape", [
    (lambda: Conv1D(8, 8, 3, padding=1), (8, 8, 101)),
    (lambda: MaxPool2D(2), (8, 4, 8, 8)),
    (lambda: Conv2D(2, 2, 3, padding=1), (2, 2, 24, 24)),
])
def test_local_layers_use_tiles_and_cost_less_than_samples(factory, shape, monkeypatch):
    x = np.random.default_rng(0).standard_normal(shape)
    tiled = gradcheck.check_layer(factory(), x, mode="full")
    monkeypatch.setattr(Layout, "tile_counts", lambda self: [])  # samples only
    by_samples = gradcheck.check_layer(factory(), x, mode="full")
    assert tiled.options["structure"] == "tiles" and by_samples.options["structure"] == "samples"
    assert tiled.verdict == by_samples.verdict == "ok"
    assert tiled.evaluations < by_samples.evaluations


# ---- non-local layers are detected and fall back ------------------------------------------

NOT_LOCAL = {
    "cumsum": (CumSum, (2, 3, 64)),
    "global mean": (GlobalMean, (2, 3, 64)),
    "lstm over time": (lambda: TimeLSTM(3, 2), (2, 3, 40)),
}


@pytest.mark.parametrize("name", sorted(NOT_LOCAL))
def test_a_layer_that_is_not_local_falls_back_to_samples(name):
    factory, shape = NOT_LOCAL[name]
    x = np.random.default_rng(1).standard_normal(shape)
    result = gradcheck.check_layer(factory(), x, mode="full")
    plain = gradcheck.check_layer(factory(), x, mode="full", structured=False)
    assert result.options["structure"] == "samples"
    assert result.verdict == plain.verdict == "ok"
    # the abandoned tile pilot is counted: more than the samples' own 3·N + 2
    assert result.options["structure_evaluations"] > 3 * shape[0] + 2
    assert np.allclose(result.evidence.tensors[0].numeric, plain.evidence.tensors[0].numeric,
                       rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(NOT_LOCAL))
def test_forced_tiles_of_a_non_local_layer_are_never_mis_grouped(name):
    """Even grouped by tiles (the planner would not), the footprints keep it exact:
    the first tile reaches every output tile, so it never shares a colour."""
    factory, shape = NOT_LOCAL[name]
    x = np.random.default_rng(2).standard_normal(shape)
    phi, target, layout = _problem(factory(), x, 2)
    tiles = layout.tile_counts()[-1]
    grouped_eval, found, _ = _tiled_evaluator(phi, target, layout, tiles, 2)
    per_sample = tiles
    assert found.reach[0, :per_sample].all()  # tile 0 reaches all of its sample
    colour = grouped_eval.grouping.colour
    assert len(set(colour[:per_sample].tolist())) == per_sample  # all conflict
    f0, prec = phi(), PRECISIONS["float64"]
    idx = np.arange(target.size)
    judging = Judging.default(noise=abs(f0) + 1, precision=prec)
    plain = check_entries(phi, target, idx, f0, judging)
    grouped = check_entries(phi, target, idx, f0, judging, evaluate=grouped_eval)
    assert np.array_equal(plain.wrong, grouped.wrong) and not grouped.wrong.any()
    assert np.all(np.abs(plain.error - grouped.error) <= plain.tolerance + grouped.tolerance)


def test_a_global_pooling_is_never_tiled():
    class GlobalPool(_Wrapped):
        def f(self, x):
            return np.tanh(x).mean(axis=-1, keepdims=True)

        def backward(self, g):
            return g * (1 - np.tanh(self.x) ** 2) / self.x.shape[-1]

    x = np.random.default_rng(3).standard_normal((4, 3, 64))
    result = gradcheck.check_layer(GlobalPool(), x, mode="full")
    assert result.options["structure"] == "samples" and result.verdict == "ok"


def test_a_batch_coupling_seen_by_a_tile_falls_back_to_plain_full_mode():
    class BatchCentred(_Wrapped):
        def f(self, x):
            return x - x.mean(axis=0)

        def backward(self, g):
            return g - g.mean(axis=0)

    x = np.random.default_rng(4).standard_normal((3, 2, 64))
    result = gradcheck.check_layer(BatchCentred(), x, mode="full")
    plain = gradcheck.check_layer(BatchCentred(), x, mode="full", structured=False)
    assert result.options["structure"] == "none" and result.verdict == "ok"
    assert (result.evaluations - result.options["structure_evaluations"]
            == plain.evaluations)


# ---- a coupling far outside any band is seen ------------------------------------------------

def test_a_far_coupling_is_in_the_footprint():
    x = np.random.default_rng(5).standard_normal((2, 2, 101))
    phi, target, layout = _problem(FarCoupled(2, 2, 3, padding=1), x, 5)
    tiles = 13
    _, found, _ = _tiled_evaluator(phi, target, layout, tiles, 5)
    chunk = (np.arange(101) * tiles) // 101
    for i in (0, 20, 50):  # input at i + 50 moves output i, tiles apart
        source, sink = chunk[i + FarCoupled.OFFSET], chunk[i]
        assert sink < source - 1  # farther than a 3-wide kernel reaches
        assert found.reach[source, sink]


@pytest.mark.parametrize("right", [True, False])
def test_a_far_coupling_left_out_of_the_backward_is_caught_in_tiled_mode(right):
    x = np.random.default_rng(6).standard_normal((4, 2, 301))
    result = gradcheck.check_layer(FarCoupled(2, 2, 3, padding=1, right=right), x,
                                   mode="full")
    assert result.options["structure"] == "tiles"
    assert result.verdict == ("ok" if right else "wrong")
    if not right:
        assert not result.tensors[0].ok and result.tensors[0].n_wrong > 0


# ---- a wrong entry is caught, exactly as in plain full mode --------------------------------

def _one_wrong(base):
    class OneWrong(base):
        """``base`` whose dL/dx is off by ``rel`` (relative) at one entry."""

        def __init__(self, *args, where, rel, **kwargs):
            super().__init__(*args, **kwargs)
            self.where, self.rel = where, rel

        def backward(self, grad_out):
            dx = np.array(super().backward(grad_out))
            dx[self.where] *= 1 + self.rel
            return dx

    return OneWrong


_OneWrongConv = _one_wrong(Conv1D)


def _wrong_layer(kind: str, dtype, rel: float):
    """A layer with one wrong entry of dL/dx and its input."""
    rng = np.random.default_rng(7)
    if kind == "conv":
        x = rng.standard_normal((4, 2, 80)).astype(dtype)
        return _OneWrongConv(2, 2, 3, padding=1, dtype=dtype, where=(2, 1, 57), rel=rel), x
    x = rng.standard_normal((4, 2, 16, 16)).astype(dtype)
    pool = {"maxpool": MaxPool2D, "avgpool": AvgPool2D}[kind]
    where = tuple(int(i) for i in np.argwhere(np.isin(x, pool(2).forward(x)))[17]) \
        if kind == "maxpool" else (1, 0, 4, 9)  # a window's max: its gradient is not 0
    return _one_wrong(pool)(2, where=where, rel=rel), x


@pytest.mark.parametrize("kind, dtype, rel", [
    ("conv", np.float64, 1e-3), ("maxpool", np.float64, 1e-3), ("avgpool", np.float64, 1e-3),
    ("avgpool", np.float32, 1e-3),
    # float32 output: one conv entry resolves to ~5e-3 (rules_out_rel), in plain full mode too
    ("conv", np.float32, 1e-2),
])
def test_a_single_wrong_entry_is_found_in_tiled_mode(kind, dtype, rel):
    layer, x = _wrong_layer(kind, dtype, rel)
    result = gradcheck.check_layer(layer, x, mode="full")
    plain = gradcheck.check_layer(layer, x, mode="full", structured=False)
    assert result.options["structure"] == "tiles"
    assert result.verdict == plain.verdict == "wrong"
    x_report = result.tensors[0]
    assert x_report.n_wrong == 1 and x_report.worst_index == layer.where
    assert np.array_equal(result.evidence.tensors[0].wrong, plain.evidence.tensors[0].wrong)
    assert result.evaluations < plain.evaluations


@pytest.mark.parametrize("kind", ["conv", "maxpool"])
def test_float32_errors_below_the_resolution_are_never_passed_silently(kind):
    """1e-3 in one float32 conv / max-pool entry is below what full mode resolves there;
    tiled mode then says what plain full mode says: the error it rules out is larger
    (conv), or the entries are unresolved (max-pool: inconclusive), never a bare OK."""
    layer, x = _wrong_layer(kind, np.float32, 1e-3)
    result = gradcheck.check_layer(layer, x, mode="full")
    plain = gradcheck.check_layer(layer, x, mode="full", structured=False)
    assert result.options["structure"] == "tiles"
    assert result.verdict == plain.verdict
    assert result.verdict != "ok" or result.tensors[0].rules_out_rel > layer.rel
    assert result.tensors[0].n_unresolved == plain.tensors[0].n_unresolved


# ---- the executor and the auto rule ---------------------------------------------------------

def test_the_executor_gives_the_serial_tiled_result():
    x = np.random.default_rng(8).standard_normal((2, 2, 64))
    serial = gradcheck.check_layer(Conv1D(2, 2, 3, padding=1), x, mode="full")
    with ThreadPoolExecutor(2) as pool:
        pooled = gradcheck.check_layer(Conv1D(2, 2, 3, padding=1), x, mode="full",
                                       executor=pool)
    assert serial.options["structure"] == pooled.options["structure"] == "tiles"
    for s, p in zip(serial.evidence.tensors, pooled.evidence.tensors, strict=True):
        assert np.array_equal(s.numeric, p.numeric, equal_nan=True)
    assert pooled.verdict == serial.verdict == "ok"


def test_a_spawned_process_pool_gives_the_serial_tiled_result():
    """The grouping (colours, footprints) travels to spawned workers by plain pickle."""
    x = np.random.default_rng(11).standard_normal((2, 2, 8, 8))
    x_before = x.copy()
    serial = gradcheck.check_layer(MaxPool2D(2), x, mode="full")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        pooled = gradcheck.check_layer(MaxPool2D(2), x, mode="full", executor=pool)
    assert serial.options["structure"] == pooled.options["structure"] == "tiles"
    assert np.array_equal(serial.evidence.tensors[0].numeric, pooled.evidence.tensors[0].numeric)
    assert pooled.verdict == serial.verdict == "ok"
    assert np.array_equal(x, x_before)


def test_auto_picks_full_mode_when_one_grouped_pass_of_tiles_is_small_enough():
    x = np.random.default_rng(9).standard_normal((2, 4, 1024))
    assert x[0].size > AUTO_FULL_MAX_ENTRIES  # samples alone leave it to fast mode
    result = gradcheck.check_layer(Conv1D(4, 4, 3, padding=1), x)
    assert result.mode == "full" and result.options["structure"] == "tiles"
    assert result.verdict == "ok"
    wrong = gradcheck.check_layer(_OneWrongConv(4, 4, 3, padding=1, where=(1, 2, 700),
                                                rel=1e-3), x)
    assert wrong.mode == "full" and wrong.verdict == "wrong"
    assert wrong.tensors[0].worst_index == (1, 2, 700)


def test_check_function_and_check_jacobian_use_tiles():
    kernel = np.array([0.5, -1.0, 0.25])

    def f(x):
        return np.tanh(x[:, :, :-2] * kernel[0] + x[:, :, 1:-1] * kernel[1]
                       + x[:, :, 2:] * kernel[2])

    def vjp(x, v):
        d = v * (1 - f(x) ** 2)
        dx = np.zeros_like(x)
        for k in range(3):
            dx[:, :, k:x.shape[2] - 2 + k] += kernel[k] * d
        return dx

    x = np.random.default_rng(10).standard_normal((2, 3, 90))
    jac = gradcheck.check_jacobian(f, x, vjp=vjp, mode="full")
    fun = gradcheck.check_function(f, x, vjp=lambda g, x: (vjp(x, g),), mode="full")
    assert jac.options["structure"] == fun.options["structure"] == "tiles"
    assert jac.verdict == fun.verdict == "ok"
    bad = gradcheck.check_jacobian(f, x, vjp=lambda x, v: vjp(x, v) * 1.001, mode="full")
    assert bad.options["structure"] == "tiles" and bad.verdict == "wrong"


class _ConvOfRelu:
    """``conv1d_k3(relu(x))``, 'same' padding: an input at exactly 0 moves its outputs
    only when it rises (a reach one side of a kink triggers)."""

    w = np.array([0.7, -1.1, 0.9])

    def __init__(self, bug: float = 0.0) -> None:
        self.bug = bug
        self.params, self.grads, self.layouts = {}, {}, {"x": "NCL"}

    def forward(self, x):
        self.x = np.array(x, dtype=np.float64)
        r = np.pad(np.maximum(self.x, 0), ((0, 0), (0, 0), (1, 1)))
        return self.w[0] * r[..., :-2] + self.w[1] * r[..., 1:-1] + self.w[2] * r[..., 2:]

    def backward(self, g):
        gp = np.pad(g, ((0, 0), (0, 0), (1, 1)))
        dx = (self.w[0] * gp[..., 2:] + self.w[1] * gp[..., 1:-1]
              + self.w[2] * gp[..., :-2]) * (self.x > 0)
        dx[0, 0, 0] += self.bug
        return dx


@pytest.mark.parametrize("seed", range(8))
def test_a_reach_only_one_side_of_a_kink_triggers_is_in_the_footprint(seed):
    """x[16] = 0 exactly, the first entry of tile 2 (of 4): it reaches out[15] in tile 1
    only when it rises. Moved one way only, tile 2 would miss tile 1 in 1 of 8 seeds (seed
    2 here) and share a colour with tile 0, whose entries would then read a one-sided
    jump: a fake kink whose hull passed a wrong dx[0, 0, 0] (found by review)."""
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(2, 1, 32))
    x[:, :, 16] = 0.0
    phi, target, layout = _problem(_ConvOfRelu(), x, 0)
    _, found, _ = _tiled_evaluator(phi, target, layout, 4, seed)
    assert found.reach[2, 1], found.reach[:4, :4]


@settings(max_examples=12, deadline=None)
@given(data=st.integers(0, 2**16), seed=st.integers(0, 2**16))
def test_a_wrong_entry_beside_exact_zeros_is_never_passed_by_tiles(data, seed):
    """After a previous ReLU about half the inputs are exactly 0: tiled mode still flags
    the one wrong entry, and the correct layer's verdict is plain full mode's."""
    rng = np.random.default_rng(data)
    x = np.maximum(rng.standard_normal((2, 1, 96)), 0)
    x[..., 0] = np.abs(x[..., 0]) + 0.3  # the wrong entry itself is smooth
    bad = gradcheck.check_layer(_ConvOfRelu(bug=0.3), x, mode="full", seed=seed)
    good = gradcheck.check_layer(_ConvOfRelu(), x, mode="full", seed=seed)
    plain = gradcheck.check_layer(_ConvOfRelu(), x, mode="full", seed=seed, structured=False)
    assert bad.options["structure"] == "tiles" and bad.verdict == "wrong", str(bad)
    assert good.verdict == plain.verdict, (str(good), str(plain))
