"""Cost of the checker on a 784-16-16-10 sigmoid network, softmax cross-entropy, batch 32.

Prints, measured side by side in one run:

* evaluations and wall time of full mode and fast mode (and which one ``auto`` picks);
* the checker's own overhead in full mode: time / (evaluations × one bare forward pass);
* peak memory of fast mode (tracemalloc) against the size of a P×M Jacobian;
* if PyTorch is importable: ``torch.autograd.gradcheck`` slow and fast mode on the same
  network (float64) and the ratios to our default mode.

Run: ``python benchmarks/bench_checker.py`` (not a test; nothing is asserted).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import gradcheck
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.losses import Loss
from gradcheck.models.network import Sequential

SIZES = (784, 16, 16, 10)
BATCH = 32


def build(seed: int = 0) -> tuple[Sequential, Loss, np.ndarray, np.ndarray]:
    layers: list = []
    for i in range(len(SIZES) - 1):
        layers.append(Dense(SIZES[i], SIZES[i + 1], seed=seed + i))
        if i < len(SIZES) - 2:
            layers.append(Activation("sigmoid"))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0]))
    y = rng.integers(0, SIZES[-1], BATCH)
    return Sequential(layers, l2=1e-3), Loss("softmax_ce"), x, y


def bare_forward_seconds(model: Sequential, loss: Loss, x: np.ndarray, y: np.ndarray,
                         repeats: int = 2000, clock=time.perf_counter, best_of: int = 3) -> float:
    """Seconds of one objective evaluation (forward + loss + penalty), best of batches."""
    best = np.inf
    for _ in range(best_of):
        start = clock()
        for _ in range(repeats):
            float(loss.forward(model.forward(x), y)) + model.penalty()
        best = min(best, (clock() - start) / repeats)
    return best


def timed(mode: str, model, loss, x, y, repeats: int = 1) -> tuple[gradcheck.CheckResult,
                                                                     float]:
    """Result and best wall time of ``repeats`` runs (the machine is shared: take the best)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = gradcheck.check_model(model, loss, x, y, mode=mode)
        best = min(best, time.perf_counter() - start)
    return result, best


def torch_figures(model: Sequential, x: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    try:
        import torch
    except ImportError:
        return None
    weights = [torch.tensor(p, requires_grad=True) for p in model.params.values()]
    xt, yt = torch.tensor(x), torch.tensor(y)

    def objective(*params):
        h = xt
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = torch.sigmoid(h)
        return torch.nn.functional.cross_entropy(h, yt) + model.l2 * sum(
            (w ** 2).sum() for w in params[::2])

    out = {}
    for name, fast, repeats in (("slow", False, 1), ("fast", True, 5)):
        out[name] = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            torch.autograd.gradcheck(objective, weights, fast_mode=fast)
            out[name] = min(out[name], time.perf_counter() - start)
    return out


def main() -> None:
    model, loss, x, y = build()
    n_params = sum(p.size for p in model.params.values())
    n_outputs = BATCH * SIZES[-1]
    print(f"network {'-'.join(map(str, SIZES))} sigmoid + softmax CE, batch {BATCH}: "
          f"P = {n_params} parameters, M = {n_outputs} outputs")
    forward = bare_forward_seconds(model, loss, x, y)
    print(f"one bare forward (objective) pass: {forward * 1e6:.1f} µs")

    # The overhead is measured against a bare loop of the same number of objective
    # evaluations, timed just before and just after the check (the mean cancels drift on
    # a shared machine), on the CPU clock of this process and on the wall clock.
    clocks = {"CPU": time.process_time, "wall": time.perf_counter}
    bare = {name: [] for name in clocks}
    for name, clock in clocks.items():
        bare[name].append(bare_forward_seconds(model, loss, x, y, repeats=2 * n_params,
                                               clock=clock, best_of=1))
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    full, _ = timed("full", model, loss, x, y)
    cpu_full, wall_full = time.process_time() - cpu_start, time.perf_counter() - wall_start
    for name, clock in clocks.items():
        bare[name].append(bare_forward_seconds(model, loss, x, y, repeats=2 * n_params,
                                               clock=clock, best_of=1))
    print(f"full mode : {full.evaluations:6d} evaluations, {wall_full:7.3f} s wall, "
          f"{cpu_full:.3f} s CPU, ok={full.ok}")
    ratios = {name: spent / (full.evaluations * float(np.mean(bare[name])))
              for name, spent in (("CPU", cpu_full), ("wall", wall_full))}
    print("  overhead = time / (evaluations × bare forward) = "
          + ", ".join(f"{r:.3f} on {name} time" for name, r in ratios.items())
          + " (target ≤ 1.15)")

    fast, fast_s = timed("fast", model, loss, x, y, repeats=5)
    tracemalloc.start()
    timed("fast", model, loss, x, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"fast mode : {fast.evaluations:6d} evaluations, {fast_s:7.3f} s, ok={fast.ok}")
    jacobian = n_params * n_outputs * 8
    print(f"  peak traced memory {peak / 1e6:.2f} MB vs a float64 P×M Jacobian "
          f"{jacobian / 1e6:.1f} MB (ratio {jacobian / peak:.0f}×)")

    auto, auto_s = timed("auto", model, loss, x, y, repeats=5)
    print(f"auto mode picks '{auto.mode}': {auto.evaluations} evaluations, {auto_s:.3f} s; "
          f"full/auto time ratio {wall_full / auto_s:.0f}×")

    torch_times = torch_figures(model, x, y)
    if torch_times is None:
        print("torch not importable: torch.autograd.gradcheck not timed. For reference, its "
              "slow mode differences every input entry like our full mode "
              f"(≥ {2 * n_params} evaluations): full/auto ratio above is the proxy.")
    else:
        for name, seconds in torch_times.items():
            print(f"torch.autograd.gradcheck {name}: {seconds:.3f} s; "
                  f"ratio to our default mode ({auto.mode}) {seconds / auto_s:.1f}×"
                  + (" (target ≥ 50×)" if name == "slow" else ""))
    print(f"per evaluation: ours {auto_s / auto.evaluations * 1e6:.0f} µs "
          f"(bare forward {forward * 1e6:.0f} µs)")


if __name__ == "__main__":
    main()
