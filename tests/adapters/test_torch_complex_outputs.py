"""Complex outputs of real inputs (``view_as_complex``, ``torch.complex``, FFTs) are
checked as their (real, imag) pairs, with torch's conjugate Wirtinger convention: a
backward that uses the other convention (a conjugated cotangent) is caught."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from support.torch_functions import rewired  # noqa: E402

FUNCTIONS = {"view_as_complex": (torch.view_as_complex, (4, 2)),
             "rfft": (torch.fft.rfft, (8,)),
             "fft of a square": (lambda t: torch.fft.fft(t * t), (5,))}


def _conjugated(fn):
    """``fn`` whose backward conjugates the cotangent (the wrong convention)."""
    return rewired(fn, cotangent=lambda g: g.conj().resolve_conj())


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(sorted(FUNCTIONS)), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_complex_outputs_are_checked_and_a_conjugated_backward_is_caught(name, seed, dtype):
    fn, shape = FUNCTIONS[name]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype,
                    requires_grad=True)
    right = gt.check(fn, x)
    assert right.verdict == "ok", str(right)
    wrong = gt.check(_conjugated(fn), x)
    # rfft of a real signal: the conjugate convention differs only where Im ≠ 0
    assert wrong.verdict == "wrong", str(wrong)


def test_the_drop_ins_accept_complex_outputs():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert gt.gradcheck(lambda t: torch.fft.fft(t * t), (x,))
    assert gt.gradgradcheck(lambda t: torch.fft.fft(t * t), (x,))
