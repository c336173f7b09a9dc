"""``capacity serve`` as a process: the banner, Ctrl-C, and a fuzz of malformed requests
(random bytes and JSON, wrong types in every field, huge bodies, cut connections) that
must leave the server answering, with no 500s and bounded memory."""

from __future__ import annotations

import copy
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from capacity.cli.serve import _is_loopback
from tests.serve_support import CLAUDE, GPT, WEATHER_TOOL, banner_url, interrupt, metrics

PROFILE_YAML = f"""
name: fuzz
models:
  {GPT}: {{ttft: 20ms, tokens_per_second: 400, max_tokens: 512}}
  {CLAUDE}: {{ttft: 20ms, tokens_per_second: 400, max_tokens: 512}}
quotas:
  oai: {{models: [{GPT}], rpm: 1000000, tpm: 1000000000}}
  ant: {{models: [{CLAUDE}], rpm: 1000000, itpm: 1000000000, otpm: 100000000}}
session:
  think_time: 1s
  turns:
    t:
      steps:
        - call: {{model: {GPT}, input_tokens: 100, output_tokens: {{uniform: [5, 30]}}}}
        - call: {{model: {CLAUDE}, input_tokens: 100, output_tokens: {{uniform: [5, 30]}}}}
"""


class Proc:
    def __init__(self, popen: subprocess.Popen[str], url: str, banner: str) -> None:
        self.popen, self.url, self.banner = popen, url, banner

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url[len("http://"):].split(":")
        return host, int(port)

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.popen.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmRSS:")))


@pytest.fixture(name="proc")
def _proc(tmp_path: Path) -> Iterator[Proc]:
    path = tmp_path / "fuzz.yaml"
    path.write_text(PROFILE_YAML)
    p = subprocess.Popen(
        [sys.executable, "-m", "capacity", "serve", str(path), "--port", "0",
         "--time-scale", "100", "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert p.stdout is not None
        while True:
            line = p.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {p.stderr.read() if p.stderr else ''}")
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        url = next(x.split()[2] for x in lines if x.startswith("listening on"))
        yield Proc(p, url, "".join(lines))
    finally:
        interrupt(p)
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()


def test_cli_banner_and_ctrl_c(proc: Proc) -> None:
    assert "(loopback only)" in proc.banner
    assert f"base_url={proc.url}/v1" in proc.banner
    assert f"azure_endpoint={proc.url}" in proc.banner
    assert "seed 5" in proc.banner and "time scale 100x" in proc.banner
    r = httpx2.post(proc.url + "/v1/chat/completions",
                    json={"model": GPT, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    proc.popen.send_signal(signal.SIGINT)
    assert proc.popen.wait(timeout=60) == 130
    assert proc.popen.stderr is not None and "Traceback" not in proc.popen.stderr.read()


def test_cli_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE_YAML)
    for args, needle in ([["--time-scale", "0"], "--time-scale"],
                         [["--time-scale", "1e308"], "--time-scale"],
                         [["--tool-probability", "2"], "tool-probability"],
                         [["--provider", "gemini"], "provider"]):
        r = subprocess.run([sys.executable, "-m", "capacity", "serve", str(path), *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error:") and needle in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")


# -- fuzz ----------------------------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": GPT, "max_tokens": 20, "tools": [WEATHER_TOOL],
                             "tool_choice": "auto", "stream": False,
                             "messages": [{"role": "system", "content": "s"},
                                          {"role": "user", "content": "hi"}]},
    "/v1/messages": {"model": CLAUDE, "max_tokens": 20, "system": "s",
                     "tools": [{"name": "t", "input_schema": {"type": "object"}}],
                     "messages": [{"role": "user", "content": [{"type": "text",
                                                                "text": "hi"}]}]},
    "/v1/responses": {"model": GPT, "input": [{"role": "user", "content": "hi"}],
                      "tools": [{"type": "function", "name": "f",
                                 "parameters": {"type": "object"}}]},
    "/openai/deployments/oai/chat/completions?api-version=2024-10-21": {
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
}
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01"}


def _random_json(rng: np.random.Generator, depth: int = 0) -> Any:
    k = int(rng.integers(0, 7 if depth < 3 else 4))
    if k == 0:
        return None
    if k == 1:
        return bool(rng.random() < 0.5)
    if k == 2:
        return float(rng.normal() * 1e6) if rng.random() < 0.5 else int(rng.integers(-9, 9))
    if k == 3:
        return "".join(chr(int(c)) for c in rng.integers(32, 0x2FF, int(rng.integers(0, 20))))
    if k == 4:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    keys = ["model", "messages", "role", "content", "tools", "stream", "input", "max_tokens",
            "type", "x"]
    return {str(rng.choice(keys)): _random_json(rng, depth + 1)
            for _ in range(int(rng.integers(0, 5)))}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(rng: np.random.Generator, body: dict[str, Any]) -> Any:
    body = copy.deepcopy(body)
    paths = _paths(body)
    path = paths[int(rng.integers(0, len(paths)))]
    node = body
    for key in path[:-1]:
        node = node[key]
    if rng.random() < 0.2:
        del node[path[-1]]
    else:
        node[path[-1]] = _random_json(rng)
    return body


def _raw(proc: Proc, data: bytes, read: bool) -> bytes:
    s = socket.create_connection(proc.host_port, timeout=5)
    try:
        s.sendall(data)
        if read:
            # No shutdown of our side: a client that stops sending mid-body is still
            # waiting for the answer (aiohttp drops a half-closed request).
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
            return b"".join(chunks)
        return b""
    finally:
        s.close()


def _fuzz_round(proc: Proc, http: httpx2.Client, rng: np.random.Generator) -> int:
    """One round of malformed traffic; returns how many cases were sent."""
    n = 0
    endpoints = list(VALID)

    def post(path: str, content: bytes) -> None:
        nonlocal n
        n += 1
        r = http.post(path, content=content, headers=HEADERS)
        assert r.status_code < 500, (path, content[:200], r.text)
        if r.status_code >= 400:
            body = r.json()
            assert ("error" in body) and (body.get("type") == "error"
                                          if path == "/v1/messages" else True)

    for _ in range(20):  # random bytes
        post(str(rng.choice(endpoints)), rng.bytes(int(rng.integers(0, 300))))
    for _ in range(40):  # random JSON documents
        post(str(rng.choice(endpoints)), json.dumps(_random_json(rng)).encode())
    for _ in range(80):  # valid bodies with one field replaced or removed
        path = str(rng.choice(endpoints))
        post(path, json.dumps(_mutate(rng, VALID[path])).encode())
    for path in ("/v1/nope", "/", "/v1/chat/completions/x", "/admin/reset/x"):
        n += 1
        assert http.get(path).status_code in (404, 405)
    # Huge bodies: a real 9 MB one, and declared lengths far beyond the limit.
    post("/v1/chat/completions", b'{"model":"' + b"m" * (9 * 1024 * 1024) + b'"}')
    for _ in range(3):
        n += 1
        reply = _raw(proc, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-length: "
                     b"104857600\r\ncontent-type: application/json\r\n\r\n{\"model\":",
                     read=True)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    # Cut connections: mid-headers, mid-body, mid-stream, and garbage request lines.
    stream_body = json.dumps({**VALID["/v1/chat/completions"], "stream": True}).encode()
    for i in range(40):
        n += 1
        kind = i % 4
        if kind == 0:
            _raw(proc, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-le", False)
        elif kind == 1:
            _raw(proc, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-length: 500\r\n"
                 b"\r\n{\"model\": \"mock", False)
        elif kind == 2:
            _raw(proc, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: "
                 b"application/json\r\ncontent-length: " + str(len(stream_body)).encode()
                 + b"\r\n\r\n" + stream_body, False)
        else:
            reply = _raw(proc, rng.bytes(64) + b"\r\n\r\n", True)
            # Not HTTP at all: aiohttp's own plain 400 (there is no API to shape it for).
            assert not reply or reply.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), reply[:100]
    return n


def test_fuzz_leaves_server_answering_with_bounded_memory(proc: Proc) -> None:
    rng = np.random.default_rng(12345)
    ok = VALID["/v1/chat/completions"]
    with httpx2.Client(base_url=proc.url, timeout=30) as http:
        cases = _fuzz_round(proc, http, rng)  # warm-up: imports, buffers, caches
        rss_warm = proc.rss_kb()
        for _ in range(3):
            cases += _fuzz_round(proc, http, rng)
        rss_end = proc.rss_kb()
        assert cases >= 200 * 3
        assert http.post("/v1/chat/completions", json=ok).status_code == 200
        deadline = time.monotonic() + 60  # a real condition, polled; generous when loaded
        while True:
            m = metrics(proc.url)
            idle = (m["capacity_mock_in_flight_requests"] == 0
                    and m["capacity_mock_in_flight_streams"] == 0)
            if idle or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert idle, m
    # Three more rounds of ~190 bad requests each may not grow the heap by more than a
    # few MB (a leak of even 10 KB per request would show as ~6 MB).
    assert rss_end - rss_warm < 8 * 1024, (rss_warm, rss_end)
    assert proc.popen.poll() is None


def test_ctrl_c_does_not_wait_for_long_streams(tmp_path: Path) -> None:
    # A 160 s answer is streaming when Ctrl-C arrives: the server cuts it and exits.
    path = tmp_path / "slow.yaml"
    path.write_text(PROFILE_YAML.replace("tokens_per_second: 400", "tokens_per_second: 25")
                    .replace("max_tokens: 512", "max_tokens: 8000")
                    .replace("{uniform: [5, 30]}", "4000"))
    p = subprocess.Popen([sys.executable, "-m", "capacity", "serve", str(path), "--port", "0"],
                         stdout=subprocess.PIPE, text=True)
    s: socket.socket | None = None
    try:
        proc = Proc(p, banner_url(p), "")
        body = json.dumps({"model": GPT, "stream": True, "max_tokens": 4000,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        s = socket.create_connection(proc.host_port, timeout=60)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: "
                  b"application/json\r\ncontent-length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body)
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        p.send_signal(signal.SIGINT)
        # Not the 160 s the answer had left: a server that waited for it times out here;
        # the cut itself takes 0.5 s (the shutdown timeout), the rest is a loaded machine.
        assert p.wait(timeout=60) == 130
    finally:
        if s is not None:
            s.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()
