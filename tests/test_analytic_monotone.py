"""The analytic 429 share never falls as sessions are added (a sweep reads it at every N,
and a search with a high target bisects on it).

ptu-spillover's pay-as-you-go deployment fell from 60% to 22% between 258 and 260
sessions (simulated: 54–55% at 250 and 270) while capacity.analytic.fleet.FeedModel
switched its carried retries' chain off once more than half the offered load was turned
away, and the fallback deployment's load fell to nothing with it; the chain now runs at
every load (on a coarser lattice where the carry is long: capacity.analytic.fleet._carried)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.whatif.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_analytic_share_rises_with_sessions_to_3x_the_ceiling(path: Path) -> None:
    profile = load_profile(path)
    top = analyze(profile).burst_ceiling
    # To 3x the ceiling (chat-assistant's token buckets still dip beyond 4x: 91.6% at 824
    # sessions, 88.1% at 834 — left for the bucket model's overload).
    grid = sorted({max(1, top * k // 20) for k in range(2, 61)})
    shares = [row.analytic_429_fraction for row in sweep(profile, grid).rows]
    falls = [(grid[i], shares[i], grid[i + 1], shares[i + 1])
             for i in range(len(grid) - 1) if shares[i + 1] < shares[i] - 1e-9]
    assert not falls, falls



@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_deep_overload_is_a_result_not_a_crash(path: Path) -> None:
    """Far past the ceiling the answer is a share near 1, not an exception: the
    token-bucket chain's damping root was bracketed by the launch totals' mean alone,
    which missed it beyond ~24x chat-assistant's ceiling (brentq: f(0.0) and f(2.02) must
    have opposite signs, at 5,000 sessions)."""
    profile = load_profile(path)
    top = analyze(profile).burst_ceiling
    grid = [top * 25, top * 500]
    shares = [row.analytic_429_fraction for row in sweep(profile, grid).rows]
    assert all(0.5 < s <= 1.0 for s in shares), shares

# The fed deployments of ptu-spillover's variants to deep overload: pay-as-you-go first
# feeds the PTU's token buckets thousands of units a window, a carry that wrapped around
# a lattice of the window count's length (the PTU's output share 70% at 264 sessions,
# 54% at 312) before the lattice held the carry.
VARIANTS = ["ptu-paygo-first", "ptu-oversized-first-call", "ptu-requests-bucket"]


@pytest.mark.parametrize("overlay", VARIANTS)
def test_a_fed_deployments_share_rises_to_6x_the_ceiling(overlay: str) -> None:
    from capacity.analytic.fleet import FeedModel, fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    profile = load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                            ROOT / "tests" / "data" / f"{overlay}.yaml"])
    top = analyze(profile).burst_ceiling
    wl = Workload.from_profile(profile)
    fed = [e for e in fleet_models(wl, cycle_time(wl)).entries
           if isinstance(e.model, FeedModel)]
    assert fed
    grid = sorted({max(1, top * k // 10) for k in range(1, 61)})
    for e in fed:
        shares = [e.model.stats(n).loss_fraction for n in grid]
        falls = [(grid[i], shares[i], grid[i + 1], shares[i + 1])
                 for i in range(len(grid) - 1) if shares[i + 1] < shares[i] - 1e-9]
        assert not falls, (e.c.name, falls)


@pytest.mark.parametrize(("clumps", "q", "back"), [(150, 3003, 1.0), (150, 3203, 0.8),
                                                   (400, 8303, 1.0), (60, 127, 0.6)])
def test_the_coarse_carry_bounds_the_chain_from_above_within_k_over_4(
        clumps: int, q: int, back: float) -> None:
    """Past _CARRY_POINTS the chain runs k-fold coarser: an upper bound on the fine
    chain's carry (and its turned-away share), by at most k/4 units a window and spread."""
    import math

    import numpy as np

    from capacity.analytic import fleet
    from capacity.analytic.window import _stop_loss

    g = fleet._compound_poisson(clumps, np.r_[0.0, np.full(40, 1 / 40)])
    mean = float(np.dot(np.arange(g.size), g))
    stop = _stop_loss(g, q, mean)
    e, again = fleet._carried(g, q, stop, back, 6)
    carry, fine = fleet._lindley_thinned(np.pad(g, (0, (1 << 18) - g.size)), q, back, 6)
    fine_again = float(np.dot(np.maximum(np.arange(carry.size) - q, 0.0), carry)) / fine
    k = 2 ** math.ceil(math.log2((g.size + 2 * q + 16 + stop * sum(
        back**j for j in range(6))) / fleet._CARRY_POINTS))
    assert k > 1
    assert fine * (1 - 1e-12) <= e <= fine + 6 * 2 * k / 4
    assert fine_again - 1e-9 <= again <= fine_again + 1e-3


def _counted(model: Any, looks: set[int]) -> Any:
    """A fresh copy of a FeedModel whose ``stats`` notes each N it is asked for."""
    import dataclasses

    copy = dataclasses.replace(model)
    inner = copy.stats

    def stats(n: int) -> Any:
        looks.add(n)
        return inner(n)
    copy.stats = stats
    return copy


@pytest.mark.parametrize("overlay", [None, *VARIANTS])
def test_a_fed_slots_interpolating_search_finds_the_bisections_answer(
        overlay: str | None) -> None:
    """FeedModel.largest_meeting places its looks by the share's logarithm: the same
    largest N within each target as model._largest_meeting's halving (the share rises
    with N), and the fallback of ptu-spillover in fewer looks."""
    from capacity.analytic.fleet import FeedModel, fleet_models
    from capacity.analytic.model import _largest_meeting, cycle_time
    from capacity.model.workload import Workload

    paths = [ROOT / "profiles" / "ptu-spillover.yaml"]
    if overlay:
        paths.append(ROOT / "tests" / "data" / f"{overlay}.yaml")
    wl = Workload.from_profile(load_profile(paths))
    for e in fleet_models(wl, cycle_time(wl)).entries:
        if not isinstance(e.model, FeedModel):
            continue
        for target in (1e-4, 1e-3, 0.01, 0.05, 0.3):
            looked: set[int] = set()
            halved: set[int] = set()
            got = _counted(e.model, looked).largest_meeting(target, 400)[0]
            want = _largest_meeting(_counted(e.model, halved).stats, target, 400)[0]
            assert got == want, (e.c.name, target)
            if e.role == "fallback" and overlay is None and target == 0.01:
                assert len(looked) < len(halved)
