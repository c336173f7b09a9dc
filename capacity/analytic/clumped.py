"""The window constraint as the ceiling search uses it: clumped turns, retries, the target.

Glue between :mod:`capacity.analytic.window` (the model) and the result types of
:mod:`capacity.analytic.model`; see the former for the mathematics.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from capacity.analytic import window as _window
from capacity.analytic.model import (
    WindowStats,
    _largest_meeting,
    _largest_meeting_near,
    _lattice_step,
    _near,
    boundary_near,
)
from capacity.analytic.timing import TurnTiming, turn_timing
from capacity.model.dist import finest_step
from capacity.model.retry import RetryPolicy
from capacity.model.workload import (
    CallCost,
    Constraint,
    Workload,
    batch_units_mean,
    cached_per_profile,
    remember,
)
from capacity.profile.schema import Profile

# At most this many lattice points across a window's allowance: a window holding hundreds
# of calls is a sum whose spread dwarfs a step of q/2048 (the lattice adds at most h²/4 of
# variance per call), and the Lindley iteration stays fast.
_MAX_POINTS = 2048
# A sliding window's step is no coarser than its smallest call (see sliding_step), up to
# this many points.
_MAX_SLIDING_POINTS = 1 << 14
# With carried retries a ceiling of thousands of sessions is pinned to 0.2% (the simulated
# search's tolerance), erring low; below 500 sessions it is exact.
_REL_TOL = 0.002
# Quantiles of the think time a retry storm's aborted sessions pause for.
_PAUSE_POINTS = 256


def timing_of(wl: Workload) -> TurnTiming:
    """The fixed-seed launch-offset sample of ``wl`` (cached per profile)."""
    return cached_per_profile(_TIMINGS, wl.profile, lambda _p: turn_timing(wl))


_TIMINGS: dict[int, tuple[Profile, TurnTiming]] = {}


def share_timing(base: Workload, fixed: Workload) -> None:
    """Give ``fixed`` (``base``'s profile with its pause fixed) ``base``'s timing sample
    with the fixed pauses, if ``base``'s is built: the same turns as drawing it again."""
    hit = _TIMINGS.get(id(base.profile))
    if hit is None or hit[0] is not base.profile:
        return
    s = fixed.profile.session
    pause = np.full(hit[1].n, s.pause.mean)
    remember(_TIMINGS, id(fixed.profile), (fixed.profile, hit[1].with_pause(s.mode, pause)))


def retry_model(profile: Profile, c: Constraint) -> _window.RetryModel:
    """The client's retry policy as the window model needs it."""
    r = profile.retry
    quota = profile.quotas[c.quota]
    honour = r.honour_retry_after and (c.enforcement == "token_bucket"
                                       or c.window_s <= r.max_retry_after)
    backoff: tuple[float, ...] = ()
    policy = RetryPolicy.from_profile(profile)
    if not honour:
        waits = itertools.accumulate(
            policy.rejection_latency_s + policy.backoff(k, 0.5)  # the mean jitter cut
            for k in range(1, r.max_retries + 1))
        backoff = tuple(waits)
    return _window.RetryModel(r.max_retries, honour,
                              bool(quota.rejected_count) and c.unit == "requests",
                              r.on_exhausted == "abort_turn", backoff,
                              # A routed call's 429 may spill instead of failing: no
                              # cascade of its turn's stages is modelled there.
                              rejection_latency_s=None if profile.routes
                              else r.rejection_latency,
                              give_up_beyond=policy.give_up_beyond)


# A sliding loss log's offered load (mean window count over its allowance) up to which its
# fixed windows' calls share floors it (:meth:`ClumpedWindow._stats`); past it the floor
# is in units.
_FLOOR_IN_CALLS = 1.1

@dataclass
class ClumpedWindow:
    """``stats(n)``: the 429 share of attempts at ``n`` sessions (fixed/sliding windows)."""

    inner: _window.ClumpWindowModel
    sliding: bool
    # Keep each N's statistics (a fleet's first deployment, whose model no search
    # varies: the next deployments' laws ask it at the same N again and again — a
    # sliding log far over its allowance, 7-16 ms a look, ~80 looks for ptu-spillover on
    # 60 s logs, 25 of them new).
    memoised: bool = False
    _memo: dict[int, WindowStats] = dataclasses.field(default_factory=dict, init=False,
                                                      repr=False, compare=False)
    # largest_meeting takes a guess of the answer (constraint_ceiling's ``near``).
    searches_near: ClassVar[bool] = True
    # A loss log's fixed windows of its length (:func:`clumped_window_model`), built when
    # first read: the units they turn away are a floor of the log's (:meth:`_stats`).
    twin_build: Callable[[], _window.ClumpWindowModel] | None = None
    _twin: list[_window.ClumpWindowModel] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False)
    # The share at the last N whose floor is in calls, which every N past it is held to
    # (:meth:`_stats`): solved once, not at each N a search asks past it.
    _within: list[WindowStats] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False)
    # A fleet's first deployment: the calls it spills by the route's rate over a longer
    # receiver's window (:func:`capacity.analytic.fleet._local_rate_spill`), by (N, the
    # receiver's count model's id) — the count model kept beside its law, alive, so that
    # its id is not reused while the entry stands; asked twice an N (the receiver's law
    # and what its spilled calls find).
    spilled: dict[tuple[int, int], tuple[object, NDArray[np.float64]]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def fixed_twin(self) -> _window.ClumpWindowModel | None:
        """The fixed windows' model of this loss log's length (None: not a loss log)."""
        if self.twin_build is None:
            return None
        if not self._twin:
            self._twin.append(self.twin_build())
        return self._twin[0]

    def stats(self, n: int) -> WindowStats:
        """Window statistics at ``n`` sessions; ``loss_fraction`` is the attempt share."""
        if not self.memoised:
            return self._stats(n)
        hit = self._memo.get(n)
        return hit if hit is not None else remember(self._memo, n, self._stats(n), 4096)

    def method_at(self, n: int) -> str:
        """How the share at ``n`` is computed (a report's label where no N meets the
        target), without computing a loss log's floor for it."""
        if self.twin_build is None:
            return self.stats(n).method
        return dataclasses.replace(self, twin_build=None).stats(n).method

    def _largest_meeting_floored(self, target: float, hi: int, near: int | None
                                 ) -> tuple[int, WindowStats | None]:
        """:meth:`largest_meeting` of a loss log with its fixed windows' floor
        (:attr:`fixed_twin`): the log's own answer, then — only where the floor says more
        there, which is rare (one of the hunt's 46 such records) — the floored share's
        answer below it. The floor costs one evaluation a search where it does not bind
        (a twin's share at every N the search asked cost up to 0.1 s)."""
        own = dataclasses.replace(self, twin_build=None)
        n, st = own.largest_meeting(target, hi, near)
        if n <= 0:
            return n, st
        at = self.stats(n)
        if at.loss_fraction <= target:
            return n, at
        return _largest_meeting_near(self.stats, target, n - 1, n - 1)

    def _stats(self, n: int) -> WindowStats:
        """:meth:`stats`, computed."""
        m = self.inner
        if n <= 0 or m.p_single <= 0:
            if n > 0 and m.never_fit > 0:
                # Every relevant call is charged more than the allowance: no window
                # load, but each such call is refused on every attempt (it said 0).
                r = m._with_never_fit({"attempt": 0.0, "call": 0.0, "failed": 0.0,
                                       "exceed": 0.0, "retry_share": 0.0})
                return WindowStats(n, 0.0, 0.0, r["attempt"], "calls larger than the "
                                   "allowance, refused", r["call"], r["failed"])
            return WindowStats(n, 0.0, 0.0, 0.0, "none", 0.0, 0.0)
        r = m.attempt_share(n)
        kind = "sliding window (Palm scan count)" if self.sliding else "fixed windows"
        how = f"clumped turns, {kind}"
        twin_m = self.fixed_twin
        # Each fixed window is one of the log's, so the log admits at most ``min(S, q)``
        # of a window's offered units ``S``: it turns away at least ``E[(S − q)⁺]``, a
        # bound in units. In calls the fixed windows' share is what a log whose own law
        # misses its sessions' trains of calls does turn away near its allowance
        # (hunt-3001, :func:`clumped_window_model`; with the trains' final call's charge
        # spread 500-24,000 tokens the units bound is loose there, and the units gate
        # alone said 344 sessions against the engine's ~327, the calls' floor 331). Far over the
        # allowance it is not: a log that stays full lets small calls into the room the
        # large ones cannot use, where a fixed window admits what comes first until full
        # (two sizes, ~950 and ~7,900 tokens, at 1.95 times a 10 s log's allowance: the
        # log, the engine and a replay of the stochastic knapsack refuse 31 % of the
        # calls, fixed windows 46 %). So the fixed windows' calls stand where the mean
        # offered count is within 1.1 times the allowance (the shares a target asks
        # about), and past it only where their units say more than the log's own law —
        # never below the share at the last N within it (the share rises with N: a
        # switch that dropped it, 6.19 % to 3.08 % on the trains above with two final
        # charges, would have let a ceiling search past it).
        if twin_m is not None and m.mean_units > 0:
            last = math.floor(_FLOOR_IN_CALLS * m.q_lat * m.h / m.mean_units + 1e-9)
            if n <= last or twin_m.stop_loss_units_share(n) > m.loss_units_share(n):
                twin = twin_m.attempt_share(n)
                if twin["attempt"] > r["attempt"]:
                    r = {**r, "attempt": twin["attempt"], "call": twin["call"],
                         "failed": twin["failed"]}
                    how += ", at least its length's fixed windows'"
            if n > last >= 1:
                if not self._within:
                    self._within.append(self.stats(last))
                before = self._within[0]
                if before.loss_fraction > r["attempt"]:
                    r = {**r, "attempt": before.loss_fraction,
                         "call": max(r["call"], before.call_429_fraction or 0.0),
                         "failed": max(r["failed"], before.call_failure_fraction or 0.0)}
                    how += ", at least its share within 1.1 times its allowance"
        if m.retry.retries:
            how += (", retries herded at the oldest charge's expiry" if m.herds
                    else ", retry fixed point" if self.sliding
                    else ", retries carried to the next window")
        return WindowStats(n, n * m.mean_units, r["exceed"], r["attempt"], how, r["call"],
                           r["failed"])

    def largest_meeting(self, target: float, hi: int, near: int | None = None
                        ) -> tuple[int, WindowStats | None]:
        """Largest n ≤ ``hi`` whose attempt share is within ``target`` (bisection).

        Without retries, and with retries in a sliding log without herds (the retry
        fixed point iterated from the first attempts' share at n), a share at n is the
        same whatever was asked before: the search starts from ``near``, a guess of the
        answer (default: 85% of ``hi``), by :func:`_largest_meeting_near` — the
        bisection's answer in fewer evaluations.

        With carried retries (fixed windows) each evaluation solves a Lindley recursion,
        with herded retries (sliding windows) it runs a herd spell; a cheap lower bound
        of the share brackets the answer first (fixed: the no-retry stop-loss
        ``ℓ/(1+ℓ)``; herds: the loss system's first-attempt share).
        """
        if self.twin_build is not None:
            return self._largest_meeting_floored(target, hi, near)
        m = self.inner
        herds = self.sliding and m.herds
        if (self.sliding and m.storm_first.size and m.retry.retries and hi > 1
                and m._retry_rejection(0.0) >= 1.0):
            return self._largest_meeting_storms(target, hi)
        if (self.sliding and not herds and hi > 1
                and m.retry.storms_without_retries and m.storm_first.size):
            return self._largest_meeting_abort_storms(target, hi, near)
        if not m.retry.retries or (self.sliding and not herds and hi > 1):
            # (Retried sliding logs without herds: the retry fixed point at n starts
            # from the first attempts' share at n, no warm start either.)
            return _largest_meeting_near(self.stats, target, hi, _near(near, hi))
        if hi <= 1:
            return _largest_meeting(self.stats, target, hi)

        # A cheap lower bound of the attempt share, monotone in n: fixed windows ℓ/(1+ℓ)
        # from the retry-free stop-loss; herded sliding retries the loss system's share
        # (the first attempts alone, before the spells lengthen). Every bracket below
        # inverts it at some level, so the points already evaluated bracket the next
        # inversion (no bisection from scratch).
        seen: dict[int, float] = {}

        def cheap(n: int) -> float:
            if n not in seen:
                if herds:
                    seen[n] = m._sliding_h(n, 0.0, truncate=True)
                else:
                    ell = m.stop_loss_share(n)
                    seen[n] = ell / (1.0 + ell)
            return seen[n]

        def cheap_boundary(scale: float, top: int, near: int | None = None) -> int:
            """Largest n ≤ ``top`` with ``cheap(n)·scale ≤ target`` (0 if none)."""
            level = target / scale
            if level >= 1.0:
                return top
            lo = max((k for k, v in seen.items() if v <= level and k <= top), default=0)
            bad = [k for k, v in seen.items() if v > level and lo < k <= top]
            return boundary_near(cheap, level, lo, min(bad) if bad else top + 1, near, seen)

        up = cheap_boundary(1.0, hi, _near(near, hi))
        up = min(hi, up + 1)
        cache: dict[int, WindowStats] = {}

        def stats(n: int) -> WindowStats:
            if n not in cache:
                cache[n] = self.stats(n)
            return cache[n]

        if stats(up).loss_fraction <= target:
            return up, stats(up)
        # Near the ceiling the attempt share is a steady multiple r of the cheap one:
        # guess the boundary from r, re-measure r there, repeat (secant-like); each guess
        # costs one full evaluation (a Lindley solve, or a herd spell), the cheap
        # bisections none.
        lo, x = 0, up
        for _ in range(5):
            cheap_x = cheap(x)
            r = stats(x).loss_fraction / cheap_x if cheap_x > 0 else 4.0
            guess = cheap_boundary(max(r, 1.0), up)
            guess = max(guess, lo)
            if guess >= 1 and stats(guess).loss_fraction <= target:
                if guess + 1 >= up or stats(guess + 1).loss_fraction > target:
                    return guess, stats(guess)
                lo = x = guess + 1  # it passes too: the boundary is higher
            else:
                up = max(guess, 1)
                x = up
                if up <= 1:
                    return _largest_meeting(stats, target, 1)
            if lo > 0 and up - lo <= max(1, int(_REL_TOL * lo)):
                return lo, stats(lo)
        while up - lo > max(1, int(_REL_TOL * lo)):
            mid = (lo + up) // 2
            if stats(mid).loss_fraction <= target:
                lo = mid
            else:
                up = mid
        return lo, (stats(lo) if lo > 0 else None)

    def _largest_meeting_abort_storms(self, target: float, hi: int, near: int | None
                                      ) -> tuple[int, WindowStats | None]:
        """:meth:`largest_meeting` with storms without retries (every first refusal of a
        counted sliding log starts one): the bisection's answer, with fewer chains.

        The guess: the same search with no storms (its shares are the storms' floor, and
        near a ceiling where the storms are small they are its shares: the evaluations
        then share their fresh-count laws); then from it, with the chains, cell by cell
        of the storm sizes' grid (:func:`_storm_boundary`), or failing that the
        bisection itself on what is already known.
        """
        free = ClumpedWindow(dataclasses.replace(self.inner, storm_rough=True,
                                                 storm_scale=0.0), True)
        guess, _ = _largest_meeting_near(free.stats, target, hi, _near(near, hi))
        cache: dict[int, WindowStats] = {}

        def stats(n: int) -> WindowStats:
            if n not in cache:
                cache[n] = self.stats(n)
            return cache[n]

        exact = _storm_boundary(lambda n: stats(n).loss_fraction <= target, guess, hi,
                                lambda n: stats(n).loss_fraction, target)
        if exact is None:
            return _largest_meeting(stats, target, hi)
        return exact, (stats(exact) if exact > 0 else None)

    def _largest_meeting_storms(self, target: float, hi: int
                                ) -> tuple[int, WindowStats | None]:
        """:meth:`largest_meeting` with retry storms, whose size is a Markov chain each.

        The guess: the same search with each storm one window of storm attempts
        (``(1 + m)·λw``, no chain); then from it, with the chains, cell by cell of the
        storm sizes' 4% grid of N (:func:`_storm_boundary`: one chain a cell), exact;
        failing that (more than ``_WALK_CELLS`` cells away), outwards in doubling steps
        (from 1% of the guess) until the boundary is bracketed, and bisection to 0.2%
        (whose last steps reuse their chains).
        """
        rough = ClumpedWindow(dataclasses.replace(self.inner, storm_rough=True), True)
        guess, _ = _largest_meeting_near(rough.stats, target, hi, _near(None, hi))
        cache: dict[int, WindowStats] = {}

        def ok(n: int) -> bool:
            if n not in cache:
                cache[n] = self.stats(n)
            return cache[n].loss_fraction <= target

        def share(n: int) -> float:
            ok(n)
            return cache[n].loss_fraction

        start = guess
        m = self.inner
        low = _window.storm_cell_span(guess)[0] if guess >= 1 else 0
        if low > 1 and not ok(guess) and not ok(low) and guess > m.storm_threshold():
            # The rough guess is too high by more than its cell: the rough storm size
            # rescaled to the chain just computed at the guess's cell (the true size runs
            # a steady multiple of it over a few cells) puts the walk's start near the
            # boundary instead of cell by cell down to it.
            rough_size = (1 + m.retry.max_retries) * guess * m.calls_per_window
            if rough_size > 0:
                scaled = ClumpedWindow(dataclasses.replace(
                    m, storm_rough=True, storm_scale=m.storm_size(guess) / rough_size), True)
                # (A rough model's share at n is the same whatever was asked before: its
                # search starts from the cell below, a few per cent above the answer —
                # where the storms' share is often past a half, which is no sign that the
                # answer is near 1.)
                start = max(1, boundary_near(lambda n: scaled.stats(n).loss_fraction,
                                             target, 0, low, low - 1))
        exact = _storm_boundary(ok, start, hi, share, target)
        if exact is not None:
            # The boundary itself, at any N: the doubling search below would ask again
            # what the walk asked, to answer up to 0.2 % lower.
            return exact, ((cache.get(exact) or self.stats(exact)) if exact > 0 else None)
        first = max(1, round(0.01 * guess))
        if guess >= 1 and ok(guess):
            lo, step = guess, first
            while lo + step <= hi and ok(lo + step):
                lo, step = lo + step, 2 * step
            up = min(lo + step, hi + 1)
        else:
            up, step = max(guess, 1), first
            while up - step >= 1 and not ok(up - step):
                up, step = up - step, 2 * step
            lo = max(up - step, 0)
        # Pinned to _REL_TOL (0.2%, erring low) like the carried retries' search.
        while up - lo > max(1, int(_REL_TOL * lo)):
            mid = (lo + up) // 2
            if ok(mid):
                lo = mid
            else:
                up = mid
        return lo, ((cache.get(lo) or self.stats(lo)) if lo > 0 else None)

    def fixed_points(self, n: int) -> list[float]:
        """Solutions of the retry fixed point at ``n`` (more than one: metastable)."""
        return self.inner.fixed_points(n)


# Storm-grid cells the exact walk visits before it leaves the search to the doubling.
_WALK_CELLS = 5


def _storm_boundary(ok: Callable[[int], bool], start: int, hi: int,
                    share: Callable[[int], float] | None = None, level: float = 0.0
                    ) -> int | None:
    """Largest N ≤ ``hi`` with ``ok(N)`` (0 if none; ``ok`` monotone), walking the storm
    grid's cells from ``start`` one by one: the N of one cell share a storm size, so each
    cell costs one chain and the search inside the last one none. The searches' rough
    guesses land a few cells off (1.04^k: 4% each), where doubling steps of N from it
    touch more cells. None when it would take more than ``_WALK_CELLS`` cells. ``share``
    (with ``ok(N)`` meaning ``share(N) ≤ level``, each asked once by the caller): inside
    the last cell the share rises smoothly (one storm size), and :func:`boundary_near`
    follows its logs there — the bisection's answer in fewer looks (a cell of 13,400
    sessions is 530 wide: 9-10 looks bisected)."""
    def top(n: int) -> int:      # the largest N of n's cell, at most hi
        return min(_window.storm_cell_span(n)[1], hi)

    def bottom(n: int) -> int:   # the smallest N of n's cell
        return _window.storm_cell_span(n)[0]

    n = min(max(start, 1), hi)
    cells = 1
    if ok(n):
        lo, up = n, hi + 1
        while up > hi and lo < hi:
            t = top(lo)
            if t == lo:              # the next cell: a new storm size
                t, cells = top(lo + 1), cells + 1
            if cells > _WALK_CELLS:
                return None
            if ok(t):
                lo = t
            else:
                up = t
    else:
        lo, up = 0, n
        while lo == 0 and up > 1:
            b = bottom(up)
            if b == up:
                b, cells = bottom(up - 1), cells + 1
            if cells > _WALK_CELLS:
                return None
            if ok(b):
                lo = b
            else:
                up = b
    if share is not None and up - lo > 2:
        ends = {k: share(k) for k in (lo, up) if 1 <= k <= hi}
        return boundary_near(share, level, lo, up, None, ends)
    while up - lo > 1:               # inside one cell: no new chain
        mid = (lo + up) // 2
        if ok(mid):
            lo = mid
        else:
            up = mid
    return lo


def unstable_above(model: ClumpedWindow, hi: int) -> int | None:
    """Smallest N ≤ ``hi`` at which the retry fixed point has more than one solution.

    Above it a trigger (a burst, an outage) can tip the sessions into a retry storm that
    sustains itself (metastable failure, theory.md §3); None when the fixed point is
    unique up to ``hi``. Assumes, as the fixed point does, that bistability once
    present persists at larger N.
    """
    if not model.sliding or not model.inner.retry.retries:
        return None
    return smallest_bistable(lambda n: len(model.fixed_points(n)) > 1, hi)


def smallest_bistable(bistable: Callable[[int], bool], hi: int, lo: int = 0) -> int | None:
    """Smallest N in (``lo``, ``hi``] with ``bistable(N)``, by bisection (bistability
    once present persists at larger N); None when ``hi`` is not bistable. ``lo`` is an N
    known not to be (−1 when N = 0 is a load: held sessions)."""
    if hi < 1 or not bistable(hi):
        return None
    up = hi
    while up - lo > 1:
        mid = (lo + up) // 2
        if bistable(mid):
            up = mid
        else:
            lo = mid
    return up


def unstable_note(n: int, c: Constraint) -> str:
    """The metastability note: retries make constraint ``c`` bistable above ``n``."""
    return (f"Unstable above {n:,} sessions on {c.quota}.{c.dim}: with counted, retried "
            "rejections in a sliding window the retry fixed point has a second, storm "
            "solution there — a burst can start a retry storm that feeds itself (until "
            "failed turns thin the load). The burst-aware ceiling counts the storms bursts "
            "start; a trigger from outside (an outage, a deploy) can start more.")


def stability_notes(wl: Workload, c: Constraint, cycle_s: float, ceiling: int,
                    burst: int | None = None,
                    model: ClumpedWindow | None = None) -> list[str]:
    """A note when retries can make constraint ``c`` bistable at or below ``ceiling``,
    and one when its storms re-ignite themselves at ``burst`` sessions (its burst-aware
    ceiling; default ``ceiling``). ``model``: ``c``'s window model at this cycle, when
    the ceiling's search built one (its storm sizes are then not computed again)."""
    if c.enforcement != "sliding_window" or ceiling < 1:
        return []
    if model is None:
        model = clumped_window_model(wl, c, cycle_s)
    n_u = unstable_above(model, ceiling)
    if n_u is None:
        return []
    notes = [unstable_note(n_u, c)]
    k = model.inner.storm_rebound(ceiling if burst is None else max(burst, 1))
    if k >= _REBOUND_NOTE:
        notes.append(
            f"On {c.quota}.{c.dim} a storm re-ignites itself (~{k:,.0f} storms an "
            "ignition at the ceiling): the sessions whose turns it aborted come back "
            "together — as it ends, or a pause later when the pause hardly varies — and "
            "their calls fill the window again. Such a storm can last as long as the load "
            "does; the ceiling counts each ignition as that many storms, over no more "
            "than half an hour (the mean left of a measured hour it starts in).")
    return notes


# Storms an ignition brings (ClumpWindowModel.storm_rebound) from which the note says so.
_REBOUND_NOTE = 2.0


def sliding_step(h: float, q_units: float, calls: list[float]) -> float:
    """Lattice step (units) of a sliding window: no coarser than the smallest mean call
    charge, with at most ``_MAX_SLIDING_POINTS`` points across the allowance.

    A sliding log turns an arriving call away when the trailing count plus *its own*
    charge (and its batch-mates' ahead of it) does not fit, so the answer is decided one
    call from the allowance. A call finer than a step is 0 or 1 step on the lattice (a
    mean-preserving split), and at a full log the 0-step half of it always fits: the
    300 × 110-token fan-out against 3M TPM on a 244-token step had 0.0084 of its
    attempts turned away at 50 sessions vs 0.0104 on a 61-token step and the engine's
    0.0105 (N* 51 vs 49 [48–50] simulated).
    """
    if not calls:
        return h
    return min(h, max(min(calls), q_units / _MAX_SLIDING_POINTS,
                      finest_step(max(calls))))


def window_step(c: Constraint) -> float:
    """The lattice step (units) of constraint ``c``'s window model, from the allowance and
    every call it charges (the population model builds each population's on this one)."""
    q_units = float(c.allowance)
    calls = [cost.mean for cost in c.costs.values() if cost is not None and cost.mean > 0]
    scale = min(q_units, min(calls) * 16) if calls else q_units
    # Never finer than a lattice can hold the largest mean charge on (a lognormal of
    # p95 = 1,000× its median has its mean 6,700× the median).
    h = max(_lattice_step(c, scale, q_units), q_units / _MAX_POINTS, 1e-9,
            finest_step(max(calls, default=0.0)))
    if c.enforcement == "sliding_window":
        h = sliding_step(h, q_units, calls)
    return h


def storm_pacing(inner: _window.ClumpWindowModel, wl: Workload, cycle_s: float) -> None:
    """Give ``inner`` (a storm-capable model of ``wl``'s sessions) the pause a storm's
    aborted sessions take — the think time's quantiles scaled to this cycle's (the
    think-time sweep builds the model at other mean pauses) — or their cadence."""
    if not inner.storm_first.size:
        return
    session = wl.profile.session
    if session.think_time is not None:
        z = session.think_time
        zq = np.array([z.ppf((i + 0.5) / _PAUSE_POINTS) for i in range(_PAUSE_POINTS)])
        pause = max(cycle_s - float(timing_of(wl).latency.mean()), 0.0)
        inner.storm_pause = zq * (pause / z.mean) if z.mean > 0 else zq * 0.0
    else:
        inner.storm_cadence = cycle_s


def clumped_window_model(wl: Workload, c: Constraint, cycle_s: float) -> ClumpedWindow:
    """Window count of constraint ``c`` with a turn's launches clumped by their offsets,
    the closed-loop correction and the client's retries (:mod:`capacity.analytic.window`).
    """
    q_units = float(c.allowance)
    h = window_step(c)
    sliding = c.enforcement == "sliding_window"
    inner = _window.build(timing_of(wl), c.costs, c.window_s, sliding, h, q_units / h,
                          cycle_s, wl.units_per_turn(c), retry_model(wl.profile, c),
                          exact_calls=exact_calls_per_turn(wl), reuse=True)
    inner.abort_cycle_s = cycle_s  # its aborted turns come back sooner
    storm_pacing(inner, wl, cycle_s)
    if wl.profile.routes:  # a routed call served elsewhere is charged 0: not a call here
        from capacity.analytic.fleet import thin_calls

        inner = thin_calls(inner, wl, c)
        return ClumpedWindow(inner, sliding)
    twin: Callable[[], _window.ClumpWindowModel] | None = None
    if inner.loses:
        # A log that keeps only what it admitted turns away at least the units the
        # fixed windows of its length do: each of those windows is one of the log's
        # (:meth:`ClumpedWindow._stats`: in units, not calls). Its own law (a loss
        # system's occupancy, the free count truncated) can say less where a session's
        # calls come in trains shorter than the window: hunt-3001 (a 30 s
        # TPM log reserving max_tokens, tool loops of 1-5 calls ~2 s apart, no retries)
        # 2.06 % refused at 528 sessions where its fixed windows say 2.33 % and the
        # engine 2.30 % (fixed) and 2.95 % (the log); N* 556 against 528 [525-529].
        def twin() -> _window.ClumpWindowModel:
            out = _window.build(timing_of(wl), c.costs, c.window_s, False, h, q_units / h,
                                cycle_s, wl.units_per_turn(c), retry_model(wl.profile, c),
                                exact_calls=exact_calls_per_turn(wl), reuse=True)
            out.abort_cycle_s = cycle_s
            return out
    return ClumpedWindow(inner, sliding, twin_build=twin)


def window_correlation(wl: Workload, a: Constraint, b: Constraint, cycle_s: float) -> float:
    """Correlation of two constraints' counts in one window (windows of ``a``'s length),
    the same for one session as for N independent ones.

    Per turn, with each launch instant's charges ``x`` (mean charge of its calls) and the
    window phase uniform, two instants ``d`` s apart share a window over ``(w − |d|)⁺`` of
    the phases: ``E[X_a X_b]·C = E[Σ_{i,j} x_ai x_bj (w − |t_i − t_j|)⁺]`` (an instant
    with itself: ``w·x_a x_b``, its second moment for one dimension), ``C`` the mean
    cycle; two turns of a session rarely share a window (left out of every moment). RPM
    and TPM of the same calls: ~0.97 (sweep/twobind.yaml); ITPM of an input-heavy first
    call and OTPM of an output-heavy last one: ~0.5 (hunt-028).
    """
    timing = timing_of(wl)
    w = float(a.memory_s)
    key = ("window-corr", w, id(a.costs), id(b.costs))
    # (The memo holds the cost dicts: their ids cannot name other ones meanwhile.)
    held = timing.memo(key, lambda: (a.costs, b.costs, _moments(timing, a, b, w)))
    assert held[0] is a.costs and held[1] is b.costs
    m = held[2]
    if m is None or cycle_s <= 0:
        return 1.0
    aa, bb, ab, mean_a, mean_b = m
    sq = (w / cycle_s) ** 2
    var_a = aa / cycle_s - mean_a * mean_a * sq
    var_b = bb / cycle_s - mean_b * mean_b * sq
    cov = ab / cycle_s - mean_a * mean_b * sq
    if var_a <= 0 or var_b <= 0:
        return 1.0
    return float(min(1.0, max(0.0, cov / math.sqrt(var_a * var_b))))


def _moments(timing: TurnTiming, a: Constraint, b: Constraint, w: float
             ) -> tuple[float, float, float, float, float] | None:
    """Per turn: ``E[Σ x_a x_a (w − |d|)⁺]``, the same for ``b`` and for ``a``×``b``,
    and the mean units of each (:func:`window_correlation`)."""
    gt, gc = timing.groups()
    if gt.size == 0:
        return None
    n = min(gt.shape[0], max(256, 16384 * 16 // max(gt.shape[1] ** 2, 16)))
    gt, gc = gt[:n], gc[:n]
    fin = np.isfinite(gt)
    t = np.where(fin, gt, 0.0)
    moments = []
    for c in (a, b):
        mean = np.zeros(len(timing.specs))
        var = np.zeros(len(timing.specs))
        for k, spec in enumerate(timing.specs):
            cost = c.costs.get(id(spec))
            if cost is None or cost.mean <= 0:
                continue
            mean[k] = cost.mean
            step = cost.mean / 64.0
            pmf = cost.pmf(step, top=64.0 * cost.mean)
            units = np.arange(pmf.size) * step
            var[k] = max(0.0, float(np.dot(units * units, pmf)) - float(np.dot(units, pmf)) ** 2)
        x = np.where(fin, gc @ mean, 0.0)
        moments.append((x, np.where(fin, gc @ var, 0.0) + x * x))
    (xa, xa2), (xb, xb2) = moments
    share = np.maximum(w - np.abs(t[:, None, :] - t[:, :, None]), 0.0)
    off = ~np.eye(gt.shape[1], dtype=bool)[None, :, :]

    def second(x: NDArray[np.float64], y: NDArray[np.float64],
               same: NDArray[np.float64]) -> float:
        pairs = float(np.where(off, x[:, :, None] * y[:, None, :] * share, 0.0).sum())
        out: float = (pairs + w * float(same.sum())) / n
        return out

    return (second(xa, xa, xa2), second(xb, xb, xb2), second(xa, xb, xa * xb),
            float(xa.sum()) / n, float(xb.sum()) / n)


def exact_calls_per_turn(wl: Workload) -> dict[int, float]:
    """Exact mean launches per turn (over the mix) of each call, by ``id(call)``.

    The window model weights the turn sample by these, so a call the fixed-seed sample
    never makes (an optional step taken once in 10^6 turns) keeps its exact load.
    """
    out: dict[int, float] = {}
    for t in wl.turns:
        for ev in t.events:
            for call in {id(x): x for x in ev.batch.calls()}.values():
                only: dict[int, CallCost | None] = {id(call): CallCost("requests")}
                out[id(call)] = (out.get(id(call), 0.0)
                                 + t.probability * ev.rate * batch_units_mean(ev.batch, only))
    return out


__all__ = ["ClumpedWindow", "clumped_window_model", "retry_model", "stability_notes",
           "timing_of", "unstable_above", "window_step"]
