"""What the gradcheck pytest plugin costs a test session that does not use it.

Measures, side by side in one run (interleaved, so machine noise hits both alike):

1. wall time of ``pytest`` on a one-test project, with the plugin (loaded through its
   ``pytest11`` entry point) and without it (``-p no:gradcheck``): median, best, and the
   difference and ratio of the medians;
2. the plugin's own import time (``python -X importtime``), and which heavy packages its
   import pulls in: it must pull in neither SymPy nor ``gradcheck.models`` (the script
   exits 1 if it does).

Run: ``python benchmarks/bench_plugin_startup.py [--repeat 15]``. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("sympy", "gradcheck.models", "gradcheck.reference", "rich", "matplotlib", "numpy")


def time_pytest(project: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "test_one.py", *extra], cwd=project, check=True, capture_output=True)
    return time.perf_counter() - start


def plugin_import() -> tuple[dict[str, float], list[str]]:
    """Import times (ms, cumulative, once pytest is loaded as in a session) of the plugin, of
    the ``gradcheck`` package it lives in and of numpy; which of HEAVY the import loaded."""
    code = ("import json, sys, pytest, gradcheck.ways_in.pytest_plugin; "
            f"print(json.dumps([p for p in {HEAVY!r} "
            "if any(m == p or m.startswith(p + '.') for m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                          capture_output=True, text=True)
    cumulative_ms: dict[str, float] = {}
    for line in done.stderr.splitlines():  # "import time: self | cumulative | name"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in ("gradcheck", "gradcheck.ways_in.pytest_plugin", "numpy"):
            cumulative_ms[parts[2]] = int(parts[1]) / 1000
    return cumulative_ms, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_one.py").write_text("def test_one():\n    assert True\n")
        variants = {"with gradcheck": [], "without (-p no:gradcheck)": ["-p", "no:gradcheck"]}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for extra in variants.values():  # warm the file-system cache once each
            time_pytest(project, extra)
        for _ in range(args.repeat):
            for name, extra in variants.items():
                times[name].append(time_pytest(project, extra))
    print(f"pytest start-up on a one-test project, {args.repeat} runs each, interleaved")
    print(f"{'variant':<28} {'median s':>9} {'best s':>8}")
    for name, values in times.items():
        print(f"{name:<28} {statistics.median(values):>9.3f} {min(values):>8.3f}")
    with_plugin, without = (statistics.median(v) for v in times.values())
    print(f"added by the plugin: {1000 * (with_plugin - without):+.1f} ms per session "
          f"(ratio {with_plugin / without:.3f})")
    import_ms, heavy = plugin_import()
    plugin = import_ms.get("gradcheck.ways_in.pytest_plugin", 0.0)
    package = import_ms.get("gradcheck", 0.0)
    print(f"import gradcheck.ways_in.pytest_plugin: {plugin:.1f} ms, of which the gradcheck package "
          f"__init__ (checker core) {package:.1f} ms and numpy {import_ms.get('numpy', 0.0):.1f}"
          f" ms; the plugin module itself {plugin - package:.1f} ms")
    print(f"heavy modules loaded: {', '.join(heavy) or 'none'}")
    bad = [m for m in heavy if m.startswith(("sympy", "gradcheck.models"))]
    if bad:
        print(f"FAIL: importing the plugin imports {', '.join(bad)}")
        return 1
    print("ok: importing the plugin imports neither sympy nor gradcheck.models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
