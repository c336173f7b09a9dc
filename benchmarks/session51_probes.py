"""Session 51's probes (issue 13): where one quota's ITPM and OTPM over one sliding log
length share their refusals, and why.

Run from the repository root::

    python benchmarks/session51_probes.py joint    # the offered load's joint tail
    python benchmarks/session51_probes.py relief   # the engine's overlap, retries off
    python benchmarks/session51_probes.py mix      # a fleet's population mix, by N

The four profiles of ``session50_probes.py dims`` (hunt-2024 at 7 sessions, -191 at 8,
-2020 at 28, tests/data/sliding-mixed-charges.yaml at 293). As shipped the model counts
the two dimensions' refusals by the larger (:func:`capacity.analytic.model.same_bursts`);
fixed windows add them but for the share a Gaussian pair of the window counts, with their
correlation, says they share (``_shared_429s``). The overlap below is always
``(alone₁ + alone₂ − both) / min(alone₁, alone₂)``: 100 % is the larger alone, 0 % the
sum.

``joint``: one 8 h trace (seed 1) of each profile with both limits lifted — the offered
load, nothing refused — and at every call, the units each log would hold over the last
window length with the call's own charge, against each allowance: the chance each is over,
both are, their overlap — against the Gaussian pair's (the counts' correlation) and the
engine's (20 × 1 h, seed 1, each limit alone and both).

``relief``: the engine's overlap (10 × 1 h, seed 1) as the profile is, without retries,
and without retries with a refused call's turn going on (``on_exhausted: continue``): what
is left when neither retries nor aborted turns tie the two logs' refusals together.

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
from capacity.sim.engine import simulate, trace_attempts
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
        over = {}
        for k in DIMS:
            col = T_UNITS + next(i for i, s in enumerate(tr.slots)
                                 if (s.quota, s.dimension) == (qname, k))
            units = rows[:, col]
            run = np.concatenate([[0.0], np.cumsum(units)])
            held = run[:-1] - run[start]           # offered over the window before the call
            over[k] = (held + units > _limit(q[k]) * window / 60.0)[t > 600.0]
        p_i, p_o = float(over["itpm"].mean()), float(over["otpm"].mean())
        p_both = float((over["itpm"] & over["otpm"]).mean())
        wl = Workload.from_profile(profile_from_dict(data))
        a, b = (c for c in wl.constraints if wl.units_per_turn(c) > 0)
        rho = window_correlation(wl, a, b, cycle_time(wl).cycle_s)
        gauss = _shared_429s(rho, max(p_i, p_o), min(p_i, p_o))
        both, e_i, e_o, engine = _overlap(data, n, 20)
        print(f"{name} at {n} sessions ({window:g} s log): offered over ITPM {p_i:.2%}, "
              f"OTPM {p_o:.2%}, both {p_both:.3%} — overlap {p_both / min(p_i, p_o):.0%}; "
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
    print(f"ptu-spillover beside chat and batch populations ({held} held sessions):")
    for n in (20, 84, 107, 110, 111, 112, 115, 120):
        t0 = time.process_time()
        mp = mixed_profile(pv, prof.split(n))
        got = FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling - held
        print(f"  N = {n}: the mix carries {got}{' (itself)' if got >= n else ''}, "
              f"{1000 * (time.process_time() - t0):.0f} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["joint", "relief", "mix"])
    {"joint": joint, "relief": relief, "mix": mix}[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
