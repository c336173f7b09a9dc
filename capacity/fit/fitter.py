"""From read calls to fitted distributions: pacing, model latency, steps and turn types.

Pacing. For consecutive turns of a session, ``busy`` is the time a turn had a call in
flight (the sum of its stages' durations: the turn latency the profile models) and
``s2s`` the time from its start to the next turn's start. The mode is chosen on the
turn's wall time ``wall`` (start to end, the agent's own work inside it included): a
closed loop (think time) makes the pause after the turn's end, ``s2s − wall``,
independent of ``wall``; a cadence makes ``s2s`` independent of it. The mode whose pause
is the less correlated with ``wall`` wins (``--pacing`` overrides). Not ``busy``: the
idle time inside a turn grows with its calls in any real agent (a tool run per tool
call, framework overhead per step), so ``s2s − busy`` correlates with ``busy`` in a
closed loop too, and the comparison could take that for a cadence.
The think time is fitted to ``s2s − busy``: idle time inside a turn (tool execution,
agent overhead), which the profile format has no step for, is folded into the think
time so that the cycle — what every ceiling depends on — is kept; the header says how
much that was.

Model latency. A call lasts ``ttft + output / tokens_per_second``. With ``ttft`` logged,
it is fitted directly and ``tokens_per_second = Σ output / Σ (duration − ttft)``;
without it (spans), ``duration = a + b·output`` by least squares gives
``tokens_per_second = 1/b`` and ``ttft = duration − b·output``. Calls that were retried
or failed are left out of latency fits (their duration includes back-off).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal

import numpy as np

from .families import Fit, fit_continuous, fit_count
from .jsonl import CallRecord
from .readers import ReadResult, TraceError
from .structure import Element, Turn, call_labels, group_turns, turn_types

PacingMode = Literal["think_time", "cadence"]


@dataclass
class PacingFit:
    """The session's pause between turns."""

    mode: PacingMode
    fit: Fit
    why: str
    idle_mean_s: float
    cycle_mean_s: float
    pairs: int


@dataclass
class ModelFit:
    """Latency of one model: ttft distribution and a fixed output rate."""

    name: str
    ttft: Fit
    tokens_per_second: float
    how: str
    calls: int
    weak: str = ""


@dataclass
class CallFit:
    """Distributions of one step's calls."""

    label: str
    model: str
    input_tokens: Fit
    output_tokens: Fit
    cached_input_fraction: float
    max_tokens: int | None
    calls: int
    note: str = ""


@dataclass
class StepFit:
    """One step: ``call``, ``optional``, ``repeat`` or ``parallel`` (maybe optional too)."""

    kind: Literal["call", "optional", "repeat", "parallel"]
    call: CallFit
    count: Fit | None = None
    probability: float | None = None
    turns: int = 0


@dataclass
class TypeFit:
    """A turn type with its weight (share of turns)."""

    name: str
    weight: float
    turns: int
    steps: list[StepFit]
    signatures: int


@dataclass(frozen=True)
class FleetNames:
    """How traced DEPLOYMENT names (what a gateway or ``capacity serve --log`` records)
    map onto a fleet profile: ``call[d]`` is the name a call site names (the one route
    serving ``d``, else ``d`` itself) and ``model[d]`` the latency entry behind ``d``.
    Traced names not in the maps are kept as they are."""

    call: dict[str, str]
    model: dict[str, str]

    def pooled(self) -> dict[str, list[str]]:
        """Latency entry -> the traced deployments whose calls are pooled into it (only
        entries fed by two or more names)."""
        out: dict[str, list[str]] = {}
        for d, m in sorted(self.model.items()):
            out.setdefault(m, []).append(d)
        return {m: ds for m, ds in out.items() if len(ds) > 1}


@dataclass
class FitResult:
    """Everything ``capacity fit`` learnt from the traces."""

    read: ReadResult
    sessions: int
    turns: int
    calls: int
    failed_calls: int
    pacing: PacingFit
    models: dict[str, ModelFit]
    types: list[TypeFit]
    notes: list[str] = field(default_factory=list)
    pacing_arg: PacingMode | None = None
    """The pacing asked for (None: chosen from the traces), to refit with the same choice."""
    fleet: FleetNames | None = None
    """The deployment-name mapping the calls were fitted under (None: names as traced)."""

    def weak_fits(self) -> list[tuple[str, str]]:
        """(where in the profile, why) for every fit marked weak."""
        out: list[tuple[str, str]] = []
        if self.pacing.fit.weak:
            out.append((f"session.{self.pacing.mode}", self.pacing.fit.weak))
        for m in self.models.values():
            if m.ttft.weak:
                out.append((f"models.{m.name}.ttft", m.ttft.weak))
            if m.weak:
                out.append((f"models.{m.name}.tokens_per_second", m.weak))
        for t in self.types:
            for i, s in enumerate(t.steps):
                where = f"session.turns.{t.name}.steps.{i}"
                for what, f in (("count", s.count), ("input_tokens", s.call.input_tokens),
                                ("output_tokens", s.call.output_tokens)):
                    if f is not None and f.weak:
                        out.append((f"{where} {what}", f.weak))
        return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) <= 1e-12 or np.std(b) <= 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def fit_pacing(turns: list[Turn], mode: PacingMode | None) -> PacingFit:
    """Fit think time or cadence from consecutive turns of each session."""
    busy, wall, s2s, idle = [], [], [], []
    for a, b in pairwise(turns):
        if a.session != b.session:
            continue
        busy.append(a.busy_s)
        wall.append(a.end - a.start)
        s2s.append(b.start - a.start)
        idle.append(max(0.0, (a.end - a.start) - a.busy_s))
    if not busy:
        raise TraceError("cannot fit the pacing: no session has two turns (record a session "
                         "id: the JSONL 'session' key, or session.id / gen_ai.conversation.id "
                         "on the turn span)")
    r, w, c = np.asarray(busy), np.asarray(wall), np.asarray(s2s)
    think = np.maximum(c - r, 0.0)
    overlapped = int(np.sum(c - r < -1e-6))
    # The pause after the turn's end (clipped like the think time: a cadence's overruns).
    corr_cadence, corr_think = _corr(w, c), _corr(w, np.maximum(c - w, 0.0))
    if mode is None:
        if np.std(w) <= 1e-9 * max(1.0, float(np.mean(w))):
            mode, why = "think_time", "turn duration is constant: think time and cadence agree"
        else:
            mode = "cadence" if abs(corr_cadence) < abs(corr_think) else "think_time"
            why = (f"corr(turn duration, start-to-start) {corr_cadence:+.2f} vs corr(turn "
                   f"duration, pause after its end) {corr_think:+.2f}: the "
                   f"{mode.replace('_', ' ')} is the one independent of the turn's duration")
    else:
        why = "chosen with --pacing"
    x = c if mode == "cadence" else think
    fit = fit_continuous(x, "duration")
    if overlapped:
        why += f"; {overlapped} turn(s) started before the previous one of their session ended"
    return PacingFit(mode, fit, why, float(np.mean(idle)), float(np.mean(c)), len(busy))


def fit_model(name: str, calls: list[CallRecord]) -> ModelFit:
    """ttft and tokens/s of one model from its clean (not retried, succeeded) calls."""
    clean = [c for c in calls if c.ok and c.retries == 0] or [c for c in calls if c.ok]
    dur = np.array([c.end - c.start for c in clean])
    out = np.array([float(c.output_tokens) for c in clean])
    with_ttft = [c for c in clean if c.ttft is not None]
    weak = ""
    if len(with_ttft) >= 0.9 * len(clean):
        tt = np.array([c.ttft for c in with_ttft], dtype=np.float64)
        gen = np.array([c.end - c.start - (c.ttft or 0.0) for c in with_ttft])
        o = np.array([float(c.output_tokens) for c in with_ttft])
        ok = (gen > 1e-9) & (o > 0)
        tps = float(o[ok].sum() / gen[ok].sum()) if ok.any() else math.inf
        how = f"Σ output / Σ (duration − ttft) over {int(ok.sum()):,} calls"
        ttft = fit_continuous(tt, "duration")
    else:
        b = 0.0
        if len(clean) >= 3 and np.ptp(out) > 0:
            b, _ = np.polyfit(out, dur, 1)
        # A slope that moves durations by less than 1e-9 of their mean across the output
        # range is float noise (equal durations gave ~1e-16 s per token: 1e16 tokens/s).
        if b > 0 and b * np.ptp(out) > 1e-9 * float(np.mean(dur)):
            tps = 1.0 / float(b)
            ttft = fit_continuous(np.maximum(dur - out * b, 0.0), "duration")
            r = np.corrcoef(out, dur)[0, 1] if np.std(dur) > 0 else 1.0
            how = (f"duration = ttft + output/rate by least squares over {len(clean):,} calls "
                   f"(no ttft recorded; r = {r:.2f})")
        else:
            tps = math.inf
            ttft = fit_continuous(dur, "duration")
            how = "duration does not grow with output: the whole duration is the ttft"
    if not math.isfinite(tps) or tps <= 0:
        tps = 1e6
        weak = "latency could not be split into ttft and generation; ttft carries it all"
    return ModelFit(name, ttft, tps, how, len(clean), weak)


def _mode(values: list[int | None]) -> int | None:
    vals = [v for v in values if v is not None]
    return Counter(vals).most_common(1)[0][0] if vals else None


def fit_call(el: Element, calls: list[CallRecord]) -> CallFit:
    """Token distributions and max_tokens of one step's calls."""
    cs = [calls[i] for i in el.calls]
    models = Counter(c.model for c in cs)
    model = models.most_common(1)[0][0]
    inp = np.array([float(c.input_tokens) for c in cs])
    raw = np.array([float(c.output_tokens) for c in cs])
    sent = np.array([math.inf if c.max_tokens is None else float(c.max_tokens) for c in cs])
    # A provider stops at max_tokens, so a logged output above the call's own max_tokens
    # is a logging mismatch (hidden reasoning tokens, another cap than the one sent). The
    # profile cuts output at max_tokens, so such outputs are counted as cut there — and
    # said, as a weak fit, with how much output the profile drops.
    outp = np.minimum(raw, sent)
    over = raw > sent
    mt = _mode([c.max_tokens for c in cs])
    cap = float(mt) if mt is not None and np.any(outp >= mt) else None
    total_in = float(inp.sum())
    cached = float(sum(c.cached_input_tokens for c in cs)) / total_in if total_in > 0 else 0.0
    notes = []
    if len(models) > 1:
        notes.append(f"models {dict(models)}: written as {model}")
    if len({c.max_tokens for c in cs}) > 1:
        notes.append(f"max_tokens varies {sorted({str(c.max_tokens) for c in cs})}: the most "
                     "common is written")
    out_fit = fit_continuous(outp, "tokens", cap)
    if np.any(over):
        clamp = (f"{int(over.sum()):,} of {len(cs):,} calls logged more output tokens than "
                 f"their max_tokens (up to {raw[over].max():,.0f} against "
                 f"{sent[over].min():,.0f}); counted as cut at max_tokens, as the profile "
                 f"cuts them: mean output {raw.mean():,.1f} logged, {outp.mean():,.1f} once "
                 "cut — check the log (hidden reasoning tokens? another max_tokens than the "
                 "one sent?)")
        out_fit = replace(out_fit, weak=f"{out_fit.weak}; {clamp}" if out_fit.weak else clamp)
    return CallFit(el.label, model, fit_continuous(inp, "tokens"), out_fit, round(cached, 4),
                   mt, len(cs), "; ".join(notes))


def _step(el: Element, calls: list[CallRecord]) -> StepFit:
    call = fit_call(el, calls)
    counts = np.asarray(el.counts)
    ran = counts[counts > 0]
    if el.parallel:
        p = float(len(ran) / len(counts))
        return StepFit("parallel", call, fit_count(ran), None if p == 1.0 else p, len(counts))
    if np.all(counts == 1):
        return StepFit("call", call, None, None, len(counts))
    if set(counts.tolist()) <= {0, 1}:
        return StepFit("optional", call, None, float(counts.mean()), len(counts))
    return StepFit("repeat", call, fit_count(counts), None, len(counts))


def scale_times(read: ReadResult, k: float | None = None) -> None:
    """Stretch the times in place to model seconds: traces recorded against ``capacity
    serve --time-scale K`` are K× short (wall seconds × K = model seconds).

    A JSONL log whose lines record ``time_scale`` is stretched by that K, with a note;
    ``k`` (``fit --time-scale``) stretches the other traces (None: 1) and, given, must
    equal every recorded K (else :class:`TraceError` naming the file and line). The calls
    stretched by one factor are stretched around their earliest start (logs recorded at
    different K are different runs, whose sessions are their own).
    """
    for name, (rk, line) in read.recorded_scales.items():
        if k is not None and not math.isclose(k, rk, rel_tol=1e-9):
            raise TraceError(f"{name}:{line}: the log records time_scale {rk:g} (it was "
                             f"recorded at --time-scale {rk:g}) but --time-scale {k:g} was "
                             f"given; give --time-scale {rk:g}, or none")
        read.notes.append(f"{name}: times multiplied by {rk:g}, the time scale the log "
                          "records (time_scale)")
    other = 1.0 if k is None else k

    def factor(c: CallRecord) -> float:
        return other if c.time_scale is None else c.time_scale

    if all(factor(c) == 1.0 for c in read.calls) and (other == 1.0 or not read.turn_bounds):
        return
    read.time_scale *= other
    t0: dict[float, float] = {}
    for c in read.calls:
        t0[factor(c)] = min(t0.get(factor(c), math.inf), c.start)
    if read.turn_bounds:  # OTLP root spans: their calls record no time scale
        t0.setdefault(other, min(a for a, _ in read.turn_bounds.values()))

    def f(t: float, x: float) -> float:
        return t0[x] + (t - t0[x]) * x

    read.calls = [replace(c, start=f(c.start, x), end=f(c.end, x), time_scale=None,
                          ttft=None if c.ttft is None else c.ttft * x)
                  for c in read.calls for x in (factor(c),)]
    read.turn_bounds = {key: (f(a, other), f(b, other))
                        for key, (a, b) in read.turn_bounds.items()}


def fit_read(read: ReadResult, pacing: PacingMode | None = None,
             fleet: FleetNames | None = None) -> FitResult:
    """Fit everything from what the readers kept; raises :class:`TraceError` on no turns.

    With ``fleet``, call sites name ``fleet.call`` of each traced deployment (so the spills
    of one call site between deployments of one route stay one step) and latency is fitted
    per ``fleet.model`` entry, pooling the calls of deployments that share a model."""
    where = ", ".join(read.files) or "the input"
    if not read.calls:
        detail = ""
        if read.skipped:
            reason, n = read.skipped.most_common(1)[0]
            detail = (f"; {sum(read.skipped.values()):,} LLM span(s) skipped, e.g. {n:,} "
                      f"with {reason} (first at {read.skipped_at[reason]})")
        raise TraceError(f"{where}: zero turns: no LLM call found among {read.spans:,} "
                         f"span(s){detail}" if read.spans else f"{where}: zero turns: no "
                         f"LLM call found{detail}")
    ok = [c for c in read.calls if c.ok]
    failed = len(read.calls) - len(ok)
    if not ok:
        raise TraceError(f"{where}: zero turns: all {failed:,} LLM calls failed")
    notes: list[str] = list(read.notes)
    if read.sessionless_turns:
        sessions = {c.session for c in ok}
        if sessions == {""}:
            ok = _one_session(ok, where)
            notes.append("no session id on any trace: the turns never overlap, so they were "
                         "read as one session")
        else:
            notes.append(f"{read.sessionless_turns:,} call(s) in traces without a session id "
                         "were grouped as their own session")
    # Latency is a property of the model behind a deployment: fitted from the calls as
    # served; the turn structure from the names the profile's calls use.
    served: dict[str, list[CallRecord]] = {}
    for c in ok:
        served.setdefault(fleet.model.get(c.model, c.model) if fleet else c.model, []).append(c)
    if fleet is not None:
        ok = [replace(c, model=fleet.call.get(c.model, c.model)) for c in ok]
    calls = ok
    bounds = {k: v for k, v in read.turn_bounds.items()}
    turns = group_turns(calls, bounds)
    if not turns:
        raise TraceError(f"{where}: zero turns")
    labels = call_labels(calls)
    types = turn_types(turns, labels)
    pace = fit_pacing(turns, pacing)
    models = {m: fit_model(m, cs) for m, cs in sorted(served.items())}
    tfits = [TypeFit(tt.name, len(tt.turns) / len(turns), len(tt.turns),
                     [_step(el, calls) for el in tt.elements], len(tt.signatures))
             for tt in types]
    if failed:
        notes.append(f"{failed:,} call(s) whose final attempt failed were left out")
    retried = sum(1 for c in calls if c.retries)
    if retried:
        notes.append(f"{retried:,} call(s) were retried: left out of latency fits")
    return FitResult(read, len({t.session for t in turns}), len(turns), len(calls), failed,
                     pace, models, tfits, notes, pacing, fleet)


def _one_session(calls: list[CallRecord], where: str) -> list[CallRecord]:
    spans: dict[str, tuple[float, float]] = {}
    for c in calls:
        s0, s1 = spans.get(c.turn, (c.start, c.end))
        spans[c.turn] = (min(s0, c.start), max(s1, c.end))
    order = sorted(spans.values())
    for (_, e0), (s1, _) in pairwise(order):
        if s1 < e0:
            raise TraceError(
                f"{where}: no session id on any trace and turns overlap in time, so they "
                "come from several sessions: set session.id (OpenInference) or "
                "gen_ai.conversation.id on each turn's span")
    return [CallRecord(session="session", turn=c.turn, start=c.start, end=c.end, model=c.model,
                       input_tokens=c.input_tokens, output_tokens=c.output_tokens,
                       cached_input_tokens=c.cached_input_tokens, max_tokens=c.max_tokens,
                       status=c.status, retries=c.retries, name=c.name, ttft=c.ttft)
            for c in calls]


__all__ = ["FitResult", "FleetNames", "fit_read"]
