"""Analytic ceilings: mean-value (operational laws) and burst-aware (compound sums).

Mean-value
    Interactive response-time law: a closed session cycles every ``C = R + Z`` seconds
    (think time) or ``C = E[max(cadence, R)]`` (cadence), so N sessions start
    ``X = N / C`` turns per second [Buzen; Lazowska et al. ch. 3]. A constraint that
    allows ``Q`` units per period ``T`` and receives ``v`` units per turn saturates at
    ``N_mean = (Q/T) · C / v`` sessions. This is the napkin, made exact; it is necessary,
    never sufficient.

Burst-aware, windows — what the ceiling uses
    :mod:`capacity.analytic.window` (via :func:`constraint_model`): the window count
    from the clumps a turn's launches form in one window (their offsets, sampled by
    :mod:`capacity.analytic.timing`), a closed-loop second-moment correction, the
    client's retries (carried to the next window for fixed windows; a retry fixed point,
    storms and a metastability check for sliding ones) and the 429 share of *attempts*.

Independent launch events (theory.md §2.1–2.2; :func:`window_model`, kept as the
closed-form reference the tests check against)
    A turn is split into launch events (one per step launch; a fan-out is one event
    whose batch is all of its calls). Within a window of ``w`` seconds each session
    contributes the batch of event ``e`` with probability ``p_e = w · r_e / C`` (``r_e``:
    occurrences per turn). While ``Σ p_e ≤ 1`` a session is taken to launch at most one
    event per window, so the window count is a compound *binomial* sum
    ``S = Σ_{i≤K} B_i, K ~ Binomial(N, Σp_e)`` (the finite-population correction);
    otherwise it is compound Poisson with mean ``N Σ p_e`` events. Its pmf is computed
    exactly on a lattice by FFT (``irfft((1 - P + P·f̂)^N)`` or
    ``irfft(exp(λ(f̂ - 1)))``) [Embrechts & Frei 2009]; :func:`panjer` gives the same by
    recursion [Panjer 1981] and is used to cross-check. From it:

    * window exceedance ``p_w = P(S > q)`` with ``q = ⌊Q·w/T⌋``;
    * call-loss fraction ``ℓ = E[(S - q)^+] / E[S]`` (stop-loss transform), the share of
      calls a first-come window counter answers with 429 when nothing is retried;
    * turn-level ``P(turn sees a 429) ≈ 1 - (1 - ℓ)^{v}``.

    Assumptions: stationary sessions with independent phases; events of one turn land in
    different windows; no retries.

Burst-aware, token bucket (theory.md §2.5)
    Lundberg/Cramér bound on the virtual-queue overflow of a bucket of depth ``b`` and
    rate ``r`` fed by compound-Poisson batches: ``P(Q > b) ≤ exp(-θ* b)``, where
    ``θ* > 0`` solves ``λ (M_B(θ) - 1) = r θ`` [Asmussen & Albrecher 2010; Kelly 1996].
    The ceiling is the largest N with ``exp(-θ* b) ≤ ε``: slightly conservative for deep
    buckets. A shallow bucket (at most ~15 mean calls deep; ~47 when every call charges
    the same, e.g. requests) is solved exactly instead
    (:mod:`capacity.analytic.bucket`): a call is refused when the level is below its own
    charge, not below zero, which the bound does not see (a bucket of 2.5 calls: the
    bound said 55 sessions, the level chain 38 against a simulated 39 [36–43]). A deeper
    one's level law is solved by level crossing (:class:`capacity.analytic.bucket.
    DeepBucket`) when there are no retries, or retries that honour the retry-after:
    the bound stays only for counted rejections, backoff retries, routes and
    populations (it said 160 where the simulated N* is 187 [184–190], 5 s deep).

The accuracy of the ceiling against the simulated N* is measured by
``benchmarks/analytic_accuracy.py`` (README, "The models").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, overload

import numpy as np
from numpy.typing import NDArray

from capacity._version import __version__
from capacity.jsonsafe import clean as _clean
from capacity.model.dist import Distribution, finest_step, format_duration
from capacity.model.numeric import brentq
from capacity.model.workload import (
    CallCost,
    Constraint,
    MixedCost,
    Workload,
    batch_units_mean,
    batch_units_pmf,
    batch_units_upper,
    cached_per_profile,
    remember,
    sample_turns,
)
from capacity.profile.schema import Profile

if TYPE_CHECKING:  # the search result a simulated ceiling carries (no runtime import)
    from capacity.analytic.bucket import (
        BucketChain,
        ClosedSessions,
        ClosedTurns,
        DeepBucket,
        FollowSessions,
        GoesOn,
        TurnWalk,
    )
    from capacity.analytic.clumped import ClumpedWindow
    from capacity.search import SaturationResult

# Lattice points across one window's allowance when tokens are discretised.
_TOKEN_LATTICE_POINTS = 2048
_MAX_FFT = 1 << 22


# ---------------------------------------------------------------------------------------
# Compound distributions
# ---------------------------------------------------------------------------------------


def panjer(a: float, b: float, p0: float, severity: NDArray[np.float64],
           upto: int) -> NDArray[np.float64]:
    """Compound (a,b,0) pmf ``g_0..g_upto`` by Panjer's recursion.

    Parameters
    ----------
    a, b : the (a,b,0) parameters of the count (Poisson(λ): a=0, b=λ; Binomial(n,p):
        a = -p/(1-p), b = (n+1)p/(1-p)).
    p0 : P(count = 0), needed for ``g_0 = P_K(f_0)``.
    severity : batch-size pmf f_0, f_1, ... on the lattice.
    upto : highest lattice point wanted.

    Notes
    -----
    ``g_s = 1/(1 - a f_0) Σ_{y=1}^{min(s,m)} (a + b y/s) f_y g_{s-y}`` [Panjer 1981].
    This implementation assumes ``f_0 = 0`` or a Poisson count (then g_0 = exp(λ(f_0-1))).
    """
    f = np.asarray(severity, dtype=np.float64)
    m = f.size - 1
    g = np.zeros(upto + 1)
    if a == 0.0:
        g[0] = math.exp(b * (f[0] - 1.0))
    else:
        if f[0] != 0.0:
            raise ValueError("binomial Panjer here needs f_0 = 0; fold zeros into the count")
        g[0] = p0
    denom = 1.0 - a * f[0]
    for s in range(1, upto + 1):
        y = np.arange(1, min(s, m) + 1)
        g[s] = np.dot((a + b * y / s) * f[y], g[s - y]) / denom
    return g


@dataclass(frozen=True)
class WindowStats:
    """Window-count statistics for N sessions against one allowance."""

    sessions: int
    mean_per_window: float
    window_exceedance: float
    loss_fraction: float
    method: str
    call_429_fraction: float | None = None
    call_failure_fraction: float | None = None

    @property
    def attempt_429_fraction(self) -> float:
        """Share of call attempts (retries included) answered 429: the target's metric."""
        return self.loss_fraction

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``loss_fraction`` is the share of *attempts* answered 429."""
        d = dict(self.__dict__)
        d["attempt_429_fraction"] = self.loss_fraction
        return _clean(d)


@dataclass
class _WindowModel:
    """Precomputed per-session window contribution for one constraint.

    Lattice (theory.md §2.1 "discretized to a lattice of h tokens"): every charge is
    spread over its two nearest lattice points with weights that keep its mean (see
    :meth:`capacity.model.dist.Distribution.lattice_pmf`), and batches are cut at one
    step past the allowance, where positions no longer matter. The compound sum on the
    lattice is then a mean-preserving spread of the exact one below the allowance, and
    its stop-loss is taken with the *exact* mean, ``E[(S−q)⁺] = E[S] − q + E[(q−S)⁺]``:
    the 429 fraction is never understated by the discretisation, and overstated by at
    most the extra variance, below E[S]·h (the spread adds at most min(c·h, h²/4) per
    charge c), i.e. a standard deviation below √(E[S]·h) ≤ q/√(q/h) — at most 2.2% of
    the allowance at the coarsest step, q/2048.
    """

    h: float
    q: float                        # allowance in lattice units (need not be whole)
    p_total: float                  # Σ p_e: chance a session launches an event in a window
    severity: NDArray[np.float64]   # batch pmf mixed over events (lattice units)
    mean_batch_units: float         # exact mean units per session per second
    var_batch_lat: float
    mean_batch_lat: float
    window_units: float = 0.0       # exact mean units one session charges per window
    at_most_one: bool = True        # a session launches at most one event per window
    sliding: bool = False           # evaluated for a sliding window (label the result)

    @property
    def q_lat(self) -> int:
        """Whole lattice points within the allowance."""
        return math.floor(self.q + 1e-9)

    def stats(self, n: int) -> WindowStats:
        """Exceedance and loss for ``n`` sessions."""
        if n <= 0 or self.p_total <= 0:
            return WindowStats(n, 0.0, 0.0, 0.0, "none")
        f = self.severity
        binomial = self.at_most_one and self.p_total <= 1.0
        lam = n * self.p_total
        mean_lat = lam * self.mean_batch_lat
        mean_s = n * self.window_units / self.h  # exact, in lattice units
        var_s = lam * (self.var_batch_lat + self.mean_batch_lat**2)
        if binomial:
            var_s = n * (self.p_total * (self.var_batch_lat + self.mean_batch_lat**2)
                         - (self.p_total * self.mean_batch_lat) ** 2)
        q, qi = self.q, self.q_lat
        span = mean_lat + 14.0 * math.sqrt(max(var_s, 1e-12)) + f.size + qi + 16
        L = 1 << max(6, math.ceil(math.log2(span * 1.25)))
        if L > _MAX_FFT or mean_s <= 0:
            return self._normal(n, mean_s, var_s)
        fh = np.fft.rfft(f, L)
        if binomial:
            # (1 - P + P f̂)^N; a plain complex power (log would warn where the base is 0).
            ghat = np.power(1.0 - self.p_total + self.p_total * fh, n)
            method = "compound binomial (FFT)"
        else:
            ghat = np.exp(lam * (fh - 1.0))
            method = "compound Poisson (FFT)"
        g = np.clip(np.fft.irfft(ghat, L), 0.0, None)
        below = g[: qi + 1]
        exceed = min(1.0, max(0.0, 1.0 - float(below.sum())))
        s = np.arange(qi + 1, dtype=np.float64)
        # E[(S-q)^+] = E[S] - q + E[(q-S)^+]: needs only g_0..g_q, so no tail aliasing
        # and no dependence on where the batches cut at the allowance lie.
        short = float(np.dot(q - s, below))
        stop_loss = max(0.0, mean_s - q + short)
        loss = stop_loss / mean_s
        if self.sliding:
            # Evaluated as fixed windows of the same length: optimistic (a sliding counter
            # also catches bursts straddling a boundary, and keeps counted rejections).
            method += ("; fixed-window approximation, optimistic for a sliding window — "
                       "see the simulated column")
        return WindowStats(n, mean_s * self.h, exceed, min(loss, 1.0), method)

    def _normal(self, n: int, mean_s: float, var_s: float) -> WindowStats:
        from capacity.model.dist import _ndtr as ndtr

        if mean_s <= 0:
            return WindowStats(n, 0.0, 0.0, 0.0, "none")
        sd = math.sqrt(max(var_s, 1e-12))
        z = (self.q + 0.5 - mean_s) / sd
        exceed = float(ndtr(-z))
        pdf = math.exp(-z * z / 2.0) / math.sqrt(2.0 * math.pi) if abs(z) < 40 else 0.0
        stop_loss = sd * pdf - (self.q + 0.5 - mean_s) * exceed
        return WindowStats(n, mean_s * self.h, exceed, min(1.0, max(0.0, stop_loss) / mean_s),
                           "normal approximation")


def _event_mix(wl: Workload, c: Constraint) -> list[tuple[float, Any]]:
    """(occurrences per turn, batch) of every launch event touching constraint ``c``."""
    out = []
    for t in wl.turns:
        for ev in t.events:
            if batch_units_mean(ev.batch, c.costs) > 0:
                out.append((t.probability * ev.rate, ev.batch))
    return out


def _fixed_charges(c: Constraint) -> list[float]:
    """Charges that are the same on every call (e.g. a fixed prompt, max_tokens)."""
    out: list[float] = []
    for cost in c.costs.values():
        if cost is None:
            continue
        if cost.kind == "requests":
            out.append(1.0)
            continue
        if cost.input is not None and cost.input.is_fixed:
            out.append(cost.input.mean * cost.uncached)
        if cost.output_fixed is not None:
            out.append(cost.output_fixed)
        elif cost.output is not None and cost.output.is_fixed:
            out.append(min(cost.output.mean, cost.output_cap))
    return out


def _lattice_step(c: Constraint, scale_units: float, limit_units: float) -> float:
    """Lattice step (units): ~2,000 points across ``scale_units``, aligned when possible.

    When the limit and every fixed charge are whole numbers, the step is the largest
    divisor of their gcd that is not coarser than needed: then 10 calls of exactly
    1,000 tokens fill a 10,000-token window exactly instead of "exceeding" it by
    rounding.
    """
    if c.unit == "requests" and scale_units <= _TOKEN_LATTICE_POINTS * 64:
        return 1.0
    h0 = max(1.0, scale_units / _TOKEN_LATTICE_POINTS)
    values = [*_fixed_charges(c), math.floor(limit_units)]
    if all(v > 0 and float(v).is_integer() for v in values):
        g = 0
        for v in values:
            g = math.gcd(g, int(v))
        best = 1
        for d in range(1, math.isqrt(g) + 1):
            if g % d == 0:
                for cand in (d, g // d):
                    if best < cand <= h0:
                        best = cand
        if best >= h0 / 8:
            return float(best)
    return h0


def _allowance_lattice(q_units: float, h: float) -> int:
    # Exact when the step divides the allowance; otherwise round, which is unbiased where
    # flooring would shave up to a whole step off the allowance.
    ratio = q_units / h
    return math.floor(ratio + 1e-9) if abs(ratio - round(ratio)) < 1e-9 else round(ratio)


# At most this many lattice points across an allowance or bucket depth: beyond, the step
# grows with the allowance (windows holding millions of small calls stay fast).
_MAX_LIMIT_POINTS = 1 << 16


def window_model(wl: Workload, c: Constraint, cycle_s: float,
                 min_cycle_s: float | None = None) -> _WindowModel:
    """Per-session window contribution of constraint ``c`` (windows of ``c.window_s``).

    The compound-binomial (finite-population) form is used only when a window is no
    longer than the shortest possible cycle (theory.md §2.2: then a session starts at most
    one turn per window); otherwise the count is compound Poisson. ``min_cycle_s=None``
    assumes the window is short enough.
    """
    mix = _event_mix(wl, c)
    q_units = c.allowance
    # A lattice fine enough for both the allowance and the smallest batch.
    mean_batches = [batch_units_mean(b, c.costs) for _, b in mix]
    scale = min(q_units, min(mean_batches) * 16) if mean_batches else q_units
    h = max(_lattice_step(c, scale, q_units), q_units / _MAX_LIMIT_POINTS)
    rates = np.array([r * c.window_s / cycle_s for r, _ in mix])
    p_total = float(rates.sum())
    # Batches are cut one step past the allowance: beyond it only their mean matters.
    pmfs = [batch_units_pmf(b, c.costs, h, top=q_units + h) for _, b in mix]
    size = max(p.size for p in pmfs)
    sev = np.zeros(size)
    for r, p in zip(rates, pmfs, strict=True):
        sev[: p.size] += r / p_total * p
    # Zero-size batches (an optional call skipped) are thinning: fold them into P.
    f0 = sev[0]
    if f0 >= 1.0:
        p_total = 0.0
    elif f0 > 0:
        p_total *= 1.0 - f0
        sev[0] = 0.0
        sev = sev / sev.sum()
    k = np.arange(sev.size)
    mean_b = float(np.dot(k, sev))
    var_b = max(0.0, float(np.dot(k * k, sev) - mean_b**2))
    mean_units = sum(r / cycle_s * m for (r, _), m in zip(mix, mean_batches, strict=True))
    window_units = float(np.dot(rates, mean_batches)) if mix else 0.0
    return _WindowModel(h, q_units / h, p_total, sev, mean_units, var_b, mean_b,
                        window_units,
                        at_most_one=min_cycle_s is None or c.window_s <= min_cycle_s,
                        sliding=c.enforcement == "sliding_window")


def constraint_model(wl: Workload, c: Constraint, cycle_s: float,
                     min_cycle_s: float | None = None) -> ClumpedWindow | _BucketModel:
    """The burst-aware model of constraint ``c``: ``.stats(n)`` gives its window
    exceedance and 429 share of attempts at ``n`` sessions (windows or token bucket)."""
    if c.enforcement == "token_bucket":
        return bucket_model(wl, c, cycle_s)
    from capacity.analytic.clumped import clumped_window_model  # it imports this module

    return clumped_window_model(wl, c, cycle_s)


# ---------------------------------------------------------------------------------------
# Token bucket
# ---------------------------------------------------------------------------------------


# A batch law with more points than this takes :func:`_lundberg_newton` (a few passes over
# it per root); shorter ones keep Brent's method (their answers unchanged, bit for bit).
_NEWTON_POINTS = 4096


# Short batch laws lundberg_theta prepared, by id (the law kept: the id is not reused),
# with each law's M_B(θ) − 1 (or log M_B(θ)) by θ: every root of a law starts its bracket
# from the same θ (1/x_max, doubled or halved), Brent's method asks its ends again, and a
# bucket's search asks roots of a few laws at one rate after another (ptu-spillover: 79
# roots of 4 laws an answer). The same floats as computed afresh: g is a pure function.
_BRENT_LAWS: dict[int, tuple[Any, ...]] = {}


def lundberg_theta(lam: float, severity: NDArray[np.float64], h: float, rate: float) -> float:
    """Adjustment coefficient θ* > 0 solving ``λ (M_B(θ) - 1) = r θ`` (per unit).

    ``severity`` is the batch pmf on a lattice of step ``h`` units, ``lam`` the batch
    rate (1/s) and ``rate`` the refill (units/s). Returns 0 when the load is not below
    the refill rate (no positive root: the bucket drains).
    """
    hit = _BRENT_LAWS.get(id(severity))
    if hit is None or hit[0] is not severity or hit[1] != h or hit[2].size > _NEWTON_POINTS:
        k = np.flatnonzero(severity > 0)
        if k.size > _NEWTON_POINTS:
            return _lundberg_newton(lam, severity, h, rate)
        x = k * h
        # Near θ = 0, M_B(θ) - 1 must be computed without cancellation (and over a pmf
        # that sums to exactly 1): a residue of 1e-16 times a huge batch rate (an rpm of
        # 1e8) outweighs r θ there, g looks positive at every small θ and the bracket is
        # lost.
        f = severity[k] / float(severity[k].sum())
        parts: dict[float, float] = {}
        hit = remember(_BRENT_LAWS, id(severity),
                       (severity, h, x, f, np.log(f), float(np.dot(f, x)), parts), size=32)
    x, f, logf, mean = hit[2], hit[3], hit[4], hit[5]
    known: dict[float, float] = hit[6]
    # A load within rounding of the refill (an N exactly at the mean ceiling: 3.7 batches
    # of 5/3 units against 6.1666…67 units/s) has no root a double can bracket.
    if lam * mean >= rate * (1.0 - 1e-12):
        return 0.0

    def part(theta: float) -> float:
        """M_B(θ) − 1 below θ·x_max = 1, else log M_B(θ) (of the law alone)."""
        got = known.get(theta)
        if got is None:
            if theta * float(x[-1]) < 1.0:
                # M_B(θ) - 1 = Σ f (e^{θx} - 1): expm1 keeps it exact where θx is tiny.
                got = float(np.dot(f, np.expm1(theta * x)))
            else:
                # log-sum-exp keeps M_B(θ) finite for large batches.
                z = logf + theta * x
                zmax = float(z.max())
                got = zmax + math.log(float(np.exp(z - zmax).sum()))
            remember(known, theta, got, size=4096)
        return got

    def g(theta: float) -> float:
        if theta * float(x[-1]) < 1.0:
            return lam * part(theta) - rate * theta
        log_m = part(theta)
        if log_m > 700:
            return math.inf
        return lam * math.expm1(log_m) - rate * theta

    hi = 1.0 / max(float(x.max()), 1e-12)
    while g(hi) < 0:
        hi *= 2.0
        if hi > 1e6:
            return math.inf  # batches too small to ever matter
    lo = hi / 2.0
    while g(lo) >= 0 and lo > 1e-300:
        lo /= 2.0
    if g(lo) >= 0:
        return 0.0  # the root is below what g resolves: the bucket as good as drains
    return brentq(lambda t: min(g(t), 1e300), lo, hi, xtol=1e-14, rtol=1e-10)


def finite_dam_loss(lam: float, severity: NDArray[np.float64], h: float, rate: float,
                    depth: float) -> float:
    """Share of its input units a token bucket ``depth`` units deep, refilled at ``rate``
    units/s, turns away under compound-Poisson batches (``lam`` per second, law
    ``severity`` on a lattice of ``h`` units): ``(1 − ρ)·π/(1 − ρ·π)``, ``π = e^{−θ·b}``
    (the M/G/1 relation between finite and infinite dams, with the Lundberg bound for the
    tail), at every load.

    Below the refill θ is the positive root of ``λ(M_B(θ) − 1) = r·θ``; at or above it,
    the negative one (``π ≥ 1``): the same formula continued, exact for M/M/1/K (``π =
    ρ^K``) and tending to the fluid ``1 − 1/ρ`` as the depth grows. Through ``ρ = 1`` it
    is continuous, ``1/(1 + 2·r·b/(λ·E[B²]))`` there (the diffusion limit). The fluid
    share alone just past the refill dropped from the bound's ~19 % to ~1 % (hunt-3002:
    a priority deployment's OTPM bucket at ρ 0.97 and 1.01, its spill 4.7 % then 0.3 %,
    and the ceiling searched on a share that fell as N rose).
    """
    k = np.flatnonzero(severity > 0)
    if lam <= 0.0 or k.size == 0:
        return 0.0
    x = k * h
    f = severity[k] / float(severity[k].sum())
    m1 = float(np.dot(f, x))
    drift = lam * m1 - rate
    rho = lam * m1 / rate
    m2 = float(np.dot(f, x * x))
    if abs(drift) < 1e-6 * rate:
        # Near the refill the root by its series, θ₀ = −2·drift/(λ·E[B²]) and the
        # cubic term's correction (a root-finder's absolute tolerance is coarse there:
        # a dip of 2e-4 at ρ = 1 − 1e-9).
        t0 = -2.0 * drift / (lam * m2)
        theta = t0 - float(np.dot(f, x**3)) * t0 * t0 / (3.0 * m2)
    elif drift < 0.0:
        theta = lundberg_theta(lam, severity, h, rate)
        if not math.isfinite(theta):
            return 0.0
    else:
        def g(t: float) -> float:
            return lam * float(np.dot(f, np.expm1(t * x))) - rate * t

        # g(t) ≤ t·drift + λ·E[B²]·t²/2 for t < 0 (the alternating series), negative at
        # hi; g(t) ≥ r·|t| − λ, positive at lo (and |hi| < λ/r, or g(hi) would be > 0).
        theta = brentq(g, -2.0 * lam / rate, -drift / (lam * m2), xtol=1e-300, rtol=1e-12)
    if theta == 0.0:
        return 1.0 / (1.0 + 2.0 * rate * depth / (lam * m2))    # (the limit at ρ = 1)
    # 1 − ρ from the drift θ was solved with (``1.0 - rho`` rounds otherwise: within
    # 1e-12 of the refill, jumps of 20 %).
    omr = -drift / rate
    e = -theta * depth
    if e > 700.0:
        return -omr / (rho - math.exp(-e))                      # π past a double: 1/π
    # 1 − ρπ = (1 − ρ) − ρ·(π − 1), without cancellation near ρ = 1.
    return omr * math.exp(e) / (omr - rho * math.expm1(e))


# The last long batch law :func:`_lundberg_newton` prepared, and its last root: the
# bisection over N asks for θ* of the same law at one rate after another.
_NEWTON_MEMO: dict[str, Any] = {}


def _log_mgf(theta: float, x: NDArray[np.float64], f: NDArray[np.float64],
             logf: NDArray[np.float64]) -> tuple[float, float]:
    """(log M_B(θ), the tilted mean M_B'(θ)/M_B(θ)) of the batch law ``f`` on points ``x``
    (units), without overflow or cancellation."""
    # (No BLAS dot: on a busy machine its threads wait milliseconds for each other.)
    if theta * float(x[-1]) < 1.0:
        e = np.expm1(theta * x)
        m1 = float(np.multiply(f, e).sum())
        return math.log1p(m1), float(np.multiply(f * x, e + 1.0).sum()) / (1.0 + m1)
    z = logf + theta * x
    zmax = float(z.max())
    w = np.exp(z - zmax)
    s = float(w.sum())
    return zmax + math.log(s), float(np.multiply(w, x).sum()) / s


def _lundberg_newton(lam: float, severity: NDArray[np.float64], h: float,
                     rate: float) -> float:
    """:func:`lundberg_theta` for a long batch law (over ``_NEWTON_POINTS`` points: a
    lognormal prompt's tail on a one-token lattice, 144,086 points in fuzz case fz61).

    The same root, as the root of ``G(θ) = log M_B(θ) − log(1 + rθ/λ)``: convex (a
    cumulant generating function less a concave one), ``G(0) = 0``, ``G'(0) < 0``, so
    Newton's method from any point right of the root descends to it monotonically —
    and its slope is at most the largest batch, where ``λ(M_B − 1) − rθ`` grows like
    ``e^{θ·x_max}`` and Brent's method spent ~20 passes over the law per root. Stops when
    a step moves θ by less than 1e-13 of itself (Brent's tolerance was 1e-10).
    """
    hit = _NEWTON_MEMO.get("law")
    if hit is None or hit[0] is not severity or hit[1] != h:
        k = np.flatnonzero(severity > 0)
        xs = np.asarray(k * h, dtype=np.float64)
        fs = np.asarray(severity[k] / float(severity[k].sum()), dtype=np.float64)
        found: dict[tuple[float, float], float] = {}
        hit = (severity, h, xs, fs, np.log(fs), float(np.multiply(fs, xs).sum()), found)
        _NEWTON_MEMO["law"] = hit
    x, f, logf, mean = hit[2], hit[3], hit[4], hit[5]
    roots: dict[tuple[float, float], float] = hit[6]
    if lam * mean >= rate * (1.0 - 1e-12):
        return 0.0
    c = rate / lam

    def big_g(theta: float) -> tuple[float, float]:
        lm, tilted = _log_mgf(theta, x, f, logf)
        return lm - math.log1p(c * theta), tilted - c / (1.0 + c * theta)

    key = (lam, rate)
    if key in roots:
        return roots[key]
    # A point right of the root by doubling from 1/x_max, as Brent's bracket did. Always
    # this start, never a nearby rate's root: Newton stops within 1e-13 of the root, and a
    # start that depended on which rates were asked before would make the last bits of
    # the answer depend on the call history (the simulator's bucket start read it).
    theta = 1.0 / max(float(x[-1]), 1e-12)
    val, slope = big_g(theta)
    while val < 0.0:
        theta *= 2.0
        if theta > 1e6:
            return math.inf  # batches too small to ever matter
        val, slope = big_g(theta)
    for _ in range(200):
        if val <= 0.0 or slope <= 0.0:
            break
        step = val / slope
        theta -= step
        if step <= 1e-13 * theta:
            break
        val, slope = big_g(theta)
    if not theta > 0.0:
        return 0.0
    if len(roots) >= 64:
        roots.clear()
    roots[key] = theta
    return theta


@dataclass
class _BucketModel:
    h: float
    rate_per_session: float          # events per second per session
    severity: NDArray[np.float64]
    refill: float
    depth: float
    mean_batch_units: float
    # The exact level chain of a shallow bucket (:mod:`capacity.analytic.bucket`): the
    # 429 share of attempts, retries included; None: the Lundberg bound.
    chain: BucketChain | DeepBucket | None = None
    # A deep bucket's launches bunched as a turn's calls are (:class:`ClumpedLaunches`);
    # None: the level law of the launches alone.
    clumped: ClumpedLaunches | None = None
    # largest_meeting takes a guess of the answer (constraint_ceiling's ``near``).
    searches_near: ClassVar[bool] = True

    def largest_meeting(self, target: float, hi: int, near: int | None = None
                        ) -> tuple[int, WindowStats | None]:
        """Largest n ≤ ``hi`` whose attempt share is within ``target``: the bisection's
        answer from a guess (``near``, else 85% of ``hi``) by :func:`_largest_meeting_near`.
        A share at n is the same whatever was asked before (each rate's level chain and
        Lundberg root are solved afresh, memoised by rate, never warm-started), and each
        costs a chain solve (5-25 ms on a shallow bucket with retries): the bisection from
        [0, hi] asked ~log2(hi) of them, the first at ``hi``."""
        return _largest_meeting_near(self.stats, target, hi, _near(near, hi))

    def stats(self, n: int) -> WindowStats:
        from capacity.analytic.bucket import DeepBucket, settled

        if n <= 0:
            return WindowStats(n, 0.0, 0.0, 0.0, "none")
        lam = n * self.rate_per_session
        if isinstance(self.chain, DeepBucket):
            deep = self.chain

            def at(rate: float) -> dict[str, float]:
                got = self.clumped.shares(rate, n) if self.clumped is not None else None
                return got if got is not None else deep.shares(rate, n)

            last = [at(lam)]

            def again(f: float) -> float:
                last[0] = at(lam * f)
                return last[0]["attempt"]

            # At the launch rate its own refusals make (turns refused come back sooner).
            settled(last[0]["attempt"], again, lambda q: deep.load_factor(q, lam))
            sh = self._with_never_fit(last[0])
            # Exceedance: the chance the level is below one mean call (no bound needed).
            return WindowStats(n, lam * self.mean_batch_units, sh["short"], sh["attempt"],
                               "token bucket, level law by level crossing", sh["call"],
                               sh["failed"])
        theta = lundberg_theta(lam, self.severity, self.h, self.refill)
        if self.chain is not None:
            # The bound stays the exceedance (the fleet's finite-dam spill reads it).
            bound = 1.0 if theta == 0.0 else math.exp(-theta * self.depth)
            sh = self._with_never_fit(self.chain.shares(lam, n))
            return WindowStats(n, lam * self.mean_batch_units, bound, sh["attempt"],
                               "token bucket, exact level chain", sh["call"], sh["failed"])
        if theta == 0.0:
            # Load ≥ refill: no positive adjustment coefficient, the bound is 1. (The fluid
            # loss 1 - 1/ρ would be smaller, but dropping to it at ρ = 1 would make the
            # curve non-monotone; the bound is what the ceiling is defined on.)
            return WindowStats(n, lam * self.mean_batch_units, 1.0, 1.0,
                               "Lundberg bound (token bucket overloaded: load ≥ refill)")
        bound = math.exp(-theta * self.depth)
        return WindowStats(n, lam * self.mean_batch_units, bound, bound,
                           "Lundberg bound (token bucket)")

    def _with_never_fit(self, shares: dict[str, float]) -> dict[str, float]:
        """The level's shares (calls past the depth counted as charged 0) with those
        calls' attempts, every one refused, by the client's retry rule."""
        from capacity.analytic.window import with_never_fit

        assert self.chain is not None
        retry = self.chain.retry
        return with_never_fit(shares, self.chain.never_fit,
                              retry.never_fit_tries if retry is not None else 1)


def bucket_step(c: Constraint, batch_means: list[float]) -> float:
    """The lattice step (units) of a token bucket's model: from its depth and the mean
    units of the launch batches it receives (``batch_means``; every population's, in the
    population model), never finer than the largest mean charge can be held on."""
    h = _lattice_step(c, min(c.depth, min(batch_means) * 16), c.depth)
    return max(h, finest_step(max((x.mean for x in c.costs.values() if x is not None),
                                  default=0.0)))


def bucket_model(wl: Workload, c: Constraint, cycle_s: float) -> _BucketModel:
    """Compound-Poisson input to a token bucket for constraint ``c`` (with the exact
    level chain when the bucket is shallow enough for it)."""
    mix = _event_mix(wl, c)
    h = bucket_step(c, [batch_units_mean(b, c.costs) for _, b in mix])
    rates = np.array([r / cycle_s for r, _ in mix])
    model = compound_bucket(c, h, rates, [_bucket_pmf(wl, c, b, h) for _, b in mix])
    model.chain = bucket_chain(wl, c, mix, rates, h)
    if model.chain is not None and model.chain.retry.continues:
        model.chain.goes_on = goes_on_law(wl, c, model.chain)
    if model.chain is not None:
        model.chain.walk = turn_walk(wl, c, model.chain)
        prof = wl.profile
        # Turns refused come back sooner, aborted or gone on (BucketChain._load_factor),
        # each launch refused by its charge: hunt-3 reduced to a pair of calls (the
        # second 7,307 tokens and 21 s long) at an ITPM bucket 1 s deep, aborted turns,
        # 5.1 -> 7.8 % refused at 120 sessions against the engine's 8.2 %.
        if (prof.session.mode == "think_time" and prof.pacing is None
                and not prof.populations):
            model.chain.cycle_s = cycle_s
    if model.chain is not None:
        model.chain.closed = closed_law(wl, c, model.chain, cycle_s)
        if model.chain.closed is None:
            model.chain.follow = follow_law(wl, c, model.chain, cycle_s)
    if model.chain is None:
        deep = deep_bucket(wl, c, mix, rates, h)
        if deep is not None and model.rate_per_session > 0:
            # Its launches (those with a call here) per launch the model counts.
            deep.scale /= model.rate_per_session
            model.chain = deep
            model.clumped = ClumpedLaunches.build(wl, c, cycle_s, deep)
            prof = wl.profile
            if (deep.retry is None and prof.session.mode == "think_time"
                    and prof.pacing is None and not prof.populations):
                # Turns refused come back sooner (DeepBucket.load_factor), as the chain's.
                from capacity.analytic.clumped import retry_model  # it imports this

                rm = retry_model(prof, c)
                deep.walk = turn_walk(wl, c, deep)
                deep.cycle_s = cycle_s
                deep.abort_turn = rm.abort_turn
                deep.rejection_latency = rm.rejection_latency_s or 0.0
            if (prof.session.mode == "think_time" and prof.pacing is None
                    and not prof.populations):
                deep.closed = closed_turns(wl, c, deep, cycle_s)
    return model


# Turns sampled with their charges for a deep bucket's closed loop (ClosedTurns.paired),
# and the sample's seed.
_CLOSED_SAMPLE = 8192
_CLOSED_SEED = 52
# ... one per profile (every deep bucket of it reads the same turns).
_CLOSED_SAMPLES: dict[int, tuple[Profile, Any]] = {}


def closed_turns(wl: Workload, c: Constraint, deep: DeepBucket, cycle_s: float
                 ) -> ClosedTurns | None:
    """Think-time sessions at ``c``'s deep bucket as :class:`~capacity.analytic.bucket.
    ClosedTurns` (a session busy with its turn starts no other: launches slow as the
    deficit deepens), where no turn launches there twice (a turn's later launches are
    its own walk's, :func:`turn_walk`); None otherwise."""
    from capacity.analytic.bucket import ClosedTurns
    from capacity.analytic.clumped import timing_of  # it imports this module

    think = wl.profile.session.think_time
    # A busy session's lost launches at 1/E[Z] a second hold for a think time no more
    # variable than an exponential one: a heavy-tailed one, freed, likely launches again
    # soon (a review found lognormal think times of median 5-20 s and p95 60-200 s past
    # the simulated N* with the tilt).
    if think is None or think.var > 1.0001 * think.mean ** 2:
        return None
    walk = turn_walk(wl, c, deep, single=True)
    if walk is None or walk.rest.size == 0:
        return None
    on = walk.seq >= 0
    if (on.sum(axis=1) > 1).any():
        return None
    rest = walk.rest[on]
    rest = rest[np.isfinite(rest)]
    tt = timing_of(wl)
    # (The cycle's exact mean turn latency, as cycle_s was made: a sample's mean is off
    # by a good share of a short think time.)
    pause = max(cycle_s - cycle_time(wl).turn_latency_mean_s, 0.0)
    if rest.size == 0 or pause <= 0.0:
        return None
    # Each turn's charge here beside its latency, from one small sample of whole turns
    # (the walk's launches carry charge laws, not draws): the time to the turn's end is
    # the latency less the launch's mean offset in its turn (the walk's).
    sample = cached_per_profile(_CLOSED_SAMPLES, wl.profile, lambda _p: sample_turns(
        wl, _CLOSED_SAMPLE, np.random.default_rng(_CLOSED_SEED)))
    units = sample.units.get(c.name)
    paired = None
    if units is not None and (units > 0).any():
        live = units > 0
        here = [i for i, sp in enumerate(tt.specs) if c.costs.get(id(sp)) is not None]
        counts = tt.groups()[1]
        rows = np.flatnonzero((counts[:, :, here].sum(axis=2) > 0).any(axis=1))
        offset = max(float(tt.latency[rows[:_WALK_TURNS]].mean()) - float(rest.mean()), 0.0)
        paired = (units[live], np.maximum(sample.latency[live] - offset, 0.0))
    return ClosedTurns(np.maximum(rest, 0.0), pause, float(walk.here), paired)


def _train_span(wl: Workload, c: Constraint) -> float:
    """Seconds from a turn's first launch on ``c`` to its last, the mean over the turns
    that launch there (the fixed-seed launch-offset sample); 0: one launch a turn."""
    from capacity.analytic.clumped import timing_of  # it imports this module

    tm = timing_of(wl)
    on = np.array([(cost := c.costs.get(id(spec))) is not None and cost.mean > 0.0
                   for spec in tm.specs], dtype=bool)
    if not on.any():
        return 0.0
    here = (tm.calls >= 0) & np.isfinite(tm.times) & on[np.maximum(tm.calls, 0)]
    turns = here.any(axis=1)
    if not turns.any():
        return 0.0
    t = tm.times[turns]
    h = here[turns]
    first = np.where(h, t, np.inf).min(axis=1)
    last = np.where(h, t, -np.inf).max(axis=1)
    return float(np.mean(last - first))


# The window's bunching must pass the launches' own by this factor to answer ...
_CLUMP_MORE = 1.05
# ... over this share of the depth's seconds of refill (see :class:`ClumpedLaunches`).
_CLUMP_WINDOW = 0.5


@dataclass
class ClumpedLaunches:
    """A deep bucket's arrivals as Poisson launches of a launch's own calls and a Poisson
    number more (:func:`~capacity.analytic.bucket.bunched_kinds`), set by the index of
    dispersion of the turns' clumped window count over half the depth's seconds
    (:class:`~capacity.analytic.window.ClumpWindowModel` of a fixed window that long, at
    each N): the level law of :class:`~capacity.analytic.bucket.DeepBucket` with the
    client's retries, as for the launches themselves
    (``python benchmarks/session36_probes.py train``).

    The launches alone are Poisson; a session's calls are not: a tool loop of 7–8 calls
    a second apart at a 165 RPM bucket 10 s deep (hunt-3096) drains it in runs, and the
    launches' law said 1.4e-8 refused at 24 sessions without retries where the engine
    refuses 2.6e-3. The window count over half the depth's seconds has those runs;
    launches of its index of dispersion say 2.6e-3 (4.0e-4 against 4.3e-4 at 20, 1.3e-2
    against 9.4e-3 at 28). Over the depth's whole seconds a window's calls would be taken
    as one instant (2.9e-3 at 20); over a quarter of it too few bunch (tool-agent on a
    10 s TPM bucket without retries: 0.06 % at 33 sessions against the engine's 0.39 %,
    half: 0.35 %). It answers (:meth:`_BucketModel.stats`) where its fresh calls'
    share without retries passes the launches' own, so launches no more bunched than
    Poisson keep their exact law; and only where the window lies within a turn's train
    (``span``, its launches here first to last), fading log-linearly to none at twice
    the train: a deeper bucket meets the trains as launches (the same tool loop at a
    20 s bucket, a 10 s window past its 6.9 s train: bunched 24 with retries and 29
    without, where the engine says 30 [29–30] and 32 and the launches' law 31 and 33;
    now 29 and 32)."""

    window: Any                       # the ClumpWindowModel of the half-depth window
    window_s: float
    charge: NDArray[np.float64]       # one call's charge on the window's lattice
    deep: DeepBucket                  # the launches' own level law, with the retries
    span: float                       # a turn's launches here, first to last (s, mean)
    _memo: dict[tuple[int, float], dict[str, float] | None] = field(default_factory=dict,
                                                                     repr=False)

    @classmethod
    def build(cls, wl: Workload, c: Constraint, cycle_s: float,
              deep: DeepBucket) -> ClumpedLaunches | None:
        """The clumped launches of constraint ``c``'s deep bucket (None: no calls, one
        launch a turn, or a window the clumped model cannot hold)."""
        from capacity.analytic.clumped import clumped_window_model  # it imports this

        if c.rate_per_s <= 0.0 or c.depth <= 0.0:
            return None
        w = _CLUMP_WINDOW * c.depth / c.rate_per_s
        log = dataclasses.replace(c, enforcement="fixed_window", window_s=w,
                                  burst_s=0.0,
                                  limit=(c.depth + c.rate_per_s * w) * c.period_s / w)
        inner = getattr(clumped_window_model(wl, log, cycle_s), "inner", None)
        if inner is None:
            return None
        charge = np.asarray(inner.call_pmf, dtype=np.float64)
        mass = float(charge.sum())
        if mass <= 0.0:
            return None
        charge = np.trim_zeros(charge / mass, "b")
        span = _train_span(wl, c)
        if span <= 0.0:
            return None
        return cls(inner, w, charge, deep, span)

    def window_law(self, n: float) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """(the window count of units at ``n`` sessions, one call's charge, the train's
        seconds), on the window model's lattice."""
        return self.window.pmf(n), self.charge, self.span

    def shares(self, lam: float, n: int) -> dict[str, float] | None:
        """:meth:`DeepBucket.shares <capacity.analytic.bucket.DeepBucket.shares>` at
        ``lam`` launches a second (the launches' own count) and ``n`` sessions (None: no
        more bunched than the launches)."""
        key = (n, lam)
        if key in self._memo:
            return self._memo[key]
        from capacity.analytic.bucket import DeepBucket, bunched_kinds, calls_dispersion

        # The calls that come together: a launch's own and the turn's others about it.
        deep = self.deep
        g, charge, span = self.window_law(n)
        _, d = calls_dispersion(g, charge)
        got = bunched_kinds(deep.kinds, d, _CLUMP_MORE)
        # The window within a turn's train: all of it; past twice the train, none
        # (log-linear between).
        phi = min(1.0, max(0.0, 2.0 - self.window_s / span)) if span > 0.0 else 0.0
        out: dict[str, float] | None = None
        if got is not None and phi > 0.0:
            kinds, keep = got
            # Which answers, by the fresh calls' share without retries (each a level law
            # in milliseconds; with backoff retries each costs a retry chain, 0.4 s on
            # a tool loop with five of them when both were solved).
            # (Uncounted refusals without retries, as these laws were measured: passing
            # the bucket's counted flag there made a call train 26 against a simulated
            # 28 [28–28], tests/test_analytic_bucket_clumped_launches.py — left. With
            # backoff retries the retried law counts them, as the launches' own does
            # (DeepBucket._counted_steps): the same train with backoff retries 25 -> 24
            # against 22 [21–23], no hunt record moved.)
            alone = DeepBucket(kinds, deep.h, deep.refill, deep.depth, deep.scale)
            own = DeepBucket(deep.kinds, deep.h, deep.refill, deep.depth, deep.scale)
            if alone.shares(lam * keep)["call"] > own.shares(lam)["call"]:
                out = (alone if deep.retry is None else DeepBucket(
                    kinds, deep.h, deep.refill, deep.depth, deep.scale,
                    retry=deep.retry, counts_refusals=deep.counts_refusals)
                       ).shares(lam * keep)
                if phi < 1.0:
                    base = deep.shares(lam)
                    out = {key: math.exp((1.0 - phi) * math.log(max(base[key], 1e-300))
                                         + phi * math.log(max(v, 1e-300)))
                           for key, v in out.items()}
        if len(self._memo) >= 512:
            self._memo.clear()
        self._memo[key] = out
        return out


@dataclass
class MixedClumpedLaunches(ClumpedLaunches):
    """:class:`ClumpedLaunches` of a mix of populations (``parts``: each one's share of
    the sessions and its clumped launches, on one window lattice): the window count is
    the populations' counts convolved, each at its share of N; a call's charge and the
    train's seconds their mix by the calls in a window."""

    parts: list[tuple[float, ClumpedLaunches]] = field(default_factory=list)

    def window_law(self, n: float) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        g = np.ones(1)
        charge = np.zeros(1)
        span = calls = 0.0
        for a, part in self.parts:
            gp = part.window.pmf(a * n)
            gp = gp / float(gp.sum())
            g = np.convolve(g, gp)
            x = np.arange(part.charge.size, dtype=np.float64)
            k = float(np.dot(np.arange(gp.size, dtype=np.float64), gp)) / max(
                float(np.dot(x, part.charge)), 1e-300)          # its calls a window
            if charge.size < part.charge.size:
                charge = np.pad(charge, (0, part.charge.size - charge.size))
            charge[: part.charge.size] += k * part.charge
            span += k * part.span
            calls += k
        if calls <= 0.0:
            return g, np.array([0.0, 1.0]), 0.0
        return g, charge / calls, span / calls


def mixed_clumped(parts: list[tuple[float, ClumpedLaunches | None]], deep: DeepBucket
                  ) -> MixedClumpedLaunches | None:
    """The clumped launches of the mix of ``parts`` (``(share of the sessions, the
    population's)``) at the blended level law ``deep`` (None unless every population has
    them, on one window lattice and one window)."""
    live = [(a, p) for a, p in parts if a > 0.0 and p is not None]
    if not live or len(live) < sum(1 for a, _ in parts if a > 0.0):
        return None
    first = live[0][1]
    if any(p.window.h != first.window.h or p.window_s != first.window_s for _, p in live):
        return None
    return MixedClumpedLaunches(first.window, first.window_s, first.charge, deep,
                                first.span, parts=live)


def _bucket_pmf(wl: Workload, c: Constraint, b: Any, h: float) -> NDArray[np.float64]:
    """The lattice law of batch ``b``'s charge on ``c``'s bucket, uncut (read-only).

    The same at every cycle time: the think-time sweep and the joint ceiling rebuild
    the bucket model at other cycles, and a lognormal prompt on a one-token lattice is
    hundreds of thousands of points (fz66: 582,737, built 5 times, 2.3 s). Remembered
    per profile; each entry keeps its constraint and batch alive (their ids stay
    theirs)."""
    memo = cached_per_profile(_BUCKET_PMFS, wl.profile, lambda _p: {})
    key = (id(c), id(b), h)
    hit = memo.get(key)
    if hit is None:
        pmf = batch_units_pmf(b, c.costs, h)
        pmf.setflags(write=False)
        hit = memo[key] = (c, b, pmf)
    out: NDArray[np.float64] = hit[2]
    return out


_BUCKET_PMFS: dict[int, tuple[Profile, dict[Any, Any]]] = {}


# Sampled turns a bucket's turn walk follows, at most.
_WALK_TURNS = 256


def turn_walk(wl: Workload, c: Constraint, chain: BucketChain | DeepBucket,
              single: bool = False) -> TurnWalk | None:
    """The sampled turns' launches at ``c``'s bucket for its turn walk
    (:class:`capacity.analytic.bucket.TurnWalk`); None when no turn launches here twice
    (then every launch meets the level a Poisson one does) unless ``single`` (the load
    factor reads turns of one launch too: refused, each ends sooner)."""
    from capacity.analytic.bucket import TurnWalk, never_fit_stripped
    from capacity.analytic.clumped import timing_of  # it imports this module

    tt = timing_of(wl)
    here = [i for i, sp in enumerate(tt.specs) if c.costs.get(id(sp)) is not None]
    if not here:
        return None

    def build(single: bool) -> TurnWalk | None:
        times, counts = tt.groups()
        cnt = counts[:, :, here]
        on = cnt.sum(axis=2) > 0
        live = np.flatnonzero(on.any(axis=1))
        keep = live[:_WALK_TURNS]
        on = on[keep]
        if not (single or (on.sum(axis=1) > 1).any()):
            return None
        width = int(on.sum(axis=1).max())
        rows, cols = np.nonzero(on)                      # row-major: each turn in order
        pos = (np.cumsum(on, axis=1) - 1)[rows, cols]
        pats, inv = np.unique(cnt[keep][rows, cols], axis=0, return_inverse=True)
        seq = np.full((keep.size, width), -1, np.int64)
        seq[rows, pos] = inv.ravel()
        at = np.full((keep.size, width), np.nan)
        at[rows, pos] = times[keep][rows, cols]
        gaps = np.full((keep.size, width), np.nan)
        gaps[:, 1:] = at[:, 1:] - at[:, :-1]
        top = c.depth + chain.h
        pmfs = []
        for i in here:
            cost = c.costs[id(tt.specs[i])]
            assert cost is not None
            pmf = never_fit_stripped(cost.pmf(chain.h, top), chain.h, c.depth)[0]
            pmfs.append(pmf / pmf.sum())
        key = hash((pats.tobytes(), seq.tobytes(), gaps.tobytes(), chain.h, c.depth))
        rest = tt.latency[keep][:, None] - at
        return TurnWalk(tuple(pmfs), pats.astype(np.int64), seq, gaps, key, rest,
                        live.size / max(tt.n, 1))

    # (A walk of several launches a turn is the same with ``single``: one memo entry.)
    many = tt.memo(("bucket-walk", c.quota, c.dim, chain.h, c.depth),
                   functools.partial(build, False))
    out: TurnWalk | None = many if many is not None or not single else tt.memo(
        ("bucket-walk-single", c.quota, c.dim, chain.h, c.depth), functools.partial(build, True))
    return out


def goes_on_law(wl: Workload, c: Constraint, chain: BucketChain) -> GoesOn | None:
    """The launch a refused one brings when turns go on (``on_exhausted: continue``, no
    retries; :class:`capacity.analytic.bucket.GoesOn`): the chance a launch here has a
    later one in its turn (every launch but a turn's first: a loop's repeats, a chain's
    later steps), and that later launch's law; None when no turn launches here twice."""
    from capacity.analytic.bucket import GoesOn, launch_law, merge_kinds, never_fit_stripped

    assert chain.retry.rejection_latency_s is not None
    top = c.depth + chain.h
    total = 0.0
    found = []
    for t in wl.turns:
        evs = [ev for ev in t.events if batch_units_mean(ev.batch, c.costs) > 0]
        total += t.probability * sum(ev.rate for ev in evs)
        for i, ev in enumerate(evs):
            # A turn's first launch here is no one's next: the rest of its rate is.
            r = t.probability * (ev.rate if i > 0 else max(ev.rate - 1.0, 0.0))
            k, ch = launch_law(ev.batch, c.costs, chain.h, top)
            mass = float(ch.sum())
            if r <= 0.0 or mass <= 0.0:
                continue
            # Past the depth a call is charged 0 to the level, as the chain's own are.
            found.append((r, k, never_fit_stripped(ch, chain.h, c.depth)[0] / mass))
    later = merge_kinds(found)
    weight = math.fsum(w for w, _, _ in later)
    if total <= 0.0 or weight <= 0.0:
        return None
    # A later launch with no call here (an optional call not made) brings nothing: the
    # chance counts only the launches with one.
    live = [(w * (1.0 - float(k[0])), k, call) for w, k, call in later]
    chance = math.fsum(w for w, _, _ in live) / total
    kinds = []
    for w, k, call in live:
        if w > 0.0:
            k = k.copy()
            k[0] = 0.0
            kinds.append((w, k / k.sum(), call))
    norm = math.fsum(w for w, _, _ in kinds)
    return GoesOn(min(1.0, chance), chain.retry.rejection_latency_s,
                  tuple((w / norm, k, call) for w, k, call in kinds))


def closed_law(wl: Workload, c: Constraint, chain: BucketChain, cycle_s: float
               ) -> ClosedSessions | None:
    """The inter-launch law of a session at ``c``'s bucket when every turn is one call
    on it and nothing else (a session then launches once per cycle: a renewal whose time
    is the cycle's, turn latency plus think time or the cadence's), one population, no
    pacing; None otherwise (Poisson launches). With retries it moves the retry model's
    fresh refusals (:meth:`capacity.analytic.bucket.BucketChain.shares`; not the orbit's
    nor told retries' at a counting requests bucket)."""
    from capacity.analytic.bucket import CLOSED_HORIZON, fit_closed

    prof = wl.profile
    if (prof.populations or prof.pacing is not None
            or prof.routes or chain.count.size != 2 or chain.count[1] != 1.0
            or any(len(t.events) != 1 or t.events[0].rate != 1.0 for t in wl.turns)
            or any(abs(k - 1.0) > 1e-12 for k in wl.calls_per_turn_type())
            or abs(wl.calls_per_turn_on(c) - 1.0) > 1e-12):
        return None
    cyc = cycle_time(wl)
    if abs(cyc.cycle_s - cycle_s) > 1e-9 * cycle_s:
        return None                       # another think time (the sensitivity sweep)
    s = prof.session
    lat = wl.turn_latency
    pause = s.pause.sample(np.random.default_rng(11), lat.size)
    gap = lat + pause if s.mode == "think_time" else np.maximum(pause, lat)
    # Fitted over the bucket's memory (where a quick second launch joins a burst) and
    # over a whole mean cycle (how many sessions are young: over a bucket 1 s deep the
    # first span alone sees nothing and leaves the split free).
    return fit_closed(gap, cycle_s, CLOSED_HORIZON * c.depth / c.rate_per_s, span=cycle_s)


def follow_law(wl: Workload, c: Constraint, chain: BucketChain, cycle_s: float
               ) -> FollowSessions | None:
    """Sessions as turns and pauses (:func:`capacity.analytic.bucket.follow_share`) when
    a turn launches at ``c``'s bucket more than once (its first launch once a turn; later
    ones looped or optional too: a tool loop's calls follow one another as a chain's
    do, hunt-1018), sessions pausing a think time (a cadence's pause is far more
    regular than the chain's exponential one: hunt-155's two calls at a bucket 30 s deep,
    without retries, said 46 against a simulated 49 [47–50], Poisson launches 50),
    one population, no pacing; None otherwise (Poisson launches). With retries it moves
    the retry model's fresh refusals (:meth:`capacity.analytic.bucket.BucketChain.shares`)."""
    from capacity.analytic.bucket import (
        FollowSessions,
        _add,
        launch_law,
        merge_kinds,
        never_fit_stripped,
    )
    from capacity.analytic.clumped import timing_of  # it imports this module

    prof = wl.profile
    if (prof.session.mode != "think_time"
            or prof.populations or prof.pacing is not None or prof.routes):
        return None
    top = c.depth + chain.h

    def launch(batch: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        # As the chain's laws: a call past the depth is charged 0 (bucket_chain).
        k, ch = launch_law(batch, c.costs, chain.h, top)
        return k, never_fit_stripped(ch, chain.h, c.depth)[0]

    first: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]] = []
    later: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]] = []
    share = 0.0
    repeated = False          # a later step looped or optional: launched ``rate`` times
    for t in wl.turns:
        evs = [ev for ev in t.events if batch_units_mean(ev.batch, c.costs) > 0]
        if evs and evs[0].rate != 1.0:
            return None
        if not evs:
            first.append((t.probability, np.ones(1), np.zeros(1)))
            continue
        first.append((t.probability, *launch(evs[0].batch)))
        if len(evs) > 1:
            share += t.probability
        repeated |= any(ev.rate != 1.0 for ev in evs[1:])
        later.extend((t.probability * ev.rate, *launch(ev.batch))
                     for ev in evs[1:])
    if share <= 0.0:
        return None
    # The mean gap between a turn's launches here, after its first.
    tt = timing_of(wl)
    here = np.array([c.costs.get(id(sp)) is not None for sp in tt.specs])

    def spread() -> tuple[float, float, float]:
        times, counts = tt.groups()
        on = counts[:, :, here].sum(axis=2) > 0                 # an event with a call here
        n_on = on.sum(axis=1)
        span = (np.where(on, times, -np.inf).max(axis=1)
                - np.where(on, times, np.inf).min(axis=1))
        many = n_on > 1
        return (float(span[many].sum()), float((n_on[many] - 1).sum()),
                float(many.mean()) if many.size else 0.0)

    total, count, sampled = tt.memo(("follow-spread", here.tobytes()), spread)
    if repeated:
        # A loop or an optional step may launch no later call: the sampled turns say
        # how many have one (the launches' mean stays the events' exact rates).
        share = sampled
        if share <= 0.0:
            return None
    per_turn = sum(w for w, _, _ in later) / share          # later launches, ≥ 1
    gap = total / max(count, 1.0)
    idle = cycle_s - share * gap * per_turn
    if gap <= 0.0 or idle <= 0.0:
        return None

    def mixed(parts: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]]
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        weight = sum(w for w, _, _ in parts)
        k = ch = np.zeros(1)
        for w, kk, cc in parts:
            k, ch = _add(k, w / weight * kk), _add(ch, w / weight * cc)
        return k, ch

    def kinds(parts: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]]
              ) -> tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...]:
        # Each kind of launch by its own calls (bucket._mixed_grid), when they differ.
        weight = sum(w for w, _, _ in parts)
        merged = merge_kinds((w / weight, kk, cc) for w, kk, cc in parts)
        return tuple(merged) if len(merged) > 1 else ()

    return FollowSessions(idle, gap, share, 1.0 - 1.0 / per_turn, mixed(first),
                          mixed(later), chain.retry.abort_turn, kinds(first), kinds(later))


def deep_bucket(wl: Workload, c: Constraint, mix: list[tuple[float, Any]],
                rates: NDArray[np.float64], h: float) -> DeepBucket | None:
    """The level law of a bucket too deep for the level chain, with or without retries
    (None with counted refusals of calls charging more than one unit, routes, or a
    bucket no call fits: the bound's)."""
    from capacity.analytic.bucket import DeepBucket, launch_law
    from capacity.analytic.clumped import retry_model  # it imports this module

    if not mix or c.depth <= 0 or rates.sum() <= 0 or wl.profile.routes:
        return None
    retry = retry_model(wl.profile, c)
    # (Counted refusals: DeepBucket._counted_share's one-unit holds, a requests limit's.)
    if retry.max_retries > 0 and retry.counts_rejected and c.unit != "requests":
        return None
    total = float(rates.sum())
    # The level law's grids are an eighth of a mean call at the finest (a sixteenth on
    # the fine one): a lattice of a 64th of one is all the launch laws need.
    calls = wl.calls_per_turn_on(c)
    top = c.depth
    if calls > 0:
        h = max(h, wl.units_per_turn(c) / calls / 64.0)
        # A charge past 64 mean calls is far out in any tail (the block and the grid are
        # cut at the 1e-6 quantile): gathered there, unless it cannot fit at all.
        top = min(top, 64.0 * wl.units_per_turn(c) / calls)
    # The launch laws do not move with the cycle (the think-time sweep, the joint
    # ceiling rebuild this bucket): built once per profile and constraint.
    memo = cached_per_profile(_DEEP_KINDS, wl.profile, lambda _p: {})
    key = (c.quota, c.dim, h, tuple(float(r) / total for r in rates))
    if key not in memo:
        found = []
        for r, (_, b) in zip(rates, mix, strict=True):
            count, charge = launch_law(b, c.costs, h, top + h)
            mass = float(charge.sum())
            if mass <= 0 or count[0] >= 1.0:
                continue
            # Launches with no call on this constraint charge nothing: thinned out.
            w = r / total * (1.0 - float(count[0]))
            count = count.copy()
            count[0] = 0.0
            found.append((w, count / count.sum(), charge / mass))
        memo[key] = found
    kinds = memo[key]
    if not kinds:
        return None
    weight = sum(w for w, _, _ in kinds)
    kinds = [(w / weight, k, ch) for w, k, ch in kinds]
    return DeepBucket(kinds, h, c.rate_per_s, c.depth, scale=weight * total,
                      retry=retry if retry.max_retries > 0 else None,
                      counts_refusals=retry.counts_rejected and c.unit == "requests")


_DEEP_KINDS: dict[int, tuple[Profile, dict[Any, Any]]] = {}



def bucket_chain(wl: Workload, c: Constraint, mix: list[tuple[float, Any]],
                 rates: NDArray[np.float64], h: float, spill: bool = False
                 ) -> BucketChain | None:
    """The level chain of constraint ``c``'s bucket (None: too deep for it): launches
    of every event in ``mix`` at ``rates``, mixed. ``spill``: a fleet's spilling bucket,
    whose refused calls leave at once (no retries here, the turn not ended)."""
    from capacity.analytic.bucket import (
        BucketChain,
        _add,
        fits_chain,
        launch_kinds,
        launch_law,
        never_fit_stripped,
    )
    from capacity.analytic.clumped import retry_model  # it imports this module
    from capacity.analytic.window import RetryModel

    if not mix or c.depth <= 0 or rates.sum() <= 0:
        return None
    if wl.profile.routes and not spill:
        # Routed deployments are the fleet model's (:mod:`capacity.analytic.fleet`): it
        # asks for a spilling bucket's chain itself (spill_chain).
        return None
    # The chain holds at most ~47 mean calls (fits_chain): a deeper bucket is the bound's,
    # known before any launch law is built (they cost a lognormal lattice each).
    calls = wl.calls_per_turn_on(c)
    if calls > 0 and c.depth > 64.0 * wl.units_per_turn(c) / calls:
        return None
    retry = (retry_model(wl.profile, c) if not spill
             else RetryModel(0, False, False, abort_turn=False))
    top = c.depth + h
    count = np.zeros(1)
    charge = np.zeros(1)
    w = rates / rates.sum()
    laws = []
    for wi, (_, b) in zip(w, mix, strict=True):
        k, ch = launch_law(b, c.costs, h, top)
        count = _add(count, wi * k)
        charge = _add(charge, wi * ch)
        laws.append((float(wi), k, ch))
    if charge.sum() <= 0:
        return None
    # Calls charged past the depth never take a unit: the level sees them as charged 0.
    charge, never = never_fit_stripped(charge, h, c.depth)
    call_pmf = charge / charge.sum()
    if not fits_chain(call_pmf, h, c.depth):
        return None
    # Launches with no call on this constraint are thinned out (as the severity is).
    if count[0] >= 1.0:
        return None
    count = count.copy()
    count[0] = 0.0
    count /= count.sum()
    chain = BucketChain(count, call_pmf, h, c.rate_per_s, c.depth, retry, never_fit=never,
                        kinds=launch_kinds(laws, h, c.depth))
    # Checked where it matters most, at the refill rate (load 1): a coarse grid whose two
    # resolutions disagree there is left to the bound.
    mean_calls = float(np.dot(np.arange(count.size), count))
    if not chain.converged(c.rate_per_s / (mean_calls * chain.mean_charge)):
        return None
    return chain


def spill_chain(wl: Workload, c: Constraint, cycle_s: float, h: float
                ) -> BucketChain | None:
    """The level chain of a fleet's spilling token bucket ``c`` (lattice ``h`` units):
    its refused calls spill at once — no retry, the turn goes on elsewhere, so no turn
    ends sooner (no ``cycle_s``) — the others' launches Poisson and each turn's own
    launches walked (:func:`turn_walk`: a later one meets the level its turn's earlier
    ones left); the closed loop and the follow chain are the single deployment's
    (:func:`closed_law` and :func:`follow_law` have none for a routed profile). None
    where the chain does not hold the bucket (too deep, or its grids disagree)."""
    mix = _event_mix(wl, c)
    rates = np.array([r / cycle_s for r, _ in mix])
    chain = bucket_chain(wl, c, mix, rates, h, spill=True)
    if chain is None:
        return None
    chain.walk = turn_walk(wl, c, chain)
    return chain


def fitting_bucket(wl: Workload, c: Constraint, cycle_s: float, h: float
                   ) -> _BucketModel | None:
    """The compound input of token bucket ``c`` (lattice ``h`` units) without the calls
    whose every charge is past its depth: never admitted, they take no unit (a launch of
    nothing else thinned out); None when there are none. A spilling bucket's finite dam
    reads its loss over the rest's units, those calls counted apart
    (``fleet.BucketSpill.never``). A call whose charge only sometimes passes the depth
    stays in, as the dam was measured with it (its large draws are the refused ones)."""
    if not any(outside_depth(v, c.depth) for v in c.costs.values()):
        return None
    mix = _event_mix(wl, c)
    costs = {k: (None if outside_depth(v, c.depth) else v) for k, v in c.costs.items()}
    pmfs = [batch_units_pmf(b, costs, h) for _, b in mix]
    if not any(float(p[1:].sum()) > 0.0 for p in pmfs):
        return None
    return compound_bucket(c, h, np.array([r / cycle_s for r, _ in mix]), pmfs)


def outside_depth(cost: CallCost | MixedCost | None, depth: float) -> bool:
    """Whether every charge of ``cost`` is past a bucket's ``depth`` (units)."""
    return cost is not None and depth > 0 and cost.lower > depth * (1.0 + 1e-12)


def compound_bucket(c: Constraint, h: float, rates: NDArray[np.float64],
                    pmfs: list[NDArray[np.float64]]) -> _BucketModel:
    """The bucket model of launch streams at ``rates`` (per second) whose charges have
    the lattice ``pmfs`` (step ``h`` units): one compound-Poisson input, empty launches
    (charging nothing) thinned out."""
    sev = np.zeros(max(p.size for p in pmfs))
    for r, p in zip(rates, pmfs, strict=True):
        sev[: p.size] += r / rates.sum() * p
    total = float(rates.sum())
    if sev[0] > 0:
        total *= 1.0 - sev[0]
        sev[0] = 0.0
        sev /= sev.sum()
    # Not np.dot: a BLAS product of 10^4 points wakes its worker threads, whose spinning
    # cost ptu-spillover's answer a third of its CPU time.
    mean_units = float(np.multiply(np.arange(sev.size) * h, sev).sum())
    return _BucketModel(h, total, sev, c.rate_per_s, c.depth, mean_units)


# ---------------------------------------------------------------------------------------
# Cycle time and latency
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleTime:
    """Turn latency and cycle time of one session (seconds), without throttling.

    The latency quantiles are read from the workload's turn sample when first asked
    for: a think time's cycle needs only the exact mean, and a population mix's fleet
    visits several mixes whose cycles only the reported one's quantiles are read of
    (ptu-spillover beside chat and batch: three samples of 8,192 turns not drawn)."""

    mode: str
    turn_latency_mean_s: float
    pause_mean_s: float
    cycle_s: float
    min_cycle_s: float = 0.0
    # (Keyword-only: the quantiles' fields it replaced were positional.)
    latency: Callable[[], NDArray[np.float64]] | None = field(
        default=None, repr=False, compare=False, kw_only=True)

    @property
    def _quantiles(self) -> tuple[float, float, float]:
        # (_latency_quantiles keeps them by the sample's identity.)
        if self.latency is None:
            return (math.nan, math.nan, math.nan)
        return _latency_quantiles(self.latency())

    @property
    def turn_latency_p50_s(self) -> float:
        """Median turn latency (seconds)."""
        return self._quantiles[0]

    @property
    def turn_latency_p95_s(self) -> float:
        """95th percentile of turn latency (seconds)."""
        return self._quantiles[1]

    @property
    def turn_latency_p99_s(self) -> float:
        """99th percentile of turn latency (seconds)."""
        return self._quantiles[2]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean({"mode": self.mode, "turn_latency_mean_s": self.turn_latency_mean_s,
                       "turn_latency_p50_s": self.turn_latency_p50_s,
                       "turn_latency_p95_s": self.turn_latency_p95_s,
                       "turn_latency_p99_s": self.turn_latency_p99_s,
                       "pause_mean_s": self.pause_mean_s, "cycle_s": self.cycle_s,
                       "min_cycle_s": self.min_cycle_s})


def cycle_time(wl: Workload, pause: Distribution | None = None) -> CycleTime:
    """Mean cycle time: ``E[R] + E[Z]`` (think time) or ``E[max(cadence, R)]`` (cadence).

    Turn latency statistics come from a fixed-seed sample of turns (no closed form for a
    maximum over a random fan-out); ``pause`` overrides the profile's think time/cadence.
    """
    s = wl.profile.session
    pause = pause or s.pause
    # E[R] exactly where the structure allows (see workload.latency_moments).
    moments = wl.turn_latency_moments
    r_mean = sum(t.probability * m for t, (m, _, _) in zip(wl.turns, moments, strict=True))
    r_min = min(lo for _, lo, _ in moments)
    if s.mode == "think_time":
        cycle = r_mean + pause.mean
        min_cycle = r_min + pause.lower
    else:
        lat = wl.turn_latency
        if pause.lower >= float(lat.max()):
            cycle = pause.mean  # every turn ends before the next is due
            min_cycle = pause.lower
        else:
            rng = np.random.default_rng(7)
            cycle = float(np.maximum(pause.sample(rng, lat.size), lat).mean())
            min_cycle = max(pause.lower, r_min)
    return CycleTime(s.mode, r_mean, pause.mean, cycle, min_cycle,
                     latency=lambda: wl.turn_latency)


# Quantiles of a turn-latency sample, by the sample's identity: the sensitivity sweep asks
# for the cycle at other think times of the same turns (a partition of 131,072 values
# each time: ~4% of tool-agent's analytic answer, twice).
_QUANTILES: dict[int, tuple[weakref.ref[NDArray[np.float64]], tuple[float, float, float]]] = {}


def _latency_quantiles(lat: NDArray[np.float64]) -> tuple[float, float, float]:
    """(p50, p95, p99) of ``lat`` (seconds), computed once per sample array."""
    hit = _QUANTILES.get(id(lat))
    if hit is not None and hit[0]() is lat:
        return hit[1]
    p50, p95, p99 = (float(v) for v in np.quantile(lat, [0.5, 0.95, 0.99]))
    if len(_QUANTILES) >= 64:
        _QUANTILES.clear()
    _QUANTILES[id(lat)] = (weakref.ref(lat), (p50, p95, p99))
    return p50, p95, p99


# ---------------------------------------------------------------------------------------
# Ceilings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConstraintResult:
    """Ceilings of one (quota, dimension) constraint."""

    quota: str
    dimension: str
    unit: str
    limit: float
    enforcement: str
    window_s: float | None
    allowance_per_window: int | None
    bucket_depth: float | None
    units_per_turn: float
    units_per_minute_per_session: float
    mean_ceiling: float
    burst_ceiling: int
    method: str
    at_burst_ceiling: WindowStats | None
    at_sessions: WindowStats | None = None
    utilisation_at_sessions: float | None = None
    binding: bool = False
    one_event_exceeds: bool = False
    spill_to: str | None = None  # a spillover route's deployment: its 429s spill there

    @property
    def name(self) -> str:
        """``quota.dimension``."""
        return f"{self.quota}.{self.dimension}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (non-finite numbers as null)."""
        d = {k: v for k, v in self.__dict__.items()
             if k not in ("at_burst_ceiling", "at_sessions")
             and (k != "spill_to" or v is not None)}
        d["at_burst_ceiling"] = self.at_burst_ceiling.to_dict() if self.at_burst_ceiling else None
        d["at_sessions"] = self.at_sessions.to_dict() if self.at_sessions else None
        return _clean(d)


def _largest_meeting(stats_fn: Any, target: float, hi: int) -> tuple[int, WindowStats | None]:
    """Largest n in [0, hi] with loss(n) ≤ target (loss non-decreasing in n)."""
    if hi <= 0:
        return 0, None
    top = stats_fn(hi)
    if top.loss_fraction <= target:
        return hi, top
    lo, lo_stats = 0, None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        st = stats_fn(mid)
        if st.loss_fraction <= target:
            lo, lo_stats = mid, st
        else:
            hi = mid
    return lo, lo_stats


def _near(near: int | None, hi: int) -> int:
    """The search's first guess: ``near``, else 85% of its upper end (the mean ceiling or
    a little above: a burst-aware ceiling is most often 65-98% of the mean one)."""
    return near if near is not None else max(1, math.floor(0.85 * hi))


def _largest_meeting_near(stats_fn: Callable[[int], WindowStats], target: float, hi: int,
                          near: int) -> tuple[int, WindowStats | None]:
    """:func:`_largest_meeting`'s answer (the largest n in [0, hi] with loss(n) ≤ target,
    loss non-decreasing in n) by :func:`boundary_near` from a guess ``near``, for a
    ``stats_fn`` whose value at n does not depend on what was asked before (no warm
    starts). The bisection from [0, hi] asks ~log2(hi) N, the first at ``hi`` (where an
    abort fixed point runs longest); from a guess a few percent off this asks ~4-6."""
    if hi <= 0:
        return 0, None
    seen: dict[int, WindowStats] = {}

    def share(n: int) -> float:
        if n not in seen:
            seen[n] = stats_fn(n)
        return seen[n].loss_fraction

    first = min(max(near, 1), hi)
    if first > 1 and target < _FAR_ABOVE <= share(first):
        # Half the calls refused at the guess (85 % of the mean ceiling): a share the
        # load hardly moves (calls past the allowance, a session overfilling a window
        # alone). One session next: no N meets the target when it misses (hunt-1052
        # walked 16, 15, 11, 1 at ~0.83 each), else the two bracket the answer.
        if share(1) > target:
            return 0, None
        n = boundary_near(share, target, 1, first, None,
                          {k: v.loss_fraction for k, v in seen.items()})
        return n, seen[n]
    n = boundary_near(share, target, 0, hi + 1, near)
    return n, (seen[n] if n > 0 else None)


# A first guess's share at or past this is far from any target: the search asks N = 1 next.
_FAR_ABOVE = 0.5
# Shares under this fraction of the level are round-off to boundary_near (no line).
_ROUND_OFF = 1e-6


def boundary_near(share: Callable[[int], float], level: float, good: int, bad: int,
                  near: int | None = None, known: Mapping[int, float] | None = None
                  ) -> int:
    """Largest n in [good, bad) with ``share(n) ≤ level``, ``share`` non-decreasing in n
    and ``share(good) ≤ level < share(bad)`` (or ``good`` 0 and ``bad`` one past the
    range: never asked): the bisection's answer from a guess ``near`` (default: where a
    line through the logs of the two known shares nearest the bracket crosses the
    level, else the middle); ``known``: shares already computed.

    Near a ceiling a share grows about exponentially in n: each next n is where the
    straight line through two shares' logs crosses the level — the bracket's ends once
    both have a share in (0, 1), else the last two asked, a step at most 4× theirs —,
    steps of 5% from ``near`` while no such line is known, and bisection when two
    guesses in a row left more than half of a bracket."""
    vals: dict[int, float] = dict(known or {})
    top = bad - 1
    # Shares this far under the level are round-off, not a slope's: chat-assistant's RPM
    # bucket reads 1.3e-14 to 3.2e-11 from 898 to 1,045 sessions in no order, and lines
    # through them crept up a session or two a look (38 looks; the bisection's 11).
    floor = level * _ROUND_OFF

    def logged(n: int) -> bool:
        return n in vals and floor < vals[n] < 1.0

    def line(a: int, b: int) -> int | None:
        """Where the line through the logs of a's and b's shares meets the level (None
        where the share falls from a to b: no slope to follow)."""
        sa, sb = vals[a], vals[b]
        if (sb - sa) * (b - a) < 0.0:
            return None
        slope = math.log(sb / sa) if sa != sb and level > 0 else 0.0
        y = a + (b - a) * math.log(level / sa) / slope if slope != 0.0 else math.nan
        return math.floor(y) if math.isfinite(y) else None

    if bad - good <= 1:
        return good
    if near is None:
        # The line through the two known shares nearest the bracket (its ends when both
        # have one; else those past an end: the carried-retry search asks again at a
        # lower level, below every share known so far).
        nearest = sorted((n for n in vals if logged(n)),
                         key=lambda n: min(abs(n - good), abs(n - bad)))
        near = line(nearest[0], nearest[1]) if len(nearest) >= 2 else None
    x = (good + bad) // 2 if near is None else near
    x = min(max(x, good + 1), top)
    step = max(1, round(0.05 * x))
    asked: list[int] = []
    slow = 0
    while bad - good > 1:
        width = bad - good
        if x not in vals:
            vals[x] = share(x)
        if vals[x] <= level:
            good = x
        else:
            bad = x
        asked.append(x)
        if bad - good <= 1:
            break
        bracket = good in vals and bad in vals
        slow = slow + 1 if bracket and 2 * (bad - good) > width else 0
        ends = bracket and logged(good) and logged(bad)
        pair = (good, bad) if ends else tuple(n for n in asked if logged(n))[-2:]
        y = line(*pair) if len(pair) == 2 and slow < 2 else None
        if slow >= 2:
            x, slow = (good + bad) // 2, 0
        elif y is not None:
            if not ends:  # beyond both: no further than 4× their distance from x
                reach = 4 * abs(pair[1] - pair[0])
                y = min(max(y, x - reach), x + reach)
            x = y
        else:
            y = x + step if x == good else x - step
            step *= 2
            # A step out of the bracket: the middle, not the session next to its end
            # (the storms' rough search asked 13,781 after 13,780) — but a step up past
            # an end never asked (one past the range) asks the range's top.
            x = y if good < y < bad or (y >= bad and bad not in vals) else (good + bad) // 2
        x = min(max(x, good + 1), bad - 1)
    return good


# Above the mean ceiling only sessions whose pause is at least this share of their cycle
# (or paced by a cadence): their refused turns do not bring them back much sooner.
_PAUSED = 0.4


def constraint_ceiling(wl: Workload, c: Constraint, cycle_s: float, target: float,
                       sessions: int | None = None,
                       min_cycle_s: float | None = None,
                       near: int | None = None) -> ConstraintResult:
    """Mean-value and burst-aware ceilings of one constraint (see module docstring).

    The target is a share of *all* attempts (the simulated search's definition): a quota
    that sees one call in five may turn away five times the target of its own calls
    (:meth:`Workload.attempt_share`); its reported 429 fractions are shares of all
    attempts too. Quotas that refuse at the same N add up (:func:`joint_ceiling`).
    """
    share = max(wl.attempt_share(c), 1e-12)
    v = wl.units_per_turn(c)
    per_session_per_s = v / cycle_s
    mean_ceiling = _mean_ceiling(wl, c, cycle_s)
    cap = _cap(mean_ceiling)
    model = constraint_model(wl, c, cycle_s, min_cycle_s)
    if c.enforcement == "token_bucket":
        window = allowance = None
        depth: float | None = c.depth
    else:
        window, allowance, depth = c.window_s, c.allowance, None
    largest = max((batch_units_upper(b, c.costs) for _, b in _event_mix(wl, c)), default=0.0)
    limit_units = c.depth if c.enforcement == "token_bucket" else c.allowance
    # One launch alone can exceed the allowance (a 3-call fan-out against 2 per second):
    # those calls are always (partly) rejected; the stop-loss still says how many.
    one_event_exceeds = largest > limit_units
    stats_fn = model.stats
    # A model may know a cheaper way to the same bisection (e.g. a bracket from bounds).
    search = getattr(model, "largest_meeting", None)
    own = own_target(target, share, retried_attempts(wl, model))
    session = wl.profile.session
    # A bucket's Lundberg bound is 1 past the mean rate; its level law is not.
    lossy = c.enforcement != "token_bucket" or getattr(model, "chain", None) is not None
    if (wl.profile.retry.max_retries == 0 and lossy and math.isfinite(mean_ceiling)
            and (session.mode == "cadence" or session.pause.mean >= _PAUSED * cycle_s)):
        # Without retries a refused call is simply lost: past the mean ceiling the share
        # refused grows from 0 as ~1 − 1/ρ, so a high target is met above it — up to
        # the simulated search's own cap, mean/(1 − target) + 1 (whatif.ceiling). Only
        # where the pause sets the pace: a session whose refused turn ends at once and
        # whose short think time brings it straight back spins on a full window, a rate
        # the stop-loss at the unthrottled cycle does not see (hunt-rpm-221, 5 s think
        # in a 15 s cycle: 118 vs simulated 114 [114–115] with it).
        cap = max(cap, min(math.floor(mean_ceiling / (1.0 - min(own, 0.5))) + 1, 2 * cap + 1))
    if search is None:
        burst, at = _largest_meeting(stats_fn, own, cap)
    elif near is not None and getattr(model, "searches_near", False):
        burst, at = search(own, cap, near=near)  # a guess of the answer (the sweep's)
    else:
        burst, at = search(own, cap)
    _remember(wl, c, cycle_s, min_cycle_s, model)
    at = of_all_attempts(at, share)
    at_n = of_all_attempts(stats_fn(sessions), share) if sessions is not None else None
    util = sessions * per_session_per_s / c.rate_per_s if sessions is not None else None
    return ConstraintResult(
        quota=c.quota, dimension=c.dim, unit=c.unit, limit=c.limit,
        enforcement=c.enforcement, window_s=window, allowance_per_window=allowance,
        bucket_depth=depth, units_per_turn=v,
        units_per_minute_per_session=per_session_per_s * 60.0,
        mean_ceiling=mean_ceiling, burst_ceiling=burst,
        method=at.method if at else getattr(model, "method_at", lambda k: stats_fn(k).method)(1),
        at_burst_ceiling=at,
        at_sessions=at_n, utilisation_at_sessions=util, one_event_exceeds=one_event_exceeds,
    )


# The models the ceiling searches built, by (constraint, cycle): joint_ceiling asks the
# same N again (its pmfs are cached there). Each entry holds its workload and constraint,
# so that their ids name them while it lasts; a few at a time.
_SEARCHED: dict[tuple[int, int, float, float | None], tuple[Workload, Constraint, Any]] = {}


def _remember(wl: Workload, c: Constraint, cycle_s: float, min_cycle_s: float | None,
              model: Any) -> None:
    if len(_SEARCHED) >= 32:
        _SEARCHED.clear()
    _SEARCHED[(id(wl), id(c), cycle_s, min_cycle_s)] = (wl, c, model)


def _searched(wl: Workload, c: Constraint, cycle_s: float, min_cycle_s: float | None
              ) -> Any:
    """The model :func:`constraint_ceiling` searched for ``c`` at this cycle, else a new
    one."""
    kept = _kept(wl, c, cycle_s, min_cycle_s)
    return kept if kept is not None else constraint_model(wl, c, cycle_s, min_cycle_s)


def _kept(wl: Workload, c: Constraint, cycle_s: float, min_cycle_s: float | None) -> Any:
    """The model :func:`constraint_ceiling` searched for ``c`` at this cycle, if it is
    still kept, else None. Its storm chains (~50-120 ms each at thousands of sessions)
    are cached on it: the metastability note asks the same ones."""
    hit = _SEARCHED.get((id(wl), id(c), cycle_s, min_cycle_s))
    return hit[2] if hit is not None and hit[0] is wl and hit[1] is c else None


def _mean_ceiling(wl: Workload, c: Constraint, cycle_s: float) -> float:
    """Sessions whose mean load fills constraint ``c`` (cycle ``cycle_s`` seconds)."""
    per_session_per_s = wl.units_per_turn(c) / cycle_s
    return c.rate_per_s / per_session_per_s if per_session_per_s > 0 else math.inf


def _cap(mean_ceiling: float) -> int:
    """The burst-aware search's upper end (before the no-retry paused case's raise)."""
    return math.floor(mean_ceiling + 1e-9) if math.isfinite(mean_ceiling) else 1_000_000


def _clears(wl: Workload, c: Constraint, cyc: CycleTime, target: float, n: int) -> bool:
    """True when constraint ``c``'s burst-aware ceiling is surely above ``n``: its 429
    share a little above ``n`` (1% and a session, past the 0.2% the searches stop short
    by) is at most half the share it may refuse. A ceiling far above the smallest one
    plays no part in :func:`joint_ceiling`, so one evaluation at a small N replaces its
    search (a carried-retry search near thousands of sessions costs ~10 Lindley solves)."""
    probe = math.ceil(n * 1.01) + 1
    if probe > _cap(_mean_ceiling(wl, c, cyc.cycle_s)):
        return False
    model = constraint_model(wl, c, cyc.cycle_s, cyc.min_cycle_s)
    own = own_target(target, max(wl.attempt_share(c), 1e-12), retried_attempts(wl, model))
    return model.stats(probe).loss_fraction <= 0.5 * own


def own_target(target: float, share: float, retried: bool) -> float:
    """The share of its own attempts a constraint seeing ``share`` of all calls may refuse
    for :func:`of_all_attempts` to stay within ``target``: ``t/s`` without retries; with
    them its refused calls come back as more attempts (``T = 1/(1 − A)`` at most), and
    ``A·s·T/(s·T + 1 − s) ≤ t`` is ``A ≤ t/(s + t·(1 − s))``."""
    if share >= 1.0:
        return target
    own = target / (share + target * (1.0 - share)) if retried else target / share
    return min(own, 0.999)


def retried_attempts(wl: Workload, model: Any) -> bool:
    """True when ``model``'s refused calls come back as more attempts it reports (a
    client that retries; the Lundberg bound reports no failures, so no retries)."""
    return (wl.profile.retry.max_retries > 0
            and not (isinstance(model, _BucketModel) and model.chain is None))


@overload
def of_all_attempts(st: WindowStats, share: float) -> WindowStats: ...
@overload
def of_all_attempts(st: None, share: float) -> None: ...
def of_all_attempts(st: WindowStats | None, share: float) -> WindowStats | None:
    """``st``'s 429 fractions as shares of all attempts (the constraint's calls are
    ``share`` of all calls).

    Its retries are attempts too: with ``A`` of its attempts refused and ``F`` of its
    calls failing, a call makes ``T = (1 − F)/(1 − A)`` attempts (``T = 1 + A·T − F``; 1
    without retries, where ``F = A``), so its attempts are ``s·T/(s·T + 1 − s)`` of all
    (the others' retries are the others' concern). Calls (``call_*``) stay shares of
    calls."""
    if st is None or share >= 1.0:
        return st
    a, f = st.loss_fraction, st.call_failure_fraction
    per_call = 1.0 if f is None or a >= 1.0 else max(1.0, (1.0 - f) / (1.0 - a))
    of_all = share * per_call / (share * per_call + 1.0 - share)
    return dataclasses.replace(
        st, loss_fraction=st.loss_fraction * of_all,
        call_429_fraction=None if st.call_429_fraction is None
        else st.call_429_fraction * share,
        call_failure_fraction=None if st.call_failure_fraction is None
        else st.call_failure_fraction * share)


def joint_ceiling(results: list[ConstraintResult],
                  stats: list[Callable[[int], WindowStats]], target: float,
                  rho: Callable[[int, int], float] | None = None,
                  ignited: Callable[[int], float] | None = None,
                  sites: Callable[[int, int], dict[int, float] | None] | None = None
                  ) -> int:
    """Largest N, up to the smallest per-constraint ceiling, at which the quotas' 429
    shares of all attempts (``stats``, aligned with ``results``) stay within ``target``
    together: different quotas meter different attempts (other models, deployments) and
    add up, while each alone was held to the whole target; the dimensions of one quota
    metered over the same windows (its RPM and TPM per 10 s) overflow in the same bursts
    and count by the largest, while those over different windows or counters add
    (:func:`same_bursts`). With ``rho`` (the correlation of two fixed-window dimensions'
    window counts, by index) those of one quota over one window add but for the 429s
    they share (:func:`_shared_429s`); so do one quota's token buckets (``rho`` of their
    counts over the depth's seconds of refill, their refusal shares as the tail events:
    ITPM drained by reads, OTPM by writes refuse apart — tests/data/itpm-otpm-bucket.yaml,
    where the larger alone said 31 against simulated 27 [26–27]). Only constraints
    within 1.5× of the smallest ceiling take part, or that refuse 2% of the target at it
    (a call charged more than an allowance is refused on every attempt at any N:
    hunt-028's OTPM, 0.6% of attempts where its own ceiling is twice the ITPM's).
    ``ignited``: the share of all attempts turned away by storms one dimension's
    refusals start in another (a counted request log's, that token spells ignite:
    :func:`_joint`), added to the groups' shares — attempts neither refuses alone — and
    searched even for one group. ``sites`` (by index and N: how the dimension's refusals
    fall over the call sites, :meth:`ClumpWindowModel.site_split`; None where it cannot
    say): one quota's token logs over one length share their refusals call site by call
    site — at each site the larger, added over the sites (:func:`_by_sites`)."""
    low = min(r.burst_ceiling for r in results)
    near = [(same_bursts(r.quota, r.enforcement, r.window_s), i, f)
            for i, (r, f) in enumerate(zip(results, stats, strict=True))
            if r.burst_ceiling <= 1.5 * low + 1
            or (rho is not None and low > 0 and f(low).loss_fraction >= 0.02 * target)]
    if rho is not None:
        # One quota's sliding logs over different lengths (RPM per 5 s, TPM per 10 s)
        # meter the same calls: a burst that fills the shorter fills most of the longer,
        # so they form one group whose 429s are split as a fixed window's are, with the
        # nested windows' correlation (``_nested``). The group has its own kind: a None
        # window alone would also match a token bucket's dimensions (no window at all).
        lengths: dict[str, set[float | None]] = {}
        for (q, kind, w), _, _ in near:
            if kind == "sliding_window":
                lengths.setdefault(q, set()).add(w)
        near = [((k[0], "nested_sliding", None)
                 if k[1] == "sliding_window" and len(lengths[k[0]]) > 1
                 else k, i, f) for k, i, f in near]
    groups: dict[tuple[str, str, float | None], int] = {}
    for quota, _, _ in near:
        groups[quota] = groups.get(quota, 0) + 1
    # One group counts by its largest share (the smallest ceiling) unless ``rho`` splits
    # a fixed-window group's 429s (or a group of sliding logs of several lengths), or
    # its token logs add their refusals call site by call site (``sites``).
    split = rho is not None and any(
        m > 1 and k[1] in SPLIT_KINDS for k, m in groups.items())
    # (Sliding groups of two or more: whether two of them are token logs with a split is
    # known only at an N; the search then bisects, as for a split group.)
    by_sites = sites is not None and any(
        m > 1 and k[1] == "sliding_window" for k, m in groups.items())
    split = split or by_sites
    if low <= 0 or (len(groups) < 2 and not split and ignited is None):
        return low

    def together(n: int) -> WindowStats:
        by_quota: dict[tuple[str, str, float | None], list[tuple[int, WindowStats]]] = {}
        for quota, i, f in near:
            by_quota.setdefault(quota, []).append((i, f(n)))
        total = []
        for quota, sts in by_quota.items():
            sts.sort(key=lambda x: -x[1].loss_fraction)
            top_i, top = sts[0]
            share = top.loss_fraction
            if by_sites and quota[1] == "sliding_window" and len(sts) > 1:
                # The token logs that can say how their refusals fall over the calls add
                # site by site; a request log among them counts by the larger as before.
                splits = [(st.loss_fraction, sites(i, n) if sites else None)
                          for i, st in sts]
                known = [(x, sp) for x, sp in splits if sp is not None]
                if len(known) > 1:
                    got = _by_sites(known)
                    rest = [x for x, sp in splits if sp is None]
                    total.append(max([got or 0.0, *rest]))
                    continue
            for i, st in sts[1:]:
                if rho is None or quota[1] not in SPLIT_KINDS:
                    shared = 1.0
                elif quota[1] == "fixed_window":
                    shared = _shared_429s(rho(top_i, i), top.window_exceedance,
                                          st.window_exceedance)
                elif quota[1] == "token_bucket":
                    # A bucket's 429s are its tail: the refusal shares are the events.
                    shared = _shared_429s(rho(top_i, i), top.loss_fraction, st.loss_fraction)
                else:
                    shared = _nested(rho(top_i, i), results[top_i].window_s,
                                     results[i].window_s, top, st)
                share += st.loss_fraction * (1.0 - shared)
            total.append(share)
        if ignited is not None:
            total.append(ignited(n))
        return WindowStats(n, 0.0, 0.0, math.fsum(total), "quotas together")

    if ignited is not None:
        return _log_secant(together, target * (1.0 + 1e-9), low)
    if not split:
        return _largest_meeting(together, target * (1.0 + 1e-9), low)[0]
    # Shared 429s keep the joint ceiling within a few sessions of the smallest one: down
    # from it in doubling steps, then bisection (each step evaluates every dimension).
    level = target * (1.0 + 1e-9)
    if together(low).loss_fraction <= level:
        return low
    bad, step = low, 1
    while True:
        good = max(bad - step, 0)
        if good == 0 or together(good).loss_fraction <= level:
            break
        bad, step = good, 2 * step
    while bad - good > 1:
        mid = (good + bad) // 2
        if together(mid).loss_fraction <= level:
            good = mid
        else:
            bad = mid
    return good


def _log_secant(stats_fn: Callable[[int], WindowStats], level: float, hi: int) -> int:
    """Largest n ≤ ``hi`` whose share is within ``level``, for a share that grows about
    exponentially in n (storms): each guess where the straight line through the
    bracket's log shares crosses the level (bisection when an end has no share), a
    bracket of one session the answer. Every evaluation here costs every dimension's
    model at a new N (token spells, storm chains): ~4 instead of bisection's ~8."""
    seen: dict[int, float] = {}

    def share(n: int) -> float:
        if n not in seen:
            seen[n] = stats_fn(n).loss_fraction
        return seen[n]

    if hi <= 0 or share(hi) <= level:
        return max(hi, 0)
    good, bad = 0, hi
    x = max(1, math.floor(0.9 * hi))
    while bad - good > 1:
        x = min(max(x, good + 1), bad - 1)
        if share(x) <= level:
            good = x
        else:
            bad = x
        lo_s, hi_s = seen.get(good, 0.0), seen[bad]
        if good > 0 and 0.0 < lo_s < level < hi_s:
            t = math.log(level / lo_s) / math.log(hi_s / lo_s)
            x = good + math.floor(t * (bad - good))
            x = x + 1 if x <= good else x
        else:
            x = (good + bad) // 2
    return good


# Counter kinds whose dimensions of one quota add their 429s but for those they share
# (:func:`joint_ceiling`, with the counts' correlation).
SPLIT_KINDS = ("fixed_window", "nested_sliding", "token_bucket")


def _nested(rho: float, w_top: float | None, w_other: float | None, top: WindowStats,
            other: WindowStats) -> float:
    """Share of a sliding log's 429s that another log of its quota (over another length)
    refuses too: :func:`_shared_429s` with the correlation of the counts an arrival sees
    over the last ``w₁`` and ``w₂`` seconds — the same-length correlation ``rho`` times
    ``√(w₁/w₂)`` (the shorter window's count is part of the longer's: a Poisson count's
    covariance over nested windows is the shorter one's variance). Equal lengths: one
    log's bursts are the other's (1). hunt-116 (RPM per 5 s, TPM per 10 s, one call per
    turn, no retries): the engine refuses 0.55 % of attempts on RPM alone and 0.55 % on
    TPM alone at 224 sessions, 0.87 % with both (40 replications), where adding them
    says 1.0 %."""
    if w_top is None or w_other is None or w_top == w_other:
        return 1.0
    nested = rho * math.sqrt(min(w_top, w_other) / max(w_top, w_other))
    return _shared_429s(nested, top.window_exceedance, other.window_exceedance)


def _shared_429s(rho: float, p_top: float, p_other: float) -> float:
    """Share of a dimension's 429s in windows the other dimension of its quota overflows
    too, ``P(top over | other over)``, from the two window counts' correlation ``rho``
    and exceedances: the counts as a Gaussian pair (``P(Z₁ > a, Z₂ > b)`` by quadrature
    of ``φ(x)·Φ((ρx − b)/√(1 − ρ²))`` over ``x > a``). RPM and TPM of the same calls
    (ρ ≈ 0.97): ~0.84, the engine's 0.87 at 201 sessions of sweep/twobind.yaml (RPM
    alone 0.76%, TPM alone 0.90%, together 1.00%)."""
    from capacity.model.dist import _ndtr as ndtr

    if p_other <= 0.0 or p_top <= 0.0:
        return 0.0
    if rho >= 1.0 - 1e-9:
        return min(1.0, p_top / p_other)
    a = _normal_isf(p_top)
    b = _normal_isf(p_other)
    x = a + np.linspace(0.0, 12.0, 401)
    dens = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    both = dens * ndtr((rho * x - b) / math.sqrt(1.0 - rho * rho))
    dx = x[1] - x[0]
    joint = float(dx * (both.sum() - 0.5 * (both[0] + both[-1])))
    return min(1.0, max(0.0, joint / p_other))


def _normal_isf(p: float) -> float:
    """``z`` with ``P(Z > z) = p`` (bisection on Φ: a few dozen steps)."""
    from capacity.model.dist import _ndtr as ndtr

    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(ndtr(-mid)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _by_sites(parts: Sequence[tuple[float, dict[int, float] | None]]) -> float | None:
    """One quota's token logs over one length together: at each call site the largest of
    their refusal shares there (``parts``: each log's share of all attempts and how its
    refusals fall over the sites), added over the sites; None if a log cannot say.

    A call both logs would refuse is refused in the same bursts whichever refuses it,
    while calls only one log finds too large add: over the four profiles of ``python
    benchmarks/session51_probes.py sites`` this rule on the engine's own shares is within
    0.25 points of the engine with both limits, where the larger alone is 0.5–1.4 points
    under it (hunt-2024: 3.97 % against 3.98 %, the larger 2.60 %)."""
    if any(split is None for _, split in parts):
        return None
    keys = set().union(*(split for _, split in parts if split is not None))
    return math.fsum(max(share * split.get(k, 0.0) for share, split in parts
                         if split is not None) for k in keys)


def same_bursts(quota: str, enforcement: str, window_s: float | None
                ) -> tuple[str, str, float | None]:
    """Which constraints overflow in the same bursts, so that their 429s count by the
    largest instead of adding: one quota's dimensions metered by one counter kind over
    one window length (RPM and TPM per 10 s windows: a window full of calls is full of
    tokens; over fixed windows :func:`joint_ceiling` adds the 429s they do not share,
    :func:`_shared_429s`). A dimension over another window (ITPM per 5 s, OTPM per 30 s) or counter
    refuses in other windows: its 429s add (at 146 sessions of
    tests/data/itpm-otpm-windows.yaml the engine turns away 0.65% of attempts on ITPM,
    0.33% on OTPM, 0.98% in all)."""
    return (quota, enforcement, window_s)


def _joint(wl: Workload, cyc: CycleTime, results: list[ConstraintResult],
           target: float, active: list[Constraint] | None = None) -> int:
    """:func:`joint_ceiling` of a profile without routes or populations (``active``: the
    constraints of ``results``, by default every one that sees load)."""
    if active is None:
        active = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    models: dict[int, Any] = {}

    def model(i: int) -> Any:
        if i not in models:
            models[i] = _searched(wl, active[i], cyc.cycle_s, cyc.min_cycle_s)
        return models[i]

    def rho(i: int, j: int) -> float:
        from capacity.analytic.clumped import window_correlation  # it imports this module

        return window_correlation(wl, active[i], active[j], cyc.cycle_s)

    def of_all(i: int) -> Callable[[int], WindowStats]:
        # Built when first asked: with one quota near the smallest ceiling, never.
        share = wl.attempt_share(active[i])

        def stats(n: int) -> WindowStats:
            st: WindowStats = model(i).stats(n)
            return of_all_attempts(st, share)
        return stats

    igniters = _igniters(active, results, model)

    def ignited(n: int) -> float:
        # Shares of the request log's own attempts, as shares of all (its calls' share,
        # so never more): one of its own under 0.1% of the target counts as 0 — no new
        # storm chain at a guess far below the boundary (ClumpWindowModel.ignited_by).
        return math.fsum(
            of_all_attempts(WindowStats(n, 0.0, 0.0, model(i).inner.ignited_by(
                model(j).inner, rho(i, j), n, 1e-3 * target), "ignited"),
                wl.attempt_share(active[i])
            ).loss_fraction for i, js in igniters.items() for j in js)

    def sites(i: int, n: int) -> dict[int, float] | None:
        # Token logs only: a request log turns calls away by their count, not charge.
        from capacity.analytic.window import ClumpWindowModel  # it imports this module

        inner = getattr(model(i), "inner", None)
        if active[i].unit == "requests" or not isinstance(inner, ClumpWindowModel):
            return None
        return inner.site_split(n)

    return joint_ceiling(results, [of_all(i) for i in range(len(active))], target, rho,
                         ignited if igniters else None, sites)


def _igniters(active: list[Constraint], results: list[ConstraintResult],
              model: Callable[[int], Any]) -> dict[int, list[int]]:
    """Per counted request log that storms (sliding, refusals logged, retries that meet
    it full: ``ClumpWindowModel.storms``), its quota's sliding token logs whose refusals
    it logs
    (:meth:`ClumpWindowModel.ignited_by`): a token spell that turns away a few attempts
    fills the request log and starts its storm. hunt-171 (RPM + TPM over one
    30 s log): each alone refuses 0.4% / 0.8% of attempts at 90 sessions in the engine,
    together 3.9%, and every storm began in a TPM spell. A token log of another length
    logs its refusals there all the same (their counts' correlation, for unequal windows
    too, places the request count at a spell's start):
    tests/data/tpm-spells-start-rpm-storms-31s.yaml (TPM per 31 s) said 103 against the
    simulated 92 [90–94] while only equal lengths took part. Only pairs whose ceilings
    are within 1.5× of each other (:func:`joint_ceiling`'s near ones). Backed-off
    retries (the retry-after ignored) that come back within the window storm there as
    honoured ones do; while the token log's own backoff retries were each read as a
    fresh attempt (its refusals over-counted), the ignition said 89 for
    tests/data/tpm-spells-start-rpm-storms.yaml with backoff (simulated 93 [91–95]) and
    was left out; with the joint chain of those retries
    (:meth:`ClumpWindowModel._held_joint`) it says 91, hunt-244 150 (157 [153–157]),
    hunt-518 181 (175 [169–180])."""
    low = min((r.burst_ceiling for r in results), default=0)
    near = [i for i, r in enumerate(results) if r.burst_ceiling <= 1.5 * low + 1]
    out: dict[int, list[int]] = {}
    for i in near:
        c = active[i]
        if c.enforcement != "sliding_window" or c.unit != "requests":
            continue
        others = [j for j in near if j != i and active[j].quota == c.quota
                  and active[j].unit != "requests"
                  and active[j].enforcement == "sliding_window"]
        if not others:
            continue
        retry = model(i).inner.retry
        if not retry.retries:
            # No retries, no retry storm to start: a spell's refusals are fresh calls the
            # log counts once (tests/data/nested-sliding-rpm-tpm.yaml, RPM per 5 s beside
            # TPM per 10 s, no retries: ignited, 202 against the simulated 223 [219–230];
            # 219 without).
            continue
        if model(i).inner.storms:
            out[i] = others
    return out


@dataclass(frozen=True)
class PauseSensitivity:
    """How the ceilings move across the think-time/cadence range."""

    pause: str
    low_s: float
    high_s: float
    mean_ceiling_low: float
    mean_ceiling_high: float
    burst_ceiling_low: int
    burst_ceiling_high: int
    bounded: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean(dict(self.__dict__))


def ceiling_targets(profile: Profile, target: float) -> dict[str, Any]:
    """The targets a :class:`CeilingResult` reports: the 429 share searched for (a
    fraction) and the profile's p95 turn latency (seconds, or None)."""
    return {"max_429_fraction": target,
            "p95_turn_latency_s": profile.targets.p95_turn_latency}


LATENCY_BINDING = "targets.p95_turn_latency"
"""The binding's name when the p95 turn-latency target, not a quota, stops the next
session (the key to relax, as ``quota.dimension`` names a quota's)."""


def binding_constraint(name: str) -> dict[str, str | None]:
    """The JSON ``binding_constraint`` of a binding's name: ``{quota, dimension}``; the
    latency target's is ``{"quota": null, "dimension": "p95_turn_latency"}`` (no quota)."""
    quota, _, dim = name.rpartition(".")
    return {"quota": None if name == LATENCY_BINDING else quota, "dimension": dim}


class Deferred:
    """A field's value computed on first read, by ``fn`` (no arguments): see
    :class:`_DeferredField`."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], PauseSensitivity | None]) -> None:
        self.fn = fn


class _DeferredField:
    """A frozen dataclass field that may be given a :class:`Deferred` and computes it on
    its first read, once. The pause sensitivity is two more ceiling searches (at the think
    time's or cadence's two ends), as long as the answer itself or longer; only the
    ``ceiling`` report and its JSON show it, so ``check``, ``size``, ``compare``,
    ``sweep``, the ``sensitivity`` tornado and a notebook reading N* do not pay for it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_deferred_" + name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _DeferredField: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> PauseSensitivity | None: ...

    def __get__(self, obj: object | None, objtype: type | None = None
                ) -> PauseSensitivity | _DeferredField | None:
        if obj is None:
            # No default (dataclasses asks the class for one): a required field.
            raise AttributeError(self.slot)
        got = obj.__dict__[self.slot]
        if isinstance(got, Deferred):
            got = obj.__dict__[self.slot] = got.fn()
        out: PauseSensitivity | None = got
        return out

    def __set__(self, obj: object, value: PauseSensitivity | Deferred | None) -> None:
        obj.__dict__[self.slot] = value

    def raw(self, obj: object) -> PauseSensitivity | Deferred | None:
        """The stored value, a :class:`Deferred` not yet computed left as it is."""
        got: PauseSensitivity | Deferred | None = obj.__dict__[self.slot]
        return got


def spells_count(spells: dict[str, Any], n: int | None = None) -> str:
    """``n`` (default the spells' own sessions) as a count of sessions, or with held
    populations (``spells["held"]``) as N beside the mix's sessions."""
    n = spells["sessions"] if n is None else n
    held = int(spells.get("held", 0))
    if held:
        return f"N = {n - held:,} ({n:,} sessions with the held ones)"
    return f"{n:,} sessions"


def spells_sentence(spells: dict[str, Any], target: float) -> str:
    """What holds a priority fleet to its head's full spells, in words
    (:meth:`capacity.analytic.fleet.HeadSpells.figures`; ``target``: the 429 share)."""
    s = spells
    most = f", most on {s['rest_binding']}" if s.get("rest_binding") else ""
    return (f"{s['head']}'s {s['log']} log (sliding {format_duration(s['window_s'])}) turns "
            f"every call away while full, and the route's calls then all go on to the rest "
            f"of the fleet: at {spells_count(s)} {s['full_share']:.1%} of {s['head']}'s "
            f"arrivals find it full, and the rest alone refuses "
            f"{s['rest_share']:.1%} of attempts{most}; the spells that outlast the rest's "
            f"{format_duration(s['memory_s'])} memory ({s['spell_factor']:.0%} of the full "
            f"time) turn away about {s['share']:.1%} of attempts, holding the fleet to "
            f"{spells_count(s)} at ≤{target:.1%}")


@dataclass(frozen=True)
class CeilingResult:
    """Analytic answer for a profile: per-constraint ceilings and the saturation point."""

    profile: str
    targets: dict[str, Any]
    cycle: CycleTime
    calls_per_turn: float
    constraints: tuple[ConstraintResult, ...]
    mean_ceiling: float
    burst_ceiling: int
    binding: ConstraintResult
    # How the ceilings move across the pause's range; computed on first read (None: a
    # fixed pause).
    sensitivity: _DeferredField = _DeferredField()
    sessions: int | None = None
    simulated: SaturationResult | None = None
    method: str = "analytic"
    notes: tuple[str, ...] = ()
    version: str = __version__
    # With populations: what N counts (one line) and each population's cycle
    # (capacity.analytic.populations.population_info); None without.
    populations: dict[str, Any] | None = None
    # The p95 turn-latency target is out of reach at any N (the unthrottled turn misses
    # it): the burst-aware ceiling is 0 whatever the quotas carry.
    latency_bound: bool = False
    # Client-side pacing (capacity.analytic.pacing): the p95 target with the pacer's queue
    # sets N, and one sentence saying what sets it (None: not paced, or the quota as usual).
    latency_binds: bool = False
    pacing_summary: str | None = None
    # A priority fleet held by its head's full spells (capacity.analytic.fleet.HeadSpells
    # .figures at the ceiling, and at ``sessions`` under "at_sessions"); None: not held.
    spells: dict[str, Any] | None = None

    def replaced(self, **changes: Any) -> CeilingResult:
        """:func:`dataclasses.replace`, a sensitivity not yet computed left so."""
        field = type(self).__dict__["sensitivity"]
        changes.setdefault("sensitivity", field.raw(self))
        return dataclasses.replace(self, **changes)

    def resolved(self) -> CeilingResult:
        """This result with its sensitivity computed: a report that prints it asks here,
        where a user error raised computing it is still the command's, not the
        renderer's."""
        _ = self.sensitivity
        return self

    @property
    def latency_limits(self) -> bool:
        """Whether the p95 turn-latency target, not a quota, stops the next session: the
        analytic answer's unreachable (or pacer-held) target, or the simulated search's
        N* + 1 missing only it."""
        sim = self.simulated
        if sim is None:
            return self.latency_bound or self.latency_binds
        return tuple(sim.binding) == ("p95_turn_latency",)

    @property
    def binding_name(self) -> str:
        """What binds: a quota's ``quota.dimension``, or :data:`LATENCY_BINDING`."""
        return LATENCY_BINDING if self.latency_limits else self.binding.name

    @property
    def saturation_point(self) -> int:
        """Sessions the quota carries at the targets: the simulated N* when simulated —
        the one searched again two hours on where the first drifted past the target
        (:attr:`settled`) — else the burst-aware ceiling."""
        if self.simulated is not None:
            return int(self.settled if self.settled is not None else self.simulated.n_star)
        return self.burst_ceiling

    @property
    def settled(self) -> int | None:
        """The simulated N* searched again with a warm-up two hours longer, where the
        429 share at the first drifted past the target (:class:`capacity.search.Settling`);
        None otherwise."""
        st = getattr(self.simulated, "settling", None)
        again = None if st is None else st.settled
        return None if again is None else int(again.n_star)

    @property
    def saturation_by(self) -> str:
        """What gave :attr:`saturation_point`, in words."""
        if self.simulated is None:
            return "burst-aware model"
        return "simulated" if self.settled is None else "simulated, searched again two hours on"

    @property
    def napkin_ratio(self) -> float:
        """Mean-value ceiling ÷ burst-aware ceiling (how far the napkin overstates)."""
        return self.mean_ceiling / self.burst_ceiling if self.burst_ceiling > 0 else math.inf

    def summary(self) -> str:
        """One paragraph a planner understands."""
        b = self.binding
        mean_n = math.floor(self.mean_ceiling + 1e-9)
        kind = "sliding " if b.enforcement == "sliding_window" else ""
        where = (f"{format_duration(b.window_s or 0)} {kind}windows of "
                 f"{b.allowance_per_window:,} {b.unit}" if b.enforcement != "token_bucket"
                 else f"a token bucket {b.bucket_depth:,.0f} {b.unit} deep")
        text = (f"The napkin (quota ÷ per-session rate) says {mean_n:,} sessions. "
                f"Enforcement over {where} on {b.name} cuts that to {self.burst_ceiling:,} "
                f"in the burst-aware model at ≤{self.targets['max_429_fraction']:.1%} of "
                "attempts answered 429")
        if self.spells is not None:
            text = (f"The napkin (quota ÷ per-session rate) says {mean_n:,} sessions. "
                    + spells_sentence(self.spells, self.targets["max_429_fraction"]))
            if 0 < self.burst_ceiling < mean_n:
                text += f" ({1 - self.burst_ceiling / mean_n:.0%} fewer)"
            text += "."
        elif self.pacing_summary:
            text = (f"The napkin (quota ÷ per-session rate) says {mean_n:,} sessions. "
                    + self.pacing_summary)
        elif self.latency_bound:  # no quota binds: none could carry even one session
            text = (f"The napkin (quota ÷ per-session rate) says {mean_n:,} sessions, but the "
                    "p95 turn-latency target is out of reach — the turn alone, unthrottled, "
                    f"takes {self.cycle.turn_latency_p95_s:.1f}s at p95 — so no number of "
                    "sessions meets it, whatever the quotas.")
        elif 0 < self.burst_ceiling < mean_n:
            text += (f": {1 - self.burst_ceiling / mean_n:.0%} fewer — the napkin overstates "
                     f"capacity {self.napkin_ratio:.2f}×.")
        elif self.burst_ceiling == 0 and self.populations and (
                b.at_burst_ceiling is not None and b.at_burst_ceiling.sessions == 0):
            text += (f": the held sessions alone already have "
                     f"{b.at_burst_ceiling.loss_fraction:.1%} of attempts answered 429 — no N "
                     "meets the target.")
        elif self.burst_ceiling == 0:
            text += (": not even one session fits — a single launch exceeds the allowance."
                     if b.one_event_exceeds else ": not even one session meets the target.")
        else:
            text += ": bursts cost nothing here; the mean rate is the limit."
        sim = self.simulated
        if sim is not None:
            text += (f" The simulation (closed loop) puts it at {sim.n_star:,} "
                     f"(95% CI {sim.n_lo:,}–{sim.n_hi:,})")
            text += (f": {mean_n / sim.n_star:.2f}× below the napkin." if sim.n_star > 0
                     and sim.n_star < mean_n else ".")
        return text

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON form (see README); non-finite numbers are null."""
        sim = self.simulated.to_dict() if self.simulated is not None else None
        return _clean({
            "version": self.version,
            "profile": self.profile,
            "method": self.method,
            "saturation_point": self.saturation_point,
            "binding_constraint": binding_constraint(self.binding_name),
            "mean_ceiling": self.mean_ceiling,
            "mean_ceiling_sessions": math.floor(self.mean_ceiling + 1e-9)
            if math.isfinite(self.mean_ceiling) else None,
            "burst_ceiling": self.burst_ceiling,
            "latency_bound": self.latency_bound,
            "napkin_ratio": self.napkin_ratio,
            "targets": self.targets,
            "calls_per_turn": self.calls_per_turn,
            "cycle": self.cycle.to_dict(),
            "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
            "sessions": self.sessions,
            "constraints": [c.to_dict() for c in self.constraints],
            "simulated": sim,
            "notes": list(self.notes),
            "summary": self.summary(),
            **({"populations": self.populations} if self.populations else {}),
            **({"spells": self.spells} if self.spells is not None else {}),
        })


def _ceilings(wl: Workload, cyc: CycleTime, target: float,
              sessions: int | None = None) -> list[ConstraintResult]:
    return [constraint_ceiling(wl, c, cyc.cycle_s, target, sessions, cyc.min_cycle_s)
            for c in wl.constraints
            if wl.units_per_turn(c) > 0]


def _pick_binding(results: list[ConstraintResult]) -> ConstraintResult:
    return min(results, key=lambda r: (r.burst_ceiling, r.mean_ceiling))


def analyze(profile: Profile, sessions: int | None = None,
            workload: Workload | None = None) -> CeilingResult:
    """Mean-value and burst-aware ceilings of every constraint of ``profile``.

    Parameters
    ----------
    profile : a validated profile.
    sessions : optionally, evaluate utilisation and 429 fractions at this many sessions.

    Returns
    -------
    CeilingResult : per-constraint results, the binding constraint, the saturation point
        (largest N whose analytic 429 fraction is within ``targets.max_429_fraction``),
        and how the ceilings move across the think-time/cadence range.
    """
    return _outside_the_model(profile, _analyze(profile, sessions, workload))


def _outside_the_model(profile: Profile, result: CeilingResult) -> CeilingResult:
    """What the analytic answer does not model, said beside it (never silently wrong).

    A p95 turn-latency target the unthrottled turn already misses is met by no number of
    sessions: the ceiling is 0. (A reachable one is checked at zero load only: a 429's
    retry waits add to the turns near the ceiling, which the simulated search holds to
    the target.) Client-side pacing turns would-be 429s into waits, which the analytic answer does
    not model.
    """
    notes = list(result.notes)
    target = profile.targets.p95_turn_latency
    p95 = result.cycle.turn_latency_p95_s
    out = result
    if target is not None and p95 > target:
        notes.append(f"No number of sessions meets the p95 turn-latency target of "
                     f"{target:g}s: the turn alone, unthrottled, takes {p95:.1f}s at p95.")
        out = out.replaced(burst_ceiling=0, latency_bound=True)
    if profile.pacing is not None and not (profile.populations or profile.routes):
        # The pacer's queue (capacity.analytic.pacing): waits instead of 429s.
        from capacity.analytic.pacing import paced

        ans = paced(profile, result)
        notes.extend(ans.notes)
        if not out.latency_bound:
            out = out.replaced(burst_ceiling=ans.sessions,
                               latency_bound=ans.latency_bound,
                               latency_binds=ans.latency_binds,
                               pacing_summary=ans.summary or None)
    elif profile.pacing is not None:
        notes.append("Client-side pacing (pacing:) is not in the analytic model for "
                     "populations or routes: calls it holds back wait in its queue instead "
                     "of being refused, so the ceiling is set by that queue's waits and the "
                     f"latency target — {PACING_CHECK}")
    notes.extend(_phase_lock_notes(profile, out))
    notes.extend(_bucket_storm_notes(profile, out))
    return out.replaced(notes=tuple(notes)) if notes != list(result.notes) else out


def _bucket_storm_notes(profile: Profile, result: CeilingResult) -> list[str]:
    """A note for each requests bucket that counts its refusals where retries back off
    without waiting for the retry-after: each refused attempt takes what is left of its
    request, so the retries a backoff later find the bucket empty again and an empty
    spell can grow into a storm that holds, which the level laws do not follow.
    tests/data/bucket-counted-backoff-storm.yaml (one call a turn, 500 RPM as a bucket 5 s
    deep, four backoff retries): 2,421 against a simulated 2,220 [2,220–2,283] (+9.1 %);
    1 s deep with two, 1,826 against 1,669 [1,613–1,700] (+9.4 %), with four +23 %; not
    counting refusals, or with the retry-after waited for, at most +3.7 % at any depth
    from 1 s to 10 s (``python benchmarks/session62_probes.py depths``). Said only where
    something can be refused (no pacer in front, a ceiling not set by the latency
    target), and only of a bucket that binds or nearly does (its own ceiling within
    ``_STORM_NEAR`` of the answer): a storm needs the bucket near its refill."""
    r = profile.retry
    if (r.max_retries <= 0 or r.honour_retry_after or profile.pacing is not None
            or result.latency_bound):
        return []
    near = _STORM_NEAR * max(result.burst_ceiling, 1)
    return [f"On {c.name} a refused attempt is counted (it takes what is left of its "
            "request) and retries back off without waiting for the retry-after: near the "
            "ceiling an empty spell can grow into a retry storm, each retry emptying the "
            "bucket again, which the analytic model does not follow; its answer can be "
            f"optimistic there. {BUCKET_STORM_CHECK}"
            for c in result.constraints
            if c.enforcement == "token_bucket" and c.unit == "requests"
            and c.quota in profile.quotas and profile.quotas[c.quota].rejected_count
            and (c.binding or c.burst_ceiling <= near)]


# The bucket-storm note speaks of buckets whose own burst-aware ceiling is within this
# factor of the answer.
_STORM_NEAR = 1.1


# Below this spread of the cycle over its mean, sessions keep their phases from turn to
# turn. Simulated against the analytic answer: one 3.1 s call a turn, 360 RPM in 30 s
# windows, a 54.3 s think time spread +-5 s (spread 0.05) 321 against 336, +-10 s (0.10)
# 332, +-15 s (0.15) 335; hunt-82 (no retries, a tool loop, fixed TPM windows) 162
# [158-165] against 183 with its fixed think time, 185 with an exponential one.
PHASE_LOCK_SPREAD = 0.2


def _phase_lock_notes(profile: Profile, result: CeilingResult) -> list[str]:
    """A note for each kind of session whose (nearly) constant think time lets refusals
    pull its sessions into step.

    Without retries a refused call fails at once: its 429 comes back after
    ``rejection_latency``, so its session's next turn comes sooner than those of the
    sessions served beside it, and sessions refused together return together; with
    little spread in the cycle nothing scatters them again. With retries the sessions
    refused together wait out their retries together and come back together a think time
    later (hunt-2012 at 330 sessions: four of eight simulated runs settle near 1.4 %
    refused, four at 4-22 %; with an exponential think time none passes 3.2 %,
    ``benchmarks/session58_probes.py lockin``). But a retry's wait also moves its
    session's phase, and a nearly constant cycle keeps the new one: sessions that collide
    can drift apart for good, and the answer is then conservative (hunt-178, one call a
    turn at a 5 s sliding TPM log, five backoff retries, a fixed 160.2 s think time: 62
    against a simulated 94 [86-99]; with an exponential think time 60 against 60
    [57-65]; without retries 74 against 69 [59-77], ``benchmarks/session63_probes.py
    steps``). The analytic model keeps the sessions' phases independent and uniform, so
    its answer can be optimistic there without retries, either way with them
    (docs/models.md, "A fixed think time"). Said
    only where something can be refused (no pacer in front, a ceiling not set by the
    latency target) and, without retries, a refusal is shorter than the turn.
    """
    if profile.pacing is not None or result.latency_bound:
        return []
    retried = profile.retry.max_retries > 0
    if profile.populations:
        from capacity.analytic.populations import view  # it imports this module

        parts = [(p.name, p.profile.session, p.cycle) for p in view(profile).parts]
    else:
        parts = [("", profile.session, result.cycle)]
    notes = []
    for name, s, cyc in parts:
        if (s.mode != "think_time" or cyc.cycle_s <= 0 or (
                not retried and profile.retry.rejection_latency >= cyc.turn_latency_mean_s)):
            continue
        # The cycle's spread: the think time's with the turn latency's, the latter read
        # from its median and p95 (seconds); a cadence keeps turn starts on its own clock.
        turn_sd = max(cyc.turn_latency_p95_s - cyc.turn_latency_p50_s, 0.0) / 1.645
        spread = math.sqrt(s.pause.var + turn_sd**2) / cyc.cycle_s
        if spread >= PHASE_LOCK_SPREAD:
            continue
        who = f" of population {name!r}" if profile.populations else ""
        # With on_exhausted: continue the turn goes on, shorter by the refused call.
        ends = ("ends early" if profile.retry.on_exhausted == "abort_turn"
                else "goes on without the refused call's time")
        # A spread think time after long, steady turns still leaves the cycle steady:
        # say which is nearly constant.
        steady = (f"Think time{who} {s.pause.describe()} is nearly constant"
                  if math.sqrt(s.pause.var) < PHASE_LOCK_SPREAD * max(s.pause.mean, 1e-9)
                  else f"The cycle{who} (think time {s.pause.describe()} after turns of "
                       "nearly constant length) is nearly constant")
        how = ("refused calls are retried: sessions refused together wait out their "
               "retries together, come back together and can fall into step, or a "
               "retry's wait moves a session out of step with the others for good; the "
               "analytic model sees neither, and its answer can be optimistic or "
               "conservative there" if retried else
               f"a refused call is not retried: its turn {ends}, so sessions refused "
               "together come back together and can fall into step, which the analytic "
               "model does not see; its answer can be optimistic there")
        notes.append(
            f"{steady} (the cycle varies by {spread:.0%} of its {cyc.cycle_s:.0f}s mean) "
            f"and {how}. {PHASE_LOCK_CHECK}")
    return notes


# The notes' advice to simulate, and what each says where the simulation has run beside
# the analytic answer (capacity.whatif.ceiling): the pacing note's whenever it has run,
# the phase-lock and bucket-storm notes' only where its N* was also measured again two
# hours later (herds grow, and storms that hold outlast, the hour: that check is the
# advice's point).
PHASE_LOCK_CHECK = ("Check it with a simulation (--method simulate), which measures its "
                    "N* again two hours later and says whether it settled.")
PHASE_LOCK_SIMULATED = "The simulated N* is the one to trust here."
PACING_CHECK = "simulate it (--method simulate)."
PACING_SIMULATED = "the simulated N* counts them."
BUCKET_STORM_CHECK = ("Simulate it (--method simulate), which measures its N* again two "
                      "hours later and says whether it settled.")
BUCKET_STORM_SIMULATED = "The simulated N* counts the storms its hours met."


def _analyze(profile: Profile, sessions: int | None,
             workload: Workload | None) -> CeilingResult:
    if profile.populations:  # several kinds of sessions: N varies, held ones stay
        from capacity.analytic.populations import analyze_populations

        result: CeilingResult = analyze_populations(profile, sessions)
        return result
    wl = workload or Workload.from_profile(profile)
    if profile.routes:  # deployments behind routes: spillover, fallback (fleet.py)
        from capacity.analytic.fleet import analyze_fleet

        return analyze_fleet(profile, wl, sessions)
    target = profile.targets.max_429_fraction
    cyc = cycle_time(wl)
    results = _ceilings(wl, cyc, target, sessions)
    burst = _joint(wl, cyc, results, target)
    binding = _pick_binding(results)
    results = [
        ConstraintResult(**{**r.__dict__, "binding": r is binding}) for r in results
    ]
    binding = next(r for r in results if r.binding)
    mean_ceiling = min(r.mean_ceiling for r in results)
    sens = Deferred(functools.partial(_sensitivity, wl, target, cyc.cycle_s, results))
    from capacity.analytic.clumped import stability_notes  # it imports this module

    # Metastability: does the retry fixed point have a storm solution below the napkin?
    notes = tuple(note for c, r in zip((c for c in wl.constraints
                                         if wl.units_per_turn(c) > 0), results, strict=True)
                  for note in stability_notes(wl, c, cyc.cycle_s,
                                              math.floor(min(r.mean_ceiling, 1e6) + 1e-9),
                                              r.burst_ceiling,
                                              _kept(wl, c, cyc.cycle_s, cyc.min_cycle_s)))
    return CeilingResult(
        profile=profile.title,
        targets=ceiling_targets(profile, target),
        cycle=cyc, calls_per_turn=wl.calls_per_turn(), constraints=tuple(results),
        mean_ceiling=mean_ceiling, burst_ceiling=burst, binding=binding,
        sensitivity=sens, sessions=sessions, notes=notes,
    )


def _with_fixed_pause(wl: Workload, v: float) -> Workload:
    """``wl``'s profile with its cadence fixed at ``v`` seconds."""
    fixed = wl.profile.session.model_copy(
        update={"cadence": Distribution.fixed(v, "duration")})
    out = Workload.from_profile(wl.profile.model_copy(update={"session": fixed}))
    # The turns are the same: their latency sample and launch offsets are drawn without
    # the pause, so they are shared rather than drawn again.
    for name in ("turn_latency", "turn_latency_moments"):
        if name in wl.__dict__:
            out.__dict__[name] = wl.__dict__[name]
    from capacity.analytic.clumped import share_timing  # it imports this module

    share_timing(wl, out)
    return out


def _sensitivity(wl: Workload, target: float, cycle_s: float | None = None,
                 results: list[ConstraintResult] | None = None) -> PauseSensitivity | None:
    """The ceilings at the think time's (cadence's) lower and upper end; ``results``:
    the constraints' ceilings at the cycle ``cycle_s``, a guess of theirs where a search
    takes one (a ceiling scales about with the cycle)."""
    pause = wl.profile.session.pause
    if pause.is_fixed:
        return None
    lo, hi = pause.range()
    out = []
    active = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    session_mode = wl.profile.session.mode
    base = wl
    for v in (lo, hi):
        # A cadence session's turn sample carries each turn's cadence (abort savings,
        # restarts: TurnTiming.cadence): the profile with its cadence fixed at v, the same
        # path as analysing that profile. (A think-time sample's pauses only space its
        # turns; it is shared, at v's cycle, which costs no second sample.)
        wl = base if session_mode == "think_time" else _with_fixed_pause(base, v)
        cyc = cycle_time(wl, Distribution.fixed(v, "duration"))
        means = [_mean_ceiling(wl, c, cyc.cycle_s) for c in active]
        # Only the smallest burst-aware ceiling matters here, and those near it (the
        # quotas that add up, joint_ceiling's 1.5×): from the smallest mean ceiling up,
        # a constraint whose share is small well above the smallest ceiling so far is
        # left out unsearched.
        found: dict[int, ConstraintResult] = {}
        for i in sorted(range(len(active)), key=lambda i: means[i]):
            if found:
                low = min(r.burst_ceiling for r in found.values())
                if _clears(wl, active[i], cyc, target, math.floor(1.5 * low + 1.0) + 1):
                    continue
            near = (None if results is None or cycle_s is None else
                    max(1, round(results[i].burst_ceiling * cyc.cycle_s / cycle_s)))
            found[i] = constraint_ceiling(wl, active[i], cyc.cycle_s, target, None,
                                          cyc.min_cycle_s, near)
        kept = sorted(found)
        out.append((min(means), _joint(wl, cyc, [found[i] for i in kept], target,
                                       [active[i] for i in kept])))
    return PauseSensitivity(wl.profile.session.mode, lo, hi, out[0][0], out[1][0],
                            out[0][1], out[1][1], math.isfinite(pause.upper))


__all__ = [
    "CeilingResult",
    "ConstraintResult",
    "CycleTime",
    "PauseSensitivity",
    "WindowStats",
    "analyze",
    "constraint_ceiling",
    "cycle_time",
    "lundberg_theta",
    "panjer",
    "window_model",
]

