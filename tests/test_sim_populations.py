"""The simulator runs session populations: each session with its own population's pacing
and turn mix, N counting the sessions that vary while the held ones run beside them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.sim.engine import SimulationError, _compile, _run_rep, simulate, trace_attempts
from capacity.sim.kernels import PS_NCOL

from .conftest import ROOT


def _web_research(populations: dict[str, Any]) -> Profile:
    """profiles/web-research.yaml with these populations (``"session"`` in a population
    stands for a copy of the profile's session)."""
    d = load_profile(ROOT / "profiles" / "web-research.yaml").model_dump(
        mode="json", exclude_none=True)
    pops = {k: ({**d["session"], **{x: y for x, y in v.items() if x != "copy"}}
                if v.get("copy") else v) for k, v in populations.items()}
    return profile_from_dict({**d, "populations": pops})


def _search(p: Profile, seed: int = 1) -> tuple[int, int, int]:
    r = find_saturation(p, 30, 50, replications=20, horizon_s=3600, seed=seed)
    return r.n_star, r.n_lo, r.n_hi


def test_copies_of_session_give_the_plain_ceiling() -> None:
    """Half of N in a population identical to ``session`` is the same load: the same
    simulated N* within its confidence interval (seed 1: 42 [41-43] both ways)."""
    plain = load_profile(ROOT / "profiles" / "web-research.yaml")
    copies = _web_research({"copy": {"copy": True, "share": 0.5}})
    assert copies.split(42) == {"session": 21, "copy": 21}
    (a, a_lo, a_hi), (b, b_lo, b_hi) = _search(plain), _search(copies)
    assert b_lo <= a <= b_hi and a_lo <= b <= a_hi, ((a, a_lo, a_hi), (b, b_lo, b_hi))


def test_held_sessions_lower_the_ceiling_by_their_load() -> None:
    """20 held sessions of the same kind take the room of 20 varying ones (seed 1: N* 42
    [41-43] alone, 21 [20-22] beside them)."""
    plain = load_profile(ROOT / "profiles" / "web-research.yaml")
    held = _web_research({"batch": {"copy": True, "sessions": 20}})
    (a, a_lo, a_hi), (b, b_lo, b_hi) = _search(plain), _search(held)
    slack = (a_hi - a_lo) / 2 + (b_hi - b_lo) / 2 + 1
    assert abs((a - b) - 20) <= slack, ((a, a_lo, a_hi), (b, b_lo, b_hi))
    at = simulate(held, b, seed=1, replications=4, horizon_s=900)
    assert at.populations["batch"].sessions == 20
    assert at.populations["session"].sessions == b


def _mixed() -> Profile:
    """Unthrottled: ``session`` (one call, 10 s think time) and ``fanout`` (four calls at
    once, a 30 s cadence); every call lasts exactly 2 s."""
    return profile_from_dict({
        "models": {"m": {"ttft": "1s", "tokens_per_second": 100}},
        "quotas": {"q": {"models": ["m"], "rpm": 100_000}},
        "session": {"think_time": "10s", "turns": {"ask": {"steps": [
            {"call": {"model": "m", "input_tokens": 100, "output_tokens": 100}}]}}},
        "populations": {"fanout": {"share": 0.5, "cadence": "30s", "turns": {"fan": {
            "steps": [{"parallel": {"count": 4, "call": {
                "model": "m", "input_tokens": 300, "output_tokens": 100}}}]}}}},
    })


def test_each_population_runs_its_own_pacing_and_turns() -> None:
    """Per population: the think time runs from the turn's end (cycle 12 s: 300 turns an
    hour each), the cadence from its start (30 s: 120 an hour each); the fan-out's four
    calls per 30 s against one per 12 s make 61.5 % of the calls."""
    r = simulate(_mixed(), 20, seed=2, replications=3, horizon_s=3600)
    s, f = r.populations["session"], r.populations["fanout"]
    assert (s.sessions, f.sessions) == (10, 10)
    assert s.turns_per_hour.mean == pytest.approx(10 * 3600 / 12, rel=0.01)
    assert f.turns_per_hour.mean == pytest.approx(10 * 3600 / 30, rel=0.01)
    assert f.call_share.mean == pytest.approx((4 / 30) / (4 / 30 + 1 / 12), abs=0.01)
    assert s.turn_latency_p95_s.mean == pytest.approx(2.0)
    assert f.turn_latency_p95_s.mean == pytest.approx(2.0)
    assert s.attempt_429_fraction.mean == f.attempt_429_fraction.mean == 0.0
    assert set(r.to_dict()["populations"]) == {"session", "fanout"}


def test_each_population_draws_turns_from_its_own_mix_only() -> None:
    """Every attempt of the trace comes from a call of its session's own population."""
    p = load_profile([ROOT / "profiles" / "web-research.yaml",
                      ROOT / "tests" / "data" / "populations-overlay.yaml"])
    tr = trace_attempts(p, 8, seed=4, horizon_s=300, warmup_s=60)
    assert tr.populations == (("session", 6), ("batch", 40), ("chat", 2))
    pops = [tr.session_population(int(s)) for s in tr.rows[:, 1]]
    assert set(pops) == {"session", "batch", "chat"}
    assert [tr.site_populations[int(k)] for k in tr.rows[:, 3]] == pops


def test_population_counters_add_up_to_the_totals() -> None:
    """The per-population counters split the replication's own (turns, calls, attempts,
    429s, ...), and the latencies they were measured from are the turns'."""
    p = load_profile([ROOT / "profiles" / "web-research.yaml",
                      ROOT / "tests" / "data" / "populations-overlay.yaml"])
    c = _compile(p)
    out = _run_rep(c, 10, np.random.SeedSequence(1), 300.0, 1200.0)
    assert out.pops is not None and out.latency_pop is not None
    np.testing.assert_array_equal(out.pops.sum(axis=0), out.stats[:PS_NCOL])
    assert np.bincount(out.latency_pop, minlength=3).tolist() == out.pops[:, 0].tolist()
    assert out.stats[5] > 0 and out.pops[:, 6].sum() > 0  # attempts, some 429s


def test_a_population_of_no_sessions_changes_nothing() -> None:
    """``session`` keeps the random streams it had without populations: beside a held
    population of 0 sessions, every metric is exactly the plain profile's."""
    plain = load_profile(ROOT / "profiles" / "web-research.yaml")
    idle = _web_research({"idle": {"sessions": 0, "cadence": "1h", "turns": {"x": {
        "steps": [{"parallel": {"count": 9, "call": {
            "model": "gpt-4o", "input_tokens": 10, "output_tokens": 10}}}]}}}})
    a = simulate(plain, 45, seed=3, replications=3, horizon_s=900)
    b = simulate(idle, 45, seed=3, replications=3, horizon_s=900)
    assert a.to_dict()["metrics"] == b.to_dict()["metrics"]
    assert b.populations["idle"].sessions == 0
    assert math.isnan(b.populations["idle"].turn_latency_p95_s.mean)
    assert b.populations["idle"].turns_per_hour.mean == 0.0


def test_edge_counts() -> None:
    """N = 0 beside held sessions is a load (the search's lower end); a share population
    may get no session at small N; with nothing held, N = 0 is refused."""
    p = load_profile([ROOT / "profiles" / "web-research.yaml",
                      ROOT / "tests" / "data" / "populations-overlay.yaml"])
    zero = simulate(p, 0, seed=1, replications=2, horizon_s=600)
    assert {k: v.sessions for k, v in zero.populations.items()} == {
        "session": 0, "batch": 40, "chat": 0}
    assert zero.populations["batch"].call_share.mean == 1.0
    assert zero.metrics["calls_per_turn"].mean == pytest.approx(1.0)
    one = simulate(p, 1, seed=1, replications=2, horizon_s=600)
    assert one.populations["chat"].sessions == 0
    assert one.populations["chat"].turns_per_hour.mean == 0.0
    shares_only = _web_research({"chat": {"copy": True, "share": 0.25}})
    with pytest.raises(SimulationError, match="≥ 1"):
        simulate(shares_only, 0, seed=1)
    none_held = _web_research({"batch": {"copy": True, "sessions": 0}})
    with pytest.raises(SimulationError, match="≥ 1"):
        simulate(none_held, 0, seed=1)
    with pytest.raises(SimulationError):
        simulate(p, -1, seed=1)


def test_held_sessions_that_break_the_targets_alone_leave_no_room() -> None:
    """60 held sessions of web-research (its ceiling is 42): N* = 0, and the simulation
    at N = 0 shows the held load alone misses the 429 target."""
    p = _web_research({"batch": {"copy": True, "sessions": 60}})
    r = find_saturation(p, 5, 10, replications=6, horizon_s=1800, seed=1)
    assert r.n_star == r.n_lo == 0
    assert r.metric_at_n_star is not None and r.metric_at_n_star.sessions == 0
    assert r.metric_at_n_star.metrics["attempt_429_fraction"].mean > 0.01


def test_the_warm_start_counts_every_population() -> None:
    """The limiter starts at the load of every population: half of N as copies of
    ``session`` starts it exactly where N plain sessions do, held sessions where as many
    more plain ones do (token buckets included: the superposed input)."""
    d = load_profile(ROOT / "profiles" / "ptu-spillover.yaml").model_dump(
        mode="json", exclude_none=True)
    plain = _compile(profile_from_dict(d))
    copies = _compile(profile_from_dict({**d, "populations": {
        "copy": {**d["session"], "share": 0.5}}}))
    held = _compile(profile_from_dict({**d, "populations": {
        "copy": {**d["session"], "sessions": 10}}}))
    for n in (10, 20, 40):
        want = plain.warm.start(n)
        for got in (copies.warm.start(n), held.warm.start(n - 10)):
            for x, y in zip(got, want, strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-9)
    # At N = 20 both buckets are below their refill: θ* of the mixture is exercised.
    rho = plain.warm.start(20)[1]
    assert 0 < rho[0] < 1 and 0 < rho[1] < 1


def test_a_held_session_replays_the_same_turns_whatever_n_is() -> None:
    """Common random numbers across the search: without contention, the held population's
    turns (random fan-outs and token counts) are the same at N = 2 and N = 8."""
    call = {"model": "m", "input_tokens": 100, "output_tokens": {"uniform": [10, 2000]}}
    p = profile_from_dict({
        "models": {"m": {"ttft": {"uniform": [0.1, 2.0]}, "tokens_per_second": 100}},
        "quotas": {"q": {"models": ["m"], "rpm": 100_000}},
        "session": {"think_time": {"exponential": 20}, "turns": {"a": {"steps": [
            {"call": call}]}}},
        "populations": {"held": {"sessions": 3, "think_time": {"exponential": 30},
                                 "turns": {"b": {"steps": [{"parallel": {
                                     "count": {"uniform": [1, 4]}, "call": call}}]}}}},
    })
    c = _compile(p)
    child = np.random.SeedSequence(5).spawn(1)[0]
    small, large = (_run_rep(c, n, child, 100.0, 1500.0) for n in (2, 8))
    held = [r.latencies[r.latency_pop == 1] for r in (small, large)]
    assert held[0].size > 50
    np.testing.assert_array_equal(held[0], held[1])
    assert not np.array_equal(small.latencies[small.latency_pop == 0],
                              large.latencies[large.latency_pop == 0])
