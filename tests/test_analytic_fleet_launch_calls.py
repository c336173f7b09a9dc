"""A spilled launch's calls read from its charge (issue 13, hunt-1039): the mean calls of
the route's launches at each point of their charge law (:func:`launch_charge`) are the
calls a launch of that charge makes — a fan-out's charge says how many copies it
launched — not its kind's mean, which read a spilled seven-call fan-out of 42,600
tokens as 4.24 calls of 10,000 tokens (no call charges more than 6,114)."""

from __future__ import annotations

import numpy as np

from capacity.analytic.fleet import launch_charge, route_flows
from capacity.model.quota import limit_slots
from capacity.model.workload import Workload
from capacity.profile.loader import profile_from_dict

H = 1000.0   # lattice step (tokens): every charge below is a whole number of steps


def _profile() -> dict[str, object]:
    return {
        "name": "launch-calls",
        "models": {"m": {"ttft": "0.5s", "tokens_per_second": 100}},
        "deployments": {"a": {"model": "m", "quotas": ["q0"]},
                        "b": {"model": "m", "quotas": ["q1"]}},
        "quotas": {"q0": {"models": ["a"], "tpm": 6_000_000,
                          "enforcement": {"type": "sliding_window", "window": "1s"}},
                   "q1": {"models": ["b"], "tpm": 3_000_000,
                          "enforcement": {"type": "fixed_window", "window": "1s"}}},
        "routes": {"m": {"policy": "priority", "deployments": ["a", "b"],
                         "spillover": True}},
        "session": {"think_time": "30s", "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 2000, "output_tokens": 1000}},
            {"parallel": {"count": {"choice": {"values": [1, 5, 7],
                                               "weights": [0.5, 0.3, 0.2]}},
                          "call": {"model": "m", "input_tokens": 4000,
                                   "output_tokens": 2000}}}]}}},
    }


def test_each_charge_carries_its_own_calls() -> None:
    prof = profile_from_dict(_profile())
    wl = Workload.from_profile(prof)
    flow = route_flows(wl)[0]
    slot = next(s for s in limit_slots(prof) if s.quota == "q1")
    got = launch_charge(wl, flow, slot, "b", H)
    assert got is not None
    law, per, calls = got
    # Launches: the 3,000-token first call (1 call), the fan-out's 6,000-token copies.
    points = {3: 1.0, 6: 1.0, 30: 5.0, 42: 7.0}
    assert set(np.flatnonzero(law > 1e-12)) == set(points)
    for point, k in points.items():
        assert calls[point] == k
    # Half the launches are the first call, half the fan-out (0.5·1 + 0.3·5 + 0.2·7).
    assert per == (1.0 + 0.5 * 1 + 0.3 * 5 + 0.2 * 7) / 2.0
    # The launches' charge per call, over any law of them, is a call's: 3,000 or 6,000.
    charge = np.arange(law.size) * H
    for w in (law, law * charge):   # the route's launches, and size-biased ones
        per_call = float(np.dot(w, charge)) / float(np.dot(w, calls[: law.size]))
        assert 3000.0 <= per_call <= 6000.0
