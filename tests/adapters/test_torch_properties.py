"""Properties over shapes, dtypes and ops: right gradients pass, a planted error is named."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402

#: name -> (op of two tensors, domain shift keeping it smooth)
OPS = {
    "mul_sin": lambda x, w: x * torch.sin(w),
    "tanh_affine": lambda x, w: torch.tanh(x * w + 0.3),
    "softplus_ratio": lambda x, w: torch.nn.functional.softplus(x) / (1 + w ** 2),
    "matmul": lambda x, w: x @ w.T,
}


def _off(op, which, factor):
    """``op`` with the gradient of input ``which`` multiplied by ``factor``."""

    class Off(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            with torch.enable_grad():
                a, b = x.detach().requires_grad_(), w.detach().requires_grad_()
                y = op(a, b)
            ctx.saved = (a, b, y)
            return y.detach()

        @staticmethod
        def backward(ctx, g):
            a, b, y = ctx.saved
            ga, gb = torch.autograd.grad(y, (a, b), g, retain_graph=True)
            return (ga * factor, gb) if which == 0 else (ga, gb * factor)

    return Off.apply


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(OPS)), rows=st.integers(1, 4), cols=st.integers(1, 5),
       dtype=st.sampled_from([torch.float32, torch.float64]), which=st.integers(0, 1),
       seed=st.integers(0, 2**16))
def test_right_gradients_pass_and_a_one_percent_error_is_named(name, rows, cols, dtype,
                                                               which, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=gen, dtype=dtype, requires_grad=True)
    w = torch.randn(rows, cols, generator=gen, dtype=dtype, requires_grad=True)
    op = OPS[name]
    assert gt.check(op, x, w, names=("x", "w")).ok
    result = gt.check(_off(op, which, 1.01), x, w, names=("x", "w"))
    assert not result.ok
    verdict = {t.name: t.ok for t in result.tensors}
    assert verdict[("x", "w")[which]] is False
    assert verdict[("x", "w")[1 - which]] is True
