"""The sessions as a Locust ``User``, so Locust's own master/worker mode distributes them.

One Locust user is one closed-loop session of the profile: the same turn draws
(:class:`~capacity.loadgen.plan.TurnSampler`), request builders
(:mod:`~capacity.loadgen.protocol`) and retry rule (:class:`capacity.model.retry.RetryPolicy`)
as the built-in engine, on gevent instead of asyncio (``parallel`` copies are greenlets).
Every attempt is a Locust request (named after the call; a 429 is a failure), so Locust's
web UI and statistics show them; the turn records that give the simulator's metrics go
from each worker to the master as a custom message and are summarised like the built-in
engine's.

Use it from a locustfile::

    from capacity.loadgen.locust import user_class
    AgentSession = user_class("profiles/web-research.yaml", time_scale=20,
                              warmup_s=300, duration_s=600, seed=1)

and run ``locust -f that.py --host http://127.0.0.1:8000`` (``--master`` / ``--worker`` to
distribute). ``capacity loadtest --engine locust --workers W`` starts a local master and
W workers itself (:func:`run_locust`). Client pacing (``profile.pacing``) is not applied
here: a fleet-wide pacer cannot be shared between Locust workers. Fleet profiles
(``routes``) go through a gateway: the sessions send the logical model name with
``x-stainless-retry-count`` (as the SDKs do) and the target routes (``capacity serve``
acts as the gateway); the deployments it names in its answers are counted per deployment.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..profile.schema import Profile
from .driver import gateway_counts
from .measure import Recorder, TurnRecord
from .plan import CallPlan, Node, ParPlan, SeqPlan, TurnSampler
from .protocol import (
    Conversation,
    Provider,
    TargetError,
    build_request,
    fork,
    parse_reply,
    parse_retry_after,
)

__all__ = ["ENV", "run_locust", "user_class"]

ENV = "CAPACITY_LOCUST"
"""Environment variable carrying the settings (JSON) to the generated locustfile."""
_MSG = "capacity_records"
_TICK_S = 0.01


def user_class(profile: Profile | str | Path, *, time_scale: float = 1.0,
               warmup_s: float = 120.0, duration_s: float = 600.0, seed: int = 0,
               provider: Provider = "openai", out: str | None = None) -> type:
    """A Locust ``FastHttpUser`` subclass running sessions of ``profile``.

    ``out`` : where the master writes the merged turn records (JSON) when the test stops.
    """
    import gevent
    from locust import FastHttpUser, events, task

    from ..model.retry import RetryPolicy

    if not isinstance(profile, Profile):
        from ..profile.loader import load_profile

        profile = load_profile([Path(profile)])
    sampler = TurnSampler(profile)
    policy = RetryPolicy.from_profile(profile)
    abort = policy.on_exhausted == "abort_turn"
    routed = bool(profile.routes)
    t0, t1 = warmup_s, warmup_s + duration_s
    state: dict[str, Any] = {"origin": None, "rec": Recorder(), "count": 0, "merged": [],
                             "in_turn": 0, "in_flight": 0, "open": {}}

    def now() -> float:
        if state["origin"] is None:
            state["origin"] = time.monotonic()
        return float((time.monotonic() - state["origin"]) * time_scale)

    def ticker() -> None:
        expected = time.monotonic() + _TICK_S
        while True:
            gevent.sleep(_TICK_S)
            w = time.monotonic()
            t = now()
            if t0 <= t < t1:
                state["rec"].lag.append(max(0.0, w - expected))
                state["rec"].occupancy.append((t, state["in_turn"], state["in_flight"]))
            expected = w + _TICK_S

    def _start(environment: Any, **_: Any) -> None:
        from locust.runners import MasterRunner

        state["origin"] = time.monotonic()  # model time 0 on every worker at once
        if not isinstance(environment.runner, MasterRunner):
            gevent.spawn(ticker)

    def _init(environment: Any, **_: Any) -> None:
        from locust.runners import MasterRunner

        if isinstance(environment.runner, MasterRunner):
            environment.runner.register_message(
                _MSG, lambda msg, **__: state["merged"].append(msg.data))

    def _stopping(environment: Any, **_: Any) -> None:
        from locust.runners import MasterRunner, WorkerRunner

        rec: Recorder = state["rec"]
        rec.open_turns.extend(state["open"].values())
        state["open"] = {}
        if isinstance(environment.runner, WorkerRunner):
            environment.runner.send_message(_MSG, rec.to_wire())
        elif not isinstance(environment.runner, MasterRunner):
            state["merged"].append(rec.to_wire())  # a single-process Locust run

    def _quit(environment: Any, **_: Any) -> None:
        if out is not None and not environment.parsed_options.worker:
            Path(out).write_text(json.dumps(state["merged"]))

    # Registered by call through Any, not as decorators: Locust's hooks are untyped.
    ev: Any = events
    ev.test_start.add_listener(_start)
    ev.init.add_listener(_init)
    ev.test_stopping.add_listener(_stopping)
    ev.quitting.add_listener(_quit)

    class ProfileSession(FastHttpUser):
        """One closed-loop session of the profile."""

        abstract = False
        connection_timeout = 5.0
        network_timeout = 600.0

        def on_start(self) -> None:
            runner = self.environment.runner
            index = getattr(runner, "worker_index", 0) if runner is not None else 0
            self.k = int(index) * 1_000_000 + state["count"]
            state["count"] += 1
            ss = np.random.SeedSequence(seed, spawn_key=(self.k,)).spawn(2)
            self.rng, self.rng_retry = (np.random.default_rng(s) for s in ss)
            self.conv = Conversation(self.k)

        @task
        def session(self) -> None:
            gevent.sleep(sampler.first_start(self.rng) / time_scale)
            while True:
                start = now()
                _, plan = sampler.draw_turn(self.rng)
                pause = sampler.draw_pause(self.rng)
                rec = TurnRecord(start, math.nan)
                state["open"][self.k] = start
                state["in_turn"] += 1
                try:
                    self.conv = self._node(plan, self.conv, rec)
                finally:
                    state["in_turn"] -= 1
                rec.end = now()
                state["open"].pop(self.k, None)
                state["rec"].turns.append(rec.as_tuple())
                if rec.deps:
                    state["rec"].routing.extend(
                        (start, name, c[0], c[1], c[2], c[3], c[4])
                        for name, c in rec.deps.items())
                nxt = sampler.next_start(start, rec.end, pause)
                gevent.sleep(max(0.0, nxt - now()) / time_scale)

        def _node(self, node: Node, conv: Conversation, rec: TurnRecord) -> Conversation:
            if isinstance(node, CallPlan):
                return conv if (rec.failed and abort) else self._call(node, conv, rec)
            if isinstance(node, SeqPlan):
                for child in node.children:
                    if rec.failed and abort:
                        break
                    conv = self._node(child, conv, rec)
                return conv
            assert isinstance(node, ParPlan)
            if not node.children:
                return conv
            lets = [gevent.spawn(self._node, c, fork(conv), rec) for c in node.children]
            gevent.joinall(lets, raise_error=True)
            return lets[0].value  # type: ignore[no-any-return]

        def _call(self, call: CallPlan, conv: Conversation, rec: TurnRecord) -> Conversation:
            rec.calls += 1
            new = conv.next_messages()
            req = build_request(provider, call, conv.exchanges, new)
            k = 0
            while True:
                rec.attempts += 1
                state["in_flight"] += 1
                try:
                    # geventhttpclient sends bytes as they are (Locust's stub says str).
                    headers_out = (req.headers if not routed else
                                   {**req.headers, "x-stainless-retry-count": str(k)})
                    with self.client.post(req.path, data=cast(Any, req.data),
                                          headers=headers_out,
                                          name=call.name, catch_response=True) as resp:
                        status = resp.status_code or 0
                        if status == 429:
                            resp.failure("429 rate limited")
                        elif status != 200:
                            resp.failure(f"HTTP {status}")
                        body, headers = resp.content, resp.headers
                finally:
                    state["in_flight"] -= 1
                if routed:
                    gateway_counts(rec, headers or {}, status)
                if status == 200:
                    try:
                        data = json.loads(body or b"")
                    except ValueError:
                        raise TargetError("the target's answer is not JSON") from None
                    reply = parse_reply(provider, data)
                    state["rec"].successes.append(
                        (now(), reply.prompt_tokens + reply.completion_tokens))
                    conv.record(new, reply)
                    return conv
                if status == 429 or status >= 500:
                    rec.rejected += status == 429
                    k += 1
                    ra = parse_retry_after(headers or {})
                    wait = policy.wait(k, None if ra is None else ra * time_scale,
                                       float(self.rng_retry.random()))
                    if wait is None:
                        rec.failed = True
                        rec.calls_failed += 1
                        return conv
                    gevent.sleep(wait / time_scale)
                    continue
                raise TargetError(f"the target answered HTTP {status} to {req.path}")

    ProfileSession.__name__ = f"Session_{profile.title.replace('-', '_')}"
    return ProfileSession


def locust_drain_s(profile: Profile, duration_s: float) -> float:
    """How long Locust runs after the measured interval (model seconds). It cannot stop
    when the measured turns have ended, only at its --run-time: a shorter drain than the
    built-in engine's, but at least twice the model's p99 turn latency (retries lengthen
    turns under load), so that a turn begun at the interval's end can end — 60 s cut
    web-research's ~100 s turns short (7 of 56 left open at --duration 5m). Turns still
    open are reported as such."""
    from ..analytic.model import cycle_time
    from ..model.workload import Workload
    from .runner import default_drain_s

    long_turn = 2.0 * cycle_time(Workload.from_profile(profile)).turn_latency_p99_s
    return min(default_drain_s(profile, duration_s),
               max(60.0, 0.2 * duration_s, long_turn))


def run_locust(profile: Profile, cfg: Any, sessions: int) -> tuple[Recorder, bool, float]:
    """Run ``sessions`` sessions on a local Locust master with ``cfg.workers`` workers
    (Locust's own master/worker mode); returns (records, interrupted, measured horizon)."""
    from .protocol import normalise_target

    target = normalise_target(cfg.target, cfg.provider)
    drain = cfg.drain_s if cfg.drain_s is not None else locust_drain_s(profile,
                                                                       cfg.duration_s)
    run_time = (cfg.warmup_s + cfg.duration_s + drain) / cfg.time_scale
    with tempfile.TemporaryDirectory(prefix="capacity-locust-") as tmp:
        prof = Path(tmp) / "profile.pickle"
        prof.write_bytes(pickle.dumps(profile))  # exact: our own file, read by our workers
        out = Path(tmp) / "records.json"
        env = {**os.environ, ENV: json.dumps({
            "profile": str(prof), "time_scale": cfg.time_scale, "warmup_s": cfg.warmup_s,
            "duration_s": cfg.duration_s, "seed": cfg.seed, "provider": cfg.provider,
            "out": str(out)})}
        locustfile = str(Path(__file__).with_name("locustfile.py"))
        port = _free_port()
        common = [sys.executable, "-m", "locust", "-f", locustfile, "--headless",
                  "--host", target]
        master = subprocess.Popen(
            [*common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
             str(port), "--expect-workers", str(cfg.workers), "-u", str(sessions), "-r",
             str(max(sessions, 1)), "--run-time", f"{math.ceil(run_time)}s", "--only-summary",
             "--stop-timeout", "0", "--loglevel", "WARNING"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        workers = [subprocess.Popen(
            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
             "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for _ in range(cfg.workers)]
        interrupted = False
        started = time.time()
        procs: list[subprocess.Popen[Any]] = [master, *workers]
        try:
            try:
                _, err = master.communicate(timeout=run_time + 120)
            except KeyboardInterrupt:
                interrupted = True
                _, err = master.communicate(timeout=60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not out.exists():
            raise TargetError(f"the Locust master reported nothing: {(err or '').strip()[-300:]}")
        rec = Recorder()
        for wire in json.loads(out.read_text()):
            rec.merge(wire)
    horizon = cfg.duration_s
    if interrupted:
        horizon = max(0.0, min(cfg.duration_s,
                               (time.time() - started) * cfg.time_scale - cfg.warmup_s))
    return rec, interrupted, horizon


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
