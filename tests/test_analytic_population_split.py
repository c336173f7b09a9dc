"""Share populations at small N run as Profile.split rounds them (hunt seed 135,
tests/data/population-split-never-fits.yaml): the analytic N* against the simulator's
recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

from pathlib import Path

from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).resolve().parent / "data" / "population-split-never-fits.yaml"


def test_the_mean_ceiling_cap_counts_whole_sessions() -> None:
    """The mix's mean ceiling is 0.3 sessions (the never-fitting fan-outs' population at
    43 % of each session), but one session is all of the light population: 3 % of the
    quota, so the burst-aware search may go up to 1 (it said 0)."""
    from capacity.analytic.populations import view

    p = load_profile(PROFILE)
    pv = view(p)
    c = next(c for c in pv.constraints() if c.dim == "tpm")
    assert pv.mean_ceiling(c) < 1.0
    assert pv.whole_cap(c, 0) == 1


def test_population_split_against_the_simulator() -> None:
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(1, 1, 1),
                    "population-split-never-fits")
