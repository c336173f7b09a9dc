"""Session 54's probes (issue 13): a refused share that aborts turns, at its fixed point.

Run from the repository root::

    python benchmarks/session54_probes.py swing   # hunt-61: the passes, the answer, the engine
    python benchmarks/session54_probes.py slope   # chat-assistant: the closed-loop tilt's roots

``swing``: tests/data/sliding-abort-swing.yaml (hunt-61: a 5 s sliding RPM log counting
its refusals, no retries, a 5 % target) at 260, 281 and 293 sessions: the refused share
of six plain passes ``p ← share(N·L(p))`` from the full load (the load factor ``L`` the
refusals' aborted turns leave), the model's answer now (passes that swing and narrow:
their fixed point, :func:`capacity.model.numeric.fixed_point_between`; as wide every
pass: the higher share) and the engine's 429 share of attempts (6 × 30 min, seed 1).
Then at 293-320 sessions the engine's own load factor (its calls a second over the
unthrottled ones, measured at 200 sessions), the model's ``L`` at the engine's share, and
the model's share at the engine's thinned load: ``L`` is the engine's, the share of the
thinned load far below the engine's — past the swing the thinning view does not hold.

``slope``: profiles/chat-assistant.yaml answered once with the pause sensitivity read
(every store emptied first): how often the deep buckets' closed-loop tilt solves its
Lundberg root (``ClosedTurns.slope``), and the grids it solves it on — their levels and
the charges that occur (the root is searched over those only since session 54).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capacity.analytic.clumped import ClumpedWindow  # noqa: E402
from capacity.analytic.model import constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate  # noqa: E402


def swing() -> None:
    prof = load_profile(ROOT / "tests" / "data" / "sliding-abort-swing.yaml")
    wl = Workload.from_profile(prof)
    model = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    assert isinstance(model, ClumpedWindow)
    w = model.inner
    share = functools.partial(w._sliding, exceed=False)
    print("| sessions | plain passes (refused %, the full load first) | model | engine [95 % CI] |")
    print("|---|---|---|---|")
    for n in (260, 281, 293):
        p = share(n)["failed"]
        seq = [p]
        for _ in range(6):
            p = share(n * w.load_factor(p))["failed"]  # type: ignore[arg-type]
            seq.append(p)
        got = w.attempt_share(n)["failed"]
        est = simulate(prof, n, replications=6, seed=1, horizon_s=1800.0
                       ).metrics["attempt_429_fraction"]
        passes = ", ".join(f"{100 * x:.2f}" for x in seq)
        print(f"| {n} | {passes} | {100 * got:.2f} % | {100 * est.mean:.2f} % "
              f"[{100 * est.lo:.2f}–{100 * est.hi:.2f}] |")
    base = simulate(prof, 200, replications=4, seed=1, horizon_s=1800.0).metrics
    per = base["turn_throughput_per_s"].mean * base["calls_per_turn"].mean / 200
    print("\n| sessions | engine refused | engine load factor | model L there "
          "| model share at the engine's thinned load |")
    print("|---|---|---|---|---|")
    for n in (293, 300, 310, 320):
        m = simulate(prof, n, replications=6, seed=1, horizon_s=1800.0).metrics
        pe = m["attempt_429_fraction"].mean
        f = m["turn_throughput_per_s"].mean * m["calls_per_turn"].mean / (n * per)
        thin = share(n * f)["failed"]  # type: ignore[arg-type]
        print(f"| {n} | {100 * pe:.2f} % | {f:.4f} | {w.load_factor(pe):.4f} "
              f"| {100 * thin:.2f} % |")


def slope() -> None:
    from collections import Counter

    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from analytic_accuracy import empty_stores

    from capacity.analytic import bucket
    from capacity.analytic.model import analyze

    grids: Counter[tuple[int, int]] = Counter()
    orig = bucket.ClosedTurns.slope

    def counted(self: bucket.ClosedTurns, pi: np.ndarray, g: bucket._DeepGrid, lam: float,
                refill: float) -> tuple[float, float, float] | None:
        tail = np.concatenate([[1.0], g.tail, [0.0]])
        pm = np.maximum(-np.diff(tail), 0.0)[: g.tail.size + 1]
        grids[(g.tail.size + 1, int((pm > 0).sum()))] += 1
        return orig(self, pi, g, lam, refill)

    bucket.ClosedTurns.slope = counted  # type: ignore[method-assign]
    try:
        empty_stores()
        res = analyze(load_profile(ROOT / "profiles" / "chat-assistant.yaml"))
        _ = res.sensitivity
    finally:
        bucket.ClosedTurns.slope = orig  # type: ignore[method-assign]
    print(f"chat-assistant N* {res.burst_ceiling}: {sum(grids.values())} roots solved")
    for (levels, charges), k in sorted(grids.items()):
        print(f"  a grid of {levels:,} levels holding {charges} charges: {k} roots")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["swing", "slope"])
    args = ap.parse_args()
    {"swing": swing, "slope": slope}[args.probe]()


if __name__ == "__main__":
    main()
