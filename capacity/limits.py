"""Provider quota enforcement: the one definition of "admit or 429".

A profile's quotas become a list of :class:`LimitSlot` — one per (quota, dimension),
e.g. ``deployment.rpm`` — each enforced by a meter:

* :class:`FixedWindow` — a counter per window ``[k·w − offset, (k+1)·w − offset)``
  that admits a charge while ``count + units ≤ q``, with ``q = ⌊Q·w/period + 1e-9⌋``;
* :class:`SlidingWindow` — at most ``q`` units in any interval ``(t − w, t]`` (a log of
  timestamped charges);
* :class:`TokenBucket` — refills continuously at ``Q/period`` per second up to a depth of
  ``Q·burst/period``, starts full, admits a charge while ``units ≤ level``.

Meters start fresh (buckets full, windows empty), as a provider's would for a brand-new
key; :meth:`ProviderLimiter.preload` and :func:`loaded_state` start them part-used
instead, which the simulator uses to start in (approximately) steady state.

:class:`ProviderLimiter` combines the meters the way a provider does: a call is admitted
only if **every** slot it touches admits it, and only then is every slot charged (all at
admission, as OpenAI and Azure do). A rejected call is answered 429 with a retry-after
equal to the time until the slowest rejecting slot has room for that call, assuming no
other traffic, rounded strictly up to the next millisecond (``retry-after-ms``).

Counted rejections (``rejected_count``, OpenAI: "unsuccessful requests contribute to
your per-minute limit"): a rejected attempt costs one unit of every *request* dimension
(``rpm``, ``rpd``) of the quotas it touches. For windows that unit is recorded like any
other charge (a sliding log keeps it for ``w`` seconds, which is what can make a storm
self-sustaining). For token buckets it is taken from the bucket *only if it is there*
(the level never goes below zero): a bucket has no memory of demand beyond its level, so
an empty bucket is not pushed into debt by the attempts it turns away.

Charged units per call and slot: see :mod:`capacity.quota` (:func:`charge_units`). A zero
charge is always admitted.

The same semantics exist twice, on purpose:

* plain Python classes (this module's public API), readable and reusable by an HTTP mock;
* an array form (:class:`LimiterArrays` + :func:`limiter_attempt`, compiled by numba) that
  the simulator's event loop calls millions of times per second.

``tests/test_limits.py`` drives both with the same arrival sequences and checks they take
identical decisions and send identical retry-after values.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from .profile import Profile

# Slots and charging rules live in capacity.quota (no numba there, so the analytic model
# can share them); re-exported here as part of the limiter's API.
from .quota import REQUEST_DIMENSIONS as REQUEST_DIMENSIONS
from .quota import ChargeCoefficients as ChargeCoefficients
from .quota import EnforcementType as EnforcementType
from .quota import LimitSlot as LimitSlot
from .quota import charge_coefficients as charge_coefficients
from .quota import charge_units as charge_units
from .quota import limit_slots as limit_slots

# A refusal always reports a positive wait (float rounding at a window boundary could
# otherwise yield 0, which means "fits now"); ceil_ms makes it at least 1 ms anyway.
MIN_WAIT = 1e-9

# Numeric codes of the enforcement types in the array form.
KIND_FIXED, KIND_SLIDING, KIND_BUCKET = 0, 1, 2
_KIND_CODE = {"fixed_window": KIND_FIXED, "sliding_window": KIND_SLIDING,
              "token_bucket": KIND_BUCKET}


def ceil_ms(seconds: float) -> float:
    """Round a wait strictly up to the next whole millisecond (``retry-after-ms``).

    Strictly up, so that a client sleeping exactly this long arrives after the window
    boundary / expiry / refill instant rather than on it (where float rounding could put
    it a hair early).
    """
    if not math.isfinite(seconds):
        return math.inf
    return (math.floor(seconds * 1000.0) + 1.0) / 1000.0


# ---------------------------------------------------------------------------------------
# Meters: plain Python, the readable definition
# ---------------------------------------------------------------------------------------


class Meter:
    """Interface of one slot's enforcement state. Times are seconds, non-decreasing."""

    def wait_time(self, t: float, units: float) -> float:
        """0 if ``units`` fit now; else seconds (> 0) until they would (``inf``: never)."""
        raise NotImplementedError

    def charge(self, t: float, units: float) -> None:
        """Record an admitted charge of ``units`` at time ``t``."""
        raise NotImplementedError

    def count_rejection(self, t: float) -> None:
        """Record the one request unit a counted rejection costs."""
        raise NotImplementedError


class FixedWindow(Meter):
    """Counter per window ``[k·w − offset, (k+1)·w − offset)``, reset at each boundary."""

    def __init__(self, allowance: float, window_s: float, offset_s: float = 0.0) -> None:
        self.allowance = allowance
        self.window_s = window_s
        self.offset_s = offset_s
        self.index: int | None = None
        self.count = 0.0

    def _roll(self, t: float) -> None:
        k = math.floor((t + self.offset_s) / self.window_s)
        if k != self.index:
            self.index = k
            self.count = 0.0

    def wait_time(self, t: float, units: float) -> float:
        if units <= 0.0:
            return 0.0
        self._roll(t)
        if self.count + units <= self.allowance:
            return 0.0
        if units > self.allowance:
            return math.inf
        assert self.index is not None
        return max((self.index + 1) * self.window_s - self.offset_s - t, MIN_WAIT)

    def charge(self, t: float, units: float) -> None:
        self._roll(t)
        self.count += units

    def count_rejection(self, t: float) -> None:
        # Past q the count changes nothing in this window; below q (another slot
        # rejected the call) it uses up a real slot.
        self.charge(t, 1.0)


class SlidingWindow(Meter):
    """At most ``allowance`` units in any interval ``(t − w, t]`` (log of charges)."""

    def __init__(self, allowance: float, window_s: float) -> None:
        self.allowance = allowance
        self.window_s = window_s
        self.log: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def _expire(self, t: float) -> None:
        # A charge made at te stops counting at te + w.
        while self.log and self.log[0][0] + self.window_s <= t:
            self.total -= self.log.popleft()[1]
        if not self.log:
            self.total = 0.0

    def wait_time(self, t: float, units: float) -> float:
        if units <= 0.0:
            return 0.0
        self._expire(t)
        if self.total + units <= self.allowance:
            return 0.0
        if units > self.allowance:
            return math.inf
        # Oldest charges leave first: wait until enough of them have expired.
        remaining = self.total
        for te, u in self.log:
            remaining -= u
            if remaining + units <= self.allowance:
                return max(te + self.window_s - t, MIN_WAIT)
        return math.inf  # pragma: no cover - the loop always ends by emptying the log

    def charge(self, t: float, units: float) -> None:
        self._expire(t)
        if units > 0.0:
            self.log.append((t, units))
            self.total += units

    def count_rejection(self, t: float) -> None:
        self.charge(t, 1.0)


class TokenBucket(Meter):
    """Refills at ``rate`` units/s up to ``depth``; starts full; a charge needs the units."""

    def __init__(self, rate: float, depth: float) -> None:
        self.rate = rate
        self.depth = depth
        self.level = depth
        self.last = 0.0

    def _refill(self, t: float) -> None:
        if t > self.last:
            self.level = min(self.depth, self.level + (t - self.last) * self.rate)
            self.last = t

    def wait_time(self, t: float, units: float) -> float:
        if units <= 0.0:
            return 0.0
        self._refill(t)
        if units <= self.level:
            return 0.0
        if units > self.depth:
            return math.inf
        return max((units - self.level) / self.rate, MIN_WAIT)

    def charge(self, t: float, units: float) -> None:
        self._refill(t)
        self.level -= units

    def count_rejection(self, t: float) -> None:
        # Take the unit only if it is there: an empty bucket is not driven into debt.
        self._refill(t)
        self.level = max(0.0, self.level - 1.0)


@dataclass(frozen=True, slots=True)
class Decision:
    """A provider's answer to one attempt.

    Attributes
    ----------
    admitted : True for a 200, False for a 429.
    retry_after_s : for a 429, seconds until the call would fit (``inf``: never); else 0.
    rejected_by : slot indices that had no room.
    """

    admitted: bool
    retry_after_s: float = 0.0
    rejected_by: tuple[int, ...] = ()


class ProviderLimiter:
    """All of a profile's quotas as a provider enforces them.

    Parameters
    ----------
    slots : from :func:`limit_slots`.
    clock_offset_s : where t = 0 falls on the provider's clock (seconds); fixed windows
        start at multiples of their length on that clock.
    """

    def __init__(self, slots: tuple[LimitSlot, ...], clock_offset_s: float = 0.0) -> None:
        self.slots = slots
        self.meters = [s.meter(clock_offset_s) for s in slots]

    @classmethod
    def from_profile(cls, profile: Profile, clock_offset_s: float = 0.0) -> ProviderLimiter:
        """A fresh limiter for ``profile``'s quotas."""
        return cls(limit_slots(profile), clock_offset_s)

    def preload(self, bucket_deficit: NDArray[np.float64] | list[float],
                window_used: NDArray[np.float64] | list[float], spread: int = 64) -> None:
        """Start part-used at t = 0, exactly as :func:`loaded_state` does for the array
        form (call before the first attempt)."""
        for m, d, u in zip(self.meters, bucket_deficit, window_used, strict=True):
            if isinstance(m, TokenBucket):
                m.level = m.depth - min(max(float(d), 0.0), m.depth)
                continue
            used = min(max(float(u), 0.0), m.allowance)  # type: ignore[attr-defined]
            if used <= 0.0:
                continue
            if isinstance(m, FixedWindow):
                m.index = math.floor(m.offset_s / m.window_s)
                m.count = used
            elif isinstance(m, SlidingWindow):
                w = m.window_s
                m.log = deque((-w + (j + 0.5) * w / spread, used / spread)
                              for j in range(spread))
                m.total = used

    def attempt(self, t: float, units: NDArray[np.float64] | list[float]) -> Decision:
        """Admit (and charge) or reject one call at time ``t`` (seconds).

        ``units`` holds the call's charge on every slot (0 where it touches nothing).
        """
        waits = [m.wait_time(t, float(u)) for m, u in zip(self.meters, units, strict=True)]
        rejected = tuple(i for i, w in enumerate(waits) if w > 0.0)
        if not rejected:
            for m, u in zip(self.meters, units, strict=True):
                if u > 0.0:
                    m.charge(t, float(u))
            return Decision(True)
        for s, m, u in zip(self.slots, self.meters, units, strict=True):
            if s.counts_rejected and u > 0.0:
                m.count_rejection(t)
        return Decision(False, ceil_ms(max(waits[i] for i in rejected)), rejected)


# ---------------------------------------------------------------------------------------
# Array form (numba): the same rules over flat arrays, for the simulator
# ---------------------------------------------------------------------------------------

# Columns of the parameter matrix P[slot, :].
P_KIND, P_ALLOW, P_WINDOW, P_RATE, P_COUNTREJ, P_OFFSET = range(6)
# Columns of the state matrix S[slot, :].
S_WIN, S_COUNT, S_LEVEL, S_LAST, S_HEAD, S_SIZE, S_SUM = range(7)


@dataclass(frozen=True)
class LimiterArrays:
    """Slots as a parameter matrix ``P`` (one row per slot) for :func:`limiter_attempt`."""

    params: NDArray[np.float64]

    @classmethod
    def from_slots(cls, slots: tuple[LimitSlot, ...],
                   clock_offset_s: float = 0.0) -> LimiterArrays:
        """Parameter rows for ``slots`` with fixed windows shifted by ``clock_offset_s``."""
        p = np.zeros((len(slots), 6))
        for i, s in enumerate(slots):
            p[i, P_KIND] = _KIND_CODE[s.kind]
            p[i, P_ALLOW] = s.allowance
            p[i, P_WINDOW] = s.window_s
            p[i, P_RATE] = s.rate
            p[i, P_COUNTREJ] = 1.0 if s.counts_rejected else 0.0
            p[i, P_OFFSET] = clock_offset_s % s.window_s
        return cls(p)

    def initial_state(self, log_capacity: int = 64) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]
    ]:
        """Fresh state ``(S, log_t, log_u)``: buckets full, windows and logs empty."""
        return initial_state(self.params, log_capacity)


@njit(cache=True, nogil=True)
def initial_state(params, log_capacity=64):  # type: ignore[no-untyped-def]
    """Fresh limiter state ``(S, log_t, log_u)`` for parameter matrix ``params``."""
    n = params.shape[0]
    st = np.zeros((n, 7))
    st[:, S_WIN] = np.nan
    st[:, S_LEVEL] = params[:, P_ALLOW]
    return st, np.zeros((n, log_capacity)), np.zeros((n, log_capacity))


@njit(cache=True, nogil=True)
def loaded_state(params, bucket_deficit, window_used, spread=64):  # type: ignore[no-untyped-def]
    """Limiter state ``(S, log_t, log_u)`` at t = 0 of a system that has been running.

    ``bucket_deficit[i]`` units are missing from token bucket ``i`` (level = depth −
    deficit, clipped to [0, depth]). ``window_used[i]`` units (capped at the allowance)
    have already been charged to window slot ``i``: for a fixed window, in its current
    window ``[k·w − offset, 0]``; for a sliding window, spread evenly over ``(−w, 0]`` as
    ``spread`` equal charges (so they expire steadily over the first ``w`` seconds).
    Entries of the other kind are ignored. Zeros give :func:`initial_state`'s fresh state.
    """
    n = params.shape[0]
    cap = 16
    while cap < spread + 16:
        cap *= 2
    st, log_t, log_u = initial_state(params, cap)
    for i in range(n):
        kind = int(params[i, P_KIND])
        q = params[i, P_ALLOW]
        if kind == KIND_BUCKET:
            st[i, S_LEVEL] = q - min(max(bucket_deficit[i], 0.0), q)
            continue
        used = min(max(window_used[i], 0.0), q)
        if used <= 0.0:
            continue
        w = params[i, P_WINDOW]
        if kind == KIND_FIXED:
            st[i, S_WIN] = math.floor(params[i, P_OFFSET] / w)
            st[i, S_COUNT] = used
        else:
            for j in range(spread):
                log_t[i, j] = -w + (j + 0.5) * w / spread
                log_u[i, j] = used / spread
            st[i, S_HEAD] = 0.0
            st[i, S_SIZE] = spread
            st[i, S_SUM] = used
    return st, log_t, log_u


@njit(cache=True, nogil=True, inline="always")
def _ceil_ms(x: float) -> float:
    if not math.isfinite(x):
        return math.inf
    return (math.floor(x * 1000.0) + 1.0) / 1000.0


@njit(cache=True, nogil=True, inline="always")
def _expire(st, log_t, log_u, i, t, w):  # type: ignore[no-untyped-def]
    cap = log_t.shape[1]
    head = int(st[i, S_HEAD])
    size = int(st[i, S_SIZE])
    while size > 0 and log_t[i, head] + w <= t:
        st[i, S_SUM] -= log_u[i, head]
        head = (head + 1) % cap
        size -= 1
    if size == 0:
        st[i, S_SUM] = 0.0
    st[i, S_HEAD] = head
    st[i, S_SIZE] = size


@njit(cache=True, nogil=True, inline="always")
def _wait(P, st, log_t, log_u, i, t, units):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`Meter.wait_time` for slot ``i``."""
    if units <= 0.0:
        return 0.0
    kind = int(P[i, P_KIND])
    q = P[i, P_ALLOW]
    if kind == KIND_FIXED:
        w = P[i, P_WINDOW]
        off = P[i, P_OFFSET]
        k = math.floor((t + off) / w)
        if k != st[i, S_WIN]:
            st[i, S_WIN] = k
            st[i, S_COUNT] = 0.0
        if st[i, S_COUNT] + units <= q:
            return 0.0
        if units > q:
            return math.inf
        return max((k + 1) * w - off - t, MIN_WAIT)
    if kind == KIND_SLIDING:
        w = P[i, P_WINDOW]
        _expire(st, log_t, log_u, i, t, w)
        if st[i, S_SUM] + units <= q:
            return 0.0
        if units > q:
            return math.inf
        cap = log_t.shape[1]
        remaining = st[i, S_SUM]
        j = int(st[i, S_HEAD])
        for _ in range(int(st[i, S_SIZE])):
            remaining -= log_u[i, j]
            if remaining + units <= q:
                return max(log_t[i, j] + w - t, MIN_WAIT)
            j = (j + 1) % cap
        return math.inf
    # token bucket
    if t > st[i, S_LAST]:
        st[i, S_LEVEL] = min(q, st[i, S_LEVEL] + (t - st[i, S_LAST]) * P[i, P_RATE])
        st[i, S_LAST] = t
    if units <= st[i, S_LEVEL]:
        return 0.0
    if units > q:
        return math.inf
    return max((units - st[i, S_LEVEL]) / P[i, P_RATE], MIN_WAIT)


@njit(cache=True, nogil=True, inline="always")
def _charge(P, st, log_t, log_u, i, t, units):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`Meter.charge` (state already rolled to ``t`` by ``_wait``)."""
    kind = int(P[i, P_KIND])
    if kind == KIND_FIXED:
        st[i, S_COUNT] += units
    elif kind == KIND_SLIDING:
        if units > 0.0:
            cap = log_t.shape[1]
            j = (int(st[i, S_HEAD]) + int(st[i, S_SIZE])) % cap
            log_t[i, j] = t
            log_u[i, j] = units
            st[i, S_SIZE] += 1
            st[i, S_SUM] += units
    else:
        st[i, S_LEVEL] -= units


@njit(cache=True, nogil=True, inline="always")
def log_full(st, capacity):  # type: ignore[no-untyped-def]
    """True when some sliding-window log has no room for one more entry."""
    most = 0
    for i in range(st.shape[0]):
        most = max(most, int(st[i, S_SIZE]))
    return most >= capacity


@njit(cache=True, nogil=True)
def grow_logs(st, log_t, log_u):  # type: ignore[no-untyped-def]
    """Copies of the sliding-window logs with twice the room (oldest entry first)."""
    n, cap = log_t.shape
    new_t = np.zeros((n, 2 * cap))
    new_u = np.zeros((n, 2 * cap))
    for i in range(n):
        head = int(st[i, S_HEAD])
        for k in range(int(st[i, S_SIZE])):
            new_t[i, k] = log_t[i, (head + k) % cap]
            new_u[i, k] = log_u[i, (head + k) % cap]
        st[i, S_HEAD] = 0.0
    return new_t, new_u


@njit(cache=True, nogil=True)
def ensure_log_capacity(st, log_t, log_u):  # type: ignore[no-untyped-def]
    """The logs, grown if needed so every slot has room for one more entry.

    Call before :func:`limiter_attempt`. (Hot loops should test :func:`log_full` and
    rebind the arrays only when it is true: rebinding costs reference-count updates.)
    """
    if log_full(st, log_t.shape[1]):
        return grow_logs(st, log_t, log_u)
    return log_t, log_u


@njit(cache=True, nogil=True, inline="always")
def limiter_attempt(P, st, log_t, log_u, t, units, rejected):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`ProviderLimiter.attempt`.

    Parameters
    ----------
    P : parameter matrix (:class:`LimiterArrays`).
    st, log_t, log_u : state (updated in place); the logs need room for one more entry
        per slot (:func:`ensure_log_capacity`).
    t : attempt time (seconds).
    units : charge per slot (0 = untouched).
    rejected : output, set to 1 for every slot that had no room, else 0.

    Returns
    -------
    (admitted, retry_after_s) : retry-after rounded up to the next millisecond, 0 when
    admitted.
    """
    n = P.shape[0]
    worst = 0.0
    for i in range(n):
        w = _wait(P, st, log_t, log_u, i, t, units[i])
        rejected[i] = 1 if w > 0.0 else 0
        if w > worst:
            worst = w
    if worst == 0.0:
        for i in range(n):
            if units[i] > 0.0:
                _charge(P, st, log_t, log_u, i, t, units[i])
        return True, 0.0
    for i in range(n):
        if P[i, P_COUNTREJ] > 0.0 and units[i] > 0.0:
            if int(P[i, P_KIND]) == KIND_BUCKET:
                st[i, S_LEVEL] = max(0.0, st[i, S_LEVEL] - 1.0)
            else:
                _charge(P, st, log_t, log_u, i, t, 1.0)
    return False, _ceil_ms(worst)


@njit(cache=True, nogil=True)
def run_attempts(P, times, units):  # type: ignore[no-untyped-def]
    """Feed a whole arrival sequence to a fresh array-form limiter.

    ``units[k, slot]`` is attempt ``k``'s charge. Returns ``(admitted, retry_after_s,
    rejected_by)`` arrays (one row per attempt). Used by tests and the benchmark.
    """
    n = P.shape[0]
    m = times.shape[0]
    st, log_t, log_u = initial_state(P, 4)
    admitted = np.zeros(m, dtype=np.bool_)
    retry = np.zeros(m)
    rej = np.zeros((m, n), dtype=np.int8)
    for k in range(m):
        log_t, log_u = ensure_log_capacity(st, log_t, log_u)
        a, r = limiter_attempt(P, st, log_t, log_u, times[k], units[k], rej[k])
        admitted[k] = a
        retry[k] = r
    return admitted, retry, rej
