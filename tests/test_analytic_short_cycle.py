"""A plain profile with a short session cycle under a sliding window (issue 13 finding).

``tests/data/batch-sliding.yaml``: one call per turn (~9.4 s), a 5 s think time (cycle
14.4 s), 150 RPM enforced as at most 25 requests in any sliding 10 s, counted and retried
rejections. A session makes at most one call in any 10-s window, so with sessions at
steady-state phases no window holds more than N calls; a burst over 25 starts a retry
storm that never ends (every attempt answered 429: with a 5 s think time failed turns do
not thin the load).

The analytic N* (25) is optimistic against the simulated N* (19 [19–20], seed 1) because
of how the simulator *starts* think-time sessions, not because of the window model: each
session's first turn begins after an equilibrium residual of its pause — U(0, 5 s) — so
all N first calls land in the first 5 s, on top of a sliding log already holding the
steady-state ``N·10/14.4`` calls of the last 10 s: about ``1.35·N`` calls in one window,
over 25 from N ≈ 19–20 on, and the storm that starts then never ends. In steady state a
session is mid-turn with probability E[R]/(E[R]+E[Z]) = 0.65 and its turn starts are
spread over the whole 14.4 s cycle. The twin paced by a cadence U(14.0, 14.8) s has the
same cycle law, and its sessions start at uniform phases over the cycle: there the model
and the simulation agree (25 vs 26 [26–27]); a scratch engine that starts the think-time
sessions at a uniform phase over the cycle gives 24 [24–26] for this very profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation

BATCH = Path(__file__).parent / "data" / "batch-sliding.yaml"


def cadence_twin() -> Profile:
    """The same turn and quota, paced by a cadence U(14.0, 14.8) s: the same cycle law
    (the call ends 9.0–9.8 s after it starts, before the next turn is due)."""
    data: dict[str, Any] = load_profile(BATCH).model_dump(mode="json", exclude_none=True)
    data["session"].pop("think_time")
    data["session"]["cadence"] = {"uniform": ["14.0s", "14.8s"]}
    return profile_from_dict(data)


def simulated(profile: Profile, analytic_n: int) -> tuple[int, int, int]:
    """The simulated N* and its CI, searched as ``capacity ceiling`` does (seed 1)."""
    sat = find_saturation(profile, max(1, analytic_n - 8), analytic_n + 8, seed=1,
                          replications=20, max_sessions=60)
    return sat.n_star, sat.n_lo, sat.n_hi


def meets_target(n_a: int, sim: tuple[int, int, int]) -> bool:
    """The accuracy table's rule: within 3 % or inside the CI, never > 5 % optimistic."""
    n_s, lo, hi = sim
    err = (n_a - n_s) / n_s
    return (abs(err) <= 0.03 or lo <= n_a <= hi) and err <= 0.05


def test_same_cycle_law_same_analytic_ceiling() -> None:
    """The analytic model sees the same steady state for both pacings: one call per
    14.4 s cycle, at most one per session in any 10-s window."""
    a_think = analyze(load_profile(BATCH))
    a_cad = analyze(cadence_twin())
    assert a_think.burst_ceiling == a_cad.burst_ceiling
    # No window can hold more than N calls, so the burst-aware ceiling is at most about
    # the allowance (25), and well below the napkin (150 RPM / 4.17 RPM per session ≈ 36).
    assert 22 <= a_think.burst_ceiling <= 26
    assert a_think.mean_ceiling == pytest.approx(36.0, abs=0.5)


def test_cadence_twin_model_close_to_simulation() -> None:
    """Where the simulator starts sessions at steady-state phases the model is within
    one session of the simulated N*."""
    prof = cadence_twin()
    n_a = analyze(prof).burst_ceiling
    n_s, _, _ = simulated(prof, n_a)
    assert abs(n_a - n_s) <= 1


@pytest.mark.xfail(strict=True, reason=(
    "the simulator starts think-time sessions' first turns within one pause (5 s) on top "
    "of a steady-state sliding log: ~1.35·N calls in one window start endless retry "
    "storms from N ≈ 20 (simulated 19 [19–20]); with a steady-state start 24 [24–26]"))
def test_think_time_short_cycle_meets_accuracy_target() -> None:
    """The accuracy target on the think-time profile itself (fails until the simulator's
    start is fixed; then this test passes and the strict xfail reports it)."""
    prof = load_profile(BATCH)
    n_a = analyze(prof).burst_ceiling
    assert meets_target(n_a, simulated(prof, n_a))
