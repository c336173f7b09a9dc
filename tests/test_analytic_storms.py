"""Retry storms of a counted, retried sliding window (issue 13): the storm chain.

A storm starts with the first call turned away and turns away every launch (each logged
``1 + m`` times) until an arrival finds the trailing count below the allowance
(:meth:`capacity.analytic.window.ClumpWindowModel.storm_size`). The chain is checked
against a direct simulation of its own assumptions, the storm sizes and shares against
the engine's traces, and two workloads' ceilings against the simulated N* (the accuracy
table's rule: within 3% or inside the CI, never more than 5% optimistic).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.analytic_accuracy import dag_profile
from capacity.analytic.clumped import clumped_window_model
from capacity.analytic.model import analyze, cycle_time
from capacity.analytic.window import ClumpWindowModel, _storm_size
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.sim.engine import trace_attempts
from capacity.sim.kernels import T_ADMITTED

from ._accuracy import assert_accurate

BATCH = Path(__file__).parent / "data" / "batch-sliding.yaml"


def fan10(think: str = "60s") -> Profile:
    """Fan-outs of a uniform 1..10 calls (one parallel step), 600 RPM as 100 per sliding
    10 s, counted and retried rejections, Exp(``think``) think time (the accuracy table's
    row; the reviewer's +25% case)."""
    data: dict[str, Any] = load_profile(BATCH).model_dump(mode="json", exclude_none=True)
    data["name"] = "batch-sliding-fan10"
    data["quotas"]["deployment"]["rpm"] = 600
    data["session"]["think_time"] = {"exponential": think}
    data["session"]["turns"]["summarise"]["steps"] = [{"parallel": {
        "count": {"uniform": [1, 10]},
        "call": {"model": "gpt-4o", "input_tokens": 3000, "output_tokens": 300,
                 "max_tokens": 500}}}]
    return profile_from_dict(data)


def fan10_5s() -> Profile:
    """The same fan-outs with batch-sliding's fixed 5 s think time (a ~14.6 s cycle): the
    accuracy table's row whose storms' aborted sessions are back within seconds."""
    data: dict[str, Any] = fan10().model_dump(mode="json", exclude_none=True)
    data["name"] = "batch-sliding-fan10-5s"
    data["session"]["think_time"] = "5s"
    return profile_from_dict(data)


def dag_sliding() -> Profile:
    """The theory brief's 1 → 3 → 1 turn, Exp(120 s) think time, 500 RPM in sliding
    10 s windows, SDK retries (the accuracy table's row)."""
    return dag_profile("dag-sliding", {"rpm": 500, "enforcement": {
        "type": "sliding_window", "window": "10s"}})


def window_model(profile: Profile) -> ClumpWindowModel:
    """The sliding window's model at the profile's own cycle."""
    wl = Workload.from_profile(profile)
    (con,) = wl.constraints
    return clumped_window_model(wl, con, cycle_time(wl).cycle_s).inner


def direct_storm(m: ClumpWindowModel, n: float, storms: int,
                 rng: np.random.Generator) -> tuple[float, float]:
    """(mean, standard error) of the attempts one storm turns away, by simulating the
    chain's assumptions event by event — written from the docstring, not the code.

    Launches of the steady law arrive as a Poisson stream (no aborted turns); the log
    starts at ``q`` plus ``(1 + m)·O``, ``O`` the overflow of a size-biased launch;
    before ``w`` the old content expires as a Poisson stream of launches at ``q/w``
    units per second, after it the storm's own launches of ``(1 + m)k`` units at the
    launch rate times ``C/M``; an arrival at ``C < q`` ends the storm.
    """
    k = np.concatenate([m.storm_first[m.storm_first > 0], m.storm_sizes]).astype(np.int64)
    w = m.window_s
    q = math.floor(m.q_lat + 1e-9)
    a = 1 + m.retry.max_retries
    rate = k.size * n * m.turns_per_window / w / m.storm_first.size
    mean_k = float(k.mean())
    old_rate = q / (w * mean_k)
    steady = a * rate * mean_k * w                     # M: the storm's mean content
    biased = k / k.sum()
    out = np.zeros(storms)
    for s in range(storms):
        over = int(rng.integers(1, int(k[rng.choice(k.size, p=biased)]) + 1))
        c, rejected, t = q + a * over, a * over, 0.0
        while t < 4 * w:
            expiry = old_rate if t < w else rate * c / steady
            step = rng.exponential(1.0 / (rate + expiry))
            if t < w <= t + step:                      # the expiry law changes at w
                t = w
                continue
            t += step
            if rng.random() < rate / (rate + expiry):
                if c < q:
                    break
                units = a * int(k[rng.integers(k.size)])
                c, rejected = c + units, rejected + units
            else:
                gone = int(k[rng.integers(k.size)]) * (1 if t < w else a)
                c = max(c - gone, 0)
        out[s] = rejected
    return float(out.mean()), float(out.std() / math.sqrt(storms))


@pytest.mark.parametrize("n", [38.0, 44.0])
def test_storm_chain_against_a_direct_simulation(n: float) -> None:
    """The chain (steps of w/80, arrivals half a step after expiries) against an
    event-by-event simulation of the same process: within 5% plus 3 standard errors."""
    m = window_model(fan10())
    m = dataclasses.replace(m, retry=dataclasses.replace(m.retry, abort_turn=False),
                            _storm_sizes={})
    chain = _storm_size(m, n)
    mean, se = direct_storm(m, n, 3000, np.random.default_rng(7))
    assert abs(chain - mean) <= 0.05 * mean + 3 * se


def engine_share(profile: Profile, n: int, reps: int = 10) -> float:
    """Share of attempts answered 429 in ``reps`` simulated hours (seed 1)."""
    att = rej = 0
    for r in range(reps):
        rows = trace_attempts(profile, n, horizon_s=3600.0, seed=1, replication=r,
                              max_attempts=2_000_000).rows
        att += rows.shape[0]
        rej += int((rows[:, T_ADMITTED] == 0).sum())
    return rej / att


@pytest.mark.parametrize(("profile", "n", "lo", "hi"), [
    (dag_sliding, 138, 0.0035, 0.012),  # engine 0.0068 over 40 h; model 0.0077
    (fan10, 52, 0.008, 0.04),           # engine 0.016; model 0.022
    # A 5 s think time: engine 0.0003 at 14 sessions (53 attempts turned away in 10
    # hours; none at 12), model 0.005 (it was 0.22 while an aborted session's pause
    # started at the launch turned away, not after its retries): storms there, rare.
    (fan10_5s, 14, 0.0, 0.01),
])
def test_storm_share_against_the_engine(profile: Any, n: int, lo: float, hi: float) -> None:
    """Near the ceiling the model's 429 share of attempts and the engine's (10 simulated
    hours, seed 1) both sit in the band (above its lower edge: storms do start there),
    which excludes the first-order storm size: ``(N − N_u)(1 + m)`` attempts gave 0.0143
    (1-3-1) and 0.0037 (fan-outs)."""
    prof = profile()
    model = window_model(prof).attempt_share(n)["attempt"]
    assert lo < model <= hi, (n, model)
    engine = engine_share(prof, n)
    assert lo < engine <= hi, (n, engine)


def test_aborted_sessions_feed_a_think_time_storm_not_a_cadence_one() -> None:
    """At 26 sessions (one over the allowance) the engine's think-time sessions storm
    for good (an aborted turn's session is back 5 s later) and the cadence twin's
    storms die at once (its bursting sessions are not due for 4.4 s): the model's storm
    sizes say the same."""
    think = load_profile(BATCH)
    data: dict[str, Any] = think.model_dump(mode="json", exclude_none=True)
    data["session"].pop("think_time")
    data["session"]["cadence"] = {"uniform": ["14.0s", "14.8s"]}
    cadence = profile_from_dict(data)
    # (20 hours: a storm starts about once an hour here; those of seed 1 start in some)
    assert engine_share(think, 26, reps=20) > 0.03
    assert engine_share(cadence, 26, reps=20) < 0.005
    assert window_model(think).storm_size(26) > 300      # attempts per storm
    assert window_model(cadence).storm_size(26) < 20


@pytest.mark.parametrize("profile", [dag_sliding, fan10, fan10_5s])
def test_storm_rows_meet_the_accuracy_target(profile: Any) -> None:
    """The rows that were outside the target: 1-3-1 sliding (135 vs 142 [140–142],
    conservative), the U{1..10} fan-outs (57 vs 49 [46–53], optimistic) and the same
    fan-outs with a 5 s think time (12 vs 14 [14–15], conservative)."""
    prof = profile()
    n_a = analyze(prof).burst_ceiling
    sat = find_saturation(prof, max(1, n_a - 10), n_a + 10, seed=1, replications=20,
                          max_sessions=2 * n_a + 20)
    assert_accurate(n_a, sat, prof.name)
