"""A saturated sliding loss log spilling fan-outs into a fixed window (hunt seed 196,
tests/data/sliding-spill-fanout-continue.yaml): the analytic model against the
simulator's figures recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).resolve().parent / "data"
PROFILE = DATA / "sliding-spill-fanout-continue.yaml"


def _entries() -> list[Any]:
    from capacity.analytic.fleet import fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    wl = Workload.from_profile(load_profile(PROFILE))
    return list(fleet_models(wl, cycle_time(wl)).entries)


def test_a_saturated_loss_log_turns_away_what_it_cannot_hold() -> None:
    """At 49 sessions the 30 s log is offered 1.65 times its allowance: holding only what
    it admitted, it turns away about the excess (1 − 1/1.65 = 39 % of the units; the
    simulator 38.3 % [38.1–38.5] of the calls). The others' count truncated at the
    allowance with the arriving session's earlier units on top said 78 %."""
    spill = next(e for e in _entries() if e.role == "spill")
    share = float(spill.model.stats(49).loss_fraction)
    assert 0.33 <= share <= 0.40, share


def test_spilled_fan_outs_bring_their_own_calls_per_launch() -> None:
    """The fixed window receives whole fan-outs of ~27 calls, each call ~13,000 tokens:
    at 49 sessions it is fed about its allowance (the simulator: 96 % used, 2.6 % of
    attempts answered 429). Read at the route's mean of 10.3 calls a launch, each spilled
    call brought a fan-out's 36,000 tokens: 2.7 times the allowance."""
    feed = next(e for e in _entries() if e.role == "receive")
    st = feed.model.stats(49)
    allowance = float(feed.c.allowance)
    assert 0.9 <= st.mean_per_window / allowance <= 1.15, st.mean_per_window / allowance


def test_sliding_loss_log_spilling_fan_outs_against_the_simulator() -> None:
    """The analytic N* against the simulated 49 [49–49] (it said 29: the log's spill and
    the spilled units each about twice the simulator's)."""
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(49, 49, 49),
                    "sliding-spill-fanout-continue")
