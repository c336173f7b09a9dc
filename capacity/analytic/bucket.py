"""A token bucket's refusal share, exactly: the level a launch finds, as a Markov chain.

The Lundberg bound ``exp(−θ*·b)`` bounds the chance the virtual workload of an infinite
dam exceeds the depth ``b``; but a call charging ``B`` is refused as soon as the level is
below ``B`` (workload above ``b − B``), and a refused call charges nothing — so where the
bucket holds only a few calls the bound is far too low (a 10,000-token bucket fed
4,000-token calls: +41% sessions), and where it holds many it is a little high.

Here the level ``L`` a launch finds (Poisson launches see time averages) is the chain
``L' = min(b, adm(L) + r·G)``: the launch's calls each take their charge if it fits
(``adm``, call by call, a refused call leaving the level as it was), then the bucket
refills at ``r`` units per second for the exponential gap ``G`` to the next launch, up
to its depth. On a grid of ``δ = b/K`` units the launch is a fixed matrix (built once)
and the refill a Toeplitz matrix in the launch rate; the stationary law is one small
dense solve per launch rate, on grids of ``K`` and ``2K`` points with the share
extrapolated (its error is ``O(δ)``: Richardson).

Retries that honour the retry-after (the time until the charge fits) come back as a
herd: every call refused while the level is short is told the same instant, when the
level reaches one charge; there the oldest is admitted and the rest are refused again
(told one charge's refill later), while every fresh call meanwhile is refused and joins
— a queue whose calls give up after ``m`` refused retries, so its state is the number it
will still admit (at most ``m``). That is so where the charges are (nearly) equal; where
they spread, the smaller calls get in while a big one waits, and a told retry instead
lands where the level reaches its charge unless fresh calls or other retries took the
level first: level crossing with those landings (:func:`told_shares`). A bucket counting
its rejections (requests) is emptied by every refusal: the retry comes back to a bucket
short again, whether told the time to one request from the level it found (the
retry-after, computed before the count) or a backoff, and is refused and empties it
again, as the fresh calls meanwhile are — a cascade. There the chain is of (level,
retries pending), the pending coming back at ``j/delay`` per second; so too for a bucket
that does not count, when the first backoff refills at most a third of its depth (the
refusal left it short of the charge, and the retry finds it nearly so). Other backoff
retries (a longer backoff) are each one more single-call launch (the orbit approximation
of theory.md §3), the retried load and the refusal share a fixed point iterated from
below — but a retry comes back a backoff after its refusal, not at a random time: each
retry is chained from the level its call was refused at, among the retries of the calls
refused just before it (:func:`_with_others`), and the retries admitted take their units
where the level is still low, which the fresh calls behind them meet
(:func:`clustered_ratio`). The 429 share is on attempts, as for windows.

Backoff retries short against the refill carry the charge of the call that was refused,
and the refused calls are the big ones: their charge law is the refused calls' (size-biased
by the levels fresh calls are refused at), not every call's.

Assumptions: launches Poisson (many independent sessions) — but a few sessions whose
turns are one call here are a closed loop (:func:`closed_share`), and think-time turns
that launch here more than once a chain of the sessions in a turn (:func:`follow_share`:
a turn's calls follow one another); with retries these move the fresh calls' refusal
share the retry model gives (:meth:`BucketChain._sessions_fresh`; not the closed loop's
told ones at a counting requests bucket); the calls of one launch draw their charges
independently from the launch's call-charge law; rejections do not charge, except that a
requests bucket counting its rejections (``rejected_count``) loses the unit a rejection
takes if it is there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from capacity.analytic.window import RetryModel, attempts_per_call, lattice_convolve
from capacity.model.numeric import brentq, fixed_point_between, swing_narrows
from capacity.model.workload import Batch, CallCost, remember

_kernels: Any
try:  # the compiled loops (setup.py builds them with the simulator)
    from capacity.analytic import _kernels
except ImportError:  # pragma: no cover - a build without them: the numpy loops
    _kernels = None

# Coarse grid: ``δ`` a ``1/s`` of the mean call charge (so equal charges sit on the grid),
# ``s`` at most ``_MAX_STEPS_PER_CALL`` and the depth at most ``_MAX_POINTS`` steps (the
# fine grid has twice as many; a dense solve of that size per launch rate). The chain is
# used while ``s ≥ _MIN_STEPS_PER_CALL`` (spread charges: at most ~15 mean calls deep), or
# ``s ≥ 1`` when every call charges the same (requests: up to 47 calls deep), which then
# sits on every grid.
_MAX_POINTS = 47
_MAX_STEPS_PER_CALL = 8
_MIN_STEPS_PER_CALL = 3
# Herd sizes beyond this are gathered here (retries that honour the retry-after).
_HERD = 24
# Chains up to this many states are solved densely (LAPACK is fast, single-threaded).
_SOLVE_MAX = 96
# Calls per launch beyond this are gathered here (a launch's matrix is a power series).
_MAX_CALLS = 64
# Backoff retries pending beyond this are gathered here.
_PENDING = 16
# Backoff retries whose first delay refills at most this share of the depth: pending.
_NEAR = 1.0 / 3.0
# Levels of the pending chain's coarse grid, at most (its fine grid: twice as many).
_PENDING_POINTS = 24
# A depth off the grid is interpolated between the two levels around it (on chains of
# their own) while the coarse grid has fewer levels than this (BucketChain._bracket).
_BRACKET_LEVELS = 24


def launch_law(batch: Batch, costs: dict[int, CallCost | None], h: float, top: float
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(law of the number of calls a launch makes on the constraint, the summed charge
    laws of its calls on a lattice of step ``h`` units — total mass the mean call count).

    Charges above ``top`` units are gathered at ⌈top/h⌉ (they never fit).
    """
    count = np.ones(1)
    charge = np.zeros(1)
    for child in batch.children:
        if isinstance(child, Batch):
            k, c = launch_law(child, costs, h, top)
        else:
            cost = costs.get(id(child))
            if cost is None:
                continue
            k, c = np.array([0.0, 1.0]), cost.pmf(h, top)
        count = np.convolve(count, k)
        charge = _add(charge, c)
    if batch.keep < 1.0:
        count = count * batch.keep
        count[0] += 1.0 - batch.keep
        charge = charge * batch.keep
    n = batch.count
    if n.is_fixed and n.mean == 1:
        return count[: _MAX_CALLS + 1] / count[: _MAX_CALLS + 1].sum(), charge
    probs = n.lattice_pmf(1.0)
    out = np.zeros(1)
    power = np.ones(1)
    for j, pj in enumerate(probs):
        if j > 0:
            power = np.convolve(power, count)[: _MAX_CALLS + 1]
        if pj > 0:
            out = _add(out, pj * power)
    mean_n = float(np.dot(np.arange(probs.size), probs))
    return out / out.sum(), charge * mean_n


def _add(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros(max(a.size, b.size))
    out[: a.size] += a
    out[: b.size] += b
    return out


def _grid_split(units: NDArray[np.float64], delta: float
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(charges in grid steps of ``delta`` units, the grid level below each, the weight
    of the level above): a charge split between the two grid levels around it, as the
    level chain splits the calls' law."""
    x = np.asarray(units, dtype=np.float64) / delta
    lo = np.floor(x + 1e-9)
    return x, lo, np.clip(x - lo, 0.0, 1.0)


def never_fit_stripped(charge: NDArray[np.float64], h: float, depth: float
                       ) -> tuple[NDArray[np.float64], float]:
    """(the charge law ``charge`` (lattice step ``h`` units, any total mass) with the
    calls charged more than the ``depth`` moved to charge 0, their share of the mass).

    A bucket never holds more than its depth: such a call is refused on every attempt
    and never takes a unit, so to the level it is a call charged nothing, admitted at
    once; its attempts are added by the client's retry rule (:func:`capacity.analytic.
    window.with_never_fit`). Left in the level's chain it was refused once and then
    served by the herd its retry joined (hunt-1079: one call in 90 never fits, four
    attempts each; 0.92 % of attempts refused at one session against 3.8 % simulated)."""
    k = np.arange(charge.size)
    never = k * h > depth * (1.0 + 1e-12)
    total = float(charge.sum())
    if total <= 0.0 or not never.any():
        return charge, 0.0
    gone = float(charge[never].sum())
    if gone <= 0.0:
        return charge, 0.0
    out = np.where(never, 0.0, charge)
    out[0] += gone
    return out, gone / total


Kind = tuple[float, NDArray[np.float64], NDArray[np.float64]]


def merge_kinds(items: Iterable[Kind]) -> list[Kind]:
    """``(weight, calls per launch, charge law)`` items with the same two laws merged,
    their weights added (first seen first)."""
    merged: dict[tuple[bytes, bytes], list[Any]] = {}
    for w, k, ch in items:
        key = (k.tobytes(), ch.tobytes())
        if key in merged:
            merged[key][0] += w
        else:
            merged[key] = [w, k, ch]
    return [(v[0], v[1], v[2]) for v in merged.values()]


def launch_kinds(laws: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]],
                 h: float, depth: float
                 ) -> tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...]:
    """:attr:`BucketChain.kinds` from ``laws`` (``(share of launches, calls per launch,
    summed charge law of its calls)`` as :func:`launch_law` gives them): launches with no
    call here thinned out, calls past the depth charged 0 (:func:`never_fit_stripped`),
    kinds with the same laws merged; () when one kind remains or every launch is one
    call (then the pooled laws are the mixture)."""
    live: list[Kind] = []
    for w, k, ch in laws:
        mass = float(ch.sum())
        if w <= 0.0 or mass <= 0.0 or k[0] >= 1.0:
            continue
        count = k.copy()
        count[0] = 0.0
        live.append((w * (1.0 - float(k[0])), count / count.sum(),
                     never_fit_stripped(ch, h, depth)[0] / mass))
    merged = merge_kinds(live)
    # One call a launch, whatever its charge: the pooled laws are the mixture exactly.
    if len(merged) <= 1 or all(k.size == 2 for _, k, _ in merged):
        return ()
    total = math.fsum(w for w, _, _ in merged)
    return tuple((w / total, k, c) for w, k, c in merged)


@dataclass
class _Grid:
    """The launch operators on one grid of ``K + 1`` levels (0, δ, …, Kδ = depth)."""

    delta: float                       # units per grid step
    top: int                           # K
    launch: NDArray[np.float64]        # fresh launch: level → level (row-stochastic)
    refused: NDArray[np.float64]       # fresh launch: expected refused calls, by level
    clean: NDArray[np.float64]         # the launch's outcomes with no call refused
    retry: NDArray[np.float64]         # one call of the refused-charge law
    retry_refused: NDArray[np.float64]


def _call_matrix(pmf: NDArray[np.float64], top: int, counted: int
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One call of charge law ``pmf`` (grid steps): (transition, refusal chance) by level.
    ``counted`` > 0: a refusal takes that many grid steps if they are there
    (:meth:`capacity.limits.meters.TokenBucket.count_rejection`)."""
    M, _, refuse = _call_outcomes(pmf, top, counted, apart=False, half=False)
    return M, refuse


def _call_outcomes(pmf: NDArray[np.float64], top: int, counted: int, *, apart: bool,
                   half: bool) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                        NDArray[np.float64]]:
    """One call's transitions by level: (admitted, refused, refusal chance). ``apart``:
    the admitted and refused moves in two matrices (else one, the same object twice);
    ``half``: a charge exactly on a grid level is refused half the time (the level
    stands for the interval around it)."""
    n = top + 1
    j = np.arange(n)
    fit = np.zeros((n, n))
    ref = np.zeros((n, n)) if apart else fit
    refuse = np.zeros(n)
    after = np.maximum(j - counted, 0)
    for c, pc in enumerate(pmf):
        if pc <= 0:
            continue
        fits = j >= c
        fit[j[fits], j[fits] - c] += pc
        ref[j[~fits], after[~fits]] += pc
        refuse[~fits] += pc
        if half and 0 < c <= top:
            fit[c, 0] -= pc / 2
            ref[c, after[c]] += pc / 2
    return fit, ref, refuse


def _grid(count: NDArray[np.float64], call_pmf: NDArray[np.float64], delta: float,
          top: int, counted: int) -> _Grid:
    M, r = _call_matrix(call_pmf, top, counted)
    n = top + 1
    fit = M.copy()                    # the call fits: its refusal outcomes dropped
    fit[np.arange(n), np.arange(n)] -= r
    power = np.eye(n)
    fpower = np.eye(n)
    refused_so_far = np.zeros(n)
    A = np.zeros((n, n))
    clean = np.zeros((n, n))
    R = np.zeros(n)
    for k, pk in enumerate(count):
        if k > 0:
            refused_so_far = refused_so_far + power @ r
            power = power @ M
            fpower = fpower @ fit
        if pk > 0:
            A += pk * power
            clean += pk * fpower
            R += pk * refused_so_far
    return _Grid(delta, top, A, R, clean, M, r)


def _mixed_grid(kinds: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]],
                pmf: NDArray[np.float64], delta: float, top: int, counted: int) -> _Grid:
    """The launch operators of several kinds of launch (``(share, calls per launch, one
    call's charge law on the grid)``), each moving the level by its own calls, mixed by
    share; a retry is one call of the pooled law ``pmf``. Pooling the kinds' calls
    before the launch (calls per launch × the average call) made a fan-out of eight
    384-token calls eight draws of a law holding single 10,000-token calls: hunt seed 3
    (such fan-outs beside tool loops of 3,300–10,000-token calls at a bucket 37,406
    deep) refused 1.3 % of calls at 50 sessions in the model, 0.03 % in the engine."""
    M, r = _call_matrix(pmf, top, counted)
    n = top + 1
    A = np.zeros((n, n))
    clean = np.zeros((n, n))
    R = np.zeros(n)
    for w, count, call in kinds:
        g = _grid(count, call, delta, top, counted)
        A += w * g.launch
        clean += w * g.clean
        R += w * g.refused
    return _Grid(delta, top, A, R, clean, M, r)


def _refill(lam: float, refill: float, delta: float, top: int) -> NDArray[np.float64]:
    """Level after a launch → level at the next: up ``refill·G/δ`` steps (G ~ Exp(lam)),
    to the nearest grid point, capped at the depth."""
    q = math.exp(-lam * delta / refill)          # P(no launch while δ refills)
    if q <= 0.0:
        # Launches so dense the bucket never gains a step between two (a fleet's head
        # at hundreds of thousands of sessions): the level stays where it was.
        return np.eye(top + 1)
    # P(up d steps) = q^(d−½) − q^(d+½) for d ≥ 1, 1 − q^½ for d = 0: q^d by powers.
    pw = q ** (np.arange(top + 1) - 0.5)
    row = np.empty(top + 1)
    row[0] = 1.0 - math.sqrt(q)
    row[1:] = pw[1:] * (1.0 - q)
    j = np.arange(top + 1)
    d = j[None, :] - j[:, None]
    G = np.where(d >= 0, row[np.clip(d, 0, top)], 0.0)
    G[:, top] = np.append(pw[top - j[:-1]], 1.0)
    return G


def _refills(lams: NDArray[np.float64], refill: float, delta: float, top: int
             ) -> NDArray[np.float64]:
    """Level after an event → level at the next, at each event rate of ``lams``
    (stacked): up ``X = refill·G/δ`` steps (G ~ Exp(rate)) split between the two grid
    points around it in proportion (so the mean refill is exact however dense the
    events — rounding to the nearest point loses a third of it when events come every
    half step, and storms of retries are that dense), capped at the depth."""
    a = lams * delta / refill                              # 1 / E[X]
    q = np.exp(-a)[:, None]
    d = np.arange(top + 1)
    row = np.empty((lams.size, top + 1))
    # P(d) = E[max(0, 1 − |X − d|)]: 1 − (1 − q)/a at 0, q^(d−1)(1 − q)²/a beyond.
    row[:, 0] = 1.0 - (1.0 - q[:, 0]) / a
    row[:, 1:] = q ** (d[1:] - 1)[None, :] * ((1.0 - q) ** 2 / a[:, None])
    diff = d[None, :] - d[:, None]
    G = np.where(diff >= 0, row[:, np.clip(diff, 0, top)], 0.0)
    G[:, :, top] = 0.0
    G[:, :, top] = 1.0 - G.sum(axis=2)
    return G


def _refills_c(lams: NDArray[np.float64], refill: float, delta: float, top: int
               ) -> NDArray[np.float64]:
    """:func:`_refills`, compiled (``_kernels.refills``: its formulas element by element,
    its last column's sum in another order — the last bits may differ) where built."""
    if _kernels is not None and not _NUMPY_ONLY:
        out: NDArray[np.float64] = _kernels.refills(
            np.ascontiguousarray(lams, dtype=np.float64), refill, delta, top + 1)
        return out
    return _refills(lams, refill, delta, top)


def _refilled(lams: NDArray[np.float64], refill: float, delta: float,
              x: list[NDArray[np.float64]], coef: NDArray[np.float64]
              ) -> NDArray[np.float64]:
    """``out[q, b] = Σ_p coef[b, q, p] · (G_b @ x[p])`` for :func:`_refills`' matrix
    ``G_b`` at each event rate ``lams[b]`` (``x``: matrices of one shape, a row per level).
    Compiled (``_kernels.refill_combine``) by the matrices' geometric rows, a running
    sum from the top (O(K²) a product where the dense one is O(K³); the last bits
    differ); else the dense products."""
    if _kernels is not None and not _NUMPY_ONLY:
        out: NDArray[np.float64] = _kernels.refill_combine(
            np.ascontiguousarray(lams, dtype=np.float64), refill, delta,
            np.ascontiguousarray(np.hstack(x), dtype=np.float64),
            np.ascontiguousarray(coef, dtype=np.float64))
        return out
    G = _refills(lams, refill, delta, x[0].shape[0] - 1)
    got = np.stack([np.matmul(G, xp) for xp in x], axis=1)          # (b, p, n, n)
    combined: NDArray[np.float64] = np.einsum("bqp,bpij->qbij", coef, got)
    return combined


def _censored(T: NDArray[np.float64], n1: int) -> NDArray[np.float64]:
    """Stationary law of ``T`` through the chain censored to its first ``n1`` states
    (``C = T₁₁ + T₁₂ (I − T₂₂)⁻¹ T₂₁``), so every dense solve stays small."""
    n = T.shape[0]
    if n <= _SOLVE_MAX or n1 >= n:
        return _stationary(T)
    eye = np.eye(n - n1)
    X = np.linalg.solve(eye - T[n1:, n1:], T[n1:, :n1])
    C = T[:n1, :n1] + np.einsum("ij,jk->ik", T[:n1, n1:], X)
    C /= C.sum(axis=1, keepdims=True)
    p1 = _stationary(C)
    p2 = np.linalg.solve((eye - T[n1:, n1:]).T, np.einsum("i,ij->j", p1, T[:n1, n1:]))
    out: NDArray[np.float64] = np.clip(np.concatenate([p1, p2]), 0.0, None)
    return out / float(out.sum())


def _stationary(T: NDArray[np.float64]) -> NDArray[np.float64]:
    """Stationary law of the stochastic matrix ``T``: a dense solve up to ``_SOLVE_MAX``
    states, beyond by the GTH elimination (plain numpy: above ~100 states LAPACK's
    threads cost a hundred times the arithmetic on a busy machine)."""
    n = T.shape[0]
    if n <= _SOLVE_MAX:
        A = T.T - np.eye(n)
        A[-1, :] = 1.0
        rhs = np.zeros(n)
        rhs[-1] = 1.0
        try:
            pi = np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:
            pi = np.full(n, -1.0)
        if float(pi.min()) > -1e-9:
            out: NDArray[np.float64] = np.clip(pi, 0.0, None)
            return out / float(out.sum())
    P = T.copy()
    for k in range(n - 1, 0, -1):
        s = float(P[k, :k].sum())
        if s <= 0.0:
            s = 1e-300
        P[:k, k] /= s
        P[:k, :k] += P[:k, k, None] * P[k, None, :k]
    pi = np.zeros(n)
    pi[0] = 1.0
    for k in range(1, n):
        pi[k] = float(np.dot(pi[:k], P[:k, k]))
    return pi / float(pi.sum())


def _refused_below(laws: list[tuple[NDArray[np.float64], float]],
                   units: NDArray[np.float64], depth: float) -> NDArray[np.float64]:
    """``P(L < charge)`` for each of ``units`` from the law of the level ``L`` on the
    coarse and the fine grid (``(law over levels 0..top, step in units)`` each), each
    charge split between the two grid levels around it as the chain splits the calls'
    law (:func:`_grid_split`), extrapolated as the share is (``2·fine − coarse``); from
    one grid's law alone, that grid's; a charge past the ``depth`` always refused."""
    got = []
    for pi, delta in laws:
        top = pi.size - 1
        below = np.concatenate([[0.0], np.cumsum(pi)])       # P(L < k), k = 0..top+1
        _, lo, w = _grid_split(units, delta)
        lo_i = lo.astype(np.int64)
        at = np.minimum(lo_i, top + 1)
        nxt = np.minimum(lo_i + 1, top + 1)
        got.append((1.0 - w) * below[at] + w * below[nxt])
    out = np.clip(got[0] if len(got) == 1 else 2.0 * got[1] - got[0], 0.0, 1.0)
    # (A charge past the depth: ``below[top + 1]`` is 1 on both grids.)
    return np.where(np.asarray(units) > depth + 1e-9, 1.0, out)


def _thresholds(pi: NDArray[np.float64], launch: NDArray[np.float64], delta: float,
                refill: float, lam: float
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """What :func:`_refused_again` and :func:`_refused_chain` carry: ``ref[j, ℓ]`` = 1 for
    a level ``ℓ`` below threshold ``j`` (``j = 0..n``; a charge acts only through the grid
    level below it, so each threshold is carried once whatever the number of charges — a
    one-token lattice is thousands, each carried over ~100 steps: 1.8 s a call,
    hunt-3099), and the uniformised move: events at ``rate`` a second, each a refill
    step (chance r/δ/rate) or a launch, so the law after d seconds is the
    Poisson(rate·d) mixture of the powers of ``P``."""
    n = pi.size
    ref = (np.arange(n)[None, :] < np.arange(n + 1)[:, None]).astype(np.float64)
    rate = refill / delta + lam
    P = lam / rate * launch
    P[np.arange(n - 1), np.arange(1, n)] += refill / delta / rate
    P[n - 1, n - 1] += refill / delta / rate
    return ref, P, rate


def _per_charge(units: NDArray[np.float64], delta: float, start: NDArray[np.float64],
                later: NDArray[np.float64]) -> NDArray[np.float64]:
    """``later[k, j] / start[j]`` at each charge: split between the grid charges below
    and above it (its lower and upper thresholds; past the top, every level)."""
    n = start.size - 1
    _, lo, w = _grid_split(units, delta)
    a = np.minimum(lo, n).astype(np.int64)
    b = np.minimum(lo + 1, n).astype(np.int64)
    mass = (1.0 - w) * start[a] + w * start[b]
    num = (1.0 - w)[None, :] * later[:, a] + w[None, :] * later[:, b]
    out = np.where(mass[None, :] > 1e-300, num / np.maximum(mass, 1e-300)[None, :], 1.0)
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def _poisson_weights(mu: float) -> NDArray[np.float64]:
    """Poisson(``mu``) weights of 0.. events, out to ``mu + 10√mu + 10`` (μ = 0: all at 0)."""
    if mu <= 0:
        return np.ones(1)
    ks = np.arange(math.ceil(mu + 10.0 * math.sqrt(mu) + 10.0) + 1, dtype=np.float64)
    return np.asarray(np.exp(-mu + ks * math.log(mu)
                             - np.array([math.lgamma(k + 1.0) for k in ks])),
                      dtype=np.float64)


def _uniformised(v: NDArray[np.float64], P: NDArray[np.float64], mu: float
                 ) -> NDArray[np.float64]:
    """``v·Σ_k Poisson(mu; k)·P^k`` (= ``v·exp(mu·(P − I))``): the rows of ``v`` carried
    over a Poisson(``mu``) number of moves ``P``. Term by term while that is the less
    work (products weighed by their rows), else by squaring — the mixture at
    ``mu/2^s ≤ 1`` (its terms all non-negative: nothing cancels; :func:`_power_series`),
    squared ``s`` times: a 100 s backoff at a bucket taking 3 events a second is 485
    terms, against 7 products and 9 squarings (hunt-169 spent 1.7 s of its 2.7 s in
    those terms). The two agree to 1e-11 (tests)."""
    wts = _poisson_weights(mu)
    s = max(0, math.ceil(math.log2(mu))) if mu > 1.0 else 0
    small = _poisson_weights(mu / (1 << s)) if s else wts
    # Products weighed by their rows: a term is one of v's rows times P, a squaring P's.
    rows, n = v.shape[0], P.shape[0]
    if (wts.size - 1) * rows <= (_series_products(small.size) + s) * n + rows:
        acc: NDArray[np.float64] = wts[0] * v
        x = v
        for k in range(1, wts.size):
            x = x @ P
            acc += wts[k] * x
        return acc
    m = _power_series(P, small)
    for _ in range(s):
        m = m @ m
    out: NDArray[np.float64] = v @ m
    return out


def _series_products(terms: int) -> int:
    """Matrix products :func:`_power_series` takes for ``terms`` coefficients."""
    p = max(1, math.isqrt(terms))
    return (p - 1) + (terms - 1) // p


def _power_series(P: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    """``Σ_k c[k]·P^k`` in about ``2√K`` matrix products instead of ``K`` (Paterson–
    Stockmeyer: the powers up to ``P^p``, then Horner's rule in ``P^p`` over blocks of
    ``p`` terms). The coefficients and ``P`` are non-negative: every sum is of
    non-negative terms, as the series' are (nothing cancels)."""
    K = c.size
    p = max(1, math.isqrt(K))
    pw = [np.eye(P.shape[0]), P]
    for _ in range(2, p + 1):
        pw.append(pw[-1] @ P)

    def block(j: int) -> NDArray[np.float64]:
        out: NDArray[np.float64] = c[j * p] * pw[0]
        for i in range(1, min(p, K - j * p)):
            out += c[j * p + i] * pw[i]
        return out

    top = (K - 1) // p
    acc = block(top)
    for j in range(top - 1, -1, -1):
        acc = acc @ pw[p]
        acc += block(j)
    return acc


def _refused_again(pi: NDArray[np.float64], launch: NDArray[np.float64], delta: float,
                   refill: float, lam: float, units: NDArray[np.float64],
                   delays: tuple[float, ...]) -> NDArray[np.float64]:
    """:meth:`BucketChain.refused_after` on one grid of ``delta`` units: ``pi`` the law of
    the level a launch finds, ``launch`` a launch's move (level → level), ``refill``
    units a second, launches at ``lam`` a second."""
    ref, P, rate = _thresholds(pi, launch, delta, refill, lam)
    wts = [_poisson_weights(rate * max(d, 0.0)) for d in delays]
    top = max((x.size for x in wts), default=1) - 1
    v = ref * pi[None, :]
    start = v.sum(axis=1)
    again = np.empty((top + 1, start.size))          # refused again after k events
    for k in range(top + 1):
        if k:
            v = v @ P
        again[k] = (v * ref).sum(axis=1)
    later = np.array([x @ again[: x.size] for x in wts]).reshape(len(delays), start.size)
    return _per_charge(units, delta, start, later)


def _backoff_gaps(retry: RetryModel) -> tuple[float, ...]:
    """Seconds between a refused call's tries under backoff (``retry.backoff_s`` are
    the waits from the first refusal; retries past the listed ones wait the last gap)."""
    m = retry.max_retries
    c = np.asarray(retry.backoff_s[:m], dtype=np.float64)
    if c.size == 0:
        return ()
    gaps = np.diff(np.concatenate([[0.0], c]))
    if gaps.size < m:
        gaps = np.concatenate([gaps, np.full(m - gaps.size, gaps[-1])])
    return tuple(float(x) for x in gaps)


def _refused_chain(pi: NDArray[np.float64], launch: NDArray[np.float64], delta: float,
                   refill: float, lam: float, units: NDArray[np.float64],
                   gaps: tuple[float, ...], counted: int = 0,
                   mixed_s: float = math.inf,
                   others: tuple[NDArray[np.float64], NDArray[np.float64],
                                 NDArray[np.float64]] | None = None
                   ) -> NDArray[np.float64]:
    """``out[k, i]``: the chance a lone call charging ``units[i]`` that was refused at the
    level a launch finds (``pi``, grid ``delta``) is refused on each of its next ``k + 1``
    tries too, ``gaps`` seconds apart — each carried from the level the try before was
    refused at (less ``counted`` grid steps where a refusal is counted), with the refill
    at ``refill`` units a second and the others' launches (move ``launch``) at ``lam`` —
    over the chance it was refused at first. After a gap of ``mixed_s`` seconds or more
    the level has forgotten where it was: the retry meets ``pi``, as any launch does.

    As :func:`_refused_again`, but the tries chained: the calls that reach a later retry
    are the large ones, refused at low levels, which a product of each retry's average
    over the first refusals' charges misses (hunt-3099's second retries: 14 % that way,
    21 % chained, the engine 37 %)."""
    n = pi.size
    ref, P, rate = _thresholds(pi, launch, delta, refill, lam)
    v = ref * pi[None, :]
    start = v.sum(axis=1)
    rows = []
    for gap in gaps:
        if counted > 0:   # a counted refusal takes its units, if there
            down = np.zeros((n, n))
            down[np.arange(n), np.maximum(np.arange(n) - counted, 0)] = 1.0
            v = v @ down
        if gap >= mixed_s:
            # Mixed: the retry meets the level any launch does (PASTA).
            acc = v.sum(axis=1)[:, None] * pi[None, :]
        else:
            P_g, rate_g = P, rate
            if others is not None:
                P_g, rate_g = _with_others(v, P, rate, lam, gap, others)
            acc = _uniformised(v, P_g, rate_g * max(gap, 0.0))
        v = acc * ref                                  # refused again: below the charge
        rows.append(v.sum(axis=1))
    return _per_charge(units, delta, start, np.array(rows).reshape(len(gaps), start.size))


def _with_others(v: NDArray[np.float64], P: NDArray[np.float64], rate: float, lam: float,
                 gap: float, others: tuple[NDArray[np.float64], NDArray[np.float64],
                                          NDArray[np.float64]]
                 ) -> tuple[NDArray[np.float64], float]:
    """The uniformised move over a backoff gap with the other refused calls' retries
    among the launches: refusals come in clusters (the level is low for a while), so a
    refused call's retry meets the retries of the calls refused just before it. By the
    Palm symmetry of a stationary point process, the calls refused in the ``gap`` before
    a refusal are as many as those refused in the ``gap`` after it — counted here from
    the levels the refusals ``v`` left, forward (fresh launches' refusals by level
    ``refused``) — and their retries land in this gap, each one call of the
    refused-charge law (``move``); ``w`` weighs the rows of ``v``."""
    move, refused, w = others
    x = w @ v
    tot = float(x.sum())
    if tot <= 0.0 or gap <= 0.0:
        return P, rate
    x = x / tot
    wts = _poisson_weights(rate * gap)
    tail = 1.0 - np.cumsum(wts)           # P(more than k events in the gap)
    count = 0.0
    for k in range(wts.size):
        count += float(tail[k]) * lam / rate * float(x @ refused)
        x = x @ P
    lam_x = count / gap
    if lam_x <= 0.0:
        return P, rate
    rate_x = rate + lam_x
    return (P * rate + lam_x * move) / rate_x, rate_x


def clustered_ratio(pi: NDArray[np.float64], launch: NDArray[np.float64],
                    refused: NDArray[np.float64], retry: NDArray[np.float64], delta: float,
                    refill: float, lam: float, lam_r: float, gap: float,
                    mixed_s: float = math.inf) -> float:
    """How many times more often fresh calls are refused when backoff retries (``lam_r``
    a second, each one call moving the level by ``retry``) come back to the levels they
    meet rather than to the average level, as the orbit's Poisson stream does.

    A retry comes ``gap`` seconds after a refusal, to the level the refusal left (low:
    below the refused charge) carried over the gap (:func:`_thresholds`' uniformised
    move) — the law ``κ``. In the chain of the level in continuous time (refill in unit
    steps at ``refill/δ`` a second, fresh launches ``launch`` at ``lam``, their refused
    calls by level ``refused``) the retries then arrive at the level-dependent rate
    ``λ_r(ℓ) = λ_r·κ(ℓ)/π(ℓ)``: a retry finds ``κ``, and the retries it admits take their
    units where the level is already low. The ratio of the fresh calls' share so to the
    same chain's with a flat rate ``λ_r`` (``π``: the level's law; a few passes of
    ``κ ↔ π``). hunt-3099 (a 1 s TPM bucket, 2 retries 0.5 s and 1 s apart), 147
    sessions: the engine refuses 2.03 % of fresh calls with the retries and 1.53 %
    without (12 h each); the orbit said 1.60 %, this ×1.105 of it — and with the turn's
    calls following one another (:meth:`BucketChain._sessions_fresh`) 2.02 %."""
    n = pi.size
    # (A gap of ``mixed_s`` or more: the level has forgotten the refusal and a retry
    # meets the time law, as the orbit's do — and carrying κ would cost the events of
    # the whole gap: a review's 600 s backoff took 8 s.)
    if lam_r <= 0.0 or gap <= 0.0 or n < 2 or gap >= mixed_s:
        return 1.0
    eye = np.eye(n)
    base = lam * (launch - eye)
    i = np.arange(n - 1)
    base[i, i + 1] += refill / delta
    base[i, i] -= refill / delta
    step = retry - eye
    rhs = np.zeros(n)
    rhs[-1] = 1.0

    def time_law(rates: NDArray[np.float64]) -> NDArray[np.float64]:
        A = (base + rates[:, None] * step).T
        A[-1, :] = 1.0                      # one balance equation is redundant
        x = np.clip(np.linalg.solve(A, rhs), 0.0, None)
        return np.asarray(x / x.sum(), dtype=np.float64)

    flat = time_law(np.full(n, lam_r))
    law = flat
    _, P, rate = _thresholds(law, launch, delta, refill, lam)
    wts = _poisson_weights(rate * gap)
    for _ in range(_CLUSTER_PASSES):
        x = law * refused
        if float(x.sum()) <= 0.0:
            return 1.0
        x = x / float(x.sum())
        kappa = wts[0] * x
        for w in wts[1:]:
            x = x @ P
            kappa = kappa + w * x
        kappa = kappa / float(kappa.sum())
        rates = kappa / np.maximum(law, 1e-300)
        # (a level the chain barely visits cannot take a retry stream of its own)
        rates = np.minimum(rates, _CLUSTER_CAP)
        rates = rates * (lam_r / max(float(law @ rates), 1e-300))
        law = time_law(rates)
    a = float(flat @ refused)
    return float(law @ refused) / a if a > 0.0 else 1.0


# clustered_ratio: passes of κ ↔ π, and the most a level's retry rate may exceed the mean.
_CLUSTER_PASSES = 4
_CLUSTER_CAP = 50.0


@dataclass(frozen=True, eq=False)
class GoesOn:
    """What a launch every call of which is refused brings when its turn goes on
    (``on_exhausted: continue``, no retries): its 429s come back ``delay`` seconds later
    (the rejection latency) and, with chance ``chance``, the turn's next launch here
    comes then — at a bucket that has refilled only ``r·delay`` since it was short —
    instead of a call's latency later. ``kinds``: that next launch's law, ``(share, calls
    per launch, one call's charge law on the lattice h)``."""

    chance: float
    delay: float
    kinds: tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...] = field(
        repr=False)


def _refused_all(count: NDArray[np.float64], pmf: NDArray[np.float64], top: int,
                 counted: int) -> NDArray[np.float64]:
    """A launch's outcomes with every one of its calls refused (level → level; a launch
    of no call is none): ``Σ_{k ≥ 1} P(k calls)·ref^k``, ``ref`` one call's refusal."""
    _, ref, _ = _call_outcomes(pmf, top, counted, apart=True, half=False)
    power = np.eye(top + 1)
    out = np.zeros((top + 1, top + 1))
    for k, pk in enumerate(count):
        if k > 0:
            power = power @ ref
            if pk > 0:
                out += pk * power
    return out


def _shift(steps: float, top: int) -> NDArray[np.float64]:
    """Level → level after a refill of ``steps`` grid steps (split between the two grid
    levels around it, mean-preserving; capped at ``top``)."""
    lo = math.floor(steps)
    frac = steps - lo
    j = np.arange(top + 1)
    S = np.zeros((top + 1, top + 1))
    np.add.at(S, (j, np.minimum(j + lo, top)), 1.0 - frac)
    np.add.at(S, (j, np.minimum(j + lo + 1, top)), frac)
    return S


@dataclass(frozen=True, eq=False)
class TurnWalk:
    """A sample of turns as their launches here (``seq[t, j]``: the ``j``-th launch of
    sampled turn ``t``, an index into ``patterns``, −1 pads), each launch's calls by the
    call specs charged here (``patterns[p, s]``; one call's charge law of spec ``s``:
    ``pmfs[s]``, lattice h, calls past the depth charged 0) and the seconds since the
    turn's previous launch here (``gaps[t, j]``). ``key``: the sample's digest (the grid
    cache's)."""

    pmfs: tuple[NDArray[np.float64], ...] = field(repr=False)
    patterns: NDArray[np.int64] = field(repr=False)
    seq: NDArray[np.int64] = field(repr=False)
    gaps: NDArray[np.float64] = field(repr=False)
    key: int = 0
    # Seconds from each launch to its turn's end, unthrottled (as ``gaps``), and the
    # share of all sampled turns that launch here (the rows are those).
    rest: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    here: float = 1.0
    # The distinct paths (a launch pattern and a gap class at every position): their
    # turns (``weight``), and per position the gap classes (paths, mean gap s; none at
    # the first) and the paths launching each pattern there (pattern, paths); the calls
    # of all the sampled turns.
    weight: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    columns: list[tuple[list[tuple[NDArray[np.int64], float]],
                        list[tuple[int, NDArray[np.int64]]]]] = field(
        default_factory=list, repr=False)
    calls: float = 0.0

    def __post_init__(self) -> None:
        # Derived here, whatever was passed (``dataclasses.replace`` passes them on).
        object.__setattr__(self, "columns", [])
        t, width = self.seq.shape
        cls = np.full((t, width), -1, np.int64)
        means: list[NDArray[np.float64]] = [np.zeros(0)]
        for j in range(1, width):
            rows = np.flatnonzero(self.seq[:, j] >= 0)
            gap = self.gaps[rows, j]
            edges = np.quantile(gap, np.linspace(0.0, 1.0, _WALK_BINS + 1))
            c = np.clip(np.searchsorted(edges, gap, side="right") - 1, 0, _WALK_BINS - 1)
            cls[rows, j] = c
            means.append(np.array([float(gap[c == b].mean()) if (c == b).any() else 0.0
                                   for b in range(_WALK_BINS)]))
        # Turns alike in every launch and gap class walk alike: each path once.
        paths, counts = np.unique(np.concatenate([self.seq, cls], axis=1), axis=0,
                                  return_counts=True)
        seq, cls = paths[:, :width], paths[:, width:]
        object.__setattr__(self, "weight", counts.astype(np.float64))
        for j in range(width):
            on = seq[:, j] >= 0
            bins = ([(np.flatnonzero(on & (cls[:, j] == b)), float(means[j][b]))
                     for b in np.unique(cls[on, j])] if j > 0 else [])
            launches = [(int(p), np.flatnonzero(seq[:, j] == p))
                        for p in np.unique(seq[on, j])]
            self.columns.append((bins, launches))
        calls = self.patterns.sum(axis=1)
        object.__setattr__(self, "calls", float(calls[self.seq[self.seq >= 0]].sum()))


def _exponential_gaps(walk: TurnWalk, mean: float) -> TurnWalk:
    """``walk`` with each position's gaps exponential of ``mean`` seconds, as the follow
    chain has them: the gap of rank ``i`` of ``k`` at a position the exponential's
    quantile ``(i + ½)/k`` (rescaled to the mean), so a turn keeps its launches and its
    place among the others (:meth:`BucketChain._gap_shape`)."""
    gaps = walk.gaps.copy()
    for j in range(1, gaps.shape[1]):
        rows = np.flatnonzero(walk.seq[:, j] >= 0)
        if rows.size == 0:
            continue
        order = np.argsort(gaps[rows, j], kind="stable")
        q = -np.log1p(-(np.arange(rows.size) + 0.5) / rows.size)
        gaps[rows[order], j] = q * (mean / float(q.mean()))
    return TurnWalk(walk.pmfs, walk.patterns, walk.seq, gaps, hash((walk.key, "exp", mean)),
                    walk.rest, walk.here)


# A turn's later launch meets the stationary level once this many bucket refill times
# (depth/refill) have passed since its previous one, or this many other launches.
_WALK_MEMORY = 5.0
_WALK_LAUNCHES = 24.0
# Gap classes per launch position (each its mean gap).
_WALK_BINS = 4
# A gap is carried over in 2**_WALK_SPLIT steps.
_WALK_SPLIT = 4


@dataclass
class BucketChain:
    """The refusal shares of a token bucket (``depth`` units, ``refill`` units per
    second) fed by Poisson launches whose calls have the law ``count`` (calls per
    launch) × ``call_pmf`` (charge of one call, lattice step ``h`` units)."""

    count: NDArray[np.float64]
    call_pmf: NDArray[np.float64]
    h: float
    refill: float
    depth: float
    retry: RetryModel
    # One launch per turn from a few sessions: their inter-launch law (see
    # :func:`closed_share`); None: Poisson launches.
    closed: ClosedSessions | None = None
    # Turns launching more than once from a few sessions (see :func:`follow_share`);
    # None: Poisson launches.
    follow: FollowSessions | None = None
    # Grid steps per mean call (0: from the depth, :func:`_steps_per_call`): set on the
    # two chains a depth between grid levels is interpolated from (:meth:`_bracket`).
    steps: int = 0
    # Share of the calls charged more than the depth (:func:`never_fit_stripped`):
    # ``call_pmf`` holds them as charged 0; their attempts are the caller's to add.
    never_fit: float = 0.0
    # The kinds of launch when there are several, each ``(share of the launches, calls
    # per launch, one call's charge law on the lattice h)``: a launch moves the level by
    # its own kind's calls (:func:`_mixed_grid`); () = one kind, ``count`` × ``call_pmf``.
    # ``count`` and ``call_pmf`` stay the pooled laws (the means, the retries' charge).
    kinds: tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...] = ()
    # Turns that go on when refused (``on_exhausted: continue``, no retries): the launch
    # a refused one brings at once (:class:`GoesOn`); None: none.
    goes_on: GoesOn | None = None
    # Turns launching here more than once, as sampled (:class:`TurnWalk`): each later
    # launch meets the level the turn's own earlier ones left; None: Poisson launches.
    walk: TurnWalk | None = None
    # Think-time sessions' mean cycle (s): a turn a refusal shortens brings its session
    # back sooner (:meth:`_load_factor`); 0: not modelled (a cadence keeps its clock).
    cycle_s: float = 0.0
    # A population's chain: its sampled turns (one launch a turn included) and mean
    # cycle (s), for the mix's load factor; the mix of populations' chain (:func:`capacity
    # .analytic.populations.blend_chain`): each ``(share of the launches, turns, mean
    # cycle s; 0: a cadence)``.
    factor_walk: tuple[TurnWalk, float] | None = None
    mix_walks: tuple[tuple[float, TurnWalk, float], ...] = ()
    _grids: list[_Grid] = field(default_factory=list, repr=False)
    _cache: dict[tuple[float, float], dict[str, float]] = field(default_factory=dict, repr=False)
    _pgrids: list[_Parts] = field(default_factory=list, repr=False)
    _cgrid: _Grid | None = field(default=None, repr=False)
    _fgrids: dict[int, tuple[_Grid, _Grid]] = field(default_factory=dict, repr=False)
    _brackets: tuple[BucketChain, BucketChain, float] | None = field(default=None, repr=False)
    # The fine grid's launches as told retries need them (:meth:`_told_shares`).
    _told_block: _ToldBlock | None = field(default=None, repr=False)
    # The pending chain's blocks from nothing pending at the last (grid, launch rate).
    _top: tuple[tuple[int, float], NDArray[np.float64], list[NDArray[np.float64]]] | None = (
        field(default=None, repr=False))
    # Level laws of fresh launches alone, by (grid, launch rate): the share and the
    # refusal by charge ask the same (:meth:`refused_by_charge`).
    _laws: dict[tuple[int, float], NDArray[np.float64]] = field(
        default_factory=dict, init=False, repr=False)

    def _bracket(self) -> tuple[BucketChain, BucketChain, float] | None:
        """A depth between two levels of the coarse grid: the chains at those two depths
        (on both grids) and the share of the step the depth lies above the lower one
        (None: the depth is on the grid, or the lower level holds no mean call).

        Each grid keeps the levels up to the depth, ``⌊b/δ⌋·δ``: a depth off the grid
        is cut by a different share of a step on the coarse and the fine grid, which
        the Richardson step (``2·fine − coarse``, for an error proportional to ``δ``)
        turns into a depth ``δ/2``–``δ`` too deep. hunt-97's 1.83-request bucket (110
        RPM, 1 s deep) was solved as 1.75 and 1.8125 requests deep, extrapolated to
        1.875: 4.3% of Poisson calls refused at 80 sessions where a Monte Carlo of the
        bucket and the engine refuse 4.9% (89 sessions against a simulated 81). The share
        is interpolated between the two depths instead, each on both grids — where the
        coarse grid has fewer than ``_BRACKET_LEVELS`` levels (a step more than ~4% of
        the depth; deeper, the cut moves no answer of the accuracy table and the two
        chains would double the cost: its 41.7-request buckets, 5 s deep at 500 RPM)."""
        if self.steps:
            return None
        if self._brackets is None:
            s = _steps_per_call(self.call_pmf, self.h, self.depth)
            mean = self.mean_charge
            if s <= 0 or mean <= 0:
                return None
            delta = mean / s
            k = self.depth / delta
            lo_k = math.floor(k + 1e-9)
            frac = k - lo_k
            if frac <= 1e-6 or lo_k * delta < mean or lo_k >= _BRACKET_LEVELS:
                self._brackets = (self, self, 0.0)
            else:
                def at(depth: float) -> BucketChain:
                    return replace(self, depth=depth, steps=s, _grids=[], _cache={},
                                   _pgrids=[], _cgrid=None, _fgrids={}, _top=None)

                self._brackets = (at(lo_k * delta), at((lo_k + 1) * delta), frac)
        lo, hi, f = self._brackets
        return None if lo is self else (lo, hi, f)

    def converged(self, lam: float) -> bool:
        """True when the coarse and fine grids agree at ``lam`` launches per second (the
        refusal share within 20%): the extrapolation is then in its O(δ) regime. A
        grid of one step per charge need not be (a refill step as long as a launch gap)."""
        seen: dict[float, bool] = self._shared().setdefault("converged", {})
        if lam not in seen:
            got = [self._solve(g, lam, 0.0)[0] for g in self.grids()]
            seen[lam] = abs(got[1] - got[0]) <= 0.2 * max(got[1], 1e-3)
        return seen[lam]

    def _shared(self) -> dict[str, Any]:
        """What this chain builds that depends only on its launch and charge laws, the
        bucket and the retries (its grids' operators; :data:`_CHAIN_GRIDS`), shared with
        every chain of the same: the think-time sweep and the joint ceiling build the
        chain again at other cycle times, whose laws are the same bit for bit (or it is
        built again)."""
        key = (self.count.tobytes(), self.call_pmf.tobytes(), self.h, self.refill,
               self.depth, self.steps, astuple(self.retry),
               tuple((w, k.tobytes(), c.tobytes()) for w, k, c in self.kinds),
               None if self.walk is None else self.walk.key,
               None if self.goes_on is None else (
                   self.goes_on.chance, self.goes_on.delay,
                   tuple((w, k.tobytes(), c.tobytes()) for w, k, c in self.goes_on.kinds)))
        hit = _CHAIN_GRIDS.get(key)
        return hit if hit is not None else remember(_CHAIN_GRIDS, key, {})

    @property
    def mean_charge(self) -> float:
        """Units one call charges, on average."""
        return float(np.dot(np.arange(self.call_pmf.size), self.call_pmf)) * self.h

    @property
    def mean_calls(self) -> float:
        """Calls per launch."""
        return float(np.dot(np.arange(self.count.size), self.count))

    def grids(self) -> list[_Grid]:
        """The coarse and fine grid operators (built once)."""
        if not self._grids:
            shared = self._shared()
            if "grids" not in shared:
                s = self.steps or _steps_per_call(self.call_pmf, self.h, self.depth)
                mean = float(np.dot(np.arange(self.call_pmf.size), self.call_pmf)) * self.h
                grids = []
                for k in (1, 2):
                    delta = mean / (s * k)
                    top = math.floor(self.depth / delta + 1e-9)
                    # A counted rejection takes one unit (requests buckets only).
                    counted = round(1.0 / delta) if self.retry.counts_rejected else 0
                    grids.append(self._launch_grid(delta, top, counted))
                shared["grids"] = grids
            self._grids = shared["grids"]
        return self._grids

    def closed_grid(self) -> _Grid:
        """The closed chain's grid: ``_CLOSED_STEPS`` steps per mean call at most (its
        solve is cubic in the levels; its error is the Poisson chain's on it)."""
        if self._cgrid is None:
            shared = self._shared()
            if "cgrid" not in shared:
                s = min(_steps_per_call(self.call_pmf, self.h, self.depth), _CLOSED_STEPS)
                delta = self.mean_charge / max(s, 1)
                top = math.floor(self.depth / delta + 1e-9)
                counted = round(1.0 / delta) if self.retry.counts_rejected else 0
                shared["cgrid"] = self._launch_grid(delta, top, counted)
            self._cgrid = shared["cgrid"]
        return self._cgrid

    def _launch_grid(self, delta: float, top: int, counted: int) -> _Grid:
        """The launch operators on the grid of ``top + 1`` levels ``delta`` units apart,
        each kind of launch by its own calls (:attr:`kinds`)."""
        pmf = _regrid(self.call_pmf, self.h, delta, top)
        if len(self.kinds) <= 1:
            return _grid(self.count, pmf, delta, top, counted)
        return _mixed_grid([(w, k, _regrid(c, self.h, delta, top)) for w, k, c in self.kinds],
                           pmf, delta, top, counted)

    def _goes_on_ops(self, k: int) -> tuple[NDArray[np.float64], ...]:
        """Grid ``k``'s launch operators with the launches refused turns bring (see
        :meth:`_goes_on_share`): (launch, refused calls, extra launches, extra calls),
        each per fresh launch by the level it finds."""
        shared = self._shared().setdefault("goes_on", {})
        hit = shared.get(k)
        if hit is not None:
            out: tuple[NDArray[np.float64], ...] = hit
            return out
        assert self.goes_on is not None
        g = self.grids()[k]
        top = g.top
        counted = round(1.0 / g.delta) if self.retry.counts_rejected else 0
        own = self.kinds or ((1.0, self.count, self.call_pmf),)
        F = sum((w * _refused_all(cn, _regrid(cp, self.h, g.delta, top), top, counted)
                 for w, cn, cp in own), np.zeros((top + 1, top + 1)))
        nxt = self.goes_on.kinds
        pooled = np.zeros(1)
        for w, cn, cp in nxt:   # one call's charge, pooled by the calls (the retries')
            pooled = _add(pooled, w * float(np.dot(np.arange(cn.size), cn)) * cp)
        pmf = _regrid(pooled / pooled.sum(), self.h, g.delta, top)
        grids = [(w, cn, _regrid(cp, self.h, g.delta, top)) for w, cn, cp in nxt]
        gn = _mixed_grid(grids, pmf, g.delta, top, counted)
        Fn = sum((w * _refused_all(cn, p, top, counted) for w, cn, p in grids),
                 np.zeros((top + 1, top + 1)))
        calls_n = sum(w * float(np.dot(np.arange(cn.size), cn)) for w, cn, _ in nxt)
        S = _shift(self.refill * self.goes_on.delay / g.delta, top)
        c = self.goes_on.chance
        eye = np.eye(top + 1)
        # The chain of next launches from a refused one: each comes with chance c, after
        # the refill S, and goes on only when every call of it is refused too.
        Mx = eye - c * (Fn @ S)
        X = np.linalg.solve(Mx, (1.0 - c) * eye + c * (gn.launch - Fn))
        more = np.linalg.solve(Mx, c * np.stack([gn.refused, np.ones(top + 1),
                                                  np.full(top + 1, calls_n)], axis=1))
        FS = F @ S
        ops = (g.launch - F + FS @ X, g.refused + FS @ more[:, 0], FS @ more[:, 1],
               FS @ more[:, 2])
        shared[k] = ops
        return ops

    def _goes_on_share(self, lam: float) -> float:
        """Share of calls refused, no retries, when a launch every call of which is
        refused brings its turn's next launch at once (:class:`GoesOn`). The launches
        are Poisson at ``lam`` per second in all, those brought among them: the fresh
        stream is ``lam / (1 + E[brought per fresh launch])`` (two passes). Extrapolated
        from both grids as the Poisson share is. Without it a tool loop of 3,300–10,000
        -token calls at a bucket 37,406 deep (hunt seed 3, ``continue``) was refused
        1.3 % of its calls at 70 sessions where the engine refuses 2.0 % (0.74 % when
        the turns abort)."""
        got = []
        for k, g in enumerate(self.grids()):
            launch, refused, extra, calls = self._goes_on_ops(k)
            fresh = lam
            for _ in range(3):
                pi = _stationary(np.einsum("ij,jk->ik", launch,
                                           _refill(fresh, self.refill, g.delta, g.top)))
                fresh = lam / (1.0 + float(pi @ extra))
            got.append(float(pi @ refused) / (self.mean_calls + float(pi @ calls)))
        return min(1.0, max(0.0, 2.0 * got[1] - got[0]))

    def _walk_ops(self, k: int, walk: TurnWalk | None = None
                  ) -> tuple[list[NDArray[np.float64]], ...]:
        """Grid ``k``'s operators of the turn walk (``walk``, default the chain's own):
        each launch pattern's move and its expected refused calls by level, and the
        powers ``L^0 … L^K`` of the launch move (the others' launches during a gap)."""
        walk = self.walk if walk is None else walk
        assert walk is not None
        shared = self._shared().setdefault(
            "walk" if walk is self.walk else f"walk {walk.key}", {})
        hit = shared.get(k)
        if hit is not None:
            out: tuple[list[NDArray[np.float64]], ...] = hit
            return out
        g = self.grids()[k]
        top = g.top
        counted = round(1.0 / g.delta) if self.retry.counts_rejected else 0
        calls = [_call_matrix(_regrid(p, self.h, g.delta, top), top, counted)
                 for p in walk.pmfs]
        moves, refused = [], []
        for row in walk.patterns:
            A = np.eye(top + 1)
            R = np.zeros(top + 1)
            for spec, x in enumerate(row):
                M, r = calls[spec]
                for _ in range(int(x)):
                    R = R + A @ r
                    A = A @ M
            moves.append(A)
            refused.append(R)
        powers = [np.eye(top + 1)]
        for _ in range(math.ceil(_WALK_LAUNCHES * 3.0)):
            powers.append(powers[-1] @ g.launch)
        shared[k] = ops = (moves, refused, [np.array(powers)])
        return ops

    def _follow_share(self, law: FollowSessions, n: int, lam: float,
                      abort: float | None = None) -> float:
        """The follow chain's share (:func:`follow_share`) scaled by the shape of a
        turn's gaps (:meth:`_gap_shape`)."""
        return min(1.0, follow_share(self, law, n, lam, abort=abort)
                   * self._gap_shape(law, lam))

    def _gap_shape(self, law: FollowSessions, lam: float) -> float:
        """What the shape of a turn's gaps does to its launches' refusal share, for the
        follow chain (:func:`follow_share`), whose gaps are exponential: the turn walk's
        share with the sampled gaps over the same walk with each position's gaps
        exponential of the chain's mean (:meth:`_exponential_gaps`) — both with Poisson
        others, so the ratio is the gaps' shape alone. A chain's next call comes its
        predecessor's latency later, seldom before the bucket has refilled what that
        call took; exponential gaps bring a fifth of them within a quarter of the mean.
        hunt-2057 (a 900-token call, then with chance 0.72 a 6,000-token one ~1.2 s
        later, at a TPM bucket 1 s deep, 17 sessions, no retries): the follow chain
        3.29 % refused, 3.01 % so corrected, the engine 2.91 % [2.85–2.97] (40 × 1 h)
        and 3.19 % with Poisson turns. 1 where there is no walk."""
        if self.walk is None or law.gap <= 0.0:
            return 1.0
        key = f"gap-shape {law.gap!r}"
        exp = self._shared().get(key)
        if exp is None:
            exp = self._shared()[key] = _exponential_gaps(self.walk, law.gap)
        sampled = self._walk_share(lam)
        shaped = self._walk_share(lam, exp)
        return sampled / shaped if shaped > 0.0 and sampled > 0.0 else 1.0

    def _walk_share(self, lam: float, walk: TurnWalk | None = None) -> float:
        """Share of calls refused, no retries, when each sampled turn's launches here
        come as sampled (:class:`TurnWalk`): its first meets the level a Poisson launch
        finds; each later one the level its turn's previous launch left, carried over
        the gap — the refill ``r·g`` around the others' Poisson launches in it
        (half the refill, the launches, the other half) — or the stationary law after
        ``_WALK_MEMORY`` refill times or ``_WALK_LAUNCHES`` others' launches.
        Walked on the coarse grid, then scaled by the Poisson share over the same walk
        with every launch meeting the stationary level there (the grid's error and the
        sample's taken out together; the fine grid cost eight times as much: hunt seed
        211 spent 0.57 of its 0.78 s there). A turn's calls a second
        apart at a bucket remembering two: Poisson launches miss that its second call
        meets the level its first left (hunt seed 2031: 0.56 % refused at 12 sessions
        against the engine's 0.75 %), the follow chain's exponential gaps bring half the
        second calls within 0.3 s where none come before 1.1 s (1.5 % where the engine
        refuses 0.60 %)."""
        walk = self.walk if walk is None else walk
        assert walk is not None
        memory = self.depth / self.refill
        g = self.grids()[0]
        moves, refused, (powers,) = self._walk_ops(0)
        pi = self._level_law(g, lam, 0.0)
        law = np.tile(pi, (walk.weight.size, 1))
        ref = alone = 0.0
        for j, (bins, launches) in enumerate(walk.columns):
            for rows, gap in bins:
                if gap >= _WALK_MEMORY * memory or lam * gap >= _WALK_LAUNCHES:
                    law[rows] = pi
                else:
                    law[rows] = law[rows] @ self._carry(g, powers, lam, gap)
            for p, rows in launches:
                ref += float((law[rows] @ refused[p]) @ walk.weight[rows])
                alone += float(pi @ refused[p]) * float(walk.weight[rows].sum())
                if j + 1 < len(walk.columns):
                    law[rows] = law[rows] @ moves[p]
        if alone <= 0.0:
            return self.poisson_share(lam) if ref <= 0.0 else min(1.0, ref / walk.calls)
        return min(1.0, max(0.0, self.poisson_share(lam) * ref / alone))

    def _load_factor(self, p: float, lam: float | None = None) -> float:
        """Launches a second with a share ``p`` of calls refused (no retries), over those
        without: a turn ends at its first refused launch (``abort_turn``: its later
        launches are not made, and it ends a rejection latency after that launch rather
        than at its latency) or a refused launch — every call of it — returns at once
        and the turn goes on (``continue``: the launch's gap to the turn's next one, or
        to its end, shrinks to the rejection latency); either way its think-time
        session starts its next turn sooner, ``C/(C − saved)``. Seed 3 of the hunt
        (tool loops of 15 s calls, ``continue``): 4 % refused saves ~3 s of a 60 s
        cycle, at 84 % of the refill. With ``lam`` (launches a second) each launch is
        refused by its own charge (:meth:`_pattern_shares`): the large calls, refused
        most, are often the long ones — hunt-3 reduced to a 2,304-token call and a
        7,307-token one lasting 21 s (``python benchmarks/session40_probes.py pair``):
        at 120 sessions the engine runs 4.15 turns a second where the unthrottled cycle
        gives 3.70, and refuses 8.2 % where the model without this said 5.1 %."""
        if self.mix_walks:
            return self._mixed_factor(p, lam)
        w = self.walk
        if w is None or self.cycle_s <= 0.0 or w.rest.size == 0 or p <= 0.0:
            return 1.0
        return shortened_factor(w, self.cycle_s, p if lam is None
                                else self._pattern_shares(p, lam), self.retry.abort_turn,
                                self.retry.rejection_latency_s or 0.0)

    def _mixed_factor(self, p: float, lam: float | None) -> float:
        """:meth:`_load_factor` of a mix of populations (:attr:`mix_walks`): each
        population's launches sped up by its own turns' refusals, ``Σ a_i·F_i/Σ a_i``
        by the launches. Each launch pattern is refused by its own charge at the level
        the mix's launches leave (with ``lam``), one scale over all the populations so
        that their calls average ``p`` — a population of large calls is refused more
        (hunt-3: 7,127-token single calls beside 3,700-token fan-outs)."""
        if p <= 0.0:
            return 1.0
        pi = None if lam is None else self._level_law(self.grids()[0], lam, 0.0)
        raws, calls, seen = [], [], []
        for _, w, _ in self.mix_walks:
            k = w.patterns.sum(axis=1).astype(np.float64)
            n = np.bincount(w.seq[w.seq >= 0], minlength=k.size).astype(np.float64)
            n /= max(float(n.sum()), 1.0)                # per launch of this population
            raw = k if pi is None else np.array(
                [float(pi @ r) for r in self._walk_ops(0, w)[1]])
            raws.append(raw)
            calls.append(k)
            seen.append(n)
        made = math.fsum(a * float(n @ k) for (a, _, _), n, k
                         in zip(self.mix_walks, seen, calls, strict=True))
        lost = math.fsum(a * float(n @ r) for (a, _, _), n, r
                         in zip(self.mix_walks, seen, raws, strict=True))
        scale = p * made / lost if lost > 0.0 else 0.0
        num = den = 0.0
        for (a, w, cyc), r, k in zip(self.mix_walks, raws, calls, strict=True):
            den += a
            if cyc <= 0.0 or w.rest.size == 0 or scale <= 0.0:
                num += a
                continue
            share = np.clip(r / np.maximum(k, 1.0) * scale, 0.0, 1.0)
            num += a * shortened_factor(w, cyc, share, self.retry.abort_turn,
                                        self.retry.rejection_latency_s or 0.0)
        return num / den if den > 0.0 else 1.0

    @property
    def _shortens(self) -> bool:
        """Whether refused turns bring their sessions back sooner here (a think-time
        session's walk, or a mix of populations')."""
        return bool(self.mix_walks) or (self.cycle_s > 0.0 and self.walk is not None)

    def _pattern_shares(self, p: float, lam: float) -> NDArray[np.float64]:
        """Each launch pattern's share of calls refused (:class:`TurnWalk`'s
        ``patterns``): the level Poisson launches at ``lam`` a second find, against
        each pattern's calls (coarse grid), scaled so that the sampled turns' calls
        average ``p``."""
        assert self.walk is not None
        pi = self._level_law(self.grids()[0], lam, 0.0)
        _, refused, _ = self._walk_ops(0)
        return scaled_pattern_shares(self.walk, np.array([float(pi @ r) for r in refused]),
                                     p)

    def _shortened(self, share: Callable[[float], float], lam: float) -> float:
        """``share`` (a no-retry refusal share by launch rate) at the rate its own
        refusals make (:meth:`_load_factor`): a few fixed-point passes from ``lam``."""
        p = share(lam)
        if not self._shortens:
            return p
        return settled(p, lambda f: share(lam * f), lambda q: self._load_factor(q, lam))

    def _shortened_sessions(self, share: Callable[[int], float], n: int,
                            lam: float) -> float:
        """``share`` (a no-retry refusal share by sessions, as the closed and follow
        chains take them) at the sessions whose launches its own refusals make
        (:meth:`_load_factor`): as many more sessions at the unthrottled cycle, the
        share between the two whole counts about them taken linearly."""
        p = share(n)
        if not self._shortens:
            return p
        # The passes ask the same whole counts again as the factor settles.
        seen = {n: p}

        def one(k: int) -> float:
            if k not in seen:
                seen[k] = share(k)
            return seen[k]

        def at(x: float) -> float:
            # (A turn ended early skips its later launches: fewer than n sessions'
            # launches can be the answer, never fewer than one session's.)
            x = max(x, 1.0)
            lo = math.floor(x)
            f = x - lo
            a = one(lo)
            return a if f < 1e-9 else (1.0 - f) * a + f * one(lo + 1)

        return settled(p, lambda f: at(n * f), lambda q: self._load_factor(q, lam))

    def _carry(self, g: _Grid, powers: NDArray[np.float64], lam: float,
               gap: float) -> NDArray[np.float64]:
        """Level → level over ``gap`` seconds: ``2^_WALK_SPLIT`` equal steps, each half
        its refill, the others' Poisson launches in it (``Σ P(k)·L^k``), the other half
        (Strang's splitting of the refill and the launches; one step of the whole gap
        gave every launch in it half the gap's refill after it, where one just before
        the next launch has none: the bucket came back too full)."""
        steps = 1 << _WALK_SPLIT
        mu = lam * gap / steps
        # Poisson(μ) past μ + 8√μ + 8 holds under 1e-9: those powers need no weight.
        ks = np.arange(min(len(powers), math.ceil(mu + 8.0 * math.sqrt(mu) + 9.0)))
        logw = -mu + ks * math.log(max(mu, 1e-300)) - np.array(
            [math.lgamma(x + 1.0) for x in ks])
        w = np.exp(logw) if mu > 0 else (ks == 0).astype(np.float64)
        w[-1] += max(0.0, 1.0 - float(w.sum()))
        B = np.tensordot(w, powers[: ks.size], axes=1)
        S = _shift(self.refill * gap / steps / 2.0 / g.delta, g.top)
        out: NDArray[np.float64] = S @ B @ S
        for _ in range(_WALK_SPLIT):
            out = out @ out
        return out

    def _level_law(self, g: _Grid, lam: float, lam_r: float) -> NDArray[np.float64]:
        """Law of the level (grid steps of ``g``) a launch finds, with fresh launches at
        ``lam`` and retries at ``lam_r`` per second."""
        key = (id(g), lam)
        if lam_r == 0.0 and key in self._laws:
            return self._laws[key]
        tot = lam + lam_r
        launch = (lam * g.launch + lam_r * g.retry) / tot
        pi = _stationary(np.einsum("ij,jk->ik", launch,
                                   _refill(tot, self.refill, g.delta, g.top)))
        if lam_r == 0.0:
            if len(self._laws) >= 256:
                self._laws.clear()
            self._laws[key] = pi
        return pi

    def _solve(self, g: _Grid, lam: float, lam_r: float) -> tuple[float, float]:
        """(fresh calls' refusal share, retries' refusal share) with fresh launches at
        ``lam`` and retries at ``lam_r`` per second."""
        pi = self._level_law(g, lam, lam_r)
        return (float(pi @ g.refused) / self.mean_calls, float(pi @ g.retry_refused))

    def refused_after(self, lam: float, units: NDArray[np.float64],
                      delays: tuple[float, ...]) -> NDArray[np.float64]:
        """``out[k, i]``: the chance a lone call charging ``units[i]`` that was refused
        is refused again ``delays[k]`` seconds later (no retries of its own meanwhile),
        with Poisson launches at ``lam`` per second: the level it was refused at (the
        launch law's, below the charge) carried forward by the chain in continuous time
        — the refill one grid step at ``r/δ`` a second, launches at ``lam`` — on the
        fine grid, each charge split between the two grid levels around it as the chain
        splits the calls' law. A backoff shorter than the time the level needs to build
        up to a large charge finds it short again, where a fresh call of that charge is
        refused only by the level's time average."""
        g = self.grids()[1]
        return _refused_again(self._level_law(g, lam, 0.0), g.launch, g.delta, self.refill,
                              lam, units, delays)

    def refused_by_charge(self, lam: float, units: NDArray[np.float64]
                          ) -> NDArray[np.float64]:
        """The chance a lone call charging ``units`` (any charges, units) is refused
        with Poisson launches at ``lam`` per second and no retries: ``P(L < charge)`` for
        the level ``L`` a launch finds, each charge split between the two grid levels
        around it as the chain splits the calls' law (:func:`_regrid`), a charge past
        the depth always refused; extrapolated from both grids as the share is."""
        return _refused_below([(self._level_law(g, lam, 0.0), g.delta) for g in self.grids()],
                              units, self.depth)

    def _herd(self, g: _Grid, lam: float) -> NDArray[np.float64]:
        """(fresh attempts, fresh refused, retries, retries refused, failed) per launch
        instant when retries honour the retry-after (see :meth:`shares`)."""
        n = g.top + 1
        m = self.retry.max_retries
        ek = self.mean_calls
        b = max(1, round(self.mean_charge / g.delta))            # one call's charge, steps
        tick = b * g.delta / self.refill                    # seconds between herd instants
        G = _refill(lam, self.refill, g.delta, g.top)
        # Before the first herd instant: fresh calls during the (b − level)/r the level
        # takes to reach the charge from where the refusing launch left it (all refused).
        mu_pre = lam * ek * np.maximum(b - np.arange(n), 0) * g.delta / self.refill
        pre = _poisson_rows(mu_pre, _HERD + 1)              # level → calls joining
        ref = g.launch - g.clean                            # outcomes with a refusal
        p_ref = ref.sum(axis=1)
        r_calls = np.where(p_ref > 1e-300, g.refused / np.maximum(p_ref, 1e-300), 1.0)
        seed = np.zeros((n, _HERD + 1))                     # refused calls of the launch
        lo = np.clip(np.floor(r_calls).astype(np.int64), 1, _HERD)
        frac = np.clip(r_calls - lo, 0.0, 1.0)
        seed[np.arange(n), lo] += 1.0 - frac
        seed[np.arange(n), np.minimum(lo + 1, _HERD)] += frac
        herd0 = np.einsum("jl,lh->jh", ref, pre)            # launch → (level, joiners)
        # The herd a refusing launch starts: its refused calls (seed) plus the joiners.
        start = np.einsum("jk,jkh->jh", seed, _shifts(herd0))
        # The herd is a queue: calls told the same instant come back in the order they
        # were refused, so at each instant the oldest is admitted and the rest refused
        # again. A call joining behind v calls that will be admitted is admitted at the
        # (v + 1)-th instant; with v ≥ m it runs out of retries first (refused m times,
        # then fails) and never holds up a later one. So the state is v ≤ m, the calls
        # the queue will still admit (the doomed are counted when they join); the calls
        # of the fresh launches before the next instant join (all refused: the level is
        # below a charge until then). (A bucket counting its rejections is not a herd:
        # :meth:`_pending`.)
        join = _poisson_rows(np.array([lam * ek * tick]), _HERD + 1)[0]
        ks = np.arange(_HERD + 1)
        v_all = np.arange(1, m + 1)                         # the queue before the instant
        nxt = np.zeros((m, m + 1))                          # v → v' (one admitted, joiners)
        for v in v_all:
            np.add.at(nxt[v - 1], np.minimum(v - 1 + ks, m), join)
        doomed = np.maximum(ks[None, :] - (m - v_all[:, None] + 1), 0) @ join
        size = n + m
        T = np.zeros((size, size))
        T[:n, :n] = np.einsum("ij,jk->ik", g.clean, G)
        vs = np.minimum(ks, m)
        start_v = np.zeros((n, m + 1))
        for h in range(_HERD + 1):
            start_v[:, vs[h]] += start[:, h]
        start_doomed = start @ np.maximum(ks - m, 0).astype(np.float64)
        T[:n, n:] = start_v[:, 1:]
        T[:n, :n] += start_v[:, :1] * G[0][None, :]
        T[n:, n:] = nxt[:, 1:]
        # A herd ends when no call joined in the tick after its last instant: the level
        # is back at one charge by then, and rises on to the next fresh launch.
        T[n:, :n] = nxt[:, :1] * G[min(b, g.top)][None, :]
        pi = _censored(T, n)
        fresh_pre = np.einsum("jl,l->j", ref, mu_pre)       # joiners before the instant
        fresh = ek + fresh_pre
        fresh_ref = g.refused + fresh_pre
        herd_fresh = lam * ek * tick
        fresh_all = float(pi[:n] @ fresh) + float(pi[n:].sum()) * herd_fresh
        fresh_refused = float(pi[:n] @ fresh_ref) + float(pi[n:].sum()) * herd_fresh
        # Retries: the queue's calls at each instant (one admitted), and the doomed, m
        # refused retries each when they join.
        gone = float(pi[:n] @ start_doomed) + float(pi[n:] @ doomed)
        retries = float(pi[n:] @ v_all) + m * gone
        retries_ref = float(pi[n:] @ (v_all - 1)) + m * gone
        failed = gone
        return np.array([fresh_all, fresh_refused, retries, retries_ref, failed])

    def shares(self, lam: float, sessions: float = math.inf) -> dict[str, float]:
        """429 shares at ``lam`` launches per second from ``sessions`` sessions:
        ``attempt`` (of all attempts), ``call`` (fresh attempts), ``failed`` (calls
        refused on every try) and ``retry_share`` (retried attempts per call)."""
        hit = self._cache.get((lam, sessions))
        if hit is not None:
            return hit
        br = self._bracket()
        if br is not None:
            lo, hi, f = br
            a, b = lo.shares(lam, sessions), hi.shares(lam, sessions)
            out = {k: (1.0 - f) * a[k] + f * b[k] for k in a}
            self._cache[lam, sessions] = out
            return out
        m = self.retry.max_retries
        if m == 0 and self.goes_on is not None and self.goes_on.chance > 0.0:
            p = self._shortened(self._goes_on_share, lam)
            out = {"attempt": p, "call": p, "failed": p, "retry_share": 0.0}
            self._cache[lam, sessions] = out
            return out
        law = self.closed if self.closed is not None else self.follow
        if law is not None and m == 0 and _kept(self, law, sessions):
            n = round(sessions)

            def by(k: int) -> float:
                # k sessions launch at k/n of the rate n do (the grid's correction).
                assert law is not None
                return (closed_share(self, law, k, lam * k / n)
                        if isinstance(law, ClosedSessions)
                        else self._follow_share(law, k, lam * k / n))

            p = self._shortened_sessions(by, n, lam)
            out = {"attempt": p, "call": p, "failed": p, "retry_share": 0.0}
            self._cache[lam, sessions] = out
            return out
        if m == 0 and self.walk is not None:
            # Where the follow chain does not reach (a cadence, more sessions than it
            # keeps): Poisson launches, but each turn's later launches meet the level its
            # earlier ones left. (The follow chain's exponential gaps err high, the walk's
            # Poisson others low — hunt seed 1018: follow 1.3 %, walk 0.42 %, the engine
            # 0.80 % at 7 sessions — so the follow chain keeps the sessions it holds.)
            p = self._shortened(self._walk_share, lam)
            out = {"attempt": p, "call": p, "failed": p, "retry_share": 0.0}
            self._cache[lam, sessions] = out
            return out
        out = self._poisson_shares(lam, sessions)
        if (law is not None and m > 0
                and not (self._told and isinstance(law, ClosedSessions))
                and _kept(self, law, sessions)):
            out = self._sessions_fresh(out, law, round(sessions), lam)
        elif m > 0 and self.walk is not None:
            # The walk's fresh refusals, the retries scaled with them (as the follow
            # chain's are).
            walked = self._walk_share(lam)
            told = self._told_shares(lam, walked) if self._told_spread else None
            out = (told if told is not None
                   else self._fresh_moved(out, walked, lam, sessions))
        self._cache[lam, sessions] = out
        return out

    def poisson_share(self, lam: float) -> float:
        """Share of calls refused with Poisson launches at ``lam`` per second and no
        retries (extrapolated from both grids; remembered per rate)."""
        hit = self._cache.get((lam, -1.0))
        if hit is None:
            got = [self._solve(g, lam, 0.0)[0] for g in self.grids()]
            hit = self._cache[lam, -1.0] = {"call": min(1.0, max(0.0, 2.0 * got[1] - got[0]))}
        return hit["call"]

    def _sessions_fresh(self, out: dict[str, float], law: ClosedSessions | FollowSessions,
                        n: int, lam: float) -> dict[str, float]:
        """The retry model's shares ``out`` (Poisson launches) with its fresh calls'
        refusal share moved by what the sessions' own launch pattern does to it without
        retries — the closed loop (:func:`closed_share`) or a turn's calls following
        one another (:func:`follow_share`) against Poisson launches at the same rate —
        and the retries scaled with the calls they retry (each refused call keeps its
        retries, their refusal share and its chance to fail, as the retry model has
        them). With retries a turn ends at a refused call only when the call fails
        after its retries (``abort_turn``): the follow chain's abort share is the
        failed share of refused calls.

        hunt-203 (four-call chains, SDK retries, a 7.7-request bucket): Poisson launches
        refuse 0.27 % of fresh calls at 22 sessions where the engine refuses 0.59 %, and
        every retry there is refused too (22 against a simulated 19 [18–19]; now 18).
        hunt-53 (three-call chains at ITPM/OTPM buckets 5 s deep): 55 against 49
        [47–50], now 51 — the engine's fresh refusals rise along the chain (0.45 %,
        1.04 %, 1.71 % by call at 53 sessions) where the follow chain's do not.
        hunt-56 (one call, 0.1 s backoffs): the closed loop takes the fresh refusals
        from 1.04 % to 0.71 % at 16 sessions (the engine: 2.2 % of attempts there, 16
        against a simulated 17 [16–17]). With the orbit's retries too, since they push
        the fresh calls where they come back (:func:`clustered_ratio`; before it the
        Poisson launches' extra fresh refusals stood in for that push, and the closed
        loop said 39 against 37 [36–40] for the table's 600k ITPM bucket 1 s deep): there
        at 36 sessions the engine refuses 0.835 % ± 0.011 of fresh calls (400 h), 0.787 %
        without the retries; the closed loop moved by the push 0.845 %, the Poisson orbit
        0.887 %. Not the closed loop with told retries at a counting requests bucket (:attr:`_told`;
        its follow chain moves them, hunt-203 above): the closed loop
        is right there without retries (tests/data/bucket-told-counted at 59: the engine
        refuses 1.67 % of calls, the closed chain 1.71 %, Poisson launches 1.80 %), but
        the told retry model falls short of the retries' own push on the fresh calls
        (+0.38 points over no retries in the model, +0.56 in the engine, 2.23 % in all;
        retries refused 78 % against 87 %), which Poisson launches' extra fresh
        refusals made up — the closed loop there said 59 against 57 [56–58]."""
        p, failed = out["call"], out["failed"]
        if isinstance(law, ClosedSessions):
            own = closed_share(self, law, n, lam)
        else:
            ab = min(1.0, failed / p) if law.abort and p > 0.0 else 0.0
            if law.abort:
                # The share of refused calls that fail, where the retry model refuses
                # next to nothing, read where it refuses as the sessions do (as
                # _fresh_moved reads the retries): failed / p of a few 1e-6 swung from 0
                # (p = 0) to 1, halving the answer between 1,408 and 1,412 sessions.
                free = self._follow_share(law, n, lam, abort=0.0)
                if p <= 0.0 or free > _RATIO_READ * p:
                    at = self._matched_shares(free, lam, n)
                    if at is not None and at["call"] > 0.0:
                        ab = min(1.0, at["failed"] / at["call"])
            own = self._follow_share(law, n, lam, abort=ab)
        if self._told_spread:
            # Told retries multiply the fresh refusals the sessions make without them
            # (:meth:`_told_shares`), as they do Poisson launches': hunt-53's three-call
            # chains at 49 sessions, where the follow chain says 0.30 % refused without
            # retries (the engine 0.27 %), the engine 0.62 % with them — moved by the
            # told model's Poisson 0.043 % -> 0.094 %, 0.41 %; scaled, 0.65 %.
            told = self._told_shares(lam, own)
            if told is not None:
                return told
        return self._fresh_moved(out, own, lam, n)

    def _fresh_moved(self, out: dict[str, float], own: float, lam: float,
                     sessions: float) -> dict[str, float]:
        """The retry model's shares ``out`` with its fresh refusal share moved by
        ``own − poisson``: ``own``, the fresh calls' refusal share without retries under
        the sessions' own launch pattern, against Poisson launches' (see
        :meth:`_sessions_fresh`)."""
        p, rs, att, failed = out["call"], out["retry_share"], out["attempt"], out["failed"]
        poisson = self.poisson_share(lam)
        shift = own - poisson
        if self._orbit and poisson < 1.0:
            # The orbit's share carries its retries' push on top of the Poisson one: the
            # shift fades as that share nears 1 (a review: rpm 300 counted, the sweep
            # fell 0.92 -> 0.84 from 250 to 500 sessions, the engine 0.94 at 500).
            shift *= max(0.0, 1.0 - p) / (1.0 - poisson)
        fresh = min(1.0, max(0.0, p + shift))
        if (p <= 0.0 or fresh > _RATIO_READ * p) and fresh > 0.0:
            # The retry model refuses next to nothing at this rate where the sessions'
            # own pattern refuses ``fresh``: its retries per refused call (a few 1e-5 of
            # fresh calls, extrapolated over two grids) are noise, and scaled by
            # fresh / p they swung — a review's three-call chains at a 110 RPM bucket
            # with backoff retries, 1,404 / 1,412 / 1,420 sessions: 0.59 / 14.3 / 4.4 %
            # of attempts refused, the engine ~2.3 %. Read per refused call where the
            # retry model itself refuses ``fresh``.
            at = self._matched_shares(fresh, lam, sessions)
            if at is not None:
                p, rs, att, failed = (at["call"], at["retry_share"], at["attempt"],
                                      at["failed"])
        if p <= 0.0:
            return {"attempt": fresh, "call": fresh, "failed": fresh, "retry_share": 0.0}
        k = fresh / p
        # The retries' refusal share, from the attempts' (refused attempts over all).
        pr = (att * (1.0 + rs) - p) / rs if rs > 0.0 else 0.0
        rs2 = rs * k
        return {"attempt": min(1.0, (fresh + rs2 * pr) / (1.0 + rs2)), "call": fresh,
                "failed": min(1.0, failed * k), "retry_share": rs2}

    def _matched_shares(self, fresh: float, lam: float, sessions: float
                        ) -> dict[str, float] | None:
        """The retry model's shares (:meth:`_poisson_shares`) at the launch rate, at
        least ``lam``, where its fresh calls' refusal share comes nearest ``fresh``
        (geometric bisection, ``_RATIO_STEPS`` solves, up to ``_RATIO_REACH`` times
        ``lam``); None where none refuses any."""
        lo, hi = 1.0, _RATIO_REACH
        top = self._poisson_shares(lam * hi, sessions)
        if top["call"] <= fresh:
            return top if top["call"] > 0.0 else None
        best = top
        for _ in range(_RATIO_STEPS):
            mid = math.sqrt(lo * hi)
            got = self._poisson_shares(lam * mid, sessions)
            if got["call"] < fresh:
                lo = mid
            else:
                hi, best = mid, got
        return best

    @property
    def _short_backoff(self) -> bool:
        """Backoff retries (not waiting for the retry-after) whose first delay refills at
        most ``_NEAR`` of the depth: they come back to a bucket still short."""
        return bool(self.retry.backoff_s) and (
            self.refill * self.retry.backoff_s[0] <= _NEAR * self.depth)

    @property
    def _orbit(self) -> bool:
        """Retries modelled as the orbit (one more launch each, meeting the average
        level): backoff retries long enough for the bucket to recover."""
        return (self.retry.max_retries > 0 and not self.retry.honour_retry_after
                and not self._short_backoff)

    def _poisson_shares(self, lam: float, sessions: float) -> dict[str, float]:
        """:meth:`shares` with launches Poisson (``sessions``: the pending chain's)."""
        m = self.retry.max_retries
        short = self._short_backoff
        if m > 0 and (short or (self.retry.counts_rejected
                                and self.retry.honour_retry_after)):
            # A refusal empties a counting bucket, and leaves any bucket short of the
            # charge: a retry after a short backoff comes back to it still short (the
            # orbit, retries meeting the average level, said 21 sessions for a 4.7-call
            # bucket and a 0.1 s backoff against 16 [15-16] simulated).
            # (A backoff during which the bucket refills more than a third of its depth
            # brings it back to a level nearly independent of the one that refused it:
            # the orbit below; the pending chain's exponential delays would bring a
            # share back early instead, to a level not yet recovered.)
            return self._backoff_shares(lam, sessions)
        told = self._told_shares(lam) if self._told_spread else None
        if told is not None:
            return told
        if m > 0 and self.retry.honour_retry_after:
            # Retries told to wait until their charge fits come back together (a herd):
            # the bucket serves one of them per charge's worth of refill while the herd
            # lasts, and turns away every fresh call meanwhile.
            herds = [self._herd(g, lam) for g in self.grids()]
            v = 2.0 * herds[1] - herds[0]
            fa, fr, ra, rr, fl = (max(0.0, float(x)) for x in v)
            out = {"attempt": min(1.0, (fr + rr) / max(fa + ra, 1e-300)),
                   "call": min(1.0, fr / max(fa, 1e-300)),
                   "failed": min(1.0, fl / max(fa, 1e-300)),
                   "retry_share": ra / max(fa, 1e-300)}
            return out
        p = pr = 0.0
        per = 0.0
        chain = (self._retry_refusals(lam) if m > 0 and not self.retry.honour_retry_after
                 else None)
        each = np.zeros(0)
        for _ in range(16 if m > 0 else 1):  # from below: the least fixed point
            lam_r = lam * self.mean_calls * per
            got = [self._solve(g, lam, lam_r) for g in self.grids()]
            p = min(1.0, max(0.0, 2.0 * got[1][0] - got[0][0]))
            pr = min(1.0, max(0.0, 2.0 * got[1][1] - got[0][1]))
            if chain is not None:
                # Each retry's chance given the tries before refused, at least the
                # average level's; retry k is made with the chance all before it were.
                prev = np.concatenate([[1.0], chain[:-1]])
                each = np.maximum(np.where(prev > 0.0, chain / np.maximum(prev, 1e-300),
                                           0.0), pr)
                reach = np.cumprod(np.concatenate([[1.0], each[:-1]]))
                new = p * float(reach.sum())
            else:
                new = p * attempts_per_call(pr, m - 1) if m > 0 else 0.0
            if abs(new - per) <= 1e-6 + 1e-4 * per:
                per = new
                break
            per = new
        if chain is not None:
            if per > 0.0:
                # The retries come back to the low levels a backoff after a refusal, not
                # to the average one: the fresh calls' share that makes (one pass).
                g = self.grids()[1]
                p = min(1.0, p * clustered_ratio(
                    self._level_law(g, lam, 0.0), g.launch, g.refused, g.retry, g.delta,
                    self.refill, lam, lam * self.mean_calls * per,
                    _backoff_gaps(self.retry)[0], _WALK_MEMORY * self.depth / self.refill))
                per = p * float(np.cumprod(np.concatenate([[1.0], each[:-1]])).sum())
            all_refused = np.cumprod(each)               # retry k refused, and all before
            refused = p * float(all_refused.sum())
            attempt = (p + refused) / (1.0 + per)
            return {"attempt": min(1.0, attempt), "call": p,
                    "failed": p * float(all_refused[-1]), "retry_share": per}
        attempt = (p + per * pr) / (1.0 + per)
        out = {"attempt": min(1.0, attempt), "call": p,
               "failed": p * pr ** m if m > 0 else p, "retry_share": per}
        return out

    @cached_property
    def _told_spread(self) -> bool:
        """Retries told the retry-after at a bucket that does not count refusals, the
        charges spread (:func:`spreads`): :meth:`_told_shares`, not the herd."""
        return (self.retry.max_retries > 0 and self.retry.honour_retry_after
                and not self.retry.counts_rejected and spreads(self.call_pmf, self.h))

    def _told_shares(self, lam: float, own: float | None = None
                     ) -> dict[str, float] | None:
        """:meth:`_poisson_shares` with told retries where the charges spread: the
        fresh calls' share without retries — ``own``, the sessions' own, else Poisson
        launches' (both grids, extrapolated) — moved by what the retries do to it on the
        fine grid (:func:`told_shares`, the whole bucket its block), the retries' own
        refusals per fresh call refused from there; None where that has no fixed point
        (the herd answers)."""
        g = self.grids()[1]
        if self._told_block is None:
            kinds = self.kinds or ((1.0, self.count, self.call_pmf),)
            parts = []
            for w, count, call in kinds:
                f = _regrid(call, self.h, g.delta, g.top)
                parts.append((w, count, f, _call_matrix(f, g.top, 0)[0]
                              if count.size > 2 else np.zeros((0, 0))))
            self._told_block = _ToldBlock(g.launch, parts)
        pi = np.zeros(g.top + 1)
        pi[-1] = 1.0
        m = self.retry.max_retries
        got = told_shares(self._told_block, pi, g.top, np.zeros(g.top), g.refused,
                          self.mean_calls, lam, self.refill, g.delta, m, self._latency)
        if got is None:
            return None
        fresh, attempt, failed, retries = told_moved(
            self.poisson_share(lam) if own is None else own, got)
        return {"attempt": attempt, "call": fresh, "failed": failed,
                "retry_share": retries}

    def _retry_refusals(self, lam: float) -> NDArray[np.float64]:
        """Per backoff retry k, the chance a refused call is refused on its retries 1..k
        too, at ``lam`` launches per second: the level it was refused at (the launch
        law's, below the charge; the refused calls' charges by
        :meth:`refused_by_charge`) carried over each backoff gap, chained from the level
        each retry was refused at (:func:`_refused_chain`, a counted refusal taking its
        units) — not the average level a fresh launch meets —, the retries of the calls
        refused just before it among the launches (:func:`_with_others`). A bucket 1 s
        deep refilled 6,195 TPM a second, 3,830 of it the others' calls at 147 sessions
        (hunt-3099): the engine refuses 29 % of first retries after 0.49 s and 37 % of
        second ones, where the fresh calls 1.9 %; the average level said 1.5 %, this
        chain 23 % and 21 % without the others' retries, 28 % and 24 % with them."""
        g = self.grids()[1]
        units = np.arange(self.call_pmf.size, dtype=np.float64) * self.h
        w = self.call_pmf * self.refused_by_charge(lam, units)
        tot = float(w.sum())
        gaps = _backoff_gaps(self.retry)
        if tot <= 0.0 or not gaps:
            return np.zeros(max(self.retry.max_retries, 1))
        counted = round(1.0 / g.delta) if self.retry.counts_rejected else 0
        # (rows of the chain: the thresholds; the refused calls' charges weigh them)
        n_lv = g.top + 1
        _, lo_i, frac = _grid_split(units, g.delta)
        rw = np.zeros(n_lv + 1)
        # (by the call law: each row of the chain already holds its charge's chance of
        # a refusal — weighing it by ``w`` counted that chance twice, a review found)
        cw = self.call_pmf / float(self.call_pmf.sum())
        np.add.at(rw, np.minimum(lo_i.astype(np.int64), n_lv), (1.0 - frac) * cw)
        np.add.at(rw, np.minimum(lo_i.astype(np.int64) + 1, n_lv), frac * cw)
        out = _refused_chain(self._level_law(g, lam, 0.0), g.launch, g.delta, self.refill,
                             lam, units, gaps, counted,
                             _WALK_MEMORY * self.depth / self.refill,
                             others=(g.retry, g.refused, rw)) @ (w / tot)
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)

    @property
    def _told(self) -> bool:
        """Retries told the retry-after at a requests bucket counting its refusals, each
        launch one call: the told wait's rescue (:meth:`_backoff_shares`). (Told retries
        elsewhere herd; backoff retries never wait for the level.)"""
        return (self.retry.max_retries > 0 and self.retry.honour_retry_after
                and self.retry.counts_rejected and self.count.size <= 2)

    @property
    def _latency(self) -> float:
        """Seconds a 429 takes back to the client."""
        return self.retry.rejection_latency_s or 0.0

    @property
    def _trains(self) -> bool:
        """Told retries return in trains: a refused call's retry comes back to
        1 − L + r·latency units, under two while r·latency < 2 — one unit or none, so
        any other event in the unit's refill before it leaves it short."""
        return self.refill * self._latency < 2.0 - 1e-9

    def _backoff_shares(self, lam: float, sessions: float) -> dict[str, float]:
        """429 shares with retries at a bucket counting its rejections (backoff, or
        the retry-after): the chain of (level, retries pending) (see :meth:`_pending`).
        Which share of the
        refused retries are a call's last, and the mean delay (retry k after
        ``backoff_s``, weighted by how many get that far), follow the retries' refusal
        share (one step from 3/4 on the fine grid); for retries told the retry-after, so
        do the levels fresh calls are refused at, which set the share of them the told
        wait rescues and the wait itself (``told`` of :meth:`_pending`)."""
        m = self.retry.max_retries
        # Retries told the retry-after (a requests bucket counting its refusals: told
        # retries elsewhere herd), each refused alone: the told wait's rescue. A launch of
        # several calls refused together (a fan-out) is told one wait per call from the
        # levels the counts of the others left, and comes back as a herd: the level each
        # meets decides, as before.
        told = self._told
        if self.retry.honour_retry_after:
            # Told the time until the level it was refused at reaches one unit: on
            # average half a unit's refill (the first solve), then the refused levels'.
            delays = np.full(m, self._latency + 0.5 / self.refill)
        else:
            c = self.retry.backoff_s
            delays = np.diff(np.concatenate([[0.0], np.asarray(c[:m], dtype=np.float64)]))
        grids = self._pending_grids()

        def weights(pr: float) -> tuple[float, float]:
            w = pr ** np.arange(m)
            return float(np.dot(w, delays) / w.sum()), float(w[-1] / w.sum())

        def rescue(g: _Parts, v: NDArray[np.float64]) -> tuple[float, float] | None:
            """(share of fresh refusals a told retry meets a unit after, their mean told
            wait in seconds) on ``g``, from a solve's refused-level law (``v[5:]``)."""
            at = v[5:]
            if not told or at.sum() <= 0:
                return None
            at = at / float(at.sum())
            lv = np.arange(at.size) * g.delta                       # units
            # (At most 1: a normalised sum may round to 1 + 2e-16, and (1 − a) ** (1/m)
            # of a negative float is complex.)
            a = min(1.0, float(at[lv <= self.refill * self._latency + 1e-9].sum()))
            wait = self._latency + float(at @ np.maximum(1.0 - lv, 0.0)) / self.refill
            if not self._trains:
                # A call refused above that level is refused on every retry (each meets
                # the level of the refusal before: L, 1 − L + r·latency, L, …); the chain
                # draws each retry afresh, so each gets the chance that makes m of them
                # rescue ``a``.
                return 1.0 - (1.0 - a) ** (1.0 / m), wait
            # Each retry's chance: near the ceiling a refused retry was refused in a train
            # (calls each within a unit's refill of the one before) at a level drawn
            # afresh (r × its gap), not the level of the refusal before.
            return a, wait

        # The retries' refusal share from a start of 3/4 on the fine grid (and the levels
        # fresh calls are refused at: the told retries' rescue, and the charges of the
        # calls refused there, which their retries carry), then both grids.
        v = self._pending(grids[1], lam, sessions, *weights(0.75), levels=True)
        carried = [self._refused_charges(g, grids[1], v[5:]) for g in grids]
        d, fail = weights(min(1.0, max(0.0, float(v[3] / max(v[2], 1e-300)))))
        res = rescue(grids[1], v)
        if res is not None:
            d = res[1]
        v = (2.0 * self._pending(grids[1], lam, sessions, d, fail, res,
                                 retry_pmf=carried[1])
             - self._pending(grids[0], lam, sessions, d, fail, res, retry_pmf=carried[0]))
        fa, fr, ra, rr, fl = (max(0.0, float(x)) for x in v)
        return {"attempt": min(1.0, (fr + rr) / max(fa + ra, 1e-300)),
                "call": min(1.0, fr / max(fa, 1e-300)),
                "failed": min(1.0, fl / max(fa, 1e-300)),
                "retry_share": ra / max(fa, 1e-300)}

    def _pending(self, parts: _Parts, lam: float, sessions: float, delay: float,
                 fail: float, told: tuple[float, float] | None = None,
                 levels: bool = False, retry_pmf: NDArray[np.float64] | None = None
                 ) -> NDArray[np.float64]:
        """(fresh attempts, fresh refused, retries, retries refused, failed, then with
        ``levels`` the fresh calls refused at each grid level) per event of the chain of
        (level after an event, retries pending ``j``).

        A refusal of a counting bucket empties it, and a retry sent back ``delay``
        seconds later meets the bucket still near empty — it is refused and empties it
        again, as the fresh calls arriving meanwhile are: a cascade the Poisson orbit
        (retries at the stationary level) does not see. Events are fresh launches (rate
        ``lam``, less the share of the ``sessions`` waiting out a retry: a session
        launches nothing meanwhile) and returning retries (rate ``j/delay``,
        exponential delays); the bucket refills between them; a fresh launch's refused
        calls join the pending, a refused retry rejoins them unless it was the call's
        last (share ``fail``). While retries are pending the level is kept below a
        charge plus two first delays' refill (it was below a charge when the first of
        them was refused). Solved by censoring the pending counts from the top (the
        chain moves down one at a time).

        ``told`` (a share ``a``, a wait ``w`` s): retries told the time until the level
        they were refused at, ``L``, reaches one unit, at a bucket counting refusals.
        The count took ``L``, so the told wait refills only it: a retry meets
        ``1 − L + r·latency`` when nothing else came meanwhile — admitted only if ``L``
        was within the latency's refill of nothing (share ``a`` of the refused levels),
        left near empty; else refused, its count emptying the bucket. An exponential
        delay from the emptied level had it admitted whenever the delay ran long (hunt-97:
        29% of refused calls rescued against the engine's ~0). The level never falls
        below 0, so a retry whose last unit's refill (``1/r`` s before it returns) saw no
        other event finds a unit; one that saw any finds less (before that window the
        level was below ``r·latency − L``, under a unit, and whatever came took or
        emptied it): refused. Fresh launches miss that window with chance
        ``e^{−fresh/r}``; retries pending together were refused in one train (each call
        within a unit's refill of the one before) and each returns as far after the
        event before its refusal, inside the window of the next: only a retry pending
        alone (``j = 1``) is rescued. (Letting the chain's level decide a retry that was
        not alone, over its whole wait, rescued trains: +7.6–9.5% at 900–1,200 RPM of
        ``bucket-told-counted``, where r·latency nears a unit.)"""
        F, R, D, n0, nc = parts.fit, parts.ref, parts.joint, parts.top + 1, parts.cap + 1
        if retry_pmf is not None:
            # A retry carries the charge of the call that was refused (size-biased).
            counted = round(1.0 / parts.delta) if self.retry.counts_rejected else 0
            F, R, _ = _call_outcomes(retry_pmf, parts.top, counted, apart=True, half=True)
        J = _PENDING
        u = D.shape[0] - 1
        nu = 1.0 / max(delay, 1e-9)
        refused_by = R.sum(axis=1)
        j_all = np.arange(J + 1, dtype=np.float64)
        # Launches per second (np.clip's arithmetic without its Python wrapper).
        fresh = lam * np.minimum(np.maximum(1.0 - j_all / sessions, 0.05), 1.0)
        rates = fresh + j_all * nu                              # events per second, by j
        pf = fresh / rates                                      # the event is fresh
        Gs = _refills_c(rates[1:], self.refill, parts.delta, nc - 1)
        # From j: a fresh launch refusing k calls (to min(j + k, J)); from 0, T[0, k]:
        # with nothing pending every event is fresh (rate lam, pf[0] = 1), so these are
        # the same for every delay asked at lam (_backoff_shares asks the fine grid twice;
        # G0 @ D[0] is the chain's largest product).
        key = (id(parts), lam)
        if self._top is None or self._top[0] != key:
            G0 = _refills_c(rates[:1], self.refill, parts.delta, n0 - 1)[0]
            top0 = _refilled(rates[:1], self.refill, parts.delta, [D[0]], np.ones((1, 1, 1)))
            rest0 = (_refilled(rates[:1], self.refill, parts.delta,
                               [_clip(D[k], nc) for k in range(1, u + 1)],
                               np.eye(u)[None]) if u else np.zeros((0, 1, n0, nc)))
            self._top = (key, G0, [top0[0, 0], *rest0[:, 0]])
        _, G0, t0 = self._top
        blk = list(_refilled(rates[1:], self.refill, parts.delta,
                             [D[k][:nc, :nc] for k in range(u + 1)],
                             pf[1:, None, None] * np.eye(u + 1)[None]))
        wb = 1.0 - pf[1:]                                   # the event is a retry
        ws = wb * (1.0 - fail)                              # … refused and not its last
        refused_j: NDArray[np.float64] | None = None     # by j (None: refused_by's)
        if told is None:
            moved = F[:nc, :nc] + fail * R[:nc, :nc]
            zero = np.zeros(J)
            back, stay = _refilled(rates[1:], self.refill, parts.delta, [moved, R[:nc, :nc]],
                                   np.stack([np.stack([wb, zero]),
                                             np.stack([zero, ws])]).transpose(2, 0, 1))
            last = wb[0] * (Gs[0] @ (F[:nc] + fail * R[:nc]))   # onto the full depth
        else:
            # Alone, it is admitted with chance a, taking a unit (level ℓ → max(ℓ − unit,
            # 0)); else refused, emptying the bucket (ℓ → 0; Gs's rows sum to 1). With
            # trains (r·latency < 2 units): alone = no fresh launch in the unit's refill
            # before it returns and no other retry pending, and a retry not alone is
            # refused in its train. Without (a returning retry may meet two units or
            # more, which others' events leave behind): alone = nothing else in its wait,
            # and otherwise the level it meets decides, as any call's.
            a = told[0]
            if self._trains:
                alone = np.where(j_all[1:] == 1, np.exp(-fresh[1:] / self.refill), 0.0)
                rest = np.zeros(J)
            else:
                alone = np.exp(-(rates[1:] - nu) * told[1])
                rest = 1.0 - alone
            zero = alone * (1.0 - a) + (1.0 - alone) - rest     # refused, level → 0
            unit = round(1.0 / parts.delta)
            # (With trains no retry is the level's: rest is 0, the products skipped.)
            back = ((wb * rest)[:, None, None] * (Gs @ (F[:nc, :nc] + fail * R[:nc, :nc]))
                    if rest.any() else np.zeros((J, nc, nc)))
            back[:, :, 0] += ((wb * alone * a)[:, None] * Gs[:, :, : unit + 1].sum(axis=2)
                              + (wb * fail * zero)[:, None])
            back[:, :, 1: nc - unit] += (wb * alone * a)[:, None, None] * Gs[:, :, unit + 1:]
            stay = ((ws * rest)[:, None, None] * (Gs @ R[:nc, :nc]) if rest.any()
                    else np.zeros((J, nc, nc)))
            stay[:, :, 0] += (ws * zero)[:, None]
            last = np.pad(back[0], ((0, 0), (0, n0 - nc)))
            refused_j = zero[:, None] + rest[:, None] * refused_by[None, :nc]
        pis: list[NDArray[np.float64]] | None = None
        if _kernels is not None and not _NUMPY_ONLY:
            # The same chain compiled (capacity/analytic/_kernels.c): its sums and small
            # inverses in plain loops, not BLAS/LAPACK's (the last bits may differ).
            got = _kernels.pending_chain(
                t0[0], np.ascontiguousarray(np.array(t0[1:]).reshape(u, n0, nc)),
                np.ascontiguousarray(np.array(blk)), np.ascontiguousarray(last),
                np.ascontiguousarray(back), np.ascontiguousarray(stay))
            if got is not None:
                pis = [got[0, :n0], got[1:, :nc]]
        if pis is None:
            laws = _pending_laws(t0, blk, last, back, stay, n0, nc)
            pis = [laws[0], np.array(laws[1:])]
        p0, ps = pis
        total = float(p0.sum()) + float(ps.sum())
        # The level the event meets, from nothing pending (rho0) and from j ≥ 1 (rho).
        rho0 = p0 @ G0 / total
        rho = np.matmul(ps[:, None, :], Gs)[:, 0, :] / total
        lr = parts.launch_refused
        at = rho.sum(axis=1)
        out = np.zeros(5 + n0 if levels else 5)
        out[0] = (float(rho0.sum()) + float(np.dot(pf[1:], at))) * self.mean_calls
        out[1] = float(rho0 @ lr[:n0]) + float(np.dot(pf[1:], rho @ lr[:nc]))
        if levels:
            out[5:] = rho0 * lr[:n0]
            out[5: 5 + nc] += pf[1:] @ rho * lr[:nc]
        out[2] = float(np.dot(1.0 - pf[1:], at))
        out[3] = float(np.dot(1.0 - pf[1:], rho @ refused_by[:nc] if refused_j is None
                              else np.einsum("jl,jl->j", rho, refused_j)))
        out[4] = fail * out[3]
        return out

    def _refused_charges(self, g: _Parts, at_grid: _Parts, at: NDArray[np.float64]
                         ) -> NDArray[np.float64] | None:
        """The charge law (steps of ``g``) of the calls refused when fresh calls are
        refused at the levels ``at`` (weights by level of ``at_grid``): a call is refused
        when its charge is above the level, so the refused ones are the big ones —
        ``pmf(c)·P(c > level)`` averaged over the refusals' levels. None: no refusal.

        A retry carries its call's charge; drawn from every call's law instead, a
        refused 1,700-token call came back as a 415-token one half the time and fitted
        (hunt-155, 0.5 s backoffs at a bucket 30 s deep: the engine refuses 87 % of first
        retries, 70 % of later ones; 43 sessions against a simulated 35 [34–38], now
        34)."""
        total = float(at.sum())
        if total <= 0.0:
            return None
        pmf = _regrid(self.call_pmf, self.h, at_grid.delta, at_grid.top)
        c = np.arange(pmf.size)
        lv = np.arange(at.size)
        # A charge on a level is refused half the time (_call_outcomes' ``half``).
        over = (c[None, :] > lv[:, None]) + 0.5 * ((c[None, :] == lv[:, None]) & (c > 0))
        law: NDArray[np.float64]
        if len(self.kinds) > 1:
            law = self._refused_charges_by_kind(at_grid, at, over)
        else:
            p_ref = over @ pmf
            w = np.where(p_ref > 1e-300, at / total / np.maximum(p_ref, 1e-300), 0.0)
            law = pmf * (w @ over)
        if float(law.sum()) <= 0.0:
            return None
        law /= float(law.sum())
        if g is at_grid:
            return law
        # The last point is "past the depth" (a charge that never fits), not one of
        # top + 1 fine steps: _regrid would put it at coarse step top + ½, half of it on a
        # charge a full bucket admits. It is carried across as what it is.
        past = float(law[-1])
        out = _regrid(law[:-1], at_grid.delta, g.delta, g.top) * (1.0 - past)
        out[-1] += past
        return out

    def _refused_charges_by_kind(self, at_grid: _Parts, at: NDArray[np.float64],
                                 over: NDArray[np.float64]) -> NDArray[np.float64]:
        """:meth:`_refused_charges` when launches are of several kinds (unnormalised):
        ``at`` are refused calls by the level their launch met; each kind's launch walks
        its own calls down from there (call j meets ``M^(j−1)``), so a fan-out's refused
        calls are its own small ones, not the other kinds' large ones. ``X[ℓ, c]``: a
        launch from ℓ's refused calls of charge ``c``; the law ``Σ_ℓ at/ΣX[ℓ]·X[ℓ]``.
        With the pooled call law a refused fan-out call came back carrying a loop's
        charge (a review's variant of tests/data/bucket-launch-kinds.yaml with three
        retries after a 0.1 s backoff: 89 % of retried charges over 5,000 tokens where
        55 % are; 5.2 % refused at 30 sessions against the engine's 2.5 %, N* 19 against
        27 [27–28])."""
        delta, top = at_grid.delta, at_grid.top
        n = top + 1
        counted = round(1.0 / delta) if self.retry.counts_rejected else 0
        X = np.zeros((n, top + 2))
        for w, count, call in self.kinds:
            pmf = _regrid(call, self.h, delta, top)
            F, R, _ = _call_outcomes(pmf, top, counted, apart=True, half=True)
            M = F + R
            refused_c = over * pmf[None, :]
            P = np.eye(n)
            for j in range(1, count.size):
                reach = float(count[j:].sum())          # P(the launch has a j-th call)
                if reach <= 0.0:
                    break
                X += w * reach * (P @ refused_c)
                P = P @ M
        per = X.sum(axis=1)
        rho = np.where(per > 1e-300, at / np.maximum(per, 1e-300), 0.0)
        out: NDArray[np.float64] = rho @ X
        return out

    def _pending_grids(self) -> list[_Parts]:
        """The pending chain's two grids: at most ``_PENDING_POINTS`` levels on the
        coarse one (a requests bucket: one step a request), twice as many on the fine."""
        if not self._pgrids:
            shared = self._shared()
            if "pgrids" not in shared:
                mean = self.mean_charge
                s = max(1, min(_steps_per_call(self.call_pmf, self.h, self.depth),
                               math.floor(_PENDING_POINTS * mean / self.depth + 1e-9)))
                shared["pgrids"] = [self._parts(mean / (s * k)) for k in (1, 2)]
            self._pgrids = shared["pgrids"]
        return self._pgrids

    def _parts(self, delta: float) -> _Parts:
        top = math.floor(self.depth / delta + 1e-9)
        counted = round(1.0 / delta) if self.retry.counts_rejected else 0
        pmf = _regrid(self.call_pmf, self.h, delta, top)
        n = top + 1
        F, R, _ = _call_outcomes(pmf, top, counted, apart=True, half=True)
        # The launch's outcomes by refused calls k (gathered at _PENDING), each kind of
        # launch by its own calls.
        u = min(_PENDING, self.count.size - 1)
        D = np.zeros((u + 1, n, n))
        for w, count, call in self.kinds or ((1.0, self.count, self.call_pmf),):
            if len(self.kinds) > 1:
                F, R, _ = _call_outcomes(_regrid(call, self.h, delta, top), top, counted,
                                         apart=True, half=True)
            P = np.zeros((u + 1, n, n))
            P[0] = np.eye(n)
            for k, pk in enumerate(count):
                if k > 0:
                    # (One BLAS product over the stacked outcomes, as _launch_block.)
                    Q = (P.reshape(-1, n) @ F).reshape(P.shape)
                    Q[1:] += (P[:-1].reshape(-1, n) @ R).reshape(P[:-1].shape)
                    Q[-1] += P[-1] @ R
                    P = Q
                if pk > 0:
                    D += w * pk * P
        if len(self.kinds) > 1:   # the retries' single call: of the pooled law
            F, R, _ = _call_outcomes(pmf, top, counted, apart=True, half=True)
        refused = np.einsum("kij,k->i", D, np.arange(u + 1, dtype=np.float64))
        # While retries are pending the level stays below a charge plus two first
        # delays' refill (the ceilings do not move with the cap: storms keep it low).
        d = (self._latency + 0.5 / self.refill if self.retry.honour_retry_after
             else self.retry.backoff_s[0])
        top_units = float(np.flatnonzero(pmf).max()) * delta + 2.0 * self.refill * d
        cap = min(top, math.ceil(top_units / delta))
        return _Parts(delta, top, F, R, D, refused, cap)


@dataclass
class _Parts:
    """One grid's call split by outcome (``fit``, ``ref``: level → level), a launch's
    outcomes by its refused calls (``joint[k]``), and the level cap while retries are
    pending (grid steps)."""

    delta: float                      # units per grid step
    top: int                          # the depth, in steps
    fit: NDArray[np.float64]
    ref: NDArray[np.float64]
    joint: NDArray[np.float64]
    launch_refused: NDArray[np.float64]   # a launch's refused calls, by level
    cap: int


# Each chain's grid operators by its laws, bucket and retries (BucketChain._shared; a
# few at a time: an answer builds one chain per constraint and cycle time).
_CHAIN_GRIDS: dict[tuple[object, ...], dict[str, Any]] = {}

# The numpy loops (the pending chain's elimination, the refill products) even where the
# compiled ones are built (the tests' reference).
_NUMPY_ONLY = False


def _pending_laws(t0: list[NDArray[np.float64]], blk: list[NDArray[np.float64]],
                  last: NDArray[np.float64], back: NDArray[np.float64],
                  stay: NDArray[np.float64], n0: int, nc: int) -> list[NDArray[np.float64]]:
    """The pending chain's stationary laws by pending count ``j`` (unnormalised), from
    its blocks (see :meth:`BucketChain._pending`): ``t0[k]`` from ``j = 0`` to ``k``,
    ``blk[k][j − 1]`` a fresh launch from ``j`` refusing ``k`` calls (to ``min(j + k,
    J)``), ``last`` and ``back[j − 1]`` a retry's move down from ``j``, ``stay[j − 1]`` a
    refused retry's at ``j`` (numpy; ``_kernels.pending_chain`` compiled)."""
    J = blk[0].shape[0]
    u = len(blk) - 1
    size = [n0] + [nc] * J
    T: dict[tuple[int, int], NDArray[np.float64]] = {}
    for k in range(u + 1):
        T[0, min(k, J)] = t0[k]
        for j in range(1, J + 1):
            jj = min(j + k, J)
            T[j, jj] = T[j, jj] + blk[k][j - 1] if (j, jj) in T else blk[k][j - 1]
    for j in range(1, J + 1):
        T[j, j - 1] = back[j - 1] if j > 1 else last
        T[j, j] = T[j, j] + stay[j - 1]
    # Censor j = J, J − 1, …, 1 in turn: a pending count is left only downwards, one
    # at a time, so eliminating j adds paths a → j → j − 1 (a ∈ [j − u, j − 1]).
    inv: list[NDArray[np.float64]] = [np.zeros((0, 0))] * (J + 1)
    for j in range(J, 0, -1):
        inv[j] = np.asarray(np.linalg.inv(np.eye(size[j]) - T[j, j]), dtype=np.float64)
        down = inv[j] @ T[j, j - 1]
        for a in range(max(0, j - u), j):
            if (a, j) in T:
                T[a, j - 1] = T[a, j - 1] + T[a, j] @ down
    pis = [_stationary(T[0, 0] / T[0, 0].sum(axis=1, keepdims=True))]
    for j in range(1, J + 1):
        acc = np.zeros(size[j])
        for a in range(max(0, j - u), j):
            if (a, j) in T:
                acc += pis[a] @ T[a, j]
        pis.append(np.clip(acc @ inv[j], 0.0, None))
    return pis


def _clip(X: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``X``'s columns past ``n − 1`` gathered there (a level held at the cap)."""
    if X.shape[1] <= n:
        return X
    out = X[:, :n].copy()
    out[:, n - 1] += X[:, n:].sum(axis=1)
    return out


def _shifts(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """``out[j, k]`` = row ``j`` of ``p`` (a pmf on ``0.._HERD``) shifted up by ``k``, the
    mass past ``_HERD`` gathered there: adding ``k`` to a count of that law."""
    rows, size = p.shape
    out = np.zeros((rows, _HERD + 1, _HERD + 1))
    tail = np.cumsum(p[:, ::-1], axis=1)[:, ::-1]       # P(X ≥ i)
    for k in range(_HERD + 1):
        keep = _HERD - k                                   # X ≤ keep stays below the cap
        out[:, k, k:_HERD] = p[:, : keep]
        out[:, k, _HERD] = tail[:, keep] if keep < size else 0.0
    return out


def _poisson_rows(mu: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Poisson pmfs of means ``mu`` on ``0..size−1`` (the tail at the last point)."""
    k = np.arange(size, dtype=np.float64)
    lg = np.array([math.lgamma(x + 1.0) for x in k])
    with np.errstate(divide="ignore"):
        logmu = np.log(np.maximum(mu, 1e-300))
    out = np.exp(k[None, :] * logmu[:, None] - mu[:, None] - lg[None, :])
    out[mu <= 0] = 0.0
    out[mu <= 0, 0] = 1.0
    out[:, -1] += np.clip(1.0 - out.sum(axis=1), 0.0, None)
    return np.asarray(out)


def _binomial_rows(n: int, p: float) -> NDArray[np.float64]:
    """Row ``k``: the Binomial(k, p) pmf on ``0..n``."""
    out = np.zeros((n + 1, n + 1))
    out[0, 0] = 1.0
    for k in range(1, n + 1):
        out[k, :] = out[k - 1, :] * (1.0 - p)
        out[k, 1:] += out[k - 1, :-1] * p
    return out


def _regrid(pmf: NDArray[np.float64], h: float, delta: float, top: int
            ) -> NDArray[np.float64]:
    """A charge law on step ``h`` moved to step ``delta`` (mean-preserving: each point
    split between its two neighbours); charges past the depth gathered at ``top + 1``."""
    out = np.zeros(top + 2)
    x = np.arange(pmf.size) * h / delta
    lo = np.floor(x).astype(np.int64)
    w = x - lo
    over = lo >= top + 1
    np.add.at(out, np.minimum(lo[~over], top + 1), pmf[~over] * (1.0 - w[~over]))
    np.add.at(out, np.minimum(lo[~over] + 1, top + 1), pmf[~over] * w[~over])
    out[top + 1] += float(pmf[over].sum())
    s = float(out.sum())
    return out / s if s > 0 else out


def _steps_per_call(call_pmf: NDArray[np.float64], h: float, depth: float) -> int:
    mean = _mean_units(call_pmf, h)
    if depth <= 0 or mean <= 0:
        return 0
    return min(_MAX_STEPS_PER_CALL, math.floor(_MAX_POINTS * mean / depth + 1e-9))


def _mean_units(pmf: NDArray[np.float64], h: float) -> float:
    k = np.flatnonzero(pmf)
    return float(np.dot(k, pmf[k])) * h


def fits_chain(call_pmf: NDArray[np.float64], h: float, depth: float) -> bool:
    """True when the bucket is shallow enough for the chain: a mean call spans at least
    ``_MIN_STEPS_PER_CALL`` coarse grid steps (a depth of at most ~15 mean calls; ~47
    when every call charges the same), and
    the bucket holds at least one (calls larger than the bucket: the Lundberg model and
    the fleet's never-fits share)."""
    mean = _mean_units(call_pmf, h)
    # One charge (requests, or a fixed prompt) sits on every grid: a coarse one will do.
    least = 1 if np.count_nonzero(call_pmf) == 1 else _MIN_STEPS_PER_CALL
    return mean <= depth and _steps_per_call(call_pmf, h, depth) >= least


# ---------------------------------------------------------------------------------------
# Deep buckets: the level law by level crossing (no retries)
# ---------------------------------------------------------------------------------------

# Coarse grid of a deep bucket: this many steps per mean call, at most _DEEP_POINTS levels
# and at most _DEEP_BLOCK levels in the exact bottom block (the fine grid: twice each).
_DEEP_STEPS = 8
_DEEP_MIN_STEPS = 2
_DEEP_POINTS = 4096
_DEEP_BLOCK = 48
# A launch from a level its batch exceeds with at most this chance takes its whole batch.
_DEEP_EPS = 1e-6
# Levels of the grid a deep bucket's refused calls are carried forward on, at most
# (DeepBucket.refused_after): the level chain's fine grid has up to 2·_MAX_POINTS + 1.
_AGAIN_LEVELS = 96


@dataclass
class _DeepGrid:
    """One grid of a deep bucket: ``K`` steps of ``delta`` units to the depth; the
    launches' total-charge tail ``tail[d] = P(S > d)`` (steps, fitting calls only), the
    exact bottom block (levels ``0..J − 1``): ``down[j, i]`` the chance a launch from
    level ``j`` leaves it below ``i`` and ``refused[j]`` its expected refused calls; calls
    that never fit (charge past the depth) per launch, and calls per launch."""

    delta: float
    top: int
    block: int
    tail: NDArray[np.float64]
    down: NDArray[np.float64]
    refused: NDArray[np.float64]
    never: float
    calls: float
    mean: float                      # units of a mean call
    # With retries: the launches with a refusal, level → level after (their row sums:
    # the chance of one), and the chance a launch with none ends below ``i``.
    refusing: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    clean_down: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    # Told retries where the charges spread (:func:`told_shares`): the block's launches.
    told: _ToldBlock | None = None


def settled(p: float, again: Callable[[float], float], factor: Callable[[float], float]
            ) -> float:
    """A no-retry refusal share ``p`` (at the unthrottled launch rate) moved to the rate
    its own refusals make: ``again(f)`` is the share at ``f`` times that rate,
    ``factor(q)`` the rate factor a share ``q`` makes (:func:`shortened_factor`); a few
    fixed-point passes. Where they run out swinging about the fixed point, the point
    solved between the last two if they narrow, else the higher share of the two, as
    the window model reads its own passes (:func:`~capacity.model.numeric.swing_narrows`).
    The last share ``again`` was asked for is the one returned (a caller reads its
    other figures there)."""
    passes = [p]
    for _ in range(_SHORTENED_PASSES):
        nxt = again(factor(p))
        if abs(nxt - p) <= 1e-4 * max(p, 1e-6):
            return nxt
        passes.append(nxt)
        p = nxt
    narrows = swing_narrows(passes)
    if narrows:
        root = fixed_point_between(lambda q: again(factor(q)), passes[-2], p,
                                   xtol=1e-12, rtol=1e-5)
        return again(factor(root))
    if narrows is False and passes[-2] > p:
        return again(factor(p))      # one pass more: the swing's higher share
    return p


def _gathered(pmf: NDArray[np.float64], top: int) -> NDArray[np.float64]:
    """``pmf`` on ``0..top``, the mass past ``top`` gathered there."""
    if pmf.size <= top + 1:
        out = np.zeros(top + 1)
        out[: pmf.size] = pmf
        return out
    out = pmf[: top + 1].copy()
    out[top] += float(pmf[top + 1:].sum())
    return out


def shortened_factor(walk: TurnWalk, cycle_s: float, q: float | NDArray[np.float64],
                     abort: bool, rejection_latency: float) -> float:
    """Launches a second over those without refusals (no retries), a think-time
    session's cycle of ``cycle_s`` seconds shortened by its refused launches: each launch
    pattern of ``walk`` refused at ``q`` per call (one share, or one per pattern). A turn
    ends at its first refused launch (``abort``: its later launches are not made, and it
    ends ``rejection_latency`` after that launch rather than at its latency) or a refused
    launch — every call of it — returns at once and the turn goes on (``continue``: the
    launch's gap to the turn's next one, or to its end, shrinks to the rejection
    latency); either way its session starts its next turn sooner, ``C/(C − saved)``."""
    on = walk.seq >= 0
    at = np.maximum(walk.seq, 0)
    k = np.where(on, walk.patterns.sum(axis=1)[at], 0)
    qq = np.full(walk.seq.shape, q) if np.ndim(q) == 0 else np.asarray(q)[at]
    if abort:
        hit = np.where(on, 1.0 - (1.0 - qq) ** k, 0.0)          # a call refused
        reach = np.cumprod(np.concatenate([np.ones((hit.shape[0], 1)), 1.0 - hit[:, :-1]],
                                          axis=1), axis=1)
        made = float((reach * on).sum()) / max(float(on.sum()), 1.0)
        saved = float(np.nansum(reach * hit * np.maximum(walk.rest - rejection_latency,
                                                         0.0)))
    else:
        made = 1.0
        nxt = np.concatenate([walk.gaps[:, 1:], np.full((walk.gaps.shape[0], 1), np.nan)],
                             axis=1)
        span = np.where(np.isnan(nxt), walk.rest, nxt)
        hit = np.where(on, qq ** k, 0.0)                        # every call refused
        saved = float(np.nansum(hit * np.maximum(span - rejection_latency, 0.0)))
    saved *= walk.here / walk.seq.shape[0]
    return float(made * cycle_s / max(cycle_s - saved, 0.5 * cycle_s))


def scaled_pattern_shares(walk: TurnWalk, raw: NDArray[np.float64], p: float
                          ) -> NDArray[np.float64]:
    """Each launch pattern's share of calls refused, from ``raw`` (its expected refused
    calls a launch, the level Poisson launches find) scaled so that the sampled turns'
    calls average ``p``."""
    calls = walk.patterns.sum(axis=1).astype(np.float64)
    seen = np.bincount(walk.seq[walk.seq >= 0], minlength=raw.size).astype(np.float64)
    total = float(seen @ raw)
    if total <= 0.0:
        return np.full(raw.size, p)
    share = raw / np.maximum(calls, 1.0) * (p * float(seen @ calls) / total)
    return np.asarray(np.clip(share, 0.0, 1.0), dtype=np.float64)


# ClosedTurns' tilt at full strength while the launch rate falls at most this share at
# the full deficit and the law's log at most this much there; none past twice that; read
# at this share of the refill (one load for every N: the share stays monotone in N).
_TILT_RATE = 0.1
_TILT_LOG = 1.0
_TILT_LOAD = 0.9


def _fade(value: float, full: float) -> float:
    """1 up to ``full``, 0 from twice it, linear between."""
    return min(1.0, max(0.0, 2.0 - value / full))


@dataclass(frozen=True)
class ClosedTurns:
    """Think-time sessions whose turns launch at a deep bucket at most once: a session
    whose launch is in the bucket's deficit is busy with its turn and starts no other,
    so the launches come slower the deeper the deficit (:meth:`tilt`). ``rest``: seconds
    from a launch here to its turn's end (the turn sample's, unthrottled); ``pause_s``:
    the mean think time (s); ``per_turn``: launches here per turn."""

    rest: NDArray[np.float64] = field(repr=False)
    pause_s: float
    per_turn: float
    # The same paired with each launch's charge (units; a turn sample with its charges:
    # a call's output drives both its OTPM charge and its latency); None: ``rest`` apart.
    paired: tuple[NDArray[np.float64], NDArray[np.float64]] | None = field(
        default=None, repr=False)

    @cached_property
    def key(self) -> tuple[Any, ...]:
        """The values the tilt reads (a cache key)."""
        pairs = (None if self.paired is None
                 else (self.paired[0].tobytes(), self.paired[1].tobytes()))
        return (self.rest.tobytes(), self.pause_s, self.per_turn, pairs)

    def tilt(self, pi: NDArray[np.float64], g: _DeepGrid, lam: float, refill: float,
             fade: float = 1.0) -> NDArray[np.float64]:
        """The law of the level a launch finds (``pi``, Poisson launches at ``lam`` a
        second on grid ``g``, normalised) with the launch rate falling as the deficit
        ``y`` grows: ``λ(y) = λ − s·(y − ȳ)``, ``ȳ`` the mean deficit.

        The excursion to a deep deficit is the compound-Poisson dam's likeliest path: the
        launches come at the tilted rate ``λ·M(θ)`` (``θ``: the Lundberg root of the
        launch totals, ``λ(M(θ) − 1) = r·θ``) for ``T = (b − ȳ)/(λ·M′(θ) − r)`` seconds,
        so it leaves ``ΔI = λ·E[(e^{θS} − 1)·min(R, T)] = r·θ·E_w[min(R, T)]`` more
        sessions busy than the mean (``R``: a launch's time to its turn's end, ``S`` its
        charge, ``E_w`` weighted by ``e^{θS} − 1``: the extra launches), each starting
        ``per_turn/pause_s`` fewer launches a second: ``s = ΔI·per_turn/(pause_s·(b −
        ȳ))``. A deficit's law under a slowly varying rate has the local decay rate
        ``θ(λ(y))`` (the WKB form): relative to the constant rate, ``exp(−∫ (θ(λ(u)) −
        θ) du) = exp(|dθ/dλ|·s·(y − ȳ)²/2)``⁻¹ around ``ȳ``; a launch finds the level in
        proportion to the rate there too. A Poisson replay with that rate matches it
        (chat-assistant's OTPM on a 5 s bucket at 176 sessions: 0.296 % replayed at the
        model's slope, the tilt 0.290 %), and so does the closed loop replayed, each
        call's output driving both its charge and its latency: 0.280 % (Poisson 0.386 %,
        the engine 0.254 %). ``python benchmarks/session52_probes.py closed``."""
        got = self.slope(pi, g, lam, refill)
        if got is None or fade <= 0.0:
            return pi
        s, ybar, dtheta = got
        s *= fade
        y = (g.top - np.arange(pi.size)) * g.delta           # the deficit at each level
        out = pi * np.exp(-dtheta * s * (y - ybar) ** 2 / 2.0) * np.maximum(
            lam - s * (y - ybar), 0.0)
        total = float(out.sum())
        return out / total if total > 0.0 else pi

    def slope(self, pi: NDArray[np.float64], g: _DeepGrid, lam: float, refill: float
              ) -> tuple[float, float, float] | None:
        """``(s, ȳ, |dθ/dλ|)`` of :meth:`tilt` (launches a second less per unit of
        deficit, the mean deficit in units, units⁻¹ per launch a second); None where
        the launches overload the refill or nothing is busy."""
        d, top = g.delta, g.top
        k = np.arange(g.tail.size + 1, dtype=np.float64) * d
        pm = np.maximum(-np.diff(np.concatenate([[1.0], g.tail, [0.0]])), 0.0)[: k.size]
        if lam <= 0.0 or self.pause_s <= 0.0 or pm.sum() <= 0.0 or k[-1] <= 0.0:
            return None
        pm = pm / pm.sum()
        if lam * float(pm @ k) >= refill:
            return None                      # overloaded: no positive root, no excursion
        kmax = float(k[-1])
        hi = 1.0 / kmax
        # The root is searched over the charges that occur only: a launch total's law on
        # a fine grid is mostly zeros (chat-assistant's 8,194 levels hold 2 charges).
        nz = pm > 0.0
        k, pm = k[nz], pm[nz]

        def lundberg(t: float) -> float:
            return lam * float(pm @ np.expm1(t * k)) - refill * t

        while lundberg(hi) < 0.0:
            hi *= 2.0
            if hi * kmax > 700.0:
                return None
        lo = hi / 2.0
        while lundberg(lo) >= 0.0 and lo > 1e-300:
            lo /= 2.0                 # (below the load's root the dam's drift is negative)
        theta = brentq(lundberg, lo, hi, xtol=1e-300, rtol=1e-12)
        e = np.exp(theta * k)
        m1 = float(pm @ (k * e))
        ybar = float(pi @ ((top - np.arange(pi.size)) * d))
        up = lam * m1 - refill
        span = top * d - ybar
        if up <= 0.0 or span <= 0.0:
            return None
        held = span / up
        if self.paired is not None:
            # The excursion's launches are the tilted ones (charge law × e^{θS}): each
            # extra launch weighs (e^{θS} − 1), its time to its turn's end with it.
            units, rest = self.paired
            w = np.expm1(theta * units)
            held_mean = float(w @ np.minimum(rest, held)) / max(float(w.sum()), 1e-300)
        else:
            held_mean = float(np.minimum(self.rest, held).mean())
        busy = refill * theta * held_mean
        return (busy * self.per_turn / (self.pause_s * span), ybar,
                (float(pm @ e) - 1.0) / up)

    def fade(self, pi: NDArray[np.float64], g: _DeepGrid, lam: float, refill: float
             ) -> float:
        """How much of the tilt holds (0..1), read from the law ``pi`` at ``lam``: first
        order only — full while the rate falls at most a tenth at the full deficit and
        the law's log at most one there, none from twice that. A short think time leaves
        few sessions thinking, and a review found the tilt there far past a closed-loop
        replay, the rate fallen most of the way at the full deficit
        (tests/data/deep-bucket-short-think.yaml: N* over its simulated 37 [36–37]; with
        the tilt faded, 34). The caller reads it at one load
        (:meth:`DeepBucket._closed_fade`): read at each N it switched on as the load
        neared the refill, and the share fell as N rose."""
        got = self.slope(pi, g, lam, refill)
        if got is None:
            return 0.0
        s, ybar, dtheta = got
        span = g.top * g.delta - ybar
        return min(_fade(s * span / lam, _TILT_RATE),
                   _fade(dtheta * s * span * span / 2.0, _TILT_LOG))


@dataclass
class DeepBucket:
    """The refusal share of calls at a token bucket too deep for :class:`BucketChain`,
    fed by Poisson launches of several kinds (each ``(share of launches, calls per
    launch, charge of one call on a lattice of step h units)``), without retries.

    The level is a continuous-time chain on a grid of ``δ`` units: the bucket refills
    one step at rate ``r/δ`` (a Poisson stream whose mean is the refill; its noise is an
    ``O(δ)`` error, extrapolated away on two grids), and a launch moves the level down by
    the calls that fit, call by call. Every level is crossed upwards by the refill as
    often as downwards by launches (level crossing), so the law is solved from the full
    bucket down: ``(r/δ)·π[i − 1] = λ·Σ_{j ≥ i} π[j]·P(a launch from j ends below i)``.
    Above the largest batch every call fits and that chance is the batch total's tail
    ``P(S > j − i)``: there the deficit has the Pollaczek–Khinchine (compound geometric)
    law, ``U(z) = 1/(1 − (λδ/r)·z·T(z))``, by one FFT (damped, so that an overloaded
    bucket's growing law does not wrap around); the few levels below it, where calls are
    refused, by the exact launch matrices of each kind (not one launch law pooled over
    kinds: a 3-call fan-out of 7,000-token calls is not three draws of the average call
    when single 1,000-token calls are launched too). Launches are Poisson (independent
    sessions); the same lattice of charges as :class:`BucketChain`.
    """

    kinds: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]]
    h: float
    refill: float
    depth: float
    scale: float = 1.0                 # launches here per launch the caller counts
    # Retries that honour the retry-after (herds); None or no retries: none.
    retry: RetryModel | None = None
    # A requests bucket whose refused attempts take a unit if it is there
    # (TokenBucket.count_rejection): the level a refusal leaves is max(0, L − 1). Counted
    # in the level law without retries and with backoff ones; told retries' holds are
    # :meth:`_counted_share`'s.
    counts_refusals: bool = False
    # Without retries, a think-time session's turns as sampled (:class:`TurnWalk`), its
    # cycle (s; 0: not shortened by refusals), whether a refused call ends its turn, and
    # the 429's way back (s): :meth:`load_factor`.
    walk: TurnWalk | None = None
    cycle_s: float = 0.0
    abort_turn: bool = True
    rejection_latency: float = 0.0
    # Think-time sessions starting fewer turns the deeper the deficit (no retries;
    # :class:`ClosedTurns`); None: Poisson launches.
    closed: ClosedTurns | None = None
    _sums: NDArray[np.float64] | None = field(default=None, init=False, repr=False)
    _grids: list[_DeepGrid] = field(default_factory=list, repr=False)
    _cache: dict[float, dict[str, float]] = field(default_factory=dict, repr=False)
    _coarse_top: int = field(default=1, repr=False)
    _last: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0), repr=False)
    # Level laws without retries by (grid, launch rate): the share and the refusal by
    # charge ask the same (:meth:`refused_by_charge`).
    _laws: dict[tuple[int, float], NDArray[np.float64] | float] = field(
        default_factory=dict, init=False, repr=False)
    # The closed loop's fade by grid (:meth:`_closed_fade`).
    _fades: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    # A launch's move, level → level, on the grid :meth:`refused_after` carries on.
    _again: NDArray[np.float64] | None = field(default=None, init=False, repr=False)
    # ... and its refused calls by level.
    _again_refused: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0),
                                                init=False, repr=False)
    # Told retries where the charges spread (:func:`told_shares`): the answers by
    # launch rate.
    _told_at: dict[float, tuple[float, float, float, float, float] | None] = field(
        default_factory=dict, init=False, repr=False)

    @property
    def never_fit(self) -> float:
        """Share of the calls charged more than the depth: thinned out of the launches
        (the level never sees them), counted by the caller with the client's retry rule
        (:func:`capacity.analytic.window.with_never_fit`)."""
        g = self.grids()[1]
        return min(1.0, g.never / max(g.calls, 1e-300))

    def grids(self) -> list[_DeepGrid]:
        """The coarse and fine grids (built once)."""
        if not self._grids:
            calls = sum(w * float(np.dot(np.arange(k.size), k)) for w, k, _ in self.kinds)
            mean = sum(w * float(np.dot(np.arange(k.size), k))
                       * _mean_units(c, self.h) for w, k, c in self.kinds) / max(calls, 1e-300)
            most = max(_quantile_units(k, c, self.h, self.depth) for _, k, c in self.kinds)
            steps = float(_DEEP_STEPS)
            steps = min(steps, _DEEP_POINTS * mean / self.depth)
            steps = min(steps, _DEEP_BLOCK * mean / max(most, mean))
            steps = max(steps, min(_DEEP_MIN_STEPS, _DEEP_POINTS * mean / self.depth))
            # The whole retry rule, not its count alone: the answers by launch rate are
            # cached with the grids (honoured and backoff retries of one bucket shared
            # one answer, whichever was asked first).
            rule = astuple(self.retry) if self.retry is not None else None
            # (The closed loop tilts the laws: a bucket with it shares no answer with one
            # without — a paced twin of a profile has the same grids.)
            key = (self.h, self.refill, self.depth, steps, rule, self.scale, tuple(
                (w, k.tobytes(), c.tobytes()) for w, k, c in self.kinds),
                None if self.closed is None else self.closed.key, self.counts_refusals)
            hit = _DEEP_GRIDS.get(key)
            if hit is None:
                self._coarse_top = max(2, round(self.depth * steps / mean))
                hit = ([self._grid(self.depth / (self._coarse_top * k), self._coarse_top * k)
                        for k in (1, 2)], {})
                if len(_DEEP_GRIDS) >= 32:
                    _DEEP_GRIDS.clear()
                _DEEP_GRIDS[key] = hit
            # The answers by launch rate are shared too (the same bucket is rebuilt).
            self._grids, self._cache = hit
        return self._grids

    def _counted_steps(self, delta: float) -> int:
        """Grid steps (of ``delta`` units) a refused call takes without retries: one
        unit's where the bucket counts its refusals, else none. Poisson single calls at
        a 150 RPM bucket 10 s deep, 2.3 a second: taking nothing 0.141 % refused, each
        taking what is there of one request 0.267 %, the engine 0.269 % counting and
        0.115 % not (``python benchmarks/session60_probes.py counted``). With backoff
        retries too: every refused attempt takes what is there of its unit, the fresh
        calls' and the admitted retries' launches as the refused call's own chain
        (:meth:`_backoff_share`) and :class:`BucketChain`'s grids count them. Uncounted
        there, the issue's 1 → 3 → 1 turn at a 500 RPM bucket 10 s deep with backoff
        retries said 248 counting and 249 not, where the simulation says 240 [237–240]
        counting and 242 [241–244] not; counted, 246 (``python
        benchmarks/session62_probes.py counted``). With told retries the holds are
        :meth:`_counted_share`'s. (Only where the bucket was built with
        :attr:`counts_refusals`: the plain launch law's and the bunched launches'
        retried one; the populations' blend is built without it.)"""
        if not self.counts_refusals:
            return 0
        if self.retry is None or not self.retry.honour_retry_after:
            return round(1.0 / delta)
        return 0

    def _grid(self, delta: float, top: int) -> _DeepGrid:
        kinds = []
        block = 1
        for w, count, call in self.kinds:
            pmf = _regrid(call, self.h, delta, top)      # past the depth: at top + 1
            nu = float(pmf[top + 1])
            fit = pmf[: top + 1] / max(1.0 - nu, 1e-300)
            kbar = float(np.dot(np.arange(count.size), count))
            thin = count if nu <= 0 else _thinned(count, 1.0 - nu)
            total = np.zeros(top + 2)                     # batch total, gathered at top + 1
            power = np.zeros(top + 2)
            power[0] = 1.0
            short = fit[: int(np.flatnonzero(fit).max()) + 1] if fit.any() else fit[:1]
            for k, pk in enumerate(thin):
                if k > 0:
                    power = _conv_cap(power, short, top + 1)
                if pk > 0:
                    total += pk * power
            tail = np.clip(1.0 - np.cumsum(total[: top + 1]), 0.0, None)
            over = np.flatnonzero(tail > _DEEP_EPS)
            block = max(block, int(over[-1]) + 2 if over.size else 1)
            kinds.append((w, thin, fit, tail, kbar, nu))
        # Past the block a launch is refused a call with chance ≤ ε (the quantile the
        # grid was chosen on; heavier tails are cut at twice the block it aimed for).
        block = min(block, top + 1, 2 * _DEEP_BLOCK * round(top / self._coarse_top))
        tail = np.zeros(top + 1)
        down = np.zeros((block, block))
        refused = np.zeros(block)
        herd = self.retry is not None and self.retry.max_retries > 0
        refusing = np.zeros((block, block)) if herd else np.zeros((0, 0))
        clean_down = np.zeros((block, block)) if herd else np.zeros((0, 0))
        never = calls = 0.0
        told = _ToldBlock(np.zeros((block, block)), []) if herd and self.spread else None
        for w, thin, fit, t, kbar, nu in kinds:
            tail += w * t
            f = np.zeros(block + 1)
            f[: min(block, fit.size)] = fit[:block]
            f[block] += max(0.0, 1.0 - float(f[:block].sum()))   # never fits this low
            launch, ref, clean = _launch_block(thin, f, block - 1, herd,
                                               self._counted_steps(delta))
            cum = np.cumsum(launch, axis=1)
            down[:, 1:] += w * cum[:, :-1]
            refused += w * ref
            if told is not None:
                told.move += w * launch
                told.parts.append((w, thin, f, _call_matrix(f, block - 1, 0)[0]
                                   if thin.size > 2 else np.zeros((0, 0))))
            if herd:
                refusing += w * (launch - clean)
                clean_down[:, 1:] += w * np.cumsum(clean, axis=1)[:, :-1]
            never += w * kbar * nu
            calls += w * kbar
        mean = sum(w * kbar * _mean_units(fit, delta) for w, _, fit, _, kbar, _ in kinds)
        return _DeepGrid(delta, top, block, tail, down, refused, never, calls,
                         mean / max(calls, 1e-300), refusing, clean_down, told)

    def _interior(self, g: _DeepGrid, lam: float
                  ) -> tuple[NDArray[np.float64], int, NDArray[np.float64]] | float:
        """The level law (unnormalised) on grid ``g`` at ``lam`` launches per second
        from the full bucket down to the block's top, ``lo``, and the interior's pull on
        the block (``base``, levels ``1..lo``): ``(pi, lo, base)``; or the fluid share of
        calls refused (``1 − 1/ρ``) when the bucket is so far overloaded that its law is
        all at the bottom."""
        c = lam * g.delta / self.refill
        K, J = g.top, g.block
        pi = np.zeros(K + 1)
        if J <= K:
            # Levels J − 1..K: the compound geometric deficit u_k = π[K − k].
            n = K - J + 1
            p = np.zeros(K + 2)
            p[1:] = c * g.tail
            L = 1 << max(4, math.ceil(math.log2(2 * (K + 2))))
            k = np.arange(K + 2, dtype=np.float64)
            a0 = 0.0
            if float(p.sum()) >= 1.0:
                # Overloaded: u grows; damp by its growth rate (Σ p_k e^{−a k} = 1).
                # (Over the launch totals' support only: T is 0 past the largest.)
                nz = np.flatnonzero(p)
                pn, kn = p[nz], k[nz]
                # Σ p_k e^{−a k} ≤ e^{−a·k_min}·Σ p_k: past log(Σ p)/k_min the sum is
                # below 1, so the bracket holds the root however deep the overload.
                top = max(50.0 / max(1.0, float(np.dot(pn, kn))),
                          math.log(float(pn.sum())) / float(kn.min())) + 1.0
                def grow(a: float) -> float:
                    return float(np.dot(pn, np.exp(-a * kn))) - 1.0

                # At the refill to rounding (Σ p read as 1 one way, 1 − 1e-16 the other,
                # hypothesis: 1,131 RPM, 60 s deep) nothing grows: no root to find.
                a0 = brentq(grow, 0.0, top) if grow(0.0) > 0.0 else 0.0
            a = a0 + 30.0 / L
            if a * n > 600.0:                                  # deep overload: fluid
                return 1.0 - 1.0 / max(float(p.sum()), 1.0)
            pt = np.fft.rfft(p * np.exp(-a * k), L)
            ut = np.fft.irfft(1.0 / (1.0 - pt), L)[: n + 1]
            u = ut * np.exp(a * (np.arange(n + 1) - n))
            pi[K - n:] = u[::-1]
            lo = J - 1
            # The interior's pull on the block: Σ_{j ≥ J} π[j]·T(j − i), i = 1..J − 1.
            if J > 1:
                # T(j − i) is 0 past the largest launch total: only levels up to it pull.
                reach = int(np.flatnonzero(g.tail).max()) + 1 if g.tail.any() else 1
                rest = pi[J: J + reach]
                tl = np.zeros(J - 1 + rest.size)
                m = min(tl.size, g.tail.size)
                tl[:m] = g.tail[:m]
                pull = np.correlate(tl, rest, mode="valid")    # index d0 = J − i
                base = c * pull[J - np.arange(1, J)]
            else:
                base = np.zeros(0)
        else:
            lo = K
            pi[K] = 1.0
            base = np.zeros(K)
        return pi, lo, base

    def _law(self, g: _DeepGrid, lam: float) -> NDArray[np.float64] | float:
        """The law of the level a launch finds (levels ``0..top`` of grid ``g``) at
        ``lam`` launches per second, without retries, or in a deep overload the fluid
        share (:meth:`_interior`); remembered per grid and rate."""
        key = (id(g), lam)
        hit = self._laws.get(key)
        if hit is None:
            hit = self._plain_law(g, lam)
            if self.closed is not None and not isinstance(hit, float):
                hit = self.closed.tilt(hit, g, lam, self.refill, self._closed_fade(g))
            if len(self._laws) >= 256:
                self._laws.clear()
            self._laws[key] = hit
        return hit

    def _plain_law(self, g: _DeepGrid, lam: float) -> NDArray[np.float64] | float:
        """:meth:`_law` of Poisson launches (no closed loop's tilt), not remembered."""
        got = self._interior(g, lam)
        if isinstance(got, float):
            return got
        pi, lo, base = got
        _recurse(pi, g.down, lam * g.delta / self.refill, base, lo, 0)
        return pi / float(pi.sum())

    def _closed_fade(self, g: _DeepGrid) -> float:
        """How much of the closed loop's tilt holds on grid ``g`` (:meth:`ClosedTurns.
        fade`), read at launches of ``_TILT_LOAD`` times the refill, once."""
        assert self.closed is not None
        hit = self._fades.get(id(g))
        if hit is None:
            mean = float(g.tail.sum()) * g.delta          # E[S] = δ·Σ P(S > d)
            hit = 0.0
            if mean > 0.0:
                lam = _TILT_LOAD * self.refill / mean
                pi = self._plain_law(g, lam)
                if not isinstance(pi, float):
                    hit = self.closed.fade(pi, g, lam, self.refill)
            self._fades[id(g)] = hit
        return hit

    def _share(self, g: _DeepGrid, lam: float) -> tuple[float, float]:
        """(share of calls refused, chance the level is below one mean call) at ``lam``
        launches per second on grid ``g``."""
        herd = self.retry is not None and self.retry.max_retries > 0
        if herd and self.retry is not None and not self.retry.honour_retry_after:
            return self._backoff_share(g, lam)
        if herd and self.retry is not None and self.retry.counts_rejected:
            return self._counted_share(g, lam)
        if herd and self.spread and self._told_fits:
            told = self._told_share(g, lam)
            if told is not None:
                return told
        if herd:
            got = self._interior(g, lam)
            if isinstance(got, float):
                self._last = (got, got, 0.0)
                return got, 1.0
            pi, lo, base = got
            if lo > 0:
                return self._herd_share(g, lam, pi, lo, base)
            _recurse(pi, g.down, lam * g.delta / self.refill, base, lo, 0)
            pi = pi / float(pi.sum())
        else:
            law = self._law(g, lam)
            if isinstance(law, float):
                return law, 1.0
            pi = law
        # (The calls that never fit are the caller's: :attr:`never_fit`.)
        refused = float(np.dot(pi[: g.block], g.refused))
        short = float(pi[: max(1, round(g.mean / g.delta))].sum())
        share = min(1.0, max(0.0, refused / g.calls))
        if herd:
            # A one-level block (lo = 0): every call that fits fits at any level (the
            # never-fitting ones are the caller's); no herd forms.
            self._last = (share, 0.0, 0.0)
        return share, min(1.0, short)

    @cached_property
    def spread(self) -> bool:
        """True when the calls' charges spread enough for told retries to follow the
        level (:func:`told_shares`) rather than a herd of equal charges
        (:meth:`_herd_share`): :func:`spreads` of the charge pooled over the calls."""
        pooled = np.zeros(max((c.size for _, _, c in self.kinds), default=1))
        for w, count, call in self.kinds:
            pooled[: call.size] += w * float(np.dot(np.arange(count.size), count)) * call
        return spreads(pooled, self.h)

    def _retried_law(self, g: _DeepGrid, lam: float) -> NDArray[np.float64] | float:
        """:meth:`_law`, a retry model's start; in a deep overload the fluid share, then
        stored in ``self._last`` as every call's (each refused on every try)."""
        assert self.retry is not None
        law = self._law(g, lam)
        if isinstance(law, float):
            self._last = (law, law, float(self.retry.max_retries) * law)
        return law

    @property
    def _told_fits(self) -> bool:
        """True when the coarse grid can follow told retries: a mean call at least a
        step and a block of a few levels. A bucket thousands of calls deep has a grid
        coarser than a call (chat-assistant's limits × 100, 60 s deep: a block of two
        levels, 0.2 steps a call), where the told fixed point said 0.88 % of fresh calls
        refused at the refill rate against the herd's 0.067 %; the herd keeps those."""
        g = self.grids()[0]
        return g.mean >= g.delta and min(g.block, g.top + 1) >= 4

    def _told_share(self, g: _DeepGrid, lam: float) -> tuple[float, float] | None:
        """:meth:`_share` with told retries where the charges spread: the fresh calls'
        share on grid ``g`` without retries, moved by what the retries do to it on the
        told grid (:func:`told_shares`, whose own share without retries it is scaled
        against, as :func:`_grid_corrected` does); the retries' own refusals per fresh
        call refused from there. Stores the other shares in ``self._last`` as
        :meth:`_herd_share`."""
        law = self._retried_law(g, lam)
        if isinstance(law, float):
            return law, 1.0
        p0 = float(np.dot(law[: g.block], g.refused[: g.block])) / g.calls
        short = float(law[: max(1, round(g.mean / g.delta))].sum())
        if lam not in self._told_at:
            if len(self._told_at) >= 256:
                self._told_at.clear()
            self._told_at[lam] = self._told(lam)
        hit = self._told_at[lam]
        if hit is None:
            return None
        fresh, attempt, failed, retries = told_moved(p0, hit)
        self._last = (fresh, failed, retries)
        return attempt, min(1.0, short)

    def _told(self, lam: float) -> tuple[float, float, float, float, float] | None:
        """:func:`told_shares` on the coarse grid at ``lam`` launches a second."""
        assert self.retry is not None
        g = self.grids()[0]
        got = self._interior(g, lam)
        if isinstance(got, float):                  # deep overload: all at the bottom
            return got, got, float(self.retry.max_retries), float(self.retry.max_retries), 1.0
        pi, lo, base = got
        if lo == 0 or g.told is None:               # a one-level block: no climb to
            return None                             # follow (the plain share answers)
        return told_shares(g.told, pi, lo, base, g.refused, g.calls, lam, self.refill,
                           g.delta, self.retry.max_retries,
                           self.retry.rejection_latency_s or 0.0)

    def _counted_share(self, g: _DeepGrid, lam: float) -> tuple[float, float]:
        """:meth:`_share` at a requests bucket that counts its refusals, retries told
        the retry-after; stores the other shares in ``self._last`` as
        :meth:`_herd_share`.

        A counted refusal takes what is left of the unit (the level goes to 0) after
        the retry-after was read from the level before, so a call refused at level ℓ
        comes back to ``1 − ℓ + r·τ`` (τ: the 429's way back), short unless ℓ ≤ r·τ,
        and its second retry to ℓ again: web-research on a 60 s bucket refuses 151 of
        153 first retries and 143 of 151 second ones at 76 sessions. Every such refusal
        holds the bucket under one unit: a refused call's m retries, each ``τ`` and
        about half a unit's refill apart, then a unit's refill from empty,
        ``D = m·(τ + 1/(2r)) + 1/r``, and every call arriving within it is refused and
        holds it in turn. So a visit under one unit that meets an arrival becomes a
        busy period of overlapping holds, ``(e^{λD} − 1)/λ`` long (M/D/∞): the level
        law without retries, its visits under one unit stretched so (their rate,
        ``r·π(1−)``, and the levels they start at, ``π``'s rise below one unit, are
        the law's)."""
        assert self.retry is not None
        m = self.retry.max_retries
        law = self._retried_law(g, lam)
        if isinstance(law, float):
            return law, 1.0
        u = max(1, round(1.0 / g.delta))                  # grid levels under one unit
        low = law[:u]
        top = float(low[-1])
        short = float(law[: max(1, round(g.mean / g.delta))].sum())
        if top <= 0.0:
            self._last = (0.0, 0.0, 0.0)
            return 0.0, short
        r = self.refill
        calls = lam * g.calls                              # calls a second
        tau = self.retry.rejection_latency_s or 0.0          # the 429's way back
        nu = r / g.delta * top                             # visits under one unit /s
        # The levels visits start at: π rises below one unit as P(start ≤ ℓ).
        starts = np.diff(np.concatenate(([0.0], np.maximum.accumulate(low)))) / top
        stay = (1.0 - (np.arange(u) + 0.5) * g.delta) / r   # to one unit, unhindered
        hold = m * (tau + 0.5 / r) + 1.0 / r
        # (Capped where it is astronomical: the share is then 1 to the last bit, and the
        # dot product below would overflow — a hypothesis case, chat-assistant at 10^6
        # RPM.)
        busy = min(math.expm1(min(calls * hold, 700.0)) / max(calls, 1e-300), 1e250)
        met = -np.expm1(-calls * stay)                     # an arrival meets the visit
        old = float(np.dot(starts, stay))
        new = float(np.dot(starts, met / max(calls, 1e-300) + met * busy))
        frac_old = nu * old
        p = min(1.0, nu * new / max(1.0 - frac_old + nu * new, 1e-300))
        again = counted_again(r, tau, calls)
        refused = 1.0 + m * again
        tries = 1.0 + (m - 1) * again
        self._last = (p, p * again, p * tries)
        attempt = p * refused / (1.0 + p * tries)
        return min(1.0, attempt), min(1.0, max(short, p))

    def _backoff_share(self, g: _DeepGrid, lam: float) -> tuple[float, float]:
        """:meth:`_share` with backoff retries (the retry-after not honoured); stores
        the other shares in ``self._last`` as :meth:`_herd_share`. Fresh calls meet the
        level law of launches, the admitted retries among them (one pass of the fixed
        point); a refused call's retries are chained from the level each try was
        refused at (:func:`_refused_chain`, as :meth:`BucketChain._retry_refusals`, on
        the grid :meth:`refused_after` carries levels on), a counted refusal taking its
        unit."""
        assert self.retry is not None
        m = self.retry.max_retries
        gaps = _backoff_gaps(self.retry)
        pooled = np.zeros(max(ch.size for _, _, ch in self.kinds))
        for w, _, ch in self.kinds:
            pooled[: ch.size] += w * ch
        units = np.arange(pooled.size, dtype=np.float64) * self.h
        lam_eff = lam
        for _ in range(2):
            law = self._retried_law(g, lam_eff)
            if isinstance(law, float):
                return law, 1.0
            p0 = min(1.0, float(np.dot(law[: g.block], g.refused[: g.block])) / g.calls)
            short = float(law[: max(1, round(g.mean / g.delta))].sum())
            chain = np.zeros(m)
            wts = pooled * _refused_below([(law, g.delta)], units, self.depth)
            if p0 > 0.0 and gaps and float(wts.sum()) > 0.0:
                pi, move, delta = self._carried(g, law)
                counted = round(1.0 / delta) if self.retry.counts_rejected else 0
                got = _refused_chain(pi, move, delta, self.refill, lam_eff, units, gaps,
                                     counted)
                chain = np.clip(got @ (wts / float(wts.sum())), 0.0, 1.0)
                # The retries come back to the low levels a backoff after a refusal (see
                # BucketChain._poisson_shares): the fresh calls' share that makes.
                tries_now = 1.0 + float(chain[:-1].sum()) if m > 1 else 1.0
                top = move.shape[0] - 1
                charge = _regrid(wts / float(wts.sum()), self.h, delta, top)
                retry_move = _call_matrix(charge, top, counted)[0]
                p0 = min(1.0, p0 * clustered_ratio(
                    pi, move, self._again_refused, retry_move, delta, self.refill, lam_eff,
                    lam_eff * g.calls * p0 * tries_now, gaps[0],
                    _WALK_MEMORY * self.depth / self.refill))
            refused = 1.0 + float(chain.sum())
            tries = 1.0 + float(chain[:-1].sum()) if m > 1 else 1.0
            fail = float(chain[-1]) if m else 1.0
            self._last = (p0, p0 * fail, p0 * tries)
            attempt = p0 * refused / (1.0 + p0 * tries)
            # The retries admitted come as launches too.
            lam_eff = lam * (1.0 + p0 * max(tries - (refused - 1.0), 0.0))
        return min(1.0, max(0.0, attempt)), min(1.0, short)

    def _carried(self, g: _DeepGrid, law: NDArray[np.float64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """The level law ``law`` (grid ``g``) on the grid refused calls are carried
        forward on (at most ``_AGAIN_LEVELS`` levels to the depth, each level split
        between the two around it), that grid's launch move (level → level, built once:
        its cost is about the cube of the levels) and its step (units)."""
        if self._again is None:
            top = min(self.grids()[1].top, _AGAIN_LEVELS)
            launch = np.zeros((top + 1, top + 1))
            refused = np.zeros(top + 1)
            for w, count, call in self.kinds:
                got = _launch_block(count, _regrid(call, self.h, self.depth / top, top), top,
                                    counted=self._counted_steps(self.depth / top))
                launch += w * got[0]
                refused += w * got[1]
            self._again = launch
            self._again_refused = refused
        top = self._again.shape[0] - 1
        delta = self.depth / top
        return _regrid(law, g.delta, delta, top)[: top + 1], self._again, delta

    def _herd_share(self, g: _DeepGrid, lam: float, pi: NDArray[np.float64], lo: int,
                    base: NDArray[np.float64]) -> tuple[float, float]:
        """:meth:`_share` with retries that honour the retry-after; stores the other
        shares in ``self._last`` (fresh refused per call, failed per call, retries per
        call). ``pi``: the levels above ``lo`` solved (the interior), ``base``: their pull
        on the block.

        A launch with a refusal starts a *herd* (as :meth:`BucketChain._herd`): its
        refused calls, and every fresh call until the level is back at one charge, are
        told the same instant; there the oldest is admitted and the rest refused again,
        a charge's refill later, the fresh calls meanwhile joining; it ends at a tick no
        call joined, the level at one charge. In level-crossing terms the refusing launch
        jumps to that level, after the herd's time spent refusing every fresh call: the
        block's balance gains the upward jumps (a linear solve, not the recursion)."""
        assert self.retry is not None
        m = self.retry.max_retries
        c = lam * g.delta / self.refill
        ek = g.calls
        b = max(1, min(lo, round(g.mean / g.delta)))        # the herd's exit level
        tick = b * g.delta / self.refill
        if 0.0 < g.mean < 0.5 * g.delta:
            # A grid coarser than a call (a bucket millions of calls deep): the herd
            # admits one call per charge's refill, not per grid step (which let ~70
            # calls join a tick at 13% of the refill and made the queue singular).
            tick = g.mean / self.refill
        n = lo + 1                                          # block levels solved here
        ref = g.refusing[:n, :n]
        p_ref = ref.sum(axis=1)
        # Balance across level i = 1..lo: unknowns π[0..lo − 1], π[lo] known. Above the
        # exit level b only launches from above cross i (the recursion); across i ≤ b
        # the refusing launches from below jump up too: a small solve for π[0..b − 1].
        dp = g.clean_down[:n, :n] + p_ref[:, None] * (np.arange(n)[None, :] > b)
        _recurse(pi, dp, c, base, lo, b)
        row = np.arange(1, b + 1)[:, None]
        col = np.arange(b)[None, :]
        A = np.where(col == row - 1, 1.0, 0.0)
        A += np.where(col < row, c * p_ref[:b][None, :], 0.0)
        A -= np.where(col >= row, c * dp[:b, 1: b + 1].T, 0.0)
        rhs = c * (pi[b: lo + 1] @ dp[b: lo + 1, 1: b + 1])
        if base.size:
            rhs = rhs + base[:b]
        pi[:b] = np.clip(np.linalg.solve(A, rhs), 0.0, None)
        # The herd a refusing launch from each level starts, and what it does.
        h = _HERD + 1
        # Fresh calls join until the level is back at one charge: only from below it.
        wait = (b - np.arange(b, dtype=np.float64)) * (g.delta / self.refill)
        pre = _poisson_rows(lam * ek * wait, h)
        safe = np.maximum(p_ref, 1e-300)
        herd0 = np.einsum("jl,lh->jh", ref[:, :b], pre)
        herd0[:, 0] += ref[:, b:].sum(axis=1)
        herd0 /= safe[:, None]
        pre_s = (ref[:, :b] @ wait) / safe
        # Plus the launch's own refused calls (its mean, split between two counts).
        r_calls = np.where(p_ref > 1e-300, g.refused[:n] / safe, 1.0)
        low = np.clip(np.floor(r_calls).astype(np.int64), 1, _HERD)
        frac = np.clip(r_calls - low, 0.0, 1.0)
        start = np.zeros((n, 2 * h + 1))
        rows = np.arange(n)[:, None]
        cols = low[:, None] + np.arange(h)[None, :]
        np.add.at(start, (rows, cols), (1.0 - frac)[:, None] * herd0)
        np.add.at(start, (rows, cols + 1), frac[:, None] * herd0)
        start[:, _HERD] += start[:, h:].sum(axis=1)
        start = start[:, :h]
        # The queue of calls still to admit, v = 1..m, tick by tick (doomed: past m).
        join = _poisson_rows(np.array([lam * ek * tick]), h)[0]
        ks = np.arange(h)
        v_all = np.arange(1, m + 1)
        nxt = np.zeros((m, m + 1))
        for v in v_all:
            np.add.at(nxt[v - 1], np.minimum(v - 1 + ks, m), join)
        doomed = np.maximum(ks[None, :] - (m - v_all[:, None] + 1), 0) @ join
        try:
            N = np.linalg.inv(np.eye(m) - nxt[:, 1:])     # expected ticks at v from v0
        except np.linalg.LinAlgError:
            # Calls join the herd so fast (P(none joins a tick) underflows to 0) that
            # it never drains: overloaded, every call refused on every attempt.
            self._last = (1.0, 1.0, float(m))
            return 1.0, 1.0
        ticks_v = N.sum(axis=1)
        ret_v = N @ v_all.astype(np.float64)
        gone_v = N @ doomed
        v0 = np.minimum(ks, m)
        doom0 = np.maximum(ks - m, 0).astype(np.float64)
        idx = np.maximum(v0 - 1, 0)
        has = v0 > 0
        ticks_h = np.where(has, ticks_v[idx], 0.0)
        ret_h = np.where(has, ret_v[idx], 0.0)
        gone_h = np.where(has, gone_v[idx], 0.0) + doom0
        ticks = start @ ticks_h
        gone = start @ gone_h
        retries = start @ ret_h + m * gone
        retries_ref = retries - start @ ticks_h                 # one admitted a tick
        dur = pre_s + tick * ticks
        x = pi[:n]
        herds = lam * float(np.dot(x, p_ref * dur))
        z = float(pi.sum()) + herds                             # time: levels + herds
        fresh = lam * ek
        fresh_ref = (lam * float(np.dot(x, g.refused[:n])) + fresh * herds) / z
        ret = lam * float(np.dot(x, p_ref * retries)) / z
        rr = lam * float(np.dot(x, p_ref * retries_ref)) / z
        fail = lam * float(np.dot(x, p_ref * gone)) / z
        self._last = (min(1.0, fresh_ref / fresh), min(1.0, fail / fresh), ret / fresh)
        attempt = (fresh_ref + rr) / max(fresh + ret, 1e-300)
        short = float(pi[: max(1, round(g.mean / g.delta))].sum()) / z + herds / z
        return min(1.0, max(0.0, attempt)), min(1.0, short)

    def shares(self, lam: float, sessions: float = math.inf) -> dict[str, float]:
        """429 shares at ``lam`` launches per second (as :meth:`BucketChain.shares`;
        without retries every one is the same)."""
        grids = self.grids()
        hit = self._cache.get(lam)
        if hit is not None:
            return hit
        both, rest = [], []
        for g in grids:
            both.append(self._share(g, lam * self.scale))
            rest.append(self._last)
        got = [x for x, _ in both]
        # The refill noise shifts log p by O(δ): extrapolate it away.
        p = _richardson(got[0], got[1])
        out = {"attempt": p, "call": p, "failed": p, "retry_share": 0.0,
               "short": both[1][1]}
        if self.retry is not None and self.retry.max_retries > 0:
            out.update(call=_richardson(rest[0][0], rest[1][0]),
                       failed=_richardson(rest[0][1], rest[1][1]),
                       retry_share=_richardson(rest[0][2], rest[1][2]))
        self._cache[lam] = out
        return out


    def poisson_share(self, lam: float) -> float:
        """Share of the calls refused at ``lam`` launches per second without retries,
        the ones charged past the depth included (:meth:`BucketChain.poisson_share`)."""
        return min(1.0, self.shares(lam)["call"] + self.never_fit)

    def load_factor(self, p: float, lam: float) -> float:
        """Launches a second with a share ``p`` of calls refused at ``lam`` launches a
        second, over those without (:func:`shortened_factor`; 1 with retries, or
        without a walk or cycle): each launch pattern refused by its calls' charges, a
        lone call's ``P(L < charge)`` (:meth:`refused_by_charge`) for each, scaled to
        ``p``. hunt-3 reduced (a call, a fan-out of small calls, a 7,307-token call
        lasting 21 s; continued turns): the engine sends 7.5 % more calls a second than
        the unthrottled cycle at 123 sessions."""
        w = self.walk
        if (w is None or self.cycle_s <= 0.0 or w.rest.size == 0 or p <= 0.0
                or (self.retry is not None and self.retry.max_retries > 0)):
            return 1.0
        # A launch's calls take the level in turn: call j is refused where the level is
        # below the charge of calls 1..j (a fan-out's small calls are refused together,
        # which a lone call's P(L < charge) misses: hunt-3 reduced, 0.78 % of its 384-token
        # fan-out calls refused in the engine, 0.03 % alone).
        sums = self._launch_sums()
        below = self.refused_by_charge(lam, np.arange(sums.shape[1], dtype=np.float64)
                                       * self.h)
        return shortened_factor(w, self.cycle_s,
                                scaled_pattern_shares(w, sums @ below, p),
                                self.abort_turn, self.rejection_latency)

    def _launch_sums(self) -> NDArray[np.float64]:
        """Each launch pattern of :attr:`walk` as the sum over its calls of the laws of
        their running charge totals (lattice h, gathered past the depth): row ``p``
        dotted with ``P(L < units)`` is the expected refused calls of a launch of it."""
        if self._sums is not None:
            return self._sums
        w = self.walk
        assert w is not None
        top = math.ceil(self.depth / self.h) + 1
        out = np.zeros((w.patterns.shape[0], top + 1))
        for i, row in enumerate(w.patterns):
            run = np.zeros(top + 1)
            run[0] = 1.0
            for spec, x in enumerate(row):
                pmf = w.pmfs[spec]
                for _ in range(int(x)):
                    # (A TPM bucket's 34,589-point depth and a 25,044-point prompt law:
                    # 0.9e9 products a call directly, ~1 s a pattern; hunt-2043 without
                    # retries 2.5 s.)
                    run = _gathered(lattice_convolve(run, pmf), top)
                    out[i] += run
        self._sums = out
        return out

    def refused_by_charge(self, lam: float, units: NDArray[np.float64]
                          ) -> NDArray[np.float64]:
        """The chance a lone call charging ``units`` is refused at ``lam`` launches per
        second without retries: ``P(L < charge)`` for the level ``L`` a launch finds
        (:meth:`BucketChain.refused_by_charge`, the level law by level crossing)."""
        laws = []
        for g in self.grids():
            law = self._law(g, lam * self.scale)
            if isinstance(law, float):       # deep overload: the level at the bottom
                law = np.zeros(g.top + 1)
                law[0] = 1.0
            laws.append((law, g.delta))
        return _refused_below(laws, units, self.depth)

    def refused_after(self, lam: float, units: NDArray[np.float64],
                      delays: tuple[float, ...]) -> NDArray[np.float64]:
        """:meth:`BucketChain.refused_after` from the level law by level crossing (the
        fine grid's), carried forward on a grid of at most ``_AGAIN_LEVELS`` levels to
        the depth (each level split between the two around it): the carrying costs the
        levels squared times the events in a delay, about the cube of the levels, so it
        stays at the level chain's cost and grain where the chain hands over."""
        g = self.grids()[1]
        law = self._law(g, lam * self.scale)
        if isinstance(law, float):            # deep overload: short on every retry
            return np.ones((len(delays), np.asarray(units).size))
        pi, move, delta = self._carried(g, law)
        return _refused_again(pi, move, delta, self.refill, lam * self.scale, units, delays)


# ---------------------------------------------------------------------------------------
# Told retries at a bucket whose charges spread
# ---------------------------------------------------------------------------------------

# Retries told the retry-after follow the level, not a herd, when the pooled charge's
# coefficient of variation passes this (smaller calls get in while a big one waits).
_TOLD_SPREAD = 0.25
# The fixed point's passes, at most, and its tolerance (relative, on the retries'
# landing flux).
_TOLD_PASSES = 60
_TOLD_TOL = 1e-7


def spreads(pmf: NDArray[np.float64], h: float) -> bool:
    """True when a charge law (lattice step ``h``) spreads enough for told retries to
    follow the level (:func:`told_shares`) rather than herd: its coefficient of
    variation passes ``_TOLD_SPREAD``."""
    u = np.arange(pmf.size) * h
    total = float(pmf.sum())
    mean = float(pmf @ u) / max(total, 1e-300)
    if total <= 0.0 or mean <= 0.0:
        return False
    var = max(float(pmf @ (u * u)) / total - mean * mean, 0.0)
    return math.sqrt(var) > _TOLD_SPREAD * mean


@dataclass
class _ToldBlock:
    """The bottom block of a deep bucket's grid (levels ``0..J − 1``) as told retries
    need it: a launch's move (level → level) and each kind's ``(weight, count law,
    charge law in steps — index J: never fits this low —, one call's move)``."""

    move: NDArray[np.float64]
    parts: list[tuple[float, NDArray[np.float64], NDArray[np.float64],
                      NDArray[np.float64]]]


def _tried(tb: _ToldBlock, pi: NDArray[np.float64]) -> NDArray[np.float64]:
    """``W[ℓ, s]``: calls charging ``s`` steps (``s = J``: more than the block) tried at
    level ``ℓ`` per launch, launches meeting the levels ``pi`` (a launch's later calls
    meet the level its earlier ones left)."""
    W = np.zeros((pi.size, pi.size + 1))
    for w, count, f, M in tb.parts:
        left = 1.0 - np.cumsum(count)                 # P(more than t calls)
        v = pi
        # Every call of a part has the charge law f: its levels summed over the calls
        # first, one outer product a part (one a call was ~27 a launch, hunt-2043).
        acc = np.zeros(pi.size)
        for t in range(count.size - 1):
            if left[t] <= 1e-15:
                break
            acc += (w * left[t]) * v
            if t + 2 < count.size:
                v = v @ M
        W += np.outer(acc, f)
    return W


# Entries of the step matrices :func:`_interfered` builds at once (a span of levels).
_INTERFERED_BLOCK = 1 << 16


def _interfered(move: NDArray[np.float64], pl: float, x: float) -> NDArray[np.float64]:
    """``q[ℓ, s]``: the chance a call charging ``s`` steps (``s = J``: more than the
    block), refused at level ``ℓ < s`` and told to come back when the refill has brought
    the level to ``s`` (plus ``x`` steps: the 429's way back, and the retry-after
    rounded up), finds less than ``s`` there: fresh calls that fit the rising level got
    in meanwhile, more than ``x`` steps of them. Followed level by level of the
    undisturbed climb (a launch in each with chance ``pl``, moving the level by
    ``move``) in the steps ``C`` taken so far, from the top down for every charge at
    once; a charge that lands past the block's top lands at it."""
    n = move.shape[0]
    top = n - 1
    x0 = math.floor(x)
    fx = x - x0
    cn = min(x0 + 3, top + 3)                       # C = 0..x0 + 1, then refused
    gone = cn - 1
    s_all = np.arange(n + 1)
    land = np.minimum(s_all + x0, top)              # the level each charge lands at
    room = land - np.minimum(s_all, top)            # steps that may get in meanwhile
    cs = np.arange(cn)[:, None]
    end = np.where(cs <= room[None, :], 0.0, 1.0)
    # Below the level: P(a launch from L ends at or below it), per L (cumulative move).
    cum = np.cumsum(move, axis=1)
    # The climb's last fraction of a step (x past its whole steps): a launch in it
    # (chance 1 − e^{−c·fx}) refuses the retry if it leaves the level below the charge
    # (a whole step's launch at a fraction's chance made q jump at each whole step of x:
    # 0.19 -> 0.24 from x = 0.999 to 1.000).
    pf = -math.expm1(math.log1p(-min(pl, 1.0 - 1e-16)) * fx)
    whole = (land == s_all + x0) & (s_all >= 1) & (s_all <= top)
    for taken in range(min(x0 + 1, cn - 1)):
        at_lvl = land[whole] - taken
        fine = at_lvl >= 0
        cols = np.flatnonzero(whole)[fine]
        end[taken, cols] = pf * cum[at_lvl[fine], s_all[cols] - 1]
    q = np.zeros((n, n + 1))
    v = np.zeros((cn, n + 1))
    # Each level's step matrix T[C, C'] (C' = gone: refused, absorbing) built for a span
    # of levels at once: one level's dozen small numpy calls were most of the time.
    k = np.arange(cn)[None, None, :]
    c3 = np.arange(cn)[None, :, None]
    span = max(1, _INTERFERED_BLOCK // (cn * cn))
    for hi in range(top, -1, -span):
        ys = np.arange(hi, max(hi - span, -1), -1)
        y = ys[:, None, None]
        live = c3 < np.minimum(gone, y + 1)        # C = c reachable at level y
        lvl = np.clip(y - c3, 0, None)              # the level with C = c taken
        T = np.where(live & (k < gone) & (k >= c3) & (y - k >= 0),
                     pl * move[lvl, np.clip(y - k, 0, top)], 0.0)
        T = np.where(live & (k == gone) & (y - gone >= 0),
                     pl * cum[lvl, np.clip(y - gone, 0, top)], T)
        T += np.where(live & (k == c3), 1.0 - pl, 0.0)
        T[:, gone, gone] = 1.0
        for i, yy in enumerate(ys):
            v = T[i] @ v
            at = land == yy
            v[:, at] = end[:, at]
            q[yy] = v[0]
    return np.where(np.arange(n)[:, None] < s_all[None, :], q, 0.0)


def told_moved(p0: float, told: tuple[float, float, float, float, float]
               ) -> tuple[float, float, float, float]:
    """``(fresh, attempt, failed, retries)`` shares per call: the fresh calls' share
    without retries ``p0`` moved by :func:`told_shares`' answer ``told`` (its own share
    with retries over its own without, the grid's error taken out as
    :func:`_grid_corrected` does), the retries' refusals and failures per fresh call
    refused from there."""
    t0, t1, again, tries, failed = told
    fresh = min(1.0, p0 * t1 / t0) if t0 > 0.0 else min(1.0, t1)
    attempt = min(1.0, max(0.0, fresh * (1.0 + again) / (1.0 + fresh * tries)))
    return fresh, attempt, min(1.0, fresh * failed), fresh * tries


def _a_law(raw: NDArray[np.float64]) -> bool:
    """True when ``raw`` (levels scaled to the interior's largest, 1) is a law: finite,
    nowhere negative, and not all at the bottom past what doubles hold (the landings'
    gain past 1, deep overload: the fixed point would grow without end)."""
    top = float(np.max(raw))
    return bool(np.isfinite(raw).all()) and top < 1e12 and float(np.min(raw)) >= -1e-9 * top


def told_shares(tb: _ToldBlock, pi: NDArray[np.float64], lo: int,
                base: NDArray[np.float64], refused: NDArray[np.float64], calls: float,
                lam: float, refill: float, delta: float, retries: int, latency: float
                ) -> tuple[float, float, float, float, float] | None:
    """Retries told the retry-after at a bucket whose charges spread, on a deep
    bucket's grid (``delta`` units a step) at ``lam`` launches a second: ``(fresh calls
    refused without retries, with them, retries refused per fresh call refused, retries
    per fresh call refused, fresh calls failed per fresh call refused)``, each of the
    calls that fit; None where no fixed point keeps the law a law (the retries'
    landings outrun the refill). ``pi``: the level law (unnormalised) solved above the
    block's top ``lo`` (:meth:`DeepBucket._interior`), ``base`` the interior's pull on
    the block, ``refused`` the block's refused calls per launch by level.

    A call charging ``s`` refused at level ``ℓ`` is told ``(s − ℓ)/r``: its retry comes
    when the refill has brought the level to ``s`` (plus the 429's way back), unless a
    fresh call that fit the rising level got in meanwhile (:func:`_interfered`), or
    another's retry landed first; then it is told again from the level it finds. So the
    retries admitted take their units at a known level, ``s`` (plus the way back): the
    block's level crossing gains those jumps — a flux of the retries admitted, each
    crossing the levels between where it lands and where it leaves the level — solved
    with it as a fixed point (the refusals make the flux; a herd of equal charges is
    :meth:`DeepBucket._herd_share`'s). The landings of others are a hazard on the climb
    (their share of its up-crossings; past them, one gets in a crossing and the rest are
    told again), each retry of a call refused independently with its charge's chance."""
    n = lo + 1
    J = tb.move.shape[0]
    c = lam * delta / refill
    # The law is unnormalised (an overloaded bucket's grows by orders of magnitude from
    # the top down): scaled to its largest level first, which the solve is linear in.
    scale = max(float(np.max(pi[lo:])), float(np.max(base[:lo])) if lo and base.size
                else 0.0, 1e-300)
    pi = pi / scale
    base = base / scale
    x = refill * (latency + 5e-4) / delta          # retry-after: up to 1 ms more
    x0 = math.floor(x)
    fx = x - x0
    down = np.zeros((J, J + 1))
    down[:, 1:] = np.cumsum(tb.move, axis=1)        # P(a launch from j ends below i)
    # The block's balance across i = 1..lo, unknowns π[0..lo − 1]:
    # π[i − 1] − c·Σ_{lo > j ≥ i} π[j]·down[j, i] = c·π[lo]·down[lo, i] + base[i − 1]
    # + (δ/r)·(landings crossing i).
    A = np.eye(lo)
    i = np.arange(1, lo + 1)
    j = np.arange(lo)
    A -= np.where(j[None, :] >= i[:, None], c * down[:lo, 1: lo + 1].T, 0.0)
    inv = np.linalg.inv(A) if lo else A
    rhs0 = c * pi[lo] * down[lo, 1: lo + 1] + (base[:lo] if base.size else 0.0)
    above = float(pi[lo:].sum())
    s_all = np.arange(n + 1)                        # charges; n: more than the block
    land = np.minimum(s_all + x0, lo)
    split = (s_all + x0 + 1 <= lo) & (fx > 0.0)
    land_hi = np.where(split, land + 1, land)
    w_lo = np.where(split, 1.0 - fx, 1.0)
    below = np.arange(n)[:, None] < s_all[None, :]
    pl = -math.expm1(-c)
    fresh_q = _interfered(tb.move[:n, :n], pl, x)

    def levels(flux: NDArray[np.float64]) -> NDArray[np.float64]:
        # Landings from y to y − s cross the levels y − s < i ≤ y.
        cross = np.zeros(lo + 2)
        for at, wt in ((land, w_lo), (land_hi, 1.0 - w_lo)):
            f = flux * wt
            np.add.at(cross, np.clip(at - np.minimum(s_all, at) + 1, 0, lo + 1), f)
            np.add.at(cross, np.minimum(at + 1, lo + 1), -f)
        lands = np.cumsum(cross)[1: lo + 1]
        out = pi[: n].copy()
        out[:lo] = inv @ (rhs0 + lands / (refill / delta)) if lo else out[:lo]
        return out

    x_lv = np.clip(levels(np.zeros(n + 1)), 0.0, None)
    z = above + float(x_lv[:lo].sum())
    p0 = float(x_lv @ refused[:n]) / (z * calls)
    flux = np.zeros(n + 1)                          # retries admitted, by charge
    q1 = np.zeros(n + 1)
    ref = np.zeros((n, n + 1))
    for _ in range(_TOLD_PASSES):
        lands = np.zeros(n)
        np.add.at(lands, land, flux * w_lo)
        np.add.at(lands, land_hi, flux * (1.0 - w_lo))
        ups = (refill / delta) * np.concatenate([[np.inf], x_lv[:-1]])
        share = np.divide(lands, ups, out=np.where(lands > 0.0, 1e12, 0.0),
                          where=ups > lands * 1e-12)
        # More retries landing at a level than it is crossed upwards: one gets in a
        # crossing, the rest are told again (a fan-out's calls refused together).
        crowd = np.maximum(share, 1.0)
        theta = np.minimum(share, 1.0)
        admit = w_lo / crowd[land] + (1.0 - w_lo) / crowd[land_hi]
        ref = _tried(tb, x_lv) * below
        # Refused again: a fresh call got in, or another's retry landed, on the climb
        # (up to the level before its own: those landing with it are a herd's).
        cum = np.concatenate([[0.0], np.cumsum(theta[1:])])    # Θ(y) = Σ_{1..y}
        climb = cum[np.maximum(land - 1, 0)][None, :] - cum[:, None]
        others = np.exp(-np.maximum(climb, 0.0))
        q = 1.0 - (1.0 - fresh_q) * others * admit[None, :]
        refs = ref.sum(axis=0)
        q1 = np.where(refs > 0, (ref * q).sum(axis=0) / np.maximum(refs, 1e-300), 0.0)
        new = lam * refs * (1.0 - q1 ** retries)
        res = float(np.abs(new - flux).sum())
        if res <= _TOLD_TOL * float(new.sum()) or res <= 1e-300:
            break
        # A step whose landings ask more of a level than its crossings give makes the
        # law negative there (deep overload, fan-outs refused whole): halve it until
        # the law stays a law (no flux always does).
        step = 1.0
        while True:
            cand = flux + step * (new - flux)
            raw = levels(cand)
            if _a_law(raw) or step < 1e-4:
                break
            step *= 0.5
        if not _a_law(raw):
            # No step keeps it a law: the retries' landings outrun the refill (deep
            # overload); the caller's herd answers (it held 0.52 of fresh calls refused,
            # the told law without landings, where it had said 0.67 just below).
            return None
        flux = cand
        x_lv = np.clip(raw, 0.0, None)
    z = above + float(x_lv[:lo].sum())
    refs = ref.sum(axis=0)
    per = max(float(refs.sum()), 1e-300)
    again = sum(float(refs @ q1 ** k) for k in range(1, retries + 1)) / per
    tries = sum(float(refs @ q1 ** (k - 1)) for k in range(1, retries + 1)) / per
    failed = float(refs @ q1 ** retries) / per
    fresh = max(p0, float(x_lv @ refused[:n]) / (z * calls))
    return p0, fresh, again, tries, failed


# Bunched launches (:func:`bunched_kinds`): the most calls a launch holds before they are
# taken in blocks (the level law's launch matrices take a product per call), and the log
# step of the grid the extra calls' mean is taken on (5 %: the N a search asks share the
# level law's grids, each built in milliseconds).
_BUNCH_CALLS = 48
_BUNCH_STEP = math.log(1.05)
_BUNCH_TAIL = 1e-12


def calls_dispersion(g: NDArray[np.float64], charge: NDArray[np.float64]
                     ) -> tuple[float, float]:
    """(mean units, ``E[B²]/E[B]`` of the calls that come together) of a window law ``g``
    of units whose calls are charged by ``charge`` (both on one lattice): a compound
    Poisson count of launches of ``B`` calls has ``Var S = λw·(E[B]·Var C + E[B²]·E[C]²)``,
    so the units' index of dispersion less the charges' own spread, over the mean
    charge. (0, 0) without units or charge."""
    g = g / float(g.sum())
    k = np.arange(g.size, dtype=np.float64)
    mean_s = float(np.dot(k, g))
    x = np.arange(charge.size, dtype=np.float64)
    c = charge / float(charge.sum())
    e_c = float(np.dot(x, c))
    if mean_s <= 0.0 or e_c <= 0.0:
        return 0.0, 0.0
    v_c = max(float(np.dot(x * x, c)) - e_c * e_c, 0.0)
    v_s = max(float(np.dot(k * k, g)) - mean_s * mean_s, 0.0)
    return mean_s, (v_s / mean_s - v_c / e_c) / e_c


def bunched_kinds(kinds: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]],
                  d: float, more: float = 1.0
                  ) -> tuple[list[tuple[float, NDArray[np.float64], NDArray[np.float64]]],
                             float] | None:
    """Launch kinds (``(share, calls per launch, one call's charge)``, as
    :class:`DeepBucket` takes them) each joined by ``ν`` more calls, Poisson, of its
    charge, so that the calls that come together have ``E[B²]/E[B] = d``:
    ``(E[K²] + (2E[K] + 1)ν + ν²)/(E[K] + ν) = d``, ``K`` the launches' own calls (``ν``
    on a 5 % grid); and the factor on the launch rate (``E[K]/(E[K] + ν)``, the launches
    left with a call). None where ``d`` is at most ``more`` times the launches' own.
    Launches of more than :data:`_BUNCH_CALLS` calls are taken in blocks of calls, the
    mean kept."""
    from capacity.analytic.fleet import _conv_power, _poisson, _rebin  # it imports this

    e1 = e2 = 0.0
    for share, count, _ in kinds:
        kk = np.arange(count.size, dtype=np.float64)
        e1 += share * float(np.dot(kk, count))
        e2 += share * float(np.dot(kk * kk, count))
    if e1 <= 0.0 or d <= more * e2 / e1:
        return None
    b = 1.0 + 2.0 * e1 - d
    nu = 0.5 * (-b + math.sqrt(b * b - 4.0 * (e2 - d * e1)))
    nu = math.exp(round(math.log(max(nu, 1e-9)) / _BUNCH_STEP) * _BUNCH_STEP)
    extra = _poisson(nu)
    out = []
    kept = 0.0
    for share, count, charge in kinds:
        both = np.convolve(count, extra)
        # Cut where less than 1e-12 is left (gathered there): _poisson's 12σ reach
        # took blocks of two from a mean of 2.2 extra calls, which moved N* by 3.
        tail = np.cumsum(both[::-1])[::-1]
        last = int(np.flatnonzero(tail > _BUNCH_TAIL)[-1]) if (tail > _BUNCH_TAIL).any() \
            else both.size - 1
        both = np.concatenate([both[:last], [float(tail[last])]])
        block = math.ceil((both.size - 1) / _BUNCH_CALLS)
        if block > 1:
            both = _rebin(np.arange(both.size, dtype=np.float64) / block, both)
            charge = _conv_power(charge, block)
        # (A launch left without a block charges nothing: thinned out.)
        w = share * (1.0 - float(both[0]))
        both = both.copy()
        both[0] = 0.0
        if w > 0.0:
            out.append((w, both / float(both.sum()), charge))
            kept += w
    if kept <= 0.0:
        return None
    return [(w / kept, k, c) for w, k, c in out], kept * e1 / (e1 + nu)


def counted_again(refill: float, tau: float, calls: float) -> float:
    """The chance a retry told the retry-after is refused again by a requests bucket
    that counts its refusals (:meth:`DeepBucket._counted_share`): ``refill`` units/s,
    ``tau`` the 429's way back (s), ``calls`` arriving a second. A first retry is
    admitted only from a level within ``r·τ`` of empty, and only if nothing came in its
    wait; later ones meet the level they were refused at."""
    return 1.0 - min(1.0, refill * tau) * math.exp(-calls * (tau + 1.0 / refill))


def _recurse(pi: NDArray[np.float64], down: NDArray[np.float64], c: float,
             base: NDArray[np.float64], lo: int, stop: int) -> None:
    """``π[i − 1] = c·Σ_{lo ≥ j ≥ i} π[j]·down[j, i] + base[i − 1]`` for ``i = lo..stop + 1``
    (the balance across level ``i`` when only launches from above cross it), in place."""
    dt = np.ascontiguousarray(down[: lo + 1, : lo + 1].T)
    extra = base if base.size else np.zeros(lo)
    for i in range(lo, stop, -1):
        pi[i - 1] = c * dt[i, i: lo + 1].dot(pi[i: lo + 1]) + extra[i - 1]


def _richardson(coarse: float, fine: float) -> float:
    """``2·log(fine) − log(coarse)``, exponentiated (the fine value when either is 0)."""
    if min(coarse, fine) <= 0.0:
        return max(0.0, fine)
    return min(1.0, math.exp(2.0 * math.log(fine) - math.log(coarse)))


# Grids by (lattice, refill, depth, steps, kinds): the think-time sensitivity and the
# joint ceiling rebuild the same bucket at other cycles (the kinds' shares do not move).
_DEEP_GRIDS: dict[tuple[object, ...], tuple[list[_DeepGrid], dict[float, dict[str, float]]]] = {}


def _launch_block(count: NDArray[np.float64], pmf: NDArray[np.float64], top: int,
                  clean: bool = False, counted: int = 0
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A launch of ``count`` calls of charge law ``pmf`` (steps; past ``top`` never fit)
    on levels ``0..top``: (level → level after, expected refused calls by level, and
    with ``clean`` the outcomes with no call refused — else an empty matrix).
    ``counted`` > 0: a refused call takes that many steps if they are there (a requests
    bucket counting its refusals, :func:`_call_matrix`)."""
    n = top + 1
    if counted > 0:
        fit, ref, r = _call_outcomes(pmf, top, counted, apart=True, half=False)
        M = fit + ref
    else:
        # A refused call stays where it is: its move is the diagonal's (as summed).
        M, r = _call_matrix(pmf, top, 0)
        fit = M.copy()
        fit[np.arange(n), np.arange(n)] -= r
    power = np.eye(n)
    fpower = np.eye(n)
    so_far = np.zeros(n)
    A = np.zeros((n, n))
    C = np.zeros((n, n)) if clean else np.zeros((0, 0))
    R = np.zeros(n)
    last = int(np.flatnonzero(count).max()) if count.any() else 0
    for k in range(last + 1):
        if k > 0:
            so_far = so_far + power @ r
            # A BLAS product (one thread in the CLI, capacity.cli.entry): einsum's loop
            # took 5–8 times as long at 60–250 levels, most of a fan-out's answer.
            power = power @ M
            if clean:
                fpower = fpower @ fit
        if count[k] > 0:
            A += count[k] * power
            R += count[k] * so_far
            if clean:
                C += count[k] * fpower
    return A, R, C


def _thinned(count: NDArray[np.float64], keep: float) -> NDArray[np.float64]:
    """The law of a count whose members are each kept with chance ``keep``."""
    out = np.zeros(count.size)
    for k, pk in enumerate(count):
        if pk > 0:
            out[: k + 1] += pk * _binomial_row(k, keep)
    return out


def _binomial_row(k: int, p: float) -> NDArray[np.float64]:
    j = np.arange(k + 1)
    lg = np.array([math.lgamma(k + 1) - math.lgamma(x + 1) - math.lgamma(k - x + 1)
                   for x in j])
    with np.errstate(divide="ignore"):
        lp = j * math.log(max(p, 1e-300)) + (k - j) * math.log(max(1.0 - p, 1e-300))
    return np.asarray(np.exp(lg + lp))


def _conv_cap(a: NDArray[np.float64], b: NDArray[np.float64], cap: int
              ) -> NDArray[np.float64]:
    """``a ⊛ b`` on ``0..cap``, the mass past ``cap`` gathered there."""
    last = int(np.flatnonzero(a).max()) + 1 if a.any() else 1
    out = np.convolve(a[:last], b)
    res = np.zeros(cap + 1)
    m = min(cap + 1, out.size)
    res[:m] = out[:m]
    res[cap] += float(out[cap + 1:].sum())
    return res


def _quantile_units(count: NDArray[np.float64], call: NDArray[np.float64], h: float,
                    depth: float) -> float:
    """A launch's largest total charge (units), roughly: its most calls (beyond a 1e-6
    chance) times the largest charge of one (beyond 1e-6), at most the depth."""
    cc = np.cumsum(count)
    kmax = int(np.searchsorted(cc, 1.0 - 1e-6))
    cb = np.cumsum(call)
    bmax = float(np.searchsorted(cb, 1.0 - 1e-6)) * h
    return min(depth, max(kmax, 1) * bmax)


# ---------------------------------------------------------------------------------------
# A few sessions: the launches of a closed population (one launch per turn)
# ---------------------------------------------------------------------------------------

# The closed chain is used up to this many sessions (its state: young sessions × level):
# beyond ``_CLOSED_FULL`` the young count is held to a band around its mean
# (``_CLOSED_BAND`` standard deviations of its binomial law, at least ``_CLOSED_BLOCKS``
# counts), so its cost stops growing with N (:func:`_closed_fits` bounds it).
CLOSED_MAX_SESSIONS = 1000
# _fresh_moved reads the retries per refused call at a matched rate past this ratio of
# the sessions' own fresh share over the retry model's, in this many solves, at most
# this many times the launch rate.
_RATIO_READ = 4.0
_RATIO_STEPS = 6
_RATIO_REACH = 4.0
# Fixed-point passes of a share at the launch rate its own refusals make (_shortened).
_SHORTENED_PASSES = 6
_CLOSED_BAND = 6.0
_CLOSED_BLOCKS = 24
# Up to this many sessions every count is kept (the chain as it was before the band).
_CLOSED_FULL = 40
# The inter-launch law is fitted on [0, CLOSED_HORIZON × the bucket's refill time] (the
# span over which a session calling again can pile onto a burst the bucket remembers)
# and over a mean cycle.
CLOSED_HORIZON = 3.0
_CLOSED_POINTS = 48
# Grid steps per mean call of the closed chain, at most.
_CLOSED_STEPS = 4


@dataclass(frozen=True)
class ClosedSessions:
    """Each session's inter-launch time as a Coxian-2 (seconds⁻¹ rates): after a launch
    it is *young* — it launches again at ``beta`` or ages at ``nu`` — then *old*, launching
    at ``alpha``. The time has the fitted mean exactly."""

    beta: float
    nu: float
    alpha: float

    @property
    def share(self) -> float:
        """The share of its time a session is young."""
        young_time = 1.0 / (self.beta + self.nu)
        return young_time / (young_time + (1.0 - self.beta * young_time) / self.alpha)

    def cdf(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(inter-launch time ≤ x)."""
        out: NDArray[np.float64] = _coxian2_cdf(
            np.atleast_1d(x)[None, :], np.array([self.beta + self.nu]),
            np.array([self.beta / (self.beta + self.nu)]), np.array([self.alpha]))[0]
        return out


def _coxian2_cdf(x: NDArray[np.float64], s: NDArray[np.float64], p: NDArray[np.float64],
                 a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Coxian-2 CDFs at ``x`` (one row per candidate): the young phase left at rate ``s``,
    by a launch with chance ``p``, else through the old phase (rate ``a``)."""
    s, p, a = s[:, None], p[:, None], a[:, None]
    a = np.where(np.abs(a - s) < 1e-9 * s, a * (1.0 + 1e-6), a)    # distinct rates
    es, ea = np.exp(-s * x), np.exp(-a * x)
    hypo = 1.0 - (a * es - s * ea) / (a - s)
    out: NDArray[np.float64] = p * (1.0 - es) + (1.0 - p) * hypo
    return out


def fit_closed(sample: NDArray[np.float64], mean: float, horizon: float,
               span: float | None = None) -> ClosedSessions:
    """The Coxian-2 with mean ``mean`` (seconds) closest (least squares) to the empirical
    law of ``sample`` at points across ``(0, horizon]`` and ``(0, span]``. The chance a
    session launches again within the span a bucket remembers sets how far a burst of
    the others is joined, and the law over a whole cycle how many sessions are young; a
    moment fit is not enough (an Erlang-3 think time with a uniform's variance has a
    sixth of its mass under 10 s). Two phases cannot follow a law more regular than an
    Erlang-2 (a U(0, 60 s) think time): the fit then launches again early too often,
    which errs high (conservative)."""
    x = np.linspace(horizon / _CLOSED_POINTS, horizon, _CLOSED_POINTS)
    if span is not None:
        x = np.union1d(x, np.linspace(span / _CLOSED_POINTS, span, _CLOSED_POINTS))
    counts, _ = np.histogram(sample, bins=np.concatenate([[-np.inf], x]))
    emp = np.cumsum(counts) / max(sample.size, 1)
    best: tuple[float, float, float, float] | None = None
    lo = 1.0 / mean
    s_grid = lo * np.geomspace(1.02, 200.0, 48)
    p_grid = np.array([0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                       0.9, 0.95])
    for _ in range(3):
        S, P = np.meshgrid(s_grid, p_grid)
        S, P = S.ravel(), P.ravel()
        A = (1.0 - P) / np.maximum(mean - 1.0 / S, 1e-12)
        err = ((_coxian2_cdf(x, S, P, A) - emp[None, :]) ** 2).sum(axis=1)
        k = int(np.argmin(err))
        if best is None or float(err[k]) < best[0]:
            best = (float(err[k]), float(S[k]), float(P[k]), float(A[k]))
        _, s0, p0, _ = best
        s_grid = np.clip(s0 * np.geomspace(0.8, 1.25, 15), lo * 1.0001, None)
        p_grid = np.clip(p0 + np.linspace(-0.05, 0.05, 11), 0.0, 0.99)
    assert best is not None
    _, s, p, a = best
    return ClosedSessions(beta=s * p, nu=s * (1.0 - p), alpha=a)


def _closed_band(law: ClosedSessions | FollowSessions, n: int) -> tuple[int, int, int]:
    """(likeliest young count, lowest and highest count kept) for ``n`` sessions (for
    :class:`FollowSessions`, the count of sessions in a turn).

    The likeliest count is the young share of a cycle times ``n``; the young count is
    nearly binomial (each session young that share of its time), so counts
    ``_CLOSED_BAND`` standard deviations away carry nothing the share can see: beyond
    ``_CLOSED_FULL`` sessions the chain keeps that band (at least ``_CLOSED_BLOCKS``
    counts), below it every count."""
    f = law.share
    mid = min(n, max(0, round(n * f)))
    if n <= _CLOSED_FULL:
        return mid, 0, n
    half = max(_CLOSED_BAND * math.sqrt(n * f * (1.0 - f)), _CLOSED_BLOCKS / 2.0)
    return mid, max(0, math.floor(mid - half)), min(n, math.ceil(mid + half))


def _closed_fits(chain: BucketChain, law: ClosedSessions | FollowSessions, n: int) -> bool:
    """True when the closed chain of ``n`` sessions is cheap enough: every count up to
    ``_CLOSED_FULL`` sessions (as always), beyond that a band whose block solves cost
    at most those of ``_CLOSED_FULL`` counts on a 48-level grid (a few ms each)."""
    if n <= _CLOSED_FULL:
        return True
    _, lo, hi = _closed_band(law, n)
    levels = chain.closed_grid().top + 1
    return (hi - lo + 1) * levels ** 3 <= (_CLOSED_FULL + 1) * 48 ** 3


def _kept(chain: BucketChain, law: ClosedSessions | FollowSessions, sessions: float
          ) -> bool:
    """Whether ``sessions`` sessions of ``law`` are answered by its chain, not by Poisson
    launches (or the turn walk): as many as its band's cost allows (:func:`_closed_fits`),
    a closed population up to ``CLOSED_MAX_SESSIONS`` — beyond, its closed loop is
    Poisson's — and sessions whose turns launch here more than once at any count: a turn's
    later launches follow its first however many sessions there are (Poisson turn starts,
    the analysis call then the passes ~5 s later at web-research's 10 s bucket, 1,500
    sessions: the turn walk's Poisson others 0.403 % refused, the follow chain 0.836 %,
    the engine 0.930 %; ``python benchmarks/session60_probes.py poisson``)."""
    if not (math.isfinite(sessions) and sessions > 0):
        return False
    if isinstance(law, ClosedSessions) and sessions > CLOSED_MAX_SESSIONS:
        return False
    return _closed_fits(chain, law, round(sessions))


def closed_share(chain: BucketChain, law: ClosedSessions, sessions: int, lam: float
                 ) -> float:
    """Share of calls refused when ``sessions`` sessions launch with the inter-launch law
    ``law`` (one launch each per turn; ``lam`` launches per second in all), no retries.

    A session that has just launched is not ready to launch again as a Poisson stream's
    member would be: the launch rate is ``y·β + (N − y)·α`` with ``y`` of the ``N``
    sessions young, so a burst that empties the bucket leaves few sessions to follow it
    (hunt-rpm-201: 16 sessions with a U(0, 60 s) think time see 0.03–0.07% refused where
    Poisson launches at the same rate see 0.8%). The chain is of (young sessions, level
    just after an event), events being launches and ageings: between them the bucket
    refills for an exponential time at the event rate of that ``y`` (mean-preserving
    split over the grid), a launch moves the level by the launch matrix. Block
    tridiagonal in ``y``: solved by linear level reduction from both ends. A refused
    launch turns its session young as an admitted one does (its cycle is a rejection
    latency shorter: second order at the shares a target allows). Many sessions keep
    only the young counts near their mean (:func:`_closed_band`): the closed loop still
    matters there — 55 sessions with an Exp(30 s) think time and a 4.5 s call see 1.09 %
    refused at a 2 s-deep 150 RPM bucket where Poisson launches see 1.49 %
    (tests/data/closed-bucket-many-sessions.yaml: 54 sessions vs simulated 55 [54–55],
    51 with Poisson launches)."""
    # A coarse grid (its own error is taken out below, against the Poisson chain's).
    g = chain.closed_grid()
    n = sessions
    mid, lo, hi = _closed_band(law, n)
    y = np.arange(lo, hi + 1, dtype=np.float64)
    young, old, age = y * law.beta, (n - y) * law.alpha, y * law.nu
    tot = np.maximum(young + old + age, 1e-300)
    G = _refills_c(tot, chain.refill, g.delta, g.top)           # (hi − lo + 1, K + 1, K + 1)
    # y → y (a young one launches), y → y + 1 (an old one does), y → y − 1 (one ages).
    zero = np.zeros_like(tot)
    coef = np.stack([np.stack([young / tot, zero]), np.stack([old / tot, zero]),
                     np.stack([zero, age / tot])]).transpose(2, 0, 1)
    stay, up, down = _refilled(tot, chain.refill, g.delta, [g.launch, np.eye(g.top + 1)],
                               coef)
    pis = _band_stationary(stay, up, down, mid - lo, held=(lo > 0, hi < n))
    # The level an event meets, by young count.
    rho = np.einsum("yk,ykl->yl", np.array([pis[k] for k in range(hi - lo + 1)]), G)
    share = (young + old) / tot
    calls = float(np.dot(share, rho.sum(axis=1)))
    refused = float(np.dot(share, rho @ g.refused))
    closed = refused / max(calls * chain.mean_calls, 1e-300)
    return _grid_corrected(chain, g, lam, closed)


def _grid_corrected(chain: BucketChain, g: _Grid, lam: float, share: float) -> float:
    """``share``, a refusal share solved on the coarse grid ``g``, with the grid's own
    error taken out: that of the Poisson chain on the same grid and kernel at ``lam``
    launches per second, scaled by its extrapolated share over that one (a level on the
    grid stands for the interval around it: one just at a charge admits it every time;
    hunt's one-call bucket 1 s deep: 0.95 % on this grid against 1.09 % extrapolated and
    simulated)."""
    G1 = _refills(np.array([lam]), chain.refill, g.delta, g.top)[0]
    rho = _stationary(np.matmul(G1, g.launch)) @ G1
    poisson_grid = float(rho @ g.refused) / chain.mean_calls
    poisson = chain.poisson_share(lam)
    if poisson_grid <= 0.0:
        return min(1.0, share)
    return min(1.0, share * poisson / poisson_grid)


def _band_stationary(stay: NDArray[np.float64], up: NDArray[np.float64],
                     down: NDArray[np.float64], m0: int,
                     held: tuple[bool, bool] = (False, False)
                     ) -> dict[int, NDArray[np.float64]]:
    """Stationary law of a block-tridiagonal chain (blocks ``k → k`` ``stay[k]``,
    ``k → k + 1`` ``up[k]``, ``k → k − 1`` ``down[k]``), by block: reduced by linear
    level reduction from both ends to ``m0`` (the likeliest block: the censored chain
    there is well conditioned, where at an end it may be a 1e-17 event), unnormalised.
    ``held`` (bottom, top): a band cut from a longer chain holds a step out of it at that
    edge (the level still moves); ``stay`` is changed in place."""
    if held[1]:
        stay[-1] = stay[-1] + up[-1]
    if held[0]:
        stay[0] = stay[0] + down[0]
    eye = np.eye(stay.shape[1])
    top = stay.shape[0] - 1
    R: dict[int, NDArray[np.float64]] = {}
    edge = np.zeros_like(eye)                                      # R_{y+1} D_{y+1}
    for k in range(top, m0, -1):
        R[k] = np.linalg.solve((eye - stay[k] - edge).T, up[k - 1].T).T
        edge = R[k] @ down[k]
    above = edge
    edge = np.zeros_like(eye)                                      # L_{y−1} U_{y−1}
    for k in range(0, m0):
        R[k] = np.linalg.solve((eye - stay[k] - edge).T, down[k + 1].T).T
        edge = R[k] @ up[k]
    C = stay[m0] + above + edge
    C /= C.sum(axis=1, keepdims=True)
    pis: dict[int, NDArray[np.float64]] = {m0: _stationary(C)}
    for k in range(m0 + 1, top + 1):
        pis[k] = np.clip(pis[k - 1] @ R[k], 0.0, None)
    for k in range(m0 - 1, -1, -1):
        pis[k] = np.clip(pis[k + 1] @ R[k], 0.0, None)
    return pis


# ---------------------------------------------------------------------------------------
# A few sessions whose turns launch more than once: calls that follow one another
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FollowSessions:
    """Sessions whose turns launch here more than once, one launch after another (a
    chain's calls): a turn is its first launch (``first``: the law of calls per launch
    and the summed charge laws of its calls, as :func:`launch_law` gives them), then with
    chance ``later_share`` its later launches (``later``: one of them, pooled), each an
    exponential time of mean ``gap`` seconds after the one before, the turn going on
    after each with chance ``go_on`` (a turn with later launches has at least one);
    between turns a session pauses an exponential time whose mean makes up its cycle
    (``idle`` seconds). ``abort``: a launch with a refused call ends its turn (no
    retries, ``on_exhausted: abort_turn``)."""

    idle: float
    gap: float
    later_share: float
    go_on: float
    first: tuple[NDArray[np.float64], NDArray[np.float64]]
    later: tuple[NDArray[np.float64], NDArray[np.float64]]
    abort: bool
    # ``first`` and ``later`` by kind of launch when there are several, each ``(share,
    # calls per launch, summed charge law of its calls)``: each kind moves the level by
    # its own calls (:func:`_mixed_grid`); () = the pooled laws alone.
    first_kinds: tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...] = ()
    later_kinds: tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...] = ()

    @property
    def share(self) -> float:
        """The share of its time a session waits for a later launch of its turn."""
        busy = self.later_share * self.gap / (1.0 - self.go_on)
        return busy / (busy + self.idle)


def follow_share(chain: BucketChain, law: FollowSessions, sessions: int, lam: float,
                 abort: float | None = None) -> float:
    """Share of calls refused when ``sessions`` sessions of ``law`` launch at the
    bucket (``lam`` launches per second in all: the Poisson chain's, for the grid).

    A turn whose calls follow one another (call k + 1 sent when call k returns) brings
    them to the bucket seconds apart, not as independent arrivals, and a session
    launches again soon only while it is in a turn: hunt-203's four-call chains (calls
    2–4 within ~4.5 s, ~10 s after call 1) at a 7.7-request bucket 5 s deep see 0.78 %
    refused at 23 sessions (U(0, 139 s) think time) where Poisson launches see 0.24 %
    (26 sessions against a simulated 23). Poisson *turns* would see 3.5 %: that only
    the sessions not in a turn can start one (a closed loop) matters as much. The chain
    is of (sessions waiting for a later launch ``j``, level just after an event),
    events being turn starts (``(N − j)/idle`` per second: the first launch) and later
    launches (``j/gap``); between them the bucket refills for an exponential time at
    that ``j``'s event rate. Block tridiagonal in ``j``, solved as
    :func:`closed_share`'s young count is (the same band beyond ``_CLOSED_FULL``
    sessions) on the same coarse grid, its error taken out against the Poisson chain's.
    With ``abort`` a launch with a refused call ends its turn (a first launch's at once:
    the session pauses again). The chain does not know how far a turn has gone: past
    its second launch the count is geometric (exact for two launches a turn), and its
    gaps and pauses are exponential, burstier than a chain's call latencies and a
    uniform think time: erring low (hunt-203 without retries: 21 against a simulated
    23 [23–24]; Poisson launches 26). :meth:`BucketChain._follow_share` scales it by the
    gaps' shape."""
    g = chain.closed_grid()
    parts = chain._fgrids.get(id(law))
    if parts is None:
        counted = round(1.0 / g.delta) if chain.retry.counts_rejected else 0
        def grid(pooled: tuple[NDArray[np.float64], NDArray[np.float64]],
                 kinds: tuple[tuple[float, NDArray[np.float64], NDArray[np.float64]], ...]
                 ) -> _Grid:
            k, c = pooled
            pmf = _regrid(c / c.sum(), chain.h, g.delta, g.top)
            if len(kinds) <= 1:
                return _grid(k, pmf, g.delta, g.top, counted)
            return _mixed_grid(
                [(w, kk, _regrid(cc / cc.sum() if cc.sum() > 0 else cc, chain.h, g.delta,
                                 g.top)) for w, kk, cc in kinds],
                pmf, g.delta, g.top, counted)

        one, rest = grid(law.first, law.first_kinds), grid(law.later, law.later_kinds)
        parts = chain._fgrids[id(law)] = (one, rest)
    one, rest = parts
    calls_one = float(np.dot(np.arange(law.first[0].size), law.first[0]))
    calls_rest = float(np.dot(np.arange(law.later[0].size), law.later[0]))
    n = sessions
    mid, lo, hi = _closed_band(law, n)
    j = np.arange(lo, hi + 1, dtype=np.float64)
    start = (n - j) / law.idle
    later = j / law.gap
    tot = np.maximum(start + later, 1e-300)
    G = _refills_c(tot, chain.refill, g.delta, g.top)           # (hi − lo + 1, K + 1, K + 1)
    w, c = law.later_share, law.go_on
    # The share of launches with a refused call that end their turn (``abort``: with
    # retries, those whose call failed on every try). A launch moves the level as
    # ``launch``; of those with ``ab``, the ones that keep the turn going as ``clean``:
    # the third and fourth moves are the first and later launches' moves that keep it
    # going (j → j + 1 and j → j), the rest end it (j → j and j → j − 1).
    ab = (1.0 if law.abort else 0.0) if abort is None else abort
    moves = [one.launch, rest.launch]
    a, b = start / tot, later / tot                  # the event starts a turn / goes on
    zero = np.zeros_like(tot)
    if ab > 0.0:
        moves += [(1.0 - ab) * one.launch + ab * one.clean,
                  (1.0 - ab) * rest.launch + ab * rest.clean]
        coef = np.stack([np.stack([zero, zero, a * w, zero]),              # j → j + 1
                         np.stack([a, zero, -(a * w), b * c]),             # j → j
                         np.stack([zero, b, zero, -(b * c)])])             # j → j − 1
    else:
        coef = np.stack([np.stack([a * w, zero]), np.stack([a * (1.0 - w), b * c]),
                         np.stack([zero, b * (1.0 - c)])])
    up, stay, down = _refilled(tot, chain.refill, g.delta, moves, coef.transpose(2, 0, 1))
    pis = _band_stationary(stay, up, down, mid - lo, held=(lo > 0, hi < n))
    # The level an event meets, by the count in a turn.
    rho = np.einsum("yk,ykl->yl", np.array([pis[k] for k in range(hi - lo + 1)]), G)
    calls = float(np.dot(rho.sum(axis=1), a * calls_one + b * calls_rest))
    refused = float(np.dot(a, rho @ one.refused)) + float(np.dot(b, rho @ rest.refused))
    return _grid_corrected(chain, g, lam, refused / max(calls, 1e-300))
