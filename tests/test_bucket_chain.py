"""The token bucket's exact level chain (capacity.analytic.bucket) against a direct Monte
Carlo of a bucket fed compound-Poisson launches, and the shallow-bucket ceilings against
the simulated N* (issue 13: the Lundberg bound counted the depth, a call needs its charge).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from capacity.analytic.bucket import BucketChain
from capacity.analytic.model import analyze, lundberg_theta
from capacity.analytic.window import RetryModel
from capacity.profile.loader import profile_from_dict
from capacity.search import find_saturation

from ._accuracy import assert_accurate


def _bucket_mc(rng: np.random.Generator, lam: float, counts: NDArrayLike, charges: NDArrayLike,
               refill: float, depth: float, counted: bool, launches: int = 200_000) -> float:
    """Share of calls refused by a bucket (``depth`` units, ``refill`` per second) fed by
    Poisson launches at ``lam`` per second of ``counts``-distributed calls, each charging
    a draw of ``charges`` (index = units); a refused call charges nothing (``counted``:
    it takes one unit if there, as :meth:`TokenBucket.count_rejection`)."""
    gaps = rng.exponential(1.0 / lam, size=launches)
    ks = rng.choice(len(counts), size=launches, p=counts)
    total = int(ks.sum())
    sizes = rng.choice(len(charges), size=total, p=charges).astype(np.float64)
    level, used, refused = depth, 0, 0
    for gap, k in zip(gaps.tolist(), ks.tolist(), strict=True):
        level = min(depth, level + refill * gap)
        for b in sizes[used: used + k].tolist():
            if b <= level:
                level -= b
            else:
                refused += 1
                if counted:
                    level = max(0.0, level - 1.0)
        used += k
    return refused / total


NDArrayLike = Any
NO_RETRY = RetryModel(0, True)


def _lattice(points: dict[int, float], h: float) -> np.ndarray:
    out = np.zeros(max(points) // int(h) + 1)
    for x, p in points.items():
        out[x // int(h)] = p
    return out


@pytest.mark.parametrize("lam", [0.6, 1.2])
def test_token_charges_against_monte_carlo(lam: float) -> None:
    # 10,000 tokens deep, 10,000 per second; launches of 1 or 3 calls of 3,000 or 5,000
    # tokens: the bucket holds two or three calls.
    counts = np.array([0.0, 0.5, 0.0, 0.5])
    charge_pts = {3000: 0.5, 5000: 0.5}
    h = 1000.0
    chain = BucketChain(counts, _lattice(charge_pts, h), h, 10_000.0, 10_000.0, NO_RETRY)
    charges = np.zeros(5001)
    for x, p in charge_pts.items():
        charges[x] = p
    truth = _bucket_mc(np.random.default_rng(7), lam, counts, charges, 10_000.0,
                       10_000.0, False)
    got = chain.shares(lam)["call"]
    assert got == pytest.approx(truth, rel=0.05), (got, truth)


@pytest.mark.parametrize(("lam", "counted"), [(1.0, True), (1.8, True), (1.8, False)])
def test_requests_bucket_against_monte_carlo(lam: float, counted: bool) -> None:
    # 150 RPM, 1 s deep: 2.5 requests, one call a launch.
    counts = np.array([0.0, 1.0])
    retry = RetryModel(0, True, counts_rejected=counted)
    chain = BucketChain(counts, np.array([0.0, 1.0]), 1.0, 2.5, 2.5, retry)
    truth = _bucket_mc(np.random.default_rng(11), lam, counts, np.array([0.0, 1.0]), 2.5,
                       2.5, counted)
    got = chain.shares(lam)["call"]
    assert got == pytest.approx(truth, rel=0.05), (got, truth)


def test_lundberg_bound_is_optimistic_where_the_chain_matters() -> None:
    # The bound exp(-θ·depth) is P(workload > depth); a 4,000-token call is refused once
    # the workload exceeds depth − 4,000: far more often.
    h = 1000.0
    sev = _lattice({4000: 1.0}, h)
    chain = BucketChain(np.array([0.0, 1.0]), sev, h, 10_000.0, 10_000.0, NO_RETRY)
    lam = 0.8
    bound = float(np.exp(-lundberg_theta(lam, sev, h, 10_000.0) * 10_000.0))
    assert chain.shares(lam)["call"] > 2.0 * bound


def shallow(quota: dict[str, Any], name: str, retry: dict[str, Any] | None = None) -> Any:
    return profile_from_dict({
        "name": name,
        "models": {"m": {"ttft": "0.5s", "tokens_per_second": 50}},
        "quotas": {"q0": {"models": ["m"], **quota}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 4000, "output_tokens": 200}}]}}},
        "targets": {"max_429_fraction": 0.01},
        "retry": retry or {"max_retries": 0},
    })


SHALLOW = [
    # 600k ITPM, 1 s deep: 10,000 tokens, two and a half 4,000-token calls (was 55 vs 39).
    ({"itpm": 600_000, "enforcement": {"type": "token_bucket", "burst": "1s"}},
     "bucket-itpm-1s"),
    # 150 RPM, 1 s deep: 2.5 requests (was 55 vs 37).
    ({"rpm": 150, "enforcement": {"type": "token_bucket", "burst": "1s"}}, "bucket-rpm-1s"),
]


HERDS = [
    # Retries that honour the retry-after: 150 RPM with the SDK's 2 retries, 1 s deep
    # (the orbit fixed point said 35 vs 22 [19-25]) and 2 s deep (95 vs 78 [76-82]),
    # rejections counted (a refusal empties the bucket: the retries pending chain); and
    # the 4,000-token calls against 10,000 tokens (uncounted: they come back together
    # when a charge fits, a queue; 37 vs 35 [33-38]).
    ({"rpm": 150, "enforcement": {"type": "token_bucket", "burst": "1s"}},
     "bucket-rpm-1s-sdk", {"max_retries": 2}),
    ({"rpm": 150, "enforcement": {"type": "token_bucket", "burst": "2s"}},
     "bucket-rpm-2s-sdk", {"max_retries": 2}),
    ({"itpm": 600_000, "enforcement": {"type": "token_bucket", "burst": "1s"}},
     "bucket-itpm-1s-sdk", {"max_retries": 2}),
    # Backoff retries (no retry-after) at a bucket counting its rejections: a refusal
    # empties it and the retry, back ~0.5 s later, meets it still near empty — the
    # chain of (level, retries pending); the Poisson orbit said 95 vs 80 [77-85].
    ({"rpm": 150, "enforcement": {"type": "token_bucket", "burst": "2s"}},
     "bucket-rpm-2s-backoff", {"max_retries": 2, "honour_retry_after": False}),
    # Five retries honouring the retry-after at the same counting bucket: each told
    # the time to one request from the level it found, but the refusal emptied it — the
    # same pending chain (the herd, which took each refused retry as the call's last
    # with chance 1/m, said 70 vs 65 [63-69]).
    ({"rpm": 150, "enforcement": {"type": "token_bucket", "burst": "2s"}},
     "bucket-rpm-2s-m5", {"max_retries": 5}),
]


@pytest.mark.parametrize(("quota", "name", "retry"),
                         [(q, n, None) for q, n in SHALLOW] + HERDS)
def test_shallow_bucket_meets_the_simulated_ceiling(quota: dict[str, Any], name: str,
                                                    retry: dict[str, Any] | None) -> None:
    profile = shallow(quota, name, retry)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 10), n_a + 10, seed=1, replications=20,
                          max_sessions=170)
    assert_accurate(n_a, sat, name)
