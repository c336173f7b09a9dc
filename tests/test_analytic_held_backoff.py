"""Backoff retries back within the window of an uncounted sliding log (issue 13, found by
the hunt, seed 1): a 10 s ITPM log of 29,425 tokens, turns of ~15,000 input tokens in six
calls (the last 10,571), two retries 0.25 s and 0.75 s after a 429. The model took each
retry for a fresh Poisson attempt (refused with ``p``) and logged it as new load: 14
sessions against a simulated 12 [10–13] (+17 %). A refused call's retries come back
before the charges that refused it have expired, and are refused again: the engine turns
away 2.9 attempts per call that saw a 429 and fails nearly all of them."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.analytic.window import ClumpWindowModel
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate

PROFILE = Path(__file__).parent / "data" / "sliding-held-backoff.yaml"


def test_retries_within_the_window_are_refused_again() -> None:
    profile = load_profile(PROFILE)
    wl = Workload.from_profile(profile)
    c = next(c for c in wl.constraints if c.dim == "itpm")
    m = constraint_model(wl, c, cycle_time(wl).cycle_s).inner
    assert isinstance(m, ClumpWindowModel)
    held = m._held_backoff(12)
    assert held is not None and len(held) == 2
    assert 0.7 < held[1] <= held[0] < 1.0           # the log frees room only as it expires
    share = m.attempt_share(12)
    # simulate(profile, 12, seed=1, replications=80): 2.09 % [1.89, 2.29] of attempts
    # answered 429, 0.65 % [0.58, 0.71] of calls failed, 3.2 attempts refused per call
    # that failed. The orbit rule: 1.5 % of attempts, 0.0004 % of calls failed.
    assert 0.0189 <= share["attempt"] <= 0.024
    assert 0.0058 <= share["failed"] <= 0.0075
    assert share["attempt"] / share["call"] > 2.5


def test_held_backoff_meets_the_simulated_ceiling() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 6), n_a + 6, seed=1, replications=20,
                          max_sessions=60)
    assert_accurate(n_a, sat, profile.name)
