"""The plugin at start-up (the report path) and under Hypothesis (the fixture-free checker)."""

from __future__ import annotations

import json
import os

import pytest

TEST_FILE = """
def test_nothing():
    pass
"""


@pytest.mark.parametrize("kind", ["directory", "missing folder", "fifo", "wrong suffix"])
def test_a_bad_report_path_is_a_usage_error_before_any_test(pytester, kind):
    pytester.makepyfile(test_it=TEST_FILE)
    path = {"directory": "x.json", "missing folder": "nope/r.json", "fifo": "pipe.md",
            "wrong suffix": "r.txt"}[kind]
    if kind == "directory":
        (pytester.path / "x.json").mkdir()
    elif kind == "fifo":
        os.mkfifo(pytester.path / "pipe.md")
    result = pytester.runpytest(f"--gradcheck-report={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()  # refused at start-up, nothing ran
    result.stderr.fnmatch_lines([f"*--gradcheck-report={path}*"])
    assert not (pytester.path / "nope").exists()


def test_the_report_lands_where_pytest_started_even_after_chdir(pytester):
    pytester.makepyfile(test_it="""
        import os
        import numpy as np
        from gradcheck.ways_in.pytest_plugin import checker

        def test_moves(tmp_path):
            os.chdir(tmp_path)
            checker().grad(lambda x: float(np.sum(x ** 2)), lambda x: 2 * x, np.ones(3))
    """)
    result = pytester.runpytest("--gradcheck-report=r.json", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "r.json").read_text())["summary"]["checks"] == 1


GIVEN = """
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from gradcheck.ways_in.pytest_plugin import checker

@settings(max_examples=5, database=None)
@given(x=arrays(np.float64, 3, elements=st.floats(-2, 2)))
def test_right(x):
    checker().grad(lambda z: float(np.sum(np.tanh(z))), lambda z: 1 - np.tanh(z) ** 2, x)

@settings(max_examples=5, database=None)
@given(x=arrays(np.float64, 3, elements=st.floats(-2, 2)))
def test_wrong(x):
    checker().grad(lambda z: float(np.sum(np.tanh(z))), lambda z: 2 - np.tanh(z) ** 2, x)
"""


def test_checker_inside_given_shows_the_table_and_counts_in_the_summary(pytester):
    pytester.makepyfile(test_it=GIVEN)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "FailedHealthCheck" not in out and "function_scoped_fixture" not in out
    assert "GradientMismatch" in out and "check_grad(" in out  # the table, not a repr
    summary = out[out.index("= gradcheck ="):]
    checks = int(summary.split("gradient check")[0].split()[-1])
    assert checks >= 6  # every example of both tests, the shrinking included


def test_checker_outside_a_test_says_what_to_use():
    from gradcheck.ways_in import pytest_plugin
    saved = list(pytest_plugin._RUNNING)
    pytest_plugin._RUNNING.clear()
    try:
        with pytest.raises(RuntimeError, match="assert_grad"):
            pytest_plugin.checker()
    finally:
        pytest_plugin._RUNNING.extend(saved)


@pytest.mark.parametrize("keyword", ["seed=True", "rtol=False", "seed=-1"])
def test_a_marker_with_a_bool_or_negative_number_is_an_error(pytester, keyword):
    pytester.makepyfile(test_it=f"""
        import pytest

        @pytest.mark.gradcheck({keyword})
        def test_marked(gradcheck):
            pass
    """)
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*marker keyword {keyword.split('=')[0]}*invalid*"])
