"""A fleet with share populations at small N: the mixed-fleet iteration may jump from an
N whose mix carries nothing to a small N carried many times over; the N between are
searched (hunt seed 10, tests/data/population-fleet-mix-jump.yaml): the analytic N*
against the simulator's recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_looks_past_the_first_search_from_a_guess_and_answer_as_without() -> None:
    """ptu-spillover beside chat and batch (10 batch sessions held): the iteration looks
    at 20, 84 and 110 (the second N the first mix's ceiling less the held sessions, the
    third where the two looks' ceilings put the fixed point, _held_share_fit); past the
    first, each look's searches start at N and the held sessions, and each mix's ceiling
    is the one a search from nothing finds."""
    from capacity.analytic import fleet, populations
    from capacity.analytic.model import analyze
    from capacity.analytic.populations import mixed_profile, view
    from capacity.model.workload import Workload

    root = Path(__file__).resolve().parents[1]
    p = load_profile([root / "profiles" / "ptu-spillover.yaml",
                      root / "examples" / "chat-and-batch.yaml"])
    pv = view(p)
    held = p.held_sessions
    looks: list[tuple[int | None, int]] = []
    real = fleet.FleetAnalysis.burst_ceiling

    def counted(self: fleet.FleetAnalysis) -> int:
        got: int = real.fget(self)  # type: ignore[attr-defined]
        if self._result is None and (self.near, got) not in looks:
            looks.append((self.near, got))
        return got

    fleet.FleetAnalysis.burst_ceiling = property(counted)  # type: ignore[method-assign, assignment]
    try:
        best = analyze(p).burst_ceiling
    finally:
        fleet.FleetAnalysis.burst_ceiling = real  # type: ignore[method-assign]
    assert best == 110
    assert [near for near, _ in looks] == [None, 84 + held, 110 + held]
    assert [got for _, got in looks] == [94, 117, 120]
    assert populations._held_share_fit([(10 / 30, 94), (10 / 94, 117)], held) == 110
    for n, (near, got) in zip((20, 84, 110), looks, strict=True):
        mp = mixed_profile(pv, p.split(n))
        plain = fleet.FleetAnalysis(mp, Workload.from_profile(mp), None).burst_ceiling
        assert got == plain, (n, near, got, plain)


def test_the_held_share_fit_leaves_this_rows_answer_as_the_plain_iteration_finds_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the fit the iteration climbs 20, 84, 107, 110 to the same N*: here the fit
    saves a mix (a fleet model of every deployment). (Elsewhere it can end on another
    N of a run whose mixes each carry themselves: `benchmarks/session59_probes.py
    looks`.)"""
    from capacity.analytic import populations
    from capacity.analytic.model import analyze

    root = Path(__file__).resolve().parents[1]
    p = load_profile([root / "profiles" / "ptu-spillover.yaml",
                      root / "examples" / "chat-and-batch.yaml"])
    looked: list[int] = []
    real = populations.mixed_profile

    def mix(pv: populations.PopulationView, counts: dict[str, int]) -> object:
        looked.append(sum(counts.values()) - p.held_sessions)
        return real(pv, counts)

    monkeypatch.setattr(populations, "mixed_profile", mix)
    with_fit = analyze(p.model_copy(deep=True)).burst_ceiling
    assert looked == [20, 84, 110]
    looked.clear()
    monkeypatch.setattr(populations, "_held_share_fit", lambda *a: 0)
    assert analyze(p.model_copy(deep=True)).burst_ceiling == with_fit == 110
    assert looked == [20, 84, 107, 110]


def test_the_held_share_fit_is_exact_where_sessions_share_one_capacity() -> None:
    """A capacity of 120 units, a session of N costing 1 and a held one 3: M*(h) = 120 /
    (1 + 2h); with 10 held, N + 10 + 2·10 = 120 puts the fixed point at N = 90, found
    from looks at N = 20 (h = 1/3, M* = 72) and N = 50 (h = 1/6, M* = 90); no fit from
    one look, from two at one share, or without held sessions."""
    from capacity.analytic.populations import _held_share_fit

    assert _held_share_fit([(1 / 3, 72), (1 / 6, 90)], 10) == 90
    assert _held_share_fit([(1 / 3, 72)], 10) == 0
    assert _held_share_fit([(1 / 3, 72), (1 / 3, 72)], 10) == 0
    assert _held_share_fit([(0.0, 72), (0.0, 90)], 0) == 0


class _Answered(Exception):
    """Raised by a stand-in fleet's ``result()``: the N the iteration answered."""


def _iterate(monkeypatch: pytest.MonkeyPatch, m_star: Callable[[int], int], held: int,
             start: int) -> tuple[int, list[int]]:
    """(answer, each N looked at) of analyze_mixed_fleet's iteration on a stand-in fleet
    whose mix of N sessions and ``held`` held ones has the ceiling ``m_star(N)``."""
    from capacity.analytic import fleet, populations

    looked: list[int] = []

    class Fleet:
        def __init__(self, mp: dict[str, int], wl: object, asked: object,
                     near: int | None = None) -> None:
            self.n = mp["session"]
            looked.append(self.n)
            self.burst_ceiling = m_star(self.n)

        def result(self) -> None:
            raise _Answered(self.n)

    profile = types.SimpleNamespace(split=lambda n: {"session": n, "batch": held})
    pv = types.SimpleNamespace(profile=profile, parts=[types.SimpleNamespace(held=held)],
                               constraints=lambda: ["c"], touches=lambda c: True,
                               mean_ceiling=lambda c: start)
    monkeypatch.setattr(fleet, "FleetAnalysis", Fleet)
    monkeypatch.setattr(populations, "mixed_profile", lambda pv, counts: counts)
    monkeypatch.setattr(populations, "Workload",
                        types.SimpleNamespace(from_profile=lambda mp: None))
    with pytest.raises(_Answered) as got:
        populations.analyze_mixed_fleet(pv, None)  # type: ignore[arg-type]
    return int(got.value.args[0]), looked


def test_the_fit_reaches_a_fixed_point_it_models_exactly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """120 units, 1 a session of N, 3 a held one, 10 held: M*(N) = ⌊120/(1 + 20/(N +
    10))⌋ (whole sessions); from N = 20 the plain step climbs 20, 62, 83, 88, 89, whose
    mix carries exactly 89; the fit goes from the first two looks to 89."""
    from capacity.analytic import populations

    def m_star(n: int) -> int:
        return math.floor(120 / (1 + 20 / (n + 10)) + 1e-9)

    assert _iterate(monkeypatch, m_star, 10, 20) == (89, [20, 62, 89])
    monkeypatch.setattr(populations, "_held_share_fit", lambda *a: 0)
    assert _iterate(monkeypatch, m_star, 10, 20) == (89, [20, 62, 83, 88, 89])


def test_the_next_look() -> None:
    """The fit's N is taken the plain step's way, up to four plain steps far, strictly
    inside the bracket; else the plain step. (ptu-spillover beside chat at 80 % and 40
    held batch workers: the mixes at N = 0 and 12 carry 52 and 67 sessions, whose line
    says 402; the plain step says 27, the answer is 83.)"""
    from capacity.analytic.populations import _held_share_fit, _next_look

    inf = math.inf
    assert _next_look(20, 30, 50, (20, inf)) == 50        # up, four steps of 10 away
    assert _next_look(20, 30, 61, (20, inf)) == 30        # five: too far
    assert _next_look(20, 30, 25, (20, inf)) == 25        # short of the plain step
    assert _next_look(20, 30, 15, (20, inf)) == 30        # the other way
    assert _next_look(20, 30, 45, (20, 40)) == 30         # past the uncarried 40
    assert _next_look(60, 50, 45, (40, 60)) == 45         # down
    assert _next_look(60, 50, 40, (40, 60)) == 50         # onto the carried 40
    assert _next_look(50, 50, 55, (50, inf)) == 50        # a fixed point: no fit
    assert _next_look(20, 30, 0, (20, inf)) == 30         # no fit
    assert _held_share_fit([(1.0, 52), (40 / 52, 67)], 40) == 402
    assert _next_look(12, 27, 402, (12, inf)) == 27


def test_a_jump_over_the_boundary_is_bisected_after_a_fixed_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hunt seed 10's shape: the mix at N = 4 carries nothing, at 1 far more, at 121 two;
    the iteration comes to rest at 2, whose mix carries exactly 2, and the N between it
    and the uncarried 4 are bisected: 3 carries itself. And after a jump to N = 0 with
    held sessions (a review's stand-in: the mixes at 1 to 3 carry 3), the same."""
    carries = {4: 0, 1: 121, 121: 2, 2: 2, 3: 3}
    assert _iterate(monkeypatch, carries.__getitem__, 0, 4) == (3, [4, 1, 121, 2, 3])
    held = {4: 1, 0: 1, 1: 4, 2: 4, 3: 4}                  # M* = what it carries + 1
    assert _iterate(monkeypatch, held.__getitem__, 1, 4)[0] == 3
