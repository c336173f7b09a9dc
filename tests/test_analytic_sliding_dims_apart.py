"""One quota's dimensions over one sliding log length refuse apart when other calls fill
them (issue 13, hunt-2024): ITPM and OTPM over one 15 s log, filled by long prompts (a
fan-out's) and long answers (a chain's last call). Counted by the larger alone (as RPM and
TPM of the same calls overflow in the same bursts) the answer is 9 sessions against a
simulated 8 [7–8]. Adding their 429s but for those they share (``_shared_429s`` with
their counts' correlation, 0.69, as fixed windows' do) says 8 — and 277 for
tests/data/sliding-mixed-charges.yaml against 293 [288–297], whose ITPM and OTPM (a
request count: max_tokens charged) overflow in the same fan-out bursts, each refusal
relieving the other (correlation 0.39, yet the engine refuses what OTPM alone does). The
joint tail law of the two counts, not their correlation, would tell them apart: left."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation
from capacity.sim.engine import simulate

from ._accuracy import assert_accurate

PROFILE = Path(__file__).parent / "data" / "itpm-otpm-sliding-apart.yaml"


def test_the_two_logs_refuse_apart() -> None:
    profile = load_profile(PROFILE)
    at = analyze(profile, sessions=7)
    shares = {c.name: float(c.at_sessions.loss_fraction) for c in at.constraints
              if c.at_sessions is not None}
    engine = simulate(profile, 7, replications=20, seed=1).metrics["attempt_429_fraction"]
    # The engine turns away about what the two turn away apart, well past the larger.
    larger, both = max(shares.values()), sum(shares.values())
    assert larger < engine.lo
    assert abs(both - engine.mean) < 0.25 * abs(larger - engine.mean)


@pytest.mark.xfail(strict=True, reason="one quota's sliding logs of one length count by "
                   "the larger alone; which of them refuse apart is left (issue 13)")
def test_it_meets_the_simulated_ceiling() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 3), n_a + 3, seed=1, replications=20)
    assert_accurate(n_a, sat, profile.name)
