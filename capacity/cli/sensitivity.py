"""``capacity sensitivity PROFILE``: which knob moves the ceiling most (and a tornado chart)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from capacity.cli.common import (
    FormatOpt,
    HorizonOpt,
    JsonOpt,
    OutputOpt,
    ProfilesArg,
    QuietOpt,
    ReplicationsOpt,
    SeedOpt,
    SetOpt,
    VerboseOpt,
    _run,
    _stdin_as_file,
    check_output,
    emit,
    err_console,
    output_format,
    resolve_paths,
    sim_settings,
    write_text,
)

if TYPE_CHECKING:
    from capacity.profile.schema import Profile


class SensitivityMethod(StrEnum):
    """Which ceiling each variant gets."""

    analytic = "analytic"
    simulate = "simulate"


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of variants done on stderr (terminals only)."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("evaluating variants"), BarColumn(), MofNCompleteColumn(),
                  console=err_console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as bar:
        task = bar.add_task("variants", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def sensitivity_command(
    profiles: ProfilesArg,
    vary: Annotated[list[str] | None, typer.Option(
        "--vary", metavar="KEY=±P%",
        help="Change how far a parameter moves (default ±20% each): KEY=±10%, KEY=+20% "
             "(up only), KEY=±1 or ±2s (absolute), KEY=off; KEY is a --set key path and "
             "may use wildcards (*.max_tokens). Repeatable.", show_default=False)] = None,
    method: Annotated[SensitivityMethod, typer.Option(
        "--method", metavar="analytic|simulate",
        help="analytic: burst-aware ceilings (fast); simulate: simulated N* of the top "
             "parameters, one seed for every variant.", case_sensitive=False)] = (
        SensitivityMethod.analytic),
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png|svg|pdf",
        help="Also draw the tornado chart to FILE (format from its extension; needs "
             "matplotlib).", show_default=False)] = None,
    top: Annotated[int, typer.Option(
        "--top", min=1, metavar="K",
        help="With --method simulate: simulate the analytic ranking's top K parameters "
             "(and every --vary key).")] = 6,
    replications: ReplicationsOpt = 10,
    horizon: HorizonOpt = "30m",
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Which knob moves the ceiling most.

    Ranks the parameters by how many sessions a ±20% change moves the ceiling: quota
    limits, enforcement windows, fan-out, calls per turn, tokens, max_tokens, think time
    or cadence, latency, retries. Every variant is a --set override, validated like your
    input. Example: capacity sensitivity web-research --plot tornado.svg
    """
    from capacity.profile.loader import load_profile
    from capacity.render.plot import check_plot_path
    from capacity.render.sensitivity import sensitivity_csv, sensitivity_renderable
    from capacity.render.tornado import plot_tornado
    from capacity.whatif.sensitivity import SensitivityResult, sensitivity

    how = output_format(fmt, as_json, output=output)
    check_output(output, how)
    if plot is not None:
        _run(lambda: check_plot_path(plot))  # refuse before the work, not after it
    sim = (sim_settings(replications, horizon, seed)
           if method == SensitivityMethod.simulate else None)
    sets = list(overrides or ())

    def go() -> SensitivityResult:
        with _stdin_as_file(resolve_paths(profiles)) as files, _progress(quiet) as progress:
            def load(extra: Sequence[str]) -> Profile:
                return load_profile(files, [*sets, *extra])

            return sensitivity(load, vary=vary or (), method=method.value, sim=sim,
                               top=top, progress=progress)

    result = _run(go)
    if plot is not None:
        _run(lambda: plot_tornado(result, plot))
        if not quiet:
            err_console.print(f"wrote {plot}", markup=False)
    if how != "csv":
        emit(result, how, output, sensitivity_renderable, verbose=verbose)
        return
    write_text(output, sensitivity_csv(result))
