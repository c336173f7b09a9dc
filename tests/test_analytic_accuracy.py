"""The analytic model of issue 13: clumped turns, the closed-loop correction, retries.

Expected values are computed here from first principles (hand-derived run lengths, a
brute-force Markov chain, direct Monte Carlo of one session) or by small simulations of
the real engine; none is copied from the code under test. The full accuracy table
(analytic vs simulated N* on every workload) is `benchmarks/analytic_accuracy.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from capacity.analytic.clumped import clumped_window_model, timing_of
from capacity.analytic.model import analyze, cycle_time
from capacity.analytic.window import _lindley, _size_bias
from capacity.model.workload import Workload
from capacity.profile.loader import profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import simulate


def dag(enforcement: dict[str, Any], *, pause: dict[str, Any] | None = None,
        retry: dict[str, Any] | None = None, rpm: int = 500) -> Profile:
    """1 → 3 → 1 calls of exactly 1 s each (ttft 0.5 s + 50 tokens at 100/s)."""
    c = {"model": "m", "input_tokens": 100, "output_tokens": 50}
    data: dict[str, Any] = {
        "models": {"m": {"ttft": 0.5, "tokens_per_second": 100}},
        "quotas": {"q": {"models": ["m"], "rpm": rpm, "enforcement": enforcement}},
        "session": {**(pause or {"cadence": "150s"}), "turns": {"t": {"steps": [
            {"call": c}, {"parallel": {"count": 3, "call": c}}, {"call": c}]}}},
        "targets": {"max_429_fraction": 0.01},
    }
    if retry is not None:
        data["retry"] = retry
    return profile_from_dict(data)


def window(w: float, kind: str = "fixed_window") -> dict[str, Any]:
    """Window enforcement of ``w`` seconds."""
    return {"type": kind, "window": w}


def test_run_lengths_by_hand() -> None:
    """Launches at 0, 1, 2 s (1, 3, 1 calls) in 10-s windows: the phase measure of each run.

    Window start u relative to the turn start: {first} for u ∈ (−10, −9], {first, fan-out}
    for (−9, −8], all five calls for (−8, 0], {fan-out, last} for (0, 1], {last} for
    (1, 2]: 12 s in all, clumps of 1, 4, 5, 4, 1 calls.
    """
    prof = dag(window(10))
    wl = Workload.from_profile(prof)
    length, sigs = timing_of(wl).runs(10.0)
    by_size: dict[int, float] = {}
    for ln, sig in zip(length, sigs, strict=True):
        by_size[int(sig.sum())] = by_size.get(int(sig.sum()), 0.0) + float(ln)
    assert by_size == pytest.approx({1: 2.0, 4: 2.0, 5: 8.0}, abs=1e-9)
    # Every launch is seen for exactly w seconds of phase: Σ length·|sig| = w · 5.
    assert float(np.dot(length, sigs.sum(axis=1))) == pytest.approx(50.0, rel=1e-12)
    m = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    assert m.p_single == pytest.approx(12 / 150, rel=1e-12)
    # A fixed cadence much longer than the window: no two turns share one (binomial).
    assert m.p_binomial == pytest.approx(m.p_single, rel=1e-12)
    np.testing.assert_allclose(m.clump_pmf[[1, 4, 5]], [2 / 12, 2 / 12, 8 / 12], atol=1e-12)


def test_runs_conserve_launches_for_random_structure() -> None:
    """Loops, optional steps and random fan-outs: every launch seen for w s of phase."""
    c = {"model": "m", "input_tokens": 100, "output_tokens": {"uniform": [10, 300]}}
    prof = profile_from_dict({
        "models": {"m": {"ttft": {"uniform": [0.2, 1.0]}, "tokens_per_second": 50}},
        "quotas": {"q": {"models": ["m"], "rpm": 600,
                         "enforcement": {"type": "fixed_window", "window": "10s"}}},
        "session": {"think_time": {"exponential": "30s"}, "turns": {"t": {"steps": [
            {"call": c},
            {"repeat": {"count": {"choice": {"values": [0, 1, 2]}}, "call": c}},
            {"optional": {"probability": 0.5, "call": c}},
            {"parallel": {"count": {"uniform": [1, 4]}, "call": c}}]}}},
    })
    t = timing_of(Workload.from_profile(prof))
    launches = float(np.isfinite(t.times).sum()) / t.n
    for w in (1.0, 10.0, 60.0):
        length, sigs = t.runs(w)
        assert float(np.dot(length, sigs.sum(axis=1))) == pytest.approx(w * launches,
                                                                       rel=1e-9)


def test_closed_loop_second_moment_matches_one_session_by_monte_carlo() -> None:
    """One session (Exp(60 s) think, 1→3→1 of 1-s calls, 60-s windows): the model's
    per-session window-count mean and variance equal a direct Monte Carlo of the session
    (two turns often share a window here, which the binomial part must account for).
    """
    prof = dag(window(60), pause={"think_time": {"exponential": "60s"}})
    wl = Workload.from_profile(prof)
    m = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    k = np.arange(m.clump_pmf.size)
    e_b, e_b2 = float(np.dot(k, m.clump_pmf)), float(np.dot(k * k, m.clump_pmf))
    model_mean = m.p_single * e_b
    model_var = m.p_single * e_b2 - m.p_binomial**2 * e_b**2
    # Direct: a long path of one session, calls at start + 0, 1 (×3), 2 s; turn 3 s.
    rng = np.random.default_rng(5)
    cycles = 3.0 + rng.exponential(60.0, 400_000)
    starts = np.concatenate([[0.0], np.cumsum(cycles)[:-1]])
    times = np.sort(np.concatenate([starts, starts + 1, starts + 1, starts + 1,
                                    starts + 2]))
    edges = np.arange(0.0, starts[-1], 60.0) + rng.uniform(0, 60)
    counts = np.diff(np.searchsorted(times, edges))
    assert model_mean == pytest.approx(counts.mean(), rel=0.01)
    assert model_var == pytest.approx(counts.var(), rel=0.03)
    # And the correction matters here: a compound Poisson would overstate the variance.
    assert m.p_single * e_b2 > 1.1 * counts.var()


def test_lindley_against_a_markov_chain() -> None:
    """Carried retries: E[Y] of Y' = (S + Y − q)⁺ equals the chain's stationary mean."""
    rng = np.random.default_rng(3)
    g = rng.dirichlet(np.ones(12))          # S on 0..11
    g = g * np.exp(-0.25 * np.arange(12))   # load below the allowance
    g /= g.sum()
    q = 7
    size = 200
    p = np.zeros((size, size))
    for y in range(size):
        for s, ps in enumerate(g):
            p[y, min(max(y + s - q, 0), size - 1)] += ps
    pi = np.ones(size) / size
    for _ in range(20_000):
        pi = pi @ p
    exact = float(np.dot(np.arange(size), pi))
    padded = np.zeros(256)
    padded[: g.size] = g
    _, e_y = _lindley(padded, float(q), windows=5000, rtol=1e-12)
    assert e_y == pytest.approx(exact, rel=1e-4)


def test_size_bias_by_hand() -> None:
    """Charges 1 or 3 with equal odds: F_e(1) = 1/2, F_e(3) = (1 + ½·2)/2 = 1, so
    κ = E[B]·E[F_e(B)] / E[B·F_e(B)] = 2·(3/4) / (1/4 + 3/2) = 6/7; equal charges: κ = 1."""
    assert _size_bias(np.array([0.0, 0.5, 0.0, 0.5])) == pytest.approx(6 / 7, rel=1e-12)
    assert _size_bias(np.array([0.0, 0.0, 1.0])) == pytest.approx(1.0, rel=1e-12)


def test_retries_lower_the_ceiling_and_the_attempt_share_is_reported() -> None:
    """Carried retries add attempts: the ceiling is at most the no-retry one, and the
    result says which share it bounds (attempts) and reports the calls' share too."""
    base = analyze(dag(window(10), retry={"max_retries": 0}))
    with_retries = analyze(dag(window(10)))
    assert with_retries.burst_ceiling <= base.burst_ceiling
    at = with_retries.binding.at_burst_ceiling
    assert at is not None
    d = at.to_dict()
    assert d["attempt_429_fraction"] == d["loss_fraction"] <= 0.01
    assert d["call_429_fraction"] >= d["attempt_429_fraction"]


def test_counted_retried_sliding_window_is_flagged_unstable() -> None:
    """Sliding window, counted rejections, retries: a storm fixed point exists above
    q / ((1 + m)·calls per window) sessions — the result says "Unstable above N"."""
    res = analyze(dag(window(10, "sliding_window"), pause={"think_time": {
        "exponential": "120s"}}))
    assert any(n.startswith("Unstable above") for n in res.notes)
    wl = Workload.from_profile(dag(window(10, "sliding_window"), pause={"think_time": {
        "exponential": "120s"}}))
    cycle = cycle_time(wl).cycle_s
    n_u = int(res.notes[0].split()[2].replace(",", ""))
    assert n_u == math.ceil(83 / (3 * 5 * 10 / cycle))
    fixed = analyze(dag(window(10), pause={"think_time": {"exponential": "120s"}}))
    assert not fixed.notes


@pytest.mark.parametrize("w", [1, 10])
def test_small_simulation_brackets_the_analytic_ceiling(w: int) -> None:
    """The engine's attempt share at the analytic N* is near the 1% target, and 15% more
    sessions clearly miss it (8 replications × 1 simulated hour, a fixed seed)."""
    prof = dag(window(w), pause={"think_time": {"exponential": "120s"}})
    n = analyze(prof).burst_ceiling
    at = simulate(prof, n, replications=8, horizon_s=3600.0, seed=11)
    above = simulate(prof, int(n * 1.15) + 1, replications=8, horizon_s=3600.0, seed=11)
    share = at.metrics["attempt_429_fraction"].mean
    assert 0.004 <= share <= 0.015
    assert above.metrics["attempt_429_fraction"].mean > 0.01


# --- Sliding windows: the session's own earlier turns, retry herds, the loss system -------


def sliding_fanout(count: int, tpm: float, retry: dict[str, Any] | None = None) -> Profile:
    """Issue 9's A1 turn against a sliding 10-s TPM window: ``count`` calls of 100 + 10
    tokens launched at once (each 0.5 s + 10/100 s = 0.6 s), Exp(60 s) think time."""
    data: dict[str, Any] = {
        "models": {"m": {"tokens_per_second": 100, "ttft": "0.5s"}},
        "quotas": {"q": {"models": ["m"], "tpm": tpm,
                         "enforcement": {"type": "sliding_window", "window": "10s"}}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {"t": {"steps": [
            {"parallel": {"count": count, "call": {
                "model": "m", "input_tokens": 100, "output_tokens": 10}}}]}}},
    }
    if retry is not None:
        data["retry"] = retry
    return profile_from_dict(data)


def test_palm_count_holds_the_sessions_own_earlier_turns() -> None:
    """An arriving call's trailing window holds its session's earlier turns: turn k back
    started Σ_{j≤k}(0.6 s + Z_j) earlier, inside 10 s with P(Γ(k, 60 s) < 10 − 0.6k);
    plus its batch-mates ahead of it (0..299 of them, uniformly)."""
    from scipy import stats

    prof = sliding_fanout(300, 3e6)
    wl = Workload.from_profile(prof)
    m = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    earlier = sum(float(stats.gamma.cdf(10.0 - 0.6 * k, k, scale=60.0)) for k in range(1, 17))
    want = 300 * 110 * earlier + 149.5 * 110
    got = float(np.dot(np.arange(m.own_pmf.size), m.own_pmf)) * m.h
    assert got == pytest.approx(want, rel=0.05)


def test_herd_rejection_by_hand() -> None:
    """Launches of one size b: the overflow O is uniform on 1..b, the freed room F = b,
    the launches joining the herd K ~ Geom(ρ): E[H] = E[O] + b·ρ/(1−ρ) and
    E[(H − F)⁺] = E[O]·ρ + b·ρ²/(1 − ρ)."""
    prof = sliding_fanout(300, 3e6)
    wl = Workload.from_profile(prof)
    m = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    e = np.zeros(41)
    e[40] = 1.0                      # every launch instant charges 40 lattice units
    m.event_pmf = e
    m._herd.clear()
    n = 44
    mean_k = n * m.events_per_window * 40.0 / m.q_lat
    rho = mean_k / (1.0 + mean_k)
    e_o = 20.5
    want = (e_o * rho + 40.0 * rho**2 / (1.0 - rho)) / (e_o + 40.0 * rho / (1.0 - rho))
    assert m.herd_rejection(n) == pytest.approx(want, rel=1e-6)


def test_herded_retries_of_a_sliding_window_against_the_engine() -> None:
    """300 × 110-token fan-outs, 3M TPM, sliding 10 s, honoured retry-afters (issue 13's
    ~10 % optimistic row): the retries come back as a herd at the oldest charge's expiry
    and a third of them are turned away again, so the attempt share at 44 sessions is
    well above the calls' — the engine's share (16 × 1 h, a fixed seed) is within
    [0.85, 1.5]× the analytic one (the orbit approximation said 0.0057 vs 0.0076)."""
    prof = sliding_fanout(300, 3e6)
    wl = Workload.from_profile(prof)
    model = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    got = model.stats(44)
    sim = simulate(prof, 44, replications=16, horizon_s=3600.0, seed=3)
    share = sim.metrics["attempt_429_fraction"].mean
    assert 0.85 * share <= got.loss_fraction <= 1.5 * share
    assert got.loss_fraction > 1.2 * (got.call_429_fraction or 0.0)


@pytest.mark.parametrize("retries,engine_pr,over", [(1, 0.40, 1.3), (6, 0.62, 1.45)])
def test_herd_spells_against_the_engine(retries: int, engine_pr: float, over: float) -> None:
    """10-call fan-outs at 186 sessions: each extra retry lengthens the full spells (the
    retried calls re-occupy the log) and meets a bigger herd. The engine (16 × 1 h, a
    fixed seed) puts the attempt share at 0.0049 (1 retry) and 0.0108 (6 retries), the
    share of retries turned away again at ≈ 0.40 and ≈ 0.62 (inferred from its attempts
    per call and failures); the orbit approximation said 0.0073 for both (retries a
    smooth stream), which 6 retries miss by a third. Since the loss system counts the
    calls a fan-out admitted in part displaces (``_partial_admission``) the analytic
    shares are 0.0052 and 0.0154: 6 retries over-state the share, and their N* is
    conservative by one step of the search (181 vs 183 [181–186], seed 1, 20 × 1 h)."""
    prof = sliding_fanout(10, 3e5, {"max_retries": retries})
    wl = Workload.from_profile(prof)
    model = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    got = model.stats(186).loss_fraction
    sim = simulate(prof, 186, replications=16, horizon_s=3600.0, seed=3)
    share = sim.metrics["attempt_429_fraction"].mean
    assert 0.8 * share <= got <= over * share
    assert model.inner.herd_chain(186)["pr"] == pytest.approx(engine_pr, abs=0.06)


def test_sliding_window_without_retries_is_a_loss_system() -> None:
    """10-call fan-outs, no retries, uncounted tokens: calls turned away never enter the
    log, so the trailing count is a loss system's (truncated at q) — the free count that
    keeps them over-states the 429 share ~3× here. Engine: 16 × 1 h, a fixed seed."""
    prof = sliding_fanout(10, 3e5, {"max_retries": 0, "on_exhausted": "continue"})
    wl = Workload.from_profile(prof)
    model = clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    got = model.stats(186).loss_fraction
    sim = simulate(prof, 186, replications=16, horizon_s=3600.0, seed=3)
    share = sim.metrics["attempt_429_fraction"].mean
    assert 0.7 * share <= got <= 1.3 * share


def test_sliding_share_is_decided_one_call_from_the_allowance(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """300 × 110-token fan-outs, no retries, 3M TPM sliding 10 s (issue 13's ✗ row, 51 vs
    49 [48–50] simulated): an arriving call is turned away when the log plus its own
    charge and its batch-mates' ahead of it do not fit. On a 244-token step (q/2048) a
    110-token call is 0 or 1 step and the 0-step half always fits at a full log: 0.0084
    at 50 sessions vs 0.0106 on a 15-token step (engine 0.0105). The sliding step is no
    coarser than the smallest call (110 tokens: 0.0102), and the share no longer
    depends on it."""
    from capacity.analytic import clumped

    prof = sliding_fanout(300, 3e6, {"max_retries": 0})
    wl = Workload.from_profile(prof)
    c, cyc = wl.constraints[0], cycle_time(wl).cycle_s
    model = clumped_window_model(wl, c, cyc)
    assert model.inner.h <= 110.0
    got = model.stats(50).loss_fraction
    monkeypatch.setattr(clumped, "sliding_step", lambda h, q, calls: q / 32768)
    fine = clumped_window_model(wl, c, cyc)
    assert fine.inner.h < 16.0
    assert got == pytest.approx(fine.stats(50).loss_fraction, rel=0.06)
    assert analyze(prof).burst_ceiling in (48, 49, 50)  # simulated: 49 [48–50]


def test_turn_latency_sample_without_units_draws_the_same_turns() -> None:
    """The analytic answer needs only the sample's turn latencies: drawn without the
    units (``units=False``, :attr:`Workload.turn_latency`) they are the full sample's,
    bit for bit — optional steps, loops, dense and bulk fan-outs (of copies that draw
    nothing too), routed calls."""
    from pathlib import Path

    from capacity.model.workload import TURN_SAMPLE_SEED, sample_turns
    from capacity.profile.loader import load_profile

    data: dict[str, Any] = {
        "models": {"m": {"tokens_per_second": {"uniform": [30, 90]},
                         "ttft": {"uniform": ["0.2s", "1s"]}},
                   "f": {"tokens_per_second": 70, "ttft": "0.3s"}},
        "quotas": {"q": {"models": ["m", "f"], "tpm": 1e6, "rpm": 500}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {
            "a": {"weight": 2, "steps": [
                {"call": {"model": "m", "input_tokens": {"uniform": [100, 900]},
                          "output_tokens": {"lognormal": {"median": 200, "p95": 900}},
                          "max_tokens": 600}},
                {"optional": {"probability": 0.4, "call": {
                    "model": "m", "input_tokens": 300, "output_tokens": 40}}},
                {"repeat": {"count": {"choice": {"values": [0, 2, 5], "weights": [1, 1, 1]}},
                            "call": {"model": "m", "input_tokens": 500,
                                     "output_tokens": {"uniform": [10, 90]}}}}]},
            "b": {"steps": [
                {"parallel": {"count": {"uniform": [0, 40]}, "call": {
                    "model": "m", "input_tokens": 100, "output_tokens": {"uniform": [5, 50]}}}},
                {"parallel": {"count": 3, "call": {
                    "model": "m", "input_tokens": 100, "output_tokens": 20}}},
                # copies that draw nothing (fixed model and charges): no arrays sampled
                {"parallel": {"count": {"uniform": [0, 60]}, "call": {
                    "model": "f", "input_tokens": 100, "output_tokens": 29,
                    "max_tokens": 30}}}]}}},
    }
    root = Path(__file__).resolve().parents[1]
    for prof in (profile_from_dict(data), load_profile(root / "profiles/ptu-spillover.yaml"),
                 load_profile(root / "profiles/tool-agent.yaml")):
        wl = Workload.from_profile(prof)
        full = sample_turns(wl, 20_000, np.random.default_rng(TURN_SAMPLE_SEED))
        bare = sample_turns(wl, 20_000, np.random.default_rng(TURN_SAMPLE_SEED), units=False)
        assert np.array_equal(full.latency, bare.latency)
        assert np.array_equal(full.calls, bare.calls)
        assert bare.units == {}
        assert full.units["q.tpm" if "q.tpm" in full.units else "input_tokens"].sum() > 0
        fresh = Workload._build(prof)
        lat = fresh.turn_latency
        assert "turn_sample" not in fresh.__dict__  # drawn without the units
        assert np.array_equal(lat, fresh.turn_sample.latency)
