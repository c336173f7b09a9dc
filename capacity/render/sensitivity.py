"""``capacity sensitivity`` as a table (rich) and as CSV: one row per parameter, ranked.

The table fits 80 columns: the parameter in plain words, each side's new value and the
ceiling's change. Parameters whose change moves nothing are listed on one line below it
(all in the table with ``--verbose``); the ``--set`` key of each is in the JSON and CSV.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from capacity.render.format import safe
from capacity.whatif.sensitivity import (
    SensitivityResult,
    SensitivityRow,
    Side,
    show_value,
)


def _cell(text: object, style: str | None = None) -> Text:
    return Text(safe(text), style=style or "")


def _short(row: SensitivityRow, x: float) -> str:
    """A value for a table cell: the number (a distribution's mean) and a short unit."""
    p = row.parameter
    text = show_value(x, p.kind, p.unit)
    return text.removesuffix(" tokens").removesuffix(f" {p.unit}")


def _value(row: SensitivityRow, side: Side) -> str:
    return "—" if side.move.value is None else _short(row, side.move.value)


def _delta(side: Side) -> Text:
    if side.move.skipped is not None:
        return _cell("—", "dim")
    if side.error is not None:
        return _cell("invalid", "yellow")
    d = side.delta or 0
    ci = side.figure.ci if side.figure is not None else None
    text = f"{d:+,}" if d else "0"
    if ci is not None:
        text += f" [{ci[0]:,}–{ci[1]:,}]"
    return _cell(text, "red" if d < 0 else "green" if d > 0 else "dim")


def _moves(row: SensitivityRow) -> bool:
    return bool(row.swing) or any(s.error for s in row.sides)


def sensitivity_renderable(r: SensitivityResult, verbose: bool = False) -> Group:
    """Ranked table, legend, the top rows in words, and notes."""
    what = "simulated N*" if r.method == "simulate" else "burst-aware"
    base = f"{r.base.sessions:,} sessions ({what})"
    if r.base.ci is not None:
        base += f" [95% CI {r.base.ci[0]:,}–{r.base.ci[1]:,}]"
    head = _cell(f"Sensitivity of {r.profile}'s ceiling: {base}", "bold")
    t = Table(box=box.HEAVY_HEAD)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("parameter", overflow="fold", max_width=24)
    t.add_column("now", justify="right", no_wrap=True)
    t.add_column("lowered", justify="right", no_wrap=True)
    t.add_column("Δ", justify="right", no_wrap=True)
    t.add_column("raised", justify="right", no_wrap=True)
    t.add_column("Δ", justify="right", no_wrap=True)
    still = []
    for i, row in enumerate(r.rows, 1):
        if not verbose and not _moves(row):
            still.append(row.parameter.label)
            continue
        now = _short(row, row.parameter.mean)
        t.add_row(str(i), _cell(row.parameter.label), _cell(now),
                  _cell(_value(row, row.down)), _delta(row.down),
                  _cell(_value(row, row.up)), _delta(row.up))
    varied = {row.variation.text for row in r.rows}
    legend = (f"each parameter moved {', '.join(sorted(varied))} on its own (a distribution "
              "by its mean, shown); limits per period, tokens per call; Δ: change of the ceiling, "
              "sessions")
    if r.method == "simulate":
        legend += " [95% CI of the variant's N*]"
    parts: list[RenderableType] = [head, t, _cell(legend + ".", "dim")]
    if still:
        parts.append(_cell(f"No change of the ceiling from: {', '.join(still)} "
                           f"({len(still)}; -v shows them).", "dim"))
    for row in r.rows:
        for side in row.sides:
            if side.error is not None:
                parts.append(_cell(f"{row.parameter.label}: {side.move.setting}: not a "
                                   f"valid profile: {side.error}", "yellow"))
    parts.extend(_cell(line) for line in r.summary().splitlines())
    if r.unranked and verbose:
        parts.append(_cell("Not simulated: " + ", ".join(r.unranked), "dim"))
    parts.extend(_cell(n, "dim") for n in r.notes)
    return Group(*parts)


def sensitivity_csv(r: SensitivityResult) -> str:
    """One CSV row per parameter, in rank order."""
    out = io.StringIO()
    fields = ["rank", "key", "label", "group", "value", "variation", "base_sessions",
              "down_value", "down_sessions", "down_delta", "up_value", "up_sessions",
              "up_delta", "swing_sessions", "elasticity", "note"]
    w = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for i, row in enumerate(r.rows, 1):
        p = row.parameter
        rec: dict[str, Any] = {
            "rank": i, "key": p.key, "label": p.label, "group": p.group, "value": p.mean,
            "variation": row.variation.text, "base_sessions": r.base.sessions,
            "swing_sessions": row.swing, "elasticity": row.elasticity,
            "note": "; ".join(s.error for s in row.sides if s.error)}
        for name, side in (("down", row.down), ("up", row.up)):
            rec[f"{name}_value"] = side.move.value
            rec[f"{name}_sessions"] = side.figure.sessions if side.figure else None
            rec[f"{name}_delta"] = side.delta
        w.writerow({k: "" if v is None else v for k, v in rec.items()})
    return out.getvalue()
