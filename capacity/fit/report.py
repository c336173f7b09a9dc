"""``capacity fit --report fit.png``: fitted vs observed, one panel per fitted quantity.

Each panel draws the observed values' empirical cdf and the fitted distribution's cdf
(for integer data, the fitted distribution rounded to whole numbers, as the KS distance
is computed), titled with where the quantity sits in the profile, the family and the KS
distance; weak fits are titled in red. Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .families import Fit
from .fitter import FitResult

MAX_PANELS = 24


def _panels(res: FitResult) -> list[tuple[str, Fit, str]]:
    out: list[tuple[str, Fit, str]] = [(f"session {res.pacing.mode.replace('_', ' ')}",
                                        res.pacing.fit, "seconds")]
    for m in res.models.values():
        out.append((f"{m.name} ttft", m.ttft, "seconds"))
    for t in res.types:
        for s in t.steps:
            if s.count is not None:
                out.append((f"{t.name}: {s.call.label} {s.kind} count", s.count, "calls"))
            out.append((f"{t.name}: {s.call.label} input", s.call.input_tokens, "tokens"))
            out.append((f"{t.name}: {s.call.label} output", s.call.output_tokens, "tokens"))
    return out[:MAX_PANELS]


def draw_report(res: FitResult, path: Path, title: str = "capacity fit") -> None:
    """Write the PNG; raises ImportError (with the package name) without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(res)
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.9 * rows), squeeze=False)
    for ax, (label, fit, unit) in zip(axes.flat, panels, strict=False):
        x = np.sort(fit.sample)
        n = len(x)
        integer = bool(np.all(x == np.round(x)))
        ax.step(x, np.arange(1, n + 1) / n, where="post", color="black", lw=1.2,
                label=f"observed (n={n:,})")
        lo, hi = float(x[0]), float(x[-1])
        pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(hi) * 0.05)
        grid = np.linspace(lo - pad, hi + pad, 400)
        cdf = fit.dist.cdf(np.floor(grid) + 0.5 if integer else grid)
        ax.plot(grid, cdf, color="tab:blue", lw=1.6, alpha=0.85,
                label=f"fitted: {fit.dist.describe()}"[:60])
        ax.set_title(f"{label}\n{fit.family}, KS {fit.ks:.3f}", fontsize=8.5,
                     color="tab:red" if fit.weak else "black")
        ax.set_xlabel(unit, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="lower right")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{title}: {res.sessions:,} sessions, {res.turns:,} turns, {res.calls:,} calls "
                 "— observed ECDF (black) vs fitted cdf (blue)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90, format=Path(path).suffix.lower().lstrip(".") or "png")
    plt.close(fig)
