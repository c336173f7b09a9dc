"""The history rule: what a stateless mock answers, read from the request alone.

1. The last message is a tool result (OpenAI: a ``tool`` message; Anthropic: a ``user``
   message holding a ``tool_result`` block; Responses: a ``function_call_output`` item)
   → a text answer (``finish_reason: stop`` / ``stop_reason: end_turn``).
2. Otherwise, tools are offered and ``tool_choice`` is not ``none`` → tool call(s): the
   tool ``tool_choice`` names, else tools drawn with the seeded generator; arguments
   generated from the tool's JSON Schema (:mod:`capacity.serve.schema_args`); a fresh id
   per call; several calls when parallel calls are allowed and the plan says so.
   A schema no value can be generated for is a 400 naming it.
   With ``tool_probability`` p < 1, an ``auto`` choice answers text with probability 1 − p
   ("some turns use no tool"); ``required`` / a named tool always call — when rule 1
   does not apply: after a tool result the answer is text whatever ``tool_choice`` says
   (a real model under ``required`` would call again; the mock ends the loop, below).
3. Otherwise → text: prose, or — when the request asks for structured output (OpenAI
   ``response_format`` ``json_schema`` / ``json_object``, Responses ``text.format``,
   Anthropic ``output_config.format``) — a JSON document valid against its schema, made
   by the same generator as tool-call arguments (a schema no value can be generated for
   is a 400 naming it).

Because the rule reads only the last message, an agent loop always ends: a tool call is
answered by the agent with a tool result, which the mock answers with text. A mock that
always returns the same tool call (the founding story) loops forever; a turn-counting
mock breaks when a turn uses no tool, or several.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from capacity.serve.errors import bad
from capacity.serve.schema_args import SchemaError, arguments_for, check_schema, value_for

__all__ = ["JsonAnswer", "Reply", "ToolCall", "ToolDef", "TurnView", "decide", "new_id"]

_PREFIX = os.urandom(5).hex()
_COUNTER = itertools.count(1)


def new_id(prefix: str) -> str:
    """A unique id (``call_…``, ``toolu_…``, ``chatcmpl-…``): process-random prefix plus a
    counter, so ids never repeat within a server and almost surely not across servers."""
    return f"{prefix}{_PREFIX}{next(_COUNTER):014x}"


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool offered by the request: its name, parameter schema (a dict or None) and
    where that schema sits in the request (for a 400 naming it)."""

    name: str
    schema: Any
    param: str = "tools"

    def __post_init__(self) -> None:
        _check(self.schema, self.param)


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A request for structured output: text answers are a JSON document valid against
    ``schema`` (``{"type": "object"}`` for OpenAI's ``json_object`` mode); ``param`` is
    where the schema sits in the request (for a 400 naming it); ``object_root``: the API
    refuses a schema whose root is not an object (OpenAI's do)."""

    schema: dict[str, Any]
    param: str
    object_root: bool = False

    def __post_init__(self) -> None:
        _check(self.schema, self.param)


def _check(schema: Any, param: str) -> None:
    """A schema breaking a keyword's rule (multipleOf 0, an unbalanced pattern) is the
    provider's 400 on every request offering it, called or not."""
    try:
        check_schema(schema)
    except SchemaError as e:
        raise bad(param, str(e)) from None


@dataclass(frozen=True, slots=True)
class TurnView:
    """What the rule needs from a request, whatever its protocol.

    Attributes
    ----------
    last_is_tool_result : the last message/item is a tool result.
    tools : tools offered, in order.
    tool_choice : ``"auto"``, ``"none"``, ``"required"`` or ``("name", <tool name>)``.
    parallel : several calls allowed in one answer.
    json_answer : structured output asked for (text answers are JSON), or None (prose).
    """

    last_is_tool_result: bool
    tools: tuple[ToolDef, ...]
    tool_choice: str | tuple[str, str]
    parallel: bool
    json_answer: JsonAnswer | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One generated call: its id, tool name, arguments (object) and their JSON text."""

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_json: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer's content: text (``calls`` empty) or tool calls.

    ``text`` is the structured-output JSON of a text answer; None means prose, which the
    renderers draw from the token count (:func:`capacity.serve.behaviour.text_of`).
    """

    calls: tuple[ToolCall, ...] = ()
    text: str | None = None

    @property
    def is_tool_call(self) -> bool:
        """True when the answer calls tools."""
        return bool(self.calls)


_TEXT = Reply()


def decide(view: TurnView, rng: np.random.Generator, *, tool_probability: float,
           n_calls: int, id_prefix: str) -> Reply:
    """Apply the history rule to one request.

    Parameters
    ----------
    view : the request, seen through :class:`TurnView`.
    rng : the server's seeded generator.
    tool_probability : chance that an ``auto`` turn calls a tool (0..1).
    n_calls : calls in a tool-call answer when parallel calls are allowed (≥ 1).
    id_prefix : ``call_`` (OpenAI) or ``toolu_`` (Anthropic).
    """
    if view.last_is_tool_result or not view.tools or view.tool_choice == "none":
        return _text(view)
    choice = view.tool_choice
    if isinstance(choice, tuple):
        named = [t for t in view.tools if t.name == choice[1]]
        chosen = [named[0]] if named else [view.tools[0]]
    else:
        if choice == "auto" and tool_probability < 1.0 and rng.random() >= tool_probability:
            return _text(view)
        k = max(1, n_calls) if view.parallel else 1
        # Distinct tools first (an agent fanning out usually calls different tools),
        # then repeats, each with its own id.
        order = [int(i) for i in rng.permutation(len(view.tools))]
        chosen = [view.tools[order[j % len(order)]] for j in range(k)]
    calls = []
    for tool in chosen:
        try:
            args = arguments_for(tool.schema)
        except SchemaError as e:
            raise bad(tool.param, str(e)) from None
        calls.append(ToolCall(new_id(id_prefix), tool.name, args,
                              json.dumps(args, separators=(",", ":"))))
    return Reply(tuple(calls))


def _text(view: TurnView) -> Reply:
    """A text answer: prose, or the structured-output JSON the request asks for."""
    ask = view.json_answer
    if ask is None:
        return _TEXT
    try:
        value = value_for(ask.schema)
    except SchemaError as e:
        raise bad(ask.param, str(e)) from None
    if ask.object_root and not isinstance(value, dict):
        raise bad(ask.param, 'the root of the schema must be an object ("type": "object")')
    return Reply(text=json.dumps(value, separators=(",", ":"), ensure_ascii=False))
