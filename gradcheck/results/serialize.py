"""JSON-safe values, Markdown-safe text and the one atomic file writer of gradcheck.

Every file gradcheck writes (the pytest session report, ``gradcheck report -o``, the
CLI's outputs) goes through :func:`write_atomic`, after :func:`check_output_path` has
accepted the path *before any work starts*:

* Only **regular files** (new or existing) or standard output (``"-"``) are written.
  Directories, FIFOs, character and block devices and sockets are refused with one
  :class:`OutputPathError` (a ``ValueError``), so ``-o /dev/full`` never replaces a
  device and ``x.json`` that is a directory fails at start-up, not after the session.
* The **folder must exist**: it is never created silently (a typo in a folder name would
  otherwise scatter reports).
* **Symlinks are followed**: when the path is a symbolic link, the file it points to is
  replaced and the link itself stays a link. The final target must obey the rules above
  (a dangling link is refused: its folder may not exist and the intent is unclear).
* The write is **atomic**: a temporary file in the target's folder, written, flushed and
  ``fsync``-ed, then renamed over the target (``os.replace``), and the folder fsync-ed
  where the system allows it. On any error, ``KeyboardInterrupt`` included, the
  temporary file is removed and the target is untouched. Only a ``kill -9`` between the
  write and the rename can leave the temporary file (named ``.NAME.XXXX.gradcheck.tmp``
  beside the target, so it is recognisable).
* The new file gets mode ``0o666 & ~umask`` like any file the user creates (not the
  ``0o600`` of :func:`tempfile.mkstemp`).

>>> plain({"a": (1, float("nan")), "b": [True, None]})
{'a': [1, None], 'b': [True, None]}
>>> markdown_text("<b>x|y</b>\\n# h")
'&lt;b&gt;x\\\\|y&lt;/b&gt; \\\\# h'
"""

from __future__ import annotations

import math
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["STDOUT", "OutputPathError", "check_output_path", "markdown_text", "plain",
           "terminal_text", "write_atomic"]

#: The path that means standard output.
STDOUT = "-"


class OutputPathError(ValueError):
    """An output path gradcheck will not write to (a directory, a device, a missing folder)."""


def plain(value: Any) -> Any:
    """Convert to JSON-safe builtins: NumPy scalars/arrays and tuples -> lists, NaN/Inf -> None.

    Anything else that is not a JSON type becomes its ``str``.

    >>> import numpy as np
    >>> plain({"x": np.arange(2), 3: np.float32(0.5), "inf": np.inf})
    {'x': [0, 1], '3': 0.5, 'inf': None}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return plain(value.tolist())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


#: Characters with a meaning in Markdown (inline or at a line start) or in HTML.
_MARKDOWN_SPECIAL = "\\`*_[]#!|~"
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def markdown_text(text: Any) -> str:
    """Escape user-named text (class names, test ids, tensor names) for Markdown.

    The result is inert on one line: HTML is entity-escaped, Markdown punctuation gets a
    backslash, line breaks become spaces (so a name cannot add headings, table rows,
    links or ``<script>``). Safe inside a table cell.

    >>> markdown_text("<img src=x onerror=alert(1)>")
    '&lt;img src=x onerror=alert(1)&gt;'
    """
    out = []
    for ch in " ".join(str(text).splitlines()):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch in _MARKDOWN_SPECIAL:
            out.append("\\" + ch)
        elif ch in "\r\t\v\f" or ord(ch) < 32:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def terminal_text(value: Any) -> str:
    """``str(value)`` on one line with control characters (escape codes, breaks) escaped.

    User-named text (tensor names, class names) cannot move the cursor, recolour the
    terminal or start a new line.

    >>> terminal_text("w\\x1b[31m\\n")
    'w\\\\x1b[31m\\\\n'
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def check_output_path(path: str | os.PathLike[str], *, what: str = "the report",
                      suffixes: tuple[str, ...] | None = None) -> Path | None:
    """Validate an output path before any work starts; return the file to replace.

    Parameters
    ----------
    path : str or path-like
        ``"-"`` for standard output (returns None).
    what : str
        Named in the error.
    suffixes : tuple of str, optional
        Accepted file-name endings (``(".json", ".md")``), compared case-insensitively.

    Returns
    -------
    Path or None
        The regular file (existing or new) that :func:`write_atomic` will replace, with
        symbolic links resolved; None for standard output.

    Raises
    ------
    OutputPathError
        The path is a directory, FIFO, device or socket (or a link to one), a dangling
        link, its folder does not exist, or its ending is not among ``suffixes``.

    >>> check_output_path("-") is None
    True
    """
    text = os.fspath(path)
    if text == STDOUT:
        return None
    if not text:
        raise OutputPathError(f"{what}: the output path is empty; give a file name")
    given = Path(text)
    if suffixes is not None and given.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what} path {text!r}: use a {' or '.join(suffixes)} "
                              f"file name")
    target = given
    if given.is_symlink():
        target = Path(os.path.realpath(given))
        if not target.exists():
            raise OutputPathError(f"{what} path {text!r} is a symbolic link to {str(target)!r},"
                                  f" which does not exist; point it at a file or remove it")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise OutputPathError(f"{what} path {text!r} cannot be inspected: {err}") from err
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise OutputPathError(f"{what} path {text!r} is {kind}; gradcheck writes only "
                              f"regular files (or '-' for standard output): give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise OutputPathError(f"{what} path {text!r}: the folder {str(folder)!r} does not "
                              f"exist; create it first")
    return target


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *,
                 what: str = "the report") -> Path | None:
    """Write ``data`` to ``path`` atomically (rules in the module docstring).

    ``"-"`` writes to standard output. Returns the file written (links resolved) or None
    for standard output. A failure leaves the target as it was and no temporary file.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> write_atomic(os.path.join(folder, "r.md"), "# ok\\n").read_text()
    '# ok\\n'
    """
    target = check_output_path(path, what=what)
    if target is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
        return None
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".gradcheck.tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0o600 is not what users expect
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return target


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable where the system allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
