"""The mock admits exactly what capacity.limits admits.

A recorded request stream (arrival times, APIs, prompt sizes, max_tokens) is sent over
HTTP to the mock, whose clock is a ManualClock set to each arrival time; the same stream
goes through a fresh pure Limiter. Decisions, retry-after values and the rate-limit
headers must be identical, request by request.
"""

from __future__ import annotations

import json
import math

import httpx2
import numpy as np

from capacity import profile_from_dict
from capacity.limits import Limiter, ManualClock, Request, render_headers
from capacity.serve import anthropic_messages, openai_chat
from capacity.serve.wire import estimate_prompt_tokens
from tests.serve_support import serving

K = 1e6  # model seconds per wall second: answers take ~0 wall time
OUT = 120  # every call of the profile generates exactly this many tokens

PROFILE = profile_from_dict({
    "name": "replay",
    "models": {"mock-gpt": {"ttft": "0.5s", "tokens_per_second": 50},
               "mock-claude": {"ttft": "0.5s", "tokens_per_second": 50}},
    "quotas": {
        # OpenAI style: 1 s request windows, 10 s token windows, max_tokens reserved.
        "oai": {"models": ["mock-gpt"], "rpm": 300,
                "tpm": {"limit": 60_000,
                        "enforcement": {"type": "fixed_window", "window": "10s"}},
                "enforcement": {"type": "fixed_window", "window": "1s"},
                "charge_max_tokens": True},
        "oai-day": {"models": ["mock-gpt"], "tpd": 2_000_000},
        # Anthropic style: token buckets, output tokens charged as generated.
        "ant": {"models": ["mock-claude"], "rpm": 120, "itpm": 40_000, "otpm": 8_000,
                "enforcement": {"type": "token_bucket", "burst": "10s"}},
    },
    "session": {"think_time": "1s", "turns": {"t": {"steps": [
        {"call": {"model": "mock-gpt", "input_tokens": 1000, "output_tokens": OUT,
                  "max_tokens": 400}},
        {"call": {"model": "mock-claude", "input_tokens": 1000, "output_tokens": OUT,
                  "max_tokens": 400}},
    ]}}},
})


def _stream(seed: int, n: int) -> list[tuple[float, str, bytes, int]]:
    """(arrival time, api, body, max_tokens): bursts and lulls, prompts of 0.5-12 KB."""
    rng = np.random.default_rng(seed)
    t = 0.0
    out = []
    for _ in range(n):
        t += float(rng.exponential(0.05) if rng.random() < 0.8 else rng.exponential(2.0))
        api = "openai" if rng.random() < 0.6 else "anthropic"
        mt = int(rng.choice([50, 200, 400, 1000]))
        text = "x" * int(rng.integers(500, 12_000))
        msgs = [{"role": "user", "content": text}]
        body = ({"model": "mock-gpt", "messages": msgs, "max_tokens": mt} if api == "openai"
                else {"model": "mock-claude", "messages": msgs, "max_tokens": mt})
        out.append((t, api, json.dumps(body).encode(), mt))
    return out


def test_replay_matches_pure_limiter() -> None:
    stream = _stream(seed=2026, n=400)
    clock = ManualClock(0.0)
    expected = Limiter.from_profile(PROFILE)
    got_admitted = []
    want_admitted = []
    with serving(PROFILE, clock=clock, time_scale=K, seed=1) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:
        for t, api, body, mt in stream:
            clock.t = t
            path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
            r = http.post(path, content=body, headers={"content-type": "application/json",
                                                       "anthropic-version": "2023-06-01"})
            model = "mock-gpt" if api == "openai" else "mock-claude"
            fields = (openai_chat if api == "openai" else anthropic_messages).PROMPT_FIELDS
            req = Request(model=model, input_tokens=estimate_prompt_tokens(json.loads(body),
                                                                           fields),
                          output_tokens=min(OUT, mt), max_tokens=mt)
            d = expected.admit(t, req)
            if d.admitted:
                expected.settle(t, req, req.output_tokens)
            want_admitted.append(d.admitted)
            got_admitted.append(r.status_code == 200)
            assert r.status_code in (200, 429), r.text
            want = render_headers(d, api, time_scale=K)  # type: ignore[arg-type]
            if api == "openai":
                for key, value in want.items():
                    assert r.headers[key] == value, (t, key)
                usage = r.json()["usage"] if d.admitted else None
                if usage is not None:
                    assert usage["prompt_tokens"] == req.input_tokens
                    assert usage["completion_tokens"] == req.output_tokens
            else:
                for key in ("retry-after", *[k for k in want if k.endswith(
                        ("-limit", "-remaining"))]):
                    assert r.headers.get(key) == want.get(key), (t, key)
            if not d.admitted and math.isfinite(d.retry_after_s):
                assert r.headers["retry-after"] == want["retry-after"]
            elif not d.admitted:  # can never fit: the SDK is told not to retry
                assert "retry-after" not in r.headers
                assert r.headers["x-should-retry"] == "false"
    assert got_admitted == want_admitted
    # The stream exercises both outcomes on both APIs.
    assert 0 < sum(want_admitted) < len(want_admitted)
    for api in ("openai", "anthropic"):
        outcomes = {a for (_, x, _, _), a in zip(stream, want_admitted, strict=True)
                    if x == api}
        assert outcomes == {True, False}
