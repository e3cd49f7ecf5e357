"""The neutral document model shared by the Markdown, LaTeX and HTML renderers.

A report is a flat list of blocks. Derivations and the report builder produce blocks;
``render_md``, ``render_tex`` and ``render_html`` turn the same list into text, so the
three formats never disagree about content. Text in blocks is plain (renderers escape
it); mathematics is carried as a :class:`Math` holding LaTeX only — the one source of
truth of every formula: the LaTeX output prints it, the Markdown output hands it to
GitHub's math renderer, and the HTML output converts the very same string to MathML
(``latex2mathml``). Long displayed chains ``a = b = c`` are broken at their equals signs
by :func:`display_lines`, the same way in every format.

>>> import sympy as sp
>>> Math.of(sp.Symbol("x") ** 2).latex
'x^{2}'
>>> Paragraph.parse("a $x^2$ b").parts[1].latex
'x^2'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["LONG_FORMULA", "Block", "Contents", "Heading", "Image", "Math", "MathBlock", "Note",
           "Paragraph", "Table", "display_lines", "slug"]


LONG_RATIONAL = 24
"""Rationals with a longer decimal form (SELU's exact constants) are shown as 20-digit floats."""
LONG_FORMULA = 90
"""Characters of LaTeX above which a displayed chain ``a = b = c`` is set one side per line."""


def _shorten(expr: sp.Basic) -> sp.Basic:
    """Display form of ``expr``: long exact rationals as 20-digit decimals."""
    long = {r: sp.Float(r, 20) for r in expr.atoms(sp.Rational) if len(str(r)) > LONG_RATIONAL}
    return expr.xreplace(long) if long else expr


def slug(text: str) -> str:
    """An anchor from heading text: lower case, letters, digits, ``-`` and ``_`` kept.

    This is GitHub's rule for heading anchors, so Markdown links match them.

    >>> slug("Backpropagation equations for 4-3:tanh:mse")
    'backpropagation-equations-for-4-3tanhmse'
    """
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@dataclass(frozen=True)
class Math:
    """One formula as LaTeX; ``text`` is a plain-text reading (tooltips, alt text).

    ``sides`` holds the LaTeX of each side of an equation or chain ``a = b = c`` so that a
    renderer may break a long formula at its equals signs.
    """

    latex: str
    text: str = ""
    sides: tuple[str, ...] = ()

    @classmethod
    def of(cls, expr: sp.Basic) -> Math:
        """Build from a SymPy object (printers: ``latex`` and ``sstr``)."""
        expr = _shorten(expr)
        return cls(latex=sp.latex(expr), text=sp.sstr(expr))

    @classmethod
    def tex(cls, latex: str, *sides: str) -> Math:
        """A hand-written formula: ``Math.tex(r"\\delta^l = \\dots")``; ``sides`` optional."""
        return cls(latex=latex, text=latex, sides=tuple(sides))

    @classmethod
    def equation(cls, lhs: sp.Basic, rhs: sp.Basic) -> Math:
        """``lhs = rhs`` without SymPy evaluating the equality."""
        left, right = cls.of(lhs), cls.of(rhs)
        return cls(latex=f"{left.latex} = {right.latex}", text=f"{left.text} = {right.text}",
                   sides=(left.latex, right.latex))

    @classmethod
    def chain(cls, *parts: sp.Basic) -> Math:
        """``a = b = c …``: the same quantity written several ways (repeats dropped)."""
        distinct = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
        pieces = [cls.of(part) for part in distinct]
        return cls(latex=" = ".join(m.latex for m in pieces),
                   text=" = ".join(m.text for m in pieces),
                   sides=tuple(m.latex for m in pieces))


def display_lines(m: Math, limit: int = LONG_FORMULA) -> list[str]:
    """The lines a displayed ``m`` is set on: one, or a long chain broken at each ``=``.

    >>> display_lines(Math.tex("a = b = c", "a", "b", "c"), limit=3)
    ['a = b', '= c']
    """
    if len(m.sides) > 2 and len(m.latex) > limit:
        return [f"{m.sides[0]} = {m.sides[1]}", *(f"= {side}" for side in m.sides[2:])]
    if len(m.sides) == 2 and len(m.latex) > 2 * limit:
        return [f"{m.sides[0]}", f"= {m.sides[1]}"]
    return [m.latex]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""

    @property
    def target(self) -> str:
        """The anchor links point to: ``anchor`` if set, else :func:`slug` of the text."""
        return self.anchor or slug(self.text)


_INLINE_MATH = re.compile(r"\$([^$]+)\$")


@dataclass(frozen=True)
class Paragraph:
    """Running text; ``parts`` mixes plain strings and inline :class:`Math`."""

    parts: tuple[str | Math, ...]

    @classmethod
    def of(cls, *parts: str | Math) -> Paragraph:
        """``Paragraph.of("text ", Math.of(x), " more text")``."""
        return cls(tuple(parts))

    @classmethod
    def parse(cls, text: str) -> Paragraph:
        """Prose with inline LaTeX between ``$…$``: ``Paragraph.parse("layer $l$ …")``.

        Only for the report's own sentences: names from tables go through :meth:`of`.
        """
        parts: list[str | Math] = []
        for i, piece in enumerate(_INLINE_MATH.split(text)):
            if i % 2:
                parts.append(Math.tex(piece))
            elif piece:
                parts.append(piece)
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


@dataclass(frozen=True)
class Contents:
    """A table of contents: the document's headings down to ``depth``, linked."""

    headings: tuple[Heading, ...]


Block = Heading | Paragraph | MathBlock | Table | Image | Note | Contents
