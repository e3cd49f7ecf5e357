"""The dtype table and the detection of the precision an output really carries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.tolerances import PRECISIONS, coarser, observed_precision, precision_of
from support.toy_layers import Affine


@pytest.mark.parametrize("name", sorted(PRECISIONS))
def test_rows_follow_from_machine_epsilon(name):
    row = PRECISIONS[name]
    eps = float(np.finfo(name).eps)
    assert row.eps == eps
    assert row.step == pytest.approx(eps ** (1 / 3))
    assert row.rtol == pytest.approx(eps ** 0.5)
    assert precision_of(np.dtype(name)) is row


def test_coarser_and_complex():
    assert coarser(PRECISIONS["float64"], PRECISIONS["float32"]).name == "float32"
    assert precision_of(np.complex64).name == "float32"


@settings(max_examples=50)
@given(st.lists(st.floats(-1e3, 1e3, width=32).filter(lambda v: v != round(v)),
                min_size=1, max_size=20))
def test_float32_values_are_recognised_whatever_their_dtype(values):
    as32 = np.array(values, dtype=np.float64)  # float32 values, stored as float64
    assert observed_precision(as32, np.dtype(np.float64)).eps >= PRECISIONS["float32"].eps


@settings(max_examples=50)
@given(st.integers(0, 2**32 - 1))
def test_generic_float64_values_stay_float64(seed):
    values = np.random.default_rng(seed).standard_normal(5)
    assert observed_precision(values, np.dtype(np.float64)).name == "float64"


@settings(max_examples=50)
@given(st.lists(st.floats(2.0 ** 24, 2.0 ** 100, width=32), min_size=1, max_size=20))
def test_large_float32_values_are_recognised_though_they_are_integers(values):
    """From 2**24 on float32 has no fraction bits: integers there are float32's mark."""
    as32 = np.array(values, dtype=np.float64)
    assert observed_precision(as32, np.dtype(np.float64)).name == "float32"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), offset=st.floats(1e8, 1e12))
def test_float32_loss_of_large_magnitude_is_no_false_alarm(seed, offset):
    """A float32 φ ~ 1e10 is integer-valued; it must still be differenced as float32."""
    x = np.random.default_rng(seed).uniform(-2, 2, 8).astype(np.float32)
    scale = np.float32(offset / 1e3)

    def f(z):
        z = z.astype(np.float32)
        return float(np.float32(offset) + np.sum(scale * z * z, dtype=np.float32))

    result = gradcheck.check_grad(f, lambda z: 2 * scale * z.astype(np.float32), x)
    assert result.ok, str(result)
    assert result.options["precision"] == "float32"


def test_integer_valued_outputs_prove_nothing():
    assert observed_precision(np.array([0.0, 3.0, -2.0]), np.dtype(np.float64)).name == "float64"


def test_explicit_eps_is_used_as_the_relative_step():
    result = gradcheck.check_layer(Affine(3, 2), np.ones((2, 3)) * 0.5, eps=1e-4, mode="full")
    assert result.ok and result.options["eps"] == 1e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relative_error_catch_floor_per_dtype(dtype):
    """float64 catches 1e-4 in one parameter entry; float32 at least 1e-2."""
    rel = 1e-4 if dtype == np.float64 else 1e-2
    layer = Affine(4, 3, dtype=dtype, seed=5, bug=("W", (2, 1), 1 + rel))
    x = np.random.default_rng(5).uniform(-1, 1, (3, 4)).astype(dtype)
    result = gradcheck.check_layer(layer, x, mode="full")
    w = {t.name: t for t in result.tensors}["W"]
    assert not w.ok and w.n_wrong == 1 and w.worst_index == (2, 1)


def mixed(z):
    """float64 part plus a float32 part: the output is float64 and not float32-exact."""
    return float(np.sum(np.sin(z))) + float(np.sum(z.astype(np.float32) ** 2))


def mixed_grad(z):
    return np.cos(z) + 2 * z


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_hidden_float32_arithmetic_is_measured_not_a_false_alarm(mode):
    """The noise is measured statistically (see numeric.measure_noise), so the claim is
    a rate over many points: almost always detected, false alarms rare."""
    runs, passed, detected = 100, 0, 0
    for seed in range(runs):
        x = np.random.default_rng(seed).uniform(-2, 2, 5)
        result = gradcheck.check_grad(mixed, mixed_grad, x, mode=mode, seed=seed)
        passed += result.ok
        detected += result.options["precision"] == "float32"
    assert passed >= 0.97 * runs and detected >= 0.95 * runs


def test_kinks_near_the_point_do_not_pass_for_noise():
    """A kink within the noise probe must not be mistaken for float32 noise."""
    rng = np.random.default_rng(0)
    for seed in range(60):
        z = rng.choice([0.0, 10.0, 3.16e-7, -2e-6, 1e-9, 0.5, 3e-4, -2e-5], size=5)
        result = gradcheck.check_grad(lambda v: float(np.sum(np.maximum(v, 0.01 * v))),
                                      lambda v: np.where(v > 0, 1.0, 0.01), z, seed=seed)
        assert result.ok, str(result)
        assert result.options["precision"] == "float64"


def test_hidden_float32_arithmetic_still_catches_a_one_percent_error():
    x = np.linspace(-1.5, 1.5, 5)
    result = gradcheck.check_grad(mixed, lambda z: mixed_grad(z) * 1.01, x, mode="full")
    assert not result.ok and result.tensors[0].n_wrong == 5
