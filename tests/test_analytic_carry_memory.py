"""The carried retries meet correlated windows (issue 13, hunt-149): a turn's calls span
several fixed windows, so a window that overflows is followed by a busier one than
average, and the retries it carries are refused more often than the iid Lindley carry
said (59 sessions against a simulated 55 [52–57]). The carry is a two-state chain whose
window after an overflow draws from the sessions' pair law tilted to the overflow, less
the launches the refusals themselves push later (``window._Pair``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate

DATA = Path(__file__).parent / "data"
PROFILE = DATA / "carry-memory-tool-loop.yaml"


def test_window_after_an_overflow_is_busier_and_the_refusals_displace_their_turns() -> None:
    """The pair law's marginal is the session's window law; a refused launch near its
    window's end pushes the next call of its tool loop (~2-6 s later) out of the next
    window more often than it pulls one in."""
    profile = load_profile(PROFILE)
    wl = Workload.from_profile(profile)
    c = next(x for x in wl.constraints if x.dim == "rpm")
    m = constraint_model(wl, c, cycle_time(wl).cycle_s).inner
    pair = m.pair_of() if m.pair_of is not None else None
    assert pair is not None and pair.c == 1
    pa = pair.joint.sum(axis=1)
    assert m.session_pmf is not None
    mean = float(np.dot(np.arange(pa.size), pa))
    assert abs(mean - float(np.dot(np.arange(m.session_pmf.size), m.session_pmf))) < 1e-6
    a = np.arange(pa.size, dtype=np.float64)
    cov = float(a @ pair.joint @ a) - mean**2
    assert cov > 0  # consecutive windows are positively correlated
    assert pair.shift[0] == 0.0 and float(pair.shift[4]) < 0.0


def test_carry_memory_meets_the_simulated_ceiling() -> None:
    profile = load_profile(PROFILE)
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 8), n_a + 8, seed=1, replications=20)
    assert_accurate(n_a, sat)
