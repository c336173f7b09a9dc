"""Raw measurements of a load test and the metrics computed from them.

The metric names and definitions are the simulator's (:data:`capacity.sim.METRICS`), so a
measured point and a simulated one compare key by key: per-turn and per-call figures are
over the turns that *start* in the measured interval ``[warmup, warmup + duration)``
(model seconds) and their calls; rates count events inside that interval. A few measured
extras have no simulated twin (``goodput_tokens_per_min``, ``sessions_in_turn_mean``,
``calls_in_flight_mean``).

Records are plain tuples of numbers so that shards (processes, Locust workers) can ship
them to the process that summarises them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EXTRA_METRICS", "ROUTED_METRICS", "LagStats", "Recorder", "TurnRecord", "summarise",
           "summarise_populations", "summarise_routing"]

EXTRA_METRICS: dict[str, str] = {
    "goodput_tokens_per_min": "prompt + completion tokens of successful calls per minute "
                              "(from the endpoint's usage)",
    "sessions_in_turn_mean": "sessions inside a turn, time average",
    "calls_in_flight_mean": "calls in flight (sent, not yet answered), time average",
}
"""Measured metrics the simulator does not report."""

ROUTED_METRICS: dict[str, str] = {
    "sends_per_attempt": "requests sent per client attempt (1 + spills)",
    "spill_fraction": "fraction of the requests sent that spilled to another deployment",
    "fallback_fraction": "fraction of calls that fell back to another logical model",
    "unavailable_fraction": "fraction of client attempts that found no deployment "
                            "available (all cooling down)",
}
"""Measured metrics of routed profiles only (with counts ``sends``, ``spills``,
``fallbacks`` and ``unavailable``): the simulator's :data:`capacity.sim.engine.
ROUTING_METRICS`, same names and rules."""


@dataclass(slots=True)
class TurnRecord:
    """One turn as it happened (times in model seconds since the run's origin)."""

    start: float
    end: float
    calls: int = 0
    attempts: int = 0
    rejected: int = 0
    calls_failed: int = 0
    pace_wait: float = 0.0
    failed: bool = False
    # For --log: the session and turn numbers, and the turn's calls as request-log lines
    # (None when not logging); written only once the turn has ended.
    session: int = 0
    turn: int = 0
    calls_log: list[dict[str, Any]] | None = None
    # Routed profiles only: the turn's draw for sticky routing, the session's routing
    # generator, and per deployment [sent, admitted, rejected, spilled, fell_back] (see
    # Recorder.routing).
    turn_u: float = 0.0
    route_rng: Any = None
    deps: dict[str, list[int]] | None = None
    # Profiles with populations: the session's population (None without).
    population: str | None = None

    def dep(self, name: str) -> list[int]:
        """The per-deployment counters of this turn (created on first use)."""
        if self.deps is None:
            self.deps = {}
        c = self.deps.get(name)
        if c is None:
            c = self.deps[name] = [0, 0, 0, 0, 0]
        return c

    def as_tuple(self) -> tuple[float, float, int, int, int, int, float, bool]:
        return (self.start, self.end, self.calls, self.attempts, self.rejected,
                self.calls_failed, self.pace_wait, self.failed)


@dataclass
class Recorder:
    """Collects what one shard of the run observed.

    ``turns``: finished turns; ``open_turns``: turns started and not finished when the
    run stopped (start times); ``successes``: (completion time, tokens) of successful
    calls; ``occupancy``: (time, sessions in a turn, calls in flight) samples; ``lag``:
    event-loop lag samples (wall seconds) taken inside the measured interval.
    """

    turns: list[tuple[float, float, int, int, int, int, float, bool]] = field(
        default_factory=list)
    open_turns: list[float] = field(default_factory=list)
    successes: list[tuple[float, int]] = field(default_factory=list)
    occupancy: list[tuple[float, int, int]] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    usage_mismatch: int = 0
    # Agent mode: the LLM endpoint's own counters over the measured interval.
    llm: dict[str, float] = field(default_factory=dict)
    # --log: one request-log line per call of every ended turn (capacity.fit.jsonl keys).
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Turns ended in each shard merged in (a process, a Locust worker), in merge order.
    shard_turns: list[int] = field(default_factory=list)
    # Occupancy samples of each shard merged in, in merge order: the shards sample apart,
    # so their means add (empty: one shard, this recorder's own samples).
    shard_occupancy: list[int] = field(default_factory=list)
    # Routed profiles: per ended turn and deployment, (turn start, deployment, sent,
    # admitted, rejected, spilled, fell_back): attempts sent to it, admitted, 429s the
    # client saw from it (the last one tried in a round), 429s it spilled from (the call
    # went to the next deployment at once), and of its rejections those after which the
    # call fell back to another logical model. Deployment "": the rounds that found no
    # deployment available (as "rejected") and the fallbacks that followed them.
    routing: list[tuple[float, str, int, int, int, int, int]] = field(default_factory=list)
    # Profiles with populations: the population of each ended turn, parallel to ``turns``
    # (empty without populations).
    turn_populations: list[str] = field(default_factory=list)

    def merge(self, other: Recorder | dict[str, Any]) -> None:
        """Add another shard's records (a Recorder or its :meth:`to_wire` form)."""
        o = other if isinstance(other, Recorder) else Recorder.from_wire(other)
        self.shard_turns.append(len(o.turns))
        self.turns.extend(o.turns)
        self.open_turns.extend(o.open_turns)
        self.successes.extend(o.successes)
        if self.occupancy and not self.shard_occupancy:
            self.shard_occupancy.append(len(self.occupancy))  # samples of its own
        self.shard_occupancy.extend(o.shard_occupancy or [len(o.occupancy)])
        self.occupancy.extend(o.occupancy)
        self.lag.extend(o.lag)
        self.usage_mismatch += o.usage_mismatch
        for k, v in o.llm.items():
            self.llm[k] = self.llm.get(k, 0.0) + v
        self.calls.extend(o.calls)
        self.routing.extend(o.routing)
        self.turn_populations.extend(o.turn_populations)

    def to_wire(self) -> dict[str, Any]:
        """JSON/pickle-friendly form."""
        return {"turns": [list(t) for t in self.turns], "open_turns": self.open_turns,
                "successes": [list(s) for s in self.successes],
                "occupancy": [list(o) for o in self.occupancy], "lag": self.lag,
                "usage_mismatch": self.usage_mismatch, "llm": self.llm,
                "calls": self.calls, "routing": [list(r) for r in self.routing],
                "turn_populations": self.turn_populations}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Recorder:
        return cls([tuple(t) for t in d["turns"]], list(d["open_turns"]),
                   [tuple(s) for s in d["successes"]],
                   [tuple(o) for o in d["occupancy"]], list(d["lag"]),
                   int(d.get("usage_mismatch", 0)), dict(d.get("llm", {})),
                   list(d.get("calls", [])),
                   routing=[(float(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]),
                             int(r[5]), int(r[6])) for r in d.get("routing", [])],
                   turn_populations=[str(x) for x in d.get("turn_populations", [])])


@dataclass(frozen=True, slots=True)
class LagStats:
    """Event-loop lag over the measured interval (wall seconds): how late timers fired."""

    p99_s: float
    max_s: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"p99_s": _fin(self.p99_s), "max_s": _fin(self.max_s), "samples": self.samples}


def _fin(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _occupancy_means(rec: Recorder, t0: float, t1: float) -> tuple[float, float]:
    """Mean sessions in a turn and calls in flight over ``[t0, t1)``: each shard's
    samples count its own sessions, so the shards' means add (averaging the pooled
    samples divided the run's figure by the number of shards)."""
    sizes = rec.shard_occupancy or [len(rec.occupancy)]
    in_turn = in_flight = 0.0
    sampled = False
    start = 0
    for n in sizes:
        occ = [o for o in rec.occupancy[start:start + n] if t0 <= o[0] < t1]
        start += n
        if occ:
            sampled = True
            in_turn += float(np.mean([o[1] for o in occ]))
            in_flight += float(np.mean([o[2] for o in occ]))
    return (in_turn, in_flight) if sampled else (math.nan, math.nan)


def summarise(rec: Recorder, t0: float, t1: float) -> tuple[dict[str, float], dict[str, int],
                                                             LagStats]:
    """Metrics over the measured interval ``[t0, t1)`` (model seconds).

    Returns ``(metrics, counts, lag)``: metrics by the simulator's names plus
    :data:`EXTRA_METRICS`; counts of measured turns, calls, attempts, 429s and turns
    still open at the end (those are left out of the latency figures).
    """
    horizon = t1 - t0
    meas = [t for t in rec.turns if t0 <= t[0] < t1]
    turns = len(meas)
    calls = sum(t[2] for t in meas)
    attempts = sum(t[3] for t in meas)
    rejected = sum(t[4] for t in meas)
    failed_calls = sum(t[5] for t in meas)
    pace = sum(t[6] for t in meas)
    lat = np.asarray([t[1] - t[0] for t in meas], dtype=np.float64)
    if lat.size:
        p50, p95, p99 = (float(x) for x in np.percentile(lat, [50.0, 95.0, 99.0]))
        mean = float(lat.mean())
    else:
        p50 = p95 = p99 = mean = math.nan
    good = [s for s in rec.successes if t0 <= s[0] < t1]
    m = {
        "attempt_429_fraction": _ratio(rejected, attempts),
        "call_failure_fraction": _ratio(failed_calls, calls),
        "turn_429_fraction": _ratio(sum(1 for t in meas if t[4] > 0), turns),
        "turn_failure_fraction": _ratio(sum(1 for t in meas if t[7]), turns),
        "turn_latency_mean_s": mean,
        "turn_latency_p50_s": p50,
        "turn_latency_p95_s": p95,
        "turn_latency_p99_s": p99,
        "goodput_calls_per_min": len(good) / horizon * 60.0,
        "turn_throughput_per_s": sum(1 for t in rec.turns if t0 <= t[1] < t1) / horizon,
        "attempts_per_call": _ratio(attempts, calls),
        "calls_per_turn": _ratio(calls, turns),
        "pacing_wait_mean_s": _ratio(pace, calls),
        "goodput_tokens_per_min": sum(s[1] for s in good) / horizon * 60.0,
    }
    m["sessions_in_turn_mean"], m["calls_in_flight_mean"] = _occupancy_means(rec, t0, t1)
    open_measured = sum(1 for s in rec.open_turns if t0 <= s < t1)
    counts = {"turns": turns, "calls": calls, "attempts": attempts, "rejected": rejected,
              "calls_failed": failed_calls, "open_turns": open_measured,
              "usage_mismatch": rec.usage_mismatch}
    if rec.routing:
        # Fleet figures (routed profiles only: unrouted summaries are unchanged).
        deps = summarise_routing(rec, t0, t1)
        sends = sum(d["sent"] for d in deps.values())
        spills = sum(d["spilled"] for d in deps.values())
        none = [r for r in rec.routing if r[1] == "" and t0 <= r[0] < t1]
        fallbacks = sum(d["fell_back"] for d in deps.values()) + sum(r[6] for r in none)
        unavailable = sum(r[4] for r in none)
        counts.update(sends=sends, spills=spills, fallbacks=fallbacks,
                      unavailable=unavailable)
        m["sends_per_attempt"] = _ratio(sends, attempts)
        m["spill_fraction"] = _ratio(spills, sends)
        m["fallback_fraction"] = _ratio(fallbacks, calls)
        m["unavailable_fraction"] = _ratio(unavailable, attempts)
    lag = np.asarray(rec.lag, dtype=np.float64)
    lag_stats = LagStats(float(np.percentile(lag, 99.0)) if lag.size else math.nan,
                         float(lag.max()) if lag.size else math.nan, int(lag.size))
    return m, counts, lag_stats


def summarise_routing(rec: Recorder, t0: float, t1: float) -> dict[str, dict[str, int]]:
    """Per deployment, over the turns that start in ``[t0, t1)``: attempts ``sent`` to
    it, ``admitted``, ``rejected`` (429s the client saw from it: it was the last one
    tried in the round), ``spilled`` (429s after which the call went on to the next
    deployment at once) and ``fell_back`` (of its rejections, those after which the call
    moved to a fallback model). Empty for unrouted runs."""
    out: dict[str, dict[str, int]] = {}
    for start, name, sent, admitted, rejected, spilled, fell in rec.routing:
        if not name or not t0 <= start < t1:
            continue  # name "": rounds that found no deployment available
        d = out.setdefault(name, {"sent": 0, "admitted": 0, "rejected": 0, "spilled": 0,
                                  "fell_back": 0})
        d["sent"] += sent
        d["admitted"] += admitted
        d["rejected"] += rejected
        d["spilled"] += spilled
        d["fell_back"] += fell
    return out


def summarise_populations(rec: Recorder, t0: float, t1: float,
                          blocks: tuple[tuple[str, int], ...]) -> dict[str, dict[str, float]]:
    """Per population of a profile with ``populations`` (``blocks``: (population,
    sessions) of the run), by the simulator's rules
    (:class:`capacity.sim.engine.PopulationUse`): ``sessions``; ``turns_per_hour`` (its
    turns ended inside ``[t0, t1)``, per hour); over its turns that start in the interval:
    ``turns`` (counted), ``calls``, ``call_share`` (of every population's calls),
    ``turn_latency_p95_s`` and ``attempt_429_fraction`` (429s over attempts). Empty when
    the records carry no populations."""
    if not blocks or len(rec.turn_populations) != len(rec.turns):
        return {}
    horizon = t1 - t0
    per: dict[str, list[tuple[float, float, int, int, int, int, float, bool]]] = {
        name: [] for name, _ in blocks}
    for t, pop in zip(rec.turns, rec.turn_populations, strict=True):
        per.setdefault(pop, []).append(t)
    all_calls = sum(t[2] for t in rec.turns if t0 <= t[0] < t1)
    out: dict[str, dict[str, float]] = {}
    for name, count in blocks:
        turns = per[name]
        meas = [t for t in turns if t0 <= t[0] < t1]
        calls = sum(t[2] for t in meas)
        lat = np.asarray([t[1] - t[0] for t in meas], dtype=np.float64)
        out[name] = {
            "sessions": count,
            "turns_per_hour": sum(1 for t in turns if t0 <= t[1] < t1) / horizon * 3600.0,
            "turns": len(meas),
            "calls": calls,
            "call_share": _ratio(calls, all_calls),
            "turn_latency_p95_s": float(np.percentile(lat, 95.0)) if lat.size else math.nan,
            "attempt_429_fraction": _ratio(sum(t[4] for t in meas), sum(t[3] for t in meas)),
        }
    return out
