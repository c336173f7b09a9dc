"""capacity fit: request-log format, readers and their errors, fits, structure, CLI."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from capacity import load_profile, profile_from_dict
from capacity.fit.families import fit_continuous, fit_count, ks_limit
from capacity.fit.fitter import fit_read, scale_times
from capacity.fit.jsonl import CallRecord, RequestLogError, RequestLogWriter, iter_request_log
from capacity.fit.readers import TraceError, read_traces
from capacity.fit.structure import call_labels, group_turns, turn_types
from capacity.fit.synth import synth_log
from capacity.fit.writer import render_profile

DATA = Path(__file__).parent / "data"


def _log(path: Path, records: list[CallRecord] | list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r.to_json() if isinstance(r, CallRecord) else json.dumps(r)) + "\n")
    return path


def _call(**kw: object) -> dict:
    base = {"session": "s", "turn": 1, "start": 100.0, "end": 101.0, "model": "m",
            "input_tokens": 10, "output_tokens": 5}
    return {**base, **kw}


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capacity", "fit", *args],
                          capture_output=True, text=True, timeout=120)


# -- the JSONL request log ------------------------------------------------------------------


def test_request_log_round_trips_and_omits_defaults() -> None:
    buf = io.StringIO()
    with RequestLogWriter(buf) as w:
        w.write_call(**_call(max_tokens=64, name="plan", ttft=0.25, retries=1, status=200))
        w.write_call(**_call(turn="t2", cached_input_tokens=4))
    lines = buf.getvalue().splitlines()
    assert "status" not in lines[0] and '"retries":1' in lines[0]
    recs = [r for _, r in iter_request_log(io.StringIO(buf.getvalue()))]
    assert recs[0].max_tokens == 64 and recs[0].ttft == 0.25 and recs[0].turn == "1"
    assert recs[1].cached_input_tokens == 4 and recs[1].name is None and w.count == 2


@pytest.mark.parametrize(("record", "rule"), [
    ({k: v for k, v in _call().items() if k != "model"}, "missing key(s) model"),
    (_call(start=1767225600123.0, end=1767225600999.0), "looks like milliseconds"),
    (_call(end=99.0), "is before start"),
    (_call(output_tokens=-1), "output_tokens: expected an integer ≥ 0"),
    (_call(cached_input_tokens=11), "exceeds input_tokens"),
    (_call(colour="red"), "unknown key 'colour'"),
    (_call(ttft=5.0), "longer than the call"),
    # Read as a failed call before (any status outside 2xx is one), silently.
    (_call(status=999), "status: expected an HTTP status (100-599), got 999"),
    (_call(status=0), "status: expected an HTTP status (100-599), got 0"),
    # Read, then written into a profile that did not load ("please report this").
    (_call(max_tokens=0), "max_tokens: expected an integer ≥ 1"),
    (_call(time_scale=0), "time_scale: expected the run's --time-scale K, a number > 0"),
    (_call(time_scale="60"), "time_scale: expected the run's --time-scale K"),
])
def test_request_log_rejects_bad_records(record: dict, rule: str) -> None:
    with pytest.raises(RequestLogError, match=re.escape(rule)):
        CallRecord.from_dict(record)
    with pytest.raises(RequestLogError, match=re.escape(rule)):
        RequestLogWriter(io.StringIO()).write_call(**record)


# -- bad traces: one line naming file and line or span, exit 2 --------------------------------


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "calls.jsonl"
    p.write_text(json.dumps(_call()) + "\n" + '{"session": "s", "turn": 2,\n')
    with pytest.raises(TraceError, match=r"calls.jsonl:2: malformed JSON"):
        read_traces([p])
    out = _run_cli(str(p))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "calls.jsonl:2: malformed JSON" in out.stderr


def test_malformed_otlp_names_line(tmp_path: Path) -> None:
    good = (DATA / "agent-trace.otlp.jsonl").read_text().splitlines()[0]
    p = tmp_path / "spans.json"
    p.write_text(good + "\n" + good[:200] + "\n")
    with pytest.raises(TraceError, match=r"spans.json:2: malformed JSON"):
        read_traces([p])


UNIX0 = 1_767_225_600  # 2026-01-01: OTLP times are Unix nanoseconds


def _span(trace: str, span: str, start_s: float, dur_s: float, attrs: dict,
          parent: str | None = "p0") -> dict:
    def val(v: object) -> dict:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}
    s = {"traceId": trace, "spanId": span, "name": "chat",
         "startTimeUnixNano": str(int((UNIX0 + start_s) * 1e9)),
         "endTimeUnixNano": str(int((UNIX0 + start_s + dur_s) * 1e9)),
         "attributes": [{"key": k, "value": val(v)} for k, v in attrs.items()], "status": {}}
    if parent:
        s["parentSpanId"] = parent
    return s


def _otlp(path: Path, batches: list[list[dict]]) -> Path:
    with open(path, "w") as fh:
        for spans in batches:
            fh.write(json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                                    "scopeSpans": [{"spans": spans}]}]}) + "\n")
    return path


GENAI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
         "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 150}


def test_spans_without_needed_attributes_are_counted_and_named(tmp_path: Path) -> None:
    spans = []
    for t in range(6):
        tid = f"{t:032x}"
        spans.append(_span(tid, f"r{t}", 1000.0 + 60 * t, 5.0,
                           {"gen_ai.conversation.id": "s1"}, parent=None))
        spans.append(_span(tid, f"a{t}", 1000.5 + 60 * t, 2.0, GENAI, parent=f"r{t}"))
        no_usage = {k: v for k, v in GENAI.items() if k != "gen_ai.usage.output_tokens"}
        spans.append(_span(tid, f"b{t}", 1002.5 + 60 * t, 1.0, no_usage, parent=f"r{t}"))
    p = _otlp(tmp_path / "t.json", [spans])
    read = read_traces([p])
    assert read.spans == 18 and len(read.calls) == 6
    assert read.skipped == Counter({"no gen_ai.usage.output_tokens": 6})
    assert read.skipped_at["no gen_ai.usage.output_tokens"].endswith("t.json:1 span b0")
    text = render_profile(fit_read(read), name="t")
    assert "# Skipped 6 LLM span(s) without the needed attributes:" in text
    assert "6 with no gen_ai.usage.output_tokens (first at" in text


@pytest.mark.parametrize("value", [{"intValue": "12"}, {"intValue": 12},
                                   {"stringValue": "12"}, {"doubleValue": 12.0},
                                   {"intValue": "1.2e1"}, {"intValue": 1.2e1}])
def test_a_token_count_in_any_otlp_encoding_of_a_whole_number_is_read(
        tmp_path: Path, value: dict) -> None:
    # OTLP/JSON writes an int64 as a decimal string ("intValue": "12"); some tools write
    # the number itself, a double or a string attribute; protobuf's JSON mapping accepts
    # exponent notation, quoted or not.
    span = _span("ab" * 16, "s0", 1000.0, 1.0, GENAI)
    span["attributes"][2]["value"] = value
    assert span["attributes"][2]["key"] == "gen_ai.usage.input_tokens"
    read = read_traces([_otlp(tmp_path / "spans.json", [[span]])])
    assert [c.input_tokens for c in read.calls] == [12]


@pytest.mark.parametrize(("value", "got"), [
    ({"stringValue": "twelve"}, '"twelve"'), ({"intValue": "12.5"}, '{"intValue": "12.5"}'),
    ({"stringValue": "12.7"}, '"12.7"'), ({"doubleValue": 12.7}, "12.7"),
    ({"intValue": "-5"}, "-5"), ({"boolValue": True}, "true"), ({"stringValue": ""}, '""'),
    ({"intValue": "1.5e0"}, '{"intValue": "1.5e0"}'), ({"intValue": 12.7}, '{"intValue": 12.7}'),
])
def test_a_token_count_that_is_not_a_whole_number_names_span_and_attribute(
        tmp_path: Path, value: dict, got: str) -> None:
    # Read as absent, the span was skipped "with no gen_ai.usage.input_tokens" (it has
    # one); "12.7" and 12.7 were cut to 12 tokens without a word.
    span = _span("ab" * 16, "s0", 1000.0, 1.0, GENAI)
    span["attributes"][2]["value"] = value
    p = _otlp(tmp_path / "spans.json", [[span]])
    said = (f"{p}:1 span s0: gen_ai.usage.input_tokens: expected a whole number of tokens "
            f'≥ 0 (OTLP JSON: {{"intValue": "1200"}}), got {got}')
    with pytest.raises(TraceError) as e:
        read_traces([p])
    assert str(e.value) == said
    r = _run_cli(str(p))
    assert r.returncode == 2 and r.stderr.strip() == "error: " + said, r.stderr


def test_only_incomplete_spans_is_zero_turns_with_the_reason(tmp_path: Path) -> None:
    no_model = {k: v for k, v in GENAI.items() if k != "gen_ai.request.model"}
    p = _otlp(tmp_path / "t.json", [[_span("ab" * 16, f"x{i}", 1000.0 + i, 1.0, no_model)
                                     for i in range(3)]])
    with pytest.raises(TraceError, match=r"zero turns: no LLM call found among 3 span\(s\); "
                       r"3 LLM span\(s\) skipped, e\.g\. 3 with no gen_ai\.request\.model"):
        fit_read(read_traces([p]))
    out = _run_cli(str(p))
    assert out.returncode == 2 and "zero turns" in out.stderr and "Traceback" not in out.stderr


def test_mixed_clocks_are_refused(tmp_path: Path) -> None:
    a = _log(tmp_path / "a.jsonl", [_call(start=1_767_225_600.0, end=1_767_225_601.0)])
    b = _log(tmp_path / "b.jsonl", [_call(start=86_400.0 * 3, end=86_400.0 * 3 + 1)])
    with pytest.raises(TraceError, match=r"a\.jsonl:1: mixed clocks.*at .*b\.jsonl:1"):
        read_traces([b, a])


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(TraceError, match="zero turns"):
        fit_read(read_traces([empty]))
    with pytest.raises(TraceError, match="no such file"):
        read_traces([tmp_path / "nope.jsonl"])


def test_sessions_with_one_turn_cannot_fit_pacing(tmp_path: Path) -> None:
    p = _log(tmp_path / "c.jsonl", [_call(session=f"s{i}") for i in range(5)])
    with pytest.raises(TraceError, match="no session has two turns"):
        fit_read(read_traces([p]))


def _tool_agent_log(path: Path, mode: str, seed: int) -> Path:
    """4 sessions x 8 turns: a call, a tool run of 0-20 s (its own time, not the model's),
    a call; then 1-3 s of think time (closed loop) or the next turn 30-40 s after this
    one's start (cadence, overruns wait for the turn's end)."""
    rng = np.random.default_rng(seed)
    recs = []
    for s in range(4):
        t = float(rng.uniform(0, 10))
        for j in range(8):
            a, tool, b = rng.uniform(1.5, 3), rng.uniform(0, 20), rng.uniform(1.5, 3)
            for i, (t0, t1) in enumerate([(t, t + a), (t + a + tool, t + a + tool + b)]):
                recs.append(CallRecord(f"s{s}", str(j), t0, t1, "m", 100, 50, name=f"c{i}"))
            end = t + a + tool + b
            t = end + rng.uniform(1, 3) if mode == "think_time" else max(
                t + rng.uniform(30, 40), end)
    return _log(path, recs)


@pytest.mark.parametrize("mode", ["think_time", "cadence"])
def test_pacing_is_told_by_the_turn_duration_not_the_time_calls_were_in_flight(
        tmp_path: Path, mode: str) -> None:
    """Tool runs inside a turn vary on their own: they bury the relation between the time
    in flight and the next start (comparing on it picked the wrong mode for 4 of these 10
    think-time logs and 3 of the 10 cadence ones), not the one with the turn's
    start-to-end duration."""
    got = [fit_read(read_traces([_tool_agent_log(tmp_path / f"{seed}.jsonl", mode, seed)]))
           .pacing.mode for seed in range(10)]
    assert got == [mode] * 10


# -- distribution fits ------------------------------------------------------------------------


def test_families_are_recovered_by_aic() -> None:
    rng = np.random.default_rng(11)
    u = fit_continuous(np.round(rng.uniform(4000, 9000, 4000)), "tokens")
    e = fit_continuous(rng.exponential(45.0, 4000), "duration")
    ln = fit_continuous(rng.lognormal(np.log(350), 0.75, 4000), "tokens")
    assert (u.family, e.family, ln.family) == ("uniform", "exponential", "lognormal")
    assert u.dist.params == pytest.approx((4000, 9000), abs=70)  # centred on the mean
    assert e.dist.mean == pytest.approx(45.0, rel=0.05)
    assert ln.dist.params[0] == pytest.approx(350, rel=0.05)
    assert all(f.ks <= ks_limit(f.n) and not f.weak for f in (u, e, ln))
    fixed = fit_continuous([1200.0] * 50, "tokens")
    assert fixed.dist.is_fixed and fixed.dist.mean == 1200


def test_censored_output_tokens_keep_the_clipped_mean() -> None:
    rng = np.random.default_rng(5)
    x = np.minimum(np.round(rng.lognormal(np.log(350), 0.75, 20000)), 1024)
    f = fit_continuous(x, "tokens", cap=1024)
    assert f.family == "lognormal" and f.cap == 1024
    assert f.dist.mean_clipped(1024) == pytest.approx(x.mean(), rel=0.01)
    assert f.ks <= ks_limit(f.n) and f.dist.params[0] == pytest.approx(350, rel=0.03)


def test_no_family_fits_gives_empirical_choice_keeping_the_mean() -> None:
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(100, 3, 1000), rng.normal(900, 3, 1000)]
    f = fit_continuous(x, "tokens")
    assert f.family == "choice (empirical)" and "no family fits" in f.weak
    assert f.dist.mean == pytest.approx(x.mean(), rel=1e-9)


def test_counts() -> None:
    rng = np.random.default_rng(3)
    c = fit_count(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.2, 0.15], size=3000))
    assert c.family == "choice" and c.dist.values == (0, 1, 2, 3)
    assert np.allclose(c.dist.weights, [0.3, 0.35, 0.2, 0.15], atol=0.03)
    u = fit_count(rng.integers(1, 9, size=3000))
    assert u.family == "uniform" and u.dist.params == (1, 8)
    assert fit_count([3] * 10).dist.is_fixed and "only 10 values" in fit_count([3] * 10).weak


# -- structure -----------------------------------------------------------------------------


def _synth(tmp_path: Path, profile: dict | Path, sessions: int, turns: int,
           seed: int = 1, drop_names: bool = False) -> Path:
    prof = load_profile(profile) if isinstance(profile, Path) else profile_from_dict(profile)
    recs = list(synth_log(prof, sessions, turns, np.random.default_rng(seed)))
    if drop_names:
        recs = [CallRecord(**{**r.__dict__, "name": None}) if hasattr(r, "__dict__") else
                CallRecord(r.session, r.turn, r.start, r.end, r.model, r.input_tokens,
                           r.output_tokens, r.cached_input_tokens, r.max_tokens, r.status,
                           r.retries, None, r.ttft) for r in recs]
    return _log(tmp_path / "log.jsonl", recs)


OPTIONAL_PROFILE = {
    "models": {"a": {"tokens_per_second": 50}, "b": {"tokens_per_second": 100}},
    "quotas": {"q": {"models": ["a", "b"], "rpm": 1000}},
    "session": {"think_time": {"exponential": "30s"}, "turns": {
        "t": {"steps": [
            {"call": {"name": "first", "model": "a", "input_tokens": 500,
                      "output_tokens": {"uniform": [50, 100]}, "max_tokens": 256}},
            {"optional": {"probability": 0.3, "call": {
                "name": "check", "model": "b", "input_tokens": 300, "output_tokens": 20}}},
            {"parallel": {"count": {"uniform": [2, 5]}, "call": {
                "name": "fan", "model": "b", "input_tokens": 800, "output_tokens": 200}}},
        ]},
        "u": {"weight": 0.5, "steps": [
            {"call": {"name": "solo", "model": "a", "input_tokens": 100, "output_tokens": 10,
                      "max_tokens": 256}}]},
    }},
}


def test_optional_parallel_and_turn_mix_are_recovered(tmp_path: Path) -> None:
    res = fit_read(read_traces([_synth(tmp_path, OPTIONAL_PROFILE, 60, 40)]))
    by = {t.name: t for t in res.types}
    assert set(by) == {"first", "solo"}
    assert by["solo"].weight == pytest.approx(1 / 3, abs=0.03)
    kinds = [s.kind for s in by["first"].steps]
    assert kinds == ["call", "optional", "parallel"]
    assert by["first"].steps[1].probability == pytest.approx(0.3, abs=0.03)
    fan = by["first"].steps[2]
    assert fan.count is not None and fan.count.dist.kind == "uniform"
    assert fan.count.dist.params == (2, 5)
    assert res.pacing.mode == "think_time"


def test_unnamed_calls_are_labelled_by_model_and_max_tokens(tmp_path: Path) -> None:
    path = _synth(tmp_path, Path("profiles/tool-agent.yaml"), 40, 30, drop_names=True)
    read = read_traces([path])
    labels = set(call_labels(read.calls))
    assert labels == {"gpt-4.1 max_tokens 1024", "gpt-4.1 max_tokens 4096", "gpt-4.1-mini"}
    types = turn_types(group_turns(read.calls), call_labels(read.calls))
    main = types[0]
    assert [e.label for e in main.elements] == ["gpt-4.1 max_tokens 1024",
                                                "gpt-4.1 max_tokens 4096"]
    # plan + 0..3 tool steps share a label: one loop of 1..4 calls
    assert Counter(main.elements[0].counts).keys() == {1, 2, 3, 4}


def test_fitted_profile_validates_and_says_where_it_came_from(tmp_path: Path) -> None:
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    text = render_profile(fit_read(read_traces([path])), name="wr")
    prof = profile_from_dict(yaml.safe_load(text))
    assert prof.name == "wr"
    assert "#   20 sessions, 200 turns, 1,000 calls." in text
    assert "PLACEHOLDER" in text and "placeholder" in prof.quotas
    assert "Pacing: cadence" in text


def test_quota_from_copies_quotas_retry_and_targets(tmp_path: Path) -> None:
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    out = tmp_path / "fitted.yaml"
    png = tmp_path / "fit.png"
    r = _run_cli(str(path), "--quota-from", "profiles/web-research.yaml", "-o", str(out),
                 "--report", str(png))
    assert r.returncode == 0, r.stderr
    prof = load_profile(out)
    ref = load_profile("profiles/web-research.yaml")
    assert prof.quotas == ref.quotas and prof.retry == ref.retry and prof.targets == ref.targets
    assert prof.name == "fitted" and "200 turns" in r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    bad = _run_cli(str(path), "--quota-from", "profiles/chat-assistant.yaml")
    assert bad.returncode == 2 and "none of its quotas covers a model" in bad.stderr


def test_report_format_follows_its_name(tmp_path: Path) -> None:
    # A PNG was written whatever the name (--report fit.txt: a .txt holding a PNG).
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    txt = tmp_path / "fit.txt"
    r = _run_cli(str(path), "--report", str(txt))
    assert r.returncode == 2 and not txt.exists() and r.stdout == ""
    assert r.stderr.strip() == f"error: --report {txt}: give a file ending in .png, .svg or .pdf"
    svg = tmp_path / "fit.svg"
    assert _run_cli(str(path), "--report", str(svg)).returncode == 0
    assert b"<svg" in svg.read_bytes()[:1000]


# -- streaming --------------------------------------------------------------------------------


def _peak_reading(path: Path, batches: int) -> tuple[int, int, int]:
    """(file size, peak traced bytes while reading, calls) for a file of ``batches`` lines."""
    payload = "x" * 2000
    lines = []
    for b in range(batches):
        spans = []
        for i in range(10):
            t = b * 10 + i
            tid = f"{t:032x}"
            spans.append(_span(tid, f"r{t}", 1000.0 + 10 * t, 5.0,
                               {"gen_ai.conversation.id": f"s{t % 4}", "big": payload},
                               parent=None))
            spans.append(_span(tid, f"c{t}", 1000.5 + 10 * t, 2.0,
                               {**GENAI, "gen_ai.input.messages": payload}, parent=f"r{t}"))
            spans.extend(_span(tid, f"h{t}.{k}", 1000.5 + 10 * t, 0.1, {"http": payload},
                               parent=f"r{t}") for k in range(3))
        lines.append(spans)
    p = _otlp(path, lines)
    tracemalloc.start()
    read = read_traces([p])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert read.spans == 50 * batches
    return p.stat().st_size, peak, len(read.calls)


def test_reading_keeps_calls_not_span_payloads(tmp_path: Path) -> None:
    """Memory grows with the LLM calls kept (under 1.5 kB each), not with the spans
    read or their payloads: 4x the spans (and bytes) cost a small fraction more."""
    small = _peak_reading(tmp_path / "small.jsonl", 20)
    big = _peak_reading(tmp_path / "big.jsonl", 80)
    assert big[0] > 3.9 * small[0] and big[2] == 4 * small[2] == 800
    assert big[1] - small[1] < 1500 * (big[2] - small[2]), (small, big)
    assert big[1] < big[0] / 4, (small, big)


# -- the shipped real trace (produced by tests/fit_agent.py) --------------------------------


def test_shipped_agent_trace_fits_the_serving_structure() -> None:
    """The spans of the real instrumented agent (tests/data/agent-trace.otlp.jsonl)."""
    read = read_traces([DATA / "agent-trace.otlp.jsonl"])
    assert read.spans > len(read.calls) > 100 and not read.skipped
    res = fit_read(read)
    (tt,) = res.types
    plan, write, judge = tt.steps
    assert (plan.call.model, write.call.model, judge.call.model) == (
        "mock-planner", "mock-writer", "mock-judge")
    assert plan.kind == "repeat" and plan.count is not None
    assert set(plan.count.dist.values) == {1, 2}
    assert write.kind == "parallel" and write.count is not None
    assert set(write.count.dist.values) == {2, 3, 4}
    serve = load_profile(DATA / "agent-serve.yaml")
    truth = {"mock-planner": 100.0, "mock-writer": 300.0, "mock-judge": 20.0}
    assert {s.call.model: s.call.output_tokens.dist.mean for s in tt.steps} == pytest.approx(
        truth, rel=0.05)
    assert {m for m in serve.models} == set(res.models)


def test_call_names_that_read_as_numbers_stay_names(tmp_path: Path) -> None:
    """A call name such as ``1e+308`` (a trace attribute that was a number) is written
    quoted: YAML 1.2 would read it back as a float and the profile would not validate."""
    log = tmp_path / "calls.jsonl"
    with RequestLogWriter(log) as w:
        for s in range(3):
            for t in range(4):
                start = 1_700_000_000.0 + s * 1000 + t * 60
                for k, name in enumerate(("1e+308", "0x10")):
                    w.write(CallRecord(session=f"s{s}", turn=f"t{t}", start=start + 5 * k,
                                       end=start + 5 * k + 2, model="m", input_tokens=100,
                                       output_tokens=10, name=name))
    text = render_profile(fit_read(read_traces([log])))
    names = [c["call"]["name"] for turn in yaml.safe_load(text)["session"]["turns"].values()
             for c in turn["steps"]]
    assert names == ["1e+308", "0x10"]
    out = tmp_path / "fitted.yaml"
    out.write_text(text)
    load_profile(out)  # the project's loader reads YAML 1.2 numbers (1e+308 is a float)


def test_output_above_max_tokens_is_cut_and_said(tmp_path: Path) -> None:
    # A provider stops at max_tokens: a log saying otherwise must not be fitted silently
    # (it was: "86 cut at 400" and a lognormal with its median above the cap, no warning).
    rng = np.random.default_rng(3)
    recs, t = [], 0.0
    for s in range(40):
        for turn in range(4):
            t += float(rng.exponential(30.0))
            out = int(rng.integers(100, 701))
            recs.append(_call(session=f"s{s}", turn=turn, start=t, end=t + 0.5 + out / 100,
                              output_tokens=out, max_tokens=400))
            t += 0.5 + out / 100
    over = sum(r["output_tokens"] > 400 for r in recs)
    res = fit_read(read_traces([_log(tmp_path / "over.jsonl", recs)]))
    out = res.types[0].steps[0].call.output_tokens
    assert out.sample.max() == 400  # counted as cut where the profile cuts
    weak = dict(res.weak_fits())
    where = "session.turns.m.steps.0 output_tokens"
    assert where in weak and f"{over:,} of 160 calls logged more output tokens" in weak[where]
    proc = _run_cli(str(tmp_path / "over.jsonl"))
    assert proc.returncode == 0 and "1 weak fit(s)" in proc.stderr
    assert "logged more output tokens than their max_tokens" in proc.stdout


def test_span_max_tokens_of_zero_reads_as_not_sent() -> None:
    # A span's max_tokens of 0 (an unset value) was written as max_tokens: 0, a profile
    # that does not load.
    from capacity.fit.readers import _max_tokens

    assert _max_tokens({"gen_ai.request.max_tokens": 0}, "s") is None
    assert _max_tokens({"llm.invocation_parameters": '{"max_tokens": 0}'}, "s") is None
    assert _max_tokens({"gen_ai.request.max_tokens": 256}, "s") == 256
    with pytest.raises(TraceError, match=r"^s: llm\.invocation_parameters max_tokens: "
                       r"expected a whole number of tokens ≥ 0 .*, got \"all\"$"):
        _max_tokens({"llm.invocation_parameters": '{"max_tokens": "all"}'}, "s")


# -- the third error hunt ----------------------------------------------------------------------


def test_output_and_trace_paths_are_one_line_errors(tmp_path: Path) -> None:
    # `fit -o DIR` was a traceback (IsADirectoryError, exit 3); a directory given as a
    # trace said "no such file"; a trace given twice was read twice, each turn's calls
    # doubled into a fan-out of 2 (exit 0, a silently wrong profile).
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    same = tmp_path / "link.jsonl"  # the same file by another name
    same.symlink_to(path)
    for args, line in [
            ((str(path), "-o", str(tmp_path)), f"error: --output {tmp_path}: is a directory"),
            ((str(tmp_path),), f"error: {tmp_path}: is a directory, not a trace file"),
            ((str(path), str(same)),
             f"error: {same}: given more than once (as {path}); each file is read once"),
            ((str(path), f"{tmp_path}/./{path.name}"),
             f"error: {path}: given more than once; each file is read once"),
    ]:
        r = _run_cli(*args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
        assert r.stderr.strip() == line, (args, r.stderr)
    if Path("/dev/full").exists():
        r = _run_cli(str(path), "-o", "/dev/full")
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
            "error: --output /dev/full: cannot write: No space left on device"), r.stderr


def test_a_trace_on_standard_input(tmp_path: Path) -> None:
    # `fit -` said "-: no such file"; '-' is standard input wherever a file goes.
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    by_name = _run_cli(str(path))
    piped = subprocess.run([sys.executable, "-m", "capacity", "fit", "-"],
                           input=path.read_text(), capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0 and by_name.returncode == 0, piped.stderr
    assert piped.stdout.replace("<stdin>", "") == by_name.stdout.replace(str(path), "")
    dash = tmp_path / "-"  # a file named '-', given as ./-, is that file (review)
    dash.write_text(path.read_text())
    named = subprocess.run([sys.executable, "-m", "capacity", "fit", "./-"], input="",
                           capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert named.returncode == 0 and named.stdout.replace("./-", "") == by_name.stdout.replace(
        str(path), ""), named.stderr
    bad = subprocess.run([sys.executable, "-m", "capacity", "fit", "-", "-"],
                         input="", capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: '-' (standard input) given more than once; it can be read only once")
    bad = subprocess.run([sys.executable, "-m", "capacity", "fit", "-"],
                         input='{"x": 1}\n', capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: <stdin>:1: missing key")


def test_quota_from_takes_a_shipped_profile_name(tmp_path: Path) -> None:
    # Every PROFILE argument takes a shipped name (`capacity profiles` says so);
    # --quota-from said "web-research: no such file".
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    out = tmp_path / "fitted.yaml"
    r = _run_cli(str(path), "--quota-from", "web-research", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert load_profile(out).quotas == load_profile("profiles/web-research.yaml").quotas
    r = _run_cli(str(path), "--quota-from", "web-reserch")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: web-reserch: no such file, nor a shipped profile (did you mean "
        "'web-research'?)"), r.stderr


def test_a_time_scale_that_leaves_no_valid_profile_names_the_option(tmp_path: Path) -> None:
    # The traces' durations times K gave generation speeds outside the profile's range;
    # the error called it a bug ("the fitted profile does not validate (...); please
    # report this with the trace file").
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    r = _run_cli(str(path), "--time-scale", "1e-9")
    line = r.stderr.strip()
    assert r.returncode == 2 and len(line.splitlines()) == 1, r.stderr
    assert line.startswith("error: --time-scale 1e-09: the traces' durations multiplied by "
                           "it fit no valid profile (models.gpt-4o.tokens_per_second: "), line
    assert "please report" not in line


@pytest.mark.parametrize("name", ["m\nquotas: {}", "m\rx", "m\u2028x", "m\x85x", "m\x07x"])
def test_trace_names_with_line_breaks_stay_in_their_comments(tmp_path: Path,
                                                            name: str) -> None:
    # A model or call name holding a line break ended the comment that cites it and
    # started YAML: a traceback (ScannerError, exit 3) or "the fitted profile does not
    # validate ... please report this"; a control character made the YAML unreadable.
    # (A duration that does not grow with the output makes the header cite the model.)
    recs = [_call(session=f"s{s}", turn=t, start=1000.0 + 100 * s + 10 * t,
                  end=1001.0 + 100 * s + 10 * t, model=name, name=name,
                  output_tokens=5 + s + t)
            for s in range(6) for t in range(5)]
    text = render_profile(fit_read(read_traces([_log(tmp_path / "n.jsonl", recs)])))
    assert "latency could not be split" in text
    prof = profile_from_dict(yaml.safe_load(text))
    assert list(prof.models) == [name]


# -- the fourth error hunt (review of 00e4fe5) ---------------------------------------------


def test_two_logs_pool_as_separate_sessions(tmp_path: Path) -> None:
    # Two load-test logs at one N reuse session ids (N10-s0, ...): their calls were merged
    # into the same turns, 9.88 calls/turn and an invented fan-out. Each file's sessions are
    # its own; a JSONL log given twice under two names is two runs, same shape.
    path = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text())
    one, two = fit_read(read_traces([path])), fit_read(read_traces([path, copy]))
    assert (two.sessions, two.turns, two.calls) == (2 * one.sessions, 2 * one.turns,
                                                    2 * one.calls)
    assert [[s.kind for s in t.steps] for t in two.types] == [
        [s.kind for s in t.steps] for t in one.types]
    assert any("appear in more than one request log" in n for n in two.notes)


def test_an_otlp_span_read_twice_is_kept_once(tmp_path: Path) -> None:
    # An OTLP file given twice (a copy) doubled every turn: 348 calls, 10.89 calls/turn,
    # `parallel: count: 2`. A trace id is global (a trace may span rotated files), so a
    # repeated (traceId, spanId) is the same span: kept once, with a note.
    copy = tmp_path / "c.jsonl"
    copy.write_text((DATA / "agent-trace.otlp.jsonl").read_text())
    one = fit_read(read_traces([DATA / "agent-trace.otlp.jsonl"]))
    two = fit_read(read_traces([DATA / "agent-trace.otlp.jsonl", copy]))
    assert (two.sessions, two.turns, two.calls) == (one.sessions, one.turns, one.calls) == (
        4, 32, 174)
    assert render_profile(two, name="x").split("\nname:")[1] == render_profile(
        one, name="x").split("\nname:")[1]
    assert any(n.startswith("174 LLM span(s) were read before") for n in two.notes)


@pytest.mark.parametrize(("scale", "looks"), [
    (1e-3, "looks like Unix microseconds"), (1e-6, "looks like Unix milliseconds"),
    (1e-9, "looks like Unix seconds"), (None, "looks like Unix seconds"),
])
def test_otlp_times_in_another_unit_are_refused(tmp_path: Path, scale: float | None,
                                                looks: str) -> None:
    # Read as nanoseconds whatever they were: µs gave a profile 1000x too fast (exit 0);
    # ms or float seconds "fitted profile does not validate ... please report this".
    spans = []
    for t in range(4):
        for s in (_span(f"{t:032x}", f"r{t}", 60.0 * t, 5.0, {"session.id": "s"}, None),
                  _span(f"{t:032x}", f"a{t}", 60.0 * t + 1, 2.0, GENAI, f"r{t}")):
            for k in ("startTimeUnixNano", "endTimeUnixNano"):
                ns = int(s[k])
                s[k] = ns / 1e9 if scale is None else str(int(ns * scale))  # float seconds
            spans.append(s)
    p = _otlp(tmp_path / "t.json", [spans])
    r = _run_cli(str(p))
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr.startswith(f"error: {p}:1 span r0: startTimeUnixNano ") and (
        f"{looks}; OTLP times are Unix nanoseconds" in r.stderr), r.stderr


def test_a_jsonl_log_in_milliseconds_from_zero_is_refused(tmp_path: Path) -> None:
    # A clock from 0 in ms passed the Unix-milliseconds check: exit 0, ttft 17-84 min.
    recs = [_call(session=f"s{s}", turn=t, start=1000.0 * (60 * t + s),
                  end=1000.0 * (60 * t + s) + 2500.0) for s in range(3) for t in range(4)]
    p = _log(tmp_path / "ms.jsonl", recs)
    r = _run_cli(str(p))
    assert r.returncode == 2 and r.stderr.strip() == (
        f"error: {p}: the median call takes 2,500 s (42 min): are the times in milliseconds? "
        "start and end are seconds"), r.stderr


def test_unix_logs_months_apart_are_one_clock(tmp_path: Path) -> None:
    # Two days' logs 40 days apart were "mixed clocks"; a Unix time beside a clock from 0
    # still is.
    day = 86_400.0
    a = _log(tmp_path / "a.jsonl", [_call(start=1_767_225_600.0, end=1_767_225_601.0)])
    b = _log(tmp_path / "b.jsonl", [_call(start=1_767_225_600.0 + 40 * day,
                                          end=1_767_225_601.0 + 40 * day)])
    assert len(read_traces([a, b]).calls) == 2
    c = _log(tmp_path / "c.jsonl", [_call(start=5.0, end=6.0)])
    with pytest.raises(TraceError, match=r"a\.jsonl:1: mixed clocks: time 1\.76723e\+09 s is "
                       r"Unix time but 5 s at .*c\.jsonl:1 is not"):
        read_traces([c, a])


def test_a_trace_from_a_pipe(tmp_path: Path) -> None:
    # `fit <(zcat log.gz)` gives a FIFO (/dev/fd/63): "no such file"; a device is not one.
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = (DATA / "agent-trace.otlp.jsonl").read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    read = read_traces([fifo])
    writer.join()
    assert len(read.calls) == 174 and read.files == [str(fifo)]
    with pytest.raises(TraceError, match="/dev/null: not a regular file or pipe"):
        read_traces(["/dev/null"])


def test_a_trace_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    # Windows tools (Notepad, PowerShell's Out-File) start UTF-8 files with a BOM; the
    # reader said "<file>:1: malformed JSON" for a log every JSON tool reads.
    log = _synth(tmp_path, Path("profiles/web-research.yaml"), 5, 4)
    otlp = DATA / "agent-trace.otlp.jsonl"
    for src, calls in ((log, len(read_traces([log]).calls)), (otlp, 174)):
        bom = tmp_path / f"bom-{src.name}"
        bom.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
        assert len(read_traces([bom]).calls) == calls, src
        r = subprocess.run([sys.executable, "-m", "capacity", "fit", "-"],
                           input=bom.read_bytes(), capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
    # Only at the start: a BOM on line 2 is no part of JSON there.
    two = tmp_path / "two.jsonl"
    two.write_bytes(log.read_bytes().replace(b"\n", b"\n\xef\xbb\xbf", 1))
    with pytest.raises(TraceError, match=r"two.jsonl:2: "):
        read_traces([two])


def test_a_byte_that_is_not_utf8_is_placed_by_its_line(tmp_path: Path) -> None:
    # Streamed, the decoder's offset is within its 8 kB chunk: a 0xff at byte 231,601
    # (line 2,000) was reported "at byte 2225", nowhere near it.
    rows = [json.dumps(_call(session=f"s{i // 5}", turn=i % 5 + 1, start=100.0 + i,
                             end=101.0 + i)) for i in range(2000)]
    data = ("\n".join(rows) + "\n").encode()
    at = data.rindex(b'"model"')
    p = tmp_path / "bad.jsonl"
    p.write_bytes(data[:at] + b"\xff" + data[at:])
    col = at - data.rindex(b"\n", 0, at)
    said = f"{p}:2000: not UTF-8 text (invalid start byte at column {col})"
    with pytest.raises(TraceError) as e:
        read_traces([p])
    assert str(e.value) == said
    r = subprocess.run([sys.executable, "-m", "capacity", "fit", "-"], input=p.read_bytes(),
                       capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.decode().strip() == "error: " + said.replace(
        str(p), "<stdin>"), r.stderr


def test_a_compressed_trace_says_to_decompress_it(tmp_path: Path) -> None:
    # "t.jsonl.gz:1: not UTF-8 text (invalid start byte at column 2)" did not say why.
    import gzip

    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(gzip.compress((DATA / "agent-trace.otlp.jsonl").read_bytes()))
    with pytest.raises(TraceError) as e:
        read_traces([p])
    assert str(e.value) == (f"{p}: gzip-compressed, not text: decompress it first "
                            f"(capacity fit <(zcat {p}))")
    r = subprocess.run([sys.executable, "-m", "capacity", "fit", "-"], input=p.read_bytes(),
                       capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.decode().strip() == (
        "error: <stdin>: gzip-compressed, not text: decompress it first "
        "(zcat FILE | capacity fit -)"), r.stderr


@pytest.mark.parametrize(("text", "said"), [
    # Python's type names ("got list", "got NoneType") are not what the file holds.
    ("[]\n", "t.json:1: expected a JSON object, got an array"),
    ("null\n", "t.json:1: expected a JSON object, got null"),
    ('{"resourceSpans": {}}\n', "t.json:1: resourceSpans is not a JSON array (got an object)"),
    ('{"resourceSpans": [{"resource": 5}]}\n',
     "t.json:1: resource is not a JSON object (got a number)"),
])
def test_a_wrong_json_type_is_named_as_json(tmp_path: Path, text: str, said: str) -> None:
    p = tmp_path / "t.json"
    p.write_text(text)
    with pytest.raises(TraceError) as e:
        read_traces([p])
    assert str(e.value) == f"{tmp_path}/{said}"


def test_calls_of_one_duration_fit_as_ttft_not_a_rate_past_the_schema(
        tmp_path: Path) -> None:
    # Every call 3.5 s whatever its output: the least-squares slope was float noise
    # (~1e-16 s per token), its inverse 1.08e16 tokens/s, and fit ended "the fitted
    # profile does not validate (models.m.tokens_per_second: ...); please report this".
    rows = [_call(session=f"s{s}", turn=t + 1, start=UNIX0 + 7.0 * s + 120.0 * t,
                  end=UNIX0 + 7.0 * s + 120.0 * t + 3.5, input_tokens=1000 + t,
                  output_tokens=50 + s) for s in range(8) for t in range(6)]
    p = _log(tmp_path / "flat.jsonl", rows)
    r = _run_cli(str(p))
    assert r.returncode == 0, r.stderr
    model = yaml.safe_load(r.stdout)["models"]["m"]
    assert model["tokens_per_second"] == 1_000_000 and "3.5s" in str(model["ttft"]), model
    assert "ttft carries it all" in r.stdout


# -- a log recorded at --time-scale K says so ---------------------------------------------


def _recorded_at(src: Path, dst: Path, k: float, lines: slice = slice(None)) -> Path:
    """``src`` (model seconds) as a run at ``--time-scale k`` logs it: times k× short
    around the first start, ``time_scale`` k on the lines in ``lines``."""
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    t0 = min(r["start"] for r in rows)
    for r in rows:
        r["start"], r["end"] = t0 + (r["start"] - t0) / k, t0 + (r["end"] - t0) / k
        if r.get("ttft") is not None:
            r["ttft"] /= k
    for r in rows[lines]:
        r["time_scale"] = k
    dst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dst


def _fitted(paths: list[Path], k: float | None = None) -> tuple[str, list[str]]:
    """The fitted profile without its header comments, and the fit's notes."""
    read = read_traces(paths)
    scale_times(read, k)
    res = fit_read(read)
    return render_profile(res, name="x").split("\nname:")[1], res.notes


def test_a_log_that_records_its_time_scale_is_fitted_in_model_time(tmp_path: Path) -> None:
    # `loadtest --time-scale 60 --log` wrote wall-clock times; `fit` without --time-scale
    # read them 60× too fast (a web-research log: napkin 1 session instead of 74). The log
    # now records its K and fit multiplies by it, saying so.
    model = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    wall = _recorded_at(model, tmp_path / "wall.jsonl", 60.0)
    want, _ = _fitted([model])
    got, notes = _fitted([wall])
    assert got == want
    assert f"{wall}: times multiplied by 60, the time scale the log records (time_scale)" in (
        notes)
    assert _fitted([wall], 60.0)[0] == want  # the K it records, given: the same
    # A log that records none is as before: --time-scale multiplies it.
    assert _fitted([_recorded_at(model, tmp_path / "old.jsonl", 60.0, slice(0))],
                   60.0)[0] == want
    # Logs recorded at different K (one in real time) are each stretched by their own.
    copy = tmp_path / "copy.jsonl"
    copy.write_text(model.read_text())
    assert _fitted([wall, copy])[0] == _fitted([model, copy])[0]


def test_a_time_scale_other_than_the_logs_is_one_error(tmp_path: Path) -> None:
    model = _synth(tmp_path, Path("profiles/web-research.yaml"), 20, 10)
    wall = _recorded_at(model, tmp_path / "wall.jsonl", 60.0)
    r = _run_cli(str(wall), "--time-scale", "20")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.strip() == (
        f"error: {wall}:1: the log records time_scale 60 (it was recorded at --time-scale "
        "60) but --time-scale 20 was given; give --time-scale 60, or none"), r.stderr
    r = _run_cli(str(wall), "--time-scale", "60")
    assert r.returncode == 0 and "times multiplied by 60" in r.stdout, r.stderr


@pytest.mark.parametrize(("lines", "said"), [
    (slice(1), "records no time_scale but line 1 records time_scale 60"),
    (slice(1, None), "records time_scale 60 but line 1 records no time_scale"),
])
def test_lines_of_one_log_at_two_time_scales_are_refused(tmp_path: Path, lines: slice,
                                                          said: str) -> None:
    model = _synth(tmp_path, Path("profiles/web-research.yaml"), 2, 2)
    wall = _recorded_at(model, tmp_path / "wall.jsonl", 60.0, lines)
    with pytest.raises(TraceError, match=re.escape(
            f"{wall}:2: {said}; a log is one run at one time scale")):
        read_traces([wall])
    rows = [json.loads(x) for x in wall.read_text().splitlines()]
    rows[2]["time_scale"] = 20
    _log(wall, [{**r, "time_scale": 60} for r in rows[:2]] + rows[2:3])
    with pytest.raises(TraceError, match=re.escape(
            f"{wall}:3: records time_scale 20 but line 1 records time_scale 60")):
        read_traces([wall])


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names must be UTF-8")
def test_an_output_name_that_is_not_text_still_names_a_loadable_profile(
        tmp_path: Path) -> None:
    # `fit -o o\xe9.yaml`: the profile was named "o\udce9" (the stem's lone surrogate), a
    # YAML escape that validate then refused.
    out = os.path.join(os.fsencode(tmp_path), b"o\xe9.yaml")
    trace = Path(__file__).parent / "data" / "agent-trace.otlp.jsonl"
    r = subprocess.run([sys.executable, "-m", "capacity", "fit", str(trace), "-o", out],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert load_profile(os.fsdecode(out)).name == "o\ufffd"
