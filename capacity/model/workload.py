"""Workload view of a profile: what each turn sends to each quota, and when.

Two views feed the analytic model:

* **events** — a turn is split into *launch events*, one per step launch (a call, or a
  parallel fan-out whose copies land in the same instant). Each event has a rate per turn
  (expected occurrences: optional steps and loops change it) and a *batch*: the calls it
  launches together. This is the compound-Poisson decomposition of theory.md §2.1.
* **per-turn samples** — a vectorised sampler of whole turns (latency, calls and metered
  units per quota dimension), for spreads and percentiles that have no closed form
  (e.g. the maximum of a random fan-out of random latencies).

Metered units per call follow the provider's accounting, defined once in
:mod:`capacity.quota` and shared with the simulator (see :func:`metered`).
"""

from __future__ import annotations

import functools
import itertools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from capacity._lazy import LazyModule
from capacity.model.dist import Distribution, spread_points
from capacity.model.quota import LimitSlot, limit_slots, slot_charge
from capacity.profile.schema import (
    DIMENSION_UNIT,
    SESSION,
    CallSpec,
    CallStep,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    SessionSpec,
    Step,
    iter_calls,
    max_calls,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
else:  # validating a profile builds its workload; numpy only when something is sampled
    np = LazyModule("numpy", globals(), "np")

# ---------------------------------------------------------------------------------------
# Metered units of one call
# ---------------------------------------------------------------------------------------


def _fast_fft_size(n: int) -> int:
    """The smallest 2^i·3^j·5^k ≥ n (numpy's FFT is fastest on such lengths)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _conv(a: NDArray[np.float64], b: NDArray[np.float64],
          top: int | None = None) -> NDArray[np.float64]:
    """Distribution of the sum of two independent lattice variables; with ``top``, the
    mass beyond index ``top`` is gathered at ``top`` (a sum that passed it stays past)."""
    if a.size == 1:
        out = b * a[0]
    elif b.size == 1:
        out = a * b[0]
    elif a.size * b.size > 4_000_000:
        # By FFT: rounding leaves ~1e-16 noise, negative in places; clip and renormalise.
        n = a.size + b.size - 1
        size = _fast_fft_size(n)
        out = np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)[:n]
        out = np.clip(out, 0.0, None)
        out = out / out.sum()
    else:
        out = np.convolve(a, b)
    result: NDArray[np.float64] = out
    if top is not None and out.size > top + 1:
        result = out[: top + 1].copy()
        result[top] += float(out[top + 1:].sum())
    return _trim_tail(result)


# Trailing mass a lattice law may gather onto its first point past the rest (share of 1).
_TAIL_MASS = 1e-15


def _trim_tail(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """``p`` with its longest tail of total mass at most :data:`_TAIL_MASS` gathered at
    the tail's first point (mass kept; the mean lowered by at most that mass times the
    lattice's length, ~1e-9 of a step on a million points).

    Why: a sum of K copies spans K times one copy's lattice, and all but its start is
    the product of the copies' 1e-9 tails (and, by FFT, rounding noise): hunt-3064's 11
    parallel lognormal prompts on a one-token lattice made 4.2 million points, 2 s of
    convolutions, of which ~0.5 million carry mass above 1e-15."""
    if p.size < 4096:
        return p
    tail = np.cumsum(p[::-1])[::-1]                 # tail[k] = P(X ≥ k)
    # First index whose tail mass fits the allowance; kept, with the rest on it.
    j = int(np.searchsorted(-tail, -_TAIL_MASS * float(tail[0]), side="left"))
    if j >= p.size - 1:
        return p
    out = p[: j + 1].copy()
    out[j] = float(tail[j])
    return out


@dataclass(frozen=True)
class CallCost:
    """How one call is charged against one quota dimension.

    ``kind`` is ``requests`` (1 per call) or ``tokens``; token charges add up to
    ``input`` (metered input) + ``output`` (charged output) distributions, with
    ``output_cap`` applied to the output (max_tokens) and ``output_fixed`` set when
    ``max_tokens`` is charged at admission.
    """

    kind: str
    input: Distribution | None = None
    uncached: float = 1.0
    output: Distribution | None = None
    output_cap: float = math.inf
    output_fixed: float | None = None

    @property
    def mean(self) -> float:
        """Expected units charged per call (requests or tokens)."""
        if self.kind == "requests":
            return 1.0
        total = 0.0
        if self.input is not None:
            total += self.input.mean * self.uncached
        if self.output_fixed is not None:
            total += self.output_fixed
        elif self.output is not None:
            total += self.output.mean_clipped(self.output_cap)
        return max(total, 0.0)

    @property
    def upper(self) -> float:
        """Largest possible charge (inf when unbounded)."""
        return self._bound(lambda d: d.upper)

    @property
    def lower(self) -> float:
        """Smallest possible charge."""
        return self._bound(lambda d: d.lower)

    def _bound(self, end: Callable[[Distribution], float]) -> float:
        """The charge at ``end`` (a distribution's bound) of its input and output."""
        if self.kind == "requests":
            return 1.0
        total = 0.0
        if self.input is not None:
            total += end(self.input) * self.uncached
        if self.output_fixed is not None:
            total += self.output_fixed
        elif self.output is not None:
            total += min(end(self.output), self.output_cap)
        return total

    def pmf(self, h: float, top: float = math.inf) -> NDArray[np.float64]:
        """Distribution of the charge on a lattice of step ``h`` units (index k = k·h).

        Mean-preserving (see :meth:`Distribution.lattice_pmf`); charges above ``top``
        units are gathered at the point ⌈top/h⌉. A copy (callers change theirs) of the
        law remembered in :data:`_COST_PMFS`.
        """
        # By value: :func:`metered` makes a new CallCost at each call, and a fleet's
        # models ask for the same charge on the same lattice again and again (the
        # populations beside ptu-spillover: 380 laws an answer, 56 of them distinct).
        key = (self, h, top)
        try:
            hit = _COST_PMFS.get(key)
        except TypeError:  # (a distribution built with lists: unhashable, not remembered)
            return self._pmf(h, top)
        if hit is None:
            hit = remember(_COST_PMFS, key, self._pmf(h, top), size=64)
        return hit.copy()

    def _pmf(self, h: float, top: float) -> NDArray[np.float64]:
        t_idx = math.ceil(top / h - 1e-12) if math.isfinite(top) else None
        if self.kind == "requests":
            return Distribution.fixed(1.0).lattice_pmf(h, top=top)
        acc = np.ones(1)
        if self.input is not None and self.uncached > 0:
            # Metered input = input × (1 - cached share): a rescaled lattice step.
            acc = _conv(acc, self.input.lattice_pmf(h / self.uncached,
                                                    top=top / self.uncached), t_idx)
        if self.output_fixed is not None:
            acc = _conv(acc, Distribution.fixed(self.output_fixed).lattice_pmf(h, top=top),
                        t_idx)
        elif self.output is not None:
            acc = _conv(acc, self.output.lattice_pmf(h, cap=self.output_cap, top=top), t_idx)
        return acc


_COST_PMFS: dict[tuple[CallCost, float, float], NDArray[np.float64]] = {}


def metered(profile: Profile, slot: LimitSlot, call: CallSpec,
            target: str | None = None) -> CallCost | None:
    """How ``call`` is charged on ``slot``, as a distribution (None: it is not charged).

    The rule itself is :func:`capacity.quota.charge_coefficients` — the simulator's —
    read here as distributions: requests 1 per call; input tokens (less the cached share
    when the quota exempts cached input) where the slot meters input; ``max_tokens`` where
    the quota charges it at admission, else the generated tokens cut at max_tokens.
    ``target``: the deployment or model serving the call (default: the call's model).
    """
    # The scalar form of the rule (no numpy: validating a profile builds its workload).
    request, inp_c, cached_c, out_c, mtk_c, cap = slot_charge(profile, call, slot, target)
    if request:
        return CallCost("requests")
    if not (inp_c or out_c or mtk_c):
        return None
    inp = call.input_tokens if inp_c else None
    uncached = 1.0 - call.cached_input_fraction * cached_c
    out = call.output_tokens if out_c else None
    fixed = cap if mtk_c else None
    return CallCost("tokens", inp, uncached, out, cap, fixed)


# ---------------------------------------------------------------------------------------
# Routing: a call names a logical model; each copy is served by one deployment
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedCost(CallCost):
    """A routed call's charge on one slot: with probability ``share`` a copy is served by
    a target charging ``cost`` (``None``: a target that does not touch the slot, charge 0).

    Copies choose their deployment independently (``weighted`` per call), so a fan-out of
    K copies charges the K-fold convolution of this mixture: the exact binomial
    (multinomial) thinning of the batch. ``parts`` follow :func:`call_targets`' order.
    """

    parts: tuple[tuple[float, CallCost | None], ...] = ()

    @property
    def mean(self) -> float:
        """Expected units per copy: Σ share·mean."""
        return math.fsum(s * c.mean for s, c in self.parts if c is not None)

    @property
    def upper(self) -> float:
        """Largest charge of any target a copy may go to."""
        return max((c.upper for s, c in self.parts if c is not None and s > 0), default=0.0)

    @property
    def lower(self) -> float:
        """Smallest charge a copy may take (0 when a target does not touch the slot)."""
        return min((0.0 if c is None else c.lower for s, c in self.parts if s > 0),
                   default=0.0)

    @property
    def zero_share(self) -> float:
        """Share of copies served by targets that do not touch the slot."""
        return math.fsum(s for s, c in self.parts if c is None)

    def pmf(self, h: float, top: float = math.inf) -> NDArray[np.float64]:
        """The mixture of the targets' charge distributions on the lattice of step ``h``."""
        pieces = [(s, c.pmf(h, top) if c is not None else np.ones(1))
                  for s, c in self.parts if s > 0]
        out = np.zeros(max(p.size for _, p in pieces))
        for s, p in pieces:
            out[: p.size] += s * p
        return out


def charged_share(cost: CallCost | None) -> float:
    """Chance that one call (copy) is charged on the slot at all (0 or 1 unrouted)."""
    if cost is None:
        return 0.0
    if isinstance(cost, MixedCost):
        return math.fsum(s for s, c in cost.parts if c is not None and c.mean > 0)
    return 1.0 if cost.mean > 0 else 0.0


def _route_calls(profile: Profile) -> dict[str, list[tuple[CallSpec, float]]]:
    """Per logical model, its calls with their exact mean launches per turn (mix-weighted)."""
    total = sum(t.weight for t in profile.session.turns.values())
    out: dict[str, list[tuple[CallSpec, float]]] = {}
    ones: dict[int, CallCost | None] = {}
    for turn in profile.session.turns.values():
        for ev in turn_events(turn.steps):
            for call in {id(x): x for x in ev.batch.calls()}.values():
                ones.clear()
                ones[id(call)] = CallCost("requests")
                rate = turn.weight / total * ev.rate * batch_units_mean(ev.batch, ones)
                out.setdefault(call.model, []).append((call, rate))
    return out


def _mean_latency(profile: Profile, calls: list[tuple[CallSpec, float]],
                  target: str) -> float:
    """Mean latency (s) of the route's calls (launch-weighted) served by ``target``."""
    model = profile.model_of(target)
    num = den = 0.0
    for call, rate in calls:
        mt = profile.max_tokens_for(call, target)
        cap = float(mt) if mt is not None else math.inf
        num += rate * (model.ttft.mean + call.output_tokens.mean_clipped(cap)
                       * _mean_inverse(model.tokens_per_second))
        den += rate
    return num / den if den > 0 else model.ttft.mean


def _capacity(profile: Profile, calls: list[tuple[CallSpec, float]], target: str) -> float:
    """Route calls per second ``target``'s quotas admit in the mean (inf: unlimited)."""
    rate = math.fsum(r for _, r in calls)
    best = math.inf
    for slot in limit_slots(profile):
        if slot.quota not in profile.quotas_for(target):
            continue
        per_call = math.fsum(r * c.mean for call, r in calls
                             if (c := metered(profile, slot, call, target)) is not None)
        if rate > 0 and per_call > 0:
            best = min(best, slot.rate / (per_call / rate))
    return best


def route_shares(profile: Profile) -> dict[str, tuple[tuple[str, float], ...]]:
    """First-attempt share of each logical model's calls that each target receives.

    * ``weighted`` — ``w_d / Σw`` (exact in law: each call draws its deployment);
    * ``round_robin`` — equal shares (exact in the mean; the rotation is *smoother* than a
      random choice: over equal limits the analytic model pools the deployments, see
      :func:`capacity.analytic.fleet._pooled`, over unequal ones a request slot counts
      one in k of the route's calls, :func:`capacity.analytic.fleet._rotated`; token
      slots keep the random split, slightly conservative);
    * ``least_busy`` — shares ∝ 1 / (mean latency on the deployment): balancing calls in
      flight ``λ_d·R_d`` (Little's law) gives that split; equal latencies give equal
      shares. An approximation (the real rule reacts to the instantaneous counts, which
      is smoother than random: conservative for the burst model);
    * ``usage_based`` — shares ∝ each deployment's capacity (route calls per second its
      quotas admit in the mean): balancing the share of each window used moves load in
      proportion to the limits (and fills them together: pooled, like round_robin);
    * ``priority`` — every call to the first deployment; what spills to the next on a
      429 is the analytic model's overflow (:mod:`capacity.analytic.fleet`).

    Deployments of weight 0 get nothing (the router never picks them). Cooldown is not
    modelled here. Cached per profile.
    """
    return cached_per_profile(_SHARES, profile, _route_shares)


def _route_shares(profile: Profile) -> dict[str, tuple[tuple[str, float], ...]]:
    calls = _route_calls(profile)
    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for name, route in profile.routes.items():
        targets = [(t, w) for t, w in route.targets() if w > 0]
        mine = calls.get(name, [])
        if route.policy == "weighted":
            raw = [w for _, w in targets]
        elif route.policy == "priority":
            raw = [1.0] + [0.0] * (len(targets) - 1)
        elif route.policy == "least_busy":
            raw = [1.0 / max(_mean_latency(profile, mine, t), 1e-9) for t, _ in targets]
        elif route.policy == "usage_based":
            caps = [_capacity(profile, mine, t) for t, _ in targets]
            unlimited = [math.isinf(c) for c in caps]
            raw = ([float(u) for u in unlimited] if any(unlimited) else caps)
        else:  # round_robin
            raw = [1.0] * len(targets)
        total = math.fsum(raw)
        out[name] = tuple((t, r / total) for (t, _), r in zip(targets, raw, strict=True))
    return out


_SHARES: dict[int, tuple[Profile, dict[str, tuple[tuple[str, float], ...]]]] = {}

# Calls pinned to one target (a `per_turn` route's turn copies): id → (weak ref, target).
_PINNED: dict[int, tuple[weakref.ref[CallSpec], str]] = {}


def _pin(call: CallSpec, target: str) -> CallSpec:
    """A copy of ``call`` that :func:`call_targets` sends to ``target`` only."""
    copy = call.model_copy()
    key = id(copy)

    def drop(_ref: weakref.ref[CallSpec], k: int = key) -> None:
        _PINNED.pop(k, None)

    _PINNED[key] = (weakref.ref(copy, drop), target)
    return copy


def call_targets(profile: Profile, call: CallSpec) -> tuple[tuple[str, float], ...]:
    """(target, share) serving ``call``: itself for an unrouted call, its route's shares
    (:func:`route_shares`), or the one target a ``per_turn`` turn copy is pinned to."""
    pin = _PINNED.get(id(call))
    if pin is not None and pin[0]() is call:
        return ((pin[1], 1.0),)
    if call.model not in profile.routes:
        return ((call.model, 1.0),)
    return route_shares(profile)[call.model]


def routed_metered(profile: Profile, slot: LimitSlot, call: CallSpec) -> CallCost | None:
    """:func:`metered` of a call over the targets serving it (a :class:`MixedCost` when
    several do); exactly :func:`metered` for an unrouted call."""
    targets = call_targets(profile, call)
    if len(targets) == 1:
        target = targets[0][0]
        return metered(profile, slot, call, None if target == call.model else target)
    parts = tuple((s, metered(profile, slot, call, t)) for t, s in targets)
    if all(c is None for _, c in parts):
        return None
    return MixedCost("mixed", parts=parts)


def _pin_steps(steps: tuple[Step, ...] | list[Step],
               choice: dict[str, str]) -> list[Step]:
    """``steps`` with every call to a logical model in ``choice`` pinned to its target."""
    out: list[Step] = []
    for step in steps:
        if isinstance(step, CallStep):
            call = step.call
            out.append(step.model_copy(update={"call": _pin(call, choice[call.model])})
                       if call.model in choice else step)
            continue
        kind = ("parallel" if isinstance(step, ParallelStep) else
                "optional" if isinstance(step, OptionalStep) else "repeat")
        blk = getattr(step, kind)
        if blk.call is not None:
            new_blk = blk.model_copy(update={"call": _pin(blk.call, choice[blk.call.model])}
                                     ) if blk.call.model in choice else blk
        else:
            new_blk = blk.model_copy(update={"steps": _pin_steps(blk.steps, choice)})
        out.append(step.model_copy(update={kind: new_blk}))
    return out


def _per_turn_variants(profile: Profile, name: str, probability: float,
                       steps: tuple[Step, ...]) -> list[tuple[str, float, tuple[Step, ...]]]:
    """A turn crossed with the deployment choices of its ``per_turn`` routes (exact).

    All calls of a turn to a ``per_turn`` route use the turn's one uniform draw (the
    router's inverse CDF), so the joint choice is a function of that draw: the unit
    interval cut at every route's cumulative shares gives the variants and their
    probabilities.
    """
    from capacity.profile.schema import iter_calls

    shares = route_shares(profile)
    used = sorted({c.model for c, _ in iter_calls(list(steps), ())
                   if (r := profile.routes.get(c.model)) is not None
                   and r.policy == "weighted" and r.per_turn})
    if not used:
        return [(name, probability, steps)]
    cuts = {0.0, 1.0}
    for logical in used:
        acc = 0.0
        for _, s in shares[logical]:
            acc += s
            cuts.add(min(acc, 1.0))
    edges = sorted(cuts)
    out = []
    for a, b in itertools.pairwise(edges):
        if b - a <= 0:
            continue
        u = (a + b) / 2
        choice = {}
        for logical in used:
            acc = 0.0
            pick = shares[logical][-1][0]
            for t, s in shares[logical]:
                acc += s
                if u < acc:
                    pick = t
                    break
            choice[logical] = pick
        label = ", ".join(f"{k}→{v}" for k, v in choice.items())
        out.append((f"{name} [{label}]", probability * (b - a),
                    tuple(_pin_steps(steps, choice))))
    return out


def _latency_targets(profile: Profile, call: CallSpec) -> list[tuple[float, Any, int | None]]:
    """(share, latency model, max_tokens) of the targets serving ``call``, merged where
    they share both (so a fleet of one model samples exactly like one deployment)."""
    out: list[tuple[float, Any, int | None]] = []
    for t, s in call_targets(profile, call):
        model, mt = profile.model_of(t), profile.max_tokens_for(call, t)
        for i, (s0, m0, mt0) in enumerate(out):
            if m0 is model and mt0 == mt:
                out[i] = (s0 + s, m0, mt0)
                break
        else:
            out.append((s, model, mt))
    return [x for x in out if x[0] > 0] or out[:1]


def _target_index(shares: list[float], rng: np.random.Generator,
                  n: int) -> NDArray[np.int64]:
    """Each of ``n`` copies' target by inverse CDF of a fresh uniform (like the router)."""
    cum = np.cumsum(shares)
    idx: NDArray[np.int64] = np.minimum(np.searchsorted(cum / cum[-1], rng.random(n),
                                                        side="right"), len(shares) - 1)
    return idx


def sample_call_latency(call: CallSpec, profile: Profile, rng: np.random.Generator,
                        n: int) -> NDArray[np.float64]:
    """``n`` latencies (s) of ``call``: ttft + min(output, max_tokens)/tokens_per_second
    of the model serving each copy (an unrouted call draws exactly as it always did)."""
    return sample_call_latency_output(call, profile, rng, n)[0]


def sample_call_latency_output(call: CallSpec, profile: Profile, rng: np.random.Generator,
                               n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(latencies (s), the output tokens drawn for them, before any ``max_tokens`` cut):
    the draws of :func:`sample_call_latency`, the output kept (a large output is also a
    long call, which a window's charge law must see)."""
    targets = _latency_targets(profile, call)
    which = (_target_index([s for s, _, _ in targets], rng, n)
             if len(targets) > 1 else None)
    lat = np.zeros(n)
    outs = np.zeros(n)
    for j, (_, model, mt) in enumerate(targets):
        raw = np.rint(call.output_tokens.sample(rng, n))
        out = np.minimum(raw, mt) if mt is not None else raw
        one = model.ttft.sample(rng, n) + out / model.tokens_per_second.sample(rng, n)
        if which is None:
            return np.asarray(one, dtype=np.float64), np.asarray(raw, dtype=np.float64)
        lat = np.where(which == j, one, lat)
        outs = np.where(which == j, raw, outs)
    return lat, outs


# ---------------------------------------------------------------------------------------
# Launch events (compound-Poisson view)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Calls launched in the same instant: ``children`` each repeated ``count`` times,
    each child kept with probability ``keep`` (an optional step inside a fan-out)."""

    count: Distribution
    children: tuple[CallSpec | Batch, ...]
    keep: float = 1.0

    def calls(self) -> list[CallSpec]:
        """Every distinct call spec in the batch."""
        out: list[CallSpec] = []
        for c in self.children:
            out.extend(c.calls() if isinstance(c, Batch) else [c])
        return out


ONE = Distribution.fixed(1, "count")


@dataclass(frozen=True)
class Event:
    """A launch event: ``rate`` occurrences per turn, each launching ``batch``."""

    rate: float
    batch: Batch


def _wrap(batch: Batch, ctx: tuple[tuple[Distribution, float], ...]) -> Batch:
    # Innermost context first: each enclosing fan-out multiplies the batch.
    for count, keep in reversed(ctx):
        batch = Batch(count, (batch,), keep)
    return batch


def _events(steps: list[Step] | tuple[Step, ...], rate: float,
            ctx: tuple[tuple[Distribution, float], ...]) -> list[Event]:
    out: list[Event] = []
    for step in steps:
        if isinstance(step, CallStep):
            out.append(Event(rate, _wrap(Batch(ONE, (step.call,)), ctx)))
        elif isinstance(step, ParallelStep):
            par = step.parallel
            out += _events(par.body, rate, (*ctx, (par.count, 1.0)))
        elif isinstance(step, OptionalStep):
            opt = step.optional
            if ctx:
                # Inside a fan-out each copy flips its own coin: thin the batch.
                out += _events(opt.body, rate, (*ctx, (ONE, opt.probability)))
            else:
                out += _events(opt.body, rate * opt.probability, ctx)
        elif isinstance(step, RepeatStep):
            rep = step.repeat
            # Loop iterations run one after another: each is its own launch event.
            out += _events(rep.body, rate * rep.count.mean, ctx)
    return out


def turn_events(steps: list[Step]) -> list[Event]:
    """Launch events of one turn type (theory.md §2.1)."""
    return _events(steps, 1.0, ())


def batch_units_pmf(batch: Batch, cost: dict[int, CallCost | None], h: float,
                    top: float = math.inf, max_len: int = 1 << 22) -> NDArray[np.float64]:
    """Distribution of units a batch charges to one constraint, on a lattice of step h.

    ``cost`` maps ``id(call)`` to its :class:`CallCost` (None: the call does not touch
    the constraint). A fan-out of K copies is the K-fold convolution of its children,
    mixed over the distribution of K. Every charge is spread mean-preservingly (see
    :meth:`Distribution.lattice_pmf`), so the batch's lattice mean is exact except for
    charges beyond ``top`` units, which are gathered at ⌈top/h⌉: pass a ``top`` past
    the allowance and the distribution below it is all that matters.
    """
    t_idx = math.ceil(top / h - 1e-12) if math.isfinite(top) else None
    inner = np.ones(1)
    for child in batch.children:
        if isinstance(child, Batch):
            p = batch_units_pmf(child, cost, h, top, max_len)
        else:
            c = cost.get(id(child))
            p = c.pmf(h, top) if c is not None else np.ones(1)
        inner = _conv(inner, p, t_idx)
    if batch.keep < 1.0:
        thinned = inner * batch.keep
        thinned[0] += 1.0 - batch.keep
        inner = thinned
    count = batch.count
    if count.is_fixed and count.mean == 1:
        return inner
    k_max = int(count.upper)
    if count.is_fixed:
        # K fixed copies by squaring: log2(K) + popcount(K) convolutions, not K - 1
        # (hunt-3064: 11 prompts of 380,000 points, 10 FFT products -> 5).
        out, sq, k = np.ones(1), inner, k_max
        while k:
            if k & 1:
                out = _conv(out, sq, t_idx)
            k >>= 1
            if k:
                sq = _conv(sq, sq, t_idx)
            if out.size > max_len or sq.size > max_len:
                raise ValueError("batch distribution too large for the lattice")
        return out
    probs = count.lattice_pmf(1.0)
    out = np.zeros(1)
    power = np.ones(1)
    for k in range(k_max + 1):
        pk = probs[k] if k < probs.size else 0.0
        if pk > 0:
            if out.size < power.size:
                out = np.pad(out, (0, power.size - out.size))
            out[: power.size] += pk * power
        if k < k_max:
            if t_idx is not None and power.size > t_idx and power[:t_idx].sum() < 1e-15:
                # Every longer fan-out is past `top` too: the rest of K lands there.
                if out.size <= t_idx:
                    out = np.pad(out, (0, t_idx + 1 - out.size))
                out[t_idx] += float(probs[k + 1:].sum())
                break
            power = _conv(power, inner, t_idx)
            if power.size > max_len:
                raise ValueError("batch distribution too large for the lattice")
    return out


def batch_units_mean(batch: Batch, cost: dict[int, CallCost | None]) -> float:
    """Expected units a batch charges to one constraint."""
    inner = 0.0
    for child in batch.children:
        if isinstance(child, Batch):
            inner += batch_units_mean(child, cost)
        else:
            c = cost.get(id(child))
            inner += c.mean if c is not None else 0.0
    return batch.count.mean * batch.keep * inner


def batch_units_upper(batch: Batch, cost: dict[int, CallCost | None]) -> float:
    """Largest units a batch can charge to one constraint (inf if unbounded)."""
    inner = 0.0
    for child in batch.children:
        if isinstance(child, Batch):
            inner += batch_units_upper(child, cost)
        else:
            c = cost.get(id(child))
            inner += c.upper if c is not None else 0.0
    return batch.count.upper * inner if inner > 0 else 0.0


# ---------------------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """One (quota, dimension) pair: a limit of ``limit`` units per ``period_s`` seconds."""

    quota: str
    dim: str
    limit: float
    period_s: float
    enforcement: str
    window_s: float
    burst_s: float
    costs: dict[int, CallCost | None] = field(repr=False, compare=False)

    @property
    def unit(self) -> str:
        """``requests`` or a kind of tokens."""
        return DIMENSION_UNIT[self.dim]

    @property
    def rate_per_s(self) -> float:
        """Refill / allowance rate in units per second."""
        return self.limit / self.period_s

    @property
    def allowance(self) -> int:
        """Units admitted per window: ⌊Q·w/period⌋ (windows only)."""
        return math.floor(self.limit * self.window_s / self.period_s + 1e-9)

    @property
    def depth(self) -> float:
        """Token-bucket depth in units: Q·burst/period."""
        return self.limit * self.burst_s / self.period_s

    @property
    def memory_s(self) -> float:
        """Seconds the counter remembers: its window, or a token bucket's depth in
        seconds of refill."""
        return self.burst_s if self.enforcement == "token_bucket" else self.window_s

    @property
    def name(self) -> str:
        """``quota.dim``."""
        return f"{self.quota}.{self.dim}"


@dataclass(frozen=True)
class TurnType:
    """A turn type with its mix probability and launch events."""

    name: str
    probability: float
    steps: tuple[Step, ...]
    events: tuple[Event, ...]


@dataclass
class Workload:
    """Derived view of a profile used by the analytic model and reports."""

    profile: Profile
    turns: tuple[TurnType, ...]
    constraints: tuple[Constraint, ...]
    # attempt_share by constraint name: a constraint's calls do not change with its limit,
    # which the ceiling and size searches vary.
    _shares: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_profile(cls, profile: Profile) -> Workload:
        """The workload view (turn events, constraints with per-call costs) of a profile.

        Profiles are immutable, so the view (with its sampled turns) is cached for the few
        most recent profiles: the analytic model, the simulator and the search share it.
        """
        return cached_per_profile(_WORKLOADS, profile, cls._build)

    @classmethod
    def _build(cls, profile: Profile) -> Workload:
        total = sum(t.weight for t in profile.session.turns.values())
        turns = tuple(
            TurnType(name, t.weight / total, tuple(t.steps), tuple(turn_events(t.steps)))
            for name, t in profile.session.turns.items()
        )
        if profile.routes:
            # Routed: `per_turn` routes cross the turn mix with the deployment choice.
            turns = tuple(TurnType(vn, vp, vs, tuple(turn_events(list(vs))))
                          for t in turns
                          for vn, vp, vs in _per_turn_variants(profile, t.name,
                                                               t.probability, t.steps))
        calls: list[CallSpec] = []
        for t in turns:
            for ev in t.events:
                calls.extend(ev.batch.calls())
        charge = routed_metered if profile.routes else metered
        constraints = tuple(
            Constraint(s.quota, s.dimension, s.limit, s.period_s, s.kind, s.window_s,
                       s.burst_s, {id(c): charge(profile, s, c) for c in calls})
            for s in limit_slots(profile))
        return cls(profile, turns, constraints)

    def units_per_turn(self, c: Constraint) -> float:
        """Mean units a turn (averaged over the mix) charges to constraint ``c``."""
        return sum(
            t.probability * ev.rate * batch_units_mean(ev.batch, c.costs)
            for t in self.turns for ev in t.events
        )

    def calls_per_turn(self) -> float:
        """Mean calls per turn over the mix."""
        ones: dict[int, CallCost | None] = {
            id(call): CallCost("requests") for t in self.turns for ev in t.events
            for call in ev.batch.calls()}
        return sum(t.probability * ev.rate * batch_units_mean(ev.batch, ones)
                   for t in self.turns for ev in t.events)

    def calls_per_turn_on(self, c: Constraint) -> float:
        """Mean calls (copies) per turn that constraint ``c`` charges at all: a routed
        copy counts with the share of its targets that touch ``c``."""
        ones: dict[int, CallCost | None] = {}
        for t in self.turns:
            for ev in t.events:
                for call in ev.batch.calls():
                    p = charged_share(c.costs.get(id(call)))
                    ones[id(call)] = (MixedCost("requests", parts=(
                        (p, CallCost("requests")), (1.0 - p, None))) if p > 0 else None)
        return sum(t.probability * ev.rate * batch_units_mean(ev.batch, ones)
                   for t in self.turns for ev in t.events)

    def attempt_share(self, c: Constraint) -> float:
        """``c``'s calls as a share of all calls: its 429s are this share of the
        attempts' (the 429 target is a share of all attempts)."""
        hit = self._shares.get(c.name)
        if hit is None:
            total = self.calls_per_turn()
            hit = self._shares[c.name] = (min(1.0, self.calls_per_turn_on(c) / total)
                                          if total > 0 else 1.0)
        return hit

    def calls_per_turn_type(self) -> list[float]:
        """Mean calls per turn of each turn type."""
        ones: dict[int, CallCost | None] = {
            id(call): CallCost("requests") for t in self.turns for ev in t.events
            for call in ev.batch.calls()}
        return [sum(ev.rate * batch_units_mean(ev.batch, ones) for ev in t.events)
                for t in self.turns]

    @cached_property
    def turn_latency_moments(self) -> list[tuple[float, float, bool]]:
        """(mean, minimum, deterministic) latency of each turn type (seconds)."""
        return [latency_moments(t.steps, self.profile) for t in self.turns]

    @cached_property
    def turn_sample(self) -> TurnSample:
        """A fixed-seed sample of whole turns (for latency spreads and percentiles).

        Turns with very many calls get fewer samples, so the work stays bounded.
        """
        n = turn_sample_size(self.calls_per_turn(), TURN_SAMPLE_SIZE)
        return sample_turns(self, n=n, rng=np.random.default_rng(TURN_SAMPLE_SEED))

    @cached_property
    def turn_latency(self) -> NDArray[np.float64]:
        """The latencies (seconds) of :attr:`turn_sample`, drawn without its units when
        that sample is not needed otherwise (the analytic answer needs only these)."""
        if "turn_sample" in self.__dict__:
            return self.turn_sample.latency
        n = turn_sample_size(self.calls_per_turn(), TURN_SAMPLE_SIZE)
        return sample_turns(self, n=n, rng=np.random.default_rng(TURN_SAMPLE_SEED),
                            units=False).latency


def turn_sample_size(mean_calls: float, cap: int) -> int:
    """How many turns to sample: ``cap``, fewer when turns make so many calls that the
    sample would exceed :data:`CALL_SAMPLE_BUDGET` sampled calls (at least 256)."""
    return int(min(cap, max(256, CALL_SAMPLE_BUDGET // max(mean_calls, 1.0))))


T = TypeVar("T")


def cached_per_profile(store: dict[int, tuple[Profile, T]], profile: Profile,
                       build: Callable[[Profile], T]) -> T:
    """``build(profile)``, remembered for the 16 most recent profiles in ``store``.

    Keyed by identity (profiles are immutable); each entry keeps its profile alive, so an
    id is never reused while its entry exists.
    """
    hit = store.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    value = build(profile)
    remember(store, id(profile), (profile, value))
    return value


K = TypeVar("K")
V = TypeVar("V")


def remember(store: dict[K, V], key: K, value: V, size: int = 16) -> V:
    """``store[key] = value``, the oldest entry dropped first once ``store`` holds
    ``size`` (a module-level cache that stays small across many profiles)."""
    if len(store) >= size:
        store.pop(next(iter(store)))
    store[key] = value
    return value


_WORKLOADS: dict[int, tuple[Profile, Workload]] = {}


def population_profiles(profile: Profile) -> dict[str, Profile]:
    """Each population of ``profile`` as a profile of one (its pacing and turns as
    ``session``; the same quotas, routes and retry rule), by name, ``session`` first.
    The same objects for the same profile, so their workloads (and turn samples) are
    built once for the analytic view, the simulator's start and its warm model."""
    return cached_per_profile(_POPULATIONS, profile, _population_profiles)


def _population_profiles(profile: Profile) -> dict[str, Profile]:
    if not profile.populations:
        return {SESSION: profile}
    return {name: profile.model_copy(update={"session": spec, "populations": {}})
            for name, spec in profile.all_sessions().items()}


_POPULATIONS: dict[int, tuple[Profile, dict[str, Profile]]] = {}

# Turn latency percentiles and E[max] of random fan-outs have no closed form: they are
# estimated from this many sampled turns with a fixed seed, so results are reproducible.
TURN_SAMPLE_SIZE = 1 << 17
TURN_SAMPLE_SEED = 20261124
# Sampled calls per sample (a few seconds of work at most): turns of thousands of calls
# are sampled fewer times instead of taking minutes.
CALL_SAMPLE_BUDGET = 1 << 21
# A loop or fan-out is sampled copy by copy for every sampled turn while that is cheap
# (the sample stays the same as ever); beyond this many body samples every copy that
# runs is sampled at once and reduced per turn, so the work is proportional to the calls
# produced and the Python overhead to the steps written.
_DENSE_LIMIT = 1 << 21
_DENSE_COPIES = 16


@dataclass(frozen=True)
class TurnSample:
    """Sampled turns: latency (seconds), calls, and per turn the units charged to each
    constraint (keyed ``quota.dim``) plus raw ``input_tokens``/``output_tokens``/
    ``cached_input_tokens``."""

    latency: NDArray[np.float64]
    calls: NDArray[np.float64]
    units: dict[str, NDArray[np.float64]]


def _sample_steps(steps: tuple[Step, ...] | list[Step], profile: Profile,
                  constraints: tuple[Constraint, ...], rng: np.random.Generator,
                  n: int, raw: bool = True) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                     dict[str, NDArray[np.float64]]]:
    """Latency (s), calls and units (per :func:`_unit_keys`) of ``n`` sampled runs of
    ``steps``; ``raw=False`` with no constraints: no units at all (the same draws)."""
    lat, calls, units = _sample_block(steps, profile, constraints, rng, n, raw)
    keys = _unit_keys(constraints) if raw or constraints else []
    return lat, calls, {k: units[k] if k in units else np.zeros(n) for k in keys}


# Units of a sampled block: keys missing from the dict are all zero (a constraint that
# does not meter the block's calls), so sums and masks skip them.
if TYPE_CHECKING:
    _Units = dict[str, NDArray[np.float64]]


def _sample_block(steps: tuple[Step, ...] | list[Step], profile: Profile,
                  constraints: tuple[Constraint, ...], rng: np.random.Generator,
                  n: int, raw: bool) -> tuple[NDArray[np.float64], NDArray[np.float64], _Units]:
    # Accumulated in place (every array here is this call's own): the turn sample is
    # 131,072 turns, and a temporary per step and unit key was most of its cost. The
    # first step's arrays start the sums (0 + x is x: no zeros to add them to).
    lat: NDArray[np.float64] | None = None
    calls: NDArray[np.float64] | None = None
    units: _Units = {}

    def add(into: _Units, part: _Units) -> None:
        for key, v in part.items():
            if key in into:
                into[key] += v
            else:
                into[key] = v

    for step in steps:
        if isinstance(step, CallStep):
            sl, sc, su = _sample_call(step.call, profile, constraints, rng, n, raw)
        else:
            kind = "parallel" if isinstance(step, ParallelStep) else (
                "optional" if isinstance(step, OptionalStep) else "repeat")
            blk = getattr(step, kind)
            if kind == "optional":
                sl, sc, su = _sample_block(blk.body, profile, constraints, rng, n, raw)
                off = ~(rng.random(n) < blk.probability)
                sl[off] = 0.0
                sc[off] = 0.0
                for v in su.values():
                    v[off] = 0.0
            else:
                k = blk.count.sample(rng, n).astype(np.int64)
                kmax = int(k.max()) if n else 0
                sl, sc = np.zeros(n), np.zeros(n)
                su = {}
                dense = kmax <= _DENSE_COPIES and n * kmax <= _DENSE_LIMIT
                for j in range(kmax if dense else 0):
                    idle = k <= j
                    bl, bc, bu = _sample_block(blk.body, profile, constraints, rng, n, raw)
                    bl[idle] = 0.0
                    bc[idle] = 0.0
                    for v in bu.values():
                        v[idle] = 0.0
                    if kind == "parallel":
                        np.maximum(sl, bl, out=sl)  # latencies are ≥ 0: an idle copy is 0
                    else:
                        sl += bl
                    sc += bc
                    add(su, bu)
                fixed = (None if dense or raw or constraints or kind != "parallel"
                         else _fixed_block_latency(blk.body, profile))
                if not dense and kmax and fixed is not None:
                    # Latencies only, of copies that draw nothing (every distribution
                    # fixed): the slowest copy is any copy; the copies' arrays skipped.
                    pos = np.flatnonzero(k > 0)
                    sl[pos] = fixed
                    sc[pos] = k[pos]
                elif not dense and kmax:
                    # One row per copy of the body, sampled at once, then reduced per turn.
                    pos = np.flatnonzero(k > 0)
                    bl, bc, bu = _sample_block(blk.body, profile, constraints, rng,
                                               int(k.sum()), raw)
                    starts = np.concatenate(([0], np.cumsum(k[pos])[:-1]))
                    reduce = np.maximum.reduceat if kind == "parallel" else np.add.reduceat
                    sl[pos] = reduce(bl, starts)
                    sc[pos] = np.add.reduceat(bc, starts)
                    for key, v in bu.items():
                        su[key] = np.zeros(n)
                        su[key][pos] = np.add.reduceat(v, starts)
        if lat is None or calls is None:
            lat, calls = sl, sc
        else:
            lat += sl
            calls += sc
        add(units, su)
    if lat is None or calls is None:
        return np.zeros(n), np.zeros(n), units
    return lat, calls, units


def _fixed_block_latency(steps: tuple[Step, ...] | list[Step], profile: Profile
                         ) -> float | None:
    """The latency (s) of a body that is one call served by one model whose draws are all
    fixed (no random numbers drawn), computed as :func:`_sample_call` computes each copy's;
    ``None`` otherwise."""
    if len(steps) != 1 or not isinstance(steps[0], CallStep):
        return None
    call = steps[0].call
    targets = call_targets(profile, call)
    if len(targets) > 1:
        return None
    model = profile.model_of(targets[0][0])
    dists = (call.output_tokens, call.input_tokens, model.ttft, model.tokens_per_second)
    if not all(d.is_fixed for d in dists):
        return None
    mt = profile.max_tokens_for(call, targets[0][0])
    one = np.ones(1)
    out = np.rint(call.output_tokens.mean * one)
    if mt is not None:
        out = np.minimum(out, mt)
    lat = model.ttft.mean * one
    lat += out / (model.tokens_per_second.mean * one)
    return float(lat[0])


def _unit_keys(constraints: tuple[Constraint, ...]) -> list[str]:
    # Raw token counts ride along with the per-constraint charges (names contain a dot).
    return ["input_tokens", "output_tokens", "cached_input_tokens",
            *(c.name for c in constraints)]


def _sample_call(call: CallSpec, profile: Profile, constraints: tuple[Constraint, ...],
                 rng: np.random.Generator, n: int, raw: bool = True) -> tuple[
                     NDArray[np.float64], NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """One call sampled ``n`` times: latency (s), calls (ones) and the units it charges
    (constraints that do not meter it are left out; raw token counts when ``raw``)."""
    targets = call_targets(profile, call)
    live = [j for j, (_, share) in enumerate(targets) if share > 0]
    if len(live) > 1:
        return _sample_routed_call(call, profile, constraints, rng, n, targets, raw)
    # One target takes every first attempt (a priority route's first deployment): its
    # latency and charges, without drawing the others'.
    pick = live[0] if live else 0
    model = profile.model_of(targets[pick][0])
    mt = profile.max_tokens_for(call, targets[pick][0])
    out = np.rint(call.output_tokens.sample(rng, n))
    if mt is not None and not _never_above(call.output_tokens, mt):
        np.minimum(out, mt, out=out)
    if not (raw or constraints):  # latencies only: the input draw, then nothing of it
        if not call.input_tokens.is_fixed:
            _skip(call.input_tokens, rng, n)
        lat = model.ttft.sample(rng, n)
        lat += out / _draw(model.tokens_per_second, rng, n)
        return lat, np.ones(n), {}
    inp = np.rint(call.input_tokens.sample(rng, n))
    cached = np.rint(inp * call.cached_input_fraction)
    lat = model.ttft.sample(rng, n)
    lat += out / _draw(model.tokens_per_second, rng, n)
    units: dict[str, NDArray[np.float64]] = ({"input_tokens": inp, "output_tokens": out,
                                              "cached_input_tokens": cached} if raw else {})
    for c in constraints:
        cost = c.costs.get(id(call))
        if isinstance(cost, MixedCost):
            cost = cost.parts[pick][1]
        if cost is not None:
            units[c.name] = _sampled_units(cost, inp, out, n)
    return lat, np.ones(n), units


def _never_above(d: Distribution, cap: int) -> bool:
    """True when every rounded draw of ``d`` is at most the whole number ``cap`` (then
    cutting the draws at ``cap`` changes none of them and is skipped)."""
    return d.kind in ("fixed", "uniform") and float(cap).is_integer() and d.upper <= cap


def _skip(d: Distribution, rng: np.random.Generator, n: int) -> None:
    """Advance ``rng`` past ``n`` draws of ``d`` whose values are not needed.

    A continuous uniform draws one 64-bit output of the bit generator per value, so
    PCG64 (``default_rng``) can step over them without making them — when no 32-bit
    half is buffered, which the jump would drop. A lognormal or exponential draw is a
    standard normal or exponential one transformed: those are drawn, the transform
    skipped (numpy takes the same bits; tests/test_workload_skip.py). Otherwise the
    values are drawn.
    """
    bg = rng.bit_generator
    if (d.kind == "uniform" and not d._int_uniform and type(bg) is np.random.PCG64
            and not bg.state["has_uint32"]):
        bg.advance(n)
    elif d.kind == "lognormal":
        rng.standard_normal(n)         # its draws, without the exp: the same bits taken
    elif d.kind == "exponential":
        rng.standard_exponential(n)    # (the scale is a product after the draw)
    else:
        d.sample(rng, n)


def _draw(d: Distribution, rng: np.random.Generator, n: int) -> NDArray[np.float64] | float:
    """``d.sample(rng, n)``, or its value when ``d`` is fixed (a divisor: dividing by the
    value is dividing by an array of it, without the array)."""
    return float(d.params[0]) if d.kind == "fixed" else d.sample(rng, n)


def _sampled_units(cost: CallCost | None, inp: NDArray[np.float64],
                   out: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Units ``cost`` charges each sampled call (input and output token counts)."""
    if cost is None:
        return np.zeros(n)
    if cost.kind == "requests":
        return np.ones(n)
    total = np.zeros(n)
    if cost.input is not None:
        total = total + inp * cost.uncached
    if cost.output_fixed is not None:
        total = total + cost.output_fixed
    elif cost.output is not None:
        total = total + out
    return total


def _sample_routed_call(call: CallSpec, profile: Profile, constraints: tuple[Constraint, ...],
                        rng: np.random.Generator, n: int,
                        targets: tuple[tuple[str, float], ...], raw: bool = True) -> tuple[
                            NDArray[np.float64], NDArray[np.float64],
                            dict[str, NDArray[np.float64]]]:
    """:func:`_sample_call` for a call several targets serve: each copy draws its
    target (by share), then its latency and charges are that target's."""
    which = _target_index([s for _, s in targets], rng, n)
    drawn = np.rint(call.output_tokens.sample(rng, n))
    inp = np.rint(call.input_tokens.sample(rng, n))
    cached = np.rint(inp * call.cached_input_fraction)
    lat = np.zeros(n)
    out = drawn.copy()
    for j, (t, _) in enumerate(targets):
        on = which == j
        model, mt = profile.model_of(t), profile.max_tokens_for(call, t)
        cut = np.minimum(drawn, mt) if mt is not None else drawn
        lat = np.where(on, model.ttft.sample(rng, n)
                       + cut / model.tokens_per_second.sample(rng, n), lat)
        out = np.where(on, cut, out)
    units: dict[str, NDArray[np.float64]] = ({"input_tokens": inp, "output_tokens": out,
                                              "cached_input_tokens": cached} if raw else {})
    for c in constraints:
        cost = c.costs.get(id(call))
        if isinstance(cost, MixedCost):
            total = np.zeros(n)
            for j, (_, part) in enumerate(cost.parts):
                total = np.where(which == j, _sampled_units(part, inp, out, n), total)
            units[c.name] = total
        else:
            units[c.name] = _sampled_units(cost, inp, out, n)
    return lat, np.ones(n), units


@functools.lru_cache(maxsize=256)
def _mean_inverse(tps: Distribution) -> float:
    """E[1/S] of a generation speed (seconds per token); once per distinct speed."""
    if tps.is_fixed:
        return 1.0 / tps.mean
    # E[1/S] has no closed form for every family here: a fixed-seed sample.
    rng = np.random.default_rng(TURN_SAMPLE_SEED)
    return float((1.0 / tps.sample(rng, TURN_SAMPLE_SIZE)).mean())


def _call_latency_moments(call: CallSpec, profile: Profile) -> tuple[float, float, bool]:
    """(mean, minimum, deterministic) of one call's latency: ttft + min(out, max_tokens)/tps."""
    targets = _latency_targets(profile, call)
    mean = low = 0.0
    fixed = len(targets) == 1
    for i, (share, model, mt) in enumerate(targets):
        cap = float(mt) if mt is not None else math.inf
        tps = model.tokens_per_second
        m = model.ttft.mean + call.output_tokens.mean_clipped(cap) * _mean_inverse(tps)
        lo = model.ttft.lower + min(call.output_tokens.lower, cap) / tps.upper
        fixed = fixed and model.ttft.is_fixed and tps.is_fixed and (
            call.output_tokens.is_fixed or call.output_tokens.lower >= cap)
        # A routed call: the mixture over the models serving it (one: exactly as ever).
        mean = m if len(targets) == 1 else mean + share * m
        low = lo if i == 0 else min(low, lo)
    return mean, low, fixed


# Points of the empirical turn-latency law a session's steady-state start draws from.
TURN_LAW_POINTS = 128


def steady_phase(spec: SessionSpec, profile: Profile
                 ) -> tuple[float, float, Distribution]:
    """``(p_turn, mean_turn_s, turn_law)``: how a session of kind ``spec`` starts in
    steady state.

    THE start rule (the simulator's compiled loop and the load generator both follow it):
    a think-time session alternates a turn (mean ``mean_turn_s``, seconds) and a pause, so
    an observer arriving at a random instant finds it mid-turn with probability ``p_turn
    = E[R]/(E[R] + E[Z])``. Mid-turn, its next turn starts after what is left of the turn
    — an equilibrium residual of ``turn_law``, the turn latency's law (``U·R*``, ``R*``
    length-biased: a long turn is more likely to be the one in progress) — plus a whole
    pause; mid-pause, after an equilibrium residual of the pause. Turn starts are then
    spread over the whole cycle at the steady-state rate. (Starting every session after
    a residual of the pause alone put every first turn of a short cycle into the first
    pause, a burst that could tip a retrying sliding window into a storm it never left.)
    ``turn_law`` is the fixed-seed turn sample's (:attr:`Workload.turn_latency`)
    ``TURN_LAW_POINTS`` quantiles, equally likely. A cadence session starts after a
    residual of its cadence (``p_turn = 0``): exact while turns end before the next is
    due.
    """
    if spec.mode != "think_time":
        return 0.0, 0.0, Distribution.fixed(0.0, "duration")
    total = sum(t.weight for t in spec.turns.values())
    mean = math.fsum(t.weight / total * latency_moments(t.steps, profile)[0]
                     for t in spec.turns.values()) if total > 0 else 0.0
    cycle = mean + spec.pause.mean
    own = next((one for one in population_profiles(profile).values()
                if one.session is spec), None)
    if own is None:  # a spec that is none of the profile's populations
        own = profile.model_copy(update={"session": spec, "populations": {}})
    lat = Workload.from_profile(own).turn_latency
    probs = (np.arange(TURN_LAW_POINTS) + 0.5) / TURN_LAW_POINTS
    values = np.quantile(lat, probs) if lat.size else np.zeros(1)
    law = Distribution("choice", (), "duration", tuple(float(v) for v in values),
                       tuple([1.0 / values.size] * values.size))
    return (mean / cycle if cycle > 0 else 0.0), mean, law


def latency_moments(steps: tuple[Step, ...] | list[Step], profile: Profile) -> tuple[
        float, float, bool]:
    """(mean, minimum, deterministic) latency of a step sequence, in seconds.

    Exact for sequences, optional steps and loops (E[K]·E[body] by independence); the
    mean of a fan-out's maximum is exact when its copies' latency is deterministic and
    otherwise estimated from a fixed-seed sample of that block alone.
    """
    mean = low = 0.0
    fixed = True
    for step in steps:
        if isinstance(step, CallStep):
            m, lo, fx = _call_latency_moments(step.call, profile)
        elif isinstance(step, OptionalStep):
            bm, blo, bfx = latency_moments(step.optional.body, profile)
            p = step.optional.probability
            m, lo, fx = p * bm, (blo if p >= 1 else 0.0), bfx and p in (0.0, 1.0)
        elif isinstance(step, RepeatStep):
            bm, blo, bfx = latency_moments(step.repeat.body, profile)
            k = step.repeat.count
            m, lo, fx = k.mean * bm, k.lower * blo, bfx and k.is_fixed
        else:
            assert isinstance(step, ParallelStep)
            bm, blo, bfx = latency_moments(step.parallel.body, profile)
            k = step.parallel.count
            lo = blo if k.lower >= 1 else 0.0
            if k.is_fixed and (bfx or k.mean == 1):
                m, fx = (bm if k.mean >= 1 else 0.0), bfx
            else:
                m, fx = _fanout_mean(step, profile), False
        mean += m
        low += lo
        fixed = fixed and fx
    return mean, low, fixed


def _fanout_mean(step: ParallelStep, profile: Profile) -> float:
    """Mean latency (s) of a random fan-out's slowest copy, from a fixed-seed sample of
    the step alone; remembered by value in :data:`_FANOUT_MEANS`."""
    # The sample reads the step and, of each call in it, the targets serving it with
    # their latency models and max_tokens: nothing else of the profile. A population
    # mix (populations.mixed_profile) is a new profile over the same turns at each N
    # its ceiling iterates, so a key by profile identity redrew the same sample per mix.
    key = (step, tuple(tuple((t, s, profile.model_of(t), profile.max_tokens_for(call, t))
                             for t, s in call_targets(profile, call))
                       for call, _ in iter_calls((step,), ())))
    try:
        hit, kept = _FANOUT_MEANS.get(key), True
    except TypeError:  # a block whose ``steps`` is a list (unhashable): not remembered
        hit, kept = None, False
    if hit is None:
        hit = _fanout_mean_exact(step, profile)
    if hit is None:
        rng = np.random.default_rng(TURN_SAMPLE_SEED)
        n = turn_sample_size(step.parallel.count.mean * max(max_calls(step.parallel.body), 1),
                             TURN_SAMPLE_SIZE)
        lat, _, _ = _sample_steps((step,), profile, (), rng, n, raw=False)
        hit = float(lat.mean())
    if kept:
        remember(_FANOUT_MEANS, key, hit)
    return hit


# Lattice points over a fan-out's latency range (:func:`_fanout_mean_exact`): the
# lattice's spread overstates the mean of the slowest copy by at most a step.
_FANOUT_POINTS = 8192
# The law is the answer only where a step is at most this fraction of a copy's mean
# latency (its error at most a step); unbounded laws cut at their 1 − _FANOUT_TAIL
# quantile, the rest on the last point.
_FANOUT_FINE = 2000.0
_FANOUT_TAIL = 1e-9


def _fanout_mean_exact(step: ParallelStep, profile: Profile) -> float | None:
    """Mean latency (s) of a random fan-out's slowest copy when each copy is one call
    served by one target at a fixed tokens_per_second: ``∫ (1 − E[F(t)^K]) dt``, ``F``
    the law of ``ttft + min(rint(output), max_tokens)/tps`` on a lattice of
    :data:`_FANOUT_POINTS` steps (the ttft's lattice law convolved with the rounded
    output's). None otherwise (the sample's, :func:`_fanout_mean`).

    The sample it replaces cost 17 % of the analytic answer on the hunt's records over
    0.15 s (4.4 of 26 s) and was off by up to 0.4 % (hunt: 37 copies of a 40 tokens-a-
    second call, 40.72 s sampled, 40.889 s here, 40.889 ± 0.011 s from 1.6 M draws)."""
    body = step.parallel.body
    if len(body) != 1 or not isinstance(body[0], CallStep):
        return None
    call = body[0].call
    targets = call_targets(profile, call)
    live = [j for j, (_, share) in enumerate(targets) if share > 0]
    if len(live) > 1:
        return None
    target = targets[live[0] if live else 0][0]
    model = profile.model_of(target)
    mt = profile.max_tokens_for(call, target)
    if not model.tokens_per_second.is_fixed or model.tokens_per_second.mean <= 0:
        return None
    tps = model.tokens_per_second.mean
    out = call.output_tokens.rounded_points(math.inf if mt is None else float(mt),
                                            tail=_FANOUT_TAIL)
    if out is None:
        return None
    o_vals, o_w = out
    ttft = model.ttft
    count = step.parallel.count.lattice_pmf(1.0)
    some = 1.0 - float(count[0])                           # P(K ≥ 1)
    if ttft.is_fixed and np.count_nonzero(o_w) == 1:       # every copy as long
        return (ttft.mean + float(o_vals[np.flatnonzero(o_w)[0]]) / tps) * some
    t_hi = ttft.upper if math.isfinite(ttft.upper) else ttft.ppf(1.0 - _FANOUT_TAIL)
    span = t_hi + float(o_vals.max()) / tps
    if not math.isfinite(span) or span <= 0:
        return None
    h = span / _FANOUT_POINTS
    # A heavy tail stretches the lattice: each copy's latency spread over steps much
    # longer than itself makes the slowest copy nearer their sum (a lognormal ttft of
    # median 1 s and p95 10 s, five copies: 3.8 % high at a 2.4 s step). The sample's.
    if h > (ttft.mean + float(np.dot(o_vals, o_w)) / tps) / _FANOUT_FINE:
        return None
    pmf = _conv(ttft.lattice_pmf(h, top=t_hi), spread_points(o_vals / tps, o_w, h))
    cdf = np.cumsum(pmf / pmf.sum())
    # E[F^K] by Horner's rule over the count's law.
    g = np.zeros(cdf.size)
    for pk in count[::-1]:
        g *= cdf
        g += pk
    return float(h * np.sum(1.0 - g))


_FANOUT_MEANS: dict[tuple[Any, ...], float] = {}


def sample_turns(workload: Workload, n: int, rng: np.random.Generator,
                 units: bool = True) -> TurnSample:
    """Sample ``n`` turns from the mix: latency (s), calls and units per constraint
    (``units=False``: the same draws and latencies, no units)."""
    probs = np.array([t.probability for t in workload.turns])
    which = rng.choice(len(probs), size=n, p=probs)
    lat = np.zeros(n)
    calls = np.zeros(n)
    cons = workload.constraints if units else ()
    out = {k: np.zeros(n) for k in (_unit_keys(cons) if units else [])}
    for i, t in enumerate(workload.turns):
        idx = np.flatnonzero(which == i)
        if not idx.size:
            continue
        tl, tc, tu = _sample_block(t.steps, workload.profile, cons, rng, idx.size, units)
        if idx.size == n:  # one kind of turn: the sample is its arrays, in order
            lat, calls = tl, tc
            out.update(tu)
            continue
        lat[idx], calls[idx] = tl, tc
        for k, v in tu.items():
            out[k][idx] = v
    return TurnSample(lat, calls, out)
