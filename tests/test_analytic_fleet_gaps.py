"""Issue 13's fleet rows: the analytic N* of ptu-spillover's variants against the simulated
one (seed 1, 20 replications × 1 simulated hour, as benchmarks/analytic_accuracy.py runs
them; each search takes the C engine about a second).

The target: within 3 % of the simulated N* or inside its 95 % CI, and never more than 5 %
above it. The workloads are overlays in tests/data (and examples/chat-and-batch.yaml).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import SaturationResult, find_saturation

from ._accuracy import assert_accurate

ROOT = Path(__file__).resolve().parents[1]
PTU = ROOT / "profiles" / "ptu-spillover.yaml"


def _check(overlay: Path | None) -> tuple[int, SaturationResult]:
    p = load_profile([PTU, overlay] if overlay is not None else PTU)
    res = analyze(p)
    n_a = res.burst_ceiling
    # The bracket benchmarks/analytic_accuracy.py searches.
    lo, hi = max(1, int(n_a * 0.8)), int(res.mean_ceiling + 1e-9) + 1
    cap = max(hi, int(res.mean_ceiling / (1.0 - p.targets.max_429_fraction)) + 1)
    sim = find_saturation(p, lo, max(lo + 1, hi), seed=1, replications=20,
                          horizon_s=3600.0, max_sessions=cap)
    return n_a, sim


@pytest.mark.parametrize("overlay", [
    None,                                          # 87 vs 88 [85–90]
    "tests/data/ptu-paygo-first.yaml",             # 55 vs 54 [53–55] (was 60: +11 %)
    "tests/data/ptu-oversized-first-call.yaml",    # 62 vs 64 [62–65] (was 91: +42 %)
    "tests/data/ptu-requests-bucket.yaml",         # 51 vs 52 [51–53] (was 54: +3.8 %)
    "examples/chat-and-batch.yaml",                # 110 vs 113 [111–115] (was 98: −13 %)
])
def test_fleet_row_within_target(overlay: str | None) -> None:
    """ptu-spillover and its variants: a window's overflow leaves as whole launches
    (launch_charge), a bucket's spilled calls arrive with their turn (TurnSpill) or as
    each window's offered calls less what the bucket admits at that rate
    (BucketSpill.window_spill), and a near-empty bucket turns the large calls away
    (_short_time)."""
    n_a, sim = _check(ROOT / overlay if overlay else None)
    assert_accurate(n_a, sim, overlay or "ptu-spillover")
