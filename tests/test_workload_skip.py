"""Draws the latency-only turn sample does not need are stepped over (``workload._skip``):
the generator must end where drawing them would leave it, for every kind of law, so the
latencies are the same draws as the full sample's."""

from __future__ import annotations

import numpy as np
import pytest

from capacity.model.dist import Distribution
from capacity.model.workload import Workload, _skip, sample_turns
from capacity.profile.loader import profile_from_dict

LAWS = [
    Distribution.fixed(300.0, "tokens"),
    Distribution.parse({"uniform": [100, 400]}, "tokens"),
    Distribution.parse({"uniform": ["0.5s", "2.5s"]}, "duration"),
    Distribution.parse({"lognormal": {"median": 1200, "p95": 3600}}, "tokens"),
    Distribution.parse({"exponential": "3s"}, "duration"),
    Distribution.parse({"choice": {"values": [10, 20, 40], "weights": [1, 2, 1]}},
                           "tokens"),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda d: d.kind)
@pytest.mark.parametrize("n", [1, 7, 4096])
def test_skipping_leaves_the_generator_where_drawing_does(law: Distribution, n: int) -> None:
    drawn, skipped = np.random.default_rng(11), np.random.default_rng(11)
    drawn.random(3)                      # (a state mid-stream, not the seed's)
    skipped.random(3)
    law.sample(drawn, n)
    _skip(law, skipped, n)
    assert drawn.bit_generator.state == skipped.bit_generator.state
    assert drawn.random() == skipped.random()


def test_latencies_alone_are_the_full_samples_latencies() -> None:
    prof = profile_from_dict({
        "name": "skip",
        "models": {"m": {"ttft": {"lognormal": {"median": "0.6s", "p95": "2s"}},
                         "tokens_per_second": {"uniform": [40, 80]}}},
        "quotas": {"q": {"models": ["m"], "tpm": 2_000_000}},
        "session": {"think_time": "30s", "turns": {"t": {"steps": [
            {"call": {"model": "m",
                      "input_tokens": {"lognormal": {"median": 1500, "p95": 6000}},
                      "output_tokens": {"uniform": [50, 400]}}},
            {"call": {"model": "m", "input_tokens": {"exponential": 800},
                      "output_tokens": 120}}]}}},
    })
    wl = Workload.from_profile(prof)
    full = sample_turns(wl, 5000, np.random.default_rng(3))
    alone = sample_turns(wl, 5000, np.random.default_rng(3), units=False)
    np.testing.assert_array_equal(full.latency, alone.latency)
