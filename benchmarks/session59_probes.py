"""Session 59's probes (issue 13): the population fleet's iteration over mixes — the one
row of the accuracy table over 0.2 s of compute — with and without the held-share fit.

Run from the repository root::

    python benchmarks/session59_probes.py looks          # each mix looked at, N*
    python benchmarks/session59_probes.py landscape      # what each mix carries
    python benchmarks/session59_probes.py sims           # where N* moves, simulated
    python benchmarks/session59_probes.py spill          # the PTU's spill, 50 held
    python benchmarks/session59_probes.py before [REV]   # N* and looks against REV's
    python benchmarks/session59_probes.py cost [REV]     # this tree against REV's

``looks``: ptu-spillover beside chat and batch populations and 30 neighbours (held
batch sessions from 1 to 50, chat's share from 5 % to 80 %, batch workers' think time
from 1 s to 2 min, the first call larger than the PTU's bucket, pay-as-you-go first):
the analytic N* and each N the iteration looks at (a fleet model of the mix at N and its
ceiling), with the held-share fit (``populations._held_share_fit``) and without it (the
plain step, N = M* − held, every look). Deterministic: no timing.

``landscape``: M*(mix at N) less the held sessions for N near the answer, on the row
and with 40 batch workers held: the split's rounding makes runs of N whose mixes carry
exactly themselves, and the iteration ends on one of them.

``sims``: the neighbours whose N* this session moves and those beside the first call
past the PTU's bucket (``SIMULATED``), N* with and without the fit against the simulated
search (seed 1, 20 replications × 1 simulated hour; ~10 min).

``spill``: ptu-spillover beside chat and 50 held batch workers, the first call larger
than the PTU's bucket, at N = 12: the PTU's ITPM bucket's spill share of calls and N*
with its finite dam and κ (the units-to-calls size bias) each over every call or without
the calls whose every charge is past the depth (the last the shipped rule), the engine's
spill (one replication), and what pay-as-you-go receives in a 10 s window, in the model
and in the engine.

``before``: each neighbour's N* and mixes looked at in a checkout of ``REV`` (default
eb1384e) and in this tree, where N* differs, and the totals.

``cost``: the populations row's analytic CPU time (best of 5, every store emptied, as
``analytic_accuracy.py`` times it) and its looks, in this tree and in a checkout of
``REV`` (default eb1384e, session 58's last commit; its kernels built in place),
alternated five times in one sitting, and the medians.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

OVERSIZED = "ptu-oversized-first-call.yaml"
PAYGO_FIRST = "ptu-paygo-first.yaml"
NEIGHBOURS: list[tuple[str, list[str], list[str]]] = [
    ("ptu-spillover beside chat and batch populations", [], []),
    *((f"batch held at {h}", [], [f"populations.batch.sessions={h}"])
      for h in (1, 2, 3, 5, 8, 15, 20, 30, 40)),
    ("first call larger than the PTU bucket", [OVERSIZED], []),
    ("pay-as-you-go first", [PAYGO_FIRST], []),
    ("chat a 60 % share", [], ["populations.chat.share=0.6"]),
    ("batch workers think 60 s", [], ["populations.batch.think_time=60s"]),
    *((f"chat a {round(100 * c)} % share, batch held at {h}", [],
       [f"populations.chat.share={c}", f"populations.batch.sessions={h}"])
      for c in (0.05, 0.4, 0.8) for h in (10, 40)),
    *((f"batch workers think {t}, held at {h}", [],
       [f"populations.batch.think_time={t}", f"populations.batch.sessions={h}"])
      for t in ("1s", "20s", "2m") for h in (10, 40)),
    *((f"first call larger than the PTU bucket, batch held at {h}", [OVERSIZED],
       [f"populations.batch.sessions={h}"]) for h in (5, 25, 50)),
    *((f"pay-as-you-go first, batch held at {h}", [PAYGO_FIRST],
       [f"populations.batch.sessions={h}"]) for h in (5, 25)),
]


def _profile(extra: list[str], sets: list[str]) -> Any:
    from capacity.profile.loader import load_profile

    data = ROOT / "tests" / "data"
    return load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                         *(data / e for e in extra),
                         ROOT / "examples" / "chat-and-batch.yaml"], sets)


def _looked(prof: Any) -> tuple[int, list[int]]:
    """(analytic N*, each N the population fleet looked at), every store emptied."""
    import analytic_accuracy

    from capacity.analytic import populations
    from capacity.analytic.model import analyze

    looked: list[int] = []
    real = populations.mixed_profile

    def mix(pv: Any, counts: dict[str, int]) -> Any:
        looked.append(sum(counts.values()) - prof.held_sessions)
        return real(pv, counts)

    analytic_accuracy.empty_stores()
    populations.mixed_profile = mix  # type: ignore[assignment]
    try:
        n_star = analyze(prof.model_copy(deep=True)).burst_ceiling
    finally:
        populations.mixed_profile = real  # type: ignore[assignment]
    return n_star, looked


def looks() -> None:
    from capacity.analytic import populations

    print("| profile | N* | looks | without the fit: N* | looks |")
    print("|---|---|---|---|---|")
    fit = populations._held_share_fit
    total = [0, 0]
    moved = 0
    for name, extra, sets in NEIGHBOURS:
        prof = _profile(extra, sets)
        with_fit = _looked(prof)
        populations._held_share_fit = lambda *a: 0  # type: ignore[assignment]
        try:
            plain = _looked(prof)
        finally:
            populations._held_share_fit = fit  # type: ignore[assignment]
        total[0] += len(with_fit[1])
        total[1] += len(plain[1])
        moved += with_fit[0] != plain[0]
        print(f"| {name} | {with_fit[0]} | {', '.join(map(str, with_fit[1]))} "
              f"| {plain[0]} | {', '.join(map(str, plain[1]))} |", flush=True)
    print(f"{len(NEIGHBOURS)} profiles: {total[0]} mixes looked at with the fit, "
          f"{total[1]} without; N* differs in {moved}")


def landscape() -> None:
    """What each mix carries near the answer: M*(mix at N) − held for N around it, on the
    row and with 40 batch workers held (runs of N whose mixes carry exactly themselves)."""
    from capacity.analytic.fleet import FleetAnalysis
    from capacity.analytic.populations import mixed_profile, view
    from capacity.model.workload import Workload

    for name, sets, span in (("ptu-spillover beside chat and batch populations", [],
                              range(107, 116)),
                             ("batch held at 40", ["populations.batch.sessions=40"],
                              range(35, 43))):
        prof = _profile([], sets)
        pv = view(prof)
        out = []
        for n in span:
            mp = mixed_profile(pv, prof.split(n))
            m = FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling
            out.append(f"{n}: {m - prof.held_sessions}")
        print(f"{name} (N: what its mix carries): {', '.join(out)}", flush=True)


def spill() -> None:
    """ptu-spillover beside chat and 50 held batch workers, the first call larger than
    the PTU's bucket, at N = 12: the PTU's spill share of calls and N* with the finite
    dam and κ each over every call or over those that can fit, against the engine's
    spill; and what pay-as-you-go receives, in the model and in the engine."""
    import itertools

    import numpy as np

    from capacity.analytic import fleet
    from capacity.analytic.model import analyze, cycle_time
    from capacity.analytic.populations import mixed_profile, view
    from capacity.model.workload import Workload
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_DEP, T_T

    prof = _profile([OVERSIZED], ["populations.batch.sessions=50"])
    n = 12
    sessions = sum(prof.split(n).values())

    def entries() -> dict[str, Any]:
        mp = mixed_profile(view(prof), prof.split(n))
        wl = Workload.from_profile(mp)
        return {e.c.name: e for e in fleet.fleet_models(wl, cycle_time(wl)).entries}

    class Unbounded:
        """A bucket slot whose depth κ does not cut at (every charge read)."""

        def __init__(self, slot: Any) -> None:
            self.slot = slot

        def __getattr__(self, name: str) -> Any:
            return 1e300 if name == "allowance" else getattr(self.slot, name)

    real_kappa, real_fitting = fleet.bucket_kappa, fleet.fitting_bucket
    print("| finite dam over | κ over | κ | calls spilled at N = 12 | N* |")
    print("|---|---|---|---|---|")
    for dam_all, kappa_all in itertools.product((False, True), repeat=2):
        if dam_all:
            fleet.fitting_bucket = lambda *a: None  # type: ignore[assignment]
        if kappa_all:
            fleet.bucket_kappa = (  # type: ignore[assignment]
                lambda flow, profile, slot, target: real_kappa(flow, profile,
                                                               Unbounded(slot), target))
        try:
            e = entries()["ptu.itpm"]
            got = e.model.stats(sessions).loss_fraction
            n_star = analyze(prof.model_copy(deep=True)).burst_ceiling
        finally:
            fleet.bucket_kappa, fleet.fitting_bucket = real_kappa, real_fitting
        print(f"| {'every call' if dam_all else 'the calls that can fit'} "
              f"| {'every call' if kappa_all else 'the calls that can fit'} "
              f"| {e.model.kappa:.3f} | {got:.1%} | {n_star} |", flush=True)
    ptu = entries()["ptu.itpm"]
    fit = ptu.model.fitting
    print(f"(offered {ptu.model.stats(sessions).mean_per_window:,.0f} tokens/s against a "
          f"refill of {ptu.c.rate_per_s:,.0f}, "
          f"{sessions * fit.rate_per_session * fit.mean_batch_units:,.0f} of them by calls "
          f"that can fit; never fit {ptu.model.never:.2%} of the calls; simulated N* 12 "
          "[12–13], `sims`)")
    m = entries()["paygo.rpm"].model
    g, _ = m.window_law(sessions)
    k = np.arange(g.size) * m.h
    mean = float(np.dot(k, g))
    print(f"model: paygo {mean:.1f} calls a 10 s window, variance "
          f"{float(np.dot((k - mean) ** 2, g)):.1f}")
    tr = trace_attempts(prof, n, horizon_s=1800.0, seed=7)
    rows, deps = tr.rows, list(tr.deployments)
    on = rows[:, T_DEP] == deps.index("ptu")
    took = on & (rows[:, T_ADMITTED] > 0)
    t = rows[:, T_T] + tr.clock_offset_s
    w = np.floor(t / 10.0).astype(np.int64)
    pg = rows[:, T_DEP] == deps.index("paygo")
    per = np.bincount(w[pg] - w.min())[1:-1]     # whole windows only
    print(f"engine (one replication, 30 min, seed 7): ptu spills "
          f"{1 - took.sum() / on.sum():.1%} of its calls; paygo {per.mean():.1f} calls a "
          f"10 s window, variance {per.var():.1f}")


# The neighbours whose N* this session's changes move (the fit, the never-fitting calls
# left out of a spilling bucket's dam), and those beside them with the first call past
# the PTU's bucket.
SIMULATED = ("batch held at 40", "batch workers think 60 s",
             "chat a 40 % share, batch held at 40", "chat a 80 % share, batch held at 40",
             "batch workers think 2m, held at 10", "batch workers think 1s, held at 10",
             "first call larger than the PTU bucket",
             *(f"first call larger than the PTU bucket, batch held at {h}"
               for h in (5, 25, 50)))


def sims() -> None:
    """:data:`SIMULATED`'s N* with and without the fit, against the simulated search (seed
    1, 20 × 1 h)."""
    from capacity.analytic import populations
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    print("| profile | N* | without the fit | simulated N* [95% CI] |")
    print("|---|---|---|---|")
    fit = populations._held_share_fit
    for name, extra, sets in NEIGHBOURS:
        if name not in SIMULATED:
            continue
        prof = _profile(extra, sets)
        res = analyze(prof.model_copy(deep=True))
        populations._held_share_fit = lambda *a: 0  # type: ignore[assignment]
        try:
            plain = analyze(prof.model_copy(deep=True)).burst_ceiling
        finally:
            populations._held_share_fit = fit  # type: ignore[assignment]
        n_a = res.burst_ceiling
        # (From half the answer: 50 held batch workers' N* sits far below it.)
        lo, hi = max(1, n_a // 2), int(res.mean_ceiling + 1e-9) + 1
        cap = max(hi, int(res.mean_ceiling / (1.0 - prof.targets.max_429_fraction)) + 1)
        sim = find_saturation(prof, lo, max(lo + 1, hi), seed=1, replications=20,
                              horizon_s=3600.0, max_sessions=cap)
        print(f"| {name} | {n_a} | {plain} | {sim.n_star} [{sim.n_lo}–{sim.n_hi}] |",
              flush=True)


def _answers_here(tree: Path) -> None:
    """One JSON line with ``tree``'s code: each neighbour's N* and mixes looked at."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    out = {}
    for name, extra, sets in NEIGHBOURS:
        n_star, looked = _looked(_profile(extra, sets))
        out[name] = [n_star, len(looked)]
    print(json.dumps(out), flush=True)


def before(rev: str) -> None:
    """Each neighbour's N* and mixes looked at with ``rev``'s code (a checkout, its
    kernels built in place) and with this tree's, where they differ; and the totals."""
    import session57_probes

    got = {}
    with session57_probes.checkout(rev) as tree:
        for label, where in ((rev, tree), ("this tree", ROOT)):
            got[label] = json.loads(subprocess.run(
                [sys.executable, __file__, "_answers", str(where)], check=True,
                capture_output=True, text=True).stdout)
    old, new = got[rev], got["this tree"]
    print(f"| profile | N* with {rev} | now | mixes looked at with {rev} | now |")
    print("|---|---|---|---|---|")
    for name in old:
        if old[name][0] != new[name][0]:
            print(f"| {name} | {old[name][0]} | {new[name][0]} | {old[name][1]} "
                  f"| {new[name][1]} |")
    print(f"{len(old)} profiles: mixes looked at {sum(v[1] for v in old.values())} with "
          f"{rev}, {sum(v[1] for v in new.values())} now; N* differs in "
          f"{sum(old[k][0] != new[k][0] for k in old)}")


def _time_here(tree: Path) -> None:
    """One line: the row's N* and best-of-5 CPU ms with ``tree``'s code; then its looks."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import analytic_accuracy

    prof = _profile([], [])
    res, cpu = analytic_accuracy.analytic(prof, repeat=5)
    print(f"mix {res.burst_ceiling} {1000 * cpu:.0f} ms; looks {_looked(prof)[1]}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["looks", "landscape", "sims", "spill", "before", "cost",
                                      "_time", "_answers"])
    ap.add_argument("arg", nargs="?", help="before, cost: the revision (default eb1384e); "
                    "_time, _answers: the tree")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    if args.probe == "cost":
        import session57_probes

        session57_probes.cost(args.arg or "eb1384e", script=__file__)
    elif args.probe == "before":
        before(args.arg or "eb1384e")
    elif args.probe == "_time":
        _time_here(Path(args.arg))
    elif args.probe == "_answers":
        _answers_here(Path(args.arg))
    else:
        {"looks": looks, "landscape": landscape, "sims": sims, "spill": spill}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
