"""Aborted turns shorten the cycle (issue 13, hunt-092): without retries a refused call
ends its turn, and a think-time session starts its next turn a pause after the refusal
instead of after the turn's remaining calls. Near a 5 % target one turn in ten aborts,
so each session launches more calls per second than the fault-free cycle says; the
model scales the launches made by ``C/(C − saved)``
(:meth:`capacity.analytic.window.ClumpWindowModel.load_factor`)."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic import clumped
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

DATA = Path(__file__).parent / "data"
PROFILE = DATA / "abort-shortens-cycle-populations.yaml"


def test_aborted_turns_raise_the_launch_rate_of_think_time_sessions() -> None:
    profile = load_profile(PROFILE)
    wl = Workload.from_profile(profile)
    c = wl.constraints[0]
    model = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    assert model.load_factor(0.0) == 1.0
    # A failed first call of the 3-call turn saves its two ~17 s calls: at a 5 % refusal
    # chance the launches made drop a few percent but the cycle shortens more.
    made, factor = model.made_fraction(0.05), model.load_factor(0.05)
    assert made < 1.0 < factor < 1.2


def _within_target(path: Path) -> None:
    assert_profile_accurate(load_profile(path))


def test_populations_with_aborted_turns_within_target() -> None:
    _within_target(PROFILE)
