"""Meters: one slot's enforcement state, in plain Python — the readable definition.

* :class:`FixedWindow` — a counter per window ``[k·w − offset, (k+1)·w − offset)``
  that admits a charge while ``count + units ≤ q``, with ``q = ⌊Q·w/period + 1e-9⌋``;
* :class:`SlidingWindow` — at most ``q`` units in any interval ``(t − w, t]`` (a log of
  timestamped charges);
* :class:`TokenBucket` — refills continuously at ``Q/period`` per second up to a depth of
  ``Q·burst/period``, starts full, admits a charge while ``units ≤ level``.

Every meter has the same verbs (after alisaifee/limits' ``test``/``hit``/``get_window_
stats``): :meth:`~Meter.check` (seconds until ``units`` would fit, 0 if now),
:meth:`~Meter.charge`, :meth:`~Meter.settle` (an extra charge or a refund after the call,
for output-token limits), :meth:`~Meter.count_rejection` and :meth:`~Meter.snapshot`
(what rate-limit headers print). Times are seconds on the meter's own clock and never go
backwards; a zero charge always fits.

Counted rejections (``rejected_count``, OpenAI: "unsuccessful requests contribute to
your per-minute limit"): for windows the unit is recorded like any other charge (a sliding
log keeps it for ``w`` seconds, which is what can make a storm self-sustaining). For token
buckets it is taken *only if it is there* (the level never goes below zero): a bucket has
no memory of demand beyond its level, so an empty bucket is not pushed into debt by the
attempts it turns away.

The simulator's compiled twin of these rules is in :mod:`capacity.sim.kernels`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from capacity.model.quota import LimitSlot

# A refusal always reports a positive wait (float rounding at a window boundary could
# otherwise yield 0, which means "fits now"); ceil_ms makes it at least 1 ms anyway.
MIN_WAIT = 1e-9


def ceil_ms(seconds: float) -> float:
    """Round a wait (seconds) strictly up to the next whole millisecond (``retry-after-ms``).

    Strictly up, so that a client sleeping exactly this long arrives after the window
    boundary / expiry / refill instant rather than on it (where float rounding could put
    it a hair early).
    """
    if not math.isfinite(seconds):
        return math.inf
    return (math.floor(seconds * 1000.0) + 1.0) / 1000.0


@dataclass(frozen=True, slots=True)
class MeterState:
    """What a meter would print in rate-limit headers at one instant.

    Attributes
    ----------
    allowance : units per window (or the bucket depth).
    remaining : units that would be admitted right now (≥ 0).
    reset_s : seconds until the meter is back to its full allowance (0 if it is).
    """

    allowance: float
    remaining: float
    reset_s: float


class Meter:
    """Interface of one slot's enforcement state. Times are seconds, non-decreasing."""

    allowance: float

    def check(self, t: float, units: float) -> float:
        """0 if ``units`` fit now; else seconds (> 0) until they would (``inf``: never)."""
        raise NotImplementedError

    def charge(self, t: float, units: float) -> None:
        """Record an admitted charge of ``units`` at time ``t``."""
        raise NotImplementedError

    def settle(self, t: float, delta: float) -> None:
        """Correct a charge after the call: ``delta`` > 0 charges more, < 0 refunds."""
        raise NotImplementedError

    def count_rejection(self, t: float) -> None:
        """Record the one request unit a counted rejection costs."""
        raise NotImplementedError

    def snapshot(self, t: float) -> MeterState:
        """Allowance, what remains and when it resets, at time ``t``."""
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

    def _window_end(self) -> float:
        assert self.index is not None
        return (self.index + 1) * self.window_s - self.offset_s

    def check(self, t: float, units: float) -> float:
        if units <= 0.0:
            return 0.0
        self._roll(t)
        if self.count + units <= self.allowance:
            return 0.0
        if units > self.allowance:
            return math.inf
        return max(self._window_end() - t, MIN_WAIT)

    def charge(self, t: float, units: float) -> None:
        self._roll(t)
        self.count += units

    def settle(self, t: float, delta: float) -> None:
        # Counted in the window the correction happens in; a refund never goes below 0.
        self._roll(t)
        self.count = max(0.0, self.count + delta)

    def count_rejection(self, t: float) -> None:
        # Past q the count changes nothing in this window; below q (another slot
        # rejected the call) it uses up a real slot.
        self.charge(t, 1.0)

    def snapshot(self, t: float) -> MeterState:
        self._roll(t)
        reset = self._window_end() - t if self.count > 0.0 else 0.0
        return MeterState(self.allowance, max(0.0, self.allowance - self.count), reset)


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

    def check(self, t: float, units: float) -> float:
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

    def settle(self, t: float, delta: float) -> None:
        if delta >= 0.0:
            self.charge(t, delta)
            return
        # A refund takes back the newest charges first (the ones the call just made).
        self._expire(t)
        refund = -delta
        while refund > 0.0 and self.log:
            te, u = self.log.pop()
            take = min(u, refund)
            refund -= take
            self.total -= take
            if u > take:
                self.log.append((te, u - take))
                break
        if not self.log:
            self.total = 0.0

    def count_rejection(self, t: float) -> None:
        self.charge(t, 1.0)

    def snapshot(self, t: float) -> MeterState:
        self._expire(t)
        reset = self.log[-1][0] + self.window_s - t if self.log else 0.0
        return MeterState(self.allowance, max(0.0, self.allowance - self.total), reset)


class TokenBucket(Meter):
    """Refills at ``rate`` units/s up to ``depth``; starts full; a charge needs the units."""

    def __init__(self, rate: float, depth: float) -> None:
        self.rate = rate
        self.depth = depth
        self.allowance = depth
        self.level = depth
        self.last = 0.0

    def _refill(self, t: float) -> None:
        if t > self.last:
            self.level = min(self.depth, self.level + (t - self.last) * self.rate)
            self.last = t

    def check(self, t: float, units: float) -> float:
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

    def settle(self, t: float, delta: float) -> None:
        # An extra charge may drive the level below zero (the tokens were produced);
        # a refund never fills the bucket past its depth.
        self._refill(t)
        self.level = min(self.depth, self.level - delta)

    def count_rejection(self, t: float) -> None:
        # Take the unit only if it is there: an empty bucket is not driven into debt.
        self._refill(t)
        self.level = max(0.0, self.level - 1.0)

    def snapshot(self, t: float) -> MeterState:
        self._refill(t)
        level = max(0.0, self.level)
        return MeterState(self.depth, level, (self.depth - self.level) / self.rate)


def make_meter(slot: LimitSlot, offset_s: float = 0.0) -> Meter:
    """A fresh meter enforcing ``slot`` (fixed windows shifted by ``offset_s`` seconds)."""
    if slot.kind == "fixed_window":
        return FixedWindow(slot.allowance, slot.window_s, offset_s % slot.window_s)
    if slot.kind == "sliding_window":
        return SlidingWindow(slot.allowance, slot.window_s)
    return TokenBucket(slot.rate, slot.allowance)
