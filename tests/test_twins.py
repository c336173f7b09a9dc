"""The compiled engine takes exactly the decisions of the plain-Python rules: every attempt
of a simulated replication, replayed through capacity.limits (admission and charging),
capacity.model.retry (waits) and, for fleets, capacity.model.routing (the deployment
chosen, spill / retry / fallback / fail, cooldown), gives the same deployment, charge,
decision, retry-after, next step and wait."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from capacity.errors import ProfileError
from capacity.limits.limiter import Limiter
from capacity.model.quota import Request
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import AttemptTrace, trace_attempts
from capacity.sim.kernels import (
    NX_FAIL,
    NX_FALLBACK,
    NX_RETRY,
    NX_SPILL,
    T_ADMITTED,
    T_ATTEMPT,
    T_DEP,
    T_NEXT,
    T_WAIT,
    WAIT_GAVE_UP,
    WAIT_NONE,
)
from capacity.sim.twins import replay

from .conftest import ROOT


def _trace(profile: Profile, sessions: int, seed: int = 3, horizon_s: float = 300.0
           ) -> AttemptTrace:
    return trace_attempts(profile, sessions, horizon_s=horizon_s, warmup_s=60.0, seed=seed,
                          max_attempts=200_000)


@pytest.mark.parametrize("name", ["web-research", "tool-agent", "chat-assistant"])
def test_shipped_profiles_replay_exactly(name: str) -> None:
    """Past saturation (2× the mean-value ceiling's order of sessions) every charge,
    admission, retry-after and wait of the engine equals the pure rules'."""
    profile = load_profile(ROOT / "profiles" / f"{name}.yaml")
    tr = _trace(profile, {"web-research": 70, "tool-agent": 45, "chat-assistant": 400}[name])
    rows = tr.rows
    assert (rows[:, T_ADMITTED] == 0).sum() > 10, "the trace must exercise 429s"
    assert (rows[:, T_ATTEMPT] > 1).sum() > 5, "and retries"
    assert replay(tr, profile) == []


def _quota(kind: str, dims: dict[str, float], window: float, burst: float, reserve: bool,
           cached_exempt: bool, counted: bool, models: list[str]) -> dict[str, Any]:
    q: dict[str, Any] = {"models": models, **dims,
                         "enforcement": {"type": kind, **({"burst": burst} if kind ==
                                                          "token_bucket" else {"window": window})},
                         "charge_max_tokens": reserve, "cached_input_exempt": cached_exempt,
                         "rejected_count": counted}
    return q


@st.composite
def profiles(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """Small profiles across every enforcement type, charging rule and retry setting."""
    kind = draw(st.sampled_from(["fixed_window", "sliding_window", "token_bucket"]))
    window = draw(st.sampled_from([1.0, 2.5, 10.0, 60.0]))
    burst = draw(st.sampled_from([1.0, 5.0, 60.0]))
    dims: dict[str, float] = {"rpm": draw(st.sampled_from([30.0, 60.0, 150.0, 600.0]))}
    tok = draw(st.sampled_from(["none", "tpm", "itpm+otpm", "tpm+tpd"]))
    if tok == "tpm":
        dims["tpm"] = draw(st.sampled_from([20_000.0, 60_000.0, 200_000.0]))
    elif tok == "itpm+otpm":
        dims["itpm"] = 40_000.0
        dims["otpm"] = 8_000.0
    elif tok == "tpm+tpd":
        dims["tpm"] = 100_000.0
        dims["tpd"] = 2_000_000.0
    if draw(st.booleans()):
        dims["rpd"] = draw(st.sampled_from([500.0, 5_000.0]))
    reserve = draw(st.booleans())
    second_model = draw(st.booleans())
    models = ["big", "small"] if second_model else ["big"]
    quotas = {"main": _quota(kind, dims, window, burst, reserve, draw(st.booleans()),
                             draw(st.booleans()), ["big"])}
    if second_model:
        # A second quota shared by both models: a call is admitted only if both admit.
        quotas["org"] = _quota(draw(st.sampled_from(["fixed_window", "token_bucket"])),
                               {"rpm": 300.0}, 10.0, 10.0, False, False, True, models)

    def call(model: str) -> dict[str, Any]:
        return {"model": model, "input_tokens": {"uniform": [200, 3000]},
                "output_tokens": {"uniform": [20, 900]}, "max_tokens": 800,
                "cached_input_fraction": draw(st.sampled_from([0.0, 0.5]))}

    steps: list[dict[str, Any]] = [{"call": call("big")}]
    shape = draw(st.sampled_from(["parallel", "repeat", "optional", "plain"]))
    if shape == "parallel":
        steps.append({"parallel": {"count": draw(st.integers(2, 5)), "call": call(models[-1])}})
    elif shape == "repeat":
        steps.append({"repeat": {"count": {"uniform": [1, 4]}, "call": call("big")}})
    elif shape == "optional":
        steps.append({"optional": {"probability": 0.5, "call": call(models[-1])}})
    retry = {"max_retries": draw(st.integers(0, 3)),
             "honour_retry_after": draw(st.booleans()),
             "max_retry_after": draw(st.sampled_from(["0.5s", "60s"])),
             "on_exhausted": draw(st.sampled_from(["abort_turn", "continue"]))}
    session: dict[str, Any] = ({"think_time": {"exponential": draw(st.sampled_from([5, 30]))}}
                               if draw(st.booleans()) else {"cadence": {"uniform": [10, 40]}})
    session["turns"] = {"t": {"steps": steps}}
    body: dict[str, Any] = {
        "models": {m: {"tokens_per_second": 80, "ttft": 0.3} for m in models},
        "quotas": quotas, "session": session, "retry": retry}
    if draw(st.integers(0, 4)) == 0:
        body["pacing"] = {"rpm": dims["rpm"], "concurrency": 20}
    return body, draw(st.integers(3, 40))


@settings(max_examples=220, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=profiles(), seed=st.integers(0, 2**31))
def test_generated_profiles_replay_exactly(case: tuple[dict[str, Any], int], seed: int) -> None:
    """Fixed, sliding, bucket; TPM/OTPM/ITPM, max_tokens reservation, cached exemption,
    counted rejections, daily limits, two quotas on one call, pacing, every retry
    setting: the engine and the pure rules agree on every attempt."""
    body, sessions = case
    try:
        profile = profile_from_dict(body)
    except ProfileError:  # e.g. a window too short to admit one request: not a profile
        assume(False)
        raise
    tr = trace_attempts(profile, sessions, horizon_s=120.0, warmup_s=20.0, seed=seed,
                        max_attempts=100_000)
    assert replay(tr, profile) == []


def test_replay_catches_a_charge_changed_in_one_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: charge one more token in the pure rule only and the replay
    reports the charges (and, near saturation, decisions) that differ."""
    profile = load_profile(ROOT / "profiles" / "tool-agent.yaml")
    tr = _trace(profile, 30)
    assert replay(tr, profile) == []
    original = Limiter.units

    def skewed(self: Limiter, request: Request) -> np.ndarray:  # type: ignore[type-arg]
        return original(self, Request(request.model, request.input_tokens + 1,
                                      request.output_tokens, request.cached_input_tokens,
                                      request.max_tokens))

    monkeypatch.setattr(Limiter, "units", skewed)
    found = replay(tr, profile)
    assert found and found[0].what == "charge"


def _fan_out_profile(retry: dict[str, Any]) -> Profile:
    """Four parallel calls a turn under 30 RPM in 10 s fixed windows: many 429s."""
    return profile_from_dict({
        "models": {"m": {"tokens_per_second": 50}},
        "quotas": {"q": {"models": ["m"], "rpm": 30,
                         "enforcement": {"type": "fixed_window", "window": "10s"}}},
        "session": {"think_time": 5, "turns": {"t": {"steps": [
            {"parallel": {"count": 4, "call": {"model": "m", "input_tokens": 100,
                                                "output_tokens": 10}}}]}}},
        "retry": retry})


def test_replay_catches_a_changed_retry_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backoff changed in the pure policy only is reported as a different wait."""
    from capacity.model.retry import RetryPolicy

    profile = _fan_out_profile({"honour_retry_after": False})
    tr = _trace(profile, 10)
    waits = tr.rows[:, T_WAIT]
    assert ((waits > 0) | (waits == WAIT_GAVE_UP)).sum() > 10
    assert replay(tr, profile) == []
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, k, u: 0.5 * 2.0 ** (k - 1))
    assert any(m.what.startswith("wait") for m in replay(tr, profile))


def _give_up_profile(beyond: str) -> Profile:
    # retry-afters up to the 10 s window, the client's cap 0.5 s.
    return _fan_out_profile({"max_retries": 3, "max_retry_after": "0.5s",
                             "beyond_max_retry_after": beyond})


def test_give_up_beyond_max_retry_after_replays_exactly() -> None:
    """openai 3.57's rule (a retry-after over its cap is not retried): the engine gives
    up at the first such 429, as the pure policy does; with the default it backs off."""
    profile = _give_up_profile("give_up")
    tr = _trace(profile, 10)
    rows = tr.rows
    early = (rows[:, T_WAIT] == WAIT_GAVE_UP) & (rows[:, T_ATTEMPT] <= 3)
    assert early.sum() > 10, "calls must give up before their retries run out"
    assert replay(tr, profile) == []
    backoff = _trace(_give_up_profile("backoff"), 10).rows
    assert not ((backoff[:, T_WAIT] == WAIT_GAVE_UP) & (backoff[:, T_ATTEMPT] <= 3)).any()
    # The twin notices a rule changed on one side only.
    assert replay(tr, _give_up_profile("backoff")) != []


def test_routed_give_up_replays_exactly() -> None:
    profile = load_profile(ROOT / "profiles" / "ptu-spillover.yaml")
    body = profile.model_dump(mode="json", exclude_none=True)
    body["retry"] = {**body.get("retry", {}), "max_retry_after": "0.5s",
                     "beyond_max_retry_after": "give_up"}
    profile = profile_from_dict(body)
    tr = _trace(profile, 160, horizon_s=240.0)
    rows = tr.rows
    assert ((rows[:, T_NEXT] == NX_RETRY) & (rows[:, T_WAIT] == WAIT_GAVE_UP)).sum() > 5
    assert replay(tr, profile) == []


def test_constants_frozen_into_the_kernels_equal_the_pure_ones() -> None:
    """Constants the compiled kernels bake in are the plain-Python rules' constants."""
    from capacity.limits import meters
    from capacity.model import pacing
    from capacity.sim import kernels

    assert kernels.MIN_WAIT == meters.MIN_WAIT
    assert kernels.WAKE_EPSILON_S == pacing.WAKE_EPSILON_S
    # ... and so are the values compiled into the C engine (kernels refuses a stale build).
    built = kernels.layout()
    assert built["MIN_WAIT"] == meters.MIN_WAIT
    assert built["WAKE_EPSILON_S"] == pacing.WAKE_EPSILON_S
    assert (built["WAIT_NONE"], built["WAIT_GAVE_UP"]) == (WAIT_NONE, WAIT_GAVE_UP)


# ---------------------------------------------------------------------------------------
# Fleets: the router's twin
# ---------------------------------------------------------------------------------------


def test_shipped_fleet_replays_exactly() -> None:
    """profiles/ptu-spillover.yaml past saturation (PTU full, pay-as-you-go full, calls
    falling back to the mini model): every deployment chosen, spill, retry, fallback,
    charge, admission, retry-after and wait of the engine equals the pure rules'."""
    profile = load_profile(ROOT / "profiles" / "ptu-spillover.yaml")
    tr = _trace(profile, 160, horizon_s=240.0)
    rows = tr.rows
    nxt = rows[:, T_NEXT]
    assert tr.deployments == ("ptu", "paygo", "mini")
    assert (nxt == NX_SPILL).sum() > 50, "the trace must spill"
    assert (nxt == NX_RETRY).sum() > 50, "and retry"
    assert (nxt == NX_FALLBACK).sum() > 10, "and fall back"
    assert (rows[:, T_DEP] == 2).sum() > 10, "onto the mini deployment"
    assert replay(tr, profile) == []


def test_shipped_fleet_with_cooldown_replays_exactly() -> None:
    """The same fleet with LiteLLM's cooldown: deployments cool down, calls find none
    available (an immediate failure of the attempt), and the twins still agree."""
    profile = load_profile(ROOT / "profiles" / "ptu-spillover.yaml")
    profile = profile_from_dict({**profile.model_dump(mode="json", exclude_none=True),
                                 "cooldown": {"threshold": 0.3, "min_calls": 3,
                                              "window": "20s", "seconds": "4s"}})
    tr = _trace(profile, 160, horizon_s=240.0)
    assert (tr.rows[:, T_DEP] == -1).sum() > 10, "some attempt must find all cooling"
    assert replay(tr, profile) == []


@st.composite
def fleets(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """Small fleets: every policy, weights (zero included), per_turn, spillover on / off /
    default, a fallback chain, cooldown, deployments with their own quotas and a quota
    shared by several, every enforcement type, pacing and every retry setting."""
    n_dep = draw(st.integers(1, 4))
    policy = draw(st.sampled_from(["weighted", "round_robin", "least_busy", "usage_based",
                                   "priority"]))
    names = [f"d{i}" for i in range(n_dep)]
    models = {"big": {"tokens_per_second": 60, "ttft": {"uniform": [0.2, 0.6]},
                      "max_tokens": 1000},
              "small": {"tokens_per_second": 120, "ttft": 0.2, "max_tokens": 600}}
    shared = n_dep > 1 and draw(st.booleans())
    deployments: dict[str, Any] = {}
    quotas: dict[str, Any] = {}
    for i, name in enumerate(names):
        kind = draw(st.sampled_from(["fixed_window", "sliding_window", "token_bucket"]))
        dims: dict[str, float] = {"rpm": draw(st.sampled_from([12.0, 30.0, 60.0, 150.0]))}
        if draw(st.booleans()):
            dims["tpm"] = draw(st.sampled_from([20_000.0, 60_000.0]))
        quotas[f"q{i}"] = _quota(kind, dims, draw(st.sampled_from([2.5, 10.0, 60.0])),
                                 draw(st.sampled_from([5.0, 60.0])), draw(st.booleans()),
                                 False, draw(st.booleans()), [name])
        dep: dict[str, Any] = {"model": draw(st.sampled_from(["big", "small"]))}
        if shared:  # explicit quotas: its own and the shared one
            dep["quotas"] = [f"q{i}", "org"]
        elif draw(st.booleans()):
            dep["quotas"] = [f"q{i}"]
        deployments[name] = dep  # else: the quotas listing its name
    if shared:
        quotas["org"] = _quota(draw(st.sampled_from(["fixed_window", "token_bucket"])),
                               {"rpm": draw(st.sampled_from([40.0, 200.0]))}, 10.0, 10.0,
                               False, False, True, names)
    route: dict[str, Any] = {"policy": policy}
    if draw(st.booleans()):
        weights = [draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])) for _ in names]
        assume(sum(weights) > 0)
        route["deployments"] = dict(zip(names, weights, strict=True))
    else:
        route["deployments"] = names
    if policy == "weighted":
        route["per_turn"] = draw(st.booleans())
    spill = draw(st.sampled_from([None, True, False]))
    if spill is not None:
        route["spillover"] = spill
    routes: dict[str, Any] = {"llm": route}
    fallback = draw(st.sampled_from(["none", "deployment", "route"]))
    if fallback != "none":
        deployments["fb"] = {"model": "small"}
        quotas["qfb"] = _quota("fixed_window", {"rpm": 60.0}, 10.0, 10.0, False, False,
                               False, ["fb"])
        if fallback == "deployment":  # falls back to a deployment by name
            route["fallbacks"] = ["fb"]
        else:  # to a logical model with its own route (and its own fallback)
            route["fallbacks"] = ["mini"]
            routes["mini"] = {"deployments": ["fb"], "fallbacks": [names[0]]}

    def call(model: str) -> dict[str, Any]:
        return {"model": model, "input_tokens": {"uniform": [200, 3000]},
                "output_tokens": {"uniform": [20, 900]},
                "cached_input_fraction": draw(st.sampled_from([0.0, 0.5]))}

    steps: list[dict[str, Any]] = [{"call": call("llm")},
                                   {"parallel": {"count": draw(st.integers(1, 5)),
                                                 "call": call("llm")}}]
    if draw(st.booleans()):  # a call naming a deployment directly (a route of one)
        steps.append({"call": call(names[-1])})
    retry = {"max_retries": draw(st.integers(0, 3)),
             "honour_retry_after": draw(st.booleans()),
             "max_retry_after": draw(st.sampled_from(["0.5s", "60s"])),
             "on_exhausted": draw(st.sampled_from(["abort_turn", "continue"]))}
    session: dict[str, Any] = ({"think_time": {"exponential": draw(st.sampled_from([5, 30]))}}
                               if draw(st.booleans()) else {"cadence": {"uniform": [10, 40]}})
    session["turns"] = {"t": {"steps": steps}}
    body: dict[str, Any] = {"models": models, "deployments": deployments, "quotas": quotas,
                            "routes": routes, "session": session, "retry": retry}
    if draw(st.booleans()):
        body["cooldown"] = {"threshold": draw(st.sampled_from([0.0, 0.3, 0.5])),
                            "min_calls": draw(st.sampled_from([1, 3, 5])),
                            "window": draw(st.sampled_from(["5s", "60s"])),
                            "seconds": draw(st.sampled_from(["1s", "5s", "20s"]))}
    if draw(st.integers(0, 4)) == 0:
        body["pacing"] = {"rpm": 120, "concurrency": 10}
    return body, draw(st.integers(3, 40))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=fleets(), seed=st.integers(0, 2**31))
def test_generated_fleets_replay_exactly(case: tuple[dict[str, Any], int], seed: int) -> None:
    """Every policy with and without spillover, per-turn stickiness, zero weights,
    fallback chains, cooldown, shared quotas, pacing: the engine's router and the pure
    Router / CallPath agree on every choice and every next step."""
    body, sessions = case
    try:
        profile = profile_from_dict(body)
    except ProfileError:  # e.g. a window too short to admit one request: not a profile
        assume(False)
        raise
    tr = trace_attempts(profile, sessions, horizon_s=120.0, warmup_s=20.0, seed=seed,
                        max_attempts=100_000)
    # What the example exercised (pytest --hypothesis-show-statistics).
    nxt = tr.rows[:, T_NEXT]
    event(f"policy {body['routes']['llm']['policy']}")
    for code, what in ((NX_SPILL, "spills"), (NX_RETRY, "retries"),
                       (NX_FALLBACK, "falls back"), (NX_FAIL, "fails")):
        if (nxt == code).any():
            event(what)
    if (tr.rows[:, T_DEP] < 0).any():
        event("finds no deployment available")
    assert replay(tr, profile) == []


def _least_busy_fleet() -> Profile:
    return profile_from_dict({
        "models": {"m": {"tokens_per_second": 40, "ttft": 0.3}},
        "deployments": {"a": {"model": "m"}, "b": {"model": "m"}, "c": {"model": "m"}},
        "quotas": {n: {"models": [n], "rpm": 30,
                       "enforcement": {"type": "fixed_window", "window": "10s"}}
                   for n in "abc"},
        "routes": {"llm": {"policy": "least_busy", "deployments": ["a", "b", "c"],
                           "spillover": True}},
        "session": {"think_time": 5, "turns": {"t": {"steps": [
            {"parallel": {"count": 4, "call": {"model": "llm", "input_tokens": 100,
                                                "output_tokens": 200}}}]}}}})


def test_replay_catches_a_changed_tie_break(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: least_busy breaking ties by the LAST deployment in the pure
    policy only is reported as a different deployment."""
    from capacity.model import routing

    profile = _least_busy_fleet()
    tr = _trace(profile, 12)
    assert (tr.rows[:, T_NEXT] == NX_SPILL).sum() > 5
    assert replay(tr, profile) == []

    def last_minimum(self: routing.LeastBusy, view: routing.RouteView) -> routing.Deployment:
        return min(reversed(view.candidates), key=lambda d: view.in_flight.get(d.name, 0))

    monkeypatch.setattr(routing.LeastBusy, "choose", last_minimum)
    found = replay(tr, profile)
    assert found and found[0].what == "deployment"


def test_replay_catches_a_changed_spill_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A route that no longer spills in the pure rule only: the next step differs."""
    from capacity.model import routing

    profile = _least_busy_fleet()
    tr = _trace(profile, 12)
    assert replay(tr, profile) == []
    monkeypatch.setattr(routing.Route, "spills", property(lambda self: False))
    found = replay(tr, profile)
    assert found and found[0].what == "next step"


def test_routed_counts_follow_the_client() -> None:
    """A round (first request plus its spills) is one attempt, rejected only when the
    client sees the 429: the trace's rounds and client-visible failures give exactly
    the attempt_429_fraction's numerator and denominator of a one-replication run."""
    profile = load_profile(ROOT / "profiles" / "ptu-spillover.yaml")
    tr = _trace(profile, 160, horizon_s=240.0)
    nxt = tr.rows[:, T_NEXT]
    sends = (tr.rows[:, T_DEP] >= 0).sum()
    spills = (nxt == NX_SPILL).sum()
    failures = np.isin(nxt, [NX_RETRY, NX_FALLBACK, NX_FAIL]).sum()
    assert spills > 0 and failures > 0
    # every round ends in one admission or one client-visible failure
    rounds = (tr.rows[:, T_ADMITTED] == 1).sum() + failures
    assert rounds == len(tr.rows) - spills
    assert sends == len(tr.rows) - (tr.rows[:, T_DEP] < 0).sum()


# ---------------------------------------------------------------------------------------
# Session populations
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["web-research", "ptu-spillover"])
def test_populations_replay_exactly(base: str) -> None:
    """A profile with populations (40 held batch sessions beside N, a quarter of N chat
    users): every population's sessions run their own turns, and every charge, admission,
    retry-after, wait (and, routed, every choice) still equals the pure rules'."""
    profile = load_profile([ROOT / "profiles" / f"{base}.yaml",
                            ROOT / "tests" / "data" / "populations-overlay.yaml"])
    tr = _trace(profile, 12)
    rows = tr.rows
    assert tr.populations == (("session", 9), ("batch", 40), ("chat", 3))
    seen = {tr.session_population(int(s)) for s in rows[:, 1]}
    assert seen == {"session", "batch", "chat"}
    assert (rows[:, T_ADMITTED] == 0).sum() > 10, "the trace must exercise 429s"
    assert replay(tr, profile) == []
