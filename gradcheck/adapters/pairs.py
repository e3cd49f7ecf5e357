"""Forward/backward function pairs with a cache: ``check_pair`` / ``assert_pair``.

The shape of a course's layer functions::

    out, cache = conv_forward(x, w, b, conv_param)
    dx, dw, db = conv_backward(dout, cache)
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    dx, dprev_h, dprev_c, dWx, dWh, db = lstm_step_backward(dnext_h, dnext_c, cache)

``forward(*args)`` returns its outputs followed by the cache; ``backward(*upstream,
cache)`` takes one upstream gradient per output and returns the gradients in input order
(one per argument, or one per float argument: non-array arguments such as ``conv_param``
and integer ids have none; a single gradient may come bare). This is
:func:`~gradcheck.adapters.functions.check_function` with ``f = forward(*args)[:-1]`` and
a VJP that runs ``forward`` for a fresh cache, then ``backward``.

>>> import numpy as np
>>> def scale_forward(x, w):
...     return x * w, (x, w)
>>> def scale_backward(dout, cache):
...     x, w = cache
...     return dout * w, np.sum(dout * x, keepdims=True).reshape(w.shape)
>>> check_pair(scale_forward, scale_backward, np.ones(3), np.array([2.0])).ok
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from gradcheck.adapters.functions import (
    arg_names,
    build_function_problem,
    raise_unless_ok,
    run_built,
)
from gradcheck.adapters.shipping import options_with_executor
from gradcheck.engine.options import CheckOptions, documents_options
from gradcheck.engine.safety import CheckInputError, CheckTypeError, require_callable
from gradcheck.results.result import CheckResult

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _split(describe: str, value: Any) -> tuple[tuple[Any, ...], Any]:
    if not isinstance(value, tuple) or len(value) < 2:
        raise CheckTypeError(f"{describe} returned {type(value).__name__}; a forward of a "
                             f"pair must return (*outputs, cache), e.g. (out, cache)")
    return value[:-1], value[-1]


@documents_options
def check_pair(forward: Callable[..., tuple[Any, ...]], backward: Callable[..., Any],
               *args: Any, wrt: str | Sequence[str] | None = None,
               names: str | Sequence[str] | None = None,
               executor: Executor | None = None,
               **options: Unpack[CheckOptions]) -> CheckResult:
    """Check ``backward(*upstream, cache)`` against differences of ``forward(*args)``.

    Parameters
    ----------
    forward : callable, ``forward(*args) -> (*outputs, cache)``
        E.g. ``x: (N, C, H, W)``, ``w: (F, C, HH, WW)``, ``b: (F,)``, ``conv_param``
        -> ``(out: (N, F, H', W'), cache)``.
    backward : callable, ``backward(*upstream, cache) -> gradients``
        One upstream gradient per output (shaped like it); returns the gradients in
        input order, one per argument or one per float argument (a single one may be
        bare), ``None`` allowed for a constant.
    *args : arrays, trees of arrays, or constants
        As for :func:`~gradcheck.adapters.functions.check_function` (copied; never
        modified); trailing non-array arguments are passed through.
    wrt, names
        As for :func:`~gradcheck.adapters.functions.check_function`; names default to
        ``arg0``, ``arg1``, …

    Returns
    -------
    CheckResult
    """
    opts, start = options_with_executor("check_pair", options, executor), time.perf_counter()
    require_callable("forward", forward)
    require_callable("backward", backward)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_pair")
    if not args:
        raise CheckInputError("check_pair needs the forward's arguments after backward")
    label = getattr(forward, "__name__", "forward")
    fwd = f"forward ({label})"
    bwd = f"backward ({getattr(backward, '__name__', 'backward')})"
    def f(*work: Any) -> Any:
        outputs, _ = _split(fwd, forward(*work))
        return outputs[0] if len(outputs) == 1 else outputs

    def reverse(cot: Any, *work: Any) -> tuple[Any, list[Any]]:
        outputs, cache = _split(fwd, forward(*work))
        upstream = (cot,) if len(outputs) == 1 else tuple(cot)
        return backward(*upstream, cache), []

    built = build_function_problem(
        kind="check_pair", label=label, describe=fwd, f=f, args=args,
        names=arg_names(len(args), names), reverse=reverse, reverse_name=bwd,
        forward=None, forward_name="", wrt=wrt, opts=opts)
    return run_built(built, opts, start)


def assert_pair(forward: Callable[..., Any], backward: Callable[..., Any], *args: Any,
                **opts: Any) -> CheckResult:
    """:func:`check_pair`, raising :class:`~gradcheck.GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return raise_unless_ok(check_pair(forward, backward, *args, **opts))


__all__ = ["assert_pair", "check_pair"]
