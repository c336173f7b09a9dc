"""Saturation search: the largest N whose simulated metrics meet the profile's targets.

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

Finding the three boundaries (each the largest N meeting the targets at its level, pinned
to one session below ``1/rel_tol`` sessions):

* **Bracket.** The bracket passed in (the CLI passes the analytic burst-aware and
  mean-value ceilings) is checked first. A lower end that turns out too high steps down by
  10 % (the analytic ceilings are close to N*; halving overshoots and climbs back), an
  upper end that is not too high doubles.
* **Fewer replications far from N*.** While the bracket is wide, a probe first simulates a
  quarter of the replications (the first ones of the full run: they are extended, never
  thrown away). Far from N* that is decisive — its confidence interval lies wholly on one
  side of the target — and narrows the bracket; near N* it is not, and the probe is
  completed to every replication. Cheap probes stop once the bracket lies inside the
  cheap confidence interval of N*, where they can no longer decide.
* **Interpolation.** Probes are placed where the straight line through the bracket ends'
  ``log(metric / target)`` crosses zero (the 429 fraction grows roughly exponentially in
  N below saturation), safeguarded by bisection when one end keeps moving.

Only points simulated with every replication decide a boundary: a boundary is a pair
``(N, N + 1)`` of full evaluations, the first meeting its level and the second not, so
the answer is the same as an exhaustive scan would give wherever the metrics are
monotone in N (common random numbers make them so in practice). Evaluations are cached
and shared by the three boundaries.
"""

from __future__ import annotations

import dataclasses
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
    _RepOut,
    _result,
    _run_reps,
)

__all__ = ["SETTLE_S", "SaturationResult", "SearchPoint", "Settling", "find_saturation",
           "settle", "settle_replications"]

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


# Seconds more of the same sessions the settling check runs before measuring again: two
# hours (hunt-82's fixed 54.3 s think time locks its turns onto its 30 s windows after
# about one; the search's warm-up is two cycles, ~2.5 minutes there).
SETTLE_S = 7200.0


@dataclass(frozen=True, slots=True)
class Settling:
    """The 429 share at N* measured again after ``extra_s`` more seconds of the same
    sessions (a warm-up that much longer), beside the search's own measurement.

    Some workloads are not stationary over the search's horizon: sessions whose think
    time barely varies drift into step with a provider's fixed windows, or into a retry
    storm, over hours. Where the later share confidently misses the target
    (:attr:`drifts`), the search measured a transient and the settled ceiling is lower.

    Attributes
    ----------
    sessions : N* (the search's).
    extra_s : the added warm-up (seconds).
    measured, later : the share of attempts answered 429 at N*, the search's and later.
    target : ``max_429_fraction``.
    replications : the later measurement's replications.
    settled : where it drifts, the saturation search again with the warm-up ``extra_s``
        longer (:func:`settle` with ``search=True``); None otherwise.
    """

    sessions: int
    extra_s: float
    measured: Estimate
    later: Estimate
    target: float
    replications: int
    settled: SaturationResult | None = None

    @property
    def drifts(self) -> bool:
        """True when the later share's 95 % interval lies wholly above both the target and
        the search's interval at N*. (Above the target alone is no drift: N* is the
        largest N whose mean meets it, so its mean sits just below the target by
        selection and a fresh measurement lands above it about as often as not —
        web-research: 0.97 % at N*, 1.08 % [1.01–1.15 %] two hours later, where 20
        replications after 0, 3 and 6 hours measure 0.94, 0.95 and 0.92 %.)"""
        bar = max(self.target, self.measured.hi if math.isfinite(self.measured.hi)
                  else self.measured.mean)
        return math.isfinite(self.later.lo) and self.later.lo > bar

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        settled = self.settled
        return {"sessions": self.sessions, "extra_s": self.extra_s,
                "measured_429_fraction": self.measured.to_dict(),
                "later_429_fraction": self.later.to_dict(), "target": self.target,
                "replications": self.replications, "drifts": self.drifts,
                "settled": None if settled is None else {
                    "n_star": settled.n_star, "n_lo": settled.n_lo,
                    "n_hi": settled.n_hi, "warmup_s": settled.warmup_s,
                    "capped": settled.capped}}


@dataclass(frozen=True, slots=True)
class SaturationResult:
    """The simulated ceiling N* with its confidence interval.

    Attributes
    ----------
    profile : profile name.
    n_star : largest N whose mean metrics meet the targets (0: not even one session).
        With held populations (``populations`` with a fixed ``sessions``) N counts the
        sessions that vary, the held ones run beside them at every N; N = 0 is then
        simulated too, and ``metric_at_n_star`` at N* = 0 shows whether the held sessions
        alone meet the targets.
    n_lo, n_hi : 95 % confidence interval on N* by inversion.
    metric_at_n_star : the simulation at N* (``None`` when N* = 0).
    evaluations : every N simulated with every replication, in increasing order.
    seed, replications, horizon_s, warmup_s : simulation settings (seconds).
    max_429_fraction, p95_turn_latency_s : the targets (the latter may be ``None``).
    binding : targets missed at N* + 1 (what stops the next session), when simulated.
    bracket : the ``(lo, hi)`` passed in.
    capped : True when the search stopped at ``max_sessions`` without confidently
        missing the targets there: ``n_hi`` (and ``n_star`` when it equals the cap) is
        then only a lower bound, and no N above the cap was simulated.
    probes : N values simulated with a quarter of the replications only (decisive far
        from N*; not in ``evaluations``).
    replications_simulated : replications run by the whole search, probes included.
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
    probes: tuple[int, ...] = ()
    replications_simulated: int = 0
    # The 429 share at N* measured again later (:func:`settle`); None: not checked.
    settling: Settling | None = None

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
            "probes": list(self.probes),
            "replications_simulated": self.replications_simulated,
            "settling": None if self.settling is None else self.settling.to_dict(),
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
    # N counts the sessions that vary; beside held populations N = 0 is a load too.
    least = 0 if profile.held_sessions > 0 else 1
    lo = min(max(least, lo), max_sessions)
    hi = min(max(lo + 1, hi), max_sessions)
    compiled = _compile(profile)
    t429 = profile.targets.max_429_fraction
    tp95 = profile.targets.p95_turn_latency
    # A quarter of the replications (at least 3, for a CI) decides far from N*.
    cheap_reps = max(3, -(-replications // 4))
    if cheap_reps >= replications:
        cheap_reps = replications
    runs: dict[int, list[_RepOut]] = {}
    full: dict[int, tuple[SimulationResult, SearchPoint]] = {}
    cheap: dict[int, SearchPoint] = {}
    done = [0]

    def point(n: int, res: SimulationResult) -> SearchPoint:
        e429 = res.metrics["attempt_429_fraction"]
        ep95 = res.metrics["turn_latency_p95_s"]

        def ok(level: Level) -> bool:
            return _within(e429, t429, level) and (tp95 is None or _within(ep95, tp95, level))

        violates = tuple(name for name, bad in (
            ("max_429_fraction", not _within(e429, t429, "mean")),
            ("p95_turn_latency", tp95 is not None and not _within(ep95, tp95, "mean")),
        ) if bad)
        return SearchPoint(n, e429, ep95, ok("mean"), ok("upper"), ok("lower"), violates)

    def evaluate(n: int, reps: int) -> SearchPoint:
        """``n`` simulated with ``reps`` replications (extending an earlier run)."""
        if reps >= replications and n in full:
            return full[n][1]
        have = runs.get(n, [])
        if len(have) < reps:
            have = have + _run_reps(compiled, n, horizon_s=float(horizon_s),
                                    warmup_s=warmup_s, first=len(have), replications=reps,
                                    seed=seed, progress=progress, workers=workers,
                                    done_before=done[0])
            done[0] += reps - len(runs.get(n, []))
            runs[n] = have
        res = _result(compiled, n, have[:reps], horizon_s=float(horizon_s),
                      warmup_s=warmup_s, seed=seed)
        pt = point(n, res)
        if reps >= replications:
            full[n] = (res, pt)
            cheap.pop(n, None)
        else:
            cheap[n] = pt
        return pt

    def holds(n: int, level: Level) -> bool:
        pt = evaluate(n, replications)
        return {"mean": pt.meets, "upper": pt.meets_upper, "lower": pt.meets_lower}[level]

    def probe(n: int, wide: bool) -> None:
        """Simulate ``n``: cheaply first while the bracket is ``wide``, completed to every
        replication unless the cheap result is decisive."""
        if n in full:
            return
        if wide and cheap_reps < replications:
            pt = evaluate(n, cheap_reps)
            if pt.meets_upper or not pt.meets_lower:
                return
        evaluate(n, replications)

    def fine(n: int) -> bool:
        """Confidently meets the targets (a lower end for every boundary)."""
        if n in full:
            return full[n][1].meets_upper
        return n in cheap and cheap[n].meets_upper

    def broken(n: int) -> bool:
        """Confidently misses them (an upper end for every boundary)."""
        if n in full:
            return not full[n][1].meets_lower
        return n in cheap and not cheap[n].meets_lower

    # The bracket: lo must confidently meet the targets (or be 1), hi must confidently miss
    # them (or be the cap).
    while lo > least:
        probe(lo, True)
        if fine(lo):
            break
        hi = min(hi, lo)
        lo = max(least, min(lo - 1, math.floor(0.9 * lo)))
    capped = False
    while True:
        probe(hi, True)
        if broken(hi):
            break
        if hi >= max_sessions:
            capped = True
            evaluate(hi, replications)
            break
        lo = max(lo, hi) if fine(hi) else lo
        hi = min(2 * hi, max_sessions)

    def margin(pt: SearchPoint, level: Level) -> float:
        """log(metric / target) at ``level`` (the worst target); NaN if undefined."""
        worst = -math.inf
        for est, target in ((pt.attempt_429_fraction, t429), (pt.turn_latency_p95_s, tp95)):
            if target is None:
                continue
            x = {"mean": est.mean, "upper": est.hi, "lower": est.lo}[level]
            if not math.isfinite(x):
                x = est.mean
            if not (math.isfinite(x) and x > 0.0 and target > 0.0):
                return math.nan
            worst = max(worst, math.log(x / target))
        return worst

    def boundary(level: Level) -> int:
        """Largest N with ``holds(N, level)``: a full evaluation meeting the level whose
        successor, fully evaluated, does not."""
        last_side = ""
        repeats = 0
        while True:
            def ok_at(n: int) -> bool | None:
                if n in full:
                    pt = full[n][1]
                    return {"mean": pt.meets, "upper": pt.meets_upper,
                            "lower": pt.meets_lower}[level]
                return True if fine(n) else False if broken(n) else None

            known = {n: v for n in {*full, *cheap} if (v := ok_at(n)) is not None}
            fails = [n for n, v in known.items() if not v]
            if not fails:
                return max(full)  # only when capped
            b = min(fails)
            passes = [n for n, v in known.items() if v and n < b]
            a = max(passes) if passes else 0
            if b - a <= max(1, math.floor(rel_tol * a)):
                # The ends decide only when fully simulated.
                todo = [n for n in (a, b) if n >= least and n not in full]
                if not todo:
                    return a
                for n in todo:
                    evaluate(n, replications)
                continue
            # Cheap probes while the bracket is wider than the cheap CI could resolve.
            wide = b - a > max(4, 0.1 * a)
            ga = (margin(full[a][1] if a in full else cheap[a], level)
                  if a in full or a in cheap else math.nan)
            gb = margin(full[b][1] if b in full else cheap[b], level)
            if repeats < 2 and math.isfinite(ga) and math.isfinite(gb) and gb > ga:
                m = round(a + (b - a) * (-ga) / (gb - ga))
            else:
                m = (a + b) // 2
            m = min(max(m, a + 1), b - 1)
            probe(m, wide)
            v = ok_at(m)
            side = "a" if v else "b" if v is not None else ""
            repeats = repeats + 1 if side and side == last_side else 0
            last_side = side

    n_star = boundary("mean")
    n_lo = min(boundary("upper"), n_star)
    n_hi = max(boundary("lower"), n_star)
    capped = capped or n_hi >= max_sessions
    above = full.get(n_star + 1)
    return SaturationResult(
        profile=profile.title, n_star=n_star, n_lo=n_lo, n_hi=n_hi,
        metric_at_n_star=full[n_star][0] if n_star in full else None,
        evaluations=tuple(full[n][1] for n in sorted(full)),
        seed=seed, replications=replications, horizon_s=float(horizon_s),
        warmup_s=next(iter(full.values()))[0].warmup_s,
        max_429_fraction=t429, p95_turn_latency_s=tp95,
        binding=above[1].violates if above is not None else (),
        bracket=bracket, capped=capped, probes=tuple(sorted(cheap)),
        replications_simulated=done[0],
    )


def settle_replications(replications: int) -> int:
    """Replications :func:`settle` measures with by default: a quarter of the search's,
    at least 4 (a usable interval), never more than the search's."""
    return min(replications, max(4, -(-replications // 4)))


def settle(profile: Profile, sat: SaturationResult, *, extra_s: float = SETTLE_S,
           replications: int | None = None, workers: int | None = None,
           search: bool = False,
           progress: Callable[[int], None] | None = None) -> Settling | None:
    """Measure the 429 share at the search's N* again after ``extra_s`` more seconds
    (seconds; the search's warm-up plus that), with ``replications`` (default:
    :func:`settle_replications`) on the search's seed and horizon. None when N* is 0 or
    was not simulated (nothing to measure again). ``search``: where the share drifts,
    also search N* again with the longer warm-up (every replication of the search's;
    below its N*, which the later share confidently misses). ``progress``: called with
    the replications simulated so far, the search's included (its count goes on)."""
    from capacity.sim.engine import simulate

    if sat.n_star < 1 or sat.metric_at_n_star is None:
        return None
    if not extra_s > 0 or not math.isfinite(extra_s):
        raise SimulationError(f"extra_s must be a positive number of seconds, got {extra_s}")
    reps = (replications if replications is not None
            else settle_replications(sat.replications))
    base = sat.replications_simulated

    def on(k: int) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(base + k + done))

    later = simulate(profile, sat.n_star, seed=sat.seed, replications=reps,
                     horizon_s=sat.horizon_s, warmup_s=sat.warmup_s + extra_s,
                     workers=workers, progress=on(0))
    out = Settling(sat.n_star, float(extra_s),
                   sat.metric_at_n_star.metrics["attempt_429_fraction"],
                   later.metrics["attempt_429_fraction"], sat.max_429_fraction, reps)
    if search and out.drifts:
        least = 0 if profile.held_sessions > 0 else 1
        again = find_saturation(profile, max(least, sat.n_star * 3 // 4), sat.n_star,
                                horizon_s=sat.horizon_s, warmup_s=sat.warmup_s + extra_s,
                                replications=sat.replications, seed=sat.seed,
                                max_sessions=sat.n_star, workers=workers,
                                progress=on(reps))
        out = dataclasses.replace(out, settled=again)
    return out
