"""Review of the steady-state start and the bucket spill (2026-11-30), with checks that
do not share code with what they check.

* The start rule (:func:`capacity.model.workload.steady_phase`) against an independent
  renewal simulation: one session alternating turns (sampled here from the profile's
  text, by this file's own code) and pauses for ~10⁵ cycles, the time to the next turn
  start read at uniform random instants — the law a session seen at a random instant
  has. The engine's first turn starts (``trace_attempts``, every quota lifted so no 429
  moves a call) and the load generator's :meth:`TurnSampler.first_start` must follow
  it. Exact for a near-deterministic turn (batch-sliding) and close for tool-agent's
  (Exp(45 s) pause, turn sd 7.6 s: KS 0.008, mean 46.1 s vs 46.4 s stationary); the
  rule's former ``U·E[R]`` for what is left of a turn was far off when the turn latency
  is heavy-tailed and the pause short (KS 0.39, mean 11.2 s vs 27.1 s); it now draws
  the equilibrium residual of the turn's law.
* A token bucket never holds more than its depth: a call charging more is never
  admitted and always spills (the analytic spill share said 94.6 % when every call was
  larger than the PTU bucket).
* A requests bucket that counts its rejections (``rejected_count``, the default) admits
  far less than its refill when it spills (now the exact level chain).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from capacity.loadgen.plan import TurnSampler
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import trace_attempts
from capacity.sim.kernels import T_ADMITTED, T_DEP, T_SESSION, T_T

Z95 = 1.6448536269514722  # the 95th percentile of a standard normal
BATCH = "tests/data/batch-sliding.yaml"
TOOL = "profiles/tool-agent.yaml"
PTU = "profiles/ptu-spillover.yaml"


def _path(rel: str) -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / rel)


def _tokens(x: np.ndarray) -> np.ndarray:
    """Whole tokens, ``floor(x + 0.5)``."""
    return np.floor(x + 0.5)


# -- the turns, sampled from the profiles' text (independent of capacity.model) ---------

def _batch_turn(rng: np.random.Generator, m: int) -> np.ndarray:
    # gpt-4o: ttft U(0.4, 1.2) s, 35 tokens/s; one call of 300 output tokens (≤ 500).
    return rng.uniform(0.4, 1.2, m) + 300 / 35.0


def _tool_turn(rng: np.random.Generator, m: int) -> np.ndarray:
    # 70 %: plan, 0..3 tool steps, answer on gpt-4.1 (ttft U(0.3, 0.9) s, 80 tokens/s);
    # 30 %: one quick answer on gpt-4.1-mini (ttft U(0.2, 0.5) s, 120 tokens/s).
    task = rng.random(m) < 0.7
    plan = rng.uniform(.3, .9, m) + np.minimum(_tokens(rng.uniform(100, 300, m)), 1024) / 80
    count = rng.choice(4, size=m, p=[.3, .35, .2, .15])
    tools = np.zeros(m)
    for j in range(3):
        tools += (count > j) * (rng.uniform(.3, .9, m)
                                + np.minimum(_tokens(rng.uniform(60, 200, m)), 1024) / 80)
    sigma = math.log(1500 / 500) / Z95
    answer = rng.uniform(.3, .9, m) + np.minimum(
        _tokens(500 * np.exp(sigma * rng.standard_normal(m))), 4096) / 80
    quick = rng.uniform(.2, .5, m) + np.minimum(_tokens(rng.uniform(50, 400, m)), 1024) / 120
    return np.where(task, plan + tools + answer, quick)


_HEAVY_SIGMA = math.log(3000 / 200) / Z95


def _heavy_turn(rng: np.random.Generator, m: int) -> np.ndarray:
    # batch-sliding's call with output lognormal(median 200, p95 3000) cut at 4096.
    out = np.minimum(_tokens(200 * np.exp(_HEAVY_SIGMA * rng.standard_normal(m))), 4096)
    return rng.uniform(0.4, 1.2, m) + out / 35.0


def _heavy_profile() -> Profile:
    data: dict[str, Any] = load_profile(_path(BATCH)).model_dump(mode="json", exclude_none=True)
    call = data["session"]["turns"]["summarise"]["steps"][0]["call"]
    call["output_tokens"] = {"lognormal": {"median": 200, "p95": 3000}}
    call["max_tokens"] = 4096
    return profile_from_dict(data)


def _stationary_wait(turn: Any, pause: Any, seed: int, cycles: int = 200_000,
                     samples: int = 100_000) -> np.ndarray:
    """Time (s) to the next turn start seen at uniform random instants of one long
    think-time session: turn, pause, turn, … (a renewal process)."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0.0], np.cumsum(turn(rng, cycles) + pause(rng, cycles))])
    t = rng.uniform(0.0, starts[-2], samples)
    return starts[np.searchsorted(starts, t, side="right")] - t


def _lifted(profile: Profile) -> Profile:
    """``profile`` with every quota out of reach (no 429 moves a call)."""
    data: dict[str, Any] = profile.model_dump(mode="json", exclude_none=True)
    for q in data["quotas"].values():
        for key in ("rpm", "tpm", "itpm", "otpm"):
            if isinstance(q.get(key), dict):
                q[key]["limit"] = 10**9
            elif key in q:
                q[key] = 10**9
    return profile_from_dict(data)


def _engine_first_starts(profile: Profile, n: int, horizon_s: float) -> np.ndarray:
    """Each session's first turn start in one replication (its first call's send time:
    the turns here start with a call); ``inf`` for a session with none in the horizon."""
    tr = trace_attempts(_lifted(profile), n, horizon_s=horizon_s, warmup_s=0.0, seed=3,
                        max_attempts=400_000)
    rows = tr.rows
    assert (rows[:, T_ADMITTED] == 1).all()
    first = np.full(n, np.inf)
    np.minimum.at(first, rows[:, T_SESSION].astype(np.int64), rows[:, T_T])
    return first


def _loadgen_first_starts(profile: Profile, n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    sampler = TurnSampler(profile)
    return np.array([sampler.first_start(rng) for _ in range(n)])


CASES = {
    # name: (profile, turn sampler, pause sampler, sessions, horizon (s), censor (s))
    "batch-sliding": (BATCH, _batch_turn, lambda r, m: np.full(m, 5.0), 6000, 20.0, 20.0),
    "tool-agent": (TOOL, _tool_turn, lambda r, m: r.exponential(45.0, m), 12000, 250.0,
                   240.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_first_turn_starts_follow_the_stationary_law(name: str) -> None:
    """The engine's and the load generator's first turn starts against the stationary
    time-to-next-start of an independent renewal simulation (KS distance, mean): the
    old start (a residual of the pause alone) was 0.65 and 0.036 away."""
    rel, turn, pause, n, horizon, cut = CASES[name]
    profile = load_profile(_path(rel))
    ref = np.minimum(_stationary_wait(turn, pause, seed=11), cut)
    for got in (_engine_first_starts(profile, n, horizon), _loadgen_first_starts(profile, n)):
        got = np.minimum(got, cut)  # both censored alike (the trace's horizon)
        assert stats.ks_2samp(got, ref).statistic < 0.02
        assert got.mean() == pytest.approx(ref.mean(), rel=0.03)


def test_heavy_tailed_turn_starts_in_steady_state() -> None:
    """A heavy-tailed turn and a short pause: the first starts follow the stationary law
    too (the engine's rule). The rule used to leave U·E[R] of a turn in progress; the
    stationary residual is U·R* (R* length-biased: mean E[R²]/2E[R]): with this turn (sd
    26.7 s, mean 17.4 s) and a 5 s pause the first starts had mean 11.2 s vs 27.1 s (KS
    0.39). It now draws the residual of the turn's law."""
    profile = _heavy_profile()
    ref = np.minimum(_stationary_wait(_heavy_turn, lambda r, m: np.full(m, 5.0), seed=11),
                     250.0)
    got = np.minimum(_engine_first_starts(profile, 6000, 250.0), 250.0)
    assert stats.ks_2samp(got, ref).statistic < 0.05


# -- token buckets that spill --------------------------------------------------------------

def _ptu(overlay: dict[str, Any]) -> Profile:
    data: dict[str, Any] = load_profile(_path(PTU)).model_dump(mode="json", exclude_none=True)
    for key, value in overlay.items():
        data[key] = value
    return profile_from_dict(data)


def _huge_turns() -> dict[str, Any]:
    """ptu-spillover's session with every prompt larger than the PTU's input bucket
    (300,000 itpm, 10 s deep: 50,000 tokens)."""
    return {"cadence": {"uniform": ["2m", "3m"]}, "turns": {"research": {"steps": [
        {"call": {"name": "big", "model": "gpt-4o", "input_tokens": 60000,
                  "output_tokens": 100, "max_tokens": 400}},
        {"parallel": {"count": 3, "call": {"name": "big2", "model": "gpt-4o",
                                           "input_tokens": 70000, "output_tokens": 100,
                                           "max_tokens": 4000}}}]}}}


def _spill_shares(profile: Profile, n: int) -> tuple[float, float]:
    """(analytic, simulated) share of the gpt-4o route's first-deployment attempts that
    spill, at ``n`` sessions (the simulation: one replication of 30 min)."""
    from capacity.analytic.fleet import fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    wl = Workload.from_profile(profile)
    fm = fleet_models(wl, cycle_time(wl))
    analytic = fm.spill["gpt-4o"](n)
    tr = trace_attempts(profile, n, horizon_s=1800.0, seed=1)
    rows = tr.rows
    first = rows[:, T_DEP] == tr.deployments.index("ptu")
    simulated = float((rows[first, T_ADMITTED] == 0).mean())
    return analytic, simulated


def test_calls_larger_than_the_bucket_always_spill() -> None:
    """Every call charges more than the PTU bucket can hold: none is ever admitted (the
    simulator agrees), so every call spills — the analytic share said 94.6 %."""
    analytic, simulated = _spill_shares(_ptu({"session": _huge_turns()}), 40)
    assert simulated == 1.0
    assert analytic == pytest.approx(1.0, abs=1e-9)


def test_counted_requests_bucket_spill_share() -> None:
    """ptu-spillover with the PTU a 60 RPM token bucket (10 s deep): the analytic spill
    share at 60 sessions (offered ~2 calls/s) within 0.05 of the simulated one. (A
    counted rejection takes the fractional token a requests bucket has built, so above
    its refill it admits ~0.66/s of its 1/s: the fluid model said 0.50 against 0.68; the
    exact level chain, capacity.analytic.fleet.requests_bucket_spill, says 0.677.)"""
    ptu = {"models": ["ptu"], "rpm": 60, "enforcement": {"type": "token_bucket",
                                                         "burst": "10s"}}
    data: dict[str, Any] = load_profile(_path(PTU)).model_dump(mode="json", exclude_none=True)
    data["quotas"]["ptu"] = ptu
    analytic, simulated = _spill_shares(profile_from_dict(data), 60)
    assert analytic == pytest.approx(simulated, abs=0.05)


# -- the simulator's steady-state start of a sliding log ----------------------------------

@pytest.mark.parametrize(("rpm", "sessions"), [(12, 2), (60, 10)])
def test_no_refusal_while_no_window_can_overfill(rpm: int, sessions: int) -> None:
    """batch-sliding's sessions make at most one call in any 10-s window (a 14.4 s
    cycle), so N ≤ q = rpm/6 sessions can never be refused: no replication may see a
    429 (rejections are counted and retried: one refusal starts a storm that lasts).
    The sliding log used to start with min(λ_u·w, q) units as 64 fractional charges over
    (−w, 0], placed independently of the sessions' phases: 1.02 phantom units + 1 + 1 >
    q = 2 refused a call no steady state refuses (and a rounding residue of the 64
    subtractions, 1.0000000000000013 with one call logged, still refused at exactly q):
    20/20 replications stormed (q = 10, N = 10: 8/20), simulated N* 1, 2, 4, 8 at q = 2,
    3, 5, 10. A log no longer than the warm-up now starts empty."""
    profile = load_profile(_path(BATCH), [f"quotas.deployment.rpm={rpm}"])
    refused = sum(
        int((trace_attempts(profile, sessions, horizon_s=600.0, seed=1, replication=r)
             .rows[:, T_ADMITTED] == 0).any())
        for r in range(20))
    assert refused == 0


def test_a_bucket_far_smaller_than_its_calls_answers() -> None:
    """Prompts of 400,000–900,000 tokens over a 100-token PTU input bucket (600 itpm,
    10 s deep): every call spills, and the lattice that finds them stays coarse enough
    to hold such charges (bucket_never_fits on depth/4096 asked for 26.6 M steps and
    raised: 'lattice step 0.0244141 too fine', a traceback from the CLI)."""
    from capacity.analytic.model import analyze

    data: dict[str, Any] = load_profile(_path(PTU)).model_dump(mode="json", exclude_none=True)
    data["quotas"]["ptu"]["itpm"] = 600
    synthesis = data["session"]["turns"]["research"]["steps"][1]["parallel"]["call"]
    synthesis["input_tokens"] = {"uniform": [400000, 900000]}
    profile = profile_from_dict(data)
    result = analyze(profile)
    assert result.burst_ceiling >= 1
    from capacity.analytic.fleet import fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload

    wl = Workload.from_profile(profile)
    assert fleet_models(wl, cycle_time(wl)).spill["gpt-4o"](result.burst_ceiling) == \
        pytest.approx(1.0, abs=1e-9)
