"""Structured full mode: verified sample independence, entry-by-entry agreement with plain
full mode, detection of coupled layers (and their fallback), and the auto rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.numeric import Judging, Target, check_entries, min_relative_step
from gradcheck.engine.structure import (
    VERIFY_SCALES,
    Blocks,
    GroupedEvaluator,
    colors,
    evaluate_grouped,
    verify_independence,
)
from gradcheck.engine.tolerances import AUTO_FULL_MAX_ENTRIES, PRECISIONS
from gradcheck.models import (
    LSTM,
    RNN,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    LayerNorm,
    MaxPool2D,
)

#: name -> (layer factory, input shape after the batch axis)
LAYERS = {
    "dense": (lambda: Dense(5, 3), (5,)),
    "tanh": (lambda: Activation("tanh"), (4,)),
    "conv": (lambda: Conv2D(2, 2, 3, padding=1), (2, 4, 4)),
    "maxpool": (lambda: MaxPool2D(2), (2, 4, 4)),
    "avgpool": (lambda: AvgPool2D(2), (1, 4, 4)),
    "lstm": (lambda: LSTM(3, 2), (4, 3)),
    "rnn": (lambda: RNN(2, 3), (3, 2)),
    "layernorm": (lambda: LayerNorm(4), (4,)),
    "scalar per sample": (lambda: Activation("tanh"), ()),  # a batch of scalars: no gain
}


def _input(rng: np.random.Generator, batch: int, rest: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal((batch, *rest))


# ---- the engine pieces ------------------------------------------------------------------

@given(st.lists(st.integers(0, 5), min_size=1, max_size=40))
def test_colours_never_put_two_entries_of_one_block_together(owner):
    owner = np.array(owner)
    rank = colors(owner)
    pairs = set(zip(owner.tolist(), rank.tolist(), strict=True))
    assert len(pairs) == owner.size  # (block, colour) is unique
    assert rank.max() + 1 == np.bincount(owner).max()  # as few colours as possible


def _layer_problem(layer, x: np.ndarray, seed: int):
    """φ = Σ G·forward(x) and its per-sample contributions, as check_layer builds them."""
    y = layer.forward(x)
    G = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(G.copy())
    xw = x.copy()

    def phi() -> float:
        return float(np.sum(G * layer.forward(xw)))

    def contributions() -> np.ndarray:
        return np.sum((G * layer.forward(xw)).reshape(x.shape[0], -1), axis=1)

    target = Target("x", "input", xw, dx)
    blocks = Blocks(0, np.repeat(np.arange(x.shape[0]), x[0].size), contributions)
    return phi, target, blocks


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(LAYERS)), batch=st.integers(2, 4),
       seed=st.integers(0, 2 ** 16))
def test_grouped_entries_agree_with_plain_full_mode_entry_by_entry(name, batch, seed):
    factory, rest = LAYERS[name]
    layer = factory()
    x = _input(np.random.default_rng(seed), batch, rest)
    phi, target, blocks = _layer_problem(layer, x, seed)
    f0 = phi()
    prec = PRECISIONS["float64"]
    noise = abs(f0) + 1.0
    step = prec.step
    low, high = min_relative_step(target), 0.25
    found = verify_independence(blocks, target, steps=(low, step, high), seed=seed,
                                describe=name)
    assert found.independent, found.reason
    idx = np.arange(target.size)
    judging = Judging.default(noise=noise, precision=prec)
    plain = check_entries(phi, target, idx, f0, judging)
    grouped_eval = GroupedEvaluator(phi, blocks, blocks.contributions(), f0, low, high, name)
    grouped = check_entries(phi, target, idx, f0, judging, evaluate=grouped_eval)
    # same verdicts, errors within the two error estimates, and the same estimate wherever
    # both took the same path (an entry whose first error sits at the refinement threshold
    # may be refined in one run and not the other: rounding decides)
    assert np.array_equal(plain.wrong, grouped.wrong)
    assert np.array_equal(plain.unresolved_mask(), grouped.unresolved_mask())
    assert np.all(np.abs(plain.error - grouped.error) <= plain.tolerance + grouped.tolerance)
    same_path = ~plain.refined & ~grouped.refined
    assert np.allclose(plain.tolerance[same_path], grouped.tolerance[same_path], rtol=1e-6)
    # and at a fraction of the evaluations: one entry per sample per call
    assert grouped_eval.calls < plain.evaluations / batch * 1.5 + 8
    assert np.array_equal(target.array, x)  # restored bit for bit


def test_grouped_evaluation_restores_the_target_when_the_function_raises():
    x = np.arange(6.0).reshape(3, 2)
    target = Target("x", "input", x, np.ones_like(x))
    before = x.copy()

    def contributions() -> np.ndarray:
        if x[1, 0] != before[1, 0]:
            raise ValueError("boom")
        return x.sum(axis=1)

    with pytest.raises(gradcheck.UserCodeError, match=r"x\[\d, \d\]"):
        evaluate_grouped(contributions, target, np.repeat(np.arange(3), 2),
                         contributions(), 0.0, np.arange(6), x.ravel() + 0.1,
                         x.ravel() - 0.1, "f")
    assert np.array_equal(x, before)


# ---- coupled samples are detected ---------------------------------------------------------

COUPLED = {
    # batch statistics: every sample's output moves with every other sample
    "batch mean": lambda x: x - x.mean(axis=0),
    # a coupling far below any tolerance still breaks bit-identity
    "tiny": lambda x: x + 1e-12 * x.sum(axis=0),
    # only the last sample feeds the first one
    "one pair": lambda x: x + np.where(np.arange(x.shape[0])[:, None] == 0, x[-1:] ** 2, 0.0),
}


@pytest.mark.parametrize("name", sorted(COUPLED))
def test_coupled_samples_are_detected(name):
    f = COUPLED[name]
    x = np.random.default_rng(1).standard_normal((4, 3))
    xw = x.copy()
    target = Target("x", "input", xw, np.ones_like(x))
    blocks = Blocks(0, np.repeat(np.arange(4), 3), lambda: f(xw).sum(axis=1))
    found = verify_independence(blocks, target, steps=(1e-10, 1e-5, 1e-2), seed=0,
                                describe=name)
    assert not found.independent
    assert np.array_equal(xw, x)


def test_contributions_that_do_not_repeat_are_not_trusted():
    x = np.ones((3, 2))
    calls = iter(range(1000))
    blocks = Blocks(0, np.repeat(np.arange(3), 2), lambda: x.sum(axis=1) + next(calls))
    found = verify_independence(blocks, Target("x", "input", x, x), steps=(1e-5,), seed=0,
                                describe="f")
    assert not found.independent and found.evaluations == 2


def test_batchnorm_in_training_mode_falls_back_to_plain_full_mode():
    x = np.random.default_rng(0).standard_normal((6, 4))
    result = gradcheck.check_layer(BatchNorm(4), x, mode="full")
    plain = gradcheck.check_layer(BatchNorm(4), x, mode="full", structured=False)
    assert result.options["structure"] == "none"
    assert result.verdict == "ok"
    assert "structure" not in plain.options
    # the fallback is plain full mode itself (plus the verification's evaluations)
    assert (result.evaluations - result.options["structure_evaluations"]
            == plain.evaluations)
    assert np.array_equal(result.evidence.tensors[0].numeric, plain.evidence.tensors[0].numeric)


class _BadBatchNormDx(BatchNorm):
    """Batch norm whose dL/dx drops the mean term: coupled AND wrong."""

    def backward(self, grad_out):
        dx = super().backward(grad_out)
        return dx + grad_out.mean(axis=0) * 0.5


def test_a_wrong_coupled_layer_is_still_caught_after_the_fallback():
    x = np.random.default_rng(2).standard_normal((5, 8))
    result = gradcheck.check_layer(_BadBatchNormDx(8), x, mode="full")
    assert result.options["structure"] == "none"
    assert result.verdict == "wrong"
    assert [t.name for t in result.tensors if not t.ok] == ["x"]


# ---- a wrong entry is caught, exactly as in plain full mode -------------------------------

class _OneWrongEntry(Dense):
    """Dense whose dL/dx is off by ``rel`` (relative) at one entry."""

    def __init__(self, *args, where=(1, 2), rel=1e-3, **kwargs):
        super().__init__(*args, **kwargs)
        self.where, self.rel = where, rel

    def backward(self, grad_out):
        dx = np.array(super().backward(grad_out))
        dx[self.where] *= 1 + self.rel
        return dx


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_single_wrong_entry_is_found_in_structured_mode(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5)).astype(dtype)
    rel = 1e-3 if dtype == np.float64 else 3e-2  # float32: what a single entry resolves
    layer = _OneWrongEntry(5, 4, dtype=dtype, where=(4, 1), rel=rel)
    result = gradcheck.check_layer(layer, x, mode="full")
    plain = gradcheck.check_layer(layer, x, mode="full", structured=False)
    assert result.options["structure"] == "samples"
    assert result.verdict == plain.verdict == "wrong"
    x_report = result.tensors[0]
    assert x_report.n_wrong == 1 and x_report.worst_index == (4, 1)
    assert np.array_equal(result.evidence.tensors[0].wrong, plain.evidence.tensors[0].wrong)
    assert result.evaluations < plain.evaluations


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(LAYERS)), batch=st.integers(2, 4),
       seed=st.integers(0, 2 ** 16))
def test_check_layer_structured_agrees_with_plain(name, batch, seed):
    factory, rest = LAYERS[name]
    x = _input(np.random.default_rng(seed), batch, rest)
    structured = gradcheck.check_layer(factory(), x, mode="full", seed=seed)
    plain = gradcheck.check_layer(factory(), x, mode="full", seed=seed, structured=False)
    per_sample = x[0].size  # verified only where 3N + 2 + 2D calls beat 2·N·D
    pays = VERIFY_SCALES * batch + 2 + 2 * per_sample < 2 * x.size
    assert structured.options.get("structure") == ("samples" if pays else None)
    assert structured.verdict == plain.verdict
    assert [t.n_wrong for t in structured.tensors] == [t.n_wrong for t in plain.tensors]
    for s, p in zip(structured.evidence.tensors, plain.evidence.tensors, strict=True):
        scale = max(float(np.max(np.abs(p.analytic))), 1e-12)
        assert np.allclose(s.numeric, p.numeric, rtol=1e-5, atol=1e-6 * scale)


def test_check_jacobian_uses_the_sample_structure():
    W = np.random.default_rng(4).standard_normal((8, 2))

    def f(x):
        return np.tanh(x @ W)

    def vjp(x, v):
        return (v * (1 - np.tanh(x @ W) ** 2)) @ W.T

    x = np.random.default_rng(5).standard_normal((7, 8))
    result = gradcheck.check_jacobian(f, x, vjp=vjp, mode="full")
    plain = gradcheck.check_jacobian(f, x, vjp=vjp, mode="full", structured=False)
    assert result.options["structure"] == "samples" and result.verdict == "ok"
    assert result.evaluations < plain.evaluations
    wrong = gradcheck.check_jacobian(f, x, vjp=lambda x, v: vjp(x, v) * 1.01, mode="full")
    assert wrong.options["structure"] == "samples" and wrong.verdict == "wrong"


# ---- the auto rule ------------------------------------------------------------------------

def test_auto_picks_full_mode_when_one_sample_is_small_enough():
    per_sample = 64
    batch = AUTO_FULL_MAX_ENTRIES // per_sample + 2  # the input alone exceeds the limit
    x = np.random.default_rng(6).standard_normal((batch, per_sample))
    result = gradcheck.check_layer(Activation("tanh"), x)
    assert result.mode == "full" and result.options["structure"] == "samples"
    coupled = gradcheck.check_layer(BatchNorm(per_sample), x)
    assert coupled.mode == "fast"  # no verified structure: the plain rule stands
    unstructured = gradcheck.check_layer(Activation("tanh"), x, structured=False)
    assert unstructured.mode == "fast"


class _RaisesWhenOneSampleMovesWhole(Activation):
    """tanh that refuses an input where one sample moved in several entries while every
    other sample stayed put (only the independence verification does that)."""

    def forward(self, x):
        moved = (np.asarray(x) != self.first).sum(axis=1)
        if np.count_nonzero(moved) == 1 and moved.max() > 1:
            raise ValueError("outside the domain")
        return super().forward(x)


def test_a_function_that_raises_under_a_whole_sample_move_is_checked_without_structure():
    x = np.random.default_rng(8).standard_normal((4, 6))
    layer = _RaisesWhenOneSampleMovesWhole("tanh")
    layer.first = x.copy()
    result = gradcheck.check_layer(layer, x, mode="full")
    assert result.options["structure"] == "none"
    assert result.verdict == "ok"


# ---- check_function (array outputs, several inputs) ---------------------------------------

_W = np.random.default_rng(9).standard_normal((8, 2))


def _affine_tanh(x, b):
    return np.tanh(x @ _W + b)


def _affine_tanh_vjp(g, x, b, wrong=1.0):
    d = g * (1 - np.tanh(x @ _W + b) ** 2)
    return wrong * (d @ _W.T), d.sum(axis=0)


def test_check_function_structures_the_batched_input_and_catches_an_error():
    x, b = np.random.default_rng(10).standard_normal((6, 8)), np.ones(2)
    right = gradcheck.check_function(_affine_tanh, x, b, vjp=_affine_tanh_vjp, mode="full")
    assert right.options["structure"] == "samples" and right.verdict == "ok"
    wrong = gradcheck.check_function(
        _affine_tanh, x, b, vjp=lambda g, x, b: _affine_tanh_vjp(g, x, b, wrong=1.001),
        mode="full")
    assert wrong.options["structure"] == "samples" and wrong.verdict == "wrong"
    assert [t.name for t in wrong.tensors if not t.ok] == ["arg0"]


def test_check_function_detects_a_batch_coupling():
    x = np.random.default_rng(11).standard_normal((5, 8))
    result = gradcheck.check_function(lambda z: z - z.mean(axis=0), x,
                                      vjp=lambda g, z: (g - g.mean(axis=0),), mode="full")
    assert result.options["structure"] == "none" and result.verdict == "ok"
