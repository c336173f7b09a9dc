"""Turn structure from timed calls: stages, fan-outs, loops, optional steps, turn types.

* **Turns**: calls grouped by (session, turn id) — the JSONL ``turn`` or the OTLP trace.
* **Stages**: a turn's calls in start order; a call that starts before every earlier call
  of the stage has ended joins it (calls that overlap run in parallel), otherwise it opens
  the next stage. A stage of k calls is a parallel fan-out of k copies.
* **Labels**: a call's ``name`` when logged, else its model — with ``max_tokens`` added
  when one model is called with several (a planner and an answerer often differ only
  there). A label that ever fans out is a parallel label: its stages stay separate steps.
* **Loops**: consecutive single-call stages with the same label are one step run k times.
* **Turn types**: turns with the same sequence of steps form a group; a group whose
  sequence is a subsequence of a bigger group's is merged into it, its missing steps
  counted as run 0 times (a tool loop that made no call, an optional step skipped).
  Each group becomes a turn type weighted by its share of turns.
* A step run 0 or 1 times is ``optional`` (probability = share of 1s), 1 time always a
  ``call``, more a ``repeat`` (or ``parallel`` for parallel labels) with a count
  distribution.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .jsonl import CallRecord

# Two calls overlap when one starts this much before the other ends (seconds): well under
# any real call's duration, above float rounding of Unix timestamps (~0.2 µs).
OVERLAP_EPS_S = 1e-4

Key = tuple[str, bool]  # (label, parallel?)


@dataclass
class Turn:
    """One turn: its calls (indices, start order), stages and bounds (seconds)."""

    session: str
    turn: str
    calls: list[int]
    start: float
    end: float
    stages: list[list[int]] = field(default_factory=list)
    busy_s: float = 0.0
    """Time with a call in flight: the sum of stage durations (seconds)."""


@dataclass
class Element:
    """One step of a turn type: calls with one label, run ``counts[i]`` times in turn i."""

    label: str
    parallel: bool
    counts: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)


@dataclass
class TurnType:
    """A group of turns with one step sequence."""

    name: str
    turns: list[Turn]
    elements: list[Element]
    signatures: Counter[tuple[Key, ...]] = field(default_factory=Counter)


def group_turns(calls: list[CallRecord],
                bounds: dict[tuple[str, str], tuple[float, float]] | None = None) -> list[Turn]:
    """Group calls into turns, in (session, start) order, with stages computed."""
    by_turn: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(calls):
        by_turn[(c.session, c.turn)].append(i)
    turns = []
    for (session, tid), idx in by_turn.items():
        idx.sort(key=lambda i: (calls[i].start, calls[i].end))
        start = calls[idx[0]].start
        end = max(calls[i].end for i in idx)
        if bounds and (session, tid) in bounds:
            b0, b1 = bounds[(session, tid)]
            start, end = min(start, b0), max(end, b1)
        t = Turn(session, tid, idx, start, end)
        stage: list[int] = []
        stage_end = -float("inf")
        busy = 0.0
        for i in idx:
            c = calls[i]
            if stage and c.start < stage_end - OVERLAP_EPS_S:
                stage.append(i)
                stage_end = max(stage_end, c.end)
                continue
            if stage:
                t.stages.append(stage)
                busy += stage_end - calls[stage[0]].start
            stage, stage_end = [i], c.end
        t.stages.append(stage)
        busy += stage_end - calls[stage[0]].start
        t.busy_s = busy
        turns.append(t)
    turns.sort(key=lambda t: (t.session, t.start))
    return turns


def call_labels(calls: list[CallRecord]) -> list[str]:
    """A label per call: its name, else its model (plus max_tokens where that varies)."""
    mts: dict[str, set[int | None]] = defaultdict(set)
    for c in calls:
        if c.name is None:
            mts[c.model].add(c.max_tokens)
    out = []
    for c in calls:
        if c.name is not None:
            out.append(c.name)
        elif len(mts[c.model]) > 1:
            out.append(f"{c.model} max_tokens {c.max_tokens}" if c.max_tokens is not None
                       else f"{c.model} no max_tokens")
        else:
            out.append(c.model)
    return out


def _steps(turn: Turn, labels: list[str], par_labels: set[str]) -> list[tuple[Key, list[int]]]:
    """A turn as (step key, its calls) with single-call runs of one label collapsed."""
    out: list[tuple[Key, list[int]]] = []
    for stage in turn.stages:
        names = sorted({labels[i] for i in stage})
        label = " + ".join(names)
        par = len(stage) > 1 or label in par_labels
        if not par and out and out[-1][0] == (label, False):
            out[-1][1].extend(stage)
        else:
            out.append(((label, par), list(stage)))
    return out


def _embed(small: tuple[Key, ...], big: tuple[Key, ...]) -> list[int] | None:
    """Positions of ``small``'s keys in ``big`` (greedy subsequence match), or None."""
    pos, j = [], 0
    for k in small:
        while j < len(big) and big[j] != k:
            j += 1
        if j == len(big):
            return None
        pos.append(j)
        j += 1
    return pos


def turn_types(turns: list[Turn], labels: list[str]) -> list[TurnType]:
    """Cluster turns by step signature (see the module docstring); largest type first."""
    par_labels = {" + ".join(sorted({labels[i] for i in s}))
                  for t in turns for s in t.stages if len(s) > 1}
    steps = [_steps(t, labels, par_labels) for t in turns]
    sigs = [tuple(k for k, _ in st) for st in steps]
    freq = Counter(sigs)
    templates: list[tuple[Key, ...]] = []
    home: dict[tuple[Key, ...], tuple[tuple[Key, ...], list[int]]] = {}
    for sig in sorted(freq, key=lambda s: (-len(s), -freq[s], s)):
        fits = [(tpl, pos) for tpl in templates if (pos := _embed(sig, tpl)) is not None]
        if fits:
            tpl, pos = max(fits, key=lambda tp: sum(freq[s] for s, (h, _) in home.items()
                                                    if h == tp[0]))
            home[sig] = (tpl, pos)
        else:
            templates.append(sig)
            home[sig] = (sig, list(range(len(sig))))
    types: dict[tuple[Key, ...], TurnType] = {}
    for tpl in templates:
        types[tpl] = TurnType("", [], [Element(lbl, par) for lbl, par in tpl])
    for t, st, sig in zip(turns, steps, sigs, strict=True):
        tpl, pos = home[sig]
        tt = types[tpl]
        tt.turns.append(t)
        tt.signatures[sig] += 1
        counts = [0] * len(tpl)
        for (_, idx), p in zip(st, pos, strict=True):
            el = tt.elements[p]
            counts[p] = len(idx)
            el.calls.extend(idx)
        for el, c in zip(tt.elements, counts, strict=True):
            el.counts.append(c)
    out = sorted(types.values(), key=lambda tt: -len(tt.turns))
    used: Counter[str] = Counter()
    for tt in out:
        base = _slug(tt.elements[0].label) if tt.elements else "turn"
        used[base] += 1
        tt.name = base if used[base] == 1 else f"{base}-{used[base]}"
    return out


def _slug(label: str) -> str:
    s = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label.lower())
    return "-".join(p for p in s.split("-") if p) or "turn"
