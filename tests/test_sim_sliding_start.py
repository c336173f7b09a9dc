"""The simulator's start of a sliding log its offered load overfills (capacity/sim/
engine.py, ``_initial_use``): a priority deployment that spills the rest runs full and
admits what expires. Started empty it fills in the first part of a window and then
admits only as that fill expires — the same part of every window, replayed for tens of
minutes — so its spill came on for ~24 s a minute and off for the rest, and the token
bucket after it refused what it would not in steady state (hunt-69 at 700 sessions: 22 %
of the spill refused in the first 10 minutes, 6 % at 20-30, none after 40; the
simulated 429 share halved with each doubling of the horizon, 2.1 / 1.1 / 0.54 / 0.27 %
at 680 sessions over 0.5 / 1 / 2 / 4 h). It now starts full, its content spread over
the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import _compile, _initial_use, simulate
from capacity.sim.kernels import LimiterArrays

DATA = Path(__file__).resolve().parent / "data"
PROFILE = DATA / "fleet-sliding-spill-fluid.yaml"   # hunt-69: a 60 s log → a 10 s bucket


def _start(p: Profile, n: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """(bucket deficits, window use) per slot at t = 0 at ``n`` sessions, and the
    compiled profile."""
    c = _compile(p)
    params = LimiterArrays.from_slots(c.slots, 0.0).params
    deficit, used = _initial_use(c, params, 0.5, c.warm.start(n),
                                 warmup_s=2.0 * c.mean_cycle_s)
    return deficit, used, c


def test_an_overfilled_log_starts_full_an_underfilled_one_empty() -> None:
    p = load_profile(PROFILE)
    _, used, c = _start(p, 700)     # 1.66 × the log's allowance offered
    q0 = c.slots[0]
    assert q0.kind == "sliding_window" and q0.window_s < 2.0 * c.mean_cycle_s
    assert used[0] == q0.allowance
    _, used, _ = _start(p, 300)     # 0.71 ×: the warm-up fills it with real calls
    assert used[0] == 0.0


def test_no_start_up_oscillation_in_the_spill() -> None:
    """At 700 sessions (steady state: the bucket refuses none of the spill; the analytic
    fluid ceiling is 784) a 20-minute and an 80-minute horizon agree."""
    p = load_profile(PROFILE)
    short = simulate(p, 700, seed=3, replications=4, horizon_s=1200.0)
    long = simulate(p, 700, seed=3, replications=2, horizon_s=4800.0)
    for r in (short, long):
        assert r.metrics["attempt_429_fraction"].mean < 0.002
        assert r.deployments["b"].reject_fraction.mean < 0.005


def test_a_log_that_never_fills_still_starts_empty() -> None:
    """Two sessions of one call every 30 s against a 5-request sliding minute make at
    most 4 calls in any minute: the log never fills, and starts empty (its mean content
    laid down at t = 0, independent of their phases, would refuse them)."""
    p = profile_from_dict({
        "name": "never-fills",
        "models": {"m": {"tokens_per_second": 100, "ttft": "0.5s"}},
        "quotas": {"q": {"models": ["m"], "rpm": 5,
                         "enforcement": {"type": "sliding_window", "window": "60s"}}},
        "session": {"cadence": "30s", "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 100, "output_tokens": 10}}]}}}})
    _, used, _ = _start(p, 2)
    assert used[0] == 0.0
    r = simulate(p, 2, seed=1, replications=4, horizon_s=1200.0)
    assert r.metrics["attempt_429_fraction"].mean == 0.0
