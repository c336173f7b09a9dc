"""One definition of the 429 target with several quotas (issue 13, item 4; the hunt's
finding): the target bounds the share of ALL attempts answered 429, so a quota that meters
one call in five may refuse five times the target of its own calls, and quotas on
different calls add up (``capacity.analytic.model.joint_ceiling``)."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.search import find_saturation
from capacity.whatif.ceiling import size

DILUTE = Path(__file__).parent / "data" / "dilute-minor-quota.yaml"


def test_a_quota_on_one_call_in_five_against_the_simulator() -> None:
    profile = load_profile(DILUTE)
    wl = Workload.from_profile(profile)
    shares = {c.name: wl.attempt_share(c) for c in wl.constraints}
    assert min(shares.values()) == 0.2 and max(shares.values()) == 0.8
    a = analyze(profile)
    assert a.binding.at_burst_ceiling is not None
    assert a.binding.at_burst_ceiling.loss_fraction <= 0.01 + 1e-9  # of all attempts
    sat = find_saturation(profile, a.burst_ceiling - 15, a.burst_ceiling + 15, seed=1,
                          replications=20, max_sessions=400)
    err = (a.burst_ceiling - sat.n_star) / sat.n_star
    assert (abs(err) <= 0.03 or sat.n_lo <= a.burst_ceiling <= sat.n_hi) and err <= 0.05, (
        a.burst_ceiling, sat.n_star, sat.n_lo, sat.n_hi)


def test_size_round_trip_with_two_quotas_raised() -> None:
    """Both quotas short: each is sized for its part of the target, and together they
    carry the sessions."""
    profile = load_profile(DILUTE)
    result = size(profile, 3300)
    assert len({d.quota for d in result.to_raise}) == 2
    after = analyze(load_profile(DILUTE, [d.set_path for d in result.to_raise]))
    assert after.saturation_point >= 3300
