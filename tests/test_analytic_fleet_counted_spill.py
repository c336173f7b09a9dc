"""A fixed token window's spill counted by the route's calls (issue 13, session 56).

Once a fixed token window is full it spills every later call, whatever its size: the calls
it sends on a window are the route's count past the calls it admitted. The model reads
them from its token overflow in calls of the mean charge, which counts a fan-out of large
reservations as more calls than it is. ptu-spillover on fixed 60 s windows
(``tests/data/ptu-fixed-minute.yaml``) says 86 against a simulated 92 [91–92], on 10 s ones
(``ptu-fixed-10s.yaml``) 65 against 72 [70–73], 10 s ones into a 60 s one
(``ptu-fixed-10s-into-minute.yaml``) 96 against 108 [108–109].

The counted spill (``fleet._COUNTED_SPILL``) moves those towards the engine, but on 20 s
windows without retries (``ptu-fixed-20s-no-retries.yaml``) it says 82 against 78
[76–80], where the overflow says 77: it is off, and these tests switch it on.
"""

from __future__ import annotations

from collections.abc import Iterator
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
PTU = ROOT / "profiles" / "ptu-spillover.yaml"
MINUTE = [PTU, DATA / "ptu-fixed-minute.yaml"]
TEN = [PTU, DATA / "ptu-fixed-10s.yaml"]
LONGER = [PTU, DATA / "ptu-fixed-10s-into-minute.yaml"]
TWENTY = [PTU, DATA / "ptu-fixed-20s-no-retries.yaml"]


@pytest.fixture
def counted() -> Iterator[None]:
    """The counted spill switched on for one test."""
    before = fleet._COUNTED_SPILL
    fleet._COUNTED_SPILL = True
    try:
        yield
    finally:
        fleet._COUNTED_SPILL = before


def _engine(files: list[Path], n: int) -> float:
    """The engine's 429 share of attempts at ``n`` sessions (40 × 1 h, seed 7)."""
    est = simulate(load_profile(files), n, replications=40, seed=7,
                   horizon_s=3600.0).metrics["attempt_429_fraction"]
    return float(est.mean)


def _paygo_share(files: list[Path], n: int) -> float:
    prof = load_profile(files)
    fa = fleet.FleetAnalysis(prof, Workload.from_profile(prof))
    entry = next(e for e in fa.fm.entries if e.c.name == "paygo.rpm")
    return float(entry.model.stats(n).loss_fraction)


@pytest.mark.parametrize(("files", "n", "simulated"),
                         [(MINUTE, 90, 92), (TEN, 70, 72), (LONGER, 105, 108)],
                         ids=["60s", "10s", "10s-60s"])
def test_counted_nearer_the_engine(files: list[Path], n: int, simulated: int,
                                   counted: None) -> None:
    """Pay-as-you-go's 429 share of attempts nearer the engine's than the overflow's (at
    60 s: 1.98 % against the engine's 0.69 %), and the ceiling higher, no more than 5 %
    above the simulated one (92, 72, 108)."""
    engine = _engine(files, n)
    on = _paygo_share(files, n)
    with_counted = analyze(load_profile(files)).burst_ceiling
    fleet._COUNTED_SPILL = False
    off = _paygo_share(files, n)
    without = analyze(load_profile(files)).burst_ceiling
    assert abs(np.log(on / engine)) < abs(np.log(off / engine))
    assert without < with_counted <= 1.05 * simulated


@pytest.mark.xfail(strict=True, reason="counted spill: 20 s windows without retries "
                   "82 against 78 [76–80], the token overflow 77 (_COUNTED_SPILL off)")
def test_twenty_second_windows_within_five_percent(counted: None) -> None:
    """On 20 s windows without retries the counted spill is more than 5 % optimistic
    (``python benchmarks/session56_probes.py lengths``)."""
    assert analyze(load_profile(TWENTY)).burst_ceiling <= 1.05 * 78


def test_off_twenty_second_windows_within_target() -> None:
    """As shipped (off), 20 s windows without retries: within the target."""
    assert not fleet._COUNTED_SPILL
    n = analyze(load_profile(TWENTY)).burst_ceiling
    assert 76 <= n <= 80


def _law(values: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    mean = float(np.dot(values, probs))
    return mean, float(np.sqrt(np.dot((values - mean) ** 2, probs)))


def _normal(mean: float, sd: float, size: int) -> np.ndarray:
    p = np.exp(-0.5 * ((np.arange(size) - mean) / sd) ** 2)
    return p / p.sum()


def test_the_count_past_an_allowance_with_the_overflows_mean() -> None:
    """A count of 30 ± 5 calls, an overflow of 8 ± 8 a window (before it is kept at 0 and
    up): the spill's mean the overflow's, its spread the geometric mean of ``(Y − a)⁺``'s
    and the overflow's."""
    y, overflow = _normal(30.0, 5.0, 60), _normal(8.0, 8.0, 60)
    out = fleet._counted_spill(y, overflow)
    m, sd = _law(np.arange(out.size, dtype=np.float64), out)
    m_o, sd_o = _law(np.arange(overflow.size, dtype=np.float64), overflow)
    assert m == pytest.approx(m_o, rel=0.02)
    a = fleet._effective_allowance(y, m_o / 30.0, 60.0)
    plain = fleet._rebin(np.maximum(np.arange(60.0) - a, 0.0), y)
    sd_c = _law(np.arange(plain.size, dtype=np.float64), plain)[1]
    assert sd_c < sd < sd_o
    assert sd == pytest.approx(np.sqrt(sd_c * sd_o), rel=0.05)
    assert fleet._counted_spill(y, np.ones(1)).tolist() == [1.0]


@pytest.mark.parametrize("mean", [20.0, 0.05])
def test_longer_receiver_carries_the_counts_covariance_where_windows_are_full(
        mean: float) -> None:
    """Four windows of 30 ± 5 calls into one whose count is 120 ± 6 (paced sessions: a
    window after a busy one is quiet), the overflow as the count's: spilling 20 a
    window, every window full, the spill swings as that count does; spilling 0.05,
    seldom full, as four independent windows' spills."""
    y, y_dest = _normal(30.0, 5.0, 60), _normal(120.0, 6.0, 240)
    a = fleet._effective_allowance(y, mean / 30.0, 60.0)
    plain = fleet._rebin(np.maximum(np.arange(60.0) - a, 0.0), y)
    out = fleet._counted_spill(y, plain, 4, y_dest)
    m, sd = _law(np.arange(out.size, dtype=np.float64), out)
    assert m == pytest.approx(4.0 * mean, rel=0.02)
    independent = _law(np.arange(plain.size, dtype=np.float64), plain)[1] * 2.0
    if mean > 1.0:
        # (√(6·10): the geometric mean of the covariance's spread and the overflow's
        # four independent windows'.)
        assert sd == pytest.approx(np.sqrt(6.0 * independent), rel=0.1)
        assert independent > 9.0
    else:
        assert sd == pytest.approx(independent, rel=0.1)


def _slots(overlay: list[Path]) -> tuple[list[fleet.Constraint], set[int]]:
    prof = load_profile([PTU, *overlay])
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, fleet.cycle_time(wl))
    mine = {id(call) for flow in fleet.route_flows(wl) for call, _ in flow.calls}
    return [e.c for e in fm.entries if e.role == "spill"], mine


def test_only_fixed_token_windows_a_whole_number_of_the_receivers() -> None:
    """The PTU's fixed 60 s token windows into a fixed 60 s window, its 10 s ones into a
    60 s one: counted; not into a shorter one or one 1.5 windows long (whose windows
    take the ends of one or two by turns), not when other calls charge them, nor the
    shipped PTU's token buckets nor a PTU bucket of requests."""
    cs, mine = _slots([DATA / "ptu-fixed-minute.yaml"])
    assert all(fleet._counted_slot(c, 60.0, mine) for c in cs)
    assert not any(fleet._counted_slot(c, 10.0, mine) for c in cs)
    assert not any(fleet._counted_slot(c, 90.0, mine) for c in cs)
    assert not any(fleet._counted_slot(c, 60.0, set()) for c in cs)
    cs, mine = _slots([DATA / "ptu-fixed-10s-into-minute.yaml"])
    assert all(fleet._counted_slot(c, 60.0, mine) for c in cs)
    assert not any(fleet._counted_slot(c, 15.0, mine) for c in cs)
    for overlay in ([], [DATA / "ptu-requests-bucket.yaml"]):
        cs, mine = _slots(overlay)
        assert not any(fleet._counted_slot(c, 60.0, mine) for c in cs)


def test_a_request_slot_beside_the_token_windows(counted: None) -> None:
    """A PTU RPM far above its use beside the token windows (a fixed 60 s request window
    that never refuses first): the token windows still spill counted, the same ceiling
    as without it (a review's profile: the whole level had gone back to the overflow)."""
    rpm = [*MINUTE, DATA / "ptu-fixed-minute-rpm.yaml"]
    assert analyze(load_profile(rpm)).burst_ceiling == analyze(load_profile(MINUTE)).burst_ceiling
