"""The ``gradcheck`` command line (also ``python -m gradcheck``).

Commands
--------
``gradcheck verify [--fast] [--only NAMES] [--seed N] [--json]``
    The main job: every activation and loss three ways (exact, analytic, numeric) and
    every built-in layer and network through the checker. Exit 0 when all agree, else 1.
``gradcheck check path/to/file.py:ClassName [--input-shape 8,4] [--dtype float32]
[--seed N] [--mode auto|full|fast] [--workers N] [--json]``
    Check a layer class from a script: built by its ``gradcheck_example()`` classmethod
    (returning ``(layer, x)``) or its no-argument constructor plus ``--input-shape``.
    ``--workers N`` spreads full mode's evaluations over N processes (identical results;
    a function target gets the pool as ``executor=`` when it names that parameter).
    Exit 0 when the gradients agree, 1 on a mismatch, 2 on bad usage (missing file or
    class, not a layer, bad shape, a negative seed), with a one-line message and no
    traceback.
``gradcheck check path/to/file.py:function_name [--seed N] [--mode ...] [--json]``
    Run a function of the file that returns a ``gradcheck.check_*`` result (function
    pairs, ``model.loss``, other libraries' layers: any shape); it is called with the
    options it accepts (``mode``, ``seed``, ``rtol``, ``atol``, ``eps``). Same exit
    statuses; the JSON has no ``input_shape``/``dtype``.

Ctrl-C prints one line and exits 130 (every command).
``gradcheck report ...``
    The derivation report; arguments go to ``gradcheck.reference.report_cli.main``.

JSON output (``--json``), stable, ``"schema": 1``::

    verify: {"schema": 1, "command": "verify", "ok": bool, "fast": bool, "seed": int,
             "seconds": float,
             "rows": [{"name", "kind", "ok", "ways", "exact_error", "numeric_error",
                       "error_ratio", "checked", "nondifferentiable", "evaluations", "mode",
                       "seconds", "note"}, ...]}
            (field meanings: gradcheck.zoo.verify.VerifyRow)
    check:  {"schema": 1, "command": "check", "target": "file.py:Class", "ok": bool,
             "input_shape": [int, ...], "dtype": str, "seed": int,
             "check": <one block: the record of gradcheck.results.session_report, plus
                       CheckResult.to_dict()'s worst, nondifferentiable, taylor,
                       gradient_flow, options, notes, ...; each field once>}

>>> main(["check", "no/such/file.py:Layer"])  # stderr: "gradcheck check: error: no such file: ..."
2
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradcheck import __version__
from gradcheck.engine.options import OPTION_NAMES, Options, option_help, parse_text
from gradcheck.ways_in.examples import ExampleError, has_example, layer_example

__all__ = ["JSON_SCHEMA_VERSION", "UsageError", "build_parser", "main"]

JSON_SCHEMA_VERSION = 1
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class UsageError(Exception):
    """Bad command-line usage: printed as one line, exit status 2."""


def _option_type(name: str) -> Any:
    """argparse type of ``--<name>``: the declaration's text parser (exit 2 on bad text)."""
    def parse(text: str) -> Any:
        try:
            return parse_text(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _add_check_options(command: argparse.ArgumentParser) -> None:
    """``--<name>`` for every shared option, made from its declaration (type, default, help)."""
    defaults = Options()
    for name in OPTION_NAMES:
        flag, default = "--" + name.replace("_", "-"), getattr(defaults, name)
        if isinstance(default, bool):
            command.add_argument(flag, action="store_true", help=option_help(name))
        else:
            command.add_argument(flag, type=_option_type(name), default=default,
                                 metavar=name.upper(), help=option_help(name))


def _workers(text: str) -> int:
    """argparse type of ``--workers``: an int >= 1 (worker processes for full mode)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--workers needs at least 1 worker process")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck", description="Prove backpropagation code right: exact (SymPy), "
        "analytic (NumPy) and numeric (finite differences) gradients held against each other.")
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = commands.add_parser("verify", help="verify the built-in zoo three ways",
                                 description="Verify every activation and loss three ways and "
                                 "every built-in layer and network with the checker.")
    verify.add_argument("--fast", action="store_true",
                        help="fewer sample points per activation and loss; layers and "
                             "networks in the checker's fast mode")
    verify.add_argument("--only", action="append", default=[], metavar="NAMES",
                        help="comma-separated case names or kinds (activation, loss, layer, "
                             "network); repeatable; e.g. relu,mse,LSTM or network")
    verify.add_argument("--seed", type=_option_type("seed"), default=0,
                        help="seed of every sample, an integer >= 0 (default 0)")
    verify.add_argument("--json", action="store_true", help="print JSON instead of a table")

    check = commands.add_parser("check", help="check a layer class (or run a check "
                                "function) from a Python file",
                                description="Check the gradients of a layer class defined "
                                "in a Python file, or run a function there that returns a "
                                "gradcheck.check_* result (it receives the options it "
                                "accepts). --seed also seeds a generated input.")
    check.add_argument("target", metavar="FILE.py:CLASS_OR_FUNCTION")
    check.add_argument("--input-shape", default=None, metavar="N,D,...",
                       help="input shape, e.g. 8,4 (required without gradcheck_example())")
    check.add_argument("--dtype", choices=("float64", "float32"), default=None,
                       help="dtype of the input (default: the example's, else float64)")
    _add_check_options(check)
    check.add_argument("--workers", type=_workers, default=None, metavar="N",
                       help="spread full mode's evaluations over N worker processes "
                            "(results identical to the serial run; pays for slow layers)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")

    commands.add_parser("report", help="write the derivation report (see: gradcheck report "
                        "--help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 mismatch, 2 bad usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["report"]:  # the report command parses its own options
        from gradcheck.reference.report_cli import main as report_main
        try:
            return int(report_main(args_list[1:]) or 0)
        except SystemExit as exit_:  # its argparse: --help, bad options
            return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
        except KeyboardInterrupt:
            print("\ngradcheck report: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:  # argparse: --help, --version, bad options
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return _verify(args) if args.command == "verify" else _check(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback from deep inside SymPy
        print(f"\ngradcheck {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"gradcheck {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `gradcheck verify | head`: the reader left; not an error
        try:  # the interpreter's final flush of stdout must not complain either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a real file (tests, notebooks)
            pass
        return 0


# ---- verify --------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1e}"


def _print_verify_table(rows: list[Any], failures: list[Any]) -> None:
    """The verify table, then why each failed case failed (numbered), then the legend."""
    from gradcheck.ways_in import console

    number = {r.name: i for i, r in enumerate(failures, 1)}
    # two-line headers and a short verdict keep the table inside 80 columns; why a case
    # failed goes below the table, numbered, where it can wrap
    console.print_table(
        ["name", "kind", "exact\nerr", "numeric\nerr", "err/\ntol", "entries", "kinks",
         "evals", "verdict"],
        [[r.name, r.kind, _fmt(r.exact_error), _fmt(r.numeric_error), _fmt(r.error_ratio),
          r.checked, r.nondifferentiable, r.evaluations,
          "ok" if r.ok else f"FAILED [{number[r.name]}]"] for r in rows],
        failed=[not r.ok for r in rows], keep=["verdict"], wrap=["name", "kind"])
    for r in failures:
        console.print_note(f"[{number[r.name]}] {r.name}: {r.note or 'gradients disagree'}")
    console.print_note("exact err: hand-written vs SymPy derivative (relative). numeric err: "
                       "worst relative error against finite differences; err/tol: worst "
                       "error / its tolerance (< 1 agrees). kinks: entries judged by "
                       "one-sided derivatives.")


def _verify(args: argparse.Namespace) -> int:
    from gradcheck.ways_in import console
    from gradcheck.zoo import verify

    only = [name for group in args.only for name in group.split(",")] if args.only else None
    try:
        cases = verify.cases(only)
    except ValueError as exc:
        raise UsageError(f"--only: {exc}") from None
    start = time.perf_counter()
    rows = [verify.run_case(case, fast=args.fast, seed=args.seed)
            for case in console.progress(cases, description="verifying",
                                         label=lambda case: case.name)]
    seconds = time.perf_counter() - start
    ok = all(row.ok for row in rows)
    if args.json:
        print(json.dumps({"schema": JSON_SCHEMA_VERSION, "command": "verify", "ok": ok,
                          "fast": args.fast, "seed": args.seed, "seconds": seconds,
                          "rows": [row.to_dict() for row in rows]}, indent=2))
        return EXIT_OK if ok else EXIT_MISMATCH
    failures = [r for r in rows if not r.ok]
    _print_verify_table(rows, failures)
    failed = len(failures)
    mode = "fast mode" if args.fast else "full mode"
    print(f"\n{len(rows) - failed} of {len(rows)} agree"
          f"{'' if ok else f', {failed} FAILED'} ({mode}, seed {args.seed}, {seconds:.1f} s)")
    return EXIT_OK if ok else EXIT_MISMATCH


# ---- check ---------------------------------------------------------------------------

def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r} is not a shape: give positive integers "
                         f"separated by commas, e.g. 8,4")
    return shape


def _load_class(target: str) -> type:
    path_text, sep, class_name = target.rpartition(":")
    if not sep or not path_text or not class_name:
        raise UsageError(f"{target!r}: expected path/to/file.py:ClassName")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"no such file: {path_text}")
    spec = importlib.util.spec_from_file_location(f"_gradcheck_user_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path_text} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    # registered as importing does it: dataclasses, typing and pickle look classes' modules
    # up in sys.modules (the unique name cannot clash with anything)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(path.resolve().parent))  # the script's own imports
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[spec.name]
        raise UsageError(f"could not import {path_text}: {type(exc).__name__}: {exc}") \
            from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    cls = getattr(module, class_name, None)
    if inspect.isfunction(cls):  # a function that runs a check: see _check_function_target
        return cls  # type: ignore[return-value]
    if cls is None:
        defined = sorted(n for n, v in vars(module).items()
                         if inspect.isclass(v) and v.__module__ == module.__name__)
        raise UsageError(f"{path_text} has no class {class_name!r}; classes defined there: "
                         f"{', '.join(defined) or 'none'}")
    if not inspect.isclass(cls):
        raise UsageError(f"{class_name!r} in {path_text} is a {type(cls).__name__}, "
                         f"not a class")
    missing = [m for m in ("forward", "backward") if not callable(getattr(cls, m, None))]
    if missing:
        raise UsageError(f"{class_name} is not a layer: it has no {' or '.join(missing)} "
                         f"method (a layer has params, grads, forward(x), backward(grad_out))")
    return cls


def _build(cls: type, shape: tuple[int, ...] | None, dtype: str | None,
           seed: int) -> tuple[Any, Any]:
    import numpy as np

    name = cls.__name__
    try:
        if has_example(cls):
            layer, x = layer_example(cls)
        else:
            if shape is None:
                raise UsageError(f"{name} has no gradcheck_example(): pass --input-shape, "
                                 f"e.g. --input-shape 8,4")
            layer, x = cls(), None
    except UsageError:
        raise
    except ExampleError as exc:
        raise UsageError(str(exc)) from None
    except TypeError as exc:
        raise UsageError(f"cannot build {name}() without arguments ({exc}); give the class a "
                         f"gradcheck_example() classmethod returning (layer, x)") from None
    except Exception as exc:
        raise UsageError(f"building {name} raised {type(exc).__name__}: {exc}") from None
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), dict):
            raise UsageError(f"{name} is not a layer: {attr} must be a dict of arrays "
                             f"(may be empty)")
    if shape is not None:
        x = np.random.default_rng(seed).standard_normal(shape)
    x = np.asarray(x)
    return layer, x.astype(dtype or (x.dtype if x.dtype == np.float32 else np.float64))


def _check_function_target(fn: Any, args: argparse.Namespace, executor: Any = None) -> Any:
    """Run ``fn(**options)``: a function of the user's that returns a check's result.

    The code people already have (function pairs, ``model.loss``, other libraries' layers)
    is checked by a short function such as ``def check_conv(**options): return
    gradcheck.check_pair(conv_forward, conv_backward, x, w, b, conv_param, **options)``;
    the options it accepts (any of the shared options, all of them with ``**options``) come
    from the command line.
    """
    import gradcheck

    if args.input_shape is not None or args.dtype is not None:
        raise UsageError(f"{fn.__name__} is a function: it builds its own inputs, so "
                         f"--input-shape and --dtype do not apply")
    wanted = _given_options(args)
    if executor is not None:  # only to a function that names it (--workers)
        wanted["executor"] = executor
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    options = {k: v for k, v in wanted.items()
               if k in params or (takes_all and k != "executor")}
    try:
        result = fn(**options)
    except (TypeError, ValueError, gradcheck.UserCodeError) as exc:
        message = " ".join(str(exc).split())
        raise UsageError(f"{fn.__name__}(): {message}") from None
    if not all(hasattr(result, a) for a in ("ok", "tensors", "to_dict")):  # a CheckResult
        raise UsageError(f"{fn.__name__}() returned {type(result).__name__}; a function "
                         f"target must return the result of a gradcheck.check_* call")
    return result


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """``mode`` and ``seed`` always; the other options where the command line set them."""
    defaults = Options()
    return {name: getattr(args, name) for name in OPTION_NAMES
            if name in ("mode", "seed") or getattr(args, name) != getattr(defaults, name)}


def _one_block(result: Any, target: str) -> dict[str, Any]:
    """The session-report record of ``result`` plus what only ``to_dict()`` has, each once.

    ``tensors`` is ``to_dict()``'s (a superset of the record's: it adds ``worst_index``).
    """
    from gradcheck.results.session_report import record_from_result

    record = record_from_result(result, test=target)
    full = result.to_dict()
    record.update({key: value for key, value in full.items()
                   if key not in record or key == "tensors"})
    return record


def _run_target(cls: Any, shape: tuple[int, ...] | None, args: argparse.Namespace,
                executor: Any) -> tuple[Any, dict[str, Any]]:
    """Check the layer class (or run the check function) ``cls``; the result and its info."""
    import gradcheck

    if inspect.isfunction(cls):
        return _check_function_target(cls, args, executor), {}
    layer, x = _build(cls, shape, args.dtype, args.seed)
    try:
        result = gradcheck.check_layer(layer, x, executor=executor, **_given_options(args))
    except (TypeError, ValueError, gradcheck.UserCodeError) as exc:
        # the checker's bad-input errors (shapes, dtypes, non-finite values) and the
        # layer's own exceptions, which the checker wraps naming the call that raised
        message = " ".join(str(exc).split())
        raise UsageError(f"{cls.__name__} at input shape {x.shape}: {message}") from None
    return result, {"input_shape": list(x.shape), "dtype": str(x.dtype)}


def _check(args: argparse.Namespace) -> int:
    shape = _parse_shape(args.input_shape) if args.input_shape is not None else None
    cls = _load_class(args.target)

    from gradcheck.ways_in import console

    pool = None
    if args.workers is not None:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.workers)
    try:
        result, info = _run_target(cls, shape, args, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    if args.json:  # one block per check: the session-report record (no second copy)
        print(json.dumps({"schema": JSON_SCHEMA_VERSION, "command": "check",
                          "target": args.target, "ok": bool(result.ok), **info,
                          "seed": args.seed,
                          "check": _one_block(result, args.target)}, indent=2))
    else:
        console.print_result(result)
    return EXIT_OK if result.ok else EXIT_MISMATCH
