r"""LaTeX renderer: a complete ``article`` document using only standard packages.

Packages: ``amsmath``, ``amssymb``, ``graphicx``, ``geometry`` (all in every TeX
distribution). Text is escaped (``\ & % $ # _ { } ~ ^``) and every non-ASCII character
is either mapped to its LaTeX command (Greek letters, ∂, ⊙, −, ·, ≤, sub- and
superscripts …, each in ``\ensuremath`` so neighbours never form ``$$``) or written as
``[U+XXXX]``, so pdflatex never meets an undefined character and the document needs no
font-encoding package. Images are included by
the path ``image_link`` returns; ``None`` replaces the figure by a note.

>>> escape("50% of a_b")
'50\\% of a\\_b'
"""

from __future__ import annotations

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
)

__all__ = ["escape", "render_document"]

_ASCII = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
          "|": r"\textbar{}"}
_MATH_CHARACTERS = {
    "σ": r"\sigma", "δ": r"\delta", "Σ": r"\Sigma", "ℓ": r"\ell", "∂": r"\partial",
    "⊙": r"\odot", "∇": r"\nabla", "Φ": r"\Phi", "φ": r"\phi", "λ": r"\lambda",
    "α": r"\alpha", "θ": r"\theta", "ε": r"\varepsilon", "·": r"\cdot", "×": r"\times",
    "≤": r"\le", "≥": r"\ge", "→": r"\to", "∈": r"\in", "≈": r"\approx", "±": r"\pm", "½": r"\frac12",
    "²": "^2", "³": "^3", "¹": "^1", "ᵀ": "^T", "ᴸ": "^L", "ˡ": "^l", "⁺": "^+", "⁻": "^-",
    "ₜ": "_t", "ₙ": "_n", "₀": "_0", "₁": "_1", "₊": "_+", "₋": "_-", "ₐ": "_a",
}
_UNICODE = {
    **{ch: f"\\ensuremath{{{cmd}}}" for ch, cmd in _MATH_CHARACTERS.items()},
    "−": "-", "…": r"\dots{}", "′": "'", "’": "'", "“": "``", "”": "''", "–": "--", "—": "---",
}
_UNICODE_MATH = {"−": "-", "·": r"\cdot ", "ℓ": r"\ell ", "σ": r"\sigma ", "∂": r"\partial "}


def escape(text: str) -> str:
    """Escape plain text for LaTeX; map or mark every non-ASCII character."""
    out = []
    for ch in text:
        if ch in _ASCII:
            out.append(_ASCII[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) > 127:
            out.append(f"[U+{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)


def _math(m: Math) -> str:
    latex = m.latex
    for ch, command in _UNICODE_MATH.items():
        latex = latex.replace(ch, command)
    return "".join(c if ord(c) < 128 else f"\\text{{[U+{ord(c):04X}]}}" for c in latex)


def _cell(part: str | Math) -> str:
    return f"${_math(part)}$" if isinstance(part, Math) else escape(part)


def _inline(part: str | Math) -> str:
    if not isinstance(part, Math):
        return escape(part)
    if len(part.latex) > LONG_FORMULA:  # too long for a line of text: set it apart
        return f"\n{_display(part)}\n"
    return f"${_math(part)}$"


LONG_FORMULA = 90
"""Characters of LaTeX above which an inline formula is set apart as a display."""


def _display(m: Math) -> str:
    """A displayed formula; long chains broken at ``=``; every line shrunk to fit the page."""
    lines = display_lines(m)
    fitted = "\\\\[0.3em]\n".join(f"\\fitmath{{{_math(Math(line, ''))}}}" for line in lines)
    return f"\\begin{{flushleft}}\n{fitted}\n\\end{{flushleft}}"


_SECTIONS = {1: "section*", 2: "section", 3: "subsection", 4: "subsubsection"}


def _blocks(blocks: Sequence[Block], image_link: Callable[[Image], str | None] | None) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"\\{_SECTIONS.get(block.level, 'paragraph')}{{{escape(block.text)}}}")
        elif isinstance(block, Paragraph):
            out.append("".join(_inline(p) for p in block.parts))
        elif isinstance(block, MathBlock):
            for i, line in enumerate(block.lines):
                if i < len(block.labels) and block.labels[i]:
                    out.append(f"\\noindent\\emph{{{escape(block.labels[i])}:}}")
                out.append(_display(line))
        elif isinstance(block, Table):
            spec = "l" * len(block.header)
            rows = [" & ".join(f"\\textbf{{{escape(h)}}}" for h in block.header) + r" \\ \hline"]
            rows += [" & ".join(_cell(c) for c in row) + r" \\" for row in block.rows]
            caption = f"\\emph{{{escape(block.caption)}}}\\\\\n" if block.caption else ""
            out.append(f"{caption}\\begin{{tabular}}{{{spec}}}\n" + "\n".join(rows)
                       + "\n\\end{tabular}")
        elif isinstance(block, Image):
            link = image_link(block) if image_link else None
            if link is None:
                out.append(f"\\emph{{Figure not included ({escape(block.alt)}): write the "
                           "report to a file to get its figures.}}")
            else:
                caption = f"\\\\\n\\emph{{{escape(block.caption)}}}" if block.caption else ""
                out.append(f"\\begin{{center}}\n\\includegraphics[width=0.6\\linewidth]"
                           f"{{{link}}}{caption}\n\\end{{center}}")
        elif isinstance(block, Note):
            out.append(f"\\begin{{quote}}\\emph{{{escape(block.text)}}}\\end{{quote}}")
        elif isinstance(block, Contents):
            out.append("\\tableofcontents")
        else:
            raise TypeError(f"render_tex: unknown block type {type(block).__name__}")
    return out


def render_document(blocks: Sequence[Block], *, title: str,
                    image_link: Callable[[Image], str | None] | None = None) -> str:
    """A complete LaTeX document: preamble, title, ``blocks``, ``\\end{document}``."""
    body = "\n\n".join(_blocks(blocks, image_link))
    return (
        "\\documentclass[11pt]{article}\n"
        "\\usepackage[margin=2cm]{geometry}\n"
        "\\usepackage{amsmath,amssymb}\n"
        "\\usepackage{graphicx}\n"
        "\\allowdisplaybreaks\n"
        "% a displayed formula, scaled down only if wider than the line\n"
        "\\newsavebox{\\fitbox}\n"
        "\\newcommand{\\fitmath}[1]{\\sbox{\\fitbox}{$\\displaystyle #1$}%\n"
        "  \\hspace*{1.5em}\\ifdim\\wd\\fitbox>\\dimexpr\\linewidth-1.5em\\relax\n"
        "  \\resizebox{\\dimexpr\\linewidth-1.5em\\relax}{!}{\\usebox{\\fitbox}}%\n"
        "  \\else\\usebox{\\fitbox}\\fi}\n"
        "\\setlength{\\parindent}{0pt}\n"
        "\\setlength{\\parskip}{0.5em}\n"
        f"\\title{{{escape(title)}}}\n"
        "\\date{}\n"
        "\\begin{document}\n"
        "\\maketitle\n\n"
        f"{body}\n\n"
        "\\end{document}\n"
    )
