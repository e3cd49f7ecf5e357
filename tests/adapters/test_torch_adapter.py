"""gradcheck.torch: functions of tensors, autograd.Function, nn.Module, the drop-ins."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.torch as gt  # noqa: E402
from gradcheck.results.result import GradientMismatch  # noqa: E402

TorchGradcheckError = sys.modules["torch.autograd.gradcheck"].GradcheckError

DTYPES = [torch.float32, torch.float64]


def _scale_sin(factor=1.0, entry=None, sign_flip=False, use_sin_for_w=False, off=1e-3):
    """y = x * sin(w); backward planted with one bug (or none)."""

    class ScaleSin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * torch.sin(w)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            dx = g * torch.sin(w)
            dw = g * x * (torch.sin(w) if use_sin_for_w else torch.cos(w)) * factor
            if entry is not None:
                dw = dw.clone()
                dw.view(-1)[entry] *= 1 + off
            if sign_flip:
                dx = -dx
            return dx, dw

    return ScaleSin


def _inputs(dtype, shape=(3, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
    w = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
    return x, w


@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_function_passes_in_float32_and_float64(dtype):
    x, w = _inputs(dtype)
    result = gt.check(_scale_sin().apply, x, w, names=("x", "w"))
    assert result.ok, str(result)
    assert [t.name for t in result.tensors] == ["x", "w"]
    assert result.label == "ScaleSin.apply"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bug", [dict(factor=1.01), dict(entry=5), dict(use_sin_for_w=True)])
def test_planted_bug_in_w_is_caught_and_named(dtype, bug):
    x, w = _inputs(dtype)
    result = gt.check(_scale_sin(**bug).apply, x, w, names=("x", "w"))
    assert not result.ok
    verdict = {t.name: t.ok for t in result.tensors}
    assert verdict == {"x": True, "w": False}
    if "entry" in bug:
        assert result.tensors[1].n_wrong == 1
        assert result.tensors[1].worst_index == (1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sign_flip_is_caught_on_x(dtype):
    x, w = _inputs(dtype)
    result = gt.check(_scale_sin(sign_flip=True).apply, x, w)
    assert {t.name: t.ok for t in result.tensors} == {"arg0": False, "arg1": True}


def test_float32_in_its_own_dtype_still_catches_a_one_percent_error():
    x, w = _inputs(torch.float32)
    result = gt.check(_scale_sin(factor=1.01).apply, x, w, names=("x", "w"), promote=False)
    assert {t.name: t.ok for t in result.tensors} == {"x": True, "w": False}
    assert result.options["precision"] == "float32"
    assert gt.check(_scale_sin().apply, x, w, promote=False).ok


def test_float32_is_differenced_through_float64_and_says_so():
    x, w = _inputs(torch.float32)
    result = gt.check(_scale_sin().apply, x, w)
    assert result.ok and any("float64 evaluation" in n for n in result.notes)

    def float32_only(a, b):
        if a.dtype != torch.float32:
            raise TypeError("this kernel takes float32 only")
        return _scale_sin().apply(a, b)

    own = gt.check(float32_only, x, w)
    assert own.ok and own.options["precision"] == "float32"
    assert not any("float64 evaluation" in n for n in own.notes)


def test_users_tensors_are_unchanged():
    x, w = _inputs(torch.float64)
    w.grad = torch.full_like(w, 7.0)
    c = torch.randn(3, 4, dtype=torch.float64)  # a constant, no requires_grad
    before = [t.detach().clone() for t in (x, w, c)]
    gt.check(lambda a, b, k: a * b + k, x, w, c)
    gt.gradcheck(lambda a, b, k: a * b + k, (x, w, c))
    for t, b in zip((x, w, c), before, strict=True):
        assert torch.equal(t.detach(), b)
    assert x.requires_grad and w.requires_grad and not c.requires_grad
    assert x.grad is None
    assert torch.equal(w.grad, torch.full_like(w, 7.0))


def test_only_requires_grad_inputs_are_checked_and_wrt_overrides():
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, dtype=torch.float64)
    assert [t.name for t in gt.check(torch.mul, x, y).tensors] == ["arg0"]
    assert [t.name for t in gt.check(torch.mul, x, y, wrt="arg1").tensors] == ["arg1"]
    with pytest.raises(ValueError):
        gt.check(torch.mul, x, y, wrt="nope")


def test_tuple_outputs_kwargs_and_nested_inputs_are_named_by_path():
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    params = {"W": torch.randn(3, 2, dtype=torch.float64, requires_grad=True),
              "b": torch.randn(2, dtype=torch.float64, requires_grad=True)}
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)

    def layer(x, p, *, scale):
        h = x @ p["W"] + p["b"]
        return h * scale, torch.tanh(h).sum()

    result = gt.check(layer, x, params, kwargs={"scale": scale})
    assert result.ok, str(result)
    assert [t.name for t in result.tensors] == ["arg0", "arg1.W", "arg1.b", "scale"]


def test_integer_inputs_are_constants():
    x = torch.randn(5, dtype=torch.float32, requires_grad=True)
    idx = torch.tensor([0, 2, 2, 4])
    result = gt.check(lambda a, i: a[i] * 3, x, idx)
    assert result.ok and [t.name for t in result.tensors] == ["arg0"]


def test_module_parameters_are_named_and_module_is_unchanged():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                            torch.nn.Dropout(0.3), torch.nn.Linear(4, 2))
    m[0].weight.grad = torch.ones_like(m[0].weight)
    state = {k: v.detach().clone() for k, v in m.state_dict().items()}
    x = torch.randn(6, 3)
    rng = torch.get_rng_state()
    result = gt.check_module(m, x)
    assert result.ok, str(result)  # dropout repeats its mask: every evaluation is seeded
    assert [t.name for t in result.tensors] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert torch.equal(m[0].weight.grad, torch.ones_like(m[0].weight))
    assert m[4].weight.grad is None
    assert torch.equal(torch.get_rng_state(), rng)


def test_module_with_a_wrong_custom_part_names_its_parameter():
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor([1.5, -0.5]))

        def forward(self, x):
            return _scale_sin(factor=1.01).apply(x, self.scale)

    x = torch.randn(4, 2, requires_grad=True)
    result = gt.check_module(Bad(), x)
    assert {t.name: t.ok for t in result.tensors} == {"arg0": True, "scale": False}


def test_drop_in_return_convention():
    x, w = _inputs(torch.float64)
    good, bad = _scale_sin().apply, _scale_sin(factor=1.01).apply
    assert gt.gradcheck(good, (x, w)) is True
    assert gt.gradcheck(bad, (x, w), raise_exception=False) is False
    with pytest.raises(AssertionError) as info:
        gt.gradcheck(bad, (x, w), eps=1e-6, atol=1e-5, rtol=1e-3)
    err = info.value
    assert isinstance(err, GradientMismatch) and isinstance(err, RuntimeError)
    assert isinstance(err, TorchGradcheckError)
    assert not err.result.ok
    assert gt.gradcheck(torch.sin, x) is True  # a bare tensor, as torch accepts


def test_drop_in_float32_needs_no_tolerances_where_torch_fails():
    x = torch.randn(20, dtype=torch.float32, requires_grad=True)
    assert gt.gradcheck(torch.tanh, (x,))
    with pytest.warns(UserWarning):  # torch itself warns that float32 will likely fail
        assert not torch.autograd.gradcheck(torch.tanh, (x,), raise_exception=False)


def _cube(detach_in_backward):
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * (x.detach() if detach_in_backward else x) ** 2

    return Cube.apply


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradgradcheck_catches_a_backward_that_is_not_differentiable(dtype):
    x = torch.randn(4, dtype=dtype, requires_grad=True)
    assert gt.gradcheck(_cube(True), (x,))  # first order is right
    assert gt.gradgradcheck(_cube(False), (x,))
    assert gt.gradgradcheck(_cube(True), (x,), raise_exception=False) is False
    result = gt.check(_cube(True), x, order=2)
    assert not result.ok and result.tensors[0].name == "arg0"


def test_gradgradcheck_with_given_grad_outputs():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 2, dtype=torch.float64)
    assert gt.gradgradcheck(lambda t: t.sin() * t, (x,), (g,))


def _square_with_jvp(factor):
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x ** 2

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 2 * x * t * factor

    return Square.apply


def test_forward_ad_is_checked_with_ad_fwd():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert gt.check(_square_with_jvp(1.0), x, ad="fwd").ok
    assert not gt.check(_square_with_jvp(1.01), x, ad="fwd").ok
    assert gt.check(_square_with_jvp(1.01), x).ok  # reverse mode does not use jvp
    assert gt.gradcheck(_square_with_jvp(1.01), (x,), check_forward_ad=True,
                        raise_exception=False) is False


def test_half_inputs_are_evaluated_in_float32():
    x = torch.randn(6, dtype=torch.float16, requires_grad=True)
    result = gt.check(torch.tanh, x)
    assert result.ok and any("float32" in n for n in result.notes)
    assert x.dtype == torch.float16


def test_bad_input_gets_clear_errors():
    with pytest.raises(TypeError):
        gt.check(3, torch.ones(2))
    with pytest.raises(ValueError):
        gt.check(torch.sin, torch.ones(2), ad="sideways")
    with pytest.raises(TypeError):
        gt.check(torch.sin, torch.ones(2, dtype=torch.complex64))

    def in_place(t):
        return t.mul_(2)

    with pytest.raises((ValueError, RuntimeError), match=r"in-place|in place"):
        gt.check(in_place, torch.ones(3, requires_grad=True))


def test_import_gradcheck_imports_neither_torch_nor_jax():
    code = ("import sys, gradcheck, gradcheck.torch, gradcheck.jax; "
            "gradcheck.check_grad; print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_device_twin_receives_exactly_the_changed_entries():
    """The accelerator path (a twin updated entry by entry), exercised on the CPU."""
    from gradcheck.adapters.torch_adapter import _Slot

    t = torch.randn(4, 5, dtype=torch.float32)
    slot = _Slot("x", t, torch.float32, share=False)
    assert slot.twin.data_ptr() != torch.from_numpy(slot.work).data_ptr()
    rng = np.random.default_rng(0)
    for changed in (1, 2, 20, 0, 1):
        idx = rng.choice(slot.work.size, changed, replace=False)
        slot.work.reshape(-1)[idx] += np.float32(0.25)
        assert torch.equal(slot.current(), torch.from_numpy(slot.work))
    assert torch.equal(t, t.clone())  # the user's tensor is not the twin


@pytest.mark.parametrize("op", [torch.clone, torch.flip, torch.positive])
def test_copy_like_ops_in_float32_are_judged_at_float64_rounding(op):
    """Their float64 outputs at a float32 point are float32-exact: the nudge tells."""
    x = torch.randn(5, 10, 5, dtype=torch.float32, requires_grad=True)

    def fn(t):
        return op(t, (0,)) if op is torch.flip else op(t)

    assert gt.check(fn, x).ok

    class OnePercentOff(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return fn(t)

        @staticmethod
        def backward(ctx, g):
            return fn(g) * 1.01 if op is not torch.flip else op(g, (0,)) * 1.01

    assert not gt.check(OnePercentOff.apply, x).ok


def test_zero_dimensional_inputs_keep_their_shape():
    a = torch.tensor(0.7, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(-1.2, dtype=torch.float32, requires_grad=True)
    result = gt.check(torch.mul, a, b)
    assert result.ok and [t.shape for t in result.tensors] == [(), ()]


def test_outputs_declared_non_differentiable_are_left_out():
    class WithIndex(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            m = x.sum(0)  # returned for inspection only
            ctx.mark_non_differentiable(m)
            return x * 2, m

        @staticmethod
        def backward(ctx, g, _):
            return g * 2

    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    result = gt.check(WithIndex.apply, x)
    assert result.ok and any("[1]" in n for n in result.notes)
    detached = gt.check(lambda t: t.detach() * 2, x)  # nothing differentiable: all wrong
    assert not detached.ok


@pytest.mark.parametrize("drop_in", ["gradcheck", "gradgradcheck"])
def test_the_drop_ins_refuse_inputs_none_of_which_requires_grad_as_torch_does(drop_in):
    x = torch.randn(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="requires_grad=True"):
        getattr(torch.autograd, drop_in)(torch.sin, (x,))
    with pytest.raises(gradcheck.CheckInputError, match="requires_grad=True"):
        getattr(gt, drop_in)(torch.sin, (x,))
    assert gt.check(torch.sin, x).ok  # check() takes every float tensor instead


def test_a_float16_input_is_not_called_float32_in_the_notes():
    x = torch.randn(4, dtype=torch.float16, requires_grad=True)
    result = gt.check(torch.sin, x)
    assert result.ok
    assert not [n for n in result.notes if n.startswith("arg0: float32")], result.notes
    assert [n for n in result.notes if n.startswith("arg0: half-precision")], result.notes
