"""Derived figures of a profile: what a turn costs and how fast a session spends quota."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from capacity._version import __version__
from capacity.analytic.model import CycleTime, cycle_time
from capacity.jsonsafe import clean as _clean
from capacity.model.workload import (
    TURN_SAMPLE_SEED,
    TURN_SAMPLE_SIZE,
    Workload,
    sample_turns,
    turn_sample_size,
)
from capacity.profile.schema import Profile


@dataclass(frozen=True)
class Spread:
    """Mean, standard deviation and 95th percentile of a per-turn quantity."""

    mean: float
    sd: float
    p95: float

    @classmethod
    def of(cls, x: np.ndarray) -> Spread:
        """Summarise a sample."""
        return cls(float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0,
                   float(np.quantile(x, 0.95)))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean(dict(self.__dict__))


@dataclass(frozen=True)
class TurnFigures:
    """Per-turn figures for one turn type (or ``all`` for the mix)."""

    turn: str
    share: float
    calls: Spread
    input_tokens: Spread
    output_tokens: Spread
    latency_s: Spread

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"turn": self.turn, "share": self.share, "calls": self.calls.to_dict(),
                "input_tokens": self.input_tokens.to_dict(),
                "output_tokens": self.output_tokens.to_dict(),
                "latency_s": self.latency_s.to_dict()}


@dataclass(frozen=True)
class SessionRate:
    """What one session spends on one constraint (units per minute) and its mean ceiling."""

    quota: str
    dimension: str
    unit: str
    units_per_turn: float
    per_session_per_minute: float
    limit: float
    mean_ceiling: float
    # A fleet's deployment fed by "spillover" or "fallback": its per-session spend is
    # what the fluid model sends it at its own mean ceiling (the load grows with N).
    fed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``fed_by`` only for a fed deployment's constraint)."""
        d = dict(self.__dict__)
        if d["fed_by"] is None:
            del d["fed_by"]
        return _clean(d)


@dataclass(frozen=True)
class ExplainResult:
    """Everything ``capacity explain`` prints."""

    profile: str
    turns: tuple[TurnFigures, ...]
    cycle: CycleTime
    rates: tuple[SessionRate, ...]
    sample_size: int
    version: str = __version__
    populations: dict[str, Any] | None = None  # what N counts (analytic.populations)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean({
            "version": self.version, "profile": self.profile,
            "turns": [t.to_dict() for t in self.turns], "cycle": self.cycle.to_dict(),
            "rates": [r.to_dict() for r in self.rates],
            "sample": {"turns": self.sample_size, "seed": TURN_SAMPLE_SEED},
            **({"populations": self.populations} if self.populations else {}),
        })


def explain(profile: Profile) -> ExplainResult:
    """Calls, tokens and latency per turn; cycle time; per-session spend per constraint.

    Spreads and percentiles come from a fixed-seed sample of turns; means of calls and
    charged units are exact (from the launch-event decomposition).
    """
    if profile.populations:
        return _explain_populations(profile)
    wl = Workload.from_profile(profile)
    figures = []
    rng = np.random.default_rng(TURN_SAMPLE_SEED)
    for t, calls in zip(wl.turns, wl.calls_per_turn_type(), strict=True):
        sub = Workload(profile, (t.__class__(t.name, 1.0, t.steps, t.events),), wl.constraints)
        # Fewer samples for turns of very many calls or mixes of very many turn types.
        n = turn_sample_size(calls * max(1, len(wl.turns) // 4), TURN_SAMPLE_SIZE // 4)
        s = sample_turns(sub, n, rng)
        figures.append(TurnFigures(t.name, t.probability, Spread.of(s.calls),
                                   Spread.of(s.units["input_tokens"]),
                                   Spread.of(s.units["output_tokens"]), Spread.of(s.latency)))
    s = wl.turn_sample
    if len(wl.turns) > 1:
        figures.append(TurnFigures("all", 1.0, Spread.of(s.calls),
                                   Spread.of(s.units["input_tokens"]),
                                   Spread.of(s.units["output_tokens"]), Spread.of(s.latency)))
    cyc = cycle_time(wl)
    fed: dict[str, float] = {}
    roles: dict[str, str] = {}
    if profile.routes:
        # A fleet: a deployment fed by spillover or fallback spends per session what the
        # fluid model sends it at its own mean ceiling (its load grows with N).
        from capacity.analytic.fleet import fed_entry, fleet_mean_ceilings, fleet_models

        fed = fleet_mean_ceilings(wl, cyc)
        roles = {e.c.name: "fallback" if e.role == "fallback" else "spillover"
                 for e in fleet_models(wl, cyc).entries if fed_entry(e)}
    rates = []
    for c in wl.constraints:
        v = wl.units_per_turn(c)
        if c.name in fed and math.isfinite(fed[c.name]) and fed[c.name] > 0:
            v = c.rate_per_s * cyc.cycle_s / fed[c.name]
        per_min = 60.0 * v / cyc.cycle_s
        ceiling = c.limit * 60.0 / c.period_s / per_min if per_min > 0 else math.inf
        rates.append(SessionRate(c.quota, c.dim, c.unit, v, per_min, c.limit, ceiling,
                                 roles.get(c.name)))
    return ExplainResult(profile.title, tuple(figures), cyc, tuple(rates),
                         int(wl.turn_sample.latency.size))


def _explain_populations(profile: Profile) -> ExplainResult:
    """:func:`explain` of a profile with populations: each population's turns (named
    ``population/turn`` beside ``session``'s), and per constraint the spend of one
    session of N (the share-weighted mix) and the mean-value ceiling in N with the held
    sessions beside it — the figures ``capacity ceiling`` uses."""
    from capacity.analytic.populations import population_info, view

    pv = view(profile)
    turns: list[TurnFigures] = []
    for part in pv.parts:
        sub = explain(part.profile)
        prefix = "" if part is pv.main else f"{part.name}/"
        turns += [dataclasses.replace(t, turn=prefix + t.turn) for t in sub.turns]
    rates = []
    for c in pv.constraints():
        per_s = pv.varying_rate(c)
        turn_rate = math.fsum((p.share or 0.0) / p.cycle.cycle_s for p in pv.parts)
        rates.append(SessionRate(c.quota, c.dim, c.unit,
                                 per_s / turn_rate if turn_rate > 0 else 0.0,
                                 60.0 * per_s, c.limit, pv.mean_ceiling(c)))
    return ExplainResult(profile.title, tuple(turns), pv.main.cycle, tuple(rates),
                         int(pv.main.wl.turn_sample.latency.size),
                         populations=population_info(pv))
