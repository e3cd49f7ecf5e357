"""PyTorch's operator database through ``gradcheck.torch`` and ``torch.autograd.gradcheck``.

For each differentiable operator of ``op_db`` (``torch.testing._internal.
common_methods_invocations``, needs ``pip install expecttest``) and its first sample
inputs, in float64 and float32, both checkers see

* the correct gradient (PyTorch's own backward formula): any rejection is a false
  alarm, counted apart when ``op_db`` itself marks the operator's gradient test as
  failing or skipped (``TestBwdGradients.test_fn_grad``) or when our result says
  "unresolved"/inconclusive;
* three planted bugs in the gradient of the first input, through an
  ``autograd.Function`` that wraps the correct backward: one entry × (1 + 1e-3) (the
  entry with the largest gradient under a fixed cotangent), the whole gradient × 1.01,
  one entry's sign flipped (skipped where that gradient is at rounding level: scaling
  it plants no bug);

and the script prints rates, time and function evaluations of both, side by side, then
per planted bug gradcheck's caught / unresolved (verdict "inconclusive": neither a
catch nor a silent pass) / silent passes / errors, and the time ratio of the two
checkers in this same run. torch's checker runs with its defaults (slow mode,
eps=1e-6, atol=1e-5, rtol=1e-3). ``expecttest`` is needed by op_db only, so it is not
in the ``test`` extra (no test imports op_db): ``pip install expecttest`` first.

Last measured (all 547 operators, torch 2.13.0 CPU, 2 shared cores; each dtype in its
own run, ``--dtypes float32`` / ``--dtypes float64``). Plants on operators op_db marks
as failing their gradient test are counted apart, as their correct cases are (op_db's
own backward is not the reference there; most are the casts to bfloat16/float16/chalf,
whose half-precision output cannot show a 1e-3 change):

========  =====  ============  ==========  =====  =======  ==============================
dtype     case   false alarm   unresolved  op_db  refused  caught / unres. / silent
========  =====  ============  ==========  =====  =======  ==============================
float32   right  0 of 518      7           8      2        —
float32   e×1e-3 —             —           17     1        396 / 2 / 0 of 398 (99.50 %)
float32   ×1.01  —             —           17     1        398 / 0 / 0 of 398 (100 %)
float32   sign   —             —           17     1        398 / 0 / 0 of 398 (100 %)
float64   right  0 of 518      6           7 +1   2        —
float64   e×1e-3 —             —           19     1        398 / 1 / 0 of 399 (99.75 %)
float64   ×1.01  —             —           19     1        398 / 1 / 0 of 399 (99.75 %)
float64   sign   —             —           19     1        399 / 0 / 0 of 399 (100 %)
========  =====  ============  ==========  =====  =======  ==============================

(rates over the cases not refused and not op_db-marked; on the op_db-marked operators
13 / 13 / 16 of 17 plants (float32) and 15 / 15 / 18 of 19 (float64) are caught, the
rest unresolved; counting them in, float32 e×1e-3 is 409 of 415, 98.6 %. "+1": float64
``hardsigmoid``, a verified torch defect, see ``TORCH_DEFECTS``.) No silent pass and no
error: the plants not caught are unresolved (inconclusive): ``rms_norm`` and
``logcumsumexp`` (float32, inputs of 1e4), ``linalg.det`` (float64). Refused, with a
named ``NonFiniteError``: ``_safe_softmax`` (-inf inputs) and ``__rpow__`` (a NaN
output). Unresolved correct operators (float32): ``prod`` (gradient below float32's
smallest normal), ``logcumsumexp`` (inputs of 1e4), ``ceil``, ``floor``, ``round``,
``trunc``, ``hardtanh`` (flat or kinked at the sample). Time, gradcheck / torch's slow
mode in the same run: float32 1.04 (correct cases), 0.91 (all cases); float64 0.59
(correct), 0.67 (all). Function evaluations, correct cases: float32 104 653 vs torch's
73 718, float64 104 585 vs 79 657.

Usage::

    python benchmarks/bench_torch_opdb.py --limit 60            # first 60 operators
    python benchmarks/bench_torch_opdb.py --ops sin,tanh,matmul
    python benchmarks/bench_torch_opdb.py                        # all (long)
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import defaultdict

import torch

import gradcheck.torch as gt

BUGS = ("entry*(1+1e-3)", "all*1.01", "sign flip")
MAX_ENTRIES = 400  # samples whose checked inputs are larger are skipped (time)


def marked_failing(op, dtype) -> bool:
    """Does op_db mark this operator's gradient test as expected to fail or skipped?"""
    for info in list(op.decorators) + list(op.skips):
        # test_name None: the whole class is skipped or expected to fail (normal's)
        if getattr(info, "test_name", None) not in ("test_fn_grad", None):
            continue
        if getattr(info, "cls_name", None) not in ("TestBwdGradients", "TestGradients"):
            continue
        dtypes = getattr(info, "dtypes", None)
        if getattr(info, "device_type", None) not in (None, "cpu"):
            continue
        if dtypes is None or dtype in dtypes:
            return True
    return False


def problem(op, dtype):
    """(fn, inputs) for the op's first usable sample, or None."""
    try:
        samples = op.sample_inputs("cpu", dtype, requires_grad=True)
        for s in samples:
            tensors = [s.input] if isinstance(s.input, torch.Tensor) else []
            if not tensors or not s.input.requires_grad or s.input.numel() == 0:
                continue
            if s.input.layout != torch.strided:  # sparse layouts: not this sweep
                continue
            extra = [a for a in s.args if isinstance(a, torch.Tensor) and a.requires_grad]
            inputs = tensors + extra
            if sum(t.numel() for t in inputs) > MAX_ENTRIES:
                continue
            args = list(s.args)
            slots = [i for i, a in enumerate(args) if any(a is t for t in extra)]
            kwargs, post = s.kwargs, s.output_process_fn_grad

            def fn(x, *rest, args=args, slots=slots, kwargs=kwargs, post=post):
                call = list(args)
                for i, t in zip(slots, rest, strict=True):
                    call[i] = t
                # op_db's own wrapper (e.g. symmetrizing the input of cholesky)
                return post(op.gradcheck_wrapper(op.get_op(), x, *call, **kwargs))

            fn.__name__ = op.name
            return fn, inputs
    except Exception:
        return None
    return None


def planted(fn, inputs, bug):
    """``fn`` with its gradient for the first input planted with ``bug``."""
    gen = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        out = fn(*leaves)
        g = torch.randn(out.shape, generator=gen, dtype=out.dtype)
        (d,) = torch.autograd.grad(out, leaves[:1], g, allow_unused=True)
    if d is None or not torch.any(d != 0):
        return None
    if float(d.abs().max()) <= 1e3 * torch.finfo(d.dtype).eps * float(g.abs().max()):
        return None  # a gradient at rounding level (corrcoef of one row is constant 1)
    j = int(torch.argmax(d.abs().reshape(-1)))
    if d.dtype == torch.float32 and bug != "sign flip":
        own = float32_rounding(fn, inputs, g, d, j, whole=bug == "all*1.01")
        if own is not None and own >= PLANT_SIZE[bug]:
            return None  # the float32 backward's own error is as large as the plant

    class Planted(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *ts):
            with torch.enable_grad():
                ls = [t.detach().requires_grad_() for t in ts]
                y = fn(*ls)
            ctx.ls, ctx.y = ls, y
            return y.detach()

        @staticmethod
        def backward(ctx, gy):
            gs = torch.autograd.grad(ctx.y, ctx.ls, gy, allow_unused=True, retain_graph=True)
            gs = [torch.zeros_like(t) if g is None else g for g, t in zip(gs, ctx.ls, strict=True)]
            first = gs[0].clone(memory_format=torch.contiguous_format)
            if bug == "entry*(1+1e-3)":
                first.view(-1)[j] *= 1 + 1e-3
            elif bug == "all*1.01":
                first = first * 1.01
            else:
                first.view(-1)[j] *= -1
            return (first, *gs[1:])

    return Planted.apply


#: Relative size of each scaled plant: a float32 backward that is itself off by as much
#: (measured against the same backward in float64) plants no bug by the scaling.
PLANT_SIZE = {"entry*(1+1e-3)": 1e-3, "all*1.01": 1e-2}


def float32_rounding(fn, inputs, g, d, j, whole):
    """The float32 backward's own relative error, against float64 at the same point: at
    entry ``j`` (or over the whole gradient, RMS over RMS, when ``whole``); None when the
    function has no float64 path."""
    try:
        with torch.enable_grad():
            wide = [t.detach().double().requires_grad_() for t in inputs]
            out = fn(*wide)
            if out.dtype != torch.float64:
                return None
            (d64,) = torch.autograd.grad(out, wide[:1], g.double(), allow_unused=True)
    except Exception:
        return None
    if d64 is None:
        return None
    diff = (d.double() - d64).reshape(-1)
    if whole:
        return float(diff.norm() / max(float(d64.norm()), 1e-300))
    return abs(float(diff[j])) / max(abs(float(d64.reshape(-1)[j])), 1e-300)


#: Alarms verified to be torch's own defects (not op_db-marked), with the evidence:
#: counted apart from false alarms, listed by name.
TORCH_DEFECTS = {
    ("float64", "nn.functional.hardsigmoid"):
        "the float64 backward multiplies by the float32 constant 1/6: its gradient at 0 "
        "is 0.1666666716337204, relative error 2.98e-8 (10x float64's tolerance)",
}

#: gradcheck's named refusals (a clear error saying what and why): counted apart
REFUSALS = ("CheckInputError", "CheckTypeError", "NonFiniteError", "UserCodeError")


def counted(fn):
    calls = [0]

    def wrapper(*args):
        calls[0] += 1
        return fn(*args)

    wrapper.__name__ = getattr(fn, "__name__", "fn")
    return wrapper, calls


def ours(fn, inputs):
    f, calls = counted(fn)
    start = time.perf_counter()
    try:
        result = gt.check(f, *inputs)
        verdict = {"ok": "ok", "inconclusive": "unresolved"}.get(result.verdict, "wrong")
    except Exception as err:  # an error is neither a pass nor a catch
        kind = "refused" if type(err).__name__ in REFUSALS else "error"
        verdict = f"{kind}:{type(err).__name__}"
    return verdict, time.perf_counter() - start, calls[0]


def theirs(fn, inputs):
    f, calls = counted(fn)
    start = time.perf_counter()
    try:
        ok = torch.autograd.gradcheck(f, tuple(inputs), raise_exception=False)
        verdict = "ok" if ok else "wrong"
    except Exception as err:
        verdict = f"error:{type(err).__name__}"
    return verdict, time.perf_counter() - start, calls[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N differentiable ops")
    parser.add_argument("--ops", default="", help="comma-separated op names")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--verbose", action="store_true",
                        help="list gradcheck's misses and errors by operator")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from torch.testing._internal.common_methods_invocations import op_db

    ops = [o for o in op_db if o.supports_autograd]
    if args.ops:
        wanted = set(args.ops.split(","))
        ops = [o for o in ops if o.name in wanted]
    if args.limit:
        ops = ops[:args.limit]
    stats: dict = defaultdict(lambda: defaultdict(int))
    alarms: list[str] = []
    misses: list[str] = []
    defects: list[str] = []
    for dtype in [getattr(torch, d) for d in args.dtypes.split(",")]:
        dn = str(dtype).replace("torch.", "")
        for op in ops:
            if dtype not in op.supported_backward_dtypes("cpu"):
                continue
            built = problem(op, dtype)
            if built is None:
                continue
            fn, inputs = built
            marked = marked_failing(op, dtype)
            for who, runner in (("gradcheck", ours), ("torch", theirs)):
                verdict, seconds, calls = runner(fn, inputs)
                s = stats[(dn, who, "correct")]
                s["n"] += 1
                s["seconds"] += seconds
                s["evaluations"] += calls
                if verdict.startswith(("error", "refused")):
                    s["refused" if verdict.startswith("refused") else "errors"] += 1
                    if who == "gradcheck":
                        misses.append(f"{dn} {op.name} {verdict}")
                elif verdict != "ok":
                    key = "alarm (op_db marks failing)" if marked else (
                        "unresolved" if verdict == "unresolved" else "false alarm")
                    if key == "false alarm" and (dn, op.name) in TORCH_DEFECTS:
                        key = "torch defect"
                    s[key] += 1
                    if key == "false alarm" and who == "gradcheck":
                        alarms.append(f"{dn} {op.name}")
                    if key != "false alarm" and who == "gradcheck":
                        misses.append(f"{dn} {op.name} correct {key}")
                    if key == "torch defect" and who == "gradcheck":
                        defects.append(f"{dn} {op.name}: {TORCH_DEFECTS[(dn, op.name)]}")
            try:
                single = isinstance(fn(*inputs), torch.Tensor)
            except Exception:
                single = False
            if not single:
                continue
            for bug in BUGS:
                try:
                    wrong = planted(fn, inputs, bug)
                except Exception:
                    wrong = None
                if wrong is None:
                    continue
                for who, runner in (("gradcheck", ours), ("torch", theirs)):
                    verdict, seconds, calls = runner(wrong, inputs)
                    s = stats[(dn, who, bug)]
                    s["n"] += 1
                    s["seconds"] += seconds
                    s["evaluations"] += calls
                    if marked:  # op_db's own gradient is not the reference there: apart
                        s["alarm (op_db marks failing)"] += 1
                        s["marked caught"] += verdict == "wrong"
                        continue
                    # inconclusive is neither a catch nor a silent pass: counted apart
                    s["caught"] += verdict == "wrong"
                    s["unresolved"] += verdict == "unresolved"
                    s["errors"] += verdict.startswith("error")
                    s["refused"] += verdict.startswith("refused")
                    if who == "gradcheck" and verdict != "wrong":
                        misses.append(f"{dn} {op.name} {bug} {verdict}")
    print(f"{len(ops)} operators considered; first usable sample each, <= {MAX_ENTRIES} "
          f"checked entries\n")
    print(f"{'dtype':8} {'checker':10} {'case':16} {'n':>5} {'caught/alarms':>14} "
          f"{'unresolved':>10} {'op_db-marked':>12} {'defect':>6} {'refused':>7} "
          f"{'errors':>6} {'seconds':>8} {'evals':>8}")
    for (dn, who, case), s in sorted(stats.items()):
        hit = s["caught"] if case != "correct" else s["false alarm"]
        print(f"{dn:8} {who:10} {case:16} {s['n']:5d} {hit:14d} {s['unresolved']:10d} "
              f"{s['alarm (op_db marks failing)']:12d} {s['torch defect']:6d} "
              f"{s['refused']:7d} {s['errors']:6d} {s['seconds']:8.1f} "
              f"{s['evaluations']:8d}")
    print("\ngradcheck per planted bug: caught / unresolved (inconclusive) / silent passes "
          "/ refused (a named error) / errors, and the catch rate over the cases not "
          "refused and not on an operator op_db marks failing (target >= 99.5 %)")
    for (dn, who, case), s in sorted(stats.items()):
        if who != "gradcheck" or case == "correct" or not s["n"]:
            continue
        marked_n = s["alarm (op_db marks failing)"]
        silent = (s["n"] - s["caught"] - s["unresolved"] - s["errors"] - s["refused"]
                  - marked_n)
        judged = max(s["n"] - s["refused"] - marked_n, 1)
        print(f"  {dn:8} {case:16} {s['caught']:5d} / {s['unresolved']:3d} / {silent:3d} / "
              f"{s['refused']:3d} / {s['errors']:3d}   {100 * s['caught'] / judged:6.2f} %"
              f"   (+{marked_n} on operators op_db marks failing, {s['marked caught']} of "
              f"them caught)")
    print("\ntime, gradcheck / torch.autograd.gradcheck (slow mode), same run:")
    for dn in sorted({k[0] for k in stats}):
        mine = {c: s["seconds"] for (d, w, c), s in stats.items() if d == dn and w == "gradcheck"}
        theirs_ = {c: s["seconds"] for (d, w, c), s in stats.items() if d == dn and w == "torch"}
        total_m, total_t = sum(mine.values()), sum(theirs_.values())
        print(f"  {dn:8} correct {mine.get('correct', 0):7.1f} s / "
              f"{theirs_.get('correct', 0):7.1f} s = "
              f"{mine.get('correct', 0) / max(theirs_.get('correct', 0), 1e-9):5.2f}   "
              f"all cases {total_m:7.1f} s / {total_t:7.1f} s = "
              f"{total_m / max(total_t, 1e-9):5.2f}")
    if alarms:
        print("\ngradcheck false alarms:", ", ".join(alarms))
    if defects:
        print("\nalarms on verified torch defects (counted apart):\n  " + "\n  ".join(defects))
    if args.verbose and misses:
        print("\ngradcheck misses and errors:\n  " + "\n  ".join(misses))


if __name__ == "__main__":
    main()
