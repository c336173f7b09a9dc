"""``capacity serve PROFILE``: the quota-enforcing mock provider on a real socket."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capacity.cli.common import finite


class Provider(StrEnum):
    """Header dialect for paths that do not imply one."""

    openai = "openai"
    azure = "azure"
    anthropic = "anthropic"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(
    profiles: Annotated[list[Path], typer.Argument(
        metavar="PROFILE",
        help="Profile YAML file(s); later files are merged over earlier ones.",
        show_default=False)],
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a profile value: key.path=value (repeatable).",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(
        "--host", metavar="ADDRESS",
        help="Address to bind (default loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        "--port", metavar="PORT", min=0, max=65535, help="Port (0: a free one, printed).")] = 8000,
    time_scale: Annotated[float, typer.Option(
        "--time-scale", metavar="K", min=0.001, max=1_000_000.0,
        parser=finite(0.001, 1_000_000.0),
        help="Run K times faster: latencies, windows and retry-after divided by K.")] = 1.0,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="INT", min=0, help="Seed of all draws (default: fresh, printed).",
        show_default=False)] = None,
    provider: Annotated[Provider, typer.Option(
        "--provider", metavar="openai|azure|anthropic",
        help="Header dialect for /v1/chat/completions and /v1/responses.",
        case_sensitive=False)] = Provider.openai,
    tool_probability: Annotated[float, typer.Option(
        "--tool-probability", metavar="P", min=0.0, max=1.0, parser=finite(0.0, 1.0),
        help="Chance that a turn offered tools (tool_choice auto) answers with a call.")
    ] = 1.0,
    tool_calls: Annotated[int | None, typer.Option(
        "--tool-calls", metavar="N", min=1, max=64,
        help="Tool calls per tool-call answer when parallel calls are allowed (default: "
             "the profile's fan-out for the model, else 1).", show_default=False)] = None,
    log_file: Annotated[Path | None, typer.Option(
        "--log", metavar="FILE.jsonl",
        help="Write one JSONL request-log line per answered request (capacity "
        "fit reads it; sessions/turns from x-capacity-session/-turn, OpenAI 'user' or "
        "Anthropic metadata.user_id; wall-clock times, each line records K).",
        show_default=False)] = None,
) -> None:
    """Serve the profile's provider: OpenAI, Azure and Anthropic APIs with its quotas.

    A stateless, protocol-aware mock: a request whose last message is a tool result gets
    text; otherwise offered tools get a tool call with schema-valid arguments. Every
    request is admitted or refused (429 with retry-after and rate-limit headers) by the
    simulator's own limiter, with the profile's latency.
    """
    import asyncio  # here, not at the top: every other command would pay its ~15 ms

    from rich.markup import escape

    from capacity.cli.app import _fail, _load, err_console
    from capacity.render.format import safe

    try:
        from capacity.serve import MockServer, ServeOptions
    except ImportError as e:
        raise _fail(f"capacity serve needs the 'serve' extra ({e.name} is missing): "
                    "pip install 'llm-capacity[serve]'") from None
    profile = _load(profiles, overrides)
    writer = None
    if log_file is not None:
        from capacity.fit.jsonl import RequestLogWriter

        try:
            writer = RequestLogWriter(log_file)
        except OSError as e:
            raise _fail(f"--log {log_file}: cannot write: {e.strerror or e}") from None
    try:
        options = ServeOptions(time_scale=time_scale, seed=seed, provider=provider.value,
                               tool_probability=tool_probability, tool_calls=tool_calls,
                               log=writer)
    except ValueError as e:
        raise _fail(str(e)) from None
    server = MockServer(profile, options, host=host, port=port)

    async def run() -> None:
        stop = asyncio.Event()
        try:
            await server.start()
        except OSError as e:
            raise _fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # SIGTERM: stop like Ctrl-C
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            _banner(server, profile.title, host)
            await stop.wait()
        finally:
            await server.close()

    def _banner(srv: MockServer, title: str, host: str) -> None:
        out = sys.stdout
        k = srv.options.time_scale
        deployments = ", ".join(dict.fromkeys([*profile.deployments, *profile.models,
                                               *profile.quotas]))
        out.write(f"capacity serve: profile '{title}', seed {srv.options.seed}, "
                  f"time scale {k:g}x\n")
        out.write(f"listening on {srv.url}"
                  + (" (loopback only)\n" if _is_loopback(host) else "\n"))
        out.write(f"  OpenAI     base_url={srv.openai_base_url}\n")
        out.write(f"  Azure      azure_endpoint={srv.azure_endpoint}  "
                  f"(deployments: {deployments})\n")
        out.write(f"  Anthropic  base_url={srv.anthropic_base_url}\n")
        if srv.provider.router is not None:
            # A request naming a logical model finds the mock acting as the gateway.
            routes = ", ".join(f"{name} → {' | '.join(d.name for d in r.deployments)}"
                               for name, r in srv.provider.router.routes.items()
                               if name in profile.routes)
            out.write(f"  gateway    routes: {routes}\n")
        out.write(f"  metrics    {srv.url}/metrics   reset  POST {srv.url}/admin/reset\n")
        out.write("Ctrl-C to stop\n")
        out.flush()
        if not _is_loopback(host):
            # The address is the user's text: shown literally, never as markup.
            shown = escape(safe(host))
            err_console.print(f"[bold yellow]warning:[/] bound to {shown}, reachable from "
                              "other machines; the mock has no authentication",
                              soft_wrap=True)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.stdout.write("stopped\n")
        sys.stdout.flush()
        raise typer.Exit(130) from None
    finally:
        if writer is not None:
            from capacity.fit.jsonl import RequestLogWriteError

            # Line-buffered, it fails to close only after a line failed, which the server
            # said when it happened.
            with contextlib.suppress(RequestLogWriteError):
                writer.close()
    sys.stdout.write("stopped\n")
