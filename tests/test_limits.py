"""Quota enforcement: allowances, refills, retry-after, multi-quota admission, and the
array (numba) form taking exactly the decisions of the readable Python classes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.limits import (
    FixedWindow,
    Limiter,
    SlidingWindow,
    TokenBucket,
    ceil_ms,
    charge_units,
    limit_slots,
)
from capacity.profile.loader import profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.kernels import LimiterArrays, limiter_attempt, loaded_state, run_attempts


def _profile(quotas: dict[str, Any], call: dict[str, Any] | None = None,
             models: tuple[str, ...] = ("m",)) -> Profile:
    call = call or {"model": models[0], "input_tokens": 100, "output_tokens": 50}
    return profile_from_dict({
        "models": {m: {"tokens_per_second": 50} for m in models},
        "quotas": quotas,
        "session": {"think_time": 10, "turns": {"t": {"steps": [{"call": call}]}}},
    })


def test_allowance_is_floor_of_quota_times_window_over_minute() -> None:
    """q = ⌊Q·w/60⌋: 150 RPM on 10 s windows allows 25, 600 on 1 s allows 10, 100 on 1 s 1."""
    for rpm, window, q in [(150, "10s", 25), (600, "1s", 10), (100, "1s", 1), (60, "1s", 1)]:
        p = _profile({"a": {"models": ["m"], "rpm": rpm,
                            "enforcement": {"type": "fixed_window", "window": window}}})
        (slot,) = limit_slots(p)
        assert slot.allowance == q


def test_token_bucket_depth_and_rate() -> None:
    """A bucket holds Q·burst/60 and refills at Q/60 per second."""
    p = _profile({"a": {"models": ["m"], "tpm": 6000,
                        "enforcement": {"type": "token_bucket", "burst": "30s"}}})
    (slot,) = limit_slots(p)
    assert slot.allowance == pytest.approx(3000.0)
    assert slot.rate == pytest.approx(100.0)


def test_daily_dimensions_default_to_day_windows() -> None:
    """rpd is checked over 86400 s windows whatever the quota's minute enforcement."""
    p = _profile({"a": {"models": ["m"], "rpm": 60, "rpd": 1000,
                        "enforcement": {"type": "token_bucket"}}})
    rpm, rpd = limit_slots(p)
    assert (rpm.kind, rpd.kind) == ("token_bucket", "fixed_window")
    assert rpd.window_s == 86400.0 and rpd.allowance == 1000


def test_fixed_window_admits_q_then_rejects_until_the_boundary() -> None:
    """The 26th request of a 25-per-10 s window waits exactly until the next boundary."""
    m = FixedWindow(25, 10.0, offset_s=0.0)
    for _ in range(25):
        assert m.check(3.0, 1) == 0.0
        m.charge(3.0, 1)
    assert m.check(3.0, 1) == pytest.approx(7.0)
    assert m.check(9.999, 1) == pytest.approx(0.001)
    assert m.check(10.0, 1) == 0.0  # a new window


def test_fixed_window_offset_shifts_boundaries() -> None:
    """With the clock offset by 4 s, a window ends at t = 6 s, not 10 s."""
    m = FixedWindow(1, 10.0, offset_s=4.0)
    m.charge(1.0, 1)
    assert m.check(1.0, 1) == pytest.approx(5.0)


def test_charge_larger_than_allowance_is_never_admitted() -> None:
    """A call needing more than a whole window or bucket waits forever (retry-after inf)."""
    assert FixedWindow(10, 1.0).check(0.0, 11) == math.inf
    assert SlidingWindow(10, 1.0).check(0.0, 11) == math.inf
    assert TokenBucket(1.0, 10.0).check(0.0, 11) == math.inf


def test_token_bucket_refills_continuously() -> None:
    """An empty bucket refilling at 2/s has one unit after 0.5 s and never exceeds depth."""
    b = TokenBucket(rate=2.0, depth=4.0)
    b.charge(0.0, 4.0)
    assert b.check(0.0, 1.0) == pytest.approx(0.5)
    assert b.check(0.5, 1.0) == 0.0
    assert b.check(100.0, 4.0) == 0.0
    assert b.level == pytest.approx(4.0)


def test_sliding_window_waits_for_the_oldest_charges_to_expire() -> None:
    """Two of three in (t−10, t]: the third waits until the first charge is 10 s old."""
    m = SlidingWindow(2, 10.0)
    m.charge(1.0, 1)
    m.charge(4.0, 1)
    assert m.check(5.0, 1) == pytest.approx(6.0)  # 1.0 + 10 - 5
    assert m.check(5.0, 2) == pytest.approx(9.0)  # both must go: 4.0 + 10 - 5
    assert m.check(11.0, 1) == 0.0


def test_a_charge_stops_counting_exactly_one_window_later_in_both_forms() -> None:
    """Sliding window q = 2 per 5 s, charges at 0 s and 1 s: refused at 4.999 s, admitted
    at exactly 5 s (the first charge has left (t − w, t])."""
    p = _profile({"a": {"models": ["m"], "rpm": 24, "rejected_count": False,
                        "enforcement": {"type": "sliding_window", "window": "5s"}}})
    slots = limit_slots(p)
    times = np.array([0.0, 1.0, 4.999, 5.0, 5.0])
    units = np.ones((5, 1))
    adm, _, _ = run_attempts(LimiterArrays.from_slots(slots).params, times, units)
    lim = Limiter(slots)
    expected = [True, True, False, True, False]
    assert [lim.attempt(float(t), u).admitted for t, u in zip(times, units, strict=True)] == (
        expected)
    assert adm.tolist() == expected


def test_retry_after_is_rounded_strictly_up_to_the_millisecond() -> None:
    """retry-after-ms semantics: 7 s becomes 7.001 s, 0.0004 s becomes 0.001 s."""
    assert ceil_ms(7.0) == pytest.approx(7.001)
    assert ceil_ms(0.0004) == pytest.approx(0.001)
    assert ceil_ms(math.inf) == math.inf


def test_provider_sends_the_slowest_rejecting_slots_wait() -> None:
    """With RPM free in 7 s and TPM in 2 s, the 429 says 7.001 s."""
    p = _profile({"a": {"models": ["m"], "rpm": 6, "tpm": 600,
                        "enforcement": {"type": "fixed_window", "window": "10s"}}})
    lim = Limiter.from_profile(p)
    units = [1.0, 100.0]  # rpm q=1, tpm q=100
    assert lim.attempt(3.0, units).admitted
    d = lim.attempt(3.0, units)
    assert not d.admitted
    assert d.retry_after_s == pytest.approx(7.001)
    assert d.rejected_by == (0, 1)


def test_a_call_is_admitted_only_if_every_quota_admits_and_then_all_are_charged() -> None:
    """Two quotas on one model: a full org quota rejects, and the project quota is not charged."""
    p = _profile({
        "project": {"models": ["m"], "rpm": 60, "rejected_count": False,
                    "enforcement": {"type": "fixed_window", "window": "10s"}},
        "org": {"models": ["m"], "rpm": 12, "rejected_count": False,
                "enforcement": {"type": "fixed_window", "window": "10s"}},
    })
    lim = Limiter.from_profile(p)
    project, org = lim.meters
    assert isinstance(project, FixedWindow) and isinstance(org, FixedWindow)
    assert [lim.attempt(1.0, [1.0, 1.0]).admitted for _ in range(3)] == [True, True, False]
    assert (project.count, org.count) == (2.0, 2.0)


def test_counted_rejection_costs_a_request_slot_of_every_touched_quota() -> None:
    """A call turned away by TPM still uses one RPM slot when rejected attempts count."""
    for counted, expected in [(True, 1.0), (False, 0.0)]:
        p = _profile({"a": {"models": ["m"], "rpm": 60, "tpm": 600, "rejected_count": counted,
                            "enforcement": {"type": "fixed_window", "window": "10s"}}})
        lim = Limiter.from_profile(p)
        assert not lim.attempt(0.0, [1.0, 500.0]).admitted  # tpm q = 100
        rpm = lim.meters[0]
        assert isinstance(rpm, FixedWindow)
        assert rpm.count == expected


def test_counted_rejection_never_drives_a_bucket_below_empty() -> None:
    """Buckets lose the request unit of a counted rejection only if they hold it."""
    p = _profile({"a": {"models": ["m"], "rpm": 60, "tpm": 600,
                        "enforcement": {"type": "token_bucket", "burst": "2s"}}})
    lim = Limiter.from_profile(p)
    rpm = lim.meters[0]
    assert isinstance(rpm, TokenBucket)
    assert not lim.attempt(0.0, [1.0, 50.0]).admitted  # tpm depth 20 < 50
    assert rpm.level == pytest.approx(1.0)
    for _ in range(3):
        lim.attempt(0.0, [1.0, 50.0])
    assert rpm.level == 0.0


def test_charged_units_follow_each_quotas_counting_rules() -> None:
    """Reservation charges prompt + max_tokens; cached input is exempt where configured;
    OTPM charges output cut at max_tokens."""
    call = {"model": "m", "input_tokens": 1000, "cached_input_fraction": 0.25,
            "output_tokens": {"uniform": [100, 800]}, "max_tokens": 500}
    p = _profile({
        "azure": {"models": ["m"], "rpm": 100, "tpm": 100000, "charge_max_tokens": True},
        "anthropic": {"models": ["m"], "itpm": 100000, "otpm": 100000,
                      "cached_input_exempt": True},
    }, call)
    u = charge_units(p, p.session.turns["t"].steps[0].call,  # type: ignore[union-attr]
                     input_tokens=1000, cached_input_tokens=250, output_tokens=800)
    assert u == {"azure.rpm": 1.0, "azure.tpm": 1500.0, "anthropic.itpm": 750.0,
                 "anthropic.otpm": 500.0}


def test_quotas_of_other_models_are_not_charged() -> None:
    """A call only touches the quotas listing its model."""
    p = _profile({"a": {"models": ["m"], "rpm": 10}, "b": {"models": ["n"], "rpm": 10}},
                 models=("m", "n"))
    u = charge_units(p, p.session.turns["t"].steps[0].call,  # type: ignore[union-attr]
                     input_tokens=1, output_tokens=1)
    assert u == {"a.rpm": 1.0}


ENFORCEMENTS = [
    {"type": "fixed_window", "window": "10s"},
    {"type": "fixed_window", "window": "1s"},
    {"type": "sliding_window", "window": "10s"},
    {"type": "sliding_window", "window": "60s"},
    {"type": "token_bucket", "burst": "5s"},
    {"type": "token_bucket", "burst": "60s"},
]


@pytest.mark.parametrize("counted", [True, False])
@pytest.mark.parametrize("enf", ENFORCEMENTS, ids=lambda e: f"{e['type']}-"
                         f"{e.get('window', e.get('burst'))}")
def test_array_form_takes_the_same_decisions_as_the_python_classes(
        enf: dict[str, str], counted: bool) -> None:
    """Same arrivals, same answers: admitted flags, retry-after values and rejecting slots."""
    other = ({"type": "token_bucket", "burst": "10s"} if enf["type"] != "token_bucket"
             else {"type": "sliding_window", "window": "30s"})
    p = _profile({
        "q1": {"models": ["m"], "rpm": 120, "tpm": 40000, "rpd": 3000, "enforcement": enf,
               "rejected_count": counted},
        "q2": {"models": ["m"], "rpm": 300, "itpm": 30000, "enforcement": other,
               "rejected_count": counted},
    })
    slots = limit_slots(p)
    rng = np.random.default_rng(7)
    n = 4000
    # Bursty arrivals: clumps of simultaneous attempts, as parallel fan-out produces.
    times = np.sort(np.repeat(rng.uniform(0.0, 2000.0, n // 4), 4))
    tokens = rng.integers(50, 600, size=n).astype(float)
    units = np.zeros((n, len(slots)))
    for i, s in enumerate(slots):
        units[:, i] = 1.0 if s.is_request else tokens * (0.7 if s.dimension == "itpm" else 1)
    offset = 1234.5678
    adm, retry, rej = run_attempts(LimiterArrays.from_slots(slots, offset).params, times, units)
    lim = Limiter(slots, offset)
    decisions = [lim.attempt(float(t), u) for t, u in zip(times, units, strict=True)]
    assert 0.05 < 1 - adm.mean() < 0.95  # the sequence exercises both outcomes
    assert [d.admitted for d in decisions] == adm.tolist()
    assert [d.retry_after_s for d in decisions] == retry.tolist()
    assert [d.rejected_by for d in decisions] == [tuple(np.flatnonzero(r)) for r in rej]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(["fixed_window", "sliding_window", "token_bucket"]),
    counted=st.booleans(),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 1.25, 2.5, 5.0]), min_size=1, max_size=200),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=200),
)
def test_array_form_matches_on_adversarial_sequences(kind: str, counted: bool,
                                                     gaps: list[float],
                                                     sizes: list[int]) -> None:
    """Ties and arrivals exactly on window boundaries and expiry instants: same decisions."""
    p = _profile({"q": {"models": ["m"], "rpm": 30, "tpm": 600, "rejected_count": counted,
                        "enforcement": {"type": kind, **({"burst": "5s"} if kind ==
                                                         "token_bucket" else {"window": "5s"})}}})
    slots = limit_slots(p)
    times = np.cumsum(gaps)
    units = np.array([[1.0, float(sizes[i % len(sizes)])] for i in range(times.size)])
    adm, retry, _ = run_attempts(LimiterArrays.from_slots(slots, 0.0).params, times, units)
    lim = Limiter(slots, 0.0)
    for k in range(times.size):
        d = lim.attempt(float(times[k]), units[k])
        assert (d.admitted, d.retry_after_s) == (adm[k], retry[k])


def test_loaded_state_starts_part_used() -> None:
    """A fixed window 30 s into its minute with 8 of 10 used admits 2 more, then waits
    out the 30 s left; a sliding window preloaded with 8 over (−60, 0] frees them
    steadily; a bucket 7 short of its depth of 10 admits 3; zeros give the fresh state."""
    fixed, sliding, bucket = (
        limit_slots(_profile({"a": {"models": ["m"], "rpm": 10, "rejected_count": False,
                                    "enforcement": {"type": kind}}}))[0]
        for kind in ("fixed_window", "sliding_window", "token_bucket"))
    P = LimiterArrays.from_slots((fixed, sliding, bucket), 30.0).params
    st, log_t, log_u = loaded_state(P, np.array([0.0, 0.0, 7.0]), np.array([8.0, 8.0, 0.0]),
                                    8)
    rej = np.zeros(3, dtype=np.int8)
    for i in range(3):
        units = np.zeros(3)
        units[i] = 1.0
        got = [limiter_attempt(P, st, log_t, log_u, 0.0, units, rej) for _ in range(4)]
        assert [a for a, _ in got] == [True, True, False, False] if i < 2 else [
            True, True, True, False]
        if i == 0:
            assert got[2][1] == pytest.approx(30.001)
        if i == 1:
            assert got[2][1] == pytest.approx(3.751)  # first of 8 charges leaves at 60/16 s
    # The readable form, preloaded the same way, takes the same decisions.
    lim = Limiter((fixed, sliding, bucket), 30.0)
    lim.preload([0.0, 0.0, 7.0], [8.0, 8.0, 0.0], 8)
    st, log_t, log_u = loaded_state(P, np.array([0.0, 0.0, 7.0]), np.array([8.0, 8.0, 0.0]),
                                    8)
    rng = np.random.default_rng(4)
    for t in np.cumsum(rng.exponential(0.5, 300)):
        units = rng.integers(0, 3, 3).astype(float)
        a, r = limiter_attempt(P, st, log_t, log_u, t, units, rej)
        d = lim.attempt(float(t), units)
        assert (a, r) == (d.admitted, d.retry_after_s)
    fresh = loaded_state(P, np.zeros(3), np.zeros(3), 8)
    st0, _, _ = LimiterArrays(P).initial_state()
    np.testing.assert_array_equal(fresh[0], st0)
