"""Session 61's probe (issue 13): the issue's own 1 → 3 → 1 workload with a *fixed*
think time, where the sessions fall into step.

Run from the repository root::

    python benchmarks/session61_probes.py lockstep     # ~5 s
    python benchmarks/session61_probes.py windows      # ~1 s
    python benchmarks/session61_probes.py thinks       # ~5 s
    python benchmarks/session61_probes.py fleet        # ~20 s
    python benchmarks/session61_probes.py told         # ~30 s
    python benchmarks/session61_probes.py simpy        # ~1 min
    python benchmarks/session61_probes.py deepback     # ~5 s
    python benchmarks/session61_probes.py grid         # ~40 s

``lockstep``: the 1 → 3 → 1 turn of ``benchmarks/analytic_accuracy.py`` (500 RPM in
fixed windows of 60 s, 10 s and 1 s; with the default two retries and without any) with
its Exp(120 s) think time and with a fixed 120 s one: the analytic N* against the
simulated N* [95 % CI] as ``capacity ceiling --seed 1`` searches for it (20
replications × 1 h).

``windows``: the fixed 120 s think time at 60 s windows without retries, 230 sessions
(seed 1): each replication's share of attempts refused by 5-minute block, then for the
replication that locks, the calls offered and admitted in each window of its last 20
minutes — the sessions in a few herds, sparse windows between them.

``thinks``: the same turn at 60 s windows without retries, with fixed think times from
60 s to 240 s and two uniform ones about 120 s: the analytic N* against the simulated one
(seed 1, 20 replications), and whether the answer carries the phase-lock note —
optimistic at every fixed think time, not only where the cycle resonates with the window.

``fleet``: hunt-4091 (priority routing with spillover from a sliding 60 s RPM log, ``a``,
to fixed 1 s windows, ``b``; Exp(173.6 s) think time; SDK retries; 7.5–8 % optimistic)
at 235 sessions, as drawn, without retries, and with ``b`` unlimited (nothing refused
there, so nothing retried): the model's 429 share of attempts and spill share, and the
engine's (4 replications × 1 h, seed 1) — its 429 share, ``a``'s first attempts spilled,
``b``'s attempts refused and the calls ``b`` turns away per second (its 1 s window).

``told``: hunt-5006 (one call a launch at a 311 RPM token bucket 2 s deep that counts its
refusals, five retries that wait the retry-after, Exp(40 s) think time; 39 against a
simulated 36 [34–36]) at 36 and 40 sessions: the model's shares (fresh calls refused,
attempts refused, calls failed) and the engine's (8 replications × 1 h, seed 1) — fresh
calls refused, attempts refused, and the share of each retry refused again. A refused
attempt is told the time its request would fit as the bucket stood, then its counted
refusal takes the part of a request that is there: the retry that waits exactly that
long finds the bucket short again, and the next. The first refusals of one call, as the
engine made them (replication 0, 40 sessions): each attempt's time after the first,
the retry-after it was told, and whether it was admitted.

``simpy``: tests/data/one-three-one-fixed-think.yaml at 200 and 230 sessions, each
replication's share of attempts refused (6 × 1 h after the engine's warm-up, seed 1) in
the engine and in ``benchmarks/bench_simulate.py``'s SimPy model (same rules, its own
code and random numbers) — with the steady-state start both use, and with the SimPy
model's old start (every session's first turn after a residual of the pause alone, so
no first turn in the last 33 s of the 153 s cycle).

``deepback``: tests/data/bucket-deep-backoff-131.yaml (the 1 → 3 → 1 turn, 500 RPM as a
token bucket 10 s deep, the SDK's backoff retries not waiting for the retry-after): the
simulated N* searched again (seed 2, 40 replications), then at 236, 242 and 248 sessions
the deep bucket's retry chain (a first retry's chance to be refused again, the fresh
calls' push), the model's shares (fresh calls refused, attempts refused; fresh refused without
retries) and the engine's (8 replications × 1 h after the warm-up, seed 2: fresh,
attempts, first retries refused again; fresh without retries).

``grid``: plain variants of the 1 → 3 → 1 turn — fixed 60 s / 10 s / 1 s windows,
sliding 60 s / 10 s logs, buckets 10 s / 60 s deep; 500 RPM, 1.5M TPM, or 2.5M TPM
reserving max_tokens; the SDK's retries, backoff ones (the retry-after not waited for)
or none; Exp(120 s) or Exp(60 s) think time — each analytic N* against the simulated one
(seed 1, 20 replications) and the accuracy table's rule.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _profile(window: str, retries: bool, think: Any) -> Any:
    from analytic_accuracy import dag_profile

    from capacity.profile.loader import profile_from_dict

    base = dag_profile("one-three-one", {"rpm": 500, "enforcement": {
        "type": "fixed_window", "window": window}}, None if retries else {"max_retries": 0})
    data = base.model_dump(mode="json", exclude_none=True)
    data["session"]["think_time"] = think
    return profile_from_dict(data)


def lockstep() -> None:
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    print("| windows | retries | think time | analytic N* | simulated N* [95% CI] |")
    print("|---|---|---|---|---|")
    for window in ("60s", "10s", "1s"):
        for retries in (True, False):
            for think in ({"exponential": "120s"}, "120s"):
                prof = _profile(window, retries, think)
                res = analyze(prof)
                n = res.burst_ceiling
                sat = find_saturation(prof, max(1, int(n * 0.8)), int(n * 1.1) + 1, seed=1,
                                      replications=20,
                                      max_sessions=int(res.mean_ceiling * 1.1) + 1)
                kind = "Exp(120 s)" if isinstance(think, dict) else "fixed 120 s"
                print(f"| {window} | {'2' if retries else 'none'} | {kind} | {n} | "
                      f"{sat.n_star} [{sat.n_lo}–{sat.n_hi}] |", flush=True)


def thinks() -> None:
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    print("| think time | analytic N* | simulated N* [95% CI] | error | note |")
    print("|---|---|---|---|---|")
    spread: list[Any] = [{"uniform": ["90s", "150s"]}, {"uniform": ["60s", "180s"]}]
    for think in ["60s", "90s", "120s", "150s", "180s", "240s", *spread]:
        prof = _profile("60s", False, think)
        res = analyze(prof)
        n = res.burst_ceiling
        sat = find_saturation(prof, max(1, int(n * 0.7)), int(n * 1.1) + 1, seed=1,
                              replications=20, max_sessions=int(res.mean_ceiling * 1.1) + 1)
        label = (f"fixed {think}" if isinstance(think, str)
                 else "U({}, {})".format(*think["uniform"]))
        noted = any("fall into step" in x for x in res.notes)
        print(f"| {label} | {n} | {sat.n_star} [{sat.n_lo}–{sat.n_hi}] | "
              f"{100.0 * (n / sat.n_star - 1.0):+.1f}% | {'yes' if noted else 'no'} |",
              flush=True)


def fleet() -> None:
    import numpy as np
    import yaml

    from capacity.profile.loader import profile_from_dict
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_DEP, T_T
    from capacity.whatif.sweep import sweep

    base = yaml.safe_load((ROOT / "benchmarks" / "hunt" / "profiles"
                           / "hunt-4091.yaml").read_text())
    none = {**base, "retry": {"max_retries": 0}}
    wide = yaml.safe_load(yaml.safe_dump(base))
    wide["quotas"]["q1"].update(rpm=100_000, tpm=1_000_000_000)
    print("| hunt-4091 at 235 | model 429 | model spill | engine 429 | a spilled | "
          "b refused | b turns away a second |")
    print("|---|---|---|---|---|---|---|")
    for label, data in (("as drawn (SDK retries)", base), ("no retries", none),
                        ("b unlimited", wide)):
        prof = profile_from_dict(data)
        row = sweep(prof, [235], method="both", seed=1, replications=4).rows[0]
        a_first = a_spilled = b_made = b_refused = 0
        turned: list[float] = []
        for rep in range(4):
            tr = trace_attempts(prof, 235, horizon_s=3600.0, seed=1, replication=rep)
            r = tr.rows
            ok = r[:, T_ADMITTED] == 1
            first = (r[:, T_DEP] == 0) & (r[:, T_ATTEMPT] == 1)
            on_b = r[:, T_DEP] == 1
            a_first += int(first.sum())
            a_spilled += int((first & ~ok).sum())
            b_made += int(on_b.sum())
            b_refused += int((on_b & ~ok).sum())
            span = int(np.ceil(r[:, T_T].max() - r[:, T_T].min()))
            turned.append(float((~ok[on_b]).sum()) / max(span, 1))
        print(f"| {label} | {100 * row.analytic_429_fraction:.2f} % | "
              f"{100 * sum((row.spill or {}).values()):.1f} % | "
              f"{100 * (row.simulated or {})['attempt_429_fraction'][0]:.2f} % | "
              f"{100 * a_spilled / max(a_first, 1):.1f} % | "
              f"{100 * b_refused / max(b_made, 1):.1f} % | {np.mean(turned):.3f} |", flush=True)


def told() -> None:
    import numpy as np
    import yaml

    from capacity.analytic import bucket
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import profile_from_dict
    from capacity.sim.engine import default_warmup, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_RETRY_AFTER, T_SESSION, T_T

    data = yaml.safe_load((ROOT / "benchmarks" / "hunt" / "profiles"
                           / "hunt-5006.yaml").read_text())

    def measured(p: Any, n: int, rep: int) -> Any:
        """One replication's attempts after its warm-up (the rows hold both)."""
        r = trace_attempts(p, n, horizon_s=3600.0, seed=1, replication=rep).rows
        return r[r[:, T_T] >= default_warmup(p)]

    prof = profile_from_dict(data)
    bare = profile_from_dict({**data, "retry": {**data["retry"], "max_retries": 0}})

    def model_of(p: Any) -> Any:
        wl = Workload.from_profile(p)
        (c,) = wl.constraints
        return constraint_model(wl, c, cycle_time(wl).cycle_s)

    model, model0 = model_of(prof), model_of(bare)
    # The retry model's own shares with Poisson launches at the sessions' rate, before
    # the sessions' pattern moves them (BucketChain._sessions_fresh's input).
    seen: dict[int, tuple[float, float]] = {}
    inner = bucket.BucketChain._sessions_fresh

    def spy(self: Any, out: dict[str, float], law: Any, n: int, lam: float
            ) -> dict[str, float]:
        seen[n] = (out["call"], self.poisson_share(lam))
        return inner(self, out, law, n, lam)

    bucket.BucketChain._sessions_fresh = spy  # type: ignore[method-assign]
    print("| sessions | model: fresh / attempts / failed | engine: fresh / attempts | "
          "engine: retry 1–5 refused again |")
    print("|---|---|---|---|")
    first = None
    fresh0: dict[int, tuple[float, float, float, float]] = {}
    for n in (36, 40):
        st = model.stats(n)
        rows0 = [measured(bare, n, rep) for rep in range(8)]
        eng0 = sum(int((r[:, T_ADMITTED] == 0).sum()) for r in rows0) / sum(
            r.shape[0] for r in rows0)
        fresh0[n] = (model0.stats(n).call_429_fraction, eng0, *seen.get(n, (0.0, 0.0)))
        made = np.zeros(7)
        refused = np.zeros(7)
        for rep in range(8):
            rows = measured(prof, n, rep)
            for a in range(1, 7):
                at = rows[:, T_ATTEMPT] == a
                made[a] += at.sum()
                refused[a] += (at & (rows[:, T_ADMITTED] == 0)).sum()
            if n == 40 and rep == 0:
                first = rows
        again = " ".join(f"{100 * refused[a] / max(made[a], 1):.1f}" for a in range(2, 7))
        print(f"| {n} | {100 * st.call_429_fraction:.2f} / {100 * st.loss_fraction:.2f} / "
              f"{100 * st.call_failure_fraction:.2f} % | "
              f"{100 * refused[1] / made[1]:.2f} / {100 * refused.sum() / made.sum():.2f} % "
              f"| {again} % |", flush=True)
    bucket.BucketChain._sessions_fresh = inner  # type: ignore[method-assign]
    print("\n| sessions | without retries: model / engine | Poisson launches: with / without "
          "retries |")
    print("|---|---|---|")
    for n, (m0, e0, pw, pn) in fresh0.items():
        print(f"| {n} | {100 * m0:.2f} / {100 * e0:.2f} % | {100 * pw:.4f} / {100 * pn:.4f} % |")
    assert first is not None
    i = int(np.flatnonzero((first[:, T_ATTEMPT] == 1) & (first[:, T_ADMITTED] == 0))[0])
    mine = first[first[:, T_SESSION] == first[i, T_SESSION]]
    mine = mine[(mine[:, T_T] >= first[i, T_T]) & (mine[:, T_T] < first[i, T_T] + 5.0)]
    print("a refused call at 40 sessions (bucket refill: one request in "
          f"{60.0 / 311:.3f} s): t − t₀ (s), retry-after told (s), admitted")
    for r in mine[:7]:
        print(f"  {r[T_T] - first[i, T_T]:.3f}  {r[T_RETRY_AFTER]:.3f}  {int(r[T_ADMITTED])}")


def simpy() -> None:
    import numpy as np
    from bench_simulate import SimPyModel

    from capacity.profile.loader import load_profile
    from capacity.sim.engine import default_warmup, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_T

    prof = load_profile(ROOT / "tests" / "data" / "one-three-one-fixed-think.yaml")
    warm = default_warmup(prof)
    for n in (200, 230):
        engine = []
        for rep in range(6):
            r = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep).rows
            r = r[r[:, T_T] >= warm]
            engine.append(100.0 * float((r[:, T_ADMITTED] == 0).mean()))
        print(f"{n} sessions, % of attempts refused by replication")
        print("  engine                  " + " ".join(f"{x:5.1f}" for x in engine))
        for label, pause in (("SimPy, steady start", False), ("SimPy, old start", True)):
            got = []
            for child in np.random.SeedSequence(1).spawn(6):
                t = SimPyModel(prof, n, child, warm, warm + 3600.0, pause_start=pause).run()
                got.append(100.0 * t.rejected / max(t.attempts, 1))
            print(f"  {label:22s}  " + " ".join(f"{x:5.1f}" for x in got), flush=True)


def deepback() -> None:
    import numpy as np

    from capacity.analytic.model import analyze, constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import load_profile
    from capacity.search import find_saturation
    from capacity.sim.engine import default_warmup, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T

    path = ROOT / "tests" / "data" / "bucket-deep-backoff-131.yaml"
    prof = load_profile(path)
    bare = load_profile(path, ["retry.max_retries=0"])
    n = analyze(prof).burst_ceiling
    sat = find_saturation(prof, int(n * 0.9), int(n * 1.1), seed=2, replications=40,
                          max_sessions=int(n * 1.5))
    print(f"analytic {n}; simulated (seed 2, 40 replications) {sat.n_star} "
          f"[{sat.n_lo}–{sat.n_hi}]")

    def model_of(p: Any) -> Any:
        wl = Workload.from_profile(p)
        (c,) = wl.constraints
        return constraint_model(wl, c, cycle_time(wl).cycle_s)

    def engine(p: Any, k: int) -> tuple[float, float, float]:
        made = np.zeros(3)
        refused = np.zeros(3)
        for rep in range(8):
            r = trace_attempts(p, k, horizon_s=3600.0, seed=2, replication=rep).rows
            r = r[r[:, T_T] >= default_warmup(p)]
            for a in (1, 2):
                at = r[:, T_ATTEMPT] == a
                made[a] += at.sum()
                refused[a] += (at & (r[:, T_ADMITTED] == 0)).sum()
            made[0] += r.shape[0]
            refused[0] += (r[:, T_ADMITTED] == 0).sum()
        return (100 * refused[1] / made[1], 100 * refused[0] / made[0],
                100 * refused[2] / max(made[2], 1))

    # What the deep bucket's retry chain says (DeepBucket._backoff_share's last pass at
    # each N): a first retry's chance to be refused again, and the fresh calls' push.
    from capacity.analytic import bucket

    said: dict[str, float] = {}
    chain, ratio = bucket._refused_chain, bucket.clustered_ratio

    def chain_spy(*a: Any, **k: Any) -> Any:
        out = chain(*a, **k)
        said["again"] = float(out[0, -1])      # the unit charge (a requests bucket)
        return out

    def ratio_spy(*a: Any, **k: Any) -> float:
        said["push"] = float(ratio(*a, **k))
        return said["push"]

    bucket._refused_chain, bucket.clustered_ratio = chain_spy, ratio_spy  # type: ignore
    model, model0 = model_of(prof), model_of(bare)
    pushes = {k: (model.stats(k), dict(said)) for k in (236, 242, 248)}
    bucket._refused_chain, bucket.clustered_ratio = chain, ratio  # type: ignore
    print("| sessions | model: first retries refused / fresh calls' push |")
    print("|---|---|")
    for k, (_, got) in pushes.items():
        print(f"| {k} | {100 * got.get('again', 0.0):.1f} % / ×{got.get('push', 1.0):.2f} |")
    print()
    print("| sessions | model: fresh / attempts / fresh without retries | engine: fresh / "
          "attempts / first retries refused / fresh without retries |")
    print("|---|---|---|")
    for k in (236, 242, 248):
        st, st0 = pushes[k][0], model0.stats(k)
        fresh, att, again = engine(prof, k)
        fresh0 = engine(bare, k)[0]
        print(f"| {k} | {100 * st.call_429_fraction:.3f} / {100 * st.loss_fraction:.3f} / "
              f"{100 * st0.call_429_fraction:.3f} % | {fresh:.3f} / {att:.3f} / {again:.1f} / "
              f"{fresh0:.3f} % |", flush=True)


# The grid's axes (``grid``; session62_probes.py's grid runs them on other turns).
GRID_ENFORCEMENTS: dict[str, dict[str, Any]] = {
    "fixed60": {"type": "fixed_window", "window": "60s"},
    "fixed10": {"type": "fixed_window", "window": "10s"},
    "fixed1": {"type": "fixed_window", "window": "1s"},
    "sliding60": {"type": "sliding_window", "window": "60s"},
    "sliding10": {"type": "sliding_window", "window": "10s"},
    "bucket10": {"type": "token_bucket", "burst": "10s"},
    "bucket60": {"type": "token_bucket", "burst": "60s"}}
GRID_LIMITS: dict[str, dict[str, Any]] = {
    "rpm": {"rpm": 500}, "tpm": {"tpm": 1_500_000},
    "tpm-max": {"tpm": 2_500_000, "charge_max_tokens": True}}
GRID_RETRIES: dict[str, dict[str, Any] | None] = {
    "sdk": None, "none": {"max_retries": 0}, "backoff": {"honour_retry_after": False}}


def grid_row(name: str, quota: dict[str, Any], retry: dict[str, Any] | None,
             think: Any, turns: dict[str, Any]) -> bool:
    """One grid variant — model ``m`` (TTFT U(0.4 s, 1.2 s), 40 tokens/s), one quota
    ``quota`` on it, ``retry`` (None: the profile default), ``think`` time, ``turns``
    — its analytic N* against the simulated one (seed 1, 20 replications), printed;
    True when it meets the target."""
    from analytic_accuracy import meets_target

    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict
    from capacity.search import find_saturation

    data: dict[str, Any] = {
        "name": name,
        "models": {"m": {"ttft": {"uniform": ["0.4s", "1.2s"]}, "tokens_per_second": 40}},
        "quotas": {"q": {"models": ["m"], **quota}},
        "session": {"think_time": think, "turns": turns},
        "targets": {"max_429_fraction": 0.01}}
    if retry is not None:
        data["retry"] = retry
    prof = profile_from_dict(data)
    res = analyze(prof)
    n = res.burst_ceiling
    sat = find_saturation(prof, max(1, int(n * 0.8)), int(n * 1.15) + 2, seed=1,
                          replications=20, max_sessions=int(res.mean_ceiling * 1.2) + 2)
    ok = meets_target(n, sat.n_star, sat.n_lo, sat.n_hi)
    err = 100.0 * (n / sat.n_star - 1.0) if sat.n_star else float("nan")
    print(f"{name:30s} analytic {n:4d}  simulated {sat.n_star:4d} "
          f"[{sat.n_lo}–{sat.n_hi}] {err:+6.1f}%{'' if ok else '  OUTSIDE'}", flush=True)
    return ok


def grid() -> None:
    import itertools

    from analytic_accuracy import _CALLS

    thinks = {"exp120": {"exponential": "120s"}, "exp60": {"exponential": "60s"}}
    turns = {"research": {"steps": [
        {"call": {"name": "analysis", **_CALLS["analysis"]}},
        {"parallel": {"count": 3, "call": {"name": "synthesis", **_CALLS["synthesis"]}}},
        {"call": {"name": "classifier", **_CALLS["classifier"]}}]}}
    outside = 0
    for (en, e), (dn, d), (rn, r), (tn, th) in itertools.product(
            GRID_ENFORCEMENTS.items(), GRID_LIMITS.items(), GRID_RETRIES.items(),
            thinks.items()):
        outside += not grid_row(f"{en}-{dn}-{rn}-{tn}", {**d, "enforcement": e}, r, th,
                                turns)
    print(f"outside the target: {outside}")


def windows() -> None:
    import numpy as np

    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_T

    prof = _profile("60s", False, "120s")
    locked = None
    for rep in range(3):
        tr = trace_attempts(prof, 230, horizon_s=3600.0, seed=1, replication=rep)
        t = tr.rows[:, T_T]
        refused = tr.rows[:, T_ADMITTED] == 0
        blocks = np.arange(t.min(), t.max(), 300.0)
        shares = [100.0 * float(refused[(t >= b) & (t < b + 300.0)].mean()) for b in blocks]
        print(f"replication {rep}: % refused by 5-minute block "
              + " ".join(f"{s:.1f}" for s in shares))
        if locked is None and shares[-1] > 10.0:
            locked = (rep, tr)
    if locked is None:
        return
    rep, tr = locked
    rows = tr.rows[tr.rows[:, T_T] >= tr.rows[:, T_T].max() - 1200.0]
    # The provider's windows: its clock at t is t + clock_offset_s.
    idx = np.floor((rows[:, T_T] + tr.clock_offset_s) / 60.0).astype(np.int64)
    idx -= idx.min()
    offered = np.bincount(idx)
    admitted = np.bincount(idx, weights=rows[:, T_ADMITTED]).astype(np.int64)
    print(f"replication {rep}, last 20 minutes, calls a 60 s window (allowance 500):")
    print("offered  " + " ".join(f"{x:4d}" for x in offered[1:-1]))
    print("admitted " + " ".join(f"{x:4d}" for x in admitted[1:-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("probe", choices=["lockstep", "windows", "thinks", "fleet", "told",
                                      "simpy", "deepback", "grid"])
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    {"lockstep": lockstep, "windows": windows, "thinks": thinks, "fleet": fleet,
     "told": told, "simpy": simpy, "deepback": deepback, "grid": grid}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
