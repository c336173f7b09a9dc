"""The mock serving a fleet: per-deployment quotas and paths, and the mock-as-gateway.

Real sockets (127.0.0.1, port 0, servers always stopped), the official ``openai`` and
``anthropic`` SDKs unmodified; a manual clock makes every admission deterministic (the
windows never move unless the test moves them), and K = 60,000 makes answers instant.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from capacity import Profile, profile_from_dict
from capacity.limits import ManualClock
from tests.serve_support import metric_sum, metrics, serving

USER = [{"role": "user", "content": "hello"}]
FAST = {"ttft": "10ms", "tokens_per_second": 1000, "max_tokens": 64}


def fleet(*, policy: str = "priority", ptu_rpm: float = 2, paygo_rpm: float = 3,
          mini_rpm: float = 100, route: dict[str, Any] | None = None,
          cooldown: dict[str, Any] | None = None, max_retries: int = 1) -> Profile:
    """Two deployments of one model behind a route, a mini fallback; rpm per 60 s window
    (the manual clock never leaves the first window)."""
    win = {"type": "fixed_window", "window": "60s"}
    spec: dict[str, Any] = {
        "name": "fleet-serve",
        "models": {"big": FAST, "small": FAST},
        "deployments": {"ptu": {"model": "big", "quotas": ["ptu"]},
                        "paygo": {"model": "big"},
                        "mini": {"model": "small", "quotas": ["mini"]}},
        "quotas": {"ptu": {"models": ["ptu"], "rpm": ptu_rpm, "enforcement": win},
                   "paygo": {"models": ["paygo"], "rpm": paygo_rpm, "enforcement": win},
                   "mini": {"models": ["mini"], "rpm": mini_rpm, "enforcement": win}},
        "routes": {"gpt": route or {"policy": policy, "deployments": ["ptu", "paygo"],
                                    "fallbacks": ["mini"]}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [
            {"call": {"model": "gpt", "input_tokens": 100, "output_tokens": 5}}]}}},
        "retry": {"max_retries": max_retries},
    }
    if cooldown is not None:
        spec["cooldown"] = cooldown
    return profile_from_dict(spec, "fleet-serve.yaml")


def _fast(prof: Profile) -> Any:
    return serving(prof, clock=ManualClock(0.0), time_scale=60_000)


def test_deployments_have_their_own_quotas_and_azure_paths() -> None:
    """ptu (2 rpm) refuses its third request while paygo (3 rpm) still admits: each
    deployment is charged on its own quota, via the Azure path and the body's model."""
    with _fast(fleet()) as srv, openai.AzureOpenAI(
            azure_endpoint=srv.azure_endpoint, api_key="k", api_version="2024-10-21",
            max_retries=0) as az, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                                max_retries=0) as oa:
        for _ in range(2):
            r = az.chat.completions.with_raw_response.create(model="ptu", messages=USER)
            assert r.headers["x-capacity-deployment"] == "ptu"
        with pytest.raises(openai.RateLimitError) as e:
            az.chat.completions.create(model="ptu", messages=USER)
        assert e.value.response.headers["x-capacity-deployment"] == "ptu"
        assert "quota ptu" in e.value.response.json()["error"]["message"]
        # paygo is untouched by ptu's refusals: its own remaining count says so.
        r = az.chat.completions.with_raw_response.create(model="paygo", messages=USER)
        assert r.headers["x-ratelimit-remaining-requests"] == "2"
        r = oa.chat.completions.with_raw_response.create(model="paygo", messages=USER)
        assert r.headers["x-capacity-deployment"] == "paygo"
        assert r.headers["x-ratelimit-remaining-requests"] == "1"
        m = metrics(srv.url)
        assert metric_sum(m, "capacity_mock_requests_total", model="ptu", status="429") == 1
        assert metric_sum(m, "capacity_mock_requests_total", model="paygo",
                          status="200") == 2
        # Unknown deployment / model: the provider's 404 naming it.
        with pytest.raises(openai.NotFoundError) as nf:
            az.chat.completions.create(model="nope", messages=USER)
        assert "nope" in nf.value.response.json()["error"]["message"]
        with pytest.raises(openai.NotFoundError) as nf:
            oa.chat.completions.create(model="nope", messages=USER)
        assert "nope" in nf.value.response.json()["error"]["message"]


def test_gateway_spills_within_one_request_then_429s() -> None:
    """A request naming the logical model: ptu serves until full, then the same request
    spills to paygo (a 200 to the client); once both refuse, the client sees paygo's 429."""
    with _fast(fleet()) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                              max_retries=0) as oa:
        served = []
        for _ in range(5):
            r = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
            served.append((r.headers["x-capacity-deployment"],
                           r.headers.get("x-capacity-spilled")))
        assert served == [("ptu", None)] * 2 + [("paygo", "ptu")] * 3
        with pytest.raises(openai.RateLimitError) as e:
            oa.chat.completions.create(model="gpt", messages=USER)
        h = e.value.response.headers
        assert h["x-capacity-deployment"] == "paygo" and h["x-capacity-spilled"] == "ptu"
        assert h["x-ratelimit-limit-requests"] == "3"  # the last one tried: paygo's
        assert "retry-after" in h
        m = metrics(srv.url)
        g = "capacity_mock_gateway_attempts_total"
        assert metric_sum(m, g, deployment="ptu", outcome="admitted") == 2
        assert metric_sum(m, g, deployment="ptu", outcome="spilled") == 4
        assert metric_sum(m, g, deployment="paygo", outcome="admitted") == 3
        assert metric_sum(m, g, deployment="paygo", outcome="rejected") == 1
        assert metric_sum(m, "capacity_mock_requests_total", status="429") == 1


def test_gateway_falls_back_on_the_clients_last_attempt() -> None:
    """With both deployments full, the SDK retries (x-stainless-retry-count 1 = the
    profile's max_retries) and the gateway falls back to mini within that attempt."""
    with _fast(fleet(ptu_rpm=1, paygo_rpm=1)) as srv, openai.OpenAI(
            base_url=srv.openai_base_url, api_key="k", max_retries=1) as oa:
        oa.chat.completions.create(model="gpt", messages=USER)
        oa.chat.completions.create(model="gpt", messages=USER)
        r = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        assert r.headers["x-capacity-deployment"] == "mini"
        assert r.headers["x-capacity-fallback"] == "mini"
        assert r.headers["x-capacity-spilled"] == "ptu,paygo"
        m = metrics(srv.url)
        assert metric_sum(m, "capacity_mock_gateway_fallbacks_total", route="gpt") == 1
        # The first attempt of that call was refused (a 429 the SDK retried).
        assert metric_sum(m, "capacity_mock_requests_total", status="429") == 1


def test_gateway_weighted_on_the_anthropic_api() -> None:
    """Weighted by a uniform draw per request: both deployments serve, through the
    Anthropic Messages API routed like the others."""
    prof = fleet(route={"policy": "weighted", "deployments": {"ptu": 1, "paygo": 1}},
                 ptu_rpm=1000, paygo_rpm=1000)
    with _fast(prof) as srv, anthropic.Anthropic(base_url=srv.anthropic_base_url,
                                                 api_key="k", max_retries=0) as an:
        seen = set()
        for _ in range(30):
            r = an.messages.with_raw_response.create(model="gpt", max_tokens=10,
                                                     messages=USER)
            seen.add(r.headers["x-capacity-deployment"])
        assert seen == {"ptu", "paygo"}


def test_gateway_cooldown_skips_a_failing_deployment() -> None:
    """Cooldown (1 failure of ≥ 1 call): after ptu refuses once it is skipped, so the next
    request goes straight to paygo without a spill."""
    prof = fleet(ptu_rpm=1, paygo_rpm=100,
                 cooldown={"threshold": 0.1, "min_calls": 1, "seconds": "30s"})
    with _fast(prof) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                           max_retries=0) as oa:
        r1 = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        r2 = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        r3 = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        assert r1.headers["x-capacity-deployment"] == "ptu"
        assert (r2.headers["x-capacity-deployment"], r2.headers["x-capacity-spilled"]) \
            == ("paygo", "ptu")
        assert r3.headers["x-capacity-deployment"] == "paygo"
        assert "x-capacity-spilled" not in r3.headers


def test_models_lists_deployments_and_routes() -> None:
    with _fast(fleet()) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                              max_retries=0) as oa:
        ids = [m.id for m in oa.models.list()]
        assert {"big", "ptu", "paygo", "mini", "gpt"} <= set(ids)


def test_gateway_per_turn_sticks_and_reset_clears_cooldown() -> None:
    """per_turn weighted: a turn's requests (same session and turn headers) stay on one
    deployment while different turns spread; /admin/reset also ends a cooldown."""
    import urllib.request

    prof = fleet(route={"policy": "weighted", "deployments": ["ptu", "paygo"],
                        "per_turn": True}, ptu_rpm=1000, paygo_rpm=1000)
    with _fast(prof) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                           max_retries=0) as oa:
        by_turn = {}
        for turn in range(12):
            h = {"x-capacity-session": "s1", "x-capacity-turn": str(turn)}
            got = {oa.chat.completions.with_raw_response.create(
                model="gpt", messages=USER, extra_headers=h).headers["x-capacity-deployment"]
                for _ in range(4)}
            assert len(got) == 1, (turn, got)
            by_turn[turn] = got.pop()
        assert set(by_turn.values()) == {"ptu", "paygo"}
    cool = fleet(ptu_rpm=1, paygo_rpm=100,
                 cooldown={"threshold": 0.1, "min_calls": 1, "seconds": "30s"})
    with _fast(cool) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key="k",
                                           max_retries=0) as oa:
        for _ in range(2):  # ptu admits, then refuses and cools down
            oa.chat.completions.create(model="gpt", messages=USER)
        r = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        assert "x-capacity-spilled" not in r.headers  # ptu skipped: cooling down
        req = urllib.request.Request(srv.url + "/admin/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        r = oa.chat.completions.with_raw_response.create(model="gpt", messages=USER)
        assert r.headers["x-capacity-deployment"] == "ptu"  # fresh quota, no cooldown
