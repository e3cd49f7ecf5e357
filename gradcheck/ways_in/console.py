"""Terminal output of the command line: tables and a progress bar.

On a terminal, tables and the progress bar are drawn by ``rich``; when the output is not
a terminal (a pipe, a file, a test) or the ``NO_COLOR`` environment variable is set
(https://no-color.org), tables are plain aligned text with no escape codes and no
progress bar is drawn. ``rich`` is imported only when it is used.

Terminal tables fit the terminal's width (80 columns included): the columns named in
``keep`` (the verdict) are never shortened, those in ``wrap`` wrap, the others fold.

>>> import io
>>> out = io.StringIO()
>>> print_table(["name", "ok"], [["relu", "yes"]], stream=out)
>>> print(out.getvalue(), end="")
name  ok
----  ---
relu  yes
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

__all__ = ["is_rich", "print_note", "print_result", "print_table", "printable", "progress",
           "width"]

T = TypeVar("T")


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def is_rich(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stdout) is a terminal and ``NO_COLOR`` is not set."""
    stream = sys.stdout if stream is None else stream
    return _is_tty(stream) and not os.environ.get("NO_COLOR")


def _console(stream: TextIO) -> Any:
    from rich.console import Console
    return Console(file=stream, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None, stream: TextIO | None = None,
                failed: Sequence[bool] = (), wrap: Sequence[str] = (),
                keep: Sequence[str] = ()) -> None:
    """Print ``rows`` under ``columns``; rows whose ``failed`` flag is set stand out.

    Parameters
    ----------
    columns : list of str
    rows : rows of cells (converted with ``str``)
    title : str, optional
    stream : text stream, default stdout
    failed : list of bool, optional
        One flag per row: drawn in red on a terminal, marked ``!`` in plain text.
    wrap : list of str, optional
        Columns that may wrap at spaces on a narrow terminal (default: the last one,
        unless it is kept).
    keep : list of str, optional
        Columns shown in full whatever the width (a verdict); the others fold.

    A header may hold ``"\\n"``: two lines on a terminal, one (joined by a space) in plain
    text.
    """
    stream = sys.stdout if stream is None else stream
    cells = [[printable(c) for c in row] for row in rows]
    flags = list(failed) + [False] * (len(cells) - len(failed))
    if is_rich(stream):
        from rich import box
        from rich.table import Table
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False,  # narrow: no rules
                      show_edge=False, padding=0)  # the box draws one-space gaps
        kept = set(keep)
        wrapping = set(wrap) or ({columns[-1]} - kept)
        for i, column in enumerate(columns):
            longest = max([len(part) for part in column.split("\n")]
                          + [len(r[i]) for r in cells])
            if column in kept:
                table.add_column(column, no_wrap=True, min_width=longest)
            else:
                # fold, never an ellipsis: a cut name or number would mislead
                table.add_column(column, no_wrap=column not in wrapping, overflow="fold")
        from rich.text import Text
        for row, bad in zip(cells, flags, strict=True):  # Text: "[b]" in a name is no markup
            table.add_row(*(Text(c) for c in row), style="red" if bad else None)
        _console(stream).print(table)
        return
    columns = [" ".join(c.split("\n")) for c in columns]
    marks = any(flags)
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]

    def line(row: Sequence[str], mark: str = "") -> str:
        text = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        return f"{mark:<2}{text}" if marks else text

    if title:
        print(title, file=stream)
    print(line(columns), file=stream)
    print(line(["-" * w for w in widths]), file=stream)
    for row, bad in zip(cells, flags, strict=True):
        print(line(row, "!" if bad else ""), file=stream)


def progress(items: Sequence[T], *, description: str, stream: TextIO | None = None,
             label: Any = str) -> Iterator[T]:
    """Yield ``items``, drawing a progress bar on a terminal (nothing otherwise).

    ``label(item)`` is shown beside the bar while ``item`` is being processed.
    """
    stream = sys.stderr if stream is None else stream
    if not is_rich(stream):  # a pipe, a file, or NO_COLOR: no bar, no escape codes
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[item]}"))
    with Progress(*columns, console=_console(stream), transient=True) as bar:
        task = bar.add_task(description, total=len(items), item="")
        for item in items:
            bar.update(task, item=label(item))
            yield item
            bar.advance(task)


def printable(value: Any) -> str:
    """``str(value)`` with control characters escaped (see ``serialize.terminal_text``)."""
    from gradcheck.results.serialize import terminal_text
    return terminal_text(value)


def width(stream: TextIO | None = None) -> int:
    """Columns to fill: the terminal's (at most 100) on a terminal, else 79."""
    stream = sys.stdout if stream is None else stream
    if not _is_tty(stream):
        return 79
    return max(40, min(100, shutil.get_terminal_size((80, 24)).columns - 1))


def print_note(text: str, *, stream: TextIO | None = None) -> None:
    """Print a paragraph wrapped to :func:`width` (never cut at a fixed column)."""
    stream = sys.stdout if stream is None else stream
    print(textwrap.fill(printable(text), width=width(stream), subsequent_indent="  ",
                        break_on_hyphens=False), file=stream)


def print_result(result: Any, *, stream: TextIO | None = None) -> None:
    """Print a ``CheckResult``: ``str(result)``, with the table fitted on a terminal.

    Off a terminal the text is ``str(result)`` (control characters escaped); on one, the tensor table is drawn
    to the terminal's width (the ``ok`` column kept whole) and long lines wrap.
    """
    stream = sys.stdout if stream is None else stream
    text = str(result)
    if not is_rich(stream):
        print("\n".join(printable(line) for line in text.splitlines()), file=stream)
        return
    head, rows = result._rows()
    lines = text.splitlines()
    print_note(lines[0], stream=stream)  # the headline
    print_table(head, rows, stream=stream, failed=[row[-1] != "yes" for row in rows],
                keep=[head[-1]], wrap=[head[0]])
    for line in lines[1 + 1 + len(rows):]:  # after the headline and the table
        print_note(line, stream=stream)
