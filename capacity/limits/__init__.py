"""Provider quota enforcement in plain Python: THE definition of "admit or 429".

A profile's quotas become :class:`LimitSlot` s — one per (quota, dimension), e.g.
``deployment.rpm`` — each enforced by a meter (:mod:`.meters`: fixed window, sliding
window, token bucket). The :class:`Limiter` (:mod:`.limiter`) admits a :class:`Request`
only if every slot it touches has room, charges it by the one charging rule
(:mod:`capacity.model.quota`), and reports snapshots that :func:`render_headers`
(:mod:`.headers`) prints as OpenAI, Azure or Anthropic rate-limit headers. Time comes from
a clock (:mod:`.clock`): simulated, wall, or wall × time scale.

Imports no numba, scipy, typer or rich: the mock server and the load generator use it
as is; the simulator's compiled kernel (:mod:`capacity.sim.kernels`) is its twin, proven
equal by replaying the engine's attempt trace through it (``tests/test_twins.py``).
"""

from capacity.limits.clock import Clock, ManualClock, WallClock
from capacity.limits.headers import DIALECTS, Dialect, go_duration, render_headers, rfc3339
from capacity.limits.limiter import Attempt, Decision, Limiter, SlotSnapshot
from capacity.limits.meters import (
    MIN_WAIT,
    FixedWindow,
    Meter,
    MeterState,
    SlidingWindow,
    TokenBucket,
    ceil_ms,
    make_meter,
)
from capacity.model.quota import (
    REQUEST_DIMENSIONS,
    ChargeCoefficients,
    EnforcementType,
    LimitSlot,
    Request,
    charge_coefficients,
    charge_units,
    limit_slots,
    request_coefficients,
)

__all__ = [
    "DIALECTS",
    "MIN_WAIT",
    "REQUEST_DIMENSIONS",
    "Attempt",
    "ChargeCoefficients",
    "Clock",
    "Decision",
    "Dialect",
    "EnforcementType",
    "FixedWindow",
    "LimitSlot",
    "Limiter",
    "ManualClock",
    "Meter",
    "MeterState",
    "Request",
    "SlidingWindow",
    "SlotSnapshot",
    "TokenBucket",
    "WallClock",
    "ceil_ms",
    "charge_coefficients",
    "charge_units",
    "go_duration",
    "limit_slots",
    "make_meter",
    "render_headers",
    "request_coefficients",
    "rfc3339",
]
