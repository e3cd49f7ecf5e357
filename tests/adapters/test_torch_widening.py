"""float32 functions that hold float32 tensors or dtypes themselves are still differenced
in float64 (``_Float64Everywhere``), so an entry error of 1e-3 is caught in float32.

Without it the promoted float64 call fails (``F.group_norm`` with a float32 weight from a
closure: "mixed dtype") or rounds to float32 (``dtype=torch.float32``), the check falls
back to a float32 ``φ`` whose rounding hides entry errors of 1e-3 (op_db's group_norm,
instance_norm and _softmax_backward_data did).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from support.torch_functions import rewired  # noqa: E402

F = torch.nn.functional


def _closure_group_norm(seed):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(6, generator=gen, dtype=torch.float32)
    bias = torch.randn(6, generator=gen, dtype=torch.float32)

    def group_norm(x):
        return F.group_norm(x, 2, weight=weight, bias=bias, eps=0.5)

    return group_norm, (weight, bias)


def _closure_softmax_backward(seed):
    gen = torch.Generator().manual_seed(seed)
    out = torch.softmax(torch.randn(5, generator=gen, dtype=torch.float32), 0)

    def softmax_backward(g):
        return torch._softmax_backward_data(g, out, 0, torch.float32)

    return softmax_backward, (out,)


def _float_cast(seed):
    def sin_of_float(x):
        return torch.sin(x.float())  # .float() would round the float64 evaluation
    return sin_of_float, ()


CASES = {"float cast": (_float_cast, (4,)),
         "group_norm": (_closure_group_norm, (1, 6, 3)),
         "softmax_backward": (_closure_softmax_backward, (5,))}


def _planted_entry(fn, x, factor):
    """``fn`` whose backward scales the entry with the largest gradient by ``factor``."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_()
        (d,) = torch.autograd.grad(fn(leaf), leaf, torch.ones_like(fn(leaf)))
    j = int(torch.argmax(d.abs().reshape(-1)))

    def scaled(g):
        g.view(-1)[j] *= factor
        return g

    return rewired(fn, first=scaled)


@settings(max_examples=9, deadline=None)
@given(case=st.sampled_from(sorted(CASES)), seed=st.integers(0, 2 ** 16))
def test_float32_constants_held_by_fn_are_widened_and_a_1e3_entry_error_caught(case, seed):
    build, shape = CASES[case]
    fn, held = build(seed)
    before = [h.clone() for h in held]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1),
                    dtype=torch.float32, requires_grad=True)
    right = gt.check(fn, x)
    assert right.verdict == "ok", str(right)
    assert any("widened" in n for n in right.notes)
    assert right.options["precision"] == "float64"
    wrong = gt.check(_planted_entry(fn, x, 1 + 1e-3), x)
    assert wrong.verdict == "wrong", str(wrong)
    assert wrong.tensors[0].n_wrong == 1
    # nothing the function holds was changed, nor the input
    assert all(torch.equal(h, b) for h, b in zip(held, before, strict=True))
    assert x.dtype == torch.float32 and x.grad is None


def test_without_promotion_the_same_check_stays_in_float32():
    fn, _ = _closure_group_norm(0)
    x = torch.randn(1, 6, 3, dtype=torch.float32, requires_grad=True)
    result = gt.check(fn, x, promote=False)
    assert result.ok and result.options["precision"] == "float32"
    assert not any("widened" in n for n in result.notes)


def test_a_function_drawing_random_numbers_is_not_widened():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(6, generator=gen, dtype=torch.float32)

    def noisy_norm(x):
        return F.dropout(F.group_norm(x, 2, weight=weight), p=0.3, training=True)

    x = torch.randn(1, 6, 3, dtype=torch.float32, requires_grad=True)
    result = gt.check(noisy_norm, x)
    assert result.ok, str(result)
    assert not any("widened" in n for n in result.notes)
    assert result.options["precision"] == "float32"


def test_in_place_writes_into_held_float32_tensors_are_not_redirected():
    buf = torch.zeros(4, dtype=torch.float32)
    before = buf.clone()

    def through_buffer(x):
        local = buf.clone()  # the function's own float32 copy, written in place
        local.add_(x * 2)
        local[0] = x[0] ** 2
        return local * torch.ones(4, dtype=torch.float32)

    x = torch.linspace(0.2, 0.9, 4, dtype=torch.float32, requires_grad=True)
    result = gt.check(through_buffer, x)
    assert result.ok, str(result)
    assert torch.equal(buf, before)
