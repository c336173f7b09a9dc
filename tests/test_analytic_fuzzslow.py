"""Shortcuts for the slow fuzz profiles give the long way's answers, in bounded work.

Session 5's fuzzer found valid profiles whose analytic answer took seconds: a Lundberg
root over a batch law of 144,086 points (fz61), a retry fixed point that cycled for its
200 FFT steps (fz110), lognormal lattices of 582,737 points rebuilt for every cycle of
the think-time sweep (fz66). Each shortcut is pinned here against the long way, and its
work is counted (never timed: speed is measured in benchmarks/).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capacity.analytic import model as amodel
from capacity.analytic import window
from capacity.model.dist import Distribution
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

DATA = Path(__file__).resolve().parent / "data"


def _long_law() -> np.ndarray:
    """A lognormal prompt (median 600, p95 1,800 tokens) on a one-token lattice, five of
    them convolved: a batch law of ~10^5 points."""
    one = Distribution.parse({"lognormal": {"median": 600, "p95": 1800}},
                             "tokens").lattice_pmf(1.0, top=20000.0)
    size = 5 * (one.size - 1) + 1
    law = np.fft.irfft(np.fft.rfft(one, 1 << 17) ** 5, 1 << 17)[:size]
    law = np.where(law > 1e-18, law, 0.0)
    return np.asarray(law / law.sum(), dtype=np.float64)


def test_newton_root_is_brents_on_a_long_law(monkeypatch: pytest.MonkeyPatch) -> None:
    law = _long_law()
    assert np.count_nonzero(law) > amodel._NEWTON_POINTS
    calls = {"n": 0}
    real = amodel._log_mgf

    def counted(*a: Any) -> tuple[float, float]:
        calls["n"] += 1
        return real(*a)

    mean = float(np.dot(np.arange(law.size), law))
    rate = 4517.0
    lams = [*np.geomspace(1e-4, 0.999 * rate / mean, 30), rate / mean * 1.001]
    newton = []
    monkeypatch.setattr(amodel, "_log_mgf", counted)
    for lam in lams:
        newton.append(amodel.lundberg_theta(float(lam), law, 1.0, rate))
    monkeypatch.setattr(amodel, "_NEWTON_POINTS", 10**9)  # Brent's method, as before
    brent = [amodel.lundberg_theta(float(lam), law, 1.0, rate) for lam in lams]
    assert newton[-1] == brent[-1] == 0.0          # load above the refill: no root
    for a, b in zip(newton[:-1], brent[:-1], strict=True):
        assert a > 0 and math.isclose(a, b, rel_tol=1e-9)
    # About a dozen passes over the law per root from the fixed start (Brent's: ~20).
    assert calls["n"] <= 14 * len(lams)


def test_newton_root_does_not_depend_on_what_was_asked_before() -> None:
    # The same (law, rate) gives the same root to the bit whatever roots came before (a
    # start from a nearby rate's root made the last bits depend on the call history).
    law = _long_law()
    mean = float(np.dot(np.arange(law.size), law))
    rate = 4517.0
    lams = [float(v) for v in np.geomspace(1e-3, 0.99 * rate / mean, 7)]
    up = [amodel.lundberg_theta(lam, law, 1.0, rate) for lam in lams]
    amodel._NEWTON_MEMO.clear()
    down = [amodel.lundberg_theta(lam, law, 1.0, rate) for lam in reversed(lams)]
    amodel._NEWTON_MEMO.clear()
    alone = [amodel.lundberg_theta(lam, law.copy(), 1.0, rate) for lam in lams]
    assert up == down[::-1] == alone


def test_short_laws_take_brents_method(monkeypatch: pytest.MonkeyPatch) -> None:
    law = Distribution.parse({"lognormal": {"median": 30, "p95": 90}}, "tokens").lattice_pmf(1.0)
    assert np.count_nonzero(law) <= amodel._NEWTON_POINTS
    monkeypatch.setattr(amodel, "_lundberg_newton", None)  # never called for it
    assert amodel.lundberg_theta(0.5, law, 1.0, 40.0) > 0


def test_fuzz_long_bucket_law_answer_and_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = amodel._log_mgf

    def counted(*a: Any) -> tuple[float, float]:
        calls["n"] += 1
        return real(*a)

    monkeypatch.setattr(amodel, "_log_mgf", counted)
    r = amodel.analyze(load_profile(str(DATA / "fuzz-long-bucket-law.yaml")))
    assert r.burst_ceiling == 0
    assert r.mean_ceiling == pytest.approx(45.32644988256396, rel=1e-12)
    # 43 roots over the long law: 360 passes (Brent's method: 1,483).
    assert 0 < calls["n"] <= 500


@pytest.mark.parametrize("start, period", [(0, 3), (5, 4), (17, 1), (3, 7)])
def test_iterate_with_a_cycle_lands_where_the_full_walk_does(start: int, period: int) -> None:
    # A map whose orbit runs `start` steps, then cycles with `period` (values far apart).
    orbit = [0.001 * (k + 1) for k in range(start)] + [0.3 + 0.1 * k for k in range(period)]

    def step(p: float) -> float:
        i = orbit.index(p) if p in orbit else -1
        if i < 0:
            return orbit[0]
        return orbit[i + 1] if i + 1 < len(orbit) else orbit[start]

    for limit in (1, 2, 7, 200, 201):
        p = 0.0
        for _ in range(limit):  # the walk as it was
            new = step(p)
            if abs(new - p) < 1e-10:
                p = new
                break
            p = new
        assert window._iterate(step, 0.0, limit, 1e-10) == p


@pytest.mark.parametrize("ratio", [0.5, 0.9, 0.97, 0.99])
def test_iterate_extrapolates_a_geometric_approach(ratio: float) -> None:
    # p -> a + r·p near a fixed point: a plain walk takes log(1e-10)/log(r) steps (2,300
    # at 0.99); the extrapolation lands on the same point within the walk's own error.
    calls = {"n": 0}
    fixed = 0.02

    def step(p: float) -> float:
        calls["n"] += 1
        return fixed + ratio * (p - fixed) + 0.05 * (p - fixed) ** 2

    got = window._iterate(step, 0.0, 5000, 1e-10)
    jumped = calls["n"]
    plain = window._iterate(step, 0.0, 5000, 1e-10, jumps=False)
    assert abs(got - fixed) < 1e-10 * ratio / (1 - ratio) + 1e-12
    assert abs(got - plain) < 2e-10 * ratio / (1 - ratio) + 1e-12
    assert jumped <= max(10, (calls["n"] - jumped) // 8)   # 0.9: 10 steps, not 161


def test_iterate_does_not_jump_past_one() -> None:
    # A walk rising geometrically towards a point above 1 (a storm's share is capped at 1
    # by the map itself): a jump never lands at or above 1.
    seen = []

    def step(p: float) -> float:
        seen.append(p)
        return min(1.0, 1.5 - 0.9 * (1.5 - p))

    assert window._iterate(step, 0.0, 200, 1e-10) == 1.0
    assert max(seen) <= 1.0


def test_fuzz_sliding_retry_cycle_answer_and_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = window.ClumpWindowModel._pmf

    def counted(self: Any, n: float, retry_calls: float) -> Any:
        calls["n"] += 1
        return real(self, n, retry_calls)

    monkeypatch.setattr(window.ClumpWindowModel, "_pmf", counted)
    r = amodel.analyze(load_profile(str(DATA / "fuzz-sliding-retry-cycle.yaml")))
    # 43 while the log's backoff retries were read one at a time; 44 since they are
    # refused again together and the ones let in cost fresh calls (simulated 45 [45-45]).
    assert r.burst_ceiling == 44
    # The cycles are walked once each: 238 window laws (2,000 before).
    assert calls["n"] <= 400


def test_bucket_laws_built_once_per_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = amodel.batch_units_pmf

    def counted(*a: Any, **k: Any) -> Any:
        out = real(*a, **k)
        built.append(out.size)
        return out

    monkeypatch.setattr(amodel, "batch_units_pmf", counted)
    p = load_profile(str(DATA / "fuzz-long-bucket-law.yaml"))
    first = amodel.analyze(p)
    n_first = len(built)
    # One law per (bucket, launch event), though the think-time sweep and the joint
    # ceiling build each bucket's model at three cycles and more.
    wl = Workload.from_profile(p)
    buckets = [c for c in wl.constraints if c.enforcement == "token_bucket"]
    assert 0 < n_first <= sum(len(amodel._event_mix(wl, c)) for c in buckets)
    again = amodel.analyze(p)  # the same profile: every bucket law remembered
    assert len(built) == n_first
    assert again.to_dict() == first.to_dict()
