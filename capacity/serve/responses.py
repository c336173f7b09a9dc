"""OpenAI Responses (``POST /v1/responses``) with function calls, streaming and not.

``input`` is a string or a list of items: messages (``role`` + ``content``),
``function_call`` items the agent echoes back, ``function_call_output`` items carrying
tool results (other item types are accepted). The history rule reads the last item:
a ``function_call_output`` → text; otherwise function tools offered → ``function_call``
output items (``call_id`` unique, ``arguments`` a JSON string). ``max_output_tokens`` caps
the output (``status: incomplete`` when it cuts). ``text.format`` ``json_schema`` or
``json_object`` makes a text answer a JSON document valid against the schema (what
``client.responses.parse`` reads); the response echoes the format. ``json_object`` is
refused, as OpenAI refuses it, unless the input or ``instructions`` say "json".
``temperature`` and ``top_p`` are range-checked and echoed, not used. Stateless:
``previous_response_id`` is accepted, but the decision reads only this request's ``input``.

Streams send the named events the SDK's accumulator expects: ``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``… / ``response.function_call_arguments.delta``…, their
``.done`` events, ``response.output_item.done``, ``response.completed``; each with a
``sequence_number``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from capacity.serve.errors import bad
from capacity.serve.history import JsonAnswer, Reply, ToolDef, TurnView, new_id
from capacity.serve.openai_chat import SAMPLING
from capacity.serve.wire import (
    Parsed,
    StreamParts,
    Usage,
    answer_pieces,
    answer_text,
    check_ranges,
    check_type,
    opt_bool,
    opt_positive_int,
    split_even,
    sse_event,
)

# The fields the prompt-token estimate reads (wire.estimate_prompt_tokens): the
# Responses counterparts of chat's — instructions (the system prompt), input, the tool
# definitions and text.format's schema; tool_choice, metadata, store and the sampling
# fields are not prompt text.
PROMPT_FIELDS = ("instructions", "input", "tools", "text")
# temperature and top_p (Responses has no penalties), range-checked as OpenAI does.
_SAMPLING = SAMPLING[:2]


def parse(body: Any) -> Parsed:
    """Validate a Responses body."""
    check_type(body, dict, "body", "a JSON object")
    if "model" not in body:
        raise bad("model", "required")
    check_type(body["model"], str, "model", "a string")
    if not body["model"]:
        raise bad("model", "must not be empty")
    if "input" not in body:
        raise bad("input", "required")
    inp = body["input"]
    if body.get("previous_response_id") is not None:  # echoed back: a number was served
        check_type(body["previous_response_id"], str, "previous_response_id", "a string")
    last_tool = False
    if not isinstance(inp, str):
        check_type(inp, list, "input", "a string or an array of input items")
        if not inp:
            raise bad("input", "must contain at least one item")
        for i, item in enumerate(inp):
            _check_item(item, f"input[{i}]")
        if (body.get("previous_response_id") is None and body.get("conversation") is None
                and not any(item.get("type") == "item_reference" for item in inp)):
            # Else the call may be stored: in the previous response, the conversation, or
            # an item_reference (an fc_ id whose call_id only the stored item knows).
            _check_outputs_have_calls(inp)
        last_tool = inp[-1].get("type") == "function_call_output"
    if body.get("instructions") is not None:
        check_type(body["instructions"], str, "instructions", "a string")
    tools_raw = body.get("tools")
    tools = _tools(tools_raw)
    choice = _tool_choice(body.get("tool_choice"), tools)
    parallel = opt_bool(body, "parallel_tool_calls", True)
    stream = opt_bool(body, "stream", False)
    check_ranges(body, _SAMPLING)
    fmt, json_answer = _text_format(body.get("text"))
    if fmt.get("type") == "json_object" and "json" not in _input_text(body).lower():
        # OpenAI's rule, as for chat's response_format: JSON mode needs the word.
        raise bad("input", "Response input messages must contain the word 'json' in some "
                  "form to use 'text.format' of type 'json_object'")
    echo = {"text": {"format": fmt}, "instructions": body.get("instructions"),
            "tools": tools_raw if isinstance(tools_raw, list) else [],
            "tool_choice": body.get("tool_choice", "auto"),
            "parallel_tool_calls": parallel,
            "previous_response_id": body.get("previous_response_id"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
            # the sampling fields, as sent (OpenAI's defaults: 1.0)
            **{k: float(body[k]) if body.get(k) is not None else 1.0 for k, _, _ in _SAMPLING}}
    return Parsed(body["model"], stream, True, opt_positive_int(body, "max_output_tokens"),
                  TurnView(last_tool, tools, choice, parallel, json_answer), echo)


def _input_text(body: dict[str, Any]) -> str:
    """The text of ``instructions`` and the input's messages (string content or the
    ``text`` of its parts), for the json_object rule."""
    texts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    inp = body["input"]
    for item in [{"content": inp}] if isinstance(inp, str) else inp:
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part["text"] for part in content
                      if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return " ".join(texts)


def _check_item(item: Any, p: str) -> None:
    check_type(item, dict, p, "an input item object")
    kind = item.get("type")
    if kind is None or kind == "message":
        role = item.get("role")
        check_type(role, str, f"{p}.role", "a string")
        if role not in ("user", "assistant", "system", "developer"):
            raise bad(f"{p}.role", f"must be user, assistant, system or developer; got {role!r}")
        content = item.get("content")
        if not isinstance(content, str):
            check_type(content, list, f"{p}.content", "a string or an array of content parts")
        return
    check_type(kind, str, f"{p}.type", "a string")
    if kind == "function_call_output":
        check_type(item.get("call_id"), str, f"{p}.call_id", "a string")
        if "output" not in item:
            raise bad(f"{p}.output", "required")
        check_type(item["output"], (str, list), f"{p}.output",
                   "a string or an array of content parts")
    elif kind == "function_call":
        check_type(item.get("call_id"), str, f"{p}.call_id", "a string")
        check_type(item.get("name"), str, f"{p}.name", "a string")
        check_type(item.get("arguments"), str, f"{p}.arguments", "a JSON string")


def _check_outputs_have_calls(items: list[dict[str, Any]]) -> None:
    """OpenAI's rule: a ``function_call_output`` answers a ``function_call`` item before
    it in the input."""
    called: set[str] = set()
    for i, item in enumerate(items):
        if item.get("type") == "function_call":
            called.add(item["call_id"])
        elif item.get("type") == "function_call_output" and item["call_id"] not in called:
            raise bad(f"input[{i}].call_id", "No tool call found for function call output "
                      f"with call_id {item['call_id']}.")


def _text_format(raw: Any) -> tuple[dict[str, Any], JsonAnswer | None]:
    """``text.format``: the format echoed in the response, and the JSON asked for (None:
    prose)."""
    if raw is None:
        return {"type": "text"}, None
    check_type(raw, dict, "text", "an object")
    fmt = raw.get("format")
    if fmt is None:
        return {"type": "text"}, None
    check_type(fmt, dict, "text.format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return fmt, None
    if kind == "json_object":
        return fmt, JsonAnswer({"type": "object"}, "text.format", object_root=True)
    if kind == "json_schema":
        check_type(fmt.get("name"), str, "text.format.name", "a string")
        schema = fmt.get("schema")
        if schema is None:
            raise bad("text.format.schema", "required")
        check_type(schema, dict, "text.format.schema", "a JSON Schema object")
        return fmt, JsonAnswer(schema, "text.format.schema", object_root=True)
    raise bad("text.format.type", f"invalid value {kind!r}; supported: json_object, "
              "json_schema, text")


def _tools(raw: Any) -> tuple[ToolDef, ...]:
    if raw is None:
        return ()
    check_type(raw, list, "tools", "an array")
    out = []
    for i, t in enumerate(raw):
        p = f"tools[{i}]"
        check_type(t, dict, p, "a tool object")
        check_type(t.get("type"), str, f"{p}.type", "a string")
        if t["type"] != "function":
            continue  # built-in tools (web_search, file_search, ...) run at the provider
        check_type(t.get("name"), str, f"{p}.name", "a string")
        params = t.get("parameters")
        if params is not None:
            check_type(params, dict, f"{p}.parameters", "a JSON Schema object")
        out.append(ToolDef(t["name"], params, f"{p}.parameters"))
    return tuple(out)


def _tool_choice(raw: Any, tools: tuple[ToolDef, ...]) -> str | tuple[str, str]:
    if raw is None:
        return "auto" if tools else "none"
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise bad("tool_choice", f"must be none, auto, required or an object; got {raw!r}")
        if raw == "required" and not tools:
            raise bad("tool_choice", "'required' needs at least one function tool")
        return raw if tools else "none"
    check_type(raw, dict, "tool_choice", "a string or an object")
    if raw.get("type") != "function":
        return "auto" if tools else "none"  # a built-in tool choice: answer text or call
    name = raw.get("name")
    check_type(name, str, "tool_choice.name", "a string")
    if name not in {t.name for t in tools}:
        raise bad("tool_choice.name", f"no function tool named {name!r} in 'tools'")
    return ("name", name)


def _usage(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def _items(reply: Reply, u: Usage, done: bool) -> list[dict[str, Any]]:
    status = "completed" if done else "in_progress"
    if reply.is_tool_call:
        return [{"type": "function_call", "id": "fc_" + c.id[5:], "call_id": c.id,
                 "name": c.name, "arguments": c.arguments_json if done else "",
                 "status": status} for c in reply.calls]
    return [{"type": "message", "id": new_id("msg_"), "status": status, "role": "assistant",
             "content": ([{"type": "output_text",
                           "text": answer_text(reply, u.completion_tokens),
                           "annotations": [], "logprobs": []}] if done else [])}]


def _response(p: Parsed, rid: str, created: int, status: str, output: list[dict[str, Any]],
              u: Usage | None) -> dict[str, Any]:
    truncated = u is not None and u.finish == "length"
    return {"id": rid, "object": "response", "created_at": created,
            "status": "incomplete" if truncated and status == "completed" else status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "model": p.model, "output": output, **p.echo,
            "reasoning": {"effort": None, "summary": None}, "store": False,
            "truncation": "disabled", "user": None,
            "usage": _usage(u) if u is not None else None}


def render(p: Parsed, reply: Reply, u: Usage) -> dict[str, Any]:
    """The non-streaming ``response`` object."""
    return _response(p, new_id("resp_"), int(time.time()), "completed",
                     _items(reply, u, True), u)


def stream(p: Parsed, reply: Reply, u: Usage, groups: int) -> StreamParts:
    """The events of a streamed response, content cut into ``groups`` deltas."""
    seq = 0

    def ev(name: str, payload: dict[str, Any]) -> bytes:
        nonlocal seq
        out = sse_event(name, {"type": name, "sequence_number": seq, **payload})
        seq += 1
        return out

    rid, created = new_id("resp_"), int(time.time())
    final = _items(reply, u, True)
    start = _items(reply, u, False)
    for s, f in zip(start, final, strict=True):
        s["id"] = f["id"]
    head = ev("response.created", {"response": _response(p, rid, created, "in_progress", [],
                                                         None)})
    head += ev("response.in_progress", {"response": _response(p, rid, created, "in_progress",
                                                              [], None)})
    pieces: list[bytes] = []
    text_pieces: Iterable[bytes] | None = None
    count = 0
    if reply.is_tool_call:
        per_call = max(1, groups // len(reply.calls))
        for i, (s, f) in enumerate(zip(start, final, strict=True)):
            added = ev("response.output_item.added", {"output_index": i, "item": s})
            if i == 0:
                head += added
            else:
                pieces.append(added)
            text = f["arguments"]
            for a, b in split_even(len(text), per_call):
                pieces.append(ev("response.function_call_arguments.delta", {
                    "item_id": f["id"], "output_index": i, "delta": text[a:b]}))
            pieces.append(ev("response.function_call_arguments.done", {
                "item_id": f["id"], "output_index": i, "arguments": text, "name": f["name"]}))
            pieces.append(ev("response.output_item.done", {"output_index": i, "item": f}))
        tail = b""
    else:
        item_id = final[0]["id"]
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        head += ev("response.output_item.added", {"output_index": 0, "item": start[0]})
        head += ev("response.content_part.added", {"item_id": item_id, "output_index": 0,
                                                   "content_index": 0, "part": part})
        texts, count = answer_pieces(reply, u.completion_tokens, groups)
        first = seq
        text_pieces = (sse_event("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": first + j,
            "item_id": item_id, "output_index": 0, "content_index": 0,
            "delta": t, "logprobs": []})
            for j, t in enumerate(texts))
        seq += count  # the lazy deltas take the next sequence numbers
        text = answer_text(reply, u.completion_tokens)
        tail = ev("response.output_text.done", {"item_id": item_id, "output_index": 0,
                                                "content_index": 0, "text": text,
                                                "logprobs": []})
        tail += ev("response.content_part.done", {"item_id": item_id, "output_index": 0,
                                                  "content_index": 0,
                                                  "part": {**part, "text": text}})
        tail += ev("response.output_item.done", {"output_index": 0, "item": final[0]})
    done = _response(p, rid, created, "completed", final, u)
    tail += ev("response.incomplete" if done["status"] == "incomplete"
               else "response.completed", {"response": done})
    if text_pieces is not None:
        return StreamParts(head, text_pieces, count, tail)
    return StreamParts(head, pieces, len(pieces), tail)
