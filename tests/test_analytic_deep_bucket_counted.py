"""A deep requests bucket that counts its refusals, without retries (session 60): each
refused attempt takes what is there of one request (TokenBucket.count_rejection), so a
refusal leaves the level at 0, not at the fraction of a request it found. The deep
bucket's level law took nothing and refused about half what the engine does
(``python benchmarks/session60_probes.py counted``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from capacity.analytic.bucket import DeepBucket
from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
PROFILE = DATA / "deep-bucket-counted-no-retries.yaml"


def _poisson(counted: bool) -> Any:
    data = yaml.safe_load(PROFILE.read_text())
    data["quotas"]["q"]["rejected_count"] = counted
    data["session"]["think_time"] = {"exponential": "3000s"}
    return profile_from_dict(data)


def _unit_bucket(lam: float, rate: float, depth: float, counted: bool, calls: int,
                 seed: int) -> float:
    """Share refused of Poisson unit calls at ``lam`` a second into a bucket (an event
    loop written apart from the engine and the model)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / lam, calls))
    level, last, refused = depth, 0.0, 0
    for x in t.tolist():
        level = min(depth, level + (x - last) * rate)
        last = x
        if level >= 1.0:
            level -= 1.0
        else:
            refused += 1
            if counted:
                level = 0.0
    return refused / calls


@pytest.mark.parametrize("counted", [True, False])
def test_poisson_single_calls_against_an_event_loop(counted: bool) -> None:
    prof = _poisson(counted)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    assert isinstance(model.chain, DeepBucket)
    lam = 2.4
    share = model.chain.poisson_share(lam)
    truth = _unit_bucket(lam, 2.5, 25.0, counted, 1_500_000, seed=1)
    assert share == pytest.approx(truth, rel=0.08), (share, truth)


def test_counting_doubles_the_share_here() -> None:
    """Counting is not a small correction at this bucket: the refused call's fraction of
    a request is most of what the next call would have found."""
    shares = []
    for counted in (True, False):
        prof = _poisson(counted)
        wl = Workload.from_profile(prof)
        (c,) = wl.constraints
        model = constraint_model(wl, c, cycle_time(wl).cycle_s)
        shares.append(model.chain.poisson_share(2.4))
    assert shares[0] > 1.7 * shares[1]


def test_against_the_simulator() -> None:
    """156 against a simulated 156 [156–157] (``capacity ceiling
    tests/data/deep-bucket-counted-no-retries.yaml --seed 2 --replications 40 --format
    json``; 158 [157–159] with seed 1 and 20); 159 before."""
    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(156, 156, 157),
                    "a deep counted requests bucket, no retries")


def test_retries_keep_their_own_holds() -> None:
    """With retries the refusals' holds are DeepBucket._counted_share's: the no-retry
    count does not take a unit again."""
    data = yaml.safe_load(PROFILE.read_text())
    data["retry"] = {"max_retries": 2}
    prof = profile_from_dict(copy.deepcopy(data))
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    chain = constraint_model(wl, c, cycle_time(wl).cycle_s).chain
    assert isinstance(chain, DeepBucket) and chain.counts_refusals
    assert chain._counted_steps(0.125) == 0

