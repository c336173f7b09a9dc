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
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "counted-sliding-abort-storms.yaml"


def test_counted_refusals_start_storms_without_retries() -> None:
    wl = Workload.from_profile(load_profile(PROFILE))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    window = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s)
    # The storm chain is built, and its spells add to the Palm scan's share.
    assert window.inner.storm_first.size > 0
    assert window.inner.storm_size(18) > 1.0


def test_counted_sliding_abort_storms_within_target() -> None:
    assert_profile_accurate(load_profile(PROFILE))
