"""The pure limiter as a mock server uses it: requests charged by the one rule, snapshots
for headers, settling output after the call, and each provider's header dialect
(formats from ../shared/reference/llm-api-protocols.md)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest

from capacity.limits import (
    Limiter,
    ManualClock,
    Request,
    WallClock,
    go_duration,
    render_headers,
    rfc3339,
)
from capacity.profile.loader import profile_from_dict
from capacity.profile.schema import Profile


def _profile(quota: dict[str, object], max_tokens: int | None = 500) -> Profile:
    return profile_from_dict({
        "models": {"m": {"tokens_per_second": 50, "max_tokens": max_tokens},
                   "other": {"tokens_per_second": 50}},
        "quotas": {"q": {"models": ["m"], **quota}},
        "session": {"think_time": 10, "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 100, "output_tokens": 50}}]}}},
    })


def test_request_is_charged_by_the_profiles_rule() -> None:
    """tpm = input + min(output, max_tokens); with reservation, input + max_tokens; cached
    input exempt where the quota says so; rpm = 1."""
    plain = Limiter.from_profile(_profile({"rpm": 60, "tpm": 60_000}))
    assert plain.charges(Request("m", 1000, 700, max_tokens=500)) == {
        "q.rpm": 1.0, "q.tpm": 1500.0}
    reserve = Limiter.from_profile(_profile({"rpm": 60, "tpm": 60_000,
                                             "charge_max_tokens": True}))
    assert reserve.charges(Request("m", 1000, 30, max_tokens=800))["q.tpm"] == 1800.0
    # max_tokens omitted: the model's default (500) is reserved.
    assert reserve.charges(Request("m", 1000, 30))["q.tpm"] == 1500.0
    cached = Limiter.from_profile(_profile({"itpm": 60_000, "cached_input_exempt": True}))
    assert cached.charges(Request("m", 1000, 30, cached_input_tokens=400)) == {
        "q.itpm": 600.0}


def test_a_model_no_quota_covers_is_known_to_be_unknown() -> None:
    """Requests for a model outside every quota are charged nothing (and always admitted);
    ``knows`` lets a server answer 404 first."""
    lim = Limiter.from_profile(_profile({"rpm": 60}))
    assert lim.knows("m") and not lim.knows("other") and not lim.knows("nope")
    assert lim.charges(Request("other", 10)) == {}


def test_admit_reports_snapshots_and_the_rejecting_slot() -> None:
    """25 per 10 s: after 24 admissions 1 remains and the window resets 7 s later; the
    27th request is refused by q.rpm with the time to the boundary."""
    lim = Limiter.from_profile(_profile({"rpm": 150, "enforcement": {"window": "10s"}}))
    for _ in range(24):
        d = lim.admit(3.0, Request("m", 100))
    assert d.admitted
    (snap,) = d.snapshots
    assert (snap.key, snap.limit, snap.allowance, snap.remaining) == ("q.rpm", 150, 25, 1)
    assert snap.reset_s == pytest.approx(7.0)
    assert lim.admit(3.0, Request("m", 100)).admitted
    refused = lim.admit(3.0, Request("m", 100))
    assert not refused.admitted and refused.rejected_by == ("q.rpm",)
    assert refused.retry_after_s == pytest.approx(7.001)
    assert refused.charged == {"q.rpm": 0.0}
    # A request that can never fit says so.
    tpm = Limiter.from_profile(_profile({"tpm": 600, "enforcement": {"window": "10s"}}))
    assert tpm.admit(0.0, Request("m", 5000)).retry_after_s == math.inf


def test_snapshot_of_a_token_bucket_refills_continuously() -> None:
    """A 60-per-minute bucket of depth 10 after 4 admissions: 6 remain, full again in 4 s."""
    lim = Limiter.from_profile(_profile({"rpm": 60, "enforcement": {
        "type": "token_bucket", "burst": "10s"}}))
    for _ in range(4):
        lim.admit(0.0, Request("m", 1))
    (snap,) = lim.snapshot(0.0)
    assert (snap.remaining, snap.reset_s) == (6.0, pytest.approx(4.0))
    (snap,) = lim.snapshot(2.5)
    assert (snap.remaining, snap.reset_s) == (8.0, pytest.approx(1.5))


def test_sliding_window_snapshot_resets_when_the_newest_charge_leaves() -> None:
    lim = Limiter.from_profile(_profile({"rpm": 60, "enforcement": {
        "type": "sliding_window", "window": "10s"}}))
    lim.admit(1.0, Request("m", 1))
    lim.admit(4.0, Request("m", 1))
    (snap,) = lim.snapshot(5.0)
    assert (snap.remaining, snap.reset_s) == (8.0, pytest.approx(9.0))


def test_settle_corrects_output_charges_but_not_reservations() -> None:
    """Anthropic-style OTPM: charged the expected output at admission, corrected by the
    actual output afterwards; a max_tokens reservation is never refunded."""
    lim = Limiter.from_profile(_profile({"otpm": 600, "enforcement": {"window": "10s"}}))
    req = Request("m", 10, output_tokens=80, max_tokens=500)
    assert lim.admit(0.0, req).admitted
    lim.settle(1.0, req, actual_output_tokens=30)  # 50 tokens refunded
    (snap,) = lim.snapshot(1.0)
    assert snap.remaining == 100 - 30
    lim.settle(2.0, Request("m", 10, output_tokens=30, max_tokens=500), 90)
    (snap,) = lim.snapshot(2.0)
    assert snap.remaining == 100 - 90
    res = Limiter.from_profile(_profile({"tpm": 6000, "charge_max_tokens": True,
                                         "enforcement": {"window": "10s"}}))
    req = Request("m", 100, output_tokens=80, max_tokens=500)
    res.admit(0.0, req)
    res.settle(1.0, req, 10)
    assert res.snapshot(1.0)[0].remaining == 1000 - 600


def test_reset_gives_a_fresh_limiter() -> None:
    lim = Limiter.from_profile(_profile({"rpm": 6, "enforcement": {"window": "10s"}}))
    assert lim.admit(0.0, Request("m", 1)).admitted
    assert not lim.admit(0.0, Request("m", 1)).admitted
    lim.reset()
    assert lim.admit(0.0, Request("m", 1)).admitted


def test_go_durations_as_openai_prints_them() -> None:
    """``6m0s``, ``1s``, ``12ms``, ``1.5s``, ``1h0m0s``: the formats in OpenAI's headers."""
    assert [go_duration(x) for x in (360.0, 1.0, 0.012, 1.5, 3600.0, 0.0)] == [
        "6m0s", "1s", "12ms", "1.5s", "1h0m0s", "0ms"]


def test_openai_headers_on_a_429_and_a_200() -> None:
    """A 429 carries retry-after (whole seconds, up) and retry-after-ms; both carry the
    limit/remaining/reset triple per family (requests, tokens)."""
    lim = Limiter.from_profile(_profile({"rpm": 60, "tpm": 60_000,
                                         "enforcement": {"window": "10s"}}))
    ok = lim.admit(2.5, Request("m", 1000, 100))
    h = render_headers(ok, "openai")
    assert h == {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "9",
                 "x-ratelimit-reset-requests": "7.5s", "x-ratelimit-limit-tokens": "60000",
                 "x-ratelimit-remaining-tokens": "8900", "x-ratelimit-reset-tokens": "7.5s"}
    for _ in range(9):
        lim.admit(2.5, Request("m", 10, 10))
    no = lim.admit(2.5, Request("m", 10, 10))
    h = render_headers(no, "openai")
    assert h["retry-after-ms"] == "7501" and h["retry-after"] == "8"
    assert h["x-ratelimit-remaining-requests"] == "0"


def test_time_scale_divides_every_duration() -> None:
    """Under --time-scale 10 a 7.5 s model wait is 0.75 s of wall time in every header
    (retry-after-ms is the wait rounded strictly up, the reset is the boundary)."""
    lim = Limiter.from_profile(_profile({"rpm": 6, "enforcement": {"window": "10s"}}))
    lim.admit(2.5, Request("m", 1))
    no = lim.admit(2.5, Request("m", 1))
    h = render_headers(no, "openai", time_scale=10.0)
    assert (h["retry-after-ms"], h["retry-after"], h["x-ratelimit-reset-requests"]) == (
        "751", "1", "750ms")


def test_azure_sends_only_remaining_on_success() -> None:
    lim = Limiter.from_profile(_profile({"rpm": 60, "tpm": 60_000,
                                         "enforcement": {"window": "10s"}}))
    h = render_headers(lim.admit(0.0, Request("m", 100, 10)), "azure")
    assert set(h) == {"x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"}


def test_anthropic_headers_use_rfc3339_resets_and_token_families() -> None:
    """anthropic-ratelimit-{requests,input-tokens,output-tokens}-* with RFC 3339 resets at
    the instant the limit is full again; retry-after in seconds, no -ms variant."""
    lim = Limiter.from_profile(_profile({"rpm": 50, "itpm": 30_000, "otpm": 8_000,
                                         "enforcement": {"type": "token_bucket"}}))
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp()
    d = lim.admit(0.0, Request("m", 3000, 400))
    h = render_headers(d, "anthropic", now_epoch_s=now)
    assert h["anthropic-ratelimit-input-tokens-limit"] == "30000"
    assert h["anthropic-ratelimit-input-tokens-remaining"] == "27000"
    # Token remaining values rounded to the nearest thousand (Anthropic's docs): 7600
    # left prints 8000; requests stay exact.
    assert h["anthropic-ratelimit-output-tokens-remaining"] == "8000"
    assert h["anthropic-ratelimit-requests-remaining"] == "49"
    # tokens-*: the most restrictive token limit in effect (here the output one).
    assert h["anthropic-ratelimit-tokens-limit"] == "8000"
    assert h["anthropic-ratelimit-tokens-remaining"] == "8000"
    assert h["anthropic-ratelimit-tokens-reset"] == h["anthropic-ratelimit-output-tokens-reset"]
    # 3000 of 30000/min refill in 6 s.
    assert h["anthropic-ratelimit-input-tokens-reset"] == "2026-11-30T12:00:06Z"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v)
               for k, v in h.items() if k.endswith("-reset"))
    for _ in range(8):
        lim.admit(0.0, Request("m", 3000, 1))
    no = lim.admit(0.0, Request("m", 6000, 1))
    h = render_headers(no, "anthropic", now_epoch_s=now)
    assert "retry-after" in h and "retry-after-ms" not in h
    assert rfc3339(now + 0.2) == "2026-11-30T12:00:01Z"


@pytest.mark.parametrize(("used", "shown"), [(3500, "27000"), (3501, "26000"),
                                              (29_600, "0"), (29_400, "1000")])
def test_anthropic_token_remaining_is_rounded_to_the_nearest_thousand(
        used: int, shown: str) -> None:
    """provider-limits.md §3: token "remaining" values are "rounded to the nearest
    thousand" (halves up); requests-remaining stays exact."""
    lim = Limiter.from_profile(_profile({"rpm": 50, "itpm": 30_000, "otpm": 8_000,
                                         "enforcement": {"type": "token_bucket"}}))
    h = render_headers(lim.admit(0.0, Request("m", used, 1)), "anthropic", now_epoch_s=0.0)
    assert h["anthropic-ratelimit-input-tokens-remaining"] == shown
    assert h["anthropic-ratelimit-output-tokens-remaining"] == "8000"  # 7999 left
    assert h["anthropic-ratelimit-requests-remaining"] == "49"


def test_unknown_dialect_is_refused() -> None:
    lim = Limiter.from_profile(_profile({"rpm": 60}))
    with pytest.raises(ValueError, match="dialect"):
        render_headers(lim.admit(0.0, Request("m", 1)), "gemini")  # type: ignore[arg-type]


def test_clocks() -> None:
    """A manual clock moves only forward; a wall clock runs time_scale× faster."""
    c = ManualClock()
    c.advance(2.0)
    assert c.now() == 2.0
    with pytest.raises(ValueError):
        c.advance(-1.0)
    w = WallClock(time_scale=100.0)
    assert w.to_wall(5.0) == 0.05
    assert 0.0 <= w.now() < 60.0
    with pytest.raises(ValueError):
        WallClock(0.0)


def test_anthropic_gets_millisecond_waits_only_under_time_compression() -> None:
    """At time scale 1 Anthropic's 429 carries whole seconds only, as the provider's; at
    K = 20 a 7.5 s model wait would round to 1 s of wall time (20 model seconds), so the
    mock adds retry-after-ms (375), which the anthropic SDK reads first."""
    lim = Limiter.from_profile(_profile({"rpm": 6, "enforcement": {"window": "10s"}}))
    lim.admit(2.5, Request("m", 1))
    no = lim.admit(2.5, Request("m", 1))
    assert "retry-after-ms" not in render_headers(no, "anthropic")
    assert render_headers(no, "anthropic", time_scale=20.0)["retry-after-ms"] == "376"
