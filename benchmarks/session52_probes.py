"""Session 52's probes (issue 13): a counted log of cadence sessions, a deep bucket's
closed loop, and a fleet's retries through a full fixed-window head.

Run from the repository root::

    python benchmarks/session52_probes.py cadence   # hunt-63: the free count bounds it
    python benchmarks/session52_probes.py closed    # a deep bucket's busy sessions
    python benchmarks/session52_probes.py fleet     # hunt-7: retries that spill again
    python benchmarks/session52_probes.py fleet-trace  # ... and how often, traced

``cadence``: hunt-63 (tests/data/cadence-counted-single.yaml: one call a turn, cadence
U(20, 36) s, a 30 s sliding log of 37 requests counting its refusals, no retries) at 29,
31 and 32 sessions: the free count's share of calls refused (the others' untruncated
Palm count over the window, the call's own session's earlier launch with it), the loss
log's share times the spells' ratio (the answer before session 52), the model's answer
now and the engine's (20 × 1 h, seed 1).

``closed``: chat-assistant with its OTPM limit alone on a 5 s token bucket (7,500 tokens,
1,500 a second), no retries, 176 sessions: the share of calls refused by the deep
bucket's level law with Poisson launches (the model before session 52), with the launch
rate falling as the deficit deepens (:class:`capacity.analytic.bucket.ClosedTurns`, now),
a Poisson replay of that falling rate (the model's own slope, by thinning: the WKB step
alone), replays of the closed loop itself (each session thinks an exponential pause of
the model's mean, its call holds it for the call's latency — ttft plus output at 60
tokens a second — a refused call holds it for nothing), once with each call's output
driving both its charge and its latency (as the model pairs them) and once with the
latencies shuffled, and the engine (10 × 1 h, seed 1).

``fleet``: hunt-7 (a priority route: fixed 5 s windows at a, a 1 s sliding log at b that
a spilled 20-call fan-out cannot fit; SDK retries) with b's RPM removed, at 84 sessions:
the model's receiving slot (the chance it gives a retry of spilling again at a, its share
of attempts refused and of calls failed) and the engine's per-deployment figures (10 ×
1 h, seed 1), with and without retries.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import heapq
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from analytic_accuracy import empty_stores  # noqa: E402
from session47_probes import _inner  # noqa: E402
from session48_probes import _hunt  # noqa: E402

from capacity.analytic import model as amodel  # noqa: E402
from capacity.analytic.bucket import DeepBucket  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate  # noqa: E402


def _engine(prof: Profile, n: int, reps: int) -> str:
    e = simulate(prof, n, replications=reps, seed=1, workers=1).metrics[
        "attempt_429_fraction"]
    return f"{e.mean:.3%} [{e.lo:.3%}–{e.hi:.3%}]"


def cadence() -> None:
    prof = load_profile(ROOT / "tests" / "data" / "cadence-counted-single.yaml")
    m = _inner(prof)
    print("| sessions | free count | loss log × spells (before) | model | engine |")
    print("|---|---|---|---|---|")
    for n in (29, 31, 32):
        trunc = m._sliding_h(n, 0.0, truncate=True)
        spells = min(1.0, trunc * m._counted_spells(n, trunc))
        now = m._sliding(n, exceed=False)["attempt"]
        print(f"| {n} | {m._sliding_h(n, 0.0):.3%} | {spells:.3%} | {now:.3%} | "
              f"{_engine(prof, n, 20)} |", flush=True)


def _otpm_bucket() -> Profile:
    data = yaml.safe_load((ROOT / "profiles" / "chat-assistant.yaml").read_text())
    q = data["quotas"]["org"]
    for k in ("rpm", "itpm"):
        q.pop(k)
    q["enforcement"] = {"type": "token_bucket", "burst": "5s"}
    data["retry"] = {"max_retries": 0}
    return profile_from_dict(data)


@contextlib.contextmanager
def _poisson_launches() -> Iterator[None]:
    """The deep bucket's launches as Poisson ones (no :class:`ClosedTurns`)."""
    keep = amodel.closed_turns
    amodel.closed_turns = lambda *a, **k: None  # type: ignore[assignment]
    try:
        yield
    finally:
        amodel.closed_turns = keep


def _share(prof: Profile, n: int) -> float:
    return float(analyze(prof, sessions=n).constraints[0].at_sessions.loss_fraction)  # type: ignore[union-attr]


def _charges(prof: Profile, rng: np.random.Generator, size: int) -> np.ndarray:
    call = prof.session.turns["message"].steps[0].call  # type: ignore[union-attr]
    out = np.rint(call.output_tokens.sample(rng, size))
    return np.minimum(out, float(call.max_tokens or math.inf))


def _replay_rate(lam: float, s: float, ybar: float, depth: float, refill: float,
                 charges: np.ndarray, rng: np.random.Generator) -> float:
    """Share refused with launches at ``λ − s·(y − ȳ)`` (``y`` the deficit), by thinning
    a Poisson stream twice as fast."""
    top = 2.0 * lam
    gaps = rng.exponential(1.0 / top, 4 * charges.size)
    keep = rng.random(gaps.size) * top
    level, refused, made, i = depth, 0, 0, 0
    for dt, u in zip(gaps.tolist(), keep.tolist(), strict=True):
        level = min(depth, level + dt * refill)
        if u > lam - s * (depth - level - ybar):
            continue
        b = charges[i]
        i += 1
        made += 1
        if b <= level:
            level -= b
        else:
            refused += 1
        if i == charges.size:
            break
    return refused / made


def _replay_closed(n: int, pause_s: float, depth: float, refill: float,
                   charges: np.ndarray, latency: np.ndarray,
                   rng: np.random.Generator) -> float:
    """Share refused by ``n`` sessions thinking Exp(``pause_s``), each admitted call
    holding its session ``latency`` seconds (a refused one: none)."""
    thinking = n
    busy: list[float] = []
    t, level, refused = 0.0, depth, 0
    draws = rng.exponential(1.0, 2 * charges.size).tolist()
    k = 0
    for i in range(charges.size):
        while True:
            dt = draws[k] * pause_s / thinking
            k += 1
            if busy and busy[0] < t + dt:
                end = heapq.heappop(busy)
                level = min(depth, level + (end - t) * refill)
                t = end
                thinking += 1
                continue
            t += dt
            level = min(depth, level + dt * refill)
            break
        b = charges[i]
        if b <= level:
            level -= b
            heapq.heappush(busy, t + latency[i])
            thinking -= 1
        else:
            refused += 1
    return refused / charges.size


def closed() -> None:
    prof = _otpm_bucket()
    n = 176
    wl = Workload.from_profile(prof)
    cyc = cycle_time(wl)
    c = wl.constraints[0]
    model = amodel.constraint_model(wl, c, cyc.cycle_s)
    deep = model.chain  # type: ignore[union-attr]
    assert isinstance(deep, DeepBucket) and deep.closed is not None
    lam = n / cyc.cycle_s
    g = deep.grids()[1]
    now = _share(prof, n)
    empty_stores()  # (the models are kept per profile: built again without the tilt)
    with _poisson_launches():
        poisson = _share(prof.model_copy(deep=True), n)
        pi = deep._plain_law(g, lam)
    assert not isinstance(pi, float)
    slope = deep.closed.slope(pi, g, lam, deep.refill)
    assert slope is not None
    s, ybar, _ = slope
    s *= deep._closed_fade(g)                  # (1 here: the tilt holds whole)
    rng = np.random.default_rng(1)
    size = 1_000_000
    charges = _charges(prof, rng, size)
    ttft = prof.models["claude-sonnet"].ttft.sample(rng, size)
    latency = ttft + charges / prof.models["claude-sonnet"].tokens_per_second.mean
    print(f"chat-assistant, OTPM on a 5 s bucket, no retries, {n} sessions "
          f"({lam:.3f} calls a second, the mean pause {deep.closed.pause_s:.1f} s, "
          f"slope {s:.3g} calls a second per token of deficit, mean deficit "
          f"{ybar:,.0f} tokens):")
    print("| Poisson launches (before) | falling rate (now) | replayed falling rate | "
          "closed loop replayed | ... latencies shuffled | engine |")
    print("|---|---|---|---|---|---|")
    rate = _replay_rate(lam, s, ybar, deep.depth, deep.refill, charges, rng)
    loop = _replay_closed(n, deep.closed.pause_s, deep.depth, deep.refill, charges,
                          latency, rng)
    shuffled = _replay_closed(n, deep.closed.pause_s, deep.depth, deep.refill, charges,
                              rng.permutation(latency), rng)
    print(f"| {poisson:.3%} | {now:.3%} | {rate:.3%} | {loop:.3%} | "
          f"{shuffled:.3%} | {_engine(prof, n, 10)} |")


def fleet() -> None:
    data = _hunt(7)
    del data["quotas"]["q1"]["rpm"]
    n = 84
    print("| retries | model: a retry spills again | model: attempts refused at b | "
          "model: calls failed | engine: a spills | engine: b refuses of its sends | "
          "engine: attempts refused | engine: calls failed |")
    print("|---|---|---|---|---|---|---|---|")
    for label, retry in (("SDK (2, told)", None), ("none", {"max_retries": 0})):
        d = copy.deepcopy(data)
        if retry is not None:
            d["retry"] = retry
        prof = profile_from_dict(d)
        from capacity.analytic.fleet import FleetAnalysis

        fa = FleetAnalysis(prof, Workload.from_profile(prof))
        feed: Any = next(e.model for e in fa.fm.entries if e.role == "receive")
        st = feed.stats(n)
        up = feed.upstream(n) if feed.upstream is not None else 1.0
        sim = simulate(prof, n, replications=10, seed=1, workers=1)
        a, b = sim.deployments["a"], sim.deployments["b"]
        print(f"| {label} | {up:.3f} | {st.loss_fraction:.3%} | "
              f"{st.call_failure_fraction:.3%} | {a.spill_fraction.mean:.3%} | "
              f"{b.reject_fraction.mean:.1%} | "
              f"{sim.metrics['attempt_429_fraction'].mean:.3%} | "
              f"{sim.metrics['call_failure_fraction'].mean:.3%} |", flush=True)


def fleet_trace() -> None:
    """hunt-7 (b's RPM removed, SDK retries) at 84 sessions, one replication traced
    (1 h, seed 1): a call refused at b comes back to a — how often a refuses it again
    (it spills), how often b then refuses it again, and how long after b's refusal."""
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_DEP, T_NODE, T_T

    data = _hunt(7)
    del data["quotas"]["q1"]["rpm"]
    tr = trace_attempts(profile_from_dict(data), 84, horizon_s=3600.0, seed=1)
    a_i, b_i = tr.deployments.index("a"), tr.deployments.index("b")
    rows = tr.rows
    order = np.lexsort((rows[:, T_T], rows[:, T_NODE]))
    r = rows[order]
    same = r[1:, T_NODE] == r[:-1, T_NODE]
    after_b = same & (r[:-1, T_DEP] == b_i) & (r[:-1, T_ADMITTED] == 0)
    at_a = after_b & (r[1:, T_DEP] == a_i)
    spilled = at_a & (r[1:, T_ADMITTED] == 0)
    gap = (r[1:, T_T] - r[:-1, T_T])[at_a]
    # Their next row: b again (the spill), refused or not.
    idx = np.flatnonzero(spilled) + 1
    nxt = idx[(idx + 1 < len(r))]
    nxt = nxt[r[nxt + 1, T_NODE] == r[nxt, T_NODE]]
    again_b = (r[nxt + 1, T_DEP] == b_i) & (r[nxt + 1, T_ADMITTED] == 0)
    first_a = (r[:, T_DEP] == a_i)
    print(f"attempts at a refused (spilled), all: {1.0 - r[first_a, T_ADMITTED].mean():.3%}; "
          f"retries after a refusal at b: {int(at_a.sum())}, refused at a again "
          f"{spilled.sum() / max(at_a.sum(), 1):.1%} (the model's chance: 0.038), back "
          f"after a median {np.median(gap):.2f} s; those refused at b again "
          f"{again_b.mean():.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["cadence", "closed", "fleet", "fleet-trace"])
    {"cadence": cadence, "closed": closed, "fleet": fleet,
     "fleet-trace": fleet_trace}[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
