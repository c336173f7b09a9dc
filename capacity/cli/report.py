"""``capacity report`` (and ``ceiling --format html``): compute what the page shows."""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

from capacity.cli.common import _fail, _load, _run, resolve_paths, simulating
from capacity.model.dist import format_duration

# Points of the default saturation-curve grid.
GRID_POINTS = 12


def default_grid(ceiling: Any) -> list[int]:
    """About a dozen N from a quarter of the ceiling to past the napkin's figure."""
    top = ceiling.mean_ceiling if math.isfinite(ceiling.mean_ceiling) else 0
    hi = max(int(1.5 * max(top, ceiling.saturation_point, 1)), 4)
    lo = max(1, ceiling.saturation_point // 4)
    step = max(1, math.ceil((hi - lo) / (GRID_POINTS - 1)))
    grid = list(range(lo, hi + 1, step))
    if ceiling.saturation_point > 0 and ceiling.saturation_point not in grid:
        grid = sorted({*grid, ceiling.saturation_point})
    return grid


def _inputs(paths: list[Path]) -> list[tuple[str, str]]:
    out = []
    for given, real in zip(paths, resolve_paths(paths), strict=True):
        if str(real) == "-":
            out.append((str(given), "(read from standard input)"))
            continue
        try:
            out.append((str(given), Path(real).read_text(encoding="utf-8")))
        except OSError as e:
            raise _fail(f"{given}: cannot read: {e.strerror or e}") from None
    return out


def build_report(profiles: list[Path], overrides: list[str] | None, *,
                 ceiling_result: Any = None,
                 sessions: str | None = None, compare: list[Path] | None = None,
                 scenarios: list[str] | None = None, method: str = "both",
                 sim: Any = None, quiet: bool = True) -> str:
    """The HTML page for a profile: its ceiling (given, or computed), a saturation curve,
    an optional what-if comparison, the inputs and the command that reproduces it."""
    from capacity.cli.app import variants_of
    from capacity.render.html import report_page
    from capacity.whatif.ceiling import ceiling as solve_ceiling
    from capacity.whatif.ceiling import compare as compare_variants
    from capacity.whatif.sweep import parse_sessions
    from capacity.whatif.sweep import sweep as run_sweep

    profile = _load(profiles, overrides)
    # The comparison's variants first: a bad overlay or two scenarios of one name are
    # refused before anything is simulated.
    variants = (variants_of(profiles, compare, scenarios, overrides)
                if compare or scenarios else None)
    if ceiling_result is None:
        ceiling_result = simulating(lambda progress: solve_ceiling(
            profile, method, sim=sim, progress=progress).resolved(),
            quiet=quiet or method == "analytic")
    r = ceiling_result
    if sim is None:
        from capacity.cli.common import sim_settings

        sim = sim_settings(20, "1h", None)
    sweep_method = "both" if r.simulated is not None else "analytic"
    grid = _run(lambda: parse_sessions(sessions)) if sessions else default_grid(r)
    curve = simulating(lambda progress: run_sweep(
        profile, grid, method=sweep_method, seed=sim.seed, replications=sim.replications,
        horizon_s=sim.horizon_s, progress=progress), quiet=quiet or sweep_method == "analytic")
    comparison = None
    if variants is not None:
        comparison = _run(lambda: compare_variants(variants, method="analytic"))
    words = ["capacity", "report", *map(str, profiles)]
    for s in overrides or []:
        words += ["--set", s]
    for c in compare or []:
        words += ["--compare", str(c)]
    for s in scenarios or []:
        words += ["--scenario", s]
    if sessions:
        words += ["--sessions", sessions]
    words += ["--method", method if r.simulated is not None else "analytic"]
    if r.simulated is not None:
        words += ["--seed", str(sim.seed), "--replications", str(sim.replications),
                  "--horizon", format_duration(sim.horizon_s)]
    command = shlex.join(words)
    return report_page(ceiling=r, sweep=curve, compare=comparison,
                       inputs=_inputs(profiles), command=command)
