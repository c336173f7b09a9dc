"""A real instrumented LangGraph agent against `capacity serve`: the source of GenAI spans.

The agent (LangGraph ``StateGraph``, ``langchain-openai`` ``ChatOpenAI``, one tool) runs
closed-loop sessions against :class:`capacity.serve.ServerThread` serving
``tests/data/agent-serve.yaml``; the official ``opentelemetry-instrumentation-openai-v2``
instruments the OpenAI SDK underneath, a ``TracerProvider`` with a ``BatchSpanProcessor``
sends the spans to the official OTLP JSON file exporter
(``opentelemetry-exporter-otlp-json-file``), and each turn is a root span carrying
``gen_ai.conversation.id`` (the session). Nothing here fakes a span or a response.

A turn: ``plan`` (planner with the ``lookup`` tool; a tool call loops back through the
tool node) -> ``write`` x k in parallel (``Send``; k drawn by the agent from {2, 3, 4})
-> ``judge``. Regenerate the shipped trace with::

    python -m tests.fit_agent tests/data/agent-trace.otlp.jsonl
"""

from __future__ import annotations

import asyncio
import operator
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Send
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from capacity import load_profile
from capacity.serve import ServeOptions, ServerThread

SERVE_PROFILE = Path(__file__).parent / "data" / "agent-serve.yaml"
TOOL_PROBABILITY = 0.6
FANOUT = (2, 3, 4)
MAX_TOKENS = {"mock-planner": 512, "mock-writer": 1024, "mock-judge": 64}


@tool
def lookup(topic: str) -> str:
    """Look up background notes on a topic."""
    return f"Notes on {topic}: " + "background " * 20


class State(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]
    sections: int
    drafts: Annotated[list[str], operator.add]
    verdict: str


class Section(TypedDict):
    topic: str
    index: int


@dataclass
class AgentRun:
    """What the agent itself saw (to compare with what is fitted from the spans)."""

    fanouts: list[int] = field(default_factory=list)
    planner_calls: list[int] = field(default_factory=list)
    usage: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    turns: int = 0


def build_agent(base_url: str, run: AgentRun,
                http: list[openai.DefaultAsyncHttpxClient]) -> Any:
    """The compiled LangGraph agent, its models pointed at ``base_url``; the HTTP clients
    it opens are appended to ``http`` (the caller closes them in its event loop)."""
    def llm(model: str) -> ChatOpenAI:
        # Its own HTTP client, not langchain's per-URL cached one: that one outlived this
        # event loop with its connections open, and a later test's model on the same URL
        # (a port the OS handed out again) or the cache's eviction met them ("unclosed
        # transport", a ResourceWarning that -W error turns into a failure elsewhere).
        client = openai.DefaultAsyncHttpxClient(timeout=30)
        http.append(client)
        return ChatOpenAI(model=model, base_url=base_url, api_key="mock",  # type: ignore[arg-type]
                          max_tokens=MAX_TOKENS[model], max_retries=2, timeout=30,  # type: ignore[call-arg]
                          http_async_client=client)

    planner = llm("mock-planner").bind_tools([lookup])
    writer, judge = llm("mock-writer"), llm("mock-judge")

    def seen(model: str, msg: Any) -> None:
        u = msg.usage_metadata or {}
        run.usage.setdefault(model, []).append((u.get("input_tokens", 0),
                                                u.get("output_tokens", 0)))

    async def plan(state: State) -> dict[str, Any]:
        msg = await planner.ainvoke(state["messages"])
        seen("mock-planner", msg)
        return {"messages": [msg]}

    def route(state: State) -> Any:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return "tools"
        return [Send("write", Section(topic=str(state["messages"][0].content), index=i))
                for i in range(state["sections"])]

    async def write(section: Section) -> dict[str, Any]:
        msg = await writer.ainvoke([HumanMessage(
            f"Write section {section['index'] + 1} of a short report on: {section['topic']}")])
        seen("mock-writer", msg)
        return {"drafts": [str(msg.content)]}

    async def review(state: State) -> dict[str, Any]:
        msg = await judge.ainvoke([HumanMessage(
            "Is this report complete? Answer yes or no.\n\n" + "\n\n".join(state["drafts"]))])
        seen("mock-judge", msg)
        return {"verdict": str(msg.content)}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("tools", ToolNode([lookup]))
    g.add_node("write", write)
    g.add_node("judge", review)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route, ["tools", "write"])
    g.add_edge("tools", "plan")
    g.add_edge("write", "judge")
    g.add_edge("judge", END)
    return g.compile()


async def _session(agent: Any, tracer: Any, sid: str, turns: int, rng: random.Random,
                   think_s: tuple[float, float], run: AgentRun) -> None:
    for j in range(turns):
        k = rng.choice(FANOUT)
        with tracer.start_as_current_span(
                "turn", attributes={"gen_ai.conversation.id": sid, "turn.index": j}):
            out = await agent.ainvoke({"messages": [HumanMessage(f"Research topic {sid}-{j}")],
                                       "sections": k, "drafts": [], "verdict": ""})
        run.fanouts.append(k)
        run.planner_calls.append(sum(isinstance(m, AIMessage) for m in out["messages"]))
        run.turns += 1
        await asyncio.sleep(rng.uniform(*think_s))


def run_agent(out: Path, *, sessions: int = 4, turns: int = 8, seed: int = 1,
              time_scale: float = 50.0, think_s: tuple[float, float] = (0.02, 0.06)
              ) -> AgentRun:
    """Serve the profile, run ``sessions`` x ``turns`` agent turns, write OTLP JSON to ``out``.

    The server is always stopped and the instrumentation removed, whatever happens.
    """
    out.unlink(missing_ok=True)
    provider = TracerProvider()
    exporter = FileSpanExporter(str(out))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    run = AgentRun()
    try:
        opts = ServeOptions(time_scale=time_scale, seed=seed,
                            tool_probability=TOOL_PROBABILITY)
        with ServerThread(load_profile(SERVE_PROFILE), opts) as srv:
            http: list[openai.DefaultAsyncHttpxClient] = []
            agent = build_agent(srv.openai_base_url, run, http)
            tracer = provider.get_tracer("capacity.tests.fit_agent")
            rngs = [random.Random(seed * 1000 + s) for s in range(sessions)]

            async def main() -> None:
                try:
                    await asyncio.gather(*(_session(agent, tracer, f"session-{s}", turns,
                                                    rngs[s], think_s, run)
                                           for s in range(sessions)))
                finally:
                    for client in http:  # in this loop, whose connections they hold
                        await client.aclose()

            asyncio.run(main())
    finally:
        instrumentor.uninstrument()
        provider.force_flush()
        provider.shutdown()
    return run


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).parent / "data" / "agent-trace.otlp.jsonl")
    r = run_agent(target)
    print(f"{r.turns} turns; fan-outs {dict(Counter(r.fanouts))}; planner calls "
          f"{dict(Counter(r.planner_calls))} -> {target}")
