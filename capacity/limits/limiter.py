"""The limiter: all of a profile's quotas as a provider enforces them — THE admit-or-429.

A request is admitted only if **every** slot it touches has room for its charge, and only
then is every slot charged (all at admission, as OpenAI and Azure do; output-token limits
are corrected after the call by :meth:`Limiter.settle`). A rejected request is answered
429 with a retry-after equal to the time until the slowest rejecting slot has room for
that request, assuming no other traffic, rounded strictly up to the next millisecond
(``retry-after-ms``); ``inf`` when it can never fit (bigger than the allowance). A rejected
attempt of a quota with ``rejected_count`` costs one unit of each of its request
dimensions (:meth:`Meter.count_rejection`) — taken *after* the retry-after is computed, so
where a request limit that counts rejections, enforced as a token bucket or a sliding
log, set the retry-after (the slowest rejecting slot), a retry that waits exactly that
long (to the millisecond) finds it short again, unless the bucket was already empty
(the analytic models follow this: the bucket's cascade, the sliding log's storms;
``benchmarks/session61_probes.py told``).

Charges come from :func:`capacity.model.quota.request_coefficients` (the one charging
rule). Meters start fresh (buckets full, windows empty), as a provider's would for a new
key; :meth:`Limiter.preload` starts them part-used, as the simulator does. Time is model
seconds from a :mod:`~capacity.limits.clock` (simulated, wall, or wall × time scale).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from capacity.limits.meters import (
    FixedWindow,
    Meter,
    SlidingWindow,
    TokenBucket,
    ceil_ms,
    make_meter,
)
from capacity.model.quota import (
    ChargeCoefficients,
    LimitSlot,
    Request,
    limit_slots,
    request_coefficients,
)
from capacity.profile.schema import Profile


@dataclass(frozen=True, slots=True)
class SlotSnapshot:
    """One slot's state as rate-limit headers report it.

    Attributes
    ----------
    key, quota, dimension : e.g. ``deployment.rpm``, ``deployment``, ``rpm``.
    limit : the quota Q in its own period (per minute or per day).
    remaining : units that would be admitted right now (whole units, ≥ 0).
    reset_s : seconds until the slot is back to its full allowance.
    allowance : units per enforcement window (or the bucket depth).
    """

    key: str
    quota: str
    dimension: str
    limit: float
    remaining: float
    reset_s: float
    allowance: float


@dataclass(frozen=True, slots=True)
class Decision:
    """A provider's answer to one attempt.

    Attributes
    ----------
    admitted : True for a 200, False for a 429.
    retry_after_s : for a 429, seconds until the request would fit (``inf``: never), rounded
        up to the next millisecond; 0 when admitted.
    rejected_by : keys of the slots that had no room.
    snapshots : the touched slots after the decision.
    charged : units charged on each touched slot (by key; 0 everywhere on a 429).
    """

    admitted: bool
    retry_after_s: float = 0.0
    rejected_by: tuple[str, ...] = ()
    snapshots: tuple[SlotSnapshot, ...] = ()
    charged: dict[str, float] = field(default_factory=dict)


class Attempt(NamedTuple):
    """The bare decision on a per-slot charge vector (what the simulator's kernel returns)."""

    admitted: bool
    retry_after_s: float
    rejected_by: tuple[int, ...]


class Limiter:
    """Quota slots, enforced.

    Parameters
    ----------
    slots : the slots to enforce (:func:`limit_slots`).
    clock_offset_s : where t = 0 falls on the provider's clock (seconds); fixed windows
        start at multiples of their length on that clock.
    profile : the profile the slots come from; needed to charge a :class:`Request`
        (:meth:`admit`), not to decide on a charge vector (:meth:`attempt`).
    """

    def __init__(self, slots: tuple[LimitSlot, ...], clock_offset_s: float = 0.0,
                 profile: Profile | None = None) -> None:
        self._profile = profile
        self.slots = slots
        self.clock_offset_s = clock_offset_s
        self.models: tuple[str, ...] = tuple(profile.models) if profile is not None else ()
        self._rules: dict[tuple[str, float | None], ChargeCoefficients] = {}
        self._touched: dict[str, tuple[int, ...]] = {}
        self.meters: list[Meter] = []
        self.reset()

    @classmethod
    def from_profile(cls, profile: Profile, clock_offset_s: float = 0.0) -> Limiter:
        """A fresh limiter for every quota of ``profile``."""
        return cls(limit_slots(profile), clock_offset_s, profile)

    @property
    def profile(self) -> Profile:
        """The profile (a limiter built from bare slots has none)."""
        if self._profile is None:
            raise ValueError("this limiter was built from bare slots: give it the profile "
                             "(Limiter.from_profile) to charge requests")
        return self._profile

    def reset(self) -> None:
        """Back to a fresh state: buckets full, windows empty."""
        self.meters = [make_meter(s, self.clock_offset_s) for s in self.slots]

    def knows(self, model: str) -> bool:
        """True if some quota of the profile covers ``model``."""
        return bool(self.touched(model))

    def touched(self, model: str) -> tuple[int, ...]:
        """Indices of the slots a request to ``model`` is charged on (cached per model)."""
        idx = self._touched.get(model)
        if idx is None:
            quotas = set(self.profile.quotas_for(model))
            idx = tuple(i for i, s in enumerate(self.slots) if s.quota in quotas)
            if len(self._touched) < 4096:  # unknown model names must not grow it forever
                self._touched[model] = idx
        return idx

    # -- charging --------------------------------------------------------------------

    def rule(self, model: str, max_tokens: float | None) -> ChargeCoefficients:
        """The charging rule for requests to ``model`` with this ``max_tokens`` (cached)."""
        key = (model, max_tokens)
        rule = self._rules.get(key)
        if rule is None:
            if len(self._rules) > 4096:  # many distinct max_tokens: keep memory bounded
                self._rules.clear()
            rule = request_coefficients(self.profile, model, max_tokens, self.slots)
            self._rules[key] = rule
        return rule

    def units(self, request: Request) -> NDArray[np.float64]:
        """Units ``request`` is charged at admission, one per slot (0: untouched)."""
        return self.rule(request.model, request.max_tokens).units(
            request.input_tokens, request.cached_input_tokens, request.output_tokens)

    def charges(self, request: Request) -> dict[str, float]:
        """Units ``request`` is charged at admission, by key of the slots it touches."""
        units = self.units(request)
        return {self.slots[i].key: float(units[i]) for i in self.touched(request.model)}

    # -- deciding --------------------------------------------------------------------

    def admit(self, t: float, request: Request) -> Decision:
        """Admit (and charge) or reject ``request`` at time ``t`` (seconds)."""
        units = self.units(request)
        touched = self.touched(request.model)
        admitted, retry_after, rejected = self.attempt(t, units)
        snaps = tuple(self._snap(i, t) for i in touched)
        charged = {self.slots[i].key: float(units[i]) if admitted else 0.0 for i in touched}
        return Decision(admitted, retry_after, tuple(self.slots[i].key for i in rejected),
                        snaps, charged)

    def attempt(self, t: float, units: Sequence[float] | NDArray[np.float64]) -> Attempt:
        """Admit (and charge) or reject a per-slot charge vector at time ``t`` — the form
        the simulator's kernel mirrors (``units[i]``: charge on slot ``i``, 0: untouched)."""
        waits = [m.check(t, float(u)) for m, u in zip(self.meters, units, strict=True)]
        rejected = tuple(i for i, w in enumerate(waits) if w > 0.0)
        if not rejected:
            for m, u in zip(self.meters, units, strict=True):
                if u > 0.0:
                    m.charge(t, float(u))
            return Attempt(True, 0.0, ())
        for s, m, u in zip(self.slots, self.meters, units, strict=True):
            if s.counts_rejected and u > 0.0:
                m.count_rejection(t)
        return Attempt(False, ceil_ms(max(waits[i] for i in rejected)), rejected)

    def settle(self, t: float, request: Request, actual_output_tokens: float) -> None:
        """After the response: correct the output-token charges of an admitted ``request``
        whose actual output differs from the ``output_tokens`` it was charged for (a
        no-op where ``max_tokens`` was reserved or no slot meters output)."""
        rule = self.rule(request.model, request.max_tokens)
        before = rule.units(request.input_tokens, request.cached_input_tokens,
                            request.output_tokens)
        after = rule.units(request.input_tokens, request.cached_input_tokens,
                           actual_output_tokens)
        for m, d in zip(self.meters, after - before, strict=True):
            if d != 0.0:
                m.settle(t, float(d))

    # -- reporting -------------------------------------------------------------------

    def _snap(self, i: int, t: float) -> SlotSnapshot:
        s = self.slots[i]
        st = self.meters[i].snapshot(t)
        return SlotSnapshot(s.key, s.quota, s.dimension, s.limit,
                            float(math.floor(st.remaining + 1e-9)), max(0.0, st.reset_s),
                            st.allowance)

    def snapshot(self, t: float, model: str | None = None) -> tuple[SlotSnapshot, ...]:
        """Every slot's state at ``t`` (only the slots ``model`` touches, if given)."""
        idx = range(len(self.slots)) if model is None else self.touched(model)
        return tuple(self._snap(i, t) for i in idx)

    def preload(self, bucket_deficit: Sequence[float] | NDArray[np.float64],
                window_used: Sequence[float] | NDArray[np.float64], spread: int = 64) -> None:
        """Start part-used at t = 0, exactly as the simulator's ``loaded_state`` does
        (call before the first attempt): ``bucket_deficit[i]`` units missing from bucket
        ``i``; ``window_used[i]`` units already in window slot ``i`` (a fixed window's
        current window; a sliding window's log as ``spread`` equal charges over (−w, 0])."""
        for m, d, u in zip(self.meters, bucket_deficit, window_used, strict=True):
            if isinstance(m, TokenBucket):
                m.level = m.depth - min(max(float(d), 0.0), m.depth)
                continue
            used = min(max(float(u), 0.0), m.allowance)
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
