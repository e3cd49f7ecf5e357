"""The axis letters a layer may declare in ``layouts``, and their validation.

A layer may declare ``layouts = {"x": "NCHW", "W": "OIHW"}``: one letter per axis of each
tensor, so the diagnosis knows which axes are batch, channels, space or time (borders of
a convolution, time steps of a recurrence). A letter the diagnosis does not know would be
silently ignored; :func:`layout_problem` says so instead.

>>> layout_problem("Conv1D", "x", "NCW", 3) is None
True
>>> layout_problem("Conv1D", "x", "NCQ", 3)
"Conv1D.layouts['x'] = 'NCQ': unknown axis letter 'Q'; use letters from N, C, H, W, D, T, L, O, I, K, S"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AXES", "layout_problem", "layouts_problem"]

#: Every axis letter the diagnosis reads, with its meaning.
AXES: dict[str, str] = {
    "N": "batch",
    "C": "channels",
    "H": "height",
    "W": "width (or the one spatial axis of a 1-d convolution: NCW)",
    "D": "features (NTD) or depth (NCDHW)",
    "T": "time (NTD, or the axis of a 1-d convolution: NCT)",
    "L": "length (the axis of a 1-d convolution: NCL)",
    "O": "output channels of a kernel",
    "I": "input channels of a kernel",
    "K": "kernel positions",
    "S": "sequence positions (attention)",
}


def layout_problem(owner: str, name: str, layout: Any, ndim: int | None) -> str | None:
    """What is wrong with one declared layout (None when it is fine).

    Parameters
    ----------
    owner : str
        The layer's name, for the message (``"Conv1D"``).
    name : str
        The tensor the layout describes (``"x"``, ``"W"``).
    layout : object
        The declared layout; must be a str of distinct letters from :data:`AXES`.
    ndim : int or None
        The tensor's number of axes, when known: the layout needs one letter per axis.
    """
    where = f"{owner}.layouts[{name!r}] = {layout!r}"
    if not isinstance(layout, str):
        return f"{where}: a layout is a str of axis letters such as 'NCHW'"
    unknown = [letter for letter in layout if letter not in AXES]
    if unknown:
        return (f"{where}: unknown axis letter {unknown[0]!r}; use letters from "
                f"{', '.join(AXES)}")
    repeated = sorted({letter for letter in layout if layout.count(letter) > 1})
    if repeated:
        return f"{where}: axis letter {repeated[0]!r} appears twice; name each axis once"
    if ndim is not None and layout and len(layout) != ndim:
        return (f"{where}: {len(layout)} letters for a tensor with {ndim} axes; give one "
                f"letter per axis")
    return None


def layouts_problem(owner: str, layouts: Any, ndims: Mapping[str, int]) -> str | None:
    """What is wrong with a layer's whole ``layouts`` declaration (None when fine).

    ``ndims`` maps each checked tensor (``"x"`` and the parameter names) to its number
    of axes; a layout for a tensor that is not checked is an error too (a typo in the key).

    >>> layouts_problem("Conv2D", {"x": "NCHW"}, {"x": 4, "W": 4}) is None
    True
    >>> layouts_problem("Conv2D", {"X": "NCHW"}, {"x": 4, "W": 4})
    "Conv2D.layouts names 'X', which is not a checked tensor; use one of 'x', 'W'"
    """
    if not isinstance(layouts, Mapping):
        return (f"{owner}.layouts is a {type(layouts).__name__}; declare a dict such as "
                f"{{'x': 'NCHW'}}")
    for name, layout in layouts.items():
        if name not in ndims:
            choices = ", ".join(repr(k) for k in ndims)
            return (f"{owner}.layouts names {name!r}, which is not a checked tensor; use "
                    f"one of {choices}")
        problem = layout_problem(owner, name, layout, ndims[name])
        if problem is not None:
            return problem
    return None
