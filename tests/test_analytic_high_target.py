"""A high 429 target without retries (the hunt's "H" family): a refused call is lost, so
past the mean ceiling the share refused grows only as ~1 − 1/ρ and a 5% target is met
above it. The analytic search stopped at the mean ceiling (254 vs a simulated 269). It
now goes on to the simulated search's own cap, where the pause sets a session's pace —
not where a short think time brings a refused turn's session straight back."""

from __future__ import annotations

import math
from pathlib import Path

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.whatif.ceiling import SimSettings, ceiling

from ._accuracy import assert_accurate
from ._cli import analytic_text

DATA = Path(__file__).parent / "data"


def test_a_lost_call_lets_a_high_target_pass_the_mean_ceiling() -> None:
    profile = load_profile(DATA / "high-target-no-retries.yaml")
    res = ceiling(profile, "both", sim=SimSettings(seed=1, replications=8))
    assert res.simulated is not None
    sim = res.simulated
    assert res.burst_ceiling > math.floor(res.mean_ceiling)
    assert_accurate(res.burst_ceiling, sim)


def test_short_think_times_stay_at_the_mean_ceiling() -> None:
    data = load_profile(DATA / "high-target-no-retries.yaml").model_dump(
        mode="json", exclude_none=True)
    data["session"]["think_time"] = "5s"  # a 38 s cycle: the pause is 13% of it
    res = analyze(profile_from_dict(data))
    assert res.burst_ceiling <= math.floor(res.mean_ceiling)
    data["retry"] = {"max_retries": 2}  # retried calls come back: no lost load
    data["session"]["think_time"] = {"exponential": "120s"}
    retried = analyze(profile_from_dict(data))
    assert retried.burst_ceiling <= math.floor(retried.mean_ceiling)


def test_the_text_says_the_refused_calls_are_lost() -> None:
    text = analytic_text(DATA / "high-target-no-retries.yaml")
    assert "past the mean rate it still carries 269" in text
    assert "bursts cost nothing" not in text
