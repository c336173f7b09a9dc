"""A token bucket fed by a spillover chain's overflow (issue 13): its level law, not a
window's stop-loss against its depth.

ptu-spillover with every limit a token bucket (``benchmarks/profile_variants.py``'s
``bucket5/10/60``): pay-as-you-go, a 150 RPM bucket, receives the PTU buckets' spill. The
stop-loss ``E[(S − b)⁺]`` of its calls per depth's seconds left out the refill (a bucket
admits up to ``b + r·w`` in any ``w`` seconds) and said 89 sessions without retries where
the simulator says 125 [124–127]; with the SDK's retries 87 against 109 [106–112].
Simulated as ``benchmarks/profile_variants.py`` does (seed 1, 20 replications × 1 h).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from capacity.analytic.bucket import DeepBucket
from capacity.analytic.fleet import fleet_models
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import profile_from_dict

from ._accuracy import assert_accurate, searched

ROOT = Path(__file__).resolve().parents[1]
DIMENSIONS = ("rpm", "tpm", "itpm", "otpm")


def _buckets(burst: str, retries: bool) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    out = copy.deepcopy(data)
    for q in out["quotas"].values():
        q["enforcement"] = {"type": "token_bucket", "burst": burst}
        for dim in DIMENSIONS:
            if isinstance(q.get(dim), dict) and "enforcement" in q[dim]:
                q[dim]["enforcement"] = {"type": "token_bucket", "burst": burst}
    if not retries:
        out["retry"] = {**out.get("retry", {}), "max_retries": 0}
    return out


def _simulated_n_star(data: dict[str, Any]) -> tuple[int, Any]:
    return searched(profile_from_dict(data))


@pytest.mark.parametrize("burst", ["5s", "10s", "60s"])
def test_bucket_receiver_without_retries_within_target(burst: str) -> None:
    """Without retries the receiver's level law meets the accuracy rule: 92, 123 and 140
    against 93, 125 and 142 (the stop-loss: 63, 89 and 130)."""
    n_a, sim = _simulated_n_star(_buckets(burst, retries=False))
    assert_accurate(n_a, sim, f"ptu-spillover, every limit a {burst} bucket, no retries")


_HOLDS = ("each refused call's futile retries hold the bucket under one unit a while "
          "(DeepBucket._counted_share's busy periods), which the receiver's reading leaves "
          "out: 113 against 109 [106-112] (+3.7 %)")


@pytest.mark.parametrize("burst", [
    "5s",
    pytest.param("10s", marks=pytest.mark.xfail(strict=True, reason=_HOLDS)),
    "60s"])
def test_bucket_receiver_with_counted_retries_within_target(burst: str) -> None:
    """With the SDK's retries (honoured; pay-as-you-go counts its refusals, so a retry
    that spills there again is refused again): 139 against 141 [141-141] at 60 s, and 75
    against 72 [70-76] at 5 s since the PTU's buckets spill by the level chain of the
    turns' calls (fleet.BucketSpill.spill_chain; the finite dam's bound said 77, +6.9 %).
    The stop-loss said 61, 87 and 127 against 72, 109 and 141."""
    n_a, sim = _simulated_n_star(_buckets(burst, retries=True))
    assert_accurate(n_a, sim, f"ptu-spillover, every limit a {burst} bucket, SDK retries")


def test_poisson_spill_meets_the_level_law() -> None:
    """The window law's index of dispersion sets the launches: pay-as-you-go's share at
    125 sessions is the level law's for Poisson launches of ``1 + K`` calls with that
    index, and it lies between the engine's own same-instant batches (1.4 % of its
    arrivals) and the launch of a whole window (far above)."""
    p = profile_from_dict(_buckets("10s", retries=False))
    wl = Workload.from_profile(p)
    fm = fleet_models(wl, cycle_time(wl))
    m = next(e.model for e in fm.entries if e.c.name == "paygo.rpm")
    g, _ = m.window_law(125)
    k = np.arange(g.size, dtype=np.float64)
    mean = float(k @ g)
    got = m._bucket_shares(125, g, mean)
    assert got is not None
    # The engine's same-instant batches of the PTU's spill (trace, 4 × 1 h): 3.8 % one
    # call, 32.6 % two, 63.6 % three, 2.19 calls a second.
    batch = np.array([0.0, 0.0378, 0.3258, 0.6364])
    own = DeepBucket([(1.0, batch, np.array([0.0, 1.0]))], 1.0, 2.5, 25.0)
    engine_batches = own.shares(2.193 / float(np.arange(4) @ batch))["call"]
    assert 0.010 < engine_batches < 0.018
    assert engine_batches < got["call"] < 2.5 * engine_batches
    # The window law itself is the engine's: 21.93 calls a window, variance 71.4.
    var = float(k * k @ g) - mean * mean
    assert abs(mean * m.h - 21.93) < 0.5 and abs(var * m.h * m.h - 71.4) < 5.0
