"""The token bucket's adjustment coefficient θ* (capacity.analytic.model.lundberg_theta)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capacity.analytic.model import lundberg_theta


@pytest.mark.parametrize("rate", [10.0, 1e4, 1.7e6])
def test_root_of_fixed_batches(rate: float) -> None:
    # Batches of exactly b units at λ per second: λ (e^{θ b} - 1) = r θ.
    b, lam = 3.0, 0.2 * rate / 3.0
    severity = np.zeros(4)
    severity[3] = 1.0
    theta = lundberg_theta(lam, severity, 1.0, rate)
    assert theta > 0
    assert lam * math.expm1(theta * b) == pytest.approx(rate * theta, rel=1e-8)


def test_root_near_zero_with_a_huge_refill() -> None:
    # With an rpm of 1e8 (refill 1.7 million per second) the log-sum-exp form of
    # M_B(θ) - 1 rounds to ±1e-16 near θ = 0, which λ = 8e5 turned into a positive g(θ)
    # and a lost bracket ('brentq: f(1e-300) and f(..) must have opposite signs').
    severity = np.array([0.0, 0.6666673988294693] + [0.06666652023410619] * 5)
    lam, rate = 833334.2460573647, 1e8 / 60.0
    theta = lundberg_theta(lam, severity, 1.0, rate)
    x = np.arange(len(severity), dtype=float)
    f = severity / severity.sum()
    assert theta > 0
    assert lam * float(np.dot(f, np.expm1(theta * x))) == pytest.approx(rate * theta, rel=1e-8)


def test_huge_bucket_with_a_population_answers() -> None:
    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict

    call = {"model": "m", "input_tokens": 200, "output_tokens": 20}
    profile = profile_from_dict({
        "name": "huge-bucket",
        "models": {"m": {"ttft": "0.5s", "tokens_per_second": 80}},
        "quotas": {"q": {"models": ["m"], "rpm": 1e8,
                         "enforcement": {"type": "token_bucket", "burst": "5s"}}},
        "session": {"think_time": {"exponential": "30s"}, "turns": {"t": {"steps": [
            {"call": call},
            {"parallel": {"count": {"uniform": [2, 6]}, "call": call}}]}}},
        "populations": {"other": {"think_time": {"exponential": "5s"}, "sessions": 9,
                                  "turns": {"p": {"steps": [{"call": call}]}}}},
        "retry": {"max_retries": 0},
    })
    result = analyze(profile)
    # 1e8 RPM over a ~16 s cycle of ~5 calls: millions of sessions, and the napkin's
    # order of magnitude (the bucket is 8.3 million requests deep).
    assert 1e6 < result.burst_ceiling < 1e8
