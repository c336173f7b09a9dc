"""A loss log fed a sliding log's spill reads each spilled call's own bunch as it comes
(issue 13, hunt-2030 without retries): a 10 s log spills the rest of a 40-call fan-out at
once into a 1 s log that holds 18 such calls. The receiver's Erlang truncation (a time
average: a loss log never holds more than its allowance) was applied to the bunch ahead
of a spilled call as well, which took the bunches that fill the log out of its law —
the receiver turned away none of the route's calls where the engine refuses 30 % of
what reaches it; N* 45 against a simulated 10 [10-10]."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation
from capacity.sim.engine import simulate

from ._accuracy import assert_accurate

PROFILE = Path(__file__).parent / "data" / "sliding-spill-bunch-into-short-log.yaml"


def _receiver_share(n: int) -> float:
    res = analyze(load_profile(PROFILE), sessions=n)
    shares = [float(c.at_sessions.loss_fraction) for c in res.constraints
              if c.at_sessions is not None and c.name.startswith("q1.")]
    assert shares
    return max(shares)


def test_the_receiver_turns_away_the_bunches_that_fill_it() -> None:
    profile = load_profile(PROFILE)
    sim = simulate(profile, 10, replications=8, seed=1)
    engine = sim.metrics["attempt_429_fraction"]
    assert engine.mean > 0.004                 # the engine's share: every 429 is b's
    model = _receiver_share(10)
    assert model > 0.004                       # the truncated bunch said 0.02 %
    assert 0.75 * engine.lo < model < 1.25 * engine.hi


def test_it_meets_the_simulated_ceiling() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 3), n_a + 3, seed=1, replications=20)
    assert_accurate(n_a, sat, profile.name)
