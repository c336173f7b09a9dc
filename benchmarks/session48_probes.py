"""Session 48's probes (issue 13): a sliding log that logs every attempt spills by the
route's rate over a longer receiver's window.

Run from the repository root::

    python benchmarks/session48_probes.py local      # hunt-3008's spill, engine and model
    python benchmarks/session48_probes.py exp        # ... an exponential think time, shares
    python benchmarks/session48_probes.py storm      # hunt-3067's spill, engine and model
    python benchmarks/session48_probes.py loss-logs  # the local rate on loss logs: not kept
    python benchmarks/session48_probes.py subcritical  # hunt-3093: storms below N_u
    python benchmarks/session48_probes.py lock       # hunt-82's lock-in; hunt-3008's echo
    python benchmarks/session48_probes.py review     # a review's profiles: where it holds
    python benchmarks/session48_probes.py shared     # a quota two routes share

``local``: tests/data/counted-log-spill-long-receiver.yaml (hunt-3008: a 1 s RPM log
that logs every attempt, spilling into a 15 s fixed window) at 383 sessions with its
retries removed and the receiver's limits ten times over (so nothing it does feeds back):
the engine's calls per 15 s window at the log (``Y``) and spilled (``S``), one
replication of 1 h, seed 1 — the share spilled where ``Y`` is near its 10th, 50th and
90th percentiles, the slope of ``S`` on ``Y``, the spread of ``S`` and ``P(S > 51)``
(51: the receiver's real allowance), ``P(S > 70)``; beside them the log's model's own share
at the session counts whose mean count is those ``Y`` (``n·Y/E[Y]``), and the spilled
calls' law as the room law had it (``(Y − R)⁺``, ``fleet._LOCAL_RATE_SPAN`` infinite) and
by the local rate. Then the record's analytic N* by the room law and by the local rate.

``exp``: the same profile with an exponential think time of the same mean (its sdk
retries kept): the receiver's largest share of attempts answered 429 by the room law and
by the local rate, and the engine's share of attempts (4 × 1 h, seed 1), at 370, 400 and
430 sessions (the target 3 %); the analytic N* by each and the simulated search's.
Then the record itself at 383 sessions: the attempts a 15 s window at the first log
without retries and with them (the engine, 1 h, seed 1).

``storm``: tests/data/fleet-counted-storm.yaml (hunt-3067: a 1 s log spilling fan-outs of
23 into a counted 30 s log) at 36 sessions, its receiver's limits ten times over: the
spilled calls a 30 s window, the engine's (1 h, seed 1) and the model's by the room law and
by the local rate taken everywhere (not shipped for fan-outs), mean, sd, P(S > x); the
record's analytic N* by each.

``loss-logs``: the local rate applied to logs that keep only what they admitted too, where
it applies to counted ones (a wrapper of ``fleet._sliding_spill``, not shipped): hunt-196,
-200 and -1072's analytic N*.

``subcritical``: hunt-3093's RPM log alone (its TPM limit removed; 2 s, one backoff
retry) at 155 and 170 sessions: the engine's share of first attempts refused without the
retry and with it, and of retries (4 × 1 h, seed 1); the model's first-attempt and
attempt shares with the storms gated below ``N_u`` (shipped) and not, ``N_u`` and the
storm chain's size; then hunt-3093, -119 and -3056's analytic N* both ways.

``lock``: hunt-82 (fixed 30 s TPM windows, no retries, a 54.3 s fixed think time): the
simulated N* (20 × 1 h, seed 1) as is, with the think time uniform ±15 s, and with
``on_exhausted: continue``; the lag-one and lag-two correlations of its turns' starts a
30 s window at 156 sessions (1 h, seed 1). hunt-3008 without retries at 383 sessions:
the variance over the mean of its turns' starts a 15 s window with the think time fixed,
exponential, and fixed with a receiver that never refuses.

``review``: a review's profiles (session 48; tests/data/counted-log-spill-singles.yaml and
-fanouts.yaml, and variants of them): the analytic N* by the room law, as shipped, and
with the local rate taken everywhere (fan-outs and token buckets too), beside the
simulated search (20 × 1 h, seed 1).

``shared``: tests/data/fleet-shared-quota.yaml (quota q0 on route m's first deployment,
which spills on, and on route m2's only one): the engine's share of attempts answered 429
at 20 sessions (4 × 1 h, seed 1); the analytic N* with the spilling slot's held calls
(shipped), without them (``fleet._held_share`` 0: before) and with their 429s read from
the spilling model, which has no retries (``Entry.final`` None: d18504e), beside the
simulated search, as
is, without retries, and with route m not spilling at all; then ``capacity size`` at 20
sessions (the q0 limit it asks for) and the engine's share there (6 × 1 h, seed 1).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic import fleet  # noqa: E402
from capacity.analytic.fleet import FeedModel, fleet_models  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_DEP, T_T  # noqa: E402

PROFILE = ROOT / "tests" / "data" / "counted-log-spill-long-receiver.yaml"
SESSIONS = 383
WINDOW_S = 15.0


def variant(*, retries: bool = False, receiver_times: float = 10.0,
            exponential_think: bool = False) -> Profile:
    """The profile without retries (unless ``retries``), the receiver's limits times
    ``receiver_times``, the think time exponential of the same mean if asked."""
    data = yaml.safe_load(PROFILE.read_text())
    if not retries:
        data["retry"] = {"max_retries": 0}
    for dim in ("rpm", "tpm"):
        data["quotas"]["q1"][dim] *= receiver_times
    if exponential_think:
        data["session"]["think_time"] = {"exponential": {"mean": data["session"]["think_time"]}}
    return profile_from_dict(data)


def engine_counts(prof: Profile, n: int, hours: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(calls at the log, calls it spilled) per 15 s window of the receiver's clock, one
    replication (seed 1); the first and last windows, partly traced, dropped."""
    tr = trace_attempts(prof, n, horizon_s=3600.0 * hours, seed=1, max_attempts=5_000_000)
    r = tr.rows
    t = r[:, T_T] + tr.clock_offset_s
    win = np.floor(t / WINDOW_S).astype(np.int64)
    win -= win.min()

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(win[mask], minlength=int(win.max()) + 1)[1:-1].astype(float)

    return count(r[:, T_DEP] == 0), count(r[:, T_DEP] == 1)


def fed(prof: Profile, dim: str = "rpm") -> FeedModel:
    """The receiver's (q1) model of ``dim``: a :class:`FeedModel`."""
    wl = Workload.from_profile(prof)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == "q1" and e.c.dim == dim]
    assert isinstance(e.model, FeedModel)
    return e.model


def head(prof: Profile, dim: str = "rpm") -> Any:
    """The log's (q0) model of ``dim``."""
    wl = Workload.from_profile(prof)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == "q0" and e.c.dim == dim]
    return e.model


@contextmanager
def spill_rule(local: bool, everywhere: bool = False) -> Iterator[None]:
    """The room law (``local`` False) or the local rate (``everywhere``: into any
    receiver, whatever the route's launches)."""
    span, fits = fleet._LOCAL_RATE_SPAN, fleet._local_rate_fits
    fleet._LOCAL_RATE_SPAN = span if local else math.inf
    if everywhere:
        fleet._local_rate_fits = lambda dest, batch: True  # type: ignore[assignment]
    try:
        yield
    finally:
        fleet._LOCAL_RATE_SPAN, fleet._local_rate_fits = span, fits  # type: ignore[assignment]


def law_figures(pmf: np.ndarray, at: tuple[float, ...] = (51.0, 70.0)
                ) -> tuple[float, float, list[float]]:
    """(mean, sd, P(S > x) for x in ``at``) of a law of calls."""
    p = pmf / pmf.sum()
    k = np.arange(p.size, dtype=np.float64)
    mu = float(np.dot(k, p))
    return (mu, math.sqrt(max(float(np.dot(k * k, p)) - mu * mu, 0.0)),
            [float(p[k > x].sum()) for x in at])


def local() -> None:
    prof = variant()
    n = SESSIONS
    y, s = engine_counts(prof, n)
    slope = float(np.polyfit(y, s, 1)[0])
    print(f"engine, {n} sessions, no retries, the receiver never refusing (1 h, seed 1): "
          f"{y.mean():.1f} ± {y.std():.1f} calls a 15 s window at the log, "
          f"{s.mean():.1f} ± {s.std():.1f} spilled; slope {slope:.2f}")
    log = head(prof)
    for quant in (0.1, 0.5, 0.9):
        at = float(np.quantile(y, quant))
        near = np.abs(y - at) < 3.0
        m = max(1, round(n * at / y.mean()))
        print(f"  Y near {at:.0f}: the engine spills {s[near].sum() / y[near].sum():.1%}; "
              f"the log's model at {m} sessions {log.stats(m).loss_fraction:.1%}")
    mu, sd = float(s.mean()), float(s.std())
    tail = [float((s > x).mean()) for x in (51.0, 70.0)]
    print(f"  spilled: engine mean {mu:.1f}, sd {sd:.1f}, P(S > 51) {tail[0]:.3f}, "
          f"P(S > 70) {tail[1]:.3f}")
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            mu, sd, tail = law_figures(fed(prof).sources[0].calls(n))
        print(f"  spilled: {name:<10} mean {mu:.1f}, sd {sd:.1f}, P(S > 51) {tail[0]:.3f}, "
              f"P(S > 70) {tail[1]:.3f}")
    real = profile_from_dict(yaml.safe_load(PROFILE.read_text()))
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            print(f"hunt-3008's analytic N* by the {name}: {analyze(real).burst_ceiling} "
                  "(simulated 383 [378-387])")


def exp() -> None:
    prof = variant(retries=True, receiver_times=1.0, exponential_think=True)
    for n in (370, 400, 430):
        row = []
        for name, on in (("room law", False), ("local rate", True)):
            with spill_rule(on):
                res = analyze(prof, sessions=n)
            share = max(c.at_sessions.attempt_429_fraction for c in res.constraints
                        if c.quota == "q1" and c.at_sessions is not None)
            row.append(f"{name} {share:.2%}")
        e = simulate(prof, n, replications=4, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        print(f"{n}: {', '.join(row)}; engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}]")
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            print(f"analytic N* by the {name}: {analyze(prof).burst_ceiling}")
    sat = find_saturation(prof, 340, 420, seed=1, replications=20, max_sessions=1200)
    print(f"simulated N* {sat.n_star} [{sat.n_lo}-{sat.n_hi}] (20 × 1 h, seed 1)")
    for name, p in (("without retries", variant(receiver_times=1.0)),
                    ("with them", variant(retries=True, receiver_times=1.0))):
        y, _ = engine_counts(p, SESSIONS)
        print(f"the record at {SESSIONS} sessions {name}: {y.mean():.1f} attempts a 15 s "
              "window at the first log")


def storm() -> None:
    data = yaml.safe_load((ROOT / "tests" / "data" / "fleet-counted-storm.yaml").read_text())
    for dim in ("rpm", "tpm"):
        lim = data["quotas"]["q1"][dim]
        if isinstance(lim, dict):
            lim["limit"] *= 10
        else:
            data["quotas"]["q1"][dim] = lim * 10
    prof = profile_from_dict(data)
    n, at = 36, (180.0, 220.0, 265.0)
    tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, max_attempts=5_000_000)
    t = tr.rows[:, T_T] + tr.clock_offset_s
    win = np.floor(t / 30.0).astype(np.int64)
    win -= win.min()
    s = np.bincount(win[tr.rows[:, T_DEP] == 1], minlength=int(win.max()) + 1)[1:-1]
    print(f"hunt-3067 at {n} sessions, the receiver never refusing, spilled calls a 30 s "
          f"window: engine {s.mean():.1f} ± {s.std():.1f}, P(S > x) for x in {at}: "
          + ", ".join(f"{float((s > x).mean()):.4f}" for x in at))
    # (Its route fans out: the local rate is not shipped there — taken everywhere here.)
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on, everywhere=on):
            mu, sd, tail = law_figures(fed(prof).sources[0].calls(n), at)
        print(f"  {name:<10}: {mu:.1f} ± {sd:.1f}, " + ", ".join(f"{v:.4f}" for v in tail))
    real = profile_from_dict(yaml.safe_load(
        (ROOT / "tests" / "data" / "fleet-counted-storm.yaml").read_text()))
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on, everywhere=on):
            print(f"hunt-3067's analytic N* by the {name}: {analyze(real).burst_ceiling} "
                  "(simulated 36 [36-37])")


def _hunt(seed: int) -> dict[str, Any]:
    import random

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import hunt

    _, data = hunt.draw(seed)
    hunt._scale(data, random.Random(seed + 7_000_000))
    return data


def loss_logs() -> None:
    real = fleet._sliding_spill

    def also_loss_logs(model: Any, n: int, per_call: float, count: Any, k: float,
                       lone: bool, level: float | None = None, local: bool = False
                       ) -> np.ndarray:
        inner = model.inner
        if local and inner.loses and k >= fleet._LOCAL_RATE_SPAN \
                and fleet.room_share(inner, n, lone) is None:
            y = np.asarray(count.pmf(n), dtype=np.float64)
            return fleet._local_rate_spill(model, n, fleet._trim(y / float(y.sum())))
        return real(model, n, per_call, count, k, lone, level, local)

    for seed, sim in ((196, "49 [49-49]"), (200, "50 [47-53]"), (1072, "220 [219-221]")):
        prof = profile_from_dict(_hunt(seed))
        shipped = analyze(prof).burst_ceiling
        fleet._sliding_spill = also_loss_logs  # type: ignore[assignment]
        try:
            both = analyze(profile_from_dict(_hunt(seed))).burst_ceiling
        finally:
            fleet._sliding_spill = real  # type: ignore[assignment]
        print(f"hunt-{seed}: shipped {shipped}, the local rate on loss logs too {both} "
              f"(simulated {sim})")


@contextmanager
def storms_ungated() -> Iterator[None]:
    """A counted, retried sliding log's storms at any N (not gated below ``N_u``)."""
    from capacity.analytic import window

    real = window.ClumpWindowModel._storms

    def ungated(self: Any, n: int, healthy: dict[str, float], gate: bool = True
                ) -> dict[str, float]:
        return real(self, n, healthy, False)

    window.ClumpWindowModel._storms = ungated  # type: ignore[method-assign]
    try:
        yield
    finally:
        window.ClumpWindowModel._storms = real  # type: ignore[method-assign]


def subcritical() -> None:
    from capacity.analytic import window
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT

    data = _hunt(3093)
    del data["quotas"]["q0"]["tpm"]
    prof = profile_from_dict(data)
    bare = profile_from_dict({**data, "retry": {"max_retries": 0}})
    got: dict[str, Any] = {}
    real = window.ClumpWindowModel._storms

    def spy(self: Any, k: int, healthy: dict[str, float], gate: bool = True
            ) -> dict[str, float]:
        got["m"] = self
        return real(self, k, healthy, gate)

    for n in (155, 170):
        shares = []
        for p in (bare, prof):
            rows = np.concatenate([trace_attempts(p, n, horizon_s=3600.0, seed=1,
                                                  replication=r).rows for r in range(4)])
            a = rows[:, T_ATTEMPT]
            shares.append([1.0 - float(rows[a == k, T_ADMITTED].mean()) if (a == k).any()
                           else math.nan for k in (1, 2)])
        window.ClumpWindowModel._storms = spy  # type: ignore[method-assign]
        try:
            gated = analyze(prof, sessions=n).constraints[0].at_sessions
        finally:
            window.ClumpWindowModel._storms = real  # type: ignore[method-assign]
        with storms_ungated():
            free = analyze(prof, sessions=n).constraints[0].at_sessions
        m = got["m"]
        assert gated is not None and free is not None
        print(f"{n}: engine first attempts refused {shares[0][0]:.2%} without the retry, "
              f"{shares[1][0]:.2%} with it (retries {shares[1][1]:.1%}); model gated "
              f"{gated.call_429_fraction:.2%} (attempts {gated.attempt_429_fraction:.2%}), "
              f"ungated {free.call_429_fraction:.2%} ({free.attempt_429_fraction:.2%}); "
              f"N_u {m.storm_threshold():.1f}, storm size {m.storm_size(n):.1f} attempts")
    for seed, sim in ((3093, "154 [151-158]"), (119, "13 [12-14]"), (3056, "13 [7-24]")):
        shipped = analyze(profile_from_dict(_hunt(seed))).burst_ceiling
        with storms_ungated():
            free_n = analyze(profile_from_dict(_hunt(seed))).burst_ceiling
        print(f"hunt-{seed}: gated (shipped) {shipped}, ungated {free_n} (simulated {sim})")


def _turn_starts(prof: Profile, n: int, window_s: float) -> np.ndarray:
    """Turns started a window (1 h, seed 1): a routed profile's row whose turn's routing
    draw differs from its session's row before; an unrouted one's (one kind of turn)
    first attempts at its first step."""
    from capacity.sim.kernels import T_ATTEMPT, T_SESSION, T_SITE, T_TURN_U

    tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, max_attempts=5_000_000)
    r = tr.rows[np.lexsort((tr.rows[:, T_T], tr.rows[:, T_SESSION]))]
    if prof.routes:
        new = np.r_[True, (r[1:, T_SESSION] != r[:-1, T_SESSION])
                    | (r[1:, T_TURN_U] != r[:-1, T_TURN_U])]
    else:
        assert len(prof.session.turns) == 1
        new = (r[:, T_SITE] == 0) & (r[:, T_ATTEMPT] == 1)
    t = r[new, T_T] + tr.clock_offset_s
    win = np.floor(t / window_s).astype(np.int64)
    win -= win.min()
    return np.bincount(win, minlength=int(win.max()) + 1)[1:-1].astype(float)


def lock() -> None:
    data = _hunt(82)
    think = float(str(data["session"]["think_time"]).rstrip("s"))
    shapes = {
        "as is": data,
        "think time uniform ±15 s": {**data, "session": {
            **data["session"], "think_time": {"uniform": [f"{think - 15}s", f"{think + 15}s"]}}},
        "on_exhausted: continue": {**data, "retry": {
            **(data.get("retry") or {}), "on_exhausted": "continue"}},
    }
    for name, d in shapes.items():
        prof = profile_from_dict(d)
        a = analyze(prof).burst_ceiling
        sat = find_saturation(prof, int(0.75 * a), a + 10, seed=1, replications=20,
                              max_sessions=3000)
        print(f"hunt-82, {name}: analytic {a}, simulated {sat.n_star} "
              f"[{sat.n_lo}-{sat.n_hi}]")
    c = _turn_starts(profile_from_dict(data), 156, 30.0)
    print("  turns started a 30 s window at 156 sessions: correlation at lags 1, 2: "
          + ", ".join(f"{float(np.corrcoef(c[:-k], c[k:])[0, 1]):+.2f}" for k in (1, 2)))
    for name, p in (("fixed", variant(receiver_times=1.0)),
                    ("exponential", variant(receiver_times=1.0, exponential_think=True)),
                    ("fixed, the receiver never refusing", variant())):
        c = _turn_starts(p, SESSIONS, WINDOW_S)
        print(f"hunt-3008 without retries, think time {name}: turns started a 15 s window "
              f"{c.mean():.1f}, variance/mean {c.var() / c.mean():.2f}")


def review() -> None:
    data_dir = ROOT / "tests" / "data"
    singles = yaml.safe_load((data_dir / "counted-log-spill-singles.yaml").read_text())
    fanouts = yaml.safe_load((data_dir / "counted-log-spill-fanouts.yaml").read_text())

    def receiver(d: dict[str, Any], enforcement: dict[str, str]) -> dict[str, Any]:
        out = yaml.safe_load(yaml.safe_dump(d))
        out["quotas"]["q1"]["enforcement"] = enforcement
        return out

    cases = {
        "single calls, 5 s log -> 30 s fixed window": singles,
        "single calls, 5 s log -> 30 s sliding log": receiver(
            singles, {"type": "sliding_window", "window": "30s"}),
        "single calls, 5 s log -> 30 s token bucket": receiver(
            singles, {"type": "token_bucket", "burst": "30s"}),
        "fan-outs of 6, 2 s log -> 10 s fixed window": fanouts,
        "fan-outs of 6, 2 s log -> 10 s token bucket": receiver(
            fanouts, {"type": "token_bucket", "burst": "10s"}),
    }
    for name, d in cases.items():
        got = []
        for on, everywhere in ((False, False), (True, False), (True, True)):
            with spill_rule(on, everywhere):
                got.append(analyze(profile_from_dict(d)).burst_ceiling)
        prof = profile_from_dict(d)
        sat = find_saturation(prof, int(0.8 * min(got)), int(1.1 * max(got)) + 2, seed=1,
                              replications=20, max_sessions=5000)
        print(f"{name}: room law {got[0]}, shipped {got[1]}, the local rate everywhere "
              f"{got[2]}; simulated {sat.n_star} [{sat.n_lo}-{sat.n_hi}]")


def shared() -> None:
    path = ROOT / "tests" / "data" / "fleet-shared-quota.yaml"
    data = yaml.safe_load(path.read_text())
    e = simulate(profile_from_dict(data), 20, replications=4, seed=1, workers=2).metrics[
        "attempt_429_fraction"]
    print(f"engine at 20 sessions: {e.mean:.1%} of attempts answered 429")
    bare = yaml.safe_load(path.read_text())
    bare["retry"] = {"max_retries": 0}
    alone = yaml.safe_load(path.read_text())
    alone["routes"]["m"] = {"policy": "priority", "deployments": ["a"]}
    real, real_models = fleet._held_share, fleet.fleet_models
    for name, d in (("as is", data), ("without retries", bare),
                    ("route m not spilling", alone)):
        prof = profile_from_dict(d)
        shipped = analyze(prof).burst_ceiling
        fleet._held_share = lambda wl, flows, c: 0.0  # type: ignore[assignment]
        try:
            before = analyze(profile_from_dict(d)).burst_ceiling
        finally:
            fleet._held_share = real  # type: ignore[assignment]

        def spilling_model(wl: Any, cyc: Any) -> Any:
            fm = real_models(wl, cyc)
            for e in fm.entries:
                e.final = None  # the held calls read from the spilling model (d18504e)
            return fm

        fleet.fleet_models = spilling_model  # type: ignore[assignment]
        try:
            no_final = analyze(profile_from_dict(d)).burst_ceiling
        finally:
            fleet.fleet_models = real_models  # type: ignore[assignment]
        sat = find_saturation(prof, 1, max(shipped, 10) + 10, seed=1, replications=20,
                              max_sessions=500)
        print(f"{name}: analytic {shipped} (without the held calls {before}; their 429s "
              f"from the spilling model, no retries, {no_final}); simulated "
              f"{sat.n_star} [{sat.n_lo}-{sat.n_hi}]")
    from capacity.whatif.ceiling import size

    (d0,) = [d for d in size(profile_from_dict(data), 20).dimensions if d.quota == "q0"]
    raised = yaml.safe_load(path.read_text())
    raised["quotas"]["q0"]["rpm"] = d0.required_limit
    e = simulate(profile_from_dict(raised), 20, replications=6, seed=1, workers=2).metrics[
        "attempt_429_fraction"]
    print(f"capacity size at 20 sessions: q0.rpm {d0.current_limit:g} -> "
          f"{d0.required_limit:g} ({d0.sized_for}); the engine there {e.mean:.1%} "
          f"[{e.lo:.1%}-{e.hi:.1%}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("local", "exp", "storm", "loss-logs", "subcritical",
                                     "lock", "review", "shared"))
    {"local": local, "exp": exp, "storm": storm, "loss-logs": loss_logs,
     "subcritical": subcritical, "lock": lock, "review": review,
     "shared": shared}[ap.parse_args().what]()


if __name__ == "__main__":
    main()
