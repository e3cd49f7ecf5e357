"""PyTorch's own float64 operators and the whole-tensor test (issue 11).

``torch.nn.functional.hardsigmoid`` in float64 has a backward off by 3e-8 relative in
every entry (its slope 1/6 rounded to float32): below the per-entry floor, caught by the
whole-tensor test and named as float32 rounding. Correct smooth float64 operators, with
reductions inside (softmax, layer norm), are not called wrong.
"""

import pytest

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402

F = torch.nn.functional
CORRECT = {
    "tanh": torch.tanh, "gelu": F.gelu, "softplus": F.softplus, "silu": F.silu,
    "mish": F.mish, "elu": F.elu, "logsigmoid": F.logsigmoid, "erf": torch.erf,
    "sigmoid": torch.sigmoid, "log_softmax": lambda t: torch.log_softmax(t, -1),
    "layer_norm": lambda t: F.layer_norm(t, (5,)),
}


def _input(seed: int):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(4, 5, generator=g, dtype=torch.float64)).requires_grad_()


@pytest.mark.parametrize("seed", [0, 1])
def test_torch_float64_hardsigmoid_is_caught_and_named(seed):
    result = gt.check(F.hardsigmoid, _input(seed), mode="full")
    assert result.verdict == "wrong", str(result)
    assert "float32-rounding" in [f.code for f in result.diagnosis]


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_torch_float64_operators_are_not_called_wrong(name):
    result = gt.check(CORRECT[name], _input(0), mode="full")
    assert result.verdict == "ok", str(result)
