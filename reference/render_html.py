"""HTML renderer: ONE self-contained file that opens offline.

No scripts, no fonts, no network: the style sheet is inline, figures are embedded as
base64 ``data:`` URIs, and every formula is the LaTeX the ``.tex`` output prints,
converted to presentation MathML by ``latex2mathml`` (every current browser renders
MathML natively), so the HTML and the LaTeX cannot disagree. Long displayed chains are
broken at their equals signs (:func:`~gradcheck.reference.document.display_lines`) and
a displayed formula still too wide scrolls inside its own box instead of widening the
page. All text, including names, is escaped with ``html.escape``.

>>> from gradcheck.reference.document import Heading
>>> "&lt;script&gt;" in render_document([Heading(2, "<script>")], title="t")
True
>>> "<mi>σ</mi>" in mathml(r"\\sigma(z)")
True
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from functools import lru_cache
from xml.etree import ElementTree as ET

from latex2mathml.converter import convert

from gradcheck.reference.document import (
    Block,
    Contents,
    Heading,
    Image,
    Math,
    MathBlock,
    Note,
    Paragraph,
    Table,
    display_lines,
)

__all__ = ["mathml", "render_document", "render_fragment"]

_STYLE = """
.gradcheck-report { font-family: system-ui, sans-serif; line-height: 1.5; color: #222; }
body { max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
.gradcheck-report h1, .gradcheck-report h2, .gradcheck-report h3 { line-height: 1.2; }
.gradcheck-report h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
.gradcheck-report .display { margin: 0.3rem 0 0.6rem 1.5rem; overflow-x: auto;
  overflow-y: hidden; max-width: 100%; padding: 0.1rem 0; }
.gradcheck-report math { font-size: 1.08em; }
.gradcheck-report .display math { display: inline math; math-style: normal; }
.gradcheck-report .label { color: #555; font-style: italic; font-size: 0.9rem; }
.gradcheck-report .note { border-left: 4px solid #d90; background: #fff8e5;
  padding: 0.4rem 0.8rem; }
.gradcheck-report table { border-collapse: collapse; margin: 0.6rem 0; display: block;
  overflow-x: auto; max-width: 100%; }
.gradcheck-report td, .gradcheck-report th { border: 1px solid #ccc; padding: 0.2rem 0.6rem;
  text-align: left; }
.gradcheck-report figure { margin: 0.6rem 0; }
.gradcheck-report figcaption { color: #555; font-size: 0.9rem; }
.gradcheck-report nav ul { margin: 0.2rem 0; }
"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


@lru_cache(maxsize=4096)
def mathml(latex: str, display: bool = False) -> str:
    """The ``<math>`` element of ``latex`` (``display`` block or inline)."""
    return _tight_fences(convert(latex, display="block" if display else "inline"))


_MATHML_NS = "http://www.w3.org/1998/Math/MathML"
_TALL = {f"{{{_MATHML_NS}}}{tag}" for tag in ("mfrac", "mtable", "munderover", "msubsup",
                                                 "munder", "mover", "msqrt", "mroot")}
ET.register_namespace("", _MATHML_NS)


def _tight_fences(element: str) -> str:
    """Brackets around flat content drawn at their natural size.

    latex2mathml marks every ``\\left( … \\right)`` stretchy; Chromium then draws even
    ``f(z)`` as ``f ( z )``. A fence pair keeps ``stretchy`` only when its content is
    tall (a fraction, a matrix, a sum with limits, a root).
    """
    root = ET.fromstring(element)
    for row in root.iter(f"{{{_MATHML_NS}}}mrow"):
        children = list(row)
        if len(children) >= 2 and children[0].get("form") == "prefix" \
                and children[-1].get("form") == "postfix":
            tall = any(node.tag in _TALL for child in children[1:-1] for node in child.iter())
            if not tall:
                for fence in (children[0], children[-1]):
                    fence.set("stretchy", "false")
    return ET.tostring(root, encoding="unicode")


def _math(m: Math, display: bool) -> str:
    if not display:
        return mathml(m.latex)
    return "\n".join(f'<div class="display">{mathml(line, True)}</div>'
                     for line in display_lines(m))


def _inline(part: str | Math) -> str:
    return _math(part, display=False) if isinstance(part, Math) else _esc(part)


def _contents(block: Contents) -> str:
    out, depth = ["<nav><h2>Contents</h2>"], 0
    for heading in block.headings:
        level = heading.level - 1
        while depth < level:
            out.append("<ul>")
            depth += 1
        while depth > level:
            out.append("</ul>")
            depth -= 1
        out.append(f'<li><a href="#{_esc(heading.target)}">{_esc(heading.text)}</a></li>')
    out.append("</ul>" * depth + "</nav>")
    return "".join(out)


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return (f'<h{block.level} id="{_esc(block.target)}">{_esc(block.text)}'
                f"</h{block.level}>")
    if isinstance(block, Paragraph):
        return "<p>" + "".join(_inline(p) for p in block.parts) + "</p>"
    if isinstance(block, MathBlock):
        parts = []
        for i, line in enumerate(block.lines):
            if i < len(block.labels) and block.labels[i]:
                parts.append(f'<div class="label">{_esc(block.labels[i])}:</div>')
            parts.append(_math(line, display=True))
        return "\n".join(parts)
    if isinstance(block, Table):
        head = "".join(f"<th>{_esc(h)}</th>" for h in block.header)
        rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        caption = f"<caption>{_esc(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{_esc(block.caption)}</figcaption>" if block.caption else ""
        return (f'<figure><img alt="{_esc(block.alt)}" src="data:image/png;base64,{data}">'
                f"{caption}</figure>")
    if isinstance(block, Note):
        return f'<p class="note">{_esc(block.text)}</p>'
    if isinstance(block, Contents):
        return _contents(block)
    raise TypeError(f"render_html: unknown block type {type(block).__name__}")


def render_fragment(blocks: Sequence[Block], *, title: str) -> str:
    """``blocks`` as one ``<div>`` with its own style sheet (for Jupyter's ``_repr_html_``)."""
    body = "\n".join(_block(b) for b in blocks)
    return (f'<div class="gradcheck-report">\n<style>{_STYLE}</style>\n'
            f"<h1>{_esc(title)}</h1>\n{body}\n</div>\n")


def render_document(blocks: Sequence[Block], *, title: str) -> str:
    """A complete HTML5 document with ``blocks`` as its body."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_esc(title)}</title>\n</head>\n<body>\n"
            f"{render_fragment(blocks, title=title)}</body>\n</html>\n")
