"""The pytest plugin through pytester: fixture, failures, marker, options, report, xdist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

LAYERS = textwrap.dedent('''
    import numpy as np

    class Scale:
        """y = x * w per feature; ``bug`` scales the parameter gradient (1.0 = correct)."""

        def __init__(self, bug=1.0):
            self.params = {"w": np.array([1.5, -0.5, 2.0])}
            self.grads = {"w": np.zeros(3)}
            self.bug = bug

        def forward(self, x):
            self.x = np.array(x)
            return self.x * self.params["w"]

        def backward(self, grad_out):
            self.grads["w"][...] = self.bug * (grad_out * self.x).sum(axis=0)
            return grad_out * self.params["w"]

        @classmethod
        def gradcheck_example(cls):
            return cls(), np.linspace(-1.0, 1.0, 12).reshape(4, 3)

    class Buggy(Scale):
        @classmethod
        def gradcheck_example(cls):
            return cls(bug=-1.0), np.linspace(-1.0, 1.0, 12).reshape(4, 3)

    class NoExample:
        params, grads = {}, {}
''')

X = "np.linspace(-1.0, 1.0, 12).reshape(4, 3)"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mylayers=LAYERS)
    pytester.syspathinsert()
    return pytester


def test_a_passing_check_is_counted_in_the_terminal_summary(project):
    project.makepyfile(test_it=f"""
        import numpy as np
        from mylayers import Scale

        def test_layer(gradcheck):
            result = gradcheck.layer(Scale(), {X})
            assert result.ok

        def test_grad(gradcheck):
            gradcheck.grad(lambda x: float((x ** 3).sum()), lambda x: 3 * x ** 2, {X})
    """)
    result = project.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= gradcheck =*", "2 gradient checks ran, 0 failed",
                                 "worst relative error *", "0 entries skipped as not "
                                 "differentiable*"])


def test_every_fixture_method_checks_and_kinks_are_counted(project):
    project.makepyfile(test_it="""
        import numpy as np
        from gradcheck.models.dense import Activation, Dense
        from gradcheck.models.losses import Loss
        from gradcheck.models.network import Sequential

        X = np.array([[0.0, 1.0, -1.0], [0.0, 0.5, 0.0]])  # three entries on relu's kink

        def test_jacobian(gradcheck):
            gradcheck.jacobian(np.sin, X, vjp=lambda x, v: np.cos(x) * v)

        def test_model(gradcheck):
            model = Sequential([Dense(3, 2, seed=1), Activation("tanh")])
            gradcheck.model(model, Loss("mse"), X + 0.3, np.ones((2, 2)))

        def test_hvp(gradcheck):
            gradcheck.hvp(lambda x: 3 * x ** 2, lambda x, v: 6 * x * v, np.arange(1.0, 4.0))

        def test_relu_at_its_kink(gradcheck):
            gradcheck.layer(Activation("relu"), X)
    """)
    result = project.runpytest("--gradcheck-report=r.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["4 gradient checks ran, 0 failed",
                                 "3 entries skipped as not differentiable*"])
    kinds = [c["kind"] for c in json.loads((project.path / "r.json").read_text())["checks"]]
    # sorted: the inner session's order is pytest's to choose (pytest-randomly shuffles it)
    assert sorted(kinds) == ["check_hvp", "check_jacobian", "check_layer", "check_model"]


def test_a_failing_check_shows_the_table_and_diagnosis(project):
    project.makepyfile(test_it=f"""
        import numpy as np
        from mylayers import Scale

        def test_layer(gradcheck):
            gradcheck.layer(Scale(bug=-1.0), {X})
    """)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "GradientMismatch" in out and "assert False" not in out

    from mylayers import Scale

    import gradcheck
    expected = gradcheck.check_layer(Scale(bug=-1.0), np.linspace(-1.0, 1.0, 12).reshape(4, 3))
    assert expected.diagnosis  # the table and every diagnosis line, minus the timed headline
    result.stdout.re_match_lines([r"E\s+" + re.escape(line.strip())
                                  for line in str(expected).splitlines()[1:] if line.strip()])
    result.stdout.re_match_lines(["1 gradient check ran, 1 failed",
                                  re.escape(f"FAILED test_it.py::test_layer: "
                                            f"{expected.diagnosis[0]}")])


def test_the_marker_overrides_the_command_line_under_strict_markers(project):
    project.makepyfile(test_it=f"""
        import numpy as np
        import pytest
        from mylayers import Scale

        pytestmark = pytest.mark.gradcheck(rtol=1e-3)

        @pytest.mark.gradcheck(mode="fast", seed=3)
        def test_marked(gradcheck):
            assert gradcheck.options == {{"mode": "fast", "seed": 3, "rtol": 1e-3}}
            assert gradcheck.layer(Scale(), {X}).mode == "fast"
            assert gradcheck.layer(Scale(), {X}, mode="full").mode == "full"  # call wins

        def test_unmarked_function(gradcheck):
            assert gradcheck.options == {{"mode": "full", "seed": 3, "rtol": 1e-3}}
    """)
    result = project.runpytest("--strict-markers", "--gradcheck-mode=full",
                               "--gradcheck-seed=3")
    result.assert_outcomes(passed=2)


def test_a_marker_keyword_set_to_none_keeps_the_session_option(project):
    # the registered signature reads gradcheck(mode=None, rtol=None, ...): None = not set
    project.makepyfile(test_it="""
        import pytest

        @pytest.mark.gradcheck(mode=None, rtol=None, seed=7)
        def test_marked(gradcheck):
            assert gradcheck.options == {"mode": "full", "seed": 7}
    """)
    result = project.runpytest("--strict-markers", "--gradcheck-mode=full")
    result.assert_outcomes(passed=1)

def test_ini_keys_are_read_and_the_command_line_wins(project):
    project.makeini("""
        [pytest]
        gradcheck_rtol = 1e-4
        gradcheck_seed = 5
    """)
    project.makepyfile(test_it="""
        def test_options(gradcheck):
            assert gradcheck.options == {"rtol": 1e-4, "seed": 11, "atol": 1e-9}
    """)
    result = project.runpytest("--gradcheck-seed", "11", "--gradcheck-atol", "1e-9")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gradcheck: mode=auto, rtol=0.0001, atol=1e-09, seed=11"])


@pytest.mark.parametrize(("args", "message"), [
    (["--gradcheck-mode=slow"], "*--gradcheck-mode*mode must be one of auto, full, fast*"),
    (["--gradcheck-rtol=tiny"], "*--gradcheck-rtol*'tiny' is invalid*"),
    (["--gradcheck-atol=-1e-3"], "*--gradcheck-atol='-1e-3' is invalid: atol must be a finite*"),
    (["--gradcheck-seed=1.5"], "*--gradcheck-seed='1.5' is invalid*"),
    (["--gradcheck-report=out.txt"], "*--gradcheck-report=out.txt*use a .json or .md file name*"),
])
def test_bad_options_are_usage_errors(project, args, message):
    project.makepyfile(test_it="def test_nothing(): pass")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_marker_with_an_unknown_keyword_is_an_error(project):
    project.makepyfile(test_it="""
        import pytest

        @pytest.mark.gradcheck(tolerance=1e-3)
        def test_marked(gradcheck):
            pass
    """)
    result = project.runpytest()
    result.stdout.fnmatch_lines(["*gradcheck(tolerance=...) is unknown; use mode, rtol, atol,"
                                 " eps, method, seed, directions, allow_unresolved*"])
    assert result.ret != 0


@pytest.mark.parametrize("suffix", ["json", "md"])
def test_the_report_file_lists_every_check(project, suffix):
    project.makepyfile(test_it=f"""
        import numpy as np
        from mylayers import Scale

        def test_good(gradcheck):
            gradcheck.layer(Scale(), {X})

        def test_bad(gradcheck):
            gradcheck.layer(Scale(bug=2.0), {X})
    """)
    (project.path / "out").mkdir()
    result = project.runpytest(f"--gradcheck-report=out/report.{suffix}")
    result.assert_outcomes(passed=1, failed=1)
    text = (project.path / "out" / f"report.{suffix}").read_text()
    if suffix == "json":
        report = json.loads(text)
        outcomes = {c["test"]: c["ok"] for c in report["checks"]}  # in any order
        assert outcomes == {"test_it.py::test_good": True, "test_it.py::test_bad": False}
        assert report["summary"]["failed"] == 1
    else:
        assert r"test\_it.py::test\_good" in text and r"test\_it.py::test\_bad" in text
        assert "**no**" in text


def test_xdist_workers_report_every_check_to_the_controller(project):
    project.makepyfile(test_it=f"""
        import numpy as np
        import pytest
        from mylayers import Scale

        @pytest.mark.parametrize("i", range(6))
        def test_layer(gradcheck, i):
            gradcheck.layer(Scale(bug=2.0 if i == 4 else 1.0), {X} + i)
    """)
    result = project.runpytest_subprocess("-n", "2", "--gradcheck-report=report.json",
                                          "--gradcheck-layers=mylayers")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(["*8 gradient checks ran, 2 failed*"])
    report = json.loads((project.path / "report.json").read_text())
    assert sorted(c["test"] for c in report["checks"]) == sorted(
        [f"test_it.py::test_layer[{i}]" for i in range(6)]
        + ["mylayers::gradcheck[Scale]", "mylayers::gradcheck[Buggy]"])


def test_layers_option_generates_one_test_per_example_class(project):
    project.makepyfile(test_it="def test_plain(): pass")
    result = project.runpytest("--gradcheck-layers=mylayers", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*collected 3 items",
                                 "*mylayers::gradcheck[[]Scale[]] PASSED*",
                                 "*mylayers::gradcheck[[]Buggy[]] FAILED*",
                                 "*Buggy: gradients disagree*"])
    assert "NoExample" not in result.stdout.str()
    selected = project.runpytest("--gradcheck-layers=mylayers", "-k", "Scale")
    selected.assert_outcomes(passed=1, deselected=2)


def test_layers_option_with_a_missing_module_is_a_usage_error(project):
    result = project.runpytest("--gradcheck-layers=no_such_module_here")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradcheck-layers=no_such_module_here: cannot import*"])


def test_importing_the_plugin_imports_neither_sympy_nor_the_models():
    code = ("import sys, gradcheck.ways_in.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sympy' "
            "or m.startswith(('gradcheck.models', 'gradcheck.reference', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
