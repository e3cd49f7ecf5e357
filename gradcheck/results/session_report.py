"""A collection of check results, rendered as a summary, JSON or Markdown.

The ONE place that turns many :class:`gradcheck.results.result.CheckResult` objects into a
session-level view. The pytest plugin uses it for its terminal summary and its
``--gradcheck-report`` file; the CLI uses it for ``gradcheck check --json``.

Results are first reduced to *records*: plain JSON-safe dicts (built from the public
attributes of a result, so this module imports neither the checker nor NumPy at import
time). Records cross process boundaries unchanged, which is how pytest-xdist workers hand
their checks to the controller.

Record schema (``RECORD_SCHEMA_VERSION = 1``; keys are stable, values plain JSON)::

    {
      "test": str | None,          # pytest node id or CLI target, None when unknown
      "kind": str,                 # "grad", "jacobian", "layer", "model", "hvp", ...
      "label": str,                # what was checked, e.g. "Dense"
      "ok": bool,
      "mode": str,                 # mode actually used: "full" or "fast"
      "max_abs_error": float | None,   # worst over the checked tensors
      "max_rel_error": float | None,
      "worst_tensor": str | None,  # tensor holding max_rel_error
      "error_ratio": float | None, # max error / tolerance over the worst entries shown:
                                   # below 1 agrees; how close a passing check came
      "n_checked": int,            # entries compared, summed over tensors
      "n_wrong": int,
      "n_nondifferentiable": int,  # entries at kinks, judged by one-sided derivatives
      "diagnosis": [str, ...],
      "evaluations": int | None,
      "seconds": float | None,
      "tensors": [{"name", "shape", "max_abs_error", "max_rel_error",
                   "n_checked", "n_wrong", "n_nondifferentiable", "ok"}, ...]
    }

A report (``SessionReport.to_dict()``) is
``{"schema": 1, "summary": {...Summary fields...}, "checks": [record, ...]}``.

>>> report = SessionReport()
>>> report.extend([{"test": "t::a", "kind": "layer", "label": "Dense", "ok": True,
...                 "max_rel_error": 1e-9, "n_nondifferentiable": 2}])
>>> report.summary().checks, report.summary().failed, report.summary().nondifferentiable
(1, 0, 2)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gradcheck.results.serialize import check_output_path, markdown_text, write_atomic
from gradcheck.results.serialize import plain as _plain

__all__ = ["RECORD_SCHEMA_VERSION", "REPORT_SUFFIXES", "SessionReport", "Summary",
           "check_report_path", "record_from_result"]

RECORD_SCHEMA_VERSION = 1

_TENSOR_KEYS = ("max_abs_error", "max_rel_error", "n_checked", "n_wrong",
                "n_nondifferentiable", "ok")


def _max_or_none(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return max(finite) if finite else None


def record_from_result(result: Any, *, test: str | None = None) -> dict[str, Any]:
    """Reduce a ``CheckResult`` to a JSON-safe record (schema in the module docstring).

    Parameters
    ----------
    result : CheckResult
        Any object with the public attributes of ``gradcheck.CheckResult``.
    test : str, optional
        Where the check ran (a pytest node id, a CLI target).
    """
    tensors = []
    for t in getattr(result, "tensors", ()):
        row = {"name": str(t.name), "shape": _plain(tuple(t.shape))}
        row.update({key: _plain(getattr(t, key, None)) for key in _TENSOR_KEYS})
        tensors.append(row)
    worst = max((t for t in tensors if t["max_rel_error"] is not None),
                key=lambda t: t["max_rel_error"], default=None)
    ratios = [_plain(e.error / e.tolerance) for e in getattr(result, "worst", ())
              if e.tolerance > 0]
    return {
        "test": test,
        "kind": str(getattr(result, "kind", "")),
        "label": str(getattr(result, "label", "")),
        "ok": bool(result.ok),
        "mode": str(getattr(result, "mode", "")),
        "max_abs_error": _max_or_none(t["max_abs_error"] for t in tensors),
        "max_rel_error": worst["max_rel_error"] if worst else None,
        "worst_tensor": worst["name"] if worst else None,
        "error_ratio": _max_or_none(ratios),
        "n_checked": sum(t["n_checked"] or 0 for t in tensors),
        "n_wrong": sum(t["n_wrong"] or 0 for t in tensors),
        "n_nondifferentiable": sum(t["n_nondifferentiable"] or 0 for t in tensors),
        "diagnosis": [str(line) for line in getattr(result, "diagnosis", ())],
        "evaluations": _plain(getattr(result, "evaluations", None)),
        "seconds": _plain(getattr(result, "seconds", None)),
        "tensors": tensors,
    }


@dataclass(frozen=True)
class Summary:
    """Totals over a session: what the pytest terminal summary prints."""

    checks: int
    failed: int
    nondifferentiable: int
    worst_rel_error: float | None
    worst_abs_error: float | None
    worst_check: str | None  # "test: label/tensor" holding worst_rel_error
    worst_error_ratio: float | None  # max error / tolerance: closest call (< 1 agrees)


class SessionReport:
    """An ordered collection of check records with its renderings.

    >>> SessionReport().summary_lines()
    ['no gradient checks ran']
    """

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self.records: list[dict[str, Any]] = []
        self.extend(records)

    def add(self, result: Any, *, test: str | None = None) -> dict[str, Any]:
        """Record one ``CheckResult``; return its record."""
        record = record_from_result(result, test=test)
        self.records.append(record)
        return record

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records made elsewhere (for example by an xdist worker)."""
        for record in records:
            if not isinstance(record, dict) or "ok" not in record:
                raise TypeError(f"SessionReport.extend: expected check records (dicts with "
                                f"an 'ok' key), got {record!r}")
            self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> Summary:
        """Checks run, failed, entries at kinks, and the worst relative error."""
        rated = [r for r in self.records if r.get("max_rel_error") is not None]
        worst = max(rated, key=lambda r: r["max_rel_error"], default=None)
        where = None
        if worst is not None:
            what = "/".join(p for p in (worst.get("label"), worst.get("worst_tensor")) if p)
            where = f"{worst['test']}: {what}" if worst.get("test") else what
        return Summary(
            checks=len(self.records),
            failed=sum(1 for r in self.records if not r["ok"]),
            nondifferentiable=sum(r.get("n_nondifferentiable") or 0 for r in self.records),
            worst_rel_error=worst["max_rel_error"] if worst else None,
            worst_abs_error=_max_or_none(r.get("max_abs_error") for r in self.records),
            worst_check=where,
            worst_error_ratio=_max_or_none(r.get("error_ratio") for r in self.records),
        )

    def summary_lines(self) -> list[str]:
        """The terminal summary, one fact per line."""
        s = self.summary()
        if not s.checks:
            return ["no gradient checks ran"]
        lines = [f"{s.checks} gradient check{'s' * (s.checks != 1)} ran, {s.failed} failed"]
        if s.worst_rel_error is not None:
            lines.append(f"worst relative error {s.worst_rel_error:.3g} ({s.worst_check})")
        if s.worst_abs_error is not None:
            lines.append(f"worst absolute error {s.worst_abs_error:.3g}")
        if s.worst_error_ratio is not None:
            lines.append(f"largest error / tolerance {s.worst_error_ratio:.3g} (below 1 agrees)")
        lines.append(f"{s.nondifferentiable} entries skipped as not differentiable (at kinks, "
                     f"judged by one-sided derivatives)")
        # a Hypothesis test replays and shrinks: one line per distinct failure, counted
        failures = [f"FAILED {r.get('test') or r.get('label')}: "
                    f"{(r.get('diagnosis') or ['gradient mismatch'])[0]}"
                    for r in self.records if not r["ok"]]
        lines += [_counted(line, n) for line, n in Counter(failures).items()]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """``{"schema": 1, "summary": {...}, "checks": [record, ...]}``, JSON-safe."""
        return {"schema": RECORD_SCHEMA_VERSION, "summary": asdict(self.summary()),
                "checks": list(self.records)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def to_markdown(self) -> str:
        """A Markdown document: the summary, then one table row per check."""
        out = ["# Gradient checks", ""]
        out += [f"- {_md(line)}" for line in self.summary_lines()]
        if self.records:
            out += ["", "| check | what | ok | mode | max rel. error | wrong / checked "
                        "| not differentiable | diagnosis |",
                    "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
            rows = Counter(_markdown_row(r) for r in self.records)  # replays: counted
            out += [row if n == 1 else row.replace("| ", f"| (×{n}) ", 1)
                    for row, n in rows.items()]
        return "\n".join(out) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path | None:
        """Write JSON (``.json``) or Markdown (``.md``) atomically; return the path.

        The path rules (regular files only, folder must exist, links followed) are those
        of :func:`gradcheck.results.serialize.check_output_path`; call
        :func:`check_report_path` before the work to fail early.
        """
        target = check_report_path(path)
        text = self.to_json() if Path(path).suffix.lower() == ".json" else self.to_markdown()
        return write_atomic(target if target is not None else path, text,
                            what="the gradient-check report")


#: File-name endings a session report may have (the format follows from it).
REPORT_SUFFIXES = (".json", ".md")


def check_report_path(path: str | os.PathLike[str]) -> Path | None:
    """Validate a session-report path (``.json``/``.md``, a regular file in an existing folder).

    Raises :class:`gradcheck.results.serialize.OutputPathError` (a ``ValueError``).
    """
    return check_output_path(path, what="the gradient-check report", suffixes=REPORT_SUFFIXES)


def _markdown_row(r: dict[str, Any]) -> str:
    rel = r.get("max_rel_error")
    return "| " + " | ".join([
        _md(r.get("test") or ""), _md(f"{r.get('kind', '')} {r.get('label', '')}"),
        "yes" if r["ok"] else "**no**", _md(r.get("mode") or ""),
        "" if rel is None else f"{rel:.3g}",
        _wrong_of_checked(r),
        str(r.get("n_nondifferentiable", 0)),
        _md("; ".join(r.get("diagnosis") or [])),
    ]) + " |"


def _wrong_of_checked(r: dict[str, Any]) -> str:
    if r.get("mode") == "fast" and not r.get("n_checked"):
        return "random directions"  # fast mode judged no entry on its own: all agreed
    return f"{r.get('n_wrong', 0)} / {r.get('n_checked', 0)}"


def _counted(line: str, n: int) -> str:
    return line if n == 1 else f"{line} (×{n})"


def _md(text: str) -> str:
    """Escape a table cell: user-named text cannot add HTML, headings or rows."""
    return markdown_text(text)
