"""Cold-start costs of ``gradcheck.reference``, each measured in a fresh interpreter.

Prints, side by side in one run:

- import + derive + lambdify the whole registry (both the NumPy and the precise paths),
  against the 3 s budget of issue 4;
- building the whole-registry report without plots (default network section included),
  against the 10 s budget, and with plots;
- rendering the built report to Markdown, LaTeX and HTML;
- evaluating the exact derivatives: NumPy path against the precise (mpmath) path per point;
- the backpropagation section alone for deep specs (issue 12: ``4-4-4-4-2:gelu:huber``
  took 20 s, seven layers of width 3 did not finish in 180 s): symbolic up to 3 layers,
  50-digit arithmetic beyond.

Run: ``python benchmarks/bench_reference.py``. Figures vary with the machine; no
assertion is made on them anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

COLD_DERIVE = """
import time, json
t0 = time.perf_counter()
from gradcheck.reference.lambdified import build_all
t1 = time.perf_counter()
count = build_all()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "derive_lambdify": t2 - t1, "callables": count}))
"""

COLD_REPORT = """
import time, json
t0 = time.perf_counter()
from gradcheck.reference.report import build_report, render
report = build_report(plots={plots})
t1 = time.perf_counter()
sizes, times = {{}}, {{}}
for fmt in ("md", "tex", "html"):
    s = time.perf_counter()
    sizes[fmt] = len(render(report, fmt))
    times[fmt] = time.perf_counter() - s
print(json.dumps({{"build": t1 - t0, "render": times, "chars": sizes}}))
"""

EVALUATION = """
import time, json
import numpy as np
from gradcheck.reference.lambdified import (numpy_activation_derivative,
                                            precise_activation_derivative)
zs = np.linspace(-3, 3, 2000)
fast, slow = numpy_activation_derivative("gelu"), precise_activation_derivative("gelu")
fast(zs[:2]); slow(zs[:2])
t0 = time.perf_counter()
fast(zs)
t1 = time.perf_counter()
slow(zs)
t2 = time.perf_counter()
n = zs.size
print(json.dumps({"numpy_per_point": (t1 - t0) / n, "precise_per_point": (t2 - t1) / n}))
"""


DEEP = """
import time, json
from gradcheck.reference.backprop import NetworkSpec, backprop_section
out = {{}}
for spec in {specs!r}:
    t0 = time.perf_counter()
    backprop_section(NetworkSpec.parse(spec))
    out[spec] = time.perf_counter() - t0
print(json.dumps(out))
"""
DEEP_SPECS = ("64-16-16-10:sigmoid:softmax_ce", "4-4-4-4-2:gelu:huber",
              "8-8-8-8-8-2:gelu:mse", "3-3-3-3-3-3-3-3:tanh:cce")


def _fresh(code: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    return result


def main() -> None:
    derive = _fresh(COLD_DERIVE)
    no_plots = _fresh(COLD_REPORT.format(plots=False))
    with_plots = _fresh(COLD_REPORT.format(plots=True))
    evaluation = _fresh(EVALUATION)
    deep = _fresh(DEEP.format(specs=DEEP_SPECS))
    cold = derive["import"] + derive["derive_lambdify"]
    print("gradcheck.reference cold-start costs (fresh interpreter each)")
    print(f"  import                               {derive['import']:7.2f} s")
    print(f"  derive + lambdify {derive['callables']:3d} callables      "
          f"{derive['derive_lambdify']:7.2f} s")
    print(f"  cold total                           {cold:7.2f} s   "
          f"= {cold / 3.0:4.2f} x the 3 s budget")
    print(f"  report build, no plots               {no_plots['build']:7.2f} s   "
          f"= {no_plots['build'] / 10.0:4.2f} x the 10 s budget")
    print(f"  report build, with plots             {with_plots['build']:7.2f} s   "
          f"= {with_plots['build'] / no_plots['build']:4.2f} x without plots")
    for fmt in ("md", "tex", "html"):
        print(f"  render {fmt:<4} ({with_plots['chars'][fmt]:8d} chars)        "
              f"{with_plots['render'][fmt]:7.3f} s")
    for spec in DEEP_SPECS:
        print(f"  backprop section {spec:<32} {deep[spec]:7.2f} s")
    ratio = evaluation["precise_per_point"] / evaluation["numpy_per_point"]
    print(f"  gelu' per point: NumPy {evaluation['numpy_per_point'] * 1e9:8.1f} ns, "
          f"precise {evaluation['precise_per_point'] * 1e6:8.1f} us  (= {ratio:,.0f} x)")


if __name__ == "__main__":
    main()
