"""HTML renderer: ONE self-contained file that opens offline.

No scripts, no fonts, no network: the style sheet is inline, figures are embedded as
base64 ``data:`` URIs, and formulas are presentation MathML from SymPy's printer (every
current browser renders it natively); a formula without MathML is shown as readable
plain text, with its LaTeX in the ``title`` tooltip. All text, including names, is
escaped with ``html.escape``.

>>> from gradcheck.reference.document import Heading
>>> "&lt;script&gt;" in render_document([Heading(2, "<script>")], title="t")
True
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from gradcheck.reference.document import (
    Block,
    Heading,
    Image,
    Math,
    MathBlock,
    Note,
    Paragraph,
    Table,
)

__all__ = ["render_document"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
math[display=block] { margin: 0.4rem 0 0.8rem 1.5rem; overflow-x: auto; overflow-y: hidden; padding: 0.1rem 0; max-width: 100%; }
.label { color: #555; font-style: italic; font-size: 0.9rem; }
.note { border-left: 4px solid #d90; background: #fff8e5; padding: 0.4rem 0.8rem; }
table { border-collapse: collapse; margin: 0.6rem 0; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
figure { margin: 0.6rem 0; } figcaption { color: #555; font-size: 0.9rem; }
code.formula { white-space: pre-wrap; }
"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _math(m: Math, display: bool) -> str:
    if m.mathml is not None:
        mode = "block" if display else "inline"
        return f'<math display="{mode}" title="{_esc(m.latex)}"><mrow>{m.mathml}</mrow></math>'
    formula = f'<code class="formula" title="{_esc(m.latex)}">{_esc(m.text)}</code>'
    return f"<div>{formula}</div>" if display else formula


def _inline(part: str | Math) -> str:
    return _math(part, display=False) if isinstance(part, Math) else _esc(part)


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{_esc(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{_esc(block.text)}</h{block.level}>"
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
    raise TypeError(f"render_html: unknown block type {type(block).__name__}")


def render_document(blocks: Sequence[Block], *, title: str) -> str:
    """A complete HTML5 document with ``blocks`` as its body."""
    body = "\n".join(_block(b) for b in blocks)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{_esc(title)}</h1>\n{body}\n</body>\n</html>\n")
