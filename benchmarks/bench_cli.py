"""End-to-end timings of the CLI as a user runs it (wall time of whole processes).

Run from the repository root::

    python benchmarks/bench_cli.py [--repeat 5]

Prints, for each command, the median and best wall time over ``--repeat`` runs after one
warm-up run (which fills numba's on-disk cache):

* ``capacity ceiling profiles/web-research.yaml`` — analytic + simulated ceilings
  (20 replications × 1 simulated hour per evaluated N, saturation search);
* ``capacity sweep profiles/web-research.yaml --sessions 10:300:10`` — 30 values of N,
  each simulated with 20 replications × 1 hour (issue target: < 5 s);
* ``capacity ceiling ... --method analytic`` — the analytic model alone.

Figures are wall time on this machine, interpreter start-up and imports included; they
are printed, not asserted (CI does not gate on speed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "profiles" / "web-research.yaml")
COMMANDS = {
    "ceiling (both)": ["ceiling", PROFILE, "--seed", "1", "-q"],
    "sweep 30 N (simulate)": ["sweep", PROFILE, "--sessions", "10:300:10", "--seed", "1",
                              "-q", "--csv"],
    "ceiling (analytic)": ["ceiling", PROFILE, "--method", "analytic"],
}


def wall(args: list[str]) -> float:
    """Seconds for one ``python -m capacity ARGS`` process."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "capacity", *args], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    """Time each command and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    opts = ap.parse_args()
    print(f"{'command':<24} {'median':>8} {'best':>8}   ({opts.repeat} runs after a warm-up)")
    for name, args in COMMANDS.items():
        wall(args)  # warm numba's cache and the OS file cache
        times = [wall(args) for _ in range(opts.repeat)]
        print(f"{name:<24} {statistics.median(times):>7.2f}s {min(times):>7.2f}s")


if __name__ == "__main__":
    main()
