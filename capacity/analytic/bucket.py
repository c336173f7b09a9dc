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

Retries: a refused call is tried again up to ``m`` times (``RetryModel``), each retry one
more single-call launch (the orbit approximation of theory.md §3) whose charge is that of
the refused calls; the retried load and the refusal share are a fixed point, iterated
from below. The 429 share is on attempts, as for windows.

Assumptions: launches Poisson (many independent sessions); the calls of one launch
draw their charges independently from the launch's call-charge law; rejections do not
charge, except that a requests bucket counting its rejections (``rejected_count``) loses
the unit a rejection takes if it is there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from capacity.analytic.window import RetryModel, attempts_per_call
from capacity.model.workload import Batch, CallCost

# Coarse grid: ``δ`` a ``1/s`` of the mean call charge (so equal charges sit on the grid),
# ``s`` at most ``_MAX_STEPS_PER_CALL`` and the depth at most ``_MAX_POINTS`` steps (the
# fine grid has twice as many; a dense solve of that size per launch rate). The chain is
# used while ``s ≥ _MIN_STEPS_PER_CALL``: buckets at most ~10 mean calls deep.
_MAX_POINTS = 32
_MAX_STEPS_PER_CALL = 8
_MIN_STEPS_PER_CALL = 3
# Chains up to this many states are solved densely (LAPACK is fast, single-threaded).
_SOLVE_MAX = 72
# Calls per launch beyond this are gathered here (a launch's matrix is a power series).
_MAX_CALLS = 64


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


@dataclass
class _Grid:
    """The launch operators on one grid of ``K + 1`` levels (0, δ, …, Kδ = depth)."""

    delta: float                       # units per grid step
    top: int                           # K
    launch: NDArray[np.float64]        # fresh launch: level → level (row-stochastic)
    refused: NDArray[np.float64]       # fresh launch: expected refused calls, by level
    retry: NDArray[np.float64]         # one call of the refused-charge law
    retry_refused: NDArray[np.float64]


def _call_matrix(pmf: NDArray[np.float64], top: int, counted: int
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One call of charge law ``pmf`` (grid steps): (transition, refusal chance) by level.
    ``counted`` > 0: a refusal takes that many grid steps if they are there
    (:meth:`capacity.limits.meters.TokenBucket.count_rejection`)."""
    n = top + 1
    M = np.zeros((n, n))
    j = np.arange(n)
    refuse = np.zeros(n)
    after = np.maximum(j - counted, 0)
    for c, pc in enumerate(pmf):
        if pc <= 0:
            continue
        fits = j >= c
        M[j[fits], j[fits] - c] += pc
        M[j[~fits], after[~fits]] += pc
        refuse[~fits] += pc
    return M, refuse


def _grid(count: NDArray[np.float64], call_pmf: NDArray[np.float64], delta: float,
          top: int, counted: int) -> _Grid:
    M, r = _call_matrix(call_pmf, top, counted)
    n = top + 1
    power = np.eye(n)
    refused_so_far = np.zeros(n)
    A = np.zeros((n, n))
    R = np.zeros(n)
    for k, pk in enumerate(count):
        if k > 0:
            refused_so_far = refused_so_far + power @ r
            power = power @ M
        if pk > 0:
            A += pk * power
            R += pk * refused_so_far
    return _Grid(delta, top, A, R, M, r)


def _refill(lam: float, refill: float, delta: float, top: int) -> NDArray[np.float64]:
    """Level after a launch → level at the next: up ``refill·G/δ`` steps (G ~ Exp(lam)),
    to the nearest grid point, capped at the depth."""
    q = math.exp(-lam * delta / refill)          # P(no launch while δ refills)
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
    _grids: list[_Grid] = field(default_factory=list, repr=False)
    _cache: dict[float, dict[str, float]] = field(default_factory=dict, repr=False)

    @property
    def mean_calls(self) -> float:
        """Calls per launch."""
        return float(np.dot(np.arange(self.count.size), self.count))

    def grids(self) -> list[_Grid]:
        """The coarse and fine grid operators (built once)."""
        if not self._grids:
            s = _steps_per_call(self.call_pmf, self.h, self.depth)
            mean = float(np.dot(np.arange(self.call_pmf.size), self.call_pmf)) * self.h
            for k in (1, 2):
                delta = mean / (s * k)
                top = math.floor(self.depth / delta + 1e-9)
                pmf = _regrid(self.call_pmf, self.h, delta, top)
                # A counted rejection takes one unit (requests buckets only).
                counted = round(1.0 / delta) if self.retry.counts_rejected else 0
                self._grids.append(_grid(self.count, pmf, delta, top, counted))
        return self._grids

    def _solve(self, g: _Grid, lam: float, lam_r: float) -> tuple[float, float]:
        """(fresh calls' refusal share, retries' refusal share) with fresh launches at
        ``lam`` and retries at ``lam_r`` per second."""
        tot = lam + lam_r
        launch = (lam * g.launch + lam_r * g.retry) / tot
        pi = _stationary(np.einsum("ij,jk->ik", launch,
                                   _refill(tot, self.refill, g.delta, g.top)))
        return (float(pi @ g.refused) / self.mean_calls, float(pi @ g.retry_refused))

    def shares(self, lam: float) -> dict[str, float]:
        """429 shares at ``lam`` launches per second: ``attempt`` (of all attempts),
        ``call`` (fresh attempts), ``failed`` (calls refused on every try) and
        ``retry_share`` (retried attempts per call)."""
        hit = self._cache.get(lam)
        if hit is not None:
            return hit
        m = self.retry.max_retries
        p = pr = 0.0
        per = 0.0
        for _ in range(16 if m > 0 else 1):  # from below: the least fixed point
            lam_r = lam * self.mean_calls * per
            got = [self._solve(g, lam, lam_r) for g in self.grids()]
            p = min(1.0, max(0.0, 2.0 * got[1][0] - got[0][0]))
            pr = min(1.0, max(0.0, 2.0 * got[1][1] - got[0][1]))
            new = p * attempts_per_call(pr, m - 1) if m > 0 else 0.0
            if abs(new - per) <= 1e-6 + 1e-4 * per:
                per = new
                break
            per = new
        attempt = (p + per * pr) / (1.0 + per)
        out = {"attempt": min(1.0, attempt), "call": p,
               "failed": p * pr ** m if m > 0 else p, "retry_share": per}
        self._cache[lam] = out
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
    ``_MIN_STEPS_PER_CALL`` coarse grid steps (a depth of at most ~10 mean calls), and
    the bucket holds at least one (calls larger than the bucket: the Lundberg model and
    the fleet's never-fits share)."""
    mean = _mean_units(call_pmf, h)
    return mean <= depth and _steps_per_call(call_pmf, h, depth) >= _MIN_STEPS_PER_CALL
