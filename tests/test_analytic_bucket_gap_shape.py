"""A turn's calls at a shallow token bucket come their predecessor's latency apart, not
an exponential time: the follow chain's share is corrected by the turn walk's, sampled
gaps against exponential ones (BucketChain._gap_shape), and checked against the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.analytic import bucket as B
from capacity.analytic.model import bucket_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.sim.engine import simulate

DATA = Path(__file__).resolve().parent / "data"


def _chain(sessions: int) -> tuple[B.BucketChain, float]:
    profile = load_profile(DATA / "bucket-follow-gaps.yaml")
    wl = Workload.from_profile(profile)
    cyc = cycle_time(wl)
    (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    m = bucket_model(wl, c, cyc.cycle_s)
    assert isinstance(m.chain, B.BucketChain)
    return m.chain, sessions * m.rate_per_session


def test_share_against_the_engine() -> None:
    """17 sessions, no retries: the engine refuses 2.91 % [2.85–2.97] of calls (40 × 1 h);
    the follow chain with exponential gaps said 3.29 % (+13 %), corrected 3.01 %."""
    profile = load_profile(DATA / "bucket-follow-gaps.yaml")
    sim = simulate(profile, 17, seed=1, replications=40, horizon_s=3600.0)
    engine = sim.metrics["attempt_429_fraction"].mean
    chain, lam = _chain(17)
    assert chain.follow is not None and chain.walk is not None
    model = chain.shares(lam, 17)["call"]
    assert abs(model / engine - 1.0) <= 0.06, (model, engine)
    # The mechanism: exponential gaps bring later calls too soon, so the walk's sampled
    # gaps refuse fewer than exponential ones, and the follow chain alone says more.
    assert chain._gap_shape(chain.follow, lam) < 0.95
    assert B.follow_share(chain, chain.follow, 17, lam) > 1.08 * engine


def test_exponential_gaps_keep_ranks_and_mean() -> None:
    """Each position's gaps become exponential quantiles of the given mean, in the same
    order as the sampled ones; the turns and their launches stay as they were."""
    chain, _ = _chain(17)
    walk = chain.walk
    assert walk is not None
    exp = B._exponential_gaps(walk, 2.5)
    assert np.array_equal(exp.seq, walk.seq) and np.array_equal(exp.patterns, walk.patterns)
    for j in range(1, walk.gaps.shape[1]):
        rows = np.flatnonzero(walk.seq[:, j] >= 0)
        got, was = exp.gaps[rows, j], walk.gaps[rows, j]
        assert abs(float(got.mean()) - 2.5) < 1e-9
        assert np.array_equal(np.argsort(got, kind="stable"), np.argsort(was, kind="stable"))
        # Exponential: a fifth of them within a quarter of the mean, the median ln 2 of it.
        assert 0.15 < float(np.mean(got < 0.25 * 2.5)) < 0.28
