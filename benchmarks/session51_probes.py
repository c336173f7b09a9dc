"""Session 51's probes (issue 13): where one quota's ITPM and OTPM over one sliding log
length share their refusals, and why.

Run from the repository root::

    python benchmarks/session51_probes.py joint    # the offered load's joint tail
    python benchmarks/session51_probes.py relief   # the engine's overlap, retries off
    python benchmarks/session51_probes.py sites    # the engine's refusals, call by call
    python benchmarks/session51_probes.py mix      # a fleet's population mix, by N

The four profiles of ``session50_probes.py dims`` (hunt-2024 at 7 sessions, -191 at 8,
-2020 at 28, tests/data/sliding-mixed-charges.yaml at 293). As shipped the model counts
the two dimensions' refusals by the larger (:func:`capacity.analytic.model.same_bursts`);
fixed windows add them but for the share a Gaussian pair of the window counts, with their
correlation, says they share (``_shared_429s``). The overlap below is always
``(alone₁ + alone₂ − both) / min(alone₁, alone₂)``: 100 % is the larger alone, 0 % the
sum.

``joint``: one 8 h trace (seed 1; after the default warm-up) of each profile with both
limits lifted — the offered load, nothing refused — and at every call, the units each
log would hold over the last window length with the call's own charge, against each
allowance: the chance each is over, both are, their overlap, and the share of each
one's over-events that the other's over-events earlier in the window, refused, would
have brought under the allowance — against the Gaussian pair's overlap (the counts'
correlation) and the engine's (20 × 1 h, seed 1, each limit alone and both).

``relief``: the engine's overlap (10 × 1 h, seed 1) as the profile is, without retries,
and without retries with a refused call's turn going on (``on_exhausted: continue``): what
is left when neither retries nor aborted turns tie the two logs' refusals together.

``sites``: the engine's share of all attempts refused at each call site (a call of the
profile's turns: a fan-out's copies are one site each), with both limits and with each
alone (20 × 1 h, seed 1; the profile as it is), and beside the share with both limits
the rule "at each site the larger of the two alone, added over the sites".

``mix``: ptu-spillover beside chat and batch populations (the accuracy table's slowest
row): the fleet's ceiling M* of the population mix at N sessions, less the held ones —
the map :func:`capacity.analytic.populations.analyze_mixed_fleet` iterates from below
(N carries itself where that is at least N) — and each visit's CPU time.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session48_probes import _hunt
from session50_probes import _without

from capacity.analytic.clumped import window_correlation
from capacity.analytic.model import _shared_429s, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import profile_from_dict
from capacity.sim.engine import default_warmup, simulate, trace_attempts
from capacity.sim.kernels import T_T, T_UNITS

ROOT = Path(__file__).resolve().parent.parent
DIMS = ["itpm", "otpm"]


def _cases() -> list[tuple[str, dict[str, Any], int]]:
    mixed = yaml.safe_load((ROOT / "tests" / "data" / "sliding-mixed-charges.yaml").read_text())
    return [("hunt-2024", _hunt(2024), 7), ("hunt-191", _hunt(191), 8),
            ("hunt-2020", _hunt(2020), 28), ("sliding-mixed-charges", mixed, 293)]


def _overlap(data: dict[str, Any], n: int, reps: int) -> tuple[float, float, float, float]:
    """The engine's share of attempts refused with both limits, with each alone, and the
    overlap of the two alone (``reps`` × 1 h, seed 1)."""
    got = {}
    for k, d in (("both", data), ("itpm", _without(data, DIMS, "itpm")),
                 ("otpm", _without(data, DIMS, "otpm"))):
        got[k] = simulate(profile_from_dict(d), n, replications=reps, seed=1,
                          workers=1).metrics["attempt_429_fraction"].mean
    low = max(min(got["itpm"], got["otpm"]), 1e-12)
    return (got["both"], got["itpm"], got["otpm"],
            (got["itpm"] + got["otpm"] - got["both"]) / low)


def _limit(spec: Any) -> float:
    return float(spec["limit"] if isinstance(spec, dict) else spec)


def joint() -> None:
    for name, data, n in _cases():
        qname, q = next(iter(data["quotas"].items()))
        window = float(str(q["enforcement"]["window"]).rstrip("s"))
        lifted = copy.deepcopy(data)
        for k in DIMS:
            spec = lifted["quotas"][qname][k]
            if isinstance(spec, dict):
                spec["limit"] = 10**12
            else:
                lifted["quotas"][qname][k] = 10**12
        tr = trace_attempts(profile_from_dict(lifted), n, horizon_s=8 * 3600.0, seed=1,
                            max_attempts=5_000_000)
        rows = tr.rows[np.argsort(tr.rows[:, T_T], kind="stable")]
        t = rows[:, T_T]
        start = np.searchsorted(t, t - window, side="right")
        units, excess = {}, {}
        for k in DIMS:
            col = T_UNITS + next(i for i, s in enumerate(tr.slots)
                                 if (s.quota, s.dimension) == (qname, k))
            units[k] = rows[:, col]
            run = np.concatenate([[0.0], np.cumsum(units[k])])
            held = run[:-1] - run[start]           # offered over the window before the call
            excess[k] = held + units[k] - _limit(q[k]) * window / 60.0
        late = t >= default_warmup(profile_from_dict(lifted))
        over = {k: (excess[k] > 0)[late] for k in DIMS}
        p_i, p_o = float(over["itpm"].mean()), float(over["otpm"].mean())
        p_both = float((over["itpm"] & over["otpm"]).mean())
        # The other log's over-events earlier in the window, had they been refused, would
        # have kept their units of this one out: the share of this one's over-events that
        # such earlier refusals alone would have brought under its allowance.
        relieved = []
        for a, b in (("itpm", "otpm"), ("otpm", "itpm")):
            gone = np.concatenate([[0.0], np.cumsum(np.where(excess[b] > 0, units[a], 0.0))])
            fits = ((excess[a] > 0) & (excess[b] <= 0)
                    & (gone[:-1] - gone[start] >= excess[a]))[late]
            relieved.append(float(fits.mean()) / max(float(over[a].mean()), 1e-12))
        wl = Workload.from_profile(profile_from_dict(data))
        a, b = (c for c in wl.constraints if wl.units_per_turn(c) > 0)
        rho = window_correlation(wl, a, b, cycle_time(wl).cycle_s)
        gauss = _shared_429s(rho, max(p_i, p_o), min(p_i, p_o))
        both, e_i, e_o, engine = _overlap(data, n, 20)
        print(f"{name} at {n} sessions ({window:g} s log): offered over ITPM {p_i:.2%}, "
              f"OTPM {p_o:.2%}, both {p_both:.3%} — overlap {p_both / min(p_i, p_o):.0%}, "
              f"relieved by the other's earlier ones ITPM {relieved[0]:.0%}, OTPM "
              f"{relieved[1]:.0%}; "
              f"Gaussian pair (correlation {rho:.2f}) {gauss:.0%}; engine {engine:.0%} "
              f"(refused {both:.2%}, ITPM alone {e_i:.2%}, OTPM alone {e_o:.2%})",
              flush=True)


def relief() -> None:
    for name, data, n in _cases():
        print(f"{name} at {n} sessions (retry: {data.get('retry')}):", flush=True)
        for label, patch in (("as the profile is", {}), ("no retries", {"max_retries": 0}),
                             ("no retries, on_exhausted: continue",
                              {"max_retries": 0, "on_exhausted": "continue"})):
            d = copy.deepcopy(data)
            d["retry"] = {**(d.get("retry") or {}), **patch}
            both, e_i, e_o, engine = _overlap(d, n, 10)
            print(f"  {label}: refused {both:.2%}, ITPM alone {e_i:.2%}, OTPM alone "
                  f"{e_o:.2%}; overlap {engine:.0%}", flush=True)


def mix() -> None:
    import time

    from capacity.analytic.fleet import FleetAnalysis
    from capacity.analytic.populations import mixed_profile, view
    from capacity.profile.loader import load_profile

    prof = load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                         ROOT / "examples" / "chat-and-batch.yaml"])
    pv = view(prof)
    held = sum(p.held or 0 for p in pv.parts)
    means = [pv.mean_ceiling(c) for c in pv.constraints() if pv.touches(c)]
    print(f"ptu-spillover beside chat and batch populations ({held} held sessions; the "
          f"iteration starts at the smallest mean ceiling, {min(means):.2f}, rounded "
          f"down):")
    for n in (20, 84, 107, 110, 111, 112, 115, 120):
        t0 = time.process_time()
        mp = mixed_profile(pv, prof.split(n))
        got = FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling - held
        print(f"  N = {n}: the mix carries {got}{' (itself)' if got >= n else ''}, "
              f"{1000 * (time.process_time() - t0):.0f} ms", flush=True)


def sites() -> None:
    from capacity.sim.kernels import T_ADMITTED, T_SITE

    for name, data, n in _cases():
        got: dict[str, dict[int, float]] = {}
        for k, d in (("both", data), ("itpm", _without(data, DIMS, "itpm")),
                     ("otpm", _without(data, DIMS, "otpm"))):
            total, refused = 0, {}
            prof = profile_from_dict(d)
            warm = default_warmup(prof)      # the trace's clock starts the warm-up at 0
            for rep in range(20):
                tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep,
                                    max_attempts=5_000_000)
                t = tr.rows[:, T_T]
                rows = tr.rows[(t >= warm) & (t < warm + 3600.0)]   # the measured hour
                total += rows.shape[0]
                for site in np.unique(rows[:, T_SITE]).astype(np.int64):
                    gone = 1.0 - rows[rows[:, T_SITE] == site, T_ADMITTED]
                    refused[int(site)] = refused.get(int(site), 0.0) + float(gone.sum())
            got[k] = {s: v / total for s, v in refused.items()}
        each = sorted(set(got["both"]) | set(got["itpm"]) | set(got["otpm"]))
        share = {k: sum(v.values()) for k, v in got.items()}
        rule = sum(max(got["itpm"].get(s, 0.0), got["otpm"].get(s, 0.0)) for s in each)
        print(f"{name} at {n} sessions: refused {share['both']:.2%}; ITPM alone "
              f"{share['itpm']:.2%}, OTPM alone {share['otpm']:.2%} — the larger "
              f"{max(share['itpm'], share['otpm']):.2%}, the sum "
              f"{share['itpm'] + share['otpm']:.2%}, site by site the larger added "
              f"{rule:.2%}", flush=True)
        for s in each:
            print(f"  site {s}: both {got['both'].get(s, 0.0):.3%}, ITPM alone "
                  f"{got['itpm'].get(s, 0.0):.3%}, OTPM alone {got['otpm'].get(s, 0.0):.3%}",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["joint", "relief", "sites", "mix"])
    {"joint": joint, "relief": relief, "sites": sites, "mix": mix}[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
