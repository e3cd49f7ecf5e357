"""The neutral document model shared by the Markdown, LaTeX and HTML renderers.

A report is a flat list of blocks. Derivations and the report builder produce blocks;
``render_md``, ``render_tex`` and ``render_html`` turn the same list into text, so the
three formats never disagree about content. Text in blocks is plain (renderers escape
it); mathematics is carried as a :class:`Math` holding LaTeX plus, where it came from a
SymPy expression, presentation MathML (for the offline HTML) and a plain-text form.

>>> import sympy as sp
>>> Math.of(sp.Symbol("x") ** 2).latex
'x^{2}'
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

__all__ = ["Block", "Heading", "Image", "Math", "MathBlock", "Note", "Paragraph", "Table"]


class _Printer(MathMLPresentationPrinter):
    """SymPy's presentation MathML, with piecewise functions as a brace and two columns."""

    def _print_Piecewise(self, expr: sp.Piecewise) -> Any:
        def node(tag: str, *children: Any, text: str | None = None) -> Any:
            element = self.dom.createElement(tag)
            if text is not None:
                element.appendChild(self.dom.createTextNode(text))
            for child in children:
                element.appendChild(child)
            return element
        rows = []
        for value, condition in expr.args:
            if condition == sp.true:
                where = node("mtd", node("mtext", text="otherwise"))
            else:
                where = node("mtd", node("mtext", text="if\u00a0"), self._print(condition))
            rows.append(node("mtr", node("mtd", self._print(value)), where))
        return node("mrow", node("mo", text="{"), node("mtable", *rows))


_LOOSE_AMPERSAND = re.compile(r"&(?![A-Za-z]+;|#[0-9]+;|#x[0-9A-Fa-f]+;)")


def _serialize(node: Any) -> str:
    """MathML text of a minidom node with text escaped.

    ``sp.mathml`` writes text nodes unescaped (``<mo><</mo>``) so that its entities such
    as ``&dd;`` survive; here ``<`` and ``>`` are always escaped and ``&`` unless it
    starts an entity.
    """
    if node.nodeType == node.TEXT_NODE:
        text = _LOOSE_AMPERSAND.sub("&amp;", node.data)
        return text.replace("<", "&lt;").replace(">", "&gt;")
    attributes = "".join(f' {k}="{html.escape(v)}"' for k, v in node.attributes.items())
    inner = "".join(_serialize(child) for child in node.childNodes)
    return f"<{node.tagName}{attributes}>{inner}</{node.tagName}>"


LONG_RATIONAL = 24
"""Rationals with a longer decimal form (SELU's exact constants) are shown as 20-digit floats."""


def _shorten(expr: sp.Basic) -> sp.Basic:
    """Display form of ``expr``: long exact rationals as 20-digit decimals."""
    long = {r: sp.Float(r, 20) for r in expr.atoms(sp.Rational) if len(str(r)) > LONG_RATIONAL}
    return expr.xreplace(long) if long else expr


@dataclass(frozen=True)
class Math:
    """One formula: ``latex`` always; ``mathml`` and ``text`` for the HTML renderer.

    ``sides`` holds the LaTeX of each side of an equation or chain ``a = b = c`` so that a
    renderer may break a long formula at its equals signs.
    """

    latex: str
    text: str
    mathml: str | None = None
    sides: tuple[str, ...] = ()

    @classmethod
    def of(cls, expr: sp.Basic) -> Math:
        """Build from a SymPy object (printers: ``latex``, presentation ``mathml``, ``sstr``)."""
        expr = _shorten(expr)
        try:
            mathml = _serialize(_Printer()._print(expr))
        except Exception:  # the MathML printer lacks rules for some objects; text remains
            mathml = None
        return cls(latex=sp.latex(expr), text=sp.sstr(expr), mathml=mathml)

    @classmethod
    def equation(cls, lhs: sp.Basic, rhs: sp.Basic) -> Math:
        """``lhs = rhs`` without SymPy evaluating the equality."""
        left, right = cls.of(lhs), cls.of(rhs)
        mathml = (None if left.mathml is None or right.mathml is None
                  else f"{left.mathml}<mo>=</mo>{right.mathml}")
        return cls(latex=f"{left.latex} = {right.latex}", text=f"{left.text} = {right.text}",
                   mathml=mathml, sides=(left.latex, right.latex))

    @classmethod
    def chain(cls, *parts: sp.Basic) -> Math:
        """``a = b = c …``: the same quantity written several ways (repeats dropped)."""
        distinct = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
        pieces = [cls.of(part) for part in distinct]
        mathml = (None if any(m.mathml is None for m in pieces)
                  else "<mo>=</mo>".join(m.mathml for m in pieces))  # type: ignore[misc]
        return cls(latex=" = ".join(m.latex for m in pieces),
                   text=" = ".join(m.text for m in pieces), mathml=mathml,
                   sides=tuple(m.latex for m in pieces))


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    """Running text; ``parts`` mixes plain strings and inline :class:`Math`."""

    parts: tuple[str | Math, ...]

    @classmethod
    def of(cls, *parts: str | Math) -> Paragraph:
        """``Paragraph.of("text ", Math.of(x), " more text")``."""
        return cls(tuple(parts))


@dataclass(frozen=True)
class MathBlock:
    """Displayed formulas, one per line, each with an optional plain-text label."""

    lines: tuple[Math, ...]
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table of plain-text cells (numbers already formatted) or inline :class:`Math`."""

    header: tuple[str, ...]
    rows: tuple[tuple[str | Math, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG figure; ``name`` is a file-name stem unique within the document."""

    name: str
    png: bytes = field(repr=False)
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Note:
    """A remark set apart from the text (for example: plots were skipped)."""

    text: str


Block = Heading | Paragraph | MathBlock | Table | Image | Note
