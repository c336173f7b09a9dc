"""A refused call that aborts its turn lowers the load, and the refused share is read at
the load it leaves: a fixed point ``p = share(N·L(p))``, by a few plain passes. Where the
share is steep in the load they swing about it (tests/data/sliding-abort-swing.yaml,
hunt-61). Swinging and narrowing (281 sessions: 5.60, 0.42, 4.95, … %), the passes are a
slow contraction and the point is solved between the last two
(:func:`capacity.model.numeric.fixed_point_between`); as wide every pass (293: 16.23 and
0 %) the balance repels them, the engine refuses far more than the thinned load would,
and the higher share stands (:func:`capacity.model.numeric.swing_narrows`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from capacity.analytic.bucket import settled
from capacity.analytic.clumped import ClumpedWindow
from capacity.analytic.model import constraint_model, cycle_time
from capacity.analytic.window import ClumpWindowModel
from capacity.model.numeric import fixed_point_between, swing_narrows
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

DATA = Path(__file__).parent / "data"
SWING = DATA / "sliding-abort-swing.yaml"


def test_the_fixed_point_between_two_iterates_of_a_steep_decreasing_map() -> None:
    # g(x) = 0.9 − 1.5·x: plain passes from 0 swing ever wider (0, 0.9, −0.45, ...).
    calls: list[float] = []

    def g(x: float) -> float:
        calls.append(x)
        return 0.9 - 1.5 * x

    x = fixed_point_between(g, 0.0, 0.9, xtol=1e-12)
    assert x == pytest.approx(0.36, abs=1e-10)
    assert 0.0 not in calls and calls.count(0.9) == 1   # g(a) is b; g(b) asked once


def test_ends_that_do_not_bracket_give_the_later_iterate() -> None:
    # An increasing map breaks the premise: no sign change between the ends, b back;
    # so does a map not finite at b.
    assert fixed_point_between(lambda x: 2.0 * x + 1.0, 0.0, 1.0, xtol=1e-9) == 1.0
    assert fixed_point_between(lambda x: x, 0.5, 0.5, xtol=1e-9) == 0.5
    assert fixed_point_between(lambda x: math.nan, 0.0, 1.0, xtol=1e-9) == 1.0
    # Bad tolerances are the caller's error, not a silent answer.
    with pytest.raises(ValueError):
        fixed_point_between(lambda x: 0.9 - 1.5 * x, 0.0, 0.9, xtol=0.0)


@pytest.mark.parametrize(("xs", "want"), [
    ([5.60, 0.42, 4.95, 0.56], True),        # swinging, narrowing
    ([16.23, 0.0, 16.23, 0.0], False),       # as wide every pass
    ([0.0, 0.9, -0.45, 1.575], False),       # wider
    ([0.48, 0.39, 0.40, 0.401], None),       # the last two steps one way
    ([1.0, 0.5], None),                      # too few
])
def test_how_passes_ended(xs: list[float], want: bool | None) -> None:
    assert swing_narrows(xs) is want


def test_settled_solves_a_swing_that_narrows_and_holds_one_that_does_not() -> None:
    # A share linear in the rate, 0.3·f − 0.1, and a rate factor 1 − 2·q: the passes'
    # map has slope −0.6, so from 0.2 they swing and narrow.
    def narrowing(f: float) -> float:
        return 0.3 * f - 0.1

    p = settled(narrowing(1.0), narrowing, lambda q: 1.0 - 2.0 * q)
    # The fixed point q = 0.3·(1 − 2q) − 0.1: 0.2/1.6 = 0.125.
    assert p == pytest.approx(0.125, rel=1e-4)

    # A share steep in the rate (0 below 0.8 of it, 50 % at the full rate): the passes
    # swing between 0.5 and 0 for good; the higher share stands, the last one asked.
    asked: list[float] = []

    def steep(f: float) -> float:
        asked.append(max(0.0, 2.5 * (f - 0.8)))
        return asked[-1]

    p = settled(steep(1.0), steep, lambda q: 1.0 - 2.0 * q)
    assert p == pytest.approx(0.5) and asked[-1] == p


def _window() -> ClumpWindowModel:
    prof = load_profile(SWING)
    wl = Workload.from_profile(prof)
    model = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    assert isinstance(model, ClumpedWindow)
    inner = model.inner
    assert isinstance(inner, ClumpWindowModel)
    return inner


def _passes(w: ClumpWindowModel, n: int) -> list[float]:
    share = functools.partial(w._sliding, exceed=False)
    p = share(n)["failed"]
    seen = [p]
    for _ in range(6):
        p = share(n * w.load_factor(p))["failed"]  # type: ignore[arg-type]
        seen.append(p)
    return seen


def test_a_narrowing_swing_is_solved_to_its_fixed_point() -> None:
    w, n = _window(), 281
    seen = _passes(w, n)
    assert swing_narrows(seen) is True
    got = w.attempt_share(n)["failed"]
    assert min(seen) < got < max(seen)
    # The share at the load it leaves (fractional N, as the passes ask it).
    share: Callable[[float], dict[str, float]] = functools.partial(
        w._sliding, exceed=False)
    assert share(n * w.load_factor(got))["failed"] == pytest.approx(got, rel=1e-3)


def test_a_swing_as_wide_every_pass_keeps_the_higher_share() -> None:
    w, n = _window(), 293
    seen = _passes(w, n)
    assert swing_narrows(seen) is False
    # The higher of the last two passes' shares (16.23 %, the engine 4.49 %).
    assert w.attempt_share(n)["failed"] == pytest.approx(max(seen[-2:]), rel=1e-9)


def test_the_swinging_profile_meets_the_target() -> None:
    # 281 said before (the passes' last, the high end of a swing still narrowing at
    # 281), 293 [292–294] simulated; the narrowing swings solved, 287.
    assert_profile_accurate(load_profile(SWING), span=8, max_sessions=400)
