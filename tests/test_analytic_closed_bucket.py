"""A shallow token bucket fed by a few sessions, one call per turn (issue 13,
hunt-rpm-201 with an Exp(30 s) think time): the level chain with the launches of a
closed population — a session that has just launched is young (busy, or early in its
think time) and launches again at the fitted Coxian-2 inter-launch law's rates
(:func:`capacity.analytic.bucket.closed_share`), not as a member of a Poisson stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capacity.analytic.bucket import ClosedSessions, fit_closed
from capacity.analytic.model import constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "closed-bucket-few-sessions.yaml"


def test_fit_follows_the_inter_launch_law() -> None:
    # A 10 s busy spell then Exp(60 s): almost nothing within 10 s, then the tail.
    rng = np.random.default_rng(3)
    gap = 10.0 + rng.exponential(60.0, 200_000)
    law = fit_closed(gap, float(gap.mean()), 30.0)
    x = np.array([5.0, 10.0, 20.0, 30.0])
    emp = np.array([float((gap <= v).mean()) for v in x])
    assert np.abs(law.cdf(x) - emp).max() < 0.05
    # The mean is the sample's: young time plus (if it ages) the old phase's.
    young = 1.0 / (law.beta + law.nu)
    mean = young + (law.nu * young) / law.alpha
    assert abs(mean - gap.mean()) < 1e-6 * gap.mean()


def _rpm_chain(path: Path) -> tuple[Any, Any]:
    """The RPM constraint's model of the profile at ``path`` and its closed bucket chain."""
    wl = Workload.from_profile(load_profile(path))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    chain = model.chain
    assert chain is not None and isinstance(chain.closed, ClosedSessions)
    return model, chain


def test_few_sessions_refuse_less_than_poisson_launches() -> None:
    model, chain = _rpm_chain(PROFILE)
    lam = 15 * model.rate_per_session
    closed = chain.shares(lam, 15)["attempt"]
    poisson = chain.shares(lam)["attempt"]
    assert closed < 0.5 * poisson


def test_closed_bucket_within_target() -> None:
    assert_profile_accurate(load_profile(PROFILE))


MANY = Path(__file__).parent / "data" / "closed-bucket-many-sessions.yaml"


def test_many_sessions_keep_the_closed_chain() -> None:
    # Beyond 40 sessions the young count is held to a band around its mean: the share is
    # the full chain's (every count kept) to the digits the ceiling can see.
    from capacity.analytic import bucket

    model, chain = _rpm_chain(MANY)
    n = 55
    lam = n * model.rate_per_session
    banded = chain.shares(lam, n)["attempt"]
    poisson = chain.shares(lam)["attempt"]
    assert banded < 0.8 * poisson
    _, lo, hi = bucket._closed_band(chain.closed, n)
    assert 0 < hi - lo < n
    full = bucket._CLOSED_FULL
    try:
        bucket._CLOSED_FULL = n                 # every count kept
        whole = bucket.closed_share(chain, chain.closed, n, lam)
    finally:
        bucket._CLOSED_FULL = full
    assert abs(banded - whole) <= 1e-5 * whole


def test_closed_bucket_many_sessions_within_target() -> None:
    # Poisson launches answer 51 (simulated 55 [54–55], -7.3%); the closed chain 54.
    assert_profile_accurate(load_profile(MANY))
