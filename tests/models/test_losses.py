"""The loss table and the Loss object: gradients, fused vs unfused forms, stability, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS
from gradcheck.models.base import ShapeError
from gradcheck.models.losses import LOSSES, Loss, LossOp

NAMES = sorted(LOSSES)
STEP = 1e-6
softmax = VECTOR_ACTIVATIONS["softmax"]
sigmoid = ACTIVATIONS["sigmoid"].f


@st.composite
def cases(draw, name: str, *, integer_classes: bool | None = None):
    """A ``(pred, target)`` pair that row ``name`` accepts, shape (N, C)."""
    op = LOSSES[name]
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    if op.pred == "probability":
        pred = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.05, 0.95)))
    else:
        pred = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-3.0, 3.0)))
    if op.target == "class":
        if integer_classes if integer_classes is not None else draw(st.booleans()):
            target = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
        else:  # soft targets: any probability rows
            raw = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
            target = (raw + 1e-3) / (raw + 1e-3).sum(axis=1, keepdims=True)
    elif op.target == "binary":
        target = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    else:
        target = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-3.0, 3.0)))
    if name == "huber":
        # f'' jumps at |p − t| = δ: keep central differences O(STEP²) accurate
        residual = pred - target
        pred = np.where(np.abs(np.abs(residual) - 1.0) < 1e-4, pred + 1e-3, pred)
    return pred, target


def central_differences(f, pred: np.ndarray) -> np.ndarray:
    """``df/dpred`` entry by entry with the fixed step ``STEP`` (a plain reference)."""
    numeric = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[i] += STEP
        down[i] -= STEP
        numeric[i] = (f(up) - f(down)) / (2 * STEP)
    return numeric


def test_table_holds_exactly_the_documented_names():
    assert set(LOSSES) == {"mse", "half_sse", "bce", "bce_logits", "cce", "softmax_ce",
                           "huber"}
    assert all(op.name == key for key, op in LOSSES.items())
    assert {op.target for op in LOSSES.values()} <= {"real", "binary", "class"}
    assert {op.pred for op in LOSSES.values()} <= {"real", "probability"}


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30)
@given(data=st.data())
def test_row_grad_matches_central_differences_of_row_value(name, data):
    op = LOSSES[name]
    pred, target = data.draw(cases(name))
    numeric = central_differences(lambda p: op.value(p, target).sum(), pred)
    np.testing.assert_allclose(op.grad(pred, target), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=20)
@given(data=st.data())
def test_loss_is_the_batch_mean_and_backward_its_gradient(name, data):
    pred, target = data.draw(cases(name))
    loss = Loss(name)
    value = loss.forward(pred, target)
    assert isinstance(value, float)
    assert value == pytest.approx(np.mean(LOSSES[name].value(pred, target)), rel=1e-12)
    dpred = loss.backward()
    numeric = central_differences(lambda p: Loss(name).forward(p, target), pred)
    np.testing.assert_allclose(dpred, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(data=st.data())
def test_float32_backward_keeps_dtype_and_inputs_stay_untouched(name, data):
    pred, target = data.draw(cases(name))
    pred32 = pred.astype(np.float32)
    pred_before, target_before = pred32.copy(), target.copy()
    loss = Loss(name)
    value32 = loss.forward(pred32, target)
    dpred = loss.backward()
    assert dpred.dtype == np.float32 and dpred.shape == pred.shape
    np.testing.assert_array_equal(pred32, pred_before)
    np.testing.assert_array_equal(target, target_before)
    reference = Loss(name)
    assert value32 == pytest.approx(reference.forward(pred, target), rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(dpred, reference.backward(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(data=st.data())
def test_later_in_place_changes_by_the_caller_do_not_leak_into_backward(name, data):
    pred, target = data.draw(cases(name))
    loss = Loss(name)
    loss.forward(pred, target)
    expected = loss.backward()
    loss.forward(pred, target)
    pred *= 0.5       # the caller reuses its buffers after forward
    target[...] = 0   # (valid for every target kind: class 0, label 0, real 0)
    np.testing.assert_array_equal(loss.backward(), expected)

@pytest.mark.parametrize("name", ["cce", "softmax_ce"])
@settings(max_examples=20)
@given(data=st.data())
def test_integer_classes_equal_one_hot_rows_float_or_integer(name, data):
    pred, classes = data.draw(cases(name, integer_classes=True))
    one_hot = np.eye(pred.shape[1])[classes]
    by_index, by_row, by_int_row = Loss(name), Loss(name), Loss(name)
    value = by_index.forward(pred, classes)
    assert value == pytest.approx(by_row.forward(pred, one_hot))
    assert value == pytest.approx(by_int_row.forward(pred, one_hot.astype(np.int64)))
    np.testing.assert_allclose(by_index.backward(), by_row.backward())
    np.testing.assert_allclose(by_int_row.backward(), by_row.backward())


@settings(max_examples=30)
@given(data=st.data())
def test_fused_softmax_ce_equals_cce_after_softmax_in_value_and_chain_rule(data):
    z, target = data.draw(cases("softmax_ce"))
    y = softmax.f(z)
    fused, split = LOSSES["softmax_ce"], LOSSES["cce"]
    np.testing.assert_allclose(fused.value(z, target), split.value(y, target), rtol=1e-10)
    chained = softmax.vjp(y, split.grad(y, target))
    np.testing.assert_allclose(fused.grad(z, target), chained, rtol=1e-8, atol=1e-12)


@settings(max_examples=30)
@given(data=st.data())
def test_bce_with_logits_equals_bce_after_sigmoid_in_value_and_chain_rule(data):
    z, target = data.draw(cases("bce_logits"))
    p = sigmoid(z)
    fused, split = LOSSES["bce_logits"], LOSSES["bce"]
    np.testing.assert_allclose(fused.value(z, target), split.value(p, target), rtol=1e-10)
    chained = split.grad(p, target) * p * (1 - p)
    np.testing.assert_allclose(fused.grad(z, target), chained, rtol=1e-8, atol=1e-12)


@settings(max_examples=30)
@given(r=hnp.arrays(np.float64, (3, 2), elements=st.floats(-5.0, 5.0)))
def test_huber_is_half_squared_inside_delta_and_linear_outside(r):
    per_element = np.where(np.abs(r) <= 1.0, 0.5 * r**2, np.abs(r) - 0.5)
    np.testing.assert_allclose(LOSSES["huber"].value(r, np.zeros_like(r)),
                               per_element.sum(axis=1), rtol=1e-12)
    assert LOSSES["half_sse"].value(r, np.zeros_like(r)) == pytest.approx(
        0.5 * LOSSES["mse"].value(r, np.zeros_like(r)))


# (loss, pred, target, per-sample value): closed forms at extreme logits/probabilities
EXTREMES = [
    ("softmax_ce", [[1e4, 0.0, -1e4]], [0], 0.0),
    ("softmax_ce", [[1e4, 0.0, -1e4]], [2], 2e4),
    ("bce_logits", [[1e4, -1e4]], [[1.0, 0.0]], 0.0),
    ("bce_logits", [[1e4, -1e4]], [[0.0, 1.0]], 2e4),
    ("bce", [[1.0, 0.0]], [[1.0, 0.0]], 0.0),
]


@pytest.mark.parametrize(("name", "pred", "target", "expected"), EXTREMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_at_extreme_inputs(name, pred, target, expected, dtype):
    loss = Loss(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(np.array(pred, dtype=dtype), np.array(target))
        dpred = loss.backward()
    assert value == pytest.approx(expected, abs=1e-5)
    assert np.all(np.isfinite(dpred))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_on_saturated_wrong_probabilities_stays_finite(dtype):
    loss = Loss("bce")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(np.array([[1.0, 0.0]], dtype=dtype), np.array([[0.0, 1.0]]))
        dpred = loss.backward()
    assert np.isfinite(value) and value > 20  # each term ≈ −log(eps)
    assert np.all(np.isfinite(dpred)) and dpred[0, 0] > 0 > dpred[0, 1]


def test_accepts_a_row_and_reports_its_name():
    row = LossOp("abs", value=lambda p, t: np.abs(p - t).sum(axis=1),
                 grad=lambda p, t: np.sign(p - t), kinks=(0.0,))
    loss = Loss(row)
    assert loss.forward(np.array([[1.0, -2.0]]), np.zeros((1, 2))) == 3.0
    assert repr(loss) == "Loss('abs')"


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: Loss("msee"), ValueError, "known losses: mse, half_sse"),
    (lambda: Loss("mse").backward(), RuntimeError, "before forward"),
    (lambda: Loss("mse").forward(np.zeros((2, 3)), np.zeros((3, 2))), ShapeError,
     r"target shape \(3, 2\) does not match pred shape \(2, 3\)"),
    (lambda: Loss("softmax_ce").forward(np.zeros((2, 3)), np.array([0, 3])), ValueError,
     r"class index 3 at target\[1\] is out of range for 3 classes"),
    (lambda: Loss("softmax_ce").forward(np.zeros((2, 3)), np.array([-1, 0])), ValueError,
     r"class index -1 at target\[0\]"),
    (lambda: Loss("cce").forward(np.full((2, 3), 1 / 3), np.array([0, 1, 2])), ShapeError,
     r"must have shape pred.shape\[:-1\] = \(2,\)"),
    (lambda: Loss("bce").forward(np.full((1, 2), 0.5), np.array([[0.0, 2.0]])), ValueError,
     r"targets must lie in \[0, 1\]"),
    (lambda: Loss("mse").forward(np.zeros((2, 3), dtype=int), np.zeros((2, 3))), TypeError,
     "pred must be a float array"),
    (lambda: Loss("mse").forward(np.zeros((0, 3)), np.zeros((0, 3))), ShapeError,
     "non-empty batch axis"),
])
def test_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
