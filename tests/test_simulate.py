"""Monte Carlo engine: agreement with closed forms where their assumptions hold, turn-tree
and pacing semantics, retry policy, reproducibility and common random numbers."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest
from scipy import stats

from capacity.errors import CapacityError
from capacity.model.dist import Distribution
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import (
    Estimate,
    SimulationError,
    _compile,
    _run_rep,
    sample_distribution,
    simulate,
)

from .conftest import ROOT


def _profile(*, quota: dict[str, Any] | None = None, steps: list[Any] | None = None,
             session: dict[str, Any] | None = None, retry: dict[str, Any] | None = None,
             pacing: dict[str, Any] | None = None, ttft: Any = 0.1,
             tps: Any = 1000) -> Profile:
    """A one-model profile; calls default to 10 prompt and 1 output token (~0.101 s)."""
    call = {"model": "m", "input_tokens": 10, "output_tokens": 1}
    data: dict[str, Any] = {
        "models": {"m": {"ttft": ttft, "tokens_per_second": tps}},
        "quotas": {"a": {k: v for k, v in {"models": ["m"], "rpm": 1e9, **(quota or {})}.items()
                         if v is not None}},
        "session": {**(session or {"think_time": {"exponential": 60}}),
                    "turns": {"t": {"steps": steps or [{"call": call}]}}},
        "retry": {"max_retries": 0, **(retry or {})},
    }
    if pacing:
        data["pacing"] = pacing
    return profile_from_dict(data)


def _call(**kw: Any) -> dict[str, Any]:
    return {"call": {"model": "m", "input_tokens": 10, "output_tokens": 1, **kw}}


def _close(est: Estimate, expected: float, k: float = 4.0) -> bool:
    """Within k standard errors (plus float slack)."""
    return abs(est.mean - expected) <= k * est.stderr + 1e-9 * max(1.0, abs(expected))


def _stop_loss(pmf: np.ndarray, q: int) -> tuple[float, float]:
    """(E[(S−q)+]/E[S], P(S > q)) for a pmf on 0, 1, 2, ..."""
    s = np.arange(pmf.size)
    mean = float(np.dot(s, pmf))
    return float(np.dot(np.maximum(s - q, 0), pmf)) / mean, float(pmf[q + 1:].sum())


# --- agreement with the closed forms -------------------------------------------------

N_MANY, Z_LONG, WINDOW, Q = 20000, 6000.0, 10.0, 38


def _poisson_profile(steps: list[Any] | None = None) -> Profile:
    return _profile(quota={"rpm": Q * 60 / WINDOW,
                           "enforcement": {"type": "fixed_window", "window": WINDOW}},
                    session={"think_time": {"exponential": Z_LONG}}, steps=steps)


def test_fixed_window_loss_matches_poisson_stop_loss() -> None:
    """Many sparse sessions, single calls, no retries: 429 fraction = E[(S−q)+]/E[S] and
    window exceedance = P(S > q) with S ~ Poisson(λw)."""
    res = simulate(_poisson_profile(), N_MANY, seed=3, replications=10, horizon_s=3600,
                   warmup_s=600)
    lam = N_MANY / (Z_LONG + 0.101)
    pmf = stats.poisson.pmf(np.arange(400), lam * WINDOW)
    loss, exceed = _stop_loss(pmf, Q)
    assert 0.005 < loss < 0.1
    assert _close(res.metrics["attempt_429_fraction"], loss)
    assert _close(res.window_exceedance["a.rpm"], exceed)
    assert _close(res.metrics["turn_throughput_per_s"], lam)


def test_fan_out_loss_matches_compound_poisson_stop_loss() -> None:
    """Parallel fan-out of 1..5 calls per turn: S is compound Poisson with batch sizes
    uniform on 1..5, and the 429 fraction is its stop-loss ratio."""
    steps = [{"parallel": {"count": {"uniform": [1, 5]}, **_call()}}]
    res = simulate(_poisson_profile(steps), N_MANY // 3, seed=4, replications=10,
                   horizon_s=3600, warmup_s=600)
    lam = N_MANY // 3 / (Z_LONG + 0.101)
    batch = np.array([0, 1, 1, 1, 1, 1]) / 5.0
    k = np.arange(60)
    pk = stats.poisson.pmf(k, lam * WINDOW)
    pmf = np.zeros(400)
    conv = np.array([1.0])
    for ki in k:  # Σ_k P(K = k) · batch^{*k}
        pmf[:conv.size] += pk[ki] * conv[:400]
        conv = np.convolve(conv, batch)[:400]
    loss, exceed = _stop_loss(pmf, Q)
    assert 0.005 < loss < 0.2
    assert _close(res.metrics["attempt_429_fraction"], loss)
    assert _close(res.window_exceedance["a.rpm"], exceed)
    assert _close(res.metrics["calls_per_turn"], 3.0)


def test_throughput_follows_the_interactive_response_time_law() -> None:
    """X = N/(E[R] + E[Z]) for a 1 → 3 parallel → optional → 0..2 loop turn (E[R] = 4 s)."""
    steps = [
        _call(output_tokens=900),                                   # 0.1 + 0.9 = 1 s
        {"parallel": {"count": 3, **_call(output_tokens=1900)}},    # 2 s
        {"optional": {"probability": 0.5, **_call(output_tokens=900)}},  # 1 s, half the time
        {"repeat": {"count": {"uniform": [0, 2]}, **_call(output_tokens=400)}},  # 0.5 s each
    ]
    p = _profile(steps=steps, session={"think_time": {"uniform": ["10s", "30s"]}})
    res = simulate(p, 200, seed=5, replications=8, horizon_s=1800)
    m = res.metrics
    assert _close(m["turn_latency_mean_s"], 4.0)
    assert _close(m["calls_per_turn"], 1 + 3 + 0.5 + 1)
    assert _close(m["turn_throughput_per_s"], 200 / (4.0 + 20.0))
    assert _close(m["goodput_calls_per_min"], 60 * 5.5 * 200 / 24.0)
    assert m["attempt_429_fraction"].mean == 0.0
    # R takes only the values 3, 3.5, ..., 5 s: the percentiles land on them.
    assert m["turn_latency_p99_s"].mean == pytest.approx(5.0)


def test_cadence_runs_start_to_start_and_late_turns_push_the_next() -> None:
    """A 10–20 s cadence with 2 s turns gives N/15 turns/s; 30 s turns give N/30."""
    fast = _profile(session={"cadence": {"uniform": ["10s", "20s"]}}, ttft=2.0)
    slow = _profile(session={"cadence": {"uniform": ["10s", "20s"]}}, ttft=30.0)
    r_fast = simulate(fast, 100, seed=6, replications=6, horizon_s=1200)
    r_slow = simulate(slow, 100, seed=6, replications=6, horizon_s=1200)
    assert _close(r_fast.metrics["turn_throughput_per_s"], 100 / 15)
    # Every slow turn overruns its cadence, so turns run back to back: exactly N/30.001.
    assert r_slow.metrics["turn_throughput_per_s"].mean == pytest.approx(100 / 30.001, rel=1e-3)


def test_sessions_start_in_steady_state() -> None:
    """Measured from t = 0 with no warm-up, the turn rate is already N/(E[R] + E[Z])."""
    p = _profile(session={"think_time": {"exponential": 600}})
    res = simulate(p, 3000, seed=7, replications=8, horizon_s=600, warmup_s=0)
    assert _close(res.metrics["turn_throughput_per_s"], 3000 / 600.101)


@pytest.mark.parametrize("dist", [
    Distribution.parse({"uniform": [100, 900]}, "tokens"),
    Distribution.parse({"exponential": 30}, "duration"),
    Distribution.parse({"lognormal": {"median": 200, "p95": 1500}}, "tokens"),
], ids=lambda d: d.kind)
def test_sampler_matches_the_profile_distributions(dist: Distribution) -> None:
    """The engine's counter-based inverse-transform sampler draws each distribution."""
    x = sample_distribution(dist, 20000, seed=11)
    assert stats.kstest(x, dist._rv.cdf).pvalue > 1e-3


@pytest.mark.parametrize("dist", [
    Distribution.parse({"uniform": [1, 5]}, "count"),
    Distribution.parse({"choice": {"values": [1, 4, 9], "weights": [1, 2, 1]}}, "count"),
], ids=lambda d: d.kind)
def test_sampler_matches_discrete_distributions(dist: Distribution) -> None:
    """Counts come out integer with the right frequencies (chi-square)."""
    x = sample_distribution(dist, 20000, seed=12)
    values, counts = np.unique(x, return_counts=True)
    assert np.all(values == np.round(values))
    expected = np.array([dist._rv.pmf(v) for v in values]) * x.size
    assert stats.chisquare(counts, expected).pvalue > 1e-3


# --- retries ---------------------------------------------------------------------------


def test_a_never_admissible_call_backs_off_then_fails() -> None:
    """A call larger than the TPM window: 3 attempts, 0.5 s and 1 s backoff, then failure."""
    p = _profile(quota={"rpm": None, "tpm": 600,
                        "enforcement": {"type": "fixed_window", "window": "10s"}},
                 retry={"max_retries": 2, "jitter": 0.0},
                 steps=[_call(input_tokens=1000)])
    m = simulate(p, 3, seed=1, replications=2, horizon_s=600).metrics
    assert m["attempts_per_call"].mean == 3.0
    assert m["call_failure_fraction"].mean == 1.0
    assert m["turn_failure_fraction"].mean == 1.0
    assert m["turn_latency_p50_s"].mean == pytest.approx(3 * 0.05 + 0.5 + 1.0)


def _fan_out_30(retry: dict[str, Any]) -> dict[str, Estimate]:
    """One session fans out 30 calls against 10 per 10 s window, once a minute."""
    p = _profile(quota={"rpm": 60, "enforcement": {"type": "fixed_window", "window": "10s"}},
                 steps=[{"parallel": {"count": 30, **_call()}}],
                 session={"think_time": 60}, retry={"max_retries": 2, **retry})
    return simulate(p, 1, seed=2, replications=3, horizon_s=1800).metrics


def test_honouring_retry_after_lands_retries_in_the_next_windows() -> None:
    """10 calls pass at once, 10 after one retry at the boundary, 10 after two: 2 attempts
    per call, half of all attempts answered 429, no call fails."""
    m = _fan_out_30({})
    assert m["attempts_per_call"].mean == pytest.approx(2.0)
    assert m["attempt_429_fraction"].mean == pytest.approx(0.5)
    assert m["call_failure_fraction"].mean == 0.0
    assert 10.1 < m["turn_latency_p50_s"].mean < 20.2


def test_blind_backoff_retries_into_the_same_full_window() -> None:
    """Without retry-after, 0.5 s and 1 s backoffs mostly hit the same full window: up to
    20 of 30 calls fail (fewer only when a boundary falls within the 1.6 s of retries)."""
    m = _fan_out_30({"honour_retry_after": False})
    assert 2.1 < m["attempts_per_call"].mean <= 70 / 30 + 1e-12
    assert 0.5 < m["call_failure_fraction"].mean <= 20 / 30 + 1e-12


def test_counted_rejections_raise_the_attempt_load() -> None:
    """On a sliding window, rejected attempts that count keep it full: more attempts per call."""
    def run(counted: bool) -> Estimate:
        p = _profile(quota={"rpm": 60, "rejected_count": counted,
                            "enforcement": {"type": "sliding_window", "window": "60s"}},
                     session={"think_time": {"exponential": 30}}, ttft=1.0,
                     retry={"max_retries": 2, "honour_retry_after": False})
        return simulate(p, 30, seed=8, replications=6, horizon_s=1800,
                        warmup_s=300).metrics["attempts_per_call"]
    counted, free = run(True), run(False)
    assert free.mean > 1.0
    assert counted.lo > free.hi


def test_abort_turn_launches_no_further_steps() -> None:
    """After a failed call, abort_turn skips the turn's remaining calls; continue runs them."""
    def run(policy: str) -> dict[str, Estimate]:
        p = _profile(quota={"rpm": 12, "enforcement": {"type": "fixed_window", "window": "10s"}},
                     steps=[_call(), _call(), _call()], session={"think_time": 5},
                     retry={"on_exhausted": policy})
        return simulate(p, 20, seed=9, replications=4, horizon_s=900).metrics
    abort, cont = run("abort_turn"), run("continue")
    assert cont["calls_per_turn"].mean == pytest.approx(3.0)
    assert abort["calls_per_turn"].hi < 2.9
    assert abort["turn_failure_fraction"].mean > 0.2
    assert cont["turn_failure_fraction"].mean > 0.2


# --- client pacing ---------------------------------------------------------------------

_BUSY = {"quota": {"rpm": 120, "enforcement": {"type": "fixed_window", "window": "10s"}},
         "steps": [{"parallel": {"count": 4, **_call()}}],
         "session": {"think_time": {"exponential": 20}}}


def test_pacing_turns_429s_into_waiting_time() -> None:
    """A client bucket of 100 RPM, 1 s deep, never lets more than 20 calls into a 10 s
    window of a 120 RPM quota: no 429s, and the turns wait instead."""
    free = simulate(_profile(**_BUSY), 8, seed=10, replications=5, horizon_s=1800).metrics
    paced = simulate(_profile(**_BUSY, pacing={"rpm": 100, "burst": "1s"}), 8, seed=10,
                     replications=5, horizon_s=1800).metrics
    assert free["attempt_429_fraction"].mean > 0.02
    assert paced["attempt_429_fraction"].mean == 0.0
    assert paced["pacing_wait_mean_s"].mean > 0.1
    assert paced["turn_latency_p95_s"].mean > free["turn_latency_p95_s"].mean


def test_concurrency_cap_bounds_throughput() -> None:
    """One call in flight at a time, 1 s each: at most 60 successful calls a minute."""
    p = _profile(pacing={"concurrency": 1}, ttft=1.0, session={"think_time": 1})
    m = simulate(p, 10, seed=11, replications=3, horizon_s=600).metrics
    assert 59.0 <= m["goodput_calls_per_min"].mean <= 60.01
    assert m["pacing_wait_mean_s"].mean > 5.0


# --- reproducibility, common random numbers, API --------------------------------------


def test_same_seed_gives_identical_output() -> None:
    """Re-running with the same seed reproduces every number; another seed does not."""
    p = load_profile(ROOT / "profiles" / "web-research.yaml")
    a = simulate(p, 70, seed=42, replications=4, horizon_s=1800)
    b = simulate(p, 70, seed=42, replications=4, horizon_s=1800, workers=1)
    c = simulate(p, 70, seed=43, replications=4, horizon_s=1800)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()


def test_session_k_sees_the_same_turns_whatever_n_is() -> None:
    """Common random numbers: without contention, N = 10 replays N = 5's turns exactly."""
    p = _profile(steps=[{"parallel": {"count": {"uniform": [1, 4]}, **_call(
        output_tokens={"uniform": [10, 2000]})}}], ttft={"uniform": [0.1, 2.0]})
    c = _compile(p)
    child = np.random.SeedSequence(5).spawn(1)[0]
    small = _run_rep(c, 5, child, 100.0, 1000.0).latencies
    large = _run_rep(c, 10, child, 100.0, 1000.0).latencies
    assert small.size > 50 and large.size > small.size
    assert np.isin(small, large).all()


def test_results_serialise_without_non_finite_numbers() -> None:
    """to_dict() maps NaN (no CI with one replication) to None."""
    d = simulate(_profile(), 5, seed=1, replications=1, horizon_s=300).to_dict()
    est = d["metrics"]["attempt_429_fraction"]
    assert est["mean"] == 0.0 and est["lo"] is None and est["hi"] is None
    assert set(d) >= {"sessions", "seed", "replications", "horizon_s", "warmup_s", "metrics",
                      "utilisation"}


@pytest.mark.parametrize("kwargs", [{"sessions": 0}, {"sessions": 2.5},
                                    {"replications": 0}, {"horizon_s": -1.0},
                                    {"seed": -1}])
def test_impossible_requests_raise_a_capacity_error(kwargs: dict[str, Any]) -> None:
    """Fewer than one session, no replications, a negative horizon or seed are user errors."""
    args: dict[str, Any] = {"sessions": 5, "seed": 1, **kwargs}
    with pytest.raises(SimulationError) as e:
        simulate(_profile(), **args)
    assert isinstance(e.value, CapacityError)


def test_progress_reports_each_replication() -> None:
    """The callback sees 1, 2, ..., replications."""
    seen: list[int] = []
    simulate(_profile(), 5, seed=1, replications=4, horizon_s=60, progress=seen.append)
    assert seen == [1, 2, 3, 4]


def test_core_never_imports_typer_or_rich() -> None:
    """The simulation, limits and search modules are UI-free."""
    code = ("import sys, capacity.sim.engine, capacity.limits, capacity.search; "
            "print(any(m.split('.')[0] in ('typer', 'rich') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_estimate_is_a_t_interval() -> None:
    """mean ± t(0.975, n−1)·s/√n."""
    x = [1.0, 2.0, 4.0, 7.0]
    e = Estimate.from_samples(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (e.mean, e.lo, e.hi) == pytest.approx((3.5, 3.5 - half, 3.5 + half))
    assert math.isnan(Estimate.from_samples([math.nan]).mean)


def test_estimate_is_clipped_to_the_bounds_of_the_quantity() -> None:
    """A fraction near 0 gets lo = 0, not a negative number; near 1, hi = 1."""
    e = Estimate.from_samples([0.0, 0.0, 0.0, 1e-3], lower=0.0, upper=1.0)
    assert e.lo == 0.0 and e.hi > e.mean
    e = Estimate.from_samples([1.0, 1.0, 0.999], lower=0.0, upper=1.0)
    assert e.hi == 1.0 and e.lo < e.mean


def test_no_simulated_lower_limit_is_negative() -> None:
    """Rare 429s (most replications see none) give a CI that starts at 0."""
    p = _profile(quota={"rpm": 60, "enforcement": {"type": "token_bucket", "burst": "60s"},
                        "rejected_count": False},
                 session={"think_time": {"exponential": 10}})
    r = simulate(p, 10, seed=2, replications=10, horizon_s=300)
    e = r.metrics["attempt_429_fraction"]
    half = stats.t.ppf(0.975, 9) * e.stderr
    assert e.mean - half < 0.0 < e.mean  # the raw t-interval would start below 0
    for group in (r.metrics, r.utilisation, r.window_exceedance):
        for est in group.values():
            assert not est.lo < 0.0


# A token bucket of 60 requests (one minute of a 60 RPM quota) and single-call sessions
# with exponential 10 s think time: the mean ceiling is 60/60 · 10.101 ≈ 10.1 sessions.
_BUCKET = {"rpm": 60, "enforcement": {"type": "token_bucket", "burst": "60s"},
           "rejected_count": False}


@pytest.mark.parametrize("n", [10, 12])
def test_buckets_start_in_steady_state_not_full(n: int) -> None:
    """Near and above the ceiling the admitted load cannot exceed the refill: utilisation
    ≤ 1 within its CI (a full bucket at t = 0 gave 1.08 at N = 12), and a much longer
    warm-up does not change the 429 fraction beyond its CI (it did: 0.085 vs 0.167)."""
    p = _profile(quota=_BUCKET, session={"think_time": {"exponential": 10}})
    short = simulate(p, n, seed=3, replications=20, horizon_s=600)
    long = simulate(p, n, seed=3, replications=20, horizon_s=600, warmup_s=3000.0)
    for r in (short, long):
        assert r.utilisation["a.rpm"].lo <= 1.0
    a, b = short.metrics["attempt_429_fraction"], long.metrics["attempt_429_fraction"]
    assert abs(a.mean - b.mean) <= 3.0 * math.hypot(a.stderr, b.stderr) + 1e-3


def test_bucket_start_is_reproducible_and_monotone_in_n() -> None:
    """The initial deficit comes from the replication's own stream: the same for the same
    seed, and never smaller at larger N (common random numbers across the search)."""
    from capacity.sim.engine import _initial_use

    p = _profile(quota=_BUCKET, session={"think_time": {"exponential": 10}})
    c = _compile(p)
    P = np.zeros((1, 6))
    deficits = [_initial_use(c, P, 0.7, c.warm.start(n))[0][0] for n in (2, 8, 10, 11)]
    assert deficits == sorted(deficits)
    assert deficits[0] == 0.0  # ρ ≈ 0.2: u = 0.7 falls in the atom at a full bucket
    assert deficits[-1] == 60.0  # ρ > 1: the bucket starts empty
    assert simulate(p, 10, seed=4, replications=3, horizon_s=300).to_dict() == (
        simulate(p, 10, seed=4, replications=3, horizon_s=300).to_dict())


@pytest.mark.parametrize("enforcement", ["fixed_window", "sliding_window"])
def test_day_windows_are_enforced_from_the_first_second(enforcement: str) -> None:
    """rpd = 100,000 with 30 s think time: mean ceiling 100000 · 30.101 / 86400 ≈ 34.8.
    The counter of the day window starts at the use since the window opened, so 40
    sessions exhaust it in the replications whose hour falls late in the day, and 30
    never do. (Starting at zero, 882 sessions met the 1 % target.)"""
    p = _profile(quota={"rpm": None, "rpd": {
                     "limit": 100_000, "enforcement": {"type": enforcement, "window": 86400}}},
                 session={"think_time": {"exponential": 30}})
    below = simulate(p, 30, seed=5, replications=20, horizon_s=3600)
    above = simulate(p, 40, seed=5, replications=20, horizon_s=3600)
    assert below.metrics["attempt_429_fraction"].mean == 0.0
    assert above.metrics["attempt_429_fraction"].mean > 0.02
    assert below.utilisation["a.rpd"].mean == pytest.approx(30 / 34.8, rel=0.05)


def test_t_quantile_table_equals_scipy() -> None:
    """The tabulated 97.5 % t quantiles are scipy's own; the others (computed by
    capacity.model.numeric, scipy being no runtime dependency) agree to 1e-11."""
    from scipy.special import stdtrit

    from capacity.sim.engine import _T975, _t_quantile

    assert [_t_quantile(0.975, df) for df in range(1, 121)] == [
        float(stdtrit(df, 0.975)) for df in range(1, 121)]
    assert len(_T975) == 120
    for df in range(121, 130):
        assert _t_quantile(0.975, df) == pytest.approx(float(stdtrit(df, 0.975)), rel=1e-11)
    assert _t_quantile(0.95, 7) == pytest.approx(float(stdtrit(7, 0.95)), rel=1e-11)


@pytest.mark.parametrize("name,n", [("web-research", 80), ("tool-agent", 30)])
def test_calendar_queue_and_heap_take_the_same_events_in_the_same_order(name: str,
                                                                         n: int) -> None:
    """The engine's calendar queue releases equal times in insertion order, exactly as
    a (time, sequence) binary heap does: every output of a replication is identical."""
    from capacity.sim.engine import _rep_setup
    from capacity.sim.kernels import T_UNITS, replicate

    c = _compile(load_profile(ROOT / "profiles" / f"{name}.yaml"))
    rep_key, _, P, deficit, used = _rep_setup(c, n, np.random.SeedSequence(3))
    outs = []
    for queue in (0, 1):
        trace = np.zeros((50_000, T_UNITS + len(c.slots)))
        out = replicate(n, int(rep_key), 300.0, 1500.0, c.max_nodes, *c.program, *c.dists,
                        c.site_dist, c.site_cached, c.site_maxtok, c.coef, P, c.cfg,
                        deficit, used, trace, queue=queue)
        outs.append((out, trace[:out[4]]))
    (a, ta), (b, tb) = outs
    assert a[4] == b[4] > 1000
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ta, tb)


def test_the_compiled_engine_refuses_arrays_it_cannot_read() -> None:
    """Wrong dtypes or shapes are a TypeError / ValueError from the compiled module, not a
    crash (the wrapper validates; the loop then trusts)."""
    from capacity.sim.kernels import limiter_attempt, replicate, sample_many

    c = _compile(_profile())
    args = [5, 1, 0.0, 10.0, c.max_nodes, *c.program, *c.dists, c.site_dist, c.site_cached,
            c.site_maxtok, c.coef, np.zeros((1, 6)), c.cfg, np.zeros(1), np.zeros(1),
            np.zeros((0, 13))]
    bad = list(args)
    bad[6] = c.program[1].astype(np.int32)  # turn_root must be int64
    with pytest.raises(TypeError):
        replicate(*bad)
    bad = list(args)
    bad[19] = np.zeros(3)  # bucket_deficit: one per slot
    with pytest.raises(ValueError):
        replicate(*bad)
    with pytest.raises(ValueError):
        sample_many(99, 1, 10, *c.dists)
    st = np.zeros((1, 7))
    full = np.zeros((1, 2))
    st[0, 5] = 2.0  # a sliding-window log with no room left
    with pytest.raises(ValueError):
        limiter_attempt(np.array([[1.0, 5.0, 10.0, 0.0, 0.0, 0.0]]), st, full, full.copy(),
                        0.0, np.ones(1), np.zeros(1, dtype=np.int8))


def test_bucket_start_is_the_simulators_own() -> None:
    """``bucket_start`` (what the load generator resets the mock's buckets to) is the
    deficit a replication starts with for the uniform it drew; an overloaded bucket
    starts empty (its depth missing); a profile of windows only has nothing to start."""
    from capacity.profile.loader import load_profile
    from capacity.sim.engine import _compile, _rep_setup, bucket_start

    p = load_profile(ROOT / "profiles" / "chat-assistant.yaml")
    c = _compile(p)
    child = np.random.SeedSequence(4).spawn(1)[0]
    state = child.generate_state(3, np.uint64)
    u = float(state[2] >> np.uint64(11)) * 2.0**-53
    _, _, _, deficit, _ = _rep_setup(c, 200, child)
    buckets = [(i, s) for i, s in enumerate(c.slots) if s.kind == "token_bucket"]
    assert buckets
    assert bucket_start(p, 200, u) == {s.key: float(deficit[i]) for i, s in buckets}
    full = bucket_start(p, 100_000, 0.5)
    assert full == {s.key: pytest.approx(s.allowance) for _, s in buckets}
    assert bucket_start(load_profile(ROOT / "profiles" / "web-research.yaml"), 50, 0.9) == {}


@pytest.mark.parametrize("replications", [1, 2])
def test_ctrl_c_stops_a_long_replication(replications: int) -> None:
    """Ctrl-C reaches a simulation whose replications take minutes in the compiled loop
    (200,000 sessions for 100 h: ~10⁹ attempts, ~20 min a replication): the running
    loops stop within a few thousand events and ``simulate`` raises KeyboardInterrupt at
    once — one replication as well as several (it used to wait for them to finish)."""
    import signal

    # The child says when each replication enters the compiled loop, so the signal
    # lands inside it however slowly a loaded machine gets the child there (a fixed
    # sleep let it land earlier, in Python, where any code stops at once).
    code = ("import sys\nfrom capacity.profile.loader import load_profile\n"
            "import capacity.sim.engine as engine\n"
            "loop = engine.replicate\n"
            # One write of 'in\n': print() writes the text and the newline apart, and two
            # workers entering together interleaved them ('inin').
            "def entered(*a, **k):\n    sys.stdout.write('in\\n'); sys.stdout.flush()\n"
            "    return loop(*a, **k)\n"
            "engine.replicate = entered\n"
            f"p = load_profile({str(ROOT / 'profiles' / 'web-research.yaml')!r}, "
            "['quotas.deployment.rpm=1000000'])\n"
            "try:\n    engine.simulate(p, 200000, horizon_s=360000, replications="
            f"{replications}, workers={replications}, seed=1)\n"
            "except KeyboardInterrupt:\n    sys.exit(130)\n"
            "sys.exit(0)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(replications):  # every replication running (workers=replications)
            assert proc.stdout.readline().strip() == "in"
        proc.send_signal(signal.SIGINT)
        # Generous for a loaded machine; a loop that ignored the stop would run for
        # ~20 min (the loop checks the flag every 4,096 events).
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_ctrl_c_while_a_worker_starts_stops_that_worker() -> None:
    """A Ctrl-C that lands while the pool starts a worker (Thread.start waits for it,
    and the pool has not listed it yet; main's lot on a loaded machine) stops that
    worker too: it was left running its ~20 min replication with the stop flag cleared,
    and the interpreter waited for it at exit (3.5 min at a 10 h horizon)."""
    code = ("import sys, threading\nfrom capacity.profile.loader import load_profile\n"
            "import capacity.sim.engine as engine\n"
            "loop, real_start, entered = engine.replicate, threading.Thread.start, "
            "threading.Event()\n"
            "def rep(*a, **k):\n    entered.set()\n    return loop(*a, **k)\n"
            "def start(self):\n    real_start(self)\n"
            "    if threading.current_thread() is threading.main_thread():\n"
            "        threading.Thread.start = real_start\n"
            "        entered.wait()\n"  # the worker is in the compiled loop
            "        raise KeyboardInterrupt\n"  # as a signal in Thread.start's wait
            "engine.replicate, threading.Thread.start = rep, start\n"
            f"p = load_profile({str(ROOT / 'profiles' / 'web-research.yaml')!r}, "
            "['quotas.deployment.rpm=1000000'])\n")
    _interrupted_exits_130(code, "p, 200000, horizon_s=360000, replications=1")


def _interrupted_exits_130(code: str, args: str) -> None:
    """Run ``code`` then ``engine.simulate(args, workers=1, seed=1)`` in a fresh
    interpreter: a KeyboardInterrupt must end it with 130 and no traceback."""
    code += (f"try:\n    engine.simulate({args}, workers=1, seed=1)\n"
             "except KeyboardInterrupt:\n    sys.exit(130)\nsys.exit(0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 130, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not hasattr(threading, "_start_new_thread")
                    or not hasattr(threading, "_limbo"),
                    reason="models the start race through CPython 3.11-3.12's threading")
def test_ctrl_c_before_a_starting_worker_runs_is_exit_130() -> None:
    """A Ctrl-C in Thread.start's wait before the OS has run the new worker (a loaded
    machine): that thread is listed but not started, and joining it raised RuntimeError
    ('cannot join thread before it is started') in place of the KeyboardInterrupt."""
    code = ("import sys, threading, time\nfrom capacity.profile.loader import load_profile\n"
            "import capacity.sim.engine as engine\n"
            "real_start = threading.Thread.start\n"
            "def start(self):\n"
            "    if threading.current_thread() is not threading.main_thread():\n"
            "        return real_start(self)\n"
            "    threading.Thread.start = real_start\n"
            "    with threading._active_limbo_lock:\n"
            "        threading._limbo[self] = self\n"
            "    boot = self._bootstrap\n"
            # the OS runs the new thread 0.3 s late; the signal lands in the wait
            "    threading._start_new_thread(lambda: (time.sleep(0.3), boot()), ())\n"
            "    raise KeyboardInterrupt\n"
            "threading.Thread.start = start\n"
            f"p = load_profile({str(ROOT / 'profiles' / 'web-research.yaml')!r}, [])\n")
    _interrupted_exits_130(code, "p, 50, horizon_s=600, replications=2")
