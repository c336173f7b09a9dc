"""A token bucket too deep for the level chain, with backoff retries (the retry-after
not honoured): the Lundberg bound answered (issue 13, hunt-3051: 160 against a
simulated 171 [171–172]); the level law of launches, with each refused call's retries
chained from the level it was refused at, answers 171."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.bucket import DeepBucket
from capacity.analytic.model import analyze, bucket_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"


def test_a_deep_bucket_with_backoff_retries_has_a_level_law() -> None:
    """The bucket's model is the level law (not the bound), and a refused call's retries
    are refused again more often than fresh calls are refused (the level it was
    refused at is carried over the backoff)."""
    p = load_profile(DATA / "deep-bucket-backoff.yaml")
    wl = Workload.from_profile(p)
    (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    bm = bucket_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(bm.chain, DeepBucket)
    st = bm.stats(171)
    assert st.method == "token bucket, level law by level crossing"
    call = st.call_429_fraction or 0.0
    assert 0.0 < call < st.loss_fraction * 2
    sh = bm.chain.shares(171 * bm.rate_per_session, 171)
    # Retries per refused call over m = 1 + ...: each retry refused again with a chance
    # well above the fresh calls' share.
    assert sh["retry_share"] / sh["call"] > 1.0 + 10 * sh["call"]


def test_the_deep_bucket_backoff_ceiling_is_the_simulated_one() -> None:
    """``benchmarks/hunt.py`` seed 3051: simulated 171 [171–172] (the bound said 160)."""
    p = load_profile(DATA / "deep-bucket-backoff.yaml")
    assert_accurate(analyze(p).burst_ceiling, Recorded(171, 171, 172), "deep bucket backoff")
