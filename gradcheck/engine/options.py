"""The options every check shares, declared once.

:class:`Options` is the one declaration: each field's type, default and one-line help
(``metadata["help"]``). Everything else is made from it —

* :class:`CheckOptions`, the ``TypedDict`` the public checks take as ``**options``
  (a test asserts that its keys and types are the fields of :class:`Options`);
* :func:`options_section`, the "Options" part of every check's docstring
  (:func:`documents_options` appends it);
* the pytest plugin's ``--gradcheck-<name>`` flags, ``gradcheck_<name>`` ini keys and
  marker keywords, and ``gradcheck check``'s ``--<name>`` flags, with :func:`parse_text`
  converting their text.

>>> import numpy as np
>>> Options.of("check_grad", {"mode": "full", "eps": np.float32(0.5)}).eps
0.5
>>> Options.of("check_grad", {"rtl": 1e-3})
Traceback (most recent call last):
...
gradcheck.engine.errors.CheckInputError: check_grad got an unknown option rtl=0.001; the options are mode, rtol, atol, eps, method, seed, directions, allow_unresolved
"""

from __future__ import annotations

import inspect
import math
import numbers
import textwrap
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal, TypedDict, TypeVar, get_args

from gradcheck.engine.errors import CheckInputError, CheckTypeError

#: Above this many checked entries, ``mode="auto"`` uses the fast (directional) mode
#: (an input whose samples are verified independent counts as one sample's entries:
#: structured full mode differences one entry of every sample per evaluation; an input
#: grouped by verified tiles counts as one grouped pass, Σ over colours of the largest
#: tile, and tiles are tried in auto mode only where their verification costs at most
#: 2 · AUTO_FULL_MAX_ENTRIES evaluations).
#: 2048 entries cost 4096 evaluations in full mode: well under a second for layers of
#: that size, while a 13,000-parameter network is checked in ~40 evaluations instead.
AUTO_FULL_MAX_ENTRIES = 2048
#: Number of random directions in fast mode (see ``gradcheck.engine.fast`` for the miss bound).
FAST_DIRECTIONS = 4

#: How a check differences: every entry, random directions, or chosen by size.
Mode = Literal["auto", "full", "fast"]
#: How one entry is differenced.
Method = Literal["central", "richardson", "complex"]
MODES: tuple[str, ...] = get_args(Mode)
METHODS: tuple[str, ...] = get_args(Method)


@dataclass(frozen=True)
class Options:
    """Validated options shared by every check (see :func:`options_section`)."""

    mode: Mode = field(default="auto", metadata={"help": (
        f"full: every entry; fast: random directions, then localize on failure; "
        f"auto: full up to {AUTO_FULL_MAX_ENTRIES} checked entries (an input of verified "
        f"independent samples counts as one sample), else fast")})
    rtol: float | None = field(default=None, metadata={"help": (
        "relative floor of every tolerance (default: from the dtype table); the "
        "finite-difference error estimate is always added on top")})
    atol: float | None = field(default=None, metadata={"help": (
        "absolute floor, in units of the tensor's RMS gradient (default: from the dtype "
        "table)")})
    eps: float | None = field(default=None, metadata={"help": (
        "relative step: entry i moves by eps * max(|x_i|, 1) (default: about eps**(1/3) "
        "of the output precision)")})
    method: Method = field(default="central", metadata={"help": (
        "central: central differences, refined where doubtful; richardson: Richardson on "
        "every entry; complex: complex step (check_grad, check_jacobian, check_hvp; needs "
        "complex-safe code)")})
    seed: int = field(default=0, metadata={"help": (
        "seed of every random choice (directions, upstream gradients, samples), an int >= 0")})
    directions: int = field(default=FAST_DIRECTIONS, metadata={"help": (
        "random directions in fast mode, an int >= 1")})
    allow_unresolved: bool = field(default=False, metadata={"help": (
        "count entries that no step can resolve (a large constant beside a small variation) "
        "as a pass; by default such a check is inconclusive, never OK")})
    # -- keywords of the checks that offer them (their signature names them), not
    # **options; ``keyword`` is their help, put in the docstring of each such check:
    #: Structured full mode where the problem offers per-sample blocks (verified first).
    structured: bool = field(default=True, metadata={"engine": True, "keyword": (
        "structured full mode: where input and output share a leading batch axis, the "
        "samples' independence is verified (each sample moved alone must leave every other "
        "sample's output bit-identical), then one entry of every sample is differenced per "
        "evaluation; a layer coupling its samples (batch norm) is checked entry by entry, "
        "with a note")})
    #: A ``concurrent.futures.Executor`` for full mode's evaluations (None: serial).
    executor: Executor | None = field(default=None, metadata={"engine": True, "keyword": (
        "spread full mode's evaluations over a concurrent.futures.Executor (a "
        "ProcessPoolExecutor, a ThreadPoolExecutor, dask's Client.get_executor()); results "
        "are identical to the serial run. Shipped to each worker, in one pickle "
        "(cloudpickle when installed, gradcheck[parallel]): the function with everything it "
        "reads - the working copies of the inputs, the objects it calls (a layer or model "
        "with its parameters and caches) - so each worker differences its own copy; the "
        "user's arrays never leave the process. It pays when a chunk of evaluations costs "
        "well above shipping that pickle and there are idle cores (benchmarks/"
        "bench_parallel.py: about a millisecond per evaluation and up); fast mode and method='complex' run serially (noted)")})
    #: Serializes the function for the executor's workers (None: stdlib pickle).
    dumps: Callable[[Any], bytes] | None = field(default=None, metadata={"engine": True})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CheckInputError(f"mode={self.mode!r} is not one of {MODES}")
        if self.method not in METHODS:
            raise CheckInputError(f"method={self.method!r} is not one of {METHODS}")
        for name in ("rtol", "atol", "eps"):
            value = getattr(self, name)
            if value is not None:
                value = _real(name, value)
                if not (math.isfinite(value) and value >= 0):
                    raise CheckInputError(f"{name}={value!r} must be a finite number >= 0 "
                                          f"or None")
                object.__setattr__(self, name, value)  # NumPy scalars -> Python numbers
        if self.eps is not None and self.eps == 0:
            raise CheckInputError("eps=0 gives no step; pass eps > 0 or None for the default")
        object.__setattr__(self, "seed", _integer("seed", self.seed, minimum=0))
        object.__setattr__(self, "directions", _integer("directions", self.directions,
                                                        minimum=1))
        if not _is_bool(self.allow_unresolved):
            raise CheckTypeError(f"allow_unresolved={self.allow_unresolved!r} must be True "
                                 f"or False")
        object.__setattr__(self, "allow_unresolved", bool(self.allow_unresolved))
        if not _is_bool(self.structured):
            raise CheckTypeError(f"structured={self.structured!r} must be True or False")
        if self.executor is not None and not callable(getattr(self.executor, "submit", None)):
            raise CheckTypeError(f"executor={self.executor!r} has no submit(); pass a "
                                 f"concurrent.futures.Executor (ProcessPoolExecutor(4), or "
                                 f"dask's Client.get_executor()) or None")

    @classmethod
    def of(cls, owner: str, given: Mapping[str, Any], **engine: Any) -> Options:
        """Options from a check's ``**options`` (an unknown name is a clear error), plus the
        engine-only fields a check sets itself (``structured``, ``executor``, ``dumps``)."""
        unknown = [name for name in given if name not in OPTION_NAMES]
        if unknown:
            shown = ", ".join(f"{name}={given[name]!r}" for name in unknown)
            raise CheckInputError(f"{owner} got an unknown option {shown}; the options are "
                                  f"{', '.join(OPTION_NAMES)}")
        return cls(**given, **engine)


def _is_bool(value: Any) -> bool:  # Python's bool or NumPy's, without importing NumPy
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and
                                       type(value).__name__ in ("bool", "bool_"))


def _real(name: str, value: Any) -> float:
    if _is_bool(value):
        raise CheckTypeError(f"{name}={value!r} is a bool; pass a number")
    if not isinstance(value, numbers.Real):  # int, float and NumPy's real scalars
        raise CheckTypeError(f"{name}={value!r} must be a real number or None, got "
                             f"{type(value).__name__}")
    return float(value)


def _integer(name: str, value: Any, *, minimum: int) -> int:
    if _is_bool(value):
        raise CheckTypeError(f"{name}={value!r} is a bool; pass an int")
    if not isinstance(value, numbers.Integral):
        raise CheckTypeError(f"{name}={value!r} must be an int, got {type(value).__name__}")
    if value < minimum:
        why = " (NumPy's random generators take non-negative seeds)" if name == "seed" else ""
        raise CheckInputError(f"{name}={int(value)} must be >= {minimum}{why}")
    return int(value)


#: The shared options (the fields with a help line): ``**options`` of every check, the
#: plugin's and the CLI's flags. The other fields are set by the checks that offer them.
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options) if "help" in f.metadata)


class CheckOptions(TypedDict, total=False):
    """The keyword options of every check, typed (the fields of :class:`Options`)."""

    mode: Mode
    rtol: float | None
    atol: float | None
    eps: float | None
    method: Method
    seed: int
    directions: int
    allow_unresolved: bool


def _spec(name: str) -> Field[Any]:
    return next(f for f in fields(Options) if f.name == name)


def option_help(name: str) -> str:
    """The one-line help of option ``name``, its default appended unless it says one."""
    spec = _spec(name)
    text = spec.metadata["help"]
    return text if "default" in text else f"{text} (default {spec.default!r})"


def _kind(name: str) -> str:
    spec = _spec(name)
    choices = {"mode": MODES, "method": METHODS}.get(name)
    shown = "{" + ", ".join(repr(c) for c in choices) + "}" if choices else str(spec.type)
    return f"{shown}, default {spec.default!r}"


def options_section() -> str:
    """The NumPy-style docstring entries of the shared options (one per field)."""
    return "\n".join(
        f"{name} : {_kind(name)}\n" + textwrap.fill(
            _spec(name).metadata["help"] + ".", width=84, initial_indent="    ",
            subsequent_indent="    ", break_on_hyphens=False) for name in OPTION_NAMES)


F = TypeVar("F", bound=Callable[..., Any])


#: The check keywords declared here (``structured``, ``executor``): a check whose
#: signature names one gets its help in its docstring, and the plugin and the CLI pass the
#: session's pool to exactly the checks whose signature names ``executor``.
KEYWORD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options)
                                       if "keyword" in f.metadata)


def keyword_section(names: Iterable[str]) -> str:
    """The NumPy-style docstring entries of the declared check keywords in ``names``."""
    return "".join(
        f"\n{name} : {_spec(name).type}, default {_spec(name).default!r}\n" + textwrap.fill(
            _spec(name).metadata["keyword"] + ".", width=84, initial_indent="    ",
            subsequent_indent="    ", break_on_hyphens=False)
        for name in KEYWORD_NAMES if name in set(names))


def documents_options(fn: F) -> F:
    """Put an "Options" section made by :func:`options_section` into ``fn``'s docstring.

    The declared keywords ``fn``'s signature names (:data:`KEYWORD_NAMES`) follow the
    shared options. It goes before the "Returns" section (else before the first example,
    else at the end).
    """
    doc = (fn.__doc__ or "").rstrip() + "\n"
    keywords = keyword_section(inspect.signature(fn).parameters)
    section = textwrap.indent("Options\n-------\n" + options_section() + keywords,
                              "    ") + "\n\n"
    at = [i for i in (doc.find("\n    Returns\n"), doc.find("\n    >>> ")) if i >= 0]
    cut = min(at) + 1 if at else len(doc)
    fn.__doc__ = doc[:cut] + ("" if at else "\n") + section + doc[cut:]
    return fn


def parse_text(name: str, text: str) -> Any:
    """Convert an option's text (a command-line flag, an ini value) to its value.

    Raises ``ValueError`` with the reason; the caller names the flag or key.

    >>> parse_text("rtol", "1e-3"), parse_text("allow_unresolved", "yes")
    (0.001, True)
    """
    kind = _spec(name).type
    if name in ("mode", "method"):
        choices = MODES if name == "mode" else METHODS
        if text not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}")
        return text
    if name == "allow_unresolved":
        words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
        if text.strip().lower() not in words:
            raise ValueError(f"{name} must be true or false")
        return words[text.strip().lower()]
    if kind == "int":
        value: float = int(text)
        minimum = 1 if name == "directions" else 0
        if value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}")
        return value
    value = float(text)
    if not (value >= 0 and value != float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0")
    return value


__all__ = ["KEYWORD_NAMES", "METHODS", "MODES", "OPTION_NAMES", "CheckOptions", "Method", "Mode",
           "Options", "documents_options", "keyword_section", "option_help", "options_section",
           "parse_text"]
