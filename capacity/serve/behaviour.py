"""How the mock model behaves: latency, token counts and generated text, from the profile.

For a request to model ``m`` the mock draws, with the server's seeded generator:

* which of the profile's calls to ``m`` this request stands for (weighted by the turn
  type's weight), and from that call its ``output_tokens`` (cut at the request's
  ``max_tokens``, else the call's / model's, floor 1) and ``cached_input_fraction``;
* the model's ``ttft`` (seconds) and ``tokens_per_second``.

A model the profile declares but no call uses generates :data:`DEFAULT_OUTPUT_TOKENS`.
The response takes ``ttft + output_tokens / tokens_per_second`` model seconds (divided by
the time scale on the wall clock).

Prompt tokens are estimated as ``ceil(len(request body in bytes) / 4)``: the
characters-over-four rule of thumb (OpenAI: "estimated number of tokens based on the
character count of your request"), applied to the whole body so that tool definitions
and message framing count too, and free to compute (no tokenizer, no second walk over
the messages). Cached prompt tokens are that estimate times the drawn call's
``cached_input_fraction``.

Hint headers (:func:`read_hints`): a client that knows which call of the profile a
request stands for — ``capacity loadtest`` draws every call as the simulator does — may
send ``x-capacity-output-tokens``, ``x-capacity-input-tokens`` and
``x-capacity-cached-tokens`` (whole tokens). When present they replace the draws and
estimates above (output still cut at ``max_tokens``), for latency, ``usage`` and the
quota charge alike: the mock then times and charges the request exactly as the simulator
does, and a retry of it carries the same tokens (a fresh draw per attempt would let a
large request refused for its size slip in on a smaller redraw). Real clients never send
them and get the draws.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from capacity.model.dist import Distribution
from capacity.profile.schema import (
    Block,
    CallSpec,
    CallStep,
    ParallelStep,
    Profile,
    Step,
    serving,
)

__all__ = ["DEFAULT_OUTPUT_TOKENS", "HINT_HEADERS", "Hints", "ModelBehaviour", "Plan",
           "estimate_prompt_tokens", "read_hints", "text_of"]

DEFAULT_OUTPUT_TOKENS = 64
"""Output tokens of a model that no call of the profile uses."""


def estimate_prompt_tokens(body_bytes: int) -> int:
    """Prompt tokens of a request whose body is ``body_bytes`` long: ``ceil(bytes / 4)``."""
    return max(1, math.ceil(body_bytes / 4))


HINT_HEADERS = ("x-capacity-input-tokens", "x-capacity-cached-tokens",
                "x-capacity-output-tokens")
"""Optional request headers naming the call's tokens (see the module docstring)."""

_MAX_HINT = 100_000_000  # no request is this large; bigger is a client bug, not a size


@dataclass(frozen=True, slots=True)
class Hints:
    """Token counts a request's hint headers named (None: header absent)."""

    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None


def read_hints(headers: Mapping[str, str]) -> Hints:
    """The hint headers of a request; raises the 400 naming the header when one is not a
    whole number of tokens in ``[0, 10^8]`` or the cached tokens exceed the input tokens."""
    from capacity.serve.errors import bad

    values: list[int | None] = []
    for name in HINT_HEADERS:
        raw = headers.get(name)
        if raw is None:
            values.append(None)
            continue
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or int(text) > _MAX_HINT:
            raise bad(name, f"expected a whole number of tokens from 0 to {_MAX_HINT}, "
                            f"got {raw[:40]!r}")
        values.append(int(text))
    inp, cached, out = values
    if inp is not None and cached is not None and cached > inp:
        raise bad("x-capacity-cached-tokens", f"{cached} cached tokens exceed the "
                  f"{inp} input tokens of x-capacity-input-tokens")
    return Hints(inp, cached, out)


# Generated text: one word per token, so usage and text agree in a way a reader can check.
_WORDS = ("The", " mock", " model", " answers", " with", " text", " shaped", " by",
          " the", " profile", ",", " one", " word", " per", " token", ".")
_MAX_TEXT_TOKENS = 65536
_TEXT: str = ""
_OFFSETS: list[int] = [0]


def _build_text() -> None:
    global _TEXT
    parts = []
    pos = 0
    for i in range(_MAX_TEXT_TOKENS):
        w = _WORDS[i % len(_WORDS)]
        parts.append(w)
        pos += len(w)
        _OFFSETS.append(pos)
    _TEXT = "".join(parts)


_build_text()


def text_of(start: int, stop: int) -> str:
    """The generated text between token ``start`` and token ``stop`` (0-based, exclusive);
    texts longer than 65,536 tokens repeat."""
    if stop <= start:
        return ""
    if stop <= _MAX_TEXT_TOKENS:
        return _TEXT[_OFFSETS[start]:_OFFSETS[stop]]
    return "".join(text_of(a % _MAX_TEXT_TOKENS, a % _MAX_TEXT_TOKENS + min(
        stop - a, _MAX_TEXT_TOKENS - a % _MAX_TEXT_TOKENS)) for a in _chunks(start, stop))


def _chunks(start: int, stop: int) -> Iterator[int]:
    a = start
    while a < stop:
        yield a
        a += _MAX_TEXT_TOKENS - a % _MAX_TEXT_TOKENS


@dataclass(frozen=True, slots=True)
class Plan:
    """One response's drawn behaviour.

    Attributes
    ----------
    output_tokens : completion tokens (≥ 1, already cut at max_tokens).
    truncated : True when max_tokens cut the draw (finish_reason ``length``).
    ttft_s : model seconds to the first token.
    tokens_per_second : output tokens generated per model second.
    cached_fraction : share of the prompt served from the provider's cache.
    tool_calls : how many tool calls a tool-call answer carries (≥ 1).
    """

    output_tokens: int
    truncated: bool
    ttft_s: float
    tokens_per_second: float
    cached_fraction: float
    tool_calls: int

    @property
    def generation_s(self) -> float:
        """Model seconds from the first token to the last."""
        return self.output_tokens / self.tokens_per_second

    @property
    def total_s(self) -> float:
        """Model seconds from arrival to the last token."""
        return self.ttft_s + self.generation_s


def _walk(steps: list[Step] | tuple[Step, ...], weight: float,
          calls: list[tuple[CallSpec, float]], fanouts: list[tuple[str, Distribution]]) -> None:
    for step in steps:
        if isinstance(step, CallStep):
            calls.append((step.call, weight))
            continue
        block: Block = next(getattr(step, k) for k in ("parallel", "optional", "repeat")
                            if hasattr(step, k))
        if isinstance(step, ParallelStep):
            for c, _ in _calls_in(block.body):
                fanouts.append((c.model, step.parallel.count))
        _walk(block.body, weight, calls, fanouts)


def _calls_in(steps: tuple[Step, ...]) -> list[tuple[CallSpec, float]]:
    out: list[tuple[CallSpec, float]] = []
    _walk(steps, 1.0, out, [])
    return out


class ModelBehaviour:
    """Draws a :class:`Plan` for requests to one of the profile's models.

    Parameters
    ----------
    profile : the profile.
    model : a key of ``profile.models`` or of ``profile.deployments`` (its model's
        latency; the calls it stands for are those whose logical model it may serve,
        fallbacks included — :func:`capacity.profile.schema.serving`).
    tool_calls : calls per tool-call answer; ``None`` takes the profile's fan-out (the
        ``count`` of a ``parallel`` step calling this model), else 1.
    """

    def __init__(self, profile: Profile, model: str, tool_calls: int | None = None) -> None:
        spec = profile.model_of(model)
        self.model = model
        self.ttft = spec.ttft
        self.tps = spec.tokens_per_second
        self.default_max_tokens = spec.max_tokens
        calls: list[tuple[CallSpec, float]] = []
        fanouts: list[tuple[str, Distribution]] = []
        for turn in profile.session.turns.values():
            _walk(turn.steps, turn.weight, calls, fanouts)
        served: dict[str, bool] = {}

        def serves(logical: str) -> bool:
            # Unrouted profiles: a call to m is served by m alone (serving() == [m]).
            if logical not in served:
                served[logical] = model in serving(profile, logical)
            return served[logical]

        mine = [(c, w) for c, w in calls if serves(c.model)]
        self.calls = tuple(c for c, _ in mine)
        w = np.array([w for _, w in mine], dtype=np.float64)
        self.weights = w / w.sum() if len(w) else w
        self.max_tokens = tuple(profile.max_tokens_for(c, model) for c in self.calls)
        self.fixed_tool_calls = tool_calls
        self.fanout = next((d for m, d in fanouts if serves(m)), None)

    def plan(self, rng: np.random.Generator, max_tokens: int | None,
             output_tokens: int | None = None) -> Plan:
        """Draw one response's behaviour (``max_tokens``: the request's, if it sent one;
        ``output_tokens``: a hint that replaces the draw of the call and its output)."""
        cached = 0.0
        call_cap: int | None = self.default_max_tokens
        if output_tokens is not None:
            drawn = float(output_tokens)
        elif self.calls:
            i = int(rng.choice(len(self.calls), p=self.weights)) if len(self.calls) > 1 else 0
            call = self.calls[i]
            drawn = float(call.output_tokens.sample(rng, 1)[0])
            cached = call.cached_input_fraction
            call_cap = self.max_tokens[i]
        else:
            drawn = float(DEFAULT_OUTPUT_TOKENS)
        cap = max_tokens if max_tokens is not None else call_cap
        n = max(1, round(drawn))
        truncated = cap is not None and n > cap
        if cap is not None:
            n = max(1, min(n, cap))
        ttft = max(0.0, float(self.ttft.sample(rng, 1)[0]))
        tps = max(1e-6, float(self.tps.sample(rng, 1)[0]))
        if self.fixed_tool_calls is not None:
            k = self.fixed_tool_calls
        elif self.fanout is not None:
            k = max(1, round(float(self.fanout.sample(rng, 1)[0])))
        else:
            k = 1
        return Plan(n, truncated, ttft, tps, cached, max(1, k))
