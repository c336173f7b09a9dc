"""A route whose first deployment can never hold a fan-out's calls, spilling them into a
next deployment too short for the fan-out (issue 13; ``benchmarks/profile_variants.py``).

ptu-spillover with every limit a token bucket 1 s deep, or fixed windows of 1 s: the
PTU's OTPM (1,667 tokens a second) never holds a synthesis pass's 4,000-token
``max_tokens`` reservation, so all three passes of a turn reach pay-as-you-go at once —
150 RPM, 2.5 requests a second — which takes two of them. The engine refuses one call
every turn: N* is 0 (the analytic model said 4 and 16)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from capacity.analytic.model import analyze
from capacity.profile.loader import profile_from_dict
from capacity.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]


def _short(kind: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    out = copy.deepcopy(data)
    enf = ({"type": "token_bucket", "burst": "1s"} if kind == "bucket"
           else {"type": "fixed_window", "window": "1s"})
    for q in out["quotas"].values():
        q["enforcement"] = dict(enf)
    return dict(out)


@pytest.mark.parametrize("kind", ["bucket", "fixed"])
def test_a_fan_out_the_first_deployment_never_holds_is_refused_at_the_next(kind: str
                                                                           ) -> None:
    """The analytic N* is the engine's 0: at one session pay-as-you-go refuses one of
    the three passes every turn (the engine: 17 % of the attempts with 1 s windows, 37 %
    with 1 s buckets, whose counted refusal leaves each retry half a request short)."""
    p = profile_from_dict(_short(kind))
    assert analyze(p).burst_ceiling == 0
    sim = simulate(p, 1, seed=1, replications=4, horizon_s=1800.0)
    assert sim.metrics["attempt_429_fraction"].mean > 10 * p.targets.max_429_fraction


def test_never_fitting_calls_come_as_their_launches() -> None:
    """The calls a fixed window never admits reach the next one as launches: every turn's
    three synthesis passes at once (a Poisson number of singles said 4e-5 at one
    session), the query and the classifier, which fit, not at all."""
    from capacity.analytic import fleet
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    p = profile_from_dict(_short("fixed"))
    wl = Workload.from_profile(p)
    (flow,) = [f for f in fleet.route_flows(wl) if f.logical == "gpt-4o"]
    points = fleet.CallPoints.quantiles(p, flow)
    slots = fleet.limit_slots(p)
    otpm = fleet._slot_of(slots, next(c for c in wl.constraints
                                       if c.quota == "ptu" and c.dim == "otpm"))
    mask = points.charges(otpm, "ptu") > otpm.allowance + 1e-9
    got = fleet._never_fit_launches(wl, flow, points, mask)
    assert got is not None
    per_turn, batch = got
    assert per_turn == pytest.approx(3.0)          # query, the fan-out, the classifier
    # Of the three launches a turn, the fan-out's three never fit, the others fit.
    np.testing.assert_allclose(batch[:4], [2 / 3, 0.0, 0.0, 1 / 3], atol=1e-12)
    paygo = next(e.model for e in fleet.fleet_models(wl, cycle_time(wl)).entries
                 if e.c.quota == "paygo")
    assert paygo.stats(1).loss_fraction > 0.1


def test_a_fractional_allowance_is_not_rounded_up_in_the_carry() -> None:
    """The carried-retry queue of a bucket 2.5 requests deep (Y' = (S + Y − 2.5)⁺): three
    calls in a window leave half a call — carried as one with chance 1/2 — not none, as
    the allowance rounded to 3 said; a whole allowance is unchanged."""
    from capacity.analytic.window import _lindley

    g = np.zeros(16)
    g[0], g[3] = 0.9, 0.1
    _, once = _lindley(g, 2.5, windows=1)
    assert once == pytest.approx(0.1 * 0.5, rel=1e-9)      # E[(S − 2.5)⁺]
    _, whole = _lindley(g, 2.0, windows=1)
    assert whole == pytest.approx(0.1 * 1.0, rel=1e-9)
    law, mean = _lindley(g, 2.5, windows=40)
    assert math.isclose(float(law.sum()), 1.0, rel_tol=1e-12) and mean > once
