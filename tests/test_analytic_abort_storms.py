"""Storms without retries (issue 13, hunt-rpm-226 with a 10 s window): in a sliding
log that counts rejections, a refused call keeps the window full, and with no retries
its turn aborts and its session comes back after the think time alone (Exp(5 s),
inside the 10 s window) to be refused and counted again. Every refusal then starts a
spell that feeds on the sessions' quick returns: the retried storms' chain
(:meth:`capacity.analytic.window.ClumpWindowModel.storm_size`, aborted sessions back
a pause later) with no retries, from every first refusal."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic import clumped
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

PROFILE = Path(__file__).parent / "data" / "counted-sliding-abort-storms.yaml"


def test_counted_refusals_start_storms_without_retries() -> None:
    wl = Workload.from_profile(load_profile(PROFILE))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    window = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s)
    # The storm chain is built, and its spells add to the Palm scan's share.
    assert window.inner.storm_first.size > 0
    assert window.inner.storm_size(18) > 1.0


def test_counted_sliding_abort_storms_within_target() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 6), n_a + 6, seed=1, replications=20,
                          max_sessions=100)
    err = (n_a - sat.n_star) / sat.n_star
    assert (abs(err) <= 0.03 or sat.n_lo <= n_a <= sat.n_hi) and err <= 0.05, (
        n_a, sat.n_star, sat.n_lo, sat.n_hi)
