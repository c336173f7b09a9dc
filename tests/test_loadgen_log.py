"""capacity loadtest --log: the JSONL request log of what was measured, read back by
capacity fit (a round trip: profile -> measured calls -> fitted profile)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from capacity import load_profile
from capacity.fit.jsonl import iter_request_log
from capacity.profile.schema import RepeatStep
from capacity.serve import ServeOptions, ServerThread
from tests.serve_support import banner_url, interrupt
from tests.test_loadgen import SMALL, _small

# K = 20, not test_loadgen's 40: the lag guard's limit is then 50 ms (0.1 x the 10 s
# window / K); on a loaded 2-core machine the mock's loop and the load generator's
# lagged 39 and 33 ms, over K = 40's 25 ms, and the runs were rightly refused.
K = 20.0


@pytest.fixture(name="mock")
def _mock() -> Iterator[ServerThread]:
    srv = ServerThread(_small(), ServeOptions(time_scale=K, seed=5))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_loadtest_log_round_trips_through_fit(tmp_path: Path, mock: ServerThread) -> None:
    prof = tmp_path / "small.yaml"
    prof.write_text(yaml.safe_dump(SMALL))
    log = tmp_path / "calls.jsonl"
    url = mock.url
    r = subprocess.run(
        [sys.executable, "-m", "capacity", "loadtest", str(prof), "--target", url,
         "--sessions", "3,6", "--time-scale", str(K), "--duration", "200s", "--warmup", "10s",
         "--seed", "4", "--no-predict", "--json", "--log", str(log)],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    with log.open() as fh:
        calls = [rec for _, rec in iter_request_log(fh)]
    # One line per call of every ended turn, of both N (sessions kept apart).
    assert {c.session.split("-")[0] for c in calls} == {"N3", "N6"}
    measured_calls = sum(p["measured"]["counts"]["calls"] for p in data["points"])
    assert len(calls) >= measured_calls
    ok = [c for c in calls if c.ok]
    assert ok and all(c.end >= c.start and c.model == "m" for c in calls)
    # Tokens are the endpoint's usage: the requests were sized to the profile's draws.
    assert all(200 <= c.input_tokens <= 600 and 20 <= c.output_tokens <= 120 for c in ok)
    assert all(c.max_tokens == 200 for c in calls)
    failed = [c for c in calls if not c.ok]
    assert all(c.status == 429 and c.retries == 2 for c in failed)
    assert any(c.retries > 0 for c in ok)  # N=6 is over the quota: retried calls
    per_turn: dict[tuple[str, str], int] = defaultdict(int)
    for c in calls:
        per_turn[(c.session, c.turn)] += 1
    assert set(per_turn.values()) <= {1, 2, 3}  # repeat count 1..3

    out = tmp_path / "fitted.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "capacity", "fit", str(log), "--time-scale", str(K),
         "--quota-from", str(prof), "-o", str(out)],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    fitted = load_profile([out])
    orig = _small()
    # The structure and the laws come back from what was measured.
    fm, om = fitted.models["m"], orig.models["m"]
    assert fm.tokens_per_second.mean == pytest.approx(om.tokens_per_second.mean, rel=0.15)
    # One turn type: a loop of 1..3 calls, equally likely, as the profile says.
    (turn,) = fitted.session.turns.values()
    (step,) = turn.steps
    assert isinstance(step, RepeatStep)
    count = step.repeat.count
    assert count.kind == "choice" and list(count.values) == [1, 2, 3]
    assert all(abs(w / sum(count.weights) - 1 / 3) < 0.12 for w in count.weights)
    fcall, ocall = step.repeat.call, orig.session.turns["t"].steps[0].repeat.call
    assert fcall is not None and ocall is not None
    assert fcall.input_tokens.mean == pytest.approx(ocall.input_tokens.mean, rel=0.1)
    assert fcall.output_tokens.mean == pytest.approx(ocall.output_tokens.mean, rel=0.1)
    assert fcall.max_tokens == 200
    assert fitted.session.pause.mean == pytest.approx(orig.session.pause.mean, rel=0.25)


@contextmanager
def _serve_cli(prof: Path, *args: str) -> Iterator[str]:
    """``capacity serve PROF --port 0 ARGS`` in a process; yields its URL, then Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "capacity", "serve", str(prof), "--port",
                             "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield banner_url(proc)
    finally:
        interrupt(proc)


def _fit_cli(log: Path, prof: Path, out: Path, *extra: str) -> str:
    r = subprocess.run([sys.executable, "-m", "capacity", "fit", str(log), "--quota-from",
                        str(prof), "-o", str(out), "--name", "fitted", *extra],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return out.read_text()


def test_logs_of_a_scaled_run_fit_in_model_time_without_the_option(tmp_path: Path) -> None:
    """`capacity serve --time-scale K --log` and `capacity loadtest --time-scale K --log`
    wrote wall-clock times: `capacity fit` without `--time-scale K` fitted a think time and
    latencies K× too short (one web-research log: napkin 1 session instead of 74). Their
    lines now record K, which fit multiplies by: the same profile as with the option."""
    from capacity.analytic.model import analyze

    prof = tmp_path / "small.yaml"
    prof.write_text(yaml.safe_dump(SMALL))
    served, mine = tmp_path / "served.jsonl", tmp_path / "loadtest.jsonl"
    with _serve_cli(prof, "--time-scale", f"{K:g}", "--seed", "5", "--log", str(served)) as url:
        r = subprocess.run(
            [sys.executable, "-m", "capacity", "loadtest", str(prof), "--target", url,
             "--sessions", "3", "--time-scale", f"{K:g}", "--duration", "300s", "--warmup",
             "10s", "--seed", "4", "--no-predict", "--log", str(mine)],
            capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
    pause = _small().session.pause.mean
    for log in (mine, served):
        with log.open() as fh:
            assert {rec.time_scale for _, rec in iter_request_log(fh)} == {K}
        given = _fit_cli(log, prof, tmp_path / "given.yaml", "--time-scale", f"{K:g}")
        recorded = _fit_cli(log, prof, tmp_path / "recorded.yaml")
        assert (f"# Note: {log}: times multiplied by {K:g}, the time scale the log records "
                "(time_scale).") in recorded
        assert recorded.split("\nname:")[1] == given.split("\nname:")[1]
        fitted = load_profile([tmp_path / "recorded.yaml"])
        ceiling = analyze(fitted).mean_ceiling
        print(f"\n{log.name}: think time {fitted.session.pause.mean:.2f} s (profile "
              f"{pause:g} s), napkin {ceiling:.2f} (profile {analyze(_small()).mean_ceiling:.2f})")
        assert ceiling == analyze(load_profile([tmp_path / "given.yaml"])).mean_ceiling
        assert fitted.session.pause.mean == pytest.approx(pause, rel=0.3)


def test_serve_log_matches_the_load_generators(tmp_path: Path) -> None:
    """capacity serve's log (ServeOptions(log=...), what --log writes) of a load test: one
    line per answered request, grouped by the session and turn the load generator named
    (x-capacity-session/-turn), with the same tokens as the load generator's own log."""
    from capacity.fit.jsonl import RequestLogWriter
    from capacity.loadgen import LoadtestConfig, run_loadtest

    served = tmp_path / "served.jsonl"
    mine = tmp_path / "loadtest.jsonl"
    with RequestLogWriter(served) as writer:
        srv = ServerThread(_small(), ServeOptions(time_scale=K, seed=5, log=writer))
        srv.start()
        try:
            cfg = LoadtestConfig(target=srv.url, time_scale=K, warmup_s=10.0,
                                 duration_s=120.0, seed=3, log=str(mine))
            run_loadtest(_small(), cfg, [6], predicted=False)
        finally:
            srv.close()
    with served.open() as fh:
        s_lines = [r for _, r in iter_request_log(fh)]
    with mine.open() as fh:
        m_lines = [r for _, r in iter_request_log(fh) if r.ok]
    key = lambda r: (r.session, r.turn, r.name, r.input_tokens, r.output_tokens)  # noqa: E731
    s_keys, m_keys = {key(r) for r in s_lines}, {key(r) for r in m_lines}
    # Every call the load generator logged was logged by the mock, as the same call (the
    # mock also logs answers to turns cut off at the end of the run).
    assert len(m_keys) > 40 and m_keys <= s_keys
    assert len(s_keys - m_keys) <= 6
    assert all(r.session.startswith("N6-s") and r.ok for r in s_lines)
    assert all(r.ttft is not None and 0 < r.ttft <= r.end - r.start for r in s_lines)
    retried = [r for r in s_lines if r.retries > 0]
    assert not retried  # the raw client sends no x-stainless-retry-count


def test_serve_cli_log_option(tmp_path: Path) -> None:
    import urllib.request

    prof = tmp_path / "small.yaml"
    prof.write_text(yaml.safe_dump(SMALL))
    log = tmp_path / "served.jsonl"
    with _serve_cli(prof, "--time-scale", "100", "--log", str(log)) as url:
        body = json.dumps({"model": "m", "user": "alice", "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"},
            {"role": "user", "content": "and?"}]}).encode()
        req = urllib.request.Request(url + "/v1/chat/completions", data=body, headers={
            "content-type": "application/json", "x-stainless-retry-count": "1"})
        with urllib.request.urlopen(req, timeout=60) as r:
            usage = json.loads(r.read())["usage"]
    with log.open() as fh:
        (rec,) = [r for _, r in iter_request_log(fh)]
    # Session from OpenAI's `user`, turn = the history's user messages, retries from the SDK.
    assert (rec.session, rec.turn, rec.retries) == ("alice", "2", 1)
    assert rec.time_scale == 100  # its times are wall clock: capacity fit multiplies by 100
    assert (rec.input_tokens, rec.output_tokens) == (usage["prompt_tokens"],
                                                     usage["completion_tokens"])


class _FullDisk:
    """A text file on a full disk: every write fails as /dev/full's does."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass


def test_serve_keeps_answering_when_its_log_cannot_be_written(
        caplog: pytest.LogCaptureFixture) -> None:
    # The error hunt: `capacity serve --log /dev/full` answered every request with a 500
    # ("internal error in the capacity mock") and a traceback in its log.
    import logging

    import httpx2

    from capacity.fit.jsonl import RequestLogWriter

    srv = ServerThread(_small(), ServeOptions(time_scale=K, seed=5,
                                              log=RequestLogWriter(_FullDisk())))  # type: ignore[arg-type]
    srv.start()
    try:
        with caplog.at_level(logging.WARNING, logger="capacity.serve"):
            for _ in range(2):
                r = httpx2.post(srv.url + "/v1/chat/completions", timeout=60, json={
                    "model": "m", "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200, r.text
    finally:
        srv.close()
    said = [r.getMessage() for r in caplog.records if "request log" in r.getMessage()]
    assert said == ["request log: cannot write: No space left on device; no more lines "
                    "are written (the requests are still answered)"], said


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_loadtest_log_that_cannot_be_written_is_one_error(mock: ServerThread) -> None:
    # The error hunt: `loadtest --log /dev/full` measured, then died with a traceback
    # (OSError: No space left on device, exit 3).
    from capacity.errors import CapacityError
    from capacity.loadgen import LoadtestConfig, run_loadtest

    cfg = LoadtestConfig(target=mock.url, time_scale=K, warmup_s=0.0, duration_s=30.0,
                         seed=3, log="/dev/full")
    with pytest.raises(CapacityError, match=r"^--log /dev/full: cannot write: No space left "
                                            r"on device$"):
        run_loadtest(_small(), cfg, [2], predicted=False)
