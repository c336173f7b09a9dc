"""Session 58's probes (issue 13): a fixed think time with retries, and what the storm
searches of sliding logs cost.

Run from the repository root::

    python benchmarks/session58_probes.py lockin     # hunt-2012 run by run
    python benchmarks/session58_probes.py storms     # the chains a storm search runs
    python benchmarks/session58_probes.py overload   # a loss log far over its allowance
    python benchmarks/session58_probes.py cost [REV]  # sliding-log variants, this tree and REV

``lockin``: hunt-2012 (a 5 s RPM bucket and a 2 s sliding TPM log, four chained calls,
retries honouring the retry-after, a fixed 69.4 s think time; analytic N* 342, simulated
309 [305–327] and again 320 [312–326]) — the engine's share of attempts refused in eight
runs of 2 × 1 h each (seeds 0–7) at 300, 315 and 330 sessions, and at 330 with the think
time spread U(59.4 s, 79.4 s) and exponential of the same mean; and the model's share at
each. A run that settles high is one whose sessions fell into step: refused together,
they wait out their retries together and come back together a think time later.

``storms``: each storm chain (:func:`capacity.analytic.window._storm_size`) the analytic
answer of tool-agent with every limit a sliding 10 s or 60 s log runs — its N and the
storm's size in attempts — each N whose share the search asked, by constraint, and how
often the answer asked a counted, retried log's bursty share and computed it
(deterministic: no timing).

``overload``: why ptu-spillover with every limit a sliding 10 s log is pessimistic (46
against 50 [48–53]): its PTU's OTPM log, which holds only what it admitted (prompt +
max_tokens reserved: 400, 3 × 4,000 launched together, 50 tokens a turn; 16,667 a 10 s
window), spills too many calls far over its allowance. Here the PTU alone (no
spillover, no retries, a refused call's turn going on, as a spilling deployment's turns
do), on a sliding 10 s log at 5–50 sessions and a 60 s one at 20–80: the model's share
of calls refused — the Palm rule's ``p`` and units share ``p_u``, the whole-clump
knapsack's units share ``p_cb`` (Little), the share it answers
(:meth:`ClumpWindowModel._partial_admission`) — and what ``p_cb`` would say in calls if
the refused calls' charges followed the room law (``P(S > q − b | S ≤ q)``, as
:func:`capacity.analytic.fleet.room_refused` reads the calls a loss log spills), against
the engine's share of all calls and of each call site's (3 × 1 h, seed 1).

``cost``: the analytic answer's CPU time (best of 5, every store emptied) of tool-agent
and ptu-spillover with every limit a sliding 10 s or 60 s log, in this tree and in a
checkout of ``REV`` (default 6c0d504, session 57's last commit), alternated five times
in one sitting (``session57_probes.py``'s ``cost``), and the medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

# (No capacity import at the top: ``_time TREE`` imports the tree's own.)
ROOT = Path(__file__).resolve().parent.parent


def _hunt_2012(think: Any = None) -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import hunt

    from capacity.profile.loader import profile_from_dict

    _, data = hunt.drawn(2012)
    if think is not None:
        data["session"]["think_time"] = think
    return profile_from_dict(data)


def lockin() -> None:
    from capacity.analytic.model import analyze
    from capacity.sim.engine import simulate

    rows = [("fixed 69.4 s", None, (300, 315, 330)),
            ("U(59.4 s, 79.4 s)", {"uniform": ["59.4s", "79.4s"]}, (330,)),
            ("exponential 69.4 s", {"exponential": "69.4s"}, (330,))]
    for label, think, grid in rows:
        prof = _hunt_2012(think)
        res = analyze(prof)
        print(f"hunt-2012, think time {label}: analytic N* {res.burst_ceiling}", flush=True)
        for n in grid:
            model = analyze(prof, sessions=n)
            share = sum(c.at_sessions.loss_fraction for c in model.constraints
                        if c.at_sessions is not None)
            runs = [simulate(prof, n, replications=2, seed=s, horizon_s=3600.0, workers=1)
                    .metrics["attempt_429_fraction"].mean for s in range(8)]
            print(f"  {n} sessions: the model {100 * share:.2f} % (its constraints' shares "
                  f"added), the engine's eight runs "
                  + ", ".join(f"{100 * v:.1f}" for v in runs) + " %", flush=True)


def storms() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from profile_variants import variant

    from capacity.analytic import clumped, window
    from capacity.analytic import model as amodel
    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict

    chains: list[str] = []
    asked: list[int] = []
    size, stats = window._storm_size, clumped.ClumpedWindow._stats
    ceiling = amodel.constraint_ceiling

    def chain(mdl: Any, n: float, enough: float = float("inf")) -> float:
        got = size(mdl, n, enough)
        chains.append(f"{n:,.0f}: {got:,.0f}")
        return got

    def share(self: Any, n: int) -> Any:
        asked.append(n)
        return stats(self, n)

    def searched(wl: Any, c: Any, *a: Any, **k: Any) -> Any:
        chains.clear()
        asked.clear()
        got = ceiling(wl, c, *a, **k)
        print(f"  {c.quota}.{c.dim}: burst ceiling {got.burst_ceiling:,}; chains at N "
              f"(attempts): {', '.join(chains) or 'none'}; {len(asked)} shares asked: "
              f"{asked}")
        chains.clear()
        return got

    bursty = [0, 0]   # (asked, computed)
    ask, compute = (window.ClumpWindowModel._sliding_bursty,
                    window.ClumpWindowModel._sliding_bursty_uncached)

    def asked_bursty(self: Any, n: int) -> float:
        bursty[0] += 1
        return float(ask(self, n))

    def computed_bursty(self: Any, n: int) -> float:
        bursty[1] += 1
        return float(compute(self, n))

    data = yaml.safe_load((ROOT / "profiles" / "tool-agent.yaml").read_text())
    window.ClumpWindowModel._sliding_bursty = asked_bursty  # type: ignore[method-assign]
    window.ClumpWindowModel._sliding_bursty_uncached = computed_bursty  # type: ignore[method-assign]
    window._storm_size = chain
    clumped.ClumpedWindow._stats = share
    amodel.constraint_ceiling = searched
    try:
        for length in (10, 60):
            print(f"tool-agent, every limit a sliding {length} s log:")
            bursty[:] = [0, 0]
            res = analyze(profile_from_dict(variant(data, f"sliding{length}")))
            print(f"  N* {res.burst_ceiling}; chains the notes ran: {len(chains)}; the "
                  f"bursty share asked {bursty[0]} times, computed {bursty[1]}")
    finally:
        window._storm_size, clumped.ClumpedWindow._stats = size, stats
        window.ClumpWindowModel._sliding_bursty = ask  # type: ignore[method-assign]
        window.ClumpWindowModel._sliding_bursty_uncached = compute  # type: ignore[method-assign]
        amodel.constraint_ceiling = ceiling


def overload() -> None:
    import math

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from profile_variants import variant

    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import profile_from_dict

    base = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    for length, grid in ((10, (5, 10, 20, 30, 50)), (60, (20, 50, 80))):
        data = variant(base, f"sliding{length}", retries=False)
        data["routes"]["gpt-4o"] = {"deployments": ["ptu"]}
        data["retry"]["on_exhausted"] = "continue"
        data["quotas"]["ptu"].pop("itpm")
        prof = profile_from_dict(data)
        wl = Workload.from_profile(prof)
        cyc = cycle_time(wl)
        (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
        m = constraint_model(wl, c, cyc.cycle_s).inner
        q = math.floor(m.q_lat + 1e-9)
        print(f"PTU alone, OTPM (100,000 a minute) on a sliding {length} s log, no "
              "retries, turns go on:")
        _overload_rows(prof, m, q, grid)


def _overload_rows(prof: Any, m: Any, q: int, grid: tuple[int, ...]) -> None:
    import numpy as np

    from capacity.analytic.fleet import room_refused
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_SITE

    for n in grid:
        low = m.truncated(n - 1, 0.0)
        extra, units = m._arrival_laws()
        p, pu = m._loss_share(low, q, extra), m._loss_share(low, q, units)
        answer = m._partial_admission(m.pmf(n - 1), q, p, pu, low)
        free = m.pmf(n - 1)
        k = np.arange(max(low.size, free.size), dtype=np.float64)
        kept = low[: q + 1]
        p_cb = 1.0 - float(k[: kept.size] @ kept) / float(kept.sum()) / float(
            k[: free.size] @ free)
        # Each charge's share refused by the room the log leaves (the law the fleet spills
        # a loss log's calls by).
        r = room_refused(m.call_pmf, low, q, 1.0, weights=True)
        b = np.arange(m.call_pmf.size, dtype=np.float64)
        room = p_cb * float(b @ m.call_pmf) / float(m.call_pmf.sum()) / (
            float((b * r) @ m.call_pmf) / float(r @ m.call_pmf))
        seen: dict[int, list[int]] = {}
        for rep in range(3):
            rows = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep,
                                  max_attempts=3_000_000).rows
            for site in np.unique(rows[:, T_SITE]).astype(np.int64).tolist():
                at = rows[rows[:, T_SITE] == site]
                got = seen.setdefault(site, [0, 0])
                got[0] += at.shape[0]
                got[1] += int((at[:, T_ADMITTED] == 0).sum())
        engine = sum(v[1] for v in seen.values()) / sum(v[0] for v in seen.values())
        sites = ", ".join(f"{v[1] / v[0]:.1%}" for _, v in sorted(seen.items()))
        print(f"  {n} sessions: p {p:.1%}, p_u {pu:.1%}, p_cb {p_cb:.1%}, answered "
              f"{answer:.1%}; p_cb in calls by the room law {room:.1%}; the engine "
              f"{engine:.1%} (query analysis, synthesis, classifier: {sites})", flush=True)


def _time_here(tree: Path) -> None:
    """One line: each sliding variant's N* and best-of-5 CPU ms, with ``tree``'s code."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import analytic_accuracy
    from profile_variants import variant

    from capacity.profile.loader import profile_from_dict

    out = []
    for name in ("tool-agent", "ptu-spillover"):
        data = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
        for v in ("sliding10", "sliding60"):
            res, cpu = analytic_accuracy.analytic(profile_from_dict(variant(data, v)),
                                                  repeat=5)
            out.append(f"{name}/{v} {res.burst_ceiling} {1000 * cpu:.0f} ms")
    print("; ".join(out) + "; end", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["lockin", "storms", "overload", "cost", "_time"])
    ap.add_argument("arg", nargs="?", help="cost: the revision (default 6c0d504); "
                    "_time: the tree")
    args = ap.parse_args(argv)
    if args.probe == "cost":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import session57_probes

        session57_probes.cost(args.arg or "6c0d504", script=__file__)
    elif args.probe == "_time":
        _time_here(Path(args.arg))
    else:
        {"lockin": lockin, "storms": storms, "overload": overload}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
