"""Anthropic Messages (``POST /v1/messages``), any ``anthropic-version``.

Accepts what the official SDK and ``ChatAnthropic`` send: top-level ``system`` (string or
text blocks), ``messages`` whose content is a string or a list of blocks (``text``,
``image``, ``tool_use``, ``tool_result``, ...), ``tools`` with ``input_schema`` (server
tools with a ``type`` are accepted and never called), ``tool_choice``
(``auto | any | tool | none``, ``disable_parallel_tool_use``), ``max_tokens`` (required,
as the real API requires it), ``stream`` and ``output_config.format`` (structured
output, ``{"type": "json_schema", "schema": ...}``: a text answer is then a JSON document
valid against the schema — what ``messages.parse`` and ``ChatAnthropic``'s
``with_structured_output(method="json_schema")`` read; but the anthropic SDK moves
``pattern``, bounds and ``minItems`` into ``description`` text before sending, so for a
model with such constraints the answer satisfies the sent schema and fails the SDK's
client-side validation: the mock does not read constraints out of descriptions). A
content block of a type the API does not define is refused, naming it
(``messages.0.content.1.type``), as the API does; so are text blocks without a string
``text``, ``tool_result`` blocks answering no ``tool_use`` of the message before them and
``tool_use`` blocks the next message leaves unanswered. ``temperature`` (0–1), ``top_p``,
``top_k`` and ``stop_sequences`` are type- and range-checked, not used.

"Last message is a tool result" means: the last message is a ``user`` message whose
content holds a ``tool_result`` block (``ChatAnthropic`` merges a run of tool results
into one such message). Usage reports ``input_tokens`` without the cache reads, which go
to ``cache_read_input_tokens``, as the real API does.

Streams follow the recorded event sequence: ``message_start``, per block
``content_block_start`` / ``content_block_delta``… / ``content_block_stop`` (a ``ping``
after the first start), ``message_delta`` with the stop reason and output usage,
``message_stop``; every event has its ``event:`` line; there is no ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from capacity.serve.errors import bad
from capacity.serve.history import JsonAnswer, Reply, ToolDef, TurnView, new_id
from capacity.serve.wire import (
    Parsed,
    StreamParts,
    Usage,
    answer_pieces,
    answer_text,
    check_ranges,
    check_type,
    opt_bool,
    opt_int,
    opt_positive_int,
    opt_strings,
    split_even,
    sse_event,
)

# The fields the prompt-token estimate reads (wire.estimate_prompt_tokens): what
# count_tokens takes and counts — system, messages, tools, tool_choice (Anthropic's tool-use
# system prompt differs with it: "auto"/"none" vs "any"/"tool") and the
# output_config.format schema; max_tokens, stream, metadata and the sampling fields are
# not counted, so count_tokens (no max_tokens) equals the same request's input_tokens +
# cache_read_input_tokens.
PROMPT_FIELDS = ("system", "messages", "tools", "tool_choice", "output_config")
STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

# The content block types a message may hold: the union of the anthropic SDK's
# MessageParam and BetaMessageParam blocks (2.14.0; ``client.beta.messages.create`` posts
# to the same endpoint, with mcp_tool_use, compaction, ... in its history;
# tests/test_serve_structured.py checks this set covers the installed SDK's). The API
# refuses any other type with a 400 naming the block.
BLOCK_TYPES = frozenset({
    "bash_code_execution_tool_result", "code_execution_tool_result", "container_upload",
    "document", "image", "redacted_thinking", "search_result", "server_tool_use", "text",
    "text_editor_code_execution_tool_result", "thinking", "tool_result",
    "tool_search_tool_result", "tool_use", "web_fetch_tool_result", "web_search_tool_result",
    # BetaMessageParam only:
    "advisor_tool_result", "compaction", "fallback", "mcp_tool_listing", "mcp_tool_result",
    "mcp_tool_use", "tool_addition", "tool_removal",
})
# Roles of a message: the SDK's MessageParam (2.14.0) also has 'system' (text only).
_ROLES = ("user", "assistant", "system")


def parse(body: Any) -> Parsed:
    """Validate a Messages body."""
    check_type(body, dict, "body", "a JSON object")
    if "model" not in body:
        raise bad("model", "Field required")
    check_type(body["model"], str, "model", "a string")
    if not body["model"]:
        raise bad("model", "must not be empty")
    max_tokens = opt_positive_int(body, "max_tokens")
    if max_tokens is None:
        raise bad("max_tokens", "Field required")
    if "messages" not in body:
        raise bad("messages", "Field required")
    msgs = body["messages"]
    check_type(msgs, list, "messages", "an array of messages")
    if not msgs:
        raise bad("messages", "at least one message is required")
    for i, m in enumerate(msgs):
        _check_message(m, f"messages.{i}", prefill=i == len(msgs) - 1)
    _check_tool_answers(msgs)
    meta = body.get("metadata")
    if meta is not None:  # its user_id is the request log's session
        check_type(meta, dict, "metadata", "an object")
        if meta.get("user_id") is not None:
            check_type(meta["user_id"], str, "metadata.user_id", "a string")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        check_type(system, list, "system", "a string or an array of text blocks")
        for j, b in enumerate(system):
            check_type(b, dict, f"system.{j}", "a text block")
    tools = _tools(body.get("tools"))
    choice, parallel = _tool_choice(body.get("tool_choice"), tools)
    stream = opt_bool(body, "stream", False)
    check_ranges(body, (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)))
    opt_int(body, "top_k", 0)
    opt_strings(body, "stop_sequences", None, item="{key}.{i}")
    last = msgs[-1]
    content = last.get("content")
    last_tool = (last.get("role") == "user" and isinstance(content, list)
                 and any(b.get("type") == "tool_result" for b in content))
    view = TurnView(last_tool, tools, choice, parallel,
                    _output_format(body.get("output_config")))
    return Parsed(body["model"], stream, True, max_tokens, view)


def _check_message(m: Any, p: str, *, prefill: bool = False) -> None:
    """One message; ``prefill``: it is the last one (an assistant's may then be empty)."""
    check_type(m, dict, p, "a message object")
    role = m.get("role")
    if role is None:
        raise bad(f"{p}.role", "Field required")
    if role not in _ROLES:
        raise bad(f"{p}.role", f"Input should be 'user', 'assistant' or 'system'; "
                  f"got {role!r}")
    if "content" not in m:
        raise bad(f"{p}.content", "Field required")
    content = m["content"]
    if not isinstance(content, str):
        check_type(content, list, f"{p}.content", "a string or an array of content blocks")
    if not (prefill and role == "assistant") and (
            not content or (isinstance(content, str) and not content.strip())):
        raise bad(f"{p}.content", "all messages must have non-empty content except for the "
                  "optional final assistant message")
    if isinstance(content, str):
        return
    for j, b in enumerate(content):
        q = f"{p}.content.{j}"
        check_type(b, dict, q, "a content block object")
        check_type(b.get("type"), str, f"{q}.type", "a string")
        kind = b["type"]
        allowed = BLOCK_TYPES if role != "system" else ("text",)
        if kind not in allowed:
            raise bad(f"{q}.type", f"Input tag {kind!r} found using 'type' does not match "
                      f"any of the expected tags: {', '.join(map(repr, sorted(allowed)))}")
        if kind == "text":
            check_type(b.get("text"), str, f"{q}.text", "a string")
            if not b["text"].strip() and not (prefill and role == "assistant"):
                raise bad(f"{q}.text", "text content blocks must contain non-whitespace text")
        elif kind == "tool_result":
            check_type(b.get("tool_use_id"), str, f"{q}.tool_use_id", "a string")
        elif b["type"] == "tool_use":
            check_type(b.get("id"), str, f"{q}.id", "a string")
            check_type(b.get("name"), str, f"{q}.name", "a string")
            check_type(b.get("input"), dict, f"{q}.input", "an object")


def _blocks(m: dict[str, Any], kind: str, key: str) -> list[tuple[int, str]]:
    """(index, ``key``) of ``m``'s content blocks of type ``kind``."""
    content = m["content"]
    return [] if isinstance(content, str) else [
        (j, b[key]) for j, b in enumerate(content) if b["type"] == kind]


def _check_tool_answers(msgs: list[dict[str, Any]]) -> None:
    """Anthropic's pairing rule: a ``tool_result`` block answers a ``tool_use`` block of
    the message just before it, and the message after an assistant's ``tool_use`` blocks
    answers every one of them."""
    for i, m in enumerate(msgs):
        asked = ([tid for _, tid in _blocks(msgs[i - 1], "tool_use", "id")]
                 if i and msgs[i - 1]["role"] == "assistant" else [])
        results = _blocks(m, "tool_result", "tool_use_id")
        for j, tid in results:
            if tid not in asked:
                raise bad(f"messages.{i}.content.{j}", f"unexpected `tool_use_id` found in "
                          f"`tool_result` blocks: {tid}. Each `tool_result` block must have a "
                          "corresponding `tool_use` block in the previous message.")
        answered = {tid for _, tid in results}
        missing = [tid for tid in asked if tid not in answered]
        if missing:
            raise bad(f"messages.{i - 1}", "`tool_use` ids were found without `tool_result` "
                      f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                      "must have a corresponding `tool_result` block in the next message.")


def _output_format(raw: Any) -> JsonAnswer | None:
    """``output_config.format``: the JSON Schema a text answer must satisfy, if any."""
    if raw is None:
        return None
    check_type(raw, dict, "output_config", "an object")
    fmt = raw.get("format")
    if fmt is None:
        return None
    check_type(fmt, dict, "output_config.format", "an object")
    if fmt.get("type") != "json_schema":
        raise bad("output_config.format.type", f"Input should be 'json_schema'; got "
                  f"{fmt.get('type')!r}")
    schema = fmt.get("schema")
    if schema is None:
        raise bad("output_config.format.schema", "Field required")
    check_type(schema, dict, "output_config.format.schema", "a JSON Schema object")
    return JsonAnswer(schema, "output_config.format.schema")


def _tools(raw: Any) -> tuple[ToolDef, ...]:
    if raw is None:
        return ()
    check_type(raw, list, "tools", "an array")
    out = []
    names: set[str] = set()
    for i, t in enumerate(raw):
        p = f"tools.{i}"
        check_type(t, dict, p, "a tool object")
        check_type(t.get("name"), str, f"{p}.name", "a string")
        if t["name"] in names:  # the API's words; server tools' names count too
            raise bad("tools", "Tool names must be unique.")
        names.add(t["name"])
        if t.get("type") not in (None, "custom"):
            continue  # a server tool (web search, ...): the provider runs it, never a call
        schema = t.get("input_schema")
        if schema is None:
            raise bad(f"{p}.input_schema", "Field required")
        check_type(schema, dict, f"{p}.input_schema", "a JSON Schema object")
        out.append(ToolDef(t["name"], schema, f"{p}.input_schema"))
    return tuple(out)


def _tool_choice(raw: Any, tools: tuple[ToolDef, ...]) -> tuple[str | tuple[str, str], bool]:
    if raw is None:
        return ("auto" if tools else "none"), True
    check_type(raw, dict, "tool_choice", "an object")
    kind = raw.get("type")
    parallel = not opt_bool(raw, "disable_parallel_tool_use", False)
    if kind == "auto":
        return ("auto" if tools else "none"), parallel
    if kind == "none":
        return "none", parallel
    if kind == "any":
        if not tools:
            raise bad("tool_choice", "'any' needs at least one tool in 'tools'")
        return "required", parallel
    if kind == "tool":
        name = raw.get("name")
        check_type(name, str, "tool_choice.name", "a string")
        if name not in {t.name for t in tools}:
            raise bad("tool_choice.name", f"no tool named {name!r} in 'tools'")
        return ("name", name), parallel
    raise bad("tool_choice.type", f"must be auto, any, tool or none; got {kind!r}")


def _usage(u: Usage, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": u.prompt_tokens - u.cached_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": u.cached_tokens,
            "output_tokens": output_tokens, "service_tier": "standard"}


def _delta_usage(u: Usage) -> dict[str, Any]:
    """``message_delta``'s usage: the totals so far, input counts included (the API's
    MessageDeltaUsage carries them; the SDK's accumulator copies them)."""
    full = _usage(u, u.completion_tokens)
    return {k: full[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                 "cache_read_input_tokens", "output_tokens")}


def render(p: Parsed, reply: Reply, u: Usage) -> dict[str, Any]:
    """The non-streaming ``message`` object."""
    if reply.is_tool_call:
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in reply.calls]
    else:
        content = [{"type": "text", "text": answer_text(reply, u.completion_tokens)}]
    return {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": p.model,
            "content": content, "stop_reason": STOP_REASON[u.finish], "stop_sequence": None,
            "usage": _usage(u, u.completion_tokens)}


def stream(p: Parsed, reply: Reply, u: Usage, groups: int) -> StreamParts:
    """The events of a streamed answer, content cut into ``groups`` deltas."""
    start = sse_event("message_start", {"type": "message_start", "message": {
        "id": new_id("msg_"), "type": "message", "role": "assistant", "model": p.model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": _usage(u, 1)}})
    ping = sse_event("ping", {"type": "ping"})
    pieces: list[bytes] = []
    text_pieces: Iterable[bytes] | None = None
    if reply.is_tool_call:
        per_call = max(1, groups // len(reply.calls))
        head = start
        for i, c in enumerate(reply.calls):
            block = sse_event("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": c.id, "name": c.name,
                                  "input": {}}})
            if i == 0:
                head += block + ping
            else:
                pieces.append(block)
            text = c.arguments_json
            for a, b in split_even(len(text), per_call):
                pieces.append(sse_event("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": text[a:b]}}))
            pieces.append(sse_event("content_block_stop",
                                    {"type": "content_block_stop", "index": i}))
        tail = b""
    else:
        head = start + sse_event("content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}) + ping
        texts, n_text = answer_pieces(reply, u.completion_tokens, groups)
        text_pieces = (sse_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": t}}) for t in texts)
        tail = sse_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    tail += sse_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASON[u.finish], "stop_sequence": None},
        # Cumulative usage, as the API sends it: langchain-anthropic reads a stream's
        # usage from this event alone (input 0 without the input counts).
        "usage": _delta_usage(u)})
    tail += sse_event("message_stop", {"type": "message_stop"})
    if text_pieces is not None:
        return StreamParts(head, text_pieces, n_text, tail)
    return StreamParts(head, pieces, len(pieces), tail)
