"""The pytest fixture's ``.torch`` / ``.jax`` and the session report show those checks."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

TESTS = '''
import jax.numpy as jnp
import torch


class Wrong(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.exp()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.exp() * 1.01


def test_torch_function(gradcheck):
    gradcheck.torch(torch.tanh, torch.randn(4, requires_grad=True))


def test_torch_module(gradcheck):
    gradcheck.torch(torch.nn.Linear(3, 2), torch.randn(5, 3))


def test_jax_function(gradcheck):
    gradcheck.jax(jnp.sin, jnp.arange(3.0))


def test_torch_wrong(gradcheck):
    gradcheck.torch(Wrong.apply, torch.randn(4, dtype=torch.float64, requires_grad=True))
'''


def test_fixture_runs_torch_and_jax_checks_and_reports_them(pytester):
    pytester.makepyfile(test_frameworks=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--gradcheck-report=out.json")
    result.assert_outcomes(passed=3, failed=1)
    records = json.loads((pytester.path / "out.json").read_text())
    checks = records["checks"] if isinstance(records, dict) else records
    kinds = sorted((c["kind"], c["ok"]) for c in checks)
    assert kinds == [("jax.check(rev)", True), ("torch.check", False), ("torch.check", True),
                     ("torch.check_module", True)]
