"""A counted sliding log without retries whose refused calls' turns go on (issue 13,
``on_exhausted: continue``): a refusal keeps the log full, and the refused turn's next
stages come a 429's trip later, into that full log, to be refused and counted too. The
model took the log's free count alone (every launch is logged, but at the stages' usual
pace): hunt-rpm-217 with counted rejections and ``continue`` was analysed at 29 against
a simulated 25 [23–25] (+16 %). Now the refused stages are cascaded into the full log
(:meth:`capacity.analytic.window.ClumpWindowModel._sliding_cascade`, the others' count
not truncated) and each first refusal starts a storm whose sessions' turns run through
at once (:func:`capacity.analytic.window._storm_arrivals`)."""

from __future__ import annotations

from pathlib import Path

from capacity.analytic import clumped
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "counted-sliding-continue.yaml"


def test_continuing_turns_meet_the_storm_whole() -> None:
    wl = Workload.from_profile(load_profile(PROFILE))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    model = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    assert model.retry.continues and model.retry.storms_without_retries
    # A turn met by the storm brings all its calls (plan, 0-4 tools, answer: ~4.5),
    # a turn caught mid-way its next call and every later one.
    assert model.storm_whole.mean() > 4.0 > model.storm_first.mean()
    # (storm_rest counts a caught call and every later one: ≥ storm_sizes by construction;
    # what the model decides is that later calls follow.)
    assert (model.storm_rest > model.storm_sizes).any()
    assert model.storm_rest.mean() > 2.0
    # The cascade and the storms add to the free count's share.
    assert model.attempt_share(26)["attempt"] > 2.5 * model._sliding_h(26, 0.0)


def test_counted_sliding_continue_within_target() -> None:
    assert_profile_accurate(load_profile(PROFILE))
