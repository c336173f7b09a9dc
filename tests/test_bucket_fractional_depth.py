"""A token bucket whose depth falls between two levels of the chain's grid (issue 13,
hunt-97): 110 RPM 1 s deep is 1.83 requests. Each grid kept the levels up to the depth
(1.75 on the coarse grid, 1.8125 on the fine one) and the Richardson step extrapolated
the cut to a bucket 1.875 deep; the share is now interpolated between the two grid levels
around the depth, each solved on both grids (``BucketChain._bracket``).
tests/data/bucket-fractional-depth.yaml (hunt-97 without its retries) was analysed at 79
against a simulated 72 [69-75] (``capacity ceiling tests/data/bucket-fractional-depth.yaml
--method simulate --seed 7 --replications 40``); now 71.
"""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

DATA = Path(__file__).parent / "data"


def test_poisson_calls_at_a_fractional_depth_bucket() -> None:
    """Exp(196 s) think times (Poisson launches), refusals not counted, 80 sessions: the
    engine refuses 4.90% [4.68-5.11%] of the calls (``simulate(..., 80, replications=20,
    seed=7)``), a Monte Carlo of the bare bucket (3·10^6 Poisson arrivals at 0.4044/s,
    depth and refill 11/6) 4.96%; the cut grids said 4.31%."""
    profile = load_profile(DATA / "bucket-fractional-depth.yaml",
                           ["quotas.q0.rejected_count=false", "session.cadence=null",
                            "session.think_time={exponential: 196s}"])
    at = analyze(profile, sessions=80).constraints[0].at_sessions
    assert at is not None
    assert 0.0468 <= at.loss_fraction <= 0.0511


def test_fractional_depth_bucket_meets_the_simulated_ceiling() -> None:
    """Simulated N* 72 [69-75] at seed 7 (40 replications); the cut grids said 79."""
    n_a = analyze(load_profile(DATA / "bucket-fractional-depth.yaml")).burst_ceiling
    assert 69 <= n_a <= 75
