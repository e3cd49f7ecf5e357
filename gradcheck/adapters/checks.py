"""Public entry points: ``check_grad``, ``check_jacobian``, ``check_layer``, ``check_model``,
``check_hvp`` and their ``assert_*`` twins.

Every check builds one :class:`~gradcheck.engine.runner.Problem` here and hands it to
:func:`gradcheck.engine.runner.run`: named flat targets (a float64 working copy of the input,
the user's own parameter arrays) with their analytic gradients, and a scalar objective
``φ()`` reading them —

* ``check_grad``: ``φ = f(x)``;
* ``check_jacobian``: ``φ = v·f(x)`` with a seeded Gaussian ``v`` (the analytic side is
  ``vjp(x, v)`` or ``vᵀ jac(x)``): any nonzero error in the Jacobian shows in ``vᵀJ``
  with probability one;
* ``check_hvp``: ``φ = w·grad(x)`` whose gradient is ``H w`` = ``hvp(x, w)``;
* ``check_layer``: ``φ = Σ forward(x)·G`` with a seeded upstream gradient ``G``;
* ``check_model``: ``φ = loss(model(x), y) + model.penalty()``.

Options shared by all checks
----------------------------
``mode``, ``rtol``, ``atol``, ``eps``, ``method``, ``seed``, ``directions`` and
``allow_unresolved``: declared once, with their types, defaults and help, by
:class:`gradcheck.engine.options.Options`; every check's docstring lists them (made from
that declaration), and so do the pytest plugin's flags and ``gradcheck check --help``.

Two more keywords, declared with their help in ``Options`` too (``KEYWORD_NAMES``; each
check whose signature names one documents it):

structured : bool (``check_layer``, ``check_jacobian``)
    Structured full mode (default True): where input and output share a leading batch
    axis, the samples' independence is verified (each sample moved alone must leave
    every other sample's output bit-identical) and then one entry of every sample is
    differenced per evaluation (N times fewer evaluations for the input); a layer that
    couples its samples (batch norm) is checked in plain full mode, with a note. Where
    input and output are channels-first with as many spatial axes (convolution,
    pooling), the input is also cut into tiles whose footprints are discovered the same
    way, and tiles with disjoint footprints are differenced together where that costs
    fewer evaluations (a layer whose tiles reach everything, as an LSTM over time, is
    grouped by samples, with a note). See :mod:`gradcheck.engine.structure_plan`.
    ``mode="auto"`` counts a verified input as the evaluations of one grouped pass (one
    sample's entries, or Σ over colours of the largest tile). ``check_function`` (no
    keyword) always offers it for its first batched input.
executor : concurrent.futures.Executor, optional (every check here; ``check_function``,
    ``check_pair``, ``check_object`` and ``check_loss`` in their modules)
    Spread full mode's evaluations over a process pool (or dask's
    ``Client.get_executor()``); the function travels by cloudpickle when installed
    (``gradcheck[parallel]``), else by pickle. Results are identical to the serial run.
    See :mod:`gradcheck.engine.parallel` for when it pays.

What the checks also do
-----------------------
* φ is evaluated at the unperturbed point three times (before, between and after the
  differences); different values make the result ``nondeterministic`` (not a mismatch).
* ``check_layer``/``check_model`` run the user's code first on a shifted input, then at
  ``x``, then on another input and at ``x`` again: a backward that keeps an earlier
  input fails at ``x`` and is flagged ``history_dependent`` (a stale cache).
* The output precision is read from the outputs themselves (an output computed in
  float32 is exactly float32-representable even when stored as float64), so the step
  and tolerances follow what the function really resolves.

At a kink each entry must lie between its own one-sided derivatives, and tied kinks are
also judged together (:mod:`gradcheck.engine.kinks`): the full gradient routed to *every*
tied maximum is wrong; a convention outside the one-sided derivatives that is right
everywhere nearby is inconclusive, with the code ``kink-convention``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.adapters.contracts import Layer, Loss, Model
from gradcheck.adapters.diagnosis_facts import ContributionProbe
from gradcheck.adapters.diagnosis_facts import integer_arrays as _integer_arrays
from gradcheck.adapters.shipping import dumps_for_workers
from gradcheck.adapters.state_probes import accumulates, stale_after_other_input
from gradcheck.diagnosis.layouts import layouts_problem
from gradcheck.engine.fast import run_fast
from gradcheck.engine.numeric import Judging, Objective, Target, rms
from gradcheck.engine.options import CheckOptions, Options, documents_options
from gradcheck.engine.runner import Problem, run
from gradcheck.engine.safety import (
    FATAL,
    CheckInputError,
    CheckTypeError,
    OffPointFailure,
    Snapshot,
    UserCodeError,
    as_float_array,
    bit_identical,
    call_user,
    check_gradient_array,
    check_params,
    off_point,
    real_part,
    require_callable,
    require_finite,
    require_instance,
    require_numeric,
    require_unmutated,
    scalar_output,
)
from gradcheck.engine.streams import stream
from gradcheck.engine.tiles import Layout
from gradcheck.engine.tolerances import (
    GENERIC_NUDGE,
    Precision,
    coarser,
    observed_precision,
    precision_of,
)
from gradcheck.results.result import CheckResult, GradientMismatch, LayerFlow

#: A layer whose gradient norm is below this fraction of the largest layer's is vanishing.
FLOW_VANISHING = 1e-5
#: A layer gradient norm above this is exploding (losses are means: healthy norms are O(1)).
FLOW_EXPLODING = 1e3

if TYPE_CHECKING:
    from typing_extensions import Unpack


# ------------------------------------------------------------------ shared pieces
def _first_call(describe: str, fn: Callable[[np.ndarray], Any], x0: np.ndarray
                ) -> tuple[np.ndarray, Any]:
    """Call ``fn`` on a float64 copy of ``x0``; fall back to ``x0``'s dtype if that raises.

    Returns the working input (never the user's array) and the output.
    """
    if x0.dtype != np.float64 and x0.dtype.kind == "f":
        xw = x0.astype(np.float64)
        try:
            return xw, fn(xw)
        except FATAL as err:  # never a dtype preference
            raise UserCodeError(f"{describe} raised {type(err).__name__}: {err}") from err
        except Exception:  # the function insists on its own dtype: difference in it
            pass
    xw = x0.copy()
    return xw, call_user(describe, fn, xw)


def _shifted_first(describe: str, fn: Callable[[np.ndarray], Any], x0: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """Call ``fn`` first on a shifted copy of ``x0``, then on ``x0``.

    A backward that memoizes its *first* input (a stale cache) would otherwise be right
    at ``x`` by accident; this way it shows at ``x``. Returns the working input ``xw``,
    the shifted one (None if ``fn`` raised there: it may lie outside the domain) and
    ``fn(xw)``.
    """
    noise = 0.1 * np.maximum(np.abs(x0), 1.0) * rng.standard_normal(x0.shape)
    shifted = (x0 + noise).astype(x0.dtype)
    try:
        with np.errstate(all="ignore"):
            xo, out = off_point(describe, _first_call, describe, fn, shifted)
    except OffPointFailure:  # outside the domain, say: the stale-first-input probe is off
        xw, value = _first_call(describe, fn, x0)
        return xw, None, value
    require_numeric(describe, out)  # NaN may mean "outside the domain"; None never does
    xw = x0.astype(xo.dtype)
    return xw, xo, call_user(describe, fn, xw)


def _earlier(analytic: Callable[..., list[np.ndarray]], xo: np.ndarray | None
             ) -> list[np.ndarray] | None:
    """Analytic gradients at the shifted input (None when unavailable there)."""
    if xo is None:
        return None
    try:
        with np.errstate(all="ignore"):
            return off_point("the gradient", analytic, xo)
    except OffPointFailure:  # outside the domain: no earlier gradients to compare with
        return None


def _output_array(describe: str, value: Any) -> np.ndarray:
    if value is None:
        raise CheckTypeError(f"{describe} returned None; it must return an array")
    if isinstance(value, (tuple, list)):
        raise CheckTypeError(f"{describe} returned a {type(value).__name__}; it must return "
                             f"one array (check a layer that returns several outputs through "
                             f"a wrapper that returns the one to differentiate)")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc":
        raise CheckTypeError(f"{describe} returned dtype {arr.dtype}; it must return floats")
    require_finite(f"the output of {describe}", arr)
    real_part(f"the output of {describe}", arr)  # a nonzero imaginary part is refused
    return arr


def _generic_output(describe: str, fn: Callable[[np.ndarray], Any], xw: np.ndarray,
                    storage: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Output at a generic point near ``xw`` (realized in ``storage``).

    Outputs at the given point may be "simple" numbers (exact in float16 because the
    input is, as after relu or max-pool); a generic point shows the real output precision.
    """
    nudge = GENERIC_NUDGE * np.maximum(np.abs(xw), 1.0) * rng.standard_normal(xw.shape)
    z = (xw + nudge).astype(storage).astype(xw.dtype)
    try:
        with np.errstate(all="ignore"):
            raw = fn(z)
    except FATAL as err:
        raise UserCodeError(f"{describe} raised {type(err).__name__}: {err}") from err
    except Exception:  # outside the domain after all: the outputs at x must do
        return np.zeros(0)
    require_numeric(describe, raw)  # garbage is garbage, here too
    out = np.asarray(np.real(raw), dtype=np.float64).ravel()
    return out[np.isfinite(out)]  # NaN/Inf there must not blur the precision estimate


def _noise_of(y: np.ndarray, g: np.ndarray) -> float:
    return float(np.sum(np.abs(np.real(y) * g)))


def _start(owner: str, options: CheckOptions, structured: bool = True,
           executor: Executor | None = None) -> tuple[Options, float]:
    dumps = dumps_for_workers() if executor is not None else None
    return (Options.of(owner, options, structured=structured, executor=executor, dumps=dumps),
            time.perf_counter())


def _batch_layout(position: int, x0: np.ndarray, y: np.ndarray,
                  products: Callable[[], np.ndarray]) -> Layout | None:
    """The batch layout of φ when input and output share a leading batch axis: samples
    (N ≥ 2), and tiles where both are channels-first with as many spatial axes.

    Only offered: the engine verifies the structure before using it (structured full
    mode, :mod:`gradcheck.engine.structure_plan`).
    """
    if x0.ndim < 2 or y.ndim < 1 or y.shape[0] != x0.shape[0] or x0.size == 0:
        return None
    return Layout(position, x0.shape, (y.shape,), products)


def _products(weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``weights ⊙ out``, flat float64 (the elementwise parts of φ)."""
    return np.asarray(weights * out, dtype=np.float64).reshape(-1)


def _aliased(grads: Mapping[str, Any], params: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """Parameters whose gradient array is the parameter array (or shares its memory)."""
    return tuple(k for k in params if isinstance(grads.get(k), np.ndarray)
                 and (grads[k] is params[k] or np.shares_memory(grads[k], params[k])))


# ------------------------------------------------------------------ check_grad & co
def _scalar_problem(kind: str, label: str, describe: str, f: Callable[[np.ndarray], Any],
                    analytic: Callable[[np.ndarray], Any], x: Any,
                    complex_fn: Callable[[np.ndarray], complex] | None = None,
                    noise_of: Callable[[np.ndarray], float] | None = None,
                    declared: np.dtype | None = None,
                    seen: np.ndarray | None = None, analytic_name: str = "") -> Problem:
    """``f(x)`` and its claimed gradient ``analytic(x)`` as a one-target problem.

    ``analytic_name`` names the gradient's author in errors (``"grad (my_grad)"``).
    """
    x0 = as_float_array("x", x)
    analytic_name = analytic_name or f"the gradient of {label}"
    xw, value = _first_call(describe, f, x0)  # x0 itself is never handed to user code
    require_unmutated(describe, xw, x0.astype(xw.dtype, copy=False))
    f0 = scalar_output(describe, value)
    handed = xw.copy()
    grad = check_gradient_array(analytic_name, call_user(analytic_name, analytic, handed),
                                x0.shape)
    require_unmutated(analytic_name, handed, xw)
    del handed  # memory: fast mode's peak is a multiple of the input (see engine/fast.py)
    phi = _scalar_objective(f, xw)
    again = scalar_output(describe, call_user(describe, phi))
    out_dtype = declared if declared is not None else np.asarray(value).dtype
    if out_dtype.kind not in "fc":
        out_dtype = np.dtype(np.float64)
    noise = noise_of(xw) if noise_of is not None else abs(f0)
    target = Target("x", "input", xw, grad.reshape(x0.shape), storage=x0.dtype)

    def analytic_at() -> list[np.ndarray]:  # at xw as it is now (engine.kinks moves it)
        return [check_gradient_array(analytic_name, call_user(analytic_name, analytic,
                                                              xw.copy()), x0.shape)]

    return Problem(kind=kind, label=label, describe=describe, phi=phi, targets=[target],
                   f0=again, noise=noise, precision=precision_of(out_dtype),
                   grad_precision=precision_of(x0.dtype), evaluations=2,
                   batch_size=None, nondeterministic=again != f0, complex_fn=complex_fn,
                   seen=np.array([f0, again]) if seen is None else seen, declared=out_dtype,
                   phi_is_output=seen is None, facts={"indices": _integer_arrays(f, analytic)},
                   analytic_at=analytic_at)


def _scalar_objective(f: Callable[[np.ndarray], Any], xw: np.ndarray) -> Objective:
    def phi() -> float:
        value = f(xw)
        if type(value) is float:  # the common case, kept cheap
            return value
        return float(real_part("f", np.asarray(value)).reshape(()))
    return phi


@documents_options
def check_grad(f: Callable[[np.ndarray], float], grad: Callable[[np.ndarray], np.ndarray],
               x: Any, *, executor: Executor | None = None,
               **options: Unpack[CheckOptions]) -> CheckResult:
    """Check ``grad(x)`` against finite differences of the scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable, ndarray -> float
        Scalar function of ``x: (any shape)``.
    grad : callable, ndarray -> ndarray
        Its claimed gradient, shape of ``x``.
    x : array_like, float
        Point to check at (copied; never modified).

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> check_grad(lambda x: np.sum(x**3), lambda x: 3 * x**2, np.arange(1.0, 4.0)).ok
    True
    """
    opts, start = _start("check_grad", options, executor=executor)
    require_callable("f", f)
    require_callable("grad", grad)
    if _is_tree(x):  # a nested dict / list / tuple of arrays: the general adapter
        from gradcheck.adapters.functions import check_function
        from gradcheck.adapters.trees import flatten, rebuild

        def vjp(g: Any, z: Any) -> Any:
            tree = grad(z)
            return rebuild(tree, [None if leaf.value is None else np.asarray(leaf.value) * g
                                  for leaf in flatten(tree)])

        vjp.__name__ = getattr(grad, "__name__", "grad")
        return check_function(f, x, vjp=vjp, names="x", executor=executor, **options)
    label = getattr(f, "__name__", "f")
    complex_fn = _complex_checked(f, x) if opts.method == "complex" else None
    problem = _scalar_problem("check_grad", label, f"f ({label})", f, grad, x,
                              complex_fn=complex_fn,
                              analytic_name=f"grad ({getattr(grad, '__name__', 'grad')})")
    return run(problem, opts, start)


def _complex_checked(fn: Callable[[np.ndarray], Any], x: Any) -> Callable[[np.ndarray], Any]:
    """Return ``fn`` after verifying it accepts complex input (clear error otherwise)."""
    probe = np.array(x, dtype=np.complex128)
    try:
        value = fn(probe)
        ok = np.iscomplexobj(np.asarray(value))
    except Exception as err:
        raise CheckTypeError(f"method='complex' needs a function that accepts complex input; "
                             f"calling it on complex x raised {type(err).__name__}: {err}. "
                             f"Use method='central'") from err
    if not ok:
        raise CheckTypeError("method='complex' needs a function that keeps complex values "
                             "(it returned a real result for complex x, e.g. via abs or "
                             "a cast); use method='central'")
    return fn


@documents_options
def check_jacobian(f: Callable[[np.ndarray], np.ndarray], x: Any, *,
                   vjp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                   jac: Callable[[np.ndarray], np.ndarray] | None = None,
                   structured: bool = True, executor: Executor | None = None,
                   **options: Unpack[CheckOptions]) -> CheckResult:
    """Check a vector-Jacobian product ``vjp(x, v)`` or a Jacobian ``jac(x)`` of ``f``.

    The check differences ``φ = v·f(x)`` for a seeded Gaussian ``v`` (fast mode:
    ``vᵀJu``): any nonzero error in ``J`` shows in ``vᵀJ`` with probability one.

    Parameters
    ----------
    f : callable, ``x -> y``
        ``x: (any shape)``, ``y: (any shape)``, float.
    x : array_like, float
        Point to check at (copied; never modified).
    vjp : callable, ``(x, v) -> vᵀJ``, optional
        ``v: y.shape``; returns ``x.shape``. Exactly one of ``vjp`` and ``jac``.
    jac : callable, ``x -> J``, optional
        ``J: y.shape + x.shape``.
    structured, executor
        See :mod:`gradcheck.adapters.checks`.

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> check_jacobian(lambda x: A @ x, np.ones(2), jac=lambda x: A).ok
    True
    """
    opts, start = _start("check_jacobian", options, structured, executor)
    require_callable("f", f)
    if (vjp is None) == (jac is None):
        raise CheckInputError("check_jacobian needs exactly one of vjp=(x, v) -> vᵀJ or "
                              "jac=x -> J")
    if _is_tree(x):  # a nested dict / list / tuple of arrays: the general adapter
        from gradcheck.adapters.functions import check_function
        if vjp is None:
            raise CheckInputError("a tree x needs vjp=(x, v) -> vᵀJ (a Jacobian of a tree "
                                  "has no single shape)")
        user_vjp = vjp

        def tree_vjp(v: Any, z: Any) -> Any:
            return user_vjp(z, v)

        tree_vjp.__name__ = getattr(vjp, "__name__", "vjp")
        return check_function(f, x, vjp=tree_vjp, names="x", executor=executor, **options)
    label = getattr(f, "__name__", "f")
    x0 = as_float_array("x", x)
    xw, y = _first_call(f"f ({label})", f, x0)
    y0 = _output_array(f"f ({label})", y)
    v = stream(opts.seed, "upstream").standard_normal(y0.shape)
    if vjp is not None:
        require_callable("vjp", vjp)
        analytic = lambda z: vjp(z, v.copy())  # noqa: E731
    else:
        require_callable("jac", jac)

        def analytic(z: np.ndarray) -> np.ndarray:
            assert jac is not None  # checked callable above
            J = check_gradient_array("jac(x)", call_user("jac", jac, z), y0.shape + x0.shape)
            return np.tensordot(v, J, axes=v.ndim)

    def scalarized(z: np.ndarray) -> Any:
        out = f(z)
        if np.shape(out) != y0.shape:
            raise CheckInputError(f"f returned shape {np.shape(out)}, then {y0.shape}")
        return np.sum(v * out)

    complex_fn = _complex_checked(scalarized, xw) if opts.method == "complex" else None
    problem = _scalar_problem("check_jacobian", label, f"f ({label})", scalarized, analytic,
                              x0, complex_fn=complex_fn,
                              noise_of=lambda z: _noise_of(y0, v), declared=y0.dtype,
                              seen=np.append(y0, _generic_output(
                                  f"f ({label})", f, xw, x0.dtype,
                                  stream(opts.seed, "shifted input"))))
    checked = problem.targets[0].array

    def products() -> np.ndarray:
        out = np.asarray(f(checked))
        if out.shape != y0.shape:
            raise CheckInputError(f"f returned shape {out.shape}, then {y0.shape}")
        return _products(v, out)

    problem = replace(problem, layout=_batch_layout(0, x0, y0, products))
    return run(problem, opts, start)


@documents_options
def check_hvp(grad: Callable[[np.ndarray], np.ndarray],
              hvp: Callable[[np.ndarray, np.ndarray], np.ndarray], x: Any, *,
              executor: Executor | None = None,
              **options: Unpack[CheckOptions]) -> CheckResult:
    """Check a Hessian-vector product ``hvp(x, w)`` against differences of ``grad``.

    Differences ``φ = w·grad(x)`` (seeded Gaussian ``w``), whose gradient is ``H w``
    because a Hessian is symmetric.

    Parameters
    ----------
    grad : callable, ``x -> g``
        The gradient of some scalar function; ``g: x.shape``.
    hvp : callable, ``(x, w) -> H w``
        ``w: x.shape``; returns ``x.shape``.
    x : array_like, float
        Point to check at (copied; never modified).

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> check_hvp(lambda x: 4 * x**3, lambda x, w: 12 * x**2 * w, np.array([1.0, -2.0])).ok
    True
    """
    opts, start = _start("check_hvp", options, executor=executor)
    require_callable("grad", grad)
    require_callable("hvp", hvp)
    label = getattr(grad, "__name__", "grad")
    x0 = as_float_array("x", x)
    w = stream(opts.seed, "upstream").standard_normal(x0.shape)
    g0 = _output_array(f"grad ({label})", call_user(f"grad ({label})", grad, x0.copy()))
    if g0.shape != x0.shape:
        raise CheckInputError(f"grad returned shape {g0.shape}, expected x's shape {x0.shape}")

    def scalarized(z: np.ndarray) -> Any:
        return np.sum(w * grad(z))

    complex_fn = _complex_checked(scalarized, x0) if opts.method == "complex" else None
    problem = _scalar_problem("check_hvp", label, f"grad ({label})", scalarized,
                              lambda z: hvp(z, w.copy()), x0, complex_fn=complex_fn,
                              noise_of=lambda z: _noise_of(g0, w), declared=g0.dtype,
                              seen=np.append(g0, _generic_output(
                                  f"grad ({label})", grad, x0.astype(np.float64), x0.dtype,
                                  stream(opts.seed, "shifted input"))))
    return run(problem, opts, start)


# ------------------------------------------------------------------ layers
def _require_layer(layer: Any) -> str:
    require_instance("layer", layer)
    label = type(layer).__name__
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr, None)):
            raise CheckTypeError(f"{label} has no {attr}() method; a layer needs forward(x) "
                                 f"and backward(grad_out) (see the layer protocol)")
    for attr in ("params", "grads"):
        if not hasattr(layer, attr):
            raise CheckTypeError(f"{label} has no .{attr} dict; a layer without parameters "
                                 f"still needs params = grads = {{}}")
    return label


def _grads_of(owner: str, grads: Mapping[str, Any], params: Mapping[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
    if set(grads) != set(params):
        raise CheckInputError(f"{owner}.grads keys {sorted(grads)} differ from params keys "
                              f"{sorted(params)} after backward: backward must fill one "
                              f"gradient per parameter, under the same name")
    return {k: check_gradient_array(f"{owner}.grads[{k!r}]", grads[k], params[k].shape)
            for k in params}


def _refuse_integer_input(label: str, x: Any) -> None:
    """Integer ``x`` (an embedding's ids) cannot be differenced: name the check that can."""
    kind = np.asarray(x).dtype.kind if isinstance(x, (np.ndarray, np.generic, list)) else ""
    if kind not in ("i", "u", "b"):
        return
    raise CheckTypeError(
        f"x of {label} has integer/bool dtype {np.asarray(x).dtype} (ids or a mask?): "
        f"check_layer differences its input, and integer ids have no gradient (converting "
        f"them to floats would index with floats). Hold the ids constant and check the "
        f"parameters with gradcheck.check_object(layer, x) (integer inputs are constants "
        f"there; backward may return None for them), or with check_function(f, x, W, "
        f"vjp=...) where the ids are an argument")


@dataclass
class _LayerCalls:
    """The calls ``check_layer`` makes on a layer, the upstream gradient ``G`` fixed."""

    layer: Layer
    label: str
    x0: np.ndarray  # the user's input, as given (its shape and dtype)
    y: np.ndarray  # the output at the shifted-then-restored point
    G: np.ndarray
    #: The note, once, when ``backward`` writes into the ``grad_out`` it was handed.
    mutated_grad_out: list[str] = field(default_factory=list)

    @property
    def fwd(self) -> str:
        return f"{self.label}.forward"

    @property
    def bwd(self) -> str:
        return f"{self.label}.backward"

    def output(self, z: np.ndarray) -> np.ndarray:
        """``forward(z)`` validated: an array of the output's shape."""
        out = _output_array(self.fwd, call_user(self.fwd, self.layer.forward, z))
        if out.shape != self.y.shape:
            raise CheckInputError(f"{self.fwd} returned shape {out.shape}, then {self.y.shape}")
        return out

    def analytic(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Forward on each input in turn (all but the last off the point: skippable), then
        backward on a copy of ``G``: ``[dx, *param grads]``."""
        for z in inputs[:-1]:
            off_point(self.fwd, lambda z: _output_array(
                self.fwd, call_user(self.fwd, self.layer.forward, z)), z)
        self.output(inputs[-1])
        handed = self.G.copy()
        dx = check_gradient_array(f"{self.bwd} (returned dL/dx)",
                                  call_user(self.bwd, self.layer.backward, handed),
                                  self.x0.shape)
        if not bit_identical(handed, self.G) and not self.mutated_grad_out:
            self.mutated_grad_out.append(
                f"{self.bwd} modified grad_out in place (judged here on a private copy); in "
                f"a network that array may be another layer's dx or feed a second branch: "
                f"copy it before writing to it")
        return [dx, *_grads_of(self.label, self.layer.grads, self.layer.params).values()]

    def phi(self, xw: np.ndarray) -> float:
        """``Σ G · forward(xw)`` (the objective; no call wrapper on this hot path)."""
        out = self.layer.forward(xw)
        if type(out) is not np.ndarray or out.shape != self.G.shape:  # garbage, not a value
            out = _output_array(self.fwd, out)
            if out.shape != self.G.shape:
                raise CheckInputError(f"{self.fwd} returned shape {out.shape}, then "
                                      f"{self.G.shape}")
        # np.sum, not BLAS vdot: no thread wake-up per call, and pairwise summation
        return float(np.sum(self.G * out))

    def products(self, xw: np.ndarray) -> np.ndarray:
        """Elementwise parts ``G ⊙ forward(xw)`` of φ (structured full mode)."""
        out = _output_array(self.fwd, self.layer.forward(xw))
        if out.shape != self.G.shape:
            raise CheckInputError(f"{self.fwd} returned shape {out.shape}, then {self.G.shape}")
        return _products(self.G, out)


def _earlier_probe(calls: _LayerCalls, earlier: list[np.ndarray], xo: np.ndarray,
                   grad_prec: Precision, seed: int
                   ) -> Callable[[Precision, float], tuple[bool, int]]:
    """Is the gradient computed earlier (at ``xo``) right there? Two random directions at
    the calibrated precision and noise: a wrong gradient equal to it is a stale cache."""
    params = calls.layer.params

    def earlier_is_right(precision: Precision, noise: float) -> tuple[bool, int]:
        xo_work = xo.copy()
        targets = [Target("x", "input", xo_work, earlier[0], storage=calls.x0.dtype)]
        targets += [Target(k, "param", params[k], g)
                    for k, g in zip(params, earlier[1:], strict=True)]

        def phi_o() -> float:
            return float(np.sum(calls.G * calls.layer.forward(xo_work)))

        f_o = call_user(calls.fwd, phi_o)
        judging = Judging.default(noise, precision, rtol=coarser(precision, grad_prec).rtol,
                                  describe=calls.fwd)
        report = run_fast(phi_o, targets, f_o, judging, seed=seed, directions=2,
                          localize=False)
        return all(o.ok for o in report.outcomes), report.evaluations + 1

    return earlier_is_right


def _layer_targets(calls: _LayerCalls, xw: np.ndarray, before: list[np.ndarray]
                   ) -> list[Target]:
    """``x`` (the working copy) and every parameter, with the declared layouts (validated)."""
    params = calls.layer.params
    layouts = getattr(calls.layer, "layouts", None) or {}
    problem_text = layouts_problem(calls.label, layouts, {"x": calls.x0.ndim, **{
        k: np.ndim(v) for k, v in params.items()}})
    if problem_text is not None:
        raise CheckInputError(problem_text)
    targets = [Target("x", "input", xw, before[0], storage=calls.x0.dtype,
                      layout=layouts.get("x", ""))]
    return targets + [Target(k, "param", params[k], g, layout=layouts.get(k, ""))
                      for k, g in zip(params, before[1:], strict=True)]


def _layer_problem(calls: _LayerCalls, xw: np.ndarray, xo: np.ndarray | None,
                   probe_rng: np.random.Generator, seed: int) -> tuple[Problem,
                                                                      ContributionProbe]:
    """Run the state probes on the layer, then build its problem (and the diagnosis probe)."""
    layer, params, y, G = calls.layer, calls.layer.params, calls.y, calls.G
    earlier = _earlier(calls.analytic, xo)
    before = calls.analytic(xw)
    aliased = _aliased(layer.grads, params)
    accumulating = accumulates([before, calls.analytic(xw), calls.analytic(xw)], fixed=1)
    f0 = scalar_output(calls.fwd, call_user(calls.fwd, calls.phi, xw))  # garbage: no verdict
    precision = observed_precision(y, y.dtype)
    grad_prec = coarser(*(precision_of(g.dtype) for g in
                          [np.asarray(layer.grads[k]) for k in params] or [xw]),
                        precision_of(np.float64))
    generic = _generic_output(calls.fwd, layer.forward, xw, calls.x0.dtype, probe_rng)
    history, notes = stale_after_other_input(calls.analytic, xw, before, grad_prec.eps,
                                             probe_rng)
    targets = _layer_targets(calls, xw, before)
    probe_x = xw.copy()  # the probe moves its own copy of x, never the target's

    def outputs() -> tuple[np.ndarray]:
        return (_output_array(calls.fwd, layer.forward(probe_x.copy())),)

    # parameters are moved in place, as the differences move them (restored bit for bit)
    probe = ContributionProbe({"x": (probe_x, outputs), **{k: (params[k], outputs)
                                                          for k in params}},
                              (G,), step=precision.step)
    problem = Problem(
        kind="check_layer", label=calls.label, describe=calls.fwd, phi=partial(calls.phi, xw),
        targets=targets, f0=f0, noise=max(_noise_of(y, G), abs(f0)), precision=precision,
        grad_precision=grad_prec, evaluations=8,
        batch_size=calls.x0.shape[0] if calls.x0.ndim >= 2 else None,
        nondeterministic=f0 != float(np.sum(G * y)), history_dependent=history,
        accumulating=accumulating, notes=calls.mutated_grad_out + notes,
        seen=np.append(y, generic), declared=y.dtype, earlier=earlier,
        earlier_is_right=(_earlier_probe(calls, earlier, xo, grad_prec, seed)
                          if earlier is not None and xo is not None else None),
        facts={"aliased": aliased, "indices": _integer_arrays(layer), "outputs": ("y",),
               "contributions": probe},
        layout=_batch_layout(0, calls.x0, y, partial(calls.products, xw)),
        analytic_at=lambda: [np.array(g, dtype=np.float64) for g in calls.analytic(xw)])
    return problem, probe


@documents_options
def check_layer(layer: Layer, x: Any, *, structured: bool = True,
                executor: Executor | None = None,
                **options: Unpack[CheckOptions]) -> CheckResult:
    """Check a layer's input gradient and every parameter gradient at ``x``.

    The objective is ``φ = Σ forward(x) · G`` with the upstream gradient
    ``G`` drawn from ``seed`` (never equal to an ``x`` drawn from the same seed: see
    :mod:`gradcheck.engine.streams`); ``backward(G)`` must return ``dφ/dx`` and fill ``grads``.
    Parameters are perturbed in place and restored bit-identically (also on errors).

    Parameters
    ----------
    layer : object with ``params``, ``grads``, ``forward(x)``, ``backward(grad_out)``
    x : array_like, float, e.g. ``(N, D)`` or ``(N, C, H, W)``
        Input (copied; differenced in float64 when the layer accepts it).

    A layer may declare ``layouts = {"x": "NCHW", "W": "OIHW"}`` (axis letters per tensor);
    the diagnosis then knows which axes are batch, channels, space or time.

    >>> import numpy as np
    >>> class Scale:
    ...     def __init__(self): self.params = {"w": np.array([2.0])}; self.grads = {}
    ...     def forward(self, x): self.x = x; return self.params["w"] * x
    ...     def backward(self, g):
    ...         self.grads = {"w": np.array([np.sum(g * self.x)])}
    ...         return g * self.params["w"]
    >>> check_layer(Scale(), np.ones((2, 3))).ok
    True
    """
    opts, start = _start("check_layer", options, structured, executor)
    label = _require_layer(layer)
    _refuse_integer_input(label, x)
    if _nested(layer.params):  # a tree of parameters: the generic object adapter
        from gradcheck.adapters.objects import check_object
        return check_object(layer, x, names="x", executor=executor, **options)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is for check_grad/check_jacobian/check_hvp; "
                              "layers are checked with 'central' or 'richardson'")
    x0 = as_float_array("x", x)
    check_params(label, layer.params, layer.grads)
    rng = stream(opts.seed, "upstream")
    with Snapshot(layer.params, owner=label, current=lambda: layer.params):
        fwd = f"{label}.forward"
        probe_rng = stream(opts.seed, "shifted input")
        xw, xo, y = _shifted_first(fwd, layer.forward, x0, probe_rng)
        require_unmutated(fwd, xw, x0.astype(xw.dtype))
        y = _output_array(fwd, y).copy()  # the layer may reuse its output buffer
        calls = _LayerCalls(layer, label, x0, y, rng.standard_normal(y.shape))
        problem, probe = _layer_problem(calls, xw, xo, probe_rng, opts.seed)
        try:
            result = run(problem, opts, start)
        finally:
            probe.close()
        result.evaluations += probe.calls  # the diagnosis's calls count too
        return result


# ------------------------------------------------------------------ models
def _gradient_flow(model: Any, grads: Mapping[str, np.ndarray]) -> list[LayerFlow]:
    layers = getattr(model, "layers", None)
    norms: dict[str, float] = {}
    for name, g in grads.items():
        prefix = name.split(".", 1)[0] if "." in name else name
        if layers is not None and prefix.isdigit() and int(prefix) < len(layers):
            prefix = f"{prefix}:{type(layers[int(prefix)]).__name__}"
        # hypot and rms: an exploding gradient (1e200) must not overflow to inf
        norms[prefix] = float(np.hypot(norms.get(prefix, 0.0), rms(g) * np.sqrt(g.size)))
    largest = max(norms.values(), default=0.0)
    return [LayerFlow(layer, norm, "exploding" if norm >= FLOW_EXPLODING else
                      "vanishing" if largest > 0 and norm <= FLOW_VANISHING * largest else "")
            for layer, norm in norms.items()]


def _model_facts(model: Any, aliased: tuple[str, ...]) -> dict[str, Any]:
    """What the diagnosis may know of a model: aliasing, its layers' classes, integer ids."""
    layers = getattr(model, "layers", None)
    try:
        layers = list(layers) if layers is not None else []
    except TypeError:
        layers = []
    return {"aliased": aliased,
            "layer_names": {str(i): type(layer).__name__ for i, layer in enumerate(layers)},
            "indices": _integer_arrays(model, *layers)}


@documents_options
def check_model(model: Model, loss: Loss, x: Any, y: Any, *,
                executor: Executor | None = None,
                **options: Unpack[CheckOptions]) -> CheckResult:
    """Check every parameter gradient of ``model`` under ``loss`` at ``(x, y)``.

    The objective is ``loss.forward(model.forward(x), y) + model.penalty()`` (the penalty
    when the model has one); gradients come from ``loss.backward()`` then
    ``model.backward(dpred)`` into ``model.grads`` (flat names ``"<layer>.<param>"``).
    Also reports the gradient norm of each layer (``result.gradient_flow``).

    Parameters
    ----------
    model : object with ``params``, ``grads``, ``forward(x)``, ``backward(dpred)``
        Optionally ``penalty() -> float`` and ``layers`` (names in the gradient flow).
    loss : object with ``forward(pred, target) -> float`` and ``backward() -> dpred``
    x : array_like, float, ``(N, ...)``
        Input batch (copied; differenced in float64 when the model accepts it).
    y : array_like
        The targets in whatever form ``loss`` takes (labels ``(N,)``, one-hot ``(N, C)``).

    Returns
    -------
    CheckResult
        With ``gradient_flow``: one ``LayerFlow`` per layer (norm, vanishing/exploding).

    >>> import numpy as np
    >>> class Line:  # pred = x·w, params flat-named like a Sequential's
    ...     def __init__(self): self.params = {"0.w": np.array([0.5])}; self.grads = {}
    ...     def forward(self, x): self.x = x; return x * self.params["0.w"]
    ...     def backward(self, d): self.grads = {"0.w": np.array([np.sum(d * self.x)])}
    >>> class MSE:
    ...     def forward(self, p, t): self.d = p - t; return float(np.mean(self.d ** 2))
    ...     def backward(self): return 2 * self.d / self.d.size
    >>> check_model(Line(), MSE(), np.array([1.0, 2.0]), np.array([1.0, 0.0])).ok
    True
    """
    opts, start = _start("check_model", options, executor=executor)
    label = _require_model(model, loss)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_model")
    if y is None:
        raise CheckTypeError("y is None: pass the targets the loss compares against")
    x0 = as_float_array("x", x)
    yw = np.array(y, copy=True)
    if _nested(model.params):  # a tree of parameters: loss-and-grads over it
        return _check_nested_model(model, loss, x0, yw, opts=dict(options), executor=executor)
    check_params(label, model.params, model.grads, allow_empty=False)
    with Snapshot(model.params, owner=label, current=lambda: model.params):
        problem, flow = _model_problem(model, loss, label, x0, yw, opts.seed)
        return run(problem, opts, start, flow)


def _require_model(model: Model, loss: Loss) -> str:
    """Refuse classes and objects without the protocol's methods; the model's label."""
    require_instance("model", model, "a model")
    require_instance("loss", loss, "a loss")
    label = type(model).__name__
    for owner, obj in ((label, model), (type(loss).__name__, loss)):
        for attr in ("forward", "backward"):
            if not callable(getattr(obj, attr, None)):
                raise CheckTypeError(f"{owner} has no {attr}() method (the model protocol: "
                                     f"forward(x), backward(dpred), params, grads; the loss: "
                                     f"forward(pred, target) -> float, backward() -> dpred)")
    return label


def _model_problem(model: Model, loss: Loss, label: str, x0: np.ndarray, yw: np.ndarray,
                   seed: int) -> tuple[Problem, list[LayerFlow]]:
    """The state probes on the model, then its problem: φ = loss + penalty over the params."""
    params = model.params
    penalty = getattr(model, "penalty", None)
    loss_name = type(loss).__name__
    describe = f"{label}.forward/{loss_name}.forward"

    def objective(z: np.ndarray) -> float:
        value = loss.forward(model.forward(z), yw)
        return float(value) + (float(penalty()) if callable(penalty) else 0.0)

    rng = stream(seed, "model shift")
    xw, _, value0 = _shifted_first(describe, objective, x0, rng)
    require_unmutated(describe, xw, x0.astype(xw.dtype))
    f_analytic = scalar_output(describe, value0)

    def analytic(*inputs: np.ndarray) -> list[np.ndarray]:
        for z in inputs[:-1]:  # probe inputs off the point: skippable failures
            off_point(describe, lambda z: scalar_output(describe, call_user(
                describe, objective, z)), z)
        scalar_output(describe, call_user(describe, objective, inputs[-1]))
        dpred = call_user(f"{loss_name}.backward", loss.backward)
        call_user(f"{label}.backward", model.backward, dpred)
        return list(_grads_of(label, model.grads, params).values())

    before = analytic(xw)
    aliased = _aliased(model.grads, params)
    pred = _output_array(f"{label}.forward", call_user(f"{label}.forward",
                                                       model.forward, xw)).copy()
    phi = _scalar_objective(objective, xw)
    f0 = scalar_output(describe, call_user(describe, phi))
    precision = coarser(observed_precision(pred, pred.dtype),
                        observed_precision(np.array([f0]), np.dtype(np.float64)))
    grad_prec = coarser(*(precision_of(np.asarray(model.grads[k]).dtype) for k in params),
                        precision_of(np.float64))
    generic = _generic_output(f"{label}.forward", model.forward, xw, x0.dtype, rng)
    history, notes = stale_after_other_input(analytic, xw, before, grad_prec.eps, rng)
    targets = [Target(k, "param", params[k], g) for k, g in zip(params, before, strict=True)]
    flow = _gradient_flow(model, dict(zip(params, before, strict=True)))
    problem = Problem(kind="check_model", label=label, describe=describe, phi=phi,
                      targets=targets, f0=f0, noise=abs(f0), precision=precision,
                      grad_precision=grad_prec, evaluations=8,
                      batch_size=x0.shape[0] if x0.ndim >= 1 else None,
                      nondeterministic=f0 != f_analytic, history_dependent=history,
                      notes=notes, seen=np.append(pred, generic), declared=pred.dtype,
                      facts=_model_facts(model, aliased),
                      analytic_at=lambda: [np.array(g, dtype=np.float64)
                                           for g in analytic(xw)])
    return problem, flow


def _is_tree(x: Any) -> bool:
    """A dict, or a list/tuple holding arrays or containers (not a nested list of numbers)."""
    if isinstance(x, Mapping):
        return True
    return isinstance(x, (list, tuple)) and any(
        isinstance(v, (np.ndarray, Mapping, list, tuple)) and not (
            isinstance(v, (list, tuple)) and all(isinstance(e, (int, float)) for e in v))
        for v in x)


def _nested(params: Any) -> bool:
    """Parameters given as a tree (a dict holding dicts or lists), not a flat dict."""
    return isinstance(params, Mapping) and any(
        isinstance(v, (Mapping, list, tuple)) for v in params.values())


def _check_nested_model(model: Any, loss: Any, x0: np.ndarray, yw: np.ndarray,
                        opts: dict[str, Any], executor: Executor | None) -> CheckResult:
    """check_model over a parameter tree: ``check_loss`` with the model's protocol."""
    from gradcheck.adapters.objects import check_loss

    penalty = getattr(model, "penalty", None)
    xw = x0.copy()

    def objective() -> float:
        value = float(loss.forward(model.forward(xw), yw))
        return value + (float(penalty()) if callable(penalty) else 0.0)

    def gradients() -> Any:
        objective()
        model.backward(loss.backward())
        return model.grads

    return check_loss(objective, gradients, model.params, executor=executor, **opts)


# ------------------------------------------------------------------ assert twins
def _raise_unless_ok(result: CheckResult) -> CheckResult:
    __tracebackhide__ = True
    if not result.ok:
        raise GradientMismatch(result)
    return result


def assert_grad(f: Callable, grad: Callable, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_grad`, raising :class:`GradientMismatch` unless ``ok``.

    The ``assert_*`` twins take the same arguments as their ``check_*`` and return its
    result when ``ok``; the exception is an ``AssertionError`` carrying ``.result``.

    >>> import numpy as np
    >>> assert_grad(lambda x: np.sum(x ** 2), lambda x: 2 * x, np.ones(3)).ok
    True
    >>> assert_grad(lambda x: np.sum(x ** 2), lambda x: x, np.ones(3))
    Traceback (most recent call last):
    ...
    gradcheck.results.result.GradientMismatch: check_grad(<lambda>): FAILED ...
    """
    __tracebackhide__ = True
    return _raise_unless_ok(check_grad(f, grad, x, **opts))


def assert_jacobian(f: Callable, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_jacobian`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return _raise_unless_ok(check_jacobian(f, x, **opts))


def assert_layer(layer: Layer, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_layer`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return _raise_unless_ok(check_layer(layer, x, **opts))


def assert_model(model: Model, loss: Loss, x: Any, y: Any, **opts: Any) -> CheckResult:
    """:func:`check_model`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return _raise_unless_ok(check_model(model, loss, x, y, **opts))


def assert_hvp(grad: Callable, hvp: Callable, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_hvp`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return _raise_unless_ok(check_hvp(grad, hvp, x, **opts))


__all__ = ["Options", "assert_grad", "assert_hvp", "assert_jacobian", "assert_layer",
           "assert_model", "check_grad", "check_hvp", "check_jacobian", "check_layer",
           "check_model"]
