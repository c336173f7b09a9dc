"""A real instrumented LangGraph agent against `capacity serve`, then `capacity fit` on its spans.

The agent (tests/fit_agent.py) runs 4 sessions x 8 turns against the mock serving
tests/data/agent-serve.yaml at time scale 50, instrumented by the official
opentelemetry-instrumentation-openai-v2 and exported by the official OTLP JSON file
exporter. The fit must recover the serving profile's structure: the fan-out counts and
the planner's loop lengths the agent actually ran (exactly) and the serving profile's
(within sampling error), and the output-token means per model within 5%.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from capacity import load_profile
from capacity.fit.fitter import fit_read, scale_times
from capacity.fit.readers import read_traces

from .fit_agent import SERVE_PROFILE, TOOL_PROBABILITY, run_agent


def _open_sockets() -> int:
    """This process's open sockets (Linux: /proc/self/fd)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # an fd closed while listing
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n


def test_fit_recovers_the_agent_structure(tmp_path: Path) -> None:
    trace = tmp_path / "agent.otlp.jsonl"
    before = _open_sockets() if sys.platform == "linux" else 0
    run = run_agent(trace, sessions=4, turns=8, seed=7)
    assert run.turns == 32
    # The agent's HTTP connections are closed with its run (langchain's cached clients
    # kept 5 open past the run's event loop: "unclosed transport" warnings elsewhere).
    assert sys.platform != "linux" or _open_sockets() <= before
    read = read_traces([trace])
    assert not read.skipped and read.sessionless_turns == 0
    scale_times(read, 50.0)
    res = fit_read(read)
    assert (res.sessions, res.turns) == (4, 32)
    (tt,) = res.types
    plan, write, judge = tt.steps
    # Fan-out: exactly what the agent launched, turn by turn.
    assert write.kind == "parallel" and write.count is not None
    got = dict(zip(write.count.dist.values, write.count.dist.weights, strict=True))
    want = {float(k): v / run.turns for k, v in Counter(run.fanouts).items()}
    assert got == pytest.approx(want)
    # Loop: the planner ran 1 call, or 2 around a tool round; exactly as the agent saw...
    assert plan.kind == "repeat" and plan.count is not None
    loops = dict(zip(plan.count.dist.values, plan.count.dist.weights, strict=True))
    seen = {float(k): v / run.turns for k, v in Counter(run.planner_calls).items()}
    assert loops == pytest.approx(seen)
    # ...and, within sampling error, as the serving profile says (tool probability 0.6).
    se = math.sqrt(TOOL_PROBABILITY * (1 - TOOL_PROBABILITY) / run.turns)
    assert abs(loops.get(2.0, 0.0) - TOOL_PROBABILITY) < 3.5 * se
    # Token means: output against the serving profile, input against what the client saw.
    serve = load_profile(SERVE_PROFILE)
    truth = {c.call.model: c.call.output_tokens.mean
             for t in serve.session.turns.values() for c in _calls(t.steps)}
    for step in (plan, write, judge):
        model = step.call.model
        assert step.call.output_tokens.dist.mean == pytest.approx(truth[model], rel=0.05)
        client_in = [u[0] for u in run.usage[model]]
        assert step.call.input_tokens.dist.mean == pytest.approx(
            sum(client_in) / len(client_in), rel=0.05)
    assert res.pacing.mode == "think_time"


def _calls(steps: list) -> list:
    out = []
    for s in steps:
        kind = next(k for k in ("call", "parallel", "optional", "repeat") if hasattr(s, k))
        out.append(s if kind == "call" else getattr(s, kind))
    return out


def test_cli_on_agent_spans(tmp_path: Path) -> None:
    """The command end to end on the shipped real trace: a valid profile and a report."""
    out, png = tmp_path / "agent.yaml", tmp_path / "agent.png"
    r = subprocess.run([sys.executable, "-m", "capacity", "fit",
                        "tests/data/agent-trace.otlp.jsonl", "--time-scale", "50",
                        "--quota-from", str(SERVE_PROFILE), "-o", str(out),
                        "--report", str(png)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    prof = load_profile(out)
    assert set(prof.models) == {"mock-planner", "mock-writer", "mock-judge"}
    assert "32 turns" in r.stderr and png.stat().st_size > 10_000
