"""What a check returns: :class:`CheckResult`, its rows, and its three renderings.

The attribute names and ``to_dict()`` keys below are a stable contract (the pytest
plugin, the CLI and the session report read them):

* ``str(result)`` — a compact plain-text table: one row per tensor, then the worst
  entries (index, analytic, numeric, error), the diagnosis, the non-differentiable
  points and the Taylor verdict;
* ``result.to_dict()`` — JSON-safe (plain floats/ints/lists/str, NaN and Inf -> None);
* ``result.to_markdown()`` — the same as a Markdown table.

>>> row = TensorReport("W", (2, 3), 1e-12, 1e-10, (0, 1), 0, 6, 0, True)
>>> CheckResult(ok=True, kind="check_layer", label="Dense", tensors=[row]).to_dict()["ok"]
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from gradcheck.diagnosis.evidence import RunEvidence
from gradcheck.results.serialize import markdown_text, terminal_text
from gradcheck.results.serialize import plain as _plain

#: A check's verdict: every entry agrees; something is wrong; or nothing is wrong but some
#: entries (or the evidence) could not be resolved, which is never a pass.
Verdict = Literal["ok", "wrong", "inconclusive"]


class TensorReport(NamedTuple):
    """One checked tensor.

    ``n_checked`` counts entries with a numeric value (all in full mode; the sampled and
    localized ones in fast mode); ``n_wrong`` is exact in full mode and, in fast mode, an
    estimate of how many entries of the whole tensor are wrong. Errors are over the
    checked entries; ``max_rel_error`` divides each by ``max(|analytic|, |numeric|,
    RMS of the tensor's gradient, the entry's tolerance)``, so entries whose true value
    is 0 do not show a relative error of 1 from rounding alone. ``worst_index`` is
    ``None`` when no entry was checked. ``n_unresolved`` counts entries no step could
    resolve (neither agreeing nor wrong; left out of the errors); they make the tensor
    not ``ok`` unless the check allowed them.

    Columns mean the same in both modes: ``checked`` is always the entries differenced
    one by one; fast mode adds ``directions``, the random directions that each moved
    *every* entry of the tensor (0 in full mode), shown as ``"<k> dirs + <checked>"``.
    ``n_wrong_kind`` says how ``n_wrong`` was obtained: ``"exact"`` (every counted entry
    was isolated), ``"estimate"`` (scaled up from a random sample; shown ``~N``) or
    ``"at_least"`` (localization stopped at its cap; shown ``≥M`` with ``M =
    n_wrong_found``, the entries isolated one by one, while ``n_wrong`` keeps the best
    estimate). ``worst_index`` is the entry with the largest error / tolerance, wrong
    entries first (the same ranking as :attr:`CheckResult.worst`).

    What a check rules out: ``rules_out_rel`` is the smallest relative error that would
    have been caught. Full mode: the largest over judged entries of ``tolerance /
    max(|analytic|, RMS of the tensor)``, so that relative error in *any* entry is caught
    (``rules_out_miss_probability`` 0). Fast mode: an error whose ``s``-weighted norm is
    ``rules_out_rel`` times the gradient's (``s = max(|θ|, 1)``) escapes every direction
    with probability at most ``rules_out_miss_probability`` (see
    :mod:`gradcheck.engine.fast`). NaN when nothing was judged.
    """

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...] | None
    n_wrong: int
    n_checked: int
    n_nondifferentiable: int
    ok: bool
    n_unresolved: int = 0
    n_wrong_kind: str = "exact"
    n_wrong_found: int = 0
    directions: int = 0
    rules_out_rel: float = float("nan")
    rules_out_miss_probability: float = float("nan")


class Entry(NamedTuple):
    """One entry worth showing: where, the two values, their difference and tolerance."""

    tensor: str
    # the public field name shadows tuple.index; kept for the API
    index: tuple[int, ...]  # type: ignore[assignment]
    analytic: float
    numeric: float
    error: float
    tolerance: float


class Kink(NamedTuple):
    """A point where the function is not differentiable (one-sided derivatives differ)."""

    tensor: str
    # the public field name shadows tuple.index; kept for the API
    index: tuple[int, ...]  # type: ignore[assignment]
    left: float
    right: float
    analytic: float


class Taylor(NamedTuple):
    """Taylor remainder test: ``|φ(θ+hv) − φ(θ) − h g·v|`` against ``h``.

    ``slope`` is the fitted log-log slope (≈ 2 when ``g`` is right, ≈ 1 when wrong; NaN
    when inconclusive); ``verdict`` is ``"consistent"``, ``"wrong"`` or
    ``"inconclusive: <why>"``.
    """

    slope: float
    verdict: str
    steps: tuple[float, ...] = ()
    remainders: tuple[float, ...] = ()


class LayerFlow(NamedTuple):
    """Gradient norm of one layer's parameters (``check_model``); flag ``""``,
    ``"vanishing"`` or ``"exploding"``."""

    layer: str
    norm: float
    flag: str


@dataclass
class CheckResult:
    """The outcome of one check (see the module docstring for the renderings).

    Attributes
    ----------
    ok : bool
        Every checked entry agrees (kinks with a valid subgradient count as agreeing),
        none is unresolved (unless ``allow_unresolved``), the Taylor test does not
        contradict them, and the run was deterministic.
    kind, label : str
        The entry point (``"check_layer"``) and what was checked (``"Dense"``).
    tensors : list of TensorReport
    worst : list of Entry
        The worst entries across tensors (wrong ones first), at most a handful.
    diagnosis : list of str
        One-line findings naming the likely bug (empty when nothing to say).
    nondifferentiable : list of Kink
        ``(tensor, index, left, right, analytic)`` per kink found.
    nondeterministic, history_dependent : bool
        Same input gave different outputs; backward depended on an earlier input.
    taylor : Taylor or None
    gradient_flow : list of LayerFlow
        ``check_model`` only.
    evaluations : int
        Calls of the objective (forward passes) made by the check.
    seconds : float
    mode : str
        ``"full"`` or ``"fast"``: the mode actually used.
    options : dict
        Effective ``eps``, ``rtol``, ``atol``, ``seed``, ``method``, precision, ...
    notes : list of str
        Other plain statements (fast-mode estimates, caps reached).
    evidence : RunEvidence or None
        What the diagnosis saw (not part of ``to_dict``).
    verdict : "ok" | "wrong" | "inconclusive"
        ``"inconclusive"``: nothing was found wrong, but entries were unresolved or the
        Taylor test disagreed (see ``notes``); not a pass.
    """

    ok: bool
    kind: str
    label: str
    tensors: list[TensorReport] = field(default_factory=list)
    worst: list[Entry] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    nondifferentiable: list[Kink] = field(default_factory=list)
    nondeterministic: bool = False
    history_dependent: bool = False
    taylor: Taylor | None = None
    gradient_flow: list[LayerFlow] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0
    mode: str = "full"
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    evidence: RunEvidence | None = field(default=None, repr=False, compare=False)
    verdict: Verdict | None = None

    def __post_init__(self) -> None:
        if self.verdict is None:
            self.verdict = "ok" if self.ok else "wrong"

    @property
    def n_unresolved(self) -> int:
        """Entries that no step could resolve, over all tensors."""
        return sum(t.n_unresolved for t in self.tensors)

    def __bool__(self) -> bool:
        return self.ok

    # ---------------------------------------------------------------- renderings
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with stable keys (NaN/Inf -> None, tuples -> lists)."""
        return {
            "ok": bool(self.ok), "verdict": self.verdict, "unresolved": self.n_unresolved,
            "kind": self.kind, "label": self.label, "mode": self.mode,
            "tensors": [_plain(t._asdict()) for t in self.tensors],
            "worst": [_plain(e._asdict()) for e in self.worst],
            "diagnosis": list(self.diagnosis),
            "findings": [{"code": getattr(f, "code", ""), "text": str(f)} for f in self.diagnosis],
            "nondifferentiable": [_plain(k._asdict()) for k in self.nondifferentiable],
            "nondeterministic": bool(self.nondeterministic),
            "history_dependent": bool(self.history_dependent),
            "taylor": None if self.taylor is None else _plain(self.taylor._asdict()),
            "gradient_flow": [_plain(g._asdict()) for g in self.gradient_flow],
            "evaluations": int(self.evaluations), "seconds": _plain(self.seconds),
            "options": _plain(self.options), "notes": list(self.notes),
        }

    def headline(self) -> str:
        verdict = {"ok": "OK", "wrong": "FAILED", "inconclusive": "INCONCLUSIVE"}[
            self.verdict or "wrong"]
        return (f"{self.kind}({self.label}): {verdict} — mode {self.mode}, "
                f"{self.evaluations} evaluations, {self.seconds:.3g} s")

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        head = ["tensor", "shape", "checked", "wrong", "kinks", "max abs err", "max rel err",
                "worst at", "ok"]
        rows = [[t.name, _shape(t.shape), _checked(t), _wrong(t),
                 str(t.n_nondifferentiable), _num(t.max_abs_error), _num(t.max_rel_error),
                 "-" if t.worst_index is None else _shape(t.worst_index),
                 "yes" if t.ok else "NO" if t.n_wrong or not t.n_unresolved else "?"]
                for t in self.tensors]
        if self.n_unresolved:  # the column appears only where it has something to say
            head.insert(4, "unresolved")
            for row, t in zip(rows, self.tensors, strict=True):
                row.insert(4, str(t.n_unresolved))
        return head, rows

    def _statements(self) -> list[str]:
        lines = []
        if not self.diagnosis:  # the diagnosis states these itself, first
            if self.nondeterministic:
                lines.append("nondeterministic: the same input gave different outputs (e.g. "
                             "an unseeded dropout mask); fix the randomness before checking "
                             "gradients")
            if self.history_dependent:
                lines.append("history-dependent: backward gave a different gradient for the "
                             "same input after a forward on another input (a stale cache)")
        lines += self.diagnosis
        lines += self.notes
        if self.nondifferentiable:
            shown = ", ".join(f"{k.tensor}{list(k.index)} (left {_num(k.left)}, right "
                              f"{_num(k.right)}, analytic {_num(k.analytic)})"
                              for k in self.nondifferentiable[:3])
            more = len(self.nondifferentiable) - 3
            lines.append(f"not differentiable at {len(self.nondifferentiable)} entries "
                         f"(judged by one-sided derivatives): {shown}"
                         + (f" and {more} more" if more > 0 else ""))
        if self.ok:
            lines += _rules_out_lines(self.tensors)
        if self.taylor is not None:
            lines.append(f"Taylor test: slope {_num(self.taylor.slope)} (expected ≈ 2 if the "
                         f"gradient is right, ≈ 1 if wrong) — {self.taylor.verdict}")
        flagged = [g for g in self.gradient_flow if g.flag]
        for g in flagged:
            lines.append(f"gradient flow: layer {g.layer} has a {g.flag} gradient "
                         f"(norm {_num(g.norm)})")
        return lines

    def __str__(self) -> str:
        head, rows = self._rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in [head, *rows]]
        out = [self.headline(), *table]
        if self.worst:
            out.append("worst entries:")
            out += [f"  {e.tensor}{list(e.index)}: analytic {_num(e.analytic)}, numeric "
                    f"{_num(e.numeric)}, error {_num(e.error)} (tolerance {_num(e.tolerance)})"
                    for e in self.worst]
        out += self._statements()
        return "\n".join(terminal_text(line) for line in out)  # a name cannot add lines

    def to_markdown(self) -> str:
        """A Markdown rendering: headline, tensor table, worst entries, findings.

        Names the user chose (class, tensor, test) are escaped: they cannot add HTML,
        headings or table rows.
        """
        head, rows = self._rows()
        out = [f"**{markdown_text(self.headline())}**", "", "| " + " | ".join(head) + " |",
               "|" + "---|" * len(head)]
        out += ["| " + " | ".join(markdown_text(c) for c in r) + " |" for r in rows]
        if self.worst:
            out += ["", "| entry | analytic | numeric | error | tolerance |",
                    "|---|---|---|---|---|"]
            out += [f"| {markdown_text(f'{e.tensor}{list(e.index)}')} | {_num(e.analytic)} "
                    f"| {_num(e.numeric)} | {_num(e.error)} | {_num(e.tolerance)} |"
                    for e in self.worst]
        statements = self._statements()
        if statements:
            out += ["", *[f"- {markdown_text(s)}" for s in statements]]
        return "\n".join(out)


class GradientMismatch(AssertionError):
    """Raised by the ``assert_*`` functions; ``.result`` is the :class:`CheckResult`."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(str(result))
        self.result = result


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3g}"


def _checked(t: TensorReport) -> str:
    """Entries differenced one by one; in fast mode preceded by the directions over all."""
    return f"{t.directions} dirs + {t.n_checked}" if t.directions else str(t.n_checked)


def _wrong(t: TensorReport) -> str:
    """``N`` exact, ``~N`` estimated from a sample, ``≥M`` a sure lower bound."""
    if t.n_wrong_kind == "estimate":
        return f"~{t.n_wrong}"
    if t.n_wrong_kind == "at_least":
        return f"≥{t.n_wrong_found}"
    return str(t.n_wrong)


def _rules_out_lines(tensors: list[TensorReport]) -> list[str]:
    """One line: per tensor, the smallest relative error the check would have caught."""
    full = [f"{t.name} {_num(t.rules_out_rel)}" for t in tensors
            if not t.directions and not math.isnan(t.rules_out_rel)]
    fast = [t for t in tensors if t.directions and not math.isnan(t.rules_out_rel)]
    lines = []
    if full:
        lines.append("rules out: a relative error in any entry of at least "
                     + ", ".join(full))
    if fast:
        lines.append("rules out: an error of at least "
                     + ", ".join(f"{t.name} {_num(t.rules_out_rel)}" for t in fast)
                     + f" of the tensor's gradient (s-weighted norm), except with "
                     f"probability ≤ {_num(fast[0].rules_out_miss_probability)}")
    return lines


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


__all__ = [
    "CheckResult",
    "Entry",
    "GradientMismatch",
    "Kink",
    "LayerFlow",
    "Taylor",
    "TensorReport",
    "Verdict",
]
