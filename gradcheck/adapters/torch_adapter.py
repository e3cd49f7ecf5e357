"""PyTorch code as the engine's problem: functions of tensors, ``autograd.Function``, ``nn.Module``.

Imported only through :mod:`gradcheck.torch` (never by ``import gradcheck``). The
analytic side is PyTorch's own autodiff: ``torch.autograd.grad`` with seeded cotangents
(``ad="rev"``), forward AD with dual numbers (``ad="fwd"``: one forward pass per checked
entry), or, for ``order=2``, the gradient of the gradient (``create_graph=True``), as
``gradgradcheck`` checks it.

How tensors are handled
-----------------------
* **Nothing of the user's changes**: every checked tensor is cloned (detached) once; the
  user's tensors keep their values, ``requires_grad`` and ``.grad`` (gradients are taken
  with ``torch.autograd.grad`` on private leaves, never ``.backward()``). Modules are
  evaluated with ``torch.func.functional_call`` on cloned parameters and buffers, so
  their parameters, buffers (BatchNorm's running statistics) and ``.grad`` stay as
  they were.
* **Devices**: the engine perturbs a host working copy of each checked tensor; on a CPU
  the tensor handed to the function *shares memory* with it (no copy per evaluation);
  on any other device a device twin is kept and only the changed entries are written
  into it before each evaluation (one entry in full mode). The objective
  ``Σ_k v_k · y_k`` is reduced on the device: one scalar comes back per evaluation,
  plus, once, the analytic gradients and a sample of the outputs (their precision).
* **dtypes**: float64 and float32 are evaluated in their own dtype (float32 first-class:
  the tolerances follow the precision read from the outputs). float16 and bfloat16
  inputs are evaluated in float32 when the function accepts it (the check then proves
  the function's derivative, not its half-precision rounding; the result says so);
  a float16-only function is differenced in float16 (coarse: what half precision can
  resolve); a bfloat16-only function is refused with a clear error.
* **Randomness**: every evaluation runs under ``torch.random.fork_rng`` with the same
  seed, so dropout draws the same mask each time (the user's RNG state is untouched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch.autograd.gradcheck import GradcheckError as _TorchGradcheckError
from torch.overrides import TorchFunctionMode

from gradcheck.adapters.framework_bridge import (
    ArrayInput,
    key_value,
    leaf_names,
    matches,
    run_arrays,
    sample,
)
from gradcheck.adapters.functions import arg_names
from gradcheck.engine.options import CheckOptions, Mode, Options, documents_options
from gradcheck.engine.safety import CheckInputError, CheckTypeError, UserCodeError
from gradcheck.engine.streams import stream
from gradcheck.engine.tolerances import PRECISIONS, observed_precision
from gradcheck.results.result import CheckResult, GradientMismatch

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: torch dtype -> the NumPy dtype of the host working copy.
NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32,
                torch.float16: np.float16}
#: Half formats: evaluated in float32 when the function accepts it.
HALF = (torch.float16, torch.bfloat16)
ADS = ("rev", "fwd")
#: The seed every evaluation's forked RNG starts from (dropout masks repeat).
RNG_SEED = 20240607


class GradcheckError(GradientMismatch, _TorchGradcheckError):
    """A mismatch from the drop-ins: both an ``AssertionError`` and torch's ``GradcheckError``.

    ``.result`` is the :class:`~gradcheck.results.result.CheckResult`.
    """


# ------------------------------------------------------------------ one checked tensor
class _Slot:
    """A checked tensor: host working array (perturbed by the engine) and its device twin.

    ``dtype`` is the analytic side's dtype (the backward under test runs in it);
    ``eval_dtype`` the one ``φ`` is evaluated in (float64 for a float32 tensor when the
    function accepts it, as ``check_layer`` and ``check_function`` do); perturbed values
    are always realized in ``dtype`` (float32 steps stay float32-representable).
    """

    def __init__(self, name: str, tensor: torch.Tensor, dtype: torch.dtype,
                 role: str = "input", share: bool | None = None,
                 eval_dtype: torch.dtype | None = None) -> None:
        self.name, self.role, self.dtype = name, role, dtype
        self.eval_dtype = eval_dtype or dtype
        self.device = tensor.device
        self.shape = tuple(tensor.shape)
        self.original_dtype = tensor.dtype
        self.base = tensor.detach().to(dtype=dtype).contiguous().clone()
        twin = self.base.to(self.eval_dtype)
        self.work = np.array(twin.cpu().numpy(), order="C", copy=True)  # 0-d stays 0-d
        self.storage = np.dtype(NUMPY_DTYPES[dtype])
        if self.device.type == "cpu" if share is None else share:
            self.twin = torch.from_numpy(self.work)  # shares memory: perturbations show
            self.last: np.ndarray | None = None
        else:
            self.twin = twin.clone()
            self.last = self.work.copy()

    def current(self) -> torch.Tensor:
        """The device tensor holding the working array's current values."""
        if self.last is not None:
            flat, last = self.work.reshape(-1), self.last.reshape(-1)
            changed = np.flatnonzero(flat != last)
            if changed.size > max(1, flat.size // 8):
                self.twin.copy_(torch.from_numpy(self.work).to(self.device))
                last[:] = flat
            elif changed.size:
                idx = torch.from_numpy(changed).to(self.device)
                self.twin.view(-1)[idx] = torch.from_numpy(flat[changed]).to(self.device)
                last[changed] = flat[changed]
        return self.twin

    def leaf(self) -> torch.Tensor:
        """A private leaf at the point, in the analytic dtype."""
        return self.base.clone().requires_grad_(True)


# ------------------------------------------------------------------ naming and selection
def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype.is_floating_point


def _selected(named: list[tuple[str, Any]], wrt: str | Sequence[str] | None) -> list[bool]:
    """Which leaves are checked: ``wrt`` names/globs; else ``requires_grad``; else all floats."""
    floats = [_is_float_tensor(v) for _, v in named]
    if wrt is not None:
        patterns = [wrt] if isinstance(wrt, str) else list(wrt)
        chosen = [f and matches(n, patterns) for (n, _), f in zip(named, floats, strict=True)]
        unknown = [p for p in patterns if not any(matches(n, [p]) for n, _ in named)]
        if unknown:
            raise CheckInputError(f"wrt={unknown!r} matches no input; the inputs are "
                                  f"{[n for n, _ in named]}")
        return chosen
    wanted = [f and v.requires_grad for (_, v), f in zip(named, floats, strict=True)]
    return wanted if any(wanted) else floats


def _complex_guard(named: list[tuple[str, Any]]) -> None:
    for name, value in named:
        if isinstance(value, torch.Tensor) and value.dtype.is_complex:
            raise CheckTypeError(f"{name} is a complex tensor ({value.dtype}); gradcheck's "
                                 f"PyTorch adapter checks real tensors: check the real and "
                                 f"imaginary parts as two real inputs")


# ------------------------------------------------------------------ evaluation
def _wide(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
        return value.to(torch.float64)
    return torch.float64 if value is torch.float32 else value


class _Float64Everywhere(TorchFunctionMode):
    """Every op of the promoted ``φ`` in float64: float32 tensors and dtypes it is handed.

    ``promote`` widens the checked tensors and the constants passed to the function; a
    float32 tensor the function holds itself (a closure's weight, a module-less
    ``F.group_norm(x, 2, weight=w)``) or a ``dtype=torch.float32`` argument would make a
    float64 call fail or round to float32, and the check fall back to a float32 ``φ``,
    whose rounding hides entry errors of 1e-3. Under this mode each op sees such tensors
    (except the one an in-place op writes into) and dtypes in float64, ``.float()`` is
    ``.double()``, and float32 results come back widened. Used only when the plain promoted call fails or returns
    float32 values, and never for a function that draws random numbers (a float64 draw
    is not the float32 one). Outputs that are still float32-representable are read as
    float32 precision, as always.
    """

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        func = _WIDER.get(func, func)
        name = getattr(func, "__name__", "")
        in_place = (name.endswith("_") and not name.endswith("__")) or name in _WRITES
        first, rest = (list(args[:1]), args[1:]) if in_place else ([], args)
        wide_args = first + [pytree.tree_map(_wide, a) for a in rest]
        wide_kwargs = {k: v if k == "out" else pytree.tree_map(_wide, v)
                       for k, v in kwargs.items()}
        out = func(*wide_args, **wide_kwargs)
        return out if in_place else pytree.tree_map(_wide, out)


#: Torch functions and methods that draw random numbers (by name).
_SAMPLERS = frozenset({
    "normal", "normal_", "rand", "rand_like", "randn", "randn_like", "randint",
    "randint_like", "randperm", "bernoulli", "bernoulli_", "multinomial", "poisson",
    "binomial", "uniform_", "exponential_", "geometric_", "log_normal_", "cauchy_",
    "random_", "dropout", "dropout_", "alpha_dropout", "feature_alpha_dropout",
    "feature_dropout", "native_dropout", "rrelu", "rrelu_", "gumbel_softmax",
    "_standard_gamma", "_sample_dirichlet"})


class _SamplerWatch(TorchFunctionMode):
    """Notes whether the function calls a sampler (:data:`_SAMPLERS`); changes nothing."""

    sampled = False

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: Mapping[str, Any] | None = None) -> Any:
        if getattr(func, "__name__", "") in _SAMPLERS:
            self.sampled = True
        return func(*args, **(kwargs or {}))


#: Casts to float32 (complex64) that take no dtype argument, and their float64 twins.
_WIDER = {torch.Tensor.float: torch.Tensor.double,
          torch.Tensor.cfloat: torch.Tensor.cdouble}  # type: ignore[attr-defined]
#: Tensor methods that write into their first argument without a trailing underscore.
_WRITES = frozenset({"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__",
                     "__ifloordiv__", "__ipow__", "__imatmul__"})


@contextmanager
def _same_randomness(devices: list[torch.device]) -> Any:
    cuda = sorted({d.index or 0 for d in devices if d.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        # the CPU generator (and CUDA's where used) directly: torch.manual_seed would also
        # queue lazy seeding of every absent accelerator, a formatted stack each (~ms)
        torch.random.default_generator.manual_seed(RNG_SEED)
        if cuda:
            torch.cuda.manual_seed_all(RNG_SEED)
        if any(d.type not in ("cpu", "cuda") for d in devices):
            torch.manual_seed(RNG_SEED)
        yield


def _float_outputs(describe: str, out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor) and out.dtype.is_floating_point:
        return [out]  # the common case, without a tree walk per evaluation
    # a complex output is checked as its (real, imag) pairs: with a real cotangent w on
    # view_as_real(y), autograd's complex cotangent is w[..., 0] + i w[..., 1] (torch's
    # conjugate Wirtinger convention), so φ = Σ w · view_as_real(y) is its objective
    leaves = [torch.view_as_real(t.resolve_conj())
              if isinstance(t, torch.Tensor) and t.dtype.is_complex else t
              for t in pytree.tree_leaves(out)]
    floats = [t for t in leaves if _is_float_tensor(t)]
    if not floats:
        raise CheckTypeError(f"{describe} returned no floating-point tensor "
                             f"(got {type(out).__name__}); it must return a tensor or a "
                             f"tuple/list/dict of tensors")
    return floats


class _Evaluation:
    """The user's function over slots and constants, the objective and the analytic side."""

    def __init__(self, fn: Callable[..., Any], describe: str, leaves: list[Any],
                 spec: Any, slots: dict[int, _Slot], seed: int, promote: bool = False) -> None:
        self.fn, self.describe, self.leaves, self.spec = fn, describe, leaves, spec
        self.slots, self.seed = slots, seed
        #: the constants as φ sees them: float32 tensors promoted with the inputs
        self.eval_leaves = [l.to(torch.float64) if promote and isinstance(l, torch.Tensor)
                            and l.dtype == torch.float32 else l for l in leaves]
        self.devices = [s.device for s in slots.values()]
        #: Does fn draw random numbers? Unknown (None) until the first call, which runs
        #: under the forked, seeded RNG either way; on accelerators always assumed.
        self.random: bool | None = None
        #: run the promoted φ under :class:`_Float64Everywhere` (float32 held by fn itself)
        self.everywhere = False
        self.skipped: list[int] = []  # outputs that do not require grad (not checked)
        self.cotangents: list[torch.Tensor] = []
        self._flat: list[torch.Tensor] = []
        self._flat_of: list[torch.Tensor] | None = None
        #: fn's inputs are the flat leaves themselves (no nesting, no kwargs): no unflatten
        self._plain = spec == pytree.tree_structure((tuple(range(len(leaves))), {}))

    def call(self, values: Mapping[int, torch.Tensor], evaluated: bool = False
             ) -> list[torch.Tensor]:
        constants = self.eval_leaves if evaluated else self.leaves
        filled = [values.get(i, leaf) for i, leaf in enumerate(constants)]
        args, kwargs = (filled, {}) if self._plain else pytree.tree_unflatten(filled, self.spec)
        try:
            if evaluated and self.everywhere:
                with _Float64Everywhere():
                    out = self.fn(*args, **kwargs)
            elif self.random is False:  # draws no random numbers: no RNG fork needed
                out = self.fn(*args, **kwargs)
            else:
                with _same_randomness(self.devices):
                    if self.random is None:  # the first call tells whether fn draws any
                        state = torch.random.get_rng_state()
                        with _SamplerWatch() as watch:
                            out = self.fn(*args, **kwargs)
                        # a sampler under its own saved seed (op_db's wrapper_set_seed)
                        # leaves the RNG state as it was: the watch sees the call itself
                        self.random = (any(d.type != "cpu" for d in self.devices)
                                       or watch.sampled
                                       or not torch.equal(state, torch.random.get_rng_state()))
                    else:
                        out = self.fn(*args, **kwargs)
        except (CheckInputError, CheckTypeError):
            raise
        except Exception as err:
            raise UserCodeError(f"{self.describe} raised {type(err).__name__}: {err}") from err
        outs = _float_outputs(self.describe, out)
        if self.cotangents and [tuple(o.shape) for o in outs] != [
                tuple(v.shape) for v in self.cotangents]:
            raise CheckInputError(f"{self.describe} returned outputs of shapes "
                                  f"{[tuple(o.shape) for o in outs]}, earlier "
                                  f"{[tuple(v.shape) for v in self.cotangents]}")
        return outs

    def draw_cotangents(self, outs: list[torch.Tensor]) -> None:
        rng = stream(self.seed, "upstream")
        self.cotangents = [torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(
            device=o.device, dtype=o.dtype) for o in outs]

    def phi(self, grad_mode: bool) -> float:
        values = {i: s.current() for i, s in self.slots.items()}
        with torch.set_grad_enabled(grad_mode):
            outs = self.call(values, evaluated=True)
        if self._flat_of is not self.cotangents:  # flat, in the accumulator dtype, once
            self._flat = [v.detach().reshape(-1).to(_accumulator(v)) for v in self.cotangents]
            self._flat_of = self.cotangents
        terms = [torch.dot(v, y.detach().reshape(-1).to(v.dtype))
                 for v, y in zip(self._flat, outs, strict=True)]
        total = terms[0] if len(terms) == 1 else torch.stack(
            [t.to(terms[0].device) for t in terms]).sum()
        return float(total.item())

    def scale(self, outs: list[torch.Tensor]) -> float:
        return float(sum(float((v.to(_accumulator(y)) * y.detach().to(_accumulator(y)))
                               .abs().sum().item())
                         for v, y in zip(self.cotangents, outs, strict=True)))

    def reverse(self) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        leaves = {i: s.leaf() for i, s in self.slots.items()}
        with torch.enable_grad():
            outs = self.call(leaves)
            if not self.cotangents:
                self.draw_cotangents(outs)
            pairs = [(y, v) for y, v in zip(outs, self.cotangents, strict=True)
                     if y.requires_grad]
            if pairs and len(pairs) < len(outs):
                # outputs the function declares non-differentiable (native_layer_norm's
                # mean and rstd, mark_non_differentiable): left out of φ, as torch does
                self.skipped = [k for k, y in enumerate(outs) if not y.requires_grad]
                self.cotangents = [v if y.requires_grad else torch.zeros_like(v)
                                   for y, v in zip(outs, self.cotangents, strict=True)]
            grads: Sequence[torch.Tensor | None] = [None] * len(leaves)
            if pairs:
                try:
                    grads = torch.autograd.grad([y for y, _ in pairs], list(leaves.values()),
                                                grad_outputs=[v for _, v in pairs],
                                                allow_unused=True)
                except Exception as err:
                    raise UserCodeError(f"the backward of {self.describe} raised "
                                        f"{type(err).__name__}: {err}") from err
        self._require_unmutated(leaves)
        return outs, [_host(g, s) for g, s in zip(grads, self.slots.values(), strict=True)]

    def forward(self) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """Forward AD: entry ``i`` of the gradient is ``Σ_k v_k · (J_k e_i)``."""
        import torch.autograd.forward_ad as fwad

        with torch.no_grad():
            outs = self.call({i: s.base for i, s in self.slots.items()})
        if not self.cotangents:
            self.draw_cotangents(outs)
        grads = []
        for i, slot in self.slots.items():
            flat = np.zeros(slot.work.size)
            primal = slot.base.detach()
            for j in range(slot.work.size):
                basis = torch.zeros_like(primal).view(-1)
                basis[j] = 1
                with fwad.dual_level():
                    values = {k: s.base.detach() for k, s in self.slots.items()}
                    values[i] = fwad.make_dual(primal, basis.view(primal.shape))
                    try:
                        ys = self.call(values)
                    except UserCodeError:
                        raise
                    total = 0.0
                    for v, y in zip(self.cotangents, ys, strict=True):
                        tangent = fwad.unpack_dual(y).tangent
                        if tangent is not None:
                            total += float((v.to(_accumulator(y)) *
                                            tangent.to(_accumulator(y))).sum().item())
                flat[j] = total
            grads.append(flat.reshape(slot.work.shape))
        return outs, grads

    def _require_unmutated(self, leaves: Mapping[int, torch.Tensor]) -> None:
        for i, leaf in leaves.items():
            slot = self.slots[i]
            if not torch.equal(leaf.detach(), slot.base):
                raise CheckInputError(f"{self.describe} modified its input {slot.name} in "
                                      f"place; the checker needs a pure function: clone the "
                                      f"input before modifying it (x = x.clone())")


def _accumulator(y: torch.Tensor) -> torch.dtype:
    return torch.float32 if y.device.type == "mps" else torch.float64


def _host(g: torch.Tensor | None, slot: _Slot) -> np.ndarray:
    if g is None:
        return np.zeros(slot.shape)
    # force: a ZeroTensor (sgn's gradient of a real input) has no storage to share
    return g.detach().to(torch.float64).cpu().numpy(force=True).reshape(slot.shape)


def _nudged(slots: Mapping[int, _Slot], seed: int) -> dict[int, torch.Tensor]:
    """The evaluation point moved by a float64-only nudge (not float32-representable).

    Outputs there show whether the function really computes in float64: a copy-like op
    (``clone``, ``flip``) returns float32-representable values at a float32 point even in
    float64, which would otherwise read as float32 precision.
    """
    rng = stream(seed, "shifted input", 7)
    out = {}
    for i, s in slots.items():
        t = s.current()
        noise = torch.from_numpy(rng.standard_normal(s.shape)).to(device=t.device,
                                                                   dtype=t.dtype)
        out[i] = t + 1e-7 * noise * t.abs().clamp(min=1.0)
    return out


def _seen(outs: list[torch.Tensor]) -> np.ndarray:
    parts = []
    for y in outs:
        flat = y.detach().reshape(-1)
        if flat.numel() > 4096:
            idx = torch.linspace(0, flat.numel() - 1, 4096, device=flat.device).long()
            flat = flat[idx]
        parts.append(sample(flat.to(torch.float64).cpu().numpy()))
    return np.concatenate(parts) if parts else np.zeros(0)


def _promoted_outputs(evaluation: _Evaluation, seed: int, grad_mode: bool
                      ) -> tuple[list[torch.Tensor], np.ndarray]:
    """Outputs of the promoted ``φ`` at the point, and a sample there and nudged.

    The plain float64 call first; where it fails or returns float32 values (float32
    tensors or dtypes the function holds itself), the call with every op in float64
    (:class:`_Float64Everywhere`) for a function that draws no random numbers. Raises
    when neither works (the caller then differences in float32).
    """
    slots = evaluation.slots

    def outputs() -> tuple[list[torch.Tensor], np.ndarray]:
        with torch.set_grad_enabled(grad_mode):
            evaluated = evaluation.call({i: s.current() for i, s in slots.items()},
                                        evaluated=True)
            nudged = evaluation.call(_nudged(slots, seed), evaluated=True)
        return evaluated, np.concatenate([_seen(evaluated), _seen(nudged)])

    plain: tuple[list[torch.Tensor], np.ndarray] | None = None
    try:
        plain = outputs()
    except (UserCodeError, RuntimeError):
        if evaluation.random is not False:
            raise
    if plain is not None and (evaluation.random is not False or observed_precision(
            plain[1], np.dtype(np.float64)).eps <= PRECISIONS["float64"].eps):
        return plain
    evaluation.everywhere = True
    try:
        wide = outputs()
    except (UserCodeError, RuntimeError):
        evaluation.everywhere = False
        if plain is None:
            raise
        return plain
    if plain is not None and observed_precision(wide[1], np.dtype(np.float64)).eps >= \
            observed_precision(plain[1], np.dtype(np.float64)).eps:
        evaluation.everywhere = False  # no better: keep the plain call
        return plain
    return wide


# ------------------------------------------------------------------ the check
def _gradient_function(fn: Callable[..., Any], checked: Sequence[int], n_args: int,
                       seed: int, describe: str) -> Callable[..., tuple[torch.Tensor, ...]]:
    """``x -> vᵀ ∂fn/∂x`` for the checked positional arguments (``create_graph=True``).

    Checking this function's gradient is checking the gradient of the gradient (the
    Hessian-vector products ``wᵀ ∂(vᵀJ)/∂x``), which is what ``gradgradcheck`` does.
    """
    cotangents: list[torch.Tensor] = []

    def grad_of(*given: Any) -> tuple[torch.Tensor, ...]:
        with torch.enable_grad():
            args = list(given)
            for i in checked:
                if not args[i].requires_grad:
                    args[i] = args[i].detach().requires_grad_(True)
            outs = _float_outputs(describe, fn(*args))
            if not cotangents:
                rng = stream(seed, "upstream", 2)
                cotangents.extend(torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(
                    device=o.device, dtype=o.dtype) for o in outs)
            pairs = [(y, v) for y, v in zip(outs, cotangents, strict=True) if y.requires_grad]
            grads = torch.autograd.grad([y for y, _ in pairs], [args[i] for i in checked],
                                        grad_outputs=[v for _, v in pairs],
                                        create_graph=True, allow_unused=True,
                                        materialize_grads=True)
        return tuple(grads)

    grad_of.__name__ = f"grad({getattr(fn, '__name__', 'fn')})"
    return grad_of


def _label_of(fn: Callable[..., Any]) -> str:
    owner = getattr(fn, "__self__", None)  # MyFunction.apply: name the Function
    if isinstance(owner, type):
        return f"{owner.__name__}.{getattr(fn, '__name__', 'apply')}"
    return getattr(fn, "__name__", None) or type(fn).__name__


def _second_order(fn: Callable[..., Any], flat: Sequence[Any], chosen: Sequence[bool],
                  leaves: list[Any], n_inputs: int, has_kwargs: bool, seed: int,
                  describe: str) -> tuple[Callable[..., Any], list[Any]]:
    """``order=2``: the function whose derivative is checked (the gradient of ``fn`` under
    seeded cotangents) and its inputs (private clones, ``requires_grad`` marking the
    checked ones)."""
    positional = [i for i, c in enumerate(chosen) if c and len(flat[i][0]) == 2
                  and key_value(flat[i][0][0]) == 0]
    if len(positional) != sum(chosen) or has_kwargs or len(flat) != n_inputs:
        raise CheckInputError("order=2 checks top-level positional tensors only; pass "
                              "each checked tensor as its own positional argument")
    inner = _gradient_function(fn, positional, n_inputs, seed, describe)
    grad_inputs = [leaf.requires_grad_(chosen[i]) if _is_float_tensor(leaf) else leaf
                   for i, leaf in enumerate(leaves)]
    return inner, grad_inputs


def _slots_for(named: Sequence[tuple[str, Any]], chosen: Sequence[bool], describe: str, *,
               eval_half: bool, widen: bool) -> dict[int, _Slot]:
    """A slot per checked tensor: half precision evaluated in float32 (``eval_half``),
    float32 through float64 (``widen``)."""
    slots: dict[int, _Slot] = {}
    for i, ((name, value), c) in enumerate(zip(named, chosen, strict=True)):
        if not c:
            continue
        dtype = value.dtype
        if dtype in HALF:
            if eval_half:
                dtype = torch.float32
            elif dtype == torch.bfloat16:
                raise CheckTypeError(f"{describe} rejected float32 for the bfloat16 input "
                                     f"{name}; gradcheck differences bfloat16 code through a "
                                     f"float32 evaluation: make the function accept float32 "
                                     f"inputs")
        wide = torch.float64 if widen and dtype == torch.float32 else dtype
        slots[i] = _Slot(name, value, dtype, eval_dtype=wide)
    return slots


@dataclass
class _FirstEvaluation:
    """The evaluation that worked (the first of the dtype attempts) and what it returned."""

    evaluation: _Evaluation
    slots: dict[int, _Slot]
    grads: list[Any]
    evaluated: list[torch.Tensor]
    seen: np.ndarray
    widen: bool
    eval_half: bool
    halves: list[str]
    #: float64 inputs whose function casts to float32 itself (``x.float()``), widened
    #: under :class:`_Float64Everywhere`: the backward passed through float32
    narrowed: bool = False


def _narrowing(outs: list[torch.Tensor], slots: Mapping[int, _Slot]) -> bool:
    """float64 inputs only, and a float32 (complex64) output: the function casts down."""
    return (all(s.dtype == torch.float64 for s in slots.values())
            and any(o.dtype == torch.float32 for o in outs))


def _evaluate_first(fn: Callable[..., Any], describe: str, named: Sequence[tuple[str, Any]],
                    chosen: Sequence[bool], leaves: list[Any], spec: Any, seed: int, *,
                    ad: str, promote: bool, grad_mode: bool) -> _FirstEvaluation:
    """PyTorch's derivative at the point, trying the widest evaluation the function takes:
    float32 through float64 (``promote``), then the inputs' own dtypes, then half precision
    as it is; the last failure is the user's error."""
    halves_present = any(c and v.dtype in HALF for (_, v), c in zip(named, chosen, strict=True))
    widenable = any(c and v.dtype in (torch.float32, *HALF)
                    for (_, v), c in zip(named, chosen, strict=True))
    attempts = [(True, True)] if promote and widenable else []
    attempts += [(True, False)] + ([(False, False)] if halves_present else [])
    for k, (eval_half, widen) in enumerate(attempts):
        slots = _slots_for(named, chosen, describe, eval_half=eval_half, widen=widen)
        evaluation = _Evaluation(fn, describe, leaves, spec, slots, seed, promote=widen)
        halves = [s.name for s in slots.values() if s.original_dtype in HALF]
        try:
            outs, grads = evaluation.reverse() if ad == "rev" else evaluation.forward()
            evaluated, seen = outs, _seen(outs)
            narrowed = promote and not widen and _narrowing(outs, slots)
            if widen or narrowed:
                evaluated, seen = _promoted_outputs(evaluation, seed, grad_mode)
            return _FirstEvaluation(evaluation, slots, grads, evaluated, seen, widen,
                                    eval_half, halves,
                                    narrowed=narrowed and evaluation.everywhere)
        except (UserCodeError, RuntimeError):
            if k == len(attempts) - 1:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _evaluation_notes(evaluation: _Evaluation, slots: Mapping[int, _Slot], *, widen: bool,
                      halves: list[str], eval_half: bool) -> list[str]:
    """What the evaluation that worked did to the dtypes, for the result's notes."""
    notes: list[str] = []
    names_32 = [s.name for s in slots.values()
                if s.eval_dtype != s.dtype and s.original_dtype not in HALF]
    if widen and names_32:
        notes.append(f"{', '.join(names_32)}: float32 differenced through a float64 evaluation "
                     f"of the same function (steps float32-representable), the float32 "
                     f"backward judged at float32 precision; promote=False differences in "
                     f"float32")
    if evaluation.everywhere:
        notes.append("float32 tensors and dtypes the function holds itself were widened "
                     "too (every op of the float64 evaluation in float64)")
    if evaluation.skipped:
        notes.append(f"outputs {evaluation.skipped} do not require grad (declared "
                     f"non-differentiable by the function): not checked, as torch does")
    if halves and eval_half:
        through = " and differenced through a float64 evaluation" if widen else ""
        notes.append(f"{', '.join(halves)}: half-precision inputs, the backward run in float32"
                     f"{through} (the function's derivative is checked, not its "
                     f"half-precision rounding)")
    elif halves:
        notes.append(f"{', '.join(halves)}: float16 only, differenced in float16 "
                     f"(coarse: what half precision resolves)")
    return notes


@documents_options
def check(fn: Callable[..., Any], *inputs: Any, kwargs: Mapping[str, Any] | None = None,
          names: Sequence[str] | None = None, wrt: str | Sequence[str] | None = None,
          ad: str = "rev", order: int = 1, promote: bool = True, _kind: str = "torch.check",
          _label: str | None = None, _grad_mode: bool = False,
          **options: Unpack[CheckOptions]) -> CheckResult:
    """Check PyTorch's gradients of ``fn(*inputs, **kwargs)`` against finite differences.

    Parameters
    ----------
    fn : callable
        A function of tensors (``MyFunction.apply``, a lambda, a module's forward)
        returning a tensor or a tuple/list/dict of tensors (non-float outputs ignored).
    *inputs : tensors, or tuples/lists/dicts of tensors, or constants
        Float tensors with ``requires_grad`` are checked (all float tensors when none
        has it); integer tensors and other values are passed through as constants.
    kwargs : mapping, optional
        Keyword arguments, checked by the same rule and named by their keys.
    names : sequence of str, optional
        Names of the positional inputs (default ``arg0``, ``arg1``, ...; nested entries
        add their keys: ``arg1.W``, ``arg0[0]``).
    wrt : str or sequence of str, optional
        Names or globs (``"arg1.*"``) of the inputs to check; overrides ``requires_grad``.
    ad : "rev" | "fwd"
        Reverse mode (``torch.autograd.grad``) or forward mode (dual numbers; the
        function must support forward AD; one forward pass per checked entry).
    order : 1 | 2
        ``2`` checks the gradient of the gradient (``create_graph=True``) with seeded
        cotangents, as ``gradgradcheck`` does.
    promote : bool
        Difference float32 (and half) inputs through a float64 evaluation of the same
        function when it accepts one (steps stay float32-representable; the backward
        under test still runs in the tensor's dtype and is judged at its precision), as
        ``check_layer``/``check_function`` do: float32 rounding of ``Σ v·y`` over many
        outputs then no longer hides errors of 1e-3. ``False``: difference in the
        tensor's own dtype (a kernel without a float64 path falls back to it anyway).
    (the options below: their defaults need no tuning in float64 or float32)

    Returns
    -------
    CheckResult
        Tensors named as above; ``.ok``, ``.tensors``, ``.worst``, ``.diagnosis``.

    >>> import torch
    >>> x = torch.randn(3, dtype=torch.float32, requires_grad=True)
    >>> check(torch.sin, x).ok
    True
    """
    start, seed = time.perf_counter(), Options.of("gradcheck.torch.check", options).seed
    if not callable(fn):
        raise CheckTypeError(f"fn must be callable, got {type(fn).__name__}")
    if ad not in ADS:
        raise CheckInputError(f"ad={ad!r} is not one of {ADS}")
    if order not in (1, 2):
        raise CheckInputError(f"order={order!r}: gradcheck checks order 1 or 2")
    if order == 2 and ad == "fwd":
        raise CheckInputError("order=2 is checked in reverse mode (ad='rev'), as "
                              "gradgradcheck does")
    kwargs = dict(kwargs or {})
    label = _label or _label_of(fn)
    describe = f"{label}"
    flat, spec = pytree.tree_flatten_with_path((tuple(inputs), kwargs))
    named = list(zip(leaf_names(flat, arg_names(len(inputs), names)),
                     [value for _, value in flat], strict=True))
    _complex_guard(named)
    chosen = _selected(named, wrt)
    leaves = [value.detach().clone() if isinstance(value, torch.Tensor) else value
              for _, value in named]
    if order == 2:
        inner, grad_inputs = _second_order(fn, flat, chosen, leaves, len(inputs), bool(kwargs),
                                           seed, describe)
        return check(inner, *grad_inputs, names=[n for n, _ in named][:len(inputs)],
                     promote=promote, _kind=f"{_kind}(order=2)", _label=f"grad of {label}",
                     _grad_mode=True, **options)
    spec = pytree.tree_structure((tuple(inputs), kwargs))
    done = _evaluate_first(fn, describe, named, chosen, leaves, spec, seed, ad=ad,
                           promote=promote, grad_mode=_grad_mode)
    evaluation, slots, grads, evaluated, seen = (done.evaluation, done.slots, done.grads,
                                                 done.evaluated, done.seen)
    notes = _evaluation_notes(evaluation, slots, widen=done.widen, halves=done.halves,
                              eval_half=done.eval_half)
    # a float64 input whose function casts to float32: its gradient passed through float32
    grad_of = {s.name: np.dtype(np.float32 if done.narrowed else NUMPY_DTYPES[s.dtype])
               for s in slots.values()}
    arrays = [ArrayInput(s.name, s.work, g, storage=s.storage, role=s.role,
                         grad_dtype=grad_of[s.name])
              for s, g in zip(slots.values(), grads, strict=True)]
    declared = np.dtype(NUMPY_DTYPES.get(
        max((o.dtype for o in evaluated), key=lambda d: torch.finfo(d).eps), np.float64))
    result = run_arrays(_kind, label, describe, lambda: evaluation.phi(_grad_mode),
                        arrays, seen=seen, declared=declared,
                        noise=evaluation.scale(evaluated),
                        options=dict(options),
                        notes=notes, start=start)
    return _sampling_verdict(result, evaluation, arrays)


def _sampling_verdict(result: CheckResult, evaluation: _Evaluation,
                      arrays: Sequence[ArrayInput]) -> CheckResult:
    """A function that draws random numbers and claims an exactly zero gradient where the
    seeded draw has one (``torch.normal(mean, std)``: torch does not differentiate through
    its sampling) is a sampling op, not a wrong backward: inconclusive, said so.

    Every evaluation reuses one seed, so differences see the derivative of that draw (the
    reparameterization); dropout's backward claims it, a sampling op's zero gradient
    defines another one. Only tensors whose whole analytic gradient is exactly 0 are
    read this way; any other wrong tensor keeps the verdict wrong.
    """
    if result.verdict != "wrong" or not evaluation.random or result.nondeterministic:
        return result
    zero = {a.name for a in arrays if not np.any(a.analytic)}
    wrong = {t.name for t in result.tensors if t.n_wrong}
    if not wrong or not wrong <= zero:
        return result
    note = (f"{', '.join(sorted(wrong))}: the function draws random numbers and its gradient "
            f"there is exactly 0 while the seeded draw's derivative is not (a sampling op "
            f"that does not differentiate through its draw, as torch.normal); the two "
            f"define different derivatives, so neither is judged: inconclusive")
    return replace(result, ok=False, verdict="inconclusive", notes=[*result.notes, note])


@documents_options
def check_module(module: Any, *inputs: Any, kwargs: Mapping[str, Any] | None = None,
                 wrt: str | Sequence[str] | None = None, ad: str = "rev", order: int = 1,
                 promote: bool = True, **options: Unpack[CheckOptions]) -> CheckResult:
    """Check an ``nn.Module``'s parameter gradients (and input gradients) at ``inputs``.

    Parameters are named as ``module.named_parameters()`` names them (``"0.weight"``);
    inputs with ``requires_grad`` are checked too (``arg0``, ...). The module is
    evaluated with ``torch.func.functional_call`` on clones of its parameters and
    buffers: its parameters, buffers and ``.grad`` are unchanged afterwards.

    Parameters
    ----------
    module : torch.nn.Module
    *inputs : tensors or constants
        The forward's positional arguments.
    kwargs, wrt, ad, order, promote
        As for :func:`check`; ``wrt`` globs see parameter names (``"*.weight"``) and
        ``arg0``...
    Returns
    -------
    CheckResult

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> check_module(torch.nn.Linear(3, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)).ok
    True
    """
    from torch.func import functional_call

    if not isinstance(module, torch.nn.Module):
        raise CheckTypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    params = {k: p for k, p in module.named_parameters() if p.requires_grad}
    frozen = {k: p.detach().clone() for k, p in module.named_parameters()
              if not p.requires_grad}
    buffers = {k: b.detach().clone() for k, b in module.named_buffers()}
    n = len(inputs)

    def forward(*args: Any, **kw: Any) -> Any:
        values = dict(zip(params, args[n:], strict=True))
        wide = any(v.dtype == torch.float64 for v in values.values())
        rest = {k: b.to(torch.float64) if wide and b.dtype == torch.float32 else b
                for k, b in {**frozen, **buffers}.items()}  # a float64 evaluation: widen all
        return functional_call(module, {**values, **rest}, tuple(args[:n]), kw)

    names = [f"arg{i}" for i in range(n)] + list(params)
    if wrt is None:
        wanted = [nm for nm, x in zip(names, inputs, strict=False)
                  if _is_float_tensor(x) and x.requires_grad] + list(params)
        wrt = wanted or None
    label = type(module).__name__
    return check(forward, *inputs, *(p.detach() for p in params.values()), kwargs=kwargs,
                 names=names, wrt=wrt, ad=ad, order=order, promote=promote,
                 _kind="torch.check_module", _label=label, **options)


# ------------------------------------------------------------------ drop-ins
def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def _drop_in_inputs(inputs: Any, owner: str) -> tuple[Any, ...]:
    """The inputs as a tuple; as torch's ``owner`` does, refuse when none requires grad."""
    args = _as_tuple(inputs)
    if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        raise CheckInputError(
            f"{owner} expects at least one input tensor to require gradient, but none of "
            f"them have requires_grad=True (as torch.autograd.{owner} says); mark the "
            f"inputs to check with requires_grad_(), or call gradcheck.torch.check, which "
            f"checks every float tensor when none requires grad")
    return args


def _verdict(results: list[CheckResult], raise_exception: bool) -> bool:
    for result in results:
        if not result.ok:
            if raise_exception:
                raise GradcheckError(result)
            return False
    return True


def _drop_in_tolerances(use_given: bool, rtol: float, atol: float
                        ) -> tuple[float | None, float | None]:
    return (rtol, atol) if use_given else (None, None)


def gradcheck(func: Callable[..., Any], inputs: Any, *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False,
              masked: bool | None = None, use_given_tolerances: bool = False,
              seed: int = 0, allow_unresolved: bool = False) -> bool:
    """Drop-in for ``torch.autograd.gradcheck``: same signature, same return convention.

    Returns ``True``, or raises :class:`GradcheckError` (an ``AssertionError`` and torch's
    ``GradcheckError``, a ``RuntimeError``) carrying ``.result``; with
    ``raise_exception=False`` returns ``False`` instead. Inputs with ``requires_grad``
    are checked, in their own dtype (float32 too, with no tolerance to tune); as torch's,
    it refuses inputs none of which requires grad (a ``ValueError``).

    How torch's arguments are used:

    * ``fast_mode=True`` -> ``mode="fast"`` (random directions, localized on failure);
      otherwise ``mode="auto"`` (every entry up to 2048 checked entries);
    * ``check_backward_ad`` (reverse mode) and ``check_forward_ad`` (forward mode) select
      which derivatives are checked;
    * ``atol`` and ``rtol`` are **ignored** unless ``use_given_tolerances=True`` (then
      they override the relative and absolute floors; the finite-difference error
      estimate is still added): torch's values are tuned for float64 and would make
      float32 checks fail or pass by accident;
    * ``eps`` is **ignored**: the step follows the precision read from the outputs;
    * ``nondet_tol``, ``check_undefined_grad``, ``check_grad_dtypes``,
      ``check_batched_grad``, ``check_batched_forward_grad`` and ``masked`` are accepted
      and ignored (nondeterminism is always detected and reported).

    ``seed`` and ``allow_unresolved`` are gradcheck's own (keyword-only): an entry no
    step can resolve makes the check inconclusive (``False``/raised) unless
    ``allow_unresolved=True``.

    >>> import torch
    >>> x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    >>> gradcheck(torch.tanh, (x,))
    True
    """
    __tracebackhide__ = True
    r, a = _drop_in_tolerances(use_given_tolerances, rtol, atol)
    ads = [ad for ad, on in (("rev", check_backward_ad), ("fwd", check_forward_ad)) if on]
    mode: Mode = "fast" if fast_mode else "auto"
    args = _drop_in_inputs(inputs, "gradcheck")
    results = [check(func, *args, ad=ad, mode=mode, rtol=r, atol=a, seed=seed,
                     allow_unresolved=allow_unresolved, _kind="torch.gradcheck")
               for ad in ads]
    return _verdict(results, raise_exception)


def gradgradcheck(func: Callable[..., Any], inputs: Any, grad_outputs: Any = None, *,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False,
                  use_given_tolerances: bool = False, seed: int = 0,
                  allow_unresolved: bool = False) -> bool:
    """Drop-in for ``torch.autograd.gradgradcheck``: the gradient of the gradient.

    Checks ``x -> vᵀ ∂func/∂x`` (built with ``create_graph=True``; ``v`` = ``grad_outputs``
    or seeded Gaussian cotangents) against finite differences of that first-order
    gradient, with the double-backward as the analytic side: every entry of
    ``wᵀ ∂(vᵀJ)/∂x`` for a seeded ``w`` (Hessian-vector products). Return convention and
    the use of torch's arguments (and ``seed``, ``allow_unresolved``) as in
    :func:`gradcheck`; ``check_fwd_over_rev``,
    ``gen_non_contig_grad_outputs`` are accepted and ignored.

    >>> import torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> gradgradcheck(lambda t: (t ** 3).sum(), (x,))
    True
    """
    __tracebackhide__ = True
    r, a = _drop_in_tolerances(use_given_tolerances, rtol, atol)
    args = _drop_in_inputs(inputs, "gradgradcheck")
    mode: Mode = "fast" if fast_mode else "auto"
    if grad_outputs is None:
        fn = func
    else:
        given = [g.detach() for g in _as_tuple(grad_outputs) if g is not None]

        def fn(*xs: Any) -> Any:  # the gradient function below uses its own cotangents:
            outs = _float_outputs("func", func(*xs))  # fold the given ones into the output
            return sum((o * g.to(o.dtype)).sum() for o, g in zip(outs, given, strict=True))
        fn.__name__ = getattr(func, "__name__", "func")
    if not check_rev_over_rev:
        return True
    result = check(fn, *args, order=2, mode=mode, rtol=r, atol=a, seed=seed,
                   allow_unresolved=allow_unresolved, _kind="torch.gradgradcheck")
    return _verdict([result], raise_exception)


__all__ = ["GradcheckError", "check", "check_module", "gradcheck", "gradgradcheck"]
