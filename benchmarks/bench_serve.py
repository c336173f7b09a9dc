"""Cost of ``capacity serve``: what one core of the mock carries (not a test).

Run from the repository root::

    python benchmarks/bench_serve.py                      # rps + sse + a 2-minute soak
    python benchmarks/bench_serve.py --only soak --soak-minutes 10

The server runs as its own process (``python -m capacity serve``), so its CPU time and
RSS are read from ``/proc/<pid>`` apart from the load generator's (an aiohttp client in
this process). Figures are printed, not asserted.

* **rps** — a realistic agent request: OpenAI chat completions, non-streaming, a system
  prompt, a user question, 3 tool round trips (≈ 6 KB of JSON history) and 2 tools.
  The time scale is huge (answers take ~0 wall time) and the quota generous, so the
  figure is pure server cost: completed requests per second of *server CPU*.
* **sse** — N concurrent streams held open at once (K = 1, 50 tokens/s, long answers,
  the default 50 ms event grouping = 20 events/s per stream); reported: events received,
  server CPU per event, and the streams one core holds at 20 events/s
  (1 / (20 × CPU per event)). On a shared machine the client may not keep up with large
  N; the per-event cost is the robust figure.
* **soak** — steady load (``--soak-rps`` requests/s, a mix of streaming and not, with
  tool calls, 429s from a tight quota included) for ``--soak-minutes``; the server's RSS
  sampled every 10 s (start, end, max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

PROFILE = """
name: bench
models:
  mock-gpt: {ttft: 400ms, tokens_per_second: 50, max_tokens: 4096}
quotas:
  big:
    models: [mock-gpt]
    rpm: %(rpm)s
    tpm: 100000000000
    enforcement: {type: fixed_window, window: 1s}
session:
  think_time: 1s
  turns:
    t:
      steps:
        - call: {model: mock-gpt, input_tokens: 2000, output_tokens: %(out)s}
"""


def agent_request(stream: bool = False) -> dict[str, object]:
    """A turn after three tool round trips: ~6 KB of JSON."""
    tools = [{"type": "function", "function": {
        "name": name, "description": f"{name} tool " * 8,
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "what to look up " * 4},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
            "required": ["query"]}}} for name in ("search", "fetch_page")]
    msgs: list[dict[str, object]] = [
        {"role": "system", "content": "You are a careful research assistant. " * 12},
        {"role": "user", "content": "Compare the rate limits of three providers. " * 4}]
    for i in range(3):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": "search", "arguments": json.dumps({"query": f"q{i}"})}}]})
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}",
                     "content": "Result text from the search tool. " * 20})
    return {"model": "mock-gpt", "messages": msgs, "tools": tools, "max_tokens": 256,
            "stream": stream}


class Server:
    """``python -m capacity serve`` on a free port, with its /proc figures."""

    def __init__(self, rpm: float, out: str, time_scale: float) -> None:
        self.dir = tempfile.TemporaryDirectory()
        path = Path(self.dir.name) / "bench.yaml"
        path.write_text(PROFILE % {"rpm": rpm, "out": out})
        self.p = subprocess.Popen(
            [sys.executable, "-m", "capacity", "serve", str(path), "--port", "0",
             "--time-scale", str(time_scale), "--seed", "1", "--tool-probability", "0.5"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.p.stdout is not None
        self.url = ""
        for line in self.p.stdout:
            if line.startswith("listening on"):
                self.url = line.split()[2]
            if line.startswith("Ctrl-C"):
                break
        if not self.url:
            self.p.wait()
            raise RuntimeError("capacity serve did not start (see its error above)")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.p.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        # SIGTERM, not SIGINT: a job started in the background (`&`) ignores SIGINT.
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=30)
        if self.p.stdout is not None:
            self.p.stdout.close()
        self.dir.cleanup()


async def bench_rps(seconds: float, concurrency: int) -> None:
    srv = Server(rpm=10**12, out="{uniform: [50, 300]}", time_scale=1e6)
    body = json.dumps(agent_request()).encode()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            url = srv.url + "/v1/chat/completions"
            headers = {"content-type": "application/json"}
            done = 0
            stop = 0.0

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < stop:
                    async with http.post(url, data=body, headers=headers) as r:
                        await r.read()
                        assert r.status == 200, r.status
                        done += 1

            stop = time.monotonic() + 1.0  # warm-up
            await asyncio.gather(*[worker() for _ in range(concurrency)])
            done = 0
            c0, t0 = srv.cpu_s(), time.monotonic()
            stop = t0 + seconds
            await asyncio.gather(*[worker() for _ in range(concurrency)])
            cpu, wall = srv.cpu_s() - c0, time.monotonic() - t0
        print(f"rps: agent request of {len(body)} bytes, non-streaming, {concurrency} "
              f"connections, {wall:.1f} s: {done} requests, {done / wall:,.0f} req/s wall, "
              f"server CPU {cpu:.2f} s -> {done / cpu:,.0f} requests per CPU-second")
    finally:
        srv.close()


async def bench_sse(streams: int, seconds: float) -> None:
    # 50 tokens/s and 4,000-token answers: every stream stays open ~80 s.
    srv = Server(rpm=10**12, out="4000", time_scale=1.0)
    body = json.dumps({**agent_request(stream=True), "max_tokens": 4096}).encode()
    events = 0
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def one() -> None:
                nonlocal events
                async with http.post(srv.url + "/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"}) as r:
                    async for chunk in r.content.iter_any():
                        events += chunk.count(b"\n\n")  # SSE events end with a blank line

            tasks = [asyncio.create_task(one()) for _ in range(streams)]
            await asyncio.sleep(3.0)  # all open, first tokens out
            e0, c0, t0 = events, srv.cpu_s(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall, ev = srv.cpu_s() - c0, time.monotonic() - t0, events - e0
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        cores = cpu / wall
        per_event = cpu / max(ev, 1)
        target = streams * 20.0  # 50 ms grouping: 20 events per second per stream
        print(f"sse: {streams} concurrent streams for {wall:.1f} s: {ev / wall:,.0f} events/s "
              f"received ({ev / wall / target:.0%} of the {target:,.0f}/s asked), server CPU "
              f"{cores:.2f} cores, {per_event * 1e6:.0f} us per event -> one core holds "
              f"{1.0 / (20.0 * per_event):,.0f} streams at 20 events/s; RSS {srv.rss_mb():.0f} MB")
    finally:
        srv.close()


async def bench_soak(minutes: float, rps: float) -> None:
    # rpm 300 on 1 s windows at K = 20: 5 per 50 ms = 100 per wall second; 150 req/s
    # draws about a third 429s.
    srv = Server(rpm=300, out="{uniform: [20, 200]}", time_scale=20.0)
    bodies = [json.dumps(agent_request(stream=s)).encode() for s in (False, True)]
    counts: dict[int, int] = {}
    samples: list[tuple[float, float]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def one(i: int) -> None:
                async with http.post(srv.url + "/v1/chat/completions", data=bodies[i % 2],
                                     headers={"content-type": "application/json"}) as r:
                    await r.read()
                    counts[r.status] = counts.get(r.status, 0) + 1

            t0 = time.monotonic()
            end = t0 + minutes * 60
            pending: set[asyncio.Task[None]] = set()
            i = 0
            next_sample = t0
            while time.monotonic() < end:
                task = asyncio.create_task(one(i))
                pending.add(task)
                task.add_done_callback(pending.discard)
                i += 1
                if time.monotonic() >= next_sample:
                    samples.append((time.monotonic() - t0, srv.rss_mb()))
                    next_sample += 10.0
                await asyncio.sleep(1.0 / rps)
            await asyncio.gather(*pending, return_exceptions=True)
            samples.append((time.monotonic() - t0, srv.rss_mb()))
        rss = [r for _, r in samples]
        print(f"soak: {minutes:g} min at {rps:g} req/s ({i} requests, statuses {counts}): "
              f"RSS start {rss[0]:.1f} MB, after 1 min "
              f"{next((r for t, r in samples if t >= 60), rss[-1]):.1f} MB, "
              f"end {rss[-1]:.1f} MB, max {max(rss):.1f} MB")
        print("soak samples (s, MB): " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r in samples))
    finally:
        srv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["rps", "sse", "soak"], default=None)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement per figure")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--streams", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--soak-minutes", type=float, default=2.0)
    ap.add_argument("--soak-rps", type=float, default=150.0)
    a = ap.parse_args()
    if a.only in (None, "rps"):
        asyncio.run(bench_rps(a.seconds, a.concurrency))
    if a.only in (None, "sse"):
        for n in a.streams:
            asyncio.run(bench_sse(n, a.seconds))
    if a.only in (None, "soak"):
        asyncio.run(bench_soak(a.soak_minutes, a.soak_rps))


if __name__ == "__main__":
    main()
