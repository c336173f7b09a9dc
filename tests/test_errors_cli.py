"""Defects found by a new user's error hunt over the shipped CLI, each pinned by the
command that showed it (real processes: what a user types, exit code and streams)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_check_simulate_that_was_not_simulated_says_so() -> None:
    # A quota too large to simulate: the simulation is skipped and the burst-aware figure
    # stands. `check --method simulate` printed that figure as "(simulate)" (JSON
    # "method": "simulate") with no word of the skip.
    r = _cli("check", "web-research", "--set", "quotas.deployment.rpm=1e12", "--sessions",
             "5", "--method", "simulate", "--seed", "1", "-q", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "analytic" and out["ceiling"] > 10**11
    assert r.stderr.startswith("note: Not simulated:") and "burst-aware figure" in r.stderr


def test_validate_reads_standard_input_once() -> None:
    # `validate - -` read stdin twice: the second '-' met an empty stream and was reported
    # as "file is empty"; and the valid one was named '-' where errors say '<stdin>'.
    text = (ROOT / "profiles" / "web-research.yaml").read_text(encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "capacity", "validate", "-", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == ("error: '-' (standard input) given more than once; it can "
                                "be read only once")
    r = subprocess.run([sys.executable, "-m", "capacity", "validate", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ok: <stdin>: web-research"), r.stdout


def test_a_shipped_overlay_alone_says_to_put_a_profile_first() -> None:
    # `capacity profiles` lists overlays beside profiles and says "use a name where a path
    # is expected"; `capacity ceiling second-deployment` then failed with a bare
    # "session: required key is missing".
    r = _cli("ceiling", "second-deployment", "--method", "analytic")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1
    assert "session: required key is missing ('second-deployment' is a what-if overlay, " \
        "not a profile: name a profile first, e.g. web-research second-deployment)" \
        in r.stderr
    assert _cli("validate", "web-research", "second-deployment", "--merge").returncode == 0


def test_loadtest_agent_template_without_agent_url_is_refused() -> None:
    # It was silently ignored: the sessions called the LLM endpoint directly.
    r = _cli("loadtest", "web-research", "--target", "http://127.0.0.1:9", "--sessions", "2",
             "--agent-template", '{"q": "{message}"}', "--no-predict")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == ("error: --agent-template is the body posted to --agent-url: "
                                "give --agent-url too")


def test_every_commands_help_names_its_values() -> None:
    # serve, loadtest and fit showed type tags (<list[Path]>, <int range>, <str>) and
    # {profiles}... where every other command shows PROFILE..., N, DURATION.
    import re

    from typer.testing import CliRunner

    from capacity.cli.app import app

    for command in ("serve", "loadtest", "fit", "ceiling", "sweep", "sensitivity"):
        out = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
        assert out.exit_code == 0, out.output
        assert not re.search(r"<[a-z][^>]*>", out.output), (command, out.output)
        assert "{" not in out.output.splitlines()[0], out.output
    usage = CliRunner().invoke(app, ["serve", "--help"]).output.splitlines()[0]
    assert usage.endswith("serve [OPTIONS] PROFILE...")


WEB = str(ROOT / "profiles" / "web-research.yaml")
CHAT = str(ROOT / "profiles" / "chat-assistant.yaml")
TRACE = str(ROOT / "tests" / "data" / "no-such-trace.jsonl")


@pytest.mark.parametrize(("args", "needle"), [
    # "1,,3" ran the grid 1,3 (the empty entry dropped); ",", "0" and "-3" all said
    # "session counts must be ≥ 1", of a list that had no count in it.
    (["sweep", WEB, "--method", "analytic", "--sessions", "1,,3"],
     "--sessions '1,,3': entry 2 of the list is empty"),
    (["sweep", WEB, "--method", "analytic", "--sessions", ","],
     "--sessions ',': entry 1 of the list is empty"),
    (["sweep", WEB, "--method", "analytic", "--sessions", "1,2.5"],
     "--sessions '1,2.5': entry 2 of the list, '2.5', is not a whole number of sessions"),
    (["sweep", WEB, "--method", "analytic", "--sessions", "0"],
     "--sessions '0': the count is 0: session counts must be ≥ 1"),
    (["sweep", WEB, "--method", "analytic", "--sessions=-3"],
     "--sessions '-3': the count is -3"),
    (["sweep", WEB, "--method", "analytic", "--sessions", "1.5"],
     "--sessions '1.5': expected start:stop[:step] or a list such as 10,20,50"),
    # 5,000 digits: a traceback ("Exceeds the limit (4300 digits) for integer string
    # conversion") from int(), in the list and in the range form.
    (["sweep", WEB, "--method", "analytic", "--sessions", "1," + "9" * 5000],
     "(5,002 characters)': a count of 5,000 digits; at most 18"),
    (["sweep", WEB, "--method", "analytic", "--sessions", "1:" + "9" * 5000],
     "--sessions '1:9999"),
    # NaN was refused as "should be less than or equal to 1000000"; `fit --time-scale inf`
    # (no maximum) was accepted and stretched every time to infinity.
    (["serve", WEB, "--port", "0", "--time-scale", "nan"],
     "'--time-scale': 'nan' is not a finite number"),
    (["serve", WEB, "--port", "0", "--time-scale", "-1"],
     "'--time-scale': '-1' is out of range: must be from 0.001 to 1,000,000"),
    (["serve", WEB, "--port", "0", "--tool-probability", "nan"],
     "'--tool-probability': 'nan' is not a finite number"),
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "1",
      "--time-scale", "inf"], "'--time-scale': 'inf' is not a finite number"),
    (["fit", TRACE, "--time-scale", "inf"], "'--time-scale': 'inf' is not a finite number"),
    # It started and would have run for 1e28 days, saying so only in its first line.
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "1", "--duration",
      "1e30s"], "--duration '1e30s' at --time-scale 1 is 1.16e+25 days of wall time per N"),
    (["fit", TRACE, "--time-scale", "1e308"],
     "'--time-scale': '1e308' is out of range: must be from 1e-09 to 1,000,000"),
    # The error hunt: a bad --warmup was named "--duration/--warmup".
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "1", "--warmup",
      "-1s"], "error: --warmup: expected a duration such as 150s, 2.5m or 500ms, got '-1s'"),
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "1", "--duration",
      "soon"], "error: --duration: expected a duration such as 150s, 2.5m or 500ms, got "
     "'soon'"),
    # A token bucket less than one token deep: a traceback (IndexError) in the analytic
    # model; a window allowing 0 tokens was already refused this way.
    (["ceiling", CHAT, "--method", "analytic", "--set", "quotas.org.itpm=1e-30"],
     "quotas.org.itpm: 1e-30 itpm in a token bucket 60s deep holds 1e-30 input tokens: "
     "nothing could ever be admitted"),
])
def test_bad_numbers_are_one_line_exit_2(args: list[str], needle: str) -> None:
    r = _cli(*args, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]


def test_loadtest_against_a_web_server_that_is_no_llm_api_says_so() -> None:
    # `python -m http.server` answers POST with 501: the load generator retried it as a
    # server error, counted every call failed, and printed "measured N* ≥ 2 (every N of
    # the grid meets the targets)" with exit 0.
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        r = _cli("loadtest", str(ROOT / "profiles" / "tool-agent.yaml"), "--target",
                 f"http://127.0.0.1:{srv.server_port}", "--sessions", "3", "--warmup", "0s",
                 "--duration", "120s", "--time-scale", "10", "--no-predict", timeout=60)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        "error: the target answered HTTP 501 to /v1/chat/completions")


def test_loadtest_prediction_keeps_the_simulation_budget() -> None:
    # `loadtest --replications 1000000000` measured, then ran the simulator for hours:
    # the prediction skipped ceiling's budget. Now it is a note beside the measurement.
    from capacity import load_profile
    from capacity.errors import CapacityError
    from capacity.loadgen.runner import LoadtestConfig, predict

    prof = load_profile(ROOT / "profiles" / "tool-agent.yaml")
    cfg = LoadtestConfig(target="http://127.0.0.1:9", duration_s=20.0, warmup_s=1.0,
                         replications=10**9)
    with pytest.raises(CapacityError, match=r"Not simulated: up to 2 sessions would mean "
                                            r"~5\.\de\+09 simulated call attempts"):
        predict(prof, 2, cfg)


def test_loadtest_predicted_ceiling_note_names_duration() -> None:
    # The note said "--horizon 20s is shorter than one session cycle", an option loadtest
    # does not have.
    from capacity import load_profile
    from capacity.errors import CapacityError
    from capacity.loadgen.runner import LoadtestConfig, predict_ceiling

    prof = load_profile(ROOT / "profiles" / "tool-agent.yaml")
    cfg = LoadtestConfig(target="http://127.0.0.1:9", duration_s=20.0, warmup_s=1.0)
    with pytest.raises(CapacityError, match=r"^--duration 20s is shorter than one session "
                                            r"cycle \(\d+s\)"):
        predict_ceiling(prof, cfg)


@pytest.mark.parametrize(("args", "line"), [
    ([b"ceiling", b"web-research", b"--set", b"description=caf\xe9", b"-q"],
     "error: --set: 'description=caf\\xe9' is not UTF-8 text (byte 0xe9)"),
    ([b"ceiling", b"web-research", b"--set=descr\xe9ption=x", b"-q"],
     "error: --set: 'descr\\xe9ption=x' is not UTF-8 text (byte 0xe9)"),
    ([b"compare", b"web-research", b"--scenario", b"a:description=caf\xe9", b"-q"],
     "error: --scenario: 'a:description=caf\\xe9' is not UTF-8 text (byte 0xe9)"),
    ([b"serve", b"web-research", b"--host", b"\xff"],
     "error: --host: '\\xff' is not UTF-8 text (byte 0xff)"),
    ([b"fit", str(ROOT / "tests" / "data" / "agent-trace.otlp.jsonl").encode(), b"--name",
      b"caf\xe9"], "error: --name: 'caf\\xe9' is not UTF-8 text (byte 0xe9)"),
])
def test_an_option_value_that_is_not_utf8_is_one_line(args: list[bytes], line: str) -> None:
    # A UnicodeEncodeError traceback (exit 3) where the value was first encoded; fit
    # --name wrote a profile named 'caf\udce9' that validate then refused.
    r = subprocess.run([sys.executable.encode(), b"-m", b"capacity", *args],
                       capture_output=True, timeout=120)
    err = r.stderr.decode("utf-8", "replace").strip()
    assert r.returncode == 2 and r.stdout == b"" and "Traceback" not in err, err
    assert err == line + "; give the value in UTF-8"


def test_a_file_path_may_hold_any_bytes(tmp_path: Path) -> None:
    # Paths are the file system's bytes: a profile named caf\xe9.yaml still opens.
    src = ROOT / "profiles" / "web-research.yaml"
    path = bytes(tmp_path) + b"/caf\xe9.yaml"
    with open(path, "wb") as fh:
        fh.write(src.read_bytes())
    r = subprocess.run([sys.executable.encode(), b"-m", b"capacity", b"validate", path],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [
    ["explain", "web-research"], ["validate", "web-research"], ["profiles"], ["--version"],
    ["ceiling", "--help"], ["schema"],
    ["init", "web-research", "-"], ["ceiling", "web-research", "--method", "analytic", "--json"],
    ["fit", str(ROOT / "tests" / "data" / "agent-trace.otlp.jsonl")],
])
def test_standard_output_that_cannot_be_written_is_one_line(args: list[str]) -> None:
    # `> /dev/full` was an OSError traceback, exit 3 ("a bug in capacity").
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "capacity", *args], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "error: standard output: cannot write: No space left on device")


@pytest.mark.parametrize(("args", "code"), [
    (["check", "web-research", "--sessions", "5", "--method", "analytic"], 0),
    (["check", "web-research", "--sessions", "500", "--method", "analytic"], 1),
    (["--version"], 0), (["schema"], 0), (["profiles"], 0), (["explain", "web-research"], 0),
])
def test_a_closed_standard_output_runs_the_command(args: list[str], code: int) -> None:
    # `capacity check ... >&-` (Python's sys.stdout is None): a flush of None was an
    # AttributeError traceback, exit 1 — check's "below target" for a passing gate.
    r = subprocess.run([sys.executable, "-m", "capacity", *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=120,
                       preexec_fn=lambda: __import__("os").close(1))
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr


def test_a_reader_that_went_away_ends_the_command_quietly() -> None:
    # `capacity ... | head`: the pipe closes; SIGPIPE's exit, nothing on stderr.
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run([sys.executable, "-m", "capacity", "explain", "web-research"],
                           stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert r.returncode == 141 and r.stderr == ""


def test_init_of_an_overlay_suggests_a_command_that_runs(tmp_path: Path) -> None:
    # `init second-deployment o.yaml` said "try: capacity ceiling o.yaml", which failed
    # with a bare "session: required key is missing".
    out = tmp_path / "o.yaml"
    r = _cli("init", "second-deployment", str(out))
    assert r.returncode == 0 and r.stdout.strip() == (
        f"wrote {out}; try: capacity ceiling web-research {out}"), r.stdout
    assert _cli("ceiling", "web-research", str(out), "--method", "analytic").returncode == 0
    r = _cli("ceiling", str(out), "--method", "analytic")
    assert r.returncode == 2 and r.stderr.strip().endswith(
        f"session: required key is missing (an overlay? name the profile it changes first: "
        f"PROFILE {out})"), r.stderr
    r = _cli("init", "web-research", str(tmp_path / "w.yaml"))
    assert r.stdout.strip() == f"wrote {tmp_path / 'w.yaml'}; try: capacity ceiling " \
        f"{tmp_path / 'w.yaml'}"


@pytest.mark.parametrize(("scenario", "line"), [
    ("a:quotas.deployment.rpm=-1", "error: --scenario a:quotas.deployment.rpm=-1: "
     "quotas.deployment.rpm: must be > 0 and at most 1,000,000,000,000, got -1"),
    ("b:x", "error: --scenario b:x: expected key.path=value"),
])
def test_a_scenario_error_names_the_scenario(scenario: str, line: str) -> None:
    # It named a `--set x=1` the user never gave.
    for command in ("compare", "report"):
        r = _cli(command, "web-research", "--scenario", scenario, "--method", "analytic",
                 "-q", *(["-o", "/dev/null"] if command == "report" else []))
        assert r.returncode == 2 and r.stderr.strip() == line, (command, r.stderr)
    r = _cli("compare", "web-research", "--scenario", "c:nope.x=1", "-q")
    assert "(--scenario c created 'nope'" in r.stderr


@pytest.mark.parametrize("scenarios", [
    ["x:quotas.deployment.rpm=300", "x:quotas.deployment.rpm=400"],
    ["web-research:quotas.deployment.rpm=300"],  # the baseline's name
])
def test_two_variants_of_one_name_are_refused(scenarios: list[str]) -> None:
    """Two rows named 'x' (and JSON/CSV records no one could tell apart) were printed."""
    name = scenarios[-1].partition(":")[0]
    words = [w for s in scenarios for w in ("--scenario", s)]
    for command in ("compare", "report"):
        r = _cli(command, "web-research", *words, "--method", "analytic", "-q",
                 *(["-o", "/dev/null"] if command == "report" else []))
        assert r.returncode == 2 and r.stderr.strip() == (
            f"error: two variants are named {name!r}: give each --scenario its own NAME "
            "(an overlay is named by its file name)"), (command, r.stderr)


def test_report_refuses_two_variants_of_one_name_before_computing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`report` checked the names after its ceiling and sweep had been simulated (12.6 s
    of a --method both run before exit 2): the variants are built first now."""
    import typer

    import capacity.whatif.ceiling as whatif
    from capacity.cli.report import build_report

    def no_ceiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("the ceiling was computed before the names were checked")

    monkeypatch.setattr(whatif, "ceiling", no_ceiling)
    with pytest.raises(typer.Exit) as e:
        build_report([ROOT / "profiles" / "web-research.yaml"], None, method="both",
                     scenarios=["x:quotas.deployment.rpm=300", "x:quotas.deployment.rpm=400"])
    assert e.value.exit_code == 2


def test_an_analytic_sweep_says_its_utilisation_is_offered_load(tmp_path: Path) -> None:
    """`sweep --method analytic` printed 147% under "util: binding quota used" at 110
    sessions of web-research: the model's figure is the load offered, which a quota's use
    cannot be; the legend (and the HTML report's header) say so."""
    r = _cli("sweep", "web-research", "--sessions", "110", "--method", "analytic", "-q")
    assert r.returncode == 0 and "147%" in r.stdout, r.stdout
    words = " ".join(r.stdout.split())  # the legend wraps at 80 columns
    assert "quota used" not in words and "load offered to the binding quota" in words
    page = tmp_path / "r.html"
    r = _cli("report", "web-research", "--method", "analytic", "-q", "-o", str(page))
    assert r.returncode == 0 and "<th>offered ÷ limit</th>" in page.read_text()


def test_a_profile_on_standard_input_serves_every_variant() -> None:
    """`cat p.yaml | capacity compare - --scenario x:…` loads the base once per variant:
    the second read of '-' met an empty stream, "error: <stdin>: file is empty"."""
    text = (ROOT / "profiles" / "web-research.yaml").read_text(encoding="utf-8")
    for command in ("compare", "report"):
        r = subprocess.run([sys.executable, "-m", "capacity", command, "-", "--scenario",
                            "x:quotas.deployment.rpm=300", "--method", "analytic", "-q",
                            *(["-o", "/dev/null"] if command == "report" else ["--json"])],
                           input=text, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (command, r.stderr)
        if command == "compare":
            ceilings = [v["burst_ceiling"] for v in json.loads(r.stdout)["variants"]]
            assert ceilings == [42, 106], ceilings
