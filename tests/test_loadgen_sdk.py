"""--client openai|anthropic: sessions through the official SDKs (unmodified) against an
in-process capacity serve at time scale 1; the SDK's own retries are measured.

A tight per-second quota makes the SDK meet 429s: it retries them itself (honouring the
mock's retry-after), and what the load generator counts — attempts and 429s per call,
seen by an event hook on the SDK's own HTTP client — must agree with what the mock saw
(its /metrics: answers by status, requests carrying ``x-stainless-retry-count`` > 0).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from capacity import profile_from_dict
from capacity.loadgen.driver import DriverConfig
from capacity.loadgen.measure import summarise
from capacity.loadgen.sdk import SdkDriver
from capacity.serve import ServeOptions, ServerThread
from capacity.sim.engine import METRICS
from tests.serve_support import metric_sum, metrics


def _profile(model: str) -> Any:
    return profile_from_dict({
        "name": "sdk",
        "models": {model: {"ttft": "10ms", "tokens_per_second": 2000}},
        # 2 requests per 1 s window for 6 sessions calling every ~0.5 s: many 429s.
        "quotas": {"q": {"models": [model], "rpm": 120,
                         "enforcement": {"type": "fixed_window", "window": "1s"}}},
        "session": {"think_time": {"uniform": ["0.3s", "0.7s"]}, "turns": {"t": {"steps": [
            {"call": {"model": model, "input_tokens": {"uniform": [100, 300]},
                      "output_tokens": {"uniform": [5, 30]}, "max_tokens": 64}}]}}},
        "retry": {"max_retries": 2},
        "targets": {"max_429_fraction": 0.05},
    }, "sdk.yaml")


@pytest.fixture(name="serve")
def _serve() -> Iterator[Any]:
    servers: list[ServerThread] = []

    def start(profile: Any) -> ServerThread:
        srv = ServerThread(profile, ServeOptions(time_scale=1.0, seed=3))
        servers.append(srv.start())
        return srv

    try:
        yield start
    finally:
        for s in servers:
            s.close()


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sdk_sessions_and_their_retries(serve: Any, sdk: str) -> None:
    prof = _profile("m")
    srv = serve(prof)
    cfg = DriverConfig(target=srv.url, provider="anthropic" if sdk == "anthropic" else "openai",
                       time_scale=1.0, warmup_s=0.0, duration_s=5.0, seed=2, drain_s=20.0)
    driver = SdkDriver(prof, cfg, list(range(6)), sdk=sdk)
    rec = asyncio.run(driver.run())
    m, counts, _ = summarise(rec, 0.0, 5.0)
    assert set(METRICS) <= set(m)
    assert counts["turns"] >= 10 and counts["usage_mismatch"] == 0
    # The SDK met 429s and retried them itself.
    assert counts["rejected"] > 0 and m["attempts_per_call"] > 1.0
    seen = metrics(srv.url)
    ok = metric_sum(seen, "capacity_mock_requests_total", status="200")
    refused = metric_sum(seen, "capacity_mock_requests_total", status="429")
    retried = metric_sum(seen, "capacity_mock_retries_seen_total")
    # Every attempt the hook counted reached the mock, and the other way round; a session
    # cancelled at the end leaves its unfinished turn unrecorded: at most max_retries + 1
    # attempts each (3 × 6 sessions) in between.
    all_attempts = sum(t[3] for t in rec.turns)
    all_rejected = sum(t[4] for t in rec.turns)
    assert 0 <= ok + refused - all_attempts <= 3 * 6
    assert 0 <= refused - all_rejected <= 3 * 6
    assert retried > 0 and abs(retried - driver.retries_seen) <= 6
    # A retry follows a 429 (the mock's retry-after is honoured, never a retry storm).
    assert retried <= refused


def test_sdk_client_needs_time_scale_1(tmp_path: Path) -> None:
    path = tmp_path / "sdk.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"m": {"ttft": "10ms", "tokens_per_second": 100}},
        "quotas": {"q": {"models": ["m"], "rpm": 60}},
        "session": {"think_time": "1s", "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 10, "output_tokens": 5}}]}}}}))
    for args in (["--client", "openai", "--time-scale", "10"],
                 ["--client", "openai", "--provider", "anthropic"]):
        r = subprocess.run([sys.executable, "-m", "capacity", "loadtest", str(path),
                            "--target", "http://127.0.0.1:9", "--sessions", "1", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(err) == 1 and "--client openai" in err[0], r.stderr


def test_prediction_retries_by_the_sdks_rule() -> None:
    """--client openai|anthropic: the SDK retries by its own rule, so the prediction
    simulates that rule (the profile's defaults are openai ≤ 2.51's: ≤ 60 s waited, a
    longer retry-after backs off). openai 3.57 waits ≤ 120 s and gives up above;
    anthropic 2.14 waits any positive retry-after."""
    from capacity.loadgen.runner import predicted_profile
    from capacity.model.retry import RetryPolicy

    prof = _profile("gpt-4o")
    raw = RetryPolicy.from_profile(predicted_profile(prof, "raw"))
    oai = RetryPolicy.from_profile(predicted_profile(prof, "openai"))
    ant = RetryPolicy.from_profile(predicted_profile(prof, "anthropic"))
    assert raw == RetryPolicy.from_profile(prof)
    assert raw.wait(1, 90.0, 0.0) == 0.5  # beyond 60 s: backoff
    assert oai.wait(1, 90.0, 0.0) == 90.0 and oai.wait(1, 121.0, 0.0) is None
    assert oai.wait(1, None, 0.0) == 0.5  # no retry-after: backoff
    assert ant.wait(1, 5000.0, 0.0) == 5000.0
    assert oai.max_retries == ant.max_retries == prof.retry.max_retries
