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
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.adapters import state_probes
from gradcheck.adapters.functions import (
    Built,
    arg_names,
    build_function_problem,
    raise_unless_ok,
    run_built,
)
from gradcheck.adapters.shipping import options_with_executor
from gradcheck.adapters.trees import flatten, is_container, match, rebuild
from gradcheck.engine.options import CheckOptions, documents_options
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
               executor: Executor | None = None,
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
    opts, start = options_with_executor("check_loss", options, executor), time.perf_counter()
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
        g = loss()[1] if grads is None else grads()
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


def _attribute_name(obj: Any, given: Any, option: str, owner: str) -> str:
    """The attribute name ``params=``/``grads=`` stand for: the name itself, or, for the
    dict object passed instead, the attribute of ``obj`` that *is* that object (read
    afresh on every call: a backward may rebind it)."""
    if isinstance(given, str):
        return given
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if value is given:
            return name
    raise CheckTypeError(f"{option}= names the attribute of {owner} that holds the dict "
                         f"(e.g. {option}='weights'); got a {type(given).__name__} that is "
                         f"not one of {owner}'s attributes")


@dataclass(frozen=True)
class _LayerCalls:
    """The calls the checker makes on another library's layer object (named by options)."""

    layer: Any
    label: str
    params: str
    grads: str
    forward_name: str
    backward_name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    accumulates: bool
    reset: Callable[[Any], Any] | None

    @classmethod
    def of(cls, layer: Any, params: str | Any, grads: str | Any,
           forward: str | Callable[..., Any], backward: str | Callable[..., Any],
           accumulates: bool, reset: Callable[[Any], Any] | None) -> _LayerCalls:
        label = type(layer).__name__
        params = _attribute_name(layer, params, "params", label)
        grads = _attribute_name(layer, grads, "grads", label)
        fwd_method, bwd_method = (m if callable(m) else _attr(layer, m, label)
                                  for m in (forward, backward))
        for given, method in ((forward, fwd_method), (backward, bwd_method)):
            require_callable(f"{label}.{given}", method)
        fwd, bwd = (f"{label}.{getattr(m, '__name__', m)}" for m in (forward, backward))
        return cls(layer, label, params, grads, fwd, bwd, fwd_method, bwd_method, accumulates,
                   reset)

    def run_forward(self, *work: Any) -> Any:
        if self.reset is not None:
            self.reset(self.layer)
        value = self.forward(*work)
        return tuple(value) if isinstance(value, list) else value

    def run_backward(self, cot: Any, out: Any) -> Any:
        if self.accumulates:
            self.zero_grads()
        upstream = tuple(cot) if isinstance(out, tuple) else (cot,)
        return self.backward(*upstream)

    def mapping(self, which: str) -> Any:
        """The parameter (``which="params"``) or gradient dict, as the layer holds it now."""
        return _attr(self.layer, self.params if which == "params" else self.grads, self.label)

    def zero_grads(self) -> None:
        g = self.mapping("grads")
        for leaf in flatten(g):
            if isinstance(leaf.value, np.ndarray) and leaf.value.flags.writeable:
                leaf.value[...] = 0
        if isinstance(g, dict):
            for k, v in list(g.items()):
                if not isinstance(v, np.ndarray) and np.isscalar(v):
                    g[k] = 0


def _first_calls(calls: _LayerCalls, inputs: Sequence[Any], seed: int) -> None:
    """Run forward and backward once, as a training step would, before anything is read.

    The first forward creates lazy parameters; a first backward the gradient dict. It runs
    on a shifted input, so a layer that keeps its first input (a stale cache) shows at the
    point (back to the point itself if the shift leaves the domain).
    """
    try:
        with np.errstate(all="ignore"):
            out = call_user(calls.forward_name, calls.run_forward,
                            *_shifted(inputs, stream(seed, "shifted input", 10)))
    except UserCodeError:
        out = call_user(calls.forward_name, calls.run_forward, *_shifted(inputs, None))
    upstream = [np.ones(np.shape(leaf.value)) for leaf in flatten(out)]
    call_user(calls.backward_name, calls.run_backward,
              tuple(upstream) if isinstance(out, tuple) else upstream[0], out)


def _trainable(calls: _LayerCalls) -> tuple[list[str], list[str]]:
    """The parameter keys with a gradient (trainable) and those without (held constant)."""
    ptree, gtree = calls.mapping("params"), calls.mapping("grads")
    for which, tree in (("params", ptree), ("grads", gtree)):
        if not isinstance(tree, Mapping):
            attr = calls.params if which == "params" else calls.grads
            raise CheckTypeError(f"{calls.label}.{attr} is a {type(tree).__name__}; name the "
                                 f"dict of {'parameters' if which == 'params' else 'gradients'}"
                                 f" with {which}=")
    unknown = [k for k in gtree if k not in ptree]
    if unknown:
        raise CheckInputError(f"{calls.label}.{calls.grads} has keys {unknown} that "
                              f"{calls.label}.{calls.params} lacks (params keys: {list(ptree)}); "
                              f"name the right dicts")
    return [k for k in ptree if k in gtree], [k for k in ptree if k not in gtree]


def _state_notes(calls: _LayerCalls, frozen: list[str]) -> list[str]:
    notes = [f"not trainable (no gradient in {calls.label}.{calls.grads}), held constant: "
             f"{', '.join(frozen)}"] if frozen else []
    if calls.accumulates:
        notes.append(f"{calls.label} accumulates gradients (declared): zeroed before each "
                     f"backward, read after")
    return notes


def _with_accumulation_probe(built: Built, calls: _LayerCalls,
                             reverse: Callable[..., Any],
                             history: list[list[np.ndarray]]) -> Built:
    """``built`` with ``accumulating`` answered by two more identical backward calls."""
    cot = _cotangent_of(built)
    for _ in range(2):  # identical calls: does a gradient grow by the same step?
        call_user(calls.backward_name, reverse, cot, *_work_args(built))
    if not state_probes.accumulates(history):
        return built
    note = (f"{calls.backward_name} adds to {calls.label}.{calls.grads} (+=): identical calls "
            f"grow the gradients by the same step; if the library zeroes them between steps "
            f"by design, pass accumulates=True")
    problem = replace(built.problem, accumulating=True, notes=[*built.problem.notes, note])
    return replace(built, problem=problem)


@documents_options
def check_object(layer: Any, *inputs: Any, params: str | Any = "params",
                 grads: str | Any = "grads",
                 forward: str | Callable[..., Any] = "forward",
                 backward: str | Callable[..., Any] = "backward",
                 accumulates: bool = False, reset: Callable[[Any], Any] | None = None,
                 names: str | Sequence[str] | None = None,
                 wrt: str | Sequence[str] | None = None,
                 executor: Executor | None = None,
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
    params, grads : str or dict
        Attribute names (dotted paths allowed) of the parameter and gradient dicts, or
        the dicts themselves when they are attributes of ``layer`` (then looked up by
        identity and read by that name on every call).
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
    opts, start = options_with_executor("check_object", options, executor), time.perf_counter()
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_object")
    if not inputs:
        raise CheckInputError("check_object needs the layer's inputs after the layer")
    calls = _LayerCalls.of(layer, params, grads, forward, backward, accumulates, reset)
    roots = (arg_names(len(inputs), names) if names is not None else
             ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))])
    _first_calls(calls, inputs, opts.seed)
    trainable, frozen = _trainable(calls)
    ptree = calls.mapping("params")
    held = (param_leaves({k: ptree[k] for k in trainable}, "", calls.label) if trainable
            else [])
    history: list[list[np.ndarray]] = []

    def reverse(cot: Any, *work: Any) -> tuple[Any, list[Any]]:
        dx = calls.run_backward(cot, calls.run_forward(*work))
        g = calls.mapping("grads")
        read = [np.array(v, dtype=np.float64, copy=True) for v in
                match({k: ptree[k] for k in trainable}, {k: g[k] for k in trainable},
                      calls.backward_name)]
        history.append(read)
        return dx, read

    def current() -> list[tuple[str, np.ndarray]]:
        tree = calls.mapping("params")
        return [(leaf.name, leaf.value) for leaf in
                flatten({k: tree[k] for k in trainable if k in tree})]

    with _snapshot(held, calls.label, current):
        built: Built = build_function_problem(
            kind="check_object", label=calls.label, describe=calls.forward_name,
            f=calls.run_forward, args=inputs, names=roots, reverse=reverse,
            reverse_name=calls.backward_name, forward=None, forward_name="", wrt=wrt,
            opts=opts, held=held, extra_notes=_state_notes(calls, frozen))
        if held and not accumulates:
            built = _with_accumulation_probe(built, calls, reverse, history)
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
