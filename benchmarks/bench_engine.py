"""The compiled engine against the numba engine it replaced, a binary heap, and SimPy.

Run from the repository root (needs the dev extra: numba, simpy)::

    python benchmarks/bench_engine.py                    # everything (~5 min on 2 cores)
    python benchmarks/bench_engine.py --sizes 10 1000    # engine scaling only, fewer sizes
    python benchmarks/bench_engine.py --skip-scaling     # SimPy and search only
    python benchmarks/bench_engine.py --sizes 1000 1000000 --scaling-only  # scaling only
    python benchmarks/bench_engine.py --sizes 1000000 --scaling-only --huge-pages  # + THP use

What it prints (every ratio from timings taken in this one run, interleaved):

1. **Attempts per second per core** at 10, 1,000, 100,000 and 1,000,000 sessions: the
   old numba engine (``benchmarks/numba_engine/``, a copy of the kernels this change
   replaced), the C engine with its calendar queue, and the C engine with a binary heap
   (``queue=1``, the old engine's queue in the new loop). One replication, one thread,
   process CPU time, best of three runs at every size (the calendar's first, cold run is
   printed too: it pays the page faults a search's later replications do not); the quota
   is scaled with N so every size runs at the same utilisation. Every run simulates at
   least 4 million attempts and at least three mean session cycles (the shortest
   replication ``capacity`` runs: a warm-up of two cycles and a horizon of at least one),
   the same rule for every engine and size. The results of the three are compared bit for
   bit first. With ``--huge-pages`` (Linux), one
   more calendar run per size, untimed, reports how much of the process's resident memory
   the kernel backed with transparent huge pages, and how much of the regions that asked
   for them (the engine's big arrays: at 10^6 sessions every record an event touches is
   on another 4 kB page; in ``madvise`` mode nothing else is huge).
2. **Against SimPy**: the independent workload (1 → 3 → 1 calls, Exp(120 s) think time,
   500 RPM in fixed 10 s windows, no retries) written as SimPy's documentation writes
   models — a generator per session, ``env.timeout``, ``env.all_of`` for the fan-out, a
   plain function for the window — against ``simulate``; CPU time per simulated attempt
   and the 429 fraction both report (they should agree within their CIs).
3. **Evaluations per saturation search**: the bisection this change replaced
   (``benchmarks/numba_engine/search_bisect.py``) against ``find_saturation``, on the
   shipped profiles and the independent workload, with the CLI's bracket and settings;
   N* and its CI must be identical.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.profile.loader import load_profile  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim import engine as E  # noqa: E402
from capacity.sim._engine import replicate as c_replicate  # noqa: E402
from capacity.whatif.ceiling import ceiling  # noqa: E402

INDEPENDENT = ROOT / "benchmarks" / "independent.yaml"
CYCLES = 3.0  # mean session cycles a scaling run simulates at least (see scaling)
RUNS = 3  # timed runs per engine and size in scaling; the best is reported


# ---------------------------------------------------------------------------------------
# 1. Engine scaling
# ---------------------------------------------------------------------------------------


def _args(c: Any, n: int, t1: float) -> tuple[Any, ...]:
    rep_key, _, P, deficit, used = E._rep_setup(c, n, np.random.SeedSequence(11))
    return (n, int(rep_key), min(60.0, t1 / 2), t1, c.max_nodes, *c.program, *c.dists,
            c.site_dist, c.site_cached, c.site_maxtok, c.coef, P, c.cfg, deficit, used,
            np.zeros((0, 12 + len(c.slots))))


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def _same(old: Any, new: Any) -> bool:
    """Bit-identical outputs (counters, turn latencies, utilisation, windows exceeded).
    The C engine's counters grew the routing ones after the numba engine was retired;
    without routes they must be zero."""
    a, b = np.asarray(old[0]), np.asarray(new[0])
    return (np.array_equal(a, b[:len(a)]) and not b[len(a):].any()
            and all(np.array_equal(x, y) for x, y in zip(old[1:4], new[1:4], strict=True)))


def _resident() -> tuple[int, int, int, int]:
    """This process's resident memory and the part of it in transparent huge pages, kB,
    then the same two for the mappings asked for huge pages (MADV_HUGEPAGE: VmFlags 'hg',
    the engine's big arrays), from /proc/self/smaps; zeros where it is not available. The
    process-wide figures also count numba's and numpy's arrays and Python's heap, which
    nothing asks to be huge (this VM runs THP in 'madvise' mode)."""
    tot = [0, 0, 0, 0]
    rss = thp = 0
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss = int(rest.split()[0])
                elif key == "AnonHugePages":
                    thp = int(rest.split()[0])
                elif key == "VmFlags":  # a mapping's last field
                    tot[0] += rss
                    tot[1] += thp
                    if "hg" in rest.split():
                        tot[2] += rss
                        tot[3] += thp
                    rss = thp = 0
    except OSError:
        pass
    return tot[0], tot[1], tot[2], tot[3]


def _huge_pages(fn: Callable[[], Any]) -> tuple[int, list[int]]:
    """Run fn (untimed) sampling _resident() every 50 ms from a thread (the engine releases
    the GIL): resident before, and each of _resident()'s figures at its peak during it."""
    before = _resident()[0]
    peak = [0, 0, 0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for i, v in enumerate(_resident()):
                peak[i] = max(peak[i], v)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    return before, peak


def scaling(sizes: list[int], attempts: float, workload: str, huge: bool = False) -> None:
    from numba_engine import kernels as old  # compiled on first use (about 20 s)

    path, key, rpm, n_ref = {
        "independent": (INDEPENDENT, "q", 500.0, 155),
        "web-research": (ROOT / "profiles" / "web-research.yaml", "deployment", 150.0, 43),
    }[workload]
    print(f"\n## Attempts per second per core: {workload}, quota scaled with N "
          f"({rpm:g} RPM per {n_ref} sessions), one replication, one thread")
    print(f"{'sessions':>10} {'attempts':>11} {'numba (old)':>13} {'C, heap':>13} "
          f"{'C, calendar':>13} {'new/old':>8} {'calendar/heap':>14}  same results")
    per_attempt: dict[int, float] = {}
    per_attempt_first: dict[int, float] = {}
    for n in sizes:
        p = load_profile(path, [f"quotas.{key}.rpm={rpm * n / n_ref}"])
        c = E._compile(p)
        rate = n / c.mean_cycle_s * 5.0  # attempts per simulated second
        # At least `attempts` attempts and at least CYCLES mean session cycles: the shortest
        # replication capacity runs (two cycles of warm-up, a horizon of at least one), so
        # that at 10^6 sessions a run is not just every session's first turn.
        t1 = max(120.0, attempts / rate, CYCLES * c.mean_cycle_s)
        a = _args(c, n, t1)
        best = {"old": math.inf, "heap": math.inf, "cal": math.inf}
        first: dict[str, float] = {}
        outs: dict[str, Any] = {}
        # Best of RUNS at every size, interleaved so load on the machine hits all alike.
        # The calendar goes first, so its first run at a size is cold (the engine keeps
        # regions of 4 MB or more for the next replication in the process, as a search's
        # 20 replications per N take them); that run is printed too.
        for _ in range(RUNS):
            dt, outs["cal"] = _cpu(lambda a=a: c_replicate(*a, queue=0))
            best["cal"] = min(best["cal"], dt)
            first.setdefault("cal", dt)
            dt, outs["heap"] = _cpu(lambda a=a: c_replicate(*a, queue=1))
            best["heap"] = min(best["heap"], dt)
            dt, outs["old"] = _cpu(lambda a=a: old.replicate(
                a[0], np.uint64(a[1]), *a[2:5], *(x.copy() for x in a[5:-1]), a[-1]))
            best["old"] = min(best["old"], dt)
        same = all(_same(outs["old"], outs[k]) for k in ("heap", "cal"))
        n_att = outs["cal"][0][E.K_ATTEMPTS_ALL]
        ns = {k: v / n_att * 1e9 for k, v in best.items()}
        per_attempt[n] = ns["cal"]
        per_attempt_first[n] = first["cal"] / n_att * 1e9
        print(f"{n:>10,} {n_att:>11,.0f} {1e3 / ns['old']:>9.2f} M/s {1e3 / ns['heap']:>9.2f} M/s "
              f"{1e3 / ns['cal']:>9.2f} M/s {ns['old'] / ns['cal']:>7.2f}× "
              f"{ns['heap'] / ns['cal']:>13.2f}×  {'yes' if same else 'NO'}")
        print(f"{'':>10} {'ns/attempt':>11} {ns['old']:>13.0f} {ns['heap']:>13.0f} "
              f"{ns['cal']:>13.0f}   (calendar's first, cold run: "
              f"{per_attempt_first[n]:.0f} ns)")
        if huge:
            before, (rss, thp, rss_hg, thp_hg) = _huge_pages(lambda a=a: c_replicate(*a, queue=0))
            print(f"{'':>10} huge pages (C, calendar, one more run, untimed): {thp / 1024:,.0f} "
                  f"of {rss / 1024:,.0f} MB resident at peak, process-wide "
                  f"({before / 1024:,.0f} MB before it); in the regions asked for them "
                  f"(the engine's big arrays): {thp_hg / 1024:,.0f} of {rss_hg / 1024:,.0f} MB")
    if 1000 in per_attempt and max(per_attempt) > 1000:
        top = max(per_attempt)
        print(f"cost per attempt at {top:,} sessions / at 1,000 (new engine): "
              f"{per_attempt[top] / per_attempt[1000]:.2f} best of {RUNS}; first runs "
              f"{per_attempt_first[top] / per_attempt_first[1000]:.2f}")


# ---------------------------------------------------------------------------------------
# 2. SimPy, as its documentation writes a model
# ---------------------------------------------------------------------------------------


def simpy_independent(sessions: int, seed: int, warmup: float, horizon: float
                      ) -> tuple[int, int, int]:
    """One replication of the independent workload in SimPy: (attempts, rejected among
    measured attempts, measured attempts). Semantics as capacity.sim.engine: the window
    counter rejects past 83 requests per 10 s window (500 RPM), a rejected call fails (no
    retries); sessions start in steady state (the engine's rule), the provider's window
    phase is random; attempts of turns started in the measured interval are measured; a
    429 reaches the client 0.05 s later and ends the turn (the profile default
    ``on_exhausted: abort_turn``)."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    window, allowance, offset = 10.0, 500 * 10.0 / 60.0, rng.uniform(0, 10.0)
    state = {"window": -1, "count": 0.0, "attempts": 0, "rejected": 0, "measured": 0}
    latency = 0.5 + 100 / 50  # ttft + output tokens / tokens per second

    def admit(now: float) -> bool:
        k = math.floor((now + offset) / window)
        if k != state["window"]:
            state["window"], state["count"] = k, 0.0
        if state["count"] + 1 > allowance:
            return False
        state["count"] += 1
        return True

    def call(turn: dict[str, bool]) -> Generator[Any, Any, None]:
        state["attempts"] += 1
        ok = admit(env.now)
        if turn["measured"]:
            state["measured"] += 1
            state["rejected"] += not ok
        if ok:
            yield env.timeout(latency)
        else:  # the 429 reaches the client; no retries: the turn is aborted
            yield env.timeout(0.05)
            turn["aborted"] = True

    def session() -> Generator[Any, Any, None]:
        # Steady-state start (capacity.model.workload.steady_phase): mid-turn with
        # probability E[R]/(E[R] + E[Z]) (a turn is three stages of `latency`), then what
        # is left of a mean turn and a whole pause; else the pause's residual (memoryless).
        turn_mean = 3 * latency
        if rng.random() < turn_mean / (turn_mean + 120):
            yield env.timeout(rng.random() * turn_mean)
        yield env.timeout(rng.expovariate(1 / 120))
        while True:
            turn = {"measured": warmup <= env.now < warmup + horizon, "aborted": False}
            yield env.process(call(turn))
            if not turn["aborted"]:
                yield env.all_of([env.process(call(turn)) for _ in range(3)])
            if not turn["aborted"]:
                yield env.process(call(turn))
            yield env.timeout(rng.expovariate(1 / 120))

    for _ in range(sessions):
        env.process(session())
    env.run(until=warmup + horizon + 60.0)  # measured turns end within seconds
    return state["attempts"], state["rejected"], state["measured"]


def vs_simpy(sessions: int, replications: int, simpy_replications: int) -> None:
    import simpy

    p = load_profile(INDEPENDENT)
    warm, horizon = 240.0, 3600.0
    dt, res = _cpu(lambda: E.simulate(p, sessions, horizon_s=horizon, warmup_s=warm,
                                      replications=replications, seed=1, workers=1))
    eng_rate = res.attempts_simulated / dt
    fr: list[float] = []
    att = 0
    t = time.process_time()
    for r in range(simpy_replications):
        a, rej, meas = simpy_independent(sessions, 1000 + r, warm, horizon)
        att += a
        fr.append(rej / meas)
    sp_dt = time.process_time() - t
    sp_rate = att / sp_dt
    e = res.metrics["attempt_429_fraction"]
    se = statistics.stdev(fr) / math.sqrt(len(fr))
    print(f"\n## Against SimPy {simpy.__version__}: independent workload, N = {sessions}, "
          f"{horizon / 3600:g} h after {warm:g} s, one core (CPU time)")
    print(f"engine: {replications} replications, {res.attempts_simulated:,} attempts in "
          f"{dt:.3f} s = {eng_rate / 1e6:.2f} M attempts/s; {dt / replications * 1e3:.1f} ms "
          "per replication")
    print(f"SimPy:  {simpy_replications} replications, {att:,} attempts in {sp_dt:.2f} s = "
          f"{sp_rate / 1e3:.0f} k attempts/s; {sp_dt / simpy_replications * 1e3:.0f} ms per "
          "replication")
    print(f"ratio (attempts per CPU second): {eng_rate / sp_rate:.0f}×")
    print(f"429 fraction of attempts: engine {e.mean:.4f} ± {1.96 * e.stderr:.4f}, SimPy "
          f"{statistics.mean(fr):.4f} ± {1.96 * se:.4f}")


# ---------------------------------------------------------------------------------------
# 3. Evaluations per search
# ---------------------------------------------------------------------------------------


def searches(seeds: list[int]) -> None:
    from numba_engine.search_bisect import find_saturation as bisect

    print("\n## Saturation search: the bisection it replaced vs find_saturation (CLI bracket "
          "and settings: 20 replications × 1 h)")
    print(f"{'profile':<16} {'seed':>9} {'N* [CI]':>14} {'same':>5} {'N evaluated':>12} "
          f"{'replications':>13} {'CPU s':>12}")
    totals = [0, 0, 0, 0]
    cases: list[tuple[str, Profile]] = [
        (name, load_profile(ROOT / "profiles" / f"{name}.yaml"))
        for name in ("web-research", "tool-agent", "chat-assistant")]
    cases.append(("independent", load_profile(INDEPENDENT)))
    for name, p in cases:
        an = ceiling(p, "analytic")
        lo = max(1, an.burst_ceiling)
        hi = max(lo + 1, math.floor(an.mean_ceiling + 1e-9) + 1)
        cap = max(hi, math.floor(an.mean_ceiling / (1.0 - p.targets.max_429_fraction)) + 1)
        for seed in seeds:
            kw: dict[str, Any] = {"horizon_s": 3600.0, "replications": 20, "seed": seed,
                                  "max_sessions": cap}
            t_old, old = _cpu(lambda: bisect(p, lo, hi, **kw))  # noqa: B023
            t_new, new = _cpu(lambda: find_saturation(p, lo, hi, **kw))  # noqa: B023
            same = (old.n_star, old.n_lo, old.n_hi) == (new.n_star, new.n_lo, new.n_hi)
            n_old, n_new = len(old.evaluations), len(new.evaluations) + len(new.probes)
            r_old, r_new = 20 * len(old.evaluations), new.replications_simulated
            totals = [totals[0] + n_old, totals[1] + n_new, totals[2] + r_old,
                      totals[3] + r_new]
            print(f"{name:<16} {seed:>9} {f'{new.n_star} [{new.n_lo}, {new.n_hi}]':>14} "
                  f"{'yes' if same else 'NO':>5} {n_old:>5} → {n_new:<4} {r_old:>5} → "
                  f"{r_new:<5} {t_old:>5.2f} → {t_new:<5.2f}")
    print(f"{'all':<16} {'':>9} {'':>14} {'':>5} {totals[0]:>5} → {totals[1]:<4} "
          f"{totals[2]:>5} → {totals[3]:<5}  (N evaluated includes the cheap probes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*",
                    default=[10, 1000, 100_000, 1_000_000])
    ap.add_argument("--attempts", type=float, default=4e6,
                    help="simulated attempts per engine run (default 4 million)")
    ap.add_argument("--workloads", nargs="*", default=["independent", "web-research"])
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--scaling-only", action="store_true",
                    help="engine scaling only (no SimPy comparison, no searches)")
    ap.add_argument("--huge-pages", action="store_true",
                    help="report the engine's use of transparent huge pages (Linux; an "
                         "untimed run per size)")
    ap.add_argument("--simpy-sessions", type=int, default=155)
    ap.add_argument("--simpy-replications", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 20240501])
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"# Engine benchmark ({os.cpu_count()} CPUs, load average {load:.1f} at start, "
          f"numpy {np.__version__})")
    if not args.skip_scaling:
        for w in args.workloads:
            scaling(args.sizes, args.attempts, w, args.huge_pages)
    if not args.scaling_only:
        vs_simpy(args.simpy_sessions, 20, args.simpy_replications)
        searches(args.seeds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"\nload average at the end: {load:.1f}")


if __name__ == "__main__":
    main()
