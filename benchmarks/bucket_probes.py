"""The engine's and the analytic model's figures behind RESULTS.md's and docs/models.md's
paragraphs of 2026-12-04 on token buckets (issue 13, session 31).

Run from the repository root::

    python benchmarks/bucket_probes.py never-fit     # hunt-2053, 240 sessions
    python benchmarks/bucket_probes.py tool-loop     # hunt-3096, no retries, uncounted
    python benchmarks/bucket_probes.py drained       # hunt-3002, 3 sessions

``never-fit`` (tests/data/sliding-spill-never-fits.yaml: a 60 s sliding TPM log spilling
into a TPM bucket 1 s deep): from attempt traces (seeds 0-3, 1 h each) the share of the
first attempts the log spills, with and without retries (and the units it admits); of
those, the share larger than the bucket's depth; of those, the share whose retry 1 and
retry 2 the log spills again;
from ``simulate`` (seed 1, 10 × 1 h) the attempts answered 429 and the calls failed —
each beside the model's figure (``fleet_models``; the model before the change is ``git
checkout a0d8c84^``).

``tool-loop`` (hunt-3096 without retries, rejections not counted: a 165 RPM bucket 10 s
deep, a tool loop of 7-8 calls a second apart): the engine's refusal share at 24 and 28
sessions, closed loop (20 × 1 h) and with Poisson turns (50 times the sessions, each
pausing 50 cycles, 10 × 1 h), beside the deep-bucket law (Poisson launches) and a whole
turn taken as one batch; then, with the profile's 5 retries, the level chain's coarse and
fine grids at the refill rate (they disagree by more than 20 %: the chain is not used).

``drained`` (hunt-3002, a fleet whose first deployment's OTPM bucket holds 1.8 of the
turn's last call): the share of first attempts that deployment refuses at 3 sessions in
the engine (attempt traces, seeds 0-4) against the model's spill share; and that
deployment alone, no retries, as a single deployment: engine (20 × 1 h) against the model.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic import bucket as B  # noqa: E402
from capacity.analytic.fleet import FeedModel, fleet_models  # noqa: E402
from capacity.analytic.model import (  # noqa: E402
    _event_mix,
    bucket_chain,
    bucket_model,
    bucket_step,
    cycle_time,
)
from capacity.model.workload import Workload, batch_units_mean  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import (  # noqa: E402
    T_ADMITTED,
    T_ATTEMPT,
    T_DEP,
    T_NODE,
    T_SESSION,
    T_UNITS,
)


def _data(path: str) -> dict[str, Any]:
    out: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return out


def _calls(rows: np.ndarray) -> list[list[np.ndarray]]:
    """A trace's attempts grouped by call: a session's calls of one node follow one
    another, a new call at each first attempt (profiles without fan-outs)."""
    open_: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    out: list[list[np.ndarray]] = []
    for row in rows:
        key = (int(row[T_SESSION]), int(row[T_NODE]))
        if row[T_ATTEMPT] == 1 and open_[key]:
            out.append(open_.pop(key))
        open_[key].append(row)
    return out + [v for v in open_.values() if v]


def _first_spill(profile: Profile, n: int, seeds: range
                 ) -> tuple[list[list[np.ndarray]], int, float, float, float]:
    """(the calls whose first attempt the first deployment refused, the calls, the depth
    of the profile's token bucket or inf, the units of its first slot the first
    deployment admitted, those of them retries)."""
    spilled: list[list[np.ndarray]] = []
    calls = 0
    depth = float("inf")
    admitted = retried = 0.0
    for seed in seeds:
        tr = trace_attempts(profile, n, horizon_s=3600.0, seed=seed)
        for s in tr.slots:
            if s.kind == "token_bucket":
                depth = s.limit * s.burst_s / 60.0
        r = tr.rows
        mine = (r[:, T_DEP] == 0) & (r[:, T_ADMITTED] > 0)
        admitted += float(r[mine, T_UNITS].sum())
        retried += float(r[mine & (r[:, T_ATTEMPT] > 1), T_UNITS].sum())
        for seq in _calls(r):
            calls += 1
            if seq[0][T_DEP] == 0 and seq[0][T_ADMITTED] == 0:
                spilled.append(seq)
    return spilled, calls, depth, admitted, retried


def never_fit_engine(profile: Profile, n: int, seeds: range) -> dict[str, float]:
    """In the engine at ``n`` sessions, of the calls the first deployment spilled on
    their first attempt: the share past the bucket's depth (``never``), and of those the
    share whose retry 1 and retry 2 it spilled again (``again1``, ``again2``); and the
    first attempts spilled (``spilled``), the units of its first slot it admitted
    (``load``), those of them retries (``retried``). (Both deployments charge alike: a
    call's first-slot charge is its charge at the bucket.)"""
    spilled, calls, depth, load, retried = _first_spill(profile, n, seeds)
    big = [seq for seq in spilled if float(seq[0][T_UNITS]) > depth]
    again = [0, 0]
    for seq in big:
        at_a = [r for r in seq[1:] if r[T_DEP] == 0]   # the retries' rounds
        for k in (0, 1):
            again[k] += len(at_a) > k and at_a[k][T_ADMITTED] == 0
    return {"never": len(big) / len(spilled), "again1": again[0] / len(big),
            "again2": again[1] / len(big), "spilled": len(spilled) / calls,
            "load": load, "retried": retried}


def never_fit() -> None:
    data = _data("tests/data/sliding-spill-never-fits.yaml")
    n = 240
    profile = profile_from_dict(data)
    no_retry = copy.deepcopy(data)
    no_retry["retry"]["max_retries"] = 0
    got0 = never_fit_engine(profile_from_dict(no_retry), n, range(4))
    got = never_fit_engine(profile, n, range(4))
    sim = simulate(profile, n, seed=1, replications=10, horizon_s=3600.0).metrics

    wl = Workload.from_profile(profile)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.enforcement == "token_bucket"]
    m = e.model
    assert isinstance(m, FeedModel) and m.never is not None
    st = m.stats(n)
    share = fm.spill["m"](n)
    print(f"hunt-2053 at {n} sessions            engine       model")
    print(f"first attempts spilled, no retries  {got0['spilled']:8.2%}   {share:8.2%}")
    print(f"... with retries                    {got['spilled']:8.2%}   "
          f"{m.never.share(n) / m.never.of_spill(n):8.2%}")
    print(f"  (the log's admitted units {got['load'] / got0['load'] - 1.0:+.1%} with "
          f"retries; the retries it admitted {got['retried'] / got0['load']:.1%} of them "
          "without)")
    print(f"spilled calls past the depth        {got['never']:8.2%}   "
          f"{m.never.of_spill(n):8.2%}")
    a1, a2 = m.never.again(n)
    print(f"their retry 1 / 2 spilled again     {got['again1']:.2f} / "
          f"{got['again2']:.2f}  {a1:.2f} / {a2:.2f}")
    print(f"attempts answered 429               "
          f"{sim['attempt_429_fraction'].mean:8.2%}   {st.loss_fraction:8.2%}")
    print(f"calls failed                        "
          f"{sim['call_failure_fraction'].mean:8.2%}   {st.call_failure_fraction or 0.0:8.2%}")


def _bucket_share(data: dict[str, Any], n: int) -> float:
    p = profile_from_dict(data)
    wl = Workload.from_profile(p)
    (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    return float(bucket_model(wl, c, cycle_time(wl).cycle_s).stats(n).loss_fraction)


def tool_loop() -> None:
    data = _data("benchmarks/hunt/profiles/hunt-3096.yaml")
    data["quotas"]["q0"]["rejected_count"] = False
    plain = copy.deepcopy(data)
    plain["retry"]["max_retries"] = 0
    p = profile_from_dict(plain)
    wl = Workload.from_profile(p)
    cyc = cycle_time(wl).cycle_s
    r_mean = cyc - p.session.pause.mean
    poisson = copy.deepcopy(plain)
    poisson["session"]["think_time"] = {"exponential": f"{50 * cyc - r_mean:.1f}s"}
    pp = profile_from_dict(poisson)
    calls = np.zeros(9)
    calls[7] = calls[8] = 0.5                 # a turn: 1 + U{5, 6} + 1 calls
    for n in (24, 28):
        closed = simulate(p, n, seed=1, replications=20, horizon_s=3600.0)
        turns = simulate(pp, 50 * n, seed=1, replications=10, horizon_s=3600.0)
        batch = B.DeepBucket(kinds=[(1.0, calls, np.array([0.0, 1.0]))], h=1.0,
                             refill=165 / 60, depth=165 / 60 * 10)
        print(f"hunt-3096 (no retries, uncounted) at {n}: engine closed "
              f"{closed.metrics['attempt_429_fraction'].mean:.2%}, Poisson turns "
              f"{turns.metrics['attempt_429_fraction'].mean:.2%}; the model "
              f"{_bucket_share(plain, n):.1e}; a turn as one batch "
              f"{batch.shares(n / cyc, n)['call']:.1%}")
    full = profile_from_dict(_data("benchmarks/hunt/profiles/hunt-3096.yaml"))
    wl = Workload.from_profile(full)
    (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    mix = _event_mix(wl, c)
    h = bucket_step(c, [batch_units_mean(b, c.costs) for _, b in mix])
    rates = np.array([r / cycle_time(wl).cycle_s for r, _ in mix])
    # (bucket_chain drops a chain whose grids disagree; kept here to read them)
    with mock.patch.object(B.BucketChain, "converged", lambda self, lam: True):
        chain = bucket_chain(wl, c, mix, rates, h)
    assert chain is not None
    lam = c.rate_per_s / (chain.mean_calls * chain.mean_charge)
    got = [chain._solve(g, lam, 0.0)[0] for g in chain.grids()]
    print(f"hunt-3096 with its retries: the level chain at the refill rate, coarse "
          f"{got[0]:.1%} / fine {got[1]:.1%} (converged: {chain.converged(lam)})")


def drained() -> None:
    data = _data("benchmarks/hunt/profiles/hunt-3002.yaml")
    p = profile_from_dict(data)
    n = 3
    spilled, calls, _, _, _ = _first_spill(p, n, range(5))
    wl = Workload.from_profile(p)
    share = fleet_models(wl, cycle_time(wl)).spill["m"](n)
    print(f"hunt-3002 at {n} sessions: first attempts refused by a, engine "
          f"{len(spilled) / calls:.2%} ({len(spilled)} of {calls}), model {share:.2%}")
    alone = copy.deepcopy(data)
    q = alone["quotas"]["q0"]
    q["models"] = ["m"]
    alone["quotas"] = {"q0": q}
    alone.pop("deployments")
    alone.pop("routes")
    alone["retry"] = {"max_retries": 0}
    pa = profile_from_dict(alone)
    sim = simulate(pa, n, seed=1, replications=20, horizon_s=3600.0)
    wl = Workload.from_profile(pa)
    model = max(float(bucket_model(wl, c, cycle_time(wl).cycle_s).stats(n).loss_fraction)
                for c in wl.constraints if wl.units_per_turn(c) > 0)
    print(f"its first deployment alone, no retries, at {n}: engine "
          f"{sim.metrics['attempt_429_fraction'].mean:.2%}, model {model:.2%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=("never-fit", "tool-loop", "drained"))
    args = ap.parse_args(argv)
    {"never-fit": never_fit, "tool-loop": tool_loop, "drained": drained}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
