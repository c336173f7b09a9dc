"""THE client-side pacer: calls wait instead of being sent into a 429.

Fleet-wide, like the shared limiter teams put in front of one API key: a FIFO queue in
front of the SDK call, released by a token bucket (``rpm`` per minute, depth
``max(1, rpm·burst/60)``, starts full) and/or a cap on calls in flight. It wraps the SDK
call as ``async with limiter: await client.create(...)`` does: one token per call, the
concurrency slot held until the call's final outcome; the SDK's own retries happen inside
and are not paced again.

The load generator paces by this class (FIFO order is the caller's queue); the
simulator's compiled twin is in :func:`capacity.sim.kernels.replicate`.
"""

from __future__ import annotations

import math

from capacity.profile.schema import Profile

# A wake-up a hair after the instant the next token is due, so that float rounding never
# wakes the queue a moment too early (the simulator uses the same margin).
WAKE_EPSILON_S = 1e-9


class Pacer:
    """Token bucket (``rate_per_s``, ``depth``) and/or concurrency cap.

    Parameters
    ----------
    rate_per_s : tokens per second (0: no rate limit).
    depth : bucket depth in tokens (at least 1).
    concurrency : calls in flight at most (0: no cap).
    """

    def __init__(self, rate_per_s: float = 0.0, depth: float = 1.0,
                 concurrency: int = 0) -> None:
        self.rate = rate_per_s
        self.depth = max(1.0, depth)
        self.concurrency = concurrency
        self.level = self.depth
        self.last = 0.0
        self.inflight = 0

    @classmethod
    def from_profile(cls, profile: Profile) -> Pacer | None:
        """The profile's ``pacing`` section, or ``None`` when it has none."""
        pc = profile.pacing
        if pc is None:
            return None
        rate = pc.rpm / 60.0 if pc.rpm is not None else 0.0
        depth = max(1.0, pc.rpm * pc.burst / 60.0) if pc.rpm is not None else 1.0
        return cls(rate, depth, pc.concurrency or 0)

    def try_acquire(self, t: float) -> float:
        """Take a token and an in-flight slot at time ``t`` (seconds) if both are free.

        Returns 0.0 on success; otherwise seconds until a token is due (``inf`` when only a
        :meth:`release` can free the way). Nothing is taken on failure.
        """
        if self.concurrency > 0 and self.inflight >= self.concurrency:
            return math.inf
        if self.rate > 0.0:
            if t > self.last:
                self.level = min(self.depth, self.level + (t - self.last) * self.rate)
                self.last = t
            if self.level < 1.0:
                return (1.0 - self.level) / self.rate + WAKE_EPSILON_S
            self.level -= 1.0
        self.inflight += 1
        return 0.0

    def release(self, t: float) -> None:
        """A paced call reached its final outcome (success, or failure after retries)."""
        self.inflight -= 1
