"""Rendering of result objects: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from capacity.analytic.model import CeilingResult, ConstraintResult
from capacity.model.dist import format_duration
from capacity.whatif.explain import ExplainResult


def to_json(obj: Any) -> str:
    """Serialise a result (``to_dict()``) with non-finite numbers as null."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)


def _n(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "∞" if x is not None else "—"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0%"
    if x < 0.001:
        return f"{x:.1e}"
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _enforcement(c: ConstraintResult) -> str:
    if c.enforcement == "token_bucket":
        return f"bucket ≤{_n(c.bucket_depth, 0)}"
    kind = "sliding" if c.enforcement == "sliding_window" else "per"
    return f"≤{c.allowance_per_window:,} {kind} {format_duration(c.window_s or 0)}"


def ceiling_renderable(r: CeilingResult) -> Group:
    """Tables and headline for ``capacity ceiling``."""
    sim = r.simulated
    table = Table(title=f"Ceilings for {r.profile} (sessions)", title_justify="left")
    table.add_column("constraint")
    table.add_column("limit", justify="right")
    table.add_column("enforced as")
    table.add_column("mean", justify="right")
    table.add_column("burst", justify="right")
    if sim is not None:
        table.add_column("simulated", justify="right")
    table.add_column("binds")
    for c in r.constraints:
        row = [
            c.name,
            f"{_n(c.limit)} {c.dimension}",
            _enforcement(c),
            _n(c.mean_ceiling),
            f"{c.burst_ceiling:,}",
        ]
        if sim is not None:
            row.append(
                f"{sim.n_star:,} [{sim.n_lo:,}–{sim.n_hi:,}]" if c.binding else "")
        row.append("◀" if c.binding else "")
        table.add_row(*row, style="bold" if c.binding else None)

    parts: list[Any] = [table]
    head = Text()
    head.append("Saturation point: ", style="bold")
    head.append(f"{r.saturation_point:,} sessions", style="bold green")
    by = "Monte Carlo simulation" if sim is not None else "burst-aware analytic model"
    head.append(f" (by the {by}; binding: {r.binding.name})")
    parts.append(head)
    parts.append(Text(r.summary()))
    b = r.binding.at_burst_ceiling
    over = ("windows over the allowance" if r.binding.enforcement != "token_bucket"
            else "time the bucket runs dry (bound)")
    if b is not None:
        parts.append(Text(
            f"At {b.sessions:,} sessions on {r.binding.name}: {_pct(b.loss_fraction)} of calls "
            f"answered 429, {_pct(b.window_exceedance)} of "
            f"{over}"
            f" [{b.method}]."))
    if r.sessions is not None:
        at_n = [c for c in r.constraints if c.at_sessions is not None]
        text = "; ".join(
            f"{c.name} {c.utilisation_at_sessions:.0%} used, "
            f"{_pct(c.at_sessions.loss_fraction)} of calls answered 429"  # type: ignore[union-attr]
            for c in at_n)
        parts.append(Text(f"At {r.sessions:,} sessions: {text}."))
    s = r.sensitivity
    if s is not None:
        what = "cadence" if s.pause == "cadence" else "think time"
        span = "range" if s.bounded else "5th–95th percentile range"
        parts.append(Text(
            f"Across the {what} {span} {format_duration(s.low_s)}–{format_duration(s.high_s)}: "
            f"mean-value ceiling {_n(s.mean_ceiling_low)}–{_n(s.mean_ceiling_high)}, "
            f"burst-aware {s.burst_ceiling_low:,}–{s.burst_ceiling_high:,} sessions."))
    cyc = r.cycle
    parts.append(Text(
        f"Turn latency without throttling: mean {cyc.turn_latency_mean_s:.1f}s, "
        f"p95 {cyc.turn_latency_p95_s:.1f}s; cycle {cyc.cycle_s:.1f}s; "
        f"{r.calls_per_turn:.2f} calls per turn."))
    if sim is not None:
        parts.append(simulated_text(sim, r))
    parts.extend(Text(note, style="yellow") for note in r.notes)
    return Group(*parts)


def simulated_text(sim: Any, r: CeilingResult) -> Text:
    """One paragraph on the simulated saturation point."""
    at = sim.metric_at_n_star
    t = Text()
    t.append("Simulated: ", style="bold")
    t.append(f"N* = {sim.n_star:,} sessions (95% CI {sim.n_lo:,}–{sim.n_hi:,})")
    if sim.capped:
        t.append(" — a lower bound: the search hit its session cap")
    if at is not None:
        m = at.metrics
        p95 = m["turn_latency_p95_s"]
        t.append(
            f"; at N*: {_pct(m['attempt_429_fraction'].mean)} of attempts answered 429, "
            f"{_pct(m['call_failure_fraction'].mean)} of calls failed after retries, "
            f"{m['attempts_per_call'].mean:.3f} attempts per call, "
            f"p95 turn latency {p95.mean:.1f}s (±{(p95.hi - p95.lo) / 2:.1f}s)")
    if sim.binding:
        t.append(f"; N*+1 misses: {', '.join(sim.binding)}")
    t.append(f". [{sim.replications} replications × {format_duration(sim.horizon_s)} "
             f"after {format_duration(sim.warmup_s)} warm-up; reproduce with --seed "
             f"{sim.seed}]")
    return t


def explain_renderable(r: ExplainResult) -> Group:
    """Tables for ``capacity explain``."""
    t = Table(title=f"Per turn — {r.profile}", title_justify="left")
    for col in ("turn", "share", "calls", "input tokens", "output tokens", "latency",
                "latency p95"):
        t.add_column(col, justify="left" if col == "turn" else "right")
    for f in r.turns:
        t.add_row(f.turn, f"{f.share:.0%}", f"{f.calls.mean:.2f} ± {f.calls.sd:.2f}",
                  f"{f.input_tokens.mean:,.0f} ± {f.input_tokens.sd:,.0f}",
                  f"{f.output_tokens.mean:,.0f} ± {f.output_tokens.sd:,.0f}",
                  f"{f.latency_s.mean:.1f}s", f"{f.latency_s.p95:.1f}s")
    c = r.cycle
    cyc = Text(
        f"Session cycle: {c.cycle_s:.1f}s = "
        + (f"turn {c.turn_latency_mean_s:.1f}s + think {c.pause_mean_s:.1f}s"
           if c.mode == "think_time"
           else f"E[max(cadence {c.pause_mean_s:.1f}s, turn)]")
        + f"; a session starts {60.0 / c.cycle_s:.3f} turns per minute.")
    q = Table(title="Per-session spend and mean-value ceiling", title_justify="left")
    for col in ("constraint", "per turn", "per session per min", "limit", "mean ceiling"):
        q.add_column(col, justify="left" if col == "constraint" else "right")
    for s in r.rates:
        q.add_row(f"{s.quota}.{s.dimension}", f"{_n(s.units_per_turn, 2)} {s.unit}",
                  f"{_n(s.per_session_per_minute, 3)}", f"{_n(s.limit)} {s.dimension}",
                  _n(s.mean_ceiling))
    note = Text(f"Spreads and p95 from {r.sample_size:,} sampled turns (fixed seed).",
                style="dim")
    return Group(t, cyc, q, note)


def size_renderable(r: Any) -> Group:
    """Table for ``capacity size``."""
    t = Table(title=f"Quota needed for {r.sessions:,} sessions — {r.profile} "
              f"(≤{r.target_429_fraction:.1%} 429s)", title_justify="left")
    for col in ("constraint", "enforced as", "current", "mean-value needs", "needs", "raise"):
        t.add_column(col, justify="left" if col in ("constraint", "enforced as") else "right")
    for d in r.dimensions:
        enf = ("token bucket" if d.enforcement == "token_bucket"
               else f"{'sliding' if d.enforcement == 'sliding_window' else 'fixed'} "
               f"{format_duration(d.window_s or 0)}")
        t.add_row(f"{d.quota}.{d.dimension}", enf, f"{_n(d.current_limit, 0)}",
                  f"{_n(math.ceil(d.mean_value_limit - 1e-9), 0)}",
                  f"{_n(d.required_limit, 0)}",
                  f"{d.required_limit / d.current_limit:.2f}×" if d.raise_needed else "—",
                  style="bold" if d.raise_needed else None)
    parts: list[Any] = [t, Text(r.summary())]
    if r.to_raise:
        sets = " ".join(f"--set {d.set_path}" for d in r.to_raise)
        parts.append(Text(f"Check it: capacity ceiling PROFILE {sets}", style="dim"))
    return Group(*parts)


def check_text(r: Any) -> Text:
    """One line for ``capacity check``."""
    verdict = "PASS" if r.passed else "FAIL"
    style = "bold green" if r.passed else "bold red"
    t = Text()
    t.append(verdict, style=style)
    sign = "+" if r.margin >= 0 else ""
    t.append(f" {r.profile}: ceiling {r.ceiling:,} sessions ({r.method}) vs required "
             f"{r.required:,} — margin {sign}{r.margin:,} ({sign}{r.margin / r.required:.0%}); "
             f"binding {r.binding}")
    return t


def compare_renderable(r: Any) -> Table:
    """Side-by-side table for ``capacity compare``."""
    rows = r.rows()
    t = Table(title="Compare (sessions; change against the first column)",
              title_justify="left")
    t.add_column("")
    for row in rows:
        t.add_column(row["name"], justify="right")
    sim = any(row["simulated"] is not None for row in rows)

    def line(label: str, fn: Any) -> None:
        t.add_row(label, *(fn(row) for row in rows))

    line("mean-value", lambda x: _n(x["mean_ceiling"]))
    line("burst-aware", lambda x: f"{x['burst_ceiling']:,}")
    if sim:
        line("simulated", lambda x: "—" if x["simulated"] is None else
             f"{x['simulated']:,} [{x['simulated_ci'][0]:,}–{x['simulated_ci'][1]:,}]")
    line("binds", lambda x: f"{x['binding_constraint']['quota']}."
         f"{x['binding_constraint']['dimension']}")
    line("saturation", lambda x: f"{x['saturation_point']:,}")
    line("change", lambda x: "—" if x is rows[0] else (
        f"{x['change_sessions']:+,}" + (f" ({x['change_percent']:+.0f}%)"
                                         if x["change_percent"] is not None else "")))
    return t


def sweep_renderable(r: Any) -> Group:
    """Table for ``capacity sweep``; the saturation point's row is marked."""
    sim = any(row.simulated is not None for row in r.rows)
    t = Table(title=f"Sweep — {r.profile} (binding {r.binding})", title_justify="left")
    t.add_column("sessions", justify="right")
    t.add_column("429 (analytic)", justify="right")
    if sim:
        for col in ("429 (sim)", "failed calls", "p95 turn", "goodput/min"):
            t.add_column(col, justify="right")
    t.add_column("util.", justify="right")
    t.add_column("")
    sp = r.saturation_point
    for row in r.rows:
        cells = [f"{row.sessions:,}", _pct(row.analytic_429_fraction)]
        if sim and row.simulated is not None:
            s = row.simulated
            cells += [_pct(s["attempt_429_fraction"][0]), _pct(s["call_failure_fraction"][0]),
                      f"{s['turn_latency_p95_s'][0]:.1f}s",
                      f"{s['goodput_calls_per_min'][0]:,.1f}"]
        util = (row.simulated or {}).get("binding_utilisation_sim", (row.binding_utilisation,))
        cells.append(f"{util[0]:.0%}")
        mark = "◀ ceiling" if row.sessions == sp else ("" if row.meets_targets else "✗")
        t.add_row(*cells, mark, style="bold" if row.sessions == sp else None)
    by = "simulated means" if sim else "analytic model"
    note = (f"Saturation point on this grid: {sp:,} sessions ({by})." if sp is not None
            else "No N on this grid meets the targets.")
    if sim:
        note += f" Seed {r.seed}, {r.replications} replications × {format_duration(r.horizon_s)}."
    return Group(t, Text(note))


def to_csv(r: Any) -> str:
    """CSV of a sweep: one row per N, header first."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=r.columns(), lineterminator="\n")
    w.writeheader()
    for row in r.rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.flat().items()})
    return buf.getvalue()
