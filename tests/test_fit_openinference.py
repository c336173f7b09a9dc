"""OpenInference spans: the official `openai` SDK against `capacity serve`, instrumented by
`openinference-instrumentation-openai` (llm.model_name, llm.token_count.*, session.id via
`using_session`), exported by the OTLP JSON file exporter, read and fitted by capacity fit.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from openinference.instrumentation import using_session
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from capacity import load_profile
from capacity.fit.fitter import fit_read
from capacity.fit.readers import read_traces
from capacity.serve import ServeOptions, ServerThread

from .fit_agent import SERVE_PROFILE

SESSIONS, TURNS = 3, 5


def test_openinference_spans_fit(tmp_path: Path) -> None:
    out = tmp_path / "oi.otlp.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(str(out))))
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=provider)
    seen: list[tuple[str, int, int]] = []
    try:
        opts = ServeOptions(time_scale=50.0, seed=3)
        with ServerThread(load_profile(SERVE_PROFILE), opts) as srv:
            client = openai.OpenAI(base_url=srv.openai_base_url, api_key="mock", max_retries=2)
            tracer = provider.get_tracer("capacity.tests")
            try:
                for t in range(TURNS):
                    for s in range(SESSIONS):
                        with using_session(f"s{s}"), tracer.start_as_current_span("turn"):
                            for model, mt in (("mock-planner", 512), ("mock-judge", 64)):
                                r = client.chat.completions.create(
                                    model=model, max_tokens=mt,
                                    messages=[{"role": "user", "content": f"turn {t} " * 20}])
                                assert r.usage is not None
                                seen.append((model, r.usage.prompt_tokens,
                                             r.usage.completion_tokens))
            finally:
                client.close()
    finally:
        inst.uninstrument()
        provider.force_flush()
        provider.shutdown()
    first = json.loads(out.read_text().splitlines()[0])
    attrs = {a["key"] for rs in first["resourceSpans"] for ss in rs["scopeSpans"]
             for sp in ss["spans"] for a in sp.get("attributes", [])}
    assert {"llm.model_name", "llm.token_count.prompt", "session.id"} <= attrs
    read = read_traces([out])
    assert len(read.calls) == len(seen) == 2 * SESSIONS * TURNS and not read.skipped
    res = fit_read(read)
    assert (res.sessions, res.turns) == (SESSIONS, SESSIONS * TURNS)
    (tt,) = res.types
    assert [(s.kind, s.call.model, s.call.max_tokens) for s in tt.steps] == [
        ("call", "mock-planner", 512), ("call", "mock-judge", 64)]
    for step in tt.steps:
        outs = [o for m, _, o in seen if m == step.call.model]
        assert step.call.output_tokens.dist.mean == pytest.approx(
            sum(outs) / len(outs), rel=0.05)
