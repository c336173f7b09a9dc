"""What-if commands: size (round trip), check (exit codes), compare, presets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capacity import ProfileError, load_profile
from capacity.analytic.model import analyze
from capacity.whatif.ceiling import ceiling, check, size

from .conftest import PROFILES

runner = CliRunner()


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from capacity.cli.app import app

    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("path", "sessions"), [(p, n) for p in PROFILES for n in (20, 400)],
                         ids=lambda x: getattr(x, "name", str(x)))
def test_size_round_trip(path: Path, sessions: int) -> None:
    """The quota `size` returns, fed back with --set, carries the requested sessions."""
    result = size(load_profile(path), sessions)
    sets = [d.set_path for d in result.to_raise]
    after = analyze(load_profile(path, sets))
    assert after.saturation_point >= sessions
    # Minimal: one unit less on a raised dimension no longer carries them — when one quota
    # is raised. Several quotas share the target (their 429 shares of all attempts add
    # up) and are each sized for a part of it, so one of them alone may then give a unit.
    if len({d.quota for d in result.to_raise}) > 1:
        return
    for d in result.to_raise:
        if d.enforcement == "token_bucket":
            continue  # continuous search, resolved to 0.1%
        less = [s for s in sets if not s.startswith(f"quotas.{d.quota}.{d.dimension}.")]
        # Requests are exact; tokens are resolved on a lattice of ~2,000 points per window.
        step = d.required_limit - 1 if d.unit == "requests" else d.required_limit * 0.995
        fewer = analyze(load_profile(path, [*less, f"quotas.{d.quota}.{d.dimension}.limit="
                                                   f"{step:g}"]))
        assert fewer.saturation_point < sessions or fewer.binding.name != (
            f"{d.quota}.{d.dimension}")


def test_size_no_raise_when_enough(web_research: Path) -> None:
    """Asking for fewer sessions than the ceiling needs no raise."""
    result = size(load_profile(web_research), 10)
    assert result.to_raise == []
    assert "already carry" in result.summary()


def test_size_cli_json(web_research: Path) -> None:
    """`size --json` names what to raise and the --set to apply."""
    res = _cli("size", str(web_research), "--sessions", "100", "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["raise"] == ["deployment.rpm"]
    assert data["set"][0].startswith("quotas.deployment.rpm.limit=")
    assert data["dimensions"][0]["required_limit"] > data["dimensions"][0]["mean_value_limit"]


def test_size_factor_groups_its_thousands(web_research: Path) -> None:
    """A raise of a million times reads 1,349,664.60× (table and sentence), not a run of
    digits to count."""
    res = _cli("size", str(web_research), "--sessions", "100000000", "--method", "analytic")
    assert res.exit_code == 0, res.output
    factors = re.findall(r"([\d,]+\.\d\d)×", res.stdout)
    assert len(factors) == 2 and all(f.count(",") == 2 for f in factors), res.stdout


def test_check_exit_codes(web_research: Path) -> None:
    """check exits 0 when the ceiling reaches the target, 1 when it does not."""
    ceiling = analyze(load_profile(web_research)).burst_ceiling
    ok = _cli("check", str(web_research), "--sessions", str(ceiling))
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.stdout
    bad = _cli("check", str(web_research), "--sessions", str(ceiling + 1))
    assert bad.exit_code == 1
    assert "FAIL" in bad.stdout and "margin -1" in bad.stdout
    mean = _cli("check", str(web_research), "--sessions", "75", "--method", "mean", "--json")
    assert mean.exit_code == 0
    assert json.loads(mean.stdout)["margin"] == 0


def test_check_simulate_on_an_unsimulated_result_is_labelled_analytic(
        web_research: Path) -> None:
    # A library caller asking for the simulated ceiling of a result that has none gets
    # the burst-aware figure labelled as such (the CLI relabelled it; callers did not).
    result = ceiling(load_profile(web_research), "analytic")
    assert result.simulated is None
    checked = check(result, 1, "simulate")
    assert checked.method == "analytic" and checked.ceiling == result.burst_ceiling
    assert check(result, 1, "mean").method == "mean"


def test_check_bad_profile_is_2_not_1(tmp_path: Path) -> None:
    """A broken profile is exit 2, distinct from a failed check."""
    bad = tmp_path / "b.yaml"
    bad.write_text("models: [\n")
    res = runner.invoke(__import__("capacity.cli.app").cli.app.app,
                        ["check", str(bad), "--sessions", "5"])
    assert res.exit_code == 2


def test_compare_scenarios_and_overlays(tmp_path: Path, web_research: Path) -> None:
    """compare puts the baseline first and reports changes against it."""
    overlay = tmp_path / "double.yaml"
    overlay.write_text("quotas:\n  deployment:\n    rpm: 300\n")
    res = _cli("compare", str(web_research), str(overlay), "--scenario",
               "one-second:quotas.deployment.enforcement.window=1s", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["variants"]
    assert [r["name"] for r in rows] == ["web-research", "double", "one-second"]
    assert rows[0]["change_sessions"] == 0
    assert rows[1]["mean_ceiling"] == pytest.approx(2 * rows[0]["mean_ceiling"])
    assert rows[1]["change_sessions"] > 0
    assert rows[2]["burst_ceiling"] < rows[0]["burst_ceiling"]
    table = _cli("compare", str(web_research), "--scenario", "x:quotas.deployment.rpm=300")
    assert "change" in table.stdout


@pytest.mark.parametrize("other", ["tool-agent", "ptu-spillover"])
def test_compare_of_two_whole_profiles_says_what_to_pass(other: str) -> None:
    """A second whole profile is no overlay: merged key by key over the first, tool-agent
    failed on a mixed session ("give exactly one of 'think_time' (closed loop) or
    'cadence'", at tool-agent.yaml:45) and ptu-spillover was compared as a mix of both."""
    import subprocess
    import sys

    from capacity.profile.shipped import resolve

    r = subprocess.run([sys.executable, "-m", "capacity", "compare", "web-research", other],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert r.stderr.splitlines() == [
        f"error: {resolve(other)}: a whole profile, not an overlay of "
        f"{resolve('web-research')}: merged key by key the two would mix; pass only what "
        "changes (an overlay, --set or --scenario), or run `capacity ceiling` on each "
        "profile"], r.stderr


def test_compare_of_a_changed_copy_of_the_baseline(tmp_path: Path) -> None:
    """A copy of the baseline with one value changed is a whole profile too, but merged
    over the baseline it is itself (nothing mixes): compared, not refused."""
    from capacity.profile.shipped import resolve

    text = resolve("web-research").read_text()
    assert "max_429_fraction: 0.01" in text
    copy = tmp_path / "looser.yaml"
    copy.write_text(text.replace("max_429_fraction: 0.01", "max_429_fraction: 0.05"))
    res = _cli("compare", "web-research", str(copy), "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["variants"]
    assert [r["name"] for r in rows] == ["web-research", "looser"]
    assert rows[1]["burst_ceiling"] > rows[0]["burst_ceiling"]


def test_compare_bad_scenario(web_research: Path) -> None:
    """A malformed --scenario is a usage error (exit 2)."""
    from capacity.cli.app import app

    res = runner.invoke(app, ["compare", str(web_research), "--scenario", "nocolon"])
    assert res.exit_code == 2


def test_azure_preset_derives_rpm(tmp_path: Path) -> None:
    """azure-standard: RPM = 6 per 1,000 TPM, 10 s RPM windows, 60 s TPM counter."""
    path = tmp_path / "az.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 50}}\n"
        "quotas: {dep: {preset: azure-standard, models: [m], tpm: 25000}}\n"
        "session: {cadence: 150s, turns: {t: {steps: [{call: {model: m, input_tokens: 100, "
        "output_tokens: 50, max_tokens: 100}}]}}}\n")
    q = load_profile(path).quotas["dep"]
    assert q.rpm is not None and q.rpm.limit == 150
    assert q.enforcement_for("rpm").window == 10
    assert q.enforcement_for("tpm").window == 60
    assert q.charge_max_tokens


def test_preset_fields_are_overridable(tmp_path: Path) -> None:
    """Anything written in the quota wins over the preset."""
    path = tmp_path / "an.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 50}}\n"
        "quotas: {org: {preset: anthropic, models: [m], rpm: 50, cached_input_exempt: false}}\n"
        "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, input_tokens: 100, "
        "output_tokens: 50}}]}}}\n")
    q = load_profile(path).quotas["org"]
    assert q.enforcement.type == "token_bucket"
    assert q.cached_input_exempt is False


def test_unknown_preset(tmp_path: Path) -> None:
    """An unknown preset names the key and suggests the closest."""
    path = tmp_path / "x.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 50}}\n"
        "quotas: {org: {preset: openia, models: [m], rpm: 50}}\n"
        "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, input_tokens: 1, "
        "output_tokens: 1}}]}}}\n")
    with pytest.raises(ProfileError, match=r"quotas\.org\.preset: unknown preset 'openia' "
                       r"\(did you mean 'openai'\?\)"):
        load_profile(path)


@pytest.mark.parametrize("value", ["[openai]", "{a: 1}", "5"])
def test_a_preset_that_is_no_name_is_one_line(tmp_path: Path, value: str) -> None:
    """The error hunt: a list or mapping as the preset was a traceback (TypeError:
    unhashable type, exit 3)."""
    path = tmp_path / "x.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 50}}\n"
        f"quotas: {{org: {{preset: {value}, models: [m], rpm: 50}}}}\n"
        "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, input_tokens: 1, "
        "output_tokens: 1}}]}}}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert text.startswith(f"{path}:2: quotas.org.preset: unknown preset ") and "\n" not in text
    assert text.endswith("; presets: azure-standard, openai, anthropic")


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_size_round_trip_through_the_cli_with_simulation(path: Path) -> None:
    """`size` (default method) then `ceiling --set` (another seed) carries the sessions."""
    fast = ["--replications", "6", "--horizon", "30m", "-q"]
    sized = json.loads(_cli("size", str(path), "--sessions", "120", "--json", "--seed", "5",
                            *fast).stdout)
    assert sized["method"] == "simulate"
    sets = [x for s in sized["set"] for x in ("--set", s)]
    after = json.loads(_cli("ceiling", str(path), "--json", "--seed", "99", *fast,
                            *sets).stdout)
    assert after["saturation_point"] >= 120
