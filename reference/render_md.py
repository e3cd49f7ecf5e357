"""Markdown renderer: GitHub-flavoured, with math in ``$…$`` and ``$$…$$``.

Plain text is escaped (Markdown punctuation and ``<``/``>``/``&``), so a name such as
``<b>x|y</b>`` prints literally. In math, ``|`` is written ``\\vert`` so that formulas
inside tables do not split cells. Images are linked by the path ``image_link`` returns
(the report writes them beside the document); when it returns ``None`` the figure is
replaced by a note.

>>> from gradcheck.reference.document import Heading
>>> render_blocks([Heading(2, "a_b")])
'## a\\\\_b\\n'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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

__all__ = ["escape", "render_blocks"]

_SPECIAL = re.compile(r"([\\`*_\[\]|$~])")
_LINE_START = re.compile(r"^([#+\-](?= )|>|\d+\.(?= ))", re.MULTILINE)


def escape(text: str) -> str:
    """Escape plain text: Markdown emphasis, links, tables, code, math (``$``), a block
    marker at a line start, and the HTML-significant ``& < >``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m[0][:-1] + "\\." if m[0][0].isdigit() else "\\" + m[0],
                           text)


def _math(m: Math) -> str:
    # GitHub math: '|' would end a table cell; '$' cannot occur in SymPy's LaTeX
    return m.latex.replace("|", r"\vert ")


def _inline(part: str | Math) -> str:
    return f"${_math(part)}$" if isinstance(part, Math) else escape(part)


def render_blocks(blocks: Sequence[Block],
                  image_link: Callable[[Image], str | None] | None = None) -> str:
    """Render ``blocks`` as Markdown text."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {escape(block.text)}\n")
        elif isinstance(block, Paragraph):
            out.append("".join(_inline(p) for p in block.parts) + "\n")
        elif isinstance(block, MathBlock):
            for i, line in enumerate(block.lines):
                if i < len(block.labels) and block.labels[i]:
                    out.append(f"*{escape(block.labels[i])}:*\n")
                out.append(f"$$\n{_math(line)}\n$$\n")
        elif isinstance(block, Table):
            if block.caption:
                out.append(f"*{escape(block.caption)}*\n")
            lines = ["| " + " | ".join(escape(h) for h in block.header) + " |",
                     "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(_inline(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines) + "\n")
        elif isinstance(block, Image):
            link = image_link(block) if image_link else None
            if link is None:
                out.append(f"> Figure not included ({escape(block.alt)}): write the report "
                           "to a file to get its figures.\n")
            else:
                out.append(f"![{escape(block.alt)}]({link})\n")
                if block.caption:
                    out.append(f"*{escape(block.caption)}*\n")
        elif isinstance(block, Note):
            out.append(f"> {escape(block.text)}\n")
        else:
            raise TypeError(f"render_md: unknown block type {type(block).__name__}")
    return "\n".join(out)
