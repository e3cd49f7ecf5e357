"""Training throughput (samples/s) of the digits networks, NumPy vs PyTorch on the CPU.

Two networks, trained with mini-batch SGD (momentum 0.9) and softmax cross-entropy on
the embedded 8×8 digits:

- ``mlp``: the 64-16-16-10 sigmoid network of ``gradcheck.models.examples``;
- ``conv``: Conv2D(1→8, 3×3, pad 1) → ReLU → MaxPool2D(2) → Flatten → Dense(128→10)
  on ``(N, 1, 8, 8)`` images.

Each configuration runs one warm-up epoch, then the best of ``--repeats`` timed runs of
``--epochs`` epochs; samples/s = epochs·N / seconds. When ``torch`` imports, the same
networks (same sizes, batch, optimizer, dtype) are timed in the same run and the ratio
``gradcheck / torch`` is printed (> 1 means the NumPy code is faster). Not a test: the
figures depend on the machine; only ratios measured side by side mean anything.

``--activations`` also times each activation's backward (``Op.vjp``: the product
written into ``df``'s own buffer) against ``g * df(z, y)`` (a second buffer), on a
``(256, 8, 8, 8)`` batch (the conv network's ReLU input at batch 256), as a ratio
(> 1: ``Op.vjp`` is faster); the two are bit-identical.

Run: ``python benchmarks/bench_training.py [--epochs 3] [--repeats 3] [--networks conv]
[--batches 256] [--activations]``. On a shared machine pin both libraries to the same thread count, e.g.
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` (torch reads the first, NumPy's OpenBLAS the
second); oversubscribed BLAS threads make small products many times slower.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from gradcheck.models.conv import Conv2D
from gradcheck.models.data import load_digits
from gradcheck.models.dense import Activation, Dense
from gradcheck.models.examples import digits_classifier
from gradcheck.models.losses import Loss
from gradcheck.models.network import Sequential
from gradcheck.models.optim import SGD
from gradcheck.models.pooling import MaxPool2D
from gradcheck.models.shape import Flatten
from gradcheck.models.train import fit

LR, MOMENTUM = 0.1, 0.9


def numpy_conv_net(dtype: type) -> Sequential:
    return Sequential([Conv2D(1, 8, 3, padding=1, dtype=dtype, seed=0), Activation("relu"),
                       MaxPool2D(2), Flatten(), Dense(128, 10, init="he", dtype=dtype, seed=1)])


def numpy_trainer(kind: str, dtype: type, batch: int) -> Callable[[int], None]:
    x, y = load_digits(dtype=dtype)
    if kind == "conv":
        x = x.reshape(-1, 1, 8, 8)
        model, loss = numpy_conv_net(dtype), Loss("softmax_ce")
    else:
        model, loss = digits_classifier(0, dtype=dtype)
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM)

    def run(epochs: int) -> None:
        fit(model, loss, x, y, optimizer=optimizer, epochs=epochs, batch_size=batch, seed=0)
    return run


def torch_trainer(torch, kind: str, dtype: type, batch: int) -> Callable[[int], None]:
    nn = torch.nn
    torch_dtype = torch.float64 if dtype is np.float64 else torch.float32
    x, y = load_digits(dtype=dtype)
    if kind == "conv":
        x = x.reshape(-1, 1, 8, 8)
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(128, 10))
    else:
        model = nn.Sequential(nn.Linear(64, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid(),
                              nn.Linear(16, 10))
    model = model.to(torch_dtype)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def run(epochs: int) -> None:
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=generator)
            for start in range(0, len(xt), batch):
                rows = order[start:start + batch]
                optimizer.zero_grad()
                loss_fn(model(xt[rows]), yt[rows]).backward()
                optimizer.step()
    return run


def samples_per_second(run: Callable[[int], None], epochs: int, repeats: int) -> float:
    run(1)  # warm-up: caches, allocator, lazy imports
    best = min(_timed(run, epochs) for _ in range(repeats))
    return epochs * 1797 / best


def _timed(run: Callable[[int], None], epochs: int) -> float:
    start = time.perf_counter()
    run(epochs)
    return time.perf_counter() - start


def activation_backwards(repeats: int) -> None:
    from gradcheck.models.activations import ACTIVATIONS

    rng = np.random.default_rng(0)
    print(f"\n{'activation':11} {'g * df(z, y) µs':>16} {'backward µs':>12} {'ratio':>6}")
    def best(run: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats * 5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    for name, op in ACTIVATIONS.items():
        z = rng.standard_normal((256, 8, 8, 8))
        y, g = op.f(z), rng.standard_normal(z.shape)
        plain = best(partial(lambda op, z, y, g: g * op.df(z, y), op, z, y, g))
        in_place = best(partial(op.vjp, z, y, g))
        print(f"{name:11} {plain * 1e6:16.0f} {in_place * 1e6:12.0f} {plain / in_place:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", nargs="+", choices=("mlp", "conv"), default=("mlp", "conv"))
    parser.add_argument("--batches", nargs="+", type=int, default=(32, 256))
    parser.add_argument("--activations", action="store_true",
                        help="also time each activation's backward against g * df(z, y)")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None

    configs = [(kind, dtype, batch) for kind in args.networks
               for dtype in (np.float64, np.float32) for batch in args.batches]
    if torch is not None:
        print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'network':8} {'dtype':8} {'batch':>5} {'gradcheck s/s':>14} {'torch s/s':>10} "
          f"{'ratio':>6}")
    for kind, dtype, batch in configs:
        ours = samples_per_second(numpy_trainer(kind, dtype, batch), args.epochs, args.repeats)
        if torch is not None:
            theirs = samples_per_second(torch_trainer(torch, kind, dtype, batch), args.epochs,
                                        args.repeats)
            tail = f"{theirs:10.0f} {ours / theirs:6.2f}"
        else:
            tail = f"{'-':>10} {'-':>6}"
        print(f"{kind:8} {np.dtype(dtype).name:8} {batch:5d} {ours:14.0f} {tail}")
    if torch is None:
        print("torch is not installed: no PyTorch comparison in this run "
              "(pip install torch to add it)")
    if args.activations:
        activation_backwards(args.repeats)


if __name__ == "__main__":
    main()
