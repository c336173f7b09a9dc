"""Where a fixed window's refused calls sit, for backoff retries (issue 13, hunt-188).

A backoff retry (the retry-after ignored) that comes back before the window that refused
it ends is refused again. The spread rule put the refused calls in the window's last
``(X + b)/S`` (many small calls overflowing late); a fan-out as large as the allowance
overflows the window wherever it lands, so its refused calls sit anywhere in it.
tests/data/backoff-fanout-allowance.yaml (hunt-188: 37-call fan-outs against 37 calls per
1 s window, backoff ~0.4 s) was analysed at 33 against a simulated 27 [26-29] (``capacity
ceiling tests/data/backoff-fanout-allowance.yaml --method simulate --seed 7
--replications 40``; the hunt's seed 188: 28 [27-32], seed 100188: 27 [25-29]); the Palm
view of the window's prefix (``ClumpWindowModel._refusal_cells``) gives 27.
"""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

DATA = Path(__file__).parent / "data"


def test_retries_of_a_fanout_as_large_as_the_allowance_are_refused_again() -> None:
    """One backoff retry, 30 sessions: the engine fails 1.25% [1.13-1.37%] of the calls
    (their one retry refused again) and answers 5.24% [4.99-5.49%] of attempts 429
    (``simulate(..., 30, replications=40, seed=7)``); the spread rule said 0.22% and
    4.44%."""
    profile = load_profile(DATA / "backoff-fanout-allowance.yaml",
                           overrides=["retry.max_retries=1"])
    at = analyze(profile, sessions=30).constraints[0].at_sessions
    assert at is not None and at.call_failure_fraction is not None
    assert 0.0113 <= at.call_failure_fraction <= 0.0137
    assert 0.0499 <= at.attempt_429_fraction <= 0.0549


def test_fanout_as_large_as_the_allowance_meets_the_simulated_ceiling() -> None:
    """Simulated N* 27 [26-29] at seed 7 (40 replications); the spread rule said 33."""
    n_a = analyze(load_profile(DATA / "backoff-fanout-allowance.yaml")).burst_ceiling
    assert 26 <= n_a <= 29
