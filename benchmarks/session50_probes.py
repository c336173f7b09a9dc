"""Session 50's probes (issue 13): what the remaining optimistic misses are made of.

Run from the repository root::

    python benchmarks/session50_probes.py dims    # one quota's ITPM/OTPM over one log
    python benchmarks/session50_probes.py herd    # told retries refused again
    python benchmarks/session50_probes.py lock    # a fixed think time over 1 h and 3 h
    python benchmarks/session50_probes.py tokens  # tool-agent's token windows, variants
    python benchmarks/session50_probes.py review  # the thinning's counter-example

``dims``: hunt-2024, -191, -2020 and tests/data/sliding-mixed-charges.yaml (ITPM and
OTPM of one quota over one sliding log length): the engine's share of attempts refused
with both limits and with each alone (the other removed; 20 × 1 h, seed 1) beside the
model's share of each (as shipped the two count by the larger).

``herd``: hunt records whose sliding log is the only limit and whose retries honour the
retry-after, at their simulated N*: per call refused on its first attempt, the retries
made and the retries refused again — the model's herd chain
(:meth:`ClumpWindowModel.herd_chain`) against the engine's (a 4 h trace, seed 1).

``lock``: one 3.1 s call a turn, 360 RPM in fixed 30 s windows, a fixed 54.3 s think time,
no retries (docs/models.md, "A fixed think time lets refusals pull sessions into step"): the
analytic N* and the engine's share of attempts refused at 300, 316 and 336 sessions over
1 h and 3 h (8 replications each, seed 1), and hunt-82 at 170 sessions with its think
time fixed, spread ±2 %, ±10 %, ±25 % and exponential (6 × 1 h, seed 1).

``tokens``: tool-agent with every limit a 10 s sliding log (14 sessions) or 60 s fixed
windows (36 sessions, with and without retries): the model's share of attempts refused
(the quotas' shares added) and N*, as shipped (a token window's refused turns' later
calls counted as offered) and thinned (session 50's rule, off), and the engine's share
(20 × 1 h, seed 1); hunt-43 at 13 sessions and hunt-3000 at 14 the same way; and at 30
sessions without retries the tokens offered a 60 s TPM window, the model's law against
an 8 h trace's windows.

``review``: a review's counter-example to the thinning (one OTPM limit over fixed 60 s
windows, a read and a tool call with small outputs, then a large write; no retries, a
3 % target): the model as shipped and thinned against the engine at 7-12 sessions.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session48_probes import _hunt

from capacity.analytic.clumped import window_correlation
from capacity.analytic.model import _searched, analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import profile_from_dict
from capacity.sim.engine import simulate, trace_attempts
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T, T_UNITS

ROOT = Path(__file__).resolve().parent.parent


def _without(data: dict[str, Any], dims: list[str], keep: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for q in out["quotas"].values():
        for k in dims:
            if k != keep:
                q.pop(k, None)
    return out


def dims() -> None:
    mixed = yaml.safe_load((ROOT / "tests" / "data" / "sliding-mixed-charges.yaml").read_text())
    for seed, n in ((2024, 7), (191, 8), (2020, 28), (0, 293)):
        data = _hunt(seed) if seed else mixed
        cells = []
        for name, d in (("both", data), ("itpm", _without(data, ["itpm", "otpm"], "itpm")),
                        ("otpm", _without(data, ["itpm", "otpm"], "otpm"))):
            prof = profile_from_dict(d)
            e = simulate(prof, n, replications=20, seed=1, workers=1).metrics[
                "attempt_429_fraction"]
            model = {c.name.split(".")[-1]: float(c.at_sessions.loss_fraction)
                     for c in analyze(prof, sessions=n).constraints
                     if c.at_sessions is not None}
            got = ", ".join(f"{k} {v:.2%}" for k, v in model.items())
            cells.append(f"{name}: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}], "
                         f"model {got}")
        name = f"hunt-{seed}" if seed else "tests/data/sliding-mixed-charges.yaml"
        wl = Workload.from_profile(profile_from_dict(data))
        a, b = (c for c in wl.constraints if wl.units_per_turn(c) > 0)
        rho = window_correlation(wl, a, b, cycle_time(wl).cycle_s)
        print(f"{name} at {n} sessions (window counts' correlation {rho:.2f}):\n  "
              + "\n  ".join(cells), flush=True)


def herd() -> None:
    recs = {r["seed"]: r for r in map(json.loads, (
        ROOT / "benchmarks" / "hunt" / "records.jsonl").read_text().splitlines())}
    for seed in (32, 154, 3020, 2044, 38, 1051, 3035, 189):
        n = recs[seed]["simulated"]
        prof = profile_from_dict(_hunt(seed))
        wl = Workload.from_profile(prof)
        cyc = cycle_time(wl)
        c = next(c for c in wl.constraints if wl.units_per_turn(c) > 0)
        ch = _searched(wl, c, cyc.cycle_s, cyc.min_cycle_s).inner.herd_chain(n)
        tr = trace_attempts(prof, n, horizon_s=4 * 3600.0, seed=1, max_attempts=5_000_000)
        r = tr.rows[tr.rows[:, T_T] > 600.0]
        first = r[r[:, T_ATTEMPT] == 1]
        again = r[r[:, T_ATTEMPT] > 1]
        refused = max(float((1.0 - first[:, T_ADMITTED]).sum()), 1.0)
        print(f"hunt-{seed} ({recs[seed]['family']}, {prof.retry.max_retries} retries) at "
              f"{n}: per call refused, retries / refused again: model "
              f"{ch['ret']:.2f} / {ch['rej']:.2f}, engine {again.shape[0] / refused:.2f} / "
              f"{float((1.0 - again[:, T_ADMITTED]).sum()) / refused:.2f}", flush=True)


def _small() -> dict[str, Any]:
    return {"name": "lock-small", "models": {"m": {"ttft": "0.1s", "tokens_per_second": 100}},
            "quotas": {"q": {"models": ["m"], "rpm": 360,
                             "enforcement": {"type": "fixed_window", "window": "30s"}}},
            "session": {"think_time": "54.3s", "turns": {"t": {"steps": [
                {"call": {"model": "m", "input_tokens": 100, "output_tokens": 300}}]}}},
            "retry": {"max_retries": 0}, "targets": {"max_429_fraction": 0.01}}


def lock() -> None:
    prof = profile_from_dict(_small())
    print(f"one 3.1 s call, fixed 54.3 s think time: analytic {analyze(prof).burst_ceiling}")
    for n in (300, 316, 336):
        for h in (3600.0, 3 * 3600.0):
            e = simulate(prof, n, replications=8, seed=1, workers=1, horizon_s=h).metrics[
                "attempt_429_fraction"]
            print(f"  {n} sessions over {h / 3600:.0f} h: {e.mean:.2%} "
                  f"[{e.lo:.2%}-{e.hi:.2%}]", flush=True)
    data = _hunt(82)
    t = float(str(data["session"]["think_time"]).rstrip("s"))
    for f in (0.0, 0.02, 0.1, 0.25, "exp"):
        d = copy.deepcopy(data)
        if f == "exp":
            d["session"]["think_time"] = {"exponential": {"mean": f"{t}s"}}
        elif isinstance(f, float) and f > 0:
            d["session"]["think_time"] = {"uniform": [f"{t * (1 - f)}s", f"{t * (1 + f)}s"]}
        e = simulate(profile_from_dict(d), 170, replications=6, seed=1, workers=1).metrics[
            "attempt_429_fraction"]
        label = f if isinstance(f, str) else f"±{f:.0%}"
        print(f"  hunt-82 at 170 sessions, think time {label}: {e.mean:.2%} "
              f"[{e.lo:.2%}-{e.hi:.2%}]", flush=True)


def _variant(name: str, enforcement: str, retries: bool = True) -> Any:
    from profile_variants import variant

    data = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
    return profile_from_dict(variant(data, enforcement, retries))


def _share(prof: Any, n: int, thinned: bool) -> tuple[float, int]:
    """The quotas' shares of attempts refused at ``n`` added, and N*: as shipped (a token
    window's refused turns' later calls counted as offered), or ``thinned`` (session 50's
    ``ClumpWindowModel.offered_after``, built but off) — on a fresh copy, every store
    emptied."""
    from analytic_accuracy import empty_stores

    from capacity.analytic import window

    with mock.patch.object(window, "_ABORT_TOKENS", thinned):
        empty_stores()
        fresh = prof.model_copy(deep=True)
        got = analyze(fresh, sessions=n)
    return (sum(float(c.at_sessions.loss_fraction) for c in got.constraints
                if c.at_sessions is not None), got.burst_ceiling)


def _compare(label: str, prof: Any, n: int) -> None:
    """One line: the model's share and N* as shipped and thinned, the engine's share at
    ``n`` sessions (20 × 1 h, seed 1)."""
    (before, n_before), (now, n_now) = _share(prof, n, False), _share(prof, n, True)
    e = simulate(prof, n, replications=20, seed=1, workers=1).metrics["attempt_429_fraction"]
    print(f"{label} at {n} sessions: model {before:.2%}, thinned {now:.2%} (N* {n_before}, "
          f"thinned {n_now}), engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}]", flush=True)


def tokens() -> None:
    for enf, n, retries in (("sliding10", 14, True), ("fixed60", 36, True),
                            ("fixed60", 36, False)):
        _compare(f"tool-agent {enf}{'' if retries else ' without retries'}",
                 _variant("tool-agent", enf, retries), n)
    # The records the thinning moves past their simulated N*: hunt-43 (12 [11-13]) and,
    # through a population blend, hunt-3000 (12 [12-14]).
    for seed, n in ((43, 13), (3000, 14)):
        _compare(f"hunt-{seed}", profile_from_dict(_hunt(seed)), n)
    # The 60 s TPM window's count of offered tokens at 30 sessions (few refused).
    prof = _variant("tool-agent", "fixed60", False)
    wl = Workload.from_profile(prof)
    cyc = cycle_time(wl)
    c = next(c for c in wl.constraints if c.name == "project.tpm")
    inner = _searched(wl, c, cyc.cycle_s, cyc.min_cycle_s).inner
    g = inner.pmf(30)
    k = np.arange(g.size) * inner.h
    mean = float(np.dot(k, g))
    sd = float(np.dot((k - mean) ** 2, g)) ** 0.5
    tr = trace_attempts(prof, 30, horizon_s=8 * 3600.0, seed=1, max_attempts=5_000_000)
    r = tr.rows[tr.rows[:, T_T] > 600.0]
    col = T_UNITS + next(i for i, s in enumerate(tr.slots)
                         if (s.quota, s.dimension) == ("project", "tpm"))
    win = np.floor((r[:, T_T] + tr.clock_offset_s) / 60.0).astype(np.int64)
    whole = np.unique(win)[1:-1]
    per = np.bincount(win - win.min(), weights=r[:, col])[whole - win.min()]
    print(f"tool-agent fixed60 without retries, 30 sessions, tokens offered a 60 s window: "
          f"model mean {mean:,.0f} sd {sd:,.0f}; engine mean {per.mean():,.0f} "
          f"sd {per.std():,.0f} ({whole.size} windows of an 8 h trace)")


def _otpm_chain() -> dict[str, Any]:
    """A review's counter-example: one OTPM limit over fixed 60 s windows; a read (small
    output), a tool call (small) and a write (8,000-12,000 output tokens), no retries."""
    def call(name: str, inp: list[int], out: list[int]) -> dict[str, Any]:
        return {"call": {"name": name, "model": "m", "input_tokens": {"uniform": inp},
                         "output_tokens": {"uniform": out}}}
    return {"name": "otpm-chain",
            "models": {"m": {"ttft": {"uniform": ["0.2s", "0.4s"]},
                             "tokens_per_second": 2000}},
            "quotas": {"q": {"models": ["m"], "otpm": {"limit": 200000, "enforcement": {
                "type": "fixed_window", "window": "60s"}}}},
            "session": {"think_time": {"exponential": "20s"}, "turns": {"t": {"steps": [
                call("read", [8000, 12000], [100, 300]), call("tool", [300, 600], [100, 300]),
                call("write", [300, 600], [8000, 12000])]}}},
            "retry": {"max_retries": 0}, "targets": {"max_429_fraction": 0.03}}


def review() -> None:
    prof = profile_from_dict(_otpm_chain())
    for n in (7, 8, 10, 12):
        _compare("otpm-chain", prof, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["dims", "herd", "lock", "tokens", "review"])
    {"dims": dims, "herd": herd, "lock": lock, "tokens": tokens,
     "review": review}[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
