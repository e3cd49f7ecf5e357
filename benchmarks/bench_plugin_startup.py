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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("sympy", "gradcheck.models", "gradcheck.reference", "rich", "matplotlib")


def time_pytest(project: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "test_one.py", *extra], cwd=project, check=True, capture_output=True)
    return time.perf_counter() - start


def plugin_import() -> tuple[float, list[str]]:
    """(import time of gradcheck.pytest_plugin in ms once pytest is loaded, as in a session;
    heavy modules it loaded)."""
    code = ("import sys, pytest, gradcheck.pytest_plugin; "
            f"print(','.join(sorted({{m.split('.')[0] if m.startswith('sympy') else m "
            f"for m in sys.modules if m.startswith({HEAVY!r})}})))")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                          capture_output=True, text=True)
    cumulative_us = 0
    for line in done.stderr.splitlines():  # "import time: self | cumulative | name"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "gradcheck.pytest_plugin":
            cumulative_us = int(parts[1])
    heavy = [m for m in done.stdout.strip().split(",") if m]
    return cumulative_us / 1000, heavy


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
    print(f"import gradcheck.pytest_plugin: {import_ms:.1f} ms cumulative; heavy modules "
          f"loaded: {', '.join(heavy) or 'none'}")
    bad = [m for m in heavy if m.startswith(("sympy", "gradcheck.models"))]
    if bad:
        print(f"FAIL: importing the plugin imports {', '.join(bad)}")
        return 1
    print("ok: importing the plugin imports neither sympy nor gradcheck.models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
