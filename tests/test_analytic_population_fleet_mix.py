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


def test_the_jump_lands_on_the_largest_n_its_mix_carries() -> None:
    """ptu-spillover beside chat and batch (10 batch sessions held): the first look's
    calls a second carried, kept at the N they split into, put the next look beside the
    answer. The answer carries itself and no N past it carries more than one session
    more (the split's rounding moves the mix's ceiling by one: at 111 a chat session in
    place of a research one, and 111 carries itself), in three looks (the mix's own
    ceiling from the first look, 84, took four)."""
    from capacity.analytic import fleet
    from capacity.analytic.model import analyze
    from capacity.analytic.populations import _same_calls, mixed_profile, view
    from capacity.model.workload import Workload

    root = Path(__file__).resolve().parents[1]
    p = load_profile([root / "profiles" / "ptu-spillover.yaml",
                      root / "examples" / "chat-and-batch.yaml"])
    pv = view(p)
    held = p.held_sessions

    def own(n: int) -> int:
        mp = mixed_profile(pv, p.split(n))
        return fleet.FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling - held

    looks: list[int] = []
    real = fleet.FleetAnalysis.__init__

    def counted(self: fleet.FleetAnalysis, *a: object, **k: object) -> None:
        looks.append(1)
        real(self, *a, **k)  # type: ignore[arg-type]

    fleet.FleetAnalysis.__init__ = counted  # type: ignore[method-assign]
    try:
        best = analyze(p).burst_ceiling
    finally:
        fleet.FleetAnalysis.__init__ = real  # type: ignore[method-assign]
    assert own(best) >= best
    assert all(own(n) <= best + 1 for n in range(best + 1, best + 7))
    assert len(looks) == 3
    # The jump itself: from the first look's N to where the same calls a second split.
    first = 20
    assert own(first) == 84
    jump = _same_calls(pv, first, own(first) + held, own(first))
    assert abs(jump - best) <= 5, jump
