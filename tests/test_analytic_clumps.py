"""The clumped window model on fan-outs of many small calls (issue 9, family A1).

Three roots are tested here, each against an independent reference:

* run signatures from grouped launches equal the pairwise enumeration of every run
  ``i..j`` of a turn's launches (the definition, re-implemented below), and a 1,000-copy
  fan-out or a 10,000-call turn stays bounded in memory;
* a charge much smaller than a lattice step keeps its mean and its size (the clump law
  is thinned, not renormalised; the size bias of rejections comes from the charges, not
  from their lattice spread);
* the analytic N* of the A1 family is never more than 5 % above the simulated one, and
  the analytic 429 share is never below the retry-free stop-loss bracket.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capacity.analytic.clumped import clumped_window_model
from capacity.analytic.model import analyze, cycle_time
from capacity.analytic.timing import TurnTiming, turn_timing
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]


def fanout(count: Any, tpm: float, inp: Any = 100, out: Any = 10, window: str = "10s",
           enforcement: str = "fixed_window", extra: list[dict[str, Any]] | None = None
           ) -> Profile:
    """Issue 9 A1: a turn that fans out ``count`` small calls at once."""
    steps: list[dict[str, Any]] = [{"parallel": {"count": count, "call": {
        "model": "m", "input_tokens": inp, "output_tokens": out}}}]
    return profile_from_dict({
        "name": "a1",
        "models": {"m": {"tokens_per_second": 100, "ttft": "0.5s"}},
        "quotas": {"q": {"models": ["m"], "tpm": tpm,
                         "enforcement": {"type": enforcement, "window": window}}},
        "session": {"think_time": {"exponential": "60s"},
                    "turns": {"t": {"steps": steps + (extra or [])}}},
    })


def mixed() -> Profile:
    """Loops of fan-outs with optional calls: ties, gaps and several call specs."""
    return profile_from_dict({
        "name": "mixed",
        "models": {"m": {"tokens_per_second": 50, "ttft": {"uniform": ["0.2s", "1.0s"]}}},
        "quotas": {"q": {"models": ["m"], "tpm": 400000}},
        "session": {"think_time": {"exponential": "20s"}, "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 1000,
                      "output_tokens": {"uniform": [10, 100]}}},
            {"repeat": {"count": {"uniform": [1, 12]}, "steps": [
                {"parallel": {"count": {"uniform": [1, 5]}, "call": {
                    "model": "m", "input_tokens": 300, "output_tokens": 20}}},
                {"optional": {"probability": 0.5, "steps": [{"call": {
                    "model": "m", "input_tokens": 50, "output_tokens": 5}}]}},
            ]}},
        ]}}},
    })


def pairwise_runs(tm: TurnTiming, w: float) -> dict[tuple[int, ...], float]:
    """The definition: every run ``i..j`` of sorted launches, caught for window starts in
    ``(τ_{i−1}, τ_i] ∩ (τ_j − w, τ_{j+1} − w]``, summed per signature, per turn."""
    out: dict[tuple[int, ...], float] = {}
    k = len(tm.specs)
    for row_t, row_c in zip(tm.times, tm.calls, strict=True):
        ts = [float(x) for x in row_t if math.isfinite(x)]
        cs = [int(x) for x in row_c[: len(ts)]]
        r = len(ts)
        for i in range(r):
            prev = ts[i - 1] if i > 0 else -math.inf
            for j in range(i, r):
                if ts[j] - ts[i] >= w:
                    break
                nxt = ts[j + 1] if j + 1 < r else math.inf
                length = min(ts[i], nxt - w) - max(prev, ts[j] - w)
                if length > 0:
                    sig = [0] * k
                    for x in cs[i: j + 1]:
                        sig[x] += 1
                    out[tuple(sig)] = out.get(tuple(sig), 0.0) + length
    return {s: v / tm.n for s, v in out.items()}


def pairwise_cross(tm: TurnTiming, w: float, weight: np.ndarray, max_lag: int = 64) -> float:
    """``2·E[Σ x_a x_b (w − |t_b − t_a|)^+]`` over launches of turn i and i + lag."""
    n = tm.n
    fin = np.isfinite(tm.times)
    x = np.where(tm.calls >= 0, weight[np.maximum(tm.calls, 0)], 0.0)
    total = 0.0
    start = np.zeros(n)
    for lag in range(1, max_lag + 1):
        start = start + tm.gap[(np.arange(n) + lag - 1) % n]
        for i in range(n):
            o = (i + lag) % n
            a, b = tm.times[i][fin[i]], start[i] + tm.times[o][fin[o]]
            d = np.abs(b[None, :] - a[:, None])
            total += float((x[i][fin[i]][:, None] * x[o][fin[o]][None, :]
                            * np.clip(w - d, 0.0, None)).sum())
    return 2.0 * total / n


def small_timing(profile: Profile, n: int) -> TurnTiming:
    return turn_timing(Workload.from_profile(profile), n=n)


@pytest.mark.parametrize("make", [
    lambda: fanout(7, 3e6), mixed,
    lambda: load_profile(ROOT / "profiles" / "tool-agent.yaml"),
    lambda: load_profile(ROOT / "profiles" / "web-research.yaml"),
])
def test_grouped_runs_equal_the_pairwise_enumeration(make: Any) -> None:
    tm = small_timing(make(), 256)
    weight = np.arange(1.0, len(tm.specs) + 1.0) * 100.0
    for w in (1.0, 10.0, 60.0):
        length, sigs = tm.runs(w)
        got = {tuple(int(v) for v in s): float(x) for s, x in zip(sigs, length, strict=True)}
        want = pairwise_runs(tm, w)
        assert set(got) == set(want)
        for s, v in want.items():
            assert got[s] == pytest.approx(v, rel=1e-12, abs=1e-12)
        # Every launch is seen for w seconds in all.
        assert float(length @ sigs.sum(axis=1)) == pytest.approx(
            w * float((tm.calls >= 0).sum()) / tm.n, rel=1e-9)
    assert tm.cross_moment(10.0, weight, 8) == pytest.approx(
        pairwise_cross(tm, 10.0, weight, 8), rel=1e-9)


def test_a_thousand_copy_fanout_is_one_event() -> None:
    tm = turn_timing(Workload.from_profile(fanout(1000, 3e7)))
    gt, gc = tm.groups()
    assert gt.shape[1] == 1 and (gc[:, 0, 0] == 1000).all()
    length, sigs = tm.runs(10.0)
    assert sigs.tolist() == [[1000]] and float(length[0]) == pytest.approx(10.0)


def test_fanout_and_ten_thousand_call_turn_stay_bounded() -> None:
    loop = {"repeat": {"count": 100, "steps": [{"repeat": {"count": 100, "steps": [
        {"call": {"model": "m", "input_tokens": 100, "output_tokens": 10}}]}}]}}
    long_turn = profile_from_dict({
        "name": "loop", "models": {"m": {"tokens_per_second": 1000, "ttft": "0.01s"}},
        "quotas": {"q": {"models": ["m"], "tpm": 3e7}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {"t": {"steps": [loop]}}},
    })
    for profile in (fanout(1000, 3e7), long_turn):
        tracemalloc.start()
        try:
            tm = turn_timing(Workload.from_profile(profile))
            assert tm.times.size <= 1 << 20  # launch records: the stated bound
            tm.runs(10.0)
            tm.cross_moment(10.0, np.ones(len(tm.specs)) * 110.0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 400e6, f"{profile.title}: {peak / 1e6:.0f} MB"
    # The whole analytic answer for the 1,000-copy fan-out is small too.
    tracemalloc.start()
    try:
        res = analyze(fanout(1000, 3e7))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.burst_ceiling <= res.mean_ceiling and peak < 400e6


@pytest.mark.parametrize("count", [10, 300])
def test_small_charges_keep_their_mean_and_size(count: int) -> None:
    # 110-token calls against a 5,000,000-token window: the step is q/2048 ≈ 2,441.
    p = fanout(count, 3e7)
    wl = Workload.from_profile(p)
    c = wl.constraints[0]
    m = clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    assert m.h > 110
    for n in (100, 1000):
        g = m.pmf(n)
        exact = n * m.mean_units / m.h
        assert float(np.arange(g.size) @ g) == pytest.approx(exact, rel=1e-6)
    # Every call charges exactly 110 tokens: the rejected calls are not larger ones.
    assert m.size_bias == pytest.approx(1.0, abs=1e-3)


def rare(common: bool, enforcement: str, with_rare: bool = True) -> Profile:
    """A call made by one turn in 10^6 (a fan-out of count 0 or 1, never walked by the
    turn sample), alone or beside a call every turn makes; charges differ (10 vs 5,000
    input tokens) so a misplaced load shows."""
    steps: list[dict[str, Any]] = [{"parallel": {
        "count": {"choice": {"values": [0, 1], "weights": [0.999999, 0.000001]}},
        "call": {"model": "m", "input_tokens": 5000, "output_tokens": 10}}}]
    if not with_rare:
        steps = []
    if common:
        steps.insert(0, {"call": {"model": "m", "input_tokens": 10, "output_tokens": 10}})
    return profile_from_dict({
        "name": "rare",
        "models": {"m": {"tokens_per_second": 50, "ttft": "0.5s"}},
        "quotas": {"q": {"models": ["m"], "rpm": 60, "tpm": 100000,
                         "enforcement": {"type": enforcement, "window": "60s"}}},
        "session": {"think_time": "10s", "turns": {"t": {"steps": steps}}},
    })


@pytest.mark.parametrize("enforcement", ["fixed_window", "sliding_window"])
@pytest.mark.parametrize("common", [False, True])
def test_calls_the_sample_misses_keep_their_exact_load(common: bool, enforcement: str
                                                       ) -> None:
    """Issue 13: each call's mean window load is exact although the fixed-seed turn
    sample never makes the rare one, so neither the load nor the ceiling collapses."""
    wl = Workload.from_profile(rare(common, enforcement))
    cyc = cycle_time(wl).cycle_s
    for c in wl.constraints:
        m = clumped_window_model(wl, c, cyc).inner
        assert m.mean_units == pytest.approx(wl.units_per_turn(c) * c.window_s / cyc)
        assert m.mean_units > 0 and m.p_single > 0
        g = m.pmf(1000)
        # The window count's mean is the exact mean load (to the lattice's rounding).
        assert float(np.arange(g.size) @ g) * m.h == pytest.approx(
            1000 * m.mean_units, rel=1e-6)
        # Calls per window: exact launches per turn (1 + 1e-6, or 1e-6).
        assert m.calls_per_window * cyc / c.window_s == pytest.approx(
            (1.0 if common else 0.0) + 1e-6, rel=1e-9)
    res = analyze(wl.profile, workload=wl)
    if common:
        # One extra call in 10^6 turns barely moves the ceiling of the common call.
        alone = analyze(rare(True, enforcement, with_rare=False))
        for row, ref in zip(res.constraints, alone.constraints, strict=True):
            assert ref.burst_ceiling * 0.99 <= row.burst_ceiling <= ref.burst_ceiling
    else:
        # Never below the evidence: the rare-only turn carries millions of sessions.
        assert min(row.burst_ceiling for row in res.constraints) >= 10**5


# The A1 family at a tpm that keeps the simulations small (≈1M attempts each): fan-outs
# of 1 to 1,000 calls, fixed and random charges. (count, input, output, tpm)
FAMILY = [
    (10, 100, 10, 3e5),
    (100, 100, 10, 3e6),
    (300, 100, 10, 3e6),
    (1000, 100, 10, 3e6),
    (50, {"uniform": [50, 500]}, {"uniform": [1, 40]}, 3e6),
    ({"uniform": [1, 200]}, 100, 10, 3e6),
]


@pytest.mark.parametrize("count,inp,out,tpm", FAMILY)
def test_a1_family_analytic_ceiling_is_not_optimistic(count: Any, inp: Any, out: Any,
                                                      tpm: float) -> None:
    p = fanout(count, tpm, inp, out)
    res = analyze(p)
    n_a = res.burst_ceiling
    target = p.targets.max_429_fraction
    assert 1 <= n_a <= res.mean_ceiling
    # Issue 13's tolerance: the analytic N* is at most 5 % above the simulated N*, i.e.
    # the simulation meets the target at N*/1.05 (noise: 4 × 600 s, a 25 % margin).
    below = max(1, math.ceil(n_a / 1.05))
    sim = simulate(p, below, horizon_s=600.0, replications=4, seed=1)
    low = sim.metrics["attempt_429_fraction"].mean
    assert low <= 1.25 * target, (n_a, below, low)
    # And it is not wildly pessimistic either: 20 % above N* the target is missed.
    above = math.ceil(n_a * 1.2) + 1
    sim = simulate(p, above, horizon_s=600.0, replications=4, seed=1)
    high = sim.metrics["attempt_429_fraction"].mean
    assert high > target, (n_a, above, high)


@pytest.mark.parametrize("count", [10, 300, 1000])
def test_retries_only_add_to_the_stop_loss_share(count: int) -> None:
    p = fanout(count, 3e7)
    wl = Workload.from_profile(p)
    model = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    napkin = 3e7 / (count * 110 / cycle_time(wl).cycle_s * 60)
    for frac in (0.85, 0.9, 0.95, 0.99, 1.0):
        n = int(napkin * frac)
        ell = model.inner.stop_loss_share(n)
        st = model.stats(n)
        assert st.call_429_fraction >= ell * (1 - 1e-9)
        assert st.loss_fraction >= ell / (1 + ell) * (1 - 1e-9)
