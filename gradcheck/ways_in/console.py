"""Terminal output of the command line: tables and a progress bar.

On a terminal, tables and the progress bar are drawn by ``rich``; when the output is not
a terminal (a pipe, a file, a test) or the ``NO_COLOR`` environment variable is set
(https://no-color.org), tables are plain aligned text with no escape codes, and no
progress bar is drawn on a non-terminal. ``rich`` is imported only when it is used.

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
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

__all__ = ["is_rich", "print_table", "progress"]

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
                failed: Sequence[bool] = (), wrap: Sequence[str] = ()) -> None:
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
        Columns that may wrap on a narrow terminal (default: the last one); the others
        keep their cells on one line.
    """
    stream = sys.stdout if stream is None else stream
    cells = [[str(c) for c in row] for row in rows]
    flags = list(failed) + [False] * (len(cells) - len(failed))
    if is_rich(stream):
        from rich import box
        from rich.table import Table
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)  # narrow: no rules
        wrapping = set(wrap) or {columns[-1]}
        for column in columns:
            table.add_column(column, no_wrap=column not in wrapping)
        for row, bad in zip(cells, flags, strict=True):
            table.add_row(*row, style="red" if bad else None)
        _console(stream).print(table)
        return
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
    if not _is_tty(stream):
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
