"""The derivation report: assembles every derivation, identity, plot and number into blocks.

:func:`build_report` returns a :class:`Report` (a title and a list of document blocks);
:func:`render` turns it into Markdown, LaTeX or HTML; :func:`write_report` writes it
atomically. Contents, in order (a linked table of contents first):

1. notation: every named symbol (σ, Φ, φ, ℓ, the layer notation) defined once;
2. the single neuron ``y = f(wx)``, ``E = ½(t − y)²``: derived by SymPy, drawn as a
   computational graph, worked with numbers;
3. every activation: definition, chain-rule steps, simplified derivative, identity form,
   branch points with the convention used there, plot of ``f`` and ``f'``, evidence;
4. the vector identities (softmax Jacobian, fused gradients, squared-error conventions);
5. every loss, as for activations, with its branch points;
6. every layer and regularizer of ``gradcheck.models`` (:mod:`.layers`): forward, backward
   with shapes, three-way evidence;
7. the backpropagation equations of a network spec such as
   ``64-16-16-10:sigmoid:softmax_ce``, derived from the chain rule and verified
   (:mod:`.backprop`);
8. finite-difference error against step size and a summary table.

>>> report = build_report(only=["tanh"], network=None, plots=False)
>>> "tanh" in render(report, "md")
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sympy as sp

from gradcheck.reference import plots as plotting
from gradcheck.reference.backprop import MAX_LAYERS, NetworkSpec, backprop_section
from gradcheck.reference.derive import derive_activation, derive_loss
from gradcheck.reference.document import (
    Block,
    Contents,
    Heading,
    Image,
    Math,
    Note,
    Paragraph,
    Table,
)
from gradcheck.reference.evidence import Evidence, activation_evidence, loss_evidence
from gradcheck.reference.exact import (
    EXACT_ACTIVATIONS,
    EXACT_LOSSES,
    EXACT_VECTOR_ACTIVATIONS,
    one_sided,
    p,
    t,
)
from gradcheck.reference.layers import LAYERS, layer_blocks
from gradcheck.reference.teaching import neuron_section, notation_section, step_section
from gradcheck.reference.vector import all_identities
from gradcheck.results import serialize

__all__ = [
    "DEFAULT_NETWORK",
    "FORMATS",
    "MAX_LAYERS",
    "NetworkSpec",
    "Progress",
    "Report",
    "build_report",
    "format_for_path",
    "plots_hint",
    "render",
    "write_atomic",
    "write_report",
]

FORMATS = ("md", "html", "tex")
DEFAULT_NETWORK = "64-16-16-10:sigmoid:softmax_ce"
_EXTENSIONS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".tex": "tex"}
TITLE = "Backpropagation, derived: exact derivatives with the evidence"

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: called before each part of a long build."""


def plots_hint() -> str:
    """The install command for figures, read from this distribution's metadata.

    >>> "[plots]" in plots_hint()
    True
    """
    from importlib import metadata
    name, extra = "gradcheck", "plots"
    try:
        meta = metadata.metadata("gradcheck")
        name = meta["Name"] or name
        extras = meta.get_all("Provides-Extra") or []
        extra = next((e for e in extras if e == "plots"), extra)
    except metadata.PackageNotFoundError:
        pass
    return (f'pip install "{name}[{extra}]" (from a checkout: pip install -e ".[{extra}]"; '
            "or just pip install matplotlib)")


@dataclass(frozen=True)
class Report:
    """A built report: ``title`` and ``blocks``; ``plots_skipped`` says why, if they were."""

    title: str
    blocks: tuple[Block, ...]
    plots_skipped: str | None

    def _repr_markdown_(self) -> str:  # Jupyter: the Markdown (figures only in the HTML)
        return render(self, "md")

    def _repr_html_(self) -> str:  # Jupyter prefers this: typeset math, figures embedded
        from gradcheck.reference.render_html import render_fragment
        return render_fragment(self.blocks, title=self.title)


def _slug(name: str) -> str:
    """A file-name-safe form of a row name (figure files are named after rows)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def _select(only: Iterable[str] | None) -> tuple[list[str], list[str], bool]:
    """``(activations, losses, vector)`` named by ``only``, in table order; ``vector``:
    whether the vector-valued identities (``softmax``) are included."""
    if only is None:
        return list(EXACT_ACTIVATIONS), list(EXACT_LOSSES), True
    names = list(only)
    known = {*EXACT_ACTIVATIONS, *EXACT_VECTOR_ACTIVATIONS, *EXACT_LOSSES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown name(s) {', '.join(map(repr, unknown))} in --only; known "
                         f"activations: {', '.join(EXACT_ACTIVATIONS)}; vector-valued: "
                         f"{', '.join(EXACT_VECTOR_ACTIVATIONS)}; known losses: "
                         f"{', '.join(EXACT_LOSSES)}")
    return ([n for n in EXACT_ACTIVATIONS if n in names], [n for n in EXACT_LOSSES if n in names],
            any(n in EXACT_VECTOR_ACTIVATIONS for n in names))


def _evidence_paragraph(ev: Evidence) -> Paragraph:
    return Paragraph.of(
        f"Numeric evidence over {ev.points} points ({ev.where}): the hand-written NumPy "
        f"derivative of gradcheck.models differs from the exact one by at most "
        f"{ev.numpy_max_abs:.1e} (relative {ev.numpy_max_rel:.1e}); central finite "
        f"differences of the NumPy forward by at most {ev.fd_max_abs:.1e} "
        f"(relative {ev.fd_max_rel:.1e}).")


def _loss_kinks(name: str) -> list[Block]:
    """Branch points of an elementwise loss, in the residual ``r = p − t``."""
    row = EXACT_LOSSES[name]
    if row.element is None or not row.element.has(sp.Piecewise):
        return []
    r = sp.Symbol("r", real=True)
    in_r = row.element.subs(p, r + t)
    if in_r.has(t):
        return []
    in_r = sp.piecewise_fold(in_r.rewrite(sp.Piecewise))
    points = sorted({sol for _, cond in in_r.args if cond != sp.true
                     for rel in cond.atoms(sp.Rel) for sol in sp.solve(sp.Eq(rel.lhs, rel.rhs), r)
                     if sol.is_real})
    rows = []
    slope = sp.diff(in_r, r)
    for at in points:
        left, right = one_sided(in_r, r, at)
        if one_sided(slope, r, at)[0] == one_sided(slope, r, at)[1] and left == right:
            continue  # not a branch point at all (|r| rewritten at 0 inside one branch)
        rows.append((Math.of(sp.Eq(r, at, evaluate=False)), Math.of(left), Math.of(right),
                     "yes (C¹: only the second derivative jumps)" if left == right
                     else "no (kink)"))
    return [Paragraph.parse("Branch points, in the residual $r = p - t$:"),
            Table(("branch point", "left derivative", "right derivative", "differentiable"),
                  tuple(rows))]


def _row_section(kind: str, name: str, plots: bool,
                 evidence: dict[str, Evidence]) -> list[Block]:
    derivation = derive_activation(name) if kind == "activation" else derive_loss(name)
    blocks = derivation.blocks()
    if kind == "loss":  # the per-sample sum over outputs, before the one-entry derivation
        ell = sp.Function("ell")(sp.Symbol("p"), sp.Symbol("t"))
        blocks.insert(1, Paragraph.of("Per sample, summed over the K outputs: ",
                                      Math.equation(ell, EXACT_LOSSES[name].summed())))
        blocks += _loss_kinks(name)
    if plots and kind == "activation":
        png = plotting.activation_plot(name)
        if png is not None:
            blocks.append(Image(f"activation-{_slug(name)}", png,
                                alt=f"{name} and its derivative",
                                caption=f"{name}: f (solid) and SymPy's f' (dashed)"))
    ev = activation_evidence(name) if kind == "activation" else loss_evidence(name)
    evidence[name] = ev
    blocks.append(_evidence_paragraph(ev))
    return blocks


def _identities_section() -> list[Block]:
    softmax = EXACT_VECTOR_ACTIVATIONS["softmax"]
    out: list[Block] = [Heading(2, "Vector-valued identities", anchor="identities"),
                        Paragraph.of("Softmax maps a vector to probabilities: ",
                                     Math.equation(sp.Indexed("s", sp.Symbol("i")),
                                                   softmax.display),
                                     ". Its derivative is a matrix, and the losses built on it "
                                     "and on the sigmoid simplify when differentiated together.")]
    for identity in all_identities():
        out += identity.blocks()
    return out


def _summary(evidence: dict[str, Evidence]) -> list[Block]:
    if not evidence:
        return []
    return [Heading(2, "Summary of the numeric evidence", anchor="summary"),
            Table(("name", "points", "NumPy max abs", "NumPy max rel", "FD max abs",
                   "FD max rel"), tuple(ev.row() for ev in evidence.values()),
                  caption="errors against the exact (SymPy) derivative; for layers, the "
                          "relative errors are max|difference| / max|exact| per tensor")]


def _parts(activations: list[str], losses: list[str], vector: bool, layers: bool,
           spec: NetworkSpec | None, plots: bool, evidence: dict[str, Evidence]
           ) -> list[tuple[str, Callable[[], list[Block]]]]:
    """The report as named parts, in order, each a thunk (so progress can be shown)."""
    parts: list[tuple[str, Callable[[], list[Block]]]] = [
        ("notation", notation_section),
        ("the single neuron", lambda: neuron_section(
            "sigmoid" if "sigmoid" in activations or not activations else activations[0],
            plots))]
    if activations:
        parts.append(("activations", lambda: [Heading(2, "Activations", anchor="activations")]))
        parts += [(f"activation {n}", partial(_row_section, "activation", n, plots, evidence))
                  for n in activations]
    if vector:
        parts.append(("vector identities", _identities_section))
    if losses:
        parts.append(("losses", lambda: [
            Heading(2, "Losses", anchor="losses"),
            Paragraph.parse("Each loss is per sample, summed over the outputs; the model's "
                            "loss is its mean over the batch. Derivatives are with respect "
                            "to one prediction entry $p$ (one logit $x_1$ of three for "
                            "softmax_ce).")]))
        parts += [(f"loss {n}", partial(_row_section, "loss", n, False, evidence))
                  for n in losses]
    if layers:
        parts.append(("layers", lambda: [
            Heading(2, "Layers and regularizers", anchor="layers"),
            Paragraph.parse("Every layer of gradcheck.models, and the L2 penalty of "
                            r"Sequential. $G = \partial L / \partial Y$ is the gradient "
                            "arriving from above, shaped like the output $Y$; each backward "
                            r"returns $\partial L / \partial X$ and fills the parameter "
                            "gradients.")]))

        def layer(row_name: str) -> list[Block]:
            blocks, ev = layer_blocks(LAYERS[row_name])
            evidence[row_name] = Evidence(row_name, "layer", ev.entries, 0.0, ev.numpy_error,
                                          0.0, ev.fd_error, ev.instance)
            return blocks
        parts += [(f"layer {n}", partial(layer, n)) for n in LAYERS]
    if spec is not None:
        parts.append((f"backpropagation for {spec}", lambda: backprop_section(spec)))
    parts.append(("step size", lambda: step_section(plots)))
    return parts


def build_report(*, only: Iterable[str] | None = None, network: str | None = DEFAULT_NETWORK,
                 plots: bool = True, progress: Progress | None = None) -> Report:
    """Assemble the report.

    Parameters
    ----------
    only : names of activations and losses to include (default: all, with every layer);
        the vector-valued identities (softmax Jacobian, fused gradients) when it names
        ``softmax`` or is None.
    network : a spec ``SIZES:ACTIVATION:LOSS`` for the backpropagation section, or ``None``;
        at most :data:`MAX_LAYERS` layers.
    plots : draw figures (needs matplotlib; without it the report says they were skipped).
    progress : called as ``progress(done, total, what)`` before each part.
    """
    activations, losses, vector = _select(only)
    spec = NetworkSpec.parse(network) if network is not None else None
    skipped = None
    if not plots:
        skipped = "Plots were skipped (--no-plots)."
    elif not plotting.available():
        skipped = f"Plots were skipped: matplotlib is not installed; {plots_hint()}."
        plots = False
    evidence: dict[str, Evidence] = {}
    parts = _parts(activations, losses, vector, only is None, spec, plots, evidence)
    body: list[Block] = []
    for done, (what, make) in enumerate(parts):
        if progress is not None:
            progress(done, len(parts), what)
        body += make()
    body += _summary(evidence)
    if progress is not None:
        progress(len(parts), len(parts), "done")
    intro: list[Block] = [Paragraph.of(
        "Every activation, loss and layer of gradcheck is derived here by SymPy, step by "
        "step, and held against the two other sources of truth: the hand-written NumPy "
        "derivatives of gradcheck.models and finite differences of the NumPy forward "
        "passes.")]
    if skipped:
        intro.append(Note(skipped))
    headings = tuple(b for b in body if isinstance(b, Heading) and b.level in (2, 3))
    return Report(TITLE, (*intro, Contents(headings), *body), skipped)


def format_for_path(path: str | os.PathLike | None, fmt: str | None = None) -> str:
    """The output format: ``fmt`` if given, else from the file extension, else ``md``."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if path is None:
        return "md"
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ValueError(f"cannot tell the format from {str(path)!r}: use a file ending in "
                         f"{', '.join(_EXTENSIONS)} or pass --format {{md,html,tex}}")
    return _EXTENSIONS[suffix]


def render(report: Report, fmt: str,
           image_link: Callable[[Image], str | None] | None = None) -> str:
    """The report as text in ``fmt`` (``md``, ``html`` or ``tex``)."""
    from gradcheck.reference import render_html, render_md, render_tex
    if fmt == "md":
        return f"# {render_md.escape(report.title)}\n\n" + render_md.render_blocks(
            report.blocks, image_link)
    if fmt == "tex":
        return render_tex.render_document(report.blocks, title=report.title,
                                          image_link=image_link)
    if fmt == "html":
        return render_html.render_document(report.blocks, title=report.title)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (gradcheck's one writer: regular files only).

    A failure at any point leaves ``path`` as it was (absent or the old content) and no
    temporary file behind; see :mod:`gradcheck.results.serialize` for the path rules.
    """
    serialize.write_atomic(path, data, what="the derivation report")


def write_report(report: Report, path: str | os.PathLike, fmt: str | None = None) -> list[Path]:
    """Render and write ``report`` to ``path``; returns every file written.

    HTML embeds its figures. Markdown and LaTeX link them: they go to
    ``<stem>_figures/<name>.png`` beside the document, each written atomically, before the
    document itself, which is written last and atomically, so a failure never leaves a
    half-written report.
    """
    fmt = format_for_path(path, fmt)
    # regular files only, in an existing folder, links followed (OutputPathError otherwise)
    path = serialize.check_output_path(path, what="the derivation report") or Path(path)
    written: list[Path] = []
    images = [b for b in report.blocks if isinstance(b, Image)]
    if fmt in ("md", "tex") and images:
        folder = path.parent / f"{path.stem}_figures"
        folder.mkdir(exist_ok=True)
        for image in images:
            target = folder / f"{image.name}.png"
            write_atomic(target, image.png)
            written.append(target)

        def image_link(image: Image) -> str:
            return f"{folder.name}/{image.name}.png"
        text = render(report, fmt, image_link)
    else:
        text = render(report, fmt)
    write_atomic(path, text)
    return [*written, path]
