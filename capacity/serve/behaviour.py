"""How the mock model behaves: latency, token counts and generated text, from the profile.

For a request to model ``m`` the mock draws, with the server's seeded generator:

* which of the profile's calls to ``m`` this request stands for (weighted by the turn
  type's weight), and from that call its ``output_tokens`` (cut at the request's
  ``max_tokens``, else the call's / model's, floor 1) and ``cached_input_fraction``;
* the model's ``ttft`` (seconds) and ``tokens_per_second``.

A model the profile declares but no call uses generates :data:`DEFAULT_OUTPUT_TOKENS`.
The response takes ``ttft + output_tokens / tokens_per_second`` model seconds (divided by
the time scale on the wall clock).

Prompt tokens are estimated as ``ceil(bytes / 4)`` of the request's prompt-bearing
fields re-serialised as compact JSON (:func:`capacity.serve.wire.estimate_prompt_tokens`:
the characters-over-four rule of thumb over messages, system text, tools and output
schema, not over the body's layout or its other fields). Cached prompt tokens are that
estimate times the drawn call's ``cached_input_fraction``.

Hint headers (:func:`read_hints`): a client that knows which call of the profile a
request stands for — ``capacity loadtest`` draws every call as the simulator does — may
send ``x-capacity-output-tokens``, ``x-capacity-input-tokens`` and
``x-capacity-cached-tokens`` (whole tokens). When present they replace the draws and
estimates above (output still cut at ``max_tokens``), for latency, ``usage`` and the
quota charge alike: the mock then times and charges the request exactly as the simulator
does, and a retry of it carries the same tokens (a fresh draw per attempt would let a
large request refused for its size slip in on a smaller redraw). Real clients never send
them and get the draws.

Session populations (profiles with ``populations``): the calls a model stands for are
those of every population's turns. Without a hint, a request's call is drawn with
weight its expected call rate: a call of turn type ``t`` of population ``p`` weighs
``n_p(N_ref) / C_p · w_t / Σ_p w · m``, the rate at which that population starts turns of
that type times the call's expected count in one (``m``: the product of the enclosing
``parallel``/``repeat`` counts' means and ``optional`` probabilities) — so the mix is
each call's share of the calls (the simulator's ``call_share``) at that operating point;
``n_p(N_ref)`` is the population's sessions when N is the profile's mean-value ceiling
``N_ref`` (:meth:`capacity.analytic.populations.PopulationView.mean_ceiling`, the least
over the constraints; the held populations at their counts), ``C_p`` its mean cycle
(s). That is the load a capacity test is about. When that ceiling is not finite (no
constraint binds) or gives this model's calls no weight (N_ref = 0 and only the varying
populations call it), every population counts one session (``1 / C_p``). A profile
without populations keeps the turn weights alone.
With the ``x-capacity-population`` header (what ``capacity loadtest`` sends for such a
profile) the call is found in that population's turns — the ones named by
``x-capacity-call`` if any there has that name, else any of that population's calls to
the model — and its fan-out (tool calls per answer) is that population's; an unknown
population is a 400 naming the header.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np

from capacity.model.dist import Distribution
from capacity.model.quota import output_cap
from capacity.profile.schema import (
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    SessionSpec,
    Step,
    serving,
)

__all__ = ["DEFAULT_OUTPUT_TOKENS", "HINT_HEADERS", "Hints", "ModelBehaviour", "Plan",
           "population_rates", "read_hints", "text_of"]

DEFAULT_OUTPUT_TOKENS = 64
"""Output tokens of a model that no call of the profile uses."""


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
    population: str | None = None  # x-capacity-population (cut at 200 characters)
    call: str | None = None  # x-capacity-call


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
    pop, call = headers.get("x-capacity-population"), headers.get("x-capacity-call")
    return Hints(inp, cached, out, None if pop is None else pop.strip()[:200],
                 None if call is None else call.strip()[:200])


# Generated text: one word per token, so usage and text agree in a way a reader can check.
# Every sentence starts " The" ("token. The", not "token.The", also where the text
# repeats); the answer's first token drops the space.
_WORDS = (" The", " mock", " model", " answers", " with", " text", " shaped", " by",
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
    text = _TEXT[_OFFSETS[start]:_OFFSETS[stop]] if stop <= _MAX_TEXT_TOKENS else "".join(
        _TEXT[_OFFSETS[a % _MAX_TEXT_TOKENS]:_OFFSETS[
            a % _MAX_TEXT_TOKENS + min(stop - a, _MAX_TEXT_TOKENS - a % _MAX_TEXT_TOKENS)]]
        for a in _chunks(start, stop))
    return text[1:] if start == 0 else text


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
    more : the plans of choices 1..n−1 of a request asking for ``n`` choices (OpenAI
        chat's ``n``), each drawn as this one; only their ``output_tokens``,
        ``truncated`` and ``tool_calls`` are read (the answer's latency and cache are
        this plan's). Empty for one choice.
    """

    output_tokens: int
    truncated: bool
    ttft_s: float
    tokens_per_second: float
    cached_fraction: float
    tool_calls: int
    more: tuple[Plan, ...] = ()

    @property
    def total_output_tokens(self) -> int:
        """Completion tokens of every choice: what usage reports and the quota is charged."""
        return self.output_tokens + sum(p.output_tokens for p in self.more)

    @property
    def generation_s(self) -> float:
        """Model seconds from the first token to the last (choices are generated side by
        side: the longest one's)."""
        longest = max((self.output_tokens, *(p.output_tokens for p in self.more)))
        return longest / self.tokens_per_second

    @property
    def total_s(self) -> float:
        """Model seconds from arrival to the last token."""
        return self.ttft_s + self.generation_s


def population_rates(profile: Profile) -> dict[str, float]:
    """Turns per second each population starts at the operating point of the module
    docstring (``n_p(N_ref) / C_p``; one session each when that gives no rate), by
    population; ``{"session": 1.0}`` for a profile without populations (its turn weights
    alone)."""
    from capacity.analytic.populations import view
    from capacity.errors import CapacityError

    if not profile.populations:
        return {"session": 1.0}
    try:
        pv = view(profile)
        cons = [c for c in pv.constraints() if pv.touches(c)]
        n_ref = min((pv.mean_ceiling(c) for c in cons), default=math.inf)
        cycles = {p.name: p.cycle.cycle_s for p in pv.parts}
    except CapacityError:
        return dict.fromkeys(profile.all_sessions(), 1.0)
    if not math.isfinite(n_ref):
        return {k: 1.0 / c for k, c in cycles.items()}
    counts = profile.split(math.floor(n_ref))
    return {k: counts[k] / c for k, c in cycles.items()}


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


def _walk_rates(steps: list[Step] | tuple[Step, ...], weight: float,
                calls: list[tuple[CallSpec, float]]) -> None:
    """Every call of ``steps`` with ``weight`` × its expected count per run of them."""
    for step in steps:
        if isinstance(step, CallStep):
            calls.append((step.call, weight))
            continue
        if isinstance(step, ParallelStep):
            _walk_rates(step.parallel.body, weight * step.parallel.count.mean, calls)
        elif isinstance(step, OptionalStep):
            _walk_rates(step.optional.body, weight * step.optional.probability, calls)
        elif isinstance(step, RepeatStep):
            _walk_rates(step.repeat.body, weight * step.repeat.count.mean, calls)


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
        mspec = profile.model_of(model)
        self.profile = profile
        self.model = model
        self.ttft = mspec.ttft
        self.tps = mspec.tokens_per_second
        served: dict[str, bool] = {}

        def serves(logical: str) -> bool:
            # Unrouted profiles: a call to m is served by m alone (serving() == [m]).
            if logical not in served:
                served[logical] = model in serving(profile, logical)
            return served[logical]

        # Per population (``session`` alone without populations): its calls to this
        # model with their turn weights, and its first fan-out.
        mine: list[tuple[CallSpec, float, str]] = []
        pop_fanout: dict[str, Distribution | None] = {}
        pops: dict[str, SessionSpec] = (profile.all_sessions() if profile.populations
                                        else {"session": profile.session})
        for pop, spec in pops.items():
            calls: list[tuple[CallSpec, float]] = []
            fanouts: list[tuple[str, Distribution]] = []
            for turn in spec.turns.values():
                if profile.populations:  # weights: expected calls (module docstring)
                    _walk(turn.steps, turn.weight, [], fanouts)
                    _walk_rates(turn.steps, turn.weight, calls)
                else:
                    _walk(turn.steps, turn.weight, calls, fanouts)
            mine += [(c, w, pop) for c, w in calls if serves(c.model)]
            pop_fanout[pop] = next((d for m, d in fanouts if serves(m)), None)
        self.calls = tuple(c for c, _, _ in mine)
        self.populations = tuple(p for _, _, p in mine)
        if profile.populations and mine:
            # Turn rate × turn share (module docstring); one session each when the
            # operating point gives this model's calls no weight.
            total = {p: math.fsum(t.weight for t in spec.turns.values())
                     for p, spec in pops.items()}
            for rates in (population_rates(profile), None):
                if rates is None:
                    from capacity.analytic.populations import view

                    rates = {q.name: 1.0 / q.cycle.cycle_s for q in view(profile).parts}
                w = np.array([rates[p] * wt / total[p] for _, wt, p in mine],
                             dtype=np.float64)
                if w.sum() > 0:
                    break
        else:
            w = np.array([w for _, w, _ in mine], dtype=np.float64)
        self.weights = w / w.sum() if len(w) else w
        self.max_tokens = tuple(profile.max_tokens_for(c, model) for c in self.calls)
        self.fixed_tool_calls = tool_calls
        self.fanout = next((d for d in pop_fanout.values() if d is not None), None)
        self.pop_fanout = pop_fanout
        # Hinted lookups: (population, call name or None) -> (call indices, weights).
        self._subsets: dict[tuple[str, str | None], tuple[np.ndarray, np.ndarray] | None] = {}

    def _subset(self, population: str, call: str | None
                ) -> tuple[np.ndarray, np.ndarray] | None:
        """This model's calls of ``population``'s turns (named ``call`` when any there
        is), with their turn weights normalised; None when the population has none."""
        key = (population, call)
        if key not in self._subsets:
            idx = [i for i, p in enumerate(self.populations) if p == population]
            named = [i for i in idx if self.calls[i].name == call or (
                self.calls[i].name is None and self.calls[i].model == call)]
            pick = named or idx
            if not pick:
                self._subsets[key] = None
            else:
                w = self.weights[pick]
                w = w / w.sum() if w.sum() > 0 else np.full(len(pick), 1.0 / len(pick))
                self._subsets[key] = (np.asarray(pick, dtype=np.int64), w)
        return self._subsets[key]

    def find(self, population: str, call: str | None = None) -> CallSpec | None:
        """The profile call a request hinted with ``population`` (and ``call``) stands
        for, when that is one call; the first of them otherwise (None: the population
        has no call to this model)."""
        sub = self._subset(population, call)
        return None if sub is None else self.calls[int(sub[0][0])]

    def plan(self, rng: np.random.Generator, max_tokens: int | None,
             output_tokens: int | None = None, population: str | None = None,
             call_name: str | None = None, choices: int = 1) -> Plan:
        """Draw one response's behaviour (``max_tokens``: the request's, if it sent one;
        ``output_tokens``: a hint that replaces the draw of the call's output;
        ``population`` / ``call_name``: hints that restrict the call to that population's
        turns, and that name — see the module docstring; ``choices``: OpenAI's ``n``,
        each further choice drawn after the first as its own plan, :attr:`Plan.more`)."""
        first = self._plan(rng, max_tokens, output_tokens, population, call_name)
        if choices == 1:
            return first
        return replace(first, more=tuple(
            self._plan(rng, max_tokens, output_tokens, population, call_name)
            for _ in range(choices - 1)))

    def _plan(self, rng: np.random.Generator, max_tokens: int | None,
              output_tokens: int | None, population: str | None,
              call_name: str | None) -> Plan:
        """One choice's draw (:meth:`plan`)."""
        cached = 0.0
        call_cap: int | None = None
        sub = self._subset(population, call_name) if population is not None else None
        fanout = self.fanout
        if sub is not None:
            fanout = self.pop_fanout.get(population or "")  # none there: one tool call
            # The hinted population's call: its cap and cached share; its output drawn
            # unless hinted too.
            j = int(rng.choice(len(sub[0]), p=sub[1])) if len(sub[0]) > 1 else 0
            i = int(sub[0][j])
            call = self.calls[i]
            drawn = (float(output_tokens) if output_tokens is not None
                     else float(call.output_tokens.sample(rng, 1)[0]))
            cached = call.cached_input_fraction
            call_cap = self.max_tokens[i]
        elif output_tokens is not None:
            drawn = float(output_tokens)
        elif self.calls:
            i = int(rng.choice(len(self.calls), p=self.weights)) if len(self.calls) > 1 else 0
            call = self.calls[i]
            drawn = float(call.output_tokens.sample(rng, 1)[0])
            cached = call.cached_input_fraction
            call_cap = self.max_tokens[i]
        else:
            drawn = float(DEFAULT_OUTPUT_TOKENS)
        n = max(1, round(drawn))
        if max_tokens is None and call_cap is not None:
            # The profile's law of the call's output is cut at the call's own cap (the
            # simulator's rule; a load generator sends that cap as max_tokens).
            n = min(n, call_cap)
        # finish_reason "length" only where the request's cap cuts: its max_tokens, else
        # the model's default — the cap the quota reserves (one rule, quota.output_cap),
        # so what is generated and what is charged agree (a request without max_tokens
        # had been cut at its call's 50 with "length" while 4,096 was reserved).
        cap = output_cap(self.profile, self.model, max_tokens)
        truncated = cap is not None and n > cap
        if cap is not None:
            n = max(1, min(n, int(cap)))
        ttft = max(0.0, float(self.ttft.sample(rng, 1)[0]))
        tps = max(1e-6, float(self.tps.sample(rng, 1)[0]))
        if self.fixed_tool_calls is not None:
            k = self.fixed_tool_calls
        elif fanout is not None:
            k = max(1, round(float(fanout.sample(rng, 1)[0])))
        else:
            k = 1
        return Plan(n, truncated, ttft, tps, cached, max(1, k))
