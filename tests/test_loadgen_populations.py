"""capacity loadtest and capacity serve with session populations (issue 14, item 2).

web-research + tests/data/populations-overlay.yaml with the batch job cut to 10 held
sessions (a carrying case): N splits into ``session`` (75 %) and ``chat`` (25 %), and 10
batch sessions run at every N. The mock is a real ``capacity serve`` in a thread of the
test process (127.0.0.1, port 0, always stopped).

Stated tolerance for turns per hour by population (measured run vs the simulator's
replication mean over the same horizon): within ``4·√c`` turns of the predicted count
``c`` over the measured interval (a Poisson bound, loose for closed loops whose counts
vary less) plus 5 % of ``c`` (timing on a busy machine).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from capacity import load_profile
from capacity.loadgen import LoadtestConfig, run_loadtest
from capacity.loadgen.driver import session_rngs
from capacity.loadgen.plan import TurnSampler, population_of, session_blocks
from capacity.serve import ServeOptions, ServerThread
from capacity.serve.behaviour import ModelBehaviour, population_rates

from .serve_support import post_bytes

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "profiles" / "web-research.yaml",
         ROOT / "tests" / "data" / "populations-overlay.yaml"]
# K = 20: the lag guard's limit is then 50 ms (0.1 x the 10 s window / K); beside the
# in-process mock on a loaded 2-core machine the load generator's loop lagged 34 ms, over
# K = 40's 25 ms, and the run was rightly refused.
K = 20.0
SESSION_CALLS = {"query-analysis", "synthesis", "follow-up-classifier"}


def _profile() -> Any:
    return load_profile(FILES, ["populations.batch.sessions=10"])


@pytest.fixture(name="mock")
def _mock() -> Iterator[ServerThread]:
    srv = ServerThread(_profile(), ServeOptions(time_scale=K, seed=3))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_sessions_run_in_the_simulators_blocks_with_per_population_streams() -> None:
    p = _profile()
    assert session_blocks(p, 20) == (("session", 15), ("batch", 10), ("chat", 5))
    assert session_blocks(p, 8) == (("session", 6), ("batch", 10), ("chat", 2))
    blocks = session_blocks(p, 20)
    assert [population_of(blocks, k) for k in (0, 14, 15, 24, 25, 29)] == [
        ("session", 0), ("session", 14), ("batch", 0), ("batch", 9), ("chat", 0),
        ("chat", 4)]
    # `session` keeps the streams sessions had before populations (spawn key (k,)).
    a, _ = session_rngs(11, 4)
    b, _ = session_rngs(11, 4, 0)
    old = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(4,)).spawn(2)[0])
    assert a.random() == b.random() == old.random()
    # Another population's session j has its own stream, not session j's.
    c, _ = session_rngs(11, 4, 1)
    assert c.random() != session_rngs(11, 4)[0].random()
    # Each population draws its own turns and pacing.
    rng = np.random.default_rng(1)
    assert TurnSampler(p, "batch").draw_turn(rng)[0] == "summarise"
    assert TurnSampler(p, "chat").draw_turn(rng)[0] == "message"
    assert TurnSampler(p).draw_turn(rng)[0] == "research"
    assert TurnSampler(p, "batch").pause.mean == pytest.approx(5.0)


def _post(url: str, headers: dict[str, str], body: dict[str, Any] | None = None
          ) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body or {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "hello"}]}).encode()
    return post_bytes(url + "/v1/chat/completions", data, headers, timeout=20)


@pytest.fixture(name="fast_mock")
def _fast_mock() -> Iterator[ServerThread]:
    # Answers in a few wall milliseconds (no load test runs against this one).
    srv = ServerThread(_profile(), ServeOptions(time_scale=2000.0, seed=3))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_mock_finds_a_hinted_call_in_its_populations_turn(fast_mock: ServerThread) -> None:
    mock = fast_mock
    # No output hint: the output is drawn from the hinted population's call.
    for _ in range(3):
        st, body = _post(mock.url, {"x-capacity-population": "batch",
                                    "x-capacity-call": "gpt-4o"})
        assert st == 200 and body["usage"]["completion_tokens"] == 300  # batch: fixed 300
        st, body = _post(mock.url, {"x-capacity-population": "chat"})
        assert st == 200 and body["usage"]["completion_tokens"] == 200  # chat: fixed 200
        st, body = _post(mock.url, {"x-capacity-population": "session",
                                    "x-capacity-call": "follow-up-classifier"})
        assert st == 200 and 5 <= body["usage"]["completion_tokens"] <= 40
    # With every hint (what the load generator sends) the hinted tokens rule.
    st, body = _post(mock.url, {"x-capacity-population": "batch",
                                "x-capacity-input-tokens": "3000",
                                "x-capacity-output-tokens": "123"})
    assert st == 200 and body["usage"]["completion_tokens"] == 123
    assert body["usage"]["prompt_tokens"] == 3000
    # Unhinted requests draw from every population's calls: both fixed sizes appear.
    seen = {_post(mock.url, {})[1]["usage"]["completion_tokens"] for _ in range(40)}
    assert 300 in seen and len(seen) > 3
    # The fan-out is the hinted population's: research turns launch 3 synthesis calls
    # after the first answer, a batch turn has no parallel step (one tool call).
    tools = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}],
             "tools": [{"type": "function", "function": {
                 "name": "lookup", "parameters": {"type": "object", "properties": {}}}}]}
    for pop, n in (("session", 3), ("batch", 1)):
        st, body = _post(mock.url, {"x-capacity-population": pop}, tools)
        assert st == 200
        assert len(body["choices"][0]["message"]["tool_calls"]) == n, pop
    # An unknown population is the client's mistake: a 400 naming the header.
    st, body = _post(mock.url, {"x-capacity-population": "nightly"})
    assert st == 400
    assert "x-capacity-population" in body["error"]["message"]
    assert "nightly" in body["error"]["message"]


def test_unhinted_mix_is_each_calls_share_at_the_mean_value_ceiling() -> None:
    """The mock's call mix (no hints) weighs each call by its expected rate at N = the
    mean-value ceiling: its population's share equals the simulator's call share there
    (within 0.03; the simulator's closed loops slow under the 429s of that N)."""
    from capacity.analytic.populations import view
    from capacity.sim.engine import simulate

    p = _profile()
    pv = view(p)
    n_ref = math.floor(min(pv.mean_ceiling(c) for c in pv.constraints() if pv.touches(c)))
    assert set(population_rates(p)) == {"session", "batch", "chat"}
    b = ModelBehaviour(p, "gpt-4o")
    shares = {pop: float(sum(w for w, q in zip(b.weights, b.populations, strict=True)
                             if q == pop)) for pop in ("session", "batch", "chat")}
    sim = simulate(p, n_ref, horizon_s=1200.0, replications=4, seed=2, workers=1)
    for pop, share in shares.items():
        assert share == pytest.approx(sim.populations[pop].call_share.mean, abs=0.03), pop
    # Synthesis is 3 calls of every research turn: 3× the weight of query analysis.
    w = dict(zip((c.name for c in b.calls), b.weights, strict=True))
    assert w["synthesis"] == pytest.approx(3 * w["query-analysis"])


def _tolerance(predicted_per_h: float, horizon_s: float) -> float:
    c = predicted_per_h * horizon_s / 3600.0
    return (4.0 * math.sqrt(c) + 0.05 * c) * 3600.0 / horizon_s


def test_loadtest_runs_every_population_beside_the_simulator(mock: ServerThread,
                                                             tmp_path: Path) -> None:
    p = _profile()
    log = tmp_path / "calls.jsonl"
    cfg = LoadtestConfig(target=mock.url, time_scale=K, warmup_s=60.0, duration_s=360.0,
                         seed=4, replications=5, log=str(log))
    res = run_loadtest(p, cfg, [8, 20], ceiling=False)
    assert not res.interrupted and len(res.points) == 2
    calls_per_turn = {"session": 5, "batch": 1, "chat": 1}
    for pt in res.points:
        split = p.split(pt.sessions)
        assert {k: v["sessions"] for k, v in pt.populations.items()} == split
        assert split["batch"] == 10  # held at every N
        assert pt.predicted is not None
        for pop, m in pt.populations.items():
            # Each population's sessions ran their own turns: its calls per turn.
            assert m["turns"] > 0 and m["calls"] == calls_per_turn[pop] * m["turns"], pop
            pred = pt.predicted.populations[pop]
            assert pred.sessions == split[pop]
            tol = _tolerance(pred.turns_per_hour.mean, cfg.duration_s)
            assert abs(m["turns_per_hour"] - pred.turns_per_hour.mean) <= tol, (
                pt.sessions, pop, m["turns_per_hour"], pred.turns_per_hour.mean, tol)
        assert sum(m["call_share"] for m in pt.populations.values()) == pytest.approx(1.0)
        cmp = pt.population_comparison()
        assert cmp["batch"]["sessions"] == {"measured": 10, "predicted": 10}
    # The request log: session k's calls are its population's (blocks in split order).
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines
    for ln in lines:
        n, k = (int(x) for x in ln["session"][1:].split("-s"))
        pop, _ = population_of(session_blocks(p, n), k)
        if pop == "session":
            assert ln["name"] in SESSION_CALLS
        else:
            assert ln["input_tokens"] == {"batch": 3000, "chat": 800}[pop]
    # The held batch sessions ran at every N: all 10 made calls at N = 8 and at N = 20.
    for n in (8, 20):
        blocks = session_blocks(p, n)
        batch = {int(ln["session"].split("-s")[1]) for ln in lines
                 if ln["session"].startswith(f"N{n}-")
                 and population_of(blocks, int(ln["session"].split("-s")[1]))[0] == "batch"}
        assert len(batch) == 10, (n, batch)
    # JSON, CSV and table carry the populations and what N counts.
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["populations"]["held"] == {"batch": 10}
    assert "batch: 10 sessions held" in d["populations"]["n_counts"]
    assert set(d["points"][0]["measured"]["populations"]) == {"session", "batch", "chat"}
    assert "turns_per_hour" in d["points"][1]["compare_populations"]["chat"]
    from capacity.cli.loadtest import render, to_csv

    csv = to_csv(res)
    assert "measured_population_batch_turns_per_hour" in csv
    assert "predicted_population_chat_call_share" in csv
    out = io.StringIO()
    render(res, Console(file=out, width=160))
    text = out.getvalue()
    assert "per population" in text and "batch: 10 sessions held" in text


def test_locust_engine_refuses_populations_in_one_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "capacity", "loadtest", *map(str, FILES), "--engine",
         "locust", "--target", "http://127.0.0.1:9", "--sessions", "2", "--no-predict",
         "--seed", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "populations" in err[0], r.stderr
    assert "Traceback" not in r.stderr
