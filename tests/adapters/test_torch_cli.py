"""``gradcheck check FILE.py:function`` runs a torch check function of the user's."""

import pytest

pytest.importorskip("torch")

from gradcheck.ways_in.cli import main

SOURCE = '''
import torch
import gradcheck.torch as gt


class Off(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        return g * 1.01  # wrong: cos(x) expected


def check_sin(**options):
    return gt.check(torch.sin, torch.randn(4, requires_grad=True), **options)


def check_off(**options):
    return gt.check(Off.apply, torch.randn(4, requires_grad=True), **options)
'''


def test_cli_runs_torch_check_functions(tmp_path, capsys):
    path = tmp_path / "torch_checks.py"
    path.write_text(SOURCE)
    assert main(["check", f"{path}:check_sin", "--seed", "3"]) == 0
    assert "torch.check(sin)" in capsys.readouterr().out
    assert main(["check", f"{path}:check_off"]) != 0
