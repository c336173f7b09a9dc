"""`capacity sensitivity`: which parameter moves the ceiling most, checked by hand on the
founding story's profile, every variant validated like user input, and the tornado."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capacity.cli.app import app
from capacity.errors import CapacityError, ParameterError
from capacity.model.dist import Distribution
from capacity.profile.loader import load_profile
from capacity.profile.schema import Profile
from capacity.whatif.ceiling import SimSettings
from capacity.whatif.sensitivity import (
    Parameter,
    SensitivityResult,
    Variation,
    move,
    parameters,
    parse_vary,
    scale_distribution,
    sensitivity,
    sensitivity_of_files,
)

from .conftest import ROOT

WEB = ROOT / "profiles" / "web-research.yaml"
TOOL = ROOT / "profiles" / "tool-agent.yaml"
FANOUT = "session.turns.research.steps.1.parallel.count"
WINDOW = "quotas.deployment.enforcement.window"
runner = CliRunner()


@pytest.fixture(scope="module", name="web")
def _web() -> SensitivityResult:
    return sensitivity_of_files([WEB])


def test_web_research_ranking_checked_by_hand(web: SensitivityResult) -> None:
    """The acceptance check: the window length and the fan-out rank above every token
    count, and the figures behind it are the ones worked out by hand.

    Hand check (profiles/web-research.yaml): the only quota is 150 requests per minute,
    enforced over 10 s windows of ⌊150·10/60⌋ = 25 requests; a turn makes 1 + 3 + 1 = 5
    calls, one turn every 150 s on average (cadence uniform 2–3 min).

    * Mean-value ceiling: 150 / (5 · 60/150) = 75 sessions.
    * Fan-out 3 → 3.6 (+20%): 5.6 calls per turn → 150·150/(5.6·60) = 66.96; 3 → 2.4:
      4.4 calls → 85.2. The fan-out moves the load itself, so every ceiling moves.
    * Window 10 s → 12 s / 8 s: the mean rate is unchanged (75), but a window holds 30 /
      20 requests instead of 25: longer windows absorb a turn's burst of 3 parallel calls
      better, so only the burst-aware ceiling moves (up / down).
    * Token counts and max_tokens: an RPM quota counts requests, not tokens, and with a
      cadence the turn length (p95 ≈ 99 s, below the shortest 120 s cadence) hardly
      sets the pace: only synthesis outputs raised 20% (up to 3,840 tokens at 35/s ≈
      110 s) let a rare turn outlast a short cadence, which lengthens the mean cycle
      and lifts the mean-value ceiling by 0.01 sessions. In the burst-aware model a
      call's length only shifts when the next stage's calls land (a session at most):
      every token row ranks below the window and the fan-out.
    """
    fan, win = web.row(FANOUT), web.row(WINDOW)
    assert web.base.mean_ceiling == pytest.approx(75.0)
    assert fan.up.figure is not None and fan.down.figure is not None
    assert fan.up.figure.mean_ceiling == pytest.approx(150 * 150 / (5.6 * 60))
    assert fan.down.figure.mean_ceiling == pytest.approx(150 * 150 / (4.4 * 60))
    assert fan.up.delta is not None and fan.up.delta < 0 < (fan.down.delta or 0)
    assert win.up.figure is not None and win.down.figure is not None
    assert win.up.figure.mean_ceiling == pytest.approx(75.0)
    assert win.down.figure.mean_ceiling == pytest.approx(75.0)
    assert (win.down.delta or 0) < 0 < (win.up.delta or 0)
    tokens = [r for r in web.rows if r.parameter.group in {"tokens", "max_tokens"}]
    assert len(tokens) == 3 * 2 + 3  # input and output of 3 calls, 3 max_tokens
    for r in tokens:
        assert r.swing is not None and r.swing <= 1, r.sentence()
        assert r.swing < (win.swing or 0) and r.swing < (fan.swing or 0)
        assert r.mean_swing < 0.05
        assert web.rank(WINDOW) < web.rank(r.parameter.key)
        assert web.rank(FANOUT) < web.rank(r.parameter.key)
    # The quota limit itself moves the ceiling in proportion: 150 → 180 rpm is 90 mean.
    rpm = web.row("quotas.deployment.rpm")
    assert rpm.up.figure is not None and rpm.up.figure.mean_ceiling == pytest.approx(90.0)
    assert "adds" in rpm.sentence() and "costs" in rpm.sentence()


def test_ranking_is_by_swing(web: SensitivityResult) -> None:
    """Rows are in decreasing order of the sessions they move the ceiling by."""
    swings = [r.swing or 0 for r in web.rows]
    assert swings == sorted(swings, reverse=True)
    assert swings[0] > 0


def test_every_parameter_kind_of_the_brief_is_varied() -> None:
    """Quota limits, windows, fan-out, loops, optional chances, tokens, max_tokens,
    pacing, latency, retries and the turn mix all appear for a profile that has them."""
    profile = load_profile([TOOL], ["quotas.project.rpm={limit: 5000, enforcement: "
                                    "{type: token_bucket, burst: 5s}}",
                                    "pacing.concurrency=40"])
    keys = {p.key: p for p in parameters(profile)}
    assert {"quotas.project.rpm", "quotas.project.tpm", "quotas.project.rpm.enforcement.burst",
            "quotas.project.tpm.enforcement.window", "session.think_time",
            "session.turns.task.weight", "session.turns.task.steps.1.repeat.count",
            "session.turns.task.steps.2.call.max_tokens", "retry.max_retries",
            "retry.initial_delay", "models.gpt-4.1.tokens_per_second",
            "pacing.concurrency"} <= set(keys)
    # The quota-level 1 s window still applies to project-mini's limits.
    assert "quotas.project-mini.enforcement.window" in keys
    assert keys["session.turns.task.steps.1.repeat.count"].group == "calls per turn"


def test_max_tokens_reservation_costs_sessions_on_a_tpm_bound_profile() -> None:
    """tool-agent reserves max_tokens against TPM: raising the answer's max_tokens lowers
    the ceiling, lowering it raises the ceiling, and the sentence says so."""
    key = "session.turns.task.steps.2.call.max_tokens"
    r = sensitivity_of_files([TOOL], vary=["*=off", f"{key}=±20%"])
    assert [row.parameter.key for row in r.rows] == [key]
    row = r.rows[0]
    assert row.up.figure is not None and row.down.figure is not None
    assert row.up.figure.mean_ceiling < r.base.mean_ceiling < row.down.figure.mean_ceiling
    assert row.up.move.setting == f"{key}=4915"  # 4096·1.2 rounded: a whole number
    assert "raising the answer max_tokens by 20% (4,096 tokens → 4,915 tokens)" in (
        row.sentence())


def test_user_overrides_apply_to_every_variant() -> None:
    """--set values are part of the baseline and of each variant (the quota doubled
    doubles the mean-value ceiling everywhere)."""
    r = sensitivity_of_files([WEB], ["quotas.deployment.rpm=300"],
                             vary=["*=off", f"{FANOUT}=+20%"])
    assert r.base.mean_ceiling == pytest.approx(150.0)
    up = r.rows[0].up.figure
    assert up is not None and up.mean_ceiling == pytest.approx(2 * 150 * 150 / (5.6 * 60))
    assert r.rows[0].down.skipped == "not asked for"


def test_invalid_variant_is_reported_not_computed() -> None:
    """A variant the loader rejects (8 s windows of 6 rpm admit ⌊0.8⌋ = 0 requests) is
    reported with the loader's rule; the other side is still computed."""
    r = sensitivity_of_files([WEB], ["quotas.deployment.rpm=6"], vary=["*=off",
                                                                        f"{WINDOW}=±20%"])
    row = r.rows[0]
    assert row.down.figure is None
    assert row.down.error is not None and "longer window" in row.down.error
    assert row.up.figure is not None and row.up.error is None
    assert "is not a valid profile" in row.sentence()


@pytest.mark.parametrize("raw", [
    {"uniform": [4000, 9000]}, {"exponential": 45}, {"lognormal": {"median": 500, "p95": 1500}},
    {"choice": {"values": [10, 20, 40], "weights": [1, 2, 1]}}, 1200,
])
@pytest.mark.parametrize("factor", [0.8, 1.2, 1.37])
def test_scaled_distribution_moves_the_mean_exactly(raw: Any, factor: float) -> None:
    """Every distribution kind, scaled, has its mean multiplied by exactly the factor."""
    d = Distribution.parse(raw, "tokens")
    scaled = Distribution.parse(scale_distribution(d, factor), "tokens")
    assert scaled.mean == pytest.approx(d.mean * factor, rel=1e-9)
    assert scaled.kind == d.kind


@pytest.mark.parametrize("raw", [3, {"uniform": [1, 4]},
                                 {"choice": {"values": [0, 1, 2, 3],
                                             "weights": [0.3, 0.35, 0.2, 0.15]}}])
@pytest.mark.parametrize("factor", [0.8, 1.2, 4 / 3])
def test_scaled_count_stays_whole_with_the_exact_mean(raw: Any, factor: float) -> None:
    """A fan-out or loop count scaled by 1.2 is a choice of whole numbers whose mean is
    1.2× the old one (3 → 3 or 4, 3.6 on average; ×4/3 → exactly 4)."""
    d = Distribution.parse(raw, "count")
    scaled = Distribution.parse(scale_distribution(d, factor), "count")
    assert scaled.mean == pytest.approx(d.mean * factor, rel=1e-9)
    values = scaled.values or scaled.params
    assert all(float(v).is_integer() for v in values)
    if raw == 3 and factor == 4 / 3:
        assert scale_distribution(d, factor) == {"fixed": 4}


def _param(value: float | Distribution, **kw: Any) -> Parameter:
    return Parameter("a.b", "thing", "other", value, kw.pop("kind", "number"), **kw)


def test_whole_number_settings_move_by_at_least_one() -> None:
    """Retries 2 ± 20% would round back to 2: they move to 1 and 3 instead."""
    p = _param(2, kind="count", integer=True)
    assert move(p, 1, Variation()).setting == "a.b=3"
    assert move(p, -1, Variation()).setting == "a.b=1"


def test_probability_is_capped_and_zero_refused() -> None:
    """A chance of 1 cannot rise; a value pushed to 0 is refused, not sent."""
    one = _param(1.0, kind="fraction")
    assert move(one, 1, Variation()).skipped is not None
    assert move(one, -1, Variation()).setting == "a.b=0.8"
    assert move(_param(0.9, kind="fraction"), 1, Variation()).setting == "a.b=1"
    assert move(_param(5.0), -1, Variation(5.0, 5.0, absolute=True)).skipped is not None


def test_absolute_change_moves_the_mean_by_that_much() -> None:
    """±1 on a fan-out of 3 gives 2 and 4; +2s on a uniform(2m, 3m) cadence gives a mean
    of 152 s."""
    fan = _param(Distribution.fixed(3, "count"), kind="count")
    assert move(fan, 1, parse_vary("x=±1")[1] or Variation()).setting == 'a.b={"fixed": 4}'
    assert move(fan, -1, parse_vary("x=±1")[1] or Variation()).setting == 'a.b={"fixed": 2}'
    cad = _param(Distribution.parse({"uniform": ["2m", "3m"]}, "duration"), kind="duration")
    m = move(cad, 1, parse_vary("x=+2s")[1] or Variation())
    assert m.value == pytest.approx(152.0)


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("quotas.q.rpm=±10%", "quotas.q.rpm", Variation(0.1, 0.1)),
    ("k=+-10%", "k", Variation(0.1, 0.1)),
    ("k=+50%", "k", Variation(None, 0.5)),
    ("k=-5%", "k", Variation(0.05, None)),
    ("*.max_tokens=±1", "*.max_tokens", Variation(1.0, 1.0, absolute=True)),
    ("k=+2s", "k", Variation(None, 2.0, absolute=True, timed=True)),
    ("k=±1.5m", "k", Variation(90.0, 90.0, absolute=True, timed=True)),
    ("k=off", "k", None),
])
def test_parse_vary(text: str, key: str, expected: Variation | None) -> None:
    """The --vary forms: relative both ways or one way, absolute with a unit, off."""
    assert parse_vary(text) == (key, expected)


@pytest.mark.parametrize("text", ["k", "=±1%", "k=", "k=20%", "k=±0%", "k=-100%",
                                  "k=±2parsecs", "k=±x%"])
def test_parse_vary_rejects(text: str) -> None:
    """Malformed --vary values are a user error naming the parameter (the CLI shows it as
    the flag)."""
    with pytest.raises(ParameterError, match=r"^vary") as e:
        parse_vary(text)
    assert e.value.param == "vary" and e.value.as_option().startswith("--vary ")


def test_vary_names_an_unknown_key() -> None:
    """A --vary key that is neither a parameter nor a number in the profile is refused."""
    with pytest.raises(CapacityError, match="no such key"):
        sensitivity_of_files([WEB], vary=["quotas.deployment.rpx=±10%"])
    with pytest.raises(CapacityError, match="no parameter matches"):
        sensitivity_of_files([WEB], vary=["*.nothing=±10%"])
    with pytest.raises(CapacityError, match="not a number"):
        sensitivity_of_files([WEB], vary=["retry.honour_retry_after=±10%"])


def test_vary_with_a_time_unit_moves_durations_only() -> None:
    """`quotas.deployment.rpm=±2s` moved 150 rpm by 2, the unit ignored; a pattern with a
    time unit moves the durations it matches."""
    with pytest.raises(CapacityError, match=re.escape(
            "quotas.deployment.rpm is a limit, not a duration: give the change without a "
            "time unit (±2) or relative (±10%)")):
        sensitivity_of_files([WEB], vary=["quotas.deployment.rpm=±2s"])
    r = sensitivity_of_files([WEB], vary=["*=±1s"])
    timed = {row.parameter.key: row.parameter.kind for row in r.rows
             if row.variation.absolute}
    assert timed and set(timed.values()) == {"duration"}, timed


def test_vary_adds_a_key_outside_the_defaults() -> None:
    """A numeric key the defaults leave out (the retry jitter) can be varied by name."""
    r = sensitivity_of_files([WEB], vary=["*=off", "retry.jitter=±50%"])
    assert [row.parameter.key for row in r.rows] == ["retry.jitter"]
    assert r.rows[0].up.move.setting == "retry.jitter=0.375"


def test_cli_table_json_and_tornado(tmp_path: Path) -> None:
    """The command prints the ranked table, --json the same result, and --plot draws the
    tornado in the format of the file's extension."""
    svg, png = tmp_path / "t.svg", tmp_path / "t.png"
    res = runner.invoke(app, ["sensitivity", str(WEB), "--plot", str(svg), "--json",
                              "--vary", "*tokens*=off", "--vary", "retry.*=off"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["method"] == "analytic" and data["base"]["sessions"] > 0
    keys = [row["parameter"]["key"] for row in data["rows"]]
    assert keys.index(FANOUT) < keys.index("models.gpt-4o.ttft")
    assert not any("tokens" in k and "max" not in k for k in keys)
    top = data["rows"][0]
    assert top["parameter"]["key"] == "quotas.deployment.rpm"
    assert top["up"]["set"] == "quotas.deployment.rpm.limit=180"
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "fan-out" in text
    res = runner.invoke(app, ["sensitivity", "web-research", "--plot", str(png), "--vary",
                              "*tokens*=off"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "synthesis fan-out" in res.stdout and "What moves it most" in res.stdout
    assert "costs" in res.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--vary", "nope=±10%"], "--vary 'nope'"),
    (["--vary", "k=lots"], "--vary"),
    (["--plot", "x.gif"], "--plot"),
    (["--set", "quotas.deployment.rpm=0"], "quotas.deployment.rpm"),
])
def test_cli_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    """Bad input: exit 2, one `error:` line naming the flag or key, nothing on stdout."""
    res = runner.invoke(app, ["sensitivity", str(WEB), *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert res.stdout == ""


def test_simulated_sensitivity_uses_one_seed_and_reproduces() -> None:
    """--method simulate: the baseline and every variant are simulated with the same seed
    (common random numbers), the top of the analytic ranking only, and a rerun with the
    seed gives the same result."""
    sim = SimSettings(seed=7, replications=4, horizon_s=900.0)

    def load(extra: Sequence[str]) -> Profile:
        return load_profile([WEB], list(extra))

    runs = [sensitivity(load, vary=[f"{WINDOW}=±20%"], method="simulate", sim=sim, top=2)
            for _ in range(2)]
    r = runs[0]
    assert r.to_dict() == runs[1].to_dict()
    assert r.method == "simulate" and r.seed == 7 and r.base.method == "simulate"
    assert r.base.ci is not None and r.base.ci[0] <= r.base.sessions <= r.base.ci[1]
    assert {row.parameter.key for row in r.rows} >= {WINDOW}
    assert len(r.rows) == 2 and len(r.unranked) > 5
    top = next(row for row in r.rows if row.parameter.key != WINDOW)
    # The analytic ranking's top: 20% slower generation puts the unthrottled p95 turn
    # (122.6 s) over web-research's 120 s latency target — no N meets it, in both models.
    assert top.parameter.key == "models.gpt-4o.tokens_per_second"
    assert top.swing and top.swing > 0


def test_a_model_name_with_a_dot_is_varied_through_its_section() -> None:
    """``gpt-4.1`` cannot be written in a dotted --set path: the variant restates the
    ``models`` section with the one value changed, and is loaded and computed."""
    key = "models.gpt-4.1.tokens_per_second"
    r = sensitivity_of_files([TOOL], vary=["*=off", f"{key}=±20%"])
    row = r.row(key)
    assert row.up.move.setting is not None and row.up.move.setting.startswith("models={")
    assert row.up.error is None and row.down.error is None
    assert row.up.figure is not None and row.down.figure is not None
    profile = load_profile([TOOL], [row.up.move.setting])
    assert profile.models["gpt-4.1"].tokens_per_second.mean == pytest.approx(96.0)
    assert profile.models["gpt-4.1-mini"] == load_profile([TOOL]).models["gpt-4.1-mini"]
