"""``executor=`` on every NumPy check that runs full mode (``check_function``, ``check_pair``,
``check_object``, ``check_loss``, ``check_model``): the pooled run is the serial run, entry
by entry, on thread and process pools; a wrong gradient is caught the same way; the user's
arrays and objects are bit-identical afterwards; fast mode says it has nothing to spread."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.adapters import shipping
from gradcheck.models import Activation, Dense, Loss, Sequential
from support import shipped


@dataclass
class Case:
    """One check on fresh objects: ``run(executor)`` and the user's arrays it must not touch."""

    run: Callable[..., gradcheck.CheckResult]  # (executor, mode="full")
    held: Callable[[], list[np.ndarray]]


def _call(check: Callable[..., gradcheck.CheckResult], *args: object, **keywords: object
          ) -> Callable[..., gradcheck.CheckResult]:
    def run(executor: Executor | None, mode: str = "full") -> gradcheck.CheckResult:
        return check(*args, mode=mode, executor=executor, **keywords)
    return run


def _function_tree(rng: np.random.Generator, wrong: bool) -> Case:
    x, p = rng.standard_normal((5, 3)), {"a": rng.standard_normal(3)}
    vjp = shipped.two_outputs_wrong_vjp if wrong else shipped.two_outputs_vjp
    return Case(_call(gradcheck.check_function, shipped.two_outputs, x, p, vjp=vjp),
                lambda: [x, p["a"]])


def _function_both(rng: np.random.Generator, wrong: bool) -> Case:
    x, p = rng.standard_normal((4, 2)), {"a": rng.standard_normal(2)}
    vjp = shipped.two_outputs_wrong_vjp if wrong else shipped.two_outputs_vjp
    return Case(_call(gradcheck.check_function, shipped.two_outputs, x, p, vjp=vjp,
                      jvp=shipped.two_outputs_jvp), lambda: [x, p["a"]])


def _function_batched(rng: np.random.Generator, wrong: bool) -> Case:
    x = rng.standard_normal((6, 8))

    def vjp(g: np.ndarray, z: np.ndarray) -> np.ndarray:  # a closure: cloudpickle ships it
        return shipped.batched_square_vjp(g, z) * (1.01 if wrong else 1.0)
    return Case(_call(gradcheck.check_function, shipped.batched_square, x, vjp=vjp),
                lambda: [x])


def _function_complex(rng: np.random.Generator, wrong: bool) -> Case:
    z = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))

    def vjp(g: np.ndarray, w: np.ndarray) -> np.ndarray:
        return shipped.abs_squared_vjp(g, w) * (1.01 if wrong else 1.0)
    return Case(_call(gradcheck.check_function, shipped.abs_squared, z, vjp=vjp), lambda: [z])


def _pair(rng: np.random.Generator, wrong: bool) -> Case:
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    backward = shipped.affine_wrong_backward if wrong else shipped.affine_backward
    return Case(_call(gradcheck.check_pair, shipped.affine_forward, backward, x, w, b, 1.5),
                lambda: [x, w, b])


def _object(rng: np.random.Generator, wrong: bool) -> Case:
    x = rng.standard_normal((4, 3))
    layer = shipped.LazyScale(bug=1.01 if wrong else 1.0)  # its parameter: made by forward
    return Case(_call(gradcheck.check_object, layer, x, params="parameters",
                      grads="gradients"), lambda: [x, *layer.parameters.values()])


def _model(rng: np.random.Generator, wrong: bool) -> Case:
    first = (shipped.WrongWeightGradient if wrong else Dense)(3, 4, seed=int(rng.integers(99)))
    model = Sequential([first, Activation("tanh"), Dense(4, 2, seed=1)])
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    return Case(_call(gradcheck.check_model, model, Loss("mse"), x, y),
                lambda: [x, y, *model.params.values()])


def _loss(rng: np.random.Generator, wrong: bool) -> Case:
    quadratic = shipped.Quadratic(bug=1.01 if wrong else 1.0)
    quadratic.params["b"] += rng.standard_normal(2)
    return Case(_call(gradcheck.check_loss, quadratic.loss, quadratic.grads, quadratic.params),
                lambda: list(quadratic.params.values()))


def _grad(rng: np.random.Generator, wrong: bool) -> Case:
    x = rng.standard_normal((3, 4))
    grad = shipped.cube_wrong_grad if wrong else shipped.cube_grad
    return Case(_call(gradcheck.check_grad, shipped.cube_sum, grad, x), lambda: [x])


def _hvp(rng: np.random.Generator, wrong: bool) -> Case:
    x = rng.standard_normal(5)
    hvp = shipped.cube_wrong_hvp if wrong else shipped.cube_hvp
    return Case(_call(gradcheck.check_hvp, shipped.cube_grad, hvp, x), lambda: [x])


CASES: dict[str, Callable[[np.random.Generator, bool], Case]] = {
    "grad": _grad,
    "hvp": _hvp,
    "function: a tree in, two outputs": _function_tree,
    "function: vjp and jvp": _function_both,
    "function: batched (structured)": _function_batched,
    "function: complex input": _function_complex,
    "pair": _pair,
    "object: lazy parameters, cached input": _object,
    "model": _model,
    "loss": _loss,
}


def _comparable(result: gradcheck.CheckResult) -> dict:
    """``to_dict()`` without the time, the executor's name and the evaluations (the executor
    adds its cross-check of the first entry per target)."""
    d = result.to_dict()
    d.pop("seconds")
    d.pop("evaluations")
    d["options"] = {k: v for k, v in d["options"].items() if k != "executor"}
    return d


def _serial_and_pooled(name: str, seed: int, wrong: bool, executor: Executor
                       ) -> tuple[gradcheck.CheckResult, gradcheck.CheckResult]:
    """Both runs on the same objects; the user's arrays checked bit for bit after each."""
    case = CASES[name](np.random.default_rng(seed), wrong)
    initial = [a.copy() for a in case.held()]
    serial = case.run(None)
    before = [a.copy() for a in case.held()]  # lazy parameters exist from the first run on
    pooled = case.run(executor)
    after = case.held()
    assert len(after) == len(before) >= len(initial)
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes()
               for a, b in zip([*initial, *before], [*after[:len(initial)], *after],
                               strict=True))
    assert pooled.options["executor"] == type(executor).__name__
    assert "executor" not in serial.options
    assert _comparable(pooled) == _comparable(serial)
    for s, p in zip(serial.evidence.tensors, pooled.evidence.tensors, strict=True):
        assert np.array_equal(s.numeric, p.numeric, equal_nan=True)
    return serial, pooled


@pytest.fixture(scope="module")
def threads():
    with ThreadPoolExecutor(2) as pool:
        yield pool


@pytest.fixture(scope="module")
def processes():
    """Spawned workers: forking a test process that holds JAX's or PyTorch's threads may
    hang. What they unpickle by reference lives in ``support.shipped`` (importable)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CASES)), seed=st.integers(0, 10_000), wrong=st.booleans())
def test_a_thread_pool_gives_the_serial_result(threads, name, seed, wrong):
    serial, _ = _serial_and_pooled(name, seed, wrong, threads)
    assert (serial.verdict == "wrong") == wrong


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_process_pool_gives_the_serial_result(processes, name):
    serial, _ = _serial_and_pooled(name, 3, False, processes)
    assert serial.verdict == "ok"


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_gradient_is_caught_through_a_process_pool(processes, name):
    _, pooled = _serial_and_pooled(name, 4, True, processes)
    assert pooled.verdict == "wrong" and not pooled.ok


def test_the_batched_function_is_differenced_in_structured_full_mode_on_the_pool(threads):
    _, pooled = _serial_and_pooled("function: batched (structured)", 0, False, threads)
    assert pooled.options["structure"] == "samples"


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_mode_with_an_executor_runs_serially_and_says_so(threads, name):
    fast = CASES[name](np.random.default_rng(0), False).run(threads, mode="fast")
    assert "executor" not in fast.options and fast.mode == "fast"
    assert any(note.startswith("executor=ThreadPoolExecutor: fast mode runs serially")
               for note in fast.notes)


def test_complex_step_with_an_executor_runs_serially_and_says_so(threads):
    result = gradcheck.check_jacobian(np.sin, np.linspace(0.1, 1.0, 4), vjp=lambda x, v: v *
                                      np.cos(x), method="complex", executor=threads)
    assert result.ok and any("method='complex' runs serially" in n for n in result.notes)


@pytest.mark.parametrize("check", ["check_grad", "check_hvp", "check_jacobian",
                                   "check_layer", "check_function", "check_pair",
                                   "check_object", "check_loss", "check_model"])
def test_every_covered_check_documents_the_executor(check):
    assert "\n    executor : " in getattr(gradcheck, check).__doc__


def test_a_function_that_cannot_be_pickled_is_refused_by_name(threads, monkeypatch):
    monkeypatch.setattr(shipping, "dumps_for_workers", lambda: pickle.dumps)  # no cloudpickle

    def local_square(z):
        return z ** 2

    with pytest.raises(gradcheck.CheckInputError,
                       match=r"executor= ships f \(local_square\).*cannot be pickled"):
        gradcheck.check_function(local_square, np.ones((3, 2)), vjp=lambda g, z: 2 * z * g,
                                 mode="full", executor=threads)


def test_an_object_holding_a_lock_is_refused_with_what_to_do(threads):
    import threading

    layer = shipped.LazyScale()
    layer.lock = threading.Lock()  # cloudpickle cannot pickle a lock either
    with pytest.raises(gradcheck.CheckInputError, match=r"cannot be pickled.*executor=None"):
        gradcheck.check_object(layer, np.ones((2, 3)), params="parameters", grads="gradients",
                               mode="full", executor=threads)


def test_something_that_is_not_an_executor_is_refused_by_every_covered_check():
    with pytest.raises(gradcheck.CheckTypeError, match="executor="):
        gradcheck.check_function(np.sin, np.ones(2), vjp=lambda g, x: g * np.cos(x),
                                 executor=2)


@pytest.mark.parametrize("wrong", [False, True])
def test_a_local_dask_cluster_gives_the_serial_result(wrong):
    distributed = pytest.importorskip("distributed")  # pip install 'gradcheck[dask]'
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for name in ("function: a tree in, two outputs", "object: lazy parameters, cached input"):
            serial, _ = _serial_and_pooled(name, 5, wrong, client.get_executor())
            assert (serial.verdict == "wrong") == wrong
