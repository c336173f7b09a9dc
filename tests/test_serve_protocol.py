"""Wire-level behaviour of the mock: validation errors, history rule, schema-valid
arguments, time scale, SSE grouping, disconnects, metrics."""

from __future__ import annotations

import json
import math
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import httpx2
import jsonschema
import numpy as np
import pytest
from pydantic import BaseModel, Field

from capacity.serve.app import _units
from capacity.serve.behaviour import text_of
from capacity.serve.history import ToolDef, TurnView, decide
from capacity.serve.schema_args import arguments_for
from tests.serve_support import CLAUDE, GPT, WEATHER_TOOL, metric_sum, metrics, profile, serving

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "mock"}
OK_CHAT = {"model": GPT, "messages": [{"role": "user", "content": "hi"}]}
OK_MSG = {"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


# -- validation: provider-shaped 4xx naming the field ------------------------------------

CHAT_CASES: list[tuple[Any, int, str]] = [
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ({"model": 3, "messages": []}, 400, "model"),
    ({"model": GPT}, 400, "messages"),
    ({"model": GPT, "messages": "hi"}, 400, "messages"),
    ({"model": GPT, "messages": []}, 400, "messages"),
    ({"model": GPT, "messages": [3]}, 400, "messages[0]"),
    ({"model": GPT, "messages": [{"content": "x"}]}, 400, "messages[0].role"),
    ({"model": GPT, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ({"model": GPT, "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ({"model": GPT, "messages": [{"role": "tool", "content": "x"}]}, 400,
     "messages[0].tool_call_id"),
    ({**OK_CHAT, "tools": {"a": 1}}, 400, "tools"),
    ({**OK_CHAT, "tools": [{"type": "function", "function": {"name": 1}}]}, 400,
     "tools[0].function.name"),
    # A name OpenAI refuses ("string does not match pattern", "string too long") was
    # served 200 with a tool call of that name.
    ({**OK_CHAT, "tools": [{"type": "function", "function": {"name": "get weather!"}}]},
     400, "tools[0].function.name"),
    ({**OK_CHAT, "tools": [{"type": "function", "function": {"name": "mcp/search"}}]},
     400, "tools[0].function.name"),
    ({**OK_CHAT, "tools": [{"type": "function", "function": {"name": "f" * 65}}]},
     400, "tools[0].function.name"),
    ({**OK_CHAT, "tool_choice": "maybe"}, 400, "tool_choice"),
    ({**OK_CHAT, "tools": [WEATHER_TOOL],
      "tool_choice": {"type": "function", "function": {"name": "other"}}}, 400,
     "tool_choice.function.name"),
    ({**OK_CHAT, "stream": "yes"}, 400, "stream"),
    ({**OK_CHAT, "max_tokens": "10"}, 400, "max_tokens"),
    ({**OK_CHAT, "max_tokens": 0}, 400, "max_tokens"),
    ({**OK_CHAT, "max_completion_tokens": 1.5}, 400, "max_completion_tokens"),
    ({**OK_CHAT, "stream_options": []}, 400, "stream_options"),
    # OpenAI refuses these; the mock answered 200 (a client bug seen only in production).
    ({**OK_CHAT, "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({**OK_CHAT, "stream": False, "stream_options": {"include_usage": True}}, 400,
     "stream_options"),
    ({**OK_CHAT, "tools": []}, 400, "tools"),
    ({"model": GPT, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, 400,
     "messages[0].content[0].type"),
    ({"model": GPT, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, 400,
     "messages[0].content[0].text"),
    ({**OK_CHAT, "tools": [WEATHER_TOOL] * 129}, 400, "tools"),
    ({**OK_CHAT, "model": "gpt-unknown"}, 404, "model"),
    ([1, 2, 3], 400, "body"),
    # The error hunt: a non-string `user` (the session of the mock's request log) was
    # served and logged as session '-'; OpenAI refuses it.
    ({**OK_CHAT, "user": 5}, 400, "user"),
    # Sampling fields the mock ignores are still checked as OpenAI checks them (it refuses
    # "Invalid 'temperature': decimal above maximum value"), so a client bug shows here.
    ({**OK_CHAT, "temperature": 2.5}, 400, "temperature"),
    ({**OK_CHAT, "temperature": "hot"}, 400, "temperature"),
    ({**OK_CHAT, "top_p": -0.1}, 400, "top_p"),
    ({**OK_CHAT, "presence_penalty": 3}, 400, "presence_penalty"),
    ({**OK_CHAT, "frequency_penalty": True}, 400, "frequency_penalty"),
    ({**OK_CHAT, "seed": 1.5}, 400, "seed"),
    # int64, as OpenAI's schema; past 2^64 orjson reads the literal as a float, which
    # had been reported as "got a number" for an integer the client wrote.
    ({**OK_CHAT, "seed": 2 ** 63}, 400, "seed"),
    ({**OK_CHAT, "seed": 2 ** 64 + 1}, 400, "seed"),
    ({**OK_CHAT, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({**OK_CHAT, "stop": [1]}, 400, "stop[0]"),
    ({**OK_CHAT, "logprobs": "yes"}, 400, "logprobs"),
    ({**OK_CHAT, "top_logprobs": 21}, 400, "top_logprobs"),
    # The error hunt: tool messages that answer no tool call (OpenAI refuses them: "messages
    # with role 'tool' must be a response to a preceeding message with 'tool_calls'") and
    # tool calls left unanswered were served 200.
    ({"model": GPT, "messages": [{"role": "user", "content": "q"},
                                 {"role": "tool", "tool_call_id": "call_1", "content": "r"}]},
     400, "messages[1].role"),
    ({"model": GPT, "messages": [*[{"role": "user", "content": "q"}], *(_TOOL_TURN := [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "r"}]),
        {"role": "tool", "tool_call_id": "call_9", "content": "r"}]}, 400,
     "messages[3].tool_call_id"),
    ({"model": GPT, "messages": [{"role": "user", "content": "q"}, *_TOOL_TURN,
                                 {"role": "user", "content": "next"}]}, 400,
     "messages[1].tool_calls"),
]


@pytest.fixture(name="srv", scope="module")
def _srv() -> Any:
    with serving() as s:
        yield s


@pytest.fixture(name="http", scope="module")
def _http(srv: Any) -> Any:
    with httpx2.Client(base_url=srv.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize(("body", "status", "param"), CHAT_CASES)
def test_openai_bad_requests_name_the_field(http: Any, body: Any, status: int,
                                            param: str) -> None:
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == param and err["message"].startswith(
        param if status == 400 else "The model")
    assert err["type"] == "invalid_request_error"


MSG_CASES: list[tuple[Any, int, str]] = [
    ({k: v for k, v in OK_MSG.items() if k != "max_tokens"}, 400, "max_tokens"),
    ({k: v for k, v in OK_MSG.items() if k != "messages"}, 400, "messages"),
    ({**OK_MSG, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages.0.role"),
    ({**OK_MSG, "messages": [{"role": "system", "content": [{"type": "image"}]}]}, 400,
     "messages.0.content.0.type"),
    ({**OK_MSG, "messages": [{"role": "user", "content": [{"text": "x"}]}]}, 400,
     "messages.0.content.0.type"),
    ({**OK_MSG, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": 3}]}]}, 400,
     "messages.0.content.0.tool_use_id"),
    ({**OK_MSG, "tools": [{"name": "t"}]}, 400, "tools.0.input_schema"),
    # Two tools of one name were served 200 (a tool_use of the first); the API answers
    # 400 "tools: Tool names must be unique." (server tools' names count too).
    ({**OK_MSG, "tools": [{"name": "t", "input_schema": {"type": "object"}},
                          {"name": "t", "input_schema": {"type": "object"}}]}, 400,
     "tools: Tool names must be unique."),
    ({**OK_MSG, "tools": [{"type": "web_search_20250305", "name": "web_search"},
                          {"name": "web_search", "input_schema": {"type": "object"}}]}, 400,
     "tools: Tool names must be unique."),
    ({**OK_MSG, "tool_choice": {"type": "sometimes"}}, 400, "tool_choice.type"),
    ({**OK_MSG, "system": 5}, 400, "system"),
    ({**OK_MSG, "model": "claude-unknown"}, 404, "model"),
    # The error hunt: metadata that is no object, or a non-string user_id (the session of
    # the request log), was served and logged as session '-'; Anthropic refuses them.
    ({**OK_MSG, "metadata": "alice"}, 400, "metadata"),
    ({**OK_MSG, "metadata": {"user_id": 5}}, 400, "metadata.user_id"),
    # The error hunt: empty content was served 200 (Anthropic: "all messages must have
    # non-empty content except for the optional final assistant message").
    ({**OK_MSG, "messages": [{"role": "user", "content": ""}]}, 400, "messages.0.content"),
    ({**OK_MSG, "messages": [{"role": "user", "content": []}]}, 400, "messages.0.content"),
    # Falsy content of the wrong type is a type error, not an empty one.
    ({**OK_MSG, "messages": [{"role": "user", "content": None}]}, 400,
     "messages.0.content: expected a string or an array"),
    ({**OK_MSG, "messages": [{"role": "user", "content": {}}]}, 400,
     "messages.0.content: expected a string or an array"),
    ({**OK_MSG, "messages": [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": "  "},
                             {"role": "user", "content": "r"}]}, 400, "messages.1.content"),
    ({**OK_MSG, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     400, "messages.0.content.0.text"),
    # The error hunt: tool_result blocks answering no tool_use of the previous message, and
    # tool_use blocks the next message does not answer, were served 200 (Anthropic: "unexpected
    # `tool_use_id` found in `tool_result` blocks" / "`tool_use` ids were found without
    # `tool_result` blocks immediately after").
    ({**OK_MSG, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]}]}, 400,
     "messages.0.content.0"),
    ({**OK_MSG, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}]}]}, 400,
     "messages.2.content.0"),
    ({**OK_MSG, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
            {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]}]}, 400,
     "messages.1"),
    # Anthropic's temperature is 0..1 (OpenAI's 0..2): a client ported from OpenAI with
    # temperature 1.5 is refused there, so here too.
    ({**OK_MSG, "temperature": 1.5}, 400, "temperature"),
    ({**OK_MSG, "top_p": "x"}, 400, "top_p"),
    ({**OK_MSG, "top_k": -1}, 400, "top_k"),
    ({**OK_MSG, "stop_sequences": "END"}, 400, "stop_sequences"),
    # Anthropic names an element as messages.0 does (it said stop_sequences[1]).
    ({**OK_MSG, "stop_sequences": ["END", 2]}, 400, "stop_sequences.1"),
]


def test_sampling_fields_in_range_are_served(http: Any) -> None:
    """The edges of each range are accepted (and null is "not sent"); Responses echoes
    temperature and top_p as sent."""
    chat = {**OK_CHAT, "temperature": 2, "top_p": 0, "presence_penalty": -2.0,
            "frequency_penalty": None, "seed": -7, "stop": "END", "logprobs": True,
            "top_logprobs": 20}
    assert http.post("/v1/chat/completions", json=chat).status_code == 200
    msg = {**OK_MSG, "temperature": 1, "top_p": 0.5, "top_k": 0, "stop_sequences": ["END"]}
    assert http.post("/v1/messages", json=msg, headers=ANTHROPIC_HEADERS).status_code == 200
    r = http.post("/v1/responses", json={"model": GPT, "input": "q", "temperature": 0.2})
    assert r.status_code == 200 and (r.json()["temperature"], r.json()["top_p"]) == (0.2, 1.0)
    r = http.post("/v1/responses", json={"model": GPT, "input": "q", "top_p": 1.01})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_p", r.text


@pytest.mark.parametrize("seed", [2 ** 64 + 1, -(2 ** 63) - 1])
def test_an_integer_past_64_bits_is_out_of_range_not_a_number(http: Any, seed: int) -> None:
    # orjson reads these literals as floats: "expected an integer, got a number" denied
    # the integer the client wrote.
    r = http.post("/v1/chat/completions", json={**OK_CHAT, "seed": seed})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == \
        f"seed: must be a 64-bit integer, got a number past 64 bits ({float(seed):.3g})", \
        r.text


@pytest.mark.parametrize(("body", "status", "param"), MSG_CASES)
def test_anthropic_bad_requests_name_the_field(http: Any, body: Any, status: int,
                                               param: str) -> None:
    r = http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == status
    j = r.json()
    assert j["type"] == "error" and j["request_id"].startswith("req_")
    assert j["error"]["type"] == ("invalid_request_error" if status == 400
                                  else "not_found_error")
    assert j["error"]["message"].startswith(param)


@pytest.mark.parametrize(("body", "param"), [
    ({"model": GPT, "input": [{"role": "user", "content": "q"},
                              {"type": "function_call_output", "call_id": "c9", "output": "r"}]},
     "input[1].call_id"),
    ({"model": GPT, "input": [{"type": "function_call_output", "call_id": "c1", "output": "r"},
                              {"type": "function_call", "call_id": "c1", "name": "f",
                               "arguments": "{}"}]}, "input[0].call_id"),
])
def test_responses_output_of_no_function_call_is_refused(http: Any, body: Any,
                                                        param: str) -> None:
    # The error hunt: served 200; OpenAI: "No tool call found for function call output
    # with call_id ...". With previous_response_id the call may be in the stored response.
    # An output that is neither text nor content parts was served 200 too.
    r = http.post("/v1/responses", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["message"].startswith(param), err
    ok = {"model": GPT, "input": [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r"}]}
    assert http.post("/v1/responses", json=ok).status_code == 200
    chained = {**body, "previous_response_id": "resp_1"}
    assert http.post("/v1/responses", json=chained).status_code == 200
    ok["input"][2]["output"] = 5
    r = http.post("/v1/responses", json=ok)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[2].output", r.text
    # A stateful client re-sends a stored call as a reference to its fc_ id.
    referenced = {**body, "input": [{"type": "item_reference", "id": "fc_1"}, *body["input"]]}
    assert http.post("/v1/responses", json=referenced).status_code == 200


def test_anthropic_final_assistant_message_may_be_empty(http: Any) -> None:
    # A prefill: the one message Anthropic lets be empty.
    body = {**OK_MSG, "messages": [{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": ""}]}
    assert http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS).status_code == 200


def test_any_anthropic_version_or_none_is_served(http: Any) -> None:
    # The issue's contract: any anthropic-version is accepted (SDKs send newer ones than
    # the docs list), and a raw client without one (curl, a test harness) is served as
    # without an API key; the answer is Anthropic-shaped either way.
    for headers in ({"x-api-key": "mock"}, {"anthropic-version": "", "x-api-key": "k"},
                    {"anthropic-version": "2099-01-01"}):
        r = http.post("/v1/messages", json=OK_MSG, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "message"
    r = http.post("/v1/messages", json={"model": OK_MSG["model"]}, headers={"x-api-key": "k"})
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_body_errors_malformed_empty_too_large(srv: Any, http: Any) -> None:
    r = http.post("/v1/chat/completions", content=b"{not json",
                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "body"
    r = http.post("/v1/chat/completions", content=b"")
    assert r.status_code == 400 and r.json()["error"]["param"] == "body"
    big = b'{"model": "x", "messages": [], "pad": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    r = http.post("/v1/messages", content=big, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    r = http.post("/v1/chat/completions", content=b"\xff\xfe\x00garbage")
    assert r.status_code == 400
    assert http.post("/v1/chat/completions", json=OK_CHAT).status_code == 200


def test_empty_tools_is_openais_empty_array_400(http: Any) -> None:
    r = http.post("/v1/chat/completions", json={**OK_CHAT, "tools": []})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "tools" and err["code"] == "empty_array"
    assert err["message"] == ("tools: empty array. Expected an array with minimum length 1, "
                              "but got an empty array instead.")


def test_unknown_paths_methods_and_azure_version(http: Any) -> None:
    r = http.post("/v1/embeddings", json={})
    assert r.status_code == 404 and "unknown path" in r.json()["error"]["message"]
    r = http.get("/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()
    r = http.post("/openai/deployments/oai/chat/completions", json=OK_CHAT)
    # As Azure answers it: 404 {"error": {"code": "404", "message": "Resource not found"}}.
    assert r.status_code == 404 and r.json()["error"]["code"] == "404"
    assert r.json()["error"]["message"].startswith("Resource not found: the api-version")
    r = http.post("/openai/deployments/oai/chat/completions?api-version=2024-10-21",
                  json={"messages": OK_CHAT["messages"]})
    assert r.status_code == 200 and r.json()["model"] == "oai"
    r = http.get("/v1/models", headers=ANTHROPIC_HEADERS)
    assert {m["id"] for m in r.json()["data"]} == {GPT, CLAUDE}
    assert r.json()["data"][0]["type"] == "model"


# -- the history rule --------------------------------------------------------------------

def _view(last_tool: bool = False, choice: Any = "auto", parallel: bool = True,
          tools: tuple[ToolDef, ...] = (ToolDef("a", None), ToolDef("b", {}))) -> TurnView:
    return TurnView(last_tool, tools, choice, parallel)


def test_history_rule() -> None:
    rng = np.random.default_rng(0)
    kw = {"tool_probability": 1.0, "n_calls": 2, "id_prefix": "call_"}
    assert not decide(_view(last_tool=True), rng, **kw).is_tool_call
    assert not decide(_view(choice="none"), rng, **kw).is_tool_call
    assert not decide(_view(tools=()), rng, **kw).is_tool_call
    r = decide(_view(), rng, **kw)
    assert [c.name for c in r.calls] in (["a", "b"], ["b", "a"])
    assert len(decide(_view(parallel=False), rng, **kw).calls) == 1
    named = decide(_view(choice=("name", "b")), rng, **kw)
    assert [c.name for c in named.calls] == ["b"]
    # tool_probability: auto turns sometimes answer text; required always calls.
    p = {**kw, "tool_probability": 0.3}
    auto = [decide(_view(), rng, **p).is_tool_call for _ in range(2000)]
    assert 0.25 < np.mean(auto) < 0.35
    assert all(decide(_view(choice="required"), rng, **p).is_tool_call for _ in range(50))


def test_history_rule_over_http(http: Any) -> None:
    tool_turn = [{"role": "user", "content": "q"},
                 {"role": "assistant", "content": None, "tool_calls": [
                     {"id": "call_1", "type": "function",
                      "function": {"name": "get_weather", "arguments": "{}"}}]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r = http.post("/v1/chat/completions", json={**OK_CHAT, "messages": tool_turn,
                                                "tools": [WEATHER_TOOL]}).json()
    assert r["choices"][0]["finish_reason"] == "stop"
    # A user message after the tool result: a new request for a tool call.
    r = http.post("/v1/chat/completions", json={
        **OK_CHAT, "messages": [*tool_turn, {"role": "user", "content": "again"}],
        "tools": [WEATHER_TOOL]}).json()
    assert r["choices"][0]["finish_reason"] == "tool_calls"


# -- tool arguments valid against their schema ------------------------------------------

class Item(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d+$", examples=["ABC-1"])
    qty: int = Field(ge=1, le=9)
    note: str | None = None


class Tree(BaseModel):
    label: str
    children: list[Tree] = []


class Booking(BaseModel):
    # Patterns none of the placeholders match and no example gives: the mock sent
    # 'mock code', which pydantic refuses (the agent's tool call fails).
    code: str = Field(pattern=r"^[0-9]{3}-[a-z]{2}$")
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    ticker: str = Field(pattern=r"^[A-Z]{1,5}$", min_length=3)
    slot: str = Field(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$")
    key: str = Field(pattern=r"^sk-[A-Za-z0-9]{8}$")


class Order(BaseModel):
    items: list[Item] = Field(min_length=2)
    priority: Literal["low", "high"]
    weight_kg: float = Field(gt=0.5, lt=0.75)
    tags: set[str]
    tree: Tree
    ratio: float = Field(multiple_of=0.25, ge=3.1)


SCHEMAS: list[dict[str, Any]] = [
    WEATHER_TOOL["function"]["parameters"],
    Order.model_json_schema(),
    Tree.model_json_schema(),
    Booking.model_json_schema(),
    {"type": "object", "properties": {
        "n": {"type": "integer", "exclusiveMinimum": 10, "multipleOf": 7},
        "s": {"type": "string", "minLength": 12, "maxLength": 14, "format": "email"},
        "c": {"const": "fixed"},
        "t": {"type": ["null", "number"], "maximum": -3},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        "u": {"type": "array", "items": {"type": "integer", "maximum": 2},
              "minItems": 3, "uniqueItems": True},
        "m": {"type": "object", "additionalProperties": {"type": "boolean"},
              "minProperties": 2},
        "all": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}},
                           "required": ["a"]},
                          {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
        "one": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/D"}]},
    }, "required": ["n", "s", "c", "t", "pair", "u", "m", "all", "one"],
        "$defs": {"D": {"type": "object", "properties": {"x": {"type": "number"}},
                        "required": ["x"]}}},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_arguments_valid_against_schema(schema: dict[str, Any]) -> None:
    args = arguments_for(schema)
    assert isinstance(args, dict)
    jsonschema.validate(args, schema, format_checker=jsonschema.FormatChecker())


def test_pattern_arguments_pass_pydantic() -> None:
    Booking.model_validate(arguments_for(Booking.model_json_schema()))


def test_long_min_length_pattern_is_walked() -> None:
    # A long minLength over a repeat: the walk lengthens the repeat to it (the loop keeps
    # a running total; it once re-summed every piece per pass).
    schema = {"type": "object", "required": ["n"], "properties": {
        "n": {"type": "string", "pattern": r"^[0-9]+$", "minLength": 20_000,
              "maxLength": 20_005}}}
    args = arguments_for(schema)
    assert isinstance(args, dict)
    value = args["n"]
    assert 20_000 <= len(value) <= 20_005
    assert re.fullmatch(r"[0-9]+", value)
    jsonschema.validate(args, schema)


def test_pydantic_accepts_generated_order() -> None:
    Order.model_validate(arguments_for(Order.model_json_schema()))


# -- time scale, SSE grouping, disconnects, metrics --------------------------------------

def _prompt_estimate(body: dict[str, Any], fields: tuple[str, ...]) -> int:
    """ceil(bytes / 4) of the prompt fields as compact JSON, computed here independently."""
    part = {k: body[k] for k in fields if k in body}
    return math.ceil(len(json.dumps(part, separators=(",", ":"), ensure_ascii=False)
                         .encode()) / 4)


@pytest.mark.parametrize(("path", "body", "fields", "usage_of"), [
    ("/v1/chat/completions",
     {**OK_CHAT, "tools": [WEATHER_TOOL], "tool_choice": "none"},
     ("messages", "tools", "response_format"), lambda u: u["prompt_tokens"]),
    ("/v1/responses",
     {"model": GPT, "input": "What is the weather?", "instructions": "Be terse."},
     ("instructions", "input", "tools", "text"), lambda u: u["input_tokens"]),
    ("/v1/messages", {**OK_MSG, "system": "Be terse."},
     ("system", "messages", "tools", "tool_choice", "output_config"),
     lambda u: u["input_tokens"] + u["cache_read_input_tokens"]),
])
def test_prompt_tokens_come_from_the_prompt_fields_only(
        http: Any, path: str, body: dict[str, Any], fields: tuple[str, ...],
        usage_of: Any) -> None:
    """The estimate reads the prompt-bearing fields re-serialised compactly: the body's
    layout (indented JSON), metadata and max_tokens digits change nothing; the prompt
    does. Before, it was ceil(whole body bytes / 4), which all of these changed."""
    def prompt(b: dict[str, Any], indent: int | None = None) -> int:
        r = http.post(path, content=json.dumps(b, indent=indent),
                      headers={"content-type": "application/json", **ANTHROPIC_HEADERS})
        assert r.status_code == 200, r.text
        return int(usage_of(r.json()["usage"]))

    base = prompt(body)
    assert base == _prompt_estimate(body, fields)
    cap = "max_output_tokens" if path == "/v1/responses" else "max_tokens"
    assert prompt(body, indent=8) == base
    assert prompt({**body, cap: 12345, "metadata": {"user_id": "x" * 500}}) == base
    longer = json.loads(json.dumps(body))
    if "messages" in longer:
        longer["messages"][0]["content"] += " and more" * 100
    else:
        longer["input"] += " and more" * 100
    assert prompt(longer) == _prompt_estimate(longer, fields) >= base + 200


def test_time_scale_divides_latency_and_header_durations() -> None:
    prof = profile(rpm=60, window="60s")
    # 20 ms ttft + 5..40 tokens at 400/s: 32-120 ms model; K = 0.1 makes it 0.3-1.2 s.
    with serving(prof, time_scale=0.1) as srv, httpx2.Client(base_url=srv.url) as http:
        t0 = time.monotonic()
        r = http.post("/v1/chat/completions", json=OK_CHAT)
        elapsed = time.monotonic() - t0
        usage = r.json()["usage"]
        assert elapsed >= (0.02 + usage["completion_tokens"] / 400) / 0.1 * 0.95
        # A 60 s window is 600 s of wall time at K = 0.1: "9m59.x s" or "10m0s".
        reset = r.headers["x-ratelimit-reset-requests"]
        assert reset.startswith(("9m5", "10m0")), reset


def _sse_events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e.strip()]


def test_stream_groups_tokens_into_few_events() -> None:
    prof = profile(output_tokens=400)  # 400 tokens at 400/s = 1 s model
    with serving(prof, time_scale=4.0, stream_interval_s=0.05) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as http:
        body = {**OK_CHAT, "stream": True, "max_tokens": 400}
        raw = http.post("/v1/chat/completions", json=body).content
    events = _sse_events(raw)
    content = [json.loads(e[6:]) for e in events if e.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in content
                   if c["choices"])
    assert len(text.split()) <= 400 and text.startswith("The mock model")
    # 0.25 s of wall generation in 50 ms groups: ~5 content events, not 400.
    assert 3 <= len(content) <= 12
    assert events[-1] == b"data: [DONE]"


def test_client_disconnect_mid_stream_frees_and_settles() -> None:
    # Long generation: 400 tokens at 400/s = 1 s model = 4 s wall at K = 0.25 (the client
    # hangs up after 0.2 s: a loaded machine must not let the answer end first).
    prof = profile(output_tokens=400)
    with serving(prof, time_scale=0.25, stream_interval_s=0.05) as srv:
        body = json.dumps({**OK_MSG, "max_tokens": 400, "stream": True}).encode()
        host, port = srv.url[len("http://"):].split(":")
        with socket.create_connection((host, int(port)), timeout=60) as s:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: "
                      b"application/json\r\nanthropic-version: 2023-06-01\r\n"
                      b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            got = s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200")
            time.sleep(0.2)  # mid-stream
        # Polled, generous for a loaded machine: a stream the mock failed to free would
        # still end by itself after 4 s, so the disconnect count below is what decides.
        deadline = time.monotonic() + 30
        while True:
            m = metrics(srv.url)
            if m["capacity_mock_in_flight_streams"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert m["capacity_mock_in_flight_streams"] == 0
        assert m["capacity_mock_in_flight_requests"] == 0
        assert m["capacity_mock_client_disconnects_total"] == 1
        # otpm was charged 400 at admission and settled down to what was sent.
        otpm = metric_sum(m, "capacity_mock_charged_units_total", slot="ant.otpm")
        assert 0 <= otpm < 400
        completion = metric_sum(m, "capacity_mock_tokens_total", kind="completion")
        assert completion == otpm
        # Still serving.
        assert httpx2.post(srv.url + "/v1/messages", json=OK_MSG,
                           headers=ANTHROPIC_HEADERS).status_code == 200


def test_metrics_format_and_reset(srv: Any, http: Any) -> None:
    r = http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE capacity_mock_requests_total counter" in r.text
    http.post("/v1/chat/completions", json=OK_CHAT, headers={"x-stainless-retry-count": "9"})
    assert metric_sum(metrics(srv.url), "capacity_mock_retry_count_seen_total",
                      retry="6+") >= 1
    assert http.post("/admin/reset?metrics=true").json() == {
        "reset": True, "metrics_reset": True, "time_scale": 100.0}
    m = metrics(srv.url)
    assert metric_sum(m, "capacity_mock_requests_total") == 0
    assert math.isclose(m["capacity_mock_retries_seen_total"], 0)
    # The error hunt: ?metrics=maybe (or =ture) reset the quota and silently kept the
    # counters ("metrics_reset": false); it is a 400 naming the parameter, nothing reset.
    http.post("/v1/chat/completions", json=OK_CHAT)
    r = http.post("/admin/reset?metrics=maybe")
    assert r.status_code == 400 and r.json()["error"]["param"] == "metrics", r.text
    assert r.json()["error"]["message"] == ("metrics: expected true or false (1/0, yes/no), "
                                            "got 'maybe'")
    assert metric_sum(metrics(srv.url), "capacity_mock_requests_total") == 1
    assert http.post("/admin/reset?metrics=no").json()["metrics_reset"] is False


@pytest.mark.parametrize(("body", "param", "said"), [
    # A NaN or a cut-off body was "bucket_deficit: unexpected character ...": a field
    # blamed for the body's syntax.
    (b'{"clock_offset_s": NaN}', "body", "body: not valid JSON ("),
    (b'{"bucket_deficit": {', "body", "body: not valid JSON ("),
    (b'[1]', "body", 'body: expected {"bucket_deficit"'),
    (b'{"bucket_deficit": 5}', "bucket_deficit", "bucket_deficit: expected an object"),
    # A falsy wrong type was taken as no deficit ('or {}'): a full bucket, and a 200.
    (b'{"bucket_deficit": 0}', "bucket_deficit", "bucket_deficit: expected an object"),
    (b'{"bucket_deficit": false}', "bucket_deficit",
     "bucket_deficit: expected an object of slot keys to units, got false"),
    (b'{"bucket_deficit": []}', "bucket_deficit", "bucket_deficit: expected an object"),
    (b'{"bucket_deficit": ""}', "bucket_deficit", "bucket_deficit: expected an object"),
    (b'{"bucket_deficit": null}', "bucket_deficit",
     "bucket_deficit: expected an object of slot keys to units, got null"),
    (b'{"bucket_deficit": {"nope": 1}}', "bucket_deficit",
     "bucket_deficit: 'nope' is not a token-bucket slot"),
    (b'{"clock_offset_s": -1}', "clock_offset_s",
     "clock_offset_s: expected a number of seconds"),
    # 1e308 s was a 200: t + offset lost every digit of t, and a 1 s window's remaining
    # count went 24, 23, 24 within one window.
    (b'{"clock_offset_s": 1e308}', "clock_offset_s",
     "clock_offset_s: at most 10,000,000,000 seconds (a phase"),
])
def test_a_bad_reset_body_names_what_is_wrong(http: Any, body: bytes, param: str,
                                              said: str) -> None:
    r = http.post("/admin/reset", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["message"].startswith(said), err


@pytest.mark.parametrize(("start", "stop"), [(0, 40), (5, 40), (65_530, 65_560),
                                           (131_060, 131_080)])
def test_generated_prose_puts_a_space_after_each_sentence(start: int, stop: int) -> None:
    """Every sentence after the first was glued on ("per token.The mock"), also where the
    65,536-token text repeats; a stream's deltas still add up to the whole answer."""
    text = text_of(start, stop)
    assert ".The" not in text and text.count(". The") >= 1, text
    assert text == text_of(start, start + 3) + text_of(start + 3, stop)
    assert text_of(0, 3) == "The mock model"


def test_provider_option_picks_header_dialect() -> None:
    with serving(provider="anthropic") as srv, httpx2.Client(base_url=srv.url) as http:
        r = http.post("/v1/chat/completions", json=OK_CHAT)
        assert r.status_code == 200
        assert r.headers["anthropic-ratelimit-requests-limit"] == "100000"
        assert "x-ratelimit-limit-requests" not in r.headers
    with serving(provider="azure") as srv, httpx2.Client(base_url=srv.url) as http:
        r = http.post("/v1/chat/completions", json=OK_CHAT)
        assert set(k for k in r.headers if k.startswith("x-ratelimit")) == {
            "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"}


def test_request_that_can_never_fit_is_not_retried() -> None:
    import openai

    # 10,000 tokens per minute; a request reserving max_tokens 20,000 can never fit.
    with serving(profile(tpm=10_000, charge_max_tokens=True)) as srv, \
            openai.OpenAI(base_url=srv.openai_base_url, api_key="mock") as client:
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model=GPT, messages=OK_CHAT["messages"],
                                           max_tokens=20_000)
        h = e.value.response.headers
        assert h["x-should-retry"] == "false" and "retry-after" not in h
        assert "Request too large" in e.value.message
        m = metrics(srv.url)
    assert metric_sum(m, "capacity_mock_requests_total", status="429") == 1  # no retries
    assert metric_sum(m, "capacity_mock_rate_limited_total", slot="oai.tpm") == 1


def test_profile_fan_out_sets_parallel_calls() -> None:
    from capacity import profile_from_dict

    prof = profile_from_dict({
        "models": {GPT: {"ttft": "10ms", "tokens_per_second": 1000}},
        "quotas": {"q": {"models": [GPT], "rpm": 100_000}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [
            {"parallel": {"count": 4, "call": {"model": GPT, "input_tokens": 100,
                                               "output_tokens": 10}}}]}}}})
    with serving(prof) as srv, httpx2.Client(base_url=srv.url) as http:
        r = http.post("/v1/chat/completions", json={**OK_CHAT, "tools": [WEATHER_TOOL]})
        assert len(r.json()["choices"][0]["message"]["tool_calls"]) == 4
        r = http.post("/v1/chat/completions", json={**OK_CHAT, "tools": [WEATHER_TOOL],
                                                    "parallel_tool_calls": False})
        assert len(r.json()["choices"][0]["message"]["tool_calls"]) == 1


def test_library_entry_points_take_a_path_and_keywords(root: Any) -> None:
    import asyncio

    from capacity.serve import MockServer, ServerThread

    with ServerThread(root / "profiles" / "tool-agent.yaml", time_scale=1000, seed=3) as s:
        assert s.options.seed == 3 and s.port > 0
        ids = {m["id"] for m in httpx2.get(s.url + "/v1/models").json()["data"]}
        assert ids == {"gpt-4.1", "gpt-4.1-mini"}
    with pytest.raises(httpx2.ConnectError):  # stopped: the port is closed
        httpx2.get(s.url + "/health")

    async def main() -> None:
        async with MockServer(profile(), time_scale=1000) as srv:
            assert srv.url.startswith("http://127.0.0.1:")
            await asyncio.sleep(0)

    asyncio.run(main())


def test_a_request_that_can_never_fit_names_the_window_allowance() -> None:
    # 6,000 TPM over 10 s windows admits 1,000 tokens a window. OpenAI's text said "Limit
    # 6000, Requested 4117" (it looked like it fits); Azure's "Please retry after 0
    # seconds" beside x-should-retry: false.
    prof = profile(tpm=6_000, window="10s", charge_max_tokens=True)
    body = {**OK_CHAT, "max_tokens": 4096}
    with serving(prof) as srv, httpx2.Client(base_url=srv.url) as http:
        r = http.post("/v1/chat/completions", json=body)
        assert r.status_code == 429 and r.headers["x-should-retry"] == "false"
        msg = r.json()["error"]["message"]
        assert msg.startswith("Request too large") and (
            "(4,1" in msg and "tokens) can never fit: the quota admits at most 1,000 tokens "
            "per 100ms window, so no wait helps." in msg), msg  # 10 s at time scale 100
        r = http.post("/openai/deployments/oai/chat/completions?api-version=2024-10-21",
                      json={"messages": OK_CHAT["messages"], "max_tokens": 4096})
        msg = r.json()["error"]["message"]
        assert r.status_code == 429 and "retry after" not in msg, msg
        assert "can never fit: the quota admits at most 1,000 tokens" in msg and (
            "Do not retry it." in msg), msg


def test_rate_limit_messages_print_large_counts_in_full() -> None:
    # `:g` printed a 1,234,567 TPM limit as "Limit 1.23457e+06" (another number) and a
    # 2,000,512-token request as "Requested 2.00051e+06"; OpenAI prints "Limit 1234567".
    prof = profile(tpm=1_234_567, window="1s", charge_max_tokens=True)
    hints = {"x-capacity-input-tokens": "2000000", "x-capacity-output-tokens": "5"}
    body = {**OK_CHAT, "max_tokens": 512}
    with serving(prof) as srv, httpx2.Client(base_url=srv.url) as http:
        r = http.post("/v1/chat/completions", json=body, headers=hints)
        msg = r.json()["error"]["message"]
        assert r.status_code == 429 and "Limit 1234567, Requested 2000512." in msg, msg
        assert "(2,000,512 tokens) can never fit: the quota admits at most 20,576 tokens" \
            in msg and "e+" not in msg, msg
        r = http.post("/v1/messages", json={**body, "model": GPT}, headers=hints)
        msg = r.json()["error"]["message"]
        # Anthropic groups digits ("of 1,000,000 input tokens per minute", as quoted in
        # public issue threads, e.g. stackblitz/bolt.new#8588); OpenAI does not.
        assert r.status_code == 429 and "organization of 1,234,567 tokens per min" in msg, msg
    assert _units(20_576.25) == "20576.25" and _units(1_234_567.0, True) == "1,234,567"


@pytest.mark.parametrize("reserve", [False, True])
def test_n_choices_are_charged_every_output(reserve: bool) -> None:
    """A request for n choices is charged its prompt once and every choice's output: n ×
    max_tokens where the quota reserves max_tokens (the mock's assumption: each choice
    may run to the cap), the sum of the outputs otherwise; the metrics and the request log
    report the sum as its completion tokens."""
    from capacity.fit.jsonl import RequestLogWriter
    from capacity.limits import ManualClock

    prof = profile(tpm=10_000, window="60s", charge_max_tokens=reserve)
    out = {"x-capacity-output-tokens": "30"}
    body = {**OK_CHAT, "max_tokens": 100, "n": 3}
    with tempfile.TemporaryDirectory() as d:
        log_path = Path(d) / "log.jsonl"
        with RequestLogWriter(log_path) as log, serving(
                prof, clock=ManualClock(0.0), time_scale=10_000, log=log) as srv, \
                httpx2.Client(base_url=srv.url, timeout=30) as h:
            r = h.post("/v1/chat/completions", json=body, headers=out)
            assert r.status_code == 200, r.text
            u = r.json()["usage"]
            assert u["completion_tokens"] == 90 and len(r.json()["choices"]) == 3
            # At admission: n × max_tokens reserved, or the three outputs.
            held = 300 if reserve else 90
            assert int(r.headers["x-ratelimit-remaining-tokens"]) == \
                10_000 - u["prompt_tokens"] - held
            m = metrics(srv.url)
            # Settled to what was sent (a reservation stays, as for one choice).
            assert metric_sum(m, "capacity_mock_charged_units_total", slot="oai.tpm") == \
                u["prompt_tokens"] + held
            assert metric_sum(m, "capacity_mock_tokens_total", kind="completion") == 90
            # n = 40 × max_tokens 300 can never fit a 10,000-token quota that reserves
            # max_tokens; one choice is admitted.
            big = {**OK_CHAT, "max_tokens": 300}
            if reserve:
                r = h.post("/v1/chat/completions", json={**big, "n": 40}, headers=out)
                assert r.status_code == 429 and r.headers["x-should-retry"] == "false"
                # The message says why a 300-token cap is 12,000: one choice would fit.
                assert "reserving max_tokens 300 for each of its n=40 choices; one choice " \
                    "would fit" in r.json()["error"]["message"], r.text
            assert h.post("/v1/chat/completions", json=big, headers=out).status_code == 200
        first = json.loads(log_path.read_text().splitlines()[0])
    # The log's cap is the three choices' as their output is (a fit read one choice's
    # cap, 100, under 90 + ... tokens of output: "more output than max_tokens").
    assert (first["output_tokens"], first["max_tokens"]) == (90, 300)


def test_never_fitting_n_choices_say_so_only_where_one_choice_would_fit() -> None:
    """The n clause of a can-never-fit 429 is true where it is printed: the outputs of all
    choices counted at admission (a TPM quota that does not reserve max_tokens), and no
    clause where one choice would not fit either or the slot charges no output (it had
    said "counting the output of each of its n=3 choices" of an ITPM quota)."""
    itpm = {"in": {"models": [GPT], "itpm": 2_000,
                   "enforcement": {"type": "fixed_window", "window": "60s"}}}
    with serving(profile(tpm=10_000, extra_quotas=itpm)) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as h:
        def message(n: int, input_tokens: int, output_tokens: int) -> str:
            hints = {"x-capacity-input-tokens": str(input_tokens),
                     "x-capacity-output-tokens": str(output_tokens)}
            r = h.post("/v1/chat/completions", json={**OK_CHAT, "n": n}, headers=hints)
            assert r.status_code == 429 and r.headers["x-should-retry"] == "false", r.text
            return str(r.json()["error"]["message"])

        msg = message(40, 1_000, 300)  # 1,000 + 40 × 300 on oai.tpm; one choice fits
        assert "(13,000 tokens, counting the output of all n=40 choices; one choice would " \
            "fit) can never fit" in msg, msg
        msg = message(3, 5_000, 10)  # ITPM: no output charged
        assert "(Mock quota in.itpm" in msg and "choices" not in msg, msg
        itpm["in"]["itpm"] = 100_000
    with serving(profile(tpm=10_000, extra_quotas=itpm)) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as h:
        msg = message(2, 11_000, 10)  # the prompt alone is past the quota
        assert "(Mock quota oai.tpm" in msg and "choices" not in msg, msg


def test_a_request_without_max_tokens_is_cut_and_charged_by_one_cap() -> None:
    """Without max_tokens the output keeps the profile call's law (cut at its 50), but
    finish_reason says "length" only at the cap the provider applies — the model's default
    512, which the quota reserves (it had said "length" at 50 while reserving 512)."""
    from capacity import profile_from_dict
    from capacity.limits import ManualClock

    prof = profile_from_dict({
        "name": "cap", "models": {GPT: {"ttft": "10ms", "tokens_per_second": 1000,
                                        "max_tokens": 512}},
        "quotas": {"oai": {"models": [GPT], "tpm": 100_000, "charge_max_tokens": True,
                           "enforcement": {"type": "fixed_window", "window": "60s"}}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [{"call": {
            "model": GPT, "input_tokens": 100, "output_tokens": {"uniform": [40, 300]},
            "max_tokens": 50}}]}}}})
    with serving(prof, clock=ManualClock(0.0)) as srv, \
            httpx2.Client(base_url=srv.url, timeout=30) as h:
        outs = []
        for _ in range(8):  # U[40, 300] is past 50 with probability 0.96 each time
            r = h.post("/v1/chat/completions", json={"model": GPT, "messages": [
                {"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            j = r.json()
            outs.append(j["usage"]["completion_tokens"])
            assert j["choices"][0]["finish_reason"] == "stop", j
            if len(outs) == 1:  # the first in its window: its prompt and 512 reserved
                assert int(r.headers["x-ratelimit-remaining-tokens"]) == \
                    100_000 - j["usage"]["prompt_tokens"] - 512
        assert max(outs) == 50 and min(outs) >= 40, outs
        r = h.post("/v1/chat/completions", json={"model": GPT, "max_tokens": 40, "messages": [
            {"role": "user", "content": "hi"}]})
        assert (r.json()["usage"]["completion_tokens"],
                r.json()["choices"][0]["finish_reason"]) == (40, "length"), r.text


def test_charged_units_metric_is_exact_past_a_million() -> None:
    # `{units:g}` kept 6 significant digits: 1,234,572 tokens read back as 1,234,570.
    hints = {"x-capacity-input-tokens": "1234567", "x-capacity-output-tokens": "5"}
    with serving(profile()) as srv, httpx2.Client(base_url=srv.url) as http:
        assert http.post("/v1/chat/completions", json=OK_CHAT, headers=hints).status_code == 200
        assert metric_sum(metrics(srv.url), "capacity_mock_charged_units_total",
                          slot="oai.tpm") == 1_234_572


def test_openai_rate_limit_message_is_openais_own_format() -> None:
    # OpenAI says "Limit 10000, Used 9348, Requested 5086" (llm-api-protocols.md §2); the
    # mock said "Remaining", and put its quota key between "(TPM)" and ":", so a client's
    # pattern for the real text (or a person reading it) found neither.
    hints = {"x-capacity-input-tokens": "600", "x-capacity-output-tokens": "5"}
    with serving(profile(tpm=1_000)) as srv, httpx2.Client(base_url=srv.url) as http:
        assert http.post("/v1/chat/completions", json=OK_CHAT, headers=hints).status_code == 200
        r = http.post("/v1/chat/completions", json=OK_CHAT, headers=hints)
        msg = r.json()["error"]["message"]
        m = re.fullmatch(r"Rate limit reached for (\S+) in organization org-mock on tokens "
                         r"per min \(TPM\): Limit (\d+), Used (\d+), Requested (\d+)\. Please "
                         r"try again in \d+(\.\d+)?m?s\. Visit https://platform\.openai\.com/"
                         r"account/rate-limits to learn more\. \(Mock quota oai\.tpm\.\)", msg)
        assert r.status_code == 429 and m is not None, msg
        assert m[1] == GPT and (m[2], m[3], m[4]) == ("1000", "605", "605"), msg
    # Over 10 s windows "Limit 600, Used 100" read as room left: the tail says the window's
    # allowance (600 RPM as at most 100 per 10 s; 100 ms at time scale 100).
    from capacity.limits import ManualClock

    with serving(profile(rpm=600, window="10s"), clock=ManualClock()) as srv, \
            httpx2.Client(base_url=srv.url) as http:
        codes = [http.post("/v1/chat/completions", json=OK_CHAT) for _ in range(101)]
        msg = codes[-1].json()["error"]["message"]
        assert codes[-1].status_code == 429 and "Limit 600, Used 100, Requested 1." in msg and \
            msg.endswith("(Mock quota oai.rpm: at most 100 requests per 100ms window.)"), msg
