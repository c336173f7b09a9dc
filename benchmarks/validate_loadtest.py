"""Validation: measured vs predicted ceilings, every shipped profile (issue 11, item 6).

For each profile in ``profiles/``: start ``capacity serve`` (a separate process, so the
mock and the load generator do not share a core's GIL) at time scale K ≥ 10, ask
``capacity ceiling``'s simulation for N* (same horizon, warm-up and seed as the load
test), then run ``capacity loadtest`` over a grid of N around it and print, per N, the
measured and predicted 429 fraction, p95 turn latency and goodput, and the measured N*
beside the predicted one. Goal: measured N* within 10 % of the simulated N*.

    python benchmarks/validate_loadtest.py [--profiles a.yaml,b.yaml] [--duration 10m]
                                           [--out benchmarks/validate_loadtest.md]
                                           [--route client|gateway]

Before each N the load generator resets the mock's quota state with the simulator's
steady-state start (``POST /admin/reset``), and every request carries the hint headers
naming its call's tokens, so mock and simulator charge and time each call alike.

Fleet profiles (``routes``: e.g. ``profiles/ptu-spillover.yaml``): the load generator
routes client-side with THE routing rule (``--route client``), and a third table gives,
per N, the measured spill fraction (requests answered 429 that spilled at once to the
next deployment, per request sent) and fallback fraction (calls that fell back) beside
the simulator's, and each deployment's share of the admitted calls measured / predicted. When the
simulator cannot run the profile the predicted ceiling is the analytic one (labelled);
when neither can, the grid is taken around ``--fleet-n`` and only measurements are shown.

Session populations (``--profiles web-research.yaml+overlay.yaml`` joins files, ``--set
key=value`` overrides; ``--populations`` adds the standard case: web-research + the
tests' overlay with 10 held batch sessions): N is the varying sessions (the held ones
run at every N), the measured N* is in N beside the simulated one, and a fourth table
gives per N and population the sessions, turns per hour and 429 share of attempts,
measured / predicted.

Takes ~5–12 minutes of wall time per profile on a quiet 2-core machine. Writes a Markdown
table (the README quotes it) and the full JSON of every run next to it, after each
profile.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from capacity import load_profile
from capacity.errors import CapacityError
from capacity.loadgen import LagError, LoadtestConfig, run_loadtest
from capacity.loadgen.result import measured_ceiling
from capacity.loadgen.runner import default_warmup_s, predict_ceiling
from capacity.model.dist import parse_duration

ROOT = Path(__file__).resolve().parent.parent
# K per profile: as fast as the lag guard allows on a busy 2-core machine (the smallest
# enforcement window ÷ K must stay 10× above the event loop's p99 lag).
TIME_SCALE = {"web-research": 20.0, "chat-assistant": 10.0, "tool-agent": 5.0,
              "ptu-spillover": 20.0, "fleet-test": 20.0}
GRID = (0.7, 0.85, 1.0, 1.15, 1.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


POPULATIONS = (f"{ROOT / 'profiles' / 'web-research.yaml'}+"
               f"{ROOT / 'tests' / 'data' / 'populations-overlay.yaml'}")
POPULATIONS_SET = ("populations.batch.sessions=10",)


def start_mock(profile: Path | list[Path], k: float, seed: int,
               overrides: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    files = [str(f) for f in (profile if isinstance(profile, list) else [profile])]
    sets = [x for o in overrides for x in ("--set", o)]
    proc = subprocess.Popen([sys.executable, "-m", "capacity", "serve", *files, *sets,
                             "--port", str(port), "--time-scale", str(k), "--seed",
                             str(seed)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"capacity serve did not start: {proc.stderr.read().decode()[:300]}"
                       if proc.stderr else "capacity serve did not start")


def fmt(x: float | None, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:.2f}%" if pct else f"{x:.1f}"


def predicted_ceiling(profile: Any, cfg: LoadtestConfig) -> tuple[Any, str]:
    """The simulated N* with its CI; the analytic one (burst-aware) when the simulator
    cannot run the profile; (None, why) when neither can."""
    try:
        return predict_ceiling(profile, cfg), "simulated"
    except CapacityError as e:
        why = str(e)
    from capacity.whatif.ceiling import ceiling as solve

    try:
        res = solve(profile, "analytic")
    except CapacityError as e:
        return None, f"{why}; {e}"
    n = int(res.burst_ceiling)
    return SimpleNamespace(n_star=n, n_lo=n, n_hi=n, binding=(), capped=False), "analytic"


def validate(path: Path | list[Path], duration_s: float, seed: int, replications: int,
             fleet_n: int = 100, route: str = "client",
             time_scale: float | None = None, overrides: tuple[str, ...] = ()) -> dict:
    profile = load_profile(path if isinstance(path, list) else [path], overrides)
    k = time_scale or TIME_SCALE.get(profile.title, 10.0)
    cfg = LoadtestConfig(target="", time_scale=k, warmup_s=default_warmup_s(profile),
                         duration_s=duration_s, seed=seed, replications=replications)
    t = time.time()
    ceiling, how = predicted_ceiling(profile, cfg)
    n_star = ceiling.n_star if ceiling is not None else fleet_n
    grid = sorted({max(1, round(n_star * f)) for f in GRID})
    if ceiling is None:
        print(f"{profile.title}: no prediction ({how}); grid {grid} around --fleet-n; "
              f"K = {k:g}", flush=True)
    else:
        print(f"{profile.title}: predicted N* ({how}) = {n_star} [{ceiling.n_lo}, "
              f"{ceiling.n_hi}] ({time.time() - t:.0f}s); grid {grid}; K = {k:g}",
              flush=True)
    proc, url = start_mock(path, k, seed, overrides)
    try:
        cfg = LoadtestConfig(target=url, time_scale=k, warmup_s=cfg.warmup_s,
                             duration_s=duration_s, seed=seed, replications=replications,
                             route="gateway" if route == "gateway" else "client")
        try:
            res = run_loadtest(profile, cfg, grid, ceiling=False,
                               on_point=lambda p: print(f"  N={p.sessions} measured",
                                                        flush=True))
            lag_error = None
        except LagError as e:
            res = e.result  # type: ignore[attr-defined]
            lag_error = str(e)
            # The points before the lagged one stand: the ceiling they bracket (or that
            # they are all under: then it is only a lower bound) is still a measurement.
            res.measured_ceiling = measured_ceiling(res.points[:-1], res.targets)
    finally:
        proc.terminate()
        proc.wait(10)
    res.predicted_ceiling = ceiling
    out = res.to_dict()
    out["lag_error"] = lag_error
    out["prediction"] = how
    if profile.populations:
        out["profile"] = f"{profile.title} + populations"
    if overrides:
        out["overrides"] = list(overrides)
    if profile.routes:
        out["analytic_fleet"] = analytic_fleet(profile, [p.sessions for p in res.points])
    return out


def analytic_fleet(profile: Any, grid: list[int]) -> dict:
    """The analytic model beside the measurement of a fleet: its burst-aware N* and, per
    N, the spill share of each priority route's first deployment (calls it sends on per
    call sent to it: its rows' 429 share, ``capacity.analytic.fleet``)."""
    from capacity.analytic.model import analyze

    firsts = [r.targets()[0][0] for r in profile.routes.values()
              if r.policy == "priority" and r.spillover is not False and len(r.targets()) > 1]
    out: dict[str, Any] = {"first": {}, "n_star": None}
    try:
        for n in grid:
            res = analyze(profile, sessions=n)
            out["n_star"] = int(res.burst_ceiling)
            for first in firsts:
                qs = set(profile.quotas_for(first))
                shares = [c.at_sessions.call_429_fraction for c in res.constraints
                          if c.quota in qs and c.spill_to and c.at_sessions is not None]
                if shares:
                    out["first"].setdefault(first, {})[str(n)] = float(max(shares))
    except CapacityError as e:
        out["error"] = str(e)
    return out


def table(runs: list[dict]) -> str:
    lines = ["| profile | K | N | 429 % measured | 429 % predicted (run range) | "
             "p95 turn s measured | p95 predicted | goodput calls/min measured | "
             "predicted | lag p99 ms |", "|" + "---|" * 10]
    summary = ["", "| profile | measured N* (grid) | measured N* (crossing) | predicted N* "
               "[CI] | difference |", "|---|---|---|---|---|"]
    for r in runs:
        for p in r["points"]:
            c = p["compare"] or {key: {"measured": p["measured"]["metrics"].get(key)}
                                 for key in ("attempt_429_fraction", "turn_latency_p95_s",
                                             "goodput_calls_per_min")}
            a, l95, g = (c["attempt_429_fraction"], c["turn_latency_p95_s"],
                         c["goodput_calls_per_min"])
            lines.append(
                f"| {r['profile']} | {r['time_scale']:g} | {p['sessions']} | "
                f"{fmt(a['measured'], True)} | {fmt(a.get('predicted'), True)} "
                f"({fmt(a.get('run_lo'), True)}–{fmt(a.get('run_hi'), True)}) | "
                f"{fmt(l95['measured'])} | {fmt(l95.get('predicted'))} | "
                f"{fmt(g['measured'])} | {fmt(g.get('predicted'))} | "
                f"{fmt((p['measured']['lag']['p99_s'] or 0) * 1e3)} |")
        mc, pc = r["measured_ceiling"], r["predicted_ceiling"]
        if mc is None or pc is None:
            summary.append(f"| {r['profile']} | — | — | — | {r.get('lag_error') or ''} |")
            continue
        if r.get("lag_error"):
            summary.append(f"| {r['profile']} | (the last N was refused: "
                           f"{r['lag_error']}) | | | |")
        cross = mc["n_star_interpolated"]
        if cross is None:  # the smallest N missed: no crossing measured
            cross = math.nan
        diff = (cross - pc["n_star"]) / pc["n_star"] if pc["n_star"] else math.nan
        grid_n = (f"≥ {mc['n_star']}" if mc["capped"] else
                  f"{mc['n_star']} (misses at {mc['bracket'][1]})")
        how = "" if r.get("prediction") == "simulated" else f" ({r.get('prediction')})"
        summary.append(f"| {r['profile']} | {grid_n} | {cross:.1f} | {pc['n_star']} "
                       f"[{pc['n_lo']}, {pc['n_hi']}]{how} | {100 * diff:+.1f}% |")
    return "\n".join(lines + summary + fleet_table(runs) + population_table(runs)) + "\n"


def population_table(runs: list[dict]) -> list[str]:
    """Profiles with populations: per N and population, sessions, turns per hour and the
    429 share of attempts, measured / predicted (the simulator's replication mean)."""
    rows = ["", "| profile | N | population | sessions | turns/h measured | predicted "
            "[CI] | 429 % measured | predicted |", "|---|---|---|---|---|---|---|---|"]
    n = len(rows)
    for r in runs:
        pops = r.get("populations") or {}
        for p in r["points"]:
            cmp = p.get("compare_populations") or {}
            for pop, m in (p["measured"].get("populations") or {}).items():
                c = cmp.get(pop) or {}
                t = c.get("turns_per_hour") or {}
                f = c.get("attempt_429_fraction") or {}
                ci = (f" [{fmt(t.get('predicted_lo'))}, {fmt(t.get('predicted_hi'))}]"
                      if t else "")
                rows.append(f"| {r['profile']} | {p['sessions']} | {pop} | "
                            f"{m['sessions']} | {fmt(m['turns_per_hour'])} | "
                            f"{fmt(t.get('predicted'))}{ci} | "
                            f"{fmt(m['attempt_429_fraction'], True)} | "
                            f"{fmt(f.get('predicted'), True)} |")
        if pops and r["points"]:
            rows.append(f"| {r['profile']} | {pops.get('n_counts')} | | | | | | |")
    return rows if len(rows) > n else []


def _routing_predicted(p: dict, key: str) -> str:
    """The simulator's routing figure at this N: mean [95 % CI], as a percentage."""
    e = ((p.get("predicted") or {}).get("routing") or {}).get(key)
    if not e:
        return "—"
    return f"{fmt(e['mean'], True)} [{fmt(e['lo'], True)}, {fmt(e['hi'], True)}]"


def fleet_table(runs: list[dict]) -> list[str]:
    """Routed profiles: spill and fallback fractions measured / predicted, and each
    deployment's share of the admitted calls measured / predicted."""
    rows = ["", "| profile | N | spill fraction measured | predicted [CI] | fallback "
            "fraction measured | predicted [CI] | admitted share by deployment "
            "measured / predicted | first deployment's spill share measured / simulated "
            "/ analytic |", "|---|---|---|---|---|---|---|---|"]
    n = len(rows)
    for r in runs:
        an = r.get("analytic_fleet") or {}
        for p in r["points"]:
            deps = p["measured"].get("deployments")
            if not deps:
                continue
            total = sum(c["admitted"] for c in deps.values()) or 1
            pred = (p.get("predicted") or {}).get("deployments") or {}
            shares = ", ".join(
                f"{d} {100 * c['admitted'] / total:.1f}% / "
                f"{fmt((pred.get(d) or {}).get('share', {}).get('mean'), True)}"
                for d, c in sorted(deps.items()))
            m = p["measured"]["metrics"]
            firsts = []
            for first, by_n in (an.get("first") or {}).items():
                c = deps.get(first) or {}
                meas = c["spilled"] / c["sent"] if c.get("sent") else None
                sim = ((pred.get(first) or {}).get("spill_fraction") or {}).get("mean")
                firsts.append(f"{first} {fmt(meas, True)} / {fmt(sim, True)} / "
                              f"{fmt(by_n.get(str(p['sessions'])), True)}")
            rows.append(f"| {r['profile']} | {p['sessions']} | "
                        f"{fmt(m.get('spill_fraction'), True)} | "
                        f"{_routing_predicted(p, 'spill_fraction')} | "
                        f"{fmt(m.get('fallback_fraction'), True)} | "
                        f"{_routing_predicted(p, 'fallback_fraction')} | {shares} | "
                        f"{', '.join(firsts) or '—'} |")
        if an.get("n_star") is not None and r["points"] and \
                r["points"][0]["measured"].get("deployments"):
            rows.append(f"| {r['profile']} | analytic burst-aware N* = {an['n_star']} | | | "
                        "| | | |")
    return rows if len(rows) > n else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="")
    ap.add_argument("--duration", default="10m")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "validate_loadtest.md"))
    ap.add_argument("--fleet-n", type=int, default=100,
                    help="grid centre for a profile no model can predict yet")
    ap.add_argument("--route", choices=("client", "gateway"), default="client",
                    help="fleet profiles: the load generator routes, or the mock does")
    ap.add_argument("--time-scale", type=float, default=None,
                    help="K for every profile (default: the per-profile table)")
    ap.add_argument("--set", action="append", default=[], dest="overrides",
                    help="key=value override for every profile (repeatable)")
    ap.add_argument("--populations", action="store_true",
                    help="add web-research + the populations overlay, 10 held batch "
                    "sessions")
    a = ap.parse_args()
    paths: list[list[Path]] = [[Path(f) for f in p.split("+")]
                               for p in a.profiles.split(",") if p] if a.profiles else (
        [] if a.populations else [[f] for f in sorted((ROOT / "profiles").glob("*.yaml"))])
    jobs = [(p, tuple(a.overrides)) for p in paths]
    if a.populations:
        jobs.append(([Path(f) for f in POPULATIONS.split("+")],
                     tuple(a.overrides) + POPULATIONS_SET))
    runs = []
    for p, sets in jobs:
        runs.append(validate(p, parse_duration(a.duration), a.seed, a.replications,
                             a.fleet_n, a.route, a.time_scale, sets))
        # Written after every profile: a later failure does not lose the earlier runs.
        md = table(runs)
        Path(a.out).write_text(md)
        Path(a.out).with_suffix(".json").write_text(json.dumps(runs, indent=1))
    print(md)


if __name__ == "__main__":
    main()
