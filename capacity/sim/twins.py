"""The compiled engine's decisions, replayed through the plain-Python rules.

The engine carries compiled twins of :class:`capacity.limits.Limiter` (admission),
:func:`capacity.model.quota.request_coefficients` (charging) and
:class:`capacity.model.retry.RetryPolicy` (waits between retries). :func:`replay` takes an
:class:`~capacity.sim.engine.AttemptTrace` and, attempt by attempt, recomputes with the
plain-Python definitions what the engine charged, whether it admitted, the retry-after it
sent and the wait before the next retry — and lists every difference. An empty list is
the proof that the twins are equal on that trace (exactly: no tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capacity.limits.limiter import Limiter
from capacity.model.quota import Request
from capacity.model.retry import RetryPolicy
from capacity.profile.schema import Profile
from capacity.sim.engine import AttemptTrace
from capacity.sim.kernels import (
    T_ADMITTED,
    T_ATTEMPT,
    T_JITTER,
    T_NODE,
    T_RETRY_AFTER,
    T_SITE,
    T_T,
    T_TCACHED,
    T_TIN,
    T_TOUT,
    T_UNITS,
    T_WAIT,
    WAIT_GAVE_UP,
    WAIT_NONE,
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One attempt where the engine and the plain-Python rule disagree."""

    attempt: int
    what: str
    engine: object
    pure: object

    def __str__(self) -> str:
        return f"attempt {self.attempt}: {self.what}: engine {self.engine!r}, pure {self.pure!r}"


def replay(trace: AttemptTrace, profile: Profile, *, limit: int = 20) -> list[Mismatch]:
    """Every difference (at most ``limit``) between the engine's trace and the pure rules.

    The pure limiter starts as the engine's did (same provider clock offset, same
    starting use) and sees the same attempts in the same order.
    """
    lim = Limiter(trace.slots, trace.clock_offset_s, profile)
    lim.preload(trace.bucket_deficit, trace.window_used)
    policy = RetryPolicy.from_profile(profile)
    out: list[Mismatch] = []
    n_slots = len(trace.slots)
    due: dict[int, float] = {}  # call instance -> when its retry must be sent
    for k, row in enumerate(trace.rows):
        if len(out) >= limit:
            break
        node = int(row[T_NODE])
        if row[T_ATTEMPT] > 1 and due.pop(node, None) != row[T_T]:
            out.append(Mismatch(k, "retry sent at (s)", float(row[T_T]), "rejection time "
                                "+ rejection latency + wait"))
        call = trace.sites[int(row[T_SITE])]
        req = Request(model=call.model, input_tokens=float(row[T_TIN]),
                      output_tokens=float(row[T_TOUT]),
                      cached_input_tokens=float(row[T_TCACHED]),
                      max_tokens=profile.max_tokens_for(call))
        units = lim.units(req)
        engine_units = row[T_UNITS:T_UNITS + n_slots]
        if not np.array_equal(units, engine_units):
            out.append(Mismatch(k, "charge", engine_units.tolist(), units.tolist()))
        admitted, retry_after, _ = lim.attempt(float(row[T_T]), units)
        if admitted != bool(row[T_ADMITTED]) or retry_after != row[T_RETRY_AFTER]:
            out.append(Mismatch(k, "decision (admitted, retry-after s)",
                                (bool(row[T_ADMITTED]), float(row[T_RETRY_AFTER])),
                                (admitted, retry_after)))
            continue
        if admitted:
            if row[T_WAIT] != WAIT_NONE:
                out.append(Mismatch(k, "wait after a success", float(row[T_WAIT]), None))
            continue
        wait = policy.wait(int(row[T_ATTEMPT]), retry_after, float(row[T_JITTER]))
        engine_wait = None if row[T_WAIT] == WAIT_GAVE_UP else float(row[T_WAIT])
        # WAIT_NONE on a 429: the run ended before the rejection reached the client.
        if row[T_WAIT] != WAIT_NONE and wait != engine_wait:
            out.append(Mismatch(k, "wait before the next retry (s)", engine_wait, wait))
        if wait is not None:
            due[node] = float(row[T_T]) + policy.rejection_latency_s + wait
    return out
