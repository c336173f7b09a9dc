"""Backoff retries at a token bucket they come back to still short
(tests/data/bucket-backoff-again.yaml, hunt-3099): each retry's refusal is read from the
level its call was refused at, carried over the backoff (BucketChain._again, from
refused_after), not from the average level a fresh call meets. Checked against the
engine's own attempts and the simulated saturation search."""

from __future__ import annotations

from pathlib import Path

from benchmarks.session32_probes import bucket_chain_at, refused_by_attempt
from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.search import find_saturation

PROFILE = Path(__file__).resolve().parent / "data" / "bucket-backoff-again.yaml"
SESSIONS = 147


def test_retries_refused_again_against_the_engine() -> None:
    """147 sessions, 3 × 1 h: the engine refuses 1.9 % of first attempts, 29 % of first
    retries, 37 % of second ones. The model: 23 % for a first retry and 21 % for a
    second, chained from the level the first was refused at (the average level said
    1.5 %, as a fresh call's; each retry apart, 14 % for the second)."""
    profile = load_profile(PROFILE)
    refused = dict(zip((1, 2, 3), refused_by_attempt(profile, SESSIONS), strict=True))
    chain, lam, _ = bucket_chain_at(profile, SESSIONS)
    chained = chain._retry_refusals(lam)     # retries 1..k all refused, given the first
    assert refused[2] > 10 * refused[1]
    assert abs(float(chained[0]) - refused[2]) <= 0.08, (chained, refused)
    # The second retry given the first refused: the engine's 37 %, chained 21 %.
    assert 0.17 <= float(chained[1] / chained[0]) <= refused[3], (chained, refused)
    assert chain.poisson_share(lam) < 0.1 * refused[2]


def test_the_ceiling_against_the_simulated_search() -> None:
    """Analytic N* 162 against the simulated 147 [145–149]: still 10 % optimistic — the
    retries the bucket admits take the level the fresh calls after them need (fresh
    refusals 1.5 % without retries, 1.9 % with, in the engine), which the model leaves
    out — where the average level's retries said 174 (+18 %)."""
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, 130, n_a + 5, seed=1, replications=20, max_sessions=400)
    assert sat.n_star <= n_a <= 1.12 * sat.n_star, (n_a, sat.n_star, sat.n_lo, sat.n_hi)


def test_a_counted_refusal_takes_its_unit_before_the_retry() -> None:
    """A 150 RPM bucket 1 s deep counting its refusals, one call a turn, two backoff
    retries: a refusal empties it, so the retry meets it from 0 — analytic N* 31 against
    the simulated 31 [30–35] (the level left as it was said 33)."""
    from benchmarks.analytic_accuracy import BACKOFF, _one_call_bucket
    from tests._accuracy import assert_profile_accurate

    data = _one_call_bucket("counted-rpm", {"rpm": 150}, 1, BACKOFF).model_dump(
        mode="json", exclude_none=True)
    data["quotas"]["q0"]["rejected_count"] = True
    profile = profile_from_dict(data)
    assert analyze(profile).burst_ceiling <= 32
    assert_profile_accurate(profile, span=6, max_sessions=80)
