"""Saturation search: monotone in the quota, consistent CI, bracket widening, agreement
with the closed form, and the p95 latency target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from capacity.errors import CapacityError
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation

from .conftest import ROOT

WEB = ROOT / "profiles" / "web-research.yaml"
FAST: dict[str, Any] = {"replications": 8, "horizon_s": 1800.0, "seed": 21}


def _web(rpm: float = 150) -> Profile:
    return load_profile(WEB, [f"quotas.deployment.rpm={rpm}"])


def _single_call(quota: dict[str, Any], *, think: Any = 60, targets: dict[str, Any] | None = None,
                 pacing: dict[str, Any] | None = None, input_tokens: int = 10) -> Profile:
    data: dict[str, Any] = {
        "models": {"m": {"ttft": 0.1, "tokens_per_second": 1000}},
        "quotas": {"a": {"models": ["m"], **quota}},
        "session": {"think_time": think, "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": input_tokens, "output_tokens": 1}}]}}},
        "retry": {"max_retries": 0},
        "targets": targets or {"max_429_fraction": 0.01},
    }
    if pacing:
        data["pacing"] = pacing
    return profile_from_dict(data)


def test_more_quota_never_lowers_n_star() -> None:
    """N* is non-decreasing in the RPM quota (same seed, common random numbers)."""
    n_stars = [find_saturation(_web(rpm), 20, 80, **FAST).n_star for rpm in (120, 150, 200)]
    assert n_stars == sorted(n_stars)
    assert n_stars[0] < n_stars[-1]


def test_result_is_consistent_with_its_evaluations() -> None:
    """N_lo ≤ N* ≤ N_hi; the means at N* meet the target and at N* + 1 they do not."""
    r = find_saturation(_web(), 40, 90, **FAST)
    assert 0 < r.n_lo <= r.n_star <= r.n_hi
    by_n = {e.sessions: e for e in r.evaluations}
    assert by_n[r.n_star].meets and not by_n[r.n_star + 1].meets
    assert r.binding == ("max_429_fraction",)
    assert r.metric_at_n_star is not None and r.metric_at_n_star.sessions == r.n_star
    assert r.metric_at_n_star.metrics["attempt_429_fraction"].mean <= 0.01
    d = r.to_dict()
    assert d["n_star"] == r.n_star and len(d["evaluations"]) == len(r.evaluations)


def test_a_bracket_that_misses_is_widened() -> None:
    """Brackets entirely below or above N* find the same N* as one around it."""
    good = find_saturation(_web(), 30, 60, **FAST)
    low = find_saturation(_web(), 2, 4, **FAST)
    high = find_saturation(_web(), 300, 600, **FAST)
    assert low.n_star == good.n_star == high.n_star
    assert low.bracket == (2, 4)


def test_n_star_matches_the_poisson_closed_form() -> None:
    """Sparse sessions against 38 per 10 s windows at a 1 % target: the simulated CI on N*
    covers the N whose Poisson stop-loss ratio is 1 % (within 1 %)."""
    z, q, w = 2000.0, 38, 10.0
    p = _single_call({"rpm": q * 6, "enforcement": {"type": "fixed_window", "window": w}},
                     think={"exponential": z})

    def loss(n: int) -> float:
        m = n / (z + 0.101) * w
        return (m * stats.poisson.sf(q - 1, m) - q * stats.poisson.sf(q, m)) / m

    ns = np.arange(3000, 10000, 5)
    analytic = int(ns[[loss(int(n)) <= 0.01 for n in ns]].max())
    r = find_saturation(p, 5000, 8000, replications=10, horizon_s=3600, warmup_s=600,
                        seed=5)
    assert r.n_lo * 0.99 <= analytic <= r.n_hi * 1.01
    assert r.n_hi - r.n_lo < 0.1 * r.n_star


def test_latency_target_binds_when_pacing_removes_429s() -> None:
    """With client pacing there are no 429s, and the p95 latency target decides N*."""
    p = _single_call({"rpm": 60, "enforcement": {"type": "fixed_window", "window": "10s"}},
                     think={"exponential": 20}, pacing={"rpm": 50, "burst": "1s"},
                     targets={"max_429_fraction": 0.01, "p95_turn_latency": "5s"})
    r = find_saturation(p, 5, 40, **FAST)
    assert r.binding == ("p95_turn_latency",)
    assert r.metric_at_n_star is not None
    m = r.metric_at_n_star.metrics
    assert m["attempt_429_fraction"].mean == 0.0
    assert m["turn_latency_p95_s"].mean <= 5.0


def test_unlimited_quota_is_capped_at_max_sessions() -> None:
    """If even max_sessions meets the targets, N* is that cap and flagged as such."""
    p = _single_call({"rpm": 1e9})
    r = find_saturation(p, 10, 20, max_sessions=50, replications=3, horizon_s=300, seed=1)
    assert (r.n_star, r.capped) == (50, True)


def test_impossible_quota_gives_zero() -> None:
    """A call that can never be admitted: not even one session meets the target."""
    p = _single_call({"tpm": 600, "enforcement": {"type": "fixed_window", "window": "10s"}},
                     input_tokens=1000)
    r = find_saturation(p, 5, 10, replications=3, horizon_s=300, seed=1)
    assert (r.n_star, r.n_lo, r.n_hi) == (0, 0, 0)
    assert r.metric_at_n_star is None
    assert r.to_dict()["metric_at_n_star"] is None


def test_progress_counts_replications_across_evaluations() -> None:
    """The callback's count rises by one per replication over the whole search."""
    seen: list[int] = []
    r = find_saturation(_single_call({"rpm": 1e9}), 1, 2, max_sessions=4, replications=2,
                        horizon_s=60, seed=1, progress=seen.append)
    assert seen == list(range(1, 2 * len(r.evaluations) + 1))


@pytest.mark.parametrize("bracket", [(1.5, 10), (True, 10)])
def test_a_non_integer_bracket_is_a_user_error(bracket: tuple[Any, Any]) -> None:
    """The bracket must be two integers."""
    with pytest.raises(CapacityError):
        find_saturation(_single_call({"rpm": 60}), *bracket, seed=1)


def test_a_daily_limit_binds_at_its_mean_ceiling() -> None:
    """rpd = 100,000 alone, 30 s exponential think time: the mean-value (and burst-aware)
    ceiling is 100000 · 30.101 / 86400 ≈ 34.8 sessions; the simulated N* must be close to
    it (it was 882 when every replication started the day window at a zero count)."""
    p = _single_call({"rpd": 100_000}, think={"exponential": 30})
    r = find_saturation(p, 30, 40, replications=20, horizon_s=3600, seed=3)
    assert 0.9 * 34.8 <= r.n_star <= 1.15 * 34.8
    assert not r.capped


def test_a_bracket_above_the_cap_never_simulates_past_it() -> None:
    """max_sessions bounds every evaluation, and a result stopped by it is flagged."""
    p = _single_call({"rpm": 1e9})
    r = find_saturation(p, 40, 80, max_sessions=12, replications=2, horizon_s=120, seed=1)
    assert max(e.sessions for e in r.evaluations) == 12
    assert (r.n_star, r.n_hi, r.capped) == (12, 12, True)
    assert r.to_dict()["capped"] is True


def _scan(p: Profile, ns: range, **kw: Any) -> tuple[int, int, int]:
    """(N*, N_lo, N_hi) by simulating every N in ``ns`` with every replication: the
    largest N before the first one that misses the targets at each level."""
    from capacity.search import _within
    from capacity.sim.engine import simulate

    first_fail = {"mean": 0, "upper": 0, "lower": 0}
    for n in ns:
        r = simulate(p, n, **kw)
        for level in first_fail:
            if not first_fail[level] and not _within(
                    r.metrics["attempt_429_fraction"], 0.01, level):  # type: ignore[arg-type]
                first_fail[level] = n
    return first_fail["mean"] - 1, first_fail["upper"] - 1, first_fail["lower"] - 1


def test_search_equals_an_exhaustive_scan() -> None:
    """The boundaries the search pins (fewer points, cheap probes, interpolation) are the
    ones simulating every N in turn finds, from brackets below, around and above N*."""
    p = _single_call({"rpm": 60, "enforcement": {"type": "fixed_window", "window": "10s"}},
                     think={"exponential": 20})
    kw: dict[str, Any] = {"replications": 12, "horizon_s": 1200.0, "seed": 4}
    want = _scan(p, range(3, 31), **kw)
    assert 5 < want[1] <= want[0] <= want[2] < 25
    for bracket in [(want[0] - 1, want[0] + 8), (2, 5), (want[0] + 6, 40)]:
        r = find_saturation(p, *bracket, **kw)
        assert (r.n_star, r.n_lo, r.n_hi) == want, bracket
        assert all(e.sessions not in r.probes for e in r.evaluations)


def test_a_bracket_too_high_steps_down_by_ten_percent() -> None:
    """A lower end a little above N* is not halved: the search never goes below 90 % of
    it when N* lies within that step, and the cheap probes are counted."""
    good = find_saturation(_web(), 40, 80, **FAST)
    lo = good.n_lo + 3
    r = find_saturation(_web(), lo, 2 * lo, **FAST)
    assert (r.n_star, r.n_lo, r.n_hi) == (good.n_star, good.n_lo, good.n_hi)
    lowest = min([e.sessions for e in r.evaluations] + list(r.probes))
    assert lowest >= int(0.9 * lo) - 1
    assert r.replications_simulated >= FAST["replications"] * len(r.evaluations)


def test_independent_workload_needs_few_evaluations() -> None:
    """1 → 3 → 1 calls, Exp(120 s) think time, 500 RPM in 10 s windows, no retries: the
    analytic bracket [burst-aware, mean-value] is searched with at most 8 full
    evaluations (the bisection this replaced needed 10-18) and the same boundaries."""
    p = load_profile(ROOT / "benchmarks" / "independent.yaml")
    r = find_saturation(p, 154, 213, replications=20, horizon_s=3600.0, seed=1)
    # The bisection this replaced (benchmarks/numba_engine/search_bisect.py) gives the
    # same 154 [152-156] in 18 evaluations (155 [153-157] before sessions started in
    # steady state).
    assert (r.n_star, r.n_lo, r.n_hi) == (154, 152, 156)
    assert len(r.evaluations) <= 8
    assert r.replications_simulated <= 0.5 * 20 * 18
