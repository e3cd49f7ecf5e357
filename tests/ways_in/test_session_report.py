"""The session report: records from results, totals, JSON and Markdown renderings."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck.results.session_report import (
    RECORD_SCHEMA_VERSION,
    SessionReport,
    record_from_result,
)

RECORD_KEYS = {"test", "kind", "label", "ok", "mode", "max_abs_error", "max_rel_error",
               "worst_tensor", "error_ratio", "n_checked", "n_wrong", "n_nondifferentiable", "diagnosis",
               "evaluations", "seconds", "tensors"}
TENSOR_KEYS = {"name", "shape", "max_abs_error", "max_rel_error", "n_checked", "n_wrong",
               "n_nondifferentiable", "ok"}


def fake_tensor(name, rel, *, wrong=0, kinks=0, checked=6):
    """Duck-typed TensorReport with NumPy scalars, as the checker produces them."""
    return SimpleNamespace(name=name, shape=(2, 3), max_abs_error=np.float64(rel / 2),
                           max_rel_error=np.float64(rel), worst_index=(0, 1),
                           n_wrong=np.int64(wrong), n_checked=checked,
                           n_nondifferentiable=np.int64(kinks), ok=wrong == 0)


def fake_result(tensors, *, diagnosis=(), worst=()):
    return SimpleNamespace(ok=all(t.ok for t in tensors), kind="layer", label="Dense",
                           tensors=tensors, diagnosis=list(diagnosis), mode="full",
                           evaluations=np.int64(24), seconds=0.01, worst=list(worst))


def test_record_is_json_safe_and_names_the_worst_tensor():
    result = fake_result([fake_tensor("x", 1e-9), fake_tensor("W", 0.5, wrong=2, kinks=1),
                          fake_tensor("b", float("nan"))], diagnosis=["W: sign flipped"],
                         worst=[SimpleNamespace(error=np.float64(0.5), tolerance=1e-3),
                                SimpleNamespace(error=1e-9, tolerance=1e-8)])
    record = record_from_result(result, test="t.py::test_dense")
    assert set(record) == RECORD_KEYS
    assert all(set(t) == TENSOR_KEYS for t in record["tensors"])
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert (record["ok"], record["worst_tensor"], record["max_rel_error"]) == (False, "W", 0.5)
    assert record["tensors"][2]["max_rel_error"] is None  # NaN -> None
    assert (record["n_wrong"], record["n_nondifferentiable"], record["n_checked"]) == (2, 1, 18)
    assert record["diagnosis"] == ["W: sign flipped"]
    assert record["error_ratio"] == 500.0


records = st.builds(
    lambda ok, rel, kinks, test: {"test": test, "kind": "layer", "label": "L", "ok": ok,
                                  "max_rel_error": rel, "max_abs_error": rel,
                                  "n_nondifferentiable": kinks, "diagnosis": ["why"]},
    st.booleans(), st.none() | st.floats(0, 1e3), st.integers(0, 50),
    st.text("abc|:\n", max_size=8))


@given(st.lists(records, max_size=12))
def test_summary_totals_match_the_records(rows):
    summary = SessionReport(rows).summary()
    assert summary.checks == len(rows)
    assert summary.failed == sum(not r["ok"] for r in rows)
    assert summary.nondifferentiable == sum(r["n_nondifferentiable"] for r in rows)
    rated = [r["max_rel_error"] for r in rows if r["max_rel_error"] is not None]
    assert summary.worst_rel_error == (max(rated) if rated else None)


def _count(row: str) -> int:
    """How many checks one Markdown row stands for (``| (×3) test | ...``)."""
    match = re.match(r"\| \(×(\d+)\) ", row)
    return int(match.group(1)) if match else 1


@given(st.lists(records, max_size=12))
def test_json_round_trips_and_markdown_counts_every_check_once(rows):
    report = SessionReport(rows)
    loaded = json.loads(report.to_json())
    assert loaded["schema"] == RECORD_SCHEMA_VERSION
    assert loaded["checks"] == rows
    assert loaded["summary"]["checks"] == len(rows)
    table_rows = [line for line in report.to_markdown().splitlines() if line.startswith("| ")]
    checks = table_rows[2:]  # after the header and the rule
    assert sum(map(_count, checks)) == len(rows)  # identical replays share a counted row
    assert len(set(checks)) == len(checks)
    # escaped pipes and newlines keep every row at the header's number of cells
    assert all(line.replace("\\|", "").count("|") == 9 for line in table_rows)


def test_summary_lines_name_failures_and_kinks():
    report = SessionReport([
        {"test": "a::ok", "ok": True, "max_rel_error": 1e-10, "n_nondifferentiable": 3},
        {"test": "a::bad", "label": "Conv2D", "worst_tensor": "W", "ok": False,
         "max_rel_error": 2.0, "n_nondifferentiable": 0, "diagnosis": ["W is transposed"]},
    ])
    text = "\n".join(report.summary_lines())
    assert "2 gradient checks ran, 1 failed" in text
    assert "worst relative error 2 (a::bad: Conv2D/W)" in text
    assert "3 entries skipped as not differentiable" in text
    assert "FAILED a::bad: W is transposed" in text


def test_a_replayed_failure_is_one_counted_line():
    """Hypothesis replays and shrinks a failing example: one line, not one per replay."""
    bad = {"test": "t::test_hyp", "ok": False, "n_nondifferentiable": 0,
           "diagnosis": ["only x is wrong"]}
    other = {**bad, "diagnosis": ["W is transposed"]}
    lines = SessionReport([bad] * 5 + [other]).summary_lines()
    failed = [line for line in lines if line.startswith("FAILED")]
    assert failed == ["FAILED t::test_hyp: only x is wrong (×5)",
                      "FAILED t::test_hyp: W is transposed"]
    assert lines[0] == "6 gradient checks ran, 6 failed"


@pytest.mark.parametrize("suffix", [".json", ".md"])
def test_write_picks_the_format_from_the_extension(tmp_path, suffix):
    path = SessionReport([{"test": "t", "ok": True}]).write(tmp_path / f"r{suffix}")
    text = path.read_text()
    assert (json.loads(text)["summary"]["checks"] == 1) if suffix == ".json" \
        else text.startswith("# Gradient checks")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_write_rejects_other_extensions_and_extend_rejects_non_records(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.md"):
        SessionReport().write(tmp_path / "report.txt")
    with pytest.raises(TypeError, match="check records"):
        SessionReport().extend([{"no": "ok key"}])


def test_a_fast_check_that_judged_no_entry_alone_says_so_instead_of_0_of_0():
    fast = {"test": "t::fast", "ok": True, "mode": "fast", "n_checked": 0, "n_wrong": 0}
    full = {**fast, "test": "t::full", "mode": "full", "n_checked": 6}
    rows = SessionReport([fast, full]).to_markdown().splitlines()
    assert "| random directions |" in next(r for r in rows if "t::fast" in r)
    assert "| 0 / 6 |" in next(r for r in rows if "t::full" in r)
