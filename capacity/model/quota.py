"""Quota slots and charging rules: which (quota, dimension) pairs a profile enforces and
how many units each call is charged on each of them.

This is the one definition shared by the analytic model (:mod:`capacity.model.workload`),
the limiter (:mod:`capacity.limits`, used by the mock server) and the simulator (whose
compiled kernel evaluates the same coefficients; the trace-replay test checks it). It
imports neither numba nor scipy.

Charged units per call and slot: requests 1; ``tpm``/``tpd`` input + output; ``itpm``
input; ``otpm`` output, where input excludes cached tokens if the quota has
``cached_input_exempt`` and output is ``max_tokens`` if the quota has
``charge_max_tokens``, else ``min(output, max_tokens)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy is imported where arrays are built: validation needs none
    import numpy as np
    from numpy.typing import NDArray

from capacity.profile.schema import DIMENSION_PERIOD_S, CallSpec, Profile

EnforcementType = Literal["fixed_window", "sliding_window", "token_bucket"]
REQUEST_DIMENSIONS = frozenset({"rpm", "rpd"})


# ---------------------------------------------------------------------------------------
# Slots: one per (quota, dimension)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitSlot:
    """One enforced (quota, dimension) pair.

    Attributes
    ----------
    quota, dimension : names, e.g. ``deployment`` and ``rpm``.
    kind : the enforcement type.
    limit : the quota Q (requests or tokens per ``period_s``).
    period_s : 60 s for per-minute dimensions, 86400 s for per-day ones.
    window_s : window length w (seconds) for the window types.
    burst_s : bucket depth in seconds of refill, for token buckets.
    counts_rejected : rejected attempts cost one unit here (request dimension of a quota
        with ``rejected_count``).
    """

    quota: str
    dimension: str
    kind: EnforcementType
    limit: float
    period_s: float
    window_s: float
    burst_s: float
    counts_rejected: bool

    @property
    def key(self) -> str:
        """``quota.dimension``, the slot's name in results."""
        return f"{self.quota}.{self.dimension}"

    @property
    def rate(self) -> float:
        """Long-run allowance in units per second (Q/period)."""
        return self.limit / self.period_s

    @property
    def allowance(self) -> float:
        """Units admitted per window (q = ⌊Q·w/period⌋), or the bucket depth (units)."""
        if self.kind == "token_bucket":
            return self.limit * self.burst_s / self.period_s
        return float(math.floor(self.limit * self.window_s / self.period_s + 1e-9))

    @property
    def is_request(self) -> bool:
        """True for the request-count dimensions (rpm, rpd)."""
        return self.dimension in REQUEST_DIMENSIONS


def limit_slots(profile: Profile) -> tuple[LimitSlot, ...]:
    """Every (quota, dimension) the profile enforces, in quota order then dimension order."""
    out = []
    for qname, q in profile.quotas.items():
        for dim, lim in q.limits().items():
            enf = q.enforcement_for(dim)
            out.append(LimitSlot(
                quota=qname, dimension=dim, kind=enf.type, limit=lim.limit,
                period_s=DIMENSION_PERIOD_S[dim], window_s=enf.window, burst_s=enf.burst,
                counts_rejected=q.rejected_count and dim in REQUEST_DIMENSIONS,
            ))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ChargeCoefficients:
    """How one call site is charged on every slot: ``units = request + input·a − cached·b
    + output·c + max_tokens·d`` with 0/1 coefficients (arrays of one value per slot).

    ``output`` here is already cut at ``max_tokens``; ``max_tokens`` is 0 when unset.
    """

    request: NDArray[np.float64]
    input: NDArray[np.float64]
    cached: NDArray[np.float64]
    output: NDArray[np.float64]
    max_tokens: NDArray[np.float64]
    max_tokens_value: float = field(default=math.inf)

    def units(self, input_tokens: float, cached_input_tokens: float,
              output_tokens: float) -> NDArray[np.float64]:
        """Units charged on each slot for one call with these token counts."""
        out_cut = min(output_tokens, self.max_tokens_value)
        mt = 0.0 if math.isinf(self.max_tokens_value) else self.max_tokens_value
        return (self.request + self.input * input_tokens - self.cached * cached_input_tokens
                + self.output * out_cut + self.max_tokens * mt)


@dataclass(frozen=True, slots=True)
class Request:
    """One LLM request as a provider meters it.

    Attributes
    ----------
    model : the model (or deployment) name the request is for.
    input_tokens : prompt tokens, cached ones included.
    output_tokens : tokens the model generates (charged at admission cut at ``max_tokens``;
        a mock draws them before admitting, as the simulator does).
    cached_input_tokens : prompt tokens served from the provider's cache.
    max_tokens : the request's ``max_tokens``; ``None`` takes the model's default.
    """

    model: str
    input_tokens: float
    output_tokens: float = 0.0
    cached_input_tokens: float = 0.0
    max_tokens: float | None = None


Columns = tuple[list[float], list[float], list[float], list[float], list[float]]


def request_coefficients(profile: Profile, model: str, max_tokens: float | None,
                         slots: tuple[LimitSlot, ...] | None = None) -> ChargeCoefficients:
    """THE charging rule: how a request to ``model`` with this ``max_tokens`` is charged on
    every slot (zero on slots of quotas that do not cover ``model``).

    ``max_tokens`` of ``None`` falls back to the model's default (none: unbounded).
    """
    import numpy as np

    columns, cap = _rule(profile, model, max_tokens, slots)
    req, inp, cac, out, mtk = (np.array(c, dtype=np.float64) for c in columns)
    return ChargeCoefficients(req, inp, cac, out, mtk, cap)


def output_cap(profile: Profile, model: str, max_tokens: float | None) -> float | None:
    """A request's output cap (tokens): its own ``max_tokens``, else its model's default
    (``model`` a model or deployment of ``profile``; None: unbounded)."""
    if max_tokens is None and (model in profile.models or model in profile.deployments):
        return profile.model_of(model).max_tokens
    return max_tokens


def _rule(profile: Profile, model: str, max_tokens: float | None,
          slots: tuple[LimitSlot, ...] | None) -> tuple[Columns, float]:
    """:func:`request_coefficients` as plain lists (one value per slot) and the
    max_tokens cut: validating a profile reads the rule without importing numpy."""
    slots = limit_slots(profile) if slots is None else slots
    touched = set(profile.quotas_for(model))
    max_tokens = output_cap(profile, model, max_tokens)
    n = len(slots)
    req, inp, cac, out, mtk = ([0.0] * n for _ in range(5))
    for i, s in enumerate(slots):
        if s.quota not in touched:
            continue
        q = profile.quotas[s.quota]
        if s.dimension in REQUEST_DIMENSIONS:
            req[i] = 1.0
            continue
        if s.dimension in ("tpm", "tpd", "itpm"):
            inp[i] = 1.0
            cac[i] = 1.0 if q.cached_input_exempt else 0.0
        if s.dimension in ("tpm", "tpd", "otpm"):
            # Reserving max_tokens needs a max_tokens (the profile checks enforce it).
            if q.charge_max_tokens and max_tokens is not None:
                mtk[i] = 1.0
            else:
                out[i] = 1.0
    return (req, inp, cac, out, mtk), math.inf if max_tokens is None else float(max_tokens)


def charge_coefficients(profile: Profile, call: CallSpec,
                        slots: tuple[LimitSlot, ...] | None = None,
                        target: str | None = None) -> ChargeCoefficients:
    """The per-slot charging rule of a profile's ``call`` (its model, its max_tokens) when
    served by ``target`` (a deployment or model; default the call's own model)."""
    name = call.model if target is None else target
    return request_coefficients(profile, name, profile.max_tokens_for(call, name), slots)


def slot_charge(profile: Profile, call: CallSpec, slot: LimitSlot,
                target: str | None = None) -> tuple[float, float, float, float, float, float]:
    """:func:`charge_coefficients` on one slot as floats, without numpy: (request, input,
    cached, output, max_tokens coefficients, the max_tokens cut)."""
    name = call.model if target is None else target
    (req, inp, cac, out, mtk), cap = _rule(profile, name, profile.max_tokens_for(call, name),
                                          (slot,))
    return req[0], inp[0], cac[0], out[0], mtk[0], cap


def charge_units(profile: Profile, call: CallSpec, *, input_tokens: float,
                 cached_input_tokens: float = 0.0,
                 output_tokens: float) -> dict[str, float]:
    """Units one call is charged at admission, by slot key (only slots it touches).

    Parameters
    ----------
    profile, call : the profile and one of its calls.
    input_tokens : prompt tokens, cached ones included.
    cached_input_tokens : prompt tokens served from the provider cache.
    output_tokens : tokens the model would generate (cut at ``max_tokens``).
    """
    slots = limit_slots(profile)
    units = charge_coefficients(profile, call, slots).units(
        input_tokens, cached_input_tokens, output_tokens)
    touched = set(profile.quotas_for(call.model))
    return {s.key: float(u) for s, u in zip(slots, units, strict=True) if s.quota in touched}
