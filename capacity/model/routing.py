"""THE routing rule: which deployment serves a call to a logical model — in plain Python.

A *logical model* (what a call names, e.g. ``gpt-4o``) is served by a :class:`Route`: one
or more :class:`Deployment` s (each a real model with its own latency and its own quota
slots) and a route *policy*, a small strategy object with one method (after Ciw's
``routing`` objects): ``choose(view) -> Deployment`` from the deployments available now.

Policies
--------
* :class:`Weighted` — at random by weight, by inverse CDF of a uniform draw passed in;
  ``per_turn=True`` uses the turn's draw, so a turn's calls stay on one deployment while
  it is available (sticky without state).
* :class:`RoundRobin` — the next available deployment in declared order.
* :class:`LeastBusy` — the fewest calls in flight (ties: declared order).
* :class:`UsageBased` — the lowest share of its window used, read from
  :meth:`capacity.limits.Limiter.snapshot` (the most used of the deployment's slots).
  Inspired by LiteLLM's usage-based routing but not the same rule: LiteLLM
  (``lowest_tpm_rpm_v2``) also skips a deployment whose current minute cannot take the
  request, picks the lowest raw TPM among the rest and answers 429 "no deployments
  available" when none is left. Here a deployment that never admits a call (every call
  larger than its window) keeps a share of 0 and is chosen before any deployment that
  has used part of its window, so its route carries almost nothing.
* :class:`Priority` — the first available in declared order (Azure PTU, then pay-as-you-
  go; APIM priority groups). With spillover (the default for this policy) a 429 sends the
  call to the next deployment *at once*, without a retry wait.

Retries, fallback and cooldown (:class:`CallPath`, one call's path through the fleet)
---------------------------------------------------------------------------------------
Within one attempt a 429 spills to the next untried deployment when the route spills;
when none is left the attempt has failed and the client retries by
:class:`capacity.model.retry.RetryPolicy` (the wait is the retry rule's, not this
module's), routing afresh. After ``max_retries`` the call *falls back* to the route's next
logical model (``fallbacks``, in order, each with fresh retries), and fails when the
chain is exhausted. A :class:`Cooldown` skips a deployment that failed more than
``threshold`` of at least ``min_calls`` calls in the current minute (checked as a call
fails), for ``cooldown_s`` seconds — LiteLLM's defaults
(``DEFAULT_FAILURE_THRESHOLD_PERCENT = 0.5``, at least 5 requests,
``DEFAULT_COOLDOWN_TIME_SECONDS = 5``); like LiteLLM, the only deployment of a route is
never cooled down. (LiteLLM also cools a deployment down on its first 429 when its group
has others; that is spillover's job here, see :class:`Priority`.) A call for which every
deployment is cooling down fails its attempt at once (LiteLLM answers "no deployments
available").

Everything here is deterministic given its inputs: randomness comes in as uniform draws
in [0, 1) (the caller's seeded ``numpy.random.Generator``), time as ``now`` in seconds,
load as in-flight counts and limiter snapshots. State (round-robin position, cooldown
counters) lives in the :class:`Router` object and changes only through its methods.

How a profile declares routes (:mod:`capacity.profile.schema`, built into a
:class:`Router` by :func:`router_from_profile`)::

    deployments:
      ptu:   {model: gpt-4o, quotas: [ptu]}      # a model entry (latency), quotas by name
      paygo: {model: gpt-4o, quotas: [paygo]}
      mini:  {model: gpt-4o-mini, quotas: [mini]}
    routes:
      gpt-4o:                        # the logical model calls name
        policy: priority             # weighted | round_robin | least_busy | usage_based
        deployments: [ptu, paygo]    # (weighted: {ptu: 3, paygo: 1}; per_turn: true)
        spillover: true              # default for priority
        fallbacks: [gpt-4o-mini]     # after the retries on gpt-4o are exhausted
      gpt-4o-mini: {deployments: [mini]}
    cooldown: {threshold: 0.5, min_calls: 5, window: 60s, seconds: 5s}   # absent: none

validated like every key (an unknown deployment, a fallback cycle, weights summing to
zero → one line with file:line:key, exit 2); :class:`Router` checks the same rules
(raising ``ValueError`` naming the route) for callers that build routes in code.

How the simulator twin is proven equal: as ``tests/test_twins.py`` does for the limiter,
the compiled engine records every routing decision of a replication (time,
logical model, draws, in-flight counts, the chosen deployment, the 429/admit outcome and
the :class:`Next` step taken); the test replays that trace through this module's
:class:`Router` and :class:`CallPath` — feeding the recorded draws, in-flight counts and
the limiter's own snapshots — and requires the same deployment and the same next step at
every row, on the shipped fleet profiles and on hypothesis-generated ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from capacity.limits.limiter import Limiter, SlotSnapshot
    from capacity.profile.schema import Profile


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment a route can send calls to.

    Attributes
    ----------
    name : unique within the fleet, e.g. ``ptu`` or ``paygo-eastus``.
    model : the profile model it runs (its latency, and the quotas covering it).
    quotas : names of the quotas whose slots it draws on (empty: every quota covering
        ``model``); :func:`snapshots_for` reads their snapshots.
    weight : relative share under :class:`Weighted` (> 0).
    """

    name: str
    model: str
    quotas: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class RouteView:
    """What a policy sees when it chooses.

    Attributes
    ----------
    deployments : all of the route's deployments, in declared order.
    candidates : those available now (not cooling down, not yet tried by this attempt),
        in declared order; never empty when a policy is asked.
    now : seconds.
    u : a uniform draw in [0, 1) for this call.
    turn_u : a uniform draw in [0, 1) fixed for the whole turn (sticky choices).
    in_flight : calls in flight per deployment name (missing: 0).
    snapshots : each deployment's slot snapshots, by deployment name (missing: unused).
    """

    deployments: tuple[Deployment, ...]
    candidates: tuple[Deployment, ...]
    now: float = 0.0
    u: float = 0.0
    turn_u: float = 0.0
    in_flight: Mapping[str, int] = field(default_factory=dict)
    snapshots: Mapping[str, Sequence[SlotSnapshot]] = field(default_factory=dict)


class Policy(Protocol):
    """A route policy: one method choosing among ``view.candidates``."""

    name: str
    spills: bool

    def choose(self, view: RouteView) -> Deployment:
        """The deployment for this call (one of ``view.candidates``)."""
        ...


def pick_weighted(candidates: Sequence[Deployment], u: float) -> Deployment:
    """Inverse CDF: the first candidate whose cumulative weight share exceeds ``u``."""
    total = math.fsum(d.weight for d in candidates)
    acc = 0.0
    for d in candidates:
        acc += d.weight
        if u * total < acc:
            return d
    return candidates[-1]  # u·total == total only by float rounding


@dataclass(slots=True)
class Weighted:
    """At random by weight; ``per_turn``: the turn's draw, so a turn stays on one
    deployment while that deployment is available."""

    per_turn: bool = False
    name: str = "weighted"
    spills: bool = False

    def choose(self, view: RouteView) -> Deployment:
        """By inverse CDF of the call's (or the turn's) draw over the candidates."""
        return pick_weighted(view.candidates, view.turn_u if self.per_turn else view.u)


@dataclass(slots=True)
class RoundRobin:
    """The next available deployment in declared order after the last one chosen."""

    name: str = "round_robin"
    spills: bool = False
    position: int = 0

    def choose(self, view: RouteView) -> Deployment:
        """Scan from the position after the last choice; skip unavailable ones."""
        n = len(view.deployments)
        names = {d.name for d in view.candidates}
        for k in range(n):
            i = (self.position + k) % n
            if view.deployments[i].name in names:
                self.position = i + 1
                return view.deployments[i]
        raise ValueError("no candidate deployment")  # the router never asks with none


@dataclass(slots=True)
class LeastBusy:
    """The fewest calls in flight (ties: declared order)."""

    name: str = "least_busy"
    spills: bool = False

    def choose(self, view: RouteView) -> Deployment:
        """Minimum in-flight count."""
        return min(view.candidates, key=lambda d: view.in_flight.get(d.name, 0))


def usage_share(snapshots: Iterable[SlotSnapshot]) -> float:
    """The share of its window (or bucket) a deployment has used: the largest over its
    slots of ``1 − remaining/allowance`` (0 with no snapshot)."""
    shares = [1.0 - min(s.remaining, s.allowance) / s.allowance
              for s in snapshots if s.allowance > 0]
    return max(shares, default=0.0)


@dataclass(slots=True)
class UsageBased:
    """The lowest share of its window used (ties: declared order; no fit check — see the
    module docstring for how LiteLLM's rule differs)."""

    name: str = "usage_based"
    spills: bool = False

    def choose(self, view: RouteView) -> Deployment:
        """Minimum :func:`usage_share` of the deployment's snapshots."""
        return min(view.candidates,
                   key=lambda d: usage_share(view.snapshots.get(d.name, ())))


@dataclass(slots=True)
class Priority:
    """The first available deployment in declared order; spills to the next on a 429."""

    name: str = "priority"
    spills: bool = True

    def choose(self, view: RouteView) -> Deployment:
        """The highest-priority candidate."""
        return view.candidates[0]


@dataclass(slots=True)
class Route:
    """A logical model: its deployments, policy, and the logical models to fall back to."""

    model: str
    deployments: tuple[Deployment, ...]
    policy: Policy = field(default_factory=Weighted)
    fallbacks: tuple[str, ...] = ()
    spillover: bool | None = None

    @property
    def spills(self) -> bool:
        """A 429 moves the call to the next untried deployment at once."""
        return self.policy.spills if self.spillover is None else self.spillover


@dataclass(frozen=True, slots=True)
class Cooldown:
    """Skip a deployment that failed too much lately (LiteLLM's rule and defaults).

    Attributes
    ----------
    threshold : cool down when failed/calls in the current window exceeds this (0.5).
    min_calls : ...and at least this many calls were made in it (5).
    window_s : the counting window, seconds (60: the current minute, on the clock).
    cooldown_s : how long the deployment is skipped, seconds (5).
    """

    threshold: float = 0.5
    min_calls: int = 5
    window_s: float = 60.0
    cooldown_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.threshold < 1:
            raise ValueError(f"cooldown threshold must be in [0, 1), got {self.threshold}")
        if self.min_calls < 1 or not self.window_s > 0 or not self.cooldown_s >= 0:
            raise ValueError("cooldown needs min_calls ≥ 1, window > 0 and seconds ≥ 0")


@dataclass(slots=True)
class _Health:
    window: int = -1
    calls: int = 0
    failed: int = 0
    until: float = -math.inf


class Router:
    """Routes by logical model; holds the state (round-robin positions, cooldowns).

    Raises ``ValueError`` naming the route for an empty route, a duplicate deployment
    name, weights that sum to zero (or a negative weight), a fallback naming an unknown
    logical model, or a cycle of fallbacks.
    """

    def __init__(self, routes: Iterable[Route], cooldown: Cooldown | None = None) -> None:
        self.routes: dict[str, Route] = {}
        for r in routes:
            if r.model in self.routes:
                raise ValueError(f"routes.{r.model}: declared twice")
            self.routes[r.model] = r
        self.cooldown = cooldown
        self._health: dict[str, _Health] = {}
        self._check()

    def _check(self) -> None:
        for r in self.routes.values():
            where = f"routes.{r.model}"
            if not r.deployments:
                raise ValueError(f"{where}.deployments: a route needs at least one")
            names = [d.name for d in r.deployments]
            if len(set(names)) != len(names):
                raise ValueError(f"{where}.deployments: a deployment is listed twice")
            if any(not (d.weight >= 0 and math.isfinite(d.weight)) for d in r.deployments):
                raise ValueError(f"{where}.deployments: weights must be finite and ≥ 0")
            if isinstance(r.policy, Weighted) and not math.fsum(
                    d.weight for d in r.deployments) > 0:
                raise ValueError(f"{where}.deployments: weights sum to zero")
            for i, fb in enumerate(r.fallbacks):
                if fb not in self.routes:
                    raise ValueError(f"{where}.fallbacks[{i}]: unknown logical model {fb!r}")
        for start in self.routes:
            self._chain(start)  # raises on a cycle

    def _chain(self, model: str) -> list[str]:
        """``model`` then its fallbacks, depth first, each model once; a cycle (a model
        that falls back, directly or not, to itself) is an error."""
        out: list[str] = []

        def walk(m: str, path: tuple[str, ...]) -> None:
            if m in path:
                cycle = " → ".join((*path[path.index(m):], m))
                raise ValueError(f"routes.{path[0]}.fallbacks: a cycle of fallbacks: {cycle}")
            if m in out:
                # Walked already, without a cycle: walking it again adds nothing (and
                # every path of a deep fallback graph is 2^n walks).
                return
            out.append(m)
            for fb in self.routes[m].fallbacks:
                walk(fb, (*path, m))

        walk(model, ())
        return out

    def chain(self, model: str) -> list[str]:
        """The logical models a call to ``model`` may use, in fallback order."""
        if model not in self.routes:
            raise ValueError(f"no route for logical model {model!r}")
        return self._chain(model)

    # -- cooldown -------------------------------------------------------------------

    def cooling(self, deployment: str, now: float) -> bool:
        """True while ``deployment`` is cooling down at ``now`` (seconds)."""
        h = self._health.get(deployment)
        return h is not None and now < h.until

    def record(self, deployment: str, now: float, failed: bool) -> None:
        """Count one call's outcome on ``deployment`` (a 429 or error is ``failed``)."""
        cd = self.cooldown
        if cd is None:
            return
        h = self._health.setdefault(deployment, _Health())
        w = math.floor(now / cd.window_s)
        # A later window starts afresh. An outcome learnt late (a client knows an
        # answer's admission only when its headers arrive, after the 429s of calls sent
        # since) counts in the current window instead of wiping it; the simulator and
        # the gateway record in time order, where the two rules are the same.
        if w > h.window:
            h.window, h.calls, h.failed = w, 0, 0
        h.calls += 1
        h.failed += int(failed)
        # Checked when a call fails (LiteLLM evaluates its rule in the failure handler).
        if failed and h.calls >= cd.min_calls and h.failed > cd.threshold * h.calls:
            h.until = max(h.until, now + cd.cooldown_s)

    # -- choosing -------------------------------------------------------------------

    def candidates(self, model: str, now: float,
                   tried: Iterable[str] = ()) -> tuple[Deployment, ...]:
        """The deployments of ``model``'s route available now: not tried by this
        attempt and not cooling down (the only deployment of a route never cools)."""
        r = self.routes[model]
        skip = set(tried)
        alone = len(r.deployments) == 1
        return tuple(d for d in r.deployments if d.name not in skip and d.weight > 0
                     and (alone or not self.cooling(d.name, now)))

    def route(self, model: str, now: float, *, u: float = 0.0, turn_u: float = 0.0,
              in_flight: Mapping[str, int] | None = None,
              snapshots: Mapping[str, Sequence[SlotSnapshot]] | None = None,
              tried: Iterable[str] = ()) -> Deployment | None:
        """The deployment for a call to logical ``model`` at ``now`` (seconds), or None
        when none is available (all tried by this attempt, or cooling down).

        ``u`` and ``turn_u`` are uniform draws in [0, 1) for the call and for its turn.
        """
        if not (0.0 <= u < 1.0 and 0.0 <= turn_u < 1.0):
            raise ValueError(f"draws must be in [0, 1), got u={u}, turn_u={turn_u}")
        r = self.routes[model]
        cands = self.candidates(model, now, tried)
        if not cands:
            return None
        view = RouteView(r.deployments, cands, now, u, turn_u, in_flight or {},
                         snapshots or {})
        return r.policy.choose(view)


class Next(Enum):
    """What a call does after an outcome (see :class:`CallPath`)."""

    DONE = "done"            # admitted
    SPILL = "spill"          # 429: the next deployment of the same route, at once
    RETRY = "retry"          # the attempt failed: wait (RetryPolicy), route afresh
    FALLBACK = "fallback"    # retries exhausted: the next logical model, at once
    FAIL = "fail"            # retries and fallbacks exhausted: the call fails


@dataclass(slots=True)
class CallPath:
    """One call's path: spillover within an attempt, retries, then fallbacks.

    Use: ``d = path.choose(now, ...)``; send to ``d`` (``None``: no deployment available,
    an immediate failure of this attempt); then ``path.outcome(d, now, admitted)`` says
    what follows. ``attempt`` counts retries on the current logical model (0: first try).
    """

    router: Router
    model: str
    max_retries: int
    current: str = ""
    attempt: int = 0
    tried: set[str] = field(default_factory=set)
    visited: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.chain = self.router.chain(self.model)
        self.current = self.model
        self.visited = [self.model]

    def choose(self, now: float, *, u: float = 0.0, turn_u: float = 0.0,
               in_flight: Mapping[str, int] | None = None,
               snapshots: Mapping[str, Sequence[SlotSnapshot]] | None = None
               ) -> Deployment | None:
        """The deployment to try now (None: none available for this attempt)."""
        return self.router.route(self.current, now, u=u, turn_u=turn_u,
                                 in_flight=in_flight, snapshots=snapshots, tried=self.tried)

    def outcome(self, deployment: Deployment | None, now: float, admitted: bool) -> Next:
        """Record the outcome on ``deployment`` (for cooldown) and say what follows."""
        if deployment is not None:
            self.router.record(deployment.name, now, failed=not admitted)
            if admitted:
                return Next.DONE
            self.tried.add(deployment.name)
            route = self.router.routes[self.current]
            if route.spills and self.router.candidates(self.current, now, self.tried):
                return Next.SPILL
        self.tried.clear()
        if self.attempt < self.max_retries:
            self.attempt += 1
            return Next.RETRY
        rest = [m for m in self.chain if m not in self.visited]
        if rest:
            self.current = rest[0]
            self.visited.append(rest[0])
            self.attempt = 0
            return Next.FALLBACK
        return Next.FAIL


def snapshots_for(limiter: Limiter, deployments: Iterable[Deployment],
                  now: float) -> dict[str, tuple[SlotSnapshot, ...]]:
    """Each deployment's slot snapshots at ``now`` from ``limiter`` (its ``quotas``, or
    every quota covering its model when it names none) — :class:`UsageBased`'s input."""
    out: dict[str, tuple[SlotSnapshot, ...]] = {}
    every = limiter.snapshot(now) if any(d.quotas for d in deployments) else ()
    for d in deployments:
        if d.quotas:
            out[d.name] = tuple(s for s in every if s.quota in d.quotas)
        else:
            out[d.name] = limiter.snapshot(now, model=d.model)
    return out


def router_from_profile(profile: Profile) -> Router:
    """The profile's fleet as a :class:`Router`: a route for every logical model a call
    or a fallback names (a name without a declared route is a route of one deployment:
    the deployment or model of that name). Deployment names are the names requests
    carry; ``Deployment.quotas`` are the quotas each is charged on
    (:meth:`~capacity.profile.schema.Profile.quotas_for`)."""
    from capacity.profile.schema import iter_calls

    logical: list[str] = []
    stack = [call.model for _, _, turn in profile.all_turns()
             for call, _ in iter_calls(turn.steps, ())]
    while stack:  # the calls' logical models, then their fallbacks (also logical)
        name = stack.pop(0)
        if name not in logical:
            logical.append(name)
            r = profile.routes.get(name)
            stack.extend(r.fallbacks if r is not None else ())
    routes = []
    for name in logical:
        spec = profile.routes.get(name)
        deps = tuple(
            Deployment(name=t, model=(profile.deployments[t].model
                                      if t in profile.deployments else t),
                       quotas=tuple(profile.quotas_for(t)), weight=w)
            for t, w in profile.route_targets(name))
        if spec is None:
            routes.append(Route(name, deps))
            continue
        policy: Policy = (Weighted(per_turn=spec.per_turn) if spec.policy == "weighted"
                          else POLICIES[spec.policy]())
        routes.append(Route(name, deps, policy, tuple(spec.fallbacks), spec.spillover))
    cd = profile.cooldown
    cooldown = None if cd is None else Cooldown(cd.threshold, cd.min_calls, cd.window,
                                                cd.seconds)
    return Router(routes, cooldown)


POLICIES: dict[str, type[Weighted | RoundRobin | LeastBusy | UsageBased | Priority]] = {
    "weighted": Weighted, "round_robin": RoundRobin, "least_busy": LeastBusy,
    "usage_based": UsageBased, "priority": Priority,
}
"""Policy classes by the name a profile will use."""

__all__ = [
    "POLICIES",
    "CallPath",
    "Cooldown",
    "Deployment",
    "LeastBusy",
    "Next",
    "Policy",
    "Priority",
    "RoundRobin",
    "Route",
    "RouteView",
    "Router",
    "UsageBased",
    "Weighted",
    "pick_weighted",
    "router_from_profile",
    "snapshots_for",
    "usage_share",
]
