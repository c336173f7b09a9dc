"""Sliding logs of single launches without retries, whose refused calls abort their
turns (issue 13, hunt-rpm-224). Rejections uncounted: a loss log holding at most ``q``
charges, the other sessions' and the arriving call's session's earlier ones together, so
the product form truncates their sum
(:meth:`capacity.analytic.window.ClumpWindowModel._loss_share`), not the others' count
alone with the session's own charges added on top (three points of the count's tail
instead of one for a call with two earlier ones in its window). Rejections counted: the
same loss log with its full spells lengthened by the logged refusals
(:meth:`capacity.analytic.window.ClumpWindowModel._counted_spells`), not the free count
of every launch (a refused turn launches nothing more)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.analytic import clumped
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "sliding-loss-tool-loop.yaml"
COUNTED = Path(__file__).parent / "data" / "counted-sliding-tool-loop.yaml"


def test_loss_log_truncates_the_sum_with_own_charges() -> None:
    wl = Workload.from_profile(load_profile(PROFILE))
    m = clumped.clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    # Sequential single calls: every own charge is an earlier launch, in the log.
    assert m.loses and m.single_launches
    assert float(np.dot(np.arange(m.own_pmf.size), m.own_pmf)) > 1.5
    # The sum's truncation turns fewer calls away than the others' alone with the own
    # charges on top (at 18 sessions: 0.66 % vs 1.8 %; the engine, 0.58 %).
    joint = m._sliding_h(18, 0.0)
    g = m.pmf(17)
    q = int(np.floor(m.q_lat + 1e-9))
    kept = g[: q + 1] / g[: q + 1].sum()
    tail = np.concatenate([np.cumsum(kept[::-1])[::-1], [0.0]])     # P(O ≥ s | O ≤ q)
    extra = m._arrival_laws()[0]
    alone = float(extra @ tail[np.clip(q + 1 - np.arange(extra.size), 0, kept.size)])
    assert joint < 0.5 * alone


def test_sliding_loss_tool_loop_within_target() -> None:
    assert_profile_accurate(load_profile(PROFILE))


def test_counted_spells_lengthen_the_loss_logs() -> None:
    wl = Workload.from_profile(load_profile(COUNTED))
    m = clumped.clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    assert m.retry.counts_rejected and not m.loses and m.single_launches
    # More refusals per full spell than the loss log's (the engine: 2.69 vs 1.92 at 18).
    assert 1.2 < m._counted_spells(18) < 1.6


def test_counted_sliding_tool_loop_within_target() -> None:
    assert_profile_accurate(load_profile(COUNTED))
