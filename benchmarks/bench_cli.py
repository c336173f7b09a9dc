"""End-to-end timings of the CLI as a user runs it: whole processes, wall and CPU time.

Run from the repository root::

    python benchmarks/bench_cli.py [--repeat 7]
    python benchmarks/bench_cli.py --before /tmp/old-tree   # old vs new, interleaved

The trees are byte-compiled first, as an install is. For each command, after one warm-up
run (the OS file cache), the
median and best of ``--repeat`` runs of the whole process's CPU time (user + system, the
figure a busy machine inflates least) and wall time:

* start-up: ``--version``, ``--help``, ``validate``, ``schema`` (which import no numpy);
* ``ceiling profiles/web-research.yaml --method analytic`` — the analytic model alone
  (imports no simulator);
* ``ceiling profiles/web-research.yaml --seed 1`` — analytic + simulated ceilings
  (20 replications × 1 simulated hour per evaluated N, saturation search);
* ``sweep ... --sessions 10:300:10`` — 30 values of N, each simulated.

``--before DIR``: a checkout of an older tree (with its engine built in place, e.g.
``git worktree add DIR REV && (cd DIR && python setup.py build_ext --inplace -q)``) is
timed too, each command alternating old and new runs so that both see the same load
(``--after DIR``: another tree as the new one, e.g. a clean export of a commit).
Figures are printed, not asserted (CI does not gate on speed); the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "profiles/web-research.yaml"
COMMANDS = {
    "version": ["--version"],
    "help": ["--help"],
    "validate": ["validate", PROFILE],
    "schema": ["schema"],
    "ceiling (analytic)": ["ceiling", PROFILE, "--method", "analytic"],
    "ceiling (both)": ["ceiling", PROFILE, "--seed", "1", "-q"],
    "sweep 30 N (simulate)": ["sweep", PROFILE, "--sessions", "10:300:10", "--seed", "1",
                              "-q", "--csv"],
}


def run(args: list[str], tree: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one ``python -m capacity ARGS`` process importing ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "capacity", *args], check=True, cwd=tree, env=env,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Time each command (old and new, interleaved, with --before) and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", type=Path, help="an older tree to compare against")
    ap.add_argument("--after", type=Path, default=ROOT,
                    help="the tree timed as new (default: this one)")
    ap.add_argument("--only", nargs="*", choices=list(COMMANDS), help="commands to time")
    opts = ap.parse_args()
    new = opts.after.resolve()
    trees = {"new": new} if opts.before is None else {"old": opts.before.resolve(), "new": new}
    print(f"# bench_cli: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at "
          f"start; median (best) of {opts.repeat} runs after a warm-up")
    head = "".join(f" | {name} CPU s | {name} wall s" for name in trees)
    print(f"| command{head} |" + (" CPU new/old |" if len(trees) == 2 else ""))
    print("|---" * (1 + 2 * len(trees) + (len(trees) == 2)) + "|")
    for tree in trees.values():
        # Bytecode as an install has it (pip compiles at install time): without it every
        # run compiles the package again (~0.1 s), e.g. under PYTHONDONTWRITEBYTECODE=1.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "capacity")],
                       check=True, stdout=subprocess.DEVNULL)
    for name, args in COMMANDS.items():
        if opts.only and name not in opts.only:
            continue
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for tree in trees.values():
            run(args, tree)  # warm-up: OS file cache, bytecode
        for _ in range(opts.repeat):
            for key, tree in trees.items():
                times[key].append(run(args, tree))
        row = f"| {name}"
        med = {}
        for key in trees:
            cpu = [c for _, c in times[key]]
            wall = [w for w, _ in times[key]]
            med[key] = statistics.median(cpu)
            row += (f" | {med[key]:.3f} ({min(cpu):.3f}) | {statistics.median(wall):.3f} "
                    f"({min(wall):.3f})")
        if len(trees) == 2:
            row += f" | {med['new'] / med['old']:.2f}"
        print(row + " |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
