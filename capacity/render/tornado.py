"""The tornado chart of ``capacity sensitivity`` (matplotlib, the ``plot`` extra).

One horizontal bar pair per parameter, ranked with the largest swing on top: from the
baseline ceiling to the ceiling with the parameter lowered (blue) and raised (orange).
The format (PNG, SVG, PDF) follows the file's extension; the file carries no creation
date, so the same result draws the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capacity.errors import CapacityError
from capacity.render.plot import _metadata, _pyplot, plot_format
from capacity.whatif.sensitivity import SensitivityResult

MAX_BARS = 15
"""Parameters drawn (the top of the ranking; the table lists every one)."""


def tornado_figure(r: SensitivityResult, max_bars: int = MAX_BARS) -> Any:
    """A matplotlib figure: the ceiling with each parameter lowered and raised."""
    plt = _pyplot()
    evaluated = [row for row in r.rows if row.swing is not None]
    # Parameters that move nothing are a note, not bars (unless nothing moves at all).
    rows = [row for row in evaluated if row.swing] or evaluated
    still = len(evaluated) - len(rows)
    rows = rows[:max_bars]
    base = r.base.sessions
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.42 * max(len(rows), 1)))
    labels = []
    for y, row in enumerate(rows):
        labels.append(f"{row.parameter.label} ({row.variation.text})")
        for side, colour in ((row.down, "tab:blue"), (row.up, "tab:orange")):
            if side.figure is None:
                continue
            n = side.figure.sessions
            # A zero-width bar is invisible: draw a tick so "no change" reads as such.
            width = n - base if n != base else 0.0
            ax.barh(y, width, left=base, height=0.6, color=colour, alpha=0.85)
            if n == base:
                ax.plot([base], [y], "|", color=colour, ms=12)
            if side.figure.ci is not None:
                lo, hi = side.figure.ci
                ax.plot([lo, hi], [y, y], color="0.2", lw=1)
            ax.annotate(f"{n:,}", (n, y), xytext=(4 if n >= base else -4, 0),
                        textcoords="offset points", va="center",
                        ha="left" if n >= base else "right", fontsize=8)
    ax.axvline(base, color="k", lw=1)
    ax.set_yticks(range(len(rows)), labels=labels, fontsize=8)
    ax.invert_yaxis()  # the largest swing on top
    what = "simulated N*, same seed for every variant" if r.method == "simulate" else (
        "burst-aware model")
    ax.set_xlabel(f"ceiling, sessions ({what}); baseline {base:,}"
                  + (f"\n{still} other parameter(s) varied: no change" if still else ""))
    ax.set_title(f"{r.profile}: what moves the ceiling (blue: lowered, orange: raised)",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_tornado(r: SensitivityResult, path: Path | str) -> None:
    """Write the tornado chart to ``path`` in the format its extension names."""
    path = Path(path)
    fmt = plot_format(path)
    plt = _pyplot()
    fig = tornado_figure(r)
    try:
        fig.savefig(path, dpi=110, format=fmt, metadata=_metadata(fmt))
    except (OSError, ValueError) as e:
        raise CapacityError(f"--plot {path}: cannot write: {e}") from None
    finally:
        plt.close(fig)
