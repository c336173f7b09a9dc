"""Plain C against Cython for the engine: the same sampler loops compiled both ways.

Run from the repository root (needs Cython, a dev-only tool)::

    (cd benchmarks/cython_alt && python setup_cython.py build_ext --inplace -q)
    python benchmarks/bench_cython.py

``benchmarks/cython_alt/sampler.pyx`` is the engine's lognormal and uniform samplers
(SplitMix64 counter streams, Box–Muller) written in Cython with typed memoryviews, bounds
and wrap-around checks off, the loop without the GIL — as Cython's documentation
recommends for numeric loops; ``capacity.sim._engine.sample_many`` is the same code in
the C engine. It checks that both give the same numbers, then times 10 million draws
each (best of 5, CPU time, interleaved), and prints the size of what each build needs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "cython_alt"))

import sampler  # type: ignore[import-not-found]  # noqa: E402

from capacity.model.dist import Distribution  # noqa: E402
from capacity.sim.engine import _DistTable  # noqa: E402
from capacity.sim.kernels import sample_many  # noqa: E402


def main() -> None:
    n, key = 10_000_000, 0x1234_5678_9ABC_DEF0
    rows = []
    cases = [(Distribution.parse({"lognormal": {"median": 2.0, "p95": 9.0}}, "number"),
              sampler.sample_lognormal),
             (Distribution.parse({"uniform": [4000, 9000]}, "number"), sampler.sample_uniform)]
    for dist, cy in cases:
        t = _DistTable()
        d = t.add(dist)
        dpar, cval, ccum = t.arrays()
        p0, p1 = float(dpar[d, 1]), float(dpar[d, 2])
        same = np.array_equal(sample_many(d, key, 1000, dpar, cval, ccum),
                              cy(key, 1000, p0, p1))
        best_c = best_cy = float("inf")
        for _ in range(5):
            s = time.process_time()
            sample_many(d, key, n, dpar, cval, ccum)
            best_c = min(best_c, time.process_time() - s)
            s = time.process_time()
            cy(key, n, p0, p1)
            best_cy = min(best_cy, time.process_time() - s)
        rows.append((dist.kind, same, best_c / n * 1e9, best_cy / n * 1e9))
    print("# Plain C (capacity.sim._engine) against Cython, same sampler loops")
    print(f"{'distribution':<14} {'same numbers':>13} {'C ns/draw':>10} {'Cython ns/draw':>15}")
    for kind, same, c, cy in rows:
        print(f"{kind:<14} {'yes' if same else 'NO':>13} {c:>10.1f} {cy:>15.1f}")
    gen = ROOT / "benchmarks" / "cython_alt" / "sampler.c"
    print(f"generated C: {gen.stat().st_size / 1e3:.0f} kB from a 40-line .pyx "
          f"(the whole C engine: {(ROOT / 'capacity/sim/_engine.c').stat().st_size / 1e3:.0f}"
          " kB, written by hand)")


if __name__ == "__main__":
    main()
