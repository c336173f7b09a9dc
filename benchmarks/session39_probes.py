"""Session 39's probes (issue 13): retries told the retry-after at token buckets whose
charges spread, against the engine's traces.

    python benchmarks/session39_probes.py spread       # tests/data/bucket-told-spread.yaml
    python benchmarks/session39_probes.py population   # chat-assistant bucket5, N sessions
    python benchmarks/session39_probes.py hunt 2086,53 # hunt records at their simulated N*
    python benchmarks/session39_probes.py latency      # the 429's way back, 0.05-30 s

``spread``: the engine's fresh calls, first retries and attempts refused (10 × 1 h) at
640 / 700 / 760 sessions against the told model (``bucket.told_shares``) and the herd it
replaced (``DeepBucket._herd_share``, asked by turning ``spread`` off). ``population``:
chat-assistant with every limit a 5 s bucket and an exponential think time, the launch
rate of 176 sessions made by 176 × k sessions (k = 1, 2, 4, 8): the engine's shares
against the model's Poisson launches, with and without retries. ``hunt``: a record's
engine shares at its simulated N* with and without retries against the model's.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.analytic import bucket  # noqa: E402
from capacity.analytic.model import constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT  # noqa: E402

SPREAD = ROOT / "tests" / "data" / "bucket-told-spread.yaml"


def engine(profile: Profile, n: int, reps: int) -> tuple[float, float, float]:
    """(fresh calls refused, first retries refused, attempts refused) in the engine's
    traces, seed 1, ``reps`` × 1 h."""
    tot: dict[int, list[int]] = {}
    for r in range(reps):
        rows = trace_attempts(profile, n, horizon_s=3600.0, seed=1, replication=r,
                              max_attempts=8_000_000).rows
        for a in np.unique(rows[:, T_ATTEMPT]).astype(int):
            x = rows[rows[:, T_ATTEMPT] == a]
            t = tot.setdefault(int(a), [0, 0])
            t[0] += len(x)
            t[1] += int(np.sum(x[:, T_ADMITTED] == 0))
    calls = sum(c for c, _ in tot.values())
    refused = sum(r for _, r in tot.values())
    first = tot[2][1] / tot[2][0] if 2 in tot and tot[2][0] else float("nan")
    return tot[1][1] / tot[1][0], first, refused / calls


def model(profile: Profile, n: int) -> list[tuple[str, float, float]]:
    """(constraint, fresh share, attempt share) of each constraint's model at ``n``."""
    wl = Workload.from_profile(profile)
    out = []
    for c in wl.constraints:
        st = constraint_model(wl, c, cycle_time(wl).cycle_s).stats(n)
        out.append((c.name, st.call_429_fraction or 0.0, st.loss_fraction))
    return out


def first_retries(profile: Profile, n: int) -> float:
    """The told model's first retries refused per fresh call refused at ``n`` (two
    retries: its retries per refused call less the first)."""
    wl = Workload.from_profile(profile)
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    chain = getattr(m, "chain", None)
    assert isinstance(chain, bucket.DeepBucket)
    told = chain._told(n * m.rate_per_session * chain.scale)
    assert told is not None
    return told[3] - 1.0


def spread() -> None:
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    profile = load_profile(SPREAD)
    print("| sessions | engine fresh / first retry / attempts | told fresh / first retry "
          "/ attempts | herd fresh / attempts |")
    print("|---|---|---|---|")
    rows = []
    for n in (640, 700, 760):
        f, r1, a = engine(profile, n, 10)
        (_, tf, ta), = model(profile, n)
        rows.append((n, f, r1, a, tf, first_retries(profile, n), ta))
    told_n = analyze(profile).burst_ceiling
    was = bucket.DeepBucket.spread
    bucket.DeepBucket.spread = property(lambda self: False)  # type: ignore[assignment]
    bucket._DEEP_GRIDS.clear()
    try:
        for n, f, r1, a, tf, t1, ta in rows:
            (_, hf, ha), = model(profile, n)
            print(f"| {n} | {f:.2%} / {r1:.2f} / {a:.2%} | {tf:.2%} / {t1:.2f} / {ta:.2%} "
                  f"| {hf:.2%} / {ha:.2%} |")
        herd_n = analyze(profile).burst_ceiling
    finally:
        bucket.DeepBucket.spread = was  # type: ignore[method-assign]
        bucket._DEEP_GRIDS.clear()
    sat = find_saturation(profile, told_n - 40, told_n + 20, seed=1, replications=20)
    print(f"ceiling: told {told_n}, herd {herd_n}, simulated {sat.n_star} "
          f"[{sat.n_lo}–{sat.n_hi}]")


def latency() -> None:
    """The same profile at 700 sessions with the 429's way back 0.05 to 30 s: the
    model's landings past the block's top land at it, so its answer stops moving."""
    data = yaml.safe_load(SPREAD.read_text())
    print("| rejection latency | engine fresh / attempts | model fresh / attempts |")
    print("|---|---|---|")
    for lat in (0.05, 0.5, 2.0, 10.0, 30.0):
        d = copy.deepcopy(data)
        d["retry"] = {"rejection_latency": f"{lat}s"}
        p = profile_from_dict(d)
        f, _, a = engine(p, 700, 10)
        (_, mf, ma), = model(p, 700)
        print(f"| {lat} s | {f:.2%} / {a:.2%} | {mf:.2%} / {ma:.2%} |")


def population() -> None:
    from profile_variants import variant
    data = yaml.safe_load((ROOT / "profiles" / "chat-assistant.yaml").read_text())
    print("| sessions | think (s) | engine attempts, retries / none | model, retries / none |")
    print("|---|---|---|---|")
    for k in (1, 2, 4, 8):
        got: dict[bool, tuple[float, float]] = {}
        for retries in (True, False):
            d: dict[str, Any] = variant(data, "bucket5", retries)
            d["session"]["think_time"] = {"exponential": f"{63.48 * k - 8.48:.2f}s"}
            p = profile_from_dict(d)
            a = engine(p, 176 * k, 10)[2]
            m = max(x for _, _, x in model(p, 176 * k))
            got[retries] = (a, m)
        print(f"| {176 * k} | {63.48 * k - 8.48:.1f} | {got[True][0]:.3%} / "
              f"{got[False][0]:.3%} | {got[True][1]:.3%} / {got[False][1]:.3%} |")


def hunt(seeds: list[int]) -> None:
    import json

    import hunt as h
    recs = {json.loads(line)["seed"]: json.loads(line)
            for line in (ROOT / "benchmarks" / "hunt" / "records.jsonl").open()}
    for s in seeds:
        _, data, prof, _, _ = h.build(s)
        n = recs[s]["simulated"]
        d0 = copy.deepcopy(data)
        d0.setdefault("retry", {})["max_retries"] = 0
        p0 = profile_from_dict(d0)
        f, r1, a = engine(prof, n, 8)
        f0, _, _ = engine(p0, n, 8)
        print(f"seed {s} at {n}: engine fresh {f:.3%} (none {f0:.3%}, nu "
              f"{1 - f0 / max(f, 1e-300):.2f}), first retries {r1:.2f}, attempts {a:.3%}")
        for (name, mf, ma), (_, m0, _) in zip(model(prof, n), model(p0, n), strict=True):
            print(f"    {name}: model fresh {mf:.3%} (none {m0:.3%}, nu "
                  f"{1 - m0 / max(mf, 1e-300):.2f}), attempts {ma:.3%}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "spread"
    if what == "spread":
        spread()
    elif what == "latency":
        latency()
    elif what == "population":
        population()
    else:
        hunt([int(x) for x in sys.argv[2].split(",")])
