"""A counted request log's retry storms started by its quota's token spells
(capacity/analytic/window.py ``ClumpWindowModel.ignited_by``, joined in
``model._joint``): every attempt the TPM log refuses is logged on the RPM log too, so a
TPM spell of a few refused attempts fills the RPM log, whose retries then storm. Each
dimension alone allows ~103 sessions; their 429s, counted by the larger, said so too."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate, assert_profile_accurate

DATA = Path(__file__).resolve().parent / "data"


def test_tpm_spells_start_rpm_storms_against_the_simulator() -> None:
    """Reduced from hunt.py seed 171 (102 vs simulated 90 [89–90]): the larger share
    alone said 103 against the simulated 91 [90–94] (seed 1, 20 × 1 h; 90 [90–92] with
    40 replications)."""
    assert_profile_accurate(load_profile(DATA / "tpm-spells-start-rpm-storms.yaml"),
                            max_sessions=200)


def test_uncounted_refusals_start_no_storm() -> None:
    """The same quota when refusals are not logged against the request limit: a TPM
    spell leaves the RPM log as it was, and the ceiling is the dimensions' own (103
    against the simulated 104 [103–105])."""
    p = load_profile(DATA / "tpm-spells-start-rpm-storms.yaml")
    q = p.quotas["q0"]
    p = p.model_copy(update={"quotas": {"q0": q.model_copy(update={"rejected_count": False})}})
    result = analyze(p)
    assert result.burst_ceiling == min(c.burst_ceiling for c in result.constraints)
    sat = find_saturation(p, result.burst_ceiling - 6, result.burst_ceiling + 6, seed=1,
                          replications=20, max_sessions=200)
    assert_accurate(result.burst_ceiling, sat, "uncounted refusals")
