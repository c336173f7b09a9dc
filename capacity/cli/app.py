"""Command line: parse → load → compute → render. Results on stdout, the rest on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from capacity._version import __version__
from capacity.cli.fit import fit_command
from capacity.cli.loadtest import loadtest as loadtest_command
from capacity.cli.serve import serve_command
from capacity.errors import CapacityError
from capacity.model.dist import parse_duration
from capacity.profile.loader import load_profile
from capacity.profile.schema import Profile
from capacity.render.report import (
    ceiling_renderable,
    check_text,
    compare_renderable,
    explain_renderable,
    size_renderable,
    sweep_renderable,
    to_csv,
    to_json,
)
from capacity.whatif.ceiling import SimSettings
from capacity.whatif.ceiling import ceiling as solve_ceiling
from capacity.whatif.ceiling import check as check_ceiling
from capacity.whatif.ceiling import compare as compare_variants
from capacity.whatif.ceiling import size as size_quota
from capacity.whatif.explain import explain
from capacity.whatif.sweep import parse_sessions, plot_sweep
from capacity.whatif.sweep import sweep as run_sweep

app = typer.Typer(
    name="capacity",
    help="How many concurrent LLM-agent sessions can your provider quota really carry?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")

# -- shared options ---------------------------------------------------------------------
ProfilesArg = Annotated[
    list[Path],
    typer.Argument(help="Profile YAML file(s); later files are merged over earlier ones.",
                   show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a profile value: key.path=value (repeatable).",
                 show_default=False),
]


class Method(StrEnum):
    """Which model computes the ceiling."""

    analytic = "analytic"
    simulate = "simulate"
    both = "both"


MethodOpt = Annotated[Method, typer.Option(
    "--method", help="analytic (fast), simulate (Monte Carlo N* with CI) or both.")]
ReplicationsOpt = Annotated[int, typer.Option(
    "--replications", min=2, help="Independent simulation replications.")]
HorizonOpt = Annotated[str, typer.Option(
    "--horizon", help="Simulated time measured per replication (e.g. 1h, 30m).")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", min=0, help="Seed of all randomness (default: fresh, printed).",
    show_default=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar on stderr.")]


def _sim_settings(replications: int, horizon: str, seed: int | None) -> SimSettings:
    try:
        horizon_s = parse_duration(horizon)
    except ValueError as e:
        raise _fail(f"--horizon: {e}") from None
    if seed is None:
        # A fresh seed, printed in the output so the run can be reproduced.
        # Below 2**53 so the seed survives JSON tools that read numbers as doubles (jq).
        seed = int(np.random.SeedSequence().entropy) % (2**53)  # type: ignore[arg-type]
    return _run(lambda: SimSettings(seed=seed, replications=replications,
                                    horizon_s=horizon_s))


def _simulating(fn: Callable[[Callable[[int], None] | None], T], *, quiet: bool,
                total: int | None = None) -> T:
    """Run ``fn(progress)`` under a progress display (unless quiet), as a user error edge."""
    with _progress("simulating", quiet, total) as progress:
        return _run(lambda: fn(progress))


@contextmanager
def _progress(label: str, quiet: bool,
              total: int | None = None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress display on stderr (a bar when the total is known, else a spinner
    with a count); yields the callback the core calls with replications done so far."""
    if quiet or not err_console.is_terminal:
        # Only a terminal gets the live display: piped stderr (CI logs, scripts) stays clean.
        yield None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [TextColumn("{task.completed:,} replications"), TimeElapsedColumn()]
    # No stdout redirection: results go to stdout untouched while the display runs.
    with Progress(*columns, console=err_console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


def _run(fn: Callable[[], T]) -> T:
    """Run a command body, turning user errors into one line on stderr and exit 2."""
    try:
        return fn()
    except CapacityError as e:
        raise _fail(str(e)) from None


def _load(paths: list[Path], overrides: list[str] | None) -> Profile:
    return _run(lambda: load_profile(paths, overrides or ()))


def _emit(result: Any, as_json: bool, renderable: Callable[[Any], Any]) -> None:
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
    else:
        console.print(renderable(result))


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"capacity {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """How many concurrent LLM-agent sessions can your provider quota really carry?"""


@app.command()
def ceiling(
    profiles: ProfilesArg,
    as_json: JsonOpt = False,
    overrides: SetOpt = None,
    sessions: Annotated[int | None, typer.Option(
        "--sessions", min=1, help="Also evaluate 429 fraction and utilisation at N.")] = None,
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Saturation point: mean-value, burst-aware and simulated ceilings, and what binds."""
    profile = _load(profiles, overrides)
    sim = _sim_settings(replications, horizon, seed)
    result = _simulating(lambda progress: solve_ceiling(
        profile, method.value, sim=sim, sessions=sessions, progress=progress),
        quiet=quiet or method == Method.analytic)
    _emit(result, as_json, ceiling_renderable)


@app.command(name="explain")
def explain_cmd(profiles: ProfilesArg, as_json: JsonOpt = False,
                overrides: SetOpt = None) -> None:
    """Derived figures: calls, tokens and latency per turn, cycle time, per-session spend."""
    profile = _load(profiles, overrides)
    _emit(_run(lambda: explain(profile)), as_json, explain_renderable)


@app.command()
def validate(profiles: ProfilesArg, overrides: SetOpt = None) -> None:
    """Check a profile; exit 0 if valid, 2 with one line naming file, line and key if not."""
    profile = _load(profiles, overrides)
    n_turns = len(profile.session.turns)
    n_q = len(profile.quotas)
    console.print(f"ok: {profile.title} ({n_turns} turn type{'s' * (n_turns != 1)}, "
                      f"{n_q} quota{'s' * (n_q != 1)})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the profile format (for editors)."""
    from capacity.profile.schema import Profile

    sys.stdout.write(json.dumps(Profile.model_json_schema(), indent=2) + "\n")


@app.command(name="size")
def size_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[int, typer.Option("--sessions", min=1,
                                          help="Sessions the quota must carry.")],
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    overrides: SetOpt = None,
) -> None:
    """Smallest quota per dimension that carries --sessions at the profile's targets."""
    profile = _load(profiles, overrides)
    sim = _sim_settings(replications, horizon, seed)
    result = _simulating(lambda progress: size_quota(
        profile, sessions, method=method.value, sim=sim, progress=progress),
        quiet=quiet or method == Method.analytic)
    _emit(result, as_json, size_renderable)


class CheckMethod(StrEnum):
    """Which ceiling a check compares against."""

    mean = "mean"
    analytic = "analytic"
    simulate = "simulate"


@app.command(name="check")
def check_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[int, typer.Option("--sessions", min=1,
                                          help="Required sessions (launch target).")],
    method: Annotated[CheckMethod, typer.Option(
        help="Ceiling to compare: mean (napkin), analytic (burst-aware) or simulate.")] = (
        CheckMethod.analytic),
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    overrides: SetOpt = None,
) -> None:
    """CI gate: exit 0 if the ceiling is at least --sessions, exit 1 otherwise."""
    profile = _load(profiles, overrides)
    sim = _sim_settings(replications, horizon, seed)
    how = "simulate" if method == CheckMethod.simulate else "analytic"
    solved = _simulating(lambda progress: solve_ceiling(profile, how, sim=sim,
                                                         progress=progress),
                         quiet=quiet or how == "analytic")
    result = _run(lambda: check_ceiling(solved, sessions, method.value))
    _emit(result, as_json, check_text)
    raise typer.Exit(0 if result.passed else 1)


def _scenario(text: str) -> tuple[str, list[str]]:
    """``NAME:k=v,k=v`` → (NAME, [k=v, ...]); commas inside [..] or {..} stay in a value."""
    name, sep, rest = text.partition(":")
    if not sep or not name or not rest:
        raise _fail(f"--scenario {text!r}: expected NAME:key=value[,key=value...]")
    parts, depth, cur = [], 0, ""
    for ch in rest:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return name, [kv.strip() for kv in parts if kv.strip()]


@app.command(name="compare")
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="Baseline profile.", show_default=False)],
    others: Annotated[list[Path] | None, typer.Argument(
        help="What-if overlays, each merged over the baseline.", show_default=False)] = None,
    scenarios: Annotated[list[str] | None, typer.Option(
        "--scenario", help="NAME:key=value,... a named variant of the baseline (repeatable).",
        show_default=False)] = None,
    method: MethodOpt = Method.analytic,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    overrides: SetOpt = None,
) -> None:
    """Ceilings side by side: baseline, overlays and --set scenarios, with the change."""
    sets = overrides or []
    variants = [(base.stem, _load([base], sets))]
    for other in others or []:
        variants.append((other.stem, _load([base, other], sets)))
    for text in scenarios or []:
        name, kvs = _scenario(text)
        variants.append((name, _load([base], [*sets, *kvs])))
    sim = _sim_settings(replications, horizon, seed)
    result = _simulating(lambda progress: compare_variants(
        variants, method=method.value, sim=sim, progress=progress),
        quiet=quiet or method == Method.analytic)
    _emit(result, as_json, compare_renderable)


@app.command(name="sweep")
def sweep_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[str, typer.Option(
        "--sessions", help="Grid of N: start:stop[:step] (inclusive) or a list 10,20,50.")],
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Write the saturation curve to this PNG (needs matplotlib).",
        show_default=False)] = None,
    overrides: SetOpt = None,
) -> None:
    """One row per N: 429 fraction, failed calls, p95 turn latency, goodput, utilisation."""
    profile = _load(profiles, overrides)
    grid = _run(lambda: parse_sessions(sessions))
    if plot is not None and not plot.parent.is_dir():
        # Refuse before a long sweep, not after it.
        raise _fail(f"--plot {plot}: cannot write: no directory {str(plot.parent)!r}")
    sim = _sim_settings(replications, horizon, seed)
    result = _simulating(lambda progress: run_sweep(
        profile, grid, method=method.value, seed=sim.seed, replications=sim.replications,
        horizon_s=sim.horizon_s, progress=progress),
        quiet=quiet or method == Method.analytic, total=len(grid) * sim.replications)
    if plot is not None:
        _run(lambda: plot_sweep(result, str(plot)))
        if not quiet:
            err_console.print(f"wrote {plot}")
    if as_csv:
        sys.stdout.write(to_csv(result))
    else:
        _emit(result, as_json, sweep_renderable)


app.command(name="serve")(serve_command)
app.command(name="loadtest")(loadtest_command)
app.command(name="fit")(fit_command)


def main() -> None:
    """Console-script entry point (exit 3 with a traceback marks a bug, not bad input).

    Usage errors (a bad option value, a missing argument) are printed as one ``error:``
    line with exit 2, like profile errors, instead of the multi-line usage block.
    """
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except NoArgsIsHelpError as e:
        e.show()
        sys.exit(2)
    except UsageError as e:
        sub = e.ctx.info_name if e.ctx is not None and e.ctx.parent is not None else ""
        hint = f" (try 'capacity {sub} --help')" if sub else " (try 'capacity --help')"
        message = e.format_message().replace("Value error, ", "")
        err_console.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}",
                          soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except Exception:  # the last line of defence: report it, never hide it
        import traceback

        traceback.print_exc()
        err_console.print("[bold red]internal error:[/] this is a bug in capacity; please "
                          "report the traceback above")
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    main()
