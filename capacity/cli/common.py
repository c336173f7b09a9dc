"""What every command shares: consoles, the one-line error edge, profile loading (paths,
shipped names, ``-`` for stdin), options declared once, and output (table, JSON, CSV,
HTML; stdout or ``-o FILE``)."""

from __future__ import annotations

import codecs
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from capacity.errors import CapacityError, ParameterError, ProfileError
from capacity.render.format import ascii_fallback, safe, use_ascii

if TYPE_CHECKING:  # the profile models load with the first profile (--help needs none)
    from capacity.profile.schema import Profile

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")

# Bytes read from standard input for a profile ("-"): the loader's own file-size rule
# applies after this; this only stops an endless pipe from filling memory.
MAX_STDIN_BYTES = 16 * 1024 * 1024

codecs.register_error("capacity-ascii", ascii_fallback)


class StdoutError(Exception):
    """Standard output cannot be written (a full disk, a closed pipe): raised by the
    guarded stream :func:`guard_stdout` installs, so the edge can tell it from a bug."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


class _GuardedStdout:
    """``sys.stdout`` whose failed writes raise :class:`StdoutError` (all else forwarded)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as e:
            raise StdoutError(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise StdoutError(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Make a failed write to standard output a :class:`StdoutError`.

    Started with standard output closed (``>&-``, where Python's ``sys.stdout`` is None),
    the output goes to the null device, as a closed stream's would: the command still runs
    and exits with its own code (``check``'s exit 1 means below target, not a crash)."""
    if sys.stdout is None:
        import os

        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (process-long)
    if not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = _GuardedStdout(sys.stdout)


def degrade_streams() -> None:
    """On a terminal or pipe that cannot encode our glyphs (PYTHONIOENCODING=ascii, a
    latin-1 locale), print ASCII look-alikes instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        enc = getattr(stream, "encoding", None) or "utf-8"
        try:
            "━◀✗×–≤±".encode(enc)
        except (UnicodeEncodeError, LookupError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="capacity-ascii")
            if stream is sys.stdout:
                use_ascii(True)


# -- errors ------------------------------------------------------------------------------


def finite(lo: float, hi: float = float("inf")) -> Callable[[str | float], float]:
    """A parser for a float option that must be finite and in ``[lo, hi]``.

    Typer's own ``min``/``max`` compare NaN false and let ``inf`` through an open top, so
    ``--time-scale nan`` was refused as "should be less than or equal to 1000000" and
    ``--time-scale inf`` accepted where no maximum is set. Pass the same ``min``/``max``
    to ``typer.Option`` as well: they print the range in ``--help``.
    """
    def parse(text: str | float) -> float:
        if isinstance(text, int | float):  # the option's default: typer parses it too
            return float(text)
        try:
            x = float(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number") from None
        if not math.isfinite(x):
            raise typer.BadParameter(f"{text!r} is not a finite number")
        if not lo <= x <= hi:
            where = (f"from {_num(lo)} to {_num(hi)}" if math.isfinite(hi)
                     else f"at least {_num(lo)}")
            raise typer.BadParameter(f"{text!r} is out of range: must be {where}")
        return x

    return parse


def _num(x: float) -> str:
    """A bound as typed by a person: 1,000,000 rather than 1e+06."""
    return f"{int(x):,}" if x == int(x) and abs(x) < 1e15 else f"{x:g}"


def _fail(message: str) -> typer.Exit:
    """Print one ``error:`` line (user text shown literally, control characters escaped)
    on stderr; return the exit (code 2) for the caller to raise."""
    line = Text("error:", style="bold red")
    line.append(" " + safe(message))
    err_console.print(line, soft_wrap=True)
    return typer.Exit(2)


def _run(fn: Callable[[], T]) -> T:
    """Run a command body, turning user errors into one line on stderr and exit 2."""
    try:
        return fn()
    except ParameterError as e:  # the library names parameters; the user typed options
        raise _fail(e.as_option()) from None
    except CapacityError as e:
        raise _fail(str(e)) from None


# -- profiles -----------------------------------------------------------------------------


@contextmanager
def _stdin_as_file(paths: Sequence[Path | str]) -> Iterator[list[str | Path]]:
    """Replace ``-`` by a temporary file holding standard input (errors still say
    ``<stdin>``)."""
    import tempfile

    out: list[str | Path] = []
    tmp: Path | None = None
    with tempfile.TemporaryDirectory(prefix="capacity-stdin-") as d:
        for p in paths:
            if str(p) == "-":
                if tmp is None:
                    data = _INVOCATION.stdin
                    if data is None:
                        data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
                        _INVOCATION.stdin = data
                    if len(data) > MAX_STDIN_BYTES:
                        raise CapacityError(f"<stdin>: more than {MAX_STDIN_BYTES:,} bytes; "
                                            "a profile is far smaller")
                    tmp = Path(d) / "stdin.yaml"
                    tmp.write_bytes(data)
                out.append(tmp)
            else:
                out.append(p)
        try:
            yield out
        except ProfileError as e:
            if tmp is not None and e.source == str(tmp):
                raise ProfileError(e.rule, source="<stdin>", line=e.line,
                                   path=e.path) from None
            raise


def resolve_paths(paths: Sequence[Path | str]) -> list[str | Path]:
    """Each path as given when it exists (or is ``-``), else the shipped file of that name."""
    from capacity.profile.shipped import resolve

    return [resolve(p) for p in paths]


class _Invocation:
    """State of one command invocation (reset by the app's callback)."""

    output: Path | None = None  # the --output checked by check_output, if any
    # Standard input's bytes once read: compare and report load the base once per
    # variant, and a second read of "-" met an empty stream ("<stdin>: file is empty").
    stdin: bytes | None = None


_INVOCATION = _Invocation()


def begin_invocation() -> None:
    """Forget the previous invocation's state (in-process runs reuse this module)."""
    _INVOCATION.output = None
    _INVOCATION.stdin = None


def same_file(a: Path | str, b: Path | str) -> bool:
    """Whether two paths name one existing file."""
    try:
        return Path(a).exists() and Path(b).exists() and Path(a).samefile(Path(b))
    except (OSError, ValueError):
        return False


def _refuse_output_over_input(paths: Sequence[Path | str]) -> None:
    out = _INVOCATION.output
    for p in paths:
        if out is not None and str(p) != "-" and same_file(out, p):
            raise _fail(f"--output {out}: is the profile {p} this command reads; write the "
                        "result to another file")


def load(paths: Sequence[Path | str], overrides: Sequence[str] | None) -> Profile:
    """Load and validate a profile (a base and overlays), as a CLI error edge."""
    from capacity.profile.loader import load_profile

    _refuse_output_over_input(paths)

    def go() -> Profile:
        try:
            with _stdin_as_file(resolve_paths(paths)) as files:
                return load_profile(files, list(overrides or ()))
        except ProfileError as e:
            hint = _overlay_first_hint(paths, e)
            if hint and e.rule != "no such file":
                raise ProfileError(e.rule + hint, source=e.source, line=e.line,
                                   path=e.path) from None
            if e.rule != "no such file" or e.line is not None or "/" in e.source \
                    or "\\" in e.source:
                raise  # a path, not a name: "no such file" says it all
            raise ProfileError(f"no such file, nor a shipped profile{_shipped_hint(e.source)}",
                               source=e.source) from None

    return _run(go)


def _overlay_first_hint(paths: Sequence[Path | str], e: ProfileError) -> str:
    """When the first name is a shipped overlay (listed beside the profiles by
    ``capacity profiles``), why a profile built on it fails: say to put a profile first.
    A single file without ``models``, ``quotas`` or ``session`` may be an overlay too (one
    ``capacity init`` copied): ask."""
    from capacity.profile.shipped import find, resolve

    first = str(paths[0]) if paths else "-"
    found = find(first) if resolve(first) != first else None
    if found is None or found.kind != "overlay":
        if len(paths) == 1 and first != "-" and e.path in ("models", "quotas", "session") \
                and e.rule.startswith("required key is missing"):
            return f" (an overlay? name the profile it changes first: PROFILE {first})"
        return ""
    return (f" ({found.name!r} is a what-if overlay, not a profile: name a profile first, "
            f"e.g. web-research {found.name})")


def _shipped_hint(name: str) -> str:
    """``(did you mean 'web-research'?)`` for a near miss of a shipped name, else the list."""
    import difflib

    from capacity.profile.shipped import names

    shipped = names()
    close = difflib.get_close_matches(Path(name).name.removesuffix(".yaml"), shipped, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (shipped: {', '.join(shipped)}; see `capacity profiles`)" if shipped else ""


_load = load  # the name other command modules import


# -- options, declared once -----------------------------------------------------------------


class Format(StrEnum):
    """How a result is written."""

    table = "table"
    json = "json"
    csv = "csv"


class ReportFormat(StrEnum):
    """How a result is written (commands that can also write the HTML report)."""

    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


ProfilesArg = Annotated[
    list[Path],
    typer.Argument(help="Profile YAML file(s), a shipped profile's name, or - for stdin; "
                        "later files are merged over earlier ones.",
                   show_default=False, metavar="PROFILE"),
]
ProfileArg = Annotated[
    Path, typer.Argument(help="Profile YAML file, a shipped profile's name, or - for stdin.",
                         show_default=False, metavar="PROFILE")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a profile value: key.path=value (repeatable).",
                 show_default=False, metavar="KEY=VALUE"),
]
FormatOpt = Annotated[Format | None, typer.Option(
    "--format", "-f", help="Output format: table (default), json or csv.",
    show_default=False, metavar="table|json|csv", case_sensitive=False)]
ReportFormatOpt = Annotated[ReportFormat | None, typer.Option(
    "--format", "-f", help="Output format: table (default), json, csv or html (a "
    "self-contained report page).", show_default=False, metavar="table|json|csv|html",
    case_sensitive=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Same as --format csv.")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the result to FILE instead of stdout (FILE.json or "
    "FILE.csv: in that format when no --format is given).",
    show_default=False, metavar="FILE", dir_okay=False)]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Also say which method computed each figure.")]


class Method(StrEnum):
    """Which model computes the ceiling."""

    analytic = "analytic"
    simulate = "simulate"
    both = "both"


MethodOpt = Annotated[Method, typer.Option(
    "--method", help="analytic (fast), simulate (Monte Carlo N* with CI) or both.",
    metavar="analytic|simulate|both", case_sensitive=False)]
ReplicationsOpt = Annotated[int, typer.Option(
    "--replications", min=2, help="Independent simulation replications.", metavar="N")]
HorizonOpt = Annotated[str, typer.Option(
    "--horizon", help="Simulated time measured per replication (e.g. 1h, 30m).",
    metavar="DURATION")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", min=0, help="Seed of all randomness (default: fresh, printed).",
    show_default=False, metavar="INT")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]


# -o names whose extension names a format (written in it when no flag asks for one).
_FORMAT_OF_SUFFIX = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}


def output_format(fmt: str | None, as_json: bool, as_csv: bool = False,
                  output: Path | None = None, html: bool = False) -> str:
    """The one format asked for; conflicting flags are a usage error (exit 2). Asked for
    none, an ``output`` named .json or .csv (.html where ``html``: the command writes
    the report page) gets that format, as the name says; else the table."""
    asked = {f for f, on in ((fmt, fmt is not None), ("json", as_json), ("csv", as_csv)) if on}
    if len(asked) > 1:
        given = [f"--format {fmt}" if fmt else "", "--json" if as_json else "",
                 "--csv" if as_csv else ""]
        raise _fail(f"conflicting output formats: {' and '.join(g for g in given if g)}; "
                    "give one")
    if asked:
        return str(asked.pop())
    named = _FORMAT_OF_SUFFIX.get(output.suffix.lower()) if output is not None else None
    return named if named is not None and (named != "html" or html) else "table"


def to_stdout(output: Path | None) -> bool:
    """Whether the result goes to standard output: no ``-o``, or ``-o -`` (as ``-`` names
    standard input for a profile and standard output for ``init``)."""
    return output is None or str(output) == "-"


def check_output(output: Path | None, how: str | None = None) -> None:
    """Refuse an output path that cannot be written, before any long computation, and
    (``how``: the format asked for) a table sent to a file named for another format."""
    if output is None or to_stdout(output):
        return
    if output.is_dir():
        raise _fail(f"--output {output}: is a directory")
    if not output.parent.is_dir():
        raise _fail(f"--output {output}: cannot write: no directory {str(output.parent)!r}")
    wanted = _FORMAT_OF_SUFFIX.get(output.suffix.lower())
    if how is not None and wanted is not None and how != wanted:
        # Only where the name's format was not taken (another format asked for, or HTML
        # from a command that has none): the box-drawn table in result.json, or JSON in
        # result.csv, without a word.
        what = "a table" if how == "table" else how.upper()
        fix = (f"give --format {wanted} (or no format flag)" if wanted != "html" else
               "ceiling --format html and capacity report write HTML")
        name = {"table": ".txt", "json": ".json", "csv": ".csv", "html": ".html"}.get(how, "")
        raise _fail(f"--output {output}: the result would be {what}, not "
                    f"{wanted.upper()}: {fix}, or name the file {name}")
    _INVOCATION.output = output  # load() refuses it as an input: a result over the profile


# -- output ----------------------------------------------------------------------------------


def write_text(output: Path | None, text: str) -> None:
    """Write a finished result to stdout, or to ``output`` (checked by
    :func:`check_output` beforehand); a failed write is one line, exit 2."""
    if output is None or to_stdout(output):
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise _fail(f"--output {output}: cannot write: {e.strerror or e}") from None

_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def _natural_width(target: Console, table: Table) -> int:
    return Measurement.get(target, target.options.update(max_width=10_000), table).maximum


def print_renderable(target: Console, renderable: RenderableType) -> None:
    """Print a result: tables at their natural width when the terminal is narrower (a
    number is never cut to ``8.4e…``), text wrapped to the terminal, no trailing spaces."""
    parts = list(renderable.renderables) if isinstance(renderable, Group) else [renderable]
    chunks = []
    for part in parts:
        width = target.width
        if isinstance(part, Table) and part.box is not None:  # not a layout grid
            width = max(width, _natural_width(target, part))
        # Console.print never renders wider than the console: widen it for this table.
        saved = target.__dict__.get("_width")
        target.width = width
        try:
            with target.capture() as cap:
                target.print(part, crop=False)
        finally:
            target.__dict__["_width"] = saved
        chunks.append(cap.get())
    target.file.write(_TRAILING.sub(r"\1", "".join(chunks)))
    target.file.flush()


def emit(result: Any, fmt: str, output: Path | None,
         renderable: Callable[..., RenderableType], *, verbose: bool = False,
         html: Callable[[], str] | None = None) -> None:
    """Write ``result`` in ``fmt`` to stdout or ``output``."""
    from capacity.render.report import to_csv, to_json

    if fmt == "table":
        text = None
    elif fmt == "json":
        text = to_json(result) + "\n"
    elif fmt == "csv":
        text = to_csv(result)
    elif fmt == "html" and html is not None:
        text = html()
    else:  # pragma: no cover - the option types prevent it
        raise _fail(f"--format {fmt}: not available here")
    if output is None or to_stdout(output):
        if text is None:
            print_renderable(console, renderable(result, verbose))
        else:
            sys.stdout.write(text)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as fh:
            if text is None:
                file_console = Console(file=fh, width=max(80, console.width),
                                       highlight=False, color_system=None,
                                       force_terminal=False)
                print_renderable(file_console, renderable(result, verbose))
            else:
                fh.write(text)
    except OSError as e:
        raise _fail(f"--output {output}: cannot write: {e.strerror or e}") from None
    if not err_console.is_terminal:
        return
    err_console.print(Text(f"wrote {safe(output)}"))


# -- simulation settings and progress ---------------------------------------------------------


def sim_settings(replications: int, horizon: str, seed: int | None) -> Any:
    """Simulation settings from the shared options (a fresh seed when none is given)."""
    import numpy as np

    from capacity.model.dist import parse_duration
    from capacity.whatif.ceiling import SimSettings

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


def simulating(fn: Callable[[Callable[[int], None] | None], T], *, quiet: bool,
               total: int | None = None) -> T:
    """Run ``fn(progress)`` under a progress display (unless quiet), as a user error edge."""
    with progress_display("simulating", quiet, total) as progress:
        return _run(lambda: fn(progress))


@contextmanager
def progress_display(label: str, quiet: bool,
                     total: int | None = None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress display on stderr (a bar when the total is known, else a spinner
    with a count); yields the callback the core calls with replications done so far.
    """
    if quiet or not err_console.is_terminal:
        # Only a terminal gets the live display: piped stderr (CI logs, scripts) stays clean.
        yield None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [TextColumn("{task.completed:,} replications"), TimeElapsedColumn()]
    # No stdout redirection: results go to stdout untouched while the display runs.
    with Progress(*columns, console=err_console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done, description=label)


# -- help ----------------------------------------------------------------------------------

_TYPE_TAG = re.compile(r" <(?:list\[)?(?:Path|str|int|float|bool)\]?>")
_REQUIRED_ARG = re.compile(r"\{([A-Z][A-Z_.\[\]]*)\}")


class HelpCommand(TyperCommand):
    """A command whose --help shows metavars as written (``PROFILE...``), without the type
    tags (``<list[Path]>``) and braces some Typer versions add."""

    def get_help(self, ctx: Any) -> str:
        """The help text, tidied (alignment kept: tags become spaces)."""
        text = super().get_help(ctx)
        text = _TYPE_TAG.sub(lambda m: " " * len(m.group()), text)
        return _REQUIRED_ARG.sub(r"\1", text)
