"""The derivation report in all three formats: structure, every name present, escaping,
atomic writes, plots skipped without matplotlib, and the ``gradcheck report`` options."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys

import pytest
import sympy as sp

from gradcheck.models.activations import ACTIVATIONS
from gradcheck.reference import render_md, render_tex
from gradcheck.reference import report as report_module
from gradcheck.reference.document import Image
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_LOSSES, ExactActivation, y, z
from gradcheck.reference.report import (
    NetworkSpec,
    build_report,
    format_for_path,
    render,
    write_atomic,
    write_report,
)
from gradcheck.reference.report_cli import main
from tests.support.names import UNKNOWN_ACTIVATION, UNKNOWN_LOSS

HOSTILE = "<script>alert('x')</script> & 100% $x_1$ | *b* {c} \\d #e"


@pytest.fixture(scope="module")
def full_report():
    return build_report(plots=False)


@pytest.fixture(scope="module")
def rendered(full_report):
    return {fmt: render(full_report, fmt) for fmt in ("md", "html", "tex")}


def test_every_name_has_a_section_in_every_format(rendered):
    for name in [*EXACT_ACTIVATIONS, *EXACT_LOSSES]:
        assert f"### {render_md.escape(name)}\n" in rendered["md"], name
        assert f">{name}</h3>" in rendered["html"], name
        assert f"\\subsection{{{render_tex.escape(name)}}}" in rendered["tex"], name


def test_report_contains_the_teaching_sections(rendered):
    md = rendered["md"]
    for anchor in ("notation", "single-neuron", "activations", "identities", "losses", "layers",
                   "backprop", "backprop-derivation", "backprop-output", "step-size", "summary"):
        assert f'id="{anchor}"' in rendered["html"], anchor
    assert r"\left(t - y\right)" in md  # dE/dw = −x (t − y) y (1 − y), generated
    assert "0.W: (64, 16)" in md and "4.W: (16, 10)" in md  # shapes, layer by layer
    assert "Plots were skipped (--no-plots)." in md
    assert "\\tableofcontents" in rendered["tex"] and "**Contents**" in md


def _models_layers() -> list[str]:
    import inspect

    import gradcheck.models as models
    return [name for name in models.__all__
            if inspect.isclass(getattr(models, name)) and hasattr(getattr(models, name), "backward")
            and name not in ("Sequential", "Loss")]  # the container (its L2: row "L2"), losses


def test_every_models_layer_has_a_section_in_every_format(rendered):
    from gradcheck.reference.layers import LAYERS
    names = [*_models_layers(), "L2"]
    assert sorted(names) == sorted(LAYERS)
    for name in names:
        row = LAYERS[name]
        assert f"### {render_md.escape(row.title)}\n" in rendered["md"], name
        assert f'<h3 id="layer-{name}">' in rendered["html"], name
        assert f"\\subsection{{{render_tex.escape(row.title)}}}" in rendered["tex"], name


def test_every_layer_section_has_forward_backward_and_three_way_evidence(full_report):
    from gradcheck.reference.document import Heading, MathBlock, Table
    blocks = list(full_report.blocks)
    starts = [i for i, b in enumerate(blocks) if isinstance(b, Heading)
              and b.anchor.startswith("layer-")]
    for i in starts:
        end = next(j for j in range(i + 1, len(blocks)) if isinstance(blocks[j], Heading))
        section = blocks[i:end]
        labels = [lab for b in section if isinstance(b, MathBlock) for lab in b.labels]
        assert any(lab.startswith("forward") for lab in labels), blocks[i].anchor
        assert any(lab.startswith("backward") for lab in labels), blocks[i].anchor
        table = next(b for b in section if isinstance(b, Table))
        assert table.header[2:] == ("NumPy vs exact", "finite differences vs exact")
        for row in table.rows:  # NumPy at rounding level, finite differences near 1e-10
            assert float(row[2]) < 1e-13 and float(row[3]) < 1e-7, (blocks[i].anchor, row)


def _math_elements(html: str):
    from xml.etree import ElementTree as ET
    for element in re.findall(r"<math .*?</math>", html, flags=re.S):
        yield ET.fromstring(element)


NS = "{http://www.w3.org/1998/Math/MathML}"


def test_no_html_derivative_lacks_brackets_around_a_compound_argument(rendered):
    checked = 0
    for root in _math_elements(rendered["html"]):
        for parent in root.iter():
            children = list(parent)
            for k, child in enumerate(children[:-1]):
                if child.tag != f"{NS}mfrac":
                    continue
                top = "".join(child[0].itertext())
                if top not in ("d", "∂"):
                    continue
                following = children[k + 1]
                checked += 1
                simple = following.tag in (f"{NS}mi", f"{NS}mn", f"{NS}msup", f"{NS}msub",
                                           f"{NS}mfrac")  # a fraction is one unit
                simple |= following.tag == f"{NS}mo" and (following.text or "").isalpha()
                fenced = following.tag == f"{NS}mrow" and len(following) and (
                    following[0].get("form") == "prefix"
                    or (following[0].tag == f"{NS}mrow" and len(following[0])
                        and following[0][0].get("form") == "prefix")
                    or following[0].tag == f"{NS}mi")  # f(z): a function applied
                assert simple or fenced, ET_text(following)
    assert checked > 50


def ET_text(element) -> str:
    from xml.etree import ElementTree as ET
    return ET.tostring(element, encoding="unicode")[:300]


GREEK_WORDS = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "lambda", "mu",
               "sigma", "phi", "Phi", "ell", "theta", "pi", "partial", "nabla", "odot"}


def test_no_greek_letter_or_ell_is_printed_as_a_word(rendered):
    words = {"".join(e.itertext()) for root in _math_elements(rendered["html"])
             for e in root.iter() if e.tag in (f"{NS}mi", f"{NS}mtext")}
    assert not words & GREEK_WORDS, words & GREEK_WORDS
    html = rendered["html"]
    assert "<mi>Φ</mi>" in html and "<mi>ϕ</mi>" in html and "<mi>σ</mi>" in html
    assert "<mi>ℓ</mi>" in html
    assert "&dd;" not in html and "&ee;" not in html  # no double-struck d and e


def test_markdown_inline_math_avoids_what_github_mangles(rendered):
    md = rendered["md"]
    without_blocks = re.sub(r"```math\n.*?\n```", "", md, flags=re.S)
    spans = re.findall(r"\$`([^`]*)`\$", without_blocks)
    assert len(spans) > 200
    rest = re.sub(r"\$`[^`]*`\$", "", without_blocks)
    # every other dollar is escaped text: no plain $…$ span exists to be mangled
    assert not re.search(r"(?<!\\)\$", rest)
    assert "$$" not in md
    assert any(render_md.mangled(span) for span in spans)  # ones that needed the code form


def test_contents_links_every_heading(rendered, full_report):
    from gradcheck.reference.document import Contents
    contents = next(b for b in full_report.blocks if isinstance(b, Contents))
    html = rendered["html"]
    for heading in contents.headings:
        assert f'href="#{heading.target}"' in html and f'id="{heading.target}"' in html
    assert len(contents.headings) > 40


def test_softmax_output_layer_goes_through_the_jacobian():
    cce = render(build_report(only=["tanh"], network="4-3-2:tanh:cce", plots=False), "md")
    mse = render(build_report(only=["tanh"], network="4-3-2:tanh:mse", plots=False), "md")
    ce = render(build_report(only=["tanh"], network="4-3-2:tanh:softmax_ce", plots=False), "md")
    assert r"\operatorname{diag}(a^{L}_{n}) - a^{L}_{n}" in cce
    assert r"\delta^{L}_{n} = J_{n} \nabla_{a^{L}_{n}} L" in cce
    assert r"\delta^{L}_{n} = J_{n}" not in mse and r"\delta^{L}_{n} = J_{n}" not in ce
    assert r"\operatorname{softmax}(z^{L}) - T" in ce


def test_a_deep_spec_is_checked_at_50_digits_and_too_deep_is_refused():
    from gradcheck.reference.backprop import MAX_LAYERS, MAX_SYMBOLIC_LAYERS
    deep = "-".join(["3"] * (MAX_SYMBOLIC_LAYERS + 3)) + ":gelu:huber"
    md = render(build_report(only=["gelu"], network=deep, plots=False), "md")
    assert "50-digit arithmetic" in md and "the top 3 layer(s)" in md
    with pytest.raises(ValueError, match=f"at most {MAX_LAYERS + 1} sizes"):
        NetworkSpec.parse("-".join(["2"] * (MAX_LAYERS + 2)) + ":tanh:mse")


def test_progress_is_reported_part_by_part():
    calls = []
    build_report(only=["tanh", "mse"], network="3-2:tanh:mse", plots=False,
                 progress=lambda done, total, what: calls.append((done, total, what)))
    assert [c[0] for c in calls] == list(range(len(calls)))
    assert calls[-1][0] == calls[-1][1] and calls[-1][2] == "done"
    assert any("activation tanh" in c[2] for c in calls)


def test_reports_render_as_html_in_jupyter():
    report = build_report(only=["relu"], network=None, plots=True)
    html = report._repr_html_()
    assert html.startswith('<div class="gradcheck-report">') and "<math" in html
    assert html.count('src="data:image/png;base64,') == sum(
        isinstance(b, Image) for b in report.blocks) > 0


def test_the_plots_hint_names_an_extra_that_installs_matplotlib():
    from pathlib import Path

    import tomllib
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    hint = report_module.plots_hint()
    name = pyproject["project"]["name"]
    extras = pyproject["project"]["optional-dependencies"]
    extra = re.search(rf'pip install "{name}\[(\w+)\]"', hint)[1]
    assert any(dep.startswith("matplotlib") for dep in extras[extra])


@pytest.mark.parametrize(("only", "identities"), [(["softmax"], True), (["tanh", "mse"], False)])
def test_only_softmax_selects_the_vector_valued_identities(only, identities):
    md = render(build_report(only=only, network=None, plots=False), "md")
    assert ("## Vector-valued identities" in md) is identities
    assert ("### tanh\n" in md) is ("tanh" in only)

def test_markdown_math_is_balanced_and_tables_are_rectangular(rendered):
    md = rendered["md"]
    assert md.count("```math") * 2 == md.count("```")
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            # an unescaped | inside a cell would add a column
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 4, 5, 7), line


def test_latex_is_a_complete_ascii_document_with_balanced_environments(rendered):
    tex = rendered["tex"]
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    assert tex.isascii()
    for env in set(re.findall(r"\\begin\{(\w+\*?)\}", tex)):
        assert tex.count(f"\\begin{{{env}}}") == tex.count(f"\\end{{{env}}}"), env
    body = re.sub(r"\\[{}]", "", tex)
    assert body.count("{") == body.count("}")
    for package in re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]*)\}", tex):
        assert set(package.split(",")) <= {"geometry", "amsmath", "amssymb", "graphicx"}


def test_html_is_self_contained(rendered):
    html = rendered["html"]
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html and "<link" not in html
    assert html.count("<math") == html.count("</math>") > 100


@pytest.fixture
def hostile_row(monkeypatch):
    monkeypatch.setitem(EXACT_ACTIVATIONS, HOSTILE,
                        ExactActivation(HOSTILE, sp.tanh(z), identity=1 - y**2))
    monkeypatch.setitem(ACTIVATIONS, HOSTILE, dataclasses.replace(ACTIVATIONS["tanh"],
                                                                  name=HOSTILE))
    return build_report(only=[HOSTILE], network=None, plots=True)


def test_a_hostile_name_is_escaped_in_every_format(hostile_row):
    html = render(hostile_row, "html")
    assert HOSTILE not in html and "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; 100%" in html
    md = render(hostile_row, "md")
    assert "<script>" not in md and render_md.escape(HOSTILE) in md
    assert r"\$x\_1\$ \| \*b\*" in render_md.escape(HOSTILE)
    tex = render(hostile_row, "tex")
    assert HOSTILE not in tex and render_tex.escape(HOSTILE) in tex
    assert r"100\% \$x\_1\$ \textbar{} *b* \{c\} \textbackslash{}d \#e" in tex


def test_hostile_name_figure_file_is_safe(hostile_row, tmp_path):
    written = write_report(hostile_row, tmp_path / "r.md")
    assert all(p.parent in (tmp_path, tmp_path / "r_figures") for p in written)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", p.name) for p in written)


def test_plots_are_embedded_in_html_and_linked_from_markdown(tmp_path):
    report = build_report(only=["relu"], network=None, plots=True)
    images = [b for b in report.blocks if isinstance(b, Image)]
    assert [i.name for i in images] == ["graph-neuron", "graph-dense", "activation-relu",
                                        "step-size"]
    assert all(i.png.startswith(b"\x89PNG") for i in images)
    html = tmp_path / "r.html"
    assert write_report(report, html) == [html]
    assert html.read_text().count('src="data:image/png;base64,') == 4
    md = tmp_path / "r.md"
    written = write_report(report, md)
    assert [p.name for p in written] == ["graph-neuron.png", "graph-dense.png",
                                         "activation-relu.png", "step-size.png", "r.md"]
    assert "![relu and its derivative](r_figures/activation-relu.png)" in md.read_text()


def test_without_matplotlib_the_report_says_plots_were_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    report = build_report(only=["tanh"], network=None, plots=True)
    assert "matplotlib is not installed" in (report.plots_skipped or "")
    assert not any(isinstance(b, Image) for b in report.blocks)
    assert "matplotlib is not installed" in render(report, "md")


def test_stdout_markdown_replaces_figures_by_a_note():
    report = build_report(only=["tanh"], network=None, plots=True)
    assert "Figure not included" in render(report, "md")


def test_write_is_atomic_when_rendering_fails(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old report")
    report = build_report(only=["tanh"], network=None, plots=False)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")
    monkeypatch.setattr(report_module, "render", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_report(report, target)
    assert target.read_text() == "old report"
    assert os.listdir(tmp_path) == ["report.html"]


def test_write_is_atomic_when_the_final_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.md"

    def refuse(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "x" * 10_000)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("path", "fmt", "expected"), [
    ("a.md", None, "md"), ("a.HTML", None, "html"), ("a.tex", None, "tex"),
    (None, None, "md"), ("a.txt", "html", "html")])
def test_format_follows_the_extension_unless_given(path, fmt, expected):
    assert format_for_path(path, fmt) == expected


def test_unknown_extension_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="pass --format"):
        format_for_path("report.pdf")


@pytest.mark.parametrize(("spec", "message"), [
    ("64-16", "expected SIZES:ACTIVATION:LOSS"),
    ("64-x-10:tanh:mse", "must be positive integers"),
    ("64-0-10:tanh:mse", "at least two positive sizes"),
    (f"4-2:{UNKNOWN_ACTIVATION}:mse", f"unknown activation '{UNKNOWN_ACTIVATION}'"),
    (f"4-2:tanh:{UNKNOWN_LOSS}", f"unknown loss '{UNKNOWN_LOSS}'"),
])
def test_network_specs_are_validated(spec, message):
    with pytest.raises(ValueError, match=message):
        NetworkSpec.parse(spec)


def test_cli_writes_markdown_to_stdout(capsys):
    assert main(["--only", "tanh,mse", "--network", "3-2:tanh:mse", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "### tanh" in out and "### mse" in out and "### sigmoid" not in out
    assert "Backpropagation equations for 3-2:tanh:mse" in out


def test_cli_writes_a_file_in_the_format_of_its_extension(tmp_path, capsys):
    target = tmp_path / "d.tex"
    assert main(["-o", str(target), "--only", "relu", "--network", "none", "--no-plots"]) == 0
    assert target.read_text().startswith("\\documentclass")
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--only", f"tanh,{UNKNOWN_ACTIVATION}"], f"--only: unknown name(s) '{UNKNOWN_ACTIVATION}'"),
    (["--network", "4:tanh"], "--network: network spec '4:tanh'"),
    (["-o", "x.pdf"], "cannot tell the format"),
    (["--format", "pdf"], "invalid choice: 'pdf'"),
])
def test_cli_rejects_bad_arguments_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_an_unwritable_path_with_status_2(tmp_path, capsys):
    """A folder that does not exist is bad usage, found before any work (exit status 2)."""
    missing = tmp_path / "no" / "such" / "dir" / "r.md"
    assert main(["-o", str(missing), "--only", "tanh", "--network", "none", "--no-plots"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex on this machine")
def test_latex_compiles_with_pdflatex(tmp_path):
    report = build_report(only=["selu", "softmax_ce"], network="4-3-2:tanh:cce", plots=True)
    target = tmp_path / "derivations.tex"
    write_report(report, target)
    for _ in range(2):  # twice: the table of contents is read on the second run
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                              target.name], cwd=tmp_path, capture_output=True, text=True,
                             timeout=240, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "derivations.pdf").stat().st_size > 10_000
    assert "Overfull" not in (tmp_path / "derivations.log").read_text(errors="replace")
