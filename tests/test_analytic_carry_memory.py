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


def test_carried_retry_search_is_the_bisection_within_its_tolerance() -> None:
    """The search with carried retries (clumped.ClumpedWindow._closed_in: guesses from the
    cheap bound's ratio, closed one tolerance from the guess) finds the bisection's
    largest N meeting the target: exactly below 500 sessions, within 0.2 % and never
    above it for thousands (tool-agent's non-binding RPM constraints, ~1,800 and
    ~15,000 sessions, the binding TPM's ~20, and hunt-149's RPM)."""
    from capacity.analytic import clumped
    from capacity.analytic.model import _cap, _largest_meeting, _mean_ceiling

    agent = load_profile(DATA.parent.parent / "profiles" / "tool-agent.yaml")
    cases = [(load_profile(PROFILE), "rpm"), (agent, "rpm"), (agent, "tpm")]
    seen = 0
    for profile, dim in cases:
        wl = Workload.from_profile(profile)
        cyc = cycle_time(wl)
        for c in (x for x in wl.constraints if x.dim == dim):
            hi = _cap(_mean_ceiling(wl, c, cyc.cycle_s))
            for target in (0.002, 0.01, 0.05):
                fast = clumped.clumped_window_model(wl, c, cyc.cycle_s)
                slow = clumped.clumped_window_model(wl, c, cyc.cycle_s)
                got, at = fast.largest_meeting(target, hi)
                want, _ = _largest_meeting(slow.stats, target, hi)
                tol = max(1, int(clumped._REL_TOL * want))
                assert want - tol <= got <= want, (profile.name, c.name, target, got, want)
                if want < 500:
                    assert got == want
                assert at is not None and at.loss_fraction <= target
                seen += 1
    assert seen >= 9


def test_two_state_chain_leaps_to_its_own_settled_law() -> None:
    """The chain's extrapolation (window._two_state_loop, every _CHAIN_LEAP windows)
    reaches the law the plain iteration settles to, in fewer windows: from an iid carry
    far above it (a heavy load whose refusals thin the window after an overflow) and
    from empty."""
    from capacity.analytic import window

    L, q = 1024, 256.0
    k = np.arange(L, dtype=np.float64)

    def poisson(mean: float) -> np.ndarray:
        from math import lgamma

        logp = k * np.log(mean) - mean - np.array([lgamma(x + 1.0) for x in k])
        p = np.exp(logp)
        return p / p.sum()

    g0, g1 = poisson(0.93 * q), poisson(0.97 * q)
    iid = window._carry_law(poisson(0.985 * q), q, 2)[0]
    empty = np.zeros(L)
    empty[0] = 1.0
    for start in (iid, empty):
        ref = window._two_state(g0, g1, q, start, 1.0, 1.0, 5000, 1e-13, leap=0)
        plain = window._two_state(g0, g1, q, start, 1.0, 1.0, leap=0)
        leapt = window._two_state(g0, g1, q, start, 1.0, 1.0)
        assert abs(leapt[1] - ref[1]) <= 2 * abs(plain[1] - ref[1]) + 1e-6 * ref[1]
        assert float(np.abs(leapt[0] - ref[0][:L]).sum()) < 1e-3
