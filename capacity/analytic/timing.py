"""When a turn's calls are launched: the clumping of launches that share a window.

A window of ``w`` seconds placed at a uniformly random phase sees, from one turn, the
*run* of that turn's launches falling inside it. For a turn whose launches (sorted) are
at offsets ``τ_1 ≤ … ≤ τ_m`` after its start, the window start ``u`` (relative to the
turn start) catches exactly the launches ``i..j`` for ``u`` in

    ``(τ_{i−1}, τ_i] ∩ (τ_j − w, τ_{j+1} − w]``   (``τ_0 = −∞``, ``τ_{m+1} = +∞``),

an interval of length ``(min(τ_i, τ_{j+1} − w) − max(τ_{i−1}, τ_j − w))^+``. Summed over
runs, these lengths weight each run's calls (its *signature*: how many of each call
spec it holds). With turn starts Poisson at rate Λ, the window count is then *exactly*
compound Poisson with Lévy measure ``Λ · Σ_sig E[length_sig] · law(charges of sig)`` —
the launches of one turn that land in the same window are counted as one clump, which
is what makes stages closer than ``w`` burstier than independent events.

The offsets come from a fixed-seed sample of turns (the DAG walked with the profile's
latency distributions: ``ttft + min(output, max_tokens)/tokens_per_second`` per call,
fan-out copies launched together, loops one after another), so the answer is
reproducible; the charges of a signature are exact lattice distributions (see
:mod:`capacity.model.workload`). Sessions are closed loops, not Poisson: the
correlation between consecutive turns of one session is measured here too
(:meth:`TurnTiming.cross_moment`) and used for the finite-population correction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from capacity.model.workload import Workload, sample_call_latency_output
from capacity.profile.schema import (
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    Step,
)

T = TypeVar("T")

TIMING_SAMPLE_SIZE = 8192
TIMING_SEED = 20261130
# Bound on sampled launch records (turns × launches per turn): memory and time stay small.
# With at most 10,000 calls per turn (the schema's bound) and at least 64 turns, a sample
# holds at most 2^20 launch records, and everything computed from it (runs, the cross
# moment, earlier launches) costs O(records·(specs + log records)): launches at one
# instant are one event (:meth:`TurnTiming.groups`), and no pass pairs launches.
_MAX_RECORDS = 1 << 20
_MIN_TURNS = 64


@dataclass(frozen=True)
class TurnTiming:
    """Sampled turns: sorted launch offsets (s; ``inf`` pads), the call spec of each
    launch (index into ``specs``; −1 pads), turn latency (s) and the pause after it."""

    times: NDArray[np.float64]      # (n, R)
    calls: NDArray[np.int64]        # (n, R)
    latency: NDArray[np.float64]    # (n,)
    gap: NDArray[np.float64]        # (n,) start of this turn to start of the next (s)
    specs: tuple[CallSpec, ...]
    # Per launch (aligned with ``times``): its level in the turn's all-refused walk (the
    # launches a turn makes one after another when every call returns at once — a call
    # at level k waits for k earlier stages), and when it ends unthrottled (s; inf pads).
    levels: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    ends: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    # Per launch: the output tokens drawn for its latency (before any max_tokens cut).
    outs: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    # Per turn, cadence-paced sessions only: the cadence drawn (s; the next turn starts at
    # ``max(cadence, end)``); empty for think-time sessions (the pause follows the end).
    cadence: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    _runs: dict[float, tuple[NDArray[np.float64], NDArray[np.int64]]] = field(
        default_factory=dict, repr=False, compare=False)
    _cross: dict[tuple[float, bytes, int], float] = field(
        default_factory=dict, repr=False, compare=False)
    _groups: list[tuple[NDArray[np.float64], NDArray[np.int64]]] = field(
        default_factory=list, repr=False, compare=False)
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False,
                                              compare=False)

    @property
    def n(self) -> int:
        """Sampled turns."""
        return int(self.times.shape[0])

    def memo(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """``build()``, remembered under ``key`` for this sample (quantities of the turns
        and charges alone, which every think time and every rebuild of a model share)."""
        if key not in self._memo:
            self._memo[key] = build()
        out: T = self._memo[key]
        return out

    def with_pause(self, mode: str, pause: NDArray[np.float64]) -> TurnTiming:
        """The same turns followed by the pauses ``pause`` (s, one per sampled turn): the
        sample of the profile with that think time (cadence), whose launches are drawn
        before its pauses. Only the launch events (:meth:`groups`) are kept; every other
        remembered quantity may depend on the pauses and is built again."""
        out = replace(self, gap=_gap(mode, self.latency, pause),
                                  cadence=pause if mode != "think_time" else np.zeros(0),
                                  _runs={}, _cross={}, _groups=list(self._groups), _memo={})
        if ("group-cells",) in self._memo:
            out._memo[("group-cells",)] = self._memo[("group-cells",)]
        return out

    def runs(self, w: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Run signatures for windows of ``w`` seconds.

        Returns ``(length, counts)``: ``length[s]`` is the expected window-phase measure
        (seconds per turn) over which the window catches exactly the calls of signature
        ``s``; ``counts[s, k]`` how many launches of spec ``k`` that signature holds.
        ``Σ_s length·|s| = w · launches per turn`` (every launch is seen for ``w`` s).
        """
        hit = self._runs.get(w)
        if hit is not None:
            return hit
        out = self._runs_uncached(w)
        self._runs[w] = out
        return out

    def groups(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Launches at equal offsets merged into one event: ``(times (n, G), counts (n, G,
        k))``, ``G`` the most distinct offsets in a turn (``inf`` pads, zero counts).

        The copies of a fan-out launch at the same instant, so a window catches all of
        them or none: every quantity below is a function of these events, and the cost
        grows with distinct offsets, not with copies.
        """
        if self._groups:
            return self._groups[0]
        t, c = self.times, self.calls
        n = t.shape[0]
        k = len(self.specs)
        valid = c >= 0
        cell, width = _launch_groups(t, c, valid)
        gt = np.full(n * width, math.inf)
        gt[cell[valid]] = t[valid]
        gt = gt.reshape(n, width)
        # The flat event number of each launch (row · G + event), for the per-event
        # charges of the window count (window._event_charges): the same numbers again.
        self._memo[("group-cells",)] = cell.copy()
        cell *= k
        cell += c
        flat = cell.ravel() if valid.all() else cell[valid]
        counts = np.bincount(flat, minlength=n * width * k).reshape(n, width, k)
        out: tuple[NDArray[np.float64], NDArray[np.int64]] = (gt, counts.astype(np.int64))
        self._groups.append(out)
        return out

    def _runs_uncached(self, w: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        # Sweep the window start u: the launches caught, those with u ≤ τ < u + w, change
        # only where u crosses a launch offset τ (it leaves) or τ − w (it enters). Between
        # consecutive breakpoints the run is fixed, so a turn has at most 2G runs of
        # positive length (G distinct offsets): O(n·G·(k + log G)), not O(n·r²).
        gt, gc = self.groups()
        n, _, k = gc.shape
        vals = np.concatenate([gt - w, gt], axis=1)  # enter at τ − w, leave at τ
        order = np.argsort(vals, axis=1, kind="stable")
        sv = np.take_along_axis(vals, order, axis=1)
        with np.errstate(invalid="ignore"):
            length = sv[:, 1:] - sv[:, :-1]  # inf − inf (padding) is nan: not a run
        take = np.isfinite(length) & (length > 0)
        sig = _run_signatures(order, gc, take)
        nonempty = sig.sum(axis=1) > 0
        length_all = length[take][nonempty]
        sig_all = sig[nonempty]
        if not length_all.size:
            return np.zeros(0), np.zeros((0, k), dtype=np.int64)
        base = int(sig_all.max()) + 1
        if k * math.log2(base) < 62:
            # One integer per signature (mixed radix): a 1-D unique is much faster.
            code = sig_all @ (base ** np.arange(k, dtype=np.int64))
            _, first, inv = np.unique(code, return_index=True, return_inverse=True)
            uniq = sig_all[first]
        else:
            uniq, inv = np.unique(sig_all, axis=0, return_inverse=True)
        total = np.bincount(inv.ravel(), weights=length_all, minlength=uniq.shape[0]) / n
        return total, uniq

    def cross_moment(self, w: float, weight: NDArray[np.float64], max_lag: int = 64) -> float:
        """``2·E[Σ_{a∈turn j, b∈turn j+l, l≥1} x_a x_b (w − |t_b − t_a|)^+]`` per turn.

        ``weight[k]`` is the mean charge ``x`` of spec ``k``. Divided by the mean cycle
        this is the part of one session's second moment of its window count that comes
        from two different turns of the same session landing in one window.
        """
        key = (w, weight.tobytes(), max_lag)
        hit = self._cross.get(key)
        if hit is None:
            hit = self._cross[key] = self._cross_uncached(w, weight, max_lag)
        return hit

    def _cross_uncached(self, w: float, weight: NDArray[np.float64], max_lag: int) -> float:
        # On the grouped events (a fan-out's copies are one event of their summed charge),
        # each lag by sorted prefix sums: for every launch a, the launches b of the later
        # turn within w of it add x_b·(w − |t_b − t_a|) = x_b·(w ∓ t_a) ± x_b·t_b, two
        # range sums. O(n·G·log(n·G)) per lag instead of O(n·G²). Where the launches fall
        # (the sorted keys and range bounds) does not depend on the charges: shared by
        # every constraint with windows of w (:meth:`_cross_lags`).
        gt, gc = self.groups()
        n = gc.shape[0]
        x = (gc @ weight).astype(np.float64)  # (n, G) charge per event
        fin = np.isfinite(gt)
        total = 0.0
        xa = np.where(fin, x, 0.0)
        x_a = xa.ravel()
        fn = getattr(_kernels, "cross_lag", None)  # (None: no build, or one before it)
        for t_a, t_b, other, lo, mid, hi in self._cross_lags(w, max_lag):
            if fn is not None:
                # Compiled: the same operations in the same order, one pass per lag.
                try:
                    total += fn(xa, other, t_a, t_b, lo, mid, hi, float(w)) / n
                    continue
                except ValueError:  # (not these dtypes: numpy's way)
                    pass
            x_b = np.where(fin[other], x[other], 0.0).ravel()
            cx = np.concatenate([[0.0], np.cumsum(x_b)])
            cxt = np.concatenate([[0.0], np.cumsum(x_b * t_b)])
            below = (w - t_a) * (cx[mid] - cx[lo]) + (cxt[mid] - cxt[lo])
            above = (w + t_a) * (cx[hi] - cx[mid]) - (cxt[hi] - cxt[mid])
            total += float(_dot(x_a, below + above)) / n
        return 2.0 * total

    def _cross_lags(self, w: float, max_lag: int) -> Iterator[tuple[
            NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.intp],
            NDArray[np.intp], NDArray[np.intp]]]:
        """Per lag (until no pair of launches can be within ``w``): the launch offsets
        ``t_a`` (this turn's) and ``t_b`` (turn i + lag's, shifted by the starts, sorted),
        the later turn of each, and each launch a's range bounds in ``t_b``: ``(t_a − w,
        t_a]`` and ``(t_a, t_a + w)``. Remembered when small (a few MB)."""
        key = ("cross-lags", w, max_lag)
        hit = self._memo.get(key)
        if hit is not None:
            yield from hit
            return
        gt, gc = self.groups()
        n, g, _ = gc.shape
        keep = n * g <= 1 << 17
        lags: list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64],
                         NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]] = []
        fin = np.isfinite(gt)
        first = np.where(fin[:, 0], gt[:, 0], 0.0)
        last = np.where(fin, gt, -math.inf).max(axis=1)
        span = float(np.where(fin, gt, 0.0).max()) if fin.any() else 0.0
        start = np.zeros(n)
        idx = np.arange(n)
        rows = np.repeat(idx, g)
        t_a = np.where(fin, gt, 0.0).ravel()
        for lag in range(1, max_lag + 1):
            start = start + self.gap[(idx + lag - 1) % n]
            other = (idx + lag) % n
            # Skip when no pair of launches can be within w.
            if float((start + first[other] - last).min()) >= w:
                break
            # Turn i's own launches and those of turn i + lag (shifted by the starts),
            # each row's block placed `off` apart so no pair of rows is within w.
            off = float(start.max()) + span + 2.0 * w + 1.0
            t_b = (start[:, None] + np.where(fin[other], gt[other], span)).ravel()  # sorted
            key_b = rows * off + t_b
            key_a = rows * off + t_a
            lo = searchsorted_near(key_b, key_a - w, "right")
            mid = searchsorted_near(key_b, key_a, "right")
            hi = searchsorted_near(key_b, key_a + w, "left")
            one = (t_a, t_b, other, lo, mid, hi)
            if keep:
                lags.append(one)
            yield one
        if keep:
            self._memo[key] = lags

def searchsorted_near(a: NDArray[Any], v: NDArray[Any], side: str) -> NDArray[np.intp]:
    """``np.searchsorted(a, v, side=side)`` (``a`` sorted) for keys that come nearly in
    order — a turn sample's launch keys, turn by turn (rising, with a drop at each turn's
    padding): compiled (capacity/analytic/_kernels.c), each search galloping from the last
    answer (numpy's bisects the whole of ``a`` for each key: tool-agent's cross-turn lags
    searched ~100,000 keys six times, ~15 ms an answer). The same indices."""
    fn = getattr(_kernels, "search_sorted", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: NDArray[np.intp] = fn(a, v, side == "right")
            return out
        except ValueError:  # (not float64 vectors, a not sorted, a nan: numpy's way)
            pass
    return np.searchsorted(a, v, side=side)  # type: ignore[call-overload,no-any-return]


def _launch_groups(t: NDArray[np.float64], c: NDArray[np.int64], valid: NDArray[np.bool_]
                   ) -> tuple[NDArray[np.int64], int]:
    """(the flat event number ``row·G + event`` of every launch record, ``G``) for
    :meth:`TurnTiming.groups`: a new event at each launch whose offset differs from the
    record before it. Compiled (capacity/analytic/_kernels.c, one pass; integers) or
    numpy."""
    fn = getattr(_kernels, "launch_groups", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            cells, width = fn(t, c)
            return cells, int(width)
        except ValueError:  # (not contiguous / not these dtypes: numpy's way)
            pass
    n, r = t.shape
    new = np.ones((n, r), dtype=bool)
    np.not_equal(t[:, 1:], t[:, :-1], out=new[:, 1:])
    new &= valid
    # In place on flat cell numbers, without row/column index arrays: a 300-call
    # fan-out's sample holds a million launch records (52 → 19 ms).
    cell = np.cumsum(new, axis=1)
    cell -= 1                                   # the event (group) of each launch
    width = max(1, int(cell.max()) + 1) if valid.any() else 1
    cell += np.arange(n, dtype=np.int64)[:, None] * width
    return cell, width


def _run_signatures(order: NDArray[np.intp], gc: NDArray[np.int64],
                    take: NDArray[np.bool_]) -> NDArray[np.int64]:
    """The launches (by spec) a window catches after each kept breakpoint (``take``, in
    row-major order) of :meth:`TurnTiming._runs_uncached`: the running sums of the
    groups entering (``order`` < G) and leaving. Compiled (capacity/analytic/_kernels.c,
    one pass over the breakpoints; integer sums, exact) or numpy, spec by spec."""
    fn = getattr(_kernels, "run_signatures", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: NDArray[np.int64] = fn(order, gc, take)
            return out
        except ValueError:  # (not contiguous / not these dtypes: numpy's way)
            pass
    return _run_signatures_numpy(order, gc, take)


def _run_signatures_numpy(order: NDArray[np.intp], gc: NDArray[np.int64],
                          take: NDArray[np.bool_]) -> NDArray[np.int64]:
    k = gc.shape[2]
    rows, cols = np.nonzero(take)
    sig = np.zeros((rows.size, k), dtype=np.int64)
    for j in range(k):
        delta = np.concatenate([gc[:, :, j], -gc[:, :, j]], axis=1)
        cum = np.take_along_axis(delta, order, axis=1).cumsum(axis=1)
        sig[:, j] = cum[rows, cols]
    return sig


_kernels: Any
try:  # the compiled loops (setup.py builds them with the simulator)
    from capacity.analytic import _kernels
except ImportError:  # pragma: no cover - a build without them: numpy
    _kernels = None


def _dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.multiply(a, b).sum())


def _call_latency(call: CallSpec, profile: Profile, rng: np.random.Generator,
                  n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # The model serving each copy (a routed call's deployment): capacity.model.workload.
    return sample_call_latency_output(call, profile, rng, n)


class _Walker:
    def __init__(self, profile: Profile, rng: np.random.Generator, n: int) -> None:
        self.profile = profile
        self.rng = rng
        self.n = n
        self.times: list[NDArray[np.float64]] = []
        self.calls: list[int] = []
        self.active: list[NDArray[np.bool_]] = []
        self.levels: list[NDArray[np.int64]] = []
        self.ends: list[NDArray[np.float64]] = []
        self.outs: list[NDArray[np.float64]] = []
        self.spec_index: dict[int, int] = {}
        self.specs: list[CallSpec] = []
        self.level_end = np.zeros(n, dtype=np.int64)

    def spec(self, call: CallSpec) -> int:
        key = id(call)
        if key not in self.spec_index:
            self.spec_index[key] = len(self.specs)
            self.specs.append(call)
        return self.spec_index[key]

    def walk(self, steps: tuple[Step, ...] | list[Step], t0: NDArray[np.float64],
             active: NDArray[np.bool_], lv0: NDArray[np.int64] | None = None
             ) -> NDArray[np.float64]:
        """Launch records of ``steps`` started at ``t0`` where ``active``; their end times.

        ``lv0``: the all-refused level the steps start at (see :attr:`TurnTiming.levels`);
        the level they end at is left in ``self.level_end``. No random draw depends on it.
        """
        t = t0
        lv = np.zeros(self.n, dtype=np.int64) if lv0 is None else lv0
        for step in steps:
            if isinstance(step, CallStep):
                self.times.append(t)
                self.calls.append(self.spec(step.call))
                self.active.append(active)
                self.levels.append(lv)
                lat, out = _call_latency(step.call, self.profile, self.rng, self.n)
                t = np.where(active, t + lat, t)
                self.ends.append(t)
                self.outs.append(out)
                lv = np.where(active, lv + 1, lv)
            elif isinstance(step, OptionalStep):
                opt = step.optional
                on = active & (self.rng.random(self.n) < opt.probability)
                end = self.walk(opt.body, t, on, lv)
                t = np.where(on, end, t)
                lv = np.where(on, self.level_end, lv)
            elif isinstance(step, ParallelStep):
                par = step.parallel
                k = par.count.sample(self.rng, self.n).astype(np.int64)
                kmax = int(k[active].max()) if active.any() else 0
                end = t
                lv_end = lv
                body = par.body  # (a property: a new CallStep, validated, per access)
                for j in range(kmax):
                    on = active & (k > j)
                    e = self.walk(body, t, on, lv)
                    end = np.where(on, np.maximum(end, e), end)
                    # All refused, the stage ends with its deepest copy.
                    lv_end = np.where(on, np.maximum(lv_end, self.level_end), lv_end)
                t = end
                lv = lv_end
            else:
                assert isinstance(step, RepeatStep)
                rep = step.repeat
                k = rep.count.sample(self.rng, self.n).astype(np.int64)
                kmax = int(k[active].max()) if active.any() else 0
                body = rep.body
                for j in range(kmax):
                    on = active & (k > j)
                    e = self.walk(body, t, on, lv)
                    t = np.where(on, e, t)
                    lv = np.where(on, self.level_end, lv)
        self.level_end = lv
        return t


def _max_launches(steps: tuple[Step, ...] | list[Step]) -> int:
    total = 0
    for step in steps:
        if isinstance(step, CallStep):
            total += 1
        elif isinstance(step, OptionalStep):
            total += _max_launches(step.optional.body)
        elif isinstance(step, RepeatStep):
            total += int(step.repeat.count.upper) * _max_launches(step.repeat.body)
        else:
            assert isinstance(step, ParallelStep)
            total += int(step.parallel.count.upper) * _max_launches(step.parallel.body)
    return total


def turn_timing(wl: Workload, n: int = TIMING_SAMPLE_SIZE) -> TurnTiming:
    """A fixed-seed sample of ``n`` turns' launch offsets (fewer for very large turns)."""
    profile = wl.profile
    most = max(_max_launches(t.steps) for t in wl.turns)
    n = int(max(_MIN_TURNS, min(n, _MAX_RECORDS // max(most, 1))))
    rng = np.random.default_rng(TIMING_SEED)
    probs = np.array([t.probability for t in wl.turns])
    which = rng.choice(len(probs), size=n, p=probs / probs.sum())
    walker = _Walker(profile, rng, n)
    latency = np.zeros(n)
    zero = np.zeros(n)
    for i, turn in enumerate(wl.turns):
        on = which == i
        if on.any():
            end = walker.walk(turn.steps, zero, on)
            latency = np.where(on, end, latency)
    if walker.times:
        # The launch columns stacked as rows (contiguous copies), masked there, and turned
        # into (n, R) once each: np.stack(axis=1) writes every column strided, which was
        # most of a 300-call fan-out's sample (a million records, five fields).
        act = np.stack(walker.active)
        times_r = np.where(act, np.stack(walker.times), math.inf)
        call_col = np.asarray(walker.calls, dtype=np.int64)[:, None]

        masked = getattr(_kernels, "masked_columns", None)  # (None: no build/an older one)

        def rows(xs: list[NDArray[Any]], fill: float, r: int) -> NDArray[Any]:
            if masked is not None:
                try:  # compiled: the same values copied in one pass
                    got: NDArray[Any] = masked(xs, act, r, fill)
                    return got
                except ValueError:  # (not one dtype matching the fill: numpy's way)
                    pass
            out: NDArray[Any] = np.ascontiguousarray(
                np.where(act[:r], np.stack(xs[:r]), fill).T)
            return out

        def call_rows(r: int) -> NDArray[np.int64]:
            # The launches' call columns as rows: the mask transposed as bytes and the
            # row of call numbers broadcast into it (the same values as transposing the
            # (R, n) int64 ``where``, at a quarter of its cost on a 300-call fan-out).
            out: NDArray[np.int64] = np.where(np.ascontiguousarray(act[:r].T),
                                              call_col[:r, 0], -1)
            return out

        # Drop columns that are padding in every row (the pads sort last): the sorted
        # columns kept gathered once by flat index (a 300-call fan-out's million records).
        width = max(1, int(np.isfinite(times_r).sum(axis=0).max()))
        if bool((times_r[1:] >= times_r[:-1]).all()):
            # In order already (a fan-out's copies launch together): the stable sort's
            # order is the identity, the columns kept are the first ``width``.
            times = np.ascontiguousarray(times_r[:width].T)
            ends, outs = rows(walker.ends, math.inf, width), rows(walker.outs, 0.0, width)
            levels = rows(walker.levels, -1, width)
            calls = call_rows(width)
        else:
            r = len(walker.times)
            times = np.ascontiguousarray(times_r.T)
            calls = call_rows(r)
            levels = rows(walker.levels, -1, r)
            ends, outs = rows(walker.ends, math.inf, r), rows(walker.outs, 0.0, r)
            order = np.argsort(times, axis=1, kind="stable")[:, :width]
            order += np.arange(n, dtype=order.dtype)[:, None] * times.shape[1]
            times, ends, outs = times.take(order), ends.take(order), outs.take(order)
            calls, levels = calls.take(order), levels.take(order)
    else:
        times = np.full((n, 1), math.inf)
        calls = np.full((n, 1), -1, dtype=np.int64)
        levels = np.full((n, 1), -1, dtype=np.int64)
        ends = np.full((n, 1), math.inf)
        outs = np.zeros((n, 1))
    s = profile.session
    pause = s.pause.sample(rng, n)  # drawn last: the launches above do not depend on it
    return TurnTiming(times, np.ascontiguousarray(calls), latency,
                      _gap(s.mode, latency, pause), tuple(walker.specs),
                      np.ascontiguousarray(levels), np.ascontiguousarray(ends),
                      outs=np.ascontiguousarray(outs),
                      cadence=pause if s.mode != "think_time" else np.zeros(0))


def _gap(mode: str, latency: NDArray[np.float64],
         pause: NDArray[np.float64]) -> NDArray[np.float64]:
    """Start to next start (s): turn + think time, or the later of cadence and turn end."""
    out: NDArray[np.float64] = (latency + pause if mode == "think_time"
                                else np.maximum(pause, latency))
    return out


__all__ = ["TIMING_SAMPLE_SIZE", "TurnTiming", "turn_timing"]
