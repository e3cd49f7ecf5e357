"""The new checks through the pytest fixture and the session report (also under xdist)."""

from __future__ import annotations

import json

import numpy as np  # noqa: F401  (imported before pytester runs in-process: it must not be re-imported)
import pytest

SHAPES = '''
import numpy as np

def affine_forward(x, w, b):
    return x @ w + b, (x, w)

def affine_backward(dout, cache, bug=1.0):
    x, w = cache
    return dout @ w.T, x.T @ dout, bug * dout.sum(0)

class Lib:
    def __init__(self):
        self.parameters = {"w": np.array([0.5, -1.0])}
        self.gradients = {}
    def forward(self, x):
        self.x = x
        return x * self.parameters["w"]
    def backward(self, g):
        self.gradients = {"w": np.sum(g * self.x, 0)}
        return g * self.parameters["w"]

X = np.linspace(-1, 1, 6).reshape(3, 2)
W = np.array([[0.3, -0.2], [0.1, 0.4]])
B = np.array([0.05, -0.1])
'''

TESTS = '''
import numpy as np
from shapes import affine_forward, affine_backward, Lib, X, W, B

def test_function(gradcheck):
    gradcheck.function(lambda x, p: np.sin(x) * p["a"], X, {"a": W[0]},
                       vjp=lambda g, x, p: (g * np.cos(x) * p["a"],
                                            {"a": np.sum(g * np.sin(x), 0)}),
                       names=("x", "p"))

def test_pair(gradcheck):
    gradcheck.pair(affine_forward, affine_backward, X, W, B, names=("x", "w", "b"))

def test_pair_bug(gradcheck):
    gradcheck.pair(affine_forward, lambda d, c: affine_backward(d, c, 2.0), X, W, B,
                   names=("x", "w", "b"))

def test_loss(gradcheck):
    params = {"w": W.copy()}
    gradcheck.loss(lambda: float(np.sum(params["w"] ** 3)), lambda: {"w": 3 * params["w"] ** 2},
                   params)

def test_object(gradcheck):
    gradcheck.object(Lib(), X, params="parameters", grads="gradients")
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(shapes=SHAPES, test_shapes_in=TESTS)
    pytester.syspathinsert()
    return pytester


def test_fixture_methods_assert_and_the_report_records_each_kind(project):
    result = project.runpytest("--gradcheck-report=report.json")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*check_pair(affine_forward): FAILED*"])
    report = json.loads((project.path / "report.json").read_text())
    kinds = {c["test"].split("::")[1]: (c["kind"], c["ok"]) for c in report["checks"]}
    assert kinds == {"test_function": ("check_function", True),
                     "test_pair": ("check_pair", True), "test_pair_bug": ("check_pair", False),
                     "test_loss": ("check_loss", True), "test_object": ("check_object", True)}
    bad = next(c for c in report["checks"] if not c["ok"])
    assert bad["n_wrong"] > 0 and bad["worst_tensor"] == "b"


def test_under_xdist_every_record_reaches_the_controller(project):
    result = project.runpytest_subprocess("-n", "2", "--gradcheck-report=report.json")
    result.assert_outcomes(passed=4, failed=1)
    report = json.loads((project.path / "report.json").read_text())
    assert len(report["checks"]) == 5


CHECKS = SHAPES + '''
import gradcheck

def check_affine(**options):
    return gradcheck.check_pair(affine_forward, affine_backward, X, W, B, **options)

def check_bad(mode="auto"):
    return gradcheck.check_pair(affine_forward, lambda d, c: affine_backward(d, c, 2.0), X, W,
                                B, names=("x", "w", "b"), mode=mode)

def not_a_check():
    return 3
'''


@pytest.mark.parametrize(("target", "extra", "status"), [
    ("check_affine", ["--mode", "fast"], 0), ("check_bad", [], 1), ("not_a_check", [], 2),
    ("check_affine", ["--input-shape", "3,2"], 2)])
def test_gradcheck_check_runs_a_check_function(tmp_path, capsys, target, extra, status):
    from gradcheck.ways_in.cli import main

    (tmp_path / "checks.py").write_text(CHECKS)
    assert main(["check", f"{tmp_path / 'checks.py'}:{target}", *extra]) == status
    capsys.readouterr()


def test_gradcheck_check_json_of_a_check_function(tmp_path, capsys):
    from gradcheck.ways_in.cli import main

    (tmp_path / "checks.py").write_text(CHECKS)
    assert main(["check", f"{tmp_path / 'checks.py'}:check_bad", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["check"]["kind"] == "check_pair" and out["check"]["worst_tensor"] == "b"
