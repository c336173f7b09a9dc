"""CLI with simulation: --method, seeds, sweep (table, CSV, JSON, plot), check, compare."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capacity.cli.app import app

runner = CliRunner()
FAST = ["--replications", "4", "--horizon", "20m", "--seed", "7"]


def _ok(*args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_ceiling_both_has_simulated_with_ci(web_research: Path) -> None:
    """The default method adds a simulated N* with a CI and reports it as the saturation."""
    data = json.loads(_ok("ceiling", str(web_research), "--json", *FAST).stdout)
    sim = data["simulated"]
    assert data["method"] == "both"
    assert sim["n_lo"] <= sim["n_star"] <= sim["n_hi"]
    assert data["saturation_point"] == sim["n_star"]
    assert sim["seed"] == 7
    assert 0 < sim["n_star"] <= data["mean_ceiling"]
    at = sim["metric_at_n_star"]["metrics"]
    assert at["attempt_429_fraction"]["mean"] <= data["targets"]["max_429_fraction"]
    assert at["turn_latency_p95_s"]["mean"] > 0


def test_same_seed_same_output(web_research: Path) -> None:
    """A run is reproducible from its printed seed."""
    a = _ok("ceiling", str(web_research), "--json", *FAST).stdout
    b = _ok("ceiling", str(web_research), "--json", *FAST).stdout
    assert a == b


def test_table_shows_simulated_column_and_seed(web_research: Path) -> None:
    """The table gains a simulated column, the p95 turn latency at N* and the seed."""
    out = _ok("ceiling", str(web_research), *FAST, "--quiet").stdout
    assert "simulated" in out
    assert "p95 turn latency" in out
    assert "--seed 7" in out


def test_analytic_method_has_no_simulation(web_research: Path) -> None:
    """--method analytic skips the simulation."""
    data = json.loads(_ok("ceiling", str(web_research), "--json", "--method",
                          "analytic").stdout)
    assert data["simulated"] is None
    assert data["saturation_point"] == data["burst_ceiling"]


def test_quiet_keeps_stderr_empty(web_research: Path) -> None:
    """--quiet hides progress; --json output stays clean on stdout."""
    result = _ok("ceiling", str(web_research), "--json", "--quiet", *FAST)
    assert result.stderr == ""
    json.loads(result.stdout)


@pytest.mark.parametrize("args", [["--horizon", "soon"], ["--replications", "1"],
                                  ["--seed", "-1"], ["--method", "guess"]])
def test_bad_simulation_options_exit_2(web_research: Path, args: list[str]) -> None:
    """Bad simulation settings are usage errors."""
    result = runner.invoke(app, ["ceiling", str(web_research), *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_sweep_csv_header_and_rows(web_research: Path) -> None:
    """sweep --csv: a header, then one row per N with simulated metrics and CIs."""
    out = _ok("sweep", str(web_research), "--sessions", "10:50:20", "--csv", "-q", *FAST).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["sessions"]) for r in rows] == [10, 30, 50]
    for key in ("attempt_429_fraction", "attempt_429_fraction_lo", "call_failure_fraction",
                "turn_latency_p95_s", "goodput_calls_per_min", "binding_utilisation",
                "meets_targets"):
        assert key in rows[0]
    goodput = [float(r["goodput_calls_per_min"]) for r in rows]
    assert goodput == sorted(goodput)


def test_sweep_json_marks_saturation(web_research: Path) -> None:
    """sweep --json carries rows and the saturation point on the grid."""
    data = json.loads(_ok("sweep", str(web_research), "--sessions", "20,40,60,80", "--json",
                          "--method", "analytic").stdout)
    assert [r["sessions"] for r in data["rows"]] == [20, 40, 60, 80]
    assert data["saturation_point"] == 40
    losses = [r["analytic_429_fraction"] for r in data["rows"]]
    assert losses == sorted(losses)


def test_sweep_table(web_research: Path) -> None:
    """The sweep table marks the ceiling row, and its legend says what the mark means."""
    out = _ok("sweep", str(web_research), "--sessions", "20:60:20", "--method",
              "analytic").stdout
    row = next(line for line in out.splitlines() if line.startswith("│") and " 40 " in line)
    assert "◀" in row
    assert "◀ saturation point on this grid" in out


@pytest.mark.parametrize("grid", ["0:10", "10:5", "a,b", "1:100000"])
def test_sweep_bad_grid_exit_2(web_research: Path, grid: str) -> None:
    """A malformed --sessions grid is exit 2 with one line."""
    result = runner.invoke(app, ["sweep", str(web_research), "--sessions", grid])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --sessions")


def test_sweep_plot_writes_png(tmp_path: Path, web_research: Path) -> None:
    """--plot writes a PNG of the saturation curve."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "curve.png"
    _ok("sweep", str(web_research), "--sessions", "10:90:40", "--plot", str(png), "-q", *FAST)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_sweep_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       web_research: Path) -> None:
    """Without matplotlib, --plot says how to install it and exits 2."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(app, ["sweep", str(web_research), "--sessions", "10,20",
                                 "--method", "analytic", "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "pip install 'llm-capacity[plot]'" in result.stderr


def test_check_simulate(web_research: Path) -> None:
    """check --method simulate gates on the simulated N*."""
    data = json.loads(_ok("ceiling", str(web_research), "--json", "-q", *FAST).stdout)
    n_star = data["simulated"]["n_star"]
    ok = runner.invoke(app, ["check", str(web_research), "--sessions", str(n_star),
                             "--method", "simulate", "-q", *FAST])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["check", str(web_research), "--sessions", str(n_star + 1),
                              "--method", "simulate", "-q", *FAST])
    assert bad.exit_code == 1


def test_compare_both(web_research: Path) -> None:
    """compare --method both fills the simulated row for every variant."""
    data = json.loads(_ok("compare", str(web_research), "--scenario",
                          "double:quotas.deployment.rpm=300", "--method", "both", "--json",
                          "-q", *FAST).stdout)
    a, b = data["variants"]
    assert a["simulated"] is not None and b["simulated"] is not None
    assert b["simulated"] > a["simulated"]


def test_oversized_simulation_is_skipped_with_a_note(web_research: Path) -> None:
    """A quota so large the simulation would take minutes falls back to the analytic answer."""
    data = json.loads(_ok("ceiling", str(web_research), "--json", "-q", "--seed", "1",
                          "--set", "quotas.deployment.rpm=3000000").stdout)
    assert data["simulated"] is None
    assert data["method"] == "analytic"
    assert data["notes"] and "Not simulated" in data["notes"][0]
    assert data["saturation_point"] == data["burst_ceiling"]


def test_simulated_ceiling_never_far_above_mean_value(web_research: Path) -> None:
    """N* stays within mean ceiling / (1 - target): beyond it the target is unreachable."""
    data = json.loads(_ok("ceiling", str(web_research), "--json", *FAST, "--set",
                          "quotas.deployment.enforcement={type: token_bucket}").stdout)
    limit = data["mean_ceiling"] / (1 - data["targets"]["max_429_fraction"]) + 1
    assert data["simulated"]["n_star"] <= limit


def test_progress_is_drawn_on_a_terminal_unless_quiet(monkeypatch: pytest.MonkeyPatch,
                                                      web_research: Path) -> None:
    """On a terminal the progress display appears on stderr; --quiet hides it."""
    from rich.console import Console

    import capacity.cli.common as cli

    def run(*extra: str) -> str:
        buf = io.StringIO()
        monkeypatch.setattr(cli, "err_console",
                            Console(file=buf, force_terminal=True, width=100))
        _ok("ceiling", str(web_research), "--json", *FAST, *extra)
        return buf.getvalue()

    assert "simulating" in run()
    assert run("--quiet") == ""
