"""Large, variable token charges against a fixed window (issue 13, the hunt's
charge-granularity family): which calls a full window turns away, and how long the
carried retries stay.

* A first-fit counter turns away the call that crosses ``q`` (a large one) and the later
  ones that no longer fit; once the room is gone every call is refused, whatever its
  size. Converting the refused units into calls by the crossing's size bias alone took a
  fan-out landing in a full window for a few large calls (hunt-003: analytic 55 against
  a simulated 51 [48–53]); :meth:`Crossing.refused` counts them.
* Retries honouring the retry-after come back first in the next window: the carry is a
  queue that settles over tens of windows near saturation, not the ``m + 1`` a single
  call stays; and a quota that sees one call in four counts its retries as attempts too
  (hunt-134: analytic 743 against a simulated 697 [691–699]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.model import WindowStats, analyze, of_all_attempts, own_target
from capacity.analytic.window import first_fit_crossing
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate

DATA = Path(__file__).parent / "data"


def _refused_monte_carlo(rng: np.random.Generator, vals: np.ndarray, p: np.ndarray,
                         q: float, later: float, runs: int = 20_000) -> float:
    """Calls a first-fit counter turns away: the first that does not fit, then every one
    of Poisson(``later``) more that does not fit the room left (runs side by side)."""
    used = np.zeros(runs)
    left = np.full(runs, -1)  # later calls still to offer once one did not fit
    refused = np.zeros(runs)
    while (left != 0).any():
        c = rng.choice(vals, size=runs, p=p)
        before = left < 0
        fits = used + c <= q
        offered = before | (left > 0)
        used = np.where(offered & fits, used + c, used)
        refused += offered & ~fits
        first = before & ~fits
        left = np.where(first, rng.poisson(later, runs), np.where(left > 0, left - 1, left))
    return float(refused.mean())


@pytest.mark.parametrize("later", [0.0, 2.0, 6.0, 15.0])
def test_refused_calls_against_monte_carlo(later: float) -> None:
    vals = np.array([20.0, 60.0, 150.0, 400.0, 900.0])
    p = np.array([0.2, 0.3, 0.3, 0.15, 0.05])
    f = np.zeros(901)
    f[vals.astype(int)] = p
    c = first_fit_crossing(f, 1.0, 2_401.0)  # the room walked on a coarser lattice
    mc = _refused_monte_carlo(np.random.default_rng(5), vals, p, 2_401.0, later)
    assert c.refused(later) == pytest.approx(mc, rel=0.03, abs=0.02)
    # Fewer than the calls offered: smaller later calls still fit the room the crossing
    # left, as many as in the Monte Carlo (0, 0.94, 2.1 and 3.1 of 0, 2, 6 and 15) — a
    # count that took every later call as refused would have none fit.
    fits = 1.0 + later - c.refused(later)
    assert fits == pytest.approx(1.0 + later - mc, rel=0.05, abs=0.02)


def test_retries_are_attempts_of_all() -> None:
    """A quota seeing a quarter of the calls, refusing 20% of its attempts and failing
    none: its calls make 1.25 attempts, a third of all attempts... 0.25·1.25/1.0625."""
    st = WindowStats(1, 0.0, 0.0, 0.2, "x", 0.25, 0.0)
    share = of_all_attempts(st, 0.25).loss_fraction
    assert share == pytest.approx(0.2 * 0.3125 / 1.0625)
    # Without retries every refusal is a failure: one attempt a call.
    assert of_all_attempts(WindowStats(1, 0.0, 0.0, 0.2, "x", 0.2, 0.2),
                           0.25).loss_fraction == pytest.approx(0.05)
    # The own target inverts it.
    own = own_target(0.05, 0.25, retried=True)
    st = WindowStats(1, 0.0, 0.0, own, "x", own, 0.0)
    assert of_all_attempts(st, 0.25).loss_fraction == pytest.approx(0.05)


def _against_the_simulator(name: str, spread: int, cap: int) -> None:
    profile = load_profile(DATA / name)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - spread), n_a + spread, seed=1,
                          replications=20, max_sessions=cap)
    assert_accurate(n_a, sat, name)


def test_fanouts_in_a_full_window_against_the_simulator() -> None:
    _against_the_simulator("fanouts-full-window.yaml", 8, 120)


def test_retried_minor_quota_against_the_simulator() -> None:
    _against_the_simulator("retried-minor-otpm.yaml", 20, 1_000)
