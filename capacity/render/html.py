"""The shareable report: one self-contained HTML page, readable offline.

No script, no external stylesheet, font or image: the saturation curve is inline SVG
drawn here (no plotting library needed). Every number on the page comes from the same
result objects as ``--json``; each figure carries a ``data-key`` naming its JSON path so
a test (or a reader) can check one against the other.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from capacity.analytic.model import spells_sentence
from capacity.model.dist import format_duration
from capacity.render.format import count, latency_binds, pct, secs, util

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
max-width:960px;margin:2em auto;padding:0 1em;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.headline{font-size:1.25em;background:#eef7ee;border-left:5px solid #2e7d32;padding:.6em 1em}
.headline b{font-size:1.3em}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bind td{font-weight:600}
.legend,.small{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
svg text{font-family:system-ui,sans-serif}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _td(value: str, key: str | None = None, num: bool = True) -> str:
    attr = f' data-key="{_e(key)}"' if key else ""
    cls = ' class="n"' if num else ""
    return f"<td{cls}{attr}>{_e(value)}</td>"


def _table(headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _ceilings(r: Any) -> str:
    sim = r.simulated
    headers = ["constraint", "limit", "mean-value", "burst-aware"]
    if sim is not None:
        headers.append("simulated N* [95% CI]")
    rows = []
    for i, c in enumerate(r.constraints):
        # A priority route's first deployment: its 429s spill to the next one.
        name = c.name + (f" → {c.spill_to} (spills)" if getattr(c, "spill_to", None) else "")
        cells = [_td(name, num=False), _td(f"{count(c.limit)} {c.dimension}"),
                 _td(count(c.mean_ceiling), f"constraints.{i}.mean_ceiling"),
                 _td(count(c.burst_ceiling), f"constraints.{i}.burst_ceiling")]
        if sim is not None:
            cells.append(_td(f"{sim.n_star:,} [{sim.n_lo:,}–{sim.n_hi:,}]" if c.binding
                             else ""))
        mark = ' class="bind"' if c.binding else ""
        rows.append(f"<tr{mark}>{''.join(cells)}</tr>")
    return _table(headers, rows)


def _sweep_table(s: Any) -> str:
    sim = any(row.simulated is not None for row in s.rows)
    headers = ["sessions", "429 (model)"]
    if sim:
        headers += ["429 (simulated)", "failed calls", "p95 turn latency"]
    # Analytic only: the load offered ÷ the limit, which passes 100% past saturation.
    headers.append("utilisation" if sim else "offered ÷ limit")
    rows = []
    for i, row in enumerate(s.rows):
        cells = [_td(f"{row.sessions:,}", f"sweep.rows.{i}.sessions"),
                 _td(pct(row.analytic_429_fraction))]
        if sim and row.simulated is not None:
            m = row.simulated
            cells += [_td(pct(m["attempt_429_fraction"][0])),
                      _td(pct(m["call_failure_fraction"][0])),
                      _td(secs(m["turn_latency_p95_s"][0]))]
        u = (row.simulated or {}).get("binding_utilisation_sim", (row.binding_utilisation,))
        cells.append(_td(util(u[0])))
        mark = ' class="bind"' if row.sessions == s.saturation_point else ""
        rows.append(f"<tr{mark}>{''.join(cells)}</tr>")
    return _table(headers, rows)


def curve_svg(s: Any, width: int = 720, height: int = 320) -> str:
    """The saturation curve as inline SVG: 429 fraction on a log axis against N."""
    floor = 1e-5
    left, right, top, bottom = 64, 16, 16, 44
    ns = [row.sessions for row in s.rows]
    lo_n, hi_n = min(ns), max(ns)
    span = max(hi_n - lo_n, 1)
    dec_lo, dec_hi = math.log10(floor), 0.0

    def x(n: float) -> float:
        return float(left + (n - lo_n) / span * (width - left - right))

    def y(frac: float) -> float:
        v = math.log10(min(max(frac, floor), 1.0))
        return top + (dec_hi - v) / (dec_hi - dec_lo) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="saturation curve">',
           f'<rect width="{width}" height="{height}" fill="#fff"/>']
    for d in range(int(dec_lo), 1):
        yy = y(10.0 ** d)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{100 * 10.0 ** d:g}%</text>')
    last = -1e9
    for n in ns:
        if x(n) - last < 28:  # labels closer than this would overlap
            continue
        last = x(n)
        out.append(f'<text x="{x(n):.1f}" y="{height - bottom + 16}" font-size="11" '
                   f'text-anchor="middle">{n}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" font-size="12" '
               'text-anchor="middle">concurrent sessions N</text>')
    target = s.targets["max_429_fraction"]
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" '
               f'y2="{y(target):.1f}" stroke="#000" stroke-dasharray="3 3"/>')
    out.append(f'<text x="{width - right - 4}" y="{y(target) - 4:.1f}" font-size="11" '
               f'text-anchor="end">target {100 * target:g}%</text>')

    def path(values: list[float], color: str, dash: str = "") -> None:
        pts = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in zip(ns, values, strict=True))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{extra}/>')

    path([row.analytic_429_fraction for row in s.rows], "#888", "6 4")
    if all(row.simulated is not None for row in s.rows):
        path([row.simulated["attempt_429_fraction"][0] for row in s.rows], "#d62728")
    if s.saturation_point is not None:
        xs = x(s.saturation_point)
        out.append(f'<line x1="{xs:.1f}" x2="{xs:.1f}" y1="{top}" y2="{height - bottom}" '
                   'stroke="#2e7d32" stroke-width="2"/>')
        out.append(f'<text x="{xs + 4:.1f}" y="{top + 12}" font-size="11" fill="#2e7d32">'
                   f'ceiling {s.saturation_point}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" '
               'stroke="#444"/>')
    out.append("</svg>")
    return "".join(out)


def report_page(*, ceiling: Any, sweep: Any, compare: Any | None,
                inputs: Sequence[tuple[str, str]], command: str) -> str:
    """The whole page. ``inputs`` are (name, YAML text) of every file the profile was
    merged from; ``command`` reproduces the page."""
    r = ceiling
    sim = r.simulated
    by = r.saturation_by
    binding = "the p95 turn-latency target" if latency_binds(r) else r.binding.name
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Capacity report: {_e(r.profile)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Capacity report: {_e(r.profile)}</h1>",
        f'<p class="headline">This quota carries <b data-key="saturation_point">'
        f"{r.saturation_point:,}</b> concurrent sessions ({_e(by)}); "
        f"<span data-key=\"binding\">{_e(binding)}</span> binds first. The napkin "
        f'(quota ÷ per-session rate) says <span data-key="mean_ceiling_sessions">'
        f"{count(int(r.mean_ceiling + 1e-9) if math.isfinite(r.mean_ceiling) else None)}"
        f'</span>; with bursts, <span data-key="burst_ceiling">{r.burst_ceiling:,}</span>.'
        "</p>",
        "<h2>Ceilings (sessions)</h2>", _ceilings(r),
        f'<p class="legend">mean-value: quota ÷ per-session rate; burst-aware: with bursts, '
        f"at ≤{_e(pct(r.targets['max_429_fraction']))} of attempts answered 429"
        + ("; simulated: closed loop, 95% confidence interval" if sim else "")
        + ".</p>",
    ]
    spells = getattr(r, "spells", None)
    if spells is not None:  # a full head's spells hold the fleet: what and how much
        parts.append(f'<p class="small" data-key="spells">'
                     f"{_e(spells_sentence(spells, r.targets['max_429_fraction']))}.</p>")
    pops = getattr(r, "populations", None)
    if pops:  # several kinds of sessions: the ceilings count N, the held ones beside it
        parts.append(f'<p class="small" data-key="populations.line">{_e(pops["line"])}.</p>')
    # A fleet: how each route splits its calls, what spills and what falls back.
    parts += [f'<p class="small">{_e(n)}</p>' for n in r.notes
              if n.startswith(("Route ", "Spillover is", "The held sessions",
                               "With populations", "Think time", "Not settled",
                               "The simulated N* was not measured again"))]
    if sim is not None:
        parts.append(f'<p class="small">Simulation: {sim.replications} replications × '
                     f"{_e(format_duration(sim.horizon_s))}, seed "
                     f'<span data-key="simulated.seed">{sim.seed}</span>.</p>')
    parts += ["<h2>Saturation curve</h2>", curve_svg(sweep),
              '<p class="legend">Share of attempts answered 429 against the number of concurrent '
              "sessions, on a log scale (dashed grey: burst-aware model; red: simulated "
              "attempts); the dotted line is the target, the green line the ceiling on this "
              "grid.</p>", _sweep_table(sweep)]
    if compare is not None:
        rows = []
        for i, x in enumerate(compare.rows()):
            change = "—" if i == 0 else (
                f"{x['change_sessions']:+,}" + (f" ({x['change_percent']:+.0f}%)"
                                                 if x["change_percent"] is not None else ""))
            rows.append("<tr>" + _td(x["name"], num=False)
                        + _td(count(x["mean_ceiling"]))
                        + _td(count(x["burst_ceiling"]), f"compare.variants.{i}.burst_ceiling")
                        + _td(count(x["saturation_point"]),
                              f"compare.variants.{i}.saturation_point")
                        + _td(change) + "</tr>")
        parts += ["<h2>What-if comparison</h2>",
                  _table(["variant", "mean-value", "burst-aware", "ceiling",
                          "change vs first"], rows)]
    parts.append("<h2>Inputs</h2>")
    for name, text in inputs:
        parts.append(f"<p class=\"small\"><code>{_e(name)}</code></p><pre><code>{_e(text)}"
                     "</code></pre>")
    parts += ["<h2>Reproduce</h2>", f"<pre><code>{_e(command)}</code></pre>",
              f'<p class="small">capacity {_e(r.version)}</p></body></html>']
    return "\n".join(parts) + "\n"
