"""Which knob moves the ceiling most: the ceiling's sensitivity to each parameter.

Every parameter that can move the ceiling is varied on its own, down and up (±20% by
default), and the ceiling of each variant is computed: the burst-aware analytic ceiling
by default, or the simulated N* (``method="simulate"``, common random numbers: the same
seed for the baseline and every variant, so the differences are not seed noise).
Parameters are ranked by how many sessions the change moves the ceiling (the larger of
the two sides), ties broken by how far the mean-value ceiling moves.

The parameters (each named by its ``--set`` key path):

* every quota limit (``quotas.Q.rpm``, ...), and each enforcement window length (or
  token-bucket depth, ``burst``) that some limit is checked over (daily windows excepted);
* fan-out (``parallel.count``), loop counts (``repeat.count``) and the chance of an
  optional step (``optional.probability``): the calls per turn;
* each call's input and output tokens and its ``max_tokens`` (or the model's default);
* think time or cadence, the turn mix weights (when there are several turn types),
  each model's time to first token and generation speed;
* retry settings (``max_retries``, ``initial_delay``, ``max_delay``) and client pacing.

Variants are built as ``--set`` overrides and loaded by the same loader as a user's
input, so each is validated like one: a variant that is not a valid profile (a window
too short to admit one request, ``max_tokens`` below every output) is reported as such,
never computed. How a value is moved:

* a number is multiplied by ``1 ± p``; a whole-number setting (``max_tokens``,
  ``max_retries``, ``concurrency``) is rounded, and moves by at least one;
* a distribution is scaled (every value, bound, mean or median multiplied), so its mean
  moves by exactly ``± p``;
* a count (fan-out, loop) must stay a whole number: each value ``v`` becomes a choice of
  ⌊v·f⌋ and ⌈v·f⌉ weighted so that the mean is exactly ``v·f`` (a fan-out of 3 raised
  20% is 4 in 60% of turns, 3 in the others: 3.6 on average);
* a probability is capped at 1;
* an absolute change (``--vary key=±1``, ``±2s``) moves the mean by that much (a
  distribution is scaled to get there).

The variants differ from the baseline in one value only, so the ranking is a local
(one-at-a-time) sensitivity: interactions between parameters are not measured.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from capacity._version import __version__
from capacity.errors import CapacityError, ParameterError, ProfileError
from capacity.jsonsafe import clean
from capacity.model.dist import Distribution, format_duration, parse_duration
from capacity.model.population import describe
from capacity.profile.schema import (
    DIMENSION_PERIOD_S,
    Block,
    CallStep,
    LimitSpec,
    OptionalStep,
    ParallelStep,
    Profile,
    RepeatStep,
    SessionSpec,
    iter_calls,
    serving,
)
from capacity.whatif.ceiling import SimSettings

DEFAULT_CHANGE = 0.20
"""The default relative change of every parameter, each way (±20%)."""
DEFAULT_TOP = 6
"""Parameters simulated with ``method="simulate"`` (the analytic ranking's top ones)."""

Kind = Literal["duration", "tokens", "count", "number", "fraction", "limit"]
LoadFn = Callable[[Sequence[str]], Profile]
"""Loads the profile with extra ``--set`` overrides (raising ProfileError when invalid)."""


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parameter:
    """One value of the profile that can move the ceiling.

    Attributes
    ----------
    key : its ``--set`` key path, e.g. ``session.turns.research.steps.1.parallel.count``.
    label : plain words, e.g. ``synthesis fan-out``.
    group : what kind of knob (quota, window, fan-out, tokens, max_tokens, pacing, ...).
    value : the current value: a number or a :class:`Distribution`.
    kind : how it is shown and moved (duration in seconds, tokens, count, ...).
    unit : the limit's unit for quota limits (``rpm``, ``tpm``, ...), else empty.
    integer : a whole-number setting (rounded when moved, by at least one).
    path : the key path as parts (when a name holds a dot, ``key`` alone is ambiguous).
    """

    key: str
    label: str
    group: str
    value: float | Distribution
    kind: Kind
    unit: str = ""
    integer: bool = False
    path: tuple[str | int, ...] = ()

    @property
    def set_path(self) -> tuple[str | int, ...]:
        """The key path a variant's ``--set`` writes: a quota limit's ``.limit`` (so
        its enforcement, when written as a mapping, is kept), else the parameter's."""
        parts = self.path or tuple(int(p) if p.isdigit() else p for p in self.key.split("."))
        return (*parts, "limit") if self.kind == "limit" and self.group == "quota" else parts

    @property
    def mean(self) -> float:
        """The current value (a distribution's mean)."""
        return self.value.mean if isinstance(self.value, Distribution) else float(self.value)

    def show(self, x: float | None = None) -> str:
        """``x`` (default: the current value) in words, with its unit; a mean for a
        distribution (``mean 6,500 tokens``, ``3.6 on average``)."""
        x = self.mean if x is None else x
        text = show_value(x, self.kind, self.unit)
        if isinstance(self.value, Distribution) and not self.value.is_fixed:
            return "mean " + text
        if self.kind == "count" and not self.integer and not float(x).is_integer():
            return text + " on average"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        value: Any = (self.value.to_dict() if isinstance(self.value, Distribution)
                      else self.value)
        return clean({"key": self.key, "label": self.label, "group": self.group,
                      "value": value, "mean": self.mean, "kind": self.kind,
                      "unit": self.unit})


def show_value(x: float, kind: Kind, unit: str = "") -> str:
    """``x`` in words with its unit: ``2.5m``, ``4,800 tokens``, ``150 rpm``, ``60%``."""
    if kind == "duration":
        return format_duration(x)
    if kind == "fraction":
        return f"{x:.0%}" if round(x * 100, 6).is_integer() else f"{x:.1%}"
    if kind == "limit":
        return f"{x:,.0f} {unit}" if float(x).is_integer() else f"{x:,.4g} {unit}"
    text = f"{x:,.0f}" if float(x).is_integer() else f"{x:,.4g}"
    return f"{text} tokens" if kind == "tokens" else text


def _key(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path)


def _at(path: tuple[str | int, ...], label: str, group: str, value: Any, kind: Kind,
        **kw: Any) -> Parameter:
    """The parameter at key path ``path``."""
    return Parameter(_key(path), label, group, value, kind, path=path, **kw)


def _call_label(profile: Profile, turn: str, call_name: str | None, where: str) -> str:
    """A call's name; ``turn/name`` when another turn type has a call of that name."""
    if not call_name:
        return where
    turns = {t for t, spec in profile.session.turns.items()
             for c, _ in iter_calls(spec.steps, ()) if c.name == call_name}
    return f"{turn}/{call_name}" if len(turns) > 1 else call_name


def _block_name(block: Block, turn: str, index: int) -> str:
    if block.call is not None and block.call.name:
        return block.call.name
    return f"{turn} step {index + 1}"


def _steps(profile: Profile, turn: str, steps: Sequence[Any],
           path: tuple[str | int, ...]) -> Iterator[Parameter]:
    """Fan-out, loop counts and optional-step chances, depth first."""
    for i, step in enumerate(steps):
        if isinstance(step, CallStep):
            continue
        for kind, cls in (("parallel", ParallelStep), ("repeat", RepeatStep),
                          ("optional", OptionalStep)):
            if not isinstance(step, cls):
                continue
            block: Block = getattr(step, kind)
            name = _call_label(profile, turn, _block_name(block, turn, i), "")
            p = (*path, i, kind)
            if kind == "parallel":
                yield _at((*p, "count"), f"{name} fan-out", "fan-out",
                          block.count, "count")  # type: ignore[attr-defined]
            elif kind == "repeat":
                yield _at((*p, "count"), f"{name} repeats", "calls per turn",
                          block.count, "count")  # type: ignore[attr-defined]
            else:
                yield _at((*p, "probability"), f"chance of {name}", "calls per turn",
                          block.probability, "fraction")  # type: ignore[attr-defined]
            if block.steps is not None:
                yield from _steps(profile, turn, block.steps, (*p, "steps"))


def parameters(profile: Profile) -> list[Parameter]:
    """Every parameter of ``profile`` that can move its ceiling, in profile order.

    Quotas no call touches are left out (they cannot bind), as are values that are 0
    (a relative change leaves them at 0).
    """
    used_models = {c.model for _, _, t in profile.all_turns()
                   for c, _ in iter_calls(t.steps, ())}
    # A call names a logical model: its quotas are those of every deployment serving it.
    used_quotas = {qn for m in used_models for target in serving(profile, m)
                   for qn in profile.quotas_for(target)}
    out: list[Parameter] = []
    for qname, q in profile.quotas.items():
        if qname not in used_quotas:
            continue
        quota_enforcement = False
        for dim, lim in q.limits().items():
            out.append(Parameter(f"quotas.{qname}.{dim}", f"{qname}.{dim} limit", "quota",
                                 lim.limit, "limit", dim, path=("quotas", qname, dim)))
            if lim.enforcement is not None:
                out.extend(_enforcement(("quotas", qname, dim), f"{qname}.{dim}",
                                        lim.enforcement.type, lim.enforcement.window,
                                        lim.enforcement.burst))
            elif DIMENSION_PERIOD_S[dim] <= 60:  # daily limits default to day windows
                quota_enforcement = True
        if quota_enforcement:
            e = q.enforcement
            out.extend(_enforcement(("quotas", qname), qname, e.type, e.window, e.burst))
    out.extend(_session_parameters(profile, profile.session, ("session",), ""))
    for pname, pop in profile.populations.items():
        # Another population: its size (held count or share of N), pacing and turns.
        where: tuple[str | int, ...] = ("populations", pname)
        if pop.sessions is not None:
            out.append(_at((*where, "sessions"), f"{pname} sessions (held)", "populations",
                           pop.sessions, "count", integer=True))
        if pop.share is not None:
            out.append(_at((*where, "share"), f"{pname} share of N", "populations",
                           pop.share, "fraction"))
        out.extend(_session_parameters(profile, pop, where, f"{pname} "))
    for mname, model in profile.models.items():
        if mname not in used_models:
            continue
        out.append(Parameter(f"models.{mname}.ttft", f"{mname} time to first token",
                             "latency", model.ttft, "duration",
                             path=("models", mname, "ttft")))
        out.append(Parameter(f"models.{mname}.tokens_per_second",
                             f"{mname} generation speed (tokens/s)", "latency",
                             model.tokens_per_second, "number",
                             path=("models", mname, "tokens_per_second")))
        if model.max_tokens is not None and any(
                c.max_tokens is None and c.model == mname
                for _, _, t in profile.all_turns() for c, _ in iter_calls(t.steps, ())):
            out.append(Parameter(f"models.{mname}.max_tokens",
                                 f"{mname} default max_tokens", "max_tokens",
                                 model.max_tokens, "tokens", integer=True,
                                 path=("models", mname, "max_tokens")))
    r = profile.retry
    out.append(Parameter("retry.max_retries", "retries per call", "retry", r.max_retries,
                         "count", integer=True))
    out.append(Parameter("retry.initial_delay", "first retry backoff", "retry",
                         r.initial_delay, "duration"))
    out.append(Parameter("retry.max_delay", "longest retry backoff", "retry", r.max_delay,
                         "duration"))
    if profile.pacing is not None:
        if profile.pacing.rpm is not None:
            out.append(Parameter("pacing.rpm", "client pacing rate", "client pacing",
                                 profile.pacing.rpm, "limit", "rpm"))
        if profile.pacing.concurrency is not None:
            out.append(Parameter("pacing.concurrency", "client concurrency cap",
                                 "client pacing", profile.pacing.concurrency, "count",
                                 integer=True))
    return [p for p in out if p.mean > 0]


def _session_parameters(profile: Profile, session: SessionSpec,
                        prefix: tuple[str | int, ...], label: str) -> list[Parameter]:
    """Pacing, turn mix, fan-out and per-call tokens of one population (``session`` or
    one of ``populations``, whose labels start with its name)."""
    out: list[Parameter] = []
    pause_key = "think_time" if session.think_time is not None else "cadence"
    out.append(_at((*prefix, pause_key), label + pause_key.replace("_", " "), "pacing",
                   session.pause, "duration"))
    several = len(session.turns) > 1
    at = len(prefix) + 3  # the step index in a call's key path
    for tname, turn in session.turns.items():
        base = (*prefix, "turns", tname, "steps")
        if several:
            out.append(_at((*prefix, "turns", tname, "weight"),
                           f"{label}share of {tname} turns (weight)", "turn mix",
                           turn.weight, "number"))
        out.extend(dataclasses.replace(x, label=label + x.label)
                   for x in _steps(profile, tname, turn.steps, base))
        for call, path in iter_calls(turn.steps, base):
            where = f"{tname} step {int(path[at]) + 1}"
            name = label + _call_label(profile, tname, call.name, where)
            out.append(_at((*path, "input_tokens"), f"{name} input tokens", "tokens",
                           call.input_tokens, "tokens"))
            out.append(_at((*path, "output_tokens"), f"{name} output tokens", "tokens",
                           call.output_tokens, "tokens"))
            if call.max_tokens is not None:
                out.append(_at((*path, "max_tokens"), f"{name} max_tokens", "max_tokens",
                               call.max_tokens, "tokens", integer=True))
    return out


def _enforcement(path: tuple[str, ...], name: str, kind: str, window: float,
                 burst: float) -> list[Parameter]:
    if kind == "token_bucket":
        p = (*path, "enforcement", "burst")
        return [Parameter(_key(p), f"{name} token bucket depth", "window", burst,
                          "duration", path=p)]
    p = (*path, "enforcement", "window")
    return [Parameter(_key(p), f"{name} enforcement window", "window", window, "duration",
                      path=p)]


def resolve(profile: Profile, key: str) -> Parameter:
    """The parameter at ``key`` (a ``--set`` key path to a number or a distribution)."""
    node: Any = profile
    for part in key.split("."):
        if isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, BaseModel) and part in type(node).model_fields:
            node = getattr(node, part)
        else:
            raise ParameterError("vary", "no such key in the profile", key)
    if isinstance(node, LimitSpec):
        return Parameter(key, key, "quota", node.limit, "limit", key.rsplit(".", 1)[-1])
    if isinstance(node, Distribution):
        kinds: dict[str, Kind] = {"duration": "duration", "tokens": "tokens",
                                  "count": "count", "number": "number"}
        return Parameter(key, key, "other", node, kinds[node.quantity])
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise ParameterError("vary", "not a number or a distribution "
                             f"(got {type(node).__name__})", key)
    return Parameter(key, key, "other", node, "number", integer=isinstance(node, int))


# ---------------------------------------------------------------------------------------
# Variations: how far each way
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variation:
    """How far a parameter moves: relative (a fraction, 0.2 for 20%) or absolute (in the
    parameter's own unit: seconds, tokens, requests per period). ``None``: that side is
    not evaluated."""

    down: float | None = DEFAULT_CHANGE
    up: float | None = DEFAULT_CHANGE
    absolute: bool = False
    timed: bool = False
    """Written with a time unit (``±2s``): it moves durations only."""

    @property
    def text(self) -> str:
        """As written: ``±20%``, ``+10%``, ``±1``."""
        def num(x: float) -> str:
            return f"{x * 100:g}%" if not self.absolute else f"{x:g}"

        if self.down is not None and self.up is not None and self.down == self.up:
            return "±" + num(self.up)
        parts: list[str] = []
        if self.down is not None:
            parts.append("-" + num(self.down))
        if self.up is not None:
            parts.append("+" + num(self.up))
        return "/".join(parts)


_VARY = re.compile(r"^(±|\+-|-\+|\+|-)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%|[a-z]*)$")


def parse_vary(text: str) -> tuple[str, Variation | None]:
    """``KEY=SPEC`` → (key pattern, variation); ``None`` for ``KEY=off`` (leave it out).

    SPEC is ``±P%`` (both ways), ``+P%`` or ``-P%`` (one way), or an absolute change
    ``±X`` in the key's own unit (``±1``, ``+2s``, ``-500``). KEY is a ``--set`` key path
    and may use shell wildcards (``*.max_tokens``).
    """
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise ParameterError("vary", "expected KEY=±P% (e.g. quotas.deployment.rpm=±10%), "
                             "KEY=±X or KEY=off", text)
    if spec.lower() == "off":
        return key, None
    m = _VARY.match(spec)
    if m is None:
        raise ParameterError("vary", "expected a change such as ±20%, +10%, -5%, ±1 or ±2s "
                             "after '='", text)
    sign, number, unit = m.groups()
    if unit == "%":
        mag, absolute = float(number) / 100.0, False
        if not 0 < mag < 1 and sign != "+":
            raise ParameterError("vary", "a relative change down must be between 0% and 100%",
                                 text)
    else:
        absolute = True
        try:
            mag = parse_duration(number + unit) if unit else float(number)
        except ValueError:
            raise ParameterError("vary", f"unknown unit {unit!r} (use %, or ms, s, m, h for "
                                 "durations)", text) from None
    if not mag > 0 or not math.isfinite(mag):
        raise ParameterError("vary", "the change must be positive", text)
    timed = absolute and bool(unit)
    if sign == "+":
        return key, Variation(None, mag, absolute, timed)
    if sign == "-":
        return key, Variation(mag, None, absolute, timed)
    return key, Variation(mag, mag, absolute, timed)


# ---------------------------------------------------------------------------------------
# Moving one value
# ---------------------------------------------------------------------------------------


def _num(x: float) -> float | int:
    """A tidy number for YAML (12 significant digits; whole numbers as ints)."""
    y = float(f"{x:.12g}")
    return int(y) if y.is_integer() and abs(y) < 2**53 else y


def _split_counts(values: Sequence[float], weights: Sequence[float],
                  factor: float) -> dict[str, Any]:
    """A count distribution scaled by ``factor`` with whole values and the exact mean: each
    value ``v·f`` becomes ⌊v·f⌋ or ⌈v·f⌉ with the weights that keep the mean."""
    mass: dict[int, float] = {}
    for v, w in zip(values, weights, strict=True):
        x = v * factor
        lo = math.floor(x + 1e-9)
        frac = 0.0 if abs(x - round(x)) < 1e-9 else x - lo
        mass[lo] = mass.get(lo, 0.0) + w * (1.0 - frac)
        if frac > 0:
            mass[lo + 1] = mass.get(lo + 1, 0.0) + w * frac
    items = sorted((k, w) for k, w in mass.items() if w > 1e-12)
    if len(items) == 1:
        return {"fixed": items[0][0]}
    return {"choice": {"values": [k for k, _ in items],
                       "weights": [_num(w) for _, w in items]}}


def scale_distribution(d: Distribution, factor: float) -> dict[str, Any]:
    """The YAML form of ``d`` with its mean multiplied by ``factor`` (base units: seconds,
    tokens); counts stay whole numbers (see :func:`_split_counts`)."""
    if d.quantity == "count":
        if d.kind == "fixed":
            return _split_counts(d.params, (1.0,), factor)
        if d.kind == "uniform":
            lo, hi = int(d.params[0]), int(d.params[1])
            n = hi - lo + 1
            return _split_counts(range(lo, hi + 1), [1.0 / n] * n, factor)
        return _split_counts(d.values, d.weights, factor)
    if d.kind == "fixed":
        return {"fixed": _num(d.params[0] * factor)}
    if d.kind == "uniform":
        return {"uniform": [_num(p * factor) for p in d.params]}
    if d.kind == "exponential":
        return {"exponential": _num(d.params[0] * factor)}
    if d.kind == "lognormal":
        return {"lognormal": {"median": _num(d.params[0] * factor),
                              "p95": _num(d.params[1] * factor)}}
    return {"choice": {"values": [_num(v * factor) for v in d.values],
                       "weights": [_num(w) for w in d.weights]}}


@dataclass(frozen=True, slots=True)
class Move:
    """One side's new value: the ``--set`` to apply, or why there is none."""

    setting: str | None
    value: float | None
    change: float | None
    skipped: str | None = None


def move(p: Parameter, direction: int, variation: Variation,
         profile: Profile | None = None) -> Move:
    """The ``--set`` that moves ``p`` down (``direction=-1``) or up (``+1``); ``profile``
    (the baseline) lets a key under a dotted name (``models.gpt-4.1``) be written."""
    mag = variation.up if direction > 0 else variation.down
    if mag is None:
        return Move(None, None, None, "not asked for")
    base = p.mean
    target = base + direction * mag if variation.absolute else base * (1 + direction * mag)
    if p.integer:
        rounded = round(target)
        if rounded == round(base):  # a whole-number setting moves by at least one
            rounded = round(base) + direction
        target = float(rounded)
    if p.kind == "fraction":
        target = min(target, 1.0)
    if target <= 0 or not math.isfinite(target):
        return Move(None, None, None, f"would be {show_value(target, p.kind, p.unit)}: "
                                      "not a positive value")
    if target == base:
        return Move(None, None, None, f"already at its largest value, "
                                      f"{show_value(base, p.kind, p.unit)}")
    value: Any = (scale_distribution(p.value, target / base)
                  if isinstance(p.value, Distribution) else _num(target))
    setting = override(p.set_path, value, profile)
    if setting is None:
        return Move(None, None, None, "a name on its key path holds '.' or '=', which "
                                      "--set cannot address")
    return Move(setting, target, target / base - 1.0)


def override(path: Sequence[str | int], value: Any,
             profile: Profile | None = None) -> str | None:
    """The ``--set`` text that puts ``value`` at ``path``.

    A name holding '.' or '=' (``models.gpt-4.1``) cannot be written in a dotted key
    path: for a top-level section's entry (``models``, ``quotas``) the whole section of
    ``profile`` is restated, with the one value changed (every other value as validated).
    None when that is not possible (no profile, or such a name deeper down).
    """
    bad = [i for i, part in enumerate(path) if isinstance(part, str) and (
        "." in part or "=" in part)]
    if not bad:
        return f"{_key(path)}={json.dumps(value, ensure_ascii=True)}"
    section = getattr(profile, str(path[0]), None) if profile is not None else None
    if bad != [1] or not isinstance(section, dict) or any(
            isinstance(part, int) for part in path):
        return None
    data: dict[str, Any] = {}
    for name, spec in section.items():
        entry = spec.model_dump(mode="json", exclude_none=True)
        entry.pop("preset", None)  # its fields are all restated
        data[name] = entry
    node: Any = data
    for part in path[1:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return f"{path[0]}={json.dumps(data, ensure_ascii=True)}"


# ---------------------------------------------------------------------------------------
# Ceilings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """The ceiling of one profile variant.

    Attributes
    ----------
    sessions : the burst-aware ceiling, or the simulated N* (sessions).
    mean_ceiling : the mean-value (napkin) ceiling, sessions (fractional).
    ci : the simulated N*'s 95% confidence interval, when simulated.
    method : ``analytic`` or ``simulate`` (a simulation over budget stays analytic).
    binding : the binding constraint (``quota.dimension``).
    """

    sessions: int
    mean_ceiling: float
    ci: tuple[int, int] | None = None
    method: str = "analytic"
    binding: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return clean({"sessions": self.sessions, "mean_ceiling": self.mean_ceiling,
                      "ci": list(self.ci) if self.ci else None, "method": self.method,
                      "binding": self.binding})


def analytic_figure(profile: Profile) -> Figure:
    """The burst-aware and mean-value ceilings of ``profile``."""
    from capacity.analytic.model import analyze

    r = analyze(profile)
    return Figure(r.burst_ceiling, r.mean_ceiling, None, "analytic", r.binding_name)


def simulated_figure(profile: Profile, sim: SimSettings) -> Figure:
    """The simulated N* of ``profile`` with ``sim``'s seed (the analytic figure, marked
    so, when the simulation is over budget)."""
    from capacity.whatif.ceiling import ceiling

    # Each knob's N* beside the base's, all over the same horizon (not measured again).
    r = ceiling(profile, "simulate", sim=sim, settle=False)
    binding = r.binding_name
    if r.simulated is None:
        return Figure(r.burst_ceiling, r.mean_ceiling, None, "analytic", binding)
    s = r.simulated
    return Figure(int(s.n_star), r.mean_ceiling, (int(s.n_lo), int(s.n_hi)), "simulate",
                  binding)


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One side (down or up) of a parameter's variation and the ceiling it gives."""

    direction: int
    move: Move
    figure: Figure | None = None
    delta: int | None = None
    error: str | None = None

    @property
    def skipped(self) -> str | None:
        """Why this side has no ceiling (not asked, impossible, invalid), else None."""
        return self.move.skipped or self.error

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return clean({"direction": "up" if self.direction > 0 else "down",
                      "set": self.move.setting, "value": self.move.value,
                      "change": self.move.change,
                      "ceiling": self.figure.to_dict() if self.figure else None,
                      "delta_sessions": self.delta, "skipped": self.skipped})


def _sessions(n: int) -> str:
    return f"{n:,} session{'s' if n != 1 else ''}"


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    """One parameter: its variation, both sides and what they do to the ceiling."""

    parameter: Parameter
    variation: Variation
    down: Side
    up: Side
    base: Figure

    @property
    def sides(self) -> tuple[Side, Side]:
        """(down, up)."""
        return self.down, self.up

    @property
    def swing(self) -> int | None:
        """Sessions the ceiling moves on the side that moves it most (None: no side)."""
        ds = [abs(s.delta) for s in self.sides if s.delta is not None]
        return max(ds) if ds else None

    @property
    def mean_swing(self) -> float:
        """How far the mean-value ceiling moves (sessions; the tie-breaker)."""
        return max((abs(s.figure.mean_ceiling - self.base.mean_ceiling)
                    for s in self.sides if s.figure is not None
                    and math.isfinite(s.figure.mean_ceiling)
                    and math.isfinite(self.base.mean_ceiling)), default=0.0)

    @property
    def elasticity(self) -> float | None:
        """Relative change of the ceiling per relative change of the parameter (arc
        elasticity across the evaluated sides); None when it cannot be formed."""
        pts = [(0.0, float(self.base.sessions))]
        pts += [(s.move.change, float(s.figure.sessions)) for s in self.sides
                if s.figure is not None and s.move.change is not None]
        if len(pts) < 2 or self.base.sessions <= 0:
            return None
        (x0, y0), (x1, y1) = min(pts), max(pts)
        return ((y1 - y0) / self.base.sessions) / (x1 - x0) if x1 > x0 else None

    def sentence(self) -> str:
        """Plain words: ``raising the synthesis max_tokens by 20% (4,000 → 4,800 tokens)
        costs 9 sessions; lowering it by 20% (→ 3,200 tokens) adds 5``."""
        p = self.parameter
        if all(s.delta == 0 for s in self.sides):
            lo, hi = (p.show(s.move.value).removeprefix("mean ") for s in self.sides)
            return (f"raising or lowering the {p.label} by {self.variation.text} "
                    f"({p.show()} → {lo} or {hi}) leaves the ceiling unchanged")
        parts: list[str] = []
        for s in (self.up, self.down):
            if s.move.skipped == "not asked for":
                continue
            verb = "raising" if s.direction > 0 else "lowering"
            what = f"the {p.label}" if not parts else "it"
            if s.move.skipped is not None:
                parts.append(f"{verb} {what} is not possible ({s.move.skipped})")
                continue
            change = s.move.change or 0.0
            frm = "" if parts else f"{p.show()} "
            how = f"by {abs(change):.0%} ({frm}→ {p.show(s.move.value)})"
            if s.error is not None:
                parts.append(f"{verb} {what} {how} is not a valid profile: {s.error}")
            elif s.delta is not None:
                effect = ("costs " + _sessions(-s.delta) if s.delta < 0 else
                          "adds " + _sessions(s.delta) if s.delta > 0 else
                          "leaves the ceiling unchanged")
                parts.append(f"{verb} {what} {how} {effect}")
        return "; ".join(parts) if parts else f"the {p.label}: nothing evaluated"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return clean({"parameter": self.parameter.to_dict(),
                      "variation": self.variation.text,
                      "down": self.down.to_dict(), "up": self.up.to_dict(),
                      "swing_sessions": self.swing, "mean_ceiling_swing": self.mean_swing,
                      "elasticity": self.elasticity, "sentence": self.sentence()})


@dataclass(frozen=True, slots=True)
class SensitivityResult:
    """The ceiling's sensitivity to each parameter, ranked (largest swing first).

    Attributes
    ----------
    profile : the profile's name.
    method : ``analytic`` (burst-aware ceilings) or ``simulate`` (simulated N*, CRN).
    base : the baseline's ceiling.
    rows : one per parameter, ranked by swing (sessions), then by mean-value swing.
    unranked : parameters not simulated (``method="simulate"`` keeps the top ones).
    seed, replications, horizon_s : simulation settings (None when analytic).
    notes : anything the reader must know (budget, parameters left out).
    """

    profile: str
    method: str
    base: Figure
    rows: tuple[SensitivityRow, ...]
    unranked: tuple[str, ...] = ()
    seed: int | None = None
    replications: int | None = None
    horizon_s: float | None = None
    notes: tuple[str, ...] = ()
    version: str = __version__

    def row(self, key: str) -> SensitivityRow:
        """The row of the parameter at ``key``."""
        for r in self.rows:
            if r.parameter.key == key:
                return r
        raise KeyError(key)

    def rank(self, key: str) -> int:
        """1-based rank of the parameter at ``key``."""
        return 1 + [r.parameter.key for r in self.rows].index(key)

    def summary(self) -> str:
        """The first few rows in plain words."""
        what = ("simulated N*" if self.method == "simulate" else "burst-aware ceiling")
        lines = [f"Baseline: {_sessions(self.base.sessions)} ({what}). What moves it most:"]
        for i, r in enumerate([r for r in self.rows if r.swing][:5], 1):
            text = r.sentence()
            lines.append(f"{i}. {text[0].upper()}{text[1:]}.")
        if len(lines) == 1:
            lines.append("Nothing varied moves it by a whole session.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON form; non-finite numbers are null."""
        return clean({
            "version": self.version, "profile": self.profile, "method": self.method,
            "seed": self.seed, "replications": self.replications,
            "horizon_s": self.horizon_s, "base": self.base.to_dict(),
            "rows": [r.to_dict() for r in self.rows], "unranked": list(self.unranked),
            "notes": list(self.notes), "summary": self.summary()})


# ---------------------------------------------------------------------------------------
# The computation
# ---------------------------------------------------------------------------------------


def plan(profile: Profile, vary: Sequence[str] = ()) -> list[tuple[Parameter, Variation]]:
    """The parameters to vary and how far: the defaults (±20%), with each ``--vary``
    ``KEY=SPEC`` applied in order to the keys it matches (a key outside the defaults is
    added; ``KEY=off`` drops it)."""
    params = parameters(profile)
    chosen: dict[str, tuple[Parameter, Variation | None]] = {
        p.key: (p, Variation()) for p in params}
    for text in vary:
        pattern, variation = parse_vary(text)
        hits = [k for k in chosen if fnmatch.fnmatchcase(k, pattern)]
        if not hits:
            if any(c in pattern for c in "*?["):
                raise ParameterError("vary", f"no parameter matches {pattern!r}; the JSON result "
                                     "lists every parameter's key", text)
            p = resolve(profile, pattern)
            _unit_fits(p, variation, text)
            chosen[p.key] = (p, variation)
            continue
        if variation is not None and variation.timed and len(hits) > 1:
            # A pattern with a time unit moves the durations it matches (`*=±1s`).
            hits = [k for k in hits if chosen[k][0].kind == "duration"] or hits[:1]
        for k in hits:
            _unit_fits(chosen[k][0], variation, text)
            chosen[k] = (chosen[k][0], variation)
    out = [(p, v) for p, v in chosen.values() if v is not None]
    if not out and vary:
        # An empty ranking read "Nothing varied moves it by a whole session": as if the
        # ceiling moved with nothing, when nothing was moved at all.
        raise ParameterError("vary", "turns every parameter off: nothing is left to vary "
                             "(name the ones to drop, e.g. 'retry.*=off')",
                             " ".join(vary))
    return out


def _unit_fits(p: Parameter, v: Variation | None, text: str) -> None:
    """Refuse a change with a time unit on a value that is no duration (``rpm=±2s`` moved
    150 requests per minute by 2, the unit ignored)."""
    if v is not None and v.timed and p.kind != "duration":
        raise ParameterError("vary", f"{p.key} is a {p.kind}, not a duration: give the "
                             "change without a time unit (±2) or relative (±10%)", text)


def _evaluate(load: LoadFn, p: Parameter, v: Variation, direction: int, base: Figure,
              figure: Callable[[Profile], Figure], baseline: Profile) -> Side:
    m = move(p, direction, v, baseline)
    if m.setting is None:
        return Side(direction, m)
    try:
        profile = load([m.setting])
    except ProfileError as e:
        where = f"{e.path}: " if e.path and not e.path.startswith(p.key) else ""
        return Side(direction, m, error=where + e.rule)
    f = figure(profile)
    return Side(direction, m, f, f.sessions - base.sessions)


def _order(r: SensitivityRow) -> tuple[int, float]:
    return (-(r.swing or 0), -r.mean_swing)


def sensitivity(load: LoadFn, *, vary: Sequence[str] = (), method: str = "analytic",
                sim: SimSettings | None = None, top: int = DEFAULT_TOP,
                progress: Callable[[int, int], None] | None = None) -> SensitivityResult:
    """Rank the parameters of a profile by how far a change moves its ceiling.

    Parameters
    ----------
    load : loads the profile with extra ``--set`` overrides (e.g.
        ``lambda extra: load_profile(paths, [*overrides, *extra])``); every variant is
        loaded, hence validated, through it.
    vary : ``KEY=SPEC`` changes to the default ±20% (see :func:`parse_vary`).
    method : ``analytic`` (burst-aware ceilings) or ``simulate`` (simulated N* with
        ``sim``'s seed for the baseline and every variant: common random numbers).
    sim : simulation settings (required to simulate).
    top : with ``simulate``, how many parameters to simulate: the analytic ranking's top
        ones, plus every key named by ``vary`` (the budget: ~2·top + 1 simulated
        searches); the others are listed in ``unranked``.
    progress : called with (variants done, variants in all).

    Returns
    -------
    SensitivityResult : rows ranked by swing in sessions, then mean-value swing.
    """
    if method not in ("analytic", "simulate"):
        raise CapacityError(f"method must be analytic or simulate, got {method!r}")
    if method == "simulate" and sim is None:
        raise CapacityError("simulation settings (a seed) are required to simulate")
    if top < 1:
        raise ParameterError("top", "must be ≥ 1", top)
    profile = load([])
    chosen = plan(profile, vary)
    named = {k for text in vary for k, _ in [parse_vary(text)]}
    total = 1 + 2 * len(chosen)
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    base = analytic_figure(profile)
    tick()
    rows = []
    for p, v in chosen:
        sides = [_evaluate(load, p, v, d, base, analytic_figure, profile) for d in (-1, 1)]
        tick(2)
        rows.append(SensitivityRow(p, v, sides[0], sides[1], base))
    rows.sort(key=_order)
    notes = []
    line = describe(profile)
    if line is not None:  # populations: the ceilings count N, the held ones beside it
        notes.append(line + ".")
    if method == "analytic":
        notes.append("Burst-aware analytic ceilings; --method simulate confirms the top "
                     "of the ranking by simulation.")
        return SensitivityResult(profile.title, method, base, tuple(rows), notes=tuple(notes))
    assert sim is not None
    keep = [r for r in rows if any(fnmatch.fnmatchcase(r.parameter.key, k) for k in named)]
    keep += [r for r in rows if r not in keep][: max(0, top - len(keep))]
    total = done + 1 + 2 * len(keep)

    def figure(pr: Profile) -> Figure:
        return simulated_figure(pr, sim)

    sbase = figure(profile)
    tick()
    srows = []
    for r in keep:
        sides = [_evaluate(load, r.parameter, r.variation, d, sbase, figure, profile)
                 for d in (-1, 1)]
        tick(2)
        srows.append(SensitivityRow(r.parameter, r.variation, sides[0], sides[1], sbase))
    srows.sort(key=_order)
    unranked = tuple(r.parameter.key for r in rows if r not in keep)
    notes.append(f"Simulated the analytic ranking's top {len(keep)} parameters with one "
                 f"seed ({sim.seed}) for every variant (common random numbers); "
                 f"{len(unranked)} others not simulated (--top to widen).")
    if sbase.method != "simulate" or any(s.figure is not None and s.figure.method !=
                                         "simulate" for r in srows for s in r.sides):
        notes.append("Some ceilings were over the simulation budget and are analytic "
                     "(lower --replications or --horizon to simulate them).")
    return SensitivityResult(profile.title, method, sbase, tuple(srows), unranked,
                             sim.seed, sim.replications, sim.horizon_s, tuple(notes))


def sensitivity_of_files(paths: Sequence[str | Any], overrides: Sequence[str] = (),
                         **kwargs: Any) -> SensitivityResult:
    """:func:`sensitivity` of the profile in ``paths`` (a base and overlays) with
    ``overrides`` applied before each variant's own ``--set``."""
    from capacity.profile.loader import load_profile

    def load(extra: Sequence[str]) -> Profile:
        return load_profile(list(paths), [*overrides, *extra])

    return sensitivity(load, **kwargs)


__all__ = [
    "DEFAULT_CHANGE",
    "Figure",
    "Move",
    "Parameter",
    "SensitivityResult",
    "SensitivityRow",
    "Side",
    "Variation",
    "move",
    "parameters",
    "parse_vary",
    "plan",
    "resolve",
    "scale_distribution",
    "sensitivity",
    "sensitivity_of_files",
    "show_value",
]
