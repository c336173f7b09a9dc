"""Cross-check and speed of the Monte Carlo engine against a straightforward SimPy model.

Run from the repository root::

    python benchmarks/bench_simulate.py                 # all cross-checks and timings
    python benchmarks/bench_simulate.py --cases web-research:50 --simpy-replications 10

What it prints
--------------
1. Cross-check: the same scenario simulated by ``capacity.sim.engine`` (compiled event engine,
   counter-based random streams) and by the SimPy model below (one process per session,
   ``env.all_of`` for fan-out, the readable :class:`capacity.limits.Limiter` as a
   shared object that rejects, numpy ``Generator`` streams per session). The two use
   different random numbers, so they should agree within their confidence intervals.
2. Speed: wall time of both engines on one core, the ratio, and simulated call attempts
   per second.
3. A full saturation search on ``profiles/web-research.yaml`` (timed, warm cache) and the
   size of the simulation it runs.

The SimPy model implements the same semantics as :mod:`capacity.sim.engine` (see its module
docstring): turn mix, call / parallel / optional / repeat steps, latency ``ttft +
min(output, max_tokens)/tps``, think time or cadence, 429 after ``rejection_latency``,
retry-after or jittered exponential backoff, ``abort_turn`` / ``continue``, steady-state
start, measurement of turns started in ``[warm-up, warm-up + horizon)``. It does not model
client pacing (the benchmark scenario has none).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.limits.limiter import Limiter as ProviderLimiter  # noqa: E402
from capacity.model.dist import Distribution  # noqa: E402
from capacity.model.quota import charge_coefficients, limit_slots  # noqa: E402
from capacity.model.workload import steady_phase  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.profile.schema import (  # noqa: E402
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
)
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import (  # noqa: E402
    Estimate,
    _compile,
    _initial_use,
    default_warmup,
    simulate,
)
from capacity.sim.kernels import LimiterArrays  # noqa: E402

# ---------------------------------------------------------------------------------------
# The SimPy model
# ---------------------------------------------------------------------------------------


def residual(d: Distribution, rng: np.random.Generator) -> float:
    """Equilibrium residual of a pause: U times a length-biased draw."""
    u = rng.random()
    if d.kind == "fixed":
        return u * d.mean
    if d.kind == "uniform":
        a, b = d.params
        return u * math.sqrt(a * a + rng.random() * (b * b - a * a))
    if d.kind == "exponential":
        return float(rng.exponential(d.mean))
    if d.kind == "choice":
        w = np.asarray(d.values) * np.asarray(d.weights)
        return u * float(rng.choice(np.asarray(d.values), p=w / w.sum()))
    # lognormal: length-biasing shifts the log-mean by sigma^2
    sigma = math.log(d.params[1] / d.params[0]) / 1.6448536269514722
    return u * d.params[0] * math.exp(sigma * sigma + sigma * rng.standard_normal())


@dataclass
class Turn:
    """Flags of one running turn."""

    start: float
    measured: bool
    saw_429: bool = False
    failed: bool = False
    aborted: bool = False
    calls: int = 0
    attempts: int = 0
    rejected: int = 0
    calls_failed: int = 0


@dataclass
class Tally:
    """What one replication measured."""

    turns: int = 0
    turns_429: int = 0
    turns_failed: int = 0
    calls: int = 0
    calls_failed: int = 0
    attempts: int = 0
    rejected: int = 0
    good_window: int = 0
    turns_window: int = 0
    attempts_all: int = 0
    latencies: list[float] = field(default_factory=list)
    util: np.ndarray | None = None


class SimPyModel:
    """N sessions of ``profile`` in SimPy, one process per session."""

    def __init__(self, profile: Profile, sessions: int, child: np.random.SeedSequence,
                 t0: float, t1: float, pause_start: bool = False) -> None:
        self.p = profile
        self.env = simpy.Environment()
        self.t0, self.t1 = t0, t1
        clock_rng = np.random.default_rng(child.spawn(1)[0])
        self.slots = limit_slots(profile)
        clock = float(clock_rng.uniform(0, 86400))
        self.limiter = ProviderLimiter(self.slots, clock)
        # The engine's steady-state start of the limiter (same rule, own random number).
        c = _compile(profile)
        self.limiter.preload(*_initial_use(
            c, LimiterArrays.from_slots(self.slots, clock).params,
            float(clock_rng.uniform()), c.warm.start(sessions)))
        self.coef: dict[int, Any] = {}
        self.tally = Tally(util=np.zeros(len(self.slots)))
        self.open_measured = 0
        self.turns = list(profile.session.turns.values())
        # The steady-state start (THE rule, workload.steady_phase): mid-turn with chance
        # p_turn, else mid-pause. (A residual of the pause alone put every first turn of
        # a fixed 120 s pause after a 33 s turn into the first 120 s of the 153 s cycle:
        # the clump that starts the sessions' herds; session 61.)
        # (``pause_start``: the old rule, kept to show what the start does.)
        self.p_turn, _, self.turn_law = steady_phase(profile.session, profile)
        if pause_start:
            self.p_turn = 0.0
        w = np.array([t.weight for t in self.turns])
        self.turn_p = w / w.sum()
        for k, ss in enumerate(child.spawn(sessions + 1)[1:]):
            self.env.process(self.session(k, np.random.default_rng(ss)))

    def run(self) -> Tally:
        self.env.run(until=self.t1)
        while self.open_measured > 0:  # let every measured turn finish
            self.env.step()
        return self.tally

    # -- sessions and steps -------------------------------------------------------------
    def session(self, k: int, rng: np.random.Generator) -> Generator[Any, Any, None]:
        sess = self.p.session
        if self.p_turn > 0.0 and rng.random() < self.p_turn:  # (cadence: no draw)
            first = residual(self.turn_law, rng) + float(sess.pause.sample(rng, 1)[0])
        else:
            first = residual(sess.pause, rng)
        yield self.env.timeout(first)
        while True:
            start = self.env.now
            turn = Turn(start, self.t0 <= start < self.t1)
            self.open_measured += turn.measured
            pause = float(sess.pause.sample(rng, 1)[0])
            spec = self.turns[int(rng.choice(len(self.turns), p=self.turn_p))]
            yield from self.steps(spec.steps, turn, rng)
            end = self.env.now
            self.record(turn, end)
            nxt = end + pause if sess.mode == "think_time" else max(start + pause, end)
            yield self.env.timeout(nxt - end)

    def record(self, turn: Turn, end: float) -> None:
        t = self.tally
        if turn.measured:
            self.open_measured -= 1
            t.turns += 1
            t.turns_429 += turn.saw_429
            t.turns_failed += turn.failed
            t.calls += turn.calls
            t.calls_failed += turn.calls_failed
            t.attempts += turn.attempts
            t.rejected += turn.rejected
            t.latencies.append(end - turn.start)
        if self.t0 <= end < self.t1:
            t.turns_window += 1

    def steps(self, steps: Any, turn: Turn, rng: np.random.Generator) -> Generator[Any, Any,
                                                                                    None]:
        for step in steps:
            if turn.aborted:
                return
            if isinstance(step, CallStep):
                yield from self.call(step.call, turn, rng)
            elif isinstance(step, ParallelStep):
                n = int(step.parallel.count.sample(rng, 1)[0])
                procs = [self.env.process(self.block(step.parallel, turn, rng))
                         for _ in range(n)]
                yield self.env.all_of(procs)
            elif isinstance(step, OptionalStep):
                if rng.random() < step.optional.probability:
                    yield from self.block(step.optional, turn, rng)
            elif isinstance(step, RepeatStep):
                for _ in range(int(step.repeat.count.sample(rng, 1)[0])):
                    if turn.aborted:
                        return
                    yield from self.block(step.repeat, turn, rng)

    def block(self, blk: Block, turn: Turn, rng: np.random.Generator) -> Generator[Any, Any,
                                                                                    None]:
        yield from self.steps(blk.body, turn, rng)

    # -- one call with its retries ------------------------------------------------------
    def call(self, call: CallSpec, turn: Turn, rng: np.random.Generator) -> Generator[
            Any, Any, None]:
        env, retry = self.env, self.p.retry
        model = self.p.models[call.model]
        coef = self.coef.get(id(call))
        if coef is None:
            coef = self.coef[id(call)] = charge_coefficients(self.p, call, self.slots)
        tin = float(np.rint(call.input_tokens.sample(rng, 1)[0]))
        tout = float(np.rint(call.output_tokens.sample(rng, 1)[0]))
        cached = float(np.rint(call.cached_input_fraction * tin))
        latency = float(model.ttft.sample(rng, 1)[0]) + min(
            tout, coef.max_tokens_value) / float(model.tokens_per_second.sample(rng, 1)[0])
        units = coef.units(tin, cached, tout)
        turn.calls += 1
        attempts = 0
        while True:
            now = env.now
            d = self.limiter.attempt(now, units)
            attempts += 1
            turn.attempts += 1
            self.tally.attempts_all += 1
            if d.admitted:
                if self.t0 <= now < self.t1:
                    self.tally.util += units
                yield env.timeout(latency)
                if self.t0 <= env.now < self.t1:
                    self.tally.good_window += 1
                return
            turn.rejected += 1
            turn.saw_429 = True
            yield env.timeout(retry.rejection_latency)
            if attempts > retry.max_retries:
                turn.calls_failed += 1
                turn.failed = True
                turn.aborted = turn.aborted or retry.on_exhausted == "abort_turn"
                return
            ra = d.retry_after_s
            if retry.honour_retry_after and 0.0 < ra <= retry.max_retry_after:
                delay = ra
            else:
                delay = min(retry.initial_delay * 2.0 ** (attempts - 1), retry.max_delay)
                delay *= 1.0 - retry.jitter * rng.random()
            yield env.timeout(delay)


def simpy_replications(profile: Profile, sessions: int, replications: int, seed: int,
                       horizon_s: float, warmup_s: float) -> tuple[dict[str, Estimate], int]:
    """Run the SimPy model; metrics with CIs, and call attempts simulated."""
    per: dict[str, list[float]] = {k: [] for k in METRICS}
    attempts = 0
    slots = limit_slots(profile)
    for child in np.random.SeedSequence(seed).spawn(replications):
        t = SimPyModel(profile, sessions, child, warmup_s, warmup_s + horizon_s).run()
        attempts += t.attempts_all
        lat = np.asarray(t.latencies)
        per["attempt_429_fraction"].append(t.rejected / t.attempts)
        per["turn_429_fraction"].append(t.turns_429 / t.turns)
        per["call_failure_fraction"].append(t.calls_failed / t.calls)
        per["turn_failure_fraction"].append(t.turns_failed / t.turns)
        per["attempts_per_call"].append(t.attempts / t.calls)
        per["calls_per_turn"].append(t.calls / t.turns)
        per["turn_latency_p50_s"].append(float(np.percentile(lat, 50)))
        per["turn_latency_p95_s"].append(float(np.percentile(lat, 95)))
        per["goodput_calls_per_min"].append(t.good_window / horizon_s * 60)
        per["turn_throughput_per_s"].append(t.turns_window / horizon_s)
        assert t.util is not None
        for i, slot in enumerate(slots):
            per.setdefault(f"utilisation {slot.key}", []).append(
                float(t.util[i] / (slot.limit * horizon_s / slot.period_s)))
    return {k: Estimate.from_samples(v) for k, v in per.items()}, attempts


METRICS = ["attempt_429_fraction", "turn_429_fraction", "call_failure_fraction",
           "turn_failure_fraction", "attempts_per_call", "calls_per_turn",
           "turn_latency_p50_s", "turn_latency_p95_s", "goodput_calls_per_min",
           "turn_throughput_per_s"]


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def fmt(e: Estimate) -> str:
    return f"{e.mean:10.4f} [{e.lo:9.4f}, {e.hi:9.4f}]"


def cross_check(profile: Profile, sessions: int, args: argparse.Namespace) -> None:
    warm = default_warmup(profile)
    t = time.perf_counter()
    res = simulate(profile, sessions, horizon_s=args.horizon, replications=args.replications,
                   seed=args.seed, workers=1)
    t_engine = time.perf_counter() - t
    t = time.perf_counter()
    sp, sp_attempts = simpy_replications(profile, sessions, args.simpy_replications,
                                         args.seed, args.horizon, warm)
    t_simpy = time.perf_counter() - t
    ours = dict(res.metrics)
    ours.update({f"utilisation {k}": v for k, v in res.utilisation.items()})
    print(f"\n## {profile.title}, N = {sessions}: {args.replications} (engine) / "
          f"{args.simpy_replications} (SimPy) replications × {args.horizon / 3600:g} h "
          f"after {warm:g} s warm-up")
    print(f"{'metric':30s} {'engine mean [95% CI]':>34s} {'SimPy mean [95% CI]':>34s}  agree")
    disagree = 0
    for k in sp:
        a, b = ours[k], sp[k]
        se = math.hypot(a.stderr, b.stderr)
        ok = abs(a.mean - b.mean) <= 3 * se + 1e-12
        disagree += not ok
        print(f"{k:30s} {fmt(a):>34s} {fmt(b):>34s}  {'yes' if ok else 'NO'}")
    print(f"metrics differing by more than 3 combined standard errors: {disagree}")
    eng_rate = res.attempts_simulated / t_engine
    sp_rate = sp_attempts / t_simpy
    print(f"engine: {res.attempts_simulated:,} attempts in {t_engine:.3f} s "
          f"({eng_rate / 1e6:.2f} M attempts/s, one core)")
    print(f"SimPy:  {sp_attempts:,} attempts in {t_simpy:.2f} s "
          f"({sp_rate / 1e3:.1f} k attempts/s, one core)")
    print(f"speed ratio (attempts/s): {eng_rate / sp_rate:.0f}×")


def timings(profile: Profile, args: argparse.Namespace) -> None:
    print("\n## Timings on profiles/web-research.yaml")
    workers = os.cpu_count() or 1
    for n in (43, 75):
        best = math.inf
        for _ in range(5):
            t = time.perf_counter()
            res = simulate(profile, n, replications=20, horizon_s=3600.0, seed=args.seed)
            best = min(best, time.perf_counter() - t)
        one = math.inf
        for _ in range(3):
            t = time.perf_counter()
            simulate(profile, n, replications=20, horizon_s=3600.0, seed=args.seed, workers=1)
            one = min(one, time.perf_counter() - t)
        print(f"simulate N={n}, 20 replications × 1 h: {best:.3f} s on {workers} threads, "
              f"{one:.3f} s on one ({res.attempts_simulated / one / 1e6:.2f} M attempts/s "
              "per core)")
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        sat = find_saturation(profile, 47, 75, replications=20, horizon_s=3600.0,
                              seed=args.seed)
        best = min(best, time.perf_counter() - t)
    total = sum(e.sessions for e in sat.evaluations)
    print(f"saturation search, bracket [47, 75] (the analytic ceilings): {best:.3f} s; "
          f"N* = {sat.n_star} (95% CI {sat.n_lo}–{sat.n_hi}), {len(sat.evaluations)} "
          f"evaluations of 20 × 1 h ({total * 20} session-hours)")
    t = time.perf_counter()
    sat = find_saturation(profile, 2, 4, replications=20, horizon_s=3600.0, seed=args.seed)
    print(f"saturation search from a bad bracket [2, 4]: {time.perf_counter() - t:.3f} s, "
          f"{len(sat.evaluations)} evaluations, N* = {sat.n_star}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="*", default=[
        "web-research:43", "web-research:80", "tool-agent:auto", "chat-assistant:auto"],
        help="PROFILE:N pairs (profiles/PROFILE.yaml; N=auto: the simulated N*)")
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--simpy-replications", type=int, default=20)
    ap.add_argument("--horizon", type=float, default=3600.0)
    ap.add_argument("--seed", type=int, default=20240501)
    args = ap.parse_args()
    web = load_profile(ROOT / "profiles" / "web-research.yaml")
    print(f"# Monte Carlo engine benchmark ({os.cpu_count()} CPUs, compiled C engine, "
          f"SimPy {simpy.__version__})")
    for case in args.cases:
        name, _, n = case.partition(":")
        profile = load_profile(ROOT / "profiles" / f"{name}.yaml")
        if n == "auto":
            n = str(find_saturation(profile, 10, 100, replications=args.replications,
                                    horizon_s=args.horizon, seed=args.seed).n_star)
        cross_check(profile, int(n), args)
    timings(web, args)


if __name__ == "__main__":
    main()
