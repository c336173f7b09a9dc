"""The figures behind RESULTS.md's session-34 fleet section (issue 13).

Run from the repository root::

    python benchmarks/session34_probes.py dam        # finite_dam_loss against a bucket
    python benchmarks/session34_probes.py storms     # refusal bursts at a fed counted log
    python benchmarks/session34_probes.py spill-tail # hunt-3070: b's calls a window

``dam``: hunt-3002's OTPM charges (14 tokens with chance 0.8, 1,026 with 0.2) at a bucket
1,835 tokens deep refilled at 183.5 a second — the units lost by
:func:`capacity.analytic.model.finite_dam_loss`, by a direct simulation of the bucket
(Poisson calls, each admitted whole while the level holds it; 2·10^6 s, seed 3) and by the
fluid ``1 − 1/ρ``.

``storms``: engine attempt traces (seed 1, 1 h a replication) of ptu-spillover with every
limit a 10 s sliding log at 56 sessions and of hunt-3067 at 36: per round of a call's
tries, the share of sends each deployment refuses, and the bursts of the last
deployment's refusals (gaps under 10 s apart): their number, sizes and lengths.

``spill-tail``: hunt-3070 at 17 sessions — the calls b meets a 5 s window in the engine
(4 × 1 h) against the fleet model's window law, and the route's calls a window
(:func:`capacity.analytic.fleet.route_count`) against the engine's.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic.fleet import FeedModel, fleet_models, route_count, route_flows  # noqa: E402
from capacity.analytic.model import cycle_time, finite_dam_loss  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import trace_attempts  # noqa: E402
from capacity.sim.kernels import (  # noqa: E402
    NX_RETRY,
    T_ADMITTED,
    T_ATTEMPT,
    T_DEP,
    T_NEXT,
    T_NODE,
    T_SESSION,
    T_T,
)


def bucket_loss(lam: float, rng: np.random.Generator, seconds: float, refill: float,
                depth: float) -> float:
    """Share of units a token bucket (``depth`` units, ``refill`` a second) turns away
    when Poisson calls (``lam`` a second) charge 14 or 1,026 units (0.8 / 0.2), each
    admitted whole or refused: hunt-3002's OTPM charges, by direct simulation of the
    level over ``seconds``."""
    n = rng.poisson(lam * seconds)
    t = np.sort(rng.uniform(0.0, seconds, n))
    x = rng.choice(np.array([14.0, 1026.0]), n, p=[0.8, 0.2])
    level, last, lost = depth, 0.0, 0.0
    for ti, xi in zip(t.tolist(), x.tolist(), strict=True):
        level = min(depth, level + (ti - last) * refill)
        last = ti
        if xi <= level:
            level -= xi
        else:
            lost += xi
    return lost / float(x.sum())


def dam() -> None:
    sev = np.zeros(1027)
    sev[14], sev[1026] = 0.8, 0.2
    m1 = float(np.dot(np.arange(sev.size), sev))
    r, b = 183.5, 1835.0
    rng = np.random.default_rng(3)

    def simulated(lam: float, seconds: float = 2e6) -> float:
        return bucket_loss(lam, rng, seconds, r, b)

    print("| ρ | finite_dam_loss | simulated bucket | fluid 1 − 1/ρ |")
    print("|---|---|---|---|")
    for rho in (0.95, 1.0, 1.05, 1.2, 1.5):
        lam = rho * r / m1
        print(f"| {rho} | {finite_dam_loss(lam, sev, 1.0, r, b):.2f} | "
              f"{simulated(lam):.2f} | {max(0.0, 1.0 - 1.0 / rho):.2f} |")


def _rounds(rows: np.ndarray) -> np.ndarray:
    """The round of each send (a call's first try is round 0; a client retry starts the
    next), from the attempt counter that restarts at every call."""
    rnd = np.zeros(len(rows), dtype=np.int64)
    state: dict[tuple[float, float], int] = {}
    for i in range(len(rows)):
        key = (rows[i, T_SESSION], rows[i, T_NODE])
        if rows[i, T_ATTEMPT] == 1:
            state[key] = 0
        rnd[i] = state.get(key, 0)
        if rows[i, T_NEXT] == NX_RETRY:
            state[key] = rnd[i] + 1
    return rnd


def _bursts(p: Profile, n: int, first: str, last: str, reps: int) -> None:
    deps = list(p.deployments)
    a, b = deps.index(first), deps.index(last)
    print(f"{p.title} at {n} sessions")
    for rep in range(reps):
        rows = trace_attempts(p, n, horizon_s=3600.0, seed=1, replication=rep).rows
        rnd = _rounds(rows)
        parts = []
        for r in range(3):
            sa = (rows[:, T_DEP] == a) & (rnd == r)
            sb = (rows[:, T_DEP] == b) & (rnd == r)
            if sa.any():
                ra = float((rows[sa, T_ADMITTED] == 0).mean())
                rb = float((rows[sb, T_ADMITTED] == 0).mean()) if sb.any() else 0.0
                parts.append(f"round {r}: {first} refuses {ra:.1%} of {sa.sum()}, "
                             f"{last} {rb:.1%} of {sb.sum()}")
        print(f"  replication {rep}: " + "; ".join(parts))
        t = rows[(rows[:, T_DEP] == b) & (rows[:, T_ADMITTED] == 0), T_T]
        if t.size:
            cut = np.flatnonzero(np.diff(t) > 10.0)
            starts = np.concatenate([[0], cut + 1])
            ends = np.concatenate([cut, [t.size - 1]])
            spans = list(zip(starts, ends, strict=True))
            print(f"    {starts.size} bursts of {last}'s refusals; sizes "
                  f"{[int(e - s + 1) for s, e in spans]}, "
                  f"lengths (s) {[round(float(t[e] - t[s]), 1) for s, e in spans]}")


def storms() -> None:
    data = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    data = copy.deepcopy(data)
    for q in data["quotas"].values():
        q["enforcement"] = {"type": "sliding_window", "window": "10s"}
    _bursts(profile_from_dict(data), 56, "ptu", "paygo", 3)
    _bursts(load_profile(ROOT / "tests" / "data" / "fleet-counted-storm.yaml"), 36, "a", "b", 2)


def spill_tail() -> None:
    p = load_profile(ROOT / "benchmarks" / "hunt" / "profiles" / "hunt-3070.yaml")
    n, w = 17, 5.0
    deps = list(p.deployments)
    at_b, at_a = [], []
    for rep in range(4):
        rows = trace_attempts(p, n, horizon_s=3600.0, seed=1, replication=rep).rows
        for dep, out in (("b", at_b), ("a", at_a)):
            t = rows[rows[:, T_DEP] == deps.index(dep), T_T]
            k = np.floor(t / w).astype(np.int64)
            out.append(np.bincount(k - k.min(), minlength=720)[:700])
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    (m,) = [e.model for e in fleet_models(wl, cyc).entries if e.c.name == "q1.rpm"]
    assert isinstance(m, FeedModel)
    g, _ = m.window_law(n)
    y = np.asarray(route_count(wl, route_flows(wl)[0], w, cyc.cycle_s).pmf(n))

    def line(what: str, law: np.ndarray) -> str:
        law = law / law.sum()
        k = np.arange(law.size)
        mean = float(k @ law)
        sd = float(np.sqrt(k**2 @ law - mean**2))
        return (f"  {what}: {mean:.2f} ± {sd:.2f} a window, P(S ≥ 8) {law[8:].sum():.3f}, "
                f"E[(S − 6)⁺] {float(np.maximum(k - 6, 0) @ law):.3f}")

    def counts(c: list[np.ndarray]) -> np.ndarray:
        x = np.concatenate(c)
        return np.bincount(x).astype(np.float64)

    print(f"hunt-3070 at {n} sessions, calls a {w:g} s window")
    print(line("b, engine", counts(at_b)))
    print(line("b, model", g))
    print(line("the route (a), engine", counts(at_a)))
    print(line("the route, model", y))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=("dam", "storms", "spill-tail"))
    args = ap.parse_args(argv)
    {"dam": dam, "storms": storms, "spill-tail": spill_tail}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
