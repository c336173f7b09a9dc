"""THE client retry policy on a 429 (the official SDKs' rule, with the profile's numbers;
the profile's defaults are openai-python ≤ 2.51's numbers, see
:class:`capacity.profile.schema.RetrySpec` for the current SDKs).

Retry *k* (1-based) waits the server's retry-after when ``honour_retry_after`` and
``0 < retry_after ≤ max_retry_after``; a longer one ends the call's retries when
``give_up_beyond`` (openai 3.57's rule with 120 s); otherwise ``min(initial_delay·2^(k−1),
max_delay)·(1 − jitter·u)`` with ``u`` uniform on [0, 1). After ``max_retries`` retries the
call fails (``on_exhausted`` says whether the turn goes on). A 429 reaches the client
``rejection_latency`` seconds after the attempt.

The load generator retries by this class; the simulator's compiled twin (in
:func:`capacity.sim.kernels.replicate`) is checked against it by the trace-replay test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from capacity.profile.schema import Profile


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries a 429. Durations in seconds."""

    max_retries: int = 2
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.25
    honour_retry_after: bool = True
    max_retry_after_s: float = 60.0
    rejection_latency_s: float = 0.05
    on_exhausted: Literal["abort_turn", "continue"] = "abort_turn"
    give_up_beyond: bool = False

    @classmethod
    def from_profile(cls, profile: Profile) -> RetryPolicy:
        """The profile's ``retry`` section."""
        r = profile.retry
        return cls(max_retries=r.max_retries, initial_delay_s=r.initial_delay,
                   max_delay_s=r.max_delay, jitter=r.jitter,
                   honour_retry_after=r.honour_retry_after,
                   max_retry_after_s=r.max_retry_after,
                   rejection_latency_s=r.rejection_latency, on_exhausted=r.on_exhausted,
                   give_up_beyond=r.beyond_max_retry_after == "give_up")

    def honours(self, retry_after_s: float | None) -> bool:
        """True if the server's retry-after (seconds) is waited as given."""
        return (self.honour_retry_after and retry_after_s is not None
                and 0.0 < retry_after_s <= self.max_retry_after_s)

    def backoff(self, k: int, u: float) -> float:
        """The exponential backoff of retry ``k`` (1-based) with jitter draw ``u`` ∈ [0, 1)."""
        return min(self.initial_delay_s * 2.0 ** (k - 1), self.max_delay_s) * (
            1.0 - self.jitter * u)

    def attempts_refused(self, retry_after_s: float | None) -> int:
        """Attempts a call makes when every one is refused with the same retry-after
        (seconds): the first and each retry :meth:`wait` allows. A charge larger than
        the limit can ever hold gets an infinite one (:meth:`capacity.limits.meters.
        Meter.check`): not honoured, so backed off ``max_retries`` times (``1 +
        max_retries`` attempts); with ``give_up_beyond``, the first attempt only."""
        k = 1
        while self.wait(k, retry_after_s, 0.0) is not None:
            k += 1
        return k

    def wait(self, k: int, retry_after_s: float | None, u: float) -> float | None:
        """Seconds to wait before retry ``k`` (1-based), or ``None`` to give up.

        Parameters
        ----------
        k : the retry about to be made (1 for the first retry).
        retry_after_s : the server's retry-after in seconds (``None`` or 0: none sent).
        u : a uniform draw in [0, 1) for the jitter (used only for the backoff).
        """
        if k > self.max_retries:
            return None
        if self.honours(retry_after_s):
            assert retry_after_s is not None
            return retry_after_s
        if self.give_up_beyond and retry_after_s is not None \
                and retry_after_s > self.max_retry_after_s:
            return None  # openai 3.57: a retry-after over its cap is not retried
        return self.backoff(k, u)
