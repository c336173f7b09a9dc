"""The built-in engine: closed-loop sessions on one asyncio event loop, over raw aiohttp.

Each session runs the turns :class:`~capacity.loadgen.plan.TurnSampler` draws, against the
target, in *model time*: wall time × K under ``--time-scale K`` (the mock runs K× faster
with the same K), so pauses and backoffs sleep ``model seconds / K`` and the server's
retry-after (wall seconds) is ``× K`` model seconds.

Rules shared with the simulator and the mock, never re-implemented here:

* the client's 429 policy — :class:`capacity.model.retry.RetryPolicy` (retry *k* waits
  ``pol.wait(k, retry_after, u)``; None: the call fails; ``abort_turn`` stops the turn's
  further steps, copies already in flight finish);
* client pacing — :class:`capacity.model.pacing.Pacer`, fleet-wide FIFO: one token per
  call, the concurrency slot held until the call's final outcome (the SDK's retries
  inside are not paced again); the time queued is part of the turn.

Why raw aiohttp: the official SDKs cost 1.5–3 ms of CPU per call (the protocol reference
measures them), a raw aiohttp request ~0.2 ms; with hundreds of sessions on one core the
SDK would be the bottleneck and its lag would corrupt the measurement.

A ticker measures the event loop's own lag (how late a 10 ms timer fires) and samples the
sessions in a turn and the calls in flight.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.pacing import Pacer
from ..model.retry import RetryPolicy
from ..profile.schema import Profile
from .measure import Recorder, TurnRecord
from .plan import CallPlan, Node, ParPlan, SeqPlan, TurnSampler
from .protocol import (
    Conversation,
    Provider,
    Reply,
    TargetError,
    build_request,
    fork,
    parse_reply,
    parse_retry_after,
)

__all__ = ["DriverConfig", "SessionDriver", "session_rngs"]

TICK_S = 0.01
"""Wall seconds between two ticks of the lag/occupancy sampler."""


@dataclass(frozen=True)
class DriverConfig:
    """What one shard of a run needs.

    target : base URL; provider : request dialect; time_scale : K; warmup_s, duration_s :
    the measured interval is ``[warmup_s, warmup_s + duration_s)`` model seconds;
    drain_s : after it, how long (model seconds) to wait at most for measured turns to
    end; seed : root of the sessions' random streams; request_timeout_s : wall seconds.
    """

    target: str
    provider: Provider
    time_scale: float
    warmup_s: float
    duration_s: float
    seed: int
    drain_s: float
    deployments: dict[str, str] = field(default_factory=dict)
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    log_calls: bool = False
    label: str = ""  # names the sessions in headers: "<label>-s<k>" (runner: "N<n>")


def session_rngs(seed: int, k: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Session ``k``'s two streams: turns and pauses / retry jitter.

    Keyed by (seed, k) only, so session k draws the same turns whatever N is (common random
    numbers across a grid of N); jitter has its own stream so 429s do not shift the turns.
    """
    ss = np.random.SeedSequence(seed, spawn_key=(k,))
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


class _PacerGate:
    """FIFO queue in front of the calls, released by the shared :class:`Pacer`."""

    def __init__(self, pacer: Pacer, now: Callable[[], float], scale: float) -> None:
        self.pacer = pacer
        self.now = now
        self.scale = scale
        self.queue: deque[asyncio.Future[None]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    async def acquire(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append(fut)
        self._dispatch()
        await fut

    def release(self) -> None:
        self.pacer.release(self.now())
        self._dispatch()

    def _wake(self) -> None:
        self.timer = None
        self._dispatch()

    def _dispatch(self) -> None:
        while self.queue:
            if self.queue[0].done():  # cancelled while waiting
                self.queue.popleft()
                continue
            wait = self.pacer.try_acquire(self.now())
            if wait <= 0.0:
                self.queue.popleft().set_result(None)
                continue
            if math.isfinite(wait) and self.timer is None:
                self.timer = asyncio.get_running_loop().call_later(wait / self.scale,
                                                                   self._wake)
            break


class SessionDriver:
    """Runs sessions ``ids`` of ``profile`` against the target and records them.

    ``origin_epoch`` : wall-clock time (``time.time()``) of model time 0, shared by every
    shard of a run (processes of one machine); default: now.
    """

    def __init__(self, profile: Profile, cfg: DriverConfig, ids: list[int],
                 origin_epoch: float | None = None) -> None:
        self.profile = profile
        self.cfg = cfg
        self.ids = ids
        self.origin_epoch = time.time() if origin_epoch is None else origin_epoch
        self.sampler = TurnSampler(profile)
        self.policy = RetryPolicy.from_profile(profile)
        self.abort = self.policy.on_exhausted == "abort_turn"
        self.rec = Recorder()
        self.t0 = cfg.warmup_s
        self.t1 = cfg.warmup_s + cfg.duration_s
        self.in_turn = 0
        self.in_flight = 0
        self.measured_open = 0
        self.fatal: BaseException | None = None
        self._done = asyncio.Event()
        self._origin = 0.0
        self._http: Any = None
        self._gate: _PacerGate | None = None
        self._open_starts: dict[int, float] = {}

    # -- time ----------------------------------------------------------------------
    def now(self) -> float:
        """Model seconds since the run's origin."""
        return (time.monotonic() - self._origin) * self.cfg.time_scale

    async def sleep_until(self, t: float) -> None:
        dt = t - self.now()
        if dt > 0:
            await asyncio.sleep(dt / self.cfg.time_scale)

    # -- the run -------------------------------------------------------------------
    async def run(self) -> Recorder:
        """Run until every turn started in the measured interval has ended (or the drain
        limit), then stop the sessions; raises :class:`TargetError` on a bad target."""
        import aiohttp

        # Model time 0 on this process's monotonic clock.
        self._origin = time.monotonic() - (time.time() - self.origin_epoch)
        pacer = Pacer.from_profile(self.profile)
        if pacer is not None:
            self._gate = _PacerGate(pacer, self.now, self.cfg.time_scale)
        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s,
                                        sock_connect=self.cfg.connect_timeout_s)
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        # No proxy from the environment (trust_env off) and a guard on every request: the
        # sessions send to the target and the agent URL only (see allowed_origins).
        allowed = self.allowed_origins()

        async def guard(session: Any, ctx: Any, params: Any) -> None:
            if _origin(params.url) not in allowed:
                raise TargetError(f"refusing to send to {params.url}: not the target "
                                  f"{self.cfg.target}")

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(guard)
        async with aiohttp.ClientSession(self.cfg.target, timeout=timeout,
                                         connector=connector, trust_env=False,
                                         trace_configs=[trace],
                                         json_serialize=json.dumps) as http:
            self._http = http
            tasks = [asyncio.create_task(self._session(k)) for k in self.ids]
            ticker = asyncio.create_task(self._ticker())
            try:
                await self._wait_end()
            finally:
                for t in [*tasks, ticker]:
                    t.cancel()
                await asyncio.gather(*tasks, ticker, return_exceptions=True)
                self.rec.open_turns.extend(self._open_starts.values())
        if self.fatal is not None:
            raise self.fatal
        return self.rec

    def allowed_origins(self) -> set[tuple[str, str, int | None]]:
        """(scheme, host, port) of the URLs the sessions may send to: the target's."""
        return {_origin(self.cfg.target)}

    async def _wait_end(self) -> None:
        end_of_window = asyncio.create_task(self.sleep_until(self.t1))
        failed = asyncio.create_task(self._done.wait())
        await asyncio.wait({end_of_window, failed}, return_when=asyncio.FIRST_COMPLETED)
        deadline = self.t1 + self.cfg.drain_s
        while self.fatal is None and self.measured_open > 0 and self.now() < deadline:
            await asyncio.sleep(min(0.05, TICK_S * 5))
        end_of_window.cancel()
        failed.cancel()

    def _fail(self, e: BaseException) -> None:
        if self.fatal is None:
            self.fatal = e
        self._done.set()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        expected = loop.time() + TICK_S
        while True:
            await asyncio.sleep(TICK_S)
            now_w = loop.time()
            t = self.now()
            if self.t0 <= t < self.t1:
                self.rec.lag.append(max(0.0, now_w - expected))
                self.rec.occupancy.append((t, self.in_turn, self.in_flight))
            expected = now_w + TICK_S

    async def _session(self, k: int) -> None:
        try:
            await self._session_loop(k)
        except asyncio.CancelledError:
            raise
        except TargetError as e:
            self._fail(e)
        except Exception as e:
            self._fail(TargetError(_describe(e, self.cfg.target)))

    async def _session_loop(self, k: int) -> None:
        rng, rng_retry = session_rngs(self.cfg.seed, k)
        await self.sleep_until(self.sampler.first_start(rng))
        conv = Conversation(k)
        turn = 0
        while True:
            start = self.now()
            _, plan = self.sampler.draw_turn(rng)
            pause = self.sampler.draw_pause(rng)
            rec = TurnRecord(start, math.nan, session=k, turn=turn,
                             calls_log=[] if self.cfg.log_calls else None)
            turn += 1
            measured = self.t0 <= start < self.t1
            if measured:
                self.measured_open += 1
            self._open_starts[k] = start
            self.in_turn += 1
            try:
                conv = await self._node(plan, conv, rec, rng_retry)
            finally:
                self.in_turn -= 1
            rec.end = self.now()
            del self._open_starts[k]
            self.rec.turns.append(rec.as_tuple())
            if rec.calls_log is not None:
                self.rec.calls.extend(rec.calls_log)
            if measured:
                self.measured_open -= 1
            await self.sleep_until(self.sampler.next_start(start, rec.end, pause))

    def ident(self, rec: TurnRecord) -> tuple[str, int]:
        """(session id, turn number) sent with a call (``x-capacity-session``/``-turn``)."""
        return (f"{self.cfg.label}-s{rec.session}" if self.cfg.label else f"s{rec.session}",
                rec.turn)

    @staticmethod
    def log_call(rec: TurnRecord, call: CallPlan, started: float, status: int,
                 attempts: int, reply: Reply | None) -> None:
        """One request-log line (:mod:`capacity.fit.jsonl`) for a call that has ended.

        ``started``: Unix seconds of its first attempt (wall clock: at ``--time-scale K``
        durations are K times short, read the log with ``capacity fit --time-scale K``).
        """
        if rec.calls_log is None:
            return
        line: dict[str, Any] = {
            "session": rec.session, "turn": rec.turn, "start": started, "end": time.time(),
            "model": call.model, "name": call.name, "status": status,
            "retries": max(0, attempts - 1)}
        if reply is not None:
            line["input_tokens"] = reply.prompt_tokens
            line["output_tokens"] = reply.completion_tokens
            line["cached_input_tokens"] = min(reply.cached_tokens, reply.prompt_tokens)
        else:
            line.update(input_tokens=call.input_tokens, output_tokens=0,
                        cached_input_tokens=call.cached_tokens)
        if call.max_tokens is not None:
            line["max_tokens"] = call.max_tokens
        rec.calls_log.append(line)

    async def _node(self, node: Node, conv: Conversation, rec: TurnRecord,
                    rng: np.random.Generator) -> Conversation:
        if isinstance(node, CallPlan):
            if rec.failed and self.abort:
                return conv
            return await self._call(node, conv, rec, rng)
        if isinstance(node, SeqPlan):
            for child in node.children:
                if rec.failed and self.abort:
                    break
                conv = await self._node(child, conv, rec, rng)
            return conv
        assert isinstance(node, ParPlan)
        if not node.children:
            return conv
        # Every copy launched at this instant, each on its own branch of the history.
        branches = await asyncio.gather(*(self._node(c, fork(conv), rec, rng)
                                          for c in node.children))
        return branches[0]

    async def _call(self, call: CallPlan, conv: Conversation, rec: TurnRecord,
                    rng: np.random.Generator) -> Conversation:
        rec.calls += 1
        new = conv.next_messages()
        req = build_request(self.cfg.provider, call, conv.exchanges, new,
                            deployment=self.cfg.deployments.get(call.model),
                            ident=self.ident(rec))
        gate = self._gate
        if gate is not None:
            q0 = self.now()
            await gate.acquire()
            rec.pace_wait += self.now() - q0
        started = time.time()
        try:
            k = 0
            while True:
                rec.attempts += 1
                self.in_flight += 1
                try:
                    async with self._http.post(req.path, data=req.data,
                                               headers=req.headers) as resp:
                        status = resp.status
                        raw = await resp.read()
                        headers = resp.headers
                finally:
                    self.in_flight -= 1
                if status == 200:
                    reply = parse_reply(self.cfg.provider, _json(raw, status))
                    tokens = reply.prompt_tokens + reply.completion_tokens
                    self.rec.successes.append((self.now(), tokens))
                    if reply.prompt_tokens != call.input_tokens:
                        self.rec.usage_mismatch += 1
                    conv.record(new, reply)
                    self.log_call(rec, call, started, status, k + 1, reply)
                    return conv
                if status == 429 or status >= 500:
                    if status == 429:
                        rec.rejected += 1
                    k += 1
                    ra = parse_retry_after(headers)
                    wait = self.policy.wait(k, None if ra is None else ra * self.cfg.time_scale,
                                            float(rng.random()))
                    if wait is None:
                        rec.failed = True
                        rec.calls_failed += 1
                        self.log_call(rec, call, started, status, k, None)
                        return conv
                    await asyncio.sleep(wait / self.cfg.time_scale)
                    continue
                raise TargetError(f"the target answered HTTP {status} to {req.path}: "
                                  f"{_short(raw)}")
        finally:
            if gate is not None:
                gate.release()


def _origin(url: Any) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL (a string or a yarl URL); default ports filled in."""
    from yarl import URL

    u = URL(str(url))
    return (u.scheme, (u.host or "").lower(), u.port)


def _json(raw: bytes, status: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise TargetError(f"the target answered HTTP {status} with a body that is not JSON: "
                          f"{_short(raw)}") from None


def _short(raw: bytes) -> str:
    text = raw[:160].decode("utf-8", "replace").replace("\n", " ")
    return repr(text) if text else "(empty body)"


def _describe(e: BaseException, target: str) -> str:
    import aiohttp

    if isinstance(e, aiohttp.ClientConnectorError | ConnectionError):
        return f"cannot reach the target {target}: {e.strerror or e}" if isinstance(
            e, aiohttp.ClientConnectorError) else f"cannot reach the target {target}: {e}"
    if isinstance(e, asyncio.TimeoutError | TimeoutError):
        return f"the target {target} did not answer in time"
    if isinstance(e, aiohttp.ClientError):
        return f"the target {target} broke the connection: {type(e).__name__}: {e}"
    return f"load generator failed: {type(e).__name__}: {e}"
