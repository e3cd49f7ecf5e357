"""Structured full mode and ``executor=``, measured side by side in one run.

Prints:

1. for Dense, Conv2D (8×8 and 16×16), MaxPool2D, LSTM, BatchNorm (training mode: coupled
   samples, the fallback) and a Conv1d on an (8, 8, 101) input: evaluations and wall
   time of plain full mode (``structured=False``), sample-structured full mode (tiles
   switched off), tiled structured full mode (the default: tiles where the discovered
   footprints pay, else samples) and fast mode, the structure used, the ratios, and
   ``torch.autograd.gradcheck`` (slow and fast mode, float64) on the same layer shapes
   when PyTorch is importable;
2. the detection rate of a single wrong entry of dL/dx (relative error 1e-3, float32
   layer) in structured full mode and in fast mode given the same number of evaluations;
3. serial full mode against a process pool and against a local Dask cluster
   (``Client.get_executor()``, when dask.distributed is installed) on this machine's
   cores, as time ratios, with the shipped payload's size.

Run: ``python benchmarks/bench_structured.py [--trials N] [--quick]`` (not a test;
nothing is asserted; about 12 minutes on 2 busy cores, most of it
torch's slow gradcheck of the 16×16 Conv2D and the Conv1d; 2 with ``--quick``). Wall times on a shared machine are noisy: every figure is the best of a few.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

import gradcheck
from gradcheck.adapters.shipping import dumps_for_workers
from gradcheck.engine.tiles import Layout
from gradcheck.models import LSTM, BatchNorm, Conv2D, Dense, MaxPool2D


class Conv1D(Conv2D):
    """A 1-d convolution over ``(N, C, L)``: the zoo's Conv2D with a ``(1, k)`` kernel."""

    layouts = {"x": "NCL"}  # noqa: RUF012  (as the zoo's layers declare it)

    def __init__(self, cin: int, cout: int, k: int, padding: int = 0) -> None:
        super().__init__(cin, cout, (1, k), padding=(0, padding))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return super().forward(np.asarray(x)[:, :, None, :])[:, :, 0, :]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return super().backward(np.asarray(grad_out)[:, :, None, :])[:, :, 0, :]


#: name -> (layer factory, input shape)
LAYERS: dict[str, tuple[Callable[[], Any], tuple[int, ...]]] = {
    "Dense(32→16)": (lambda: Dense(32, 16), (16, 32)),
    "Conv2D(3→4, 3×3)": (lambda: Conv2D(3, 4, 3, padding=1), (8, 3, 8, 8)),
    "Conv2D 16×16": (lambda: Conv2D(3, 4, 3, padding=1), (8, 3, 16, 16)),
    "MaxPool2D(2)": (lambda: MaxPool2D(2), (8, 4, 8, 8)),
    "LSTM(4→8)": (lambda: LSTM(4, 8), (8, 6, 4)),
    "BatchNorm(16)": (lambda: BatchNorm(16), (16, 16)),
    "Conv1d(8→8, k3)": (lambda: Conv1D(8, 8, 3, padding=1), (8, 8, 101)),
}


@contextlib.contextmanager
def samples_only() -> Iterator[None]:
    """Structured full mode with tiling switched off (no tile count is offered)."""
    original = Layout.tile_counts
    Layout.tile_counts = lambda self: []  # type: ignore[method-assign]
    try:
        yield
    finally:
        Layout.tile_counts = original  # type: ignore[method-assign]


def best_of(repeats: int, run: Callable[[], Any]) -> tuple[Any, float]:
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return result, best


# ---- 1. the cost table --------------------------------------------------------------------

def torch_seconds(name: str, layer: Any, x: np.ndarray) -> dict[str, float] | None:
    """``torch.autograd.gradcheck`` (slow, fast) on PyTorch's layer of the same shape."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    xt = torch.tensor(x, requires_grad=True)
    if name.startswith("Dense"):
        module: Any = torch.nn.Linear(x.shape[1], 16)
    elif name.startswith("Conv2D"):
        module = torch.nn.Conv2d(3, 4, 3, padding=1)
    elif name.startswith("Conv1d"):
        module = torch.nn.Conv1d(8, 8, 3, padding=1)
    elif name.startswith("MaxPool"):
        module = torch.nn.MaxPool2d(2)
        xt = torch.tensor(x + 1e-3 * np.arange(x.size).reshape(x.shape), requires_grad=True)
    elif name.startswith("LSTM"):
        lstm = torch.nn.LSTM(4, 8, batch_first=True).double()

        def module(z: Any) -> Any:
            return lstm(z)[0]
    else:
        module = torch.nn.BatchNorm1d(16)
    if isinstance(module, torch.nn.Module):
        module = module.double()
        inputs = (xt, *[p for p in module.parameters()])
    else:
        inputs = (xt, *lstm.parameters())

    def f(z: Any, *_: Any) -> Any:
        return module(z)

    out = {"slow": float("nan")}
    for mode, fast in (("slow", False), ("fast", True)):
        if not fast and QUICK:
            continue
        _, out[mode] = best_of(1 if not fast else 3, lambda fast=fast: torch.autograd.gradcheck(
            f, inputs, fast_mode=fast, raise_exception=False))
    return out


def cost_table() -> None:
    print("1. evaluations and wall time per mode (float64, seed 0; best of 2); ratios are "
          "plain full / the mode's evaluations")
    print(f"{'layer':17} {'entries':>7} {'plain full':>15} {'samples':>21} "
          f"{'tiled (default)':>21} {'fast':>13}  structure  {'torch slow':>10} "
          f"{'torch fast':>10}")
    for name, (factory, shape) in LAYERS.items():
        x = np.random.default_rng(0).standard_normal(shape)
        layer = factory()
        entries = x.size + sum(p.size for p in layer.params.values())

        def check(mode: str, layer: Any = layer, x: np.ndarray = x, **options: Any) -> Any:
            return gradcheck.check_layer(layer, x, mode=mode, **options)

        plain, t_plain = best_of(2, lambda: check("full", structured=False))
        with samples_only():
            by_samples, t_samples = best_of(2, lambda: check("full"))
        tiled, t_tiled = best_of(2, lambda: check("full"))
        fast, t_fast = best_of(2, lambda: check("fast"))
        torch_t = torch_seconds(name, layer, x)
        torch_text = ("   (no torch)" if torch_t is None else
                      ("  (skipped)" if np.isnan(torch_t["slow"]) else
                       f"{torch_t['slow']:9.3f}s") + f" {torch_t['fast']:9.3f}s")

        def cell(result: Any, seconds: float, base: int = plain.evaluations) -> str:
            return f"{result.evaluations:6d} {seconds:6.2f}s ({base / result.evaluations:4.1f}×)"

        print(f"{name:17} {entries:7d} {plain.evaluations:6d} {t_plain:6.2f}s "
              f"{plain.verdict[:2]} {cell(by_samples, t_samples)} {cell(tiled, t_tiled)} "
              f"{tiled.verdict[:2]} {fast.evaluations:4d} {t_fast:6.3f}s  "
              f"{tiled.options.get('structure', '-'):9}  {torch_text}")
        print(f"{'':17} samples/tiled: {by_samples.evaluations / tiled.evaluations:.2f}× "
              f"evaluations, {t_samples / t_tiled:.2f}× time; verification "
              f"{tiled.options.get('structure_evaluations', 0)} evaluations")
    print("   structure 'tiles': footprints of (sample, tile) blocks discovered and verified, "
          "one entry of every tile of a colour per evaluation; 'samples': independence "
          "verified, one entry of every sample per evaluation; 'none': the layer couples "
          "its samples (plain full mode)")


# ---- 2. detection of one wrong entry --------------------------------------------------------

class OneWrongEntry(Dense):
    """float32 Dense whose dL/dx is off by ``rel`` (relative) at one entry."""

    def __init__(self, where: tuple[int, int], rel: float) -> None:
        super().__init__(24, 12, dtype=np.float32, seed=1)
        self.where, self.rel = where, rel

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = np.array(super().backward(grad_out))
        dx[self.where] *= 1 + self.rel
        return dx


def detection(trials: int) -> None:
    print(f"\n2. a single wrong entry of dL/dx, float32 Dense(24→12), x (16, 24): {trials} "
          f"trials per error size (random entry and seed); fast mode gets as many "
          f"directions as the structured check's evaluations buy")
    for rel in (1e-3, 1e-2):
        rng = np.random.default_rng(7)
        verdicts: dict[str, list[str]] = {"structured full": [], "fast (same cost)": []}
        spent = {k: 0 for k in verdicts}
        floor: dict[str, list[float]] = {k: [] for k in verdicts}
        for trial in range(trials):
            where = (int(rng.integers(16)), int(rng.integers(24)))
            x = rng.standard_normal((16, 24)).astype(np.float32)
            full = gradcheck.check_layer(OneWrongEntry(where, rel), x, mode="full", seed=trial)
            # fast mode's cost is a fixed part plus a part per direction: read both off
            # two runs, then buy as many directions as the structured check's evaluations
            costs = [gradcheck.check_layer(OneWrongEntry(where, rel), x, mode="fast",
                                           seed=trial, directions=d).evaluations
                     for d in (4, 8)]
            per_direction = max((costs[1] - costs[0]) / 4, 1.0)
            k = max(1, 4 + int((full.evaluations - costs[0]) / per_direction))
            fast = gradcheck.check_layer(OneWrongEntry(where, rel), x, mode="fast",
                                         seed=trial, directions=k)
            for name, result in (("structured full", full), ("fast (same cost)", fast)):
                verdicts[name].append(result.verdict)
                spent[name] += result.evaluations
                floor[name].append(result.tensors[0].rules_out_rel)
        print(f"   relative error {rel:g}:")
        for name, seen in verdicts.items():
            counts = ", ".join(f"{v} {seen.count(v)}" for v in ("wrong", "inconclusive", "ok")
                               if seen.count(v))
            print(f"     {name:17}: caught {seen.count('wrong')}/{trials} "
                  f"({seen.count('wrong') / trials:.0%}; {counts}), mean "
                  f"{spent[name] / trials:.0f} evaluations, median smallest relative error "
                  f"ruled out for x {np.nanmedian(floor[name]):.2g}")


# ---- 3. serial against pools ------------------------------------------------------------------

def pools() -> None:
    cores = os.cpu_count() or 1
    factory, shape = (lambda: Conv2D(4, 8, 3, padding=1)), (8, 4, 12, 12)
    x = np.random.default_rng(0).standard_normal(shape)
    print(f"\n3. serial against executors: plain full mode of Conv2D(4→8, 3×3) on {shape} "
          f"({cores} cores on this machine)")
    layer = factory()
    payload = len(dumps_for_workers()(layer)) + x.nbytes
    serial, t_serial = best_of(2, lambda: gradcheck.check_layer(layer, x, mode="full",
                                                                structured=False))
    per_eval = t_serial / serial.evaluations
    print(f"   serial: {serial.evaluations} evaluations, {t_serial:.3f} s "
          f"({per_eval * 1e6:.0f} µs each); payload shipped per task ≈ {payload / 1e3:.0f} kB "
          f"({'cloudpickle' if dumps_for_workers() is not pickle.dumps else 'pickle'})")

    def timed(executor: Executor, label: str) -> None:
        result, seconds = best_of(2, lambda: gradcheck.check_layer(
            layer, x, mode="full", structured=False, executor=executor))
        same = all(np.array_equal(a.numeric, b.numeric, equal_nan=True) for a, b in
                   zip(result.evidence.tensors, serial.evidence.tensors, strict=True))
        print(f"   {label:34}: {seconds:.3f} s, serial/parallel = {t_serial / seconds:.2f}× "
              f"(per-entry numbers identical to serial: {same})")

    for workers in sorted({2, cores}):
        with ProcessPoolExecutor(workers) as pool:
            pool.submit(int).result()  # start the workers outside the timing
            timed(pool, f"ProcessPoolExecutor({workers})")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("   dask.distributed not installed: the local Dask cluster is not timed")
        return
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        timed(client.get_executor(), f"Dask LocalCluster({cores} workers)")
    print("   it pays when one chunk's evaluations (≥ 16 × the per-evaluation time above) "
          "cost well above shipping the payload and a round trip (~ms); on a machine "
          "whose cores are busy, it cannot pay")


QUICK = False


def main() -> None:
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="skip torch.autograd.gradcheck's slow mode (minutes: it builds "
                             "the whole Jacobian both ways)")
    args = parser.parse_args()
    QUICK = args.quick
    cost_table()
    detection(args.trials)
    pools()


if __name__ == "__main__":
    main()
