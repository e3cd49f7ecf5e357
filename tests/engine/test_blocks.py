"""Block-wise passes (fast-mode memory) change no figure: sums, verdicts, reports.

The probes of fast mode and the Taylor/noise walks work block by block so that no
full-size temporary is made (``benchmarks/bench_fast_memory.py`` measures the peak).
These tests prove that the blocks change nothing: the block sums are NumPy's own sums
bit for bit, and whole checks give identical results with tiny blocks (hundreds of
blocks per tensor) and with blocks larger than every tensor (one ``np.sum`` over the
whole array: the computation as it was before the blocks).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine import blocks
from gradcheck.engine.blocks import pairwise_sum, pairwise_sums, rms_of
from gradcheck.engine.numeric import Judged, Outcome, Target, rms
from gradcheck.engine.safety import bit_identical
from support.toy_layers import Affine

sizes = st.integers(1, 6000)
block_sizes = st.sampled_from([1, 8, 128, 136, 1000, 4096, 1 << 16])


def _wide(n: int, seed: int) -> np.ndarray:
    """Values over 40 orders of magnitude, both signs: the summation order shows."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n) * np.exp(rng.uniform(-46, 46, n))


@given(n=sizes, block=block_sizes, seed=st.integers(0, 2**16))
def test_pairwise_sum_is_numpys_sum_bit_for_bit(n, block, seed):
    x = _wide(n, seed)
    total = pairwise_sum(n, lambda lo, hi: float(np.sum(x[lo:hi])), block=block)
    assert total == float(np.sum(x))


@given(n=sizes, block=block_sizes, seed=st.integers(0, 2**16))
def test_pairwise_sums_keep_each_sum_apart(n, block, seed):
    x = _wide(n, seed)
    got = pairwise_sums(n, lambda lo, hi: (float(np.sum(x[lo:hi])),
                                           float(np.sum(np.abs(x[lo:hi])))), block=block)
    assert got == (float(np.sum(x)), float(np.sum(np.abs(x))))


def test_pairwise_sums_refuse_an_empty_range():
    with pytest.raises(ValueError, match="n >= 1"):
        pairwise_sums(0, lambda lo, hi: (0.0,))


def _rms_whole(values: np.ndarray) -> float:
    """The RMS as computed before the blocks: one pass over the whole array."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    top = float(np.max(a, initial=0.0))
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.sqrt(np.mean((a / top) ** 2)))


@given(n=st.integers(0, 6000), block=block_sizes, seed=st.integers(0, 2**16),
       special=st.sampled_from([None, 0.0, np.inf, -np.inf, np.nan, 1e308]))
def test_blockwise_rms_is_the_whole_array_rms(n, block, seed, special):
    x = _wide(n, seed)
    if special is not None and n:
        x[seed % n] = special
    expected = _rms_whole(x)
    for got in (rms(x), rms_of(n, lambda lo, hi: x[lo:hi], block=block)):
        assert got == expected or (math.isnan(got) and math.isnan(expected))


@given(shape=st.sampled_from([(1,), (7,), (300, 4), (2, 5, 40)]), seed=st.integers(0, 99),
       change=st.sampled_from(["none", "sign of zero", "nan payload", "value"]),
       strided=st.booleans())
def test_bit_identical_compares_every_byte(shape, seed, change, strided):
    base = np.random.default_rng(seed).standard_normal(shape)
    a = base[..., ::2] if strided else base
    b = a.copy()
    i = np.unravel_index(seed % a.size, a.shape)
    if change == "sign of zero":
        a[i], b[i] = 0.0, -0.0
    elif change == "nan payload":
        a[i], b[i] = np.nan, np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(),
                                           np.float64)[0]
    elif change == "value":
        b[i] = a[i] + 1.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blocks, "BLOCK", 8)  # many blocks even for small arrays
        assert bit_identical(a, b) is (change == "none")
        assert bit_identical(a, b) is (a.tobytes() == b.tobytes())
        assert bit_identical(a, a.astype(np.float32)) is False
        assert bit_identical(a, a.reshape(-1)) is (a.ndim == 1)


# ------------------------------------------------------------------ whole checks
def _figures(result: gradcheck.CheckResult) -> dict:
    """Everything a check reports, but the wall time."""
    out = result.to_dict()
    out.pop("seconds", None)
    return {**out, "notes": list(result.notes), "worst": repr(result.worst),
            "taylor": repr(result.taylor), "diagnosis": list(result.diagnosis),
            "evaluations": result.evaluations, "options": repr(result.options)}


def _sin(n: int, wrong: bool, dtype: type = np.float64) -> gradcheck.CheckResult:
    x = np.linspace(-1.0, 1.0, n).astype(dtype)

    def grad(z: np.ndarray) -> np.ndarray:
        g = np.cos(z)
        if wrong:
            g[n // 3] *= 1.5
        return g

    return gradcheck.check_grad(lambda z: float(np.sum(np.sin(z), dtype=dtype)), grad, x,
                                mode="fast", seed=n)


def _strided(n: int) -> gradcheck.CheckResult:
    x = np.linspace(-2.0, 2.0, 2 * n).reshape(n, 2)[:, ::2]  # checked through .flat
    return gradcheck.check_grad(lambda z: float(np.sum(z ** 3)), lambda z: 3 * z ** 2, x,
                                mode="fast", seed=7)


def _kinks(n: int) -> gradcheck.CheckResult:
    x = np.random.default_rng(n).standard_normal(n)
    x[::50] = 0.0  # exact zeros of |x|: kinks on every direction
    return gradcheck.check_grad(lambda z: float(np.sum(np.maximum(z, 0) ** 2 + np.abs(z))),
                                lambda z: 2 * np.maximum(z, 0) + np.sign(z), x, mode="fast",
                                seed=2)


def _layer(seed: int) -> gradcheck.CheckResult:
    bug = ("W", (5, 7), 1.5) if seed % 2 else None
    layer = Affine(60, 40, seed=seed, bug=bug)
    x = np.random.default_rng(seed).uniform(-1, 1, (6, 60))
    return gradcheck.check_layer(layer, x, mode="fast", seed=seed)


PROBLEMS = {
    "sin": lambda: _sin(3001, wrong=False),
    "sin, one wrong entry (localized by bisection)": lambda: _sin(3001, wrong=True),
    "sin in float32": lambda: _sin(2001, wrong=False, dtype=np.float32),
    "non-contiguous input": lambda: _strided(1500),
    "kinks": lambda: _kinks(2500),
    "layer": lambda: _layer(0),
    "layer with a wrong weight": lambda: _layer(1),
}


@functools.cache
def _in_one_block(problem: str) -> gradcheck.CheckResult:
    """The check with the default blocks, larger than every tensor here: one ``np.sum``
    over each whole array, the computation as it was before the blocks."""
    assert blocks.BLOCK >= 6000
    return PROBLEMS[problem]()


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_tiny_blocks_change_no_figure_of_a_fast_check(problem, monkeypatch):
    whole = _figures(_in_one_block(problem))
    monkeypatch.setattr(blocks, "BLOCK", 1)  # NumPy's least: 128 entries per block
    assert blocks.block_size() == 128
    assert _figures(PROBLEMS[problem]()) == whole


def test_the_problems_cover_every_verdict_and_the_localization():
    verdicts = {name: _in_one_block(name).verdict for name in PROBLEMS}
    assert {"ok", "wrong", "inconclusive"} <= set(verdicts.values())
    localized = _in_one_block("sin, one wrong entry (localized by bisection)").tensors[0]
    assert localized.n_wrong == 1 and localized.worst_index == (1000,)


# ------------------------------------------------------------------ lazy outcome tables
@settings(max_examples=40)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**16), refined=st.booleans(),
       marked=st.booleans())
def test_a_lazy_outcome_reads_as_a_dense_one(n, seed, refined, marked):
    rng = np.random.default_rng(seed)
    target = Target("x", "input", rng.standard_normal(n), rng.standard_normal(n))
    lazy, dense = Outcome.empty(target, lazy=True), Outcome.empty(target)
    flagged = False  # some entry was ever flagged (wrong, kink, unresolved, coarse)
    for _ in range(3):
        idx = np.sort(rng.choice(n, size=min(n, 5), replace=False))
        k = idx.size
        flags = (rng.random(k) < 0.3) if marked else np.zeros(k, bool)
        flagged |= bool(flags.any())
        side = rng.standard_normal(k) if refined else np.full(k, np.nan)
        judged = Judged(error=rng.standard_normal(k), tolerance=rng.random(k), wrong=flags,
                        kink=flags, left=side, right=side, refined=np.zeros(k, bool),
                        unresolved=flags, coarse=flags)
        lazy.record(idx, judged)
        dense.record(idx, judged)
    for name in ("numeric", "tolerance", "wrong", "kink", "left", "right", "unresolved",
                 "coarse"):
        assert np.array_equal(getattr(lazy, name), getattr(dense, name), equal_nan=True)
        # a table that only ever received its fill value costs no memory per entry
        assert getattr(lazy, name).flags.writeable == (
            name in ("numeric", "tolerance") or (refined and name in ("left", "right"))
            or (flagged and name in ("wrong", "kink", "unresolved", "coarse")))
    assert lazy.n_unresolved == dense.n_unresolved
