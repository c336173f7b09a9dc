"""Request logs generated from a profile: what an unthrottled agent would log.

Walks each session's turns through the profile's steps in pure Python with a seeded
``numpy.random.Generator`` — no quota, no 429s, no retries — and yields one
:class:`~capacity.fit.jsonl.CallRecord` per call, named after the profile's call ``name``
(or its model). The semantics are the simulator's (:mod:`capacity.sim.engine`): a call
lasts ``ttft + min(output, max_tokens) / tokens_per_second``; a ``parallel`` block
launches its copies at one instant and ends with the last; ``repeat`` runs its body in
sequence; think time starts when a turn ends, a cadence runs from turn start to turn
start (a late turn delays the next). Token counts are rounded to whole tokens.

It is the source of the round-trip test (profile -> log -> ``capacity fit`` -> profile)
and of the README's fit-report picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from capacity.model.dist import Distribution
from capacity.profile.schema import (
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    Step,
)

from .jsonl import CallRecord

EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where synthetic logs start, in Unix seconds."""


class _Walker:
    def __init__(self, profile: Profile, rng: np.random.Generator) -> None:
        self.p, self.rng = profile, rng
        self.out: list[CallRecord] = []

    def draw(self, d: Distribution) -> float:
        return float(d.sample(self.rng, 1)[0])

    def steps(self, steps: list[Step] | tuple[Step, ...], t: float, ids: tuple[str, str]) -> float:
        for step in steps:
            if isinstance(step, CallStep):
                t = self.call(step.call, t, ids)
            elif isinstance(step, ParallelStep):
                n = round(self.draw(step.parallel.count))
                t = max((self.block(step.parallel, t, ids) for _ in range(n)), default=t)
            elif isinstance(step, OptionalStep):
                if self.rng.random() < step.optional.probability:
                    t = self.block(step.optional, t, ids)
            elif isinstance(step, RepeatStep):
                for _ in range(round(self.draw(step.repeat.count))):
                    t = self.block(step.repeat, t, ids)
        return t

    def block(self, block: Block, t: float, ids: tuple[str, str]) -> float:
        return self.steps(block.body, t, ids)

    def call(self, call: CallSpec, t: float, ids: tuple[str, str]) -> float:
        # Unthrottled traces: a routed call is served by its route's first deployment
        # (the one a priority route tries first; a weighted route's first is as good).
        target = self.p.route_targets(call.model)[0][0]
        model = self.p.model_of(target)
        mt = self.p.max_tokens_for(call, target)
        inp = round(self.draw(call.input_tokens))
        out = round(self.draw(call.output_tokens))
        if mt is not None:
            out = min(out, mt)
        ttft = self.draw(model.ttft)
        dur = ttft + out / self.draw(model.tokens_per_second)
        self.out.append(CallRecord(
            session=ids[0], turn=ids[1], start=EPOCH + t, end=EPOCH + t + dur,
            model=call.model, input_tokens=inp, output_tokens=out,
            cached_input_tokens=round(inp * call.cached_input_fraction), max_tokens=mt,
            name=call.name or call.model, ttft=ttft))
        return t + dur


def synth_log(profile: Profile, sessions: int, turns_per_session: int,
              rng: np.random.Generator) -> Iterator[CallRecord]:
    """Yield the calls of ``sessions`` sessions of ``turns_per_session`` turns each.

    Sessions start at uniform offsets over one mean pause (so they are not in phase);
    records come session by session, each session's calls in start order. The sessions
    are of the main population (``session``); other ``populations`` are not drawn.
    """
    names = list(profile.session.turns)
    weights = np.array([t.weight for t in profile.session.turns.values()], dtype=np.float64)
    weights /= weights.sum()
    pause = profile.session.pause
    cadence = profile.session.mode == "cadence"
    spread = pause.mean if math.isfinite(pause.mean) and pause.mean > 0 else 60.0
    for s in range(sessions):
        walker = _Walker(profile, rng)
        t = float(rng.uniform(0.0, spread))
        for j in range(turns_per_session):
            turn = profile.session.turns[names[int(rng.choice(len(names), p=weights))]]
            end = walker.steps(turn.steps, t, (f"s{s}", str(j)))
            gap = walker.draw(pause)
            t = max(t + gap, end) if cadence else end + gap
        walker.out.sort(key=lambda r: r.start)
        yield from walker.out
