"""Run a load test over a grid of N and put the simulator's prediction beside it."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..errors import CapacityError
from ..model.population import describe
from ..profile.schema import DIMENSION_PERIOD_S, Profile
from .driver import DriverConfig, SessionDriver
from .measure import Recorder, summarise, summarise_populations, summarise_routing
from .plan import session_blocks
from .protocol import Provider, normalise_target
from .result import LoadPoint, LoadtestResult, measured_ceiling

__all__ = ["LAG_FRACTION", "LagError", "LoadtestConfig", "lag_limit_s", "run_loadtest"]

LAG_FRACTION = 0.1
"""A run is refused when the event loop's p99 lag exceeds this fraction of the smallest
enforcement window ÷ K: a timer that fires that late moves requests across window
boundaries often enough to change what the limiter admits."""


class LagError(CapacityError):
    """The load generator could not keep time: its measurement would be wrong."""


@dataclass(frozen=True)
class LoadtestConfig:
    """Settings of a load test (times in model seconds unless said otherwise)."""

    target: str
    provider: Provider = "openai"
    time_scale: float = 1.0
    warmup_s: float = 120.0
    duration_s: float = 600.0
    seed: int = 0
    replications: int = 20
    processes: int = 1
    drain_s: float | None = None
    engine: Literal["builtin", "locust"] = "builtin"
    client: Literal["raw", "openai", "anthropic"] = "raw"
    agent_url: str | None = None
    agent_template: str | None = None
    workers: int = 2
    deployments: dict[str, str] = field(default_factory=dict)
    reset: bool = True
    log: str | None = None
    route: Literal["client", "gateway"] = "client"


def smallest_window_s(profile: Profile) -> float:
    """The shortest enforcement time scale of the profile's quotas (model seconds): a
    window's length, or a token bucket's depth in seconds of refill."""
    out = math.inf
    for q in profile.quotas.values():
        for dim in q.limits():
            enf = q.enforcement_for(dim)
            w = enf.burst if enf.type == "token_bucket" else enf.window
            out = min(out, w if DIMENSION_PERIOD_S[dim] >= w else DIMENSION_PERIOD_S[dim])
    return out


def lag_limit_s(profile: Profile, time_scale: float) -> float:
    """Largest acceptable p99 event-loop lag, wall seconds."""
    return LAG_FRACTION * smallest_window_s(profile) / time_scale


def default_warmup_s(profile: Profile) -> float:
    """The simulator's default warm-up (two mean session cycles, model seconds); for a
    profile the simulator cannot compile, two mean pauses (the turns' own time left out:
    a shorter warm-up, said by the caller's note)."""
    from ..sim.engine import default_warmup

    try:
        return default_warmup(profile)
    except CapacityError:
        return 2.0 * profile.session.pause.mean


def default_drain_s(profile: Profile, duration_s: float) -> float:
    """How long to wait after the measured interval for its turns to end: the duration
    itself, at least ten minutes (model seconds) — turns that have not ended by then are
    reported as open (and left out of the latency figures)."""
    return max(duration_s, 600.0)


def _shard(profile: Profile, cfg: DriverConfig, ids: list[int], epoch: float,
           agent: tuple[str, str | None] | None, client: str
           ) -> tuple[dict[str, Any], bool, str | None]:
    """One process's share of the sessions; returns (records, interrupted, error)."""
    driver = make_driver(profile, cfg, ids, epoch, agent, client)
    try:
        asyncio.run(driver.run())
        return driver.rec.to_wire(), False, None
    except KeyboardInterrupt:
        return driver.rec.to_wire(), True, None
    except CapacityError as e:
        return driver.rec.to_wire(), False, str(e)


def make_driver(profile: Profile, cfg: DriverConfig, ids: list[int], epoch: float | None,
                agent: tuple[str, str | None] | None, client: str) -> SessionDriver:
    """The session driver for the chosen mode (raw client, SDK client or agent)."""
    if agent is not None:
        from .agent import AgentDriver

        return AgentDriver(profile, cfg, ids, epoch, agent_url=agent[0], template=agent[1])
    if client != "raw":
        from .sdk import SdkDriver

        return SdkDriver(profile, cfg, ids, epoch, sdk=client)
    return SessionDriver(profile, cfg, ids, epoch)


def measure(profile: Profile, cfg: LoadtestConfig, sessions: int) -> tuple[Recorder, bool,
                                                                          float]:
    """Run N = ``sessions`` once (with ``populations``: the split of N, held sessions
    included, in the simulator's blocks); returns (records, interrupted, measured horizon
    s)."""
    blocks = session_blocks(profile, sessions) if profile.populations else ()
    total = sum(n for _, n in blocks) if blocks else sessions
    dcfg = DriverConfig(
        target=normalise_target(cfg.target, cfg.provider), provider=cfg.provider,
        time_scale=cfg.time_scale, warmup_s=cfg.warmup_s, duration_s=cfg.duration_s,
        seed=cfg.seed, drain_s=(cfg.drain_s if cfg.drain_s is not None
                                else default_drain_s(profile, cfg.duration_s)),
        deployments=cfg.deployments, log_calls=cfg.log is not None, label=f"N{sessions}",
        route=cfg.route, populations=blocks)
    agent = (cfg.agent_url, cfg.agent_template) if cfg.agent_url else None
    ids = list(range(total))
    if cfg.processes <= 1:
        driver = make_driver(profile, dcfg, ids, None, agent, cfg.client)
        epoch = driver.origin_epoch
        interrupted = False
        try:
            asyncio.run(driver.run())
        except KeyboardInterrupt:
            interrupted = True
        rec = driver.rec
    else:
        epoch = time.time()
        rec, interrupted = _measure_sharded(profile, dcfg, ids, cfg.processes, agent,
                                            cfg.client)
    horizon = cfg.duration_s
    if interrupted:
        horizon = max(0.0, min(cfg.duration_s, (time.time() - epoch) * cfg.time_scale
                               - cfg.warmup_s))
    return rec, interrupted, horizon


def _measure_sharded(profile: Profile, dcfg: DriverConfig, ids: list[int], processes: int,
                     agent: tuple[str, str | None] | None, client: str
                     ) -> tuple[Recorder, bool]:
    import multiprocessing as mp

    # Sessions k ≡ i (mod P) in process i; all share model time 0 (one wall-clock epoch,
    # a little ahead so every process is up before it).
    shards = [ids[i::processes] for i in range(processes) if ids[i::processes]]
    # The official SDKs take seconds to import in a fresh process: start later with them.
    epoch = time.time() + (1.0 if client == "raw" else 6.0)
    rec = Recorder()
    interrupted = False
    errors: list[str] = []
    with ProcessPoolExecutor(len(shards), mp_context=mp.get_context("spawn")) as pool:
        futs = [pool.submit(_shard, profile, dcfg, s, epoch, agent, client) for s in shards]
        for f in futs:
            while True:
                try:
                    wire, intr, err = f.result()
                    break
                except KeyboardInterrupt:
                    # The workers got the same SIGINT and return their partial records.
                    interrupted = True
            rec.merge(wire)
            interrupted |= intr
            if err:
                errors.append(err)
    if errors:
        from .protocol import TargetError

        raise TargetError(errors[0])
    return rec, interrupted


def steady_start(profile: Profile, sessions: int, seed: int) -> dict[str, float]:
    """Units missing from each token bucket when the simulator starts a replication of
    ``sessions`` sessions (its steady-state start; 0 for buckets the load leaves full),
    by slot key (:func:`capacity.sim.engine.bucket_start`). With ``populations``,
    ``sessions`` is N (the varying sessions): the split applies, held sessions included.

    One draw of the simulator's own rule, seeded by (seed, N): a measurement is one run,
    compared with the spread of single replications.
    """
    from ..sim.engine import bucket_start

    u = float(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(sessions, 1)))
              .random())
    return bucket_start(profile, sessions, u)


def window_phase(seed: int, sessions: int) -> float:
    """The provider's clock at t = 0 (fixed windows' phase, seconds) for N = ``sessions``:
    one draw of the simulator's rule (:func:`capacity.sim.engine.clock_offset`), seeded by
    (seed, N) as :func:`steady_start` — the same seed measures the same phase."""
    from ..sim.engine import clock_offset

    return clock_offset(float(np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(sessions, 2))).random()))


def reset_target(target: str, deficit: dict[str, float], timeout_s: float = 10.0,
                 time_scale: float | None = None, clock_offset_s: float = 0.0) -> str | None:
    """``POST /admin/reset`` to the target before an N: ``capacity serve`` then starts from
    a fresh quota state with its token buckets at the simulator's steady-state start
    (``deficit``) and its clock at 0 with fixed windows at phase ``clock_offset_s``, so
    no N inherits the previous one's state and both sides start alike.

    Returns a note when the target has no such endpoint (not ``capacity serve``: its state
    is what it is); raises :class:`TargetError` when it cannot be reached, or when it
    reports a time scale other than ``time_scale`` (every latency, window and retry-after
    would be read K-fold wrong: a silently wrong measurement).
    """
    import aiohttp

    from .protocol import TargetError

    async def post() -> tuple[int, bytes]:
        to = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=to) as http, http.post(
                target + "/admin/reset", json={"bucket_deficit": deficit,
                                               "clock_offset_s": clock_offset_s}) as resp:
            return resp.status, await resp.read()

    try:
        status, body = asyncio.run(post())
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise TargetError(f"cannot reach the target {target}: {e}") from None
    if status == 200:
        _check_time_scale(body, time_scale)
        return None
    if status == 400:
        raise TargetError(f"the target refused the quota reset: {_refusal(body)}")
    return (f"the target has no POST /admin/reset (HTTP {status}): its quota state was not "
            "reset between N values")


def _refusal(body: bytes) -> str:
    """A reset's 400 as words: its error message (not the raw bytes), and what a token-
    bucket slot the target does not know means — it serves another profile."""
    try:
        err = json.loads(body).get("error") or {}
        message = str(err.get("message") or "").strip()
    except (ValueError, AttributeError, UnicodeDecodeError):
        message = ""
    if not message:
        return body[:200].decode("utf-8", "replace")
    if "is not a token-bucket slot of the profile" in message:
        message += ("; the target serves another profile than this load test's: start "
                    "`capacity serve` with the same profile")
    return message


def _check_time_scale(body: bytes, time_scale: float | None) -> None:
    """Refuse a target whose reset answer names another ``time_scale`` (capacity serve's
    ``--time-scale``); a target that names none is taken as it is."""
    if time_scale is None:
        return
    try:
        theirs = json.loads(body).get("time_scale")
    except (ValueError, AttributeError):
        return
    if isinstance(theirs, bool) or not isinstance(theirs, int | float):
        return
    _same_scale(float(theirs), time_scale)


def _same_scale(theirs: float, mine: float) -> None:
    """Refuse a target that runs at time scale ``theirs`` when this run uses ``mine``
    (the reset answer's and the ``/metrics`` check's one comparison)."""
    from .protocol import TargetError

    if not math.isclose(theirs, mine, rel_tol=1e-9):
        raise TargetError(f"--time-scale {mine:g}, but the target runs at --time-scale "
                          f"{theirs:g}: give both the same K (every latency, window "
                          "and retry-after would be read K-fold wrong)")


_MOCK_LAG = "capacity_mock_event_loop_lag_seconds{quantile=\"0.99\"}"
_MOCK_TIME_SCALE = "capacity_mock_time_scale "


def _metric(target: str, prefix: str, timeout_s: float = 10.0) -> float | None:
    """The value on the first line of the target's ``GET /metrics`` that starts with
    ``prefix``; ``None`` when the target is unreachable, answers other than 200, or has
    no such line (or an unreadable value): it is not ``capacity serve``."""
    import aiohttp

    async def get() -> tuple[int, str]:
        to = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=to) as http, http.get(
                target + "/metrics") as resp:
            return resp.status, await resp.text()

    try:
        status, text = asyncio.run(get())
    except (aiohttp.ClientError, OSError, TimeoutError, UnicodeDecodeError):
        return None
    if status != 200:
        return None
    for line in text.splitlines():
        if line.startswith(prefix):
            try:
                return float(line.split()[-1])
            except ValueError:
                return None
    return None


def check_target_time_scale(target: str, time_scale: float, timeout_s: float = 10.0
                            ) -> None:
    """Refuse a target whose ``/metrics`` names another time scale (``capacity serve``'s
    ``capacity_mock_time_scale``); the check for runs that skip the reset, whose answer
    carries it too. A target without that metric (or unreachable: the run itself says
    so) is taken as it is."""
    theirs = _metric(target, _MOCK_TIME_SCALE, timeout_s)
    if theirs is not None:
        _same_scale(theirs, time_scale)


def target_lag_s(target: str, timeout_s: float = 10.0) -> float | None:
    """The target's own p99 event-loop lag since its last reset (wall seconds), read from
    ``capacity serve``'s ``/metrics``; ``None`` for a target that does not report it.

    The load generator's lag guard covers its own loop only; a mock starved of CPU admits
    requests late and in bunches, which makes windows look fuller than they are (seen on a
    busy 2-core machine: web-research measured 2.6% 429s at N=40 against 0.41% predicted,
    and 0% when the same run was repeated on an idle machine).
    """
    return _metric(target, _MOCK_LAG, timeout_s)


# The retry rule of the pinned SDKs (llm-api-protocols.md, "what the package registry
# serves now"): openai 3.57 waits a retry-after of at most 120 s and does not retry after a
# longer one; anthropic 2.14 waits any positive one (30 days: the longest duration a
# profile takes). Both back off 0.5 s · 2^k, at most 8 s, less up to 25 % jitter.
SDK_RETRY: dict[str, dict[str, Any]] = {
    "openai": {"max_retry_after": 120.0, "beyond_max_retry_after": "give_up"},
    "anthropic": {"max_retry_after": 30 * 86400.0, "beyond_max_retry_after": "backoff"},
}
_SDK_BACKOFF = {"honour_retry_after": True, "initial_delay": 0.5, "max_delay": 8.0,
                "jitter": 0.25}


def predicted_profile(profile: Profile, client: str) -> Profile:
    """The profile the prediction simulates: with ``--client openai|anthropic`` the SDK
    retries by its own rule, not the profile's (``max_retries`` is the profile's: the
    load generator hands it to the SDK)."""
    if client not in SDK_RETRY:
        return profile
    from ..model.workload import cached_per_profile

    # One copy per (profile, client): the simulator's compiled workload is cached by the
    # profile's identity, and predict() asks at every N of the grid.
    def sdk(p: Profile) -> Profile:
        retry = p.retry.model_copy(update={**_SDK_BACKOFF, **SDK_RETRY[client]})
        return p.model_copy(update={"retry": retry})

    return cached_per_profile(_PREDICTED.setdefault(client, {}), profile, sdk)


_PREDICTED: dict[str, dict[int, tuple[Profile, Profile]]] = {}


def predict(profile: Profile, sessions: int, cfg: LoadtestConfig) -> Any:
    """The simulator at the same N, horizon, warm-up and seed; raises CapacityError
    (the caller's note) when that simulation is beyond ``capacity ceiling``'s budget."""
    from ..analytic.model import cycle_time
    from ..model.workload import Workload
    from ..sim.engine import simulate
    from ..whatif.ceiling import SimSettings, nodes_per_session, simulation_budget

    # The budget ceiling applies (--replications 1e9 ran the simulator for hours after the
    # measurement). A measured window may be shorter than a cycle here: the budget's
    # horizon is at least one, which only its too-short check reads.
    wl = Workload.from_profile(profile)
    cycle_s = cycle_time(wl).cycle_s
    skip = simulation_budget(cycle_s, wl.calls_per_turn(), sessions, SimSettings(
        seed=cfg.seed, replications=cfg.replications,
        horizon_s=max(cfg.duration_s, cycle_s)), 1, nodes_per_session(profile))
    if skip is not None:
        raise CapacityError(skip)
    return simulate(predicted_profile(profile, cfg.client), sessions,
                    horizon_s=cfg.duration_s, warmup_s=cfg.warmup_s,
                    replications=cfg.replications, seed=cfg.seed, workers=1)


def predict_ceiling(profile: Profile, cfg: LoadtestConfig) -> Any:
    """``capacity ceiling``'s simulated N* with its CI, same horizon, warm-up and seed."""
    from ..analytic.model import cycle_time
    from ..model.workload import Workload
    from ..whatif.ceiling import SimSettings
    from ..whatif.ceiling import ceiling as solve

    cycle_s = cycle_time(Workload.from_profile(profile)).cycle_s
    if cfg.duration_s < cycle_s:  # ceiling's own words name its --horizon, not ours
        raise CapacityError(f"--duration {cfg.duration_s:g}s is shorter than one session "
                            f"cycle ({cycle_s:.0f}s): the simulation would measure nothing")

    res = solve(predicted_profile(profile, cfg.client), "simulate", sim=SimSettings(
        seed=cfg.seed, replications=cfg.replications, horizon_s=cfg.duration_s,
        warmup_s=cfg.warmup_s), settle=False)   # the run measures its own horizon, as this
    return res.simulated


def targets_of(profile: Profile) -> dict[str, float | None]:
    return {"max_429_fraction": profile.targets.max_429_fraction,
            "p95_turn_latency": profile.targets.p95_turn_latency}


def judge(point: LoadPoint, targets: dict[str, float | None]) -> LoadPoint:
    """Set ``meets``/``violates`` from the measured figures; ``meets`` None (no data)
    when nothing was measured — no attempt in the measured interval (a too-short
    ``--duration``) is no evidence of a miss."""
    if point.counts.get("attempts", 0) <= 0:
        return replace(point, meets=None, violates=())
    bad = []
    f429 = point.measured.get("attempt_429_fraction", math.nan)
    if not (math.isfinite(f429) and f429 <= (targets["max_429_fraction"] or 0.0)):
        bad.append("max_429_fraction")
    p95 = targets.get("p95_turn_latency")
    if p95 is not None:
        x = point.measured.get("turn_latency_p95_s", math.nan)
        if not (math.isfinite(x) and x <= p95):
            bad.append("p95_turn_latency")
    return replace(point, meets=not bad, violates=tuple(bad))


def run_loadtest(profile: Profile, cfg: LoadtestConfig, grid: list[int], *,
                 predicted: bool = True, ceiling: bool = True,
                 on_point: Callable[[LoadPoint], None] | None = None,
                 check_lag: bool = True) -> LoadtestResult:
    """Measure every N of ``grid`` (increasing), each beside its prediction.

    Raises :class:`LagError` when the event loop lagged beyond :func:`lag_limit_s` (the
    points measured before are in the exception's ``result``), and
    :class:`~capacity.loadgen.protocol.TargetError` for an unreachable or garbage target.
    A Ctrl-C ends the grid early: the result is flagged ``interrupted`` and holds the
    partial point.
    """
    if profile.populations and cfg.engine == "locust":
        raise CapacityError("--engine locust does not run session populations (its users "
                            "are of one kind); use the builtin engine")
    limit = lag_limit_s(profile, cfg.time_scale)
    targets = targets_of(profile)
    result = LoadtestResult(
        profile=profile.title, target=cfg.target, provider=cfg.provider, engine=cfg.engine,
        client=cfg.client, time_scale=cfg.time_scale, warmup_s=cfg.warmup_s,
        duration_s=cfg.duration_s, seed=cfg.seed, replications=cfg.replications,
        lag_limit_s=limit, lag_fraction=LAG_FRACTION, targets=targets,
        agent_url=cfg.agent_url, populations=describe(profile),
        held={k: p.sessions for k, p in profile.populations.items()
              if p.sessions is not None})
    if cfg.client in SDK_RETRY and predicted:
        r = predicted_profile(profile, cfg.client).retry
        result.notes.append(
            f"predicted with the {cfg.client} SDK's retry rule, not the profile's: a "
            f"retry-after up to {r.max_retry_after:g}s is waited, a longer one "
            + ("ends the call's retries" if r.beyond_max_retry_after == "give_up"
               else "backs off") + f"; backoff {r.initial_delay:g}s·2^k up to "
            f"{r.max_delay:g}s")
    if not cfg.reset:  # the reset's answer is not there to name the target's time scale
        check_target_time_scale(normalise_target(cfg.target, cfg.provider), cfg.time_scale)
    log = None
    if cfg.log is not None:
        from ..fit.jsonl import RequestLogWriter

        try:
            log = RequestLogWriter(cfg.log)
        except OSError as e:
            raise CapacityError(f"--log {cfg.log}: cannot write: {e.strerror or e}") from None
    from ..fit.jsonl import RequestLogWriteError

    try:
        try:
            _grid(profile, cfg, grid, result, limit, targets, predicted, on_point, check_lag,
                  log)
        finally:
            if log is not None:
                log.close()
    except RequestLogWriteError as e:  # a full disk: one line naming the option
        raise CapacityError(f"--log {e}") from None
    result.measured_ceiling = measured_ceiling(result.points, targets)
    if ceiling and predicted and not result.interrupted:
        try:
            result.predicted_ceiling = predict_ceiling(profile, cfg)
        except CapacityError as e:
            result.notes.append(f"predicted ceiling not computed: {e}")
    return result


def write_log(log: Any, rec: Recorder, sessions: int, time_scale: float) -> None:
    """The calls of one N into the request log; session ids ``N<n>-s<k>`` keep the
    sessions of different N apart. Times are wall clock: at K ≠ 1 every line records
    ``time_scale`` K, which ``capacity fit`` multiplies them by."""
    scale = {} if time_scale == 1.0 else {"time_scale": time_scale}
    for line in sorted(rec.calls, key=lambda c: c["start"]):
        log.write_call(**{**line, "session": f"N{sessions}-s{line['session']}", **scale})


def _grid(profile: Profile, cfg: LoadtestConfig, grid: list[int], result: LoadtestResult,
          limit: float, targets: dict[str, float | None], predicted: bool,
          on_point: Callable[[LoadPoint], None] | None, check_lag: bool, log: Any) -> None:
    for n in sorted(set(grid)):
        if cfg.reset:
            try:
                deficit = steady_start(profile, n, cfg.seed)
            except CapacityError as e:  # a simulator that cannot compile this profile
                deficit = {}
                why = f"token buckets start full (no steady-state start): {e}"
                if why not in result.notes:
                    result.notes.append(why)
            note = reset_target(normalise_target(cfg.target, cfg.provider), deficit,
                                time_scale=cfg.time_scale,
                                clock_offset_s=window_phase(cfg.seed, n))
            if note is not None and note not in result.notes:
                result.notes.append(note)
        if cfg.engine == "locust":
            from .locust import run_locust

            rec, interrupted, horizon = run_locust(profile, cfg, n)
        else:
            rec, interrupted, horizon = measure(profile, cfg, n)
        if log is not None:
            write_log(log, rec, n, cfg.time_scale)
        t0 = cfg.warmup_s
        metrics, counts, lag = summarise(rec, t0, t0 + max(horizon, 1e-9))
        deployments = summarise_routing(rec, t0, t0 + max(horizon, 1e-9))
        if cfg.agent_url:
            from .agent import agent_deployments, agent_metrics

            agent_metrics(metrics, rec.llm, max(horizon, 1e-9), counts["turns"])
            counts["attempts"] = int(rec.llm.get("ok", 0) + rec.llm.get("rejected", 0))
            deployments = agent_deployments(rec.llm)
            if deployments:
                counts["spills"] = sum(d["spilled"] for d in deployments.values())
                counts["fallbacks"] = int(rec.llm.get("gw_fallbacks", 0))
        point = LoadPoint(n, metrics, counts, lag, horizon, interrupted=interrupted,
                          shard_turns=list(rec.shard_turns), deployments=deployments,
                          populations=summarise_populations(
                              rec, t0, t0 + max(horizon, 1e-9),
                              session_blocks(profile, n) if profile.populations else ()))
        point = judge(point, targets)
        if predicted and not interrupted:
            try:
                point.predicted = predict(profile, n, cfg)
            except CapacityError as e:  # a profile the simulator cannot run: say so
                why = f"no prediction beside the measurement: {e}"
                if why not in result.notes:
                    result.notes.append(why)
        result.points.append(point)
        if interrupted:
            result.interrupted = True
            break
        if check_lag and math.isfinite(lag.p99_s) and lag.p99_s > limit:
            err = LagError(
                f"event-loop lag too high at N={n}: p99 {lag.p99_s * 1e3:.1f} ms > "
                f"{LAG_FRACTION:g} × smallest enforcement window "
                f"{smallest_window_s(profile):g}s ÷ K={cfg.time_scale:g} = "
                f"{limit * 1e3:.1f} ms; the measurement would be wrong — lower "
                f"--time-scale or --sessions, or add --processes")
            err.result = result  # type: ignore[attr-defined]
            raise err
        mock_lag = (target_lag_s(normalise_target(cfg.target, cfg.provider))
                    if check_lag and not interrupted else None)
        if mock_lag is not None and mock_lag > limit:
            err = LagError(
                f"the target's own event loop lagged at N={n}: p99 {mock_lag * 1e3:.1f} ms > "
                f"{LAG_FRACTION:g} × smallest enforcement window "
                f"{smallest_window_s(profile):g}s ÷ K={cfg.time_scale:g} = "
                f"{limit * 1e3:.1f} ms; the mock admitted at the wrong instants and the "
                f"measurement would be wrong — give it a quieter machine or a lower "
                f"--time-scale")
            err.result = result  # type: ignore[attr-defined]
            raise err
        if on_point is not None:
            on_point(point)
