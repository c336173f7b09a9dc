"""Wire format of the calls a session makes: OpenAI, Azure OpenAI and Anthropic.

Each session keeps a conversation that grows as an agent's does — user message, assistant
tool call, tool result, assistant answer — and every request is sized to the call's drawn
input tokens (at the documented estimate of 4 characters per token, the rule
``capacity serve`` uses when it has no tokenizer), by padding the system prompt or, once
the history alone is larger, dropping its oldest exchanges (whole exchanges, so a tool
result never loses the assistant message that asked for it). Every request offers one
tool, so a protocol-aware endpoint answers with a tool call unless the last message is a
tool result — as it would for a real agent.

Requests also carry hint headers with the profile's figures for the call
(``x-capacity-input-tokens``, ``x-capacity-cached-tokens``, ``x-capacity-output-tokens``);
an endpoint that knows them (``capacity serve``) charges and times the call exactly as the
simulator does; any other endpoint ignores them. A session of a profile with
``populations`` also names its population (``x-capacity-population``), so that the mock
finds the call in that population's turns (:mod:`capacity.serve.behaviour`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CapacityError
from .plan import CallPlan

__all__ = [
    "CHARS_PER_TOKEN",
    "Conversation",
    "Reply",
    "Request",
    "TargetError",
    "build_request",
    "normalise_target",
    "parse_reply",
    "parse_retry_after",
]

Provider = Literal["openai", "azure", "anthropic"]
CHARS_PER_TOKEN = 4
AZURE_API_VERSION = "2024-10-21"
ANTHROPIC_VERSION = "2023-06-01"

_TOOL_NAME = "lookup"
_TOOL_SCHEMA = {"type": "object",
                "properties": {"query": {"type": "string", "description": "what to look up"}},
                "required": ["query"]}
_PLACEHOLDER = "You are an agent."
# Anthropic requires max_tokens; a profile that sets none (call or model) has no cap and
# cannot reserve one (profile checks), so the body carries the SDKs' usual 4,096: it only
# cuts an output drawn past it.
_ANTHROPIC_UNCAPPED_MAX_TOKENS = 4096
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


class TargetError(CapacityError):
    """The target is unreachable or does not answer like an LLM endpoint."""


def filler(chars: int, salt: int = 0) -> str:
    """Plain text of exactly ``chars`` characters (≈ chars / 4 tokens)."""
    if chars <= 0:
        return ""
    words = []
    n = 0
    i = salt
    while n < chars:
        w = _WORDS[i % len(_WORDS)]
        words.append(w)
        n += len(w) + 1
        i += 1
    return " ".join(words)[:chars]


def check_url(url: str, option: str = "--target") -> str:
    """``url`` stripped, if it is an absolute http(s) URL with a host and a valid port and
    no credentials, query or fragment; else :class:`TargetError` naming ``option``."""
    from yarl import URL

    u = url.strip()
    try:
        parsed = URL(u)
        port = parsed.port
    except ValueError as e:
        raise TargetError(f"{option} {url!r}: not a URL ({e})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetError(f"{option} {url!r}: expected an http(s):// URL with a host")
    if port is None or not 0 < port < 65536:
        raise TargetError(f"{option} {url!r}: bad port")
    if parsed.user or parsed.password:
        raise TargetError(f"{option} {url!r}: credentials in the URL are not supported")
    if parsed.query_string or parsed.fragment:
        raise TargetError(f"{option} {url!r}: no query or fragment expected")
    return u


def normalise_target(url: str, provider: Provider) -> str:
    """The endpoint's base URL without a trailing slash or ``/v1`` (one line on error)."""
    u = check_url(url).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", u):
        raise TargetError(f"--target {url!r}: expected an http(s):// URL")
    if u.endswith("/v1"):
        u = u[:-3]
    return u


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request: path (below the base URL), headers, JSON body and its bytes."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    data: bytes


@dataclass(slots=True)
class Reply:
    """What a successful answer said: its tool calls (ids) or text, and the usage."""

    tool_call_ids: list[str]
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(slots=True)
class Conversation:
    """A session's growing history, as provider-neutral exchanges.

    An exchange is a list of messages in neutral form: ``("user", text)``,
    ``("assistant_text", text)``, ``("assistant_tools", [ids])``, ``("tool", id, text)``.
    """

    session: int
    exchanges: list[list[tuple[Any, ...]]] = field(default_factory=list)
    # Tool calls of the last answer still waiting for their results.
    pending: list[str] = field(default_factory=list)
    counter: int = 0

    def next_messages(self) -> list[tuple[Any, ...]]:
        """The messages a new sequential call appends: tool results for the pending tool
        calls (then the endpoint answers in text), else a new user message."""
        self.counter += 1
        if self.pending:
            return [("tool", tid, filler(200, self.counter)) for tid in self.pending]
        return [("user", f"step {self.counter}: " + filler(120, self.counter))]

    def record(self, sent: list[tuple[Any, ...]], reply: Reply) -> None:
        """Append a sequential call's messages and its answer to the history."""
        answer: tuple[Any, ...]
        if reply.tool_call_ids:
            answer = ("assistant_tools", list(reply.tool_call_ids))
        else:
            answer = ("assistant_text", reply.text or "ok")
        if self.pending and self.exchanges:
            self.exchanges[-1].extend([*sent, answer])
        else:
            self.exchanges.append([*sent, answer])
        self.pending = list(reply.tool_call_ids)
        # Keep the history bounded: requests are sized to the profile anyway.
        if len(self.exchanges) > 8:
            del self.exchanges[: len(self.exchanges) - 8]


def _size(m: tuple[Any, ...]) -> int:
    if m[0] == "assistant_tools":
        return 40 * len(m[1])
    return len(m[-1]) if isinstance(m[-1], str) else 0


def _fit(history: list[list[tuple[Any, ...]]], new: list[tuple[Any, ...]],
         budget: int) -> tuple[list[tuple[Any, ...]], int]:
    """Messages to send (oldest exchanges dropped to fit ``budget`` characters) and the
    characters left for the system prompt."""
    new_size = sum(_size(m) for m in new)
    kept: list[list[tuple[Any, ...]]] = []
    used = new_size
    for ex in reversed(history):
        s = sum(_size(m) for m in ex)
        if used + s > budget:
            break
        kept.append(ex)
        used += s
    msgs = [m for ex in reversed(kept) for m in ex]
    return msgs, max(0, budget - used)


def build_request(provider: Provider, call: CallPlan, history: list[list[tuple[Any, ...]]],
                  new: list[tuple[Any, ...]], *, deployment: str | None = None,
                  ident: tuple[str, int] | None = None,
                  population: str | None = None) -> Request:
    """The HTTP request for ``call``: history (trimmed) + ``new`` messages, its JSON body
    exactly ``4 × input_tokens`` bytes long when the history allows (characters over
    four, which a real provider's tokenizer counts roughly; ``capacity serve`` reads the
    ``x-capacity-input-tokens`` hint instead of its own estimate), padded in the system
    prompt."""
    target = call.input_tokens * CHARS_PER_TOKEN
    hist = list(history)
    # Tool results answer the tool calls that end the last exchange: OpenAI and Anthropic
    # refuse a tool result without its call (400), so that message stays whatever the budget.
    anchor = [history[-1][-1]] if new and new[0][0] == "tool" and history else []
    while True:
        kept, _ = _fit(hist, new, target)
        msgs = (kept or anchor) + new
        req = _build(provider, call, "", msgs, deployment, ident, population)
        # The placeholder system prompt is replaced by the padding.
        pad = target - len(req.data) + len(_PLACEHOLDER)
        if pad >= len(_PLACEHOLDER) or not kept:
            break
        hist = hist[1:]  # drop the oldest exchange and try again
    if pad > len(_PLACEHOLDER):
        req = _build(provider, call, filler(pad, call.input_tokens), msgs, deployment, ident,
                     population)
    return req


def _build(provider: Provider, call: CallPlan, system: str, msgs: list[tuple[Any, ...]],
           deployment: str | None, ident: tuple[str, int] | None = None,
           population: str | None = None) -> Request:
    hints = {"x-capacity-input-tokens": str(call.input_tokens),
             "x-capacity-cached-tokens": str(call.cached_tokens),
             "x-capacity-output-tokens": str(call.output_tokens)}
    if population is not None:
        hints["x-capacity-population"] = population
    if ident is not None:
        # Who is calling, for the endpoint's request log (capacity serve --log).
        hints |= {"x-capacity-session": ident[0], "x-capacity-turn": str(ident[1]),
                  "x-capacity-call": call.name}
    if provider == "anthropic":
        return _anthropic(call, system, msgs, hints)
    body: dict[str, Any] = {"model": call.model, "messages": _openai_messages(system, msgs),
                            "tools": [{"type": "function", "function": {
                                "name": _TOOL_NAME, "description": "Look something up.",
                                "parameters": _TOOL_SCHEMA}}],
                            "tool_choice": "auto", "stream": False}
    if call.max_tokens is not None:
        body["max_tokens"] = call.max_tokens
    headers = {"content-type": "application/json", **hints}
    if provider == "azure":
        dep = deployment or call.model
        headers["api-key"] = "capacity-loadtest"
        return Request(f"/openai/deployments/{dep}/chat/completions?api-version="
                       f"{AZURE_API_VERSION}", headers, body, _dumps(body))
    headers["authorization"] = "Bearer capacity-loadtest"
    return Request("/v1/chat/completions", headers, body, _dumps(body))


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _openai_messages(system: str, msgs: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system or _PLACEHOLDER}]
    for m in msgs:
        if m[0] == "user":
            out.append({"role": "user", "content": m[1]})
        elif m[0] == "assistant_text":
            out.append({"role": "assistant", "content": m[1]})
        elif m[0] == "assistant_tools":
            out.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": tid, "type": "function",
                 "function": {"name": _TOOL_NAME, "arguments": '{"query": "q"}'}}
                for tid in m[1]]})
        else:
            out.append({"role": "tool", "tool_call_id": m[1], "content": m[2]})
    return out


def _anthropic(call: CallPlan, system: str, msgs: list[tuple[Any, ...]],
               hints: dict[str, str]) -> Request:
    out: list[dict[str, Any]] = []
    for m in msgs:
        if m[0] == "user":
            block: dict[str, Any] = {"type": "text", "text": m[1]}
            role = "user"
        elif m[0] == "assistant_text":
            block, role = {"type": "text", "text": m[1]}, "assistant"
        elif m[0] == "assistant_tools":
            role = "assistant"
            blocks = [{"type": "tool_use", "id": tid, "name": _TOOL_NAME,
                       "input": {"query": "q"}} for tid in m[1]]
            out.append({"role": role, "content": blocks})
            continue
        else:
            block = {"type": "tool_result", "tool_use_id": m[1], "content": m[2]}
            role = "user"
        # Consecutive messages of one role merge (Anthropic alternates roles).
        if out and out[-1]["role"] == role:
            out[-1]["content"].append(block)
        else:
            out.append({"role": role, "content": [block]})
    if not out or out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "start"}]})
    body: dict[str, Any] = {
        "model": call.model, "max_tokens": (call.max_tokens if call.max_tokens is not None
                                            else _ANTHROPIC_UNCAPPED_MAX_TOKENS),
        # The system prompt (and so the cacheable prefix) marked for prompt caching.
        "system": [{"type": "text", "text": system or _PLACEHOLDER,
                    "cache_control": {"type": "ephemeral"}}],
        "messages": out,
        "tools": [{"name": _TOOL_NAME, "description": "Look something up.",
                   "input_schema": _TOOL_SCHEMA}],
    }
    headers = {"content-type": "application/json", "x-api-key": "capacity-loadtest",
               "anthropic-version": ANTHROPIC_VERSION, **hints}
    return Request("/v1/messages", headers, body, _dumps(body))


def parse_reply(provider: Provider, data: Any) -> Reply:
    """Read a 2xx answer; raises :class:`TargetError` when it is not one (garbage)."""
    try:
        if provider == "anthropic":
            if data.get("type") != "message":
                raise ValueError("no 'type': 'message'")
            ids = [b["id"] for b in data["content"] if b.get("type") == "tool_use"]
            text = "".join(b.get("text", "") for b in data["content"]
                           if b.get("type") == "text")
            u = data["usage"]
            cached = int(u.get("cache_read_input_tokens") or 0)
            prompt = int(u.get("input_tokens", 0)) + cached
            return Reply(ids, text, prompt, int(u["output_tokens"]), cached)
        msg = data["choices"][0]["message"]
        ids = [tc["id"] for tc in (msg.get("tool_calls") or [])]
        u = data["usage"]
        details = u.get("prompt_tokens_details") or {}
        return Reply(ids, msg.get("content") or "", int(u["prompt_tokens"]),
                     int(u["completion_tokens"]), int(details.get("cached_tokens") or 0))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        shown = json.dumps(data)[:120] if not isinstance(data, str) else data[:120]
        api = {"openai": "an OpenAI", "azure": "an Azure OpenAI",
               "anthropic": "an Anthropic"}.get(provider, f"a {provider}")
        raise TargetError(f"the target's answer is not {api} completion "
                          f"({type(e).__name__}: {e}): {shown}") from None


def parse_retry_after(headers: Any) -> float | None:
    """The server's wait on a 429, wall seconds: ``retry-after-ms`` first, then
    ``retry-after`` (seconds); None when absent or unreadable."""
    for key, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        v = headers.get(key)
        if v is None:
            continue
        try:
            x = float(v) * scale
        except ValueError:
            continue
        if math.isfinite(x) and x >= 0:
            return x
    return None


def fork(conv: Conversation) -> Conversation:
    """A copy of the conversation for one copy of a parallel block (its own branch)."""
    return Conversation(conv.session, [list(ex) for ex in conv.exchanges],
                        list(conv.pending), conv.counter)
