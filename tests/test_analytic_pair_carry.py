"""Retries carried into a fixed window whose count follows the last one's (session 63,
capacity/analytic/window.py ``_pair_carry_law``).

A full fixed window's refused calls, told the retry-after, come back at the next
window's start. Where a turn's calls come ~1 s apart and the windows are short, the next
window's fresh count is not independent of the full one's: the sessions that filled it
are still mid-turn. tests/data/fixed-1s-window-pairs.yaml (hunt-4091's second deployment
alone: 430 RPM in 1 s windows, the SDK's retries) said 166 sessions with independent
windows; the simulation 154 [148-158] (``capacity ceiling
tests/data/fixed-1s-window-pairs.yaml --seed 1``), 7.8 % optimistic. With the pair chain
153. ``python benchmarks/session63_probes.py pairs`` prints the grid of windows, limits
and retries this was checked on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from capacity.analytic import window
from capacity.analytic.clumped import ClumpedWindow
from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.sim.engine import default_warmup, trace_attempts
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T

from ._accuracy import Recorded, assert_accurate

PAIRS = Path(__file__).parent / "data" / "fixed-1s-window-pairs.yaml"
SIMULATED = Recorded(154, 148, 158)


def _poisson(mean: float, size: int) -> NDArray[np.float64]:
    k = np.arange(size)
    out = np.exp(k * math.log(mean) - mean - np.array([math.lgamma(x + 1) for x in k]))
    law: NDArray[np.float64] = out / out.sum()
    return law


@pytest.mark.parametrize(("mean", "q", "retries"), [(5.2, 7.0, 2), (5.2, 7.0, 0),
                                                    (3.0, 5.0, 5), (9.0, 12.0, 1)])
def test_independent_windows_give_the_carry_law(mean: float, q: float, retries: int) -> None:
    """With the joint law the product of its marginals the pair chain is the carry law's
    own chain: the same stationary carry, mean and failing units."""
    g = _poisson(mean, 64)
    law, e_y, gone, settled = window._carry_law(g, q, retries)
    law2, e2, gone2, settled2 = window._pair_carry_law(np.outer(g, g), q, retries, 64)
    assert settled and settled2
    assert e2 == pytest.approx(e_y, rel=1e-9)
    assert gone2 == pytest.approx(gone, rel=1e-9, abs=1e-15)
    assert np.abs(law2.sum(axis=1) - law[:64]).max() < 1e-12


def test_correlated_windows_carry_more() -> None:
    """A joint law whose next count rises with the last one's carries more than the
    independent windows with the same marginal (a Poisson(5) count, half of it still
    there the next window: correlation 0.5; a mean carry of 0.93 against 0.44, both
    settled on a lattice of 128)."""
    g = _poisson(5.0, 48)
    # Half of each window's count carried into the next (thinning), the rest fresh.
    keep = np.zeros((48, 48))
    for a, pa in enumerate(g):
        binom = np.array([math.comb(a, j) * 0.5**a for j in range(a + 1)])
        fresh = _poisson(2.5, 48)
        row = np.convolve(binom, fresh)[:48]
        keep[a] = pa * row / row.sum()
    marg = keep.sum(axis=0)
    _, indep, _, settled = window._pair_carry_law(np.outer(marg, marg), 7.0, 2, 128)
    _, paired, _, settled2 = window._pair_carry_law(keep, 7.0, 2, 128)
    assert settled and settled2
    assert paired > 1.8 * indep


def test_short_windows_of_a_loop_within_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1 s windows' profile meets the target with the pair chain, and did not
    without it (independent windows: optimistic)."""
    assert_accurate(analyze(load_profile(PAIRS)).burst_ceiling, SIMULATED,
                    "1 s windows, SDK retries")
    monkeypatch.setattr(window, "_PAIR_CARRY", False)
    before = analyze(load_profile(PAIRS)).burst_ceiling
    with pytest.raises(AssertionError, match=r"166 vs simulated 154 .*\+7\.8%"):
        assert_accurate(before, SIMULATED, "independent windows")


def _model(monkeypatch: pytest.MonkeyPatch, paired: bool) -> ClumpedWindow:
    monkeypatch.setattr(window, "_PAIR_CARRY", paired)
    prof = load_profile(PAIRS)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(model, ClumpedWindow)
    return model


def test_the_engine_agrees_at_160_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The share of fresh calls refused at 160 sessions: the pair chain's within 15 % of
    the engine's (8 replications × 1 h after the warm-up), the independent windows' a
    third short of it."""
    prof = load_profile(PAIRS)
    made = refused = 0
    for rep in range(8):
        rows = trace_attempts(prof, 160, horizon_s=3600.0, seed=1, replication=rep).rows
        rows = rows[rows[:, T_T] >= default_warmup(prof)]
        fresh = rows[:, T_ATTEMPT] == 1
        made += int(fresh.sum())
        refused += int((fresh & (rows[:, T_ADMITTED] == 0)).sum())
    engine = refused / made
    paired = float(_model(monkeypatch, True).stats(160).call_429_fraction or 0.0)
    alone = float(_model(monkeypatch, False).stats(160).call_429_fraction or 0.0)
    assert paired == pytest.approx(engine, rel=0.15)
    assert alone < 0.7 * engine


def test_a_turn_of_spread_stages_keeps_independent_windows() -> None:
    """The accuracy table's 1 -> 3 -> 1 turn in 1 s windows with retries: its windows'
    counts are uncorrelated (its stages seconds apart, each window far shorter than a
    stage), so no pair law is built and its answer is the independent windows'."""
    from benchmarks.analytic_accuracy import dag_profile

    prof = dag_profile("one-three-one", {"rpm": 500, "enforcement": {
        "type": "fixed_window", "window": "1s"}}, None)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(model, ClumpedWindow)
    assert model.inner.pair_law is None


def test_more_retries_settle_below_an_overload() -> None:
    """With three retries the chain settles on the window law's lattice at 240 sessions
    (64 % of the allowance): a lattice of a few allowances stopped it short of its law
    (a review's finding: the carry then fell as N rose)."""
    prof = load_profile(PAIRS)
    data = prof.model_dump(mode="json", exclude_none=True)
    data["retry"] = {**data.get("retry", {}), "max_retries": 3}
    from capacity.profile.loader import profile_from_dict

    wl = Workload.from_profile(profile_from_dict(data))
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(model, ClumpedWindow)
    inner = model.inner
    shares = [float(model.stats(n).loss_fraction) for n in (240, 280, 340)]
    assert shares == sorted(shares)
    assert 240 in inner._pair_carries


def test_a_fractional_session_is_one_present_by_chance() -> None:
    """The joint law of 2.5 sessions is that of two and a third present half the time:
    its mean is 2.5 sessions' (the principal branch of the log raised to 2.5 is not)."""
    a = np.array([1.0, 3.0, 0.0])
    b = np.array([2.0, 0.0, 4.0])
    wt = np.array([0.3, 0.2, 0.1])
    pair = (a, b, wt)
    joint = window._pair_joint(pair, 2.5, 40)
    k = np.arange(40)
    mean_a = float((joint.sum(axis=1) * k).sum())
    mean_b = float((joint.sum(axis=0) * k).sum())
    assert mean_a == pytest.approx(2.5 * float((a * wt).sum()), rel=1e-9)
    assert mean_b == pytest.approx(2.5 * float((b * wt).sum()), rel=1e-9)
    assert joint.min() >= 0.0
