"""Parameters held by an object: ``check_loss`` and ``check_object`` (+ ``assert_*``).

Both perturb the user's own parameter arrays **in place** (the code under test reads
them from its object) and restore them bit-identically afterwards, also on errors
(:class:`~gradcheck.engine.safety.Snapshot`).

* ``check_loss(loss, grads, params)``: ``loss() -> float`` and ``grads() -> tree like
  params``, or ``grads=None`` and ``loss() -> (value, grads)`` (a course model's
  ``model.loss(X, y)``). ``params`` is a tree of arrays: a dict (``model.params``), lists
  (a textbook network's ``(net.biases, net.weights)`` with ``names=("biases",
  "weights")``), nested. The objective is the loss itself; any L2 term belongs in it.
* ``check_object(layer, *inputs)``: another library's layer object. Options name its
  dicts (``params="parameters"``, ``grads="gradients"``; dotted paths allowed) and
  methods; the trainable parameters are the keys of the gradient dict after a backward;
  parameters created by the first forward are found after it; a tuple output takes one
  upstream gradient per output (``backward(*upstream)``); ``reset(layer)`` runs before
  every forward (held-input lists, step counters). ``accumulates=True`` declares that
  backward adds into the gradients (``+=``, zeroed by the library between steps): the
  checker zeroes them before each backward and reads them after. Without the
  declaration, gradients that grow by the same step on identical calls are reported
  as accumulating (the bug it usually is).

>>> import numpy as np
>>> params = {"w": np.array([1.0, -2.0])}
>>> loss = lambda: float(np.sum(params["w"] ** 2))
>>> grads = lambda: {"w": 2 * params["w"]}
>>> check_loss(loss, grads, params).ok
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.adapters.functions import (
    Built,
    arg_names,
    build_function_problem,
    raise_unless_ok,
    run_built,
)
from gradcheck.adapters.trees import flatten, is_container, match, rebuild
from gradcheck.engine.options import CheckOptions, Options, documents_options
from gradcheck.engine.safety import (
    CheckInputError,
    CheckTypeError,
    Snapshot,
    UserCodeError,
    call_user,
    check_params,
    require_callable,
    scalar_output,
)
from gradcheck.engine.streams import stream
from gradcheck.results.result import CheckResult

if TYPE_CHECKING:
    from typing_extensions import Unpack


# ------------------------------------------------------------------ parameter trees
def param_leaves(params: Any, names: str | Sequence[str] | None, owner: str
                 ) -> list[tuple[str, np.ndarray]]:
    """``(name, array)`` for every leaf of a parameter tree, validated as parameters.

    Names: a dict's keys as they are (``W1``), a list's positions under ``params``
    (``params[0]``) unless ``names`` gives a root (``"weights"`` -> ``weights[0]``) or,
    for a tuple/list of trees, one root per element (``("biases", "weights")``).
    """
    if params is None:
        raise CheckTypeError(f"{owner}: params is None; pass the parameter arrays (a dict, "
                             f"list or nested tree) that the code reads")
    if isinstance(names, str):
        leaves = flatten(params, names)
    elif names is not None:
        if not isinstance(params, (list, tuple)) or len(params) != len(names):
            raise CheckInputError(f"{owner}: names={tuple(names)!r} gives one root per "
                                  f"element of a tuple/list of parameters; params has "
                                  f"{len(params) if is_container(params) else 1}")
        leaves = [leaf for tree, root in zip(params, names, strict=True)
                  for leaf in flatten(tree, root)]
    else:
        leaves = flatten(params, "" if isinstance(params, Mapping) or not is_container(params)
                         else "params")
        if len(leaves) == 1 and not leaves[0].name:
            leaves = flatten(params, "params")
    out = [(leaf.name, leaf.value) for leaf in leaves]
    check_params(owner, dict(out), {}, allow_empty=False)
    seen: dict[int, str] = {}
    for name, arr in out:
        if id(arr) in seen:
            raise CheckInputError(f"{owner}: {name} and {seen[id(arr)]} are the same array; "
                                  f"list each parameter once")
        seen[id(arr)] = name
    return out


def _snapshot(held: list[tuple[str, np.ndarray]], owner: str,
              current: Callable[[], list[tuple[str, np.ndarray]]]) -> Snapshot:
    return Snapshot(dict(held), owner=owner, current=lambda: dict(current()))


# ------------------------------------------------------------------ loss and grads
@documents_options
def check_loss(loss: Callable[[], Any], grads: Callable[[], Any] | None = None,
               params: Any = None, *, names: str | Sequence[str] | None = None,
               wrt: str | Sequence[str] | None = None,
               **options: Unpack[CheckOptions]) -> CheckResult:
    """Check ``grads()`` against differences of ``loss()`` over parameters held elsewhere.

    Parameters
    ----------
    loss : callable, ``() -> float`` (or ``() -> (float, grads)`` when ``grads`` is None)
        Reads the parameters from wherever they live (a model, a closure).
    grads : callable, ``() -> tree``, optional
        The gradients, shaped like ``params`` (a ``None`` entry: held constant).
    params : tree of float ndarrays
        The arrays ``loss`` reads; perturbed in place, restored bit-identically.
    names : str or sequence of str, optional
        Root name(s); see :func:`param_leaves`.
    wrt
        As for :func:`~gradcheck.adapters.functions.check_function`.

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> W = [np.ones((2, 2)), np.full(2, 0.5)]
    >>> cost = lambda: float(np.sum(np.tanh(W[0] @ W[1]) ** 2))
    >>> def backprop():
    ...     t = np.tanh(W[0] @ W[1]); d = 2 * t * (1 - t ** 2)
    ...     return [np.outer(d, W[1]), W[0].T @ d]
    >>> check_loss(cost, backprop, W, names="weights").ok
    True
    """
    opts, start = Options.of("check_loss", options), time.perf_counter()
    require_callable("loss", loss)
    if grads is not None:
        require_callable("grads", grads)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_loss")
    label = getattr(loss, "__name__", "loss")
    describe = f"loss ({label})"
    held = param_leaves(params, names, f"check_loss({label})")
    both = grads is None

    def f() -> Any:
        value = loss()
        if both:
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise CheckTypeError(f"{describe} returned {type(value).__name__}; without "
                                     f"grads= it must return (loss, grads)")
            value = value[0]
        return scalar_output(describe, value)

    gname = f"grads ({getattr(grads, '__name__', 'grads')})" if grads is not None else describe

    def reverse(cot: Any) -> tuple[Any, list[Any]]:
        g = loss()[1] if both else grads()
        tree = params if names is None or isinstance(names, str) else tuple(params)
        leaves = match(tree, g if names is None or isinstance(names, str) else tuple(g),
                       gname, "")
        scale = float(cot)
        return (), [None if v is None else np.asarray(v) * scale for v in leaves]

    with _snapshot(held, describe, lambda: param_leaves(params, names, describe)):
        built = build_function_problem(
            kind="check_loss", label=label, describe=describe, f=f, args=(), names=[],
            reverse=reverse, reverse_name=gname, forward=None,
            forward_name="", wrt=wrt, opts=opts, held=held, unit_cotangent=True)
        return run_built(built, opts, start)


# ------------------------------------------------------------------ layer objects
def _attr(obj: Any, dotted: str, owner: str) -> Any:
    value = obj
    for part in dotted.split("."):
        if not hasattr(value, part):
            raise CheckTypeError(f"{owner} has no attribute {dotted!r}; name the dict that "
                                 f"holds it (params=..., grads=...)")
        value = getattr(value, part)
    return value


def _accumulates(calls: list[list[np.ndarray]]) -> bool:
    """Gradients growing by the same nonzero step on identical calls (``+=``)."""
    if len(calls) < 3:
        return False
    first, second, third = calls[-3:]
    steps = [(b - a, c - b) for a, b, c in zip(first, second, third, strict=True)]
    return any(np.any(s1 != 0) for s1, _ in steps) and all(
        np.allclose(s1, s2, rtol=1e-6, atol=0) for s1, s2 in steps)


@documents_options
def check_object(layer: Any, *inputs: Any, params: str = "params", grads: str = "grads",
                 forward: str | Callable[..., Any] = "forward",
                 backward: str | Callable[..., Any] = "backward",
                 accumulates: bool = False, reset: Callable[[Any], Any] | None = None,
                 names: str | Sequence[str] | None = None,
                 wrt: str | Sequence[str] | None = None,
                 **options: Unpack[CheckOptions]) -> CheckResult:
    """Check a layer object of any library: input gradients and its parameter gradients.

    Parameters
    ----------
    layer : object
        With ``forward(*inputs) -> out`` (an array or a tuple of arrays) and
        ``backward(*upstream) -> dinputs`` (one per input, or one per float input, a
        single one bare; ``None`` for integer ids), and dicts (or trees) of parameters
        and gradients under the attribute names ``params`` and ``grads``.
    *inputs : arrays, trees of arrays, or constants
        Copied; never modified. Named ``x`` (one input) or ``x0``, ``x1``, … unless
        ``names`` says otherwise.
    params, grads : str
        Attribute names (dotted paths allowed) of the parameter and gradient dicts.
    forward, backward : str or callable
        Method names, or callables (``forward=lambda x: layer.forward(x, train=True)``).
    accumulates : bool
        The library's backward adds into the gradients (``+=``) by design: zero them
        before each backward, read them after.
    reset : callable, ``reset(layer)``, optional
        Called before every forward (clear held-input lists, step counters).
    wrt
        As for :func:`~gradcheck.adapters.functions.check_function`.

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> class Scale:
    ...     def __init__(self): self.parameters, self.gradients = {}, {}
    ...     def forward(self, x):
    ...         self.parameters.setdefault("w", np.full(x.shape[1], 0.5))  # lazy
    ...         self.x = x
    ...         return x * self.parameters["w"]
    ...     def backward(self, g):
    ...         self.gradients["w"] = self.gradients.get("w", 0) + np.sum(g * self.x, 0)
    ...         return g * self.parameters["w"]
    >>> check_object(Scale(), np.ones((2, 3)), params="parameters", grads="gradients",
    ...              accumulates=True).ok
    True
    """
    opts, start = Options.of("check_object", options), time.perf_counter()
    label = type(layer).__name__
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_object")
    if not inputs:
        raise CheckInputError("check_object needs the layer's inputs after the layer")
    def method(which: str | Callable[..., Any]) -> Callable[..., Any]:
        return which if callable(which) else _attr(layer, which, label)

    fwd_m, bwd_m = method(forward), method(backward)
    require_callable(f"{label}.{forward}", fwd_m)
    require_callable(f"{label}.{backward}", bwd_m)
    fwd, bwd = (f"{label}.{getattr(m, '__name__', m)}" for m in (forward, backward))
    roots = (arg_names(len(inputs), names) if names is not None else
             ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))])

    def call_forward(*work: Any) -> Any:
        if reset is not None:
            reset(layer)
        return method(forward)(*work)

    def gradient_dict() -> Any:
        return _attr(layer, grads, label)

    def zero_grads() -> None:
        g = gradient_dict()
        for leaf in flatten(g):
            if isinstance(leaf.value, np.ndarray) and leaf.value.flags.writeable:
                leaf.value[...] = 0
        if isinstance(g, dict):
            for k, v in list(g.items()):
                if not isinstance(v, np.ndarray) and np.isscalar(v):
                    g[k] = 0

    def run_backward(cot: Any, out: Any) -> Any:
        if accumulates:
            zero_grads()
        upstream = tuple(cot) if isinstance(out, tuple) else (cot,)
        return method(backward)(*upstream)

    # The first forward creates lazy parameters; a first backward the gradient dict. It
    # runs on a shifted input, so a layer that keeps its first input (a stale cache)
    # shows at the point (back to the point itself if the shift leaves the domain).
    rng = stream(opts.seed, "shifted input", 10)
    try:
        with np.errstate(all="ignore"):
            out = call_user(fwd, call_forward, *_shifted(inputs, rng))
    except UserCodeError:
        out = call_user(fwd, call_forward, *_shifted(inputs, None))
    if isinstance(out, list):
        out = tuple(out)
    ptree = _attr(layer, params, label)
    if not isinstance(ptree, Mapping):
        raise CheckTypeError(f"{label}.{params} is a {type(ptree).__name__}; name the dict "
                             f"of parameters with params=")
    upstream = [np.ones(np.shape(leaf.value)) for leaf in flatten(out)]
    call_user(bwd, run_backward, tuple(upstream) if isinstance(out, tuple) else upstream[0],
              out)
    gtree = gradient_dict()
    if not isinstance(gtree, Mapping):
        raise CheckTypeError(f"{label}.{grads} is a {type(gtree).__name__}; name the dict of "
                             f"gradients with grads=")
    trainable = [k for k in ptree if k in gtree]
    frozen = [k for k in ptree if k not in gtree]
    unknown = [k for k in gtree if k not in ptree]
    if unknown:
        raise CheckInputError(f"{label}.{grads} has keys {unknown} that {label}.{params} "
                              f"lacks (params keys: {list(ptree)}); name the right dicts")
    held = (param_leaves({k: ptree[k] for k in trainable}, "", label) if trainable else [])
    notes = [f"not trainable (no gradient in {label}.{grads}), held constant: "
             f"{', '.join(frozen)}"] if frozen else []
    if accumulates:
        notes.append(f"{label} accumulates gradients (declared): zeroed before each "
                     f"backward, read after")
    history: list[list[np.ndarray]] = []

    def f(*work: Any) -> Any:
        value = call_forward(*work)
        return tuple(value) if isinstance(value, list) else value

    def reverse(cot: Any, *work: Any) -> tuple[Any, list[Any]]:
        value = f(*work)
        dx = run_backward(cot, value)
        g = gradient_dict()
        read = [np.array(v, dtype=np.float64, copy=True) for v in
                match({k: ptree[k] for k in trainable}, {k: g[k] for k in trainable}, bwd)]
        history.append(read)
        return dx, read

    def current() -> list[tuple[str, np.ndarray]]:
        tree = _attr(layer, params, label)
        return [(leaf.name, leaf.value) for leaf in
                flatten({k: tree[k] for k in trainable if k in tree})]

    with _snapshot(held, label, current):
        built: Built = build_function_problem(
            kind="check_object", label=label, describe=fwd, f=f, args=inputs, names=roots,
            reverse=reverse, reverse_name=bwd, forward=None, forward_name="", wrt=wrt,
            opts=opts, held=held, extra_notes=notes)
        if held and not accumulates:
            cot = _cotangent_of(built)
            for _ in range(2):  # identical calls: does a gradient grow by the same step?
                call_user(bwd, reverse, cot, *_work_args(built))
            built.problem.accumulating = _accumulates(history)
            if built.problem.accumulating:
                built.problem.notes.append(
                    f"{bwd} adds to {label}.{grads} (+=): identical calls grow the "
                    f"gradients by the same step; if the library zeroes them between steps "
                    f"by design, pass accumulates=True")
        return run_built(built, opts, start)


def _shifted(inputs: Sequence[Any], rng: np.random.Generator | None) -> list[Any]:
    """Copies of ``inputs`` with every float leaf moved randomly (``rng=None``: not moved)."""
    def move(value: Any) -> Any:
        if not (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
            return np.array(value, copy=True) if isinstance(value, np.ndarray) else value
        if rng is None:
            return value.copy()
        noise = 0.1 * np.maximum(np.abs(value), 1.0) * rng.standard_normal(value.shape)
        return (value + noise).astype(value.dtype)

    return [rebuild(a, [move(leaf.value) for leaf in flatten(a)]) if is_container(a)
            else move(a) for a in inputs]


def _cotangent_of(built: Built) -> Any:
    return built.extra["cotangent"]()


def _work_args(built: Built) -> Sequence[Any]:
    return built.extra["args"]


def assert_loss(loss: Callable[[], Any], grads: Callable[[], Any] | None = None,
                params: Any = None, **opts: Any) -> CheckResult:
    """:func:`check_loss`, raising :class:`~gradcheck.GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return raise_unless_ok(check_loss(loss, grads, params, **opts))


def assert_object(layer: Any, *inputs: Any, **opts: Any) -> CheckResult:
    """:func:`check_object`, raising :class:`~gradcheck.GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return raise_unless_ok(check_object(layer, *inputs, **opts))


__all__ = ["assert_loss", "assert_object", "check_loss", "check_object", "param_leaves"]
