"""The mean latency of a random fan-out's slowest copy (``workload._fanout_mean``), which
the cycle time adds for every parallel step whose copies' latency is random: computed
from the copies' latency law (``_fanout_mean_exact``: ``∫ (1 − E[F(t)^K]) dt``) where each
copy is one call at a fixed tokens_per_second, else from a fixed-seed sample. The law's
answer against a large independent sample (its standard error and a lattice step)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from capacity.model import workload
from capacity.profile.loader import profile_from_dict
from capacity.profile.schema import ParallelStep, Profile


def _profile(ttft: Any, tps: Any, count: Any, output: Any,
             max_tokens: int | None = None) -> tuple[Profile, ParallelStep]:
    call: dict[str, Any] = {"model": "m", "input_tokens": 500, "output_tokens": output}
    if max_tokens is not None:
        call["max_tokens"] = max_tokens
    prof = profile_from_dict({
        "name": "fan-out-mean",
        "models": {"m": {"ttft": ttft, "tokens_per_second": tps}},
        "quotas": {"q": {"models": ["m"], "rpm": 1000}},
        "session": {"think_time": "30s", "turns": {"t": {"steps": [
            {"parallel": {"count": count, "call": call}}]}}},
    })
    step = next(iter(prof.session.turns.values())).steps[0]
    assert isinstance(step, ParallelStep)
    return prof, step


def _sampled(prof: Profile, step: ParallelStep, n: int = 400_000) -> tuple[float, float]:
    """(mean, standard error) of the slowest copy over ``n`` independent draws."""
    rng = np.random.default_rng(12345)
    lat, _, _ = workload._sample_steps((step,), prof, (), rng, n, raw=False)
    return float(lat.mean()), float(lat.std() / math.sqrt(n))


CASES = {
    "lognormal output cut by max_tokens, uniform count": (
        {"uniform": ["0.2s", "1.5s"]}, 40, {"uniform": [5, 25]},
        {"lognormal": {"median": 600, "p95": 2400}}, 1500),
    "a choice of counts, lognormal output": (
        {"uniform": ["0.2s", "0.8s"]}, 60,
        {"choice": {"values": [1, 3, 7], "weights": [1, 2, 1]}},
        {"lognormal": {"median": 200, "p95": 400}}, 900),
    "fixed output, a count that can be 0": (
        {"uniform": ["0.3s", "0.9s"]}, 100, {"uniform": [0, 4]}, 250, None),
    "thirty-seven copies": (
        {"uniform": ["0.4s", "1.2s"]}, 40, 37, {"uniform": [100, 1800]}, 2048),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_law_agrees_with_a_large_sample(case: str) -> None:
    ttft, tps, count, output, mt = CASES[case]
    prof, step = _profile(ttft, tps, count, output, mt)
    exact = workload._fanout_mean_exact(step, prof)
    assert exact is not None
    mean, se = _sampled(prof, step)
    # The lattice spreads each point over its neighbours: at most one step high.
    step_s = exact / workload._FANOUT_POINTS * 4
    assert abs(exact - mean) < 4.0 * se + step_s, (exact, mean, se)
    assert workload._fanout_mean(step, prof) == exact


def test_copies_as_long_as_each_other_are_the_call_whenever_one_is_made() -> None:
    prof, step = _profile("0.5s", 50, {"uniform": [0, 3]}, 100)
    # 0.5 s + 100/50 s, made unless the count is 0 (1 in 4).
    assert workload._fanout_mean_exact(step, prof) == pytest.approx(2.5 * 0.75, rel=1e-12)


def test_a_random_speed_is_left_to_the_sample() -> None:
    prof, step = _profile({"uniform": ["0.2s", "0.6s"]}, {"uniform": [30, 90]},
                          {"uniform": [2, 6]}, {"uniform": [50, 300]})
    assert workload._fanout_mean_exact(step, prof) is None
    mean, se = _sampled(prof, step, 100_000)
    assert abs(workload._fanout_mean(step, prof) - mean) < 6.0 * se + 1e-3 * mean


@pytest.mark.parametrize("ttft", [{"lognormal": {"median": "1s", "p95": "10s"}},
                                  {"exponential": "0.5s"}])
def test_a_heavy_tail_is_left_to_the_sample(ttft: Any) -> None:
    """A tail that stretches the lattice to steps far longer than a copy's latency would
    spread each copy over them and make the slowest one nearer their sum (a lognormal
    ttft of median 1 s and p95 10 s, five copies: 9.64 s against 9.29 s drawn)."""
    prof, step = _profile(ttft, 50, 5, 50)
    assert workload._fanout_mean_exact(step, prof) is None
    mean, se = _sampled(prof, step, 200_000)
    assert abs(workload._fanout_mean(step, prof) - mean) < 6.0 * se + 1e-3 * mean
