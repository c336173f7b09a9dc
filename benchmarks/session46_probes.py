"""Session 46's probes (issue 13).

    python benchmarks/session46_probes.py lattice    # populations' level laws on one lattice
    python benchmarks/session46_probes.py spilled    # a spilled launch's calls by its charge
    python benchmarks/session46_probes.py cascade    # a continued turn's stages, one log
    python benchmarks/session46_probes.py mixed      # a level chain beside a level law
    python benchmarks/session46_probes.py spread     # a fixed think time with retries
    python benchmarks/session46_probes.py fanout     # a fan-out's slowest copy, law or sample

``lattice``: tests/data/deep-bucket-populations-lattices.yaml: each population's deep
bucket step, the blended level law's input tokens a second against the populations' (at
40 sessions), and the share refused at 40, 42 and 43 sessions, the model's and the
engine's (10 × 1 h, seed 1).

``spilled``: hunt-1039 (a 1 s sliding TPM log spilling fan-outs into a 1 s fixed window)
at 95 sessions: the receiver's spilled launches as the model has them (their mean
charge, calls per launch, charge per call), the receiver's window law against the
engine's (one replication of 1 h, seed 1: its attempts at the receiver per window and
their charges, grouped into launches by session and instant).

``cascade``: hunt-69's first deployment alone (its 60 s TPM log, no retries,
``on_exhausted: continue`` or the turn aborted) at 400, 450 and 613 sessions: the model's
share and its cascade's part, the engine's (4 × 1 h); then how often a launch the
rejection latency after a refusal of its session is refused too, in the engine (one
replication of 30 min) and by the model's log with the room unchanged — and the same for
tests/data/continue-sliding-rounds.yaml (hunt-129) at 281 sessions.

``mixed``: hunt-113 (a fan-out population of ~55-token OTPM calls beside sequential
calls of ~470, one OTPM token bucket 5 s deep): each population's bucket model, and the
share at 47, 55 and 59 sessions — the Lundberg bound the mix falls back to, the level
law of both populations, and the engine's (30 × 1 h, seed 1).

``spread``: hunt-2038 (fan-outs, a fixed 40.1 s think time, SDK retries) and the same
with an exponential think time of that mean: the model's share and the engine's (10 ×
1 h, seed 1) at 128, 150 and 176 sessions, and the analytic N*.

``fanout``: every random fan-out of the hunt's 511 profiles: how many take the law
(``workload._fanout_mean_exact``) and its compute against the fixed-seed sample's, their
means' relative differences, the largest checked against 1.6 M draws (seed 99); then a
heavy-tailed ttft (lognormal, median 1 s, p95 10 s, five copies of 50 tokens at 50 a
second) the law leaves to the sample: 4 × 10^5 draws against the sample's answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

import numpy as np  # noqa: E402

from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_DEP, T_SESSION, T_T, T_UNITS  # noqa: E402

DATA = ROOT / "tests" / "data"


def _hunt_data(seed: int) -> dict[str, Any]:
    import hunt

    _, data = hunt.draw(seed)
    hunt._scale(data, random.Random(seed + 7_000_000))
    return data


def _engine(prof: Profile, n: int, reps: int) -> str:
    e = simulate(prof, n, replications=reps, seed=1, workers=1).metrics[
        "attempt_429_fraction"]
    return f"{e.mean:.3%} [{e.lo:.3%}–{e.hi:.3%}]"


def _share(prof: Profile, n: int) -> float:
    return math.fsum(float(c.at_sessions.loss_fraction)
                     for c in analyze(prof, sessions=n).constraints
                     if c.at_sessions is not None)


def lattice() -> None:
    from capacity.analytic.bucket import DeepBucket
    from capacity.analytic.populations import view

    prof = load_profile(DATA / "deep-bucket-populations-lattices.yaml")
    pv = view(prof)
    c = pv.constraints()[0]
    model = pv.model(c)
    for name, part in model._parts:
        print(f"{name}: {type(part.chain).__name__}, step {part.chain.h:.1f} tokens")
    deep = model.blended(40).chain
    assert isinstance(deep, DeepBucket)
    per_launch = sum(w * float(np.dot(np.arange(k.size), k))
                     * float(np.dot(np.arange(ch.size), ch)) * deep.h
                     for w, k, ch in deep.kinds)
    counts = prof.split(40)
    load = sum(counts[p.name] * p.wl.units_per_turn(c) / p.cycle.cycle_s for p in pv.parts)
    got = 40 * model.blended(40).rate_per_session * deep.scale * per_launch
    print(f"at 40 sessions the blend launches {got:,.0f} input tokens a second "
          f"(the populations {load:,.0f})")
    for n in (40, 42, 43):
        print(f"{n} sessions: model {_share(prof, n):.2e}, engine {_engine(prof, n, 10)}")


def receiver_at(prof: Profile, n: int, quota: str = "q1") -> tuple[Any, Any]:
    """(the fleet model of ``quota`` — a deployment fed by spillover — as the analytic
    answer at ``n`` sessions built it, that answer)."""
    from capacity.analytic import fleet

    got: dict[str, Any] = {}
    real = fleet.FeedModel._fitting_stats

    def spy(self: Any, k: int) -> Any:
        out = real(self, k)
        if k == n and self.c.quota == quota:
            got["m"] = self
        return out

    fleet.FeedModel._fitting_stats = spy  # type: ignore[method-assign,assignment]
    try:
        res = analyze(prof, sessions=n)
    finally:
        fleet.FeedModel._fitting_stats = real  # type: ignore[method-assign]
    return got["m"], res


def spilled() -> None:
    n = 95
    prof = profile_from_dict(_hunt_data(1039))
    m, _ = receiver_at(prof, n)
    src = m.sources[0]
    _, launch = src.charges(n)
    law, per = launch
    mean = float(np.dot(np.arange(law.size) * m.h, law)) / float(law.sum())
    print(f"model: a spilled launch {mean:,.0f} tokens, {per:.2f} calls, "
          f"{mean / per:,.0f} tokens a call")
    g, _ = m.window_law(n)
    units = np.arange(g.size) * m.h
    tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=0,
                        max_attempts=3_000_000)
    slot = next(i for i, s in enumerate(tr.slots) if s.quota == "q1")
    q = tr.slots[slot].limit / tr.slots[slot].period_s * tr.slots[slot].window_s
    rows = tr.rows[tr.rows[:, T_DEP] == 1]
    charge = rows[:, T_UNITS + slot]
    keys = np.unique(np.round(rows[:, T_T], 6) * 1e4 + rows[:, T_SESSION]).size
    print(f"engine: {keys} spilled launches, {rows.shape[0] / keys:.2f} calls each, "
          f"{charge.mean():,.0f} tokens a call")
    t0 = math.floor(tr.rows[:, T_T].min())
    span = math.floor(tr.rows[:, T_T].max()) - t0
    win = np.floor(rows[:, T_T]).astype(np.int64) - t0
    keep = win < span
    tot = np.bincount(win[keep], weights=charge[keep], minlength=span)[:span]
    print(f"receiver window ({q:,.0f} tokens): mean model {float(np.dot(units, g)):,.0f}, "
          f"engine {tot.mean():,.0f}")
    for x in (0.5, 1.0, 1.5, 2.0):
        print(f"  P(S > {x}·q): model {float(g[units > x * q].sum()):.4f}, "
              f"engine {float((tot > x * q).mean()):.4f}")


def _first_alone(retry: dict[str, Any]) -> Profile:
    d = _hunt_data(69)
    d.pop("deployments")
    d.pop("routes")
    d["quotas"].pop("q1")
    d["quotas"]["q0"]["models"] = ["m"]
    d["retry"] = retry
    return profile_from_dict(d)


def _refused_after_refusal(prof: Profile, n: int) -> str:
    tr = trace_attempts(prof, n, horizon_s=1800.0, seed=1, replication=0,
                        max_attempts=5_000_000)
    rows = tr.rows[np.lexsort((tr.rows[:, T_T], tr.rows[:, T_SESSION]))]
    ref = rows[:, T_ADMITTED] == 0
    same = np.r_[False, rows[1:, T_SESSION] == rows[:-1, T_SESSION]]
    dt = np.r_[np.inf, np.diff(rows[:, T_T])]
    pulled = same & np.r_[False, ref[:-1]] & (dt > 1e-3) & (dt < 0.2)
    return (f"{int(pulled.sum())} launches a 429's trip after a refusal, "
            f"{ref[pulled].mean():.2f} of them refused")


def _same_room(prof: Profile, n: int) -> float:
    """P(a second call is refused | the first was), both charges of the pooled law, the
    room the first met unchanged (the model's cascade, stage 1)."""
    from capacity.analytic.clumped import clumped_window_model

    wl = Workload.from_profile(prof)
    c = next(x for x in wl.constraints if x.dim == "tpm")
    m = clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    q = math.floor(m.q_lat + 1e-9)
    x = np.convolve(m.truncated(n - 1), m.own_pmf)[: q + 1]
    room = (x / x.sum())[::-1]
    b = m.call_pmf / m.call_pmf.sum()
    above = np.concatenate([[1.0], 1.0 - np.cumsum(b)])        # P(B ≥ k)
    r = np.arange(room.size)
    p_gt = np.where(r + 1 < above.size, above[np.minimum(r + 1, above.size - 1)], 0.0)
    return float(np.dot(room, p_gt ** 2) / np.dot(room, p_gt))


def cascade() -> None:
    from capacity.analytic.clumped import clumped_window_model

    go_on = _first_alone({"max_retries": 0, "on_exhausted": "continue"})
    abort = _first_alone({"max_retries": 0})
    wl = Workload.from_profile(go_on)
    m = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    for n in (400, 450, 613):
        base = m._sliding_h(n, 0.0)
        print(f"hunt-69's log alone, {n} sessions: continue model {_share(go_on, n):.2%} "
              f"(free count {base:.2%}, cascade +{m._sliding_cascade(n, base):.2%}), "
              f"engine {_engine(go_on, n, 4)}; abort model {_share(abort, n):.2%}, "
              f"engine {_engine(abort, n, 4)}")
    print(f"  400 sessions: {_refused_after_refusal(go_on, 400)}; the model's room "
          f"unchanged {_same_room(go_on, 400):.2f}")
    rounds = load_profile(DATA / "continue-sliding-rounds.yaml")
    print(f"hunt-129, 281 sessions: {_refused_after_refusal(rounds, 281)}; the model's "
          f"room unchanged {_same_room(rounds, 281):.2f}")


def mixed() -> None:
    from capacity.analytic import populations

    prof = profile_from_dict(_hunt_data(113))
    pv = populations.view(prof)
    c = next(x for x in pv.constraints() if x.dim == "otpm")
    model = pv.model(c)
    for name, part in model._parts:
        print(f"{name}: {type(part.chain).__name__}")
    level = []
    for (name, part), (p, mix) in zip(model._parts, [
            (p, populations._event_mix(p.wl, c)) for p in pv.parts
            if pv.rate(p, c) > 0], strict=True):
        law = dataclasses.replace(part, chain=None, clumped=None)
        rates = np.array([r / p.cycle.cycle_s for r, _ in mix])
        deep = populations.deep_bucket(p.wl, c, mix, rates, part.h)
        assert deep is not None
        deep.scale /= law.rate_per_session
        law.chain = deep
        law.clumped = populations.ClumpedLaunches.build(p.wl, c, p.cycle.cycle_s, deep)
        level.append((name, law))
    for n in (47, 55, 59):
        counts = prof.split(n)
        total = sum(counts[name] for name, _ in level)
        blend = populations.blend_bucket([(counts[name] / total, m) for name, m in level])
        print(f"{n} sessions: model (Lundberg bound) {model.stats(n).loss_fraction:.2%}, "
              f"level laws {blend.stats(total).loss_fraction:.2%}, "
              f"engine {_engine(prof, n, 30)}")


def spread() -> None:
    for kind in ("fixed", "exponential"):
        d = _hunt_data(2038)
        if kind == "exponential":
            d["session"]["think_time"] = {"exponential": d["session"]["think_time"]}
        prof = profile_from_dict(d)
        print(f"hunt-2038, {kind} think time: N* {analyze(prof).burst_ceiling}")
        for n in (128, 150, 176):
            print(f"  {n} sessions: model {_share(prof, n):.2%}, engine {_engine(prof, n, 10)}")


def fanout() -> None:
    import time

    import hunt

    from capacity.model import workload

    got: list[tuple[float, float, float, float, Any, Profile]] = []
    real = workload._fanout_mean_exact

    def both(step: Any, prof: Profile) -> float | None:
        t0 = time.process_time()
        law = real(step, prof)
        t1 = time.process_time()
        rng = np.random.default_rng(workload.TURN_SAMPLE_SEED)
        n = workload.turn_sample_size(
            step.parallel.count.mean * max(workload.max_calls(step.parallel.body), 1),
            workload.TURN_SAMPLE_SIZE)
        lat, _, _ = workload._sample_steps((step,), prof, (), rng, n, raw=False)
        t2 = time.process_time()
        got.append((float(lat.mean()), math.nan if law is None else law, t1 - t0, t2 - t1,
                    step, prof))
        return law

    workload._fanout_mean_exact = both  # type: ignore[assignment]
    try:
        for rec in hunt.load(ROOT / "benchmarks" / "hunt" / "records.jsonl"):
            workload._FANOUT_MEANS.clear()
            wl = Workload.from_profile(profile_from_dict(_hunt_data(rec["seed"])))
            _ = wl.turn_latency_moments        # each fan-out's mean, by both ways
    finally:
        workload._fanout_mean_exact = real  # type: ignore[assignment]
    on = [g for g in got if not math.isnan(g[1])]
    rel = np.array([(g[1] - g[0]) / g[0] for g in on])
    print(f"{len(got)} fan-outs, {len(on)} by the law: {sum(g[3] for g in on):.2f} s "
          f"sampled, {sum(g[2] for g in on):.2f} s by the law; relative difference median "
          f"{np.median(np.abs(rel)):.1e}, largest {np.abs(rel).max():.2%}")
    worst = on[int(np.argmax(np.abs(rel)))]
    rng = np.random.default_rng(99)
    draws = [float(workload._sample_steps((worst[4],), worst[5], (), rng, 200_000,
                                          raw=False)[0].mean()) for _ in range(8)]
    print(f"  largest: sampled {worst[0]:.3f} s, law {worst[1]:.3f} s, 1.6 M draws "
          f"{np.mean(draws):.3f} ± {np.std(draws) / math.sqrt(8):.3f} s")
    prof = profile_from_dict({
        "name": "heavy-ttft", "models": {"m": {
            "ttft": {"lognormal": {"median": "1s", "p95": "10s"}}, "tokens_per_second": 50}},
        "quotas": {"q": {"models": ["m"], "rpm": 1000}},
        "session": {"think_time": "30s", "turns": {"t": {"steps": [{"parallel": {
            "count": 5, "call": {"model": "m", "input_tokens": 500,
                                 "output_tokens": 50}}}]}}}})
    step = next(iter(prof.session.turns.values())).steps[0]
    lat, _, _ = workload._sample_steps((step,), prof, (), np.random.default_rng(7),
                                       400_000, raw=False)
    print(f"heavy-tailed ttft: law {real(step, prof)}, the answer "
          f"{workload._fanout_mean(step, prof):.3f} s, 4e5 draws {lat.mean():.3f} ± "
          f"{lat.std() / math.sqrt(lat.size):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("probe", choices=["lattice", "spilled", "cascade", "mixed", "spread",
                                      "fanout"])
    args = ap.parse_args()
    {"lattice": lattice, "spilled": spilled, "cascade": cascade, "mixed": mixed,
     "spread": spread, "fanout": fanout}[args.probe]()


if __name__ == "__main__":
    main()
