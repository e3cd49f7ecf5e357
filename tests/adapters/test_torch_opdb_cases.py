"""The op_db float32 cases of issue 15, each with a deliberately wrong gradient beside it.

* ``prod`` of 125 entries in float32: its gradient (1e-55) lies below float32's smallest
  normal, so the float32 backward returns 0: unresolved (inconclusive), never wrong; a
  gradient wrong above that level is still caught.
* ``tan`` 1.6e-4 from its pole: an entry error of 1e-3 hid under the truncation of the
  smallest step float32 storage allowed; steps may now go lower where φ runs in float64.
* a label input compared with ``==`` (``hinge_embedding_loss``): φ jumps along it, and
  the joint noise probe lent that scatter to the other input, hiding a 1e-3 error there.
* ``logcumsumexp`` of float32 inputs of 1e4: the float32 backward is itself off by 2e-3
  (``x − out`` rounds at 1e-3): unresolved, not wrong; a 1 % error or a flipped sign is
  still wrong.
* ``normal`` under its own saved seed (op_db's ``wrapper_set_seed``): a sampler whose
  gradient is exactly 0 by definition: inconclusive, said so; a random function with a
  wrong non-zero backward stays wrong.
* non-finite inputs (``_safe_softmax`` on -inf) and outputs (``__rpow__`` of a negative
  base: NaN, which read as nondeterminism): refused with a named NonFiniteError.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from gradcheck.adapters.framework_bridge import ArrayInput, run_arrays  # noqa: E402
from gradcheck.engine.errors import NonFiniteError  # noqa: E402
from support.torch_functions import rewired  # noqa: E402

F = torch.nn.functional
TINY32 = float(np.finfo(np.float32).tiny)


def planted(fn, scale_entry=None, scale_all=None, flip=None):
    """``fn`` with its first input's gradient changed: entry ``scale_entry[0]`` times
    ``scale_entry[1]``, the whole gradient times ``scale_all``, or entry ``flip`` negated."""

    def change(first):
        if scale_entry is not None:
            first.view(-1)[scale_entry[0]] *= scale_entry[1]
        if scale_all is not None:
            first = first * scale_all
        if flip is not None:
            first.view(-1)[flip] *= -1
        return first

    return rewired(fn, first=change)


# ------------------------------------------------------------------ underflow (engine)
def _tiny_problem(scale, analytic_of):
    """φ = scale · Σ w_i sin(x_i) over float32-representable x, checked as a float32
    gradient through a float64 φ (the torch adapter's promoted evaluation)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 6).astype(np.float32).astype(np.float64)
    w = rng.uniform(0.5, 2.0, 6)
    true = scale * w * np.cos(x)
    analytic = analytic_of(true).astype(np.float32).astype(np.float64)

    def phi():
        return float(scale * np.sum(w * np.sin(x)))

    inputs = [ArrayInput("x", x, analytic, storage=np.dtype(np.float32),
                         grad_dtype=np.dtype(np.float32))]
    return run_arrays("test", "tiny", "tiny", phi, inputs, seen=np.array([phi()]),
                      declared=np.dtype(np.float64), noise=abs(phi()), options={})


@settings(max_examples=15, deadline=None)
@given(exponent=st.floats(-70.0, -39.5))
def test_a_correct_float32_gradient_below_tiny_is_not_wrong(exponent):
    # the float32 gradient of a function this small is 0 or subnormal: it cannot be judged
    result = _tiny_problem(10.0 ** exponent, lambda g: g)
    assert result.verdict != "wrong", str(result)


@settings(max_examples=15, deadline=None)
@given(exponent=st.floats(-30.0, 0.0), error=st.floats(0.02, 0.5))
def test_a_wrong_float32_gradient_above_rounding_is_still_caught(exponent, error):
    result = _tiny_problem(10.0 ** exponent, lambda g: g * np.r_[1 + error, np.ones(5)])
    assert result.verdict == "wrong", str(result)


def test_a_gradient_of_zero_where_differences_see_a_normal_value_is_wrong():
    result = _tiny_problem(1e-30, lambda g: 0 * g)
    assert result.verdict == "wrong", str(result)


def _prod_input():
    gen = torch.Generator().manual_seed(0)
    return (0.1 + 0.5 * torch.rand(5, 5, 5, generator=gen)).requires_grad_()


def test_float32_prod_below_tiny_is_unresolved_and_says_why():
    result = gt.check(torch.prod, _prod_input())
    assert result.verdict == "inconclusive", str(result)
    assert result.n_unresolved == 125
    assert any("smallest normal" in note for note in result.notes)


def test_float32_prod_with_a_gradient_far_above_its_value_is_wrong():
    x = _prod_input()

    class Inflated(torch.autograd.Function):  # claims a gradient of 1e-3: 1e52 too large
        @staticmethod
        def forward(ctx, t):
            return torch.prod(t)

        @staticmethod
        def backward(ctx, gy):
            return torch.full((5, 5, 5), 1e-3) * gy

    assert gt.check(Inflated.apply, x).verdict == "wrong"


# ------------------------------------------------------------------ smaller steps
def _tan_input():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(20, generator=gen) - 0.5
    x[7] = float(np.float32(math.pi / 2 - 1.58e-4))  # tan' there ≈ 4e7
    return x.requires_grad_()


def test_tan_near_its_pole_passes_when_right():
    assert gt.check(torch.tan, _tan_input()).verdict == "ok"


def test_tan_near_its_pole_catches_an_entry_error_of_1e3():
    result = gt.check(planted(torch.tan, scale_entry=(7, 1 + 1e-3)), _tan_input())
    assert result.verdict == "wrong", str(result)
    assert result.tensors[0].worst_index == (7,)


# ------------------------------------------------------------------ a jumping label
def _hinge_inputs():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, generator=gen).requires_grad_()
    label = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0], requires_grad=True)
    return x, label


def test_hinge_loss_with_a_label_input_passes_when_right():
    assert gt.check(F.hinge_embedding_loss, *_hinge_inputs()).verdict == "ok"


@pytest.mark.parametrize("entry", [0, 1, 3])  # label 1: gradient ±1/5 (4 sits at 0)
def test_a_jumping_label_does_not_hide_an_entry_error_in_the_other_input(entry):
    x, label = _hinge_inputs()
    wrong = planted(F.hinge_embedding_loss, scale_entry=(entry, 1 + 1e-3))
    result = gt.check(wrong, x, label)
    assert result.verdict == "wrong", str(result)
    assert result.tensors[0].n_wrong == 1 and result.tensors[1].n_wrong == 0


# ------------------------------------------------------------------ input-scale rounding
def _large_input():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=gen) * 3
    x[:, 1] = 1e4 + torch.randn(4, generator=gen)
    return x.requires_grad_()


def _logcumsumexp(t):
    return torch.logcumsumexp(t, 1)


def test_float32_logcumsumexp_of_1e4_is_not_called_wrong():
    # its float32 backward is itself off by 1e-3 (x − out rounds at ulp(1e4))
    assert gt.check(_logcumsumexp, _large_input()).verdict != "wrong"


@pytest.mark.parametrize("bug", [{"scale_all": 1.05}, {"flip": 7}])
def test_float32_logcumsumexp_of_1e4_still_catches_real_errors(bug):
    result = gt.check(planted(_logcumsumexp, **bug), _large_input())
    assert result.verdict == "wrong", str(result)


# ------------------------------------------------------------------ samplers
def _seeded_normal(mean, std):
    """What op_db's wrapper does (``freeze_rng_state``, which needs expecttest): seed,
    draw, and put the generator's state back, so no draw is seen from outside."""
    state = torch.get_rng_state()
    try:
        torch.manual_seed(42)
        return torch.normal(mean, std)
    finally:
        torch.set_rng_state(state)


def test_a_sampler_under_its_own_seed_is_inconclusive_not_wrong():
    mean, std = torch.tensor(0.3, requires_grad=True), torch.tensor(1.2, requires_grad=True)
    result = gt.check(_seeded_normal, mean, std)
    assert result.verdict == "inconclusive", str(result)
    assert any("draws random numbers" in note for note in result.notes)


def test_a_random_function_with_a_wrong_backward_stays_wrong():
    x = torch.randn(6, generator=torch.Generator().manual_seed(4)).requires_grad_()

    def dropped(t):
        return F.dropout(torch.sin(t), p=0.3, training=True)

    result = gt.check(planted(dropped, scale_all=1.05), x)
    assert result.verdict == "wrong", str(result)


# ------------------------------------------------------------------ named refusals
def test_an_infinite_input_entry_is_refused_by_name():
    x = torch.tensor([[1.0, -math.inf, 0.5], [2.0, 0.1, -1.0]], requires_grad=True)
    with pytest.raises(NonFiniteError, match=r"arg0 holds -inf at index \(0, 1\)"):
        gt.check(lambda t: torch.softmax(t, 1), x)
    assert x.grad is None and math.isinf(float(x[0, 1]))


def test_a_nan_output_is_refused_not_called_nondeterministic():
    base = torch.tensor(-1.7658, requires_grad=True)
    exponent = torch.tensor(-8.4784, requires_grad=True)
    with pytest.raises(NonFiniteError, match="not finite at the point"):
        gt.check(torch.pow, base, exponent)


# ------------------------------------------------------------------ small adapter cases
def test_a_zero_tensor_gradient_is_read():
    x = torch.randn(5, dtype=torch.float64).requires_grad_()
    assert gt.check(torch.sgn, x).verdict == "ok"


def test_cfloat_is_widened_and_an_entry_error_of_1e3_is_caught():
    x = torch.tensor(-0.589, requires_grad=True)

    def to_complex(t):
        return t.cfloat() * (1.5 - 0.5j)

    assert gt.check(to_complex, x).verdict == "ok"
    assert gt.check(planted(to_complex, scale_entry=(0, 1 + 1e-3)), x).verdict == "wrong"


@pytest.mark.parametrize("cast", ["float", "cfloat"])
def test_a_float64_input_cast_down_by_the_function_is_widened(cast):
    # φ of x.float() was float32: its rounding hid an entry error of 1e-3 in float64
    x = torch.tensor([0.37, -1.21, 2.5], dtype=torch.float64, requires_grad=True)

    def cast_down(t):
        return getattr(t, cast)() * 1.5

    right = gt.check(cast_down, x)
    assert right.verdict == "ok", str(right)
    assert right.options["precision"] == "float64"
    wrong = gt.check(planted(cast_down, scale_entry=(1, 1 + 1e-3)), x)
    assert wrong.verdict == "wrong", str(wrong)
    assert wrong.tensors[0].worst_index == (1,)
