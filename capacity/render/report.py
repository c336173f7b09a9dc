"""Rendering of result objects: rich tables for people, JSON and CSV for scripts.

Tables are designed to fit 80 columns (short headers, a legend line under each table);
numbers use one format per quantity (:mod:`capacity.render.format`); plain words come
first and the names of the methods behind a figure only with ``verbose``. Every
user-supplied string (profile, quota, turn and variant names) is rendered as
:class:`~rich.text.Text` after :func:`~capacity.render.format.safe`: never as markup,
never with its control characters.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from capacity.analytic.model import CeilingResult, ConstraintResult, spells_sentence
from capacity.model.dist import format_duration
from capacity.render.format import count, fewer, latency_binds, num, pct, safe, secs, util
from capacity.whatif.explain import ExplainResult


def to_json(obj: Any) -> str:
    """Serialise a result (``to_dict()``) with non-finite numbers as null; ASCII only, so
    any terminal encoding can carry it (non-ASCII characters become ``\\u`` escapes)."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=True)


def cell(text: object, style: str | None = None) -> Text:
    """User-supplied or computed text as a cell: no markup, no control characters."""
    return Text(safe(text), style=style or "")


def _table(title: object) -> tuple[Text, Table]:
    """A heading (wrapped like text, never squeezed to the table's width) and a table."""
    return cell(title), Table(box=box.HEAVY_HEAD)


def _num_col(t: Table, header: str) -> None:
    # Numbers are never wrapped or cut ("8.4e…" reads as 8.4): see cli's narrow-terminal rule.
    t.add_column(header, justify="right", no_wrap=True)


def _text_col(t: Table, header: str) -> None:
    t.add_column(header, overflow="fold")


def _row(t: Table, *cells: object, style: str | None = None) -> None:
    t.add_row(*(c if isinstance(c, Text) else cell(c) for c in cells), style=style)


def _legend(text: str) -> Text:
    return cell(text, style="dim")


def _enforcement(c: ConstraintResult) -> str:
    if c.enforcement == "token_bucket":
        return f"bucket ≤{count(round(c.bucket_depth or 0))}"
    kind = "sliding" if c.enforcement == "sliding_window" else "per"
    return f"≤{c.allowance_per_window:,} {kind} {format_duration(c.window_s or 0)}"


def _where(b: ConstraintResult) -> str:
    if b.enforcement == "token_bucket":
        return f"a token bucket {count(round(b.bucket_depth or 0))} {b.unit} deep"
    kind = "sliding " if b.enforcement == "sliding_window" else ""
    return (f"{format_duration(b.window_s or 0)} {kind}windows of "
            f"{b.allowance_per_window:,} {b.unit}")


def ceiling_renderable(r: CeilingResult, verbose: bool = False) -> Group:
    """Table, legend and plain-words summary for ``capacity ceiling``."""
    sim = r.simulated
    head0, table = _table(f"Ceilings for {r.profile} (sessions)")
    _text_col(table, "constraint")
    for h in ("limit",):
        _num_col(table, h)
    _text_col(table, "enforced as")
    _num_col(table, "mean")
    _num_col(table, "burst")
    if sim is not None:
        _num_col(table, "simulated")
    table.add_column("binds", no_wrap=True)
    for c in r.constraints:
        cells: list[object] = [c.name, f"{count(c.limit)} {c.dimension}", _enforcement(c),
                               count(c.mean_ceiling), count(c.burst_ceiling)]
        if sim is not None:
            cells.append(f"{sim.n_star:,} [{sim.n_lo:,}–{sim.n_hi:,}]" if c.binding else "")
        cells.append("◀" if c.binding else f"→ {c.spill_to}" if c.spill_to else "")
        _row(table, *cells, style="bold" if c.binding else "dim" if c.spill_to else None)
    target = pct(r.targets["max_429_fraction"])
    legend = (f"mean: quota ÷ per-session rate (the napkin); burst: with bursts, at ≤{target} "
              "429s;")
    legend2 = ("simulated: N* [95% CI], closed loop; ◀ binds first."
               if sim is not None else "◀ binds first.")
    parts: list[RenderableType] = [head0, table, _legend(legend), _legend(legend2)]
    spills = sorted({c.spill_to for c in r.constraints if c.spill_to})
    if spills:
        parts.append(_legend(f"→ {', '.join(spills)}: a priority deployment whose 429s spill "
                             f"to the next at once (never seen by the client): mean is where "
                             f"it fills, burst where more than {target} of its calls spill."))

    head = Text()
    head.append("Saturation point: ", style="bold")
    head.append(f"{r.saturation_point:,} sessions", style="bold green")
    head.append(f" ({r.saturation_by}; ")
    # What stops the next session: the latency target when it alone does (the analytic
    # answer's unreachable target; the simulated search's N* + 1 missing only it).
    head.append("the p95 turn-latency target" if latency_binds(r) else safe(r.binding.name))
    head.append(" binds first)")
    parts.append(head)
    pops = getattr(r, "populations", None)
    if pops:
        parts.append(population_text(pops))
    parts.append(cell(_summary(r)))
    b = r.binding.at_burst_ceiling
    over = ("windows over the allowance" if r.binding.enforcement != "token_bucket"
            else "time the bucket runs dry (an upper bound)")
    if b is not None and "level law" in b.method:
        # The deep bucket's level law: the chance it holds less than a mean call.
        over = "time the bucket holds less than a mean call"
    spells = getattr(r, "spells", None)  # the head's full spells hold the fleet
    if b is not None and spells is None:  # (held: the summary gives the figures at N)
        parts.append(cell(f"At {b.sessions:,} sessions on {r.binding.name}: "
                       f"{pct(b.loss_fraction)} of attempts answered 429, "
                       f"{pct(b.window_exceedance)} of {over}."))
    if r.sessions is not None:
        at_n = [c for c in r.constraints if c.at_sessions is not None]
        text = "; ".join(
            f"{c.name} {util(c.utilisation_at_sessions)} used, "
            f"{pct(c.at_sessions.loss_fraction)} of "  # type: ignore[union-attr]
            + (f"calls spilled to {c.spill_to}" if c.spill_to else "attempts answered 429")
            for c in at_n)
        if spells is not None and "at_sessions" in spells:
            s_at = spells["at_sessions"]
            rest = s_at["rest_share"]
            text += (f"; {s_at['head']}'s full spells (its {s_at['log']} log found full by "
                     f"{pct(s_at['full_share'])} of {s_at['head']}'s arrivals"
                     + (f", the rest alone refusing {pct(rest)}" if rest is not None else "")
                     + f", {s_at['spell_factor']:.0%} of the full time in spells outlasting "
                     f"the rest's memory) turn away about {pct(s_at['share'])} of the "
                     "route's attempts")
        parts.append(cell(f"At {r.sessions:,} sessions: {text}."))
    s = r.sensitivity
    if s is not None:
        what = "cadence" if s.pause == "cadence" else "think time"
        span = "range" if s.bounded else "5th–95th percentile range"
        whose = "session's" if pops else "the"  # populations: the others as they are
        parts.append(cell(
            f"Across {whose} {what} {span} {format_duration(s.low_s)}–{format_duration(s.high_s)}: "
            f"mean-value ceiling {count(s.mean_ceiling_low)}–{count(s.mean_ceiling_high)}, "
            f"burst-aware {s.burst_ceiling_low:,}–{s.burst_ceiling_high:,} sessions."))
    cyc = r.cycle
    whose = " of session" if pops else ""  # populations: the main one's (the others' cycles above)
    parts.append(cell(
        f"Turn latency{whose} without throttling: mean {secs(cyc.turn_latency_mean_s)}, "
        f"p95 {secs(cyc.turn_latency_p95_s)}; cycle {secs(cyc.cycle_s)}; "
        f"{r.calls_per_turn:.2f} calls per turn."))
    if sim is not None:
        parts.append(simulated_text(sim, verbose))
    parts.extend(cell(note, style="yellow") for note in r.notes)
    if verbose:
        parts.append(_methods(r))
    return Group(*parts)


def population_text(pops: dict[str, Any]) -> Text:
    """What N counts, in one line, and each population's cycle (populations only)."""
    cycles = ", ".join(f"{name} {secs(p['cycle_s'])}"
                       for name, p in pops.get("populations", {}).items())
    return cell(f"{pops['line']}." + (f" Cycles: {cycles}." if cycles else ""), style="cyan")


def _summary(r: CeilingResult) -> str:
    """The napkin, the burst-aware ceiling and the simulated one, in plain words."""
    b = r.binding
    mean_n = int(r.mean_ceiling + 1e-9) if r.mean_ceiling != float("inf") else None
    target = pct(r.targets["max_429_fraction"])
    napkin = count(mean_n)
    text = (f"The napkin (quota ÷ per-session rate) says {napkin} sessions. {b.name} is "
            f"enforced over {_where(b)}; ")
    paced = getattr(r, "pacing_summary", None)  # client-side pacing: its queue, not 429s
    spells = getattr(r, "spells", None)
    if spells is not None:
        text = (f"The napkin (quota ÷ per-session rate) says {napkin} sessions. "
                + spells_sentence(spells, r.targets["max_429_fraction"])
                + (f" ({fewer(r.burst_ceiling, mean_n)})." if mean_n is not None
                   and 0 < r.burst_ceiling < mean_n else "."))
    elif paced:
        text = f"The napkin (quota ÷ per-session rate) says {napkin} sessions. {paced}"
    elif getattr(r, "latency_bound", False):
        text += ("but the p95 turn-latency target is out of reach: the turn alone, "
                 f"unthrottled, takes {secs(r.cycle.turn_latency_p95_s)} at p95.")
    elif r.burst_ceiling == 0 and getattr(r, "populations", None) and (
            b.at_burst_ceiling is not None and b.at_burst_ceiling.sessions == 0):
        text += (f"the held sessions alone already have {pct(b.at_burst_ceiling.loss_fraction)} "
                 "of attempts answered 429: no N meets the target.")
    elif r.burst_ceiling == 0:
        text += ("not even one session fits: a single launch exceeds the allowance."
                 if b.one_event_exceeds else "not even one session meets the target.")
    elif mean_n is not None and r.burst_ceiling < mean_n:
        text += (f"with bursts it carries {r.burst_ceiling:,} at ≤{target} of attempts answered "
                 f"429 ({fewer(r.burst_ceiling, mean_n)}).")
    elif mean_n is not None and r.burst_ceiling > mean_n:
        text += (f"refused calls are not retried (they are lost), so past the mean rate it "
                 f"still carries {r.burst_ceiling:,} at ≤{target} of attempts answered 429.")
    else:
        text += (f"bursts cost nothing here ({r.burst_ceiling:,} at ≤{target} 429s): the mean "
                 "rate is the limit.")
    sim = r.simulated
    if sim is not None:
        text += (f" The simulation (closed loop) puts it at {sim.n_star:,} "
                 f"(95% CI {sim.n_lo:,}–{sim.n_hi:,}")
        if mean_n is not None and 0 < sim.n_star < mean_n:
            text += f"; {fewer(sim.n_star, mean_n)} than the napkin"
        text += ")."
    return text


def _methods(r: CeilingResult) -> Text:
    """--verbose: which model computed each figure."""
    lines = ["How each figure was computed:"]
    for c in r.constraints:
        lines.append(f"  {safe(c.name)}: burst-aware ceiling by {c.method}")
    if r.simulated is not None:
        lines.append("  simulated N*: bisection between the analytic ceilings on a discrete-"
                     "event closed-loop simulation; CI by inverting the replication t-intervals")
    lines.append("  mean-value ceiling: the interactive response-time law, (Q/60)·C/v")
    return Text("\n".join(lines), style="dim")


def simulated_text(sim: Any, verbose: bool = False) -> Text:
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
            f"; at N*: {pct(m['attempt_429_fraction'].mean)} of attempts answered 429, "
            f"{pct(m['call_failure_fraction'].mean)} of calls failed after retries, "
            f"{m['attempts_per_call'].mean:.3f} attempts per call, "
            f"p95 turn latency {secs(p95.mean)} (±{secs((p95.hi - p95.lo) / 2)})")
    if sim.binding:
        missed = ", ".join(
            {"max_429_fraction": "the 429 target",
             "p95_turn_latency": "the latency target"}.get(x, x) for x in sim.binding)
        t.append(f"; one more session misses {safe(missed)}")
    t.append(f". {sim.replications} replications × {format_duration(sim.horizon_s)} "
             f"after a {format_duration(sim.warmup_s)} warm-up; reproduce with --seed "
             f"{sim.seed}.")
    return t


def explain_renderable(r: ExplainResult, verbose: bool = False) -> Group:
    """Tables for ``capacity explain``."""
    t_head, t = _table(f"Per turn — {r.profile}")
    _text_col(t, "turn")
    for col in ("share", "calls", "input tok", "output tok", "latency", "p95"):
        _num_col(t, col)

    def ms(s: Any, digits: int) -> str:
        return f"{num(s.mean, digits)}±{num(s.sd, digits)}"

    for f in r.turns:
        _row(t, f.turn, util(f.share), ms(f.calls, 2), ms(f.input_tokens, 0),
             ms(f.output_tokens, 0), secs(f.latency_s.mean), secs(f.latency_s.p95))
    c = r.cycle
    cyc = cell(
        f"Session cycle: {secs(c.cycle_s)} = "
        + (f"turn {secs(c.turn_latency_mean_s)} + think {secs(c.pause_mean_s)}"
           if c.mode == "think_time"
           else f"E[max(cadence {secs(c.pause_mean_s)}, turn)]")
        + f"; a session starts {60.0 / c.cycle_s:.3f} turns per minute.")
    q_head, q = _table("Per-session spend and mean-value ceiling")
    _text_col(q, "constraint")
    for col in ("per turn", "per min", "limit", "mean ceiling"):
        _num_col(q, col)
    fed = [s for s in r.rates if getattr(s, "fed_by", None)]
    for s in r.rates:
        mark = " (fed)" if getattr(s, "fed_by", None) else ""
        _row(q, f"{s.quota}.{s.dimension}{mark}", num(s.units_per_turn, 1),
             num(s.per_session_per_minute, 1), f"{count(s.limit)} {s.dimension}",
             num(s.mean_ceiling, 1))
    legend = _legend("calls and tokens: mean±sd per turn; latency: mean and p95 without "
                     "throttling.")
    legend2 = _legend("per turn / per min: units one session spends (requests or tokens).")
    note = _legend(f"Spreads and p95 from {r.sample_size:,} sampled turns (fixed seed).")
    if fed:
        how = sorted({str(s.fed_by) for s in fed})
        legend2 = _legend(
            "per turn / per min: units one session spends (requests or tokens); (fed): "
            f"a deployment reached only by {' or '.join(how)} — its load grows faster "
            "than N, so its figures are what one session sends it at that constraint's "
            "own mean ceiling.")
    pops = getattr(r, "populations", None)
    if pops:  # the cycle above is session's; per min is one session of N (the mix)
        legend2 = _legend("per turn / per min: units one session of N spends (the mix); mean "
                          "ceiling: in N, the held sessions beside it.")
        return Group(t_head, t, legend, cyc, population_text(pops), q_head, q, legend2, note)
    return Group(t_head, t, legend, cyc, q_head, q, legend2, note)


def size_renderable(r: Any, verbose: bool = False) -> Group:
    """Table for ``capacity size``."""
    head, t = _table(f"Quota needed for {r.sessions:,} sessions — {r.profile} "
               f"(≤{pct(r.target_429_fraction)} 429s)")
    _text_col(t, "constraint")
    _text_col(t, "enforced as")
    for col in ("current", "napkin needs", "needs", "raise"):
        _num_col(t, col)
    for d in r.dimensions:
        enf = ("token bucket" if d.enforcement == "token_bucket"
               else f"{'sliding' if d.enforcement == 'sliding_window' else 'fixed'} "
               f"{format_duration(d.window_s or 0)}")
        _row(t, f"{d.quota}.{d.dimension}" + (f" → {d.spill_to}" if d.spill_to else "")
             + (" ‡" if getattr(d, "sized_for", None) == "spells" else "")
             + (" §" if getattr(d, "sized_for", None) == "held" else ""),
             enf, count(d.current_limit),
             count(math.ceil(d.mean_value_limit - 1e-9)),
             count(d.required_limit),
             f"{d.required_limit / d.current_limit:,.2f}×" if d.raise_needed else "—",
             style="bold" if d.raise_needed else None)
    parts: list[RenderableType] = [
        head, t, _legend("napkin needs: limit at which the mean rate fits; needs: with bursts, "
                   "at the target.")]
    spill = getattr(r, "max_spill", None)
    if any(d.spill_to for d in r.dimensions) and spill is not None:
        parts.append(_legend(
            f"→ next: the first deployment of a priority route, sized so that at most "
            f"{pct(spill)} of its calls spill to the next (--max-spill); the ones after it "
            "are sized for the overflow of its current limit."))
    if any(getattr(d, "sized_for", None) == "spells" for d in r.dimensions):
        parts.append(_legend("‡ sized for the first deployment's full spells, when the rest "
                             "carries the whole route (below)."))
    if any(getattr(d, "sized_for", None) == "held" for d in r.dimensions):
        parts.append(_legend("§ a priority route's first deployment that also takes calls "
                             "with nowhere else to go (another route's): sized for their "
                             "429s at the target."))
    pops = getattr(r, "populations", None)
    if pops:
        parts.append(population_text(pops))
    parts.append(cell(r.summary()))
    if any(getattr(d, "spill_to", None) is None for d in r.to_raise):
        sets = " ".join(f"--set {d.set_path}" for d in r.to_raise
                        if getattr(d, "spill_to", None) is None)
        parts.append(cell(f"Check it: capacity ceiling PROFILE {sets}", style="dim"))
    return Group(*parts)


def check_text(r: Any, verbose: bool = False) -> Text:
    """One line for ``capacity check``."""
    verdict = "PASS" if r.passed else "FAIL"
    style = "bold green" if r.passed else "bold red"
    t = Text()
    t.append(verdict, style=style)
    sign = "+" if r.margin >= 0 else ""
    t.append(safe(f" {r.profile}: ceiling {r.ceiling:,} sessions ({r.method}) vs required "
                  f"{r.required:,} — margin {sign}{r.margin:,} "
                  f"({sign}{r.margin / r.required:.0%}); binding {r.binding}"))
    return t


def compare_renderable(r: Any, verbose: bool = False) -> Group:
    """One row per variant for ``capacity compare`` (fits 80 columns for any count)."""
    rows = r.rows()
    sim = any(row["simulated"] is not None for row in rows)
    head, t = _table("Compare (sessions; change against the first row)")
    _text_col(t, "variant")
    for col in ("mean", "burst", *(("simulated",) if sim else ()), "ceiling", "change"):
        _num_col(t, col)
    _text_col(t, "binds")
    for x in rows:
        cells: list[object] = [x["name"], count(x["mean_ceiling"]), count(x["burst_ceiling"])]
        if sim:
            cells.append("—" if x["simulated"] is None else
                         f"{x['simulated']:,} [{x['simulated_ci'][0]:,}–"
                         f"{x['simulated_ci'][1]:,}]")
        cells.append(count(x["saturation_point"]))
        cells.append("—" if x is rows[0] else (
            f"{x['change_sessions']:+,}" + (f" ({x['change_percent']:+.0f}%)"
                                             if x["change_percent"] is not None else "")))
        bc = x["binding_constraint"]  # quota null: the latency target (no quota) binds
        cells.append(f"{bc['quota'] or 'targets'}.{bc['dimension']}")
        _row(t, *cells)
    by = "simulated" if sim else "burst"
    lines = [cell(f"{x['name']}: {x['populations']}.", style="cyan") for x in rows
             if x.get("populations")]
    # Each note once, naming the variants it belongs to unless it belongs to all of them.
    whose: dict[str, list[str]] = {}
    for x in rows:
        for note in x.get("notes", ()):
            whose.setdefault(note, []).append(x["name"])
    lines += [cell(note if len(names) == len(rows) else f"{', '.join(names)}: {note}",
                   style="yellow") for note, names in whose.items()]
    return Group(head, t, _legend(f"mean: the napkin; burst: with bursts; ceiling: the saturation "
                            f"point ({by}); change: of the ceiling."), *lines)


def sweep_renderable(r: Any, verbose: bool = False) -> Group:
    """Table for ``capacity sweep``; the saturation point's row is marked."""
    sim = any(row.simulated is not None for row in r.rows)
    head, t = _table(f"Sweep — {r.profile} (binding {r.binding})")
    _num_col(t, "sessions")
    _num_col(t, "429 model")
    if sim:
        for col in ("429 sim", "failed", "p95 turn", "calls/min"):
            _num_col(t, col)
    _num_col(t, "util")
    # A fleet's priority routes: the share of their calls the first deployment spills.
    routes = sorted({k for row in r.rows for k in (getattr(row, "spill", None) or {})})
    for route in routes:
        _num_col(t, f"spill {route}" if len(routes) > 1 else "spill")
    t.add_column("", no_wrap=True)
    sp = r.saturation_point
    for row in r.rows:
        cells = [f"{row.sessions:,}", pct(row.analytic_429_fraction)]
        if sim and row.simulated is not None:
            s = row.simulated
            cells += [pct(s["attempt_429_fraction"][0]), pct(s["call_failure_fraction"][0]),
                      secs(s["turn_latency_p95_s"][0]), num(s["goodput_calls_per_min"][0], 1)]
        u = (row.simulated or {}).get("binding_utilisation_sim", (row.binding_utilisation,))
        cells.append(util(u[0]))
        cells += [pct((row.spill or {}).get(route, 0.0)) for route in routes]
        mark = "◀" if row.sessions == sp else ("" if row.meets_targets else "✗")
        _row(t, *cells, mark, style="bold" if row.sessions == sp else None)
    if sim:
        legend = [_legend("429 model: attempts answered 429, burst-aware model; 429 sim: "
                          "simulated;"),
                  _legend("failed: calls failed after retries; calls/min: answered calls; "
                          "util: quota used.")]
    else:
        # The analytic figure is the load offered, not carried: 147% at 110 sessions of
        # web-research, which "binding quota used" could not be.
        legend = [_legend("429 model: attempts answered 429, burst-aware model; util: "
                          "load offered to the binding quota ÷ its limit (over 100% past "
                          "saturation).")]
    if routes:
        legend.append(_legend("spill: share of a priority route's calls its first deployment "
                              "turns away and sends on (analytic overflow model)."))
    legend.append(_legend("◀ saturation point on this grid; ✗ misses a target."))
    by = "simulated means" if sim else "analytic model"
    note = (f"Saturation point on this grid: {sp:,} sessions ({by})." if sp is not None
            else "No N on this grid meets the targets.")
    if sim:
        note += (f" Seed {r.seed}, {r.replications} replications × "
                 f"{format_duration(r.horizon_s)}.")
    pops = getattr(r, "populations", None)
    if pops:
        legend.append(population_text(pops))
    return Group(head, t, *legend, cell(note))


# -- CSV -------------------------------------------------------------------------------


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    w = csv.DictWriter(buf, fieldnames=fields or ["empty"], lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def to_csv(r: Any) -> str:
    """CSV of a result, one row per natural unit: per N (sweep), per constraint (ceiling,
    size, explain), per variant (compare), one row (check)."""
    from capacity.whatif.ceiling import CheckResult, CompareResult, SizeResult
    from capacity.whatif.sweep import SweepResult

    if isinstance(r, SweepResult):
        return _csv([row.flat() for row in r.rows])
    d = r.to_dict()
    if isinstance(r, CeilingResult):
        head = {"profile": d["profile"], "saturation_point": d["saturation_point"]}
        return _csv([{**head, **_flat(c)} for c in d["constraints"]])
    if isinstance(r, SizeResult):
        return _csv([{"profile": d["profile"], "sessions": d["sessions"], **_flat(x)}
                     for x in d["dimensions"]])
    if isinstance(r, CompareResult):
        return _csv([_flat(v) for v in d["variants"]])
    if isinstance(r, ExplainResult):
        return _csv([{"profile": d["profile"], **_flat(x)} for x in d["rates"]])
    if isinstance(r, CheckResult):
        return _csv([_flat(d)])
    return _csv([_flat(d)])
