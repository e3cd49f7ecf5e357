"""Results: str() table, to_dict() JSON round trip, to_markdown(); a cheap ``import gradcheck``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from support.toy_layers import Affine, Relu

TOP_KEYS = {"ok", "kind", "label", "mode", "tensors", "worst", "diagnosis", "nondifferentiable",
            "nondeterministic", "history_dependent", "taylor", "gradient_flow", "evaluations",
            "seconds", "options", "notes", "verdict", "unresolved", "findings"}
TENSOR_KEYS = {"name", "shape", "max_abs_error", "max_rel_error", "worst_index", "n_wrong",
               "n_checked", "n_nondifferentiable", "ok", "n_unresolved", "n_wrong_kind",
               "n_wrong_found", "directions", "rules_out_rel", "rules_out_miss_probability"}


def results():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    kinked = np.array([[0.0, 1.0, -1.0]])
    return [
        gradcheck.check_layer(Affine(3, 2), x),
        gradcheck.check_layer(Affine(3, 2, bug=("W", (0, 1), -1.0)), x),
        gradcheck.check_layer(Affine(30, 80, bug=("b", (3,), 0.0)), np.ones((2, 30)) * 0.1),
        gradcheck.check_layer(Relu(), kinked),
        gradcheck.check_grad(lambda z: 2.0 * np.sum(z), lambda z: np.full_like(z, 2.0), x),
    ]


@pytest.mark.parametrize("result", results(), ids=["ok", "wrong", "fast-wrong", "kinks", "lin"])
def test_to_dict_is_json_safe_with_stable_keys(result):
    d = result.to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN must already be None
    assert json.loads(text) == d
    assert set(d) == TOP_KEYS
    assert all(set(t) == TENSOR_KEYS for t in d["tensors"])
    assert d["ok"] == result.ok and d["evaluations"] == result.evaluations


def test_str_shows_table_worst_entries_diagnosis_and_taylor():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    result = gradcheck.check_layer(Affine(3, 2, bug=("W", (0, 1), 3.0)), x)
    text = str(result)
    lines = text.splitlines()
    assert lines[0].startswith("check_layer(Affine): FAILED")
    assert lines[1].split()[:4] == ["tensor", "shape", "checked", "wrong"]
    assert any(line.startswith("W ") and line.rstrip().endswith("NO") for line in lines)
    assert "W[0, 1]: analytic" in text
    assert "Taylor test: slope" in text
    numeric = result.worst[0].numeric
    assert result.worst[0].analytic == pytest.approx(3.0 * numeric, rel=1e-6)


def test_kinks_appear_in_str_and_markdown():
    result = gradcheck.check_layer(Relu(), np.array([[0.0, 1.0, -1.0]]))
    assert "not differentiable at 1 entries" in str(result)
    md = result.to_markdown()
    assert md.splitlines()[2].startswith("| tensor | shape |")
    assert "not differentiable" in md


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), wrong=st.booleans())
def test_table_rows_agree_with_the_evidence(seed, wrong):
    rng = np.random.default_rng(seed)
    layer = Affine(3, 4, seed=seed, bug=("W", (1, 2), 1.5) if wrong else None)
    result = gradcheck.check_layer(layer, rng.uniform(-1, 1, (2, 3)), mode="full", seed=seed)
    for row, ev in zip(result.tensors, result.evidence.tensors, strict=True):
        assert row.name == ev.name and row.shape == ev.analytic.shape
        assert row.n_wrong == int(ev.wrong.sum())
        assert row.n_checked == int(np.isfinite(ev.numeric).sum())
        err = np.abs(ev.analytic - ev.numeric)
        assert row.max_abs_error == pytest.approx(float(err.max()))
    assert result.ok == (not wrong or abs(layer.grads["W"][1, 2]) < 1e-9)


def test_import_gradcheck_stays_cheap():
    code = ("import sys, gradcheck; heavy = [m for m in sys.modules if m.startswith("
            "('sympy', 'gradcheck.models', 'gradcheck.reference', 'matplotlib'))]; "
            "print(heavy); assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_public_api():
    for name in gradcheck.__all__:
        assert hasattr(gradcheck, name), name
    assert gradcheck.__version__ == "0.1.0"
