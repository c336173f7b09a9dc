"""The analytic model of a fleet (capacity/analytic/fleet.py, the routing parts of
capacity/model/workload.py): weighted shares, per-turn crossing, spillover as the
overflow of a window limiter feeding the next one, fallback; `size` per deployment.

The spillover comparisons against the simulator run once the simulator routes (they
skip, naming why, while `capacity.sim.engine` still refuses a profile with routes).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.fleet import fleet_models, route_flows
from capacity.analytic.model import analyze, cycle_time
from capacity.errors import CapacityError
from capacity.model.dist import Distribution
from capacity.model.workload import (
    Batch,
    CallCost,
    MixedCost,
    Workload,
    batch_units_pmf,
    route_shares,
)
from capacity.profile.loader import load_profile
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.whatif.ceiling import size

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "profiles" / "web-research.yaml"
PTU = ROOT / "profiles" / "ptu-spillover.yaml"

# Two identical 150 RPM deployments behind one route: the model's own (web-research's
# quota `deployment`) and `west`, a copy of it with its own quota.
TWO = """
deployments:
  west: {model: gpt-4o, quotas: [west]}
quotas:
  west: {models: [west], rpm: 150, enforcement: {type: fixed_window, window: 10s},
         charge_max_tokens: true}
routes:
  gpt-4o: {policy: weighted, per_turn: PER_TURN, deployments: {gpt-4o: 1, west: 1}}
"""

# A priority route (a 10 s-window PTU-like deployment spilling to pay-as-you-go) with a
# fallback model: the coordinator's example fleet, written out so the test owns it.
SPILL = """
name: fleet-test
models:
  gpt-4o: {ttft: 0.5s, tokens_per_second: 50, max_tokens: 2000}
  mini: {ttft: 0.3s, tokens_per_second: 100, max_tokens: 1000}
deployments:
  ptu: {model: gpt-4o, quotas: [ptu]}
  paygo: {model: gpt-4o}
quotas:
  ptu: {models: [ptu], rpm: 100, enforcement: {type: fixed_window, window: 10s}}
  paygo: {models: [paygo], rpm: 300, tpm: 300000, charge_max_tokens: true}
  mini: {models: [mini], rpm: 500}
routes:
  gpt-4o:
    policy: priority
    deployments: [ptu, paygo]
    fallbacks: [mini]
cooldown: {}
session:
  think_time: {exponential: 60s}
  turns:
    t:
      steps:
        - call: {model: gpt-4o, input_tokens: 1000, output_tokens: 200}
"""


def _two(tmp_path: Path, per_turn: bool) -> Profile:
    f = tmp_path / f"two-{per_turn}.yaml"
    f.write_text(TWO.replace("PER_TURN", "true" if per_turn else "false"))
    return load_profile([WEB, f])


def _spill_profile(tmp_path: Path) -> Profile:
    f = tmp_path / "fleet.yaml"
    f.write_text(SPILL)
    return load_profile(f)


def test_fanout_thinning_is_binomial() -> None:
    """A fan-out of 3 copies each sent to a deployment with probability 1/4 charges it
    Binomial(3, 1/4) requests: the exact thinning of the batch."""
    call = object()
    cost = MixedCost("mixed", parts=((0.25, CallCost("requests")), (0.75, None)))
    batch = Batch(Distribution.fixed(3, "count"), (call,))  # type: ignore[arg-type]
    pmf = batch_units_pmf(batch, {id(call): cost}, 1.0)
    binom = [math.comb(3, k) * 0.25**k * 0.75 ** (3 - k) for k in range(4)]
    assert np.allclose(pmf, binom, atol=1e-15), (pmf, binom)
    assert cost.mean == 0.25 and cost.zero_share == 0.75 and cost.upper == 1.0


def test_two_weighted_deployments_double_the_mean_ceiling(tmp_path: Path) -> None:
    """Two identical deployments under `weighted` carry exactly twice the mean-value
    ceiling of one (web-research: 75 → 150 sessions), per call and per turn; each takes
    half of the calls; the burst-aware ceiling more than doubles the single one's by the
    smoother halves (81 per turn, 95 per call, against 42 for one deployment)."""
    one = analyze(load_profile(WEB))
    for per_turn, burst in ((True, 81), (False, 95)):
        two = analyze(_two(tmp_path, per_turn))
        ratio = two.mean_ceiling / one.mean_ceiling
        assert one.mean_ceiling == pytest.approx(75.0, rel=1e-12)
        assert ratio == pytest.approx(2.0, rel=1e-12), (one.mean_ceiling, two.mean_ceiling)
        rows = {c.name: c for c in two.constraints}
        assert set(rows) == {"deployment.rpm", "west.rpm"}
        assert rows["deployment.rpm"].burst_ceiling == rows["west.rpm"].burst_ceiling
        assert two.burst_ceiling == burst, (per_turn, two.burst_ceiling, one.burst_ceiling)
        assert two.burst_ceiling >= 1.9 * one.burst_ceiling
        shares = route_shares(two_profile := _two(tmp_path, per_turn))
        assert shares["gpt-4o"] == (("gpt-4o", 0.5), ("west", 0.5))
        wl = Workload.from_profile(two_profile)
        # per_turn crosses the turn mix with the choice: two turn types of weight 1/2.
        assert len(wl.turns) == (2 if per_turn else 1)
        assert math.fsum(t.probability for t in wl.turns) == pytest.approx(1.0)


def test_per_turn_is_burstier_than_per_call(tmp_path: Path) -> None:
    """Keeping a turn on one deployment sends its 3-way fan-out whole; per call the
    copies split binomially: the same mean, a lower window count variance, so the
    per-call ceiling is higher and its 429 share at equal N lower."""
    turn = analyze(_two(tmp_path, True), sessions=90)
    call = analyze(_two(tmp_path, False), sessions=90)
    assert turn.mean_ceiling == call.mean_ceiling
    assert call.burst_ceiling > turn.burst_ceiling
    lt = turn.binding.at_sessions.loss_fraction  # type: ignore[union-attr]
    lc = call.binding.at_sessions.loss_fraction  # type: ignore[union-attr]
    assert lc < lt, (lc, lt)


def test_unequal_weights_and_second_deployment_overlay(tmp_path: Path) -> None:
    """Weights 3:1 give shares 3/4 and 1/4: the busier deployment binds at 75/0.75 =
    100 sessions (mean). The shipped overlay (the model's own deployment plus a west
    one, per turn) keeps the answer of the old copied-turn form: 150 mean, 81 burst."""
    f = tmp_path / "w.yaml"
    f.write_text(TWO.replace("PER_TURN", "false").replace("{gpt-4o: 1, west: 1}",
                                                          "{gpt-4o: 3, west: 1}"))
    r = analyze(load_profile([WEB, f]))
    rows = {c.name: c for c in r.constraints}
    assert rows["deployment.rpm"].mean_ceiling == pytest.approx(100.0, rel=1e-12)
    assert rows["west.rpm"].mean_ceiling == pytest.approx(300.0, rel=1e-12)
    assert r.binding.name == "deployment.rpm"
    second = analyze(load_profile([WEB, ROOT / "examples/overlays/second-deployment.yaml"]))
    assert (math.floor(second.mean_ceiling), second.burst_ceiling) == (150, 81)


def test_a_route_of_one_deployment_is_the_unrouted_answer(tmp_path: Path) -> None:
    """`routes: {gpt-4o: {deployments: [gpt-4o]}}` changes nothing: same ceilings."""
    f = tmp_path / "r.yaml"
    f.write_text("routes:\n  gpt-4o: {deployments: [gpt-4o]}\n")
    plain = analyze(load_profile(WEB), sessions=40)
    routed = analyze(load_profile([WEB, f]), sessions=40)
    assert routed.mean_ceiling == plain.mean_ceiling
    assert routed.burst_ceiling == plain.burst_ceiling
    assert (routed.binding.at_sessions.loss_fraction  # type: ignore[union-attr]
            == plain.binding.at_sessions.loss_fraction)  # type: ignore[union-attr]


def test_policies_shares(tmp_path: Path) -> None:
    """round_robin splits equally; usage_based in proportion to capacity (a 150 RPM and
    a 50 RPM deployment: 3/4 and 1/4); least_busy in inverse proportion to latency."""
    f = tmp_path / "p.yaml"
    f.write_text(TWO.replace("PER_TURN", "false").replace(
        "west: {models: [west], rpm: 150", "west: {models: [west], rpm: 50").replace(
        "policy: weighted, per_turn: false", "policy: usage_based"))
    p = load_profile([WEB, f], ["quotas.deployment.rpm=150"])
    assert [round(s, 12) for _, s in route_shares(p)["gpt-4o"]] == [0.75, 0.25]
    rr = load_profile([WEB, f], ["routes.gpt-4o.policy=round_robin"])
    assert [s for _, s in route_shares(rr)["gpt-4o"]] == [0.5, 0.5]
    lb = load_profile([WEB, f], ["routes.gpt-4o.policy=least_busy"])
    assert [s for _, s in route_shares(lb)["gpt-4o"]] == pytest.approx([0.5, 0.5])
    # The notes say what the approximation is: least_busy a random split (conservative),
    # round_robin over unequal limits each deployment's one call in two.
    assert any("conservative" in n for n in analyze(lb).notes)
    assert any("one call in 2" in n for n in analyze(rr).notes)


def test_spillover_overflow_model(tmp_path: Path) -> None:
    """Priority ptu → paygo: ptu's rows report its spill share and never bind; paygo
    is fed by ptu's per-window overflow; the fleet's mean ceiling is the two
    capacities added (100 + 100 calls a minute, paygo's tpm at 3,000 tokens a call)."""
    p = _spill_profile(tmp_path)
    r = analyze(p, sessions=150)
    rows = {c.name: c for c in r.constraints}
    assert rows["ptu.rpm"].spill_to == "paygo" and not rows["ptu.rpm"].binding
    assert r.binding.name == "paygo.tpm"
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    per_min = 60.0 / cyc.cycle_s               # calls per session per minute
    assert rows["ptu.rpm"].mean_ceiling == pytest.approx(100 / per_min, rel=1e-9)
    assert r.mean_ceiling == pytest.approx(200 / per_min, rel=1e-6)
    # The spill share grows with N; below ptu's mean ceiling it is small.
    fm = fleet_models(wl, cyc)
    spill = fm.spill["gpt-4o"]
    s60, s150, s250 = spill(60), spill(150), spill(250)
    assert s60 < 0.01 < s150 < s250 < 1.0, (s60, s150, s250)
    # Fluid check: at 250 sessions ptu takes at most its 100 a minute.
    assert s250 >= 1.0 - 100 / (250 * per_min) - 0.02
    assert 0.0 < r.burst_ceiling < r.mean_ceiling
    assert any("spill to paygo" in n for n in r.notes)
    flows = route_flows(wl)
    assert flows[0].chain == ("ptu", "paygo") and flows[0].fallbacks == ("mini",)


def test_size_per_deployment_and_before_spillover(tmp_path: Path) -> None:
    """`size` on a fleet: each deployment's need; the first deployment of a priority
    route sized so that at most --max-spill of the calls spill at N."""
    p = _spill_profile(tmp_path)
    res = size(p, 150, max_spill=0.05)
    dims = {f"{d.quota}.{d.dimension}": d for d in res.dimensions}
    ptu = dims["ptu.rpm"]
    assert ptu.spill_to == "paygo"
    assert ptu.at_required is not None and ptu.at_required.loss_fraction <= 0.05
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    load = 150 * 60.0 / cyc.cycle_s
    assert 0.95 * load <= ptu.required_limit <= 1.6 * load, (ptu.required_limit, load)
    looser = {d.quota: d for d in size(p, 150, max_spill=0.25).dimensions}
    assert looser["ptu"].required_limit < ptu.required_limit
    tpm = dims["paygo.tpm"]
    assert tpm.at_required is not None and tpm.at_required.loss_fraction <= 0.01
    assert "max_spill_fraction" in res.to_dict()
    with pytest.raises(CapacityError):
        size(p, 150, max_spill=1.0)
    # Weighted: each identical deployment needs the same limit.
    two = {d.quota: d.required_limit for d in size(_two(tmp_path, False), 150).dimensions}
    assert two["deployment"] == two["west"] > 150


def test_size_of_a_pool_round_trips(tmp_path: Path) -> None:
    """usage_based over 150 + 75 RPM fills both together (one pooled window): `size`
    scales both limits by one factor; fed back, they carry the sessions, and one
    allowance less on each does not (150 sessions: 270 + 132 RPM, ceiling 151)."""
    f = tmp_path / "pool.yaml"
    f.write_text(TWO.replace("PER_TURN", "false"))
    sets = ["routes.gpt-4o.policy=usage_based", "quotas.west.rpm.limit=75"]
    p = load_profile([WEB, f], sets)
    assert "one pooled window" in " ".join(analyze(p).notes)
    res = size(p, 150)
    need = {d.quota: d.required_limit for d in res.dimensions}
    assert need == {"deployment": 270.0, "west": 132.0}, need
    back = analyze(load_profile([WEB, f], [*sets, *(d.set_path for d in res.to_raise)]))
    assert back.burst_ceiling >= 150
    less = analyze(load_profile([WEB, f], [*sets, "quotas.deployment.rpm.limit=264",
                                           "quotas.west.rpm.limit=126"]))
    assert less.burst_ceiling < 150


def test_sweep_reports_the_spill(tmp_path: Path) -> None:
    """`sweep` on a fleet: the binding constraint is one the client sees, each row has
    the route's spill share (growing with N; in the CSV as spill_fraction.<route>), and
    the utilisation of a fed deployment follows the burst model's overflow."""
    from capacity.whatif.sweep import sweep

    res = sweep(_spill_profile(tmp_path), [60, 140, 220])
    assert res.binding == "paygo.tpm"
    spills = [row.spill["gpt-4o"] for row in res.rows if row.spill is not None]
    assert len(spills) == 3 and spills[0] < spills[1] < spills[2]
    assert "spill_fraction.gpt-4o" in res.rows[0].flat()
    utils = [row.binding_utilisation for row in res.rows]
    assert utils[0] < utils[1] < utils[2] and utils[2] > 1.0
    assert [row.meets_targets for row in res.rows] == [True, True, False]


# ---------------------------------------------------------------------------------------
# Against the simulator (runs once the simulator routes)
# ---------------------------------------------------------------------------------------


def _simulator_routes(profile: Profile) -> None:
    from capacity.sim.engine import _compile

    try:
        _compile(profile)
    except CapacityError as e:
        if "does not support 'routes'" in str(e):
            pytest.skip(f"the simulator does not route yet: {e}")
        raise


# Tolerances of the overflow approximation (stated in the report): spill share within
# 0.06 absolute, N* within 15 %, fallback share within 0.002 — the analytic model has
# no cooldown, which moves the simulated spill by ~0.04 on the example fleet (LiteLLM's
# defaults cool ptu down when it turns away half of its calls); without cooldown the
# example agrees within 0.02 and 5 %.
TOLERANCES = {"fleet-example": (0.06, 0.15), "fleet-example-no-cooldown": (0.02, 0.05),
              "ptu-spillover": (0.06, 0.15),
              # Other enforcements, without cooldown: the receiver's (measured: analytic
              # N* 182 vs 184 simulated for a sliding paygo, 197 vs 210 for a bucket,
              # 167 vs 162 for 10 s windows) and a counted sliding ptu (121 vs 114: a
              # log that counts its rejections stays full, spill 0.694 vs 0.684).
              "paygo-sliding": (0.02, 0.10), "paygo-bucket": (0.02, 0.10),
              "paygo-10s": (0.02, 0.10), "ptu-sliding": (0.02, 0.10)}
FALLBACK_TOL = 0.002
_PAYGO = "paygo: {models: [paygo], rpm: 300, tpm: 300000, charge_max_tokens: true"
_PTU = "ptu: {models: [ptu], rpm: 100, enforcement: {type: fixed_window, window: 10s}}"
EDITS = {
    "paygo-sliding": (_PAYGO, _PAYGO + ", enforcement: {type: sliding_window, window: 60s}"),
    "paygo-bucket": (_PAYGO, _PAYGO + ", enforcement: {type: token_bucket, burst: 60s}"),
    "paygo-10s": (_PAYGO, _PAYGO + ", enforcement: {type: fixed_window, window: 10s}"),
    "ptu-sliding": (_PTU, _PTU.replace("fixed_window", "sliding_window")),
}


@pytest.mark.parametrize("which", sorted(TOLERANCES))
def test_spillover_against_the_simulator(tmp_path: Path, which: str) -> None:
    """The analytic spill share of the first deployment at N, its fallback share and
    the analytic N* against the simulator's (seeded, common settings)."""
    from capacity.whatif.ceiling import SimSettings, ceiling

    p = load_profile(PTU) if which == "ptu-spillover" else _spill_profile(tmp_path)
    if which in EDITS:
        f = tmp_path / f"{which}.yaml"
        old, new = EDITS[which]
        assert old in SPILL
        f.write_text(SPILL.replace(old, new))
        p = load_profile(f)
    if which.endswith("no-cooldown") or which in EDITS:
        p = p.model_copy(update={"cooldown": None})
    spill_tol, nstar_tol = TOLERANCES[which]
    _simulator_routes(p)
    from capacity.sim.engine import simulate

    wl = Workload.from_profile(p)
    cyc = cycle_time(wl)
    fm = fleet_models(wl, cyc)
    flow = next(f for f in fm.flows if f.chain)
    res = ceiling(p, "both", sim=SimSettings(seed=7, replications=8, horizon_s=1800.0))
    assert res.simulated is not None
    n_sim, n_an = res.simulated.n_star, res.burst_ceiling
    assert abs(n_an - n_sim) <= nstar_tol * n_sim, (which, n_an, n_sim)
    at = max(1, n_sim)
    sim = simulate(p, at, horizon_s=1800.0, replications=8, seed=11)
    spilled = sim.deployments[flow.chain[0]].spill_fraction.mean
    analytic = fm.spill[flow.logical](at)
    assert abs(analytic - spilled) <= spill_tol, (which, at, analytic, spilled)
    fell = sim.routing["fallback_fraction"].mean
    assert abs(fm.fallback[flow.logical](at) - fell) <= FALLBACK_TOL, (which, fell)


@pytest.mark.parametrize("per_turn", [True, False])
def test_weighted_against_the_simulator(tmp_path: Path, per_turn: bool) -> None:
    """Two weighted deployments: the analytic N* within 10 % of the simulated one
    (web-research, per turn and per call)."""
    from capacity.whatif.ceiling import SimSettings, ceiling

    p = _two(tmp_path, per_turn)
    _simulator_routes(p)
    res = ceiling(p, "both", sim=SimSettings(seed=7, replications=8, horizon_s=1800.0))
    assert res.simulated is not None
    n_sim, n_an = res.simulated.n_star, res.burst_ceiling
    assert abs(n_an - n_sim) <= 0.10 * n_sim, (per_turn, n_an, n_sim)


@pytest.mark.parametrize(("policy", "extra", "conservative"), [
    ("round_robin", [], False),
    ("usage_based", ["quotas.west.rpm.limit=75"], False),
    ("weighted", ["routes.gpt-4o.spillover=true"], False),
    ("least_busy", [], False),
    ("least_busy", ["quotas.west.rpm.limit=75"], True),
])
def test_other_policies_against_the_simulator(tmp_path: Path, policy: str,
                                              extra: list[str], conservative: bool) -> None:
    """Deployments that fill together meet one pooled window (round_robin over equal
    limits, usage_based, spillover): measured analytic vs simulated N* 106 vs 108,
    72 vs 73 (150 + 75 RPM), 106 vs 108; least_busy with equal latencies is an equal
    random split (95 vs 91): within 10 %. least_busy over unequal limits is smoother
    than the random equal split the model assumes: conservative (32 vs 36)."""
    from capacity.whatif.ceiling import SimSettings, ceiling

    f = tmp_path / "pol.yaml"
    f.write_text(TWO.replace("PER_TURN", "false"))
    p = load_profile([WEB, f], [f"routes.gpt-4o.policy={policy}", *extra])
    _simulator_routes(p)
    res = ceiling(p, "both", sim=SimSettings(seed=7, replications=8, horizon_s=1800.0))
    assert res.simulated is not None
    n_sim, n_an = res.simulated.n_star, res.burst_ceiling
    if conservative:
        assert n_an <= res.simulated.n_hi, (policy, n_an, n_sim)
    else:
        assert abs(n_an - n_sim) <= 0.10 * n_sim, (policy, n_an, n_sim)


@pytest.mark.parametrize(("counted", "low", "high"), [(True, -0.03, 0.05),
                                                      (False, -0.03, 0.03)])
def test_requests_bucket_first_deployment_against_the_simulator(
        counted: bool, low: float, high: float) -> None:
    """ptu-spillover with the PTU a 60 RPM token bucket, 10 s deep: above its refill a
    requests bucket that counts its rejections admits far less than its refill (each
    rejection takes the token being built), and what it sends on keeps all of the
    offered count's spread. Simulated N* 52 [51–53] counted, 67 [66–68] not; the
    analytic ceiling was 76 for both (fluid spill, thinned stream), now 54 and 68."""
    from capacity.profile.loader import profile_from_dict

    data = load_profile(ROOT / "profiles" / "ptu-spillover.yaml").model_dump(
        mode="json", exclude_none=True)
    data["quotas"]["ptu"] = {"models": ["ptu"], "rpm": 60, "rejected_count": counted,
                             "enforcement": {"type": "token_bucket", "burst": "10s"}}
    p = profile_from_dict(data)
    n_a = analyze(p).burst_ceiling
    sim = find_saturation(p, max(1, n_a - 15), n_a + 10, replications=20,
                          horizon_s=3600, seed=1)
    err = (n_a - sim.n_star) / sim.n_star
    assert low <= err <= high or sim.n_lo <= n_a <= sim.n_hi, (n_a, sim.n_star, sim.n_lo,
                                                                sim.n_hi)


def test_cooldown_note_only_with_a_cooldown() -> None:
    """The analytic notes say the cooldown is left out only when the profile has one."""
    plain = analyze(load_profile(PTU))
    cooled = analyze(load_profile(PTU, ["cooldown=on"]))
    assert not any("cooldown" in n for n in plain.notes)
    assert any("cooldown is not in the analytic model" in n for n in cooled.notes)
