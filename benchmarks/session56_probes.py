"""Session 56's probes (issue 13): a fixed token window's spill counted by the calls.

Run from the repository root::

    python benchmarks/session56_probes.py counted   # the spill a window, engine and model
    python benchmarks/session56_probes.py longer    # 10 s windows into a 60 s one
    python benchmarks/session56_probes.py lengths   # N* off and on, four overlays
    python benchmarks/session56_probes.py spread    # the spill's law at 10-60 s windows

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

``spread``: ptu-spillover with the PTU and pay-as-you-go on fixed windows of 10, 20, 30
and 60 s (the 20 and 30 s ones without retries), near each one's N*: per window, in the
engine (3 traces × 1 h, seed 7) the route's count ``Y`` (beside the model's law of it,
sessions independent), the calls the PTU admits ``A`` and their correlation, and the
sends to pay-as-you-go ``S`` (mean ± standard deviation, skewness); in the model the
spill's law with the overflow (as shipped) and counted, and pay-as-you-go's 429 share of
attempts beside the engine's (40 × 1 h, seed 7).
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
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_DEP, T_T  # noqa: E402

PTU = ROOT / "profiles" / "ptu-spillover.yaml"
DATA = ROOT / "tests" / "data"
CASES = {"counted": ([PTU, DATA / "ptu-fixed-minute.yaml"], 90, (86, 90, 92)),
         "longer": ([PTU, DATA / "ptu-fixed-10s-into-minute.yaml"], 105, (101, 105, 108))}


def _per_window(win: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Counts per window of the windows ``whole`` traced whole (those before the first
    and after the last, traced in part, left out)."""
    keep = (win >= whole[0]) & (win <= whole[-1])
    return np.bincount((win[keep] - whole[0]).astype(int), minlength=whole.size)


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
            counts = _per_window(win[mask], whole)
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


def _overlay(window_s: int, retries: bool) -> Path:
    """A temporary overlay: the PTU and pay-as-you-go on fixed ``window_s`` windows."""
    import tempfile

    text = "".join(f"  {q}:\n    enforcement: {{type: fixed_window, window: {window_s}s}}\n"
                   for q in ("ptu", "paygo"))
    text = "quotas:\n" + text + ("" if retries else "retry:\n  max_retries: 0\n")
    path = Path(tempfile.mkdtemp()) / f"fixed-{window_s}s.yaml"
    path.write_text(text)
    return path


def _skew(values: np.ndarray, probs: np.ndarray) -> tuple[float, float, float]:
    mean = float(np.dot(values, probs))
    sd = float(np.sqrt(np.dot((values - mean) ** 2, probs)))
    return mean, sd, float(np.dot((values - mean) ** 3, probs)) / sd**3 if sd > 0 else 0.0


def spread() -> None:
    shipped = fleet._COUNTED_SPILL
    print("| windows | sessions | engine: Y (skew) | model: Y (skew) | engine: A | corr(Y, A) | "
          "engine: S (skew) | model: S overflow (skew) | model: S counted (skew) | "
          "engine: 429s | overflow | counted |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for window_s, retries, n in ((10, True, 70), (20, False, 80), (30, False, 86),
                                 (60, True, 90)):
        prof = load_profile([PTU, _overlay(window_s, retries)])
        ys: list[int] = []
        adm: list[int] = []
        sent: list[int] = []
        for rep in range(3):
            tr = trace_attempts(prof, n, horizon_s=3600.0, seed=7, replication=rep)
            a = tr.rows
            win = np.floor((a[:, T_T] + tr.clock_offset_s) / window_s)
            dep = a[:, T_DEP].astype(int)
            ptu, paygo = tr.deployments.index("ptu"), tr.deployments.index("paygo")
            whole = np.arange(win.min() + 1, win.max())
            for out, mask in ((ys, (a[:, T_ATTEMPT] == 1) & (dep == ptu)),
                              (adm, (dep == ptu) & (a[:, T_ADMITTED] > 0)),
                              (sent, dep == paygo)):
                out.extend(int(x) for x in _per_window(win[mask], whole))
        y, ad, se = (np.asarray(v, dtype=np.float64) for v in (ys, adm, sent))
        flat = np.full(se.size, 1.0 / se.size)
        wl = Workload.from_profile(prof)
        law = np.asarray(fleet.route_count(wl, fleet.route_flows(wl)[0], float(window_s),
                                           cycle_time(wl).cycle_s).pmf(n), dtype=np.float64)
        my, sdy, sky = _skew(np.arange(law.size, dtype=np.float64), law / law.sum())
        ey = _skew(y, flat)
        cells = []
        shares = []
        for on in (False, True):
            fleet._COUNTED_SPILL = on
            empty_stores()
            fa = fleet.FleetAnalysis(prof, Workload.from_profile(prof))
            entry = next(e for e in fa.fm.entries if e.c.name == "paygo.rpm")
            g, _ = entry.model.window_law(n)
            m, sd, sk = _skew(np.arange(g.size, dtype=np.float64), g)
            cells.append(f"{m:.1f} ± {sd:.2f} ({sk:+.2f})")
            shares.append(f"{100 * entry.model.stats(n).loss_fraction:.2f} %")
        fleet._COUNTED_SPILL = shipped
        est = simulate(prof, n, replications=40, seed=7,
                       horizon_s=3600.0).metrics["attempt_429_fraction"]
        m, sd, sk = _skew(se, flat)
        print(f"| {window_s} s{'' if retries else ', no retries'} | {n} | "
              f"{ey[0]:.1f} ± {ey[1]:.1f} ({ey[2]:+.2f}) | {my:.1f} ± {sdy:.1f} ({sky:+.2f}) | "
              f"{_spread(adm)} | {np.corrcoef(y, ad)[0, 1]:+.2f} | {m:.1f} ± {sd:.2f} "
              f"({sk:+.2f}) | {cells[0]} | {cells[1]} | {100 * est.mean:.2f} % | "
              f"{shares[0]} | {shares[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=[*sorted(CASES), "lengths", "spread"])
    probe = ap.parse_args().probe
    if probe == "lengths":
        lengths()
    elif probe == "spread":
        spread()
    else:
        counted(probe)


if __name__ == "__main__":
    main()
