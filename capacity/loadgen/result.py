"""Result objects of a load test: measured points beside the simulator's prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..jsonsafe import clean

__all__ = ["POPULATION_METRICS", "LoadPoint", "LoadtestResult", "MeasuredCeiling",
           "compare_metrics", "compare_populations"]

COMPARED = ("attempt_429_fraction", "call_failure_fraction", "turn_429_fraction",
            "turn_failure_fraction", "turn_latency_mean_s", "turn_latency_p50_s",
            "turn_latency_p95_s", "turn_latency_p99_s", "goodput_calls_per_min",
            "turn_throughput_per_s", "attempts_per_call", "calls_per_turn",
            "pacing_wait_mean_s")
"""Metrics both the simulator and the load generator report (same names, same rules)."""


def compare_metrics(measured: dict[str, float], predicted: Any) -> dict[str, dict[str, Any]]:
    """Key-by-key comparison with a :class:`capacity.sim.SimulationResult`.

    ``predicted``/``predicted_lo``/``predicted_hi``: replication mean and its 95 % CI;
    ``run_lo``/``run_hi``: 2.5 and 97.5 percentiles of the *single* replications — where one
    measured run of the same length is expected to fall (a measurement is one run, so its
    noise is a replication's, not the mean's); ``within_run`` says whether it does.
    """
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for k in COMPARED:
        m = measured.get(k, math.nan)
        est = predicted.metrics.get(k)
        if est is None:
            continue
        s = np.asarray([x for x in predicted.samples.get(k, ()) if math.isfinite(x)])
        lo, hi = ((float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))) if s.size
                  else (math.nan, math.nan))
        within = None
        if math.isfinite(m) and math.isfinite(lo):
            within = bool(lo - 1e-12 <= m <= hi + 1e-12)
        out[k] = {"measured": m, "predicted": est.mean, "predicted_lo": est.lo,
                  "predicted_hi": est.hi, "run_lo": lo, "run_hi": hi, "within_run": within}
    # Routed profiles: the simulator's routing figures (replication mean and its CI; it
    # keeps no per-replication samples of them, so no run range).
    for k, est in (getattr(predicted, "routing", None) or {}).items():
        if k in measured:
            out[k] = {"measured": measured[k], "predicted": est.mean,
                      "predicted_lo": est.lo, "predicted_hi": est.hi}
    return out


POPULATION_METRICS = ("turns_per_hour", "call_share", "turn_latency_p95_s",
                      "attempt_429_fraction")
"""Per-population figures both the simulator (:class:`capacity.sim.engine.PopulationUse`)
and the load generator (:func:`capacity.loadgen.measure.summarise_populations`) report."""


def compare_populations(measured: dict[str, dict[str, float]], predicted: Any
                        ) -> dict[str, dict[str, Any]]:
    """Per population and :data:`POPULATION_METRICS` key: the measured figure beside the
    simulator's replication mean and its 95 % CI (``predicted``, ``predicted_lo``,
    ``predicted_hi``), and both session counts (``sessions``: measured, predicted)."""
    out: dict[str, dict[str, Any]] = {}
    pred = getattr(predicted, "populations", None) or {}
    for name, m in measured.items():
        use = pred.get(name)
        if use is None:
            continue
        row: dict[str, Any] = {"sessions": {"measured": m["sessions"],
                                            "predicted": use.sessions}}
        for k in POPULATION_METRICS:
            est = getattr(use, k)
            row[k] = {"measured": m.get(k, math.nan), "predicted": est.mean,
                      "predicted_lo": est.lo, "predicted_hi": est.hi}
        out[name] = row
    return out


@dataclass
class LoadPoint:
    """One N: what was measured, what the simulator predicts for it, and the verdict.

    measured : metrics by the simulator's names plus the measured extras.
    counts : measured turns, calls, attempts, 429s, failed calls, turns still open.
    lag : event-loop lag over the measured interval (``p99_s``, ``max_s``; wall seconds).
    predicted : the simulation at the same N, horizon, warm-up and seed (or None).
    meets / violates : the measured figures against the profile's targets (``meets``
        None: no data — no attempt was measured, nothing to judge).
    interrupted : the run was stopped (Ctrl-C) before its end; figures are partial.
    shard_turns : turns ended in each process / Locust worker (empty: one process).
    deployments : routed profiles: per deployment ``sent``, ``admitted``, ``rejected``
        (429s the client saw from it), ``spilled`` (429s it spilled from at once) and
        ``fell_back`` (rejections followed by a fallback), over the measured turns
        (:func:`capacity.loadgen.measure.summarise_routing`); empty otherwise.
    populations : profiles with ``populations``: per population its sessions, turns per
        hour, measured turns and calls, call share, p95 turn latency and 429 share of
        attempts (:func:`capacity.loadgen.measure.summarise_populations`); empty otherwise.
    """

    sessions: int
    measured: dict[str, float]
    counts: dict[str, int]
    lag: Any
    measured_horizon_s: float
    predicted: Any = None
    meets: bool | None = False
    violates: tuple[str, ...] = ()
    interrupted: bool = False
    shard_turns: list[int] = field(default_factory=list)
    deployments: dict[str, dict[str, int]] = field(default_factory=dict)
    populations: dict[str, dict[str, float]] = field(default_factory=dict)

    def comparison(self) -> dict[str, dict[str, Any]]:
        return {} if self.predicted is None else compare_metrics(self.measured, self.predicted)

    def population_comparison(self) -> dict[str, dict[str, Any]]:
        """Measured per-population figures beside the simulator's (see
        :func:`compare_populations`); empty without populations or a prediction."""
        if self.predicted is None or not self.populations:
            return {}
        return compare_populations(self.populations, self.predicted)

    def to_dict(self) -> dict[str, Any]:
        return clean({
            "sessions": self.sessions,
            "interrupted": self.interrupted,
            "measured": {"metrics": dict(self.measured), "counts": dict(self.counts),
                         "lag": self.lag.to_dict(), "horizon_s": self.measured_horizon_s,
                         "shard_turns": list(self.shard_turns),
                         **({"deployments": {k: dict(v) for k, v in
                                             self.deployments.items()}}
                            if self.deployments else {}),
                         **({"populations": {k: dict(v) for k, v in
                                             self.populations.items()}}
                            if self.populations else {})},
            "predicted": None if self.predicted is None else self.predicted.to_dict(),
            "compare": self.comparison(),
            **({"compare_populations": self.population_comparison()}
               if self.populations else {}),
            "meets": self.meets,
            "violates": list(self.violates),
        })


@dataclass(frozen=True)
class MeasuredCeiling:
    """The measured saturation point on the grid.

    n_star : largest grid N that meets every target with every smaller grid N meeting
    them too (0 when the smallest fails); bracket : (that N, the first failing N, or
    None); n_star_interpolated : where the violated metric crosses its target between the
    two (linear; None when the smallest N fails: there is no measured point below it to
    draw the line from); capped : no grid N failed (the ceiling is above the grid). Points
    with no data (``meets`` None) are left out.
    """

    n_star: int
    bracket: tuple[int, int | None]
    n_star_interpolated: float | None
    capped: bool

    def to_dict(self) -> dict[str, Any]:
        return clean({"n_star": self.n_star, "bracket": list(self.bracket),
                      "n_star_interpolated": self.n_star_interpolated,
                      "capped": self.capped})


@dataclass
class LoadtestResult:
    """A load test over a grid of N, with the prediction beside each measurement."""

    profile: str
    target: str
    provider: str
    engine: str
    client: str
    time_scale: float
    warmup_s: float
    duration_s: float
    seed: int
    replications: int
    lag_limit_s: float
    lag_fraction: float
    targets: dict[str, float | None]
    points: list[LoadPoint] = field(default_factory=list)
    measured_ceiling: MeasuredCeiling | None = None
    predicted_ceiling: Any = None
    interrupted: bool = False
    agent_url: str | None = None
    populations: str | None = None  # what N counts (model.population.describe), or None
    held: dict[str, int] = field(default_factory=dict)  # held populations: their sessions
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        pc = self.predicted_ceiling
        return clean({
            "profile": self.profile,
            "target": self.target,
            "agent_url": self.agent_url,
            "provider": self.provider,
            "engine": self.engine,
            "client": self.client,
            "time_scale": self.time_scale,
            "warmup_s": self.warmup_s,
            "duration_s": self.duration_s,
            "seed": self.seed,
            "replications": self.replications,
            "targets": dict(self.targets),
            "lag_guard": {"fraction": self.lag_fraction, "limit_s": self.lag_limit_s},
            "points": [p.to_dict() for p in self.points],
            "measured_ceiling": (None if self.measured_ceiling is None
                                 else {**self.measured_ceiling.to_dict(),
                                       **({"held": dict(self.held)} if self.held else {})}),
            "predicted_ceiling": None if pc is None else {
                "n_star": pc.n_star, "n_lo": pc.n_lo, "n_hi": pc.n_hi,
                "binding": list(pc.binding), "capped": pc.capped},
            "interrupted": self.interrupted,
            **({"populations": {"n_counts": self.populations, "held": dict(self.held)}}
               if self.populations else {}),
            "notes": list(self.notes),
        })


def measured_ceiling(points: list[LoadPoint], targets: dict[str, float | None]
                     ) -> MeasuredCeiling | None:
    """The measured N* from grid points (in increasing N)."""
    pts = sorted((p for p in points if not p.interrupted and p.meets is not None),
                 key=lambda p: p.sessions)
    if not pts:
        return None
    last_ok: LoadPoint | None = None
    first_bad: LoadPoint | None = None
    for p in pts:
        if p.meets:
            last_ok = p
        else:
            first_bad = p
            break
    if first_bad is None:
        assert last_ok is not None
        return MeasuredCeiling(last_ok.sessions, (last_ok.sessions, None),
                               float(last_ok.sessions), True)
    b = first_bad.sessions
    if last_ok is None:  # no point below the first miss: no line to interpolate on
        return MeasuredCeiling(0, (0, b), None, False)
    a = last_ok.sessions
    crossings = [float(b)]
    for name, key in (("max_429_fraction", "attempt_429_fraction"),
                      ("p95_turn_latency", "turn_latency_p95_s")):
        tgt = targets.get(name)
        if tgt is None or name not in first_bad.violates:
            continue
        xb = first_bad.measured.get(key, math.nan)
        xa = last_ok.measured.get(key, math.nan)
        if math.isfinite(xa) and math.isfinite(xb) and xb > xa:
            crossings.append(a + (b - a) * (tgt - xa) / (xb - xa))
    return MeasuredCeiling(a, (a, b), max(float(a), min(crossings)), False)
