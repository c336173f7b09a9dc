"""JSON and server-sent events on the wire, plus the pieces every protocol shares.

JSON parsing dominates the cost of serving an agent's request (a few KB of history), so
``orjson`` (in the ``serve`` extra) is used when installed, the standard library
otherwise; both produce the same documents.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from capacity.jsonsafe import json_kind
from capacity.serve.behaviour import text_of
from capacity.serve.errors import bad
from capacity.serve.history import Reply, TurnView

try:  # pragma: no cover - which branch runs depends on the install
    import orjson

    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj``."""
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            # An integer past 64 bits (a tool argument a schema's bounds of 1e300 ask
            # for) is valid JSON that orjson will not write: the standard library does.
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    loads: Callable[[bytes], Any] = orjson.loads
    JSONDecodeError: type[ValueError] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover
    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj``."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    loads = json.loads
    JSONDecodeError = ValueError


def estimate_prompt_tokens(body: dict[str, Any], fields: tuple[str, ...]) -> int:
    """Prompt tokens of a request (≥ 1): ``ceil(bytes / 4)`` of its prompt-bearing
    ``fields`` (each protocol's ``PROMPT_FIELDS``) re-serialised as compact JSON.

    The characters-over-four rule of thumb (OpenAI: "estimated number of tokens based on
    the character count of your request") over what the model reads — messages, system
    text, tool definitions, the output schema — so that tool definitions and message
    framing count, while the body's layout (indented or compact JSON, key order),
    ``metadata``, ``max_tokens`` digits or ``stream`` do not. Every generation endpoint
    and Anthropic's ``count_tokens`` use it, so ``count_tokens`` answers what the same
    request's usage reports. One compact ``dumps`` of the fields: a few µs for an
    agent's few KB, no tokenizer.
    """
    prompt = {k: body[k] for k in fields if body.get(k) is not None}
    return max(1, math.ceil(len(dumps(prompt)) / 4))


def sse_data(obj: Any) -> bytes:
    """One ``data:`` event (OpenAI chat streams)."""
    return b"data: " + dumps(obj) + b"\n\n"


def sse_event(name: str, obj: Any) -> bytes:
    """One named event (Anthropic and Responses streams: the ``event:`` line is
    mandatory, the SDKs dispatch on it)."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(obj) + b"\n\n"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A validated generation request, whatever its protocol.

    Attributes
    ----------
    model : the requested model (or Azure deployment) name.
    stream : answer with server-sent events.
    include_usage : OpenAI ``stream_options.include_usage``.
    max_tokens : the request's output cap, if it sent one.
    view : what the history rule reads.
    echo : protocol-specific fields a response repeats (e.g. Responses' ``tools``).
    n : choices asked for (OpenAI chat's ``n``; 1 elsewhere).
    """

    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    view: TurnView
    echo: dict[str, Any] = field(default_factory=dict)
    n: int = 1


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response and why it stopped.

    ``finish``: ``stop`` (text), ``length`` (cut at max_tokens) or ``tool_calls``.
    """

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    finish: str


@dataclass(frozen=True, slots=True)
class Choice:
    """One choice of an answer asking for several (OpenAI chat's ``n``): its content, its
    completion tokens and why it stopped (``stop``, ``length`` or ``tool_calls``)."""

    reply: Reply
    tokens: int
    finish: str


@dataclass(frozen=True, slots=True)
class StreamParts:
    """A stream as sent: ``head`` at the first token, ``n`` ``pieces`` spread over the
    generation time, ``tail`` after the last token.

    ``pieces`` is consumed once and may be lazy: a long answer's events are built as they
    are sent, so a held stream costs its connection, not its whole text.
    """

    head: bytes
    pieces: Iterable[bytes]
    n: int
    tail: bytes


def n_groups(n: int, groups: int) -> int:
    """How many ranges :func:`split_even` yields."""
    return min(max(1, groups), n) if n > 0 else 0


def split_even(n: int, groups: int) -> Iterator[tuple[int, int]]:
    """``[0, n)`` cut into :func:`n_groups` contiguous non-empty ranges, lazily."""
    g = n_groups(n, groups)
    for i in range(g):
        yield n * i // g, n * (i + 1) // g


def answer_text(reply: Reply, tokens: int) -> str:
    """A text answer's whole content: its structured-output JSON, else ``tokens`` words
    of prose. (Usage still reports the drawn ``tokens``: the quota is charged the
    profile's output, as for tool-call arguments.)"""
    return reply.text if reply.text is not None else text_of(0, tokens)


def answer_pieces(reply: Reply, tokens: int, groups: int) -> tuple[Iterator[str], int]:
    """A text answer cut into :func:`n_groups` stream deltas (lazily) and their count:
    the JSON by characters, prose by tokens."""
    if reply.text is None:
        return ((text_of(a, b) for a, b in split_even(tokens, groups)),
                n_groups(tokens, groups))
    text = reply.text
    return (text[a:b] for a, b in split_even(len(text), groups)), n_groups(len(text), groups)


def check_type(value: Any, types: type | tuple[type, ...], param: str, what: str) -> None:
    """Raise a 400 naming ``param`` unless ``value`` is of ``types`` (bools are not ints)."""
    t = type(value)
    # Fast path (this runs dozens of times per request): the exact type is expected.
    if t is types or (t in types if isinstance(types, tuple) else False):
        return
    ok = isinstance(value, types)
    if ok and t is bool:
        ok = bool in (types if isinstance(types, tuple) else (types,))
    if not ok:
        raise bad(param, f"expected {what}, got {json_kind(value)}")


def opt_positive_int(body: dict[str, Any], key: str) -> int | None:
    """``body[key]`` as a positive integer, None if absent or null; 400 otherwise."""
    return opt_int(body, key, 1)


def check_ranges(body: dict[str, Any], ranges: Iterable[tuple[str, float, float]]) -> None:
    """400 naming the field unless each present, non-null ``(key, lo, hi)`` of ``body``
    is a number in ``[lo, hi]``: the sampling parameters (temperature, top_p, penalties)
    the mock ignores but a provider validates, so a client bug shows here as it would
    there."""
    for key, lo, hi in ranges:
        v = body.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(key, f"expected a number, got {json_kind(v)}")
        if not lo <= v <= hi:
            raise bad(key, f"must be between {lo:g} and {hi:g}, got {v}")


def opt_int(body: dict[str, Any], key: str, lo: int | None = None,
            hi: int | None = None) -> int | None:
    """``body[key]`` as an integer in ``[lo, hi]`` (either bound optional), None if
    absent or null; 400 otherwise."""
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer() and not -2.0 ** 63 < v < 2.0 ** 64:
        # orjson reads an integer literal past 64 bits as a float (its digits lost):
        # "got a number" would deny the integer the client wrote.
        raise bad(key, f"must be a 64-bit integer, got a number past 64 bits ({v:.3g})")
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(key, f"expected an integer, got {json_kind(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        span = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else \
            f"between {lo} and {hi}"
        raise bad(key, f"must be {span}, got {v}")
    return v


def opt_strings(body: dict[str, Any], key: str, most: int | None, *,
                single: bool = False, item: str = "{key}[{i}]") -> None:
    """400 unless ``body[key]`` is absent, null, an array of at most ``most`` strings, or
    (``single``) one string: OpenAI's ``stop``, Anthropic's ``stop_sequences``. ``item``
    names an element as the API does (OpenAI ``stop[1]``, Anthropic ``stop_sequences.1``)."""
    v = body.get(key)
    if v is None or (single and isinstance(v, str)):
        return
    check_type(v, list, key, "a string or an array of strings" if single
               else "an array of strings")
    if most is not None and len(v) > most:
        raise bad(key, f"at most {most} sequences, got {len(v)}")
    for i, s in enumerate(v):
        check_type(s, str, item.format(key=key, i=i), "a string")


def opt_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    """``body[key]`` as a boolean (``default`` if absent or null); 400 otherwise."""
    v = body.get(key)
    if v is None:
        return default
    check_type(v, bool, key, "a boolean")
    return bool(v)
