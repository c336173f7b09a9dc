"""A real LangGraph agent (ChatOpenAI on Chat Completions and on the Responses API,
ChatAnthropic; + ToolNode) against the mock.

The founding story's regression: a mock that always answers with the same tool call
makes the agent loop until the recursion limit. With the history rule every turn ends,
whether it uses 0, 1 or several tool calls, streaming or not. A low recursion limit makes
a loop fail fast (GraphRecursionError) instead of running thousands of steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import BaseModel, Field

from tests.serve_support import CLAUDE, GPT, metric_sum, metrics, serving

CALLS: list[tuple[str, dict[str, Any]]] = []


class Address(BaseModel):
    street: str
    city: str = Field(description="city name")
    zip_code: str | None = None


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    CALLS.append(("get_weather", {"city": city, "unit": unit}))
    return f"21 degrees {unit} in {city}"


@tool
def ship(address: Address, items: list[str], express: bool = False) -> str:
    """Ship items to an address (a nested pydantic schema: $ref / $defs)."""
    CALLS.append(("ship", {"address": address, "items": items}))
    return f"shipped {len(items)} items to {address.city}"


TOOLS = [get_weather, ship]


def agent(model: Any) -> Any:
    """The canonical ReAct loop: model -> tools while the model calls tools -> end."""
    bound = model.bind_tools(TOOLS)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", call_model)
    g.add_node("tools", ToolNode(TOOLS))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile()


def _openai(srv: Any, streaming: bool) -> ChatOpenAI:
    return ChatOpenAI(model=GPT, base_url=srv.openai_base_url, api_key="mock",
                      max_retries=2, timeout=30, streaming=streaming, stream_usage=True)


def _responses(srv: Any, streaming: bool) -> ChatOpenAI:
    return ChatOpenAI(model=GPT, base_url=srv.openai_base_url, api_key="mock",
                      max_retries=2, timeout=30, streaming=streaming,
                      use_responses_api=True)


def _anthropic(srv: Any, streaming: bool) -> ChatAnthropic:
    return ChatAnthropic(model=CLAUDE, base_url=srv.anthropic_base_url, api_key="mock",
                         max_retries=2, timeout=30, streaming=streaming, max_tokens=256)


# Models whose SDK clients this module closes when it ends (see _close).
_OPEN: list[Any] = []


def _close(model: Any) -> None:
    """Hand the model's SDK clients to the module's teardown. langchain-openai and
    langchain-anthropic cache one HTTP client per base URL (functools.lru_cache) and
    give it to every model built for that URL: closed here, it would be handed to the
    next model whose mock got the same port from the OS ("Cannot send a request, as the
    client has been closed", a CI failure); the caches themselves hold other modules'
    clients too, so they are not cleared."""
    _OPEN.append(model)


@pytest.fixture(autouse=True, scope="module")
def _close_clients_at_the_end() -> Iterator[None]:
    # LangChain leaves the SDK's HTTP clients open (a ResourceWarning under -W error).
    yield
    for model in _OPEN:
        for attr in ("root_client", "_client"):
            client = getattr(model, attr, None)
            if client is not None and hasattr(client, "close"):
                client.close()
        for attr in ("root_async_client", "_async_client"):
            client = getattr(model, attr, None)
            if client is not None and hasattr(client, "close"):
                asyncio.run(client.close())
    _OPEN.clear()


def _run_turn(make: Callable[[Any, bool], Any], srv: Any, streaming: bool) -> list[Any]:
    model = make(srv, streaming)
    try:
        out = agent(model).invoke(
            {"messages": [HumanMessage("Weather in Paris, and ship a book to my address?")]},
            {"recursion_limit": 12})
    finally:
        _close(model)
    return out["messages"]


@pytest.mark.parametrize("make", [_openai, _responses, _anthropic],
                         ids=["ChatOpenAI", "ChatOpenAI-responses", "ChatAnthropic"])
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize(("options", "n_calls"), [
    ({"tool_probability": 0.0}, 0),
    ({}, 1),
    ({"tool_calls": 3}, 3),
], ids=["0-tools", "1-tool", "3-tools"])
def test_agent_turn_terminates(make: Callable[[Any, bool], Any], streaming: bool,
                               options: dict[str, Any], n_calls: int) -> None:
    CALLS.clear()
    with serving(**options) as srv:
        messages = _run_turn(make, srv, streaming)
        m = metrics(srv.url)
    ai = [x for x in messages if isinstance(x, AIMessage)]
    tools_run = [x for x in messages if isinstance(x, ToolMessage)]
    # Turn = (optional) one round of tool calls, then a final text answer.
    assert len(ai) == (2 if n_calls else 1)
    assert len(tools_run) == n_calls == len(CALLS)
    assert not ai[-1].tool_calls and ai[-1].content
    if n_calls:
        assert len(ai[0].tool_calls) == n_calls and not ai[0].invalid_tool_calls
        assert len({c["id"] for c in ai[0].tool_calls}) == n_calls
        assert all(t.status == "success" for t in tools_run)  # arguments passed validation
    api = {_openai: "chat", _responses: "responses", _anthropic: "messages"}[make]
    assert metric_sum(m, "capacity_mock_requests_total", status="200", api=api) == len(ai)


def test_many_turns_mixed_tool_use_all_terminate() -> None:
    # Some turns use no tool, some one: every one ends, the call count matches.
    CALLS.clear()
    with serving(tool_probability=0.5, seed=11) as srv:
        model = _openai(srv, False)
        try:
            graph = agent(model)
            lengths = []
            for i in range(12):
                out = graph.invoke({"messages": [HumanMessage(f"question {i}")]},
                                   {"recursion_limit": 12})
                lengths.append(len(out["messages"]))
        finally:
            _close(model)
    assert set(lengths) == {2, 4}  # human + answer, or human + call + result + answer


@pytest.mark.parametrize("make", [_openai, _anthropic], ids=["ChatOpenAI", "ChatAnthropic"])
def test_a_second_model_on_the_same_url(make: Callable[[Any, bool], Any]) -> None:
    """Two agents, one after the other, against one mock (the same base URL, as when the
    OS gives a later test's server a port an earlier one used): closing the first
    model's clients must not hand the second a closed client (langchain-anthropic caches
    one per URL; this failed in CI as 'Cannot send a request, as the client has been
    closed')."""
    with serving() as srv:
        first = _run_turn(make, srv, False)
        second = _run_turn(make, srv, False)
    for messages in (first, second):
        ai = [x for x in messages if isinstance(x, AIMessage)]
        assert ai and not ai[-1].tool_calls and ai[-1].content


def test_streamed_chat_anthropic_reports_input_tokens() -> None:
    """langchain-anthropic reads a stream's usage from message_delta alone: without the
    input counts there (as the API sends them) a streamed ChatAnthropic — LangGraph's
    stream_mode="messages" — reported input_tokens 0."""
    with serving(tool_probability=0.0) as srv:
        model = _anthropic(srv, True)
        try:
            chunks = list(model.stream("What is the weather in Boston?"))
            whole = model.invoke("What is the weather in Boston?")
        finally:
            _close(model)
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    streamed_in = sum(u["input_tokens"] for u in usage)
    assert whole.usage_metadata is not None
    assert streamed_in == whole.usage_metadata["input_tokens"] > 0
