"""capacity loadtest: the session driver against a real, in-process ``capacity serve``.

The mock runs in a thread of the test process (its own event loop, a real socket on
127.0.0.1, port 0) and is always stopped. The test profile has one call site per model,
so the mock's token draws are exactly the profile's and measured and predicted figures
must agree. Stated tolerance: the measured 429 fraction lies within the 2.5–97.5 %
range of single simulated replications of the same length, widened by 0.03 (timing on a
busy machine), and goodput within 15 % of the predicted mean.
"""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from capacity import load_profile, profile_from_dict
from capacity.loadgen import LoadtestConfig, run_loadtest
from capacity.loadgen.measure import Recorder, summarise
from capacity.loadgen.plan import TurnSampler, draw_residual, iter_calls
from capacity.loadgen.result import COMPARED
from capacity.serve import ServeOptions, ServerThread
from capacity.sim.engine import METRICS
from tests.serve_support import metric_sum, metrics

K = 40.0

SMALL: dict[str, Any] = {
    "name": "small",
    "models": {"m": {"ttft": {"uniform": ["0.2s", "0.6s"]}, "tokens_per_second": 100}},
    "quotas": {"q": {"models": ["m"], "rpm": 60,
                     "enforcement": {"type": "fixed_window", "window": "10s"}}},
    "session": {"think_time": {"exponential": "6s"}, "turns": {"t": {"steps": [
        {"repeat": {"count": {"choice": {"values": [1, 2, 3]}}, "call": {
            "model": "m", "input_tokens": {"uniform": [200, 600]},
            "output_tokens": {"uniform": [20, 120]}, "max_tokens": 200}}}]}}},
    "retry": {"max_retries": 2, "initial_delay": "0.5s", "max_delay": "4s"},
    "targets": {"max_429_fraction": 0.05},
}


def _small() -> Any:
    return profile_from_dict(SMALL, "small.yaml")


@pytest.fixture(name="mock")
def _mock() -> Iterator[ServerThread]:
    srv = ServerThread(_small(), ServeOptions(time_scale=K, seed=5))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_turns_are_drawn_like_the_simulator(root: Path) -> None:
    """Calls per turn, tokens and the steady-state start have the simulator's laws."""
    p = load_profile([root / "profiles" / "tool-agent.yaml"])
    s = TurnSampler(p)
    rng = np.random.default_rng(1)
    calls = [len(iter_calls(s.draw_turn(rng)[1])) for _ in range(20000)]
    # 0.7 × (plan + E[0..3 tool steps] = 1.2 + answer) + 0.3 × one quick answer
    assert np.mean(calls) == pytest.approx(0.7 * 3.2 + 0.3, rel=0.02)
    web = TurnSampler(load_profile([root / "profiles" / "web-research.yaml"]))
    name, plan = web.draw_turn(rng)
    flat = iter_calls(plan)
    assert name == "research" and [c.name for c in flat] == [
        "query-analysis", "synthesis", "synthesis", "synthesis", "follow-up-classifier"]
    assert all(4000 <= c.input_tokens <= 9000 and c.max_tokens == 4000 for c in flat[1:4])
    # Equilibrium residual of a uniform [120, 180] s cadence: E[X²] / (2 E[X]) = 76 s.
    res = [draw_residual(web.pause, rng) for _ in range(40000)]
    assert np.mean(res) == pytest.approx(76.0, rel=0.02)
    assert web.next_start(0.0, 100.0, 150.0) == 150.0  # cadence from the start
    assert web.next_start(0.0, 200.0, 150.0) == 200.0  # ... unless the turn ran late


def test_summary_uses_the_simulators_metric_names() -> None:
    rec = Recorder(turns=[(1.0, 3.0, 2, 3, 1, 0, 0.0, False), (5.0, 6.0, 1, 1, 0, 0, 0.0,
                                                                False)],
                   successes=[(2.0, 100), (3.0, 50), (6.0, 10)])
    m, counts, _ = summarise(rec, 0.0, 60.0)
    assert set(METRICS) <= set(m) and set(COMPARED) <= set(METRICS)
    assert m["attempt_429_fraction"] == pytest.approx(0.25)
    assert m["turn_429_fraction"] == pytest.approx(0.5)
    assert m["goodput_calls_per_min"] == pytest.approx(3.0)
    assert m["goodput_tokens_per_min"] == pytest.approx(160.0)
    assert counts["turns"] == 2 and counts["calls"] == 3


def test_occupancy_means_add_across_shards() -> None:
    # Two shards (processes / Locust workers), each with its own sessions: 3 in a turn
    # and 2 calls in flight in one, 5 and 1 in the other, sampled at different times.
    # The run had 8 sessions in a turn, not their pooled average 4.
    a = Recorder(occupancy=[(t, 3, 2) for t in (1.0, 2.0, 3.0)])
    b = Recorder(occupancy=[(t, 5, 1) for t in (1.5, 2.5)])
    merged = Recorder()
    merged.merge(a)
    merged.merge(b.to_wire())
    m, _, _ = summarise(merged, 0.0, 60.0)
    assert m["sessions_in_turn_mean"] == pytest.approx(8.0)
    assert m["calls_in_flight_mean"] == pytest.approx(3.0)
    own, _, _ = summarise(a, 0.0, 60.0)  # one shard, never merged
    assert own["sessions_in_turn_mean"] == pytest.approx(3.0)
    a.merge(b)  # a recorder with samples of its own, then another shard's
    assert summarise(a, 0.0, 60.0)[0]["sessions_in_turn_mean"] == pytest.approx(8.0)


def _point(sessions: int, counts: dict[str, int], **kw: Any) -> Any:
    from capacity.loadgen.measure import LagStats
    from capacity.loadgen.result import LoadPoint

    rec = Recorder(turns=[(1.0, 3.0, 2, 3, 1, 0, 0.0, False)], successes=[(2.0, 100)])
    m, base, _ = summarise(rec, 0.0, 60.0)
    return LoadPoint(sessions, m, {**base, **counts}, LagStats(math.nan, math.nan, 0),
                     60.0, **kw)


def _result(points: list[Any]) -> Any:
    from capacity.loadgen.result import LoadtestResult

    return LoadtestResult(
        profile="small", target="http://127.0.0.1:1", provider="openai", engine="builtin",
        client="raw", time_scale=10.0, warmup_s=0.0, duration_s=60.0, seed=1,
        replications=1, lag_limit_s=0.1, lag_fraction=0.1,
        targets={"max_429_fraction": 0.01, "p95_turn_latency": None}, points=points)


def test_open_turns_are_named_in_the_table() -> None:
    # Turns still open at the run's end were only in the JSON; the table says so now.
    from rich.console import Console

    from capacity.cli.loadtest import render

    out = io.StringIO()
    render(_result([_point(4, {"open_turns": 0}), _point(8, {"open_turns": 7})]),
           Console(file=out, width=160))
    text = out.getvalue()
    assert "N=8: 7 turns begun in the measured interval had not ended" in text
    assert "N=4:" not in text


def test_table_is_not_squeezed_outside_a_terminal() -> None:
    # Piped, rich falls back to 80 columns: headers were cut ("atte…") and the
    # measured / predicted pairs wrapped. Tables now print at their natural width, as
    # every other command's (cli.common.print_renderable).
    from rich.console import Console

    from capacity.cli.loadtest import render

    out = io.StringIO()
    render(_result([_point(30, {"open_turns": 0})]), Console(file=out, width=80))
    text = out.getvalue()
    assert "…" not in text
    header = next(ln for ln in text.splitlines() if "attempts" in ln)
    assert "calls/min m/p" in header and "targets" in header
    assert max(len(ln) for ln in text.splitlines()) > 80


def test_no_attempt_measured_is_no_data_and_a_first_miss_has_no_crossing() -> None:
    from capacity.loadgen.result import measured_ceiling
    from capacity.loadgen.runner import judge

    targets = {"max_429_fraction": 0.01, "p95_turn_latency": None}
    # --duration 1s: nothing measured is no evidence of a miss.
    empty = judge(_point(2, {"attempts": 0, "turns": 0, "calls": 0}), targets)
    assert empty.meets is None and empty.violates == ()
    assert judge(_point(2, {}), targets).meets is False  # 1 of 3 attempts refused
    assert measured_ceiling([empty], targets) is None
    # The smallest N misses: no crossing is interpolated (it was a line from (0, 0 %)).
    miss = judge(_point(4, {}), targets)
    mc = measured_ceiling([empty, miss], targets)
    assert mc is not None and mc.n_star == 0 and mc.bracket == (0, 4)
    assert mc.to_dict()["n_star_interpolated"] is None
    from rich.console import Console

    from capacity.cli.loadtest import render

    out = io.StringIO()
    res = _result([empty, miss])
    res.measured_ceiling = mc
    render(res, Console(file=out, width=160))
    assert "no data" in out.getvalue() and "measured N* < 4" in out.getvalue()


def test_locust_drains_at_least_twice_the_p99_turn() -> None:
    # web-research's turns last ~100 s (p99); Locust's old 60 s drain (0.2 x 5 min) cut
    # 7 of 56 measured turns short.
    from capacity.loadgen.locust import locust_drain_s

    web = load_profile(Path(__file__).parents[1] / "profiles" / "web-research.yaml")
    assert 200.0 <= locust_drain_s(web, 300.0) <= 600.0
    assert locust_drain_s(web, 3000.0) == pytest.approx(600.0)  # 0.2 x duration


def test_measured_matches_predicted_under_and_over_saturation() -> None:
    p = _small()
    # K = 20, not the module's 40: the lag guard's limit is 0.1 x the 10 s window / K, and
    # on a loaded 2-core CI machine the loops lagged 38 ms p99 against K = 40's 25 ms.
    k = 20.0
    with ServerThread(p, ServeOptions(time_scale=k, seed=5)) as mock:
        cfg = LoadtestConfig(target=mock.url, time_scale=k, warmup_s=40.0,
                             duration_s=480.0, seed=7, replications=20)
        res = run_loadtest(p, cfg, [1, 8], ceiling=False)
    under, over = res.points
    assert under.counts["turns"] > 30 and over.counts["attempts"] > 300
    assert under.counts["usage_mismatch"] == 0  # the mock read the requests' sizes right
    for pt in (under, over):
        c = pt.comparison()
        a = c["attempt_429_fraction"]
        assert a["run_lo"] - 0.03 <= a["measured"] <= a["run_hi"] + 0.03, (pt.sessions, a)
        g = c["goodput_calls_per_min"]
        assert g["measured"] == pytest.approx(g["predicted"], rel=0.15), (pt.sessions, g)
        assert set(pt.to_dict()["measured"]["metrics"]) >= set(METRICS)
    assert under.meets and not over.meets
    assert over.measured["attempt_429_fraction"] > 0.2
    mc = res.measured_ceiling
    assert mc is not None and mc.bracket == (1, 8)


# -- the command line: errors, refusal, Ctrl-C ---------------------------------------


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capacity", "loadtest", *args],
                          capture_output=True, text=True, timeout=timeout)


def _write_small(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


def test_unreachable_target_is_one_line_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _cli(str(_write_small(tmp_path)), "--target", f"http://127.0.0.1:{port}",
             "--sessions", "2", "--duration", "20s", "--warmup", "0s", "--time-scale", "20",
             "--no-predict", "--seed", "1")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "cannot reach the target" in err[0]
    assert "Traceback" not in r.stderr


class _Recording:
    """A garbage 'LLM endpoint' on a real socket that records what it was sent."""

    def __init__(self, answer: str, status: int = 200) -> None:
        self.answer, self.status = answer, status
        self.paths: list[str] = []
        self.url = ""
        self._stop = threading.Event()
        self._ready = threading.Event()

    def __enter__(self) -> _Recording:
        import asyncio

        async def handler(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            await request.read()
            return web.Response(text=self.answer, status=self.status)

        async def main() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._ready.set()
            try:
                while not self._stop.is_set():
                    await asyncio.sleep(0.02)
            finally:
                await runner.cleanup()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        # Generous for a loaded machine; without it url stays "" and the test misreads.
        assert self._ready.wait(60), "the recording endpoint did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.parametrize("answer", ["<html>hello</html>", '{"choices": "nope"}'])
def test_garbage_target_is_one_line_exit_2(tmp_path: Path, answer: str) -> None:
    with _Recording(answer) as srv:
        r = _cli(str(_write_small(tmp_path)), "--target", srv.url, "--sessions", "2",
                 "--duration", "20s", "--warmup", "0s", "--time-scale", "20", "--no-predict",
                 "--seed", "1")
        # Everything the load generator sent went to the target: its quota reset before
        # the run, then its completion path.
        assert srv.paths[0] == "/admin/reset"
        assert set(srv.paths) == {"/admin/reset", "/v1/chat/completions"}
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "not" in err[0], r.stderr
    if answer.startswith("{"):  # it read "is not a openai completion"
        assert "the target's answer is not an OpenAI completion" in err[0], err[0]
    assert "Traceback" not in r.stderr


def test_time_scale_other_than_the_mocks_is_one_line_exit_2(tmp_path: Path,
                                                           mock: ServerThread) -> None:
    # The mock runs at K = 40; a load generator at K = 20 read every latency and window
    # twice too long and printed the result (exit 0): a silently wrong measurement.
    r = _cli(str(_write_small(tmp_path)), "--target", mock.url, "--sessions", "2",
             "--duration", "20s", "--warmup", "0s", "--time-scale", "20", "--no-predict",
             "--seed", "1")
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "--time-scale 20, but the target runs at --time-scale 40" \
        in err[0], r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    # Without --reset the mock's /metrics names its K (capacity_mock_time_scale).
    r = _cli(str(_write_small(tmp_path)), "--target", mock.url, "--sessions", "2",
             "--duration", "20s", "--warmup", "0s", "--time-scale", "20", "--no-predict",
             "--seed", "1", "--no-reset")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "but the target runs at --time-scale 40" in r.stderr and r.stdout == ""


def test_no_turn_measured_prints_dashes_not_nan(tmp_path: Path, mock: ServerThread) -> None:
    # A 1 ms interval holds no turn start: the progress line said "p95 nans".
    r = _cli(str(_write_small(tmp_path)), "--target", mock.url, "--sessions", "1",
             "--duration", "1ms", "--warmup", "0s", "--time-scale", str(K), "--no-predict",
             "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "N=1: 429 —, p95 —, 0.0 calls/min" in r.stderr and "nan" not in r.stderr


def test_lag_guard_refuses_to_report(tmp_path: Path) -> None:
    """At K = 20000 the smallest window (10 s) is 0.5 ms of wall time: no event loop keeps
    time to 0.05 ms, so the run is refused (exit 1) instead of printed — by the load
    generator's own lag guard, or, when the machine is busy enough that the mock's loop
    lags first, by the guard on the target's reported lag (both are that refusal)."""
    with ServerThread(_small(), ServeOptions(time_scale=20000, seed=5)) as fast:
        r = _cli(str(_write_small(tmp_path)), "--target", fast.url, "--sessions", "2",
                 "--duration", "2000s", "--warmup", "0s", "--time-scale", "20000",
                 "--no-predict", "--seed", "1")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    assert ("event-loop lag too high" in r.stderr
            or "the target's own event loop lagged" in r.stderr), r.stderr


def test_ctrl_c_prints_partial_results_and_exits_130(tmp_path: Path,
                                                      mock: ServerThread) -> None:
    def sent() -> float:
        return metric_sum(metrics(mock.url), "capacity_mock_requests_total")

    before = sent()
    proc = subprocess.Popen(
        [sys.executable, "-m", "capacity", "loadtest", str(_write_small(tmp_path)),
         "--target", mock.url, "--sessions", "3", "--duration", "1h", "--warmup", "10s",
         "--time-scale", str(K), "--seed", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Ctrl-C once the sessions are well into the measured hour, however long a loaded
        # machine takes to start the interpreter (a fixed 6 s sleep could land in its
        # imports): 150 attempts are ~3 model minutes of these three sessions, while the
        # 10 s warm-up holds a few dozen at most (two 10-request windows, 429s backed off).
        deadline = time.monotonic() + 300
        while sent() - before < 150:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    import json

    data = json.loads(out)
    assert data["interrupted"] is True
    pt = data["points"][0]
    assert pt["interrupted"] and pt["measured"]["counts"]["attempts"] > 0
    assert "Traceback" not in err
    assert math.isfinite(pt["measured"]["horizon_s"]) and os.name == "posix"


def test_sessions_send_to_the_target_only(mock: ServerThread) -> None:
    """A guard on every request of the sessions' HTTP client: any origin but the target's
    (and, in agent mode, the agent's) is refused before a byte is sent."""
    import asyncio

    from capacity.loadgen.agent import AgentDriver
    from capacity.loadgen.driver import DriverConfig, SessionDriver
    from capacity.loadgen.protocol import TargetError

    cfg = DriverConfig(target=mock.url, provider="openai", time_scale=K, warmup_s=0.0,
                       duration_s=20.0, seed=1, drain_s=5.0)

    class Stray(SessionDriver):
        async def _session_loop(self, k: int) -> None:
            async with self._http.post("http://127.0.0.2:9/v1/chat/completions", data=b"{}"):
                pass

    with pytest.raises(TargetError, match=r"refusing to send to http://127\.0\.0\.2:9"):
        asyncio.run(Stray(_small(), cfg, [0]).run())
    agent = AgentDriver(_small(), cfg, [0], agent_url="http://127.0.0.1:8100/chat")
    assert agent.allowed_origins() == {("http", "127.0.0.1", mock.port),
                                       ("http", "127.0.0.1", 8100)}


@pytest.mark.parametrize(("option", "url"), [
    ("--agent-url", "ftp://127.0.0.1/chat"), ("--agent-url", "http:///chat"),
    ("--agent-url", "http://user:pw@127.0.0.1:8100/chat"), ("--target", "127.0.0.1:8000"),
    ("--target", "http://127.0.0.1:99999")])
def test_bad_urls_are_one_line_exit_2(tmp_path: Path, option: str, url: str) -> None:
    args = ["--target", "http://127.0.0.1:9", "--agent-url", "http://127.0.0.1:9/chat"]
    args[args.index(option) + 1] = url
    r = _cli(str(_write_small(tmp_path)), *args, "--sessions", "1", "--no-predict")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and option in err[0], r.stderr


@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
@pytest.mark.parametrize("tokens", [30, 200, 2000])
def test_a_tool_result_is_always_sent_with_its_tool_call(provider: str, tokens: int) -> None:
    # The error hunt: a call of few input tokens (a classifier's 200) trimmed the history
    # to its budget, dropping the assistant message whose tool calls the new tool results
    # answer — half the requests of a tool loop (20 of 40) carried orphan tool results,
    # which OpenAI and Anthropic refuse with a 400 (the mock did not).
    from capacity.loadgen.plan import CallPlan
    from capacity.loadgen.protocol import Conversation, Reply, build_request

    conv = Conversation(0)
    for step in range(40):
        new = conv.next_messages()
        msgs = build_request(provider, CallPlan("c", "m", tokens, 0, 50, 100),  # type: ignore[arg-type]
                             conv.exchanges, new).body["messages"]
        for i, m in enumerate(msgs):
            if provider == "anthropic":
                answered = {b["tool_use_id"] for b in m["content"]
                            if b["type"] == "tool_result"}
                called = {b["id"] for b in msgs[i - 1]["content"] if b["type"] == "tool_use"
                          } if i and msgs[i - 1]["role"] == "assistant" else set()
                assert answered <= called, (step, i, msgs)
            elif m["role"] == "tool":
                j = i - 1
                while msgs[j]["role"] == "tool":
                    j -= 1
                assert m["tool_call_id"] in {c["id"] for c in msgs[j].get("tool_calls") or []
                                             }, (step, i, msgs)
        tool_result = new[0][0] == "tool"  # the mock's rule: text after a tool result
        ids = [] if tool_result else [f"call_{step}_{k}" for k in range(1 + 2 * (step % 3 == 0))]
        conv.record(new, Reply(ids, "done" if tool_result else "", tokens, 50))


def test_a_reset_refused_by_a_mock_of_another_profile_says_so() -> None:
    # "the target refused the quota reset: b'{\"error\": ...}'" (raw bytes): a mock serving
    # another profile knows none of this load test's bucket slots.
    from capacity.loadgen.protocol import TargetError
    from capacity.loadgen.runner import reset_target
    from tests.serve_support import serving

    with serving() as srv, pytest.raises(TargetError) as e:
        reset_target(srv.url, {"deployment.rpm": 3.0})
    msg = str(e.value)
    assert msg.startswith("the target refused the quota reset: bucket_deficit: "
                          "'deployment.rpm' is not a "
                          "token-bucket slot of the profile (those are: ant.itpm, ant.otpm, "
                          "ant.rpm)"), msg
    assert msg.endswith("the target serves another profile than this load test's: start "
                        "`capacity serve` with the same profile") and "b'" not in msg
