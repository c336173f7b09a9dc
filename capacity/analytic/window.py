"""Fixed and sliding windows: the window count from clumped turns, retries, the 429 share.

Window count (fresh calls)
    From :mod:`capacity.analytic.timing`: per session and window, a turn's launches that
    land in the same window form one clump (a *run signature*); the single-turn part of a
    session's window count puts mass ``E[length_sig]/C`` on the charges of each
    signature (``C``: mean cycle, s), total ``P`` = the chance a random window sees one
    of its turns. Were turn starts Poisson, N sessions would give the compound Poisson
    ``exp(N·P·(F̂ − 1))`` exactly (``F`` the clump-size law). A closed session launches
    its turns one after another, which makes its count *less* variable than Poisson; the
    per-session law used is a binomial–Poisson mixture ``(1 − P' + P'F̂)·exp((P −
    P')(F̂ − 1))`` whose variance matches the session's exact second moment, two-turn
    overlaps included (``P' = sqrt(P² − C₂/μ²)``, ``C₂`` from
    :meth:`~capacity.analytic.timing.TurnTiming.cross_moment`): the finite-population
    correction. It is the compound binomial of theory.md §2.2 when no two turns of one
    session can share a window, and the compound Poisson when they overlap as much as
    independent ones. Sums over N sessions are exact on the lattice by FFT.

    Where the sample can say it, the per-session law is the session's own instead
    (:func:`_session_law`): the sampled turns laid end to end at the mean cycle, each
    launch charged from its own draws (its output is the one its latency was drawn
    with), and a window slid over them. A closed session cannot launch more than its
    turns hold: with several turns per window (P > 1) the mixture's binomial share is
    capped at one and the rest given a Poisson tail, 2-4× too wide at small N
    (hunt-093, hunt-124, hunt-039). A call charged more than the whole allowance never
    fits (the limiter's retry-after is infinite): it is refused on all its attempts
    and never charged, so it counts 0 in the window and its attempts are added to the
    refused ones (:meth:`ClumpWindowModel._with_never_fit`; hunt-063, hunt-053).

The 429 share of attempts — fixed windows
    A first-come counter admits a call while the window's count plus its charge fits
    ``q``. Without retries the rejected share is the stop-loss ``E[(S − q)⁺]/E[S]``. With
    retries and a honoured ``retry-after`` (the time to the next window start) every
    call rejected in one window is retried at the start of the next, ahead of its fresh
    calls, so the carried load ``Y`` follows the Lindley recursion
    ``Y' = (S + Y − q)⁺``: a queue whose calls rotate, iterated on a lattice of ~256
    points per allowance until it settles (its stationary law: tens of windows near
    saturation), a carry above the allowance losing the retries on their last try
    (:func:`_carry_law`); attempts answered 429 are ``R/(E[S] + R)`` and calls that saw
    a 429 ``R/E[S]``, ``R`` the calls refused per window (retries are first in line, so
    they rarely fail again; counted rejections change nothing in a window that is
    already full). Token charges: a window that overflows by ``X`` refuses the call that
    crosses ``q`` (a large one) and the later ones that no longer fit the room left —
    every one of them once the room is gone, whatever its size
    (:meth:`Crossing.refused`, from the excess's mean per overflowing window).

The 429 share of attempts — sliding windows (a scan statistic)
    A sliding counter rejects an attempt when the units in the trailing ``w`` seconds
    (counted rejections included, where the quota counts them) leave no room. The count
    an *arriving* call sees is the stationary window count ``S`` of the other sessions
    plus its own turn's earlier launches within ``w`` and the batch-mates ahead of it
    (the Palm view: an arrival sits inside its own clump), plus the retries: the share
    rejected is ``p = P(S + own + retries + B > q)`` (``own``: the session's own launches
    in the trailing window — its turn's earlier ones, batch-mates ahead, and its earlier
    turns). A log that rejected calls leave for good (no retries, not counted) is a loss
    system: ``S`` truncated at ``q`` (Erlang; for clumps admitted in part, plus the
    units that part displaces later: :meth:`ClumpWindowModel._partial_admission`).
    Honoured retry-afters of an uncounted log herd at the oldest charge's expiry:
    :meth:`ClumpWindowModel.herd_chain` follows a full spell expiry by expiry (the first
    attempts' share is the loss system's times how much the re-occupying retries
    lengthen the spells; the retries' share from the herds meeting the room each expiry
    frees). Backoff retries that come back to an uncounted log sooner than ``w`` meet
    the charges that refused them still logged: retries 1…k are all refused while the
    room the call lacked is still short at each, the log's oldest charges (an
    Esscher-tilted compound Poisson, the log being full) expiring against the others'
    launches (:meth:`ClumpWindowModel._held_backoff`); the log is a loss log's (the
    count truncated) but for the charges the retries let in near its top, each of which
    turns fresh calls away later — Key's relative cost on the log's blocking function
    (:meth:`ClumpWindowModel._retry_cost`). Otherwise retries of rejected
    attempts add ``(A(p) − 1)`` attempts per call (``A(p) = (1 − p^{m+1})/(1 − p)``, at most ``m``
    retries), a Poisson orbit stream (theory.md §3); ``p`` is the least fixed point of
    ``p = H(p)``, and the fixed point is checked for uniqueness on a grid of ``p``:
    several roots mean a retry storm can sustain itself (metastable). When rejections
    are counted and retry-afters honoured (or retries come back sooner than ``w``) every
    retry meets a full log again; above
    ``N_u = q/((1 + m)·calls per window)`` a burst that fills the log starts a storm
    that can feed itself, and the share adds the storms (:meth:`ClumpWindowModel._storms`:
    Alm's declumped up-crossing rate times the attempts a storm turns away, a Markov
    chain of the log count from the first call turned away until an arrival finds room,
    with the launches the sessions make meanwhile: :meth:`ClumpWindowModel.storm_size`).
    Single launches (no fan-out) meet a loss log that holds the arriving call's own
    session's earlier charges with the others': the product form truncates their sum
    (:meth:`ClumpWindowModel._loss_share`); a log that counts the refusals of aborted
    turns is that loss log with its full spells lengthened by the logged refusals
    (:meth:`ClumpWindowModel._counted_spells`) — a cadence session's restart among them:
    refused past its cadence, it starts its next turn at once, whose first call comes a
    rejection latency later into the log the refusal filled, refused and logged as well
    (``storm_restart``; tests/data/cadence-restart-counted.yaml: 20 -> 18 against a
    simulated 16 [16-17]).
    Without retries a counted refusal still keeps the log full, and its aborted turn's
    session comes back a think time later (Exp(5 s) inside a 10 s window) to be refused
    and counted again: every first refusal starts such a storm, at any N (hunt-rpm-226
    with a 10 s window: 0.66 % of attempts refused at 17 sessions, 0.13 % uncounted).

Aborted turns
    Without retries a rejected call fails and (``abort_turn``) its turn launches nothing
    more; the load thins to the launches still made, a fixed point in the failure share
    (:meth:`ClumpWindowModel.made_fraction`). In a fixed window of requests, full from
    some point on, such a turn makes only its first instant after that point, where the
    stop-loss counts all its later calls refused: the share is then the first refused
    instants' (:meth:`ClumpWindowModel._first_refused`; hunt-rpm-207). With
    ``continue`` the turn's next stages launch a rejection latency after the refusal,
    into the same full fixed window, and are refused too (:class:`Cascade`,
    :meth:`ClumpWindowModel._cascaded`; a sliding loss log:
    :meth:`ClumpWindowModel._sliding_cascade`). A sliding log that counts refusals logs
    every launch, so its count is the free one, but a refusal keeps it full: the
    refused turn's next stages are cascaded into it the same way (the others' count not
    truncated), and each first refusal starts a storm (:meth:`ClumpWindowModel._storms`)
    in which a turn met runs through at once — a turn starting brings all its calls, one
    caught mid-way its next launch's and every later one's, and the crossing launch's
    turn its later calls (hunt-rpm-217 counted, ``continue``: 29 -> 24 vs simulated 25
    [23-25]).
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from capacity.analytic.timing import TurnTiming, searchsorted_near
from capacity.model.dist import Distribution, finest_step
from capacity.model.numeric import fixed_point_between, swing_narrows
from capacity.model.retry import RetryPolicy
from capacity.model.workload import CallCost, remember

_MAX_FFT = 1 << 22
# Below this P(S ≤ q) a loss log's truncated count is read from the tilted count
# (:meth:`ClumpWindowModel.truncated`): the FFT's round-off is ~1e-16 of the peak, so
# 1e-7 keeps ~9 digits on the direct path and changes no answer that was accurate.
_TILT_BELOW = 1e-7
# A tilt past this (e^{−50} a unit) leaves only the count's least value: none reaches q.
_TILT_MAX = 50.0
_ABORT_STORMS = True
_CONTINUE_STORMS = True
_CASCADE_COUNTED = True
# Storms below the threshold, their backoff retries logged when they come (session 55:
# ClumpWindowModel.storms_below_threshold, storm_chain's ``delayed``).
_SUB_STORMS = True
_STORM_RETRY_DELAY = True
# Fixed request windows with retries: a refused turn's later calls deferred past the
# window, not refused (session 55: ClumpWindowModel._deferred_thinning).
_DEFERRED_STAGES = True
_CONTINUE_START = True
# Backoff retries in fixed windows: where the refused calls sit from the Palm view of the
# window's prefix (ClumpWindowModel._refusal_cells), not the spread rule.
_PALM_SAME_WINDOW = True
_COUNTED_SPELLS = True
# Cells over a fixed window for the cascade of refused stages (Cascade), and the time
# left (share of the window) at which the chance a launch is refused whole is solved.
_CASCADE_NODES = 48
_CASCADE_POINTS = 256
_CASCADE_EDGES = np.linspace(0.0, 1.0, _CASCADE_NODES + 1)
_CASCADE_MIDDLES = 0.5 * (_CASCADE_EDGES[1:] + _CASCADE_EDGES[:-1])
# Cascaded stages beyond this many are gathered here (their least charge barely moves).
_CASCADE_LEVELS = 12
# Cells over a fixed window where its refusals are placed for a retry's chance of
# meeting the same window (ClumpWindowModel.refused_later): 10 ms a 5 s window.
_LATER_CELLS = 512
_LATER_MIDDLES = (np.arange(_LATER_CELLS) + 0.5) / _LATER_CELLS
_CASCADE_LEFT = np.array([0.003, 0.01, 0.025, 0.05, 0.09, 0.15, 0.24, 0.37, 0.55, 0.8, 1.0])
# Lattice points across the allowance for the carried retries' stationary law.
_CARRY_POINTS = 256
# Consecutive fixed windows whose fresh counts are correlated at least this much (one
# session's lag-1 correlation, N independent sessions' too) carry their retries into a
# window whose count follows this one's (:func:`_pair_carry_law`); less, an independent
# one (:func:`_carry_law`). Short windows of a turn's sequential calls are (hunt-4091's
# second deployment alone, a turn's calls ~1 s apart: 0.43 in 1 s windows, 0.56 in 2 s,
# 0.34 in 5 s, 0.12 in 10 s; ``python benchmarks/session63_probes.py pairs``); the
# accuracy table's 1 -> 3 -> 1 turn, its stages seconds apart, is not, even in 1 s
# windows (tests/test_analytic_pair_carry.py).
_PAIR_MIN_RHO = 0.2
_PAIR_CARRY = True  # (False: every window independent, as before; the probes' switch)
# The chain keeps the last window's count in this many bins (the next count's law moves
# smoothly with it).
_PAIR_BINS = 24
# That chain runs on the window count's own lattice, for allowances of at most this
# many points (its state is the carry by the window's count: its cost grows with the
# square of the points); larger ones keep independent windows. (On a coarser lattice
# each session's calls would split between its points, which widens N sessions' count
# and overstates the carry.)
_PAIR_POINTS = 64


@dataclass(frozen=True)
class _LeastCharges:
    """The least of ``j + 1`` call charges for the cascaded stages ``j``: their shares
    of the cascaded calls and their laws' damped transforms (one row each)."""

    weights: NDArray[np.float64]
    fts: NDArray[np.complex128]


@dataclass
class RetryModel:
    """What the analytic model needs of the client's retry policy."""

    max_retries: int
    honour_retry_after: bool
    counts_rejected: bool = False
    abort_turn: bool = True
    # Without the retry-after: seconds from a refusal to retry k (k = 1…m), the 429's
    # return trips and mean backoffs — a retry sooner than the window's end comes back
    # into the same full window.
    backoff_s: tuple[float, ...] = ()
    # ``on_exhausted: continue`` without retries: seconds from a refusal to the turn's
    # next stage (the 429's return trip); None leaves the cascade out (see Cascade).
    rejection_latency_s: float | None = None
    # A retry-after over the client's cap ends the call's retries (openai 3.57's rule).
    give_up_beyond: bool = False

    @property
    def retries(self) -> bool:
        """True when a rejected call is tried again."""
        return self.max_retries > 0

    @property
    def never_fit_tries(self) -> int:
        """Attempts of a call charged more than the limit can ever hold, each refused:
        the limiter's retry-after is infinite, and the client's one rule
        (:meth:`capacity.model.retry.RetryPolicy.attempts_refused`) backs off instead
        (``1 + max_retries``), or gives up at once beyond its cap."""
        return RetryPolicy(max_retries=self.max_retries,
                           honour_retry_after=self.honour_retry_after,
                           give_up_beyond=self.give_up_beyond).attempts_refused(math.inf)

    @property
    def continues(self) -> bool:
        """No retries, and a refused call's turn goes on (``on_exhausted: continue``,
        not a routed call, whose 429 may spill instead)."""
        return (not self.retries and not self.abort_turn
                and self.rejection_latency_s is not None)

    @property
    def storms_without_retries(self) -> bool:
        """A counted log without retries: a refusal keeps it full, and the refused
        turns' sessions (aborted: back a pause later; continuing: their next stages at
        once) are refused and counted again (see :meth:`ClumpWindowModel.storm_size`)."""
        return self.counts_rejected and not self.retries and (
            (_ABORT_STORMS and self.abort_turn) or (_CONTINUE_STORMS and self.continues))


def with_never_fit(out: dict[str, float], f: float, tries: int) -> dict[str, float]:
    """The 429 shares ``out`` with the calls charged more than the limit can ever hold
    (share ``f`` of the calls) added: each is refused on all its ``tries`` attempts
    (:attr:`RetryModel.never_fit_tries`) and fails. ``out`` counts them as calls charged
    0, admitted at once (the window count's and the bucket level's view: they never
    take a unit), so its shares are per call of all kinds: ``r = a/(1 − a)`` refused
    attempts per call from the calls that fit."""
    if f <= 0:
        return out
    a = min(out["attempt"], 1.0 - 1e-12)
    r = a / (1.0 - a)
    res = dict(out)
    res["attempt"] = min(1.0, (r + f * tries) / (1.0 - f + r + f * tries))
    res["call"] = min(1.0, out["call"] + f)
    res["failed"] = min(1.0, out["failed"] + f)
    res["retry_share"] = out["retry_share"] + f * (tries - 1)    # retries per call
    return res


def attempts_per_call(p: float, m: int) -> float:
    """``A(p) = 1 + p + … + p^m``: attempts per call when each is rejected with ``p``."""
    if p >= 1.0:
        return float(m + 1)
    return (1.0 - p ** (m + 1)) / (1.0 - p)


@dataclass
class ClumpWindowModel:
    """The window count of one constraint for any N (see the module docstring)."""

    h: float                           # lattice step (units)
    q_lat: float                       # allowance in lattice units (need not be whole)
    window_s: float
    sliding: bool
    p_single: float                    # P: chance a window sees a turn of one session
    p_binomial: float                  # P' ≤ P: the binomial share (closed loop)
    clump_pmf: NDArray[np.float64]     # F: clump size law on the lattice (f_0 = 0)
    call_pmf: NDArray[np.float64]      # charge of one call (mixture over calls)
    own_pmf: NDArray[np.float64]       # own-turn units ahead of an arriving call
    mean_units: float                  # E[S] per session and window, in units
    calls_per_window: float            # fresh calls per session and window
    retry: RetryModel
    size_bias: float = 1.0             # κ: E[B] / E[B | rejected] (token charges)
    prior_hist: NDArray[np.float64] = field(  # weight of each pattern of earlier launches
        default_factory=lambda: np.ones(1))
    prior_counts: NDArray[np.float64] = field(  # pattern × call: earlier launches
        default_factory=lambda: np.zeros((1, 1)))
    fail_odds: NDArray[np.float64] = field(  # call: relative failure odds
        default_factory=lambda: np.zeros(1))
    event_pmf: NDArray[np.float64] = field(  # units one launch instant charges (f_0 = 0)
        default_factory=lambda: np.zeros(1))
    events_per_window: float = 0.0     # launch instants per session and window
    # Where a full window turns its first call away: the room it leaves unused (a
    # counter turns away a call that does not fit, so it admits q − W, not q).
    crossing: Crossing | None = None
    # A refused call whose turn goes on (``on_exhausted: continue``, no retries): the
    # turn's next stages, launched a rejection latency later into the same full window.
    cascade: Cascade | None = None
    # A refused call whose turn is aborted (``abort_turn``, no retries): the turn's later
    # launches in the same full window are never made (see :meth:`_first_refused`).
    aborted: AbortLaw | None = None
    # A token window whose refused calls hold their turns (``abort_turn``: retried in the
    # full window or held to its end by the retry-after, then the turn ends): its launch
    # instants' gaps to their turns' instants before (:class:`AbortGaps`, read by
    # :meth:`refused`); None: not built.
    abort_gaps: AbortGaps | None = None
    # One session's units launched in the first fraction u of a window, at the nodes
    # 1 − _CASCADE_LEFT (the session law of a window u·w long); None: not built.
    prefix_pmfs: tuple[NDArray[np.float64], ...] | None = None
    # What a retry storm meets (counted, retried sliding windows; see storm_size): per
    # sampled turn, its first launch's units (lattice), and every later launch's gap to
    # the launch before it (s) and units; turns per session and window; the pause's
    # quantiles (s; think-time sessions), each turn's end after its last launch (s),
    # and the cadence (s) of cadence-paced sessions (set by the caller, who knows it).
    storm_first: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    storm_gaps: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    storm_sizes: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    turns_per_window: float = 0.0
    storm_pause: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    storm_ends: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # Per later launch (as ``storm_gaps``): its offset (s) from its turn's first launch
    # and its turn (an index into ``storm_first``): the rebound after a storm
    # (:func:`_storm_rebound`).
    storm_offsets: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    storm_turn: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # A refused turn that goes on (no retries, ``on_exhausted: continue``) launches its
    # later stages a 429's trip apart: per sampled turn, all its launches' units; per
    # later launch (as ``storm_gaps``), its units and every later one's of its turn.
    storm_whole: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    storm_rest: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # Per later launch (as ``storm_gaps``): the units of the restart its refusal brings
    # (cadence-paced sessions past their cadence, no retries; empty: none).
    storm_restart: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    storm_cadence: float = 0.0         # cadence paced: the mean cycle (s); else 0
    storm_rough: bool = False          # storm size: one window of storm (a search's guess)
    storm_scale: float = 1.0           # ... times this (a guess calibrated on one chain)
    never_fit: float = 0.0             # share of calls charged more than the allowance
    # max_tokens charged at admission (output charged as the reservation): the fleet's
    # spill holder (fleet.py) leaves such logs to the orbit rule, an empirical exclusion
    # made while retries were read one at a time (_held_backoff now takes them).
    reserved: bool = False
    # Share of the calls this slot turns away whose retries come back to it, by N (None:
    # all; a route that routes each retry afresh sends some elsewhere and brings other
    # deployments' retries here, :func:`capacity.analytic.fleet.reroute_retries`): the
    # carried retries are scaled by it.
    carry_back: Callable[[int], float] | None = None
    # Every launch a single call (no batch-mates ahead): ``own_pmf`` is all earlier
    # launches, in the log with the others' charges (False: fan-outs, or a blend).
    single_launches: bool = False
    # Units of an arriving call's own session already in the log when its launch comes
    # (its earlier launches, batch-mates left out: they arrive with it); None: own_pmf
    # (single launches, whose own units are all earlier ones).
    prior_pmf: NDArray[np.float64] | None = None
    # What an arriving call adds to the count it finds, its own units ahead and its charge
    # taken together, launch by launch (:func:`_own_prior`); None: ``own_pmf`` and
    # ``call_pmf`` taken as independent.
    arrival_pmf: NDArray[np.float64] | None = None
    # ... weighted by the arriving call's charge, over the mean charge (set with it).
    arrival_units: NDArray[np.float64] | None = None
    # ``arrival_pmf`` call site by call site (the site's index in the turn timing, its
    # part of the law): where the log's refusals fall (:meth:`site_split`).
    arrival_sites: tuple[tuple[int, NDArray[np.float64]], ...] | None = None
    # A loss log without retries: a turn's calls in one window taken as a clump
    # admitted in part (:meth:`_sliding_h`); False where a fleet's room rules read the
    # log's share (:func:`capacity.analytic.fleet.thin_calls`).
    trains_in_part: bool = True
    # The mean age of a launch's own units ahead, weighted by the units, over the window
    # (1: none ahead): how far the log has turned over since its session's earlier calls
    # were admitted (:meth:`_in_part`).
    train_gap: float = 1.0
    # Aborted turns end early (no retries, ``abort_turn``, think-time sessions): per
    # pattern of a turn's launches up to a refusable event, the turn time it saves
    # when that event holds the turn's first refusal (s per turn; :func:`_abort_saving`),
    # the relevant launches before the event and through it; and the mean cycle (s;
    # 0: the cycle does not shorten, e.g. cadence-paced sessions).
    saving_weight: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    saving_before: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    saving_through: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    abort_cycle_s: float = 0.0
    # Cadence-paced sessions: per pattern (as ``saving_weight``), the share of turns whose
    # first refusal there restarts the session at once, and the charge law (lattice) of
    # the restarted turn's first call (:func:`_abort_saving`, :meth:`_sliding_restart`).
    restart_weight: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    restart_pmf: NDArray[np.float64] = field(default_factory=lambda: np.zeros((2, 1)))
    # One session's window count (lattice), from its turns laid end to end (None: the
    # binomial–Poisson mixture of the module docstring).
    session_pmf: NDArray[np.float64] | None = None
    # One session's units in two consecutive fixed windows at a uniform phase, from its
    # turns laid end to end ((first, second, weight) of each content pair, lattice
    # units; pairs of two empty windows left out): where they are correlated enough for
    # the carried retries to see it (``_PAIR_MIN_RHO``), with retries; else None.
    pair_law: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None = None
    # Storm sizes by grid point, or a floor where a caller needed no more (_StormFloor).
    _storm_sizes: dict[float, float | _StormFloor] = field(default_factory=dict, repr=False)
    # Storms one ignition brings (:func:`_storm_rebound`), by grid point (1 when absent).
    _storm_rebounds: dict[float, float] = field(default_factory=dict, repr=False)
    _cache: dict[int, Any] = field(default_factory=dict, repr=False)
    # exp of the session law's log transform, by L: a fractional N's extra session
    # (:meth:`_log_power`) needs it at every guess of the abort fixed point (a complex exp
    # of 8,193 points is ~0.5 ms; the same numbers each time).
    _exp_log: dict[int, NDArray[np.complex128]] = field(default_factory=dict, repr=False)
    _herd: dict[int, float] = field(default_factory=dict, repr=False)
    _chains: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)
    _carries: dict[int, NDArray[np.float64]] = field(default_factory=dict, repr=False)
    _pair_carries: dict[float, NDArray[np.float64]] = field(default_factory=dict, repr=False)
    _pair_logs: dict[tuple[int, int], tuple[NDArray[np.complex128], NDArray[np.complex128]]] = (
        field(default_factory=dict, repr=False))
    # The ceiling search evaluates the same N many times (the cheap stop-loss bracket is
    # bisected again for every guess): the fresh-count pmf, by N.
    _pmfs: dict[float, NDArray[np.float64]] = field(default_factory=dict, repr=False)
    _moments: tuple[float, float] | None = field(default=None, repr=False)
    _cascades: dict[float, float] = field(default_factory=dict, repr=False)
    _cascade_memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    # The call-charge transform less one, by L (the retries' Poisson term, :meth:`_pmf`).
    _retry_terms: dict[int, NDArray[np.complex128]] = field(default_factory=dict, repr=False)

    # -- the compound sum ------------------------------------------------------------

    def _transforms(self, L: int) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
        """(per-session log characteristic function, call-charge transform) at length L."""
        hit = self._cache.get(L)
        if hit is None:
            if self.session_pmf is not None:
                gh = np.fft.rfft(self.session_pmf, L)
                # Only ever multiplied by a whole number (:meth:`_log_power`): any branch.
                log_g = complex_log(gh)
                hit = (log_g, np.fft.rfft(self.call_pmf, L))
                self._cache[L] = hit
                return hit
            fh = np.fft.rfft(self.clump_pmf, L)
            pb, pp = self.p_binomial, self.p_single - self.p_binomial
            # A binomial factor can vanish at a frequency (P' = 1, a clump law with a
            # zero transform there): floor it so that N·log stays finite (exp → 0).
            log_bin = complex_log(1.0 - pb + pb * fh) if pb > 0 else np.zeros_like(fh)
            log_session = log_bin + pp * (fh - 1.0)
            hit = (log_session, np.fft.rfft(self.call_pmf, L))
            self._cache[L] = hit
        return hit

    def _length(self, n: float, extra_mean_lat: float = 0.0) -> int:
        f = self.clump_pmf
        if self._moments is None:
            k = np.arange(f.size)
            self._moments = (float(_dot(k, f)), float(_dot(k * k, f)))
        m1, m2 = self._moments
        mean = n * self.p_single * m1 + extra_mean_lat
        var = n * self.p_single * m2 + extra_mean_lat * max(1.0, float(self.call_pmf.size))
        # Room for the count's tail and the carried retries (below ~q once they drain).
        own = self._session_span()
        span = (max(mean + 14.0 * math.sqrt(max(var, 1e-12)), 1.5 * self.q_lat) + f.size + own
                + self.own_pmf.size + self.call_pmf.size + 16)
        return 1 << max(6, math.ceil(math.log2(span * 1.25)))

    def _log_power(self, x: float, L: int) -> NDArray[np.complex128]:
        """log of the transform (length ``L``) of ``x`` sessions' window count.

        The session law's log is only ever multiplied by a whole number (its branch is
        then irrelevant): a fractional ``x = k + f`` (N − 1 others of a blend, a thinned
        N) is ``k`` sessions and one more present with chance ``f``."""
        out, part = self._power_parts(x, L)
        if part is not None:
            out = out + complex_log(part)
        return out

    def _power_parts(self, x: float, L: int
                     ) -> tuple[NDArray[np.complex128], NDArray[np.complex128] | None]:
        """:meth:`_log_power` as (the log of the whole sessions' transform, a fresh
        array; the factor ``1 − f + f·ĝ`` of the fractional one, None when there is
        none): a caller that exponentiates multiplies by the factor instead of adding
        its log (a complex log costs ~120 ns a point, seven times a complex exp)."""
        log_s = self._transforms(L)[0]
        if self.session_pmf is None:
            whole: NDArray[np.complex128] = x * log_s
            return whole, None
        k = math.floor(x + 1e-12)
        f = x - k
        whole = k * log_s
        if f <= 1e-12:
            return whole, None
        e = self._exp_log.get(L)
        if e is None:
            e = self._exp_log[L] = np.exp(log_s)
        part: NDArray[np.complex128] = 1.0 - f + f * e
        return whole, part

    def _session_span(self) -> int:
        """Lattice points of one session's window law (0: the mixture's)."""
        return self.session_pmf.size if self.session_pmf is not None else 0

    def pmf(self, n: float, retry_calls: float = 0.0) -> NDArray[np.float64]:
        """pmf of the fresh (plus ``retry_calls`` Poisson retried) units in a window
        (read-only: the fresh-count pmfs are cached by N)."""
        if retry_calls <= 0:
            hit = self._pmfs.get(n)
            if hit is None:
                if len(self._pmfs) >= 256:
                    self._pmfs.clear()
                hit = self._pmfs[n] = self._pmf(n, 0.0)
            return hit
        return self._pmf(n, retry_calls)

    def _pmf(self, n: float, retry_calls: float) -> NDArray[np.float64]:
        extra = retry_calls * float(_dot(np.arange(self.call_pmf.size), self.call_pmf))
        L = min(self._length(n, extra), _MAX_FFT)
        log_g, part = self._power_parts(n, L)  # a fresh array: worked on in place below
        if retry_calls > 0:
            # The fixed point of the retries asks for this at every step (20 or so an N,
            # each 2^14–2^16 points): ``ch − 1`` is kept by L, and the sum, its exp and
            # the flush below are done in place — the same operations in the same order
            # (answers bit for bit), fewer passes over memory.
            cm1 = self._retry_terms.get(L)
            if cm1 is None:
                cm1 = self._retry_terms[L] = self._transforms(L)[1] - 1.0
            np.add(log_g, np.multiply(retry_calls, cm1), out=log_g)
        with np.errstate(under="ignore"):
            np.exp(log_g, out=log_g)
            if part is not None:
                np.multiply(log_g, part, out=log_g)
            g: NDArray[np.float64] = np.fft.irfft(log_g, L)
        # Flush round-off and subnormal values: later FFTs of subnormals are ~100× slower.
        np.copyto(g, 0.0, where=~(g > 1e-250))
        g.setflags(write=False)
        return g

    def truncated(self, n: float, retry_calls: float = 0.0) -> NDArray[np.float64]:
        """``P(S = x | S ≤ q)``, ``x = 0..q``: the window count of ``n`` sessions (plus
        ``retry_calls`` Poisson retried calls) truncated at the allowance ``q`` — a loss
        log's occupancy (Erlang's insensitivity), read in units.

        Far above its allowance (a priority deployment that spills, 1.5× its load)
        ``P(S ≤ q)`` is ~1e-20, below the FFT's round-off (~1e-16 of the peak): read off
        :meth:`pmf` the truncated law is noise, and the loss share built on it jumped
        between 0 and 1 from one N to the next (hunt-69's 60 s log: 28 % at 600
        sessions, 64 % at 620, 3e-16 at 640, 100 % at 660). There the same law is read
        from the exponentially tilted count, ``P_t(S = k) ∝ P(S = k)·e^{−t·k}`` with
        ``t`` putting its mean at ``q`` (:meth:`_tilted_pmf`), whose values near ``q``
        are of order one, untilted by ``e^{t·(k − q)}``: exact, not an approximation (a
        Poisson count of unit calls gives Erlang's overload loss ``1 − q/λ``). Without
        retried calls remembered by ``n`` (read-only), as :meth:`pmf` is: a fed slot's
        searches ask the spilling log's law at the same ``n`` again."""
        if retry_calls > 0:
            return self._truncated(n, retry_calls)
        key = ("truncated", n)
        hit: NDArray[np.float64] | None = self._cascade_memo.get(key)
        if hit is None:
            hit = self._truncated(n, 0.0)
            hit.setflags(write=False)
            remember(self._cascade_memo, key, hit, 512)
        return hit

    def _truncated(self, n: float, retry_calls: float) -> NDArray[np.float64]:
        """:meth:`truncated`, computed."""
        q = math.floor(self.q_lat + 1e-9)
        g = self.pmf(n, retry_calls)
        head = g[: q + 1]
        mass = float(head.sum())
        if mass >= _TILT_BELOW or head.size <= q:
            return head / mass if mass > 0 else head
        t = self._tilt(n, retry_calls, q)
        if t <= 0.0:
            return head / mass if mass > 0 else head
        if not math.isfinite(t):
            # The count is never as low as q: every session charges at least its least
            # units a window (a tool loop's six calls in every minute) and N of them add
            # up past q. Every arrival finds the log full (the product form's limit; it
            # said 97 % at the last N where the count could reach q, hunt-96's 60 s log
            # at 690 sessions, and 1e-16 of round-off at 750).
            full = np.zeros(q + 1)
            full[q] = 1.0
            return full
        h = self._tilted_pmf(n, retry_calls, t)[: q + 1]
        w = h * np.exp(t * (np.arange(h.size, dtype=np.float64) - q))
        tot = float(w.sum())
        out: NDArray[np.float64] = w / tot if tot > 0 else (head / mass if mass > 0 else head)
        return out

    def _tilt_mean(self, n: float, retry_calls: float, t: float) -> float:
        """Mean (units) of the window count tilted by ``e^{−t·k}`` (:meth:`truncated`)."""
        def moments(pmf: NDArray[np.float64]) -> tuple[float, float]:
            k = np.arange(pmf.size, dtype=np.float64)
            w = pmf * np.exp(-t * k)
            return float(w.sum()), _dot(k, w)       # (P(z), z·P'(z)) at z = e^{−t}

        if self.session_pmf is not None:
            s0, s1 = moments(self.session_pmf)
            whole = math.floor(n + 1e-12)
            f = n - whole
            mean = whole * s1 / s0 if s0 > 0 else 0.0
            if f > 1e-12:
                mean += f * s1 / (1.0 - f + f * s0)
        else:
            f0, f1 = moments(self.clump_pmf)
            pb, pp = self.p_binomial, self.p_single - self.p_binomial
            den = 1.0 - pb + pb * f0
            mean = n * ((pb * f1 / den if den > 0 else 0.0) + pp * f1)
        if retry_calls > 0:
            mean += retry_calls * moments(self.call_pmf)[1]
        return mean

    def _tilt(self, n: float, retry_calls: float, q: int) -> float:
        """The tilt ``t ≥ 0`` whose tilted count has mean ``q`` (bisection; 0 if the
        count's mean is already at or below ``q``, ``inf`` if no tilt brings it there:
        the count's least value is above ``q``)."""
        if self._tilt_mean(n, retry_calls, 0.0) <= q:
            return 0.0
        if self._tilt_mean(n, retry_calls, _TILT_MAX) > q:
            return math.inf
        lo, hi = 0.0, 1e-6
        while self._tilt_mean(n, retry_calls, hi) > q:
            lo, hi = hi, hi * 4.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self._tilt_mean(n, retry_calls, mid) > q:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-9 * hi:
                break
        return 0.5 * (lo + hi)

    def _tilted_pmf(self, n: float, retry_calls: float, t: float) -> NDArray[np.float64]:
        """``P(S = k)·e^{−t·k}``, normalised: :meth:`_pmf`'s law evaluated on the circle
        ``|z| = e^{−t}`` (each law tilted, the same powers and Poisson terms)."""
        extra = retry_calls * float(_dot(np.arange(self.call_pmf.size), self.call_pmf))
        L = min(self._length(n, extra), _MAX_FFT)

        def tilted(pmf: NDArray[np.float64]) -> NDArray[np.complex128]:
            k = np.arange(pmf.size, dtype=np.float64)
            out: NDArray[np.complex128] = np.fft.rfft(pmf * np.exp(-t * k), L)
            return out

        if self.session_pmf is not None:
            gh = tilted(self.session_pmf)
            log_s = complex_log(gh)
            whole = math.floor(n + 1e-12)
            f = n - whole
            log_g = whole * log_s
            if f > 1e-12:
                part = 1.0 - f + f * gh
                log_g = log_g + complex_log(part)
        else:
            fh = tilted(self.clump_pmf)
            pb, pp = self.p_binomial, self.p_single - self.p_binomial
            log_bin = complex_log(1.0 - pb + pb * fh) if pb > 0 else np.zeros_like(fh)
            log_g = n * (log_bin + pp * (fh - 1.0))
        if retry_calls > 0:
            log_g = log_g + retry_calls * (tilted(self.call_pmf) - 1.0)
        # The total mass, P(z) at z = e^{−t} (real), taken out: the tilted law sums to 1.
        log_g = log_g - log_g[0].real
        with np.errstate(under="ignore"):
            h: NDArray[np.float64] = np.fft.irfft(np.exp(log_g), L)
        np.copyto(h, 0.0, where=~(h > 1e-250))
        return h

    # -- the 429 share ---------------------------------------------------------------

    def attempt_share(self, n: int) -> dict[str, float]:
        """429 share of attempts and of calls, failures, window exceedance, at ``n``.

        Without retries a rejected call fails, and with ``abort_turn`` its turn launches
        nothing more: the load thins to ``made(p)`` of the launches (each launch is made
        only if no earlier launch of its turn failed), a fixed point in ``p``.
        """
        shares = self._sliding if self.sliding else self._fixed
        if self.retry.retries or not self.retry.abort_turn or self.prior_hist.size < 2:
            return self._with_never_fit(shares(n))
        # The exceedance (a fresh-count pmf at each fractional N, the aborted launches'
        # load) at the last guess only.
        share = functools.partial(shares, exceed=False)
        at: float = n
        out = share(n)
        made = 1.0
        passes, before = [made], out          # (the share the pass before found)
        for _ in range(6):
            new = self.load_factor(out["failed"])
            if abs(new - made) < 1e-4:
                break
            made = new
            at = n * made
            before, out = out, share(at)  # type: ignore[arg-type]
            passes.append(made)
        else:
            # The passes swing about the fixed point: a refused share aborts enough turns
            # that the next pass's load refuses far less, and back.
            narrows = swing_narrows(passes)
            if narrows:
                # Narrowing (hunt-61 at 281 sessions: 5.60, 0.42, 4.95, … % refused):
                # the fixed point, solved between the last two load factors.
                def again(f: float) -> float:
                    return self.load_factor(share(n * f)["failed"])  # type: ignore[arg-type]

                made = fixed_point_between(again, passes[-2], made, xtol=1e-6)
                at = n * made
                out = share(at)  # type: ignore[arg-type]
            elif narrows is False and before["failed"] > out["failed"]:
                # As wide every pass (hunt-61 at 293: 16.23 and 0 %): the balance repels
                # them, and the engine refuses far more than the thinned load would
                # (4.49 % where it says 2.5 %: refusals come in spells that feed
                # themselves); the higher share, the load before the turns abort.
                made = passes[-2]
                at = n * made
                out = before
        out["exceed"] = self.exceedance(at)  # type: ignore[arg-type]
        return self._with_never_fit(out)

    def _with_never_fit(self, out: dict[str, float]) -> dict[str, float]:
        """``out`` with the calls charged more than the allowance (:func:`with_never_fit`)."""
        return with_never_fit(out, self.never_fit, self.retry.never_fit_tries)

    def made_fraction(self, p_fail: float) -> float:
        """Share of launches still made when calls fail (``p_fail`` on average) and a
        failure aborts the rest of its turn: ``E[Π_earlier (1 − p·w_k)]`` over launches,
        ``w_k`` the relative failure odds of call ``k`` (larger token charges fail more
        often, see :func:`_size_bias`)."""
        return _dot(self.prior_hist, self._all_made(p_fail, self.prior_counts))

    def _all_made(self, p_fail: float, counts: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per row of ``counts`` (launches by call kind): the chance none of them fails,
        ``Π (1 − p·w_k)^count_k``."""
        p = min(max(p_fail, 0.0), 1.0)
        base = np.clip(1.0 - p * self.fail_odds[: counts.shape[1]], 0.0, 1.0)
        return np.asarray(np.prod(base[None, :] ** counts, axis=1), dtype=np.float64)

    def load_factor(self, p_fail: float) -> float:
        """Launches per session and second when calls fail (``p_fail`` on average), over
        those without failures: the launches still made (:meth:`made_fraction`) at the
        shorter cycle of turns that end at their first refusal, ``C/(C − saved)``
        (hunt-092: a 5 % target aborts one turn in ten, and the Exp(5 s) think time
        brings its session back ~20 s sooner)."""
        made = self.made_fraction(p_fail)
        if self.abort_cycle_s <= 0 or self.saving_weight.size == 0:
            return made
        saved = _dot(self.saving_weight, self._all_made(p_fail, self.saving_before)
                     - self._all_made(p_fail, self.saving_through))
        return made * self.abort_cycle_s / max(self.abort_cycle_s - saved,
                                               0.05 * self.abort_cycle_s)

    def stop_loss_share(self, n: int) -> float:
        """The no-retry 429 share ``κ·E[(S − q)⁺]/E[S]`` (fixed windows): a retry-free
        lower bracket — with carried retries the attempt share is at least ``ℓ/(1+ℓ)``."""
        g = self.pmf(n)
        mean_s = n * self.mean_units / self.h
        if mean_s <= 0:
            return 0.0
        return min(1.0, self._rejected(g, mean_s) / mean_s)

    def stop_loss_units_share(self, n: int) -> float:
        """``E[(S − q)⁺]/E[S]`` at ``n``: the share of the offered units fixed windows
        turn away past their allowance (no retries; the free count, unthinned)."""
        mean_s = n * self.mean_units / self.h
        if mean_s <= 0:
            return 0.0
        return min(1.0, _stop_loss(self.pmf(n), self.q_lat, mean_s) / mean_s)

    def loss_units_share(self, n: int) -> float:
        """The share of the offered units a loss log (:attr:`loses`) turns away at
        ``n`` by its own law: the Palm rule with an arriving call weighted by its charge
        (:meth:`_loss_share`), and for clumps admitted in part the units they displace
        (:meth:`_partial_admission`, which scales the calls by the same ratio); the
        free count, unthinned."""
        q = math.floor(self.q_lat + 1e-9)
        low = self.truncated(max(n - 1, 0))
        extra, units = self._arrival_laws()
        pu = self._loss_share(low, q, units)
        if self.single_parts and not self.trains_in_part:
            return pu
        p = self._loss_share(low, q, extra)
        if p <= 0.0:
            return pu
        free = self.pmf(max(n - 1, 0))
        # (Single launches: a turn's calls admitted in part, :meth:`_in_part`.)
        part = (self._in_part(free, q, p, pu, low) if self.single_parts
                else self._partial_admission(free, q, p, pu, low))
        return min(1.0, pu * part / p)

    def _rejected(self, g: NDArray[np.float64], mean_s: float) -> float:
        """Calls turned away per fixed window without retries (lattice units of mean
        calls): from ``E[(S − q)⁺]`` and ``P(S > q)`` (:meth:`refused`)."""
        q = self.q_lat
        over = max(0.0, 1.0 - float(g[: math.floor(q + 1e-9) + 1].sum()))
        return self.refused(_stop_loss(g, q, mean_s), over)

    def refused(self, excess: float, over: float, n: float = 0.0) -> float:
        """Calls turned away per window, as lattice units of mean fresh calls, when the
        window overflows with probability ``over`` by ``excess`` units (lattice) on
        average: the call that crosses ``q`` and the later ones that do not fit the
        room left (:meth:`Crossing.refused`). Near the crossing the larger calls are the
        ones turned away, but past it, once the room is gone, every call is: a fan-out
        landing in a full window loses all its calls, whatever their size. Without a
        crossing (sliding windows) the units are turned into calls by ``κ``."""
        if over <= 0.0:
            return 0.0
        c = self.crossing
        x_bar = excess / over
        if c is None:
            return self.size_bias * (excess + over * self.waste(x_bar))
        e_b = float(_dot(np.arange(self.call_pmf.size), self.call_pmf))  # lattice units
        if e_b <= 0:
            return 0.0
        past = max(0.0, x_bar * self.h - c.overshoot)           # units after the crossing
        if n > 0 and self.abort_gaps is not None and self.mean_units > 0:
            # The crossing instant's own later copies are made (a fan-out is sent whole:
            # on average half its size-biased units); the rest come over the window's
            # last rest/λ seconds, and of those a turn refused there makes only its first.
            own = min(past, 0.5 * self.abort_gaps.biased)
            rest = past - own
            span = min(self.window_s, rest * self.window_s / (n * self.mean_units))
            past = own + rest * self.offered_after(span)
        later = past / (e_b * self.h)
        return over * e_b * c.refused(later)

    def offered_after(self, seconds: float) -> float:
        """:meth:`AbortGaps.offered_after` (1 without :attr:`abort_gaps`)."""
        return 1.0 if self.abort_gaps is None else self.abort_gaps.offered_after(seconds)

    def waste(self, excess: float) -> float:
        """W̄ (lattice units): the room a window whose offered load overflows ``q`` by
        ``excess`` units on average leaves unused — the room before the first call
        turned away, less what the calls offered after it still fill."""
        c = self.crossing
        if c is None:
            return 0.0
        e_b = float(_dot(np.arange(self.call_pmf.size), self.call_pmf)) * self.h
        later = max(0.0, excess * self.h - c.overshoot) / e_b if e_b > 0 else 0.0
        return c.waste(later) / self.h

    def _fixed(self, n: int, exceed: bool = True) -> dict[str, float]:
        """The shares at ``n`` (fixed windows); without ``exceed`` the dict may leave out
        the exceedance where nothing else needs the window count's pmf at ``n``."""
        q = self.q_lat
        mean_s = n * self.mean_units / self.h
        if (not self.retry.retries and self.aborted is not None
                and self.prefix_pmfs is not None and mean_s > 0):
            # _first_refused's Palm view counts the others' launches and the turn's own,
            # not the session's earlier turns in the window: a session that overfills a
            # window alone (cycle shorter than the window) loses at least its own
            # overflow, at N = 1 too (it said 0 there).
            share = min(1.0, max(self._first_refused(n), self._alone_share()))
            out = {"attempt": share, "call": share, "failed": share, "retry_share": 0.0}
            if exceed:
                out["exceed"] = self.exceedance(n)
            return out
        g = self.pmf(n)
        exceed_p = max(0.0, 1.0 - float(g[: math.floor(q + 1e-9) + 1].sum()))
        x_fresh = _stop_loss(g, q, mean_s)
        if not self.retry.retries:
            share = self.refused(x_fresh, exceed_p, n) / mean_s if mean_s > 0 else 0.0
            if self.cascade is not None and mean_s > 0:
                share += self._cascaded(n)
            share = min(1.0, share)
            return {"attempt": share, "call": share, "failed": share, "exceed": exceed_p,
                    "retry_share": 0.0}
        stop = x_fresh + exceed_p * self.waste(x_fresh / exceed_p if exceed_p > 0 else 0.0)
        if mean_s <= 0 or stop >= 0.5 * mean_s:
            # Overloaded: the carried retries never drain (no stationary law). Fluid
            # view: every window admits q of its A attempts, A = fresh·A(f) with each
            # call tried until it succeeds or has made m + 1 attempts, f = 1 − q/A.
            share = min(1.0, max(stop / (mean_s + stop),
                                 _overload_share(mean_s, q, self.retry.max_retries)))
            return {"attempt": share, "call": min(1.0, stop / max(mean_s, 1e-300)),
                    "failed": share, "exceed": exceed_p, "retry_share": share}
        back_share = 1.0 if self.carry_back is None else self.carry_back(n)
        carry, e_y, gone = self._carry(n, g, back_share)
        thin = self._deferred_thinning(n) if x_fresh > 0 else 1.0
        k = np.arange(carry.size)
        # Calls refused in a window that overflows (carry > 0 after it): the crossing
        # one and the later ones that no longer fit (:meth:`refused`), retries refused
        # for the last time included (they leave the carry).
        full = max(0.0, 1.0 - float(carry[0]))
        # Never below the fresh overflow alone (the carry's lattice is coarser).
        # (Of them, the turns' first past the crossing: their later calls are deferred.)
        rej = thin * max(self.refused(e_y + gone, full, n), self.refused(x_fresh, exceed_p, n))
        same, all_same = self._same_window(carry, back_share, n)
        rej_att = rej * (1.0 + same)
        # This slot's attempts: its fresh calls and the retries that come back to it.
        back = mean_s + back_share * rej_att
        attempt = rej_att / back if back > 0 else 0.0
        if mean_s > q and not self.retry.abort_turn:
            # Never below the fluid share: a window admits at most q of its attempts. Past
            # the allowance the carry's chain stops at its lattice's end, short of its
            # stationary law, and the share fell as N rose (hunt-2089, retry-after
            # honoured: 68 % at 1.3× the allowance, 51 % at 2×, then 90 % where the
            # overloaded branch above takes over). Not when a failed call ends its turn:
            # the later stages it leaves unmade are fresh calls this floor would count
            # (web-research at 100 sessions: 63 % against 61 % simulated; 61 % without).
            attempt = max(attempt, _overload_share(mean_s, q, self.retry.max_retries))
        call = min(1.0, rej / mean_s) if mean_s > 0 else 0.0
        # A carried retry is rejected again only when the carry alone overfills a window.
        again = float(_dot(np.maximum(k - q, 0.0), carry)) / e_y if e_y > 0 else 0.0
        failed = call * (all_same + (1.0 - all_same) * again ** self.retry.max_retries)
        return {"attempt": min(1.0, attempt), "call": call, "failed": failed,
                "exceed": exceed_p, "retry_share": call}

    def _deferred_thinning(self, n: float) -> float:
        """Share of a fixed request window's overflow that is refused, with retries: the
        window is full from its crossing to its end, so a turn whose call it refuses
        makes its later calls in a later window (after its retry, at the next window's
        start when told the retry-after; after the retries that back off into this full
        window; or never, its turn aborted) — deferred with the carry, not refused. Of
        the calls launched past the crossing (the Palm prefix view of
        :meth:`_first_refused`), the share that is each turn's first there; 1 without
        the turn sample's instants. Two short calls 0.5 s apart in 60 s windows
        (``tests/data/fixed-window-chain-deferred.yaml``) at 52 sessions: 0.59, the
        share of attempts refused 0.92 % → 0.55 %, the engine's 0.46 % (``python
        benchmarks/session55_probes.py deferred``)."""
        if not (_DEFERRED_STAGES and self.retry.retries and self.aborted is not None
                and self.prefix_pmfs is not None):
            return 1.0
        lo = math.floor(n)
        if n > lo:  # (a population's equivalent sessions: between the whole N)
            f = n - lo
            return (1.0 - f) * self._deferred_thinning(lo) + f * self._deferred_thinning(lo + 1)
        first, after = self._past_crossing(float(n))
        return min(1.0, first / after) if after > 0 else 1.0

    def _alone_share(self) -> float:
        """Share of one session's calls its own launches leave no room for in a fixed
        window (0 unless a session alone overfills the allowance)."""
        g = self.pmf(1.0)
        mean_s = self.mean_units / self.h
        if mean_s <= 0:
            return 0.0
        exceed = max(0.0, 1.0 - float(g[: math.floor(self.q_lat + 1e-9) + 1].sum()))
        if exceed <= 0.0:
            return 0.0
        return min(1.0, self.refused(_stop_loss(g, self.q_lat, mean_s), exceed) / mean_s)

    def _prefix_log(self, L: int, u: NDArray[np.float64], r: float, step: int
                    ) -> NDArray[np.complex128]:
        """Per-session log generating function, at ``r·e^{2πik/L}``, of the units launched
        in the first fraction ``u`` of a window (rows: each ``u``; lattice ``step`` times
        coarser): the clumps that start in it, whole (``P`` and ``P'`` thinned by ``u``)."""
        key = ("prefix", L, step)
        fh = self._cascade_memo.get(key)
        if fh is None:
            f = _coarsen(self.clump_pmf, float(step))[:L]
            fh = self._cascade_memo[key] = np.fft.rfft(f * r ** np.arange(f.size), L)[None, :]
        uu = u[:, None]
        pb, pp = self.p_binomial * uu, (self.p_single - self.p_binomial) * uu
        out: NDArray[np.complex128] = pp * (fh - 1.0)
        if self.p_binomial > 0:
            out += complex_log(1.0 - pb + pb * fh)
        return out

    def _cascade_cells(self) -> tuple[NDArray[np.float64], float]:
        """(cascaded calls per launch instant brought into each cell of equal width in u
        by an instant refused there, mean calls per launch instant)."""
        hit = self._cascade_memo.get("cells")
        if hit is None:
            c = self.cascade
            assert c is not None
            big = c.calls_within(self.window_s * (1.0 - _CASCADE_EDGES))
            hit = self._cascade_memo["cells"] = ((big[:-1] - big[1:]) / self.window_s,
                                                 c.calls_per_instant)
        out: tuple[NDArray[np.float64], float] = hit
        return out

    def _first_refused(self, n: float) -> float:
        """Share of calls refused in fixed windows when a refusal aborts its turn.

        A fixed window is full from some point on and turns every later call away, so
        the stop-loss counts a turn's every call launched after that point; with
        ``abort_turn`` (no retries) the turn makes only its first instant after it. With
        ``C(t)`` the window's count before ``t``, an instant of ``b`` calls at the
        fraction ``u`` of the window, its turn's previous instant ``g`` s earlier, is the
        first refused when ``C(t) + b > q`` but ``C(t − g) + b_prev ≤ q``. Palm view:
        ``C`` is the other ``N − 1`` sessions' launches in the window's first ``u``
        (``O_u``, the session law of a window ``u·w`` long) plus its own turn's earlier
        launches in the window (``m``, ``b_prev`` included): ``P(O_u > q − m − b) −
        P(O_{u − g/w} > q − m)``, over the sampled instants and a uniform ``u``, per call.
        """
        lo = math.floor(n)
        if n > lo:  # a thinned N: between the neighbouring whole N (each computed once)
            f = n - lo
            return (1.0 - f) * self._first_refused(float(lo)) + f * self._first_refused(lo + 1.0)
        return self._past_crossing(n)[0]

    def _past_crossing(self, n: float) -> tuple[float, float]:
        """(:meth:`_first_refused`'s share at a whole ``n``, the share of every call
        launched past the window's crossing — its turn's earlier ones refused or not —
        in the same Palm view: the stop-loss :meth:`_deferred_thinning` divides by)."""
        key = ("first-refused", n)
        hit = self._cascade_memo.get(key)
        if hit is None:
            ab = self.aborted
            assert ab is not None and self.prefix_pmfs is not None
            q = math.floor(self.q_lat + 1e-9)
            tails = self._prefix_tails(max(n - 1.0, 0.0), q)      # (cells + 1, q + 2)
            # Tail P(O_u > x) at u on the cells' middles (row c + 1; row 0: u = 0) and
            # at x = q − load, a load above q (x < 0) refused for sure.
            def tail(row: NDArray[np.float64], load: NDArray[np.float64]
                     ) -> NDArray[np.float64]:
                x = q - load
                lo = np.floor(row).astype(np.int64)
                fr = row - lo
                xi = np.clip(x, -1, q).astype(np.int64) + 1        # column 0: x = −1
                a = tails[np.clip(lo, 0, tails.shape[0] - 1), xi]
                b = tails[np.clip(lo + 1, 0, tails.shape[0] - 1), xi]
                out: NDArray[np.float64] = a + fr * (b - a)
                return out
            # Σ_x P(O_u > x) over x = −1..k − 1 (column k), for a batch admitted in part:
            # an instant of b calls at a count C has min(b, C + b − q)⁺ of them refused,
            # Σ_{j=1..b} P(C + j > q) on average.
            cum = np.concatenate([np.zeros((tails.shape[0], 1)), np.cumsum(tails, axis=1)],
                                 axis=1)

            def tail_sum(row: NDArray[np.float64], lo_x: NDArray[np.float64],
                         hi_x: NDArray[np.float64]) -> NDArray[np.float64]:
                lo_r = np.floor(row).astype(np.int64)
                fr = row - lo_r
                neg = np.maximum(np.minimum(hi_x, -2.0) - lo_x + 1.0, 0.0)  # x < −1: 1
                a_i = (np.clip(np.maximum(lo_x, -1.0), -1, q + 1) + 1).astype(np.int64)
                b_i = (np.clip(hi_x, -2, q) + 2).astype(np.int64)
                r0 = np.clip(lo_r, 0, tails.shape[0] - 1)
                r1 = np.clip(lo_r + 1, 0, tails.shape[0] - 1)
                s0 = np.maximum(cum[r0, b_i] - cum[r0, a_i], 0.0)
                s1 = np.maximum(cum[r1, b_i] - cum[r1, a_i], 0.0)
                out: NDArray[np.float64] = neg + s0 + fr * (s1 - s0)
                return out
            cells = np.arange(_ABORT_CELLS, dtype=np.float64) + 1.0  # u on the middles
            rows_now = np.broadcast_to(cells, ab.own.shape)
            b = np.rint(ab.size)[:, None]
            now = tail_sum(rows_now, q - ab.own - b, q - ab.own - 1.0)
            # The previous instant's time, on the same rows (u − g/w; before the window:
            # nothing to subtract — it was in an earlier window, or there is none).
            shift = ab.gap[:, None] * _ABORT_CELLS
            before = rows_now - shift
            prev = np.where(before >= 0.5, tail(np.maximum(before, 0.0), ab.own), 0.0)
            first = np.clip(now - b * prev, 0.0, None).mean(axis=1)
            calls = float(ab.calls.sum())
            hit = (min(1.0, float(first.sum()) / calls), float(now.mean(axis=1).sum()) / calls)
            self._cascade_memo[key] = hit
        out: tuple[float, float] = hit
        return out

    def _prefix_tails(self, others: float, q: int) -> NDArray[np.float64]:
        """``P(O_u > x)`` for ``x = −1..q`` (columns) at ``u = 0`` and the cells'
        middles (rows), ``O_u`` the ``others`` sessions' launches in the first ``u``."""
        assert self.prefix_pmfs is not None
        L = 1 << max(6, math.ceil(math.log2(2 * (q + 2))))
        r = math.exp(-30.0 / L)
        damp = r ** np.arange(L)
        at = np.empty((len(self.prefix_pmfs), q + 2))
        for i, g in enumerate(self.prefix_pmfs):
            k2 = ("prefix-log", L, i)
            lg = self._cascade_memo.get(k2)
            if lg is None:
                gg = g[:L]
                gh = np.fft.rfft(gg * damp[: gg.size], L)
                lg = self._cascade_memo[k2] = complex_log(gh)
            with np.errstate(under="ignore", over="ignore"):
                # Whole N only (_first_refused interpolates between them): any branch.
                pm = np.fft.irfft(np.exp(round(others) * lg), L)[: q + 1] / damp[: q + 1]
            cdf = np.cumsum(np.clip(pm, 0.0, None))
            at[i, 0] = 1.0
            at[i, 1:] = np.clip(1.0 - cdf, 0.0, 1.0)
        out: NDArray[np.float64] = _PREFIX_INTERP @ at
        return out

    def _cascaded(self, n: float) -> float:
        """Share of calls turned away because a refusal started the next stage of their
        turn early (``on_exhausted: continue`` without retries; see :class:`Cascade`).

        A launch instant at the fraction ``u`` of a fixed window is turned away whole when
        the units the other ``N − 1`` sessions launched before it leave no room for a
        call: ``P(S_u + B > q)``, ``S_u`` the window count of their clumps started in
        ``[0, u)``. It then brings ``ḡ(w·(1 − u))`` calls of its turn's next stages into
        the window (``w·(1 − u)``: the time left), each turned away:
        ``∫ P(S_u + B > q)·ḡ(w(1 − u)) du`` per launch instant — when every stage's
        charge exceeds the room that turned the first away. Refused calls charge
        nothing, so a stage ``j`` on is reached and refused when the least of the
        ``j + 1`` charges does (``M_j``, as :meth:`_sliding_cascade` has it): the
        stages' calls (:attr:`Cascade.levels`) weight ``P(S_u + M_j > q)`` in place of
        ``P(S_u + B > q)``. (A window of requests: every charge one, the same.)
        hunt-79 (a 1 s ITPM window, three-call chains, ``continue``): 54 against a
        simulated 61 [59-62] (48 when every stage was refused whatever its charge), the
        base model without the cascade already ~6 % low (rejection latency 10 s: 66
        against 70 [70-72]).
        """
        hit = self._cascades.get(n)
        if hit is not None:
            return hit
        # The other sessions' launches (Palm: the instant's own session is the tagged one).
        others = max(n - 1.0, 0.0)
        step, q, L, r = self._cascade_lattice()
        key = ("call-least", L, step)
        ch = self._cascade_memo.get(key)
        if ch is None:
            ch = self._cascade_memo[key] = self._least_charges(L, step, r)
        # P(S_u + B > q) rises steeply towards the window's end: solved at a few u (dense
        # near 1), interpolated in log between them at the middles of equal cells in u,
        # over each of which ḡ is integrated exactly (it jumps at jδ, finer than a cell).
        nodes = 1.0 - _CASCADE_LEFT
        with np.errstate(under="ignore", over="ignore"):
            tr = np.exp(others * self._prefix_log(L, nodes, r, step))[None, :, :] * ch.fts
            g = np.fft.irfft(tr, L, axis=2)[:, :, : q + 1] / r ** np.arange(q + 1)
        at = np.clip(1.0 - g.sum(axis=2), 1e-300, 1.0)
        weights = ch.weights
        full = sum(wj * np.exp(np.interp(_CASCADE_MIDDLES, nodes[::-1], np.log(aj[::-1])))
                   for wj, aj in zip(weights, at, strict=True))
        cell, per_instant = self._cascade_cells()
        out = float(_dot(full, cell)) / per_instant
        if len(self._cascades) >= 256:
            self._cascades.clear()
        self._cascades[n] = out
        return out

    def _least_charges(self, L: int, step: int, r: float) -> _LeastCharges:
        """The laws of ``M_j``, the least of ``j + 1`` call charges (j = 1, 2, …: the
        cascaded stages' levels, the last gathering the longer ones), on the cascades'
        lattice (damped transforms of length ``L``), weighted by the stages' calls."""
        b = _coarsen(self.call_pmf, float(step))[:L]
        b = b / b.sum() if b.sum() > 0 else b
        levels = self._cascade_levels()[0] if self.cascade is not None else np.zeros(0)
        # One charge for every call (a window of requests, or calls all of one size):
        # the least of j + 1 charges is that charge. Asked of the call law itself, as
        # coarsening splits one charge between two lattice points when q > 256 steps.
        if (np.count_nonzero(self.call_pmf) <= 1 or np.count_nonzero(b) <= 1
                or levels.size == 0 or levels.sum() <= 0):
            return _LeastCharges(np.ones(1), np.fft.rfft(b * r ** np.arange(b.size),
                                                         L)[None, None, :])
        lv = levels[:_CASCADE_LEVELS].copy()
        lv[-1] += float(levels[_CASCADE_LEVELS:].sum())
        surv = np.concatenate([np.cumsum(b[::-1])[::-1], [0.0]])     # P(B ≥ k)
        damp = r ** np.arange(b.size)
        fts = []
        for j in range(1, lv.size + 1):
            sj = surv ** (j + 1)
            fts.append(np.fft.rfft((sj[:-1] - sj[1:]) * damp, L))
        return _LeastCharges(lv / lv.sum(), np.array(fts)[:, None, :])

    @property
    def warm_started(self) -> bool:
        """True when a share at n depends on the N asked before it: fixed windows with
        retries, whose :meth:`_carry` starts from the carry of the largest smaller N
        solved (every other share is a function of n alone, its memos by value)."""
        return not self.sliding and self.retry.retries

    def _carry(self, n: int, g: NDArray[np.float64], back_share: float = 1.0
               ) -> tuple[NDArray[np.float64], float, float]:
        """:func:`_carry_law` at ``n`` sessions (lattice units of ``g``), on a lattice of
        at most ~256 points across ``q`` (the carry takes tens of windows to settle; its
        law needs no finer step than the window count's spread), started from the
        stationary carry of the largest smaller N already solved (the searches ask many N
        near one another); ``back_share`` of it comes back here (:attr:`carry_back`)."""
        if _PAIR_CARRY and self.pair_law is not None and back_share >= 1.0:
            return self._pair_carry(n, g)
        c = max(1, math.floor(self.q_lat / _CARRY_POINTS))
        L = g.size
        gc = _coarsen(g, float(c))[: max(1, L // c)] if c > 1 else g
        below = [k for k in self._carries if k < n]
        start = self._carries[max(below)] if below else None
        law, e_y, gone, settled = _carry_law(gc, self.q_lat / c, self.retry.max_retries,
                                             start=start,
                                             back_share=back_share)
        if not settled and start is not None:
            # A smaller N's carry can stop the chain at once: its law reaches the end of
            # this lattice, where the convolution would wrap (hunt-1060 at 234 sessions,
            # 1.4× the allowance: a mean carry of 232 from the carry of 160 sessions
            # against 483 from empty, and an attempt share of 39 % between 60 % at 203
            # and 63 % at 273). From empty, as a first N is.
            law, e_y, gone, settled = _carry_law(gc, self.q_lat / c, self.retry.max_retries,
                                                 back_share=back_share)
        if settled:
            if len(self._carries) >= 64:
                self._carries.clear()
            self._carries[n] = np.trim_zeros(law, "b")
        if c == 1:
            return law, e_y, gone
        carry = np.zeros(L)
        idx = np.arange(law.size) * c
        carry[idx[idx < L]] = law[idx < L]
        return carry, e_y * c, gone * c

    def _pair_carry(self, n: float, g: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], float, float]:
        """:meth:`_carry` where consecutive windows' counts are correlated
        (:attr:`pair_law`, an allowance of at most ``_PAIR_POINTS``):
        :func:`_pair_carry_law` on the lattice of the window count ``g`` (the law at
        ``n`` the caller holds), started from the largest smaller N's stationary law.
        hunt-4091's second deployment alone (430 RPM in 1 s windows, the SDK's retries)
        at 160 sessions: 1.26 % of calls refused, the engine 1.34 %, the independent
        windows 0.83 % (``python benchmarks/session63_probes.py shares``)."""
        assert self.pair_law is not None
        q = self.q_lat
        # The counts a window reaches (the window law's tail past them under 1e-13); the
        # carry on the window law's whole lattice, as _carry_law's (a few allowances
        # stopped the chain short of its law with three retries and more, below any
        # overload: a review, session 63).
        size = g.size
        tail = np.cumsum(g[::-1])[::-1]
        top = int(np.flatnonzero(tail > 1e-13)[-1]) if (tail > 1e-13).any() else 0
        ms = top + 2
        ly = max(2, size)
        joint = _pair_joint(self.pair_law, n, ms, self._pair_logs)
        below = [k for k in self._pair_carries if k < n]
        start = self._pair_carries[max(below)] if below else None
        law2, e_y, gone, settled = _pair_carry_law(joint, q, self.retry.max_retries, ly,
                                                   start=start)
        if not settled and start is not None:
            law2, e_y, gone, settled = _pair_carry_law(joint, q, self.retry.max_retries, ly)
        if settled:
            if len(self._pair_carries) >= 64:
                self._pair_carries.clear()
            self._pair_carries[n] = law2
        carry = np.zeros(size)
        carry[:ly] = law2.sum(axis=1)
        return carry, e_y, gone

    def _same_window(self, carry: NDArray[np.float64], back: float = 1.0,
                     n: float | None = None) -> tuple[float, float]:
        """(retries per refused call that come back into the window that refused it, and
        are refused again; the chance all of them do) for backoff retries (no
        retry-after), given the law of the units a window turns away (``carry``,
        lattice). A call of charge ``b`` is refused from when the window's count passes
        ``q − b`` (and the count only grows, so its retry in the same window is refused
        again): retry k is back before the window ends when its delay ``c_k`` is less
        than the time left ``R``. With ``n`` (sessions) ``R`` comes from where the refused
        calls sit in the window (:meth:`_refusal_cells`); without, from the spread rule
        below. ``back``: the chance a retry is routed back to this slot
        (:attr:`carry_back`); retry k comes back here only if retries 1…k all did."""
        c = self.retry.backoff_s
        full = 1.0 - float(carry[0]) if carry.size else 0.0
        if not c or full <= 0:
            return 0.0, 0.0
        if n is not None and _PALM_SAME_WINDOW:
            cells = self._refusal_cells(n, carry)
            if cells is not None:
                probs = [back ** (j + 1) * self._before_end(cells, ck / self.window_s)
                         for j, ck in enumerate(c)]
                return math.fsum(probs), probs[-1]
        # The spread rule: with the window's ``S = q + X`` offered units spread evenly
        # over it, a call of charge ``b`` falls in its last ``(X + b)/S`` (``X/S`` for
        # single requests), ``R`` uniform on ``(0, w·(X + b)/S)``, averaged over the
        # refused calls (``X`` from the carry law given an overflow, weighed by the calls
        # each window refuses, ``∝ X + W̄``; ``b`` from the refused charges' law,
        # :func:`_size_bias`).
        x = np.arange(1, carry.size, dtype=np.float64)
        w = carry[1:] / full
        keep = w > 1e-12
        x, w = x[keep], w[keep]
        if x.size == 0:
            return 0.0, 0.0
        # Per refused call, not per window: a window refuses its overflow and the room
        # it leaves unused (W̄), so the windows weigh by X + W̄.
        w = w * (x + self.waste(float(_dot(w, x))))
        w /= w.sum()
        # Both laws binned to a few dozen points (the time left varies smoothly with them).
        x, w = _binned(x, w, 128)
        b, v = self._refused_charges()
        span = self.window_s * np.minimum(
            1.0, (x[:, None] + b[None, :]) / (self.q_lat + x[:, None]))
        wv = w[:, None] * v[None, :]
        probs = [back ** (j + 1) * _dot(wv, np.maximum(0.0, 1.0 - ck / span))
                 for j, ck in enumerate(c)]
        return math.fsum(probs), probs[-1]

    @staticmethod
    def _before_end(cells: NDArray[np.float64], frac: float) -> float:
        """Share of the refusals (``cells``: their law over equal cells in ``u``) at
        ``u < 1 − frac``: those whose retry ``frac`` of a window later is still in it."""
        edge = 1.0 - frac
        if edge <= 0.0:
            return 0.0
        k = cells.size
        cover = np.clip(edge * k - np.arange(k, dtype=np.float64), 0.0, 1.0)
        return float(_dot(cells, cover))

    def _cascade_lattice(self) -> tuple[int, int, int, float]:
        """(step, q, L, r) of the cascades' coarse lattice: at most ~256 points across q
        (an added share needs no finer lattice), the allowance ``q`` on it, and a short
        transform of length ``L`` of the law damped by ``r`` (generating function at
        ``r·z``): only P(· ≤ q) is read, and the mass beyond L aliases onto 0..q scaled
        by r^L ≈ e^-30."""
        step = max(1, math.ceil(self.q_lat / _CASCADE_POINTS))
        q = math.floor(self.q_lat / step + 1e-9)
        L = 1 << max(6, math.ceil(math.log2(2 * (q + 1))))
        return step, q, L, math.exp(-30.0 / L)

    def _refusal_cells(self, n: float, carry: NDArray[np.float64]
                       ) -> NDArray[np.float64] | None:
        """Where in a fixed window its refused calls sit: their law over
        ``_CASCADE_NODES`` equal cells in ``u`` (None: no refusal).

        Palm view, as :meth:`_first_refused`: a call launched at the fraction ``u`` of
        the window is refused when the retries carried in at its start (``Y``, first in
        line), the other ``N − 1`` sessions' launches in ``[0, u)`` (``O_u``) and its
        own turn's units ahead of it with its charge (``E + B``: batch-mates ahead
        included) exceed ``q``; launches are uniform in ``u``, so the refusals' density
        is ``P(Y + O_u + E + B > q)``. Many small calls overflow late in the window (the
        spread rule's last ``(X + b)/S``), but a fan-out as large as the allowance
        overflows it wherever it lands: hunt-188's 37-call fan-outs against 37 calls per
        1 s window have their refused calls anywhere in it, and ~30% of the first
        retries 0.4 s later were refused again in the engine, ~5% by the spread rule."""
        # Keyed by n alone: the caller's carry is a function of n (the fixed point at n).
        # Carry above the cut (2q) is refused whatever u: a cell law without it.
        key = ("refusal-cells", n)
        hit = self._cascade_memo.get(key)
        if hit is not None:
            out_hit: NDArray[np.float64] | None = hit[0]
            return out_hit
        dens = self._refused_at(n, carry, _CASCADE_MIDDLES)
        total = float(dens.sum())
        out = dens / total if total > 1e-200 else None
        if len(self._cascade_memo) >= 512:
            self._cascade_memo.clear()
        self._cascade_memo[key] = (out,)
        return out

    def _refused_at(self, n: float, carry: NDArray[np.float64], u: NDArray[np.float64]
                    ) -> NDArray[np.float64]:
        """``P(Y + O_u + E + B > q)`` at the fractions ``u`` of a fixed window: the chance
        a call launched there is refused (:meth:`_refusal_cells`' Palm view; ``carry``
        the law of ``Y``), solved at the nodes ``1 − _CASCADE_LEFT`` and interpolated in
        log between them (it rises steeply towards the window's end)."""
        others = max(n - 1.0, 0.0)
        step, q, L, r = self._cascade_lattice()
        damp = r ** np.arange(L)
        extra = _coarsen(self._arrival_laws()[0], float(step))[:L]
        y = _coarsen(carry, float(step))[:L] if step > 1 else carry[:L]
        add = (np.fft.rfft(extra * damp[: extra.size], L)
               * np.fft.rfft(y * damp[: y.size], L))[None, :]
        nodes = 1.0 - _CASCADE_LEFT
        with np.errstate(under="ignore", over="ignore"):
            tr = np.exp(others * self._prefix_log(L, nodes, r, step)) * add
            g = np.fft.irfft(tr, L, axis=1)[:, : q + 1] / damp[: q + 1]
        at = np.clip(1.0 - g.sum(axis=1), 1e-300, 1.0)
        out: NDArray[np.float64] = np.exp(np.interp(u, nodes[::-1], np.log(at[::-1])))
        return out

    def refused_later(self, n: float, delays: list[Callable[
            [NDArray[np.float64], float], tuple[NDArray[np.float64], NDArray[np.float64]]]]
                      ) -> list[float]:
        """For each retry j of a call this fixed window turns away at ``n`` sessions,
        tried ``tau[:, i]`` seconds after the refusal with chance ``weights[i]``
        (``tau, weights = delays[j](u, window_s)``; ``u`` the refusal's place in the
        window, a fraction; later retries later): the chance retries 1…j are all turned
        away again.

        The window's count only grows until it ends, so the same call tried again
        before then is refused again — as every retry before it was, which came sooner;
        after it, it is a call launched at its place in a later window, refused there
        only if every retry before it was. Place by place: a retry just past the end
        lands early in the next window, where it is seldom refused. Where the refusals
        sit (``u``, the Palm view of :meth:`_refusal_cells`) decides which: they come
        late in the window, most of them, when its count has grown. hunt-3036 (60 s
        windows spilling to 15 s ones, backoff retries): a retry of a call both turned
        away, 0.54 s later on average, is turned away at the first window again 92.2 %
        of the time in the engine, the model 0.961 (``python
        benchmarks/session53_probes.py backoff``); the window's share of calls, which
        the fleet model read before, is a time average."""
        if self.sliding or n <= 0:
            return [0.0] * len(delays)
        key = ("refused-later", n)
        at = self._cascade_memo.get(key)
        if at is None:
            at = self._refused_at(n, np.ones(1), _LATER_MIDDLES)
            if len(self._cascade_memo) >= 512:
                self._cascade_memo.clear()
            self._cascade_memo[key] = at
        total = float(at.sum())
        if total <= 1e-200:
            return [0.0] * len(delays)
        w = self.window_s
        left = w * (1.0 - _LATER_MIDDLES)[:, None]
        chain = np.ones(_LATER_MIDDLES.size)     # each place's chance all so far refused
        out = []
        for d in delays:
            tau, weights = d(_LATER_MIDDLES, w)                         # (cells, k)
            share = weights / weights.sum()
            past = tau - left
            within = (past < 0.0).astype(np.float64) @ share
            # Past the window's end: a call launched at its place in a later window.
            nxt = np.interp(np.mod(np.maximum(past, 0.0) / w, 1.0), _LATER_MIDDLES, at)
            after = np.where(past < 0.0, 0.0, nxt) @ share
            chain = within + np.maximum(chain - within, 0.0) * np.divide(
                after, 1.0 - within, out=np.zeros_like(after), where=within < 1.0)
            out.append(min(1.0, float(_dot(at, chain)) / total))
        return out

    def _refused_charges(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The law of a refused call's charge less a unit (a count above ``q − b``
        refuses ``b``), binned to 24 points: ``P(B = b | refused) ∝ P(B = b)·F_e(b)``
        (:func:`_size_bias`); the same at every N (made once per charge law)."""
        hit = self._cascade_memo.get("refused")
        if hit is None or hit[0] is not self.call_pmf:
            f = self.call_pmf
            kb = np.arange(f.size, dtype=np.float64)
            surv = 1.0 - np.cumsum(f)
            v = f * np.concatenate([[0.0], np.cumsum(surv)[:-1]])
            if v.sum() <= 0:
                v = f.copy()
            v /= v.sum()
            hit = self._cascade_memo["refused"] = (f, *_binned(np.maximum(kb - 1.0, 0.0),
                                                               v, 24))
        return hit[1], hit[2]

    def _sliding_h(self, n: int, retry_calls: float, truncate: bool = False,
                   trains: bool = False) -> float:
        """The share of calls a sliding log turns away at ``n`` (``retry_calls``: retried
        calls a window on top of the fresh ones; ``truncate``: read the loss log's law,
        :meth:`truncated`, whatever the log; ``trains``: a loss log without retries, whose
        turns' calls in one window are admitted in part, :attr:`trains_in_part`)."""
        # The other N − 1 sessions' count; the arriving call's own turn is in ``own``.
        g = self.pmf(max(n - 1, 0), retry_calls)
        q = math.floor(self.q_lat + 1e-9)
        lossy = self.loses or truncate
        if lossy:
            # The loss rules read the count at and below q only: its truncated law, read
            # stably far above the allowance (:meth:`truncated`).
            low = self.truncated(max(n - 1, 0), retry_calls)
        if lossy and self.single_parts:
            # (A mix of populations whose launches are all single calls, as one
            # population's.)
            p = self._loss_share(low, q)
            if not (trains and self.trains_in_part):
                return p
            return self._in_part(g, q, p, self._loss_share(low, q, self._arrival_laws()[1]),
                                 low)
        extra, units = self._arrival_laws()
        if lossy:
            # A rejected charge that is never retried nor logged leaves no trace: the log
            # is a loss system (each admitted unit held w seconds, at most q held), whose
            # occupancy is the free count truncated at q (Erlang's loss formula, and its
            # insensitivity to the holding time); the free count over-counts the charges
            # already turned away. Exact for single calls and for clumps admitted or
            # refused whole (the stochastic knapsack): the truncation bounds what the log
            # holds when a launch comes, the others' units and the session's earlier
            # ones together (:meth:`_loss_share`); the arriving call's batch-mates come
            # with it, on top. Clumps admitted in part: below.
            p = self._loss_share(low, q, extra)
            p_units = self._loss_share(low, q, units)
            return self._partial_admission(g, q, p, p_units, low)
        # An arriving call of charge B is rejected when S + own + B > q.
        return min(1.0, _tail_share(g, q, extra))

    def _loss_share(self, g: NDArray[np.float64], q: int,
                    arriving: NDArray[np.float64] | None = None) -> float:
        """The share of calls a loss log turns away (no retries, refusals not logged),
        from the others' free count ``g`` (N − 1 sessions); ``arriving`` (default: the
        arrival law, :meth:`_arrival_laws`) is what an arriving call adds to the log, its
        session's earlier units ``E`` included.

        The log holds at most ``q`` units — the others' and the arriving call's
        session's earlier ones ``E`` together — so the product form (single calls,
        each admitted or refused whole: Erlang's insensitivity, the stochastic
        knapsack) truncates their sum, not the others' count alone:
        ``P(O = x | E = e) ∝ P(O = x)`` for ``x ≤ q − e``, and the call (charge ``B``)
        is turned away when ``O + E + B > q``:
        ``p = 1 − P(O + E + B ≤ q)/P(O + E ≤ q)`` (``O`` free, ``E`` the session's
        own law). Truncating the others alone and adding ``E`` on top
        turns a call away whenever ``O`` is within ``E`` of ``q``: a tool loop's call
        with two earlier calls of its session in a 60 s log sees three points of the
        count's tail instead of one (hunt-rpm-224 without counted refusals, 18
        sessions: 1.8 % vs 0.66 % here, simulated 0.58 %). A fan-out's call has its
        batch-mates ``A`` ahead of it as well: they come at its own instant, so are not
        in the truncated occupancy (``E`` is :attr:`prior_pmf`) but on top of it,
        ``p = 1 − P(O + E + A + B ≤ q)/P(O + E ≤ q)``. Adding ``E`` on top of the
        others' truncation as well turned away more than a saturated log can hold back
        (hunt seed 196, a 30 s log of 27-call fan-outs at 1.65 times its allowance:
        78 % of the calls, where a log that admits its allowance refuses 39 % and the
        simulator 38 %; this rule: 38 %).
        """
        extra = self._arrival_laws()[0] if arriving is None else arriving
        prior = self.own_pmf if self.prior_pmf is None else self.prior_pmf
        f_cdf = np.cumsum(g)
        idx = q - np.arange(max(prior.size, extra.size))
        at = np.where(idx < 0, 0.0, f_cdf[np.clip(idx, 0, f_cdf.size - 1)])
        room = _dot(prior, at[: prior.size])                   # P(O + E ≤ q)
        if room <= 0:
            return 1.0
        fits = _dot(extra, at[: extra.size])                   # P(O + E + A + B ≤ q)
        return float(min(1.0, max(0.0, 1.0 - fits / room)))

    def site_split(self, n: int) -> dict[int, float] | None:
        """How the log's refusals at ``n`` sessions fall over the call sites (by the site's
        index in the turn timing; shares summing to 1): each site's calls refused where
        the others' count and the call's own units ahead and charge pass the allowance
        (the count the loss rules read, :meth:`truncated`, where refusals are not
        logged). None without the per-site laws (a blend, calls the sample missed)."""
        if self.arrival_sites is None:
            return None
        q = math.floor(self.q_lat + 1e-9)
        got: dict[int, float] = {}
        if self.loses:
            # A loss log: each call's share by the loss rule's room condition, as the
            # log's own share is read (:meth:`_loss_share`).
            low = self.truncated(max(n - 1, 0), 0.0)
            for site, law in self.arrival_sites:
                mass = float(law.sum())
                if mass > 0:
                    got[site] = got.get(site, 0.0) + mass * self._loss_share(
                        low, q, law / mass)
        else:
            g = self.pmf(max(n - 1, 0))
            for site, law in self.arrival_sites:
                got[site] = got.get(site, 0.0) + _tail_share(g, q, law)
        total = math.fsum(got.values())
        return {k: v / total for k, v in got.items()} if total > 0 else None

    def _arrival_laws(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(own-turn units ahead plus the arriving call's charge; the same weighted by
        the charge, per mean charge): what an arriving call adds to the count it finds,
        the same at every N (made once per pair of laws)."""
        hit = self._cascade_memo.get("arrival")
        if (hit is None or hit[0] is not self.own_pmf or hit[1] is not self.call_pmf
                or hit[4] is not self.arrival_pmf):
            if self.arrival_pmf is not None:
                extra = self.arrival_pmf
                units = self.arrival_units if self.arrival_units is not None else extra
            else:
                b = np.arange(self.call_pmf.size, dtype=np.float64)
                e_b = _dot(b, self.call_pmf)
                extra = np.convolve(self.own_pmf, self.call_pmf)
                units = (np.convolve(self.own_pmf, self.call_pmf * b) / e_b if e_b > 0
                         else extra)
            hit = self._cascade_memo["arrival"] = (self.own_pmf, self.call_pmf, extra, units,
                                                   self.arrival_pmf)
        return hit[2], hit[3]

    def _in_part(self, free: NDArray[np.float64], q: int, p: float, pu: float,
                 low: NDArray[np.float64]) -> float:
        """A loss log's share of single launches (the knapsack's ``p``; ``pu`` its share
        of units) with a turn's calls in one window admitted in part, one after the
        other, as a fan-out's are (:meth:`_partial_admission`): its first calls take the
        room left and its later ones are turned away — as far as the log has not turned
        over since those first calls were admitted, ``1 − age/w`` (:attr:`train_gap`:
        the mean age of a call's own units ahead, by their units; the free count's
        correlation over that lag). hunt-2002 (a short call, then a long one a second
        later, into a 15 s log: age/w 0.15) 398 → 381 against 381 [379–384]; the long
        call 8.7 s later (0.59) 361 → 360 against 360 [356–361]; hunt-57's loop (~1.4 s
        apart in a 5 s log: 0.48), paced 60–90 s, 73 → 70 against 72 [71–73], 68 in
        full (``python benchmarks/session49_probes.py trains``)."""
        part = self._partial_admission(free, q, p, pu, low)
        return p + max(0.0, 1.0 - self.train_gap) * (part - p)

    def _partial_admission(self, free: NDArray[np.float64], q: int, p: float,
                           p_units: float | None = None,
                           low: NDArray[np.float64] | None = None) -> float:
        """The loss share of a log that admits a clump in part (what fits), from the
        knapsack's ``p`` (``p``: the share the Palm rule gives on the truncated count).

        The truncated count is the occupancy of a log that admits or refuses a clump
        whole (product form, insensitive): its share of units refused is
        ``p_cb(q) = 1 − E[S | S ≤ q]/E[S]`` (Little: a unit is held w seconds). A log that
        admits the part that fits takes, per offered unit, ``p_cb − p`` more units (the
        room ``q − S`` of the clumps that overflow) — taken when the log is at its last
        clump's room, and each of them turns away the units it displaces later. The
        expected units displaced by admitting at the last free slot of a loss system is
        Key's relative cost ``d = B(c)/B(c − 1)`` (Erlang's blocking with one slot fewer;
        here a slot is the clump a unit comes in, ``x̄ = E[X²]/E[X]`` — the units
        displaced are later units, each in its own clump, and the large clumps are the
        ones that do not fit): ``d = p_cb(q)/p_cb(q − x̄)``, and
        ``p' = p + d·(p_cb − p)``. With unequal charges ``p_cb`` is set against the Palm
        rule's share of *units* ``p_u`` (the large calls are the ones that do not fit) and
        calls follow units: ``p' = p·(p_u + d·(p_cb − p_u))/p_u`` (hunt-099's ITPM log of
        one large first call and small fan-out calls: 210 → 408 alone, vs simulated 444
        [432–459]). Single calls: ``p_cb = p`` (Erlang), no change. The
        22-call fan-outs of the hunt (sliding 5 s, 500,000 tokens, 824 sessions): ``p``
        0.91%, ``p_cb`` 2.5%, ``d`` 0.66, ``p'`` 1.95% (a replay of the log: 2.04%).
        The mean clump ``E[X]`` for a slot counted a turn's small first call as one:
        hunt-32 (a 1 s TPM log; a 4k-token call, then 5 or 28–39 calls of ~10k tokens at
        once) without retries at 78 sessions, ``p`` 0.85 %, ``p_cb`` 2.51 %, ``d`` 0.59
        by ``E[X]`` (178 lattice units), ``p'`` 1.82 %; by ``E[X²]/E[X]`` (442) ``d`` 0.35,
        ``p'`` 1.41 % — replays of the log with Poisson turns 1.31–1.39 % (five seeds,
        20 h each), the engine 1.29 % (closed loop; ``python
        benchmarks/session45_probes.py clumps``). The hunt's N* of 32 73 → 78, 1017
        168 → 179, 1045 102 → 105 and 3020 155 → 159 against 83 [81–85], 182 [179–183],
        108 [106–111] and 163 [161–163].
        """
        f = self.clump_pmf
        kf = np.arange(f.size, dtype=np.float64)
        mean_f = _dot(kf, f)
        x_bar = round(_dot(kf * kf, f) / mean_f) if mean_f > 0 else 0
        if x_bar <= 1 or q - x_bar < 0 or free.size == 0:
            return p
        k = np.arange(free.size, dtype=np.float64)
        e_s = _dot(k, free)
        if e_s <= 0:
            return p
        # ``low``: the count's law at and below q (:meth:`truncated`, stable far above the
        # allowance), in proportion to ``free`` there.
        head = free if low is None else low

        def p_cb(top: int) -> float:
            mass = float(head[: top + 1].sum())
            return 1.0 - _dot(k[: top + 1], head[: top + 1]) / mass / e_s if mass > 0 else 1.0

        now, fewer = p_cb(q), p_cb(q - x_bar)
        pu = p if p_units is None else p_units
        if now <= pu or fewer <= 0 or pu <= 0:
            return p
        d = min(1.0, now / fewer)
        # Units refused p_u + d·(p_cb − p_u); calls in proportion (the displaced units
        # are refused with the same size bias as the Palm refusals).
        return min(1.0, p * (pu + d * (now - pu)) / pu)

    @property
    def single_parts(self) -> bool:
        """Every launch a single call (:attr:`single_launches`; a mix of populations:
        every population's)."""
        return self.single_launches

    @property
    def loses(self) -> bool:
        """A sliding window whose rejected calls leave the log for good (no retries, not
        counted): its occupancy is a loss system's."""
        return self.sliding and not self.retry.retries and not self.retry.counts_rejected

    @property
    def herds(self) -> bool:
        """Honoured retry-afters of an uncounted sliding window: retries land as a herd."""
        r = self.retry
        return (self.sliding and r.retries and r.honour_retry_after
                and not r.counts_rejected and self.events_per_window > 0)

    def _retry_rejection(self, p: float, n: int = 0) -> float:
        """Chance a retry is rejected again when a fresh attempt is rejected with ``p``.

        A honoured retry-after from a sliding counter is the time until just enough of
        the oldest charges expire; when rejections are counted the rejected attempt's own
        unit was logged after that time was computed, so the retry meets a full window
        again (and is logged again): retries of a counted sliding window are rejected
        with probability ≈ 1. So are backoff retries (the retry-after ignored) of a
        counted log that come back within ``w``: the refusal that sent them is still
        logged and the logged refusals keep the log full (:attr:`_back_in_window`).
        Uncounted, the retries come back as a herd at that expiry
        (:meth:`herd_rejection`). Otherwise (backoff) retries are one more Poisson
        stream (the orbit approximation, theory.md §3) and see ``p`` like any attempt.
        """
        r = self.retry
        if r.counts_rejected and (r.honour_retry_after or self._back_in_window):
            return 1.0
        if self.herds:
            return self.herd_chain(n)["pr"]
        return p

    @property
    def _back_in_window(self) -> bool:
        """Backoff retries (the retry-after ignored) of a counted sliding log that come
        back while the refusal that sent them is still logged (sooner than ``w``): a
        refusal means the log is over its allowance, and the logged refusals and
        retries keep it there, so they meet a full log again like honoured ones."""
        c = self.retry.backoff_s
        return self.sliding and bool(c) and c[0] < self.window_s

    def herd_rejection(self, n: int) -> float:
        """Share of herded retries rejected again (sliding window, honoured retry-after).

        Every call turned away while the trailing window is full is told the same
        retry-after — the expiry of the oldest charge in the log — so they come back
        together, as one herd ``H``, and that expiry frees the room of one launch
        instant's charges, ``F`` (the oldest group in the log: the law of a launch
        instant's units). The herd is the part of the overflowing launch that did not
        fit, ``O`` (for a batch ``B`` meeting a room uniform below it, ``O`` has the
        equilibrium law ``P(O = k) = P(B ≥ k)/E[B]``), plus every launch of the other
        sessions in the time ``δ`` until that expiry (all rejected: the log is full). A
        full log holds ``K = q/E[B]`` groups spread over ``w``, so ``δ`` ~ Exp with mean
        ``w/K``; with launches at rate ``λ`` the number in ``δ`` is geometric with mean
        ``λ·w/K``. The units of the herd that do not fit are rejected again:
        ``p_r = E[(H − F)⁺]/E[H]`` at the first expiry (later ones meet the survivors
        plus the launches since: :meth:`herd_chain`).
        """
        hit = self._herd.get(n)
        if hit is not None:
            return hit
        e = self.event_pmf
        k = np.arange(e.size, dtype=np.float64)
        mu = float(_dot(k, e))
        q = self.q_lat
        if mu <= 0 or q <= 0:
            return 0.0
        lam = n * self.events_per_window / self.window_s        # launch instants per s
        mean_k = lam * self.window_s * mu / q                   # launches during δ
        rho = mean_k / (1.0 + mean_k)
        surv = np.concatenate([[0.0], 1.0 - np.cumsum(e)[:-1]])  # P(B ≥ k), k ≥ 1
        o_pmf = surv / mu
        L = 1 << max(6, math.ceil(math.log2(4 * e.size + (mean_k + 12.0 * math.sqrt(
            mean_k + mean_k**2 + 1.0)) * e.size)))
        eh = np.fft.rfft(e, L)
        hh = np.fft.rfft(o_pmf, L) * (1.0 - rho) / (1.0 - rho * eh)
        h = np.clip(np.fft.irfft(hh, L), 0.0, None)
        kk = np.arange(L, dtype=np.float64)
        e_h = float(_dot(kk, h))
        # E[(H − F)⁺] = Σ_f P(F = f)·E[(H − f)⁺], from the survival sums of H.
        tail = np.cumsum(h[::-1])[::-1]                  # P(H ≥ j)
        over = np.cumsum(tail[::-1])[::-1]               # Σ_{i ≥ j} P(H ≥ i) = E[(H − j + 1)⁺]
        f_idx = np.arange(e.size)
        excess = _dot(e, over[np.minimum(f_idx + 1, L - 1)])
        pr = min(1.0, max(0.0, excess / e_h)) if e_h > 0 else 0.0
        self._herd[n] = pr
        return pr

    def _retries_per_call(self, p: float, n: int = 0) -> tuple[float, float]:
        """(retried attempts per call, rejection chance of a retry) at fresh rejection ``p``."""
        m = self.retry.max_retries
        pr = self._retry_rejection(p, n)
        per = p * (float(m) if pr >= 1.0 else (1.0 - pr**m) / (1.0 - pr))
        return per, pr

    def _retry_chain(self, p: float, n: int = 0) -> tuple[float, float, float]:
        """(retried attempts per call, retries refused per call, the chance a refused
        call's ``m`` retries are all refused) at fresh rejection ``p``: from one chance
        per retry (:meth:`_retries_per_call`), or retry by retry where backoff retries
        come back to an uncounted log that still holds what refused them
        (:meth:`_held_backoff`): retries 1…k are all refused with
        ``P_k = s_k + (1 − s_k)·p^k``, past the held room as fresh attempts are."""
        held = self._held_backoff(n)
        if held is None:
            per, pr = self._retries_per_call(p, n)
            return per, per * pr, pr ** self.retry.max_retries
        chain = [1.0] + [s + (1.0 - s) * p ** k for k, s in enumerate(held, 1)]
        return p * math.fsum(chain[:-1]), p * math.fsum(chain[1:]), chain[-1]

    def _held_backoff(self, n: int) -> tuple[float, ...] | None:
        """Per backoff retry k of an uncounted sliding log (the retry-after ignored, the
        first retry sooner than ``w``): ``s_k``, the chance the log has freed the room
        the refused call lacked at none of retries 1…k (None: not such a log).

        A refusal means the log's units plus the call's charge passed ``q`` by ``O``;
        the log frees units only as its oldest charges expire, and the others' launches
        meanwhile take what expires first, so retry k, ``c_k`` seconds after the
        refusal, fits only if the charges logged in the oldest ``c_k`` seconds of that
        window pass those launched since by ``O``: the joint chain of that room over the
        retries (:meth:`_held_joint`). Treating every retry as a fresh Poisson attempt
        (the orbit approximation) refused it with ``p`` and logged the retries as new
        load; here a retry within ``w`` of a few large launches is refused again, and
        logs nothing
        (hunt seed 1, a 10 s itpm log, 12 sessions, retries 0.25 s and 0.75 s later:
        simulated, 2.9 attempts turned away per refused call, where ``p`` said 1.0).

        The log at a refusal holds about ``x = q − E[C²]/E[C]`` of the others' units
        (the room a size-biased refused charge ``C`` lacked), more than their mean
        ``λw·E[B]`` when refusals are rare: the launches in it are the compound Poisson
        input conditioned on that sum, i.e. exponentially tilted (Esscher) — launch
        instants at rate ``λ·M(θ)``, charges ``∝ P(B = b)·e^{θb}``, with
        ``λw·M'(θ) = x``. The expired units ``E_k`` over ``c_k`` are that compound
        Poisson over ``c_k``, the others' launches ``A_k`` the untilted input; the
        overshoot has the equilibrium law of the call charge,
        ``P(O = j) = P(C ≥ j)/E[C]``; ``s_k = P(E_j − A_j < O, j ≤ k)``. A log charged
        ``max_tokens`` at admission is no different (it frees room only as its charges
        expire): it was left to the orbit rule while the retries were read one by one
        (the rule then came out 4–8 % further from the engine on hunt seed 178), and
        now takes this one — hunt seed 1078 3 → 2 against the simulated 2, 3080 458 →
        472 against 477, seed 178 with an exponential think time 60 against 60.
        """
        r = self.retry
        c = r.backoff_s
        if (not self.sliding or not r.retries or r.counts_rejected or r.honour_retry_after
                or not c or c[0] >= self.window_s):
            return None
        return self.held_after(n, c, arrivals=True, joint=True)

    def held_after(self, n: int, c: tuple[float, ...],
                   charge: NDArray[np.float64] | None = None,
                   arrivals: bool = False, joint: bool = False) -> tuple[float, ...]:
        """``s_k`` of :meth:`_held_backoff` for a refused call of this uncounted sliding
        log coming back ``c[k − 1]`` seconds after its refusal (whatever sent it back:
        its own backoff, or a later deployment's refusal of its spill), at ``n``;
        ``charge``: the charge law (on this lattice) of the calls so sent back, if not
        the log's calls (refused in proportion to their size, overshooting by a uniform
        share of it); ``arrivals``: the others' launches meanwhile take what expires
        first (below); ``joint`` (with ``arrivals``): the chance retries 1…k are all
        refused, the room still short at each (:meth:`_held_joint`), not retry k's alone."""
        key = ("held", n, c, None if charge is None else charge.tobytes(), arrivals, joint)
        hit = self._cascade_memo.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        e = self.event_pmf
        f = self.call_pmf if charge is None else charge
        f = f / max(float(f.sum()), 1e-300)
        kf = np.arange(f.size, dtype=np.float64)
        e_c = _dot(kf, f)
        lam_w = n * self.events_per_window
        out: tuple[float, ...]
        if e_c <= 0 or lam_w <= 0 or e.size < 2:
            out = tuple(1.0 if ck < self.window_s else 0.0 for ck in c)
            self._cascade_memo[key] = out
            return out
        surv = np.concatenate([[0.0], 1.0 - np.cumsum(f)[:-1]])     # P(C ≥ j), j ≥ 1
        o_pmf = np.clip(surv, 0.0, None) / e_c
        x = max(self.q_lat - _dot(kf * kf, f) / e_c, 0.0)
        ke = np.arange(e.size, dtype=np.float64)
        pos = (e > 0) & (ke > 0)
        log_e, kp = np.log(e[pos]), ke[pos]

        def log_mean(theta: float) -> float:      # log of λw·M'(θ)
            return math.log(lam_w) + float(np.logaddexp.reduce(log_e + np.log(kp)
                                                                + theta * kp))

        theta = 0.0
        if log_mean(0.0) < math.log(max(x, 1e-300)):
            hi = 1.0 / max(_dot(ke, e), 1.0)
            while log_mean(hi) < math.log(x):
                hi *= 2.0
            lo = 0.0
            for _ in range(60):                    # bisection: θ to ~1e-18 of its bracket
                mid = 0.5 * (lo + hi)
                if log_mean(mid) < math.log(x):
                    lo = mid
                else:
                    hi = mid
            theta = hi
        log_w = log_e + theta * kp
        top = float(log_w.max())
        wts = np.exp(log_w - top)
        rate = lam_w / self.window_s * float(np.exp(top) * wts.sum())  # launches per s
        f_t = np.zeros(e.size)
        f_t[pos] = wts / wts.sum()
        e_n = e / float(e.sum())
        if arrivals and joint:
            out = self._held_joint(n, c, o_pmf, rate, f_t, e_n, own=charge is None)
            self._cascade_memo[key] = out
            return out
        mu_e, var_e = _dot(ke, e_n), _dot(ke * ke, e_n)
        mu_t = _dot(ke, f_t)
        var_t = _dot(ke * ke, f_t)
        res = []
        for ck in c:
            if ck >= self.window_s:
                res.append(0.0)          # every charge that refused it has expired
                continue
            m_k = rate * ck
            m_a = lam_w / self.window_s * ck if arrivals else 0.0   # the others' launches
            mean, sd = m_k * mu_t, math.sqrt(m_k * var_t)
            mean_a, sd_a = m_a * mu_e, math.sqrt(m_a * var_e)
            if mean - mean_a - 10.0 * math.hypot(sd, sd_a) > o_pmf.size:
                res.append(0.0)
                continue
            L = 1 << max(6, math.ceil(math.log2(o_pmf.size + f_t.size + mean + 12.0 * sd)))
            L = min(L, _MAX_FFT)
            g = np.clip(np.fft.irfft(np.exp(m_k * (np.fft.rfft(f_t, L) - 1.0)), L), 0.0,
                        None)
            if not arrivals:
                cdf = np.cumsum(g)[: o_pmf.size]
                cdf = np.concatenate([cdf, np.full(max(o_pmf.size - cdf.size, 0), cdf[-1])])
                # P(E < j) for j ≥ 1 is the cdf at j − 1.
                res.append(float(min(1.0, _dot(o_pmf[1:], cdf[: o_pmf.size - 1]))))
                continue
            # Meanwhile the others' launches (the untilted input, at its rate) take what
            # expires first: the room the call lacked is freed only when the expired
            # units pass the admitted ones by its overshoot, ``E_k − A_k ≥ O``. A 60 s
            # log 240 sessions keep full, its large calls spilled and sent back 0.54 and
            # 1.5 s later (hunt seed 2053): 0.71 and 0.60 refused again against 0.71 and
            # 0.47 in the engine, where the expiries alone said 0.51 and 0.13. (Its own
            # backoff retries, :meth:`_held_backoff`, take the launches too, retry by
            # retry: :meth:`_held_joint`.)
            la = 1 << max(6, math.ceil(math.log2(e.size + mean_a + 12.0 * sd_a)))
            la = min(la, _MAX_FFT)
            ga = np.clip(np.fft.irfft(np.exp(m_a * (np.fft.rfft(e_n, la) - 1.0)), la),
                         0.0, None)
            size = 1 << math.ceil(math.log2(L + la - 1))    # (no wrap-around)
            # The law of E − A, shifted by la − 1: E's law times A's reversed.
            d = np.clip(np.fft.irfft(np.fft.rfft(g, size) * np.fft.rfft(ga[::-1], size),
                                     size), 0.0, None)
            cd = np.cumsum(d)
            # P(E − A < j) for j ≥ 1 is the cdf at j − 1.
            at = np.minimum(np.arange(o_pmf.size - 1) + (la - 1), cd.size - 1)
            res.append(float(min(1.0, _dot(o_pmf[1:], cd[at]))))
        out = tuple(res)
        self._cascade_memo[key] = out
        return out

    def _held_joint(self, n: int, c: tuple[float, ...], o_pmf: NDArray[np.float64],
                    rate: float, f_t: NDArray[np.float64], e_n: NDArray[np.float64],
                    own: bool = True) -> tuple[float, ...]:
        """:meth:`held_after` with the others' launches, retry by retry: the room a
        refused call lacks, ``R₀ = O``, becomes ``R_k = R_{k−1} − ΔE_k + ΔA_k`` by retry k
        (``ΔE_k``: the tilted expiries over ``c_k − c_{k−1}`` seconds, ``ΔA_k``: the
        others' launches then); retries 1…k are all refused with ``P(R_1 > 0, …, R_k >
        0)``, a lattice chain that drops the mass at ``R ≤ 0`` each step (kept, by the room
        left, for :meth:`_retry_cost`). Retry k's own chance (``P(R_k > 0)``, read as all k
        refused) declines far more slowly than the engine's refusals: at the simulated N*,
        hunt seed 126 (tests/data/sliding-backoff-loop.yaml) 0.41 / 0.23 / 0.11 alone,
        0.41 / 0.17 / 0.06 here, the engine 0.44 / 0.19 / 0.05; seed 35 0.44 / 0.34 / 0.24
        alone, 0.44 / 0.24 / 0.13 here, the engine 0.26 / 0.08 / 0.02; seed 122 over five
        retries 0.52 … 0.21 alone, 0.52 … 0.07 here, the engine 0.50 … 0.012.

        ``own``: the log's own refused calls (their admitted mass kept by the room left,
        memo key ``("fit", n, c)``); calls sent back from elsewhere are not kept. A retry
        at or past ``w`` meets none of the charges that refused it: the chain stops there
        and the calls it still holds are neither refused again nor kept as let in (for
        :meth:`_retry_cost` they are admitted as any arrival is, at no extra cost)."""
        lam_s = n * self.events_per_window / self.window_s   # the launches per s
        r = o_pmf.copy()
        r[0] = 0.0                                # index: the room still short, units
        res: list[float] = []
        fit: list[NDArray[np.float64]] = []
        if own:
            self._cascade_memo[("fit", n, c)] = fit
        kt, ka = np.arange(f_t.size, dtype=np.float64), np.arange(e_n.size, dtype=np.float64)
        mu_t, var_t = _dot(kt, f_t), _dot(kt * kt, f_t)
        mu_e, var_e = _dot(ka, e_n), _dot(ka * ka, e_n)
        prev = 0.0
        for ck in c:
            if ck >= self.window_s or (res and res[-1] <= 0.0):
                res.append(0.0)          # every charge that refused it has expired
                r = np.zeros(1)
                continue
            dt = ck - prev
            prev = ck
            m_k, m_a = rate * dt, lam_s * dt
            le = math.ceil(m_k * mu_t + 12.0 * math.sqrt(m_k * var_t) + f_t.size)
            la = math.ceil(m_a * mu_e + 12.0 * math.sqrt(m_a * var_e) + e_n.size)
            size = 1 << max(6, math.ceil(math.log2(r.size + la + le)))
            size = min(size, _MAX_FFT)
            # R + ΔA − ΔE, shifted by le − 1 (ΔE's law reversed): one product of
            # transforms, the compound Poisson laws' transforms being exp(m(φ − 1)).
            le = min(le, size)
            ge = np.clip(np.fft.irfft(np.exp(m_k * (np.fft.rfft(f_t, size) - 1.0)), size)[:le],
                         0.0, None)
            prod = (np.fft.rfft(r, size) * np.exp(m_a * (np.fft.rfft(e_n, size) - 1.0))
                    * np.fft.rfft(ge[::-1], size))
            d = np.clip(np.fft.irfft(prod, size), 0.0, None)
            # The admitted mass: R' ≤ 0 at index le − 1 + R', the room left -R' (surplus).
            fit.append(d[:le][::-1].copy())
            # R' ≥ 1 sits at index le − 1 + R' (R' ≤ R + ΔA: the support so far plus la).
            r = np.concatenate([[0.0], d[le: le + r.size + la]])
            res.append(float(min(1.0, r.sum())))
        return tuple(res)

    def _sliding_step(self, n: int, p: float) -> float:
        per, pr = self._retries_per_call(p, n)
        if pr >= 1.0:
            return self._sliding_bursty(n)
        if self.herds:
            return self._sliding_herd(n)["call"]
        if self._held_backoff(n) is None:
            return self._sliding_h(n, n * self.calls_per_window * per)
        # Retries back within w to an uncounted log: the log holds what it admitted, a
        # loss log's count (the fresh count truncated at q), plus what the retries let
        # in near its top — each such charge turns away more fresh calls, ν a refused
        # call (:meth:`_retry_cost`), which are retried in turn: ``p = p_loss/(1 − ν)``,
        # never above the free count's share (every refused charge back at once).
        loss = self._sliding_h(n, 0.0, truncate=True)
        nu = self._retry_cost(n)
        return min(self._sliding_h(n, 0.0), loss / max(1.0 - nu, 1e-9))

    def _retry_cost(self, n: int) -> float:
        """ν: fresh calls an uncounted sliding log turns away, per refused call, because
        a backoff retry let the refused charge in later (:meth:`_held_backoff`).

        A retry is let in when the log has room for it again, ``s`` units to spare after
        it (the joint chain's admitted mass, :meth:`_held_joint`), a moment after the
        log was full: near its top, where a loss log pays most for an admission. Key's
        relative cost (Erlang's ``B(c)/B(j)`` for a call admitted with ``j`` circuits
        busy) on the log's own blocking function: a charge ``b`` admitted with
        ``b + s`` of room costs ``P_B(q)/P_B(q − b − s)`` fresh calls turned away later
        (``P_B(c)``: the loss log's share at allowance ``c``, :meth:`_loss_share`;
        ``b`` the refused charge, size-biased). ν sums that over the retries let in
        before ``w`` (one let in later meets a log that has forgotten its refusal: an
        arrival like any other, which the loss log already counts).
        Without retries the engine refuses the loss log's share (hunt seeds 35, 1015,
        1028, 1055: 0.28 / 0.37 / 0.59 / 0.68 % of fresh calls against 0.29 / 0.35 /
        0.61 / 0.69 % here); with them, ``ν = 1 − p_loss/p`` from its fresh share ``p``
        at the simulated N*: seeds 35, 111, 1015, 1028, 2080, 21 0.56 / 0.35 / 0.34 /
        0.26 / 0.56 / 0.38 against 0.50 / 0.33 / 0.35 / 0.25 / 0.50 / 0.43 here; 1055
        0.35 against 0.46, 126 0.27 against 0.52 (its count's tail near q is twice the
        engine's). The free count (every refused charge logged at once, the rule before)
        said 1.8 (seed 1055) to 30 (seed 21) times the engine's fresh share there."""
        key = ("cost", n)
        hit = self._cascade_memo.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        # The joint chain keeps its let-in mass beside its answer (one memo, cleared
        # whole): asking it again is a lookup.
        self._held_backoff(n)
        fit = self._cascade_memo.get(("fit", n, self.retry.backoff_s), [])
        q = math.floor(self.q_lat + 1e-9)
        if not fit or q <= 0:
            return 0.0
        size = max(x.size for x in fit)
        spare = np.zeros(size)
        for x in fit:
            spare[: x.size] += x                  # let in with s units to spare
        f = self.call_pmf
        sized = f * np.arange(f.size, dtype=np.float64)
        if sized.sum() <= 0:
            return 0.0
        sized = sized / sized.sum()               # the refused charge: size-biased
        occupied = np.convolve(sized, spare)[: q + 1]
        # (The far tail of the room to spare costs next to nothing: cut where 1e-9 of
        # the mass is left, so the caps below are a few charges' worth, not the chain's
        # whole support.)
        tail = np.cumsum(occupied[::-1])[::-1]
        occupied = occupied[: max(1, int(np.count_nonzero(tail > 1e-9 * tail[0])))]
        # P_B(c) for every allowance c ≤ q at once: 1 − P(O + E + A + B ≤ c)/P(O + E ≤ c),
        # the cdf of the others' count convolved with the laws _loss_share reads.
        # The truncated law (the ratios below do not depend on its normalisation), read
        # stably where the free count seldom reaches q: the raw pmf's round-off there made
        # costs of 1e9 at 200 sessions of tests/data/sliding-backoff-readmitted.yaml.
        g = self.truncated(max(n - 1, 0))
        cdf = np.cumsum(g[: q + 1])
        extra = self._arrival_laws()[0]
        prior = self.own_pmf if self.prior_pmf is None else self.prior_pmf
        caps = q - np.arange(occupied.size)       # the allowances asked: q down to q − b − s

        def below(law: NDArray[np.float64]) -> NDArray[np.float64]:
            """``P(O + X ≤ c)`` for each cap ``c`` (``X ~ law``), q first."""
            lo = q - caps.size + 1 - (law.size - 1)          # the cdf's points read
            seg = cdf[max(lo, 0): q + 1]
            if lo < 0:
                seg = np.concatenate([np.zeros(-lo), seg])
            return np.convolve(seg, law, mode="valid")[::-1]

        room, fits = below(prior), below(extra)
        pb = np.ones(caps.size)
        np.divide(fits, room, out=pb, where=room > 0)
        pb = np.where(room > 0, np.clip(1.0 - pb, 0.0, 1.0), 1.0)
        # A smaller allowance never blocks less, so a cost is at most 1 (where the ratio
        # of two far tails is noise, it is held to that).
        pb = np.maximum.accumulate(pb)
        cost = np.zeros(caps.size)
        np.divide(pb[0], pb, out=cost, where=pb > 0)
        nu = float(min(_dot(occupied, cost), 0.999))
        self._cascade_memo[key] = nu
        return nu

    def _sliding_bursty(self, n: int) -> float:
        """Fresh rejection share when every retry meets a full window (counted, honoured).

        Then the retries are not a smooth stream: the ``(S' − q)⁺`` calls turned away by
        the burst of the window before each come back ``m`` times, each logged, while
        that burst is still in the log. An arriving call sees ``S + m·(S' − q)⁺ + own``
        (``S'`` the previous window's fresh count, taken independent of ``S``).
        Remembered by ``n``: the retry fixed point asks it at every step, and a storm
        search's rough and exact models ask the same ``n`` (they share the memo and the
        count's pmfs; tool-agent on sliding 60 s logs asked 85 times for 57 ``n``,
        ``python benchmarks/session58_probes.py storms``).
        """
        # (Keyed by the retries too: a fleet's copy without them, fleet._no_retry,
        # changes its model's retry rule in place.)
        key = ("bursty", n, self.retry.max_retries, self.q_lat)
        hit: float | None = self._cascade_memo.get(key)
        if hit is None:
            hit = self._cascade_memo[key] = self._sliding_bursty_uncached(n)
        return hit

    def _sliding_bursty_uncached(self, n: int) -> float:
        g = self.pmf(max(n - 1, 0))
        q = math.floor(self.q_lat + 1e-9)
        m = self.retry.max_retries
        extra = self._arrival_laws()[0]
        if m >= 1 and np.count_nonzero(extra) <= _BURSTY_DIRECT:
            return self._sliding_bursty_direct(g, q, m, extra)
        return self._sliding_bursty_fft(g, q, m, extra)

    @staticmethod
    def _sliding_bursty_fft(g: NDArray[np.float64], q: int, m: int,
                            extra: NDArray[np.float64]) -> float:
        """:meth:`_sliding_bursty_uncached`'s share by convolving the count ``g`` with
        the logged excess by FFT, then reading its tail below ``q + 1``."""
        over = g[q + 1:]
        x = np.zeros(m * over.size + 1)
        x[m * np.arange(1, over.size + 1)] = over
        x[0] = max(0.0, 1.0 - float(over.sum()))
        L = 1 << math.ceil(math.log2(g.size + x.size))
        tot = np.clip(np.fft.irfft(np.fft.rfft(g, L) * np.fft.rfft(x, L), L), 0.0, None)
        tail = np.concatenate([np.cumsum(tot[::-1])[::-1], [0.0]])
        idx = np.clip(q + 1 - np.arange(extra.size), 0, tail.size - 1)
        return float(min(1.0, _dot(extra, tail[idx])))

    @staticmethod
    def _sliding_bursty_direct(g: NDArray[np.float64], q: int, m: int,
                               extra: NDArray[np.float64]) -> float:
        """:meth:`_sliding_bursty_uncached`'s share summed directly: only the tail of
        ``S + m·(S' − q)⁺`` at the ``extra.size`` levels below ``q + 1`` is read, each
        ``x₀·P(S ≥ s) + Σᵢ P(S' = q + i)·P(S ≥ s − m·i)`` — the terms with ``m·i ≥ s``
        one suffix sum — where the FFT convolved the whole count with the whole excess
        (2^15-2^17 points at 5,000 calls a window). The same number to round-off."""
        over = g[q + 1:]
        tail_g = np.concatenate([np.cumsum(g[::-1])[::-1], [0.0]])   # P(S ≥ t)
        later = np.concatenate([np.cumsum(over[::-1])[::-1], [0.0]])  # Σ_{i ≥ j+1} P(q + i)
        x0 = max(0.0, 1.0 - float(later[0]))
        total = 0.0
        for k in np.flatnonzero(extra).tolist():
            level = q + 1 - k
            if level <= 0:
                share = float(tail_g[0]) * (x0 + float(later[0]))
            else:
                # i = 1 … below level/m read P(S ≥ level − m·i); the rest P(S ≥ 0).
                top = min((level - 1) // m, over.size)
                i = np.arange(1, top + 1)
                share = (x0 * float(tail_g[min(level, tail_g.size - 1)])
                         + float(_dot(over[:top], tail_g[level - m * i]))
                         + float(tail_g[0]) * float(later[top]))
            total += float(extra[k]) * share
        return float(min(1.0, total))

    def _sliding(self, n: int, exceed: bool = True) -> dict[str, float]:
        """The shares at ``n`` sessions (the window's exceedance only when ``exceed``)."""
        if self.herds:
            return self._sliding_herd(n, exceed)
        m = self.retry.max_retries
        if self._counted_loss:
            h = self._sliding_h(n, 0.0, truncate=True)
            p = min(1.0, h * self._counted_spells(n, h))
            if self._thinned_free:
                p = min(p, self._sliding_h(n, 0.0))
        else:
            p = self._sliding_h(n, 0.0, trains=m == 0)
        if m > 0:
            p = _iterate(functools.partial(self._sliding_step, n), p, 200, 1e-10)
        if self.cascade is not None and (self.loses or (
                _CASCADE_COUNTED and self.sliding and self.retry.counts_rejected)):
            p = min(1.0, p + self._sliding_cascade(n, p))
        if self.loses and self.restart_weight.size:
            p = min(1.0, p + self._sliding_restart(n, p))
        per, refused, last = self._retry_chain(p, n)
        pr = self._retry_rejection(p, n)
        attempt = (p + refused) / (1.0 + per)
        out = {"attempt": min(1.0, attempt), "call": p, "failed": p * last,
               "exceed": self.exceedance(n) if exceed else 0.0, "retry_share": per}
        if m > 0 and pr >= 1.0:
            out = self._storms(n, out)
        elif (m == 0 and self.retry.storms_without_retries and self.storm_first.size
              and not self._thinned_free):
            out = self._storms(n, out, gate=False)
        return out

    @property
    def _counted_loss(self) -> bool:
        """A sliding log that counts refusals, without retries, whose refused calls abort
        their turns: a loss log whose full spells the logged refusals lengthen
        (:meth:`_counted_spells`)."""
        r = self.retry
        return (_COUNTED_SPELLS and self.sliding and not r.retries and r.counts_rejected
                and r.abort_turn and self.single_launches)

    @property
    def _thinned_free(self) -> bool:
        """A counted loss log (:attr:`_counted_loss`) whose sessions are paced by a
        cadence and whose aborted turns never end past it — a turn that outlasts its
        cadence ends sooner when aborted, and brings its session's next turn with it
        (``saving_weight``; tests/data/cadence-counted-outlasting.yaml storms for good in
        the engine) — nor restart at a refusal: a refused call brings no launch sooner
        (the next turn is due at its cadence, whatever became of this one) and only takes
        its turn's later launches away, so the attempts the log holds are the free
        launches thinned, its count never above the free count — whose share then bounds
        the spells' and the storms' (exact for turns of one launch). Their chains meet
        the cadence's launches as Poisson ones and outlast the cadence's steady count:
        hunt-63 (one call a turn, a 30 s log of 37 requests, cadence U(20, 36) s)
        at 31 sessions said 20.6 % refused, the free count 4.42 %, the engine 4.24 %."""
        return (self._counted_loss and self.storm_cadence > 0.0 and not self.storm_pause.size
                and not self.saving_weight.size and not self.restart_weight.size
                and not self.storm_restart.size)

    def _counted_spells(self, n: float, h: float | None = None) -> float:
        """How much logging the refusals lengthens a full log's spells (no retries,
        aborted turns): the calls a counted log turns away per full spell over a loss
        log's.

        A spell starts when a launch instant overflows: its ``O`` units that do not fit
        are turned away (``P(O = k) = P(K ≥ k)/E[K]`` for an instant of ``K`` units). A
        loss log frees room at its next expiry — one launch instant's units, expiring at
        ``q/(E[K]·w)`` per second — and turns away what arrives before it:
        ``O + λ·w·E[K]/q`` units (``λ``: units launched per second). A counted log logs
        each refusal for ``w`` seconds, so every one must be outlived by more expiries,
        while the turns it refuses launch nothing more: the retried storms' chain with
        no retries (:meth:`storm_size`) follows such a spell. The share is the loss
        log's (:meth:`_loss_share`) times their ratio: hunt-rpm-224, a 60 s log of
        turns' sequential calls, 18 sessions: 2.2 vs 1.58 calls per spell, × 1.39
        (simulated 2.69 vs 1.92), 0.92 % (simulated 0.81 %), where the free count the
        model used said 2.5 %: a refused turn launches nothing more, so the log does
        not overflow the way the free count of every launch does.

        ``h``: the loss log's share this ratio multiplies (capped at 1): every storm size
        of at least ``loss/h`` then gives the share 1 (and every size the share 0 when
        ``h`` is 0), so the chain need only tell that much (:meth:`storm_size`'s
        ``enough``): a search's first guesses far above a ceiling meet storms of
        millions of attempts (hunt-1006 at 281 sessions: 7.4 M, a chain of 254k steps,
        ~5 s) where a few thousand decide.
        """
        e = self.event_pmf
        k = np.arange(e.size, dtype=np.float64)
        e_k = _dot(k, e)
        b = _dot(np.arange(self.call_pmf.size), self.call_pmf)
        q = math.floor(self.q_lat + 1e-9)
        if e_k <= 0 or b <= 0 or q <= 0 or not self.storm_first.size:
            return 1.0
        over = _dot(k * (k + 1.0), e) / (2.0 * e_k)
        loss = (over + n * self.mean_units / self.h * e_k / q) / b
        enough = math.inf
        if h is not None:
            enough = 0.0 if h == 0.0 else loss / h * (1.0 + _STORM_FLOOR_MARGIN)
        return max(1.0, self.storm_size(n, enough) / loss)  # type: ignore[arg-type]

    def _cascade_levels(self) -> tuple[NDArray[np.float64], float]:
        """(cascaded calls per launch instant by stages on, mean calls per instant)."""
        c = self.cascade
        assert c is not None
        return c.levels, c.calls_per_instant

    def _sliding_cascade(self, n: int, p: float) -> float:
        """Share of calls a sliding log turns away because a refusal started the next
        stage of their turn early (``on_exhausted: continue``, no retries, a loss log).

        ``δ`` later the log has barely moved: a launch ``j`` stages on is refused when its
        charge, and every charge of the stages between, exceeds the room ``q − X`` that
        turned the first away (``X``: the arriving call's view, the others' truncated
        count plus its own turn's earlier launches). With ``T(x) = P(X > q − x)`` and
        ``M_j`` the least of ``j + 1`` charges, the chain reaches stage ``j`` with
        ``E[T(M_j)]``; each of its calls is then refused for sure instead of with ``p``.
        """
        levels, per_instant = self._cascade_levels()
        if not levels.size or per_instant <= 0:
            return 0.0
        q = math.floor(self.q_lat + 1e-9)
        # A loss log: the others' count truncated (:meth:`truncated`).
        g = (self.pmf(max(n - 1, 0)) if self.retry.counts_rejected
             else self.truncated(max(n - 1, 0)))
        x = np.convolve(g, self.own_pmf)[: q + 1]
        cdf = np.cumsum(x)                                  # P(X ≤ s), s = 0..q
        b = self.call_pmf
        k = np.arange(b.size)
        # T(k) = 1 − P(X ≤ q − k) (k > q: always refused).
        t = np.where(k <= q, 1.0 - cdf[np.clip(q - k, 0, q)], 1.0)
        surv = np.concatenate([[1.0], 1.0 - np.cumsum(b)[:-1]])   # P(B ≥ k)
        extra = 0.0
        for j, weight in enumerate(levels, start=1):
            if weight <= 0:
                continue
            s_min = surv ** (j + 1)                                # P(M_j ≥ k)
            pmf_min = s_min - np.concatenate([s_min[1:], [0.0]])
            extra += weight * _dot(pmf_min, t)
        return max(0.0, extra * (1.0 - p) / per_instant)

    def _sliding_restart(self, n: int, p: float) -> float:
        """Share of calls a sliding loss log turns away because a refusal restarted their
        session at once (cadence-paced, past the cadence: :func:`_abort_saving`).

        The restarted turn's first call (charge ``B'``) comes a rejection latency after
        a call of charge ``B`` was turned away, into a log that has barely moved: it is
        refused when ``B'`` exceeds the room ``q − X`` that turned ``B`` away, with
        ``r = E[T(min(B, B'))]/E[T(B)]`` (``T(x) = P(X > q − x)``, ``X`` the log's
        content, the others' units and the session's earlier ones truncated together;
        ``B`` the charge of the calls whose refusal restarts a session, ``B'`` that of the
        restarted turns' first calls) instead of the ``p`` of a call at a random instant.
        Restarts per call: the turns whose first refusal restarts them
        (``Σ restart·(Π(1−p)^before − Π(1−p)^through)``) over the calls a turn makes.
        tests/data/cadence-restart.yaml (sessions back to back), 16 sessions: restarts
        0.0204 per call, the engine's 0.0204; ``r`` 0.83, the engine's 0.65 (49 % after
        a final 4,600-token reservation, 83 % after a loop call, with a 3,100-token first
        call to follow).
        """
        made = self.made_fraction(p)
        per_turn = self.calls_per_window / self.turns_per_window if self.turns_per_window else 0.0
        if per_turn * made <= 0:
            return 0.0
        restarts = _dot(self.restart_weight, self._all_made(p, self.saving_before)
                        - self._all_made(p, self.saving_through)) / (per_turn * made)
        if restarts <= 0:
            return 0.0
        # The log a restart meets: the others' units and its session's earlier ones,
        # truncated together at q (:meth:`_loss_share`).
        q = math.floor(self.q_lat + 1e-9)
        prior = self.own_pmf if self.prior_pmf is None else self.prior_pmf
        x = np.convolve(self.truncated(max(n - 1, 0)), prior)[: q + 1]
        if x.sum() <= 0:
            return 0.0
        cdf = np.cumsum(x) / x.sum()
        b2, b = self.restart_pmf
        if b2.sum() <= 0 or b.sum() <= 0:
            return 0.0  # no restarted call meets the log: none is refused for it
        k = np.arange(b.size)
        t = np.where(k <= q, 1.0 - cdf[np.clip(q - k, 0, q)], 1.0)
        e_t = _dot(b, t)
        if e_t <= 0:
            return 0.0
        s_min = (1.0 - np.concatenate([[0.0], np.cumsum(b)[:-1]])) * (
            1.0 - np.concatenate([[0.0], np.cumsum(b2)[:-1]]))       # P(min ≥ k)
        pmf_min = s_min - np.concatenate([s_min[1:], [0.0]])
        r = _dot(pmf_min, t) / e_t
        return max(0.0, restarts * (r - p))

    def _sliding_herd(self, n: int, exceed: bool = True) -> dict[str, float]:
        """The 429 shares of an uncounted sliding window whose retries herd (honoured
        retry-afters): first attempts see the loss system's count (:attr:`loses`) times
        the herd chain's extension of the full spells; retries as the chain says."""
        ch = self.herd_chain(n)
        p1 = min(1.0, self._sliding_h(n, 0.0, truncate=True) * ch["ext"])
        attempt = p1 * (1.0 + ch["rej"]) / (1.0 + p1 * ch["ret"])
        return {"attempt": min(1.0, attempt), "call": p1, "failed": p1 * ch["fail"],
                "exceed": self.exceedance(n) if exceed else 0.0,
                "retry_share": p1 * ch["ret"]}

    def herd_chain(self, n: int) -> dict[str, float]:
        """One full spell of the log, expiry by expiry, with and without retries.

        A spell starts when a launch overflows: the herd ``H₁`` (:meth:`herd_rejection`)
        retries at the next expiry, which frees one launch instant's charges ``F``.
        After expiry ``j`` the log is either still full, ``Z = H − F > 0`` (``Z`` units
        turned away again; those that have made ``m`` retries fail, the rest retry at the
        next expiry), or has room ``−Z``; the launches of the next gap (geometric in
        number, :meth:`herd_rejection`) take that room first and the rest of them are
        turned away — first attempts that join the herd. The spell ends when a gap's
        launches fit. Without retries the rejected units take no room at an expiry.
        Tracked as lattice laws (the retry ages of the herd by their means), this gives
        per spell the first attempts turned away ``U₁``, the retries ``ΣH`` and the
        retries turned away ``ΣZ⁺``; the first-attempt share is the loss system's times
        ``ext = U₁(m)/U₁(0)`` (retried calls re-occupy the log and lengthen the spell).

        The retry-after is the time until enough of the oldest charges expire for the
        refused call itself, so the spell's first herd comes back at the expiry that
        covers the overflow ``O`` (its told time), not at the next one whatever room
        that frees: the room freed by then is ``O`` plus the overshoot ``V`` of the
        expiries over it, and the launches of every gap until then join
        (:func:`_told_kernel`). The survivors of a collision and the later joiners meet
        the next expiry's room, as before (conservative: one that frees less than they
        need counts them refused). The 1-3-1 TPM row over a 1 s log at 5 sessions:
        retries refused again 57 % → 4 % (the engine: 6 %); over a 10 s log at 113
        sessions 65 % → 51 % (the engine: 36 % of first retries, 46 % of second ones).
        Returns ``ext``, per first rejection ``rej`` (retries rejected), ``ret``
        (retries), ``fail`` (calls failed), and ``pr = ΣZ⁺/ΣH``.
        """
        hit = self._chains.get(n)
        if hit is not None:
            return hit
        m = self.retry.max_retries
        e_fine = self.event_pmf
        mu_fine = float(_dot(np.arange(e_fine.size), e_fine))
        none = {"ext": 1.0, "rej": 0.0, "ret": 0.0, "fail": 0.0, "pr": 0.0}
        if mu_fine <= 0 or self.q_lat <= 0 or m == 0:
            return none
        lam = n * self.events_per_window / self.window_s        # launch instants per s
        mean_k = lam * self.window_s * mu_fine / self.q_lat     # launches during δ
        # A spell needs no finer lattice than ~8 points per launch (it gives ratios).
        e = _coarsen(e_fine, max(1.0, mu_fine / 8.0))
        with_r = _spell(e, mean_k, m, told=_TOLD)
        without = _spell(e, mean_k, 0)
        u1 = with_r[0]
        out = {"ext": u1 / without[0] if without[0] > 0 else 1.0,
               "ret": with_r[1] / u1, "rej": with_r[2] / u1, "fail": with_r[3] / u1,
               "pr": with_r[2] / with_r[1] if with_r[1] > 0 else 0.0}
        self._chains[n] = out
        return out

    def storm_threshold(self) -> float:
        """Sessions above which a counted, retried sliding window sustains a retry storm:
        all fresh calls turned away and each logged ``1 + m`` times fill the allowance,
        ``(1 + m)·N·(calls per window) ≥ q``."""
        m = self.retry.max_retries
        per_session = (1 + m) * self.mean_units / self.h
        return self.q_lat / per_session if per_session > 0 else math.inf

    def _storms(self, n: int, healthy: dict[str, float], gate: bool = True
                ) -> dict[str, float]:
        """Add the retry storms that bursts ignite (counted, retried sliding windows);
        with ``gate``, above the storm threshold only, unless the storms below it count
        (:attr:`storms_below_threshold`: backoff retries, their spells ending by
        themselves).

        Ignition: the first call turned away — the trailing count going over the
        allowance, at the rate of arrivals that find it full for their charge ``B`` but
        not over, declumped as in Alm's scan-statistic approximation for the count
        exceeding ``q`` (``k = q + 1``): ``ι = (1 − λw/(q + 1))⁺·λ·P(q − B < count ≤ q)``
        (``P(count = q)`` for single requests). A window that is merely full turns no
        one away: a closed loop of N ≤ q sessions, each with at most one call per window,
        never starts a storm. A storm then turns away every call until the trailing count
        falls below the allowance: :meth:`storm_size` attempts (``(1 + m)(N − N_u)``
        when the model holds no turn sample, e.g. a blend of populations).
        """
        m = self.retry.max_retries
        n_u = self.storm_threshold()
        if gate and n <= n_u and not self.storms_below_threshold:
            return healthy
        g = self.pmf(max(n - 1, 0))
        palm = np.convolve(g, self.own_pmf)  # count an arriving call finds (itself out)
        q = math.floor(self.q_lat + 1e-9)
        # tail[s] = P(count ≥ s); an arrival of charge b is the first turned away when
        # q − b < count ≤ q.
        tail = np.concatenate([np.cumsum(palm[::-1])[::-1], [0.0]])
        b = np.arange(self.call_pmf.size)
        over = tail[np.clip(q + 1 - b, 0, tail.size - 1)] - tail[min(q + 1, tail.size - 1)]
        at_edge = float(_dot(self.call_pmf, over)) if q > 0 else 0.0
        lam_w = n * self.calls_per_window          # calls per window
        lam = lam_w / self.window_s                # calls per second
        ignition = max(0.0, 1.0 - lam_w / (q + 1)) * lam * at_edge if q > 0 else 0.0
        p = healthy["call"]
        if ignition == 0.0 or (healthy["attempt"] >= 1.0 and p >= 1.0):
            # No storm is ignited (the mean load alone fills the log, or no count sits at
            # its edge), or every call is turned away already: the share below is the
            # healthy one whatever the storms' size (finite), so no chain is run.
            out = dict(healthy)
            out["call"] = out["failed"] = min(1.0, p)
            return out
        size = self._storm_turned_away(n, lam_w)
        # Every call turned away above N_u starts a storm (its retries are logged and
        # turned away too), so the healthy share's rejections are the storms' first
        # calls, already in their size: the storms alone, never below the healthy share.
        rejected = ignition * size
        attempts = lam + ignition * size * m / (1 + m)
        share = min(1.0, rejected / attempts) if attempts > 0 else 0.0
        out = dict(healthy)
        out["attempt"] = max(healthy["attempt"], share)
        out["call"] = min(1.0, max(p, ignition * size / (1 + m) / lam))
        out["failed"] = out["call"]
        return out

    def _storm_turned_away(self, n: int, lam_w: float) -> float:
        """Attempts one storm turns away at ``n`` sessions (``lam_w``: calls per window):
        the storm chain's (:meth:`storm_size`), a search's rough guess (one window's
        attempts, scaled), or ``(1 + m)(N − N_u)`` without a turn sample."""
        m = self.retry.max_retries
        if self.storm_rough:                       # a rough guess: one window's attempts
            return self.storm_scale * ((1 + m) * lam_w)
        if self._storm_sampled:
            return self.storm_size(n)
        return (n - self.storm_threshold()) * (1 + m)

    @property
    def storms_below_threshold(self) -> bool:
        """True when a storm below :meth:`storm_threshold` counts: its backoff retries,
        logged when they come (:func:`_retry_delays`), decide how soon it ends by itself
        (:meth:`storm_size`'s chain, from a turn sample; not a search's rough guess).

        Below the threshold the storms end by themselves but are not nothing: a 2 s
        counted RPM log of 13, one 0.27 s backoff retry, 154 sessions (hunt-3093) turns
        away 0.935 % of attempts in the engine (400 h), in spells of ~6.4 attempts 11
        an hour, where the healthy share is 0.620 %; with the spells the model says
        0.980 % (12 an hour, 8.0 attempts each; ``python
        benchmarks/session55_probes.py substorms``). Told retries are left out: they
        come when the log has room for them, where the chain logs them with their
        refusal (with them, a conservative hunt record fell further)."""
        r = self.retry
        return (_SUB_STORMS and self._storm_sampled and not self.storm_rough
                and r.retries and not r.honour_retry_after and bool(r.backoff_s))

    @property
    def storms(self) -> bool:
        """True when a refusal can start a storm here (:meth:`_storms`): a counted
        sliding log whose retries meet it full again, or, without retries, whose refused
        turns come back and are counted again."""
        r = self.retry
        if not (self.sliding and r.counts_rejected):
            return False
        if r.retries:
            return self._retry_rejection(0.0) >= 1.0
        return r.storms_without_retries and bool(self.storm_first.size)

    def ignited_by(self, other: ClumpWindowModel, rho: float, n: int,
                   negligible: float = 0.0) -> float:
        """Share of this counted request log's attempts turned away by the storms that
        another dimension's full spells start (``other``: its quota's token log over the
        same calls, over this window or another length; ``rho``: their window counts'
        correlation).

        Every attempt the other log refuses is logged here (a refusal counts against the
        request limit), so a token spell that turns away ``A`` attempts adds ``A`` to
        this log's count ``X`` while it lasts; when ``X + A`` reaches the allowance ``q``
        the next call is refused here and, on a log that storms (:attr:`storms`), starts
        a storm of :meth:`storm_size` attempts. ``X`` at a spell's start is the count
        given the token count at its allowance ``b`` — the pair as Gaussian:
        ``N(μ_x + ρσ_x(b − μ_y)/σ_y, σ_x²(1 − ρ²))`` (the same calls fill both logs, so
        a full token log holds nearly a fixed number of calls). The spells start at the
        other log's declumped crossing rate (:meth:`crossings`), ``A`` is geometric with
        the mean its refused attempts per spell give. Below the storm threshold (with
        retries) a refusal here starts no storm — nothing is added — unless its backoff
        retries' storms end by themselves there (:attr:`storms_below_threshold`).
        hunt-171 (RPM + TPM over one 30 s log, honoured retries) at 90 sessions: every
        one of the engine's storms began in a TPM spell (8 of 21 spells, ~60 requests
        logged at the start, 6.7 refused attempts per spell); the model says ~60, 10 and
        5 spells an hour.

        ``negligible``: a share below which the answer may be 0 without a new storm chain
        (a ceiling search's guesses far below its boundary): when this ``n``'s chain is
        not yet solved but others are, the share with ten times the largest solved size
        per session (:meth:`_storm_bound`) decides — sizes per session vary by tens of
        percent across cells, the spells' start probability by orders of magnitude.
        """
        m = self.retry.max_retries
        if n <= 0 or not self.storms or (m > 0 and n <= self.storm_threshold()
                                         and not self.storms_below_threshold):
            return 0.0
        spells = other.crossings(n)
        if spells <= 0.0:
            return 0.0
        st = other.attempt_share(n)
        lam_o = n * other.calls_per_window / other.window_s
        refused = st["attempt"] * lam_o * (1.0 + st["retry_share"])  # attempts per s
        a_mean = max(1.0, refused / spells)
        mx, sx = _moments_of(self.pmf(n))
        my, sy = _moments_of(other.pmf(n))
        if sy <= 0.0:
            return 0.0
        r = min(max(rho, 0.0), 1.0)
        mean = mx + r * sx * (other.q_lat - my) / sy
        sd = sx * math.sqrt(max(1.0 - r * r, 0.0))
        q = math.floor(self.q_lat + 1e-9)
        # P(X + A ≥ q): X on the integers near its conditional mean, P(A ≥ k) geometric.
        lo = max(0, math.floor(mean - 6.0 * sd))
        x = np.arange(lo, max(lo + 1, math.ceil(mean + 6.0 * sd) + 1), dtype=np.float64)
        wx = np.exp(-0.5 * ((x - mean) / sd) ** 2) if sd > 0 else (x == round(mean)) * 1.0
        if float(wx.sum()) <= 0.0:
            return 0.0
        need = np.maximum(q - x, 1.0)
        started = _dot(wx / wx.sum(), (1.0 - 1.0 / a_mean) ** (need - 1.0))
        lam_w = n * self.calls_per_window
        lam = lam_w / self.window_s

        def share(size: float, retry_share: float) -> float:
            rejected = spells * started * size
            attempts = lam * (1.0 + retry_share) + rejected * m / (1 + m)
            return min(1.0, rejected / attempts) if attempts > 0 else 0.0

        # The bound's share without this log's own retries (its own share may need the
        # chain too): larger still.
        bound = self._storm_bound(n) if negligible > 0.0 else None
        if bound is not None and share(bound, 0.0) < negligible:
            return 0.0
        own = self.attempt_share(n)
        return share(self._storm_turned_away(n, lam_w), own["retry_share"])

    def _storm_bound(self, n: int) -> float | None:
        """Ten times the largest storm size per session of the chains solved so far, at
        ``n`` sessions — or None when ``n``'s chain is solved (or needs none) or no chain
        is (:meth:`ignited_by`'s test of a negligible share). hunt-1152: 8.8–11.8
        attempts per session over 404–575 sessions; hunt-234: 8,100–8,700. Where storms
        rebound (:attr:`storm_rebounds`) the storms an ignition brings rise with N, from 1
        to the horizon's cap within a few cells (hunt-3083: 1 → 64 over 98–140 sessions):
        only a cell solved above ``n`` bounds it."""
        if self.storm_rough or not self.storm_first.size or not self._storm_sizes:
            return None
        if _STORM_GRID ** storm_cell(n) in self._storm_sizes:
            return None
        if self.storm_rebounds and max(self._storm_sizes) < n:
            return None
        sizes = [(x, self._storm_at(x)) for x in list(self._storm_sizes)]  # (floors run)
        return 10.0 * n * max(s / x for x, s in sizes if x > 0)

    def crossings(self, n: int) -> float:
        """Full spells per second: arrivals that find the trailing count at its edge
        (over the allowance with their own charge ``B``, not before it), declumped as in
        Alm's scan-statistic approximation, ``(1 − E[count]/(q + 1))⁺·λ·P(q − B <
        count ≤ q)`` (:meth:`_storms`' ignition, for any unit)."""
        q = math.floor(self.q_lat + 1e-9)
        if n <= 0 or q <= 0:
            return 0.0
        palm = np.convolve(self.pmf(max(n - 1, 0)), self.own_pmf)
        tail = np.concatenate([np.cumsum(palm[::-1])[::-1], [0.0]])
        b = np.arange(self.call_pmf.size)
        over = tail[np.clip(q + 1 - b, 0, tail.size - 1)] - tail[min(q + 1, tail.size - 1)]
        lam = n * self.calls_per_window / self.window_s
        mean = n * self.mean_units / self.h
        return max(0.0, 1.0 - mean / (q + 1)) * lam * float(_dot(self.call_pmf, over))

    def storm_size(self, n: int, enough: float = math.inf) -> float:
        """Attempts a retry storm turns away (counted, retried sliding window), from the
        first one until an arrival finds the trailing count below the allowance ``q``.

        During a storm every launch is turned away and, with its ``m`` retries (told to
        come back when the oldest charge expires, they meet a full log again), logged
        ``1 + m`` times; a turn whose call fails launches nothing more. So the storm
        meets launches at the rate ``ρ(s)`` (``s`` after its start) of turns starting
        (their first launch, at the steady rate ``N/C`` per turn) plus each turn caught
        mid-way making its next launch only: a launch whose gap to the previous one is at
        least ``s`` (``N/C·E[#{later launches with gap ≥ s}]``; every launch when a
        failed call does not abort its turn), and of sessions starting turns — at the
        steady rate, except that an aborted turn's session starts its next one a pause
        later (think time) and a cadence's bursting sessions are not due for ``C − w``
        (:func:`_storm_arrivals`). The log count ``C`` is followed as a Markov chain on
        the lattice (:func:`_storm_size`), in steps of ``w/80`` to ``w/120``:

        * start: ``q`` plus the overflow of the launch that crossed it (a size-biased
          launch ``K`` over a uniform room: ``P(O = j) = P(K ≥ j)/E[K]``), ``1 + m``
          times;
        * an arrival of ``k`` units at ``C ≥ q`` is turned away and adds ``(1 + m)k``;
          at ``C < q`` it is admitted and the storm ends;
        * for ``s < w`` the log's content from before the storm (``q`` units) expires at
          the steady rate, in launches of the steady law; for ``s ≥ w`` the storm's own
          attempts of ``s − w`` expire, at that rate scaled by ``C/M(s)`` (``M``: the
          storm's mean content ``∫_{s−w}^{s}(1 + m)ρ``), a mean-reverting count whose
          mean is the deterministic one, so a storm the load can sustain
          (``(1 + m)ρw > q``) ends by a fluctuation, not at once.

        Three windows are followed (the rest of a longer storm: a geometric tail at the
        last window's decay). The size changes slowly with ``n``: it is computed at the
        nearest point of a geometric grid (4% apart) and cached, so a ceiling search's
        guesses share a few chains — and a share read from it steps where ``n`` crosses
        from one cell to the next.

        ``enough``: a caller for which every size of at least this much is the same may
        get a floor instead, a number ``≥ enough`` (the chain stopped once it turned that
        much away; no chain at all when ``enough ≤ 0``): the cell then keeps a
        :class:`_StormFloor`, whose chain is run whole only when a caller needs the size.
        """
        return self._storm_at(_STORM_GRID ** storm_cell(n), enough)

    @property
    def storm_rebounds(self) -> bool:
        """True when a storm's aborted sessions come back (think-time sessions whose
        refused call aborts its turn): its end or its echo can re-ignite it
        (:func:`_storm_rebound`)."""
        r = self.retry
        return bool(r.abort_turn and self.storm_pause.size and not r.continues)

    def storm_rebound(self, n: int) -> float:
        """Storms one ignition brings at ``n`` sessions, counting those each one's end
        re-ignites (:func:`_storm_rebound`; 1 where storms end for good)."""
        if not self.storms or self.storm_rough or not self.storm_rebounds:
            return 1.0
        cell = _STORM_GRID ** storm_cell(n)
        if cell not in self._storm_rebounds:
            self.storm_size(n)
        return self._storm_rebounds.get(cell, 1.0)

    @property
    def _storm_sampled(self) -> bool:
        """True when the storm chain has the launches it needs (a turn sample)."""
        return bool(self.storm_first.size)

    def _storm_chain_size(self, n: float, enough: float = math.inf) -> float:
        """The storm chain's size at ``n`` sessions (:func:`_storm_size`; a floor
        ``≥ enough`` once it turned that much away)."""
        return _storm_size(self, n, enough)

    def _storm_at(self, n: float, enough: float = math.inf) -> float:
        """The storm size at the grid point ``n`` (cached), or a floor ``≥ enough``
        (:meth:`storm_size`)."""
        hit = self._storm_sizes.get(n)
        if isinstance(hit, _StormFloor):
            if hit.floor >= enough:
                return hit.floor
            # (The model that asked first runs it, as it would have then: the dict is
            # shared by the dataclasses.replace variants of a model.)
            hit = self._storm_sizes[n] = hit.model._storm_chain_size(n)
        elif hit is None:
            if len(self._storm_sizes) >= 256:
                self._storm_sizes.clear()
            if enough <= 0.0:
                self._storm_sizes[n] = _StormFloor(0.0, self)
                return 0.0
            hit = self._storm_chain_size(n, enough)
            self._storm_sizes[n] = _StormFloor(hit, self) if hit >= enough else hit
        return hit

    def exceedance(self, n: int) -> float:
        """P(S > q) for the fresh count of a window placed at random (sliding windows:
        the share of time the trailing window is over its allowance).

        A sliding log's share at ``n`` reads the others' count, ``n − 1`` sessions, so
        there ``P(S_n ≤ q) = Σ_k P(S_{n−1} = k)·P(X ≤ q − k)`` with ``X`` one session's
        count (the count is a sum of independent sessions' counts), summed directly —
        the report's figure without a second FFT of the count at every N a search asks. (A
        blend of populations draws its sessions otherwise: its own law. Without a session
        law a fractional N's count is a fractional power of the binomial factor, not a
        law — its negative mass clipped — so a fractional N there reads its own count, as
        a review found on ptu-spillover's OTPM log with no retries, its N thinned by
        aborted turns.)"""
        q = math.floor(self.q_lat + 1e-9)
        # Always this sum where it holds (never the count at N, even when at hand): the
        # figure is then the same whatever a search asked before. Sliding logs only: a
        # fixed window's share reads the count at N itself.
        if (self.sliding and n >= 1 and type(self) is ClumpWindowModel
                and (self.session_pmf is not None or float(n).is_integer())):
            prev = self.pmf(n - 1)
            one = self.pmf(1.0)
            cdf = np.cumsum(one[: q + 1])
            head = prev[: q + 1]
            at = np.minimum(q - np.arange(head.size), cdf.size - 1)
            return max(0.0, 1.0 - float(_dot(head, cdf[at])))
        g = self.pmf(n)
        return max(0.0, 1.0 - float(g[: q + 1].sum()))

    def fixed_points(self, n: int, grid: int = 24) -> list[float]:
        """Every solution p of ``p = H(p)`` (sliding windows with retries), by a grid scan.

        More than one means bistability: the healthy state (the least root) can be
        knocked into a self-sustaining retry storm (the largest stable root).
        """
        m = self.retry.max_retries
        if not self.sliding or m == 0:
            return [self.attempt_share(n)["call"]]
        if self._retry_rejection(0.0) >= 1.0:
            # Every retry meets a full, counted window: once all fresh calls are turned
            # away, the logged attempts per window are (1 + m)·calls; the storm feeds
            # itself when that fills the allowance (an open-loop view).
            healthy = self._sliding_bursty(n)
            storm = (1 + m) * n * self.mean_units / self.h >= self.q_lat
            return [healthy, 1.0] if storm and healthy < 1.0 else [healthy]
        ps = np.concatenate([[0.0], np.geomspace(1e-4, 1.0 - 1e-6, grid)])
        d = [self._sliding_step(n, float(x)) - float(x) for x in ps]
        roots = []
        for i in range(len(ps) - 1):
            if d[i] == 0.0 or (d[i] > 0) != (d[i + 1] > 0):
                roots.append(float(ps[i] + (ps[i + 1] - ps[i]) * d[i] / (d[i] - d[i + 1])
                                   if d[i] != d[i + 1] else ps[i]))
        if d[-1] >= 0:
            roots.append(float(ps[-1]))
        return roots or [float(ps[-1])]


# The retry fixed point's extrapolation (:func:`_iterate`): a jump is taken when three
# successive steps rise with ratios within _JUMP_AGREE of each other and below
# _JUMP_RATIO, at most _JUMP_REACH times the span the three steps covered.
_JUMP_RATIO = 0.995
_JUMP_AGREE = 0.2
_JUMP_REACH = 10.0


def _iterate(step: Callable[[float], float], p: float, limit: int, tol: float,
             jumps: bool = True) -> float:
    """``p ← step(p)`` until two iterates are within ``tol`` or ``limit`` steps were taken;
    the last iterate. From below it converges to the least fixed point.

    Near a fixed point the steps shrink geometrically: with ratio 0.95 a plain walk takes
    ~400 steps (each an FFT) to settle within 1e-10 (hunt-111: 971 steps over its
    searches). Where three successive steps rise by a steady ratio ``r`` the walk jumps
    to the limit of that geometric series, ``p + d·r/(1 − r)`` (Aitken's extrapolation;
    capped at ``_JUMP_REACH`` times the span the steps covered, so it stays where the map
    was seen to be near-linear), and walks on from there: the same fixed point, to within
    the walk's own error (~``tol·r/(1 − r)``), in about half the steps (hunt-111: 429).

    The map can also enter a cycle instead: at ``p = 1`` a backoff-retried sliding log
    takes the counted log's bursty share (its retries rejected with ``p``, as every
    retry of a counted log is), which sends ``p`` back down (fuzz case fz110: periods of
    3 and 4, 200 steps each of them an FFT). The values then repeat exactly, so the
    step where the cycle started and its period say which value the ``limit``-th step
    lands on: the same answer, bit for bit, without walking the cycle (a walk that
    jumped is walked again without jumps, whose steps that is).
    """
    start = p
    seen = {p: 0}
    hist = [p]
    jumped_at = 0        # hist index after the last jump (steps are counted apart)
    for _ in range(limit):
        new = step(p)
        if abs(new - p) < tol:
            return new
        p = new
        j = seen.get(p)
        if j is not None:
            if jumped_at:
                return _iterate(step, start, limit, tol, jumps=False)
            period = len(hist) - j
            return hist[j + (limit - j) % period]
        seen[p] = len(hist)
        hist.append(p)
        if jumps and len(hist) - jumped_at >= 3 and len(hist) >= 4:
            a, b, c, d = hist[-4:]
            d1, d2, d3 = b - a, c - b, d - c
            if d1 > 0 and d2 > 0 and d3 > 0:
                r1, r2 = d2 / d1, d3 / d2
                if r2 < _JUMP_RATIO and abs(r2 - r1) <= _JUMP_AGREE * r2:
                    x = d + min(d3 * r2 / (1.0 - r2), _JUMP_REACH * (d - a))
                    if x < 1.0 and x not in seen:
                        p = x
                        seen[p] = len(hist)
                        hist.append(p)
                        jumped_at = len(hist)
    return p


def _moments_of(pmf: NDArray[np.float64]) -> tuple[float, float]:
    """Mean and standard deviation of a lattice pmf."""
    k = np.arange(pmf.size, dtype=np.float64)
    mean = _dot(k, pmf)
    return mean, math.sqrt(max(_dot(k * k, pmf) - mean * mean, 0.0))


def complex_log(z: NDArray[Any], floor: float = 1e-300
                ) -> NDArray[np.complex128]:
    """The principal log of ``z``, ``|z|`` floored at ``floor`` (a transform that
    vanishes at a frequency stays finite times N: its exp is 0): ``log|z| + i·arg z``,
    the same numbers as ``np.log`` (to ~1e-16) at a sixth of its time (numpy's complex
    log is ~120 ns a point; an FFT lattice has 2^13–2^17 of them, at every guess)."""
    out: NDArray[np.complex128] = np.log(np.maximum(np.abs(z), floor)) + 1j * np.angle(z)
    return out


def _dot(a: Any, b: Any) -> float:
    """Inner product of two 1-D arrays without BLAS: on a busy machine BLAS threads can
    spend milliseconds waiting for each other on a vector product of microseconds.
    ``np.add.reduce(·, axis=None)`` is what ``ndarray.sum()`` calls (the same pairwise
    sum), without its two Python wrappers: the spells' loop calls this ~10× a step."""
    return float(_reduce(np.multiply(a, b), axis=None))


_reduce = np.add.reduce

# Products of a direct convolution past which :func:`lattice_convolve` goes by FFT (a
# sliding log's 16,384-point count and a route's 8,192-point one: 134M products, ~30 ms;
# by FFT ~3 ms).
_DIRECT_WORK = 1 << 22


def lattice_convolve(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.convolve(a, b)``; by FFT past ``_DIRECT_WORK`` products (the round-off's
    negative dust clipped; the mass kept as it is)."""
    if a.size * b.size <= _DIRECT_WORK:
        return np.convolve(a, b)
    size = a.size + b.size - 1
    L = 1 << math.ceil(math.log2(size))
    out: NDArray[np.float64] = np.fft.irfft(np.fft.rfft(a, L) * np.fft.rfft(b, L), L)[:size]
    np.clip(out, 0.0, None, out=out)
    return out


def _coarsen(pmf: NDArray[np.float64], factor: float) -> NDArray[np.float64]:
    """``pmf`` of X on a lattice ``factor`` times coarser (mean-preserving split)."""
    if factor <= 1.0:
        return pmf
    if _kernels is not None:
        # Compiled (capacity/analytic/_kernels.c): the same sums in np.add.at's order. The
        # herd spells coarsen their survivors at every step (~20 µs a call in numpy's
        # calls, ~1 µs compiled; 560 calls in the 300-call fan-out row with retries).
        try:
            out: NDArray[np.float64] = _kernels.coarsen(pmf, float(factor))
            return out
        except ValueError:  # (not a contiguous float64 vector: numpy's way)
            pass
    return _coarsen_numpy(pmf, factor)


def _coarsen_numpy(pmf: NDArray[np.float64], factor: float) -> NDArray[np.float64]:
    x = np.arange(pmf.size) / factor
    lo = np.floor(x).astype(np.int64)
    frac = x - lo
    out = np.zeros(int(lo.max()) + 2)
    np.add.at(out, lo, pmf * (1.0 - frac))
    np.add.at(out, lo + 1, pmf * frac)
    return out


_SPELLS: dict[tuple[bytes, float, int, bool], tuple[float, float, float, float]] = {}


def _spell(e: NDArray[np.float64], mean_k: float, m: int, told: bool = False
           ) -> tuple[float, float, float, float]:
    """(first attempts turned away, retries, retries turned away, calls failed) in one
    full spell of a sliding log (see :meth:`ClumpWindowModel.herd_chain`), in units.

    ``e``: units of one launch instant (lattice, the room one expiry frees), ``mean_k``:
    launches expected between two expiries, ``m``: retries per call. Cached on ``mean_k``
    to 4 significant digits: the ceiling search and the think-time sweep ask for nearly
    the same spells again.
    """
    key = (e.tobytes(), float(f"{mean_k:.4g}"), m, told)
    hit = _SPELLS.get(key)
    if hit is None:
        if len(_SPELLS) >= 4096:
            _SPELLS.clear()
        hit = _SPELLS[key] = _spell_uncached(e, key[1], m, told=told)
    return hit


def _spell_uncached(e: NDArray[np.float64], mean_k: float, m: int, steps: int = 400,
                    told: bool = False) -> tuple[float, float, float, float]:
    k = np.arange(e.size, dtype=np.float64)
    mu = float(_dot(k, e))
    rho = mean_k / (1.0 + mean_k)
    off = e.size - 1                              # index i of a signed law ↔ value i − off
    # The herd: a launch plus the launches of a few gaps (geometric counts, mean mean_k).
    half = 1 << max(6, math.ceil(math.log2(e.size * (6.0 + 2.0 * mean_k + 10.0 * math.sqrt(
        mean_k + mean_k**2)))))
    L = 2 * half                                  # room for a sum without wrapping
    eh = np.fft.rfft(e, L)
    ah = (1.0 - rho) / (1.0 - rho * eh)           # launches in a gap: geometric count
    rev = np.fft.rfft(e[::-1], L)                 # minus one expiry's room
    surv = np.concatenate([[0.0], 1.0 - np.cumsum(e)[:-1]])
    h = np.clip(np.fft.irfft(np.fft.rfft(surv / mu, L) * ah, L), 0.0, None)
    h[half:] = 0.0
    kk = np.arange(L, dtype=np.float64)
    # The loop's transforms into reused buffers (np.fft's numbers without its wrapper).
    rfft, irfft = _real_fft(L)
    told = told and m > 0
    if told:
        # The spell's first herd comes back at the expiry that covers the overflow ``O``
        # (the refused call's own demand: its told time), the launches of every gap
        # until then joining it (:func:`_told_kernel`); the survivors of a collision and
        # the later joiners meet the next expiry's room (conservative: an expiry that
        # frees less than they need counts them refused).
        gap1 = np.clip(np.fft.irfft(ah, L), 0.0, None)
        kern, extra_units = _told_kernel(e, ah, L, off, e.size, _dot(kk, gap1))
        o_law = surv / mu
        o_mix = np.einsum("i,ij->j", o_law, kern)
    u1 = _dot(kk, h)
    ages = np.zeros(m + 1)                        # expected herd units by retry number
    if m > 0:
        ages[1] = u1
    sum_h = sum_r = fail = 0.0
    first_step = True
    # The loop's numpy calls without their Python wrappers (a spell runs ~40 steps of
    # ~30 calls on short arrays): ``np.clip(x, 0, None)`` is ``np.maximum(x, 0)`` (its
    # own definition), ``x.sum()`` is ``np.add.reduce(x, axis=None)``, and the refused
    # units' weights 1, 2, … are ``kk``'s (the same numbers): answers bit for bit.
    clip0, ramp = np.maximum, kk[1: L - off]
    for _ in range(steps):
        mass = float(_reduce(h, axis=None))
        if mass < 1e-7:  # the spell has ended (its remaining units are below 1e-6)
            break
        if told and first_step:
            # (Its law is G₁ + G_{ν−1} − V: one gap's launches already in ``h``.)
            z = clip0(irfft(rfft(gap1) * o_mix), 0.0)
            wait_units = _dot(o_law, extra_units)
            e_h = _dot(kk, h) + wait_units
            u1 += wait_units
            ages[1] += wait_units
            sum_h += e_h
            first_step = False
        else:
            e_h = _dot(kk, h)
            if m == 0:  # nothing retries: the units turned away take no room at the expiry
                h = np.zeros(L)
                h[0] = mass
            else:
                sum_h += e_h
            z = clip0(irfft(rfft(h) * rev), 0.0)
        pos = z[off + 1:]
        e_r = _dot(ramp, pos)
        keep = 0.0
        if m > 0 and e_r > 0:
            sum_r += e_r
            ratio = e_r / e_h
            failing = ages[m] * ratio
            fail += failing
            keep = 1.0 - failing / e_r
            nxt = np.zeros(m + 1)
            nxt[2:] = ages[1:m] * ratio
            ages = nxt
        # The next gap starts from the survivors (the log full) or from the room left.
        y = np.zeros(L)
        y[: off + 1] = z[: off + 1]
        if keep > 0:  # the survivors: the turned-away law thinned to ``keep`` of its units
            sc = _coarsen(np.concatenate([[0.0], pos]), 1.0 / keep)[: L - off]
            y[off: off + sc.size] += sc
        else:  # all of them failed: no herd, and no room either
            y[off] += float(_reduce(pos, axis=None))
        hn = clip0(irfft(rfft(y) * ah), 0.0)[off:]
        h = np.zeros(L)
        h[1: min(hn.size, half)] = hn[1: min(hn.size, half)]  # 0: the launches fit, it ends
        first = max(_dot(kk, h) - keep * e_r, 0.0)
        u1 += first
        if m > 0:
            ages[1] = first
    return u1, sum_h, sum_r, fail


# A spell's first herd comes back at its told expiry (False: at the next one, as before).
_TOLD = True


def _told_kernel(e: NDArray[np.float64], ah: NDArray[np.complex128], L: int, off: int,
                 top: int, mean_gap: float) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """The told expiry's kernel for demands ``d < top`` (lattice units): per ``d``, the
    transform (length ``L``, signed lattice offset ``off``) of ``G − V`` — ``V`` the
    overshoot over ``d`` of the rooms the expiries free (``e`` each), ``G`` the launches
    of the gaps after the first until the expiry that covers ``d`` (``ah`` per gap); and
    per ``d``, those launches' mean units. Linear in the demand's law: built once.

    With ``u_z(x) = Σ_j z^j·P(S_j = x)`` (``S_j`` the room ``j`` expiries free; ``z`` a
    gap's launch transform), the expiry ``ν`` crossing ``d`` from ``S_{ν−1} = x < d``
    frees ``F = d − x + V``: ``Σ_{x<d} u_z(x)·E[ω^{−V}; F = d − x + V]``."""
    size = e.size
    half = L // 2 + 1
    u = np.zeros((top, half), dtype=np.complex128)
    # An expiry may free nothing on the coarse lattice (e(0) > 0): the sums stay put.
    stay = 1.0 / (1.0 - ah * e[0])
    u[0] = stay
    for x in range(1, top):
        k = min(x, size - 1)
        # u(x) = z·Σ_{j=0..k} e(j)·u(x − j)
        # (Elementwise, not a BLAS product: its threads spin on a busy machine.)
        u[x] = ah * np.einsum("i,ij->j", e[1: k + 1], u[x - k: x][::-1]) * stay
    # r_d: the overshoot v ≥ 0 of an expiry of d + v units, at index off − v.
    r = np.zeros((size, L))
    for d in range(1, size):
        v = np.arange(size - d)
        r[d, off - v] = e[d + v]
    rh = np.fft.rfft(r, axis=1)
    out = np.zeros((top, half), dtype=np.complex128)
    for d in range(1, min(size, top)):
        out[d:] += u[: top - d] * rh[d][None, :]
    # E[ν − 1 | d] = Σ_{x<d} u_1(x) − 1 (the renewal function; z = 1 at frequency 0).
    u1 = np.real(u[:, 0])
    extra = mean_gap * np.maximum(np.concatenate([[1.0], np.cumsum(u1)[:-1]]) - 1.0, 0.0)
    extra[0] = 0.0
    return out, extra


# A storm's log count is followed in steps of at most w/_STORM_STEPS, short enough that a
# step holds on average _STORM_EVENTS_PER_STEP events (arrivals and expiries) but at most
# _STORM_MAX_STEPS steps per window, for _STORM_WINDOWS windows (a longer storm's rest is
# extrapolated) or until less than _STORM_ALIVE of the storms go on. Ordering a step's
# events costs an error of the order of the step, which runs conservative (an arrival
# meets the count before that step's expiries): at 120 steps per window the 1-3-1 sliding
# row's storm at 140 sessions is 86 attempts against 81 at 800 steps (and six windows),
# the U{1..10} fan-outs' at 48 sessions (80 steps) 152.2 against 152.4.
_STORM_STEPS = 80
# The bursty share (:meth:`ClumpWindowModel._sliding_bursty`) is summed directly for an
# arrival law of at most this many levels (a Python loop over them), else by FFT, which
# a review found faster from about a hundred levels on small allowances.
_BURSTY_DIRECT = 50
_STORM_EVENTS_PER_STEP = 0.4
_STORM_MAX_STEPS = 120
_STORM_MAX_EVENTS = 0.9
_STORM_WINDOWS = 3
_STORM_ALIVE = 1e-4
# Storm sizes are computed at N on a geometric grid this far apart (the nearest point).
_STORM_GRID = 1.04
# A floor of a storm's size asked for (storm_size's ``enough``) this much above the size
# that decides: the walk's sum of the mass alive may round down by ~1e-16 a step.
_STORM_FLOOR_MARGIN = 1e-6


@dataclass
class _StormFloor:
    """A storm-grid cell whose chain stopped at ``floor`` attempts (or never ran: 0),
    all its caller needed; ``model`` runs the chain whole when another needs the size."""

    floor: float
    model: ClumpWindowModel


def storm_cell(n: float) -> int:
    """Exponent of the point of the storm sizes' grid nearest ``n`` sessions: every N of
    one cell shares a storm size (one chain)."""
    return round(math.log(n) / math.log(_STORM_GRID))


def storm_cell_span(n: int) -> tuple[int, int]:
    """The least and the largest N (≥ 1) of ``n``'s storm-grid cell."""
    k = storm_cell(n)
    lo = min(n, max(1, math.ceil(_STORM_GRID ** (k - 0.5))))
    while lo < n and storm_cell(lo) != k:
        lo += 1
    while lo > 1 and storm_cell(lo - 1) == k:
        lo -= 1
    hi = max(n, math.floor(_STORM_GRID ** (k + 0.5)))
    while hi > n and storm_cell(hi) != k:
        hi -= 1
    while storm_cell(hi + 1) == k:
        hi += 1
    return lo, hi


def storm_launches(mdl: ClumpWindowModel, n: float) -> NDArray[np.float64]:
    """The steady launches per second at ``n`` sessions, by units (index 0 empty), from
    the model's turn sample: each sampled turn's first launch and later ones, at the
    turn start rate ``n·turns per window / w`` shared among the sampled turns (empty
    without a sample)."""
    first, sizes = mdl.storm_first, mdl.storm_sizes
    nt = first.size
    if nt == 0 or n <= 0:
        return np.zeros(1)
    per_turn = n * mdl.turns_per_window / mdl.window_s / nt
    kmax = int(max(first.max(), sizes.max(initial=0)))
    pre = (np.bincount(first, minlength=kmax + 1)
           + np.bincount(sizes, minlength=kmax + 1)).astype(np.float64)
    pre[0] = 0.0
    out: NDArray[np.float64] = pre * per_turn
    return out


def _storm_size(mdl: ClumpWindowModel, n: float, enough: float = math.inf) -> float:
    """Attempts one retry storm turns away at ``n`` sessions (see
    :meth:`ClumpWindowModel.storm_size`; a floor ``≥ enough`` once it turned that much
    away)."""
    first, gaps, sizes = mdl.storm_first, mdl.storm_gaps, mdl.storm_sizes
    if mdl.storm_restart.size:
        # A refusal that restarts its session brings the restarted turn's first call a
        # rejection latency later, into the log the refusal left full: turned away and
        # logged with it (one arrival of both launches' units).
        sizes = sizes + mdl.storm_restart
    nt = first.size
    if nt == 0 or n <= 0:
        return 0.0
    # Turn starts per second per sampled turn.
    per_turn = n * mdl.turns_per_window / mdl.window_s / nt
    kmax = int(max(first.max(), sizes.max(initial=0)))
    if mdl.retry.continues:  # a refused turn's later stages come at once
        kmax = max(kmax, int(mdl.storm_whole.max(initial=0)),
                   int(mdl.storm_rest.max(initial=0)))
    pre = np.zeros(kmax + 1)
    steady = storm_launches(mdl, n)
    pre[: steady.size] = steady

    # Aborted turns' sessions come back after a think time: the storm's aftermath.
    seen: dict[str, Any] | None = {} if mdl.storm_rebounds else None
    turns: dict[str, Any] = {}

    def arrivals(dt: float, steps: int, q: int, o_mean: float) -> NDArray[np.float64]:
        return _storm_arrivals(mdl, first, gaps, sizes, pre, per_turn, dt, steps, q, o_mean,
                               starts_out=turns if seen is not None else None)

    # Below the storm threshold a storm ends by itself, soon: when its retries come
    # decides how soon (they are logged then; see storm_chain).
    # (n is the cell's grid point: the whole cell must lie below the threshold — above
    # it the retries are logged at once, and a cell across it is read the same way.)
    size = storm_chain(mdl, pre, arrivals, enough, seen=seen,
                       delayed=(mdl.storms_below_threshold
                                and n * math.sqrt(_STORM_GRID) <= mdl.storm_threshold()))
    if seen and turns:
        length = float(seen["length_s"])
        # What the log holds of the storm's last window once it is over: its own
        # attempts at the rate it logged them at its end (and the steady content from
        # before it when it was shorter than a window), under q — a projection: the
        # count is just under q as it ends, its early attempts expiring.
        held = min(float(seen["logged_end"]) * min(length, mdl.window_s)
                   + float(_dot(np.arange(pre.size), pre)) * max(mdl.window_s - length, 0.0),
                   mdl.q_lat)
        k = _storm_rebound(mdl, n, length, float(turns["starts"][seen["step"]]),
                           float(turns["steady"]), held, seen["met"], float(seen["dt"]))
        mdl._storm_rebounds[n] = k
        size *= k
    return size


# Seconds over which a storm its own aftermath keeps alive is counted: the simulator's
# default measured hour. Ignitions fall anywhere in it, so such a storm lasts half of it
# on average (capped there; a storm that ends by itself is counted whole).
STORM_HORIZON_S = 3600.0
# Points of the rebound's window on which its count is followed.
_REBOUND_POINTS = 48


def _storm_rebound(mdl: ClumpWindowModel, n: float, length: float, starts: float,
                   steady: float, held: float, met: NDArray[np.float64] | None = None,
                   dt: float = 0.0) -> float:
    """How many storms one ignition brings on average (≥ 1): a storm that aborts turns
    re-ignites itself when it ends.

    While a storm lasts every turn it meets is aborted and its session, back after a
    pause, meets it again: at its end (``length`` s after its start) the turns start at
    the storm's rate ``starts`` (a second; ``steady`` without a storm), more where the
    pause is shorter than a turn, every one now admitted — and the sessions still
    retrying a refused first call (backoffs, the retry-after ignored) are admitted at
    their next retry. Their later launches (a fan-out) then land in the window the storm
    left. hunt-3083 (a 15 s counted RPM log of 2,118, one call then 20–30 in parallel,
    4 backoff retries, a 7.5 s think time) at 150 sessions: the engine's storms, once
    started, come back every 30 s for hours (the fan-outs of the turns admitted in the
    first 10 s after a storm, ~2,300 calls, fill the log again).

    Only a storm that leaves the log emptier than a healthy window (``held``, what it
    holds at the end, under the healthy mean: no admitted turn in it) has such an
    aftermath; one that ends at the log's edge is the healthy log's own crossing. The
    count over ``t ∈ (0, w]``: ``held`` expiring, plus the launches of turns starting at
    rate ``r(τ)`` from the end, each launching ``U(a)`` units by age ``a`` (the turn
    sample's): mean ``held·(1 − t/w) + ∫₀ᵗr(τ)E[U(t − τ)]dτ``, variance with ``E[U²]``
    (no more than ``n`` turns a window). The storm re-ignites with the chance
    ``Φ(max_t z(t))`` less the same at the steady rate (the ignition rate's own), ``p``
    — or, when larger, the chance its echo re-ignites it (:func:`_storm_echo`: ``met``,
    the launches it met a second by step of ``dt`` s, each aborting its turn); one
    ignition brings ``1/(1 − p)`` storms — over no more than half of
    :data:`STORM_HORIZON_S`."""
    w = mdl.window_s
    q = math.floor(mdl.q_lat + 1e-9)
    first = mdl.storm_first
    launching = first > 0
    if q <= 0 or not launching.any():
        return 1.0
    mu, sd = _moments_of(mdl.pmf(max(round(n), 1)))
    # U(a) per sampled turn on a grid of ages: its first launch, then each later one
    # from its offset on.
    ages = np.linspace(0.0, w, _REBOUND_POINTS + 1)
    step = w / _REBOUND_POINTS
    grid = np.zeros((first.size, ages.size))
    grid[:, 0] = first
    if mdl.storm_offsets.size:
        cell = np.ceil(mdl.storm_offsets / step).astype(np.int64)
        keep = cell <= _REBOUND_POINTS
        np.add.at(grid, (mdl.storm_turn[keep], np.maximum(cell[keep], 0)),
                  mdl.storm_sizes[keep])
    u = np.cumsum(grid, axis=1)[launching]
    u_mean, u_sq = u.mean(axis=0), (u * u).mean(axis=0)

    def over(rate: NDArray[np.float64], cap: bool = True) -> tuple[float, float]:
        """(chance the count goes over q, the age at which that is likeliest)."""
        if cap and float(rate.sum()) * step > n:           # each session back once at most
            rate = rate * (n / (float(rate.sum()) * step))
        # ∫₀ᵗ r(τ)·U(t − τ) dτ on the grid (and with E[U²], the variance).
        mean = held * (1.0 - ages / w) + np.convolve(rate, u_mean)[: ages.size] * step
        var = np.convolve(rate, u_sq)[: ages.size] * step
        ok = var > 0.0
        if not ok.any():
            return 0.0, 0.0
        z = (mean[ok] - q) / np.sqrt(var[ok])
        k = int(np.argmax(z))
        return 0.5 * math.erfc(-float(z[k]) / math.sqrt(2.0)), float(ages[ok][k])

    p, age = 0.0, 0.0
    if starts > steady and held < mu:
        rate = np.full(ages.size, starts)
        r = mdl.retry
        if r.backoff_s and not r.honour_retry_after:
            # Of the first calls refused τ before the end, those between retries j − 1
            # and j retry within the gap between them.
            b = np.diff(np.concatenate([[0.0], np.asarray(r.backoff_s, dtype=np.float64)]))
            rate += starts * (b[None, :] > ages[:, None]).sum(axis=1)
        p, age = over(rate)
        p = max(p - over(np.full(ages.size, steady), cap=False)[0], 0.0)
    echo, lag = _storm_echo(mdl, met, dt, mu, sd, q)
    if echo > p:
        p, age = echo, lag - length
    return storms_brought(p, length + age)                 # a storm and its rebound


def storms_brought(p: float, cycle_s: float) -> float:
    """Storms one ignition brings when each re-ignites the next with chance ``p``,
    ``cycle_s`` apart: ``1/(1 − p)``, over no more than half of
    :data:`STORM_HORIZON_S`."""
    most = max(1.0, 0.5 * STORM_HORIZON_S / max(cycle_s, 1e-9))
    return min(1.0 / max(1.0 - p, 1e-12), most)


@dataclass(frozen=True)
class EchoLaunches:
    """The launches a storm's aborted sessions make here when they come back
    (:func:`echo_launches`): per second on a grid of ``dt`` s from ``lo`` steps after
    the storm's start; ``share``, what they launch in a window anyway (units); ``disp``,
    ``E[U²]/E[U]`` of a turn's units here; ``most``, the most of them back within a
    window and the storm's length (units, a bound)."""

    launched: NDArray[np.float64]
    lo: int
    share: float
    disp: float
    most: float


def echo_launches(mdl: ClumpWindowModel, met: NDArray[np.float64], dt: float
                  ) -> EchoLaunches | None:
    """The sessions whose turns a storm aborted (``met``: the launches it met a second,
    each aborting its turn, by step ``dt``) start their next turns a pause after their
    call gave up, each turn's launches here at their offsets in it (the turn sample's;
    a turn of another kind may launch nothing here). None without a turn sample or a
    pause."""
    pause = mdl.storm_pause
    first = mdl.storm_first
    if met.size == 0 or dt <= 0.0 or pause.size == 0 or not (first > 0).any():
        return None
    tot = mdl.storm_whole.astype(np.float64)              # each sampled turn's units here
    per_turn = float(tot.sum()) / first.size
    aborted = float(met.sum()) * dt
    ps = np.sort(pause)
    reach = mdl.window_s + met.size * dt
    most = float(np.max(np.searchsorted(ps, ps + reach, side="right")
                        - np.arange(ps.size))) / ps.size
    share = aborted * mdl.turns_per_window * per_turn      # theirs of the healthy count
    here = tot[first > 0]
    disp = float((here * here).mean() / here.mean())       # E[U²]/E[U] of a turn's units
    if aborted * most * per_turn <= share:
        return EchoLaunches(np.zeros(0), 0, share, disp, aborted * most * per_turn)
    r = mdl.retry
    lat = r.rejection_latency_s or 0.0
    # A call gives up after its retries: a backoff's time includes its 429's trip (as
    # _storm_arrivals reads it); told retry-afters come within a window in a storm.
    span = ((r.backoff_s[-1] if r.backoff_s else 0.0) + lat if not r.honour_retry_after
            else min(r.max_retries, 1) * mdl.window_s + (1 + r.max_retries) * lat)
    # Turns starting a second on a grid of dt: the aborts shifted by span and each pause.
    back = np.rint((span + ps) / dt).astype(np.int64)
    lo = int(back[0])
    ret = np.convolve(met, np.bincount(back - lo).astype(np.float64) / pause.size)
    # A returning session's units here by their offset in its turn (any kind of turn).
    off = np.rint(mdl.storm_offsets / dt).astype(np.int64) if mdl.storm_offsets.size else (
        np.zeros(0, np.int64))
    units = np.zeros(int(off.max(initial=0)) + 1)
    units[0] = float(first.sum())
    if off.size:
        np.add.at(units, off, mdl.storm_sizes.astype(np.float64))
    units /= first.size
    return EchoLaunches(np.convolve(ret, units), lo, share, disp,
                        aborted * most * per_turn)


def echo_chance(echoes: list[EchoLaunches], dt: float, window_s: float, mu: float,
                sd: float, q: int) -> tuple[float, float]:
    """(the chance a storm's echo re-ignites it, the echo's lag after the storm's start,
    s): the returning sessions' launches (:func:`echo_launches`, every population's on
    one time axis) in the window where they are most, less what they launch in a window
    anyway, over the healthy count (mean ``mu``, sd ``sd``; theirs compound Poisson) —
    the chance they add of going over ``q``."""
    share = math.fsum(e.share for e in echoes)
    live = [e for e in echoes if e.launched.size]
    if not live or sd <= 0.0 or math.fsum(e.most for e in echoes) <= share:
        return 0.0, 0.0
    lo = min(e.lo for e in live)
    launched = np.zeros(max(e.lo - lo + e.launched.size for e in live))
    for e in live:
        launched[e.lo - lo: e.lo - lo + e.launched.size] += e.launched
    per_w = max(round(window_s / dt), 1)
    csum = np.concatenate([[0.0], np.cumsum(launched) * dt])
    k = csum[per_w:] - csum[:-per_w] if csum.size > per_w else csum[-1:] - csum[:1]
    i = int(np.argmax(k))
    extra = float(k[i]) - share
    if extra <= 0.0:
        return 0.0, 0.0
    disp = max(e.disp for e in live)
    spread = math.sqrt(sd * sd + extra * disp)
    p = (0.5 * math.erfc(-(mu + extra - q) / spread / math.sqrt(2.0))
         - 0.5 * math.erfc(-(mu - q) / sd / math.sqrt(2.0)))
    return max(p, 0.0), (lo + i + per_w) * dt


def _storm_echo(mdl: ClumpWindowModel, met: NDArray[np.float64] | None, dt: float,
                mu: float, sd: float, q: int) -> tuple[float, float]:
    """(the chance a storm's echo re-ignites it, the echo's lag after its start, s): the
    sessions whose turns the storm aborted start their next turns a pause after their
    call gave up. A pause that varies little brings them back as the storm took them,
    together, into a log as healthy as before (:func:`echo_launches`,
    :func:`echo_chance`); one that varies by the storm's length or more spreads them
    out."""
    e = echo_launches(mdl, met, dt) if met is not None else None
    return (0.0, 0.0) if e is None else echo_chance([e], dt, mdl.window_s, mu, sd, q)


def _retry_delays(retry: RetryModel, dt: float) -> list[int] | None:
    """Steps of ``dt`` s from a refusal to each backoff retry (a 429's trip and the
    mean backoff; at least one step), or None where retries are logged with their
    refusal: none, or told the retry-after (they come when the log has room, not after
    a fixed time)."""
    m = retry.max_retries
    if not _STORM_RETRY_DELAY or m <= 0 or retry.honour_retry_after or (
            len(retry.backoff_s) < m):
        return None
    out: list[int] = []
    for b in retry.backoff_s[:m]:   # (one retry a step at most: retry j + 1 after retry j)
        out.append(max(round(b / dt), out[-1] + 1 if out else 1))
    return out


def _delayed_kernels(arr: NDArray[np.float64], dt: float, delays: list[int],
                     o_law: NDArray[np.float64], width: int
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                NDArray[np.float64]]:
    """A storm chain's step kernels when each refused launch's retries are logged
    ``delays`` steps after it (:func:`_retry_delays`): step ``i`` brings the fresh
    launches ``arr[i]`` (per second, by units) and the retries of those of step
    ``i − d_j``, each retry a stream of its own (independent of the fresh one: one
    state, the count, cannot hold which launches are waiting), and the storm's first
    launch's retries (overflow law ``o_law``, units 1..kmax) for certain at ``d_j``.
    Returns (each step's law of the units it logs, the mass of none taken out of offset
    0 — the chain's ``ups``; the chance of any arrival a step, its ``tots``; the units
    logged a second)."""
    steps, k1 = arr.shape
    ks = np.arange(k1, dtype=np.float64)
    fresh = arr * dt                                 # per step, by units
    streams = [fresh]
    for d in delays:
        late = np.zeros_like(fresh)
        late[d:] = fresh[: max(steps - d, 0)]
        streams.append(late)
    law = np.zeros((steps, width))
    law[:, 0] = 1.0
    filled = 1                                       # (law's columns that can be nonzero)
    none = np.ones(steps)                            # P(no arrival of any stream)
    units = np.zeros(steps)
    for st in streams:
        kern = st.copy()
        kern[:, 0] += 1.0 - st.sum(axis=1)
        none *= 1.0 - st.sum(axis=1)
        units += st @ ks / dt
        out = np.zeros((steps, width))
        for u in np.flatnonzero(kern.any(axis=0)).tolist():  # (a launch law: few points)
            span = min(filled, width - u)
            out[:, u: u + span] += kern[:, u: u + 1] * law[:, :span]
        law, filled = out, min(width, filled + k1 - 1)
    o_units = float(_dot(np.arange(1, o_law.size + 1), o_law))
    for d in delays:                                 # the first launch's retries
        if d < steps:
            row = np.convolve(law[d, :filled], np.concatenate([[0.0], o_law]))
            law[d] = 0.0
            law[d, : min(width, row.size)] = row[:width]
            none[d] = 0.0
            units[d] += o_units / dt
    ups = law.copy()
    ups[:, 0] -= none                                # (the chain adds 1 − tots back)
    return ups, 1.0 - none, units


def storm_chain(mdl: ClumpWindowModel, pre: NDArray[np.float64],
                arrivals: Callable[[float, int, int, float], NDArray[np.float64]],
                enough: float = math.inf,
                logged: NDArray[np.float64] | None = None,
                seen: dict[str, Any] | None = None, delayed: bool = False) -> float:
    """Calls one retry storm turns away (:meth:`ClumpWindowModel.storm_size`'s chain)
    on ``mdl``'s log, from the steady launches per second by units ``pre`` and the
    launches the storm meets, ``arrivals(dt, steps, q, overflow)`` (per second, by
    units, ``[step, units]``). Once the calls turned away reach ``enough`` the chain
    stops and says ``enough`` or more: a floor of the size (every later step only adds
    to it), not the size. ``logged``: the law of the times a refused call is logged
    (``logged[j]``: j times; default ``1 + m`` times, every retry back into the full
    log). ``seen``: filled, when given and the chain ran whole, with what the walk
    saw of the storm — its mean length ``length_s`` (s, a geometric tail's included),
    its step then (of the last ``arrivals`` asked for, steps of ``dt`` s), the units it
    logged per second then ``logged_end``, and the launches it met per second by step
    up to then ``met`` (:func:`_storm_rebound` reads them). ``delayed`` (without
    ``logged``): backoff retries are logged when they come (:func:`_retry_delays`), each
    retry a stream of its own, the fresh launches' of ``d_j`` steps before
    (:func:`_delayed_kernels`) — for a storm below the threshold, which ends by itself,
    often before they come (hunt-3093 at 154 sessions: 8.0 attempts, 10.1 with them
    logged at once, the engine's spells 6.4; a longer window can hold a longer spell
    either way). Above the threshold a first admission does not end a storm, its
    retries still to come fill the log again: :func:`_storm_size` asks for ``delayed``
    only for a storm-grid cell wholly below it."""
    kmax = pre.size - 1
    w = mdl.window_s
    q = math.floor(mdl.q_lat + 1e-9)
    told = logged is not None
    if logged is None:
        logged = np.zeros(2 + mdl.retry.max_retries)
        logged[-1] = 1.0
    mult = np.flatnonzero(logged > 0.0)
    p_mult = logged[mult] / float(logged[mult].sum())
    a = int(mult[-1])                                # the most a call is logged
    a_mean = float(np.dot(mult, p_mult))
    a_sq = float(np.dot(mult * mult, p_mult))
    call_units = float(_dot(np.arange(mdl.call_pmf.size), mdl.call_pmf))
    if q <= 0 or call_units <= 0 or pre.sum() <= 0:
        return 0.0
    ks = np.arange(kmax + 1, dtype=np.float64)
    # Steps short enough that a step rarely holds two events (arrivals or expiries).
    per_w = min(_STORM_MAX_STEPS, max(_STORM_STEPS, math.ceil(
        2.0 * float(pre.sum()) * w / _STORM_EVENTS_PER_STEP)))
    # A step holds at most one arrival and one expiry (the chain's kernels are laws):
    # a long window of many calls needs more steps than the cap.
    pre_mean_units = float(_dot(ks, pre)) / float(pre.sum())
    per_w = max(per_w, math.ceil(max(float(pre.sum()) * w,
                                     q / max(pre_mean_units, 1e-12)) / _STORM_MAX_EVENTS))
    dt = w / per_w
    steps = per_w * _STORM_WINDOWS
    pre_law = pre / pre.sum()
    pre_mean = float(_dot(ks, pre_law))
    surv = 1.0 - np.cumsum(pre_law)
    o_law = surv[:-1] / pre_mean                    # P(O = j), j = 1..kmax (see below)
    o_mean = float(_dot(np.arange(1, kmax + 1), o_law))
    arr = arrivals(dt, steps, q, o_mean)
    busiest = float(arr.sum(axis=1).max()) * dt    # (aborted sessions return in bursts)
    if busiest > 1.0:
        per_w = math.ceil(per_w * busiest / _STORM_MAX_EVENTS)
        dt = w / per_w
        steps = per_w * _STORM_WINDOWS
        arr = arrivals(dt, steps, q, o_mean)
    arr_units = arr @ (a_mean * ks)                 # attempts' units per second
    delays = _retry_delays(mdl.retry, dt) if delayed and not told else None
    e_pre = q / (w * pre_mean) * dt                 # old launches expiring per step
    # Room above q the count reaches: the storm's steady content and 6 sd of it.
    top = int(np.argmax(arr_units))                 # (the storm's busiest step)
    m0 = float(arr_units[top]) * w
    var0 = w * a_sq * float(_dot(arr[top], ks**2))
    size = int(max(m0 - q, 0.0) + 6.0 * math.sqrt(var0) + 2 * a * kmax) + 8
    # Start: q plus the overflow of the launch that crossed it, logged 1 + m times.
    x = np.zeros(size)
    for j, pj in zip(mult, p_mult, strict=True):
        x[j * np.arange(1, kmax + 1)] += pj * o_law
    x /= x.sum()
    rejected = a_mean * float(_dot(np.arange(1, kmax + 1), o_law))
    if mdl.retry.continues and _CONTINUE_START:
        # The crossing launch's turn goes on: its later stages come a 429's trip later,
        # into the full log, and are turned away too (the steady launches' later units).
        later = np.concatenate([(mdl.storm_whole - mdl.storm_first)[mdl.storm_first > 0],
                                mdl.storm_rest - mdl.storm_sizes])
        law = np.bincount(later, weights=None).astype(np.float64)
        law /= law.sum()
        x = np.convolve(x, law)[:size]
        x /= x.sum()
        rejected += float(_dot(np.arange(law.size), law))
    below = 0.0                                     # storms whose count fell below q
    tots = arr.sum(axis=1) * dt                     # fresh launches per step
    if delays is None:
        ups = np.zeros((steps, a * kmax + 1))       # a launch turned away: up j·k, j
        for j, pj in zip(mult, p_mult, strict=True):  # logged attempts with chance p_j
            ups[:, j * np.arange(1, kmax + 1)] += pj * arr[:, 1:] * dt
        ups[:, 0] += arr[:, 0] * dt
        arriving, logged_units = tots, arr_units    # (a step's arrivals, units logged/s)
    else:
        # Backoff retries logged when they come: a refused launch is logged once, its
        # retry j d_j steps later. Its attempts are still counted turned away with it
        # (a retry comes back to the count the fresh launches hold at the edge: 89 % of
        # hunt-3093's first retries are refused again), and only a fresh launch let in
        # ends the storm (``tots`` stays the fresh launches').
        x = np.zeros(size)
        x[1: kmax + 1] = o_law
        # (A step at d_j holds the fresh launch, m retries and the first launch's.)
        ups, arriving, logged_units = _delayed_kernels(arr, dt, delays, o_law,
                                                       (a + 1) * kmax + 1)
    pre_kern = (pre_law * e_pre)[::-1]              # (reversed: out[d + K] gets y[d + k])
    pre_out = float(pre_kern.sum())
    # Before w the expiries do not depend on the count: a step's arrivals and expiries are
    # one kernel over the offsets −kmax..(1 + m)·kmax (kept or ended: index < kmax).
    stay = pre_kern.copy()
    stay[-1] += 1.0 - pre_out
    # A step's arrivals, the launches that find no arrival kept in place (offset 0).
    steps_k = ups.copy()
    steps_k[:, 0] += 1.0 - arriving
    # The storm's own attempts of s − w expire: down k units, the share that leaves
    # taken out of offset 0.
    gone = ups.copy()
    gone[:, 0] -= arriving
    cum = np.concatenate([[0.0], np.cumsum(logged_units)]) * dt
    inv_gone = 1.0 / np.maximum(arriving if delays is None else 1.0 - steps_k[:, 0], 1e-12)
    # The expiries run half a step ahead of the arrivals (Strang splitting): an arrival
    # meets the count of mid-step, which halves the error of ordering a step's events.
    out = np.convolve(x, pre_kern * 0.5)
    x = x * (1.0 - 0.5 * pre_out) + out[kmax: kmax + size]
    below = below + float(out[:kmax].sum())
    stop_at = enough * call_units
    x, alive, rejected, below, ended = _storm_walk(
        x, steps_k, stay, gone, arr_units * dt, 1.0 - tots, inv_gone,
        cum, float(q), per_w, below, rejected, _STORM_ALIVE, stop_at)
    if rejected >= stop_at:
        return max(enough, float(rejected) / call_units)
    tail = 0.0                                      # the tail's mean time (s)
    if not ended:
        # Still alive: the rest as a geometric tail at the last window's decay.
        r_w = min(float(alive[-1]) / max(float(alive[-1 - per_w]), 1e-300), 0.99)
        tail = float(x.sum()) * w * r_w / (1.0 - r_w)
        rejected += tail * float(arr_units[-1])
    if seen is not None:
        # (alive[i]: the mass not yet ended at step i; 1.0 past the step it ended at.)
        last = int(np.argmax(np.asarray(alive) < _STORM_ALIVE)) if ended else alive.size
        length = float(np.sum(alive[:last])) * dt + tail
        at = min(int(length / dt), steps - 1)
        seen.update(length_s=length, step=at, logged_end=float(arr_units[at]),
                    met=arr[: at + 1, 1:].sum(axis=1), dt=dt)
    return float(rejected) / call_units


# (the count's law above q, the mass alive by step, attempts turned away, mass below q,
# whether the chain ended): :func:`_storm_walk_numpy`.
_StormWalk = tuple[NDArray[np.float64], NDArray[np.float64], float, float, bool]


def _storm_walk(x: NDArray[np.float64], *rest: Any) -> _StormWalk:
    """A storm chain's steps (:func:`_storm_size`; the arguments after ``x`` are
    :func:`_storm_walk_numpy`'s), compiled (``_kernels.storm_walk``:
    each correlation summed tap by tap over the count's nonzero span, in C, its ends
    under 1e-300 dropped — the numpy loop's numbers to ~1e-15, its sums in another order;
    hunt-67's chains were ~2,000 numpy calls each, hunt-76's 14,271 steps with subnormal
    ends: 2.8 -> 0.8 s and 1.7 -> 0.6 s) or :func:`_storm_walk_numpy`."""
    fn = getattr(_kernels, "storm_walk", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: _StormWalk = fn(np.ascontiguousarray(x, dtype=np.float64), *rest)
        except TypeError:
            # A build from before ``stop_at`` (13 arguments: an editable install not
            # rebuilt since 7cc1713): the numpy loop gives the same numbers.
            return _storm_walk_numpy(x, *rest)
        return out
    return _storm_walk_numpy(x, *rest)


def _storm_walk_numpy(x: NDArray[np.float64], steps_k: NDArray[np.float64],
                      stay: NDArray[np.float64], gone: NDArray[np.float64],
                      units_dt: NDArray[np.float64], keep: NDArray[np.float64],
                      inv_gone: NDArray[np.float64], cum: NDArray[np.float64], q: float,
                      per_w: int, below: float, rejected: float, alive_min: float,
                      stop_at: float = math.inf) -> _StormWalk:
    """The steps of a storm chain: (the count's law above q, the mass alive at each
    step, the attempts turned away, the mass fallen below q, whether it ended).

    ``x``: the count above ``q`` at the start; ``steps_k[i]``: step ``i``'s arrivals
    (up ``k`` units at offset ``k``, none at 0); ``stay``: before a window has passed,
    the expiries of the content from before the storm (reversed: offset ``kmax − k``
    for down ``k``); ``gone[j]``: the storm's own attempts of step ``j`` expiring,
    ``per_w`` steps later, with chance ``min((q + s)/(cum[i] − cum[j]), inv_gone[j])``
    at level ``s`` (the share of a level's attempts made at step ``j``); ``units_dt``,
    ``keep``: per step, the units an alive storm turns away and the chance no arrival
    ends a fallen one. Stops once the mass alive is under ``alive_min``, or once the
    attempts turned away reach ``stop_at`` (a floor of the size is all its caller needs)."""
    steps, size = steps_k.shape[0], x.size
    kmax = stay.size - 1
    kk = steps_k.shape[1] - 1
    # The kernels' offsets share the factor a (1 + m when every attempt of a refused call
    # is logged with it; 1 when its retries are logged apart, or by a law of counts).
    a = int(np.gcd.reduce(np.flatnonzero(steps_k.any(axis=0)))) if kk else 1
    # (np.correlate with reversed kernels: np.convolve's wrapper costs as much as the sum.)
    steps_r = steps_k[:, ::-1].copy()
    # The first window's kernel is steps_k[i] convolved with stay: applied as the two
    # correlations one after the other (the same sum up to rounding; numpy's correlate is
    # ~4× slower with a joined 13-point kernel than with a 10-point and a 4-point one).
    stay_r = stay[::-1].copy()
    level = np.arange(size, dtype=np.float64) + q
    alive = [1.0] * steps
    corr = np.correlate
    # The jumps of a storm's count are multiples of a = 1 + m: its two kernels are zero
    # between them (a short kernel whole: a calls cost more than the products saved).
    full: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]] = (
        functools.partial(_correlate_lattice, a=a) if a > 1 and kmax >= _LATTICE_TAPS
        else functools.partial(corr, mode="full"))
    add = np.add.reduce  # (ndarray.sum's own reduction, without its wrapper)
    # (The per-step scalars as Python floats: the loop runs ~1,000 steps a chain.)
    units_l, keep_l, inv_l, cum_l = (units_dt.tolist(), keep.tolist(), inv_gone.tolist(),
                                     cum.tolist())
    ys = np.empty(size)
    ended = False
    for i in range(steps):
        live = float(add(x))
        alive[i] = left = live + below
        if left < alive_min:
            ended = True
            break
        rejected += live * units_l[i]
        if rejected >= stop_at:
            break
        below *= keep_l[i]                          # an arrival there ends the storm
        if i < per_w:                               # the content from before the storm
            out = corr(full(x, steps_r[i]), stay_r, "full")  # (beyond the room:
            x = out[kmax: kmax + size]                               # dropped, ~6 sd up)
            below += float(add(out[:kmax]))
            continue
        y = full(x, steps_r[i])[:size]              # a launch turned away: up (1 + m)k
        j = i - per_w                               # the storm's own attempts of s − w
        np.multiply(level, 1.0 / max(cum_l[i] - cum_l[j], 1e-12), out=ys)
        np.minimum(ys, inv_l[j], out=ys)
        ys *= y
        out = full(ys, gone[j])
        y += out[kk: kk + size]
        x = y
        below += float(add(out[:kk]))
    return x, np.array(alive), rejected, below, ended


# Storm kernels shorter than this many points a residue class are correlated whole:
# ``a`` calls and strided copies cost more than the products saved (hunt-76: 2 points).
_LATTICE_TAPS = 8


def _correlate_lattice(x: NDArray[np.float64], v: NDArray[np.float64], a: int
                       ) -> NDArray[np.float64]:
    """``np.correlate(x, v, "full")`` of a kernel ``v`` nonzero only at multiples of ``a``
    (a storm's attempts are logged ``a = 1 + m`` times: every jump of its count is a
    multiple of ``a``): each residue class of ``x`` mod ``a`` correlated with ``v[::a]``,
    ``1/a`` of the products (the same sums, added in another order)."""
    if a <= 1 or x.size < a or (v.size - 1) % a:
        out: NDArray[np.float64] = np.correlate(x, v, "full")
        return out
    out = np.empty(x.size + v.size - 1)
    vs = v[::a]
    for r in range(a):
        out[r::a] = np.correlate(x[r::a], vs, "full")
    return out


def _storm_arrivals(mdl: ClumpWindowModel, first: NDArray[np.int64],
                    gaps: NDArray[np.float64], sizes: NDArray[np.int64],
                    pre: NDArray[np.float64], per_turn: float, dt: float, steps: int,
                    q: int, overflow: float = 0.0, starts_out: dict[str, Any] | None = None
                    ) -> NDArray[np.float64]:
    """Launches a storm meets per second, by units (``[step, units]``), while it lasts.

    Without aborted turns: the steady launches. With them (see
    :meth:`ClumpWindowModel.storm_size`), the sessions' flow: a turn caught mid-way makes
    only its next launch (while its gap is at least ``s``) or, past its last launch,
    ends as it would (``storm_ends``); every launch met is turned away and aborts its turn.
    A session in a think-time pause starts its next turn when the pause ends: those in a
    pause at the start at the rate ``N/C·P(Z > s)``, and those whose turn ended or was
    aborted at ``u`` after ``Z`` more (the renewal sum over ``u < s``), so an aborted
    turn's session comes back a pause later, not a turn and a pause later — a pause
    that starts when its call gives up, after its ``m`` retries (each a 429's trip and a
    wait: a honoured retry-after is the time until the log's excess over ``q`` has
    expired, ``≈ w·(C − q + 1)/C`` at the storm's mean logged content ``C``, whose
    retries are logged when they come due — ``overflow``: the crossing launch's
    overflow, in units; a backoff is the policy's). A cadence's
    next turn is due a cycle after the last one started, aborted or not: a storm starts
    with ``q + 1`` units in the trailing window, which its sessions do not launch again
    for ``C − w`` seconds, so the launches of ``(0, C − w)`` are the other ``N·u − q − 1``
    of a cycle's (``u`` units per turn), and those of ``(C − w, C)`` the bursting ones.
    """
    kmax = pre.size - 1
    w = mdl.window_s
    if mdl.retry.continues:
        # A refused turn that goes on launches its later stages a 429's trip apart, into
        # the same full log: a turn met is met whole — a turn starting, all its units;
        # a turn caught mid-way, at its next launch, that launch's and every later one's.
        first, sizes = mdl.storm_whole, mdl.storm_rest
    elif not mdl.retry.abort_turn:
        return np.broadcast_to(pre, (steps, kmax + 1))
    nt = first.size
    t = np.arange(steps) * dt
    # Later launches of the turns caught mid-way: alive at step i while gap ≥ i·dt.
    cell = np.minimum((gaps / dt).astype(np.int64), steps) * (kmax + 1) + sizes
    cnt = np.bincount(cell, minlength=(steps + 1) * (kmax + 1)).reshape(steps + 1, kmax + 1)
    nxt = np.cumsum(cnt[::-1], axis=0)[::-1][:steps] * per_turn
    first_law = np.bincount(first, minlength=kmax + 1).astype(np.float64) / nt
    first_law[0] = 0.0
    turns = per_turn * nt                                   # steady turn starts per second
    pause = mdl.storm_pause
    if pause.size:
        # Pauses ending at s: those under way at the start, then the renewal sum.
        surv = np.clip(1.0 - np.searchsorted(np.sort(pause), t, side="right") / pause.size,
                       0.0, 1.0)
        # A pause shorter than a step ends at the next one.
        fz = np.bincount(np.clip((pause / dt).astype(np.int64), 1, steps),
                         minlength=steps + 1)[:steps].astype(np.float64) / pause.size / dt
        ends = np.bincount(np.minimum((mdl.storm_ends / dt).astype(np.int64), steps),
                           minlength=steps + 1)[::-1].cumsum()[::-1][:steps] * per_turn
        starts = turns * surv
        nxt_tot = nxt.sum(axis=1)
        launching = float(first_law.sum())
        into = np.concatenate([ends * dt, [0.0]])            # pauses starting at step u
        # An aborted turn's pause starts when its call gives up: the U{1..10} fan-outs
        # with a 5 s think time at 16 sessions, the engine's lasting storms log 18.5
        # attempts/s at a count of ~173 (retry-afters ~4.5 s: a session is back every
        # ~14 s); back a pause after the launch turned away, this flow logged ~70.
        r = mdl.retry
        lat = r.rejection_latency_s or 0.0                   # (None: a routed call)
        ks = np.arange(kmax + 1, dtype=np.float64)
        first_units = float(_dot(ks, first_law))
        nxt_units = nxt @ ks
        per_w = max(round(w / dt), 1)
        m = r.max_retries
        honour = r.honour_retry_after
        back = ((r.backoff_s[-1] if r.backoff_s else 0.0) + lat) / dt   # (backoff: fixed)
        aborted = (starts * launching + nxt_tot) * dt
        if honour and m > 0:
            got = _storm_retried(into, fz, starts, aborted,
                                 (starts * first_units + nxt_units) * dt, dt, w, q, lat, m,
                                 per_w, overflow, first_units, launching)
        else:
            if honour:   # no retries: the call gives up at its first 429 (m·trip = 0)
                back = lat / dt
            got = _storm_renewal(into, fz, starts, aborted, back, launching, dt)
        if starts_out is not None:  # turns launching here that start, a second
            starts_out.update(starts=got * launching, steady=turns * launching)
        return got[:, None] * first_law[None, :] + nxt
    arr = turns * first_law[None, :] + nxt
    cyc = mdl.storm_cadence
    if cyc > w:
        per_cycle = float(_dot(np.arange(kmax + 1), pre)) * cyc   # N·u, units per cycle
        steady = per_cycle / cyc
        gap = max(per_cycle - q - 1, 0.0) / (cyc - w) / steady
        back = min(q + 1, per_cycle) / w / steady
        factor = np.where(t < cyc - w, gap, np.where(t < cyc, back, 1.0))
        arr = arr * factor[:, None]
    return arr


def _storm_renewal(into: NDArray[np.float64], fz: NDArray[np.float64],
                   starts: NDArray[np.float64], aborted: NDArray[np.float64], back: float,
                   launching: float, dt: float) -> NDArray[np.float64]:
    """:func:`_storm_arrivals`' renewal sum of the pauses (a session's pause starts a
    fixed ``back`` steps after its turn is aborted): the turn starts per step. Compiled
    (capacity/analytic/_kernels.c: the same operations in the same order, numpy's pairwise
    sums; ~1,000 steps of a chain each a numpy call) or :func:`_storm_renewal_numpy`."""
    fn = getattr(_kernels, "storm_renewal", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: NDArray[np.float64] = fn(
                np.ascontiguousarray(into, dtype=np.float64),
                np.ascontiguousarray(fz, dtype=np.float64),
                np.ascontiguousarray(starts, dtype=np.float64),
                np.ascontiguousarray(aborted, dtype=np.float64), back, launching, dt)
            return out
        except ValueError:  # (a return beyond any float step: never from the chains)
            pass
    return _storm_renewal_numpy(into, fz, starts, aborted, back, launching, dt)


def _storm_renewal_numpy(into: NDArray[np.float64], fz: NDArray[np.float64],
                         starts: NDArray[np.float64], aborted: NDArray[np.float64],
                         back: float, launching: float, dt: float) -> NDArray[np.float64]:
    steps = starts.size
    into = into.copy()
    add, mul = np.add.reduce, np.multiply
    # (Plain lists: the loop runs per step of every chain, scalar by scalar.)
    into_l = [*into.tolist(), 0.0]
    starts_l = starts.tolist()
    aborted_l = aborted.tolist()
    # into[i] is final once step i is done (later steps add at their own step or after).
    for i in range(steps):
        if i:
            st = float(add(mul(into[i - 1::-1], fz[1: i + 1])))
            starts_l[i] += st
            aborted_l[i] += st * launching * dt
        pos = i + back
        j = int(pos)
        if j < steps:
            ab = aborted_l[i]
            into_l[j] += ab * (j + 1 - pos)
            into_l[j + 1] += ab * (pos - j)
        into[i] = into_l[i]
    return np.array(starts_l)


def _storm_retried(into: NDArray[np.float64], fz: NDArray[np.float64],
                   starts: NDArray[np.float64], aborted: NDArray[np.float64],
                   turned: NDArray[np.float64], dt: float, w: float, q: int, lat: float,
                   m: int, per_w: int, overflow: float, first_units: float,
                   launching: float) -> NDArray[np.float64]:
    """The turn starts per step of :func:`_retried_returns`, compiled
    (capacity/analytic/_kernels.c) or in Python."""
    fn = getattr(_kernels, "storm_retried", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: NDArray[np.float64] = fn(
                np.ascontiguousarray(into, dtype=np.float64),
                np.ascontiguousarray(fz, dtype=np.float64),
                np.ascontiguousarray(starts, dtype=np.float64),
                np.ascontiguousarray(aborted, dtype=np.float64),
                np.ascontiguousarray(turned, dtype=np.float64), dt, w, q, lat, m, per_w,
                overflow, first_units, launching)
            return out
        except ValueError:  # (a retry beyond any float step: never from the chains)
            pass
    starts_l = starts.tolist()
    into_l = [*into.tolist(), 0.0]
    _retried_returns(starts_l, into.copy(), into_l, aborted.tolist(), fz, starts.size, dt,
                     w, q, lat, m, per_w, overflow, first_units, launching, turned.tolist())
    return np.array(starts_l)


def _retried_returns(starts: list[float], into: NDArray[np.float64], into_l: list[float],
                     aborted: list[float], fz: NDArray[np.float64], steps: int, dt: float,
                     w: float, q: int, lat: float, m: int, per_w: int, overflow: float,
                     first_units: float, launching: float, turned_l: list[float]) -> None:
    """:func:`_storm_arrivals`' renewal sum when honoured retry-afters delay the pauses:
    each aborted call gives up after ``m`` trips that depend on the storm's logged
    content (``starts`` filled in place, per step)."""
    add, mul = np.add.reduce, np.multiply
    logged = [0.0] * (steps + 2)                         # units logged per step
    earlier = 0.0                                        # logged in the last w, before i
    for i in range(steps):
        if i:
            st = float(add(mul(into[i - 1::-1], fz[1: i + 1])))
            starts[i] += st
            turned_l[i] += st * first_units * dt
            aborted[i] += st * launching * dt
        turned = turned_l[i] + (overflow if i == 0 else 0.0)
        logged[i] += turned
        content = q * max(0.0, 1.0 - i / per_w) + earlier + logged[i]
        trip = (lat + w * max(content - q + 1.0, 0.0) / max(content, 1.0)) / dt
        for k in range(1, m + 1):                    # the retries, logged when due
            pos = i + k * trip
            j = int(pos)
            if j <= steps:
                logged[j] += turned * (j + 1 - pos)
                logged[j + 1] += turned * (pos - j)
        earlier += logged[i] - (logged[i - per_w + 1] if i >= per_w - 1 else 0.0)
        pos = i + (m * trip + lat / dt)
        j = int(pos)
        if j < steps:
            into_l[j] += aborted[i] * (j + 1 - pos)
            into_l[j + 1] += aborted[i] * (pos - j)
        into[i] = into_l[i]   # final: later steps add at their own step or after


def _binned(x: NDArray[np.float64], w: NDArray[np.float64], bins: int
            ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The law ``w`` on sorted points ``x`` in at most ``bins`` groups of equal mass
    (each at its mean point)."""
    if x.size <= bins:
        return x, w
    idx = np.minimum((np.cumsum(w) - 0.5 * w) * bins // max(float(w.sum()), 1e-300),
                     bins - 1).astype(np.int64)
    mass = np.bincount(idx, weights=w, minlength=bins)
    at = np.bincount(idx, weights=w * x, minlength=bins)
    keep = mass > 0
    out: NDArray[np.float64] = at[keep] / mass[keep]
    return out, np.asarray(mass[keep], dtype=np.float64)


def _overload_share(fresh: float, q: float, m: int) -> float:
    """Rejected share f of attempts with ``f = 1 − q/(fresh·A(f))`` (0 when it fits)."""
    if fresh <= q or fresh <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        f = 0.5 * (lo + hi)
        if 1.0 - q / (fresh * attempts_per_call(f, m)) > f:
            lo = f
        else:
            hi = f
    return 0.5 * (lo + hi)


def _stop_loss(g: NDArray[np.float64], q: float, mean: float) -> float:
    """``E[(S − q)⁺]`` from ``g_0..`` (``q`` may be fractional): needs only ``s < q``."""
    top = math.ceil(q)
    s = np.arange(min(top, g.size), dtype=np.float64)
    short = float(_dot(q - s, g[: s.size]))
    return max(0.0, mean - q + short)


def _carry_law(g: NDArray[np.float64], q: float, retries: int, windows: int = 96,
               rtol: float = 1e-5, start: NDArray[np.float64] | None = None,
               back_share: float = 1.0
               ) -> tuple[NDArray[np.float64], float, float, bool]:
    """Stationary law of the carried retries (lattice units) when each call makes at
    most ``retries`` of them: ``(law, mean, units failing per window)``.

    Retries come back first in the next window, so the carry is a queue,
    ``Y' = (S + Y − q)⁺``, whose calls rotate (admitted retries make room for the fresh
    calls turned away); it drains to its stationary law below saturation, which takes
    tens of windows near it (the carry's busy periods), not the ``m + 1`` a single call
    stays. Calls fail only when the carry alone overfills a window: of the retries
    turned away again, ``(Y − q)⁺``, those on their last retry leave, ``φ = ρ^{m−1}``
    of them with ``ρ = E[(Y − q)⁺]/E[Y]`` (a retry is turned away again with about
    ``ρ``): the next window sees ``Y − φ·(Y − q)⁺``. Iterated from empty, or from
    ``start`` (the stationary carry of a smaller load: the iterates still grow, a
    monotone curve), until the mean settles (the last item: True), or ``windows``, or
    the carry nears the end of ``g``'s length (the convolution is circular there).
    ``back_share`` < 1: only that share of the carry comes back to this slot (the rest
    is routed elsewhere), ``Y' = (S + back_share·Y − q)⁺`` (scaled on the lattice,
    mean-preserving)."""
    qi = math.floor(q + 0.5)
    L = g.size
    rfft, irfft = _real_fft(L)
    gh = rfft(g).copy()
    y = np.zeros(L)
    if start is None:
        y[0] = 1.0
    else:
        y[: min(L, start.size)] = start[:L]
    if _kernels is not None and 0 < qi < L and math.floor(q) + 1 < L and back_share >= 1.0:
        # The same loop compiled (capacity/analytic/_kernels.c): numpy's numbers bit for
        # bit, numpy's own FFT and complex product run by their inner loops from C
        # (_DIRECT_CONV), or else called back once a window (a carry routed elsewhere in
        # part, back_share < 1: the numpy loop).
        out: tuple[NDArray[np.float64], float, float, bool] = _kernels.carry_loop(
            y, float(q), int(retries), int(windows), float(rtol),
            _direct_conv(gh, L) or _conv_callback(rfft, irfft, gh))
        return out
    return _carry_loop(y, q, retries, windows, rtol, rfft, irfft, gh, back_share)


def _carry_loop(y: NDArray[np.float64], q: float, retries: int, windows: int, rtol: float,
                rfft: Callable[[NDArray[np.float64]], NDArray[np.complex128]],
                irfft: Callable[[NDArray[np.complex128]], NDArray[np.float64]],
                gh: NDArray[np.complex128], back_share: float = 1.0
                ) -> tuple[NDArray[np.float64], float, float, bool]:
    """:func:`_carry_law`'s iteration in numpy (``y``: the starting law; ``gh``: the
    window count's transform): the reference of the compiled one."""
    qi = math.floor(q + 0.5)
    L = y.size
    ar = np.arange(L, dtype=np.float64)
    buf = np.empty(L)  # scratch of the inner products (same sums as _dot)
    mean = float(np.multiply(ar, y, out=buf).sum())
    dropped = 0.0
    limit = max(qi + 1, L - qi - 1)  # beyond: the next convolution would wrap
    up = math.floor(q) + 1
    again = ar[up:] - q  # (Y − q)⁺ where positive
    head = L - qi        # the units over q: the next carry's support
    for _ in range(windows):
        over_q = float(np.multiply(again, y[up:], out=buf[up:]).sum())
        back = y
        dropped = 0.0
        if over_q > 0.0 and retries >= 1:
            rho = min(1.0, over_q / max(mean, 1e-300))
            phi = rho ** (retries - 1)
            dropped = phi * over_q
            back = _remap(ar[up:] - phi * again, y[up:], L)
            back[:up] += y[:up]
        if back_share < 1.0:
            back = _remap(ar * back_share, back, L)
        spec = rfft(back)
        spec *= gh
        z = irfft(spec)[qi:]
        nxt = np.zeros(L)
        np.copyto(nxt[:head], z, where=z > 1e-250)  # round-off flushed to 0
        nxt[0] += max(0.0, 1.0 - float(nxt[:head].sum()))
        if float(nxt[limit:].sum()) > 1e-9:
            break  # the carry outgrows the lattice: keep the last law that fitted
        y = nxt
        new = float(np.multiply(ar, y, out=buf).sum())
        if abs(new - mean) <= rtol * new:
            return y, new, dropped, True
        mean = new
    return y, mean, dropped, False


def _pair_joint(pair: _PairLaw, n: float, size: int,
                memo: dict[tuple[int, int], tuple[NDArray[np.complex128],
                                                  NDArray[np.complex128]]] | None = None
                ) -> NDArray[np.float64]:
    """``N`` sessions' joint law of two consecutive windows' counts (``[a, b]``, the
    pair law's lattice, ``size`` points a side): one session's law split mean-preserving
    onto the four nearest points, its transform and log transform (kept in ``memo`` by
    the pair law and the transform's side), the log times the whole sessions, the
    transform once more for a fractional one present with chance ``f`` (as
    :meth:`ClumpWindowModel._log_power`: the log's branch then never matters), back by a
    2-D FFT."""
    k = 1 << math.ceil(math.log2(2 * size))
    key = (id(pair[0]), k)
    hit = None if memo is None else memo.get(key)
    if hit is None:
        a, b, wt = pair
        half = k // 2
        x = np.minimum(a, half - 1.0)
        y = np.minimum(b, half - 1.0)
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = x - x0, y - y0
        x1, y1 = np.minimum(x0 + 1, half - 1), np.minimum(y0 + 1, half - 1)
        one = np.zeros(half * half)
        for xi, yi, share in ((x0, y0, (1 - fx) * (1 - fy)), (x1, y0, fx * (1 - fy)),
                              (x0, y1, (1 - fx) * fy), (x1, y1, fx * fy)):
            one += np.bincount(xi * half + yi, weights=wt * share, minlength=half * half)
        one[0] += max(0.0, 1.0 - float(one.sum()))
        spec = np.fft.rfft2(one.reshape(half, half), (k, k))
        hit = (spec, complex_log(spec))
        if memo is not None:
            memo[key] = hit
    spec, log_t = hit
    whole = math.floor(n + 1e-12)
    f = n - whole
    power = np.exp(whole * log_t)
    if f > 1e-12:
        power = power * (1.0 - f + f * spec)
    joint = np.clip(np.fft.irfft2(power, (k, k))[:size, :size], 0.0, None)
    out: NDArray[np.float64] = joint / float(joint.sum())
    return out


def _pair_carry_law(joint: NDArray[np.float64], q: float, retries: int, ly: int,
                    windows: int = 96, rtol: float = 1e-5,
                    start: NDArray[np.float64] | None = None
                    ) -> tuple[NDArray[np.float64], float, float, bool]:
    """:func:`_carry_law` where a window's fresh count follows the last one's: the
    stationary law of (carry ``Y``, last window's count ``S`` by bins of
    ``_PAIR_BINS``), ``Y' = (S' + Y − q)⁺`` with ``S'`` drawn from ``joint``'s law given
    ``S`` in its bin (a Markov chain of the windows' counts), the calls on their last
    retry leaving as there; ``Y`` on ``0..ly − 1``. ``(law[Y, bin], E[Y], units failing
    per window, settled)``; ``start``: a smaller load's stationary law. With ``joint``
    the product of its marginals it settles where :func:`_carry_law`'s chain settles, to
    the same law (tests/test_analytic_pair_carry.py)."""
    marg = joint.sum(axis=1)
    # The counts a window reaches (the rest under 1e-13), and their bins.
    tail = np.cumsum(marg[::-1])[::-1]
    ms = max(2, int(np.flatnonzero(tail > 1e-13)[-1]) + 1) if (tail > 1e-13).any() else 2
    ms = min(ms, joint.shape[0])
    nb = min(ms, _PAIR_BINS)
    of = np.arange(ms) * nb // ms                  # the bin of each count
    rows = np.zeros((nb, ms))                       # S' by the bin of S
    np.add.at(rows, of, joint[:ms, :ms])
    rows[:, ms - 1] += np.bincount(of, weights=joint[:ms, ms:].sum(axis=1), minlength=nb)
    mass = rows.sum(axis=1)
    tr = np.where(mass[:, None] > 1e-300, rows / np.maximum(mass, 1e-300)[:, None], 0.0)
    tr[mass <= 1e-300, 0] = 1.0
    qi = math.floor(q + 0.5)
    # (Y, S') → (Y', bin of S'), flattened (past the lattice: the last point, where the
    # chain stops as _carry_law's does).
    ys = np.arange(ly)
    to = (np.clip(ys[:, None] + np.arange(ms)[None, :] - qi, 0, ly - 1) * nb
          + of[None, :]).ravel()
    if start is not None and start.shape == (ly, nb):
        law = start.copy()
    else:
        law = np.zeros((ly, nb))
        law[0] = np.bincount(of, weights=marg[:ms], minlength=nb)
        law[0] /= float(law[0].sum())
    ar = ys.astype(np.float64)
    up = math.floor(q) + 1
    limit = max(qi + 1, ly - qi - 1)
    mean = float(_dot(ar, law.sum(axis=1)))
    dropped = 0.0
    cols = np.arange(nb)[None, :]
    for _ in range(windows):
        y = law.sum(axis=1)
        over_q = float(_dot(np.maximum(ar[up:] - q, 0.0), y[up:]))
        dropped = 0.0
        back = law
        if over_q > 0.0 and retries >= 1:
            phi = min(1.0, over_q / max(mean, 1e-300)) ** (retries - 1)
            dropped = phi * over_q
            v = ar[up:] - phi * (ar[up:] - q)
            lo = np.floor(v).astype(np.int64)
            fr = (v - lo)[:, None]
            back = np.zeros_like(law)
            back[:up] = law[:up]
            for at, share in ((lo, 1.0 - fr), (np.minimum(lo + 1, ly - 1), fr)):
                back += np.bincount((at[:, None] * nb + cols).ravel(),
                                    weights=(law[up:] * share).ravel(),
                                    minlength=ly * nb).reshape(ly, nb)
        nxt = np.bincount(to, weights=(back @ tr).ravel(), minlength=ly * nb).reshape(ly, nb)
        nxt = np.where(nxt > 1e-250, nxt, 0.0)  # round-off flushed to 0
        if float(nxt[limit:].sum()) > 1e-9:
            break  # the carry outgrows the lattice: keep the last law that fitted
        law = nxt / float(nxt.sum())
        new = float(_dot(ar, law.sum(axis=1)))
        if abs(new - mean) <= rtol * new:
            return law, new, dropped, True
        mean = new
    return law, mean, dropped, False


_kernels: Any
try:  # the compiled iteration (setup.py builds it with the simulator)
    from capacity.analytic import _kernels
except ImportError:  # pragma: no cover - a build without it: the numpy loop
    _kernels = None

_pfu: Any
try:  # numpy >= 2: the transforms np.fft wraps (numpy 1.x: np.fft itself)
    from numpy.fft import _pocketfft_umath as _pfu  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - numpy 1.x
    _pfu = None


def _conv_callback(rfft: Callable[[NDArray[np.float64]], NDArray[np.complex128]],
                   irfft: Callable[[NDArray[np.complex128]], NDArray[np.float64]],
                   gh: NDArray[np.complex128]
                   ) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """``carry_loop``'s convolution as a Python callback: ``irfft(rfft(back) · gh)``
    (``_real_fft``'s transforms, the product in place)."""
    def conv(back: NDArray[np.float64]) -> NDArray[np.float64]:
        spec = rfft(back)
        spec *= gh
        return irfft(spec)
    return conv


def _direct_conv(gh: NDArray[np.complex128], n: int) -> tuple[Any, ...] | None:
    """``carry_loop``'s convolution by numpy's own inner loops (the ufuncs ``_real_fft``
    and ``*=`` call: ``(gh, rfft, irfft, multiply)``), or None: the Python callback.

    The callback's three ufunc calls cost ~15 µs a window, most of it the ufunc
    machinery (a 512-point transform itself ~2 µs); tool-agent's answer runs ~2,100
    windows. Used once a probe (:func:`_direct_conv_agrees`) finds it gives the
    callback's numbers on this machine, bit for bit."""
    if _pfu is None or _DIRECT_CONV[0] is False:
        return None
    spec = (gh, _pfu.rfft_n_even if n % 2 == 0 else _pfu.rfft_n_odd, _pfu.irfft, np.multiply)
    if _DIRECT_CONV[0] is None:
        _DIRECT_CONV[0] = _direct_conv_agrees()
    return spec if _DIRECT_CONV[0] else None


# [None: not probed yet, True/False: the probe's verdict]
_DIRECT_CONV: list[bool | None] = [None]


def _direct_conv_agrees() -> bool:
    """Whether ``carry_loop`` gives the same bytes with numpy's inner loops called
    directly as with the Python callback, on carries of both lattice parities (a build
    or numpy whose loops cannot be found: False)."""
    rng = np.random.default_rng(13)
    for n in (64, 75):
        g = rng.random(n) * (rng.random(n) < 0.4)
        g[n // 2:] = 0.0  # mean ~n/4 against q = n/3: a carry that runs every window
        g /= g.sum()
        rfft, irfft = _real_fft(n)
        gh = rfft(g).copy()
        y = np.zeros(n)
        y[0] = 1.0
        spec = (gh, _pfu.rfft_n_even if n % 2 == 0 else _pfu.rfft_n_odd, _pfu.irfft,
                np.multiply)
        try:
            got = _kernels.carry_loop(y, n / 3.0, 2, 12, 0.0, spec)
        except (TypeError, ValueError):
            return False
        want = _kernels.carry_loop(y, n / 3.0, 2, 12, 0.0, _conv_callback(rfft, irfft, gh))
        if got[0].tobytes() != want[0].tobytes() or got[1:] != want[1:]:
            return False
    return True


def _real_fft(n: int) -> tuple[Callable[[NDArray[np.float64]], NDArray[np.complex128]],
                               Callable[[NDArray[np.complex128]], NDArray[np.float64]]]:
    """(rfft, irfft) of length ``n``, the same numbers as ``np.fft.rfft(a, n)`` and
    ``np.fft.irfft(a, n)`` but writing into two buffers reused call after call (each
    result is overwritten by the next call). A loop of short transforms pays np.fft's
    wrapper (~10 µs a call, as much as a 1,024-point transform) otherwise."""
    if _pfu is None:
        return (lambda a: np.fft.rfft(a, n)), (lambda a: np.fft.irfft(a, n))
    spec = np.empty(n // 2 + 1, dtype=np.complex128)
    real = np.empty(n)
    fwd = _pfu.rfft_n_even if n % 2 == 0 else _pfu.rfft_n_odd
    inv = _pfu.irfft
    scale = np.reciprocal(n, dtype=np.float64)  # np.fft's "backward" norm of the inverse

    def rfft(a: NDArray[np.float64]) -> NDArray[np.complex128]:
        out: NDArray[np.complex128] = fwd(a, 1, out=spec)
        return out

    def irfft(a: NDArray[np.complex128]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = inv(a, scale, out=real)
        return out

    return rfft, irfft


def _remap(values: NDArray[np.float64], probs: NDArray[np.float64], size: int
           ) -> NDArray[np.float64]:
    """The law ``probs`` of lattice points moved to real ``values`` ≥ 0, each split
    between its two neighbours (mean-preserving), on ``size`` points."""
    lo = np.floor(values).astype(np.int64)
    frac = values - lo
    hi = np.minimum(lo + 1, size - 1)
    out: NDArray[np.float64] = np.bincount(lo, probs * (1.0 - frac), size).astype(
        np.float64, copy=False)  # (float already: no copy)
    out += np.bincount(hi, probs * frac, size)
    return out


def _lindley(g: NDArray[np.float64], q: float, windows: int = 30, rtol: float = 1e-5,
             thin: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None
             ) -> tuple[NDArray[np.float64], float]:
    """Law of the carried load after ``windows`` windows of ``Y' = (S + Y − q)⁺`` from
    ``Y = 0`` (``S ~ g``, ``q`` lattice units), and its mean.

    Iterated from empty, the carry grows towards the stationary law (reached within a few
    windows below saturation, when the iteration stops early); a retried call is carried
    at most ``max_retries`` windows, so at and above saturation the carry is bounded by
    the window count instead (the callers pass ``2·(m + 1)``). The iterates grow with the
    load, so the ceiling search sees a monotone curve. The convolution is circular at the
    length of ``g``, whose tail beyond it is negligible by construction. ``thin`` maps the
    carry to the part that comes back into the next window (all of it by default; a
    fleet's spilled retries are partly admitted upstream).
    """
    # A fractional allowance (a request bucket 2.5 deep) is not rounded to a whole step
    # (3 took a fan-out of three whole, where the stop-loss beside it turned half of one
    # away): the excess over ⌊q⌋ is moved down by the fraction f, spread over its two
    # steps (mean-preserving, as Distribution.lattice_pmf spreads a value).
    qi = math.floor(q + 1e-9)
    f = q - qi if q - qi > 1e-9 else 0.0
    L = g.size
    rfft, irfft = _real_fft(L)  # (np.fft's numbers into reused buffers)
    gh = rfft(g).copy()
    k = np.arange(L - qi, dtype=np.float64)
    y = np.zeros(L)
    y[0] = 1.0
    mean = 0.0
    for _ in range(windows):
        carried = thin(y) if thin is not None else y  # the carry that comes back
        z = irfft(rfft(carried[:L]) * gh)
        over = np.where(z[qi:] > 1e-250, z[qi:], 0.0)
        if f > 0.0:
            # (S + Y − q)⁺ = (j − f)⁺ for the excess j over ⌊q⌋: j − 1 with chance f.
            moved = (1.0 - f) * over
            moved[:-1] += f * over[1:]
            moved[0] = 0.0
            over = moved
        y = np.zeros(L)
        y[: over.size] = over
        y[0] += max(0.0, 1.0 - float(over.sum()))
        new = _dot(k, over)
        if new - mean <= rtol * new:
            return y, new
        mean = new
    return y, mean


def build(timing: TurnTiming, costs: dict[int, CallCost | None], window_s: float,
          sliding: bool, h: float, q_lat: float, cycle_s: float, units_per_turn: float,
          retry: RetryModel, exact_calls: dict[int, float] | None = None,
          reuse: bool = False) -> ClumpWindowModel:
    """The clumped window model of one constraint (charges ``costs`` by ``id(call)``).

    ``exact_calls`` (by ``id(call)``): the exact mean launches per turn of each call.
    A call the turn sample never launches (one turn in 10^6 makes it) then still
    carries its exact mean load, as single-call clumps launched at its exact rate (the
    independent-events window model) instead of being lost — or, when the sample holds
    no charged launch at all, leaving a model that sees no load.

    ``reuse``: ``costs`` is a long-lived dict (a constraint's): everything but the cycle
    is remembered with the sample, so another think time (the sweep) or a rebuild
    (the joint ceiling) only divides by its cycle.
    """
    def parts() -> _Parts:
        return _build_parts(timing, costs, window_s, sliding, h, q_lat, units_per_turn,
                            retry, exact_calls)

    if reuse:
        key = ("build", id(costs), window_s, sliding, h, q_lat, units_per_turn,
               retry.max_retries, retry.honour_retry_after, retry.counts_rejected,
               retry.abort_turn, retry.backoff_s, retry.rejection_latency_s,
               tuple(sorted((exact_calls or {}).items())))
        held, got = timing.memo(key, lambda: (costs, parts()))
        # (The dict is held with its parts, so its id cannot name another one.)
        assert held is costs
    else:
        got = parts()
    p_single = got.load / cycle_s
    if got.f0 is not None:
        p_single *= 1.0 - got.f0
    c2 = got.cross / cycle_s if p_single > 0 else 0.0
    mu_units = got.mu_units
    # Divided twice: mu_units**2 underflows to 0 for a charge of ~1e-160 units or less.
    pb2 = p_single**2 - c2 / mu_units / mu_units if mu_units > 0 else 0.0
    p_binomial = min(p_single, 1.0, math.sqrt(max(pb2, 0.0)))
    sa = got.session
    # The cycle sets where a session's turns fall: its own window law (_session_law),
    # and the laws of a window's first fractions for aborted turns (_prefix_laws).
    session_pmf = (None if not _SESSION_LAW else _with_missed(
        _session_law(timing, sa.relevant, sa.costs, window_s, cycle_s, sa.q, sa.h,
                     sa.sampled_load / cycle_s),
        [(r / cycle_s, pmf) for r, pmf in sa.missed]))
    prefix_pmfs = (None if got.fields["aborted"] is None or sa.missed or not _SESSION_LAW
                   else _prefix_laws(timing, sa.relevant, sa.costs, window_s, cycle_s, sa.q,
                                     sa.h, sa.sampled_load / window_s / cycle_s))
    pair = (None if sliding or not retry.retries or not _SESSION_LAW or q_lat > _PAIR_POINTS
            else _pair_law(timing, sa.relevant, sa.costs, window_s, cycle_s, sa.q, sa.h,
                           sa.sampled_load / cycle_s))
    return ClumpWindowModel(
        p_single=p_single, p_binomial=p_binomial,
        mean_units=got.units_per_turn * window_s / cycle_s,
        calls_per_window=got.calls_per_turn * window_s / cycle_s,
        events_per_window=got.events_per_turn * window_s / cycle_s,
        turns_per_window=window_s / cycle_s, session_pmf=session_pmf,
        prefix_pmfs=prefix_pmfs, pair_law=pair,
        reserved=any(c is not None and c.output_fixed is not None for c in costs.values()),
        **got.fields)


@dataclass
class _Parts:
    """A constraint's window model but for the cycle (see :func:`build`)."""

    load: float                     # Σ length · scale: P times the cycle (s)
    f0: float | None                # a clump's share below one step (folded into P)
    cross: float                    # C₂ times the cycle
    mu_units: float                 # mean clump (units)
    calls_per_turn: float
    events_per_turn: float
    fields: dict[str, Any]          # the rest of ClumpWindowModel's fields
    units_per_turn: float           # the load of the calls that fit (units per turn)
    session: _SessionArgs


def _build_parts(timing: TurnTiming, costs: dict[int, CallCost | None], window_s: float,
                 sliding: bool, h: float, q_lat: float, units_per_turn: float,
                 retry: RetryModel, exact_calls: dict[int, float] | None) -> _Parts:
    specs = timing.specs
    pmfs: list[NDArray[np.float64] | None] = []
    means = np.zeros(len(specs))
    never = np.zeros(len(specs))  # P(charge > q): the call never fits, never charges
    q_units = q_lat * h
    for k, spec in enumerate(specs):
        cost = costs.get(id(spec))
        if cost is None or cost.mean <= 0:
            pmfs.append(None)
            continue
        pmf, never[k] = _fitting(cost.pmf(h), q_lat)
        pmfs.append(pmf)
        means[k] = cost.mean if never[k] <= 0 else float(_dot(np.arange(pmf.size), pmf)) * h
    # The load the calls that fit carry (the workload's figure counts every charge).
    full_means = np.array([c.mean if (c := costs.get(id(s))) is not None else 0.0
                           for s in specs])
    length, sigs = timing.runs(window_s)
    relevant = [k for k, p in enumerate(pmfs) if p is not None]
    sub = sigs[:, relevant] if sigs.size else np.zeros((0, len(relevant)), dtype=np.int64)
    keep = sub.sum(axis=1) > 0
    length, sub = length[keep], sub[keep]
    # Merge signatures that differ only in calls this constraint does not charge.
    uniq, inv = np.unique(sub, axis=0, return_inverse=True)
    length = np.bincount(inv.ravel(), weights=length,
                         minlength=uniq.shape[0]).astype(np.float64)
    rel_means = means[relevant]
    rel_pmfs = [p for p in pmfs if p is not None]  # in the order of ``relevant``
    col_costs = [costs[id(specs[k])] for k in relevant]
    exact = exact_calls or {}
    # Charged calls the sample does not even name (a fan-out of count 0 but once in
    # 10^6 turns is never walked): columns of their own, absent from every sampled turn.
    named = {id(specs[k]) for k in relevant}
    extra = [i for i, c in exact.items() if c > 0 and i not in named
             and (cost := costs.get(i)) is not None and cost.mean > 0]
    col_ids = [id(specs[k]) for k in relevant] + extra
    extra_means: list[float] = []
    extra_never: list[float] = []
    for i in extra:
        cost = costs[i]
        assert cost is not None
        pmf, nf = _fitting(cost.pmf(h), q_lat)
        rel_pmfs.append(pmf)
        col_costs.append(cost)
        extra_means.append(float(_dot(np.arange(pmf.size), pmf)) * h if nf > 0 else cost.mean)
        extra_never.append(nf)
    rel_means = np.concatenate([rel_means, np.asarray(extra_means, dtype=np.float64)])
    uniq = np.concatenate([uniq, np.zeros((uniq.shape[0], len(extra)), dtype=uniq.dtype)],
                          axis=1)
    units_sig = uniq @ rel_means
    sampled = float(_dot(length, units_sig))
    seen = uniq.T @ length
    col_never = np.concatenate([never[relevant], np.asarray(extra_never, dtype=np.float64)])
    if col_never.any():
        # Calls charged more than the allowance are refused on every attempt and charge
        # nothing: the window count carries only the calls that fit.
        every = np.concatenate([full_means[relevant],
                                [c.mean if c is not None else 0.0
                                 for c in col_costs[len(relevant):]]])
        sampled_full = float(_dot(length, uniq @ every))
        units_per_turn *= sampled / sampled_full if sampled_full > 0 else 1.0
    missed = [j for j, i in enumerate(col_ids) if seen[j] <= 0 and exact.get(i, 0.0) > 0]
    units_missed = float(sum(exact[col_ids[j]] * rel_means[j] for j in missed))
    rest = max(units_per_turn - units_missed, 0.0)
    # The sample's launch patterns carry the load the missed calls do not; the missed
    # calls their exact mean (E[calls per turn] × E[charge]).
    sample_scale = rest * window_s / sampled if sampled > 0 else 0.0
    scale = sample_scale
    if missed:
        if scale <= 0:  # no sampled load left: the missed calls are all there is
            scale = 1.0
            length = np.zeros_like(length)
        rows = np.zeros((len(missed), uniq.shape[1]), dtype=uniq.dtype)
        rows[np.arange(len(missed)), missed] = 1
        uniq = np.concatenate([uniq, rows], axis=0)
        length = np.concatenate(
            [length, [exact[col_ids[j]] * window_s / scale for j in missed]])
    load = float(length.sum()) * scale
    folded: float | None = None
    # Clump law: Σ_sig weight · (⊛_k f_k^{*m_k}) on the lattice.
    size = int(max((int(uniq[i] @ np.array([p.size - 1 for p in rel_pmfs])) + 1
                    for i in range(uniq.shape[0])), default=1))
    weights = length / length.sum() if length.sum() > 0 else length
    if all(p.size == 2 and p[0] == 0.0 for p in rel_pmfs):  # requests: a point mass each
        clump = np.zeros(size)
        np.add.at(clump, uniq.sum(axis=1), weights)
    else:
        L = 1 << max(4, math.ceil(math.log2(size)))
        fh = [np.fft.rfft(p, L) for p in rel_pmfs]
        acc = np.zeros(L // 2 + 1, dtype=np.complex128)
        for i in range(uniq.shape[0]):
            term = np.full(L // 2 + 1, weights[i], dtype=np.complex128)
            for j, mcount in enumerate(uniq[i]):
                if mcount:
                    term *= fh[j] ** int(mcount)
            acc += term
        clump = np.clip(np.fft.irfft(acc, L)[:size], 0.0, None)
        clump /= clump.sum()
        # A clump smaller than a step lands on 0 with the mass that keeps its mean (the
        # lattice is mean-preserving): that is thinning, not a smaller clump. Fold it into
        # P (and P', see below) instead of renormalising, which would inflate the mean.
        f0 = float(clump[0])
        if 0.0 < f0 < 1.0:
            clump[0] = 0.0
            clump /= clump.sum()
            folded = f0
    mu_lat = float(_dot(np.arange(clump.size), clump))
    # Finite population: match the exact second moment of one session's window count.
    cross = timing.cross_moment(window_s, means) * sample_scale**2 if load > 0 else 0.0
    mu_units = mu_lat * h
    # One call's charge (mixture over the calls, by how often each is launched).
    launches = np.array([float(uniq[:, j] @ length) for j in range(uniq.shape[1])])
    call_pmf = np.zeros(max((p.size for p in rel_pmfs), default=1))
    for j, p in enumerate(rel_pmfs):
        call_pmf[: p.size] += launches[j] / launches.sum() * p
    kc = np.arange(call_pmf.size)
    e_b = float(_dot(kc, call_pmf))
    is_requests = all(p.size == 2 and p[0] == 0.0 for p in rel_pmfs)
    # Which calls are turned away depends on the charges themselves, not on their lattice
    # spread: a 110-token call on a 2,441-token step is 0 or 1 step, which would make the
    # rejected calls look 22x larger than the average (κ = 0.045 instead of 1).
    hf, fine = _fine_lattice(col_costs, h)
    fine = [_fitting(p, q_units / hf)[0] for p in fine]
    never_fit = float(_dot(launches, col_never) / launches.sum()) if launches.sum() > 0 else 0.0
    fine_call = np.zeros(max((p.size for p in fine), default=1))
    for j, p in enumerate(fine):
        fine_call[: p.size] += launches[j] / launches.sum() * p
    kappa = 1.0 if is_requests or e_b <= 0 else _size_bias(fine_call)
    if sliding:
        crossing = None
    elif is_requests:
        crossing = Crossing(np.ones(1), (q_lat - math.floor(q_lat + 1e-9)) * h, h,
                            np.array([0.0, 1.0]), h)
    else:
        crossing = timing.memo(
            ("crossing", q_lat * h, hf, fine_call.tobytes()), lambda: first_fit_crossing(
                fine_call, hf, q_lat * h, _fit_points(point_charges(col_costs, launches),
                                                      q_lat * h)))
    # Own-turn load and earlier launches come from the sample's turns only (a missed
    # call is too rare to shift them; its columns carry no earlier launches).
    # These depend on the turns and the charges only, not on the think time: computed
    # once per sample (the think-time sweep and the stability check rebuild the model).
    charges = b"".join(p.tobytes() for p in rel_pmfs[: len(relevant)])
    memo_key = (window_s, tuple(relevant), charges)
    own, single, prior, arrival = (timing.memo(("own", *memo_key), lambda: _own_prior(
        timing, relevant, rel_pmfs[: len(relevant)], window_s)) if sliding
        else (np.ones(1), False, np.ones(1), None))
    if missed:
        # Calls the turn sample never launched are in the charge law, not in the joint
        # one (a 40,000-token call in 1 % of turns: the joint law's charge-weighted
        # share would lose it, and a turn's calls admitted in part be scaled 5x).
        arrival = None
    # Only a failure without retries aborts a turn often enough to thin the load.
    hist, counts = (timing.memo(("prior", tuple(relevant)),
                                lambda: _prior_launches(timing, relevant))
                    if retry.max_retries == 0 and retry.abort_turn
                    else (np.ones(1), np.zeros((1, len(relevant)))))
    # A restarted turn's first call on this quota meets the log that refused while the
    # refusal's content is still in it: less than a window after the refusal.
    reach = window_s - (retry.rejection_latency_s or 0.0)
    saving = (timing.memo(("saving", tuple(relevant), reach),
                          lambda: _abort_saving(timing, relevant, reach))
              if retry.max_retries == 0 and retry.abort_turn
              else (np.zeros(0), np.zeros((0, 1)), np.zeros((0, 1)), np.zeros(0),
                    np.zeros((2, 1)), np.zeros((0, 0, 1))))
    # The charge laws of a restarted turn's first launch (one of its calls) and of the
    # call whose refusal restarted it.
    restart_pmf = np.zeros((2, max((q.size for q in rel_pmfs[: len(relevant)]), default=1)))
    for i in range(2):
        restart_w = float(saving[4][i].sum())
        for j, q in enumerate(rel_pmfs[: len(relevant)] if restart_w > 0 else []):
            restart_pmf[i, : q.size] += saving[4][i][j] / restart_w * q
    full = np.zeros((counts.shape[0], len(col_ids)))
    if relevant:
        full[:, : len(relevant)] = counts[:, : len(relevant)]
    counts = full
    calls_per_turn = float(launches.sum()) / window_s * scale  # launches per turn
    if calls_per_turn <= 0.0 and col_never.any():
        # No call fits (the units' scale is 0): the calls are still made, each refused
        # (a population of them beside others is weighed by them, populations.blend).
        calls_per_turn = math.fsum(exact.get(i, 0.0) for i in col_ids)
    # Launch instants (a fan-out's copies are one): what a sliding log's expiry frees.
    event_pmf, events_per_turn = (timing.memo(("events", *memo_key), lambda: _event_law(
        timing, relevant, rel_pmfs[: len(relevant)])) if sliding else (np.zeros(1), 0.0))
    # A refused call whose turn goes on brings its turn's next stages into its window.
    cascade = (timing.memo(("cascade", tuple(relevant), retry.rejection_latency_s),
                           lambda: _cascade_law(timing, [int(k) for k in relevant],
                                                float(retry.rejection_latency_s or 0.0)))
        if (retry.rejection_latency_s is not None
            and retry.max_retries == 0 and not retry.abort_turn) else None)
    aborted = (timing.memo(("aborted", tuple(relevant), window_s, q_units, h),
                           lambda: _abort_law(timing, [int(k) for k in relevant],
                                              [c for c in col_costs[: len(relevant)]
                                               if c is not None], q_units, h, window_s))
               # Requests: a counter full at one instant stays full to the window's end
               # (token charges: a smaller later call may still fit the room left). With
               # retries the turn waits for its call (_deferred_thinning), unless it
               # goes on at once when they are spent (``continue``, backing off).
               if (ABORT_SAVING and is_requests and not sliding
                   and ((retry.max_retries == 0 and retry.abort_turn)
                        or (_DEFERRED_STAGES and retry.max_retries > 0
                            and (retry.abort_turn or retry.honour_retry_after))))
               else None)
    abort_gaps = (timing.memo(("abort-gaps", tuple(relevant), q_units,
                               tuple(id(c) for c in col_costs[: len(relevant)])),
                              lambda: _abort_gaps(
        timing, [int(k) for k in relevant],
        [c for c in col_costs[: len(relevant)] if c is not None], q_units))
        # (With ``continue`` a refused call's turn goes on in the window: its cascade.)
        if _ABORT_TOKENS and not is_requests and not sliding and retry.abort_turn
        else None)
    # Storms only arise where rejections are logged and retried (requests: whole calls).
    storm = (timing.memo(("storm", *memo_key, reach), lambda: _storm_launches(
        timing, relevant, rel_pmfs[: len(relevant)], saving[5]))
        if sliding and retry.counts_rejected and (
            retry.retries or retry.storms_without_retries)
        else (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0),
              np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
              np.zeros(0), np.zeros(0, np.int64)))
    session = _SessionArgs(
        relevant, [c for c in col_costs[: len(relevant)] if c is not None], q_units, h,
        rest * window_s / h, [(exact[col_ids[j]] * window_s, rel_pmfs[j]) for j in missed])
    return _Parts(load, folded, cross, mu_units, calls_per_turn, events_per_turn, dict(
        h=h, q_lat=q_lat, window_s=window_s, sliding=sliding, clump_pmf=clump,
        call_pmf=call_pmf, own_pmf=own, single_launches=single, prior_pmf=prior,
        arrival_pmf=None if arrival is None else arrival[0],
        arrival_units=None if arrival is None else arrival[1],
        arrival_sites=None if arrival is None else arrival[3],
        train_gap=1.0 if arrival is None else arrival[2],
        retry=retry, size_bias=kappa,
        prior_hist=hist, prior_counts=counts,
        fail_odds=_fail_odds(fine, fine_call, launches, is_requests),
        event_pmf=event_pmf, crossing=crossing, cascade=cascade, storm_first=storm[0],
        storm_gaps=storm[1], storm_sizes=storm[2], storm_ends=storm[3], aborted=aborted,
        abort_gaps=abort_gaps,
        storm_whole=storm[4], storm_rest=storm[5], storm_offsets=storm[7],
        storm_turn=storm[8],
        storm_restart=storm[6] if storm[6].any() else np.zeros(0, np.int64),
        never_fit=never_fit, saving_weight=saving[0], saving_before=saving[1],
        saving_through=saving[2],
        restart_weight=saving[3] if saving[3].any() else np.zeros(0), restart_pmf=restart_pmf),
        units_per_turn, session)


@dataclass
class _SessionArgs:
    """What the session law (:func:`_session_law`) of a constraint needs besides the
    cycle: the charged spec indices and their costs, the allowance ``q`` (units), the
    lattice step, the sampled calls' load per window and cycle (lattice units·s) and the
    missed calls' (launches per window and cycle, s; charge law)."""

    relevant: list[int]
    costs: list[CallCost]
    q: float
    h: float
    sampled_load: float
    missed: list[tuple[float, NDArray[np.float64]]]


# Switches for ablations (the accuracy benchmark's before/after): the session law of the
# window count, and the first refused instants of aborted turns in fixed windows.
_SESSION_LAW = True
ABORT_SAVING = True
# A token window's turns refused after it fills make only their first call there
# (:meth:`ClumpWindowModel.offered_after`). Off: a review found it thins the later calls
# of turns whose earlier call still fit the room left (first-fit admits small calls after
# the window fills), optimistic where charges are mixed, and its share falls with N far
# over the allowance (the calls never made stay in the denominator). Session 50's
# figures, `benchmarks/RESULTS.md`; on, tool-agent over 60 s windows is right.
_ABORT_TOKENS = False
# Seed of the input tokens drawn for the session law's launches (the latencies' draws,
# outputs included, are the timing sample's).
TIMING_INPUT_SEED = 20261201


def _session_law(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                 w: float, cycle_s: float, q: float, h: float, mean_lat: float,
                 turns: int = 0) -> NDArray[np.float64] | None:
    """One session's units in a window of ``w`` s at a uniform phase (lattice pmf).

    The sampled turns are laid end to end (start to next start: the sampled gaps, the
    pauses scaled to the mean cycle ``cycle_s``) on a circle, each launch charged from
    its own draws (the output tokens its latency was drawn with: a long output is a long
    call, so a session's later launches come later; the input from a fixed-seed draw),
    and a window slid over it: the law of the units it holds, every turn at once. The
    sum over N independent sessions is then exact (by FFT), where the binomial–Poisson
    mixture gives a window holding more than one turn a Poisson tail. Charges above the
    allowance ``q`` count 0 (never admitted). ``mean_lat``: the exact mean (lattice
    units) the law is scaled to. None when the sample cannot say (no draws kept).
    """
    key = ("session", w, cycle_s, q, h, turns, tuple(relevant), tuple(id(c) for c in costs))
    return timing.memo(key, lambda: _session_law_uncached(
        timing, relevant, costs, w, cycle_s, q, h, mean_lat, turns))


def _prefix_laws(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                 w: float, cycle_s: float, q: float, h: float, rate_lat: float
                 ) -> tuple[NDArray[np.float64], ...] | None:
    """One session's law of the units launched in the first fraction ``u`` of a fixed
    window, at the nodes ``u = 1 − _CASCADE_LEFT``: the session law of a window ``u·w``
    long (``rate_lat``: the exact load, lattice units per second)."""
    out = []
    for u in 1.0 - _CASCADE_LEFT:
        if u * w <= 0:
            out.append(np.ones(1))
            continue
        # A third of the sample: these laws only place the abort correction.
        g = _session_law(timing, relevant, costs, u * w, cycle_s, q, h, rate_lat * u * w,
                         turns=max(_MIN_PREFIX_TURNS, timing.n // 3))
        if g is None:
            return None
        out.append(g)
    return tuple(out)


def _event_charges(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                   q: float) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Per grouped launch instant (:meth:`TurnTiming.groups`, (n, G)): the units it is
    charged and its charged calls (the launches of one instant are adjacent in a row)."""
    key = ("event-charges", q, tuple(relevant), tuple(id(c) for c in costs))
    return timing.memo(key, lambda: _event_charges_uncached(timing, relevant, costs, q))


def _event_charges_uncached(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                            q: float) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    x = _launch_charges(timing, relevant, costs, q)
    if x is None:
        return None
    gt, _ = timing.groups()
    cells: NDArray[np.int64] = timing.memo(("group-cells",), _no_cells)
    # x > 0 only on valid launches (pads charge 0).
    on = x > 0
    # Every launch charged (a fan-out's copies): the same records without two gathers.
    flat, xs = (cells.reshape(-1), x.reshape(-1)) if on.all() else (cells[on], x[on])
    size = gt.size
    units: NDArray[np.float64] = np.asarray(
        np.bincount(flat, weights=xs, minlength=size), dtype=np.float64).reshape(gt.shape)
    calls: NDArray[np.float64] = np.asarray(
        np.bincount(flat, minlength=size), dtype=np.float64).reshape(gt.shape)
    return units, calls


def _no_cells() -> NDArray[np.int64]:
    raise RuntimeError("TurnTiming.groups() keeps the launches' event numbers")


def _launch_charges(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                    q: float) -> NDArray[np.float64] | None:
    """Units each sampled launch is charged (n, R): 0 for uncharged calls and pads."""
    out = np.zeros(timing.times.shape)
    if timing.outs.shape != timing.times.shape:
        return None
    rng = np.random.default_rng(TIMING_INPUT_SEED)
    flat_out, flat_outs = out.reshape(-1), np.ascontiguousarray(timing.outs).reshape(-1)
    # Many charged calls (specs): each call's launches as a run of one stable sort
    # (the same launches, in the same row-major order as a mask) instead of a mask of
    # the whole sample per call.
    runs = None
    if len(relevant) > 4:
        calls = timing.calls.reshape(-1)
        order = np.argsort(calls, kind="stable")
        runs = (order, calls[order])
    for k, cost in zip(relevant, costs, strict=True):
        on: NDArray[np.bool_] | NDArray[np.int64] | slice
        if runs is None:
            mask = (timing.calls == k).reshape(-1)
            m = int(mask.sum())
            # Every launch (a fan-out's copies): views, no gathers.
            on = slice(None) if m == mask.size else mask
        else:
            a, b = np.searchsorted(runs[1], [k, k + 1])
            on = runs[0][a:b]
            m = int(b - a)
        if not m:
            continue
        # A fixed part is added as a scalar: at 10^6 launches (a 300-call fan-out) the
        # arrays of constants cost more than the rest of the window law. (A fixed law
        # draws nothing from rng, so the other calls' samples are unchanged.)
        fixed = 0.0
        x: NDArray[np.float64] | None = None
        if cost.kind == "requests":
            fixed = 1.0
        else:
            if cost.input is not None and cost.uncached > 0:
                if cost.input.kind == "fixed":
                    fixed += float(np.rint(cost.input.params[0])) * cost.uncached
                else:
                    x = np.rint(cost.input.sample(rng, m)) * cost.uncached
            if cost.output_fixed is not None:
                fixed += cost.output_fixed
            elif cost.output is not None:
                o = np.minimum(flat_outs[on], cost.output_cap)
                x = o if x is None else x + o
        if x is None:
            flat_out[on] = 0.0 if fixed > q else fixed
            continue
        if fixed:
            x += fixed
        flat_out[on] = np.where(x > q, 0.0, x) if x.max() > q else x
    return out


def _timeline(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
              cycle_s: float, q: float, h: float, turns: int = 0
              ) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    """One session's charged launches laid end to end: (times, s, sorted; units,
    lattice; the circle's length, s) — see :func:`_session_law`; ``turns`` > 0: only
    the sample's first ``turns`` turns."""
    key = ("timeline", cycle_s, q, h, turns, tuple(relevant), tuple(id(c) for c in costs))
    return timing.memo(key, lambda: _timeline_uncached(timing, relevant, costs, cycle_s,
                                                       q, h, turns))


def _timeline_uncached(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                       cycle_s: float, q: float, h: float, turns: int
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    fixed = timing.memo(("timeline-fixed", q, h, turns, tuple(relevant),
                         tuple(id(c) for c in costs)),
                        lambda: _timeline_fixed(timing, relevant, costs, q, h, turns))
    if fixed is None:
        return None
    rows, offsets, c, lat, gap, extra, e_mean, l_mean, g_mean = fixed
    if e_mean > 0 and cycle_s >= l_mean:
        gap = lat + extra * ((cycle_s - l_mean) / e_mean)
    elif g_mean > 0:
        gap = gap * (cycle_s / g_mean)
    start = np.concatenate([[0.0], np.cumsum(gap)[:-1]])
    total = float(gap.sum())
    if total <= 0 or not c.size:
        return None
    t = start[rows] + offsets
    # Turns that end before the next starts leave the launches in order already (the
    # stable sort's order is then the identity).
    if t.size > 1 and not bool((t[1:] >= t[:-1]).all()):
        order = np.argsort(t, kind="stable")
        return t[order], c[order], total
    return t, c, total


def _timeline_fixed(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                    q: float, h: float, turns: int
                    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
                               NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                               float, float, float] | None:
    """What :func:`_timeline` needs whatever the cycle: the charged instants' turns,
    offsets (s) and units (lattice), and the turns' latencies, gaps and their means."""
    ev = _event_charges(timing, relevant, costs, q)
    if ev is None:
        return None
    x = ev[0]
    gt, _ = timing.groups()
    k = turns if 0 < turns < timing.n else timing.n
    fin = np.isfinite(gt[:k]) & (x[:k] > 0)
    lat, gap = timing.latency[:k], timing.gap[:k]
    extra = gap - lat
    rows = np.nonzero(fin)[0]
    return (rows, gt[:k][fin], x[:k][fin] / h, lat, gap, extra, float(extra.mean()),
            float(lat.mean()), float(gap.mean()))


def _session_law_uncached(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                          w: float, cycle_s: float, q: float, h: float, mean_lat: float,
                          turns: int) -> NDArray[np.float64] | None:
    if not relevant or mean_lat <= 0 or timing.n < 2:
        return None
    line = _timeline(timing, relevant, costs, cycle_s, q, h, turns)
    if line is None or line[2] <= w:
        return None
    t, c, total = line
    fn = getattr(_kernels, "session_law", None)  # (None: no build, or one before it)
    if fn is not None:
        # Compiled (capacity/analytic/_kernels.c): the steps below in their order, the
        # two sorted runs merged, the sums sequential or numpy's pairwise as here.
        try:
            law: NDArray[np.float64] | None = fn(t, c, float(total), float(w), float(mean_lat))
        except ValueError:  # (not contiguous float64, or a nan: numpy's way)
            pass
        else:
            if law is not None:
                law.setflags(write=False)
            return law
    return _session_law_numpy(t, c, total, w, mean_lat)


def _session_law_numpy(t: NDArray[np.float64], c: NDArray[np.float64], total: float,
                       w: float, mean_lat: float) -> NDArray[np.float64] | None:
    # Circle: the windows that start near the end hold the first launches, once more.
    wrap = int(np.searchsorted(t, w, side="right"))
    t = np.concatenate([t, t[:wrap] + total])
    c = np.concatenate([c, c[:wrap]])
    # The window [u, u + w) holds a launch at τ for u ∈ (τ − w, τ]: it enters at τ − w
    # and leaves at τ. Over u ∈ [0, total) the contents change only at these points.
    vals = np.concatenate([t - w, t])
    order = np.argsort(vals, kind="stable")  # two sorted runs: a merge
    sv = vals[order]
    units = np.maximum(np.cumsum(np.concatenate([c, -c])[order]), 0.0)
    lo = np.clip(sv, 0.0, total)
    length = np.clip(np.concatenate([sv[1:], [total]]), 0.0, total) - lo
    keep = (length > 0) & (units > 1e-9)
    units, length = units[keep], length[keep] / total
    sampled = float(_dot(units, length))
    if sampled <= 0:
        return None
    # Scale the chance of holding anything to the exact load (at most the whole window).
    # A window that always holds something (one about a cycle long or more) cannot hold
    # it more often: the contents grow instead, so the law keeps the exact load. (Kept
    # short, N sessions' count was short by N times the sample's shortfall, which the
    # stop-loss E[(S − q)⁺] = E[S] − q + E[(q − S)⁺] read as overflow: a 60 s window and
    # a 60.6 s cycle, 1.1 % short, said 1.08 % of calls refused at every N from 130 up,
    # where nothing overflows, against the exact E[S].)
    on_chance, on_units = _to_load(mean_lat, sampled, float(length.sum()))
    length = length * on_chance
    units = units * on_units
    # Mean-preserving on the lattice: each content split between its two nearest points.
    base = np.floor(units)
    frac = units - base
    idx = base.astype(np.int64)
    size = int(idx.max()) + 2
    out: NDArray[np.float64] = np.asarray(
        np.bincount(idx, weights=length * (1.0 - frac), minlength=size), dtype=np.float64)
    out += np.bincount(idx + 1, weights=length * frac, minlength=size)
    out[0] += max(0.0, 1.0 - float(length.sum()))
    out = out / float(out.sum())
    out.setflags(write=False)
    return out


def _to_load(mean_lat: float, sampled: float, held: float) -> tuple[float, float]:
    """(factor on the chances, factor on the contents) that bring a sampled window law
    of mean ``sampled`` to the exact ``mean_lat`` (lattice units), ``held`` its chance of
    holding anything: the chance scaled up to 1 at most, the contents past that."""
    up, cap = mean_lat / sampled, 1.0 / held
    return min(up, cap), (up / cap if up > cap else 1.0)


_PairLaw = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def _pair_law(timing: TurnTiming, relevant: list[int], costs: list[CallCost], w: float,
              cycle_s: float, q: float, h: float, mean_lat: float) -> _PairLaw | None:
    """One session's units in two consecutive windows of ``w`` s at a uniform phase:
    ``(a, b, weight)`` of each pair of contents (lattice units; two empty windows left
    out), from its turns laid end to end as :func:`_session_law` lays them, the chance
    of holding anything scaled as it is scaled (``mean_lat``: the exact mean per window,
    lattice units). None when the sample cannot say, or when the two windows' counts are
    correlated less than ``_PAIR_MIN_RHO`` (the carried retries then meet an independent
    window, :func:`_carry_law`)."""
    key = ("pair", w, cycle_s, q, h, tuple(relevant), tuple(id(c) for c in costs))
    return timing.memo(key, lambda: _pair_law_uncached(timing, relevant, costs, w, cycle_s,
                                                       q, h, mean_lat))


def _pair_law_uncached(timing: TurnTiming, relevant: list[int], costs: list[CallCost],
                       w: float, cycle_s: float, q: float, h: float, mean_lat: float
                       ) -> _PairLaw | None:
    if not relevant or mean_lat <= 0 or timing.n < 2:
        return None
    line = _timeline(timing, relevant, costs, cycle_s, q, h)
    if line is None or line[2] <= 2.0 * w:
        return None
    t, c, total = line
    # Circle: the windows that start near the end hold the first launches, once more.
    wrap = int(np.searchsorted(t, 2.0 * w, side="right"))
    t = np.concatenate([t, t[:wrap] + total])
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate([c, c[:wrap]]))])
    # The pair [u, u + w), [u + w, u + 2w) changes only where a launch enters or leaves
    # one of them (u = τ − 2w, τ − w, τ): each piece read at its middle.
    cuts = np.unique(np.clip(np.concatenate([t - 2.0 * w, t - w, t, [0.0, total]]),
                             0.0, total))
    length = np.diff(cuts)
    mid = cuts[:-1] + 0.5 * length
    i0, i1, i2 = (np.searchsorted(t, mid + k * w) for k in (0.0, 1.0, 2.0))
    a, b = cum[i1] - cum[i0], cum[i2] - cum[i1]
    on = (length > 0) & ((a > 1e-9) | (b > 1e-9))
    a, b, wt = a[on], b[on], length[on] / total
    sampled = float(_dot(a, wt))
    if sampled <= 0:
        return None
    # As the session law: the chance of holding anything scaled to the exact load, at
    # most every pair; past that the contents grow instead (_session_law_numpy).
    on_chance, on_units = _to_load(mean_lat, sampled, float(wt.sum()))
    wt = wt * on_chance
    a, b = a * on_units, b * on_units
    ea, eb = float(_dot(a, wt)), float(_dot(b, wt))
    var = float(_dot(a * a, wt)) - ea * ea
    cov = float(_dot(a * b, wt)) - ea * eb
    if var <= 0 or cov < _PAIR_MIN_RHO * var:
        return None
    for x in (a, b, wt):
        x.setflags(write=False)
    return a, b, wt


def _with_missed(law: NDArray[np.float64] | None,
                 missed: list[tuple[float, NDArray[np.float64]]]
                 ) -> NDArray[np.float64] | None:
    """The session law with the calls the turn sample never makes added as independent
    single-call clumps (Poisson, ``rate`` per window, charge ``pmf``): their exact load."""
    if law is None or not missed:
        return law
    size = law.size + sum(8 * p.size for _, p in missed)
    L = 1 << max(6, math.ceil(math.log2(size)))
    log_t = complex_log(np.fft.rfft(law, L))
    for rate, p in missed:
        log_t = log_t + rate * (np.fft.rfft(p, L) - 1.0)
    out = np.clip(np.fft.irfft(np.exp(log_t), L), 0.0, None)
    top = int(np.flatnonzero(out > 1e-300).max()) + 1 if (out > 1e-300).any() else 1
    out = out[:top] / float(out[:top].sum())
    out.setflags(write=False)
    return out


def _fitting(pmf: NDArray[np.float64], q_lat: float) -> tuple[NDArray[np.float64], float]:
    """(the charge law with every charge above the allowance ``q_lat`` (lattice units)
    moved to 0, the mass moved): such a call is refused on every attempt, whatever the
    window holds, and is never charged (the limiter's retry-after is infinite)."""
    top = math.floor(q_lat + 1e-9)
    if pmf.size <= top + 1:
        return pmf, 0.0
    over = float(pmf[top + 1:].sum())
    if over <= 1e-12:
        return pmf, 0.0
    out = pmf[: top + 1].copy()
    out[0] += over
    return out, over


def _fit_points(law: dict[float, float] | None, q: float) -> dict[float, float] | None:
    """A discrete charge law with the charges above ``q`` units moved to 0 (see
    :func:`_fitting`)."""
    if law is None or all(x <= q for x in law):
        return law
    out: dict[float, float] = {}
    for x, p in law.items():
        key = x if x <= q else 0.0
        out[key] = out.get(key, 0.0) + p
    return out


def _event_law(timing: TurnTiming, relevant: list[int], pmfs: list[NDArray[np.float64]]
               ) -> tuple[NDArray[np.float64], float]:
    """(law of the units one launch instant charges, lattice units; instants per turn).

    Mean charges per call, spread over the two nearest lattice points (mean-preserving).
    """
    if not relevant:
        return np.zeros(1), 0.0
    _, gc = timing.groups()
    mean_charge = np.array([float(_dot(np.arange(p.size), p)) for p in pmfs])
    x = (gc[:, :, relevant].astype(np.float64) @ mean_charge).ravel()
    x = x[x > 0]
    if x.size == 0:
        return np.zeros(1), 0.0
    lo = np.floor(x)
    frac = x - lo
    # Mean-preserving: an instant charging less than a step is 0 or 1 step (a free room
    # smaller than a step, not a whole step).
    idx = np.maximum(lo.astype(np.int64), 0)
    out: NDArray[np.float64] = np.bincount(idx, weights=1.0 - frac,
                                           minlength=int(idx.max()) + 2).astype(np.float64)
    out += np.bincount(idx + 1, weights=frac, minlength=out.size)[: out.size]
    total = float(out.sum())
    return (out / total if total > 0 else out), float(x.size) / timing.n


def _storm_launches(timing: TurnTiming, relevant: list[int],
                    pmfs: list[NDArray[np.float64]], brings: NDArray[np.float64]
                    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64],
                               NDArray[np.float64], NDArray[np.int64], NDArray[np.int64],
                               NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """What a retry storm meets, from the turn sample (see :meth:`ClumpWindowModel.storm_size`).

    Returns the units (lattice, rounded mean charges) of each sampled turn's first
    charged launch instant, and for every later charged launch instant its gap (s) to
    the turn's previous charged launch and its units; and each turn's end after its
    last charged launch (s). A turn aborted by a storm makes none of its later launches:
    a session caught mid-turn at the storm's start makes only its next launch, ``gap``
    or less after the start, or, past its last launch, ends that long after it. Then,
    for turns that go on when refused (``on_exhausted: continue``, no retries), each
    turn's units in all and each later launch's units with every later one's of its turn.
    Last, per later launch, the units of the restart its refusal brings (``brings``:
    calls per sampled turn and event, by relevant call, :func:`_abort_saving`; empty:
    none) — a cadence's session past its cadence starts its next turn at once, and that
    turn's first call comes a rejection latency later into the log the refusal left full.
    And per later launch its offset (s) from its turn's first, and its turn.
    """
    if not relevant:
        return (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0),
                np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros(0), np.zeros(0, np.int64))
    gt, gc = timing.groups()
    mean_charge = np.array([float(_dot(np.arange(p.size), p)) for p in pmfs])
    x = np.rint(gc[:, :, relevant].astype(np.float64) @ mean_charge).astype(np.int64)
    hit = (x > 0) & np.isfinite(gt)
    first = np.zeros(gt.shape[0], np.int64)
    gaps: list[NDArray[np.float64]] = []
    sizes: list[NDArray[np.int64]] = []
    rest: list[NDArray[np.int64]] = []
    back: list[NDArray[np.int64]] = []
    restart = (np.rint(brings @ mean_charge).astype(np.int64) if brings.size
               else np.zeros(gt.shape, np.int64))
    prev = np.full(gt.shape[0], math.nan)
    t0 = np.full(gt.shape[0], math.nan)
    offsets: list[NDArray[np.float64]] = []
    turn: list[NDArray[np.int64]] = []
    xs = np.where(hit, x, 0)
    after = np.cumsum(xs[:, ::-1], axis=1)[:, ::-1]  # units from launch j on
    for j in range(gt.shape[1]):  # events per turn: few (launches at one instant merge)
        on = hit[:, j]
        start = on & np.isnan(prev)
        first[start] = x[start, j]
        t0[start] = gt[start, j]
        later = on & ~np.isnan(prev)
        gaps.append(gt[later, j] - prev[later])
        offsets.append(gt[later, j] - t0[later])
        turn.append(np.flatnonzero(later))
        sizes.append(x[later, j])
        rest.append(after[later, j])
        back.append(restart[later, j])
        prev = np.where(on, gt[:, j], prev)
    # A turn past its last launch ends as it would: after latency − last launch.
    ends = (timing.latency - prev)[~np.isnan(prev)]
    return (first, np.concatenate(gaps), np.concatenate(sizes), np.maximum(ends, 0.0),
            np.where(first > 0, after[:, 0], 0), np.concatenate(rest), np.concatenate(back),
            np.concatenate(offsets), np.concatenate(turn))


# Points of the fine lattice on which the size bias of rejections is computed.
_FINE_POINTS = 1 << 16


def _fine_pmfs(costs: list[CallCost | None], h: float) -> list[NDArray[np.float64]]:
    """Each charge on a lattice fine enough to resolve it: a step of at most 1/64 of the
    smallest mean charge (never coarser than ``h``; at most ~65,536 points in all)."""
    return _fine_lattice(costs, h)[1]


def _fine_lattice(costs: list[CallCost | None], h: float
                  ) -> tuple[float, list[NDArray[np.float64]]]:
    """(the fine step, units; each charge on it) — see :func:`_fine_pmfs`."""
    real = [c for c in costs if c is not None]
    means = [c.mean for c in real if c.mean > 0]
    uppers = [c.upper for c in real if math.isfinite(c.upper)]
    hf = min(means, default=h) / 64.0
    if uppers:
        hf = max(hf, max(uppers) / _FINE_POINTS)
    hf = min(h, max(hf, 1e-9, finest_step(max(means, default=0.0))))
    return hf, [c.pmf(hf) if c is not None else np.ones(1) for c in costs]


_WASTE_POINTS = 4096
_WASTE_STATES = 4096   # sums below q listed by the exact walk (× ≤ 12 charges: ~30 ms)
_WASTE_SIZES = 12
_FILL_STEPS = 128      # later calls followed one by one (a Poisson mean ~100 is overload)


@dataclass(frozen=True)
class Cascade:
    """What a refused launch brings into its full window when its turn goes on.

    With ``on_exhausted: continue`` and no retries a refused call ends ``δ`` (the
    rejection latency) after its launch, so when every call of its stage is refused and
    nothing else of the turn is running the next stage launches at ``t + δ``, the one
    after it at ``t + 2δ``, …: a launch ``j`` levels on (see
    :attr:`~capacity.analytic.timing.TurnTiming.levels`) comes at ``t + jδ`` instead of
    at its unthrottled offset ``t + d``. In a fixed window that is full until its end,
    ``R`` seconds on, it is turned away too — an extra refusal when ``jδ < R < d`` (had
    ``d ≤ R`` it was in the window's count anyway); a stage holding a call this
    constraint does not charge runs its normal time and ends the cascade.

    ``G(x) = E[Σ_launches (min(max(x, jδ), d) − jδ)]`` per launch instant of this
    constraint (the integral over ``R ∈ (0, x)`` of the cascaded calls), kept as its
    breakpoints: sorted starts ``a = jδ`` and ends ``b = d`` with cumulative weights.
    """

    starts: NDArray[np.float64]        # a, sorted (s)
    start_w: NDArray[np.float64]       # cumulative weight (calls per instant) up to a
    start_wa: NDArray[np.float64]      # cumulative weight·a
    ends: NDArray[np.float64]          # b, sorted (s)
    end_w: NDArray[np.float64]
    end_wb: NDArray[np.float64]
    calls_per_instant: float           # mean calls of this constraint per launch instant
    # Calls per launch instant j = 1, 2, … stages on (index j − 1), whatever the time left.
    levels: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def rate_at(self, r: NDArray[np.float64]) -> NDArray[np.float64]:
        """``ḡ(r) = G'(r)``: calls a launch instant turned away ``r`` s before its window's
        end brings into it, on average over instants."""
        ia = np.searchsorted(self.starts, r, side="left")
        ib = np.searchsorted(self.ends, r, side="left")
        out: NDArray[np.float64] = (np.concatenate([[0.0], self.start_w])[ia]
                                    - np.concatenate([[0.0], self.end_w])[ib])
        return out

    def calls_within(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``G(x)`` (call·seconds per launch instant) at each ``x`` (s)."""
        def ramp(at: NDArray[np.float64], cw: NDArray[np.float64],
                 cwa: NDArray[np.float64]) -> NDArray[np.float64]:
            i = np.searchsorted(at, x, side="left")   # breakpoints below x
            w = np.concatenate([[0.0], cw])[i]
            wa = np.concatenate([[0.0], cwa])[i]
            out: NDArray[np.float64] = w * x - wa
            return out
        return (ramp(self.starts, self.start_w, self.start_wa)
                - ramp(self.ends, self.end_w, self.end_wb))

    @staticmethod
    def of(starts: NDArray[np.float64], ends: NDArray[np.float64],
           weights: NDArray[np.float64], calls_per_instant: float) -> Cascade:
        """From the (start, end, calls per launch instant) of every cascaded launch."""
        i, j = np.argsort(starts), np.argsort(ends)
        a, wa = starts[i], weights[i]
        b, wb = ends[j], weights[j]
        return Cascade(a, np.cumsum(wa), np.cumsum(wa * a), b, np.cumsum(wb),
                       np.cumsum(wb * b), calls_per_instant)


def _cascade_law(timing: TurnTiming, relevant: list[int], delta: float) -> Cascade | None:
    """The :class:`Cascade` of the turn sample: the calls this constraint charges by spec
    index, ``delta`` the rejection latency (s)."""
    t, calls, lv, en = timing.times, timing.calls, timing.levels, timing.ends
    if not relevant or lv.shape != t.shape or delta <= 0:
        return None
    n = t.shape[0]
    valid = calls >= 0
    rel = np.isin(calls, relevant) & valid
    # Group simultaneous launches (a fan-out's copies) into instants, per row.
    new = valid.copy()
    new[:, 1:] &= t[:, 1:] != t[:, :-1]
    cell = np.cumsum(new, axis=1) - 1
    g = max(1, int(cell.max()) + 1) if valid.any() else 1
    # Pairs cost rows·G²: a subsample of rows when instants per turn are many.
    rows = min(n, max(64, (1 << 22) // (g * g)))
    t, calls, lv, en = t[:rows], calls[:rows], lv[:rows], en[:rows]
    valid, rel, cell = valid[:rows], rel[:rows], cell[:rows]
    # Per instant (launches of one instant are adjacent in row order): reduceat over the
    # valid launches, placed at row·G + instant.
    flat = (np.arange(rows)[:, None] * g + cell)[valid]
    first = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    at = flat[first]

    def put(fill: float, vals: NDArray[Any], op: Any) -> NDArray[np.float64]:
        out = np.full(rows * g, fill)
        out[at] = op.reduceat(vals, first)
        return out.reshape(rows, g)

    gt = put(math.inf, t[valid], np.minimum)
    glv = put(float(1 << 40), lv[valid].astype(np.float64), np.minimum)
    gend = put(-math.inf, en[valid], np.maximum)
    grel = put(0.0, rel[valid].astype(np.float64), np.add)
    gnon = put(0.0, (~rel[valid]).astype(np.float64), np.add)
    instants = grel > 0
    n_inst = int(instants.sum())
    if n_inst == 0:
        return None
    per_instant = float(grel[instants].sum()) / n_inst
    # Nothing else of the turn is running when the instant's calls are refused.
    before = np.maximum.accumulate(gend, axis=1)
    prior = np.concatenate([np.full((rows, 1), -math.inf), before[:, :-1]], axis=1)
    trig = instants & (gnon == 0) & (prior <= gt + 1e-9)
    tr, tg = np.nonzero(trig)
    if tr.size == 0:  # nothing to cascade: an empty law (a mix still counts the instants)
        none = np.zeros(0)
        return Cascade.of(none, none, none, per_instant)
    # Every later instant of the row, j levels on; a stage with an uncharged call stops it.
    j = glv[tr][:, :] - glv[tr, tg][:, None]                       # (pairs, G)
    later = np.arange(g)[None, :] > tg[:, None]
    j = np.where(later & np.isfinite(gt[tr]), j, 0)
    stop = np.where((j > 0) & (gnon[tr] > 0), j, math.inf).min(axis=1)
    d = gt[tr] - gt[tr, tg][:, None]
    keep = (j > 0) & (j < stop[:, None]) & (grel[tr] > 0) & (d > j * delta)
    a = (j * delta)[keep]
    b = d[keep]
    w = grel[tr][keep] / n_inst
    levels = np.bincount(j[keep].astype(np.int64), weights=w)[1:].astype(np.float64)
    return dataclasses.replace(Cascade.of(a, b, w, per_instant), levels=levels)


@dataclass(frozen=True)
class AbortLaw:
    """Sampled launch instants of one constraint for :meth:`ClumpWindowModel._first_refused`:
    per instant its units ``size`` (lattice), calls ``calls``, the gap ``gap`` to its
    turn's previous charged instant (fraction of the window; inf when none) and ``own``,
    its turn's earlier units within the window when it comes at each cell's middle."""

    size: NDArray[np.float64]
    calls: NDArray[np.float64]
    gap: NDArray[np.float64]
    own: NDArray[np.float64]


# Sampled instants and cells in u (equal widths) of the first-refused share: an average
# of smooth terms, which these resolve to ~1% (they are evaluated at every N searched).
_ABORT_INSTANTS = 256
_ABORT_CELLS = 16
_ABORT_MIDDLES = (np.arange(_ABORT_CELLS) + 0.5) / _ABORT_CELLS
# Linear interpolation from the prefix nodes u = 1 − _CASCADE_LEFT to u = 0 and the
# cells' middles (rows), as a matrix.
_PREFIX_INTERP = np.stack(
    [np.interp(np.concatenate([[0.0], _ABORT_MIDDLES]), (1.0 - _CASCADE_LEFT)[::-1],
               np.eye(_CASCADE_LEFT.size)[i][::-1]) for i in range(_CASCADE_LEFT.size)],
    axis=1)
_MIN_PREFIX_TURNS = 512


def _abort_law(timing: TurnTiming, relevant: list[int], costs: list[CallCost], q: float,
               h: float, w: float) -> AbortLaw | None:
    """The :class:`AbortLaw` of the turn sample (charges drawn as the session law's)."""
    if not relevant:
        return None
    ev = _event_charges(timing, relevant, costs, q)
    if ev is None:
        return None
    gt, _ = timing.groups()
    units, calls = ev[0] / h, ev[1]
    on = np.isfinite(gt) & (units > 0)
    ii, jj = np.nonzero(on)
    if ii.size == 0:
        return None
    if ii.size > _ABORT_INSTANTS:  # evenly spaced instants: the law, not every one
        pick = np.linspace(0, ii.size - 1, _ABORT_INSTANTS).astype(np.int64)
        ii, jj = ii[pick], jj[pick]
    gts = np.where(on, gt, np.nan)
    u = _ABORT_MIDDLES * w                                    # seconds into the window
    own = np.zeros((ii.size, _ABORT_CELLS))
    gap = np.full(ii.size, np.inf)
    last = _last_before(on, ii, jj)
    for k in range(gt.shape[1]):  # earlier events of the same turn
        d = gt[ii, jj] - gts[ii, k]
        ok = (k < jj) & on[ii, k]
        gap = np.where(ok & (k == last), d / w, gap)
        own += np.where(ok[:, None] & (d[:, None] < u[None, :]), units[ii, k][:, None], 0.0)
    return AbortLaw(units[ii, jj], calls[ii, jj], gap, own)


@dataclass(frozen=True)
class AbortGaps:
    """A window's launch instants for :meth:`ClumpWindowModel.refused` where a refused
    call ends its turn: each instant's gap (s) to its turn's charged instant before
    (inf: the first), sorted, its units (tokens), and the instants' size-biased mean
    units ``E[x²]/E[x]``; the running sums that :meth:`offered_after` reads."""

    gaps: NDArray[np.float64]
    units: NDArray[np.float64]
    biased: float
    cum_xg: NDArray[np.float64] = field(repr=False)
    cum_x: NDArray[np.float64] = field(repr=False)
    total: float = 0.0

    @classmethod
    def of(cls, gaps: NDArray[np.float64], units: NDArray[np.float64],
           biased: float) -> AbortGaps:
        """The instants' gaps and units, in any order."""
        srt = np.argsort(gaps, kind="stable")
        g, x = gaps[srt], units[srt]
        fin = np.isfinite(g)
        return cls(g, x, biased, np.cumsum(np.where(fin, x * np.where(fin, g, 0.0), 0.0)),
                   np.cumsum(x), float(x.sum()))

    def offered_after(self, seconds: float) -> float:
        """Share of the units launched over the last ``seconds`` of a full window that
        are still made when each turn ends at its first refusal: an instant is made when
        it is its turn's first in that span, ``Σ x·min(ℓ, g) / (ℓ·Σ x)``."""
        if seconds <= 0 or self.total <= 0:
            return 1.0
        k = int(np.searchsorted(self.gaps, seconds))
        below = float(self.cum_xg[k - 1]) if k else 0.0
        above = self.total - (float(self.cum_x[k - 1]) if k else 0.0)
        return min(1.0, (below + seconds * above) / (seconds * self.total))


def _abort_gaps(timing: TurnTiming, relevant: list[int], costs: list[CallCost], q: float
                ) -> AbortGaps | None:
    """The :class:`AbortGaps` of the turn sample (the previous instant as
    :func:`_abort_law` takes it, :func:`_last_before`)."""
    ev = _event_charges(timing, relevant, costs, q)
    if ev is None:
        return None
    gt, _ = timing.groups()
    units = ev[0]
    on = np.isfinite(gt) & (units > 0)
    ii, jj = np.nonzero(on)
    if ii.size == 0:
        return None
    last = _last_before(on, ii, jj)
    gap = np.where(last >= 0, gt[ii, jj] - gt[ii, np.maximum(last, 0)], np.inf)
    x = units[ii, jj]
    return AbortGaps.of(gap, x, float(np.dot(x, x) / x.sum()))


def mix_abort_gaps(parts: list[tuple[float, ClumpWindowModel]]) -> AbortGaps | None:
    """The :class:`AbortGaps` of a mix of sessions (weights ``a``): each part's instants
    weighed by its share of the offered units (``a·mean_units``), so that
    :meth:`AbortGaps.offered_after` is the parts' own, mixed so; None unless every part
    has them."""
    got = [(a * m.mean_units, m.abort_gaps) for a, m in parts]
    if not got or any(ag is None or ag.total <= 0 for _, ag in got):
        return None
    tot = math.fsum(w for w, _ in got)
    if tot <= 0:
        return None
    live = [(w / tot, ag) for w, ag in got if ag is not None]
    return AbortGaps.of(np.concatenate([ag.gaps for _, ag in live]),
                        np.concatenate([ag.units * (w / ag.total) for w, ag in live]),
                        math.fsum(w * ag.biased for w, ag in live))


def _last_before(on: NDArray[np.bool_], ii: NDArray[np.int64], jj: NDArray[np.int64]
                 ) -> NDArray[np.int64]:
    """Index of the last charged event before ``jj`` in each row ``ii`` (−1: none)."""
    idx = np.where(on, np.arange(on.shape[1])[None, :], -1)
    prior = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((on.shape[0], 1), -1), prior[:, :-1]], axis=1)
    out: NDArray[np.int64] = prev[ii, jj]
    return out


@dataclass(frozen=True)
class Crossing:
    """The room a first-fit window has left when its first call does not fit.

    A counter turns away a call that does not fit the room left, so a window whose offered
    charge ``S`` exceeds ``q`` admits ``q − W``: its rejected units are ``S − q + W``.
    ``W`` starts as the room ``U`` before the first call that did not fit (exactly
    ``q mod B`` for equal charges ``B``) and shrinks as later, smaller calls of the same
    window still fit.
    """

    room: NDArray[np.float64]   # law of U on the fine lattice (index: whole steps, floor)
    mean_room: float            # E[U], units
    mean_cross: float           # E[C_τ], units: the first call turned away
    call: NDArray[np.float64]   # one call's charge on the fine lattice
    step: float                 # the fine step, units
    _memo: dict[float, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def overshoot(self) -> float:
        """E[C_τ − U] (units): how far the first call turned away reaches past ``q``."""
        return max(0.0, self.mean_cross - self.mean_room)

    def waste(self, later: float) -> float:
        """E[W] (units) when ``later`` calls (Poisson mean) are offered after the first
        one turned away, each admitted when it fits the room still left."""
        later = max(later, 0.0)
        if later <= 0 or self.room.size < 2:
            return self.mean_room
        filled = _poisson_mean(later, self._fill_means(_poisson_top(later)))
        return max(0.0, self.mean_room - filled)

    def _fill_means(self, upto: int) -> NDArray[np.float64]:
        """Units the calls offered after the first refusal fill, after ``j`` of them
        (``j = 0, 1, …, upto``; at most 128, fewer once the room no longer shrinks), on a
        lattice of at most ~256 points (the room rounded down: no call is admitted into
        room it would not fit); extended as later calls ask for more."""
        state = self._memo.get(0.0)
        if state is None:
            factor = max(1.0, self.room.size / 256.0)
            c = math.ceil(factor)
            if factor > 1.0:
                room: NDArray[np.float64] = np.bincount(
                    np.arange(self.room.size) // c, weights=self.room).astype(np.float64)
                f = _coarsen(self.call, float(c))
                step = self.step * c
            else:
                room, f, step = self.room, self.call, self.step
            K = room.size
            surv = 1.0 - np.cumsum(f)[:K]
            surv = np.concatenate([surv, np.zeros(K - surv.size)])
            # Calls that fit, counted with their charges rounded up (the mean-preserving
            # coarse law gives a small call a zero charge that would fit, again and
            # again, a room of less than one step).
            up = np.bincount(np.ceil(np.arange(self.call.size) / c - 1e-9)
                             .astype(np.int64), weights=self.call)
            fit = np.cumsum(up)[:K]
            fit = np.concatenate([fit, np.full(K - fit.size, fit[-1] if fit.size else 0.0)])
            L = 1 << math.ceil(math.log2(K + f.size))
            idx = np.arange(K, dtype=np.float64)
            state = {"v": room, "surv": surv, "fh": np.fft.rfft(f, L), "L": L, "idx": idx,
                     "step": step, "m0": float(_dot(idx, room)), "out": [0.0],
                     "fits": [0.0], "fit": fit, "done": K < 2}
            self._memo[0.0] = state
        out: list[float] = state["out"]
        v, K, L = state["v"], state["v"].size, state["L"]
        m0, step = state["m0"], state["step"]
        fits: list[float] = state["fits"]
        while len(out) <= min(upto, _FILL_STEPS) and not state["done"]:
            moved = np.fft.irfft(np.fft.rfft(v[::-1], L) * state["fh"], L)[:K][::-1]
            fits.append(fits[-1] + float(_dot(v, state["fit"])))
            v = v * state["surv"] + np.clip(moved, 0.0, None)
            filled = (m0 - float(_dot(state["idx"], v))) * step
            state["done"] = filled - out[-1] <= 1e-7 * max(m0 * step, 1e-300)
            out.append(filled)
        state["v"] = v
        return np.asarray(out[: upto + 1])

    def refused(self, later: float) -> float:
        """Calls turned away in a window that overflows: the first that did not fit and
        the ``later`` ones (Poisson mean) that do not fit the room still left."""
        later = max(later, 0.0)
        if later <= 0 or self.room.size < 2:
            return 1.0 + later
        top = _poisson_top(later)
        self._fill_means(top)
        admitted = _poisson_mean(later, np.asarray(self._memo[0.0]["fits"][: top + 1]))
        return max(1.0, 1.0 + later - admitted)


def _poisson_top(mean: float) -> int:
    """Where a Poisson count of ``mean`` is followed to (6 sd past it)."""
    return math.ceil(mean + 6.0 * math.sqrt(mean) + 3.0)


def _poisson_mean(mean: float, values: NDArray[np.float64]) -> float:
    """``E[values[J]]`` for ``J`` ~ Poisson(``mean``): beyond the last value (the room no
    longer shrinks there, or the Poisson weight is negligible) the tail takes it."""
    j = np.arange(values.size, dtype=np.float64)
    if _LGAMMA.size < values.size:
        _grow_lgamma(values.size)
    w = np.exp(j * math.log(mean) - mean - _LGAMMA[: values.size])
    return float(_dot(w, values)) + max(0.0, 1.0 - float(w.sum())) * float(values[-1])


def _grow_lgamma(size: int) -> None:
    global _LGAMMA
    _LGAMMA = np.array([math.lgamma(x + 1.0) for x in range(max(size, 2 * _LGAMMA.size))])


_LGAMMA = np.array([math.lgamma(x + 1.0) for x in range(_FILL_STEPS + 2)])  # log j!


def mix_crossings(parts: list[tuple[float, Crossing | None]]) -> Crossing | None:
    """The crossing of a mix of call streams (weights: calls offered), each on the
    coarsest of their lattices (rooms rounded down, charges mean-preserving); None when
    any part has none (a sliding window)."""
    live = [(w, c) for w, c in parts if w > 0]
    if not live or any(c is None for _, c in live):
        return None
    crossings = [(w, c) for w, c in live if c is not None]
    if len(crossings) == 1:
        return crossings[0][1]
    total = math.fsum(w for w, _ in crossings)
    step = max(c.step for _, c in crossings)
    rooms, calls = [], []
    for _, c in crossings:
        factor = step / c.step
        idx = np.floor(np.arange(c.room.size) / factor + 1e-9).astype(np.int64)
        rooms.append(np.bincount(idx, weights=c.room))
        calls.append(_coarsen(c.call, factor))
    room = np.zeros(max(r.size for r in rooms))
    call = np.zeros(max(f.size for f in calls))
    for (w, _), r, f in zip(crossings, rooms, calls, strict=True):
        room[: r.size] += w / total * r
        call[: f.size] += w / total * f
    return Crossing(room, math.fsum(w * c.mean_room for w, c in crossings) / total,
                    math.fsum(w * c.mean_cross for w, c in crossings) / total, call, step)


def _discrete(d: Distribution | None, scale: float = 1.0, cap: float = math.inf
              ) -> dict[float, float] | None:
    """A fixed or choice distribution as {value × scale, cut at cap: probability}."""
    if d is None:
        return {0.0: 1.0}
    if d.kind == "fixed":
        return {min(d.params[0], cap) * scale: 1.0}
    if d.kind == "choice":
        out: dict[float, float] = {}
        for v, w in zip(d.values, d.weights, strict=True):
            key = min(v, cap) * scale
            out[key] = out.get(key, 0.0) + w
        return out
    return None


def point_charges(costs: list[CallCost | None], weights: NDArray[np.float64]
                  ) -> dict[float, float] | None:
    """One call's charge (units) as a discrete law — the mixture of ``costs`` by
    ``weights`` — when every charge takes a few exact values (fixed or choice token
    counts), else None. A lattice would spread a 5,000-token charge over two points and
    invent room that an exact fit (11 × 5,000 in 55,000) never leaves."""
    law: dict[float, float] = {}
    total = float(weights.sum())
    for cost, w in zip(costs, weights, strict=True):
        if cost is None or type(cost) is not CallCost or cost.kind != "tokens" or total <= 0:
            return None
        inp = _discrete(cost.input, cost.uncached)
        out = (_discrete(Distribution.fixed(cost.output_fixed))
               if cost.output_fixed is not None
               else _discrete(cost.output, 1.0, cost.output_cap))
        if inp is None or out is None or len(inp) * len(out) > 64:
            return None
        for a, pa in inp.items():
            for b, pb in out.items():
                key = round(a + b, 9)
                law[key] = law.get(key, 0.0) + w / total * pa * pb
    return law


def first_fit_crossing(call_pmf: NDArray[np.float64], step: float, q: float,
                       law: dict[float, float] | None = None) -> Crossing:
    """Where a first-fit window of allowance ``q`` units first turns a call away.

    Calls arrive with i.i.d. charges (``call_pmf`` on a lattice of ``step`` units, or
    exactly ``law`` {units: probability} when given). ``P(S_{τ−1} = s, C_τ = c) = u(s)·f(c)``
    for ``c > q − s``, ``u`` the renewal mass of the charges. The exact law lists every
    sum below ``q`` (up to 4,096 of them, over at most 12 charges); the lattice walks
    ``u`` up to ~4,096 steps, beyond which the room takes its renewal limit, the
    equilibrium age of a charge.
    """
    f = np.asarray(call_pmf, dtype=np.float64).copy()
    f[0] = 0.0  # a zero charge always fits and never moves the sum
    total = float(f.sum())
    K = max(1, f.size - 1)
    if total <= 0 or q <= 0:
        return Crossing(np.ones(1), 0.0, 0.0, np.ones(1), step)
    f /= total
    if law is not None:
        hit = _crossing_exact(law, q)
        if hit is not None:
            rooms, mean_room, mean_cross = hit
            room = np.zeros(K)
            for r, p in rooms.items():
                room[min(K - 1, math.floor(r / step + 1e-9))] += p
            return Crossing(room, mean_room, mean_cross, f, step)
    k = np.arange(f.size, dtype=np.float64)
    qf = q / step
    qi = math.floor(qf + 1e-9)
    frac = max(0.0, qf - qi)
    surv = 1.0 - np.cumsum(f)  # P(B > x), x = 0, 1, …
    e_b = float(_dot(k, f))
    if qi > _WASTE_POINTS:
        # Equilibrium: P(U = r) = P(B > r)/E[B]; the crossing call is size-biased.
        room = surv[:K] / e_b
        room /= room.sum()
        cross = float(_dot(k * k, f)) / e_b
    else:
        u = np.zeros(qi + 1)
        u[0] = 1.0
        fr = f[1:][::-1]  # reversed: u[s] = Σ_j f[j] u[s − j]
        width = fr.size
        for t in range(1, qi + 1):
            lo = max(0, t - width)
            u[t] = float(np.dot(u[lo:t], fr[width - (t - lo):]))
        gap = qi - np.arange(qi + 1)  # ⌊q⌋ − s: the room before the call
        ok = gap < surv.size
        mass = np.where(ok, u * surv[np.minimum(gap, surv.size - 1)], 0.0)
        m = float(mass.sum())
        room = np.zeros(K)
        np.add.at(room, np.minimum(gap[ok], K - 1), mass[ok] / m)
        # E[C_τ; S_{τ−1} = s] = u(s)·Σ_{c > gap} c f(c)
        tail = np.cumsum((k * f)[::-1])[::-1]  # Σ_{c ≥ x} c f(c)
        nxt = np.minimum(gap + 1, f.size - 1)
        cross = float(np.where(ok & (gap + 1 < f.size), u * tail[nxt], 0.0).sum()) / m
    mean_room = (float(_dot(np.arange(K), room)) + frac) * step
    return Crossing(room, mean_room, cross * step, f, step)


def _crossing_exact(law: dict[float, float], q: float
                    ) -> tuple[dict[float, float], float, float] | None:
    """(law of the room U, E[U], E[C_τ]) for a discrete charge law in exact units, or
    None when the sums below ``q`` are too many to list (small charges against ``q``:
    then the lattice is as good)."""
    sizes = sorted((v, p) for v, p in law.items() if v > 0 and p > 0)
    if not sizes:
        return {0.0: 1.0}, 0.0, 0.0
    if len(sizes) > _WASTE_SIZES:
        return None
    norm = sum(p for _, p in sizes)
    mass: dict[float, float] = {0.0: 1.0}
    heap = [0.0]
    rooms: dict[float, float] = {}
    cross = crossed = 0.0
    listed = 1  # every sum ever listed, not just the frontier: a few charges against a
    # daily allowance keep the frontier small while the walk runs ~q/charge steps
    while heap:
        s = heapq.heappop(heap)
        m = mass.pop(s)
        for v, p in sizes:
            t = round(s + v, 9)
            if t <= q + 1e-9:
                if t not in mass:
                    listed += 1
                    if listed > _WASTE_STATES:
                        return None
                    mass[t] = 0.0
                    heapq.heappush(heap, t)
                mass[t] += m * p / norm
            else:
                w = m * p / norm
                rooms[q - s] = rooms.get(q - s, 0.0) + w
                cross += w * v
                crossed += w
    if crossed <= 0:
        return {0.0: 1.0}, 0.0, 0.0
    rooms = {r: w / crossed for r, w in rooms.items()}
    return rooms, sum(r * w for r, w in rooms.items()), cross / crossed


def _rejected_weight(call_pmf: NDArray[np.float64]) -> NDArray[np.float64]:
    """``P(rejected | B = b) ∝ F_e(b)`` at each lattice point ``b`` of the charge law.

    Near the allowance a call is turned away when its charge exceeds the room left,
    ``R``; taking ``R`` from the equilibrium (residual) law of a charge, the rejected
    calls are the larger ones."""
    k = np.arange(call_pmf.size, dtype=np.float64)
    e_b = float(_dot(k, call_pmf))
    surv = 1.0 - np.cumsum(call_pmf)  # P(B > x) at lattice points
    out: NDArray[np.float64] = np.concatenate([[0.0], np.cumsum(surv)[:-1]]) / e_b
    return out


def _size_bias(call_pmf: NDArray[np.float64]) -> float:
    """``κ = E[B] / E[B | rejected]`` for first-fit admission of charges ``B``
    (:func:`_rejected_weight`): ``κ = E[B]·E[F_e(B)] / E[B·F_e(B)] ≤ 1`` converts
    rejected units into calls."""
    k = np.arange(call_pmf.size, dtype=np.float64)
    e_b = float(_dot(k, call_pmf))
    f_e = _rejected_weight(call_pmf)
    num = float(_dot(call_pmf, f_e))
    den = float(_dot(call_pmf, k * f_e))
    return min(1.0, e_b * num / den) if den > 0 else 1.0


def rejected_charge(call_pmf: NDArray[np.float64]) -> NDArray[np.float64]:
    """The charge law of the calls first-fit admission turns away (:func:`_rejected_weight`;
    mean ``E[B]/κ``): a window's spilled calls as the next deployment's slot of the same
    dimension charges them."""
    p = call_pmf / float(call_pmf.sum())
    w = p * _rejected_weight(p)
    tot = float(w.sum())
    return w / tot if tot > 0 else p


def _prior_launches(timing: TurnTiming, relevant: list[int]) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Patterns of earlier launches before a launch of one of the ``relevant`` calls.

    Returns ``(weight, counts)``: ``counts[u, j]`` launches of ``relevant[j]`` strictly
    before the launch (their failure would have aborted it), ``weight[u]`` the share of
    relevant launches with that pattern.
    """
    k = len(relevant)
    if k == 0:
        return np.ones(1), np.zeros((1, 1))
    # On the grouped events: every launch of one event has the same earlier launches
    # (those of the events before it), weighted by its relevant launches.
    _, gc = timing.groups()
    rc = gc[:, :, relevant]                              # [turn, event, relevant call]
    per = np.cumsum(rc, axis=1) - rc                      # launches strictly before
    mult = rc.sum(axis=2)                                 # relevant launches in the event
    sel = mult > 0
    rows = per[sel]
    if rows.size == 0:
        return np.ones(1), np.zeros((1, k))
    mult_sel = mult[sel]
    base = int(rows.max()) + 1
    code = rows @ (base ** np.arange(k, dtype=np.int64))  # one integer per pattern
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    uniq = rows[first]
    weight = np.bincount(inv.ravel(), weights=mult_sel.astype(np.float64),
                         minlength=uniq.shape[0])
    return weight / weight.sum(), uniq.astype(np.float64)


def _abort_saving(timing: TurnTiming, relevant: list[int], reach: float) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
        NDArray[np.float64], NDArray[np.float64]]:
    """Turn time an aborted turn saves (no retries, ``abort_turn``), by pattern.

    Returns ``(weight, before, through)``: a sampled turn whose first refusal is at an
    event (launch instant) with relevant launches ends when that event's calls end —
    at once for a lone refused call, at its fan-out mates' ends otherwise, and not
    before the earlier calls still running — instead of at its latency; ``weight[u]``
    sums that saving (s) over the events with relevant launches ``before[u]`` strictly
    before them and ``through[u]`` up to them, divided by the sampled turns. The mean
    saving at refusal chance ``p`` is ``Σ weight·(Π(1−p)^before − Π(1−p)^through)``.

    A cadence-paced session whose turn is aborted past its cadence starts the next turn
    at once (the engine: at ``max(start + cadence, end)``): a lone refused call with
    nothing earlier still running ends the turn at the refusal, so the next turn's first
    launch comes a rejection latency later into the log that has just turned a call
    away. The restart meets that log only if the next turn's first launch with a call on
    this quota comes before ``reach`` (s, from the next turn's start: the window less the
    rejection latency; later, the refusal's content has left the log and the call sees a
    random instant's). Also returned: ``restart[u]``, the share of the sampled turns
    whose restart meets the log, by pattern, and by spec (rows): the relevant calls of
    the next turn's first relevant launch and those of the refused launch, summed over
    those events and divided by the sampled turns (the charge laws of
    :meth:`ClumpWindowModel._sliding_restart`); and per sampled turn and event, the
    calls on this quota (by relevant call) of the restart a refusal there brings (zero
    when none: the storm chain's restarts, :func:`_storm_launches`).
    """
    k = len(relevant)
    gt, gc = timing.groups()
    n = gt.shape[0]
    none = (np.zeros(0), np.zeros((0, max(k, 1))), np.zeros((0, max(k, 1))), np.zeros(0),
            np.zeros((2, max(k, 1))), np.zeros((0, 0, max(k, 1))))
    if k == 0 or n == 0 or timing.ends.shape != timing.times.shape:
        return none
    rc = gc[:, :, relevant]
    before = np.cumsum(rc, axis=1) - rc
    mult = rc.sum(axis=2)
    every = gc.sum(axis=2)
    t, e = timing.times, timing.ends
    lat = timing.latency
    saved = np.zeros(gt.shape)
    again = np.zeros(gt.shape, dtype=bool)
    cadence = timing.cadence.size == n
    for j in range(gt.shape[1]):
        at = gt[:, j:j + 1]
        fin = np.isfinite(at[:, 0])
        earlier = np.where((t < at) & np.isfinite(e), e, -math.inf).max(axis=1)
        own = np.where((t == at) & np.isfinite(e), e, -math.inf).max(axis=1)
        # A lone refused call returns at once; a fan-out's mates run to their ends.
        end = np.maximum(np.where(every[:, j] > 1, own, gt[:, j]), earlier)
        # The next turn at the end plus a pause, or at the later of cadence and end.
        gain = (timing.gap - np.maximum(timing.cadence, end) if cadence else lat - end)
        saved[:, j] = np.where(fin, np.clip(gain, 0.0, None), 0.0)
        if cadence:
            again[:, j] = fin & (end <= gt[:, j]) & (end >= timing.cadence)
    sel = (mult > 0) & (saved > 0)
    if not sel.any():
        return none
    rows_b = before[sel]
    rows_t = rows_b + rc[sel]
    base = int(rows_t.max()) + 1
    both = np.concatenate([rows_b, rows_t], axis=1).astype(np.float64)
    code = both @ (float(base) ** np.arange(2 * k))
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    weight = np.bincount(inv.ravel(), weights=saved[sel], minlength=first.size) / n
    # The next sampled turn is the session's next turn (the sample is one session's):
    # its first launch with a call on this quota, if it comes soon enough.
    has = mult > 0
    j0 = np.argmax(has, axis=1)
    rows = np.arange(n)
    meets = has.any(axis=1) & (gt[rows, j0] < reach)
    nxt = np.roll(rc[rows, j0, :] * meets[:, None], -1, axis=0).astype(np.float64)
    again &= np.roll(meets, -1)[:, None]
    restart = np.bincount(inv.ravel(), weights=again[sel].astype(np.float64),
                          minlength=first.size) / n
    firsts = (again & sel).sum(axis=1).astype(np.float64) @ nxt / n
    refused = np.einsum("ij,ijk->k", (again & sel).astype(np.float64), rc) / n
    brings = (again & sel)[:, :, None] * nxt[:, None, :]
    return (weight, rows_b[first].astype(np.float64), rows_t[first].astype(np.float64),
            restart, np.stack([firsts, refused]), brings)


def _fail_odds(pmfs: list[NDArray[np.float64]], call_pmf: NDArray[np.float64],
               launches: NDArray[np.float64], is_requests: bool) -> NDArray[np.float64]:
    """Relative chance that each call fails (mean 1 over launches): 1 for requests; for
    token charges ``E[F_e(B_k)]/E[F_e(B)]`` (the calls turned away are the larger ones)."""
    if is_requests or not pmfs:
        return np.ones(len(pmfs))
    k = np.arange(call_pmf.size, dtype=np.float64)
    e_b = _dot(k, call_pmf)
    if e_b <= 0:  # every call charged more than the allowance: none fits (no odds)
        return np.ones(len(pmfs))
    surv = 1.0 - np.cumsum(call_pmf)
    f_e = np.concatenate([[0.0], np.cumsum(surv)[:-1]]) / e_b
    odds = np.array([_dot(p, f_e[: p.size]) for p in pmfs])
    w = launches / launches.sum()
    mean = _dot(w, odds)
    out: NDArray[np.float64] = odds / mean if mean > 0 else np.ones(len(pmfs))
    return out


def _tail_share(g: NDArray[np.float64], q: int, arriving: NDArray[np.float64]) -> float:
    """``P(S + X > q)``: the others' count ``S`` (pmf ``g``) and what an arriving call
    adds ``X`` (its own units ahead and its charge; pmf ``arriving``, any total mass).
    ``tail[s − lo] = P(S ≥ s)`` only from the least ``s`` the rule reads (``q + 2`` − the
    arrival law's length) up: the lattice runs to ~14 sd past the mean, far beyond ``q``,
    and the sum from the far end is the same sequence of additions either way."""
    lo = min(max(q + 2 - arriving.size, 0), g.size)
    tail = np.concatenate([np.cumsum(g[lo:][::-1])[::-1], [0.0]])
    idx = np.clip(q + 1 - np.arange(arriving.size), 0, g.size) - lo
    return float(_dot(arriving, tail[idx]))


def _own_prior(timing: TurnTiming, relevant: list[int], pmfs: list[NDArray[np.float64]],
               w: float) -> tuple[NDArray[np.float64], bool, NDArray[np.float64],
                                  tuple[NDArray[np.float64], NDArray[np.float64], float,
                                        tuple[tuple[int, NDArray[np.float64]], ...]]
                                  | None]:
    """Units of an arriving call's own session already in its trailing window (Palm view),
    whether every launch is a single call (no batch-mates: see
    :attr:`ClumpWindowModel.single_launches`), the same units without the
    batch-mates (:attr:`ClumpWindowModel.prior_pmf`), and those units plus the call's
    own charge, launch by launch, as is and weighted by the charge
    (:attr:`ClumpWindowModel.arrival_pmf`), with the mean age of those units over the
    window (:attr:`ClumpWindowModel.train_gap`; None: no launch).

    Launches in ``(τ − w, τ)`` count whole — those of its own turn and of the session's
    earlier turns (a closed session's previous turn ends a think time before this one
    starts: with Exp(60 s) think times one turn in seven has the previous one within
    10 s, and a 300-call fan-out is a fifteenth of a 500,000-token window); batch-mates
    launched at the same instant are ahead of it in random order (uniformly many).
    """
    gt, gc = timing.groups()
    n, g, _ = gc.shape
    mean_charge = np.array([float(_dot(np.arange(p.size), p)) for p in pmfs])
    rc = gc[:, :, relevant].astype(np.float64)          # [turn, event, relevant call]
    xg = rc @ mean_charge                                # units each event launches
    fin = np.isfinite(gt)
    # The sampled turns are consecutive turns of one session (``gap``: start to next
    # start), so the session's timeline is the turn starts plus the launch offsets.
    # Units launched in (τ − w, τ): range sums over the launches sorted by time.
    starts = np.concatenate([[0.0], np.cumsum(timing.gap[:-1])])
    last = float(starts[-1]) + float(np.where(fin, gt, 0.0).max()) + 2.0 * w + 1.0
    key = np.where(fin, starts[:, None] + np.where(fin, gt, 0.0), last).ravel()
    order = np.argsort(key, kind="stable")
    ks = key[order]
    cx = np.concatenate([[0.0], np.cumsum(np.where(fin, xg, 0.0).ravel()[order])])
    lo = searchsorted_near(ks, key - w, "right")
    hi = searchsorted_near(ks, key, "left")
    prior = (cx[hi] - cx[lo]).reshape(n, g)
    ties = rc.sum(axis=2) - 1.0                          # batch-mates of one launch
    # A launch of call j in an event with T batch-mates has 0..T of them ahead, each
    # with probability 1/(T + 1), counted in its own charge (as one batch-mate's).
    e_idx, j_idx = np.nonzero(rc.reshape(n * g, -1) > 0)
    if e_idx.size == 0:
        return np.ones(1), False, np.ones(1), None
    tcount = ties.ravel()[e_idx].astype(np.int64)
    reps = tcount + 1
    if reps.min() == reps.max():
        # Every launch among equally many batch-mates (a fixed fan-out): the same
        # entries in the same order as the general case's, as one (launch, ahead) grid.
        r = int(reps[0])
        ahead_r = np.arange(r)
        lat = np.rint(prior.ravel()[e_idx][:, None]
                      + ahead_r[None, :] * mean_charge[j_idx][:, None]).astype(np.int64)
        mass = np.repeat(rc.reshape(n * g, -1)[e_idx, j_idx] / reps, r)
        lat = lat.ravel()
        call = np.repeat(j_idx, r)
    else:
        ahead = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
        base = np.repeat(prior.ravel()[e_idx], reps)
        unit = np.repeat(mean_charge[j_idx], reps)
        mass = np.repeat(rc.reshape(n * g, -1)[e_idx, j_idx] / reps, reps)
        lat = np.rint(base + ahead * unit).astype(np.int64)
        call = np.repeat(j_idx, reps)
    out = np.bincount(lat, weights=mass)
    total = float(rc.sum())
    if total <= 0:
        return np.ones(1), False, np.ones(1), None
    # The earlier launches alone: each launch's prior with all its mass.
    before = np.bincount(np.rint(prior.ravel()[e_idx]).astype(np.int64),
                         weights=rc.reshape(n * g, -1)[e_idx, j_idx])
    # What each launch adds to the count it finds, its own units ahead and its own
    # charge together: a turn's later calls find its earlier ones in the log and are
    # often its larger ones (a short query, then a long synthesis with a large
    # max_tokens). Taken apart, the two laws pair a late call's units ahead with a first
    # call's charge as often as with its own, which narrows their sum and turns away
    # fewer calls near the allowance: hunt-2002 (two sequential calls into a 15 s TPM
    # log, no retries) simulated 381 [379–384], 398 so.
    size = int(lat.max()) + max(p.size for p in pmfs)
    joint, units = np.zeros(size), np.zeros(size)
    sites: list[tuple[int, NDArray[np.float64]]] = []
    for j in np.unique(call):
        at = call == j
        own_j = np.bincount(lat[at], weights=mass[at])
        pj = pmfs[int(j)]
        part = np.convolve(own_j, pj)
        sites.append((int(relevant[int(j)]), part / total))
        joint[: own_j.size + pj.size - 1] += part
        units[: own_j.size + pj.size - 1] += np.convolve(
            own_j, pj * np.arange(pj.size, dtype=np.float64))
    e_b = float(_dot(mean_charge[call], mass))
    # The age of a launch's own units ahead (s since they were launched), weighted by
    # the units, over the window, over the launches: how far the log has turned over
    # since the state its session's earlier calls were admitted to. Σ_j x_j·(t − t_j)
    # over the launches in (t − w, t) from the prefix sums of x and x·t.
    xt = np.where(fin, xg, 0.0).ravel() * np.where(fin, starts[:, None] + np.where(
        fin, gt, 0.0), 0.0).ravel()
    ctx = np.concatenate([[0.0], np.cumsum(xt[order])])
    ahead = cx[hi] - cx[lo]
    aged = key * ahead - (ctx[hi] - ctx[lo])
    launches = rc.sum(axis=2).ravel() * (fin & (xg > 0)).ravel()
    held = float(_dot(launches, ahead))
    gap = float(_dot(launches, aged)) / held / w if held > 0 else 1.0
    arrival = (joint / total, units / e_b if e_b > 0 else joint / total, gap, tuple(sites))
    # Single launches only (no batch-mates): every own unit is an earlier launch.
    return out / total, not tcount.any(), before / total, arrival


__all__ = ["ClumpWindowModel", "RetryModel", "attempts_per_call", "build"]
