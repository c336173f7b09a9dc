"""The fitted profile as commented YAML, validated by the profile loader before it is written.

The header says what the profile was fitted from (files, spans, sessions, turns, calls,
what was skipped), how the pacing was chosen, and which fits are weak; every fitted
distribution carries its evidence (family, AIC margin, KS distance, sample size) as an
end-of-line comment. Quotas, retry policy, client pacing and targets are not in traces:
they are copied from ``--quota-from PROFILE`` or, for quotas, left as a marked placeholder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from capacity.errors import CapacityError, ParameterError
from capacity.model.dist import Distribution
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile, serving

from .families import KS_FLOOR
from .fitter import CallFit, FitResult, FleetNames, StepFit, fit_read

PLACEHOLDER_RPM = 1000


def _num(x: float, digits: int = 5) -> str:
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return str(round(x))
    return f"{float(f'{x:.{digits}g}'):g}"


def _dur(x: float) -> str:
    if x >= 120:
        return f"{float(f'{x / 60:.4g}'):g}m"
    return f"{float(f'{x:.4g}'):g}s"


def dist_yaml(d: Distribution) -> str:
    """A distribution in the profile's flow syntax (durations with units)."""
    f = _dur if d.quantity == "duration" else _num
    if d.kind == "fixed":
        return f(d.params[0])
    if d.kind == "uniform":
        return f"{{uniform: [{f(d.params[0])}, {f(d.params[1])}]}}"
    if d.kind == "exponential":
        return f"{{exponential: {f(d.params[0])}}}"
    if d.kind == "lognormal":
        med, p95 = d.params
        if float(f(p95).rstrip("smh") or 0) <= float(f(med).rstrip("smh") or 0):
            p95 = med * 1.001  # keep p95 > median after rounding
        return f"{{lognormal: {{median: {f(med)}, p95: {f(p95)}}}}}"
    vals = ", ".join(f(v) for v in d.values)
    ws = ", ".join(f"{w:.4g}" for w in d.weights)
    return f"{{choice: {{values: [{vals}], weights: [{ws}]}}}}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, indent: int, text: str, comment: str = "") -> None:
        line = " " * indent + text
        if comment:
            line = f"{line:<48} # {comment}" if len(line) < 48 else f"{line}  # {comment}"
        self.lines.append(line)

    def comment(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + "# " + text)


def _reference(path: Path | None) -> tuple[dict[str, Any], dict[str, int], set[str],
                                           Profile | None]:
    """(raw YAML mapping, model -> default max_tokens, models whose quotas charge
    max_tokens, the loaded profile) of the --quota-from profile."""
    if path is None:
        return {}, {}, set(), None
    prof = load_profile(path)  # validates: a bad reference is an input error, exit 2
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    mts: dict[str, int] = {}
    for m, spec in prof.models.items():
        if spec.max_tokens is not None:
            mts[m] = spec.max_tokens
    charging = {m for q in prof.quotas.values()
                if q.charge_max_tokens and {"tpm", "otpm", "tpd"} & set(q.limits())
                for m in q.models}
    # A logical model of a fleet: its serving deployments' defaults and charging count
    # (a deployment a call names directly: its own).
    for logical in [*prof.routes, *prof.deployments]:
        for target in serving(prof, logical):
            spec = prof.model_of(target)
            if spec.max_tokens is not None:
                mts.setdefault(logical, spec.max_tokens)
            if any(q.charge_max_tokens and {"tpm", "otpm", "tpd"} & set(q.limits())
                   for q in (prof.quotas[n] for n in prof.quotas_for(target))):
                charging.add(logical)
    return raw, mts, charging, prof


def fleet_names(prof: Profile, traced: set[str]) -> FleetNames | None:
    """The mapping of traced names that are targets of ``prof``'s routes (deployments, or
    models a route lists), or None when no traced name is one. A target that exactly one
    route serves becomes that route's logical name (a spill between two deployments of a
    route is one call site); one served by several routes, or by none, stays the call's
    model (a deployment is a valid call target). Latency goes to the target's model entry."""
    call: dict[str, str] = {}
    model: dict[str, str] = {}
    for name in sorted(traced):
        if name in prof.routes:  # already the logical name calls use
            continue
        if name in prof.deployments:
            model[name] = prof.deployments[name].model
        elif not any(name == t for r in prof.routes for t, _ in prof.route_targets(r)):
            continue  # a plain model outside every route: as traced
        else:
            model[name] = name
        routes = [r for r in prof.routes if any(name == t for t, _ in prof.route_targets(r))]
        call[name] = routes[0] if len(routes) == 1 else name
    if not any(call[n] != n or model[n] != n for n in call):
        return None
    return FleetNames(call, model)


def _fleet_closure(ref: dict[str, Any], traced: list[str]) -> tuple[
        dict[str, Any], dict[str, Any], set[str]]:
    """The reference fleet the traced (logical) model names need: (routes, deployments,
    every name that may serve a traced call — routes' targets and fallbacks included)."""
    routes_ref = ref.get("routes") or {}
    deps_ref = ref.get("deployments") or {}
    routes: dict[str, Any] = {}
    seen: list[str] = []
    stack = list(traced)
    while stack:
        name = stack.pop(0)
        if name in seen:
            continue
        seen.append(name)
        r = routes_ref.get(name)
        if isinstance(r, dict):
            routes[name] = r
            stack += list(r.get("fallbacks") or [])
    served = set(seen)
    for r in routes.values():
        served |= set(r.get("deployments") or [])
    deps = {d: spec for d, spec in deps_ref.items() if d in served}
    return routes, deps, served


def _call(o: _Out, ind: int, c: CallFit, mt_default: dict[str, int],
          charging: set[str]) -> list[str]:
    notes = []
    o.add(ind, f"name: {_scalar(c.label)}",
          f"{c.calls:,} calls" + (f"; {c.note}" if c.note else ""))
    o.add(ind, f"model: {_scalar(c.model)}")
    o.add(ind, f"input_tokens: {dist_yaml(c.input_tokens.dist)}", c.input_tokens.comment())
    if c.cached_input_fraction > 0:
        o.add(ind, f"cached_input_fraction: {c.cached_input_fraction:g}",
              "Σ cached / Σ input tokens")
    o.add(ind, f"output_tokens: {dist_yaml(c.output_tokens.dist)}", c.output_tokens.comment())
    mt = c.max_tokens
    if mt is None and c.model in mt_default:
        mt = mt_default[c.model]
        o.add(ind, f"max_tokens: {mt}", "not in the traces: the --quota-from model's default")
    elif mt is None and c.model not in charging:
        o.comment(ind, "max_tokens: not in the traces, and no quota charges it")
    elif mt is None:
        top = int(max(1.0, float(c.output_tokens.sample.max()) if c.output_tokens.n else 1.0))
        mt = top
        o.add(ind, f"max_tokens: {mt}", "PLACEHOLDER: not in the traces; the largest output "
              "seen")
        notes.append(f"{c.label}: max_tokens not recorded (set to the largest output, {top})")
    else:
        o.add(ind, f"max_tokens: {mt}")
    return notes


def _step(o: _Out, ind: int, s: StepFit, mt_default: dict[str, int],
          charging: set[str]) -> list[str]:
    if s.kind == "call":
        o.add(ind, "- call:", f"in every turn ({s.turns:,})")
        return _call(o, ind + 4, s.call, mt_default, charging)
    if s.kind == "optional":
        o.add(ind, "- optional:", f"in {s.probability:.1%} of {s.turns:,} turns")
        assert s.probability is not None
        o.add(ind + 4, f"probability: {s.probability:.4g}")
        o.add(ind + 4, "call:")
        return _call(o, ind + 6, s.call, mt_default, charging)
    assert s.count is not None
    if s.kind == "repeat":
        o.add(ind, "- repeat:", "consecutive calls of one kind: a loop")
        o.add(ind + 4, f"count: {dist_yaml(s.count.dist)}", s.count.comment())
        o.add(ind + 4, "call:")
        return _call(o, ind + 6, s.call, mt_default, charging)
    if s.probability is not None:  # a fan-out that some turns skip
        o.add(ind, "- optional:", f"fan-out in {s.probability:.1%} of {s.turns:,} turns")
        o.add(ind + 4, f"probability: {s.probability:.4g}")
        o.add(ind + 4, "steps:")
        ind += 6
    o.add(ind, "- parallel:", "calls overlapping in time: a fan-out")
    o.add(ind + 4, f"count: {dist_yaml(s.count.dist)}", s.count.comment())
    o.add(ind + 4, "call:")
    return _call(o, ind + 6, s.call, mt_default, charging)


def fleet_refit(res: FitResult, prof: Profile | None) -> FitResult:
    """``res`` refitted when its traced names are deployments of the reference fleet
    ``prof`` (what the mock and gateways log): calls named by their route, latency per
    model entry (:func:`fleet_names`); else ``res`` itself."""
    if prof is not None and res.fleet is None and prof.deployments:
        fleet = fleet_names(prof, {c.model for c in res.read.calls if c.ok})
        if fleet is not None:
            return fit_read(res.read, res.pacing_arg, fleet)
    return res


def render_profile(res: FitResult, *, name: str = "fitted", quota_from: Path | None = None,
                   sources: str = "") -> str:
    """The commented YAML text of the fitted profile (validated; raises CapacityError)."""
    ref, mt_default, charging, prof = _reference(quota_from)
    res = fleet_refit(res, prof)
    body = _Out()
    body.add(0, f"name: {_scalar(name)}")
    body.add(0, f"description: Fitted from {res.sessions:,} sessions, {res.turns:,} turns, "
             f"{res.calls:,} calls")
    body.lines.append("")
    body.add(0, "models:", "latency: ttft + output_tokens / tokens_per_second")
    if res.fleet is not None:
        for entry, deps in res.fleet.pooled().items():
            body.comment(2, f"{entry}: one latency fitted from the pooled calls of deployments "
                         f"{', '.join(deps)} (they share this model)")
        named = {d: c for d, c in sorted(res.fleet.call.items()) if c != d}
        if named:
            body.comment(2, "calls traced on deployments name the route serving them: "
                         + ", ".join(f"{d} -> {c}" for d, c in named.items()))
    for m in res.models.values():
        body.add(2, f"{_scalar(m.name)}:")
        body.add(4, f"ttft: {dist_yaml(m.ttft.dist)}", m.ttft.comment())
        body.add(4, f"tokens_per_second: {_num(m.tokens_per_second, 4)}",
                 m.how + (f"; WEAK: {m.weak}" if m.weak else ""))
    body.lines.append("")
    traced = list(res.models) if res.fleet is None else sorted(
        {res.fleet.call.get(c.model, c.model) for c in res.read.calls if c.ok})
    notes = _quotas(body, ref, traced, list(res.models), quota_from)
    body.lines.append("")
    body.add(0, "session:")
    p = res.pacing
    body.add(2, f"{p.mode}: {dist_yaml(p.fit.dist)}", p.fit.comment())
    body.add(2, "turns:")
    for t in res.types:
        body.add(4, f"{_scalar(t.name)}:")
        body.add(6, f"weight: {t.weight:.4g}", f"{t.turns:,} of {res.turns:,} turns"
                 + (f", {t.signatures} step sequences merged" if t.signatures > 1 else ""))
        body.add(6, "steps:")
        for s in t.steps:
            notes += _step(body, 8, s, mt_default, charging)
    for key in ("retry", "pacing", "targets"):
        if key in ref:
            body.lines.append("")
            body.comment(0, f"{key}: copied from {quota_from}")
            body.lines += yaml.safe_dump({key: ref[key]}, sort_keys=False,
                                         default_flow_style=None).rstrip().splitlines()
    lines = _header(res, name, quota_from, notes, sources) + body.lines
    text = "\n".join(map(_printable, lines)) + "\n"
    try:
        profile_from_dict(yaml.safe_load(text))
    except CapacityError as e:
        k = res.read.time_scale
        if k != 1.0:  # durations times the user's K can leave the profile's ranges
            raise ParameterError(
                "time_scale", f"the traces' durations multiplied by it fit no valid profile "
                f"({e}); give the time scale the traces were recorded at", k) from None
        # Otherwise a bug in the fitter or writer: one line, never a profile.
        raise CapacityError(f"the fitted profile does not validate ({e}); please report "
                            "this with the trace file") from None
    return text


# What YAML reads as a line break (ending a comment) or refuses outright: anything but
# tab and the printable characters (YAML 1.1 §5.1), and U+0085 / U+2028 / U+2029.
_UNPRINTABLE = re.compile("[^\t\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
                          "|[\u2028\u2029]")


def _printable(line: str) -> str:
    """``line`` as one printable line: a trace's model or call name holding a line break
    or a control character, cited in a comment, is escaped as JSON escapes it (values are
    quoted by :func:`_scalar` and hold none)."""
    return _UNPRINTABLE.sub(lambda m: json.dumps(m.group())[1:-1], line)


def _scalar(text: str) -> str:
    """``text`` as one YAML scalar: plain when it reads back as itself, else quoted (a
    model or turn name from a trace such as ``a: b`` or ``x #y`` must not change the
    profile's structure or be cut at a comment)."""
    try:
        float(text.replace("_", ""))
        return json.dumps(text)  # a number to the profile loader (YAML 1.2: 1e5 too)
    except ValueError:
        pass
    try:
        plain = all(yaml.safe_load(doc) == want for doc, want in (
            (f"k: {text}", {"k": text}), (f"k: [{text}]", {"k": [text]}),
            (f"{text}: 1", {text: 1})))
    except yaml.YAMLError:
        plain = False
    return text if text and plain else json.dumps(text)


def _quotas(o: _Out, ref: dict[str, Any], models: list[str], fitted: list[str],
            quota_from: Path | None) -> list[str]:
    """Write the quotas (and the fleet the traced call names ``models`` need) copied
    from the reference; ``fitted`` are the model entries already written."""
    if not ref:
        o.comment(0, "PLACEHOLDER: traces do not show your provider's limits. Replace this quota")
        o.comment(0, "with yours, or re-run with --quota-from PROFILE to copy them.")
        o.add(0, "quotas:")
        o.add(2, "placeholder:", "PLACEHOLDER")
        o.add(4, f"models: [{', '.join(map(_scalar, models))}]")
        o.add(4, f"rpm: {PLACEHOLDER_RPM}", "PLACEHOLDER: not from the traces")
        return [f"quotas are a PLACEHOLDER ({PLACEHOLDER_RPM} rpm): replace them or use "
                "--quota-from"]
    routes, deps, served = _fleet_closure(ref, models)
    named = {q for spec in deps.values() if isinstance(spec, dict)
             for q in (spec.get("quotas") or [])}
    quotas: dict[str, Any] = {}
    uncovered = set(models) - set(routes) - set(deps)
    for qname, q in (ref.get("quotas") or {}).items():
        keep = [m for m in (q.get("models") or []) if m in served]
        if keep or qname in named:
            quotas[qname] = {**q, "models": keep or list(q.get("models") or [])}
            uncovered -= set(keep)
    if not quotas:
        raise ParameterError(
            "quota_from", f"none of its quotas covers a model in the traces "
            f"({', '.join(models)}); name the traced models in its quotas' models lists",
            str(quota_from))
    if deps or routes:
        # Models the fleet runs that the traces never named: their latency is the
        # reference's (a deployment that served no traced call cannot be fitted).
        need = {spec.get("model") for spec in deps.values() if isinstance(spec, dict)}
        need |= {t for r in routes.values() for t in (r.get("deployments") or [])
                 if t not in deps}
        need |= {fb for r in routes.values() for fb in (r.get("fallbacks") or [])
                 if fb not in routes and fb not in deps}
        extra = {m: spec for m, spec in (ref.get("models") or {}).items()
                 if m in need and m not in fitted}
        if extra:
            o.comment(0, f"models: the fleet's untraced models, copied from {quota_from}")
            o.lines += yaml.safe_dump({"models": extra}, sort_keys=False,
                                      default_flow_style=None).rstrip().splitlines()[1:]
            o.lines.append("")
        o.comment(0, f"deployments and routes: copied from {quota_from}")
        fleet = {k: v for k, v in (("deployments", deps), ("routes", routes)) if v}
        if "cooldown" in ref:
            fleet["cooldown"] = ref["cooldown"]
        o.lines += yaml.safe_dump(fleet, sort_keys=False,
                                  default_flow_style=None).rstrip().splitlines()
        o.lines.append("")
    o.comment(0, f"quotas: copied from {quota_from} (models lists cut to the traced models)")
    o.lines += yaml.safe_dump({"quotas": quotas}, sort_keys=False,
                              default_flow_style=None).rstrip().splitlines()
    if uncovered:
        return [f"model(s) {', '.join(sorted(uncovered))} are in no quota of {quota_from}"]
    return []


def _header(res: FitResult, name: str, quota_from: Path | None, notes: list[str],
            sources: str) -> list[str]:
    r = res.read
    h = [f"# {name} — fitted by `capacity fit` from {len(r.files)} file(s)"
         + (f" ({r.spans:,} spans)" if r.spans else "") + (f": {sources}" if sources else ""),
         f"#   {res.sessions:,} sessions, {res.turns:,} turns, {res.calls:,} calls.",
         "#"]
    if r.skipped:
        total = sum(r.skipped.values())
        h.append(f"# Skipped {total:,} LLM span(s) without the needed attributes:")
        for reason, n in r.skipped.most_common():
            h.append(f"#   {n:,} with {reason} (first at {r.skipped_at[reason]})")
    for note in res.notes:
        h.append(f"# Note: {note}.")
    p = res.pacing
    h.append(f"# Pacing: {p.mode.replace('_', ' ')} ({p.pairs:,} consecutive turn pairs): "
             f"{p.why}.")
    if p.mode == "think_time" and p.idle_mean_s >= 1e-3:
        share = p.idle_mean_s / p.cycle_mean_s if p.cycle_mean_s > 0 else 0.0
        h.append(f"#   Idle time inside turns (tool execution, agent overhead): mean "
                 f"{p.idle_mean_s:.3g} s per turn ({share:.1%} of the cycle), folded into the "
                 "think time so the cycle is kept; turn latencies exclude it.")
    weak = res.weak_fits()
    h.append("# Weak fits (check these before trusting the profile):" if weak or notes
             else "# Weak fits: none.")
    for where, why in weak:
        h.append(f"#   {where}: {why}")
    for note in notes:
        h.append(f"#   {note}")
    h += ["# Each distribution: the family with the best AIC among fixed, uniform, exponential,",
          "# lognormal (counts: fixed, uniform, choice) whose Kolmogorov–Smirnov distance KS to",
          f"# the observed values is at most max(1.63/√n, {KS_FLOOR}); else an empirical choice.",
          ""]
    return h


def write_profile(res: FitResult, out: Path | None, *, quota_from: Path | None = None,
                  name: str | None = None) -> str:
    """Render, validate and (when ``out`` is given) write the profile; returns the text."""
    nm = name or (out.stem if out is not None else "fitted")
    text = render_profile(res, name=nm, quota_from=quota_from)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text


