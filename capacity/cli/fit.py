"""``capacity fit TRACES...``: a commented profile from OTLP JSON spans or JSONL request logs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capacity.cli.common import finite


class TraceFormat(StrEnum):
    """Trace file format."""

    auto = "auto"
    otlp_json = "otlp-json"
    jsonl = "jsonl"


class Pacing(StrEnum):
    """How sessions pace their turns."""

    auto = "auto"
    think_time = "think_time"
    cadence = "cadence"


def fit_command(
    traces: Annotated[list[str], typer.Argument(  # str: typer makes ./- a Path "-"
        metavar="TRACE",
        help="Trace files: OTLP JSON (GenAI spans; JSON Lines or one document) or JSONL "
             "request logs; '-' reads standard input.", show_default=False)],
    fmt: Annotated[TraceFormat, typer.Option(
        "--format", metavar="auto|otlp-json|jsonl",
        help="File format (auto: by content).", case_sensitive=False)] = TraceFormat.auto,
    quota_from: Annotated[Path | None, typer.Option(
        "--quota-from", metavar="PROFILE",
        help="Copy quotas (and retry, pacing, targets) from this profile; "
        "default: a marked placeholder quota.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write the profile here (default: stdout).",
        show_default=False)] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="FILE.png|svg|pdf",
        help="Draw fitted vs observed distributions into this image (.png, .svg "
        "or .pdf; needs matplotlib).", show_default=False)] = None,
    pacing: Annotated[Pacing, typer.Option(
        "--pacing", metavar="auto|think_time|cadence",
        help="think_time (closed loop) or cadence; auto: the one independent of "
        "turn latency.", case_sensitive=False)] = Pacing.auto,
    time_scale: Annotated[float | None, typer.Option(
        "--time-scale", metavar="K", min=1e-9, max=1_000_000.0,
        parser=finite(1e-9, 1_000_000.0),
        help="Multiply every duration by K (traces recorded against 'capacity serve "
        "--time-scale K'; default 1). A JSONL log that records its K (loadtest or serve "
        "--log at K ≠ 1) is multiplied by that K; one given must equal it.",
        show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", metavar="NAME",
        help="Profile name (default: the output file's stem, else 'fitted').",
        show_default=False)] = None,
) -> None:
    """Write a profile from traces: turn structure, token, latency and pacing distributions.

    Calls are grouped into turns (JSONL 'turn', or the OTLP trace), stages by time
    overlap (a fan-out), repeated calls into loops; distributions are fitted by AIC with
    a KS distance each. The header says what it was fitted from and which fits are weak.
    """
    from capacity.cli.app import _fail, _load, _run, err_console
    from capacity.render.plot import plot_format

    if report is not None:
        # The image format follows the name: a PNG written to report.txt was a silent
        # surprise.
        _run(lambda: plot_format(report, "--report"))
    if report is not None and not report.parent.exists():
        raise _fail(f"--report: directory {report.parent} does not exist")
    from capacity.cli.common import check_output, resolve_paths, same_file, to_stdout, write_text

    if to_stdout(output):
        output = None               # `-o -`: standard output, as without -o
    check_output(output)

    for flag, target in (("--output", output), ("--report", report)):
        for trace in traces:
            if target is not None and same_file(target, trace):  # it would replace them
                raise _fail(f"{flag} {target}: is the trace file {trace} this command reads; "
                            "write to another file")
    from capacity.fit.fitter import PacingMode, fit_read, scale_times
    from capacity.fit.readers import read_traces
    from capacity.fit.writer import fleet_refit, render_profile

    # A shipped profile's name is taken where a path is, as by every PROFILE argument.
    ref = _load([quota_from], None) if quota_from is not None else None
    ref_path = Path(resolve_paths([quota_from])[0]) if quota_from is not None else None

    def run() -> str:
        read = read_traces(traces, fmt.value)
        scale_times(read, time_scale)
        mode: PacingMode | None = (None if pacing is Pacing.auto
                                   else "cadence" if pacing is Pacing.cadence
                                   else "think_time")
        # Against a fleet, the summary and report describe the refit the profile gets.
        res = fleet_refit(fit_read(read, mode), ref)
        # A file name need not be text: its undecodable bytes become U+FFFD in the
        # profile's name (a lone surrogate written into YAML cannot be read back).
        nm = name or (output.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                      if output is not None else "fitted")
        text = render_profile(res, name=nm, quota_from=ref_path)
        if report is not None:
            try:
                from capacity.fit.report import draw_report
                draw_report(res, report, title=nm)
            except ImportError as e:
                raise _fail(f"--report needs matplotlib ({e.name} is missing): "
                            "pip install 'llm-capacity[plot]'") from None
        weak = res.weak_fits()
        err_console.print(
            f"fitted {res.sessions:,} sessions, {res.turns:,} turns, {res.calls:,} calls: "
            f"{len(res.types)} turn type(s), {res.pacing.mode.replace('_', ' ')}; "
            f"{len(weak)} weak fit(s)" + (f"; {sum(read.skipped.values()):,} span(s) skipped"
                                          if read.skipped else "")
            + (f"; profile -> {output}" if output else "")
            + (f"; report -> {report}" if report else ""), soft_wrap=True, highlight=False)
        return text

    write_text(output, _run(run))
