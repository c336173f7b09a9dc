"""The analytic model with session populations: N counts the varying sessions, the held
ones load every N alike; validated against the plain profile (copies of ``session``) and
against the simulator."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from capacity.analytic.model import analyze
from capacity.analytic.populations import view
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.whatif.ceiling import size
from capacity.whatif.sweep import sweep

from ._accuracy import assert_accurate
from .conftest import ROOT

WEB = ROOT / "profiles" / "web-research.yaml"
OVERLAY = ROOT / "tests" / "data" / "populations-overlay.yaml"


def _with(plain: Profile, populations: dict[str, dict[str, Any]]) -> Profile:
    """``plain`` plus populations that copy its session (with the keys given)."""
    d = plain.model_dump(mode="json", exclude_none=True)
    pops = {k: {**d["session"], **v} for k, v in populations.items()}
    return profile_from_dict({**d, "populations": pops})


def _shipped(name: str, sets: tuple[str, ...] = ()) -> Profile:
    return load_profile(ROOT / "profiles" / f"{name}.yaml", list(sets))


CASES = [
    ("web-research", ()),
    ("web-research", ("quotas.deployment.enforcement={type: token_bucket}",)),
    ("web-research", ("quotas.deployment.enforcement.type=sliding_window",)),
    ("tool-agent", ()),
    ("chat-assistant", ()),
]


@pytest.mark.parametrize(("name", "sets"), CASES)
def test_copies_of_session_give_the_plain_ceilings(name: str, sets: tuple[str, ...]) -> None:
    """A share of N in a population identical to ``session`` is the same load: the same
    mean-value ceiling and burst-aware ceiling on every constraint (fixed, sliding
    windows, token buckets; web-research 75 / 42; a non-binding constraint of thousands
    of sessions within the plain search's 0.2 %)."""
    plain = _shipped(name, sets)
    a = analyze(plain)
    for share in (0.5, 0.3):
        b = analyze(_with(plain, {"copy": {"share": share}}))
        assert b.mean_ceiling == pytest.approx(a.mean_ceiling, rel=1e-12)
        assert abs(b.burst_ceiling - a.burst_ceiling) <= 1, (share, a.burst_ceiling,
                                                             b.burst_ceiling)
        for ca, cb in zip(a.constraints, b.constraints, strict=True):
            assert ca.name == cb.name
            assert cb.mean_ceiling == pytest.approx(ca.mean_ceiling, rel=1e-12)
            # Above 500 sessions the plain search stops within 0.2 % (clumped._REL_TOL).
            assert abs(cb.burst_ceiling - ca.burst_ceiling) <= max(
                1, 0.002 * ca.burst_ceiling)


@pytest.mark.parametrize(("name", "sets"), CASES)
def test_held_copies_are_sessions_present_at_every_n(name: str, sets: tuple[str, ...]) -> None:
    """k held copies of ``session`` at N are N + k plain sessions: the mean-value ceiling
    is lower by exactly k, and the burst model's 429 share at N is the plain one at
    N + k (fixed and sliding windows, token buckets)."""
    plain = _shipped(name, sets)
    held = _with(plain, {"batch": {"sessions": 5}})
    a, b = analyze(plain), analyze(held)
    assert b.mean_ceiling == pytest.approx(a.mean_ceiling - 5, abs=1e-9)
    pv = view(held)
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload

    wl = Workload.from_profile(plain)
    cyc = cycle_time(wl)
    for c, cp in zip(pv.constraints(), wl.constraints, strict=True):
        if not pv.touches(c):
            continue
        ref = constraint_model(wl, cp, cyc.cycle_s, cyc.min_cycle_s)
        for n in (0, 7, 20):
            got = pv.model(c).stats(n).loss_fraction
            assert got == pytest.approx(ref.stats(n + 5).loss_fraction, rel=1e-6, abs=1e-12)


def test_twenty_held_sessions_against_the_simulator() -> None:
    """web-research beside 20 held copies: the mean-value ceiling falls by exactly 20
    (75 → 55), the burst-aware one from 42 to 22, the simulated N* from 42 to 21 [20–22]
    (seed 1): the analytic figure inside the simulated CI."""
    plain = load_profile(WEB)
    held = _with(plain, {"batch": {"sessions": 20}})
    a, b = analyze(plain), analyze(held)
    assert b.mean_ceiling == pytest.approx(a.mean_ceiling - 20, abs=1e-9)
    assert a.burst_ceiling - b.burst_ceiling == 20
    sim = find_saturation(held, 15, 30, replications=20, horizon_s=3600, seed=1)
    assert sim.n_lo <= b.burst_ceiling <= sim.n_hi, (b.burst_ceiling, sim.n_star,
                                                       sim.n_lo, sim.n_hi)


def test_mixed_populations_against_the_simulator() -> None:
    """The overlay (a 25 % chat share of N, 10 held batch sessions on a 5 s think time):
    mean-value (150 − held 41.75 RPM) / 1.725 RPM per session = 62.7; burst-aware 33
    against a simulated 33 [32–34] (seed 1) — inside the CI, as the README's accuracy
    table asks (within 3 % or inside the CI, never more than 5 % above it)."""
    p = load_profile([WEB, OVERLAY], ["populations.batch.sessions=10"])
    r = analyze(p)
    pv = view(p)
    batch = next(x for x in pv.parts if x.name == "batch")
    chat = next(x for x in pv.parts if x.name == "chat")
    held_rpm = 10 * 60 / batch.cycle.cycle_s
    per_session = 0.75 * 5 * 60 / 150 + 0.25 * 60 / chat.cycle.cycle_s
    assert r.mean_ceiling == pytest.approx((150 - held_rpm) / per_session, rel=1e-9)
    sim = find_saturation(p, 25, 40, replications=20, horizon_s=3600, seed=1)
    n = r.burst_ceiling
    assert_accurate(n, sim)


def test_held_sessions_alone_over_the_quota_give_zero() -> None:
    """The overlay as shipped: 40 batch sessions alone ask 111 % of 150 RPM — ceilings 0
    (a result with a note, not an error), and the 429 share at N = 0 is the held load's."""
    p = load_profile([WEB, OVERLAY])
    r = analyze(p)
    assert r.mean_ceiling == 0.0 and r.burst_ceiling == 0 and r.saturation_point == 0
    assert any("alone exceed deployment.rpm" in note for note in r.notes)
    assert r.binding.at_burst_ceiling is not None
    assert r.binding.at_burst_ceiling.loss_fraction > 0.01
    d = r.to_dict()
    assert d["populations"]["line"] == ("N = sessions of session + chat (shares 75/25 %); "
                                        "batch: 40 sessions held")
    assert "the held sessions alone already have" in d["summary"]


def test_sweep_and_size_count_the_held_sessions() -> None:
    """sweep's analytic column is the population model's (it ignored populations); its
    utilisation and size's napkin include the held load."""
    p = load_profile([WEB, OVERLAY], ["populations.batch.sessions=10"])
    pv = view(p)
    c = next(c for c in pv.constraints() if c.name == "deployment.rpm")
    s = sweep(p, [10, 30])
    for row in s.rows:
        assert row.analytic_429_fraction == pv.model(c).stats(row.sessions).loss_fraction
        assert row.binding_utilisation == pytest.approx(pv.load(c, row.sessions) / 2.5)
    plain = sweep(load_profile(WEB), [30])
    assert s.rows[1].analytic_429_fraction > plain.rows[0].analytic_429_fraction
    assert s.to_dict()["populations"]["populations"]["batch"]["sessions"] == 10
    z = size(p, 60)
    (d,) = z.dimensions
    assert d.mean_value_limit == pytest.approx(pv.load(c, 60) * 60)
    # The size found carries N = 60 at the target, one allowance less does not.
    assert d.at_required is not None and d.at_required.loss_fraction <= 0.01
    import dataclasses

    below = dataclasses.replace(c, limit=d.required_limit - 6)
    assert pv.model(below).stats(60).loss_fraction > 0.01
    assert "populations" in z.to_dict()


def test_cli_reports_what_n_counts() -> None:
    """`capacity ceiling` and `capacity sweep` say in one line what N counts, JSON too."""
    from typer.testing import CliRunner

    from capacity.cli.app import app

    runner = CliRunner()
    base = [str(WEB), str(OVERLAY), "--set", "populations.batch.sessions=10"]
    line = "N = sessions of session + chat (shares 75/25 %); batch: 10 sessions held"
    res = runner.invoke(app, ["ceiling", *base, "--method", "analytic"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert line in " ".join(res.stdout.split())
    res = runner.invoke(app, ["ceiling", *base, "--method", "analytic", "--json"],
                        catch_exceptions=False)
    d = json.loads(res.stdout)
    assert d["saturation_point"] == d["burst_ceiling"]
    assert d["populations"]["line"] == line
    assert math.isclose(d["populations"]["populations"]["chat"]["share"], 0.25)
    res = runner.invoke(app, ["sweep", *base, "--sessions", "10,30"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert line in " ".join(res.stdout.split())


def test_sensitivity_and_compare_vary_the_populations() -> None:
    """`capacity sensitivity` offers each population's size, pacing and tokens (keys
    under ``populations.``) and says what N counts; moving the held count moves the
    ceiling the way the model does; `compare` names what N counts per variant."""
    from capacity.whatif.ceiling import compare
    from capacity.whatif.sensitivity import parameters, sensitivity

    p = load_profile([WEB, OVERLAY], ["populations.batch.sessions=10"])
    keys = {x.key: x for x in parameters(p)}
    assert keys["populations.batch.sessions"].integer
    assert "populations.chat.share" in keys and "populations.batch.think_time" in keys
    assert ("populations.chat.turns.message.steps.0.call.input_tokens" in keys)
    assert keys["session.cadence"].label == "cadence"  # session's labels unchanged

    def load(extra: Any) -> Profile:
        return load_profile([WEB, OVERLAY], ["populations.batch.sessions=10", *extra])

    r = sensitivity(load, vary=["*=off", "populations.batch.sessions=±20%"])
    (row,) = r.rows
    down, up = row.sides
    assert (down.figure.sessions, up.figure.sessions) == (
        analyze(load(["populations.batch.sessions=8"])).burst_ceiling,
        analyze(load(["populations.batch.sessions=12"])).burst_ceiling)
    assert up.figure.sessions < r.base.sessions < down.figure.sessions
    assert any(n.startswith("N = sessions of session + chat") for n in r.notes)
    c = compare([("plain", load_profile(WEB)), ("mixed", p)])
    rows = c.to_dict()["variants"]
    assert "populations" not in rows[0] and rows[1]["populations"].endswith("10 sessions held")


def test_populations_on_a_routed_profile() -> None:
    """Weighted routes split each population's calls exactly as the fleet model does
    (second-deployment overlay, per turn and per call: copies give the plain 81 and 95,
    10 held copies lower the mean by 10)."""
    second = ROOT / "examples" / "overlays" / "second-deployment.yaml"
    for sets in ([], ["routes.gpt-4o.per_turn=false"]):
        plain = load_profile([WEB, second], sets)
        a = analyze(plain)
        b = analyze(_with(plain, {"copy": {"share": 0.5}}))
        h = analyze(_with(plain, {"held": {"sessions": 10}}))
        assert (b.mean_ceiling, b.burst_ceiling) == (a.mean_ceiling, a.burst_ceiling)
        assert h.mean_ceiling == pytest.approx(a.mean_ceiling - 10, abs=1e-9)
        assert not b.notes


def test_explain_shows_every_population() -> None:
    """`capacity explain` lists each population's turns and gives the mean-value ceiling
    in N that `capacity ceiling` gives (it showed session's alone: 75 beside a batch job)."""
    from capacity.whatif.explain import explain

    p = load_profile([WEB, ROOT / "examples" / "chat-and-batch.yaml"])
    e = explain(p)
    assert [t.turn for t in e.turns] == ["research", "batch/summarise", "chat/message"]
    (rate,) = e.rates
    assert rate.mean_ceiling == pytest.approx(analyze(p).mean_ceiling, rel=1e-12)
    assert e.to_dict()["populations"]["line"].endswith("batch: 10 sessions held")


def test_stability_note_and_cadence_range_with_populations() -> None:
    """The metastability check runs on the population mix (counted, retried sliding
    windows: unstable above 25 sessions plain and with copies, above 20 beside 5 held
    copies), and the cadence range varies session's cadence with the others as they are
    (5 held copies at a 150 s cycle: (150 − 10) / 2.5 = 56 at 2 min, 140 / (5/3) = 84 at
    3 min)."""
    plain = load_profile(WEB, ["quotas.deployment.enforcement.type=sliding_window",
                               "quotas.deployment.rejected_count=true"])
    a = analyze(plain)
    b = analyze(_with(plain, {"copy": {"share": 0.5}}))
    h = analyze(_with(plain, {"held": {"sessions": 5}}))

    def unstable(r: Any) -> int:
        (note,) = [n for n in r.notes if n.startswith("Unstable above")]
        return int(note.split()[2])

    assert unstable(a) == unstable(b) == 25 and unstable(h) == 20
    s = h.sensitivity
    assert s is not None and (s.low_s, s.high_s) == (120.0, 180.0)
    assert s.mean_ceiling_low == pytest.approx(56.0) and s.mean_ceiling_high == pytest.approx(84.0)
    assert s.burst_ceiling_low <= h.burst_ceiling <= s.burst_ceiling_high


@pytest.mark.parametrize(("name", "held", "expected"), [
    ("tool-agent", 4, (22, 22, 23)),        # project.tpm binds: token charges
    ("chat-assistant", 40, (215, 220, 222)),  # org.otpm, a token bucket
])
def test_token_quotas_with_populations_against_the_simulator(
        name: str, held: int, expected: tuple[int, int, int]) -> None:
    """A held copy of session plus a 30 % share of lighter users (think time Exp(300 s)):
    the burst-aware ceiling against the simulated N* (seed 1) within the README's
    accuracy target (within 3 % or inside the CI, never 5 % above): tool-agent 22 vs 22
    [22–23], chat-assistant 215 vs 220 [220–222] (−2.3 %)."""
    plain = _shipped(name)
    d = plain.model_dump(mode="json", exclude_none=True)
    light = {k: v for k, v in d["session"].items() if k not in ("think_time", "cadence")}
    p = _with(plain, {"held": {"sessions": held},
                      "light": {**light, "think_time": {"exponential": "300s"},
                                "share": 0.3, "cadence": None}})
    a = analyze(p)
    sim = find_saturation(p, max(1, a.burst_ceiling - 10), int(a.mean_ceiling) + 1,
                          replications=20, horizon_s=3600, seed=1)
    assert abs(a.burst_ceiling - expected[0]) <= 0.03 * expected[0]  # the figures above
    assert_accurate(a.burst_ceiling, sim, name)


def test_spilling_fleets_with_populations() -> None:
    """Spillover, fallback and pooled routes run the fleet model on one session of the
    population mix: copies of session give the plain fleet figures exactly (second
    deployment with spillover 106, held copies 96 = 106 − 10; ptu-spillover 87), and on
    ptu-spillover beside the overlay's chat share and 10 held batch sessions the
    analytic ceiling is within the target's reach of the simulator (110 vs 113 [111–115],
    seed 1; 98 before the fleet model took a near-empty bucket to turn the large calls
    away; the mix's single mean cycle makes the short batch cycles burstier than they
    are: conservative)."""
    second = ROOT / "examples" / "overlays" / "second-deployment.yaml"
    plain = load_profile([WEB, second], ["routes.gpt-4o.per_turn=false",
                                         "routes.gpt-4o.spillover=true"])
    a = analyze(plain)
    b = analyze(_with(plain, {"copy": {"share": 0.5}}))
    h = analyze(_with(plain, {"held": {"sessions": 10}}))
    assert (b.mean_ceiling, b.burst_ceiling) == (a.mean_ceiling, a.burst_ceiling)
    assert h.burst_ceiling == a.burst_ceiling - 10
    assert h.mean_ceiling == pytest.approx(a.mean_ceiling - 10, abs=1e-9)
    assert any(n.startswith("Fleet with populations") for n in h.notes)
    ptu = load_profile(ROOT / "profiles" / "ptu-spillover.yaml")
    assert analyze(_with(ptu, {"copy": {"share": 0.5}})).burst_ceiling == \
        analyze(ptu).burst_ceiling
    mixed = load_profile([ROOT / "profiles" / "ptu-spillover.yaml", OVERLAY],
                         ["populations.batch.sessions=10"])
    r = analyze(mixed)
    sim = find_saturation(mixed, max(1, r.burst_ceiling - 15), int(r.mean_ceiling) + 1,
                          replications=20, horizon_s=3600, seed=1)
    assert 0.85 * sim.n_star <= r.burst_ceiling <= sim.n_hi, (r.burst_ceiling, sim.n_star,
                                                            sim.n_lo, sim.n_hi)


def test_sweep_and_size_of_a_spilling_fleet_with_populations() -> None:
    """sweep and size of ptu-spillover beside populations use the same mixed-session
    fleet model as ceiling: a spill column per priority route, the first deployment sized
    for its spill share (--max-spill) with the held sessions in the load."""
    p = load_profile([ROOT / "profiles" / "ptu-spillover.yaml", OVERLAY],
                     ["populations.batch.sessions=10"])
    s = sweep(p, [60, 100])
    assert all(row.spill and 0.0 < row.spill["gpt-4o"] < 1.0 for row in s.rows)
    assert s.rows[0].spill["gpt-4o"] < s.rows[1].spill["gpt-4o"]
    assert s.rows[0].analytic_429_fraction < s.rows[1].analytic_429_fraction
    z = size(p, 150)
    assert z.max_spill is not None and any(d.spill_to for d in z.dimensions)
    assert "populations" in z.to_dict()
