"""A priority route's first deployment with token buckets its turns of several calls
fill (fleet.BucketSpill.spill_chain): the calls it spills, by the level chain of the
turns' calls, where the finite dam's Lundberg bound said the fluid excess.

The profile is hunt-3002 (benchmarks/hunt.py): simulated N* 3 [2-3], the bound's answer
10 — a's output bucket holds 1,835 tokens and each turn ends in a 1,026-token answer, so
the level is short of one whenever another turn's answer came in the last few seconds.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from capacity.analytic import fleet
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.sim.engine import simulate

PROFILE = Path(__file__).parent / "data" / "fleet-bucket-head-turns.yaml"


def _head(profile_data: dict | None = None) -> fleet.BucketSpill:
    prof = load_profile(PROFILE) if profile_data is None else profile_from_dict(profile_data)
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.name == "q0.otpm"]
    assert isinstance(e.model, fleet.BucketSpill)
    return e.model


def test_the_head_spills_by_its_level_chain_and_the_answer_comes_down() -> None:
    head = _head()
    assert head.spill_chain is not None
    assert "level chain of the turns' calls" in head.stats(5).method
    res = analyze(load_profile(PROFILE))
    assert res.burst_ceiling <= 4                                  # simulated 3 [2-3]


def test_without_the_chain_the_bound_said_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "spill_chain", lambda *_: None)
    assert analyze(load_profile(PROFILE)).burst_ceiling == 10
    assert "Lundberg" in _head().stats(5).method


def test_the_heads_spill_share_against_the_engine_without_retries() -> None:
    # No client retries: what a spills is its own refusals, the calls b then refuses or
    # admits. The engine's a (8 × 1 h): the share of calls sent to it that it turns away.
    data = yaml.safe_load(PROFILE.read_text())
    data["retry"] = {"max_retries": 0}
    prof = profile_from_dict(data)
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, cycle_time(wl))
    for n in (3, 5):
        got = simulate(prof, n, replications=8, seed=1, workers=1).deployments["a"]
        model = fm.spill["m"](n)
        engine = got.reject_fraction
        # Within the engine's interval widened by a fifth, where the bound's 0.19 % at 5
        # was six times too low.
        assert engine.lo * 0.8 <= model <= engine.hi * 1.2, (n, model, engine)


def test_launches_denser_than_the_grids_refill_hand_over_to_the_dam() -> None:
    # The chain rounds the refill between two launches to the nearest grid step: past
    # half a step a launch it loses the refill, and the dam answers — never below the
    # chain's share at its last N, so the share rises with N through the hand-over (the
    # dam alone fell there: the ITPM bucket 35.5 % at 60 sessions, 31.4 % at 61).
    prof = load_profile(PROFILE)
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, cycle_time(wl))
    heads = [e.model for e in fm.entries if isinstance(e.model, fleet.BucketSpill)]
    assert len(heads) == 2
    for head in heads:
        chain = head.spill_chain
        assert chain is not None
        last = head.chain_until()
        rate = head.bucket.rate_per_session
        assert last * rate * chain.grids()[0].delta <= fleet._CHAIN_DENSE * chain.refill
        assert (last + 1) * rate * chain.grids()[0].delta > fleet._CHAIN_DENSE * chain.refill
        assert "level chain" in head.stats(last).method
        assert "Lundberg" in head.stats(last + 1).method
        shares = [float(head.stats(n).loss_fraction) for n in range(1, 3 * last)]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(shares))
    route = [fm.spill["m"](n) for n in range(1, 200)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(route))


def test_refill_with_launches_too_dense_to_gain_a_step_is_the_identity() -> None:
    import warnings

    from capacity.analytic.bucket import _refill

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G = _refill(1e9, 1.0, 1.0, 5)
    assert np.array_equal(G, np.eye(6))
