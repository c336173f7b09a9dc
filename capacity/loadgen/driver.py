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

Fleets (a profile with ``routes``), ``route="client"`` (the default): the sessions route
as a LiteLLM-style router in the application would, with THE routing rule
(:class:`capacity.model.routing.CallPath` over
:func:`~capacity.model.routing.router_from_profile`, one router per process): choose a
deployment, send the call to it (the Azure path's deployment segment, or the body's
``model``), and on its outcome spill to the next deployment at once when the 429 arrives,
retry by :class:`RetryPolicy` (the retry-after of the last 429 of the round), fall back
to the next logical model, or fail. Draws come from a third per-session stream
(:func:`route_rng`): one ``u`` per choice, one ``turn_u`` per turn — unrouted profiles
draw nothing more, so their seeded runs are unchanged. ``in_flight`` per deployment
counts calls sent to it and not yet answered (a client cannot know a call was admitted
before its answer comes back, so a 429 is in flight for its round trip — what LiteLLM's
least-busy counter does too). ``usage_based`` reads a local limiter mirror (see
:class:`_Mirror`). ``route="gateway"``: the sessions send the logical model name and the
target routes (``capacity serve`` acting as the gateway); the load generator then sends
``x-stainless-retry-count`` as the SDKs do, so the gateway knows the client's last
attempt, and reads the deployments from ``x-capacity-deployment`` /
``x-capacity-spilled``.

Session populations (``cfg.populations``, the split of N in block order): session *k*
runs its population's pacing and turn mix (:func:`capacity.loadgen.plan.population_of`)
from streams keyed by (population, index within it) — ``session``'s are the streams
sessions had before populations existed, so a profile without them draws exactly as
before — and tells the endpoint its population (``x-capacity-population``) so that a mock
finds the call in that population's turns. Each ended turn's population is recorded
(:attr:`Recorder.turn_populations`).

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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..limits import Limiter
from ..limits import Request as LimiterRequest
from ..model.pacing import Pacer
from ..model.retry import RetryPolicy
from ..model.routing import CallPath, Next, Route, UsageBased, router_from_profile
from ..profile.schema import SESSION, Profile
from .measure import Recorder, TurnRecord
from .plan import CallPlan, Node, ParPlan, SeqPlan, TurnSampler, population_of
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

__all__ = ["DriverConfig", "SessionDriver", "route_rng", "session_rngs"]

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
    route: str = "client"  # routed profiles: "client" (we route) or "gateway" (target does)
    # Profiles with populations: (population, sessions) in block order (plan.session_blocks);
    # empty: every session is of `session`.
    populations: tuple[tuple[str, int], ...] = ()


def session_rngs(seed: int, k: int, population: int = 0
                 ) -> tuple[np.random.Generator, np.random.Generator]:
    """Session ``k``'s two streams: turns and pauses / retry jitter.

    Keyed by (seed, k) only, so session k draws the same turns whatever N is (common random
    numbers across a grid of N); jitter has its own stream so 429s do not shift the turns.
    ``population``: the index of the session's population in
    :meth:`Profile.all_sessions` (``k`` then counts within it); 0 (``session``) keeps the
    streams sessions had before populations existed.
    """
    ss = np.random.SeedSequence(seed, spawn_key=_key(k, population))
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


def _key(k: int, population: int) -> tuple[int, ...]:
    # Populations after the first: a spawn key no stream of `session` uses ((k,), (k, 0..2)).
    return (k,) if population == 0 else (k, 3, population)


def route_rng(seed: int, k: int, population: int = 0) -> np.random.Generator:
    """Session ``k``'s routing stream (routed profiles only): independent of its turn and
    jitter streams, so routing never shifts the turns drawn."""
    key = (k, 2) if population == 0 else (*_key(k, population), 2)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class _Mirror:
    """``usage_based``'s view of the deployments' windows: a local :class:`Limiter` of the
    profile fed with this process's own attempts (admitted by the same rule at the moment
    they are sent), read with :func:`capacity.model.routing.snapshots_for`.

    Why a mirror and not the answers' rate-limit headers: a header tells the state at the
    last answer from that deployment, which for a non-streamed answer arrives seconds after
    its admission and says nothing about calls sent since; a router that counts its own
    traffic (LiteLLM's usage-based routing keeps its own per-minute TPM/RPM counters and
    increments them before each call) sees the state at the decision time, as the
    simulator's rule reads it. It sees this process's traffic only: several processes
    would each see a share (refused by ``capacity loadtest --processes``).
    """

    def __init__(self, profile: Profile) -> None:
        self.limiter = Limiter.from_profile(profile)

    def sent(self, t: float, deployment: str, call: CallPlan, max_tokens: int | None) -> None:
        if self.limiter.knows(deployment):
            self.limiter.admit(t, LimiterRequest(
                model=deployment, input_tokens=float(call.input_tokens),
                output_tokens=float(call.output_tokens),
                cached_input_tokens=float(call.cached_tokens),
                max_tokens=None if max_tokens is None else float(max_tokens)))

    def snapshots(self, route: Route, t: float) -> Any:
        from ..model.routing import snapshots_for

        return snapshots_for(self.limiter, route.deployments, t)


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
        self.samplers = {name: TurnSampler(profile, name) for name in profile.all_sessions()}
        self.sampler = self.samplers[SESSION]
        self._pop_index = {name: i for i, name in enumerate(profile.all_sessions())}
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
        # Fleets: client-side routing state (one router per process, as one application
        # instance holds one), in-flight counts per deployment, the usage mirror.
        self.router = (router_from_profile(profile)
                       if profile.routes and cfg.route == "client" else None)
        self.gateway = bool(profile.routes) and cfg.route == "gateway"
        self.dep_in_flight: dict[str, int] = {}
        self.mirror = (_Mirror(profile) if self.router is not None and any(
            isinstance(r.policy, UsageBased) for r in self.router.routes.values()) else None)

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
            self._fail(TargetError(_describe(e, self.peer())))

    def peer(self) -> str:
        """The endpoint the sessions talk to, as an error names it."""
        return f"the target {self.cfg.target}"

    def population(self, k: int) -> tuple[str, int, int]:
        """Session ``k``'s population, that population's index in
        :meth:`Profile.all_sessions`, and ``k``'s index within it."""
        if not self.cfg.populations:
            return SESSION, 0, k
        name, j = population_of(self.cfg.populations, k)
        return name, self._pop_index[name], j

    async def _session_loop(self, k: int) -> None:
        pop, p, j = self.population(k)
        sampler = self.samplers[pop]
        rng, rng_retry = session_rngs(self.cfg.seed, j, p)
        rrng = route_rng(self.cfg.seed, j, p) if self.router is not None else None
        await self.sleep_until(sampler.first_start(rng))
        conv = Conversation(k)
        turn = 0
        while True:
            start = self.now()
            _, plan = sampler.draw_turn(rng)
            pause = sampler.draw_pause(rng)
            rec = TurnRecord(start, math.nan, session=k, turn=turn,
                             calls_log=[] if self.cfg.log_calls else None,
                             population=pop if self.cfg.populations else None)
            if rrng is not None:
                rec.route_rng = rrng
                rec.turn_u = float(rrng.random())
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
            if self.cfg.populations:
                self.rec.turn_populations.append(pop)
            if rec.deps:
                self.rec.routing.extend((start, name, c[0], c[1], c[2], c[3], c[4])
                                        for name, c in rec.deps.items())
            if rec.calls_log is not None:
                self.rec.calls.extend(rec.calls_log)
            if measured:
                self.measured_open -= 1
            await self.sleep_until(sampler.next_start(start, rec.end, pause))

    def ident(self, rec: TurnRecord) -> tuple[str, int]:
        """(session id, turn number) sent with a call (``x-capacity-session``/``-turn``)."""
        return (f"{self.cfg.label}-s{rec.session}" if self.cfg.label else f"s{rec.session}",
                rec.turn)

    @staticmethod
    def log_call(rec: TurnRecord, call: CallPlan, started: float, status: int,
                 attempts: int, reply: Reply | None) -> None:
        """One request-log line (:mod:`capacity.fit.jsonl`) for a call that has ended.

        ``started``: Unix seconds of its first attempt (wall clock: at ``--time-scale K``
        durations are K times short; the lines record K: :func:`.runner.write_log`).
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
        if self.router is not None:
            return await self._routed_call(call, conv, rec, rng)
        rec.calls += 1
        new = conv.next_messages()
        req = build_request(self.cfg.provider, call, conv.exchanges, new,
                            deployment=self.cfg.deployments.get(call.model),
                            ident=self.ident(rec), population=rec.population)
        gate = await self._pace(rec)
        started = time.time()
        try:
            k = 0
            while True:
                rec.attempts += 1
                self.in_flight += 1
                try:
                    sent = (req.headers if not self.gateway else
                            {**req.headers, "x-stainless-retry-count": str(k)})
                    async with self._http.post(req.path, data=req.data,
                                               headers=sent) as resp:
                        status = resp.status
                        raw = await resp.read()
                        headers = resp.headers
                finally:
                    self.in_flight -= 1
                if self.gateway:
                    gateway_counts(rec, headers, status)
                if status == 200:
                    reply = parse_reply(self.cfg.provider, _json(raw, status))
                    tokens = reply.prompt_tokens + reply.completion_tokens
                    self.rec.successes.append((self.now(), tokens))
                    if reply.prompt_tokens != call.input_tokens:
                        self.rec.usage_mismatch += 1
                    conv.record(new, reply)
                    self.log_call(rec, call, started, status, k + 1, reply)
                    return conv
                if _retryable(status):
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


    async def _pace(self, rec: TurnRecord) -> _PacerGate | None:
        """Wait for the client pacer's token, if the profile paces (counted in the turn's
        pace wait, seconds); the gate to release when the call ends (None: no pacing)."""
        gate = self._gate
        if gate is not None:
            q0 = self.now()
            await gate.acquire()
            rec.pace_wait += self.now() - q0
        return gate

    async def _routed_call(self, call: CallPlan, conv: Conversation, rec: TurnRecord,
                           rng: np.random.Generator) -> Conversation:
        """One call of a routed profile, routed here (see the module docstring): rounds
        of a first send and its spills, retries by the policy, fallbacks, failure."""
        router = self.router
        assert router is not None and rec.route_rng is not None
        rec.calls += 1
        new = conv.next_messages()
        gate = await self._pace(rec)
        started = time.time()
        path = CallPath(router, call.model, self.policy.max_retries)
        rounds = 0
        new_round = True
        retry_after: float | None = None  # of the last 429 of the round, wall seconds
        last_status = 0
        try:
            while True:
                if new_round:
                    rec.attempts += 1
                    rounds += 1
                    new_round = False
                    retry_after = None
                t = self.now()
                route = router.routes[path.current]
                snaps = (self.mirror.snapshots(route, t) if self.mirror is not None
                         and isinstance(route.policy, UsageBased) else None)
                d = path.choose(t, u=float(rec.route_rng.random()), turn_u=rec.turn_u,
                                in_flight=self.dep_in_flight, snapshots=snaps)
                status: int | None = None
                if d is not None:
                    mt = (self.profile.max_tokens_for(call.spec, d.name)
                          if call.spec is not None else call.max_tokens)
                    req = build_request(self.cfg.provider, replace(call, model=d.name,
                                                                   max_tokens=mt),
                                        conv.exchanges, new, deployment=d.name,
                                        ident=self.ident(rec),
                                        population=rec.population)
                    if self.mirror is not None:
                        self.mirror.sent(t, d.name, call, mt)
                    counts = rec.dep(d.name)
                    counts[0] += 1
                    self.in_flight += 1
                    self.dep_in_flight[d.name] = self.dep_in_flight.get(d.name, 0) + 1
                    try:
                        async with self._http.post(req.path, data=req.data,
                                                   headers=req.headers) as resp:
                            status = resp.status
                            raw = await resp.read()
                            headers = resp.headers
                    finally:
                        self.in_flight -= 1
                        self.dep_in_flight[d.name] -= 1
                    if status == 200:
                        reply = parse_reply(self.cfg.provider, _json(raw, status))
                        path.outcome(d, t, True)
                        counts[1] += 1
                        self.rec.successes.append(
                            (self.now(), reply.prompt_tokens + reply.completion_tokens))
                        if reply.prompt_tokens != call.input_tokens:
                            self.rec.usage_mismatch += 1
                        conv.record(new, reply)
                        self.log_call(rec, call, started, status, rounds, reply)
                        return conv
                    if not _retryable(status):
                        raise TargetError(f"the target answered HTTP {status} to "
                                          f"{req.path}: {_short(raw)}")
                    last_status = status
                    retry_after = parse_retry_after(headers)
                nxt = path.outcome(d, t, False)
                if d is None:  # no deployment available (all cooling down)
                    none = rec.dep("")
                    none[2] += 1
                    none[4] += nxt is Next.FALLBACK
                else:
                    if nxt is Next.SPILL:
                        counts[3] += 1
                    else:
                        counts[2] += 1
                        counts[4] += nxt is Next.FALLBACK
                if nxt is Next.SPILL:
                    continue  # the next deployment, at once: the same round
                new_round = True
                if status is None or status == 429:
                    rec.rejected += 1  # the client saw a 429 (or none was available)
                if nxt is Next.FALLBACK:
                    continue  # the next logical model, at once, with fresh retries
                if nxt is Next.RETRY:
                    wait = self.policy.wait(
                        path.attempt, None if retry_after is None
                        else retry_after * self.cfg.time_scale, float(rng.random()))
                    if wait is not None:
                        await asyncio.sleep(wait / self.cfg.time_scale)
                        continue
                rec.failed = True
                rec.calls_failed += 1
                self.log_call(rec, call, started, last_status or 429, rounds, None)
                return conv
        finally:
            if gate is not None:
                gate.release()


def _retryable(status: int) -> bool:
    """A status the client retries, as the SDKs do: 429 and server errors — except 501
    and 505, a server saying it does not implement the request (a web server that is no
    LLM API, e.g. ``python -m http.server``): retrying those measured every call as
    failed and the targets as met."""
    return status == 429 or (status >= 500 and status not in (501, 505))


def gateway_counts(rec: TurnRecord, headers: Any, status: int) -> None:
    """Per-deployment counts of one answer of a gateway (``capacity serve`` routing a
    logical model): the deployments that refused before (``x-capacity-spilled``, in order;
    ``x-capacity-fell-back-from`` the one whose refusal moved the call to a fallback) and
    the one that answered (``x-capacity-deployment``)."""
    fell = headers.get("x-capacity-fell-back-from")
    for name in (headers.get("x-capacity-spilled") or "").split(","):
        if name:
            c = rec.dep(name)
            c[0] += 1
            if name == fell:
                c[2] += 1
                c[4] += 1
            else:
                c[3] += 1
    dep = headers.get("x-capacity-deployment")
    if dep:
        c = rec.dep(dep)
        c[0] += 1
        if status == 200:
            c[1] += 1
        elif status == 429:
            c[2] += 1


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


def _describe(e: BaseException, peer: str) -> str:
    """One line for a session's failure; ``peer`` names the endpoint ("the target URL")."""
    import aiohttp

    if isinstance(e, aiohttp.ClientConnectorError | ConnectionError):
        return f"cannot reach {peer}: {e.strerror or e}" if isinstance(
            e, aiohttp.ClientConnectorError) else f"cannot reach {peer}: {e}"
    if isinstance(e, asyncio.TimeoutError | TimeoutError):
        return f"{peer} did not answer in time"
    if isinstance(e, aiohttp.ClientError):
        return f"{peer} broke the connection: {type(e).__name__}: {e}"
    return f"load generator failed: {type(e).__name__}: {e}"
