"""A step that leaves the function's domain is shrunk for that entry; the check raises
only when no step works, and then names the entry."""

import numpy as np
import pytest

import gradcheck


def _asin32(z):
    return np.sum(np.arcsin(z.astype(np.float32)))


def _asin_grad(z):
    return 1 / np.sqrt(1 - z.astype(np.float64) ** 2)


@pytest.mark.parametrize("edge", [0.9959, -0.9959, 0.999])
def test_float32_arcsin_next_to_its_domain_edge_is_checked_not_refused(edge):
    x = np.array([edge, 0.3, -0.5], np.float32)
    assert gradcheck.check_grad(_asin32, _asin_grad, x).ok
    flipped = gradcheck.check_grad(_asin32, lambda z: -_asin_grad(z), x)
    assert flipped.verdict == "wrong" and flipped.tensors[0].n_wrong == 3


def test_no_finite_step_is_a_clear_error_naming_the_entry():
    def f(z):  # sqrt at 0: every step to the left leaves the domain
        return float(np.sum(np.sqrt(z)))

    def grad(z):
        return np.where(z > 0, 0.5 / np.sqrt(np.maximum(z, 1e-300)), 0.0)

    with pytest.raises(gradcheck.NonFiniteError, match=r"x\[1\]"):
        gradcheck.check_grad(f, grad, np.array([1.0, 0.0]))
