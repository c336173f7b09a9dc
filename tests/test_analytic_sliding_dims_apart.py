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

import copy
from pathlib import Path

import pytest
import yaml

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile, profile_from_dict
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
    assert engine.lo <= both <= engine.hi
    # Each log alone (the other dimension removed) refuses what the engine does with it
    # alone: OTPM 0.951 % against 0.953 % [0.74–1.17] (0.747 % with a chain's last call's
    # own units ahead taken apart from its charge, before session 49), ITPM 1.32 %
    # against 1.36 % [0.93–1.79].
    data = yaml.safe_load(PROFILE.read_text())
    for dim in ("itpm", "otpm"):
        other = "otpm" if dim == "itpm" else "itpm"
        alone = copy.deepcopy(data)
        del alone["quotas"]["q0"][other]
        prof = profile_from_dict(alone)
        model = float(analyze(prof, sessions=7).constraints[0].at_sessions.loss_fraction)
        sim = simulate(prof, 7, replications=20, seed=1).metrics["attempt_429_fraction"]
        assert abs(model - sim.mean) < 0.1 * sim.mean, (dim, model, sim)


@pytest.mark.xfail(strict=True, reason="one quota's sliding logs of one length count by "
                   "the larger alone; which of them refuse apart is left (issue 13)")
def test_it_meets_the_simulated_ceiling() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 3), n_a + 3, seed=1, replications=20)
    assert_accurate(n_a, sat, profile.name)
