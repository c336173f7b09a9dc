"""The saturation search as it was before issue 12 (integer bisection, halving a bracket
that is too high), kept only as the yardstick of benchmarks/bench_engine.py.

Saturation search: the largest N whose simulated metrics meet the profile's targets.

The targets (``profile.targets``) are the fraction of call attempts answered 429
(``max_429_fraction``) and, optionally, the 95th percentile of turn latency
(``p95_turn_latency``). Each is judged on the replication mean, so

* ``N*``   = max N whose *means* meet every target;
* ``N_lo`` = max N whose *upper* 95 % confidence limits meet them (confidently fine);
* ``N_hi`` = max N whose *lower* confidence limits meet them (not confidently broken);

``[N_lo, N_hi]`` is the confidence interval on N* by inversion (theory §5): valid because
the metrics grow with N. Every evaluation uses the same seed, so the replications share
common random numbers across N (session k replays the same turns whatever N is), which
keeps the estimated curve smooth in N and the bisection honest.

Each boundary is found by integer bisection on ``[lo, hi]``; the bracket passed in (the
CLI passes the analytic burst-aware and mean-value ceilings) is widened — ``lo`` halved
until it confidently meets the targets, ``hi`` doubled until it is not confidently within
them — when it does not bracket. Evaluations are cached, so the three bisections share
their points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from capacity.jsonsafe import finite as _finite
from capacity.profile.schema import Profile
from capacity.sim.engine import (
    Estimate,
    SimulationError,
    SimulationResult,
    _check_args,
    _compile,
    _simulate_compiled,
)

__all__ = ["SaturationResult", "SearchPoint", "find_saturation"]

Level = Literal["upper", "mean", "lower"]


@dataclass(frozen=True, slots=True)
class SearchPoint:
    """One simulated N and how it stands against the targets.

    Attributes
    ----------
    sessions : N.
    attempt_429_fraction : fraction of attempts answered 429 (estimate with CI).
    turn_latency_p95_s : 95th percentile of turn latency, seconds (estimate with CI).
    meets : the means meet every target.
    meets_upper : the upper confidence limits meet every target.
    meets_lower : the lower confidence limits meet every target.
    violates : targets the means miss (``max_429_fraction``, ``p95_turn_latency``).
    """

    sessions: int
    attempt_429_fraction: Estimate
    turn_latency_p95_s: Estimate
    meets: bool
    meets_upper: bool
    meets_lower: bool
    violates: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {"sessions": self.sessions,
                "attempt_429_fraction": self.attempt_429_fraction.to_dict(),
                "turn_latency_p95_s": self.turn_latency_p95_s.to_dict(),
                "meets": self.meets, "meets_upper": self.meets_upper,
                "meets_lower": self.meets_lower, "violates": list(self.violates)}


@dataclass(frozen=True, slots=True)
class SaturationResult:
    """The simulated ceiling N* with its confidence interval.

    Attributes
    ----------
    profile : profile name.
    n_star : largest N whose mean metrics meet the targets (0: not even one session).
    n_lo, n_hi : 95 % confidence interval on N* by inversion.
    metric_at_n_star : the simulation at N* (``None`` when N* = 0).
    evaluations : every N simulated, in increasing order.
    seed, replications, horizon_s, warmup_s : simulation settings (seconds).
    max_429_fraction, p95_turn_latency_s : the targets (the latter may be ``None``).
    binding : targets missed at N* + 1 (what stops the next session), when simulated.
    bracket : the ``(lo, hi)`` passed in.
    capped : True when the search stopped at ``max_sessions`` without confidently
        missing the targets there: ``n_hi`` (and ``n_star`` when it equals the cap) is
        then only a lower bound, and no N above the cap was simulated.
    """

    profile: str
    n_star: int
    n_lo: int
    n_hi: int
    metric_at_n_star: SimulationResult | None
    evaluations: tuple[SearchPoint, ...]
    seed: int
    replications: int
    horizon_s: float
    warmup_s: float
    max_429_fraction: float
    p95_turn_latency_s: float | None
    binding: tuple[str, ...]
    bracket: tuple[int, int]
    capped: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {
            "profile": self.profile,
            "n_star": self.n_star,
            "n_lo": self.n_lo,
            "n_hi": self.n_hi,
            "metric_at_n_star": (self.metric_at_n_star.to_dict()
                                 if self.metric_at_n_star is not None else None),
            "evaluations": [e.to_dict() for e in self.evaluations],
            "seed": self.seed,
            "replications": self.replications,
            "horizon_s": self.horizon_s,
            "warmup_s": self.warmup_s,
            "targets": {"max_429_fraction": self.max_429_fraction,
                        "p95_turn_latency_s": _finite(self.p95_turn_latency_s)},
            "binding": list(self.binding),
            "bracket": list(self.bracket),
            "capped": self.capped,
        }


def _within(est: Estimate, target: float, level: Level) -> bool:
    """Does the estimate's mean / upper / lower confidence limit meet ``≤ target``?"""
    x = {"mean": est.mean, "upper": est.hi, "lower": est.lo}[level]
    if not math.isfinite(x):  # no CI (one replication): judge on the mean
        x = est.mean
    return math.isfinite(x) and x <= target


def find_saturation(
    profile: Profile,
    lo: int,
    hi: int,
    *,
    horizon_s: float = 3600.0,
    warmup_s: float | None = None,
    replications: int = 20,
    seed: int,
    progress: Callable[[int], None] | None = None,
    max_sessions: int = 100_000,
    rel_tol: float = 0.002,
    workers: int | None = None,
) -> SaturationResult:
    """Find the largest N whose simulated metrics meet ``profile.targets``.

    Parameters
    ----------
    profile : a validated profile.
    lo, hi : initial bracket on N (e.g. the analytic burst-aware and mean-value
        ceilings); widened when it does not bracket.
    horizon_s, warmup_s, replications, seed : as for :func:`capacity.sim.engine.simulate`.
    progress : called with the number of replications simulated so far (all N together).
    max_sessions : never simulate more sessions than this (e.g. a little above the
        mean-value ceiling divided by ``1 − max_429_fraction``, beyond which the targets
        cannot hold); a result limited by it is flagged ``capped``.
    rel_tol : stop bisecting once a boundary is pinned to within this fraction of N
        (and always to one session below 1/rel_tol sessions); the reported N is the
        largest N known to meet the targets, so a coarser pin errs low.
    workers : threads per simulation (default: one per CPU).

    Returns
    -------
    SaturationResult

    Raises
    ------
    SimulationError : for an empty bracket or invalid simulation settings.
    """
    _check_args(1, horizon_s, warmup_s, replications, seed)
    if isinstance(lo, bool) or isinstance(hi, bool) or not (
            isinstance(lo, int) and isinstance(hi, int)):
        raise SimulationError(f"the bracket must be two integers, got ({lo!r}, {hi!r})")
    if not 0.0 <= rel_tol < 1.0:
        raise SimulationError(f"rel_tol must be in [0, 1), got {rel_tol}")
    if max_sessions < 1:
        raise SimulationError(f"max_sessions must be ≥ 1, got {max_sessions}")
    bracket = (lo, hi)
    lo = min(max(1, lo), max_sessions)
    hi = min(max(lo + 1, hi), max_sessions)
    compiled = _compile(profile)
    t429 = profile.targets.max_429_fraction
    tp95 = profile.targets.p95_turn_latency
    cache: dict[int, tuple[SimulationResult, SearchPoint]] = {}
    done = [0]

    def evaluate(n: int) -> SearchPoint:
        if n not in cache:
            res = _simulate_compiled(compiled, n, horizon_s=float(horizon_s),
                                     warmup_s=warmup_s, replications=replications,
                                     seed=seed, progress=progress, workers=workers,
                                     done_before=done[0])
            done[0] += replications
            e429 = res.metrics["attempt_429_fraction"]
            ep95 = res.metrics["turn_latency_p95_s"]

            def ok(level: Level) -> bool:
                return _within(e429, t429, level) and (
                    tp95 is None or _within(ep95, tp95, level))

            violates = tuple(name for name, bad in (
                ("max_429_fraction", not _within(e429, t429, "mean")),
                ("p95_turn_latency", tp95 is not None and not _within(ep95, tp95, "mean")),
            ) if bad)
            cache[n] = (res, SearchPoint(n, e429, ep95, ok("mean"), ok("upper"),
                                         ok("lower"), violates))
        return cache[n][1]

    def holds(n: int, level: Level) -> bool:
        pt = evaluate(n)
        return {"mean": pt.meets, "upper": pt.meets_upper, "lower": pt.meets_lower}[level]

    # Widen the bracket: lo must confidently meet the targets (or be 1), hi must not
    # even possibly meet them (or be the cap).
    while lo > 1 and not holds(lo, "upper"):
        hi = min(hi, lo)
        lo = max(1, lo // 2)
    capped = False
    while holds(hi, "lower"):
        if hi >= max_sessions:
            capped = True
            break
        lo = max(lo, hi)
        hi = min(2 * hi, max_sessions)

    def boundary(level: Level) -> int:
        """Largest N with ``holds(N, level)``, by bisection between cached points."""
        fails = [n for n in cache if not holds(n, level)]
        if not fails:
            return max(cache)  # only when capped
        b = min(fails)
        passes = [n for n in cache if n < b and holds(n, level)]
        a = max(passes) if passes else 0
        while b - a > max(1, math.floor(rel_tol * a)):
            m = (a + b) // 2
            if holds(m, level):
                a = m
            else:
                b = m
        return a

    n_star = boundary("mean")
    n_lo = min(boundary("upper"), n_star)
    n_hi = max(boundary("lower"), n_star)
    capped = capped or n_hi >= max_sessions
    above = cache.get(n_star + 1)
    return SaturationResult(
        profile=profile.title, n_star=n_star, n_lo=n_lo, n_hi=n_hi,
        metric_at_n_star=cache[n_star][0] if n_star in cache else None,
        evaluations=tuple(cache[n][1] for n in sorted(cache)),
        seed=seed, replications=replications, horizon_s=float(horizon_s),
        warmup_s=next(iter(cache.values()))[0].warmup_s,
        max_429_fraction=t429, p95_turn_latency_s=tp95,
        binding=above[1].violates if above is not None else (),
        bracket=bracket, capped=capped,
    )
