"""A small LangGraph agent served over HTTP — the team's own agent service, for
``capacity loadtest --agent-url``.

The agent is a LangGraph ``StateGraph``: a ``ChatOpenAI`` model bound to one tool, a
``ToolNode`` and the prebuilt ``tools_condition`` loop (call the model; if it asked for
tools, run them and call it again; else answer). Its LLM client points at any
OpenAI-compatible base URL — ``capacity serve`` in the tests and the README — with the
SDK's default retries (2, honouring ``retry-after-ms``).

HTTP: ``POST /chat`` with ``{"session_id": "...", "message": "..."}`` answers
``{"answer": "...", "tool_calls": n}`` when the turn has ended; an LLM error that survived
the SDK's retries answers 502 ``{"error": ...}``. Run it::

    python examples/agent_service/agent.py --llm-base-url http://127.0.0.1:8000/v1 --port 8100

and load-test it::

    capacity loadtest examples/agent_service/profile.yaml --target http://127.0.0.1:8000 \
        --agent-url http://127.0.0.1:8100/chat --sessions 2:10:2
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

from aiohttp import web
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def lookup(query: str) -> str:
    """Look a fact up in the team's knowledge base."""
    return f"The knowledge base says: {query} is fine."


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_agent(llm_base_url: str, model: str = "mock-gpt") -> tuple[Any, ChatOpenAI]:
    """The compiled LangGraph agent whose model is served at ``llm_base_url``, and its chat
    model (close its clients when done: ``await chat.root_async_client.close()``)."""
    chat = ChatOpenAI(model=model, base_url=llm_base_url, api_key="mock",  # type: ignore[arg-type]
                      timeout=60, max_retries=2)
    llm = chat.bind_tools([lookup])

    async def call_model(state: State) -> dict[str, list[AnyMessage]]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode([lookup]))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "model")
    return g.compile(), chat


def build_app(llm_base_url: str, model: str = "mock-gpt") -> web.Application:
    agent, chat_model = build_agent(llm_base_url, model)

    async def chat(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            message = str(body["message"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected {\"message\": ...}"}, status=400)
        try:
            out = await agent.ainvoke({"messages": [HumanMessage(message)]},
                                      {"recursion_limit": 12})
        except Exception as e:
            return web.json_response({"error": f"{type(e).__name__}: {e}"[:300]}, status=502)
        msgs = out["messages"]
        calls = sum(len(getattr(m, "tool_calls", None) or []) for m in msgs)
        return web.json_response({"answer": str(msgs[-1].content), "tool_calls": calls})

    async def close_llm(_: web.Application) -> None:
        # The SDK clients hold pooled connections to the LLM endpoint: close them with
        # the service, or their sockets leak (ResourceWarning).
        await chat_model.root_async_client.close()
        chat_model.root_client.close()

    app = web.Application()
    app.router.add_post("/chat", chat)
    app.on_cleanup.append(close_llm)
    return app


class AgentServer:
    """The agent service in a background thread (a real socket; port 0 picks one)."""

    def __init__(self, llm_base_url: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.llm_base_url, self.host, self.port = llm_base_url, host, port
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> AgentServer:
        ready = threading.Event()

        async def main() -> None:
            runner = web.AppRunner(build_app(self.llm_base_url), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            self.url = f"http://{self.host}:{self.port}/chat"
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)


def main(argv: list[str] | None = None,
         run: Callable[..., Awaitable[None] | None] = web.run_app) -> None:
    ap = argparse.ArgumentParser(description="A LangGraph agent served over HTTP.")
    ap.add_argument("--llm-base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--model", default="mock-gpt")
    ap.add_argument("--port", type=int, default=8100)
    a = ap.parse_args(argv)
    run(build_app(a.llm_base_url, a.model), host="127.0.0.1", port=a.port)


if __name__ == "__main__":
    main()
