"""Shared pieces of the serve tests: small fast profiles and a started-and-stopped server.

Latencies are tiny and the time scale large, so a whole answer takes a few wall
milliseconds; quotas are generous unless a test asks for a tight one.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from capacity import Profile, profile_from_dict
from capacity.serve import ServeOptions, ServerThread

GPT = "mock-gpt"
CLAUDE = "mock-claude"


def profile(*, rpm: float = 100_000, tpm: float = 100_000_000, window: str = "60s",
            claude_rpm: float = 100_000, output_tokens: Any = None,
            extra_quotas: dict[str, Any] | None = None,
            charge_max_tokens: bool = False, cached: float = 0.0) -> Profile:
    """Two models (OpenAI-like and Anthropic-like), one quota each (``cached``: the calls'
    cached input fraction)."""
    if output_tokens is None:
        output_tokens = {"uniform": [5, 40]}
    return profile_from_dict({
        "name": "serve-test",
        "models": {
            GPT: {"ttft": "20ms", "tokens_per_second": 400, "max_tokens": 512},
            CLAUDE: {"ttft": "20ms", "tokens_per_second": 400, "max_tokens": 512},
        },
        "quotas": {
            "oai": {"models": [GPT], "rpm": rpm, "tpm": tpm,
                    "enforcement": {"type": "fixed_window", "window": window},
                    "charge_max_tokens": charge_max_tokens},
            "ant": {"models": [CLAUDE], "rpm": claude_rpm, "itpm": 10_000_000,
                    "otpm": 1_000_000, "cached_input_exempt": True,
                    "enforcement": {"type": "token_bucket", "burst": "60s"}},
            **(extra_quotas or {}),
        },
        "session": {"think_time": "1s", "turns": {"t": {"steps": [
            {"call": {"model": GPT, "input_tokens": 1000, "output_tokens": output_tokens,
                      "max_tokens": 512, "cached_input_fraction": cached}},
            {"call": {"model": CLAUDE, "input_tokens": 1000, "output_tokens": output_tokens,
                      "max_tokens": 512, "cached_input_fraction": cached}},
        ]}}},
    })


@contextmanager
def serving(prof: Profile | None = None, **options: Any) -> Iterator[ServerThread]:
    """A mock on 127.0.0.1, a free port, always stopped."""
    options.setdefault("time_scale", 100.0)
    options.setdefault("seed", 7)
    srv = ServerThread(prof or profile(), ServeOptions(**options))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def banner_url(proc: subprocess.Popen[str]) -> str:
    """The URL a ``capacity serve --port 0`` process listens on, once its banner ends (it
    names the port the OS gave: however long a loaded machine takes to start the
    interpreter, and no port picked here that another process could take first)."""
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("listening on"):
            url = line.split()[2]
        if line.startswith("Ctrl-C"):
            break
    assert url, "the server exited before its banner"
    return url


def interrupt(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C a server process and wait for it to exit (killed after 60 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def post_bytes(url: str, body: bytes, headers: dict[str, str] | None = None,
               timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON to ``url``: (status, the parsed answer), an error's too."""
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metrics(url: str) -> dict[str, float]:
    """``GET /metrics`` parsed into ``{"name{labels}": value}``."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def metric_sum(m: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric family over the series matching ``labels``."""
    total = 0.0
    for key, v in m.items():
        base = key.split("{", 1)[0]
        if base != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', key))
        if all(found.get(k) == val for k, val in labels.items()):
            total += v
    return total


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"},
                                      "unit": {"type": "string",
                                               "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]},
    },
}
