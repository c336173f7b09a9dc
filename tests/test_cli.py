"""CLI behaviour: exit codes, stdout/stderr separation, JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capacity._version import __version__
from capacity.cli.app import app

from .conftest import PROFILES

runner = CliRunner()

CEILING_KEYS = {"profile", "saturation_point", "binding_constraint", "mean_ceiling",
                "burst_ceiling", "constraints", "version"}


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_ceiling_json_for_every_shipped_profile(path: Path) -> None:
    """`ceiling --json` parses and carries the stable keys for every shipped profile."""
    result = _invoke("ceiling", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= CEILING_KEYS
    assert isinstance(data["saturation_point"], int)
    assert set(data["binding_constraint"]) == {"quota", "dimension"}
    assert data["version"] == __version__
    assert data["burst_ceiling"] <= data["mean_ceiling"]
    for c in data["constraints"]:
        assert {"quota", "dimension", "mean_ceiling", "burst_ceiling", "enforcement"} <= set(c)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_table_and_explain_for_every_shipped_profile(path: Path) -> None:
    """The human-readable commands run on every shipped profile."""
    for cmd in ("ceiling", "explain", "validate"):
        result = _invoke(cmd, str(path))
        assert result.exit_code == 0, (cmd, result.output)
        assert result.stdout.strip()


def test_web_research_headline(web_research: Path) -> None:
    """The founding story: mean ceiling in 60–90, a lower burst-aware one, RPM binding."""
    data = json.loads(_invoke("ceiling", str(web_research), "--json").stdout)
    assert 60 <= data["mean_ceiling"] <= 90
    assert data["burst_ceiling"] < data["mean_ceiling"]
    assert data["binding_constraint"] == {"quota": "deployment", "dimension": "rpm"}
    sens = data["sensitivity"]
    assert (sens["mean_ceiling_low"], sens["mean_ceiling_high"]) == pytest.approx((60, 90))
    table = _invoke("ceiling", str(web_research)).stdout
    assert "deployment.rpm" in table
    assert "napkin" in table


def test_sessions_option_reports_utilisation(web_research: Path) -> None:
    """--sessions N adds utilisation and the 429 fraction at N."""
    data = json.loads(_invoke("ceiling", str(web_research), "--json", "--sessions", "60").stdout)
    c = data["constraints"][0]
    assert c["utilisation_at_sessions"] == pytest.approx(60 / data["mean_ceiling"])
    assert 0 < c["at_sessions"]["loss_fraction"] < 1


def test_set_changes_the_answer(web_research: Path) -> None:
    """A --set override flows through: 1-second windows lower the burst ceiling."""
    base = json.loads(_invoke("ceiling", str(web_research), "--json").stdout)
    one_s = json.loads(_invoke("ceiling", str(web_research), "--json", "--set",
                               "quotas.deployment.enforcement.window=1s").stdout)
    assert one_s["mean_ceiling"] == base["mean_ceiling"]
    assert one_s["burst_ceiling"] < base["burst_ceiling"]


def test_explain_json(web_research: Path) -> None:
    """`explain --json` reports calls per turn and per-session RPM."""
    data = json.loads(_invoke("explain", str(web_research), "--json").stdout)
    assert data["turns"][0]["calls"]["mean"] == 5
    assert data["rates"][0]["per_session_per_minute"] == pytest.approx(2.0)


def test_version() -> None:
    """--version prints the package version."""
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"capacity {__version__}"


def test_schema_is_json_schema() -> None:
    """`schema` prints a JSON Schema with the top-level keys of a profile."""
    data = json.loads(_invoke("schema").stdout)
    assert {"models", "quotas", "session"} <= set(data["properties"])
    assert set(data["required"]) >= {"models", "quotas", "session"}


@pytest.mark.parametrize("text", [
    "",
    "models: [\n",
    "- 1\n",
    "models: {m: {tokens_per_second: 10}}\nquotas: {q: {models: [m], rpm: 0}}\n"
    "session: {think_time: 1, turns: {t: {steps: [{call: {model: m, input_tokens: 1, "
    "output_tokens: 1}}]}}}\n",
    "models: {m: {tokens_per_second: 10, tpyo: 1}}\n",
])
def test_bad_profile_exit_2_one_line(tmp_path: Path, text: str) -> None:
    """Bad input: exit 2, one `error:` line on stderr naming the file, nothing on stdout."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for cmd in ("ceiling", "explain", "validate"):
        result = runner.invoke(app, [cmd, str(path)])
        assert result.exit_code == 2, (cmd, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {path}")
        assert "Traceback" not in result.stderr


def test_missing_file_exit_2() -> None:
    """A missing profile is a usage error (exit 2), not a crash."""
    result = runner.invoke(app, ["ceiling", "no/such/profile.yaml"])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_bad_set_exit_2(web_research: Path) -> None:
    """A bad --set path is reported with a suggestion and exit 2."""
    result = runner.invoke(app, ["ceiling", str(web_research), "--set", "quotas.deploymen.rpm=1"])
    assert result.exit_code == 2
    assert "did you mean 'deployment'" in result.stderr


def test_every_command_has_help() -> None:
    """Every command documents itself."""
    for name in ("ceiling", "explain", "validate", "schema"):
        result = _invoke(name, "--help")
        assert result.exit_code == 0
        assert "Usage" in result.stdout


def test_python_dash_m(web_research: Path) -> None:
    """`python -m capacity` works like the console script."""
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(web_research),
                          "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["profile"] == "web-research"


def test_python_dash_m_bad_input_has_no_traceback(tmp_path: Path) -> None:
    """In a real process, bad input prints one line and exits 2."""
    path = tmp_path / "x.yaml"
    path.write_text("models: [\n")
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_version_matches_metadata() -> None:
    """__version__ comes from the installed distribution metadata."""
    from importlib.metadata import version

    assert version("llm-capacity") == __version__


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_shipped_profiles_match_the_json_schema(path: Path) -> None:
    """The schema `capacity schema` prints accepts every shipped profile."""
    import jsonschema
    import yaml

    schema = json.loads(_invoke("schema").stdout)
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


@pytest.mark.parametrize("args", [
    ["ceiling", "profiles/web-research.yaml", "--sessions", "0"],
    ["ceiling", "profiles/web-research.yaml", "--method", "guess"],
    ["sweep", "profiles/web-research.yaml"],
    ["ceiling", "profiles/web-research.yaml", "--no-such-option"],
    ["no-such-command"],
])
def test_usage_errors_are_one_line_exit_2(root: Path, args: list[str]) -> None:
    """Bad options are one `error:` line on stderr with exit 2, like profile errors."""
    out = subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                         text=True, cwd=root)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert out.stdout == ""


def test_check_exit_codes_through_main(root: Path) -> None:
    """The console entry point keeps check's exit 1 and --version's exit 0."""
    fail = subprocess.run([sys.executable, "-m", "capacity", "check",
                           "profiles/web-research.yaml", "--sessions", "1000"],
                          capture_output=True, text=True, cwd=root)
    assert fail.returncode == 1
    ver = subprocess.run([sys.executable, "-m", "capacity", "--version"],
                         capture_output=True, text=True, cwd=root)
    assert ver.returncode == 0 and ver.stdout.startswith("capacity ")


def test_library_errors_name_parameters_and_the_cli_names_flags() -> None:
    """The library speaks of its parameters (``sessions``); the command line of the
    options the user typed (``--sessions``) — one error line, exit 2."""
    from typer.testing import CliRunner

    from capacity.cli.app import app
    from capacity.errors import ParameterError
    from capacity.whatif.sweep import parse_sessions

    with pytest.raises(ParameterError) as e:
        parse_sessions("5:1")
    assert str(e.value).startswith("sessions '5:1':") and "--" not in str(e.value)
    res = CliRunner().invoke(app, ["sweep", "web-research", "--sessions", "5:1"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --sessions '5:1': need 1 ≤ start ≤ stop and step ≥ 1"
