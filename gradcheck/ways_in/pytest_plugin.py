"""The gradcheck pytest plugin (registered through the ``pytest11`` entry point).

What it adds to a test session:

- the ``gradcheck`` fixture: a :class:`GradChecker` whose ``.grad``, ``.jacobian``,
  ``.layer``, ``.model``, ``.hvp``, ``.function``, ``.pair``, ``.loss``, ``.object``,
  ``.torch`` and ``.jax`` (PyTorch / JAX callables; the framework imported on use)
  run a check and raise
  :class:`gradcheck.GradientMismatch` (an ``AssertionError`` whose message is the compact
  result table and the diagnosis) when the gradients disagree;
- an option ``--gradcheck-<name>`` and an ini key ``gradcheck_<name>`` for every shared
  option of the checks (``mode``, ``rtol``, ``atol``, ``eps``, ``method``, ``seed``,
  ``directions``, ``allow_unresolved``; made from their one declaration in
  :mod:`gradcheck.engine.options`), pytest's own convention, as ``--log-level`` /
  ``log_level``; precedence: marker > command line > ini > the checker's defaults;
- the marker ``@pytest.mark.gradcheck(mode=..., rtol=..., seed=..., ...)`` with the same
  keywords;
- a terminal summary section (checks run, failed, worst error, entries at kinks) and
  ``--gradcheck-report=PATH`` (``.json`` or ``.md``) covering every check of the session,
  also under pytest-xdist: each check's record travels to the controller in the test
  report's ``user_properties``;
- ``--gradcheck-workers=N`` (ini ``gradcheck_workers``): full mode's evaluations of the
  checks whose signature takes ``executor=`` (every NumPy check: ``.grad``, ``.hvp``,
  ``.layer``, ``.jacobian``, ``.function``, ``.pair``, ``.object``, ``.loss``,
  ``.model``; not ``.torch``, ``.jax``) spread over one process pool of N workers per test process (results
  identical to the serial run);
- ``--gradcheck-layers=pkg.module``: one generated test per layer class in that module
  that defines a ``gradcheck_example()`` classmethod returning ``(layer, x)``;
- :func:`checker`, the fixture-free twin of the fixture for Hypothesis ``@given`` tests
  (a function-scoped fixture there trips Hypothesis' health check): the same methods,
  options and markers, recorded into the running test.

This module stays cheap to import: it needs only pytest, the option table
(``gradcheck.engine.options``), the example contract (``gradcheck.ways_in.examples``) and
``gradcheck.results.session_report``, all standard library only; the checker is looked up on the first check, and nothing here imports
SymPy, ``gradcheck.models`` or ``rich``. ``benchmarks/bench_plugin_startup.py`` measures
what the plugin adds to a session.

>>> def test_dense(gradcheck):                       # doctest: +SKIP
...     gradcheck.layer(Dense(4, 3), np.ones((2, 4)))
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gradcheck.engine.options import OPTION_NAMES, Options, option_help, parse_text
from gradcheck.results.serialize import terminal_text
from gradcheck.results.session_report import SessionReport, check_report_path, record_from_result
from gradcheck.ways_in.examples import has_example, layer_example

if TYPE_CHECKING:
    from gradcheck.results.result import CheckResult

__all__ = ["GradChecker", "LayerExampleItem", "checker"]

#: The plugin exposes every shared option (declared once by ``gradcheck.engine.options``):
#: command line ``--gradcheck-<name>``, ini key ``gradcheck_<name>``, marker keyword ``<name>``.
OPTIONS = OPTION_NAMES
MARKER = "gradcheck"
PROPERTY = "gradcheck"  # user_properties key of a check record (a JSON string)
REPORT_OPTION = "--gradcheck-report"
LAYERS_OPTION = "--gradcheck-layers"
WORKERS_OPTION = "--gradcheck-workers"


@dataclass
class _SessionState:
    options: dict[str, Any]
    report: SessionReport = field(default_factory=SessionReport)
    workers: int | None = None
    pool: Any = None  # the process pool of --gradcheck-workers, started on first use

    def executor(self) -> Any:
        if self.pool is None and self.workers is not None:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers)
        return self.pool


def _parse_workers(value: Any, source: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        workers = int(str(value))
    except ValueError:
        workers = 0
    if workers < 1:
        raise pytest.UsageError(f"gradcheck: {source}={value!r} is invalid: the number of "
                                f"worker processes must be an int >= 1")
    return workers


STATE = pytest.StashKey[_SessionState]()


def _flag(name: str) -> str:
    return "--gradcheck-" + name.replace("_", "-")


def _parse(name: str, value: Any, source: str) -> Any:
    """Convert one option value (text from the command line or ini, or a marker's Python
    value); a ``pytest.UsageError`` names its source (option, ini key, marker)."""
    try:
        if isinstance(value, str):
            return parse_text(name, value)
        Options(**{name: value})  # the declaration validates a Python value
        return value
    except (TypeError, ValueError) as exc:  # CheckTypeError, CheckInputError among them
        raise pytest.UsageError(f"gradcheck: {source}={value!r} is invalid: {exc}") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checking (gradcheck)")
    for name in OPTIONS:
        group.addoption(_flag(name), dest=f"gradcheck_{name}", default=None,
                        metavar=name.upper(), help=option_help(name))
        parser.addini(f"gradcheck_{name}", f"gradcheck: {option_help(name)}", default=None)
    group.addoption(REPORT_OPTION, dest="gradcheck_report", default=None, metavar="PATH",
                    help="write every check of the session to PATH (.json or .md)")
    group.addoption(WORKERS_OPTION, dest="gradcheck_workers", default=None, metavar="N",
                    help="spread full mode's evaluations over N worker processes (checks "
                    "that accept executor=)")
    parser.addini("gradcheck_workers", "gradcheck: worker processes for full mode",
                  default=None)
    group.addoption(LAYERS_OPTION, dest="gradcheck_layers", action="append", default=[],
                    metavar="MODULE", help="generate a gradient test for each layer class "
                    "in MODULE that has a gradcheck_example() classmethod (repeatable)")
    parser.addini("gradcheck_layers", "gradcheck: modules whose layers get generated tests",
                  type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}({', '.join(f'{name}=None' for name in OPTIONS)}): override "
        "the gradcheck fixture's options for this test")
    options: dict[str, Any] = {}
    for name in OPTIONS:
        ini = config.getini(f"gradcheck_{name}")
        if ini not in (None, ""):
            options[name] = _parse(name, ini, f"ini key gradcheck_{name}")
        cli = config.getoption(f"gradcheck_{name}")
        if cli is not None:
            options[name] = _parse(name, cli, _flag(name))
    report = config.getoption("gradcheck_report")
    if report:  # at start-up, as `report -o` does: not after the whole session ran
        try:
            check_report_path(report)
        except ValueError as exc:
            raise pytest.UsageError(f"{REPORT_OPTION}={report}: {exc}") from None
    workers = _parse_workers(config.getini("gradcheck_workers"), "ini key gradcheck_workers")
    cli_workers = config.getoption("gradcheck_workers")
    if cli_workers is not None:
        workers = _parse_workers(cli_workers, WORKERS_OPTION)
    config.stash[STATE] = _SessionState(options=options, workers=workers)
    config.pluginmanager.register(_Reporter(config), "gradcheck-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.pool is not None:
        state.pool.shutdown()
        state.pool = None


def pytest_report_header(config: pytest.Config) -> str:
    """The options in force: mode and seed always, the others where the session set them."""
    options = {"mode": "auto", "seed": 0, **config.stash[STATE].options}
    workers = config.stash[STATE].workers
    return "gradcheck: " + ", ".join(f"{name}={options[name]}" for name in OPTIONS
                                     if name in options) + (
        f", workers={workers}" if workers is not None else "")


# ---- the fixture ------------------------------------------------------------------------

class GradChecker:
    """The ``gradcheck`` fixture: asserting checks with the session's options.

    Each method runs the matching ``gradcheck.check_*`` with the merged options (keyword
    arguments given here win), records the result for the session summary and report,
    returns it when the gradients agree and raises ``GradientMismatch`` otherwise.

    >>> def test_square(gradcheck):                   # doctest: +SKIP
    ...     gradcheck.grad(lambda x: (x**2).sum(), lambda x: 2 * x, np.arange(3.0))
    """

    def __init__(self, options: dict[str, Any], record: Callable[[Any], None],
                 executor: Callable[[], Any] | None = None) -> None:
        self.options = dict(options)
        self._record = record
        self._executor = executor  # the session's pool (--gradcheck-workers), if any

    def _run(self, check_name: str, *args: Any, **opts: Any) -> CheckResult:
        __tracebackhide__ = True
        import gradcheck  # the public API; not imported at module level (see docstring)

        check = getattr(gradcheck, check_name)
        merged = {**self.options, **opts}
        if (self._executor is not None and "executor" not in merged
                and "executor" in inspect.signature(check).parameters):
            merged["executor"] = self._executor()
        result = check(*args, **merged)
        self._record(result)
        if not result.ok:
            raise gradcheck.GradientMismatch(result)
        return result

    def grad(self, f: Callable, grad: Callable, x: Any, **opts: Any) -> CheckResult:
        """Assert ``grad(x)`` is the gradient of the scalar ``f`` at ``x``."""
        __tracebackhide__ = True
        return self._run("check_grad", f, grad, x, **opts)

    def jacobian(self, f: Callable, x: Any, **opts: Any) -> CheckResult:
        """Assert ``vjp=`` or ``jac=`` (keyword) matches the array-valued ``f`` at ``x``."""
        __tracebackhide__ = True
        return self._run("check_jacobian", f, x, **opts)

    def layer(self, layer: Any, x: Any, **opts: Any) -> CheckResult:
        """Assert a layer's input gradient and every parameter gradient at ``x``."""
        __tracebackhide__ = True
        return self._run("check_layer", layer, x, **opts)

    def model(self, model: Any, loss: Any, x: Any, y: Any, **opts: Any) -> CheckResult:
        """Assert every parameter gradient of ``model`` under ``loss`` at ``(x, y)``."""
        __tracebackhide__ = True
        return self._run("check_model", model, loss, x, y, **opts)

    def hvp(self, grad: Callable, hvp: Callable, x: Any, **opts: Any) -> CheckResult:
        """Assert a Hessian-vector product against differences of ``grad``."""
        __tracebackhide__ = True
        return self._run("check_hvp", grad, hvp, x, **opts)

    def function(self, f: Callable, *args: Any, **opts: Any) -> CheckResult:
        """Assert ``vjp=`` and/or ``jvp=`` of ``f(*args)`` (arrays or trees of arrays)."""
        __tracebackhide__ = True
        return self._run("check_function", f, *args, **opts)

    def pair(self, forward: Callable, backward: Callable, *args: Any,
             **opts: Any) -> CheckResult:
        """Assert ``backward(*upstream, cache)`` against ``forward(*args) -> (*outs, cache)``."""
        __tracebackhide__ = True
        return self._run("check_pair", forward, backward, *args, **opts)

    def loss(self, loss: Callable, grads: Callable | None = None, params: Any = None,
             **opts: Any) -> CheckResult:
        """Assert ``grads()`` (or ``loss()[1]``) against differences of ``loss()``."""
        __tracebackhide__ = True
        return self._run("check_loss", loss, grads, params, **opts)

    def object(self, layer: Any, *inputs: Any, **opts: Any) -> CheckResult:
        """Assert another library's layer object (renamed dicts, lazy params, tuples)."""
        __tracebackhide__ = True
        return self._run("check_object", layer, *inputs, **opts)

    def torch(self, fn: Any, *inputs: Any, **opts: Any) -> CheckResult:
        """Assert PyTorch's gradients of ``fn(*inputs)`` (an ``nn.Module``: its parameters too).

        Runs ``gradcheck.torch.check`` (``check_module`` for a module); needs torch.
        """
        __tracebackhide__ = True
        from gradcheck import torch as gt

        check = gt.check_module if callable(getattr(fn, "named_parameters", None)) else gt.check
        return self._assert(check(fn, *inputs, **{**self.options, **opts}))

    def jax(self, f: Callable, *args: Any, **opts: Any) -> CheckResult:
        """Assert JAX's derivative of ``f(*args)`` (``gradcheck.jax.check``); needs jax."""
        __tracebackhide__ = True
        from gradcheck import jax as gj

        return self._assert(gj.check(f, *args, **{**self.options, **opts}))

    def _assert(self, result: CheckResult) -> CheckResult:
        __tracebackhide__ = True
        from gradcheck import GradientMismatch

        self._record(result)
        if not result.ok:
            raise GradientMismatch(result)
        return result


def _marker_options(node: pytest.Item) -> dict[str, Any]:
    """The options of every ``gradcheck`` marker on ``node``; the closest one wins.

    A keyword given as ``None`` is not set (the marker's registered signature reads
    ``gradcheck(mode=None, ...)``): the session's option, or a farther marker's, applies.
    """
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.{MARKER} takes keyword "
                                    f"arguments only ({', '.join(OPTIONS)}), got {mark.args}")
        for name, value in mark.kwargs.items():
            if name not in OPTIONS:
                raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.{MARKER}({name}=...) is "
                                        f"unknown; use {', '.join(OPTIONS)}")
            if value is not None:
                merged[name] = _parse(name, value, f"marker keyword {name}")
    return merged


def _recorder(node: pytest.Item) -> Callable[[Any], None]:
    def record(result: Any) -> None:
        node.user_properties.append(
            (PROPERTY, json.dumps(record_from_result(result, test=node.nodeid))))
    return record


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> GradChecker:
    """A checker with the session's gradcheck options; its methods assert."""
    state = request.config.stash[STATE]
    options = {**state.options, **_marker_options(request.node)}
    return GradChecker(options, _recorder(request.node),
                       state.executor if state.workers is not None else None)


#: The test items whose setup, call or teardown is running (innermost last).
_RUNNING: list[pytest.Item] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _RUNNING.append(item)
    try:
        yield
    finally:
        _RUNNING.pop()


def checker(**options: Any) -> GradChecker:
    """The ``gradcheck`` fixture without a fixture: for tests under Hypothesis' ``@given``.

    Returns a :class:`GradChecker` with the session's options, the running test's
    ``gradcheck`` markers and ``options`` (which win); its checks count in the session
    summary and report, and a failure raises ``GradientMismatch`` showing the table and
    the diagnosis (Hypothesis then shrinks to the smallest failing example).

    >>> from hypothesis import given                  # doctest: +SKIP
    >>> @given(x=arrays(np.float64, 3, elements=floats(-2, 2)))
    ... def test_tanh(x):
    ...     checker().grad(lambda z: np.tanh(z).sum(), lambda z: 1 - np.tanh(z) ** 2, x)

    Raises
    ------
    RuntimeError
        Outside a running pytest test (use ``gradcheck.assert_grad`` & co there).
    """
    if not _RUNNING:
        raise RuntimeError("gradcheck.ways_in.pytest_plugin.checker() records into the "
                           "running pytest test; outside pytest use gradcheck.assert_grad, "
                           "assert_layer, ... (same checks, no session summary)")
    item = _RUNNING[-1]
    state = item.config.stash[STATE]
    merged = {**state.options, **_marker_options(item), **options}
    return GradChecker(merged, _recorder(item),
                       state.executor if state.workers is not None else None)


# ---- collecting records (also from xdist workers) and reporting -------------------------

class _Reporter:
    """Per-session hooks; registered by ``pytest_configure`` so each has its config."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report = config.stash[STATE].report
        self.path = config.getoption("gradcheck_report")
        # resolved now: a test that changes the working folder must not move the report
        self.target = os.path.abspath(self.path) if self.path and self.path != "-" else self.path

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The teardown report carries every record the test made; under xdist it reaches
        # the controller with its user_properties, so the controller sees every worker.
        if report.when == "teardown":
            self.report.extend(json.loads(str(value)) for key, value in report.user_properties
                               if key == PROPERTY)

    def pytest_sessionfinish(self) -> None:
        if self.path and not hasattr(self.config, "workerinput"):  # not an xdist worker
            self.report.write(self.target)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not len(self.report) and not self.path:
            return
        terminalreporter.write_sep("=", "gradcheck")
        for line in self.report.summary_lines():  # user-named labels: no escape codes
            terminalreporter.write_line(terminal_text(line))
        if self.path:
            terminalreporter.write_line(f"report written to {self.path}")


# ---- generated tests for layer classes --------------------------------------------------

class LayerExampleItem(pytest.Item):
    """A generated test: ``cls.gradcheck_example()`` -> ``(layer, x)``, then check_layer."""

    def __init__(self, *, layer_class: type, module_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cls = layer_class
        self.module_name = module_name

    def runtest(self) -> None:
        layer, x = layer_example(self.cls)
        options = {**self.config.stash[STATE].options, **_marker_options(self)}
        GradChecker(options, _recorder(self)).layer(layer, x)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        if isinstance(excinfo.value, AssertionError) and hasattr(excinfo.value, "result"):
            return f"{self.cls.__qualname__}: gradients disagree\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        try:
            source = inspect.getsourcefile(self.cls)
        except TypeError:  # a class without a source file (built in C, made by exec)
            source = None
        path = Path(source) if source else self.path
        return path, None, f"gradcheck layer {self.module_name}.{self.cls.__qualname__}"


def _example_classes(module_name: str) -> Iterator[type]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"{LAYERS_OPTION}={module_name}: cannot import it ({exc})") \
            from None
    for cls in list(vars(module).values()):  # definition order
        if inspect.isclass(cls) and cls.__module__ == module.__name__ \
                and has_example(cls):
            yield cls


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    modules = [*config.getini("gradcheck_layers"), *config.getoption("gradcheck_layers")]
    for module_name in dict.fromkeys(modules):  # keep order, drop repeats
        generated: list[pytest.Item] = []
        for cls in _example_classes(module_name):
            name = f"gradcheck[{cls.__qualname__}]"
            generated.append(LayerExampleItem.from_parent(
                session, name=name, nodeid=f"{module_name}::{name}", layer_class=cls,
                module_name=module_name))
        # report them as collected, so "collected N items" and -v listings count them
        config.hook.pytest_collectreport(report=pytest.CollectReport(
            module_name, "passed", None, [*generated]))
        items.extend(generated)
