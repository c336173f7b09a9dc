"""``capacity loadtest``: measure the ceiling for real and print it beside the prediction.

Exit codes: 0 a result; 2 bad input — profile, options, or a target that cannot be reached
or does not answer like an LLM endpoint (one ``error:`` line, no traceback); 1 the load
generator refused to report because its own event loop lagged (the run happened, but its
figures would be wrong — like ``check``'s 1, "ran, and the answer is no"); 130 Ctrl-C
(the partial results measured so far are printed first).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from capacity.cli.common import finite, print_renderable

__all__ = ["loadtest"]


# Sessions one run of the load generator drives at most (see the check below).
MAX_SESSIONS = 100_000
# Wall time one measurement (warm-up + duration, ÷ K) may take: a soak test of days is a
# plan, --duration 1e30s a typo that would run forever without a word.
MAX_WALL_S = 30 * 86400.0

class Provider(StrEnum):
    """Request dialect."""

    openai = "openai"
    azure = "azure"
    anthropic = "anthropic"


class Client(StrEnum):
    """HTTP client of the sessions."""

    raw = "raw"
    openai = "openai"
    anthropic = "anthropic"


class RouteMode(StrEnum):
    """Who routes a fleet profile's logical models."""

    client = "client"
    gateway = "gateway"


class Engine(StrEnum):
    """Where the sessions run."""

    builtin = "builtin"
    locust = "locust"


def loadtest(
    profiles: Annotated[list[Path], typer.Argument(
        metavar="PROFILE",
        help="Profile YAML file(s); later files are merged over earlier ones.",
        show_default=False)],
    target: Annotated[str, typer.Option(
        "--target", metavar="URL",
        help="Base URL of the OpenAI/Azure/Anthropic-compatible endpoint "
        "(e.g. http://127.0.0.1:8000 for capacity serve).", show_default=False)],
    sessions: Annotated[str, typer.Option(
        "--sessions", metavar="N|START:STOP[:STEP]|N,N,...",
        help="N, or a grid start:stop[:step] (inclusive) or 10,20,50.",
        show_default=False)],
    duration: Annotated[str, typer.Option(
        "--duration", metavar="DURATION",
        help="Measured interval per N, model time (e.g. 10m).")] = "10m",
    warmup: Annotated[str | None, typer.Option(
        "--warmup", metavar="DURATION",
        help="Discarded model time before it (default: two mean session "
        "cycles, the simulator's default).", show_default=False)] = None,
    time_scale: Annotated[float, typer.Option(
        "--time-scale", metavar="K", min=0.001, max=1_000_000.0,
        parser=finite(0.001, 1_000_000.0),
        help="K: run K× faster; must equal capacity serve's --time-scale.")] = 1.0,
    provider: Annotated[Provider | None, typer.Option(
        "--provider", metavar="openai|azure|anthropic", help="Request dialect (default: "
        "openai; anthropic with --client anthropic).", show_default=False,
        case_sensitive=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per N.")] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="INT", min=0, help="Seed of all randomness (default: fresh, printed).",
        show_default=False)] = None,
    client: Annotated[Client, typer.Option(
        "--client", metavar="raw|openai|anthropic",
        help="raw (lean aiohttp, default) or the official openai/anthropic SDK "
        "with its own retries (time scale 1 only).", case_sensitive=False)] = Client.raw,
    processes: Annotated[int, typer.Option(
        "--processes", metavar="P", min=1, help="Shard the sessions across P processes.")] = 1,
    agent_url: Annotated[str | None, typer.Option(
        "--agent-url", metavar="URL",
        help="Post each user turn to this agent service instead of calling "
        "the LLM; --target is then the LLM endpoint the agent uses (its /metrics are read).",
        show_default=False)] = None,
    agent_template: Annotated[str | None, typer.Option(
        "--agent-template", metavar="JSON", help='JSON body posted to --agent-url; "{session}", '
        '"{turn}" and "{message}" are filled in (default: '
        '{"session_id": "{session}", "message": "{message}"}).', show_default=False)] = None,
    engine: Annotated[Engine, typer.Option(
        "--engine", metavar="builtin|locust",
        help="builtin (asyncio) or locust (a local Locust master and "
        "--workers workers).", case_sensitive=False)] = Engine.builtin,
    workers: Annotated[int | None, typer.Option(
        "--workers", metavar="N", min=1, help="Locust workers (with --engine locust; "
        "default 2).", show_default=False)] = None,
    replications: Annotated[int | None, typer.Option(
        "--replications", metavar="N", min=2,
        help="Simulation replications for the prediction (default 20).",
        show_default=False)] = None,
    no_predict: Annotated[bool, typer.Option(
        "--no-predict", help="Measure only (no simulation beside it).")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a profile value: key.path=value (repeatable).",
        show_default=False)] = None,
    log: Annotated[Path | None, typer.Option(
        "--log", metavar="FILE.jsonl",
        help="Write every call as a JSONL request log (capacity fit reads it; "
        "wall-clock times, each line records K: fit multiplies them by it).",
        show_default=False)] = None,
    route: Annotated[RouteMode | None, typer.Option(
        "--route", metavar="client|gateway",
        help="Fleet profiles (routes): client = the load generator routes each "
        "call to a deployment as a LiteLLM-style router would (default with the builtin "
        "raw client); gateway = it sends the logical model name and the target routes "
        "(capacity serve acting as the gateway; the only mode of --engine locust, --client "
        "openai/anthropic and --agent-url).", show_default=False,
        case_sensitive=False)] = None,
    reset: Annotated[bool, typer.Option(
        "--reset/--no-reset", help="POST /admin/reset to the target before each N "
        "(capacity serve: fresh quota state, token buckets at the simulator's "
        "steady-state start; other targets: ignored).")] = True,
) -> None:
    """Drive closed-loop sessions shaped like the profile against an endpoint; measured
    metrics per N beside the simulator's, and the measured N* beside ceiling's."""
    from capacity.cli.app import _fail, _load, _run, console, err_console
    from capacity.errors import CapacityError
    from capacity.model.dist import parse_duration
    from capacity.whatif.sweep import parse_sessions

    profile = _load(profiles, overrides)
    grid = _run(lambda: parse_sessions(sessions))
    if max(grid) > MAX_SESSIONS:
        # Each session is a task holding its conversation history: past this one machine's
        # memory and sockets are the limit, not the quota.
        raise _fail(f"--sessions {sessions!r}: at most {MAX_SESSIONS:,} sessions in one "
                    "run; spread more over machines with --engine locust")
    try:
        duration_s = parse_duration(duration)
    except ValueError as e:
        raise _fail(f"--duration: {e}") from None
    try:
        warmup_s = None if warmup is None else parse_duration(warmup)
    except ValueError as e:
        raise _fail(f"--warmup: {e}") from None
    if not duration_s > 0:
        raise _fail(f"--duration must be positive, got {duration!r}")
    if warmup_s is not None and warmup_s < 0:
        raise _fail(f"--warmup must be ≥ 0, got {warmup!r}")
    for flag, text, secs in (("--duration", duration, duration_s),
                             ("--warmup", warmup, warmup_s)):
        if secs is not None and secs / time_scale > MAX_WALL_S:
            raise _fail(f"{flag} {text!r} at --time-scale {time_scale:g} is "
                        f"{secs / time_scale / 86400:,.3g} days of wall time per N; at most "
                        f"{MAX_WALL_S / 86400:g} days")
    if as_json and as_csv:
        raise _fail("give at most one of --json and --csv")
    if agent_template is not None and agent_url is None:
        # It was ignored: the sessions called the LLM endpoint directly.
        raise _fail("--agent-template is the body posted to --agent-url: give --agent-url "
                    "too")
    if client != Client.raw and time_scale != 1.0:
        raise _fail(f"--client {client.value} runs the SDK's own retries in wall time: it "
                    "needs --time-scale 1")
    if client == Client.anthropic and provider not in (None, Provider.anthropic):
        # It was replaced by anthropic without a word: the run spoke another dialect
        # than the one asked for.
        raise _fail(f"--client anthropic speaks the Anthropic API: drop --provider "
                    f"{provider.value} (or use --client openai)")
    if provider is None:
        provider = Provider.anthropic if client == Client.anthropic else Provider.openai
    if no_predict and replications is not None:
        # It was ignored: nothing is simulated beside a measurement alone.
        raise _fail("--replications sets the prediction's simulation and --no-predict "
                    "runs none: give one of them")
    if workers is not None and engine != Engine.locust:
        # It was ignored: the builtin engine runs in this process (--processes shards it).
        raise _fail("--workers counts Locust workers: give --engine locust too (the "
                    "builtin engine shards with --processes)")
    if client == Client.openai and provider == Provider.anthropic:
        raise _fail("--client openai speaks the OpenAI API: use --provider openai or azure "
                    "(or --client anthropic)")
    if processes > 1 and profile.pacing is not None:
        raise _fail("--processes > 1 would split the profile's fleet-wide client pacing "
                    "between processes; run it in one process")
    if engine == Engine.locust and (agent_url or client != Client.raw or processes > 1):
        raise _fail("--engine locust runs raw sessions only (no --agent-url, --client, "
                    "--processes: Locust's workers are its processes)")
    if log is not None and (agent_url or engine == Engine.locust):
        raise _fail("--log records the calls the sessions make themselves: with "
                    "--agent-url the agent makes them (use capacity serve --log), and "
                    "--engine locust does not write it")
    sdk_like = engine == Engine.locust or client != Client.raw or agent_url is not None
    if route == RouteMode.client and sdk_like:
        raise _fail("--route client: only the builtin engine's raw client routes calls "
                    "itself; --engine locust, --client openai/anthropic and --agent-url "
                    "send the logical model name (use --route gateway)")
    route_mode = route.value if route is not None else ("gateway" if sdk_like else "client")
    if profile.routes and route_mode == "client" and processes > 1:
        stateful = sorted({r.policy for r in profile.routes.values()
                           if r.policy in ("round_robin", "least_busy", "usage_based")})
        if stateful or profile.cooldown is not None:
            what = ", ".join(stateful) + (" and " if stateful and profile.cooldown
                                          else "") + ("cooldown" if profile.cooldown
                                                      else "")
            raise _fail(f"--processes > 1 with --route client would split the router's "
                        f"state ({what}) between processes; run one process or use "
                        "--route gateway")
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise _fail("capacity loadtest needs the 'loadtest' extra: "
                    "pip install 'llm-capacity[loadtest]'") from None
    if seed is None:
        import numpy as np

        seed = int(np.random.SeedSequence().entropy) % (2**53)  # type: ignore[arg-type]
    from capacity.loadgen import LagError, LoadtestConfig, run_loadtest
    from capacity.loadgen.protocol import check_url, normalise_target
    from capacity.loadgen.runner import default_warmup_s

    _run(lambda: normalise_target(target, provider.value))
    if agent_url is not None:
        _run(lambda: check_url(agent_url, "--agent-url"))
    cfg = LoadtestConfig(
        target=target, provider=provider.value,
        time_scale=time_scale, duration_s=duration_s,
        warmup_s=default_warmup_s(profile) if warmup_s is None else warmup_s, seed=seed,
        replications=20 if replications is None else replications, processes=processes,
        engine=engine.value,
        client=client.value, agent_url=agent_url,
        agent_template=agent_template, workers=2 if workers is None else workers, reset=reset,
        log=None if log is None else str(log),
        route="gateway" if route_mode == "gateway" else "client")
    err_console.print(
        f"loadtest {profile.title}: N = {', '.join(map(str, grid))}; "
        f"{cfg.warmup_s:g}s warm-up + {duration_s:g}s measured (model time) at K = "
        f"{time_scale:g} ≈ {(cfg.warmup_s + duration_s) / time_scale * len(grid):.0f}s wall "
        f"+ drain; seed {seed}", highlight=False, soft_wrap=True)

    def progress(point: Any) -> None:
        m = point.measured
        p95 = _f(m["turn_latency_p95_s"])  # "—", not "nans", when no turn was measured
        err_console.print(f"  N={point.sessions}: 429 {_pct(m['attempt_429_fraction'])}, "
                          f"p95 {p95}{'s' if p95 != '—' else ''}, "
                          f"{m['goodput_calls_per_min']:.1f} calls/min", highlight=False)

    try:
        result = run_loadtest(profile, cfg, grid, predicted=not no_predict,
                              on_point=progress)
    except LagError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except CapacityError as e:
        raise _fail(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, allow_nan=False,
                                    ensure_ascii=False) + "\n")
    elif as_csv:
        sys.stdout.write(to_csv(result))
    else:
        render(result, console)
    if result.interrupted:
        err_console.print("interrupted: partial results above")
        raise typer.Exit(130)


def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:.2f}%"


def _pct100(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def _f(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:,.{digits}f}"


def to_csv(result: Any) -> str:
    """One row per N: measured_<metric> and predicted_<metric> columns."""
    from capacity.loadgen.result import POPULATION_METRICS

    rows = []
    for p in result.points:
        row: dict[str, Any] = {"sessions": p.sessions, "interrupted": p.interrupted,
                               "meets": p.meets}
        for k, v in p.measured.items():
            row[f"measured_{k}"] = v
        for k, v in p.counts.items():
            row[f"measured_{k}"] = v
        row["measured_lag_p99_s"] = p.lag.p99_s
        for dep, c in p.deployments.items():
            for k, v in c.items():
                row[f"measured_deployment_{dep}_{k}"] = v
        for pop, c in p.populations.items():
            for k, v in c.items():
                row[f"measured_population_{pop}_{k}"] = v
        if p.predicted is not None:
            for k, e in p.predicted.metrics.items():
                row[f"predicted_{k}"] = e.mean
            for k, e in (getattr(p.predicted, "routing", None) or {}).items():
                row[f"predicted_{k}"] = e.mean
            for pop, use in (getattr(p.predicted, "populations", None) or {}).items():
                row[f"predicted_population_{pop}_sessions"] = use.sessions
                for k in POPULATION_METRICS:
                    row[f"predicted_population_{pop}_{k}"] = getattr(use, k).mean
        rows.append({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in row.items()})
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def render(result: Any, console: Console) -> None:
    """Measured vs predicted, one row per N, then the two ceilings."""
    t = Table(title=f"{result.profile}: measured / predicted (K = {result.time_scale:g}, "
              f"{result.duration_s:g}s measured per N, seed {result.seed})")
    for col in ("N", "attempts", "429 % m/p", "failed", "p50 s", "p95 s m/p",
                "calls/min m/p", "tokens/min", "in turn", "targets"):
        t.add_column(col, justify="right")
    for p in result.points:
        m = p.measured
        pr = p.predicted.metrics if p.predicted is not None else {}

        def pair(key: str, fmt: Any, m: Any = m, pr: Any = pr) -> str:
            e = pr.get(key)
            return f"{fmt(m[key])} / {'—' if e is None else fmt(e.mean)}"

        t.add_row(
            f"{p.sessions}{'*' if p.interrupted else ''}", f"{p.counts['attempts']:,}",
            pair("attempt_429_fraction", _pct100), f"{p.counts['calls_failed']:,}",
            _f(m["turn_latency_p50_s"]), pair("turn_latency_p95_s", _f),
            pair("goodput_calls_per_min", _f), _f(m["goodput_tokens_per_min"], 0),
            _f(m["sessions_in_turn_mean"]),
            "no data" if p.meets is None else "ok" if p.meets else "miss")
    print_renderable(console, t)  # never squeezed: the other commands' rule
    for p in result.points:
        if p.counts.get("open_turns", 0) > 0:
            n = p.counts["open_turns"]
            console.print(
                f"note: N={p.sessions}: {n:,} turn{'s' if n != 1 else ''} begun in the "
                f"measured interval had not ended when the run stopped; left out of the "
                f"latency figures (the longest turns: p95 reads low)", highlight=False)
    if any(p.deployments for p in result.points):
        render_deployments(result, console)
    if any(p.populations for p in result.points):
        render_populations(result, console)
    mc, pc = result.measured_ceiling, result.predicted_ceiling
    if mc is not None:
        if mc.capped:
            line = f"measured N* ≥ {mc.n_star} (every N of the grid meets the targets)"
        elif mc.n_star == 0:
            line = f"measured N* < {mc.bracket[1]} (the smallest N misses the targets)"
        else:
            line = (f"measured N* = {mc.n_star} (meets at {mc.bracket[0]}, misses at "
                    f"{mc.bracket[1]}; crossing ≈ {mc.n_star_interpolated:.1f})")
        if result.populations:
            line += f" — {result.populations}"
        console.print(line, highlight=False)
    if pc is not None:
        console.print(f"predicted N* = {pc.n_star} [{pc.n_lo}, {pc.n_hi}] (capacity ceiling, "
                      f"simulated with the same horizon, warm-up and seed)", highlight=False)
    lags = [p.lag.p99_s for p in result.points if math.isfinite(p.lag.p99_s)]
    if lags:
        console.print(f"event-loop lag p99 ≤ {max(lags) * 1e3:.1f} ms (limit "
                      f"{result.lag_limit_s * 1e3:.1f} ms)", highlight=False)
    for n in result.notes:
        console.print(f"note: {n}", highlight=False)


def render_populations(result: Any, console: Console) -> None:
    """Per population and N: sessions, turns per hour, share of the calls, p95 turn
    latency and 429 share of attempts, measured / predicted."""
    t = Table(title="per population (measured / predicted)")
    for col in ("N", "population", "sessions", "turns/h m/p", "call share m/p",
                "p95 s m/p", "429 % m/p"):
        t.add_column(col, justify="right")
    for p in result.points:
        pred = getattr(p.predicted, "populations", None) or {}
        for pop, m in p.populations.items():
            use = pred.get(pop)

            def pair(key: str, fmt: Any, m: Any = m, use: Any = use) -> str:
                return f"{fmt(m[key])} / {'—' if use is None else fmt(getattr(use, key).mean)}"

            t.add_row(str(p.sessions), escape(pop), f"{int(m['sessions']):,}",
                      pair("turns_per_hour", _f), pair("call_share", _pct100),
                      pair("turn_latency_p95_s", _f), pair("attempt_429_fraction", _pct100))
    print_renderable(console, t)  # never squeezed: the other commands' rule


def render_deployments(result: Any, console: Console) -> None:
    """Per deployment and N: attempts sent, admitted, 429s the client saw from it, 429s it
    spilled from at once, and of its 429s those followed by a fallback."""
    t = Table(title="per deployment (measured turns): a 429 the client saw is "
              "'rejected'; one the call spilled from at once is 'spilled'")
    for col in ("N", "deployment", "sent", "admitted", "rejected", "spilled", "fell back",
                "share admitted"):
        t.add_column(col, justify="right")
    for p in result.points:
        total = sum(c["admitted"] for c in p.deployments.values())
        for dep, c in p.deployments.items():
            share = c["admitted"] / total if total else math.nan
            t.add_row(str(p.sessions), escape(dep), f"{c['sent']:,}", f"{c['admitted']:,}",
                      f"{c['rejected']:,}", f"{c['spilled']:,}", f"{c['fell_back']:,}",
                      _pct(share))
    print_renderable(console, t)  # never squeezed: the other commands' rule
    for p in result.points:
        if "spill_fraction" not in p.measured:
            continue
        routing = getattr(p.predicted, "routing", None) or {}

        def both(key: str, p: Any = p, routing: Any = routing) -> str:
            e = routing.get(key)
            return _pct(p.measured[key]) + ("" if e is None else
                                            f" (predicted {_pct(e.mean)})")

        console.print(f"N={p.sessions}: {both('spill_fraction')} of the requests sent "
                      f"spilled at once; {both('fallback_fraction')} of the calls fell "
                      f"back ({p.counts.get('fallbacks', 0):,})", highlight=False)
