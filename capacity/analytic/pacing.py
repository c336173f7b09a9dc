"""Client-side pacing in the analytic model: the pacer is a queue in front of the provider.

The pacer (THE rule: :class:`capacity.model.pacing.Pacer`) is a fleet-wide FIFO queue
released by a token bucket (rate ``r`` calls per second, depth ``b``) and/or a cap of
``c`` calls in flight (a call holds its slot for its whole latency). Calls it holds back
*wait* instead of being refused, so with N closed-loop sessions the answer is set by
those waits (the ``p95_turn_latency`` target) and by what is left of the quota's 429s
once the stream is smoothed.

Concurrency cap — a c-server station whose service time is the call's latency
    A session holds ``d(t)`` calls in the pacer's system (waiting or in flight): one
    during a sequential call, the copies of a fan-out while they run, none between
    turns. Sessions are independent, so the calls the other ``N − 1`` sessions hold is
    the (N−1)-fold convolution of one session's time-average law of ``d`` (arrival
    theorem for a closed system). A call arriving ``j``-th in its own fan-out, finding
    ``D'`` calls held by the others, waits for ``D' + j − c + 1`` departures (FIFO); with
    every slot busy they leave at rate ``c / E[S]`` (renewal reward over the busy
    slots), so the wait is Gamma(k, c/E[S]). The calls of one turn see correlated
    ``D'`` (the others' active spells persist: :class:`_SlotWait`). The waits stretch
    every session's hold ``d(t)`` (a waiting call holds its place), which is iterated to
    a fixed point.

Token bucket — a server of rate r (mean-value analysis of the closed network)
    A call's release is the start of a service slot ``1/r`` in a single-server queue
    that runs beside the call's own latency; the session waits only until the start.
    MVA recursion over n = 1..N (Reiser & Lavenberg 1980): an arriving call waits for
    the calls queued ahead and a residual share (:data:`RATE_RESIDUAL`) of the slot in
    service; the session's cycle is its unthrottled turn plus think time plus the waits
    of the turn's stages, or ``E[max(cadence, turn + waits)]`` for a cadence, and never
    shorter than N calls per turn at r (the queue grows until the turns stretch that
    far). The wait law is taken exponential with ``P(wait > 0) = U`` (the pacer's
    utilisation) and the MVA mean; the bucket's depth lets a fan-out's first copies pass.

The p95 turn latency
    The fixed-seed sample of turns (the DAG walked with the profile's latency laws, as
    :mod:`capacity.analytic.timing` does) walked again with each call's wait drawn from
    the law above (a fan-out's ``j``-th copy behind its ``j`` siblings): the turn's
    latency law is the unthrottled one convolved with the queueing delays along its
    critical path. N is the largest whose p95 meets the target.

The quota behind the pacer (:func:`paced`)
    The pacer releases at most ``r·w`` calls in a window of ``w`` seconds, plus what its
    depth adds after an idle spell (``(depth − 1)·(1 − U)``), or about ``c·w/E[S]`` behind
    a cap: a quota whose 429 share (normal stop-loss of those calls' charges) stays within
    the target at that release one session past its unpaced ceiling cannot bind (the
    release only shrinks as N grows). Otherwise its
    unpaced ceiling stands: the smoothing of bursts below the pacer's rate is not
    modelled (conservative: web-research behind 200 calls/min against 150 RPM, 42 against
    a simulated 44 [43–45]). With nothing binding, the answer is the simulated search's
    own bound, ``mean ceiling / (1 − target)``.

Accuracy against the simulated search (benchmarks/RESULTS.md, "Client-side pacing"):
25 of 28 grid profiles within 3% or the CI; the three outside are conservative (the
smoothing above, with and without a p95 target, and a cap of 40 near its knee, 28
against 29 [29–29], where the model's waits run high). Not modelled: pacing with
populations or routes (said in the notes), and retries (a retried call holds its slot
through its backoff; the turn sample has none). Wide fan-outs behind a bucket are
conservative (a 300-call fan-out behind 3,000/min: 16 against 26 [26–27]; said in the
notes).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from capacity.analytic.timing import _MIN_TURNS, _max_launches
from capacity.model.dist import Distribution, _ndtr
from capacity.model.workload import (
    ONE,
    Batch,
    Constraint,
    Workload,
    batch_units_pmf,
    sample_call_latency,
)
from capacity.profile.schema import (
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    Step,
)

if TYPE_CHECKING:
    from capacity.analytic.model import CeilingResult

_kernels: Any
try:  # the compiled loops (setup.py builds them with the simulator)
    from capacity.analytic import _kernels
except ImportError:  # pragma: no cover - a build without them: the Python loops
    _kernels = None

PACED_SAMPLE_SIZE = 4096
PACED_SEED = 20261130
_FIXED_POINT_ITERATIONS = 8
_FIXED_POINT_SAMPLE_SIZE = 1024
# Wider fan-outs than this behind a token bucket get a note (the wait law is conservative).
_WIDE_FAN_OUT = 16


@dataclass
class _Walked:
    latency: NDArray[np.float64]           # (n,) turn latency with waits (s)
    arrive: NDArray[np.float64]            # (n, m) call arrival offsets (inf: none)
    leave: NDArray[np.float64]             # (n, m) call completion offsets
    service: NDArray[np.float64]           # (n, m) call latencies (nan: none)


class _Replayed:
    """The wait laws' draws in one walk: what a fresh generator seeded ``seed`` gives.

    Every walk of a sample with a law asks the same draws in the same order (the same
    shapes: common random numbers), so they are made once, kept in ``tape`` and replayed
    (copies); a walk that asks otherwise gets a fresh generator run through the tape's
    draws up to where it differs — the same numbers either way."""

    def __init__(self, seed: int, tape: list[tuple[str, tuple[int, ...], NDArray[Any]]],
                 end: list[np.random.Generator]) -> None:
        self.seed = seed
        self.tape = tape
        self.end = end  # [the generator that made the tape, at its end] (none yet: [])
        self.i = 0
        self.live: np.random.Generator | None = None

    def _draw(self, method: str, shape: int | tuple[int, ...]) -> NDArray[Any]:
        size = shape if isinstance(shape, tuple) else (shape,)
        if self.live is None:
            i = self.i
            if i < len(self.tape):
                m, s, arr = self.tape[i]
                if m == method and s == size:
                    self.i += 1
                    return arr.copy()
                self.live = np.random.default_rng(self.seed)
                for m, s, _ in self.tape[:i]:
                    getattr(self.live, m)(s)
            else:
                if not self.end:
                    self.end.append(np.random.default_rng(self.seed))
                out: NDArray[Any] = getattr(self.end[0], method)(size)
                self.tape.append((method, size, out))
                self.i += 1
                return out.copy()
        res: NDArray[Any] = getattr(self.live, method)(size)
        return res

    def random(self, shape: int | tuple[int, ...]) -> NDArray[np.float64]:
        return self._draw("random", shape)

    def standard_normal(self, shape: int | tuple[int, ...]) -> NDArray[np.float64]:
        return self._draw("standard_normal", shape)

    def standard_exponential(self, shape: int | tuple[int, ...]) -> NDArray[np.float64]:
        return self._draw("standard_exponential", shape)


class _WaitLaw:
    """Draws a call's pacer wait (s) given its position behind its fan-out siblings and
    its arrival offset in its turn (s)."""

    def reset(self) -> None:
        """A new walk begins (laws that remember a turn's earlier calls forget them)."""

    def draw(self, pos: NDArray[np.int64], t: NDArray[np.float64],
             rng: _Replayed) -> NDArray[np.float64]:
        raise NotImplementedError


def _counts(d: Distribution, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    return d.sample(rng, n).astype(np.int64)


# Stands for the walk's generator of the turns' own draws (made only when one is needed).
_RNG = object()


class PacedTurns:
    """A fixed-seed sample of turns, walked with pacer waits drawn per call."""

    def __init__(self, wl: Workload, n: int = PACED_SAMPLE_SIZE) -> None:
        self.wl = wl
        self.profile: Profile = wl.profile
        # At most ~2^18 call records (turns × calls per turn): every N tried walks the
        # sample again, a few times for the fixed point (a 300-call fan-out: 873 turns).
        most = max(_max_launches(t.steps) for t in wl.turns)
        n = int(max(_MIN_TURNS, min(n, (n * 64) // max(most, 1))))
        self.n = n
        rng = np.random.default_rng(PACED_SEED)
        probs = np.array([t.probability for t in wl.turns])
        self.which = rng.choice(len(probs), size=n, p=probs / probs.sum())
        s = self.profile.session
        self.think = s.mode == "think_time"
        self.pause = s.pause.sample(rng, n)
        self._pause_mean = self.pause.mean()  # (every walk's cycle adds it)
        self._draws: list[NDArray[Any]] = []
        self._wait_tape: list[tuple[str, tuple[int, ...], NDArray[Any]]] = []
        self._wait_end: list[np.random.Generator] = []
        self.base = self.walk(None)

    def walk(self, law: _WaitLaw | None) -> _Walked:
        """The sample's turns with waits from ``law`` (None: no waits); same draws each
        time (common random numbers), so answers are monotone in the law."""
        wrng = _Replayed(PACED_SEED + 2, self._wait_tape, self._wait_end)
        if law is not None:
            law.reset()
        # The turns' own draws (latencies, counts, branches) are the same in every walk:
        # made once, replayed in order. Their generator (a fresh one per walk, ``_RNG`` in
        # the arguments) is only made when a draw is not in the cache yet: in the first
        # walk (every later one replays them all).
        cache = self._draws
        seq = [0]
        gen: list[np.random.Generator] = []

        def once(make: Callable[..., NDArray[Any]], *args: Any) -> NDArray[Any]:
            i = seq[0]
            seq[0] += 1
            if i == len(cache):
                if not gen:
                    gen.append(np.random.default_rng(PACED_SEED + 1))
                cache.append(make(*(gen[0] if a is _RNG else a for a in args)))
            return cache[i]

        arrive: list[NDArray[np.float64]] = []
        leave: list[NDArray[np.float64]] = []
        service: list[NDArray[np.float64]] = []
        n = self.n
        # The calls' latencies and which calls a turn makes are the same in every walk
        # (replayed draws): the service matrix is the first walk's.
        first = not hasattr(self, "base")

        def walk(steps: tuple[Step, ...] | list[Step], t0: NDArray[np.float64],
                 active: NDArray[np.bool_], pos: NDArray[np.int64]) -> NDArray[np.float64]:
            t = t0
            for step in steps:
                if isinstance(step, CallStep):
                    lat = once(sample_call_latency, step.call, self.profile, _RNG, n)
                    w = law.draw(pos, t, wrng) if law is not None else np.zeros(n)
                    end = t + w + lat
                    arrive.append(np.where(active, t, math.inf))
                    leave.append(np.where(active, end, math.inf))
                    if first:
                        service.append(np.where(active, lat, math.nan))
                    t = np.where(active, end, t)
                    pos = np.zeros(n, dtype=np.int64)
                elif isinstance(step, OptionalStep):
                    opt = step.optional
                    on = active & (once(np.random.Generator.random, _RNG, n) < opt.probability)
                    end = walk(opt.body, t, on, pos)
                    t = np.where(on, end, t)
                elif isinstance(step, ParallelStep) and len(step.parallel.body) == 1 \
                        and isinstance(step.parallel.body[0], CallStep):
                    # A fan-out of one call: its copies as the columns of one draw (a
                    # 300-call fan-out walked copy by copy took seconds).
                    par = step.parallel
                    call = step.parallel.body[0].call
                    k = once(_counts, par.count, _RNG, n)
                    kmax = int(k[active].max()) if active.any() else 0
                    if kmax > 0:
                        lat2 = once(sample_call_latency, call, self.profile, _RNG,
                                    n * kmax).reshape(n, kmax)
                        col = np.arange(kmax)
                        on2 = active[:, None] & (col < k[:, None])
                        t2 = np.broadcast_to(t[:, None], (n, kmax))
                        w2 = (law.draw(pos[:, None] + col, t2, wrng) if law is not None
                              else np.zeros((n, kmax)))
                        end2 = t2 + w2 + lat2
                        arrive.append(np.where(on2, t2, math.inf))
                        leave.append(np.where(on2, end2, math.inf))
                        if first:
                            service.append(np.where(on2, lat2, math.nan))
                        t = np.where(on2.any(axis=1),
                                     np.where(on2, end2, -math.inf).max(axis=1), t)
                    pos = np.zeros(n, dtype=np.int64)
                elif isinstance(step, ParallelStep):
                    par = step.parallel
                    k = once(_counts, par.count, _RNG, n)
                    kmax = int(k[active].max()) if active.any() else 0
                    end = t
                    body = par.body  # (a property: a new CallStep, validated, per access)
                    for j in range(kmax):
                        on = active & (k > j)
                        e = walk(body, t, on, pos + j)
                        end = np.where(on, np.maximum(end, e), end)
                    t = end
                    pos = np.zeros(n, dtype=np.int64)
                else:
                    assert isinstance(step, RepeatStep)
                    rep = step.repeat
                    k = once(_counts, rep.count, _RNG, n)
                    kmax = int(k[active].max()) if active.any() else 0
                    body = rep.body
                    for j in range(kmax):
                        on = active & (k > j)
                        e = walk(body, t, on, pos)
                        t = np.where(on, e, t)
            return t

        latency = np.zeros(n)
        zero = np.zeros(n)
        for i, turn in enumerate(self.wl.turns):
            on = self.which == i
            if on.any():
                end = walk(turn.steps, zero, on, np.zeros(n, dtype=np.int64))
                latency = np.where(on, end, latency)
        if arrive:
            a, lv = (np.concatenate([x.reshape(n, -1) for x in xs], axis=1)
                     for xs in (arrive, leave))
            sv = (np.concatenate([x.reshape(n, -1) for x in service], axis=1) if first
                  else self.base.service)
        else:
            a = lv = np.full((n, 1), math.inf)
            sv = np.full((n, 1), math.nan)
        return _Walked(latency, a, lv, sv)

    def widest(self) -> int:
        """Most calls one turn of the sample launches at one instant (a fan-out)."""
        a = np.sort(self.base.arrive, axis=1)
        n, m = a.shape
        if m == 0:
            return 0
        new = np.ones((n, m), dtype=bool)
        new[:, 1:] = a[:, 1:] != a[:, :-1]
        group = np.cumsum(new, axis=1) - 1 + (np.arange(n) * m)[:, None]
        sizes = np.bincount(group[np.isfinite(a)].ravel(), minlength=n * m)
        return int(sizes.max()) if sizes.size else 0

    def cycle(self, latency: NDArray[np.float64]) -> float:
        """Mean start-to-start time (s) of a session whose turns take ``latency``."""
        if self.think:
            return float(latency.mean() + self._pause_mean)
        return float(np.maximum(self.pause, latency).mean())


def hold_law(w: _Walked, cycle_s: float) -> NDArray[np.float64]:
    """Time-average law of the calls one session holds in the pacer (waiting or in
    flight): ``p[d]``, d = 0, 1, ... over its whole cycle."""
    a, lv = w.arrive, w.leave
    n = a.shape[0]
    p = _hold_sums(a, lv) / n
    p = p / cycle_s
    p[0] = max(0.0, 1.0 - float(p[1:].sum()))
    return np.asarray(p / p.sum(), dtype=np.float64)


def _hold_sums(a: NDArray[np.float64], lv: NDArray[np.float64]) -> NDArray[np.float64]:
    """The held spans (s) summed by the level held, over all rows: compiled
    (capacity/analytic/_kernels.c: the same row order, sums in the same order) or numpy."""
    if (_kernels is not None and a.dtype == np.float64 and lv.dtype == np.float64
            and a.flags.c_contiguous and lv.flags.c_contiguous):
        try:
            out: NDArray[np.float64] = _kernels.hold_law_sums(a, lv)
            return out
        except ValueError:  # (nan: never from walk) the numpy way below
            pass
    return _hold_sums_numpy(a, lv)


def _hold_sums_numpy(a: NDArray[np.float64], lv: NDArray[np.float64]
                     ) -> NDArray[np.float64]:
    n, m = a.shape
    # (A call not made arrives and leaves at inf: walk's arrays hold no nan.)
    t = np.concatenate([a, lv], axis=1)
    order = np.argsort(t, axis=1, kind="stable")
    ts = t.ravel()[order + np.arange(0, n * 2 * m, 2 * m)[:, None]]  # (take_along_axis)
    # +1 at an arrival (the first m columns), −1 at a departure, in time order.
    level = np.where(order < m, 1.0, -1.0).cumsum(axis=1)
    with np.errstate(invalid="ignore"):
        dur = ts[:, 1:] - ts[:, :-1]
    lev = level[:, :-1]
    # (A nan span, inf − inf, fails dur > 0; an infinite one has no call held.)
    ok = (dur > 0) & (lev > 0)
    held = lev[ok]
    top = int(held.max()) if held.size else 0
    return np.asarray(np.bincount(held.astype(np.int64), weights=dur[ok], minlength=top + 1),
                      dtype=np.float64)


def convolve_power(p: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """The law of the sum of ``k`` independent copies of ``p`` (a pmf on 0, 1, ...)."""
    if k <= 0:
        return np.ones(1)
    size = (p.size - 1) * k + 1
    L = 1 << max(4, math.ceil(math.log2(size)))
    out = np.fft.irfft(np.fft.rfft(p, L) ** k, L)[:size]
    out = np.clip(out, 0.0, None)
    return np.asarray(out / out.sum(), dtype=np.float64)


# Φ on a grid, for its inverse by interpolation (|z| ≤ 8.5: Φ is within 1e-17 of 0 or 1).
_Z = np.linspace(-8.5, 8.5, 8193)
_PHI = _ndtr(_Z)


class _SlotWait(_WaitLaw):
    """Wait for ``D' + pos − c + 1`` departures at rate ``mu`` (Gamma), ``D'`` ~ ``others``.

    The calls of one turn see the others' holds at nearby times, and those persist over
    the others' turns: ``D'`` is drawn through a Gaussian AR(1) along the turn,
    correlation ``exp(−Δt/tau)`` between calls ``Δt`` seconds apart (``tau`` = half the
    mean turn latency, the integral scale of an active spell's triangular
    autocorrelation; a fan-out's copies see the same ``D'``). Independent draws average
    the turn's waits out, and its p95 came out too low (the 1-3-1 turn behind a cap of
    10: 19 sessions against a simulated 18 [18–19]).
    """

    def __init__(self, others: NDArray[np.float64], c: int, mu: float, tau: float) -> None:
        cdf = np.cumsum(others)
        # D' = #{cdf < Φ(z)} = #{Φ⁻¹(cdf) < z}: the thresholds in z once, not Φ per draw.
        self.zcut = np.interp(cdf / cdf[-1], _PHI, _Z, left=-math.inf, right=math.inf)
        self.c = c
        self.mu = mu
        self.tau = tau
        self.z: NDArray[np.float64] | None = None
        self.t: NDArray[np.float64] | None = None

    def reset(self) -> None:
        self.z = self.t = None

    def draw(self, pos: NDArray[np.int64], t: NDArray[np.float64],
             rng: _Replayed) -> NDArray[np.float64]:
        # One queue state per turn (a fan-out's copies, the columns of a 2-D draw,
        # arrive together and see the same one).
        n = int(pos.shape[0])
        tt = t if t.ndim == 1 else t[:, 0]
        eps: NDArray[np.float64] = rng.standard_normal(n)
        if self.z is None or self.t is None or self.z.size != n:
            z = eps
        else:
            # (In place: the same operations in the same order, fewer arrays made.)
            if self.tau > 0:
                a = tt - self.t
                np.maximum(a, 0.0, out=a)
                np.negative(a, out=a)
                a /= self.tau
                np.exp(a, out=a)
            else:
                a = np.zeros(n)
            r = a * a
            np.subtract(1.0, r, out=r)
            np.maximum(r, 0.0, out=r)
            np.sqrt(r, out=r)
            r *= eps
            z = a * self.z
            z += r
        self.z, self.t = z, tt
        d = _search_right(self.zcut, z)
        if pos.ndim == 1:
            return _gamma(d + pos - self.c + 1, rng) / self.mu
        # A fan-out's copies (columns, positions pos[:, 0] + j) wait for the same
        # departures, one more each: copy j's wait is the first's plus the gaps of the
        # departures after it (independent draws would make the last copy's wait the
        # maximum of many, far too long for a wide fan-out).
        k0 = d + pos[:, 0] - self.c + 1
        base = _gamma(k0, rng)
        col = np.arange(pos.shape[1])
        gaps = rng.standard_exponential(pos.shape)
        gaps *= (col >= 1) & (k0[:, None] + col >= 1)
        out: NDArray[np.float64] = base[:, None] + np.cumsum(gaps, axis=1)
        out[k0[:, None] + col < 1] = 0.0
        return out / self.mu


def _search_right(a: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.int64]:
    """``np.searchsorted(a, v, side="right")`` (``a`` sorted): compiled where it can be
    (capacity/analytic/_kernels.c; numpy's search of random keys restarts at every key
    that is smaller than the last, ~1/8 of a cap's walk)."""
    fn = getattr(_kernels, "search_right", None)  # (None: no build, or one before it)
    if fn is not None:
        try:
            out: NDArray[np.int64] = fn(a, v)
            return out
        except ValueError:  # (not float64 vectors, or a nan: numpy's own order)
            pass
    return np.searchsorted(a, v, side="right")


def _gamma(k: NDArray[np.int64], rng: _Replayed) -> NDArray[np.float64]:
    """Gamma(k, 1) per entry (0 where k ≤ 0) from a fixed count of draws per entry
    (common random numbers across N and the fixed point's iterations): exact for k = 1,
    Wilson–Hilferty above."""
    u = rng.random(k.shape)
    g = rng.standard_normal(k.shape)
    if k.ndim == 1 and _gamma_compiled():
        # Compiled (capacity/analytic/_kernels.c, numpy's cube and log1p loops): a cap's
        # walks make ~400 of these a p95, ~15 numpy passes each over 1,024–4,096 turns.
        try:
            out: NDArray[np.float64] = _kernels.gamma_wh(
                np.ascontiguousarray(k, dtype=np.int64), u, g, np.power, np.log1p)
            return out
        except ValueError:  # (a nan, or arrays the kernel does not read: numpy's way)
            pass
    return _gamma_numpy(k, u, g)


# [None: not probed yet, True/False: whether the compiled draws are numpy's]
_GAMMA_COMPILED: list[bool | None] = [None]


def _gamma_compiled() -> bool:
    """Whether ``_kernels.gamma_wh`` is built and gives :func:`_gamma_numpy`'s bytes on
    this machine (probed once: k from −1 to past the SIMD blocks' widths, every branch)."""
    if _GAMMA_COMPILED[0] is None:
        ok = getattr(_kernels, "gamma_wh", None) is not None
        if ok:
            rng = np.random.default_rng(5)
            for n in (1, 7, 64, 1001):
                k = rng.integers(-1, 40, n)
                u, g = rng.random(n), rng.standard_normal(n) * 3.0
                try:
                    got = _kernels.gamma_wh(k, u, g, np.power, np.log1p)
                except (TypeError, ValueError):
                    ok = False
                    break
                if got.tobytes() != _gamma_numpy(k, u, g).tobytes():
                    ok = False
                    break
        _GAMMA_COMPILED[0] = ok
    return bool(_GAMMA_COMPILED[0])


def _gamma_numpy(k: NDArray[np.int64], u: NDArray[np.float64], g: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """:func:`_gamma` from its draws ``u`` (uniform) and ``g`` (standard normal), in numpy
    (the reference of the compiled one)."""
    # Wilson–Hilferty on every entry at once, in place (k ≤ 1 computed as k = 2 and
    # overwritten): the same operations in the same order per entry as on the k > 1
    # entries alone, a third of the array passes (a cap's walk makes ~400 of these).
    kk = np.maximum(k, 2).astype(np.float64)
    s = 9.0 * kk
    out: NDArray[np.float64] = np.divide(1.0, s)
    np.subtract(1.0, out, out=out)
    np.sqrt(s, out=s)
    np.divide(g, s, out=s)
    out += s
    np.maximum(out, 0.0, out=out)
    out **= 3
    out *= kk
    one = k == 1
    if one.any():
        out[one] = -np.log1p(-u[one])
    out[k < 1] = 0.0
    return out


class _RateWait(_WaitLaw):
    """Exponential wait of mean ``mean`` with probability ``p_wait`` (else none), plus
    ``pos`` tokens' spacing beyond the bucket's depth for a fan-out's later copies."""

    def __init__(self, p_wait: float, mean: float, spacing: float, depth: float) -> None:
        self.p = p_wait
        self.mean = mean
        self.spacing = spacing
        self.depth = depth

    def draw(self, pos: NDArray[np.int64], t: NDArray[np.float64],
             rng: _Replayed) -> NDArray[np.float64]:
        # One draw per turn: a fan-out's copies (columns) queue together, behind the
        # same calls, and then behind each other (their spacing beyond the depth).
        n = int(pos.shape[0])
        u = rng.random(n)
        e = rng.standard_exponential(n)
        common = np.where(u < self.p, e * self.mean, 0.0)
        out: NDArray[np.float64] = (common if pos.ndim == 1 else common[:, None]) + \
            np.maximum(0.0, pos + 1.0 - self.depth) * self.spacing
        return out


def stages_per_turn(w: _Walked) -> float:
    """Mean number of distinct launch instants per turn (sequential stages)."""
    a = np.sort(w.arrive, axis=1)
    fin = np.isfinite(a)
    new = np.ones_like(fin)
    new[:, 1:] = a[:, 1:] != a[:, :-1]
    return float((new & fin).sum(axis=1).mean())


def _interp(x: float, xp: list[float], fp: list[float]) -> float:
    """``np.interp(x, xp, fp)`` for one point of a strictly increasing ``xp`` (the same
    arithmetic, without numpy's call overhead in a scalar loop)."""
    if x != x:  # nan
        return x
    if x < xp[0]:
        return fp[0]
    if x >= xp[-1]:
        return fp[-1]
    j = bisect.bisect_right(xp, x) - 1
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    out = slope * (x - xp[j]) + fp[j]
    if out != out:  # as numpy: from the other end, then the flat value
        out = slope * (x - xp[j + 1]) + fp[j + 1]
        if out != out and fp[j] == fp[j + 1]:
            out = fp[j]
    return out


def _mva_setup(turns: PacedTurns) -> tuple[float, float, NDArray[np.float64],
                                           NDArray[np.float64]]:
    """(calls per turn, stages per turn, the grid of stage waits (s), the mean cycle (s)
    at each): what :func:`rate_mva` needs of the sample, whatever N (made once)."""
    hit: tuple[float, float, NDArray[np.float64], NDArray[np.float64]] | None = \
        getattr(turns, "_mva_setup", None)
    if hit is not None:
        return hit
    w = turns.base
    fin = np.isfinite(w.arrive)
    v = float(fin.sum(axis=1).mean())
    s = stages_per_turn(w)
    lat = w.latency
    grid = np.concatenate([[0.0], np.geomspace(0.01, 1e6, 500)])
    if turns.think:
        cyc_at = float(lat.mean()) + float(turns.pause.mean()) + grid
    else:
        # A turn's waits as the p95's walk draws them (an exponential wait per stage, of
        # mean wq): the turns that run late stretch the cycle, the convex max(·) of a
        # spread wait more than of its mean.
        a = np.sort(w.arrive, axis=1)
        fin_a = np.isfinite(a)
        new = fin_a.copy()
        new[:, 1:] &= a[:, 1:] != a[:, :-1]
        stages = new.sum(axis=1)
        unit = np.random.default_rng(PACED_SEED + 3).standard_gamma(
            np.maximum(stages, 1).astype(np.float64)) * (stages > 0)
        unit *= s / max(float(unit.mean()), 1e-12)   # E[turn wait] = s·wq exactly
        cyc_at = np.array([np.maximum(turns.pause, lat + g / s * unit).mean()
                           for g in grid])
    out = (v, s, grid, cyc_at)
    turns._mva_setup = out  # type: ignore[attr-defined]
    return out


def rate_mva(turns: PacedTurns, n_max: int, rate: float,
             residual: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """MVA of N = 1..n_max sessions behind a pacer releasing ``rate`` calls/s: the mean
    wait per call (s) and the pacer's utilisation, indexed by N (index 0: N = 0).

    ``residual``: the in-service call's remaining slot as a share of ``1/r`` (1:
    exponential MVA, 1/2: deterministic)."""
    v, s, grid, cyc_at = _mva_setup(turns)
    d = 1.0 / rate
    # The recursion is scalar, step by step (N runs to the quotas' ceilings, thousands):
    # plain floats and lists, np.interp's arithmetic where the abscissae increase
    # strictly (a cadence's cycle is flat while its pause absorbs the waits: np.interp).
    strict = bool(np.all(np.diff(cyc_at) > 0))
    if strict and _kernels is not None:
        # The same recursion compiled (capacity/analytic/_kernels.c): Python's float
        # arithmetic, min/max and _interp, ~15 ms less per thousand N.
        out: tuple[NDArray[np.float64], NDArray[np.float64]] = _kernels.rate_mva_loop(
            n_max, float(v), float(s), float(d), float(residual), bool(turns.think),
            np.ascontiguousarray(grid, dtype=np.float64),
            np.ascontiguousarray(cyc_at, dtype=np.float64))
        return out
    return _rate_mva_loop(turns.think, n_max, v, s, d, residual, grid, cyc_at, strict)


def _rate_mva_loop(think: bool, n_max: int, v: float, s: float, d: float, residual: float,
                   grid: NDArray[np.float64], cyc_at: NDArray[np.float64], strict: bool
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`rate_mva`'s recursion in Python (the reference of the compiled one, and
    the loop for a cycle not strictly increasing in the wait)."""
    grid_l = grid.tolist()
    cyc_l = cyc_at.tolist()

    def need_at(x: float) -> float:
        return (_interp(x, cyc_l, grid_l) if strict
                else float(np.interp(x, cyc_at, grid, right=grid[-1])))

    cyc0 = cyc_l[0]
    waits = [0.0] * (n_max + 1)
    util = [0.0] * (n_max + 1)
    q = u = 0.0
    knee_wq = -1.0
    for i in range(1, n_max + 1):
        wq = d * max(q - u, 0.0) + u * d * residual
        # The pacer releases at most r calls/s: the turns (and so the cycle) stretch at
        # least until i sessions' calls fit, i·v/C ≤ r.
        need = need_at(i * v * d)
        if not think and i * v * d > cyc0:
            # Past a cadence's knee the queue is what stretches the late turns just
            # enough (the cadence absorbs the rest); the closed recursion, which
            # knows no cadence, would add a whole round of calls per session.
            if knee_wq < 0.0:
                knee_wq = waits[i - 1]
            wq = knee_wq
        wq = max(wq, need / s)
        cyc = _interp(s * wq, grid_l, cyc_l)
        x = i / cyc
        u = min(1.0, x * v * d)
        q = x * v * (wq + d)
        waits[i], util[i] = wq, u
    return np.array(waits), np.array(util)


class _Sum(_WaitLaw):
    """Both pacers: the slot's wait and the token's, one after the other."""

    def __init__(self, *laws: _WaitLaw) -> None:
        self.laws = laws

    def reset(self) -> None:
        for law in self.laws:
            law.reset()

    def draw(self, pos: NDArray[np.int64], t: NDArray[np.float64],
             rng: _Replayed) -> NDArray[np.float64]:
        out = np.zeros(pos.shape)
        for law in self.laws:
            out += law.draw(pos, t, rng)
        return out


# The in-service call's remaining release slot, as a share of 1/r, in the rate pacer's
# MVA: 1/2 would be a deterministic slot seen by Poisson arrivals, 1 the exponential
# MVA; the pacer's arrivals come in clumps (fan-outs, a session's back-to-back calls)
# the arrival theorem does not see. 3/4 matches the simulated mean waits within ~5% on
# tool-agent and web-research behind 40-140 rpm (tests/test_analytic_pacing.py).
RATE_RESIDUAL = 0.75


class PacedQueue:
    """The pacer's waits at N sessions, and the p95 turn latency they give."""

    def __init__(self, wl: Workload) -> None:
        pc = wl.profile.pacing
        assert pc is not None
        self.turns = PacedTurns(wl)
        self.conc = int(pc.concurrency or 0)
        self.rate = pc.rpm / 60.0 if pc.rpm is not None else 0.0
        self.depth = max(1.0, pc.rpm * pc.burst / 60.0) if pc.rpm is not None else 1.0
        svc = self.turns.base.service
        self.mean_service = float(svc[np.isfinite(svc)].mean()) if np.isfinite(svc).any() \
            else 0.0
        self._mva: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._walked: dict[int, tuple[_Walked, float]] = {}
        self._laws: dict[int, _WaitLaw | None] = {}
        self._small_walks: dict[int, _Walked] = {}  # the small sample's last walk, by N
        self.small = PacedTurns(wl, _FIXED_POINT_SAMPLE_SIZE) if self.conc > 0 else self.turns

    def rate_law(self, n: int) -> _RateWait | None:
        """The token bucket's wait law at ``n`` sessions (None without one)."""
        if self.rate <= 0.0:
            return None
        if self._mva is None or self._mva[0].size <= n:
            # O(N) scalar steps: grown by doubling as larger N are asked for.
            size = max(n, 2 * (self._mva[0].size if self._mva is not None else 32))
            self._mva = rate_mva(self.turns, size, self.rate, RATE_RESIDUAL)
        waits, util = self._mva
        u = float(util[n])
        mean = float(waits[n]) / u if u > 0 else 0.0
        return _RateWait(min(u, 1.0), mean, 1.0 / self.rate, self.depth)

    def walked(self, n: int) -> tuple[_Walked, float]:
        """The sample's turns at ``n`` sessions (with their waits) and the mean cycle (s)."""
        hit = self._walked.get(n)
        if hit is not None:
            return hit
        rate = self.rate_law(n)
        turns = self.turns
        if self.conc <= 0:
            w = turns.walk(rate)
            out = (w, turns.cycle(w.latency))
        else:
            # Fixed point of the holds and the waits on a smaller sample (the holds are
            # means), started from the nearest N done; then the full sample walked once
            # with the converged law for the p95.
            small = self.small
            near = min(self._laws, key=lambda k: abs(k - n), default=None)
            law: _WaitLaw | None = self._laws[near] if near is not None else rate
            # (That walk was the last of N = near's fixed point; without a law, the
            # sample's own base walk: the same draws, the same turns.)
            w = (self._small_walks[near] if near is not None
                 else small.base if law is None else small.walk(law))
            cyc = small.cycle(w.latency)
            mu = self.conc / self.mean_service if self.mean_service > 0 else math.inf
            for _ in range(_FIXED_POINT_ITERATIONS):
                others = convolve_power(hold_law(w, cyc), n - 1)
                # The others' holds persist over their turns: an active spell of length R
                # has a triangular autocorrelation, integral scale R/2.
                slot = _SlotWait(others, self.conc, mu, 0.5 * float(w.latency.mean()))
                law = _Sum(slot, rate) if rate is not None else slot
                before = float(w.latency.mean())
                w = small.walk(law)
                cyc = small.cycle(w.latency)
                # Converged when the turns' mean latency stops moving (a cadence's cycle
                # does not move until turns run late, so it cannot be the test).
                if abs(float(w.latency.mean()) - before) <= 1e-3 * before:
                    break
            self._laws[n] = law
            self._small_walks[n] = w
            w = turns.walk(law)
            out = (w, turns.cycle(w.latency))
        self._walked[n] = out
        return out

    def p95(self, n: int) -> float:
        """The p95 turn latency (s) at ``n`` sessions."""
        return float(np.quantile(self.walked(n)[0].latency, 0.95))

    def knee(self) -> float:
        """Sessions at which the pacer is busy all the time at the unthrottled cycle (the
        napkin at the pacer's rate): the search for N starts here."""
        w = self.turns.base
        cyc = self.turns.cycle(w.latency)
        out = math.inf
        if self.rate > 0.0:
            calls = float(np.isfinite(w.arrive).sum(axis=1).mean())
            out = self.rate * cyc / calls if calls > 0 else math.inf
        if self.conc > 0:
            held = float(np.nansum(w.service)) / w.latency.size  # slot-seconds per turn
            out = min(out, self.conc * cyc / held if held > 0 else math.inf)
        return out

    def largest_meeting(self, target_s: float, hi: int) -> int:
        """Largest N in [0, hi] whose p95 turn latency is within ``target_s`` (seconds):
        from the knee, doubling up while it holds, then :func:`_crossing` in the
        bracket (the p95 rises smoothly with N: each look is a walk of the sample)."""
        if hi <= 0 or self.p95(1) > target_s:
            return 0
        knee = self.knee()
        lo, top = 1, hi
        n = int(min(max(2.0, knee), hi)) if math.isfinite(knee) else hi
        while True:
            if self.p95(n) > target_s:
                top = n
                break
            lo = n
            if n >= hi:
                return hi
            n = min(hi, 2 * n)
        return _crossing(self.p95, target_s, lo, top)


def _crossing(f: Callable[[int], float], level: float, good: int, bad: int) -> int:
    """Largest n in [good, bad) with ``f(n) ≤ level``, ``f`` non-decreasing and
    ``f(good) ≤ level < f(bad)``: the bisection's answer, each next n where the chord
    of the bracket meets the level — or, when the last two looks both moved the same
    end, where the line through those two does (a convex p95's chord always falls short
    of the crossing, and would creep up to it a session at a time) — and halving
    whenever three looks in a row left more than half of the bracket."""
    vals = {good: f(good), bad: f(bad)}
    last: list[int] = []
    slow = 0
    while bad - good > 1:
        width = bad - good
        fg, fb = vals[good], vals[bad]
        x = good + (bad - good) * (level - fg) / (fb - fg) if fb > fg else math.nan
        if len(last) == 2 and vals[last[0]] != vals[last[1]] and (
                (vals[last[0]] <= level) == (vals[last[1]] <= level)):
            a, b = last
            x = a + (b - a) * (level - vals[a]) / (vals[b] - vals[a])
        if slow >= 3 or not math.isfinite(x):
            x, slow = (good + bad) / 2, 0
        n = min(max(math.floor(x), good + 1), bad - 1)
        vals[n] = f(n)
        if vals[n] <= level:
            good = n
        else:
            bad = n
        last = [*last[-1:], n]
        slow = slow + 1 if 2 * (bad - good) > width else 0
    return good


def _charge_moments(wl: Workload, c: Constraint) -> tuple[float, float]:
    """Mean and second moment of the units one call (any call) charges to ``c``."""
    calls = wl.calls_per_turn()
    if calls <= 0:
        return 0.0, 0.0
    from capacity.analytic.clumped import exact_calls_per_turn  # it imports model.py

    h = max(c.allowance if c.enforcement != "token_bucket" else c.depth, 1.0) / 1024.0
    m1 = m2 = 0.0
    seen: set[int] = set()
    launches = exact_calls_per_turn(wl)  # mean launches per turn, by id(call)
    for t in wl.turns:
        for ev in t.events:
            for call in ev.batch.calls():
                if id(call) in seen or c.costs.get(id(call)) is None:
                    continue
                seen.add(id(call))
                per_turn = launches[id(call)]
                pmf = batch_units_pmf(Batch(ONE, (call,)), c.costs, h)
                x = np.arange(pmf.size) * h
                m1 += per_turn * float(np.dot(x, pmf))
                m2 += per_turn * float(np.dot(x * x, pmf))
    return m1 / calls, m2 / calls


def saturated_share(wl: Workload, c: Constraint, released: float, released_var: float
                    ) -> float:
    """429 share of ``c``'s units when the pacer releases ``released`` calls (variance
    ``released_var``) in each of ``c``'s windows: the normal stop-loss of their charges.

    The pacer's output never exceeds this in the long run, so when even it stays within
    the target the quota cannot bind at any N (a token bucket is read as windows of
    depth/refill seconds holding its depth).
    """
    m1, m2 = _charge_moments(wl, c)
    if m1 <= 0.0 or released <= 0.0:
        return 0.0
    q = float(c.depth if c.enforcement == "token_bucket" else c.allowance)
    mean = released * m1
    var = released * (m2 - m1 * m1) + released_var * m1 * m1
    sd = math.sqrt(max(var, 1e-12))
    z = (q - mean) / sd
    tail = 0.5 * math.erfc(z / math.sqrt(2.0))
    stop_loss = sd * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) - (q - mean) * tail
    return min(1.0, max(0.0, stop_loss) / mean)


def _window_s(c: Constraint) -> float:
    return c.depth / c.rate_per_s if c.enforcement == "token_bucket" else c.window_s


def released_per_window(q: PacedQueue, w_s: float, n: int) -> tuple[float, float]:
    """Calls (mean, variance) the pacer releases at most in ``w_s`` seconds at ``n``
    sessions: the bucket's ``r·w`` plus what its depth may add at a window's start — all
    of it after an idle spell, none while the queue is busy, so ``(depth − 1)·(1 − U)`` at
    the pacer's utilisation U —; behind a cap, ``c·w/E[S]`` (its slots renew every call
    latency) with renewal variance ``·CV²(S)``."""
    out, var = math.inf, 0.0
    if q.rate > 0.0:
        law = q.rate_law(n)
        idle = 1.0 - law.p if law is not None else 1.0
        out, var = q.rate * w_s + (q.depth - 1.0) * idle, 0.0
    if q.conc > 0 and q.mean_service > 0.0:
        svc = q.turns.base.service
        s = svc[np.isfinite(svc)]
        k = q.conc * w_s / q.mean_service
        if k < out:
            out, var = k, k * float(s.var()) / q.mean_service ** 2
    return out, var


@dataclass(frozen=True)
class PacedAnswer:
    """The analytic answer of a paced profile."""

    sessions: int
    notes: tuple[str, ...]
    latency_bound: bool   # no N meets the p95 target (not even one session)
    latency_binds: bool   # the p95 target with the pacer's queue sets N
    summary: str          # one sentence: what sets N


def paced(profile: Profile, result: CeilingResult, wl: Workload | None = None
          ) -> PacedAnswer:
    """The analytic N* of a paced profile, beside the unpaced ``result``.

    The quota's 429s apply to the pacer's output: a quota whose share stays within the
    target even at the pacer's saturated release (:func:`saturated_share`) cannot bind;
    otherwise the unpaced ceiling stands for it (the smoothing of bursts below the
    pacer's rate is not modelled: conservative). The p95 turn-latency target is held to
    the queue's waits (:class:`PacedQueue`). With neither binding, the answer is the
    simulated search's own bound, ``mean ceiling / (1 − target)``.
    """
    wl = wl or Workload.from_profile(profile)
    target = profile.targets.max_429_fraction
    mean = result.mean_ceiling
    cap = (max(math.floor(mean + 1e-9) + 1, math.floor(mean / (1.0 - target)) + 1)
           if math.isfinite(mean) else 1_000_000)
    queue = PacedQueue(wl)
    n429 = cap
    smoothed: list[str] = []
    kept: list[str] = []
    if queue.rate > 0.0 and result.constraints:
        # The MVA recursion once up to the largest N asked below (grown by doubling it
        # would run again from 1 for each larger one).
        queue.rate_law(max(max(1, r.burst_ceiling + 1) for r in result.constraints))
    for r in result.constraints:
        c = next(x for x in wl.constraints if x.name == r.name)
        # Checked one session past the quota's own (unpaced) ceiling: it binds there
        # unless the pacer holds it back (the pacer's release only shrinks as N grows).
        k, kv = released_per_window(queue, _window_s(c), max(1, r.burst_ceiling + 1))
        share = saturated_share(wl, c, k, kv) * wl.attempt_share(c)
        if share <= target:
            smoothed.append(r.name)
        else:
            kept.append(r.name)
            n429 = min(n429, r.burst_ceiling)
    if kept:
        n429 = min(n429, result.burst_ceiling)  # the quotas' joint ceiling
    what = " and ".join(
        ([f"a {queue.rate * 60:g}-rpm bucket {queue.depth:.3g} calls deep"] if queue.rate
         else []) + ([f"a cap of {queue.conc} calls in flight"] if queue.conc else []))
    pieces = [f"Client-side pacing ({what}) is modelled as a queue in front of the provider."]
    widest = queue.turns.widest()
    if queue.rate > 0.0 and widest > _WIDE_FAN_OUT:
        # Checked: a 300-call fan-out behind 3,000/min, 16 against a simulated 26 [26–27].
        pieces.append(f"Fan-outs of up to {widest} calls at once queue behind the bucket as "
                      "a batch, whose waits are more regular than the model's exponential "
                      "law: conservative here.")
    if smoothed:
        pieces.append(f"Its release rate keeps {', '.join(smoothed)} within the 429 target "
                      "at any N.")
    if kept:
        pieces.append(f"For {', '.join(kept)} the unpaced ceiling ({n429}) stands: the "
                      "pacer's smoothing of bursts below its rate is not modelled "
                      "(conservative).")
    latency = profile.targets.p95_turn_latency
    n = n429
    bound = binds = False
    summary = (f"Client-side pacing holds calls in its queue instead of sending them into "
               f"429s; the quota's 429 target allows {n429:,} sessions behind it"
               if kept else "")
    if latency is not None and n > 0:
        nl = queue.largest_meeting(latency, n)
        if nl < n:
            n, binds = nl, True
            if n == 0:
                bound = True
                pieces.append(f"No N meets the p95 turn-latency target of {latency:g}s: "
                              f"{queue.p95(1):.0f}s at one session behind the pacer.")
                summary = ("with client-side pacing the p95 turn-latency target is out of "
                           f"reach: {queue.p95(1):.0f}s at one session behind the pacer")
            else:
                pieces.append(f"The pacer's queue sets N by the p95 turn-latency target: "
                              f"{queue.p95(n):.0f}s at {n} sessions, "
                              f"{queue.p95(n + 1):.0f}s at {n + 1} (target {latency:g}s).")
                summary = (f"client-side pacing holds calls in its queue instead of sending "
                           f"them into 429s, and its waits set N: {n:,} sessions meet the "
                           f"p95 turn-latency target ({queue.p95(n):.0f}s against "
                           f"{latency:g}s)")
    if n >= cap:
        pieces.append(f"Neither target binds up to {cap} sessions (the mean ceiling ÷ "
                      "(1 − the 429 target), the simulated search's own bound): the "
                      "answer is that bound.")
        summary = (f"client-side pacing holds calls in its queue instead of sending them "
                   f"into 429s, and neither target binds up to {cap:,} sessions (the mean "
                   "ceiling ÷ (1 − the 429 target))")
    if summary:
        summary = summary[0].upper() + summary[1:] + "."
    return PacedAnswer(n, (" ".join(pieces),), bound, binds, summary)
