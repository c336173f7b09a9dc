"""Monte Carlo: closed-loop discrete-event simulation of N sessions against the quotas.

Model (one replication)
-----------------------
* N sessions; each repeats: draw a turn type from the mix, run its steps, pause.
  ``think_time``: the pause starts when the turn ends (closed loop). ``cadence``: the next
  turn starts at ``max(start + cadence, end)``. Sessions start in steady state: each
  session's first turn begins after an equilibrium residual of its pause distribution
  (what an observer arriving at a random instant waits; exact for cadences and for
  exponential think times — the warm-up removes what is left of the transient).
* Steps: a call; ``parallel`` (``count`` copies of the body launched at the same instant,
  the block ends when the last copy ends); ``optional`` (the body with ``probability``);
  ``repeat`` (the body ``count`` times in sequence). A call lasts
  ``ttft + min(output, max_tokens) / tokens_per_second`` once admitted.
* Every attempt goes through the provider limiter (:mod:`capacity.limits`). A 429 reaches
  the client ``rejection_latency`` later; retry *k* (1-based) then waits the retry-after if
  ``honour_retry_after`` and ``0 < retry_after ≤ max_retry_after``, else
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

Steady-state start of the limiter
---------------------------------
A fresh limiter (full buckets, empty windows) would let the measured interval live off
its initial allowance: near saturation a full bucket adds ``depth`` units that the load
takes an hour or more to use up, and a day window (``rpd``/``tpd``) longer than the whole
run is never exhausted. So each replication starts the limiter already part-used, at the
offered load of N sessions, ``λ_u = N · units per turn / mean cycle`` (the analytic
:func:`capacity.analytic.cycle_time`), with retries and counted rejections left out:

* **Token bucket.** The deficit ``D = depth − level`` is a random walk reflected at 0
  (full bucket) that jumps by each charge and drifts down at the refill rate ``r``. For
  compound-Poisson input (the model of :func:`capacity.analytic.bucket_model`) its
  stationary law has an atom ``1 − ρ`` at 0 (``ρ = λ E[B] / r``, the fraction of time the
  bucket is not full) and a Cramér–Lundberg tail ``∝ exp(−θ* x)`` (θ* from
  :func:`capacity.analytic.lundberg_theta`). The start draws ``D`` by inversion from
  ``P(D ≤ x) = 1 − ρ·exp(−θ* x)``, cut at ``depth`` (exact for exponential charges; the
  right atom and tail in general), and ``D = depth`` (empty bucket) when ``ρ ≥ 1``. One
  uniform per replication, drawn from its own seed stream, serves every bucket (their
  deficits are driven by the same calls, so they move together); being the same whatever
  N is, it keeps the start a common random number across the saturation search.
* **Fixed window.** The provider's clock phase is random per replication, so t = 0 falls
  ``e`` seconds into the current window; its counter starts at ``min(λ_u · e, q)``, the
  expected use since the window opened.
* **Sliding window.** The log starts with ``min(λ_u · w, q)`` units spread as 64 equal
  charges over ``(−w, 0]``, which then expire steadily during the first window.

After that the warm-up removes what is left of the transient. For windows shorter than
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
*k*'s stream key is a SplitMix64 hash of (replication key, k), turn *j*'s key a hash of
(session key, j), and every draw within a turn (type, counts, tokens, latencies, pause,
retry jitter) is a counter-based SplitMix64 output of that key at a fixed position. So
session *k*'s *j*-th turn is identical whatever N is and whatever happened before it —
common random numbers across the saturation search — and no global random state is used.
Distributions are sampled by inverse transform (Box–Muller for the lognormal), matching
:class:`capacity.dist.Distribution` (tested against its quantiles); token counts are
rounded to whole tokens, as providers count them.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llvmlite import ir as llvmir
from numba import njit
from numba.core import cgutils
from numba.core import types as nbtypes
from numba.extending import intrinsic
from numpy.typing import NDArray

from .analytic import bucket_model, cycle_time, lundberg_theta
from .dist import Distribution
from .errors import CapacityError
from .jsonsafe import finite as _finite
from .limits import (
    KIND_FIXED,
    KIND_SLIDING,
    P_KIND,
    P_OFFSET,
    P_WINDOW,
    LimiterArrays,
    LimitSlot,
    charge_coefficients,
    grow_logs,
    limit_slots,
    limiter_attempt,
    loaded_state,
    log_full,
)
from .profile import (
    Block,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
)
from .workload import Workload, cached_per_profile

__all__ = ["METRICS", "Estimate", "SimulationError", "SimulationResult", "default_warmup",
           "sample_distribution", "simulate"]


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


def _t_quantile(p: float, df: int) -> float:
    from scipy.special import stdtrit  # scipy.stats.t.ppf without importing scipy.stats

    return float(stdtrit(df, p))


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
class SimulationResult:
    """Metrics of N simulated sessions, each with a CI over replications.

    Attributes
    ----------
    profile : profile name.
    sessions : N.
    seed, replications : reproduce the run with these.
    horizon_s, warmup_s : measured interval length and discarded warm-up (seconds).
    metrics : see :data:`METRICS`.
    utilisation : per ``quota.dimension``: admitted units charged in the measured
        interval over the limit for that interval (1 = the whole quota).
    window_exceedance : per fixed-window ``quota.dimension``: fraction of windows inside
        the measured interval in which that slot turned at least one attempt away.
    attempts_simulated : call attempts simulated over all replications, warm-up included.
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
        }


# ---------------------------------------------------------------------------------------
# Compiling a profile into flat arrays
# ---------------------------------------------------------------------------------------

# Distribution kinds in the array form.
D_FIXED, D_UNIFORM, D_UNIFORM_INT, D_EXPONENTIAL, D_LOGNORMAL, D_CHOICE = range(6)
_Z95 = statistics.NormalDist().inv_cdf(0.95)

# Static (profile) node kinds and instance (expanded turn) node kinds.
S_CALL, S_SEQ, S_PAR, S_OPT, S_REP = range(5)
I_CALL, I_SEQ, I_PAR = range(3)

# Columns of the distribution parameter table.
DP_KIND, DP_P0, DP_P1, DP_OFF, DP_LEN = range(5)

# Columns of the per-site distribution table.
SITE_IN, SITE_OUT, SITE_TTFT, SITE_TPS = range(4)

# cfg vector entries.
(C_MODE, C_PAUSE, C_MAX_RETRIES, C_INIT_DELAY, C_MAX_DELAY, C_JITTER, C_HONOUR, C_MAX_RA,
 C_REJ_LAT, C_ABORT, C_PACE_RATE, C_PACE_DEPTH, C_PACE_CONC) = range(13)

# Replication statistics vector entries.
(K_TURNS, K_TURNS_429, K_TURNS_FAILED, K_CALLS, K_CALLS_FAILED, K_ATTEMPTS, K_REJECTED,
 K_GOOD_WINDOW, K_TURNS_WINDOW, K_PACE_WAIT, K_ATTEMPTS_ALL) = range(11)
N_STATS = K_ATTEMPTS_ALL + 1


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


@dataclass(frozen=True)
class _WarmModel:
    """What the steady-state start of the limiter needs, per slot (see module docstring).

    ``load_per_session`` : mean units one session charges per second (units per turn over
    the analytic mean cycle). ``buckets`` : the compound-Poisson model of each token
    bucket's input (``None`` for other slots or buckets nothing charges).
    """

    load_per_session: NDArray[np.float64]
    buckets: tuple[Any, ...]

    def start(self, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                       NDArray[np.float64]]:
        """``(load, rho, theta)`` per slot at ``n`` sessions: offered units per second,
        bucket utilisation λE[B]/r and Lundberg exponent θ* (0 when ρ ≥ 1)."""
        load = n * self.load_per_session
        rho = np.zeros(load.size)
        theta = np.full(load.size, math.inf)
        for i, bm in enumerate(self.buckets):
            if bm is None:
                continue
            lam = n * bm.rate_per_session
            rho[i] = lam * bm.mean_batch_units / bm.refill
            theta[i] = 0.0 if rho[i] >= 1.0 else lundberg_theta(lam, bm.severity, bm.h,
                                                                 bm.refill)
        return load, rho, theta


def _warm_model(profile: Profile, slots: tuple[LimitSlot, ...]) -> _WarmModel:
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
    return _WarmModel(load, tuple(buckets))


# The most recent compiled profiles, by identity (profiles are immutable).
_COMPILED: dict[int, tuple[Profile, _Compiled]] = {}


def _compile(profile: Profile) -> _Compiled:
    """Turn the profile's step trees, distributions and quotas into arrays (cached for
    the few most recent profiles: a search or sweep simulates one profile many times)."""
    return cached_per_profile(_COMPILED, profile, _compile_uncached)


def _compile_uncached(profile: Profile) -> _Compiled:
    slots = limit_slots(profile)
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
        model = profile.models[call.model]
        site_rows.append([dt.add(call.input_tokens), dt.add(call.output_tokens),
                          dt.add(model.ttft), dt.add(model.tokens_per_second)])
        site_cached.append(call.cached_input_fraction)
        mt = profile.max_tokens_for(call)
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

    roots, weights, sizes, lats = [], [], [], []
    for turn in profile.session.turns.values():
        root, size, lat = seq_node(turn.steps)
        roots.append(root)
        weights.append(turn.weight)
        sizes.append(size)
        lats.append(lat)
    w = np.asarray(weights) / sum(weights)
    turn_cum = np.cumsum(w)
    turn_cum[-1] = 1.0
    mean_turn = float(np.dot(w, lats))

    n_sites, n_slots = len(sites), len(slots)
    coef = np.zeros((n_sites, n_slots, 5))
    site_maxtok = np.full(n_sites, math.inf)
    for i, call in enumerate(sites):
        c = charge_coefficients(profile, call, slots)
        coef[i, :, 0], coef[i, :, 1], coef[i, :, 2] = c.request, c.input, c.cached
        coef[i, :, 3], coef[i, :, 4] = c.output, c.max_tokens
        site_maxtok[i] = c.max_tokens_value

    sess = profile.session
    pause = sess.pause
    cycle = (pause.mean + mean_turn) if sess.mode == "think_time" else max(pause.mean, mean_turn)
    r, pc = profile.retry, profile.pacing
    cfg = np.zeros(13)
    cfg[C_MODE] = 0.0 if sess.mode == "think_time" else 1.0
    cfg[C_PAUSE] = dt.add(pause)
    cfg[C_MAX_RETRIES] = r.max_retries
    cfg[C_INIT_DELAY] = r.initial_delay
    cfg[C_MAX_DELAY] = r.max_delay
    cfg[C_JITTER] = r.jitter
    cfg[C_HONOUR] = 1.0 if r.honour_retry_after else 0.0
    cfg[C_MAX_RA] = r.max_retry_after
    cfg[C_REJ_LAT] = r.rejection_latency
    cfg[C_ABORT] = 1.0 if r.on_exhausted == "abort_turn" else 0.0
    if pc is not None and pc.rpm is not None:
        cfg[C_PACE_RATE] = pc.rpm / 60.0
        cfg[C_PACE_DEPTH] = max(1.0, pc.rpm * pc.burst / 60.0)
    if pc is not None and pc.concurrency is not None:
        cfg[C_PACE_CONC] = pc.concurrency

    sprog = np.ascontiguousarray(np.column_stack([skind, sa, sb]).astype(np.int64))
    program = (turn_cum, np.asarray(roots, dtype=np.int64), sprog, np.asarray(sprob),
               np.asarray(schild or [0], dtype=np.int64))
    return _Compiled(
        name=profile.title, slots=slots, program=program, dists=dt.arrays(),
        site_dist=np.asarray(site_rows, dtype=np.int64).reshape(n_sites, 4),
        site_cached=np.asarray(site_cached, dtype=np.float64), site_maxtok=site_maxtok,
        coef=coef, cfg=cfg, max_nodes=max(sizes),
        mean_cycle_s=max(cycle, 1e-3), warm=_warm_model(profile, slots),
    )


# ---------------------------------------------------------------------------------------
# Counter-based random numbers (SplitMix64)
# ---------------------------------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TO_UNIT = 2.0 ** -53
# Domain separators, so that session / first-turn / call streams never coincide.
_DOM_START = np.uint64(0x5EED5EED5EED5EED)
_DOM_CALL = np.uint64(0xCA11CA11CA11CA11)


@njit(cache=True, nogil=True, inline="always")
def _mix(z):  # type: ignore[no-untyped-def]
    """SplitMix64 finaliser (Stafford's variant 13): a bijective 64-bit hash."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _hash2(key, i):  # type: ignore[no-untyped-def]
    """Key of child ``i`` of stream ``key``."""
    return _mix(key ^ _mix(np.uint64(i) * _GAMMA + _GAMMA))


@njit(cache=True, nogil=True, inline="always")
def _unit(key, i):  # type: ignore[no-untyped-def]
    """Uniform [0, 1) number at position ``i`` of stream ``key``."""
    return float(_mix(key + (np.uint64(i) + _ONE) * _GAMMA) >> _S11) * _TO_UNIT


@njit(cache=True, nogil=True, inline="always")
def _draw(d, key, pos, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """Sample distribution ``d`` from positions ``pos``, ``pos + 1`` of stream ``key``."""
    k = int(dpar[d, DP_KIND])
    p0 = dpar[d, DP_P0]
    if k == D_FIXED:
        return p0
    u = _unit(key, pos)
    p1 = dpar[d, DP_P1]
    if k == D_UNIFORM:
        return p0 + u * (p1 - p0)
    if k == D_UNIFORM_INT:
        return min(p0 + math.floor(u * (p1 - p0 + 1.0)), p1)
    if k == D_EXPONENTIAL:
        return -p0 * math.log1p(-u)
    if k == D_LOGNORMAL:
        z = math.sqrt(-2.0 * math.log1p(-u)) * math.cos(2.0 * math.pi * _unit(key, pos + 1))
        return p0 * math.exp(p1 * z)
    o = int(dpar[d, DP_OFF])
    n = int(dpar[d, DP_LEN])
    for i in range(n):
        if u < ccum[o + i]:
            return cval[o + i]
    return cval[o + n - 1]


@njit(cache=True, nogil=True, inline="always")
def _draw_residual(d, key, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """Equilibrium residual of distribution ``d``: ``U · X_lb`` with ``X_lb`` length-biased.

    The time to the next renewal seen from a random instant (exact steady-state start
    for cadences and for exponential think times). Uses positions 0..2 of ``key``.
    """
    k = int(dpar[d, DP_KIND])
    p0 = dpar[d, DP_P0]
    p1 = dpar[d, DP_P1]
    u = _unit(key, 0)
    u1 = _unit(key, 1)
    if k == D_FIXED:
        return u * p0
    if k in (D_UNIFORM, D_UNIFORM_INT):
        return u * math.sqrt(p0 * p0 + u1 * (p1 * p1 - p0 * p0))
    if k == D_EXPONENTIAL:
        return -p0 * math.log1p(-u)  # memoryless: the residual is the same exponential
    if k == D_LOGNORMAL:
        # Length-biasing a lognormal shifts its log-mean by sigma^2.
        z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * _unit(key, 2))
        return u * p0 * math.exp(p1 * p1 + p1 * z)
    o = int(dpar[d, DP_OFF])
    n = int(dpar[d, DP_LEN])
    total = 0.0
    for i in range(n):
        w = ccum[o + i] - (ccum[o + i - 1] if i > 0 else 0.0)
        total += w * cval[o + i]
    if total <= 0.0:
        return 0.0
    acc = 0.0
    for i in range(n):
        w = ccum[o + i] - (ccum[o + i - 1] if i > 0 else 0.0)
        acc += w * cval[o + i] / total
        if u1 < acc:
            return u * cval[o + i]
    return u * cval[o + n - 1]


@njit(cache=True, nogil=True)
def _sample_many(d, key, n, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """``n`` draws of distribution ``d`` (for tests of the sampler)."""
    out = np.empty(n)
    for i in range(n):
        out[i] = _draw(d, key, 2 * i, dpar, cval, ccum)
    return out


def sample_distribution(dist: Distribution, n: int, seed: int) -> NDArray[np.float64]:
    """Draw ``n`` values of ``dist`` with the simulator's own sampler (for validation)."""
    t = _DistTable()
    d = t.add(dist)
    key = np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]
    return _sample_many(d, key, n, *t.arrays())


# ---------------------------------------------------------------------------------------
# The event engine
# ---------------------------------------------------------------------------------------
# Note for developers: numba's on-disk cache (cache=True) is keyed to *this* file's
# timestamp only, but the kernel inlines the limiter from capacity/limits.py. After
# editing limits.py alone, touch this file (or delete __pycache__) so the kernel is
# recompiled rather than loaded stale.

EV_TURN, EV_ATTEMPT, EV_DONE, EV_REJECT, EV_PACE = range(5)
# Charges a long sliding window's log starts with (its steady-state content, spread out).
_SPREAD = 64
F_429, F_FAILED, F_ABORTED, F_MEASURED = 1, 2, 4, 8
# Columns of the instance-node tables: integers (inode) and floats (ifl).
N_KIND, N_PARENT, N_FIRST, N_LAST, N_NEXT, N_PEND, N_SITE, N_ATT = range(8)
X_TIN, X_TCACHED, X_TOUT, X_LAT, X_RA, X_ENQ = range(6)


@intrinsic
def _borrow(typingctx, arr):  # type: ignore[no-untyped-def]
    """A view of ``arr`` without a reference count (no meminfo, no parent object).

    Numba updates an array's reference count atomically whenever a function (inlined or
    not) receives it; in the event loop those updates cost more than the simulation.
    The view shares ``arr``'s data, so the caller must keep ``arr`` itself alive while
    the view is in use (a function argument is kept alive by the caller; see
    :func:`_keep_alive` for arrays allocated in the kernel).
    """
    if not isinstance(arr, nbtypes.Array):
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return _borrow_codegen(context, builder, sig.args[0], args[0])

    return arr(arr), codegen


def _borrow_codegen(context, builder, arrty, value):  # type: ignore[no-untyped-def]
    src = context.make_array(arrty)(context, builder, value=value)
    dst = context.make_array(arrty)(context, builder)
    for name in ("nitems", "itemsize", "data", "shape", "strides"):
        setattr(dst, name, getattr(src, name))
    dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
    dst.parent = cgutils.get_null_value(dst.parent.type)
    return dst._getvalue()


@intrinsic
def _detach(typingctx, arr):  # type: ignore[no-untyped-def]
    """``(view, owner)``: a :func:`_borrow` view of ``arr`` and the address of its
    meminfo, which now holds one extra reference. Pass ``owner`` to :func:`_release`
    once the view is no longer used. For arrays the kernel replaces as they grow:
    rebinding a reference-counted variable in the event loop would cost reference-count
    updates on every pass, rebinding a view costs none.
    """
    if not isinstance(arr, nbtypes.Array):
        return None
    sig = nbtypes.Tuple((arr, nbtypes.uintp))(arr)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        context.nrt.incref(builder, arr, args[0])
        src = context.make_array(arr)(context, builder, value=args[0])
        view = _borrow_codegen(context, builder, arr, args[0])
        addr = builder.ptrtoint(src.meminfo, context.get_value_type(nbtypes.uintp))
        return context.make_tuple(builder, sig.return_type, (view, addr))

    return sig, codegen


@intrinsic
def _release(typingctx, owner):  # type: ignore[no-untyped-def]
    """Drop the reference :func:`_detach` took (``owner`` is its meminfo address)."""
    if not isinstance(owner, nbtypes.Integer):
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        fnty = llvmir.FunctionType(llvmir.VoidType(), [cgutils.voidptr_t])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "NRT_decref")
        builder.call(fn, [builder.inttoptr(args[0], cgutils.voidptr_t)])
        return context.get_dummy_value()

    return nbtypes.none(owner), codegen


@njit(cache=True, nogil=True)
def _keep_alive(arrays):  # type: ignore[no-untyped-def]
    """Nothing; passing arrays here keeps them (and views borrowed from them) alive."""
    return len(arrays)


@njit(cache=True, nogil=True, inline="always")
def _hpush(ht, hs, hp, n, t, seq, payload):  # type: ignore[no-untyped-def]
    """Push onto the binary min-heap ordered by (time, sequence number); returns the size.

    The arrays are allocated for the most events that can be pending at once, so they
    never grow (rebinding arrays in the hot loop would cost reference-count updates).
    """
    i = n
    while i > 0:
        par = (i - 1) >> 1
        if ht[par] < t or (ht[par] == t and hs[par] < seq):
            break
        ht[i] = ht[par]
        hs[i] = hs[par]
        hp[i] = hp[par]
        i = par
    ht[i] = t
    hs[i] = seq
    hp[i] = payload
    return n + 1


@njit(cache=True, nogil=True, inline="always")
def _hpop(ht, hs, hp, n):  # type: ignore[no-untyped-def]
    """Pop the earliest event: returns (time, payload, new size)."""
    t0 = ht[0]
    p0 = hp[0]
    n -= 1
    if n > 0:
        t = ht[n]
        s = hs[n]
        p = hp[n]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and (ht[c + 1] < ht[c] or (ht[c + 1] == ht[c] and hs[c + 1] < hs[c])):
                c += 1
            if ht[c] > t or (ht[c] == t and hs[c] > s):
                break
            ht[i] = ht[c]
            hs[i] = hs[c]
            hp[i] = hp[c]
            i = c
        ht[i] = t
        hs[i] = s
        hp[i] = p
    return t0, p0, n


@njit(cache=True, nogil=True, inline="always")
def _expand(root, base, tkey, sprog, sprob, schild, dpar, cval, ccum,  # type: ignore
            site_dist, site_cached, site_maxtok, inode, ifl, ikey, stack):
    """Expand one turn of static program ``root`` into instance nodes from ``base``.

    Draws counts, branches, tokens and latencies at fixed positions of stream ``tkey``
    (depth-first order, so the same key always yields the same turn).
    """
    pos = 0
    ctr = 4  # positions 0..3 are the turn type and the pause
    ordinal = 0
    sp = 1
    stack[0, 0] = root
    stack[0, 1] = -1
    while sp > 0:
        sp -= 1
        s = stack[sp, 0]
        par = stack[sp, 1]
        k = sprog[s, 0]
        if k == S_OPT:
            u = _unit(tkey, ctr)
            ctr += 2
            if u < sprob[s]:
                stack[sp, 0] = sprog[s, 1]
                stack[sp, 1] = par
                sp += 1
            continue
        idx = base + pos
        pos += 1
        inode[idx, N_PARENT] = par
        inode[idx, N_FIRST] = -1
        inode[idx, N_LAST] = -1
        inode[idx, N_NEXT] = -1
        inode[idx, N_PEND] = 0
        if par >= 0:
            if inode[par, N_FIRST] < 0:
                inode[par, N_FIRST] = idx
            else:
                inode[inode[par, N_LAST], N_NEXT] = idx
            inode[par, N_LAST] = idx
            inode[par, N_PEND] += 1
        if k == S_CALL:
            site = sprog[s, 1]
            inode[idx, N_KIND] = I_CALL
            inode[idx, N_SITE] = site
            inode[idx, N_ATT] = 0
            # Whole tokens, as providers count them.
            tin = math.floor(_draw(site_dist[site, SITE_IN], tkey, ctr, dpar, cval, ccum) + 0.5)
            tout = math.floor(_draw(site_dist[site, SITE_OUT], tkey, ctr + 2, dpar, cval, ccum)
                              + 0.5)
            ttft = _draw(site_dist[site, SITE_TTFT], tkey, ctr + 4, dpar, cval, ccum)
            tps = _draw(site_dist[site, SITE_TPS], tkey, ctr + 6, dpar, cval, ccum)
            ctr += 8
            ifl[idx, X_TIN] = tin
            ifl[idx, X_TCACHED] = math.floor(site_cached[site] * tin + 0.5)
            ifl[idx, X_TOUT] = tout
            ifl[idx, X_LAT] = ttft + min(tout, site_maxtok[site]) / tps
            ikey[idx] = _hash2(tkey ^ _DOM_CALL, ordinal)
            ordinal += 1
        elif k == S_SEQ:
            inode[idx, N_KIND] = I_SEQ
            # Push children last-first so the first is expanded (and attached) first.
            for c in range(sprog[s, 2] - 1, -1, -1):
                stack[sp, 0] = schild[sprog[s, 1] + c]
                stack[sp, 1] = idx
                sp += 1
        else:  # S_PAR or S_REP: count copies of the body
            cnt = int(_draw(sprog[s, 2], tkey, ctr, dpar, cval, ccum))
            ctr += 2
            inode[idx, N_KIND] = I_PAR if k == S_PAR else I_SEQ
            for _ in range(cnt):
                stack[sp, 0] = sprog[s, 1]
                stack[sp, 1] = idx
                sp += 1
    return pos


@njit(cache=True, nogil=True)
def _replicate(n_sessions, rep_key, t0, t1, max_nodes,  # type: ignore[no-untyped-def]
               turn_cum, turn_root, sprog, sprob, schild, dpar, cval, ccum,
               site_dist, site_cached, site_maxtok, coef, P, cfg, bucket_deficit,
               window_used):
    """Simulate one replication; returns (stats, turn latencies, utilisation units,
    exceeded windows per slot)."""
    # Numba reference-counts arrays: every helper that takes one (inlined or not) costs
    # an atomic increment and decrement, which dominated the event loop. The loop works
    # on borrowed views without a reference count; the owners outlive it (the caller
    # holds the arguments, _keep_alive holds the arrays allocated here).
    turn_cum = _borrow(turn_cum)
    turn_root = _borrow(turn_root)
    sprog = _borrow(sprog)
    sprob = _borrow(sprob)
    schild = _borrow(schild)
    dpar = _borrow(dpar)
    cval = _borrow(cval)
    ccum = _borrow(ccum)
    site_dist = _borrow(site_dist)
    site_cached = _borrow(site_cached)
    site_maxtok = _borrow(site_maxtok)
    coef = _borrow(coef)
    P = _borrow(P)
    N = n_sessions
    M = max_nodes
    L = P.shape[0]
    pool = N * M
    mode = int(cfg[C_MODE])
    pause_d = int(cfg[C_PAUSE])
    max_retries = int(cfg[C_MAX_RETRIES])
    init_delay = cfg[C_INIT_DELAY]
    max_delay = cfg[C_MAX_DELAY]
    jitter = cfg[C_JITTER]
    honour = cfg[C_HONOUR] > 0.0
    max_ra = cfg[C_MAX_RA]
    rej_lat = cfg[C_REJ_LAT]
    abort = cfg[C_ABORT] > 0.0
    pace_rate = cfg[C_PACE_RATE]
    pace_depth = cfg[C_PACE_DEPTH]
    pace_conc = int(cfg[C_PACE_CONC])
    pacing = pace_rate > 0.0 or pace_conc > 0
    sliding = False
    for li in range(L):
        sliding = sliding or int(P[li, P_KIND]) == KIND_SLIDING

    # Instance nodes: session k owns rows [k*M, (k+1)*M) for its current turn.
    inode_o = np.zeros((pool, 8), dtype=np.int64)
    ifl_o = np.zeros((pool, 6))
    ikey_o = np.zeros(pool, dtype=np.uint64)
    stack_o = np.zeros((M + 1, 2), dtype=np.int64)
    wop_o = np.zeros(2 * M + 2, dtype=np.int8)
    wnode_o = np.zeros(2 * M + 2, dtype=np.int64)
    # Calls to attempt at the current instant: one turn's launches, or the pacer's releases.
    now_o = np.zeros(max(M, pool if pacing else 1) + 1, dtype=np.int64)

    s_key_o = np.zeros(N, dtype=np.uint64)
    s_turn_o = np.zeros(N, dtype=np.int64)
    s_start_o = np.zeros(N)
    s_pause_o = np.zeros(N)
    s_flags_o = np.zeros(N, dtype=np.int64)

    st_o, log_t0, log_u0 = loaded_state(P, bucket_deficit, window_used, _SPREAD)
    # Arrays that can grow: held as views plus an owned reference released on growth.
    log_t, log_t_mi = _detach(log_t0)
    log_u, log_u_mi = _detach(log_u0)
    units_o = np.zeros(L)
    rej_o = np.zeros(L, dtype=np.int8)
    util_o = np.zeros(L)
    exceeded_o = np.zeros(L)
    last_exc_o = np.full(L, -1.0e300)

    # Client pacer (fleet-wide): FIFO ring of waiting calls, bucket level, calls in flight.
    qbuf_o = np.zeros(pool if pacing else 1, dtype=np.int64)
    qhead = 0
    qn = 0
    p_level = pace_depth
    p_last = 0.0
    inflight = 0
    wake_pending = False

    stats_o = np.zeros(N_STATS)
    lat, lat_mi = _detach(np.zeros(1024))
    n_lat = 0

    # Pending events: at most one per session (its next turn) or per call (its attempt,
    # answer or retry), plus the pacer's wake-up.
    hcap = N * M + N + 2
    ht_o = np.empty(hcap)
    hs_o = np.empty(hcap, dtype=np.int64)
    hp_o = np.empty(hcap, dtype=np.int64)
    inode = _borrow(inode_o)
    ifl = _borrow(ifl_o)
    ikey = _borrow(ikey_o)
    stack = _borrow(stack_o)
    wop = _borrow(wop_o)
    wnode = _borrow(wnode_o)
    now = _borrow(now_o)
    s_key = _borrow(s_key_o)
    s_turn = _borrow(s_turn_o)
    s_start = _borrow(s_start_o)
    s_pause = _borrow(s_pause_o)
    s_flags = _borrow(s_flags_o)
    st = _borrow(st_o)
    units = _borrow(units_o)
    rej = _borrow(rej_o)
    util = _borrow(util_o)
    exceeded = _borrow(exceeded_o)
    last_exc = _borrow(last_exc_o)
    qbuf = _borrow(qbuf_o)
    stats = _borrow(stats_o)
    ht = _borrow(ht_o)
    hs = _borrow(hs_o)
    hp = _borrow(hp_o)
    hn = 0
    seq = 0
    for k in range(N):
        sk = _hash2(rep_key, k)
        s_key[k] = sk
        # Steady-state start: the first turn begins after an equilibrium residual of the
        # pause (think time or cadence), as seen by an observer arriving at random.
        first = _draw_residual(pause_d, _hash2(sk ^ _DOM_START, 0), dpar, cval, ccum)
        hn = _hpush(ht, hs, hp, hn, first, seq, k * 8 + EV_TURN)
        seq += 1

    measured_open = 0
    while hn > 0:
        t, payload, hn = _hpop(ht, hs, hp, hn)
        if t >= t1 and measured_open == 0:
            break
        ev = payload & 7
        x = payload >> 3
        sp = 0
        n_now = 0
        dispatch = False
        if ev == EV_TURN:
            tkey = _hash2(s_key[x], s_turn[x])
            u = _unit(tkey, 0)
            tt = 0
            while tt < turn_cum.shape[0] - 1 and u >= turn_cum[tt]:
                tt += 1
            s_pause[x] = _draw(pause_d, tkey, 2, dpar, cval, ccum)
            base = x * M
            _expand(turn_root[tt], base, tkey, sprog, sprob, schild, dpar, cval, ccum,
                    site_dist, site_cached, site_maxtok, inode, ifl, ikey, stack)
            s_start[x] = t
            s_flags[x] = 0
            if t0 <= t < t1:
                s_flags[x] = F_MEASURED
                measured_open += 1
            wop[0] = 0
            wnode[0] = base
            sp = 1
        elif ev == EV_ATTEMPT:  # a retry, after its backoff
            now[0] = x
            n_now = 1
        elif ev == EV_DONE:
            n = x
            if t0 <= t < t1:
                stats[K_GOOD_WINDOW] += 1
            if pacing:
                inflight -= 1
                dispatch = True
            wop[0] = 1
            wnode[0] = n
            sp = 1
        elif ev == EV_REJECT:
            n = x
            k = inode[n, N_ATT]  # the next attempt would be retry number k
            if k <= max_retries:
                ra = ifl[n, X_RA]
                if honour and 0.0 < ra <= max_ra:
                    d = ra
                else:
                    d = min(init_delay * 2.0 ** (k - 1), max_delay)
                    d *= 1.0 - jitter * _unit(ikey[n], k)
                hn = _hpush(ht, hs, hp, hn, t + d, seq, n * 8 + EV_ATTEMPT)
                seq += 1
            else:
                s = n // M
                s_flags[s] |= F_FAILED
                if abort:
                    s_flags[s] |= F_ABORTED
                if (s_flags[s] & F_MEASURED) != 0:
                    stats[K_CALLS_FAILED] += 1
                if pacing:
                    inflight -= 1
                    dispatch = True
                wop[0] = 1
                wnode[0] = n
                sp = 1
        else:  # EV_PACE
            wake_pending = False
            dispatch = True

        # Walk the turn's tree: START launches a node, COMPLETE propagates an end upwards.
        while sp > 0:
            sp -= 1
            n = wnode[sp]
            s = n // M
            if wop[sp] == 0:
                kd = inode[n, N_KIND]
                if kd == I_CALL:
                    if (s_flags[s] & F_MEASURED) != 0:
                        stats[K_CALLS] += 1
                    if pacing:
                        qbuf[(qhead + qn) % qbuf.shape[0]] = n
                        qn += 1
                        ifl[n, X_ENQ] = t
                        dispatch = True
                    else:
                        now[n_now] = n
                        n_now += 1
                elif kd == I_SEQ:
                    c = inode[n, N_FIRST]
                    if c >= 0 and (s_flags[s] & F_ABORTED) == 0:
                        wop[sp] = 0
                        wnode[sp] = c
                    else:
                        wop[sp] = 1
                        wnode[sp] = n
                    sp += 1
                else:  # I_PAR: launch every copy at this instant
                    c = inode[n, N_FIRST]
                    if c < 0:
                        wop[sp] = 1
                        wnode[sp] = n
                        sp += 1
                    while c >= 0:
                        wop[sp] = 0
                        wnode[sp] = c
                        sp += 1
                        c = inode[c, N_NEXT]
            else:
                p = inode[n, N_PARENT]
                if p < 0:  # the turn has ended
                    fl = s_flags[s]
                    if (fl & F_MEASURED) != 0:
                        measured_open -= 1
                        stats[K_TURNS] += 1
                        if (fl & F_429) != 0:
                            stats[K_TURNS_429] += 1
                        if (fl & F_FAILED) != 0:
                            stats[K_TURNS_FAILED] += 1
                        if n_lat == lat.shape[0]:
                            nl, nl_mi = _detach(np.empty(2 * n_lat))
                            nl[:n_lat] = lat
                            _release(lat_mi)
                            lat, lat_mi = nl, nl_mi
                        lat[n_lat] = t - s_start[s]
                        n_lat += 1
                    if t0 <= t < t1:
                        stats[K_TURNS_WINDOW] += 1
                    # think time runs from the end; a cadence from the start (unless late)
                    nxt = t + s_pause[s] if mode == 0 else max(s_start[s] + s_pause[s], t)
                    s_turn[s] += 1
                    hn = _hpush(ht, hs, hp, hn, nxt, seq, s * 8 + EV_TURN)
                    seq += 1
                elif inode[p, N_KIND] == I_SEQ:
                    nx = inode[n, N_NEXT]
                    if nx >= 0 and (s_flags[s] & F_ABORTED) == 0:
                        wop[sp] = 0
                        wnode[sp] = nx
                    else:
                        wop[sp] = 1
                        wnode[sp] = p
                    sp += 1
                else:
                    inode[p, N_PEND] -= 1
                    if inode[p, N_PEND] == 0:
                        wop[sp] = 1
                        wnode[sp] = p
                        sp += 1

        # Release queued calls the pacer now allows, first come first served.
        if dispatch and pacing:
            while qn > 0:
                if pace_conc > 0 and inflight >= pace_conc:
                    break
                if pace_rate > 0.0:
                    if t > p_last:
                        p_level = min(pace_depth, p_level + (t - p_last) * pace_rate)
                        p_last = t
                    if p_level < 1.0:
                        if not wake_pending:
                            wake = t + (1.0 - p_level) / pace_rate + 1e-9
                            hn = _hpush(ht, hs, hp, hn, wake, seq, EV_PACE)
                            seq += 1
                            wake_pending = True
                        break
                    p_level -= 1.0
                n = qbuf[qhead]
                qhead = (qhead + 1) % qbuf.shape[0]
                qn -= 1
                inflight += 1
                if (s_flags[n // M] & F_MEASURED) != 0:
                    stats[K_PACE_WAIT] += t - ifl[n, X_ENQ]
                now[n_now] = n
                n_now += 1

        # Send the attempts due now (launched calls, released calls, retries), in order.
        for ia in range(n_now):
            n = now[ia]
            s = n // M
            site = inode[n, N_SITE]
            mt = site_maxtok[site]
            for li in range(L):
                u_ = coef[site, li, 0] + coef[site, li, 1] * ifl[n, X_TIN]
                u_ -= coef[site, li, 2] * ifl[n, X_TCACHED]
                u_ += coef[site, li, 3] * min(ifl[n, X_TOUT], mt)
                if coef[site, li, 4] > 0.0:
                    u_ += coef[site, li, 4] * mt
                units[li] = u_
            if sliding and log_full(st, log_t.shape[1]):
                new_t, new_u = grow_logs(st, log_t, log_u)
                _release(log_t_mi)
                _release(log_u_mi)
                log_t, log_t_mi = _detach(new_t)
                log_u, log_u_mi = _detach(new_u)
            admitted, ra = limiter_attempt(P, st, log_t, log_u, t, units, rej)
            inode[n, N_ATT] += 1
            stats[K_ATTEMPTS_ALL] += 1
            meas = (s_flags[s] & F_MEASURED) != 0
            inwin = t0 <= t < t1
            if meas:
                stats[K_ATTEMPTS] += 1
            if admitted:
                if inwin:
                    for li in range(L):
                        util[li] += units[li]
                hn = _hpush(ht, hs, hp, hn, t + ifl[n, X_LAT], seq, n * 8 + EV_DONE)
                seq += 1
            else:
                s_flags[s] |= F_429
                if meas:
                    stats[K_REJECTED] += 1
                for li in range(L):
                    if rej[li] != 0 and int(P[li, P_KIND]) == KIND_FIXED:
                        w = P[li, P_WINDOW]
                        off = P[li, P_OFFSET]
                        kw = math.floor((t + off) / w)
                        start = kw * w - off
                        if start >= t0 and start + w <= t1 and last_exc[li] != kw:
                            exceeded[li] += 1
                            last_exc[li] = kw
                ifl[n, X_RA] = ra
                hn = _hpush(ht, hs, hp, hn, t + rej_lat, seq, n * 8 + EV_REJECT)
                seq += 1
    # The owners of the borrowed views stay alive up to here.
    _keep_alive((inode_o, ifl_o, ikey_o, stack_o, wop_o, wnode_o, now_o, s_key_o, s_turn_o,
                 s_start_o, s_pause_o, s_flags_o, st_o, units_o, rej_o, util_o, exceeded_o,
                 last_exc_o, qbuf_o, stats_o, ht_o, hs_o, hp_o))
    latencies = lat[:n_lat].copy()
    _release(lat_mi)
    _release(log_t_mi)
    _release(log_u_mi)
    return stats_o, latencies, util_o, exceeded_o


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------

# Above this many instance nodes a replication would need gigabytes of memory.
_MAX_POOL = 50_000_000


def _check_args(sessions: int, horizon_s: float, warmup_s: float | None,
                replications: int, seed: int) -> None:
    if isinstance(sessions, bool) or not isinstance(sessions, int | np.integer) or sessions < 1:
        raise SimulationError(f"sessions must be an integer ≥ 1, got {sessions!r}")
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


def _initial_use(c: _Compiled, P: NDArray[np.float64], u: float,
                 start: tuple[NDArray[np.float64], ...]) -> tuple[NDArray[np.float64],
                                                                  NDArray[np.float64]]:
    """``(bucket_deficit, window_used)`` per slot at t = 0 (see the module docstring).

    ``u`` is the replication's uniform for the bucket deficits; ``start`` is
    :meth:`_WarmModel.start` at this N.
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
        else:
            used[i] = min(load[i] * s.window_s, s.allowance)
    return deficit, used


def _run_rep(c: _Compiled, sessions: int, child: np.random.SeedSequence, t0: float,
             t1: float, start: tuple[NDArray[np.float64], ...] | None = None) -> _RepOut:
    state = child.generate_state(3, np.uint64)
    rep_key = state[0]
    # The provider's clock at t = 0 (window phase): uniform over a day.
    clock = float(state[1] >> np.uint64(11)) * 2.0**-53 * 86400.0
    P = LimiterArrays.from_slots(c.slots, clock).params
    u = float(state[2] >> np.uint64(11)) * 2.0**-53
    deficit, used = _initial_use(c, P, u, c.warm.start(sessions) if start is None else start)
    # Private copies: numba reference-counts every array it is passed, and threads
    # updating the counts of shared arrays would fight over the same cache lines.
    stats, lat, util, exc = _replicate(  # type: ignore[call-arg]
        sessions, rep_key, t0, t1, c.max_nodes, *(a.copy() for a in c.program),
        *(a.copy() for a in c.dists), c.site_dist.copy(), c.site_cached.copy(),
        c.site_maxtok.copy(), c.coef.copy(), P, c.cfg.copy(), deficit, used)
    # Fixed windows lying wholly inside the measured interval, per slot.
    windows = np.zeros(len(c.slots))
    for i, s in enumerate(c.slots):
        if s.kind == "fixed_window":
            w, off = P[i, P_WINDOW], P[i, P_OFFSET]
            k_lo = math.ceil((t0 + off) / w)
            k_hi = math.floor((t1 + off) / w) - 1
            windows[i] = max(0, k_hi - k_lo + 1)
    return _RepOut(stats, lat, util, exc, windows)


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
    sessions : N, the number of concurrent sessions (≥ 1).
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
    SimulationError : for a non-positive N, horizon or replication count, or a negative
        seed or warm-up.
    """
    _check_args(sessions, horizon_s, warmup_s, replications, seed)
    return _simulate_compiled(_compile(profile), int(sessions), horizon_s=float(horizon_s),
                              warmup_s=warmup_s, replications=replications, seed=int(seed),
                              progress=progress, workers=workers)


def _simulate_compiled(c: _Compiled, sessions: int, *, horizon_s: float,
                       warmup_s: float | None, replications: int, seed: int,
                       progress: Callable[[int], None] | None, workers: int | None,
                       done_before: int = 0) -> SimulationResult:
    if sessions * c.max_nodes > _MAX_POOL:
        raise SimulationError(
            f"{sessions} sessions × up to {c.max_nodes} calls and blocks per turn is too "
            "large to simulate; reduce the sessions or the repeat/parallel counts")
    warm = 2.0 * c.mean_cycle_s if warmup_s is None else float(warmup_s)
    t0, t1 = warm, warm + horizon_s
    children = np.random.SeedSequence(seed).spawn(replications)
    n_workers = max(1, min(workers or os.cpu_count() or 1, replications))
    reps: list[_RepOut | None] = [None] * replications
    start = c.warm.start(sessions)
    if n_workers == 1:
        for i, ch in enumerate(children):
            reps[i] = _run_rep(c, sessions, ch, t0, t1, start)
            if progress is not None:
                progress(done_before + i + 1)
    else:
        # The kernel releases the GIL, so threads run replications on separate cores.
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            futures = [pool.submit(_run_rep, c, sessions, ch, t0, t1, start)
                       for ch in children]
            for i, f in enumerate(futures):
                reps[i] = f.result()
                if progress is not None:
                    progress(done_before + i + 1)
    done = [r for r in reps if r is not None]
    m, util, exc = _summarise(c, done, horizon_s)
    return SimulationResult(
        profile=c.name, sessions=sessions, seed=seed, replications=replications,
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
    )


def warm_up(profile: Profile) -> None:
    """Load the compiled engine (numba's on-disk cache) by simulating one short session.

    Loading takes a few tenths of a second; callers can run this in a thread while they
    do other work (the CLI overlaps it with the analytic model).
    """
    c = _compile(profile)
    _simulate_compiled(c, 1, horizon_s=1.0, warmup_s=0.0, replications=1, seed=0,
                       progress=None, workers=1)
