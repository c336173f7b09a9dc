"""The figures behind RESULTS.md's session-36 sections (issue 13).

Run from the repository root::

    python benchmarks/session36_probes.py receiver   # a bucket fed by the PTU's spill
    python benchmarks/session36_probes.py train      # a tool loop at a deep bucket
    python benchmarks/session36_probes.py gate       # the train-span gate, 10-30 s buckets

``receiver``: ptu-spillover with every limit a 10 s token bucket, no retries, at 125
sessions. The engine (traces, seed 3, 4 × 1 h): pay-as-you-go's refused share of its
arrivals, its calls per 10 s (mean, variance) and its same-instant batches. The model: the
fleet model's window law of those calls, the window stop-loss against the depth (the old
reading, a share of the route's calls), and the level law of Poisson launches with the
window law's index of dispersion (``FeedModel._bucket_shares``) and with the engine's own
batches (shares of the arrivals).

``train``: the engine's attempt share (seed 7, 40 × 1 h) against the launches' own level
law and the clumped launches over a quarter, half and all of the depth's seconds (without
the train-span gate: the comparison that chose a half), without retries:
tests/data/bucket-call-train.yaml (hunt-3096's tool loop at a 10 s RPM bucket) at 20-32
sessions, and tool-agent with every limit a 10 s bucket at 33-39 (its TPM bucket; the
engine's share is of all attempts).

``gate``: the tool loop at 10, 20 and 30 s buckets, with and without its retries: half the
depth's seconds against the loop's train (``span``), the weight the clumped law gets, the
analytic N* and the simulated one (seed 1, 20 × 1 h, as benchmarks/profile_variants.py).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from profile_variants import variant  # noqa: E402

from capacity.analytic import model as amodel  # noqa: E402
from capacity.analytic import window as _window  # noqa: E402
from capacity.analytic.bucket import DeepBucket  # noqa: E402
from capacity.analytic.fleet import FeedModel, fleet_models  # noqa: E402
from capacity.analytic.model import analyze, constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_DEP, T_T  # noqa: E402

TRAIN = ROOT / "tests" / "data" / "bucket-call-train.yaml"


def _shipped(name: str, enforcement: str, retries: bool) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
    return variant(data, enforcement, retries)


def receiver() -> None:
    p = profile_from_dict(_shipped("ptu-spillover", "bucket10", retries=False))
    n = 125
    arrivals = refused = 0
    batches: list[int] = []
    counts: list[np.ndarray] = []
    seconds = 0.0
    for rep in range(4):
        tr = trace_attempts(p, n, horizon_s=3600.0, seed=3, replication=rep,
                            max_attempts=3_000_000)
        rows = tr.rows[tr.rows[:, T_DEP] == list(tr.deployments).index("paygo")]
        arrivals += len(rows)
        refused += int(np.sum(rows[:, T_ADMITTED] == 0))
        t = np.sort(rows[:, T_T])
        seconds += float(t[-1] - t[0])
        edges = np.flatnonzero(np.concatenate([[True], np.diff(t) > 1e-9, [True]]))
        batches.extend(np.diff(edges).tolist())
        counts.append(np.histogram(t, bins=np.arange(t[0], t[-1], 10.0))[0])
    c = np.concatenate(counts)
    law = np.bincount(batches) / len(batches)
    print(f"engine at {n}: {refused / arrivals:.2%} of pay-as-you-go's arrivals refused; "
          f"calls per 10 s mean {c.mean():.2f}, variance {c.var():.1f}; same-instant "
          f"batches {', '.join(f'{k}: {v:.1%}' for k, v in enumerate(law) if v > 0)}")
    wl = Workload.from_profile(p)
    fm = fleet_models(wl, cycle_time(wl))
    m = next(e.model for e in fm.entries if e.c.name == "paygo.rpm")
    assert isinstance(m, FeedModel)
    g, offered = m.window_law(n)
    k = np.arange(g.size, dtype=np.float64)
    mean = float(k @ g)
    var = float(k * k @ g) - mean * mean
    stop = _window._stop_loss(g, m.q_lat, mean) * m.kappa / offered
    level = m._bucket_shares(n, g, mean)
    assert level is not None
    own = DeepBucket([(1.0, law, np.array([0.0, 1.0]))], 1.0, m.c.rate_per_s, m.c.depth)
    own_share = own.shares(len(batches) / seconds)["call"]
    print(f"model: calls per 10 s mean {mean * m.h:.2f}, variance {var * m.h * m.h:.1f}; "
          f"stop-loss {stop:.2%} of the route's calls; level law {level['call']:.2%} of "
          f"the arrivals (the engine's own batches: {own_share:.2%})")


def _clumped_at(wl: Workload, c: Any, fraction: float) -> Any:
    keep = amodel._CLUMP_WINDOW
    amodel._CLUMP_WINDOW = fraction
    try:
        m = constraint_model(wl, c, cycle_time(wl).cycle_s)
    finally:
        amodel._CLUMP_WINDOW = keep
    return m


def _train_rows(p: Profile, name: str, ns: list[int], share_of_all: bool) -> None:
    wl = Workload.from_profile(p)
    c = next(x for x in wl.constraints if x.name == name)
    models = {f: _clumped_at(wl, c, f) for f in (0.25, 0.5, 1.0)}
    half = models[0.5]
    print(f"{p.name} {name}: sessions, engine, launches' law, clumped over 1/4, 1/2, 1 of "
          f"the depth's seconds")
    for n in ns:
        engine = simulate(p, n, replications=40, seed=7).metrics["attempt_429_fraction"]
        lam = n * half.rate_per_session
        own = half.chain.shares(lam, n)["attempt"]
        cells = []
        for f in (0.25, 0.5, 1.0):
            cl = models[f].clumped
            # (Without the train-span gate: the fractions as measured to choose one.)
            cl = dataclasses.replace(cl, span=math.inf) if cl is not None else None
            got = cl.shares(lam, n) if cl is not None else None
            cells.append("-" if got is None else f"{got['attempt']:.1e}")
        what = " (of all attempts)" if share_of_all else ""
        print(f"  {n}: {engine.mean:.1e}{what}  {own:.1e}  " + "  ".join(cells))


def train() -> None:
    data = yaml.safe_load(TRAIN.read_text())
    data["retry"] = {**data["retry"], "max_retries": 0}
    _train_rows(profile_from_dict(data), "q0.rpm", [20, 24, 28, 32], False)
    tool = profile_from_dict(_shipped("tool-agent", "bucket10", retries=False))
    _train_rows(tool, "project.tpm", [33, 36, 39], True)


def gate() -> None:
    base = yaml.safe_load(TRAIN.read_text())
    for burst in ("10s", "20s", "30s"):
        for retries in (True, False):
            d = copy.deepcopy(base)
            d["quotas"]["q0"]["enforcement"]["burst"] = burst
            if not retries:
                d["retry"] = {**d["retry"], "max_retries": 0}
            p = profile_from_dict(d)
            wl = Workload.from_profile(p)
            m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
            cl = m.clumped
            res = analyze(p)
            n_a = res.burst_ceiling
            hi = int(res.mean_ceiling + 1e-9) + 1
            sim = find_saturation(p, max(1, int(n_a * 0.8)), max(int(n_a * 0.8) + 1, hi),
                                  seed=1, replications=20, horizon_s=3600.0,
                                  max_sessions=hi + 2, workers=1)
            phi = 0.0 if cl is None else min(1.0, max(0.0, 2.0 - cl.window_s / cl.span))
            span = "-" if cl is None else f"{cl.window_s:.1f} s / {cl.span:.1f} s"
            print(f"{burst} bucket, {'retries' if retries else 'no retries'}: window / "
                  f"train {span}, weight {phi:.2f}; analytic {n_a}, simulated "
                  f"{sim.n_star} [{sim.n_lo}-{sim.n_hi}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["receiver", "train", "gate"])
    args = ap.parse_args(argv)
    {"receiver": receiver, "train": train, "gate": gate}[args.what]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
