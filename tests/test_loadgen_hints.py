"""The load generator's hint headers at the mock (``x-capacity-{input,cached,output}-tokens``).

With hints, ``capacity serve`` answers, times and charges a request with the tokens the
load generator drew for the call (output still cut at ``max_tokens``); without them it
draws and estimates as before; a malformed hint is the provider's 400 naming the header.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from capacity import profile_from_dict
from capacity.serve import openai_chat
from capacity.serve.wire import estimate_prompt_tokens
from tests.serve_support import CLAUDE, GPT, metric_sum, metrics, profile, serving

CHAT = {"model": GPT, "messages": [{"role": "user", "content": "hello there"}]}
MSG = {"model": CLAUDE, "max_tokens": 300,
       "messages": [{"role": "user", "content": "hello there"}]}
ANTHROPIC = {"anthropic-version": "2023-06-01", "x-api-key": "mock"}


def hints(inp: Any = None, cached: Any = None, out: Any = None) -> dict[str, str]:
    h = {"x-capacity-input-tokens": inp, "x-capacity-cached-tokens": cached,
         "x-capacity-output-tokens": out}
    return {k: str(v) for k, v in h.items() if v is not None}


def charged(url: str, slot: str) -> float:
    return metric_sum(metrics(url), "capacity_mock_charged_units_total", slot=slot)


def test_hints_set_usage_charge_and_latency() -> None:
    # K = 10: 20 ms ttft + 300 tokens at 400/s = 0.77 model s = 77 ms of wall time.
    with serving(profile(), time_scale=10.0) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:
        t0 = time.monotonic()
        r = http.post("/v1/chat/completions", json=CHAT, headers=hints(5000, 1200, 300))
        elapsed = time.monotonic() - t0
        assert r.status_code == 200, r.text
        u = r.json()["usage"]
        assert (u["prompt_tokens"], u["completion_tokens"]) == (5000, 300)
        assert u["prompt_tokens_details"]["cached_tokens"] == 1200
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        assert elapsed >= (0.02 + 300 / 400) / 10.0  # sleeps never end early
        # oai.tpm charges prompt + output (cached tokens count on this quota).
        assert charged(srv.url, "oai.tpm") == 5300
        # Anthropic: cached prompt tokens are exempt from ITPM; OTPM charges the output.
        r = http.post("/v1/messages", json=MSG, headers={**ANTHROPIC,
                                                         **hints(4000, 3000, 120)})
        assert r.status_code == 200, r.text
        u = r.json()["usage"]
        assert (u["input_tokens"], u["cache_read_input_tokens"], u["output_tokens"]) == (
            1000, 3000, 120)
        assert charged(srv.url, "ant.itpm") == 1000
        assert charged(srv.url, "ant.otpm") == 120


def test_output_hint_is_cut_at_max_tokens() -> None:
    with serving(profile()) as srv, httpx2.Client(base_url=srv.url, timeout=30) as http:
        # The request's max_tokens, then the model's default (512) when none is sent.
        for body, cap in (({**CHAT, "max_tokens": 50}, 50), (CHAT, 512)):
            r = http.post("/v1/chat/completions", json=body, headers=hints(out=2000))
            data = r.json()
            assert data["usage"]["completion_tokens"] == cap
            assert data["choices"][0]["finish_reason"] == "length"


def test_without_hints_the_mock_draws_and_estimates() -> None:
    prof = profile(output_tokens={"uniform": [5, 40]})
    with serving(prof) as srv, httpx2.Client(base_url=srv.url, timeout=30) as http:
        outs = set()
        for _ in range(12):
            r = http.post("/v1/chat/completions", json=CHAT)
            u = r.json()["usage"]
            assert u["prompt_tokens"] == estimate_prompt_tokens(CHAT,
                                                                openai_chat.PROMPT_FIELDS)
            assert 5 <= u["completion_tokens"] <= 40
            outs.add(u["completion_tokens"])
        assert len(outs) > 3  # drawn, not fixed
        # An input hint alone: the prompt is the hint, the output still drawn.
        r = http.post("/v1/chat/completions", json=CHAT, headers=hints(inp=777))
        assert r.json()["usage"]["prompt_tokens"] == 777
        assert 5 <= r.json()["usage"]["completion_tokens"] <= 40


@pytest.mark.parametrize(("headers", "name"), [
    (hints(out="many"), "x-capacity-output-tokens"),
    (hints(out="-3"), "x-capacity-output-tokens"),
    (hints(out="1.5"), "x-capacity-output-tokens"),
    (hints(inp="1e9"), "x-capacity-input-tokens"),
    (hints(inp="999999999999"), "x-capacity-input-tokens"),
    (hints(cached=""), "x-capacity-cached-tokens"),
    (hints(inp=100, cached=101), "x-capacity-cached-tokens"),
    (hints(cached=10**7), "x-capacity-cached-tokens"),  # more than the estimated prompt
])
def test_malformed_hint_is_a_400_naming_the_header(headers: dict[str, str],
                                                   name: str) -> None:
    with serving(profile()) as srv, httpx2.Client(base_url=srv.url, timeout=30) as http:
        r = http.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["param"] == name and err["message"].startswith(name), err
        r = http.post("/v1/messages", json=MSG, headers={**ANTHROPIC, **headers})
        assert r.status_code == 400
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert name in body["error"]["message"]
        # Refused before admission: nothing charged, the server still answers.
        assert charged(srv.url, "oai.rpm") == 0
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


def _fast_profile(name: str, quota: dict[str, Any], call: dict[str, Any]) -> Any:
    """One fast model (tokens are near free of time) under one quota ``q``."""
    return profile_from_dict({
        "name": name, "models": {"m": {"ttft": "0s", "tokens_per_second": 100000}},
        "quotas": {"q": {"models": ["m"], **quota}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [{"call": {
            "model": "m", "input_tokens": 100, **call}}]}}}})


def _otpm_profile() -> Any:
    """A 1,000 OTPM token bucket."""
    return _fast_profile(
        "otpm", {"otpm": 1000, "enforcement": {"type": "token_bucket", "burst": "60s"}},
        {"output_tokens": {"uniform": [1, 2000]}, "max_tokens": 2000})


OTPM_BODY = {"model": "m", "max_tokens": 2000,
             "messages": [{"role": "user", "content": "x"}]}


def test_a_retry_carries_the_same_tokens() -> None:
    """A request refused for its size is refused again on retry (no smaller redraw)."""
    with serving(_otpm_profile(), time_scale=1.0) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:
        # 950 of the bucket's 1,000 tokens; it refills at 16.7 tokens per second.
        assert http.post("/v1/chat/completions", json=OTPM_BODY,
                         headers=hints(100, 0, 950)).status_code == 200
        statuses = [http.post("/v1/chat/completions", json=OTPM_BODY,
                              headers=hints(100, 0, 600)).status_code for _ in range(5)]
        assert statuses == [429] * 5
        # One whose hinted output fits what is left is admitted.
        assert http.post("/v1/chat/completions", json=OTPM_BODY,
                         headers=hints(100, 0, 40)).status_code == 200


def test_reset_starts_token_buckets_part_used() -> None:
    """POST /admin/reset {"bucket_deficit": ...}: the simulator's steady-state start."""
    with serving(_otpm_profile(), time_scale=1.0) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:
        r = http.post("/admin/reset", json={"bucket_deficit": {"q.otpm": 1000}})
        assert r.status_code == 200, r.text
        r = http.post("/v1/chat/completions", json=OTPM_BODY, headers=hints(100, 0, 500))
        assert r.status_code == 429
        # Empty at the reset: 500 tokens refill in 30 s (1,000 per minute).
        assert 29_000 < float(r.headers["retry-after-ms"]) <= 30_001
        # A plain reset fills it again.
        assert http.post("/admin/reset").status_code == 200
        r = http.post("/v1/chat/completions", json=OTPM_BODY, headers=hints(100, 0, 900))
        assert r.status_code == 200
        for body in ({"bucket_deficit": {"q.rpm": 5}}, {"bucket_deficit": {"nope": 1}},
                     {"bucket_deficit": {"q.otpm": -1}}):
            r = http.post("/admin/reset", json=body)
            assert r.status_code == 400 and r.json()["error"]["param"] == "bucket_deficit"
        for body in ({"other": 1}, [1]):  # not the reset body's shape: the body is named
            r = http.post("/admin/reset", json=body)
            assert r.status_code == 400 and r.json()["error"]["param"] == "body"


def _window_profile() -> Any:
    """5 requests per 60 s fixed window."""
    return _fast_profile(
        "window", {"rpm": 5, "enforcement": {"type": "fixed_window", "window": "60s"}},
        {"output_tokens": 5})


def test_reset_restarts_the_window_clock() -> None:
    """The fixed window's phase was the time since the mock started, not since the reset:
    the same run after a reset gave other 429s. Now the reset restarts model time, and
    ``clock_offset_s`` sets the phase (the simulator's per-replication clock offset)."""
    from capacity.limits import ManualClock

    clock = ManualClock()
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with serving(_window_profile(), clock=clock) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:

        def run(reset: dict[str, Any]) -> list[int]:
            # A load: 4 requests at t = 0 and 4 at t = 20 s after the reset.
            assert http.post("/admin/reset", json=reset).status_code == 200
            out = [http.post("/v1/chat/completions", json=body).status_code
                   for _ in range(4)]
            clock.advance(20.0)
            return out + [http.post("/v1/chat/completions", json=body).status_code
                          for _ in range(4)]

        clock.advance(50.0)  # the mock ran before
        first = run({})
        clock.advance(1234.0)
        assert run({}) == first == [200] * 5 + [429] * 3  # one window: 5 admitted
        # Phase 50 s: the window ends 10 s after the reset, the second 4 pass.
        assert run({"clock_offset_s": 50.0}) == [200] * 8
        r = http.post("/admin/reset", json={"clock_offset_s": -1})
        assert r.status_code == 400 and r.json()["error"]["param"] == "clock_offset_s"
        assert r.json()["error"]["message"] == (  # the field named once
            "clock_offset_s: expected a number of seconds ≥ 0, got -1")


def test_loadtest_window_phase_is_the_seeds() -> None:
    from capacity.loadgen.runner import window_phase

    assert window_phase(4, 30) == window_phase(4, 30)
    assert window_phase(4, 30) != window_phase(5, 30)
    assert 0.0 <= window_phase(4, 30) < 86400.0
