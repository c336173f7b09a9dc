"""The compiled engine's decisions, replayed through the plain-Python rules.

The engine carries compiled twins of :class:`capacity.limits.Limiter` (admission),
:func:`capacity.model.quota.request_coefficients` (charging),
:class:`capacity.model.retry.RetryPolicy` (waits between retries) and, for a profile with
``routes``, of :class:`capacity.model.routing.Router` and
:class:`~capacity.model.routing.CallPath` (which deployment, then spill, retry, fall back
or fail; cooldown). :func:`replay` takes an :class:`~capacity.sim.engine.AttemptTrace`
and, attempt by attempt, recomputes with the plain-Python definitions which deployment
the engine chose (from the recorded draws and in-flight counts, and the pure limiter's own
snapshots for ``usage_based``), what it charged, whether it admitted, the retry-after it
sent, the next step it took and the wait before the next retry, and when the next
attempt was due — and lists every difference. An empty list is the proof that the twins
are equal on that trace (exactly: no tolerance).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from capacity.limits.limiter import Limiter
from capacity.model.quota import Request
from capacity.model.retry import RetryPolicy
from capacity.model.routing import (
    CallPath,
    Next,
    UsageBased,
    router_from_profile,
    snapshots_for,
)
from capacity.profile.schema import Profile
from capacity.sim.engine import AttemptTrace
from capacity.sim.kernels import (
    NX_DONE,
    NX_FAIL,
    NX_FALLBACK,
    NX_RETRY,
    NX_SPILL,
    T_ADMITTED,
    T_ATTEMPT,
    T_DEP,
    T_JITTER,
    T_LAT,
    T_NEXT,
    T_NODE,
    T_RETRY_AFTER,
    T_SITE,
    T_T,
    T_TCACHED,
    T_TIN,
    T_TOUT,
    T_TURN_U,
    T_U,
    T_UNITS,
    T_WAIT,
    WAIT_GAVE_UP,
    WAIT_NONE,
)

_NEXT = {Next.DONE: NX_DONE, Next.SPILL: NX_SPILL, Next.RETRY: NX_RETRY,
         Next.FALLBACK: NX_FALLBACK, Next.FAIL: NX_FAIL}


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One attempt where the engine and the plain-Python rule disagree."""

    attempt: int
    what: str
    engine: object
    pure: object

    def __str__(self) -> str:
        return f"attempt {self.attempt}: {self.what}: engine {self.engine!r}, pure {self.pure!r}"


def _admit(k: int, row: NDArray[np.float64], lim: Limiter, target: str,
           max_tokens: int | None, t: float, n_slots: int,
           out: list[Mismatch]) -> tuple[bool, float] | None:
    """Charge and admit trace row ``k`` (a request to ``target``) with the pure limiter,
    recording a differing charge; the pure (admitted, retry-after s), or None (recorded)
    when the decision differs from the engine's."""
    req = Request(model=target, input_tokens=float(row[T_TIN]),
                  output_tokens=float(row[T_TOUT]),
                  cached_input_tokens=float(row[T_TCACHED]), max_tokens=max_tokens)
    units = lim.units(req)
    engine_units = row[T_UNITS:T_UNITS + n_slots]
    if not np.array_equal(units, engine_units):
        out.append(Mismatch(k, "charge", engine_units.tolist(), units.tolist()))
    admitted, retry_after, _ = lim.attempt(t, units)
    if admitted != bool(row[T_ADMITTED]) or retry_after != row[T_RETRY_AFTER]:
        out.append(Mismatch(k, "decision (admitted, retry-after s)",
                            (bool(row[T_ADMITTED]), float(row[T_RETRY_AFTER])),
                            (admitted, retry_after)))
        return None
    return admitted, retry_after


def replay(trace: AttemptTrace, profile: Profile, *, limit: int = 20) -> list[Mismatch]:
    """Every difference (at most ``limit``) between the engine's trace and the pure rules.

    The pure limiter starts as the engine's did (same provider clock offset, same
    starting use) and sees the same attempts in the same order; for a routed profile a
    fresh :class:`~capacity.model.routing.Router` makes every choice.
    """
    if trace.deployments:
        return _replay_routed(trace, profile, limit)
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
        decided = _admit(k, row, lim, call.model, profile.max_tokens_for(call),
                         float(row[T_T]), n_slots, out)
        if decided is None:
            continue
        admitted, retry_after = decided
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


def _replay_routed(trace: AttemptTrace, profile: Profile, limit: int) -> list[Mismatch]:
    """:func:`replay` for a profile with ``routes``: every row is one choice of a
    deployment by a call's :class:`CallPath` (none available: nothing sent)."""
    lim = Limiter(trace.slots, trace.clock_offset_s, profile)
    lim.preload(trace.bucket_deficit, trace.window_used)
    policy = RetryPolicy.from_profile(profile)
    router = router_from_profile(profile)
    names = trace.deployments
    out: list[Mismatch] = []
    n_slots = len(trace.slots)
    flight_col = T_UNITS + n_slots
    paths: dict[int, CallPath] = {}  # call instance -> its path through the fleet
    round_ra: dict[int, float] = {}  # call instance -> retry-after of its round's last 429
    due: dict[int, float] = {}  # call instance -> when its next choice must be made
    spilling: set[int] = set()  # call instances whose last 429 spilled (same round)
    ends: list[list[float]] = [[] for _ in names]  # per deployment: admitted calls' ends
    for k, row in enumerate(trace.rows):
        if len(out) >= limit:
            break
        t = float(row[T_T])
        node = int(row[T_NODE])
        call = trace.sites[int(row[T_SITE])]
        if row[T_ATTEMPT] == 1:
            paths[node] = CallPath(router, call.model, policy.max_retries)
            due.pop(node, None)
        elif due.pop(node, None) != t:
            out.append(Mismatch(k, "next attempt sent at (s)", t, "the outcome's time + "
                                "rejection latency (unless none was available) + wait"))
        path = paths[node]
        if node not in spilling:
            round_ra[node] = 0.0  # a new round: one client attempt
        # In flight as the engine counted them: between the calls known to have ended
        # and those that may have ended at this very instant (equal times).
        in_flight = {}
        for j, name in enumerate(names):
            h = ends[j]
            while h and h[0] < t:
                heapq.heappop(h)
            at_t = sum(1 for x in h if x == t) if h and h[0] == t else 0
            got = int(row[flight_col + j])
            if not len(h) - at_t <= got <= len(h):
                out.append(Mismatch(k, f"calls in flight on {name}", got,
                                    (len(h) - at_t, len(h))))
            in_flight[name] = got
        route = router.routes[path.current]
        snaps = (snapshots_for(lim, route.deployments, t)
                 if isinstance(route.policy, UsageBased) else None)
        d = path.choose(t, u=float(row[T_U]), turn_u=float(row[T_TURN_U]),
                        in_flight=in_flight, snapshots=snaps)
        engine_dep = None if row[T_DEP] < 0 else names[int(row[T_DEP])]
        pure_dep = None if d is None else d.name
        if engine_dep != pure_dep:
            out.append(Mismatch(k, "deployment", engine_dep, pure_dep))
            continue
        admitted, retry_after = False, 0.0
        if d is not None:
            decided = _admit(k, row, lim, d.name, profile.max_tokens_for(call, d.name), t,
                             n_slots, out)
            if decided is None:
                continue
            admitted, retry_after = decided
            if admitted:
                heapq.heappush(ends[names.index(d.name)], t + float(row[T_LAT]))
            else:
                round_ra[node] = retry_after
        nxt = path.outcome(d, t, admitted)
        (spilling.add if nxt is Next.SPILL else spilling.discard)(node)
        if _NEXT[nxt] != row[T_NEXT]:
            out.append(Mismatch(k, "next step", int(row[T_NEXT]), nxt.value))
            continue
        # A 429 reaches the client after the rejection latency; "no deployment available"
        # at once. Then a spill or a fallback is sent, a retry waits.
        answered = t + (policy.rejection_latency_s if d is not None else 0.0)
        if nxt is Next.DONE:
            if row[T_WAIT] != WAIT_NONE:
                out.append(Mismatch(k, "wait after a success", float(row[T_WAIT]), None))
        elif nxt in (Next.SPILL, Next.FALLBACK):
            due[node] = answered
        elif nxt is Next.RETRY:
            wait = policy.wait(path.attempt, round_ra[node], float(row[T_JITTER]))
            # WAIT_NONE: the run ended before the answer reached the client; a give-up
            # (a retry-after beyond the client's cap): WAIT_GAVE_UP.
            engine_wait = None if row[T_WAIT] == WAIT_GAVE_UP else float(row[T_WAIT])
            if row[T_WAIT] != WAIT_NONE and wait != engine_wait:
                out.append(Mismatch(k, "wait before the next retry (s)", engine_wait, wait))
            if wait is not None:
                due[node] = answered + wait
        elif row[T_WAIT] not in (WAIT_GAVE_UP, WAIT_NONE):
            out.append(Mismatch(k, "a failed call's wait", float(row[T_WAIT]), WAIT_GAVE_UP))
    return out
