"""The analytic model's shortcuts give the answers of the long way round.

Speed itself is measured in benchmarks/ (analytic_accuracy.py's compute column), never
asserted here; these tests pin that each shortcut taken for it leaves the answer as it
was: the think-time sweep that skips constraints far from the binding one, the storms'
search by storm-grid cells, the pacer's scalar interpolation and the FFT buffers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from capacity.analytic import clumped, window
from capacity.analytic import model as amodel
from capacity.analytic.pacing import _interp
from capacity.model.dist import Distribution
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile

ROOT = Path(__file__).resolve().parents[1]


def _full_sweep(wl: Workload, target: float) -> tuple[float, float, int, int]:
    """The think-time sweep with every constraint searched (the way before the skip)."""
    lo, hi = wl.profile.session.pause.range()
    out = []
    for v in (lo, hi):
        cyc = amodel.cycle_time(wl, Distribution.fixed(v, "duration"))
        res = amodel._ceilings(wl, cyc, target)
        out.append((min(r.mean_ceiling for r in res), amodel._joint(wl, cyc, res, target)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _near_quotas() -> Profile:
    """dilute-minor-quota with the big model's quota cut to 400 RPM: its four calls a
    turn meet it near where the small model's one call meets its 100 RPM (two quotas
    near one another at both ends of the think-time range: searched and joined)."""
    data = load_profile(ROOT / "tests/data/dilute-minor-quota.yaml").model_dump(
        mode="json", exclude_none=True)
    data["quotas"]["big-q"]["rpm"] = 400
    return profile_from_dict(data)


@pytest.mark.parametrize("path", ["profiles/tool-agent.yaml",
                                  "profiles/chat-assistant.yaml",
                                  "tests/data/dilute-minor-quota.yaml",
                                  "tests/data/retried-minor-otpm.yaml",
                                  "near-quotas"])
def test_sweep_skipping_far_constraints_matches_the_full_sweep(path: str) -> None:
    # tool-agent: four constraints, three far above the binding one (left out);
    # chat-assistant: its ITPM and OTPM near each other (both searched); the two-quota
    # profiles: the ample quota left out, or (near-quotas) both searched and joined.
    profile = _near_quotas() if path == "near-quotas" else load_profile(ROOT / path)
    wl = Workload.from_profile(profile)
    target = wl.profile.targets.max_429_fraction
    sens = amodel._sensitivity(wl, target)
    assert sens is not None
    assert (sens.mean_ceiling_low, sens.mean_ceiling_high, sens.burst_ceiling_low,
            sens.burst_ceiling_high) == _full_sweep(wl, target)


def test_clears_only_constraints_whose_ceiling_is_above() -> None:
    wl = Workload.from_profile(load_profile(ROOT / "profiles/tool-agent.yaml"))
    target = wl.profile.targets.max_429_fraction
    cyc = amodel.cycle_time(wl)
    for c in (c for c in wl.constraints if wl.units_per_turn(c) > 0):
        burst = amodel.constraint_ceiling(wl, c, cyc.cycle_s, target, None,
                                          cyc.min_cycle_s).burst_ceiling
        # Just below its ceiling it may not be cleared; far below it, it is (the sweep's
        # use); at or above its ceiling never.
        assert not amodel._clears(wl, c, cyc, target, burst)
        if burst > 100:
            assert amodel._clears(wl, c, cyc, target, burst // 4)


@pytest.mark.parametrize("boundary", [1, 2, 17, 45, 46, 199, 202, 203, 497, 999])
@pytest.mark.parametrize("start_off", [-0.12, -0.03, 0.0, 0.04, 0.11])
def test_storm_cell_walk_finds_the_boundary(boundary: int, start_off: float) -> None:
    hi = 5000
    seen: list[int] = []

    def ok(n: int) -> bool:
        seen.append(n)
        return n <= boundary

    start = max(1, round(boundary * (1.0 + start_off)))
    got = clumped._storm_boundary(ok, start, hi)
    if got is None:  # more than _WALK_CELLS cells away: the doubling search takes over
        assert abs(math.log(start / boundary)) > math.log(window._STORM_GRID) * 2
        return
    assert got == boundary
    cells = {window.storm_cell(n) for n in seen}
    assert len(cells) <= clumped._WALK_CELLS + 1


def test_storm_cell_walk_ends() -> None:
    assert clumped._storm_boundary(lambda n: True, 200, 205) == 205   # every N passes
    assert clumped._storm_boundary(lambda n: False, 3, 100) == 0      # none does
    assert clumped._storm_boundary(lambda n: n <= 40, 400, 1000) is None  # too far


def test_storm_cell_span_is_the_cell() -> None:
    for n in [*range(1, 80), 195, 202, 474, 497, 999, 12_345]:
        a, b = window.storm_cell_span(n)
        k = window.storm_cell(n)
        assert a <= n <= b
        assert window.storm_cell(a) == window.storm_cell(b) == k
        assert a == 1 or window.storm_cell(a - 1) != k
        assert window.storm_cell(b + 1) != k


def test_scalar_interp_is_numpys() -> None:
    rng = np.random.default_rng(7)
    grid = np.concatenate([[0.0], np.geomspace(0.01, 1e6, 500)])
    for xp, fp in ((grid, 41.7 + grid), (83.2 + grid, grid),
                   (np.sort(rng.random(300)) * 50.0, np.cumsum(rng.random(300)))):
        xs = np.concatenate([rng.random(4000) * xp[-1] * 1.2 - 1.0, xp[:40], xp[-2:]])
        xl, fl = xp.tolist(), fp.tolist()
        for x in xs:
            assert _interp(float(x), xl, fl) == float(np.interp(x, xp, fp))


@pytest.mark.parametrize("n", [7, 64, 341, 1024])
def test_reused_fft_buffers_are_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.random(n), rng.random(n)
    rfft, irfft = window._real_fft(n)
    fa = rfft(a).copy()
    assert np.array_equal(fa, np.fft.rfft(a, n))
    prod = fa * np.fft.rfft(b, n)
    assert np.array_equal(irfft(prod), np.fft.irfft(prod, n))
