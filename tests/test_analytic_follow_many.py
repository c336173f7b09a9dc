"""Sessions whose turns launch at a token bucket more than once keep the follow chain at
any number of sessions (session 60). It was held to 1,000 sessions, as the closed chain
of one-launch turns is — past that a closed loop is Poisson's — and the turn walk
answered beyond: its Poisson others miss that every other turn's later calls follow its
first too, which the follow chain's sessions-in-a-turn count keeps at any N.
tests/data/bucket-follow-many.yaml (three calls ~2.2 s apart, 110 RPM, 10 s deep):
the walk said 1,695 sessions against a simulated 1,510 [1,479–1,544]
(``capacity ceiling tests/data/bucket-follow-many.yaml --seed 1 --format json``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from capacity.analytic.bucket import BucketChain, FollowSessions, _kept
from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
SIMULATED = Recorded(1510, 1479, 1544)


def _chain() -> tuple[BucketChain, float]:
    prof = load_profile(DATA / "bucket-follow-many.yaml")
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(model.chain, BucketChain)
    return model.chain, model.rate_per_session


def test_the_follow_chain_answers_past_a_thousand_sessions() -> None:
    chain, rate = _chain()
    assert isinstance(chain.follow, FollowSessions)
    assert _kept(chain, chain.follow, 1500)
    # The closed chain of one-launch turns keeps its cap (a closed loop that large is
    # Poisson's); the follow chain's band, not the count, bounds its cost.
    shares = chain.shares(1500 * rate, 1500)
    # The follow chain's share, at the launches its aborted turns leave (fewer: a turn
    # refused at its first call makes no other).
    follow = chain._follow_share(chain.follow, 1500, 1500 * rate)
    assert 0.85 * follow <= shares["call"] <= follow
    # The walk's Poisson others are an order of magnitude lower there.
    assert chain._walk_share(1500 * rate) < 0.2 * shares["call"]


def test_not_optimistic_past_a_thousand_sessions() -> None:
    """1,574 against 1,510 [1,479–1,544]: +4.2 %, no longer more than 5 % optimistic."""
    n = analyze(load_profile(DATA / "bucket-follow-many.yaml")).burst_ceiling
    assert n <= 1.05 * SIMULATED.n_star


@pytest.mark.xfail(strict=True, reason="the follow chain's exponential gaps: 0.604 % "
                   "refused at 1,500 sessions where the engine refuses 0.826 % "
                   "(session60_probes.py follow)")
def test_within_the_target_past_a_thousand_sessions() -> None:
    assert_accurate(analyze(load_profile(DATA / "bucket-follow-many.yaml")).burst_ceiling,
                    SIMULATED, "three calls in a row, 1,500 sessions")


@pytest.mark.xfail(strict=True, reason="with the SDK's retries the follow chain's fresh "
                   "refusals, moved by the Poisson retry model's push, stay optimistic: "
                   "1,422 against 1,299 [1,250-1,338] (the walk said 1,575)")
def test_within_the_target_with_retries_past_a_thousand_sessions() -> None:
    """``capacity ceiling tests/data/bucket-follow-many.yaml --set retry.max_retries=2
    --seed 1 --format json``: simulated 1,299 [1,250–1,338] (a review's, session 60)."""
    prof = load_profile(DATA / "bucket-follow-many.yaml", ["retry.max_retries=2"])
    assert_accurate(analyze(prof).burst_ceiling, Recorded(1299, 1250, 1338),
                    "three calls in a row, two retries")


def test_backoff_retries_give_a_share_that_rises_with_sessions() -> None:
    """Past the retry model's reach (its Poisson fresh share ~1e-5 where the follow
    chain's is ~0.6 %) the retries per refused call were scaled by that ratio and swung:
    0.59 / 14.3 / 4.4 % of attempts refused at 1,404 / 1,412 / 1,420 sessions (a review);
    they are read where the retry model refuses as much (BucketChain._matched_shares)."""
    prof = load_profile(DATA / "bucket-follow-many.yaml",
                        ["retry.max_retries=2", "retry.honour_retry_after=false"])
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    shares = [model.stats(n).loss_fraction for n in range(1400, 1441, 4)]
    for a, b in itertools.pairwise(shares):
        assert a <= b * 1.001 and b <= 1.5 * a, shares
