"""``--gradcheck-workers N`` (pytest plugin) and ``gradcheck check --workers N`` (CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradcheck.ways_in.cli import main
from tests.support.layer_files import AFFINE_SOURCE

LAYER_FILE = AFFINE_SOURCE + textwrap.dedent('''
    class Wrong(Affine):
        def __init__(self):
            super().__init__(bug=1.01)
''')


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Sessions run in a subprocess: an in-process run re-imports gradcheck's modules, whose
    functions then no longer pickle by name for the process pools of later tests."""
    pytester.makepyfile(mylayers=LAYER_FILE)
    pytester.syspathinsert()
    return pytester


def test_the_plugin_spreads_layer_checks_over_worker_processes(project):
    project.makepyfile(test_it="""
        import numpy as np
        import pytest
        from mylayers import Affine, Wrong

        X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)

        def test_layer(gradcheck):
            result = gradcheck.layer(Affine(), X, mode="full")
            assert result.options["executor"] == "ProcessPoolExecutor"

        def test_grad(gradcheck):  # check_grad takes the pool too
            result = gradcheck.grad(lambda x: float((x ** 3).sum()), lambda x: 3 * x ** 2, X,
                                    mode="full")
            assert result.options["executor"] == "ProcessPoolExecutor"

        def test_wrong(gradcheck):
            with pytest.raises(AssertionError):
                gradcheck.layer(Wrong(), X, mode="full")
    """)
    result = project.runpytest_subprocess("--gradcheck-workers=2", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["gradcheck: *, workers=2"])


def test_the_plugin_passes_the_session_pool_to_every_check_that_takes_it(project):
    project.makepyfile(test_it="""
        import numpy as np
        import pytest
        from gradcheck.models import Activation, Dense, Loss, Sequential

        X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)

        def f(x, p):
            return np.tanh(x * p["a"]), np.sum(x ** 2)

        def vjp(g, x, p, bug=1.0):
            d = g[0] * (1 - np.tanh(x * p["a"]) ** 2)
            return d * p["a"] + 2 * x * g[1], {"a": bug * np.sum(d * x, axis=0)}

        def test_function(gradcheck):
            result = gradcheck.function(f, X, {"a": np.arange(3.0)}, vjp=vjp, mode="full")
            assert result.options["executor"] == "ProcessPoolExecutor"

        def test_function_wrong(gradcheck):
            with pytest.raises(AssertionError):
                gradcheck.function(f, X, {"a": np.arange(3.0)},
                                   vjp=lambda g, x, p: vjp(g, x, p, bug=1.01), mode="full")

        def test_model(gradcheck):
            model = Sequential([Dense(3, 2), Activation("tanh")])
            result = gradcheck.model(model, Loss("mse"), X, np.zeros((5, 2)), mode="full")
            assert result.options["executor"] == "ProcessPoolExecutor"
    """)
    result = project.runpytest_subprocess("--gradcheck-workers=2", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_without_the_option_checks_are_serial(project):
    project.makepyfile(test_it="""
        import numpy as np
        from mylayers import Affine

        def test_layer(gradcheck):
            result = gradcheck.layer(Affine(), np.ones((4, 3)), mode="full")
            assert "executor" not in result.options
    """)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_worker_count_is_a_usage_error(project, value):
    project.makepyfile(test_it="def test_nothing():\n    pass\n")
    result = project.runpytest_subprocess(f"--gradcheck-workers={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradcheck-workers*invalid*"])


@pytest.fixture
def layers(tmp_path):
    path = tmp_path / "my_layers.py"
    path.write_text(LAYER_FILE)
    return path


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _run_fresh(*argv):
    """The CLI in a fresh process (its pool forks: never fork a test process that holds
    JAX's or PyTorch's threads)."""
    done = subprocess.run([sys.executable, "-m", "gradcheck", *argv], capture_output=True,
                          text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def test_cli_workers_give_the_serial_verdict(layers):
    reports = {}
    for extra in ([], ["--workers", "2"]):
        status, out, _ = _run_fresh("check", f"{layers}:Wrong", "--input-shape", "5,3",
                                    "--mode", "full", "--json", *extra)
        assert status == 1
        reports[bool(extra)] = json.loads(out)["check"]
    assert reports[True]["options"]["executor"] == "ProcessPoolExecutor"
    assert "executor" not in reports[False]["options"]
    np.testing.assert_equal(reports[True]["tensors"], reports[False]["tensors"])


def test_cli_rejects_zero_workers(capsys, layers):
    status, _, err = _run(capsys, "check", f"{layers}:Affine", "--input-shape", "5,3",
                          "--workers", "0")
    assert status == 2 and "--workers" in err
