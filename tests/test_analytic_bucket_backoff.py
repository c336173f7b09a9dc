"""Backoff retries at a token bucket that does not count its rejections
(capacity/analytic/bucket.py, ``BucketChain.shares``): after a backoff short against the
bucket's refill a retry finds the bucket still short of its charge, as the refusal left
it — the (level, retries pending) chain, not the orbit of retries meeting the average
level."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("delay", [0.1, 0.5, 2.0])
def test_fast_backoff_at_a_bucket_against_the_simulator(delay: float) -> None:
    """Reduced from hunt.py seed 56: the orbit said 20 at every delay against the
    simulated 16 [15–16], 17 [16–18] and 18 [17–19] (seed 1, 20 × 1 h)."""
    p = load_profile(DATA / "bucket-fast-backoff.yaml")
    p = p.model_copy(update={"retry": p.retry.model_copy(update={"initial_delay": delay})})
    n_a = analyze(p).burst_ceiling
    sat = find_saturation(p, max(1, n_a - 5), n_a + 5, seed=1, replications=20,
                          max_sessions=40)
    assert_accurate(n_a, sat, f"{p.name}, {delay:g} s backoff")
