"""A spilling token bucket's loss through its refill rate (issue 13, hunt-3002).

A priority deployment's bucket spills ``(1 − ρ)·π/(1 − ρ·π)`` of its units below the
refill (``π`` the Lundberg bound). Above it the model took the fluid ``1 − 1/ρ``, which is
~0 just past the refill: hunt-3002's OTPM bucket spilled 4.7 % of the route's calls at 21
sessions and 0.3 % at 22, so the next deployment's share fell as N rose and the ceiling's
bisection, which needs a rising share, stepped over the crossing. The negative Lundberg
root continues the formula through ρ = 1 (:func:`capacity.analytic.model.finite_dam_loss`).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.fleet import BucketSpill, fleet_models
from capacity.analytic.model import cycle_time, finite_dam_loss, lundberg_theta
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

ROOT = Path(__file__).resolve().parents[1]

# hunt-3002's OTPM charges on a 1-token lattice: loop calls of ~14, a final call of 1,026.
SEV = np.zeros(1027)
SEV[14], SEV[1026] = 0.8, 0.2
M1 = 14 * 0.8 + 1026 * 0.2
REFILL, DEPTH = 183.5, 1835.0


def _lam(rho: float) -> float:
    return rho * REFILL / M1


def test_below_the_refill_it_is_the_bound_formula() -> None:
    for rho in (0.3, 0.7, 0.95):
        lam = _lam(rho)
        pi = math.exp(-lundberg_theta(lam, SEV, 1.0, REFILL) * DEPTH)
        want = (1.0 - rho) * pi / (1.0 - rho * pi)
        assert finite_dam_loss(lam, SEV, 1.0, REFILL, DEPTH) == pytest.approx(want, rel=1e-9)


def test_continuous_and_rising_through_the_refill() -> None:
    rhos = np.concatenate([np.linspace(0.5, 0.999, 40), [1.0 - 1e-9, 1.0, 1.0 + 1e-9],
                           np.linspace(1.001, 3.0, 40)])
    losses = [finite_dam_loss(_lam(float(r)), SEV, 1.0, REFILL, DEPTH) for r in rhos]
    # (Within 1e-6: ρ within 1e-9 of 1 is known to ~1e-7 after rounding λ·E[B].)
    assert all(b >= a * (1.0 - 1e-6) for a, b in itertools.pairwise(losses))
    at = losses[41]
    # The diffusion limit at ρ = 1, 1/(1 + 2·r·b/(λ·E[B²])), and no jump either side.
    m2 = 14**2 * 0.8 + 1026**2 * 0.2
    assert at == pytest.approx(1.0 / (1.0 + 2.0 * REFILL * DEPTH / (_lam(1.0) * m2)))
    assert losses[40] == pytest.approx(at, rel=1e-6)
    assert losses[42] == pytest.approx(at, rel=1e-6)
    # Far above, the fluid share; deeper buckets approach it from above.
    assert finite_dam_loss(_lam(3.0), SEV, 1.0, REFILL, DEPTH) > 1.0 - 1.0 / 3.0
    assert finite_dam_loss(_lam(1.5), SEV, 1.0, REFILL, 100 * DEPTH) == pytest.approx(
        1.0 - 1.0 / 1.5, rel=1e-6)


def _bucket_loss(rho: float, seconds: float, seed: int) -> float:
    """Units a token bucket turns away (each charge admitted whole or refused), by
    direct simulation of its level (the probe's, benchmarks/session34_probes.py)."""
    from benchmarks.session34_probes import bucket_loss

    return bucket_loss(_lam(rho), np.random.default_rng(seed), seconds, REFILL, DEPTH)


@pytest.mark.parametrize("rho", [1.02, 1.2])
def test_just_past_the_refill_it_is_near_the_bucket_the_fluid_is_not(rho: float) -> None:
    simulated = _bucket_loss(rho, 3e5, seed=7)
    got = finite_dam_loss(_lam(rho), SEV, 1.0, REFILL, DEPTH)
    # (Whole charges lose more than the dam's overflow: the large calls; below it.)
    assert 0.6 * simulated < got < simulated
    assert 1.0 - 1.0 / rho < 0.6 * simulated


def test_hunt_3002_spill_rises_with_sessions() -> None:
    p = load_profile(ROOT / "benchmarks" / "hunt" / "profiles" / "hunt-3002.yaml")
    wl = Workload.from_profile(p)
    fm = fleet_models(wl, cycle_time(wl))
    spills = [e.model for e in fm.entries if isinstance(e.model, BucketSpill)]
    assert len(spills) == 2
    for m in spills:
        shares = [m.stats(n).loss_fraction for n in range(1, 41)]
        assert all(b >= a for a, b in itertools.pairwise(shares)), shares


def test_hunt_3002_next_deployment_share_rises_with_sessions() -> None:
    """The calls two buckets spill to the next deployment, per call the larger of the two
    buckets' shares (scaled to the larger bucket's spill): taking the calls of the
    bucket turning away the most alone switched at 26 sessions from a's OTPM bucket (the
    1,026-token final calls, which b's 287-token OTPM window never holds) to its ITPM one
    (the loop's large prompts): b's OTPM share fell from 6.6 % to 0.01 %, and the
    analytic N* was 25 against a simulated 3 [2–3] (now 10)."""
    p = load_profile(ROOT / "benchmarks" / "hunt" / "profiles" / "hunt-3002.yaml")
    wl = Workload.from_profile(p)
    fm = fleet_models(wl, cycle_time(wl))
    (otpm,) = [e.model for e in fm.entries if e.c.name == "q1.otpm"]
    shares = [otpm.stats(n).loss_fraction for n in range(1, 41)]
    assert all(b >= a for a, b in itertools.pairwise(shares)), shares
    assert shares[10] > 0.01          # 11 sessions: over the 1 % target


def test_one_minus_rho_from_the_drift_at_the_refill() -> None:
    """Within rounding of the refill ``1 − ρ`` is taken from the drift the root was
    solved with: ``1.0 - rho`` rounded otherwise, and the loss jumped by 20 % from one
    λ to the next double (the load of ``lundberg_theta``'s own example: 3.7 batches of
    5/3 units against 6.1666…67 units a second)."""
    sev = np.zeros(6)
    sev[5] = 1.0
    lam = 3.7
    got = []
    for step in range(-3, 4):
        x = lam
        for _ in range(abs(step)):
            x = float(np.nextafter(x, math.inf if step > 0 else -math.inf))
        got.append(finite_dam_loss(x, sev, 1.0 / 3.0, 6.166666666666667, 20.0))
    assert max(got) - min(got) < 1e-9
