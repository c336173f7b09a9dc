"""Session 44's probes (issue 13).

    python benchmarks/session44_probes.py rebound  # storms that re-ignite: model and engine
    python benchmarks/session44_probes.py trace    # one storm's 30 s cycle in the engine
    python benchmarks/session44_probes.py cost     # the population mix's compute
    python benchmarks/session44_probes.py lockin   # a mix of populations locking in

``rebound``: tests/data/storm-rebound-fanout.yaml (hunt-3083): per N, the model's share of
attempts turned away and the storms one ignition brings (``storm_rebound``), beside the
engine's (8 replications, seed 1) over one measured hour and over three — each
replication's own figure, since a replication either storms or does not.

``trace``: the engine's attempts at 150 sessions (replication 1 of seed 1, one hour) in
5 s bins around the first bin that turns away more than a fifth: attempts, refused, first
calls and fan-out calls first tried.

``lockin``: tests/data/counted-sliding-abort-populations.yaml (hunt-3023) at 93
sessions, replication 2 of seed 1 (one hour): each minute's attempts and the share
refused, beside the blend's storm (the chain's attempts and the storms its echo brings).

``cost``: ptu-spillover beside chat and batch populations (``analytic_accuracy``'s row):
the analytic compute (best of 3, one BLAS thread) and the N the mixed fleet visits.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

import numpy as np  # noqa: E402

from capacity.analytic.clumped import clumped_window_model  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_SITE, T_T  # noqa: E402

REBOUND = ROOT / "tests" / "data" / "storm-rebound-fanout.yaml"


def rebound() -> None:
    from capacity.analytic import window

    prof = load_profile(REBOUND)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    inner = clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    print(f"analytic N* {analyze(prof).burst_ceiling}", flush=True)
    ends: dict[float, tuple[float, float, float]] = {}      # by storm grid point
    real = window._storm_rebound

    def spy(mdl: window.ClumpWindowModel, n: float, length: float, starts: float,
            steady: float, *rest: object) -> float:
        ends[n] = (length, starts, steady)
        return real(mdl, n, length, starts, steady, *rest)  # type: ignore[arg-type]

    window._storm_rebound = spy  # type: ignore[assignment]
    for n in (140, 146, 150):
        model = max(float(x.at_sessions.loss_fraction)
                    for x in analyze(prof, sessions=n).constraints
                    if x.at_sessions is not None)
        inner._storm_sizes.clear()                        # (its chain run again, seen)
        k = inner.storm_rebound(n)
        length, starts, steady = ends[window._STORM_GRID ** window.storm_cell(n)]
        print(f"{n} sessions: model {model:.2%} ({k:.0f} storms an ignition; one storm "
              f"turns away {inner.storm_size(n) / k:,.0f} attempts over {length:.1f} s, "
              f"turns start {starts:.1f}/s at its end against {steady:.1f}/s steady; "
              f"{3600 * inner.crossings(n):.2f} ignitions an hour)", flush=True)
        for hours in (1, 3):
            r = simulate(prof, n, replications=8, seed=1, workers=2, horizon_s=3600.0 * hours)
            each = " ".join(f"{v:.1%}" for v in r.samples["attempt_429_fraction"])
            print(f"  engine over {hours} h: {r.metrics['attempt_429_fraction'].mean:.2%} "
                  f"({each})", flush=True)
    window._storm_rebound = real  # type: ignore[assignment]


def trace() -> None:
    prof = load_profile(REBOUND)
    rows = trace_attempts(prof, 150, horizon_s=3600.0, seed=1, replication=1,
                          max_attempts=4_000_000).rows
    t = rows[:, T_T]
    b = ((t - t.min()) // 5).astype(np.int64)
    nb = int(b.max()) + 1
    att = np.bincount(b, minlength=nb)
    rej = np.bincount(b, weights=1.0 - rows[:, T_ADMITTED], minlength=nb)
    tried = rows[:, T_ATTEMPT] == 1
    first = np.bincount(b, weights=tried & (rows[:, T_SITE] == 0), minlength=nb)
    fan = np.bincount(b, weights=tried & (rows[:, T_SITE] == 1), minlength=nb)
    share = rej / np.maximum(att, 1)
    start = int(np.argmax(share > 0.2))
    print("t (s)  attempts  refused  share  first calls  fan-out calls")
    for j in range(max(0, start - 2), min(nb, start + 14)):
        print(f"{5 * j:5d}  {att[j]:8d}  {int(rej[j]):7d}  {share[j]:5.2f}  "
              f"{int(first[j]):11d}  {int(fan[j]):13d}")


def cost() -> None:
    from analytic_accuracy import analytic_timed

    from capacity.analytic import populations

    paths = [ROOT / "profiles" / "ptu-spillover.yaml", ROOT / "examples" / "chat-and-batch.yaml"]
    prof = load_profile(paths)
    res, cpu, _ = analytic_timed(prof, 3)
    seen: list[int] = []
    split = type(prof).split

    def spy(self: object, n: int) -> dict[str, int]:
        seen.append(n)
        return split(self, n)  # type: ignore[arg-type]

    type(prof).split = spy  # type: ignore[method-assign]
    try:
        populations.analyze_populations(load_profile(paths), None)
    finally:
        type(prof).split = split  # type: ignore[method-assign]
    print(f"ptu-spillover + chat and batch: N {res.burst_ceiling}, {1000 * cpu:.0f} ms; "
          f"the mix visited at N = {seen}")


def lockin() -> None:
    from capacity.analytic.populations import PopulationModel, view

    path = ROOT / "tests" / "data" / "counted-sliding-abort-populations.yaml"
    prof = load_profile(path)
    pv = view(prof)
    c = next(x for x in pv.constraints() if x.dim == "rpm")
    mix = PopulationModel(pv, c).blended(93)
    k = mix.storm_rebound(93)
    print(f"model at 93: a storm turns away {mix.storm_size(93) / k:.0f} attempts, its "
          f"echo brings {k:.2f} storms; analytic N* {analyze(prof).burst_ceiling}")
    rows = trace_attempts(prof, 93, horizon_s=3600.0, seed=1, replication=2,
                          max_attempts=4_000_000).rows
    t = rows[:, T_T]
    b = ((t - t.min()) // 60).astype(np.int64)
    att = np.bincount(b)
    rej = np.bincount(b, weights=1.0 - rows[:, T_ADMITTED])
    print("engine, attempts a minute: " + " ".join(str(int(a)) for a in att))
    print("engine, % refused a minute: "
          + " ".join(f"{100 * r / max(a, 1):.0f}" for r, a in zip(rej, att, strict=True)))


if __name__ == "__main__":
    {"rebound": rebound, "trace": trace, "cost": cost, "lockin": lockin}[sys.argv[1]]()
