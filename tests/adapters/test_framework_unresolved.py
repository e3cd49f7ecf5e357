"""``allow_unresolved`` through every PyTorch and JAX entry point.

A large constant next to a small variation (``c + Σx²``, c = 1e14 in float64) leaves
entries no step can resolve: by default the check is inconclusive (never OK);
``allow_unresolved=True`` counts them as passing, as it does for the NumPy checks. It
must not turn a resolvable wrong gradient into OK.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from gradcheck.results.result import GradientMismatch  # noqa: E402

#: offsets (float64) where no step resolves the Σx² part (test_resolution: 1e14)
OFFSETS = st.sampled_from([1e14, 1e15])


def _x():
    return torch.linspace(0.3, 1.2, 4, dtype=torch.float64, requires_grad=True)


def _offset(c):
    return lambda t: (t ** 2).sum() + c


class _OffsetModule(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.lin = torch.nn.Linear(3, 1, dtype=torch.float64)

    def forward(self, z):
        return self.lin(z).pow(2).sum() + self.c


def _flip_sign():
    class Flipped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return -2 * x * g

    return Flipped.apply


@settings(max_examples=4, deadline=None)
@given(c=OFFSETS)
def test_torch_check_is_inconclusive_unless_unresolved_is_allowed(c):
    strict = gt.check(_offset(c), _x())
    assert strict.verdict == "inconclusive" and strict.n_unresolved > 0, str(strict)
    assert not strict.ok
    allowed = gt.check(_offset(c), _x(), allow_unresolved=True)
    assert allowed.ok and allowed.verdict == "ok", str(allowed)


@settings(max_examples=2, deadline=None)
@given(c=OFFSETS)
def test_torch_check_module_accepts_allow_unresolved(c):
    torch.manual_seed(0)
    module, z = _OffsetModule(c), torch.randn(4, 3, dtype=torch.float64)
    assert gt.check_module(module, z).verdict == "inconclusive"
    assert gt.check_module(module, z, allow_unresolved=True).verdict == "ok"


def test_torch_drop_ins_accept_allow_unresolved():
    f = _offset(1e14)
    assert gt.gradcheck(f, (_x(),), raise_exception=False) is False
    with pytest.raises(GradientMismatch):
        gt.gradcheck(f, (_x(),))
    assert gt.gradcheck(f, (_x(),), allow_unresolved=True) is True
    # second order: the gradient 1e14 + 2x carries the offset
    g = lambda t: 1e14 * t.sum() + (t ** 2).sum()  # noqa: E731
    assert gt.gradgradcheck(g, (_x(),), raise_exception=False) is False
    assert gt.gradgradcheck(g, (_x(),), allow_unresolved=True) is True


def test_allow_unresolved_does_not_pass_a_resolvable_wrong_gradient():
    flipped = _flip_sign()
    result = gt.check(flipped, _x(), allow_unresolved=True)
    assert result.verdict == "wrong", str(result)
    assert gt.gradcheck(flipped, (_x(),), raise_exception=False,
                        allow_unresolved=True) is False


def test_torch_allow_unresolved_must_be_a_bool():
    with pytest.raises(TypeError, match="allow_unresolved"):
        gt.check(_offset(1e14), _x(), allow_unresolved="yes")


def test_jax_check_and_check_grads_accept_allow_unresolved():
    jax = pytest.importorskip("jax")
    import gradcheck.jax as gj

    with jax.enable_x64(True):
        x = jax.numpy.linspace(0.3, 1.2, 4)

        def f(t):
            return jax.numpy.sum(t ** 2) + 1e14

        assert gj.check(f, x).verdict == "inconclusive"
        assert gj.check(f, x, allow_unresolved=True).verdict == "ok"
        with pytest.raises(GradientMismatch):
            gj.check_grads(f, (x,), order=1)
        assert gj.check_grads(f, (x,), order=1, allow_unresolved=True) is None
        flipped = jax.custom_vjp(lambda t: t ** 2)
        flipped.defvjp(lambda t: (t ** 2, t), lambda t, g: (-2 * t * g,))
        assert gj.check(flipped, x, allow_unresolved=True).verdict == "wrong"
