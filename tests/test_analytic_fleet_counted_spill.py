"""A fixed token window's spill counted by the route's calls (issue 13, session 56).

Once a fixed token window is full it spills every later call, whatever its size: the calls
it sends on a window are the route's count past the calls it admitted, not its token
overflow in calls of the mean charge (which counts a fan-out of large calls as more calls
than it is, and spreads the spill too wide). ptu-spillover on fixed 60 s windows
(``tests/data/ptu-fixed-minute.yaml``) said 86 against a simulated 92 [91–92], on 10 s
ones (``tests/data/ptu-fixed-10s.yaml``) 65 against 72 [70–73], and 10 s ones into a
60 s one (``tests/data/ptu-fixed-10s-into-minute.yaml``) 96 against 108 [108–109].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity.analytic import fleet
from capacity.analytic.model import analyze
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
MINUTE = [ROOT / "profiles" / "ptu-spillover.yaml", DATA / "ptu-fixed-minute.yaml"]
TEN = [ROOT / "profiles" / "ptu-spillover.yaml", DATA / "ptu-fixed-10s.yaml"]
LONGER = [ROOT / "profiles" / "ptu-spillover.yaml", DATA / "ptu-fixed-10s-into-minute.yaml"]


def _engine(files: list[Path], n: int) -> tuple[float, float, float]:
    """The engine's 429 share of attempts at ``n`` sessions: (mean, 95 % CI low, high)."""
    est = simulate(load_profile(files), n, replications=40, seed=7,
                   horizon_s=3600.0).metrics["attempt_429_fraction"]
    return float(est.mean), float(est.lo), float(est.hi)


@pytest.mark.parametrize("files", [MINUTE, TEN, LONGER], ids=["60s", "10s", "10s-60s"])
def test_the_ceiling_is_the_engines(files: list[Path]) -> None:
    """At the analytic N* the engine's share is within the 1 % target or its CI reaches
    it; 5 % above, the whole CI is past it (the token overflow's 86, 65 and 96: the
    engine within the target 5 % above them)."""
    prof = load_profile(files)
    n = analyze(prof).burst_ceiling
    target = prof.targets.max_429_fraction
    assert _engine(files, n)[1] <= target
    assert _engine(files, round(1.05 * n))[1] > target


@pytest.mark.parametrize("n", [90, 92])
def test_pay_as_you_go_refuses_as_the_engine(n: int) -> None:
    """Pay-as-you-go's 429 share of the route's attempts within half the engine's again
    (the token overflow said 1.98 % and 3.08 % against 0.69 % and 1.06 %)."""
    prof = load_profile(MINUTE)
    fa = fleet.FleetAnalysis(prof, Workload.from_profile(prof))
    entry = next(e for e in fa.fm.entries if e.c.name == "paygo.rpm")
    model, engine = entry.model.stats(n).loss_fraction, _engine(MINUTE, n)[0]
    assert engine / 1.5 <= model <= 1.5 * engine


def _law(values: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    mean = float(np.dot(values, probs))
    return mean, float(np.sqrt(np.dot((values - mean) ** 2, probs)))


def test_the_count_past_a_fixed_allowance() -> None:
    """``(Y − a)⁺`` with the mean asked for: a count of 30 ± 5 calls, 4 of them spilled a
    window on average."""
    y = np.exp(-0.5 * ((np.arange(60) - 30.0) / 5.0) ** 2)
    y /= y.sum()
    out = fleet._counted_spill(y, 4.0)
    k = np.arange(out.size, dtype=np.float64)
    assert _law(k, out)[0] == pytest.approx(4.0, rel=1e-6)
    a = fleet._effective_allowance(y, 4.0 / 30.0, 60.0)
    direct = fleet._rebin(np.maximum(np.arange(60.0) - a, 0.0), y)
    assert np.allclose(out, direct[: out.size], atol=1e-12)
    assert fleet._counted_spill(y, 0.0).tolist() == [1.0]


def _normal(mean: float, sd: float, size: int) -> np.ndarray:
    p = np.exp(-0.5 * ((np.arange(size) - mean) / sd) ** 2)
    return p / p.sum()


@pytest.mark.parametrize("mean", [20.0, 0.05])
def test_longer_receiver_carries_the_counts_covariance_where_windows_are_full(
        mean: float) -> None:
    """Four windows of 30 ± 5 calls into one whose count is 120 ± 6 (paced sessions: a
    window after a busy one is quiet): spilling 20 a window, every window full, the
    spill swings as that count does; spilling 0.05, seldom full, as four independent
    windows' spills."""
    y, y_dest = _normal(30.0, 5.0, 60), _normal(120.0, 6.0, 240)
    out = fleet._counted_spill(y, mean, 4.0, y_dest)
    k = np.arange(out.size, dtype=np.float64)
    m, sd = _law(k, out)
    assert m == pytest.approx(4.0 * mean, rel=0.02)
    one = fleet._counted_spill(y, mean)
    independent = _law(np.arange(one.size, dtype=np.float64), one)[1] * 2.0  # √4 copies
    if mean > 1.0:
        assert sd == pytest.approx(6.0, rel=0.1)
        assert independent > 9.0
    else:
        assert sd == pytest.approx(independent, rel=0.1)


def _slots(overlay: list[Path]) -> tuple[list[fleet.Constraint], set[int]]:
    prof = load_profile([ROOT / "profiles" / "ptu-spillover.yaml", *overlay])
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, fleet.cycle_time(wl))
    mine = {id(call) for flow in fleet.route_flows(wl) for call, _ in flow.calls}
    return [e.c for e in fm.entries if e.role == "spill"], mine


def test_only_fixed_token_windows_no_longer_than_the_receivers() -> None:
    """The PTU's fixed 60 s token windows into a fixed 60 s window, its 10 s ones into a
    60 s one: counted; not into a shorter one, not when other calls charge them, nor the
    shipped PTU's token buckets nor a PTU bucket of requests."""
    cs, mine = _slots([DATA / "ptu-fixed-minute.yaml"])
    assert all(fleet._counted_slot(c, 60.0, mine) for c in cs)
    assert not any(fleet._counted_slot(c, 10.0, mine) for c in cs)   # a shorter receiver
    assert not any(fleet._counted_slot(c, 60.0, set()) for c in cs)
    cs, mine = _slots([DATA / "ptu-fixed-10s-into-minute.yaml"])
    assert all(fleet._counted_slot(c, 60.0, mine) for c in cs)
    for overlay in ([], [DATA / "ptu-requests-bucket.yaml"]):
        cs, mine = _slots(overlay)
        assert not any(fleet._counted_slot(c, 60.0, mine) for c in cs)


def test_a_request_slot_beside_the_token_windows() -> None:
    """A PTU RPM far above its use beside the token windows (a fixed 60 s request window
    that never refuses first): the token windows still spill counted, the same ceiling
    as without it (a review's profile: the whole level had gone back to 86)."""
    rpm = [*MINUTE, DATA / "ptu-fixed-minute-rpm.yaml"]
    assert analyze(load_profile(rpm)).burst_ceiling == analyze(load_profile(MINUTE)).burst_ceiling
