"""Session 45's probes (issue 13).

    python benchmarks/session45_probes.py clumps    # a loss log admitting clumps in part
    python benchmarks/session45_probes.py bunch     # a spilled bunch into a short loss log
    python benchmarks/session45_probes.py apart     # ITPM and OTPM over one sliding log
    python benchmarks/session45_probes.py spread    # a fixed think time's sessions spread
    python benchmarks/session45_probes.py head      # a counted request head far over
    python benchmarks/session45_probes.py cost      # a deep bucket's launch sums by FFT
    python benchmarks/session45_probes.py variants [--fleet] [--minutes M]
                                                    # the hunt's records without retries

``clumps``: tests/data/sliding-loss-mixed-clumps.yaml (hunt-32 without retries) at 78
sessions: the Palm share ``p``, the knapsack's ``p_cb``, Key's displacement ``d`` with a
slot the mean clump and the clump a unit comes in, the answer each gives; a replay of the
log with Poisson turn starts (its first call, then its fan-out ~0.7 s later; seeds 1–5,
20 h each); the engine (8 replications, seed 1).

``bunch``: tests/data/sliding-spill-bunch-into-short-log.yaml (hunt-2030 without retries)
at 9, 10 and 12 sessions: the receiver's share of the route's calls, the model's and the
engine's (20 replications, seed 1), and the first deployment's share turned away.

``apart``: tests/data/itpm-otpm-sliding-apart.yaml (hunt-2024 without retries) at 7, 8
and 9 sessions: each dimension's share, their sum and the engine's (20 replications);
the same for tests/data/sliding-mixed-charges.yaml (hunt-099) at 280 and 300 sessions
without retries, with three backoff retries and as it is (8 replications), and hunt-84
without retries at 20 and 22 sessions (20 replications); then the N* of those profiles,
of hunt-2024 and of hunt-98 with one quota's equal-length sliding logs counted by the
larger (as shipped) and split by their correlation as fixed windows are (the reverted
trial: ``same_bursts`` patched to call them fixed windows).

``spread``: hunt-178 (a fixed 160.2 s think time, one call a turn, a 5 s TPM log, backoff
retries) at 90 sessions: the engine's first attempts refused per hour over three hours
(replication 1, seed 1), and the law of the admitted calls a first attempt finds in its
trailing window against the Poisson law of the same mean; then a birth–death chain of
that count (sessions drifting in and out by the turn latency's jitter, a refused one
leaving at ``phi`` times that chance) at phi 1 and 20.

``head``: hunt-3067 without retries at 49 sessions: the share its counted 1 s request
head turns away (spills), the model's and the engine's (10 replications).

``cost``: the analytic compute of hunt-2043 and hunt-3064 without retries (best of two,
one BLAS thread; their deep TPM buckets' launch sums).

``variants``: every hunt record with retries and a simulated N* of 5–300 (``--fleet``:
the fleets, up to 400), its retries removed: the analytic N* against the simulated one
(10 replications, seed 1) and the target's verdict.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

import numpy as np  # noqa: E402

from capacity.analytic import window  # noqa: E402
from capacity.analytic.model import analyze, constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T  # noqa: E402

DATA = ROOT / "tests" / "data"


def _shares(prof: Profile, n: int) -> dict[str, float]:
    return {c.name: float(c.at_sessions.loss_fraction)
            for c in analyze(prof, sessions=n).constraints if c.at_sessions is not None}


def _replay_mixed_clumps(lam: float, hours: float, seed: int) -> float:
    """The share of calls a 1 s log of 99,589,814 TPM turns away: Poisson turns at
    ``lam`` a second, each a lognormal 3,935-token call then (0.22–0.79 s + 11/60 s
    later) a fan-out of 5, 28, 35 or 39 calls of U(4,958, 14,875) + U(341, 1,023) tokens
    — hunt-32's turn; what the log refuses is never logged."""
    rng = np.random.default_rng(seed)
    q = 99_589_814 / 60.0
    horizon = 3600.0 * hours
    starts = np.sort(rng.uniform(0.0, horizon, rng.poisson(lam * horizon)))
    sizes = np.array([5, 28, 35, 39])
    weights = np.array([0.768, 0.17, 0.059, 0.744])
    weights = weights / weights.sum()
    sigma = math.log(2.0) / 1.6448536
    events: list[tuple[float, list[float]]] = []
    for t in starts:
        events.append((t, [float(np.exp(np.log(3935.0) + sigma * rng.standard_normal()))
                           + 11.0]))
        k = int(rng.choice(sizes, p=weights))
        events.append((t + rng.uniform(0.22, 0.79) + 11.0 / 60.0,
                       list(rng.uniform(4958, 14875, k) + rng.uniform(341, 1023, k))))
    events.sort(key=lambda e: e[0])
    log: deque[tuple[float, float]] = deque()
    held = 0.0
    calls = refused = 0
    for t, charges in events:
        while log and log[0][0] <= t - 1.0:
            held -= log.popleft()[1]
        for c in charges:
            calls += 1
            if held + c <= q:
                held += c
                log.append((t, c))
            else:
                refused += 1
    return refused / calls


def clumps() -> None:
    prof = load_profile(DATA / "sliding-loss-mixed-clumps.yaml")
    wl = Workload.from_profile(prof)
    inner = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    got: dict[str, float] = {}
    real = window.ClumpWindowModel._partial_admission

    def spy(self: Any, free: Any, q: int, p: float, p_units: float | None = None,
            low: Any = None) -> float:
        f = self.clump_pmf
        kf = np.arange(f.size, dtype=np.float64)
        k = np.arange(free.size, dtype=np.float64)
        e_s = float(k @ free)
        head = free if low is None else low

        def p_cb(top: int) -> float:
            return 1.0 - float(k[: top + 1] @ head[: top + 1]) / float(
                head[: top + 1].sum()) / e_s

        pu = p if p_units is None else p_units
        for name, x in (("mean clump", float(kf @ f)),
                        ("clump a unit comes in", float((kf * kf) @ f / (kf @ f)))):
            d = min(1.0, p_cb(q) / p_cb(q - round(x)))
            got[name] = p * (pu + d * (p_cb(q) - pu)) / pu
            print(f"  slot the {name}: {x:.0f} lattice units, d {d:.3f}, "
                  f"share {got[name]:.3%}")
        print(f"  Palm p {p:.3%}, knapsack p_cb {p_cb(q):.3%}")
        return real(self, free, q, p, p_units, low)

    window.ClumpWindowModel._partial_admission = spy  # type: ignore[method-assign]
    try:
        share = inner._sliding_h(78, 0.0)
    finally:
        window.ClumpWindowModel._partial_admission = real  # type: ignore[method-assign]
    print(f"78 sessions: the model {share:.3%}")
    turns = 78 / cycle_time(wl).cycle_s
    replays = " ".join(f"{_replay_mixed_clumps(turns, 20.0, seed):.3%}" for seed in range(1, 6))
    print(f"  replays, Poisson turns at {turns:.3f}/s (20 h, seeds 1-5): {replays}")
    e = simulate(prof, 78, replications=8, seed=1).metrics["attempt_429_fraction"]
    print(f"  engine (8 × 1 h, seed 1): {e.mean:.3%} [{e.lo:.3%}–{e.hi:.3%}]")
    print(f"analytic N* {analyze(prof).burst_ceiling}")


def bunch() -> None:
    prof = load_profile(DATA / "sliding-spill-bunch-into-short-log.yaml")
    print(f"analytic N* {analyze(prof).burst_ceiling}")
    for n in (9, 10, 12):
        s = _shares(prof, n)
        r = simulate(prof, n, replications=20, seed=1, workers=2)
        a, b = r.deployments["a"], r.deployments["b"]
        print(f"{n} sessions: receiver (b) model {max(s['q1.itpm'], s['q1.otpm']):.3%} of "
              f"the route's calls, engine {r.metrics['attempt_429_fraction'].mean:.3%} "
              f"(b turns away {b.reject_fraction.mean:.1%} of what reaches it); a spills "
              f"model {s['q0.itpm']:.2%} ITPM / {s['q0.otpm']:.2%} OTPM, engine "
              f"{a.reject_fraction.mean:.2%}", flush=True)


def _apart_rows(prof: Profile, ns: tuple[int, ...], reps: int) -> None:
    for n in ns:
        s = _shares(prof, n)
        e = simulate(prof, n, replications=reps, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        print(f"  {n} sessions: " + ", ".join(f"{k} {v:.2%}" for k, v in s.items())
              + f", sum {sum(s.values()):.2%}; engine {e.mean:.2%} "
              f"[{e.lo:.2%}–{e.hi:.2%}]", flush=True)


def apart() -> None:
    import yaml

    from capacity.analytic import model

    apart_file = load_profile(DATA / "itpm-otpm-sliding-apart.yaml")
    print("hunt-2024 without retries (20 replications)")
    _apart_rows(apart_file, (7, 8, 9), 20)
    mixed = yaml.safe_load((DATA / "sliding-mixed-charges.yaml").read_text())
    for name, retry in (("without retries", {"max_retries": 0}),
                        ("three backoff retries", {"max_retries": 3,
                                                   "honour_retry_after": False}),
                        ("as it is", mixed["retry"])):
        print(f"hunt-099 {name} (8 replications)")
        _apart_rows(profile_from_dict({**mixed, "retry": retry}), (280, 300), 8)
    print("hunt-84 without retries (20 replications)")
    _apart_rows(_hunt_profile(84, {"max_retries": 0}), (20, 22), 20)
    profiles = {"hunt-2024 without retries": apart_file,
                "hunt-099": load_profile(DATA / "sliding-mixed-charges.yaml"),
                "hunt-2024": _hunt_profile(2024), "hunt-98": _hunt_profile(98)}
    larger = {k: analyze(p).burst_ceiling for k, p in profiles.items()}
    real = model.same_bursts

    def as_fixed(quota: str, enforcement: str, window_s: float | None
                 ) -> tuple[str, str, float | None]:
        return real(quota, "fixed_window" if enforcement == "sliding_window"
                    else enforcement, window_s)

    model.same_bursts = as_fixed  # type: ignore[assignment]
    try:
        split = {k: analyze(p).burst_ceiling for k, p in profiles.items()}
    finally:
        model.same_bursts = real  # type: ignore[assignment]
    for k in profiles:
        print(f"{k}: N* {larger[k]} by the larger, {split[k]} split")


def _hunt_profile(seed: int, retry: dict[str, Any] | None = None) -> Profile:
    import hunt

    _, data = hunt.draw(seed)
    hunt._scale(data, random.Random(seed + 7_000_000))
    if retry is not None:
        data["retry"] = retry
    return profile_from_dict(data)


def spread() -> None:
    prof = _hunt_profile(178)
    n = 90
    model = _shares(prof, n)["q0.tpm"]
    print(f"hunt-178 at {n} sessions: the model turns away {model:.2%} of attempts")
    tr = trace_attempts(prof, n, horizon_s=3 * 3600.0, seed=1, replication=0)
    rows = tr.rows
    t, admitted = rows[:, T_T], rows[:, T_ADMITTED] > 0
    first = rows[:, T_ATTEMPT] == 1
    t0 = float(t.min())
    for h in range(3):
        sel = first & (t >= t0 + 3600.0 * h) & (t < t0 + 3600.0 * (h + 1))
        print(f"  hour {h + 1}: first attempts refused {1.0 - admitted[sel].mean():.2%}")
    ta = np.sort(t[admitted])
    tf = t[first]
    seen = np.searchsorted(ta, tf, side="left") - np.searchsorted(ta, tf - 5.0, side="left")
    m = (n - 1) * 5.0 / cycle_time(Workload.from_profile(prof)).cycle_s
    hist = np.bincount(seen, minlength=10)[:10] / seen.size
    print(f"  admitted calls a first attempt finds in its 5 s: mean {seen.mean():.2f}, "
          f"variance {seen.var():.2f} (Poisson {m:.2f})")
    print("  | found | " + " | ".join(str(k) for k in range(10)) + " |")
    print("  |---|" + "---|" * 10)
    print("  | engine | " + " | ".join(f"{x:.4f}" for x in hist) + " |")
    print("  | Poisson | " + " | ".join(
        f"{math.exp(-m) * m**k / math.factorial(k):.4f}" for k in range(10)) + " |")
    # A birth–death chain of the count: its call's charge input U(4,730, 14,191) +
    # max_tokens 4,096 tokens, the log's allowance 1,174,358/12 tokens; a refused
    # arrival with k others in the window r(k); sessions leave by the latency's jitter
    # (sd 0.307 s a cycle) at b = E|Δ|/w a cycle, a refused one at phi·r.
    h = 100.0
    charge = np.zeros(int(18287 / h) + 2)
    charge[int(8826 / h): int(18287 / h) + 1] = 1.0
    charge /= charge.sum()
    q = int(1174358 / 12 / h)
    powers = [np.ones(1)]
    for _ in range(16):
        powers.append(np.convolve(powers[-1], charge))

    def refused(k: int) -> float:
        return float(powers[k + 1][q + 1:].sum())

    b = 0.307 * math.sqrt(2.0 / math.pi) / 5.0
    for phi in (1.0, 20.0):
        w = [1.0]
        for i in range(1, 15):
            w.append(w[-1] * m / i * b / (b + refused(i - 1) * phi))
        share = sum(w[k] * refused(k) for k in range(15)) / sum(w)
        print(f"  birth–death chain, a refused session leaving at {phi:g}×: {share:.2%}")


def head() -> None:
    prof = _hunt_profile(3067, {"max_retries": 0})
    s = _shares(prof, 49)
    r = simulate(prof, 49, replications=10, seed=1, workers=2)
    print(f"hunt-3067 without retries at 49 sessions: its head spills {s['q0.rpm']:.1%} "
          f"(model, q0.rpm), the engine's head turns away "
          f"{r.deployments['a'].reject_fraction.mean:.1%}; the receiver q1.rpm / q1.tpm "
          f"{s['q1.rpm']:.2%} / {s['q1.tpm']:.2%} of the route's calls, the engine "
          f"{r.metrics['attempt_429_fraction'].mean:.1%} of attempts")


def cost() -> None:
    for seed in (2043, 3064):
        best = math.inf
        for _ in range(2):
            prof = _hunt_profile(seed, {"max_retries": 0})    # fresh: nothing kept
            t0 = time.process_time()
            n = analyze(prof).burst_ceiling
            best = min(best, time.process_time() - t0)
        print(f"hunt-{seed} without retries: N* {n}, {best:.2f} s", flush=True)


def variants(fleet: bool, minutes: float) -> None:
    import json

    from analytic_accuracy import meets_target

    from capacity.search import find_saturation

    recs = [json.loads(x) for x in (ROOT / "benchmarks" / "hunt" / "records.jsonl")
            .read_text().splitlines() if x.strip()]
    top = 400 if fleet else 300
    stop = time.time() + 60.0 * minutes
    out = opt = 0
    for r in recs:
        if time.time() > stop:
            print("(stopped: --minutes)")
            break
        if (r["fleet"] == "fleet") != fleet or r["retry"].startswith("none"):
            continue
        if r.get("simulated") is None or not 5 <= r["simulated"] <= top:
            continue
        prof = _hunt_profile(r["seed"], {"max_retries": 0})
        a = analyze(prof).burst_ceiling
        s = find_saturation(prof, max(1, math.floor(0.9 * a)), a + 2, seed=1,
                            replications=10, workers=2, max_sessions=max(4 * a, 20))
        ok = meets_target(a, s.n_star, s.n_lo, s.n_hi)
        err = (a - s.n_star) / s.n_star if s.n_star else math.nan
        out += not ok
        opt += (not ok) and err > 0.05
        print(f"seed {r['seed']} {r['family']} ({r['pace']}): analytic {a} vs {s.n_star} "
              f"[{s.n_lo}–{s.n_hi}] {err:+.1%}{'' if ok else ' OUT'}", flush=True)
    print(f"outside the target {out}, more than 5 % optimistic {opt}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("probe", choices=["clumps", "bunch", "apart", "spread", "head", "cost",
                                      "variants"])
    ap.add_argument("--fleet", action="store_true")
    ap.add_argument("--minutes", type=float, default=30.0)
    args = ap.parse_args()
    if args.probe == "variants":
        variants(args.fleet, args.minutes)
    else:
        {"clumps": clumps, "bunch": bunch, "apart": apart, "spread": spread, "head": head,
         "cost": cost}[args.probe]()


if __name__ == "__main__":
    main()
