"""OpenAI Chat Completions (``POST /v1/chat/completions``; Azure's deployment route too).

Accepts what the official SDK and LangChain's ``ChatOpenAI`` send: ``system`` and
``developer`` roles, ``tool`` messages, assistant ``tool_calls`` with ``content: null``,
``tools`` / ``tool_choice`` (``none | auto | required | {"type": "function", ...}``),
``parallel_tool_calls``, ``max_tokens`` and ``max_completion_tokens`` (the smaller wins
when both are sent), ``stream`` with ``stream_options.include_usage`` (refused without
``stream``, as are ``tools`` outside 1..128: OpenAI refuses them), ``response_format``
(``text``, ``json_object`` — which OpenAI refuses unless a message says "json" — and
``json_schema``: a text answer is then a JSON document valid against the schema, what
``client.beta.chat.completions.parse`` and LangChain's ``with_structured_output``
read). Sampling fields (``temperature``, ``top_p``, the penalties, ``seed``, ``stop``,
``logprobs``) are ignored but type- and range-checked as OpenAI does. Unknown top-level
fields are accepted and ignored — more lenient than OpenAI, which refuses them
("Unrecognized request argument supplied: ..."), so that a client's ``extra_body`` or a
newer SDK's field does not fail against the mock; a client relying on the mock to catch
a misspelt field will not get that 400 here. A ``tool`` message must answer an open call of
the assistant message before it, and that message's calls must all be answered before
another message (OpenAI refuses both).

``n`` (1..128, OpenAI's bounds) asks for that many choices, ``index`` 0..n−1: each is
drawn and decided by the history rule on its own (its own output tokens and tool calls,
ids unique); ``usage.completion_tokens`` is their sum, and the quota is charged every
choice's output (``n × max_tokens`` where the quota reserves max_tokens:
:meth:`capacity.serve.app.MockProvider._admit`). The answer takes as long as its longest
choice.

Streams follow the recorded wire format: a first chunk with ``role``, content (or
``tool_calls`` deltas, each with its ``index``; the first per call carries id, type and
name), a chunk with ``finish_reason``, then — with ``include_usage`` — a chunk with empty
``choices`` and the usage, then ``data: [DONE]``. With ``n`` > 1 each chunk carries one
choice by its ``index`` (:func:`stream`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from capacity.serve.errors import ApiError, bad
from capacity.serve.history import JsonAnswer, Reply, ToolDef, TurnView, new_id
from capacity.serve.wire import (
    Choice,
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
    sse_data,
)

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Content part types Chat Completions accepts (OpenAI refuses others: invalid_value).
_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal", "audio"})
# The fields the prompt-token estimate reads (wire.estimate_prompt_tokens): what OpenAI
# puts before the model — the messages, the tool definitions and a response_format's
# schema (structured outputs are prompted with it). tool_choice, n, sampling fields,
# user and metadata steer or label the request and are not prompt text.
PROMPT_FIELDS = ("messages", "tools", "response_format")
MAX_N = 128  # OpenAI's bound on n (choices per request)
MAX_TOOLS = 128  # OpenAI refuses more tools in one request (array_above_max_length)
# A function name OpenAI accepts (invalid_value otherwise: a space, '/', '!'...); some
# models' pattern also allows '.', which the mock does not refuse. At most 64 characters.
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
MAX_TOOL_NAME = 64
# OpenAI's ranges for the sampling fields the mock ignores but validates.
SAMPLING = (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0),
            ("presence_penalty", -2.0, 2.0), ("frequency_penalty", -2.0, 2.0))


def parse(body: Any, *, model: str | None = None) -> Parsed:
    """Validate a chat-completions body; ``model`` overrides ``body.model`` (Azure routes
    name the deployment in the path and need no ``model`` field)."""
    check_type(body, dict, "body", "a JSON object")
    if model is None:
        if "model" not in body:
            raise bad("model", "required")
        check_type(body["model"], str, "model", "a string")
        if not body["model"]:
            raise bad("model", "must not be empty")
        model = body["model"]
    if "messages" not in body:
        raise bad("messages", "required")
    msgs = body["messages"]
    check_type(msgs, list, "messages", "an array of messages")
    if not msgs:
        raise bad("messages", "must contain at least one message")
    for i, m in enumerate(msgs):
        _check_message(m, f"messages[{i}]")
    _check_tool_answers(msgs)
    if body.get("user") is not None:  # the request log's session
        check_type(body["user"], str, "user", "a string")
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), tools)
    stream = opt_bool(body, "stream", False)
    so = body.get("stream_options")
    include_usage = False
    if so is not None:
        check_type(so, dict, "stream_options", "an object")
        if not stream:  # as OpenAI: a non-streaming request must not carry it
            raise bad("stream_options", "only allowed when 'stream' is enabled")
        include_usage = opt_bool(so, "include_usage", False)
    caps = [c for c in (opt_positive_int(body, "max_tokens"),
                        opt_positive_int(body, "max_completion_tokens")) if c is not None]
    n = opt_int(body, "n", 1, MAX_N) or 1
    parallel = opt_bool(body, "parallel_tool_calls", True)
    check_ranges(body, SAMPLING)
    opt_int(body, "seed", -2 ** 63, 2 ** 63 - 1)  # int64, as the API's schema says
    opt_bool(body, "logprobs", False)
    opt_int(body, "top_logprobs", 0, 20)
    opt_strings(body, "stop", 4, single=True)
    last = msgs[-1]
    view = TurnView(last_is_tool_result=last.get("role") in ("tool", "function"),
                    tools=tools, tool_choice=choice, parallel=parallel,
                    json_answer=_response_format(body.get("response_format"), msgs))
    return Parsed(model, stream, include_usage, min(caps) if caps else None, view, n=n)


def _check_message(m: Any, p: str) -> None:
    check_type(m, dict, p, "a message object")
    role = m.get("role")
    if role is None:
        raise bad(f"{p}.role", "required")
    check_type(role, str, f"{p}.role", "a string")
    if role not in _ROLES:
        raise bad(f"{p}.role", f"must be one of {', '.join(sorted(_ROLES))}; got {role!r}")
    content = m.get("content")
    if content is None:
        if role not in ("assistant", "function") and "content" not in m:
            raise bad(f"{p}.content", "required")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            check_type(part, dict, f"{p}.content[{j}]", "a content part object")
            check_type(part.get("type"), str, f"{p}.content[{j}].type", "a string")
            kind = part["type"]
            if kind not in _PART_TYPES:  # as OpenAI: an unknown part is refused
                raise bad(f"{p}.content[{j}].type", f"invalid value {kind!r}; supported: "
                          f"{', '.join(sorted(_PART_TYPES))}")
            if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
                raise bad(f"{p}.content[{j}].{kind}", "required (a string)")
    else:
        check_type(content, str, f"{p}.content", "a string or an array of content parts")
    if role == "tool":
        tcid = m.get("tool_call_id")
        if tcid is None:
            raise bad(f"{p}.tool_call_id", "required for role 'tool'")
        check_type(tcid, str, f"{p}.tool_call_id", "a string")
    calls = m.get("tool_calls")
    if calls is not None:
        check_type(calls, list, f"{p}.tool_calls", "an array")
        for j, c in enumerate(calls):
            q = f"{p}.tool_calls[{j}]"
            check_type(c, dict, q, "a tool call object")
            check_type(c.get("id"), str, f"{q}.id", "a string")
            fn = c.get("function")
            check_type(fn, dict, f"{q}.function", "an object")
            check_type(fn.get("name"), str, f"{q}.function.name", "a string")
            check_type(fn.get("arguments"), str, f"{q}.function.arguments", "a JSON string")


def _check_tool_answers(msgs: list[dict[str, Any]]) -> None:
    """OpenAI's pairing rule: the ``tool`` messages after an assistant message with
    ``tool_calls`` answer those calls, each of them, before any other message; a ``tool``
    message anywhere else is refused (an agent that drops or reorders history)."""
    open_ids: list[str] = []  # the calls of the last assistant message not yet answered
    asked_at = -1
    for i, m in enumerate(msgs):
        if m["role"] == "tool":
            if asked_at < 0:
                raise bad(f"messages[{i}].role", "messages with role 'tool' must be a "
                          "response to a preceding message with 'tool_calls'")
            if m["tool_call_id"] not in open_ids:
                raise bad(f"messages[{i}].tool_call_id", f"{m['tool_call_id']!r} answers no "
                          f"open tool call of messages[{asked_at}] (open: "
                          f"{', '.join(open_ids) or 'none'})")
            open_ids.remove(m["tool_call_id"])
            continue
        if open_ids:
            raise bad(f"messages[{asked_at}].tool_calls", "an assistant message with "
                      "'tool_calls' must be followed by tool messages responding to each "
                      f"'tool_call_id'; no response for: {', '.join(open_ids)}")
        calls = m.get("tool_calls") if m["role"] == "assistant" else None
        open_ids = [c["id"] for c in calls or ()]
        asked_at = i if open_ids else -1


def _tools(raw: Any) -> tuple[ToolDef, ...]:
    if raw is None:
        return ()
    check_type(raw, list, "tools", "an array")
    # OpenAI's own bounds and answers: at least one tool, at most 128.
    if not raw:
        raise ApiError(400, "tools: empty array. Expected an array with minimum length 1, "
                       "but got an empty array instead.", param="tools", code="empty_array")
    if len(raw) > MAX_TOOLS:
        raise ApiError(400, f"tools: array too long. Expected an array with maximum length "
                       f"{MAX_TOOLS}, but got an array with length {len(raw)} instead.",
                       param="tools", code="array_above_max_length")
    out = []
    for i, t in enumerate(raw):
        p = f"tools[{i}]"
        check_type(t, dict, p, "a tool object")
        if t.get("type", "function") != "function":
            raise bad(f"{p}.type", f"the mock serves function tools only; got {t.get('type')!r}")
        fn = t.get("function")
        check_type(fn, dict, f"{p}.function", "an object")
        name = fn.get("name")
        check_type(name, str, f"{p}.function.name", "a string")
        if not _TOOL_NAME.fullmatch(name):
            raise ApiError(400, f"{p}.function.name: string does not match pattern. Expected "
                           f"a string that matches the pattern '^[a-zA-Z0-9_\\.-]+$', got "
                           f"{name[:80]!r}.", param=f"{p}.function.name", code="invalid_value")
        if len(name) > MAX_TOOL_NAME:
            raise ApiError(400, f"{p}.function.name: string too long. Expected a string with "
                           f"maximum length {MAX_TOOL_NAME}, but got a string with length "
                           f"{len(name)} instead.", param=f"{p}.function.name",
                           code="string_above_max_length")
        params = fn.get("parameters")
        if params is not None:
            check_type(params, dict, f"{p}.function.parameters", "a JSON Schema object")
        out.append(ToolDef(name, params, f"{p}.function.parameters"))
    return tuple(out)


def _tool_choice(raw: Any, tools: tuple[ToolDef, ...]) -> str | tuple[str, str]:
    if raw is None:
        return "auto" if tools else "none"
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise bad("tool_choice", f"must be none, auto, required or an object; got {raw!r}")
        if raw == "required" and not tools:
            raise bad("tool_choice", "'required' needs at least one tool in 'tools'")
        return raw
    check_type(raw, dict, "tool_choice", "a string or an object")
    fn = raw.get("function")
    check_type(fn, dict, "tool_choice.function", "an object")
    name = fn.get("name")
    check_type(name, str, "tool_choice.function.name", "a string")
    if name not in {t.name for t in tools}:
        raise bad("tool_choice.function.name", f"no tool named {name!r} in 'tools'")
    return ("name", name)


def _response_format(raw: Any, msgs: list[Any]) -> JsonAnswer | None:
    """``response_format``: None for prose (absent or ``text``), else the JSON asked for."""
    if raw is None:
        return None
    check_type(raw, dict, "response_format", "an object")
    kind = raw.get("type")
    if kind is None:
        raise bad("response_format.type", "required")
    if kind == "text":
        return None
    if kind == "json_object":
        # OpenAI's own rule: JSON mode needs the word in the conversation.
        if not any("json" in _text_of_message(m).lower() for m in msgs):
            raise bad("messages", "'messages' must contain the word 'json' in some form, "
                      "to use 'response_format' of type 'json_object'")
        return JsonAnswer({"type": "object"}, "response_format", object_root=True)
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if spec is None:
            raise bad("response_format.json_schema", "required")
        check_type(spec, dict, "response_format.json_schema", "an object")
        check_type(spec.get("name"), str, "response_format.json_schema.name", "a string")
        schema = spec.get("schema")
        if schema is None:  # OpenAI allows it: any JSON object answers
            return JsonAnswer({"type": "object"}, "response_format.json_schema",
                              object_root=True)
        check_type(schema, dict, "response_format.json_schema.schema", "a JSON Schema object")
        return JsonAnswer(schema, "response_format.json_schema.schema", object_root=True)
    raise bad("response_format.type", f"invalid value {kind!r}; supported: json_object, "
              "json_schema, text")


def _text_of_message(m: dict[str, Any]) -> str:
    """The text a message carries (string content or its text parts)."""
    content = m.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if p.get("type") == "text")
    return ""


def _usage(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def _choices(reply: Reply, u: Usage, choices: tuple[Choice, ...]) -> tuple[Choice, ...]:
    """The answer's choices: ``choices`` when the request asked for several (``n`` > 1),
    else the one ``reply`` with ``u``'s tokens and finish."""
    return choices or (Choice(reply, u.completion_tokens, u.finish),)


def render(p: Parsed, reply: Reply, u: Usage,
           choices: tuple[Choice, ...] = ()) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object; ``choices``: all of them when the
    request asked for ``n`` > 1 (``u`` then holds their total completion tokens)."""
    out = []
    for i, c in enumerate(_choices(reply, u, choices)):
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if c.reply.is_tool_call:
            message["content"] = None
            message["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments_json}}
                for call in c.reply.calls]
        else:
            message["content"] = answer_text(c.reply, c.tokens)
        out.append({"index": i, "message": message, "logprobs": None,
                    "finish_reason": c.finish})
    return {"id": new_id("chatcmpl-"), "object": "chat.completion",
            "created": int(time.time()), "model": p.model, "choices": out,
            "usage": _usage(u), "service_tier": "default",
            "system_fingerprint": "fp_capacity_mock"}


def stream(p: Parsed, reply: Reply, u: Usage, groups: int,
           choices: tuple[Choice, ...] = ()) -> StreamParts:
    """The chunks of a streamed answer, content cut into ``groups`` pieces.

    With ``choices`` (``n`` > 1) every chunk carries one choice, named by its ``index``,
    as OpenAI streams them: first each choice's role chunk in index order (the SDK's
    ``ChatCompletionStreamState`` appends a choice it has not seen at the end of its
    list, so they must first appear in order), then the choices' pieces in turn (each
    cut into ``groups // n`` pieces, so a stream sends as many events as with one
    choice), then each choice's finish chunk, the usage chunk and ``[DONE]``.
    """
    base = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": p.model,
            "system_fingerprint": "fp_capacity_mock"}
    if p.include_usage:
        base["usage"] = None  # "All other chunks will also include a usage field ... null"
    all_ = _choices(reply, u, choices)
    per = max(1, groups // len(all_))
    heads, parts, tails = [], [], []
    for i, c in enumerate(all_):
        head, pieces, n, tail = _choice_chunks(base, i, c, per)
        heads.append(head)
        parts.append((pieces, n))
        tails.append(tail)
    tail = b"".join(tails)
    if p.include_usage:
        tail += sse_data({**base, "choices": [], "usage": _usage(u)})
    tail += b"data: [DONE]\n\n"
    if len(parts) == 1:
        return StreamParts(heads[0], parts[0][0], parts[0][1], tail)
    return StreamParts(b"".join(heads), _in_turn([it for it, _ in parts]),
                       sum(n for _, n in parts), tail)


def _in_turn(iterables: list[Iterable[bytes]]) -> Iterator[bytes]:
    """The items of ``iterables`` taken one of each in turn (a shorter one drops out)."""
    its = [iter(x) for x in iterables]
    while its:
        alive = []
        for it in its:
            item = next(it, None)
            if item is not None:
                yield item
                alive.append(it)
        its = alive


def _choice_chunks(base: dict[str, Any], index: int, c: Choice, groups: int
                   ) -> tuple[bytes, Iterable[bytes], int, bytes]:
    """One choice's stream: its role chunk, its content pieces (lazy for text) and their
    count, its finish chunk."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_data({**base, "choices": [{"index": index, "delta": delta,
                                             "logprobs": None, "finish_reason": finish}]})

    reply = c.reply
    if reply.is_tool_call:
        head = chunk({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"index": i, "id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": ""}}
            for i, call in enumerate(reply.calls)]})
        per_call = max(1, groups // len(reply.calls))
        pieces: list[bytes] = []
        for i, call in enumerate(reply.calls):
            text = call.arguments_json
            for a, b in split_even(len(text), per_call):
                pieces.append(chunk({"tool_calls": [
                    {"index": i, "function": {"arguments": text[a:b]}}]}))
        return head, pieces, len(pieces), chunk({}, c.finish)
    head = chunk({"role": "assistant", "content": "", "refusal": None})
    texts, n_text = answer_pieces(reply, c.tokens, groups)
    return head, (chunk({"content": t}) for t in texts), n_text, chunk({}, c.finish)
