"""Functions of several (nested) inputs and outputs: ``check_function`` / ``assert_function``.

Builds the engine's one :class:`~gradcheck.engine.runner.Problem` for code shaped
``f(*args) -> outputs`` with a reverse-mode ``vjp``, a forward-mode ``jvp`` or both, and
is the core the other shape adapters (:mod:`~gradcheck.adapters.pairs`,
:mod:`~gradcheck.adapters.objects`) build on.

The objective
-------------
``φ = Σ_k Re⟨G_k, out_k⟩`` over the float (and complex) output leaves, with a seeded
upstream ``G_k`` per output (:mod:`gradcheck.engine.streams`, purpose ``"upstream"``);
``vjp(G, *args)`` must return ``dφ/d args``. A JVP is checked on the same ``φ``: its
``⟨G, J t⟩`` for unit tangents ``t`` (every entry, up to
:data:`~gradcheck.engine.tolerances.AUTO_FULL_MAX_ENTRIES` entries or in ``mode="full"``)
or for ``directions`` random tangents per tensor (above that, or ``mode="fast"``) is a
gradient of ``φ`` like any other. With both, the step-free forward-versus-reverse test
``⟨G, J u⟩ = ⟨u, Jᵀ G⟩`` joins the verdict.

Leaves and their names
----------------------
Each positional argument is an array, a nested dict / list / tuple of arrays, or a
constant. Leaves are named by path from the argument's name (``names=("x", "params")``;
default ``arg0``, ``arg1``, …): ``x``, ``params.W1``, ``params.layers[1]``.

* float arrays are checked (float32 ones are differenced through a float64 copy with
  float32-sized steps, when the function accepts float64);
* complex arrays are checked as pairs ``(real, imag)``: a tensor of shape ``shape + (2,)``,
  index ``[..., 0]`` the real part. The gradient convention is PyTorch's, the conjugate
  Wirtinger one: for a real ``φ`` the gradient of ``z`` is ``∂φ/∂Re z + i ∂φ/∂Im z``
  (``2 ∂φ/∂z̄``); complex outputs take a complex ``G`` and ``φ = Σ Re(conj(G)·out)``;
* integer and bool arrays (token ids, labels, masks) and everything that is not an
  array (a ``conv_param`` dict, a Python number) are constants, passed as they are
  (arrays as copies), and noted;
* entries that are NaN or ±inf (an attention mask's −inf) are held constant and noted;
  the other entries of that tensor are checked;
* ``wrt=`` (names or fnmatch patterns; a pattern naming a subtree, ``params``, selects
  its leaves) picks the tensors to check; the others are held constant.

The user's arrays are never modified: the function gets working copies.

>>> import numpy as np
>>> f = lambda x, W: np.tanh(W @ x)
>>> def vjp(g, x, W):
...     d = g * (1 - np.tanh(W @ x) ** 2)
...     return W.T @ d, np.outer(d, x)
>>> check_function(f, np.ones(3), np.full((2, 3), 0.1), vjp=vjp, names=("x", "W")).ok
True
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.adapters.diagnosis_facts import ContributionProbe, integer_arrays
from gradcheck.adapters.shipping import options_with_executor
from gradcheck.adapters.trees import flatten, is_container, match, rebuild
from gradcheck.engine.numeric import Target
from gradcheck.engine.options import CheckOptions, Options, documents_options
from gradcheck.engine.runner import Problem, run
from gradcheck.engine.safety import (
    TOO_COARSE,
    CheckInputError,
    CheckTypeError,
    bit_identical,
    call_user,
    check_gradient_array,
    require_callable,
    require_finite,
)
from gradcheck.engine.streams import stream
from gradcheck.engine.tiles import Layout
from gradcheck.engine.tolerances import (
    AUTO_FULL_MAX_ENTRIES,
    GENERIC_NUDGE,
    Precision,
    coarser,
    observed_precision,
    precision_of,
)
from gradcheck.results.result import CheckResult, GradientMismatch

Reverse = Callable[..., tuple[Sequence[Any], list[Any]]]
Forward = Callable[..., Any]

if TYPE_CHECKING:
    from typing_extensions import Unpack


# ------------------------------------------------------------------ targets
@dataclass
class MappedTarget(Target):
    """A target whose entries are some coordinates of a larger array.

    ``positions[i]`` is entry ``i``'s flat position in an array of shape ``full_shape``
    (the finite entries of a masked input; the ``(real, imag)`` pairs of a complex one),
    so reports name the user's index, not the position in the checked subset.
    """

    positions: np.ndarray | None = None
    full_shape: tuple[int, ...] = ()

    def index(self, i: int | np.integer) -> tuple[int, ...]:
        if self.positions is None:
            return super().index(i)
        flat = int(self.positions[int(i)])
        return tuple(int(k) for k in np.unravel_index(flat, self.full_shape))


@dataclass
class Slot:
    """One checked leaf: the array the user's code reads and the targets that move it.

    The *coordinates* of the leaf are its real entries (``(real, imag)`` pairs for a
    complex leaf) that are finite at the point. ``work`` is what the code reads;
    ``base`` its coordinates at the point. The VJP target's array holds coordinates
    (it *is* ``work`` when nothing else moves it); the JVP target holds coordinates
    (per entry) or coefficients of random directions ``U`` (one row per direction).
    """

    name: str
    role: str
    work: np.ndarray
    storage: np.dtype
    is_complex: bool
    mask: np.ndarray | None  # flat over coordinates; None when all are finite
    base: np.ndarray = field(repr=False)
    n_masked: int = 0
    vjp_array: np.ndarray | None = None
    jvp_array: np.ndarray | None = None
    U: np.ndarray | None = None

    @property
    def coord_shape(self) -> tuple[int, ...]:
        return self.work.shape + ((2,) if self.is_complex else ())

    def coords_view(self) -> np.ndarray:
        """A writable real view of ``work``, shape :attr:`coord_shape`."""
        if self.is_complex:
            return self.work.view(self.work.real.dtype).reshape(self.coord_shape)
        return self.work

    def direct(self) -> bool:
        """True when the VJP target is ``work`` itself (nothing to write before a call)."""
        return self.vjp_array is not None and self.jvp_array is None and self.mask is None

    def write(self) -> None:
        """Set ``work`` from the targets' current values."""
        if self.direct():
            return
        c = self.vjp_array.reshape(-1) if self.vjp_array is not None else self.base
        if self.jvp_array is not None:
            if self.U is not None:
                c = c + self.jvp_array @ self.U
            else:
                c = c + (self.jvp_array.reshape(-1) - self.base)
        flat = self.coords_view().reshape(-1)
        if self.mask is None:
            flat[:] = c
        else:
            flat[self.mask] = c

    def coords_of(self, gradient: np.ndarray) -> np.ndarray:
        """A gradient of ``work``'s shape as checked coordinates (flat)."""
        g = np.asarray(gradient)
        if self.is_complex:
            g = np.stack([g.real, np.imag(g)], axis=-1)
        g = np.asarray(g, dtype=np.float64).reshape(-1)
        return g if self.mask is None else g[self.mask]

    def tangent(self, coords: np.ndarray) -> np.ndarray:
        """A tangent array shaped like ``work`` from checked coordinates."""
        full: np.ndarray = np.zeros(int(np.prod(self.coord_shape)), dtype=np.float64)
        if self.mask is None:
            full[:] = coords
        else:
            full[self.mask] = coords
        full = full.reshape(self.coord_shape)
        if self.is_complex:
            return full[..., 0] + 1j * full[..., 1]
        return full

    def target(self, which: str, analytic: np.ndarray, name: str) -> Target:
        array = self.vjp_array if which == "vjp" else self.jvp_array
        assert array is not None  # a slot has the array of each pass it takes part in
        if which == "jvp" and self.U is not None:
            return Target(name, self.role, array, analytic, storage=np.dtype(np.float64))
        if self.mask is None and not self.is_complex:
            return Target(name, self.role, array, analytic.reshape(array.shape),
                          storage=self.storage)
        if self.mask is None:  # complex, unmasked: the (..., 2) view keeps the index
            return Target(name, self.role, array, analytic.reshape(array.shape),
                          storage=self.storage)
        return MappedTarget(name, self.role, array, analytic, storage=self.storage,
                            positions=np.flatnonzero(self.mask),
                            full_shape=self.coord_shape)


# ------------------------------------------------------------------ leaves of the inputs
@dataclass
class Inputs:
    """The working arguments (copies) and the checked slots, built from the user's args."""

    args: list[Any]
    leaves: list[list[Any]]  # per arg: the working leaf values in flatten order
    slots: list[Slot]
    slot_of: dict[tuple[int, int], Slot]  # (arg, leaf) -> slot
    notes: list[str]
    differentiable: list[bool]  # per arg: has float/complex leaves at all


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        k = np.asarray(value).dtype.kind
        return {"f": "float", "c": "complex", "i": "int", "u": "int", "b": "int"}.get(k, "other")
    return "other"


def _selected(name: str, patterns: Sequence[str] | None) -> bool:
    if patterns is None:
        return True
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, p + ".*")
               or fnmatch.fnmatchcase(name, p + "[[]*") for p in patterns)


def arg_names(n: int, names: Sequence[str] | str | None) -> list[str]:
    """``names`` as a list of ``n`` roots (default ``arg0``, ``arg1``, …)."""
    if names is None:
        return [f"arg{i}" for i in range(n)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if len(names) != n or not all(isinstance(s, str) for s in names):
        raise CheckInputError(f"names={names!r} must be {n} strings, one per positional "
                              f"argument")
    if len(set(names)) != n:
        raise CheckInputError(f"names={names!r} repeats a name; each argument needs its own")
    return names


def _float_leaf(name: str, arr: np.ndarray, is_complex: bool, wrt: Sequence[str] | None, *,
                promote: bool, vjp: bool, jvp: bool, fast_jvp: bool, directions: int,
                rng: np.random.Generator) -> tuple[np.ndarray, Slot | None, list[str]]:
    """The working copy of one float (or complex) leaf and its :class:`Slot` (None: the leaf
    is empty, not selected by ``wrt``, or entirely NaN/inf), with the notes it makes."""
    real = arr.real.dtype if is_complex else arr.dtype
    if real.itemsize < 4:
        raise CheckTypeError(f"{name} has dtype {arr.dtype}: {TOO_COARSE}; "
                             f"pass {name}.astype(np.float32)")
    if arr.size == 0 or not _selected(name, wrt):
        return arr.copy(), None, []
    work_dtype = (np.complex128 if is_complex else np.float64) if promote else arr.dtype
    work = np.array(arr, dtype=work_dtype, copy=True, order="C")
    coords = (np.stack([work.real, work.imag], axis=-1) if is_complex else work).reshape(-1)
    finite = np.isfinite(coords)
    mask = None if finite.all() else finite
    if mask is not None and not mask.any():
        return work, None, [f"{name}: every entry is NaN or inf; held constant"]
    base = np.array(coords if mask is None else coords[mask], dtype=np.float64)
    slot = Slot(name, "input", work, real, is_complex, mask, base=base,
                n_masked=0 if mask is None else int((~mask).sum()))
    notes = []
    if slot.n_masked:
        notes.append(f"{name}: {slot.n_masked} entries that are NaN or inf (a mask) held "
                     f"constant; the other {base.size} checked")
    if is_complex:
        notes.append(f"{name}: complex, checked as (real, imag) pairs (last index 0 = real, "
                     f"1 = imaginary); gradient convention dφ/dRe + i dφ/dIm (PyTorch's "
                     f"conjugate Wirtinger)")
    slot.vjp_array, slot.U, slot.jvp_array = _analytic_arrays(
        slot, vjp=vjp, jvp=jvp, fast_jvp=fast_jvp, directions=directions, rng=rng)
    return work, slot, notes


def _analytic_arrays(slot: Slot, *, vjp: bool, jvp: bool, fast_jvp: bool, directions: int,
                     rng: np.random.Generator
                     ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The arrays a new slot's analytic sides fill: ``(vjp_array, U, jvp_array)`` — the
    VJP's coordinates (a view of the working copy when nothing else needs it), the random
    tangents of fast mode (or None) and the JVP's values per entry or per direction."""
    base = slot.base
    # Unmasked: the coordinates' shape (the user's, in reports); masked: flat.
    shape = slot.coord_shape if slot.mask is None else base.shape
    vjp_array = jvp_array = tangents = None
    if vjp:
        vjp_array = (slot.coords_view() if slot.mask is None and not jvp
                     else base.copy().reshape(shape))
    if jvp and fast_jvp:
        tangents = rng.standard_normal((directions, base.size)) * np.maximum(np.abs(base), 1.0)
        jvp_array = np.zeros(directions)
    elif jvp:
        jvp_array = base.copy().reshape(shape)
    return vjp_array, tangents, jvp_array


def build_inputs(args: Sequence[Any], names: list[str], wrt: Sequence[str] | None, *,
                 promote: bool, jvp: bool, vjp: bool, fast_jvp: bool,
                 directions: int, seed: int) -> Inputs:
    """Working copies of ``args`` and one :class:`Slot` per checked float leaf."""
    if isinstance(wrt, str):
        wrt = [wrt]
    work_args, leaves, slots, slot_of, notes = [], [], [], {}, []
    constants: list[str] = []
    differentiable = []
    rng = stream(seed, "directions", 7)
    for a, (arg, root) in enumerate(zip(args, names, strict=True)):
        values, has_float = [], False
        for j, leaf in enumerate(flatten(arg, root)):
            kind = _kind(leaf.value)
            value = leaf.value
            if kind in ("float", "complex"):
                has_float = True
                work, slot, leaf_notes = _float_leaf(
                    leaf.name, np.asarray(value), kind == "complex", wrt, promote=promote,
                    vjp=vjp, jvp=jvp, fast_jvp=fast_jvp, directions=directions, rng=rng)
                notes += leaf_notes
                if slot is not None:
                    slot_of[(a, j)] = slot
                    slots.append(slot)
                values.append(work)
            elif kind == "int":
                constants.append(leaf.name)
                values.append(np.array(value, copy=True))
            else:
                values.append(value)
        differentiable.append(has_float)
        leaves.append(values)
        work_args.append(rebuild(arg, values) if is_container(arg) else values[0])
    if constants:
        notes.append(f"integer/bool inputs held constant: {', '.join(constants)}")
    return Inputs(work_args, leaves, slots, slot_of, notes, differentiable)


def require_selection(inputs: Inputs, wrt: Sequence[str] | None, all_names: list[str],
                      owner: str) -> None:
    """A check needs at least one tensor; every ``wrt`` pattern must select one."""
    if isinstance(wrt, str):
        wrt = [wrt]
    checked = [s.name for s in inputs.slots]
    for pattern in wrt or ():
        if not any(_selected(name, [pattern]) for name in checked):
            raise CheckInputError(f"wrt pattern {pattern!r} matches no float tensor of "
                                  f"{owner}; the tensors are {all_names}")
    if not checked:
        raise CheckInputError(f"{owner} has no float tensor to check (the tensors are "
                              f"{all_names}; integer, bool and non-array inputs are "
                              f"constants)")


# ------------------------------------------------------------------ outputs
@dataclass
class Outputs:
    """The output tree at the point, its checked leaves and their upstream gradients."""

    tree: Any
    shapes: list[tuple[int, ...] | None]  # per leaf; None: not differentiated
    G: list[Any]
    masks: list[np.ndarray | None]
    complex: list[bool]
    values: np.ndarray  # every checked output value (precision detection)
    dtype: np.dtype
    notes: list[str]

    def terms(self, out: Any, describe: str) -> list[np.ndarray]:
        """``Re(conj(G_k) ⊙ out_k)`` for every checked output ``k`` (masked entries 0),
        the outputs validated against the first call's number and shapes."""
        leaves = flatten(out)
        if len(leaves) != len(self.shapes):
            raise CheckInputError(f"{describe} returned {len(leaves)} outputs, then "
                                  f"{len(self.shapes)}")
        found = []
        for leaf, shape, g, m, cx in zip(leaves, self.shapes, self.G, self.masks,
                                         self.complex, strict=True):
            if shape is None:
                continue
            y = np.asarray(leaf.value)
            if y.shape != shape:
                raise CheckInputError(f"{describe} returned shape {y.shape} for "
                                      f"{leaf.name or 'its output'}, then {shape}")
            if m is not None:
                y = np.where(m, y, 0)
            found.append(np.real(np.conj(g) * y) if cx else g * y)
        return found

    def phi(self, out: Any, describe: str) -> float:
        """``φ = Σ_k Re⟨G_k, out_k⟩``, one output's sum at a time."""
        return sum((float(np.sum(t)) for t in self.terms(out, describe)), 0.0)

    def pair(self, tangent: Any, owner: str) -> float:
        """``Re⟨G, tangent⟩`` for an output tangent shaped like the outputs."""
        total = 0.0
        for theirs, shape, g, m, cx in zip(match(self.tree, tangent, owner, "out"),
                                           self.shapes, self.G, self.masks, self.complex,
                                           strict=True):
            if shape is None or theirs is None:
                continue
            t = np.asarray(theirs)
            if t.shape != shape:
                raise CheckInputError(f"{owner} returned an output tangent of shape "
                                      f"{t.shape}, expected {shape}")
            require_finite(f"the output tangent of {owner}", np.where(m, t, 0) if m is not None
                           else t)
            if m is not None:
                t = np.where(m, t, 0)
            total += float(np.sum(np.real(np.conj(g) * t)) if cx else np.sum(g * t))
        return total

    def cotangent(self) -> Any:
        """A fresh copy of the upstream gradients, shaped like the outputs."""
        return rebuild(self.tree, [None if s is None else
                                   (float(g) if isinstance(leaf.value, float) else np.array(g))
                                   for leaf, s, g in zip(flatten(self.tree), self.shapes,
                                                         self.G, strict=True)])

    def magnitude(self, out: Any) -> float:
        total = 0.0
        for leaf, shape, g, m in zip(flatten(out), self.shapes, self.G, self.masks,
                                     strict=True):
            if shape is not None:
                y = np.asarray(leaf.value)
                total += float(np.sum(np.abs(np.where(m, y, 0) if m is not None else y)
                                      * np.abs(g)))
        return total


def _upstream_of(name: str, y: np.ndarray, is_complex: bool, unit: bool,
                 rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray], str]:
    """One float output's upstream gradient (seeded; 1 for a lone scalar when ``unit``; 0
    at NaN/inf entries, which are left out), its mask, the values it shows for precision
    detection and the note about left-out entries ("" if none)."""
    finite = np.isfinite(y)
    mask = None if finite.all() else finite
    note = ("" if mask is None else f"{name}: {int((~finite).sum())} entries are NaN or inf "
            f"at the point; left out of the objective")
    if unit:
        g = np.ones(y.shape)
    else:
        g = rng.standard_normal(y.shape)
        if is_complex:
            g = (g + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
    if mask is not None:
        g = np.where(mask, g, 0)
    kept = y if mask is None else y[mask]
    seen = ([np.abs(kept).ravel(), kept.imag.ravel()] if is_complex
            else [kept.ravel(), np.zeros(0)])
    return g, mask, seen, note


def build_outputs(out: Any, describe: str, seed: int, *, unit: bool = False) -> Outputs:
    """Read the output tree at the point and draw one upstream gradient per float leaf."""
    if out is None:
        raise CheckTypeError(f"{describe} returned None; it must return an array or a "
                             f"tuple / list / dict of arrays")
    rng = stream(seed, "upstream")
    shapes: list[tuple[int, ...] | None] = []
    G: list[Any] = []
    masks: list[np.ndarray | None] = []
    cxs: list[bool] = []
    values: list[np.ndarray] = []
    dtypes: list[np.dtype] = []
    notes: list[str] = []
    leaves = flatten(out, "out")
    for leaf in leaves:
        value = leaf.value
        if isinstance(value, (float, int)) and not isinstance(value, bool):
            value = np.asarray(value, dtype=np.float64)
        kind = _kind(value)
        if kind not in ("float", "complex"):
            shapes.append(None)
            G.append(None)
            masks.append(None)
            cxs.append(False)
            if kind == "int":
                notes.append(f"{leaf.name or 'the output'} is an integer/bool array: not "
                             f"differentiated")
            continue
        y = np.asarray(value)
        g, mask, seen, note = _upstream_of(leaf.name or "the output", y, kind == "complex",
                                           unit and len(leaves) == 1 and y.size == 1, rng)
        notes += [note] if note else []
        shapes.append(y.shape)
        G.append(g)
        masks.append(mask)
        cxs.append(kind == "complex")
        values += seen
        dtypes.append(y.real.dtype if kind == "complex" else y.dtype)
    if not dtypes:
        raise CheckTypeError(f"{describe} returned no float array (got "
                             f"{type(out).__name__}); it must return floats")
    return Outputs(out, shapes, G, masks, cxs, np.concatenate(values).astype(np.float64),
                   np.dtype(max(dtypes, key=lambda d: np.finfo(d).eps)), notes)


# ------------------------------------------------------------------ the gradients a user returns
def per_argument(value: Any, args: Sequence[Any], differentiable: Sequence[bool],
                 owner: str, names: Sequence[str]) -> list[Any]:
    """One gradient tree per argument from what a VJP/backward returned.

    Accepted: a tuple/list with one entry per argument (``None`` for a constant one), or
    one per argument that has float leaves (constants skipped: an embedding's backward
    returning only ``dW``), or, with one differentiable argument, its gradient bare.
    """
    n = len(args)
    idx = [i for i in range(n) if differentiable[i]]
    if n == 1 or (len(idx) == 1 and not _sequence_of(value, n)):
        return _one_gradient(value, args, idx[0] if idx else 0, owner)
    if _sequence_of(value, n):
        return list(value)
    if _sequence_of(value, len(idx)):
        out: list[Any] = [None] * n
        for i, g in zip(idx, value, strict=True):
            out[i] = g
        return out
    raise _count_error(value, n, idx, owner, names)


def _one_gradient(value: Any, args: Sequence[Any], single: int, owner: str) -> list[Any]:
    """One differentiable argument (``single``): its gradient bare or as ``(grad,)``."""
    n = len(args)
    if isinstance(value, (tuple, list)) and len(value) == 1:
        try:  # the per-argument tuple (grad,) unless only the bare gradient fits
            match(args[single], value[0], owner)
            value = value[0]
        except CheckInputError:
            if not isinstance(args[single], (tuple, list)):
                raise  # a 1-tuple cannot be the bare gradient: the inner error is it
    elif _sequence_of(value, n) and n > 1:
        return list(value)
    return [value if i == single else None for i in range(n)]


def _count_error(value: Any, n: int, idx: Sequence[int], owner: str,
                 names: Sequence[str]) -> CheckInputError:
    """The error for a tuple of the wrong length (or no tuple at all)."""
    got = (f"{len(value)} gradient{'s' * (len(value) != 1)}"
           if isinstance(value, (tuple, list)) else f"a {type(value).__name__}")
    floats = (f" or of {len(idx)} (one per float argument {[names[i] for i in idx]})"
              if len(idx) != n else "")
    return CheckInputError(
        f"{owner} returned {got}; expected a tuple of {n} (one per argument "
        f"{list(names)}, None for a constant){floats}")


def _sequence_of(value: Any, n: int) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == n


def gradient_coords(inputs: Inputs, grads: list[Any], args: Sequence[Any],
                    names: Sequence[str], owner: str, notes: list[str]
                    ) -> tuple[dict[int, np.ndarray], list[np.dtype]]:
    """Checked coordinates of the gradient of every slot (by slot id) and their dtypes."""
    out: dict[int, np.ndarray] = {}
    dtypes: list[np.dtype] = []
    for a, (arg, g, root) in enumerate(zip(args, grads, names, strict=True)):
        theirs = match(arg, g, owner, root)
        for j, _leaf in enumerate(flatten(arg, root)):
            slot = inputs.slot_of.get((a, j))
            if slot is None:
                continue
            if theirs[j] is None:  # declared constant: not checked, said so
                note = f"{owner} returned None for {slot.name}: held constant, not checked"
                if note not in notes:
                    notes.append(note)
                continue
            arr = np.asarray(theirs[j])
            if arr.shape != slot.work.shape:
                raise CheckInputError(f"{owner} returned shape {arr.shape} for "
                                      f"{slot.name}, expected {slot.work.shape}")
            if arr.dtype.kind not in "fciu":
                raise CheckTypeError(f"{owner} returned dtype {arr.dtype} for {slot.name}; "
                                     f"return a float array")
            require_finite(f"the gradient of {slot.name} from {owner}",
                           arr if slot.mask is None or slot.is_complex
                           else np.where(slot.mask.reshape(arr.shape), arr, 0))
            dtypes.append(arr.real.dtype if arr.dtype.kind == "c" else arr.dtype)
            out[id(slot)] = slot.coords_of(arr)
    return out, dtypes


# ------------------------------------------------------------------ the problem
@dataclass
class Built:
    """A problem and what the adapter needs after the run (the dot-product test)."""

    problem: Problem
    dot_test: Callable[[], tuple[bool, str]] | None = None
    #: ``"cotangent"``: a fresh upstream gradient; ``"args"``: the working arguments.
    extra: dict[str, Any] = field(default_factory=dict)


def _snapshot(values: list[list[Any]]) -> list[np.ndarray]:
    return [v.copy() for leaves in values for v in leaves if isinstance(v, np.ndarray)]


def _unchanged(values: list[list[Any]], saved: list[np.ndarray]) -> bool:
    now = [v for leaves in values for v in leaves if isinstance(v, np.ndarray)]
    return all(bit_identical(a, b) for a, b in zip(now, saved, strict=True))


@dataclass
class _Call:
    """What the pieces of one function problem share: the user's ``f`` and arguments, the
    working copies (``inputs``), the first output (``outputs``), the pristine leaves."""

    f: Callable[..., Any]
    args: Sequence[Any]
    names: list[str]
    describe: str
    inputs: Inputs
    outputs: Outputs
    out0: Any
    saved: list[np.ndarray]

    def require_pure(self, who: str, hint: str = "") -> None:
        if not _unchanged(self.inputs.leaves, self.saved):
            raise CheckInputError(f"{who} modified an input array in place{hint}")


def _first_call(f: Callable[..., Any], args: Sequence[Any], names: list[str], describe: str,
                wrt: Sequence[str] | None, opts: Options, *, vjp: bool, jvp: bool,
                held_slots: list[Slot], all_names: list[str], label: str,
                unit_cotangent: bool) -> _Call:
    """Working copies of the arguments (float64 where ``f`` accepts it) and ``f``'s output."""
    n_float = sum(np.asarray(leaf.value).size for arg, root in zip(args, names, strict=True)
                  for leaf in flatten(arg, root) if _kind(leaf.value) in ("float", "complex"))
    fast_jvp = jvp and (opts.mode == "fast" or
                        (opts.mode == "auto" and n_float > AUTO_FULL_MAX_ENTRIES))

    def make(promote: bool) -> Inputs:
        return build_inputs(args, names, wrt, promote=promote, jvp=jvp, vjp=vjp,
                            fast_jvp=fast_jvp, directions=opts.directions, seed=opts.seed)

    inputs = make(True)
    try:
        with np.errstate(all="ignore"):
            out0 = f(*inputs.args)
    except Exception:  # the function insists on its own dtypes: difference in them
        inputs = make(False)
        out0 = call_user(describe, f, *inputs.args)
    inputs.slots += held_slots
    require_selection(inputs, wrt, all_names, label)
    saved = _snapshot(inputs.leaves)
    # f's first output may share memory with what it returns next time: copy the tree
    outputs = build_outputs(_copy_tree(out0), describe, opts.seed, unit=unit_cotangent)
    call = _Call(f, args, names, describe, inputs, outputs, out0, saved)
    call.require_pure(describe, "; the checker needs a pure function: copy the input "
                                "before modifying it")
    return call


def _held_slots(held: Sequence[tuple[str, np.ndarray]], wrt: Sequence[str] | None
                ) -> list[Slot]:
    """Slots for the arrays the code reads from elsewhere (perturbed in place)."""
    return [Slot(name, "param", arr, arr.dtype, False, None,
                 base=np.array(arr, dtype=np.float64).reshape(-1), vjp_array=arr)
            for name, arr in held if _selected(name, wrt)]


@dataclass
class _Reverse:
    """The reverse-mode side: checked slots, their gradient coordinates, dtypes, notes."""

    slots: list[Slot]
    coords: dict[int, np.ndarray]
    dtypes: list[np.dtype]
    notes: list[str]


def _reverse_side(call: _Call, reverse: Reverse, reverse_name: str,
                  held: Sequence[tuple[str, np.ndarray]], held_slots: list[Slot]) -> _Reverse:
    """One reverse call on a fresh cotangent; the gradients read, validated, keyed by slot."""
    value, held_grads = call_user(reverse_name, reverse, call.outputs.cotangent(),
                                  *call.inputs.args)
    call.require_pure(reverse_name, "; copy it before modifying it")
    grads = per_argument(value, call.args, call.inputs.differentiable, reverse_name,
                         call.names)
    notes: list[str] = []
    coords, dtypes = gradient_coords(call.inputs, grads, call.args, call.names,
                                     reverse_name, notes)
    kept = dict(zip((n for n, _ in held), held_grads, strict=True))
    for slot in held_slots:
        if kept[slot.name] is None:
            notes.append(f"{reverse_name} returned None for {slot.name}: held constant, "
                         f"not checked")
            continue
        g = check_gradient_array(f"{reverse_name}: the gradient of {slot.name}",
                                 kept[slot.name], slot.work.shape)
        dtypes.append(np.asarray(kept[slot.name]).dtype)
        coords[id(slot)] = g.reshape(-1)
    slots = [s for s in call.inputs.slots if id(s) in coords]
    if not slots:
        raise CheckInputError(f"{reverse_name} returned None for every checked tensor; "
                              f"there is nothing to check")
    return _Reverse(slots, coords, dtypes, notes)


def _forward_targets(call: _Call, forward: Forward, forward_name: str, slots: list[Slot],
                     both: bool) -> tuple[list[Target], int, list[str]]:
    """The JVP's directional derivatives per input slot (one call per unit or random
    tangent) as targets; the calls spent and the notes."""
    def directional(slot: Slot, coords: np.ndarray) -> float:
        dout = call_user(forward_name, forward,
                         all_tangents(call.args, call.inputs, {id(slot): coords}),
                         *call.inputs.args)
        return call.outputs.pair(dout, forward_name)

    analytic: dict[int, np.ndarray] = {}
    for slot in (s for s in slots if s.role == "input"):
        tangents = slot.U if slot.U is not None else np.eye(slot.base.size)
        analytic[id(slot)] = np.array([directional(slot, u) for u in tangents])
    call.require_pure(forward_name)
    targets = [s.target("jvp", analytic[id(s)], f"{s.name} (jvp)" if both else s.name)
               for s in slots if s.role == "input"]
    notes = (["parameters held by an object are checked in reverse mode only"]
             if any(s.role == "param" for s in slots) else [])
    return targets, sum(a.size for a in analytic.values()), notes


def _dot_test(call: _Call, forward: Forward, forward_name: str, slots: list[Slot],
              coords: dict[int, np.ndarray], precision: Precision, grad_prec: Precision,
              seed: int) -> Callable[[], tuple[bool, str]]:
    """The step-free forward-versus-reverse test ⟨G, J u⟩ = ⟨u, Jᵀ G⟩ (run after the run)."""
    def dot() -> tuple[bool, str]:
        rng = stream(seed, "directions", 8)
        us = {id(s): rng.standard_normal(s.base.size) * np.maximum(np.abs(s.base), 1.0)
              for s in slots if s.role == "input"}
        dout = call_user(forward_name, forward, all_tangents(call.args, call.inputs, us),
                         *call.inputs.args)
        lhs = call.outputs.pair(dout, forward_name)
        terms = [us[k] * coords[k] for k in us]
        rhs = float(sum(np.sum(t) for t in terms))
        scale = float(sum(np.sum(np.abs(t)) for t in terms)) + abs(lhs)
        # rounding only (no step): eps^(2/3) of the sums of magnitudes leaves room for
        # cancellation inside the user's products by a factor 1e5 (float64)
        tol = coarser(precision, grad_prec).eps ** (2 / 3) * scale + 1e-300
        ok = abs(lhs - rhs) <= tol
        return ok, (f"forward vs reverse (step-free): <G, J u> = {lhs:.10g}, "
                    f"<u, J^T G> = {rhs:.10g}, difference {abs(lhs - rhs):.3g} "
                    f"{'within' if ok else 'OUTSIDE'} tolerance {tol:.3g}")
    return dot


def build_function_problem(
        *, kind: str, label: str, describe: str, f: Callable[..., Any], args: Sequence[Any],
        names: list[str], reverse: Reverse | None, reverse_name: str,
        forward: Forward | None, forward_name: str, wrt: Sequence[str] | None,
        opts: Options, held: Sequence[tuple[str, np.ndarray]] = (),
        unit_cotangent: bool = False, extra_notes: Sequence[str] = ()) -> Built:
    """The engine's problem for ``f(*args)`` with a reverse and/or forward derivative.

    Parameters
    ----------
    reverse : callable ``(cotangent, *args) -> (per-argument gradients, held gradients)``
        The per-argument gradients as :func:`per_argument` accepts them; one gradient
        array per ``held`` array (in order). None when only a forward derivative is
        checked.
    forward : callable ``(tangents, *args) -> output tangent``, optional
    held : ``(name, array)`` pairs
        Arrays the code reads from elsewhere (an object's parameters): perturbed in
        place, restored by the caller (a :class:`~gradcheck.engine.safety.Snapshot`).
    """
    if reverse is None and forward is None:
        raise CheckInputError(f"{kind} needs vjp= (reverse mode), jvp= (forward mode) "
                              f"or both")
    all_names = [leaf.name for arg, root in zip(args, names, strict=True)
                 for leaf in flatten(arg, root)] + [n for n, _ in held]
    held_slots = _held_slots(held, wrt)
    call = _first_call(f, args, names, describe, wrt, opts, vjp=reverse is not None,
                       jvp=forward is not None, held_slots=held_slots, all_names=all_names,
                       label=label, unit_cotangent=unit_cotangent)
    inputs, outputs = call.inputs, call.outputs
    f_first = outputs.phi(call.out0, describe)  # before any backward can touch out0
    notes = [*extra_notes, *inputs.notes, *outputs.notes]
    slots, targets, evaluations = inputs.slots, [], 1
    rev = None
    if reverse is not None:
        rev = _reverse_side(call, reverse, reverse_name, held, held_slots)
        slots, evaluations, notes = rev.slots, evaluations + 1, notes + rev.notes
        targets += [s.target("vjp", rev.coords[id(s)], s.name) for s in slots]
    if forward is not None:
        jvp_targets, spent, jvp_notes = _forward_targets(call, forward, forward_name, slots,
                                                         both=reverse is not None)
        targets, evaluations, notes = targets + jvp_targets, evaluations + spent, \
            notes + jvp_notes

    def evaluate() -> Any:
        for s in slots:
            s.write()
        return f(*inputs.args)

    def phi() -> float:
        return outputs.phi(evaluate(), describe)

    f0 = phi()
    seen = np.concatenate([outputs.values, _generic(lambda: f(*inputs.args), inputs, outputs,
                                                    opts.seed)])
    precision = observed_precision(seen, outputs.dtype)
    grad_dtypes = rev.dtypes if rev is not None else []
    grad_prec = coarser(*(precision_of(d) for d in grad_dtypes or [np.dtype(np.float64)]),
                        precision_of(np.float64))
    batch = next((s.work.shape[0] for s in slots if s.role == "input" and s.work.ndim >= 2),
                 None)
    problem = Problem(kind=kind, label=label, describe=describe, phi=phi, targets=targets,
                      f0=f0, noise=max(outputs.magnitude(call.out0), abs(f0)),
                      precision=precision, grad_precision=grad_prec,
                      evaluations=evaluations + 2, batch_size=batch,
                      nondeterministic=f0 != f_first, notes=notes, seen=seen,
                      declared=outputs.dtype,
                      facts=_diagnosis_facts(f, reverse, forward, inputs, outputs, slots,
                                             evaluate, precision.step),
                      layout=_batch_layout(targets, slots, outputs, evaluate, describe))
    dot = (_dot_test(call, forward, forward_name, slots, rev.coords, precision, grad_prec,
                     opts.seed) if forward is not None and rev is not None else None)
    return Built(problem, dot, {"cotangent": outputs.cotangent, "args": inputs.args})


def _diagnosis_facts(f: Callable[..., Any], reverse: Reverse | None,
                     forward: Forward | None, inputs: Inputs, outputs: Outputs,
                     slots: Sequence[Slot], evaluate: Callable[[], Any],
                     step: float) -> dict[str, Any]:
    """Integer arrays (integer arguments first: ids passed in), output names, the probe.

    The probe moves the reverse-mode target arrays (the working copies, or the arrays
    an object holds, restored after every call) and reads every differentiated output.
    """
    held_ints = [leaf for leaves in inputs.leaves for leaf in leaves
                 if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "iu"]
    indices = integer_arrays(*held_ints, f, *(c for c in (reverse, forward) if c is not None))
    named = [leaf.name for leaf, shape in zip(flatten(outputs.tree, "out"), outputs.shapes,
                                              strict=True) if shape is not None]

    def read() -> list[np.ndarray]:
        return [np.asarray(leaf.value) for leaf, shape in
                zip(flatten(evaluate()), outputs.shapes, strict=True) if shape is not None]

    # complex or masked outputs: their objective is not a plain sum of G ⊙ out, no probe
    plain = not any(outputs.complex) and all(m is None for m in outputs.masks)
    # masked or complex leaves: the target's coordinates are not the tensor's flat index
    moved = {s.name: (s.vjp_array, read) for s in slots
             if s.vjp_array is not None and plain and s.mask is None and not s.is_complex}
    upstream = [g for g, shape in zip(outputs.G, outputs.shapes, strict=True)
                if shape is not None]
    return {"indices": indices, "outputs": tuple(named),
            "contributions": ContributionProbe(moved, upstream, step=step)}


def _batch_layout(targets: list[Target], slots: list[Slot], outputs: Outputs,
                  evaluate: Callable[[], Any], describe: str) -> Layout | None:
    """The batch layout of φ for the first input whose leading axis is the batch axis of
    every checked output (unmasked; reverse mode): structured full mode by samples (N ≥ 2),
    or by tiles for one channels-first output (verified by the engine before use). None
    when there is no such input."""
    shapes = [shape for shape in outputs.shapes if shape is not None]
    if not shapes or any(len(shape) == 0 for shape in shapes):
        return None
    n = shapes[0][0]
    if n < 1 or any(shape[0] != n for shape in shapes):
        return None
    # the reverse-mode targets come first, one per slot, in the slots' order
    position = next((k for k, (slot, target) in enumerate(zip(slots, targets, strict=False))
                     if slot.role == "input" and slot.mask is None and slot.work.ndim >= 2
                     and slot.work.shape[0] == n and target.array is slot.vjp_array), None)
    if position is None:
        return None

    def products() -> np.ndarray:
        return np.concatenate([np.asarray(term, dtype=np.float64).reshape(-1)
                               for term in outputs.terms(evaluate(), describe)])

    return Layout(position, tuple(targets[position].shape), tuple(shapes), products)


def all_tangents(args: Sequence[Any], inputs: Inputs,
                 coords: dict[int, np.ndarray]) -> tuple[Any, ...]:
    """Tangents, one per argument shaped like it, from checked coordinates per slot id.

    Slots not in ``coords`` and constant float leaves get zeros; integer and non-array
    leaves ``None``; an argument with no float leaf is ``None`` as a whole.
    """
    out: list[Any] = []
    for a, arg in enumerate(args):
        if not inputs.differentiable[a]:
            out.append(None)
            continue
        leaves: list[Any] = []
        for j, leaf in enumerate(inputs.leaves[a]):
            s = inputs.slot_of.get((a, j))
            if s is not None:
                c = coords.get(id(s))
                leaves.append(s.tangent(c if c is not None else np.zeros(s.base.size)))
            elif _kind(leaf) in ("float", "complex"):
                leaves.append(np.zeros_like(np.asarray(leaf)))
            else:
                leaves.append(None)
        out.append(rebuild(arg, leaves) if is_container(arg) else leaves[0])
    return tuple(out)


def _copy_tree(tree: Any) -> Any:
    leaves = flatten(tree)
    return rebuild(tree, [np.array(leaf.value, copy=True) if isinstance(leaf.value, np.ndarray)
                          else leaf.value for leaf in leaves]) if is_container(tree) else (
        np.array(tree, copy=True) if isinstance(tree, np.ndarray) else tree)


def _generic(call: Callable[[], Any], inputs: Inputs, outputs: Outputs, seed: int
             ) -> np.ndarray:
    """Outputs at a generic point near the inputs (their real precision shows there)."""
    rng = stream(seed, "shifted input", 9)
    moved = [s for s in inputs.slots if s.role == "input"]
    if not moved:
        return np.zeros(0)
    saved = [s.work.copy() for s in moved]
    try:
        for s in moved:
            view = s.coords_view().reshape(-1)
            idx = np.arange(view.size) if s.mask is None else np.flatnonzero(s.mask)
            nudge = GENERIC_NUDGE * np.maximum(np.abs(view[idx]), 1.0) * rng.standard_normal(idx.size)
            view[idx] = (view[idx] + nudge).astype(s.storage)
        with np.errstate(all="ignore"):
            value = flatten(call())
        vals = [np.abs(np.asarray(leaf.value, dtype=complex)).ravel()
                for leaf, shape in zip(value, outputs.shapes, strict=True) if shape is not None]
        got = np.concatenate(vals) if vals else np.zeros(0)
        return got[np.isfinite(got)]
    except Exception:  # outside the domain after all: the outputs at the point must do
        return np.zeros(0)
    finally:
        for s, w in zip(moved, saved, strict=True):
            np.copyto(s.work, w)


def run_built(built: Built, opts: Options, start: float) -> CheckResult:
    """Run the problem; fold the forward-versus-reverse test into the verdict."""
    probe = built.problem.facts.get("contributions")
    try:
        result = run(built.problem, opts, start)
    finally:
        if isinstance(probe, ContributionProbe):
            probe.close()
    if isinstance(probe, ContributionProbe):
        result.evaluations += probe.calls  # the diagnosis's calls count too
    if built.dot_test is not None and not result.nondeterministic:
        agrees, line = built.dot_test()
        result.notes.append(line)
        result.options["dot_test"] = "agrees" if agrees else "disagrees"
        if not agrees:
            if result.ok:
                result.ok = False
                result.diagnosis.append(
                    "the step-free forward-versus-reverse test fails: <G, J u> from the jvp "
                    "differs from <u, J^T G> from the vjp although every difference agreed; "
                    "one of them is wrong by less than finite differences resolve")
            else:
                result.diagnosis.append("the forward-versus-reverse test disagrees too "
                                        "(vjp and jvp are not transposes of each other)")
    return result


# ------------------------------------------------------------------ public entry points
@documents_options
def check_function(f: Callable[..., Any], *args: Any, vjp: Callable[..., Any] | None = None,
                   jvp: Callable[..., Any] | None = None,
                   wrt: str | Sequence[str] | None = None,
                   names: str | Sequence[str] | None = None,
                   executor: Executor | None = None,
                   **options: Unpack[CheckOptions]) -> CheckResult:
    """Check a VJP and/or a JVP of ``f(*args)`` against finite differences.

    Parameters
    ----------
    f : callable, ``f(*args) -> out``
        ``out``: an array, a scalar, or a tuple / list / dict (nested) of arrays.
    *args : arrays, trees of arrays, or constants
        The point (copied; never modified). See the module docstring for which leaves
        are checked and how they are named.
    vjp : callable, ``vjp(cotangent, *args) -> grads``, optional
        ``cotangent`` has the structure of ``out``; returns one gradient per argument (a
        tuple; bare when there is one argument), each shaped like its argument, ``None``
        for a constant. A tuple with one gradient per *float* argument is accepted too.
    jvp : callable, ``jvp(tangents, *args) -> out_tangent``, optional
        ``tangents``: a tuple, one per argument shaped like it (``None`` for a constant
        argument, zeros for a constant leaf inside a tree); returns the tangent of
        ``out``. With both ``vjp`` and ``jvp`` the forward-versus-reverse test is added
        and the JVP tensors are named ``"<name> (jvp)"``.
    wrt : str or sequence of str, optional
        Names or fnmatch patterns of the tensors to check (default: every float tensor).
    names : str or sequence of str, optional
        Root names of the arguments (default ``arg0``, ``arg1``, …).

    Returns
    -------
    CheckResult

    >>> import numpy as np
    >>> def f(x, p): return x * p["a"], np.sum(x ** 2)
    >>> def vjp(g, x, p): return g[0] * p["a"] + 2 * x * g[1], {"a": g[0] * x}
    >>> check_function(f, np.ones(3), {"a": np.arange(3.0)}, vjp=vjp).ok
    True
    """
    opts, start = options_with_executor("check_function", options, executor), time.perf_counter()
    require_callable("f", f)
    if opts.method == "complex":
        raise CheckInputError("method='complex' is not available for check_function; use "
                              "'central' or 'richardson'")
    if not args:
        raise CheckInputError("check_function needs at least one argument after f")
    if vjp is not None:
        require_callable("vjp", vjp)
    if jvp is not None:
        require_callable("jvp", jvp)
    label = getattr(f, "__name__", "f")
    roots = arg_names(len(args), names)
    reverse = None
    if vjp is not None:
        def reverse(cot: Any, *work: Any) -> tuple[Any, list[Any]]:
            return vjp(cot, *work), []
    vjp_name = f"vjp ({getattr(vjp, '__name__', 'vjp')})"
    jvp_name = f"jvp ({getattr(jvp, '__name__', 'jvp')})"
    built = build_function_problem(
        kind="check_function", label=label, describe=f"f ({label})", f=f, args=args,
        names=roots, reverse=reverse, reverse_name=vjp_name, forward=jvp,
        forward_name=jvp_name, wrt=wrt, opts=opts)
    return run_built(built, opts, start)


def raise_unless_ok(result: CheckResult) -> CheckResult:
    """Return ``result`` when ok, else raise :class:`GradientMismatch` carrying it."""
    __tracebackhide__ = True
    if not result.ok:
        raise GradientMismatch(result)
    return result


def assert_function(f: Callable[..., Any], *args: Any, **opts: Any) -> CheckResult:
    """:func:`check_function`, raising :class:`GradientMismatch` unless ``ok``."""
    __tracebackhide__ = True
    return raise_unless_ok(check_function(f, *args, **opts))


__all__ = ["assert_function", "check_function"]
