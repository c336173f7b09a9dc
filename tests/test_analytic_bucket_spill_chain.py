"""A token bucket spilling lone calls (one a turn) into the next deployment
(capacity/analytic/fleet.py, ``BucketSpill.levels``): which calls it turns away is the
level chain's (capacity/analytic/bucket.py, ``BucketChain.refused_by_charge``: a call
charging ``b`` is refused when the level it finds is below ``b``), so the large calls
spill, and the next deployments are charged for them as they charge those calls (in
any dimension); their backoff retries find the bucket still short
(``BucketChain.refused_after``). A bucket too deep for the chain's grid has the same
level law by level crossing (``DeepBucket``)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.bucket import BucketChain, DeepBucket
from capacity.analytic.model import analyze
from capacity.analytic.window import RetryModel
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).resolve().parent / "data"

# 25,000 tokens deep, 100,000 a minute; 90 % 200-token and 10 % 20,000-token prompts
# (tests/data/bucket-spill-level-chain.yaml's bucket) at 18 sessions' 50.55 calls a minute.
DEPTH, REFILL, LAM = 25_000.0, 100_000.0 / 60.0, 50.55 / 60.0
SIZES, SHARES = (200.0, 20_000.0), (0.9, 0.1)


def _pmf() -> np.ndarray:
    pmf = np.zeros(201)
    pmf[2], pmf[200] = SHARES
    return pmf


def _chain() -> BucketChain:
    return BucketChain(np.array([0.0, 1.0]), _pmf(), 100.0, REFILL, DEPTH,
                       RetryModel(0, False, False, abort_turn=False))


def _monte_carlo(delay: float, calls: int = 200_000, seed: int = 5
                 ) -> tuple[float, float]:
    """(share of the large calls refused, share of those refused again ``delay`` s
    later) in a direct simulation of the bucket: Poisson arrivals, admission iff the
    level holds the charge, the refill capped at the depth."""
    rng = random.Random(seed)
    t, level = 0.0, DEPTH
    times, levels, refusals = [], [], []
    big = refused = 0
    for _ in range(calls):
        gap = rng.expovariate(LAM)
        t += gap
        level = min(DEPTH, level + REFILL * gap)
        b = SIZES[1] if rng.random() < SHARES[1] else SIZES[0]
        if b == SIZES[1]:
            big += 1
        if level >= b:
            level -= b
        elif b == SIZES[1]:
            refused += 1
            refusals.append(t)
        times.append(t)
        levels.append(level)
    tt, lv = np.array(times), np.array(levels)
    at = np.array(refusals) + delay
    i = np.searchsorted(tt, at, side="right") - 1
    ok = i < tt.size - 1
    later = np.minimum(DEPTH, lv[i[ok]] + REFILL * (at[ok] - tt[i[ok]]))
    return refused / big, float(np.mean(later < SIZES[1]))


def test_the_large_calls_refused_by_the_level_they_find() -> None:
    """The chain's refusal of each charge against a direct simulation of the bucket:
    the small calls slip in, about half the large ones wait for a level that is not
    there (the fluid excess said 8.7 % of the units)."""
    got = _chain().refused_by_charge(LAM, np.array(SIZES))
    mc, _ = _monte_carlo(1.0)
    assert float(got[0]) < 1e-3
    assert abs(float(got[1]) - mc) < 0.02, (got, mc)
    assert 0.4 < mc < 0.55


def test_a_retry_soon_after_finds_the_bucket_still_short() -> None:
    """A large call refused is refused again a backoff later unless the level built up
    meanwhile: ``refused_after`` against the simulated level 1 s and 4 s after each
    refusal (a fresh call of that size: refused about half the time)."""
    chain = _chain()
    got = chain.refused_after(LAM, np.array([SIZES[1]]), (1.0, 4.0))
    for k, d in enumerate((1.0, 4.0)):
        _, mc = _monte_carlo(d)
        assert abs(float(got[k, 0]) - mc) < 0.04, (d, got, mc)
    assert float(got[0, 0]) > float(got[1, 0]) > float(chain.refused_by_charge(
        LAM, np.array([SIZES[1]]))[0])
    # At no delay, refused again for certain; long after, as any fresh call.
    assert math.isclose(float(chain.refused_after(LAM, np.array([SIZES[1]]), (0.0,))[0, 0]),
                        1.0, abs_tol=1e-9)


def test_bucket_spilling_large_prompts_against_the_simulator() -> None:
    """tests/data/bucket-spill-level-chain.yaml: simulated N* 18 [17–18] (``capacity
    ceiling --seed 1``, 20 replications × 1 h); the fluid spill said 32."""
    assert_accurate(analyze(load_profile(DATA / "bucket-spill-level-chain.yaml")
                            ).burst_ceiling, Recorded(18, 17, 18), "bucket-spill-level-chain")


def test_a_middle_log_spills_calls_not_their_retries() -> None:
    """A middle deployment's refusals spill on to the next one (they are not retried at
    it), so its share of the route's calls turned away is at most the bucket's: the
    backoff-retry term of the chain's last log counted retries here too (9.8 % of calls
    spilled to c against 4.6 % to b, at 18 sessions)."""
    res = analyze(load_profile(DATA / "bucket-spill-level-chain-third.yaml"), sessions=18)
    share = {c.quota: c.at_sessions.loss_fraction for c in res.constraints
             if c.at_sessions is not None}
    assert 0.0 < share["q1"] <= share["q0"], share


def test_the_deep_law_is_the_chains() -> None:
    """Where the chain's grid still holds the bucket, the level law by level crossing
    (what a deeper bucket gets) refuses each charge, refuses the calls and refuses a
    large call again a backoff later as the chain does: the answer moves smoothly where
    the chain hands over (the Lundberg bound there said 32 sessions for 21)."""
    chain = _chain()
    deep = DeepBucket([(1.0, np.array([0.0, 1.0]), _pmf())], 100.0, REFILL, DEPTH)
    for lam in (LAM, 1.2 * LAM):
        sizes = np.array(SIZES)
        assert np.allclose(deep.refused_by_charge(lam, sizes),
                           chain.refused_by_charge(lam, sizes), atol=0.005)
        assert math.isclose(deep.poisson_share(lam), chain.poisson_share(lam), abs_tol=5e-4)
        big = np.array([SIZES[1]])
        assert np.allclose(deep.refused_after(lam, big, (1.0, 4.0)),
                           chain.refused_after(lam, big, (1.0, 4.0)), atol=0.005)


@pytest.mark.parametrize(("name", "sim"), [
    ("bucket-spill-deep-22s", Recorded(21, 21, 21)),
    ("bucket-spill-deep-25s", Recorded(21, 21, 22)),
])
def test_a_deep_bucket_spilling_large_prompts_against_the_simulator(
        name: str, sim: Recorded) -> None:
    """The same fleet with its bucket ~17 and ~19 mean calls deep, past the chain's
    grid: simulated N* (``capacity ceiling --seed 1``, 20 replications × 1 h); the
    Lundberg bound's fluid spill said 32 for both."""
    res = analyze(load_profile(DATA / f"{name}.yaml"))
    assert "level crossing" in res.constraints[0].method
    assert_accurate(res.burst_ceiling, sim, name)


def test_an_rpm_and_itpm_bucket_spill_what_either_refuses() -> None:
    """tests/data/bucket-spill-rpm-itpm.yaml: 60 RPM beside the 100k ITPM on the same
    bucket; a call is admitted only when both hold its charge. Simulated N* 18 [17–18]
    (``capacity ceiling --seed 1``); read from the slot turning away the most, 30."""
    assert_accurate(analyze(load_profile(DATA / "bucket-spill-rpm-itpm.yaml")).burst_ceiling,
                    Recorded(18, 17, 18), "bucket-spill-rpm-itpm")
