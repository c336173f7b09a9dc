"""The saturation curve as a picture (matplotlib, the ``plot`` extra): PNG, SVG or PDF.

The 429 panel has a logarithmic axis so that a 1% target and the crossing of the curve
through it are visible (on a linear axis running to 80% they lie flat on zero).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from capacity._version import DISTRIBUTION
from capacity.errors import CapacityError

FORMATS = ("png", "svg", "pdf")
# Smallest fraction drawn on the log axis: zeros are drawn here (and said so).
FLOOR = 1e-5


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CapacityError(
            f"--plot needs matplotlib, which is not installed: "
            f"pip install '{DISTRIBUTION}[plot]'") from None
    return plt


def plot_format(path: Path, flag: str = "--plot") -> str:
    """The image format named by ``path``'s extension (png, svg or pdf); errors name
    ``flag``, the option that gave the path."""
    ext = path.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise CapacityError(f"{flag} {path}: give a file ending in .png, .svg or .pdf")
    return ext


def check_plot_path(path: Path) -> None:
    """Everything that would make the plot fail, checked before a long sweep."""
    plot_format(path)
    if not path.parent.is_dir():
        raise CapacityError(f"--plot {path}: cannot write: no directory {str(path.parent)!r}")
    if path.is_dir():
        raise CapacityError(f"--plot {path}: is a directory")
    _pyplot()


def _pct(x: float) -> float:
    return 100.0 * max(x, FLOOR) if math.isfinite(x) else math.nan


def sweep_figure(result: Any) -> Any:
    """A matplotlib figure of a sweep: 429 fraction (log axis) and p95 turn latency."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    rows = result.rows
    ns = [r.sessions for r in rows]
    sim = all(r.simulated is not None for r in rows)
    fig, axes = plt.subplots(2 if sim else 1, 1, figsize=(8, 7 if sim else 4), sharex=True,
                             squeeze=False)
    ax = axes[0][0]
    ax.plot(ns, [_pct(r.analytic_429_fraction) for r in rows], "--", color="tab:gray",
            label="burst-aware model (attempts)")
    if sim:
        s429 = [r.simulated["attempt_429_fraction"] for r in rows]
        ax.plot(ns, [_pct(v[0]) for v in s429], "-o", ms=3, color="tab:red",
                label="simulated (attempts, 95% CI)")
        ax.fill_between(ns, [_pct(v[1]) for v in s429], [_pct(v[2]) for v in s429],
                        color="tab:red", alpha=0.2)
    target = result.targets["max_429_fraction"]
    ax.axhline(100 * target, color="k", lw=0.8, ls=":", label=f"target {100 * target:g}%")
    ax.set_yscale("log")
    ax.set_ylim(100 * FLOOR * 0.8, 100)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_ylabel(f"answered 429 (log; 0 drawn at {100 * FLOOR:g}%)")
    ax.set_title(f"{result.profile}: saturation curve (binding {result.binding})")
    sp = result.saturation_point
    for row in axes:
        if sp is not None:
            row[0].axvline(sp, color="tab:green", lw=1.2, label=f"ceiling N = {sp}")
        row[0].grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    if sim:
        ax2 = axes[1][0]
        vals = [r.simulated["turn_latency_p95_s"] for r in rows]
        ax2.plot(ns, [v[0] for v in vals], "-o", ms=3, color="tab:blue",
                 label="p95 turn latency (95% CI)")
        ax2.fill_between(ns, [v[1] for v in vals], [v[2] for v in vals], color="tab:blue",
                         alpha=0.2)
        if result.targets.get("p95_turn_latency_s"):
            ax2.axhline(result.targets["p95_turn_latency_s"], color="k", lw=0.8, ls=":",
                        label="target")
        ax2.set_ylabel("p95 turn latency (s)")
        ax2.legend(loc="upper left", fontsize=8)
        if any(r.simulated["call_failure_fraction"][0] > 0 for r in rows):
            # Why latency can dip past saturation: it is measured over every turn, and a
            # turn whose call runs out of retries is aborted early.
            ax2.text(0.01, 0.5, "past saturation, turns aborted after their retries run "
                     "out end early,\nso p95 latency can fall while failures rise",
                     transform=ax2.transAxes, ha="left", va="center", fontsize=7,
                     color="0.35")
    axes[-1][0].set_xlabel("concurrent sessions N")
    fig.tight_layout()
    return fig


def plot_sweep(result: Any, path: Path | str) -> None:
    """Write the saturation curve to ``path`` in the format its extension names."""
    path = Path(path)
    fmt = plot_format(path)
    plt = _pyplot()
    fig = sweep_figure(result)
    try:
        fig.savefig(path, dpi=110, format=fmt, metadata=_metadata(fmt))
    except (OSError, ValueError) as e:
        raise CapacityError(f"--plot {path}: cannot write: {e}") from None
    finally:
        plt.close(fig)


def _metadata(fmt: str) -> dict[str, Any]:
    # No creation date: the same sweep draws the same bytes (a picture in the repo
    # changes only when the curve does).
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}
