"""Monte Carlo: closed-loop discrete-event simulation of N sessions against the quotas.

Model (one replication)
-----------------------
* N sessions; each repeats: draw a turn type from the mix, run its steps, pause.
  ``think_time``: the pause starts when the turn ends (closed loop). ``cadence``: the next
  turn starts at ``max(start + cadence, end)``. Sessions start in steady state
  (:func:`capacity.model.workload.steady_phase`): a think-time session is mid-turn with
  probability ``E[R]/(E[R]+E[Z])`` — its next turn after what is left of the turn in
  progress (an equilibrium residual of the turn's law) and a whole pause — else
  mid-pause, its first turn after an equilibrium residual of the pause (what an observer
  arriving at a random instant waits); a cadence
  session after a residual of its cadence. Turn starts are thus spread over the whole
  cycle; the warm-up removes what is left of the transient. (Sessions started after a
  residual of the pause alone sent every first turn of a short cycle in the first pause:
  a burst that tipped a retried sliding window into a storm it never left.)
* Steps: a call; ``parallel`` (``count`` copies of the body launched at the same instant,
  the block ends when the last copy ends); ``optional`` (the body with ``probability``);
  ``repeat`` (the body ``count`` times in sequence). A call lasts
  ``ttft + min(output, max_tokens) / tokens_per_second`` once admitted.
* Every attempt goes through the provider limiter (:mod:`capacity.limits`). A 429 reaches
  the client ``rejection_latency`` later; retry *k* (1-based) then waits the retry-after if
  ``honour_retry_after`` and ``0 < retry_after ≤ max_retry_after``, gives up on a longer
  one with ``beyond_max_retry_after: give_up``, else
  ``min(initial_delay·2^(k−1), max_delay)·(1 − jitter·U)``. After ``max_retries`` failed
  retries the call fails; with ``on_exhausted: abort_turn`` no further step of the turn is
  launched (copies already in flight finish); the turn counts as failed either way.
* Optional client pacing (``profile.pacing``) is **fleet-wide**, like the shared limiter
  teams put in front of one API key: a FIFO queue in front of the SDK call, released by a
  token bucket (``rpm``, depth ``rpm·burst/60``, at least one call, starts full) and/or a
  cap on calls in flight. It wraps the SDK call as ``async with limiter: await
  client.create(...)`` does: one token per call, the concurrency slot held until the
  call's final outcome; the SDK's own retries happen inside and are not paced again.
  Time spent queued is part of the turn's latency.

Fleets (profiles with ``routes``)
---------------------------------
A call names a logical model; THE routing rule (:mod:`capacity.model.routing`, built by
``router_from_profile``) picks the deployment, compiled into the C loop as its twin
(``tests/test_twins.py`` replays every choice through the pure ``Router``/``CallPath``):

* Each choice draws ``u`` (a fresh uniform per choice, from the call's own stream) and
  reads the turn's ``turn_u`` (one per turn), the calls in flight per deployment
  (admitted, not yet finished) and, for ``usage_based``, the limiter's snapshots at that
  instant. The request is charged on the chosen deployment's quotas (the charging rule
  with ``target=``) and lasts ``ttft + min(output, max_tokens)/tokens_per_second`` of its
  model (one latency draw per call and deployment).
* A 429 reaches the client ``rejection_latency`` later; a route that spills then sends
  the call to the next untried deployment at once; with none left the client retries by
  the retry rule, with the retry-after of the round's last 429; after ``max_retries``
  the call falls back to the next logical model of its chain (at once, fresh retries),
  and fails when the chain is spent. When every deployment is cooling down the attempt
  fails at once (nothing is sent: an in-process router answers immediately).
* Counting: an attempt is a round (a first request plus its spills), answered 429 only
  when the client sees the 429; :attr:`SimulationResult.deployments` and ``.routing``
  count requests per deployment, spills and fallbacks.
* Profiles without ``routes`` take exactly the path (and the random draws) they took
  before fleets existed.

Session populations (profiles with ``populations``)
---------------------------------------------------
N counts the sessions that vary: :meth:`Profile.split` gives each population its sessions
(``session`` the rest of N after the shares; fixed counts held whatever N is, so N = 0 is
a load too). The engine runs them all, in contiguous blocks in ``split`` order
(``session`` first); each session draws its turn types from its own population's mix
only and paces them by its population's think time or cadence. Session *j* of a
population has the same random stream whatever N is (``session``'s are the streams
sessions had before populations existed, so a profile without them draws exactly as
before). :attr:`SimulationResult.populations` reports each population's sessions, turns
per hour, share of the calls, p95 turn latency and 429 share of its attempts; the other
metrics are over every population together.

Steady-state start of the limiter
---------------------------------
A fresh limiter (full buckets, empty windows) would let the measured interval live off
its initial allowance: near saturation a full bucket adds ``depth`` units that the load
takes an hour or more to use up, and a day window (``rpd``/``tpd``) longer than the whole
run is never exhausted. So each replication starts the limiter already part-used, at the
offered load of N sessions, ``λ_u = N · units per turn / mean cycle`` (the analytic
:func:`capacity.analytic.cycle_time`; with populations, the sum of each population's
sessions times its own per-session load), with retries and counted rejections left out:

* **Token bucket.** The deficit ``D = depth − level`` is a random walk reflected at 0
  (full bucket) that jumps by each charge and drifts down at the refill rate ``r``. For
  compound-Poisson input (the model of :func:`capacity.analytic.bucket_model`) its
  stationary law has an atom ``1 − ρ`` at 0 (``ρ = λ E[B] / r``, the fraction of time the
  bucket is not full) and a Cramér–Lundberg tail ``∝ exp(−θ* x)`` (θ* from
  :func:`capacity.analytic.lundberg_theta`). The start draws ``D`` by inversion from
  ``P(D ≤ x) = 1 − ρ·exp(−θ* x)``, cut at ``depth`` (exact for exponential charges; the
  right atom and tail in general), and ``D = depth`` (empty bucket) when ``ρ ≥ 1``.
  Several populations charging one bucket superpose their inputs: the rates add and the
  charge law is their rate-weighted mixture (on the coarsest of their lattices). One
  uniform per replication, drawn from its own seed stream, serves every bucket (their
  deficits are driven by the same calls, so they move together); being the same whatever
  N is, it keeps the start a common random number across the saturation search.
* **Fixed window.** The provider's clock phase is random per replication, so t = 0 falls
  ``e`` seconds into the current window; its counter starts at ``min(λ_u · e, q)``, the
  expected use since the window opened.
* **Sliding window.** A log longer than the warm-up (a day window) starts with
  ``min(λ_u · w, q)`` units spread as 64 equal charges over ``(−w, 0]``, which then expire
  steadily during its first window. A shorter log starts empty: the warm-up fills it with
  the sessions' own calls, whereas that mean content laid down at t = 0, placed
  independently of the sessions' phases, could refuse N sessions that never overfill a
  window (and counted retries then stormed for good). One whose offered load is at least
  its allowance (a priority deployment that spills the rest) starts full all the same:
  empty, it filled in the first part of a window and then admitted only as that fill
  expired, the same part of every window for tens of minutes, so its spill came in
  bursts the next deployment refused (hunt-69: 682 sessions simulated, 767 in steady
  state).

After that the warm-up removes what is left of the transient. A routed profile's offered
load per slot is the workload's split of its calls over the deployments
(:class:`capacity.model.workload.Workload`, the analytic models' own). For windows shorter than
the warm-up this changes nothing measured; for day windows it is what enforces them at
all (the measured hour then sees the daily allowance run out in a fraction of the
replications, in proportion to where in the day it falls).

Measurement
-----------
The run covers ``warmup_s + horizon_s`` seconds; turns that *start* in the measured
interval ``[warmup, warmup + horizon)`` are measured, and the run continues until every
measured turn has ended (sessions keep starting unmeasured turns meanwhile, so the load
does not drop). Per-turn and per-call metrics (429 and failure fractions, latency
percentiles, attempts per call) are over measured turns and their calls; rates (goodput,
turn throughput, utilisation) count events *inside* the measured interval. Every metric
is computed per replication and reported as the replication mean with a 95 % t-interval.

Randomness and common random numbers
------------------------------------
Replication *r* takes child *r* of ``SeedSequence(seed).spawn(replications)``; its state
gives a 64-bit replication key and the provider's clock offset (window phase). Session
*k*'s stream key is a SplitMix64 hash of (replication key, k) (session *k* of a later
population: of (hash of (replication key, population), k)), turn *j*'s key a hash of
(session key, j), and every draw within a turn (type, counts, tokens, latencies, pause,
retry jitter) is a counter-based SplitMix64 output of that key at a fixed position. So
session *k*'s *j*-th turn is identical whatever N is and whatever happened before it —
common random numbers across the saturation search — and no global random state is used.
Distributions are sampled by inverse transform (Box–Muller for the lognormal), matching
:class:`capacity.dist.Distribution` (tested against its quantiles); token counts are
rounded to whole tokens, as providers count them.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from capacity.analytic.model import bucket_model, cycle_time, lundberg_theta
from capacity.errors import CapacityError
from capacity.jsonsafe import finite as _finite
from capacity.model.dist import Distribution
from capacity.model.numeric import t_quantile
from capacity.model.quota import LimitSlot, charge_coefficients, limit_slots
from capacity.model.routing import Router, Weighted, router_from_profile
from capacity.model.workload import (
    Workload,
    cached_per_profile,
    population_profiles,
    steady_phase,
)
from capacity.profile.schema import (
    SESSION,
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
)
from capacity.sim.kernels import (
    C_ABORT,
    C_HONOUR,
    C_INIT_DELAY,
    C_JITTER,
    C_MAX_DELAY,
    C_MAX_RA,
    C_MAX_RETRIES,
    C_MODE,
    C_PACE_CONC,
    C_PACE_DEPTH,
    C_PACE_RATE,
    C_PAUSE,
    C_REJ_LAT,
    C_START_P,
    C_TURN_LAW,
    D_CHOICE,
    D_EXPONENTIAL,
    D_FIXED,
    D_LOGNORMAL,
    D_UNIFORM,
    D_UNIFORM_INT,
    DS_ADMITTED,
    DS_NCOL,
    DS_REJECTED,
    DS_SENT,
    DS_SPILLED,
    K_ATTEMPTS,
    K_ATTEMPTS_ALL,
    K_CALLS,
    K_CALLS_FAILED,
    K_FALLBACKS,
    K_GOOD_WINDOW,
    K_PACE_WAIT,
    K_REJECTED,
    K_SENDS,
    K_SPILLS,
    K_TURNS,
    K_TURNS_429,
    K_TURNS_FAILED,
    K_TURNS_WINDOW,
    K_UNAVAILABLE,
    MAX_ROUTE,
    P_OFFSET,
    P_WINDOW,
    POLICY_CODE,
    PP_MODE,
    PP_NCOL,
    PP_PAUSE,
    PP_START_P,
    PP_TURN_LAW,
    PP_TURN_LEN,
    PP_TURN_OFF,
    PS_NCOL,
    RC_MIN_CALLS,
    RC_NCOL,
    RC_ON,
    RC_SECONDS,
    RC_THRESHOLD,
    RC_WINDOW,
    RL_LEN,
    RL_NCOL,
    RL_OFF,
    RL_PER_TURN,
    RL_POLICY,
    RL_ROLL_ALL,
    RL_SPILLS,
    S_CALL,
    S_OPT,
    S_PAR,
    S_REP,
    S_SEQ,
    T_UNITS,
    LimiterArrays,
    replicate,
    sample_many,
    stop,
)

__all__ = ["METRICS", "ROUTING_METRICS", "AttemptTrace", "DeploymentUse", "Estimate",
           "PopulationUse", "SimulationError", "SimulationResult", "bucket_start",
           "default_warmup", "sample_distribution", "simulate", "trace_attempts"]


class SimulationError(CapacityError):
    """The simulation was asked for something impossible (e.g. fewer than one session)."""


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """A replication mean with its 95 % t-interval.

    Attributes
    ----------
    mean : mean over replications (same unit as the metric).
    lo, hi : t-interval bounds (nan with fewer than two replications).
    stderr : standard error of the mean.
    n : number of replications with a finite value.
    """

    mean: float
    lo: float
    hi: float
    stderr: float
    n: int

    @classmethod
    def from_samples(cls, values: NDArray[np.float64] | list[float],
                     confidence: float = 0.95, *, lower: float = -math.inf,
                     upper: float = math.inf) -> Estimate:
        """t-interval over per-replication values (non-finite values are ignored).

        ``lower``/``upper`` are bounds the quantity cannot leave (e.g. 0 and 1 for a
        fraction): the interval is clipped to them, since the symmetric t-interval of a
        quantity near a bound would otherwise extend past it.
        """
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        n = int(x.size)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        mean = float(x.mean())
        if n < 2:
            return cls(mean, math.nan, math.nan, math.nan, n)
        se = float(x.std(ddof=1)) / math.sqrt(n)
        half = _t_quantile(0.5 + confidence / 2, n - 1) * se
        return cls(mean, max(mean - half, lower), min(mean + half, upper), se, n)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {"mean": _finite(self.mean), "lo": _finite(self.lo), "hi": _finite(self.hi),
                "stderr": _finite(self.stderr), "n": self.n}


# scipy.special.stdtrit(df, 0.975) for df = 1..120 (the 95 % interval of up to 121
# replications), exactly as scipy computes them (tests/test_simulate.py checks the table
# against scipy): the intervals printed before scipy left the runtime keep their last
# digit. Other quantiles come from capacity.model.numeric.t_quantile (within 1e-11).
_T975 = (
    12.706204736174694, 4.302652729749462, 3.1824463052837078, 2.7764451051977934,
    2.5705818356363146, 2.4469118511449786, 2.364624251592784, 2.306004135204166,
    2.262157162798205, 2.228138851986274, 2.200985160091639, 2.1788128296672284,
    2.1603686564627913, 2.144786687917804, 2.131449545559776, 2.1199052992212546,
    2.1098155778333156, 2.1009220402410382, 2.0930240544083087, 2.085963447265864,
    2.0796138447276795, 2.0738730679040254, 2.0686576104190486, 2.0638985616280245,
    2.0595385527532972, 2.0555294386428735, 2.0518305164802846, 2.0484071417952454,
    2.045229642132703, 2.0422724563012378, 2.039513446396408, 2.0369333434601016,
    2.0345152974493383, 2.0322445093177186, 2.030107928250343, 2.0280940009804502,
    2.0261924630291093, 2.0243941639119694, 2.022690920036761, 2.021075390306273,
    2.019540970441376, 2.0180817028184443, 2.016692199227824, 2.0153675744437636,
    2.014103388880846, 2.012895598919429, 2.0117405137297655, 2.010634757624232,
    2.0095752371292392, 2.008559112100761, 2.007583770315836, 2.006646805061688,
    2.0057459953178687, 2.0048792881880564, 2.0040447832891455, 2.003240718847872,
    2.002465459291007, 2.0017174841452356, 2.000995378088267, 2.0002978220142604,
    1.999623584994939, 1.9989715170333788, 1.998340542520741, 1.997729654317693,
    1.9971379083920038, 1.9965644189523117, 1.996008354025296, 1.9954689314298435,
    1.9949454151072374, 1.994437111771186, 1.9939433678456255, 1.9934635666618719,
    1.992997125889855, 1.992543495180932, 1.9921021540022417, 1.9916726096446642,
    1.9912543953883846, 1.9908470688116906, 1.9904502102301285, 1.990063421254446,
    1.9896863234569029, 1.989318557136572, 1.9889597801751624, 1.9886096669757083,
    1.9882679074772216, 1.98793420623902, 1.9876082815890708, 1.9872898648311692,
    1.986978699506281, 1.9866745407037683, 1.9863771544186177, 1.98608631695113,
    1.9858018143458227, 1.985523441866604, 1.9852510035054978, 1.984984311522457,
    1.9847231860139845, 1.9844674545084815, 1.9842169515864174, 1.9839715185235518,
    1.983731002955606, 1.9834952585628793, 1.9832641447734565, 1.9830375264837259,
    1.9828152737950475, 1.9825972617655006, 1.9823833701756908, 1.982173483307727,
    1.9819674897364825, 1.981765282132372, 1.9815667570749007, 1.9813718148763053,
    1.981180359414661, 1.9809922979758567, 1.9808075411039094, 1.9806260024590894,
    1.9804475986834025, 1.980272249272974, 1.9800998764569397, 1.9799304050824402,
)


def _t_quantile(p: float, df: int) -> float:
    if p == 0.975 and 1 <= df <= len(_T975):
        return _T975[df - 1]
    return t_quantile(p, df)


METRICS: dict[str, str] = {
    "attempt_429_fraction": "fraction of call attempts answered 429",
    "call_failure_fraction": "fraction of calls that failed after their retries",
    "turn_429_fraction": "fraction of turns that saw at least one 429",
    "turn_failure_fraction": "fraction of turns with a failed call",
    "turn_latency_mean_s": "mean turn latency (seconds)",
    "turn_latency_p50_s": "median turn latency (seconds)",
    "turn_latency_p95_s": "95th percentile of turn latency (seconds)",
    "turn_latency_p99_s": "99th percentile of turn latency (seconds)",
    "goodput_calls_per_min": "successful calls per minute",
    "turn_throughput_per_s": "turns completed per second",
    "attempts_per_call": "attempts per call (1 + retries)",
    "calls_per_turn": "calls launched per turn",
    "pacing_wait_mean_s": "mean time a call waited in the client pacer (seconds)",
}
"""Metric keys of :attr:`SimulationResult.metrics` and what they measure."""


@dataclass(frozen=True, slots=True)
class DeploymentUse:
    """How the calls of a routed profile used one deployment (the calls of measured
    turns; each a replication mean with its 95 % t-interval).

    Attributes
    ----------
    share : fraction of the admitted calls it served.
    sent_share : fraction of the requests sent to any deployment (spills included) that
        were sent to it.
    reject_fraction : fraction of the requests sent to it that it answered 429.
    spill_fraction : fraction of the requests sent to it that it answered 429 and that
        spilled at once to another deployment of the route (the client saw no 429).
    """

    share: Estimate
    sent_share: Estimate
    reject_fraction: Estimate
    spill_fraction: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {"share": self.share.to_dict(), "sent_share": self.sent_share.to_dict(),
                "reject_fraction": self.reject_fraction.to_dict(),
                "spill_fraction": self.spill_fraction.to_dict()}


ROUTING_METRICS: dict[str, str] = {
    "sends_per_attempt": "requests sent per client attempt (1 + spills)",
    "spill_fraction": "fraction of the requests sent that spilled to another deployment",
    "fallback_fraction": "fraction of calls that fell back to another logical model",
    "unavailable_fraction": "fraction of client attempts that found no deployment "
                            "available (all cooling down)",
}
"""Keys of :attr:`SimulationResult.routing` (routed profiles) and what they measure."""


@dataclass(frozen=True, slots=True)
class PopulationUse:
    """One session population of a profile with ``populations`` (its calls of measured
    turns; each figure a replication mean with its 95 % t-interval).

    Attributes
    ----------
    sessions : its sessions in this run (its share of N, or its held count).
    turns_per_hour : its turns completed per hour, all its sessions together.
    call_share : fraction of the calls (of measured turns) that were its calls.
    turn_latency_p95_s : 95th percentile of its turns' latency (seconds).
    attempt_429_fraction : fraction of its call attempts answered 429.
    """

    sessions: int
    turns_per_hour: Estimate
    call_share: Estimate
    turn_latency_p95_s: Estimate
    attempt_429_fraction: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {"sessions": self.sessions, "turns_per_hour": self.turns_per_hour.to_dict(),
                "call_share": self.call_share.to_dict(),
                "turn_latency_p95_s": self.turn_latency_p95_s.to_dict(),
                "attempt_429_fraction": self.attempt_429_fraction.to_dict()}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Metrics of N simulated sessions, each with a CI over replications.

    Attributes
    ----------
    profile : profile name.
    sessions : N (with ``populations``: the sessions that vary — ``session`` and the
        populations given a share of N; the held populations run beside them).
    seed, replications : reproduce the run with these.
    horizon_s, warmup_s : measured interval length and discarded warm-up (seconds).
    metrics : see :data:`METRICS`.
    utilisation : per ``quota.dimension``: admitted units charged in the measured
        interval over the limit for that interval (1 = the whole quota).
    window_exceedance : per fixed-window ``quota.dimension``: fraction of windows inside
        the measured interval in which that slot turned at least one attempt away.
    attempts_simulated : requests sent over all replications, warm-up included.
    deployments : per deployment of a routed profile (empty without ``routes``): the
        share of the calls it served and of the requests sent to it, its 429 and spill
        fractions. A routed profile's ``attempt_429_fraction`` counts client attempts (a
        first request plus its spills): a spill that is admitted is not a 429.
    routing : routed profiles: see :data:`ROUTING_METRICS` (empty without ``routes``).
    populations : per population of a profile with ``populations`` (``session`` first,
        then the declared ones; empty without): see :class:`PopulationUse`. The metrics
        above are over every population together.
    samples : per-replication values of every metric (not part of :meth:`to_dict`).
    """

    profile: str
    sessions: int
    seed: int
    replications: int
    horizon_s: float
    warmup_s: float
    metrics: dict[str, Estimate]
    utilisation: dict[str, Estimate]
    window_exceedance: dict[str, Estimate]
    attempts_simulated: int
    samples: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)
    deployments: dict[str, DeploymentUse] = field(default_factory=dict)
    routing: dict[str, Estimate] = field(default_factory=dict)
    populations: dict[str, PopulationUse] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; non-finite numbers become ``None``."""
        return {
            "profile": self.profile,
            "sessions": self.sessions,
            "seed": self.seed,
            "replications": self.replications,
            "horizon_s": self.horizon_s,
            "warmup_s": self.warmup_s,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "utilisation": {k: v.to_dict() for k, v in self.utilisation.items()},
            "window_exceedance": {k: v.to_dict() for k, v in self.window_exceedance.items()},
            "attempts_simulated": self.attempts_simulated,
            "deployments": {k: v.to_dict() for k, v in self.deployments.items()},
            "routing": {k: v.to_dict() for k, v in self.routing.items()},
            "populations": {k: v.to_dict() for k, v in self.populations.items()},
        }


# ---------------------------------------------------------------------------------------
# Compiling a profile into flat arrays
# ---------------------------------------------------------------------------------------


_Z95 = statistics.NormalDist().inv_cdf(0.95)


class _DistTable:
    """Collects distributions into the flat arrays the kernel samples from."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.p0: list[float] = []
        self.p1: list[float] = []
        self.off: list[int] = []
        self.len: list[int] = []
        self.values: list[float] = []
        self.cum: list[float] = []

    def add(self, d: Distribution) -> int:
        p0 = p1 = 0.0
        off = n = 0
        if d.kind == "fixed":
            kind, p0 = D_FIXED, d.params[0]
        elif d.kind == "uniform":
            kind = D_UNIFORM_INT if d.quantity == "count" else D_UNIFORM
            p0, p1 = d.params
        elif d.kind == "exponential":
            kind, p0 = D_EXPONENTIAL, d.params[0]
        elif d.kind == "lognormal":
            # Same parametrisation as Distribution: sigma = ln(p95/median) / z_0.95.
            kind, p0, p1 = D_LOGNORMAL, d.params[0], math.log(d.params[1] / d.params[0]) / _Z95
        else:
            kind = D_CHOICE
            off, n = len(self.values), len(d.values)
            cum = np.cumsum(d.weights)
            cum /= cum[-1]
            cum[-1] = 1.0
            self.values.extend(d.values)
            self.cum.extend(cum.tolist())
        self.kind.append(kind)
        self.p0.append(float(p0))
        self.p1.append(float(p1))
        self.off.append(off)
        self.len.append(n)
        return len(self.kind) - 1

    def arrays(self) -> tuple[NDArray[Any], ...]:
        """``(dpar, values, cumulative weights)``; ``dpar`` has one row per distribution."""
        dpar = np.column_stack([np.asarray(v, dtype=np.float64) for v in
                                (self.kind, self.p0, self.p1, self.off, self.len)])
        return (np.ascontiguousarray(dpar), np.asarray(self.values or [0.0]),
                np.asarray(self.cum or [1.0]))


@dataclass(frozen=True)
class _Compiled:
    """A profile as flat arrays, plus the derived constants the driver needs."""

    name: str
    slots: tuple[LimitSlot, ...]
    program: tuple[NDArray[Any], ...]  # turn_cum, turn_root, sprog (kind, a, b), sprob, schild
    dists: tuple[NDArray[Any], ...]  # dpar, cval, ccum
    site_dist: NDArray[np.int64]  # [site, (input, output, ttft, tps)] distribution ids
    site_cached: NDArray[np.float64]  # cached share of the input
    site_maxtok: NDArray[np.float64]
    coef: NDArray[np.float64]  # [site, slot, (request, input, cached, output, max_tokens)]
    cfg: NDArray[np.float64]
    max_nodes: int  # upper bound on an expanded turn's nodes (and expansion stack)
    mean_cycle_s: float
    warm: _WarmModel
    sites: tuple[CallSpec, ...] = ()  # the profile call behind each call site
    fleet: _Fleet | None = None  # routed profiles: the router as arrays
    pops: _Pops | None = None  # profiles with populations: their table and split

    def total_sessions(self, n: int) -> int:
        """Sessions the engine runs when N = ``n`` (the held populations included)."""
        return n if self.pops is None else int(self.pops.counts(n).sum())

    @property
    def deployments(self) -> tuple[str, ...]:
        """Deployment names by engine id (empty for a profile without routes)."""
        return () if self.fleet is None else self.fleet.deployments


@dataclass(frozen=True)
class _Fleet:
    """A routed profile's router (:func:`capacity.model.routing.router_from_profile`) as
    the engine's arrays (``replicate(..., route=arrays + (dstats,))``).

    ``arrays``: rsite ``[site, (chain offset, chain length)]``; rchain (logical model ids,
    each site's chain in fallback order: :meth:`Router.chain`); rlm ``[logical model,
    RL_*]``; rdep, rwt (route entries: deployment id, weight); sdep ``[site, deployment]``
    (its row below, -1: never serves the site); st_dist ``[row, (ttft, tokens/s)]``,
    st_maxtok, st_coef ``[row, slot, 5]`` (the charging rule per serving deployment:
    :func:`charge_coefficients` with ``target``); dslot ``[deployment, slot]`` (the slots
    :func:`capacity.model.routing.snapshots_for` reads for it); rcfg (cooldown, RC_*).
    """

    deployments: tuple[str, ...]
    logical: tuple[str, ...]
    arrays: tuple[NDArray[Any], ...]


@dataclass(frozen=True)
class _Pops:
    """A profile's session populations as the engine's arrays (``replicate(...,
    pops=(ptab, counts, pstats))``).

    ``names``: ``session`` first, then the declared populations. ``ptab[population,
    PP_*]``: pacing mode (0 think time, 1 cadence), pause distribution, its first turn
    type and number of turn types (its turn mix: ``turn_cum`` restarts at 0 for each).
    ``site_pop``: the population whose turns hold each call site. ``split``:
    :meth:`Profile.split` (N → sessions per population).
    """

    names: tuple[str, ...]
    ptab: NDArray[np.int64]
    site_pop: NDArray[np.int64]
    split: Callable[[int], dict[str, int]]

    def counts(self, n: int) -> NDArray[np.int64]:
        """Sessions of each population (in ``names`` order) when N = ``n``."""
        got = self.split(n)
        return np.asarray([got[k] for k in self.names], dtype=np.int64)


@dataclass(frozen=True)
class _WarmModel:
    """What the steady-state start of the limiter needs, per population and slot (see
    module docstring).

    ``load_per_session[population]`` : mean units one session of that population charges
    per second on each slot (units per turn over its analytic mean cycle). ``buckets
    [population]`` : the compound-Poisson model of each token bucket's input from that
    population (``None`` for other slots or buckets it does not charge). ``counts`` :
    sessions per population at N (``None``: one population, N sessions).
    """

    load_per_session: tuple[NDArray[np.float64], ...]
    buckets: tuple[tuple[Any, ...], ...]
    counts: Callable[[int], NDArray[np.int64]] | None = None

    def start(self, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                       NDArray[np.float64]]:
        """``(load, rho, theta)`` per slot at N = ``n`` (every population's sessions):
        offered units per second, bucket utilisation λE[B]/r and Lundberg exponent θ*
        (0 when ρ ≥ 1)."""
        counts = [n] if self.counts is None else [int(k) for k in self.counts(n)]
        n_slots = self.load_per_session[0].size
        load = np.zeros(n_slots)
        for k, per in zip(counts, self.load_per_session, strict=True):
            if k > 0:
                load += k * per
        rho = np.zeros(n_slots)
        theta = np.full(n_slots, math.inf)
        for i in range(n_slots):
            parts = [(k, bms[i]) for k, bms in zip(counts, self.buckets, strict=True)
                     if k > 0 and bms[i] is not None]
            if len(parts) == 1:
                k, bm = parts[0]
                lam = k * bm.rate_per_session
                rho[i] = lam * bm.mean_batch_units / bm.refill
                theta[i] = 0.0 if rho[i] >= 1.0 else lundberg_theta(lam, bm.severity, bm.h,
                                                                     bm.refill)
            elif parts:
                rho[i], theta[i] = _mixed_bucket(parts)
        return load, rho, theta


def _mixed_bucket(parts: list[tuple[int, Any]]) -> tuple[float, float]:
    """``(rho, theta)`` of a token bucket fed by several populations: the superposition of
    their compound-Poisson inputs (rates add; the charge law is the rate-weighted mixture,
    laid on the coarsest of their lattices, each charge rounded to its nearest point but
    never to 0). ρ is exact; θ* is that of the mixture."""
    lams = [k * bm.rate_per_session for k, bm in parts]
    lam = math.fsum(lams)
    refill = parts[0][1].refill
    rho = math.fsum(x * bm.mean_batch_units for x, (_, bm) in zip(lams, parts,
                                                                   strict=True)) / refill
    if rho >= 1.0:
        return rho, 0.0
    h = max(bm.h for _, bm in parts)
    idx = [np.maximum(np.rint(np.arange(bm.severity.size) * bm.h / h).astype(np.int64),
                      np.minimum(np.arange(bm.severity.size), 1)) for _, bm in parts]
    sev = np.zeros(int(max(int(i.max()) for i in idx)) + 1)
    for x, (_, bm), i in zip(lams, parts, idx, strict=True):
        np.add.at(sev, i, x / lam * bm.severity)
    return rho, lundberg_theta(lam, sev, h, refill)


def _warm_loads(profile: Profile, slots: tuple[LimitSlot, ...]) -> tuple[
        NDArray[np.float64], tuple[Any, ...], float]:
    """Per slot: the mean units one session of ``profile.session`` charges per second,
    its token buckets' input models, and its mean cycle (seconds)."""
    wl = Workload.from_profile(profile)
    cycle = max(cycle_time(wl).cycle_s, 1e-3)
    load = np.zeros(len(slots))
    buckets: list[Any] = []
    # The workload's constraints are built from the same limit_slots, in the same order.
    for i, (s, con) in enumerate(zip(slots, wl.constraints, strict=True)):
        load[i] = wl.units_per_turn(con) / cycle
        bm = None
        if s.kind == "token_bucket" and load[i] > 0.0:
            bm = bucket_model(wl, con, cycle)
        buckets.append(bm)
    return load, tuple(buckets), cycle


def _warm_model(profile: Profile, slots: tuple[LimitSlot, ...],
                pops: _Pops | None = None) -> _WarmModel:
    if pops is None:
        load, buckets, _ = _warm_loads(profile, slots)
        return _WarmModel((load,), (buckets,))
    # Each population's load as the analytic workload sees a profile of that population
    # alone (same quotas, routes and retry rule).
    loads, bms = [], []
    for one in population_profiles(profile).values():
        load, buckets, _ = _warm_loads(one, slots)
        loads.append(load)
        bms.append(buckets)
    return _WarmModel(tuple(loads), tuple(bms), pops.counts)


# The most recent compiled profiles, by identity (profiles are immutable).
_COMPILED: dict[int, tuple[Profile, _Compiled]] = {}


def _compile(profile: Profile) -> _Compiled:
    """Turn the profile's step trees, distributions and quotas into arrays (cached for
    the few most recent profiles: a search or sweep simulates one profile many times)."""
    return cached_per_profile(_COMPILED, profile, _compile_uncached)


def _primary(profile: Profile, call: CallSpec) -> str:
    """The first deployment (or model) serving ``call`` (the call's model unrouted)."""
    return profile.route_targets(call.model)[0][0] if profile.routes else call.model


def _compile_fleet(profile: Profile, sites: tuple[CallSpec, ...],
                   slots: tuple[LimitSlot, ...], dt: _DistTable) -> _Fleet:
    """The router of a profile with ``routes``, as arrays (see :class:`_Fleet`)."""
    router: Router = router_from_profile(profile)
    logical = tuple(router.routes)
    lm_id = {m: i for i, m in enumerate(logical)}
    dep_names: list[str] = []
    dep_id: dict[str, int] = {}
    dep_quotas: dict[str, tuple[str, ...]] = {}
    dep_model: dict[str, str] = {}
    rlm: list[list[int]] = []
    rdep: list[int] = []
    rwt: list[float] = []
    for m in logical:
        r = router.routes[m]
        if len(r.deployments) > MAX_ROUTE:
            raise SimulationError(f"routes.{m}: the simulator routes among at most "
                                  f"{MAX_ROUTE} deployments, got {len(r.deployments)}")
        row = [0] * RL_NCOL
        row[RL_POLICY] = POLICY_CODE[r.policy.name]
        row[RL_SPILLS] = int(r.spills)
        row[RL_PER_TURN] = int(isinstance(r.policy, Weighted) and r.policy.per_turn)
        row[RL_OFF], row[RL_LEN] = len(rdep), len(r.deployments)
        row[RL_ROLL_ALL] = int(any(d.quotas for d in r.deployments))
        rlm.append(row)
        for d in r.deployments:
            if d.name not in dep_id:
                dep_id[d.name] = len(dep_names)
                dep_names.append(d.name)
                dep_quotas[d.name], dep_model[d.name] = d.quotas, d.model
            rdep.append(dep_id[d.name])
            rwt.append(d.weight)
    n_deps, n_slots = len(dep_names), len(slots)
    chains: dict[str, list[int]] = {}
    rsite = np.zeros((len(sites), 2), dtype=np.int64)
    rchain: list[int] = []
    for i, call in enumerate(sites):
        if call.model not in chains:
            chains[call.model] = [lm_id[m] for m in router.chain(call.model)]
        rsite[i] = len(rchain), len(chains[call.model])
        rchain.extend(chains[call.model])
    sdep = np.full((len(sites), n_deps), -1, dtype=np.int64)
    st_dist: list[list[int]] = []
    st_maxtok: list[float] = []
    st_coef: list[NDArray[np.float64]] = []
    lat_ids: dict[str, list[int]] = {}
    for i, call in enumerate(sites):
        for lm in chains[call.model]:
            off, n = rlm[lm][RL_OFF], rlm[lm][RL_LEN]
            for j in rdep[off:off + n]:
                if sdep[i, j] >= 0:
                    continue
                name = dep_names[j]
                if name not in lat_ids:
                    spec = profile.model_of(name)
                    lat_ids[name] = [dt.add(spec.ttft), dt.add(spec.tokens_per_second)]
                c = charge_coefficients(profile, call, slots, target=name)
                sdep[i, j] = len(st_dist)
                st_dist.append(lat_ids[name])
                st_maxtok.append(c.max_tokens_value)
                st_coef.append(np.column_stack([c.request, c.input, c.cached, c.output,
                                                c.max_tokens]))
    # The slots usage_based reads (snapshots_for): a deployment's quotas, or else the
    # quotas covering its model.
    dslot = np.zeros((n_deps, n_slots), dtype=np.int8)
    for j, name in enumerate(dep_names):
        quotas = set(dep_quotas[name] or profile.quotas_for(dep_model[name]))
        for k, s in enumerate(slots):
            dslot[j, k] = s.quota in quotas
    rcfg = np.zeros(RC_NCOL)
    cd = router.cooldown
    if cd is not None:
        rcfg[RC_ON], rcfg[RC_THRESHOLD], rcfg[RC_MIN_CALLS] = 1.0, cd.threshold, cd.min_calls
        rcfg[RC_WINDOW], rcfg[RC_SECONDS] = cd.window_s, cd.cooldown_s
    arrays = (rsite, np.asarray(rchain, dtype=np.int64),
              np.asarray(rlm, dtype=np.int64).reshape(len(rlm), RL_NCOL),
              np.asarray(rdep, dtype=np.int64), np.asarray(rwt, dtype=np.float64), sdep,
              np.asarray(st_dist, dtype=np.int64).reshape(len(st_dist), 2),
              np.asarray(st_maxtok, dtype=np.float64),
              np.ascontiguousarray(np.asarray(st_coef, dtype=np.float64).reshape(
                  len(st_coef), n_slots, 5)),
              dslot, rcfg)
    return _Fleet(tuple(dep_names), logical, arrays)


def _compile_uncached(profile: Profile) -> _Compiled:
    slots = limit_slots(profile)
    routed = bool(profile.routes)
    dt = _DistTable()
    skind: list[int] = []
    sa: list[int] = []
    sb: list[int] = []
    sprob: list[float] = []
    schild: list[int] = []
    sites: list[CallSpec] = []
    site_rows: list[list[int]] = []
    site_cached: list[float] = []

    def node(kind: int, a: int = -1, b: int = -1, prob: float = 0.0) -> int:
        skind.append(kind)
        sa.append(a)
        sb.append(b)
        sprob.append(prob)
        return len(skind) - 1

    def call_node(call: CallSpec) -> tuple[int, int, float]:
        sites.append(call)
        # A routed call's latency is drawn on the deployment it is admitted by; its
        # first deployment stands in for the warm-up's mean cycle.
        primary = _primary(profile, call)
        model = profile.model_of(primary)
        site_rows.append([dt.add(call.input_tokens), dt.add(call.output_tokens),
                          dt.add(model.ttft), dt.add(model.tokens_per_second)])
        site_cached.append(call.cached_input_fraction)
        mt = profile.max_tokens_for(call, primary)
        out_mean = call.output_tokens.mean_clipped(math.inf if mt is None else mt)
        # Mean latency, only used to size the default warm-up.
        lat = model.ttft.mean + out_mean / model.tokens_per_second.mean
        return node(S_CALL, len(sites) - 1), 1, lat

    def seq_node(steps: tuple[Any, ...] | list[Any]) -> tuple[int, int, float]:
        built = [step_node(s) for s in steps]
        idx = node(S_SEQ, len(schild), len(built))
        schild.extend(b[0] for b in built)
        return idx, 1 + sum(b[1] for b in built), sum(b[2] for b in built)

    def body_node(block: Block) -> tuple[int, int, float]:
        if block.call is not None:
            return call_node(block.call)
        return seq_node(block.steps or [])

    def step_node(step: Any) -> tuple[int, int, float]:
        if isinstance(step, CallStep):
            return call_node(step.call)
        if isinstance(step, ParallelStep):
            par = step.parallel
            body, size, lat = body_node(par)
            n_max = int(par.count.upper)
            # A parallel block lasts at least as long as one copy: a rough mean.
            return (node(S_PAR, body, dt.add(par.count)), 1 + n_max * size,
                    lat if par.count.mean > 0 else 0.0)
        if isinstance(step, OptionalStep):
            opt = step.optional
            body, size, lat = body_node(opt)
            return node(S_OPT, body, -1, opt.probability), 1 + size, opt.probability * lat
        if isinstance(step, RepeatStep):
            rep = step.repeat
            body, size, lat = body_node(rep)
            n_max = int(rep.count.upper)
            return node(S_REP, body, dt.add(rep.count)), 1 + n_max * size, rep.count.mean * lat
        raise TypeError(f"unknown step {step!r}")  # pragma: no cover - validated profile

    # Every population's turn types, ``session``'s first; each population's mix is its
    # own stretch of turn_cum (a profile without populations has one: ``session``).
    roots: list[int] = []
    sizes: list[int] = []
    cums: list[NDArray[np.float64]] = []
    mean_turns: list[float] = []
    turn_rows: list[tuple[int, int]] = []
    site_pop: list[int] = []
    for pi, spec in enumerate(profile.all_sessions().values()):
        weights, lats = [], []
        turn_rows.append((len(roots), len(spec.turns)))
        for turn in spec.turns.values():
            root, size, lat = seq_node(turn.steps)
            roots.append(root)
            weights.append(turn.weight)
            sizes.append(size)
            lats.append(lat)
        site_pop.extend([pi] * (len(sites) - len(site_pop)))
        w = np.asarray(weights) / sum(weights)
        cum = np.cumsum(w)
        cum[-1] = 1.0
        cums.append(cum)
        mean_turns.append(float(np.dot(w, lats)))
    turn_cum = np.concatenate(cums)

    n_sites, n_slots = len(sites), len(slots)
    coef = np.zeros((n_sites, n_slots, 5))
    site_maxtok = np.full(n_sites, math.inf)
    for i, call in enumerate(sites):
        c = charge_coefficients(profile, call, slots,
                                target=_primary(profile, call) if routed else None)
        coef[i, :, 0], coef[i, :, 1], coef[i, :, 2] = c.request, c.input, c.cached
        coef[i, :, 3], coef[i, :, 4] = c.output, c.max_tokens
        site_maxtok[i] = c.max_tokens_value

    # The default warm-up: two mean cycles of the slowest population that has sessions.
    cycle = 0.0
    for name, spec, mean_turn in zip(profile.all_sessions(), profile.all_sessions().values(),
                                     mean_turns, strict=True):
        if name != SESSION and getattr(spec, "sessions", None) == 0:
            continue
        pause = spec.pause
        cycle = max(cycle, (pause.mean + mean_turn) if spec.mode == "think_time"
                    else max(pause.mean, mean_turn))
    sess = profile.session
    r, pc = profile.retry, profile.pacing
    cfg = np.zeros(15)
    cfg[C_MODE] = 0.0 if sess.mode == "think_time" else 1.0
    cfg[C_PAUSE] = dt.add(sess.pause)
    cfg[C_MAX_RETRIES] = r.max_retries
    cfg[C_INIT_DELAY] = r.initial_delay
    cfg[C_MAX_DELAY] = r.max_delay
    cfg[C_JITTER] = r.jitter
    # Bit 0: honour the retry-after; bit 1: give up beyond max_retry_after (C reads both).
    cfg[C_HONOUR] = ((1.0 if r.honour_retry_after else 0.0)
                     + (2.0 if r.beyond_max_retry_after == "give_up" else 0.0))
    cfg[C_MAX_RA] = r.max_retry_after
    cfg[C_REJ_LAT] = r.rejection_latency
    cfg[C_ABORT] = 1.0 if r.on_exhausted == "abort_turn" else 0.0
    if pc is not None and pc.rpm is not None:
        cfg[C_PACE_RATE] = pc.rpm / 60.0
        cfg[C_PACE_DEPTH] = max(1.0, pc.rpm * pc.burst / 60.0)
    if pc is not None and pc.concurrency is not None:
        cfg[C_PACE_CONC] = pc.concurrency
    # The steady-state start (THE rule: steady_phase), as fixed distributions added last so
    # every other index is what it was.
    starts = [steady_phase(spec, profile) for spec in profile.all_sessions().values()]
    start_d = [(dt.add(Distribution.fixed(p_turn)), dt.add(law)) for p_turn, _, law in starts]
    cfg[C_START_P], cfg[C_TURN_LAW] = start_d[0]

    sprog = np.ascontiguousarray(np.column_stack([skind, sa, sb]).astype(np.int64))
    program = (turn_cum, np.asarray(roots, dtype=np.int64), sprog, np.asarray(sprob),
               np.asarray(schild or [0], dtype=np.int64))
    fleet = _compile_fleet(profile, tuple(sites), slots, dt) if routed else None
    pops = None
    if profile.populations:
        ptab = np.zeros((len(turn_rows), PP_NCOL), dtype=np.int64)
        for pi, spec in enumerate(profile.all_sessions().values()):
            ptab[pi, PP_MODE] = 0 if spec.mode == "think_time" else 1
            ptab[pi, PP_PAUSE] = int(cfg[C_PAUSE]) if pi == 0 else dt.add(spec.pause)
            ptab[pi, PP_TURN_OFF], ptab[pi, PP_TURN_LEN] = turn_rows[pi]
            ptab[pi, PP_START_P], ptab[pi, PP_TURN_LAW] = start_d[pi]
        pops = _Pops(tuple(profile.all_sessions()), ptab,
                     np.asarray(site_pop, dtype=np.int64), profile.split)
    return _Compiled(
        name=profile.title, slots=slots, program=program, dists=dt.arrays(),
        site_dist=np.asarray(site_rows, dtype=np.int64).reshape(n_sites, 4),
        site_cached=np.asarray(site_cached, dtype=np.float64), site_maxtok=site_maxtok,
        coef=coef, cfg=cfg, max_nodes=max(sizes),
        mean_cycle_s=max(cycle, 1e-3), sites=tuple(sites), fleet=fleet, pops=pops,
        warm=_warm_model(profile, slots, pops),
    )



def sample_distribution(dist: Distribution, n: int, seed: int) -> NDArray[np.float64]:
    """Draw ``n`` values of ``dist`` with the simulator's own sampler (for validation)."""
    t = _DistTable()
    d = t.add(dist)
    key = np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]
    out: NDArray[np.float64] = sample_many(d, int(key), n, *t.arrays())
    return out



# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------

# Above this many instance nodes a replication would need gigabytes of memory.
_MAX_POOL = 50_000_000
_POOL_IDS = itertools.count()  # names each run's worker threads apart


def _check_args(sessions: int, horizon_s: float, warmup_s: float | None,
                replications: int, seed: int, *, least: int = 1) -> None:
    """Refuse impossible settings; ``least`` is the fewest sessions N may be (0 when
    held populations run anyway)."""
    if (isinstance(sessions, bool) or not isinstance(sessions, int | np.integer)
            or sessions < least):
        raise SimulationError(f"sessions must be an integer ≥ {least}, got {sessions!r}")
    if not (isinstance(horizon_s, int | float) and math.isfinite(horizon_s) and horizon_s > 0):
        raise SimulationError(f"horizon must be a positive number of seconds, got {horizon_s!r}")
    if warmup_s is not None and not (math.isfinite(warmup_s) and warmup_s >= 0):
        raise SimulationError(f"warm-up must be ≥ 0 seconds, got {warmup_s!r}")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise SimulationError(f"replications must be an integer ≥ 1, got {replications!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SimulationError(f"seed must be a non-negative integer, got {seed!r}")


def default_warmup(profile: Profile) -> float:
    """Default warm-up (seconds): two mean session cycles (pause plus mean turn)."""
    return 2.0 * _compile(profile).mean_cycle_s


@dataclass(frozen=True)
class _RepOut:
    stats: NDArray[np.float64]
    latencies: NDArray[np.float64]
    util: NDArray[np.float64]
    exceeded: NDArray[np.float64]
    windows: NDArray[np.float64]
    traced: int = 0
    deployments: NDArray[np.float64] | None = None  # [deployment, DS_*] (routed profiles)
    pops: NDArray[np.float64] | None = None  # [population, K_TURNS..K_TURNS_WINDOW]
    latency_pop: NDArray[np.int64] | None = None  # each latency's population


def _initial_use(c: _Compiled, P: NDArray[np.float64], u: float,
                 start: tuple[NDArray[np.float64], ...], warmup_s: float = math.inf
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(bucket_deficit, window_used)`` per slot at t = 0 (see the module docstring).

    ``u`` is the replication's uniform for the bucket deficits; ``start`` is
    :meth:`_WarmModel.start` at this N. A sliding log no longer than the warm-up
    (``warmup_s``) starts empty: the warm-up fills it with the sessions' own calls,
    whereas its mean content laid down at t = 0 is placed independently of their phases
    (and of the calls they are about to make) — N sessions that can never overfill a
    window were refused by it, and the counted retries stormed. One whose offered load
    fills it (a priority deployment that spills the rest) starts full all the same.
    """
    load, rho, theta = start
    deficit = np.zeros(len(c.slots))
    used = np.zeros(len(c.slots))
    for i, s in enumerate(c.slots):
        if s.kind == "token_bucket":
            if rho[i] <= 0.0:
                continue
            depth = s.allowance
            if theta[i] == 0.0:
                deficit[i] = depth  # load ≥ refill: the bucket runs empty
            elif u > 1.0 - rho[i] and math.isfinite(theta[i]):
                # Inverse of P(D ≤ x) = 1 − ρ·exp(−θ* x).
                deficit[i] = min(math.log(rho[i] / (1.0 - u)) / theta[i], depth)
        elif s.kind == "fixed_window":
            # Units charged since the current window opened (P_OFFSET seconds ago).
            used[i] = min(load[i] * P[i, P_OFFSET], s.allowance)
        elif s.window_s > warmup_s or load[i] * s.window_s >= s.allowance:
            # A log whose offered load fills it runs full: it admits what expires. Empty
            # at t = 0 it fills in the first part of a window and then admits only as
            # that fill expires, the same part of every window — a pattern each window
            # replays for tens of minutes (hunt-69's 60 s log at 1.7× its allowance: its
            # spill, every call for ~24 s a minute, overflowed the token bucket after it,
            # 22 % of the spill refused in the first 10 minutes, 6 % at 20-30, none after
            # 40). Its steady content, spread over the window, expires and admits evenly.
            used[i] = min(load[i] * s.window_s, s.allowance)
    return deficit, used


def bucket_start(profile: Profile, sessions: int, u: float) -> dict[str, float]:
    """Units missing from each token bucket (by slot key) when a replication of
    ``sessions`` sessions starts with the uniform ``u`` (the steady-state start of the
    module docstring; 0 for a bucket the load leaves full). With populations,
    ``sessions`` is N: the split applies, held sessions included. Windows start empty
    (short ones) or with their mean content (day windows), which a load generator's
    target does not need: its memory is the run itself."""
    if not any(q.enforcement_for(dim).type == "token_bucket"
               for q in profile.quotas.values() for dim in q.limits()):
        return {}  # windows only: nothing to start part-used (and no compile needed)
    c = _compile(profile)
    if not any(s.kind == "token_bucket" for s in c.slots):
        return {}
    params = LimiterArrays.from_slots(c.slots, 0.0).params
    deficit, _ = _initial_use(c, params, u, c.warm.start(sessions))
    return {s.key: float(d) for s, d in zip(c.slots, deficit, strict=True)
            if s.kind == "token_bucket"}


def clock_offset(u: float) -> float:
    """The provider's clock at t = 0 (the fixed windows' phase) for the uniform ``u``:
    uniform over a day. ``capacity loadtest`` hands ``capacity serve`` one such draw."""
    return u * 86400.0


def _rep_setup(c: _Compiled, sessions: int, child: np.random.SeedSequence,
               start: tuple[NDArray[np.float64], ...] | None = None,
               warmup_s: float = math.inf
               ) -> tuple[np.uint64, float, NDArray[np.float64], NDArray[np.float64],
                          NDArray[np.float64]]:
    """A replication's key, provider clock offset, limiter parameters and starting use
    (``warmup_s``: the replication's warm-up, see :func:`_initial_use`)."""
    state = child.generate_state(3, np.uint64)
    rep_key = state[0]
    clock = clock_offset(float(state[1] >> np.uint64(11)) * 2.0**-53)
    P = LimiterArrays.from_slots(c.slots, clock).params
    u = float(state[2] >> np.uint64(11)) * 2.0**-53
    deficit, used = _initial_use(c, P, u, c.warm.start(sessions) if start is None else start,
                                 warmup_s)
    return rep_key, clock, P, deficit, used


def _run_rep(c: _Compiled, sessions: int, child: np.random.SeedSequence, t0: float,
             t1: float, start: tuple[NDArray[np.float64], ...] | None = None,
             trace: NDArray[np.float64] | None = None) -> _RepOut:
    rep_key, _, P, deficit, used = _rep_setup(c, sessions, child, start, t0)
    if trace is None:
        trace = np.zeros((0, T_UNITS + len(c.slots) + len(c.deployments)))
    turn_cum, turn_root, sprog, sprob, schild = c.program
    dpar, cval, ccum = c.dists
    dstats = None
    route = None
    if c.fleet is not None:
        dstats = np.zeros((len(c.deployments), DS_NCOL))
        route = (*c.fleet.arrays, dstats)
    pstats = latp = None
    if c.pops is not None:
        counts = c.pops.counts(sessions)
        pstats = np.zeros((len(c.pops.names), PS_NCOL))
        stats, lat, util, exc, n_trace, latp = replicate(
            int(counts.sum()), int(rep_key), t0, t1, c.max_nodes, turn_cum, turn_root,
            sprog, sprob, schild, dpar, cval, ccum, c.site_dist, c.site_cached,
            c.site_maxtok, c.coef, P, c.cfg, deficit, used, trace, route=route,
            pops=(c.pops.ptab, counts, pstats))
    else:
        stats, lat, util, exc, n_trace = replicate(
            sessions, int(rep_key), t0, t1, c.max_nodes, turn_cum, turn_root, sprog, sprob,
            schild, dpar, cval, ccum, c.site_dist, c.site_cached, c.site_maxtok, c.coef, P,
            c.cfg, deficit, used, trace, route=route)
    # Fixed windows lying wholly inside the measured interval, per slot.
    windows = np.zeros(len(c.slots))
    for i, s in enumerate(c.slots):
        if s.kind == "fixed_window":
            w, off = P[i, P_WINDOW], P[i, P_OFFSET]
            k_lo = math.ceil((t0 + off) / w)
            k_hi = math.floor((t1 + off) / w) - 1
            windows[i] = max(0, k_hi - k_lo + 1)
    return _RepOut(stats, lat, util, exc, windows, int(n_trace), dstats, pstats, latp)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _summarise(c: _Compiled, reps: list[_RepOut], horizon_s: float) -> tuple[
    dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]
]:
    m: dict[str, list[float]] = {k: [] for k in METRICS}
    util: dict[str, list[float]] = {s.key: [] for s in c.slots}
    exc: dict[str, list[float]] = {s.key: [] for s in c.slots if s.kind == "fixed_window"}
    for r in reps:
        s = r.stats
        m["attempt_429_fraction"].append(_ratio(s[K_REJECTED], s[K_ATTEMPTS]))
        m["call_failure_fraction"].append(_ratio(s[K_CALLS_FAILED], s[K_CALLS]))
        m["turn_429_fraction"].append(_ratio(s[K_TURNS_429], s[K_TURNS]))
        m["turn_failure_fraction"].append(_ratio(s[K_TURNS_FAILED], s[K_TURNS]))
        if r.latencies.size:
            p50, p95, p99 = np.percentile(r.latencies, [50.0, 95.0, 99.0])
            mean = float(r.latencies.mean())
        else:
            p50 = p95 = p99 = mean = math.nan
        m["turn_latency_mean_s"].append(mean)
        m["turn_latency_p50_s"].append(float(p50))
        m["turn_latency_p95_s"].append(float(p95))
        m["turn_latency_p99_s"].append(float(p99))
        m["goodput_calls_per_min"].append(s[K_GOOD_WINDOW] / horizon_s * 60.0)
        m["turn_throughput_per_s"].append(s[K_TURNS_WINDOW] / horizon_s)
        m["attempts_per_call"].append(_ratio(s[K_ATTEMPTS], s[K_CALLS]))
        m["calls_per_turn"].append(_ratio(s[K_CALLS], s[K_TURNS]))
        m["pacing_wait_mean_s"].append(_ratio(s[K_PACE_WAIT], s[K_CALLS]))
        for i, slot in enumerate(c.slots):
            util[slot.key].append(r.util[i] / (slot.limit * horizon_s / slot.period_s))
            if slot.key in exc:
                exc[slot.key].append(_ratio(r.exceeded[i], r.windows[i]))
    return m, util, exc


def simulate(
    profile: Profile,
    sessions: int,
    *,
    horizon_s: float = 3600.0,
    warmup_s: float | None = None,
    replications: int = 20,
    seed: int,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> SimulationResult:
    """Simulate ``sessions`` concurrent sessions of ``profile`` against its quotas.

    Parameters
    ----------
    profile : a validated profile.
    sessions : N, the number of concurrent sessions (≥ 1). With ``populations``: the
        sessions that vary (``session`` and the share populations, split by
        :meth:`Profile.split`), and the held populations run beside them (N may then be
        0). Sessions run in contiguous blocks by population, ``session`` first; session
        *j* of a population has the same random stream whatever N is.
    horizon_s : length of the measured interval (seconds of simulated time).
    warmup_s : simulated time discarded before it (seconds); default two mean cycles.
    replications : independent replications (≥ 2 for confidence intervals).
    seed : root of all randomness; the same seed gives the same result, and runs with
        the same seed share common random numbers across ``sessions``.
    progress : called with the number of replications finished so far.
    workers : threads running replications in parallel (default: one per CPU).

    Returns
    -------
    SimulationResult

    Raises
    ------
    SimulationError : for a non-positive N (a negative one when held populations run
        beside it), horizon or replication count, or a negative seed or warm-up.
    """
    _check_args(sessions, horizon_s, warmup_s, replications, seed,
                least=0 if profile.held_sessions > 0 else 1)
    return _simulate_compiled(_compile(profile), int(sessions), horizon_s=float(horizon_s),
                              warmup_s=warmup_s, replications=replications, seed=int(seed),
                              progress=progress, workers=workers)


def _simulate_compiled(c: _Compiled, sessions: int, *, horizon_s: float,
                       warmup_s: float | None, replications: int, seed: int,
                       progress: Callable[[int], None] | None, workers: int | None,
                       done_before: int = 0) -> SimulationResult:
    reps = _run_reps(c, sessions, horizon_s=horizon_s, warmup_s=warmup_s,
                     first=0, replications=replications, seed=seed, progress=progress,
                     workers=workers, done_before=done_before)
    return _result(c, sessions, reps, horizon_s=horizon_s, warmup_s=warmup_s, seed=seed)


def _check_size(c: _Compiled, sessions: int) -> None:
    total = c.total_sessions(sessions)
    if total < 1:
        raise SimulationError(
            f"no session to simulate: N = {sessions} and the held populations have none")
    sessions = total
    if sessions * c.max_nodes > _MAX_POOL:
        raise SimulationError(
            f"{sessions} sessions × up to {c.max_nodes} calls and blocks per turn is too "
            "large to simulate; reduce the sessions or the repeat/parallel counts")


def _run_reps(c: _Compiled, sessions: int, *, horizon_s: float, warmup_s: float | None,
              first: int, replications: int, seed: int,
              progress: Callable[[int], None] | None, workers: int | None,
              done_before: int = 0) -> list[_RepOut]:
    """Replications ``first .. replications − 1`` of the run with this seed (children of
    ``SeedSequence(seed)``: the first k of R replications are the same whatever R is, so
    a run can be extended with more replications later)."""
    _check_size(c, sessions)
    warm = 2.0 * c.mean_cycle_s if warmup_s is None else float(warmup_s)
    t0, t1 = warm, warm + horizon_s
    children = np.random.SeedSequence(seed).spawn(replications)[first:]
    n = len(children)
    n_workers = max(1, min(workers or os.cpu_count() or 1, n))
    reps: list[_RepOut | None] = [None] * n
    start = c.warm.start(sessions)
    # The compiled loop releases the GIL, so threads run replications on separate cores;
    # even one replication runs off the main thread, which stays in Python to take a
    # Ctrl-C at once (a signal reaches Python only between bytecodes): it then tells the
    # running loops to stop (they return within a few thousand events) and re-raises.
    stop(False)
    name = f"capacity-replications-{next(_POOL_IDS)}"
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix=name)
    try:
        futures = [pool.submit(_run_rep, c, sessions, ch, t0, t1, start) for ch in children]
        for i, f in enumerate(futures):
            reps[i] = f.result()
            if progress is not None:
                progress(done_before + i + 1)
    except KeyboardInterrupt:
        stop(True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        # A Ctrl-C inside submit() (while Thread.start waits for a new worker) leaves that
        # worker out of the pool's list, so shutdown() does not wait for it; clearing the
        # flag then let it run its replication to the end (minutes; the interpreter waits
        # for it at exit). Every worker of this pool, listed or not, stops first. One
        # still starting (Ctrl-C in Thread.start's wait before the OS ran it) cannot be
        # joined, and needs not be: the queue it will read holds only the stop marker.
        for t in threading.enumerate():
            if t.name.startswith(name + "_") and t.is_alive():
                t.join()
        stop(False)
    return [r for r in reps if r is not None]


def _result(c: _Compiled, sessions: int, done: list[_RepOut], *, horizon_s: float,
            warmup_s: float | None, seed: int) -> SimulationResult:
    """The summary of replications ``done`` (in replication order)."""
    warm = 2.0 * c.mean_cycle_s if warmup_s is None else float(warmup_s)
    m, util, exc = _summarise(c, done, horizon_s)
    return SimulationResult(
        profile=c.name, sessions=sessions, seed=seed, replications=len(done),
        horizon_s=horizon_s, warmup_s=warm,
        # Every metric is non-negative; fractions are also at most 1.
        metrics={k: Estimate.from_samples(v, lower=0.0,
                                          upper=1.0 if k.endswith("_fraction") else math.inf)
                 for k, v in m.items()},
        utilisation={k: Estimate.from_samples(v, lower=0.0) for k, v in util.items()},
        window_exceedance={k: Estimate.from_samples(v, lower=0.0, upper=1.0)
                           for k, v in exc.items()},
        attempts_simulated=int(sum(r.stats[K_ATTEMPTS_ALL] for r in done)),
        samples={k: tuple(v) for k, v in m.items()},
        deployments=_deployment_use(c, done), routing=_routing(c, done),
        populations=_population_use(c, sessions, done, horizon_s),
    )


def _fraction(v: list[float]) -> Estimate:
    return Estimate.from_samples(v, lower=0.0, upper=1.0)


def _deployment_use(c: _Compiled, done: list[_RepOut]) -> dict[str, DeploymentUse]:
    """Per deployment: shares, 429 and spill fractions (routed profiles)."""
    out: dict[str, DeploymentUse] = {}
    reps = [r.deployments for r in done if r.deployments is not None]
    for j, name in enumerate(c.deployments):
        out[name] = DeploymentUse(
            share=_fraction([_ratio(d[j, DS_ADMITTED], d[:, DS_ADMITTED].sum())
                             for d in reps]),
            sent_share=_fraction([_ratio(d[j, DS_SENT], d[:, DS_SENT].sum()) for d in reps]),
            reject_fraction=_fraction([_ratio(d[j, DS_REJECTED], d[j, DS_SENT])
                                       for d in reps]),
            spill_fraction=_fraction([_ratio(d[j, DS_SPILLED], d[j, DS_SENT])
                                      for d in reps]))
    return out


def _population_use(c: _Compiled, sessions: int, done: list[_RepOut],
                    horizon_s: float) -> dict[str, PopulationUse]:
    """Per population (profiles with ``populations``): see :class:`PopulationUse`."""
    if c.pops is None:
        return {}
    counts = c.pops.counts(sessions)
    out: dict[str, PopulationUse] = {}
    for p, name in enumerate(c.pops.names):
        tph, share, p95, f429 = [], [], [], []
        for r in done:
            assert r.pops is not None and r.latency_pop is not None
            s = r.pops[p]
            tph.append(s[K_TURNS_WINDOW] / horizon_s * 3600.0)
            share.append(_ratio(s[K_CALLS], r.pops[:, K_CALLS].sum()))
            f429.append(_ratio(s[K_REJECTED], s[K_ATTEMPTS]))
            lat = r.latencies[r.latency_pop == p]
            p95.append(float(np.percentile(lat, 95.0)) if lat.size else math.nan)
        out[name] = PopulationUse(
            sessions=int(counts[p]), turns_per_hour=Estimate.from_samples(tph, lower=0.0),
            call_share=_fraction(share), turn_latency_p95_s=Estimate.from_samples(
                p95, lower=0.0), attempt_429_fraction=_fraction(f429))
    return out


def _routing(c: _Compiled, done: list[_RepOut]) -> dict[str, Estimate]:
    """Spills, fallbacks and unavailable rounds (routed profiles; see ROUTING_METRICS)."""
    if c.fleet is None:
        return {}
    s = [r.stats for r in done]
    return {
        "sends_per_attempt": Estimate.from_samples(
            [_ratio(x[K_SENDS], x[K_ATTEMPTS]) for x in s], lower=0.0),
        "spill_fraction": _fraction([_ratio(x[K_SPILLS], x[K_SENDS]) for x in s]),
        "fallback_fraction": _fraction([_ratio(x[K_FALLBACKS], x[K_CALLS]) for x in s]),
        "unavailable_fraction": _fraction([_ratio(x[K_UNAVAILABLE], x[K_ATTEMPTS])
                                           for x in s]),
    }


@dataclass(frozen=True)
class AttemptTrace:
    """Every attempt of one replication, as the engine decided it (trace mode).

    ``rows[k]`` is attempt ``k`` in the order the engine sent them; columns ``T_*`` of
    :mod:`capacity.sim.kernels`: time (s), session, call instance, call site, attempt
    number (1 = first try; routed: every choice of a deployment counts), input / cached /
    output tokens, admitted (0/1), retry-after (s), the wait before the next retry (s;
    ``WAIT_NONE`` if admitted, ``WAIT_GAVE_UP`` if the call gave up), the jitter draw;
    the routing decision (the deployment chosen, by index into ``deployments``, -1 when
    none was available or the profile has no routes; the call's and the turn's draws; the
    next step, ``NX_*``); an admitted attempt's latency (s); then the units charged on each
    slot and, for a routed profile, the calls in flight on each deployment when the
    choice was made.

    Attributes
    ----------
    rows : the attempts (``attempts × (T_UNITS + slots)``).
    slots : the limiter's slots, in column order.
    sites : the profile call behind each call site (its model and max_tokens).
    clock_offset_s : the provider's clock at t = 0 (window phase), seconds.
    bucket_deficit, window_used : the limiter's starting use per slot.
    deployments : deployment names by index (empty for a profile without routes).
    populations : a profile with ``populations``: (population, sessions) in the order of
        the engine's contiguous session blocks (session ids ``0 .. sessions − 1`` of the
        first, and so on); empty without.
    site_populations : a profile with ``populations``: the population whose turns hold
        each call site; empty without.
    """

    rows: NDArray[np.float64]
    slots: tuple[LimitSlot, ...]
    sites: tuple[CallSpec, ...]
    clock_offset_s: float
    bucket_deficit: NDArray[np.float64]
    window_used: NDArray[np.float64]
    deployments: tuple[str, ...] = ()
    populations: tuple[tuple[str, int], ...] = ()
    site_populations: tuple[str, ...] = ()

    def session_population(self, session: int) -> str:
        """The population of engine session ``session`` (``session`` without populations)."""
        for name, n in self.populations:
            if session < n:
                return name
            session -= n
        return SESSION


def trace_attempts(profile: Profile, sessions: int, *, horizon_s: float = 600.0,
                   warmup_s: float | None = None, seed: int, replication: int = 0,
                   max_attempts: int = 1_000_000) -> AttemptTrace:
    """Run one replication of :func:`simulate` (the same one: same seed, same index) and
    record every attempt it makes.

    Raises
    ------
    SimulationError : if the replication makes more than ``max_attempts`` attempts.
    """
    _check_args(sessions, horizon_s, warmup_s, max(2, replication + 1), seed,
                least=0 if profile.held_sessions > 0 else 1)
    c = _compile(profile)
    _check_size(c, sessions)
    warm = 2.0 * c.mean_cycle_s if warmup_s is None else float(warmup_s)
    child = np.random.SeedSequence(seed).spawn(replication + 1)[replication]
    _, clock, _, deficit, used = _rep_setup(c, sessions, child, warmup_s=warm)
    buf = np.zeros((max_attempts, T_UNITS + len(c.slots) + len(c.deployments)))
    out = _run_rep(c, sessions, child, warm, warm + horizon_s, trace=buf)
    if out.traced > max_attempts:
        raise SimulationError(f"the replication made more than {max_attempts} attempts; "
                              "raise max_attempts or shorten the horizon")
    pops: tuple[tuple[str, int], ...] = ()
    site_pops: tuple[str, ...] = ()
    if c.pops is not None:
        pops = tuple(zip(c.pops.names, (int(k) for k in c.pops.counts(sessions)),
                         strict=True))
        site_pops = tuple(c.pops.names[int(p)] for p in c.pops.site_pop)
    return AttemptTrace(buf[:out.traced].copy(), c.slots, c.sites, clock, deficit, used,
                        c.deployments, pops, site_pops)
