"""The engine's one problem for code written in a framework (PyTorch, JAX): NumPy only.

An adapter (:mod:`gradcheck.adapters.torch_adapter`, :mod:`gradcheck.adapters.jax_adapter`)
hands over

* named **host working arrays** (one per checked tensor, in the dtype the function is
  evaluated in; the engine perturbs them in place and always restores them), each with
  its analytic gradient of ``φ`` computed by the framework's autodiff;
* ``φ()``: the framework function evaluated on the current working arrays and reduced
  on the framework's device to one scalar ``Σ_k v_k · y_k`` (seeded cotangents ``v_k``):
  only that scalar comes back to the host per evaluation;
* a sample of the outputs (their precision is read from them, see
  :func:`gradcheck.engine.tolerances.observed_precision`) and the rounding scale
  ``Σ |v·y|``.

This module turns that into a :class:`~gradcheck.engine.runner.Problem` and runs it: the
same verdict model, diagnosis and result as every other check.

Note: this is a private bridge on ``Problem``/``Target``; a general
``check_function`` entry point (nested trees, ``wrt`` globs) is the public face for
plain NumPy functions.

>>> import numpy as np
>>> x = np.array([0.5, -1.0])
>>> r = run_arrays("check_function", "sin", "sin", lambda: float(np.sum(np.sin(x))),
...                [ArrayInput("x", x, np.cos(x))], seen=np.sin(x),
...                declared=np.dtype(np.float64), noise=1.0, options={"mode": "full"})
>>> r.ok
True
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.adapters.trees import child_name
from gradcheck.engine.numeric import Target
from gradcheck.engine.runner import Options, Problem, run
from gradcheck.engine.safety import CheckInputError, NonFiniteError, call_user
from gradcheck.engine.tolerances import coarser, observed_precision, precision_of
from gradcheck.results.result import CheckResult

#: At most this many output entries per output come back to the host to read precision.
SEEN_SAMPLE = 4096


@dataclass
class ArrayInput:
    """One checked input: its name, the host working array and its analytic gradient.

    Attributes
    ----------
    name : str
        As shown in the result (``"arg0"``, ``"weight"``, ``"arg1.W"``).
    work : ndarray, any shape
        Contiguous host array the objective reads; perturbed in place, always restored.
    analytic : ndarray, shape of ``work``
        ``dφ/d work`` from the framework's autodiff.
    storage : dtype, optional
        Dtype perturbed values are realized in (default: ``work.dtype``).
    role : str
        ``"input"`` or ``"param"``.
    grad_dtype : dtype, optional
        Dtype the analytic gradient was computed in (default: ``work.dtype``): a float32
        backward differenced through a float64 evaluation is judged at float32's rtol.
    """

    name: str
    work: np.ndarray
    analytic: np.ndarray
    storage: np.dtype | None = None
    role: str = "input"
    grad_dtype: np.dtype | None = None


def key_value(key: Any) -> Any:
    """The key or index inside a pytree path entry (torch's and JAX's key classes)."""
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return getattr(key, attr)
    return key


def leaf_names(path_leaves: Sequence[tuple[Sequence[Any], Any]], roots: Sequence[str]
               ) -> list[str]:
    """Names by path, as :func:`~gradcheck.adapters.functions.check_function` gives them.

    ``roots[i]`` names positional argument ``i``; positions inside add ``[j]``, dict keys
    ``.key`` (``arg1.W``, ``arg0[1]``); keyword arguments are named by their key.
    """
    out = []
    for path, _ in path_leaves:
        which, *rest = (key_value(k) for k in path)
        if which == 0:
            first, *rest = rest
            name = roots[first]
        else:
            name, *rest = rest
            name = str(name)
        for key in rest:
            name = child_name(name, key)
        out.append(name)
    return out


def matches(name: str, patterns: Sequence[str]) -> bool:
    """``wrt`` semantics of ``check_function``: a pattern naming a subtree selects its leaves."""
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, p + ".*")
               or fnmatch.fnmatchcase(name, p + "[[]*") for p in patterns)


def sample(values: np.ndarray) -> np.ndarray:
    """At most :data:`SEEN_SAMPLE` entries of a flat output, spread evenly."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size <= SEEN_SAMPLE:
        return flat
    return flat[np.linspace(0, flat.size - 1, SEEN_SAMPLE).astype(np.int64)]


def run_arrays(kind: str, label: str, describe: str, phi: Callable[[], float],
               inputs: Sequence[ArrayInput], *, seen: np.ndarray, declared: np.dtype,
               noise: float, options: dict[str, Any], notes: Sequence[str] = (),
               start: float | None = None) -> CheckResult:
    """Build the problem of a framework function and run it.

    Parameters
    ----------
    kind, label, describe : str
        Result kind (``"torch.check"``), label (the function's name), and how the user's
        code is named in errors.
    phi : callable, () -> float
        The scalar objective over the working arrays of ``inputs``.
    inputs : sequence of ArrayInput
        The checked inputs (at least one).
    seen : ndarray
        Output values (a sample) at the point: their precision selects the tolerances.
    declared : dtype
        The outputs' dtype.
    noise : float
        Rounding scale of ``φ``: ``Σ |v · y|``.
    options : dict
        ``mode``, ``rtol``, ``atol``, ``eps``, ``method``, ``seed``, ``directions``.
    notes : sequence of str
        Shown with the result.

    Returns
    -------
    CheckResult
    """
    start = time.perf_counter() if start is None else start
    opts = Options(**options)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for framework functions; "
                              "use 'central' or 'richardson'")
    if not inputs:
        raise CheckInputError(f"{describe}: nothing to check (no floating-point input "
                              f"selected); pass at least one floating tensor")
    for given in inputs:
        _require_finite_input(describe, given)
    f0 = call_user(describe, phi)
    if not np.isfinite(f0):
        # NaN != NaN: without this, two NaN evaluations would read as nondeterminism
        raise NonFiniteError(f"{describe} is not finite at the point to check (Σ v·y = "
                             f"{f0}): an output is NaN or Inf there (outside the function's "
                             f"domain, such as a negative base to a fractional power); "
                             f"finite differences need finite outputs: check at a point "
                             f"inside the domain")
    again = call_user(describe, phi)
    targets = [Target(i.name, i.role, i.work, i.analytic, storage=i.storage if i.storage is not None else i.work.dtype,
                      grad_dtype=np.dtype(i.grad_dtype or i.storage or i.work.dtype))
               for i in inputs]
    grad_prec = coarser(*(precision_of(i.grad_dtype or i.work.dtype) for i in inputs))
    problem = Problem(kind=kind, label=label, describe=describe, phi=phi, targets=targets,
                      f0=again, noise=max(noise, abs(f0)),
                      precision=observed_precision(seen, declared), grad_precision=grad_prec,
                      evaluations=2, nondeterministic=again != f0, notes=list(notes),
                      seen=np.asarray(seen, dtype=np.float64), declared=declared)
    return run(problem, opts, start)


def _require_finite_input(describe: str, given: ArrayInput) -> None:
    """Refuse a checked input holding NaN or ±Inf (a finite step cannot move it)."""
    bad = ~np.isfinite(given.work)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"{describe}: the checked input {given.name} holds {given.work[index]} at index "
            f"{index} ({int(bad.sum())} non-finite entries); a finite step cannot move "
            f"such an entry, so finite differences cannot check it: pass finite values "
            f"(a large negative number instead of -inf), or pass the finite entries as "
            f"their own input and the rest as a constant")


__all__ = ["SEEN_SAMPLE", "ArrayInput", "key_value", "leaf_names", "matches", "run_arrays",
           "sample"]
