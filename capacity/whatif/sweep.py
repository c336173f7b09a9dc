"""Sweep N: the saturation curve (429 fraction, failures, p95 latency, goodput) per N."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from capacity._version import __version__
from capacity.analytic.model import (
    LATENCY_BINDING,
    _ceilings,
    _pick_binding,
    binding_constraint,
    constraint_model,
    cycle_time,
    of_all_attempts,
)
from capacity.errors import CapacityError, ParameterError
from capacity.jsonsafe import clean as _clean
from capacity.model.workload import Workload
from capacity.profile.schema import Profile

_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?$")
_WHOLE = re.compile(r"^[+-]?\d+$")
MAX_POINTS = 1000
# Digits a session count may have: 10^18 sessions is far beyond any quota, and Python
# refuses int() of more than 4,300 digits with a traceback.
_MAX_DIGITS = 18


def parse_sessions(text: str) -> list[int]:
    """``10:300:10`` (start:stop[:step], inclusive) or ``10,20,50`` → sorted session counts."""
    shown = text if len(text) <= 60 else f"{text[:40]}… ({len(text):,} characters)"
    digits = max((len(d) for d in re.findall(r"\d+", text)), default=0)
    if digits > _MAX_DIGITS:
        raise ParameterError("sessions", f"a count of {digits:,} digits; at most "
                             f"{_MAX_DIGITS}", shown)
    m = _RANGE.match(text)
    if m:
        start, stop, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if start < 1 or stop < start or step < 1:
            raise ParameterError("sessions", "need 1 ≤ start ≤ stop and step ≥ 1", text)
        grid = range(start, stop + 1, step)
        if len(grid) > MAX_POINTS:  # counted before the list is built: 1:1e9 is no list
            raise ParameterError("sessions", f"{len(grid):,} points; at most {MAX_POINTS}",
                                 text)
        values = list(grid)
    else:
        parts = [v.strip() for v in text.split(",")]
        if len(parts) == 1 and not _WHOLE.match(parts[0]):
            raise ParameterError(
                "sessions", "expected start:stop[:step] or a list such as 10,20,50", text)
        found: set[int] = set()
        for i, v in enumerate(parts, 1):
            # Every entry is checked: "1,,3" or "1,2.5" is a typo, not the list 1,3.
            where = f"entry {i} of the list" if len(parts) > 1 else "the count"
            if not v:
                raise ParameterError("sessions", f"{where} is empty (expected whole numbers "
                                     "such as 10,20,50)", text)
            if not _WHOLE.match(v):
                raise ParameterError("sessions", f"{where}, {v!r}, is not a whole number of "
                                     "sessions", text)
            if int(v) < 1:
                raise ParameterError("sessions", f"{where} is {v}: session counts must be "
                                     "≥ 1", text)
            found.add(int(v))
        values = sorted(found)
    if len(values) > MAX_POINTS:
        raise ParameterError("sessions", f"{len(values)} points; at most {MAX_POINTS}", text)
    return values


@dataclass(frozen=True)
class SweepRow:
    """Metrics at one N. Simulated values are replication means with 95% CIs (lo, hi)."""

    sessions: int
    analytic_429_fraction: float
    binding_utilisation: float
    meets_targets: bool
    simulated: dict[str, tuple[float, float, float]] | None = None
    spill: dict[str, float] | None = None  # a fleet: analytic spill share per route

    def flat(self) -> dict[str, Any]:
        """One flat record (CSV / JSON row)."""
        out: dict[str, Any] = {
            "sessions": self.sessions,
            "analytic_429_fraction": self.analytic_429_fraction,
            "binding_utilisation": self.binding_utilisation,
            "meets_targets": self.meets_targets,
        }
        for route, share in (self.spill or {}).items():
            out[f"spill_fraction.{route}"] = share
        for key, (mean, lo, hi) in (self.simulated or {}).items():
            out[key] = mean
            out[f"{key}_lo"] = lo
            out[f"{key}_hi"] = hi
        return _clean(out)


SIM_COLUMNS = ("attempt_429_fraction", "call_failure_fraction", "turn_latency_p95_s",
               "goodput_calls_per_min", "binding_utilisation_sim")


@dataclass(frozen=True)
class SweepResult:
    """The saturation curve of a profile over a grid of N."""

    profile: str
    method: str
    binding: str
    targets: dict[str, Any]
    rows: tuple[SweepRow, ...]
    seed: int | None
    replications: int | None
    horizon_s: float | None
    version: str = __version__
    populations: dict[str, Any] | None = None  # what N counts (analytic.populations)

    @property
    def saturation_point(self) -> int | None:
        """Largest N on the grid meeting the targets, below the first N that does not."""
        best = None
        for r in self.rows:
            if not r.meets_targets:
                break
            best = r.sessions
        return best

    def columns(self) -> list[str]:
        """CSV header."""
        return list(self.rows[0].flat()) if self.rows else ["sessions"]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean({
            "version": self.version, "profile": self.profile, "method": self.method,
            "binding_constraint": binding_constraint(self.binding),
            "targets": self.targets,
            "saturation_point": self.saturation_point, "seed": self.seed,
            "replications": self.replications, "horizon_s": self.horizon_s,
            "rows": [r.flat() for r in self.rows],
            **({"populations": self.populations} if self.populations else {}),
        })


def sweep(profile: Profile, sessions: Sequence[int], *, method: str = "analytic",
          seed: int | None = None, replications: int = 20, horizon_s: float = 3600.0,
          progress: Callable[[int], None] | None = None) -> SweepResult:
    """Evaluate the profile at each N: analytic 429 fraction and, if simulating, metrics.

    With simulation all N share one seed, so session k replays the same turns at every N
    (common random numbers): the curve is smooth and its differences are meaningful.
    ``meets_targets`` uses the simulated means when simulating, else the analytic model.
    """
    if method not in ("analytic", "simulate", "both"):
        raise CapacityError(f"method must be analytic, simulate or both, got {method!r}")
    wl = Workload.from_profile(profile)
    cyc = cycle_time(wl)
    target = profile.targets.max_429_fraction
    populations = None
    # A single deployment's quota: its 429 share of its own attempts as a share of all
    # attempts (of_all_attempts: the target's and `capacity ceiling`'s definition).
    own_share: dict[str, float] = {}
    spells: Any = None  # a fleet head's full spells (fleet.HeadSpells), where they bind
    if profile.populations:
        # N counts the varying sessions; the held populations load every point alike.
        from capacity.analytic.populations import population_info, sweep_models, view

        pop_models, pop_util, bname, spill_of = sweep_models(profile)
        models: list[tuple[Any, Any]] = list(pop_models)
        active = [c for c, _ in pop_models]
        populations = population_info(view(profile))

        def utilisation(c: Any, n: int) -> float:
            return float(pop_util(c, n))
    elif profile.routes:
        # A fleet: the constraints a client sees (spilling ones excluded), their load
        # growing with N as the overflow does (capacity.analytic.fleet).
        from capacity.analytic.fleet import (
            FeedModel,
            fleet_ceilings,
            fleet_models,
            head_spells,
            visible_results,
        )

        fm = fleet_models(wl, cyc)
        # A priority route's head whose full spells shut the route onto the rest: its
        # share is the fleet's too, as the ceiling reads it (fleet.HeadSpells).
        spells = head_spells(profile, fm, cyc)
        spill_of = fm.spill
        fleet = fm.visible()
        active = [e.c for e in fleet]
        models = [(e.c, e.model) for e in fleet]
        by_name = {e.c.name: e for e in fleet}

        def utilisation(c: Any, n: int) -> float:
            e = by_name[c.name]
            if isinstance(e.model, FeedModel):
                # Fed by overflow: the burst model's mean load (spills start before the
                # first deployment's mean fills), not the fluid one.
                st = e.model.stats(n)
                return float(st.mean_per_window / (c.rate_per_s * e.model.window_s))
            return float(e.units_per_s(float(n)) / c.rate_per_s)

        bname = min(visible_results(fleet_ceilings(wl, cyc, target)),
                    key=lambda r: (r.burst_ceiling, r.mean_ceiling)).name
    else:
        spill_of = {}
        active = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
        models = [(c, constraint_model(wl, c, cyc.cycle_s, cyc.min_cycle_s)) for c in active]
        own_share = {c.name: max(wl.attempt_share(c), 1e-12) for c in active}
        per_session = {c.name: wl.units_per_turn(c) / cyc.cycle_s / c.rate_per_s
                       for c in active}

        def utilisation(c: Any, n: int) -> float:
            return n * per_session[c.name]

        # The same binding constraint as `capacity ceiling` (lowest burst-aware ceiling).
        bname = _pick_binding(_ceilings(wl, cyc, target)).name
    binding = next(c for c in active if c.name == bname)
    p95_target = profile.targets.p95_turn_latency
    # A target the unthrottled turn already misses binds at every N (the analytic ceiling
    # is 0): no row meets the targets and the latency target, not a quota, is the binding.
    unreachable = p95_target is not None and cyc.turn_latency_p95_s > p95_target
    simulate_too = method != "analytic"
    sim_seed = 0
    if simulate_too:
        if seed is None:
            raise CapacityError("a seed is required to simulate")
        sim_seed = seed
        from capacity.sim.engine import _check_args, _compile, _simulate_compiled
        from capacity.whatif.ceiling import SimSettings, simulation_budget

        _check_args(1, horizon_s, None, replications, seed)
        settings = SimSettings(seed=seed, replications=replications, horizon_s=horizon_s)
        # Budget the sweep as its largest N evaluated once per grid point (an upper bound).
        compiled = _compile(profile)
        skip = simulation_budget(cyc.cycle_s, wl.calls_per_turn(), max(sessions), settings,
                                 evaluations=len(sessions),
                                 nodes_per_session=compiled.max_nodes)
        if skip is not None:
            raise CapacityError(skip + " Or use --method analytic.")
    rows = []
    for i, n in enumerate(sessions):
        losses = {c.name: of_all_attempts(m.stats(n), own_share.get(c.name, 1.0))
                  .loss_fraction for c, m in models}
        analytic = max(losses.values())
        if spells is not None:
            analytic = max(analytic, spells.share(n))
        util = utilisation(binding, n)
        meets = analytic <= target and util <= 1.0 and not unreachable
        sim = None
        if simulate_too:
            res = _simulate_compiled(compiled, n, horizon_s=horizon_s, warmup_s=None,
                                     replications=replications, seed=sim_seed,
                                     progress=progress, workers=None,
                                     done_before=i * replications)
            est = {k: res.metrics[k] for k in SIM_COLUMNS if k in res.metrics}
            sim = {k: (e.mean, e.lo, e.hi) for k, e in est.items()}
            u = res.utilisation.get(binding.name)
            if u is not None:
                sim["binding_utilisation_sim"] = (u.mean, u.lo, u.hi)
            p95 = res.metrics["turn_latency_p95_s"].mean
            meets = res.metrics["attempt_429_fraction"].mean <= target and (
                p95_target is None or (math.isfinite(p95) and p95 <= p95_target))
        spill = {route: float(f(n)) for route, f in spill_of.items()} or None
        rows.append(SweepRow(n, analytic, util, meets, sim, spill))
    return SweepResult(
        profile.title, method, LATENCY_BINDING if unreachable else binding.name,
        {"max_429_fraction": target, "p95_turn_latency_s": p95_target}, tuple(rows),
        seed if simulate_too else None, replications if simulate_too else None,
        horizon_s if simulate_too else None, populations=populations)

