"""``jax.numpy`` functions through ``gradcheck.jax`` and ``jax.test_util.check_grads``.

For each function below (a (4, 5) input in its domain), in float32 (JAX's default),
float64 (``jax.enable_x64``, for the run only) and float32 with x64 on ("f32+x64":
gradcheck differences those through a float64 evaluation), both checkers see the correct gradient
(JAX's own rules: any rejection is a false alarm) and three planted bugs through a
``custom_vjp`` that wraps the correct VJP: one entry × (1 + 1e-3) (the entry with the
largest gradient under a fixed cotangent), the whole gradient × 1.01, one sign flipped.
``check_grads`` runs with its defaults, ``order=1, modes=("rev",)``; its "evals" are
Python-level calls of ``f`` (JAX batches its differences inside them).

Usage::

    python benchmarks/bench_jax_numpy.py
"""

from __future__ import annotations

import time
from collections import defaultdict

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from jax.test_util import check_grads

import gradcheck.jax as gj

A = np.random.default_rng(1).standard_normal((5, 3))
#: name -> (function, domain: "real" or "positive")
FUNCTIONS = {
    "sin": (jnp.sin, "real"), "cos": (jnp.cos, "real"), "tanh": (jnp.tanh, "real"),
    "exp": (jnp.exp, "real"), "log": (jnp.log, "positive"), "sqrt": (jnp.sqrt, "positive"),
    "arctan": (jnp.arctan, "real"), "sinh": (jnp.sinh, "real"),
    "sigmoid": (jax.nn.sigmoid, "real"), "softplus": (jax.nn.softplus, "real"),
    "gelu": (jax.nn.gelu, "real"), "erf": (jsp.erf, "real"),
    "log_softmax": (jax.nn.log_softmax, "real"), "softmax": (jax.nn.softmax, "real"),
    "logsumexp": (jsp.logsumexp, "real"), "cumsum": (lambda x: jnp.cumsum(x, axis=1), "real"),
    "cumprod": (lambda x: jnp.cumprod(x, axis=1), "real"), "sort": (jnp.sort, "real"),
    "norm": (jnp.linalg.norm, "real"), "var": (jnp.var, "real"),
    "matmul": (lambda x: x @ A, "real"), "prod": (lambda x: jnp.prod(x, axis=0), "real"),
    "outer": (lambda x: x[:, :, None] * x[:, None, :], "real"),
    "power": (lambda x: x ** 3 - 2 * x, "real"), "arcsinh": (jnp.arcsinh, "real"),
}
BUGS = ("entry*(1+1e-3)", "all*1.01", "sign flip")


def point(domain: str, dtype) -> jnp.ndarray:
    x = np.random.default_rng(0).standard_normal((4, 5))
    if domain == "positive":
        x = np.abs(x) + 0.5
    return jnp.asarray(x, dtype=dtype)


def planted(f, x, bug):
    y, pullback = jax.vjp(f, x)
    cot = jnp.asarray(np.random.default_rng(2).standard_normal(y.shape), dtype=y.dtype)
    (d,) = pullback(cot)
    j = int(jnp.argmax(jnp.abs(d).reshape(-1)))

    @jax.custom_vjp
    def g(x):
        return f(x)

    def fwd(x):
        return jax.vjp(f, x)

    def bwd(pb, gy):
        (dx,) = pb(gy)
        flat = dx.reshape(-1)
        if bug == "entry*(1+1e-3)":
            flat = flat.at[j].multiply(1 + 1e-3)
        elif bug == "all*1.01":
            flat = flat * 1.01
        else:
            flat = flat.at[j].multiply(-1)
        return (flat.reshape(dx.shape),)

    g.defvjp(fwd, bwd)
    return g


def ours(f, x):
    start = time.perf_counter()
    result = gj.check(f, x)
    return result.ok, time.perf_counter() - start, result.evaluations


def theirs(f, x):
    calls = [0]

    def counted(z):
        calls[0] += 1
        return f(z)

    start = time.perf_counter()
    try:
        check_grads(counted, (x,), order=1, modes=("rev",))
        ok = True
    except AssertionError:
        ok = False
    return ok, time.perf_counter() - start, calls[0]


def sweep(dtype, stats, alarms, label: str = "") -> None:
    dn = label or jnp.dtype(dtype).name
    for name, (f, domain) in FUNCTIONS.items():
        x = point(domain, dtype)
        for case in ("correct", *BUGS):
            fn = f if case == "correct" else planted(f, x, case)
            for who, runner in (("gradcheck", ours), ("check_grads", theirs)):
                ok, seconds, evaluations = runner(fn, x)
                s = stats[(dn, who, case)]
                s["n"] += 1
                s["hit"] += (not ok)
                s["seconds"] += seconds
                s["evaluations"] += evaluations
                if case == "correct" and not ok and who == "gradcheck":
                    alarms.append(f"{dn} {name}")


def main() -> None:
    stats: dict = defaultdict(lambda: defaultdict(float))
    alarms: list[str] = []
    sweep(jnp.float32, stats, alarms)
    with jax.enable_x64(True):
        sweep(jnp.float64, stats, alarms)
        # float32 leaves with x64 on: gradcheck differences them through float64
        sweep(jnp.float32, stats, alarms, label="f32+x64")
    print(f"{len(FUNCTIONS)} jax.numpy functions, input (4, 5)\n")
    print(f"{'dtype':8} {'checker':12} {'case':16} {'n':>4} {'alarms/caught':>13} "
          f"{'seconds':>8} {'evals':>7}")
    for (dn, who, case), s in sorted(stats.items()):
        print(f"{dn:8} {who:12} {case:16} {int(s['n']):4d} {int(s['hit']):13d} "
              f"{s['seconds']:8.2f} {int(s['evaluations']):7d}")
    if alarms:
        print("\ngradcheck false alarms:", ", ".join(alarms))


if __name__ == "__main__":
    main()
