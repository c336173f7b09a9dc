"""A fleet with share populations at small N: the mixed-fleet iteration may jump from an
N whose mix carries nothing to a small N carried many times over; the N between are
searched (hunt seed 10, tests/data/population-fleet-mix-jump.yaml): the analytic N*
against the simulator's recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

from pathlib import Path

from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).resolve().parent / "data" / "population-fleet-mix-jump.yaml"


def test_the_mix_at_four_sessions_carries_none() -> None:
    """The jump the search must bridge: N = 4 brings the first `other` session and its
    mix carries 0 sessions, while N = 1 (`session` alone) carries far more than 3."""
    from capacity.analytic.fleet import FleetAnalysis
    from capacity.analytic.populations import mixed_profile, view
    from capacity.model.workload import Workload

    p = load_profile(PROFILE)
    pv = view(p)

    def carried(n: int) -> int:
        mp = mixed_profile(pv, p.split(n))
        return FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling

    assert p.split(3)["other"] == 0 and p.split(4)["other"] == 1
    assert carried(4) < 4
    assert carried(1) > 4


def test_population_fleet_mix_against_the_simulator() -> None:
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(3, 3, 3),
                    "population-fleet-mix-jump")
