"""Markdown renderer: GitHub-flavoured, with math that GitHub's Markdown cannot mangle.

GitHub runs its Markdown parser before the math renderer, so inside ``$…$`` a ``\\\\``
becomes ``\\``, ``\\:`` becomes ``:``, and ``}_{`` or two underscores start emphasis.
Inline math is therefore written `` $`…`$ `` (GitHub's code-span form, passed to the math
renderer untouched) and displayed math as a fenced ```` ```math ```` block; a long chain
is set as an ``aligned`` environment broken at its equals signs, like the other formats.

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
    Contents,
    Heading,
    Image,
    Math,
    MathBlock,
    Note,
    Paragraph,
    Table,
    display_lines,
    slug,
)

__all__ = ["GITHUB_MANGLED", "escape", "mangled", "render_blocks"]

GITHUB_MANGLED = (r"\\", r"\:", r"\,", r"\;", r"\!", r"\{", r"\}", "}_{", "_", "*")
"""Character sequences that GitHub's Markdown changes inside a plain ``$…$`` span."""

_SPECIAL = re.compile(r"([\\`*_\[\]|$~])")
_LINE_START = re.compile(r"^([#+\-](?= )|>|\d+\.(?= ))", re.MULTILINE)


def escape(text: str) -> str:
    """Escape plain text: Markdown emphasis, links, tables, code, math (``$``), a block
    marker at a line start, and the HTML-significant ``& < >``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m[0][:-1] + "\\." if m[0][0].isdigit() else "\\" + m[0],
                           text)


def mangled(latex: str) -> list[str]:
    """The sequences of :data:`GITHUB_MANGLED` in ``latex`` (empty: safe as plain ``$…$``).

    >>> mangled(r"a_{1}^{2}"), mangled(r"x_{i}_{j}")
    (['_'], ['}_{', '_'])
    """
    return [pattern for pattern in GITHUB_MANGLED if pattern in latex]


def _math(latex: str) -> str:
    # '|' would end a table cell; a backtick would end the code span
    return latex.replace("|", r"\vert ").replace("`", "'")


def _inline(part: str | Math) -> str:
    if not isinstance(part, Math):
        return escape(part)
    return f"$`{_math(part.latex)}`$"


def _display(m: Math) -> str:
    lines = display_lines(m)
    if len(lines) == 1:
        body = _math(lines[0])
    else:
        rows = [lines[0].replace(" = ", " &= ", 1), *(f"&{line}" for line in lines[1:])]
        body = "\\begin{aligned}\n" + " \\\\\n".join(_math(r) for r in rows) + "\n\\end{aligned}"
    return f"```math\n{body}\n```\n"


def _contents(block: Contents) -> str:
    seen: dict[str, int] = {}
    lines = []
    for heading in block.headings:
        anchor = slug(heading.text)  # GitHub's own anchors; repeats get -1, -2, …
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        if count:
            anchor = f"{anchor}-{count}"
        lines.append(f"{'  ' * (heading.level - 2)}- [{escape(heading.text)}](#{anchor})")
    return "**Contents**\n\n" + "\n".join(lines) + "\n"


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
                out.append(_display(line))
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
        elif isinstance(block, Contents):
            out.append(_contents(block))
        else:
            raise TypeError(f"render_md: unknown block type {type(block).__name__}")
    return "\n".join(out)
