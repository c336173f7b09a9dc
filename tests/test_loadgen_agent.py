"""--agent-url: the example LangGraph agent (examples/agent_service), served over HTTP and
pointed at an in-process capacity serve, load-tested as users see it; its measured 429
fraction (read from the mock's /metrics) beside the prediction for the profile that
describes it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from capacity import load_profile
from capacity.serve import ServeOptions, ServerThread

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "examples" / "agent_service" / "profile.yaml"
K = 20.0


@pytest.fixture(name="mock")
def _mock() -> Iterator[ServerThread]:
    srv = ServerThread(load_profile([PROFILE]), ServeOptions(time_scale=K, seed=4))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_langgraph_agent_under_load(mock: ServerThread) -> None:
    sys.path.insert(0, str(ROOT / "examples" / "agent_service"))
    try:
        from agent import AgentServer
    finally:
        sys.path.pop(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with AgentServer(mock.openai_base_url) as agent:
            r = _loadtest(mock.url, agent.url)
        gc.collect()
    # The agent closed its LLM clients with the service: no socket left behind.
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks[:3]]
    _check(r)


def _loadtest(target: str, agent_url: str) -> subprocess.CompletedProcess[str]:
    # K = 20 and short runs: the agent's own CPU per call (LangChain, in this process) is
    # not in the profile, and at larger K it would stretch model time noticeably.
    return subprocess.run(
        [sys.executable, "-m", "capacity", "loadtest", str(PROFILE), "--target",
         target, "--agent-url", agent_url, "--sessions", "2,7", "--time-scale",
         str(K), "--duration", "160s", "--warmup", "20s", "--seed", "3", "--json",
         "--replications", "10"], capture_output=True, text=True, timeout=240)


def _check(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    under, over = data["points"]
    for pt in (under, over):
        m = pt["measured"]["metrics"]
        assert pt["measured"]["counts"]["turns"] > 10
        # Each turn is a tool call then an answer: two successful LLM calls.
        assert m["calls_per_turn"] == pytest.approx(2.0, abs=0.25)
        a = pt["compare"]["attempt_429_fraction"]
        assert a["run_lo"] - 0.05 <= a["measured"] <= a["run_hi"] + 0.05, (pt["sessions"], a)
    assert under["meets"] and not over["meets"]
    assert data["measured_ceiling"]["bracket"] == [2, 7]
    assert data["predicted_ceiling"]["n_star"] >= 1


def test_an_unreachable_agent_is_named_not_the_target(mock: ServerThread) -> None:
    # The error hunt: with --agent-url on a closed port and a live --target, the run
    # ended "cannot reach the target http://127.0.0.1:<mock>: Connect call failed
    # ('127.0.0.1', 9)" — naming the endpoint that was up.
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/chat"
    r = subprocess.run(
        [sys.executable, "-m", "capacity", "loadtest", str(PROFILE), "--target", mock.url,
         "--agent-url", closed, "--sessions", "1", "--time-scale", str(K), "--duration",
         "20s", "--warmup", "0s", "--no-predict", "--seed", "1"], capture_output=True,
        text=True, timeout=120)
    # A seed whose session starts a turn inside the 20 s: with a random one the session's
    # first turn could fall after the run (no call made, nothing unreachable: exit 0).
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the agent {closed} (--agent-url): "), last
