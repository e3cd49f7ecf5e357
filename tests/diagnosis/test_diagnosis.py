"""The diagnosis names planted bugs on synthetic evidence and stays quiet on noise.

Evidence is built here the way the checker builds it: ``numeric`` is the true gradient,
``analytic`` the planted bug applied to it, ``wrong`` the entries that differ.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.diagnosis import RUN_DETECTORS, TENSOR_DETECTORS, diagnose
from gradcheck.diagnosis.evidence import RunEvidence, TensorEvidence

VALUE_BUGS = ("all zeros", "sign flipped", "constant factor", "transposed", "kernel rotated",
              "instead of g·Wᵀ", "wrong positions")


def tensor(name: str, analytic, numeric, *, role: str = "param", layout: str = "",
           nondifferentiable=None) -> TensorEvidence:
    """Evidence of one tensor; an entry is wrong where analytic and numeric differ."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    known = np.isfinite(numeric)
    scale = np.max(np.abs(numeric[known]), initial=0.0)
    wrong = known & ~np.isclose(analytic, np.where(known, numeric, 0.0),
                                rtol=1e-6, atol=1e-9 * scale)
    if nondifferentiable is None:
        nondifferentiable = np.zeros(analytic.shape, dtype=bool)
    return TensorEvidence(name, role, analytic, numeric, wrong & ~nondifferentiable,
                          nondifferentiable, layout)


def run_of(*tensors: TensorEvidence, batch_size: int | None = 8, **flags) -> RunEvidence:
    return RunEvidence(batch_size=batch_size, tensors=tensors, **flags)


def about(findings: list[str], name: str) -> list[str]:
    return [f for f in findings if f.startswith(f"{name}: ")]


def gradients(draw, shape) -> np.ndarray:
    """A well-scaled true gradient: every entry of magnitude in [0.5, 10], random signs."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 10.0, shape) * rng.choice([-1.0, 1.0], shape)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).filter(
    lambda s: int(np.prod(s)) >= 3)


# --------------------------------------------------------------------------------------
# Value bugs


@settings(max_examples=40)
@given(data=st.data(), shape=shapes)
def test_correct_gradient_gives_no_findings(data, shape):
    n = gradients(data.draw, shape)
    bias = n[..., :1]
    assert diagnose(run_of(tensor("W", n * (1 + 1e-9), n), tensor("b", bias, bias))) == []


@settings(max_examples=40)
@given(data=st.data(), shape=shapes)
def test_sign_flip_is_named_in_any_shape(data, shape):
    n = gradients(data.draw, shape)
    findings = diagnose(run_of(tensor("W", -n, n)))
    assert about(findings, "W") == ["W: sign flipped (analytic = -1.00 × numeric)"]


@settings(max_examples=60)
@given(data=st.data(), shape=shapes,
       factor=st.floats(0.01, 100.0).filter(lambda c: abs(c - 1) > 0.05),
       negative=st.booleans())
def test_any_constant_factor_is_named_with_its_value(data, shape, factor, negative):
    n = gradients(data.draw, shape)
    c = -factor if negative else factor
    [finding] = about(diagnose(run_of(tensor("W", c * n, n), batch_size=None)), "W")
    match = re.fullmatch(r"W: (sign flipped and )?off by a constant factor ([0-9.e+-]+).*", finding)
    assert match is not None, finding
    assert (match[1] is not None) == negative
    assert float(match[2]) == pytest.approx(factor, rel=5e-3)


@settings(max_examples=30)
@given(data=st.data(), shape=shapes, factor=st.sampled_from([-1.0, 0.5, 2.0, 8.0]),
       magnitude=st.sampled_from([1e-250, 1e-160, 1e-30, 1e30, 1e160]))
def test_the_diagnosis_does_not_depend_on_the_gradient_scale(data, shape, factor, magnitude):
    """Same words at any magnitude: squares of 1e-160 underflow, of 1e160 overflow."""
    n = gradients(data.draw, shape)
    expected = diagnose(run_of(tensor("W", factor * n, n)))
    assert diagnose(run_of(tensor("W", factor * n * magnitude, n * magnitude))) == expected


@settings(max_examples=30)
@given(data=st.data(), shape=shapes, factor=st.sampled_from([-1.0, 0.5, 2.0, 8.0, 0.125]),
       noise=st.floats(0.0, 3e-3))
def test_a_factor_is_found_through_finite_difference_noise(data, shape, factor, noise):
    """Numeric values carry float32-level relative error; the factor is still named."""
    n = gradients(data.draw, shape)
    seed = data.draw(st.integers(0, 2**32 - 1))
    noisy = n * (1 + noise * np.random.default_rng(seed).standard_normal(shape))
    [finding] = about(diagnose(run_of(tensor("W", factor * n, noisy))), "W")
    if factor == -1:
        assert finding.startswith("W: sign flipped")
        return
    match = re.match(r"W: off by a constant factor ([0-9.]+)", finding)
    assert match is not None, finding
    assert float(match[1]) == pytest.approx(factor, rel=0.01)


@pytest.mark.parametrize(("factor", "phrase"), [
    (32.0, "32.0 = the batch size (analytic = 32.0 × numeric; a missing 1/N?)"),
    (1 / 32, "0.0312 = 1/batch size (analytic = 0.0312 × numeric; an extra 1/N?)"),
    (2.0, "2.0 (analytic = 2.0 × numeric; e.g. a term counted twice"),
    (0.5, "0.5 (analytic = 0.5 × numeric; e.g. derivative of x² written as x)"),
    (3.0, "3.0 (analytic = 3.0 × numeric)"),
])
def test_meaningful_factors_are_explained(factor, phrase):
    n = np.random.default_rng(0).standard_normal((4, 5))
    [finding] = diagnose(run_of(tensor("W", factor * n, n), batch_size=32))
    assert finding.startswith(f"W: off by a constant factor {phrase}")


@settings(max_examples=40)
@given(data=st.data(), k=st.integers(2, 6))
def test_transposed_square_matrix_is_named(data, k):
    n = gradients(data.draw, (k, k))
    n[np.triu_indices(k, 1)] *= 3.0  # clearly not symmetric
    assert about(diagnose(run_of(tensor("Wh", n.T, n))), "Wh") == [
        "Wh: transposed (analytic ≈ numericᵀ)"]


def test_rotated_conv_kernel_is_named():
    n = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    [finding] = diagnose(run_of(tensor("W", n[..., ::-1, ::-1], n)))
    assert finding.startswith("W: kernel rotated by 180°")


@settings(max_examples=30)
@given(data=st.data(), shape=shapes)
def test_all_zero_gradient_is_named(data, shape):
    n = gradients(data.draw, shape)
    assert about(diagnose(run_of(tensor("b", np.zeros(shape), n))), "b") == [
        "b: gradient is all zeros"]


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(6, 12), cols=st.integers(2, 3))
def test_dx_multiplied_by_w_instead_of_w_transposed_is_named(seed, rows, cols):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((rows, cols))
    antisymmetric = np.triu(np.ones((cols, cols)), 1) - np.tril(np.ones((cols, cols)), -1)
    w = rng.uniform(-0.5, 0.5, (cols, cols)) + 2 * np.eye(cols) + antisymmetric
    [finding] = diagnose(run_of(tensor("x", g @ w, g @ w.T, role="input")))
    assert finding.startswith("x: dx = g·W instead of g·Wᵀ?")


def test_max_pool_routing_to_the_wrong_element_is_named():
    rng = np.random.default_rng(2)
    n = np.zeros((2, 1, 4, 4))
    a = np.zeros_like(n)
    g = rng.standard_normal((2, 1, 2, 2))
    n[:, :, 1::2, ::2] = g  # the true argmax of each 2×2 window
    a[:, :, ::2, ::2] = g  # BUG: always the window's first element
    [finding] = about(diagnose(run_of(tensor("x", a, n, role="input"))), "x")
    assert "the right values at the wrong positions" in finding


def test_a_nearly_right_gradient_is_not_called_a_permutation():
    n = np.random.default_rng(13).standard_normal((4, 4))
    a = n * (1 + 0.01 * np.random.default_rng(14).standard_normal((4, 4)))
    assert diagnose(run_of(tensor("x", a, n, role="input"))) == []


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1),
       shape=st.sampled_from([(20,), (4, 6), (2, 3, 4), (2, 2, 3, 3)]),
       relative_noise=st.floats(0.3, 3.0))
def test_random_noise_is_not_misnamed(seed, shape, relative_noise):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape)
    noisy = n + relative_noise * rng.standard_normal(shape)
    unrelated = rng.standard_normal(shape)
    for a in (noisy, unrelated):
        findings = diagnose(run_of(tensor("W", a, n)))
        assert not [f for f in findings if any(bug in f for bug in VALUE_BUGS)], findings


@pytest.mark.parametrize("size", [1, 2])
def test_no_unnamed_value_pattern_is_claimed_on_too_few_entries(size):
    # (a named factor fitting exactly is the exception: see the tiny-tensor tests below)
    n = np.arange(1.0, size + 1)
    assert diagnose(run_of(tensor("b", -1.37 * n, n), batch_size=None)) == []


def test_fast_mode_evidence_with_unknown_entries_is_still_diagnosed():
    n = np.random.default_rng(3).standard_normal((6, 6))
    partial = np.full_like(n, np.nan)
    partial[:2] = n[:2]  # only the localized entries have a numeric value
    assert diagnose(run_of(tensor("W", 3 * n, partial), batch_size=None)) == [
        "W: off by a constant factor 3.0 (analytic = 3.0 × numeric)"]


def sampled(ev: TensorEvidence, count: int, seed: int) -> TensorEvidence:
    """``ev`` as fast mode reports it: numeric (and a verdict) only at ``count`` random entries."""
    keep = np.zeros(ev.analytic.size, dtype=bool)
    keep[np.random.default_rng(seed).choice(ev.analytic.size, count, replace=False)] = True
    keep = keep.reshape(ev.analytic.shape)
    return TensorEvidence(ev.name, ev.role, ev.analytic, np.where(keep, ev.numeric, np.nan),
                          ev.wrong & keep, ev.nondifferentiable, ev.layout)


def _planted(bug: str) -> TensorEvidence:
    """One tensor with a planted bug, large enough that a sample of 24 entries is partial."""
    rng = np.random.default_rng(15)
    if bug == "wrong positions":
        n, a = np.zeros((4, 2, 6, 6)), np.zeros((4, 2, 6, 6))
        g = rng.standard_normal((4, 2, 3, 3))
        n[:, :, 1::2, 1::2] = g  # the true argmax of each 2×2 window
        a[:, :, ::2, ::2] = g
        return tensor("x", a, n, role="input")
    if bug == "borders":
        n = rng.standard_normal((4, 2, 6, 6))
        a = n.copy()
        a[..., 0, :] += 1.0
        a[..., -1, :] += 1.0
        a[..., 1:-1, 0] += 1.0
        a[..., 1:-1, -1] += 1.0
        return tensor("x", a, n, role="input")
    if bug == "time steps":
        n = rng.standard_normal((4, 8, 3))
        a = n.copy()
        a[:, :5] += 1.0
        return tensor("x", a, n, role="input", layout="NTD")
    n = rng.standard_normal((6, 6))
    return tensor("W", {"sign flipped": -n, "constant factor": 4 * n, "all zeros": 0 * n,
                        "transposed": n.T}[bug], n)


@pytest.mark.parametrize("bug", ["sign flipped", "constant factor", "all zeros", "transposed",
                                 "wrong positions", "borders", "time steps"])
@pytest.mark.parametrize("seed", range(5))
def test_a_sample_of_entries_suffices_as_in_fast_mode(bug, seed):
    ev = _planted(bug)
    [full] = about(diagnose(run_of(ev, batch_size=None)), ev.name)
    [from_sample] = about(diagnose(run_of(sampled(ev, 24, seed), batch_size=None)), ev.name)
    assert bug in full
    assert bug in from_sample


def test_nondifferentiable_entries_do_not_spoil_a_fit():
    n = np.random.default_rng(4).standard_normal((3, 4))
    a = -n
    a[0, 0] = 0.5  # a valid subgradient at a kink, far from -n
    kink = np.zeros(n.shape, dtype=bool)
    kink[0, 0] = True
    [finding] = diagnose(run_of(tensor("W", a, n, nondifferentiable=kink)))
    assert finding.startswith("W: sign flipped")


# --------------------------------------------------------------------------------------
# Which tensor or layer; where in the tensor


def test_one_wrong_tensor_among_right_ones_is_blamed():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    findings = diagnose(run_of(tensor("x", x, x, role="input"), tensor("W", -w, w),
                               tensor("b", b, b)))
    assert findings == ["only W is wrong; x and b are right",
                        "W: sign flipped (analytic = -1.00 × numeric)"]


def test_a_tree_path_beside_a_top_level_array_is_blamed_like_any_tensor():
    """``check_function(f, x, {"a": ..., "c": ...})``: ``x`` beside ``p.a`` and ``p.c``."""
    rng = np.random.default_rng(6)
    x, a, c = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(3)
    findings = diagnose(run_of(tensor("x", x, x, role="input"), tensor("p.a", -a, a),
                               tensor("p.c", c, c)))
    assert [f.code for f in findings] == ["one-tensor", "sign-flip"]
    assert findings[0].startswith("only p.a is wrong")


def test_a_factor_shared_by_every_wrong_tensor_is_pointed_out_once():
    rng = np.random.default_rng(11)
    evidence = [tensor(name, -4 * n, n) for name, n in
                (("x", rng.standard_normal((4, 3))), ("W", rng.standard_normal((3, 3))))]
    findings = diagnose(run_of(*evidence, batch_size=4))
    assert findings[0].startswith(
        "x and W are all off by the same factor -4.0 (sign flipped; 4.0 = the batch size)")


def test_different_factors_are_not_called_common():
    rng = np.random.default_rng(12)
    n1, n2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    findings = diagnose(run_of(tensor("x", 2 * n1, n1), tensor("W", 3 * n2, n2)))
    assert not [f for f in findings if "same factor" in f]


def test_two_wrong_tensors_are_not_blamed_alone():
    w, b = np.ones((3, 2)), np.ones(2)
    findings = diagnose(run_of(tensor("W", 2 * w, w), tensor("b", 0 * b + 5, b)))
    assert not [f for f in findings if f.startswith("only")]


@pytest.mark.parametrize("bad_layer", ["0", "1", "2"])
def test_one_wrong_layer_of_a_model_is_blamed(bad_layer):
    rng = np.random.default_rng(6)
    evidence = []
    for layer in "012":
        for param, shape in (("W", (3, 3)), ("b", (3,))):
            n = rng.standard_normal(shape)
            a = n if layer != bad_layer else n * 32
            evidence.append(tensor(f"{layer}.{param}", a, n))
    findings = diagnose(run_of(*evidence, batch_size=32))
    if bad_layer == "0":  # right above, wrong below: the error enters on the way down
        assert findings[0] == ("parameter gradients are right from layer 1 up and wrong below "
                               "(0.W and 0.b): the error enters on the way down — the dx "
                               "returned by layer 1, or layer 0's own parameter gradients")
    else:  # a right layer below: the gradient passed down was right
        assert findings[0] == (f"only layer {bad_layer} is wrong ({bad_layer}.W and "
                               f"{bad_layer}.b); layers below it are right, so the gradient "
                               f"it passes down is right: its own parameter gradients are "
                               f"wrong")
    by_code = {f.code: f for f in reversed(findings)}  # the first of each code
    assert by_code["wrong-and-right"] == (
        f"wrong: {bad_layer}.W, {bad_layer}.b; right: "
        + ", ".join(f"{k}.{p}" for k in "012" if k != bad_layer for p in "Wb"))
    assert by_code["common-factor"] == (
        f"{bad_layer}.W and {bad_layer}.b are all off by the same factor "
        f"32.0 = the batch size: the bug is where their gradients meet "
        f"(the upstream gradient or the loss, e.g. its 1/N)")
    assert by_code["constant-factor"].startswith(
        f"{bad_layer}.W: off by a constant factor 32.0 = the batch size")


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(4, 7), width=st.integers(4, 7),
       band=st.sampled_from([1, 2]))
def test_errors_at_the_borders_are_named(seed, height, width, band):
    if min(height, width) <= 2 * band:
        band = 1
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((3, 2, height, width))
    a = n.copy()
    a[..., :band, :] += 1.0  # every edge wrong, the interior right
    a[..., -band:, :] += 1.0
    a[..., :, :band] -= 1.0
    a[..., :, -band:] -= 1.0
    a[..., :band, :band] += 0.5  # corners would otherwise cancel
    a[..., -band:, -band:] += 0.5
    a[..., :band, -band:] += 0.5
    a[..., -band:, :band] += 0.5
    findings = about(diagnose(run_of(tensor("x", a, n, role="input", layout="NCHW"))), "x")
    assert any("errors only at the borders of the H×W grid" in f for f in findings), findings


def test_an_interior_error_rules_out_the_border_pattern():
    n = np.random.default_rng(7).standard_normal((2, 2, 5, 5))
    a = n.copy()
    a[..., 0, :] += 1.0
    a[0, 0, 2, 2] += 1.0
    findings = diagnose(run_of(tensor("x", a, n, role="input", layout="NCHW")))
    assert not [f for f in findings if "borders" in f]


def test_few_border_errors_are_not_called_a_pattern():
    n = np.random.default_rng(8).standard_normal((1, 1, 4, 4))
    a = n.copy()
    a[0, 0, 0, 1] += 1.0  # 12 of 16 entries are at the border: one wrong entry proves nothing
    assert not [f for f in diagnose(run_of(tensor("x", a, n, role="input"))) if "borders" in f]


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(4, 8), data=st.data())
def test_errors_in_early_time_steps_are_named(seed, steps, data):
    k = data.draw(st.integers(1, steps - 2))
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((4, steps, 3))
    a = n.copy()
    decay = 2.0 ** -np.arange(k)  # missing contributions grow toward early steps
    a[:, :k, :] += decay[::-1][None, :, None] * (1 + rng.uniform(size=(4, k, 3)))
    [finding] = about(diagnose(run_of(tensor("x", a, n, role="input", layout="NTD"))), "x")
    assert finding.startswith(f"x: errors only in the first {k} of {steps} time steps")
    assert "truncated BPTT" in finding


def test_early_steps_are_named_even_when_the_first_step_was_not_sampled():
    n = np.random.default_rng(17).standard_normal((3, 6, 3))
    a = n.copy()
    a[:, :4] += 1.0
    numeric = n.copy()
    numeric[:, 0] = np.nan  # fast mode sampled no entry of step 0
    ev = TensorEvidence("x", "input", a, numeric, np.isfinite(numeric) & (a != n),
                        np.zeros(n.shape, dtype=bool), "NTD")
    [finding] = diagnose(run_of(ev))
    assert finding.startswith("x: errors only in the first 4 of 6 time steps")


def test_errors_in_late_time_steps_are_named():
    n = np.random.default_rng(16).standard_normal((4, 6, 3))
    a = n.copy()
    a[:, 4:] *= -1.0
    [finding] = about(diagnose(run_of(tensor("x", a, n, role="input", layout="NTD"))), "x")
    assert finding == "x: errors only in the last 2 of 6 time steps"


@pytest.mark.parametrize("seed", range(20))
def test_scattered_errors_are_not_called_a_location_pattern(seed):
    rng = np.random.default_rng(seed)
    for shape, layout in (((3, 2, 6, 6), "NCHW"), ((4, 7, 3), "NTD")):
        n = rng.standard_normal(shape)
        a = n.copy()
        hit = rng.uniform(size=shape) < 0.3
        hit.flat[[0, -1]] = True  # scattered from the first entry to the last
        a[hit] += rng.uniform(0.5, 2.0, np.count_nonzero(hit))
        findings = diagnose(run_of(tensor("x", a, n, role="input", layout=layout)))
        assert not [f for f in findings if "borders" in f or "time steps" in f], findings


def test_monotone_error_profile_over_all_steps_is_named():
    n = np.random.default_rng(9).standard_normal((3, 5, 2))
    a = n + (10.0 ** -np.arange(5))[None, :, None]
    [finding] = diagnose(run_of(tensor("x", a, n, role="input", layout="NTD")))
    assert finding.startswith("x: error grows toward early time steps (1e+04×")


def test_a_guessed_time_axis_says_it_is_a_guess():
    # a 3-d input without a layout may be (N, C, L) as well as (N, T, D)
    n = np.random.default_rng(9).standard_normal((3, 5, 2))
    a = n + (10.0 ** -np.arange(5))[None, :, None]
    [finding] = diagnose(run_of(tensor("x", a, n, role="input")))
    assert "steps along axis 1 (time, if x is (N, T, D))" in finding


# --------------------------------------------------------------------------------------
# Run-wide facts


def test_stale_cache_and_nondeterminism_are_reported_first():
    n = np.ones((3, 3))
    stale = diagnose(run_of(tensor("W", -n, n), history_dependent=True))
    assert stale[0] == ("backward depends on an earlier forward (stale cache): refresh "
                        "everything backward reads on every forward")
    noisy = diagnose(run_of(tensor("W", -n, n), tensor("b", n[0], n[0]), nondeterministic=True))
    assert len(noisy) == 1 and noisy[0].startswith("nondeterministic: ")


def test_diagnosis_does_not_mutate_the_evidence():
    n = np.random.default_rng(10).standard_normal((3, 3))
    ev = tensor("W", -n, n)
    before = [np.copy(arr) for arr in (ev.analytic, ev.numeric, ev.wrong)]
    diagnose(run_of(ev))
    for old, new in zip(before, (ev.analytic, ev.numeric, ev.wrong), strict=True):
        np.testing.assert_array_equal(old, new)


def test_every_detector_row_has_a_distinct_bug_class_and_a_known_kind():
    bugs = [row.bug for row in (*TENSOR_DETECTORS, *RUN_DETECTORS)]
    assert len(bugs) == len(set(bugs))
    assert {row.kind for row in TENSOR_DETECTORS} == {"value", "where"}
    assert {row.kind for row in RUN_DETECTORS} == {"state", "blame"}


def test_wrong_entries_only_at_kinks_are_named_as_such():
    kink = np.array([True, False, False])
    ev = TensorEvidence("b", "param", np.array([0.0, 1.0, 2.0]), np.array([-0.3, 1.0, 2.0]),
                        wrong=kink, nondifferentiable=kink)
    findings = diagnose(run_of(ev))
    assert any("sits at a kink" in f and "(b)" in f for f in findings)


def test_wrong_entries_off_the_kinks_are_not_blamed_on_kinks():
    kink = np.array([True, False, False])
    ev = TensorEvidence("b", "param", np.array([0.0, 1.5, 2.0]), np.array([-0.3, 1.0, 2.0]),
                        wrong=np.array([True, True, False]), nondifferentiable=kink)
    assert not any("kink" in f for f in diagnose(run_of(ev)))


@pytest.mark.parametrize(("factor", "named"), [(2.0, True), (-1.0, True), (0.125, True),
                                               (1.37, False), (-3.3, False)])
def test_a_tiny_tensor_gets_a_factor_only_when_it_is_a_named_one_fitting_exactly(factor,
                                                                                 named):
    numeric = np.array([0.8, -1.3])
    ev = tensor("b", factor * numeric, numeric)
    findings = diagnose(run_of(ev, batch_size=8))
    assert any(f.startswith("b: ") and ("factor" in f or "sign" in f)
               for f in findings) == named


def test_a_tiny_tensor_with_a_roughly_doubled_gradient_is_not_named():
    numeric = np.array([0.8, -1.3])
    ev = tensor("b", 2.0 * numeric * np.array([1.0, 1.001]), numeric)
    assert not any("factor" in f for f in diagnose(run_of(ev)))


def test_a_wrong_dx_higher_up_blames_the_layers_in_between_not_the_lowest_layer():
    # Sequential([Dense, tanh, Dense]) whose layer 2 returns a wrong dx: only layer 0's
    # parameter gradients are wrong, but the bug is in layer 1 or 2 (or in layer 0).
    rng = np.random.default_rng(2)
    n0, n2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    findings = diagnose(run_of(tensor("0.W", -n0, n0), tensor("2.W", n2, n2)))
    assert findings[0].startswith("parameter gradients are right from layer 2 up and wrong "
                                  "below (0.W)")
    assert "the dx returned by layers 1..2" in findings[0]


def test_a_factor_2_with_a_batch_of_2_names_both_readings():
    n = np.random.default_rng(4).standard_normal((3, 3))
    (finding,) = diagnose(run_of(tensor("W", 2 * n, n), batch_size=2))
    assert "the batch size or a doubled term" in finding
