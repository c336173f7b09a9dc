"""Clocks: where the limiter's time comes from (after SimPy's ``RealtimeEnvironment``).

The limiter never reads a clock itself; it is handed model seconds. The simulator passes
simulated time, the mock server a :class:`WallClock` (wall time × ``time_scale``, so that
``--time-scale 10`` runs ten minutes of behaviour in one), tests a :class:`ManualClock`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of model time in seconds (non-decreasing)."""

    def now(self) -> float:
        """Model seconds since the clock started."""
        ...


class WallClock:
    """Monotonic wall time × ``time_scale``: model seconds since creation.

    Model durations convert to wall seconds by dividing by ``time_scale``
    (:meth:`to_wall`), which is how a server under time compression sleeps and how its
    headers report waits.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0.0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.time_scale

    def to_wall(self, model_seconds: float) -> float:
        """Wall seconds that ``model_seconds`` last under this clock."""
        return model_seconds / self.time_scale

    def restart(self) -> None:
        """Model time 0 is now."""
        self._t0 = time.monotonic()


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self.time_scale = 1.0

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        """Move forward ``dt`` seconds (≥ 0)."""
        if dt < 0.0:
            raise ValueError("a clock does not go backwards")
        self.t += dt

    def to_wall(self, model_seconds: float) -> float:
        return model_seconds

    def restart(self) -> None:
        """Model time 0 is now (as :meth:`WallClock.restart`: a new origin, not time
        going backwards)."""
        self.t = 0.0
