"""Session 42's probes (issue 13).

    python benchmarks/session42_probes.py lock         # hunt-166 / 3088: a full head
    python benchmarks/session42_probes.py trace        # hunt-3088 at 210: the storms
    python benchmarks/session42_probes.py unsimulated  # hunt-145 / 3089 near the answers
    python benchmarks/session42_probes.py spells       # such heads in the hunt: F, F = 1
    python benchmarks/session42_probes.py ndtr         # the compiled normal cdf

``lock``: two priority fleets whose first deployment ("the head") has a long sliding
requests log that counts its rejections (hunt-166: 30 s, 325 requests, backoff retries;
hunt-3088: 15 s, 1,291 requests, honoured retries). Every call tries the head first and is
logged there, admitted or not, so the head's count is the route's attempts over its
window. At each N: the engine's attempts refused (8 × 1 h, seed 1), the fleet model's; the
head's share of arrivals finding the log full (the model, ``P_h``); the rest of the fleet
alone (the head dropped from the route) — its model's attempts refused (``r``) and N*; and
``P_h·r``, what the route refuses while the head is full if each of its full spells lasts
longer than the rest takes to fill (a lower bound on the route's share then; retries that
come back to the head only lengthen the spells).

``trace``: one engine hour of hunt-3088 at 210 sessions (seed 1, replication 0) in
two-minute bins: the tries at the head and those it admitted, the tries spilled to the
rest and those it admitted — storms in which the head admits nothing for minutes while
its log, counting every try, stays full, and healthy spells between them.

``unsimulated``: two hunt records never simulated whose answers the spells moved (hunt-145
536 → 500, hunt-3089 484 → 460): the engine's attempts refused around them (4 × 1 h, seed 1).

``spells``: every hunt fleet whose head has a counted sliding request log: the fleet model's
answer without the spells, with them, and with ``F = 1`` (every full spell taken as long
as the rest's memory), beside the simulated N* of the record.

``ndtr``: ``capacity.model._special.ndtr`` against the fallback (libm's ``erfc`` through
``math.erfc``) on 200,000 random points, and every hunt record's analytic compute timed
both ways in one process (best of 2, every store emptied): the sum over the records
either way times over 0.15 s, and how many are over 0.2 s.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from capacity.cli.entry import one_blas_thread  # noqa: E402

# Timed as the CLI computes it (``ndtr``): one BLAS thread, asked before numpy loads —
# process CPU time would count idle OpenBLAS threads' spinning (2x on hunt-3089).
one_blas_thread()

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))

import hunt  # noqa: E402
from analytic_accuracy import analytic_timed  # noqa: E402

from capacity.analytic import fleet  # noqa: E402
from capacity.analytic.model import analyze  # noqa: E402
from capacity.model import dist  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_DEP, T_T  # noqa: E402


def _rest_alone(data: dict[str, Any]) -> tuple[Profile, list[str]]:
    """The profile with its one route's first deployment (and that one's quotas) dropped;
    the head's quota names."""
    d = copy.deepcopy(data)
    (name, route), = d["routes"].items()
    head = route["deployments"][0]
    d["routes"] = {name: {**route, "deployments": route["deployments"][1:]}}
    d["deployments"] = {k: v for k, v in d["deployments"].items() if k != head}
    heads = [q for q, v in data["quotas"].items() if head in v["models"]]
    d["quotas"] = {k: v for k, v in d["quotas"].items() if k not in heads}
    return profile_from_dict(d), heads


def lock() -> None:
    for seed, ns in ((166, (140, 146, 150, 155)), (3088, (190, 199, 204, 210, 223))):
        _, data, prof, res, _ = hunt.build(seed)
        rest, heads = _rest_alone(data)
        print(f"hunt-{seed}: model N* {res.burst_ceiling}, the rest alone "
              f"{analyze(rest).burst_ceiling}; target {prof.targets.max_429_fraction:.0%}",
              flush=True)
        for n in ns:
            est = simulate(prof, n, replications=8, seed=1,
                           workers=2).metrics["attempt_429_fraction"]
            r = analyze(prof, sessions=n)
            assert r.binding.at_sessions is not None
            p_h = max(c.at_sessions.call_429_fraction for c in r.constraints
                      if c.quota in heads and c.unit == "requests" and c.at_sessions)
            alone = analyze(rest, sessions=n).binding.at_sessions
            assert alone is not None
            print(f"  {n}: engine {est.mean:.2%} [{est.lo:.2%}-{est.hi:.2%}], model "
                  f"{r.binding.at_sessions.attempt_429_fraction:.2%}; P_h {p_h:.2%}, "
                  f"r {alone.attempt_429_fraction:.1%}, P_h·r "
                  f"{p_h * alone.attempt_429_fraction:.2%}", flush=True)


def trace() -> None:
    _, _, prof, _, _ = hunt.build(3088)
    rows = trace_attempts(prof, 210, horizon_s=3600.0, seed=1, replication=0,
                          max_attempts=3_000_000).rows
    t, dep, adm = rows[:, T_T], rows[:, T_DEP], rows[:, T_ADMITTED] > 0
    t0 = float(t.min())
    print("hunt-3088 at 210 sessions, one engine hour in 2-minute bins: tries at the head / "
          "admitted, spilled to the rest / admitted")
    for k in range(0, 3600, 120):
        m = (t >= t0 + k) & (t < t0 + k + 120)
        cells = [int(np.sum(m & (dep == d))) for d in (0, 1)]
        done = [int(np.sum(m & (dep == d) & adm)) for d in (0, 1)]
        print(f"  {k:>5} s: head {cells[0]:>6} / {done[0]:>5}, rest {cells[1]:>6} / "
              f"{done[1]:>5}")


def unsimulated() -> None:
    for seed, ns in ((145, (500, 510, 515, 520, 536)), (3089, (440, 460, 484))):
        _, _, prof, res, _ = hunt.build(seed)
        print(f"hunt-{seed}: analytic {res.burst_ceiling}, target "
              f"{prof.targets.max_429_fraction:.0%}", flush=True)
        for n in ns:
            est = simulate(prof, n, replications=4, seed=1,
                           workers=2).metrics["attempt_429_fraction"]
            print(f"  {n}: engine {est.mean:.2%} [{est.lo:.2%}-{est.hi:.2%}]", flush=True)


def spells() -> None:
    recs = {r["seed"]: r for r in hunt.load(ROOT / "benchmarks" / "hunt" / "records.jsonl")}
    for seed, r in sorted(recs.items()):
        if r["fleet"] != "fleet" or r.get("simulated") is None:
            continue
        _, _, prof, res, _ = hunt.build(seed)
        wl = Workload.from_profile(prof)
        cyc = fleet.cycle_time(wl)
        fa = fleet.FleetAnalysis(prof, wl, cyc=cyc)
        sp = fa.spells_model
        if sp is None:
            continue
        plain = fleet.least_burst(wl, fa.fm, cyc.cycle_s, prof.targets.max_429_fraction)
        whole = dataclasses.replace(sp, memory_s=0.0)
        target = prof.targets.max_429_fraction
        print(f"hunt-{seed} (head {sp.window_s:g} s, rest {sp.memory_s:g} s): without "
              f"{plain}, with {res.burst_ceiling}, F = 1 "
              f"{fleet.held_by_spells(whole, target, plain)[0]}; simulated "
              f"{r['simulated']} [{r['ci'][0]}-{r['ci'][1]}]", flush=True)


def ndtr() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 3.0, 200_000)
    fast, slow = dist._ndtr(z), dist._ndtr_python(z)
    print(f"compiled vs fallback: {int(np.sum(fast != slow))} of {z.size} points differ",
          flush=True)
    compiled = dist._compiled_ndtr
    times: dict[int, tuple[float, float]] = {}
    for r in hunt.load(ROOT / "benchmarks" / "hunt" / "records.jsonl"):
        _, _, prof, _, _ = hunt.build(r["seed"])
        dist._compiled_ndtr = lambda: None  # type: ignore[assignment]
        _, before, _ = analytic_timed(prof, repeat=2)
        dist._compiled_ndtr = compiled
        _, after, _ = analytic_timed(prof, repeat=2)
        times[r["seed"]] = (before, after)
    slow_ones = [v for v in times.values() if max(v) > 0.15]
    print(f"{len(times)} records; the {len(slow_ones)} over 0.15 s either way: "
          f"{sum(v[0] for v in slow_ones):.1f} s -> {sum(v[1] for v in slow_ones):.1f} s; "
          f"over 0.2 s {sum(v[0] > 0.2 for v in times.values())} -> "
          f"{sum(v[1] > 0.2 for v in times.values())}")
    for seed in (2043, 169, 3, 3088, 3089, 145):
        print(f"  hunt-{seed}: {times[seed][0]:.2f} -> {times[seed][1]:.2f} s")


if __name__ == "__main__":
    {"lock": lock, "trace": trace, "unsimulated": unsimulated, "spells": spells,
     "ndtr": ndtr}[sys.argv[1]]()
