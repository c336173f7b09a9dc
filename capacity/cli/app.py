"""Command line: parse → load → compute → render. Results on stdout, the rest on stderr.

Options are declared once in :mod:`capacity.cli.common`; each command body is parse →
load → compute → render. Other command modules register here with one import + one line.
"""

from __future__ import annotations

import copy
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from capacity._version import __version__
from capacity.cli.common import (
    CsvOpt,
    FormatOpt,
    HelpCommand,
    HorizonOpt,
    JsonOpt,
    Method,
    MethodOpt,
    OutputOpt,
    ProfilesArg,
    QuietOpt,
    ReplicationsOpt,
    ReportFormatOpt,
    SeedOpt,
    SetOpt,
    StdoutError,
    VerboseOpt,
    _fail,
    _load,
    _run,
    begin_invocation,
    check_output,
    console,
    degrade_streams,
    emit,
    err_console,
    guard_stdout,
    output_format,
    sim_settings,
    simulating,
    to_stdout,
    write_text,
)
from capacity.cli.entry import drop_stdout
from capacity.cli.fit import fit_command
from capacity.cli.loadtest import loadtest as loadtest_command
from capacity.cli.sensitivity import sensitivity_command
from capacity.cli.serve import serve_command

# Each command imports its computation and renderer inside its body: --help, validate and
# schema load no numpy (tests/test_startup.py), `ceiling --method analytic` no simulator.

__all__ = ["_fail", "_load", "_run", "app", "console", "err_console", "main"]

app = typer.Typer(
    name="capacity",
    help="How many concurrent LLM-agent sessions can your provider quota really carry?\n\n"
         "Start with `capacity profiles`, then `capacity ceiling web-research`.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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
    begin_invocation()


def _html_report(profile_args: list[Path], overrides: list[str] | None, result: object,
                 sim: object) -> str:
    from capacity.cli.report import build_report

    return build_report(profile_args, overrides, ceiling_result=result, sim=sim)


@app.command(cls=HelpCommand, short_help="Saturation point and what binds first.",
             epilog="Example: capacity ceiling web-research --seed 1")
def ceiling(
    profiles: ProfilesArg,
    sessions: Annotated[int | None, typer.Option(
        "--sessions", min=1, metavar="N",
        help="Also evaluate 429 fraction and utilisation at N.")] = None,
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
    fmt: ReportFormatOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Saturation point: mean-value, burst-aware and simulated ceilings, and what binds. Both models hold targets.max_429_fraction to the share of call attempts (retries included) answered 429. A simulated N* is measured again two hours on; where its 429 share drifts past the target, N* is searched again there and that is the saturation point."""  # noqa: E501
    from capacity.render.report import ceiling_renderable
    from capacity.whatif.ceiling import ceiling as solve_ceiling

    how = output_format(fmt, as_json, output=output, html=True)
    check_output(output, how)
    profile = _load(profiles, overrides)
    sim = sim_settings(replications, horizon, seed)
    result = simulating(lambda progress: solve_ceiling(
        profile, method.value, sim=sim, sessions=sessions, progress=progress).resolved(),
        quiet=quiet or method == Method.analytic)
    emit(result, how, output, ceiling_renderable, verbose=verbose,
         html=lambda: _html_report(profiles, overrides, result, sim))


@app.command(name="explain", cls=HelpCommand,
             short_help="Calls, tokens, latency and spend per turn.",
             epilog="Example: capacity explain tool-agent")
def explain_cmd(profiles: ProfilesArg, overrides: SetOpt = None, fmt: FormatOpt = None,
                as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Derived figures: calls, tokens and latency per turn, cycle time, per-session spend."""
    from capacity.render.report import explain_renderable
    from capacity.whatif.explain import explain

    how = output_format(fmt, as_json, output=output)
    check_output(output, how)
    profile = _load(profiles, overrides)
    emit(_run(lambda: explain(profile)), how, output, explain_renderable)


@app.command(cls=HelpCommand, short_help="Check profiles: one line per file.",
             epilog="Example: capacity validate profiles/*.yaml; "
                    "capacity validate --merge base.yaml overlay.yaml")
def validate(
    profiles: ProfilesArg,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Validate the files as one stack (a base, then overlays merged "
                        "over it) instead of each on its own.")] = False,
    overrides: SetOpt = None,
) -> None:
    """Check each profile on its own (or, with --merge, the stack); exit 0 if all are
    valid, 2 if any is not, with one line naming file, line and key."""
    from capacity.cli.profiles import validate_files

    raise typer.Exit(validate_files(profiles, merge, overrides))


@app.command(cls=HelpCommand, short_help="JSON Schema of the profile format.",
             epilog="Example: capacity schema -o capacity.schema.json")
def schema(
    overlay: Annotated[bool, typer.Option(
        "--overlay", help="The overlay variant: every key optional.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the schema (JSON) to FILE instead of stdout.",
        show_default=False, metavar="FILE", dir_okay=False)] = None,
) -> None:
    """Print the JSON Schema of the profile format (for editors and validators)."""
    import json

    from capacity.profile.jsonschema import profile_json_schema

    check_output(output)
    # As render.report.to_json writes results (ASCII, 2-space indent), without importing
    # the renderers, which load the analytic model and numpy.
    text = json.dumps(profile_json_schema(overlay=overlay), indent=2, allow_nan=False,
                      ensure_ascii=True) + "\n"
    write_text(output, text)


def _fraction(text: str | float) -> float:
    """A share given as a fraction (0.05) or a percentage (5%)."""
    if isinstance(text, int | float):  # the option's default: typer parses it too
        return float(text)
    t = text.strip()
    try:
        x = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a fraction (0.05) or a percentage "
                                 "(5%)") from None
    if not 0.0 < x < 1.0:  # said as typed (150% is not echoed as 1.5)
        raise typer.BadParameter(f"{text!r} must be a share between 0 and 1 (0%–100%), "
                                 "both excluded")
    return x


@app.command(name="size", cls=HelpCommand, short_help="Quota needed for N sessions.",
             epilog="Example: capacity size web-research --sessions 500 --seed 3")
def size_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[int, typer.Option("--sessions", min=1, metavar="N",
                                          help="Sessions the quota must carry.")],
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    max_spill: Annotated[float, typer.Option(
        "--max-spill", metavar="FRACTION", parser=_fraction,
        help="Priority routes (PTU then pay-as-you-go): size the first deployment so that "
        "at --sessions at most this share (0.05 or 5%) of the route's calls spill to the next one "
        "(turned away by its windows or bucket and sent on at once; analytic overflow "
        "model). The deployments after it are sized for the overflow of its current "
        "limit.")] = 0.05,
) -> None:
    """Smallest quota per dimension that carries --sessions at the profile's targets.

    With routes, each deployment's need: its share of the calls (weighted, round robin,
    ...), and for a priority route the first deployment's limit before spillover
    (--max-spill)."""
    from capacity.render.report import size_renderable
    from capacity.whatif.ceiling import size as size_quota

    how = output_format(fmt, as_json, output=output)
    check_output(output, how)
    profile = _load(profiles, overrides)
    sim = sim_settings(replications, horizon, seed)
    result = simulating(lambda progress: size_quota(
        profile, sessions, method=method.value, sim=sim, progress=progress,
        max_spill=max_spill),
        quiet=quiet or method == Method.analytic)
    emit(result, how, output, size_renderable)


class CheckMethod(StrEnum):
    """Which ceiling a check compares against."""

    mean = "mean"
    analytic = "analytic"
    simulate = "simulate"


@app.command(name="check", cls=HelpCommand, short_help="CI gate: exit 1 below --sessions.",
             epilog="Example: capacity check web-research --sessions 40")
def check_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[int, typer.Option("--sessions", min=1, metavar="N",
                                          help="Required sessions (launch target).")],
    method: Annotated[CheckMethod, typer.Option(
        metavar="mean|analytic|simulate",
        help="Ceiling to compare: mean (napkin), analytic (burst-aware) or simulate.",
        case_sensitive=False)] = (
        CheckMethod.analytic),
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """CI gate: exit 0 if the ceiling is at least --sessions, exit 1 otherwise."""
    from capacity.render.report import check_text
    from capacity.whatif.ceiling import ceiling as solve_ceiling
    from capacity.whatif.ceiling import check as check_ceiling

    how = output_format(fmt, as_json, output=output)
    check_output(output, how)
    profile = _load(profiles, overrides)
    sim = sim_settings(replications, horizon, seed)
    kind = "simulate" if method == CheckMethod.simulate else "analytic"
    solved = simulating(lambda progress: solve_ceiling(profile, kind, sim=sim,
                                                        progress=progress),
                        quiet=quiet or kind == "analytic")
    result = _run(lambda: check_ceiling(solved, sessions, method.value))
    # The ceiling's notes go to stderr, keeping stdout one line (or the JSON, which has
    # them too): where the model is optimistic, a gate that passes must say so; and when a
    # simulation was skipped, check() compares the burst-aware figure and the note says why.
    for note in result.notes:
        err_console.print(f"note: {note}", soft_wrap=True, highlight=False, markup=False)
    emit(result, how, output, check_text)
    raise typer.Exit(0 if result.passed else 1)


def _scenario(text: str) -> tuple[str, list[str]]:
    """``NAME:k=v,k=v`` → (NAME, [k=v, ...]); commas inside [..] or {..} stay in a value.
    Each k=v is named ``--scenario NAME:k=v`` in the errors it meets."""
    from capacity.profile.loader import Override

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
    keys = [kv.partition("=")[0].strip() for kv in parts if kv.strip()]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        # The last one won without a word: say which was meant.
        raise _fail(f"--scenario {name}: {', '.join(twice)} given twice; give each key once")
    return name, [Override(kv.strip(), f"--scenario {name}:") for kv in parts if kv.strip()]


ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", help="NAME:key=value,... a named variant of the baseline (repeatable).",
    show_default=False, metavar="NAME:KEY=VALUE,...")]


def variants_of(bases: list[Path], others: list[Path] | None, scenarios: list[str] | None,
                overrides: list[str] | None) -> list[tuple[str, Any]]:
    """The baseline (``bases`` merged in order, named after the first), each overlay
    merged over it, and each named --scenario; refused if two share a name."""
    sets = overrides or []
    variants: list[tuple[str, Any]] = [(bases[0].stem, _load(bases, sets))]
    for other in others or []:
        variants.append((other.stem, _load([*bases, other], sets)))
    for text in scenarios or []:
        name, kvs = _scenario(text)
        variants.append((name, _load(bases, [*sets, *kvs])))
    return distinct_names(variants)


def distinct_names(variants: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``variants``, refused when two share a name: their rows, JSON records and CSV lines
    could not be told apart (``--scenario x:… --scenario x:…`` gave two rows 'x')."""
    names = [name for name, _ in variants]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _fail(f"two variants are named {name!r}: give each --scenario its own "
                        "NAME (an overlay is named by its file name)")
    return variants


@app.command(name="compare", cls=HelpCommand,
             short_help="Ceilings of what-if variants side by side.",
             epilog="Example: capacity compare web-research second-deployment "
                    "--scenario 'bucket:quotas.deployment.enforcement={type: token_bucket}'")
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="Baseline profile (file or shipped name).",
                                         show_default=False, metavar="BASE")],
    others: Annotated[list[Path] | None, typer.Argument(
        help="What-if overlays, each merged over the baseline.", show_default=False,
        metavar="OVERLAY")] = None,
    scenarios: ScenarioOpt = None,
    method: MethodOpt = Method.analytic,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Ceilings side by side: baseline, overlays and --set scenarios, with the change."""
    from capacity.render.report import compare_renderable
    from capacity.whatif.ceiling import compare as compare_variants

    how = output_format(fmt, as_json, output=output)
    check_output(output, how)
    variants = variants_of([base], others, scenarios, overrides)
    sim = sim_settings(replications, horizon, seed)
    result = simulating(lambda progress: compare_variants(
        variants, method=method.value, sim=sim, progress=progress),
        quiet=quiet or method == Method.analytic)
    emit(result, how, output, compare_renderable)


@app.command(name="sweep", cls=HelpCommand, short_help="The saturation curve: one row per N.",
             epilog="Example: capacity sweep web-research --sessions 20:100:20 "
                    "--plot curve.svg")
def sweep_cmd(
    profiles: ProfilesArg,
    sessions: Annotated[str, typer.Option(
        "--sessions", metavar="START:STOP[:STEP]|N,N,...",
        help="Grid of N: start:stop[:step] (inclusive) or a list 10,20,50.")],
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png|svg|pdf",
        help="Also draw the saturation curve to FILE (format from its extension; needs "
             "matplotlib).", show_default=False)] = None,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    output: OutputOpt = None,
) -> None:
    """One row per N: 429 fraction, failed calls, p95 turn latency, goodput, utilisation."""
    from capacity.render.plot import check_plot_path, plot_sweep
    from capacity.render.report import sweep_renderable
    from capacity.whatif.sweep import parse_sessions
    from capacity.whatif.sweep import sweep as run_sweep

    how = output_format(fmt, as_json, as_csv, output=output)
    check_output(output, how)
    profile = _load(profiles, overrides)
    grid = _run(lambda: parse_sessions(sessions))
    if plot is not None:
        _run(lambda: check_plot_path(plot))  # refuse before a long sweep, not after it
    sim = sim_settings(replications, horizon, seed)
    result = simulating(lambda progress: run_sweep(
        profile, grid, method=method.value, seed=sim.seed, replications=sim.replications,
        horizon_s=sim.horizon_s, progress=progress),
        quiet=quiet or method == Method.analytic, total=len(grid) * sim.replications)
    if plot is not None:
        _run(lambda: plot_sweep(result, plot))
        if not quiet:
            err_console.print(f"wrote {plot}", markup=False)
    emit(result, how, output, sweep_renderable)


# The report's file names: an HTML page, named so (or with no extension at all).
_HTML_NAMES = frozenset({"", ".html", ".htm"})


@app.command(name="report", cls=HelpCommand, short_help="One self-contained HTML page to share.",
             epilog="Example: capacity report web-research -o report.html")
def report_cmd(
    profiles: ProfilesArg,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the page.", metavar="FILE",
        dir_okay=False)] = Path("report.html"),
    sessions: Annotated[str | None, typer.Option(
        "--sessions", metavar="START:STOP[:STEP]|N,N,...",
        help="Grid of the saturation curve (default: around the ceiling).",
        show_default=False)] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        "--compare", metavar="OVERLAY", show_default=False,
        help="A what-if overlay to compare against (repeatable).")] = None,
    scenarios: ScenarioOpt = None,
    method: MethodOpt = Method.both,
    replications: ReplicationsOpt = 20,
    horizon: HorizonOpt = "1h",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
) -> None:
    """Ceilings, saturation curve, what-if comparison, inputs and the command that
    reproduces it, in one HTML page readable offline."""
    from capacity.cli.report import build_report

    if output.suffix.lower() not in _HTML_NAMES:
        # The page is HTML whatever the name says: report.pdf was an HTML file that no
        # PDF viewer opens, written without a word.
        raise _fail(f"--output {output}: the report is an HTML page, not "
                    f"{output.suffix.lower()[1:].upper()}: name it .html (a browser prints "
                    "it to PDF)")
    check_output(output)
    sim = sim_settings(replications, horizon, seed)
    page = build_report(profiles, overrides, sessions=sessions, compare=compare,
                        scenarios=scenarios, method=method.value, sim=sim, quiet=quiet)
    write_text(output, page)
    if not quiet and not to_stdout(output):
        err_console.print(f"wrote {output}", markup=False)


@app.command(name="profiles", cls=HelpCommand, short_help="List the shipped profiles and overlays.",
             epilog="Example: capacity profiles")
def profiles_cmd(fmt: FormatOpt = None, as_json: JsonOpt = False) -> None:
    """The profiles and what-if overlays shipped with the package, one line each; any
    command takes their names where a path is expected."""
    from capacity.cli.profiles import list_shipped

    list_shipped(output_format(fmt, as_json))


@app.command(name="init", cls=HelpCommand, short_help="Copy a shipped profile to edit.",
             epilog="Example: capacity init web-research my-agent.yaml")
def init_cmd(
    name: Annotated[str, typer.Argument(help="A shipped profile or overlay (see "
                                             "`capacity profiles`).", metavar="NAME",
                                        show_default=False)],
    path: Annotated[Path | None, typer.Argument(
        help="Where to write it (default: ./NAME.yaml; a directory: DIR/NAME.yaml).",
        metavar="[PATH]", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented copy of a shipped profile to edit (PATH - : to stdout)."""
    from capacity.profile.shipped import copy_to, overlay_base, text_of

    if path is not None and str(path) == "-":  # as - reads stdin elsewhere; not a file "-"
        sys.stdout.write(_run(lambda: text_of(name)))
        return
    target = _run(lambda: copy_to(name, path or Path.cwd(), force=force))
    base = overlay_base(name)  # an overlay is merged over a profile, never run alone
    console.print(f"wrote {target}; try: capacity ceiling "
                  + (f"{base} " if base else "") + str(target), markup=False, soft_wrap=True)


# HelpCommand as for the others: their --help showed type tags (<list[Path]>, <str>).
app.command(name="serve", cls=HelpCommand,
            short_help="A quota-enforcing mock provider (HTTP).")(serve_command)
app.command(name="loadtest", cls=HelpCommand,
            short_help="Drive sessions against an endpoint.")(loadtest_command)
app.command(name="fit", cls=HelpCommand, short_help="Write a profile from traces.")(fit_command)
app.command(name="sensitivity", cls=HelpCommand)(sensitivity_command)


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` invokes: typer builds a click command for
    every registered command on each run (~20 ms of CPU for all of them, ~2 ms for one).
    The whole app for anything else — --help, a root option, an unknown name (its
    suggestions), shell completion."""
    import os

    if not argv or argv[0].startswith("-") or any(k.endswith("_COMPLETE") for k in os.environ):
        return app
    for info in app.registered_commands:
        callback = info.callback
        name = info.name or (typer.main.get_command_name(callback.__name__)
                             if callback is not None else None)
        if name == argv[0]:
            one = copy.copy(app)  # the same settings and root callback, one command
            one.registered_commands = [info]
            return one
    return app


def _argv_not_text(argv: list[str]) -> str | None:
    """The error line for an option value that is not UTF-8 text, or None.

    Python reads such bytes as lone surrogates, which fail later (a traceback where the
    value is first encoded, or a profile named ``caf\\udce9``). A file path may hold any
    bytes (the file system takes them back), so a positional argument or a ``Path``
    option's value is left to open as given.
    """
    import typing

    bad = [(i, a) for i, a in enumerate(argv) if not _is_text(a)]
    if not bad:
        return None
    cmd = typer.main.get_command(_app_for(argv))
    sub = getattr(cmd, "commands", {}).get(argv[0]) if argv else None
    info = next((c for c in app.registered_commands if c.callback is not None and
                 (c.name or typer.main.get_command_name(c.callback.__name__)) == argv[0]),
                None) if argv else None
    params = [*getattr(cmd, "params", []), *getattr(sub, "params", [])]
    hints = typing.get_type_hints(info.callback) if info and info.callback else {}
    for i, arg in bad:
        if arg.startswith("--") and "=" in arg:
            opt, value = arg.split("=", 1)
        elif i > 0 and argv[i - 1].startswith("-"):
            opt, value = argv[i - 1], arg
        else:
            continue  # positional: a file path, or a name that is looked up and refused
        param = next((p for p in params if opt in (*p.opts, *p.secondary_opts)), None)
        if param is None or param.is_flag or param.count:
            continue
        hint = hints.get(param.name or "")
        if hint is not None and "Path" in {getattr(t, "__name__", "") for t in
                                           _type_parts(hint)}:
            continue
        # An undecodable byte b was read as the lone surrogate U+DC00 + b.
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        ch = next(ch for ch in value if not _is_text(ch))
        byte = f" (byte 0x{ord(ch) - 0xDC00:02x})" if 0xDC80 <= ord(ch) <= 0xDCFF else ""
        return f"{opt}: '{shown}' is not UTF-8 text{byte}; give the value in UTF-8"
    return None


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_parts(hint: object) -> list[object]:
    """``hint`` and the types inside it (Annotated, Optional, unions, lists)."""
    import typing

    out, todo = [], [hint]
    while todo:
        t = todo.pop()
        out.append(t)
        todo.extend(a for a in typing.get_args(t) if not isinstance(a, typer.models.ParameterInfo))
    return out


def main() -> None:
    """Console-script entry point (exit 3 with a traceback marks a bug, not bad input).

    Usage errors (a bad option value, a missing argument) are printed as one ``error:``
    line with exit 2, like profile errors, instead of the multi-line usage block. Standard
    output that cannot be written (``> /dev/full``) is one line too, exit 2; a reader that
    went away (``| head``) ends the command quietly (exit 141, as SIGPIPE would).
    """
    import errno

    guard_stdout()
    try:
        try:
            _main()
            code: int | str | None = 0
        except SystemExit as e:
            code = e.code
        sys.stdout.flush()  # what is buffered fails here, not in Python's exit
    except StdoutError as e:
        drop_stdout()
        if e.error.errno == errno.EPIPE:
            sys.exit(141)
        raise SystemExit(_fail(f"standard output: cannot write: "
                               f"{e.error.strerror or e.error}").exit_code) from None
    sys.exit(code)


def _main() -> None:
    """:func:`main` less standard output's failures."""
    # Typer's public BadParameter derives from the usage-error class in every supported
    # version (click's before typer 0.26, typer's vendored copy after).
    usage_error: type[Exception] = typer.BadParameter.__mro__[1]
    degrade_streams()
    try:
        not_text = _argv_not_text(sys.argv[1:])
        if not_text is not None:
            raise _fail(not_text)
        code = _app_for(sys.argv[1:])(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()  # type: ignore[attr-defined]
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        sub = ctx.info_name if ctx is not None and ctx.parent is not None else ""
        hint = f" (try 'capacity {sub} --help')" if sub else " (try 'capacity --help')"
        message = e.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
        raise SystemExit(_fail(message + hint).exit_code) from None
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except StdoutError:
        raise  # main's
    except Exception:  # the last line of defence: report it, never hide it
        import traceback

        traceback.print_exc()
        err_console.print("[bold red]internal error:[/] this is a bug in capacity; please "
                          "report the traceback above")
        sys.exit(3)

if __name__ == "__main__":  # pragma: no cover
    main()
