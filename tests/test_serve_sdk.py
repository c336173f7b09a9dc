"""The official SDKs, unmodified, against the mock on a real socket."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import httpx2
import jsonschema
import openai
import pytest

from capacity.limits import ManualClock
from capacity.serve.behaviour import text_of
from tests.serve_support import (
    CLAUDE,
    GPT,
    WEATHER_TOOL,
    metric_sum,
    metrics,
    profile,
    serving,
)

USER = [{"role": "user", "content": "What is the weather in Boston?"}]


def _oai(srv, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key="mock", **kw)


def test_openai_sync_text_and_usage() -> None:
    with serving() as srv, _oai(srv) as client:
        r = client.chat.completions.with_raw_response.create(model=GPT, messages=USER)
        c = r.parse()
        assert c.choices[0].finish_reason == "stop"
        assert c.choices[0].message.content
        assert c.choices[0].message.tool_calls is None
        u = c.usage
        assert u is not None and u.prompt_tokens > 0 and 5 <= u.completion_tokens <= 40
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens
        # One word per token: the text and the usage agree.
        assert len(c.choices[0].message.content.split()) <= u.completion_tokens
        assert r.headers["x-ratelimit-limit-requests"] == "100000"
        assert int(r.headers["x-ratelimit-remaining-requests"]) > 0
        assert r.headers["x-request-id"].startswith("req_")


def test_openai_tool_call_then_text_after_tool_result() -> None:
    schema = WEATHER_TOOL["function"]["parameters"]
    with serving() as srv, _oai(srv) as client:
        c = client.chat.completions.create(model=GPT, messages=USER, tools=[WEATHER_TOOL])
        msg = c.choices[0].message
        assert c.choices[0].finish_reason == "tool_calls"
        assert msg.content is None and msg.tool_calls and len(msg.tool_calls) == 1
        call = msg.tool_calls[0]
        assert call.function.name == "get_weather" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.function.arguments), schema)
        history = [*USER,
                   {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                   {"role": "tool", "tool_call_id": call.id, "content": "72F"}]
        c2 = client.chat.completions.create(model=GPT, messages=history,
                                            tools=[WEATHER_TOOL])
        assert c2.choices[0].finish_reason == "stop" and c2.choices[0].message.content
        # tool_choice none, max_completion_tokens and the developer role are accepted.
        c3 = client.chat.completions.create(
            model=GPT, tools=[WEATHER_TOOL], tool_choice="none", max_completion_tokens=3,
            messages=[{"role": "developer", "content": "Be brief."}, *USER])
        assert c3.choices[0].message.tool_calls is None
        assert c3.usage is not None and c3.usage.completion_tokens <= 3


def test_openai_parallel_calls_have_unique_ids() -> None:
    with serving(tool_calls=3) as srv, _oai(srv) as client:
        ids = set()
        for _ in range(3):
            c = client.chat.completions.create(model=GPT, messages=USER, tools=[WEATHER_TOOL])
            calls = c.choices[0].message.tool_calls
            assert calls is not None and len(calls) == 3
            ids |= {k.id for k in calls}
        assert len(ids) == 9
        one = client.chat.completions.create(model=GPT, messages=USER, tools=[WEATHER_TOOL],
                                             parallel_tool_calls=False)
        assert len(one.choices[0].message.tool_calls or []) == 1


def test_openai_stream_text_and_tools_with_usage() -> None:
    with serving() as srv, _oai(srv) as client:
        chunks = list(client.chat.completions.create(
            model=GPT, messages=USER, stream=True, stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
        assert finishes[-1] == "stop"
        # The SDK's stream helper accumulates tool-call deltas into whole calls.
        with client.chat.completions.stream(model=GPT, messages=USER,
                                            tools=[WEATHER_TOOL]) as stream:
            final = stream.get_final_completion()
        call = final.choices[0].message.tool_calls[0]
        assert final.choices[0].finish_reason == "tool_calls"
        assert json.loads(call.function.arguments)["city"]


def test_openai_async_stream_and_not() -> None:
    async def main(url: str) -> None:
        async with openai.AsyncOpenAI(base_url=url, api_key="mock") as client:
            c = await client.chat.completions.create(model=GPT, messages=USER,
                                                     tools=[WEATHER_TOOL])
            assert c.choices[0].message.tool_calls
            s = await client.chat.completions.create(model=GPT, messages=USER, stream=True)
            parts = [ch.choices[0].delta.content or "" async for ch in s if ch.choices]
            assert "".join(parts)
            results = await asyncio.gather(*[
                client.chat.completions.create(model=GPT, messages=USER) for _ in range(20)])
            assert all(r.choices[0].finish_reason == "stop" for r in results)

    with serving() as srv:
        asyncio.run(main(srv.openai_base_url))


def test_models_list_and_unknown_model_is_404() -> None:
    with serving() as srv, _oai(srv, max_retries=0) as client:
        assert {m.id for m in client.models.list()} == {GPT, CLAUDE}
        with pytest.raises(openai.NotFoundError) as e:
            client.chat.completions.create(model="nope", messages=USER)
        assert e.value.code == "model_not_found" and e.value.param == "model"
        with pytest.raises(openai.BadRequestError) as e2:
            client.chat.completions.create(model=GPT, messages=[{"role": "user"}])
        assert e2.value.param == "messages[0].content"


def test_models_retrieve_in_both_sdks() -> None:
    # `models.retrieve` (GET /v1/models/{id}) was an "unknown path" 404 even for a model
    # the profile serves, and an OpenAI-shaped one for the Anthropic SDK.
    with serving() as srv, _oai(srv, max_retries=0) as client, anthropic.Anthropic(
            base_url=srv.url, api_key="mock", max_retries=0) as ant:
        m = client.models.retrieve(GPT)
        assert m.id == GPT and m.object == "model"
        with pytest.raises(openai.NotFoundError) as e:
            client.models.retrieve("nope")
        assert e.value.code == "model_not_found" and e.value.param == "model"
        assert ant.models.retrieve(CLAUDE).id == CLAUDE
        with pytest.raises(anthropic.NotFoundError) as e2:
            ant.models.retrieve("nope")
        assert e2.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_anthropic_count_tokens() -> None:
    # POST /v1/messages/count_tokens (ChatAnthropic.get_num_tokens_from_messages) was an
    # "unknown path" 404.
    with serving() as srv, anthropic.Anthropic(base_url=srv.url, api_key="mock",
                                               max_retries=0) as ant:
        short = ant.messages.count_tokens(model=CLAUDE, messages=USER).input_tokens
        long = ant.messages.count_tokens(model=CLAUDE, system="x" * 4000,
                                         messages=USER).input_tokens
        assert 0 < short < long and long >= 1000
        with pytest.raises(anthropic.NotFoundError):
            ant.messages.count_tokens(model="nope", messages=USER)
        with pytest.raises(anthropic.BadRequestError) as e:
            ant.messages.count_tokens(model=CLAUDE, messages=[])
        assert "messages" in str(e.value)
        # Nothing was charged or counted as a generation request.
        assert metric_sum(metrics(srv.url), "capacity_mock_requests_total") == 0


def test_anthropic_count_tokens_is_the_same_requests_input_usage() -> None:
    """count_tokens answers what /v1/messages charges the same request: input_tokens +
    cache_read_input_tokens (it answered 18 where usage said 6 + 15 = 21: the estimate
    read the whole body's bytes, and count_tokens' body has no max_tokens)."""
    tool = {"name": "get_weather", "description": "Weather of a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"]}
    asks = [dict(messages=USER),
            dict(system="You are terse.", messages=USER, tools=[tool],
                 tool_choice={"type": "any"})]
    with serving(profile(cached=0.5)) as srv, anthropic.Anthropic(
            base_url=srv.url, api_key="mock", max_retries=0) as ant:
        for ask in asks:
            counted = ant.messages.count_tokens(model=CLAUDE, **ask).input_tokens
            # max_tokens and metadata are not prompt: their digits change nothing.
            for extra in ({"max_tokens": 7}, {"max_tokens": 4096,
                                               "metadata": {"user_id": "u" * 400}}):
                u = ant.messages.create(model=CLAUDE, **ask, **extra).usage
                assert u.cache_read_input_tokens and u.cache_read_input_tokens > 0
                assert u.input_tokens + u.cache_read_input_tokens == counted, (ask, extra)


def test_openai_n_choices_non_streaming_and_streaming() -> None:
    """n > 1 (refused before: "the mock answers with one choice") answers choices
    0..n-1, each decided by the history rule on its own (tool calls with unique ids),
    usage.completion_tokens the sum; streamed, every chunk carries one choice by index
    and the SDK's stream accumulator assembles all n."""
    out = {"x-capacity-output-tokens": "20"}  # every choice 20 tokens: the sum is known
    with serving() as srv, _oai(srv, max_retries=0) as client:
        c = client.chat.completions.create(model=GPT, messages=USER, tools=[WEATHER_TOOL],
                                           n=3, extra_headers=out)
        assert [ch.index for ch in c.choices] == [0, 1, 2]
        assert all(ch.finish_reason == "tool_calls" for ch in c.choices)
        ids = [t.id for ch in c.choices for t in ch.message.tool_calls or []]
        assert len(ids) == 3 and len(set(ids)) == 3
        assert c.usage is not None and c.usage.completion_tokens == 60
        # No tools offered: each choice answers text.
        c = client.chat.completions.create(model=GPT, messages=USER, n=4, extra_headers=out)
        assert [ch.index for ch in c.choices] == [0, 1, 2, 3]
        assert all(ch.finish_reason == "stop" and ch.message.content for ch in c.choices)
        assert c.usage is not None and c.usage.completion_tokens == 80
        with client.chat.completions.stream(
                model=GPT, messages=USER, n=3, extra_headers=out,
                stream_options={"include_usage": True}) as s:
            final = s.get_final_completion()
        assert [ch.index for ch in final.choices] == [0, 1, 2]
        # Each choice's pieces reassembled whole: the 20-token text of a choice.
        assert all(ch.finish_reason == "stop" and ch.message.content == text_of(0, 20)
                   for ch in final.choices)
        assert final.usage is not None and final.usage.completion_tokens == 60
        with client.chat.completions.stream(model=GPT, messages=USER, n=2,
                                            tools=[WEATHER_TOOL]) as s:
            final = s.get_final_completion()
        calls = [ch.message.tool_calls for ch in final.choices]
        assert [ch.finish_reason for ch in final.choices] == ["tool_calls"] * 2
        assert all(cs and len(cs) == 1 and json.loads(cs[0].function.arguments)
                   for cs in calls)
        assert calls[0][0].id != calls[1][0].id  # type: ignore[index]
        seen = []
        for chunk in client.chat.completions.create(model=GPT, messages=USER, n=3,
                                                    stream=True):
            assert len(chunk.choices) == 1  # one choice per chunk, as OpenAI streams
            seen.append(chunk.choices[0].index)
        assert sorted(set(seen)) == [0, 1, 2] and seen[:3] == [0, 1, 2]
        for bad_n in (0, 129):
            with pytest.raises(openai.BadRequestError) as e:
                client.chat.completions.create(model=GPT, messages=USER, n=bad_n)
            assert e.value.body["param"] == "n"  # type: ignore[index]


def test_azure_deployment_maps_to_quota() -> None:
    prof = profile(rpm=2, window="60s")
    with serving(prof, clock=ManualClock(0.0), time_scale=60_000) as srv, \
            openai.AzureOpenAI(azure_endpoint=srv.azure_endpoint, api_key="mock",
                               api_version="2024-10-21", max_retries=0) as client:
        r = client.chat.completions.with_raw_response.create(model="oai", messages=USER)
        assert r.parse().choices[0].message.content
        assert r.headers["x-ratelimit-remaining-requests"] == "1"
        assert "x-ratelimit-limit-requests" not in r.headers  # Azure's 200 subset
        client.chat.completions.create(model=GPT, messages=USER)  # model name works too
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model="oai", messages=USER)
        body = e.value.response.json()
        assert body["error"]["code"] == "429" and "call rate limit" in body["error"]["message"]
        assert "Please retry after 1 seconds" in body["error"]["message"]
        # 60 s to the window's end, rounded up to 60.001 s (ceil_ms), / K = 1.00002 ms.
        assert e.value.response.headers["retry-after-ms"] == "2"
        with pytest.raises(openai.NotFoundError) as e2:
            client.chat.completions.create(model="missing", messages=USER)
        assert e2.value.response.json()["error"]["code"] == "DeploymentNotFound"


def test_azure_responses_and_v1_routes() -> None:
    """AzureOpenAI(...).responses (POST /openai/responses?api-version=) and Azure's v1 API
    (OpenAI(base_url=".../openai/v1/"): chat and responses) were 404s."""
    with serving() as srv, \
            openai.AzureOpenAI(azure_endpoint=srv.azure_endpoint, api_key="mock",
                               api_version="2025-04-01-preview", max_retries=0) as az, \
            openai.OpenAI(base_url=srv.azure_endpoint + "/openai/v1/", api_key="mock",
                          max_retries=0) as v1:
        r = az.responses.with_raw_response.create(model=GPT, input="hi")
        assert r.parse().output_text and r.parse().usage.input_tokens > 0
        assert "x-ratelimit-limit-requests" not in r.headers  # Azure's 200 subset
        c = v1.chat.completions.create(model=GPT, messages=USER)
        assert c.choices[0].message.content
        assert v1.responses.create(model=GPT, input="hi").output_text
        m = metrics(srv.url)
    assert metric_sum(m, "capacity_mock_requests_total", status="200") == 3


def test_responses_api_function_call_round_trip() -> None:
    tool = {"type": "function", "name": "get_weather",
            "parameters": WEATHER_TOOL["function"]["parameters"]}
    with serving() as srv, _oai(srv) as client:
        r = client.responses.create(model=GPT, input="Weather in Boston?", tools=[tool])
        calls = [o for o in r.output if o.type == "function_call"]
        assert len(calls) == 1 and json.loads(calls[0].arguments)["city"]
        assert r.usage is not None and r.usage.input_tokens > 0
        r2 = client.responses.create(model=GPT, tools=[tool], input=[
            {"role": "user", "content": "Weather in Boston?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
             "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "72F"}])
        assert r2.output_text and not [o for o in r2.output if o.type == "function_call"]
        with client.responses.stream(model=GPT, input="hi") as s:
            final = s.get_final_response()
        assert final.output_text
        with client.responses.stream(model=GPT, input="hi", tools=[tool]) as s:
            final = s.get_final_response()
        assert final.output[0].type == "function_call"


def test_anthropic_messages_tools_stream_and_not() -> None:
    tools = [{"name": "get_weather", "description": "Weather",
              "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    with serving() as srv, anthropic.Anthropic(base_url=srv.anthropic_base_url,
                                               api_key="mock") as client:
        m = client.messages.create(model=CLAUDE, max_tokens=100, messages=USER, tools=tools)
        assert m.stop_reason == "tool_use"
        block = m.content[0]
        assert block.type == "tool_use" and block.id.startswith("toolu_")
        jsonschema.validate(block.input, tools[0]["input_schema"])
        m2 = client.messages.create(model=CLAUDE, max_tokens=100, tools=tools, messages=[
            *USER, {"role": "assistant", "content": [block.model_dump()]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                          "content": "72F"}]}])
        assert m2.stop_reason == "end_turn" and m2.content[0].type == "text"
        assert m2.usage.input_tokens > 0 and m2.usage.output_tokens > 0
        with client.messages.stream(model=CLAUDE, max_tokens=100, messages=USER,
                                    tools=tools) as s:
            final = s.get_final_message()
        assert final.stop_reason == "tool_use" and final.content[0].input["city"]
        with client.messages.stream(model=CLAUDE, max_tokens=100, system="Be brief.",
                                    messages=USER) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert text and final.stop_reason == "end_turn"
        assert final.usage.output_tokens == len(text.split()) or final.usage.output_tokens > 0
        raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=5,
                                                       messages=USER)
        assert raw.parse().stop_reason in ("max_tokens", "end_turn")
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "100000"
        assert raw.headers["request-id"].startswith("req_")


def test_anthropic_429_shape_and_headers() -> None:
    prof = profile(claude_rpm=1)
    with serving(prof, clock=ManualClock(0.0), time_scale=60_000) as srv, \
            anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="mock",
                                max_retries=0) as client:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
        with pytest.raises(anthropic.RateLimitError) as e:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
        body = e.value.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        h = e.value.response.headers
        # One id: the headers and the body name the same request.
        assert h["x-request-id"] == h["request-id"] == body["request_id"] == \
            e.value.request_id
        assert h["retry-after"] == "1"
        assert h["anthropic-ratelimit-requests-remaining"] == "0"
        assert h["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_sdk_retry_honours_retry_after_ms() -> None:
    # 1 request per 60 s window, 60 s = 1.2 s of wall time at K = 50: the second call is
    # refused with retry-after-ms ~ 1200; the SDK's own backoff would retry after
    # 0.375-0.5 s (and be refused again). Waiting at least retry-after-ms and then
    # succeeding on the first retry shows the SDK used the mock's header.
    prof = profile(rpm=1, window="60s")
    with serving(prof, time_scale=50) as srv, _oai(srv, max_retries=2) as client:
        # Model time from 0, a window's start: the retry is admitted at the window's end,
        # 1.2 s after the reset however long the first call took (under load it took
        # over 1 s from the server's start, and the retry waited only the 0.2 s left).
        t_reset = time.monotonic()
        httpx2.post(srv.url + "/admin/reset").raise_for_status()
        client.chat.completions.create(model=GPT, messages=USER)
        r = client.chat.completions.with_raw_response.create(model=GPT, messages=USER)
        elapsed = time.monotonic() - t_reset
        assert r.parse().choices[0].message.content
        m = metrics(srv.url)
        assert metric_sum(m, "capacity_mock_requests_total", status="429") == 1
        assert metric_sum(m, "capacity_mock_retry_count_seen_total", retry="1") == 1
        assert m["capacity_mock_retries_seen_total"] == 1
        assert metric_sum(m, "capacity_mock_rate_limited_total", slot="oai.rpm") == 1
        # The window's end, not the 0.5 s backoff (which, sent before it, met a second 429)
        assert elapsed >= 1.15


def test_burst_beyond_quota_raises_rate_limit_error_after_retries() -> None:
    # A frozen clock: nothing refills, so every retry is refused too.
    prof = profile(rpm=5, window="60s")
    with serving(prof, clock=ManualClock(0.0), time_scale=60_000) as srv, \
            _oai(srv, max_retries=2) as client:
        for _ in range(5):
            client.chat.completions.create(model=GPT, messages=USER)
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model=GPT, messages=USER)
        h = e.value.response.headers
        assert h["retry-after-ms"] == "2" and h["retry-after"] == "1"  # 60.001 s / K
        assert h["x-ratelimit-limit-requests"] == "5"
        assert h["x-ratelimit-remaining-requests"] == "0"
        assert h["x-ratelimit-reset-requests"] == "1ms"
        # As OpenAI: type names the limit that refused, code is rate_limit_exceeded.
        assert e.value.code == "rate_limit_exceeded" and e.value.type == "requests"
        m = metrics(srv.url)
        assert metric_sum(m, "capacity_mock_requests_total", status="429") == 3
        assert metric_sum(m, "capacity_mock_requests_total", status="200") == 5
        assert m["capacity_mock_retries_seen_total"] == 2
        # POST /admin/reset: a fresh quota admits again.
        httpx2.post(srv.url + "/admin/reset").raise_for_status()
        assert client.chat.completions.create(model=GPT, messages=USER).choices


def test_openai_token_429_names_the_token_limit() -> None:
    # A TPM refusal: OpenAI's body has type "tokens" (a request-limit one "requests").
    prof = profile(tpm=600, window="60s", charge_max_tokens=True)  # ~520 a request
    with serving(prof, clock=ManualClock(0.0), time_scale=60_000) as srv, \
            _oai(srv, max_retries=0) as client:
        client.chat.completions.create(model=GPT, messages=USER)
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model=GPT, messages=USER)
        assert e.value.type == "tokens" and e.value.code == "rate_limit_exceeded"
        assert e.value.body["type"] == "tokens"  # type: ignore[index]
        assert "tokens per min (TPM)" in e.value.message


def test_anthropic_async_stream_and_not() -> None:
    async def main(url: str) -> None:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="mock") as client:
            m = await client.messages.create(model=CLAUDE, max_tokens=50, messages=USER)
            assert m.stop_reason == "end_turn" and m.content[0].text
            async with client.messages.stream(model=CLAUDE, max_tokens=50,
                                              messages=USER) as s:
                text = "".join([t async for t in s.text_stream])
            assert text
            ms = await asyncio.gather(*[client.messages.create(
                model=CLAUDE, max_tokens=50, messages=USER) for _ in range(20)])
            assert len({x.id for x in ms}) == 20

    with serving() as srv:
        asyncio.run(main(srv.anthropic_base_url))
