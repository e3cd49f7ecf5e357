"""Optimizers (SGD with momentum, Adam) and the training loop (fit, evaluate, History)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.models.dense import Activation, Dense
from gradcheck.models.losses import Loss
from gradcheck.models.network import Sequential
from gradcheck.models.optim import SGD, Adam
from gradcheck.models.train import History, accuracy, evaluate, fit


class Quadratic:
    """f(θ) = ½θᵀAθ − bᵀθ with A symmetric positive definite; minimum at A⁻¹b."""

    def __init__(self, dim: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.eigenvalues = rng.uniform(0.5, 2.0, dim)
        self.a = q @ np.diag(self.eigenvalues) @ q.T
        self.b = rng.standard_normal(dim)
        self.params = {"theta": rng.standard_normal(dim)}
        self.grads = {"theta": np.zeros(dim)}

    def value(self) -> float:
        t = self.params["theta"]
        return float(0.5 * t @ self.a @ t - self.b @ t)

    def compute_grad(self) -> None:
        self.grads["theta"][...] = self.a @ self.params["theta"] - self.b


OPTIMIZERS = {
    "sgd": lambda q: SGD(q.params, q.grads, lr=0.5),
    "sgd_momentum": lambda q: SGD(q.params, q.grads, lr=0.1, momentum=0.9),
    "adam": lambda q: Adam(q.params, q.grads, lr=0.05),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@settings(max_examples=15)
@given(dim=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_optimizers_minimize_a_convex_quadratic(name, dim, seed):
    q = Quadratic(dim, seed)
    theta = q.params["theta"]
    optimizer = OPTIMIZERS[name](q)
    start = q.value()
    for _ in range(600):
        q.compute_grad()
        optimizer.step()
    assert q.params["theta"] is theta  # updated in place
    optimum = np.linalg.solve(q.a, q.b)
    assert q.value() <= start
    np.testing.assert_allclose(theta, optimum, atol=1e-3)


def test_sgd_steps_follow_the_update_rule():
    p, g = np.array([1.0, -1.0]), np.array([0.5, -2.0])
    SGD({"p": p}, {"p": g}, lr=0.1).step()
    np.testing.assert_allclose(p, [0.95, -0.8])
    # heavy ball with a constant gradient: velocities g, then (1 + μ)g
    p = np.zeros(2)
    sgd = SGD({"p": p}, {"p": g}, lr=0.1, momentum=0.5)
    sgd.step()
    sgd.step()
    np.testing.assert_allclose(p, -0.1 * (1 + 1.5) * g)


@settings(max_examples=30)
@given(scale=st.floats(1e-6, 1e6), seed=st.integers(0, 2**16))
def test_adam_first_step_is_lr_times_sign_for_any_gradient_scale(scale, seed):
    g = scale * np.random.default_rng(seed).standard_normal(5)
    p = np.zeros(5)
    Adam({"p": p}, {"p": g}, lr=0.01, eps=1e-12).step()
    # bias correction makes m̂ = g and √v̂ = |g|: the step is lr·g/(|g| + eps) ≈ lr·sign(g)
    np.testing.assert_allclose(p, -0.01 * g / (np.abs(g) + 1e-12), rtol=1e-9)


@pytest.mark.parametrize("make", [lambda m: SGD(m, lr=0.1, momentum=0.9),
                                  lambda m: Adam(m, lr=0.01)])
def test_float32_parameters_stay_float32(make):
    model = Sequential([Dense(3, 2, dtype=np.float32)])
    w = model.params["0.W"]
    optimizer = make(model)
    model.forward(np.ones((2, 3), dtype=np.float32))
    model.backward(np.ones((2, 2), dtype=np.float32))
    optimizer.step()
    assert w.dtype == np.float32 and model.params["0.W"] is w


def test_model_mode_reads_gradients_afresh_each_step():
    model = Sequential([Dense(2, 1, seed=0)])
    sgd = SGD(model, lr=1.0)
    w0 = model.params["0.W"].copy()
    model.layers[0].grads["W"] = np.ones((2, 1))  # a layer that rebinds its grads
    model.layers[0].grads["b"] = np.zeros(1)
    sgd.step()
    np.testing.assert_allclose(model.params["0.W"], w0 - 1.0)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: SGD({"a": np.zeros(2)}, {"b": np.zeros(2)}), ValueError,
     r"same keys; only in params: \['a'\], only in grads: \['b'\]"),
    (lambda: SGD({"a": np.zeros(2)}, {"a": np.zeros(3)}), ValueError,
     r"grad 'a' has shape \(3,\), its parameter \(2,\)"),
    (lambda: SGD(object()), TypeError, r"pass a model with .params and .grads"),
    (lambda: SGD({}, {}, lr=0.0), ValueError, "lr must be a positive number"),
    (lambda: SGD({}, {}, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: Adam({}, {}, betas=(0.9, 1.0)), ValueError, "betas must be two numbers"),
    (lambda: Adam({}, {}, eps=0.0), ValueError, "eps must be positive"),
])
def test_optimizer_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- fit --------------------------------------------------------------------------------

def blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs in 2-d, integer labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centers[y] + 0.3 * rng.standard_normal((n, 2)), y


def classifier(seed: int = 0, l2: float = 0.0) -> Sequential:
    return Sequential([Dense(2, 8, seed=seed), Activation("tanh"), Dense(8, 3, seed=seed + 1)],
                      l2=l2)


class Recording:
    """Wraps a model and records the rows (by their first feature) of every forward."""

    def __init__(self, model: Sequential) -> None:
        self.model, self.batches = model, []

    def forward(self, x):
        self.batches.append(x[:, 0].copy())
        return self.model.forward(x)

    def backward(self, g):
        return self.model.backward(g)

    def penalty(self):
        return self.model.penalty()

    params = property(lambda self: self.model.params)
    grads = property(lambda self: self.model.grads)


@pytest.mark.parametrize(("batch_size", "steps_per_epoch"), [
    (None, 1), (1, 60), (7, 9), (60, 1), (500, 1),
])
def test_batch_stochastic_and_mini_batch_visit_every_row_once_per_epoch(batch_size,
                                                                        steps_per_epoch):
    x, y = blobs()
    model = Recording(classifier())
    optimizer = SGD(model, lr=0.05)
    fit(model, Loss("softmax_ce"), x, y, optimizer=optimizer, epochs=3, batch_size=batch_size)
    assert optimizer.steps == 3 * steps_per_epoch
    assert len(model.batches) == 3 * steps_per_epoch
    epochs = np.split(np.concatenate(model.batches), 3)
    for seen in epochs:
        np.testing.assert_array_equal(np.sort(seen), np.sort(x[:, 0]))
    if steps_per_epoch > 1:  # reshuffled every epoch
        assert not np.array_equal(epochs[0], epochs[1])
    else:
        np.testing.assert_array_equal(epochs[0], x[:, 0])


def _train(seed: int, batch_size: int | None, epochs: int = 5) -> tuple[History, Sequential]:
    x, y = blobs()
    model = classifier()
    history = fit(model, Loss("softmax_ce"), x, y, optimizer=SGD(model, lr=0.1),
                  epochs=epochs, batch_size=batch_size, seed=seed)
    return history, model


def test_training_is_reproducible_and_shuffling_depends_on_the_seed():
    a, b, c = _train(1, 8)[1], _train(1, 8)[1], _train(2, 8)[1]
    np.testing.assert_array_equal(a.params["0.W"], b.params["0.W"])
    assert not np.array_equal(a.params["0.W"], c.params["0.W"])
    # full batch: nothing to shuffle, the seed is irrelevant
    np.testing.assert_array_equal(_train(1, None)[1].params["0.W"],
                                  _train(2, None)[1].params["0.W"])


@pytest.mark.parametrize(("batch_size", "lr"), [(None, 0.5), (1, 0.05), (10, 0.2)])
def test_fit_learns_separable_blobs_and_records_history(batch_size, lr):
    x, y = blobs()
    xv, yv = blobs(seed=1)
    x0, y0 = x.copy(), y.copy()
    model = classifier()
    history = fit(model, Loss("softmax_ce"), x, y, optimizer=SGD(model, lr=lr, momentum=0.5),
                  epochs=30, batch_size=batch_size, x_val=xv, y_val=yv)
    assert history.epochs == 30 == len(history.val_loss) == len(history.val_accuracy)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.accuracy[-1] == 1.0 and history.val_accuracy[-1] == 1.0
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert "val_acc 1.000" in str(history).splitlines()[-1]


def test_regression_has_no_accuracy_and_history_prints():
    x = np.linspace(-1, 1, 20)[:, None]
    model = Sequential([Dense(1, 1)])
    history = fit(model, Loss("mse"), x, 3 * x - 1, optimizer=SGD(model, lr=0.2), epochs=100)
    assert history.accuracy == [None] * 100
    assert history.loss[-1] < 1e-8
    np.testing.assert_allclose(model.params["0.W"], [[3.0]], atol=1e-4)
    np.testing.assert_allclose(model.params["0.b"], [-1.0], atol=1e-4)
    assert "acc" not in str(history)


def test_recorded_and_evaluated_losses_include_the_penalty():
    x, y = blobs()
    model = classifier(l2=0.1)
    loss = Loss("softmax_ce")
    history = fit(model, loss, x, y, optimizer=SGD(model, lr=0.1), epochs=1)
    value, acc = evaluate(model, loss, x, y, batch_size=7)
    data_loss = Loss("softmax_ce").forward(model.forward(x), y)
    assert value == pytest.approx(data_loss + model.penalty())
    assert acc == accuracy(model.forward(x), y, loss)
    assert history.loss[0] > data_loss  # penalty of l2 = 0.1 is sizeable


@pytest.mark.parametrize(("loss", "pred", "target", "expected"), [
    ("softmax_ce", [[0.0, 1.0], [1.0, 0.0]], [1, 1], 0.5),
    ("cce", [[0.2, 0.8], [0.9, 0.1]], [[0, 1], [1, 0]], 1.0),
    ("bce", [[0.7], [0.4]], [[1.0], [1.0]], 0.5),
    ("bce_logits", [[-0.1], [0.2]], [[0.0], [1.0]], 1.0),
    ("mse", [[0.0]], [[0.0]], None),
])
def test_accuracy_per_kind_of_target(loss, pred, target, expected):
    assert accuracy(np.array(pred), np.array(target), Loss(loss)) == expected


def test_fit_and_evaluate_restore_training_mode():
    model = classifier()
    model.eval()
    x, y = blobs()
    evaluate(model, Loss("softmax_ce"), x, y)
    assert model.training is False
    fit(model, Loss("softmax_ce"), x, y, optimizer=SGD(model), epochs=1)
    assert model.training is True


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
    ({"batch_size": 0}, ValueError, r"batch_size must be None \(full batch\) or an integer"),
    ({"x_val": np.zeros((2, 2))}, ValueError, "pass both x_val and y_val"),
    ({"x_val": np.zeros((2, 2)), "y_val": np.zeros(3, int)}, ValueError,
     r"x_val and y_val need the same non-zero number of rows"),
    ({"optimizer": "sgd"}, TypeError, "optimizer must have a step"),
])
def test_fit_errors(kwargs, error, match):
    x, y = blobs()
    model = classifier()
    args = {"optimizer": SGD(model), "epochs": 1, **kwargs}
    with pytest.raises(error, match=match):
        fit(model, Loss("softmax_ce"), x, y, **args)


def test_fit_rejects_mismatched_rows():
    model = classifier()
    with pytest.raises(ValueError, match=r"shapes \(5, 2\) and \(4,\)"):
        fit(model, Loss("softmax_ce"), np.zeros((5, 2)), np.zeros(4, int),
            optimizer=SGD(model), epochs=1)


def test_steps_per_epoch_is_ceil_of_rows_over_batch():
    x, y = blobs(n=23)
    model = classifier()
    sgd = SGD(model)
    fit(model, Loss("softmax_ce"), x, y, optimizer=sgd, epochs=2, batch_size=5)
    assert sgd.steps == 2 * math.ceil(23 / 5)
