"""A token bucket too deep for the exact level chain (capacity.analytic.bucket.DeepBucket):
the level law by level crossing against a direct Monte Carlo of a bucket fed Poisson
launches of two kinds, and the ceiling against the simulated N* (issue 13: the Lundberg
bound, which the deep buckets kept, was 5-15% conservative — 160 against a simulated 187
on the 1 -> 3 -> 1 bucket 5 s deep; pooling the launch kinds into one call law, as the
shallow chain does, would have been optimistic there), without retries and with retries
that honour the retry-after (herds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.bucket import DeepBucket
from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import assert_accurate
from ._cli import analytic_text

DATA = Path(__file__).parent / "data"
PROFILES = Path(__file__).parent.parent / "profiles"


def _mc(rng: np.random.Generator, lam: float, kinds: list[tuple[float, int, list[int]]],
        refill: float, depth: float, launches: int = 300_000) -> float:
    """Share of calls refused by a bucket fed Poisson launches at ``lam`` per second,
    each of a kind ``(share, calls, charges)``: that many calls, each charging one of
    ``charges`` (equally likely); a refused call charges nothing."""
    gaps = rng.exponential(1.0 / lam, size=launches).tolist()
    which = rng.choice(len(kinds), size=launches, p=[k[0] for k in kinds]).tolist()
    draws = rng.random(size=(launches, max(k[1] for k in kinds))).tolist()
    level, calls, refused = depth, 0, 0
    for gap, kind, u in zip(gaps, which, draws, strict=True):
        level = min(depth, level + refill * gap)
        _, count, charges = kinds[kind]
        for j in range(count):
            b = charges[int(u[j] * len(charges))]
            calls += 1
            if b <= level:
                level -= b
            else:
                refused += 1
    return refused / calls


def _lattice(charges: list[int]) -> np.ndarray:
    out = np.zeros(max(charges) // 100 + 1)
    for x in charges:
        out[x // 100] += 1.0 / len(charges)
    return out


@pytest.mark.parametrize("lam", [2.2, 2.5, 2.8])
def test_level_law_against_monte_carlo(lam: float) -> None:
    # 150,000 units deep, 20,000 per second; a launch is one 1,000-unit call or (one in
    # three) a fan-out of three calls of 5,000 or 9,000 units: ~37 mean calls deep.
    fan = [5000, 9000]
    kinds_mc = [(2 / 3, 1, [1000]), (1 / 3, 3, fan)]
    one = np.array([0.0, 1.0])
    three = np.array([0.0, 0.0, 0.0, 1.0])
    deep = DeepBucket([(2 / 3, one, _lattice([1000])), (1 / 3, three, _lattice(fan))],
                      100.0, 20_000.0, 150_000.0)
    got = deep.shares(lam)["attempt"]
    want = _mc(np.random.default_rng(7), lam, kinds_mc, 20_000.0, 150_000.0)
    assert want > 2e-3
    assert abs(got - want) <= 0.15 * want, (got, want)


@pytest.mark.parametrize(("name", "sets"), [
    ("deep-bucket-fanout.yaml", []),
    # The same 60 s deep, a 5% target: past the mean rate a refused call is lost, so the
    # level law (1 − 1/ρ in overload) carries more sessions than the mean ceiling.
    ("deep-bucket-fanout.yaml", ["quotas.q.tpm.enforcement.burst=60s",
                                 "targets.max_429_fraction=0.05"]),
    # Single calls of lognormal charges into three one-minute buckets (rpm, itpm, otpm):
    # the bound said 204 against a simulated 211 [211–211].
    ("chat-assistant", ["retry.max_retries=0"]),
    # One retry that honours the retry-after, 30 s deep: the herd (bound: 80 vs 84).
    ("deep-bucket-herd.yaml", []),
])
def test_deep_bucket_ceiling_against_the_simulator(name: str, sets: list[str]) -> None:
    path = PROFILES / f"{name}.yaml" if (PROFILES / f"{name}.yaml").exists() else DATA / name
    profile = load_profile(path, sets)
    res = analyze(profile)
    assert res.binding.method == "token bucket, level law by level crossing"
    n_a = res.burst_ceiling
    sat = find_saturation(profile, max(1, n_a - 10), n_a + 10, seed=1, replications=20)
    assert_accurate(n_a, sat, sets or name)


def test_the_text_does_not_call_the_level_law_a_bound() -> None:
    text = analytic_text(DATA / "deep-bucket-fanout.yaml")
    assert "of time the bucket holds less than a mean call" in text
    assert "(an upper bound)" not in text


def test_a_call_larger_than_the_bucket_with_retries(tmp_path: Path) -> None:
    """Every call charges more than the bucket holds (1,100 tokens, 70 deep) and retries:
    the level-crossing block is one level, so no herd forms; every attempt is refused
    and the ceiling is 0 (the fuzzer's case raised numpy's broadcast ValueError out of
    ``capacity ceiling --method analytic`` before)."""
    path = tmp_path / "never-fits.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 40}}\n"
        "quotas: {q: {models: [m], tpm: 4200, "
        "enforcement: {type: token_bucket, burst: 1s}}}\n"
        "session: {think_time: 600s, turns: {t: {steps: "
        "[{call: {model: m, input_tokens: 1000, output_tokens: 100}}]}}}\n"
        "retry: {max_retries: 2}\n")
    res = analyze(load_profile(path), sessions=3)
    assert res.burst_ceiling == 0 and res.binding.one_event_exceeds
    at = res.binding.at_sessions
    assert at is not None
    assert at.call_429_fraction == pytest.approx(1.0)
    assert at.call_failure_fraction == pytest.approx(1.0)


def test_a_bucket_millions_of_calls_deep_with_retries(tmp_path: Path) -> None:
    """50 M input tokens a minute in a one-minute bucket, 20-token calls, one retry: the
    level grid (4,096 steps of ~12,000 tokens) is far coarser than a call, so a herd
    admitting one call per grid step's refill let ~70 fresh calls join each tick at 13%
    of the refill and the herd queue's matrix was singular (numpy LinAlgError out of
    ``capacity ceiling --method analytic``; the fuzzer's case). The bucket is 2.5 M
    calls deep: the burst-aware ceiling is the mean one."""
    path = tmp_path / "deep.yaml"
    path.write_text(
        "models: {m: {tokens_per_second: 5000, ttft: 0}}\n"
        "quotas: {q: {models: [m], preset: anthropic, itpm: 50000000}}\n"
        "session: {think_time: {exponential: 5s}, turns: {t: {steps: "
        "[{call: {model: m, input_tokens: 20, output_tokens: 10}}]}}}\n"
        "retry: {max_retries: 1}\n"
        "targets: {max_429_fraction: 0.05}\n")
    res = analyze(load_profile(path))
    assert res.binding.dimension == "itpm"
    assert 0.99 * res.mean_ceiling <= res.burst_ceiling <= res.mean_ceiling
