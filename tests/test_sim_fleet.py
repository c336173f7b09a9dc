"""The simulator on fleets: what routing does to the ceiling and where the calls go.

Two identical deployments under ``weighted`` carry (at least) twice the sessions of one;
priority spillover puts calls on the second deployment only when the first is full; a
fallback model sees calls only after a call's retries on its first model are spent. The
figures are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.sim.engine import simulate, trace_attempts
from capacity.sim.kernels import (
    NX_FALLBACK,
    NX_RETRY,
    NX_SPILL,
    T_ATTEMPT,
    T_DEP,
    T_NEXT,
    T_NODE,
    T_SESSION,
    T_TURN_U,
)

from .conftest import ROOT


def _web_research() -> dict[str, Any]:
    return load_profile(ROOT / "profiles" / "web-research.yaml").model_dump(
        mode="json", exclude_none=True)


def _fleet(route: dict[str, Any], names: tuple[str, ...] = ("east", "west"),
           **extra: Any) -> Profile:
    """web-research with its one deployment's quota copied onto each of ``names``."""
    body = _web_research()
    quota = body["quotas"]["deployment"]
    body["name"] = "fleet"
    body["deployments"] = {n: {"model": "gpt-4o"} for n in names}
    body["quotas"] = {n: {**quota, "models": [n]} for n in names}
    body["routes"] = {"gpt-4o": route}
    body.update(extra)
    return profile_from_dict(body)


def _calls(rows: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """The trace's rows per call (a call's first choice has attempt number 1)."""
    out: dict[tuple[int, int], list[int]] = {}
    current: dict[int, int] = {}
    for k, row in enumerate(rows):
        node = int(row[T_NODE])
        if row[T_ATTEMPT] == 1:
            current[node] = k
        out.setdefault((node, current[node]), []).append(k)
    return [rows[idx] for idx in out.values()]


def test_two_weighted_deployments_carry_twice_the_sessions() -> None:
    """Simulated N* of two identical deployments (weights 1:1) ≥ 1.9× one's, with the
    confidence intervals apart: splitting the calls at random also splits the fan-out
    bursts, so each deployment's 10 s windows see smaller clumps than one would."""
    one = profile_from_dict(_web_research())
    two = _fleet({"policy": "weighted", "deployments": ["east", "west"]})
    kw: dict[str, Any] = {"horizon_s": 1800.0, "replications": 10, "seed": 7}
    r1 = find_saturation(one, 30, 60, **kw)
    r2 = find_saturation(two, 60, 120, **kw)
    print(f"\nN* one deployment {r1.n_star} [{r1.n_lo}-{r1.n_hi}], two weighted "
          f"{r2.n_star} [{r2.n_lo}-{r2.n_hi}]: x{r2.n_star / r1.n_star:.2f}")
    assert r2.n_star >= 1.9 * r1.n_star
    assert r2.n_lo >= 1.9 * r1.n_hi  # the intervals separate the answers
    assert r2.metric_at_n_star is not None
    use = r2.metric_at_n_star.deployments
    assert set(use) == {"east", "west"}
    for name in use:  # a fair split, within the replications' noise
        assert abs(use[name].share.mean - 0.5) < 0.02, (name, use[name].share)


def test_priority_spills_only_when_the_first_deployment_is_full() -> None:
    """Priority with spillover: the second deployment sees no call at 10 sessions (the
    first carries 42 alone) and a good share at 80; a request reaches it only as the
    spill of a 429 from the first, at once."""
    fleet = _fleet({"policy": "priority", "deployments": ["east", "west"]})
    figures = {}
    for n in (10, 80):
        res = simulate(fleet, n, horizon_s=1800.0, replications=6, seed=3)
        east, west = res.deployments["east"], res.deployments["west"]
        figures[n] = (east.spill_fraction.mean, west.share.mean,
                      res.metrics["attempt_429_fraction"].mean)
        print(f"\nN={n}: east spill fraction {east.spill_fraction.mean:.4f}, west share "
              f"{west.share.mean:.4f}, client 429 fraction "
              f"{res.metrics['attempt_429_fraction'].mean:.4f}")
    assert figures[10][0] == 0.0 and figures[10][1] == 0.0
    assert figures[80][0] > 0.05 and figures[80][1] > 0.1
    tr = trace_attempts(fleet, 80, horizon_s=600.0, warmup_s=60.0, seed=3)
    west_rows = 0
    for rows in _calls(tr.rows):
        for k in np.flatnonzero(rows[:, T_DEP] == 1):  # west
            west_rows += 1
            assert k > 0 and rows[k - 1, T_NEXT] == NX_SPILL and rows[k - 1, T_DEP] == 0
    assert west_rows > 100


@pytest.mark.parametrize("max_retries", [0, 2])
def test_fallback_only_after_the_retries_are_spent(max_retries: int) -> None:
    """A call reaches the fallback model only after 1 + max_retries rounds refused on its
    own; at low load the fallback sees nothing."""
    body = _web_research()
    quota = body["quotas"]["deployment"]
    body["models"]["mini"] = {"ttft": 0.3, "tokens_per_second": 90, "max_tokens": 4096}
    body["quotas"]["mini"] = {**quota, "models": ["mini"], "rpm": 600}
    body["routes"] = {"gpt-4o": {"deployments": ["gpt-4o"], "fallbacks": ["mini"]}}
    body["retry"]["max_retries"] = max_retries
    fleet = profile_from_dict(body)
    low = simulate(fleet, 10, horizon_s=1800.0, replications=4, seed=5)
    high = simulate(fleet, 90, horizon_s=1800.0, replications=4, seed=5)
    print(f"\nmax_retries={max_retries}: fallback fraction of calls at N=10 "
          f"{low.routing['fallback_fraction'].mean:.4f}, at N=90 "
          f"{high.routing['fallback_fraction'].mean:.4f}; mini's share of admitted calls "
          f"{high.deployments['mini'].share.mean:.4f}")
    assert low.deployments["mini"].sent_share.mean == 0.0
    assert high.routing["fallback_fraction"].mean > 0.005
    assert high.deployments["mini"].share.mean > 0.005
    tr = trace_attempts(fleet, 90, horizon_s=600.0, warmup_s=60.0, seed=5)
    mini = tr.deployments.index("mini")
    fell = 0
    for rows in _calls(tr.rows):
        on_mini = np.flatnonzero(rows[:, T_DEP] == mini)
        if on_mini.size == 0:
            continue
        fell += 1
        first = int(on_mini[0])
        # every earlier round went to gpt-4o and was refused: max_retries retries, then
        # the fallback
        assert first == max_retries + 1
        assert (rows[:first, T_DEP] == tr.deployments.index("gpt-4o")).all()
        assert list(rows[:first, T_NEXT]) == [NX_RETRY] * max_retries + [NX_FALLBACK]
    assert fell > 20


def test_per_turn_keeps_a_turn_on_one_deployment() -> None:
    """``per_turn``: every call of a turn (same session, same turn draw) lands on one
    deployment while it admits; per call, a turn's five calls spread over both."""
    def spread(per_turn: bool) -> tuple[int, int]:
        fleet = _fleet({"policy": "weighted", "deployments": {"east": 1, "west": 3},
                        "per_turn": per_turn})
        tr = trace_attempts(fleet, 8, horizon_s=1200.0, warmup_s=60.0, seed=2)
        assert (tr.rows[:, T_ATTEMPT] == 1).all(), "no 429 at this load"
        turns: dict[tuple[float, float], set[int]] = {}
        for row in tr.rows:
            turns.setdefault((row[T_SESSION], row[T_TURN_U]), set()).add(int(row[T_DEP]))
        return sum(len(d) > 1 for d in turns.values()), len(turns)

    mixed, n = spread(True)
    assert n > 50 and mixed == 0
    mixed, n = spread(False)
    assert mixed > n // 2


def test_results_carry_the_deployments() -> None:
    """SimulationResult.deployments / .routing (and their JSON) for a fleet; empty for a
    profile without routes."""
    fleet = _fleet({"policy": "round_robin", "deployments": ["east", "west"]})
    res = simulate(fleet, 20, horizon_s=600.0, replications=3, seed=1)
    d = res.to_dict()
    assert set(d["deployments"]) == {"east", "west"}
    assert set(d["deployments"]["east"]) == {"share", "sent_share", "reject_fraction",
                                             "spill_fraction"}
    # round robin alternates: an even split of the requests
    assert abs(res.deployments["east"].sent_share.mean - 0.5) < 0.01
    assert res.routing["sends_per_attempt"].mean == pytest.approx(1.0)
    plain = simulate(profile_from_dict(_web_research()), 20, horizon_s=600.0,
                     replications=3, seed=1)
    assert plain.deployments == {} and plain.routing == {}
    assert plain.to_dict()["deployments"] == {}
