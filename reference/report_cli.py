"""``gradcheck report``: the command line of the derivation report.

``gradcheck.ways_in.cli`` dispatches ``gradcheck report ARGS`` to :func:`main`. Options::

    -o, --output FILE        write to FILE (atomically); default: standard output
    -q, --quiet              no progress line (shown on standard error when it is a terminal)
    --format {md,html,tex}   default: from FILE's extension, else md
    --only NAMES             comma-separated activations and losses (default: all);
                             softmax selects the vector-valued identities
    --network SPEC           backpropagation equations for SIZES:ACTIVATION:LOSS
                             (default 64-16-16-10:sigmoid:softmax_ce; "none" to omit)
    --no-plots               no figures (faster; matplotlib not needed)

Exit status: 0 on success, 2 for bad arguments (message on standard error naming the
option), 1 when the file cannot be written (nothing half-written is left behind).

>>> main(["--only", "tanh", "--network", "none", "--no-plots"])  # doctest: +ELLIPSIS
# Backpropagation, derived...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gradcheck.reference.report import (
    DEFAULT_NETWORK,
    FORMATS,
    NetworkSpec,
    build_report,
    format_for_path,
    render,
    write_report,
)
from gradcheck.results.serialize import STDOUT, OutputPathError, check_output_path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gradcheck report``."""
    parser = argparse.ArgumentParser(
        prog="gradcheck report",
        description="Write the derivation report: every activation and loss derived by SymPy, "
                    "the backpropagation equations of a network, and the numeric evidence.")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="output file (.md, .html or .tex); default: standard output")
    parser.add_argument("--format", choices=FORMATS,
                        help="output format; default: from the extension of FILE, else md")
    parser.add_argument("--only", metavar="NAMES",
                        help="comma-separated activations (softmax: the vector-valued "
                             "identities) and losses to include, e.g. tanh,softmax,mse")
    parser.add_argument("--network", metavar="SPEC", default=DEFAULT_NETWORK,
                        help=f"network for the backpropagation section, SIZES:ACTIVATION:LOSS "
                             f"(default {DEFAULT_NETWORK}; 'none' to leave it out)")
    parser.add_argument("--no-plots", action="store_true",
                        help="leave the figures out (matplotlib is then not needed)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress line (shown on a terminal's standard error)")
    return parser


#: Exit statuses, as for every ``gradcheck`` command: a refused output path is bad usage
#: (found before any work); a write that fails after the report was built is a failure.
EXIT_USAGE, EXIT_WRITE_FAILED = 2, 1


def _progress_line(done: int, total: int, what: str) -> None:
    """``[ 7/42] activation gelu`` on one terminal line, rewritten in place."""
    end = "\n" if done == total else ""
    sys.stderr.write(f"\r\x1b[2K[{done:>{len(str(total))}}/{total}] {what}{end}")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gradcheck report`` with ``argv`` (without the ``report`` word); return the status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    only = None
    if args.only is not None:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
        if not only:
            parser.error("--only: give at least one name, e.g. --only tanh,mse")
    network = None if args.network.lower() == "none" else args.network
    if args.output == STDOUT:
        args.output = None
    if args.output is not None:
        try:  # before any work: a directory, FIFO, device or missing folder is refused
            check_output_path(args.output, what="the derivation report")
        except OutputPathError as error:
            print(f"gradcheck report: could not write {args.output!r}: {error}",
                  file=sys.stderr)
            return EXIT_USAGE
    try:
        fmt = format_for_path(args.output, args.format)
        if network is not None:
            NetworkSpec.parse(network)
        show = not args.quiet and sys.stderr.isatty()
        report = build_report(only=only, network=network, plots=not args.no_plots,
                              progress=_progress_line if show else None)
    except ValueError as error:
        option = "--only" if "--only" in str(error) else (
            "--network" if "network spec" in str(error) else "-o/--format")
        parser.error(f"{option}: {error}")
    if args.output is None:
        sys.stdout.write(render(report, fmt))
        return 0
    try:
        written = write_report(report, args.output, fmt)
    except (OSError, OutputPathError) as error:
        print(f"gradcheck report: could not write {args.output!r}: {error}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    figures = len(written) - 1
    extra = f" and {figures} figure(s) in {written[0].parent}" if figures else ""
    print(f"gradcheck report: wrote {written[-1]}{extra}", file=sys.stderr)
    return 0
