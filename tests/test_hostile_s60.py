"""A hostile new user's findings (session 60): each was a traceback, a 500, a silently
wrong file or answer, or an error that pointed at the wrong place."""

from __future__ import annotations

import gzip
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from capacity import load_profile
from capacity.errors import ProfileError
from capacity.profile.schema import MAX_FALLBACK_DEPTH

from .conftest import ROOT
from .serve_support import CLAUDE, GPT, post_bytes, profile, serving
from .test_cli_hostile import run, sane

WEB = str(ROOT / "profiles" / "web-research.yaml")
PTU = str(ROOT / "profiles" / "ptu-spillover.yaml")
USER = [{"role": "user", "content": "hi"}]


def _post(url: str, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    return post_bytes(url, body, headers)


# -- capacity serve -----------------------------------------------------------------------


def test_a_body_its_content_encoding_does_not_decode_is_a_400_naming_the_header(
        caplog: pytest.LogCaptureFixture) -> None:
    """`content-encoding: gzip` on a plain body (or br) was a 500 "internal error" with a
    traceback in the mock's log; then aiohttp's own drain of the rest logged another."""
    plain = json.dumps({"model": GPT, "max_tokens": 5, "messages": USER}).encode()
    with serving() as srv:
        for path, shape in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
                            ("/admin/reset", "openai")):
            for encoding in ("gzip", "deflate", "x-unknown-zip"):
                status, body = _post(srv.url + path, plain, **{"content-encoding": encoding})
                if encoding == "x-unknown-zip":
                    # aiohttp passes an encoding it does not know through as identity.
                    assert status == (200 if path != "/admin/reset" else 400), (path, body)
                    continue
                assert status == 400, (path, encoding, body)
                err = body["error"]
                assert err["message"].startswith("content-encoding: "), err
                assert (body.get("type") == "error") == (shape == "anthropic")
        # A body that is gzip is read as before.
        status, body = _post(srv.url + "/v1/chat/completions", gzip.compress(plain),
                             **{"content-encoding": "gzip"})
        assert status == 200 and body["choices"], body
    assert not [r for r in caplog.records if r.exc_info or "Unhandled" in r.getMessage()]


def test_azure_body_model_may_name_a_deployment_as_the_path_does() -> None:
    """The banner lists quota names as Azure deployments, and the deployment path takes
    them; Azure's v1 API and /openai/responses (the deployment in the body's `model`) gave
    404 model_not_found for the same names."""
    prof = profile()  # quota 'oai' covers GPT
    with serving(prof) as srv:
        for path, body in (
                ("/openai/v1/chat/completions", {"model": "oai", "messages": USER}),
                ("/openai/v1/responses", {"model": "oai", "input": "hi"}),
                ("/openai/responses?api-version=2025-04-01-preview",
                 {"model": "oai", "input": "hi"})):
            status, got = _post(srv.url + path, json.dumps(body).encode())
            assert status == 200, (path, got)
            status, got = _post(srv.url + path,
                                json.dumps({**body, "model": "nope"}).encode())
            assert status == 404 and got["error"]["code"] == "DeploymentNotFound", got
        # The OpenAI API itself still knows models only.
        status, got = _post(srv.url + "/v1/chat/completions",
                            json.dumps({"model": "oai", "messages": USER}).encode())
        assert status == 404 and got["error"]["code"] == "model_not_found", got


# -- capacity fit -------------------------------------------------------------------------


_RECORD = {"session": "s1", "turn": 1, "start": 1767225600.0, "end": 1767225603.0,
           "model": "m", "input_tokens": 1000, "output_tokens": 100}


def test_fit_json_errors_point_at_the_line_and_column(tmp_path: Path) -> None:
    """A JSONL line cut short read "at column 1" (json's column on the line after it); an
    OTLP document cut short read "starting at at column"; blank lines before an OTLP
    file's first line were not counted."""
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(_RECORD) + '\n{"session": "s1", "turn":\n')
    r = sane(run("fit", log))
    # The value is missing where the line ends (it was "at column 1").
    assert r.code == 2 and f"{log}:2: malformed JSON (Expecting value at column 27)" in r.stderr
    otlp = tmp_path / "t.json"
    otlp.write_text('{"resourceSpans": [{"scopeSpans": "abc')
    r = sane(run("fit", otlp, "--format", "otlp-json"))
    assert r.code == 2 and "at at" not in r.stderr and "starting at column" in r.stderr
    blank = tmp_path / "b.json"
    blank.write_text('\n\n{"resourceSpans": []}\n{"a": "b\n')
    r = sane(run("fit", blank, "--format", "otlp-json"))
    assert r.code == 2 and f"{blank}:4: malformed JSON" in r.stderr, r.stderr


# -- options that were silently ignored or overridden -------------------------------------


@pytest.mark.parametrize(("args", "where"), [
    (["--workers", "3"], "--workers"),
    (["--client", "anthropic", "--provider", "azure"], "--provider azure"),
])
def test_loadtest_options_that_were_ignored_are_refused(args: list[str], where: str) -> None:
    """--workers without --engine locust did nothing; --client anthropic replaced any
    --provider by anthropic without a word. Refused before any request is sent."""
    r = sane(run("loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "2",
                 *args), where=where)
    assert r.code == 2


def test_sensitivity_with_every_parameter_off_is_refused() -> None:
    """`--vary '*=off'` printed an empty table and "Nothing varied moves it by a whole
    session" — as if the ceiling moved with nothing."""
    r = sane(run("sensitivity", WEB, "--vary", "*=off"), where="--vary")
    assert r.code == 2
    r = sane(run("sensitivity", WEB, "--vary", "*=off", "--vary",
                 "quotas.deployment.rpm=±10%", "--json"))
    assert r.code == 0 and len(json.loads(r.stdout)["rows"]) == 1


@pytest.mark.parametrize("args", [
    ["report", WEB, "--method", "analytic", "-o", "{tmp}/r.pdf"],
    ["report", WEB, "--method", "analytic", "-o", "{tmp}/r.PNG"],
    ["ceiling", WEB, "--method", "analytic", "--format", "table", "-o", "{tmp}/c.json"],
    ["explain", WEB, "-o", "{tmp}/e.html"],
    ["sweep", WEB, "--sessions", "10", "--method", "analytic", "--format", "table",
     "-o", "{tmp}/s.csv"],
])
def test_an_output_named_for_another_format_is_refused(args: list[str], tmp_path: Path
                                                       ) -> None:
    """`report -o r.pdf` wrote an HTML page named .pdf; `ceiling --format table -o c.json`
    the box-drawn table into c.json; explain has no HTML to write into e.html."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = sane(run(*argv), where="--output")
    assert r.code == 2 and not list(tmp_path.iterdir())


def test_an_output_in_the_format_asked_is_written(tmp_path: Path) -> None:
    sane(run("ceiling", WEB, "--method", "analytic", "--json", "-o", tmp_path / "c.json"))
    json.loads((tmp_path / "c.json").read_text())
    sane(run("sweep", WEB, "--sessions", "10", "--method", "analytic", "--format", "csv",
             "-o", tmp_path / "s.csv"))
    assert (tmp_path / "s.csv").read_text().startswith("sessions,")
    sane(run("ceiling", WEB, "--method", "analytic", "-o", tmp_path / "c.txt"))
    assert "Ceilings for web-research" in (tmp_path / "c.txt").read_text()


@pytest.mark.parametrize("args", [
    ["ceiling", WEB, "--method", "analytic", "--json", "-o", "{tmp}/c.csv"],
    ["ceiling", WEB, "--method", "analytic", "--format", "html", "-o", "{tmp}/c.json"],
    ["sweep", WEB, "--sessions", "10", "--method", "analytic", "--json", "-o", "{tmp}/s.csv"],
])
def test_a_format_asked_for_that_the_name_contradicts_is_refused(args: list[str],
                                                                 tmp_path: Path) -> None:
    """`--json -o c.csv` wrote JSON into c.csv without a word (a review found it)."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = sane(run(*argv), where="--output")
    assert r.code == 2 and ("not CSV" in r.stderr or "not JSON" in r.stderr)
    assert not list(tmp_path.iterdir())


def test_an_output_named_json_or_csv_gets_that_format(tmp_path: Path) -> None:
    """No format flag: the file's name says which (the table was written into it)."""
    sane(run("ceiling", WEB, "--method", "analytic", "-o", tmp_path / "c.json"))
    got = json.loads((tmp_path / "c.json").read_text())
    assert got["profile"] == "web-research"
    sane(run("sweep", WEB, "--sessions", "10,20", "--method", "analytic",
             "-o", tmp_path / "s.CSV"))
    assert (tmp_path / "s.CSV").read_text().startswith("sessions,")
    sane(run("ceiling", WEB, "--method", "analytic", "-o", tmp_path / "c.html"))
    assert (tmp_path / "c.html").read_text().lstrip().lower().startswith("<!doctype html")


# -- fleets: fallbacks --------------------------------------------------------------------


def test_a_fallback_cycle_is_blamed_on_an_edge_of_the_cycle() -> None:
    """gpt-4o → gpt-4o-mini, and a --set making gpt-4o-mini fall back to itself: the error
    blamed routes.gpt-4o.fallbacks[0] in the file, which only leads into the cycle."""
    with pytest.raises(ProfileError) as e:
        load_profile(PTU, ["routes.gpt-4o-mini.fallbacks=[gpt-4o-mini]"])
    assert e.value.path == "routes.gpt-4o-mini.fallbacks[0]"
    assert str(e.value).startswith("--set routes.gpt-4o-mini.fallbacks"), str(e.value)


def _fleet(n: int, *, every_later: bool) -> dict[str, Any]:
    """``n`` routes r0..r(n-1), each falling back to the next (or to every later one)."""
    return {
        "name": "fallback-graph",
        "models": {"m": {"ttft": "0.5s", "tokens_per_second": 50}},
        "deployments": {f"d{i}": {"model": "m", "quotas": ["q"]} for i in range(n)},
        "quotas": {"q": {"models": [f"d{i}" for i in range(n)], "rpm": 100}},
        "routes": {f"r{i}": {"deployments": [f"d{i}"], "fallbacks": (
            [f"r{j}" for j in range(i + 1, n)] if every_later else
            [f"r{i + 1}"] if i + 1 < n else [])} for i in range(n)},
        "session": {"think_time": "30s", "turns": {"a": {"steps": [
            {"call": {"model": "r0", "input_tokens": 100, "output_tokens": 10}}]}}},
    }


def test_a_wide_fallback_graph_loads_in_linear_time(tmp_path: Path) -> None:
    """40 routes each falling back to every later one: the cycle check walked every path
    (2^n: 24 routes took 8 s, 40 would take days)."""
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(_fleet(40, every_later=True)))
    t0 = time.perf_counter()
    r = sane(run("ceiling", path, "--method", "analytic", "--json"))
    assert r.code == 0 and time.perf_counter() - t0 < 20
    assert json.loads(r.stdout)["saturation_point"] > 0


def test_a_fallback_chain_past_the_bound_is_one_line(tmp_path: Path) -> None:
    """A chain of 1,000 fallbacks exhausted Python's recursion: exit 3 with a traceback."""
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(_fleet(1000, every_later=False)))
    r = sane(run("validate", path), where="routes.r0.fallbacks")
    assert r.code == 2 and f"at most {MAX_FALLBACK_DEPTH}" in r.stderr
    path.write_text(yaml.safe_dump(_fleet(MAX_FALLBACK_DEPTH, every_later=False)))
    assert sane(run("validate", path)).code == 0


# -- session 61: a second hostile pass ----------------------------------------------------


def _tool(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": schema}, "required": ["x"]}}}]


def _chat(srv: Any, schema: dict[str, Any], choice: str = "required"
          ) -> tuple[int, dict[str, Any]]:
    body = {"model": GPT, "max_tokens": 20, "messages": USER, "tools": _tool(schema),
            "tool_choice": choice}
    return _post(srv.url + "/v1/chat/completions", json.dumps(body).encode())


def test_huge_numeric_bounds_give_a_valid_value_not_a_python_exception() -> None:
    """`minimum: 1e308` with `multipleOf: 0.5` was a 400 reading "not a usable JSON Schema
    (OverflowError: cannot convert float infinity to integer)"; `exclusiveMinimum: 1e308`
    answered 1e308 itself (1e308 + 1 is 1e308 in doubles)."""
    from fractions import Fraction

    with serving() as srv:
        for schema, ok in (
                ({"type": "number", "minimum": 1e308, "multipleOf": 0.5},
                 lambda x: x >= 1e308 and Fraction(x) % Fraction(0.5) == 0),
                ({"type": "number", "maximum": -1e308, "multipleOf": 0.5},
                 lambda x: x <= -1e308 and Fraction(x) % Fraction(0.5) == 0),
                ({"type": "number", "minimum": 1e300, "multipleOf": 1e-300},
                 lambda x: x >= 1e300 and Fraction(x) % Fraction(1e-300) == 0),
                ({"type": "number", "exclusiveMinimum": 1e308}, lambda x: x > 1e308),
                ({"type": "number", "exclusiveMaximum": -1e308}, lambda x: x < -1e308),
                ({"type": "integer", "exclusiveMaximum": -1e308}, lambda x: x < -1e308)):
            status, body = _chat(srv, schema)
            assert status == 200, (schema, body)
            x = json.loads(body["choices"][0]["message"]["tool_calls"][0]["function"][
                "arguments"])["x"]
            assert ok(x), (schema, x)
        # No multiple of 1e-300 is a double in [1.7e308, 1.7e308]: a 400 saying so.
        status, body = _chat(srv, {"type": "number", "minimum": 1.7e308,
                                   "maximum": 1.7e308, "multipleOf": 1e-300})
        assert status == 400 and "no multiple of multipleOf" in body["error"]["message"]
        assert "Error" not in body["error"]["message"], body


@pytest.mark.parametrize("schema", [
    {"type": "number", "minimum": 1e300, "multipleOf": 1e-300},
    {"type": "integer", "minimum": 1e300},
    {"type": "integer", "exclusiveMaximum": -1e308},
])
def test_an_anthropic_tool_input_past_64_bit_integers_is_served(schema: dict[str, Any]
                                                                ) -> None:
    """Anthropic's tool_use input is an object in the answer, not a string: an integer
    past 64 bits made orjson refuse it, a 500 and a traceback (a review found it)."""
    body = {"model": CLAUDE, "max_tokens": 20, "messages": USER,
            "tools": [{"name": "f", "input_schema": {
                "type": "object", "properties": {"x": schema}, "required": ["x"]}}],
            "tool_choice": {"type": "any"}}
    with serving() as srv:
        status, got = _post(srv.url + "/v1/messages", json.dumps(body).encode())
    assert status == 200, got
    (use,) = [b for b in got["content"] if b["type"] == "tool_use"]
    assert abs(use["input"]["x"]) >= 1e300


@pytest.mark.parametrize(("schema", "where"), [
    ({"type": "number", "multipleOf": 0}, "/properties/x/multipleOf"),
    ({"type": "integer", "multipleOf": -2}, "/properties/x/multipleOf"),
    ({"type": "string", "pattern": "^(a|b"}, "/properties/x/pattern"),
    ({"type": "array", "items": {"type": "string", "pattern": "[a-"}},
     "/properties/x/items/pattern"),
])
def test_an_invalid_schema_keyword_is_a_400_naming_it(schema: dict[str, Any],
                                                      where: str) -> None:
    """`multipleOf: 0` (ignored) and an unbalanced `pattern` (placeholder text) were
    answered 200; a provider refuses the schema, called or not (tool_choice none)."""
    with serving() as srv:
        for choice in ("required", "none"):
            status, body = _chat(srv, schema, choice)
            assert status == 400, (choice, body)
            err = body["error"]
            assert err["param"] == "tools[0].function.parameters", err
            assert where + ":" in err["message"] and "Error" not in err["message"], err
        out = {"type": "json_schema", "schema": {
            "type": "object", "properties": {"x": schema}, "required": ["x"],
            "additionalProperties": False}}
        status, body = _post(srv.url + "/v1/messages", json.dumps(
            {"model": CLAUDE, "max_tokens": 20, "messages": USER,
             "output_config": {"format": out}}).encode())
        assert status == 400 and body["type"] == "error", body
        assert where + ":" in body["error"]["message"], body
        # A pattern valid in JSON Schema's regex dialect that Python lacks is still served.
        status, body = _chat(srv, {"type": "string", "pattern": "^(?<word>[a-z]+)$"})
        assert status == 200, body


def test_responses_previous_response_id_must_be_a_string() -> None:
    """`previous_response_id: 5` was served (and echoed back as 5)."""
    with serving() as srv:
        for bad_id in (5, True, ["resp_1"]):
            status, body = _post(srv.url + "/v1/responses", json.dumps(
                {"model": GPT, "input": "hi", "previous_response_id": bad_id}).encode())
            assert status == 400, body
            assert body["error"]["param"] == "previous_response_id", body
            assert "expected a string" in body["error"]["message"], body
        status, body = _post(srv.url + "/v1/responses", json.dumps(
            {"model": GPT, "input": "hi", "previous_response_id": "resp_1"}).encode())
        assert status == 200 and body["previous_response_id"] == "resp_1", body


def test_a_fraction_may_be_written_as_a_percentage(tmp_path: Path) -> None:
    """`max_429_fraction: 1%` was refused as "expected a valid number" with no hint."""
    prof = load_profile(WEB, ["targets.max_429_fraction=1%", "retry.jitter=25 %"])
    assert prof.targets.max_429_fraction == pytest.approx(0.01)
    assert prof.retry.jitter == pytest.approx(0.25)
    doc = yaml.safe_load(Path(WEB).read_text())
    doc["targets"]["max_429_fraction"] = "0.5%"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_profile(path).targets.max_429_fraction == pytest.approx(0.005)
    # Bounds hold as for the number, the value shown as written.
    r = sane(run("validate", WEB, "--set", "targets.max_429_fraction=100%"),
             where="targets.max_429_fraction")
    assert r.code == 2 and "above 0% below 100%" in r.stderr and "'100%'" in r.stderr
    r = sane(run("validate", WEB, "--set", "retry.jitter=150%"), where="retry.jitter")
    assert r.code == 2 and "from 0% to 100%" in r.stderr and "'150%'" in r.stderr
    # The published schema says so (editors validate against it), and refuses what the
    # loader refuses (a review: "150%" and "0%" passed it).
    import jsonschema

    schema = json.loads(sane(run("schema")).stdout)
    jsonschema.validate(doc, schema)
    for bad in ("1 percent", "150%", "0%", "100%", "+5%", "1e-3%"):
        doc["targets"]["max_429_fraction"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema)
        r = run("validate", WEB, "--set", f"targets.max_429_fraction={bad}")
        assert r.code == 2, bad
    doc["retry"]["jitter"] = "0%"
    doc["targets"]["max_429_fraction"] = "2.5 %"
    jsonschema.validate(doc, schema)
    assert run("validate", WEB, "--set", "retry.jitter=0%").code == 0


def test_a_yaml_date_is_shown_as_written(tmp_path: Path) -> None:
    """`think_time: 2024-01-01` read "got datetime.date(2024, 1, 1)"."""
    for setting in ("session.think_time=2024-01-01", "retry.max_retries=2024-01-01",
                    "targets.max_429_fraction=2024-01-01", "quotas.deployment.rpm=2024-01-01"):
        r = sane(run("validate", WEB, "--set", setting), where=setting.split("=")[0])
        assert r.code == 2 and "got 2024-01-01" in r.stderr, r.stderr
        assert "datetime" not in r.stderr
    doc = yaml.safe_load(Path(WEB).read_text())
    del doc["session"]["cadence"]
    doc["session"]["think_time"] = date(2024, 1, 1)  # written unquoted: YAML's date
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert "think_time: 2024-01-01\n" in path.read_text()
    r = sane(run("validate", path), where="session.think_time")
    assert r.code == 2 and "got 2024-01-01" in r.stderr and "datetime" not in r.stderr


def test_an_otlp_time_that_is_no_number_is_not_called_missing(tmp_path: Path) -> None:
    """`startTimeUnixNano: "soon"` was reported as "no startTimeUnixNano"."""
    attrs = [{"key": k, "value": v} for k, v in (
        ("gen_ai.operation.name", {"stringValue": "chat"}),
        ("gen_ai.request.model", {"stringValue": "m"}),
        ("gen_ai.usage.input_tokens", {"intValue": "100"}),
        ("gen_ai.usage.output_tokens", {"intValue": "10"}))]
    span = {"traceId": "t1", "spanId": "s1", "name": "chat", "attributes": attrs,
            "startTimeUnixNano": "soon", "endTimeUnixNano": "1767225603000000000"}
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))
    r = sane(run("fit", path, "--format", "otlp-json"))
    assert r.code == 2 and "a startTimeUnixNano that is not a number" in r.stderr, r.stderr
    del span["startTimeUnixNano"]
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))
    r = sane(run("fit", path, "--format", "otlp-json"))
    assert r.code == 2 and "no startTimeUnixNano" in r.stderr, r.stderr


def test_a_scenario_key_given_twice_is_refused() -> None:
    """`--scenario 'x:k=1,k=2'` kept the last without a word."""
    r = sane(run("compare", WEB, "--method", "analytic", "--scenario",
                 "x:retry.max_retries=1,retry.max_retries=2"), where="--scenario")
    assert r.code == 2 and "retry.max_retries given twice" in r.stderr


def test_replications_with_no_prediction_is_refused() -> None:
    """`--no-predict --replications 5` ignored the replications (nothing is simulated);
    refused before any connection (the target is a closed loopback port)."""
    r = sane(run("loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "1",
                 "--no-predict", "--replications", "5"), where="--replications")
    assert r.code == 2 and "--no-predict" in r.stderr


def test_output_dash_is_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """`-o -` wrote a file named '-' (a review found it); `-` is standard input for a
    profile and standard output for `init`, so it is standard output here too."""
    monkeypatch.chdir(tmp_path)
    r = sane(run("ceiling", WEB, "--method", "analytic", "--json", "-o", "-"))
    assert r.code == 0 and json.loads(r.stdout)["profile"] == "web-research"
    r = sane(run("schema", "-o", "-"))
    assert r.code == 0 and json.loads(r.stdout)["$schema"]
    assert not (tmp_path / "-").exists()


def test_a_draft7_dependencies_schema_is_checked_too() -> None:
    """`dependencies` (draft 7) maps names to schemas or to lists of names: an invalid
    pattern in one was not seen (a review found it)."""
    from capacity.serve.schema_args import SchemaError, check_schema

    with pytest.raises(SchemaError, match="/dependencies/a/properties/b/pattern"):
        check_schema({"type": "object", "dependencies": {
            "a": {"properties": {"b": {"type": "string", "pattern": "(a"}}}, "c": ["a"]}})
    check_schema({"type": "object", "dependencies": {"c": ["a"]}})
