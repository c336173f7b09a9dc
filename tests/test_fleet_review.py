"""Review of the fleet (routing) work: defects a demanding user hit, each pinned by a test.

Fast: analytic answers, one short simulation, one mock on 127.0.0.1 port 0 (always
stopped) driven by raw HTTP (the hostile header is the point, so no SDK sets it).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from capacity import Profile, profile_from_dict
from capacity.errors import CapacityError
from capacity.profile.loader import load_profile

PTU = str(Path(__file__).resolve().parents[1] / "profiles" / "ptu-spillover.yaml")


def _ptu(overrides: list[str]) -> Profile:
    return load_profile([PTU], overrides=overrides)


# -- a fleet no quota can refuse: one clear line, not a made-up ceiling ------------------


@pytest.mark.parametrize("overrides", [
    # priority spillover onto a deployment no quota covers: the client never sees a 429
    ["deployments.free={model: gpt-4o, quotas: []}", "routes.gpt-4o.deployments=[ptu, free]"],
    # a route listing the models directly (no quota lists the model names)
    ["routes.gpt-4o.deployments=[gpt-4o, gpt-4o-mini]"],
    # a weighted route whose only chosen deployment (the other has weight 0) is unlimited
    ["routes.gpt-4o.policy=weighted", "routes.gpt-4o.deployments={ptu: 0, free: 1}",
     "deployments.free={model: gpt-4o, quotas: []}"],
])
def test_unrefusable_fleet_is_one_clear_error(overrides: list[str]) -> None:
    """Before: validate said ok, `ceiling --method analytic` printed 'Saturation point:
    1,000,000 sessions (mini.rpm binds first)' for a quota that gets no load, and
    `ceiling --method both` died with OverflowError (float infinity to integer)."""
    with pytest.raises(CapacityError) as e:
        _ptu(overrides)
    msg = str(e.value)
    assert "routes.gpt-4o.deployments" in msg and "no call can ever be answered 429" in msg


def test_partly_unlimited_fleet_still_loads() -> None:
    """Not over-eager: without spillover an unlimited second deployment is never used by
    priority, and a weighted route with one limited deployment can refuse."""
    free = ["deployments.free={model: gpt-4o, quotas: []}",
            "routes.gpt-4o.deployments=[ptu, free]"]
    _ptu([*free, "routes.gpt-4o.spillover=false"])
    _ptu([*free, "routes.gpt-4o.policy=weighted", "routes.gpt-4o.spillover=false"])


def test_unrefusable_fleet_cli_exit_2(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from capacity.cli.app import app

    res = CliRunner().invoke(app, ["ceiling", PTU, "--method", "both", "--seed", "1",
                                   "-q", "--set", "deployments.free={model: gpt-4o, "
                                   "quotas: []}", "--set",
                                   "routes.gpt-4o.deployments=[ptu, free]"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "no call can ever be answered 429" in res.output


# -- size --method simulate checks the configuration it recommends ----------------------


def test_size_simulation_keeps_the_first_priority_deployment_as_is() -> None:
    """`size` recommends raising only the deployments after a priority route's first one
    (`set` = paygo.rpm) and reports the first one's --max-spill size beside. Before, the
    simulation that confirms the answer ran with the first one raised too (ptu 3-5x), so
    it confirmed a configuration nobody was told to buy: ~3% of calls spilled instead of
    ~half, and paygo at the analytic 162 RPM carried only ~95 of the 100 sessions."""
    from capacity.whatif.ceiling import SimSettings, size

    prof = _ptu([])
    res = size(prof, 100, method="simulate",
               sim=SimSettings(seed=1, replications=2, horizon_s=600.0))
    assert res.simulated is not None
    assert [f"{d.quota}.{d.dimension}" for d in res.to_raise] == ["paygo.rpm"]
    ptu = {d.dimension: d for d in res.dimensions if d.quota == "ptu"}
    # The first deployment keeps its analytic --max-spill size (not scaled) ...
    assert all(d.required_limit == d.analytic_limit for d in ptu.values())
    # ... and the simulated fleet is the current PTU: a large share of calls spill.
    assert res.simulated.routing["spill_fraction"].mean > 0.2


# -- the gateway reads x-stainless-retry-count monotonically -----------------------------


def _tiny_fleet() -> Profile:
    win = {"type": "fixed_window", "window": "60s"}
    fast = {"ttft": "10ms", "tokens_per_second": 1000, "max_tokens": 64}
    return profile_from_dict({
        "name": "retry-count",
        "models": {"big": fast, "small": fast},
        "deployments": {"ptu": {"model": "big", "quotas": ["ptu"]},
                        "paygo": {"model": "big", "quotas": ["paygo"]},
                        "mini": {"model": "small", "quotas": ["mini"]}},
        "quotas": {"ptu": {"models": ["ptu"], "rpm": 1, "enforcement": win},
                   "paygo": {"models": ["paygo"], "rpm": 1, "enforcement": win},
                   "mini": {"models": ["mini"], "rpm": 100, "enforcement": win}},
        "routes": {"gpt": {"policy": "priority", "deployments": ["ptu", "paygo"],
                           "fallbacks": ["mini"]}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [
            {"call": {"model": "gpt", "input_tokens": 100, "output_tokens": 5}}]}}},
        "retry": {"max_retries": 2},
    }, "retry-count.yaml")


def _post(url: str, retry_count: str | None) -> tuple[int, dict[str, str]]:
    body = json.dumps({"model": "gpt", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 5}).encode()
    headers = {"content-type": "application/json"}
    if retry_count is not None:
        headers["x-stainless-retry-count"] = retry_count
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_gateway_huge_retry_count_is_a_last_attempt() -> None:
    """With both deployments full, the client's last attempt (retry count ≥ max_retries)
    falls back to mini: 2, 5 and 99999 do; 100000 (and any longer count) got the 429 of a
    first attempt — the answer flipped with the number of digits."""
    from capacity.limits import ManualClock
    from tests.serve_support import serving

    with serving(_tiny_fleet(), clock=ManualClock(0.0), time_scale=60_000) as srv:
        assert _post(srv.url, None)[0] == 200   # ptu's one request
        assert _post(srv.url, None)[0] == 200   # spilled to paygo's one
        assert _post(srv.url, "0")[0] == 429    # a first attempt: both refuse
        for rc in ("2", "99999", "100000", "1" + "0" * 30):
            status, headers = _post(srv.url, rc)
            assert (status, headers.get("x-capacity-deployment")) == (200, "mini"), rc


# -- cooldown counts an outcome learnt late instead of wiping the window ----------------


def test_cooldown_record_out_of_time_order_keeps_the_window() -> None:
    """The load generator records a call's outcome at its send time once the answer is
    back (fleet.md §5), so an admitted call sent at 59 s whose answer came at 65 s is
    recorded after the 429s of calls sent at 61-64 s. Before, that record reset the
    deployment's counters to the older minute and the next failure reset them again, so
    five failures of six never cooled the deployment down (the simulator's in-order
    records would have)."""
    from capacity.model.routing import Cooldown, Deployment, Route, Router

    r = Router([Route("m", (Deployment("a", "x"), Deployment("b", "x")))],
               Cooldown(threshold=0.5, min_calls=5, window_s=60.0, cooldown_s=5.0))
    for t in (61.0, 62.0, 63.0, 64.0):
        r.record("a", t, failed=True)
    r.record("a", 59.0, failed=False)  # sent at 59 s, answered (admitted) at 65 s
    r.record("a", 66.0, failed=True)
    assert r.cooling("a", 66.5)
    # In time order nothing changed: a new minute still starts afresh.
    r.record("a", 121.0, failed=True)
    assert r._health["a"].calls == 1


# -- the simulated search is not capped by a model that leaves spillover out -------------


def test_simulated_ceiling_not_capped_below_unmodelled_spillover() -> None:
    """The profile's own 'Try:' line, `--set routes.gpt-4o.policy=weighted` (the file keeps
    `spillover: true`): the analytic model leaves a weighted route's spillover out (its
    mean ceiling, 40.2, is the static split's), and the simulated search was capped at
    mean / (1 − target) = 41, printing 'Saturation point: 41 sessions (simulated)' — a
    lower bound — where the simulator carries ~60 with spills moving refused calls on."""
    from capacity.whatif.ceiling import SimSettings, ceiling

    prof = _ptu(["routes.gpt-4o.policy=weighted"])
    res = ceiling(prof, "both", sim=SimSettings(seed=1, replications=3, horizon_s=1200.0))
    assert res.mean_ceiling < 41
    sat = res.simulated
    assert sat is not None and not sat.capped
    assert sat.n_star >= 45


# -- explain says which rows a fleet feeds by spillover or fallback ----------------------


def test_explain_marks_fed_deployments() -> None:
    """Before, ptu-spillover's explain listed 'paygo.rpm 2.8 per turn' and 'mini.rpm 2.2
    per turn' as what one session spends, with nothing saying that these are the fluid
    model's sends at each one's own mean ceiling (at 50 sessions a session sends mini
    nothing): the rows are marked and the legend says what they are."""
    from rich.console import Console

    from capacity.render.report import explain_renderable
    from capacity.whatif.explain import explain

    r = explain(_ptu([]))
    fed = {f"{s.quota}.{s.dimension}": s.fed_by for s in r.rates}
    assert fed == {"ptu.itpm": None, "ptu.otpm": None, "paygo.rpm": "spillover",
                   "mini.rpm": "fallback"}
    rows = {x["quota"]: x for x in r.to_dict()["rates"]}
    assert rows["mini"]["fed_by"] == "fallback" and "fed_by" not in rows["ptu"]
    con = Console(width=100, record=True, file=io.StringIO())
    con.print(explain_renderable(r))
    text = con.export_text()
    assert "paygo.rpm (fed)" in text and "own mean ceiling" in text
    # Unrouted profiles: no new key, no mark.
    plain = explain(load_profile([str(Path(PTU).with_name("web-research.yaml"))]))
    assert all("fed_by" not in x for x in plain.to_dict()["rates"])


# -- a deployment in the middle of a priority chain ---------------------------------------

WEST = ["deployments.west={model: gpt-4o, quotas: [west]}",
        "quotas.west={models: [west], rpm: 100, enforcement: {type: fixed_window, "
        "window: 10s}}",
        "routes.gpt-4o.deployments=[ptu, paygo, west]"]


def test_middle_of_a_priority_chain_fills_where_it_did_as_the_last() -> None:
    """ptu → paygo → west: paygo receives ptu's overflow exactly as in ptu → paygo, so it
    fills at the same N (140.1; 135.3 before a near-empty bucket's size bias was taken
    from how long its level stays short of a call). Before, its mean-value ceiling
    printed '∞' (the linear napkin of a first deployment applied to a fed one: no load
    at N = 1), explain gave it
    0 per turn, and size sized it as if it were the first deployment with the static
    split's share (120 RPM for 120 sessions, below the 131 its overflow alone needs)."""
    from capacity.analytic.model import analyze
    from capacity.whatif.ceiling import size
    from capacity.whatif.explain import explain

    two = {f"{c.quota}.{c.dimension}": c for c in analyze(_ptu([])).constraints}
    three = {f"{c.quota}.{c.dimension}": c for c in analyze(_ptu(WEST)).constraints}
    assert three["paygo.rpm"].spill_to == "west"
    assert three["paygo.rpm"].mean_ceiling == pytest.approx(two["paygo.rpm"].mean_ceiling)
    assert three["paygo.rpm"].units_per_minute_per_session > 0
    rates = {f"{s.quota}.{s.dimension}": s for s in explain(_ptu(WEST)).rates}
    assert rates["paygo.rpm"].fed_by == "spillover"
    assert rates["paygo.rpm"].mean_ceiling == pytest.approx(140.1, abs=0.1)
    res = size(_ptu(WEST), 120)
    paygo = next(d for d in res.dimensions if d.quota == "paygo")
    assert paygo.spill_to == "west" and paygo.required_limit >= paygo.mean_value_limit
    assert "each priority deployment receives" in res.summary()


# -- fit on the mock's own request log of a fleet -----------------------------------------


def _mock_style_log(path: Any) -> None:
    """A request log as `capacity serve --log` writes it on a fleet: each line names the
    DEPLOYMENT that answered (ptu, or paygo after a spill), not the logical model."""
    lines = []
    for s in range(8):
        for t in range(4):
            t0 = 1.0e9 + s * 7.0 + t * 150.0
            calls = [("query-analysis", "ptu", 1200, 150, 400, 0.0, 4.0)]
            calls += [("synthesis", "ptu" if (s + t + k) % 3 else "paygo", 6000 + 500 * k,
                       2000 + 100 * k, 4000, 4.5, 60.0 + k) for k in range(3)]
            calls += [("follow-up-classifier", "ptu", 900, 20, 50, 70.0, 71.0)]
            for name, dep, inp, out, mt, a, b in calls:
                lines.append(json.dumps({
                    "session": f"s{s}", "turn": str(t), "start": t0 + a, "end": t0 + b,
                    "model": dep, "input_tokens": inp, "output_tokens": out,
                    "max_tokens": mt, "name": name, "ttft": 0.6}))
    path.write_text("\n".join(lines) + "\n")


def test_fit_mock_log_of_a_fleet_with_quota_from(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from capacity.cli.app import app

    trace = tmp_path / "mock.jsonl"
    _mock_style_log(trace)
    out = tmp_path / "fitted.yaml"
    res = CliRunner().invoke(app, ["fit", str(trace), "--quota-from", PTU, "-o", str(out)])
    assert res.exit_code == 0, res.output
    prof = load_profile([str(out)])
    assert prof.deployments and set(prof.quotas) == {"ptu", "paygo", "mini"}


# -- a quota naming a deployment whose explicit `quotas` leaves it out --------------------


@pytest.mark.parametrize("quotas", ["[mini]", "[]"])
def test_quota_naming_a_deployment_that_excludes_it(quotas: str) -> None:
    """quotas.paygo.models says [paygo] while deployments.paygo.quotas (explicit) leaves
    'paygo' out: the explicit list wins, so the paygo quota silently charged nothing and
    vanished from every table (ceiling printed ptu and mini rows only)."""
    with pytest.raises(CapacityError) as e:
        _ptu([f"deployments.paygo.quotas={quotas}"])
    msg = str(e.value)
    assert "ptu-spillover.yaml:" in msg and "quotas.paygo.models[0]" in msg
    assert "charge nothing" in msg


def test_max_spill_takes_a_percentage() -> None:
    """``--max-spill 5%`` is ``--max-spill 0.05`` (the help and the output speak in
    percent); anything else is one clear line naming the option, exit 2."""
    import subprocess
    import sys

    def run(value: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "capacity", "size", "ptu-spillover", "--sessions", "100",
             "--method", "analytic", "--json", f"--max-spill={value}"],
            capture_output=True, text=True, timeout=120)

    pct, frac = run("5%"), run("0.05")
    assert pct.returncode == frac.returncode == 0, (pct.stderr, frac.stderr)
    assert json.loads(pct.stdout) == json.loads(frac.stdout)
    assert json.loads(pct.stdout)["max_spill_fraction"] == pytest.approx(0.05)
    for bad in ("5x", "150%"):
        r = run(bad)
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(err) == 1 and "--max-spill" in err[0], r.stderr
        assert "Traceback" not in r.stderr
