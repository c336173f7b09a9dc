"""A huge quota's window count is compounded in blocks of calls: bounded work.

``capacity ceiling ptu-spillover --method analytic --set quotas.paygo.rpm=1e6`` sent a
count law of ~160,000 calls a window (its length follows the quota) through
``fleet._compound``'s pgf sums at every probe of the search (7 s; 97 s at 10^7 rpm).
:func:`capacity.analytic.fleet._coarse_count` sums at most ``_COUNT_POINTS`` points.
Work is counted, never timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capacity.analytic import fleet
from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

PTU = Path(__file__).resolve().parent.parent / "profiles" / "ptu-spillover.yaml"


def test_huge_paygo_quota_sums_a_bounded_count(monkeypatch: pytest.MonkeyPatch) -> None:
    summed: list[int] = []
    real = fleet._pgf_truncated

    def counted(counts: np.ndarray, fh: np.ndarray) -> Any:
        summed.append(counts.size)
        return real(counts, fh)

    monkeypatch.setattr(fleet, "_pgf_truncated", counted)
    r = analyze(load_profile(PTU, ["quotas.paygo.rpm=1e6"]))
    # Blocks of calls move the answer by the stated spread only: 781,067 summed whole.
    assert r.burst_ceiling == pytest.approx(781_067, rel=1e-4)
    # A literal, not fleet._COUNT_POINTS: the bound must hold for code without that name
    # (it summed ~160,000 points a probe).
    assert summed and max(summed) <= 16_384


def test_short_count_is_compounded_unchanged() -> None:
    counts = np.full(fleet._COUNT_POINTS, 1.0 / fleet._COUNT_POINTS)
    charge = np.array([0.5, 0.5])
    same_counts, same_charge = fleet._coarse_count(counts, charge)
    assert same_counts is counts and same_charge is charge


def test_coarse_count_keeps_the_mean() -> None:
    k = np.arange(4 * fleet._COUNT_POINTS + 1, dtype=np.float64)
    counts = np.exp(-0.5 * ((k - k.size / 2) / 300.0) ** 2)
    counts /= counts.sum()
    charge = np.array([0.7, 0.3])
    coarse, block = fleet._coarse_count(counts, charge)
    assert coarse.size <= fleet._COUNT_POINTS + 1
    mean = float(k @ counts) * 0.3
    got = float(np.arange(coarse.size) @ coarse) * float(np.arange(block.size) @ block)
    assert got == pytest.approx(mean, rel=1e-12)


def test_huge_paygo_quota_spill_law_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 10^7 rpm the route's spilled calls per window (~1.6·10^6) were a law of 2^22
    points (_MAX_FFT) at each probe; in blocks of calls it holds at most _SPILL_POINTS,
    and the answer is the one the whole law gave."""
    sizes: list[int] = []
    real = fleet.TurnSpill.calls

    def counted(self: fleet.TurnSpill, n: int) -> Any:
        out = real(self, n)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(fleet.TurnSpill, "calls", counted)
    r = analyze(load_profile(PTU, ["quotas.paygo.rpm=1e7"]))
    assert r.burst_ceiling == 7_812_114
    # A literal, not fleet._SPILL_POINTS (the whole law was 2^22 points).
    assert sizes and max(sizes) <= 1 << 16
