"""Memory per instance node of one simulated replication (``BYTES_PER_NODE`` in
``capacity/whatif/ceiling.py``, the simulation's memory budget).

Run from the repository root (Linux: reads /proc/self/status)::

    python benchmarks/bench_node_memory.py [--total 1500000 3000000] [--fanouts 1 10 100 500]

For each fan-out K (one turn of K parallel calls, so ``K + 2`` nodes a session: the
turn's blocks and its calls; K = 1 is one plain call, 2 nodes) it simulates the sessions
that make each ``--total`` nodes, in a fresh process each: a 1 s think time and 10.5 s
calls keep nearly every session inside its turn (its node block in use), a quota far
above the load refuses nothing, one replication on one thread. The peak resident set
(VmHWM) less the resident set before the run is the run's memory; the slope between the
two totals is the bytes per node (the per-process constant — interpreter, numpy, the
compiled profile — cancels). Transparent huge pages (the engine asks for them on its
large arrays) commit memory 2 MB at a time: totals of millions of nodes keep that
quantisation under 2%.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import re, sys
from capacity.profile.loader import profile_from_dict
from capacity.sim.engine import _compile, simulate

def rss(key):
    text = open("/proc/self/status").read()
    return int(re.search(key + r":\s+(\d+) kB", text).group(1)) * 1024

k, n = int(sys.argv[1]), int(sys.argv[2])
call = {"model": "m", "input_tokens": 10, "output_tokens": 1000}
steps = [{"parallel": {"count": k, "call": call}}] if k > 1 else [{"call": call}]
p = profile_from_dict({
    "models": {"m": {"ttft": 0.5, "tokens_per_second": 100}},
    "quotas": {"q": {"models": ["m"], "rpm": 1e12}},
    "session": {"think_time": "1s", "turns": {"t": {"steps": steps}}},
    "retry": {"max_retries": 0}})
simulate(p, 2, horizon_s=30, replications=1, seed=1, workers=1)  # warm: imports, compile
base = rss("VmRSS")
simulate(p, n, horizon_s=30, replications=1, seed=1, workers=1)
print(_compile(p).max_nodes, rss("VmHWM") - base)
"""


def measure(k: int, sessions: int) -> tuple[int, int]:
    """(nodes per session, bytes) of one replication of ``sessions`` sessions, fan-out k."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(k), str(sessions)], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout.split()
    return int(out[0]), int(out[1])


def main(argv: list[str] | None = None) -> int:
    """Print bytes per node (and per session) for each fan-out."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--total", type=int, nargs=2, default=[1_500_000, 3_000_000],
                    help="the two node totals whose difference gives the slope")
    ap.add_argument("--fanouts", type=int, nargs="+", default=[1, 10, 100, 500])
    args = ap.parse_args(argv)
    if not re.search(r"VmHWM", Path("/proc/self/status").read_text()):
        print("needs Linux's /proc/self/status (VmHWM)", file=sys.stderr)
        return 2
    print("| fan-out | nodes a session | sessions | peak MB | bytes per node (slope) |")
    print("|---|---|---|---|---|")
    for k in args.fanouts:
        runs = []
        for total in args.total:
            sessions = total // (k + 2)
            m, used = measure(k, sessions)
            runs.append((sessions * m, used))
            print(f"| {k} | {m} | {sessions:,} | {used / 1e6:.0f} | |", flush=True)
        (n0, b0), (n1, b1) = runs
        print(f"| {k} | | | | {(b1 - b0) / (n1 - n0):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
