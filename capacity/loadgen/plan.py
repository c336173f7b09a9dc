"""Turns drawn from the profile, in distribution exactly as the simulator draws them.

A session repeats: draw a turn type from the mix, run its steps, pause. This module draws
the *plan* of one turn — a tree of sequential and parallel blocks whose leaves are calls
with their token counts — and the pauses; the session driver executes it. The rules are
the simulator's (:mod:`capacity.sim`, module docstring):

* turn type by weight; ``optional`` body with its probability; ``parallel``: ``count``
  copies launched together; ``repeat``: the body ``count`` times in sequence;
* per call: input tokens, output tokens (whole tokens, ``floor(x + 0.5)``), cached input
  ``floor(cached_input_fraction · input + 0.5)``, ``max_tokens`` (the call's or the model's);
* pause: ``think_time`` runs from the turn's end, ``cadence`` from its start (next start
  ``max(start + cadence, end)``); a session's first turn starts in steady state
  (:func:`capacity.model.workload.steady_phase`: a think-time session mid-turn with
  probability E[R]/(E[R]+E[Z]), else after an *equilibrium residual* of the pause).

Session populations (profiles with ``populations``): N is split by
:meth:`~capacity.profile.schema.Profile.split` and the sessions run in contiguous blocks
in split order (``session`` first, then the declared populations — the simulator's
layout, :func:`session_blocks`); a session draws its turns and pauses from its own
population's :class:`TurnSampler`, from streams keyed by (population, index within it)
(:func:`capacity.loadgen.driver.session_rngs`), so a held session draws the same at every
N and ``session``'s sessions draw what sessions drew before populations existed.

Latency (time to first token, tokens per second) is the endpoint's business, not drawn here.
Randomness comes from a passed-in :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from ..model.dist import Distribution
from ..model.workload import steady_phase
from ..profile.schema import (
    SESSION,
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
)

__all__ = ["CallPlan", "ParPlan", "SeqPlan", "TurnSampler", "draw", "draw_residual",
           "population_of", "session_blocks"]


@dataclass(slots=True)
class CallPlan:
    """One call of a drawn turn (tokens are whole numbers).

    ``model`` is the call's LOGICAL model (a route, deployment or model name);
    ``max_tokens`` the call's own or its model's default (for a routed call, the first
    deployment's: :meth:`Profile.max_tokens_for`); ``spec`` the profile's call, for the
    ``max_tokens`` of the deployment that serves it.
    """

    name: str
    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    max_tokens: int | None
    spec: CallSpec | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class SeqPlan:
    """Children run one after another."""

    children: list[CallPlan | SeqPlan | ParPlan] = field(default_factory=list)


@dataclass(slots=True)
class ParPlan:
    """Children launched at the same instant; the block ends when the last one ends."""

    children: list[CallPlan | SeqPlan | ParPlan] = field(default_factory=list)


Node = CallPlan | SeqPlan | ParPlan


def draw(d: Distribution, rng: np.random.Generator) -> float:
    """One draw of ``d`` (same parametrisation and integer rules as the simulator)."""
    k, p = d.kind, d.params
    if k == "fixed":
        return p[0]
    if k == "uniform":
        u = rng.random()
        if d.quantity == "count":
            return float(min(p[0] + math.floor(u * (p[1] - p[0] + 1.0)), p[1]))
        return p[0] + u * (p[1] - p[0])
    if k == "exponential":
        return -p[0] * math.log1p(-rng.random())
    if k == "lognormal":
        sigma = math.log(p[1] / p[0]) / _Z95
        return p[0] * math.exp(sigma * float(rng.standard_normal()))
    cum = list(accumulate(d.weights))
    u = rng.random() * cum[-1]
    i = min(bisect.bisect_right(cum, u), len(d.values) - 1)
    return d.values[i]


_Z95 = 1.6448536269514722


def draw_residual(d: Distribution, rng: np.random.Generator) -> float:
    """Equilibrium residual of ``d``: ``U · X_lb`` with ``X_lb`` length-biased (seconds).

    What an observer arriving at a random instant waits for the next renewal — the
    simulator's steady-state start of a session.
    """
    k, p = d.kind, d.params
    u = rng.random()
    if k == "fixed":
        return u * p[0]
    if k == "uniform":
        u1 = rng.random()
        return u * math.sqrt(p[0] ** 2 + u1 * (p[1] ** 2 - p[0] ** 2))
    if k == "exponential":
        return -p[0] * math.log1p(-u)  # memoryless
    if k == "lognormal":
        sigma = math.log(p[1] / p[0]) / _Z95
        # Length-biasing a lognormal shifts its log-mean by sigma².
        return u * p[0] * math.exp(sigma * sigma + sigma * float(rng.standard_normal()))
    w = [wi * vi for wi, vi in zip(d.weights, d.values, strict=True)]
    total = sum(w)
    if total <= 0:
        return 0.0
    cum = list(accumulate(w))
    i = min(bisect.bisect_right(cum, rng.random() * total), len(w) - 1)
    return u * d.values[i]


def session_blocks(profile: Profile, n: int) -> tuple[tuple[str, int], ...]:
    """(population, sessions) when N = ``n``, in the order of the sessions' contiguous
    blocks (:meth:`Profile.split` order, ``session`` first; the simulator's layout).
    Without populations: ``(("session", n),)``."""
    if not profile.populations:
        return ((SESSION, n),)
    return tuple(profile.split(n).items())


def population_of(blocks: Sequence[tuple[str, int]], k: int) -> tuple[str, int]:
    """(population, index within it) of session ``k`` of the blocks (a session past the
    last block belongs to ``session``: the profile without populations' only kind)."""
    j = k
    for name, count in blocks:
        if j < count:
            return name, j
        j -= count
    return SESSION, k


class TurnSampler:
    """Draws turns and pauses of one population of a profile (``session`` by default:
    without populations, the profile's only kind of session)."""

    def __init__(self, profile: Profile, population: str = SESSION) -> None:
        self.profile = profile
        self.population = population
        spec = profile.all_sessions()[population]
        self.turns = spec.turns
        self.turn_names = list(spec.turns)
        self._cum = list(accumulate(t.weight for t in spec.turns.values()))
        self.mode = spec.mode
        self.pause = spec.pause
        self._phase = steady_phase(spec, profile)

    def draw_turn(self, rng: np.random.Generator) -> tuple[str, SeqPlan]:
        """The next turn: its type name and plan."""
        u = rng.random() * self._cum[-1]
        i = min(bisect.bisect_right(self._cum, u), len(self._cum) - 1)
        name = self.turn_names[i]
        return name, self._seq(self.turns[name].steps, rng)

    def draw_pause(self, rng: np.random.Generator) -> float:
        """Think time or cadence (model seconds)."""
        return draw(self.pause, rng)

    def first_start(self, rng: np.random.Generator) -> float:
        """Delay before a session's first turn (model seconds): the steady-state start
        (THE rule, :func:`capacity.model.workload.steady_phase`: mid-turn with
        probability ``p_turn`` — what is left of the turn in progress, an equilibrium
        residual of the turn's law, then a whole pause — else an equilibrium residual of
        the pause)."""
        p_turn, _, turn_law = self._phase
        if p_turn > 0.0 and rng.random() < p_turn:
            return draw_residual(turn_law, rng) + draw(self.pause, rng)
        return draw_residual(self.pause, rng)

    def next_start(self, start: float, end: float, pause: float) -> float:
        """When the next turn starts (model seconds) given this one's start and end."""
        if self.mode == "think_time":
            return end + pause
        return max(start + pause, end)

    # -- the step tree -------------------------------------------------------------
    def _seq(self, steps: Sequence[object],
             rng: np.random.Generator) -> SeqPlan:
        seq = SeqPlan()
        for step in steps:
            node = self._step(step, rng)
            if node is not None:
                seq.children.append(node)
        return seq

    def _body(self, block: Block, rng: np.random.Generator) -> Node:
        if block.call is not None:
            return self._call(block.call, rng)
        return self._seq(block.steps or [], rng)

    def _step(self, step: object, rng: np.random.Generator) -> Node | None:
        if isinstance(step, CallStep):
            return self._call(step.call, rng)
        if isinstance(step, ParallelStep):
            n = int(draw(step.parallel.count, rng))
            return ParPlan([self._body(step.parallel, rng) for _ in range(n)])
        if isinstance(step, OptionalStep):
            if rng.random() < step.optional.probability:
                return self._body(step.optional, rng)
            return None
        if isinstance(step, RepeatStep):
            n = int(draw(step.repeat.count, rng))
            return SeqPlan([self._body(step.repeat, rng) for _ in range(n)])
        raise TypeError(f"unknown step {step!r}")  # pragma: no cover - validated profile

    def _call(self, call: CallSpec, rng: np.random.Generator) -> CallPlan:
        tin = math.floor(draw(call.input_tokens, rng) + 0.5)
        tout = math.floor(draw(call.output_tokens, rng) + 0.5)
        return CallPlan(
            name=call.name or call.model, model=call.model, input_tokens=tin,
            cached_tokens=math.floor(call.cached_input_fraction * tin + 0.5),
            output_tokens=tout, max_tokens=self.profile.max_tokens_for(call), spec=call)


def iter_calls(node: Node) -> list[CallPlan]:
    """The calls of a plan, depth first."""
    if isinstance(node, CallPlan):
        return [node]
    out: list[CallPlan] = []
    for c in node.children:
        out.extend(iter_calls(c))
    return out
