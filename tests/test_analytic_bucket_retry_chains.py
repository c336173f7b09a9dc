"""Retries at a token bucket fed by chains of calls (capacity/analytic/bucket.py,
``BucketChain.shares``): the fresh calls' refusals follow the sessions' own launch pattern
(a turn's calls seconds apart) with retries as without them."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate

DATA = Path(__file__).resolve().parent / "data"


def test_retried_chains_at_a_bucket_against_the_simulator() -> None:
    """Reduced from hunt.py seed 203: the Poisson retry model said 22 against the
    simulated 19 [18–20] (seed 1, 20 × 1 h)."""
    name = "bucket-chain-retries"
    p = load_profile(DATA / f"{name}.yaml")
    n_a = analyze(p).burst_ceiling
    sat = find_saturation(p, max(1, n_a - 5), n_a + 5, seed=1, replications=20,
                          max_sessions=60)
    assert_accurate(n_a, sat, name)
