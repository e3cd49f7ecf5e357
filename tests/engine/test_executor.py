"""``executor=``: full mode's evaluations on a pool give the serial run's result, bit for bit,
and never touch the user's arrays; what cannot travel is refused with a clear error."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.adapters import checks
from gradcheck.models import BatchNorm, Conv2D, Dense, MaxPool2D
from support import shipped
from support.shipped import WrongWeightGradient, depends_on_the_process, its_vjp


def _comparable(result) -> dict:
    """Everything of ``to_dict()`` but the time, the executor's name and the evaluations
    (the executor adds its cross-check of the first entry per target)."""
    d = result.to_dict()
    d.pop("seconds")
    d.pop("evaluations")
    d["options"] = {k: v for k, v in d["options"].items() if k != "executor"}
    return d


@pytest.fixture(scope="module")
def threads():
    with ThreadPoolExecutor(2) as pool:
        yield pool


LAYERS = {
    "dense": (lambda: Dense(4, 3), (5, 4)),
    "conv": (lambda: Conv2D(2, 2, 3), (3, 2, 5, 5)),
    "maxpool": (lambda: MaxPool2D(2), (3, 2, 4, 4)),
    "batchnorm": (lambda: BatchNorm(3), (5, 3)),  # coupled: plain full mode on the pool
}


@settings(max_examples=6, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(LAYERS)), seed=st.integers(0, 1000),
       structured=st.booleans())
def test_the_executor_gives_the_serial_result(threads, name, seed, structured):
    factory, shape = LAYERS[name]
    x = np.random.default_rng(seed).standard_normal(shape)
    serial = gradcheck.check_layer(factory(), x, mode="full", seed=seed, structured=structured)
    pooled = gradcheck.check_layer(factory(), x, mode="full", seed=seed, structured=structured,
                                   executor=threads)
    assert pooled.options["executor"] == "ThreadPoolExecutor"
    assert _comparable(pooled) == _comparable(serial)
    for s, p in zip(serial.evidence.tensors, pooled.evidence.tensors, strict=True):
        assert np.array_equal(s.numeric, p.numeric, equal_nan=True)


def _spawned(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned workers (forking a process that holds JAX's threads may hang)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def test_a_process_pool_gives_the_serial_result_and_leaves_the_arrays_alone():
    layer = WrongWeightGradient(4, 3)
    x = np.random.default_rng(0).standard_normal((6, 4))
    x_before = x.copy()
    params_before = {k: v.copy() for k, v in layer.params.items()}
    serial = gradcheck.check_layer(layer, x, mode="full")
    with _spawned(2) as pool:
        pooled = gradcheck.check_layer(layer, x, mode="full", executor=pool)
    assert pooled.verdict == serial.verdict == "wrong"
    assert _comparable(pooled) == _comparable(serial)
    assert np.array_equal(x, x_before)
    assert all(np.array_equal(layer.params[k], v) for k, v in params_before.items())


def test_check_jacobian_takes_an_executor(threads):
    def f(x):
        return np.sin(x) * x[:, :1]

    def vjp(x, v):
        dx = v * np.cos(x) * x[:, :1]
        dx[:, 0] += (v * np.sin(x)).sum(axis=1)
        return dx

    x = np.random.default_rng(1).standard_normal((4, 3))
    serial = gradcheck.check_jacobian(f, x, vjp=vjp, mode="full")
    pooled = gradcheck.check_jacobian(f, x, vjp=vjp, mode="full", executor=threads)
    assert serial.verdict == "ok" and _comparable(pooled) == _comparable(serial)


def test_a_function_that_cannot_be_pickled_is_refused_by_name(threads, monkeypatch):
    monkeypatch.setattr(checks, "dumps_for_workers", lambda: pickle.dumps)  # no cloudpickle
    x = np.ones((3, 2))
    with pytest.raises(gradcheck.CheckInputError, match="cannot be pickled"):
        gradcheck.check_jacobian(lambda z: z * 2.0, x, vjp=lambda z, v: 2.0 * v,
                                 mode="full", executor=threads)


def test_a_function_whose_value_depends_on_the_process_is_refused():
    x = np.ones((3, 2))
    with _spawned(1) as pool, pytest.raises(gradcheck.UserCodeError, match="worker process"):
        gradcheck.check_jacobian(depends_on_the_process, x, vjp=its_vjp, mode="full",
                                 executor=pool)


def test_something_that_is_not_an_executor_is_refused():
    with pytest.raises(gradcheck.CheckTypeError, match="executor="):
        gradcheck.check_layer(Dense(2, 2), np.ones((2, 2)), executor=4)


@pytest.mark.parametrize("structured", [True, False])
def test_every_call_a_worker_makes_is_counted(structured):
    """``evaluations`` counts the worker's own check that φ reproduces f0 too: the calls
    not counted are the same few as in the serial run."""
    x = np.random.default_rng(1).standard_normal((6, 4))
    uncounted = []
    for executor in (None, ThreadPoolExecutor(1)):
        shipped.CALLS.clear()
        result = gradcheck.check_jacobian(shipped.counted_tanh, x, vjp=shipped.counted_tanh_vjp,
                                          mode="full", structured=structured,
                                          executor=executor)
        uncounted.append(len(shipped.CALLS) - result.evaluations)
        if executor is not None:
            executor.shutdown()
    assert uncounted[0] == uncounted[1], uncounted
