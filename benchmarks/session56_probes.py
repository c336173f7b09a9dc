"""Session 56's probes (issue 13): a fixed token window's spill counted by the calls.

Run from the repository root::

    python benchmarks/session56_probes.py counted   # the spill a window, engine and model
    python benchmarks/session56_probes.py longer    # 10 s windows into a 60 s one
    python benchmarks/session56_probes.py lengths   # N* off and on, four overlays

``counted``: ptu-spillover with every quota on fixed 60 s windows
(``tests/data/ptu-fixed-minute.yaml``). In the engine (3 traces × 1 h, seed 7; the
windows on the provider's clock) per minute: the route's new calls, the calls the PTU
admits and the sends to pay-as-you-go, each as mean ± standard deviation, and the 429
share of all attempts (40 replications × 1 h). In the model: the law of the calls
the PTU spills a window (pay-as-you-go's window law) and pay-as-you-go's 429 share, with
the spill read from the PTU's token overflow (as shipped) and counted by the route's
calls (:func:`capacity.analytic.fleet._counted_spill`, switched on), and the analytic N*
of each (the simulated one: ``capacity ceiling ptu-spillover tests/data/... --seed 1``).

``longer``: the same with the PTU on fixed 10 s windows and pay-as-you-go on fixed 60 s
ones (``tests/data/ptu-fixed-10s-into-minute.yaml``), at 101, 105 and 108 sessions: six
of the PTU's windows spill into each of pay-as-you-go's (their overflows added as
independent, as shipped; counted, with the count's covariance across them).

``lengths``: the analytic N* with the spill read from the token overflow (as shipped)
and counted, on ptu-spillover with fixed 10 s, 20 s (no retries) and 60 s windows and
10 s ones into a 60 s one (``tests/data/ptu-fixed-*.yaml``); the simulated N* of each:
``capacity ceiling ptu-spillover tests/data/ptu-fixed-....yaml --seed 1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from analytic_accuracy import empty_stores  # noqa: E402

from capacity.analytic import fleet  # noqa: E402
from capacity.analytic.model import analyze  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_DEP, T_T  # noqa: E402

PTU = ROOT / "profiles" / "ptu-spillover.yaml"
DATA = ROOT / "tests" / "data"
CASES = {"counted": ([PTU, DATA / "ptu-fixed-minute.yaml"], 90, (86, 90, 92)),
         "longer": ([PTU, DATA / "ptu-fixed-10s-into-minute.yaml"], 105, (101, 105, 108))}


def _spread(v: list[int]) -> str:
    a = np.asarray(v, dtype=np.float64)
    return f"{a.mean():.1f} ± {a.std():.1f}"


def counted(case: str) -> None:
    files, n, sessions = CASES[case]
    prof = load_profile(files)
    got: dict[str, list[int]] = {"new": [], "admitted": [], "sent": []}
    for rep in range(3):
        tr = trace_attempts(prof, n, horizon_s=3600.0, seed=7, replication=rep)
        a = tr.rows
        win = np.floor((a[:, T_T] + tr.clock_offset_s) / 60.0)
        dep = a[:, T_DEP].astype(int)
        ptu, paygo = tr.deployments.index("ptu"), tr.deployments.index("paygo")
        whole = np.arange(win.min() + 1, win.max())      # the minutes traced whole
        for key, mask in (("new", (a[:, T_ATTEMPT] == 1) & (dep == ptu)),
                          ("admitted", (dep == ptu) & (a[:, T_ADMITTED] > 0)),
                          ("sent", dep == paygo)):
            counts = np.bincount((win[mask] - whole[0]).astype(int).clip(0),
                                 minlength=whole.size)[: whole.size]
            got[key].extend(int(x) for x in counts)
    print(f"engine at {n} sessions, a minute: the route's new calls {_spread(got['new'])}, "
          f"admitted at the PTU {_spread(got['admitted'])}, sent to pay-as-you-go "
          f"{_spread(got['sent'])}")
    print("| sessions | engine: 429 share of attempts [95% CI] | model: token overflow | "
          "model: counted |")
    print("|---|---|---|---|")
    shares: dict[bool, dict[int, float]] = {}
    laws: dict[bool, str] = {}
    ceilings: dict[bool, int] = {}
    shipped = fleet._COUNTED_SPILL
    for on in (False, True):
        fleet._COUNTED_SPILL = on
        empty_stores()
        wl = Workload.from_profile(prof)
        fa = fleet.FleetAnalysis(prof, wl)
        entry = next(e for e in fa.fm.entries if e.c.name == "paygo.rpm")
        g, _ = entry.model.window_law(n)
        k = np.arange(g.size, dtype=np.float64)
        mean = float(np.dot(k, g))
        laws[on] = f"{mean:.1f} ± {float(np.sqrt(np.dot((k - mean) ** 2, g))):.1f}"
        shares[on] = {s: entry.model.stats(s).loss_fraction for s in sessions}
        empty_stores()
        ceilings[on] = analyze(prof).burst_ceiling
    fleet._COUNTED_SPILL = shipped
    for s in sessions:
        est = simulate(prof, s, replications=40, seed=7,
                       horizon_s=3600.0).metrics["attempt_429_fraction"]
        print(f"| {s} | {100 * est.mean:.2f} % [{100 * est.lo:.2f}–{100 * est.hi:.2f}] | "
              f"{100 * shares[False][s]:.2f} % | {100 * shares[True][s]:.2f} % |")
    print(f"model at {n} sessions, pay-as-you-go's calls a minute: token overflow "
          f"{laws[False]}, counted {laws[True]}")
    print(f"analytic N*: token overflow {ceilings[False]}, counted {ceilings[True]}")


def lengths() -> None:
    shipped = fleet._COUNTED_SPILL
    print("| overlay | analytic N*: token overflow | analytic N*: counted |")
    print("|---|---|---|")
    for name in ("ptu-fixed-10s", "ptu-fixed-20s-no-retries", "ptu-fixed-minute",
                 "ptu-fixed-10s-into-minute"):
        got = []
        for on in (False, True):
            fleet._COUNTED_SPILL = on
            empty_stores()
            got.append(analyze(load_profile([PTU, DATA / f"{name}.yaml"])).burst_ceiling)
        print(f"| {name} | {got[0]} | {got[1]} |")
    fleet._COUNTED_SPILL = shipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=[*sorted(CASES), "lengths"])
    probe = ap.parse_args().probe
    if probe == "lengths":
        lengths()
    else:
        counted(probe)


if __name__ == "__main__":
    main()
