"""A token bucket spilling lone calls (one a turn) into the next deployment
(capacity/analytic/fleet.py, ``BucketSpill.levels``): which calls it turns away is the
level chain's (capacity/analytic/bucket.py, ``BucketChain.refused_by_charge``: a call
charging ``b`` is refused when the level it finds is below ``b``), so the large calls
spill, and the next deployments are charged for them as they charge those calls (in
any dimension); their backoff retries find the bucket still short
(``BucketChain.refused_after``)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

from capacity.analytic.bucket import BucketChain
from capacity.analytic.model import analyze
from capacity.analytic.window import RetryModel
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).resolve().parent / "data"

# 25,000 tokens deep, 100,000 a minute; 90 % 200-token and 10 % 20,000-token prompts
# (tests/data/bucket-spill-level-chain.yaml's bucket) at 18 sessions' 50.55 calls a minute.
DEPTH, REFILL, LAM = 25_000.0, 100_000.0 / 60.0, 50.55 / 60.0
SIZES, SHARES = (200.0, 20_000.0), (0.9, 0.1)


def _chain() -> BucketChain:
    h = 100.0
    pmf = np.zeros(201)
    pmf[2], pmf[200] = SHARES
    return BucketChain(np.array([0.0, 1.0]), pmf, h, REFILL, DEPTH,
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
