"""The fluid (mean-value) load of a deployment fed by spillover (capacity/analytic/fleet.py,
``fleet_models``): a slot before it of the same token dimension turns away its large calls
first (first fit, ``κ = E[B]/E[B | rejected]``), and those calls are charged here as
large ones, ``E[B]/κ`` each — the excess units go on, not the excess as the route's mean
calls. The fluid ceiling also caps the burst search (``entry_result``), so charging the
spill as mean calls answered above the simulated N* wherever the cap bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.fleet import (
    CallPoints,
    FeedModel,
    _mean_ceiling,
    fleet_models,
    refused_law,
    route_flows,
)
from capacity.analytic.model import analyze, cycle_time
from capacity.model.quota import limit_slots
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import Recorded as _Recorded
from ._accuracy import assert_accurate, assert_profile_accurate

DATA = Path(__file__).resolve().parent / "data"


def test_spilled_units_are_the_first_deployments_excess() -> None:
    """A sliding log and a token bucket that both charge prompt + max_tokens: the units
    the log cannot take are the units the bucket receives, so the bucket's fluid ceiling
    is where the route's units fill both limits — 784.3 sessions, as the engine's
    utilisations say (q0 0.993 and q1 0.494 of their limits at 600 sessions: 7.73 M of
    the route's 7.74 M tokens a minute). Charged as the route's mean calls it was 892."""
    p = load_profile(DATA / "fleet-sliding-spill-fluid.yaml")
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    fm = fleet_models(wl, cyc)
    first = next(e for e in fm.entries if e.c.quota == "q0")
    fed = next(e for e in fm.entries if e.c.quota == "q1")
    assert isinstance(fed.model, FeedModel)
    per_session = wl.units_per_turn(first.c) / cyc.cycle_s      # tokens/s, all on a first
    both = (first.c.rate_per_s + fed.c.rate_per_s) / per_session
    assert abs(_mean_ceiling(fed) - both) < 1e-6 * both
    assert 780 < _mean_ceiling(fed) < 790


def test_bucket_spilling_into_a_bucket_against_the_simulator() -> None:
    """The profile hunt.py found (seed 109): two token buckets, the first spilling its
    large calls into the second. The analytic N* meets the accuracy table's rule (it said
    253, its fluid ceiling with the spill charged as mean calls, against the simulated
    233 [233–234]; now 228)."""
    assert_profile_accurate(load_profile(DATA / "fleet-bucket-spill-fluid.yaml"),
                            max_sessions=400)


def test_request_bound_spill_is_mean_sized_calls() -> None:
    """The other side of the rule: a first deployment that turns calls away by its request
    limit (300 RPM; its TPM never binds) spills a random sample of calls, mean-sized, so
    the second's TPM fluid ceiling is where the route's mean calls fill it — about 408.6
    sessions; charged as the large calls a token slot refuses it said 192.6, and capped
    the simulated search at 199 (simulated N* 407, 95% CI 403-419, seed 1)."""
    p = load_profile(DATA / "fleet-rpm-bound-spill.yaml")
    wl = Workload.from_profile(p)
    fm = fleet_models(wl, cycle_time(wl))
    fed = next(e for e in fm.entries if e.c.quota == "q1")
    assert 400 < _mean_ceiling(fed) < 415


@pytest.mark.parametrize(("name", "sim"), [
    # ITPM turns the large prompts away; the next deployment's TPM charges them as large
    # (850 with them charged as the route's mean calls).
    ("fleet-itpm-spill-into-tpm", _Recorded(320, 319, 323)),
    # TPM -> a 10 RPM deployment -> TPM: the calls past the request-only level are still
    # the large ones the first turned away (623 with them mean-sized).
    ("fleet-spill-past-rpm-only", _Recorded(323, 322, 326)),
])
def test_spilled_calls_keep_their_size_law_down_the_chain(name: str, sim: _Recorded) -> None:
    """A spilled stream's units law is the refused-call law of the level before, carried
    down the chain (SpillStream): a token slot's refusals are its large calls in every slot
    that charges their tokens, and a request-only level passes them on as they came."""
    assert_accurate(analyze(load_profile(DATA / f"{name}.yaml")).burst_ceiling, sim, name)


def test_a_request_only_level_passes_the_size_law_on() -> None:
    """Past the 10 RPM middle level the third deployment's TPM is charged the first's
    refused calls' mean, not the route's 2,380 tokens: first fit refuses a call of B
    tokens in proportion to ``F_e(B) = E[min(B', B)]/E[B']`` (400/2,380 for the 400-token
    calls, 1 for the 20,200-token ones), which makes them 8,280 tokens each."""
    p = load_profile(DATA / "fleet-spill-past-rpm-only.yaml")
    wl = Workload.from_profile(p)
    flow = route_flows(wl)[0]
    points = CallPoints.of(p, flow)
    slot = next(s for s in limit_slots(p) if s.quota == "q2")
    tpm = points.charges(slot, "c")
    assert abs(float(points.p @ tpm) - 2380.0) < 1e-6
    small = 0.9 * 400.0 / 2380.0
    refused = (small * 400.0 + 0.1 * 20200.0) / (small + 0.1)
    assert abs(float(refused_law(points.p, tpm) @ tpm) - refused) < 1e-6
    fm = fleet_models(wl, cycle_time(wl))
    fed = next(e for e in fm.entries if e.c.quota == "q2")
    middle = next(e for e in fm.entries if e.c.quota == "q1")
    n = 400.0
    # At 400 sessions: the calls past the middle level (all it is offered but its 10 a
    # minute) bring that many tokens each (the count from the first's own model, κ 0.28).
    per_call = fed.units_per_s(n) / (middle.units_per_s(n) - 10.0 / 60.0)
    assert abs(per_call - refused) < 1e-6 * refused, per_call


def test_calls_that_never_fit_spill_at_any_load() -> None:
    """A token bucket 16,667 tokens deep never admits a 20,200-token call (the limiter's
    retry-after is infinite), so a spilling deployment sends every one on at once,
    whatever the load: at 9 sessions (the bucket 60 % used) the next deployment's ITPM is
    offered 10 % of the route's calls at 20,000 prompt tokens each (the fluid load said 0:
    only the excess over the bucket's rate spilled)."""
    p = load_profile(DATA / "fleet-never-fits-bucket.yaml")
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    fm = fleet_models(wl, cyc)
    fed = next(e for e in fm.entries if e.c.quota == "q1")
    never = 0.1 * 9.0 / cyc.cycle_s * 20_000.0          # ITPM tokens/s
    assert abs(fed.units_per_s(9.0) - never) < 1e-9 * never, fed.units_per_s(9.0)


def test_never_fitting_calls_against_the_simulator() -> None:
    """Simulated N* 9 [8–9] (``capacity ceiling --seed 1``, 20 replications × 1 h). The
    bucket's level chain spills the never-fitting prompts alone, and the logs after it
    are charged for them as they charge those calls (20,000 ITPM tokens, then 20,200 TPM
    with max_tokens): 19 when they charged the route's mean call (the fluid cap), 31
    before the never-fit spill."""
    assert_accurate(analyze(load_profile(DATA / "fleet-never-fits-bucket.yaml")
                            ).burst_ceiling, _Recorded(9, 8, 9), "fleet-never-fits-bucket")
