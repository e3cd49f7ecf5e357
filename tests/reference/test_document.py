"""The document model and the escaping of the three renderers."""

from __future__ import annotations

import pytest
import sympy as sp

from gradcheck.reference import render_html, render_md, render_tex
from gradcheck.reference.document import Heading, Math, MathBlock, Note, Paragraph, Table

z = sp.Symbol("z", real=True)
HOSTILE = "<b>&amp; x_1 | $y$ *z* σ²</b>"


def test_html_formulas_are_the_latex_converted():
    m = Math.of(sp.Derivative(1 + sp.exp(-z), z))
    html = render_html.render_document([Paragraph.of(m)], title="t")
    assert render_html.mathml(m.latex) in html
    # the brackets after d/dz survive, and e, d and minus are plain
    assert "<mo stretchy=\"false\" fence=\"true\" form=\"prefix\">(</mo>" in html
    assert "<mi>e</mi>" in html and "<mo>−</mo>" in html and "&dd;" not in html


def test_piecewise_is_a_brace_and_a_table_in_mathml():
    m = render_html.mathml(Math.of(sp.Piecewise((z, z > 0), (0, True))).latex)
    assert "<mtable>" in m and "otherwise" in m and "<mo>&gt;</mo>" in m


def test_mathml_escapes_markup():
    assert "<mo>&lt;</mo>" in render_html.mathml("a < b")


def test_long_rationals_are_shown_as_decimals_only():
    m = Math.of(sp.Rational("1.0507009873554804934193349852946") * sp.exp(z) + z / 3)
    assert "1.0507009873554804934" in m.latex and r"\frac{z}{3}" in m.latex


def test_equations_keep_their_sides_for_line_breaking():
    m = Math.chain(z, z + 1, z + 2)
    assert m.sides == ("z", "z + 1", "z + 2") and m.latex == "z = z + 1 = z + 2"


BLOCKS = [Heading(2, HOSTILE), Paragraph.of(HOSTILE, Math.of(z**2)), Note(HOSTILE),
          MathBlock((Math.of(z),), (HOSTILE,)), Table(("a|b", "c"), ((HOSTILE, Math.of(z)),))]


def test_markdown_escapes_every_text_block():
    md = render_md.render_blocks(BLOCKS)
    assert "<b>" not in md and md.count(render_md.escape(HOSTILE)) == 5
    assert "| a\\|b | c |" in md


def test_latex_escapes_every_text_block_and_stays_ascii():
    tex = render_tex.render_document(BLOCKS, title=HOSTILE)
    assert tex.isascii() and "$$" not in tex.replace("\\$", "")
    assert tex.count(render_tex.escape(HOSTILE)) == 6  # title too
    assert r"x\_1 \textbar{} \$y\$ *z* \ensuremath{\sigma}\ensuremath{^2}" in tex


def test_html_escapes_every_text_block():
    html = render_html.render_document(BLOCKS, title=HOSTILE)
    assert "<b>" not in html and "&lt;b&gt;&amp;amp; x_1" in html


@pytest.mark.parametrize("render", [render_md.render_blocks,
                                    lambda b: render_tex.render_document(b, title="t"),
                                    lambda b: render_html.render_document(b, title="t")])
def test_unknown_blocks_are_refused(render):
    with pytest.raises(TypeError, match="unknown block type"):
        render([object()])


def test_a_chain_does_not_repeat_a_form_that_did_not_change():
    import sympy as sp

    from gradcheck.reference.document import Math

    z = sp.Symbol("z")
    chain = Math.chain(sp.Derivative(sp.tanh(z), z), 1 - sp.tanh(z) ** 2, 1 - sp.tanh(z) ** 2)
    assert chain.latex.count("=") == 1
