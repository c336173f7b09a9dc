"""A seeded random hunt of the analytic N* against the simulated one (issue 13).

Run from the repository root::

    python benchmarks/hunt.py --out DIR [--seeds 1-400] [--minutes 55]
    python benchmarks/hunt.py --out DIR --summary

Each seed draws one random but realistic profile (``random.Random(seed)``, so a seed
always gives the same profile): a model's latency, one quota (RPM, TPM, TPM with the
``max_tokens`` reservation, ITPM + OTPM, RPM + TPM; rejected attempts counted or not)
enforced by fixed or sliding windows of 1-60 s or a token bucket 1-60 s deep (now and
then a second enforcement on one dimension), a turn mix of single calls, chains, fan-outs
(fixed, uniform or choice counts), tool loops and optional steps, a think-time law
(exponential, uniform, fixed, lognormal) or a cadence, a retry policy (none, the SDK's
default, the retry-after honoured, backoff ignoring it, ``on_exhausted: continue``), a
429 target of 1-5 %; sometimes a priority spillover fleet of two deployments, or a
second population. The quota's limits are scaled so the napkin ceiling lands at a
log-uniform 15-600 sessions.

For each profile (written to ``DIR/profiles/hunt-SEED.yaml``) it runs the analytic answer
(its process CPU seconds, fresh caches) and the simulated saturation search as
``capacity ceiling --seed`` brackets it (one worker thread: run it on one core), and
appends one JSON line to ``DIR/records.jsonl``. A record outside the target (the
accuracy table's rule: within 3 % or inside the CI, never more than 5 % optimistic) is
searched again with another seed and twice the replications, and is kept outside only
if it misses that search too (``confirmed``). Seeds already in the file are skipped;
the rest run cheapest first (estimated simulated call attempts) in chunks of
``--chunk`` seeds, until ``--minutes``. ``--profile SEED`` prints any seed's profile
(``benchmarks/hunt/profiles`` keeps only those of the records outside the target);
``--summary --reanalyse`` re-answers every record with the model as it is now (the
simulated figures kept), printing the records whose analytic N* moved.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from analytic_accuracy import analytic, error, meets_target  # noqa: E402

from capacity.errors import CapacityError  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402

WINDOWS = (1, 2, 5, 10, 15, 30, 60)        # seconds
BURSTS = (1, 2, 5, 10, 30, 60)             # seconds of refill
BIG_N = 25   # sessions: the summary's mean error is over records simulated this large
UNIT = 1e8   # a placeholder limit, large enough that any window admits something


def _dur(s: float) -> str:
    return f"{s:g}s"


def _tokens(r: random.Random, lo: int, hi: int) -> Any:
    """A token count law: fixed, uniform or lognormal around a size drawn in [lo, hi]."""
    m = int(math.exp(r.uniform(math.log(lo), math.log(hi))))
    kind = r.choice(("fixed", "uniform", "uniform", "lognormal"))
    if kind == "fixed":
        return m
    if kind == "uniform":
        return {"uniform": [max(1, m // 2), m * 3 // 2]}
    return {"lognormal": {"median": m, "p95": m * r.choice((2, 3))}}


def _call(r: random.Random, model: str, reserve: bool) -> dict[str, Any]:
    out = _tokens(r, 10, 1500)
    call: dict[str, Any] = {"model": model, "input_tokens": _tokens(r, 200, 12000),
                            "output_tokens": out}
    if reserve or r.random() < 0.3:
        top = out if isinstance(out, int) else max(out.get("uniform", [0, 0])[1],
                                                  out.get("lognormal", {}).get("p95", 0))
        call["max_tokens"] = r.choice((512, 1024, 2048, 4096, max(64, int(top * 1.5))))
    return call


def _count(r: random.Random, lo: int, hi: int) -> Any:
    kind = r.choice(("fixed", "uniform", "choice"))
    if kind == "fixed":
        return r.randint(lo, hi)
    if kind == "uniform":
        a = r.randint(lo, hi)
        b = r.randint(a, hi)
        return {"uniform": [a, max(b, a + 1)]}
    vals = sorted(r.sample(range(lo, hi + 1), min(4, hi - lo + 1)))
    w = [round(r.uniform(0.05, 1.0), 3) for _ in vals]
    return {"choice": {"values": vals, "weights": w}}


def _turn(r: random.Random, shape: str, model: str, reserve: bool) -> dict[str, Any]:
    """One turn type of the given shape."""
    c = lambda: _call(r, model, reserve)  # noqa: E731
    steps: list[dict[str, Any]]
    if shape == "single":
        steps = [{"call": c()}]
    elif shape == "chain":
        steps = [{"call": c()} for _ in range(r.randint(2, 4))]
    elif shape == "fanout":
        big = r.random() < 0.3
        steps = [{"parallel": {"count": _count(r, 5, 40) if big else _count(r, 1, 8),
                               "call": c()}}]
        if r.random() < 0.5:   # a planning call first, a synthesis after: 1 -> k -> 1
            steps = [{"call": c()}, *steps]
            if r.random() < 0.6:
                steps.append({"call": c()})
    else:  # loop: plan, 0..k tool round trips, answer
        steps = [{"call": c()}, {"repeat": {"count": _count(r, 0, 5), "call": c()}},
                 {"call": c()}]
    if r.random() < 0.2:
        steps.insert(r.randint(1, len(steps)),
                     {"optional": {"probability": round(r.uniform(0.1, 0.9), 2), "call": c()}})
    return {"weight": round(r.uniform(0.1, 1.0), 2), "steps": steps}


def _enforcement(r: random.Random) -> tuple[str, dict[str, Any]]:
    kind = r.choice(("fixed_window", "fixed_window", "sliding_window", "sliding_window",
                     "token_bucket"))
    if kind == "token_bucket":
        return "bucket", {"type": kind, "burst": _dur(r.choice(BURSTS))}
    return kind.split("_")[0], {"type": kind, "window": _dur(r.choice(WINDOWS))}


def _pace(r: random.Random) -> tuple[str, dict[str, Any]]:
    kind = r.choice(("think-exp", "think-exp", "think-unif", "think-fixed", "think-lognormal",
                     "cadence"))
    mean = math.exp(r.uniform(math.log(5), math.log(300)))
    if kind == "think-exp":
        return kind, {"think_time": {"exponential": _dur(round(mean, 1))}}
    if kind == "think-unif":
        return kind, {"think_time": {"uniform": ["0s", _dur(round(2 * mean, 1))]}}
    if kind == "think-fixed":
        return kind, {"think_time": _dur(round(mean, 1))}
    if kind == "think-lognormal":
        return kind, {"think_time": {"lognormal": {"median": _dur(round(mean, 1)),
                                                   "p95": _dur(round(mean * 4, 1))}}}
    lo = max(20.0, mean)
    return kind, {"cadence": {"uniform": [_dur(round(lo, 1)), _dur(round(lo * 1.8, 1))]}}


def _retry(r: random.Random) -> tuple[str, dict[str, Any] | None]:
    kind = r.choice(("none", "sdk", "sdk", "honoured", "backoff"))
    spec: dict[str, Any] | None
    if kind == "none":
        spec = {"max_retries": 0}
    elif kind == "sdk":
        spec = None
    elif kind == "honoured":
        spec = {"max_retries": r.randint(1, 5), "honour_retry_after": True}
    else:
        spec = {"max_retries": r.randint(1, 5), "honour_retry_after": False}
        if r.random() < 0.4:
            spec["initial_delay"] = _dur(r.choice((0.1, 0.25, 0.5, 1.0)))
    if r.random() < 0.15:
        kind += "+continue"
        spec = {**(spec or {}), "on_exhausted": "continue"}
    return kind, spec


def _quota(r: random.Random, models: list[str]) -> tuple[str, str, dict[str, Any], bool]:
    """(limit family, enforcement family, quota spec with unit limits, reserve max_tokens)."""
    lim = r.choice(("rpm", "tpm", "tpm-maxtok", "itpm+otpm", "rpm+tpm"))
    enf, spec = _enforcement(r)
    q: dict[str, Any] = {"models": models, "enforcement": spec}
    dims = {"rpm": ["rpm"], "tpm": ["tpm"], "tpm-maxtok": ["tpm"],
            "itpm+otpm": ["itpm", "otpm"], "rpm+tpm": ["rpm", "tpm"]}[lim]
    for d in dims:
        q[d] = UNIT  # scaled to the drawn napkin ceiling later
    reserve = lim == "tpm-maxtok" or (lim != "rpm" and r.random() < 0.2)
    if reserve:
        q["charge_max_tokens"] = True
    if len(dims) == 2 and r.random() < 0.4:   # the second dimension enforced its own way
        enf2, spec2 = _enforcement(r)
        q[dims[1]] = {"limit": UNIT, "enforcement": spec2}
        enf += f"+{enf2}"
    if "rpm" in dims and r.random() < 0.3:
        q["rejected_count"] = r.random() < 0.7
    return lim, enf, q, reserve


def draw(seed: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The seed's families and profile (limits still unit placeholders)."""
    r = random.Random(seed)
    data: dict[str, Any] = {"name": f"hunt-{seed}", "models": {"m": {
        "ttft": {"uniform": [_dur(round(r.uniform(0.2, 0.5), 2)),
                             _dur(round(r.uniform(0.6, 1.5), 2))]},
        "tokens_per_second": r.choice((30, 40, 60, 80, 100, 150))}}}
    fleet = r.random() < 0.1
    lim, enf, q, reserve = _quota(r, ["m"])
    data["quotas"] = {"q0": q}
    if fleet:  # priority spillover: deployment a first, b (its own quota) takes the rest
        data["deployments"] = {"a": {"model": "m", "quotas": ["q0"]},
                               "b": {"model": "m", "quotas": ["q1"]}}
        q["models"] = ["a"]
        enf1, spec1 = _enforcement(r)
        data["quotas"]["q1"] = {**json.loads(json.dumps(q)), "models": ["b"],
                                "enforcement": spec1}
        data["routes"] = {"m": {"policy": "priority", "deployments": ["a", "b"],
                                "spillover": True}}
        data["_q1_share"] = r.uniform(0.3, 1.5)   # q1's limits against q0's
        enf += f"|{enf1}"
    shapes = r.sample(("single", "chain", "fanout", "loop"), r.choice((1, 1, 1, 2, 3)))
    pace, session = _pace(r)
    session["turns"] = {f"t{i}-{s}": _turn(r, s, "m", reserve) for i, s in enumerate(shapes)}
    data["session"] = session
    rkind, retry = _retry(r)
    if retry is not None:
        data["retry"] = retry
    data["targets"] = {"max_429_fraction": r.choice((0.01, 0.01, 0.02, 0.03, 0.05))}
    if r.random() < 0.1:   # a second population beside `session`
        _, pop = _pace(r)
        pop["turns"] = {"p0": _turn(r, r.choice(("single", "chain", "fanout")), "m", reserve)}
        pop["share"] = round(r.uniform(0.1, 0.5), 2)
        data["populations"] = {"other": pop}
        pace += "+population"
    fam = {"enforcement": enf, "limit": lim,
           "shape": "mix" if len(shapes) > 1 else shapes[0],
           "retry": rkind, "pace": pace, "fleet": "fleet" if fleet else "single"}
    fam["family"] = "/".join((fam["enforcement"], fam["limit"], fam["shape"], fam["retry"]))
    # the napkin ceiling the limits are scaled to
    data["_napkin"] = math.exp(r.uniform(math.log(15), math.log(600)))
    return fam, data


def _scale(data: dict[str, Any], r: random.Random) -> None:
    """Set the limits: each dimension's napkin ceiling (mean load = limit) at the drawn
    napkin times 1 for one dimension, U(1, 1.5) for the others, from the plain session's
    mean demand (fleet and populations left out of the scaling)."""
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    napkin = data.pop("_napkin")
    share = data.pop("_q1_share", 1.0)
    plain = {k: v for k, v in data.items()
             if k not in ("deployments", "routes", "populations")}
    plain["quotas"] = {"q0": {**data["quotas"]["q0"], "models": ["m"]}}
    wl = Workload.from_profile(profile_from_dict(plain))
    cyc = cycle_time(wl)
    cons = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    first = r.randrange(len(cons))
    for i, c in enumerate(cons):
        per_s = wl.units_per_turn(c) / cyc.cycle_s
        limit = napkin * (1.0 if i == first else r.uniform(1.0, 1.5)) * per_s * c.period_s
        for name, f in (("q0", 1.0), ("q1", share)):
            q = data["quotas"].get(name)
            if q is None:
                continue
            new = max(1, round(limit * f)) if c.dim == "rpm" else max(100, round(limit * f))
            if isinstance(q[c.dim], dict):
                q[c.dim]["limit"] = new
            else:
                q[c.dim] = new


def drawn(seed: int) -> tuple[dict[str, str], dict[str, Any]]:
    """(families, profile dict) of a seed: drawn, then scaled (its own stream)."""
    fam, data = draw(seed)
    _scale(data, random.Random(seed + 7_000_000))
    return fam, data


def build(seed: int) -> tuple[dict[str, str], dict[str, Any], Profile, Any, float]:
    """(families, profile dict, profile, analytic result, analytic CPU s) of a seed."""
    fam, data = drawn(seed)
    prof = profile_from_dict(data)
    res, cpu = analytic(prof, repeat=2)
    return fam, data, prof, res, cpu


def cost(res: Any) -> float:
    """Simulated call attempts of one evaluation at the mean ceiling (20 × 1 h)."""
    return float(res.mean_ceiling * res.calls_per_turn * 3600.0 / res.cycle.cycle_s * 20)


def simulate(prof: Profile, res: Any, seed: int, reps: int) -> dict[str, Any] | None:
    """The simulated N* as ``capacity ceiling --seed`` brackets it, on one thread."""
    from capacity.search import find_saturation
    from capacity.whatif.ceiling import (
        SimSettings,
        _spill_cap,
        nodes_per_session,
        simulation_budget,
    )

    target = prof.targets.max_429_fraction
    lo = max(1, res.burst_ceiling)
    hi = max(lo + 1, math.floor(res.mean_ceiling + 1e-9) + 1)
    cap = max(hi, math.floor(res.mean_ceiling / (1.0 - target)) + 1, _spill_cap(prof, res))
    sim = SimSettings(seed=seed, replications=reps)
    evals = 2 * math.ceil(math.log2(max(cap, 2))) + 6
    if simulation_budget(res.cycle.cycle_s, res.calls_per_turn, cap, sim, evals,
                         nodes_per_session(prof)) is not None:
        return None
    t0 = time.perf_counter()
    sat = find_saturation(prof, lo, hi, seed=seed, replications=reps, max_sessions=cap,
                          workers=1)
    return {"n_star": sat.n_star, "lo": sat.n_lo, "hi": sat.n_hi, "capped": sat.capped,
            "seed": seed, "replications": reps,
            "sim_seconds": round(time.perf_counter() - t0, 2)}


def search_again(prof: Profile, res: Any, seed: int, reps: int) -> dict[str, Any]:
    """The confirming search of an answer outside the target: another seed, twice the
    replications (as many where twice is over the simulation budget the first search
    fitted)."""
    again = simulate(prof, res, seed + 100_000, 2 * reps)
    if again is None:
        again = simulate(prof, res, seed + 100_000, reps)
    assert again is not None  # the first search fitted the same budget
    return again


def run_one(seed: int, out: Path, reps: int, plan: tuple[Any, ...] | None = None
            ) -> dict[str, Any]:
    fam, data, prof, res, cpu = plan if plan is not None else build(seed)
    (out / "profiles").mkdir(parents=True, exist_ok=True)
    (out / "profiles" / f"hunt-{seed}.yaml").write_text(
        f"# benchmarks/hunt.py seed {seed}: {fam['family']} ({fam['pace']}, "
        f"{fam['fleet']})\n" + yaml.safe_dump(data, sort_keys=False))
    rec: dict[str, Any] = {"seed": seed, **fam, "analytic": res.burst_ceiling,
                           "mean_ceiling": round(res.mean_ceiling, 2),
                           "analytic_seconds": round(cpu, 4)}
    sim = simulate(prof, res, seed, reps)
    if sim is None:
        rec["simulated"] = None
        return rec
    rec.update({"simulated": sim["n_star"], "ci": [sim["lo"], sim["hi"]],
                "capped": sim["capped"], "sim_seconds": sim["sim_seconds"],
                "replications": reps})
    err = error(res.burst_ceiling, sim["n_star"])
    rec["error_pct"] = round(100 * err, 2) if math.isfinite(err) else None
    rec["outside"] = not meets_target(res.burst_ceiling, sim["n_star"], sim["lo"], sim["hi"])
    if rec["outside"]:
        again = search_again(prof, res, seed, reps)
        rec["confirm"] = again
        e2 = error(res.burst_ceiling, again["n_star"])
        rec["confirm_error_pct"] = round(100 * e2, 2) if math.isfinite(e2) else None
        rec["confirmed"] = not meets_target(res.burst_ceiling, again["n_star"],
                                            again["lo"], again["hi"])
    return rec


def _seeds(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reanalyse(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with the analytic N* of the code as it is now (the simulated figures
    kept): what a change to the model moves, without simulating again. Records the hunt
    did not simulate (over the simulation budget) are re-answered too: their analytic
    N* and compute time count in the summary's timing line."""
    out = []
    for x in recs:
        _, _, _, res, cpu = build(x["seed"])
        y = {**x, "analytic_before": x["analytic"], "analytic": res.burst_ceiling,
             "analytic_seconds": round(cpu, 4)}
        if x.get("simulated") is None:
            if y["analytic"] != x["analytic"]:
                print(f"seed {x['seed']} {x['family']}: analytic {x['analytic']} -> "
                      f"{y['analytic']} (not simulated)")
            out.append(y)
            continue
        err = error(y["analytic"], y["simulated"])
        y["error_pct"] = round(100 * err, 2) if math.isfinite(err) else None
        y["outside"] = not meets_target(y["analytic"], y["simulated"], *y["ci"])
        if "confirm" in y:
            c = y["confirm"]
            e2 = error(y["analytic"], c["n_star"])
            y["confirm_error_pct"] = round(100 * e2, 2) if math.isfinite(e2) else None
            y["confirmed"] = y["outside"] and not meets_target(y["analytic"], c["n_star"],
                                                               c["lo"], c["hi"])
        if y["analytic"] != x["analytic"]:
            print(f"seed {x['seed']} {x['family']}: analytic {x['analytic']} -> "
                  f"{y['analytic']} vs simulated {x['simulated']} {x['ci']}")
        out.append(y)
    return out


def summary(recs: list[dict[str, Any]]) -> None:
    """Counts outside the target, the worst either way, and per family axis."""
    done = [x for x in recs if x.get("simulated") is not None]
    out = [x for x in done if x["outside"]]
    conf = [x for x in out if x.get("confirmed")]
    opt = [x for x in done if (x["error_pct"] or 0) > 5 and x["outside"]]
    print(f"records {len(recs)} (simulated {len(done)}); outside the target {len(out)}, "
          f"confirmed by a second search {len(conf)}; > 5% optimistic and outside {len(opt)}")
    # Where one session is a few per cent of N, the mean error says how far off the
    # analytic answer is, apart from a small search's whole-session steps.
    big = [x["error_pct"] for x in done
           if x["simulated"] >= BIG_N and x["error_pct"] is not None]
    if big:
        print(f"records simulated at {BIG_N} sessions or more: {len(big)}, mean |error| "
              f"{sum(abs(e) for e in big) / len(big):.2f}%, more than 3% off "
              f"{sum(abs(e) > 3 for e in big)}, more than 5% optimistic "
              f"{sum(e > 5 for e in big)}")
        # A fixed think time lets refusals pull sessions into step (model._phase_lock_notes):
        # the optimistic share by pace, retried or not, says where.
        pace: dict[tuple[str, bool], list[float]] = defaultdict(list)
        for x in done:
            if x["simulated"] >= BIG_N and x["error_pct"] is not None:
                pace[(x["pace"].split("+")[0], not x["retry"].startswith("none"))].append(
                    x["error_pct"])
        print(f"at {BIG_N} sessions or more, by pace (records, more than 3% / 5% "
              "optimistic): " + "; ".join(
                  f"{k}{' retried' if r else ', no retries'} {len(v)}, "
                  f"{sum(e > 3 for e in v)} / {sum(e > 5 for e in v)}"
                  for (k, r), v in sorted(pace.items())))
    t = sorted(x["analytic_seconds"] for x in recs)
    if t:
        print(f"analytic compute: median {1000 * t[len(t) // 2]:.0f} ms, "
              f"max {1000 * t[-1]:.0f} ms, over 0.2 s: {sum(v > 0.2 for v in t)}")
    key = lambda x: x["error_pct"] if x["error_pct"] is not None else 0.0  # noqa: E731
    for label, rows in (("most optimistic", sorted(done, key=key, reverse=True)[:8]),
                        ("most conservative", sorted(done, key=key)[:5]),
                        ("every record > 5% optimistic and outside",
                         sorted(opt, key=key, reverse=True))):
        print(f"\n{label}:")
        for x in rows:
            c = x.get("confirm")
            extra = (f"; again {c['n_star']} [{c['lo']}-{c['hi']}] "
                     f"({x['confirm_error_pct']:+.1f}%)" if c else "")
            print(f"  seed {x['seed']:>4} {x['family']} ({x['pace']}, {x['fleet']}): analytic "
                  f"{x['analytic']} vs {x['simulated']} [{x['ci'][0]}-{x['ci'][1]}] "
                  f"{key(x):+.1f}%{' OUT' if x['outside'] else ''}{extra}")
    for axis in ("enforcement", "limit", "shape", "retry", "pace", "fleet"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for x in done:
            base = x[axis].split("+")[0].split("|")[0] if axis != "retry" else x[axis]
            groups[base].append(x)
        print(f"\nby {axis}: " + "; ".join(
            f"{k} {sum(y['outside'] for y in v)}/{len(v)} out, worst "
            f"{max(key(y) for y in v):+.1f}%/{min(key(y) for y in v):+.1f}%"
            for k, v in sorted(groups.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--seeds", default="1-400", help="seed range A-B")
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=40, help="seeds planned at once")
    ap.add_argument("--minutes", type=float, default=55.0, help="stop starting records after")
    ap.add_argument("--summary", action="store_true", help="summarise the records and exit")
    ap.add_argument("--reanalyse", action="store_true",
                    help="with --summary: the analytic N* of the code as it is now")
    ap.add_argument("--profile", type=int, default=None, metavar="SEED",
                    help="print the seed's profile (YAML) and exit")
    args = ap.parse_args(argv)
    if args.profile is not None:
        fam, data = drawn(args.profile)
        print(f"# benchmarks/hunt.py seed {args.profile}: {fam['family']} ({fam['pace']}, "
              f"{fam['fleet']})\n" + yaml.safe_dump(data, sort_keys=False), end="")
        return 0
    path = args.out / "records.jsonl"
    recs = load(path)
    if args.summary:
        summary(reanalyse(recs) if args.reanalyse else recs)
        return 0
    t_end = time.monotonic() + 60 * args.minutes
    done = {x["seed"] for x in recs}
    todo = [s for s in _seeds(args.seeds) if s not in done]
    args.out.mkdir(parents=True, exist_ok=True)
    # Chunks of seeds, each run cheapest first: a short run still spans the families.
    for k in range(0, len(todo), args.chunk):
        plans = []
        for s in todo[k:k + args.chunk]:
            try:
                plan = build(s)
            except CapacityError as e:  # e.g. a window that admits nothing: not realistic
                print(f"seed {s}: skipped: {str(e).splitlines()[0]}", file=sys.stderr)
                continue
            plans.append((cost(plan[3]), s, plan))
        plans.sort(key=lambda p: p[0])
        for _, s, plan in plans:
            if time.monotonic() > t_end:
                return 0
            rec = run_one(s, args.out, args.replications, plan)
            with path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"seed {s} {rec['family']}: {rec['analytic']} vs {rec.get('simulated')} "
                  f"{rec.get('ci')} {rec.get('error_pct')}%"
                  f"{' OUT' if rec.get('outside') else ''}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
