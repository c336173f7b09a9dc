"""Session 53's probes (issue 13): a fleet's retries back into the full fixed window that
spilled them.

Run from the repository root::

    python benchmarks/session53_probes.py backoff   # hunt-3036, hunt-222: retry by retry
    python benchmarks/session53_probes.py told      # four fleets whose retries are told
    python benchmarks/session53_probes.py sliding   # sliding first logs, backoff retries
    python benchmarks/session53_probes.py chain     # three deployments, fixed windows
    python benchmarks/session53_probes.py receivers # a bucket or a log receiving

``backoff``: hunt-3036 (a priority route: fixed 60 s TPM windows at a spilling to fixed
15 s ones at b, four backoff retries, a fixed 100 s think time) at 40 sessions, the
receiver's share of attempts refused (the model, its rule before, the engine), then at
45 sessions and
hunt-222 (fixed 10 s ITPM/OTPM windows into fixed 60 s ones, five backoff retries,
``continue``) at 46, traced (2 × 30 min, seed 1): for each retry k of a call that a
spilled and b refused, the share of those made that a turned away again (it spilled)
and, of those, the share b turned away again, and their product down to retry k (the
chance retry k is refused); beside them the model's chances — a's window turning
retries 1…k away again (``ClumpWindowModel.refused_later``: where its refusals sit in
it, place by place), b's chance of being still short (``FeedModel._still_short``: a
fixed window on the same clock is; a sliding log or a bucket has renewed the delay's
share of its memory, and renewed refuses as it does the calls spilled to it)
and the chance retries 1…k are all refused as the model reads it
(``FeedModel.retry_chain``) — and each retry's mean delay (s: the two 429s' trips and
the mean backoffs). hunt-2 (a 30 s window spilling into a 5 s sliding log, five
backoff retries) at 259 sessions too.

``told``: four fleets of fixed windows spilling into a sliding log that tells its
retry-after (SDK retries): hunt-7 with b's RPM removed at 84 sessions, the fleet test's
pay-as-you-go on a 60 s log at 184, tests/data/spill-window-into-longer-log.yaml at 155
and hunt-143 at 194, traced (2 × 30 min, seed 1; the pay-as-you-go 4 ×): the share of
the retries of calls b refused that a turned away again, and of those the share b
turned away again, beside b's share of all its arrivals; and what the model would read
with the retry-after uniform over b's window (``refused_later``) and b's blocking of
its arrivals. Neither is the engine's: a log's oldest charges came in an earlier spill,
so the retry it tells comes back in phase with a's spills (a 60 s log behind 10 s
windows: a turns 97 % of them away again, the uniform delay says 42 %), and the calls
told one instant come back as a herd: 44-64 % of them turned away again where b turns
away 1-47 % of its arrivals. The model leaves these retries to its rule before session
53.

``sliding``: hunt-3027 (a 10 s sliding TPM log spilling to fixed 10 s windows, one
backoff retry) at 347 sessions and hunt-23 (a sliding log into a token bucket, two) at
163, traced as ``backoff``: a sliding first log far over its allowance turns 58-68 % of
those retries away again — more than a fresh draw of the room by the refused calls'
charges, less than its count's persistence read as Gaussian (both tried, neither kept)
— and the receiver 60-75 %; the model leaves them to the rule before session 53 (each
refused call's one retry admitted).

``chain``: tests/data/fleet-fixed-chain-three.yaml (three deployments of fixed windows,
four backoff retries) at 33 sessions, traced: of the calls a, b and c all turned away,
the share of each retry (of those made) that all three turn away again, and the
chance retries 1…k are all refused, beside the model's (the first deployment's window by where
its refusals sit, the later ones on the same clock still full); c's share of the route's calls
without retries, the model's and the engine's; and the N*, the model's and the
simulated one (the saturation search, 8 × 30 min).

``receivers``: the model's N* and the simulated one for a review's profiles whose last
deployment is a token bucket or a sliding log (``receiver_variants``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from session48_probes import _hunt  # noqa: E402

from capacity.analytic.fleet import FleetAnalysis  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_DEP, T_NODE, T_T  # noqa: E402


def _receivers(prof: Profile) -> list[Any]:
    fa = FleetAnalysis(prof, Workload.from_profile(prof))
    return [e.model for e in fa.fm.entries if e.role == "receive"]


def _rows(prof: Profile, n: int, reps: int) -> list[np.ndarray]:
    out = []
    for rep in range(reps):
        tr = trace_attempts(prof, n, horizon_s=1800.0, seed=1, replication=rep)
        r = tr.rows
        out.append(r[np.lexsort((r[:, T_T], r[:, T_NODE]))])
    return out


def _calls(prof: Profile, n: int) -> Iterator[tuple[list[int], list[float]]]:
    """Each call's attempts in order (2 × 30 min traced, seed 1): the deployment each
    went to and whether it was admitted."""
    for r in _rows(prof, n, 2):
        node, att = r[:, T_NODE], r[:, T_ATTEMPT]
        # A node is reused by later calls: a call starts where its attempts restart.
        starts = np.flatnonzero(np.r_[True, (node[1:] != node[:-1])
                                      | (att[1:] <= att[:-1])])
        ends = np.r_[starts[1:], len(r)]
        for s0, s1 in zip(starts, ends, strict=True):
            yield r[s0:s1, T_DEP].astype(int).tolist(), r[s0:s1, T_ADMITTED].tolist()


def _engine_retries(prof: Profile, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per retry k of a call a spilled and b refused: retries made, of them spilled by
    a again, of those refused by b again (2 × 30 min, seed 1)."""
    m = prof.retry.max_retries
    made = np.zeros(m)
    spilled = np.zeros(m)
    refused = np.zeros(m)
    for dep, ok in _calls(prof, n):
        # The call's path: a (spilled), b (refused), then each retry at a, ...
        if len(dep) < 3 or dep[0] != 0 or ok[0] or dep[1] != 1 or ok[1]:
            continue
        i, k = 2, 0
        while i < len(dep) and k < m and dep[i] == 0:
            made[k] += 1
            if ok[i]:
                break
            spilled[k] += 1
            if i + 1 >= len(dep) or dep[i + 1] != 1 or ok[i + 1]:
                break
            refused[k] += 1
            i, k = i + 2, k + 1
    return made, spilled, refused


def sliding() -> None:
    for seed, n in ((3027, 347), (23, 163)):
        prof = profile_from_dict(_hunt(seed))
        made, spilled, refused = _engine_retries(prof, n)
        head = max((e.model for e in FleetAnalysis(
            prof, Workload.from_profile(prof)).fm.entries if e.role == "spill"),
            key=lambda x: x.stats(n).loss_fraction)
        print(f"hunt-{seed} at {n} sessions: a's share of calls (model) "
              f"{head.stats(n).loss_fraction:.3f}")
        for k in range(prof.retry.max_retries):
            print(f"  retry {k + 1}: engine a again {spilled[k] / max(made[k], 1):.3f} "
                  f"({int(made[k])}), b again {refused[k] / max(spilled[k], 1):.3f} "
                  f"({int(spilled[k])})")


def chain() -> None:
    path = ROOT / "tests" / "data" / "fleet-fixed-chain-three.yaml"
    prof = load_profile(path)
    n = 33
    m = prof.retry.max_retries
    made = np.zeros(m)
    again = np.zeros(m)
    for dep, ok in _calls(prof, n):
        # First attempts refused at a, b and c; then each retry's round.
        if dep[:3] != [0, 1, 2] or any(ok[:3]):
            continue
        i, k = 3, 0
        while i + 2 < len(dep) + 2 and k < m and i < len(dep) and dep[i] == 0:
            made[k] += 1
            if dep[i:i + 3] == [0, 1, 2] and not any(ok[i:i + 3]):
                again[k] += 1
                i, k = i + 3, k + 1
            else:
                break
    feed = next(f for f in _receivers(prof) if f.c.quota == "q2")
    print(f"{path.name} at {n} sessions: a call a, b and c turned away, retry by retry "
          f"(engine: 2 x 30 min, seed 1)")
    print("| retry | delay (s) | engine: refused by all three again | engine: joint | "
          "model: joint |")
    print("|---|---|---|---|---|")
    joint = 1.0
    for k, ((*_, mean), t) in enumerate(zip(feed.later(n), feed.retry_chain(n),
                                           strict=True)):
        joint *= again[k] / max(made[k], 1)
        print(f"| {k + 1} | {mean:.2f} | {again[k] / max(made[k], 1):.3f} "
              f"({int(made[k])}) | {joint:.3f} | {t:.3f} |")
    bare = copy.deepcopy(yaml.safe_load(path.read_text()))
    bare["retry"] = {"max_retries": 0}
    plain = profile_from_dict(bare)
    own = next(f for f in _receivers(plain) if f.c.quota == "q2").stats(n)
    sim = simulate(plain, n, replications=6, seed=1, workers=1, horizon_s=1800.0)
    print(f"without retries, c's share of the route's calls at {n} sessions: model "
          f"{own.call_429_fraction:.2%}, engine "
          f"{sim.metrics['attempt_429_fraction'].mean:.2%} (6 x 30 min, seed 1)")
    from capacity.analytic.model import analyze
    from capacity.whatif.ceiling import SimSettings, ceiling

    res = ceiling(prof, "both", sim=SimSettings(seed=1, replications=8, horizon_s=1800.0))
    assert res.simulated is not None
    print(f"N*: model {analyze(prof).burst_ceiling}, simulated {res.simulated.n_star} "
          f"[{res.simulated.n_lo}-{res.simulated.n_hi}] (seed 1, 8 x 30 min)")


def receiver_variants() -> list[tuple[str, dict[str, Any]]]:
    """hunt-3036 with its second deployment a 15 s token bucket or a 15 s sliding log,
    and the three-deployment chain with a 15 s fixed window second and a 15 s bucket
    last (a review's profiles)."""
    base = yaml.safe_load((ROOT / "tests" / "data" /
                           "fleet-fixed-backoff-same-windows.yaml").read_text())
    out = []
    for label, enf in (("hunt-3036, b a 15 s bucket", {"type": "token_bucket",
                                                        "burst": "15s"}),
                       ("hunt-3036, b a 15 s sliding log", {"type": "sliding_window",
                                                             "window": "15s"})):
        d = copy.deepcopy(base)
        d["quotas"]["q1"]["enforcement"] = enf
        out.append((label, d))
    d = yaml.safe_load((ROOT / "tests" / "data" / "fleet-fixed-chain-three.yaml"
                        ).read_text())
    d["quotas"]["q1"]["enforcement"] = {"type": "fixed_window", "window": "15s"}
    d["quotas"]["q2"]["enforcement"] = {"type": "token_bucket", "burst": "15s"}
    out.append(("three deployments, c a 15 s bucket", d))
    return out


def receivers() -> None:
    from capacity.analytic.model import analyze
    from capacity.whatif.ceiling import SimSettings, ceiling

    print("| profile | model N* | simulated N* (seed 1, 8 x 30 min) |")
    print("|---|---|---|")
    for label, d in receiver_variants():
        prof = profile_from_dict(d)
        res = ceiling(prof, "both", sim=SimSettings(seed=1, replications=8,
                                                    horizon_s=1800.0))
        assert res.simulated is not None
        sim = res.simulated
        print(f"| {label} | {analyze(prof).burst_ceiling} | {sim.n_star} "
              f"[{sim.n_lo}-{sim.n_hi}] |", flush=True)


def backoff() -> None:
    prof = profile_from_dict(_hunt(3036))
    feed = max((f for f in _receivers(prof) if f.later is not None),
               key=lambda f: f.stats(40).loss_fraction)
    st = feed.stats(40)
    call = st.call_429_fraction
    sim = simulate(prof, 40, replications=6, seed=1, workers=1, horizon_s=1800.0)
    print(f"hunt-3036 at 40 sessions, the receiver's share of attempts refused: model "
          f"{st.loss_fraction:.2%} (the rule before, each refused call's one retry "
          f"admitted: {call / (1.0 + call):.2%}), engine "
          f"{sim.metrics['attempt_429_fraction'].mean:.2%} (6 x 30 min, seed 1)")
    for seed, n in ((3036, 45), (222, 46), (2, 259)):
        prof = profile_from_dict(_hunt(seed))
        made, spilled, refused = _engine_retries(prof, n)
        feeds = [f for f in _receivers(prof) if f.later is not None]
        print(f"hunt-{seed} at {n} sessions (engine: 2 x 30 min, seed 1)")
        print("| retry | delay (s) | engine: a again | engine: b again | engine: refused "
              "| model: a refuses again (1…k) | model: b still short | model: refused |")
        print("|---|---|---|---|---|---|---|---|")
        worst = max(feeds, key=lambda f: f.stats(n).loss_fraction)
        both = 1.0
        chain = worst.retry_chain(n)
        g, offered = worst.window_law(n)
        blocked = worst._arrival_share(n, worst.stats(n).call_429_fraction,
                                       float(np.dot(np.arange(g.size), g)), offered)
        for k, (a, mean) in enumerate(worst.later(n)):
            ea, eb = spilled[k] / max(made[k], 1), refused[k] / max(spilled[k], 1)
            both *= ea * eb
            print(f"| {k + 1} | {mean:.2f} | {ea:.3f} ({int(made[k])}) | {eb:.3f} "
                  f"({int(spilled[k])}) | {both:.3f} | {a:.3f} | "
                  f"{worst._still_short(mean, blocked):.3f} | {chain[k]:.3f} |")


def _paygo() -> Profile:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_analytic_fleet import EDITS, SPILL

    old, new = EDITS["paygo-sliding"]
    data = yaml.safe_load(SPILL.replace(old, new))
    data["cooldown"] = None
    return profile_from_dict(data)


def told() -> None:
    h7 = _hunt(7)
    del h7["quotas"]["q1"]["rpm"]
    cases = (("hunt-7, b's RPM removed", profile_from_dict(h7), 84, 2),
             ("pay-as-you-go, 60 s log", _paygo(), 184, 4),
             ("spill-window-into-longer-log", load_profile(
                 ROOT / "tests" / "data" / "spill-window-into-longer-log.yaml"), 155, 2),
             ("hunt-143", profile_from_dict(_hunt(143)), 194, 2))
    print("| fleet | sessions | engine: a again | uniform retry-after: a again | "
          "engine: b again | engine: b refuses of arrivals | model: b's blocking |")
    print("|---|---|---|---|---|---|---|")
    for label, prof, n, reps in cases:
        again_a, again_b, share = [], [], []
        for r in _rows(prof, n, reps):
            same = np.r_[r[1:, T_NODE] == r[:-1, T_NODE], False]
            at_b = r[:, T_DEP] == 1
            i = np.flatnonzero(at_b & (r[:, T_ADMITTED] == 0) & same) + 1
            back = i[r[i, T_DEP] == 0]
            again_a.append(r[back, T_ADMITTED] == 0)
            sp = back[(r[back, T_ADMITTED] == 0) & same[back]]
            sp = sp[r[sp + 1, T_DEP] == 1]
            again_b.append(r[sp + 1, T_ADMITTED] == 0)
            share.append(1.0 - r[at_b, T_ADMITTED].mean())
        a_e, b_e = np.concatenate(again_a), np.concatenate(again_b)
        feed = max(_receivers(prof), key=lambda f: f.stats(n).loss_fraction)
        head = max((e.model for e in FleetAnalysis(
            prof, Workload.from_profile(prof)).fm.entries if e.role == "spill"),
            key=lambda x: x.stats(n).loss_fraction)
        lat = float(prof.retry.rejection_latency)
        wb = feed.window_s
        mid = (np.arange(16) + 0.5) / 16

        def uniform(u: np.ndarray, w: float, wb: float = wb, lat: float = lat,
                    mid: np.ndarray = mid) -> tuple[np.ndarray, np.ndarray]:
            return np.broadcast_to(lat + wb * mid, (u.size, 16)), np.full(16, 1 / 16)
        up = head.inner.refused_later(n, [uniform])[0]
        g, _ = feed.window_law(n)
        mean_s = float(np.dot(np.arange(g.size), g))
        print(f"| {label} | {n} | {a_e.mean():.3f} ({a_e.size}) | {up:.3f} | "
              f"{b_e.mean():.3f} ({b_e.size}) | {np.mean(share):.3f} | "
              f"{feed._arrival_blocking(n, g, mean_s):.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["backoff", "told", "sliding", "chain", "receivers"])
    {"backoff": backoff, "told": told, "sliding": sliding, "chain": chain,
     "receivers": receivers}[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
