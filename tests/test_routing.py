"""The pure router: each policy's choice, spillover, retries then fallback, cooldown with
LiteLLM's defaults, validation, and properties (weighted shares match the weights;
priority spillover never skips an available higher-priority deployment)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.limits.limiter import Limiter
from capacity.model.quota import Request
from capacity.model.routing import (
    CallPath,
    Cooldown,
    Deployment,
    LeastBusy,
    Next,
    Priority,
    RoundRobin,
    Route,
    Router,
    UsageBased,
    Weighted,
    pick_weighted,
    snapshots_for,
    usage_share,
)
from capacity.profile.loader import profile_from_dict


def _deps(*names: str, weights: tuple[float, ...] | None = None) -> tuple[Deployment, ...]:
    ws = weights or (1.0,) * len(names)
    return tuple(Deployment(n, f"m-{n}", (), w) for n, w in zip(names, ws, strict=True))


def _router(policy: Any, *names: str, cooldown: Cooldown | None = None,
            **kw: Any) -> Router:
    return Router([Route("gpt", _deps(*names, **kw), policy)], cooldown)


# -- weighted --------------------------------------------------------------------------

weights_st = st.lists(st.floats(0.01, 100.0, allow_nan=False), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(weights=weights_st)
def test_weighted_inverse_cdf_gives_each_deployment_its_share_exactly(
        weights: list[float]) -> None:
    """Over evenly spread draws u = (i + ½)/N, each deployment is chosen its weight's
    share of N times, to within one draw per deployment boundary."""
    deps = _deps(*[f"d{i}" for i in range(len(weights))], weights=tuple(weights))
    n = 5000
    counts = dict.fromkeys((d.name for d in deps), 0)
    for i in range(n):
        counts[pick_weighted(deps, (i + 0.5) / n).name] += 1
    total = sum(weights)
    for d, w in zip(deps, weights, strict=True):
        assert abs(counts[d.name] - n * w / total) <= 1.0 + 1e-9


@settings(max_examples=40, deadline=None)
@given(weights=weights_st, seed=st.integers(0, 2**32 - 1))
def test_weighted_long_run_shares_match_the_weights(weights: list[float], seed: int) -> None:
    """With seeded random draws each deployment's count of the router's calls lies within
    the binomial law of weight/Σweights (its 1e-7 tails; per-call weighted routing). Five
    standard errors of the normal approximation failed a weight of 5.9e-5 (a mean of 0.24
    calls: 3 of 4,000 is 5.7 of them, and 0.2 % likely)."""
    from scipy.stats import binom

    router = _router(Weighted(), *[f"d{i}" for i in range(len(weights))],
                     weights=tuple(weights))
    rng = np.random.default_rng(seed)
    n = 4000
    counts: dict[str, int] = {}
    for u in rng.random(n):
        d = router.route("gpt", 0.0, u=float(u))
        assert d is not None
        counts[d.name] = counts.get(d.name, 0) + 1
    total = sum(weights)
    for i, w in enumerate(weights):
        p = w / total
        got = counts.get(f"d{i}", 0)
        assert binom.ppf(1e-7, n, p) <= got <= binom.isf(1e-7, n, p)


def test_weighted_per_turn_is_sticky_until_the_deployment_is_unavailable() -> None:
    """A turn's draw keeps every call of the turn on one deployment; when it cools down
    the turn's next call goes elsewhere; per-call routing follows each call's draw."""
    router = _router(Weighted(per_turn=True), "a", "b", cooldown=Cooldown())
    chosen = {router.route("gpt", 1.0, u=u, turn_u=0.9).name  # type: ignore[union-attr]
              for u in (0.0, 0.3, 0.6, 0.99)}
    assert chosen == {"b"}
    for _ in range(5):
        router.record("b", 2.0, failed=True)
    d = router.route("gpt", 3.0, u=0.1, turn_u=0.9)
    assert d is not None and d.name == "a"
    per_call = _router(Weighted(), "a", "b")
    assert [per_call.route("gpt", 0.0, u=u, turn_u=0.9).name  # type: ignore[union-attr]
            for u in (0.1, 0.7)] == ["a", "b"]


# -- round robin, least busy, usage based ---------------------------------------------------


def test_round_robin_cycles_in_order_and_skips_unavailable() -> None:
    """a, b, c, a, ...; a tried deployment is skipped and the cycle resumes after the
    one chosen."""
    router = _router(RoundRobin(), "a", "b", "c")
    names = [router.route("gpt", 0.0).name for _ in range(4)]  # type: ignore[union-attr]
    assert names == ["a", "b", "c", "a"]
    d = router.route("gpt", 0.0, tried={"b"})
    assert d is not None and d.name == "c"
    d = router.route("gpt", 0.0)
    assert d is not None and d.name == "a"


def test_least_busy_picks_the_fewest_in_flight_ties_in_order() -> None:
    """Fewest in flight wins; a tie goes to the first declared; missing counts are 0."""
    router = _router(LeastBusy(), "a", "b", "c")
    d = router.route("gpt", 0.0, in_flight={"a": 3, "b": 1, "c": 2})
    assert d is not None and d.name == "b"
    d = router.route("gpt", 0.0, in_flight={"a": 2, "b": 2, "c": 2})
    assert d is not None and d.name == "a"
    d = router.route("gpt", 0.0, in_flight={"a": 2, "b": 2})
    assert d is not None and d.name == "c"


FLEET = {
    "models": {"east": {"tokens_per_second": 50}, "west": {"tokens_per_second": 50}},
    "quotas": {
        "east-q": {"models": ["east"], "rpm": 60, "tpm": 60_000,
                   "enforcement": {"type": "fixed_window", "window": "10s"}},
        "west-q": {"models": ["west"], "rpm": 120, "tpm": 60_000,
                   "enforcement": {"type": "fixed_window", "window": "10s"}},
    },
    "session": {"think_time": "10s", "turns": {"t": {"steps": [
        {"call": {"model": "east", "input_tokens": 1000, "output_tokens": 100}},
        {"call": {"model": "west", "input_tokens": 1000, "output_tokens": 100}}]}}},
}


def test_usage_based_reads_the_limiters_snapshots() -> None:
    """Two deployments with their own quotas (10 and 20 requests per 10 s window): after
    4 requests on west (20% of its window) and 1 on east (10%), east is least used; after
    2 more on east (30%), west is."""
    profile = profile_from_dict(FLEET)
    limiter = Limiter.from_profile(profile)
    deps = (Deployment("east", "east", ("east-q",)), Deployment("west", "west", ("west-q",)))
    router = Router([Route("gpt", deps, UsageBased())])

    def send(model: str, k: int) -> None:
        for _ in range(k):
            assert limiter.admit(1.0, Request(model, 100, 0, 10)).admitted

    send("west", 4)
    send("east", 1)
    snaps = snapshots_for(limiter, deps, 1.0)
    assert {s.quota for s in snaps["east"]} == {"east-q"}
    assert usage_share(snaps["east"]) == pytest.approx(0.1)
    assert usage_share(snaps["west"]) == pytest.approx(0.2)
    d = router.route("gpt", 1.0, snapshots=snaps)
    assert d is not None and d.name == "east"
    send("east", 2)
    d = router.route("gpt", 1.0, snapshots=snapshots_for(limiter, deps, 1.0))
    assert d is not None and d.name == "west"
    # A new window: both empty again, a tie goes to the first declared.
    d = router.route("gpt", 11.0, snapshots=snapshots_for(limiter, deps, 11.0))
    assert d is not None and d.name == "east"


# -- priority, spillover, retries, fallback ----------------------------------------------------


def test_priority_spills_at_once_then_retries_then_falls_back() -> None:
    """PTU → pay-as-you-go on a 429 at once; both 429: a retry (back to the PTU first);
    retries exhausted: the fallback model; its retries exhausted: the call fails."""
    router = Router([
        Route("gpt-4o", _deps("ptu", "paygo"), Priority(), fallbacks=("mini",)),
        Route("mini", _deps("mini-1"), Weighted()),
    ])
    path = CallPath(router, "gpt-4o", max_retries=1)
    steps = []
    for _ in range(8):
        d = path.choose(0.0)
        nxt = path.outcome(d, 0.0, admitted=False)
        steps.append((d.name if d else None, nxt))
        if nxt is Next.FAIL:
            break
    assert steps == [("ptu", Next.SPILL), ("paygo", Next.RETRY), ("ptu", Next.SPILL),
                     ("paygo", Next.FALLBACK), ("mini-1", Next.RETRY),
                     ("mini-1", Next.FAIL)]
    ok = CallPath(router, "gpt-4o", max_retries=2)
    d = ok.choose(0.0)
    assert ok.outcome(d, 0.0, admitted=False) is Next.SPILL
    d = ok.choose(0.0)
    assert d is not None and d.name == "paygo" and ok.outcome(d, 0.0, True) is Next.DONE


def test_no_spillover_without_it_a_429_is_a_retry() -> None:
    """A weighted route does not spill (the client's retry re-routes), unless asked."""
    router = Router([Route("gpt", _deps("a", "b"), Weighted())])
    path = CallPath(router, "gpt", max_retries=2)
    assert path.outcome(path.choose(0.0, u=0.1), 0.0, admitted=False) is Next.RETRY
    spilling = Router([Route("gpt", _deps("a", "b"), Weighted(), spillover=True)])
    path = CallPath(spilling, "gpt", max_retries=2)
    d = path.choose(0.0, u=0.1)
    assert d is not None and d.name == "a"
    assert path.outcome(d, 0.0, admitted=False) is Next.SPILL
    d = path.choose(0.0, u=0.1)
    assert d is not None and d.name == "b"


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 6), data=st.data())
def test_priority_spillover_never_skips_an_available_higher_priority_deployment(
        n: int, data: st.DataObject) -> None:
    """Whatever deployments are cooling down and whatever each answers, every choice
    within an attempt is the highest-priority deployment neither tried nor cooling, and
    the attempt visits exactly the available ones, in priority order, until admitted."""
    names = [f"p{i}" for i in range(n)]
    router = _router(Priority(), *names, cooldown=Cooldown())
    cooling = data.draw(st.sets(st.sampled_from(names)))
    for name in cooling:
        for _ in range(5):
            router.record(name, 10.0, failed=True)
    now = data.draw(st.floats(10.0, 20.0))
    path = CallPath(router, "gpt", max_retries=0)
    available = [m for m in names if n == 1 or not router.cooling(m, now)]
    visited = []
    while True:
        d = path.choose(now)
        if d is None:
            break
        higher = names[: names.index(d.name)]
        assert all(m in path.tried or (n > 1 and router.cooling(m, now)) for m in higher)
        visited.append(d.name)
        admitted = data.draw(st.booleans())
        nxt = path.outcome(d, now, admitted)
        if nxt is not Next.SPILL:
            assert nxt in (Next.DONE, Next.FAIL)
            break
    assert visited == available[: len(visited)]
    assert visited or not available


# -- cooldown ------------------------------------------------------------------------------


def test_cooldown_follows_litellms_defaults() -> None:
    """More than 50% of at least 5 calls failed in the current minute (checked as a call
    fails) → skipped for 5 s;
    exactly 50%, or fewer than 5 calls, is not enough; a new minute starts the count
    afresh; the only deployment of a route is never cooled down."""
    router = _router(Priority(), "a", "b", cooldown=Cooldown())
    for failed in (False, False, True, True, True):  # 3 of 5 = 60%, as the 5th fails
        router.record("a", 61.0, failed)
    assert router.cooling("a", 61.0) and router.cooling("a", 65.99)
    assert not router.cooling("a", 66.0)
    d = router.route("gpt", 62.0)
    assert d is not None and d.name == "b"
    for failed in (False, False, False, True, True, True):  # 3 of 6 = 50%: not more
        router.record("b", 130.0, failed)
    assert not router.cooling("b", 130.0)
    for _ in range(4):  # 4 failed calls: below the minimum of 5
        router.record("a", 200.0, True)
    assert not router.cooling("a", 200.0)
    router.record("a", 240.0, True)  # a new minute: 1 call, not 5
    assert not router.cooling("a", 240.0)
    alone = _router(Priority(), "only", cooldown=Cooldown())
    for _ in range(10):
        alone.record("only", 0.0, True)
    d = alone.route("gpt", 1.0)
    assert d is not None and d.name == "only"


def test_every_deployment_cooling_means_none_available() -> None:
    """All deployments cooling: no deployment (the attempt fails at once, a retry)."""
    router = _router(Priority(), "a", "b", cooldown=Cooldown())
    for name in ("a", "b"):
        for _ in range(5):
            router.record(name, 0.0, True)
    assert router.route("gpt", 1.0) is None
    path = CallPath(router, "gpt", max_retries=1)
    assert path.choose(1.0) is None
    assert path.outcome(None, 1.0, admitted=False) is Next.RETRY
    assert path.choose(5.0) is not None


def test_no_cooldown_when_disabled() -> None:
    """Without a Cooldown, failures never take a deployment out."""
    router = _router(Priority(), "a", "b")
    for _ in range(20):
        router.record("a", 0.0, True)
    d = router.route("gpt", 0.0)
    assert d is not None and d.name == "a"


# -- validation and determinism ------------------------------------------------------------------


@pytest.mark.parametrize(("routes", "match"), [
    ([Route("gpt", ())], r"routes\.gpt\.deployments: a route needs"),
    ([Route("gpt", _deps("a", "a"))], "listed twice"),
    ([Route("gpt", _deps("a", "b", weights=(0.0, 0.0)))], "sum to zero"),
    ([Route("gpt", _deps("a", weights=(-1.0,)))], "≥ 0"),
    ([Route("gpt", _deps("a"), fallbacks=("gtp",))], r"fallbacks\[0\]: unknown"),
    ([Route("a", _deps("x"), fallbacks=("b",)), Route("b", _deps("y"), fallbacks=("a",))],
     "cycle of fallbacks: a → b → a"),
    ([Route("gpt", _deps("a")), Route("gpt", _deps("b"))], "declared twice"),
])
def test_bad_routes_are_refused_naming_the_route(routes: list[Route], match: str) -> None:
    """Empty routes, duplicates, zero weights, unknown fallbacks, cycles: ValueError."""
    with pytest.raises(ValueError, match=match):
        Router(routes)


def test_fallback_chain_and_bad_draws() -> None:
    """A chain of fallbacks is followed depth first, each model once; draws outside
    [0, 1) and unknown logical models are refused."""
    router = Router([Route("a", _deps("x"), fallbacks=("b", "c")),
                     Route("b", _deps("y"), fallbacks=("c",)), Route("c", _deps("z"))])
    assert router.chain("a") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="draws"):
        router.route("a", 0.0, u=1.0)
    with pytest.raises(ValueError, match="no route"):
        router.chain("nope")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       policy=st.sampled_from(["weighted", "round_robin", "least_busy", "priority"]))
def test_same_inputs_same_decisions(seed: int, policy: str) -> None:
    """Two routers fed the same draws, times, loads and outcomes decide identically."""
    make = {"weighted": Weighted, "round_robin": RoundRobin, "least_busy": LeastBusy,
            "priority": Priority}[policy]

    def run() -> list[Any]:
        router = Router([Route("gpt", _deps("a", "b", "c"), make(), fallbacks=("m",)),
                         Route("m", _deps("d"))], Cooldown())
        rng = np.random.default_rng(seed)
        out: list[Any] = []
        now = 0.0
        for _ in range(60):
            now += float(rng.exponential(0.5))
            path = CallPath(router, "gpt", max_retries=1)
            load = {k: int(v) for k, v in zip("abc", rng.integers(0, 5, 3), strict=True)}
            while True:
                d = path.choose(now, u=float(rng.random()), turn_u=float(rng.random()),
                                in_flight=load)
                nxt = path.outcome(d, now, bool(rng.random() < 0.5))
                out.append((d.name if d else None, nxt))
                if nxt in (Next.DONE, Next.FAIL):
                    break
        return out

    assert run() == run()


def test_router_imports_nothing_heavy() -> None:
    """The router is plain Python: importing it alone pulls in no numpy, pydantic or
    numba (the simulator twin and the load generator both use it)."""
    code = ("import sys, capacity.model.routing as r; "
            "print(sorted(m for m in ('numpy', 'pydantic', 'numba', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
